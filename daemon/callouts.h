/*
 * mdevctl's callout scripts, run by umdevd (docs/CLI.md "Callouts"):
 * executables in the callouts directory (`umdevd --callouts DIR`) hear of
 * each define, undefine, modify, start and stop before it happens (event
 * pre, which may veto it) and after (event post, with its outcome), and
 * every executable of the notifiers directory (`--notifiers DIR`) hears
 * of the outcome (event notify, after post or after a veto). Each
 * script is a child process the loop watches: its stdin is the device in
 * mdevctl's JSON through a pipe, its output goes to the log, its run is
 * bounded in time and output, and its exit status comes from
 * supervisor_reap() (callouts_reaped()), so the daemon never waits for
 * one.
 *
 * The search, as mdevctl does it (its src/callouts.rs): the scripts in
 * name order, each run with
 *
 *   SCRIPT -t TYPE -e EVENT -a ACTION -s STATE -u UUID -p PARENT
 *
 * until one claims the device. Exit status 2 means "not my device type":
 * the next script is tried, as after a script that could not be run or
 * was killed by a signal. Any other status ends the search: for pre, 0
 * lets the action go on and anything else vetoes it; post goes to the
 * script that took pre (or searches the same way when none did), and
 * what it says is logged only; notify runs every notifier, whatever each
 * says. umdevd adds the bounds: past its time or output limit a script
 * is killed, a veto at pre.
 */
#ifndef UMDEVD_CALLOUTS_H
#define UMDEVD_CALLOUTS_H

#include <stdbool.h>
#include <sys/types.h>

#include "umdevd.h"

/* A script's output kept for the log, per stream; past the limit the
 * script is killed (a veto at pre). */
#define CALLOUT_LOG_BYTES 4096
#define CALLOUT_MAX_OUTPUT (1024 * 1024)
/* Scripts looked at in one directory; the rest are skipped, logged. */
#define CALLOUT_MAX_SCRIPTS 256

/* One action's callouts: its pre event, then its post event. */
struct callout_run;

/* What the scripts are told of the device an action is about. */
struct callout_device {
    const char *uuid;
    const char *parent;
    const char *type;
    bool auto_start;
    struct json_object *attrs; /* umdev's {"KEY": value}; borrowed */
};

/*
 * An event is over. Pre: @err 0, the action may go on; -ECANCELED with
 * @msg saying which script refused and why (its exit status or the
 * bound it crossed, and the first line of its stderr). Post: @err is
 * always 0, whatever the scripts said. Called once, from the loop, never
 * from within the call that started the event.
 */
typedef void callout_done_fn(void *opaque, int err, const char *msg);

/**
 * callout_run_create() - prepare the callouts of @action ("define",
 * "undefine", "modify", "start", "stop") on @dev (copied): read the
 * callouts and notifiers directories, logging each entry it will not run
 * and why.
 * Return: 0 with *@out the run, or with *@out NULL when there is no
 * script to run (no directory configured, none there, none that may be
 * run); -ENOMEM with @err filled.
 */
int callout_run_create(struct daemon *d, const char *action,
                       const struct callout_device *dev,
                       struct callout_run **out, char *err, size_t errlen);

/** Run the pre event of @run; @done hears how it ended.
 * Return: 0; -ENOMEM, and @done is not called. */
int callout_run_pre(struct callout_run *run, callout_done_fn *done,
                    void *opaque);

/**
 * callout_run_post() - the action was done (@success) or failed: run the
 * post event of @run, which is taken (freed before @done is called).
 * Its outcome is logged and changes nothing. Only after a pre event that
 * let the action go on.
 * Return: true; false when umdevd is stopping (or out of memory), and
 * then @run is freed, no script runs and @done is not called.
 */
bool callout_run_post(struct callout_run *run, bool success,
                      callout_done_fn *done, void *opaque);

/** Forget @run (an action refused, or never done): its script, if one
 * runs, is killed, and no callback follows. NULL is ok. */
void callout_run_free(struct callout_run *run);

/** SIGCHLD's waitpid() found @pid with @status: true if it was a
 * script's (its run carries on from the loop). */
bool callouts_reaped(struct daemon *d, pid_t pid, int status);

/**
 * callouts_stop_all() - umdevd is stopping: kill every script. Events
 * still running end (their callbacks are called, here), a pre event as
 * a veto.
 */
void callouts_stop_all(struct daemon *d);

#endif /* UMDEVD_CALLOUTS_H */
