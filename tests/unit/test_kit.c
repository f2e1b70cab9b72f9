/*
 * Unit tests of the test kit (tests/common): every test, fuzz target and
 * benchmark trusts its oracle, its peer and its server harness, so they
 * are checked on their own first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kit_peer.h"
#include "kit_proto.h"
#include "kit_serve.h"
#include "kit_util.h"
#include "testdev.h"
#include "umdev/dev_testing.h"
#include "umdev/pci.h"
#include "umdev/wire.h"
#include "umdev/wire_codec.h"

#define TIMEOUT_MS 5000

static void
test_crc32c(void **state)
{
    static const uint8_t zeros[32], ones[32] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    uint8_t buf[1000];
    size_t cut;

    (void)state;
    /* The check value, and RFC 3720 B.4's 32-byte vectors. */
    assert_int_equal(kit_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(kit_crc32c(0, zeros, sizeof(zeros)), 0x8a9136aau);
    assert_int_equal(kit_crc32c(0, ones, sizeof(ones)), 0x62a8ab43u);
    assert_int_equal(kit_crc32c(0, NULL, 0), 0);
    /* A result is the seed that continues it. */
    kit_fill_rand(buf, sizeof(buf), 3);
    for (cut = 0; cut <= sizeof(buf); cut += 111)
        assert_int_equal(kit_crc32c(kit_crc32c(0, buf, cut), buf + cut,
                                    sizeof(buf) - cut),
                         kit_crc32c(0, buf, sizeof(buf)));
}

static void
test_fill_rand(void **state)
{
    uint8_t a[256], b[256];
    size_t i, same = 0;

    (void)state;
    kit_fill_rand(a, sizeof(a), 7);
    kit_fill_rand(b, sizeof(b), 7);
    assert_memory_equal(a, b, sizeof(a));
    /* The sequence every copy it replaced produced: seed 1 starts so. */
    kit_fill_rand(a, 4, 1);
    assert_int_equal(a[0], (uint8_t)((1u * 1103515245u + 12345u) >> 16));
    kit_fill_rand(b, sizeof(b), 8);
    for (i = 0; i < sizeof(a); i++)
        same += a[i] == b[i];
    assert_true(same < 16);
    for (i = 1, same = 0; i < sizeof(b); i++)
        same += b[i] == b[i - 1];
    assert_true(same < 16);
}

static void
test_clocks_and_fds(void **state)
{
    int64_t t0 = kit_now_ms(), n0 = kit_now_ns();
    int fds, p[2];

    (void)state;
    assert_true(t0 > 0 && n0 > 0);
    assert_true(kit_now_ns() >= n0);
    assert_int_equal(kit_left_ms(t0 - 1), 0);
    assert_true(kit_left_ms(kit_now_ms() + 10000) > 9000);
    fds = kit_count_fds();
    assert_true(fds >= 3);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(kit_count_fds(), fds + 2);
    close(p[0]);
    close(p[1]);
    assert_int_equal(kit_count_fds(), fds);
    assert_int_equal(kit_connect_unix("/nonexistent/kit.sock"), -ENOENT);
}

static void
test_log(void **state)
{
    struct kit_log l;

    (void)state;
    kit_log_init(&l, "kit", NULL);
    umdev_log(&l.logger, LOG_DEBUG, "debug %d", 1);
    umdev_log(&l.logger, LOG_WARNING, "warning %s", "two");
    umdev_log(&l.logger, LOG_ERR, "error");
    assert_int_equal(atomic_load(&l.warnings), 2);
}

/* A message with a fixed part, data and two descriptors, of which the
 * receiver keeps one and the other is closed. */
static void
test_peer_message(void **state)
{
    const uint8_t fixed[3] = { 1, 2, 3 }, data[5] = { 4, 5, 6, 7, 8 };
    uint8_t buf[64];
    struct vfio_user_header h;
    int sv[2], fds[2], got[1], before;
    size_t nfds = 1;

    (void)state;
    assert_int_equal(kit_peer_pair(sv), 0);
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    before = kit_count_fds();
    assert_int_equal(kit_peer_send(sv[0], 0x1234, VFIO_USER_REGION_WRITE,
                                   VFIO_USER_F_NO_REPLY, fixed, 3, data, 5,
                                   fds, 2),
                     0);
    assert_int_equal(kit_peer_recv(sv[1], buf, sizeof(buf), TIMEOUT_MS, got,
                                   &nfds),
                     16 + 8);
    assert_int_equal(nfds, 1);
    assert_int_equal(kit_count_fds(), before + 1); /* one kept, one closed */
    close(got[0]);
    memcpy(&h, buf, sizeof(h));
    assert_int_equal(h.msg_id, 0x1234);
    assert_int_equal(h.cmd, VFIO_USER_REGION_WRITE);
    assert_int_equal(h.msg_size, 16 + 8);
    assert_int_equal(h.flags, VFIO_USER_F_NO_REPLY);
    assert_int_equal(h.error, 0);
    assert_memory_equal(buf + 16, fixed, 3);
    assert_memory_equal(buf + 19, data, 5);
    /* VERSION 0.0 with the JSON and its NUL. */
    assert_int_equal(kit_peer_send_version(sv[0], 9, "{}"), 0);
    assert_int_equal(
        kit_peer_recv(sv[1], buf, sizeof(buf), TIMEOUT_MS, NULL, NULL),
        16 + 4 + 3);
    memcpy(&h, buf, sizeof(h));
    assert_int_equal(h.cmd, VFIO_USER_VERSION);
    assert_memory_equal(buf + 16, "\0\0\0\0{}", 7);
    close(fds[0]);
    close(fds[1]);
    close(sv[0]);
    close(sv[1]);
}

static void
test_peer_recv_errors(void **state)
{
    struct vfio_user_header h = { .msg_id = 1, .cmd = 1, .msg_size = 15 };
    uint8_t buf[32];
    int sv[2];

    (void)state;
    assert_int_equal(kit_peer_pair(sv), 0);
    assert_int_equal(kit_peer_recv(sv[1], buf, sizeof(buf), 0, NULL, NULL),
                     -ETIMEDOUT);
    assert_int_equal(kit_peer_recv(sv[1], buf, sizeof(buf), 50, NULL, NULL),
                     -ETIMEDOUT);
    assert_int_equal(kit_peer_recv(sv[1], buf, 15, 50, NULL, NULL), -EINVAL);
    /* Impossible sizes: the header is left in the buffer. */
    assert_int_equal(
        kit_peer_send_bytes(sv[0], &h, sizeof(h), NULL, 0, NULL, NULL), 0);
    assert_int_equal(kit_peer_recv(sv[1], buf, sizeof(buf), TIMEOUT_MS, NULL,
                                   NULL),
                     -EPROTO);
    assert_memory_equal(buf, &h, sizeof(h));
    h.msg_size = 33;
    assert_int_equal(
        kit_peer_send_bytes(sv[0], &h, sizeof(h), NULL, 0, NULL, NULL), 0);
    assert_int_equal(kit_peer_recv(sv[1], buf, sizeof(buf), TIMEOUT_MS, NULL,
                                   NULL),
                     -EMSGSIZE);
    /* Half a message, then the peer leaves: end of stream. */
    h.msg_size = 20;
    assert_int_equal(
        kit_peer_send_bytes(sv[0], &h, sizeof(h), NULL, 0, NULL, NULL), 0);
    close(sv[0]);
    assert_int_equal(
        kit_peer_recv(sv[1], buf, sizeof(buf), TIMEOUT_MS, NULL, NULL), 0);
    assert_int_equal(
        kit_peer_send_bytes(sv[1], buf, 0, NULL, 0, NULL, NULL), -EINVAL);
    assert_int_equal(
        kit_peer_send_bytes(sv[1], buf, 1, NULL, 0, NULL, NULL), -EPIPE);
    close(sv[1]);
}

struct drain {
    int fd;
    unsigned int calls;
    size_t got;
};

/* The socket is full: read some of it, as a device would. */
static int
drain_some(void *arg)
{
    struct drain *d = arg;
    uint8_t buf[4096];
    ssize_t n = read(d->fd, buf, sizeof(buf));

    d->calls++;
    if (n <= 0)
        return -EIO;
    d->got += (size_t)n;
    return 0;
}

static void
test_peer_send_full(void **state)
{
    static uint8_t big[1 << 20];
    struct drain d = { 0 };
    uint8_t buf[4096];
    int sv[2];
    ssize_t n;

    (void)state;
    assert_int_equal(kit_peer_pair(sv), 0);
    d.fd = sv[1];
    assert_int_equal(kit_peer_send_bytes(sv[0], big, sizeof(big), NULL, 0,
                                         drain_some, &d),
                     0);
    assert_true(d.calls > 0);
    while ((n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        d.got += (size_t)n;
    assert_int_equal(d.got, sizeof(big));
    /* What the callback says goes back to the caller. */
    d.fd = -1;
    assert_int_equal(kit_peer_send_bytes(sv[0], big, sizeof(big), NULL, 0,
                                         drain_some, &d),
                     -EIO);
    close(sv[0]);
    close(sv[1]);
}

static void
destroy_testdev(void *arg)
{
    testdev_destroy(arg);
}

static void
count_call(void *arg)
{
    (*(int *)arg)++;
}

/* Serve the test device, talk to it raw, call on its thread, stop. */
static void
test_serve(void **state)
{
    struct kit_serve s;
    struct testdev *td;
    uint8_t reply[1024];
    struct vfio_user_header h;
    char dir[sizeof(s.dir)];
    int fd, calls = 0, before = kit_count_fds();
    ssize_t n;

    (void)state;
    assert_int_equal(kit_serve_init(&s, "kit"), 0);
    assert_int_equal(testdev_create(NULL, &td), 0);
    assert_int_equal(
        kit_serve_add(&s, "dev", testdev_dev(td), destroy_testdev, td), 0);
    assert_int_equal(kit_serve_call(&s, count_call, &calls, TIMEOUT_MS),
                     -EINVAL); /* not started */
    assert_int_equal(kit_serve_start(&s), 0);
    fd = kit_peer_connect(s.devs[0].path, TIMEOUT_MS);
    assert_true(fd >= 0);
    assert_int_equal(kit_peer_send_version(fd, 5, KIT_QEMU_VERSION_JSON), 0);
    n = kit_peer_recv(fd, reply, sizeof(reply), TIMEOUT_MS, NULL, NULL);
    assert_true(n > 16 + 4);
    memcpy(&h, reply, sizeof(h));
    assert_int_equal(h.msg_id, 5);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    assert_int_equal(kit_serve_call(&s, count_call, &calls, TIMEOUT_MS), 0);
    assert_int_equal(kit_serve_call(&s, count_call, &calls, TIMEOUT_MS), 0);
    assert_int_equal(calls, 2);
    close(fd);
    memcpy(dir, s.dir, sizeof(dir));
    assert_int_equal(kit_serve_stop(&s, TIMEOUT_MS), 0);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(kit_serve_stop(&s, TIMEOUT_MS), 0); /* twice is fine */
    assert_int_equal(kit_count_fds(), before);
}

/* A device handed over is destroyed even when adding it fails (LSan
 * and the descriptor count would see one that is not). */
static void
test_serve_add_fails(void **state)
{
    int before = kit_count_fds();
    char name[200];
    struct kit_serve s;
    struct testdev *td;
    size_t i;

    (void)state;
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(kit_serve_init(&s, "kit"), 0);
    assert_int_equal(testdev_create(NULL, &td), 0);
    assert_int_equal(
        kit_serve_add(&s, name, testdev_dev(td), destroy_testdev, td),
        -ENAMETOOLONG);
    assert_int_equal(s.ndevs, 0);
    /* One more than it serves. */
    for (i = 0; i <= KIT_SERVE_MAX_DEVS; i++) {
        snprintf(name, sizeof(name), "dev%zu", i);
        assert_int_equal(testdev_create(NULL, &td), 0);
        assert_int_equal(
            kit_serve_add(&s, name, testdev_dev(td), destroy_testdev, td),
            i < KIT_SERVE_MAX_DEVS ? 0 : -ENOSPC);
    }
    assert_int_equal(s.ndevs, KIT_SERVE_MAX_DEVS);
    assert_int_equal(kit_serve_stop(&s, TIMEOUT_MS), 0);
    assert_int_equal(kit_count_fds(), before);
    /* A zeroed harness stops as a no-op. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(kit_serve_stop(&s, TIMEOUT_MS), 0);
}

/* What a client can read of the test device: every 4-byte word of
 * config space, BAR0 and BAR2, with the answer's error. */
struct testdev_view {
    int rc[256 / 4 + TESTDEV_BAR0_SIZE / 4 + TESTDEV_BAR2_SIZE / 4];
    uint32_t v[256 / 4 + TESTDEV_BAR0_SIZE / 4 + TESTDEV_BAR2_SIZE / 4];
};

static void
testdev_look(struct testdev *td, struct testdev_view *out)
{
    static const struct {
        uint32_t index;
        uint64_t size;
    } regions[] = {
        { UMDEV_PCI_CONFIG_REGION, 256 },
        { UMDEV_PCI_BAR0_REGION, TESTDEV_BAR0_SIZE },
        { UMDEV_PCI_BAR2_REGION, TESTDEV_BAR2_SIZE },
    };
    size_t r, k = 0;
    uint64_t off;

    memset(out, 0, sizeof(*out));
    for (r = 0; r < sizeof(regions) / sizeof(regions[0]); r++)
        for (off = 0; off < regions[r].size; off += 4, k++)
            out->rc[k] = umdev_dev_region_rw(testdev_dev(td), regions[r].index,
                                             off, &out->v[k], 4, false);
}

static void
testdev_wr(struct testdev *td, uint32_t index, uint64_t off, uint64_t v,
           size_t count)
{
    assert_int_equal(
        umdev_dev_region_rw(testdev_dev(td), index, off, &v, count, true), 0);
}

/* After testdev_power_cycle() a client finds the device as a new one:
 * registers, config space (BARs, command, MSI-X), BAR2, the INTx line
 * and the reset count all back to power-on. */
static void
test_testdev_power_cycle(void **state)
{
    static struct testdev_view fresh, cycled, dirty;
    const uint32_t bar0 = UMDEV_PCI_BAR0_REGION, cfg = UMDEV_PCI_CONFIG_REGION;
    struct testdev *td, *td_fresh;
    struct vfio_user_header h;
    uint8_t reply[256];
    int sv[2];

    (void)state;
    assert_int_equal(testdev_create(NULL, &td_fresh), 0);
    testdev_look(td_fresh, &fresh);
    assert_int_equal(testdev_create(NULL, &td), 0);

    /* A client resets it (RESETS counts 1), then leaves. */
    assert_int_equal(kit_peer_pair(sv), 0);
    assert_int_equal(umdev_dev_attach(testdev_dev(td), sv[0]), 0);
    assert_int_equal(kit_peer_send_version(sv[1], 1, KIT_QEMU_VERSION_JSON), 0);
    assert_int_equal(umdev_dev_process(testdev_dev(td)), 0);
    assert_true(
        kit_peer_recv(sv[1], reply, sizeof(reply), TIMEOUT_MS, NULL, NULL) > 0);
    assert_int_equal(kit_peer_send(sv[1], 2, VFIO_USER_DEVICE_RESET, 0, NULL, 0,
                                   NULL, 0, NULL, 0),
                     0);
    assert_int_equal(umdev_dev_process(testdev_dev(td)), 0);
    assert_int_equal(
        kit_peer_recv(sv[1], reply, sizeof(reply), TIMEOUT_MS, NULL, NULL),
        sizeof(h));
    memcpy(&h, reply, sizeof(h));
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    shutdown(sv[1], SHUT_WR);
    umdev_dev_process(testdev_dev(td));
    assert_false(umdev_dev_attached(testdev_dev(td)));
    close(sv[1]);

    /* Registers, a failed DMA, the INTx line, BAR2, config space. */
    testdev_wr(td, bar0, TESTDEV_REG_SCRATCH, 0x12345678, 4);
    testdev_wr(td, bar0, TESTDEV_REG_SCRATCH64, 0x1122334455667788ull, 8);
    testdev_wr(td, bar0, TESTDEV_REG_DMA_ADDR, 0x1000, 8);
    testdev_wr(td, bar0, TESTDEV_REG_DMA_LEN, 64, 4);
    testdev_wr(td, bar0, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_TO_DEVICE, 4);
    testdev_wr(td, bar0, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    testdev_wr(td, bar0, TESTDEV_SCRATCH_ARRAY + 5, 0xab, 1);
    testdev_wr(td, UMDEV_PCI_BAR2_REGION, 0x10, 0xcdcdcdcd, 4);
    testdev_wr(td, cfg, 0x04, 0x0006, 2);     /* COMMAND: memory, master */
    testdev_wr(td, cfg, 0x10, 0xfebf0000, 4); /* BAR0 */
    testdev_look(td, &dirty);
    assert_int_not_equal(memcmp(&dirty, &fresh, sizeof(fresh)), 0);

    testdev_power_cycle(td);
    testdev_look(td, &cycled);
    assert_memory_equal(&cycled, &fresh, sizeof(fresh));
    testdev_destroy(td);
    testdev_destroy(td_fresh);
}

/* The command table is indexed by command, every key QEMU proposes is
 * recognised (and nothing else), a VERSION payload is laid out as the
 * spec says or refused when it does not fit, and each well-formed payload
 * covers its fixed part and passes the wire decoder where a server
 * accepts it. */
static void
test_proto(void **state)
{
    const struct kit_good g = {
        .dma_addr = 0x10000,
        .read_count = 4,
        .write_count = 8,
        .write_data = { 1, 2, 3, 4, 5, 6, 7, 8 },
    };
    uint8_t good[KIT_GOOD_MAX], msg[UMDEV_WIRE_HDR_SIZE + KIT_GOOD_MAX];
    struct umdev_wire_msg w;
    static const char *const keys[] = {
        "max_msg_fds",  "max_data_xfer_size", "pgsizes",
        "max_dma_maps", "migration",          "write_multiple",
    };
    uint8_t buf[8];
    size_t i;

    (void)state;
    for (i = 0; i < KIT_NCMDS; i++)
        assert_int_equal(kit_cmds[i].cmd, i + 1);
    assert_int_equal(kit_cmds[KIT_CMD_RETIRED - 1].good_err, ENOSYS);
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        assert_true(kit_qemu_proposes(keys[i]));
        assert_non_null(strstr(KIT_QEMU_VERSION_JSON, keys[i]));
    }
    assert_false(kit_qemu_proposes("pgsize"));
    assert_false(kit_qemu_proposes(""));
    assert_int_equal(kit_version_payload(buf, sizeof(buf), 1, 2, "{}", 3), 7);
    assert_memory_equal(buf, "\1\0\2\0{}", 7);
    assert_int_equal(kit_version_payload(buf, sizeof(buf), 0, 0, NULL, 0), 4);
    assert_int_equal(kit_version_payload(buf, sizeof(buf), 0, 0, "{}}}}", 5),
                     0);
    assert_int_equal(kit_version_payload(buf, 3, 0, 0, NULL, 0), 0);
    for (i = 0; i < KIT_NCMDS; i++) {
        const struct kit_cmd *k = &kit_cmds[i];
        size_t len = kit_good_payload(&g, k->cmd, good);
        ssize_t n = umdev_wire_encode(msg, sizeof(msg), 1, k->cmd, 0, good, len,
                                      NULL, 0);

        assert_true(len >= k->fixed);
        assert_true(n > 0);
        if (k->good_err == 0)
            assert_int_equal(umdev_wire_decode(msg, (size_t)n, 0, NULL, &w), 0);
    }
    assert_int_equal(kit_good_payload(&g, 0, good), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_fill_rand),
        cmocka_unit_test(test_clocks_and_fds),
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_peer_message),
        cmocka_unit_test(test_peer_recv_errors),
        cmocka_unit_test(test_peer_send_full),
        cmocka_unit_test(test_serve),
        cmocka_unit_test(test_serve_add_fails),
        cmocka_unit_test(test_testdev_power_cycle),
        cmocka_unit_test(test_proto),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
