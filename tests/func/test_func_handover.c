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
 *
 * A device's own host endpoints (record HOST, umdev_dev_set_host_end_ops())
 * are tested in this process: a listening socket, a connected one and a
 * pty master go from one test device to another, the same files, and
 * every malformed HOST record, or a descriptor of another kind, is
 * refused with nothing taken.
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
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kit_cmocka.h" /* kit_open_fds() */

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

/* ---- host endpoints (record HOST), in this process ---- */

#define HOST_ENDS 3

/* What a test device's host-end hooks hold. */
struct hends {
    struct umdev_host_end e[HOST_ENDS];
    size_t n;
    int saves, restores, releases;
    int refuse; /* restore() fails with this */
};

static int
hends_save(void *opaque, struct umdev_host_end *out, size_t max)
{
    struct hends *h = opaque;

    h->saves++;
    assert_true(h->n <= max);
    memcpy(out, h->e, h->n * sizeof(*out));
    return (int)h->n;
}

static int
hends_restore(void *opaque, struct umdev_host_end *ends, size_t n)
{
    struct hends *h = opaque;

    h->restores++;
    if (h->refuse)
        return h->refuse;
    assert_true(n <= HOST_ENDS);
    for (size_t i = 0; i < n; i++) {
        h->e[i] = ends[i];
        ends[i].fd = -1; /* taken */
    }
    h->n = n;
    return 0;
}

static void
hends_release(void *opaque)
{
    struct hends *h = opaque;

    h->releases++;
    for (size_t i = 0; i < h->n; i++)
        close(h->e[i].fd);
    h->n = 0;
}

static const struct umdev_host_end_ops hends_ops = {
    .save = hends_save,
    .restore = hends_restore,
    .release = hends_release,
};

struct host_rig {
    struct umdev_loop *loop;
    struct testdev *td;
    struct umdev_server *srv;
    struct hends h;
    int peer; /* the other end of the STREAM endpoint */
};

static int
listener_new(void)
{
    const struct sockaddr_un autobind = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(
        bind(fd, (const struct sockaddr *)&autobind, sizeof(sa_family_t)), 0);
    assert_int_equal(listen(fd, 4), 0);
    return fd;
}

/* A served test device holding a listener, a connected socket and a pty
 * master as its host endpoints (tags 10, 11, 12). */
static void
host_rig_serve(struct host_rig *r)
{
    int sp[2], pty;

    memset(r, 0, sizeof(*r));
    assert_int_equal(umdev_loop_create(&r->loop), 0);
    assert_int_equal(testdev_create(NULL, &r->td), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    r->peer = sp[1];
    pty = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(pty >= 0);
    assert_int_equal(grantpt(pty), 0);
    assert_int_equal(unlockpt(pty), 0);
    r->h.e[0] =
        (struct umdev_host_end){ UMDEV_HOST_END_LISTENER, 10, listener_new() };
    r->h.e[1] = (struct umdev_host_end){ UMDEV_HOST_END_STREAM, 11, sp[0] };
    r->h.e[2] = (struct umdev_host_end){ UMDEV_HOST_END_PTY, 12, pty };
    r->h.n = HOST_ENDS;
    assert_int_equal(
        umdev_dev_set_host_end_ops(testdev_dev(r->td), &hends_ops, &r->h), 0);
    assert_int_equal(umdev_server_create_fd(testdev_dev(r->td), r->loop,
                                            listener_new(), &r->srv),
                     0);
}

/* A fresh device to restore into, with the hooks or without. */
static void
host_rig_fresh(struct host_rig *r, bool hooks)
{
    memset(r, 0, sizeof(*r));
    r->peer = -1;
    assert_int_equal(umdev_loop_create(&r->loop), 0);
    assert_int_equal(testdev_create(NULL, &r->td), 0);
    if (hooks)
        assert_int_equal(
            umdev_dev_set_host_end_ops(testdev_dev(r->td), &hends_ops, &r->h),
            0);
}

static void
host_rig_free(struct host_rig *r)
{
    umdev_server_destroy(r->srv);
    testdev_destroy(r->td);
    for (size_t i = 0; i < r->h.n; i++)
        close(r->h.e[i].fd);
    if (r->peer >= 0)
        close(r->peer);
    umdev_loop_destroy(r->loop);
}

static bool
same_file(int a, int b)
{
    struct stat sa, sb;

    assert_int_equal(fstat(a, &sa), 0);
    assert_int_equal(fstat(b, &sb), 0);
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The package's blob, copied, and where its HOST record's payload is. */
struct blob {
    uint8_t *b;
    size_t len, host; /* payload offset; 0: none */
};

static void
blob_copy(struct blob *x, const struct umdev_handover *pkg)
{
    const uint8_t *b = umdev_handover_blob(pkg, &x->len);
    size_t off = 64;

    x->b = malloc(x->len);
    assert_non_null(x->b);
    memcpy(x->b, b, x->len);
    x->host = 0;
    while (off + 16 <= x->len) {
        uint32_t kind;
        uint64_t len;

        memcpy(&kind, x->b + off, 4);
        memcpy(&len, x->b + off + 8, 8);
        if (kind == 9)
            x->host = off + 16;
        if (kind == 8)
            break;
        off += 16 + len + (8 - len % 8) % 8;
    }
}

/* FNV-1a 64 of the blob, its sum field (bytes 56-63) as zero. */
static void
blob_mend(struct blob *x)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < x->len; i++) {
        uint8_t c = i >= 56 && i < 64 ? 0 : x->b[i];

        h = (h ^ c) * 0x100000001b3ull;
    }
    memcpy(x->b + 56, &h, 8);
}

static void
put32(struct blob *x, size_t off, uint32_t v)
{
    memcpy(x->b + off, &v, 4);
}

/* Restore @x (with duplicates of @pkg's descriptors; @swap_a >= 0:
 * exchanged with @swap_b, or replaced by fd ~@swap_b if negative) into a fresh
 * device; expect @err, and when it fails, a device left as created, nothing
 * taken, no descriptor kept. */
static void
expect_restore(const struct umdev_handover *pkg, struct blob *x, bool hooks,
               int refuse, int swap_a, int swap_b, int err)
{
    struct umdev_handover *bad;
    struct host_rig r;
    const int *fds;
    size_t nfds;
    int copy[16], before;

    fds = umdev_handover_fds(pkg, &nfds);
    assert_true(nfds <= 16);
    for (size_t i = 0; i < nfds; i++)
        copy[i] = dup(fds[i]);
    if (swap_a >= 0 && swap_b >= 0) {
        int t = copy[swap_a];

        copy[swap_a] = copy[swap_b];
        copy[swap_b] = t;
    } else if (swap_a >= 0) {
        /* swap_b is ~fd: that file in swap_a's place. */
        close(copy[swap_a]);
        copy[swap_a] = dup(~swap_b);
    }
    assert_int_equal(umdev_handover_wrap(x->b, x->len, copy, nfds, &bad), 0);
    host_rig_fresh(&r, hooks);
    r.h.refuse = refuse;
    before = kit_open_fds();
    assert_int_equal(
        umdev_server_handover_restore(testdev_dev(r.td), r.loop, bad, &r.srv),
        err);
    if (err < 0) {
        assert_null(r.srv);
        assert_int_equal(r.h.n, 0);
        assert_int_equal(r.h.releases, 0);
        assert_false(umdev_dev_attached(testdev_dev(r.td)));
        assert_int_equal(umdev_dev_mig_state(testdev_dev(r.td)),
                         VFIO_USER_DEVICE_STATE_RUNNING);
        assert_int_equal(kit_open_fds(), before);
    }
    host_rig_free(&r);
    umdev_handover_free(bad);
}

/* The seed corpus of fuzz/handover_load.c (see dump() in
 * handover_server.c). */
static void
dump_host_pkg(const struct umdev_handover *pkg)
{
    const char *dir = getenv("UMDEV_HANDOVER_DUMP");
    char path[512];
    const void *blob;
    size_t len;
    FILE *f;

    if (dir == NULL)
        return;
    blob = umdev_handover_blob(pkg, &len);
    snprintf(path, sizeof(path), "%s/pkg-host-%d", dir, (int)getpid());
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(blob, 1, len, f), len);
    fclose(f);
}

static void
test_host_ends_handed_over(void **state)
{
    struct host_rig a, b;
    struct umdev_handover *pkg;
    const uint8_t *blob;
    uint32_t format;
    int held[HOST_ENDS];
    size_t len;
    char c = 0;
    unsigned int ptn_a, ptn_b;

    (void)state;
    host_rig_serve(&a);
    for (int i = 0; i < HOST_ENDS; i++)
        held[i] = a.h.e[i].fd;
    assert_int_equal(umdev_server_handover_save(a.srv, &pkg), 0);
    assert_int_equal(a.h.saves, 1);
    blob = umdev_handover_blob(pkg, &len);
    memcpy(&format, blob + 8, sizeof(format));
    assert_int_equal(format, 2); /* HOST needs format 2 */
    dump_host_pkg(pkg);

    host_rig_fresh(&b, true);
    assert_int_equal(
        umdev_server_handover_restore(testdev_dev(b.td), b.loop, pkg, &b.srv),
        0);
    assert_int_equal(b.h.restores, 1);
    assert_int_equal(b.h.n, HOST_ENDS);
    for (int i = 0; i < HOST_ENDS; i++) {
        assert_int_equal(b.h.e[i].kind, a.h.e[i].kind);
        assert_int_equal(b.h.e[i].tag, a.h.e[i].tag);
        assert_true(b.h.e[i].fd >= 0);
        assert_int_not_equal(b.h.e[i].fd, held[i]);
        assert_true(same_file(b.h.e[i].fd, held[i]));
    }
    assert_int_equal(ioctl(held[2], TIOCGPTN, &ptn_a), 0);
    assert_int_equal(ioctl(b.h.e[2].fd, TIOCGPTN, &ptn_b), 0);
    assert_int_equal(ptn_a, ptn_b);
    /* The old process lets go without a word to the peer: the
     * connection goes on with the new one. */
    umdev_server_handover_commit(a.srv);
    a.srv = NULL;
    assert_int_equal(a.h.releases, 1);
    assert_int_equal(a.h.n, 0);
    assert_int_equal(send(a.peer, "x", 1, MSG_NOSIGNAL), 1);
    assert_int_equal(recv(b.h.e[1].fd, &c, 1, MSG_DONTWAIT), 1);
    assert_int_equal(c, 'x');
    assert_int_equal(send(b.h.e[1].fd, "y", 1, MSG_NOSIGNAL), 1);
    assert_int_equal(recv(a.peer, &c, 1, MSG_DONTWAIT), 1);
    assert_int_equal(c, 'y');
    umdev_handover_free(pkg);
    host_rig_free(&a);
    /* The new process hands them over again as its own. */
    assert_int_equal(umdev_server_handover_save(b.srv, &pkg), 0);
    assert_int_equal(b.h.saves, 1);
    umdev_server_handover_commit(b.srv);
    b.srv = NULL;
    assert_int_equal(b.h.releases, 1);
    umdev_handover_free(pkg);
    host_rig_free(&b);
}

/* A package without HOST stays format 1 (older loaders read it), and a
 * device with the hooks hears of none. */
static void
test_host_ends_none(void **state)
{
    struct host_rig a, b;
    struct umdev_handover *pkg;
    const uint8_t *blob;
    struct blob x;
    uint32_t format;
    size_t len;

    (void)state;
    host_rig_serve(&a);
    for (size_t i = 0; i < a.h.n; i++)
        close(a.h.e[i].fd);
    a.h.n = 0;
    assert_int_equal(umdev_server_handover_save(a.srv, &pkg), 0);
    blob = umdev_handover_blob(pkg, &len);
    memcpy(&format, blob + 8, sizeof(format));
    assert_int_equal(format, 1);
    host_rig_fresh(&b, true);
    assert_int_equal(
        umdev_server_handover_restore(testdev_dev(b.td), b.loop, pkg, &b.srv),
        0);
    assert_int_equal(b.h.restores, 1);
    assert_int_equal(b.h.n, 0);
    /* Format 2 promises a HOST record. */
    blob_copy(&x, pkg);
    put32(&x, 8, 2);
    blob_mend(&x);
    expect_restore(pkg, &x, true, 0, -1, -1, -EINVAL);
    free(x.b);
    umdev_server_handover_commit(a.srv);
    a.srv = NULL;
    umdev_handover_free(pkg);
    host_rig_free(&a);
    host_rig_free(&b);
}

static void
test_host_ends_refused(void **state)
{
    struct host_rig a;
    struct umdev_handover *pkg;
    struct blob x;
    size_t e0, n, nfds;
    const int *fds;
    int slave;

    (void)state;
    host_rig_serve(&a);
    assert_int_equal(umdev_server_handover_save(a.srv, &pkg), 0);
    fds = umdev_handover_fds(pkg, &nfds);
    /* The three host ends are the package's last descriptors. */
    n = nfds;
    assert_int_equal(n, 1 + HOST_ENDS);

#define VARIANT(edit, hooks, refuse, sa, sb, err)                              \
    do {                                                                       \
        blob_copy(&x, pkg);                                                    \
        assert_int_not_equal(x.host, 0);                                       \
        e0 = x.host + 8;                                                       \
        (void)e0;                                                              \
        edit;                                                                  \
        blob_mend(&x);                                                         \
        expect_restore(pkg, &x, hooks, refuse, sa, sb, err);                   \
        free(x.b);                                                             \
    } while (0)

    /* The package as it is loads. */
    VARIANT((void)0, true, 0, -1, -1, 0);
    /* Malformed: no endpoint, a count past the record, an unknown kind,
     * reserved bits, a descriptor index out of range or of another
     * record, one kind and tag twice. */
    VARIANT(put32(&x, x.host, 0), true, 0, -1, -1, -EINVAL);
    VARIANT(put32(&x, x.host, 4), true, 0, -1, -1, -EINVAL);
    VARIANT(put32(&x, x.host + 4, 1), true, 0, -1, -1, -EINVAL);
    VARIANT(put32(&x, e0, 7), true, 0, -1, -1, -EINVAL);
    VARIANT(put32(&x, e0 + 12, 1), true, 0, -1, -1, -EINVAL);
    VARIANT(put32(&x, e0 + 8, (uint32_t)n), true, 0, -1, -1, -EINVAL);
    VARIANT(put32(&x, e0 + 8, 0), true, 0, -1, -1, -EINVAL);
    VARIANT(
        (put32(&x, e0 + 16, UMDEV_HOST_END_LISTENER), put32(&x, e0 + 20, 10)),
        true, 0, -1, -1, -EINVAL);
    /* HOST in a format 1 package; a format newer than ours. */
    VARIANT(put32(&x, 8, 1), true, 0, -1, -1, -EINVAL);
    VARIANT(put32(&x, 8, 3), true, 0, -1, -1, -ENOTSUP);
    /* A descriptor of another kind: the listener and the connected
     * socket swapped, or the pty in the listener's place. */
    VARIANT((void)0, true, 0, 1, 2, -EBADF);
    VARIANT((void)0, true, 0, 1, 3, -EBADF);
    VARIANT((void)0, true, 0, 2, 3, -EBADF);
    /* A terminal, but the pty's slave, not its master. */
    slave = open(ptsname(fds[3]), O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(slave >= 0);
    VARIANT((void)0, true, 0, 3, ~slave, -EBADF);
    close(slave);
    /* A device without the hooks; one whose hook refuses. */
    VARIANT((void)0, false, 0, -1, -1, -EINVAL);
    VARIANT((void)0, true, -EINVAL, -1, -1, -EINVAL);
#undef VARIANT

    /* Refused everywhere, the old process serves on with its own. */
    assert_int_equal(umdev_server_handover_abort(a.srv), 0);
    assert_int_equal(a.h.releases, 0);
    assert_int_equal(a.h.n, HOST_ENDS);
    umdev_handover_free(pkg);
    host_rig_free(&a);
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
    T(test_host_ends_handed_over),
    T(test_host_ends_none),
    T(test_host_ends_refused),
};

int
main(int argc, char **argv)
{
    /* Servers handed over are orphans of the first: reap them here. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return harness_main(argc, argv, "func.handover", tests,
                        sizeof(tests) / sizeof(tests[0]));
}
