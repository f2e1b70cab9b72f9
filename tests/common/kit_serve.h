/*
 * Serve devices on a thread: any struct umdev_dev, each on its own UNIX
 * socket in a fresh mkdtemp() directory under /tmp, all on one umdev_loop
 * that a server thread runs. Tests then connect to the sockets (lib/client
 * or kit_peer.h) from their own thread, and look at device state only on
 * the server thread (kit_serve_call()), so nothing races with message
 * handling.
 *
 * Life cycle: kit_serve_init(), kit_serve_add() for each device,
 * kit_serve_start(), then any number of kit_serve_call(), then
 * kit_serve_stop(), which also cleans up after a failed init or add.
 * Functions return 0 or -errno and never assert. Thread-safety: call them
 * from one thread (the test's); the functions they run go to the server
 * thread.
 */
#ifndef UMDEV_KIT_SERVE_H
#define UMDEV_KIT_SERVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "umdev/dev.h"

/* Most devices one server thread serves. */
#define KIT_SERVE_MAX_DEVS 4

/* A function run on the server thread (a call, or a device's destroy). */
typedef void kit_serve_fn(void *arg);

struct kit_serve_dev {
    char path[108];        /* its socket */
    struct umdev_dev *dev; /* borrowed until the destroy callback */
    struct umdev_server *srv;
    kit_serve_fn *destroy; /* may be NULL */
    void *destroy_arg;
};

struct kit_serve {
    char dir[64];
    struct umdev_loop *loop;
    struct kit_serve_dev devs[KIT_SERVE_MAX_DEVS];
    size_t ndevs;
    pthread_t thread;
    bool running;

    /* The call in flight; one at a time, from the test's thread. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool sync_ready; /* lock and cond are initialised */
    kit_serve_fn *call_fn;
    void *call_arg;
    bool call_done;
    bool call_lost; /* a call timed out; it may still run */
};

/**
 * kit_serve_init() - make the directory (/tmp/umdev-@tag-XXXXXX) and the
 * loop. @s needs no preparation; on failure kit_serve_stop() cleans up.
 * Return: 0 or -errno.
 */
int kit_serve_init(struct kit_serve *s, const char *tag);

/**
 * kit_serve_add() - serve @dev on "<dir>/<@name>.sock" (its path then is
 * s->devs[i].path, i counting from 0 in the order added). Before
 * kit_serve_start() only.
 * @destroy: called with @arg by kit_serve_stop() once @dev's server is
 * gone (the thread is joined by then), to destroy whatever owns @dev; may
 * be NULL. The device is handed over even when this fails: @destroy has
 * then been called already.
 * Return: 0, -ENOSPC (KIT_SERVE_MAX_DEVS reached), -ENAMETOOLONG, or the
 * error of umdev_server_create().
 */
int kit_serve_add(struct kit_serve *s, const char *name, struct umdev_dev *dev,
                  kit_serve_fn *destroy, void *arg);

/** kit_serve_start() - start the server thread. Return: 0 or -errno. */
int kit_serve_start(struct kit_serve *s);

/**
 * kit_serve_call() - run @fn(@arg) on the server thread, between two
 * messages, and wait for it (umdev_loop_post()). @fn must not use cmocka
 * assertions: they would jump across threads.
 * @timeout_ms: bound of the wait; after a timeout every later call fails
 * with -EBUSY, since the lost one may still run.
 * Return: 0, -ETIMEDOUT, -EBUSY, -EINVAL (not started), or the error of
 * umdev_loop_post().
 */
int kit_serve_call(struct kit_serve *s, kit_serve_fn *fn, void *arg,
                   int timeout_ms);

/**
 * kit_serve_stop() - stop the thread (a stop posted behind any pending
 * call), then for each device in order destroy its server (which removes
 * its socket) and call its destroy callback, destroy the loop and remove
 * the directory. Safe after a failed or partial init, and twice.
 * @timeout_ms: bound of the wait for the thread.
 * Return: 0; -ETIMEDOUT if the thread did not stop (nothing is destroyed
 * then, so nothing runs under its feet); the error of rmdir() (-ENOTEMPTY:
 * a socket file was left behind).
 */
int kit_serve_stop(struct kit_serve *s, int timeout_ms);

#endif /* UMDEV_KIT_SERVE_H */
