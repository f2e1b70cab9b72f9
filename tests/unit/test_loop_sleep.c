/*
 * Sleeping reads (umdev_loop_sleep_in_read()): the one SOLO fd is read
 * blocking while nothing else needs the loop, and every other source (a
 * second fd, a posted call, umdev_loop_stop()) still gets the loop back
 * promptly, also when it comes at the worst moment (the stress case
 * below hammers the window between the loop's last check and its read).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "umdev/loop.h"

/* How long a wake-up may take before it counts as lost. */
#define WAKE_LIMIT_MS 2000

struct solo {
    int fd;                  /* the loop's end */
    unsigned int sleeping;   /* callbacks given UMDEV_LOOP_SLEEP */
    unsigned int woken;      /* of those, reads that ended with EAGAIN */
    unsigned int echoed;     /* bytes answered */
    unsigned int not_asleep; /* callbacks given plain readiness */
    bool blocking_seen;      /* the fd was in blocking mode in a sleep */
    bool nonblocking_in_sleep;
};

/* Echo each byte back; in a sleep, read without MSG_DONTWAIT as a
 * server does. */
static void
on_solo(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct solo *s = opaque;
    char buf[64];
    ssize_t n;

    if (events & UMDEV_LOOP_SLEEP) {
        s->sleeping++;
        if (fcntl(fd, F_GETFL) & O_NONBLOCK)
            s->nonblocking_in_sleep = true;
        else
            s->blocking_seen = true;
        n = recv(fd, buf, sizeof(buf), 0);
    } else {
        s->not_asleep++;
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    }
    if (n < 0) {
        assert_int_equal(errno, EAGAIN);
        if (events & UMDEV_LOOP_SLEEP)
            s->woken++;
        return;
    }
    if (n == 0) {
        umdev_loop_del(loop, fd);
        return;
    }
    assert_int_equal(send(fd, buf, (size_t)n, MSG_DONTWAIT), n);
    s->echoed += (unsigned int)n;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct fixture {
    struct umdev_loop *loop;
    struct solo solo;
    int peer; /* the client's end, blocking */
};

static int
setup(void **state)
{
    static struct fixture f;
    int sv[2];

    memset(&f, 0, sizeof(f));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    f.solo.fd = sv[0];
    f.peer = sv[1];
    assert_int_equal(umdev_loop_create(&f.loop), 0);
    assert_int_equal(umdev_loop_sleep_in_read(f.loop, SIGRTMIN), 0);
    assert_int_equal(umdev_loop_add(f.loop, f.solo.fd,
                                    UMDEV_LOOP_IN | UMDEV_LOOP_SOLO, on_solo,
                                    &f.solo),
                     0);
    *state = &f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    umdev_loop_destroy(f->loop);
    close(f->solo.fd);
    close(f->peer);
    return 0;
}

/* One round trip from the client's side; the loop runs in this thread
 * until the reply is there. Echoes of earlier bytes (a previous case's
 * traffic) are skipped. */
static void
ping(struct fixture *f)
{
    char c = 'p', r = 0;

    assert_int_equal(write(f->peer, &c, 1), 1);
    while (r != c) {
        if (recv(f->peer, &r, 1, MSG_DONTWAIT) == 1)
            continue;
        r = 0;
        assert_true(umdev_loop_run_once(f->loop, -1) >= 0);
    }
}

static void
test_args(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(umdev_loop_sleep_in_read(f->loop, SIGRTMIN), -EBUSY);
    assert_int_equal(umdev_loop_sleep_in_read(f->loop, 0), -EINVAL);
    assert_int_equal(umdev_loop_sleep_in_read(f->loop, SIGKILL), -EINVAL);
}

static void
test_sleeps_in_the_read(void **state)
{
    struct fixture *f = *state;
    int i;

    for (i = 0; i < 100; i++)
        ping(f);
    /* Every message was waited for in the read, none in epoll_wait. */
    assert_int_equal(f->solo.not_asleep, 0);
    assert_true(f->solo.sleeping >= 100);
    assert_true(f->solo.blocking_seen);
    assert_false(f->solo.nonblocking_in_sleep);
}

/* Given back as it was given (non-blocking) once it leaves the loop. */
static void
test_del_restores_mode(void **state)
{
    struct fixture *f = *state;

    ping(f);
    umdev_loop_del(f->loop, f->solo.fd);
    assert_true(fcntl(f->solo.fd, F_GETFL) & O_NONBLOCK);
}

struct poker {
    struct fixture *f;
    int evfd;            /* a second fd, or -1: post instead */
    atomic_uint handled; /* set by the loop's callbacks */
    unsigned int rounds;
    atomic_bool done;
    unsigned int lost; /* wake-ups that took past WAKE_LIMIT_MS */
    bool traffic;      /* also ping-pong meanwhile */
};

static void
on_poke_fd(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct poker *p = opaque;
    uint64_t v;

    (void)loop;
    (void)events;
    if (read(fd, &v, sizeof(v)) == sizeof(v))
        atomic_fetch_add(&p->handled, 1);
}

static void
on_poke_post(struct umdev_loop *loop, void *opaque)
{
    struct poker *p = opaque;

    (void)loop;
    atomic_fetch_add(&p->handled, 1);
}

/* Pokes the sleeping loop, one event at a time, each waited for; a
 * wake-up that never comes is counted, and a byte on the solo fd then
 * frees the loop so the test ends with a verdict instead of hanging. */
static void *
poker_main(void *opaque)
{
    struct poker *p = opaque;
    unsigned int i;

    for (i = 0; i < p->rounds; i++) {
        uint64_t one = 1, start;

        if (p->evfd >= 0)
            assert_int_equal(write(p->evfd, &one, sizeof(one)), 8);
        else
            assert_int_equal(umdev_loop_post(p->f->loop, on_poke_post, p), 0);
        start = now_ms();
        while (atomic_load(&p->handled) <= i) {
            if (now_ms() - start > WAKE_LIMIT_MS) {
                char c = 'x';

                p->lost++;
                assert_int_equal(write(p->f->peer, &c, 1), 1);
                start = now_ms();
                /* One is the verdict: stop after this round. */
                p->rounds = i + 1;
            }
            /* Vary the moment of the next poke across the loop's cycle. */
            sched_yield();
        }
        if ((i & 7) == 0)
            usleep(i % 50);
    }
    atomic_store(&p->done, true);
    /* Free the loop from its last sleep. */
    {
        char c = 'z';

        assert_int_equal(write(p->f->peer, &c, 1), 1);
    }
    return NULL;
}

static void
run_pokes(struct fixture *f, struct poker *p)
{
    unsigned int rounds = p->rounds;
    pthread_t t;
    char drain[64];

    p->f = f;
    assert_int_equal(pthread_create(&t, NULL, poker_main, p), 0);
    while (!atomic_load(&p->done)) {
        assert_true(umdev_loop_run_once(f->loop, -1) >= 0);
        if (p->traffic) {
            char c = 't';

            while (recv(f->peer, drain, sizeof(drain), MSG_DONTWAIT) > 0)
                ;
            assert_int_equal(write(f->peer, &c, 1), 1);
        }
    }
    pthread_join(t, NULL);
    assert_int_equal(p->lost, 0);
    assert_int_equal(atomic_load(&p->handled), rounds);
}

static void
test_other_fd_wakes_the_sleeper(void **state)
{
    struct fixture *f = *state;
    struct poker p = { .rounds = 300 };

    p.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(p.evfd >= 0);
    ping(f);
    assert_int_equal(
        umdev_loop_add(f->loop, p.evfd, UMDEV_LOOP_IN, on_poke_fd, &p), 0);
    run_pokes(f, &p);
    /* The loop woke by EAGAIN, not by bytes, and went back to sleeping. */
    assert_true(f->solo.woken > 0);
    f->solo.not_asleep = 0;
    ping(f);
    ping(f);
    assert_int_equal(f->solo.not_asleep, 0);
    umdev_loop_del(f->loop, p.evfd);
    close(p.evfd);
}

static void
test_posted_call_wakes_the_sleeper(void **state)
{
    struct fixture *f = *state;
    struct poker p = { .rounds = 300, .evfd = -1 };

    ping(f);
    run_pokes(f, &p);
}

/* The stop of another thread (or a signal handler) ends a sleeping run. */
static void *
stopper_main(void *opaque)
{
    usleep(50 * 1000);
    /* umdev_loop_stop() is also what a signal handler calls. */
    umdev_loop_stop(opaque);
    return NULL;
}

static void
test_stop_wakes_the_sleeper(void **state)
{
    struct fixture *f = *state;
    pthread_t t;
    uint64_t start = now_ms();

    ping(f);
    assert_int_equal(pthread_create(&t, NULL, stopper_main, f->loop), 0);
    assert_int_equal(umdev_loop_run(f->loop), 0);
    pthread_join(t, NULL);
    assert_true(now_ms() - start < WAKE_LIMIT_MS);
}

static void
noop_timer(struct umdev_loop *loop, void *opaque)
{
    (void)loop;
    *(bool *)opaque = true;
}

/* Sleeping is only for a loop with nothing else to do: a second SOLO fd,
 * a pending timer or output interest each keep it in epoll_wait(). */
static void
test_not_asleep_unless_alone(void **state)
{
    struct fixture *f = *state;
    struct solo other = { 0 };
    int sv[2];
    bool fired = false;
    int64_t id;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    other.fd = sv[0];
    assert_int_equal(umdev_loop_add(f->loop, other.fd,
                                    UMDEV_LOOP_IN | UMDEV_LOOP_SOLO, on_solo,
                                    &other),
                     0);
    ping(f);
    assert_int_equal(f->solo.sleeping, 0);
    umdev_loop_del(f->loop, other.fd);
    close(sv[0]);
    close(sv[1]);

    id = umdev_loop_timer_add(f->loop, 60 * 1000, noop_timer, &fired);
    assert_true(id > 0);
    ping(f);
    assert_int_equal(f->solo.sleeping, 0);
    umdev_loop_timer_cancel(f->loop, id);

    assert_int_equal(
        umdev_loop_mod(f->loop, f->solo.fd,
                       UMDEV_LOOP_IN | UMDEV_LOOP_OUT | UMDEV_LOOP_SOLO),
        0);
    ping(f);
    assert_int_equal(f->solo.sleeping, 0);
    assert_int_equal(
        umdev_loop_mod(f->loop, f->solo.fd, UMDEV_LOOP_IN | UMDEV_LOOP_SOLO),
        0);
    /* Alone again: back to sleeping. */
    ping(f);
    assert_true(f->solo.sleeping > 0);
    assert_false(fired);
}

/* Pokes land while the loop is busy with traffic too (a byte after every
 * turn), across the whole cycle of checks, read and reply: none may be
 * lost. */
static void
test_no_lost_wakeup_under_traffic(void **state)
{
    struct fixture *f = *state;
    struct poker p = { .rounds = 3000, .traffic = true };

    p.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    assert_true(p.evfd >= 0);
    assert_int_equal(
        umdev_loop_add(f->loop, p.evfd, UMDEV_LOOP_IN, on_poke_fd, &p), 0);
    run_pokes(f, &p);
    umdev_loop_del(f->loop, p.evfd);
    close(p.evfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sleeps_in_the_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_del_restores_mode, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_fd_wakes_the_sleeper, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_posted_call_wakes_the_sleeper,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_wakes_the_sleeper, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_asleep_unless_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_lost_wakeup_under_traffic,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
