/*
 * The instance table and worker supervision: the only code that changes
 * an instance's state. Requests that wait for a worker (start, stop,
 * info) carry an opaque waiter, handed back through
 * daemon_hooks.request_done when the worker answers or dies.
 *
 * Reads (info) wait beside them and never block them.
 *
 * State arcs:
 *
 *   stopped/failed --start--> starting --ready--> running
 *   starting/running --stop--> stopping --exit--> stopped (removed if
 *                                                  transient)
 *   starting --worker dies--> failed (removed if transient: the start
 *                                     request carries the reason)
 *   running --worker dies--> failed
 *   failed --acknowledge--> stopped (removed if transient)
 */
#ifndef UMDEVD_SUPERVISOR_H
#define UMDEVD_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>

#include "umdevd.h"

const char *inst_state_name(enum inst_state s);

/** The instance with @uuid (any case), or NULL. */
struct instance *inst_find(struct daemon *d, const char *uuid);

/**
 * inst_add() - a new stopped instance configured by @cfg, whose attrs
 * reference it takes (cfg->attrs is NULL after). @defined: it has a
 * definition file. Return: 0; -EEXIST its UUID is taken; -ENAMETOOLONG
 * its socket path would be; -ENOMEM. @err filled on error.
 */
int inst_add(struct daemon *d, struct inst_config *cfg, bool defined,
             struct instance **out, char *err, size_t errlen);

/** Forget a stopped or failed instance (undefine, or a transient one that
 * never came up). */
void inst_remove(struct daemon *d, struct instance *inst);

/** Replace a defined instance's configuration (modify); @cfg's attrs
 * reference moves. Takes effect at the next start. */
void inst_reconfigure(struct instance *inst, struct inst_config *cfg);

/**
 * inst_start() - claim the type's resources, create the socket and fork
 * the worker. @waiter learns the outcome through request_done.
 * Return: 0; -EALREADY; -ENOSPC no free resources; other -errno; @err
 * filled on error (and nothing changed).
 */
int inst_start(struct daemon *d, struct instance *inst, void *waiter, char *err,
               size_t errlen);

/**
 * inst_restart() - replace @inst's running worker by a new one, exec'd
 * from the umdevd file on disk, without its VMM noticing (docs/CLI.md
 * "restart"): the old worker hands its device, socket and client over
 * (lib/dev handover) and exits once the new one serves. @waiter hears
 * the outcome: {"blackout_us", "pid", "old_pid"}; or an error with both
 * workers' reasons, the old worker serving on (or, if it cannot, the
 * instance failed).
 * Return: 0; -ENOENT not running; -EBUSY a request is in progress;
 * -ENOTSUP the parent's devices own host endpoints a handover cannot
 * carry; other -errno. @err filled on error (and nothing changed).
 */
int inst_restart(struct daemon *d, struct instance *inst, void *waiter,
                 char *err, size_t errlen);

/** Ask a starting or running worker to stop within @grace_ms (a VMM gets
 * the device request IRQ); @waiter (may be NULL) hears when it exited.
 * Return: 0 or -ENOENT (not running). */
int inst_stop(struct daemon *d, struct instance *inst, int grace_ms,
              void *waiter);

/**
 * inst_request_info() - ask the worker of a running instance for its
 * device document; @waiter gets it as @extra, or -ETIMEDOUT if the worker
 * does not answer in time (it is not harmed), or -EIO if it exits first.
 * A read: it never holds the request slot start and stop use, and
 * readers waiting at once share one request to the worker.
 * Return: 0; -EIO the worker cannot be reached; -ENOMEM.
 */
int inst_request_info(struct daemon *d, struct instance *inst, void *waiter);
/**
 * inst_request_screen() - as inst_request_info(), for the worker's
 * screen reply (docs/CONTROL.md "screen"), answered through
 * hooks.screen_done with the descriptor the worker passed.
 */
int inst_request_screen(struct daemon *d, struct instance *inst, void *waiter);

/** A failed instance goes back to stopped, or away if transient.
 * Return: 0, or -EINVAL if it has not failed. */
int inst_acknowledge(struct daemon *d, struct instance *inst);

/** Tie a transient instance to @lessee (a control connection, opaque
 * here), whose peer is @pid: it ends when supervisor_lessee_gone(). */
void inst_lease(struct instance *inst, void *lessee, pid_t pid);

/** @lessee went away: stop what it held (no grace: its user is gone), or
 * forget it if it is down. */
void supervisor_lessee_gone(struct daemon *d, void *lessee);

/** The instance whose worker is process @pid, or NULL: a peer the
 * control socket must never take for a manager (docs/SANDBOX.md). */
struct instance *supervisor_worker(struct daemon *d, pid_t pid);

/**
 * supervisor_cleanup_start() - fork the cleanup process: it holds
 * nothing but its end of a channel from this daemon, on which it learns
 * each socket the daemon makes (the control socket, each instance's)
 * and each it removes. When the channel ends (the daemon exited, however
 * it did) it removes those still there and still the very files this
 * daemon made (same device and inode: never a later daemon's), with an
 * instance's host ends, logs what it removed, and exits. A daemon that
 * stops cleanly has removed everything itself. Call it once, before any
 * instance starts. Return: 0 or -errno (the daemon runs without it).
 */
int supervisor_cleanup_start(struct daemon *d);

/** The cleanup process is to remove socket @path (the control socket)
 * if this daemon is killed while it is still that file. */
void supervisor_cleanup_watch(struct daemon *d, const char *path);

/** Collect exited children (SIGCHLD), the daemon's one reaper: workers,
 * and callout scripts, whose status goes to their run (callouts.h);
 * helper processes' (child.h) go unheard, their pipes tell. */
void supervisor_reap(struct daemon *d);

/*
 * Surviving umdevd. Each worker this daemon forks gets a record,
 * RUNDIR/workers/<uuid>.json (0600 in a 0700 directory, written
 * atomically right after the fork, removed when the worker ends): its
 * pid and start time, sockets, configuration, claims, lease, and a random
 * token. Once told its record exists, a worker no longer stops when its
 * channel ends: it serves on and listens on RUNDIR/workers/<uuid>.adopt
 * for a umdevd bearing the token.
 */

/** Upgrade (SIGUSR2): let go of every recorded worker, which serves on
 * for the next umdevd (its sockets, record and data stay); ask any other
 * to stop. supervisor_all_stopped() is true once those are gone. */
void supervisor_detach_all(struct daemon *d);

/**
 * supervisor_adopt_all() - at start, after the definitions are read: for
 * each record, take over the worker it names when it is proven (the pid
 * started at the recorded time, is named umdev-worker and runs an
 * umdevd; its adoption socket is served by that pid; it accepts the
 * token), claiming its resources again; its instance is running. A
 * record whose process is gone (or whose pid is another process now) is
 * removed with what its worker left. Any other is refused: logged, left
 * alone, and its instance, if defined, shown failed with the reason. A
 * leased instance is stopped at once: its lessee's connection ended with
 * the old daemon. Creates RUNDIR/workers.
 */
void supervisor_adopt_all(struct daemon *d);

/** Ask every running worker to stop (shutdown); true once none runs. */
void supervisor_stop_all(struct daemon *d);
bool supervisor_all_stopped(const struct daemon *d);
/** Free every instance record (exit), and remove RUNDIR/workers when no
 * worker's record is left in it. */
void supervisor_free_all(struct daemon *d);

/** The configuration @inst runs with while a worker is there, else its
 * definition. */
const struct inst_config *inst_live(const struct instance *inst);

/**
 * inst_pending() - what @inst's definition changes once it is started
 * again: a new object with the fields that differ between inst_live()
 * and the definition (type, owner, mode as the definition has them;
 * attrs as a modify would send them: changed and added ones with their
 * value, removed ones null), or NULL when nothing differs or no worker
 * is there.
 */
struct json_object *inst_pending(const struct instance *inst);

/** The instance object of docs/CONTROL.md: a new JSON object. */
struct json_object *inst_to_json(const struct instance *inst);

#endif /* UMDEVD_SUPERVISOR_H */
