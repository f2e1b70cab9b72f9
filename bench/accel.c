/*
 * bench/accel: the accel parent's data path (issue 5), self-contained,
 * within a minute, every result checked. Prints `ratio=` lines:
 *  1. engine MEMMOVE throughput at 4 KiB, 64 KiB, 1 MiB against memcpy()
 *     on the same core (the engine runs on the calling thread);
 *  2. 64-byte MEMMOVEs at queue depth 1 and 32, ops/s and median latency
 *     through (a) an accel subdevice driven by the umdev client as VMM,
 *     (b) the access path (lib/access), (c) direct calls into the engine;
 *     a/b ratio and socket messages per descriptor counted by the server;
 *  3. two engine threads against one.
 * bench/README.md explains each figure and the CPU placement.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel.h"
#include "accel_access.h"
#include "bench.h"
#include "kit_serve.h"
#include "kit_util.h"
#include "umdev/access.h"
#include "umdev/client.h"
#include "umdev/dev.h"
#include "umdev/loop.h"

#define KB 1024u
#define MB (1024u * 1024u)
#define RING_SIZE 64u
#define OP_SIZE 64u
#define MEASURE_NS 600000000ll /* per ops/s figure */
#define LAT_MAX (1u << 20)     /* latencies kept per run */

#define DIE(...)                                                               \
    do {                                                                       \
        fprintf(stderr, "accel: " __VA_ARGS__);                                \
        fputc('\n', stderr);                                                   \
        exit(1);                                                               \
    } while (0)

static int cpu_drv = 0, cpu_eng = 0; /* the driver's and the engine's */

static void
pin_set(const int *cpus, int n)
{
    cpu_set_t set;
    int i;

    CPU_ZERO(&set);
    for (i = 0; i < n; i++)
        CPU_SET(cpus[i], &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        DIE("cannot pin to CPU %d: %s", cpus[0], strerror(errno));
}

static void
pin(int cpu)
{
    pin_set(&cpu, 1);
}

static uint32_t *lat; /* LAT_MAX latencies in ns */

static double
median_us(size_t n)
{
    return bench_median_lat_us(lat, n > LAT_MAX ? LAT_MAX : n);
}

/* ------------------------------------------------------------------ */
/* A ring driver over memory we see at @host and the engine at @iova   */

struct ring_drv {
    struct accel_ring_drv r; /* host views; records at their iova */
    void (*kick)(void *arg); /* the doorbell */
    void (*poll)(void *arg); /* run the engine (direct), or NULL */
    void *arg;
    void (*mark)(void *arg); /* called when the measured phase starts */
    void *mark_arg;
    uint64_t kicks, kicks_mark; /* doorbells rung; at the mark */
    int64_t t_sub[RING_SIZE];
};

static void
rd_post(struct ring_drv *r, const struct accel_desc *d, int64_t now)
{
    r->t_sub[accel_ring_post(&r->r, d) % RING_SIZE] = now;
}

/* TAIL, and the doorbell if the engine sleeps. */
static void
rd_publish(struct ring_drv *r)
{
    if (accel_ring_publish(&r->r)) {
        r->kick(r->arg);
        r->kicks++;
    }
}

/* Reap in order; return how many completed now. */
static unsigned int
rd_reap(struct ring_drv *r, size_t *nlat)
{
    struct accel_comp c;
    unsigned int n = 0;
    int64_t now = 0;

    while (accel_ring_reap(&r->r, &c)) {
        uint32_t idx = r->r.reaped - 1;

        if (now == 0 && nlat != NULL)
            now = kit_now_ns(); /* one clock read per reap: cheap driver */
        if (c.status != ACCEL_ST_SUCCESS)
            DIE("descriptor %u: status %#x info %#" PRIx64, idx, c.status,
                c.info);
        if (nlat != NULL) {
            lat[*nlat % LAT_MAX] = (uint32_t)(now - r->t_sub[idx % RING_SIZE]);
            (*nlat)++;
        }
        n++;
    }
    return n;
}

/*
 * Keep @qd 64-byte MEMMOVEs in flight for @ns (after a warm-up), moving
 * [src + 64 i] to [dst + 64 i] for i cycling over 64 slots whose source
 * bytes we know; check the last copies. Return: ops/s.
 */
static double
rd_run(struct ring_drv *r, unsigned int qd, uint64_t src, uint64_t dst,
       const uint8_t *host_src, const uint8_t *host_dst, int64_t ns,
       size_t *nlat, uint64_t *ops_out)
{
    int64_t t0 = 0, end = 0;
    uint64_t ops0 = 0;
    bool warm = false;
    size_t dummy = 0;

    end = kit_now_ns() + ns / 10;
    for (;;) {
        int64_t t = kit_now_ns();
        uint32_t old = r->r.tail;

        if (!warm && t >= end) {
            /* Warm-up over: drain, then measure. */
            while (r->r.reaped != r->r.tail) {
                if (r->poll)
                    r->poll(r->arg);
                rd_reap(r, &dummy);
            }
            warm = true;
            ops0 = r->r.reaped;
            *nlat = 0;
            r->kicks_mark = r->kicks;
            if (r->mark != NULL)
                r->mark(r->mark_arg);
            t0 = kit_now_ns();
            end = t0 + ns;
            continue;
        }
        if (warm && t >= end)
            break;
        while (r->r.tail - r->r.reaped < qd) {
            uint32_t i = r->r.tail % 64;
            struct accel_desc d = {
                .opcode = ACCEL_OP_MEMMOVE,
                .size = OP_SIZE,
                .src = src + i * OP_SIZE,
                .dst = dst + i * OP_SIZE,
            };

            rd_post(r, &d, t);
        }
        if (r->r.tail != old)
            rd_publish(r);
        if (r->poll)
            r->poll(r->arg);
        rd_reap(r, warm ? nlat : &dummy);
    }
    while (r->r.reaped != r->r.tail) {
        if (r->poll)
            r->poll(r->arg);
        rd_reap(r, &dummy);
    }
    t0 = kit_now_ns() - t0;
    if (memcmp(host_src, host_dst, 64 * OP_SIZE) != 0)
        DIE("64-byte copies: data differ");
    *ops_out = r->r.reaped - ops0;
    return (double)(r->r.reaped - ops0) * 1e9 / (double)t0;
}

/* ------------------------------------------------------------------ */
/* (c) Direct: a queue of a manual engine, run on the calling thread   */

struct direct {
    struct accel_engine *e;
    struct accel_queue *q;
    uint8_t *mem;
    size_t len;
    struct ring_drv rd;
};

static int
direct_map(void *opaque, uint64_t addr, uint64_t len, int prot,
           struct accel_map *m)
{
    struct direct *d = opaque;
    uint64_t base = (uint64_t)(uintptr_t)d->mem;

    (void)prot;
    if (addr < base || addr - base >= d->len)
        return -EFAULT;
    m->ptr = (void *)(uintptr_t)addr;
    m->len = len < d->len - (addr - base) ? len : d->len - (addr - base);
    m->span = base; /* as a DMA mapping would */
    m->span_len = d->len;
    return 0;
}

static void
direct_unmap(void *opaque, struct accel_map *m)
{
    (void)opaque;
    (void)m;
}

static const struct accel_queue_ops direct_ops = {
    .map = direct_map,
    .unmap = direct_unmap,
};

static void
direct_kick(void *arg)
{
    accel_queue_doorbell(((struct direct *)arg)->q);
}

static void
direct_poll(void *arg)
{
    accel_engine_poll(((struct direct *)arg)->e, 4);
}

/* Memory: ring at 0, records at 64 KiB, data from 1 MiB. @priority sets
 * the scheduling quantum: 15 lets one visit run several 64 KiB copies. */
static void
direct_open(struct direct *d, size_t len, uint32_t priority)
{
    struct accel_engine_config ec = { .nr_queues = 1, .manual = true };
    struct accel_queue_config qc = { .size = RING_SIZE, .priority = priority };
    int rc;

    memset(d, 0, sizeof(*d));
    d->len = len;
    d->mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (d->mem == MAP_FAILED)
        DIE("mmap: %s", strerror(errno));
    if ((rc = accel_engine_create(&ec, &d->e)) < 0 ||
        (rc = accel_queue_claim(d->e, -1, &direct_ops, d, &d->q)) < 0)
        DIE("direct engine: %s", strerror(-rc));
    qc.ring = (uint64_t)(uintptr_t)d->mem;
    if ((rc = accel_queue_enable(d->q, &qc)) < 0)
        DIE("direct queue: %s", strerror(-rc));
    accel_ring_drv_init(&d->rd.r, d->mem, RING_SIZE,
                        (struct accel_comp *)(void *)(d->mem + 64 * KB),
                        (uint64_t)(uintptr_t)(d->mem + 64 * KB));
    d->rd.kick = direct_kick;
    d->rd.poll = direct_poll;
    d->rd.arg = d;
}

static void
direct_close(struct direct *d)
{
    accel_queue_release(d->q);
    accel_engine_destroy(d->e);
    munmap(d->mem, d->len);
}

static void
barrier(void)
{
    __asm__ volatile("" ::: "memory");
}

/* 1. Engine MEMMOVE vs memcpy, both on this thread's CPU. */
static void
bench_memmove(void)
{
    static const uint32_t sizes[] = { 4 * KB, 64 * KB, MB };
    struct direct d;
    unsigned int s;

    pin(cpu_drv);
    direct_open(&d, 4 * MB, 15);
    for (s = 0; s < 3; s++) {
        uint32_t sz = sizes[s];
        uint8_t *src = d.mem + MB, *dst = d.mem + 2 * MB;
        uint64_t total = 64ull * MB, iters = total / sz, i, posted;
        double eng[5], cpy[5];
        int round;

        kit_fill_rand(src, sz, sz);
        for (round = 0; round < 5; round++) {
            int64_t t = kit_now_ns();

            for (i = 0; i < iters; i++) {
                memcpy(dst, src, sz);
                barrier();
            }
            cpy[round] = (double)total / (double)(kit_now_ns() - t);
            memset(dst, 0, sz);
            t = kit_now_ns();
            for (i = 0, posted = 0; i < iters;) {
                uint32_t old = d.rd.r.tail;

                while (d.rd.r.tail - d.rd.r.reaped < 32 && posted < iters) {
                    struct accel_desc x = {
                        .opcode = ACCEL_OP_MEMMOVE,
                        .size = sz,
                        .src = (uint64_t)(uintptr_t)src,
                        .dst = (uint64_t)(uintptr_t)dst,
                    };

                    rd_post(&d.rd, &x, 0);
                    posted++;
                }
                if (d.rd.r.tail != old)
                    rd_publish(&d.rd);
                accel_engine_poll(d.e, 8);
                i += rd_reap(&d.rd, NULL);
            }
            eng[round] = (double)total / (double)(kit_now_ns() - t);
            if (memcmp(src, dst, sz) != 0)
                DIE("MEMMOVE %u: data differ", sz);
        }
        qsort(eng, 5, sizeof(double), bench_cmp_double);
        qsort(cpy, 5, sizeof(double), bench_cmp_double);
        printf("memmove size=%u cpu=%d engine_GBps=%.2f memcpy_GBps=%.2f "
               "ratio=%.3f\n",
               sz, cpu_drv, eng[2], cpy[2], eng[2] / cpy[2]);
    }
    direct_close(&d);
}

/* ------------------------------------------------------------------ */
/* (a) The subdevice, served on a thread, driven through the client    */

#define GB 0x100000000ull
#define GSIZE (8 * MB)

struct served {
    struct kit_serve serve;      /* devs[0].path: the subdevice's socket */
    struct umdev_dev_stats snap; /* written on the server thread */
    uint64_t mark_msgs;          /* messages when the measurement began */
};

static void
destroy_dev(void *arg)
{
    accel_dev_destroy(arg);
}

/* Sample the device's counters between two messages, on its thread. */
static void
snap(void *arg)
{
    struct served *s = arg;

    umdev_dev_get_stats(s->serve.devs[0].dev, &s->snap);
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
}

static void
served_start(struct served *s, struct accel_engine *e)
{
    struct accel_dev_config dc = { .name = "bench-accel", .nr_queues = 1 };
    struct accel_dev *d;
    int rc;

    memset(s, 0, sizeof(*s));
    if ((rc = kit_serve_init(&s->serve, "bench-accel")) < 0 ||
        (rc = accel_dev_create(e, &dc, &d)) < 0 ||
        (rc = kit_serve_add(&s->serve, "accel", accel_dev_dev(d), destroy_dev,
                            d)) < 0 ||
        (rc = kit_serve_start(&s->serve)) < 0)
        DIE("serving the subdevice: %s", strerror(-rc));
}

static void
served_stop(struct served *s)
{
    int rc = kit_serve_stop(&s->serve, 5000);

    if (rc < 0)
        DIE("stopping the server: %s", strerror(-rc));
}

struct vmm {
    struct umdev_client *c;
    uint8_t *mem;
    int fd;
    struct ring_drv rd;
    int kick_errors;
};

static void
vmm_kick(void *arg)
{
    struct vmm *v = arg;
    uint32_t one = 1;

    if (umdev_client_region_write_posted(v->c, UMDEV_PCI_BAR2_REGION, 0, &one,
                                         4) < 0)
        v->kick_errors++;
}

static void
vmm_reg(struct vmm *v, uint64_t off, uint64_t val, size_t n)
{
    int rc =
        umdev_client_region_write(v->c, UMDEV_PCI_BAR0_REGION, off, &val, n);

    if (rc < 0)
        DIE("register %#" PRIx64 ": %s", off, strerror(-rc));
}

/* Guest RAM: ring at GB, records at GB + 64 KiB, data from GB + 1 MiB. */
static void
vmm_open(struct vmm *v, const char *path)
{
    struct umdev_client_opts o = { .timeout_ms = 5000 };
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    uint32_t st = 0;
    int rc;

    memset(v, 0, sizeof(*v));
    v->fd = memfd_create("bench-guest", MFD_CLOEXEC);
    if (v->fd < 0 || ftruncate(v->fd, GSIZE) < 0)
        DIE("guest memory: %s", strerror(errno));
    v->mem = mmap(NULL, GSIZE, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_POPULATE, v->fd, 0);
    if (v->mem == MAP_FAILED)
        DIE("guest memory: %s", strerror(errno));
    if ((rc = umdev_client_connect(path, &o, &v->c)) < 0 ||
        (rc = umdev_client_dma_map(v->c, GB, GSIZE, v->mem, v->fd, 0,
                                   VFIO_USER_DMA_MAP_FLAG_READ |
                                       VFIO_USER_DMA_MAP_FLAG_WRITE)) < 0 ||
        (rc = umdev_client_region_write(v->c, UMDEV_PCI_CONFIG_REGION,
                                        PCI_COMMAND, &cmd, 2)) < 0)
        DIE("VMM: %s", strerror(-rc));
    vmm_reg(v, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_ENABLE, 4);
    vmm_reg(v, ACCEL_REG_QUEUE(0) + ACCEL_Q_RING_BASE, GB, 8);
    vmm_reg(v, ACCEL_REG_QUEUE(0) + ACCEL_Q_RING_SIZE, RING_SIZE, 4);
    vmm_reg(v, ACCEL_REG_QUEUE(0) + ACCEL_Q_CTRL, ACCEL_Q_CTRL_ENABLE, 4);
    if (umdev_client_region_read(v->c, UMDEV_PCI_BAR0_REGION,
                                 ACCEL_REG_QUEUE(0) + ACCEL_Q_STATUS, &st,
                                 4) < 0 ||
        st != ACCEL_QS_ENABLED)
        DIE("VMM: queue not enabled (status %#x)", st);
    accel_ring_drv_init(&v->rd.r, v->mem, RING_SIZE,
                        (struct accel_comp *)(void *)(v->mem + 64 * KB),
                        GB + 64 * KB);
    v->rd.kick = vmm_kick;
    v->rd.arg = v;
}

static void
vmm_close(struct vmm *v)
{
    umdev_client_destroy(v->c);
    munmap(v->mem, GSIZE);
    close(v->fd);
}

/* ------------------------------------------------------------------ */
/* (b) The access path                                                 */

struct host {
    struct umdev_access *a;
    uint8_t *mem;
    int fd;
    int64_t t_sub[RING_SIZE];
    uint64_t sent, done;
};

static double
access_run(struct host *h, unsigned int qd, int64_t ns, size_t *nlat,
           uint64_t *ops_out)
{
    uint8_t *src = h->mem, *dst = h->mem + MB;
    struct accel_comp c[RING_SIZE];
    int64_t t0 = 0, end = kit_now_ns() + ns / 10;
    uint64_t ops0 = 0;
    bool warm = false;

    for (;;) {
        int64_t t = kit_now_ns();
        struct accel_desc d[RING_SIZE];
        unsigned int n = 0, i;
        int got;

        if (!warm && t >= end) {
            while (h->done != h->sent)
                h->done += (uint64_t)umdev_access_reap(h->a, c, RING_SIZE);
            warm = true;
            ops0 = h->done;
            *nlat = 0;
            t0 = kit_now_ns();
            end = t0 + ns;
            continue;
        }
        if (warm && t >= end)
            break;
        while (h->sent + n - h->done < qd) {
            uint32_t k = (uint32_t)((h->sent + n) % 64);

            d[n] = (struct accel_desc){
                .opcode = ACCEL_OP_MEMMOVE,
                .size = OP_SIZE,
                .src = (uint64_t)(uintptr_t)(src + k * OP_SIZE),
                .dst = (uint64_t)(uintptr_t)(dst + k * OP_SIZE),
                .tag = h->sent + n,
            };
            h->t_sub[(h->sent + n) % RING_SIZE] = t;
            n++;
        }
        if (n > 0) {
            int rc = umdev_access_submit(h->a, d, n);

            if (rc < 0 || (unsigned int)rc != n)
                DIE("access submit: %d of %u", rc, n);
            h->sent += n;
        }
        got = umdev_access_reap(h->a, c, RING_SIZE);
        for (i = 0; i < (unsigned int)got; i++) {
            if (c[i].status != ACCEL_ST_SUCCESS || c[i].tag != h->done)
                DIE("access: descriptor %" PRIu64 ": status %#x", h->done,
                    c[i].status);
            if (warm) {
                lat[*nlat % LAT_MAX] =
                    (uint32_t)(kit_now_ns() - h->t_sub[h->done % RING_SIZE]);
                (*nlat)++;
            }
            h->done++;
        }
    }
    while (h->done != h->sent)
        h->done += (uint64_t)umdev_access_reap(h->a, c, RING_SIZE);
    t0 = kit_now_ns() - t0;
    if (memcmp(src, dst, 64 * OP_SIZE) != 0)
        DIE("access: data differ");
    *ops_out = h->done - ops0;
    return (double)(h->done - ops0) * 1e9 / (double)t0;
}

static void
host_open(struct host *h, const struct umdev_access_provider *p)
{
    struct umdev_access_opts o = { .depth = RING_SIZE };
    int rc;

    memset(h, 0, sizeof(*h));
    h->fd = memfd_create("bench-host", MFD_CLOEXEC);
    if (h->fd < 0 || ftruncate(h->fd, 2 * MB) < 0)
        DIE("host memory: %s", strerror(errno));
    h->mem = mmap(NULL, 2 * MB, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_POPULATE, h->fd, 0);
    if (h->mem == MAP_FAILED)
        DIE("host memory: %s", strerror(errno));
    if ((rc = umdev_access_open(p, &o, &h->a)) < 0 ||
        (rc = umdev_access_mem_register(h->a, h->mem, 2 * MB, h->fd, 0,
                                        UMDEV_ACCESS_READ |
                                            UMDEV_ACCESS_WRITE)) < 0)
        DIE("access open: %s", strerror(-rc));
    kit_fill_rand(h->mem, 64 * OP_SIZE, 99);
}

static void
host_close(struct host *h)
{
    umdev_access_close(h->a);
    munmap(h->mem, 2 * MB);
    close(h->fd);
}

#define ROUNDS 5

/* Median of ROUNDS values (sorts them). */
static double
med(double *v)
{
    qsort(v, ROUNDS, sizeof(*v), bench_cmp_double);
    return v[ROUNDS / 2];
}

/* 2. 64-byte operations through the three paths. */
static void
bench_small_ops(void)
{
    static const unsigned int qds[] = { 1, 32 };
    struct accel_engine_config ec = { .nr_queues = 4, .nr_threads = 1 };
    struct accel_engine *e;
    struct accel_access *prov;
    struct served s;
    struct vmm v;
    struct host h;
    struct direct dr;
    unsigned int k;
    int rc;

    /* Engine thread and server thread inherit cpu_eng; we drive from
     * cpu_drv. The direct engine runs on cpu_drv (it is this thread). */
    pin(cpu_eng);
    if ((rc = accel_engine_create(&ec, &e)) < 0 ||
        (rc = accel_access_create(e, NULL, &prov)) < 0)
        DIE("engine: %s", strerror(-rc));
    served_start(&s, e);
    pin(cpu_drv);
    vmm_open(&v, s.serve.devs[0].path);
    v.rd.mark = served_mark;
    v.rd.mark_arg = &s;
    kit_fill_rand(v.mem + MB, 64 * OP_SIZE, 7);
    host_open(&h, accel_access_provider(prov));
    direct_open(&dr, 4 * MB, 1); /* as the other two paths */
    kit_fill_rand(dr.mem + MB, 64 * OP_SIZE, 8);

    for (k = 0; k < 2; k++) {
        unsigned int qd = qds[k], r;
        uint64_t msgs = 0, descs = 0, bells = 0, ops;
        double a[ROUNDS], b[ROUNDS], c[ROUNDS], la[ROUNDS], lb[ROUNDS],
            lc[ROUNDS];
        size_t n;

        /* The three paths take turns, ROUNDS times; medians reported. */
        for (r = 0; r < ROUNDS; r++) {
            uint64_t m1;

            a[r] = rd_run(&v.rd, qd, GB + MB, GB + 2 * MB, v.mem + MB,
                          v.mem + 2 * MB, MEASURE_NS, &n, &ops);
            /* Messages the server handled from the end of the warm-up
             * to the end of the drain (the snapshots are calls posted to
             * its loop, not vfio-user messages). */
            m1 = served_msgs(&s);
            msgs += m1 - s.mark_msgs;
            descs += ops;
            bells += v.rd.kicks - v.rd.kicks_mark;
            la[r] = median_us(n);
            if (v.kick_errors)
                DIE("VMM doorbells failed");
            b[r] = access_run(&h, qd, MEASURE_NS, &n, &ops);
            lb[r] = median_us(n);
            c[r] = rd_run(&dr.rd, qd, (uint64_t)(uintptr_t)(dr.mem + MB),
                          (uint64_t)(uintptr_t)(dr.mem + 2 * MB), dr.mem + MB,
                          dr.mem + 2 * MB, MEASURE_NS, &n, &ops);
            lc[r] = median_us(n);
        }
        printf("small_ops size=%u qd=%u driver_cpu=%d engine_cpu=%d "
               "subdev_ops_s=%.0f access_ops_s=%.0f direct_ops_s=%.0f\n",
               OP_SIZE, qd, cpu_drv, cpu_eng, med(a), med(b), med(c));
        printf("  median_us subdev=%.2f access=%.2f direct=%.2f\n", med(la),
               med(lb), med(lc));
        printf("  subdev socket_msgs=%" PRIu64 " descs=%" PRIu64
               " msgs_per_desc=%.7f doorbells=%" PRIu64 "\n",
               msgs, descs, (double)msgs / (double)descs, bells);
        printf("small_ops qd=%u subdev_vs_access ratio=%.3f\n", qd,
               med(a) / med(b));
        printf("small_ops qd=%u access_vs_direct ratio=%.3f\n", qd,
               med(b) / med(c));
    }
    direct_close(&dr);
    host_close(&h);
    vmm_close(&v);
    served_stop(&s);
    accel_access_destroy(prov);
    accel_engine_destroy(e);
}

/* ------------------------------------------------------------------ */
/* 3. Engine threads: 4 access queues kept full of BATCHes of 64 KiB    */
/*    copies while the driver sleeps on the eventfds                    */

#define SC_QUEUES 4
#define SC_SIZE (64 * KB)
#define SC_PER_BATCH 16u
#define SC_DESCS 32u          /* ring descriptors per queue/round */
#define SC_SPAN (3 * SC_SIZE) /* per queue: src, dst, batch list */

static double
scaling_run(unsigned int threads)
{
    struct accel_engine_config ec = { .nr_queues = SC_QUEUES,
                                      .nr_threads = threads };
    int both[2] = { cpu_drv, cpu_eng };
    struct accel_engine *e;
    struct accel_access *prov;
    struct umdev_access *a[SC_QUEUES];
    struct pollfd pfd[SC_QUEUES];
    uint8_t *mem;
    int fd, rc, i;
    uint64_t bytes = 0;
    int64_t t0;

    /* The engine threads may run on both CPUs; the driver sleeps. */
    pin_set(both, cpu_drv == cpu_eng ? 1 : 2);
    if ((rc = accel_engine_create(&ec, &e)) < 0 ||
        (rc = accel_access_create(e, NULL, &prov)) < 0)
        DIE("engine: %s", strerror(-rc));
    fd = memfd_create("bench-scale", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, SC_QUEUES * SC_SPAN) < 0)
        DIE("memory: %s", strerror(errno));
    mem = mmap(NULL, SC_QUEUES * SC_SPAN, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_POPULATE, fd, 0);
    if (mem == MAP_FAILED)
        DIE("memory: %s", strerror(errno));
    for (i = 0; i < SC_QUEUES; i++) {
        struct umdev_access_opts o = { .depth = RING_SIZE };
        uint8_t *q = mem + (size_t)i * SC_SPAN;
        struct accel_desc *list = (void *)(q + 2 * SC_SIZE);
        unsigned int j;

        kit_fill_rand(q, SC_SIZE, 50 + (uint32_t)i);
        for (j = 0; j < SC_PER_BATCH; j++)
            list[j] = (struct accel_desc){
                .opcode = ACCEL_OP_MEMMOVE,
                .size = SC_SIZE,
                .src = (uint64_t)(uintptr_t)q,
                .dst = (uint64_t)(uintptr_t)(q + SC_SIZE),
            };
        if ((rc = umdev_access_open(accel_access_provider(prov), &o, &a[i])) <
                0 ||
            (rc = umdev_access_mem_register(
                 a[i], q, SC_SPAN, fd, (uint64_t)i * SC_SPAN,
                 UMDEV_ACCESS_READ | UMDEV_ACCESS_WRITE)) < 0)
            DIE("access: %s", strerror(-rc));
        pfd[i] =
            (struct pollfd){ .fd = umdev_access_fd(a[i]), .events = POLLIN };
    }
    t0 = kit_now_ns();
    while (kit_now_ns() - t0 < MEASURE_NS) {
        unsigned int left = 0;

        for (i = 0; i < SC_QUEUES; i++) {
            uint8_t *q = mem + (size_t)i * SC_SPAN;
            struct accel_desc d[SC_DESCS];
            unsigned int j;

            for (j = 0; j < SC_DESCS; j++)
                d[j] = (struct accel_desc){
                    .opcode = ACCEL_OP_BATCH,
                    .flags = ACCEL_DF_INTR,
                    .size = SC_PER_BATCH,
                    .src = (uint64_t)(uintptr_t)(q + 2 * SC_SIZE),
                };
            if (umdev_access_submit(a[i], d, SC_DESCS) != (int)SC_DESCS)
                DIE("scaling: submit");
            left += SC_DESCS;
        }
        while (left > 0) {
            for (i = 0; i < SC_QUEUES; i++) {
                struct accel_comp c[RING_SIZE];
                int n = umdev_access_reap(a[i], c, RING_SIZE), j;

                for (j = 0; j < n; j++)
                    if (c[j].status != ACCEL_ST_SUCCESS ||
                        c[j].bytes != SC_PER_BATCH)
                        DIE("scaling: status %#x", c[j].status);
                left -= (unsigned int)n;
                bytes += (uint64_t)n * SC_PER_BATCH * SC_SIZE;
            }
            if (left > 0 && poll(pfd, SC_QUEUES, 1000) < 0)
                DIE("poll: %s", strerror(errno));
            for (i = 0; i < SC_QUEUES; i++) {
                uint64_t cnt;

                if ((pfd[i].revents & POLLIN) &&
                    read(pfd[i].fd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
                    DIE("eventfd: %s", strerror(errno));
            }
        }
    }
    t0 = kit_now_ns() - t0;
    for (i = 0; i < SC_QUEUES; i++) {
        uint8_t *q = mem + (size_t)i * SC_SPAN;

        if (memcmp(q, q + SC_SIZE, SC_SIZE) != 0)
            DIE("scaling: data differ");
        umdev_access_close(a[i]);
    }
    munmap(mem, SC_QUEUES * SC_SPAN);
    close(fd);
    accel_access_destroy(prov);
    accel_engine_destroy(e);
    pin(cpu_drv);
    return (double)bytes / (double)t0; /* GB/s */
}

static void
bench_scaling(void)
{
    double one = scaling_run(1), two = scaling_run(2);

    printf("engine_threads queues=%d size=%u batch=%u cpus=%d,%d "
           "one_GBps=%.2f two_GBps=%.2f ratio=%.3f\n",
           SC_QUEUES, SC_SIZE, SC_PER_BATCH, cpu_drv, cpu_eng, one, two,
           two / one);
}

int
main(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: accel (no arguments; see bench/README.md)\n");
        return 2;
    }
    lat = calloc(LAT_MAX, sizeof(*lat));
    if (lat == NULL)
        DIE("out of memory");
    bench_prog = "accel";
    if (bench_first_two_cpus(NULL, &cpu_drv, &cpu_eng) < 0)
        return 1;
    printf("accel placement driver_cpu=%d engine_cpu=%d online=%ld\n", cpu_drv,
           cpu_eng, sysconf(_SC_NPROCESSORS_ONLN));
    bench_memmove();
    bench_small_ops();
    bench_scaling();
    free(lat);
    return 0;
}
