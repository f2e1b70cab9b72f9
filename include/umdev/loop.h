/*
 * A small epoll event loop that servers, devices and the daemon share:
 * fd readiness, one-shot timers, and calls posted from other threads.
 * Caller-owned handle, run by one thread. Thread-safe: umdev_loop_post()
 * and umdev_loop_stop() (the latter also from a signal handler); every
 * other call belongs to the loop's thread.
 */
#ifndef UMDEV_LOOP_H
#define UMDEV_LOOP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct umdev_loop;

#define UMDEV_LOOP_IN 0x1u
#define UMDEV_LOOP_OUT 0x4u
#define UMDEV_LOOP_ERR 0x8u
#define UMDEV_LOOP_HUP 0x10u
/*
 * Given to umdev_loop_add()/_mod(): this fd may be read sleeping when it
 * is the only such fd on the loop (umdev_loop_sleep_in_read()). Its
 * callback must then accept UMDEV_LOOP_SLEEP.
 */
#define UMDEV_LOOP_SOLO 0x100u
/*
 * Passed to a UMDEV_LOOP_SOLO fd's callback instead of a readiness event:
 * nothing else needs the loop, so read the fd once without MSG_DONTWAIT
 * (it is in blocking mode now) and return. The read ends with data, with
 * EOF, or with EAGAIN when the loop is needed elsewhere.
 */
#define UMDEV_LOOP_SLEEP 0x200u

/* Called with the events that fired. May add or remove any fd, itself
 * included, and add or cancel timers. */
typedef void umdev_loop_fn(struct umdev_loop *loop, int fd, uint32_t events,
                           void *opaque);
/* A timer that expired or a posted call, run on the loop's thread. */
typedef void umdev_loop_call_fn(struct umdev_loop *loop, void *opaque);

/** Return: 0, -ENOMEM, or the epoll/eventfd error. */
int umdev_loop_create(struct umdev_loop **out);
/** Timers and posted calls still pending are dropped, not run. NULL ok. */
void umdev_loop_destroy(struct umdev_loop *loop);

/** Watch @fd (not taken) for @events. Return: 0, -EEXIST, -errno. */
int umdev_loop_add(struct umdev_loop *loop, int fd, uint32_t events,
                   umdev_loop_fn *fn, void *opaque);
int umdev_loop_mod(struct umdev_loop *loop, int fd, uint32_t events);
/** Stop watching @fd; safe for an fd not watched. */
void umdev_loop_del(struct umdev_loop *loop, int fd);

/**
 * umdev_loop_timer_add() - call @fn once, from the loop, @ms milliseconds
 * from now (CLOCK_MONOTONIC). Timers due together run in the order added.
 * Return: the timer's id (> 0), or -ENOMEM.
 */
int64_t umdev_loop_timer_add(struct umdev_loop *loop, uint64_t ms,
                             umdev_loop_call_fn *fn, void *opaque);
/** Cancel a timer that has not run; ids <= 0 and spent ids are ignored. */
void umdev_loop_timer_cancel(struct umdev_loop *loop, int64_t id);

/**
 * umdev_loop_post() - have the loop's thread call @fn soon, from any
 * thread; calls run in the order posted. Return: 0 or -ENOMEM.
 */
int umdev_loop_post(struct umdev_loop *loop, umdev_loop_call_fn *fn,
                    void *opaque);

/**
 * umdev_loop_run_once() - wait up to @timeout_ms (-1: until something
 * happens) and run what is ready: fd callbacks, posted calls, due timers.
 * Return: number of callbacks run, or -errno.
 */
int umdev_loop_run_once(struct umdev_loop *loop, int timeout_ms);

/** Run until umdev_loop_stop(). Return: 0 or -errno. */
int umdev_loop_run(struct umdev_loop *loop);
void umdev_loop_stop(struct umdev_loop *loop);

/**
 * umdev_loop_sleep_in_read() - when the loop has one UMDEV_LOOP_SOLO fd
 * wanting input, no timer and no posted call, let that fd's callback
 * sleep in its read (UMDEV_LOOP_SLEEP) instead of the loop in
 * epoll_wait(): a server with one client saves a system call and a
 * wake-up per message. A thread of the loop's watches every other fd
 * meanwhile; when one of them, a posted call or umdev_loop_stop() needs
 * the loop, it sends @signo to the loop's thread, whose handler puts the
 * sleeping fd back in non-blocking mode so the read returns EAGAIN.
 *
 * @signo becomes the loop's: the handler is installed process-wide
 * (SA_RESTART, so other calls of the loop's thread are not disturbed) and
 * unblocked in the calling thread, which must be the one that runs the
 * loop. Use a signal nothing else in the process uses (SIGRTMIN + n).
 * Call once, before any seccomp filter: this creates a thread and an
 * epoll fd. Loops that never call it behave as before.
 * Return: 0, -EBUSY (called already, or too many loops in the process),
 * -EINVAL, or -errno.
 */
int umdev_loop_sleep_in_read(struct umdev_loop *loop, int signo);

/**
 * umdev_loop_stop_on_signals() - stop the loop when SIGTERM or SIGINT
 * arrives: blocks both in the calling thread (call it before starting
 * threads, which inherit the mask) and watches a signalfd the loop owns.
 * For servers that run until told to stop. Return: 0 or -errno.
 */
int umdev_loop_stop_on_signals(struct umdev_loop *loop);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_LOOP_H */
