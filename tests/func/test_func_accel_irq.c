/*
 * Functional tests of the accel subdevice's interrupts (accel_guest.h):
 * MSI-X per queue vector with coalescing, and INTx with the guest's
 * acknowledge and EOI.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <unistd.h>

#include "accel_guest.h"

/* ---------------------------------------------------------------- */
/* Interrupts                                                        */

static void
test_msix(void **state)
{
    struct accel_desc d = accel_desc_make(ACCEL_OP_NOP, 0, 0, 0);
    struct guest g;
    uint32_t i, idx = 0;

    (void)state;
    d.flags |= ACCEL_DF_INTR;
    guest_open(&g, 1, false);
    gq_enable(&g, 0, 64);
    qwr(&g, 3, ACCEL_Q_INT_VECTOR, 2, 4); /* queue 3 on vector 2 */
    gq_enable(&g, 3, 64);
    idx = gq_submit(&g, 0, d);
    assert_int_equal(gq_wait(&g, 0, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(efd_wait(g.efd[0], HARNESS_TIMEOUT_MS), 1);
    idx = gq_submit(&g, 3, d);
    assert_int_equal(gq_wait(&g, 3, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(efd_wait(g.efd[2], HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(efd_wait(g.efd[3], HARNESS_QUIET_MS), 0);
    assert_int_equal(efd_wait(g.efd[0], HARNESS_QUIET_MS), 0);
    /* Without INTR: no interrupt. */
    idx = gq_submit(&g, 0, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(gq_wait(&g, 0, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(efd_wait(g.efd[0], HARNESS_QUIET_MS), 0);
    assert_true(reg_rd32(g.c, ACCEL_REG_INTSTS) & ACCEL_INTSTS_QUEUE(3));

    /* Coalescing: 64 descriptors published at once, one interrupt per
     * 16 completions. */
    qwr(&g, 0, ACCEL_Q_CTRL, 0, 4);
    qwr(&g, 0, ACCEL_Q_COAL_COUNT, 16, 4);
    gq_enable(&g, 0, 64);
    for (i = 0; i < 64; i++)
        idx = gq_post(&g, 0, d, false);
    gq_kick(&g, 0);
    assert_int_equal(gq_wait(&g, 0, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(efd_collect(g.efd[0], 4, HARNESS_TIMEOUT_MS), 4);
    assert_int_equal(efd_wait(g.efd[0], HARNESS_QUIET_MS), 0);
    /* A vector out of range is refused at enable. */
    qwr(&g, 1, ACCEL_Q_INT_VECTOR, 5, 4);
    gq_try_enable(&g, 1, RING(1), 64, 1);
    assert_int_equal(qreg(&g, 1, ACCEL_Q_STATUS),
                     ACCEL_QERR_VECTOR << 8 | ACCEL_QS_DISABLED);
    guest_close(&g);
}

static void
test_intx(void **state)
{
    struct accel_desc d = accel_desc_make(ACCEL_OP_NOP, 0, 0, 0);
    struct guest g;
    uint32_t idx;
    int efd = efd_new();

    (void)state;
    d.flags |= ACCEL_DF_INTR;
    guest_open(&g, 0, true);
    irq_trigger(g.c, VFIO_PCI_INTX_IRQ_INDEX, 0, efd);
    gq_enable(&g, 1, 16);
    idx = gq_submit(&g, 1, d);
    assert_int_equal(gq_wait(&g, 1, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(reg_rd32(g.c, ACCEL_REG_INTSTS), ACCEL_INTSTS_QUEUE(1));
    /* The guest acknowledges (W1C) then EOIs (unmask): no new edge. */
    reg_wr(g.c, ACCEL_REG_INTSTS, ACCEL_INTSTS_QUEUE(1), 4);
    assert_int_equal(reg_rd32(g.c, ACCEL_REG_INTSTS), 0);
    irq_action(g.c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    /* Not acknowledged: the EOI brings the line back. */
    idx = gq_submit(&g, 1, d);
    assert_int_equal(gq_wait(&g, 1, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    irq_action(g.c, VFIO_PCI_INTX_IRQ_INDEX, VFIO_IRQ_SET_ACTION_UNMASK, 0);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    guest_close(&g);
    close(efd);
}

static const struct CMUnitTest tests[] = {
    AF_TEST(test_msix),
    AF_TEST(test_intx),
};

HARNESS_MAIN("func.accel_irq", tests)
