/*
 * Unit tests of the fault guard (lib/util/guard.c): a bus error on memory
 * whose file shrank ends the guarded function with -EFAULT and the
 * faulting address, guards nest, several threads fault at once each into
 * its own guard, and a bus error outside any guard still ends the process.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "umdev/umdev.h"

#define PG 4096u

/* Two pages of a memfd mapped shared, then the file cut to one page: the
 * second page raises SIGBUS when touched. */
struct shrunk {
    int fd;
    uint8_t *p;
};

static void
shrunk_make(struct shrunk *s)
{
    s->fd = memfd_create("guard", MFD_CLOEXEC);
    assert_true(s->fd >= 0);
    assert_int_equal(ftruncate(s->fd, 2 * PG), 0);
    s->p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    assert_true(s->p != MAP_FAILED);
    memset(s->p, 0x5a, 2 * PG);
    assert_int_equal(ftruncate(s->fd, PG), 0);
}

static void
shrunk_free(struct shrunk *s)
{
    munmap(s->p, 2 * PG);
    close(s->fd);
}

struct copy {
    void *dst;
    const void *src;
    size_t n;
    int done;
};

static void
copy_fn(void *arg)
{
    struct copy *c = arg;

    memcpy(c->dst, c->src, c->n);
    c->done = 1;
}

/* cmocka sets its own SIGBUS handler around each test (and fixture):
 * each test puts ours first. */
static void
guard_init(void)
{
    assert_int_equal(umdev_fault_guard_init(), 0);
}

static void
test_fault_and_address(void **state)
{
    struct shrunk s;
    uint8_t buf[PG];
    struct copy c = { buf, NULL, 0, 0 };
    void *at = NULL;

    (void)state;
    guard_init();
    shrunk_make(&s);
    /* What the file still holds copies. */
    c.src = s.p;
    c.n = PG;
    assert_int_equal(umdev_fault_guard_run(copy_fn, &c, &at), 0);
    assert_int_equal(c.done, 1);
    assert_int_equal(buf[PG - 1], 0x5a);
    /* One byte past the end: -EFAULT, at exactly that byte. */
    c.src = s.p + PG + 100;
    c.n = 1;
    c.done = 0;
    assert_int_equal(umdev_fault_guard_run(copy_fn, &c, &at), -EFAULT);
    assert_int_equal(c.done, 0);
    assert_ptr_equal(at, s.p + PG + 100);
    /* A write there too. */
    c.dst = s.p + PG;
    c.src = buf;
    c.n = 64;
    assert_int_equal(umdev_fault_guard_run(copy_fn, &c, NULL), -EFAULT);
    assert_int_equal(c.done, 0);
    /* And again: the handler is still in place. */
    assert_int_equal(umdev_fault_guard_run(copy_fn, &c, &at), -EFAULT);
    assert_ptr_equal(at, s.p + PG);
    shrunk_free(&s);
}

struct nest {
    struct shrunk *s;
    int inner_rc;
    int after;
};

static void
outer_fn(void *arg)
{
    struct nest *n = arg;
    uint8_t b;
    struct copy c = { &b, n->s->p + PG, 1, 0 };

    n->inner_rc = umdev_fault_guard_run(copy_fn, &c, NULL);
    n->after = 1;
}

/* A fault inside an inner guard ends the inner one only. */
static void
test_nested(void **state)
{
    struct shrunk s;
    struct nest n = { &s, 1, 0 };

    (void)state;
    guard_init();
    shrunk_make(&s);
    assert_int_equal(umdev_fault_guard_run(outer_fn, &n, NULL), 0);
    assert_int_equal(n.inner_rc, -EFAULT);
    assert_int_equal(n.after, 1);
    shrunk_free(&s);
}

#define NTHREADS 4
#define ROUNDS 2000

struct worker {
    struct shrunk *s;
    unsigned int id;
    unsigned int faults, wrong;
};

static void *
worker(void *arg)
{
    struct worker *w = arg;
    unsigned int i;

    for (i = 0; i < ROUNDS; i++) {
        uint8_t b[8];
        /* Each thread its own faulting address, and good copies between. */
        const uint8_t *bad = w->s->p + PG + w->id * 64 + i % 64;
        struct copy c = { b, bad, 1, 0 };
        void *at = NULL;

        if (umdev_fault_guard_run(copy_fn, &c, &at) == -EFAULT)
            w->faults++;
        if (at != bad)
            w->wrong++;
        c.src = w->s->p + i % PG / 8 * 8;
        c.n = 8;
        if (umdev_fault_guard_run(copy_fn, &c, NULL) != 0 || b[0] != 0x5a)
            w->wrong++;
    }
    return NULL;
}

/* Threads faulting at once: each returns into its own guard. */
static void
test_threads(void **state)
{
    struct shrunk s;
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    unsigned int i;

    (void)state;
    guard_init();
    shrunk_make(&s);
    for (i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){ .s = &s, .id = i };
        assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].faults, ROUNDS);
        assert_int_equal(w[i].wrong, 0);
    }
    shrunk_free(&s);
}

/* Outside any guard a bus error still ends the process (in a child, with
 * the default disposition, or the sanitizer's report under ASan). */
static void
test_unguarded_still_fatal(void **state)
{
    struct shrunk s;
    int status;
    pid_t pid;

    (void)state;
    shrunk_make(&s);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction dfl;
        volatile uint8_t b;

        /* What a server has before ours: the default action. */
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGBUS, &dfl, NULL);
        if (umdev_fault_guard_init() != 0)
            _exit(3);
        b = s.p[PG];
        (void)b;
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    shrunk_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_and_address),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_unguarded_still_fatal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
