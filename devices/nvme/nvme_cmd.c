/*
 * The nvme command parser (nvme_cmd.h): submission queue entries to
 * checked commands, PRP walks, DSM ranges. Pure: every decision here
 * depends only on the bytes given.
 */
#include <string.h>

#include "nvme_cmd.h"

void
nvme_sqe_decode(const uint8_t raw[NVME_SQE_SIZE], struct nvme_sqe *out)
{
    uint32_t cdw0 = nvme_le32(raw);

    out->opcode = (uint8_t)cdw0;
    out->fuse = (uint8_t)((cdw0 >> 8) & 3);
    out->psdt = (uint8_t)((cdw0 >> 14) & 3);
    out->cid = (uint16_t)(cdw0 >> 16);
    out->nsid = nvme_le32(raw + 4);
    out->mptr = nvme_le64(raw + 16);
    out->prp1 = nvme_le64(raw + 24);
    out->prp2 = nvme_le64(raw + 32);
    out->cdw10 = nvme_le32(raw + 40);
    out->cdw11 = nvme_le32(raw + 44);
    out->cdw12 = nvme_le32(raw + 48);
    out->cdw13 = nvme_le32(raw + 52);
    out->cdw14 = nvme_le32(raw + 56);
    out->cdw15 = nvme_le32(raw + 60);
}

void
nvme_sqe_encode(const struct nvme_sqe *s, uint8_t raw[NVME_SQE_SIZE])
{
    memset(raw, 0, NVME_SQE_SIZE);
    nvme_put32(raw, (uint32_t)s->opcode | (uint32_t)(s->fuse & 3) << 8 |
                        (uint32_t)(s->psdt & 3) << 14 | (uint32_t)s->cid << 16);
    nvme_put32(raw + 4, s->nsid);
    nvme_put64(raw + 16, s->mptr);
    nvme_put64(raw + 24, s->prp1);
    nvme_put64(raw + 32, s->prp2);
    nvme_put32(raw + 40, s->cdw10);
    nvme_put32(raw + 44, s->cdw11);
    nvme_put32(raw + 48, s->cdw12);
    nvme_put32(raw + 52, s->cdw13);
    nvme_put32(raw + 56, s->cdw14);
    nvme_put32(raw + 60, s->cdw15);
}

/* [slba, slba + nlb) inside the namespace, without overflow. */
static bool
lba_range_ok(const struct nvme_geom *g, uint64_t slba, uint64_t nlb)
{
    return slba < g->nlba && nlb <= g->nlba - slba;
}

uint16_t
nvme_io_parse(const struct nvme_sqe *c, const struct nvme_geom *g,
              struct nvme_io *out)
{
    uint64_t slba = (uint64_t)c->cdw11 << 32 | c->cdw10;
    uint32_t nlb = (c->cdw12 & 0xffff) + 1;

    memset(out, 0, sizeof(*out));
    switch (c->opcode) {
    case NVME_CMD_FLUSH:
    case NVME_CMD_WRITE:
    case NVME_CMD_READ:
    case NVME_CMD_WRITE_ZEROES:
    case NVME_CMD_DSM:
        break;
    default:
        return NVME_SC_INVALID_OPCODE | NVME_DNR;
    }
    /* Fused operations (4.2 FUSE) are not supported: ONCS.Compare and
     * Write is 0, FUSES is 0. */
    if (c->fuse != 0)
        return NVME_SC_INVALID_FIELD | NVME_DNR;
    /* SGLS is 0: PSDT other than PRPs is an invalid field (4.2). */
    if (c->psdt != 0)
        return NVME_SC_INVALID_FIELD | NVME_DNR;
    /* Flush to every namespace (NSID FFFFFFFFh) is allowed as VWC
     * advertises it (NVM Command Set Spec. 3.2.2). */
    if (c->nsid != NVME_NSID &&
        !(c->opcode == NVME_CMD_FLUSH && c->nsid == NVME_NSID_BROADCAST))
        return NVME_SC_INVALID_NS | NVME_DNR;
    switch (c->opcode) {
    case NVME_CMD_FLUSH:
        out->kind = NVME_IO_FLUSH;
        return NVME_SC_SUCCESS;
    case NVME_CMD_WRITE:
    case NVME_CMD_READ:
        out->kind = c->opcode == NVME_CMD_READ ? NVME_IO_READ : NVME_IO_WRITE;
        /* MDTS bounds data transfers (Identify Controller MDTS). */
        if (((uint64_t)nlb << g->lba_shift) > g->max_xfer)
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        if (!lba_range_ok(g, slba, nlb))
            return NVME_SC_LBA_RANGE | NVME_DNR;
        out->fua = (c->cdw12 & NVME_RW_FUA) != 0;
        break;
    case NVME_CMD_WRITE_ZEROES:
        out->kind = NVME_IO_WRITE_ZEROES;
        if (!lba_range_ok(g, slba, nlb))
            return NVME_SC_LBA_RANGE | NVME_DNR;
        out->deallocate = (c->cdw12 & NVME_WZ_DEAC) != 0;
        out->fua = (c->cdw12 & NVME_RW_FUA) != 0;
        break;
    case NVME_CMD_DSM:
        out->kind = NVME_IO_DSM;
        out->nr_ranges = (c->cdw10 & 0xff) + 1;
        /* Only the Deallocate attribute does anything; the integral read
         * and write hints (IDR, IDW) alone are advisory and complete
         * without effect (NVM Command Set Spec. 3.2.3). */
        out->deallocate = (c->cdw11 & NVME_DSM_AD) != 0;
        return NVME_SC_SUCCESS;
    }
    out->nlb = nlb;
    out->offset = slba << g->lba_shift;
    out->len = (uint64_t)nlb << g->lba_shift;
    return NVME_SC_SUCCESS;
}

uint16_t
nvme_dsm_ranges(const uint8_t *buf, uint32_t nr, const struct nvme_geom *g,
                struct nvme_range *out)
{
    uint32_t i;

    for (i = 0; i < nr; i++) {
        const uint8_t *r = buf + i * NVME_DSM_RANGE_SIZE;
        uint32_t nlb = nvme_le32(r + 4);
        uint64_t slba = nvme_le64(r + 8);

        if (nlb != 0 && !lba_range_ok(g, slba, nlb))
            return NVME_SC_LBA_RANGE | NVME_DNR;
        out[i].offset = nlb == 0 ? 0 : slba << g->lba_shift;
        out[i].len = (uint64_t)nlb << g->lba_shift;
    }
    return NVME_SC_SUCCESS;
}

/* Append [addr, addr+len) to @segs, merging with the last one when it
 * ends at @addr (not by wrapping around the top of the address space:
 * a segment is contiguous guest-physical memory). */
static bool
seg_add(struct nvme_seg *segs, size_t max, size_t *n, uint64_t addr,
        uint64_t len)
{
    if (*n > 0 && addr >= segs[*n - 1].len &&
        segs[*n - 1].addr == addr - segs[*n - 1].len) {
        segs[*n - 1].len += len;
        return true;
    }
    if (*n == max)
        return false;
    segs[*n].addr = addr;
    segs[*n].len = len;
    (*n)++;
    return true;
}

/* PRP list entries read at a time. */
#define PRP_BATCH 64u

uint16_t
nvme_prp_walk(uint64_t prp1, uint64_t prp2, uint64_t len, uint32_t page,
              nvme_mem_read_fn *rd, void *opaque, struct nvme_seg *segs,
              size_t max, size_t *nsegs)
{
    uint64_t first, list, left;
    uint8_t ent[PRP_BATCH * 8];

    *nsegs = 0;
    /* CC.MPS makes pages 4 KiB and up (3.1.3.5); below 16 bytes a list
     * page could hold nothing but its chain pointer, and the walk would
     * never end. */
    if (page < 16 || (page & (page - 1)) != 0)
        return NVME_SC_INTERNAL | NVME_DNR;
    if (len == 0)
        return NVME_SC_SUCCESS;
    /* PRP Entry 1 may carry an offset, dword aligned (4.3). */
    if (prp1 & 3)
        return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
    first = page - (prp1 & (page - 1));
    if (first > len)
        first = len;
    if (!seg_add(segs, max, nsegs, prp1, first))
        return NVME_SC_INTERNAL | NVME_DNR;
    left = len - first;
    if (left == 0)
        return NVME_SC_SUCCESS;
    if (left <= page) {
        /* PRP Entry 2 is the second page itself: no offset. */
        if (prp2 & (page - 1))
            return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
        return seg_add(segs, max, nsegs, prp2, left)
                   ? NVME_SC_SUCCESS
                   : NVME_SC_INTERNAL | NVME_DNR;
    }
    /* A PRP list pointer: qword aligned, may start inside a page. */
    if (prp2 & 7)
        return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
    list = prp2;
    while (left > 0) {
        /* Entries left in this list page; when more pages remain than
         * that, its last entry points to the next list page. */
        uint64_t in_page = (page - (list & (page - 1))) / 8;
        uint64_t need = (left + page - 1) / page;
        bool chain = need > in_page;
        uint64_t ndata = chain ? in_page - 1 : need;
        uint64_t total = ndata + (chain ? 1 : 0), idx = 0, next = 0;

        while (idx < total) {
            uint64_t i, n = total - idx < PRP_BATCH ? total - idx : PRP_BATCH;

            if (rd(opaque, list + idx * 8, ent, n * 8) < 0)
                return NVME_SC_DATA_XFER_ERROR;
            for (i = 0; i < n; i++, idx++) {
                uint64_t e = nvme_le64(ent + i * 8);
                uint64_t chunk = left < page ? left : page;

                /* List entries and list pointers carry no offset. */
                if (e & (page - 1))
                    return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
                if (idx == ndata) {
                    next = e;
                    continue;
                }
                if (!seg_add(segs, max, nsegs, e, chunk))
                    return NVME_SC_INTERNAL | NVME_DNR;
                left -= chunk;
            }
        }
        list = next;
    }
    return NVME_SC_SUCCESS;
}

uint16_t
nvme_admin_parse(const struct nvme_sqe *c, uint32_t page, struct nvme_admin *a)
{
    uint32_t numd;

    memset(a, 0, sizeof(*a));
    a->opcode = c->opcode;
    switch (c->opcode) {
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
        return NVME_SC_INVALID_OPCODE | NVME_DNR;
    }
    if (c->fuse != 0 || c->psdt != 0)
        return NVME_SC_INVALID_FIELD | NVME_DNR;
    switch (c->opcode) {
    case NVME_ADM_DELETE_SQ:
    case NVME_ADM_DELETE_CQ:
        a->qid = (uint16_t)c->cdw10;
        if (a->qid == 0)
            return NVME_SC_QID_INVALID | NVME_DNR;
        return NVME_SC_SUCCESS;
    case NVME_ADM_CREATE_SQ:
    case NVME_ADM_CREATE_CQ:
        a->qid = (uint16_t)c->cdw10;
        a->qsize = (c->cdw10 >> 16) + 1;
        if (a->qid == 0)
            return NVME_SC_QID_INVALID | NVME_DNR;
        /* QSIZE is 0-based; a queue of one entry is invalid. */
        if ((c->cdw10 >> 16) == 0)
            return NVME_SC_QUEUE_SIZE | NVME_DNR;
        /* CAP.CQR: queues must be physically contiguous (Create I/O Completion
         * and Submission Queue, 5.4 and 5.5). */
        if (!(c->cdw11 & 1))
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        /* The queue's base is page aligned (PRP Entry 1 without an
         * offset). */
        if (c->prp1 == 0 || (c->prp1 & (page - 1)))
            return NVME_SC_PRP_OFFSET_INVALID | NVME_DNR;
        if (c->opcode == NVME_ADM_CREATE_SQ) {
            a->qprio = (uint8_t)((c->cdw11 >> 1) & 3);
            a->cqid = (uint16_t)(c->cdw11 >> 16);
            if (a->cqid == 0)
                return NVME_SC_CQ_INVALID | NVME_DNR;
        } else {
            a->ien = (c->cdw11 & 2) != 0;
            a->iv = (uint16_t)(c->cdw11 >> 16);
        }
        return NVME_SC_SUCCESS;
    case NVME_ADM_IDENTIFY:
        a->cns = (uint8_t)c->cdw10;
        a->cntid = (uint16_t)(c->cdw10 >> 16);
        switch (a->cns) {
        case NVME_CNS_NS:
        case NVME_CNS_CTRL:
        case NVME_CNS_ACTIVE_NS_LIST:
        case NVME_CNS_NS_DESC_LIST:
            return NVME_SC_SUCCESS;
        case NVME_CNS_CS_NS:
        case NVME_CNS_CS_CTRL:
            /* Only the NVM command set (CDW11 CSI). */
            a->csi = (uint8_t)(c->cdw11 >> 24);
            return a->csi == NVME_CSI_NVM ? NVME_SC_SUCCESS
                                          : NVME_SC_INVALID_FIELD | NVME_DNR;
        }
        return NVME_SC_INVALID_FIELD | NVME_DNR;
    case NVME_ADM_GET_LOG_PAGE:
        a->lid = (uint8_t)c->cdw10;
        a->rae = (c->cdw10 & (1u << 15)) != 0;
        numd = (c->cdw10 >> 16 | (c->cdw11 & 0xffff) << 16);
        a->log_offset = (uint64_t)c->cdw13 << 32 | c->cdw12;
        /* NUMD is 0-based: 2^32 dwords at most, far above any MDTS. A
         * length in bytes that 32 bits cannot hold is refused here, not
         * wrapped into a short one the command then succeeds with. */
        if (numd > UINT32_MAX / 4 - 1)
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        a->log_len = (numd + 1) * 4u;
        /* The Log Page Offset is dword aligned (Get Log Page, 5.16). */
        if (a->log_offset & 3)
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        switch (a->lid) {
        case NVME_LOG_ERROR:
        case NVME_LOG_SMART:
        case NVME_LOG_FW_SLOT:
            return NVME_SC_SUCCESS;
        }
        return NVME_SC_INVALID_LOG_PAGE | NVME_DNR;
    case NVME_ADM_SET_FEATURES:
    case NVME_ADM_GET_FEATURES:
        a->fid = (uint8_t)c->cdw10;
        a->sel = (uint8_t)((c->cdw10 >> 8) & 7);
        a->save = (c->cdw10 & (1u << 31)) != 0;
        if (c->opcode == NVME_ADM_SET_FEATURES && a->save)
            return NVME_SC_FEAT_NOT_SAVEABLE | NVME_DNR;
        if (c->opcode == NVME_ADM_GET_FEATURES && a->sel > NVME_SEL_SUPPORTED)
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        return NVME_SC_SUCCESS;
    case NVME_ADM_ABORT:
        a->abort_sqid = (uint16_t)c->cdw10;
        a->abort_cid = (uint16_t)(c->cdw10 >> 16);
        return NVME_SC_SUCCESS;
    case NVME_ADM_DBBUF_CONFIG:
        /* Both buffers are page aligned (Doorbell Buffer Config). */
        if (c->prp1 == 0 || c->prp2 == 0 || (c->prp1 & (page - 1)) ||
            (c->prp2 & (page - 1)))
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        return NVME_SC_SUCCESS;
    default: /* NVME_ADM_ASYNC_EVENT */
        return NVME_SC_SUCCESS;
    }
}
