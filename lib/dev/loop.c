/*
 * The epoll event loop. Handlers live in a table indexed by fd; each
 * registration gets a generation number carried in the epoll cookie, so an
 * event for an fd that was removed (and maybe re-added) earlier in the same
 * batch is recognised as stale and skipped.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "umdev/loop.h"

#define LOOP_BATCH 64

struct loop_entry {
    umdev_loop_fn *fn;
    void *opaque;
    uint32_t gen; /* 0: free slot */
};

struct umdev_loop {
    int epfd;
    struct loop_entry *entries;
    size_t nentries;
    uint32_t next_gen;
    atomic_bool stop;
    int wake_fd; /* written by umdev_loop_stop so run() sleeps unbounded */
};

static void
on_wake(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    uint64_t n;

    (void)loop;
    (void)events;
    (void)opaque;
    if (read(fd, &n, sizeof(n)) < 0) {
        /* Nothing pending (EAGAIN): the stop flag is what matters. */
    }
}

int
umdev_loop_create(struct umdev_loop **out)
{
    struct umdev_loop *loop;

    *out = NULL;
    loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return -ENOMEM;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        int err = -errno;

        free(loop);
        return err;
    }
    loop->next_gen = 1;
    loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_fd < 0 ||
        umdev_loop_add(loop, loop->wake_fd, UMDEV_LOOP_IN, on_wake, NULL) < 0) {
        int err = loop->wake_fd < 0 ? -errno : -ENOMEM;

        if (loop->wake_fd >= 0)
            close(loop->wake_fd);
        close(loop->epfd);
        free(loop->entries);
        free(loop);
        return err;
    }
    *out = loop;
    return 0;
}

void
umdev_loop_destroy(struct umdev_loop *loop)
{
    if (loop == NULL)
        return;
    close(loop->wake_fd);
    close(loop->epfd);
    free(loop->entries);
    free(loop);
}

static uint32_t
to_epoll(uint32_t ev)
{
    uint32_t e = 0;

    if (ev & UMDEV_LOOP_IN)
        e |= EPOLLIN;
    if (ev & UMDEV_LOOP_OUT)
        e |= EPOLLOUT;
    return e;
}

static uint32_t
from_epoll(uint32_t e)
{
    uint32_t ev = 0;

    if (e & EPOLLIN)
        ev |= UMDEV_LOOP_IN;
    if (e & EPOLLOUT)
        ev |= UMDEV_LOOP_OUT;
    if (e & EPOLLERR)
        ev |= UMDEV_LOOP_ERR;
    if (e & (EPOLLHUP | EPOLLRDHUP))
        ev |= UMDEV_LOOP_HUP;
    return ev;
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
    ev.events = to_epoll(events);
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
    ev.events = to_epoll(events);
    ev.data.u64 = (uint64_t)(uint32_t)fd |
                  ((uint64_t)loop->entries[fd].gen << 32);
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

int
umdev_loop_run_once(struct umdev_loop *loop, int timeout_ms)
{
    struct epoll_event evs[LOOP_BATCH];
    int n, i, ran = 0;

    n = epoll_wait(loop->epfd, evs, LOOP_BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
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
        ran++;
    }
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
    uint64_t one = 1;

    atomic_store(&loop->stop, true);
    if (write(loop->wake_fd, &one, sizeof(one)) < 0) {
        /* Counter saturated: a wake-up is pending anyway. */
    }
}
