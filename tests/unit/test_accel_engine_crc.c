/*
 * Unit tests of the accel engine in-process, CRC32C: the published check
 * values, the table against the CPU instruction and a bitwise reference,
 * and the CRC32C descriptor on engines of both kinds. The guest memory
 * model and the queue driver are accel_engine_fixture.c.
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
    kit_fill_rand(buf, 4096 + 64, 7);
    for (off = 0; off < 9; off++) {
        for (len = 0; len <= 300; len++) {
            uint32_t s = accel_crc32c_soft(F.e, 0x1234u, buf + off, len);
            uint32_t r = kit_crc32c(0x1234u, buf + off, len), h = 0;

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
    kit_fill_rand(src, 100000, 99);
    want = kit_crc32c(0xdeadbeefu, src, 100000);

    struct accel_desc d =
        accel_desc_make(ACCEL_OP_CRC32C, 100000, DATA0 + 3, 0);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_crc32c_vectors, FX_MANUAL),
        FX_TEST(test_crc32c_hw_soft_agree, FX_MANUAL),
        FX_TEST(test_crc32c_engine_both_paths, FX_MANUAL),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
