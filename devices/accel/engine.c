/*
 * The accel engine: queue scheduling (deficit round robin weighted by
 * priority) on the engine's threads or accel_engine_poll()'s caller,
 * claiming queues, doorbells and status, and the engine's life. The ring
 * protocol, the operations and CRC32C are its other files (engine_priv.h
 * says which, and how memory and locking work across them).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine_priv.h"

static void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ------------------------------------------------------------------ */
/* Scheduling                                                          */

/* Next runnable queue after the cursor; marks it busy. Lock held. */
static struct accel_queue *
pick_locked(struct accel_engine *e)
{
    unsigned int k;

    for (k = 0; k < e->nq; k++) {
        unsigned int i = (e->rr + k) % e->nq;
        struct accel_queue *q = &e->q[i];

        if (!q->active || q->busy || atomic_load(&q->paused))
            continue;
        e->rr = (i + 1) % e->nq;
        q->busy = true;
        q->kick = false;
        q->deficit += (int64_t)q->cfg.priority * ACCEL_QUANTUM;
        return q;
    }
    return NULL;
}

static unsigned int
runnable_locked(const struct accel_engine *e)
{
    unsigned int i, n = 0;

    for (i = 0; i < e->nq; i++)
        n += e->q[i].active && !e->q[i].busy;
    return n;
}

/* Serve @q once (no lock held). Return: descriptors done; *@sleep: the
 * queue published DOORBELL_NEEDED and found nothing. */
static unsigned int
visit(struct worker *w, struct accel_queue *q, bool *sleep)
{
    struct accel_engine *e = q->e;
    unsigned int n;
    bool empty;

    *sleep = false;
    n = engine_serve(w, q, &empty);
    if (atomic_load(&q->state) != ACCEL_QS_ENABLED)
        return n;
    if (!empty) {
        q->idle_since_ns = 0;
        return n;
    }
    /* Drained: no hoarding of unused deficit (DRR). */
    q->deficit = 0;
    if (n > 0)
        q->idle_since_ns = 0;
    if (!e->no_poll) {
        uint64_t now = engine_now_ns();

        if (q->idle_since_ns == 0)
            q->idle_since_ns = now;
        if (now - q->idle_since_ns < e->poll_ns)
            return n;
    }
    *sleep = engine_try_sleep(q);
    return n;
}

/* After a visit; lock held. */
static void
release_locked(struct accel_engine *e, struct accel_queue *q, bool sleep)
{
    q->busy = false;
    if (atomic_load(&q->state) != ACCEL_QS_ENABLED)
        q->active = false;
    else if (atomic_load(&q->paused))
        q->active = false; /* resume makes it active again */
    else if (sleep && !q->kick)
        q->active = false;
    if (q->active && e->sleepers > 0 && runnable_locked(e) > 1)
        pthread_cond_signal(&e->work);
    if (e->idle_waiters > 0)
        pthread_cond_broadcast(&e->idle);
}

static void *
engine_thread(void *arg)
{
    struct worker *w = arg;
    struct accel_engine *e = w->e;

    pthread_mutex_lock(&e->lock);
    while (!e->stop) {
        struct accel_queue *q = pick_locked(e);
        unsigned int n;
        bool sleep;

        if (q == NULL) {
            e->sleepers++;
            pthread_cond_wait(&e->work, &e->lock);
            e->sleepers--;
            continue;
        }
        pthread_mutex_unlock(&e->lock);
        n = visit(w, q, &sleep);
        if (n == 0 && !sleep)
            cpu_relax(); /* polling an empty queue */
        pthread_mutex_lock(&e->lock);
        release_locked(e, q, sleep);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

unsigned int
accel_engine_poll(struct accel_engine *e, unsigned int visits)
{
    unsigned int done = 0, i;

    for (i = 0; i < visits; i++) {
        struct accel_queue *q;
        bool sleep;

        pthread_mutex_lock(&e->lock);
        q = pick_locked(e);
        pthread_mutex_unlock(&e->lock);
        if (q == NULL)
            break;
        done += visit(&e->poller, q, &sleep);
        pthread_mutex_lock(&e->lock);
        release_locked(e, q, sleep);
        pthread_mutex_unlock(&e->lock);
    }
    return done;
}

void
accel_engine_rewind(struct accel_engine *e)
{
    unsigned int i;

    pthread_mutex_lock(&e->lock);
    e->rr = 0;
    for (i = 0; i < e->nq; i++) {
        struct accel_queue *q = &e->q[i];

        assert(atomic_load(&q->state) == ACCEL_QS_DISABLED && !q->busy);
        q->active = false;
        q->kick = false;
        atomic_store(&q->paused, false);
        q->error = ACCEL_QERR_NONE;
        q->error_addr = 0;
        atomic_store(&q->head, 0);
        q->deficit = 0;
        q->published = false;
        q->idle_since_ns = 0;
        q->intr_pending = 0;
        q->intr_first_ns = 0;
        engine_batch_clear(q);
    }
    pthread_mutex_unlock(&e->lock);
}

/* ------------------------------------------------------------------ */
/* Queues                                                              */

int
accel_queue_claim(struct accel_engine *e, int index,
                  const struct accel_queue_ops *ops, void *opaque,
                  struct accel_queue **out)
{
    struct accel_queue *q = NULL;
    unsigned int i;
    int rc = 0;

    *out = NULL;
    if (ops == NULL || ops->map == NULL || ops->unmap == NULL ||
        (index >= 0 && (unsigned int)index >= e->nq))
        return -EINVAL;
    pthread_mutex_lock(&e->lock);
    if (index >= 0) {
        q = &e->q[index];
        if (q->claimed)
            rc = -EBUSY;
    } else {
        for (i = 0; i < e->nq && e->q[i].claimed; i++)
            ;
        if (i == e->nq)
            rc = -ENOSPC;
        else
            q = &e->q[i];
    }
    if (rc == 0) {
        q->claimed = true;
        atomic_store(&q->paused, false);
        q->ops = ops;
        q->opaque = opaque;
        q->error = ACCEL_QERR_NONE;
        q->error_addr = 0;
        atomic_store(&q->completed, 0);
        atomic_store(&q->bytes, 0);
        atomic_store(&q->failed, 0);
        atomic_store(&q->notifies, 0);
        atomic_store(&q->doorbells, 0);
        *out = q;
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

void
accel_queue_release(struct accel_queue *q)
{
    if (q == NULL)
        return;
    accel_queue_disable(q, false);
    pthread_mutex_lock(&q->e->lock);
    q->claimed = false;
    q->ops = NULL;
    q->opaque = NULL;
    pthread_mutex_unlock(&q->e->lock);
}

unsigned int
accel_queue_index(const struct accel_queue *q)
{
    return q->index;
}

void
accel_queue_doorbell(struct accel_queue *q)
{
    struct accel_engine *e = q->e;

    atomic_fetch_add(&q->doorbells, 1);
    pthread_mutex_lock(&e->lock);
    if (atomic_load(&q->state) == ACCEL_QS_ENABLED) {
        if (q->active || atomic_load(&q->paused)) {
            q->kick = true;
        } else {
            q->active = true;
            q->idle_since_ns = 0;
            if (e->sleepers > 0)
                pthread_cond_signal(&e->work);
        }
    }
    pthread_mutex_unlock(&e->lock);
}

/* ------------------------------------------------------------------ */
/* Migration                                                           */

void
accel_queue_pause(struct accel_queue *q)
{
    struct accel_engine *e = q->e;

    pthread_mutex_lock(&e->lock);
    atomic_store(&q->paused, true);
    /* Not picked again; a visit under way ends after its descriptor.
     * Resume looks at the ring whatever doorbells came meanwhile. */
    q->active = false;
    while (q->busy) {
        e->idle_waiters++;
        pthread_cond_wait(&e->idle, &e->lock);
        e->idle_waiters--;
    }
    pthread_mutex_unlock(&e->lock);
    /* The serving thread is gone: its coalesced completions are ours to
     * signal, before the caller's promise of no more interrupts. */
    engine_intr_flush(q);
}

void
accel_queue_resume(struct accel_queue *q)
{
    struct accel_engine *e = q->e;

    pthread_mutex_lock(&e->lock);
    atomic_store(&q->paused, false);
    q->kick = false;
    if (atomic_load(&q->state) == ACCEL_QS_ENABLED && !q->busy) {
        q->active = true;
        q->idle_since_ns = 0;
        if (e->sleepers > 0)
            pthread_cond_signal(&e->work);
    }
    pthread_mutex_unlock(&e->lock);
}

void
accel_queue_save(struct accel_queue *q, struct accel_queue_mig *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&q->e->lock);
    out->state = (enum accel_queue_state)atomic_load(&q->state);
    out->error = q->error;
    out->error_addr = q->error_addr;
    pthread_mutex_unlock(&q->e->lock);
    if (out->state != ACCEL_QS_DISABLED) {
        out->cfg = q->cfg;
        out->head = atomic_load(&q->head);
        out->published = out->state == ACCEL_QS_ENABLED && q->published;
    }
    if (out->state == ACCEL_QS_ENABLED) {
        out->batch_next = q->batch_next;
        out->batch_ok = q->batch_ok;
        out->batch_failed = q->batch_failed;
    }
}

uint8_t
accel_queue_mig_check(const struct accel_queue_mig *in)
{
    if (in->state != ACCEL_QS_DISABLED && in->state != ACCEL_QS_ENABLED &&
        in->state != ACCEL_QS_ERROR)
        return 0xff;
    if (in->error > ACCEL_QERR_BAD_INDEX)
        return 0xff;
    /* Inside a batch list: some element after the first, past as many
     * as succeeded; only a running queue is inside one. */
    if (in->batch_next >= ACCEL_BATCH_MAX || in->batch_ok > in->batch_next ||
        (in->batch_failed && in->batch_next == 0) ||
        (in->state != ACCEL_QS_ENABLED && in->batch_next != 0))
        return 0xff;
    if (in->state == ACCEL_QS_DISABLED)
        return ACCEL_QERR_NONE;
    return engine_check_config(&in->cfg);
}

int
accel_queue_restore(struct accel_queue *q, const struct accel_queue_mig *in)
{
    struct accel_engine *e = q->e;

    if (accel_queue_mig_check(in) != ACCEL_QERR_NONE)
        return -EINVAL;
    pthread_mutex_lock(&e->lock);
    assert(atomic_load(&q->paused) && !q->busy &&
           atomic_load(&q->state) == ACCEL_QS_DISABLED);
    q->error = in->error;
    q->error_addr = in->error_addr;
    q->active = false;
    q->kick = false;
    if (in->state != ACCEL_QS_DISABLED)
        q->cfg = in->cfg;
    atomic_store(&q->head, in->state != ACCEL_QS_DISABLED ? in->head : 0);
    q->published = in->state == ACCEL_QS_ENABLED && in->published;
    q->batch_next = in->batch_next;
    q->batch_ok = in->batch_ok;
    q->batch_failed = in->batch_failed;
    q->deficit = 0;
    q->idle_since_ns = 0;
    q->intr_pending = 0;
    atomic_store(&q->state, in->state);
    pthread_mutex_unlock(&e->lock);
    return 0;
}

void
accel_queue_status(struct accel_queue *q, struct accel_queue_status *out)
{
    struct accel_engine *e = q->e;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&e->lock);
    out->state = (enum accel_queue_state)atomic_load(&q->state);
    out->error = q->error;
    out->error_addr = q->error_addr;
    out->sleeping = out->state == ACCEL_QS_ENABLED && !q->active;
    pthread_mutex_unlock(&e->lock);
    out->head = atomic_load(&q->head);
    out->completed = atomic_load(&q->completed);
    out->bytes = atomic_load(&q->bytes);
    out->failed = atomic_load(&q->failed);
    out->notifies = atomic_load(&q->notifies);
    out->doorbells = atomic_load(&q->doorbells);
}

/* ------------------------------------------------------------------ */
/* The engine                                                          */

static int
worker_init(struct accel_engine *e, struct worker *w)
{
    w->e = e;
    w->scratch = calloc((size_t)MAX_OPERANDS * e->seg_cap, sizeof(*w->scratch));
    return w->scratch == NULL ? -ENOMEM : 0;
}

int
accel_engine_create(const struct accel_engine_config *cfg,
                    struct accel_engine **out)
{
    struct accel_engine *e;
    unsigned int i;
    int rc;

    *out = NULL;
    if (cfg == NULL || cfg->nr_queues > ACCEL_MAX_QUEUES ||
        cfg->nr_threads > ACCEL_MAX_THREADS ||
        (cfg->max_transfer != 0 &&
         (cfg->max_transfer < ACCEL_MIN_MAX_TRANSFER ||
          cfg->max_transfer > ACCEL_MAX_MAX_TRANSFER)))
        return -EINVAL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    e->log = cfg->log;
    /* Now, before any sandbox forbids sigaction(): queue memory is
     * reached under fault guards (engine_copy()). */
    rc = umdev_fault_guard_init();
    if (rc < 0)
        umdev_log(e->log, LOG_WARNING,
                  "accel: cannot install the SIGBUS handler (%s): a shrunk "
                  "guest memory file can end the process",
                  strerror(-rc));
    e->nq = cfg->nr_queues ? cfg->nr_queues : ACCEL_DEFAULT_QUEUES;
    e->max_transfer =
        cfg->max_transfer ? cfg->max_transfer : ACCEL_DEFAULT_MAX_TRANSFER;
    /* A range of n bytes touches at most n / granule + 2 granules. */
    e->seg_cap = e->max_transfer / ACCEL_MAP_GRANULE + 2;
    e->poll_ns =
        (uint64_t)(cfg->poll_us ? cfg->poll_us : ACCEL_DEFAULT_POLL_US) * 1000u;
    e->no_poll = cfg->no_poll;
    e->crc_hw = !cfg->crc_soft && engine_crc_hw_present();
    engine_crc_init(e->crc_table);

    rc = -ENOMEM;
    if (pthread_mutex_init(&e->lock, NULL) != 0)
        goto fail;
    e->lock_init = true;
    if (pthread_cond_init(&e->work, NULL) != 0)
        goto fail;
    e->work_init = true;
    if (pthread_cond_init(&e->idle, NULL) != 0)
        goto fail;
    e->idle_init = true;
    e->q = calloc(e->nq, sizeof(*e->q));
    if (e->q == NULL)
        goto fail;
    for (i = 0; i < e->nq; i++) {
        e->q[i].e = e;
        e->q[i].index = i;
        atomic_init(&e->q[i].state, ACCEL_QS_DISABLED);
    }
    rc = worker_init(e, &e->poller);
    if (rc < 0)
        goto fail;
    if (!cfg->manual) {
        unsigned int n =
            cfg->nr_threads ? cfg->nr_threads : ACCEL_DEFAULT_THREADS;

        e->workers = calloc(n, sizeof(*e->workers));
        if (e->workers == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
        e->nthreads = n;
        for (i = 0; i < n; i++) {
            rc = worker_init(e, &e->workers[i]);
            if (rc < 0)
                goto fail;
            rc = -pthread_create(&e->workers[i].thread, NULL, engine_thread,
                                 &e->workers[i]);
            if (rc < 0)
                goto fail;
            e->workers[i].started = true;
        }
    }
    *out = e;
    return 0;
fail:
    accel_engine_destroy(e);
    return rc;
}

void
accel_engine_destroy(struct accel_engine *e)
{
    unsigned int i;

    if (e == NULL)
        return;
    if (e->lock_init) {
        pthread_mutex_lock(&e->lock);
        e->stop = true;
        if (e->work_init)
            pthread_cond_broadcast(&e->work);
        pthread_mutex_unlock(&e->lock);
    }
    for (i = 0; i < e->nthreads; i++) {
        if (e->workers[i].started)
            pthread_join(e->workers[i].thread, NULL);
        free(e->workers[i].scratch);
    }
    free(e->workers);
    /* No thread runs now: forget the claims without touching memory
     * (their owners should have released them). */
    for (i = 0; e->q != NULL && i < e->nq; i++)
        if (e->q[i].claimed)
            atomic_store(&e->q[i].state, ACCEL_QS_DISABLED);
    free(e->q);
    free(e->poller.scratch);
    if (e->idle_init)
        pthread_cond_destroy(&e->idle);
    if (e->work_init)
        pthread_cond_destroy(&e->work);
    if (e->lock_init)
        pthread_mutex_destroy(&e->lock);
    free(e);
}

unsigned int
accel_engine_free_queues(struct accel_engine *e)
{
    unsigned int i, n = 0;

    pthread_mutex_lock(&e->lock);
    for (i = 0; i < e->nq; i++)
        n += !e->q[i].claimed;
    pthread_mutex_unlock(&e->lock);
    return n;
}

unsigned int
accel_engine_nr_queues(const struct accel_engine *e)
{
    return e->nq;
}

uint32_t
accel_engine_max_transfer(const struct accel_engine *e)
{
    return e->max_transfer;
}

bool
accel_engine_crc_hw(const struct accel_engine *e)
{
    return e->crc_hw;
}
