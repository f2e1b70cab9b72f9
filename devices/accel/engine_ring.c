/*
 * The accel engine's ring protocol (umdev/accel_ring.h, README "Rings"):
 * serving a queue's ring for one visit, publishing DOORBELL_NEEDED when
 * it goes to sleep, halting on a ring fault, and enabling and disabling
 * a queue (which write HEAD and the flags, or abort what is pending).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "engine_priv.h"

/* ------------------------------------------------------------------ */
/* Rings                                                               */

/* The ring held whole for a visit when it lies in one mapping; else each
 * access maps its own line. */
struct ring {
    struct accel_queue *q;
    bool whole;
    /* Whole, and reached inside engine_serve()'s own fault guard: its
     * words need no guard each (a bus error halts the queue there). */
    bool covered;
    struct accel_map m;
};

static void
ring_open(struct accel_queue *q, struct ring *r)
{
    uint64_t len = accel_ring_bytes(q->cfg.size);

    r->q = q;
    r->covered = false;
    r->whole =
        engine_map_small(q, q->cfg.ring, len, ACCEL_MAP_READ | ACCEL_MAP_WRITE,
                         &r->m) != NULL;
}

static void
ring_close(struct ring *r)
{
    if (r->whole)
        engine_seg_put(r->q, &r->m);
    r->whole = false;
}

static void *
ring_at(struct ring *r, uint64_t off, uint64_t len, int prot,
        struct accel_map *tmp, bool *held)
{
    *held = false;
    if (r->whole)
        return (uint8_t *)r->m.ptr + off;
    *held = true;
    return engine_map_small(r->q, r->q->cfg.ring + off, len, prot, tmp);
}

/* A ring word, accessed under a fault guard (a ring page gone from its
 * file halts the queue as any unreachable ring does). */
struct word_arg {
    uint32_t *p;
    uint32_t v;
};

static void
load_fn(void *arg)
{
    struct word_arg *w = arg;

    w->v = __atomic_load_n(w->p, __ATOMIC_ACQUIRE);
}

static void
store_fn(void *arg)
{
    struct word_arg *w = arg;

    __atomic_store_n(w->p, w->v, __ATOMIC_RELEASE);
}

static int
ring_load(struct ring *r, uint64_t off, uint32_t *v)
{
    struct accel_map m;
    bool held;
    struct word_arg w = { ring_at(r, off, 4, ACCEL_MAP_READ, &m, &held), 0 };
    int rc = 0;

    if (w.p == NULL)
        return -EFAULT;
    if (r->covered)
        load_fn(&w);
    else
        rc = umdev_fault_guard_run(load_fn, &w, NULL);
    if (held)
        engine_seg_put(r->q, &m);
    *v = w.v;
    return rc;
}

static int
ring_store(struct ring *r, uint64_t off, uint32_t v)
{
    struct accel_map m;
    bool held;
    struct word_arg w = { ring_at(r, off, 4, ACCEL_MAP_WRITE, &m, &held), v };
    int rc = 0;

    if (w.p == NULL)
        return -EFAULT;
    if (r->covered)
        store_fn(&w);
    else
        rc = umdev_fault_guard_run(store_fn, &w, NULL);
    if (held)
        engine_seg_put(r->q, &m);
    return rc;
}

static int
ring_desc(struct ring *r, uint32_t idx, struct accel_desc *d)
{
    uint64_t off =
        ACCEL_RING_DESCS + (uint64_t)(idx & (r->q->cfg.size - 1)) * 64u;
    struct accel_map m;
    bool held;
    const void *p = ring_at(r, off, sizeof(*d), ACCEL_MAP_READ, &m, &held);

    int rc = 0;

    if (p == NULL)
        return -EFAULT;
    /* Validated from this copy only. */
    if (r->covered)
        memcpy(d, p, sizeof(*d));
    else
        rc = engine_copy(d, p, sizeof(*d));
    if (held)
        engine_seg_put(r->q, &m);
    return rc;
}

/* The queue stops for good (until disabled): its ring cannot be used. */
static void
queue_fault(struct accel_queue *q, uint8_t code, uint64_t addr)
{
    struct accel_engine *e = q->e;
    uint32_t head = atomic_load(&q->head);
    int expect = ACCEL_QS_ENABLED;

    /* Completions before the fault still get their interrupt. */
    engine_intr_flush(q);
    pthread_mutex_lock(&e->lock);
    if (!atomic_compare_exchange_strong(&q->state, &expect, ACCEL_QS_ERROR)) {
        pthread_mutex_unlock(&e->lock); /* disabled meanwhile */
        return;
    }
    q->error = code == ACCEL_ERR_BAD_INDEX ? ACCEL_QERR_BAD_INDEX
                                           : ACCEL_QERR_RING_FAULT;
    q->error_addr = addr;
    q->active = false;
    pthread_mutex_unlock(&e->lock);
    umdev_log(e->log, LOG_NOTICE,
              "accel: queue %u halted: %s at %#llx (head %u)", q->index,
              code == ACCEL_ERR_BAD_INDEX ? "tail index out of range"
                                          : "ring not accessible",
              (unsigned long long)addr, head);
    engine_report(q, code, 0, head, addr);
}

/* What serve_ring() works with and leaves. */
struct serve_arg {
    struct worker *w;
    struct accel_queue *q;
    struct ring *r;
    bool *empty;
    unsigned int done;
};

/* The ring part of a visit; under engine_serve()'s fault guard. */
static void
serve_ring(void *arg)
{
    struct serve_arg *a = arg;
    struct accel_queue *q = a->q;
    struct accel_engine *e = q->e;
    struct ring *r = a->r;
    uint32_t head = atomic_load(&q->head), tail;
    uint64_t fault;
    int rc;

    if (q->published) {
        /* Awake again: tell the driver to stop ringing. */
        if (ring_store(r, ACCEL_RING_DOORBELL_NEEDED, 0) < 0) {
            queue_fault(q, ACCEL_ERR_RING_FAULT,
                        q->cfg.ring + ACCEL_RING_DOORBELL_NEEDED);
            return;
        }
        q->published = false;
    }
    fault = q->cfg.ring + ACCEL_RING_TAIL;
    rc = ring_load(r, ACCEL_RING_TAIL, &tail);
    while (rc == 0) {
        struct accel_desc d;
        struct result res;

        if (tail - head > q->cfg.size) {
            queue_fault(q, ACCEL_ERR_BAD_INDEX, tail);
            return;
        }
        if (tail == head) {
            *a->empty = true;
            break;
        }
        if (q->deficit <= 0 || atomic_load(&q->state) != ACCEL_QS_ENABLED ||
            atomic_load_explicit(&q->paused, memory_order_relaxed) ||
            __atomic_load_n(&e->stop, __ATOMIC_RELAXED))
            break;
        fault = q->cfg.ring + ACCEL_RING_DESCS +
                (uint64_t)(head & (q->cfg.size - 1)) * ACCEL_DESC_SIZE;
        rc = ring_desc(r, head, &d);
        if (rc < 0)
            break;
        engine_run_desc(a->w, q, &d, head, false, &res);
        if (res.suspended)
            break; /* paused inside a BATCH: it stays at HEAD */
        /* A paused batch's progress was for the descriptor at HEAD only
         * (the guest may have rewritten that slot meanwhile). */
        if (q->batch_next != 0)
            engine_batch_clear(q);
        engine_complete(q, &d, head, &res);
        head++;
        /* Published for accel_queue_status(); a plain store on x86 (a
         * seq_cst one would be a locked exchange per descriptor). */
        atomic_store_explicit(&q->head, head, memory_order_release);
        fault = q->cfg.ring + ACCEL_RING_HEAD;
        rc = ring_store(r, ACCEL_RING_HEAD, head);
        if (rc < 0)
            break;
        q->deficit -= (int64_t)res.cost;
        a->done++;
        /* Take what the driver added meanwhile without a new visit. */
        if (head == tail) {
            fault = q->cfg.ring + ACCEL_RING_TAIL;
            rc = ring_load(r, ACCEL_RING_TAIL, &tail);
        }
    }
    if (rc < 0)
        queue_fault(q, ACCEL_ERR_RING_FAULT, fault);
    else if (*a->empty)
        engine_intr_flush(q);
    else if (q->intr_pending && q->cfg.coal_usec != 0 &&
             engine_now_ns() - q->intr_first_ns >= q->cfg.coal_usec * 1000ull)
        engine_intr_flush(q);
}

/*
 * One visit: run descriptors while the queue has work and deficit.
 * *@empty: the ring was seen empty at the end. Return: descriptors done.
 *
 * A ring held whole is reached without a fault guard per word (two per
 * descriptor otherwise): the visit runs under one, and a bus error on
 * the ring (its file shrank) lands here and halts the queue. Every other
 * guest access of the visit has a guard of its own, so nothing else
 * lands here, and the only holds then taken are the visit's, given back
 * below.
 */
unsigned int
engine_serve(struct worker *w, struct accel_queue *q, bool *empty)
{
    struct ring r;
    struct serve_arg a = { w, q, &r, empty, 0 };
    void *host = NULL;

    *empty = false;
    engine_visit_begin(q);
    ring_open(q, &r);
    r.covered = r.whole;
    if (umdev_fault_guard_run(serve_ring, &a, &host) < 0) {
        const uint8_t *h = host, *p = r.m.ptr;
        uint64_t at = q->cfg.ring;

        if (h >= p && h < p + r.m.len)
            at += (uint64_t)(h - p);
        *empty = false;
        queue_fault(q, ACCEL_ERR_RING_FAULT, at);
    }
    ring_close(&r);
    engine_visit_end(q);
    return a.done;
}

/*
 * Publish WAKE_INDEX and DOORBELL_NEEDED, then look at TAIL once more: a
 * driver that moved TAIL before seeing the flag is caught here, one that
 * moves it after sees the flag with this WAKE_INDEX (or a later one) and
 * rings (both sides order their store before their loads with a full
 * fence). Return: true if the queue may sleep.
 */
bool
engine_try_sleep(struct accel_queue *q)
{
    uint32_t tail;
    struct ring r;
    bool ok = false;

    ring_open(q, &r);
    if (ring_store(&r, ACCEL_RING_WAKE_INDEX, atomic_load(&q->head)) < 0 ||
        ring_store(&r, ACCEL_RING_DOORBELL_NEEDED, 1) < 0) {
        queue_fault(q, ACCEL_ERR_RING_FAULT,
                    q->cfg.ring + ACCEL_RING_WAKE_INDEX);
        goto out;
    }
    q->published = true;
    atomic_thread_fence(memory_order_seq_cst);
    if (ring_load(&r, ACCEL_RING_TAIL, &tail) < 0) {
        queue_fault(q, ACCEL_ERR_RING_FAULT, q->cfg.ring + ACCEL_RING_TAIL);
        goto out;
    }
    ok = tail == atomic_load(&q->head);
out:
    ring_close(&r);
    return ok;
}

uint8_t
engine_check_config(const struct accel_queue_config *c)
{
    if (c->size == 0 || c->size > ACCEL_RING_MAX ||
        (c->size & (c->size - 1)) != 0)
        return ACCEL_QERR_RING_SIZE;
    if (c->ring % ACCEL_RING_ALIGN != 0)
        return ACCEL_QERR_RING_ALIGN;
    if (c->priority < ACCEL_PRIO_MIN || c->priority > ACCEL_PRIO_MAX)
        return ACCEL_QERR_PRIORITY;
    if (c->coal_count > ACCEL_COAL_COUNT_MAX ||
        c->coal_usec > ACCEL_COAL_USEC_MAX)
        return ACCEL_QERR_COALESCE;
    if (c->ring + accel_ring_bytes(c->size) < c->ring)
        return ACCEL_QERR_RING_FAULT;
    return ACCEL_QERR_NONE;
}

static void
set_error(struct accel_queue *q, uint8_t code, uint64_t addr)
{
    pthread_mutex_lock(&q->e->lock);
    q->error = code;
    q->error_addr = addr;
    pthread_mutex_unlock(&q->e->lock);
}

/* The whole ring must be mapped read-write now; *@bad: first address not. */
static bool
ring_mapped(struct accel_queue *q, uint64_t *bad)
{
    uint64_t addr = q->cfg.ring, len = accel_ring_bytes(q->cfg.size);

    while (len > 0) {
        struct accel_map m;

        if (engine_seg_get(q, addr, len, ACCEL_MAP_READ | ACCEL_MAP_WRITE, &m) <
            0) {
            *bad = addr;
            return false;
        }
        if (m.len == 0 || m.len > len) {
            engine_seg_put(q, &m);
            *bad = addr;
            return false;
        }
        engine_seg_put(q, &m);
        addr += m.len;
        len -= m.len;
    }
    return true;
}

int
accel_queue_enable(struct accel_queue *q, const struct accel_queue_config *cfg)
{
    struct accel_engine *e = q->e;
    uint8_t why;
    uint64_t bad = 0;
    struct ring r;

    pthread_mutex_lock(&e->lock);
    if (atomic_load(&q->state) != ACCEL_QS_DISABLED || q->busy) {
        pthread_mutex_unlock(&e->lock);
        return -EBUSY;
    }
    pthread_mutex_unlock(&e->lock);
    why = engine_check_config(cfg);
    if (why != ACCEL_QERR_NONE) {
        set_error(q, why, why == ACCEL_QERR_RING_FAULT ? cfg->ring : 0);
        return -EINVAL;
    }
    q->cfg = *cfg;
    atomic_store(&q->head, 0);
    engine_batch_clear(q);
    q->deficit = 0;
    q->intr_pending = 0;
    q->idle_since_ns = 0;
    if (!ring_mapped(q, &bad)) {
        set_error(q, ACCEL_QERR_RING_FAULT, bad);
        return -EFAULT;
    }
    ring_open(q, &r);
    if (ring_store(&r, ACCEL_RING_HEAD, 0) < 0 ||
        ring_store(&r, ACCEL_RING_WAKE_INDEX, 0) < 0 ||
        ring_store(&r, ACCEL_RING_DOORBELL_NEEDED, 1) < 0) {
        ring_close(&r);
        set_error(q, ACCEL_QERR_RING_FAULT, cfg->ring);
        return -EFAULT;
    }
    ring_close(&r);
    q->published = true;
    pthread_mutex_lock(&e->lock);
    q->error = ACCEL_QERR_NONE;
    q->error_addr = 0;
    q->active = false; /* asleep until the first doorbell */
    atomic_store(&q->state, ACCEL_QS_ENABLED);
    pthread_mutex_unlock(&e->lock);
    return 0;
}

/* Descriptors between HEAD and TAIL complete as ABORTED; HEAD = TAIL. */
static void
abort_pending(struct accel_queue *q)
{
    uint32_t head = atomic_load(&q->head), tail;
    struct ring r;

    ring_open(q, &r);
    if (ring_load(&r, ACCEL_RING_TAIL, &tail) < 0 || tail - head > q->cfg.size)
        goto out; /* nothing sane to abort */
    while (head != tail) {
        struct result res = { .status = ACCEL_ST_ABORTED };
        struct accel_desc d;

        if (ring_desc(&r, head, &d) < 0)
            break;
        /* A BATCH paused between elements: its rest is aborted too, and
         * its record counts what succeeded, as when a disable stops it. */
        res.bytes = 0;
        if (q->batch_next != 0 && d.opcode == ACCEL_OP_BATCH) {
            engine_abort_batch_rest(
                q, d.src, q->batch_next,
                d.size < ACCEL_BATCH_MAX ? d.size : ACCEL_BATCH_MAX, head);
            res.bytes = q->batch_ok;
        }
        engine_batch_clear(q);
        engine_complete(q, &d, head, &res);
        head++;
    }
    atomic_store(&q->head, head);
    ring_store(&r, ACCEL_RING_HEAD, head);
out:
    engine_intr_flush(q);
    ring_close(&r);
}

void
accel_queue_disable(struct accel_queue *q, bool abort_pending_work)
{
    struct accel_engine *e = q->e;
    int prev;

    pthread_mutex_lock(&e->lock);
    prev = atomic_exchange(&q->state, ACCEL_QS_DISABLED);
    q->active = false;
    q->kick = false;
    while (q->busy) {
        e->idle_waiters++;
        pthread_cond_wait(&e->idle, &e->lock);
        e->idle_waiters--;
    }
    if (prev == ACCEL_QS_ENABLED)
        q->error = ACCEL_QERR_NONE;
    pthread_mutex_unlock(&e->lock);
    if (prev == ACCEL_QS_ENABLED && abort_pending_work)
        abort_pending(q);
    q->intr_pending = 0;
    q->published = false;
    engine_batch_clear(q);
}

void
accel_queue_reset(struct accel_queue *q)
{
    accel_queue_disable(q, false);
    /* What a disable keeps for the driver to read (the reason a queue
     * halted or an enable failed) a reset does not. */
    pthread_mutex_lock(&q->e->lock);
    q->error = ACCEL_QERR_NONE;
    q->error_addr = 0;
    pthread_mutex_unlock(&q->e->lock);
}
