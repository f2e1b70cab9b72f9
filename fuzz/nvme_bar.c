/*
 * libFuzzer target: an nvme controller (devices/nvme) on the null backend
 * (no file, no io_uring ring) driven by a stream of BAR0 register and
 * doorbell accesses, config-space accesses, DMA mappings, submission
 * queue entries and other bytes written into guest memory, interrupt
 * setups, resets and poller passes. The controller is created "manual":
 * it has no poller thread, and each of the input's POLL ops runs one
 * pass on the fuzzer's thread (nvme_ctrl_poll()), so what happens is
 * fixed by the input alone and a crash replays alone.
 *
 * Guest memory is a memfd of GUEST_PAGES pages between two canary pages,
 * DMA-mapped by the input (op MAP) at GUEST_IOVA in one of four layouts,
 * with guard pages around the device's mappings (bar_harness.h). The
 * harness keeps a copy of every page it writes and knows which file
 * pages are mapped writable; after every operation:
 *   - a page no writable mapping covers is exactly what the harness last
 *     wrote there (the device wrote nothing through a read-only mapping,
 *     past a mapping's end or after an unmap), and the canaries hold;
 *   - config space keeps its identity, BAR and capability invariants;
 *   - CAP and VS read their power-on values; CSTS holds only RDY, CFS
 *     and SHST, and reads 0 while CC.EN is 0.
 * At the end the poller runs until idle, the device must still answer a
 * REGION_READ over the socket, and once the input's client is gone no
 * descriptor is left open.
 *
 * Power cycle: the device (one per queue count byte 0 names), its guest
 * memory and eventfd live for the process. After an input the client
 * resets the device (VFIO_USER_DEVICE_RESET: CC, AQA, ASQ, ACQ and
 * config space to power-on values, queues deleted) and hangs up, and
 * nvme_ctrl_rewind() clears what a controller reset keeps (the error and
 * SMART logs, the statistics). FUZZ_SELFCHECK=1 then compares the device
 * with a new one: config space, every BAR0 register, IRQ state, and what
 * a driver reads from each after enabling it (the Error, SMART and
 * Firmware Slot logs, Identify Controller and Namespace, every feature,
 * the completions), and the statistics; the committed corpus passes it.
 * Teardown runs at exit, under LSan.
 *
 * Input:
 *   byte 0  I/O queue pairs: 1, 4 or 8 by byte % 3
 *   ops     until the input ends, each an opcode byte (mod OP_COUNT) and
 *           its operands (missing operand bytes read as 0):
 *   BAR_WR / BAR_RD  u16 offset (mod 16 KiB), u8 width code, the bytes
 *   CFG_WR / CFG_RD  likewise in config space (256 bytes)
 *   REGS_WR / REGS_RD likewise in BAR0's registers and first doorbells
 *   REG      u8 register (table below), u8 bit 0: 8 bytes (else 4), then
 *            the value
 *   DB       u8 doorbell index (mod 2 * (queues + 1)), u16 value
 *   ENABLE   u8 flags: a driver's enable (bus mastering unless bit 0,
 *            AQA 64/64 entries, ASQ, ACQ, CC.EN with entry sizes 6/4;
 *            bit 1 writes CC.MPS 8 KiB instead)
 *   CMD      u8 queue (mod queues + 1), 64 bytes: the entry at the
 *            harness's tail of that submission queue (the layout's ring
 *            of 64 entries), then its tail doorbell
 *   MEM      u24 guest offset (mod its size), u8 length, that many bytes
 *   PTR      u24 guest offset (8-aligned), u24 k: the u64 GUEST_IOVA + k
 *            there (guest addresses are hard to guess byte by byte)
 *   POLL     u8 n: n % 8 + 1 poller passes
 *   MAP      u8 layout
 *   UNMAP    u8 which range; the poller first runs until idle (its
 *            thread would run while the unmap waits for the I/O holding
 *            the mapping)
 *   RESET    VFIO_USER_DEVICE_RESET over the socket
 *   IRQS     u8: bit 0 MSI-X (else INTx), bit 1 tear down, bits 2-3 start
 *   SOCK_RD  a REGION_READ of VS over the socket
 * Width code w: bit 7 set: (w & 15) + 1 bytes; else 1, 2, 4 or 8 bytes.
 * Guest layout (pages from GUEST_IOVA): 0 admin SQ, 1 admin CQ, 1 + q
 * I/O SQ q, 9 + q I/O CQ q, 18 shadow doorbells, 19 EventIdx, 20-27
 * data and PRP lists. fuzz/nvme_seeds.py writes fuzz/corpus/nvme_bar/.
 */
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bar_harness.h"
#include "kit_util.h"
#include "nvme.h"
#include "nvme_cmd.h"
#include "umdev/dev_testing.h"
#include "umdev/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUEST_PAGES 32u
#define GUEST_SIZE (GUEST_PAGES * FUZZ_PAGE)
#define GUEST_IOVA 0x100000ull
#define ASQ_IOVA GUEST_IOVA
#define ACQ_IOVA (GUEST_IOVA + FUZZ_PAGE)
#define IOSQ_OFF(q) ((1u + (q)) * FUZZ_PAGE)
#define ADMIN_DEPTH 64u
#define IO_DEPTH 64u
#define MAX_MAPS 8
#define NS_SIZE (64ull << 20)
#define RW (VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE)

enum op {
    OP_BAR_WR,
    OP_BAR_RD,
    OP_CFG_WR,
    OP_CFG_RD,
    OP_REGS_WR,
    OP_REGS_RD, /* the last of the FUZZ_REGION_OPS */
    OP_REG,
    OP_DB,
    OP_ENABLE,
    OP_CMD,
    OP_MEM,
    OP_PTR,
    OP_POLL,
    OP_MAP,
    OP_UNMAP,
    OP_RESET,
    OP_IRQS,
    OP_SOCK_RD,
    OP_COUNT,
};

static const uint32_t regs[] = {
    NVME_REG_CAP,
    NVME_REG_CAP + 4,
    NVME_REG_VS,
    NVME_REG_INTMS,
    NVME_REG_INTMC,
    NVME_REG_CC,
    NVME_REG_CSTS,
    NVME_REG_NSSR,
    NVME_REG_AQA,
    NVME_REG_ASQ,
    NVME_REG_ASQ + 4,
    NVME_REG_ACQ,
    NVME_REG_ACQ + 4,
    0x38,
    0x3c,
};

/* A DMA mapping the device accepted. */
struct map {
    uint64_t iova, file_off, len; /* file_off from the first guest page */
    bool writable;
};

static struct kit_log fuzz_log;
struct harness {
    struct nvme_ctrl *ctrl;
    struct umdev_dev *dev;
    struct fuzz_bar b;
    unsigned int nq;
    uint32_t cap_lo, cap_hi, vs;
    uint16_t sq_tail[NVME_MAX_QUEUES];
    struct map maps[MAX_MAPS];
    unsigned int nmaps;
    uint8_t *shadow; /* what the harness last wrote, per guest byte */
    int unguarded;
};

/* ---- guest memory and its model ---- */

static uint8_t *
mem(struct harness *h)
{
    return fuzz_guest_mem(&h->b.g);
}

static void
mem_put(struct harness *h, size_t off, const void *p, size_t n)
{
    memcpy(mem(h) + off, p, n);
    memcpy(h->shadow + off, p, n);
}

static bool
page_writable(const struct harness *h, size_t page)
{
    uint64_t off = (uint64_t)page * FUZZ_PAGE;
    unsigned int i;

    for (i = 0; i < h->nmaps; i++)
        if (h->maps[i].writable && off >= h->maps[i].file_off &&
            off < h->maps[i].file_off + h->maps[i].len)
            return true;
    return false;
}

/* Pages the device may not write are as the harness left them. */
static void
check_pages(struct harness *h)
{
    size_t p;

    for (p = 0; p < GUEST_PAGES; p++) {
        size_t off = p * FUZZ_PAGE;

        if (page_writable(h, p))
            continue;
        if (memcmp(mem(h) + off, h->shadow + off, FUZZ_PAGE) != 0) {
            size_t i = 0;

            while (mem(h)[off + i] == h->shadow[off + i])
                i++;
            fprintf(stderr,
                    "nvme_bar: the device wrote guest page %zu (offset %#zx) "
                    "that no writable mapping covers\n",
                    p, i);
            abort();
        }
    }
}

/* A page stops being writable: what the device wrote is the baseline. */
static void
sync_pages(struct harness *h, const struct map *m)
{
    memcpy(h->shadow + m->file_off, mem(h) + m->file_off, m->len);
}

static void
map_one(struct harness *h, uint64_t file_off, uint64_t iova, uint64_t len,
        uint32_t flags)
{
    struct umdev_dma_hold hold;
    int rc;

    fuzz_guard_prepare(len);
    rc = fuzz_dma_map(&h->b.c, h->b.g.fd, FUZZ_PAGE + file_off, iova, len,
                      flags);
    if (rc == 0 &&
        umdev_dma_get(h->dev, iova, len, UMDEV_DMA_READ, &hold) == 0) {
        h->unguarded += fuzz_guard_settle(hold.ptr, len);
        umdev_dma_put(h->dev, &hold);
    } else {
        fuzz_guard_settle(NULL, len);
    }
    if (rc == 0) {
        FUZZ_CHECK(h->nmaps < MAX_MAPS);
        h->maps[h->nmaps++] =
            (struct map){ iova, file_off, len, (flags & RW) == RW };
    }
}

/* The layouts of bar_harness.h (fuzz_layout()). */
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
    unsigned int i = 0;

    fuzz_unmap_range(v, GUEST_IOVA, GUEST_SIZE, &iova, &len);
    /* An unmap waits until the device holds nothing in the mapping. The
     * poller thread would go on running meanwhile, finishing the I/O
     * that holds it; here nothing would: let it run until idle first. */
    while (nvme_ctrl_poll(h->ctrl) > 0)
        FUZZ_CHECK(++i < 1000);
    i = 0;
    if (fuzz_dma_unmap(&h->b.c, iova, len) != 0)
        return;
    /* Every mapping inside the range is gone (VFIO's unmap). */
    while (i < h->nmaps) {
        struct map *m = &h->maps[i];

        if (m->iova >= iova && m->iova + m->len <= iova + len) {
            sync_pages(h, m);
            *m = h->maps[--h->nmaps];
        } else {
            i++;
        }
    }
}

/* ---- BAR0 ---- */

static uint64_t
bar_rd(struct harness *h, uint32_t off, size_t width)
{
    uint64_t v = 0;

    FUZZ_CHECK_EQ(umdev_dev_region_rw(h->dev, UMDEV_PCI_BAR0_REGION, off, &v,
                                      width, false),
                  0);
    return v;
}

static void
bar_wr(struct harness *h, uint32_t off, uint64_t v, size_t width)
{
    /* Refusals (widths the profile does not allow) are valid answers. */
    umdev_dev_region_rw(h->dev, UMDEV_PCI_BAR0_REGION, off, &v, width, true);
}

static void
check(void *arg)
{
    struct harness *h = arg;
    uint32_t cc, csts;

    fuzz_bar_check(&h->b);
    check_pages(h);
    FUZZ_CHECK_EQ(bar_rd(h, NVME_REG_CAP, 4), h->cap_lo);
    FUZZ_CHECK_EQ(bar_rd(h, NVME_REG_CAP + 4, 4), h->cap_hi);
    FUZZ_CHECK_EQ(bar_rd(h, NVME_REG_VS, 4), h->vs);
    cc = (uint32_t)bar_rd(h, NVME_REG_CC, 4);
    csts = (uint32_t)bar_rd(h, NVME_REG_CSTS, 4);
    FUZZ_CHECK_EQ(csts & ~(NVME_CSTS_RDY | NVME_CSTS_CFS | NVME_CSTS_SHST_MASK),
                  0);
    if (!(cc & NVME_CC_EN))
        FUZZ_CHECK_EQ(csts, 0);
}

static void
enable(struct harness *h, uint8_t flags)
{
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;

    if (flags & 1)
        cmd = PCI_COMMAND_MEMORY;
    umdev_dev_region_rw(h->dev, UMDEV_PCI_CONFIG_REGION, PCI_COMMAND, &cmd, 2,
                        true);
    bar_wr(h, NVME_REG_AQA, (ADMIN_DEPTH - 1) << 16 | (ADMIN_DEPTH - 1), 4);
    bar_wr(h, NVME_REG_ASQ, ASQ_IOVA, 8);
    bar_wr(h, NVME_REG_ACQ, ACQ_IOVA, 8);
    bar_wr(h, NVME_REG_CC,
           NVME_CC_EN | NVME_SQES_LOG2 << 16 | NVME_CQES_LOG2 << 20 |
               ((flags & 2) ? 1u << 7 : 0),
           4);
    memset(h->sq_tail, 0, sizeof(h->sq_tail));
}

static void
cmd(struct harness *h, struct fuzz_in *in)
{
    unsigned int q = fuzz_u8(in) % (h->nq + 1);
    uint16_t depth = q == 0 ? ADMIN_DEPTH : IO_DEPTH;
    size_t off = (q == 0 ? 0 : IOSQ_OFF(q)) + h->sq_tail[q] * NVME_SQE_SIZE;
    uint8_t e[NVME_SQE_SIZE];
    size_t i;

    for (i = 0; i < sizeof(e); i++)
        e[i] = fuzz_u8(in);
    mem_put(h, off, e, sizeof(e));
    h->sq_tail[q] = (uint16_t)((h->sq_tail[q] + 1) % depth);
    bar_wr(h, NVME_REG_DBS + 8 * q, h->sq_tail[q], 4);
}

static void
mem_write(struct harness *h, struct fuzz_in *in)
{
    size_t off = fuzz_bytes(in, 3) % GUEST_SIZE, n = fuzz_u8(in), i;

    for (i = 0; i < n; i++) {
        uint8_t v = fuzz_u8(in);

        mem_put(h, (off + i) % GUEST_SIZE, &v, 1);
    }
}

static void
ptr_write(struct harness *h, struct fuzz_in *in)
{
    size_t off = (fuzz_bytes(in, 3) % GUEST_SIZE) & ~(size_t)7;
    uint64_t v = GUEST_IOVA + fuzz_bytes(in, 3);

    mem_put(h, off, &v, 8);
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
sock_read_vs(struct harness *h)
{
    uint32_t v = 0;

    FUZZ_CHECK_EQ(
        fuzz_region_read(&h->b.c, UMDEV_PCI_BAR0_REGION, NVME_REG_VS, &v, 4),
        0);
    FUZZ_CHECK_EQ(v, h->vs);
}

static void
nvme_op(void *arg, unsigned int op, struct fuzz_in *in)
{
    struct harness *h = arg;
    unsigned int i, n;
    uint8_t sel, w;

    switch (op) {
    case OP_REG:
        sel = fuzz_u8(in);
        w = (fuzz_u8(in) & 1) ? 8 : 4;
        bar_wr(h, regs[sel % (sizeof(regs) / sizeof(regs[0]))],
               fuzz_bytes(in, w), w);
        break;
    case OP_DB:
        i = fuzz_u8(in) % (2 * (h->nq + 1));
        bar_wr(h, NVME_REG_DBS + 4 * i, fuzz_u16(in), 4);
        break;
    case OP_ENABLE:
        enable(h, fuzz_u8(in));
        break;
    case OP_CMD:
        cmd(h, in);
        break;
    case OP_MEM:
        mem_write(h, in);
        break;
    case OP_PTR:
        ptr_write(h, in);
        break;
    case OP_POLL:
        n = fuzz_u8(in) % 8 + 1;
        for (i = 0; i < n; i++)
            nvme_ctrl_poll(h->ctrl);
        break;
    case OP_MAP:
        map_layout(h, fuzz_u8(in));
        break;
    case OP_UNMAP:
        unmap_some(h, fuzz_u8(in));
        break;
    case OP_RESET:
        FUZZ_CHECK_EQ(fuzz_reset(&h->b.c), 0);
        memset(h->sq_tail, 0, sizeof(h->sq_tail));
        break;
    case OP_IRQS:
        irqs(h, fuzz_u8(in));
        break;
    case OP_SOCK_RD:
        sock_read_vs(h);
        break;
    }
}

/* ---- the devices, one per queue count, kept for the process ---- */

static struct nvme_ctrl *devices[3];
static struct fuzz_bar bar;
static uint8_t *shadow;

static void
device_create(struct nvme_ctrl **out, unsigned int nq)
{
    struct nvme_ctrl_config cfg = {
        .name = "fuzz",
        .type = "nvme-fuzz",
        .log = &fuzz_log.logger,
        .nr_io_queues = nq,
        .size = NS_SIZE,
        .manual = true,
    };

    memset(cfg.uuid, 0x5e, sizeof(cfg.uuid));
    FUZZ_CHECK_EQ(nvme_be_open_null(&cfg.be), 0);
    FUZZ_CHECK_EQ(nvme_ctrl_create(&cfg, out), 0);
}

static void
devices_free(void)
{
    unsigned int i;

    for (i = 0; i < 3; i++) {
        nvme_ctrl_destroy(devices[i]);
        devices[i] = NULL;
    }
    fuzz_bar_close(&bar);
    free(shadow);
}

/* ---- FUZZ_SELFCHECK: a power-cycled device against a new one ---- */

#define PROBE_DATA (20u * FUZZ_PAGE)
#define PROBE_PAGES 6u
#define PROBE_FEATURES 12u

/* What a driver reads from @ctrl after enabling it: the completions and
 * the data of a fixed set of admin commands. @out gets the admin CQ page
 * and PROBE_PAGES data pages. */
static void
probe(struct nvme_ctrl *ctrl, struct fuzz_guest *g, uint8_t *out)
{
    struct harness h = { 0 };
    struct nvme_sqe s;
    uint8_t raw[NVME_SQE_SIZE];
    unsigned int i, n = 0;

    h.ctrl = ctrl;
    h.dev = nvme_ctrl_dev(ctrl);
    h.b.g = *g;
    h.shadow = shadow;
    memset(fuzz_guest_mem(g), 0, GUEST_SIZE);
    fuzz_client_attach(&h.b.c, h.dev);
    FUZZ_CHECK_EQ(
        fuzz_dma_map(&h.b.c, g->fd, FUZZ_PAGE, GUEST_IOVA, GUEST_SIZE, RW), 0);
    enable(&h, 0);
    nvme_ctrl_poll(ctrl);
    FUZZ_CHECK_EQ(bar_rd(&h, NVME_REG_CSTS, 4), NVME_CSTS_RDY);
    for (i = 0; i < 5 + PROBE_FEATURES; i++) {
        memset(&s, 0, sizeof(s));
        s.cid = (uint16_t)i;
        s.nsid = NVME_NSID;
        s.prp1 = GUEST_IOVA + PROBE_DATA + (uint64_t)i * FUZZ_PAGE;
        switch (i) {
        case 0: /* each log page whole */
        case 1:
        case 2:
            s.opcode = NVME_ADM_GET_LOG_PAGE;
            s.cdw10 = (i + 1) | (FUZZ_PAGE / 4 - 1) << 16;
            break;
        case 3:
            s.opcode = NVME_ADM_IDENTIFY;
            s.cdw10 = NVME_CNS_CTRL;
            break;
        case 4:
            s.opcode = NVME_ADM_IDENTIFY;
            s.cdw10 = NVME_CNS_NS;
            break;
        default: /* features' current values, in the completions */
            s.opcode = NVME_ADM_GET_FEATURES;
            s.cdw10 = i - 4;
            s.prp1 = 0;
        }
        nvme_sqe_encode(&s, raw);
        memcpy(fuzz_guest_mem(g) + n * NVME_SQE_SIZE, raw, sizeof(raw));
        n++;
    }
    bar_wr(&h, NVME_REG_DBS, n, 4);
    for (i = 0; i < 4; i++)
        nvme_ctrl_poll(ctrl);
    memcpy(out, fuzz_guest_mem(g) + FUZZ_PAGE, FUZZ_PAGE);
    memcpy(out + FUZZ_PAGE, fuzz_guest_mem(g) + PROBE_DATA,
           PROBE_PAGES * FUZZ_PAGE);
    FUZZ_CHECK_EQ(fuzz_reset(&h.b.c), 0);
    fuzz_client_detach(&h.b.c);
}

static void
selfcheck(struct nvme_ctrl *used, unsigned int nq)
{
    static uint8_t a[(PROBE_PAGES + 1) * FUZZ_PAGE];
    static uint8_t b[(PROBE_PAGES + 1) * FUZZ_PAGE];
    struct fuzz_cmp_region r = { UMDEV_PCI_BAR0_REGION, NVME_BAR0_SIZE, 4 };
    struct nvme_ctrl_stats sa, sb;
    struct nvme_ctrl *fresh;
    size_t i;

    device_create(&fresh, nq);
    fuzz_dev_compare("nvme_bar", nvme_ctrl_dev(used), nvme_ctrl_dev(fresh), &r,
                     1);
    probe(used, &bar.g, a);
    probe(fresh, &bar.g, b);
    for (i = 0; i < sizeof(a); i++)
        if (a[i] != b[i]) {
            fprintf(stderr,
                    "nvme_bar: FUZZ_SELFCHECK: a power-cycled device "
                    "differs from a new one: probe byte %#zx (page %zu): "
                    "%#x, new %#x\n",
                    i, i / FUZZ_PAGE, a[i], b[i]);
            abort();
        }
    nvme_ctrl_get_stats(used, &sa);
    nvme_ctrl_get_stats(fresh, &sb);
    sa.direct = sb.direct = false;
    FUZZ_CHECK_EQ(memcmp(&sa, &sb, sizeof(sa)), 0);
    nvme_ctrl_destroy(fresh);
    /* The probe counted in the logs: cycle again. */
    nvme_ctrl_rewind(used);
    memset(fuzz_guest_mem(&bar.g), 0, GUEST_SIZE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned int nq_code[3] = { 1, 4, 8 };
    struct fuzz_in in = { data, size };
    struct harness h = { 0 };
    struct fuzz_region regions[3] = {
        { UMDEV_PCI_BAR0_REGION, NVME_BAR0_SIZE },
        { UMDEV_PCI_CONFIG_REGION, 256 },
        /* the registers and the first doorbells */
        { UMDEV_PCI_BAR0_REGION, NVME_REG_DBS + 2 * 4 * NVME_MAX_QUEUES },
    };
    unsigned int slot, i;

    if (size < 1)
        return 0;
    if (bar.g.map == NULL) {
        kit_log_init(&fuzz_log, "device", "UMDEV_FUZZ_VERBOSE");
        fuzz_bar_open(&bar, GUEST_PAGES);
        shadow = calloc(1, GUEST_SIZE);
        FUZZ_CHECK(shadow != NULL);
        atexit(devices_free);
    }
    slot = fuzz_u8(&in) % 3;
    h.nq = nq_code[slot];
    if (devices[slot] == NULL)
        device_create(&devices[slot], h.nq);
    h.ctrl = devices[slot];
    h.dev = nvme_ctrl_dev(h.ctrl);
    h.b = bar;
    h.shadow = shadow;
    memset(shadow, 0, GUEST_SIZE);
    fuzz_bar_begin(&h.b, h.dev, nvme_ctrl_pci(h.ctrl));
    h.cap_lo = (uint32_t)bar_rd(&h, NVME_REG_CAP, 4);
    h.cap_hi = (uint32_t)bar_rd(&h, NVME_REG_CAP + 4, 4);
    h.vs = (uint32_t)bar_rd(&h, NVME_REG_VS, 4);
    FUZZ_CHECK_EQ(h.vs, 0x00010400);
    FUZZ_CHECK_EQ(h.cap_lo & 0xffff, NVME_MQES);
    FUZZ_CHECK_EQ(bar_rd(&h, NVME_REG_CC, 4), 0);
    FUZZ_CHECK_EQ(bar_rd(&h, NVME_REG_CSTS, 4), 0);

    fuzz_bar_play(&in, OP_COUNT, h.dev, regions, nvme_op, check, &h);

    /* Let whatever was posted run out, then the device must answer. */
    for (i = 0; nvme_ctrl_poll(h.ctrl) > 0; i++) {
        FUZZ_CHECK(i < 1000);
        check(&h);
    }
    check(&h);
    sock_read_vs(&h);
    if (fuzz_log.print) {
        struct nvme_ctrl_stats st;

        /* What the input got done (seed authors read it). */
        nvme_ctrl_get_stats(h.ctrl, &st);
        fprintf(stderr,
                "nvme_bar: %llu completions (%llu I/O, %llu errors), %llu "
                "doorbells, %llu interrupts; ready %d, fatal %d, shadow "
                "doorbells %d; %d side(s) of mappings without a guard\n",
                (unsigned long long)st.commands,
                (unsigned long long)st.io_commands,
                (unsigned long long)st.errors, (unsigned long long)st.doorbells,
                (unsigned long long)st.irqs, st.ready, st.fatal, st.shadow,
                h.unguarded);
    }

    fuzz_bar_end(&h.b);
    nvme_ctrl_rewind(h.ctrl);
    if (fuzz_selfcheck())
        selfcheck(h.ctrl, h.nq);
    fuzz_bar_check_fds(&h.b);
    return 0;
}
