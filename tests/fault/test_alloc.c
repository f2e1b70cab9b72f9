/*
 * Fault injection: fail the Nth allocation, for every N, on the paths that
 * build a device and that handle messages (STYLE.md "Tests").
 *
 * inject.c wraps the allocator and the kernel resources the library
 * allocates for the whole link (inject.h says which); every such call made
 * on the *armed* thread is counted and the Nth one fails. Each scenario
 * runs for N = 1, 2, ... until a run completes without reaching N, and
 * every run must end
 *   - without a crash or a hang,
 *   - with every request answered, normally or by an error reply, or with
 *     the connection closed (allocation failures on the stream path),
 *   - with no error reply before the failure was injected, and with data
 *     that reads back consistently whenever both halves succeeded,
 *   - with no allocation outstanding (counted here, and by LSan in the
 *     asan preset) and no descriptor left open (/proc/self/fd).
 * The scripted client is the test kit's raw peer (tests/common/kit_peer.h),
 * which never allocates, so no failure lands in the test's own code.
 *
 * Scenarios: (a) building the test device; (b) a scripted client on a
 * socketpair against a server thread calling umdev_dev_process(); (c) the
 * same device served by umdev_server on a umdev_loop, with INTx and its
 * resample eventfd (watched through the loop); (d) the serial card's
 * migration, saved with host bytes drained and loaded back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inject.h"
#include "kit_cmocka.h"
#include "kit_peer.h"
#include "kit_util.h"
#include "serial.h"
#include "testdev.h"
#include "uart.h"
#include "umdev/loop.h"
#include "umdev/wire.h"

/* <linux/vfio.h> values the script uses. */
#define IRQ_SET_DATA_NONE (1u << 0)
#define IRQ_SET_DATA_EVENTFD (1u << 2)
#define IRQ_SET_ACTION_UNMASK (1u << 4)
#define IRQ_SET_ACTION_TRIGGER (1u << 5)
#define TRIGGER_EVENTFD (IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER)

/* Guest memory the script serves: one page mapped through a memfd, one
 * page mapped without an fd (the device reaches it with DMA_READ/WRITE). */
#define IOVA_FD 0x100000u
#define IOVA_MSG 0x200000u
#define DMA_LEN 256u
/* A reply that takes longer than this is lost. */
#define REPLY_TIMEOUT_MS 8000

/* Everything is formatted (so format bugs show), nothing is printed. */
static struct kit_log quiet;

/* Teardown must leave nothing: the counters of the whole run. */
static void
check_clean(int fds_before, long n)
{
    long live_now = fault_live();
    int fds_now = kit_open_fds();

    if (live_now != 0 || fds_now != fds_before)
        fail_msg("N=%ld (injected errno %d): %ld allocations and %d "
                 "descriptors outstanding",
                 n, fault_injected(), live_now, fds_now - fds_before);
}

/* ---- the client side of the protocol ------------------------------------ */

enum outcome { REPLY_CLOSED, REPLY_OK, REPLY_ERR };

struct client {
    int fd;
    uint16_t next_id;
    bool dead;
    uint8_t guest_in[4096];  /* what DMA_READ of IOVA_MSG returns */
    uint8_t guest_out[4096]; /* what DMA_WRITE to IOVA_MSG stored */
    unsigned int dma_reads, dma_writes;
    uint32_t last_err; /* of the last REPLY_ERR */
    uint8_t reply[128 * 1024];
    size_t reply_len;
};

/* The device asked for guest memory: serve it from guest_in/guest_out. */
static int
serve_dma(struct client *c, const struct vfio_user_header *h)
{
    struct vfio_user_dma_access a;
    const uint8_t *data = NULL;

    assert_true(h->msg_size >= 32);
    memcpy(&a, c->reply + 16, sizeof(a));
    if (a.addr < IOVA_MSG || a.count > 4096 ||
        a.addr - IOVA_MSG > 4096 - a.count)
        fail_msg("device DMA outside the message mapping: 0x%llx+%llu",
                 (unsigned long long)a.addr, (unsigned long long)a.count);
    if (h->cmd == VFIO_USER_DMA_READ) {
        c->dma_reads++;
        data = c->guest_in + (a.addr - IOVA_MSG);
    } else {
        assert_int_equal(h->cmd, VFIO_USER_DMA_WRITE);
        assert_int_equal(h->msg_size, 32 + a.count);
        c->dma_writes++;
        memcpy(c->guest_out + (a.addr - IOVA_MSG), c->reply + 32, a.count);
    }
    return kit_peer_send(c->fd, h->msg_id, h->cmd, VFIO_USER_F_TYPE_REPLY, &a,
                         sizeof(a), data, data ? a.count : 0, NULL, 0);
}

/*
 * Send one command (with up to two fds) and wait for its reply, serving
 * the device's DMA requests meanwhile. A lost reply (8 s without one) fails
 * the test. The reply is left in c->reply.
 */
static enum outcome
request_fds(struct client *c, uint16_t cmd, uint32_t flags, const void *fixed,
            size_t fixed_len, const void *data, size_t data_len,
            const int *fds, size_t nfds)
{
    uint16_t id = c->next_id++;

    if (c->dead)
        return REPLY_CLOSED;
    if (kit_peer_send(c->fd, id, cmd, flags, fixed, fixed_len, data, data_len,
                      fds, nfds) < 0)
        goto closed;
    if (flags & VFIO_USER_F_NO_REPLY)
        return REPLY_OK;
    for (;;) {
        struct vfio_user_header h;
        ssize_t n = kit_peer_recv(c->fd, c->reply, sizeof(c->reply),
                                  REPLY_TIMEOUT_MS, NULL, NULL);

        if (n == -ETIMEDOUT)
            fail_msg("no reply to %s id %u within 8 s (N=%ld, injected %d)",
                     umdev_wire_cmd_name(cmd), id, fault_fail_at(),
                     fault_injected());
        memcpy(&h, c->reply, sizeof(h));
        if (n == -EPROTO || n == -EMSGSIZE)
            fail_msg("impossible message size %u from the server",
                     h.msg_size);
        if (n <= 0)
            goto closed;
        if ((h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND) {
            if (serve_dma(c, &h) < 0)
                goto closed;
            continue;
        }
        assert_int_equal(h.msg_id, id);
        assert_int_equal(h.cmd, cmd);
        c->reply_len = h.msg_size;
        if (h.flags & VFIO_USER_F_ERROR) {
            assert_int_equal(h.msg_size, 16);
            assert_int_not_equal(h.error, 0);
            c->last_err = h.error;
            return REPLY_ERR;
        }
        return REPLY_OK;
    }
closed:
    c->dead = true;
    return REPLY_CLOSED;
}

static enum outcome
request(struct client *c, uint16_t cmd, const void *fixed, size_t fixed_len,
        const void *data, size_t data_len)
{
    return request_fds(c, cmd, 0, fixed, fixed_len, data, data_len, NULL, 0);
}

/* Any error reply before the failure was injected is a bug. */
static void
expect_ok_or_injected(const struct client *c, enum outcome o,
                      const char *what)
{
    if (o == REPLY_ERR && fault_injected() == 0)
        fail_msg("%s: error %u with no failure injected (N=%ld)", what,
                 c->last_err, fault_fail_at());
    if (o == REPLY_CLOSED && fault_injected() == 0)
        fail_msg("%s: connection closed with no failure injected (N=%ld)", what,
                 fault_fail_at());
}

static enum outcome
reg_write(struct client *c, uint32_t region, uint64_t off, const void *val,
          uint32_t count, const char *what)
{
    struct vfio_user_region_access a = { off, region, count };
    enum outcome o = request(c, VFIO_USER_REGION_WRITE, &a, sizeof(a), val,
                             count);

    expect_ok_or_injected(c, o, what);
    return o;
}

/* Read @count bytes; on REPLY_OK they are at c->reply + 32. */
static enum outcome
reg_read(struct client *c, uint32_t region, uint64_t off, uint32_t count,
         const char *what)
{
    struct vfio_user_region_access a = { off, region, count };
    enum outcome o = request(c, VFIO_USER_REGION_READ, &a, sizeof(a), NULL,
                             0);

    expect_ok_or_injected(c, o, what);
    if (o == REPLY_OK)
        assert_int_equal(c->reply_len, 32 + count);
    return o;
}

static enum outcome
write32(struct client *c, uint64_t off, uint32_t v, const char *what)
{
    return reg_write(c, UMDEV_PCI_BAR0_REGION, off, &v, 4, what);
}

static enum outcome
read32(struct client *c, uint64_t off, uint32_t *v, const char *what)
{
    enum outcome o = reg_read(c, UMDEV_PCI_BAR0_REGION, off, 4, what);

    if (o == REPLY_OK)
        memcpy(v, c->reply + 32, 4);
    return o;
}

static enum outcome
negotiate(struct client *c)
{
    static const char json[] = KIT_QEMU_VERSION_JSON;
    struct vfio_user_version v = { 0, 0 };
    enum outcome o = request(c, VFIO_USER_VERSION, &v, sizeof(v), json,
                             sizeof(json));

    expect_ok_or_injected(c, o, "VERSION");
    return o;
}

/* SET_IRQS on vectors [0, @count) of @index with @flags, and an eventfd
 * @efd with it unless it is -1. */
static enum outcome
set_irqs(struct client *c, uint32_t index, uint32_t flags, uint32_t count,
         int efd, const char *what)
{
    struct vfio_user_irq_set s = { sizeof(s), flags, index, 0, count };
    enum outcome o = request_fds(c, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s),
                                 NULL, 0, &efd, efd >= 0 ? 1 : 0);

    expect_ok_or_injected(c, o, what);
    return o;
}

static void
drain_eventfd(int efd)
{
    uint64_t v;

    while (read(efd, &v, sizeof(v)) == sizeof(v))
        ;
}

static bool
eventfd_fired(int efd, int timeout_ms)
{
    struct pollfd p = { .fd = efd, .events = POLLIN };
    uint64_t v;

    if (poll(&p, 1, timeout_ms) <= 0)
        return false;
    return read(efd, &v, sizeof(v)) == sizeof(v) && v > 0;
}

/* ---- (a) building the device -------------------------------------------- */

static void
test_build_device(void **state)
{
    int fds = kit_open_fds();
    long n;

    (void)state;
    for (n = 1;; n++) {
        struct testdev *td = NULL;
        int rc;

        fault_arm(n);
        fault_arm_thread(true);
        rc = testdev_create(&quiet.logger, &td);
        fault_arm_thread(false);
        if (fault_injected() == 0) {
            assert_int_equal(rc, 0);
            assert_non_null(td);
            testdev_destroy(td);
            check_clean(fds, n);
            break;
        }
        /* The failure comes back as it happened, and nothing is built. */
        assert_int_equal(rc, -fault_injected());
        assert_null(td);
        check_clean(fds, n);
    }
    print_message("device build: %ld failure points\n", n - 1);
}

/* ---- (b) message handling over a socketpair ----------------------------- */

struct pump {
    struct umdev_dev *dev;
    atomic_bool hung;
};

static void *
pump_thread(void *arg)
{
    struct pump *p = arg;

    fault_arm_thread(true);
    while (umdev_dev_attached(p->dev)) {
        struct pollfd pf = { .fd = umdev_dev_client_fd(p->dev),
                             .events = POLLIN };

        if (poll(&pf, 1, 10000) <= 0) {
            atomic_store(&p->hung, true);
            break;
        }
        umdev_dev_process(p->dev);
    }
    fault_arm_thread(false);
    return NULL;
}

/*
 * Start the test device's DMA command @cmd (@what names it); @set: DMA_ADDR
 * and DMA_LEN hold what the script wrote. Return: whether it ran and
 * DMA_STATUS says it succeeded. A failure with nothing injected fails the
 * test.
 */
static bool
dma_ran(struct client *c, uint32_t cmd, bool set, const char *what)
{
    uint32_t status = 0;

    if (write32(c, TESTDEV_REG_DMA_CMD, cmd, what) != REPLY_OK || !set)
        return false;
    /* Busy until the DMA requests this client serves are answered. */
    do {
        if (read32(c, TESTDEV_REG_DMA_STATUS, &status, "DMA_STATUS") !=
            REPLY_OK)
            return false;
    } while (status == TESTDEV_DMA_BUSY);
    if (status != 0 && fault_injected() == 0)
        fail_msg("%s failed (%u) with no failure injected", what, status);
    return status == 0;
}

struct script_fds {
    int memfd;      /* guest page behind IOVA_FD */
    uint8_t *guest; /* our view of it */
    int efd_msix, efd_err;
};

static void
script_messages(struct client *c, const struct script_fds *f, bool complete)
{
    struct vfio_user_device_info di = { sizeof(di), 0, 0, 0 };
    struct vfio_user_dma_map map_fd = { sizeof(map_fd), 3, 0, IOVA_FD,
                                        4096 };
    struct vfio_user_dma_map map_msg = { sizeof(map_msg), 3, 0, IOVA_MSG,
                                         4096 };
    struct vfio_user_dma_unmap um = { sizeof(um), 0, IOVA_FD, 4096 };
    struct vfio_user_dma_unmap um_all = { sizeof(um_all), 2, 0, 0 };
    struct vfio_user_region_io_fds_request iofds = { sizeof(iofds), 0, 0, 0 };
    enum outcome o, ow, or;
    uint32_t i, v = 0;
    bool set; /* DMA_ADDR and DMA_LEN hold what the script wrote */
    uint64_t addr;

    if (negotiate(c) != REPLY_OK)
        return;
    o = request(c, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0);
    expect_ok_or_injected(c, o, "GET_INFO");
    /* Every region, with a too-small argsz and then a large one. */
    for (i = 0; i < UMDEV_PCI_NUM_REGIONS; i++) {
        struct vfio_user_region_info ri = { 32, 0, i, 0, 0, 0 };

        o = request(c, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri),
                    NULL, 0);
        expect_ok_or_injected(c, o, "GET_REGION_INFO");
        ri.argsz = 1024;
        o = request(c, VFIO_USER_DEVICE_GET_REGION_INFO, &ri, sizeof(ri),
                    NULL, 0);
        expect_ok_or_injected(c, o, "GET_REGION_INFO");
    }
    for (i = 0; i < UMDEV_PCI_NUM_IRQS; i++) {
        struct vfio_user_irq_info ii = { sizeof(ii), 0, i, 0 };

        o = request(c, VFIO_USER_DEVICE_GET_IRQ_INFO, &ii, sizeof(ii), NULL,
                    0);
        expect_ok_or_injected(c, o, "GET_IRQ_INFO");
    }
    o = request(c, VFIO_USER_DEVICE_GET_REGION_IO_FDS, &iofds, sizeof(iofds),
                NULL, 0);
    expect_ok_or_injected(c, o, "GET_REGION_IO_FDS");
    set_irqs(c, UMDEV_PCI_MSIX_IRQ, TRIGGER_EVENTFD, 1, f->efd_msix,
             "SET_IRQS MSI-X");
    o = set_irqs(c, UMDEV_PCI_ERR_IRQ, TRIGGER_EVENTFD, 1, f->efd_err,
                 "SET_IRQS ERR");
    if (o == REPLY_OK) {
        o = write32(c, TESTDEV_REG_ERR_TRIGGER, 1, "ERR trigger");
        if (o == REPLY_OK && !eventfd_fired(f->efd_err, 2000))
            fail_msg("ERR eventfd set and triggered but never signalled");
    }

    /* Registers, one at a time and through WRITE_MULTI. */
    ow = write32(c, TESTDEV_REG_SCRATCH, 0x1234, "scratch write");
    or = read32(c, TESTDEV_REG_SCRATCH, &v, "scratch read");
    if (ow == REPLY_OK && or == REPLY_OK)
        assert_int_equal(v, 0x1234);
    {
        uint8_t multi[8 + 2 * sizeof(struct vfio_user_write_multi_entry)];
        struct vfio_user_write_multi_entry e[2] = {
            { TESTDEV_REG_SCRATCH, UMDEV_PCI_BAR0_REGION, 4, { 0 } },
            { TESTDEV_SCRATCH_ARRAY + 3, UMDEV_PCI_BAR0_REGION, 1, { 0 } },
        };
        uint64_t count = 2;
        uint32_t x = 0x5678;

        memcpy(e[0].data, &x, 4);
        e[1].data[0] = 0xa5;
        memcpy(multi, &count, 8);
        memcpy(multi + 8, e, sizeof(e));
        ow = request(c, VFIO_USER_REGION_WRITE_MULTI, multi, sizeof(multi),
                     NULL, 0);
        expect_ok_or_injected(c, ow, "WRITE_MULTI");
        or = read32(c, TESTDEV_REG_SCRATCH, &v, "scratch read");
        if (ow == REPLY_OK && or == REPLY_OK)
            assert_int_equal(v, 0x5678);
    }

    /* DMA: one page through an fd, one through messages. */
    o = request_fds(c, VFIO_USER_DMA_MAP, 0, &map_fd, sizeof(map_fd), NULL,
                    0, &f->memfd, 1);
    expect_ok_or_injected(c, o, "DMA_MAP fd");
    o = request(c, VFIO_USER_DMA_MAP, &map_msg, sizeof(map_msg), NULL, 0);
    expect_ok_or_injected(c, o, "DMA_MAP no fd");
    /* guest -> BAR2 through DMA_READ messages the script answers. */
    addr = IOVA_MSG;
    set = reg_write(c, UMDEV_PCI_BAR0_REGION, TESTDEV_REG_DMA_ADDR, &addr, 8,
                    "DMA_ADDR") == REPLY_OK;
    set = write32(c, TESTDEV_REG_DMA_LEN, DMA_LEN, "DMA_LEN") == REPLY_OK &&
          set;
    if (dma_ran(c, TESTDEV_DMA_TO_DEVICE, set, "DMA to device") &&
        reg_read(c, UMDEV_PCI_BAR2_REGION, 0, DMA_LEN, "BAR2") == REPLY_OK)
        assert_memory_equal(c->reply + 32, c->guest_in, DMA_LEN);
    /* BAR2 -> guest through DMA_WRITE messages. */
    memset(c->guest_out, 0, sizeof(c->guest_out));
    if (dma_ran(c, TESTDEV_DMA_FROM_DEVICE, set, "DMA from device") &&
        reg_read(c, UMDEV_PCI_BAR2_REGION, 0, DMA_LEN, "BAR2") == REPLY_OK)
        assert_memory_equal(c->reply + 32, c->guest_out, DMA_LEN);
    /* In place through the fd mapping (the device allocates a buffer). */
    memset(f->guest, 0x0f, DMA_LEN);
    addr = IOVA_FD;
    set = reg_write(c, UMDEV_PCI_BAR0_REGION, TESTDEV_REG_DMA_ADDR, &addr, 8,
                    "DMA_ADDR") == REPLY_OK &&
          set;
    if (dma_ran(c, TESTDEV_DMA_INVERT, set, "DMA invert"))
        for (i = 0; i < DMA_LEN; i++)
            assert_int_equal(f->guest[i], 0xf0);

    /* Dirty logging over the fd mapping, a write, a report. */
    {
        struct {
            struct vfio_user_device_feature f;
            struct vfio_user_dma_logging_control c;
        } start = { { 8 + 16, VFIO_USER_DEVICE_FEATURE_SET |
                                  VFIO_USER_FEATURE_DMA_LOGGING_START },
                    { 4096, 0, 0 } };
        struct {
            struct vfio_user_device_feature f;
            struct vfio_user_dma_logging_report r;
        } rep = { { 8 + 24 + 8, VFIO_USER_DEVICE_FEATURE_GET |
                                    VFIO_USER_FEATURE_DMA_LOGGING_REPORT },
                  { IOVA_FD, 4096, 512 } };
        struct vfio_user_device_feature stop = {
            8, VFIO_USER_DEVICE_FEATURE_SET | VFIO_USER_FEATURE_DMA_LOGGING_STOP
        };
        uint64_t bits;

        o = request(c, VFIO_USER_DEVICE_FEATURE, &start, sizeof(start), NULL,
                    0);
        expect_ok_or_injected(c, o, "DMA_LOGGING_START");
        if (o == REPLY_OK &&
            dma_ran(c, TESTDEV_DMA_INVERT, set, "DMA invert")) {
            o = request(c, VFIO_USER_DEVICE_FEATURE, &rep, sizeof(rep), NULL,
                        0);
            expect_ok_or_injected(c, o, "DMA_LOGGING_REPORT");
            /* The server tracks 4 KiB pages: the one written shows as
             * all eight of its 512-byte report pages. */
            memcpy(&bits, c->reply + 16 + 8 + 24, sizeof(bits));
            if (o == REPLY_OK)
                assert_int_equal(bits, 0xff);
        }
        o = request(c, VFIO_USER_DEVICE_FEATURE, &stop, sizeof(stop), NULL, 0);
        expect_ok_or_injected(c, o, "DMA_LOGGING_STOP");
    }

    /* Migration: save the device, load it back into itself. */
    {
        static uint8_t stream[96 * 1024];
        struct {
            struct vfio_user_device_feature f;
            struct vfio_user_feature_mig_state s;
        } st = { { 16, VFIO_USER_DEVICE_FEATURE_SET |
                           VFIO_USER_FEATURE_MIG_DEVICE_STATE },
                 { VFIO_USER_DEVICE_STATE_STOP_COPY, 0 } };
        struct vfio_user_mig_data rd = { 8 + 32768, 32768 };
        size_t len = 0;
        uint32_t got = 0;

        o = request(c, VFIO_USER_DEVICE_FEATURE, &st, sizeof(st), NULL, 0);
        expect_ok_or_injected(c, o, "STOP_COPY");
        while (o == REPLY_OK) {
            o = request(c, VFIO_USER_MIG_DATA_READ, &rd, sizeof(rd), NULL, 0);
            expect_ok_or_injected(c, o, "MIG_DATA_READ");
            if (o != REPLY_OK)
                break;
            memcpy(&got, c->reply + 20, sizeof(got));
            assert_true(got <= rd.size && len + got <= sizeof(stream));
            memcpy(stream + len, c->reply + 24, got);
            len += got;
            if (got < rd.size)
                break;
        }
        st.s.device_state = VFIO_USER_DEVICE_STATE_RESUMING;
        o = request(c, VFIO_USER_DEVICE_FEATURE, &st, sizeof(st), NULL, 0);
        expect_ok_or_injected(c, o, "RESUMING");
        if (o == REPLY_OK && len != 0) {
            struct vfio_user_mig_data wr = { 8, (uint32_t)len };

            o = request(c, VFIO_USER_MIG_DATA_WRITE, &wr, sizeof(wr), stream,
                        len);
            expect_ok_or_injected(c, o, "MIG_DATA_WRITE");
        }
        /* Loads what came whole; a stream cut by an injected failure is
         * refused (EINVAL) and the device left as it was. */
        st.s.device_state = VFIO_USER_DEVICE_STATE_RUNNING;
        o = request(c, VFIO_USER_DEVICE_FEATURE, &st, sizeof(st), NULL, 0);
        if (o == REPLY_ERR && c->last_err != EINVAL)
            assert_int_equal(c->last_err, fault_injected());
        if (complete)
            assert_int_equal(o, REPLY_OK);
    }

    /* A read big enough to need a heap buffer, and a posted write. */
    reg_read(c, UMDEV_PCI_BAR2_REGION, 0, 4096, "BAR2 4 KiB");
    {
        struct vfio_user_region_access a = { TESTDEV_REG_SCRATCH,
                                             UMDEV_PCI_BAR0_REGION, 4 };
        uint32_t x = 0x9abc;

        request_fds(c, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, &a,
                    sizeof(a), &x, 4, NULL, 0);
        o = read32(c, TESTDEV_REG_SCRATCH, &v, "posted read back");
        if (o == REPLY_OK && complete)
            assert_int_equal(v, 0x9abc);
    }

    /* Refused messages: unknown command, oversized (body skipped). */
    o = request(c, 99, NULL, 0, NULL, 0);
    if (o == REPLY_ERR && c->last_err != ENOSYS)
        assert_int_equal(c->last_err, fault_injected());
    if (complete)
        assert_int_equal(o, REPLY_ERR);
    {
        static uint8_t big[2 * 1024 * 1024 + 16];
        struct vfio_user_header h = { c->next_id++, VFIO_USER_REGION_WRITE,
                                      sizeof(big), 0, 0 };

        memcpy(big, &h, sizeof(h));
        if (!c->dead && kit_peer_send_bytes(c->fd, big, sizeof(big), NULL, 0,
                                            NULL, NULL) == 0) {
            ssize_t rc = kit_peer_recv(c->fd, c->reply, sizeof(c->reply),
                                       REPLY_TIMEOUT_MS, NULL, NULL);

            assert_int_not_equal(rc, -ETIMEDOUT);
            if (rc <= 0) {
                c->dead = true;
            } else {
                memcpy(&h, c->reply, sizeof(h));
                assert_int_equal(h.msg_size, 16);
                assert_true(h.flags & VFIO_USER_F_ERROR);
                if (h.error != E2BIG)
                    assert_int_equal(h.error, fault_injected());
            }
        } else {
            c->dead = true;
        }
    }

    o = request(c, VFIO_USER_DMA_UNMAP, &um, sizeof(um), NULL, 0);
    expect_ok_or_injected(c, o, "DMA_UNMAP");
    o = request(c, VFIO_USER_DMA_UNMAP, &um_all, sizeof(um_all), NULL, 0);
    expect_ok_or_injected(c, o, "DMA_UNMAP_ALL");
    set_irqs(c, UMDEV_PCI_MSIX_IRQ, IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER,
             0, -1, "SET_IRQS off");
    o = request(c, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0);
    expect_ok_or_injected(c, o, "RESET");
    o = read32(c, TESTDEV_REG_RESETS, &v, "RESETS");
    if (complete)
        assert_int_equal(v, 1);
    o = request(c, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0);
    expect_ok_or_injected(c, o, "GET_INFO");
    if (complete) {
        assert_int_equal(o, REPLY_OK);
        assert_true(c->dma_reads > 0 && c->dma_writes > 0);
    }
}

/*
 * One run of the script against a fresh device pumped on an armed thread,
 * failing the @n-th call (0: none); @strict as script_messages(). Return:
 * whether the run completed with nothing injected.
 */
static bool
run_messages(const struct script_fds *f, long n, bool strict, int fds)
{
    /* Static: a failed assertion leaves the thread running. */
    static struct client c;
    static struct pump p;
    struct testdev *td = NULL;
    pthread_t thread;
    int sv[2];
    bool complete;

    assert_int_equal(testdev_create(&quiet.logger, &td), 0);
    assert_int_equal(kit_peer_pair(sv), 0);
    assert_int_equal(umdev_dev_attach(testdev_dev(td), sv[0]), 0);
    memset(&c, 0, sizeof(c));
    c.fd = sv[1];
    c.next_id = 1;
    for (size_t i = 0; i < sizeof(c.guest_in); i++)
        c.guest_in[i] = (uint8_t)(i * 7 + 3);
    drain_eventfd(f->efd_msix);
    drain_eventfd(f->efd_err);
    memset(&p, 0, sizeof(p));
    p.dev = testdev_dev(td);
    fault_arm(n);
    assert_int_equal(pthread_create(&thread, NULL, pump_thread, &p), 0);
    script_messages(&c, f, strict);
    close(sv[1]);
    pthread_join(thread, NULL);
    assert_false(atomic_load(&p.hung));
    complete = fault_injected() == 0;
    testdev_destroy(td);
    check_clean(fds, n);
    return complete;
}

static void
test_message_handling(void **state)
{
    struct script_fds f;
    int fds;
    long n;

    (void)state;
    f.memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_true(f.memfd >= 0);
    assert_int_equal(ftruncate(f.memfd, 4096), 0);
    f.guest = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f.memfd,
                   0);
    assert_true(f.guest != MAP_FAILED);
    f.efd_msix = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f.efd_err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(f.efd_msix >= 0 && f.efd_err >= 0);
    fds = kit_open_fds();
    /* Whether a run will complete is known only at its end; the strict
     * checks run once more on the last, untouched run. */
    for (n = 1; !run_messages(&f, n, false, fds); n++)
        ;
    print_message("message handling: %ld failure points\n", n - 1);
    assert_true(run_messages(&f, 0, true, fds));
    munmap(f.guest, 4096);
    close(f.memfd);
    close(f.efd_msix);
    close(f.efd_err);
}

/* ---- (c) a server on an event loop -------------------------------------- */

struct served {
    const char *path;
    struct umdev_dev *dev;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;
    int create_rc;
    atomic_bool stop;
    atomic_bool hung;
};

static void *
loop_thread(void *arg)
{
    struct served *s = arg;
    struct umdev_loop *loop = NULL;
    struct umdev_server *srv = NULL;
    int rc, spins = 0;

    fault_arm_thread(true);
    rc = umdev_loop_create(&loop);
    if (rc == 0)
        rc = umdev_server_create(s->dev, loop, s->path, &srv);
    pthread_mutex_lock(&s->lock);
    s->create_rc = rc;
    s->ready = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0) {
        /* Serve until the script is done and the client has gone. */
        while (!atomic_load(&s->stop) || umdev_dev_attached(s->dev)) {
            if (atomic_load(&s->stop) && ++spins > 400) {
                atomic_store(&s->hung, true);
                break;
            }
            umdev_loop_run_once(loop, 20);
        }
    }
    umdev_server_destroy(srv);
    umdev_loop_destroy(loop);
    fault_arm_thread(false);
    return NULL;
}

/* INTx with a resample eventfd: level up fires and masks; the client's
 * EOI (a write to the resample fd, seen through the loop) unmasks, and
 * the line still being high fires again. */
static void
script_intx(struct client *c, int efd_trigger, int efd_resample)
{
    struct vfio_user_device_info di = { sizeof(di), 0, 0, 0 };
    enum outcome ot, ou, ol;
    uint64_t one = 1;

    if (negotiate(c) != REPLY_OK)
        return;
    ot = set_irqs(c, UMDEV_PCI_INTX_IRQ, TRIGGER_EVENTFD, 1, efd_trigger,
                  "SET_IRQS INTx trigger");
    ou = set_irqs(c, UMDEV_PCI_INTX_IRQ,
                  IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_UNMASK, 1, efd_resample,
                  "SET_IRQS INTx resample");
    ol = write32(c, TESTDEV_REG_IRQ_LEVEL, 1, "IRQ_LEVEL");
    if (ot == REPLY_OK && ol == REPLY_OK) {
        if (!eventfd_fired(efd_trigger, 2000))
            fail_msg("INTx raised but its eventfd never fired (N=%ld)",
                     fault_fail_at());
        if (ou == REPLY_OK) {
            /* SET_IRQS accepted the resample fd: EOI must re-fire. */
            assert_int_equal(write(efd_resample, &one, sizeof(one)),
                             sizeof(one));
            if (!eventfd_fired(efd_trigger, 2000))
                fail_msg("resample eventfd accepted (SET_IRQS succeeded) "
                         "but the EOI never re-fired INTx (N=%ld, "
                         "injected errno %d)",
                         fault_fail_at(), fault_injected());
        }
    }
    expect_ok_or_injected(
        c, request(c, VFIO_USER_DEVICE_GET_INFO, &di, sizeof(di), NULL, 0),
        "GET_INFO");
}

/* Descriptors below this are taken before each run, so that the loop's fd
 * table (16, 32, 64... entries) has to grow exactly when the resample fd
 * is added: BAR2 memfd 27, epoll 28, listener 29 (table 32), client 30,
 * accepted 31, INTx eventfd 32, resample eventfd 33. */
#define FIRST_FREE_FD 27

/* The socket's directory, made by the setup and removed by the teardown
 * (which cmocka runs also when the test fails). */
static char sock_dir[] = "/tmp/umdev-fault-XXXXXX";
static char sock_path[sizeof(sock_dir) + 16];

static int
make_sock_dir(void **state)
{
    (void)state;
    memcpy(sock_dir + sizeof(sock_dir) - 7, "XXXXXX", 6);
    if (mkdtemp(sock_dir) == NULL)
        return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/dev.sock", sock_dir);
    return 0;
}

static int
remove_sock_dir(void **state)
{
    (void)state;
    unlink(sock_path);
    rmdir(sock_dir);
    return 0;
}

static void
test_server_loop(void **state)
{
    static struct client c;
    const char *path = sock_path;
    int pad[FIRST_FREE_FD], npad = 0, fds, efd_trigger, efd_resample;
    long n;

    (void)state;
    efd_trigger = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    efd_resample = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd_trigger >= 0 && efd_resample >= 0);
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        assert_true(fd >= 0);
        if (fd >= FIRST_FREE_FD || npad == FIRST_FREE_FD) {
            close(fd);
            break;
        }
        pad[npad++] = fd;
    }
    fds = kit_open_fds();
    for (n = 1;; n++) {
        /* Static: a failed assertion leaves the thread running. */
        static struct served s;
        struct testdev *td = NULL;
        pthread_t thread;
        bool complete;

        assert_int_equal(testdev_create(&quiet.logger, &td), 0);
        memset(&s, 0, sizeof(s));
        s.path = path;
        s.dev = testdev_dev(td);
        pthread_mutex_init(&s.lock, NULL);
        pthread_cond_init(&s.cond, NULL);
        drain_eventfd(efd_trigger);
        drain_eventfd(efd_resample);
        fault_arm(n);
        assert_int_equal(pthread_create(&thread, NULL, loop_thread, &s), 0);
        pthread_mutex_lock(&s.lock);
        while (!s.ready)
            pthread_cond_wait(&s.cond, &s.lock);
        pthread_mutex_unlock(&s.lock);
        if (s.create_rc == 0) {
            memset(&c, 0, sizeof(c));
            c.fd = kit_peer_connect(path, 0);
            assert_true(c.fd >= 0);
            c.next_id = 1;
            script_intx(&c, efd_trigger, efd_resample);
            close(c.fd);
        } else {
            assert_int_equal(s.create_rc, -fault_injected());
        }
        atomic_store(&s.stop, true);
        pthread_join(thread, NULL);
        assert_false(atomic_load(&s.hung));
        complete = fault_injected() == 0;
        testdev_destroy(td);
        pthread_cond_destroy(&s.cond);
        pthread_mutex_destroy(&s.lock);
        /* The server removes its socket file, also on failure. */
        assert_int_equal(access(path, F_OK), -1);
        check_clean(fds, n);
        if (complete)
            break;
    }
    print_message("server on a loop: %ld failure points\n", n - 1);
    while (npad > 0)
        close(pad[--npad]);
    close(efd_trigger);
    close(efd_resample);
}

/* ---- (d) the serial card's migration ------------------------------------ */

/* One byte-wide register of the serial card's port @port. */
static enum outcome
uart_rw(struct client *c, unsigned int port, unsigned int reg, uint8_t *v,
        bool is_write, const char *what)
{
    enum outcome o;

    if (is_write)
        return reg_write(c, UMDEV_PCI_BAR0_REGION + port, reg, v, 1, what);
    o = reg_read(c, UMDEV_PCI_BAR0_REGION + port, reg, 1, what);
    if (o == REPLY_OK)
        *v = c->reply[32];
    return o;
}

/* SET MIG_DEVICE_STATE; an error reply is the caller's to judge. */
static enum outcome
mig_request(struct client *c, uint32_t state)
{
    struct {
        struct vfio_user_device_feature f;
        struct vfio_user_feature_mig_state s;
    } st = { { 16, VFIO_USER_DEVICE_FEATURE_SET |
                       VFIO_USER_FEATURE_MIG_DEVICE_STATE },
             { state, 0 } };

    return request(c, VFIO_USER_DEVICE_FEATURE, &st, sizeof(st), NULL, 0);
}

static enum outcome
mig_set(struct client *c, uint32_t state, const char *what)
{
    enum outcome o = mig_request(c, state);

    expect_ok_or_injected(c, o, what);
    return o;
}

/*
 * Save the card with bytes held both ways (port 0's for a host end it
 * lacks, port 1's pty input the save drains), change a register, load
 * the state back into the same card and run: the register comes back
 * and the drained bytes reach the guest. A load failing for memory
 * leaves the card in ERROR, and a reset gets it out.
 */
static void
script_serial(struct client *c, bool complete)
{
    static uint8_t stream[64 * 1024];
    struct vfio_user_mig_data rd = { 8 + 32768, 32768 };
    enum outcome o, loaded;
    uint8_t v = 0x5a, got[9];
    size_t len = 0, n = 0;
    uint32_t cnt = 0;
    int i;

    if (negotiate(c) != REPLY_OK)
        return;
    uart_rw(c, 0, UART_SCR, &v, true, "SCR");
    v = 0x03; /* 8N1: bytes are masked to the word length */
    uart_rw(c, 1, UART_LCR, &v, true, "LCR");
    for (i = 0; i < 3; i++) {
        v = (uint8_t)('a' + i);
        uart_rw(c, 0, UART_TX, &v, true, "THR");
    }
    o = mig_set(c, VFIO_USER_DEVICE_STATE_STOP_COPY, "STOP_COPY");
    while (o == REPLY_OK) {
        o = request(c, VFIO_USER_MIG_DATA_READ, &rd, sizeof(rd), NULL, 0);
        expect_ok_or_injected(c, o, "MIG_DATA_READ");
        if (o != REPLY_OK)
            break;
        memcpy(&cnt, c->reply + 20, sizeof(cnt));
        assert_true(cnt <= rd.size && len + cnt <= sizeof(stream));
        memcpy(stream + len, c->reply + 24, cnt);
        len += cnt;
        if (cnt < rd.size)
            break;
    }
    mig_set(c, VFIO_USER_DEVICE_STATE_RUNNING, "RUNNING after the save");
    v = 0x11;
    uart_rw(c, 0, UART_SCR, &v, true, "SCR changed");
    o = mig_set(c, VFIO_USER_DEVICE_STATE_RESUMING, "RESUMING");
    if (o == REPLY_OK && len != 0) {
        struct vfio_user_mig_data wr = { 8, (uint32_t)len };

        o = request(c, VFIO_USER_MIG_DATA_WRITE, &wr, sizeof(wr), stream, len);
        expect_ok_or_injected(c, o, "MIG_DATA_WRITE");
    }
    /* A stream cut by an injected failure is refused (EINVAL); a load
     * that runs out of memory fails with it, the card in ERROR. */
    loaded = mig_request(c, VFIO_USER_DEVICE_STATE_RUNNING);
    if (loaded == REPLY_ERR && c->last_err != EINVAL)
        assert_int_equal(c->last_err, fault_injected());
    if (complete) {
        assert_int_equal(loaded, REPLY_OK);
        assert_int_equal(uart_rw(c, 0, UART_SCR, &v, false, "SCR"), REPLY_OK);
        assert_int_equal(v, 0x5a);
        /* The pty's bytes, drained at the save, one per RBR (no FIFO). */
        while (n < sizeof(got)) {
            assert_int_equal(uart_rw(c, 1, UART_LSR, &v, false, "LSR"),
                             REPLY_OK);
            assert_true(v & UART_LSR_DR);
            assert_int_equal(uart_rw(c, 1, UART_RX, &got[n++], false, "RBR"),
                             REPLY_OK);
        }
        assert_memory_equal(got, "hostbytes", sizeof(got));
    }
    if (loaded != REPLY_OK) {
        o = request(c, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0);
        expect_ok_or_injected(c, o, "RESET");
    }
}

static bool
run_serial(long n, bool strict, int fds)
{
    static struct client c;
    static struct pump p;
    struct serial_config cfg = { .name = "fault-serial" };
    struct umdev_loop *loop = NULL;
    struct serial *card = NULL;
    pthread_t thread;
    bool complete;
    int sv[2], slave;

    /* Port 1's host end is a pty, port 0 has none. Nobody runs the loop:
     * the pty's bytes wait in it for the save to drain them. */
    cfg.port[1].pty = true;
    assert_int_equal(umdev_loop_create(&loop), 0);
    assert_int_equal(serial_create(loop, &cfg, &quiet.logger, &card), 0);
    slave = open(serial_port_host_end(card, 1), O_RDWR | O_NOCTTY);
    assert_true(slave >= 0);
    assert_int_equal(write(slave, "hostbytes", 9), 9);
    close(slave);
    assert_int_equal(kit_peer_pair(sv), 0);
    assert_int_equal(umdev_dev_attach(serial_dev(card), sv[0]), 0);
    memset(&c, 0, sizeof(c));
    c.fd = sv[1];
    c.next_id = 1;
    memset(&p, 0, sizeof(p));
    p.dev = serial_dev(card);
    fault_arm(n);
    assert_int_equal(pthread_create(&thread, NULL, pump_thread, &p), 0);
    script_serial(&c, strict);
    close(sv[1]);
    pthread_join(thread, NULL);
    assert_false(atomic_load(&p.hung));
    complete = fault_injected() == 0;
    serial_destroy(card);
    umdev_loop_destroy(loop);
    check_clean(fds, n);
    return complete;
}

static void
test_serial_migration(void **state)
{
    int fds = kit_open_fds();
    long n;

    (void)state;
    for (n = 1; !run_serial(n, false, fds); n++)
        ;
    print_message("serial migration: %ld failure points\n", n - 1);
    assert_true(run_serial(0, true, fds));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_device),
        cmocka_unit_test(test_message_handling),
        cmocka_unit_test_setup_teardown(test_server_loop, make_sock_dir,
                                        remove_sock_dir),
        cmocka_unit_test(test_serial_migration),
    };

    kit_log_init(&quiet, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
