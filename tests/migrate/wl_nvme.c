/*
 * The nvme subdevice's workload for umdev-vmm: a guest nvme driver
 * (devices/nvme/nvme_host.h over the VMM's connection: admin queues,
 * Identify, Doorbell Buffer Config when offered, one polled I/O queue
 * pair) keeping --depth slots busy, each cycling a Write of a fresh
 * seeded pattern to blocks of its own, then a Read of them into a
 * poisoned buffer, compared byte for byte. Commands are in flight at
 * the switch; each must complete once, with its data, on one side or
 * the other. The data lives in the backing file, which both ends share.
 *
 * nvme_host writes guest memory in place (submission entries, the
 * shadow doorbells, a zeroed CQ); the pages only the guest writes are
 * told to the VMM after each such call (sync_guest()), so the shadow and
 * model follow them. Data buffers are written through vmm_gwrite().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "nvme_host.h"
#include "vmm.h"

#define PG NVME_PAGE_SIZE
#define P_ASQ 0u
#define P_ACQ 1u
#define P_IDENT 2u
#define P_DBBUF 3u
#define P_EVIDX 4u
#define P_SQ 5u /* the I/O SQ: 64 entries, one page */
#define P_CQ 6u
#define P_LIST 7u /* PRP list page (a command spans two pages: unused) */
#define P_DATA 16u
#define ADMIN_DEPTH 16u
#define QDEPTH 64u
#define XFER (2u * PG)
#define POISON 0xa5
#define QID 1u

enum { SLOT_FREE, SLOT_WRITING, SLOT_READING };

struct nslot {
    int state;
    uint16_t cid;
    uint64_t slba, seed, cycles;
    uint64_t data;
};

struct nvme_wl {
    struct nvme_host h;
    uint64_t nblocks;
    uint32_t bs;
    uint16_t oacs;
    bool dbbuf;
    bool draining;
    unsigned int nslots;
    struct nslot *slots;
    uint64_t writes, reads, bytes_checked;
    uint8_t buf[XFER];
};

static uint64_t
page(unsigned int n)
{
    return VMM_GPA_BASE + (uint64_t)n * PG;
}

/* The pages only the guest writes, as nvme_host left them. */
static void
sync_guest(struct vmm *v)
{
    struct nvme_wl *w = v->wl_priv;
    static const unsigned int pages[] = { P_ASQ, P_SQ, P_LIST };
    unsigned int i;

    for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        vmm_gwrite(v, page(pages[i]), vmm_gpa(v, page(pages[i]), PG), PG);
    if (w->dbbuf)
        vmm_gwrite(v, page(P_DBBUF), vmm_gpa(v, page(P_DBBUF), PG), PG);
}

static int
host_fail(struct vmm *v, const char *what, int rc)
{
    struct nvme_wl *w = v->wl_priv;

    return vmm_fail(v, "nvme: %s: %s (%s)", what, w->h.err[0] ? w->h.err : "-",
                    strerror(-rc));
}

static int
nv_irqs(struct vmm *v, struct umdev_client *c)
{
    /* Polled queues (nvme_host creates them without interrupts): the
     * guest has no vector to hand over. */
    (void)v;
    (void)c;
    return 0;
}

/* An admin command ran: its completion entries and what it wrote. */
static void
accept_admin(struct vmm *v)
{
    vmm_accept(v, page(P_ACQ), PG);
    vmm_accept(v, page(P_IDENT), PG);
}

static int
nv_open(struct vmm *v)
{
    struct nvme_wl *w = calloc(1, sizeof(*w));
    uint16_t nq = 0;
    unsigned int i;
    int rc;

    if (w == NULL)
        return vmm_fail(v, "out of memory");
    v->wl_priv = w;
    nvme_host_init(&w->h, v->c, v->mem, VMM_GPA_BASE, v->mem_size,
                   VMM_TIMEOUT_MS / 1000.0);
    rc = nvme_host_bus_master(&w->h);
    if (rc == 0)
        rc = nvme_host_enable(&w->h, ADMIN_DEPTH, page(P_ASQ), page(P_ACQ));
    /* The zeroed ACQ is the guest's write; the controller has written
     * nothing there yet. */
    vmm_gwrite(v, page(P_ACQ), vmm_gpa(v, page(P_ACQ), PG), PG);
    if (rc < 0)
        return host_fail(v, "enable", rc);
    sync_guest(v);
    rc = nvme_host_identify_ctrl(&w->h, page(P_IDENT), &w->oacs);
    if (rc == 0)
        rc = nvme_host_identify_ns(&w->h, page(P_IDENT), &w->nblocks, &w->bs);
    if (rc == 0)
        rc = nvme_host_set_queues(&w->h, 1, &nq);
    sync_guest(v);
    accept_admin(v);
    if (rc < 0)
        return host_fail(v, "identify", rc);
    if (w->bs == 0 || XFER % w->bs)
        return vmm_fail(v, "nvme: block size %u", w->bs);
    if (w->oacs & NVME_OACS_DBBUF) {
        rc = nvme_host_dbbuf(&w->h, page(P_DBBUF), page(P_EVIDX));
        /* Both pages zeroed by the guest before the controller took
         * them. */
        vmm_gwrite(v, page(P_EVIDX), vmm_gpa(v, page(P_EVIDX), PG), PG);
        w->dbbuf = rc == 0;
        /* The controller writes EventIdx as it goes, even idle. */
        vmm_device_owned(v, page(P_EVIDX), PG);
        sync_guest(v);
        accept_admin(v);
        if (rc < 0)
            return host_fail(v, "doorbell buffer", rc);
    }
    rc = nvme_host_create_pair(&w->h, QID, QDEPTH, page(P_SQ), page(P_CQ));
    vmm_gwrite(v, page(P_CQ), vmm_gpa(v, page(P_CQ), PG), PG);
    sync_guest(v);
    accept_admin(v);
    if (rc < 0)
        return host_fail(v, "create I/O queues", rc);
    w->nslots = v->depth < QDEPTH / 2 ? v->depth : QDEPTH / 2;
    if (page(P_DATA) + (uint64_t)w->nslots * XFER > VMM_GPA_BASE + v->mem_size)
        return vmm_fail(v, "guest RAM too small for %u slots", w->nslots);
    if (w->nblocks / (XFER / w->bs) < w->nslots)
        return vmm_fail(v, "nvme: %" PRIu64 " blocks, too few", w->nblocks);
    w->slots = calloc(w->nslots, sizeof(*w->slots));
    if (w->slots == NULL)
        return vmm_fail(v, "out of memory");
    for (i = 0; i < w->nslots; i++)
        w->slots[i].data = page(P_DATA) + (uint64_t)i * XFER;
    return 0;
}

static int
submit(struct vmm *v, struct nslot *sl, uint8_t opc)
{
    struct nvme_wl *w = v->wl_priv;
    struct nvme_sqe s;
    int rc = nvme_host_rw(&w->h, opc, sl->slba, XFER / w->bs, sl->data, XFER,
                          page(P_LIST), &s);

    if (rc == 0)
        rc = nvme_host_sq_put(&w->h, QID, &s);
    if (rc == 0)
        rc = nvme_host_doorbell(&w->h, QID, false);
    sync_guest(v);
    if (rc < 0)
        return host_fail(v, opc == NVME_CMD_WRITE ? "write" : "read", rc);
    sl->cid = s.cid;
    return 0;
}

/* Slot @i's next cycle: a fresh pattern at its next blocks (slot i keeps
 * to blocks congruent to i modulo the slots). */
static int
slot_write(struct vmm *v, unsigned int i)
{
    struct nvme_wl *w = v->wl_priv;
    struct nslot *sl = &w->slots[i];
    uint64_t per = XFER / w->bs;
    uint64_t places = w->nblocks / per / w->nslots * w->nslots;

    sl->slba = ((sl->cycles * w->nslots + i) % places) * per;
    sl->seed = (v->seed << 32) ^ (sl->cycles << 8 | i);
    sl->cycles++;
    nvme_host_pattern(w->buf, XFER, sl->seed, false);
    vmm_gwrite(v, sl->data, w->buf, XFER);
    sl->state = SLOT_WRITING;
    return submit(v, sl, NVME_CMD_WRITE);
}

static int
complete(struct vmm *v, const struct nvme_driver_cqe *e)
{
    struct nvme_wl *w = v->wl_priv;
    struct nslot *sl = NULL;
    unsigned int i;
    size_t off;

    for (i = 0; i < w->nslots; i++)
        if (w->slots[i].state != SLOT_FREE && w->slots[i].cid == e->cid)
            sl = &w->slots[i];
    if (sl == NULL || e->sqid != QID)
        return vmm_fail(v,
                        "nvme: a completion for command %u of SQ %u, "
                        "which is not outstanding",
                        e->cid, e->sqid);
    if (e->status != 0)
        return vmm_fail(v, "nvme: %s at LBA %" PRIu64 ": status %#x",
                        sl->state == SLOT_WRITING ? "write" : "read", sl->slba,
                        e->status);
    if (sl->state == SLOT_WRITING) {
        w->writes++;
        memset(w->buf, POISON, XFER);
        vmm_gwrite(v, sl->data, w->buf, XFER);
        sl->state = SLOT_READING;
        return submit(v, sl, NVME_CMD_READ);
    }
    off = nvme_host_pattern(vmm_gpa(v, sl->data, XFER), XFER, sl->seed, true);
    if (off != XFER)
        return vmm_fail(v,
                        "nvme: data read at LBA %" PRIu64 " differs from "
                        "what was written, from byte %zu",
                        sl->slba, off);
    vmm_accept(v, sl->data, XFER);
    w->reads++;
    w->bytes_checked += XFER;
    sl->state = SLOT_FREE;
    return 0;
}

/* Reap what completed. Return: completions, or -1. */
static int
reap(struct vmm *v)
{
    struct nvme_wl *w = v->wl_priv;
    struct nvme_driver_cqe e;
    uint16_t head = w->h.cq[QID].q.idx;
    int rc, n = 0;

    while ((rc = nvme_host_reap(&w->h, QID, &e)) == 1) {
        /* The entry as the guest consumed it. */
        vmm_accept(v, page(P_CQ) + (uint64_t)head * NVME_CQE_SIZE,
                   NVME_CQE_SIZE);
        head = w->h.cq[QID].q.idx;
        n++;
        if (complete(v, &e) < 0)
            return -1;
    }
    if (rc == 0 && n)
        rc = nvme_host_doorbell(&w->h, QID, true);
    sync_guest(v);
    if (rc < 0)
        return host_fail(v, "reap", rc);
    return n;
}

static int
nv_step(struct vmm *v, unsigned long unit)
{
    struct nvme_wl *w = v->wl_priv;
    unsigned int i;
    int n;

    (void)unit;
    /* Reap, then fill the free slots: a unit ends with commands in
     * flight, so a pause between units finds the controller with work
     * to finish at its stop (and --selftest corrupt finds entries the
     * guest has yet to consume). */
    n = reap(v);
    if (n < 0)
        return -1;
    for (i = 0; i < w->nslots; i++)
        if (w->slots[i].state == SLOT_FREE && !w->draining &&
            slot_write(v, i) < 0)
            return -1;
    if (n == 0)
        usleep(200);
    return 0;
}

/*
 * For --selftest corrupt: among the entries the controller posted and
 * the guest has not consumed yet (past the CQ head, current phase), a
 * Read's data (consuming it compares every byte), else an entry's CID
 * high byte (no command is outstanding under a CID 256 away). Either
 * stays as it is until the guest consumes it.
 */
static int
nv_corrupt(struct vmm *v, uint64_t *gpa)
{
    struct nvme_wl *w = v->wl_priv;
    const struct nvme_driver_q *cq = &w->h.cq[QID].q;
    uint16_t idx = cq->idx;
    bool phase = cq->phase;
    uint64_t first = 0;
    unsigned int i, k;

    for (k = 0; k < cq->size; k++) {
        const uint8_t *e = cq->ring + (size_t)idx * NVME_CQE_SIZE;
        uint32_t dw3 = nvme_driver_get32(e + 12);

        if (((dw3 >> 16) & 1u) != (phase ? 1u : 0u))
            break;
        if (first == 0)
            first = page(P_CQ) + (uint64_t)idx * NVME_CQE_SIZE + 13;
        for (i = 0; i < w->nslots; i++)
            if (w->slots[i].state == SLOT_READING &&
                w->slots[i].cid == (uint16_t)dw3) {
                *gpa = w->slots[i].data + XFER / 2;
                return 0;
            }
        if (++idx == cq->size) {
            idx = 0;
            phase = !phase;
        }
    }
    if (first == 0)
        return -ENOENT;
    *gpa = first;
    return 0;
}

static int
nv_switched(struct vmm *v)
{
    struct nvme_wl *w = v->wl_priv;

    /* The driver's connection is the VMM's, which moved. */
    w->h.c = v->c;
    return 0;
}

static int
nv_finish(struct vmm *v)
{
    struct nvme_wl *w = v->wl_priv;
    uint64_t t0 = vmm_now_us();
    unsigned int i, busy;

    w->draining = true;
    for (;;) {
        if (nv_step(v, 0) < 0)
            return -1;
        for (busy = 0, i = 0; i < w->nslots; i++)
            busy += w->slots[i].state != SLOT_FREE;
        if (busy == 0)
            break;
        if (vmm_now_us() - t0 > 2 * VMM_TIMEOUT_MS * 1000ull)
            return vmm_fail(v, "nvme: %u command(s) never completed", busy);
    }
    return 0;
}

static void
nv_summary(struct vmm *v, FILE *f)
{
    struct nvme_wl *w = v->wl_priv;

    if (w == NULL)
        return;
    fprintf(f,
            ",\"slots\":%u,\"block_size\":%u,\"writes\":%" PRIu64
            ",\"reads\":%" PRIu64 ",\"bytes_checked\":%" PRIu64
            ",\"doorbell_buffer\":%s",
            w->nslots, w->bs, w->writes, w->reads, w->bytes_checked,
            w->dbbuf ? "true" : "false");
}

static void
nv_close(struct vmm *v)
{
    struct nvme_wl *w = v->wl_priv;

    if (w == NULL)
        return;
    free(w->slots);
    free(w);
    v->wl_priv = NULL;
}

const struct vmm_workload vmm_wl_nvme = {
    .name = "nvme",
    .open = nv_open,
    .irqs = nv_irqs,
    .step = nv_step,
    .switched = nv_switched,
    .corrupt = nv_corrupt,
    .finish = nv_finish,
    .summary = nv_summary,
    .close = nv_close,
};
