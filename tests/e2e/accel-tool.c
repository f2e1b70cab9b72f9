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
 *   accel-tool -R SECONDS [-u /dev/uioN] [-d BDF] [-q DEPTH] [-S SEED]
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
 * With -R, instead: a sustained run of SECONDS with DEPTH in flight on
 * every queue, every descriptor verified, none lost or done twice, by
 * interrupt with -u (see "a sustained run" below; accel-restart.sh).
 * Completion is by polling the completion records (MSI-X is not reachable
 * from guest userspace without a driver; polling is what a userspace
 * driver does anyway), or in a run with -u by INTx through
 * uio_pci_generic, and doorbells follow the event-suppression rule.
 *
 * Physical memory is contiguous only within a page here, so every buffer
 * a descriptor names lies inside one 4 KiB page: SIZE is at most 4096.
 * A ring of 32 descriptors (0x80 + 32 * 64 bytes) fits one page too.
 *
 * Output: one "key=value ..." line per result on stdout, each line
 * starting with a word saying what it is (info, check, fault, bench, run,
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
#include <poll.h>
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

/* Flags every descriptor gets besides COMP: ACCEL_DF_INTR in an
 * interrupt-driven run (-R with -u). */
static uint8_t desc_flags;

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
        .flags = desc_flags,
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

/* ---- 3. a sustained run (-R): every queue kept DEPTH deep ----
 *
 * MEMMOVE, FILL and CRC32C chosen at random, at random sizes and
 * offsets, each verified as it is reaped, on every queue at once, each
 * queue refilled to DEPTH as its descriptors complete, for SECONDS; then
 * drained. What tests/e2e/accel-restart.sh keeps going while the host
 * replaces the device's worker under it.
 *
 * Lost or done twice: descriptors complete in ring order with the tag of
 * their ring index, so a lost one stalls its queue and a skipped one
 * shows as a wrong tag. A reaped record is then poisoned (its tag
 * overwritten) and must still be poisoned when its slot is next used and
 * at the end: a descriptor the engine ran a second time would have
 * written its record again. At the end, the queue's COMPLETED register
 * must equal what was submitted.
 *
 * With -u /dev/uioN (the device bound to uio_pci_generic: INTx, MSI-X
 * off) the run is interrupt-driven: every descriptor asks for an
 * interrupt (ACCEL_DF_INTR), the tool sleeps in the uio device until one
 * comes, reads and clears INTSTS, and reaps only the queues INTSTS names,
 * then unmasks. A completion is thus only ever seen through its
 * interrupt: one that never comes leaves its record unreaped, and after
 * IRQ_TIMEOUT_MS without an interrupt the tool tells a missed interrupt
 * (the record is there) from a lost descriptor (it is not). INTx is
 * level-triggered, so one interrupt may announce several completions.
 */

#define POISON_TAG 0x5eed5eed5eed5eedull
#define IRQ_TIMEOUT_MS 20000

struct run_queue {
    struct queue *q;
    struct work w[RING_SIZE]; /* by ring index % depth */
    uint8_t op[RING_SIZE];
    bool poisoned[RING_SIZE]; /* by ring slot */
    uint64_t submitted, verified, signals, empty_signals;
};

static volatile struct accel_comp *
run_record(const struct run_queue *rq, uint32_t idx)
{
    return &rq->q->r.comps[idx & (RING_SIZE - 1)];
}

/* Post the next descriptor: a random operation, size and offset inside
 * its pages. -1 if its record slot shows a second write. */
static int
run_post(struct run_queue *rq, uint32_t depth, uint32_t *rs)
{
    static const uint8_t ops[] = { ACCEL_OP_MEMMOVE, ACCEL_OP_FILL,
                                   ACCEL_OP_CRC32C };
    uint32_t idx = rq->q->r.tail, slot = idx & (RING_SIZE - 1);
    struct work *w = &rq->w[idx % depth];
    volatile struct accel_comp *c = run_record(rq, idx);

    if (rq->poisoned[slot] && c->tag != POISON_TAG) {
        err("queue %u: the record of descriptor %u was written again after "
            "it was reaped (tag 0x%" PRIx64 ", status 0x%02x): a descriptor "
            "done twice",
            rq->q->idx, idx - RING_SIZE, c->tag, c->status);
        return -1;
    }
    rq->op[idx % depth] = ops[rnd(rs) % sizeof(ops)];
    w->size = 1 + rnd(rs) % PAGE;
    w->off = rnd(rs) % (PAGE - w->size + 1);
    work_start(rq->q, rq->op[idx % depth], w, rs);
    rq->poisoned[slot] = false;
    rq->submitted++;
    return 0;
}

/* Reap and verify every completed descriptor of @rq, refill it while
 * @more, publish. Return the number reaped, or -1. */
static int
run_reap(struct dev *d, struct run_queue *rq, uint32_t depth, bool more,
         uint32_t *rs)
{
    struct accel_ring_drv *r = &rq->q->r;
    int n = 0;

    while (r->reaped != r->tail &&
           accel_comp_status(&r->comps[r->reaped & (RING_SIZE - 1)]) !=
               ACCEL_ST_NONE) {
        uint32_t idx = r->reaped;

        if (work_check(rq->q, rq->op[idx % depth], &rq->w[idx % depth]) < 0)
            return -1;
        run_record(rq, idx)->tag = POISON_TAG;
        rq->poisoned[idx & (RING_SIZE - 1)] = true;
        rq->verified++;
        n++;
    }
    while (more && r->tail - r->reaped < depth)
        if (run_post(rq, depth, rs) < 0)
            return -1;
    queue_publish(d, rq->q);
    return n;
}

/* No interrupt for IRQ_TIMEOUT_MS with work outstanding: say which. */
static void
run_stalled(struct dev *d, struct run_queue *rqs, unsigned int nq)
{
    unsigned int i;

    for (i = 0; i < nq; i++) {
        struct accel_ring_drv *r = &rqs[i].q->r;
        uint32_t base = ACCEL_REG_QUEUE(i);

        if (r->reaped == r->tail)
            continue;
        err("queue %u: %s descriptor %u after %u s without an interrupt "
            "(INTSTS 0x%08x, HEAD %u TAIL %u, COMPLETED %" PRIu64
            ", STATUS 0x%08x)",
            i,
            accel_comp_status(&r->comps[r->reaped & (RING_SIZE - 1)]) !=
                    ACCEL_ST_NONE
                ? "missed interrupt: completed"
                : "lost: no record for",
            r->reaped, IRQ_TIMEOUT_MS / 1000, rd32(d, ACCEL_REG_INTSTS),
            accel_ring_load(r->ring, ACCEL_RING_HEAD), r->tail,
            rd64(d, base + ACCEL_Q_COMPLETED), rd32(d, base + ACCEL_Q_STATUS));
    }
}

/* uio_pci_generic masks INTx in the handler (Command.InterruptDisable,
 * once the device's Status.Interrupt said the line was its); the
 * program unmasks by clearing the bit again through the config file
 * (Documentation/driver-api/uio-howto.rst, uio_pci_generic). */
static int
intx_unmask(int cfg)
{
    uint8_t hi;

    if (pread(cfg, &hi, 1, PCI_COMMAND + 1) != 1) {
        err("config: reading Command: %s", strerror(errno));
        return -1;
    }
    hi &= (uint8_t) ~(PCI_COMMAND_INTX_DISABLE >> 8);
    if (pwrite(cfg, &hi, 1, PCI_COMMAND + 1) != 1) {
        err("config: unmasking INTx: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* @uio: the uio device's fd, or -1 to poll; @cfg: the config file's,
 * with @uio. Both stay open for the process's life. */
static int
run(struct dev *d, struct queue *qs, struct pages *buf, uint32_t depth,
    uint32_t seconds, int uio, int cfg, uint32_t *rs)
{
    static struct run_queue rqs[MAX_QUEUES];
    unsigned int nq = d->nr_queues, i, k;
    uint64_t t0 = now_ns(), t_end = t0 + seconds * 1000000000ull, last;
    uint64_t irqs = 0, rounds = 0, spurious = 0, total = 0;
    uint32_t first = 0, count;
    bool more = true;
    int n;

    for (i = 0; i < nq; i++) {
        struct run_queue *rq = &rqs[i];

        memset(rq, 0, sizeof(*rq));
        rq->q = &qs[i];
        for (k = 0; k < depth; k++) {
            size_t pg = 2 * (i * depth + k);

            rq->w[k].src = pg_virt(buf, pg);
            rq->w[k].dst = pg_virt(buf, pg + 1);
            rq->w[k].src_pa = buf->phys[pg];
            rq->w[k].dst_pa = buf->phys[pg + 1];
        }
    }
    if (uio >= 0) {
        desc_flags = ACCEL_DF_INTR;
        /* Clear causes left from before (flushed by the read back, as
         * below), then let the line through. */
        wr32(d, ACCEL_REG_INTSTS, rd32(d, ACCEL_REG_INTSTS));
        (void)rd32(d, ACCEL_REG_INTSTS);
        if (intx_unmask(cfg) < 0)
            return -1;
    }
    for (i = 0; i < nq; i++)
        if (run_reap(d, &rqs[i], depth, true, rs) < 0)
            return -1;
    printf("run start queues=%u depth=%u seconds=%u completion=%s\n", nq, depth,
           seconds, uio >= 0 ? "interrupt" : "poll");
    fflush(stdout);
    last = now_ns();
    for (;;) {
        bool outstanding = false;

        more = now_ns() < t_end;
        for (i = 0; i < nq; i++)
            outstanding |= qs[i].r.reaped != qs[i].r.tail;
        if (!outstanding)
            break;
        if (uio >= 0) {
            struct pollfd p = { .fd = uio, .events = POLLIN };
            uint32_t sts;

            n = poll(&p, 1, IRQ_TIMEOUT_MS);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                err("uio: poll: %s", strerror(errno));
                return -1;
            }
            if (n == 0) {
                run_stalled(d, rqs, nq);
                return -1;
            }
            if (read(uio, &count, sizeof(count)) != (ssize_t)sizeof(count)) {
                err("uio: read: %s", strerror(errno));
                return -1;
            }
            /* The kernel's running count of the interrupts it handled:
             * one read may cover several. */
            if (rounds++ == 0)
                first = count;
            irqs = (uint64_t)(count - first) + 1;
            /* Clear what was read, and read back before reaping: QEMU
             * posts BAR writes, and an engine polling TAIL could run the
             * descriptors refilled below and set their causes before a
             * clear still on its way arrived, which would then wipe
             * them (a lost interrupt; the read flushes the write, as on
             * PCI). */
            sts = rd32(d, ACCEL_REG_INTSTS);
            if (sts != 0) {
                wr32(d, ACCEL_REG_INTSTS, sts);
                (void)rd32(d, ACCEL_REG_INTSTS);
            }
            if (sts & ACCEL_INTSTS_ERROR) {
                err("INTSTS 0x%08x: the device logged an error (SWERR_INFO "
                    "0x%08x)",
                    sts, rd32(d, ACCEL_REG_SWERR_INFO));
                return -1;
            }
            if (sts == 0)
                spurious++;
            for (i = 0; i < nq; i++) {
                if (!(sts & ACCEL_INTSTS_QUEUE(i)))
                    continue;
                rqs[i].signals++;
                if ((n = run_reap(d, &rqs[i], depth, more, rs)) < 0)
                    return -1;
                if (n == 0)
                    rqs[i].empty_signals++;
                total += (uint64_t)n;
            }
            if (intx_unmask(cfg) < 0)
                return -1;
        } else {
            uint64_t before = total;

            for (i = 0; i < nq; i++) {
                if ((n = run_reap(d, &rqs[i], depth, more, rs)) < 0)
                    return -1;
                total += (uint64_t)n;
            }
            if (total != before) {
                last = now_ns();
            } else if (now_ns() - last > COMP_TIMEOUT_NS) {
                run_stalled(d, rqs, nq);
                return -1;
            }
        }
    }
    /* Every record still poisoned: nothing ran a second time, up to the
     * last descriptor. */
    usleep(100000);
    for (i = 0; i < nq; i++) {
        for (k = 0; k < RING_SIZE; k++) {
            if (rqs[i].poisoned[k] && rqs[i].q->r.comps[k].tag != POISON_TAG) {
                err("queue %u: record slot %u written again after it was "
                    "reaped: a descriptor done twice",
                    i, k);
                return -1;
            }
        }
    }
    for (i = 0; i < nq; i++) {
        printf("run queue=%u submitted=%" PRIu64 " completed=%" PRIu64
               " verified=%" PRIu64 " signals=%" PRIu64
               " empty_signals=%" PRIu64 "\n",
               i, rqs[i].submitted, rqs[i].verified, rqs[i].verified,
               rqs[i].signals, rqs[i].empty_signals);
    }
    printf("run end seconds=%.3f verified=%" PRIu64 " interrupts=%" PRIu64
           " rounds=%" PRIu64 " spurious=%" PRIu64 "\n",
           (double)(now_ns() - t0) / 1e9, total, irqs, rounds, spurious);
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
            "[-S SEED]\n"
            "       %s -R SECONDS [-u /dev/uioN] [-d BDF] [-q DEPTH] "
            "[-S SEED]\n",
            prog, prog);
    return 2;
}

int
main(int argc, char **argv)
{
    static const uint8_t bench_ops[] = { ACCEL_OP_MEMMOVE, ACCEL_OP_FILL,
                                         ACCEL_OP_CRC32C };
    struct queue qs[MAX_QUEUES];
    const char *bdf = NULL;
    long count = 2000, size = 4096, depth = 16, seed = 1, seconds = -1;
    const char *uio_path = NULL;
    int uio = -1, cfg = -1;
    struct pages ctl, buf;
    struct dev d = { 0 };
    uint32_t rs, v;
    unsigned int i, o;
    int c;

    while ((c = getopt(argc, argv, "d:n:s:q:S:R:u:")) != -1) {
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
        case 'R':
            if ((seconds = arg_num(optarg, 1, 86400)) < 0)
                return usage();
            break;
        case 'u':
            uio_path = optarg;
            break;
        default:
            return usage();
        }
    }
    if (optind != argc || (uio_path != NULL && seconds < 0))
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

    if (uio_path != NULL) {
        char path[320];

        snprintf(path, sizeof(path), "%s/config", d.path);
        if ((uio = open(uio_path, O_RDWR)) < 0 ||
            (cfg = open(path, O_RDWR)) < 0) {
            err("%s: %s", uio < 0 ? uio_path : path, strerror(errno));
            return 1;
        }
    }
    /* per queue: a ring page and a record page; buffers: 2 + 2 * depth,
     * or in a run 2 * depth per queue */
    if (pages_alloc(&ctl, 2 * d.nr_queues) < 0 ||
        pages_alloc(&buf, seconds < 0 ? 2 + 2 * RING_SIZE
                                      : 2 * (size_t)depth * d.nr_queues) < 0)
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
    if (seconds >= 0) {
        if (run(&d, qs, &buf, (uint32_t)depth, (uint32_t)seconds, uio, cfg,
                &rs) < 0)
            return 1;
    } else {
        for (i = 0; i < d.nr_queues; i++)
            if (check_queue(&d, &qs[i], &buf, &rs) < 0 ||
                check_fault(&d, &qs[i], &buf) < 0)
                return 1;
        for (o = 0; o < sizeof(bench_ops); o++)
            if (bench(&d, &qs[0], &buf, bench_ops[o], (uint32_t)count,
                      (uint32_t)size, (uint32_t)depth, &rs) < 0)
                return 1;
    }

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
