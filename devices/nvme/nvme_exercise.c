/*
 * The nvme parent's exercise() hook (include/umdev/parent.h): the
 * conformance kit's load for nvme types, driven through the client the
 * kit hands over as Linux's nvme driver drives a controller, with every
 * byte it reads back checked (README.md "Conformance").
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "nvme_host.h"

/* Guest memory, in pages from the start of what the kit maps: admin
 * queues, Identify, the doorbell buffer's two pages, then an SQ and a CQ
 * page per I/O queue, then per command slot a PRP list page and its
 * data. */
#define EX_ASQ 0u
#define EX_ACQ 1u
#define EX_IDENT 2u
#define EX_DBBUF 3u
#define EX_EVIDX 4u
#define EX_QUEUES 5u
#define EX_ADMIN_DEPTH 16u
#define EX_QDEPTH 16u
/* Command slots per I/O queue (each writes through its queue and reads
 * through the next), and their size: four pages, so that each needs a
 * PRP list. */
#define EX_INFLIGHT 4u
#define EX_XFER (4u * NVME_PAGE_SIZE)
#define EX_SLOT_PAGES (1u + EX_XFER / NVME_PAGE_SIZE)
#define EX_TIMEOUT_S 30.0
/* Up to one doorbell per this many commands may be asked for while the
 * driver keeps the queues busy (a poller that decided to sleep just as
 * a command came); more means EventIdx does not suppress doorbells
 * (the accel generator's rule, tests/conformance/README.md). */
#define EX_WAKE_RATIO 20u
/* What a read buffer holds before the read: no pattern makes it. */
#define EX_POISON 0xa5

/* A command slot: its buffers, and where it is in its cycle (a write of
 * a fresh pattern, then a read of the same blocks into the poisoned
 * buffer through the next queue, then the comparison). */
enum slot_state { SLOT_FREE, SLOT_WRITING, SLOT_READING };

struct slot {
    uint64_t list, data; /* guest addresses */
    uint64_t slba, seed, cycles;
    uint16_t cid, qid;
    enum slot_state state;
};

struct ex {
    struct nvme_host h;
    uint16_t nq, oacs;
    uint32_t bs;
    uint64_t nblocks;
    unsigned int nslots;
    struct slot slots[NVME_MAX_IO_QUEUES * EX_INFLIGHT];
    /* Units (commands) promised to slots and flushes, and verified. */
    uint64_t issued, units, reads;
    bool flushing;
    uint16_t flush_cid;
};

static uint64_t
page(const struct ex *x, unsigned int n)
{
    return x->h.iova + (uint64_t)n * NVME_PAGE_SIZE;
}

/* Submit @opc for slot @sl on I/O queue @qid. */
static int
slot_queue(struct ex *x, struct slot *sl, uint8_t opc, uint16_t qid)
{
    struct nvme_sqe s;
    int rc = nvme_host_rw(&x->h, opc, sl->slba, EX_XFER / x->bs, sl->data,
                          EX_XFER, sl->list, &s);

    if (rc == 0)
        rc = nvme_host_sq_put(&x->h, qid, &s);
    if (rc < 0)
        return rc;
    sl->cid = s.cid;
    sl->qid = qid;
    /* Published at once, as blk-mq's last request of a dispatch is:
     * the controller gets the command while the driver checks the
     * next completion's data. */
    return nvme_host_doorbell(&x->h, qid, false);
}

/* Start slot @i's next cycle: a fresh pattern written at its next
 * blocks. Slot i keeps to blocks congruent to i modulo the slots, so
 * no two slots ever share blocks. */
static int
slot_write(struct ex *x, unsigned int i)
{
    struct slot *sl = &x->slots[i];
    uint64_t per = EX_XFER / x->bs;
    uint64_t places = x->nblocks / per / x->nslots * x->nslots;

    sl->slba = ((sl->cycles * x->nslots + i) % places) * per;
    /* Data an earlier cycle or another slot left differs. */
    sl->seed = sl->cycles << 8 | i;
    sl->cycles++;
    nvme_host_pattern(nvme_host_ptr(&x->h, sl->data, EX_XFER), EX_XFER,
                      sl->seed, false);
    sl->state = SLOT_WRITING;
    x->issued += 2; /* the write and its read */
    return slot_queue(x, sl, NVME_CMD_WRITE, (uint16_t)(1 + i % x->nq));
}

static int
flush(struct ex *x)
{
    struct nvme_sqe s;
    int rc;

    memset(&s, 0, sizeof(s));
    s.opcode = NVME_CMD_FLUSH;
    s.nsid = NVME_NSID;
    rc = nvme_host_sq_put(&x->h, 1, &s);
    if (rc == 0)
        rc = nvme_host_doorbell(&x->h, 1, false);
    if (rc < 0)
        return rc;
    x->flush_cid = s.cid;
    x->flushing = true;
    x->issued++;
    return 0;
}

#define EX_FLUSH_EVERY 64u /* verified reads between Flush commands */

/* A completion @e from CQ @qid: advance what it finishes. */
static int
complete(struct ex *x, uint16_t qid, const struct nvme_driver_cqe *e)
{
    struct slot *sl = NULL;
    unsigned int i;
    size_t off;

    for (i = 0; i < x->nslots; i++)
        if (x->slots[i].state != SLOT_FREE && x->slots[i].cid == e->cid &&
            x->slots[i].qid == e->sqid)
            sl = &x->slots[i];
    if (sl == NULL &&
        !(x->flushing && e->cid == x->flush_cid && e->sqid == 1)) {
        snprintf(x->h.err, sizeof(x->h.err),
                 "CQ %u: a completion for command %u of SQ %u, which is "
                 "not outstanding",
                 qid, e->cid, e->sqid);
        return -EPROTO;
    }
    if (e->status != 0) {
        snprintf(x->h.err, sizeof(x->h.err),
                 "%s at LBA %" PRIu64 " on SQ %u: status %#x",
                 sl == NULL                  ? "flush"
                 : sl->state == SLOT_WRITING ? "write"
                                             : "read",
                 sl ? sl->slba : 0, e->sqid, e->status);
        return -EIO;
    }
    if (sl == NULL) {
        x->flushing = false;
        x->units++;
        return 0;
    }
    if (sl->state == SLOT_WRITING) {
        /* Read back through the next queue: what one queue wrote,
         * another must see. */
        memset(nvme_host_ptr(&x->h, sl->data, EX_XFER), EX_POISON, EX_XFER);
        sl->state = SLOT_READING;
        return slot_queue(x, sl, NVME_CMD_READ,
                          (uint16_t)(1 + sl->qid % x->nq));
    }
    off = nvme_host_pattern(nvme_host_ptr(&x->h, sl->data, EX_XFER), EX_XFER,
                            sl->seed, true);
    if (off != EX_XFER) {
        snprintf(x->h.err, sizeof(x->h.err),
                 "data read at LBA %" PRIu64 " differs from what was "
                 "written, from byte %zu",
                 sl->slba, off);
        return -EIO;
    }
    sl->state = SLOT_FREE;
    x->units += 2;
    x->reads++;
    return 0;
}

/*
 * Move @target commands, every slot cycling write, read, compare, so
 * that the queues never run dry while the driver keeps up; a Flush
 * every EX_FLUSH_EVERY verified reads, and one to make up an odd count.
 * Each pass submits what it can, then reaps every CQ and publishes its
 * head, as the Linux driver's polled queues do.
 */
static int
run(struct ex *x, uint64_t target)
{
    double t0 = nvme_driver_now_s();
    struct nvme_driver_cqe e;
    uint64_t last_flush = 0;
    unsigned int i;
    uint16_t q;
    int rc;

    for (;;) {
        bool any = false, busy = x->flushing;

        for (i = 0; i < x->nslots; i++) {
            if (x->slots[i].state == SLOT_FREE && x->issued + 2 <= target) {
                rc = slot_write(x, i);
                if (rc < 0)
                    return rc;
            }
            busy |= x->slots[i].state != SLOT_FREE;
        }
        if (!x->flushing && (x->issued + 1 == target ||
                             (x->reads - last_flush >= EX_FLUSH_EVERY &&
                              x->issued + 1 < target))) {
            last_flush = x->reads;
            rc = flush(x);
            if (rc < 0)
                return rc;
            busy = true;
        }
        if (!busy)
            return 0;
        for (q = 1; q <= x->nq; q++) {
            while ((rc = nvme_host_reap(&x->h, q, &e)) == 1) {
                any = true;
                rc = complete(x, q, &e);
                if (rc < 0)
                    return rc;
            }
            if (rc == 0)
                rc = nvme_host_doorbell(&x->h, q, true);
            if (rc < 0)
                return rc;
        }
        if (any) {
            t0 = nvme_driver_now_s();
            continue;
        }
        if (nvme_driver_now_s() - t0 > x->h.drv.timeout_s) {
            snprintf(x->h.err, sizeof(x->h.err),
                     "no completion within %.0f s (%" PRIu64 " of %" PRIu64
                     " commands done)",
                     x->h.drv.timeout_s, x->units, target);
            return -ETIMEDOUT;
        }
        sched_yield();
    }
}

/* Bring-up as Linux's nvme driver does it (nvme_reset_work()): admin
 * queues and CC.EN, Identify, Number of Queues, Doorbell Buffer Config,
 * then the I/O queue pairs. Return: 0 with @nblocks, or -errno. */
static int
bring_up(struct ex *x)
{
    uint64_t pages = x->h.size / NVME_PAGE_SIZE, slots;
    uint16_t q;
    int rc;

    rc = nvme_host_bus_master(&x->h);
    if (rc == 0)
        rc = nvme_host_enable(&x->h, EX_ADMIN_DEPTH, page(x, EX_ASQ),
                              page(x, EX_ACQ));
    if (rc == 0)
        rc = nvme_host_identify_ctrl(&x->h, page(x, EX_IDENT), &x->oacs);
    if (rc == 0)
        rc = nvme_host_identify_ns(&x->h, page(x, EX_IDENT), &x->nblocks,
                                   &x->bs);
    if (rc == 0)
        rc = nvme_host_set_queues(&x->h, NVME_MAX_IO_QUEUES, &x->nq);
    if (rc < 0)
        return rc;
    if (pages < EX_QUEUES + 2u * x->nq + EX_SLOT_PAGES)
        return snprintf(x->h.err, sizeof(x->h.err),
                        "%" PRIu64 " bytes of guest memory cannot hold %u "
                        "queue pairs and a command's data",
                        x->h.size, x->nq),
               -ENOSPC;
    slots = (pages - EX_QUEUES - 2u * x->nq) / EX_SLOT_PAGES;
    if (slots > (uint64_t)x->nq * EX_INFLIGHT)
        slots = (uint64_t)x->nq * EX_INFLIGHT;
    /* Blocks of its own for every slot. */
    if (slots > x->nblocks / (EX_XFER / x->bs))
        slots = x->nblocks / (EX_XFER / x->bs);
    if (slots == 0)
        return snprintf(x->h.err, sizeof(x->h.err),
                        "the namespace (%" PRIu64 " blocks) is smaller than "
                        "one command's %u bytes",
                        x->nblocks, EX_XFER),
               -ENOSPC;
    x->nslots = (unsigned int)slots;
    for (unsigned int i = 0; i < x->nslots; i++) {
        unsigned int p = EX_QUEUES + 2u * x->nq + i * EX_SLOT_PAGES;

        x->slots[i].list = page(x, p);
        x->slots[i].data = page(x, p + 1);
    }
    /* As Linux's nvme_dbbuf_set(): only if the controller offers it;
     * without it every I/O doorbell is a message, and the kit counts
     * it. */
    if (x->oacs & NVME_OACS_DBBUF)
        rc = nvme_host_dbbuf(&x->h, page(x, EX_DBBUF), page(x, EX_EVIDX));
    for (q = 1; rc == 0 && q <= x->nq; q++)
        rc = nvme_host_create_pair(&x->h, q, EX_QDEPTH,
                                   page(x, EX_QUEUES + 2u * (q - 1u)),
                                   page(x, EX_QUEUES + 2u * (q - 1u) + 1));
    return rc;
}

int
nvme_exercise(const struct umdev_exercise_args *args,
              struct umdev_exercise_result *out)
{
    struct ex x;
    uint64_t m0, m1, m2, m3, loaded, allowed;
    int rc, rc2;

    memset(out, 0, sizeof(*out));
    memset(&x, 0, sizeof(x));
    nvme_host_init(&x.h, args->client, args->guest, args->guest_iova,
                   args->guest_size, EX_TIMEOUT_S);
    /* The controller polls this long after its last work before it
     * sleeps (README.md "Doorbells and the poller"), less a margin for the
     * clock reads around it. */
    x.h.poll_window_s = NVME_DEFAULT_POLL_US * 0.9e-6;
    m0 = nvme_host_msgs(&x.h);
    if (args->guest == NULL || (args->guest_iova & (NVME_PAGE_SIZE - 1)) != 0) {
        snprintf(out->note, sizeof(out->note),
                 "no page-aligned guest memory (%#" PRIx64 ")",
                 args->guest_iova);
        return -EINVAL;
    }
    rc = bring_up(&x);
    m1 = nvme_host_msgs(&x.h);
    if (rc == 0)
        rc = run(&x, args->units);
    m2 = nvme_host_msgs(&x.h);
    /* Whatever happened, the controller stops reaching guest memory
     * before the kit unmaps it. */
    rc2 = nvme_host_shutdown(&x.h);
    m3 = nvme_host_msgs(&x.h);
    if (rc == 0)
        rc = rc2;
    out->units = x.units;
    loaded = x.h.wakeups_loaded;
    allowed = x.units / EX_WAKE_RATIO;
    /* Bring-up and shutdown move no data, nor do doorbells that wake a
     * sleeping controller; doorbells asked for under load beyond the
     * tolerance count as what the data cost. */
    out->waiting_msgs = (m1 - m0) + (m3 - m2) + x.h.wakeups_stalled +
                        (loaded < allowed ? loaded : allowed);
    if (rc < 0)
        snprintf(out->note, sizeof(out->note), "%s", x.h.err);
    else
        snprintf(out->note, sizeof(out->note),
                 "%u I/O queues, %u commands of %u KiB in flight (PRP "
                 "lists); waiting: %" PRIu64 " msgs bring-up/shutdown, "
                 "doorbells %" PRIu64 " loaded (<= %" PRIu64 "), %" PRIu64
                 " idle",
                 x.nq, x.nslots, EX_XFER >> 10, (m1 - m0) + (m3 - m2), loaded,
                 allowed, x.h.wakeups_stalled);
    return rc;
}
