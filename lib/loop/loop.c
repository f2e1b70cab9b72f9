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
 */
#include <errno.h>
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

struct loop_entry {
    umdev_loop_fn *fn;
    void *opaque;
    uint32_t gen; /* 0: free slot */
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
};


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
    loop->entries[fd] = (struct loop_entry){ fn, opaque, gen };
    return 0;
}

int
umdev_loop_mod(struct umdev_loop *loop, int fd, uint32_t events)
{
    struct epoll_event ev;

    if (fd < 0 || (size_t)fd >= loop->nentries || loop->entries[fd].gen == 0)
        return -ENOENT;
    memset(&ev, 0, sizeof(ev));
    ev.events = events & (UMDEV_LOOP_IN | UMDEV_LOOP_OUT);
    ev.data.u64 =
        (uint64_t)(uint32_t)fd | ((uint64_t)loop->entries[fd].gen << 32);
    if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -errno;
    return 0;
}

void
umdev_loop_del(struct umdev_loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nentries || loop->entries[fd].gen == 0)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
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

int
umdev_loop_run_once(struct umdev_loop *loop, int timeout_ms)
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
