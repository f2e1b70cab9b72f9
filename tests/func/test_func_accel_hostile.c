/*
 * Functional test of an accel subdevice driven by a hostile guest
 * (accel_guest.h): bad rings, descriptors outside guest RAM, unreported
 * errors, a TAIL out of range, bad doorbells, no bus mastering; all while
 * a well-behaved guest on the other subdevice of the same engine keeps
 * verifying its own traffic.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "accel_guest.h"

/* ---------------------------------------------------------------- */
/* A hostile guest next to a well-behaved one                        */

struct bystander {
    struct guest *g;
    atomic_int stop;
    atomic_uint ok, bad;
};

/* The well-behaved guest's traffic, verified; runs on its own thread
 * (its own client handle). */
static void *
bystander_thread(void *arg)
{
    struct bystander *b = arg;
    struct guest *g = b->g;
    uint32_t r = 0;

    while (!atomic_load(&b->stop)) {
        uint32_t idx = g->q[0].r.tail, n = 1 + (r * 2654435761u) % 65536;
        struct accel_desc d = {
            .opcode = ACCEL_OP_COPY_CRC,
            .flags = ACCEL_DF_COMP,
            .size = n,
            .src = DATA,
            .dst = DATA + MB,
            .comp = comp_iova(0, idx),
        };
        struct accel_comp *c = (void *)(g->mem + (d.comp - GB));
        int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;
        uint8_t s;

        kit_fill_rand(g->mem + (DATA - GB), n, r++);
        memset(c, 0, sizeof(*c));
        accel_ring_post(&g->q[0].r, &d);
        if (publish_tail(g, 0) != 0)
            atomic_fetch_add(&b->bad, 1);
        while ((s = accel_comp_status(c)) == ACCEL_ST_NONE &&
               kit_now_ms() < deadline)
            usleep(10);
        if (s == ACCEL_ST_SUCCESS &&
            memcmp(g->mem + (DATA - GB), g->mem + (DATA + MB - GB), n) == 0 &&
            c->value == kit_crc32c(0, g->mem + (DATA - GB), n))
            atomic_fetch_add(&b->ok, 1);
        else
            atomic_fetch_add(&b->bad, 1);
    }
    return NULL;
}

/* SWERR head entry: code, queue. */
static void
expect_swerr(struct guest *g, uint8_t code, unsigned int q, uint64_t addr)
{
    uint32_t info = reg_rd32(g->c, ACCEL_REG_SWERR_INFO);

    assert_true((reg_rd32(g->c, ACCEL_REG_SWERR_COUNT) & 0xff) > 0);
    assert_int_equal(info & 0xff, code);
    assert_int_equal((info >> 8) & 0xff, q);
    assert_int_equal(reg_rd64(g->c, ACCEL_REG_SWERR_ADDR), addr);
    reg_wr(g->c, ACCEL_REG_SWERR_POP, 1, 4);
}

static void
test_hostile_guest(void **state)
{
    struct guest bad, good;
    struct bystander by;
    pthread_t th;
    uint32_t idx, st;
    uint64_t bar0 = 0xfe000000ull;
    uint8_t sentinel[4096];
    struct accel_desc d;

    (void)state;
    guest_open(&good, 0, false);
    gq_enable(&good, 0, 16);
    by = (struct bystander){ .g = &good };
    assert_int_equal(pthread_create(&th, NULL, bystander_thread, &by), 0);

    guest_open(&bad, 1, false);
    memset(gp(&bad, DATA_END - 4096), 0xee, 4096);
    /* Rings: sizes, alignment, addresses outside guest RAM or on MMIO. */
    st = gq_try_enable(&bad, 0, RING(0), 3, 1);
    assert_int_equal(st, ACCEL_QERR_RING_SIZE << 8);
    st = gq_try_enable(&bad, 0, RING(0), 0, 1);
    assert_int_equal(st, ACCEL_QERR_RING_SIZE << 8);
    st = gq_try_enable(&bad, 0, RING(0), ACCEL_RING_MAX * 2, 1);
    assert_int_equal(st, ACCEL_QERR_RING_SIZE << 8);
    st = gq_try_enable(&bad, 0, RING(0) + 8, 16, 1);
    assert_int_equal(st, ACCEL_QERR_RING_ALIGN << 8);
    st = gq_try_enable(&bad, 0, RING(0), 16, 0);
    assert_int_equal(st, ACCEL_QERR_PRIORITY << 8);
    st = gq_try_enable(&bad, 0, 0x1000, 16, 1); /* unmapped */
    assert_int_equal(st, ACCEL_QERR_RING_FAULT << 8);
    assert_int_equal(reg_rd64(bad.c, ACCEL_REG_QUEUE(0) + ACCEL_Q_ERR_ADDR),
                     0x1000);
    /* The guest points BAR0 somewhere and the ring at it. */
    assert_int_equal(
        umdev_client_region_write(bad.c, CONFIG, PCI_BASE_ADDRESS_0, &bar0, 8),
        0);
    st = gq_try_enable(&bad, 0, bar0, 16, 1);
    assert_int_equal(st, ACCEL_QERR_RING_FAULT << 8);
    /* Running off the end of guest RAM. */
    st = gq_try_enable(&bad, 0, DATA_END - 1024, 64, 1);
    assert_int_equal(st, ACCEL_QERR_RING_FAULT << 8);
    assert_int_equal(reg_rd64(bad.c, ACCEL_REG_QUEUE(0) + ACCEL_Q_ERR_ADDR),
                     DATA_END);
    assert_int_equal(*(uint32_t *)gp(&bad, DATA_END - 1024 + ACCEL_RING_HEAD),
                     0xeeeeeeee); /* not touched */
    /* A device reset returns the failed queue's STATUS and ERR_ADDR to
     * their reset values (0), as every register (devices/accel/README). */
    reg_wr(bad.c, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_RESET, 4);
    assert_int_equal(reg_rd32(bad.c, ACCEL_REG_QUEUE(0) + ACCEL_Q_STATUS), 0);
    assert_int_equal(reg_rd64(bad.c, ACCEL_REG_QUEUE(0) + ACCEL_Q_ERR_ADDR), 0);
    reg_wr(bad.c, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_ENABLE, 4);

    /* Descriptors pointing outside guest RAM. */
    memcpy(sentinel, gp(&bad, DATA_END - 4096), 4096);
    gq_enable(&bad, 0, 16);
    idx = gq_submit(
        &bad, 0,
        accel_desc_make(ACCEL_OP_MEMMOVE, 8192, DATA_END - 4096, DATA));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&bad, 0, idx)->info, DATA_END);
    idx = gq_submit(&bad, 0,
                    accel_desc_make(ACCEL_OP_FILL, 8192, 0, DATA_END - 4096));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_ADDR_FAULT);
    assert_memory_equal(gp(&bad, DATA_END - 4096), sentinel, 4096);
    idx =
        gq_submit(&bad, 0, accel_desc_make(ACCEL_OP_MEMMOVE, 4096, DATA, bar0));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_ADDR_FAULT);
    assert_int_equal(comp_of(&bad, 0, idx)->info, bar0);
    idx = gq_submit(
        &bad, 0,
        accel_desc_make(ACCEL_OP_MEMMOVE, 64, 0xdead00000000ull, DATA));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_ADDR_FAULT);
    d = accel_desc_make(0x7f, 64, DATA, DATA);
    idx = gq_submit(&bad, 0, d);
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_INVALID_OPCODE);
    d = accel_desc_make(ACCEL_OP_MEMMOVE, ACCEL_DEFAULT_MAX_TRANSFER + 1, DATA,
                        DATA);
    idx = gq_submit(&bad, 0, d);
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_INVALID_FIELD);
    assert_int_equal(comp_of(&bad, 0, idx)->info, 4);
    assert_int_equal(reg_rd32(bad.c, ACCEL_REG_SWERR_COUNT), 0);

    /* Errors without a record go to the log and the error vector. */
    d = accel_desc_make(ACCEL_OP_MEMMOVE, 64, 0x5000, DATA);
    d.flags = 0;
    gq_submit(&bad, 0, d);
    d = accel_desc_make(ACCEL_OP_NOP, 0, 0, 0);
    d.comp = 0x7000; /* unmapped completion record */
    gq_submit(&bad, 0, d);
    assert_true(efd_collect(bad.efd[bad.nq], 1, HARNESS_TIMEOUT_MS) >= 1);
    idx = gq_submit(&bad, 0, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_SUCCESS);
    assert_true(reg_rd32(bad.c, ACCEL_REG_INTSTS) & ACCEL_INTSTS_ERROR);
    expect_swerr(&bad, ACCEL_ST_ADDR_FAULT, 0, 0x5000);
    expect_swerr(&bad, ACCEL_ERR_COMP_FAULT, 0, 0x7000);
    assert_int_equal(reg_rd32(bad.c, ACCEL_REG_SWERR_COUNT), 0);

    /* TAIL out of range: the queue halts and says why. */
    gq_enable(&bad, 1, 16);
    __atomic_store_n((uint32_t *)gp(&bad, RING(1) + ACCEL_RING_TAIL), 1000,
                     __ATOMIC_RELEASE);
    doorbell(&bad, 1);
    {
        int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;

        while (ACCEL_Q_STATUS_STATE(qreg(&bad, 1, ACCEL_Q_STATUS)) !=
               ACCEL_QS_ERROR)
            assert_true(kit_now_ms() < deadline);
    }
    assert_int_equal(ACCEL_Q_STATUS_ERROR(qreg(&bad, 1, ACCEL_Q_STATUS)),
                     ACCEL_QERR_BAD_INDEX);
    assert_int_equal(reg_rd64(bad.c, ACCEL_REG_QUEUE(1) + ACCEL_Q_ERR_ADDR),
                     1000);
    expect_swerr(&bad, ACCEL_ERR_BAD_INDEX, 1, 1000);
    /* Recovers through disable. */
    qwr(&bad, 1, ACCEL_Q_CTRL, 0, 4);
    gq_enable(&bad, 1, 16);
    idx = gq_submit(&bad, 1, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(gq_wait(&bad, 1, idx), ACCEL_ST_SUCCESS);

    /* A flood of unreported errors overflows the log, nothing else. */
    gq_enable(&bad, 2, 16);
    gq_enable(&bad, 3, 16);
    for (idx = 0; idx < 40; idx++) {
        d = accel_desc_make(ACCEL_OP_MEMMOVE, 64, 0x5000 + idx, DATA);
        d.flags = 0;
        gq_submit(&bad, 2 + idx % 2, d);
    }
    gq_wait_head(&bad, 2);
    gq_wait_head(&bad, 3);
    assert_int_equal(reg_rd32(bad.c, ACCEL_REG_SWERR_COUNT),
                     ACCEL_SWERR_DEPTH | (40 - ACCEL_SWERR_DEPTH) << 16);

    /* Doorbell writes off offset 0 or not 32-bit: refused (profile),
     * nothing rings. */
    {
        uint32_t one = 1, db0 = qreg(&bad, 0, ACCEL_Q_DOORBELLS),
                 db3 = qreg(&bad, 3, ACCEL_Q_DOORBELLS);
        uint64_t eight = 1;

        assert_int_equal(
            umdev_client_region_write(bad.c, BAR2, 0x1000 * 3 + 4, &one, 4),
            -EACCES);
        assert_int_equal(umdev_client_region_write(bad.c, BAR2, 0, &eight, 8),
                         -EACCES);
        assert_int_equal(qreg(&bad, 0, ACCEL_Q_DOORBELLS), db0);
        assert_int_equal(qreg(&bad, 3, ACCEL_Q_DOORBELLS), db3);
    }
    /* Bus mastering off: enable refused. */
    cfg_set_command(bad.c, PCI_COMMAND_MEMORY);
    qwr(&bad, 1, ACCEL_Q_CTRL, 0, 4);
    st = gq_try_enable(&bad, 1, RING(1), 16, 1);
    assert_int_equal(st, ACCEL_QERR_NO_BUS_MASTER << 8);
    /* Device disabled: enable refused. */
    cfg_set_command(bad.c, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    reg_wr(bad.c, ACCEL_REG_DEVCTL, 0, 4);
    st = gq_try_enable(&bad, 1, RING(1), 16, 1);
    assert_int_equal(st, ACCEL_QERR_DEV_DISABLED << 8);

    /* Let the bystander do some work of its own before it stops. */
    {
        int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;

        while (atomic_load(&by.ok) < 20 && kit_now_ms() < deadline)
            usleep(1000);
    }
    atomic_store(&by.stop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    print_message("bystander: %u ok, %u bad\n", atomic_load(&by.ok),
                  atomic_load(&by.bad));
    assert_true(atomic_load(&by.ok) >= 20);
    assert_int_equal(atomic_load(&by.bad), 0);
    assert_int_equal(reg_rd32(good.c, ACCEL_REG_SWERR_COUNT), 0);
    assert_int_equal(reg_rd32(good.c, ACCEL_REG_INTSTS) & ACCEL_INTSTS_ERROR,
                     0);
    guest_close(&bad);
    guest_close(&good);
}

/*
 * Guest RAM the VMM did not share (mapped without an fd, as QEMU does
 * without share=on): the engine cannot read rings through messages, so a
 * queue faults, and the operator is told why, once per client, in the
 * log and through umdev_dev_guest_memory_problem() (`umdevctl info`). A
 * client that shares its memory afterwards starts clean.
 */
static void
test_unshared_guest_memory(void **state)
{
    struct umdev_dev *dev = accel_dev_dev(AF.d[1]);
    struct guest g;
    int warnings;

    (void)state;
    assert_true(umdev_dev_needs_shared_memory(dev));
    guest_open(&g, 1, false);
    assert_int_equal(umdev_client_dma_unmap(g.c, GB, GSIZE), 0);
    assert_int_equal(umdev_client_dma_map(g.c, GB, GSIZE, g.mem, -1, 0, DMA_RW),
                     0);
    assert_null(umdev_dev_guest_memory_problem(dev));
    warnings = atomic_load(&AF.log.warnings);
    assert_int_equal(gq_try_enable(&g, 0, RING(0), 16, 1),
                     ACCEL_QERR_RING_FAULT << 8);
    assert_int_equal(gq_try_enable(&g, 1, RING(1), 16, 1),
                     ACCEL_QERR_RING_FAULT << 8);
    assert_int_equal(gq_try_enable(&g, 0, RING(0), 16, 1),
                     ACCEL_QERR_RING_FAULT << 8);
    assert_non_null(umdev_dev_guest_memory_problem(dev));
    assert_string_equal(umdev_dev_guest_memory_problem(dev),
                        UMDEV_DMA_NOT_SHARED_REASON);
    assert_non_null(strstr(UMDEV_DMA_NOT_SHARED_REASON, "share=on"));
    /* Said once, not per fault. */
    assert_int_equal(atomic_load(&AF.log.warnings), warnings + 1);
    guest_close(&g);
    /* Still there for the operator after the client left. */
    assert_non_null(umdev_dev_guest_memory_problem(dev));

    guest_open(&g, 1, false);
    assert_null(umdev_dev_guest_memory_problem(dev));
    gq_enable(&g, 0, 16);
    guest_close(&g);
}

/*
 * A client that shrinks its guest-memory file under the device: its memfd
 * has no F_SEAL_SHRINK (made without sealing, as QEMU's seal=off does), so
 * the DMA_MAP was accepted, and touching the pages it cut off raises
 * SIGBUS in the server, which here is this very process. A MEMMOVE from
 * the lost pages, and one into them, complete ADDR_FAULT at an address in
 * the lost range; the queue keeps serving; a ring lost too halts its
 * queue with RING_FAULT; the other subdevice's traffic goes on throughout.
 */
static void
test_shrunk_guest_memory(void **state)
{
    const uint64_t keep = 2 * MB, lost = GB + keep, n = 64 * 1024;
    struct guest bad, good;
    struct bystander by;
    struct accel_comp *c;
    pthread_t th;
    enum { INFLIGHT = 15 }; /* the ring holds 16 */
    uint32_t idx, first[INFLIGHT];
    unsigned int i, faulted = 0;

    (void)state;
    /* cmocka sets its own SIGBUS handler for each test: ours goes first
     * (and chains to it), as it would in a server. */
    assert_int_equal(umdev_fault_guard_init(), 0);
    guest_open(&good, 0, false);
    gq_enable(&good, 0, 16);
    by = (struct bystander){ .g = &good };
    assert_int_equal(pthread_create(&th, NULL, bystander_thread, &by), 0);

    guest_open(&bad, 1, false);
    gq_enable(&bad, 0, 16);
    idx = gq_submit(&bad, 0,
                    accel_desc_make(ACCEL_OP_MEMMOVE, n, DATA + 4 * MB, DATA));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_SUCCESS);
    /* Rings, records and the first MiB of data stay; the rest is gone
     * (the harness touches only what stays from here on). It goes while
     * 2 MiB copies out of it are under way, once the first is done: each
     * completes, whole or ADDR_FAULT, whichever the cut found it at. */
    for (i = 0; i < INFLIGHT; i++)
        first[i] = gq_post(&bad, 0,
                           accel_desc_make(ACCEL_OP_MEMMOVE, 2 * MB,
                                           DATA + 4 * MB + (i % 4) * 2 * MB,
                                           DATA + 12 * MB),
                           i == INFLIGHT - 1);
    assert_int_equal(gq_wait(&bad, 0, first[0]), ACCEL_ST_SUCCESS);
    assert_int_equal(ftruncate(bad.fd, (off_t)keep), 0);
    for (i = 1; i < INFLIGHT; i++) {
        uint8_t st = gq_wait(&bad, 0, first[i]);

        assert_true(st == ACCEL_ST_SUCCESS || st == ACCEL_ST_ADDR_FAULT);
        faulted += st == ACCEL_ST_ADDR_FAULT;
    }
    print_message("in flight: %u of %u faulted\n", faulted, INFLIGHT - 1);

    idx = gq_submit(&bad, 0,
                    accel_desc_make(ACCEL_OP_MEMMOVE, n, DATA + 4 * MB, DATA));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_ADDR_FAULT);
    c = comp_of(&bad, 0, idx);
    assert_true(c->info >= DATA + 4 * MB && c->info < DATA + 4 * MB + n);
    assert_int_equal(c->bytes, 0);

    idx = gq_submit(&bad, 0,
                    accel_desc_make(ACCEL_OP_MEMMOVE, n, DATA, DATA + 8 * MB));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_ADDR_FAULT);
    c = comp_of(&bad, 0, idx);
    assert_true(c->info >= DATA + 8 * MB && c->info < DATA + 8 * MB + n);
    assert_true(c->info >= lost);

    /* CRC over lost pages, then good work on the same queue. */
    idx = gq_submit(&bad, 0,
                    accel_desc_make(ACCEL_OP_CRC32C, n, DATA + 12 * MB, 0));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_ADDR_FAULT);
    idx = gq_submit(&bad, 0,
                    accel_desc_make(ACCEL_OP_MEMMOVE, 4096, DATA, DATA + 4096));
    assert_int_equal(gq_wait(&bad, 0, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(ACCEL_Q_STATUS_STATE(qreg(&bad, 0, ACCEL_Q_STATUS)),
                     ACCEL_QS_ENABLED);

    /* Now the ring goes too: the next doorbell finds it unreadable. */
    assert_int_equal(ftruncate(bad.fd, 0), 0);
    doorbell(&bad, 0);
    {
        int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;

        while (ACCEL_Q_STATUS_STATE(qreg(&bad, 0, ACCEL_Q_STATUS)) !=
               ACCEL_QS_ERROR)
            assert_true(kit_now_ms() < deadline);
    }
    assert_int_equal(ACCEL_Q_STATUS_ERROR(qreg(&bad, 0, ACCEL_Q_STATUS)),
                     ACCEL_QERR_RING_FAULT);
    {
        uint64_t at = reg_rd64(bad.c, ACCEL_REG_QUEUE(0) + ACCEL_Q_ERR_ADDR);

        assert_true(at >= RING(0) && at < RING(0) + accel_ring_bytes(16));
    }

    {
        int64_t deadline = kit_now_ms() + HARNESS_TIMEOUT_MS;

        while (atomic_load(&by.ok) < 20 && kit_now_ms() < deadline)
            usleep(1000);
    }
    atomic_store(&by.stop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(atomic_load(&by.ok) >= 20);
    assert_int_equal(atomic_load(&by.bad), 0);
    guest_close(&bad);
    guest_close(&good);
}

static const struct CMUnitTest tests[] = {
    AF_TEST(test_hostile_guest),
    AF_TEST(test_unshared_guest_memory),
    AF_TEST(test_shrunk_guest_memory),
};

HARNESS_MAIN("func.accel_hostile", tests)
