/*
 * A small epoll event loop (fd readiness and one-shot timers) that servers,
 * devices and the daemon share. Caller-owned handle; not thread-safe except
 * umdev_loop_stop(), which may be called from a signal handler or another
 * thread.
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

/* Called with the events that fired. May add or remove any fd, itself
 * included. */
typedef void umdev_loop_fn(struct umdev_loop *loop, int fd, uint32_t events,
                           void *opaque);

int umdev_loop_create(struct umdev_loop **out);
void umdev_loop_destroy(struct umdev_loop *loop);

/** Watch @fd (not taken) for @events. Return: 0, -EEXIST, -errno. */
int umdev_loop_add(struct umdev_loop *loop, int fd, uint32_t events,
                   umdev_loop_fn *fn, void *opaque);
int umdev_loop_mod(struct umdev_loop *loop, int fd, uint32_t events);
/** Stop watching @fd; safe for an fd not watched. */
void umdev_loop_del(struct umdev_loop *loop, int fd);

/**
 * umdev_loop_run_once() - wait up to @timeout_ms (-1 forever) and dispatch.
 * Return: number of callbacks run, or -errno.
 */
int umdev_loop_run_once(struct umdev_loop *loop, int timeout_ms);

/** Run until umdev_loop_stop(). Return: 0 or -errno. */
int umdev_loop_run(struct umdev_loop *loop);
void umdev_loop_stop(struct umdev_loop *loop);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_LOOP_H */
