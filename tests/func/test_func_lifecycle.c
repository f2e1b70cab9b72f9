/* Functional tests of connection lifecycles: disconnects, queueing, leaks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <linux/vfio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "umdev/client_testing.h"
#include "umdev/wire_codec.h"

#define PG 4096u
#define RW (VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE)

/* Client-owned resources a session hands to the server. */
struct session {
    struct umdev_client *c;
    uint8_t *mem;
    int mem_fd;
    int intx, resample, err;
};

/* Connect and give the server everything it keeps per client: DMA
 * mappings with and without fd, trigger and resample eventfds, an mmap. */
static void
session_open(struct session *s)
{
    struct harness_state st;
    void *p;
    size_t len;

    s->c = harness_connect(&H, NULL);
    s->mem = guest_mem(2 * PG, &s->mem_fd);
    s->intx = efd_new();
    s->resample = efd_new();
    s->err = efd_new();
    assert_int_equal(umdev_client_dma_map(s->c, 0x100000, PG, s->mem,
                                          s->mem_fd, 0, RW),
                     0);
    assert_int_equal(umdev_client_dma_map(s->c, 0x200000, PG, s->mem + PG,
                                          -1, 0, RW),
                     0);
    irq_eventfd(s->c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0,
                s->intx);
    irq_eventfd(s->c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0,
                s->resample);
    irq_eventfd(s->c, VFIO_PCI_ERR_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0,
                s->err);
    assert_int_equal(umdev_client_region_mmap(s->c, UMDEV_PCI_BAR2_REGION,
                                              0, &p, &len),
                     0);
    harness_get_state(&H, &st);
    assert_true(st.attached);
    assert_int_equal(st.dma_count, 2);
    assert_true(st.irq_enabled[UMDEV_PCI_INTX_IRQ]);
    assert_true(st.irq_enabled[UMDEV_PCI_ERR_IRQ]);
}

/* Use what was set up: an interrupt and DMA both ways. */
static void
session_use(struct session *s)
{
    uint64_t one = 1;

    reg_wr(s->c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(s->intx, HARNESS_TIMEOUT_MS), 1);
    reg_wr(s->c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    assert_int_equal(write(s->resample, &one, sizeof(one)), sizeof(one));
    reg_wr(s->c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    assert_int_equal(efd_wait(s->err, HARNESS_TIMEOUT_MS), 1);
    reg_wr(s->c, TESTDEV_REG_DMA_ADDR, 0x100000 + PG - 32, 8);
    reg_wr(s->c, TESTDEV_REG_DMA_LEN, 64, 4);
    reg_wr(s->c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_INVERT, 4);
    assert_int_equal(reg_rd32(s->c, TESTDEV_REG_DMA_STATUS), EFAULT);
    reg_wr(s->c, TESTDEV_REG_DMA_ADDR, 0x200000, 8);
    reg_wr(s->c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_INVERT, 4);
    assert_int_equal(dma_status_wait(s->c), 0);
    assert_int_equal(s->mem[PG], 0xff);
}

/* Close the client and everything we handed out. */
static void
session_close(struct session *s)
{
    umdev_client_destroy(s->c);
    s->c = NULL;
    guest_mem_free(s->mem, 2 * PG, s->mem_fd);
    close(s->intx);
    close(s->resample);
    close(s->err);
}

/* After a client left: nothing of it is left on the server. */
static void
expect_clean(void)
{
    struct harness_state st;
    size_t i;

    harness_wait_detached(&H);
    harness_get_state(&H, &st);
    assert_false(st.attached);
    assert_int_equal(st.dma_count, 0);
    for (i = 0; i < UMDEV_PCI_NUM_IRQS; i++)
        assert_false(st.irq_enabled[i]);
}

/* The next client is served and finds the device state kept. */
static void
expect_next_client_works(uint32_t scratch)
{
    struct umdev_client *c = harness_connect(&H, NULL);

    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_SCRATCH), scratch);
    umdev_client_destroy(c);
    harness_wait_detached(&H);
}

enum cut {
    CUT_HALF_HEADER,
    CUT_HALF_BODY,
    CUT_HEADER_ONLY,
    CUT_MAX,
};

/*
 * A client that disconnects in the middle of a message (half a header; a
 * whole header and half the body of a REGION_WRITE; a header alone) while
 * it has DMA mapped and eventfds set: the server drops everything of it,
 * closes every descriptor it took, keeps the device state, and serves the
 * next client.
 */
static void
test_disconnect_mid_message(void **state)
{
    static uint8_t msg[16 + 16 + PG];
    struct vfio_user_region_access a = { 0, UMDEV_PCI_BAR2_REGION, PG };
    int cut, fds0, maps0;

    (void)state;
    fds0 = kit_open_fds();
    maps0 = count_guest_maps();
    for (cut = 0; cut < CUT_MAX; cut++) {
        struct session s;
        size_t len;

        session_open(&s);
        session_use(&s);
        reg_wr(s.c, TESTDEV_REG_SCRATCH, 0x1000u + (uint32_t)cut, 4);
        assert_int_equal(umdev_wire_encode(msg, sizeof(msg), 77,
                                           VFIO_USER_REGION_WRITE, 0, &a,
                                           sizeof(a), NULL, 0),
                         32);
        /* The header says 16 + 16 + 4096; we send less. */
        {
            uint32_t size = sizeof(msg);

            memcpy(msg + 4, &size, sizeof(size));
        }
        len = cut == CUT_HALF_HEADER ? 8
              : cut == CUT_HALF_BODY ? 16 + 16 + PG / 2
                                     : 16;
        assert_int_equal(umdev_client_send_bytes(s.c, msg, len), 0);
        session_close(&s);
        expect_clean();
        assert_int_equal(kit_open_fds(), fds0);
        assert_int_equal(count_guest_maps(), maps0);
        expect_next_client_works(0x1000u + (uint32_t)cut);
    }
}

/* Cut inside a message that carries a descriptor, and inside an oversized
 * message being skipped: nothing leaks either way. */
static void
test_disconnect_mid_message_raw(void **state)
{
    struct vfio_user_irq_set s = raw_irq_eventfds(VFIO_PCI_ERR_IRQ_INDEX, 0, 1);
    struct vfio_user_header big = {
        .msg_id = 3,
        .cmd = VFIO_USER_REGION_WRITE,
        .msg_size = 4u * 1024 * 1024,
    };
    static uint8_t body[256 * 1024];
    uint8_t msg[64];
    int fd, efd = efd_new(), fds0;

    (void)state;
    fds0 = kit_open_fds();
    /* The eventfd travels with the first 20 bytes of a SET_IRQS. */
    fd = harness_raw_socket(&H);
    raw_negotiate(fd, 1);
    assert_int_equal(umdev_wire_encode(msg, sizeof(msg), 2,
                                       VFIO_USER_DEVICE_SET_IRQS, 0, &s,
                                       sizeof(s), NULL, 0),
                     36);
    raw_send_fds(fd, msg, 20, &efd, 1);
    /* Let the server read the part (and the fd) before we leave. */
    raw_expect_quiet(fd);
    close(fd);
    expect_clean();
    assert_int_equal(kit_open_fds(), fds0);

    /* 4 MiB announced, 256 KiB sent: cut while being skipped. */
    fd = harness_raw_socket(&H);
    raw_negotiate(fd, 1);
    raw_send_all(fd, &big, sizeof(big));
    raw_send_all(fd, body, sizeof(body));
    raw_expect_quiet(fd);
    close(fd);
    expect_clean();
    assert_int_equal(kit_open_fds(), fds0);
    expect_next_client_works(0);
    close(efd);
}

/*
 * One client at a time: a second client that connects while the first is
 * attached has its VERSION answered at once with an EBUSY error reply and
 * is closed; the server log names the pid holding the device; the first
 * client is served throughout. Once the first leaves, the next attaches.
 */
static void
test_second_client_refused(void **state)
{
    struct umdev_client *first = harness_connect(&H, NULL);
    struct umdev_client *other = NULL;
    struct umdev_client_opts o = { .log = &H.client_log.logger };
    struct harness_state st;
    char holder[64];
    uint8_t p[4] = { 0 }, reply[1024];
    int64_t t0;
    int second;

    (void)state;
    snprintf(holder, sizeof(holder), "in use by pid %d", (int)getpid());
    kit_log_watch(&H.server_log, holder);
    second = harness_raw_socket(&H);
    t0 = kit_now_ms();
    raw_send(second, 0x77, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    raw_expect_error(second, 0x77, VFIO_USER_VERSION, EBUSY);
    /* Promptly: a VMM's own timeout is seconds; we answer within one. */
    assert_true(kit_now_ms() - t0 < 1000);
    assert_int_equal(raw_recv(second, reply, sizeof(reply), 1000, NULL, NULL),
                     0);
    close(second);
    assert_int_equal(atomic_load(&H.server_log.watched), 1);
    /* The client library reports it as such. */
    assert_int_equal(umdev_client_connect(H.path, &o, &other), -EBUSY);
    assert_null(other);
    assert_int_equal(atomic_load(&H.server_log.watched), 2);
    kit_log_watch(&H.server_log, NULL);
    /* The first is served all along, and was never displaced. */
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    harness_get_state(&H, &st);
    assert_int_equal(st.stats.attaches, 1);
    /* A client that leaves and comes straight back is not refused by its
     * own past connection. */
    umdev_client_destroy(first);
    first = harness_connect(&H, NULL);
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    harness_get_state(&H, &st);
    assert_int_equal(st.stats.attaches, 2);
    umdev_client_destroy(first);
    harness_wait_detached(&H);
}

/*
 * Second clients that never send anything are closed after a bounded
 * wait, and a crowd of them is closed at once beyond a few, with a bounded
 * number of log lines: the device's own client is unaffected and nothing
 * leaks.
 */
static void
test_second_clients_silent(void **state)
{
    struct umdev_client *first;
    uint8_t reply[64];
    int fds0 = kit_open_fds(), i, s[8];

    (void)state;
    first = harness_connect(&H, NULL);
    kit_log_watch(&H.server_log, "refusing a second client");
    for (i = 0; i < 8; i++)
        s[i] = harness_raw_socket(&H);
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    /* Each is closed, early or after the wait, without a message. */
    for (i = 0; i < 8; i++) {
        assert_int_equal(raw_recv(s[i], reply, sizeof(reply), 4000, NULL, NULL),
                         0);
        close(s[i]);
    }
    /* A crowd does not flood the log: the first 5 of a window
     * (SERVER_REFUSE_LOG_BURST) are logged, the rest counted. */
    assert_int_equal(atomic_load(&H.server_log.watched), 5);
    kit_log_watch(&H.server_log, NULL);
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(first);
    harness_wait_detached(&H);
    assert_int_equal(kit_open_fds(), fds0);
}

/*
 * Out of descriptors: a connection the server cannot accept (EMFILE) does
 * not make the ever-ready listener spin; it pauses and retries, the
 * attached client is served meanwhile, and once descriptors are back the
 * waiting client is answered (refused: the device is in use).
 */
static void
test_accept_without_fds(void **state)
{
    struct umdev_client *first = harness_connect(&H, NULL);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct rlimit old, low;
    uint8_t p[4] = { 0 };
    int s, spare;

    (void)state;
    strcpy(sa.sun_path, H.path);
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    /* The lowest free number is the next one accept() would get. */
    spare = dup(0);
    assert_true(spare >= 0);
    close(spare);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)spare;
    kit_log_watch(&H.server_log, "cannot accept a client");
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    /* Served meanwhile (a register read needs no new descriptor). */
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    usleep(300 * 1000);
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    /* One line per retry (SERVER_ACCEPT_RETRY_MS, 100 ms), not a spin. */
    assert_true(atomic_load(&H.server_log.watched) >= 1);
    assert_true(atomic_load(&H.server_log.watched) <= 10);
    kit_log_watch(&H.server_log, NULL);
    {
        struct timeval tv = { .tv_sec = 5 };

        assert_int_equal(
            setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    }
    raw_send(s, 0x55, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    raw_expect_error(s, 0x55, VFIO_USER_VERSION, EBUSY);
    close(s);
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(first);
    harness_wait_detached(&H);
}

/*
 * Descriptors: counted before the server starts and after 50 full
 * connect/map/irq/mmap/disconnect cycles plus server shutdown (with one
 * client still attached and one being refused): equal.
 */
static void
test_no_fd_leaks(void **state)
{
    struct session s;
    int fds0, maps0, i, waiting;
    uint8_t buf[4];

    (void)state;
    fds0 = kit_open_fds();
    maps0 = count_guest_maps();
    harness_start(&H);
    for (i = 0; i < 50; i++) {
        session_open(&s);
        session_use(&s);
        session_close(&s);
        expect_clean();
    }
    /* Shut down under a client and a queued connection. */
    session_open(&s);
    waiting = harness_raw_socket(&H);
    harness_stop(&H);
    assert_int_equal(umdev_client_region_read(s.c, UMDEV_PCI_BAR0_REGION,
                                              TESTDEV_REG_ID, buf, 4),
                     -ECONNRESET);
    session_close(&s);
    close(waiting);
    assert_int_equal(kit_open_fds(), fds0);
    assert_int_equal(count_guest_maps(), maps0);
}

/* What the server did with @fd so far: 1 closed, 0 open and silent. */
static int
closed_now(int fd)
{
    uint8_t b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n < 0)
        assert_true(errno == EAGAIN || errno == ECONNRESET);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/*
 * SERVER_MAX_REFUSING (4) second clients are held for their first
 * message, each then refused with EBUSY; a fifth arriving meanwhile is
 * closed at once, unanswered. The slots free again once answered.
 */
static void
test_refusing_at_limit(void **state)
{
    struct umdev_client *first;
    uint8_t p[4] = { 0 }, reply[64];
    int fds0 = kit_open_fds(), i, s[5], extra;
    int64_t t0;

    (void)state;
    first = harness_connect(&H, NULL);
    t0 = kit_now_ms();
    for (i = 0; i < 5; i++)
        s[i] = harness_raw_socket(&H);
    /* The fifth: closed without waiting for anything. */
    assert_int_equal(raw_recv(s[4], reply, sizeof(reply), 1000, NULL, NULL), 0);
    /* The four are still held (they would be closed after 2 s). */
    assert_true(kit_now_ms() - t0 < 1500);
    for (i = 0; i < 4; i++)
        assert_false(closed_now(s[i]));
    for (i = 0; i < 4; i++) {
        raw_send(s[i], (uint16_t)(0x10 + i), VFIO_USER_VERSION, 0, p, sizeof(p),
                 NULL, 0);
        raw_expect_error(s[i], (uint16_t)(0x10 + i), VFIO_USER_VERSION, EBUSY);
        assert_int_equal(raw_recv(s[i], reply, sizeof(reply), 1000, NULL, NULL),
                         0);
    }
    for (i = 0; i < 5; i++)
        close(s[i]);
    /* Answered and gone: a new second client is held and refused. */
    extra = harness_raw_socket(&H);
    raw_send(extra, 0x20, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    raw_expect_error(extra, 0x20, VFIO_USER_VERSION, EBUSY);
    close(extra);
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(first);
    harness_wait_detached(&H);
    assert_int_equal(kit_open_fds(), fds0);
}

/*
 * A second client that sends nothing is held SERVER_REFUSE_WAIT_MS
 * (2000 ms) from its accept, then closed unanswered: still open well
 * before, closed not before 2000 ms after its connect.
 */
static void
test_refuse_wait(void **state)
{
    struct umdev_client *first;
    uint8_t reply[64];
    int64_t t0, took;
    int s;

    (void)state;
    first = harness_connect(&H, NULL);
    t0 = kit_now_ms();
    s = harness_raw_socket(&H);
    while (kit_now_ms() - t0 < 1500) {
        assert_false(closed_now(s));
        usleep(50 * 1000);
    }
    /* Bounded generously above: the server's timer is not late by much,
     * but a loaded machine may be. */
    assert_int_equal(raw_recv(s, reply, sizeof(reply), 5000, NULL, NULL), 0);
    took = kit_now_ms() - t0;
    assert_true(took >= 2000);
    close(s);
    assert_int_equal(reg_rd32(first, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(first);
    harness_wait_detached(&H);
}

static const struct CMUnitTest tests[] = {
    HARNESS_TEST(test_disconnect_mid_message),
    HARNESS_TEST(test_disconnect_mid_message_raw),
    HARNESS_TEST(test_second_client_refused),
    HARNESS_TEST(test_second_clients_silent),
    HARNESS_TEST(test_refusing_at_limit),
    HARNESS_TEST(test_refuse_wait),
    HARNESS_TEST(test_accept_without_fds),
    cmocka_unit_test(test_no_fd_leaks),
};

HARNESS_MAIN("func.lifecycle", tests)
