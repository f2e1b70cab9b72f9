/*
 * libFuzzer target: the nvme command parser (devices/nvme/nvme_cmd.c)
 * over arbitrary submission queue entries, geometries, PRP entries and a
 * guest memory model built from the input, with its answers checked
 * against what the specification (and nvme_cmd.h) promises:
 *
 *   - every status is one the function may return;
 *   - an I/O or admin command is accepted exactly when its fields are
 *     valid, and a refusal names a reason that applies (an LBA Out of
 *     Range only for a range that is out, ...);
 *   - an accepted command's decoded fields add up: bytes = blocks <<
 *     LBADS, inside the namespace without wrapping, within MDTS; a log
 *     page's length is NUMD + 1 dwords;
 *   - a PRP walk reads only PRP list entries, 8-aligned, never across a
 *     list page's end, never an entry twice; its segments add up to the
 *     length, the first starts at PRP1, every later one starts on a page
 *     boundary and every earlier one ends on one, no segment wraps the
 *     address space, adjacent pages are merged; and its result is that
 *     of a reference walk written from the specification (4.3) that
 *     reads one entry at a time, page by page: the same segments, the
 *     same success or failure. With room for the segments a transfer can
 *     have, the walk never runs out of it (Internal Error).
 *
 * Input:
 *   byte 0   bits 0-1: memory page size 4 KiB << n; bits 2-4: LBADS
 *            9 + n; bits 5-7: MDTS, max transfer = page << (n + 1)
 *   u64      namespace size in blocks (masked so bytes fit 64 bits; 0
 *            taken as 1)
 *   u8       fault: the n-th guest memory read faults (0: none)
 *   u8       segment room: 0 a transfer's worth, else that many
 *   u32      length of an extra PRP walk (mod 2 MiB + 1)
 *   64 bytes the submission queue entry
 *   up to 4 guest memory ranges, each u64 base, u16 length, then that
 *   many bytes of content (the rest of the input if shorter); the DSM
 *   range list is read from the rest as well.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "nvme_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, front to back; past its end every byte reads 0. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static uint8_t
fuzz_u8(struct fuzz_in *in)
{
    uint8_t v = 0;

    if (in->n > 0) {
        v = *in->p++;
        in->n--;
    }
    return v;
}

/* @len (<= 8) bytes, little-endian. */
static uint64_t
fuzz_bytes(struct fuzz_in *in, size_t len)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < len; i++)
        v |= (uint64_t)fuzz_u8(in) << (8 * i);
    return v;
}

#define MAX_RANGES 4
#define WALK_MAX_LEN (2u << 20)
#define MAX_SEGS (WALK_MAX_LEN / 4096u + 2u)
/* Entries read by one walk at most: 2 MiB of 4 KiB pages plus the list
 * pointers. */
#define MAX_READS 1024u

struct mem_range {
    uint64_t base;
    const uint8_t *bytes;
    size_t len;
};

struct mem {
    struct mem_range r[MAX_RANGES];
    unsigned int n;
    unsigned int fault_at; /* 1-based read that faults; 0 none */
    unsigned int calls;
    bool faulted;
    uint32_t page;
    /* The walk's reads, as 8-byte entries. */
    uint64_t read_at[MAX_READS * 2];
    size_t nread;
};

/* Guest memory is a function of the address: a byte is the first
 * range's that holds it (ranges may overlap). Return: whether every byte
 * of [addr, addr + len) is present, copied to @out. */
static bool
mem_get(const struct mem *m, uint64_t addr, uint8_t *out, size_t len)
{
    size_t k;

    for (k = 0; k < len; k++) {
        uint64_t a = addr + k;
        unsigned int i;

        for (i = 0; i < m->n; i++)
            if (a >= m->r[i].base && a - m->r[i].base < m->r[i].len)
                break;
        if (i == m->n)
            return false;
        out[k] = m->r[i].bytes[a - m->r[i].base];
    }
    return true;
}

static int
mem_read(void *opaque, uint64_t addr, void *buf, size_t len)
{
    struct mem *m = opaque;
    size_t i;

    /* Only whole list entries, inside one list page, not wrapping. */
    FUZZ_CHECK(len > 0 && len % 8 == 0);
    FUZZ_CHECK_EQ(addr % 8, 0);
    FUZZ_CHECK(addr + len - 1 >= addr);
    FUZZ_CHECK_EQ(addr / m->page, (addr + len - 1) / m->page);
    m->calls++;
    if (m->fault_at != 0 && m->calls == m->fault_at) {
        m->faulted = true;
        return -14; /* -EFAULT */
    }
    if (!mem_get(m, addr, buf, len)) {
        m->faulted = true;
        return -14;
    }
    for (i = 0; i < len; i += 8) {
        FUZZ_CHECK(m->nread < sizeof(m->read_at) / sizeof(m->read_at[0]));
        m->read_at[m->nread++] = addr + i;
    }
    return 0;
}

/* ---- the reference PRP walk (4.3), one entry at a time ---- */

struct ref {
    struct nvme_seg seg[MAX_SEGS + 8];
    size_t nseg;
    uint64_t read_at[MAX_READS * 2];
    size_t nread;
    bool too_many;
};

static void
ref_add(struct ref *r, uint64_t addr, uint64_t len)
{
    struct nvme_seg *last = r->nseg ? &r->seg[r->nseg - 1] : NULL;

    /* Contiguous in the guest's address space, not across its top. */
    if (last != NULL && addr >= last->len && last->addr == addr - last->len) {
        last->len += len;
        return;
    }
    if (r->nseg == sizeof(r->seg) / sizeof(r->seg[0])) {
        r->too_many = true;
        return;
    }
    r->seg[r->nseg].addr = addr;
    r->seg[r->nseg].len = len;
    r->nseg++;
}

static bool
ref_entry(struct mem *m, struct ref *r, uint64_t at, uint64_t *e)
{
    uint8_t b[8];

    if (!mem_get(m, at, b, 8) ||
        r->nread == sizeof(r->read_at) / sizeof(r->read_at[0]))
        return false;
    r->read_at[r->nread++] = at;
    *e = nvme_le64(b);
    return true;
}

/* Return: the status, NVME_SC_DATA_XFER_ERROR for an unreadable entry. */
static uint16_t
ref_walk(struct mem *m, uint64_t prp1, uint64_t prp2, uint64_t len,
         uint32_t page, struct ref *r)
{
    uint64_t off = prp1 & (page - 1), left, pos, e;

    r->nseg = 0;
    r->nread = 0;
    r->too_many = false;
    if (len == 0)
        return NVME_SC_SUCCESS;
    if (prp1 & 3)
        return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
    ref_add(r, prp1, len < page - off ? len : page - off);
    left = len - (len < page - off ? len : page - off);
    if (left == 0)
        return NVME_SC_SUCCESS;
    if (left <= page) {
        if (prp2 & (page - 1))
            return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
        ref_add(r, prp2, left);
        return NVME_SC_SUCCESS;
    }
    if (prp2 & 7)
        return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
    pos = prp2;
    while (left > 0) {
        if (!ref_entry(m, r, pos, &e))
            return NVME_SC_DATA_XFER_ERROR;
        if (e & (page - 1))
            return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
        /* The last entry of a list page points to the next list page
         * when more than one data page remains. */
        if ((pos & (page - 1)) == page - 8 && left > page) {
            pos = e;
            continue;
        }
        ref_add(r, e, left < page ? left : page);
        left -= left < page ? left : page;
        pos += 8;
    }
    return NVME_SC_SUCCESS;
}

/* ---- the walk under test, against the reference ---- */

static void
check_walk(struct mem *m, uint64_t prp1, uint64_t prp2, uint64_t len,
           size_t room)
{
    static struct nvme_seg seg[MAX_SEGS];
    static struct ref r;
    /* Pages a transfer of @len can touch: what room must cover. */
    size_t need = (size_t)((len + m->page - 4 + m->page - 1) / m->page);
    size_t max = room ? (room < MAX_SEGS ? room : MAX_SEGS) : need, nseg, i;
    uint64_t sum = 0;
    uint16_t st, want;

    FUZZ_CHECK(need <= MAX_SEGS);
    m->calls = 0;
    m->faulted = false;
    m->nread = 0;
    st = nvme_prp_walk(prp1, prp2, len, m->page, mem_read, m, seg, max, &nseg);
    FUZZ_CHECK(st == NVME_SC_SUCCESS ||
               st == (NVME_SC_PRP_OFFSET_INVALID | NVME_DNR) ||
               st == NVME_SC_DATA_XFER_ERROR ||
               st == (NVME_SC_INTERNAL | NVME_DNR));
    /* No entry read twice: the reads ascend within each list page, and a
     * list page is left for good. */
    for (i = 1; i < m->nread; i++)
        FUZZ_CHECK(m->read_at[i] != m->read_at[i - 1]);
    want = ref_walk(m, prp1, prp2, len, m->page, &r);
    FUZZ_CHECK(!r.too_many);
    if (st == NVME_SC_DATA_XFER_ERROR)
        FUZZ_CHECK(m->faulted);
    if (st == (NVME_SC_INTERNAL | NVME_DNR)) {
        FUZZ_CHECK(room != 0);
        FUZZ_CHECK(want != NVME_SC_SUCCESS || r.nseg > max);
    }
    if (st != NVME_SC_SUCCESS) {
        /* The reference fails too, unless the walk's own read faulted
         * (injected) or it ran out of room. */
        if (want == NVME_SC_SUCCESS)
            FUZZ_CHECK((st == NVME_SC_DATA_XFER_ERROR && m->faulted) ||
                       st == (NVME_SC_INTERNAL | NVME_DNR));
        return;
    }
    FUZZ_CHECK_EQ(want, NVME_SC_SUCCESS);
    FUZZ_CHECK_EQ(nseg, r.nseg);
    FUZZ_CHECK(nseg <= max);
    /* The same entries, in the same order. */
    FUZZ_CHECK_EQ(m->nread, r.nread);
    FUZZ_CHECK_EQ(memcmp(m->read_at, r.read_at, m->nread * 8), 0);
    if (len == 0) {
        FUZZ_CHECK_EQ(nseg, 0);
        return;
    }
    FUZZ_CHECK(nseg >= 1);
    FUZZ_CHECK_EQ(seg[0].addr, prp1);
    for (i = 0; i < nseg; i++) {
        FUZZ_CHECK_EQ(seg[i].addr, r.seg[i].addr);
        FUZZ_CHECK_EQ(seg[i].len, r.seg[i].len);
        FUZZ_CHECK(seg[i].len > 0);
        /* Up to the top of the address space, not around it. */
        FUZZ_CHECK(seg[i].len - 1 <= UINT64_MAX - seg[i].addr);
        if (i > 0) {
            FUZZ_CHECK_EQ(seg[i].addr & (m->page - 1), 0);
            FUZZ_CHECK(seg[i].addr != seg[i - 1].addr + seg[i - 1].len ||
                       seg[i].addr == 0);
        }
        if (i + 1 < nseg)
            FUZZ_CHECK_EQ((seg[i].addr + seg[i].len) & (m->page - 1), 0);
        sum += seg[i].len;
    }
    FUZZ_CHECK_EQ(sum, len);
}

/* ---- I/O commands ---- */

static bool
range_ok(const struct nvme_geom *g, uint64_t slba, uint64_t nlb)
{
    return slba < g->nlba && nlb <= g->nlba - slba;
}

static void
check_io(const struct nvme_sqe *s, const struct nvme_geom *g, struct mem *m,
         struct fuzz_in *rest, size_t room)
{
    struct nvme_io io;
    static struct nvme_range ranges[256];
    uint8_t dsm[256 * NVME_DSM_RANGE_SIZE];
    uint64_t slba = (uint64_t)s->cdw11 << 32 | s->cdw10;
    uint64_t nlb = (s->cdw12 & 0xffff) + 1;
    bool known = s->opcode == NVME_CMD_FLUSH || s->opcode == NVME_CMD_WRITE ||
                 s->opcode == NVME_CMD_READ ||
                 s->opcode == NVME_CMD_WRITE_ZEROES ||
                 s->opcode == NVME_CMD_DSM;
    bool rw = s->opcode == NVME_CMD_WRITE || s->opcode == NVME_CMD_READ;
    bool ranged = rw || s->opcode == NVME_CMD_WRITE_ZEROES;
    bool bad_field = s->fuse != 0 || s->psdt != 0 ||
                     (rw && (nlb << g->lba_shift) > g->max_xfer);
    bool bad_ns = s->nsid != NVME_NSID && !(s->opcode == NVME_CMD_FLUSH &&
                                            s->nsid == NVME_NSID_BROADCAST);
    bool bad_range = ranged && !range_ok(g, slba, nlb);
    uint16_t st = nvme_io_parse(s, g, &io);
    uint32_t i;

    if (!known) {
        FUZZ_CHECK_EQ(st, NVME_SC_INVALID_OPCODE | NVME_DNR);
        return;
    }
    if (st == (NVME_SC_INVALID_FIELD | NVME_DNR)) {
        FUZZ_CHECK(bad_field);
        return;
    }
    if (st == (NVME_SC_INVALID_NS | NVME_DNR)) {
        FUZZ_CHECK(bad_ns);
        return;
    }
    if (st == (NVME_SC_LBA_RANGE | NVME_DNR)) {
        FUZZ_CHECK(bad_range);
        return;
    }
    FUZZ_CHECK_EQ(st, NVME_SC_SUCCESS);
    FUZZ_CHECK(!bad_field && !bad_ns && !bad_range);
    switch (s->opcode) {
    case NVME_CMD_FLUSH:
        FUZZ_CHECK_EQ(io.kind, NVME_IO_FLUSH);
        FUZZ_CHECK_EQ(io.len, 0);
        return;
    case NVME_CMD_DSM:
        FUZZ_CHECK_EQ(io.kind, NVME_IO_DSM);
        FUZZ_CHECK_EQ(io.nr_ranges, (s->cdw10 & 0xff) + 1);
        FUZZ_CHECK_EQ(io.deallocate, (s->cdw11 & NVME_DSM_AD) != 0);
        memset(dsm, 0, sizeof(dsm));
        for (i = 0; i < io.nr_ranges * NVME_DSM_RANGE_SIZE && rest->n; i++)
            dsm[i] = fuzz_u8(rest);
        st = nvme_dsm_ranges(dsm, io.nr_ranges, g, ranges);
        FUZZ_CHECK(st == NVME_SC_SUCCESS ||
                   st == (NVME_SC_LBA_RANGE | NVME_DNR));
        for (i = 0; i < io.nr_ranges; i++) {
            const uint8_t *r = dsm + i * NVME_DSM_RANGE_SIZE;
            uint32_t n = nvme_le32(r + 4);
            uint64_t lba = nvme_le64(r + 8);

            if (n != 0 && !range_ok(g, lba, n)) {
                FUZZ_CHECK_EQ(st, NVME_SC_LBA_RANGE | NVME_DNR);
                return;
            }
            if (st != NVME_SC_SUCCESS)
                continue;
            FUZZ_CHECK_EQ(ranges[i].len, (uint64_t)n << g->lba_shift);
            FUZZ_CHECK_EQ(ranges[i].offset, n ? lba << g->lba_shift : 0);
            FUZZ_CHECK(ranges[i].len <=
                       (g->nlba << g->lba_shift) - ranges[i].offset);
        }
        FUZZ_CHECK_EQ(st, NVME_SC_SUCCESS);
        check_walk(m, s->prp1, s->prp2, io.nr_ranges * NVME_DSM_RANGE_SIZE,
                   room);
        return;
    }
    FUZZ_CHECK_EQ(io.kind, s->opcode == NVME_CMD_READ ? NVME_IO_READ
                           : s->opcode == NVME_CMD_WRITE
                               ? NVME_IO_WRITE
                               : NVME_IO_WRITE_ZEROES);
    FUZZ_CHECK_EQ(io.nlb, nlb);
    FUZZ_CHECK_EQ(io.len, nlb << g->lba_shift);
    FUZZ_CHECK_EQ(io.offset, slba << g->lba_shift);
    FUZZ_CHECK(io.len <= (g->nlba << g->lba_shift) - io.offset);
    FUZZ_CHECK_EQ(io.fua, (s->cdw12 & NVME_RW_FUA) != 0);
    if (rw) {
        FUZZ_CHECK(io.len <= g->max_xfer);
        check_walk(m, s->prp1, s->prp2, io.len, room);
    } else {
        FUZZ_CHECK_EQ(io.deallocate, (s->cdw12 & NVME_WZ_DEAC) != 0);
    }
}

/* ---- admin commands ---- */

static void
check_admin(const struct nvme_sqe *s, uint32_t page, struct mem *m, size_t room)
{
    struct nvme_admin a;
    uint16_t st = nvme_admin_parse(s, page, &a);
    uint32_t numd = s->cdw10 >> 16 | (s->cdw11 & 0xffff) << 16;
    uint16_t qid = (uint16_t)s->cdw10;
    bool create =
        s->opcode == NVME_ADM_CREATE_SQ || s->opcode == NVME_ADM_CREATE_CQ;
    bool known = true;

    switch (s->opcode) {
    case NVME_ADM_DELETE_SQ:
    case NVME_ADM_CREATE_SQ:
    case NVME_ADM_GET_LOG_PAGE:
    case NVME_ADM_DELETE_CQ:
    case NVME_ADM_CREATE_CQ:
    case NVME_ADM_IDENTIFY:
    case NVME_ADM_ABORT:
    case NVME_ADM_SET_FEATURES:
    case NVME_ADM_GET_FEATURES:
    case NVME_ADM_ASYNC_EVENT:
    case NVME_ADM_DBBUF_CONFIG:
        break;
    default:
        known = false;
    }
    if (!known) {
        FUZZ_CHECK_EQ(st, NVME_SC_INVALID_OPCODE | NVME_DNR);
        return;
    }
    FUZZ_CHECK_EQ(a.opcode, s->opcode);
    if (s->fuse != 0 || s->psdt != 0) {
        FUZZ_CHECK_EQ(st, NVME_SC_INVALID_FIELD | NVME_DNR);
        return;
    }
    switch (s->opcode) {
    case NVME_ADM_DELETE_SQ:
    case NVME_ADM_DELETE_CQ:
        FUZZ_CHECK_EQ(st,
                      qid ? NVME_SC_SUCCESS : NVME_SC_QID_INVALID | NVME_DNR);
        if (st == NVME_SC_SUCCESS)
            FUZZ_CHECK_EQ(a.qid, qid);
        return;
    case NVME_ADM_IDENTIFY: {
        uint8_t cns = (uint8_t)s->cdw10;
        bool ok = cns == NVME_CNS_NS || cns == NVME_CNS_CTRL ||
                  cns == NVME_CNS_ACTIVE_NS_LIST ||
                  cns == NVME_CNS_NS_DESC_LIST ||
                  ((cns == NVME_CNS_CS_NS || cns == NVME_CNS_CS_CTRL) &&
                   (s->cdw11 >> 24) == NVME_CSI_NVM);

        FUZZ_CHECK_EQ(st,
                      ok ? NVME_SC_SUCCESS : NVME_SC_INVALID_FIELD | NVME_DNR);
        if (ok) {
            FUZZ_CHECK_EQ(a.cns, cns);
            check_walk(m, s->prp1, s->prp2, NVME_IDENTIFY_SIZE, room);
        }
        return;
    }
    case NVME_ADM_GET_LOG_PAGE: {
        uint64_t off = (uint64_t)s->cdw13 << 32 | s->cdw12;
        uint8_t lid = (uint8_t)s->cdw10;
        bool lid_ok = lid == NVME_LOG_ERROR || lid == NVME_LOG_SMART ||
                      lid == NVME_LOG_FW_SLOT;

        if (st == (NVME_SC_INVALID_FIELD | NVME_DNR)) {
            FUZZ_CHECK(numd == UINT32_MAX || (off & 3) != 0 ||
                       ((uint64_t)numd + 1) * 4 > UINT32_MAX);
            return;
        }
        if (st == (NVME_SC_INVALID_LOG_PAGE | NVME_DNR)) {
            FUZZ_CHECK(!lid_ok);
            return;
        }
        FUZZ_CHECK_EQ(st, NVME_SC_SUCCESS);
        FUZZ_CHECK(lid_ok && (off & 3) == 0);
        FUZZ_CHECK_EQ(a.lid, lid);
        FUZZ_CHECK_EQ(a.log_offset, off);
        /* NUMD + 1 dwords: what the host asked for, not less. */
        FUZZ_CHECK_EQ((uint64_t)a.log_len, ((uint64_t)numd + 1) * 4);
        if (a.log_len <= WALK_MAX_LEN)
            check_walk(m, s->prp1, s->prp2, a.log_len, room);
        return;
    }
    case NVME_ADM_SET_FEATURES:
    case NVME_ADM_GET_FEATURES: {
        bool save = (s->cdw10 >> 31) != 0;
        uint8_t sel = (s->cdw10 >> 8) & 7;

        if (s->opcode == NVME_ADM_SET_FEATURES)
            FUZZ_CHECK_EQ(st, save ? NVME_SC_FEAT_NOT_SAVEABLE | NVME_DNR
                                   : NVME_SC_SUCCESS);
        else
            FUZZ_CHECK_EQ(st, sel > NVME_SEL_SUPPORTED
                                  ? NVME_SC_INVALID_FIELD | NVME_DNR
                                  : NVME_SC_SUCCESS);
        if (st == NVME_SC_SUCCESS) {
            FUZZ_CHECK_EQ(a.fid, (uint8_t)s->cdw10);
            FUZZ_CHECK_EQ(a.sel, sel);
        }
        return;
    }
    case NVME_ADM_DBBUF_CONFIG: {
        bool ok = s->prp1 && s->prp2 && !(s->prp1 & (page - 1)) &&
                  !(s->prp2 & (page - 1));

        FUZZ_CHECK_EQ(st,
                      ok ? NVME_SC_SUCCESS : NVME_SC_INVALID_FIELD | NVME_DNR);
        return;
    }
    case NVME_ADM_ABORT:
    case NVME_ADM_ASYNC_EVENT:
        FUZZ_CHECK_EQ(st, NVME_SC_SUCCESS);
        return;
    }
    FUZZ_CHECK(create);
    if (st == NVME_SC_SUCCESS) {
        FUZZ_CHECK(qid != 0 && (s->cdw10 >> 16) != 0 && (s->cdw11 & 1));
        FUZZ_CHECK(s->prp1 != 0 && (s->prp1 & (page - 1)) == 0);
        FUZZ_CHECK_EQ(a.qid, qid);
        FUZZ_CHECK_EQ(a.qsize, (s->cdw10 >> 16) + 1);
        FUZZ_CHECK(a.qsize >= 2);
        if (s->opcode == NVME_ADM_CREATE_SQ) {
            FUZZ_CHECK(a.cqid != 0);
            FUZZ_CHECK_EQ(a.cqid, s->cdw11 >> 16);
        } else {
            FUZZ_CHECK_EQ(a.iv, s->cdw11 >> 16);
            FUZZ_CHECK_EQ(a.ien, (s->cdw11 & 2) != 0);
        }
        return;
    }
    if (st == (NVME_SC_QID_INVALID | NVME_DNR))
        FUZZ_CHECK_EQ(qid, 0);
    else if (st == (NVME_SC_QUEUE_SIZE | NVME_DNR))
        FUZZ_CHECK_EQ(s->cdw10 >> 16, 0);
    else if (st == (NVME_SC_INVALID_FIELD | NVME_DNR))
        FUZZ_CHECK_EQ(s->cdw11 & 1, 0);
    else if (st == (NVME_SC_PRP_OFFSET_INVALID | NVME_DNR))
        FUZZ_CHECK(s->prp1 == 0 || (s->prp1 & (page - 1)) != 0);
    else if (st == (NVME_SC_CQ_INVALID | NVME_DNR))
        FUZZ_CHECK(s->opcode == NVME_ADM_CREATE_SQ && (s->cdw11 >> 16) == 0);
    else
        FUZZ_CHECK(!"a status create queue does not return");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mem m;
    struct fuzz_in in = { data, size };
    uint8_t raw[NVME_SQE_SIZE], back[NVME_SQE_SIZE], cfg;
    struct nvme_geom g;
    struct nvme_sqe s;
    uint64_t nlba;
    uint32_t walk_len;
    size_t room, i;

    if (size < 1)
        return 0;
    cfg = fuzz_u8(&in);
    m.page = 4096u << (cfg & 3);
    g.lba_shift = 9 + ((cfg >> 2) & 7);
    g.max_xfer = m.page << (((cfg >> 5) & 7) + 1);
    nlba = fuzz_bytes(&in, 8) & (UINT64_MAX >> g.lba_shift);
    g.nlba = nlba ? nlba : 1;
    m.fault_at = fuzz_u8(&in);
    room = fuzz_u8(&in);
    walk_len = (uint32_t)(fuzz_bytes(&in, 4) % (WALK_MAX_LEN + 1));
    for (i = 0; i < NVME_SQE_SIZE; i++)
        raw[i] = fuzz_u8(&in);
    m.n = 0;
    while (m.n < MAX_RANGES && in.n > 0) {
        struct mem_range *r = &m.r[m.n++];

        r->base = fuzz_bytes(&in, 8);
        r->len = (size_t)fuzz_bytes(&in, 2);
        if (r->len > in.n)
            r->len = in.n;
        r->bytes = in.p;
        in.p += r->len;
        in.n -= r->len;
    }

    /* Decoding loses nothing a reserved field does not hold. */
    nvme_sqe_decode(raw, &s);
    nvme_sqe_encode(&s, back);
    FUZZ_CHECK_EQ(back[0], raw[0]);                 /* opcode */
    FUZZ_CHECK_EQ(back[1], raw[1] & 0xc3);          /* FUSE, PSDT */
    FUZZ_CHECK_EQ(memcmp(back + 2, raw + 2, 6), 0); /* CID, NSID */
    FUZZ_CHECK_EQ(memcmp(back + 16, raw + 16, 48), 0);

    check_io(&s, &g, &m, &in, room);
    check_admin(&s, m.page, &m, room);
    /* The walk alone, on the same entries. */
    check_walk(&m, s.prp1, s.prp2, walk_len, room);
    return 0;
}
