/*
 * A child process the supervisor waits for without blocking: its standard
 * output collected (bounded in size), optionally the tail of its standard
 * error, its run bounded in time, and the outcome reported once from the
 * loop. The `audit` requests (audit_job.c) and the admission audits
 * (admission.c) run this way.
 */
#ifndef UMDEVD_CHILD_H
#define UMDEVD_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "umdevd.h"

struct child;

/* Runs in the child after fork: stdout on the collecting pipe, stderr on
 * the other one (or the daemon's own), stdin /dev/null, every other fd
 * closed. Must not return. */
typedef void child_main_fn(void *arg);

/*
 * The child is over. Either @failure says why its output is not worth
 * taking (too much of it, out of time, out of memory: the child was
 * killed), or @out holds what it wrote on stdout (@out_len bytes,
 * NUL-terminated) and @err_tail the last line it wrote on stderr ("" if
 * none or not collected). Called once, from the loop; the child record is
 * freed after it returns.
 */
typedef void child_done_fn(void *opaque, const char *failure, const char *out,
                           size_t out_len, const char *err_tail);

struct child_spec {
    const char *name;    /* the process name (prctl), for ps */
    child_main_fn *main; /* what the child runs */
    void *arg;
    uint64_t timeout_ms; /* killed after this */
    size_t max_out;      /* killed when stdout grows past this */
    bool capture_stderr; /* else it keeps the daemon's stderr */
    child_done_fn *done;
    void *opaque;
};

/**
 * child_start() - fork a child per @spec (copied) and watch it from
 * d->loop. The child dies with the daemon (PR_SET_PDEATHSIG). Reaping is
 * the SIGCHLD handler's business; the child is killed through a pidfd,
 * so never a reused pid.
 * Return: 0 with *@out set; -errno with @err filled.
 */
int child_start(struct daemon *d, const struct child_spec *spec,
                struct child **out, char *err, size_t errlen);

/** The child's process ID. */
pid_t child_pid(const struct child *c);

/** Kill the child and free its record; done is not called. NULL is ok. */
void child_cancel(struct child *c);

#endif /* UMDEVD_CHILD_H */
