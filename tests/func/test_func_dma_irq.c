/* Functional tests of IRQ eventfds, DMA (mapped and by message) and reset. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define BAR0 UMDEV_PCI_BAR0_REGION
#define BAR2 UMDEV_PCI_BAR2_REGION
#define CONFIG UMDEV_PCI_CONFIG_REGION
#define PG 4096u
#define RW (VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE)

/* Start a DMA command; return DMA_STATUS once it is done (0 or an
 * errno). */
static uint32_t
dma_cmd(struct umdev_client *c, uint64_t addr, uint32_t len, uint32_t cmd)
{
    reg_wr(c, TESTDEV_REG_DMA_ADDR, addr, 8);
    reg_wr(c, TESTDEV_REG_DMA_LEN, len, 4);
    reg_wr(c, TESTDEV_REG_DMA_CMD, cmd, 4);
    return dma_status_wait(c);
}

/* dma_cmd(), and the DMA_READ and DMA_WRITE messages the client served
 * for it (the device's fallback when the mapping has no fd). */
struct dma_run {
    uint32_t status;
    uint64_t reads, writes;
};

static struct dma_run
dma_run(struct umdev_client *c, uint64_t addr, uint32_t len, uint32_t cmd)
{
    struct umdev_client_stats a, b;
    struct dma_run r;

    umdev_client_get_stats(c, &a);
    r.status = dma_cmd(c, addr, len, cmd);
    umdev_client_get_stats(c, &b);
    r.reads = b.dma_reads - a.dma_reads;
    r.writes = b.dma_writes - a.dma_writes;
    return r;
}

/* BAR2 through REGION_READ or REGION_WRITE in 4 KiB steps (any client
 * limit). */
static void
bar2_rw(struct umdev_client *c, uint64_t off, void *buf, size_t len,
        bool is_write)
{
    uint8_t *p = buf;

    while (len > 0) {
        size_t n = len < PG ? len : PG;

        assert_int_equal(is_write
                             ? umdev_client_region_write(c, BAR2, off, p, n)
                             : umdev_client_region_read(c, BAR2, off, p, n),
                         0);
        off += n;
        p += n;
        len -= n;
    }
}

static void
test_irq_info(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct umdev_client_irq_info qi;
    const uint32_t intx_flags = VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE |
                                VFIO_IRQ_INFO_AUTOMASKED;

    (void)state;
    assert_int_equal(umdev_client_irq_info(c, VFIO_PCI_INTX_IRQ_INDEX, &qi), 0);
    assert_int_equal(qi.flags & intx_flags, intx_flags);
    assert_int_equal(qi.count, 1);
    /* No MSI capability: no vectors. */
    assert_int_equal(umdev_client_irq_info(c, VFIO_PCI_MSI_IRQ_INDEX, &qi), 0);
    assert_int_equal(qi.count, 0);
    /* MSI-X: the test device's register map declares 4 vectors. */
    assert_int_equal(umdev_client_irq_info(c, VFIO_PCI_MSIX_IRQ_INDEX, &qi), 0);
    assert_int_equal(qi.count, TESTDEV_MSIX_VECTORS);
    assert_true(qi.flags & VFIO_IRQ_INFO_EVENTFD);
    assert_int_equal(umdev_client_irq_info(c, VFIO_PCI_ERR_IRQ_INDEX, &qi), 0);
    assert_int_equal(qi.count, 1);
    assert_true(qi.flags & VFIO_IRQ_INFO_EVENTFD);
    assert_int_equal(umdev_client_irq_info(c, VFIO_PCI_REQ_IRQ_INDEX, &qi), 0);
    assert_int_equal(qi.count, 1);
    assert_int_equal(umdev_client_irq_info(c, UMDEV_PCI_NUM_IRQS, &qi),
                     -EINVAL);
    assert_int_equal(umdev_client_irq_info(c, 0xffffffffu, &qi), -EINVAL);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(c);
}

/*
 * Level-triggered INTx with VFIO's automask: one signal per assertion,
 * nothing while masked, a re-fire on unmask while the line is still high
 * (through SET_IRQS UNMASK or the resample eventfd), silence once lowered.
 */
static void
test_intx(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct harness_state s0, s1;
    int efd = efd_new(), resample = efd_new();
    uint64_t one = 1;

    (void)state;
    harness_get_state(&H, &s0);
    irq_trigger(c, VFIO_PCI_INTX_IRQ_INDEX, 0, efd);
    assert_false(harness_sample(&H).intx_masked);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_true(harness_sample(&H).intx_masked);
    /* Still high, or lowered and raised again, while masked: silence. */
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_IRQ_RAISED), 2);
    /* EOI with the line high: exactly one more signal, masked again. */
    irq_action(c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_true(harness_sample(&H).intx_masked);
    /* Lowered, then EOI: quiet and unmasked. */
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    irq_action(c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_false(harness_sample(&H).intx_masked);

    /* Explicit MASK holds a new assertion until UNMASK. */
    irq_action(c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_MASK, 0);
    assert_true(harness_sample(&H).intx_masked);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    irq_action(c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);

    /* The resample eventfd unmasks as SET_IRQS UNMASK does. */
    irq_eventfd(c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0,
                resample);
    assert_int_equal(write(resample, &one, sizeof(one)), sizeof(one));
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    assert_int_equal(write(resample, &one, sizeof(one)), sizeof(one));
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_false(harness_sample(&H).intx_masked);

    /* Four signals in all, none dropped. */
    harness_get_state(&H, &s1);
    assert_int_equal(s1.stats.irqs - s0.stats.irqs, 4);
    assert_int_equal(s1.stats.irqs_dropped, s0.stats.irqs_dropped);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(c);
    close(efd);
    close(resample);
}

struct release_arg {
    int rc;
};

static void
request_release(struct umdev_dev *dev, void *arg)
{
    struct release_arg *r = arg;

    r->rc = umdev_dev_request_release(dev);
}

static void
test_err_and_req(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct release_arg rel = { -1 };
    int err = efd_new(), req = efd_new();
    struct harness_state s;

    (void)state;
    irq_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, 0, err);
    irq_trigger(c, VFIO_PCI_REQ_IRQ_INDEX, 0, req);
    harness_get_state(&H, &s);
    assert_true(s.irq_enabled[UMDEV_PCI_ERR_IRQ]);
    assert_true(s.irq_enabled[UMDEV_PCI_REQ_IRQ]);
    /* ERR from the device's register. */
    reg_wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    assert_int_equal(efd_wait(err, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(req, HARNESS_QUIET_MS), 0);
    /* REQ from the server side (device removal request). */
    harness_call(&H, request_release, &rel);
    assert_int_equal(rel.rc, 0);
    assert_int_equal(efd_wait(req, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(err, HARNESS_QUIET_MS), 0);
    /* ERR and REQ are not maskable. */
    assert_int_equal(
        umdev_client_set_irqs(c, VFIO_PCI_ERR_IRQ_INDEX,
                              VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK,
                              0, 1, NULL, NULL),
        -EINVAL);
    /* A sub-index beyond the vector count. */
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_ERR_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_NONE |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           1, 1, NULL, NULL),
                     -EINVAL);
    /* A software trigger (DATA_NONE + TRIGGER) fires it too. */
    irq_action(c, VFIO_PCI_REQ_IRQ_INDEX, VFIO_IRQ_SET_ACTION_TRIGGER, 0);
    assert_int_equal(efd_wait(req, HARNESS_TIMEOUT_MS), 1);
    umdev_client_destroy(c);
    close(err);
    close(req);
}

/* De-assigning an eventfd closes the server's copy; a trigger with no
 * eventfd is counted as dropped and signals nothing. */
static void
test_deassign_counts_dropped(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct release_arg rel = { 0 };
    struct harness_state s0, s1;
    int err = efd_new(), req = efd_new();
    int fds0;

    (void)state;
    fds0 = kit_open_fds();
    irq_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, 0, err);
    irq_trigger(c, VFIO_PCI_REQ_IRQ_INDEX, 0, req);
    /* The server holds its own copies. */
    assert_int_equal(kit_open_fds(), fds0 + 2);
    irq_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, 0, -1);
    irq_trigger(c, VFIO_PCI_REQ_IRQ_INDEX, 0, -1);
    assert_int_equal(kit_open_fds(), fds0);
    harness_get_state(&H, &s0);
    assert_false(s0.irq_enabled[UMDEV_PCI_ERR_IRQ]);
    assert_false(s0.irq_enabled[UMDEV_PCI_REQ_IRQ]);

    reg_wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    harness_call(&H, request_release, &rel);
    assert_int_equal(rel.rc, -ENOENT);
    assert_int_equal(efd_wait(err, HARNESS_QUIET_MS), 0);
    assert_int_equal(efd_wait(req, 0), 0);
    harness_get_state(&H, &s1);
    assert_int_equal(s1.stats.irqs_dropped - s0.stats.irqs_dropped, 2);
    assert_int_equal(s1.stats.irqs, s0.stats.irqs);
    /* Assign again: delivered again. */
    irq_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, 0, err);
    reg_wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    assert_int_equal(efd_wait(err, HARNESS_TIMEOUT_MS), 1);
    umdev_client_destroy(c);
    close(err);
    close(req);
}

static void
test_msix(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    int efd = efd_new();

    (void)state;
    irq_trigger(c, VFIO_PCI_MSIX_IRQ_INDEX, 2, efd);
    cfg_enable_msix(c);
    reg_wr(c, TESTDEV_REG_MSIX_TRIGGER, 2, 4);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    /* Another vector: nothing on vector 2's eventfd. */
    reg_wr(c, TESTDEV_REG_MSIX_TRIGGER, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    umdev_client_destroy(c);
    close(efd);
}

/*
 * Interrupt fds must be eventfds: a pipe (whose writes block once it is
 * full) or a socket is refused with EINVAL, with a warning, and nothing
 * changes; the connection keeps working.
 */
static void
test_irq_fd_not_eventfd(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    int efd = efd_new(), pipefd[2], sv[2], w0;

    (void)state;
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    irq_trigger(c, VFIO_PCI_INTX_IRQ_INDEX, 0, efd);
    w0 = atomic_load(&H.server_log.warnings);
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_INTX_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_EVENTFD |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           0, 1, &pipefd[1], NULL),
                     -EINVAL);
    assert_int_equal(atomic_load(&H.server_log.warnings), w0 + 1);
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_ERR_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_EVENTFD |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           0, 1, &sv[0], NULL),
                     -EINVAL);
    /* The resample fd too. */
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_INTX_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_EVENTFD |
                                               VFIO_IRQ_SET_ACTION_UNMASK,
                                           0, 1, &pipefd[0], NULL),
                     -EINVAL);
    /* The eventfd installed before is still the one signalled. */
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(c);
    close(efd);
    close(pipefd[0]);
    close(pipefd[1]);
    close(sv[0]);
    close(sv[1]);
}

/*
 * A blocking eventfd whose counter the client drove to its maximum: a
 * write to it would wait for a read that never comes. The server signals
 * it without waiting (counted as dropped) and keeps answering; once the
 * client drains it, interrupts arrive again.
 */
static void
test_irq_eventfd_full(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    int efd = eventfd(0, EFD_CLOEXEC); /* blocking, as a client may make it */
    uint64_t max = UINT64_MAX - 1, n = 0;
    struct harness_state s0, s1;

    (void)state;
    assert_true(efd >= 0);
    assert_int_equal(write(efd, &max, sizeof(max)), sizeof(max));
    irq_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, 0, efd);
    harness_get_state(&H, &s0);
    reg_wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    /* The server answers: its thread did not block in the write. */
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    harness_get_state(&H, &s1);
    assert_int_equal(s1.stats.irqs_dropped - s0.stats.irqs_dropped, 1);
    assert_int_equal(read(efd, &n, sizeof(n)), sizeof(n));
    assert_true(n == max);
    reg_wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    umdev_client_destroy(c);
    close(efd);
}

/*
 * Descriptors per message at the limit (UMDEV_WIRE_MAX_MSG_FDS) and one
 * past it, on a raw socket: 16 eventfds with a SET_IRQS of count 16 pass
 * the framing and reach the handler, which refuses them for its own
 * reason (MSI-X has 4 vectors here: EINVAL, not EBADF); 17 are refused
 * by the framing (EBADF). Either way the server keeps none of them and
 * the connection goes on.
 */
static void
test_fds_per_message_limit(void **state)
{
    enum { MAX = UMDEV_WIRE_MAX_MSG_FDS };
    struct vfio_user_irq_set s =
        raw_irq_eventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, MAX);
    int fd = harness_raw_socket(&H), efds[MAX + 1], fds0;
    uint8_t reply[256];
    size_t i;

    (void)state;
    raw_negotiate(fd, 1);
    for (i = 0; i < MAX + 1; i++)
        efds[i] = efd_new();
    fds0 = kit_open_fds();
    raw_send(fd, 10, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), efds, MAX);
    raw_expect_error(fd, 10, VFIO_USER_DEVICE_SET_IRQS, EINVAL);
    raw_expect_alive(fd, 11);
    assert_int_equal(kit_open_fds(), fds0);
    s.count = MAX + 1;
    raw_send(fd, 12, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), efds,
             MAX + 1);
    raw_expect_error(fd, 12, VFIO_USER_DEVICE_SET_IRQS, EBADF);
    raw_expect_alive(fd, 13);
    assert_int_equal(kit_open_fds(), fds0);
    /* Within the vectors there are, the same path takes them. */
    s.count = TESTDEV_MSIX_VECTORS;
    raw_send(fd, 14, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), efds,
             TESTDEV_MSIX_VECTORS);
    raw_expect_reply(fd, 14, VFIO_USER_DEVICE_SET_IRQS, reply, sizeof(reply));
    assert_int_equal(kit_open_fds(), fds0 + TESTDEV_MSIX_VECTORS);
    /* Detached: the eventfds closed with both ends of the socket. */
    close(fd);
    harness_wait_detached(&H);
    assert_int_equal(kit_open_fds(), fds0 - 2);
    for (i = 0; i < MAX + 1; i++)
        close(efds[i]);
}

#define NMAPS 1000u
#define MAP_BASE 0x10000000ull

/* Mapping i covers [iova(i), iova(i) + PG); a one-page hole follows. */
static uint64_t
iova(size_t i)
{
    return MAP_BASE + (uint64_t)i * 2 * PG;
}

/*
 * A mapping the fd cannot back (past the end of the file, or not a regular
 * file) is refused up front: touching it later would raise SIGBUS in the
 * server. The connection stays usable.
 */
static void
test_dma_map_beyond_file(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t *mem;
    int fd, pipefd[2];

    (void)state;
    mem = guest_mem(4 * PG, &fd);
    assert_int_equal(umdev_client_dma_map(c, iova(0), 8 * PG, mem, fd, 0, RW),
                     -EINVAL);
    assert_int_equal(umdev_client_dma_map(c, iova(0), PG, mem, fd, 4 * PG, RW),
                     -EINVAL);
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    assert_int_equal(
        umdev_client_dma_map(c, iova(0), PG, mem, pipefd[0], 0, RW), -EBADF);
    close(pipefd[0]);
    close(pipefd[1]);
    assert_int_equal(harness_sample(&H).dma_count, 0);
    assert_int_equal(umdev_client_dma_map(c, iova(0), 4 * PG, mem, fd, 0, RW),
                     0);
    assert_int_equal(harness_sample(&H).dma_count, 1);
    assert_int_equal(umdev_client_dma_unmap(c, iova(0), 4 * PG), 0);
    umdev_client_destroy(c);
    guest_mem_free(mem, 4 * PG, fd);
}

/* A memfd of @size bytes made with MFD_ALLOW_SEALING, then @seals added,
 * mapped read-write. */
static uint8_t *
sealed_mem(size_t size, unsigned int seals, int *fd)
{
    uint8_t *p;

    *fd = memfd_create("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(*fd >= 0);
    assert_int_equal(ftruncate(*fd, (off_t)size), 0);
    if (seals != 0)
        assert_int_equal(fcntl(*fd, F_ADD_SEALS, seals), 0);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

/*
 * A memfd whose seal list is still open must be sealed against shrinking
 * before DMA_MAP: without F_SEAL_SHRINK it is refused with EINVAL and a
 * warning. QEMU's memory-backend-memfd (seal=on: grow, shrink and the
 * list sealed) and files that cannot be sealed at all (seal=off memfds,
 * tmpfs files: F_SEAL_SEAL from the start) are accepted.
 */
static void
test_dma_map_seals(void **state)
{
    static const struct {
        unsigned int seals;
        int rc;
    } cases[] = {
        { 0, -EINVAL },
        { F_SEAL_GROW, -EINVAL },
        { F_SEAL_SHRINK, 0 },
        { F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL, 0 }, /* QEMU seal=on */
        { F_SEAL_SEAL, 0 }, /* cannot be sealed: like QEMU's seal=off */
    };
    struct umdev_client *c = harness_connect(&H, NULL);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd, w0 = atomic_load(&H.server_log.warnings);
        uint8_t *mem = sealed_mem(4 * PG, cases[i].seals, &fd);

        assert_int_equal(
            umdev_client_dma_map(c, iova(0), 4 * PG, mem, fd, 0, RW),
            cases[i].rc);
        assert_int_equal(atomic_load(&H.server_log.warnings),
                         w0 + (cases[i].rc < 0));
        assert_int_equal(harness_sample(&H).dma_count, cases[i].rc == 0);
        if (cases[i].rc == 0)
            assert_int_equal(umdev_client_dma_unmap(c, iova(0), 4 * PG), 0);
        guest_mem_free(mem, 4 * PG, fd);
    }
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(c);
}

/*
 * A client that cuts the file behind a mapping after DMA_MAP (a memfd
 * that cannot be sealed, as QEMU's seal=off makes, so the map was
 * accepted): the device's copy into the lost pages ends with EFAULT in
 * DMA_STATUS instead of a SIGBUS that ends the server, and the pages
 * still there keep working.
 */
static void
test_dma_into_shrunk_file(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t *mem;
    int fd;

    (void)state;
    /* cmocka sets its own SIGBUS handler per test. */
    assert_int_equal(umdev_fault_guard_init(), 0);
    mem = sealed_mem(4 * PG, F_SEAL_SEAL, &fd);
    memset(mem, 0x5a, PG);
    assert_int_equal(umdev_client_dma_map(c, MAP_BASE, 4 * PG, mem, fd, 0, RW),
                     0);
    assert_int_equal(ftruncate(fd, PG), 0);
    assert_int_equal(dma_cmd(c, MAP_BASE + 2 * PG, 64, TESTDEV_DMA_INVERT),
                     EFAULT);
    assert_int_equal(dma_cmd(c, MAP_BASE + PG - 32, 64, TESTDEV_DMA_INVERT),
                     EFAULT);
    assert_int_equal(dma_cmd(c, MAP_BASE, 64, TESTDEV_DMA_INVERT), 0);
    assert_int_equal(mem[0], 0xa5);
    assert_int_equal(mem[63], 0xa5);
    assert_int_equal(mem[64], 0x5a);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    assert_int_equal(umdev_client_dma_unmap(c, MAP_BASE, 4 * PG), 0);
    umdev_client_destroy(c);
    guest_mem_free(mem, 4 * PG, fd);
}

static void
test_dma_1000_regions(void **state)
{
    static const size_t used[] = { 0, 1, 499, 998, 999 };
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t page[PG], back[PG];
    uint8_t *mem;
    size_t i, k;
    int fd, fds0, maps0;

    (void)state;
    mem = guest_mem(NMAPS * PG, &fd);
    fds0 = kit_open_fds();
    maps0 = count_guest_maps();
    for (i = 0; i < NMAPS; i++)
        assert_int_equal(
            umdev_client_dma_map(c, iova(i), PG, mem + i * PG, fd, i * PG, RW),
            0);
    assert_int_equal(harness_sample(&H).dma_count, NMAPS);
    /* The server mapped the pages and kept one descriptor for their one
     * file (a handover passes it on), not one per mapping. */
    assert_int_equal(kit_open_fds(), fds0 + 1);
    assert_true(count_guest_maps() > maps0);

    for (k = 0; k < sizeof(used) / sizeof(used[0]); k++) {
        i = used[k];
        /* Guest -> device. */
        kit_fill_rand(mem + i * PG, PG, (uint32_t)(1000 + i));
        assert_int_equal(dma_cmd(c, iova(i), PG, TESTDEV_DMA_TO_DEVICE), 0);
        assert_int_equal(umdev_client_region_read(c, BAR2, 0, back, PG), 0);
        assert_memory_equal(back, mem + i * PG, PG);
        /* Device -> guest, at an offset inside the page. */
        kit_fill_rand(page, 256, (uint32_t)(2000 + i));
        assert_int_equal(umdev_client_region_write(c, BAR2, 0, page, 256), 0);
        assert_int_equal(
            dma_cmd(c, iova(i) + 512, 256, TESTDEV_DMA_FROM_DEVICE), 0);
        assert_memory_equal(mem + i * PG + 512, page, 256);
    }
    /* The holes between mappings fault, also when a transfer would run
     * from a mapping into one. */
    assert_int_equal(dma_cmd(c, iova(0) + PG, 64, TESTDEV_DMA_TO_DEVICE),
                     EFAULT);
    assert_int_equal(dma_cmd(c, iova(0) + PG - 64, 128, TESTDEV_DMA_TO_DEVICE),
                     EFAULT);

    /* Refused maps and unmaps change nothing. */
    assert_int_equal(umdev_client_dma_map(c, iova(5), PG, mem, fd, 0, RW),
                     -EEXIST);
    assert_int_equal(
        umdev_client_dma_map(c, iova(5) - PG, 2 * PG, mem, fd, 0, RW), -EEXIST);
    assert_int_equal(
        umdev_client_dma_map(c, iova(5) - PG, 3 * PG, mem, fd, 0, RW), -EEXIST);
    assert_int_equal(umdev_client_dma_map(c, iova(5), PG, mem, -1, 0, RW),
                     -EEXIST);
    assert_int_equal(
        umdev_client_dma_map(c, iova(NMAPS) + 0x100, PG, mem, fd, 0, RW),
        -EINVAL);
    assert_int_equal(
        umdev_client_dma_map(c, iova(NMAPS), PG + 1, mem, fd, 0, RW), -EINVAL);
    assert_int_equal(umdev_client_dma_unmap(c, iova(0) + PG, PG), -ENOENT);
    assert_int_equal(umdev_client_dma_unmap(c, iova(0), 2 * PG), -ENOENT);
    assert_int_equal(umdev_client_dma_unmap(c, 0x7000000000ull, PG), -ENOENT);
    assert_int_equal(harness_sample(&H).dma_count, NMAPS);

    /* Unmap every one individually, odd ones first. */
    for (k = 0; k < 2; k++)
        for (i = k == 0 ? 1 : 0; i < NMAPS; i += 2)
            assert_int_equal(umdev_client_dma_unmap(c, iova(i), PG), 0);
    assert_int_equal(harness_sample(&H).dma_count, 0);
    /* ...and unmapped every page again. */
    assert_int_equal(count_guest_maps(), maps0);
    assert_int_equal(umdev_client_dma_unmap(c, iova(0), PG), -ENOENT);
    assert_int_equal(dma_cmd(c, iova(0), 64, TESTDEV_DMA_TO_DEVICE), EFAULT);

    /* UNMAP_ALL, with and without fds. */
    for (i = 0; i < 10; i++)
        assert_int_equal(umdev_client_dma_map(c, iova(i), PG, mem + i * PG,
                                              i % 2 ? fd : -1, i * PG, RW),
                         0);
    assert_int_equal(harness_sample(&H).dma_count, 10);
    assert_int_equal(umdev_client_dma_unmap_all(c), 0);
    assert_int_equal(harness_sample(&H).dma_count, 0);
    assert_int_equal(dma_cmd(c, iova(1), 64, TESTDEV_DMA_TO_DEVICE), EFAULT);
    assert_int_equal(kit_open_fds(), fds0);
    assert_int_equal(count_guest_maps(), maps0);
    guest_mem_free(mem, NMAPS * PG, fd);
    umdev_client_destroy(c);
}

static uint64_t
server_dma_bytes(void)
{
    struct harness_state s;

    harness_get_state(&H, &s);
    return s.stats.dma_bytes;
}

/* DMA to memory mapped without an fd goes over the socket. */
/*
 * The max_dma_maps the server advertises is the limit it enforces: that
 * many mappings (each with an fd: an mmap in the server) succeed, one
 * more is ENOSPC, and the connection keeps working.
 */
static void
test_dma_maps_at_limit(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    uint32_t max = umdev_client_caps(c)->max_dma_maps, i;
    uint8_t *mem;
    int fd;

    (void)state;
    assert_int_equal(max, UMDEV_DEFAULT_MAX_DMA_MAPS);
    mem = guest_mem(PG, &fd);
    for (i = 0; i < max; i++)
        assert_int_equal(umdev_client_dma_map(c, iova(i), PG, mem, fd, 0, RW),
                         0);
    assert_int_equal(umdev_client_dma_map(c, iova(max), PG, mem, fd, 0, RW),
                     -ENOSPC);
    assert_int_equal(harness_sample(&H).dma_count, max);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    /* A slot freed is a slot again. */
    assert_int_equal(umdev_client_dma_unmap(c, iova(0), PG), 0);
    assert_int_equal(umdev_client_dma_map(c, iova(max), PG, mem, fd, 0, RW), 0);
    umdev_client_destroy(c);
    harness_wait_detached(&H);
    assert_int_equal(harness_sample(&H).dma_count, 0);
    guest_mem_free(mem, PG, fd);
}

static void
test_dma_message_fallback(void **state)
{
    const size_t size = TESTDEV_BAR2_SIZE;
    static uint8_t pat[TESTDEV_BAR2_SIZE], back[TESTDEV_BAR2_SIZE];
    struct umdev_client *c = harness_connect(&H, NULL);
    struct dma_run r;
    const uint64_t base = 0x40000000;
    uint64_t bytes0;
    uint8_t *mem;
    size_t i;
    int fd;

    (void)state;
    mem = guest_mem(size, &fd);
    assert_int_equal(umdev_client_dma_map(c, base, size, mem, -1, 0, RW), 0);
    bytes0 = server_dma_bytes();

    /* TO_DEVICE: guest -> BAR2, one DMA_READ message. */
    kit_fill_rand(mem, size, 41);
    r = dma_run(c, base, (uint32_t)size, TESTDEV_DMA_TO_DEVICE);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.reads, 1);
    assert_int_equal(r.writes, 0);
    bar2_rw(c, 0, back, size, false);
    assert_memory_equal(back, mem, size);

    /* FROM_DEVICE: BAR2 -> guest, one DMA_WRITE message. */
    kit_fill_rand(pat, size, 42);
    bar2_rw(c, 0, pat, size, true);
    memset(mem, 0, size);
    r = dma_run(c, base, (uint32_t)size, TESTDEV_DMA_FROM_DEVICE);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.writes, 1);
    assert_int_equal(r.reads, 0);
    assert_memory_equal(mem, pat, size);

    /* INVERT: read and write back by message. */
    r = dma_run(c, base, (uint32_t)size, TESTDEV_DMA_INVERT);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.reads, 1);
    assert_int_equal(r.writes, 1);
    for (i = 0; i < size; i++)
        if ((uint8_t)(mem[i] ^ pat[i]) != 0xff)
            fail_msg("byte %zu: 0x%02x is not ~0x%02x", i, mem[i], pat[i]);
    assert_int_equal(server_dma_bytes() - bytes0, 4 * size);

    /* Outside the mapping: a fault and no message; running off its end:
     * a fault. */
    r = dma_run(c, base + size, 32, TESTDEV_DMA_TO_DEVICE);
    assert_int_equal(r.status, EFAULT);
    assert_int_equal(r.reads, 0);
    assert_int_equal(dma_cmd(c, base + size - 16, 32, TESTDEV_DMA_TO_DEVICE),
                     EFAULT);
    assert_int_equal(umdev_client_dma_unmap(c, base, size), 0);
    guest_mem_free(mem, size, fd);
    umdev_client_destroy(c);
}

/* One transfer across two adjacent mappings, one with an fd and one
 * without, in both orders and both directions. */
static void
span(struct umdev_client *c, uint64_t base, bool fd_first)
{
    const size_t size = 16 * PG, half = 2048;
    struct dma_run r;
    uint8_t *lo, *hi, pat[PG], back[PG];
    int lo_fd, hi_fd;

    lo = guest_mem(size, &lo_fd);
    hi = guest_mem(size, &hi_fd);
    assert_int_equal(
        umdev_client_dma_map(c, base, size, lo, fd_first ? lo_fd : -1, 0, RW),
        0);
    assert_int_equal(umdev_client_dma_map(c, base + size, size, hi,
                                          fd_first ? -1 : hi_fd, 0, RW),
                     0);
    kit_fill_rand(lo + size - half, half, 51);
    kit_fill_rand(hi, half, 52);
    r = dma_run(c, base + size - half, 2 * half, TESTDEV_DMA_TO_DEVICE);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.reads, 1);
    assert_int_equal(umdev_client_region_read(c, BAR2, 0, back, 2 * half), 0);
    assert_memory_equal(back, lo + size - half, half);
    assert_memory_equal(back + half, hi, half);

    kit_fill_rand(pat, 2 * half, 53);
    assert_int_equal(umdev_client_region_write(c, BAR2, 0, pat, 2 * half), 0);
    memset(lo + size - half, 0, half);
    memset(hi, 0, half);
    r = dma_run(c, base + size - half, 2 * half, TESTDEV_DMA_FROM_DEVICE);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.writes, 1);
    assert_memory_equal(lo + size - half, pat, half);
    assert_memory_equal(hi, pat + half, half);

    assert_int_equal(umdev_client_dma_unmap(c, base, size), 0);
    assert_int_equal(umdev_client_dma_unmap(c, base + size, size), 0);
    guest_mem_free(lo, size, lo_fd);
    guest_mem_free(hi, size, hi_fd);
}

static void
test_dma_spanning_mappings(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);

    (void)state;
    span(c, 0x50000000, true);
    span(c, 0x60000000, false);
    assert_int_equal(harness_sample(&H).dma_count, 0);
    umdev_client_destroy(c);
}

/* ---- DMA by message never holds up the client's commands ---------------- */

#define MSG_IOVA 0x300000u

/* A 4- or 8-byte register write over a raw socket; its reply is the
 * caller's to read. */
static void
raw_reg_wr(int fd, uint16_t id, uint64_t off, uint64_t v, uint32_t n)
{
    struct vfio_user_region_access a = { off, UMDEV_PCI_BAR0_REGION, n };
    uint8_t buf[sizeof(a) + 8];

    memcpy(buf, &a, sizeof(a));
    memcpy(buf + sizeof(a), &v, n);
    raw_send(fd, id, VFIO_USER_REGION_WRITE, 0, buf, sizeof(a) + n, NULL, 0);
}

/* Read a 4-byte register and expect its reply now. */
static uint32_t
raw_reg_rd32(int fd, uint16_t id, uint64_t off)
{
    struct vfio_user_region_access a = { off, UMDEV_PCI_BAR0_REGION, 4 };
    uint8_t buf[64];
    uint32_t v;

    raw_send(fd, id, VFIO_USER_REGION_READ, 0, &a, sizeof(a), NULL, 0);
    assert_int_equal(
        raw_expect_reply(fd, id, VFIO_USER_REGION_READ, buf, sizeof(buf)),
        16 + sizeof(a) + 4);
    memcpy(&v, buf + 16 + sizeof(a), 4);
    return v;
}

/* Receive the device's DMA request (no reply may come first). */
static struct vfio_user_dma_access
expect_dma_request(int fd, uint16_t cmd, struct vfio_user_header *h,
                   uint8_t *data, size_t cap)
{
    uint8_t buf[16 + 16 + 4096];
    struct vfio_user_dma_access a;
    long n = raw_recv(fd, buf, sizeof(buf), HARNESS_TIMEOUT_MS, NULL, NULL);

    assert_true(n >= 32);
    memcpy(h, buf, sizeof(*h));
    assert_int_equal(h->flags, VFIO_USER_F_TYPE_COMMAND);
    assert_int_equal(h->cmd, cmd);
    memcpy(&a, buf + 16, sizeof(a));
    if (cmd == VFIO_USER_DMA_WRITE) {
        assert_int_equal(n, 32 + a.count);
        assert_true(a.count <= cap);
        memcpy(data, buf + 32, a.count);
    } else {
        assert_int_equal(n, 32);
    }
    return a;
}

/*
 * QEMU serves DMA_READ/DMA_WRITE only between its own requests, so a
 * server that waits for that answer before replying to the guest's status
 * read deadlocks both. The device's request stays unanswered here while
 * the status read, and a flood of other commands, are answered at once;
 * the status reads busy until the answer comes; a DMA command written
 * while busy is ignored; a reset drops the late answer; a client leaving
 * mid-DMA ends it with ECONNRESET.
 */
static void
test_dma_message_answers_commands_meanwhile(void **state)
{
    struct vfio_user_dma_map map = { sizeof(map), 3, 0, MSG_IOVA, PG };
    struct vfio_user_region_access sa = { TESTDEV_REG_SCRATCH,
                                          UMDEV_PCI_BAR0_REGION, 4 };
    uint8_t guest[64], out[64], reply[256];
    struct vfio_user_dma_access a, w;
    struct vfio_user_header rq, wq;
    uint16_t id = 10;
    int fd, round, i;

    (void)state;
    fd = harness_raw_socket(&H);
    raw_negotiate(fd, 1);
    raw_send(fd, 2, VFIO_USER_DMA_MAP, 0, &map, sizeof(map), NULL, 0);
    raw_expect_reply(fd, 2, VFIO_USER_DMA_MAP, reply, sizeof(reply));
    raw_reg_wr(fd, 3, TESTDEV_REG_DMA_ADDR, MSG_IOVA + 8, 8);
    raw_expect_reply(fd, 3, VFIO_USER_REGION_WRITE, reply, sizeof(reply));
    raw_reg_wr(fd, 4, TESTDEV_REG_DMA_LEN, sizeof(guest), 4);
    raw_expect_reply(fd, 4, VFIO_USER_REGION_WRITE, reply, sizeof(reply));

    /* INVERT: the device asks for the bytes, then acknowledges the write
     * that started it. */
    raw_reg_wr(fd, 5, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_INVERT, 4);
    a = expect_dma_request(fd, VFIO_USER_DMA_READ, &rq, NULL, 0);
    assert_int_equal(a.addr, MSG_IOVA + 8);
    assert_int_equal(a.count, sizeof(guest));
    raw_expect_reply(fd, 5, VFIO_USER_REGION_WRITE, reply, sizeof(reply));

    /* Unanswered: the status read is answered now, and says busy. */
    assert_int_equal(raw_reg_rd32(fd, 6, TESTDEV_REG_DMA_STATUS),
                     TESTDEV_DMA_BUSY);
    /* So is everything else, pipelined, in order, with nothing queued. */
    for (round = 0; round < 20; round++) {
        for (i = 0; i < 200; i++)
            raw_send(fd, (uint16_t)(id + i), VFIO_USER_REGION_READ, 0, &sa,
                     sizeof(sa), NULL, 0);
        for (i = 0; i < 200; i++)
            raw_expect_reply(fd, (uint16_t)(id + i), VFIO_USER_REGION_READ,
                             reply, sizeof(reply));
        id = (uint16_t)(id + 200);
    }
    assert_int_equal(harness_sample(&H).dma_pending, 1);
    /* One engine: a second command while busy is ignored. */
    raw_reg_wr(fd, 7, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_FROM_DEVICE, 4);
    raw_expect_reply(fd, 7, VFIO_USER_REGION_WRITE, reply, sizeof(reply));

    /* The answer comes: the inverted bytes go back by DMA_WRITE. */
    for (i = 0; i < (int)sizeof(guest); i++)
        guest[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(kit_peer_send(fd, rq.msg_id, VFIO_USER_DMA_READ,
                                   VFIO_USER_F_TYPE_REPLY, &a, sizeof(a), guest,
                                   sizeof(guest), NULL, 0),
                     0);
    w = expect_dma_request(fd, VFIO_USER_DMA_WRITE, &wq, out, sizeof(out));
    assert_int_equal(w.addr, MSG_IOVA + 8);
    assert_int_equal(w.count, sizeof(guest));
    assert_int_not_equal(wq.msg_id, rq.msg_id);
    for (i = 0; i < (int)sizeof(guest); i++)
        assert_int_equal(out[i], (uint8_t)~guest[i]);
    assert_int_equal(raw_reg_rd32(fd, 8, TESTDEV_REG_DMA_STATUS),
                     TESTDEV_DMA_BUSY);
    assert_int_equal(kit_peer_send(fd, wq.msg_id, VFIO_USER_DMA_WRITE,
                                   VFIO_USER_F_TYPE_REPLY, &w, sizeof(w), NULL,
                                   0, NULL, 0),
                     0);
    assert_int_equal(raw_reg_rd32(fd, 9, TESTDEV_REG_DMA_STATUS), 0);
    assert_int_equal(harness_sample(&H).dma_pending, 0);
    raw_expect_quiet(fd);

    /* A reset while the device waits: the late answer is dropped (and
     * BAR2, which it was for, stays as the reset left it). */
    raw_reg_wr(fd, 11, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_TO_DEVICE, 4);
    a = expect_dma_request(fd, VFIO_USER_DMA_READ, &rq, NULL, 0);
    raw_expect_reply(fd, 11, VFIO_USER_REGION_WRITE, reply, sizeof(reply));
    raw_send(fd, 12, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
    raw_expect_reply(fd, 12, VFIO_USER_DEVICE_RESET, reply, sizeof(reply));
    assert_int_equal(raw_reg_rd32(fd, 13, TESTDEV_REG_DMA_STATUS), 0);
    memset(guest, 0xa5, sizeof(guest));
    assert_int_equal(kit_peer_send(fd, rq.msg_id, VFIO_USER_DMA_READ,
                                   VFIO_USER_F_TYPE_REPLY, &a, sizeof(a), guest,
                                   sizeof(guest), NULL, 0),
                     0);
    assert_int_equal(raw_reg_rd32(fd, 14, TESTDEV_REG_DMA_STATUS), 0);
    {
        struct vfio_user_region_access b = { 0, UMDEV_PCI_BAR2_REGION, 64 };

        raw_send(fd, 18, VFIO_USER_REGION_READ, 0, &b, sizeof(b), NULL, 0);
        raw_expect_reply(fd, 18, VFIO_USER_REGION_READ, reply, sizeof(reply));
        for (i = 0; i < 64; i++)
            assert_int_equal(reply[16 + sizeof(b) + i], 0);
    }
    assert_int_equal(harness_sample(&H).dma_pending, 0);
    assert_int_equal(harness_sample(&H).stats.errors, 0);

    /* The client leaves mid-DMA: the command ends with ECONNRESET. The
     * reset cleared DMA_ADDR and DMA_LEN. */
    raw_reg_wr(fd, 15, TESTDEV_REG_DMA_ADDR, MSG_IOVA, 8);
    raw_expect_reply(fd, 15, VFIO_USER_REGION_WRITE, reply, sizeof(reply));
    raw_reg_wr(fd, 17, TESTDEV_REG_DMA_LEN, sizeof(guest), 4);
    raw_expect_reply(fd, 17, VFIO_USER_REGION_WRITE, reply, sizeof(reply));
    raw_reg_wr(fd, 16, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_TO_DEVICE, 4);
    expect_dma_request(fd, VFIO_USER_DMA_READ, &rq, NULL, 0);
    raw_expect_reply(fd, 16, VFIO_USER_REGION_WRITE, reply, sizeof(reply));
    close(fd);
    harness_wait_detached(&H);
    assert_int_equal(harness_sample(&H).dma_pending, 0);
    {
        struct umdev_client *c = harness_connect(&H, NULL);

        assert_int_equal(reg_rd32(c, TESTDEV_REG_DMA_STATUS), ECONNRESET);
        umdev_client_destroy(c);
    }
}

/* The server splits message DMA by the client's max_data_xfer_size. */
static void
test_dma_split_by_client_limit(void **state)
{
    const size_t size = TESTDEV_BAR2_SIZE;
    struct umdev_client_opts o = { .max_data_xfer_size = PG };
    static uint8_t back[TESTDEV_BAR2_SIZE];
    struct umdev_client *c = harness_connect(&H, &o);
    struct dma_run r;
    uint8_t *mem;
    int fd;

    (void)state;
    mem = guest_mem(size, &fd);
    assert_int_equal(umdev_client_dma_map(c, 0x1000000, size, mem, -1, 0, RW),
                     0);
    kit_fill_rand(mem, size, 61);
    r = dma_run(c, 0x1000000, (uint32_t)size, TESTDEV_DMA_INVERT);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.reads, size / PG);
    assert_int_equal(r.writes, size / PG);
    assert_int_equal(
        dma_cmd(c, 0x1000000, (uint32_t)size, TESTDEV_DMA_TO_DEVICE), 0);
    bar2_rw(c, 0, back, size, false);
    assert_memory_equal(back, mem, size);
    guest_mem_free(mem, size, fd);
    umdev_client_destroy(c);
}

/* The test device's registers that a reset must bring back. */
struct reg_value {
    const char *name;
    uint32_t off;
    size_t width; /* 4 or 8 */
    uint64_t value;
};

static const struct reg_value power_on[] = {
    { "ID", TESTDEV_REG_ID, 4, TESTDEV_ID_VALUE },
    { "SCRATCH", TESTDEV_REG_SCRATCH, 4, 0 },
    { "SCRATCH64", TESTDEV_REG_SCRATCH64, 8, 0 },
    { "DMA_ADDR", TESTDEV_REG_DMA_ADDR, 8, 0 },
    { "DMA_LEN", TESTDEV_REG_DMA_LEN, 4, 0 },
    { "DMA_STATUS", TESTDEV_REG_DMA_STATUS, 4, 0 },
    { "IRQ_LEVEL", TESTDEV_REG_IRQ_LEVEL, 4, 0 },
    { "IRQ_RAISED", TESTDEV_REG_IRQ_RAISED, 4, 0 },
};

/*
 * DEVICE_RESET: registers, the scratch array, BAR2 and config space back
 * to power-on, the reset counter up by one; DMA mappings and IRQ eventfds
 * stay (VFIO semantics: a reset is not a disconnect).
 */
static void
test_reset(void **state)
{
    static uint8_t zero[TESTDEV_BAR2_SIZE], back[TESTDEV_BAR2_SIZE];
    struct umdev_client *c = harness_connect(&H, NULL);
    const uint64_t base = 0x80000000;
    int efd = efd_new(), intx = efd_new(), fd, fds0;
    uint8_t arr[TESTDEV_SCRATCH_ARRAY_SIZE];
    struct harness_state s;
    uint16_t cmd;
    uint32_t resets;
    uint8_t *mem, *map;
    void *p;
    size_t len, i;

    (void)state;
    mem = guest_mem(PG, &fd);
    assert_int_equal(umdev_client_dma_map(c, base, PG, mem, fd, 0, RW), 0);
    irq_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, 0, efd);
    irq_trigger(c, VFIO_PCI_INTX_IRQ_INDEX, 0, intx);
    assert_int_equal(umdev_client_region_mmap(c, BAR2, 0, &p, &len), 0);
    map = p;
    /* Dirty everything. */
    reg_wr(c, TESTDEV_REG_SCRATCH, 0xabcd, 4);
    reg_wr(c, TESTDEV_REG_SCRATCH64, 0x1234567890ull, 8);
    kit_fill_rand(arr, sizeof(arr), 71);
    assert_int_equal(umdev_client_region_write(c, BAR0, TESTDEV_SCRATCH_ARRAY,
                                               arr, sizeof(arr)),
                     0);
    kit_fill_rand(back, sizeof(back), 72);
    assert_int_equal(umdev_client_region_write(c, BAR2, 0, back, sizeof(back)),
                     0);
    assert_int_equal(dma_cmd(c, 0x10, 64, TESTDEV_DMA_TO_DEVICE), EFAULT);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(intx, HARNESS_TIMEOUT_MS), 1);
    cfg_set_command(c, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    resets = reg_rd32(c, TESTDEV_REG_RESETS);
    fds0 = kit_open_fds();

    assert_int_equal(umdev_client_reset(c), 0);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_RESETS), resets + 1);
    for (i = 0; i < sizeof(power_on) / sizeof(power_on[0]); i++) {
        const struct reg_value *r = &power_on[i];
        uint64_t v = r->width == 8 ? reg_rd64(c, r->off) : reg_rd32(c, r->off);

        if (v != r->value)
            fail_msg("%s reads %#llx after reset, not its power-on %#llx",
                     r->name, (unsigned long long)v,
                     (unsigned long long)r->value);
    }
    assert_int_equal(umdev_client_region_read(c, BAR0, TESTDEV_SCRATCH_ARRAY,
                                              arr, sizeof(arr)),
                     0);
    assert_memory_equal(arr, zero, sizeof(arr));
    assert_int_equal(umdev_client_region_read(c, BAR2, 0, back, sizeof(back)),
                     0);
    assert_memory_equal(back, zero, sizeof(back));
    assert_memory_equal(map, zero, len);
    cmd = 0xffff;
    assert_int_equal(umdev_client_region_read(c, CONFIG, PCI_COMMAND, &cmd, 2),
                     0);
    assert_int_equal(cmd, 0);

    /* Mappings and eventfds kept: no descriptor closed, DMA and IRQs
     * work without setting anything up again. */
    assert_int_equal(kit_open_fds(), fds0);
    harness_get_state(&H, &s);
    assert_true(s.attached);
    assert_int_equal(s.dma_count, 1);
    assert_true(s.irq_enabled[UMDEV_PCI_ERR_IRQ]);
    assert_true(s.irq_enabled[UMDEV_PCI_INTX_IRQ]);
    kit_fill_rand(mem, PG, 73);
    assert_int_equal(dma_cmd(c, base, PG, TESTDEV_DMA_TO_DEVICE), 0);
    assert_int_equal(umdev_client_region_read(c, BAR2, 0, back, PG), 0);
    assert_memory_equal(back, mem, PG);
    reg_wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    /* INTx: the VMM's EOI after reset, then a new assertion. */
    irq_action(c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0);
    assert_int_equal(efd_wait(intx, HARNESS_QUIET_MS), 0);
    reg_wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(intx, HARNESS_TIMEOUT_MS), 1);
    /* Each reset counts once. */
    assert_int_equal(umdev_client_reset(c), 0);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_RESETS), resets + 2);

    guest_mem_free(mem, PG, fd);
    umdev_client_destroy(c);
    close(efd);
    close(intx);
}

static const struct CMUnitTest tests[] = {
    HARNESS_TEST(test_irq_info),
    HARNESS_TEST(test_intx),
    HARNESS_TEST(test_err_and_req),
    HARNESS_TEST(test_deassign_counts_dropped),
    HARNESS_TEST(test_msix),
    HARNESS_TEST(test_irq_fd_not_eventfd),
    HARNESS_TEST(test_irq_eventfd_full),
    HARNESS_TEST(test_fds_per_message_limit),
    HARNESS_TEST(test_dma_map_beyond_file),
    HARNESS_TEST(test_dma_map_seals),
    HARNESS_TEST(test_dma_into_shrunk_file),
    HARNESS_TEST(test_dma_1000_regions),
    HARNESS_TEST(test_dma_maps_at_limit),
    HARNESS_TEST(test_dma_message_fallback),
    HARNESS_TEST(test_dma_spanning_mappings),
    HARNESS_TEST(test_dma_split_by_client_limit),
    HARNESS_TEST(test_dma_message_answers_commands_meanwhile),
    HARNESS_TEST(test_reset),
};

HARNESS_MAIN("func.dma_irq", tests)
