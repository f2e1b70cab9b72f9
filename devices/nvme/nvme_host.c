/*
 * The driver side of an nvme subdevice on the umdev client
 * (nvme_host.h): nvme_driver.h's queues over the client's BAR0 accesses,
 * the wake-up accounting of the conformance kit, and the admin commands
 * a polled driver needs.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nvme_host.h"
#include "umdev/client.h"

#define BAR0 VFIO_PCI_BAR0_REGION_INDEX
#define CONFIG VFIO_PCI_CONFIG_REGION_INDEX

static int fail(struct nvme_host *h, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct nvme_host *h, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(h->err, sizeof(h->err), fmt, ap);
    va_end(ap);
    h->nerr++;
    return rc;
}

/* The driver's accessors: a failure has said what it was in h->err. */
static int
drv_read32(void *opaque, uint32_t off, uint32_t *v)
{
    return nvme_host_reg_read32(opaque, off, v);
}

static int
drv_write32(void *opaque, uint32_t off, uint32_t v)
{
    return nvme_host_reg_write(opaque, off, v, 4);
}

void
nvme_host_init(struct nvme_host *h, struct umdev_client *c, void *mem,
               uint64_t iova, uint64_t size, double timeout_s)
{
    memset(h, 0, sizeof(*h));
    h->c = c;
    h->mem = mem;
    h->iova = iova;
    h->size = size;
    h->drv = (struct nvme_driver){ .read32 = drv_read32,
                                   .write32 = drv_write32,
                                   .opaque = h,
                                   .timeout_s = timeout_s };
}

void *
nvme_host_ptr(struct nvme_host *h, uint64_t iova, uint64_t len)
{
    if (iova < h->iova || len > h->size || iova - h->iova > h->size - len)
        return NULL;
    return h->mem + (iova - h->iova);
}

uint64_t
nvme_host_msgs(const struct nvme_host *h)
{
    struct umdev_client_stats st;

    umdev_client_get_stats(h->c, &st);
    return st.requests + st.dma_reads + st.dma_writes;
}

int
nvme_host_reg_read32(struct nvme_host *h, uint64_t off, uint32_t *v)
{
    uint8_t b[4];
    int rc = umdev_client_region_read(h->c, BAR0, off, b, 4);

    if (rc < 0)
        return fail(h, rc, "BAR0 read at %#" PRIx64 ": %s", off, strerror(-rc));
    *v = nvme_le32(b);
    return 0;
}

int
nvme_host_reg_write(struct nvme_host *h, uint64_t off, uint64_t v, size_t len)
{
    uint8_t b[8];
    int rc;

    nvme_put64(b, v);
    rc = umdev_client_region_write(h->c, BAR0, off, b, len);
    if (rc < 0)
        return fail(h, rc, "BAR0 write at %#" PRIx64 ": %s", off,
                    strerror(-rc));
    return 0;
}

int
nvme_host_bus_master(struct nvme_host *h)
{
    uint8_t b[2];
    uint16_t cmd;
    int rc = umdev_client_region_read(h->c, CONFIG, PCI_COMMAND, b, 2);

    if (rc == 0) {
        cmd = nvme_le16(b) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
        nvme_put16(b, cmd);
        rc = umdev_client_region_write(h->c, CONFIG, PCI_COMMAND, b, 2);
    }
    if (rc < 0)
        return fail(h, rc, "PCI command register: %s", strerror(-rc));
    return 0;
}

/*
 * nvme_driver.h returns its accessors' errors and its own alike; an
 * accessor's has been said in h->err already, which @nerr, h->nerr
 * before the call, tells.
 */
static bool
said(const struct nvme_host *h, unsigned int nerr)
{
    return h->nerr != nerr;
}

/* @rc of a CSTS wait of the driver's, in words; @what names the wait. */
static int
csts_fail(struct nvme_host *h, int rc, unsigned int nerr, const char *what)
{
    if (rc >= 0 || said(h, nerr))
        return rc;
    if (rc == -EIO)
        return fail(h, rc,
                    "controller fatal status (CSTS %#x) "
                    "waiting for %s",
                    h->drv.csts, what);
    return fail(h, rc, "CSTS %#x: no %s within %.0f s", h->drv.csts, what,
                nvme_driver_timeout(&h->drv));
}

/* The wait nvme_driver.h's latest one was, in words. */
static const char *
csts_what(const struct nvme_driver *d)
{
    if (d->csts_mask == NVME_CSTS_SHST_MASK)
        return "shutdown complete";
    return d->csts_want != 0 ? "CSTS.RDY" : "CSTS.RDY clear";
}

int
nvme_host_wait_csts(struct nvme_host *h, uint32_t mask, uint32_t want,
                    const char *what)
{
    unsigned int nerr = h->nerr;

    return csts_fail(h, nvme_driver_wait_csts(&h->drv, mask, want), nerr, what);
}

/* The host forgets its queues: the controller's are gone or going. */
static void
forget_queues(struct nvme_host *h)
{
    memset(h->sq, 0, sizeof(h->sq));
    memset(h->cq, 0, sizeof(h->cq));
    h->dbbuf_db = h->dbbuf_ei = 0;
}

int
nvme_host_enable(struct nvme_host *h, uint16_t depth, uint64_t asq,
                 uint64_t acq)
{
    uint8_t *sq = nvme_host_ptr(h, asq, (uint64_t)depth * NVME_SQE_SIZE);
    uint8_t *cq = nvme_host_ptr(h, acq, (uint64_t)depth * NVME_CQE_SIZE);
    unsigned int nerr = h->nerr;
    int rc;

    if (sq == NULL || cq == NULL || depth < 2)
        return fail(h, -EINVAL, "admin queues outside guest memory");
    forget_queues(h);
    /* Not yet cleared: nvme_driver_enable() does that once the
     * controller is disabled. */
    h->sq[0].q = (struct nvme_driver_q){ .ring = sq, .size = depth };
    h->cq[0].q = (struct nvme_driver_q){ .ring = cq, .size = depth };
    rc = nvme_driver_enable(&h->drv, &h->sq[0].q, asq, &h->cq[0].q, acq);
    if (rc < 0)
        h->sq[0].q.size = h->cq[0].q.size = 0;
    return csts_fail(h, rc, nerr, csts_what(&h->drv));
}

int
nvme_host_shutdown(struct nvme_host *h)
{
    unsigned int nerr = h->nerr;
    int rc = nvme_driver_shutdown(&h->drv);

    forget_queues(h);
    return csts_fail(h, rc, nerr, csts_what(&h->drv));
}

static struct nvme_host_q *
queue(struct nvme_host *h, uint16_t qid, bool cq)
{
    struct nvme_host_q *q;

    if (qid >= NVME_MAX_QUEUES)
        return NULL;
    q = cq ? &h->cq[qid] : &h->sq[qid];
    return q->q.size != 0 ? q : NULL;
}

int
nvme_host_sq_put(struct nvme_host *h, uint16_t qid, struct nvme_sqe *s)
{
    struct nvme_host_q *q = queue(h, qid, false);

    if (q == NULL)
        return fail(h, -EINVAL, "no submission queue %u", qid);
    s->cid = h->cid++;
    nvme_sqe_encode(s, nvme_driver_sq_slot(&q->q));
    nvme_driver_sq_push(&q->q);
    return 0;
}

/* SQ @q's entries from its published tail to its tail are published
 * at @t. */
static void
stamp(struct nvme_host_q *q, double t)
{
    uint16_t i;

    if (q->q.size > NVME_HOST_TRACK_DEPTH)
        return;
    for (i = q->q.db; i != q->q.idx; i = (uint16_t)((i + 1u) % q->q.size))
        q->pub_s[i] = t;
}

int
nvme_host_doorbell(struct nvme_host *h, uint16_t qid, bool cq)
{
    struct nvme_host_q *q = queue(h, qid, cq);
    double t;
    int rc;

    if (q == NULL)
        return fail(h, -EINVAL, "no queue %u", qid);
    if (q->q.db == q->q.idx)
        return 0;
    /* Before the shadow store: a driver descheduled between the two then
     * counts as away longer, never shorter. */
    t = nvme_driver_now_s();
    if (!cq)
        stamp(q, t);
    rc = nvme_driver_ring(&h->drv, &q->q);
    /* A register the EventIdx asked for: did it wake a sleeping
     * controller, or come while it ought to have been polling still? */
    if (rc == 1 && q->q.shadow != NULL) {
        if (t - h->busy_s < h->poll_window_s)
            h->wakeups_loaded++;
        else
            h->wakeups_stalled++;
    }
    return rc < 0 ? rc : 0;
}

int
nvme_host_reap(struct nvme_host *h, uint16_t qid, struct nvme_driver_cqe *e)
{
    struct nvme_host_q *q = queue(h, qid, true);
    const struct nvme_host_q *sq;
    double t;

    if (q == NULL)
        return fail(h, -EINVAL, "no completion queue %u", qid);
    /* Before the load: an entry not there yet is posted after @t. */
    t = h->poll_window_s > 0 ? nvme_driver_now_s() : 0;
    if (!nvme_driver_cq_pop(&q->q, e)) {
        q->empty_s = t;
        return 0;
    }
    /* Entries are posted in order: this one and all after it came in a
     * pass that did work after the latest empty poll. */
    if (qid != 0 && q->empty_s > h->busy_s)
        h->busy_s = q->empty_s;
    /* The entry before SQ Head was fetched, in a pass after its tail
     * was published. */
    sq = e->sqid != 0 ? queue(h, e->sqid, false) : NULL;
    if (sq != NULL && sq->q.size <= NVME_HOST_TRACK_DEPTH &&
        e->sqhd < sq->q.size &&
        sq->pub_s[(e->sqhd + sq->q.size - 1u) % sq->q.size] > h->busy_s)
        h->busy_s = sq->pub_s[(e->sqhd + sq->q.size - 1u) % sq->q.size];
    return 1;
}

/* @rc of nvme_driver_cmd() for the command last put on SQ @qid, in
 * words; @e the completion it left. */
static int
cmd_fail(struct nvme_host *h, int rc, unsigned int nerr, uint16_t qid,
         const struct nvme_driver_cqe *e)
{
    const struct nvme_driver_q *sq = &h->sq[qid].q;
    size_t last = (sq->idx + sq->size - 1u) % sq->size;
    uint32_t dw0 = nvme_driver_get32(sq->ring + last * NVME_SQE_SIZE);

    if (rc >= 0 || said(h, nerr))
        return rc;
    if (rc == -EPROTO)
        return fail(h, rc,
                    "queue %u: completion for command %u of SQ %u, "
                    "expected %u",
                    qid, e->cid, e->sqid, dw0 >> 16);
    return fail(h, rc,
                "queue %u: no completion for command %u (opcode "
                "%#x) within %.0f s",
                qid, dw0 >> 16, dw0 & 0xff, nvme_driver_timeout(&h->drv));
}

int
nvme_host_cmd(struct nvme_host *h, uint16_t qid, struct nvme_sqe *s,
              uint32_t *dw0)
{
    struct nvme_host_q *sq = queue(h, qid, false), *cq = queue(h, qid, true);
    struct nvme_driver_cqe e;
    uint8_t b[NVME_SQE_SIZE];
    unsigned int nerr = h->nerr;
    int rc;

    if (sq == NULL)
        return fail(h, -EINVAL, "no submission queue %u", qid);
    if (cq == NULL)
        return fail(h, -EINVAL, "no completion queue %u", qid);
    s->cid = h->cid++;
    nvme_sqe_encode(s, b);
    rc = nvme_driver_cmd(&h->drv, &sq->q, &cq->q, b, &e);
    if (rc < 0)
        return cmd_fail(h, rc, nerr, qid, &e);
    if (dw0 != NULL)
        *dw0 = e.dw0;
    return e.status;
}

int
nvme_host_admin(struct nvme_host *h, struct nvme_sqe *s, uint32_t *dw0,
                const char *what)
{
    int rc = nvme_host_cmd(h, 0, s, dw0);

    if (rc > 0)
        return fail(h, -EIO, "%s failed: status %#x", what, rc);
    return rc;
}

static struct nvme_sqe
sqe(uint8_t opc)
{
    struct nvme_sqe s;

    memset(&s, 0, sizeof(s));
    s.opcode = opc;
    return s;
}

int
nvme_host_identify_ctrl(struct nvme_host *h, uint64_t buf, uint16_t *oacs)
{
    struct nvme_sqe s = sqe(NVME_ADM_IDENTIFY);
    const uint8_t *d = nvme_host_ptr(h, buf, NVME_PAGE_SIZE);
    int rc;

    if (d == NULL)
        return fail(h, -EINVAL, "Identify buffer outside guest memory");
    s.prp1 = buf;
    s.cdw10 = NVME_CNS_CTRL;
    rc = nvme_host_admin(h, &s, NULL, "Identify Controller");
    if (rc == 0)
        *oacs = nvme_le16(d + NVME_IDC_OACS);
    return rc;
}

int
nvme_host_identify_ns(struct nvme_host *h, uint64_t buf, uint64_t *nsze,
                      uint32_t *bs)
{
    struct nvme_sqe s = sqe(NVME_ADM_IDENTIFY);
    const uint8_t *d = nvme_host_ptr(h, buf, NVME_PAGE_SIZE);
    uint8_t lbads;
    int rc;

    if (d == NULL)
        return fail(h, -EINVAL, "Identify buffer outside guest memory");
    s.nsid = NVME_NSID;
    s.prp1 = buf;
    s.cdw10 = NVME_CNS_NS;
    rc = nvme_host_admin(h, &s, NULL, "Identify Namespace");
    if (rc < 0)
        return rc;
    *nsze = nvme_le64(d);
    /* FLBAS picks the LBA format; LBADS is its byte 2 (NVM 4.1.5.1). */
    lbads = d[128 + 4 * (d[26] & 0xf) + 2];
    if (lbads < 9 || lbads > 12)
        return fail(h, -ENOTSUP,
                    "namespace block size 2^%u is not one this driver "
                    "handles",
                    lbads);
    *bs = 1u << lbads;
    return 0;
}

int
nvme_host_set_queues(struct nvme_host *h, uint16_t want, uint16_t *got)
{
    struct nvme_sqe s = sqe(NVME_ADM_SET_FEATURES);
    uint32_t dw0 = 0, nsq, ncq;
    int rc;

    s.cdw10 = NVME_FEAT_NUM_QUEUES;
    s.cdw11 = (uint32_t)(want - 1) << 16 | (want - 1u);
    rc = nvme_host_admin(h, &s, &dw0, "Set Features (Number of Queues)");
    if (rc < 0)
        return rc;
    /* Base 5.27.1.5: both 0-based, possibly more than asked. */
    nsq = (dw0 & 0xffff) + 1;
    ncq = (dw0 >> 16) + 1;
    nsq = nsq < ncq ? nsq : ncq;
    *got = (uint16_t)(nsq < want ? nsq : want);
    return 0;
}

/* With Doorbell Buffer Config in force, the doorbells of I/O queue pair
 * @qid (if it exists) go through their shadow slots. */
static void
shadow(struct nvme_host *h, uint16_t qid)
{
    uint8_t *db = nvme_host_ptr(h, h->dbbuf_db, NVME_PAGE_SIZE);
    uint8_t *ei = nvme_host_ptr(h, h->dbbuf_ei, NVME_PAGE_SIZE);

    if (h->dbbuf_db == 0 || db == NULL || ei == NULL)
        return;
    if (h->sq[qid].q.size != 0)
        nvme_driver_dbbuf_attach(&h->sq[qid].q, db, ei);
    if (h->cq[qid].q.size != 0)
        nvme_driver_dbbuf_attach(&h->cq[qid].q, db, ei);
}

int
nvme_host_dbbuf(struct nvme_host *h, uint64_t db, uint64_t ei)
{
    struct nvme_sqe s = sqe(NVME_ADM_DBBUF_CONFIG);
    void *pdb = nvme_host_ptr(h, db, NVME_PAGE_SIZE);
    void *pei = nvme_host_ptr(h, ei, NVME_PAGE_SIZE);
    uint16_t q;
    int rc;

    if (pdb == NULL || pei == NULL)
        return fail(h, -EINVAL, "doorbell buffer outside guest memory");
    memset(pdb, 0, NVME_PAGE_SIZE);
    memset(pei, 0, NVME_PAGE_SIZE);
    s.prp1 = db;
    s.prp2 = ei;
    rc = nvme_host_admin(h, &s, NULL, "Doorbell Buffer Config");
    if (rc == 0) {
        h->dbbuf_db = db;
        h->dbbuf_ei = ei;
        /* The controller has written the current values into both
         * pages (Base, "Doorbell Buffer Config command"). */
        for (q = 1; q < NVME_MAX_QUEUES; q++)
            shadow(h, q);
    }
    return rc;
}

int
nvme_host_create_pair(struct nvme_host *h, uint16_t qid, uint16_t depth,
                      uint64_t sqa, uint64_t cqa)
{
    uint8_t *sqr = nvme_host_ptr(h, sqa, (uint64_t)depth * NVME_SQE_SIZE);
    uint8_t *cqr = nvme_host_ptr(h, cqa, (uint64_t)depth * NVME_CQE_SIZE);
    struct nvme_driver_q sq, cq;
    struct nvme_driver_cqe e;
    uint16_t cid = h->cid;
    unsigned int nerr = h->nerr;
    int rc;

    if (qid == 0 || qid >= NVME_MAX_QUEUES || depth < 2 || cqr == NULL ||
        sqr == NULL)
        return fail(h, -EINVAL,
                    "I/O queue pair %u: bad id or outside "
                    "guest memory",
                    qid);
    if (queue(h, 0, false) == NULL || queue(h, 0, true) == NULL)
        return fail(h, -EINVAL,
                    "no admin queues: the controller is not enabled");
    nvme_driver_q_init(&sq, sqr, qid, depth, false);
    nvme_driver_q_init(&cq, cqr, qid, depth, true);
    h->cid = (uint16_t)(cid + 2);
    rc = nvme_driver_create_pair(&h->drv, &h->sq[0].q, &h->cq[0].q, &sq, sqa,
                                 &cq, cqa, cid, &e);
    if (rc < 0)
        return cmd_fail(h, rc, nerr, 0, &e);
    if (rc > 0)
        return fail(h, -EIO, "%s failed: status %#x",
                    e.cid == cid ? "Create I/O Completion Queue"
                                 : "Create I/O Submission Queue",
                    e.status);
    memset(&h->sq[qid], 0, sizeof(h->sq[qid]));
    memset(&h->cq[qid], 0, sizeof(h->cq[qid]));
    h->sq[qid].q = sq;
    h->cq[qid].q = cq;
    shadow(h, qid);
    return 0;
}

int
nvme_host_rw(struct nvme_host *h, uint8_t opc, uint64_t slba, uint32_t nlb,
             uint64_t addr, uint64_t len, uint64_t list, struct nvme_sqe *s)
{
    uint64_t pages = (len + NVME_PAGE_SIZE - 1) / NVME_PAGE_SIZE, i;
    uint8_t *l = NULL;

    if ((addr & (NVME_PAGE_SIZE - 1)) != 0 || len == 0 || nlb == 0 ||
        nvme_host_ptr(h, addr, len) == NULL ||
        (pages > 2 && (l = nvme_host_ptr(h, list, (pages - 1) * 8)) == NULL) ||
        pages - 1 > NVME_PAGE_SIZE / 8)
        return fail(h, -EINVAL,
                    "%" PRIu64 " bytes at %#" PRIx64
                    ": not a page-aligned buffer this driver can describe",
                    len, addr);
    *s = sqe(opc);
    s->nsid = NVME_NSID;
    s->prp1 = addr;
    /* PRP2: the second page, or a list of all pages after the first. */
    if (pages == 2)
        s->prp2 = addr + NVME_PAGE_SIZE;
    else if (pages > 2)
        s->prp2 = list;
    for (i = 1; l != NULL && i < pages; i++)
        nvme_put64(l + 8 * (i - 1), addr + i * NVME_PAGE_SIZE);
    s->cdw10 = (uint32_t)slba;
    s->cdw11 = (uint32_t)(slba >> 32);
    s->cdw12 = nlb - 1;
    return 0;
}

size_t
nvme_host_pattern(uint8_t *p, size_t n, uint64_t seed, bool check)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
    size_t i;

    /* Deterministic, so that a mismatch can be found again, and cheap
     * enough to keep the queues fed while the driver checks data. */
    for (i = 0; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (!check)
            memcpy(p + i, &x, 8);
        else if (memcmp(p + i, &x, 8) != 0)
            return i;
    }
    return n;
}
