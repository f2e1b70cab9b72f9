/*
 * Handover of a live client between processes (docs/PROTOCOL.md
 * "Handover"): the test device is served by umdev-handover-server, which
 * on command hands its connection to a new process started by exec; the
 * client here never reconnects. Every reply, posted write, interrupt and
 * DMA through the client's mappings must survive each handover, and
 * requests sent while one runs are answered, in order, by the new
 * process. Damaged packages are refused and the old process serves on.
 * Prints the blackout: from the handover command to the reply to the
 * first request sent once the old process has stopped the device (so
 * that the new process is the one answering it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define IOVA 0x100000ull
#define MEM_SIZE (1u << 20)
#define ROUNDS 4

struct server {
    char dir[64];
    char path[96];
    int ctl;
    pid_t pid; /* the first process, and the group of them all */
};

/* The servers of the running test. */
static struct server S;

static void
server_start(struct server *s, const char *fault)
{
    const struct umdev_listen_opts lo = {
        .mode = 0600, .uid = (uid_t)-1, .gid = (gid_t)-1, .backlog = 4
    };
    char lfd[16], cfd[16];
    int sp[2], fd;

    strcpy(s->dir, "/tmp/umdev-handover-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof(s->path), "%s/sock", s->dir);
    fd = umdev_listen_unix(-1, s->path, &lo);
    assert_true(fd >= 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        /* Its own group, which the processes it hands over to share:
         * the teardown ends them all if a test failed midway. */
        setpgid(0, 0);
        snprintf(lfd, sizeof(lfd), "%d", fd);
        snprintf(cfd, sizeof(cfd), "%d", sp[1]);
        close(sp[0]);
        /* Made close-on-exec by umdev_listen_unix(). */
        fcntl(fd, F_SETFD, 0);
        execl(HANDOVER_SERVER, HANDOVER_SERVER, "serve", lfd, cfd, fault,
              (char *)NULL);
        _exit(127);
    }
    close(fd);
    close(sp[1]);
    s->ctl = sp[0];
}

/* The server's answer to a command, within 30 s. */
static char
ctl_wait(struct server *s)
{
    struct pollfd p = { .fd = s->ctl, .events = POLLIN };
    char c = 0;

    assert_int_equal(poll(&p, 1, 30000), 1);
    assert_int_equal(read(s->ctl, &c, 1), 1);
    return c;
}

/* Reap every server process (this test is their subreaper) within
 * 10 s. Return: true if all ended with status 0. */
static bool
reap_all(void)
{
    bool clean = true;
    pid_t pid;
    int st;

    for (int i = 0; i < 1000; i++) {
        pid = waitpid(-1, &st, WNOHANG);
        if (pid < 0)
            return clean;
        if (pid > 0)
            clean &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
        else
            usleep(10 * 1000);
    }
    return false;
}

static void
server_stop(struct server *s)
{
    char q = 'Q';

    assert_int_equal(write(s->ctl, &q, 1), 1);
    close(s->ctl);
    s->ctl = -1;
    assert_true(reap_all());
    unlink(s->path);
    rmdir(s->dir);
    s->pid = 0;
}

/* After a test: whatever a failed one left running is ended. */
static int
teardown(void **state)
{
    (void)state;
    if (S.pid > 0) {
        if (S.ctl >= 0)
            close(S.ctl);
        kill(-S.pid, SIGKILL);
        reap_all();
        unlink(S.path);
        rmdir(S.dir);
        S.pid = 0;
    }
    return 0;
}

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct rig {
    struct umdev_client *c;
    uint8_t *mem;
    int memfd;
    int msix[TESTDEV_MSIX_VECTORS];
};

static void
rig_setup(struct rig *r, struct server *s, bool msix)
{
    assert_int_equal(umdev_client_connect(s->path, NULL, &r->c), 0);
    cfg_set_command(r->c, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    r->mem = guest_mem(MEM_SIZE, &r->memfd);
    assert_int_equal(umdev_client_dma_map(r->c, IOVA, MEM_SIZE, r->mem,
                                          r->memfd, 0,
                                          VFIO_USER_DMA_MAP_FLAG_READ |
                                              VFIO_USER_DMA_MAP_FLAG_WRITE),
                     0);
    for (int i = 0; i < TESTDEV_MSIX_VECTORS; i++)
        r->msix[i] = -1;
    if (!msix)
        return;
    cfg_enable_msix(r->c);
    for (int i = 0; i < TESTDEV_MSIX_VECTORS; i++) {
        r->msix[i] = efd_new();
        irq_trigger(r->c, UMDEV_PCI_MSIX_IRQ, i, r->msix[i]);
    }
}

static void
rig_free(struct rig *r)
{
    umdev_client_destroy(r->c);
    guest_mem_free(r->mem, MEM_SIZE, r->memfd);
    for (int i = 0; i < TESTDEV_MSIX_VECTORS; i++)
        if (r->msix[i] >= 0)
            close(r->msix[i]);
}

static void
posted(struct rig *r, uint64_t off, uint32_t v)
{
    assert_int_equal(umdev_client_region_write_posted(
                         r->c, UMDEV_PCI_BAR0_REGION, off, &v, sizeof(v)),
                     0);
}

/* A DMA through the client's mapping both ways, checked byte for byte:
 * guest -> BAR2 -> inverted back into another part of guest memory. */
static void
dma_check(struct rig *r, uint32_t seed)
{
    const uint32_t len = 8192;
    uint8_t *src = r->mem + 0x1000, *dst = r->mem + 0x40000;

    for (uint32_t i = 0; i < len; i++)
        src[i] = (uint8_t)(seed * 131 + i * 7);
    reg_wr(r->c, TESTDEV_REG_DMA_ADDR, IOVA + 0x1000, 8);
    reg_wr(r->c, TESTDEV_REG_DMA_LEN, len, 4);
    reg_wr(r->c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_TO_DEVICE, 4);
    assert_int_equal(dma_status_wait(r->c), 0);
    memset(dst, 0, len);
    reg_wr(r->c, TESTDEV_REG_DMA_ADDR, IOVA + 0x40000, 8);
    reg_wr(r->c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_FROM_DEVICE, 4);
    assert_int_equal(dma_status_wait(r->c), 0);
    reg_wr(r->c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_INVERT, 4);
    assert_int_equal(dma_status_wait(r->c), 0);
    for (uint32_t i = 0; i < len; i++)
        assert_int_equal(dst[i], (uint8_t)~src[i]);
}

static void
msix_check(struct rig *r)
{
    for (uint32_t v = 0; v < TESTDEV_MSIX_VECTORS; v++) {
        reg_wr(r->c, TESTDEV_REG_MSIX_TRIGGER, v, 4);
        assert_int_equal(efd_wait(r->msix[v], HARNESS_TIMEOUT_MS), 1);
    }
}

/* Several handovers under traffic, each to a new exec'd process. */
static void
test_handover_live(void **state)
{
    struct server *s = &S;
    struct rig r;
    int64_t worst = 0, sum = 0;

    (void)state;
    server_start(s, NULL);
    rig_setup(&r, s, true);
    for (uint32_t round = 0; round < ROUNDS; round++) {
        char h = 'H';
        int64_t t0, t1;
        uint32_t base = round * 0x1000;

        /* Before: posted writes, a DMA, every MSI-X vector. */
        for (uint32_t i = 0; i < 16; i++)
            posted(&r, TESTDEV_SCRATCH_ARRAY + 4 * i, base + i);
        dma_check(&r, round);
        msix_check(&r);

        /* During: the command, posted writes racing it, then (once the
         * device is stopped: 'S') requests that wait in the socket for
         * the new process: posted writes, then a read that must see
         * them (in order: the last write to SCRATCH wins). */
        t0 = now_us();
        assert_int_equal(write(s->ctl, &h, 1), 1);
        for (uint32_t i = 0; i < 8; i++)
            posted(&r, TESTDEV_SCRATCH_ARRAY + 0x40 + 4 * i, base + 0x100 + i);
        assert_int_equal(ctl_wait(s), 'S');
        for (uint32_t i = 8; i < 16; i++)
            posted(&r, TESTDEV_SCRATCH_ARRAY + 0x40 + 4 * i, base + 0x100 + i);
        posted(&r, TESTDEV_REG_SCRATCH, base + 1);
        posted(&r, TESTDEV_REG_SCRATCH, base + 2);
        assert_int_equal(reg_rd32(r.c, TESTDEV_REG_SCRATCH), base + 2);
        t1 = now_us();
        assert_int_equal(ctl_wait(s), 'C');
        sum += t1 - t0;
        if (t1 - t0 > worst)
            worst = t1 - t0;
        print_message("handover %u: blackout %.2f ms\n", round,
                      (double)(t1 - t0) / 1000.0);

        /* After: everything written before and during is there. */
        for (uint32_t i = 0; i < 16; i++) {
            assert_int_equal(reg_rd32(r.c, TESTDEV_SCRATCH_ARRAY + 4 * i),
                             base + i);
            assert_int_equal(
                reg_rd32(r.c, TESTDEV_SCRATCH_ARRAY + 0x40 + 4 * i),
                base + 0x100 + i);
        }
        assert_int_equal(reg_rd32(r.c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
        dma_check(&r, round + 100);
        msix_check(&r);
        /* No interrupt was lost or made up on the way. */
        for (uint32_t v = 0; v < TESTDEV_MSIX_VECTORS; v++)
            assert_int_equal(efd_wait(r.msix[v], 50), 0);
    }
    print_message("blackout over %d handovers: mean %.2f ms, worst %.2f ms\n",
                  ROUNDS, (double)sum / ROUNDS / 1000.0,
                  (double)worst / 1000.0);
    rig_free(&r);
    server_stop(s);
}

/*
 * INTx through a handover: a line raised (and automasked) before it, the
 * guest's EOI written to the resample eventfd while the handover runs:
 * the new process must see the EOI and, the line being still high,
 * signal again.
 */
static void
test_handover_intx(void **state)
{
    struct server *s = &S;
    struct rig r;
    int efd, resample;
    char h = 'H';
    uint64_t one = 1;

    (void)state;
    server_start(s, NULL);
    rig_setup(&r, s, false);
    efd = efd_new();
    resample = efd_new();
    irq_trigger(r.c, UMDEV_PCI_INTX_IRQ, 0, efd);
    irq_eventfd(r.c, UMDEV_PCI_INTX_IRQ, VFIO_IRQ_SET_ACTION_UNMASK, 0,
                resample);
    reg_wr(r.c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(write(s->ctl, &h, 1), 1);
    assert_int_equal(ctl_wait(s), 'S');
    assert_int_equal(write(resample, &one, sizeof(one)), sizeof(one));
    assert_int_equal(ctl_wait(s), 'C');
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    reg_wr(r.c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    assert_int_equal(reg_rd32(r.c, TESTDEV_REG_IRQ_RAISED), 1);
    close(efd);
    close(resample);
    rig_free(&r);
    server_stop(s);
}

/*
 * Half a message in the old process's receive buffer: the first part of
 * a posted write is sent and read by the old process before the
 * handover, the rest after it. The new process must complete it from
 * the package's bytes (were they lost, the stream would be out of step
 * and the connection closed; were they served twice, the value would
 * differ).
 */
static void
test_handover_partial_message(void **state)
{
    struct server *s = &S;
    struct rig r;
    struct {
        struct vfio_user_header hdr;
        struct vfio_user_region_access a;
        uint32_t v;
    } __attribute__((packed)) m = {
        .hdr = { .msg_id = 0x7000,
                 .cmd = VFIO_USER_REGION_WRITE,
                 .msg_size = sizeof(m),
                 .flags = VFIO_USER_F_TYPE_COMMAND | VFIO_USER_F_NO_REPLY },
        .a = { .offset = TESTDEV_SCRATCH_ARRAY + 0x80,
               .region = UMDEV_PCI_BAR0_REGION,
               .count = 4 },
        .v = 0xfeedbeef,
    };
    const size_t first = 20;
    char h = 'H';
    int fd;

    (void)state;
    server_start(s, NULL);
    rig_setup(&r, s, false);
    fd = umdev_client_fd(r.c);
    assert_int_equal(send(fd, &m, first, MSG_NOSIGNAL), (ssize_t)first);
    /* Let the old process read it (if it has not by the handover, the
     * bytes wait in the socket and the check below still holds). */
    usleep(100 * 1000);
    assert_int_equal(write(s->ctl, &h, 1), 1);
    assert_int_equal(ctl_wait(s), 'S');
    assert_int_equal(
        send(fd, (uint8_t *)&m + first, sizeof(m) - first, MSG_NOSIGNAL),
        (ssize_t)(sizeof(m) - first));
    assert_int_equal(ctl_wait(s), 'C');
    assert_int_equal(reg_rd32(r.c, TESTDEV_SCRATCH_ARRAY + 0x80), 0xfeedbeef);
    assert_int_equal(reg_rd32(r.c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    rig_free(&r);
    server_stop(s);
}

/* Before any client: the listening socket alone goes over, and the first
 * client is the new process's. */
static void
test_handover_no_client(void **state)
{
    struct server *s = &S;
    struct rig r;
    char h = 'H';

    (void)state;
    server_start(s, NULL);
    assert_int_equal(write(s->ctl, &h, 1), 1);
    assert_int_equal(ctl_wait(s), 'S');
    assert_int_equal(ctl_wait(s), 'C');
    rig_setup(&r, s, true);
    dma_check(&r, 9);
    msix_check(&r);
    rig_free(&r);
    server_stop(s);
}

/*
 * A handover is refused while a migration is under way (the device not
 * RUNNING) or the client logs DMA for one ('E': nothing was stopped or
 * sent); the device serves on, and once that ends the handover works.
 */
static void
test_refuse_during_migration(void **state)
{
    struct server *s = &S;
    struct rig r;
    uint32_t st = 0;
    char h = 'H';

    (void)state;
    server_start(s, NULL);
    rig_setup(&r, s, true);
    posted(&r, TESTDEV_REG_SCRATCH, 0x1234);
    assert_int_equal(
        umdev_client_mig_set_state(r.c, VFIO_USER_DEVICE_STATE_STOP, &st), 0);
    assert_int_equal(write(s->ctl, &h, 1), 1);
    assert_int_equal(ctl_wait(s), 'E');
    assert_int_equal(umdev_client_mig_state(r.c, &st), 0);
    assert_int_equal(st, VFIO_USER_DEVICE_STATE_STOP);
    assert_int_equal(
        umdev_client_mig_set_state(r.c, VFIO_USER_DEVICE_STATE_RUNNING, &st),
        0);
    assert_int_equal(umdev_client_dma_log_start(r.c, 4096, NULL, 0, NULL), 0);
    assert_int_equal(write(s->ctl, &h, 1), 1);
    assert_int_equal(ctl_wait(s), 'E');
    dma_check(&r, 5);
    msix_check(&r);
    assert_int_equal(umdev_client_dma_log_stop(r.c), 0);
    assert_int_equal(write(s->ctl, &h, 1), 1);
    assert_int_equal(ctl_wait(s), 'S');
    assert_int_equal(ctl_wait(s), 'C');
    assert_int_equal(reg_rd32(r.c, TESTDEV_REG_SCRATCH), 0x1234);
    dma_check(&r, 6);
    msix_check(&r);
    rig_free(&r);
    server_stop(s);
}

/* A damaged package: the new process refuses it, the old serves on, and
 * the next (undamaged) handover succeeds. */
static void
refused(const char *fault)
{
    struct server *s = &S;
    struct rig r;
    char h = 'H';

    server_start(s, fault);
    rig_setup(&r, s, true);
    posted(&r, TESTDEV_REG_SCRATCH, 0x5a5a);
    dma_check(&r, 1);
    assert_int_equal(write(s->ctl, &h, 1), 1);
    assert_int_equal(ctl_wait(s), 'S');
    posted(&r, TESTDEV_SCRATCH_ARRAY + 8, 0x77);
    assert_int_equal(reg_rd32(r.c, TESTDEV_REG_SCRATCH), 0x5a5a);
    assert_int_equal(ctl_wait(s), 'A');
    assert_int_equal(reg_rd32(r.c, TESTDEV_SCRATCH_ARRAY + 8), 0x77);
    dma_check(&r, 2);
    msix_check(&r);
    assert_int_equal(write(s->ctl, &h, 1), 1);
    assert_int_equal(ctl_wait(s), 'S');
    assert_int_equal(ctl_wait(s), 'C');
    assert_int_equal(reg_rd32(r.c, TESTDEV_REG_SCRATCH), 0x5a5a);
    dma_check(&r, 3);
    msix_check(&r);
    rig_free(&r);
    server_stop(s);
}

static void
test_refuse_cut(void **state)
{
    (void)state;
    refused("cut");
}

static void
test_refuse_flip(void **state)
{
    (void)state;
    refused("flip");
}

static void
test_refuse_fds(void **state)
{
    (void)state;
    refused("fds");
}

static void
test_refuse_other_type(void **state)
{
    (void)state;
    refused("other");
}

#define T(f) cmocka_unit_test_teardown(f, teardown)
static const struct CMUnitTest tests[] = {
    T(test_handover_live),
    T(test_handover_intx),
    T(test_handover_partial_message),
    T(test_refuse_cut),
    T(test_refuse_flip),
    T(test_refuse_fds),
    T(test_refuse_other_type),
    T(test_refuse_during_migration),
    T(test_handover_no_client),
};

int
main(int argc, char **argv)
{
    /* Servers handed over are orphans of the first: reap them here. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return harness_main(argc, argv, "func.handover", tests,
                        sizeof(tests) / sizeof(tests[0]));
}
