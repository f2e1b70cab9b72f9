/*
 * Functional tests of the accel subdevice (devices/accel) over real
 * sockets, the test playing the guest driver (accel_guest.h): identity and
 * registers, every operation with its data checked, ring wrap-around and
 * queue disable, and event suppression keeping doorbells off the socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "accel_guest.h"
#include "umdev/profile.h"

/* ---------------------------------------------------------------- */
/* Identity and registers                                            */

static void
test_identity(void **state)
{
    unsigned int dev;

    (void)state;
    for (dev = 0; dev < AF_NDEV; dev++) {
        struct guest g;
        struct umdev_client_region r;
        struct umdev_client_irq_info ii;

        guest_open(&g, dev, false);
        assert_int_equal(cfg_read(g.c, PCI_VENDOR_ID, 2), ACCEL_VENDOR_ID);
        assert_int_equal(cfg_read(g.c, PCI_DEVICE_ID, 2), ACCEL_DEVICE_ID);
        assert_int_equal(cfg_read(g.c, PCI_REVISION_ID, 1), ACCEL_REVISION);
        assert_int_equal(cfg_read(g.c, PCI_CLASS_REVISION, 4) >> 8,
                         ACCEL_CLASS);
        assert_int_equal(cfg_read(g.c, PCI_SUBSYSTEM_VENDOR_ID, 2),
                         ACCEL_SUBSYS_VENDOR_ID);
        assert_int_equal(cfg_read(g.c, PCI_SUBSYSTEM_ID, 2), af_queues[dev]);
        assert_int_equal(cfg_read(g.c, PCI_INTERRUPT_PIN, 1), 1); /* INTA# */
        assert_int_equal(umdev_client_region_info(g.c, BAR0, &r), 0);
        assert_int_equal(r.size, ACCEL_BAR0_SIZE);
        assert_int_equal(umdev_client_region_info(g.c, BAR2, &r), 0);
        assert_int_equal(r.size, af_queues[dev] * 0x1000ull);
        assert_int_equal(
            umdev_client_irq_info(g.c, VFIO_PCI_MSIX_IRQ_INDEX, &ii), 0);
        assert_int_equal(ii.count, af_queues[dev] + 1);
        assert_int_equal(reg_rd32(g.c, ACCEL_REG_VERSION), ACCEL_VERSION);
        assert_int_equal(reg_rd32(g.c, ACCEL_REG_NUM_QUEUES), af_queues[dev]);
        assert_int_equal(reg_rd64(g.c, ACCEL_REG_OPCAP), ACCEL_OPCAP_MASK);
        assert_int_equal(reg_rd32(g.c, ACCEL_REG_MAX_XFER),
                         accel_engine_max_transfer(AF.e));
        assert_int_equal(reg_rd32(g.c, ACCEL_REG_MAX_BATCH), ACCEL_BATCH_MAX);
        assert_int_equal(reg_rd32(g.c, ACCEL_REG_MAX_RING), ACCEL_RING_MAX);
        assert_int_equal(reg_rd32(g.c, ACCEL_REG_FEATURES),
                         ACCEL_FEAT_EVENT_SUPPRESSION | ACCEL_FEAT_COALESCING |
                             ACCEL_FEAT_INTX);
        assert_int_equal(reg_rd32(g.c, ACCEL_REG_DEVSTS), ACCEL_DEVSTS_ENABLED);
        /* Queue registers after reset. */
        assert_int_equal(qreg(&g, 0, ACCEL_Q_PRIORITY), 1);
        assert_int_equal(qreg(&g, 1, ACCEL_Q_INT_VECTOR), 1);
        assert_int_equal(qreg(&g, 0, ACCEL_Q_COAL_COUNT), 1);
        assert_int_equal(qreg(&g, 0, ACCEL_Q_STATUS), 0);
        /* Read-only registers ignore writes. */
        reg_wr(g.c, ACCEL_REG_VERSION, 0, 4);
        assert_int_equal(reg_rd32(g.c, ACCEL_REG_VERSION), ACCEL_VERSION);
        /* The profile refuses what it does not declare: odd widths,
         * misalignment, 8 bytes across two 32-bit registers, undefined
         * offsets, reads of doorbells. */
        {
            uint16_t v16 = 0;
            uint32_t v32 = 0;
            uint64_t v64 = 0;
            const struct umdev_profile *p =
                umdev_dev_profile(accel_dev_dev(AF.d[dev]));

            assert_int_equal(umdev_client_region_read(g.c, BAR0, 0, &v16, 2),
                             -EACCES);
            assert_int_equal(umdev_client_region_read(g.c, BAR0, 2, &v32, 4),
                             -EACCES);
            assert_int_equal(
                umdev_client_region_read(
                    g.c, BAR0, ACCEL_REG_QUEUE(0) + ACCEL_Q_RING_SIZE, &v64, 8),
                -EACCES);
            assert_int_equal(
                umdev_client_region_read(g.c, BAR0, 0xff0, &v32, 4), -EACCES);
            assert_int_equal(umdev_client_region_read(g.c, BAR2, 0, &v32, 4),
                             -EACCES);
            assert_true(umdev_dev_profile_refused(accel_dev_dev(AF.d[dev])) >=
                        5);
            /* Within criterion 3's bound of 64 registers. */
            assert_non_null(p);
            assert_int_equal(p->nregions, 2);
            assert_true(p->regions[0].nregs + p->regions[1].nregs <= 64);
            assert_int_equal(p->regions[1].nregs, af_queues[dev]);
            assert_int_equal(p->data_path, UMDEV_PROFILE_DP_RING);
        }
        guest_close(&g);
    }
}

/* ---------------------------------------------------------------- */
/* Operations through the device                                     */

static void
test_ops(void **state)
{
    static const uint32_t sizes[] = { 1, 63, 4097, 65536 + 5, MB };
    struct guest g;
    unsigned int i, q;

    (void)state;
    guest_open(&g, 1, false);
    for (q = 0; q < 4; q++)
        gq_enable(&g, q, 64);
    for (i = 0; i < 5; i++) {
        uint32_t n = sizes[i], idx, j;
        unsigned int q0 = i % 4;
        uint64_t s = DATA + i, d = DATA + 4 * MB + 3 * i,
                 d2 = DATA + 8 * MB + 5 * i;
        struct accel_desc x;

        kit_fill_rand(gp(&g, s), n, i);
        /* MEMMOVE */
        idx = gq_submit(&g, q0, accel_desc_make(ACCEL_OP_MEMMOVE, n, s, d));
        assert_int_equal(gq_wait(&g, q0, idx), ACCEL_ST_SUCCESS);
        assert_memory_equal(gp(&g, d), gp(&g, s), n);
        /* COMPARE equal, then one byte off */
        idx = gq_submit(&g, q0, accel_desc_make(ACCEL_OP_COMPARE, n, s, d));
        assert_int_equal(gq_wait(&g, q0, idx), ACCEL_ST_SUCCESS);
        *(uint8_t *)gp(&g, d + n / 2) ^= 1;
        idx = gq_submit(&g, q0, accel_desc_make(ACCEL_OP_COMPARE, n, s, d));
        assert_int_equal(gq_wait(&g, q0, idx), ACCEL_ST_MISMATCH);
        assert_int_equal(comp_of(&g, q0, idx)->info, n / 2);
        /* CRC32C with a seed, COPY_CRC */
        x = accel_desc_make(ACCEL_OP_CRC32C, n, s, 0);
        x.crc_seed = 0xabcdef01u;
        idx = gq_submit(&g, q0, x);
        assert_int_equal(gq_wait(&g, q0, idx), ACCEL_ST_SUCCESS);
        assert_int_equal(comp_of(&g, q0, idx)->value,
                         kit_crc32c(0xabcdef01u, gp(&g, s), n));
        x.opcode = ACCEL_OP_COPY_CRC;
        x.dst = d;
        memset(gp(&g, d), 0, n);
        idx = gq_submit(&g, q0, x);
        assert_int_equal(gq_wait(&g, q0, idx), ACCEL_ST_SUCCESS);
        assert_int_equal(comp_of(&g, q0, idx)->value,
                         kit_crc32c(0xabcdef01u, gp(&g, s), n));
        assert_memory_equal(gp(&g, d), gp(&g, s), n);
        /* DUALCAST */
        x = accel_desc_make(ACCEL_OP_DUALCAST, n, s, d);
        x.dst2 = d2;
        memset(gp(&g, d), 0, n);
        idx = gq_submit(&g, q0, x);
        assert_int_equal(gq_wait(&g, q0, idx), ACCEL_ST_SUCCESS);
        assert_memory_equal(gp(&g, d), gp(&g, s), n);
        assert_memory_equal(gp(&g, d2), gp(&g, s), n);
        /* FILL, COMPARE_PATTERN */
        x = accel_desc_make(ACCEL_OP_FILL, n, 0, d);
        x.pattern = 0x1122334455667788ull + i;
        idx = gq_submit(&g, q0, x);
        assert_int_equal(gq_wait(&g, q0, idx), ACCEL_ST_SUCCESS);
        for (j = 0; j < n; j++)
            assert_int_equal(*(uint8_t *)gp(&g, d + j),
                             (uint8_t)(x.pattern >> (8 * (j % 8))));
        x.opcode = ACCEL_OP_COMPARE_PATTERN;
        x.src = d;
        idx = gq_submit(&g, q0, x);
        assert_int_equal(gq_wait(&g, q0, idx), ACCEL_ST_SUCCESS);
    }
    /* BATCH of three, then DRAIN and NOP. */
    {
        uint64_t list = DATA + 12 * MB, comps = list + 4096;
        struct accel_desc el[3] = {
            accel_desc_make(ACCEL_OP_FILL, 4096, 0, DATA + 13 * MB),
            accel_desc_make(ACCEL_OP_MEMMOVE, 4096, DATA + 13 * MB,
                            DATA + 14 * MB),
            accel_desc_make(ACCEL_OP_COMPARE, 4096, DATA + 13 * MB,
                            DATA + 14 * MB),
        };
        uint32_t idx;

        el[0].pattern = 0x5a5a5a5a5a5a5a5aull;
        for (i = 0; i < 3; i++) {
            el[i].comp = comps + i * 32;
            memset(gp(&g, el[i].comp), 0, 32);
        }
        uint32_t before = qreg(&g, 2, ACCEL_Q_COMPLETED);

        memcpy(gp(&g, list), el, sizeof(el));
        gq_post(&g, 2, accel_desc_make(ACCEL_OP_BATCH, 3, list, 0), false);
        idx = gq_post(&g, 2, accel_desc_make(ACCEL_OP_DRAIN, 0, 0, 0), true);
        assert_int_equal(gq_wait(&g, 2, idx), ACCEL_ST_SUCCESS);
        assert_int_equal(comp_status(&g, 2, idx - 1), ACCEL_ST_SUCCESS);
        assert_int_equal(comp_of(&g, 2, idx - 1)->bytes, 3);
        for (i = 0; i < 3; i++)
            assert_int_equal(
                ((struct accel_comp *)gp(&g, comps + i * 32))->status,
                ACCEL_ST_SUCCESS);
        assert_int_equal(*(uint8_t *)gp(&g, DATA + 14 * MB + 4095), 0x5a);
        idx = gq_submit(&g, 3, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
        assert_int_equal(gq_wait(&g, 3, idx), ACCEL_ST_SUCCESS);
        /* The batch, its three elements and the drain. */
        assert_int_equal(qreg(&g, 2, ACCEL_Q_COMPLETED), before + 5);
    }
    guest_close(&g);
}

/* Ring wrap-around through the device, and queue disable aborting what
 * has not run. */
static void
test_wrap_and_disable(void **state)
{
    struct guest g;
    uint32_t i, idx = 0, ok = 0, aborted = 0;
    bool seen_abort = false;

    (void)state;
    guest_open(&g, 0, false);
    gq_enable(&g, 0, 8);
    for (i = 0; i < 100; i++) {
        struct accel_desc d =
            accel_desc_make(ACCEL_OP_FILL, 64, 0, DATA + i * 64ull);

        d.pattern = i;
        idx = gq_submit(&g, 0, d);
    }
    assert_int_equal(gq_wait(&g, 0, idx), ACCEL_ST_SUCCESS);
    for (i = 0; i < 100; i++)
        assert_int_equal(*(uint8_t *)gp(&g, DATA + i * 64ull), i);

    /* A backlog of large copies, then CTRL.ENABLE = 0. */
    gq_enable(&g, 1, 64);
    for (i = 0; i < 64; i++)
        gq_post(&g, 1,
                accel_desc_make(ACCEL_OP_MEMMOVE, MB, DATA, DATA + 2 * MB),
                false);
    gq_kick(&g, 1);
    qwr(&g, 1, ACCEL_Q_CTRL, 0, 4);
    assert_int_equal(qreg(&g, 1, ACCEL_Q_STATUS), ACCEL_QS_DISABLED);
    assert_int_equal(rword(&g, 1, ACCEL_RING_HEAD), 64);
    for (i = 0; i < 64; i++) {
        uint8_t s = comp_status(&g, 1, i);

        assert_true(s == ACCEL_ST_SUCCESS || s == ACCEL_ST_ABORTED);
        if (s == ACCEL_ST_ABORTED)
            seen_abort = true;
        else
            assert_false(seen_abort); /* in ring order */
        ok += s == ACCEL_ST_SUCCESS;
        aborted += s == ACCEL_ST_ABORTED;
    }
    print_message("disable: %u done, %u aborted\n", ok, aborted);
    guest_close(&g);
}

/* ---------------------------------------------------------------- */
/* The ring protocol under load                                      */

static void
test_event_suppression(void **state)
{
    const uint32_t n = 20000;
    struct umdev_client_stats c0, c1;
    struct guest g;
    uint32_t i, idx = 0, rings;

    (void)state;
    guest_open(&g, 0, false);
    gq_enable(&g, 0, 256);
    umdev_client_get_stats(g.c, &c0);
    for (i = 0; i < n; i++) {
        struct accel_desc d =
            accel_desc_make(ACCEL_OP_MEMMOVE, 64, DATA, DATA + MB);

        d.flags = i % 1000 == 999 ? ACCEL_DF_COMP : 0;
        idx = gq_submit(&g, 0, d);
    }
    assert_int_equal(gq_wait(&g, 0, idx), ACCEL_ST_SUCCESS);
    gq_wait_head(&g, 0);
    umdev_client_get_stats(g.c, &c1);
    rings = qreg(&g, 0, ACCEL_Q_DOORBELLS);
    print_message("%u descriptors: %u doorbells, %llu socket messages\n", n,
                  rings, (unsigned long long)(c1.requests - c0.requests));
    assert_int_equal(c1.requests - c0.requests, rings);
    assert_true(rings < n / 1000);
    assert_int_equal(reg_rd64(g.c, ACCEL_REG_QUEUE(0) + ACCEL_Q_COMPLETED), n);
    guest_close(&g);
}

static const struct CMUnitTest tests[] = {
    AF_TEST(test_identity),
    AF_TEST(test_ops),
    AF_TEST(test_wrap_and_disable),
    AF_TEST(test_event_suppression),
};

HARNESS_MAIN("func.accel_ops", tests)
