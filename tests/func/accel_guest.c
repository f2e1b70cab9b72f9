/* The accel functional tests' fixture and guest driver: see accel_guest.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "accel_guest.h"
#include "accel_serve.h"

const unsigned int af_queues[AF_NDEV] = { 2, 4 };
struct accel_fixture AF;

int
af_setup(void **state)
{
    struct accel_engine_config ec = {
        .nr_queues = 8,
        .nr_threads = 2,
        /* Wider than this loaded machine's scheduling gaps: see
         * test_event_suppression in test_accel_engine_ring.c. */
        .poll_us = 2000,
    };

    (void)state;
    memset(&AF, 0, sizeof(AF));
    kit_log_init(&AF.log, NULL, "UMDEV_FUNC_LOG");
    ec.log = &AF.log.logger;
    assert_int_equal(accel_engine_create(&ec, &AF.e), 0);
    accel_serve(&AF.serve, "accel", AF.e, af_queues, AF_NDEV, &AF.log.logger,
                AF.d);
    return 0;
}

int
af_teardown(void **state)
{
    (void)state;
    assert_int_equal(kit_serve_stop(&AF.serve, HARNESS_TIMEOUT_MS), 0);
    assert_int_equal(accel_engine_free_queues(AF.e), 8);
    accel_engine_destroy(AF.e);
    return 0;
}

void *
gp(struct guest *g, uint64_t iova)
{
    assert_true(iova >= GB && iova < GB + GSIZE);
    return g->mem + (iova - GB);
}

uint32_t
qreg(struct guest *g, unsigned int q, unsigned int off)
{
    return reg_rd32(g->c, ACCEL_REG_QUEUE(q) + off);
}

void
qwr(struct guest *g, unsigned int q, unsigned int off, uint64_t v, size_t n)
{
    reg_wr(g->c, ACCEL_REG_QUEUE(q) + off, v, n);
}

void
guest_connect(struct guest *g, const char *path, unsigned int nq, bool intx)
{
    struct umdev_client_opts o = { .timeout_ms = HARNESS_TIMEOUT_MS };
    unsigned int i;

    memset(g, 0, sizeof(*g));
    g->nq = nq;
    g->nvec = nq + 1;
    for (i = 0; i <= ACCEL_DEV_MAX_QUEUES; i++)
        g->efd[i] = -1;
    assert_int_equal(umdev_client_connect(path, &o, &g->c), 0);
    g->mem = guest_mem(GSIZE, &g->fd);
    assert_int_equal(
        umdev_client_dma_map(g->c, GB, GSIZE, g->mem, g->fd, 0, DMA_RW), 0);
    if (!intx) {
        for (i = 0; i < g->nvec; i++)
            g->efd[i] = efd_new();
        assert_int_equal(umdev_client_set_irqs(g->c, VFIO_PCI_MSIX_IRQ_INDEX,
                                               VFIO_IRQ_SET_DATA_EVENTFD |
                                                   VFIO_IRQ_SET_ACTION_TRIGGER,
                                               0, g->nvec, g->efd, NULL),
                         0);
        cfg_enable_msix(g->c);
    }
    guest_enable_device(g);
}

void
guest_enable_device(struct guest *g)
{
    cfg_set_command(g->c, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    reg_wr(g->c, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_ENABLE, 4);
}

void
guest_open(struct guest *g, unsigned int dev, bool intx)
{
    guest_connect(g, AF.serve.devs[dev].path, af_queues[dev], intx);
    g->dev = dev;
}

void
guest_close(struct guest *g)
{
    unsigned int i;

    umdev_client_destroy(g->c);
    guest_mem_free(g->mem, GSIZE, g->fd);
    for (i = 0; i <= ACCEL_DEV_MAX_QUEUES; i++)
        if (g->efd[i] >= 0)
            close(g->efd[i]);
}

uint32_t
gq_try_enable(struct guest *g, unsigned int q, uint64_t ring, uint32_t size,
              uint32_t prio)
{
    g->q[q].ring = ring;
    /* Hostile rings may lie outside RAM: never driven, never mapped. */
    accel_ring_drv_init(
        &g->q[q].r, ring >= GB && ring + 8 <= GB + GSIZE ? gp(g, ring) : NULL,
        size, NULL, 0);
    if (g->q[q].r.ring != NULL)
        *(uint32_t *)g->q[q].r.ring = 0; /* TAIL */
    qwr(g, q, ACCEL_Q_RING_BASE, ring, 8);
    qwr(g, q, ACCEL_Q_RING_SIZE, size, 4);
    qwr(g, q, ACCEL_Q_PRIORITY, prio, 4);
    qwr(g, q, ACCEL_Q_CTRL, ACCEL_Q_CTRL_ENABLE, 4);
    return qreg(g, q, ACCEL_Q_STATUS);
}

void
gq_enable(struct guest *g, unsigned int q, uint32_t size)
{
    uint32_t st = gq_try_enable(g, q, RING(q), size, 1);

    assert_int_equal(st, ACCEL_QS_ENABLED);
    assert_int_equal(*(uint32_t *)gp(g, RING(q) + ACCEL_RING_DOORBELL_NEEDED),
                     1);
}

uint32_t
rword(struct guest *g, unsigned int q, uint64_t off)
{
    return accel_ring_load(gp(g, g->q[q].ring), (uint32_t)off);
}

uint64_t
comp_iova(unsigned int q, uint32_t idx)
{
    return COMPS(q) + (uint64_t)(idx % COMPS_PER_Q) * ACCEL_COMP_SIZE;
}

struct accel_comp *
comp_of(struct guest *g, unsigned int q, uint32_t idx)
{
    return gp(g, comp_iova(q, idx));
}

uint8_t
comp_status(struct guest *g, unsigned int q, uint32_t idx)
{
    return accel_comp_status(comp_of(g, q, idx));
}

void
doorbell(struct guest *g, unsigned int q)
{
    uint32_t v = 1;

    assert_int_equal(
        umdev_client_region_write_posted(g->c, BAR2, q * 0x1000ull, &v, 4), 0);
}

int
publish_tail(struct guest *g, unsigned int q)
{
    uint32_t one = 1;

    if (!accel_ring_publish(&g->q[q].r))
        return 0;
    return umdev_client_region_write_posted(g->c, BAR2, q * 0x1000ull, &one, 4);
}

void
gq_kick(struct guest *g, unsigned int q)
{
    assert_int_equal(publish_tail(g, q), 0);
}

uint32_t
gq_post(struct guest *g, unsigned int q, struct accel_desc d, bool kick)
{
    struct accel_ring_drv *r = &g->q[q].r;
    int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;
    uint32_t idx = r->tail;

    assert_non_null(r->ring);
    while (accel_ring_room(r) == 0) {
        assert_true(kit_now_ms() < deadline);
        usleep(20);
    }
    if ((d.flags & ACCEL_DF_COMP) && d.comp == 0)
        d.comp = comp_iova(q, idx);
    if ((d.flags & ACCEL_DF_COMP) && d.comp >= GB && d.comp < GB + GSIZE)
        memset(gp(g, d.comp), 0, ACCEL_COMP_SIZE);
    accel_ring_post(r, &d);
    if (kick)
        gq_kick(g, q);
    return idx;
}

uint32_t
gq_submit(struct guest *g, unsigned int q, struct accel_desc d)
{
    return gq_post(g, q, d, true);
}

uint8_t
gq_wait(struct guest *g, unsigned int q, uint32_t idx)
{
    return gq_wait_ms(g, q, idx, HARNESS_TIMEOUT_MS);
}

uint8_t
gq_wait_ms(struct guest *g, unsigned int q, uint32_t idx, int timeout_ms)
{
    int64_t deadline = kit_now_ms() + timeout_ms;
    uint8_t s;

    while ((s = comp_status(g, q, idx)) == ACCEL_ST_NONE) {
        if (kit_now_ms() > deadline)
            fail_msg("dev %u queue %u: descriptor %u never completed", g->dev,
                     q, idx);
        usleep(20);
    }
    return s;
}

void
gq_wait_head(struct guest *g, unsigned int q)
{
    int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;

    while (rword(g, q, ACCEL_RING_HEAD) != g->q[q].r.tail) {
        assert_true(kit_now_ms() < deadline);
        usleep(20);
    }
}

uint64_t
efd_collect(int efd, uint64_t want, int timeout_ms)
{
    int64_t deadline = kit_now_ms() + timeout_ms;
    uint64_t total = 0;

    while (total < want) {
        int64_t left = deadline - kit_now_ms();

        if (left <= 0)
            break;
        total += efd_wait(efd, (int)left);
    }
    return total;
}
