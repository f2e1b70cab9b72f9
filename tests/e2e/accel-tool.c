/*
 * accel-tool: the guest-side helper of tests/e2e/accel.sh, linked
 * statically and put into the initramfs. It drives an accel subdevice
 * (devices/accel/README.md) from guest userspace, with no kernel driver:
 * BAR0 and BAR2 through the sysfs resource0/resource2 mmaps, Command.Memory
 * and Command.BusMaster through the sysfs config file, rings, completion
 * records and buffers in locked memory whose physical addresses come from
 * /proc/self/pagemap (so it must run as root, as the initramfs /init does).
 *
 *   accel-tool [-d BDF] [-n COUNT] [-s SIZE] [-q DEPTH] [-S SEED]
 *
 * It finds the device (the only 1234:11ec function, or BDF), reads its
 * capabilities, enables it and every queue, then
 *   1. on every queue: NOP, MEMMOVE, FILL and CRC32C at several sizes and
 *      offsets, each verified (CRC32C against the software implementation
 *      below, itself checked against the standard check value), and one
 *      descriptor with a source outside guest memory, which must complete
 *      with ADDR_FAULT naming that address and touch nothing;
 *   2. on queue 0: COUNT descriptors of each of MEMMOVE, FILL and CRC32C
 *      of SIZE bytes, DEPTH in flight, every result verified, timed: ops/s.
 * Completion is by polling the completion records (MSI-X is not reachable
 * from guest userspace without a driver; polling is what a userspace
 * driver does anyway), and doorbells follow the event-suppression rule.
 *
 * Physical memory is contiguous only within a page here, so every buffer
 * a descriptor names lies inside one 4 KiB page: SIZE is at most 4096.
 * A ring of 32 descriptors (0x80 + 32 * 64 bytes) fits one page too.
 *
 * Output: one "key=value ..." line per result on stdout, each line
 * starting with a word saying what it is (info, check, fault, bench,
 * queue); errors on stderr, exit status 1 (2 for usage errors).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accel.h"            /* register map */
#include "umdev/accel_ring.h" /* the rings: layouts and driver helpers */

#define PAGE 4096u
#define RING_SIZE 32u
#define MAX_QUEUES ACCEL_DEV_MAX_QUEUES
/* A descriptor that has not completed after this long is lost. Generous:
 * TCG on a loaded host is slow, and accel.sh bounds the whole run. */
#define COMP_TIMEOUT_NS (20ull * 1000000000ull)
/* Far above the guest's 512 MiB of RAM and every BAR: never DMA-mapped. */
#define UNMAPPED_ADDR 0x7f0000000000ull

static const char *prog = "accel-tool";

#include "guest-tool.h" /* err(), now_ns() */

/* ---- CRC32C (Castagnoli, reflected 0x82F63B78), the reference ----
 *
 * Not the test kit's kit_crc32c() (tests/common), on purpose: that one is
 * bit at a time, about four times slower than this byte-wide table, and
 * here every timed CRC32C descriptor is verified inside a TCG guest,
 * where the tool's own work already weighs on the ops/s figure (see
 * fill_random()). The source could be shared (this tool is built in the
 * same tree, statically and without sanitizers, so kit_util.c would
 * compile in); the speed is why it is not. The table is checked against
 * the standard check value at start-up. */

static uint32_t crc_table[256];

static void
crc_init(void)
{
    uint32_t i, j, c;

    for (i = 0; i < 256; i++) {
        c = i;
        for (j = 0; j < 8; j++)
            c = (c >> 1) ^ (c & 1 ? 0x82F63B78u : 0);
        crc_table[i] = c;
    }
}

/* README "Descriptors": preset ~seed, inverted at the end. */
static uint32_t
crc32c(uint32_t seed, const uint8_t *p, size_t len)
{
    uint32_t c = ~seed;

    while (len-- > 0)
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* ---- xorshift32 for buffer contents ---- */

static uint32_t
rnd(uint32_t *s)
{
    uint32_t x = *s;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Four bytes per step: under TCG the guest making data is the slow part
 * of a timed run, not the device. */
static void
fill_random(uint8_t *p, size_t len, uint32_t *s)
{
    size_t i;
    uint32_t v;

    for (i = 0; i + 4 <= len; i += 4) {
        v = rnd(s);
        memcpy(p + i, &v, 4);
    }
    for (v = rnd(s); i < len; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

/* ---- the device ---- */

struct dev {
    char path[256]; /* /sys/bus/pci/devices/BDF */
    volatile uint8_t *bar0;
    volatile uint8_t *bar2;
    size_t bar0_len, bar2_len;
    unsigned int nr_queues;
};

static uint32_t
rd32(struct dev *d, uint32_t off)
{
    return *(volatile uint32_t *)(d->bar0 + off);
}

static void
wr32(struct dev *d, uint32_t off, uint32_t v)
{
    *(volatile uint32_t *)(d->bar0 + off) = v;
}

/* 64-bit registers as two 32-bit halves, low half first (README "BAR0
 * registers"): every VMM passes a 32-bit access through unchanged. */
static uint64_t
rd64(struct dev *d, uint32_t off)
{
    uint64_t lo = rd32(d, off);

    return lo | (uint64_t)rd32(d, off + 4) << 32;
}

static void
wr64(struct dev *d, uint32_t off, uint64_t v)
{
    wr32(d, off, (uint32_t)v);
    wr32(d, off + 4, (uint32_t)(v >> 32));
}

static int
read_hex(const char *dir, const char *name, unsigned long *out)
{
    char path[320], buf[32];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = '\0';
    *out = strtoul(buf, NULL, 0);
    return 0;
}

/* The one 1234:11ec function below /sys/bus/pci/devices (or @bdf). */
static int
find_device(struct dev *d, const char *bdf)
{
    static const char base[] = "/sys/bus/pci/devices";
    unsigned long v, id;
    struct dirent *e;
    DIR *dir;

    if (bdf != NULL) {
        snprintf(d->path, sizeof(d->path), "%s/%s", base, bdf);
        if (read_hex(d->path, "vendor", &v) < 0 ||
            read_hex(d->path, "device", &id) < 0) {
            err("%s: no such PCI device", bdf);
            return -1;
        }
        if (v != ACCEL_VENDOR_ID || id != ACCEL_DEVICE_ID) {
            err("%s is %04lx:%04lx, not an accel (%04x:%04x)", bdf, v, id,
                ACCEL_VENDOR_ID, ACCEL_DEVICE_ID);
            return -1;
        }
        return 0;
    }
    dir = opendir(base);
    if (dir == NULL) {
        err("%s: %s", base, strerror(errno));
        return -1;
    }
    d->path[0] = '\0';
    while ((e = readdir(dir)) != NULL) {
        char p[sizeof(d->path)];

        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%.200s", base, e->d_name);
        if (read_hex(p, "vendor", &v) < 0 || read_hex(p, "device", &id) < 0)
            continue;
        if (v != ACCEL_VENDOR_ID || id != ACCEL_DEVICE_ID)
            continue;
        if (d->path[0] != '\0') {
            err("two accel functions: %s and %s (use -d BDF)", d->path, p);
            closedir(dir);
            return -1;
        }
        memcpy(d->path, p, sizeof(p));
    }
    closedir(dir);
    if (d->path[0] == '\0') {
        err("no %04x:%04x function in %s", ACCEL_VENDOR_ID, ACCEL_DEVICE_ID,
            base);
        return -1;
    }
    return 0;
}

static volatile uint8_t *
map_bar(struct dev *d, int bar, size_t *len)
{
    char path[320];
    struct stat st;
    void *p;
    int fd;

    snprintf(path, sizeof(path), "%s/resource%d", d->path, bar);
    fd = open(path, O_RDWR | O_SYNC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        err("%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    *len = (size_t)st.st_size;
    p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        err("mmap %s: %s", path, strerror(errno));
        return NULL;
    }
    return p;
}

/* Command.Memory and Command.BusMaster, through the config file (the
 * kernel forwards the write to the device's config space). */
static int
enable_pci(struct dev *d)
{
    char path[320];
    uint16_t cmd, after;
    int fd;

    snprintf(path, sizeof(path), "%s/config", d->path);
    fd = open(path, O_RDWR);
    if (fd < 0) {
        err("%s: %s", path, strerror(errno));
        return -1;
    }
    if (pread(fd, &cmd, 2, PCI_COMMAND) != 2) {
        err("%s: cannot read Command", path);
        close(fd);
        return -1;
    }
    cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    if (pwrite(fd, &cmd, 2, PCI_COMMAND) != 2 ||
        pread(fd, &after, 2, PCI_COMMAND) != 2) {
        err("%s: cannot write Command", path);
        close(fd);
        return -1;
    }
    close(fd);
    if ((after & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) !=
        (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) {
        err("Command reads 0x%04x after writing 0x%04x", after, cmd);
        return -1;
    }
    return 0;
}

/* ---- DMA-able memory: locked pages with known physical addresses ---- */

struct pages {
    uint8_t *virt;
    uint64_t *phys; /* per page */
    size_t n;
};

static int
pages_alloc(struct pages *pg, size_t n)
{
    uint64_t ent;
    size_t i;
    int fd;

    pg->n = n;
    pg->virt = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    pg->phys = calloc(n, sizeof(*pg->phys));
    if (pg->virt == MAP_FAILED || pg->phys == NULL) {
        err("cannot allocate %zu pages", n);
        return -1;
    }
    /* Locked: a page the kernel moved or swapped out would leave the
     * device writing into memory that is no longer ours. */
    if (mlock(pg->virt, n * PAGE) < 0) {
        err("mlock: %s", strerror(errno));
        return -1;
    }
    memset(pg->virt, 0, n * PAGE);
    fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) {
        err("/proc/self/pagemap: %s", strerror(errno));
        return -1;
    }
    for (i = 0; i < n; i++) {
        off_t off = (off_t)(((uintptr_t)pg->virt / PAGE + i) * 8);

        if (pread(fd, &ent, 8, off) != 8) {
            err("pagemap read: %s", strerror(errno));
            close(fd);
            return -1;
        }
        /* bit 63 present, 54:0 PFN (zero without CAP_SYS_ADMIN) */
        if (!(ent >> 63) || (ent & ((1ull << 55) - 1)) == 0) {
            err("no physical address for page %zu (pagemap 0x%016" PRIx64
                "; not root?)",
                i, ent);
            close(fd);
            return -1;
        }
        pg->phys[i] = (ent & ((1ull << 55) - 1)) * PAGE;
    }
    close(fd);
    return 0;
}

static uint8_t *
pg_virt(struct pages *pg, size_t i)
{
    return pg->virt + i * PAGE;
}

/* ---- queues ---- */

#define TAG(i) (0x7a6700000000ull | (i))

struct queue {
    unsigned int idx;
    uint64_t ring_pa;
    /* The ring (one page) and a page of RING_SIZE records, one per slot,
     * at their physical addresses: the ring ABI's helpers drive them. */
    struct accel_ring_drv r;
    uint64_t doorbells; /* written by us */
};

static int
queue_enable(struct dev *d, struct queue *q)
{
    uint32_t base = ACCEL_REG_QUEUE(q->idx), st;

    wr64(d, base + ACCEL_Q_RING_BASE, q->ring_pa);
    wr32(d, base + ACCEL_Q_RING_SIZE, RING_SIZE);
    wr32(d, base + ACCEL_Q_CTRL, ACCEL_Q_CTRL_ENABLE);
    st = rd32(d, base + ACCEL_Q_STATUS);
    if (ACCEL_Q_STATUS_STATE(st) != ACCEL_QS_ENABLED) {
        err("queue %u: enable failed: STATUS 0x%08x (error 0x%02x, "
            "ERR_ADDR 0x%" PRIx64 ")",
            q->idx, st, ACCEL_Q_STATUS_ERROR(st),
            rd64(d, base + ACCEL_Q_ERR_ADDR));
        return -1;
    }
    /* README "Rings": enabling writes HEAD = 0, DOORBELL_NEEDED = 1. */
    if (accel_ring_load(q->r.ring, ACCEL_RING_HEAD) != 0 ||
        accel_ring_load(q->r.ring, ACCEL_RING_DOORBELL_NEEDED) != 1) {
        err("queue %u: after enable HEAD=%u DOORBELL_NEEDED=%u", q->idx,
            accel_ring_load(q->r.ring, ACCEL_RING_HEAD),
            accel_ring_load(q->r.ring, ACCEL_RING_DOORBELL_NEEDED));
        return -1;
    }
    return 0;
}

/* Put the descriptors posted since the last call behind TAIL and ring the
 * doorbell if the engine asks for one (README "Submitting (event
 * suppression)"). */
static void
queue_publish(struct dev *d, struct queue *q)
{
    if (accel_ring_publish(&q->r)) {
        *(volatile uint32_t *)(d->bar2 + q->idx * ACCEL_DOORBELL_STRIDE) = 1;
        q->doorbells++;
    }
}

/* Poll for the oldest outstanding descriptor's record, into @c. Return:
 * 0, or -1 on timeout. */
static int
queue_reap(struct queue *q, struct accel_comp *c)
{
    uint64_t t0 = now_ns();
    unsigned int spins = 0;

    while (!accel_ring_reap(&q->r, c)) {
        if (++spins % 1024 == 0 && now_ns() - t0 > COMP_TIMEOUT_NS) {
            err("queue %u: descriptor %u not complete after %llu s "
                "(HEAD %u TAIL %u)",
                q->idx, q->r.reaped, COMP_TIMEOUT_NS / 1000000000ull,
                accel_ring_load(q->r.ring, ACCEL_RING_HEAD), q->r.tail);
            return -1;
        }
    }
    return 0;
}

/* A descriptor for @op with the next ring index's tag; the caller sets
 * operands, accel_ring_post() gives it the slot's record. */
static struct accel_desc
desc_prepare(const struct queue *q, uint8_t op, uint32_t size)
{
    struct accel_desc de = {
        .opcode = op,
        .size = size,
        .tag = TAG(q->r.tail),
    };

    return de;
}

static const char *
op_name(uint8_t op)
{
    switch (op) {
    case ACCEL_OP_NOP:
        return "nop";
    case ACCEL_OP_MEMMOVE:
        return "memmove";
    case ACCEL_OP_FILL:
        return "fill";
    case ACCEL_OP_CRC32C:
        return "crc32c";
    default:
        return "?";
    }
}

/* The buffers of one descriptor: a source and a destination page. */
struct work {
    uint8_t *src, *dst;
    uint64_t src_pa, dst_pa;
    uint32_t off, size;
    uint64_t pattern;
    uint32_t seed, crc; /* crc: expected CRC32C */
};

/* Set up the buffers for @op and post its descriptor. */
static void
work_start(struct queue *q, uint8_t op, struct work *w, uint32_t *rs)
{
    struct accel_desc de = desc_prepare(q, op, w->size);

    switch (op) {
    case ACCEL_OP_MEMMOVE:
        fill_random(w->src + w->off, w->size, rs);
        /* not what the copy writes, so a copy that did not happen shows */
        memset(w->dst + w->off, ~w->src[w->off], w->size);
        de.src = w->src_pa + w->off;
        de.dst = w->dst_pa + w->off;
        break;
    case ACCEL_OP_FILL:
        w->pattern = (uint64_t)rnd(rs) << 32 | rnd(rs);
        memset(w->dst + w->off, ~(uint8_t)w->pattern, w->size);
        de.dst = w->dst_pa + w->off;
        de.pattern = w->pattern;
        break;
    case ACCEL_OP_CRC32C:
        fill_random(w->src + w->off, w->size, rs);
        w->seed = rnd(rs);
        w->crc = crc32c(w->seed, w->src + w->off, w->size);
        de.src = w->src_pa + w->off;
        de.crc_seed = w->seed;
        break;
    default:
        break;
    }
    accel_ring_post(&q->r, &de);
}

/* Reap the oldest record, @op's, and check it and the buffers; 0 or -1
 * (with a message). */
static int
work_check(struct queue *q, uint8_t op, const struct work *w)
{
    uint32_t i = q->r.reaped, k;
    const uint8_t *p = w->dst + w->off;
    struct accel_comp cr, *c = &cr;

    if (queue_reap(q, c) < 0)
        return -1;
    if (c->status != ACCEL_ST_SUCCESS || c->opcode != op || c->tag != TAG(i) ||
        (op != ACCEL_OP_NOP && c->bytes != w->size)) {
        err("queue %u: %s size %u off %u: status 0x%02x opcode 0x%02x "
            "bytes %u info 0x%" PRIx64 " tag 0x%" PRIx64,
            q->idx, op_name(op), w->size, w->off, c->status, c->opcode,
            c->bytes, c->info, c->tag);
        return -1;
    }
    switch (op) {
    case ACCEL_OP_MEMMOVE:
        if (memcmp(p, w->src + w->off, w->size) != 0) {
            for (k = 0; p[k] == w->src[w->off + k]; k++)
                ;
            err("queue %u: memmove size %u off %u: byte %u is 0x%02x, "
                "source 0x%02x",
                q->idx, w->size, w->off, k, p[k], w->src[w->off + k]);
            return -1;
        }
        break;
    case ACCEL_OP_FILL:
        for (k = 0; k < w->size; k++) {
            if (p[k] != (uint8_t)(w->pattern >> 8 * (k % 8))) {
                err("queue %u: fill size %u off %u: byte %u is 0x%02x, "
                    "pattern 0x%016" PRIx64,
                    q->idx, w->size, w->off, k, p[k], w->pattern);
                return -1;
            }
        }
        break;
    case ACCEL_OP_CRC32C:
        if ((uint32_t)c->value != w->crc) {
            err("queue %u: crc32c size %u off %u seed 0x%08x: device "
                "0x%08x, software 0x%08x",
                q->idx, w->size, w->off, w->seed, (uint32_t)c->value, w->crc);
            return -1;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* 1. every operation at several sizes and offsets, one at a time. */
static int
check_queue(struct dev *d, struct queue *q, struct pages *buf, uint32_t *rs)
{
    static const uint32_t sizes[] = { 1, 7, 64, 100, 512, 4000, 4096 };
    static const uint8_t ops[] = { ACCEL_OP_NOP, ACCEL_OP_MEMMOVE,
                                   ACCEL_OP_FILL, ACCEL_OP_CRC32C };
    unsigned int o, s, n = 0;
    struct work w = { 0 };

    w.src = pg_virt(buf, 0);
    w.dst = pg_virt(buf, 1);
    w.src_pa = buf->phys[0];
    w.dst_pa = buf->phys[1];
    for (o = 0; o < sizeof(ops); o++) {
        for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            w.size = sizes[s];
            /* an unaligned start where the page has room for one */
            w.off = (PAGE - w.size) * (s % 3) / 2;
            work_start(q, ops[o], &w, rs);
            queue_publish(d, q);
            if (work_check(q, ops[o], &w) < 0)
                return -1;
            n++;
            if (ops[o] == ACCEL_OP_NOP)
                break;
        }
    }
    printf("check queue=%u descriptors=%u ok\n", q->idx, n);
    return 0;
}

/* A source outside guest memory: ADDR_FAULT naming it, nothing written. */
static int
check_fault(struct dev *d, struct queue *q, struct pages *buf)
{
    uint8_t *dst = pg_virt(buf, 1);
    struct accel_desc de = desc_prepare(q, ACCEL_OP_MEMMOVE, 256);
    struct accel_comp cr, *c = &cr;
    uint32_t k;

    memset(dst, 0xa5, PAGE);
    de.src = UNMAPPED_ADDR;
    de.dst = buf->phys[1];
    accel_ring_post(&q->r, &de);
    queue_publish(d, q);
    if (queue_reap(q, c) < 0)
        return -1;
    if (c->status != ACCEL_ST_ADDR_FAULT || c->info != UNMAPPED_ADDR ||
        c->bytes != 0) {
        err("queue %u: memmove from 0x%llx: status 0x%02x info 0x%" PRIx64
            " bytes %u, expected ADDR_FAULT (0x03) at that address",
            q->idx, UNMAPPED_ADDR, c->status, c->info, c->bytes);
        return -1;
    }
    for (k = 0; k < PAGE; k++) {
        if (dst[k] != 0xa5) {
            err("queue %u: a faulted memmove wrote byte %u of its "
                "destination",
                q->idx, k);
            return -1;
        }
    }
    printf("fault queue=%u status=addr_fault info=0x%" PRIx64 " ok\n", q->idx,
           c->info);
    return 0;
}

/* 2. @count descriptors of @op, @depth in flight, each verified. */
static int
bench(struct dev *d, struct queue *q, struct pages *buf, uint8_t op,
      uint32_t count, uint32_t size, uint32_t depth, uint32_t *rs)
{
    struct work w[RING_SIZE];
    uint32_t first = q->r.tail, submitted = 0, done = 0, k;
    uint64_t db0 = q->doorbells, t0, t1;
    double sec;

    for (k = 0; k < depth; k++) {
        memset(&w[k], 0, sizeof(w[k]));
        w[k].src = pg_virt(buf, 2 + 2 * k);
        w[k].dst = pg_virt(buf, 3 + 2 * k);
        w[k].src_pa = buf->phys[2 + 2 * k];
        w[k].dst_pa = buf->phys[3 + 2 * k];
        w[k].size = size;
    }
    t0 = now_ns();
    while (done < count) {
        /* refill the window, then reap the oldest */
        uint32_t batch = 0;

        while (submitted < count && submitted - done < depth) {
            work_start(q, op, &w[(first + submitted) % depth], rs);
            submitted++;
            batch++;
        }
        if (batch > 0)
            queue_publish(d, q);
        if (work_check(q, op, &w[(first + done) % depth]) < 0)
            return -1;
        done++;
    }
    t1 = now_ns();
    sec = (double)(t1 - t0) / 1e9;
    printf("bench op=%s size=%u depth=%u count=%u seconds=%.3f "
           "ops_per_s=%.0f bytes_per_s=%.0f doorbells=%" PRIu64
           " verified=%u\n",
           op_name(op), size, depth, count, sec, count / sec,
           (double)count * size / sec, q->doorbells - db0, done);
    return 0;
}

static long
arg_num(const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 0);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

static int
usage(void)
{
    fprintf(stderr,
            "usage: %s [-d BDF] [-n COUNT] [-s SIZE] [-q DEPTH] "
            "[-S SEED]\n",
            prog);
    return 2;
}

int
main(int argc, char **argv)
{
    static const uint8_t bench_ops[] = { ACCEL_OP_MEMMOVE, ACCEL_OP_FILL,
                                         ACCEL_OP_CRC32C };
    struct queue qs[MAX_QUEUES];
    const char *bdf = NULL;
    long count = 2000, size = 4096, depth = 16, seed = 1;
    struct pages ctl, buf;
    struct dev d = { 0 };
    uint32_t rs, v;
    unsigned int i, o;
    int c;

    while ((c = getopt(argc, argv, "d:n:s:q:S:")) != -1) {
        switch (c) {
        case 'd':
            bdf = optarg;
            break;
        case 'n':
            if ((count = arg_num(optarg, 1, 10000000)) < 0)
                return usage();
            break;
        case 's':
            if ((size = arg_num(optarg, 1, PAGE)) < 0)
                return usage();
            break;
        case 'q':
            if ((depth = arg_num(optarg, 1, RING_SIZE)) < 0)
                return usage();
            break;
        case 'S':
            if ((seed = arg_num(optarg, 1, 0xffffffffl)) < 0)
                return usage();
            break;
        default:
            return usage();
        }
    }
    if (optind != argc)
        return usage();
    rs = (uint32_t)seed;
    crc_init();
    /* The reference against the standard check value first. */
    if ((v = crc32c(0, (const uint8_t *)"123456789", 9)) != 0xE3069283u) {
        err("software CRC32C of \"123456789\" is 0x%08x, not 0xE3069283", v);
        return 1;
    }

    if (find_device(&d, bdf) < 0 || enable_pci(&d) < 0)
        return 1;
    if ((d.bar0 = map_bar(&d, 0, &d.bar0_len)) == NULL ||
        (d.bar2 = map_bar(&d, 2, &d.bar2_len)) == NULL)
        return 1;
    if (d.bar0_len < ACCEL_BAR0_SIZE) {
        err("resource0 is %zu bytes, expected %u", d.bar0_len, ACCEL_BAR0_SIZE);
        return 1;
    }
    v = rd32(&d, ACCEL_REG_VERSION);
    d.nr_queues = rd32(&d, ACCEL_REG_NUM_QUEUES);
    printf("info dev=%s version=0x%08x queues=%u opcap=0x%" PRIx64
           " max_xfer=%u max_batch=%u max_ring=%u features=0x%x bar0=%zu "
           "bar2=%zu\n",
           strrchr(d.path, '/') + 1, v, d.nr_queues, rd64(&d, ACCEL_REG_OPCAP),
           rd32(&d, ACCEL_REG_MAX_XFER), rd32(&d, ACCEL_REG_MAX_BATCH),
           rd32(&d, ACCEL_REG_MAX_RING), rd32(&d, ACCEL_REG_FEATURES),
           d.bar0_len, d.bar2_len);
    if (v >> 16 != ACCEL_VERSION >> 16) {
        err("register interface version 0x%08x, this tool knows 0x%08x", v,
            ACCEL_VERSION);
        return 1;
    }
    if (d.nr_queues < 1 || d.nr_queues > MAX_QUEUES ||
        d.bar2_len < d.nr_queues * ACCEL_DOORBELL_STRIDE) {
        err("NUM_QUEUES %u does not fit (max %u, BAR2 %zu bytes)", d.nr_queues,
            MAX_QUEUES, d.bar2_len);
        return 1;
    }
    if ((rd64(&d, ACCEL_REG_OPCAP) &
         ((1u << ACCEL_OP_MEMMOVE) | (1u << ACCEL_OP_FILL) |
          (1u << ACCEL_OP_CRC32C))) !=
        ((1u << ACCEL_OP_MEMMOVE) | (1u << ACCEL_OP_FILL) |
         (1u << ACCEL_OP_CRC32C))) {
        err("OPCAP lacks MEMMOVE, FILL or CRC32C");
        return 1;
    }

    /* per queue: a ring page and a record page; buffers: 2 + 2 * depth */
    if (pages_alloc(&ctl, 2 * d.nr_queues) < 0 ||
        pages_alloc(&buf, 2 + 2 * RING_SIZE) < 0)
        return 1;
    wr32(&d, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_ENABLE);
    if (!(rd32(&d, ACCEL_REG_DEVSTS) & ACCEL_DEVSTS_ENABLED)) {
        err("DEVSTS 0x%08x after DEVCTL.ENABLE", rd32(&d, ACCEL_REG_DEVSTS));
        return 1;
    }
    for (i = 0; i < d.nr_queues; i++) {
        qs[i] = (struct queue){ .idx = i, .ring_pa = ctl.phys[2 * i] };
        accel_ring_drv_init(
            &qs[i].r, pg_virt(&ctl, 2 * i), RING_SIZE,
            (struct accel_comp *)(void *)pg_virt(&ctl, 2 * i + 1),
            ctl.phys[2 * i + 1]);
        if (queue_enable(&d, &qs[i]) < 0)
            return 1;
    }
    for (i = 0; i < d.nr_queues; i++)
        if (check_queue(&d, &qs[i], &buf, &rs) < 0 ||
            check_fault(&d, &qs[i], &buf) < 0)
            return 1;
    for (o = 0; o < sizeof(bench_ops); o++)
        if (bench(&d, &qs[0], &buf, bench_ops[o], (uint32_t)count,
                  (uint32_t)size, (uint32_t)depth, &rs) < 0)
            return 1;

    for (i = 0; i < d.nr_queues; i++) {
        uint32_t base = ACCEL_REG_QUEUE(i);
        uint64_t done, t0 = now_ns();

        /* The engine counts a descriptor just after its record: give the
         * last one a moment. */
        while ((done = rd64(&d, base + ACCEL_Q_COMPLETED)) != qs[i].r.tail &&
               now_ns() - t0 < 1000000000ull)
            usleep(1000);

        printf("queue idx=%u completed=%" PRIu64 " submitted=%u "
               "doorbells_device=%u doorbells_tool=%" PRIu64 " status=0x%08x\n",
               i, done, qs[i].r.tail, rd32(&d, base + ACCEL_Q_DOORBELLS),
               qs[i].doorbells, rd32(&d, base + ACCEL_Q_STATUS));
        if (done != qs[i].r.tail) {
            err("queue %u: COMPLETED %" PRIu64 ", submitted %u", i, done,
                qs[i].r.tail);
            return 1;
        }
    }
    if ((v = rd32(&d, ACCEL_REG_SWERR_COUNT)) != 0) {
        err("the error log holds entries: SWERR_COUNT 0x%08x, first "
            "INFO 0x%08x ADDR 0x%" PRIx64,
            v, rd32(&d, ACCEL_REG_SWERR_INFO), rd64(&d, ACCEL_REG_SWERR_ADDR));
        return 1;
    }
    /* Leave the device as found: queues off, device disabled. */
    wr32(&d, ACCEL_REG_DEVCTL, 0);
    return 0;
}
