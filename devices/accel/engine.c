/*
 * The accel engine: queue scheduling (deficit round robin weighted by
 * priority), the sleep/doorbell protocol with event suppression, and the
 * operations themselves over translated memory.
 *
 * Memory: every byte the engine touches comes from the queue's map
 * callback and is held until the descriptor (or ring access) is done, so an
 * embedder that waits for its holds (lib/dev's DMA_UNMAP does) never frees
 * memory under a running descriptor. All operands of a descriptor are
 * translated before the first byte is written: an address fault leaves
 * memory as it was.
 *
 * Concurrency: the engine lock guards the scheduling fields (active, busy,
 * kick, rr) and the claim/error fields. A queue is served by at most one
 * thread at a time (the one that set busy), so per-queue serving state
 * needs no lock and descriptors of one queue complete in ring order. The
 * state field is atomic so a serving thread sees a disable between two
 * descriptors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "engine.h"

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli */

/* Descriptor field offsets, reported in INVALID_FIELD completions. */
#define OFF_FLAGS offsetof(struct accel_desc, flags)
#define OFF_RSVD0 offsetof(struct accel_desc, rsvd0)
#define OFF_SIZE offsetof(struct accel_desc, size)
#define OFF_SRC offsetof(struct accel_desc, src)
#define OFF_DST offsetof(struct accel_desc, dst)
#define OFF_DST2 offsetof(struct accel_desc, dst2)
#define OFF_COMP offsetof(struct accel_desc, comp)
#define OFF_RSVD1 offsetof(struct accel_desc, rsvd1)

/* Operands per descriptor at most (DUALCAST: src, dst, dst2). */
#define MAX_OPERANDS 3
/* FILL / COMPARE_PATTERN work in blocks of this many pattern bytes. */
#define PATTERN_BLOCK 256

struct operand {
    unsigned int n;      /* segments */
    struct accel_map *s; /* borrowed from the worker's scratch */
};

/* One thread's context (or the accel_engine_poll() caller's). */
struct worker {
    struct accel_engine *e;
    pthread_t thread;
    bool started;
    struct accel_map *scratch; /* MAX_OPERANDS * e->seg_cap */
};

/*
 * A span an embedder's hold keeps translated, kept for the rest of one
 * visit: the descriptors of a visit mostly touch one or two guest
 * mappings, and a map/unmap pair per operand costs a few locked
 * instructions each, which stall on the stores to lines the driver's CPU
 * owns. Few entries: a ring, its records and the data buffers.
 */
#define VISIT_MAPS 4

struct visit_map {
    uint64_t lo, hi; /* [lo, hi) */
    uint8_t *base;   /* host address of lo */
    int prot;        /* what the hold was granted for */
    struct accel_map hold;
};

struct accel_queue {
    struct accel_engine *e;
    unsigned int index;

    /* Engine lock. */
    bool claimed;
    bool active; /* runnable: polled by the engine */
    bool busy;   /* a thread serves it now */
    bool kick;   /* a doorbell arrived while active */
    uint8_t error;
    uint64_t error_addr;

    const struct accel_queue_ops *ops; /* borrowed */
    void *opaque;
    /* Written by the control thread while disabled; read by the serving
     * thread after it picked the queue under the lock. */
    struct accel_queue_config cfg;
    _Atomic int state; /* enum accel_queue_state */

    /* The serving thread's (busy holder's), handed over by the lock. */
    struct visit_map vmap[VISIT_MAPS]; /* spans held for this visit */
    unsigned int nvmap;
    bool visiting; /* serve() runs: map may keep spans */
    _Atomic uint32_t head;
    int64_t deficit;
    bool published; /* DOORBELL_NEEDED = 1 is in the ring */
    uint64_t idle_since_ns;
    uint32_t intr_pending;
    uint64_t intr_first_ns;

    _Atomic uint64_t completed, bytes, failed, notifies, doorbells;
};

struct accel_engine {
    pthread_mutex_t lock;
    pthread_cond_t work; /* threads wait for a runnable queue */
    pthread_cond_t idle; /* disable waits for a busy queue */
    bool lock_init, work_init, idle_init;
    bool stop;
    unsigned int sleepers;
    unsigned int idle_waiters;
    unsigned int rr; /* round-robin cursor */

    unsigned int nq;
    struct accel_queue *q;
    unsigned int nthreads;
    struct worker *workers;
    struct worker poller; /* accel_engine_poll()'s context */

    uint32_t max_transfer;
    unsigned int seg_cap; /* segments per operand */
    uint64_t poll_ns;
    bool no_poll;
    bool crc_hw;
    const struct umdev_logger *log;
    uint32_t crc_table[8][256];
};

/* What a descriptor came to. */
struct result {
    uint8_t status;
    uint8_t cmp;
    uint32_t bytes;
    uint64_t info;
    uint64_t value;
    uint64_t data_bytes; /* for the statistics */
    uint64_t cost;       /* scheduling cost */
};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ------------------------------------------------------------------ */
/* CRC32C                                                              */

static void
crc_table_init(uint32_t t[8][256])
{
    unsigned int i, k;

    for (i = 0; i < 256; i++) {
        uint32_t c = i;

        for (k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        t[0][i] = c;
    }
    /* t[k][i]: byte i followed by k zero bytes (slicing by 8). */
    for (i = 0; i < 256; i++)
        for (k = 1; k < 8; k++)
            t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
}

/* The raw register update (no inversions). */
static uint32_t
crc_soft_update(const uint32_t t[8][256], uint32_t crc, const uint8_t *p,
                size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        v ^= crc;
        crc = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^
              t[4][(v >> 24) & 0xff] ^ t[3][(v >> 32) & 0xff] ^
              t[2][(v >> 40) & 0xff] ^ t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
        p += 8;
        len -= 8;
    }
#endif
    while (len > 0) {
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw_update(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c;

    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = _mm_crc32_u8(crc, *p++);
        len--;
    }
    c = crc;
    while (len >= 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len > 0) {
        crc = _mm_crc32_u8(crc, *p++);
        len--;
    }
    return crc;
}

static bool
cpu_has_crc32(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#else
static bool
cpu_has_crc32(void)
{
    return false;
}
#endif

bool
accel_crc32c_hw(uint32_t crc, const void *buf, size_t len, uint32_t *out)
{
#if defined(__x86_64__)
    if (!cpu_has_crc32())
        return false;
    *out = ~crc_hw_update(~crc, buf, len);
    return true;
#else
    (void)crc;
    (void)buf;
    (void)len;
    (void)out;
    return false;
#endif
}

uint32_t
accel_crc32c_soft(const struct accel_engine *e, uint32_t crc, const void *buf,
                  size_t len)
{
    return ~crc_soft_update(e->crc_table, ~crc, buf, len);
}

/* Raw update with the engine's choice. */
static uint32_t
crc_update(const struct accel_engine *e, uint32_t crc, const uint8_t *p,
           size_t len)
{
#if defined(__x86_64__)
    if (e->crc_hw)
        return crc_hw_update(crc, p, len);
#endif
    return crc_soft_update(e->crc_table, crc, p, len);
}

uint32_t
accel_crc32c(const struct accel_engine *e, uint32_t crc, const void *buf,
             size_t len)
{
    return ~crc_update(e, ~crc, buf, len);
}

/* ------------------------------------------------------------------ */
/* Memory                                                              */

static void
seg_put(struct accel_queue *q, struct accel_map *m)
{
    if (!m->borrowed)
        q->ops->unmap(q->opaque, m);
    m->borrowed = false;
}

/* The embedder's map, or a span held earlier in this visit. */
static int
seg_get(struct accel_queue *q, uint64_t addr, uint64_t len, int prot,
        struct accel_map *m)
{
    struct visit_map *v;
    unsigned int i;
    uint64_t off;
    int rc;

    if (q->visiting) {
        for (i = 0; i < q->nvmap; i++) {
            v = &q->vmap[i];
            if ((prot & ~v->prot) != 0 || addr < v->lo || addr >= v->hi)
                continue;
            m->ptr = v->base + (addr - v->lo);
            m->len = len < v->hi - addr ? len : v->hi - addr;
            m->borrowed = true;
            return 0;
        }
    }
    m->span = m->span_len = 0;
    m->borrowed = false;
    rc = q->ops->map(q->opaque, addr, len, prot, m);
    if (rc < 0 || !q->visiting || q->nvmap == VISIT_MAPS || m->span_len == 0)
        return rc;
    off = addr - m->span;
    /* Only a span that plainly contains what map returned is kept. */
    if (addr < m->span || off >= m->span_len || m->len == 0 ||
        m->len > m->span_len - off || m->span_len % ACCEL_MAP_GRANULE != 0 ||
        m->span % ACCEL_MAP_GRANULE != 0 || m->span + m->span_len < m->span)
        return rc;
    v = &q->vmap[q->nvmap++];
    v->lo = m->span;
    v->hi = m->span + m->span_len;
    v->base = (uint8_t *)m->ptr - off;
    v->prot = prot;
    v->hold = *m;
    m->borrowed = true; /* the visit owns the hold now */
    return rc;
}

static void
visit_begin(struct accel_queue *q)
{
    q->nvmap = 0;
    q->visiting = true;
}

/* Return the spans the visit held: a DMA unmap may be waiting for them. */
static void
visit_end(struct accel_queue *q)
{
    while (q->nvmap > 0)
        q->ops->unmap(q->opaque, &q->vmap[--q->nvmap].hold);
    q->visiting = false;
}

/* Map exactly @len bytes at @addr as one piece (ring lines, descriptors
 * and completion records never cross a page). */
static void *
map_small(struct accel_queue *q, uint64_t addr, uint64_t len, int prot,
          struct accel_map *m)
{
    if (addr + len < addr)
        return NULL;
    if (seg_get(q, addr, len, prot, m) < 0)
        return NULL;
    if (m->len != len) {
        seg_put(q, m);
        return NULL;
    }
    return m->ptr;
}

static void
operand_put(struct accel_queue *q, struct operand *o)
{
    while (o->n > 0)
        seg_put(q, &o->s[--o->n]);
}

/* Translate and hold [addr, addr + len) as segments. On a fault nothing
 * is held and *@fault is the first address that failed. */
static int
operand_get(struct accel_queue *q, struct operand *o, uint64_t addr,
            uint64_t len, int prot, uint64_t *fault)
{
    unsigned int cap = q->e->seg_cap;

    o->n = 0;
    if (addr + len < addr) {
        *fault = addr;
        return -EFAULT;
    }
    while (len > 0) {
        struct accel_map *m = &o->s[o->n];

        if (o->n == cap || seg_get(q, addr, len, prot, m) < 0)
            goto fault;
        if (m->len == 0 || m->len > len) {
            seg_put(q, m); /* the embedder broke its contract */
            goto fault;
        }
        o->n++;
        addr += m->len;
        len -= m->len;
    }
    return 0;
fault:
    *fault = addr;
    operand_put(q, o);
    return -EFAULT;
}

/* A forward cursor over an operand's segments. */
struct cur {
    const struct operand *o;
    unsigned int i;
    uint64_t off;
};

static uint64_t
cur_avail(const struct cur *c)
{
    return c->o->s[c->i].len - c->off;
}

static uint8_t *
cur_ptr(const struct cur *c)
{
    return (uint8_t *)c->o->s[c->i].ptr + c->off;
}

static void
cur_advance(struct cur *c, uint64_t n)
{
    c->off += n;
    if (c->off == c->o->s[c->i].len && c->i + 1 < c->o->n) {
        c->i++;
        c->off = 0;
    }
}

static uint64_t
min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Whether [a, a+len) and [b, b+len) share an address (no wrap: the
 * operands translated). */
static bool
overlap(uint64_t a, uint64_t b, uint64_t len)
{
    return a < b + len && b < a + len;
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */

static void
op_memmove(const struct operand *src, const struct operand *dst, uint64_t len,
           bool backward)
{
    if (!backward) {
        struct cur s = { src, 0, 0 }, d = { dst, 0, 0 };

        while (len > 0) {
            uint64_t n = min64(min64(cur_avail(&s), cur_avail(&d)), len);

            memmove(cur_ptr(&d), cur_ptr(&s), n);
            cur_advance(&s, n);
            cur_advance(&d, n);
            len -= n;
        }
        return;
    }
    /* dst above an overlapping src: copy from the end so every source
     * byte is read before it is overwritten. */
    unsigned int si = src->n - 1, di = dst->n - 1;
    uint64_t so = src->s[si].len, dof = dst->s[di].len;

    while (len > 0) {
        uint64_t n = min64(min64(so, dof), len);

        memmove((uint8_t *)dst->s[di].ptr + dof - n,
                (uint8_t *)src->s[si].ptr + so - n, n);
        so -= n;
        dof -= n;
        len -= n;
        if (so == 0 && si > 0)
            so = src->s[--si].len;
        if (dof == 0 && di > 0)
            dof = dst->s[--di].len;
    }
}

/* 8 bytes of @pattern repeated, so that buf + (off % 8) starts the
 * pattern at byte offset off. */
static void
pattern_block(uint64_t pattern, uint8_t buf[PATTERN_BLOCK + 8])
{
    unsigned int i;

    for (i = 0; i < PATTERN_BLOCK + 8; i++)
        buf[i] = (uint8_t)(pattern >> (8 * (i % 8)));
}

static void
op_fill(const struct operand *dst, uint64_t len, uint64_t pattern)
{
    uint8_t pat[PATTERN_BLOCK + 8];
    struct cur d = { dst, 0, 0 };
    uint64_t done = 0;

    pattern_block(pattern, pat);
    while (done < len) {
        uint64_t n = min64(min64(cur_avail(&d), len - done), PATTERN_BLOCK);

        memcpy(cur_ptr(&d), pat + done % 8, n);
        cur_advance(&d, n);
        done += n;
    }
}

static uint64_t
first_diff(const uint8_t *a, const uint8_t *b, uint64_t n)
{
    uint64_t i;

    for (i = 0; i < n && a[i] == b[i]; i++)
        ;
    return i;
}

/* Return: true if equal; else *@at is the first differing offset. */
static bool
op_compare(const struct operand *a, const struct operand *b, uint64_t len,
           uint64_t *at)
{
    struct cur x = { a, 0, 0 }, y = { b, 0, 0 };
    uint64_t done = 0;

    while (done < len) {
        uint64_t n = min64(min64(cur_avail(&x), cur_avail(&y)), len - done);

        if (memcmp(cur_ptr(&x), cur_ptr(&y), n) != 0) {
            *at = done + first_diff(cur_ptr(&x), cur_ptr(&y), n);
            return false;
        }
        cur_advance(&x, n);
        cur_advance(&y, n);
        done += n;
    }
    return true;
}

static bool
op_compare_pattern(const struct operand *src, uint64_t len, uint64_t pattern,
                   uint64_t *at)
{
    uint8_t pat[PATTERN_BLOCK + 8];
    struct cur s = { src, 0, 0 };
    uint64_t done = 0;

    pattern_block(pattern, pat);
    while (done < len) {
        uint64_t n = min64(min64(cur_avail(&s), len - done), PATTERN_BLOCK);
        const uint8_t *p = pat + done % 8;

        if (memcmp(cur_ptr(&s), p, n) != 0) {
            *at = done + first_diff(cur_ptr(&s), p, n);
            return false;
        }
        cur_advance(&s, n);
        done += n;
    }
    return true;
}

/* CRC of src, copying it to dst (and dst2) on the way when given. */
static uint32_t
op_crc_copy(const struct accel_engine *e, const struct operand *src,
            const struct operand *dst, const struct operand *dst2, uint64_t len,
            uint32_t seed, bool crc)
{
    struct cur s = { src, 0, 0 }, d = { dst, 0, 0 }, d2 = { dst2, 0, 0 };
    uint32_t c = ~seed;

    while (len > 0) {
        uint64_t n = min64(cur_avail(&s), len);

        if (dst != NULL)
            n = min64(n, cur_avail(&d));
        if (dst2 != NULL)
            n = min64(n, cur_avail(&d2));
        if (crc)
            c = crc_update(e, c, cur_ptr(&s), n);
        if (dst != NULL) {
            memcpy(cur_ptr(&d), cur_ptr(&s), n);
            cur_advance(&d, n);
        }
        if (dst2 != NULL) {
            memcpy(cur_ptr(&d2), cur_ptr(&s), n);
            cur_advance(&d2, n);
        }
        cur_advance(&s, n);
        len -= n;
    }
    return ~c;
}

static void
res_invalid(struct result *r, uint64_t field)
{
    r->status = ACCEL_ST_INVALID_FIELD;
    r->info = field;
}

static void
res_fault(struct result *r, uint64_t addr)
{
    r->status = ACCEL_ST_ADDR_FAULT;
    r->info = addr;
}

/* A data operation: validate, translate every operand, run. */
static void
run_data(struct worker *w, struct accel_queue *q, const struct accel_desc *d,
         struct result *r)
{
    struct accel_engine *e = q->e;
    struct operand op[MAX_OPERANDS];
    uint64_t len = d->size, fault = 0, at = 0;
    unsigned int nops = 0, i;
    int prot[MAX_OPERANDS];
    uint64_t addr[MAX_OPERANDS];

    if (len == 0 || len > e->max_transfer) {
        res_invalid(r, OFF_SIZE);
        return;
    }
    switch (d->opcode) {
    case ACCEL_OP_MEMMOVE:
    case ACCEL_OP_COPY_CRC:
        addr[0] = d->src, prot[0] = ACCEL_MAP_READ;
        addr[1] = d->dst, prot[1] = ACCEL_MAP_WRITE;
        nops = 2;
        break;
    case ACCEL_OP_COMPARE:
        addr[0] = d->src, prot[0] = ACCEL_MAP_READ;
        addr[1] = d->dst, prot[1] = ACCEL_MAP_READ;
        nops = 2;
        break;
    case ACCEL_OP_DUALCAST:
        addr[0] = d->src, prot[0] = ACCEL_MAP_READ;
        addr[1] = d->dst, prot[1] = ACCEL_MAP_WRITE;
        addr[2] = d->dst2, prot[2] = ACCEL_MAP_WRITE;
        nops = 3;
        break;
    case ACCEL_OP_FILL:
        addr[0] = d->dst, prot[0] = ACCEL_MAP_WRITE;
        nops = 1;
        break;
    default: /* COMPARE_PATTERN, CRC32C */
        addr[0] = d->src, prot[0] = ACCEL_MAP_READ;
        nops = 1;
        break;
    }
    /* Copies whose results would depend on the order of the bytes are
     * refused rather than left unspecified (MEMMOVE handles overlap). */
    if (d->opcode == ACCEL_OP_COPY_CRC || d->opcode == ACCEL_OP_DUALCAST) {
        for (i = 1; i < nops; i++) {
            unsigned int j;

            for (j = 0; j < i; j++) {
                if (addr[i] + len >= addr[i] && addr[j] + len >= addr[j] &&
                    overlap(addr[i], addr[j], len)) {
                    res_invalid(r, i == 1 ? OFF_DST : OFF_DST2);
                    return;
                }
            }
        }
    }
    for (i = 0; i < nops; i++) {
        op[i].s = w->scratch + (size_t)i * e->seg_cap;
        if (operand_get(q, &op[i], addr[i], len, prot[i], &fault) < 0) {
            while (i > 0)
                operand_put(q, &op[--i]);
            res_fault(r, fault);
            return;
        }
    }

    r->status = ACCEL_ST_SUCCESS;
    r->bytes = (uint32_t)len;
    switch (d->opcode) {
    case ACCEL_OP_MEMMOVE:
        op_memmove(&op[0], &op[1], len,
                   d->dst > d->src && d->dst - d->src < len);
        break;
    case ACCEL_OP_FILL:
        op_fill(&op[0], len, d->pattern);
        break;
    case ACCEL_OP_COMPARE:
        if (!op_compare(&op[0], &op[1], len, &at)) {
            r->status = ACCEL_ST_MISMATCH;
            r->cmp = 1;
            r->bytes = (uint32_t)at;
            r->info = at;
        }
        break;
    case ACCEL_OP_COMPARE_PATTERN:
        if (!op_compare_pattern(&op[0], len, d->pattern, &at)) {
            r->status = ACCEL_ST_MISMATCH;
            r->cmp = 1;
            r->bytes = (uint32_t)at;
            r->info = at;
        }
        break;
    case ACCEL_OP_CRC32C:
        r->value = op_crc_copy(e, &op[0], NULL, NULL, len, d->crc_seed, true);
        break;
    case ACCEL_OP_COPY_CRC:
        r->value = op_crc_copy(e, &op[0], &op[1], NULL, len, d->crc_seed, true);
        break;
    case ACCEL_OP_DUALCAST:
        op_crc_copy(e, &op[0], &op[1], &op[2], len, 0, false);
        break;
    }
    r->data_bytes = len;
    r->cost += len;
    for (i = nops; i > 0; i--)
        operand_put(q, &op[i - 1]);
}

/* ------------------------------------------------------------------ */
/* Completion and interrupts                                           */

/*
 * Add to a statistic of @q. Only the thread serving the queue (or its
 * control thread while no engine thread does) writes these, handed over
 * by the engine lock, so a relaxed load and store do: a locked
 * read-modify-write per descriptor cost more than a 4 KiB copy's worth of
 * bookkeeping. Readers load them atomically.
 */
static void
stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static void
intr_flush(struct accel_queue *q)
{
    if (q->intr_pending == 0)
        return;
    q->intr_pending = 0;
    stat_add(&q->notifies, 1);
    if (q->ops->notify != NULL)
        q->ops->notify(q->opaque);
}

static void
intr_note(struct accel_queue *q)
{
    uint32_t count = q->cfg.coal_count ? q->cfg.coal_count : 1;

    if (q->intr_pending++ == 0 && q->cfg.coal_usec != 0)
        q->intr_first_ns = now_ns();
    if (q->intr_pending >= count)
        intr_flush(q);
    else if (q->cfg.coal_usec != 0 &&
             now_ns() - q->intr_first_ns >= q->cfg.coal_usec * 1000ull)
        intr_flush(q);
}

static void
report(struct accel_queue *q, uint8_t code, uint8_t opcode, uint32_t index,
       uint64_t addr)
{
    struct accel_error err = {
        .code = code,
        .opcode = opcode,
        .index = index,
        .addr = addr,
    };

    if (q->ops->error != NULL)
        q->ops->error(q->opaque, &err);
}

/* Publish @r for @d: the completion record (status byte last) or, with
 * nowhere to write it, the error callback; then the interrupt. */
static void
complete(struct accel_queue *q, const struct accel_desc *d, uint32_t index,
         const struct result *r)
{
    bool ok = r->status == ACCEL_ST_SUCCESS || r->status == ACCEL_ST_MISMATCH;
    bool want = (d->flags & ACCEL_DF_COMP) != 0;

    stat_add(&q->completed, 1);
    if (r->status != ACCEL_ST_SUCCESS)
        stat_add(&q->failed, 1);
    if (r->data_bytes != 0)
        stat_add(&q->bytes, r->data_bytes);
    if (want && d->comp % ACCEL_COMP_ALIGN == 0) {
        struct accel_comp c = {
            .status = ACCEL_ST_NONE,
            .result = r->cmp,
            .opcode = d->opcode,
            .bytes = r->bytes,
            .info = r->info,
            .value = r->value,
            .tag = d->tag,
        };
        struct accel_map m;
        uint8_t *p = map_small(q, d->comp, sizeof(c), ACCEL_MAP_WRITE, &m);

        if (p != NULL) {
            memcpy(p + 1, (const uint8_t *)&c + 1, sizeof(c) - 1);
            __atomic_store_n(p, r->status, __ATOMIC_RELEASE);
            seg_put(q, &m);
        } else {
            report(q, ACCEL_ERR_COMP_FAULT, d->opcode, index, d->comp);
        }
    } else if (want) {
        report(q, ACCEL_ST_INVALID_FIELD, d->opcode, index, OFF_COMP);
    } else if (!ok && r->status != ACCEL_ST_ABORTED) {
        report(q, r->status, d->opcode, index, r->info);
    }
    if (d->flags & ACCEL_DF_INTR)
        intr_note(q);
}

static void run_desc(struct worker *w, struct accel_queue *q,
                     const struct accel_desc *d, uint32_t index, bool in_batch,
                     struct result *r);

/* Write ABORTED for element @i.. of a batch list (best effort). */
static void
abort_batch_rest(struct accel_queue *q, uint64_t list, uint32_t i, uint32_t n,
                 uint32_t index)
{
    struct result r = { .status = ACCEL_ST_ABORTED };

    for (; i < n; i++) {
        struct accel_map m;
        struct accel_desc el;
        const void *p = map_small(q, list + (uint64_t)i * ACCEL_DESC_SIZE,
                                  ACCEL_DESC_SIZE, ACCEL_MAP_READ, &m);

        if (p == NULL)
            return;
        memcpy(&el, p, sizeof(el));
        seg_put(q, &m);
        complete(q, &el, index, &r);
    }
}

static void
run_batch(struct worker *w, struct accel_queue *q, const struct accel_desc *d,
          uint32_t index, struct result *r)
{
    uint32_t n = d->size, i, ok = 0;
    bool failed = false;

    if (n == 0 || n > ACCEL_BATCH_MAX) {
        res_invalid(r, OFF_SIZE);
        return;
    }
    if (d->src % ACCEL_BATCH_ALIGN != 0 ||
        d->src + (uint64_t)n * ACCEL_DESC_SIZE < d->src) {
        res_invalid(r, OFF_SRC);
        return;
    }
    for (i = 0; i < n; i++) {
        uint64_t at = d->src + (uint64_t)i * ACCEL_DESC_SIZE;
        struct result er;
        struct accel_desc el;
        struct accel_map m;
        const void *p;

        if (atomic_load(&q->state) != ACCEL_QS_ENABLED) {
            abort_batch_rest(q, d->src, i, n, index);
            r->status = ACCEL_ST_ABORTED;
            break;
        }
        p = map_small(q, at, ACCEL_DESC_SIZE, ACCEL_MAP_READ, &m);
        if (p == NULL) {
            res_fault(r, at);
            break;
        }
        memcpy(&el, p, sizeof(el)); /* the guest may rewrite it: copy */
        seg_put(q, &m);
        run_desc(w, q, &el, index, true, &er);
        complete(q, &el, index, &er);
        r->cost += er.cost;
        if (er.status == ACCEL_ST_SUCCESS)
            ok++;
        else
            failed = true;
    }
    if (r->status == ACCEL_ST_NONE)
        r->status = failed ? ACCEL_ST_BATCH_PARTIAL : ACCEL_ST_SUCCESS;
    r->bytes = ok;
}

static void
run_desc(struct worker *w, struct accel_queue *q, const struct accel_desc *d,
         uint32_t index, bool in_batch, struct result *r)
{
    memset(r, 0, sizeof(*r));
    r->cost = ACCEL_DESC_COST;
    if (d->flags & ~ACCEL_DF_MASK)
        res_invalid(r, OFF_FLAGS);
    else if (d->rsvd0 != 0)
        res_invalid(r, OFF_RSVD0);
    else if (d->rsvd1 != 0)
        res_invalid(r, OFF_RSVD1);
    else if (d->opcode >= ACCEL_OP_COUNT ||
             (in_batch && d->opcode == ACCEL_OP_BATCH))
        r->status = ACCEL_ST_INVALID_OPCODE;
    else if ((d->flags & ACCEL_DF_COMP) && d->comp % ACCEL_COMP_ALIGN != 0)
        res_invalid(r, OFF_COMP);
    else if (d->opcode == ACCEL_OP_NOP || d->opcode == ACCEL_OP_DRAIN)
        /* Descriptors of a queue complete in ring order, so by the time
         * a DRAIN runs everything before it has completed. */
        r->status = ACCEL_ST_SUCCESS;
    else if (d->opcode == ACCEL_OP_BATCH)
        run_batch(w, q, d, index, r);
    else
        run_data(w, q, d, r);
}

/* ------------------------------------------------------------------ */
/* Rings                                                               */

/* The ring held whole for a visit when it lies in one mapping; else each
 * access maps its own line. */
struct ring {
    struct accel_queue *q;
    bool whole;
    struct accel_map m;
};

static void
ring_open(struct accel_queue *q, struct ring *r)
{
    uint64_t len = accel_ring_bytes(q->cfg.size);

    r->q = q;
    r->whole = map_small(q, q->cfg.ring, len, ACCEL_MAP_READ | ACCEL_MAP_WRITE,
                         &r->m) != NULL;
}

static void
ring_close(struct ring *r)
{
    if (r->whole)
        seg_put(r->q, &r->m);
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
    return map_small(r->q, r->q->cfg.ring + off, len, prot, tmp);
}

static int
ring_load(struct ring *r, uint64_t off, uint32_t *v)
{
    struct accel_map m;
    bool held;
    uint32_t *p = ring_at(r, off, 4, ACCEL_MAP_READ, &m, &held);

    if (p == NULL)
        return -EFAULT;
    *v = __atomic_load_n(p, __ATOMIC_ACQUIRE);
    if (held)
        seg_put(r->q, &m);
    return 0;
}

static int
ring_store(struct ring *r, uint64_t off, uint32_t v)
{
    struct accel_map m;
    bool held;
    uint32_t *p = ring_at(r, off, 4, ACCEL_MAP_WRITE, &m, &held);

    if (p == NULL)
        return -EFAULT;
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
    if (held)
        seg_put(r->q, &m);
    return 0;
}

static int
ring_desc(struct ring *r, uint32_t idx, struct accel_desc *d)
{
    uint64_t off =
        ACCEL_RING_DESCS + (uint64_t)(idx & (r->q->cfg.size - 1)) * 64u;
    struct accel_map m;
    bool held;
    const void *p = ring_at(r, off, sizeof(*d), ACCEL_MAP_READ, &m, &held);

    if (p == NULL)
        return -EFAULT;
    memcpy(d, p, sizeof(*d)); /* validated from this copy only */
    if (held)
        seg_put(r->q, &m);
    return 0;
}

/* The queue stops for good (until disabled): its ring cannot be used. */
static void
queue_fault(struct accel_queue *q, uint8_t code, uint64_t addr)
{
    struct accel_engine *e = q->e;
    uint32_t head = atomic_load(&q->head);
    int expect = ACCEL_QS_ENABLED;

    /* Completions before the fault still get their interrupt. */
    intr_flush(q);
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
    report(q, code, 0, head, addr);
}

/*
 * One visit: run descriptors while the queue has work and deficit.
 * *@empty: the ring was seen empty at the end. Return: descriptors done.
 */
static unsigned int
serve(struct worker *w, struct accel_queue *q, bool *empty)
{
    struct accel_engine *e = q->e;
    uint32_t head = atomic_load(&q->head), tail;
    unsigned int done = 0;
    uint64_t fault;
    struct ring r;
    int rc;

    *empty = false;
    visit_begin(q);
    ring_open(q, &r);
    if (q->published) {
        /* Awake again: tell the driver to stop ringing. */
        if (ring_store(&r, ACCEL_RING_DOORBELL_NEEDED, 0) < 0) {
            queue_fault(q, ACCEL_ERR_RING_FAULT,
                        q->cfg.ring + ACCEL_RING_DOORBELL_NEEDED);
            goto out;
        }
        q->published = false;
    }
    fault = q->cfg.ring + ACCEL_RING_TAIL;
    rc = ring_load(&r, ACCEL_RING_TAIL, &tail);
    while (rc == 0) {
        struct accel_desc d;
        struct result res;

        if (tail - head > q->cfg.size) {
            queue_fault(q, ACCEL_ERR_BAD_INDEX, tail);
            goto out;
        }
        if (tail == head) {
            *empty = true;
            break;
        }
        if (q->deficit <= 0 || atomic_load(&q->state) != ACCEL_QS_ENABLED ||
            __atomic_load_n(&e->stop, __ATOMIC_RELAXED))
            break;
        fault = q->cfg.ring + ACCEL_RING_DESCS +
                (uint64_t)(head & (q->cfg.size - 1)) * ACCEL_DESC_SIZE;
        rc = ring_desc(&r, head, &d);
        if (rc < 0)
            break;
        run_desc(w, q, &d, head, false, &res);
        complete(q, &d, head, &res);
        head++;
        /* Published for accel_queue_status(); a plain store on x86 (a
         * seq_cst one would be a locked exchange per descriptor). */
        atomic_store_explicit(&q->head, head, memory_order_release);
        fault = q->cfg.ring + ACCEL_RING_HEAD;
        rc = ring_store(&r, ACCEL_RING_HEAD, head);
        if (rc < 0)
            break;
        q->deficit -= (int64_t)res.cost;
        done++;
        /* Take what the driver added meanwhile without a new visit. */
        if (head == tail) {
            fault = q->cfg.ring + ACCEL_RING_TAIL;
            rc = ring_load(&r, ACCEL_RING_TAIL, &tail);
        }
    }
    if (rc < 0)
        queue_fault(q, ACCEL_ERR_RING_FAULT, fault);
    else if (*empty)
        intr_flush(q);
    else if (q->intr_pending && q->cfg.coal_usec != 0 &&
             now_ns() - q->intr_first_ns >= q->cfg.coal_usec * 1000ull)
        intr_flush(q);
out:
    ring_close(&r);
    visit_end(q);
    return done;
}

/*
 * Publish WAKE_INDEX and DOORBELL_NEEDED, then look at TAIL once more: a
 * driver that moved TAIL before seeing the flag is caught here, one that
 * moves it after sees the flag with this WAKE_INDEX (or a later one) and
 * rings (both sides order their store before their loads with a full
 * fence). Return: true if the queue may sleep.
 */
static bool
try_sleep(struct accel_queue *q)
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

        if (!q->active || q->busy)
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
    n = serve(w, q, &empty);
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
        uint64_t now = now_ns();

        if (q->idle_since_ns == 0)
            q->idle_since_ns = now;
        if (now - q->idle_since_ns < e->poll_ns)
            return n;
    }
    *sleep = try_sleep(q);
    return n;
}

/* After a visit; lock held. */
static void
release_locked(struct accel_engine *e, struct accel_queue *q, bool sleep)
{
    q->busy = false;
    if (atomic_load(&q->state) != ACCEL_QS_ENABLED)
        q->active = false;
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

static uint8_t
check_config(const struct accel_queue_config *c)
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

        if (seg_get(q, addr, len, ACCEL_MAP_READ | ACCEL_MAP_WRITE, &m) <
            0) {
            *bad = addr;
            return false;
        }
        if (m.len == 0 || m.len > len) {
            seg_put(q, &m);
            *bad = addr;
            return false;
        }
        seg_put(q, &m);
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
    why = check_config(cfg);
    if (why != ACCEL_QERR_NONE) {
        set_error(q, why, why == ACCEL_QERR_RING_FAULT ? cfg->ring : 0);
        return -EINVAL;
    }
    q->cfg = *cfg;
    atomic_store(&q->head, 0);
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
        complete(q, &d, head, &res);
        head++;
    }
    atomic_store(&q->head, head);
    ring_store(&r, ACCEL_RING_HEAD, head);
out:
    intr_flush(q);
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
}

void
accel_queue_doorbell(struct accel_queue *q)
{
    struct accel_engine *e = q->e;

    atomic_fetch_add(&q->doorbells, 1);
    pthread_mutex_lock(&e->lock);
    if (atomic_load(&q->state) == ACCEL_QS_ENABLED) {
        if (q->active) {
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
    e->nq = cfg->nr_queues ? cfg->nr_queues : ACCEL_DEFAULT_QUEUES;
    e->max_transfer =
        cfg->max_transfer ? cfg->max_transfer : ACCEL_DEFAULT_MAX_TRANSFER;
    /* A range of n bytes touches at most n / granule + 2 granules. */
    e->seg_cap = e->max_transfer / ACCEL_MAP_GRANULE + 2;
    e->poll_ns =
        (uint64_t)(cfg->poll_us ? cfg->poll_us : ACCEL_DEFAULT_POLL_US) * 1000u;
    e->no_poll = cfg->no_poll;
    e->crc_hw = !cfg->crc_soft && cpu_has_crc32();
    crc_table_init(e->crc_table);

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
