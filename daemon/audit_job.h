/*
 * `audit` requests: build a throw-away device of a type in a forked child
 * (host endpoints in a private temporary directory, nothing served), run
 * audit_run() on it and hand the document back, without ever blocking
 * the daemon's loop on the child.
 */
#ifndef UMDEVD_AUDIT_JOB_H
#define UMDEVD_AUDIT_JOB_H

#include <stddef.h>

#include <json-c/json.h>

#include "umdevd.h"

/* A child that has not answered within this time is killed. */
#define AUDIT_TIMEOUT_MS 30000
/* The most a child may write back (the audit document). */
#define AUDIT_MAX_OUTPUT (4u << 20)

struct audit_job;

/*
 * Called once per job from the loop: @err 0 with @result (a new object,
 * owned by the callee) or -errno with @msg. The job is freed after it
 * returns.
 */
typedef void audit_done_fn(void *opaque, int err, const char *msg,
                           struct json_object *result);

/**
 * audit_job_start() - fork the child auditing @type (a full type name the
 * registry knows) with the kit's result @kit_json (NULL: none). Borrowed
 * strings are copied before the fork.
 * Return: 0 with *@out set; -errno with @err filled.
 */
int audit_job_start(struct daemon *d, const char *type, const char *kit_json,
                    audit_done_fn *done, void *opaque, struct audit_job **out,
                    char *err, size_t errlen);

/** audit_job_cancel() - kill the child, free the job; @done is not called. */
void audit_job_cancel(struct audit_job *job);

#endif /* UMDEVD_AUDIT_JOB_H */
