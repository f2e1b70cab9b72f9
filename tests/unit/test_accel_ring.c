/*
 * Unit tests of the ring ABI's driver helpers (umdev/accel_ring.h) alone,
 * with the test playing the engine: it writes HEAD, the flags and the
 * completion records by hand, so each rule is checked at its edges (the
 * doorbell decision across a sleep and across index wrap, room from HEAD
 * or from reaped records, a HEAD the engine never writes, reaping in ring
 * order only). The engine's side is tested in test_accel_engine_*.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "umdev/accel_ring.h"

#define SIZE 4u
#define COMPS_ADDR 0x10000ull /* where the device sees the records */

struct ring {
    _Alignas(64) unsigned char mem[ACCEL_RING_DESCS + SIZE * 64];
    struct accel_comp comps[SIZE];
    struct accel_ring_drv r;
};

static void
word(struct ring *x, uint32_t off, uint32_t v)
{
    memcpy(x->mem + off, &v, sizeof(v));
}

static uint32_t
tail_word(const struct ring *x)
{
    return accel_ring_load(x->mem, ACCEL_RING_TAIL);
}

/* The engine completes descriptor @idx (its slot's record). */
static void
complete(struct ring *x, uint32_t idx, uint8_t status)
{
    struct accel_comp *c = &x->comps[idx % SIZE];

    c->tag = 0x7000 + idx;
    __atomic_store_n(&c->status, status, __ATOMIC_RELEASE);
}

/* Each test gets a zeroed ring, its records and a driver at index 0. */
static int
setup(void **state)
{
    /* The ring ABI wants the ring ACCEL_RING_ALIGN aligned; so does the
     * struct (sizeof is a multiple of its alignment). */
    struct ring *x = aligned_alloc(_Alignof(struct ring), sizeof(*x));

    if (x == NULL)
        return -1;
    memset(x, 0, sizeof(*x));
    accel_ring_drv_init(&x->r, x->mem, SIZE, x->comps, COMPS_ADDR);
    *state = x;
    return 0;
}

static int
teardown(void **state)
{
    free(*state);
    return 0;
}

static struct accel_desc
nop(uint64_t tag)
{
    struct accel_desc d = { .opcode = ACCEL_OP_NOP, .tag = tag };

    return d;
}

static void
test_need_doorbell(void **state)
{
    (void)state;
    /* Awake: never. */
    assert_false(accel_ring_need_doorbell(0, 5, 5, 8));
    /* Asleep at HEAD 5, TAIL moves 5 -> 8: the move crosses it. */
    assert_true(accel_ring_need_doorbell(1, 5, 5, 8));
    assert_true(accel_ring_need_doorbell(1, 7, 5, 8));
    /* Already rung for this sleep: TAIL moved past 5 before, 6 -> 8. */
    assert_false(accel_ring_need_doorbell(1, 5, 6, 8));
    /* WAKE_INDEX at the new TAIL or beyond: nothing crossed it. */
    assert_false(accel_ring_need_doorbell(1, 8, 5, 8));
    /* Across the u32 wrap of the free-running indices. */
    assert_true(accel_ring_need_doorbell(1, 0xffffffffu, 0xfffffffeu, 1));
    assert_true(accel_ring_need_doorbell(1, 0, 0xfffffffeu, 1));
    assert_false(accel_ring_need_doorbell(1, 1, 0xfffffffeu, 1));
}

/* Posting fills slots and records; nothing is the engine's before the
 * publish, which asks for one doorbell per sleep. */
static void
test_post_publish(void **state)
{
    struct ring *x = *state;
    struct accel_desc d = nop(1);
    unsigned int i;

    memset(x->comps, 0xff, sizeof(x->comps));
    word(x, ACCEL_RING_DOORBELL_NEEDED, 1); /* enabled: asleep at 0 */
    d.flags = ACCEL_DF_INTR;
    for (i = 0; i < 3; i++) {
        d.tag = 100 + i;
        assert_int_equal(accel_ring_post(&x->r, &d), i);
    }
    assert_int_equal(tail_word(x), 0);
    for (i = 0; i < 3; i++) {
        const struct accel_desc *s = accel_ring_slot(&x->r, i);

        assert_int_equal(s->tag, 100 + i);
        assert_int_equal(s->flags, ACCEL_DF_INTR | ACCEL_DF_COMP);
        assert_int_equal(s->comp, COMPS_ADDR + i * ACCEL_COMP_SIZE);
        assert_int_equal(accel_comp_status(&x->comps[i]), ACCEL_ST_NONE);
        assert_int_equal(x->comps[i].tag, 0);
    }
    assert_int_equal(x->comps[3].status, 0xff); /* not posted: untouched */
    assert_true(accel_ring_publish(&x->r));
    assert_int_equal(tail_word(x), 3);
    assert_int_equal(x->r.published, 3);
    /* Still asleep at 0, but this sleep was rung for already. */
    accel_ring_post(&x->r, &d);
    assert_false(accel_ring_publish(&x->r));
    assert_int_equal(tail_word(x), 4);
    /* Awake, then asleep again at HEAD 4: the next move rings. */
    word(x, ACCEL_RING_HEAD, 4);
    word(x, ACCEL_RING_DOORBELL_NEEDED, 0);
    accel_ring_post(&x->r, &d);
    assert_false(accel_ring_publish(&x->r));
    word(x, ACCEL_RING_WAKE_INDEX, 5);
    word(x, ACCEL_RING_DOORBELL_NEEDED, 1);
    accel_ring_post(&x->r, &d);
    assert_true(accel_ring_publish(&x->r));
    /* Without records, descriptors go as given. */
    accel_ring_drv_init(&x->r, x->mem, SIZE, NULL, 0);
    d.comp = 0x1234560;
    accel_ring_post(&x->r, &d);
    assert_int_equal(accel_ring_slot(&x->r, 0)->comp, 0x1234560);
    assert_int_equal(accel_ring_slot(&x->r, 0)->flags, ACCEL_DF_INTR);
}

/* Room comes from HEAD, or with records from what was reaped; records
 * are reaped in ring order only. */
static void
test_room_and_reap(void **state)
{
    struct ring *x = *state;
    struct accel_desc d = nop(0);
    struct accel_comp c;
    unsigned int i;

    assert_int_equal(accel_ring_room(&x->r), SIZE);
    assert_false(accel_ring_reap(&x->r, &c)); /* nothing outstanding */
    for (i = 0; i < SIZE; i++)
        accel_ring_post(&x->r, &d);
    assert_int_equal(accel_ring_room(&x->r), 0);
    /* 2 completes before 1: only 0 is reaped. */
    complete(x, 0, ACCEL_ST_SUCCESS);
    complete(x, 2, ACCEL_ST_ABORTED);
    assert_true(accel_ring_reap(&x->r, &c));
    assert_int_equal(c.status, ACCEL_ST_SUCCESS);
    assert_int_equal(c.tag, 0x7000);
    assert_false(accel_ring_reap(&x->r, &c));
    /* Reaped, though HEAD (stored after the record) still lags. */
    assert_int_equal(accel_ring_room(&x->r), 1);
    complete(x, 1, ACCEL_ST_ADDR_FAULT);
    assert_true(accel_ring_reap(&x->r, &c));
    assert_int_equal(c.status, ACCEL_ST_ADDR_FAULT);
    assert_true(accel_ring_reap(&x->r, &c));
    assert_int_equal(c.tag, 0x7002);
    assert_int_equal(x->r.reaped, 3);
    assert_int_equal(accel_ring_room(&x->r), 3);
    /* A HEAD beyond TAIL, which the engine never writes: no room. */
    word(x, ACCEL_RING_HEAD, x->r.tail + 1);
    assert_int_equal(accel_ring_room(&x->r), 0);
    /* Without records, room is HEAD's. */
    accel_ring_drv_init(&x->r, x->mem, SIZE, NULL, 0);
    word(x, ACCEL_RING_HEAD, 0);
    accel_ring_post(&x->r, &d);
    accel_ring_post(&x->r, &d);
    assert_int_equal(accel_ring_room(&x->r), SIZE - 2);
    word(x, ACCEL_RING_HEAD, 1);
    assert_int_equal(accel_ring_room(&x->r), SIZE - 1);
}

/* Free-running indices wrap at 2^32; slots and records follow. */
static void
test_index_wrap(void **state)
{
    struct ring *x = *state;
    struct accel_desc d = nop(0);
    struct accel_comp c;
    uint32_t start = 0xfffffffeu, i;

    x->r.tail = x->r.published = x->r.reaped = start;
    word(x, ACCEL_RING_HEAD, start);
    word(x, ACCEL_RING_DOORBELL_NEEDED, 1);
    word(x, ACCEL_RING_WAKE_INDEX, start);
    assert_int_equal(accel_ring_room(&x->r), SIZE);
    for (i = 0; i < SIZE; i++) {
        d.tag = start + i;
        assert_int_equal(accel_ring_post(&x->r, &d), start + i);
        assert_int_equal(accel_ring_slot(&x->r, start + i)->comp,
                         COMPS_ADDR + ((start + i) % SIZE) * ACCEL_COMP_SIZE);
    }
    assert_true(accel_ring_publish(&x->r));
    assert_int_equal(tail_word(x), 2);
    assert_int_equal(accel_ring_room(&x->r), 0);
    for (i = 0; i < SIZE; i++)
        complete(x, start + i, ACCEL_ST_SUCCESS);
    for (i = 0; i < SIZE; i++) {
        assert_true(accel_ring_reap(&x->r, &c));
        assert_int_equal(c.tag, 0x7000 + (uint32_t)(start + i));
    }
    assert_int_equal(x->r.reaped, 2);
    assert_int_equal(accel_ring_room(&x->r), SIZE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_need_doorbell),
        cmocka_unit_test_setup_teardown(test_post_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_room_and_reap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_wrap, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
