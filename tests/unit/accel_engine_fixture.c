/*
 * The accel engine unit tests' shared fixture (accel_engine_fixture.h):
 * the guest memory model, the queue driver and setup and teardown.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accel_engine_fixture.h"
#include "kit_util.h"

/* ---------------------------------------------------------------- */
/* Guest memory model                                                */

struct mem M;

static void
mem_init(void)
{
    static const struct {
        uint64_t iova, size;
        int prot;
    } layout[NREG] = {
        { R0, R0_SIZE, ACCEL_MAP_READ | ACCEL_MAP_WRITE },
        { R1, R1_SIZE, ACCEL_MAP_READ | ACCEL_MAP_WRITE },
        { RRO, RRO_SIZE, ACCEL_MAP_READ },
    };
    unsigned int i;

    memset(&M, 0, sizeof(M));
    assert_int_equal(pthread_rwlock_init(&M.lock, NULL), 0);
    for (i = 0; i < NREG; i++) {
        M.r[i].iova = layout[i].iova;
        M.r[i].size = layout[i].size;
        M.r[i].prot = layout[i].prot;
        M.r[i].host = aligned_alloc(4096, layout[i].size);
        assert_non_null(M.r[i].host);
        memset(M.r[i].host, 0, layout[i].size);
        M.r[i].live = true;
    }
}

static void
mem_fini(void)
{
    unsigned int i;

    /* Nothing the engine took may still be held. */
    assert_int_equal(atomic_load(&M.holds), 0);
    for (i = 0; i < NREG; i++)
        free(M.r[i].host);
    pthread_rwlock_destroy(&M.lock);
}

/* The host view of guest address @iova (test side). */
void *
G(uint64_t iova)
{
    unsigned int i;

    for (i = 0; i < NREG; i++)
        if (M.r[i].live && iova >= M.r[i].iova &&
            iova < M.r[i].iova + M.r[i].size)
            return M.r[i].host + (iova - M.r[i].iova);
    fail_msg("no memory at %#llx", (unsigned long long)iova);
    return NULL;
}

/* Bytes of region memory at @iova before the region ends. */
static uint64_t
region_left(uint64_t iova)
{
    unsigned int i;

    for (i = 0; i < NREG; i++)
        if (M.r[i].live && iova >= M.r[i].iova &&
            iova < M.r[i].iova + M.r[i].size)
            return M.r[i].iova + M.r[i].size - iova;
    fail_msg("no memory at %#llx", (unsigned long long)iova);
    return 0;
}

/* Copy to / from guest memory that may span regions (host buffers). */
void
gput(uint64_t iova, const void *buf, size_t n)
{
    const uint8_t *p = buf;

    while (n > 0) {
        size_t c =
            (size_t)region_left(iova) < n ? (size_t)region_left(iova) : n;

        memcpy(G(iova), p, c);
        iova += c;
        p += c;
        n -= c;
    }
}

void
gget(uint64_t iova, void *buf, size_t n)
{
    uint8_t *p = buf;

    while (n > 0) {
        size_t c =
            (size_t)region_left(iova) < n ? (size_t)region_left(iova) : n;

        memcpy(p, G(iova), c);
        iova += c;
        p += c;
        n -= c;
    }
}

bool
mapped(uint64_t iova)
{
    unsigned int i;

    for (i = 0; i < NREG; i++)
        if (M.r[i].live && iova >= M.r[i].iova &&
            iova < M.r[i].iova + M.r[i].size)
            return true;
    return false;
}

/*
 * Unmap region @i like lib/dev's DMA_UNMAP: unpublish it, wait for the
 * holds taken before, then free the host buffer (so a late access by the
 * engine is a use-after-free ASan reports). Callable from any thread.
 */
int
mem_unmap(unsigned int i)
{
    struct timespec ts = { 0, 100000 };
    int spins = 0;

    pthread_rwlock_wrlock(&M.lock);
    M.r[i].live = false;
    pthread_rwlock_unlock(&M.lock);
    while (atomic_load(&M.r[i].holds) != 0) {
        if (++spins > TIMEOUT_MS * 10)
            return -ETIMEDOUT;
        nanosleep(&ts, NULL);
    }
    free(M.r[i].host);
    M.r[i].host = NULL;
    return 0;
}

/* ---------------------------------------------------------------- */
/* A queue as the tests drive it                                     */

static int
t_map(void *opaque, uint64_t addr, uint64_t len, int prot, struct accel_map *m)
{
    struct tq *t = opaque;
    unsigned int i;
    int rc = -EFAULT;

    if (t->no_map)
        return -EFAULT;
    pthread_rwlock_rdlock(&M.lock);
    for (i = 0; i < NREG; i++) {
        struct region *r = &M.r[i];

        if (!r->live || addr < r->iova || addr >= r->iova + r->size)
            continue;
        if ((prot & r->prot) != prot) {
            rc = -EACCES;
            break;
        }
        m->ptr = r->host + (addr - r->iova);
        m->len =
            len < r->iova + r->size - addr ? len : r->iova + r->size - addr;
        /* A hold pins the whole region, as in lib/dev. */
        if (t->span == SPAN_REGION) {
            m->span = r->iova;
            m->span_len = r->size;
        } else if (t->span == SPAN_BOGUS) {
            m->span = r->iova + r->size; /* does not contain the range */
            m->span_len = 4096;
        }
        memcpy(m->priv, &r, sizeof(r));
        atomic_fetch_add(&r->holds, 1);
        atomic_fetch_add(&M.holds, 1);
        atomic_fetch_add(&M.maps, 1);
        rc = 0;
        break;
    }
    pthread_rwlock_unlock(&M.lock);
    return rc;
}

static void
t_unmap(void *opaque, struct accel_map *m)
{
    struct region *r;

    (void)opaque;
    memcpy(&r, m->priv, sizeof(r));
    atomic_fetch_sub(&r->holds, 1);
    atomic_fetch_sub(&M.holds, 1);
}

static void
t_notify(void *opaque)
{
    struct tq *t = opaque;

    atomic_fetch_add(&t->notifies, 1);
}

static void
t_error(void *opaque, const struct accel_error *err)
{
    struct tq *t = opaque;

    pthread_mutex_lock(&t->elock);
    if (t->nerr < MAX_ERRS)
        t->errs[t->nerr++] = *err;
    pthread_mutex_unlock(&t->elock);
}

const struct accel_queue_ops tq_ops = {
    .map = t_map,
    .unmap = t_unmap,
    .notify = t_notify,
    .error = t_error,
};


static struct accel_engine *
engine_new(bool manual, unsigned int threads, bool no_poll,
           unsigned int poll_us)
{
    struct accel_engine_config cfg = {
        .nr_queues = 8,
        .nr_threads = threads,
        .manual = manual,
        .no_poll = no_poll,
        .poll_us = poll_us,
    };
    struct accel_engine *e = NULL;

    assert_int_equal(accel_engine_create(&cfg, &e), 0);
    return e;
}

void
tq_claim(struct tq *t, struct accel_engine *e, unsigned int slot)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(pthread_mutex_init(&t->elock, NULL), 0);
    t->e = e;
    t->slot = slot;
    assert_int_equal(accel_queue_claim(e, (int)slot, &tq_ops, t, &t->q), 0);
}

/* Drive the ring at guest address @ring from index 0. */
void
tq_attach(struct tq *t, uint64_t ring, uint32_t size)
{
    t->ring = ring;
    accel_ring_drv_init(&t->r, G(ring), size, NULL, 0);
}

void
tq_enable(struct tq *t, uint32_t size, uint32_t prio, uint32_t coal_count,
          uint32_t coal_usec)
{
    struct accel_queue_config cfg = {
        .ring = RING_AREA(t->slot),
        .size = size,
        .priority = prio,
        .coal_count = coal_count,
        .coal_usec = coal_usec,
    };

    tq_attach(t, cfg.ring, size);
    memset(G(t->ring), 0xa5, accel_ring_bytes(size)); /* enable resets */
    *(uint32_t *)G(t->ring + ACCEL_RING_TAIL) = 0;
    assert_int_equal(accel_queue_enable(t->q, &cfg), 0);
    assert_int_equal(*(uint32_t *)G(t->ring + ACCEL_RING_HEAD), 0);
    assert_int_equal(*(uint32_t *)G(t->ring + ACCEL_RING_DOORBELL_NEEDED), 1);
}

void
tq_release(struct tq *t)
{
    accel_queue_release(t->q);
    pthread_mutex_destroy(&t->elock);
}

uint32_t
ring_word(const struct tq *t, uint32_t off)
{
    return accel_ring_load(t->r.ring, off);
}

uint64_t
comp_iova(const struct tq *t, uint32_t idx)
{
    return COMP_AREA(t->slot) + (uint64_t)(idx % COMPS_PER_Q) * 32u;
}

struct accel_comp *
comp_of(const struct tq *t, uint32_t idx)
{
    return G(comp_iova(t, idx));
}

uint8_t
comp_status(const struct tq *t, uint32_t idx)
{
    return accel_comp_status(comp_of(t, idx));
}

/* Run the engine (manual) or wait (threads) until @done(@arg). */
bool
drive_until(struct accel_engine *e, bool manual, bool (*done)(void *),
            void *arg)
{
    int64_t deadline = kit_now_ms() + TIMEOUT_MS;

    while (!done(arg)) {
        if (kit_now_ms() > deadline)
            return false;
        if (manual)
            accel_engine_poll(e, 1);
        else
            usleep(50);
    }
    return true;
}

static bool
has_room(void *arg)
{
    struct tq *t = arg;

    return accel_ring_room(&t->r) > 0;
}

bool g_manual; /* the current test's engine mode */

/* Publish TAIL (for descriptors posted with kick = false) and ring if the
 * engine asks for it (accel_ring_publish()). */
void
tq_kick(struct tq *t)
{
    if (accel_ring_publish(&t->r))
        accel_queue_doorbell(t->q);
}

/* Copy @d into the next slot through the memory model, which a ring may
 * cross from one host buffer into another. Return: its ring index. */
uint32_t
put_desc(struct tq *t, const struct accel_desc *d)
{
    uint32_t idx = t->r.tail;

    gput(t->ring + ACCEL_RING_DESCS +
             (uint64_t)(idx & (t->r.size - 1)) * ACCEL_DESC_SIZE,
         d, sizeof(*d));
    t->r.tail = idx + 1;
    return idx;
}

/*
 * Put @d in the ring as a driver does, once there is room; with @kick
 * publish it. With ACCEL_DF_COMP and .comp 0 the queue's completion slot
 * is used and zeroed first. Return: the ring index.
 */
uint32_t
tq_post(struct tq *t, struct accel_desc d, bool kick)
{
    uint32_t idx = t->r.tail;

    assert_true(drive_until(t->e, g_manual, has_room, t));
    if ((d.flags & ACCEL_DF_COMP) && d.comp == 0)
        d.comp = comp_iova(t, idx);
    if ((d.flags & ACCEL_DF_COMP) && mapped(d.comp))
        memset(G(d.comp), 0, ACCEL_COMP_SIZE);
    put_desc(t, &d);
    if (kick)
        tq_kick(t);
    return idx;
}

uint32_t
tq_submit(struct tq *t, struct accel_desc d)
{
    return tq_post(t, d, true);
}

bool
comp_done(void *arg)
{
    struct comp_arg *a = arg;

    return comp_status(a->t, a->idx) != ACCEL_ST_NONE;
}

static bool
head_at(void *arg)
{
    struct comp_arg *a = arg;

    return ring_word(a->t, ACCEL_RING_HEAD) == a->idx;
}

/* Wait for descriptor @idx's record; return its status. */
uint8_t
tq_wait(struct tq *t, uint32_t idx)
{
    struct comp_arg a = { t, idx };

    assert_true(drive_until(t->e, g_manual, comp_done, &a));
    return comp_status(t, idx);
}

/* Wait until HEAD reaches TAIL. */
void
tq_drain(struct tq *t)
{
    struct comp_arg a = { t, t->r.tail };

    assert_true(drive_until(t->e, g_manual, head_at, &a));
}




struct fx F;

/* The fixtures tests choose from (FX_TEST()). */
const struct fx_cfg fx_cfgs[] = {
    [FX_MANUAL] = { .threads = 0, .size = 64 },
    [FX_THREADS] = { .threads = 2, .size = 256 },
    /* Threads polling an empty queue for 2 ms before they sleep: wider
     * than the scheduling gaps of a loaded test machine, so that what is
     * measured is the protocol, not the host's scheduler. */
    [FX_THREADS_LONG_POLL] = { .threads = 2, .poll_us = 2000, .size = 256 },
    /* One engine thread: fairness has to come from the scheduler. */
    [FX_ONE_THREAD] = { .threads = 1, .size = 256 },
};

int
fx_setup(void **state)
{
    const struct fx_cfg *c = *state;

    mem_init();
    g_manual = c->threads == 0;
    /* A manual engine asks for a doorbell as soon as a queue empties. */
    F.e = engine_new(g_manual, c->threads, g_manual, c->poll_us);
    tq_claim(&F.t, F.e, 0);
    tq_enable(&F.t, c->size, 1, 0, 0);
    return 0;
}

int
fx_teardown(void **state)
{
    (void)state;
    tq_release(&F.t);
    accel_engine_destroy(F.e);
    F.e = NULL;
    mem_fini();
    return 0;
}

/* Batch lists and their records (BATCH_LIST, BATCH_COMPS). */
void
put_elem(unsigned int i, struct accel_desc d)
{
    d.flags |= ACCEL_DF_COMP;
    d.comp = BATCH_COMPS + i * 32ull;
    memset(G(d.comp), 0, 32);
    memcpy(G(BATCH_LIST + i * 64ull), &d, sizeof(d));
}

struct accel_comp *
elem_comp(unsigned int i)
{
    return G(BATCH_COMPS + i * 32ull);
}
