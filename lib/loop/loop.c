/*
 * The epoll event loop. Handlers live in a table indexed by fd; each
 * registration gets a generation number carried in the epoll cookie, so an
 * event for an fd that was removed (and maybe re-added) earlier in the same
 * batch is recognised as stale and skipped.
 *
 * Timers need no fd: they sit in an array sorted by deadline, and
 * epoll_wait() sleeps no longer than the first one. Posted calls wait in a
 * mutex-protected FIFO; the poster writes an eventfd so a sleeping loop
 * wakes, and the loop looks at the FIFO only when a flag says it is not
 * empty, so a loop nobody posts to pays one atomic load per turn.
 *
 * Sleeping reads (umdev_loop_sleep_in_read()): a server with one client
 * and nothing else to do pays epoll_wait() + recvmsg() per message where
 * a plain blocking recvmsg() would do. So when exactly one fd is marked
 * SOLO and nothing else is pending, its callback sleeps in the read, and
 * a watcher thread waits on a second epoll set holding every other fd.
 * When one of those becomes ready the watcher marks the loop FIRED and
 * signals the loop's thread; the handler sets O_NONBLOCK on the sleeping
 * fd (async-signal-safe, and unlike EINTR it cannot be lost: a read that
 * has not started yet sees the flag, one that sleeps is restarted by
 * SA_RESTART and sees it), so the read returns EAGAIN and the loop runs an
 * ordinary turn before it sleeps again. The watcher then waits until the
 * loop re-arms it, so it never spins on a level-triggered fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "umdev/loop.h"
#include "util.h"

#define LOOP_BATCH 64
/* Loops with sleeping reads in one process; the signal handler finds the
 * one of its thread here. */
#define LOOP_MAX_SLEEPERS 64

struct loop_entry {
    umdev_loop_fn *fn;
    void *opaque;
    uint32_t gen;    /* 0: free slot */
    uint32_t events; /* as given, UMDEV_LOOP_SOLO included */
};

/* The watcher's state (umdev_loop_sleep_in_read()). */
enum {
    WATCH_ARMED, /* watching the other fds */
    WATCH_FIRED, /* one was ready: the loop was signalled, and re-arms */
    WATCH_QUIT,
};

struct loop_timer {
    uint64_t due_ms;
    int64_t id;
    umdev_loop_call_fn *fn;
    void *opaque;
};

struct loop_post {
    umdev_loop_call_fn *fn;
    void *opaque;
    struct loop_post *next;
};

struct umdev_loop {
    int epfd;
    struct loop_entry *entries;
    size_t nentries;
    uint32_t next_gen;
    atomic_bool stop;
    /* Written by umdev_loop_stop() and umdev_loop_post() so a loop asleep
     * in epoll_wait() wakes up. */
    int wake_fd;
    int signal_fd; /* umdev_loop_stop_on_signals(), -1 if none */

    struct loop_timer *timers; /* sorted by (due_ms, id) */
    size_t ntimers, timers_cap;
    int64_t next_timer_id;

    pthread_mutex_t post_lock;
    struct loop_post *post_head, **post_tail;
    atomic_bool posted; /* the FIFO may be non-empty */

    /* Sleeping reads; wake_signo 0: off. */
    int wake_signo;
    int slot;         /* in sleepers[] */
    pthread_t thread; /* the loop's, which the signal wakes */
    int cold_epfd;    /* every watched fd but the SOLO ones */
    size_t nsolo;     /* fds marked UMDEV_LOOP_SOLO */
    int solo_fd;      /* the SOLO fd while nsolo == 1, else -1 */
    int solo_fl;      /* its file status flags when it became solo */
    /* O_NONBLOCK is cleared on solo_fd. Written by the loop's thread and
     * its signal handler only, which is why a signal fence suffices. */
    volatile sig_atomic_t solo_sleepy;
    pthread_t watcher;
    bool watcher_running;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_cond;
    atomic_int watch;
};

static struct umdev_loop *_Atomic sleepers[LOOP_MAX_SLEEPERS];

static void
on_wake(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    uint64_t n;

    (void)loop;
    (void)events;
    (void)opaque;
    if (read(fd, &n, sizeof(n)) < 0) {
        /* Nothing pending (EAGAIN): the flags are what matter. */
    }
}

static void sleep_fini(struct umdev_loop *loop);

int
umdev_loop_create(struct umdev_loop **out)
{
    struct umdev_loop *loop;
    int err;

    *out = NULL;
    loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return -ENOMEM;
    loop->wake_fd = loop->signal_fd = -1;
    loop->cold_epfd = loop->solo_fd = loop->slot = -1;
    loop->next_gen = 1;
    loop->next_timer_id = 1;
    loop->post_tail = &loop->post_head;
    err = pthread_mutex_init(&loop->post_lock, NULL);
    if (err != 0) {
        free(loop);
        return -err;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        err = -errno;
        goto fail;
    }
    loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_fd < 0) {
        err = -errno;
        goto fail;
    }
    err = umdev_loop_add(loop, loop->wake_fd, UMDEV_LOOP_IN, on_wake, NULL);
    if (err < 0)
        goto fail;
    *out = loop;
    return 0;
fail:
    umdev_loop_destroy(loop);
    return err;
}

void
umdev_loop_destroy(struct umdev_loop *loop)
{
    struct loop_post *p, *next;

    if (loop == NULL)
        return;
    sleep_fini(loop);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    if (loop->signal_fd >= 0)
        close(loop->signal_fd);
    if (loop->epfd >= 0)
        close(loop->epfd);
    for (p = loop->post_head; p != NULL; p = next) {
        next = p->next;
        free(p);
    }
    pthread_mutex_destroy(&loop->post_lock);
    free(loop->timers);
    free(loop->entries);
    free(loop);
}

/* The UMDEV_LOOP_* bits are epoll's own, so events pass through as they
 * are; only a peer's half-close (RDHUP) is reported as a hangup. */
_Static_assert(UMDEV_LOOP_IN == EPOLLIN && UMDEV_LOOP_OUT == EPOLLOUT &&
                   UMDEV_LOOP_ERR == EPOLLERR && UMDEV_LOOP_HUP == EPOLLHUP,
               "loop events are epoll events");

static uint32_t
from_epoll(uint32_t e)
{
    return (e & (EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP)) |
           (e & EPOLLRDHUP ? UMDEV_LOOP_HUP : 0);
}

/* Mirror a change to the watcher's set, which leaves SOLO fds out. */
static void
cold_ctl(struct umdev_loop *loop, int op, int fd, uint32_t events)
{
    struct epoll_event ev;

    if (loop->cold_epfd < 0 || (events & UMDEV_LOOP_SOLO))
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = events & (UMDEV_LOOP_IN | UMDEV_LOOP_OUT);
    ev.data.fd = fd;
    /* Cannot fail but for memory; the watcher would then miss this fd
     * while the loop sleeps, so sleeping stops for good instead. */
    if (epoll_ctl(loop->cold_epfd, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev) <
            0 &&
        op != EPOLL_CTL_DEL)
        loop->wake_signo = 0;
}

/* Put the solo fd back in the mode it was given in. */
static void
solo_release(struct umdev_loop *loop)
{
    if (loop->solo_fd < 0)
        return;
    if (loop->solo_sleepy) {
        loop->solo_sleepy = 0;
        atomic_signal_fence(memory_order_seq_cst);
        if (fcntl(loop->solo_fd, F_SETFL, loop->solo_fl) < 0) {
            /* The fd is valid (still registered): nothing to undo. */
        }
    }
    loop->solo_fd = -1;
}

/* Recount after @fd's SOLO mark went from @was to @is (before the slot of
 * a removed fd is cleared). */
static void
solo_update(struct umdev_loop *loop, int fd, bool was, bool is)
{
    size_t i;
    int fl;

    if (was == is)
        return;
    solo_release(loop);
    if (is)
        loop->nsolo++;
    else
        loop->nsolo--;
    if (loop->nsolo != 1)
        return;
    /* The one left: @fd itself if it just became solo, else another. */
    if (is) {
        i = (size_t)fd;
    } else {
        for (i = 0; i < loop->nentries; i++) {
            if (loop->entries[i].gen != 0 && (int)i != fd &&
                (loop->entries[i].events & UMDEV_LOOP_SOLO))
                break;
        }
        if (i == loop->nentries)
            return;
    }
    fl = fcntl((int)i, F_GETFL);
    if (fl < 0)
        return;
    loop->solo_fl = fl;
    loop->solo_fd = (int)i;
}

int
umdev_loop_add(struct umdev_loop *loop, int fd, uint32_t events,
               umdev_loop_fn *fn, void *opaque)
{
    struct epoll_event ev;
    uint32_t gen;

    if (fd < 0 || fn == NULL)
        return -EINVAL;
    if ((size_t)fd >= loop->nentries) {
        size_t n = loop->nentries ? loop->nentries : 16;
        struct loop_entry *e;

        while (n <= (size_t)fd)
            n *= 2;
        e = realloc(loop->entries, n * sizeof(*e));
        if (e == NULL)
            return -ENOMEM;
        memset(e + loop->nentries, 0, (n - loop->nentries) * sizeof(*e));
        loop->entries = e;
        loop->nentries = n;
    }
    if (loop->entries[fd].gen != 0)
        return -EEXIST;
    gen = loop->next_gen++;
    if (loop->next_gen == 0)
        loop->next_gen = 1;
    memset(&ev, 0, sizeof(ev));
    ev.events = events & (UMDEV_LOOP_IN | UMDEV_LOOP_OUT);
    ev.data.u64 = (uint64_t)(uint32_t)fd | ((uint64_t)gen << 32);
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    loop->entries[fd] = (struct loop_entry){ fn, opaque, gen, events };
    cold_ctl(loop, EPOLL_CTL_ADD, fd, events);
    solo_update(loop, fd, false, (events & UMDEV_LOOP_SOLO) != 0);
    return 0;
}

int
umdev_loop_mod(struct umdev_loop *loop, int fd, uint32_t events)
{
    struct epoll_event ev;
    uint32_t was;

    if (fd < 0 || (size_t)fd >= loop->nentries || loop->entries[fd].gen == 0)
        return -ENOENT;
    memset(&ev, 0, sizeof(ev));
    ev.events = events & (UMDEV_LOOP_IN | UMDEV_LOOP_OUT);
    ev.data.u64 =
        (uint64_t)(uint32_t)fd | ((uint64_t)loop->entries[fd].gen << 32);
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -errno;
    was = loop->entries[fd].events;
    loop->entries[fd].events = events;
    if ((was ^ events) & UMDEV_LOOP_SOLO) {
        cold_ctl(loop, EPOLL_CTL_DEL, fd, was);
        cold_ctl(loop, EPOLL_CTL_ADD, fd, events);
        solo_update(loop, fd, (was & UMDEV_LOOP_SOLO) != 0,
                    (events & UMDEV_LOOP_SOLO) != 0);
    } else {
        cold_ctl(loop, EPOLL_CTL_MOD, fd, events);
    }
    return 0;
}

void
umdev_loop_del(struct umdev_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nentries || loop->entries[fd].gen == 0)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    cold_ctl(loop, EPOLL_CTL_DEL, fd, loop->entries[fd].events);
    /* Recounted before the slot is freed, which the count looks at. */
    solo_update(loop, fd, (loop->entries[fd].events & UMDEV_LOOP_SOLO) != 0,
                false);
    memset(&loop->entries[fd], 0, sizeof(loop->entries[fd]));
}

int64_t
umdev_loop_timer_add(struct umdev_loop *loop, uint64_t ms,
                     umdev_loop_call_fn *fn, void *opaque)
{
    struct loop_timer t;
    size_t pos;

    if (fn == NULL)
        return -EINVAL;
    if (loop->ntimers == loop->timers_cap) {
        size_t cap = loop->timers_cap ? loop->timers_cap * 2 : 8;
        struct loop_timer *a = realloc(loop->timers, cap * sizeof(*a));

        if (a == NULL)
            return -ENOMEM;
        loop->timers = a;
        loop->timers_cap = cap;
    }
    /* A deadline past the end of time is no deadline worth keeping
     * apart: clamp instead of wrapping. */
    t.due_ms = util_now_ms();
    t.due_ms = ms > UINT64_MAX - t.due_ms ? UINT64_MAX : t.due_ms + ms;
    t.id = loop->next_timer_id++;
    t.fn = fn;
    t.opaque = opaque;
    /* After every timer due no later, so equal deadlines keep their
     * order. */
    pos = loop->ntimers;
    while (pos > 0 && loop->timers[pos - 1].due_ms > t.due_ms)
        pos--;
    memmove(&loop->timers[pos + 1], &loop->timers[pos],
            (loop->ntimers - pos) * sizeof(t));
    loop->timers[pos] = t;
    loop->ntimers++;
    return t.id;
}

void
umdev_loop_timer_cancel(struct umdev_loop *loop, int64_t id)
{
    size_t i;

    if (id <= 0)
        return;
    for (i = 0; i < loop->ntimers; i++) {
        if (loop->timers[i].id == id) {
            memmove(&loop->timers[i], &loop->timers[i + 1],
                    (loop->ntimers - i - 1) * sizeof(loop->timers[0]));
            loop->ntimers--;
            return;
        }
    }
}

static void
wake(struct umdev_loop *loop)
{
    uint64_t one = 1;

    if (write(loop->wake_fd, &one, sizeof(one)) < 0) {
        /* Counter saturated: a wake-up is pending anyway. */
    }
}

int
umdev_loop_post(struct umdev_loop *loop, umdev_loop_call_fn *fn, void *opaque)
{
    struct loop_post *p;

    if (fn == NULL)
        return -EINVAL;
    p = malloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->fn = fn;
    p->opaque = opaque;
    p->next = NULL;
    pthread_mutex_lock(&loop->post_lock);
    *loop->post_tail = p;
    loop->post_tail = &p->next;
    atomic_store(&loop->posted, true);
    pthread_mutex_unlock(&loop->post_lock);
    wake(loop);
    return 0;
}

/* Run the calls posted so far; those posted meanwhile wait a turn. */
static int
run_posted(struct umdev_loop *loop)
{
    struct loop_post *p, *next;
    int ran = 0;

    if (!atomic_load(&loop->posted))
        return 0;
    pthread_mutex_lock(&loop->post_lock);
    p = loop->post_head;
    loop->post_head = NULL;
    loop->post_tail = &loop->post_head;
    atomic_store(&loop->posted, false);
    pthread_mutex_unlock(&loop->post_lock);
    for (; p != NULL; p = next) {
        next = p->next;
        p->fn(loop, p->opaque);
        free(p);
        ran++;
    }
    return ran;
}

/* Run the timers due now. One a callback adds, even with 0 ms, waits for
 * the next turn, so a timer that re-arms itself cannot starve the fds. */
static int
run_timers(struct umdev_loop *loop)
{
    int64_t last_id = loop->next_timer_id - 1;
    uint64_t now;
    int ran = 0;
    size_t i = 0;

    /* The common turn has no timer: no clock read on the message path. */
    if (loop->ntimers == 0)
        return 0;
    now = util_now_ms();
    while (i < loop->ntimers && loop->timers[i].due_ms <= now) {
        struct loop_timer t = loop->timers[i];

        if (t.id > last_id) {
            i++;
            continue;
        }
        memmove(&loop->timers[i], &loop->timers[i + 1],
                (loop->ntimers - i - 1) * sizeof(t));
        loop->ntimers--;
        t.fn(loop, t.opaque);
        ran++;
        /* The callback may have cancelled or added timers before i:
         * start over; what ran is gone, so this ends. */
        i = 0;
    }
    return ran;
}

/* How long epoll_wait() may sleep: the caller's bound, cut short by the
 * first timer and by calls already posted. */
static int
wait_ms(struct umdev_loop *loop, int timeout_ms)
{
    uint64_t now, due;

    if (atomic_load(&loop->posted))
        return 0;
    if (loop->ntimers == 0)
        return timeout_ms;
    due = loop->timers[0].due_ms;
    now = util_now_ms();
    if (due <= now)
        return 0;
    if (timeout_ms >= 0 && (uint64_t)timeout_ms <= due - now)
        return timeout_ms;
    return due - now > (uint64_t)INT32_MAX ? INT32_MAX : (int)(due - now);
}

/* One ordinary turn: epoll_wait() on everything, then what is ready. */
static int
epoll_turn(struct umdev_loop *loop, int timeout_ms)
{
    struct epoll_event evs[LOOP_BATCH];
    int n, i, ran = 0;

    n = epoll_wait(loop->epfd, evs, LOOP_BATCH, wait_ms(loop, timeout_ms));
    if (n < 0) {
        if (errno != EINTR)
            return -errno;
        n = 0;
    }
    for (i = 0; i < n; i++) {
        int fd = (int)(uint32_t)evs[i].data.u64;
        uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
        struct loop_entry *e;

        if ((size_t)fd >= loop->nentries)
            continue;
        e = &loop->entries[fd];
        if (e->gen != gen)
            continue; /* removed earlier in this batch */
        e->fn(loop, fd, from_epoll(evs[i].events), e->opaque);
        /* The wake-up is housekeeping, not a callback of the caller's. */
        if (fd != loop->wake_fd)
            ran++;
    }
    ran += run_posted(loop);
    ran += run_timers(loop);
    return ran;
}

static bool
can_sleep(struct umdev_loop *loop)
{
    return loop->wake_signo != 0 && loop->solo_fd >= 0 &&
           loop->entries[loop->solo_fd].events ==
               (UMDEV_LOOP_IN | UMDEV_LOOP_SOLO) &&
           loop->ntimers == 0 && !atomic_load(&loop->posted) &&
           !atomic_load(&loop->stop);
}

static void
watch_rearm(struct umdev_loop *loop)
{
    int fired = WATCH_FIRED;

    pthread_mutex_lock(&loop->watch_lock);
    if (atomic_compare_exchange_strong(&loop->watch, &fired, WATCH_ARMED))
        pthread_cond_signal(&loop->watch_cond);
    pthread_mutex_unlock(&loop->watch_lock);
}

/* Let the solo fd's callback sleep in its read, unless the watcher has
 * seen something that needs an ordinary turn first. */
static int
sleep_turn(struct umdev_loop *loop)
{
    struct loop_entry *e;
    int fd = loop->solo_fd, rc;

    if (atomic_load(&loop->watch) != WATCH_ARMED) {
        /* Timeout 0: the watcher may have seen a readiness this turn
         * does not (a posted call already run); then sleep again. */
        rc = epoll_turn(loop, 0);
        watch_rearm(loop);
        return rc;
    }
    if (!loop->solo_sleepy) {
        if (fcntl(fd, F_SETFL, loop->solo_fl & ~O_NONBLOCK) < 0)
            return epoll_turn(loop, -1);
        /* Only now: a handler that ran before the fcntl() must not see
         * the flag, or the fcntl() would undo its O_NONBLOCK. */
        atomic_signal_fence(memory_order_seq_cst);
        loop->solo_sleepy = 1;
    }
    /* A wake-up from here on finds solo_sleepy set and undoes the mode;
     * one that came before shows in the state the watcher set before
     * it signalled. */
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load(&loop->watch) != WATCH_ARMED)
        return 0;
    e = &loop->entries[fd];
    e->fn(loop, fd, UMDEV_LOOP_IN | UMDEV_LOOP_SLEEP, e->opaque);
    return 1;
}

int
umdev_loop_run_once(struct umdev_loop *loop, int timeout_ms)
{
    if (timeout_ms < 0 && can_sleep(loop))
        return sleep_turn(loop);
    return epoll_turn(loop, timeout_ms);
}

int
umdev_loop_run(struct umdev_loop *loop)
{
    int rc;

    while (!atomic_load(&loop->stop)) {
        rc = umdev_loop_run_once(loop, -1);
        if (rc < 0)
            return rc;
    }
    atomic_store(&loop->stop, false);
    return 0;
}

/* Async-signal-safe: a store and a write(2). */
void
umdev_loop_stop(struct umdev_loop *loop)
{
    atomic_store(&loop->stop, true);
    wake(loop);
}

/* Runs on the loop's thread, which it interrupts wherever it was. */
static void
on_wake_signal(int signo)
{
    pthread_t self = pthread_self();
    int saved = errno;
    size_t i;

    (void)signo;
    for (i = 0; i < LOOP_MAX_SLEEPERS; i++) {
        struct umdev_loop *loop = atomic_load(&sleepers[i]);

        if (loop == NULL || !pthread_equal(loop->thread, self) ||
            !loop->solo_sleepy)
            continue;
        loop->solo_sleepy = 0;
        if (fcntl(loop->solo_fd, F_SETFL, loop->solo_fl | O_NONBLOCK) < 0) {
            /* Only EBADF, which a registered fd cannot be. */
        }
    }
    errno = saved;
}

static void *
watcher_main(void *opaque)
{
    struct umdev_loop *loop = opaque;
    struct epoll_event ev;
    int state, n;

    for (;;) {
        pthread_mutex_lock(&loop->watch_lock);
        while ((state = atomic_load(&loop->watch)) == WATCH_FIRED)
            pthread_cond_wait(&loop->watch_cond, &loop->watch_lock);
        pthread_mutex_unlock(&loop->watch_lock);
        if (state == WATCH_QUIT)
            return NULL;
        n = epoll_wait(loop->cold_epfd, &ev, 1, -1);
        if (n == 0 || (n < 0 && errno == EINTR))
            continue;
        /* Ready, or epoll failed (then the loop's own turn finds out). */
        state = WATCH_ARMED;
        if (atomic_compare_exchange_strong(&loop->watch, &state, WATCH_FIRED))
            pthread_kill(loop->thread, loop->wake_signo);
    }
}

/* Stop the watcher; a signal it sent has been handled once this returns
 * (the loop's thread passes through the kernel in pthread_join()). */
static void
sleep_fini(struct umdev_loop *loop)
{
    if (loop->watcher_running) {
        pthread_mutex_lock(&loop->watch_lock);
        atomic_store(&loop->watch, WATCH_QUIT);
        pthread_cond_signal(&loop->watch_cond);
        pthread_mutex_unlock(&loop->watch_lock);
        wake(loop);
        pthread_join(loop->watcher, NULL);
        loop->watcher_running = false;
        pthread_cond_destroy(&loop->watch_cond);
        pthread_mutex_destroy(&loop->watch_lock);
    }
    loop->wake_signo = 0;
    solo_release(loop);
    if (loop->slot >= 0)
        atomic_store(&sleepers[loop->slot], NULL);
    loop->slot = -1;
    if (loop->cold_epfd >= 0)
        close(loop->cold_epfd);
    loop->cold_epfd = -1;
}

int
umdev_loop_sleep_in_read(struct umdev_loop *loop, int signo)
{
    struct sigaction sa;
    sigset_t one, all, old;
    size_t i;
    int rc;

    if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP)
        return -EINVAL;
    if (loop->slot >= 0)
        return -EBUSY;
    for (i = 0; i < LOOP_MAX_SLEEPERS; i++) {
        struct umdev_loop *none = NULL;

        if (atomic_compare_exchange_strong(&sleepers[i], &none, loop))
            break;
    }
    if (i == LOOP_MAX_SLEEPERS)
        return -EBUSY;
    loop->slot = (int)i;
    loop->thread = pthread_self();
    loop->cold_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->cold_epfd < 0) {
        rc = -errno;
        goto fail;
    }
    for (i = 0; i < loop->nentries; i++) {
        struct epoll_event ev = { 0 };
        const struct loop_entry *e = &loop->entries[i];

        if (e->gen == 0 || (e->events & UMDEV_LOOP_SOLO))
            continue;
        ev.events = e->events & (UMDEV_LOOP_IN | UMDEV_LOOP_OUT);
        ev.data.fd = (int)i;
        if (epoll_ctl(loop->cold_epfd, EPOLL_CTL_ADD, (int)i, &ev) < 0) {
            rc = -errno;
            goto fail;
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_wake_signal;
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(signo, &sa, NULL) < 0) {
        rc = -errno;
        goto fail;
    }
    rc = pthread_mutex_init(&loop->watch_lock, NULL);
    if (rc != 0) {
        rc = -rc;
        goto fail;
    }
    rc = pthread_cond_init(&loop->watch_cond, NULL);
    if (rc != 0) {
        pthread_mutex_destroy(&loop->watch_lock);
        rc = -rc;
        goto fail;
    }
    atomic_store(&loop->watch, WATCH_ARMED);
    /* The watcher takes no signal: process-directed ones stay for the
     * threads (and signalfds) that expect them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&loop->watcher, NULL, watcher_main, loop);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&loop->watch_cond);
        pthread_mutex_destroy(&loop->watch_lock);
        rc = -rc;
        goto fail;
    }
    loop->watcher_running = true;
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    loop->wake_signo = signo;
    return 0;
fail:
    sleep_fini(loop);
    return rc;
}

static void
on_stop_signal(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct signalfd_siginfo si;

    (void)events;
    (void)opaque;
    if (read(fd, &si, sizeof(si)) == sizeof(si))
        umdev_loop_stop(loop);
}

int
umdev_loop_stop_on_signals(struct umdev_loop *loop)
{
    sigset_t mask;
    int rc;

    if (loop->signal_fd >= 0)
        return 0;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    rc = pthread_sigmask(SIG_BLOCK, &mask, NULL);
    if (rc != 0)
        return -rc;
    loop->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (loop->signal_fd < 0)
        return -errno;
    rc = umdev_loop_add(loop, loop->signal_fd, UMDEV_LOOP_IN, on_stop_signal,
                        NULL);
    if (rc < 0) {
        close(loop->signal_fd);
        loop->signal_fd = -1;
    }
    return rc;
}
