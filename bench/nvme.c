/*
 * bench/nvme: the nvme parent's data path on the host, without QEMU
 * (issue 15). The benchmark is the VMM (lib/client, memfd guest RAM
 * passed with DMA_MAP) and a polled guest driver (devices/nvme/
 * nvme_driver.h: shadow doorbells and EventIdx, completions found by
 * their phase tag, no interrupts) of a controller served in this process
 * by umdev_server on its own thread, the poller beside it. Prints:
 *  1. 4 KiB random reads on the null backend at queue depth 32 and 1:
 *     IOPS and (QD1) median latency, against a bare controller (a thread
 *     that runs the same queues in shared memory doing nothing per
 *     command but post its completion) in the same run, and beside them
 *     a controller without a poller whose passes the driver's own
 *     thread runs (one core, no cross-CPU traffic);
 *  2. the same reads on a file backend (--dir), by a controller with its
 *     poller and by one without, against fio's io_uring on the same
 *     file, taking turns, every read's data checked;
 *  3. with each: socket messages per I/O (the server's counter) and CPU
 *     time per I/O of the driver thread and of the controller's threads.
 * bench/README.md explains each figure and the CPU placement.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "kit_serve.h"
#include "nvme.h"
#include "nvme_driver.h"
#include "umdev/client.h"
#include "umdev/dev.h"

#define GB 0x100000000ull
#define MB (1024u * 1024u)
#define PAGE 4096u
#define BLOCK 512u /* the namespace's LBA size */

/* Guest memory (IOVAs from GB): queues, doorbell buffers, data. */
#define ADMIN_DEPTH 32u
#define IO_DEPTH 128u
#define SLOTS 64u /* data buffers, one per command in flight */
#define G_ASQ 0x0000u
#define G_ACQ 0x1000u
#define G_IOSQ 0x10000u
#define G_IOCQ 0x20000u
#define G_DBBUF 0x30000u
#define G_EVIDX 0x31000u
#define G_DATA 0x100000u
#define GSIZE (2 * MB)

#define NULL_NS_SIZE (1ull << 30) /* null backend: 1 GiB namespace */
#define LAT_MAX (1u << 21)
/* A driver loop iteration this long means the thread was off its CPU
 * (an iteration takes tens of nanoseconds). */
#define STALL_NS 100000
#define MAX_ROUNDS 50

#define DIE(...)                                                               \
    do {                                                                       \
        fprintf(stderr, "nvme: " __VA_ARGS__);                                 \
        fputc('\n', stderr);                                                   \
        cleanup();                                                             \
        exit(1);                                                               \
    } while (0)

static struct {
    double seconds;  /* per measurement */
    long rounds;     /* alternations */
    double fio_s;    /* per file-backend measurement */
    long file_mib;   /* the file's size */
    const char *dir; /* where the file goes */
    bool null_only;  /* skip the file part (no fio needed) */
    long poll_us;    /* the pollers' window; 0: the controller's default */
} opt = { 0.5, 5, 2.0, 256, "/var/tmp", false, 0 };

static int cpu_drv, cpu_dev; /* the driver's CPU, the controller's */
static char file_path[PATH_MAX];
static uint32_t *lat; /* LAT_MAX latencies in ns */

static void
cleanup(void)
{
    if (file_path[0] != '\0')
        unlink(file_path);
    file_path[0] = '\0';
}

static int64_t
cpu_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Pin the calling thread to @cpu, or end the program. */
static void
pin(int cpu)
{
    if (bench_pin_cpu(cpu) < 0)
        exit(1);
}

static double
median(double *v, long n)
{
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double
median_lat_us(size_t n)
{
    return bench_median_lat_us(lat, n > LAT_MAX ? LAT_MAX : n);
}

/* What a 4 KiB block of the file holds in its first 8 bytes. */
static uint64_t
stamp(uint64_t block)
{
    return block * 0x9e3779b97f4a7c15ull ^ 0x756d6465766e766dull;
}

/* ------------------------------------------------------------------ */
/* The driver: QD reads of 4 KiB at random 4 KiB-aligned offsets        */

struct drv {
    struct nvme_driver d;
    struct nvme_driver_q sq, cq;
    uint8_t *mem;         /* host view of guest memory at GB */
    uint64_t blocks;      /* the namespace in 4 KiB blocks */
    bool check;           /* reads return stamp(block) */
    void (*mark)(void *); /* the measured phase starts */
    void *mark_arg;
    void (*poll)(void *); /* run the controller on this thread, or NULL */
    void *poll_arg;
    uint64_t rng;
    uint16_t free[SLOTS];
    unsigned int nfree;
    uint64_t block[SLOTS];
    int64_t t_sub[SLOTS];
};

struct run_result {
    double iops;
    uint64_t ios;
    size_t nlat;
    int64_t wall_ns, drv_cpu_ns, proc_cpu_ns;
    int64_t stall_ns; /* the driver's loop stood still > STALL_NS */
};

static uint64_t
xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void
drv_init(struct drv *v, uint8_t *mem, uint64_t ns_bytes, bool check)
{
    unsigned int i;

    v->mem = mem;
    v->blocks = ns_bytes / PAGE;
    v->check = check;
    v->rng = 0x2545f4914f6cdd1dull;
    v->nfree = SLOTS;
    for (i = 0; i < SLOTS; i++)
        v->free[i] = (uint16_t)(SLOTS - 1 - i);
}

/* Reap what completed, checking each; ring the CQ head if it moved. */
static unsigned int
drv_reap(struct drv *v, bool timed, size_t *nlat)
{
    struct nvme_driver_cqe e;
    unsigned int n = 0;
    int64_t now = 0;
    int rc;

    if (v->poll != NULL)
        v->poll(v->poll_arg);
    while (nvme_driver_cq_pop(&v->cq, &e)) {
        uint16_t cid = e.cid;

        if (e.status != 0 || e.sqid != 1 || cid >= SLOTS)
            DIE("completion cid %u sqid %u: status %#x", cid, e.sqid, e.status);
        if (v->check) {
            uint64_t got;

            memcpy(&got, v->mem + G_DATA + (size_t)cid * PAGE, 8);
            if (got != stamp(v->block[cid]))
                DIE("read of block %" PRIu64 ": wrong data (%#" PRIx64 ")",
                    v->block[cid], got);
        }
        if (timed) {
            if (now == 0)
                now = bench_now_ns(); /* one clock read per reap */
            lat[*nlat % LAT_MAX] = (uint32_t)(now - v->t_sub[cid]);
            (*nlat)++;
        }
        v->free[v->nfree++] = cid;
        n++;
    }
    if (n > 0 && (rc = nvme_driver_ring(&v->d, &v->cq)) < 0)
        DIE("CQ head doorbell: %s", strerror(-rc));
    return n;
}

/* Keep @qd reads in flight for opt.seconds after a tenth of that as
 * warm-up; @timed: record each one's latency (submit to reap). */
static struct run_result
drv_run(struct drv *v, unsigned int qd, bool timed)
{
    int64_t ns = (int64_t)(opt.seconds * 1e9);
    int64_t t0 = 0, end = bench_now_ns() + ns / 10, last = bench_now_ns(),
            prev = last;
    int64_t c0 = 0, p0 = 0;
    uint64_t done = 0, done0 = 0;
    struct run_result r = { 0 };
    bool warm = false;
    size_t dummy = 0;
    int rc;

    for (;;) {
        int64_t t = bench_now_ns();
        unsigned int got;

        if (warm && t - prev > STALL_NS)
            r.stall_ns += t - prev;
        prev = t;
        if (!warm && t >= end) {
            warm = true;
            if (v->mark != NULL)
                v->mark(v->mark_arg);
            done0 = done;
            r.nlat = 0;
            t0 = bench_now_ns();
            c0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
            p0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
            end = t0 + ns;
            /* The mark's round trip to the server thread is no stall of
             * the measured part, nor part of a latency. */
            prev = t = t0;
        } else if (warm && t >= end) {
            break;
        }
        while (SLOTS - v->nfree < qd) {
            uint16_t cid = v->free[--v->nfree];
            uint64_t b = xorshift(&v->rng) % v->blocks;
            uint32_t cdw[6] = { (uint32_t)(b * (PAGE / BLOCK)),
                                (uint32_t)(b * (PAGE / BLOCK) >> 32),
                                PAGE / BLOCK - 1 };

            nvme_driver_sqe(nvme_driver_sq_slot(&v->sq), NVME_CMD_READ, cid, 1,
                            GB + G_DATA + (uint64_t)cid * PAGE, 0, cdw);
            v->block[cid] = b;
            if (v->check)
                memset(v->mem + G_DATA + (size_t)cid * PAGE, 0, 8);
            if (timed)
                v->t_sub[cid] = t;
            nvme_driver_sq_push(&v->sq);
        }
        if ((rc = nvme_driver_ring(&v->d, &v->sq)) < 0)
            DIE("SQ tail doorbell: %s", strerror(-rc));
        got = drv_reap(v, timed && warm, warm ? &r.nlat : &dummy);
        done += got;
        if (got > 0)
            last = t;
        else if (t - last > 10 * 1000000000ll)
            DIE("no completion for 10 s (%u in flight)", SLOTS - v->nfree);
    }
    r.wall_ns = bench_now_ns() - t0;
    r.drv_cpu_ns = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    r.proc_cpu_ns = cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - p0;
    r.ios = done - done0;
    /* Drain: every command is accounted for before the next run. */
    last = bench_now_ns();
    while (v->nfree < SLOTS) {
        if (drv_reap(v, false, &dummy) > 0)
            last = bench_now_ns();
        else if (bench_now_ns() - last > 10 * 1000000000ll)
            DIE("no completion for 10 s while draining");
    }
    r.iops = (double)r.ios * 1e9 / (double)r.wall_ns;
    return r;
}

/* ------------------------------------------------------------------ */
/* The baseline: a bare controller on the controller's CPU              */

struct bare {
    uint8_t *mem; /* its own "guest memory", same layout */
    struct drv v;
    pthread_t thread;
    atomic_bool stop;
    uint16_t head, ctail; /* the controller's SQ head, CQ tail */
    bool phase;           /* its CQ phase tag */
    uint64_t rung;        /* doorbell registers the driver wrote */
};

static int
bare_read32(void *opaque, uint32_t off, uint32_t *v)
{
    (void)opaque;
    (void)off;
    *v = 0;
    return 0;
}

static int
bare_write32(void *opaque, uint32_t off, uint32_t v)
{
    struct bare *b = opaque;

    (void)off;
    (void)v;
    b->rung++;
    return 0;
}

/*
 * Reads the SQ tail from its shadow slot, each new entry's CID, and
 * posts a successful completion with the phase tag, keeping the SQ's
 * EventIdx one behind the tail as a polling controller does; waits for
 * CQ room by the shadow CQ head. No translation, no backend, no lock.
 */
static void *
bare_thread(void *arg)
{
    struct bare *b = arg;
    uint8_t *db = b->mem + G_DBBUF, *ei = b->mem + G_EVIDX;
    uint32_t *sq_tail = (uint32_t *)(void *)(db + 8);
    uint32_t *cq_head = (uint32_t *)(void *)(db + 12);
    uint32_t *sq_ei = (uint32_t *)(void *)(ei + 8);
    uint32_t *cq_ei = (uint32_t *)(void *)(ei + 12);
    uint16_t head = b->head, ctail = b->ctail;
    bool phase = b->phase;

    while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
        uint16_t tail = (uint16_t)__atomic_load_n(sq_tail, __ATOMIC_ACQUIRE);

        if (tail == head)
            continue;
        __atomic_store_n(sq_ei, (uint16_t)(tail - 1), __ATOMIC_RELAXED);
        while (head != tail) {
            uint8_t *s = b->mem + G_IOSQ + (size_t)head * NVME_SQE_SIZE;
            uint8_t *e = b->mem + G_IOCQ + (size_t)ctail * NVME_CQE_SIZE;
            uint16_t chead =
                (uint16_t)__atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
            uint32_t dw3;

            if ((uint16_t)((ctail + 1) % IO_DEPTH) == chead)
                break; /* full: wait for the driver */
            head = (uint16_t)((head + 1) % IO_DEPTH);
            nvme_driver_put32(e, 0);
            nvme_driver_put32(e + 4, 0);
            nvme_driver_put32(e + 8, head | 1u << 16);
            dw3 = (nvme_driver_get32(s) >> 16) | (phase ? 1u : 0u) << 16;
            __atomic_store_n((uint32_t *)(void *)(e + 12), dw3,
                             __ATOMIC_RELEASE);
            if (++ctail == IO_DEPTH) {
                ctail = 0;
                phase = !phase;
            }
        }
        __atomic_store_n(
            cq_ei, (uint16_t)(__atomic_load_n(cq_head, __ATOMIC_RELAXED) - 1),
            __ATOMIC_RELAXED);
    }
    /* Runs start and stop it: the queues go on where they were. */
    b->head = head;
    b->ctail = ctail;
    b->phase = phase;
    return NULL;
}

static void
bare_open(struct bare *b)
{
    memset(b, 0, sizeof(*b));
    b->phase = true;
    b->mem = mmap(NULL, GSIZE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (b->mem == MAP_FAILED)
        DIE("mmap: %s", strerror(errno));
    b->v.d = (struct nvme_driver){ .read32 = bare_read32,
                                   .write32 = bare_write32,
                                   .opaque = b };
    nvme_driver_q_init(&b->v.sq, b->mem + G_IOSQ, 1, IO_DEPTH, false);
    nvme_driver_q_init(&b->v.cq, b->mem + G_IOCQ, 1, IO_DEPTH, true);
    nvme_driver_dbbuf_attach(&b->v.sq, b->mem + G_DBBUF, b->mem + G_EVIDX);
    nvme_driver_dbbuf_attach(&b->v.cq, b->mem + G_DBBUF, b->mem + G_EVIDX);
    drv_init(&b->v, b->mem, NULL_NS_SIZE, false);
}

/* One run with the bare controller's thread started for it on
 * cpu_dev (and joined after: it spins). */
static struct run_result
bare_run(struct bare *b, unsigned int qd, bool timed)
{
    struct run_result r;
    int rc;

    pin(cpu_dev);
    atomic_store(&b->stop, false);
    rc = pthread_create(&b->thread, NULL, bare_thread, b);
    pin(cpu_drv);
    if (rc != 0)
        DIE("bare controller thread: %s", strerror(rc));
    r = drv_run(&b->v, qd, timed);
    atomic_store(&b->stop, true);
    pthread_join(b->thread, NULL);
    return r;
}

/* ------------------------------------------------------------------ */
/* The subdevice, served in this process, driven through lib/client     */

struct served {
    struct kit_serve serve;
    struct nvme_ctrl *ctrl;
    struct umdev_dev_stats snap; /* written on the server thread */
    uint64_t mark_msgs;
    struct nvme_ctrl_stats mark_st;
    struct umdev_client *c;
    uint8_t *mem;
    int memfd;
    struct drv v;
    bool manual; /* no poller: the driver's thread runs the queues */
};

static void
destroy_ctrl(void *arg)
{
    nvme_ctrl_destroy(arg);
}

/* Sample the device's counters between two messages, on its thread. */
static void
snap(void *arg)
{
    struct served *s = arg;

    umdev_dev_get_stats(nvme_ctrl_dev(s->ctrl), &s->snap);
}

static uint64_t
served_msgs(struct served *s)
{
    int rc = kit_serve_call(&s->serve, snap, s, 5000);

    if (rc < 0)
        DIE("server thread did not answer: %s", strerror(-rc));
    return s->snap.msgs;
}

static void
served_mark(void *arg)
{
    struct served *s = arg;

    s->mark_msgs = served_msgs(s);
    nvme_ctrl_get_stats(s->ctrl, &s->mark_st);
}

/* A manual controller's pass, on the driver's thread. */
static void
served_poll(void *arg)
{
    struct served *s = arg;

    nvme_ctrl_poll(s->ctrl);
}

static int
vmm_read32(void *opaque, uint32_t off, uint32_t *v)
{
    struct served *s = opaque;

    return umdev_client_region_read(s->c, UMDEV_PCI_BAR0_REGION, off, v, 4);
}

static int
vmm_write32(void *opaque, uint32_t off, uint32_t v)
{
    struct served *s = opaque;

    return umdev_client_region_write(s->c, UMDEV_PCI_BAR0_REGION, off, &v, 4);
}

/* Doorbells go posted, as QEMU sends a guest's MMIO writes. */
static int
vmm_doorbell(void *opaque, uint32_t off, uint32_t v)
{
    struct served *s = opaque;

    return umdev_client_region_write_posted(s->c, UMDEV_PCI_BAR0_REGION, off,
                                            &v, 4);
}

static const char *
errstr(int rc)
{
    return rc == -ETIMEDOUT ? "no answer in time"
           : rc == -EIO     ? "controller fatal status"
                            : strerror(-rc);
}

/*
 * A controller on @be with a namespace of @size bytes, served on a
 * thread (it and the poller on cpu_dev), then the VMM's part (guest RAM,
 * DMA map, bus mastering) and the driver's bring-up: admin queues,
 * Doorbell Buffer Config, one I/O queue pair.
 */
static void
served_start(struct served *s, struct nvme_be *be, uint64_t size, bool check,
             bool manual)
{
    struct nvme_ctrl_config cc = {
        .name = "bench-nvme",
        .type = "nvme-1q",
        .nr_io_queues = 1,
        .size = size,
        .be = be,
        .manual = manual,
        .poll_us = (unsigned int)opt.poll_us,
    };
    struct umdev_client_opts o = { .timeout_ms = 10000 };
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    struct nvme_driver_q asq, acq;
    struct nvme_driver_cqe e;
    uint8_t sqe[NVME_SQE_SIZE];
    int rc;

    memset(s, 0, sizeof(*s));
    s->manual = manual;
    memcpy(cc.uuid, "umdev-bench-nvme", 16);
    pin(cpu_dev); /* the poller and the server thread inherit it */
    rc = nvme_ctrl_create(&cc, &s->ctrl);
    if (rc < 0)
        DIE("controller: %s", strerror(-rc));
    if ((rc = kit_serve_init(&s->serve, "bench-nvme")) < 0 ||
        (rc = kit_serve_add(&s->serve, "nvme", nvme_ctrl_dev(s->ctrl),
                            destroy_ctrl, s->ctrl)) < 0 ||
        (rc = kit_serve_start(&s->serve)) < 0)
        DIE("serving the controller: %s", strerror(-rc));
    pin(cpu_drv);

    s->memfd = memfd_create("bench-nvme-guest", MFD_CLOEXEC);
    if (s->memfd < 0 || ftruncate(s->memfd, GSIZE) < 0)
        DIE("guest memory: %s", strerror(errno));
    s->mem = mmap(NULL, GSIZE, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_POPULATE, s->memfd, 0);
    if (s->mem == MAP_FAILED)
        DIE("guest memory: %s", strerror(errno));
    if ((rc = umdev_client_connect(s->serve.devs[0].path, &o, &s->c)) < 0 ||
        (rc = umdev_client_dma_map(s->c, GB, GSIZE, s->mem, s->memfd, 0,
                                   VFIO_USER_DMA_MAP_FLAG_READ |
                                       VFIO_USER_DMA_MAP_FLAG_WRITE)) < 0 ||
        (rc = umdev_client_region_write(s->c, UMDEV_PCI_CONFIG_REGION,
                                        PCI_COMMAND, &cmd, 2)) < 0)
        DIE("VMM: %s", strerror(-rc));

    s->v.d = (struct nvme_driver){ .read32 = vmm_read32,
                                   .write32 = vmm_write32,
                                   .doorbell = vmm_doorbell,
                                   .idle = manual ? served_poll : NULL,
                                   .opaque = s };
    nvme_driver_q_init(&asq, s->mem + G_ASQ, 0, ADMIN_DEPTH, false);
    nvme_driver_q_init(&acq, s->mem + G_ACQ, 0, ADMIN_DEPTH, true);
    rc = nvme_driver_enable(&s->v.d, &asq, GB + G_ASQ, &acq, GB + G_ACQ);
    if (rc < 0)
        DIE("enable: %s", errstr(rc));
    /* Doorbell Buffer Config before the queues: they start shadowed. */
    nvme_driver_sqe(sqe, NVME_ADM_DBBUF_CONFIG, 1, 0, GB + G_DBBUF,
                    GB + G_EVIDX, NULL);
    rc = nvme_driver_cmd(&s->v.d, &asq, &acq, sqe, &e);
    if (rc < 0 || e.status != 0)
        DIE("Doorbell Buffer Config: %s (status %#x)",
            rc < 0 ? errstr(rc) : "refused", rc < 0 ? 0 : e.status);
    nvme_driver_q_init(&s->v.sq, s->mem + G_IOSQ, 1, IO_DEPTH, false);
    nvme_driver_q_init(&s->v.cq, s->mem + G_IOCQ, 1, IO_DEPTH, true);
    rc = nvme_driver_create_pair(&s->v.d, &asq, &acq, &s->v.sq, GB + G_IOSQ,
                                 &s->v.cq, GB + G_IOCQ, 2, &e);
    if (rc != 0)
        DIE("creating the I/O queue pair: %s (status %#x)",
            rc < 0 ? errstr(rc) : "refused", rc < 0 ? 0 : e.status);
    nvme_driver_dbbuf_attach(&s->v.sq, s->mem + G_DBBUF, s->mem + G_EVIDX);
    nvme_driver_dbbuf_attach(&s->v.cq, s->mem + G_DBBUF, s->mem + G_EVIDX);
    drv_init(&s->v, s->mem, size, check);
    s->v.mark = served_mark;
    s->v.mark_arg = s;
    if (manual) {
        s->v.poll = served_poll;
        s->v.poll_arg = s;
    }
}

static void
served_stop(struct served *s)
{
    int rc = nvme_driver_shutdown(&s->v.d);

    if (rc < 0)
        DIE("shutdown: %s", errstr(rc));
    umdev_client_destroy(s->c);
    rc = kit_serve_stop(&s->serve, 10000);
    if (rc < 0)
        DIE("stopping the server: %s", strerror(-rc));
    munmap(s->mem, GSIZE);
    close(s->memfd);
}

/* Socket messages, controller counters and CPU per I/O of one run. */
struct costs {
    uint64_t msgs, ios, mmio, sleeps;
    int64_t drv_cpu_ns, dev_cpu_ns, wall_ns, stall_ns;
};

/* @s: the served controller whose counters to add; NULL for the bare
 * one, which has none. */
static void
costs_add(struct costs *k, struct served *s, const struct run_result *r)
{
    if (s != NULL) {
        struct nvme_ctrl_stats st;
        uint64_t m = served_msgs(s);

        nvme_ctrl_get_stats(s->ctrl, &st);
        k->msgs += m - s->mark_msgs;
        k->mmio += st.doorbells - s->mark_st.doorbells;
        k->sleeps += st.sleeps - s->mark_st.sleeps;
    }
    k->ios += r->ios;
    k->wall_ns += r->wall_ns;
    k->stall_ns += r->stall_ns;
    k->drv_cpu_ns += r->drv_cpu_ns;
    /* The process's CPU time but the driver's: the poller and the
     * server thread (asleep in recvmsg() unless a message comes), or
     * the bare controller's thread. */
    k->dev_cpu_ns += r->proc_cpu_ns - r->drv_cpu_ns;
}

/* @msgs: the socket message and controller counters (not the bare
 * controller's: it has none); @one: the controller ran on the driver's
 * thread, so the driver's CPU time is both's. */
static void
costs_print(const char *what, const struct costs *k, bool msgs, bool one)
{
    double ios = k->ios ? (double)k->ios : 1;

    if (msgs)
        printf("  %s socket_msgs=%" PRIu64 " ios=%" PRIu64
               " msgs_per_io=%.7f doorbell_writes=%" PRIu64
               " poller_sleeps=%" PRIu64 "\n",
               what, k->msgs, k->ios, (double)k->msgs / ios, k->mmio,
               k->sleeps);
    /* How much of the time each side had its CPU: a polled data path
     * needs it all, so on a shared machine this is the first thing to
     * read beside a rate. */
    printf("  %s driver_stalled_pct=%.1f", what,
           100.0 * (double)k->stall_ns / (double)k->wall_ns);
    if (!one)
        printf(" controller_on_cpu_pct=%.1f",
               100.0 * (double)k->dev_cpu_ns / (double)k->wall_ns);
    printf("\n");
    if (one)
        printf("  %s cpu_ns_per_io driver_and_controller=%.0f\n", what,
               (double)k->drv_cpu_ns / ios);
    else
        printf("  %s cpu_ns_per_io driver=%.0f controller=%.0f "
               "ios_per_controller_cpu_s=%.0f\n",
               what, (double)k->drv_cpu_ns / ios, (double)k->dev_cpu_ns / ios,
               k->dev_cpu_ns > 0 ? (double)k->ios * 1e9 / (double)k->dev_cpu_ns
                                 : 0);
}

/* ------------------------------------------------------------------ */
/* 1. The null backend against the bare controller                     */

/* Three kinds of run take turns, the first of each round rotating. */
enum kind { K_UMDEV, K_BARE, K_ONE, NKINDS };

static void
bench_null(void)
{
    static const unsigned int qds[] = { 32, 1 };
    static const char *const names[NKINDS] = { "umdev", "bare", "one_thread" };
    struct nvme_be *be, *be1;
    struct served s, one;
    struct bare b;
    uint64_t rung0 = 0;
    unsigned int k;
    int rc;

    if ((rc = nvme_be_open_null(&be)) < 0 || (rc = nvme_be_open_null(&be1)) < 0)
        DIE("null backend: %s", strerror(-rc));
    served_start(&s, be, NULL_NS_SIZE, false, false);
    served_start(&one, be1, NULL_NS_SIZE, false, true);
    bare_open(&b);
    for (k = 0; k < 2; k++) {
        unsigned int qd = qds[k], j;
        double iops[NKINDS][MAX_ROUNDS], lat_us[NKINDS][MAX_ROUNDS];
        struct costs kc[NKINDS] = { { 0 } };
        long r;

        for (r = 0; r < opt.rounds; r++) {
            for (j = 0; j < NKINDS; j++) {
                unsigned int kind =
                    (unsigned int)(j + (unsigned long)r) % NKINDS;
                struct run_result a;

                if (kind == K_UMDEV)
                    a = drv_run(&s.v, qd, qd == 1);
                else if (kind == K_BARE)
                    a = bare_run(&b, qd, qd == 1);
                else
                    a = drv_run(&one.v, qd, qd == 1);
                lat_us[kind][r] = median_lat_us(a.nlat);
                iops[kind][r] = a.iops;
                costs_add(&kc[kind],
                          kind == K_UMDEV ? &s
                          : kind == K_ONE ? &one
                                          : NULL,
                          &a);
            }
        }
        printf("null read 4k qd=%u driver_cpu=%d controller_cpu=%d "
               "umdev_iops=%.0f bare_iops=%.0f ratio=%.3f "
               "one_thread_iops=%.0f\n",
               qd, cpu_drv, cpu_dev, median(iops[K_UMDEV], opt.rounds),
               median(iops[K_BARE], opt.rounds),
               median(iops[K_UMDEV], opt.rounds) /
                   median(iops[K_BARE], opt.rounds),
               median(iops[K_ONE], opt.rounds));
        if (qd == 1)
            printf("  median_us umdev=%.2f bare=%.2f ratio=%.3f "
                   "one_thread=%.2f\n",
                   median(lat_us[K_UMDEV], opt.rounds),
                   median(lat_us[K_BARE], opt.rounds),
                   median(lat_us[K_UMDEV], opt.rounds) /
                       median(lat_us[K_BARE], opt.rounds),
                   median(lat_us[K_ONE], opt.rounds));
        for (j = 0; j < NKINDS; j++)
            costs_print(names[j], &kc[j], j != K_BARE, j == K_ONE);
        /* Not messages: the bare driver's doorbell register is a
         * counter. The EventIdx race (the controller moved it between
         * the driver's shadow store and its EventIdx load) rings it. */
        printf("  bare doorbell_writes=%" PRIu64 "\n", b.rung - rung0);
        rung0 = b.rung;
    }
    munmap(b.mem, GSIZE);
    served_stop(&one);
    served_stop(&s);
}

/* ------------------------------------------------------------------ */
/* 2. A file backend against fio                                        */

/* A file of opt.file_mib MiB under opt.dir, every 4 KiB block
 * stamped, written out (not sparse: holes would read without I/O). */
static void
make_file(void)
{
    size_t chunk = 4 * MB, i;
    uint64_t size = (uint64_t)opt.file_mib * MB, off;
    uint8_t *buf;
    int fd;

    snprintf(file_path, sizeof(file_path), "%s/umdev-bench-nvme-XXXXXX",
             opt.dir);
    fd = mkstemp(file_path);
    if (fd < 0) {
        file_path[0] = '\0';
        DIE("cannot create a file in %s: %s", opt.dir, strerror(errno));
    }
    buf = calloc(1, chunk);
    if (buf == NULL)
        DIE("out of memory");
    for (off = 0; off < size; off += chunk) {
        for (i = 0; i < chunk; i += PAGE) {
            uint64_t v = stamp((off + i) / PAGE);

            memcpy(buf + i, &v, 8);
        }
        if (pwrite(fd, buf, chunk, (off_t)off) != (ssize_t)chunk)
            DIE("writing %s: %s", file_path, strerror(errno));
    }
    if (fdatasync(fd) < 0)
        DIE("fdatasync %s: %s", file_path, strerror(errno));
    free(buf);
    close(fd);
}

/* Is @prog an executable in PATH? */
static bool
in_path(const char *prog)
{
    const char *p = getenv("PATH");
    char path[PATH_MAX];

    while (p != NULL && *p != '\0') {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);

        if (n > 0 && n + strlen(prog) + 2 <= sizeof(path)) {
            memcpy(path, p, n);
            snprintf(path + n, sizeof(path) - n, "/%s", prog);
            if (access(path, X_OK) == 0)
                return true;
        }
        p = colon ? colon + 1 : NULL;
    }
    return false;
}

struct fio_result {
    double iops;
    double cpu_ns_per_io; /* its job's user + system time */
};

/*
 * fio --ioengine=io_uring --direct=1 --rw=randread --bs=4k --iodepth=32
 * on the file for opt.fio_s seconds, one job, on both our CPUs; its JSON
 * read back through a pipe.
 */
static struct fio_result
run_fio(void)
{
    char runtime[32], size[32], cpus[32];
    char *argv[] = {
        "fio",
        "--name=umdev-bench",
        "--output-format=json",
        "--ioengine=io_uring",
        "--direct=1",
        "--rw=randread",
        "--bs=4k",
        "--iodepth=32",
        "--numjobs=1",
        "--norandommap",
        "--randrepeat=0",
        "--time_based",
        runtime,
        "--ramp_time=200ms",
        size,
        cpus,
        NULL,
        NULL,
    };
    char fname[PATH_MAX + 16];
    struct fio_result res = { 0 };
    struct json_object *root, *jobs, *job, *rd, *v;
    size_t len = 0, cap = 1 << 16;
    char *out = malloc(cap);
    int pfd[2], status;
    double runtime_ms, usr, sys;
    ssize_t n;
    pid_t pid;

    if (out == NULL)
        DIE("out of memory");
    snprintf(runtime, sizeof(runtime), "--runtime=%ldms",
             (long)(opt.fio_s * 1000));
    snprintf(size, sizeof(size), "--size=%ldM", opt.file_mib);
    snprintf(cpus, sizeof(cpus), "--cpus_allowed=%d,%d", cpu_drv, cpu_dev);
    snprintf(fname, sizeof(fname), "--filename=%s", file_path);
    argv[16] = fname;
    if (pipe(pfd) < 0)
        DIE("pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        DIE("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execvp("fio", argv);
        fprintf(stderr, "nvme: cannot run fio: %s\n", strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    while ((n = read(pfd[0], out + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 1024) {
            char *bigger = realloc(out, cap *= 2);

            if (bigger == NULL)
                DIE("out of memory");
            out = bigger;
        }
    }
    close(pfd[0]);
    out[len] = '\0';
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        DIE("fio failed (status %#x); its output:\n%s", status, out);
    /* fio may print notes before the JSON. */
    root = json_tokener_parse(strchr(out, '{') ? strchr(out, '{') : out);
    if (root == NULL || !json_object_object_get_ex(root, "jobs", &jobs) ||
        json_object_array_length(jobs) != 1 ||
        (job = json_object_array_get_idx(jobs, 0)) == NULL ||
        !json_object_object_get_ex(job, "read", &rd) ||
        !json_object_object_get_ex(rd, "iops", &v))
        DIE("cannot read fio's JSON output:\n%s", out);
    res.iops = json_object_get_double(v);
    if (!json_object_object_get_ex(job, "error", &v) ||
        json_object_get_int(v) != 0 || res.iops <= 0)
        DIE("fio reports an error or no reads:\n%s", out);
    runtime_ms = json_object_object_get_ex(rd, "runtime", &v)
                     ? json_object_get_double(v)
                     : 0;
    usr = json_object_object_get_ex(job, "usr_cpu", &v)
              ? json_object_get_double(v)
              : 0;
    sys = json_object_object_get_ex(job, "sys_cpu", &v)
              ? json_object_get_double(v)
              : 0;
    /* usr_cpu and sys_cpu are percent of one CPU over the job's run. */
    res.cpu_ns_per_io =
        (usr + sys) / 100 * runtime_ms * 1e6 / (res.iops * runtime_ms / 1e3);
    json_object_put(root);
    free(out);
    return res;
}

static void
bench_file(void)
{
    uint64_t size = (uint64_t)opt.file_mib * MB;
    double iops[NKINDS][MAX_ROUNDS], fc[MAX_ROUNDS];
    double seconds = opt.seconds;
    struct costs kc[NKINDS] = { { 0 } };
    struct nvme_ctrl_stats st;
    struct nvme_be *be, *be1;
    struct served s, one;
    char err[256];
    long r;
    int rc;

    if (!in_path("fio"))
        DIE("fio is not installed (it is the file backend's baseline): "
            "install Debian's fio (scripts/deps.sh lists it), or run with "
            "--null-only");
    make_file();
    /* Two controllers on the one file: both only read it. */
    if ((rc = nvme_be_open_file(file_path, size, &be, err, sizeof(err))) < 0 ||
        (rc = nvme_be_open_file(file_path, size, &be1, err, sizeof(err))) < 0)
        DIE("file backend on %s: %s", file_path, err);
    served_start(&s, be, size, true, false);
    served_start(&one, be1, size, true, true);
    nvme_ctrl_get_stats(s.ctrl, &st);
    opt.seconds = opt.fio_s;
    /* K_BARE's turn is fio's here. */
    for (r = 0; r < opt.rounds; r++) {
        unsigned int j;

        for (j = 0; j < NKINDS; j++) {
            unsigned int kind = (unsigned int)(j + (unsigned long)r) % NKINDS;
            struct fio_result x;
            struct run_result a;

            if (kind == K_BARE) {
                x = run_fio();
                iops[kind][r] = x.iops;
                fc[r] = x.cpu_ns_per_io;
                continue;
            }
            a = drv_run(kind == K_UMDEV ? &s.v : &one.v, 32, false);
            costs_add(&kc[kind], kind == K_UMDEV ? &s : &one, &a);
            iops[kind][r] = a.iops;
        }
    }
    opt.seconds = seconds;
    printf("file read 4k qd=32 direct=%d driver_cpu=%d controller_cpu=%d "
           "fio_cpus=%d,%d umdev_iops=%.0f fio_iops=%.0f ratio=%.3f "
           "one_thread_iops=%.0f one_thread_ratio=%.3f\n",
           st.direct, cpu_drv, cpu_dev, cpu_drv, cpu_dev,
           median(iops[K_UMDEV], opt.rounds), median(iops[K_BARE], opt.rounds),
           median(iops[K_UMDEV], opt.rounds) / median(iops[K_BARE], opt.rounds),
           median(iops[K_ONE], opt.rounds),
           median(iops[K_ONE], opt.rounds) / median(iops[K_BARE], opt.rounds));
    costs_print("umdev", &kc[K_UMDEV], true, false);
    costs_print("one_thread", &kc[K_ONE], true, true);
    printf("  fio cpu_ns_per_io=%.0f\n", median(fc, opt.rounds));
    served_stop(&one);
    served_stop(&s);
    cleanup();
}

/* ------------------------------------------------------------------ */

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: nvme [--seconds S] [--rounds N] [--fio-seconds S] "
            "[--dir DIR] [--file-mib N] [--null-only] [--poll-us N]\n"
            "  --seconds S      each null-backend measurement (default 0.5)\n"
            "  --rounds N       alternations of each pair (default 5)\n"
            "  --fio-seconds S  each file-backend measurement, umdev's and "
            "fio's (default 2)\n"
            "  --dir DIR        where the file backend's file goes "
            "(default /var/tmp)\n"
            "  --file-mib N     its size (default 256)\n"
            "  --null-only      the null backend only (no file, no fio)\n"
            "  --poll-us N      the pollers' window before they sleep "
            "(default: the controller's)\n");
}

static bool
parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool
parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "seconds", required_argument, NULL, 's' },
        { "rounds", required_argument, NULL, 'r' },
        { "fio-seconds", required_argument, NULL, 'f' },
        { "dir", required_argument, NULL, 'd' },
        { "file-mib", required_argument, NULL, 'm' },
        { "null-only", no_argument, NULL, 'n' },
        { "poll-us", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    cpu_set_t allowed;
    bool ok = true;
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            ok = parse_double(optarg, 0.01, 600, &opt.seconds);
            break;
        case 'r':
            ok = parse_long(optarg, 1, MAX_ROUNDS, &opt.rounds);
            break;
        case 'f':
            ok = parse_double(optarg, 0.1, 600, &opt.fio_s);
            break;
        case 'd':
            opt.dir = optarg;
            break;
        case 'm':
            ok = parse_long(optarg, 4, 1 << 20, &opt.file_mib);
            break;
        case 'n':
            opt.null_only = true;
            break;
        case 'p':
            ok = parse_long(optarg, 1, 10000000, &opt.poll_us);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            ok = false;
        }
        if (!ok) {
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    lat = calloc(LAT_MAX, sizeof(*lat));
    if (lat == NULL)
        DIE("out of memory");
    bench_prog = "nvme";
    if (bench_first_two_cpus(&allowed, &cpu_drv, &cpu_dev) < 0)
        return 1;
    printf("nvme placement driver_cpu=%d controller_cpu=%d online=%ld "
           "poll_us=%ld\n",
           cpu_drv, cpu_dev, sysconf(_SC_NPROCESSORS_ONLN),
           opt.poll_us ? opt.poll_us : (long)NVME_DEFAULT_POLL_US);
    fflush(stdout);
    bench_null();
    fflush(stdout);
    if (!opt.null_only)
        bench_file();
    sched_setaffinity(0, sizeof(allowed), &allowed);
    free(lat);
    return 0;
}
