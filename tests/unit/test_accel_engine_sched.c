/*
 * Unit tests of the accel engine in-process, scheduling and the engine
 * (engine.c): queue claims, engine configuration, priority fairness, no
 * starvation behind a backlog, and several threads and queues at once. The
 * guest memory model and the queue driver are accel_engine_fixture.c.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accel_engine_fixture.h"

static void
test_claims(void **state)
{
    struct accel_queue *q[8] = { 0 }, *x = NULL;
    struct tq dummy;
    unsigned int i;

    (void)state;
    memset(&dummy, 0, sizeof(dummy));
    assert_int_equal(accel_engine_nr_queues(F.e), 8);
    assert_int_equal(accel_engine_free_queues(F.e), 7); /* F.t holds 0 */
    assert_int_equal(accel_queue_claim(F.e, 0, &tq_ops, &dummy, &x), -EBUSY);
    assert_int_equal(accel_queue_claim(F.e, 8, &tq_ops, &dummy, &x), -EINVAL);
    for (i = 0; i < 7; i++) {
        assert_int_equal(accel_queue_claim(F.e, -1, &tq_ops, &dummy, &q[i]), 0);
        assert_int_equal(accel_queue_index(q[i]), i + 1);
    }
    assert_int_equal(accel_queue_claim(F.e, -1, &tq_ops, &dummy, &x), -ENOSPC);
    assert_null(x);
    assert_int_equal(accel_engine_free_queues(F.e), 0);
    accel_queue_release(q[3]);
    assert_int_equal(accel_engine_free_queues(F.e), 1);
    assert_int_equal(accel_queue_claim(F.e, -1, &tq_ops, &dummy, &x), 0);
    assert_int_equal(accel_queue_index(x), 4);
    q[3] = x;
    for (i = 0; i < 7; i++)
        accel_queue_release(q[i]);
    accel_queue_release(NULL);
    assert_int_equal(accel_engine_free_queues(F.e), 7);
}

static void
test_engine_config(void **state)
{
    struct accel_engine_config cfg = { .manual = true };
    struct accel_engine *e = (struct accel_engine *)1;

    (void)state;
    cfg.nr_queues = ACCEL_MAX_QUEUES + 1;
    assert_int_equal(accel_engine_create(&cfg, &e), -EINVAL);
    assert_null(e);
    cfg.nr_queues = 0;
    cfg.max_transfer = 100;
    assert_int_equal(accel_engine_create(&cfg, &e), -EINVAL);
    cfg.max_transfer = 0;
    cfg.nr_threads = ACCEL_MAX_THREADS + 1;
    cfg.manual = false;
    assert_int_equal(accel_engine_create(&cfg, &e), -EINVAL);
    cfg.nr_threads = 0;
    assert_int_equal(accel_engine_create(&cfg, &e), 0);
    assert_int_equal(accel_engine_nr_queues(e), ACCEL_DEFAULT_QUEUES);
    assert_int_equal(accel_engine_max_transfer(e), ACCEL_DEFAULT_MAX_TRANSFER);
    accel_engine_destroy(e);
    accel_engine_destroy(NULL);
}

/* ---------------------------------------------------------------- */
/* Scheduling                                                        */

/*
 * Two loaded queues with equal descriptors: over the time the priority-4
 * queue runs 100 descriptors, the priority-1 queue runs about a quarter
 * as many; with equal priorities, about as many. Deterministic (manual).
 */
static unsigned int
race(uint32_t prio_a, uint32_t prio_b)
{
    struct tq a, b;
    uint32_t i, last_b = 0;
    unsigned int done_a;

    tq_claim(&a, F.e, 1);
    tq_claim(&b, F.e, 2);
    tq_enable(&a, 512, prio_a, 0, 0);
    tq_enable(&b, 128, prio_b, 0, 0);
    for (i = 0; i < 500; i++)
        tq_post(&a, accel_desc_make(ACCEL_OP_MEMMOVE, 4096, DATA0, DATA0 + MB),
                false);
    for (i = 0; i < 100; i++)
        last_b = tq_post(&b,
                         accel_desc_make(ACCEL_OP_MEMMOVE, 4096, DATA0 + 8192,
                                         DATA0 + 2 * MB),
                         false);
    tq_kick(&a);
    tq_kick(&b);
    while (comp_status(&b, last_b) == ACCEL_ST_NONE)
        assert_true(accel_engine_poll(F.e, 1) > 0);
    done_a = ring_word(&a, ACCEL_RING_HEAD);
    tq_release(&a);
    tq_release(&b);
    return done_a;
}

static void
test_fairness_priority(void **state)
{
    unsigned int n;

    (void)state;
    n = race(1, 4);
    print_message("prio 1 vs 4: %u vs 100\n", n);
    assert_in_range(n, 20, 30);
    n = race(4, 1);
    print_message("prio 4 vs 1: %u vs 100\n", n);
    assert_in_range(n, 380, 420);
    n = race(2, 2);
    print_message("prio 2 vs 2: %u vs 100\n", n);
    assert_in_range(n, 90, 110);
}

/*
 * One engine thread; a queue with a deep backlog (256 copies of 2 MiB),
 * then another with 16 of the same size, equal priorities. The second
 * finishes while most of the backlog is still queued; an engine serving
 * the busy queue until it drains (FIFO) would finish the backlog first.
 * Both are queued up front, so the test thread's own scheduling only
 * delays the final look at HEAD.
 */
static void
test_no_starvation(void **state)
{
    struct tq flood;
    uint32_t i, last = 0, head;
    int64_t deadline;

    (void)state;
    tq_claim(&flood, F.e, 1);
    tq_enable(&flood, 256, 1, 0, 0);
    for (i = 0; i < 256; i++) {
        struct accel_desc d =
            accel_desc_make(ACCEL_OP_MEMMOVE, 2 * MB, DATA0, R1);

        d.flags = 0;
        tq_post(&flood, d, false);
    }
    for (i = 0; i < 16; i++)
        last = tq_post(
            &F.t,
            accel_desc_make(ACCEL_OP_MEMMOVE, 2 * MB, R1 + 2 * MB, R1 + 4 * MB),
            false);
    tq_kick(&flood);
    tq_kick(&F.t);
    deadline = kit_now_ms() + TIMEOUT_MS;
    while (comp_status(&F.t, last) == ACCEL_ST_NONE)
        assert_true(kit_now_ms() < deadline);
    head = ring_word(&flood, ACCEL_RING_HEAD);
    print_message("backlog done when the other queue finished: %u of 256\n",
                  head);
    assert_true(head < 160);
    accel_queue_disable(flood.q, true);
    tq_release(&flood);
}

/* Two engine threads, several queues with producers, data verified. */
struct worker_arg {
    struct tq *t;
    unsigned int rounds;
    unsigned int bad;
};

static void *
verify_thread(void *arg)
{
    struct worker_arg *w = arg;
    struct tq *t = w->t;
    uint64_t src = DATA0 + t->slot * 64 * 1024ull;
    uint64_t dst = R1 + t->slot * 64 * 1024ull;
    unsigned int r;

    for (r = 0; r < w->rounds; r++) {
        uint32_t n = 1 + (r * 7919u) % 65535u, idx = t->r.tail;
        struct accel_desc d = accel_desc_make(ACCEL_OP_COPY_CRC, n, src, dst);
        int64_t deadline = kit_now_ms() + TIMEOUT_MS;

        d.comp = comp_iova(t, idx);
        kit_fill_rand(G(src), n, r + t->slot * 1000);
        memset(G(d.comp), 0, 32);
        put_desc(t, &d);
        tq_kick(t);
        while (comp_status(t, idx) == ACCEL_ST_NONE && kit_now_ms() < deadline)
            sched_yield();
        if (comp_status(t, idx) != ACCEL_ST_SUCCESS ||
            memcmp(G(src), G(dst), n) != 0 ||
            comp_of(t, idx)->value != kit_crc32c(0, G(src), n))
            w->bad++;
    }
    return NULL;
}

static void
test_threads_stress(void **state)
{
    struct tq t[4];
    struct worker_arg w[4];
    pthread_t th[4];
    unsigned int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        tq_claim(&t[i], F.e, i + 1);
        tq_enable(&t[i], 8, 1 + i, 0, 0);
        w[i] = (struct worker_arg){ .t = &t[i], .rounds = 300 };
        assert_int_equal(pthread_create(&th[i], NULL, verify_thread, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].bad, 0);
        tq_release(&t[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_claims, FX_MANUAL),
        FX_TEST(test_engine_config, FX_MANUAL),
        FX_TEST(test_fairness_priority, FX_MANUAL),
        FX_TEST(test_no_starvation, FX_ONE_THREAD),
        FX_TEST(test_threads_stress, FX_THREADS),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
