/*
 * libFuzzer target: a stream of BAR accesses, config writes, DMA mappings,
 * guest-memory contents and resets against an accel subdevice
 * (devices/accel) on an engine with no threads of its own, so every
 * descriptor runs on the fuzzer's thread when the input says (op POLL)
 * and what happens is fixed by the input alone.
 *
 * Guest memory is a memfd of GUEST_PAGES pages, DMA-mapped by the input
 * (op MAP) at GUEST_IOVA in one of a few layouts, with canary pages at
 * both ends of the file and guard pages around the device's mapping of it:
 * a device access outside what the client mapped faults (ASan reports the
 * SEGV) or changes a canary. After every operation:
 *   - config space: identity, BAR type bits, the capability chain hold;
 *   - BAR0's read-only identity registers read their power-on values and
 *     DEVCTL.RESET reads 0; every queue's state is a defined one;
 *   - the canaries are intact.
 * At the end the device must still answer a REGION_READ over the socket,
 * and once the input's client is gone no descriptor is left open.
 *
 * Speed: the device (one per configuration byte 0 names, each on an
 * engine of its own), its engine and guest memory live for the process;
 * an input is one new client (a socketpair and VERSION). After it the
 * client resets the device (VFIO_USER_DEVICE_RESET, the device's own
 * reset path) and hangs up, the memfd is emptied, and
 * accel_engine_rewind() restores what a reset leaves in the engine and a
 * new one has not (the round-robin cursor; a queue's error status, which
 * reset keeps when the queue was not running). So no input depends on the
 * one before and a crash replays alone. FUZZ_SELFCHECK=1 compares each
 * power-cycled device with a new one (config space, BARs, IRQ state,
 * engine queue status) and aborts on a difference; the committed corpus
 * passes it. Teardown runs at exit, under LSan.
 * Measured (2 CPUs, two other nice-19 fuzzers and other builds running):
 *   taskset -c 1 nice -n -5 fuzz_accel_bar -max_total_time=30
 *   -print_final_stats=1 DIR  (DIR a copy of fuzz/corpus/accel_bar, or
 *   empty), stat::average_exec_per_sec:
 *     a device per input:  from the corpus 146/s, from empty 677/s
 *     one for the process: from the corpus 233/s, from empty 1851/s
 *   Most of an input's time is now its own operations and the checks
 *   after each (config space, BAR0 identity, queue states), which stay.
 *
 * Input:
 *   byte 0  bits 0-1: queues (1, 2, 4, 4); bit 2: software CRC32C
 *   ops     until the input ends, each an opcode byte (mod OP_COUNT) and
 *           its operands (missing operand bytes read as 0):
 *   BAR0_WR  u16 offset (mod BAR0 size), u8 width code, that many bytes
 *   BAR0_RD  u16 offset, u8 width code
 *   BAR2_WR / BAR2_RD  likewise in BAR2
 *   CFG_WR / CFG_RD    likewise in config space (256 bytes)
 *   MAP      u8 layout (fuzz_layout(), bar_harness.h)
 *   UNMAP    u8 which range
 *   MEM      u16 guest offset, u8 length, that many bytes into guest memory
 *   PTR      u16 guest offset (8-aligned), u16 k: the u64 GUEST_IOVA + k
 *            there (guest pointers are hard to guess byte by byte)
 *   RESET    VFIO_USER_DEVICE_RESET over the socket
 *   POLL     u8 n: up to n % 32 + 1 engine queue visits
 *   IRQS     u8: bit 0 MSI-X (else INTx), bit 1 tear down, bits 2-3 start
 *   SOCK_RD  a REGION_READ of VERSION over the socket
 * Width code w: bit 7 set: (w & 15) + 1 bytes (any width); else
 * 1, 2, 4 or 8 bytes by w & 3.
 * fuzz/corpus/accel_bar/ holds hand-made inputs that enable the device and
 * a queue, post descriptors and ring the doorbell.
 */
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel.h"
#include "bar_harness.h"
#include "kit_util.h"
#include "umdev/wire.h"
#include "umdev/dev_testing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUEST_PAGES 16u
#define GUEST_SIZE (GUEST_PAGES * FUZZ_PAGE)
#define GUEST_IOVA 0x100000ull

enum op {
    OP_BAR0_WR,
    OP_BAR0_RD,
    OP_BAR2_WR,
    OP_BAR2_RD,
    OP_CFG_WR,
    OP_CFG_RD, /* the last of the FUZZ_REGION_OPS */
    OP_MAP,
    OP_UNMAP,
    OP_MEM,
    OP_PTR,
    OP_RESET,
    OP_POLL,
    OP_IRQS,
    OP_SOCK_RD,
    OP_COUNT,
};

/* Every line is formatted (format bugs show under the sanitizers);
 * UMDEV_FUZZ_VERBOSE=1 prints them. */
static struct kit_log fuzz_log;
struct harness {
    struct accel_engine *e;
    struct accel_dev *ad;
    struct umdev_dev *dev;
    struct fuzz_bar b;     /* client, guest memory, invariants, eventfd */
    uint8_t bar0_ro[0x20]; /* VERSION .. FEATURES at power-on */
    unsigned int nq;
    int unguarded; /* sides of device mappings without a guard page */
};

/* One DMA_MAP with guard pages around the device's mapping. */
static void
map_one(struct harness *h, uint64_t file_off, uint64_t iova, uint64_t len,
        uint32_t flags)
{
    h->unguarded += fuzz_dma_map_guarded(
        &h->b.c, h->b.g.fd, FUZZ_PAGE + file_off, iova, len, flags);
}

/* Layouts: 0 all read-write; 1 two adjacent halves, the second read-only
 * (ranges crossing mappings, writes refused); 2 all read-only; 3 two
 * read-write halves with an unmapped page between them. */
static void
map_layout(struct harness *h, uint8_t v)
{
    struct fuzz_map m[2];
    size_t i, n = fuzz_layout(v, GUEST_IOVA, GUEST_SIZE, m);

    for (i = 0; i < n; i++)
        map_one(h, m[i].file_off, m[i].iova, m[i].len, m[i].flags);
}

static void
unmap_some(struct harness *h, uint8_t v)
{
    uint64_t iova, len;

    fuzz_unmap_range(v, GUEST_IOVA, GUEST_SIZE, &iova, &len);
    fuzz_dma_unmap(&h->b.c, iova, len);
}

static uint32_t
bar0_rd32(struct harness *h, uint32_t off)
{
    uint32_t v = 0;

    FUZZ_CHECK_EQ(
        umdev_dev_region_rw(h->dev, UMDEV_PCI_BAR0_REGION, off, &v, 4, false),
        0);
    return v;
}

static void
check(void *arg)
{
    struct harness *h = arg;
    uint8_t now[sizeof(h->bar0_ro)];
    unsigned int q, st;

    fuzz_bar_check(&h->b);
    for (q = 0; q < sizeof(now); q += 4) {
        uint32_t v = bar0_rd32(h, q);

        memcpy(now + q, &v, 4);
    }
    FUZZ_CHECK_EQ(memcmp(now, h->bar0_ro, sizeof(now)), 0);
    FUZZ_CHECK_EQ(bar0_rd32(h, ACCEL_REG_DEVCTL) & ACCEL_DEVCTL_RESET, 0);
    for (q = 0; q < h->nq; q++) {
        st = bar0_rd32(h, ACCEL_REG_QUEUE(q) + ACCEL_Q_STATUS);
        FUZZ_CHECK(ACCEL_Q_STATUS_STATE(st) <= ACCEL_QS_ERROR);
    }
}

static void
mem_write(struct harness *h, struct fuzz_in *in)
{
    uint8_t *m = fuzz_guest_mem(&h->b.g);
    size_t off = fuzz_u16(in) % GUEST_SIZE, n = fuzz_u8(in), i;

    for (i = 0; i < n; i++)
        m[(off + i) % GUEST_SIZE] = fuzz_u8(in);
}

static void
ptr_write(struct harness *h, struct fuzz_in *in)
{
    uint8_t *m = fuzz_guest_mem(&h->b.g);
    size_t off = (fuzz_u16(in) % GUEST_SIZE) & ~(size_t)7;
    uint64_t v = GUEST_IOVA + fuzz_u16(in);

    memcpy(m + off, &v, 8);
}

static void
irqs(struct harness *h, uint8_t v)
{
    uint32_t index =
        (v & 1) ? VFIO_PCI_MSIX_IRQ_INDEX : VFIO_PCI_INTX_IRQ_INDEX;
    uint32_t start = (v & 1) ? (v >> 2) & 3 : 0;
    uint32_t count = (v & 1) ? h->nq + 1 - (start < h->nq ? start : h->nq) : 1;

    fuzz_set_irqs(&h->b.c, index, start, count, (v & 2) ? -1 : h->b.efd);
}

static void
sock_read_version(struct harness *h)
{
    uint32_t v = 0;

    FUZZ_CHECK_EQ(fuzz_region_read(&h->b.c, UMDEV_PCI_BAR0_REGION,
                                   ACCEL_REG_VERSION, &v, 4),
                  0);
    FUZZ_CHECK_EQ(v, ACCEL_VERSION);
}

static void
accel_op(void *arg, unsigned int op, struct fuzz_in *in)
{
    struct harness *h = arg;

    switch (op) {
    case OP_MAP:
        map_layout(h, fuzz_u8(in));
        break;
    case OP_UNMAP:
        unmap_some(h, fuzz_u8(in));
        break;
    case OP_MEM:
        mem_write(h, in);
        break;
    case OP_PTR:
        ptr_write(h, in);
        break;
    case OP_RESET:
        FUZZ_CHECK_EQ(fuzz_reset(&h->b.c), 0);
        break;
    case OP_POLL:
        accel_engine_poll(h->e, fuzz_u8(in) % 32 + 1);
        break;
    case OP_IRQS:
        irqs(h, fuzz_u8(in));
        break;
    case OP_SOCK_RD:
        sock_read_version(h);
        break;
    }
}

/* The devices: one per configuration the input's first byte names
 * (queues, CRC implementation), each on an engine of its own as a new
 * one would be, made on first use and kept for the process. */
struct device {
    struct accel_engine *e;
    struct accel_dev *ad;
};
static struct device devices[2][3]; /* [crc_soft][queues 1, 2, 4] */
static struct fuzz_bar bar;         /* guest memory, eventfd: the process's */

static void
device_create(struct device *d, unsigned int nq, bool crc_soft)
{
    struct accel_engine_config ec = { 0 };
    struct accel_dev_config dc = { .name = "fuzz" };

    ec.nr_queues = 4;
    ec.manual = true;
    ec.crc_soft = crc_soft;
    ec.log = &fuzz_log.logger;
    dc.nr_queues = nq;
    dc.log = ec.log;
    FUZZ_CHECK_EQ(accel_engine_create(&ec, &d->e), 0);
    FUZZ_CHECK_EQ(accel_dev_create(d->e, &dc, &d->ad), 0);
}

static void
device_destroy(struct device *d)
{
    accel_dev_destroy(d->ad);
    accel_engine_destroy(d->e);
    d->ad = NULL;
    d->e = NULL;
}

/* At exit, so that teardown runs under the sanitizers (and LSan) too. */
static void
devices_free(void)
{
    unsigned int i, j;

    for (i = 0; i < 2; i++)
        for (j = 0; j < 3; j++)
            device_destroy(&devices[i][j]);
    fuzz_bar_close(&bar);
}

/* FUZZ_SELFCHECK: @d, power-cycled, against a new device of its kind. */
static void
selfcheck(struct device *d, unsigned int nq, bool crc_soft)
{
    struct device fresh;
    struct fuzz_cmp_region r[2] = {
        { UMDEV_PCI_BAR0_REGION, ACCEL_BAR0_SIZE, 4 },
        { UMDEV_PCI_BAR2_REGION, 0, 4 },
    };
    struct umdev_dev_region_info ri;
    unsigned int q;

    device_create(&fresh, nq, crc_soft);
    FUZZ_CHECK_EQ(
        umdev_dev_region_info(accel_dev_dev(d->ad), UMDEV_PCI_BAR2_REGION, &ri),
        0);
    r[1].size = ri.size;
    fuzz_dev_compare("accel_bar", accel_dev_dev(d->ad), accel_dev_dev(fresh.ad),
                     r, 2);
    /* What the engine keeps that registers do not show. */
    for (q = 0; q < nq; q++) {
        struct accel_queue_status a, b;

        accel_queue_status(accel_dev_queue(d->ad, q), &a);
        accel_queue_status(accel_dev_queue(fresh.ad, q), &b);
        FUZZ_CHECK_EQ(a.state, b.state);
        FUZZ_CHECK_EQ(a.error, b.error);
        FUZZ_CHECK_EQ(a.error_addr, b.error_addr);
        FUZZ_CHECK_EQ(a.head, b.head);
        FUZZ_CHECK_EQ(a.sleeping, b.sleeping);
        FUZZ_CHECK_EQ(accel_queue_index(accel_dev_queue(d->ad, q)),
                      accel_queue_index(accel_dev_queue(fresh.ad, q)));
    }
    device_destroy(&fresh);
}

/* The rest of the power cycle, after the client reset the device and
 * left: what the engine keeps across a reset (accel_engine_rewind()). */
static void
power_cycle(struct device *d, unsigned int nq, bool crc_soft)
{
    accel_engine_rewind(d->e);
    if (fuzz_selfcheck()) {
        selfcheck(d, nq, crc_soft);
        /* The check's reads may have had effects: cycle again. */
        FUZZ_CHECK_EQ(fuzz_client_reset_detached(accel_dev_dev(d->ad)), 0);
        accel_engine_rewind(d->e);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned int nq_code[4] = { 1, 2, 4, 4 };
    static const unsigned int slot_code[4] = { 0, 1, 2, 2 };
    struct fuzz_in in = { data, size };
    struct harness h = { 0 };
    struct fuzz_region regions[3] = {
        { UMDEV_PCI_BAR0_REGION, ACCEL_BAR0_SIZE },
        { UMDEV_PCI_BAR2_REGION, 0 }, /* its size once the device exists */
        { UMDEV_PCI_CONFIG_REGION, 256 },
    };
    struct umdev_dev_region_info ri;
    struct device *d;
    uint8_t flags;
    bool crc_soft;
    int i;

    if (size < 1)
        return 0;
    if (bar.g.map == NULL) {
        kit_log_init(&fuzz_log, "device", "UMDEV_FUZZ_VERBOSE");
        fuzz_bar_open(&bar, GUEST_PAGES);
        atexit(devices_free);
    }
    flags = fuzz_u8(&in);
    h.nq = nq_code[flags & 3];
    crc_soft = (flags & 4) != 0;
    d = &devices[crc_soft][slot_code[flags & 3]];
    if (d->ad == NULL)
        device_create(d, h.nq, crc_soft);
    h.e = d->e;
    h.ad = d->ad;
    h.dev = accel_dev_dev(h.ad);
    h.b = bar; /* the process's guest memory and eventfd */
    FUZZ_CHECK_EQ(umdev_dev_region_info(h.dev, UMDEV_PCI_BAR2_REGION, &ri), 0);
    FUZZ_CHECK(ri.present && ri.size >= h.nq * ACCEL_DOORBELL_STRIDE);
    regions[1].size = ri.size;
    fuzz_bar_begin(&h.b, h.dev, accel_dev_pci(h.ad));
    for (i = 0; i < (int)sizeof(h.bar0_ro); i += 4) {
        uint32_t v = bar0_rd32(&h, (uint32_t)i);

        memcpy(h.bar0_ro + i, &v, 4);
    }
    FUZZ_CHECK_EQ(bar0_rd32(&h, ACCEL_REG_VERSION), ACCEL_VERSION);
    FUZZ_CHECK_EQ(bar0_rd32(&h, ACCEL_REG_NUM_QUEUES), h.nq);

    fuzz_bar_play(&in, OP_COUNT, h.dev, regions, accel_op, check, &h);

    /* Let whatever was posted run out, then the device must answer. */
    for (i = 0; i < 64 && accel_engine_poll(h.e, 32) > 0; i++)
        check(&h);
    sock_read_version(&h);
    if (fuzz_log.print && h.unguarded > 0)
        fprintf(stderr,
                "accel_bar: %d side(s) of device mappings without "
                "a guard page\n",
                h.unguarded);

    fuzz_bar_end(&h.b);
    power_cycle(d, h.nq, crc_soft);
    fuzz_bar_check_fds(&h.b);
    return 0;
}
