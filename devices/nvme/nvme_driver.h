/*
 * The driver's side of the nvme controller whose model is nvme.h: what a
 * polled guest driver does with its queues in guest memory and with the
 * BAR0 registers, as static inline code over the caller's register
 * accessors and the caller's view of guest memory. Programs that play the
 * guest use it: bench/nvme directly, umdev-nvme-drive and the parent's
 * exercise() hook through nvme_host.c (lib/client); like
 * devices/serial/uart_driver.h it needs nothing of the model's code nor
 * of libumdev, only nvme_spec.h's register and field names.
 *
 * Queues: the caller lays them out in guest memory and hands each
 * function the host view of a queue's entries. Submission entries are
 * written in place and published with nvme_driver_ring(); completions
 * are found by their phase tag (4.6: no interrupt needed). With Doorbell
 * Buffer Config in force an I/O queue's doorbell goes to its shadow slot
 * and the register is written only when the controller's EventIdx asks
 * for it, the rule of Linux's nvme_dbbuf_update_and_check_event().
 *
 * Functions that talk to the controller return 0 (or what their
 * comment says) or the first accessor error as is (a driver over
 * vfio-user passes the transport's -errno up), -ETIMEDOUT when the
 * controller did not answer in time, -EIO on a fatal status (CSTS.CFS).
 * Not thread-safe: one driver thread per queue pair.
 */
#ifndef UMDEV_NVME_DRIVER_H
#define UMDEV_NVME_DRIVER_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nvme_spec.h"

/* BAR0 register access as the driver sees it (@off: NVME_REG_*). */
struct nvme_driver {
    int (*read32)(void *opaque, uint32_t off, uint32_t *v);
    int (*write32)(void *opaque, uint32_t off, uint32_t v);
    /* Doorbell writes, which a VMM may post (QEMU does); NULL: write32. */
    int (*doorbell)(void *opaque, uint32_t off, uint32_t v);
    void *opaque;
    /* Called while a wait polls (a controller run on the driver's own
     * thread takes its turn here); NULL: sched_yield(). */
    void (*idle)(void *opaque);
    double timeout_s;   /* bound of every wait; 0: 10 s */
    uint64_t doorbells; /* doorbell registers written */
    /* The latest CSTS wait: what it wanted (CSTS & mask == want) and
     * what it read last, for the caller's message when it fails. */
    uint32_t csts_mask, csts_want, csts;
};

/* One queue as the driver keeps it. */
struct nvme_driver_q {
    uint8_t *ring; /* host view of the entries */
    uint16_t qid, size;
    bool is_cq;
    uint16_t idx; /* SQ: tail; CQ: head */
    uint16_t db;  /* the index the controller was last told */
    bool phase;   /* CQ: the phase tag of entries not yet consumed */
    /* Doorbell Buffer Config: host views of this queue's shadow doorbell
     * and EventIdx slots; NULL while the registers carry the values. */
    uint32_t *shadow, *eventidx;
};

/* A completion queue entry, decoded (4.6). */
struct nvme_driver_cqe {
    uint32_t dw0;
    uint16_t sqhd, sqid, cid;
    uint16_t status; /* without the phase tag: SC, SCT, CRD, M, DNR */
};

static inline void
nvme_driver_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void
nvme_driver_put64(uint8_t *p, uint64_t v)
{
    nvme_driver_put32(p, (uint32_t)v);
    nvme_driver_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t
nvme_driver_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline double
nvme_driver_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double
nvme_driver_timeout(const struct nvme_driver *d)
{
    return d->timeout_s > 0 ? d->timeout_s : 10.0;
}

/* Queue @qid's doorbell register (CAP.DSTRD 0). */
static inline uint32_t
nvme_driver_db_off(uint16_t qid, bool is_cq)
{
    return NVME_REG_DBS + (2u * qid + (is_cq ? 1u : 0u)) * 4u;
}

/*
 * The host's view of an empty queue of @size entries at @ring; a CQ's
 * memory is cleared so that no stale phase tag reads as new. Its shadow
 * slots, if any, are set by nvme_driver_dbbuf_attach().
 */
static inline void
nvme_driver_q_init(struct nvme_driver_q *q, uint8_t *ring, uint16_t qid,
                   uint16_t size, bool is_cq)
{
    *q = (struct nvme_driver_q){
        .ring = ring, .qid = qid, .size = size, .is_cq = is_cq, .phase = true
    };
    if (is_cq)
        memset(ring, 0, (size_t)size * NVME_CQE_SIZE);
}

/* With Doorbell Buffer Config given the buffers at host views @db and
 * @ei (each a page), I/O queue @q's doorbell goes to its slots. */
static inline void
nvme_driver_dbbuf_attach(struct nvme_driver_q *q, uint8_t *db, uint8_t *ei)
{
    uint32_t slot = (2u * q->qid + (q->is_cq ? 1u : 0u)) * 4u;

    q->shadow = (uint32_t *)(void *)(db + slot);
    q->eventidx = (uint32_t *)(void *)(ei + slot);
}

/* Does moving a doorbell from @old to @new_idx pass EventIdx @ei (the
 * Doorbell Buffer Config rule, as Linux's nvme_dbbuf_need_event())? */
static inline bool
nvme_driver_need_event(uint16_t ei, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - ei - 1) < (uint16_t)(new_idx - old);
}

/* The SQ's next free entry (64 bytes to fill), without taking it. */
static inline uint8_t *
nvme_driver_sq_slot(struct nvme_driver_q *sq)
{
    return sq->ring + (size_t)sq->idx * NVME_SQE_SIZE;
}

/* Take the entry nvme_driver_sq_slot() returned: the tail moves, the
 * controller hears of it at the next nvme_driver_ring(). The caller
 * keeps fewer entries outstanding than the queue has. */
static inline void
nvme_driver_sq_push(struct nvme_driver_q *sq)
{
    sq->idx = (uint16_t)((sq->idx + 1) % sq->size);
}

/*
 * Fill a submission entry (4.2): @opc with command identifier @cid on
 * namespace @nsid, PRP entries @prp1 and @prp2, and command dwords 10 to
 * 15 from @cdw (NULL: zero).
 */
static inline void
nvme_driver_sqe(uint8_t *s, uint8_t opc, uint16_t cid, uint32_t nsid,
                uint64_t prp1, uint64_t prp2, const uint32_t *cdw)
{
    unsigned int i;

    memset(s, 0, NVME_SQE_SIZE);
    nvme_driver_put32(s, opc | (uint32_t)cid << 16);
    nvme_driver_put32(s + 4, nsid);
    nvme_driver_put64(s + 24, prp1);
    nvme_driver_put64(s + 32, prp2);
    for (i = 0; cdw != NULL && i < 6; i++)
        nvme_driver_put32(s + 40 + 4 * i, cdw[i]);
}

/*
 * Consume the entry at the CQ's head if the controller has posted it.
 * Return: true with *@out filled; false when none is new.
 */
static inline bool
nvme_driver_cq_pop(struct nvme_driver_q *cq, struct nvme_driver_cqe *out)
{
    uint8_t *e = cq->ring + (size_t)cq->idx * NVME_CQE_SIZE;
    /* The controller writes the entry, then its phase: load DW3 once,
     * ordered before the reads of the rest. */
    uint32_t raw =
        __atomic_load_n((uint32_t *)(void *)(e + 12), __ATOMIC_ACQUIRE);
    uint32_t dw3 = nvme_driver_get32((const uint8_t *)&raw);

    if (((dw3 >> 16) & 1u) != (cq->phase ? 1u : 0u))
        return false;
    out->dw0 = nvme_driver_get32(e);
    out->sqhd = (uint16_t)nvme_driver_get32(e + 8);
    out->sqid = (uint16_t)(nvme_driver_get32(e + 8) >> 16);
    out->cid = (uint16_t)dw3;
    out->status = (uint16_t)(dw3 >> 17);
    if (++cq->idx == cq->size) {
        cq->idx = 0;
        cq->phase = !cq->phase;
    }
    return true;
}

/*
 * Tell the controller that @q's index moved, if it did since it was last
 * told: through the shadow doorbell when the queue has one, the
 * register only when the controller's EventIdx lies between the old
 * value and the new (the controller sleeps and wants to hear), else the
 * register.
 * Return: 1 a register was written, 0 none was needed, or an accessor
 * error (the value counts as told: the next ring tells what is newer).
 */
static inline int
nvme_driver_ring(struct nvme_driver *d, struct nvme_driver_q *q)
{
    uint32_t off = nvme_driver_db_off(q->qid, q->is_cq);
    uint16_t old = q->db;
    int rc;

    /* Nothing new: without a shadow slot the write would be a message
     * spent for nothing. */
    if (old == q->idx)
        return 0;
    q->db = q->idx;
    if (q->shadow != NULL) {
        uint16_t ei;

        /* Entries (or consumed completions) before the shadow value;
         * the shadow store before the EventIdx load (a full barrier:
         * the controller orders them the other way round). */
        __atomic_store_n(q->shadow, q->idx, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        ei = (uint16_t)__atomic_load_n(q->eventidx, __ATOMIC_RELAXED);
        if (!nvme_driver_need_event(ei, q->idx, old))
            return 0;
    } else {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    rc = (d->doorbell != NULL ? d->doorbell : d->write32)(d->opaque, off,
                                                          q->idx);
    if (rc < 0)
        return rc;
    d->doorbells++;
    return 1;
}

/* Wait until CSTS & @mask equals @want. */
static inline int
nvme_driver_wait_csts(struct nvme_driver *d, uint32_t mask, uint32_t want)
{
    double t0 = nvme_driver_now_s();
    int rc;

    d->csts_mask = mask;
    d->csts_want = want;
    for (;;) {
        rc = d->read32(d->opaque, NVME_REG_CSTS, &d->csts);
        if (rc < 0)
            return rc;
        if ((d->csts & mask) == want)
            return 0;
        if (d->csts & NVME_CSTS_CFS)
            return -EIO;
        if (nvme_driver_now_s() - t0 > nvme_driver_timeout(d))
            return -ETIMEDOUT;
        if (d->idle != NULL)
            d->idle(d->opaque);
        usleep(100);
    }
}

/* CC as this driver sets it: 64-byte SQ and 16-byte CQ entries, 4 KiB
 * pages (MPS 0), the NVM command set, round robin. */
#define NVME_DRIVER_CC (NVME_SQES_LOG2 << 16 | NVME_CQES_LOG2 << 20)
#define NVME_DRIVER_CC_SHN_MASK (3u << 14)
#define NVME_DRIVER_CC_SHN_NORMAL (1u << 14)

/* A controller whose CC read @cc disabled (3.7.2, as Linux's
 * nvme_disable_ctrl(): CC.EN and CC.SHN cleared if it is enabled), then
 * CSTS.RDY 0 awaited either way: a reset may still be under way. */
static inline int
nvme_driver_disable_cc(struct nvme_driver *d, uint32_t cc)
{
    int rc;

    if ((cc & NVME_CC_EN) &&
        (rc = d->write32(d->opaque, NVME_REG_CC,
                         cc & ~(NVME_CC_EN | NVME_DRIVER_CC_SHN_MASK))) < 0)
        return rc;
    return nvme_driver_wait_csts(d, NVME_CSTS_RDY, 0);
}

/* Disable (a controller reset): the controller forgets its queues. */
static inline int
nvme_driver_disable(struct nvme_driver *d)
{
    uint32_t cc;
    int rc = d->read32(d->opaque, NVME_REG_CC, &cc);

    return rc < 0 ? rc : nvme_driver_disable_cc(d, cc);
}

/*
 * Bring-up (3.5.1) with the admin queues @asq and @acq (their rings at
 * guest addresses @asq_iova and @acq_iova): a controller
 * someone left enabled is disabled first, as Linux's driver does before
 * it configures the admin queue; then both queues start empty (the CQ's
 * memory cleared only now, when the old controller can post no more),
 * AQA, ASQ, ACQ, CC.EN (NVME_DRIVER_CC), and CSTS.RDY is awaited.
 * 64-bit registers go as two dwords, low first, as drivers may write
 * them.
 */
static inline int
nvme_driver_enable(struct nvme_driver *d, struct nvme_driver_q *asq,
                   uint64_t asq_iova, struct nvme_driver_q *acq,
                   uint64_t acq_iova)
{
    uint32_t aqa = (uint32_t)(acq->size - 1) << 16 | (asq->size - 1u);
    uint32_t cc = NVME_CC_EN | NVME_DRIVER_CC;
    int rc = nvme_driver_disable(d);

    if (rc < 0)
        return rc;
    nvme_driver_q_init(asq, asq->ring, 0, asq->size, false);
    nvme_driver_q_init(acq, acq->ring, 0, acq->size, true);
    if ((rc = d->write32(d->opaque, NVME_REG_AQA, aqa)) < 0 ||
        (rc = d->write32(d->opaque, NVME_REG_ASQ, (uint32_t)asq_iova)) < 0 ||
        (rc = d->write32(d->opaque, NVME_REG_ASQ + 4,
                         (uint32_t)(asq_iova >> 32))) < 0 ||
        (rc = d->write32(d->opaque, NVME_REG_ACQ, (uint32_t)acq_iova)) < 0 ||
        (rc = d->write32(d->opaque, NVME_REG_ACQ + 4,
                         (uint32_t)(acq_iova >> 32))) < 0 ||
        (rc = d->write32(d->opaque, NVME_REG_CC, cc)) < 0)
        return rc;
    return nvme_driver_wait_csts(d, NVME_CSTS_RDY, NVME_CSTS_RDY);
}

/*
 * Submit the entry @sqe (its CID already in place) on @sq and wait for
 * its completion on @cq, polling the phase tag; the CQ head doorbell
 * follows. Entries put on @sq and not yet rung go with it. Return: 0
 * with *@out filled (its status may be an error), or -EPROTO with *@out
 * the completion of another command, which arrived first.
 */
static inline int
nvme_driver_cmd(struct nvme_driver *d, struct nvme_driver_q *sq,
                struct nvme_driver_q *cq, const uint8_t *sqe,
                struct nvme_driver_cqe *out)
{
    uint16_t cid = (uint16_t)(nvme_driver_get32(sqe) >> 16);
    double t0 = nvme_driver_now_s();
    int rc;

    memcpy(nvme_driver_sq_slot(sq), sqe, NVME_SQE_SIZE);
    nvme_driver_sq_push(sq);
    rc = nvme_driver_ring(d, sq);
    if (rc < 0)
        return rc;
    while (!nvme_driver_cq_pop(cq, out)) {
        if (nvme_driver_now_s() - t0 > nvme_driver_timeout(d))
            return -ETIMEDOUT;
        if (d->idle != NULL)
            d->idle(d->opaque);
        else
            sched_yield();
    }
    rc = nvme_driver_ring(d, cq);
    if (rc < 0)
        return rc;
    return out->cid == cid && out->sqid == sq->qid ? 0 : -EPROTO;
}

/*
 * Create I/O completion queue @cq (polled: no interrupts) and I/O
 * submission queue @sq on it, physically contiguous at @cq_iova and
 * @sq_iova, through the admin queues; @cid the first of the two command
 * identifiers used (the CQ's), the SQ's the next. The last completion is
 * left in *@out. Return: 0; 1 when a command failed (*@out its
 * completion, its status non-zero); or an error as nvme_driver_cmd()'s.
 */
static inline int
nvme_driver_create_pair(struct nvme_driver *d, struct nvme_driver_q *asq,
                        struct nvme_driver_q *acq,
                        const struct nvme_driver_q *sq, uint64_t sq_iova,
                        const struct nvme_driver_q *cq, uint64_t cq_iova,
                        uint16_t cid, struct nvme_driver_cqe *out)
{
    uint32_t cdw[6] = { cq->qid | (uint32_t)(cq->size - 1) << 16, 1 };
    uint8_t s[NVME_SQE_SIZE];
    int rc;

    nvme_driver_sqe(s, NVME_ADM_CREATE_CQ, cid, 0, cq_iova, 0, cdw);
    rc = nvme_driver_cmd(d, asq, acq, s, out);
    if (rc == 0 && out->status == 0) {
        cdw[0] = sq->qid | (uint32_t)(sq->size - 1) << 16;
        cdw[1] = 1 | (uint32_t)cq->qid << 16;
        nvme_driver_sqe(s, NVME_ADM_CREATE_SQ, (uint16_t)(cid + 1), 0, sq_iova,
                        0, cdw);
        rc = nvme_driver_cmd(d, asq, acq, s, out);
    }
    if (rc < 0)
        return rc;
    return out->status != 0;
}

/*
 * Normal shutdown (3.6.1) of an enabled controller: CC.SHN normal, then
 * CSTS.SHST complete; then it is disabled (nvme_driver_disable_cc()),
 * after which it reaches no guest memory. A controller never enabled has
 * nothing to shut down (and CC.SHN written with CC.EN would enable it):
 * only CSTS.RDY 0 is awaited.
 */
static inline int
nvme_driver_shutdown(struct nvme_driver *d)
{
    uint32_t cc;
    int rc = d->read32(d->opaque, NVME_REG_CC, &cc);

    if (rc < 0)
        return rc;
    if (cc & NVME_CC_EN) {
        rc = d->write32(d->opaque, NVME_REG_CC,
                        (cc & ~NVME_DRIVER_CC_SHN_MASK) |
                            NVME_DRIVER_CC_SHN_NORMAL);
        if (rc == 0)
            rc = nvme_driver_wait_csts(d, NVME_CSTS_SHST_MASK,
                                       NVME_SHST_COMPLETE
                                           << NVME_CSTS_SHST_SHIFT);
        if (rc < 0)
            return rc;
    }
    return nvme_driver_disable_cc(d, cc);
}

#endif /* UMDEV_NVME_DRIVER_H */
