/*
 * Functional tests of accel subdevices under load (accel_guest.h): two
 * subdevices on one engine each seeing only its own guest's memory,
 * DMA_UNMAP and reset while queues copy, and a client that leaves with
 * its queues running.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "accel_guest.h"

/* ---------------------------------------------------------------- */
/* Two subdevices on one engine                                      */

static void
test_two_devices(void **state)
{
    struct guest g[AF_NDEV];
    uint32_t last[AF_NDEV][4] = { { 0 } };
    unsigned int r, dev, q;

    (void)state;
    /* The same guest addresses in both: each device sees only its own
     * guest's memory. */
    for (dev = 0; dev < AF_NDEV; dev++) {
        guest_open(&g[dev], dev, false);
        memset(gp(&g[dev], DATA), 0x10 + dev, 14 * MB);
        for (q = 0; q < g[dev].nq; q++)
            gq_enable(&g[dev], q, 32);
    }
    for (r = 0; r < 40; r++) {
        for (dev = 0; dev < AF_NDEV; dev++) {
            for (q = 0; q < g[dev].nq; q++) {
                struct accel_desc d =
                    accel_desc_make(ACCEL_OP_FILL, 64 * 1024, 0,
                                    DATA + 4 * MB + (q * 40 + r) * 65536ull);

                d.pattern = 0x0101010101010101ull * (0xa0 + dev * 8 + q);
                last[dev][q] = gq_submit(&g[dev], q, d);
            }
        }
    }
    for (dev = 0; dev < AF_NDEV; dev++) {
        for (q = 0; q < g[dev].nq; q++) {
            assert_int_equal(gq_wait(&g[dev], q, last[dev][q]),
                             ACCEL_ST_SUCCESS);
            gq_wait_head(&g[dev], q);
        }
    }
    for (dev = 0; dev < AF_NDEV; dev++) {
        uint8_t *p = gp(&g[dev], DATA);
        size_t j;

        /* Sources untouched; every destination byte is this device's. */
        for (j = 0; j < 4 * MB; j++)
            if (p[j] != 0x10 + dev)
                fail_msg("dev %u: byte %zu changed", dev, j);
        for (q = 0; q < 4; q++) {
            for (j = 0; j < 40 * 65536ull; j++) {
                uint8_t want = q < g[dev].nq ? (uint8_t)(0xa0 + dev * 8 + q)
                                             : (uint8_t)(0x10 + dev);
                uint8_t got = p[4 * MB + (q * 40) * 65536ull + j];

                if (got != want)
                    fail_msg("dev %u queue %u: byte %zu is %#x, want %#x", dev,
                             q, j, got, want);
            }
        }
        assert_int_equal(reg_rd32(g[dev].c, ACCEL_REG_SWERR_COUNT), 0);
    }
    for (dev = 0; dev < AF_NDEV; dev++)
        guest_close(&g[dev]);
}

/* ---------------------------------------------------------------- */
/* DMA_UNMAP and reset under load                                    */

#define GB2 0x200000000ull /* a second mapping: data only */
#define G2SIZE (4 * MB)

static void
test_dma_unmap_under_load(void **state)
{
    struct guest g;
    uint8_t *mem2;
    int fd2;
    uint32_t i, n = 128, ok = 0, fault = 0, idx;
    bool seen_fault = false;
    int64_t t0;

    (void)state;
    guest_open(&g, 1, false);
    mem2 = guest_mem(G2SIZE, &fd2);
    assert_int_equal(
        umdev_client_dma_map(g.c, GB2, G2SIZE, mem2, fd2, 0, DMA_RW), 0);
    gq_enable(&g, 0, 128);
    for (i = 0; i < n; i++)
        gq_post(&g, 0, accel_desc_make(ACCEL_OP_MEMMOVE, MB, GB2, GB2 + 2 * MB),
                false);
    gq_kick(&g, 0);
    /* Unmap while the queue copies inside it (the first copy is done):
     * returns once no descriptor holds the range. */
    gq_wait(&g, 0, 0);
    t0 = kit_now_ms();
    assert_int_equal(umdev_client_dma_unmap(g.c, GB2, G2SIZE), 0);
    print_message("DMA_UNMAP under load took %lld ms\n",
                  (long long)(kit_now_ms() - t0));
    guest_mem_free(mem2, G2SIZE, fd2);
    /* One more after the unmap faults, deterministically. */
    idx = gq_submit(&g, 0,
                    accel_desc_make(ACCEL_OP_MEMMOVE, 64, GB2, GB2 + 4096));
    assert_int_equal(gq_wait(&g, 0, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&g, 0, idx)->info, GB2);
    for (i = 0; i < n; i++) {
        uint8_t s = gq_wait(&g, 0, i);

        assert_true(s == ACCEL_ST_SUCCESS || s == ACCEL_ST_ADDR_FAULT);
        if (s == ACCEL_ST_ADDR_FAULT)
            seen_fault = true;
        else
            assert_false(seen_fault); /* successes, then faults */
        ok += s == ACCEL_ST_SUCCESS;
        fault += s == ACCEL_ST_ADDR_FAULT;
    }
    print_message("under unmap: %u done, %u faulted\n", ok, fault);
    assert_true(ok >= 1);
    /* The queue is fine and the rest of the memory works. */
    idx = gq_submit(&g, 0,
                    accel_desc_make(ACCEL_OP_MEMMOVE, 4096, DATA, DATA + MB));
    assert_int_equal(gq_wait(&g, 0, idx), ACCEL_ST_SUCCESS);
    guest_close(&g);
}

static uint64_t
checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;

    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void
test_reset_under_load(void **state)
{
    struct guest g;
    uint64_t before, after;
    uint32_t i, idx;
    unsigned int q;

    (void)state;
    guest_open(&g, 1, false);
    for (q = 0; q < 4; q++) {
        gq_enable(&g, q, 64);
        for (i = 0; i < 64; i++)
            gq_post(&g, q,
                    accel_desc_make(ACCEL_OP_MEMMOVE, MB, DATA + q * MB,
                                    DATA + (4 + q * 2) * MB),
                    false);
        gq_kick(&g, q);
    }
    assert_int_equal(umdev_client_reset(g.c), 0);
    /* From here the device writes nothing more. */
    before = checksum(g.mem, GSIZE);
    usleep(200 * 1000);
    after = checksum(g.mem, GSIZE);
    assert_true(before == after);
    for (q = 0; q < 4; q++) {
        struct accel_queue_status st;

        accel_queue_status(accel_dev_queue(AF.d[1], q), &st);
        assert_int_equal(st.state, ACCEL_QS_DISABLED);
        assert_int_equal(qreg(&g, q, ACCEL_Q_CTRL), 0);
        assert_int_equal(qreg(&g, q, ACCEL_Q_RING_BASE), 0);
        assert_int_equal(qreg(&g, q, ACCEL_Q_PRIORITY), 1);
        /* Statistics count from the reset. */
        assert_int_equal(reg_rd64(g.c, ACCEL_REG_QUEUE(q) + ACCEL_Q_COMPLETED),
                         0);
        assert_int_equal(qreg(&g, q, ACCEL_Q_DOORBELLS), 0);
    }
    assert_int_equal(reg_rd32(g.c, ACCEL_REG_DEVCTL), 0);
    /* Power-on state: set it up again and it works. */
    guest_enable_device(&g);
    gq_enable(&g, 2, 64);
    idx = gq_submit(&g, 2, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(gq_wait(&g, 2, idx), ACCEL_ST_SUCCESS);
    /* DEVCTL.RESET does the same from the guest. */
    reg_wr(g.c, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_RESET, 4);
    assert_int_equal(qreg(&g, 2, ACCEL_Q_STATUS), 0);
    assert_int_equal(reg_rd32(g.c, ACCEL_REG_DEVCTL), 0);
    guest_close(&g);
}

/* A client that leaves with queues running: its DMA goes away, the
 * device survives, the next client resets and works. */
static void
test_detach_while_running(void **state)
{
    struct guest g;
    uint32_t i, idx;

    (void)state;
    guest_open(&g, 0, false);
    gq_enable(&g, 0, 64);
    for (i = 0; i < 64; i++)
        gq_post(&g, 0,
                accel_desc_make(ACCEL_OP_MEMMOVE, MB, DATA, DATA + 2 * MB),
                false);
    gq_kick(&g, 0);
    guest_close(&g);
    guest_open(&g, 0, false);
    assert_int_equal(umdev_client_reset(g.c), 0);
    guest_enable_device(&g);
    gq_enable(&g, 0, 64);
    idx = gq_submit(&g, 0,
                    accel_desc_make(ACCEL_OP_MEMMOVE, 4096, DATA, DATA + MB));
    assert_int_equal(gq_wait(&g, 0, idx), ACCEL_ST_SUCCESS);
    guest_close(&g);
}

static const struct CMUnitTest tests[] = {
    AF_TEST(test_two_devices),
    AF_TEST(test_dma_unmap_under_load),
    AF_TEST(test_reset_under_load),
    AF_TEST(test_detach_while_running),
};

HARNESS_MAIN("func.accel_load", tests)
