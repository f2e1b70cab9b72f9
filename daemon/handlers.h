/*
 * The control commands of docs/CONTROL.md (types, list, define, undefine,
 * modify, start, stop, info, stats, audit, version): argument checks,
 * the calls into the supervisor, definitions and audit jobs, and the
 * shape of each answer. The transport (control.c) hands requests in and
 * sends what comes back.
 */
#ifndef UMDEVD_HANDLERS_H
#define UMDEVD_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "umdevd.h"

/* One request as the transport saw it. */
struct ctl_request {
    void *conn;             /* its connection: opaque, for parking, leases */
    struct json_object *id; /* borrowed */
    pid_t peer_pid;
    uid_t peer_uid;  /* both from SO_PEERCRED, as it connected */
    bool may_manage; /* root, the daemon's user, or the management group */
    /* A descriptor the answer carries (SCM_RIGHTS with its first byte),
     * set by a handler that answers at once; -1: none. Taken. */
    int pass_fd;
};

/** Install the supervisor's result hook. */
void handlers_init(struct daemon *d);

/**
 * handlers_dispatch() - run command @cmd with @args (an object).
 * Return: 0 answered now with *@result (a new object, or NULL for {});
 * 1 parked: the answer comes later through daemon_hooks.respond on
 * @rq->conn; -errno refused, with @err filled.
 */
int handlers_dispatch(struct daemon *d, struct ctl_request *rq, const char *cmd,
                      struct json_object *args, struct json_object **result,
                      char *err, size_t errlen);

/**
 * handlers_auto_start() - start definition @inst, marked auto, as the
 * daemon does at start-up: after its pre callouts (action start) when
 * there are scripts, followed by its post callouts; failures are logged.
 */
void handlers_auto_start(struct daemon *d, struct instance *inst);

/** Connection @conn closed: the answer it waits for goes nowhere, an
 * audit it waits for is killed, and its leases end. */
void handlers_conn_closed(struct daemon *d, void *conn);

#endif /* UMDEVD_HANDLERS_H */
