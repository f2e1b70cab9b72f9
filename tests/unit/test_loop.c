/*
 * Unit tests of the event loop (lib/loop): fd callbacks, one-shot timers
 * (order, cancellation, re-arming from a callback), calls posted from
 * other threads, and stop.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "umdev/loop.h"

#define MAX_EVENTS 64

/* What ran, in order: each callback appends its tag. */
struct trace {
    int tags[MAX_EVENTS];
    int n;
};

struct tagged {
    struct trace *t;
    int tag;
};

static void
record(struct umdev_loop *loop, void *opaque)
{
    struct tagged *x = opaque;

    (void)loop;
    assert_true(x->t->n < MAX_EVENTS);
    x->t->tags[x->t->n++] = x->tag;
}

static uint64_t
elapsed_ms(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - since->tv_sec) * 1000u +
           (uint64_t)((now.tv_nsec - since->tv_nsec) / 1000000);
}

/* Run the loop until @t has @n entries or 2 s pass. */
static void
run_until(struct umdev_loop *loop, struct trace *t, int n)
{
    struct timespec start;

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (t->n < n && elapsed_ms(&start) < 2000)
        assert_true(umdev_loop_run_once(loop, 100) >= 0);
    assert_int_equal(t->n, n);
}

static void
test_timers_run_in_deadline_order(void **state)
{
    struct umdev_loop *loop;
    struct trace t = { .n = 0 };
    struct tagged a = { &t, 1 }, b = { &t, 2 }, c = { &t, 3 }, d = { &t, 4 };
    struct timespec start;

    (void)state;
    assert_int_equal(umdev_loop_create(&loop), 0);
    clock_gettime(CLOCK_MONOTONIC, &start);
    assert_true(umdev_loop_timer_add(loop, 60, record, &a) > 0);
    assert_true(umdev_loop_timer_add(loop, 20, record, &b) > 0);
    /* Equal deadlines keep the order they were added in. */
    assert_true(umdev_loop_timer_add(loop, 40, record, &c) > 0);
    assert_true(umdev_loop_timer_add(loop, 40, record, &d) > 0);
    /* Nothing is due yet: a zero-timeout turn runs nothing. */
    assert_int_equal(umdev_loop_run_once(loop, 0), 0);
    run_until(loop, &t, 4);
    assert_int_equal(t.tags[0], 2);
    assert_int_equal(t.tags[1], 3);
    assert_int_equal(t.tags[2], 4);
    assert_int_equal(t.tags[3], 1);
    /* The loop slept for its timers rather than returning early. */
    assert_true(elapsed_ms(&start) >= 59);
    umdev_loop_destroy(loop);
}

static void
test_timer_cancel(void **state)
{
    struct umdev_loop *loop;
    struct trace t = { .n = 0 };
    struct tagged a = { &t, 1 }, b = { &t, 2 };
    int64_t ida, idb;

    (void)state;
    assert_int_equal(umdev_loop_create(&loop), 0);
    ida = umdev_loop_timer_add(loop, 10, record, &a);
    idb = umdev_loop_timer_add(loop, 20, record, &b);
    assert_true(ida > 0 && idb > ida);
    umdev_loop_timer_cancel(loop, ida);
    /* Unknown, spent and non-positive ids are ignored. */
    umdev_loop_timer_cancel(loop, ida);
    umdev_loop_timer_cancel(loop, 0);
    umdev_loop_timer_cancel(loop, -5);
    run_until(loop, &t, 1);
    assert_int_equal(t.tags[0], 2);
    umdev_loop_timer_cancel(loop, idb); /* spent */
    assert_int_equal(umdev_loop_run_once(loop, 30), 0);
    assert_int_equal(t.n, 1);
    umdev_loop_destroy(loop);
}

struct rearm {
    struct trace t;
    int left;
};

static void
rearm_cb(struct umdev_loop *loop, void *opaque)
{
    struct rearm *r = opaque;

    r->t.tags[r->t.n++] = r->left;
    if (--r->left > 0)
        assert_true(umdev_loop_timer_add(loop, 0, rearm_cb, r) > 0);
}

static void
test_timer_rearm_waits_a_turn(void **state)
{
    struct umdev_loop *loop;
    struct rearm r = { .left = 3 };

    (void)state;
    assert_int_equal(umdev_loop_create(&loop), 0);
    assert_true(umdev_loop_timer_add(loop, 0, rearm_cb, &r) > 0);
    /* A timer added by a callback, even for 0 ms, runs on a later turn:
     * one turn runs exactly one. */
    assert_int_equal(umdev_loop_run_once(loop, 0), 1);
    assert_int_equal(r.t.n, 1);
    assert_int_equal(umdev_loop_run_once(loop, 0), 1);
    assert_int_equal(umdev_loop_run_once(loop, 0), 1);
    assert_int_equal(umdev_loop_run_once(loop, 0), 0);
    assert_int_equal(r.t.n, 3);
    umdev_loop_destroy(loop);
}

struct poster {
    struct umdev_loop *loop;
    struct trace *t;
    struct tagged items[16];
};

static void *
post_thread(void *arg)
{
    struct poster *p = arg;
    int i;

    for (i = 0; i < 16; i++) {
        p->items[i] = (struct tagged){ p->t, i };
        assert_int_equal(umdev_loop_post(p->loop, record, &p->items[i]), 0);
    }
    return NULL;
}

static void
test_post_from_thread_runs_in_order(void **state)
{
    struct umdev_loop *loop;
    struct trace t = { .n = 0 };
    struct poster p;
    pthread_t th;
    int i;

    (void)state;
    assert_int_equal(umdev_loop_create(&loop), 0);
    p.loop = loop;
    p.t = &t;
    assert_int_equal(pthread_create(&th, NULL, post_thread, &p), 0);
    /* A loop asleep with no deadline is woken by the posts. */
    run_until(loop, &t, 16);
    assert_int_equal(pthread_join(th, NULL), 0);
    for (i = 0; i < 16; i++)
        assert_int_equal(t.tags[i], i);
    assert_int_equal(umdev_loop_post(loop, NULL, NULL), -EINVAL);
    umdev_loop_destroy(loop);
}

static void
test_pending_dropped_at_destroy(void **state)
{
    struct umdev_loop *loop;
    struct trace t = { .n = 0 };
    struct tagged a = { &t, 1 };

    (void)state;
    assert_int_equal(umdev_loop_create(&loop), 0);
    assert_int_equal(umdev_loop_post(loop, record, &a), 0);
    assert_true(umdev_loop_timer_add(loop, 0, record, &a) > 0);
    umdev_loop_destroy(loop); /* neither runs; nothing leaks (ASan) */
    assert_int_equal(t.n, 0);
}

struct fdcount {
    int calls;
    uint32_t events;
};

static void
on_fd(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct fdcount *c = opaque;
    uint64_t n;

    (void)loop;
    c->calls++;
    c->events = events;
    assert_int_equal(read(fd, &n, sizeof(n)), sizeof(n));
}

static void
test_fd_and_stop(void **state)
{
    struct umdev_loop *loop;
    struct fdcount c = { 0, 0 };
    uint64_t one = 1;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    (void)state;
    assert_true(efd >= 0);
    assert_int_equal(umdev_loop_create(&loop), 0);
    assert_int_equal(umdev_loop_add(loop, efd, UMDEV_LOOP_IN, on_fd, &c), 0);
    assert_int_equal(umdev_loop_add(loop, efd, UMDEV_LOOP_IN, on_fd, &c),
                     -EEXIST);
    assert_int_equal(write(efd, &one, sizeof(one)), sizeof(one));
    assert_int_equal(umdev_loop_run_once(loop, 1000), 1);
    assert_int_equal(c.calls, 1);
    assert_true(c.events & UMDEV_LOOP_IN);
    /* stop() before run(): run() returns at once, and the flag resets. */
    umdev_loop_stop(loop);
    assert_int_equal(umdev_loop_run(loop), 0);
    /* The wake-up stop() caused is not counted as a callback. */
    assert_int_equal(umdev_loop_run_once(loop, 0), 0);
    umdev_loop_del(loop, efd);
    umdev_loop_del(loop, efd); /* not watched: harmless */
    assert_int_equal(umdev_loop_mod(loop, efd, UMDEV_LOOP_IN), -ENOENT);
    umdev_loop_destroy(loop);
    close(efd);
}

static void
test_stop_on_signals(void **state)
{
    struct umdev_loop *loop;

    (void)state;
    assert_int_equal(umdev_loop_create(&loop), 0);
    assert_int_equal(umdev_loop_stop_on_signals(loop), 0);
    assert_int_equal(umdev_loop_stop_on_signals(loop), 0); /* idempotent */
    /* Blocked now: the signal waits in the signalfd instead of killing
     * the test, and the loop stops on it. */
    assert_int_equal(raise(SIGTERM), 0);
    assert_int_equal(umdev_loop_run(loop), 0);
    assert_int_equal(raise(SIGINT), 0);
    assert_int_equal(umdev_loop_run(loop), 0);
    umdev_loop_destroy(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_run_in_deadline_order),
        cmocka_unit_test(test_timer_cancel),
        cmocka_unit_test(test_timer_rearm_waits_a_turn),
        cmocka_unit_test(test_post_from_thread_runs_in_order),
        cmocka_unit_test(test_pending_dropped_at_destroy),
        cmocka_unit_test(test_fd_and_stop),
        cmocka_unit_test(test_stop_on_signals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
