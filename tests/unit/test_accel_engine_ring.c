/*
 * Unit tests of the accel engine in-process, the ring protocol
 * (engine_ring.c): bad TAIL and ring faults halting a queue, queue
 * configuration, disable and abort, interrupt coalescing, sleeping and
 * doorbells, event suppression, and a mapping unmapped under load. The
 * guest memory model and the queue driver are accel_engine_fixture.c.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accel_engine_fixture.h"

/* TAIL beyond HEAD + size halts the queue; the ring is not touched
 * after; disable recovers it. */
static void
test_bad_index(void **state)
{
    struct accel_queue_status st;
    uint32_t idx;

    (void)state;
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    __atomic_store_n((uint32_t *)G(F.t.ring + ACCEL_RING_TAIL),
                     F.t.r.tail + F.t.r.size + 1, __ATOMIC_RELEASE);
    accel_queue_doorbell(F.t.q);
    accel_engine_poll(F.e, 4);
    accel_queue_status(F.t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_ERROR);
    assert_int_equal(st.error, ACCEL_QERR_BAD_INDEX);
    assert_int_equal(st.error_addr, F.t.r.tail + F.t.r.size + 1);
    assert_int_equal(F.t.nerr, 1);
    assert_int_equal(F.t.errs[0].code, ACCEL_ERR_BAD_INDEX);
    /* Halted: doorbells do nothing, enable refuses until disabled. */
    accel_queue_doorbell(F.t.q);
    assert_int_equal(accel_engine_poll(F.e, 4), 0);
    {
        struct accel_queue_config cfg = { .ring = F.t.ring,
                                          .size = 64,
                                          .priority = 1 };

        assert_int_equal(accel_queue_enable(F.t.q, &cfg), -EBUSY);
    }
    accel_queue_disable(F.t.q, true);
    accel_queue_status(F.t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_DISABLED);
    tq_enable(&F.t, 64, 1, 0, 0);
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
}

/* The ring's memory disappears under an enabled queue. */
static void
test_ring_fault(void **state)
{
    struct accel_queue_status st;

    (void)state;
    tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    F.t.no_map = true;
    accel_engine_poll(F.e, 4);
    F.t.no_map = false;
    accel_queue_status(F.t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_ERROR);
    assert_int_equal(st.error, ACCEL_QERR_RING_FAULT);
    assert_int_equal(F.t.nerr, 1);
    assert_int_equal(F.t.errs[0].code, ACCEL_ERR_RING_FAULT);
    /* The first ring access of the visit: clearing DOORBELL_NEEDED. */
    assert_int_equal(F.t.errs[0].addr, F.t.ring + ACCEL_RING_DOORBELL_NEEDED);
    assert_int_equal(st.error_addr, F.t.ring + ACCEL_RING_DOORBELL_NEEDED);
    accel_queue_disable(F.t.q, false);
}

static void
test_queue_config(void **state)
{
    struct accel_queue_config cfg = {
        .ring = RING_AREA(1),
        .size = 64,
        .priority = 1,
    };
    struct accel_queue_status st;
    struct tq t;

    (void)state;
    tq_claim(&t, F.e, 1);
#define EXPECT_REFUSED(field, value, rc, why)                                  \
    do {                                                                       \
        struct accel_queue_config c = cfg;                                     \
        c.field = value;                                                       \
        assert_int_equal(accel_queue_enable(t.q, &c), rc);                     \
        accel_queue_status(t.q, &st);                                          \
        assert_int_equal(st.state, ACCEL_QS_DISABLED);                         \
        assert_int_equal(st.error, why);                                       \
    } while (0)
    EXPECT_REFUSED(size, 0, -EINVAL, ACCEL_QERR_RING_SIZE);
    EXPECT_REFUSED(size, 3, -EINVAL, ACCEL_QERR_RING_SIZE);
    EXPECT_REFUSED(size, ACCEL_RING_MAX * 2, -EINVAL, ACCEL_QERR_RING_SIZE);
    EXPECT_REFUSED(ring, RING_AREA(1) + 32, -EINVAL, ACCEL_QERR_RING_ALIGN);
    EXPECT_REFUSED(priority, 0, -EINVAL, ACCEL_QERR_PRIORITY);
    EXPECT_REFUSED(priority, 16, -EINVAL, ACCEL_QERR_PRIORITY);
    EXPECT_REFUSED(coal_count, 70000, -EINVAL, ACCEL_QERR_COALESCE);
    EXPECT_REFUSED(coal_usec, 2000000, -EINVAL, ACCEL_QERR_COALESCE);
    EXPECT_REFUSED(ring, HOLE, -EFAULT, ACCEL_QERR_RING_FAULT);
    EXPECT_REFUSED(ring, UINT64_MAX - 63, -EINVAL, ACCEL_QERR_RING_FAULT);
    /* Read-only memory cannot hold a ring (HEAD is written). */
    EXPECT_REFUSED(ring, RRO, -EFAULT, ACCEL_QERR_RING_FAULT);
    /* Partly mapped: the error names the first unmapped address. */
    {
        struct accel_queue_config c = cfg;

        c.ring = R1 + R1_SIZE - 4096;
        assert_int_equal(accel_queue_enable(t.q, &c), -EFAULT);
        accel_queue_status(t.q, &st);
        assert_int_equal(st.error_addr, R1 + R1_SIZE);
    }
#undef EXPECT_REFUSED
    /* A ring across two host buffers works (per-access mapping). */
    cfg.ring = R1 - 2048;
    cfg.size = 64;
    assert_int_equal(accel_queue_enable(t.q, &cfg), 0);
    assert_int_equal(accel_queue_enable(t.q, &cfg), -EBUSY);
    accel_queue_status(t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_ENABLED);
    assert_int_equal(st.error, 0);
    assert_true(st.sleeping);
    tq_attach(&t, cfg.ring, 64);
    {
        uint32_t i, idx = 0;

        for (i = 0; i < 200; i++) /* wraps the ring three times */
            idx = tq_submit(
                &t, accel_desc_make(ACCEL_OP_FILL, 16, 0, DATA0 + i * 16));
        assert_int_equal(tq_wait(&t, idx), ACCEL_ST_SUCCESS);
        tq_drain(&t);
    }
    tq_release(&t);
}

/* ---------------------------------------------------------------- */
/* Disable, abort, coalescing                                        */

static void
test_disable_aborts(void **state)
{
    struct accel_queue_status st;
    uint32_t i, idx[10];

    (void)state;
    for (i = 0; i < 10; i++)
        idx[i] = tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    accel_engine_poll(F.e, 0);
    accel_queue_disable(F.t.q, true);
    for (i = 0; i < 10; i++) {
        assert_int_equal(comp_status(&F.t, idx[i]), ACCEL_ST_ABORTED);
        assert_int_equal(comp_of(&F.t, idx[i])->opcode, ACCEL_OP_NOP);
    }
    assert_int_equal(ring_word(&F.t, ACCEL_RING_HEAD), F.t.r.tail);
    accel_queue_status(F.t.q, &st);
    assert_int_equal(st.state, ACCEL_QS_DISABLED);
    assert_int_equal(st.failed, 10);
    assert_int_equal(F.t.nerr, 0); /* aborts are not errors */

    /* Reset semantics: pending work is dropped, memory untouched. */
    tq_enable(&F.t, 64, 1, 0, 0);
    for (i = 0; i < 5; i++)
        idx[i] = tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    accel_queue_disable(F.t.q, false);
    for (i = 0; i < 5; i++)
        assert_int_equal(comp_status(&F.t, idx[i]), ACCEL_ST_NONE);
    assert_int_equal(ring_word(&F.t, ACCEL_RING_HEAD), 0);
    /* Doorbells on a disabled queue do nothing. */
    accel_queue_doorbell(F.t.q);
    assert_int_equal(accel_engine_poll(F.e, 4), 0);
    for (i = 0; i < 5; i++)
        assert_int_equal(comp_status(&F.t, idx[i]), ACCEL_ST_NONE);
    tq_enable(&F.t, 64, 1, 0, 0);
}

/* Disable while a batch runs: the batch stops between elements. */
struct disabler {
    struct tq *t;
    atomic_int go;
};

static void *
disable_thread(void *arg)
{
    struct disabler *d = arg;

    int64_t deadline = kit_now_ms() + TIMEOUT_MS;

    /* Until the batch has started (its first element completed). */
    while (__atomic_load_n(&elem_comp(0)->status, __ATOMIC_ACQUIRE) ==
               ACCEL_ST_NONE &&
           kit_now_ms() < deadline)
        ;
    atomic_store(&d->go, 1);
    accel_queue_disable(d->t->q, true);
    return NULL;
}

static void
test_disable_during_batch(void **state)
{
    struct accel_desc b = accel_desc_make(ACCEL_OP_BATCH, 256, BATCH_LIST, 0);
    struct disabler dis = { &F.t, 0 };
    pthread_t th;
    unsigned int i, ok = 0, aborted = 0;
    uint32_t idx;

    (void)state;
    for (i = 0; i < 256; i++)
        put_elem(i, accel_desc_make(ACCEL_OP_MEMMOVE, 256 * 1024, DATA0,
                                    DATA0 + MB + (i % 4) * 256 * 1024ull));
    idx = tq_submit(&F.t, b);
    tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(pthread_create(&th, NULL, disable_thread, &dis), 0);
    accel_engine_poll(F.e, 1); /* a visit: the batch runs here */
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&dis.go), 1);
    assert_int_equal(comp_status(&F.t, idx) == ACCEL_ST_ABORTED ||
                         comp_status(&F.t, idx) == ACCEL_ST_SUCCESS,
                     1);
    for (i = 0; i < 256; i++) {
        uint8_t s = elem_comp(i)->status;

        assert_true(s == ACCEL_ST_SUCCESS || s == ACCEL_ST_ABORTED);
        ok += s == ACCEL_ST_SUCCESS;
        aborted += s == ACCEL_ST_ABORTED;
        /* Aborted elements come after completed ones. */
        if (s == ACCEL_ST_SUCCESS)
            assert_int_equal(aborted, 0);
    }
    assert_int_equal(ok + aborted, 256);
    if (comp_status(&F.t, idx) == ACCEL_ST_ABORTED)
        assert_int_equal(comp_of(&F.t, idx)->bytes, ok);
    /* The NOP after it was aborted by the disable. */
    assert_int_equal(comp_status(&F.t, idx + 1), ACCEL_ST_ABORTED);
    print_message("disable during batch: %u done, %u aborted\n", ok, aborted);
    tq_enable(&F.t, 64, 1, 0, 0);
}

/* Migration: pause while a batch runs (the engine's visit on this thread,
 * the pause on another). */
static void *
pause_thread(void *arg)
{
    struct disabler *d = arg;
    int64_t deadline = kit_now_ms() + TIMEOUT_MS;

    while (__atomic_load_n(&elem_comp(0)->status, __ATOMIC_ACQUIRE) ==
               ACCEL_ST_NONE &&
           kit_now_ms() < deadline)
        ;
    atomic_store(&d->go, 1);
    accel_queue_pause(d->t->q);
    return NULL;
}

/* A batch of @n MEMMOVEs of 1 MiB (a wide window for the pause) and a
 * NOP behind it, paused after some elements. Return: the batch's ring
 * index; *@k the elements done. */
static uint32_t
batch_paused(unsigned int n, unsigned int *k)
{
    struct accel_desc b = accel_desc_make(ACCEL_OP_BATCH, n, BATCH_LIST, 0);
    struct disabler dis = { &F.t, 0 };
    struct accel_queue_mig m;
    pthread_t th;
    unsigned int i;
    uint32_t idx;

    for (i = 0; i < n; i++)
        put_elem(i, accel_desc_make(ACCEL_OP_MEMMOVE, MB, DATA0, DATA0 + MB));
    idx = tq_submit(&F.t, b);
    tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(pthread_create(&th, NULL, pause_thread, &dis), 0);
    accel_engine_poll(F.e, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(atomic_load(&dis.go), 1);
    /* The batch stopped between elements, uncompleted, at HEAD. */
    for (*k = 0; *k < n && elem_comp(*k)->status == ACCEL_ST_SUCCESS;)
        (*k)++;
    for (i = *k; i < n; i++)
        assert_int_equal(elem_comp(i)->status, ACCEL_ST_NONE);
    assert_true(*k >= 1 && *k < n);
    assert_int_equal(comp_status(&F.t, idx), ACCEL_ST_NONE);
    assert_int_equal(ring_word(&F.t, ACCEL_RING_HEAD), 0);
    accel_queue_save(F.t.q, &m);
    assert_int_equal(m.state, ACCEL_QS_ENABLED);
    assert_int_equal(m.head, 0);
    assert_int_equal(m.batch_next, *k);
    assert_int_equal(m.batch_ok, *k);
    assert_false(m.batch_failed);
    /* Paused: not served, a doorbell only noted. */
    accel_queue_doorbell(F.t.q);
    assert_int_equal(accel_engine_poll(F.e, 4), 0);
    assert_int_equal(elem_comp(*k)->status, ACCEL_ST_NONE);
    return idx;
}

/* A paused batch then disabled: its rest is aborted as a disable during
 * the batch would, and its record counts what succeeded. */
static void
test_pause_batch_disable(void **state)
{
    unsigned int i, k;
    uint32_t idx;

    (void)state;
    idx = batch_paused(1024, &k);
    accel_queue_disable(F.t.q, true);
    for (i = 0; i < 1024; i++)
        assert_int_equal(elem_comp(i)->status,
                         i < k ? ACCEL_ST_SUCCESS : ACCEL_ST_ABORTED);
    assert_int_equal(comp_status(&F.t, idx), ACCEL_ST_ABORTED);
    assert_int_equal(comp_of(&F.t, idx)->bytes, k);
    assert_int_equal(comp_status(&F.t, idx + 1), ACCEL_ST_ABORTED);
    accel_queue_resume(F.t.q);
    tq_enable(&F.t, 64, 1, 0, 0);
}

/* Pause, save, restore into another queue of the engine, resume it: the
 * batch goes on from where it stopped, each element once; a state that
 * cannot be is refused with the queue untouched. */
static void
test_pause_restore(void **state)
{
    struct accel_queue_mig m, bad;
    struct accel_queue_status st;
    struct comp_arg nop;
    unsigned int i, k;
    struct tq t2;
    uint32_t idx;

    (void)state;
    memset(&t2, 0, sizeof(t2));
    tq_claim(&t2, F.e, 1);
    idx = batch_paused(1024, &k);
    accel_queue_save(F.t.q, &m);
    accel_queue_reset(F.t.q); /* the source is done: writes nothing */
    accel_queue_pause(t2.q);
    accel_queue_reset(t2.q);

    bad = m;
    bad.batch_next = ACCEL_BATCH_MAX;
    assert_int_equal(accel_queue_mig_check(&bad), 0xff);
    bad = m;
    bad.batch_ok = m.batch_next + 1;
    assert_int_equal(accel_queue_restore(t2.q, &bad), -EINVAL);
    bad = m;
    bad.cfg.size = 3;
    assert_int_equal(accel_queue_mig_check(&bad), ACCEL_QERR_RING_SIZE);
    bad = m;
    bad.state = 3;
    assert_int_equal(accel_queue_restore(t2.q, &bad), -EINVAL);
    accel_queue_status(t2.q, &st);
    assert_int_equal(st.state, ACCEL_QS_DISABLED);

    assert_int_equal(accel_queue_restore(t2.q, &m), 0);
    accel_queue_status(t2.q, &st);
    assert_int_equal(st.state, ACCEL_QS_ENABLED);
    assert_int_equal(st.head, 0);
    /* Nothing runs before resume, nothing written by restore. */
    assert_int_equal(accel_engine_poll(F.e, 4), 0);
    assert_int_equal(elem_comp(k)->status, ACCEL_ST_NONE);
    for (i = 0; i < k; i++)
        memset(elem_comp(i), 0, ACCEL_COMP_SIZE);
    accel_queue_resume(t2.q);
    nop = (struct comp_arg){ &F.t, idx + 1 };
    assert_true(drive_until(F.e, true, comp_done, &nop));
    for (i = 0; i < 1024; i++)
        assert_int_equal(elem_comp(i)->status,
                         i < k ? ACCEL_ST_NONE : ACCEL_ST_SUCCESS);
    assert_int_equal(comp_status(&F.t, idx), ACCEL_ST_SUCCESS);
    assert_int_equal(comp_of(&F.t, idx)->bytes, 1024);
    assert_int_equal(comp_status(&F.t, idx + 1), ACCEL_ST_SUCCESS);
    assert_int_equal(ring_word(&F.t, ACCEL_RING_HEAD), F.t.r.tail);
    print_message("pause during batch: %u elements before, %u after\n", k,
                  1024 - k);
    accel_queue_reset(t2.q);
    tq_release(&t2);
    accel_queue_resume(F.t.q);
    tq_enable(&F.t, 64, 1, 0, 0);
}

/* Post @n copies of @d at once, publish them, wait for the last (and with
 * @poll one more engine visit, for a late signal): the interrupts the
 * queue signalled meanwhile. */
static unsigned int
notifies_for(struct accel_desc d, uint32_t n, bool poll)
{
    uint32_t i, idx = 0;

    atomic_store(&F.t.notifies, 0);
    for (i = 0; i < n; i++)
        idx = tq_post(&F.t, d, false);
    tq_kick(&F.t);
    tq_wait(&F.t, idx);
    if (poll)
        accel_engine_poll(F.e, 2);
    return atomic_load(&F.t.notifies);
}

static void
test_coalescing(void **state)
{
    struct accel_desc d = accel_desc_make(ACCEL_OP_NOP, 0, 0, 0);

    (void)state;
    d.flags |= ACCEL_DF_INTR;
    /* Each completion: 16 interrupts. */
    assert_int_equal(notifies_for(d, 16, true), 16);

    /* Every 4th: 16 completions in one visit give 4. */
    accel_queue_disable(F.t.q, true);
    tq_enable(&F.t, 64, 1, 4, 0);
    assert_int_equal(notifies_for(d, 16, false), 4);
    /* 3 with a count of 4: signalled when the queue runs empty. */
    assert_int_equal(notifies_for(d, 3, false), 1);
    /* Descriptors without INTR signal nothing. */
    assert_int_equal(
        notifies_for(accel_desc_make(ACCEL_OP_NOP, 0, 0, 0), 1, true), 0);
}

/* ---------------------------------------------------------------- */
/* Threads: doorbells, event suppression, idle                      */

static uint64_t
cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool
sleeping(void *arg)
{
    struct tq *t = arg;
    struct accel_queue_status st;

    accel_queue_status(t->q, &st);
    return st.sleeping && ring_word(t, ACCEL_RING_DOORBELL_NEEDED) == 1;
}

static void
test_idle_sleeps_doorbell_wakes(void **state)
{
    struct accel_queue_status st;
    uint64_t c0, c1;
    uint32_t idx;

    (void)state;
    /* Enabled and idle: the engine asks for a doorbell. */
    assert_true(drive_until(F.e, false, sleeping, &F.t));
    c0 = cpu_ns();
    usleep(200 * 1000);
    c1 = cpu_ns();
    print_message("idle: %.2f ms CPU in 200 ms\n", (c1 - c0) / 1e6);
    /* Two idle engine threads and this sleeping one: well under 5%. */
    assert_true(c1 - c0 < 10 * 1000 * 1000);
    /* One doorbell wakes it. */
    accel_queue_status(F.t.q, &st);
    idx = tq_submit(&F.t, accel_desc_make(ACCEL_OP_NOP, 0, 0, 0));
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    {
        struct accel_queue_status st2;

        accel_queue_status(F.t.q, &st2);
        assert_int_equal(st2.doorbells, st.doorbells + 1);
    }
    /* And it goes back to sleep. */
    assert_true(drive_until(F.e, false, sleeping, &F.t));
}

/* Under load the driver rings (almost) never: the engine polls, and a
 * sleeping engine gets one doorbell, not one per descriptor posted
 * before it is awake. Without suppression every descriptor would ring. */
static void
test_event_suppression(void **state)
{
    struct accel_queue_status st;
    const uint32_t n = 20000;
    uint32_t i, idx = 0;

    (void)state;
    for (i = 0; i < n; i++) {
        struct accel_desc d =
            accel_desc_make(ACCEL_OP_MEMMOVE, 64, DATA0, DATA0 + MB);

        d.flags = i % 1000 == 999 ? ACCEL_DF_COMP : 0;
        idx = tq_submit(&F.t, d);
    }
    assert_int_equal(tq_wait(&F.t, idx), ACCEL_ST_SUCCESS);
    tq_drain(&F.t);
    accel_queue_status(F.t.q, &st);
    print_message("%u descriptors, %llu doorbells\n", n,
                  (unsigned long long)st.doorbells);
    assert_int_equal(st.completed, n);
    assert_true(st.doorbells < n / 1000);
}

/*
 * Unmap under load: a region disappears while several queues copy into
 * it. The unmap waits for the engine's holds, then frees the host buffer
 * (ASan catches any later access); descriptors after it fault.
 */
struct loader {
    struct tq *t;
    atomic_int stop;
    atomic_ulong ok, fault, other;
};

static void *
loader_thread(void *arg)
{
    struct loader *l = arg;
    struct tq *t = l->t;

    while (!atomic_load(&l->stop)) {
        uint32_t idx = t->r.tail;
        struct accel_desc d = accel_desc_make(ACCEL_OP_MEMMOVE, 128 * 1024,
                                              DATA0 + t->slot * 128 * 1024ull,
                                              R1 + t->slot * 256 * 1024ull);
        int64_t deadline = kit_now_ms() + TIMEOUT_MS;
        uint8_t s;

        d.comp = comp_iova(t, idx);
        while (accel_ring_room(&t->r) == 0)
            usleep(10);
        memset(G(d.comp), 0, 32);
        put_desc(t, &d);
        tq_kick(t);
        while ((s = comp_status(t, idx)) == ACCEL_ST_NONE &&
               kit_now_ms() < deadline)
            usleep(10);
        if (s == ACCEL_ST_SUCCESS)
            atomic_fetch_add(&l->ok, 1);
        else if (s == ACCEL_ST_ADDR_FAULT)
            atomic_fetch_add(&l->fault, 1);
        else
            atomic_fetch_add(&l->other, 1);
    }
    return NULL;
}

static bool
wait_count(atomic_ulong *c, unsigned long n)
{
    int64_t deadline = kit_now_ms() + TIMEOUT_MS;

    while (atomic_load(c) < n)
        if (kit_now_ms() > deadline)
            return false;
        else
            usleep(100);
    return true;
}

static void
test_unmap_under_load(void **state)
{
    struct tq t[3];
    struct loader l[3];
    pthread_t th[3];
    unsigned int i;

    (void)state;
    for (i = 0; i < 3; i++) {
        tq_claim(&t[i], F.e, i + 1);
        tq_enable(&t[i], 16, 1, 0, 0);
        l[i] = (struct loader){ .t = &t[i] };
        assert_int_equal(pthread_create(&th[i], NULL, loader_thread, &l[i]), 0);
    }
    /* Load first: every queue has copied into R1. */
    for (i = 0; i < 3; i++)
        assert_true(wait_count(&l[i].ok, 5));
    assert_int_equal(mem_unmap(1), 0); /* R1: every destination */
    for (i = 0; i < 3; i++)
        assert_true(wait_count(&l[i].fault, 5));
    for (i = 0; i < 3; i++) {
        atomic_store(&l[i].stop, 1);
        assert_int_equal(pthread_join(th[i], NULL), 0);
        print_message("queue %u: %lu ok, %lu faulted, %lu other\n", i + 1,
                      atomic_load(&l[i].ok), atomic_load(&l[i].fault),
                      atomic_load(&l[i].other));
        assert_int_equal(atomic_load(&l[i].other), 0);
        tq_release(&t[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_bad_index, FX_MANUAL),
        FX_TEST(test_ring_fault, FX_MANUAL),
        FX_TEST(test_queue_config, FX_MANUAL),
        FX_TEST(test_disable_aborts, FX_MANUAL),
        FX_TEST(test_disable_during_batch, FX_MANUAL),
        FX_TEST(test_pause_batch_disable, FX_MANUAL),
        FX_TEST(test_pause_restore, FX_MANUAL),
        FX_TEST(test_coalescing, FX_MANUAL),
        FX_TEST(test_idle_sleeps_doorbell_wakes, FX_THREADS),
        FX_TEST(test_event_suppression, FX_THREADS_LONG_POLL),
        FX_TEST(test_unmap_under_load, FX_THREADS),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
