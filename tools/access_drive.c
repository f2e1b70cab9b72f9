/*
 * umdev-access-drive: a host process using one queue of umdevd's accel
 * parent through the direct access path (umdev/access.h over the daemon
 * provider, accel_access.h). It is the reference user of that path and
 * what the main job and the daemon tests run.
 *
 *   umdev-access-drive [--control PATH] [--seconds S] [--size N]
 *                      [--depth D] [--hold] [--timeout MS]
 *
 * 1. opens a queue (a leased accel-1wq instance of the daemon);
 * 2. registers its own memfd-backed buffers (iova == its VA) and checks
 *    MEMMOVE, FILL, CRC32C (with a seed) and COMPARE (equal, mismatch
 *    offset) at several sizes and misalignments, an address fault for an
 *    address it did not register (the destination untouched), the
 *    eventfd wait (DF_INTR), and that an unregistered range faults;
 * 3. keeps D descriptors in flight for S seconds (MEMMOVE, FILL, CRC32C
 *    of N bytes in turn), verifying every result;
 * 4. with --hold, prints "holding" and keeps the queue until SIGUSR1,
 *    SIGINT or SIGTERM; then closes it.
 *
 * Output, one line each: "check NAME ok", then
 *   "load ops=N bytes=N seconds=F MBps=F errors=N doorbells=N"
 *   "queue completed=N failed=N notifies=N doorbells=N"  (engine counters)
 * and "closed". Exit status: 0 everything verified; 1 a check failed or
 * the queue could not be had; 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel_access.h"
#include "tool.h"
#include "umdev/access.h"
#include "umdev/ctl.h"

#define PROG "umdev-access-drive"
#define PAGE UMDEV_ACCESS_PAGE
#define MB (1024u * 1024u)
#define RW (UMDEV_ACCESS_READ | UMDEV_ACCESS_WRITE)
/* One registered buffer: sources in the first half, destinations in the
 * second. The load run's slots live there too. */
#define BUF_SIZE (8 * MB)
#define HALF (BUF_SIZE / 2)
#define SIZE_MAX_LOAD (64u * 1024u)
#define DEPTH_MAX 256u
#define PATTERN 0x0123456789abcdefull
#define SEED 0x5eed1234u

struct mem {
    int fd;
    uint8_t *p;
    size_t len;
};

struct drive {
    struct umdev_access *a;
    struct mem buf, spare, outside;
    int timeout_ms;
    bool failed;
};

static void fail(struct drive *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail(struct drive *d, const char *fmt, ...)
{
    va_list ap;

    fputs("error ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    d->failed = true;
}

static uint64_t
va(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

/* Bitwise CRC32C, independent of the engine's table and SSE4.2 code. */
static uint32_t
crc_ref(uint32_t seed, const uint8_t *p, size_t n)
{
    uint32_t crc = ~seed;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static int
mem_new(struct mem *m, size_t len)
{
    m->len = len;
    m->fd = memfd_create("umdev-access-drive", MFD_CLOEXEC);
    if (m->fd < 0 || ftruncate(m->fd, (off_t)len) < 0)
        return -errno;
    m->p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
    if (m->p == MAP_FAILED) {
        m->p = NULL;
        return -errno;
    }
    return 0;
}

static void
mem_free(struct mem *m)
{
    if (m->p != NULL)
        munmap(m->p, m->len);
    if (m->fd >= 0)
        close(m->fd);
}

static struct accel_desc
desc(uint8_t op, uint32_t size, const void *src, const void *dst)
{
    return (struct accel_desc){
        .opcode = op,
        .size = size,
        .src = va(src),
        .dst = va(dst),
        .pattern = PATTERN,
        .crc_seed = SEED,
    };
}

/* Submit one descriptor and wait (bounded) for its record. */
static int
run1(struct drive *d, struct accel_desc x, struct accel_comp *c)
{
    double end = tool_now_s() + d->timeout_ms / 1000.0;
    int n;

    if (umdev_access_submit(d->a, &x, 1) != 1)
        return -EAGAIN;
    while ((n = umdev_access_reap(d->a, c, 1)) == 0) {
        if (tool_now_s() > end)
            return -ETIMEDOUT;
        sched_yield();
    }
    return n == 1 ? 0 : -EIO;
}

static bool
expect(struct drive *d, const char *what, uint32_t size,
       const struct accel_comp *c, uint8_t status)
{
    if (c->status == status)
        return true;
    fail(d, "%s size=%u: status 0x%02x, expected 0x%02x (info 0x%" PRIx64 ")",
         what, size, c->status, status, c->info);
    return false;
}

static bool
check_fill(const uint8_t *p, size_t n)
{
    uint64_t pat = PATTERN;
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] != ((const uint8_t *)&pat)[i % 8])
            return false;
    return true;
}

static void
check_ops(struct drive *d)
{
    static const uint32_t sizes[] = { 1, 7, 64, 4095, 4099, 65549, MB + 3 };
    static const uint32_t skews[] = { 0, 3 };
    struct accel_comp c;
    size_t i, j, k;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (j = 0; j < sizeof(skews) / sizeof(skews[0]); j++) {
            uint32_t n = sizes[i];
            uint8_t *s = d->buf.p + skews[j];
            uint8_t *t = d->buf.p + HALF + 5 * skews[j] + 1;

            for (k = 0; k < n; k++)
                s[k] = (uint8_t)(k * 131u + i * 7u + j);
            memset(t, 0, n);
            if (run1(d, desc(ACCEL_OP_MEMMOVE, n, s, t), &c) < 0 ||
                !expect(d, "memmove", n, &c, ACCEL_ST_SUCCESS))
                return;
            if (memcmp(s, t, n) != 0 || c.bytes != n)
                return fail(d, "memmove size=%u: data differ", n);
            if (run1(d, desc(ACCEL_OP_COMPARE, n, s, t), &c) < 0 ||
                !expect(d, "compare", n, &c, ACCEL_ST_SUCCESS) || c.result != 0)
                return fail(d, "compare size=%u: equal buffers differ", n);
            t[n / 2] ^= 0x40;
            if (run1(d, desc(ACCEL_OP_COMPARE, n, s, t), &c) < 0 ||
                !expect(d, "compare", n, &c, ACCEL_ST_MISMATCH) ||
                c.result != 1 || c.info != n / 2)
                return fail(
                    d, "compare size=%u: mismatch at %" PRIu64 ", expected %u",
                    n, c.info, n / 2);
            if (run1(d, desc(ACCEL_OP_CRC32C, n, s, NULL), &c) < 0 ||
                !expect(d, "crc32c", n, &c, ACCEL_ST_SUCCESS))
                return;
            if (c.value != crc_ref(SEED, s, n))
                return fail(d,
                            "crc32c size=%u: 0x%08" PRIx64 ", expected 0x%08x",
                            n, c.value, crc_ref(SEED, s, n));
            if (run1(d, desc(ACCEL_OP_FILL, n, NULL, t), &c) < 0 ||
                !expect(d, "fill", n, &c, ACCEL_ST_SUCCESS))
                return;
            if (!check_fill(t, n))
                return fail(d, "fill size=%u: pattern wrong", n);
        }
    }
    printf("check memmove compare crc32c fill sizes=%zu skews=%zu ok\n",
           sizeof(sizes) / sizeof(sizes[0]), sizeof(skews) / sizeof(skews[0]));
}

/* Memory this process owns but never registered, and a range it
 * registered and then took back: both must fault and stay untouched. */
static void
check_faults(struct drive *d)
{
    struct accel_comp c;
    uint8_t *t = d->buf.p + HALF;

    memset(d->outside.p, 0x5a, PAGE);
    memset(t, 0xa5, PAGE);
    if (run1(d, desc(ACCEL_OP_MEMMOVE, 512, d->outside.p + 8, t), &c) < 0 ||
        !expect(d, "fault src", 512, &c, ACCEL_ST_ADDR_FAULT))
        return;
    if (c.info != va(d->outside.p + 8))
        return fail(d, "fault src: info 0x%" PRIx64 ", expected %p", c.info,
                    (void *)(d->outside.p + 8));
    if (t[0] != 0xa5 || t[511] != 0xa5)
        return fail(d, "fault src: the destination was written");
    if (run1(d, desc(ACCEL_OP_MEMMOVE, 512, t, d->outside.p), &c) < 0 ||
        !expect(d, "fault dst", 512, &c, ACCEL_ST_ADDR_FAULT))
        return;
    if (d->outside.p[0] != 0x5a || d->outside.p[511] != 0x5a)
        return fail(d, "fault dst: unregistered memory was written");
    printf("check fault addr=unregistered ok\n");

    if (run1(d, desc(ACCEL_OP_FILL, PAGE, NULL, d->spare.p), &c) < 0 ||
        !expect(d, "spare", PAGE, &c, ACCEL_ST_SUCCESS))
        return;
    if (umdev_access_mem_unregister(d->a, d->spare.p) < 0)
        return fail(d, "unregister: refused");
    memset(d->spare.p, 0, PAGE);
    if (run1(d, desc(ACCEL_OP_FILL, PAGE, NULL, d->spare.p), &c) < 0 ||
        !expect(d, "unregistered", PAGE, &c, ACCEL_ST_ADDR_FAULT))
        return;
    if (d->spare.p[0] != 0)
        return fail(d, "unregistered: written after DMA_UNMAP");
    printf("check unregister ok\n");
}

static void
check_wait(struct drive *d)
{
    struct accel_desc x = desc(ACCEL_OP_NOP, 0, NULL, NULL);
    struct accel_comp c;
    int rc;

    x.flags = ACCEL_DF_INTR;
    x.tag = 0x7a67;
    if (umdev_access_submit(d->a, &x, 1) != 1)
        return fail(d, "wait: submit");
    rc = umdev_access_wait(d->a, d->timeout_ms);
    if (rc < 0)
        return fail(d, "wait: %s", strerror(-rc));
    if (umdev_access_reap(d->a, &c, 1) != 1 ||
        !expect(d, "wait", 0, &c, ACCEL_ST_SUCCESS))
        return;
    if (c.tag != 0x7a67)
        return fail(d, "wait: tag 0x%" PRIx64, c.tag);
    printf("check eventfd ok\n");
}

/*
 * The load: slot i (of the ring's depth) has its own source and
 * destination of @size bytes; the descriptor in it cycles through
 * MEMMOVE, FILL and CRC32C, so a destination always changes between two
 * checks of it (MEMMOVE after FILL and the other way round).
 */
static void
load(struct drive *d, double seconds, uint32_t size, unsigned int depth)
{
    struct accel_comp comps[64];
    struct umdev_access_stats st;
    uint32_t crc[DEPTH_MAX];
    uint64_t ops = 0, bytes = 0, errors = 0, seq = 0;
    double t0 = tool_now_s(), end = t0 + seconds, last = t0, el;
    unsigned int i;
    int n, k;

    for (i = 0; i < depth; i++) {
        uint8_t *s = d->buf.p + (size_t)i * size;

        for (k = 0; k < (int)size; k++)
            s[k] = (uint8_t)(i * 17u + (unsigned int)k * 29u);
        crc[i] = crc_ref(SEED, s, size);
    }
    for (;;) {
        double t = tool_now_s();

        while (t < end && umdev_access_space(d->a) > 0) {
            unsigned int slot = (unsigned int)(seq % depth);
            static const uint8_t ops_cycle[3] = { ACCEL_OP_MEMMOVE,
                                                  ACCEL_OP_FILL,
                                                  ACCEL_OP_CRC32C };
            uint8_t op = ops_cycle[(seq / depth) % 3];
            uint8_t *s = d->buf.p + (size_t)slot * size;
            uint8_t *dst = d->buf.p + HALF + (size_t)slot * size;
            struct accel_desc x = desc(op, size, s, dst);

            x.tag = seq;
            if (umdev_access_submit(d->a, &x, 1) != 1)
                break;
            seq++;
        }
        n = umdev_access_reap(d->a, comps, 64);
        for (k = 0; k < n; k++) {
            uint64_t tag = comps[k].tag;
            unsigned int slot = (unsigned int)(tag % depth);
            uint8_t op = comps[k].opcode;
            const uint8_t *s = d->buf.p + (size_t)slot * size;
            const uint8_t *dst = d->buf.p + HALF + (size_t)slot * size;
            bool ok = comps[k].status == ACCEL_ST_SUCCESS;

            if (ok && op == ACCEL_OP_MEMMOVE)
                ok = memcmp(s, dst, size) == 0;
            else if (ok && op == ACCEL_OP_FILL)
                ok = check_fill(dst, size);
            else if (ok && op == ACCEL_OP_CRC32C)
                ok = comps[k].value == crc[slot];
            if (!ok && errors++ == 0)
                fail(d,
                     "load: op 0x%02x tag %" PRIu64 " status 0x%02x: "
                     "wrong result",
                     op, tag, comps[k].status);
            ops++;
            bytes += size;
        }
        t = n > 0 ? tool_now_s() : t;
        if (n > 0)
            last = t;
        if (t >= end && umdev_access_outstanding(d->a) == 0)
            break;
        if (t - last > d->timeout_ms / 1000.0) {
            fail(d, "load: no completion for %d ms (%u outstanding)",
                 d->timeout_ms, umdev_access_outstanding(d->a));
            return;
        }
        if (n == 0)
            sched_yield();
    }
    el = tool_now_s() - t0;
    umdev_access_get_stats(d->a, &st);
    printf("load ops=%" PRIu64 " bytes=%" PRIu64 " seconds=%.2f MBps=%.1f "
           "errors=%" PRIu64 " doorbells=%" PRIu64 "\n",
           ops, bytes, el, (double)bytes / el / 1e6, errors, st.doorbells);
    printf("queue completed=%" PRIu64 " failed=%" PRIu64 " notifies=%" PRIu64
           " doorbells=%" PRIu64 "\n",
           st.queue.completed, st.queue.failed, st.queue.notifies,
           st.queue.doorbells);
}

static void
hold(void)
{
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    printf("holding\n");
    fflush(stdout);
    sigwait(&set, &sig);
}

static void
log_line(void *opaque, int level, const char *line)
{
    (void)opaque;
    (void)level;
    fprintf(stderr, PROG ": %s\n", line);
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr,
            "\nusage: " PROG " [--control PATH] [--seconds S] [--size N] "
            "[--depth D] [--hold] [--timeout MS]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "control", required_argument, NULL, 'c' },
        { "seconds", required_argument, NULL, 's' },
        { "size", required_argument, NULL, 'n' },
        { "depth", required_argument, NULL, 'd' },
        { "hold", no_argument, NULL, 'H' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct umdev_logger log = { .fn = log_line, .max_level = LOG_WARNING };
    struct drive d = {
        .buf.fd = -1, .spare.fd = -1, .outside.fd = -1, .timeout_ms = 10000
    };
    struct accel_access_daemon *p = NULL;
    struct umdev_access_opts ao = { .priority = 1, .log = &log };
    const char *control;
    char def[4096];
    double seconds = 2;
    long size = 4096, depth = 32, timeout_ms;
    bool want_hold = false;
    int opt, rc;
    sigset_t set;

    /* umdevctl's default; one that does not fit fails to connect. */
    umdev_ctl_default_path(def, sizeof(def));
    control = def;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            control = optarg;
            break;
        case 's':
            if (!tool_parse_double(optarg, 0, 3600, &seconds))
                return usage("--seconds: 0 to 3600, not '%s'", optarg);
            break;
        case 'n':
            if (!tool_parse_long(optarg, 0, 1, SIZE_MAX_LOAD, &size))
                return usage("--size: 1 to 65536 bytes, not '%s'", optarg);
            break;
        case 'd':
            if (!tool_parse_long(optarg, 0, 1, DEPTH_MAX, &depth) ||
                (depth & (depth - 1)) != 0)
                return usage("--depth: a power of two from 1 to 256, not "
                             "'%s'",
                             optarg);
            break;
        case 'H':
            want_hold = true;
            break;
        case 't':
            if (!tool_parse_long(optarg, 0, 100, 600000, &timeout_ms))
                return usage("--timeout: 100 to 600000 ms, not '%s'", optarg);
            d.timeout_ms = (int)timeout_ms;
            break;
        case 'h':
            printf("usage: " PROG " [--control PATH] [--seconds S] "
                   "[--size N] [--depth D] [--hold] [--timeout MS]\n");
            return 0;
        default:
            return usage("%s", "unknown option");
        }
    }
    if (optind != argc)
        return usage("unexpected argument '%s'", argv[optind]);
    if ((unsigned long)(depth * size) > HALF)
        return usage("%s", "--depth times --size must be at most 4 MiB");
    /* --hold's signals are taken with sigwait(), never delivered. */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    ao.depth = (uint32_t)depth;
    if ((rc = mem_new(&d.buf, BUF_SIZE)) < 0 ||
        (rc = mem_new(&d.spare, PAGE)) < 0 ||
        (rc = mem_new(&d.outside, PAGE)) < 0) {
        fprintf(stderr, PROG ": memory: %s\n", strerror(-rc));
        return 1;
    }
    rc = accel_access_daemon_create(control, &log, &p);
    if (rc == 0)
        rc = umdev_access_open(accel_access_daemon_provider(p), &ao, &d.a);
    if (rc < 0) {
        printf("error open: %s\n", strerror(-rc));
        fprintf(stderr,
                PROG ": no queue of umdevd's accel parent at %s: "
                     "%s\n",
                control, strerror(-rc));
        rc = 1;
        goto out;
    }
    printf("open depth=%ld\n", depth);
    rc = umdev_access_mem_register(d.a, d.buf.p, d.buf.len, d.buf.fd, 0, RW);
    if (rc == 0)
        rc = umdev_access_mem_register(d.a, d.spare.p, d.spare.len, d.spare.fd,
                                       0, RW);
    if (rc < 0) {
        fail(&d, "register: %s", strerror(-rc));
    } else {
        check_ops(&d);
        if (!d.failed)
            check_faults(&d);
        if (!d.failed)
            check_wait(&d);
        if (!d.failed && seconds > 0)
            load(&d, seconds, (uint32_t)size, (unsigned int)depth);
    }
    if (want_hold)
        hold();
    umdev_access_close(d.a);
    printf("closed\n");
    rc = d.failed ? 1 : 0;
out:
    accel_access_daemon_destroy(p);
    mem_free(&d.buf);
    mem_free(&d.spare);
    mem_free(&d.outside);
    return rc;
}
