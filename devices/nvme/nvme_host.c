/*
 * The driver side of an nvme subdevice on the umdev client
 * (nvme_host.h): registers, queues, doorbells and the admin commands a
 * polled driver needs.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvme_host.h"
#include "umdev/client.h"

#define BAR0 VFIO_PCI_BAR0_REGION_INDEX
#define CONFIG VFIO_PCI_CONFIG_REGION_INDEX

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Doorbell @qid's offset in BAR0 (CAP.DSTRD 0) and in the doorbell
 * buffer's pages alike. */
static uint64_t
db_off(uint16_t qid, bool cq)
{
    return (2u * qid + (cq ? 1u : 0u)) * 4u;
}

static int fail(struct nvme_host *h, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct nvme_host *h, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(h->err, sizeof(h->err), fmt, ap);
    va_end(ap);
    return rc;
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
    h->timeout_s = timeout_s;
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

int
nvme_host_wait_csts(struct nvme_host *h, uint32_t mask, uint32_t want,
                    const char *what)
{
    double t0 = now_s();
    uint32_t v;
    int rc;

    for (;;) {
        rc = nvme_host_reg_read32(h, NVME_REG_CSTS, &v);
        if (rc < 0)
            return rc;
        if ((v & mask) == want)
            return 0;
        if (v & NVME_CSTS_CFS)
            return fail(h, -EIO,
                        "controller fatal status (CSTS %#x) "
                        "waiting for %s",
                        v, what);
        if (now_s() - t0 > h->timeout_s)
            return fail(h, -ETIMEDOUT, "CSTS %#x: no %s within %.0f s", v, what,
                        h->timeout_s);
        usleep(100);
    }
}

/* CC as this driver sets it: 64-byte SQ and 16-byte CQ entries, 4 KiB
 * pages, NVM command set, round robin. */
#define HOST_CC (NVME_SQES_LOG2 << 16 | NVME_CQES_LOG2 << 20)
#define HOST_CC_SHN_MASK (3u << 14)
#define HOST_CC_SHN_NORMAL (1u << 14)

int
nvme_host_enable(struct nvme_host *h, uint16_t depth, uint64_t asq,
                 uint64_t acq)
{
    void *sq = nvme_host_ptr(h, asq, (uint64_t)depth * NVME_SQE_SIZE);
    void *cq = nvme_host_ptr(h, acq, (uint64_t)depth * NVME_CQE_SIZE);
    uint32_t cc;
    int rc;

    if (sq == NULL || cq == NULL || depth < 2)
        return fail(h, -EINVAL, "admin queues outside guest memory");
    memset(h->sq, 0, sizeof(h->sq));
    memset(h->cq, 0, sizeof(h->cq));
    h->dbbuf_db = h->dbbuf_ei = 0;
    /* As Linux's nvme_disable_ctrl() before it configures the admin
     * queue: a controller someone left enabled is reset first. */
    rc = nvme_host_reg_read32(h, NVME_REG_CC, &cc);
    if (rc == 0 && (cc & NVME_CC_EN))
        rc = nvme_host_reg_write(h, NVME_REG_CC, cc & ~NVME_CC_EN, 4);
    if (rc == 0)
        rc = nvme_host_wait_csts(h, NVME_CSTS_RDY, 0, "CSTS.RDY clear");
    if (rc < 0)
        return rc;
    memset(cq, 0, (size_t)depth * NVME_CQE_SIZE);
    h->sq[0] = (struct nvme_host_q){ .iova = asq, .size = depth };
    h->cq[0] =
        (struct nvme_host_q){ .iova = acq, .size = depth, .phase = true };
    rc = nvme_host_reg_write(h, NVME_REG_AQA,
                             (uint32_t)(depth - 1) << 16 | (depth - 1u), 4);
    /* 64-bit registers as two dwords, low first, as drivers may. */
    if (rc == 0)
        rc = nvme_host_reg_write(h, NVME_REG_ASQ, (uint32_t)asq, 4);
    if (rc == 0)
        rc = nvme_host_reg_write(h, NVME_REG_ASQ + 4, asq >> 32, 4);
    if (rc == 0)
        rc = nvme_host_reg_write(h, NVME_REG_ACQ, (uint32_t)acq, 4);
    if (rc == 0)
        rc = nvme_host_reg_write(h, NVME_REG_ACQ + 4, acq >> 32, 4);
    if (rc == 0)
        rc = nvme_host_reg_write(h, NVME_REG_CC, NVME_CC_EN | HOST_CC, 4);
    if (rc == 0)
        rc = nvme_host_wait_csts(h, NVME_CSTS_RDY, NVME_CSTS_RDY, "CSTS.RDY");
    return rc;
}

int
nvme_host_shutdown(struct nvme_host *h)
{
    uint32_t cc;
    int rc = nvme_host_reg_read32(h, NVME_REG_CC, &cc);

    /* A controller never enabled has nothing to shut down, and writing
     * CC.EN with CC.SHN would enable it. */
    if (rc == 0 && (cc & NVME_CC_EN)) {
        rc = nvme_host_reg_write(
            h, NVME_REG_CC, (cc & ~HOST_CC_SHN_MASK) | HOST_CC_SHN_NORMAL, 4);
        if (rc == 0)
            rc = nvme_host_wait_csts(h, NVME_CSTS_SHST_MASK,
                                     2u << NVME_CSTS_SHST_SHIFT,
                                     "shutdown complete");
        if (rc == 0)
            rc = nvme_host_reg_write(h, NVME_REG_CC,
                                     cc & ~(NVME_CC_EN | HOST_CC_SHN_MASK), 4);
    }
    if (rc == 0)
        rc = nvme_host_wait_csts(h, NVME_CSTS_RDY, 0, "CSTS.RDY clear");
    memset(h->sq, 0, sizeof(h->sq));
    memset(h->cq, 0, sizeof(h->cq));
    h->dbbuf_db = h->dbbuf_ei = 0;
    return rc;
}

int
nvme_host_sq_put(struct nvme_host *h, uint16_t qid, struct nvme_sqe *s)
{
    struct nvme_host_q *q = qid < NVME_MAX_QUEUES ? &h->sq[qid] : NULL;
    uint8_t *e;

    if (q == NULL || q->size == 0)
        return fail(h, -EINVAL, "no submission queue %u", qid);
    e = nvme_host_ptr(h, q->iova + (uint64_t)q->idx * NVME_SQE_SIZE,
                      NVME_SQE_SIZE);
    if (e == NULL)
        return fail(h, -EINVAL, "SQ %u outside guest memory", qid);
    s->cid = h->cid++;
    nvme_sqe_encode(s, e);
    q->idx = (uint16_t)((q->idx + 1) % q->size);
    return 0;
}

/* SQ @q's entries from its published tail to its tail are published
 * at @t. */
static void
stamp(struct nvme_host_q *q, double t)
{
    uint16_t i;

    if (q->size > NVME_HOST_TRACK_DEPTH)
        return;
    for (i = q->db; i != q->idx; i = (uint16_t)((i + 1u) % q->size))
        q->pub_s[i] = t;
}

/* Linux's nvme_dbbuf_need_event(): does moving a doorbell from @old to
 * @new_idx pass the EventIdx @ei? */
static bool
need_event(uint16_t ei, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - ei - 1) < (uint16_t)(new_idx - old);
}

int
nvme_host_doorbell(struct nvme_host *h, uint16_t qid, bool cq)
{
    struct nvme_host_q *q;
    int rc;

    if (qid >= NVME_MAX_QUEUES)
        return fail(h, -EINVAL, "no queue %u", qid);
    q = cq ? &h->cq[qid] : &h->sq[qid];
    if (q->db == q->idx)
        return 0;
    if (h->dbbuf_db != 0 && qid != 0) {
        uint32_t *db = nvme_host_ptr(h, h->dbbuf_db + db_off(qid, cq), 4);
        uint32_t *ei = nvme_host_ptr(h, h->dbbuf_ei + db_off(qid, cq), 4);
        /* Before the store: a driver descheduled between the two then
         * counts as away longer, never shorter. */
        double t = now_s(), gap = t - h->busy_s;
        uint16_t old = q->db;

        if (!cq)
            stamp(q, t);
        q->db = q->idx;
        /* The store, then the EventIdx: Linux's
         * nvme_dbbuf_update_and_check_event() has a full barrier between
         * them, so that a controller going to sleep either sees the new
         * value or has published the EventIdx that makes us ring. */
        __atomic_store_n(db, q->idx, __ATOMIC_SEQ_CST);
        if (!need_event((uint16_t)__atomic_load_n(ei, __ATOMIC_SEQ_CST), q->idx,
                        old))
            return 0;
        if (gap < h->poll_window_s)
            h->wakeups_loaded++;
        else
            h->wakeups_stalled++;
    }
    if (!cq)
        stamp(q, now_s());
    q->db = q->idx;
    rc = nvme_host_reg_write(h, NVME_REG_DBS + db_off(qid, cq), q->idx, 4);
    if (rc == 0)
        h->mmio_doorbells++;
    return rc;
}

int
nvme_host_reap(struct nvme_host *h, uint16_t qid, struct nvme_host_cqe *e)
{
    struct nvme_host_q *q = qid < NVME_MAX_QUEUES ? &h->cq[qid] : NULL;
    uint8_t *p;
    uint32_t dw3;
    double t;

    if (q == NULL || q->size == 0)
        return fail(h, -EINVAL, "no completion queue %u", qid);
    p = nvme_host_ptr(h, q->iova + (uint64_t)q->idx * NVME_CQE_SIZE,
                      NVME_CQE_SIZE);
    if (p == NULL)
        return fail(h, -EINVAL, "CQ %u outside guest memory", qid);
    /* Before the load: an entry not there yet is posted after @t. */
    t = h->poll_window_s > 0 ? now_s() : 0;
    /* The device writes the entry, then its phase: load DW3 once,
     * ordered before the reads of the rest. */
    dw3 = __atomic_load_n((uint32_t *)(p + 12), __ATOMIC_ACQUIRE);
    dw3 = nvme_le32((const uint8_t *)&dw3);
    if (((dw3 >> 16) & 1) != (q->phase ? 1u : 0u)) {
        q->empty_s = t;
        return 0;
    }
    /* Entries are posted in order: this one and all after it came in a
     * pass that did work after the latest empty poll. */
    if (qid != 0 && q->empty_s > h->busy_s)
        h->busy_s = q->empty_s;
    e->dw0 = nvme_le32(p);
    e->sqhd = nvme_le16(p + 8);
    e->sqid = nvme_le16(p + 10);
    e->cid = (uint16_t)dw3;
    e->status = (uint16_t)(dw3 >> 17);
    /* The entry before SQ Head was fetched, in a pass after its tail
     * was published. */
    if (e->sqid != 0 && e->sqid < NVME_MAX_QUEUES) {
        const struct nvme_host_q *sq = &h->sq[e->sqid];

        if (sq->size != 0 && sq->size <= NVME_HOST_TRACK_DEPTH &&
            e->sqhd < sq->size &&
            sq->pub_s[(e->sqhd + sq->size - 1u) % sq->size] > h->busy_s)
            h->busy_s = sq->pub_s[(e->sqhd + sq->size - 1u) % sq->size];
    }
    if (++q->idx == q->size) {
        q->idx = 0;
        q->phase = !q->phase;
    }
    return 1;
}

int
nvme_host_cmd(struct nvme_host *h, uint16_t qid, struct nvme_sqe *s,
              uint32_t *dw0)
{
    struct nvme_host_cqe e;
    double t0 = now_s();
    int rc = nvme_host_sq_put(h, qid, s);

    if (rc == 0)
        rc = nvme_host_doorbell(h, qid, false);
    while (rc == 0 && (rc = nvme_host_reap(h, qid, &e)) == 0) {
        if (now_s() - t0 > h->timeout_s)
            return fail(h, -ETIMEDOUT,
                        "queue %u: no completion for command %u (opcode "
                        "%#x) within %.0f s",
                        qid, s->cid, s->opcode, h->timeout_s);
        sched_yield();
    }
    if (rc < 0)
        return rc;
    if (e.cid != s->cid || e.sqid != qid)
        return fail(h, -EPROTO,
                    "queue %u: completion for command %u of SQ %u, "
                    "expected %u",
                    qid, e.cid, e.sqid, s->cid);
    rc = nvme_host_doorbell(h, qid, true);
    if (rc < 0)
        return rc;
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

int
nvme_host_dbbuf(struct nvme_host *h, uint64_t db, uint64_t ei)
{
    struct nvme_sqe s = sqe(NVME_ADM_DBBUF_CONFIG);
    void *pdb = nvme_host_ptr(h, db, NVME_PAGE_SIZE);
    void *pei = nvme_host_ptr(h, ei, NVME_PAGE_SIZE);
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
    }
    return rc;
}

int
nvme_host_create_pair(struct nvme_host *h, uint16_t qid, uint16_t depth,
                      uint64_t sqa, uint64_t cqa)
{
    struct nvme_sqe s = sqe(NVME_ADM_CREATE_CQ);
    void *cq = nvme_host_ptr(h, cqa, (uint64_t)depth * NVME_CQE_SIZE);
    int rc;

    if (qid == 0 || qid >= NVME_MAX_QUEUES || depth < 2 || cq == NULL ||
        nvme_host_ptr(h, sqa, (uint64_t)depth * NVME_SQE_SIZE) == NULL)
        return fail(h, -EINVAL,
                    "I/O queue pair %u: bad id or outside "
                    "guest memory",
                    qid);
    memset(cq, 0, (size_t)depth * NVME_CQE_SIZE);
    s.prp1 = cqa;
    s.cdw10 = qid | (uint32_t)(depth - 1) << 16;
    s.cdw11 = 1; /* physically contiguous, no interrupts */
    rc = nvme_host_admin(h, &s, NULL, "Create I/O Completion Queue");
    if (rc < 0)
        return rc;
    s = sqe(NVME_ADM_CREATE_SQ);
    s.prp1 = sqa;
    s.cdw10 = qid | (uint32_t)(depth - 1) << 16;
    s.cdw11 = 1 | (uint32_t)qid << 16; /* contiguous, on CQ @qid */
    rc = nvme_host_admin(h, &s, NULL, "Create I/O Submission Queue");
    if (rc < 0)
        return rc;
    h->sq[qid] = (struct nvme_host_q){ .iova = sqa, .size = depth };
    h->cq[qid] =
        (struct nvme_host_q){ .iova = cqa, .size = depth, .phase = true };
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
