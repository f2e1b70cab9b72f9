/*
 * An instance worker: the forked child that builds one instance's device
 * through its parent driver and serves it (worker.c).
 */
#ifndef UMDEVD_WORKER_H
#define UMDEVD_WORKER_H

#include "umdevd.h"

/**
 * worker_run() - become @inst's worker: keep only @listen_fd (the
 * instance socket), @status_fd (the channel to the supervisor) and
 * @adopt_fd (bound, not yet listening: where a later umdevd adopts it,
 * proving itself with @inst->token), build
 * the device, drop to the instance owner, install the sandbox and serve
 * until told to stop. Never returns.
 */
void worker_run(struct daemon *d, struct instance *inst, int listen_fd,
                int status_fd, int adopt_fd, int grace_ms)
    __attribute__((noreturn));

/* A worker's channel to the supervisor; in a restarted worker (umdevd
 * --restore-worker) the first message on it is the instance to build. */
#define WORKER_RESTORE_CHANNEL_FD 4
/* How long each side of a restart waits for the other (the request, the
 * package, the new worker's confirmation). */
#define WORKER_HANDOVER_TIMEOUT_MS 10000

/**
 * worker_restore() - `umdevd --restore-worker` (a restart, docs/CLI.md):
 * the process umdevd exec'd with the package socket on fd 3, its channel
 * on 4 and its adoption socket (bound) on 6, @inst configured from the
 * supervisor's request. Builds the device, receives and restores the
 * package, drops privileges, confirms on the package socket and serves.
 * Any failure ends it before it confirms, so its predecessor resumes.
 * Never returns.
 */
void worker_restore(struct daemon *d, struct instance *inst, int grace_ms)
    __attribute__((noreturn));

#endif /* UMDEVD_WORKER_H */
