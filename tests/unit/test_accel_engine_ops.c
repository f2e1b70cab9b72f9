/*
 * Unit tests of the accel engine in-process, the operations (engine_ops.c):
 * every opcode at many sizes and alignments, across two host buffers,
 * overlapping copies, BATCH, address faults, the spans a visit keeps,
 * invalid descriptors and errors without a record. The guest memory model
 * and the queue driver are accel_engine_fixture.c.
 */
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accel_engine_fixture.h"

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

/*
 * The sweep: every size at four alignments, case k keying the placement
 * (place()) and the data seeds. Operand i of a case is aligned at
 * aligns[(ai + rot) % 4] for a rotation each test picks, so operands of
 * one case are misaligned differently.
 */
struct op_case {
    unsigned int k, ai;
    uint32_t n;
};

static uint64_t
operand(const struct op_case *c, unsigned int which, unsigned int rot)
{
    return place(c->k, c->n, aligns[(c->ai + rot) % 4], which);
}

static void
every_size_and_alignment(void (*fn)(const struct op_case *c))
{
    struct op_case c = { 0 };
    size_t si;

    for (si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        for (c.ai = 0; c.ai < 4; c.ai++, c.k++) {
            c.n = sizes[si];
            fn(&c);
        }
    }
}

/* Expected and read-back bytes of one case (the largest size fits). */
static uint8_t case_ref[1 * MB], case_got[1 * MB];

/* A byte either side of [@d, @d + @n) that the engine must not touch. */
static void
guard(uint64_t d, uint32_t n)
{
    *(uint8_t *)G(d - 1) = 0x5c;
    *(uint8_t *)G(d + n) = 0x5c;
}

static void
guard_check(uint64_t d, uint32_t n)
{
    assert_int_equal(*(uint8_t *)G(d - 1), 0x5c);
    assert_int_equal(*(uint8_t *)G(d + n), 0x5c);
}

static void
memmove_case(const struct op_case *c)
{
    uint64_t s = operand(c, 0, 0), d = operand(c, 1, 1);
    uint32_t idx;

    kit_fill_rand(case_ref, c->n, c->k);
    gput(s, case_ref, c->n);
    guard(d, c->n);
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_MEMMOVE, c->n, s, d));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, idx)->bytes, c->n);
    assert_int_equal(comp_of(&F.t, idx)->opcode, ACCEL_OP_MEMMOVE);
    gget(d, case_got, c->n);
    assert_memory_equal(case_got, case_ref, c->n);
    /* Nothing outside the destination. */
    guard_check(d, c->n);
}

static void
test_memmove(void **state)
{
    (void)state;
    every_size_and_alignment(memmove_case);
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
            idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_MEMMOVE, n, s, d));
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
fill_case(const struct op_case *c)
{
    const uint64_t pat = 0x0123456789abcdefull;
    uint64_t d = operand(c, 1, 0);
    struct accel_desc ds = accel_desc_make(ACCEL_OP_FILL, c->n, 0, d);
    uint32_t idx, j;

    guard(d, c->n);
    ds.pattern = pat;
    idx = tq_submit(&F.t, ds);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    for (j = 0; j < c->n; j++) {
        uint8_t b = *(uint8_t *)G(d + j);

        if (b != (uint8_t)(pat >> (8 * (j % 8))))
            fail_msg("size %u align %u: byte %u is %#x", c->n, aligns[c->ai], j,
                     b);
    }
    guard_check(d, c->n);
}

static void
compare_case(const struct op_case *c)
{
    uint64_t a = operand(c, 0, 0), b = operand(c, 1, 3);
    uint32_t idx, at;
    struct accel_comp *r;

    kit_fill_rand(case_ref, c->n, c->k + 5);
    gput(a, case_ref, c->n);
    gput(b, case_ref, c->n);
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_COMPARE, c->n, a, b));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, idx)->result, 0);
    /* One byte differs: the mismatch names its offset. */
    at = (c->n * 3u) / 4u;
    *(uint8_t *)G(b + at) ^= 0x10;
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_COMPARE, c->n, a, b));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_MISMATCH);
    r = comp_of(&F.t, idx);
    assert_int_equal(r->result, 1);
    assert_int_equal(r->info, at);
    assert_int_equal(r->bytes, at);
}

static void
compare_pattern_case(const struct op_case *c)
{
    const uint64_t pat = 0xfedcba9876543210ull;
    uint64_t a = operand(c, 0, 0);
    struct accel_desc d = accel_desc_make(ACCEL_OP_COMPARE_PATTERN, c->n, a, 0);
    uint32_t idx, j, at;

    for (j = 0; j < c->n; j++)
        *(uint8_t *)G(a + j) = (uint8_t)(pat >> (8 * (j % 8)));
    d.pattern = pat;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    at = c->n - 1 - (c->n / 3);
    *(uint8_t *)G(a + at) ^= 0x01;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_MISMATCH);
    assert_int_equal(comp_of(&F.t, idx)->info, at);
    assert_int_equal(comp_of(&F.t, idx)->result, 1);
}

static void
crc_case(const struct op_case *c)
{
    uint64_t s = operand(c, 0, 0), d = operand(c, 1, 2);
    struct accel_desc ds = accel_desc_make(ACCEL_OP_CRC32C, c->n, s, 0);
    uint32_t idx, want;

    kit_fill_rand(case_ref, c->n, c->k + 11);
    gput(s, case_ref, c->n);
    want = kit_crc32c(c->k * 77u, case_ref, c->n);
    ds.crc_seed = c->k * 77u;
    idx = tq_submit(&F.t, ds);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, idx)->value, want);
    /* COPY_CRC: the same CRC and a copy. */
    ds.opcode = ACCEL_OP_COPY_CRC;
    ds.dst = d;
    memset(case_got, 0, c->n);
    gput(d, case_got, c->n);
    idx = tq_submit(&F.t, ds);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, idx)->value, want);
    gget(d, case_got, c->n);
    assert_memory_equal(case_got, case_ref, c->n);
}

static void
dualcast_case(const struct op_case *c)
{
    uint64_t s = operand(c, 0, 0), d = operand(c, 1, 1), d2 = operand(c, 2, 2);
    struct accel_desc ds = accel_desc_make(ACCEL_OP_DUALCAST, c->n, s, d);
    uint32_t idx;

    kit_fill_rand(case_ref, c->n, c->k + 3);
    gput(s, case_ref, c->n);
    memset(case_got, 0, c->n);
    gput(d, case_got, c->n);
    gput(d2, case_got, c->n);
    ds.dst2 = d2;
    idx = tq_submit(&F.t, ds);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    gget(d, case_got, c->n);
    assert_memory_equal(case_got, case_ref, c->n);
    memset(case_got, 0, c->n);
    gget(d2, case_got, c->n);
    assert_memory_equal(case_got, case_ref, c->n);
}

static void
test_fill(void **state)
{
    (void)state;
    every_size_and_alignment(fill_case);
}

/* Equal, then one byte off. */
static void
test_compare(void **state)
{
    (void)state;
    every_size_and_alignment(compare_case);
}

static void
test_compare_pattern(void **state)
{
    (void)state;
    every_size_and_alignment(compare_pattern_case);
}

/* CRC32C with a seed, then COPY_CRC. */
static void
test_crc_ops(void **state)
{
    (void)state;
    every_size_and_alignment(crc_case);
}

static void
test_dualcast(void **state)
{
    (void)state;
    every_size_and_alignment(dualcast_case);
}

/* NOP and the tag echo; DRAIN completes after everything before it. */
static void
test_nop_drain(void **state)
{
    struct accel_desc d = accel_desc_make(ACCEL_OP_NOP, 0, 0, 0);
    uint32_t idx[20], i, dr;

    (void)state;
    for (i = 0; i < 20; i++) {
        struct accel_desc m = accel_desc_make(ACCEL_OP_MEMMOVE, 65536, DATA0,
                                              DATA0 + MB + i * 65536ull);

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

static void
test_batch(void **state)
{
    struct accel_desc b = accel_desc_make(ACCEL_OP_BATCH, 4, BATCH_LIST, 0);
    struct accel_desc f = accel_desc_make(ACCEL_OP_FILL, 4096, 0, DATA0 + 8192);
    struct accel_desc c =
        accel_desc_make(ACCEL_OP_CRC32C, 4096, DATA0 + 8192, 0);
    uint32_t idx;

    (void)state;
    f.pattern = 0x4242424242424242ull;
    kit_fill_rand(G(DATA0), 4096, 1);
    put_elem(0, accel_desc_make(ACCEL_OP_MEMMOVE, 4096, DATA0, DATA0 + 4096));
    put_elem(1, f);
    put_elem(2, c);
    put_elem(3, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    idx = tq_submit(&F.t, b);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, idx)->bytes, 4); /* elements done */
    assert_memory_equal(G(DATA0 + 4096), G(DATA0), 4096);
    assert_int_equal(elem_comp(0)->status, ACCEL_ST_SUCCESS);
    assert_int_equal(elem_comp(1)->status, ACCEL_ST_SUCCESS);
    /* Elements run in order: the CRC sees the FILL before it. */
    assert_int_equal(elem_comp(2)->value, kit_crc32c(0, G(DATA0 + 8192), 4096));
    assert_int_equal(*(uint8_t *)G(DATA0 + 8192 + 4095), 0x42);

    /* One bad element: the others still run; BATCH_PARTIAL. */
    put_elem(0, accel_desc_make(ACCEL_OP_MEMMOVE, 64, HOLE, DATA0));
    put_elem(
        1, accel_desc_make(ACCEL_OP_BATCH, 1, BATCH_LIST, 0)); /* no nesting */
    put_elem(2, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
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
    idx = tq_submit(&F.t,
                    accel_desc_make(ACCEL_OP_MEMMOVE, 4096, HOLE, DATA0 + MB));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, HOLE);
    assert_int_equal(comp_of(&F.t, idx)->bytes, 0);
    /* Source runs off the end of R1 into nothing: the fault names the
     * first unmapped byte, and no byte of dst was written. */
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_MEMMOVE, 8192,
                                          R1 + R1_SIZE - 4096, DATA0 + MB));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, R1 + R1_SIZE);
    for (idx = 0; idx < 8192; idx++)
        assert_int_equal(dst[idx], 0x77);
    /* Destination read-only. */
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_MEMMOVE, 64, DATA0, RRO));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, RRO);
    /* Reading read-only memory is fine. */
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_CRC32C, 64, RRO, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    /* Second destination of DUALCAST. */
    d = accel_desc_make(ACCEL_OP_DUALCAST, 128, DATA0, DATA0 + MB);
    d.dst2 = HOLE + 64;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&F.t, idx)->info, HOLE + 64);
    /* A range that wraps the address space. */
    idx = tq_submit(&F.t,
                    accel_desc_make(ACCEL_OP_FILL, 4096, 0, UINT64_MAX - 100));
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
    uint32_t first = F.t.r.tail, i;

    memset(G(DATA0 + MB), 0, (size_t)n * sz);
    for (i = 0; i < n; i++)
        tq_post(&F.t,
                accel_desc_make(ACCEL_OP_MEMMOVE, sz, DATA0 + (uint64_t)i * sz,
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
    kit_fill_rand(G(DATA0), N * SZ, 31);
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
    a = tq_post(&F.t, accel_desc_make(ACCEL_OP_CRC32C, 64, RRO, 0), false);
    b = tq_post(&F.t, accel_desc_make(ACCEL_OP_MEMMOVE, 64, DATA0, RRO), false);
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
    d = accel_desc_make(ACCEL_OP_COUNT, 64, DATA0, DATA0 + 64);
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_OPCODE);
    d.opcode = 0xff;
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_OPCODE);
    assert_int_equal(comp_of(&F.t, idx)->opcode, 0xff);

    d = accel_desc_make(ACCEL_OP_MEMMOVE, 64, DATA0, DATA0 + 64);
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
    d = accel_desc_make(ACCEL_OP_COPY_CRC, 4096, DATA0, DATA0 + 100);
    idx = tq_submit(&F.t, d);
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&F.t, idx)->info, 0x10);
    d = accel_desc_make(ACCEL_OP_DUALCAST, 4096, DATA0, DATA0 + 8192);
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
    struct accel_desc d = accel_desc_make(ACCEL_OP_MEMMOVE, 64, HOLE, DATA0);
    uint32_t idx;

    (void)state;
    d.flags = 0; /* no completion record */
    tq_submit(&F.t, d);
    /* The completion address is unmapped. */
    d = accel_desc_make(ACCEL_OP_NOP, 0, 0, 0);
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
    d = accel_desc_make(ACCEL_OP_NOP, 0, 0, 0);
    d.flags = 0;
    tq_submit(&F.t, d);
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_memmove, FX_MANUAL),
        FX_TEST(test_memmove_overlap, FX_MANUAL),
        FX_TEST(test_fill, FX_MANUAL),
        FX_TEST(test_compare, FX_MANUAL),
        FX_TEST(test_compare_pattern, FX_MANUAL),
        FX_TEST(test_crc_ops, FX_MANUAL),
        FX_TEST(test_dualcast, FX_MANUAL),
        FX_TEST(test_nop_drain, FX_MANUAL),
        FX_TEST(test_batch, FX_MANUAL),
        FX_TEST(test_addr_faults, FX_MANUAL),
        FX_TEST(test_visit_spans, FX_MANUAL),
        FX_TEST(test_invalid, FX_MANUAL),
        FX_TEST(test_errors_without_record, FX_MANUAL),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
