/*
 * Fault injection for the accel parent's construction paths (STYLE.md
 * "Tests"): fail the Nth allocation (or thread creation), for every N,
 * while building an engine with threads, and while building subdevices
 * on an engine. Each run must fail cleanly (an error, nothing half-built
 * left behind, no allocation outstanding) or succeed and then work.
 *
 * Linked with --wrap for malloc, calloc, realloc, strdup, free and
 * pthread_create (tests/unit/CMakeLists_accel.cmake); only calls on the
 * armed thread are counted, so engine threads are unaffected.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "accel.h"
#include "umdev/dev_testing.h"
#include "wrap.h"

/* Besides the allocator (wrap.h): thread creation. */
WRAPPED(int, pthread_create,
        (pthread_t * t, const pthread_attr_t *a, void *(*fn)(void *),
         void *arg));

static _Thread_local bool armed;
static _Thread_local unsigned long calls, fail_at;
static atomic_long live; /* allocations not yet freed, every thread */

/* Whether this call (on the armed thread) is the one to fail. */
static bool
inject(void)
{
    return armed && ++calls == fail_at;
}

void *
__wrap_malloc(size_t n)
{
    void *p = inject() ? NULL : __real_malloc(n);

    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

void *
__wrap_calloc(size_t n, size_t m)
{
    void *p = inject() ? NULL : __real_calloc(n, m);

    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

void *
__wrap_realloc(void *old, size_t n)
{
    void *p = inject() ? NULL : __real_realloc(old, n);

    if (p != NULL && old == NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

char *
__wrap_strdup(const char *s)
{
    char *p = inject() ? NULL : __real_strdup(s);

    if (p != NULL)
        atomic_fetch_add(&live, 1);
    return p;
}

void
__wrap_free(void *p)
{
    if (p != NULL)
        atomic_fetch_sub(&live, 1);
    __real_free(p);
}

int
__wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                      void *(*fn)(void *), void *arg)
{
    if (inject())
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

static void
arm(unsigned long n)
{
    calls = 0;
    fail_at = n;
    armed = true;
}

/* Return: true if the Nth call was reached (so a larger N may fail
 * something else). */
static bool
disarm(void)
{
    armed = false;
    return calls >= fail_at;
}

/*
 * For N = 1, 2, ...: fail the Nth call while @build(@arg) runs, then hand
 * its result to @check(@arg, rc), unarmed, which checks that a failure
 * left nothing half-built and that a success works, and destroys what was
 * built. A run must fail only where a call was failed, and leave no
 * allocation behind. Ends with the first run that reached no Nth call.
 * Return: the injection points found.
 */
static unsigned long
fail_each_call(int (*build)(void *arg), void (*check)(void *arg, int rc),
               void *arg)
{
    unsigned long n;

    for (n = 1;; n++) {
        long before = atomic_load(&live);
        bool reached;
        int rc;

        arm(n);
        rc = build(arg);
        reached = disarm();
        if (rc < 0)
            assert_true(reached);
        check(arg, rc);
        assert_int_equal(atomic_load(&live), before);
        if (!reached)
            return n - 1;
    }
}

static const struct accel_engine_config engine_cfg = { .nr_queues = 4,
                                                       .nr_threads = 3 };

static int
engine_build(void *arg)
{
    return accel_engine_create(&engine_cfg, arg);
}

static void
engine_check(void *arg, int rc)
{
    struct accel_engine **e = arg;

    if (rc < 0) {
        assert_true(rc == -ENOMEM || rc == -EAGAIN);
        assert_null(*e);
        return;
    }
    assert_non_null(*e);
    assert_int_equal(accel_engine_free_queues(*e), 4);
    accel_engine_destroy(*e);
    *e = NULL;
}

static void
test_engine_create(void **state)
{
    struct accel_engine *e = NULL;

    (void)state;
    print_message("engine: %lu injection points\n",
                  fail_each_call(engine_build, engine_check, &e));
}

/* A subdevice of 4 queues on an engine of 8. */
struct dev_run {
    struct accel_engine *e;
    struct accel_dev *d;
};

static int
dev_build(void *arg)
{
    static const struct accel_dev_config dc = { .name = "a", .nr_queues = 4 };
    struct dev_run *r = arg;

    return accel_dev_create(r->e, &dc, &r->d);
}

static void
dev_check(void *arg, int rc)
{
    struct dev_run *r = arg;
    uint32_t v = 0;

    if (rc < 0) {
        assert_null(r->d);
        /* Nothing kept: every queue is back. */
        assert_int_equal(accel_engine_free_queues(r->e), 8);
        return;
    }
    assert_int_equal(accel_engine_free_queues(r->e), 4);
    /* It works: its registers answer. */
    assert_int_equal(umdev_dev_region_rw(accel_dev_dev(r->d), 0,
                                         ACCEL_REG_NUM_QUEUES, &v, 4, false),
                     0);
    assert_int_equal(v, 4);
    accel_dev_destroy(r->d);
    r->d = NULL;
    assert_int_equal(accel_engine_free_queues(r->e), 8);
}

static void
test_dev_create(void **state)
{
    struct accel_engine_config cfg = { .nr_queues = 8, .manual = true };
    struct dev_run r = { NULL, NULL };

    (void)state;
    assert_int_equal(accel_engine_create(&cfg, &r.e), 0);
    print_message("subdevice: %lu injection points\n",
                  fail_each_call(dev_build, dev_check, &r));
    accel_engine_destroy(r.e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_create),
        cmocka_unit_test(test_dev_create),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
