/*
 * The accel engine's data side: translating guest addresses into held
 * host segments (and the spans a visit keeps), the operations over them,
 * and completing descriptors (records, errors, coalesced interrupts).
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "engine_priv.h"

/* Descriptor field offsets, reported in INVALID_FIELD completions. */
#define OFF_FLAGS offsetof(struct accel_desc, flags)
#define OFF_RSVD0 offsetof(struct accel_desc, rsvd0)
#define OFF_SIZE offsetof(struct accel_desc, size)
#define OFF_SRC offsetof(struct accel_desc, src)
#define OFF_DST offsetof(struct accel_desc, dst)
#define OFF_DST2 offsetof(struct accel_desc, dst2)
#define OFF_COMP offsetof(struct accel_desc, comp)
#define OFF_RSVD1 offsetof(struct accel_desc, rsvd1)

/* FILL / COMPARE_PATTERN work in blocks of this many pattern bytes. */
#define PATTERN_BLOCK 256

struct operand {
    unsigned int n;      /* segments */
    struct accel_map *s; /* borrowed from the worker's scratch */
};

/* ------------------------------------------------------------------ */
/* Memory                                                              */

/* The embedder's map, or a span held earlier in this visit. */
int
engine_seg_get(struct accel_queue *q, uint64_t addr, uint64_t len, int prot,
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
            /* The hold was taken (and reported) for another range. */
            if ((prot & ACCEL_MAP_WRITE) && q->ops->mark != NULL)
                q->ops->mark(q->opaque, &v->hold, addr, m->len);
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
operand_put(struct accel_queue *q, struct operand *o)
{
    while (o->n > 0)
        engine_seg_put(q, &o->s[--o->n]);
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

        if (o->n == cap || engine_seg_get(q, addr, len, prot, m) < 0)
            goto fault;
        if (m->len == 0 || m->len > len) {
            engine_seg_put(q, m); /* the embedder broke its contract */
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

/*
 * Guest memory is reached under umdev_fault_guard_run(): a client that
 * shrinks the file behind a mapping makes the next access there a bus
 * error, which then fails the descriptor (ADDR_FAULT) or the ring access
 * instead of the whole process. The guarded functions only move bytes;
 * holds are taken before and given back after, whatever happened.
 */
int
engine_copy(void *dst, const void *src, size_t n)
{
    return umdev_fault_guard_memcpy(dst, src, n);
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

/* FILL (@at NULL: write the pattern) or COMPARE_PATTERN (compare with it)
 * over @o, a pattern block at a time. Return: true if equal (FILL: true);
 * else *@at is the first differing offset. */
static bool
op_pattern(const struct operand *o, uint64_t len, uint64_t pattern,
           uint64_t *at)
{
    uint8_t pat[PATTERN_BLOCK + 8];
    struct cur c = { o, 0, 0 };
    uint64_t done = 0;

    pattern_block(pattern, pat);
    while (done < len) {
        uint64_t n = min64(min64(cur_avail(&c), len - done), PATTERN_BLOCK);
        const uint8_t *p = pat + done % 8;

        if (at == NULL) {
            memcpy(cur_ptr(&c), p, n);
        } else if (memcmp(cur_ptr(&c), p, n) != 0) {
            *at = done + first_diff(cur_ptr(&c), p, n);
            return false;
        }
        cur_advance(&c, n);
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
            c = engine_crc_update(e, c, cur_ptr(&s), n);
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

/* A failure and what it is about, the completion record's info: the
 * field (INVALID_FIELD), the address (ADDR_FAULT) or the offset of the
 * first difference (MISMATCH). */
static void
res_error(struct result *r, uint8_t status, uint64_t info)
{
    r->status = status;
    r->info = info;
}

/* Each data operation's operands in the order the operation takes
 * them: the descriptor address each is at and whether it is read or
 * written (README "Descriptors": the opcode table). */
enum { SRC, DST, DST2 };
static const struct {
    unsigned int n;
    uint8_t addr[MAX_OPERANDS]; /* SRC, DST or DST2 */
    uint8_t prot[MAX_OPERANDS]; /* ACCEL_MAP_* */
} data_operands[ACCEL_OP_COUNT] = {
#define R ACCEL_MAP_READ
#define W ACCEL_MAP_WRITE
    [ACCEL_OP_MEMMOVE] = { 2, { SRC, DST }, { R, W } },
    [ACCEL_OP_FILL] = { 1, { DST }, { W } },
    [ACCEL_OP_COMPARE] = { 2, { SRC, DST }, { R, R } },
    [ACCEL_OP_COMPARE_PATTERN] = { 1, { SRC }, { R } },
    [ACCEL_OP_CRC32C] = { 1, { SRC }, { R } },
    [ACCEL_OP_DUALCAST] = { 3, { SRC, DST, DST2 }, { R, W, W } },
    [ACCEL_OP_COPY_CRC] = { 2, { SRC, DST }, { R, W } },
#undef R
#undef W
};

/* What run_op() runs: a translated data operation. */
struct op_arg {
    const struct accel_engine *e;
    const struct accel_desc *d;
    const struct operand *op;
    uint64_t len;
    struct result *r;
};

/* The operation itself, under a fault guard: only memory work here. */
static void
run_op(void *arg_)
{
    const struct op_arg *a = arg_;
    const struct accel_engine *e = a->e;
    const struct accel_desc *d = a->d;
    const struct operand *op = a->op;
    struct result *r = a->r;
    uint64_t len = a->len, at = 0;
    bool same;

    r->status = ACCEL_ST_SUCCESS;
    r->bytes = (uint32_t)len;
    switch (d->opcode) {
    case ACCEL_OP_MEMMOVE:
        op_memmove(&op[0], &op[1], len,
                   d->dst > d->src && d->dst - d->src < len);
        break;
    case ACCEL_OP_FILL:
        op_pattern(&op[0], len, d->pattern, NULL);
        break;
    case ACCEL_OP_COMPARE:
    case ACCEL_OP_COMPARE_PATTERN:
        same = d->opcode == ACCEL_OP_COMPARE
                   ? op_compare(&op[0], &op[1], len, &at)
                   : op_pattern(&op[0], len, d->pattern, &at);
        if (!same) {
            /* The bytes before the first difference compared equal. */
            res_error(r, ACCEL_ST_MISMATCH, at);
            r->cmp = 1;
            r->bytes = (uint32_t)at;
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
}

/* The guest address of host address @host in one of the operands (the
 * first operand's start if none holds it). */
static uint64_t
fault_addr(const struct operand *op, const uint64_t *addr, unsigned int nops,
           const void *host)
{
    const uint8_t *h = host;
    unsigned int i, j;

    for (i = 0; i < nops; i++) {
        uint64_t off = 0;

        for (j = 0; j < op[i].n; j++) {
            const uint8_t *p = op[i].s[j].ptr;

            if (h >= p && h < p + op[i].s[j].len)
                return addr[i] + off + (uint64_t)(h - p);
            off += op[i].s[j].len;
        }
    }
    return addr[0];
}

/* A data operation: validate, translate every operand, run. */
static void
run_data(struct worker *w, struct accel_queue *q, const struct accel_desc *d,
         struct result *r)
{
    struct accel_engine *e = q->e;
    struct operand op[MAX_OPERANDS];
    uint64_t len = d->size, fault = 0;
    const uint64_t fields[] = {
        [SRC] = d->src, [DST] = d->dst, [DST2] = d->dst2
    };
    unsigned int nops = data_operands[d->opcode].n, i;
    int prot[MAX_OPERANDS];
    uint64_t addr[MAX_OPERANDS];
    struct op_arg arg = { e, d, op, len, r };
    void *host = NULL;

    if (len == 0 || len > e->max_transfer) {
        res_error(r, ACCEL_ST_INVALID_FIELD, OFF_SIZE);
        return;
    }
    for (i = 0; i < nops; i++) {
        addr[i] = fields[data_operands[d->opcode].addr[i]];
        prot[i] = data_operands[d->opcode].prot[i];
    }
    /* Copies whose results would depend on the order of the bytes are
     * refused rather than left unspecified (MEMMOVE handles overlap). */
    if (d->opcode == ACCEL_OP_COPY_CRC || d->opcode == ACCEL_OP_DUALCAST) {
        for (i = 1; i < nops; i++) {
            unsigned int j;

            for (j = 0; j < i; j++) {
                if (addr[i] + len >= addr[i] && addr[j] + len >= addr[j] &&
                    overlap(addr[i], addr[j], len)) {
                    res_error(r, ACCEL_ST_INVALID_FIELD,
                              i == 1 ? OFF_DST : OFF_DST2);
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
            res_error(r, ACCEL_ST_ADDR_FAULT, fault);
            return;
        }
    }
    if (umdev_fault_guard_run(run_op, &arg, &host) < 0) {
        /* A bus error: a page of an operand is gone from its file. The
         * destination may be written in part. */
        res_error(r, ACCEL_ST_ADDR_FAULT, fault_addr(op, addr, nops, host));
        r->cmp = 0;
        r->bytes = 0;
        r->value = 0;
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

void
engine_intr_flush(struct accel_queue *q)
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
        q->intr_first_ns = engine_now_ns();
    if (q->intr_pending >= count)
        engine_intr_flush(q);
    else if (q->cfg.coal_usec != 0 &&
             engine_now_ns() - q->intr_first_ns >= q->cfg.coal_usec * 1000ull)
        engine_intr_flush(q);
}

void
engine_report(struct accel_queue *q, uint8_t code, uint8_t opcode,
              uint32_t index, uint64_t addr)
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

struct comp_arg {
    uint8_t *p;
    const struct accel_comp *c;
    uint8_t status;
};

/* Write a completion record, its status byte last. */
static void
comp_fn(void *arg)
{
    const struct comp_arg *a = arg;

    memcpy(a->p + 1, (const uint8_t *)a->c + 1, sizeof(*a->c) - 1);
    __atomic_store_n(a->p, a->status, __ATOMIC_RELEASE);
}

/* Publish @r for @d: the completion record (status byte last) or, with
 * nowhere to write it, the error callback; then the interrupt. */
void
engine_complete(struct accel_queue *q, const struct accel_desc *d,
                uint32_t index, const struct result *r)
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
        uint8_t *p =
            engine_map_small(q, d->comp, sizeof(c), ACCEL_MAP_WRITE, &m);

        struct comp_arg ca = { p, &c, r->status };
        int rc =
            p != NULL ? umdev_fault_guard_run(comp_fn, &ca, NULL) : -EFAULT;

        if (p != NULL)
            engine_seg_put(q, &m);
        if (rc < 0)
            engine_report(q, ACCEL_ERR_COMP_FAULT, d->opcode, index, d->comp);
    } else if (want) {
        engine_report(q, ACCEL_ST_INVALID_FIELD, d->opcode, index, OFF_COMP);
    } else if (!ok && r->status != ACCEL_ST_ABORTED) {
        engine_report(q, r->status, d->opcode, index, r->info);
    }
    if (d->flags & ACCEL_DF_INTR)
        intr_note(q);
}

/* Write ABORTED for element @i.. of a batch list (best effort). */
void
engine_abort_batch_rest(struct accel_queue *q, uint64_t list, uint32_t i,
                        uint32_t n, uint32_t index)
{
    struct result r = { .status = ACCEL_ST_ABORTED };
    int rc;

    for (; i < n; i++) {
        struct accel_map m;
        struct accel_desc el;
        const void *p =
            engine_map_small(q, list + (uint64_t)i * ACCEL_DESC_SIZE,
                             ACCEL_DESC_SIZE, ACCEL_MAP_READ, &m);

        if (p == NULL)
            return;
        rc = engine_copy(&el, p, sizeof(el));
        engine_seg_put(q, &m);
        if (rc < 0)
            return;
        engine_complete(q, &el, index, &r);
    }
}

static void
run_batch(struct worker *w, struct accel_queue *q, const struct accel_desc *d,
          uint32_t index, struct result *r)
{
    uint32_t n = d->size, i = 0, ok = 0;
    bool failed = false;
    int rc;

    if (n == 0 || n > ACCEL_BATCH_MAX) {
        res_error(r, ACCEL_ST_INVALID_FIELD, OFF_SIZE);
        return;
    }
    if (d->src % ACCEL_BATCH_ALIGN != 0 ||
        d->src + (uint64_t)n * ACCEL_DESC_SIZE < d->src) {
        res_error(r, ACCEL_ST_INVALID_FIELD, OFF_SRC);
        return;
    }
    if (q->batch_next != 0) {
        /* Paused here before (possibly on another engine): go on. */
        i = q->batch_next;
        ok = q->batch_ok;
        failed = q->batch_failed;
        engine_batch_clear(q);
    }
    for (; i < n; i++) {
        uint64_t at = d->src + (uint64_t)i * ACCEL_DESC_SIZE;
        struct result er;
        struct accel_desc el;
        struct accel_map m;
        const void *p;

        if (atomic_load(&q->state) != ACCEL_QS_ENABLED) {
            engine_abort_batch_rest(q, d->src, i, n, index);
            r->status = ACCEL_ST_ABORTED;
            break;
        }
        /* A pause waits for one element, not for up to MAX_BATCH. */
        if (atomic_load_explicit(&q->paused, memory_order_relaxed)) {
            q->batch_next = i;
            q->batch_ok = ok;
            q->batch_failed = failed;
            r->suspended = true;
            return;
        }
        p = engine_map_small(q, at, ACCEL_DESC_SIZE, ACCEL_MAP_READ, &m);
        if (p == NULL) {
            res_error(r, ACCEL_ST_ADDR_FAULT, at);
            break;
        }
        /* The guest may rewrite it: copy. */
        rc = engine_copy(&el, p, sizeof(el));
        engine_seg_put(q, &m);
        if (rc < 0) {
            res_error(r, ACCEL_ST_ADDR_FAULT, at);
            break;
        }
        engine_run_desc(w, q, &el, index, true, &er);
        engine_complete(q, &el, index, &er);
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

void
engine_run_desc(struct worker *w, struct accel_queue *q,
                const struct accel_desc *d, uint32_t index, bool in_batch,
                struct result *r)
{
    memset(r, 0, sizeof(*r));
    r->cost = ACCEL_DESC_COST;
    if (d->flags & ~ACCEL_DF_MASK)
        res_error(r, ACCEL_ST_INVALID_FIELD, OFF_FLAGS);
    else if (d->rsvd0 != 0)
        res_error(r, ACCEL_ST_INVALID_FIELD, OFF_RSVD0);
    else if (d->rsvd1 != 0)
        res_error(r, ACCEL_ST_INVALID_FIELD, OFF_RSVD1);
    else if (d->opcode >= ACCEL_OP_COUNT ||
             (in_batch && d->opcode == ACCEL_OP_BATCH))
        r->status = ACCEL_ST_INVALID_OPCODE;
    else if ((d->flags & ACCEL_DF_COMP) && d->comp % ACCEL_COMP_ALIGN != 0)
        res_error(r, ACCEL_ST_INVALID_FIELD, OFF_COMP);
    else if (d->opcode == ACCEL_OP_NOP || d->opcode == ACCEL_OP_DRAIN)
        /* Descriptors of a queue complete in ring order, so by the time
         * a DRAIN runs everything before it has completed. */
        r->status = ACCEL_ST_SUCCESS;
    else if (d->opcode == ACCEL_OP_BATCH)
        run_batch(w, q, d, index, r);
    else
        run_data(w, q, d, r);
}
