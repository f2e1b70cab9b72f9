/*
 * Unit tests of the accel engine (devices/accel/engine.c) in-process: a
 * model of guest memory (IOVA regions over separate host buffers, with
 * holds and unmap-waits-for-holds like lib/dev), a tiny driver that
 * writes rings the way a guest does, and checks of every operation, every
 * status, the ring protocol, scheduling fairness and idle behaviour.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "kit_util.h"

/* Every wait in this file ends within this. */
#define TIMEOUT_MS 10000

/* The test kit's clock and oracles (tests/common/kit_util.h) under the
 * names the code below uses; crc_ref() is the bitwise reference,
 * independent of the engine's table and instruction. */
#define now_ms kit_now_ms
#define fill_rand kit_fill_rand
#define crc_ref kit_crc32c

/* ---------------------------------------------------------------- */
/* Guest memory model                                                */

#define MB (1024u * 1024u)
#define R0 0x100000ull /* rings, completions, data */
#define R0_SIZE (4 * MB)
#define R1 (R0 + R0_SIZE) /* adjacent, another host buffer */
#define R1_SIZE (8 * MB)
#define RRO 0x1000000ull /* read-only */
#define RRO_SIZE (64 * 1024u)
#define HOLE 0x2000000ull /* never mapped */
#define NREG 3

#define RING_AREA(i) (R0 + (uint64_t)(i)*0x10000) /* 8 x 64 KiB */
#define COMP_AREA(i) (R0 + 0x80000 + (uint64_t)(i)*0x10000)
#define COMPS_PER_Q (0x10000 / ACCEL_COMP_SIZE)
#define DATA0 (R0 + 1 * MB) /* 3 MiB up to R1 */

struct region {
    uint64_t iova, size;
    uint8_t *host;
    int prot;
    bool live;
    atomic_int holds;
};

struct mem {
    pthread_rwlock_t lock;
    struct region r[NREG];
    atomic_int holds; /* all regions */
    atomic_long maps; /* successful map calls */
};

static struct mem M;

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
static void *
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
static void
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

static void
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

static bool
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
static int
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

#define MAX_ERRS 64

struct tq {
    struct accel_engine *e;
    struct accel_queue *q;
    unsigned int slot; /* ring and completion area number */
    uint64_t ring;
    uint32_t size;
    uint32_t tail;
    uint32_t published; /* TAIL as last stored in the ring */
    atomic_uint notifies;
    pthread_mutex_t elock;
    struct accel_error errs[MAX_ERRS];
    unsigned int nerr;
    bool no_map; /* fail every map (callbacks check it) */
    enum { SPAN_REGION, SPAN_NONE, SPAN_BOGUS } span; /* what map reports */
};

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

static const struct accel_queue_ops tq_ops = {
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

static void
tq_claim(struct tq *t, struct accel_engine *e, unsigned int slot)
{
    memset(t, 0, sizeof(*t));
    assert_int_equal(pthread_mutex_init(&t->elock, NULL), 0);
    t->e = e;
    t->slot = slot;
    assert_int_equal(accel_queue_claim(e, (int)slot, &tq_ops, t, &t->q), 0);
}

static void
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

    t->ring = cfg.ring;
    t->size = size;
    t->tail = 0;
    t->published = 0;
    memset(G(t->ring), 0xa5, accel_ring_bytes(size)); /* enable resets */
    *(uint32_t *)G(t->ring + ACCEL_RING_TAIL) = 0;
    assert_int_equal(accel_queue_enable(t->q, &cfg), 0);
    assert_int_equal(*(uint32_t *)G(t->ring + ACCEL_RING_HEAD), 0);
    assert_int_equal(*(uint32_t *)G(t->ring + ACCEL_RING_DOORBELL_NEEDED), 1);
}

static void
tq_release(struct tq *t)
{
    accel_queue_release(t->q);
    pthread_mutex_destroy(&t->elock);
}

static uint32_t
ring_word(const struct tq *t, uint64_t off)
{
    return __atomic_load_n((uint32_t *)G(t->ring + off), __ATOMIC_ACQUIRE);
}

static uint64_t
comp_iova(const struct tq *t, uint32_t idx)
{
    return COMP_AREA(t->slot) + (uint64_t)(idx % COMPS_PER_Q) * 32u;
}

static struct accel_comp *
comp_of(const struct tq *t, uint32_t idx)
{
    return G(comp_iova(t, idx));
}

static uint8_t
comp_status(const struct tq *t, uint32_t idx)
{
    return __atomic_load_n(&comp_of(t, idx)->status, __ATOMIC_ACQUIRE);
}

/* Run the engine (manual) or wait (threads) until @done(@arg). */
static bool
drive_until(struct accel_engine *e, bool manual, bool (*done)(void *),
            void *arg)
{
    int64_t deadline = now_ms() + TIMEOUT_MS;

    while (!done(arg)) {
        if (now_ms() > deadline)
            return false;
        if (manual)
            accel_engine_poll(e, 1);
        else
            usleep(50);
    }
    return true;
}

struct room_arg {
    struct tq *t;
};

static bool
has_room(void *arg)
{
    struct tq *t = arg;

    return t->tail - ring_word(t, ACCEL_RING_HEAD) < t->size;
}

static bool g_manual; /* the current test's engine mode */

/* Store TAIL (@old -> @t->tail) and ring if the engine asks for it. */
static void
publish(struct tq *t, uint32_t old)
{
    __atomic_store_n((uint32_t *)G(t->ring + ACCEL_RING_TAIL), t->tail,
                     __ATOMIC_RELEASE);
    atomic_thread_fence(memory_order_seq_cst);
    if (accel_ring_need_doorbell(ring_word(t, ACCEL_RING_DOORBELL_NEEDED),
                                 ring_word(t, ACCEL_RING_WAKE_INDEX), old,
                                 t->tail))
        accel_queue_doorbell(t->q);
}

/*
 * Put @d in the ring as a driver does: descriptor, then TAIL (release),
 * then a full fence before reading DOORBELL_NEEDED, ringing only if set.
 * With ACCEL_DF_COMP and .comp 0 the queue's completion slot is used and
 * zeroed first. Return: the ring index.
 */
static uint32_t
tq_post(struct tq *t, struct accel_desc d, bool kick)
{
    uint32_t idx = t->tail;

    assert_true(drive_until(t->e, g_manual, has_room, t));
    if ((d.flags & ACCEL_DF_COMP) && d.comp == 0)
        d.comp = comp_iova(t, idx);
    if ((d.flags & ACCEL_DF_COMP) && mapped(d.comp))
        memset(G(d.comp), 0, ACCEL_COMP_SIZE);
    memcpy(G(t->ring + ACCEL_RING_DESCS + (uint64_t)(idx % t->size) * 64), &d,
           sizeof(d));
    t->tail++;
    if (kick) {
        publish(t, t->published);
        t->published = t->tail;
    }
    return idx;
}

static uint32_t
tq_submit(struct tq *t, struct accel_desc d)
{
    return tq_post(t, d, true);
}

/* Publish TAIL for descriptors posted with kick = false. */
static void
tq_kick(struct tq *t)
{
    publish(t, t->published);
    t->published = t->tail;
}

struct comp_arg {
    struct tq *t;
    uint32_t idx;
};

static bool
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
static uint8_t
tq_wait(struct tq *t, uint32_t idx)
{
    struct comp_arg a = { t, idx };

    assert_true(drive_until(t->e, g_manual, comp_done, &a));
    return comp_status(t, idx);
}

/* Wait until HEAD reaches TAIL. */
static void
tq_drain(struct tq *t)
{
    struct comp_arg a = { t, t->tail };

    assert_true(drive_until(t->e, g_manual, head_at, &a));
}

static struct accel_desc
desc(uint8_t op, uint32_t size, uint64_t src, uint64_t dst)
{
    struct accel_desc d = {
        .opcode = op,
        .flags = ACCEL_DF_COMP,
        .size = size,
        .src = src,
        .dst = dst,
    };

    return d;
}

/* One engine and one queue per test, torn down with hold checks. */
struct fx {
    struct accel_engine *e;
    struct tq t;
};

static struct fx F;

static int
setup_manual(void **state)
{
    (void)state;
    mem_init();
    g_manual = true;
    F.e = engine_new(true, 0, true, 0);
    tq_claim(&F.t, F.e, 0);
    tq_enable(&F.t, 64, 1, 0, 0);
    return 0;
}

static int
setup_threads(void **state)
{
    (void)state;
    mem_init();
    g_manual = false;
    F.e = engine_new(false, 2, false, 0);
    tq_claim(&F.t, F.e, 0);
    tq_enable(&F.t, 256, 1, 0, 0);
    return 0;
}

/* Threads polling an empty queue for 2 ms before they sleep: wider than
 * the scheduling gaps of a loaded test machine, so that what is measured
 * is the protocol, not the host's scheduler. */
static int
setup_threads_long_poll(void **state)
{
    (void)state;
    mem_init();
    g_manual = false;
    F.e = engine_new(false, 2, false, 2000);
    tq_claim(&F.t, F.e, 0);
    tq_enable(&F.t, 256, 1, 0, 0);
    return 0;
}

/* One engine thread: fairness has to come from the scheduler. */
static int
setup_one_thread(void **state)
{
    (void)state;
    mem_init();
    g_manual = false;
    F.e = engine_new(false, 1, false, 0);
    tq_claim(&F.t, F.e, 0);
    tq_enable(&F.t, 256, 1, 0, 0);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    tq_release(&F.t);
    accel_engine_destroy(F.e);
    F.e = NULL;
    mem_fini();
    return 0;
}

/* ---------------------------------------------------------------- */
/* CRC32C                                                            */

static void
test_crc32c_vectors(void **state)
{
    static const char check[] = "123456789";
    uint8_t zeros[32] = { 0 }, ones[32];
    uint32_t hw;

    (void)state;
    memset(ones, 0xff, sizeof(ones));
    /* Published check values (RFC 3720 B.4 and the CRC catalogue). */
    assert_int_equal(accel_crc32c_soft(F.e, 0, check, 9), 0xe3069283u);
    assert_int_equal(accel_crc32c_soft(F.e, 0, zeros, 32), 0x8a9136aau);
    assert_int_equal(accel_crc32c_soft(F.e, 0, ones, 32), 0x62a8ab43u);
    assert_int_equal(accel_crc32c(F.e, 0, check, 9), 0xe3069283u);
    if (accel_crc32c_hw(0, check, 9, &hw))
        assert_int_equal(hw, 0xe3069283u);
    else
        print_message("no CRC32 instruction: hardware path not tested\n");
}

/* The instruction and the table agree at every length and alignment, and
 * chaining CRCs equals one CRC over the concatenation. */
static void
test_crc32c_hw_soft_agree(void **state)
{
    uint8_t *buf = malloc(4096 + 64);
    size_t len, off;
    bool have_hw = accel_crc32c_hw(0, "", 0, &(uint32_t){ 0 });

    (void)state;
    assert_non_null(buf);
    fill_rand(buf, 4096 + 64, 7);
    for (off = 0; off < 9; off++) {
        for (len = 0; len <= 300; len++) {
            uint32_t s = accel_crc32c_soft(F.e, 0x1234u, buf + off, len);
            uint32_t r = crc_ref(0x1234u, buf + off, len), h = 0;

            assert_int_equal(s, r);
            if (have_hw) {
                assert_true(accel_crc32c_hw(0x1234u, buf + off, len, &h));
                assert_int_equal(h, r);
            }
        }
    }
    for (len = 0; len <= 4096; len += 97) {
        uint32_t a = accel_crc32c_soft(F.e, 0, buf, len);

        assert_int_equal(accel_crc32c_soft(F.e, a, buf + len, 4096 - len),
                         accel_crc32c_soft(F.e, 0, buf, 4096));
    }
    free(buf);
}

/* The engine's CRC32C descriptor with the table forced gives the same as
 * the default (instruction) engine. */
static void
test_crc32c_engine_both_paths(void **state)
{
    struct accel_engine_config cfg = {
        .nr_queues = 8,
        .manual = true,
        .no_poll = true,
        .crc_soft = true,
    };
    struct accel_engine *soft = NULL;
    struct tq t2;
    uint8_t *src = G(DATA0 + 3);
    uint32_t i1, i2, want;

    (void)state;
    assert_int_equal(accel_engine_create(&cfg, &soft), 0);
    assert_false(accel_engine_crc_hw(soft));
    tq_claim(&t2, soft, 1);
    tq_enable(&t2, 64, 1, 0, 0);
    fill_rand(src, 100000, 99);
    want = crc_ref(0xdeadbeefu, src, 100000);

    struct accel_desc d = desc(ACCEL_OP_CRC32C, 100000, DATA0 + 3, 0);
    d.crc_seed = 0xdeadbeefu;
    i1 = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, i1), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, i1)->value, want);
    i2 = tq_submit(&t2, d);
    {
        struct comp_arg a = { &t2, i2 };

        assert_true(drive_until(soft, true, comp_done, &a));
    }
    assert_int_equal(comp_status(&t2, i2), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&t2, i2)->value, want);
    tq_release(&t2);
    accel_engine_destroy(soft);
}

/* ---------------------------------------------------------------- */
/* Operations                                                        */

static const uint32_t sizes[] = { 1,    7,    8,    63,        64,    100,
                                  4095, 4096, 4097, 65536 + 3, 1 * MB };
static const unsigned int aligns[] = { 0, 1, 7, 63 };

/* Where operand @which of test case @k goes: in odd cases the first
 * operand straddles the R0/R1 boundary (two host buffers). Operands never
 * overlap, and a byte either side of each is free for guards. */
static uint64_t
place(unsigned int k, uint32_t size, unsigned int align, unsigned int which)
{
    switch (which) {
    case 0:
        if (k % 2 == 1 && size > 16)
            return R1 - size / 2 + align;
        return DATA0 + align;
    case 1:
        if (k % 2 == 1)
            return R1 + 2 * MB + align;
        return DATA0 + MB + 128 + align;
    default:
        return R1 + 4 * MB + align;
    }
}

static void
test_memmove(void **state)
{
    unsigned int k = 0, si, ai;

    (void)state;
    for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (ai = 0; ai < 4; ai++, k++) {
            uint32_t n = sizes[si];
            uint64_t s = place(k, n, aligns[ai], 0);
            uint64_t d = place(k, n, aligns[(ai + 1) % 4], 1);
            uint8_t *ref = malloc(n), *got = malloc(n);
            uint32_t idx;

            assert_non_null(ref);
            assert_non_null(got);
            fill_rand(ref, n, k);
            gput(s, ref, n);
            memset(G(d - 1), 0x5c, 1);
            memset(G(d + n), 0x5c, 1);
            idx = tq_submit(&F.t, desc(ACCEL_OP_MEMMOVE, n, s, d));
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
            assert_int_equal(comp_of(&F.t, idx)->bytes, n);
            assert_int_equal(comp_of(&F.t, idx)->opcode, ACCEL_OP_MEMMOVE);
            gget(d, got, n);
            assert_memory_equal(got, ref, n);
            /* Nothing outside the destination. */
            assert_int_equal(*(uint8_t *)G(d - 1), 0x5c);
            assert_int_equal(*(uint8_t *)G(d + n), 0x5c);
            free(ref);
            free(got);
        }
    }
}

/* Overlapping MEMMOVE in both directions, also across the boundary of two
 * host buffers, against memmove() on a copy. */
static void
test_memmove_overlap(void **state)
{
    static const int64_t shifts[] = {
        1, -1, 7, -7, 4096, -4096, 100000, -100000
    };
    static const uint64_t bases[] = { DATA0 + 1000, R1 - 150000 };
    unsigned int b, i;

    (void)state;
    for (b = 0; b < 2; b++) {
        for (i = 0; i < sizeof(shifts) / sizeof(shifts[0]); i++) {
            uint32_t n = 200000;
            uint64_t lo = bases[b], s = lo + 100000,
                     d = (uint64_t)((int64_t)s + shifts[i]);
            size_t span = n + 200000;
            uint8_t *ref = malloc(span), *win = malloc(span);
            uint32_t idx;
            size_t j;

            assert_non_null(ref);
            assert_non_null(win);
            for (j = 0; j < span; j++)
                *(uint8_t *)G(lo + j) = (uint8_t)(j * 31 + i);
            for (j = 0; j < span; j++)
                ref[j] = *(uint8_t *)G(lo + j);
            memmove(ref + (d - lo), ref + (s - lo), n);
            idx = tq_submit(&F.t, desc(ACCEL_OP_MEMMOVE, n, s, d));
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
            for (j = 0; j < span; j++)
                win[j] = *(uint8_t *)G(lo + j);
            assert_memory_equal(win, ref, span);
            free(ref);
            free(win);
        }
    }
}

static void
test_fill(void **state)
{
    const uint64_t pat = 0x0123456789abcdefull;
    unsigned int k = 0, si, ai;

    (void)state;
    for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (ai = 0; ai < 4; ai++, k++) {
            uint32_t n = sizes[si], idx, j;
            uint64_t d = place(k, n, aligns[ai], 1);
            struct accel_desc ds = desc(ACCEL_OP_FILL, n, 0, d);

            memset(G(d - 1), 0x5c, 1);
            memset(G(d + n), 0x5c, 1);
            ds.pattern = pat;
            idx = tq_submit(&F.t, ds);
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
            for (j = 0; j < n; j++) {
                uint8_t got = *(uint8_t *)G(d + j);

                if (got != (uint8_t)(pat >> (8 * (j % 8))))
                    fail_msg("size %u align %u: byte %u is %#x", n, aligns[ai],
                             j, got);
            }
            assert_int_equal(*(uint8_t *)G(d - 1), 0x5c);
            assert_int_equal(*(uint8_t *)G(d + n), 0x5c);
        }
    }
}

static void
test_compare(void **state)
{
    unsigned int k = 0, si, ai;

    (void)state;
    for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (ai = 0; ai < 4; ai++, k++) {
            uint32_t n = sizes[si], idx, at;
            uint64_t a = place(k, n, aligns[ai], 0);
            uint64_t b = place(k, n, aligns[(ai + 3) % 4], 1);
            uint8_t *buf = malloc(n);
            struct accel_comp *c;

            assert_non_null(buf);
            fill_rand(buf, n, k + 5);
            gput(a, buf, n);
            gput(b, buf, n);
            idx = tq_submit(&F.t, desc(ACCEL_OP_COMPARE, n, a, b));
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
            assert_int_equal(comp_of(&F.t, idx)->result, 0);
            /* One byte differs: the mismatch names its offset. */
            at = (n * 3u) / 4u;
            *(uint8_t *)G(b + at) ^= 0x10;
            idx = tq_submit(&F.t, desc(ACCEL_OP_COMPARE, n, a, b));
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_MISMATCH);
            c = comp_of(&F.t, idx);
            assert_int_equal(c->result, 1);
            assert_int_equal(c->info, at);
            assert_int_equal(c->bytes, at);
            free(buf);
        }
    }
}

static void
test_compare_pattern(void **state)
{
    const uint64_t pat = 0xfedcba9876543210ull;
    unsigned int k = 0, si, ai;

    (void)state;
    for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (ai = 0; ai < 4; ai++, k++) {
            uint32_t n = sizes[si], idx, j, at;
            uint64_t a = place(k, n, aligns[ai], 0);
            struct accel_desc d = desc(ACCEL_OP_COMPARE_PATTERN, n, a, 0);

            for (j = 0; j < n; j++)
                *(uint8_t *)G(a + j) = (uint8_t)(pat >> (8 * (j % 8)));
            d.pattern = pat;
            idx = tq_submit(&F.t, d);
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
            at = n - 1 - (n / 3);
            *(uint8_t *)G(a + at) ^= 0x01;
            idx = tq_submit(&F.t, d);
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_MISMATCH);
            assert_int_equal(comp_of(&F.t, idx)->info, at);
            assert_int_equal(comp_of(&F.t, idx)->result, 1);
        }
    }
}

static void
test_crc_ops(void **state)
{
    unsigned int k = 0, si, ai;

    (void)state;
    for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (ai = 0; ai < 4; ai++, k++) {
            uint32_t n = sizes[si], idx, want;
            uint64_t s = place(k, n, aligns[ai], 0);
            uint64_t d = place(k, n, aligns[(ai + 2) % 4], 1);
            struct accel_desc ds = desc(ACCEL_OP_CRC32C, n, s, 0);
            uint8_t *ref = malloc(n), *got = calloc(1, n);

            assert_non_null(ref);
            assert_non_null(got);
            fill_rand(ref, n, k + 11);
            gput(s, ref, n);
            want = crc_ref(k * 77u, ref, n);
            ds.crc_seed = k * 77u;
            idx = tq_submit(&F.t, ds);
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
            assert_int_equal(comp_of(&F.t, idx)->value, want);
            /* COPY_CRC: the same CRC and a copy. */
            ds.opcode = ACCEL_OP_COPY_CRC;
            ds.dst = d;
            gput(d, got, n);
            idx = tq_submit(&F.t, ds);
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
            assert_int_equal(comp_of(&F.t, idx)->value, want);
            gget(d, got, n);
            assert_memory_equal(got, ref, n);
            free(ref);
            free(got);
        }
    }
}

static void
test_dualcast(void **state)
{
    unsigned int k = 0, si, ai;

    (void)state;
    for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (ai = 0; ai < 4; ai++, k++) {
            uint32_t n = sizes[si], idx;
            uint64_t s = place(k, n, aligns[ai], 0);
            uint64_t d = place(k, n, aligns[(ai + 1) % 4], 1);
            uint64_t d2 = place(k, n, aligns[(ai + 2) % 4], 2);
            struct accel_desc ds = desc(ACCEL_OP_DUALCAST, n, s, d);
            uint8_t *ref = malloc(n), *got = calloc(1, n);

            assert_non_null(ref);
            assert_non_null(got);
            fill_rand(ref, n, k + 3);
            gput(s, ref, n);
            gput(d, got, n);
            gput(d2, got, n);
            ds.dst2 = d2;
            idx = tq_submit(&F.t, ds);
            assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
            gget(d, got, n);
            assert_memory_equal(got, ref, n);
            memset(got, 0, n);
            gget(d2, got, n);
            assert_memory_equal(got, ref, n);
            free(ref);
            free(got);
        }
    }
}

/* NOP and the tag echo; DRAIN completes after everything before it. */
static void
test_nop_drain(void **state)
{
    struct accel_desc d = desc(ACCEL_OP_NOP, 0, 0, 0);
    uint32_t idx[20], i, dr;

    (void)state;
    for (i = 0; i < 20; i++) {
        struct accel_desc m =
            desc(ACCEL_OP_MEMMOVE, 65536, DATA0, DATA0 + MB + i * 65536ull);

        m.tag = 1000 + i;
        idx[i] = tq_post(&F.t, m, false);
    }
    d.tag = 0x1122334455667788ull;
    d.opcode = ACCEL_OP_DRAIN;
    dr = tq_post(&F.t, d, false);
    tq_kick(&F.t);
    assert_int_equal(tq_wait(&F.t, dr), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, dr)->tag, 0x1122334455667788ull);
    for (i = 0; i < 20; i++) {
        assert_int_equal(comp_status(&F.t, idx[i]), ACCEL_ST_SUCCESS);
        assert_int_equal(comp_of(&F.t, idx[i])->tag, 1000 + i);
    }
    d.opcode = ACCEL_OP_NOP;
    i = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, i), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, i)->opcode, ACCEL_OP_NOP);
}

/* ---------------------------------------------------------------- */
/* Batch                                                             */

#define BATCH_LIST (DATA0 + 2 * MB + 512 * 1024)
#define BATCH_COMPS (BATCH_LIST + 64 * 1024)

static void
put_elem(unsigned int i, struct accel_desc d)
{
    d.flags |= ACCEL_DF_COMP;
    d.comp = BATCH_COMPS + i * 32ull;
    memset(G(d.comp), 0, 32);
    memcpy(G(BATCH_LIST + i * 64ull), &d, sizeof(d));
}

static struct accel_comp *
elem_comp(unsigned int i)
{
    return G(BATCH_COMPS + i * 32ull);
}

static void
test_batch(void **state)
{
    struct accel_desc b = desc(ACCEL_OP_BATCH, 4, BATCH_LIST, 0);
    struct accel_desc f = desc(ACCEL_OP_FILL, 4096, 0, DATA0 + 8192);
    struct accel_desc c = desc(ACCEL_OP_CRC32C, 4096, DATA0 + 8192, 0);
    uint32_t idx;

    (void)state;
    f.pattern = 0x4242424242424242ull;
    fill_rand(G(DATA0), 4096, 1);
    put_elem(0, desc(ACCEL_OP_MEMMOVE, 4096, DATA0, DATA0 + 4096));
    put_elem(1, f);
    put_elem(2, c);
    put_elem(3, desc(ACCEL_OP_NOP, 0, 0, 0));
    idx = tq_submit(&F.t, b);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, idx)->bytes, 4); /* elements done */
    assert_memory_equal(G(DATA0 + 4096), G(DATA0), 4096);
    assert_int_equal(elem_comp(0)->status, ACCEL_ST_SUCCESS);
    assert_int_equal(elem_comp(1)->status, ACCEL_ST_SUCCESS);
    /* Elements run in order: the CRC sees the FILL before it. */
    assert_int_equal(elem_comp(2)->value, crc_ref(0, G(DATA0 + 8192), 4096));
    assert_int_equal(*(uint8_t *)G(DATA0 + 8192 + 4095), 0x42);

    /* One bad element: the others still run; BATCH_PARTIAL. */
    put_elem(0, desc(ACCEL_OP_MEMMOVE, 64, HOLE, DATA0));
    put_elem(1, desc(ACCEL_OP_BATCH, 1, BATCH_LIST, 0)); /* no nesting */
    put_elem(2, desc(ACCEL_OP_NOP, 0, 0, 0));
    b.size = 3;
    idx = tq_submit(&F.t, b);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_BATCH_PARTIAL);
    assert_int_equal(comp_of(&F.t, idx)->bytes, 1);
    assert_int_equal(elem_comp(0)->status, ACCEL_ST_ADDR_FAULT);
    assert_int_equal(elem_comp(0)->info, HOLE);
    assert_int_equal(elem_comp(1)->status, ACCEL_ST_INVALID_OPCODE);
    assert_int_equal(elem_comp(2)->status, ACCEL_ST_SUCCESS);

    /* Bad batches. */
    b.size = 0;
    idx = tq_submit(&F.t, b);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 4);
    b.size = ACCEL_BATCH_MAX + 1;
    idx = tq_submit(&F.t, b);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    b.size = 2;
    b.src = BATCH_LIST + 8;
    idx = tq_submit(&F.t, b);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 8);
    /* The list itself unreadable: an address fault at the list. */
    b.src = HOLE;
    idx = tq_submit(&F.t, b);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, HOLE);
}

/* ---------------------------------------------------------------- */
/* Errors                                                            */

static void
test_addr_faults(void **state)
{
    uint8_t *dst = G(DATA0 + MB);
    uint32_t idx;
    struct accel_desc d;

    (void)state;
    memset(dst, 0x77, 8192);
    /* Source unmapped. */
    idx = tq_submit(&F.t, desc(ACCEL_OP_MEMMOVE, 4096, HOLE, DATA0 + MB));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, HOLE);
    assert_int_equal(comp_of(&F.t, idx)->bytes, 0);
    /* Source runs off the end of R1 into nothing: the fault names the
     * first unmapped byte, and no byte of dst was written. */
    idx = tq_submit(
        &F.t, desc(ACCEL_OP_MEMMOVE, 8192, R1 + R1_SIZE - 4096, DATA0 + MB));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, R1 + R1_SIZE);
    for (idx = 0; idx < 8192; idx++)
        assert_int_equal(dst[idx], 0x77);
    /* Destination read-only. */
    idx = tq_submit(&F.t, desc(ACCEL_OP_MEMMOVE, 64, DATA0, RRO));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, RRO);
    /* Reading read-only memory is fine. */
    idx = tq_submit(&F.t, desc(ACCEL_OP_CRC32C, 64, RRO, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    /* Second destination of DUALCAST. */
    d = desc(ACCEL_OP_DUALCAST, 128, DATA0, DATA0 + MB);
    d.dst2 = HOLE + 64;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, HOLE + 64);
    /* A range that wraps the address space. */
    idx = tq_submit(&F.t, desc(ACCEL_OP_FILL, 4096, 0, UINT64_MAX - 100));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, UINT64_MAX - 100);
    assert_int_equal(F.t.nerr, 0); /* all reported in records */
}

/*
 * Spans: when map reports that a hold pins a whole region, a visit maps
 * each region once (per protection) instead of once per operand, and
 * every hold is back when the visit ends. A read-only span never serves a
 * write of the same visit, and a span that does not contain what map
 * returned is not used.
 */
static long
spans_run(unsigned int n, uint32_t sz)
{
    long maps0 = atomic_load(&M.maps);
    uint32_t first = F.t.tail, i;

    memset(G(DATA0 + MB), 0, (size_t)n * sz);
    for (i = 0; i < n; i++)
        tq_post(&F.t,
                desc(ACCEL_OP_MEMMOVE, sz, DATA0 + (uint64_t)i * sz,
                     DATA0 + MB + (uint64_t)i * sz),
                false);
    tq_kick(&F.t);
    tq_drain(&F.t);
    for (i = 0; i < n; i++)
        assert_int_equal(comp_status(&F.t, first + i), ACCEL_ST_SUCCESS);
    assert_memory_equal(G(DATA0 + MB), G(DATA0), (size_t)n * sz);
    assert_int_equal(atomic_load(&M.holds), 0);
    return atomic_load(&M.maps) - maps0;
}

static void
test_visit_spans(void **state)
{
    enum { N = 48, SZ = 256 };
    uint8_t ro[64];
    long spans, none, bogus;
    uint32_t a, b;

    (void)state;
    fill_rand(G(DATA0), N * SZ, 31);
    /* 48 descriptors of cost 512 at priority 1 take two visits (16384
     * each), and everything lies in R0, whose span the ring's own hold
     * (read-write) already covers: about one map per visit. */
    spans = spans_run(N, SZ);
    assert_true(spans <= 4);
    F.t.span = SPAN_NONE;
    none = spans_run(N, SZ);
    assert_true(none >= 3 * N); /* source, destination, record */
    F.t.span = SPAN_BOGUS;
    bogus = spans_run(N, SZ);
    assert_true(bogus >= 3 * N);
    print_message("maps for %u descriptors: %ld with spans, %ld without, "
                  "%ld with spans that do not hold\n",
                  (unsigned int)N, spans, none, bogus);

    /* One visit reads RRO (a read-only span is kept), then writes it. */
    F.t.span = SPAN_REGION;
    memcpy(ro, G(RRO), sizeof(ro));
    a = tq_post(&F.t, desc(ACCEL_OP_CRC32C, 64, RRO, 0), false);
    b = tq_post(&F.t, desc(ACCEL_OP_MEMMOVE, 64, DATA0, RRO), false);
    tq_kick(&F.t);
    assert_int_equal(tq_wait(&F.t, a), ACCEL_ST_SUCCESS);
    assert_int_equal(tq_wait(&F.t, b), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, b)->info, RRO);
    assert_memory_equal(G(RRO), ro, sizeof(ro));
    tq_drain(&F.t);
    assert_int_equal(atomic_load(&M.holds), 0);
}

static void
test_invalid(void **state)
{
    struct accel_desc d;
    uint32_t idx;

    (void)state;
    d = desc(ACCEL_OP_COUNT, 64, DATA0, DATA0 + 64);
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_OPCODE);
    d.opcode = 0xff;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_OPCODE);
    assert_int_equal(comp_of(&F.t, idx)->opcode, 0xff);

    d = desc(ACCEL_OP_MEMMOVE, 64, DATA0, DATA0 + 64);
    d.flags |= 0x80;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 1);
    d.flags = ACCEL_DF_COMP;
    d.rsvd0 = 1;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 2);
    d.rsvd0 = 0;
    d.rsvd1 = 5;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 0x34);
    d.rsvd1 = 0;
    d.size = 0;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 4);
    d.size = accel_engine_max_transfer(F.e) + 1;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 4);
    /* Overlapping COPY_CRC / DUALCAST operands are refused. */
    d = desc(ACCEL_OP_COPY_CRC, 4096, DATA0, DATA0 + 100);
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 0x10);
    d = desc(ACCEL_OP_DUALCAST, 4096, DATA0, DATA0 + 8192);
    d.dst2 = DATA0 + 8192 + 4095;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 0x18);
    assert_int_equal(F.t.nerr, 0);
}

/* Errors with no record to go to reach the error callback. */
static void
test_errors_without_record(void **state)
{
    struct accel_desc d = desc(ACCEL_OP_MEMMOVE, 64, HOLE, DATA0);
    uint32_t idx;

    (void)state;
    d.flags = 0; /* no completion record */
    tq_submit(&F.t, d);
    /* The completion address is unmapped. */
    d = desc(ACCEL_OP_NOP, 0, 0, 0);
    d.comp = HOLE + 32;
    tq_submit(&F.t, d);
    /* Misaligned completion address: the record cannot be written. */
    d.comp = DATA0 + 8;
    d.opcode = ACCEL_OP_MEMMOVE;
    d.size = 64;
    d.src = DATA0 + 4096;
    d.dst = DATA0 + 8192;
    memset(G(DATA0 + 8192), 0x11, 64);
    tq_submit(&F.t, d);
    /* A success without a record reports nothing. */
    d = desc(ACCEL_OP_NOP, 0, 0, 0);
    d.flags = 0;
    tq_submit(&F.t, d);
    idx = tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(F.t.nerr, 3);
    assert_int_equal(F.t.errs[0].code, ACCEL_ST_ADDR_FAULT);
    assert_int_equal(F.t.errs[0].addr, HOLE);
    assert_int_equal(F.t.errs[0].opcode, ACCEL_OP_MEMMOVE);
    assert_int_equal(F.t.errs[0].index, 0);
    assert_int_equal(F.t.errs[1].code, ACCEL_ERR_COMP_FAULT);
    assert_int_equal(F.t.errs[1].addr, HOLE + 32);
    assert_int_equal(F.t.errs[1].index, 1);
    assert_int_equal(F.t.errs[2].code, ACCEL_ST_INVALID_FIELD);
    assert_int_equal(F.t.errs[2].addr, 0x20);
    /* ... and the invalid descriptor did not run. */
    assert_int_equal(*(uint8_t *)G(DATA0 + 8192), 0x11);
}

/* TAIL beyond HEAD + size halts the queue; the ring is not touched
 * after; disable recovers it. */
static void
test_bad_index(void **state)
{
    struct accel_queue_status st;
    uint32_t idx;

    (void)state;
    idx = tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    __atomic_store_n((uint32_t *)G(F.t.ring + ACCEL_RING_TAIL),
                     F.t.tail + F.t.size + 1, __ATOMIC_RELEASE);
    accel_queue_doorbell(F.t.q);
    accel_engine_poll(F.e, 4);
    accel_queue_status(F.t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_ERROR);
    assert_int_equal(st.error, ACCEL_QERR_BAD_INDEX);
    assert_int_equal(st.error_addr, F.t.tail + F.t.size + 1);
    assert_int_equal(F.t.nerr, 1);
    assert_int_equal(F.t.errs[0].code, ACCEL_ERR_BAD_INDEX);
    /* Halted: doorbells do nothing, enable refuses until disabled. */
    accel_queue_doorbell(F.t.q);
    assert_int_equal(accel_engine_poll(F.e, 4), 0);
    {
        struct accel_queue_config cfg = { .ring = F.t.ring,
                                          .size = 64,
                                          .priority = 1 };

        assert_int_equal(accel_queue_enable(F.t.q, &cfg), -EBUSY);
    }
    accel_queue_disable(F.t.q, true);
    accel_queue_status(F.t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_DISABLED);
    tq_enable(&F.t, 64, 1, 0, 0);
    idx = tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
}

/* The ring's memory disappears under an enabled queue. */
static void
test_ring_fault(void **state)
{
    struct accel_queue_status st;

    (void)state;
    tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    F.t.no_map = true;
    accel_engine_poll(F.e, 4);
    F.t.no_map = false;
    accel_queue_status(F.t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_ERROR);
    assert_int_equal(st.error, ACCEL_QERR_RING_FAULT);
    assert_int_equal(F.t.nerr, 1);
    assert_int_equal(F.t.errs[0].code, ACCEL_ERR_RING_FAULT);
    /* The first ring access of the visit: clearing DOORBELL_NEEDED. */
    assert_int_equal(F.t.errs[0].addr, F.t.ring + ACCEL_RING_DOORBELL_NEEDED);
    assert_int_equal(st.error_addr, F.t.ring + ACCEL_RING_DOORBELL_NEEDED);
    accel_queue_disable(F.t.q, false);
}

static void
test_queue_config(void **state)
{
    struct accel_queue_config cfg = {
        .ring = RING_AREA(1),
        .size = 64,
        .priority = 1,
    };
    struct accel_queue_status st;
    struct tq t;

    (void)state;
    tq_claim(&t, F.e, 1);
#define EXPECT_REFUSED(field, value, rc, why)                                  \
    do {                                                                       \
        struct accel_queue_config c = cfg;                                     \
        c.field = value;                                                       \
        assert_int_equal(accel_queue_enable(t.q, &c), rc);                     \
        accel_queue_status(t.q, &st);                                          \
        assert_int_equal(st.state, ACCEL_QS_DISABLED);                         \
        assert_int_equal(st.error, why);                                       \
    } while (0)
    EXPECT_REFUSED(size, 0, -EINVAL, ACCEL_QERR_RING_SIZE);
    EXPECT_REFUSED(size, 3, -EINVAL, ACCEL_QERR_RING_SIZE);
    EXPECT_REFUSED(size, ACCEL_RING_MAX * 2, -EINVAL, ACCEL_QERR_RING_SIZE);
    EXPECT_REFUSED(ring, RING_AREA(1) + 32, -EINVAL, ACCEL_QERR_RING_ALIGN);
    EXPECT_REFUSED(priority, 0, -EINVAL, ACCEL_QERR_PRIORITY);
    EXPECT_REFUSED(priority, 16, -EINVAL, ACCEL_QERR_PRIORITY);
    EXPECT_REFUSED(coal_count, 70000, -EINVAL, ACCEL_QERR_COALESCE);
    EXPECT_REFUSED(coal_usec, 2000000, -EINVAL, ACCEL_QERR_COALESCE);
    EXPECT_REFUSED(ring, HOLE, -EFAULT, ACCEL_QERR_RING_FAULT);
    EXPECT_REFUSED(ring, UINT64_MAX - 63, -EINVAL, ACCEL_QERR_RING_FAULT);
    /* Read-only memory cannot hold a ring (HEAD is written). */
    EXPECT_REFUSED(ring, RRO, -EFAULT, ACCEL_QERR_RING_FAULT);
    /* Partly mapped: the error names the first unmapped address. */
    {
        struct accel_queue_config c = cfg;

        c.ring = R1 + R1_SIZE - 4096;
        assert_int_equal(accel_queue_enable(t.q, &c), -EFAULT);
        accel_queue_status(t.q, &st);
        assert_int_equal(st.error_addr, R1 + R1_SIZE);
    }
#undef EXPECT_REFUSED
    /* A ring across two host buffers works (per-access mapping). */
    cfg.ring = R1 - 2048;
    cfg.size = 64;
    assert_int_equal(accel_queue_enable(t.q, &cfg), 0);
    assert_int_equal(accel_queue_enable(t.q, &cfg), -EBUSY);
    accel_queue_status(t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_ENABLED);
    assert_int_equal(st.error, 0);
    assert_true(st.sleeping);
    t.ring = cfg.ring;
    t.size = 64;
    t.tail = 0;
    t.published = 0;
    {
        uint32_t i, idx = 0;

        for (i = 0; i < 200; i++) /* wraps the ring three times */
            idx = tq_submit(&t, desc(ACCEL_OP_FILL, 16, 0, DATA0 + i * 16));
        assert_int_equal(tq_wait(&t, idx), ACCEL_ST_SUCCESS);
        tq_drain(&t);
    }
    tq_release(&t);
}

static void
test_claims(void **state)
{
    struct accel_queue *q[8] = { 0 }, *x = NULL;
    struct tq dummy;
    unsigned int i;

    (void)state;
    memset(&dummy, 0, sizeof(dummy));
    assert_int_equal(accel_engine_nr_queues(F.e), 8);
    assert_int_equal(accel_engine_free_queues(F.e), 7); /* F.t holds 0 */
    assert_int_equal(accel_queue_claim(F.e, 0, &tq_ops, &dummy, &x), -EBUSY);
    assert_int_equal(accel_queue_claim(F.e, 8, &tq_ops, &dummy, &x), -EINVAL);
    for (i = 0; i < 7; i++) {
        assert_int_equal(accel_queue_claim(F.e, -1, &tq_ops, &dummy, &q[i]), 0);
        assert_int_equal(accel_queue_index(q[i]), i + 1);
    }
    assert_int_equal(accel_queue_claim(F.e, -1, &tq_ops, &dummy, &x), -ENOSPC);
    assert_null(x);
    assert_int_equal(accel_engine_free_queues(F.e), 0);
    accel_queue_release(q[3]);
    assert_int_equal(accel_engine_free_queues(F.e), 1);
    assert_int_equal(accel_queue_claim(F.e, -1, &tq_ops, &dummy, &x), 0);
    assert_int_equal(accel_queue_index(x), 4);
    q[3] = x;
    for (i = 0; i < 7; i++)
        accel_queue_release(q[i]);
    accel_queue_release(NULL);
    assert_int_equal(accel_engine_free_queues(F.e), 7);
}

static void
test_engine_config(void **state)
{
    struct accel_engine_config cfg = { .manual = true };
    struct accel_engine *e = (struct accel_engine *)1;

    (void)state;
    cfg.nr_queues = ACCEL_MAX_QUEUES + 1;
    assert_int_equal(accel_engine_create(&cfg, &e), -EINVAL);
    assert_null(e);
    cfg.nr_queues = 0;
    cfg.max_transfer = 100;
    assert_int_equal(accel_engine_create(&cfg, &e), -EINVAL);
    cfg.max_transfer = 0;
    cfg.nr_threads = ACCEL_MAX_THREADS + 1;
    cfg.manual = false;
    assert_int_equal(accel_engine_create(&cfg, &e), -EINVAL);
    cfg.nr_threads = 0;
    assert_int_equal(accel_engine_create(&cfg, &e), 0);
    assert_int_equal(accel_engine_nr_queues(e), ACCEL_DEFAULT_QUEUES);
    assert_int_equal(accel_engine_max_transfer(e), ACCEL_DEFAULT_MAX_TRANSFER);
    accel_engine_destroy(e);
    accel_engine_destroy(NULL);
}

/* ---------------------------------------------------------------- */
/* Disable, abort, coalescing                                        */

static void
test_disable_aborts(void **state)
{
    struct accel_queue_status st;
    uint32_t i, idx[10];

    (void)state;
    for (i = 0; i < 10; i++)
        idx[i] = tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    accel_engine_poll(F.e, 0);
    accel_queue_disable(F.t.q, true);
    for (i = 0; i < 10; i++) {
        assert_int_equal(comp_status(&F.t, idx[i]), ACCEL_ST_ABORTED);
        assert_int_equal(comp_of(&F.t, idx[i])->opcode, ACCEL_OP_NOP);
    }
    assert_int_equal(ring_word(&F.t, ACCEL_RING_HEAD), F.t.tail);
    accel_queue_status(F.t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_DISABLED);
    assert_int_equal(st.failed, 10);
    assert_int_equal(F.t.nerr, 0); /* aborts are not errors */

    /* Reset semantics: pending work is dropped, memory untouched. */
    tq_enable(&F.t, 64, 1, 0, 0);
    for (i = 0; i < 5; i++)
        idx[i] = tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    accel_queue_disable(F.t.q, false);
    for (i = 0; i < 5; i++)
        assert_int_equal(comp_status(&F.t, idx[i]), ACCEL_ST_NONE);
    assert_int_equal(ring_word(&F.t, ACCEL_RING_HEAD), 0);
    /* Doorbells on a disabled queue do nothing. */
    accel_queue_doorbell(F.t.q);
    assert_int_equal(accel_engine_poll(F.e, 4), 0);
    for (i = 0; i < 5; i++)
        assert_int_equal(comp_status(&F.t, idx[i]), ACCEL_ST_NONE);
    tq_enable(&F.t, 64, 1, 0, 0);
}

/* Disable while a batch runs: the batch stops between elements. */
struct disabler {
    struct tq *t;
    atomic_int go;
};

static void *
disable_thread(void *arg)
{
    struct disabler *d = arg;

    int64_t deadline = now_ms() + TIMEOUT_MS;

    /* Until the batch has started (its first element completed). */
    while (__atomic_load_n(&elem_comp(0)->status, __ATOMIC_ACQUIRE) ==
               ACCEL_ST_NONE &&
           now_ms() < deadline)
        ;
    atomic_store(&d->go, 1);
    accel_queue_disable(d->t->q, true);
    return NULL;
}

static void
test_disable_during_batch(void **state)
{
    struct accel_desc b = desc(ACCEL_OP_BATCH, 256, BATCH_LIST, 0);
    struct disabler dis = { &F.t, 0 };
    pthread_t th;
    unsigned int i, ok = 0, aborted = 0;
    uint32_t idx;

    (void)state;
    for (i = 0; i < 256; i++)
        put_elem(i, desc(ACCEL_OP_MEMMOVE, 256 * 1024, DATA0,
                         DATA0 + MB + (i % 4) * 256 * 1024ull));
    idx = tq_submit(&F.t, b);
    tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(pthread_create(&th, NULL, disable_thread, &dis), 0);
    accel_engine_poll(F.e, 1); /* a visit: the batch runs here */
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&dis.go), 1);
    assert_int_equal(comp_status(&F.t, idx) == ACCEL_ST_ABORTED ||
                         comp_status(&F.t, idx) == ACCEL_ST_SUCCESS,
                     1);
    for (i = 0; i < 256; i++) {
        uint8_t s = elem_comp(i)->status;

        assert_true(s == ACCEL_ST_SUCCESS || s == ACCEL_ST_ABORTED);
        ok += s == ACCEL_ST_SUCCESS;
        aborted += s == ACCEL_ST_ABORTED;
        /* Aborted elements come after completed ones. */
        if (s == ACCEL_ST_SUCCESS)
            assert_int_equal(aborted, 0);
    }
    assert_int_equal(ok + aborted, 256);
    if (comp_status(&F.t, idx) == ACCEL_ST_ABORTED)
        assert_int_equal(comp_of(&F.t, idx)->bytes, ok);
    /* The NOP after it was aborted by the disable. */
    assert_int_equal(comp_status(&F.t, idx + 1), ACCEL_ST_ABORTED);
    print_message("disable during batch: %u done, %u aborted\n", ok, aborted);
    tq_enable(&F.t, 64, 1, 0, 0);
}

static void
test_coalescing(void **state)
{
    struct accel_desc d = desc(ACCEL_OP_NOP, 0, 0, 0);
    uint32_t i, idx = 0;

    (void)state;
    d.flags |= ACCEL_DF_INTR;
    /* Each completion: 16 interrupts. */
    for (i = 0; i < 16; i++)
        idx = tq_post(&F.t, d, false);
    tq_kick(&F.t);
    tq_wait(&F.t, idx);
    accel_engine_poll(F.e, 2);
    assert_int_equal(atomic_load(&F.t.notifies), 16);

    /* Every 4th: 16 completions in one visit give 4. */
    accel_queue_disable(F.t.q, true);
    tq_enable(&F.t, 64, 1, 4, 0);
    atomic_store(&F.t.notifies, 0);
    for (i = 0; i < 16; i++)
        idx = tq_post(&F.t, d, false);
    tq_kick(&F.t);
    tq_wait(&F.t, idx);
    assert_int_equal(atomic_load(&F.t.notifies), 4);
    /* 3 with a count of 4: signalled when the queue runs empty. */
    atomic_store(&F.t.notifies, 0);
    for (i = 0; i < 3; i++)
        idx = tq_post(&F.t, d, false);
    tq_kick(&F.t);
    tq_wait(&F.t, idx);
    assert_int_equal(atomic_load(&F.t.notifies), 1);
    /* Descriptors without INTR signal nothing. */
    atomic_store(&F.t.notifies, 0);
    idx = tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    tq_wait(&F.t, idx);
    accel_engine_poll(F.e, 2);
    assert_int_equal(atomic_load(&F.t.notifies), 0);
}

/* ---------------------------------------------------------------- */
/* Scheduling                                                        */

/*
 * Two loaded queues with equal descriptors: over the time the priority-4
 * queue runs 100 descriptors, the priority-1 queue runs about a quarter
 * as many; with equal priorities, about as many. Deterministic (manual).
 */
static unsigned int
race(uint32_t prio_a, uint32_t prio_b)
{
    struct tq a, b;
    uint32_t i, last_b = 0;
    unsigned int done_a;

    tq_claim(&a, F.e, 1);
    tq_claim(&b, F.e, 2);
    tq_enable(&a, 512, prio_a, 0, 0);
    tq_enable(&b, 128, prio_b, 0, 0);
    for (i = 0; i < 500; i++)
        tq_post(&a, desc(ACCEL_OP_MEMMOVE, 4096, DATA0, DATA0 + MB), false);
    for (i = 0; i < 100; i++)
        last_b = tq_post(
            &b, desc(ACCEL_OP_MEMMOVE, 4096, DATA0 + 8192, DATA0 + 2 * MB),
            false);
    tq_kick(&a);
    tq_kick(&b);
    while (comp_status(&b, last_b) == ACCEL_ST_NONE)
        assert_true(accel_engine_poll(F.e, 1) > 0);
    done_a = ring_word(&a, ACCEL_RING_HEAD);
    tq_release(&a);
    tq_release(&b);
    return done_a;
}

static void
test_fairness_priority(void **state)
{
    unsigned int n;

    (void)state;
    n = race(1, 4);
    print_message("prio 1 vs 4: %u vs 100\n", n);
    assert_in_range(n, 20, 30);
    n = race(4, 1);
    print_message("prio 4 vs 1: %u vs 100\n", n);
    assert_in_range(n, 380, 420);
    n = race(2, 2);
    print_message("prio 2 vs 2: %u vs 100\n", n);
    assert_in_range(n, 90, 110);
}

/*
 * One engine thread; a queue with a deep backlog (256 copies of 2 MiB),
 * then another with 16 of the same size, equal priorities. The second
 * finishes while most of the backlog is still queued; an engine serving
 * the busy queue until it drains (FIFO) would finish the backlog first.
 * Both are queued up front, so the test thread's own scheduling only
 * delays the final look at HEAD.
 */
static void
test_no_starvation(void **state)
{
    struct tq flood;
    uint32_t i, last = 0, head;
    int64_t deadline;

    (void)state;
    tq_claim(&flood, F.e, 1);
    tq_enable(&flood, 256, 1, 0, 0);
    for (i = 0; i < 256; i++) {
        struct accel_desc d = desc(ACCEL_OP_MEMMOVE, 2 * MB, DATA0, R1);

        d.flags = 0;
        tq_post(&flood, d, false);
    }
    for (i = 0; i < 16; i++)
        last = tq_post(&F.t,
                       desc(ACCEL_OP_MEMMOVE, 2 * MB, R1 + 2 * MB, R1 + 4 * MB),
                       false);
    tq_kick(&flood);
    tq_kick(&F.t);
    deadline = now_ms() + TIMEOUT_MS;
    while (comp_status(&F.t, last) == ACCEL_ST_NONE)
        assert_true(now_ms() < deadline);
    head = ring_word(&flood, ACCEL_RING_HEAD);
    print_message("backlog done when the other queue finished: %u of 256\n",
                  head);
    assert_true(head < 160);
    accel_queue_disable(flood.q, true);
    tq_release(&flood);
}

/* ---------------------------------------------------------------- */
/* Threads: doorbells, event suppression, idle                      */

static uint64_t
cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool
sleeping(void *arg)
{
    struct tq *t = arg;
    struct accel_queue_status st;

    accel_queue_status(t->q, &st);
    return st.sleeping && ring_word(t, ACCEL_RING_DOORBELL_NEEDED) == 1;
}

static void
test_idle_sleeps_doorbell_wakes(void **state)
{
    struct accel_queue_status st;
    uint64_t c0, c1;
    uint32_t idx;

    (void)state;
    /* Enabled and idle: the engine asks for a doorbell. */
    assert_true(drive_until(F.e, false, sleeping, &F.t));
    c0 = cpu_ns();
    usleep(200 * 1000);
    c1 = cpu_ns();
    print_message("idle: %.2f ms CPU in 200 ms\n", (c1 - c0) / 1e6);
    /* Two idle engine threads and this sleeping one: well under 5%. */
    assert_true(c1 - c0 < 10 * 1000 * 1000);
    /* One doorbell wakes it. */
    accel_queue_status(F.t.q, &st);
    idx = tq_submit(&F.t, desc(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    {
        struct accel_queue_status st2;

        accel_queue_status(F.t.q, &st2);
        assert_int_equal(st2.doorbells, st.doorbells + 1);
    }
    /* And it goes back to sleep. */
    assert_true(drive_until(F.e, false, sleeping, &F.t));
}

/* Under load the driver rings (almost) never: the engine polls, and a
 * sleeping engine gets one doorbell, not one per descriptor posted
 * before it is awake. Without suppression every descriptor would ring. */
static void
test_event_suppression(void **state)
{
    struct accel_queue_status st;
    const uint32_t n = 20000;
    uint32_t i, idx = 0;

    (void)state;
    for (i = 0; i < n; i++) {
        struct accel_desc d = desc(ACCEL_OP_MEMMOVE, 64, DATA0, DATA0 + MB);

        d.flags = i % 1000 == 999 ? ACCEL_DF_COMP : 0;
        idx = tq_submit(&F.t, d);
    }
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    tq_drain(&F.t);
    accel_queue_status(F.t.q, &st);
    print_message("%u descriptors, %llu doorbells\n", n,
                  (unsigned long long)st.doorbells);
    assert_int_equal(st.completed, n);
    assert_true(st.doorbells < n / 1000);
}

/*
 * Unmap under load: a region disappears while several queues copy into
 * it. The unmap waits for the engine's holds, then frees the host buffer
 * (ASan catches any later access); descriptors after it fault.
 */
struct loader {
    struct tq *t;
    atomic_int stop;
    atomic_ulong ok, fault, other;
};

static void *
loader_thread(void *arg)
{
    struct loader *l = arg;
    struct tq *t = l->t;

    while (!atomic_load(&l->stop)) {
        uint32_t idx = t->tail;
        struct accel_desc d = {
            .opcode = ACCEL_OP_MEMMOVE,
            .flags = ACCEL_DF_COMP,
            .size = 128 * 1024,
            .src = DATA0 + t->slot * 128 * 1024ull,
            .dst = R1 + t->slot * 256 * 1024ull,
            .comp = comp_iova(t, idx),
        };
        int64_t deadline = now_ms() + TIMEOUT_MS;
        uint8_t s;

        while (t->tail - ring_word(t, ACCEL_RING_HEAD) >= t->size)
            usleep(10);
        memset(G(d.comp), 0, 32);
        memcpy(G(t->ring + ACCEL_RING_DESCS + (uint64_t)(idx % t->size) * 64),
               &d, sizeof(d));
        t->tail++;
        publish(t, t->tail - 1);
        while ((s = comp_status(t, idx)) == ACCEL_ST_NONE &&
               now_ms() < deadline)
            usleep(10);
        if (s == ACCEL_ST_SUCCESS)
            atomic_fetch_add(&l->ok, 1);
        else if (s == ACCEL_ST_ADDR_FAULT)
            atomic_fetch_add(&l->fault, 1);
        else
            atomic_fetch_add(&l->other, 1);
    }
    return NULL;
}

static bool
wait_count(atomic_ulong *c, unsigned long n)
{
    int64_t deadline = now_ms() + TIMEOUT_MS;

    while (atomic_load(c) < n)
        if (now_ms() > deadline)
            return false;
        else
            usleep(100);
    return true;
}

static void
test_unmap_under_load(void **state)
{
    struct tq t[3];
    struct loader l[3];
    pthread_t th[3];
    unsigned int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        tq_claim(&t[i], F.e, i + 1);
        tq_enable(&t[i], 16, 1, 0, 0);
        l[i] = (struct loader){ .t = &t[i] };
        assert_int_equal(pthread_create(&th[i], NULL, loader_thread, &l[i]), 0);
    }
    /* Load first: every queue has copied into R1. */
    for (i = 0; i < 3; i++)
        assert_true(wait_count(&l[i].ok, 5));
    assert_int_equal(mem_unmap(1), 0); /* R1: every destination */
    for (i = 0; i < 3; i++)
        assert_true(wait_count(&l[i].fault, 5));
    for (i = 0; i < 3; i++) {
        atomic_store(&l[i].stop, 1);
        assert_int_equal(pthread_join(th[i], NULL), 0);
        print_message("queue %u: %lu ok, %lu faulted, %lu other\n", i + 1,
                      atomic_load(&l[i].ok), atomic_load(&l[i].fault),
                      atomic_load(&l[i].other));
        assert_int_equal(atomic_load(&l[i].other), 0);
        tq_release(&t[i]);
    }
}

/* Two engine threads, several queues with producers, data verified. */
struct worker_arg {
    struct tq *t;
    unsigned int rounds;
    unsigned int bad;
};

static void *
verify_thread(void *arg)
{
    struct worker_arg *w = arg;
    struct tq *t = w->t;
    uint64_t src = DATA0 + t->slot * 64 * 1024ull;
    uint64_t dst = R1 + t->slot * 64 * 1024ull;
    unsigned int r;

    for (r = 0; r < w->rounds; r++) {
        uint32_t n = 1 + (r * 7919u) % 65535u, idx = t->tail;
        struct accel_desc d = {
            .opcode = ACCEL_OP_COPY_CRC,
            .flags = ACCEL_DF_COMP,
            .size = n,
            .src = src,
            .dst = dst,
            .comp = comp_iova(t, idx),
        };
        int64_t deadline = now_ms() + TIMEOUT_MS;

        fill_rand(G(src), n, r + t->slot * 1000);
        memset(G(d.comp), 0, 32);
        memcpy(G(t->ring + ACCEL_RING_DESCS + (uint64_t)(idx % t->size) * 64),
               &d, sizeof(d));
        t->tail++;
        publish(t, t->tail - 1);
        while (comp_status(t, idx) == ACCEL_ST_NONE && now_ms() < deadline)
            sched_yield();
        if (comp_status(t, idx) != ACCEL_ST_SUCCESS ||
            memcmp(G(src), G(dst), n) != 0 ||
            comp_of(t, idx)->value != crc_ref(0, G(src), n))
            w->bad++;
    }
    return NULL;
}

static void
test_threads_stress(void **state)
{
    struct tq t[4];
    struct worker_arg w[4];
    pthread_t th[4];
    unsigned int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        tq_claim(&t[i], F.e, i + 1);
        tq_enable(&t[i], 8, 1 + i, 0, 0);
        w[i] = (struct worker_arg){ .t = &t[i], .rounds = 300 };
        assert_int_equal(pthread_create(&th[i], NULL, verify_thread, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
        tq_release(&t[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crc32c_vectors, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crc32c_hw_soft_agree, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crc32c_engine_both_paths,
                                        setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_memmove, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_memmove_overlap, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fill, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_compare, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_compare_pattern, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_crc_ops, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_dualcast, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_nop_drain, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_addr_faults, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_visit_spans, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_errors_without_record,
                                        setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_bad_index, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_ring_fault, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_config, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_claims, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_engine_config, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disable_aborts, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disable_during_batch, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_coalescing, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fairness_priority, setup_manual,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_starvation, setup_one_thread,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idle_sleeps_doorbell_wakes,
                                        setup_threads, teardown),
        cmocka_unit_test_setup_teardown(test_event_suppression,
                                        setup_threads_long_poll, teardown),
        cmocka_unit_test_setup_teardown(test_unmap_under_load, setup_threads,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_threads_stress, setup_threads,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
