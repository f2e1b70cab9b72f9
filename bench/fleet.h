/*
 * What bench/scale and bench/soak share: a private umdevd (temporary
 * rundir, statedir and control socket), control connections with one
 * request in flight each, waves of requests spread over several of them,
 * and the per-process counts (private memory, open descriptors) that the
 * figures and the leak checks read from /proc. Every helper that can fail
 * dies with a message and takes the daemon with it: a benchmark that lost
 * its daemon has nothing left to measure.
 */
#ifndef UMDEV_BENCH_FLEET_H
#define UMDEV_BENCH_FLEET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "umdev/ctl.h"

#define FLEET_MAX_CONNS 64
#define FLEET_REQ_TIMEOUT_MS 30000

struct fleet_daemon {
    char dir[64]; /* mkdtemp; everything below lives in it */
    char control[108];
    char rundir[128], statedir[128], log[128];
    const char *umdevd;
    pid_t pid;
};

/* One control connection with at most one request in flight. */
struct fleet_conn {
    struct umdev_ctl *ctl;
    int64_t pending; /* the request in flight; 0: none */
    int index;       /* which of a wave's requests it is */
};

void fleet_die(const char *fmt, ...)
    __attribute__((noreturn, format(printf, 1, 2)));

/* Make the temporary directory (@tag names it) and start @umdevd in it;
 * returns once the control socket listens. */
void fleet_daemon_start(struct fleet_daemon *d, const char *umdevd,
                        const char *tag);
/* Start it again over the same directories (after fleet_daemon_stop). */
void fleet_daemon_restart(struct fleet_daemon *d);
/* SIGTERM and wait; dies unless it exits 0. */
void fleet_daemon_stop(struct fleet_daemon *d);
/* Remove the temporary directory (the daemon must be stopped). */
void fleet_daemon_remove(struct fleet_daemon *d);

void fleet_conn_open(struct fleet_conn *c, const char *control);
void fleet_conn_close(struct fleet_conn *c);
/* Send @cmd with @args_json (a JSON object); dies on error. */
void fleet_conn_send(struct fleet_conn *c, const char *cmd,
                     const char *args_json);
/* The result of the request in flight (the caller puts it); dies on an
 * error or a refusal. */
struct json_object *fleet_conn_recv(struct fleet_conn *c);
/* Send and receive; dies on a refusal. */
struct json_object *fleet_call(struct fleet_conn *c, const char *cmd,
                               const char *args_json);
/* Send and receive, a refusal being an answer: 0 with *@result, or the
 * negative errno of the refusal with @err filled in. Dies only when the
 * connection fails. */
int fleet_try_call(struct fleet_conn *c, const char *cmd, const char *args_json,
                   struct json_object **result, struct umdev_ctl_error *err);

/* A wave's request @index: write its arguments to @buf. */
typedef void fleet_args_fn(void *opaque, int index, char *buf, size_t len);
/* A wave's request @index succeeded with @result (borrowed). */
typedef void fleet_done_fn(void *opaque, int index, struct json_object *result);

/*
 * @n requests of @cmd over @k connections, each keeping one in flight
 * (the daemon parks a connection until a worker reports ready, so this is
 * how starts and stops overlap). Dies on any refusal or a stall.
 */
void fleet_wave(struct fleet_conn *conns, int k, const char *cmd, int n,
                fleet_args_fn *args, fleet_done_fn *done, void *opaque);

/* Private_Clean + Private_Dirty of @pid in KiB; -1 if it is gone. */
long fleet_private_kib(pid_t pid);
/* Open descriptors of @pid; -1 if it is gone. */
int fleet_count_fds(pid_t pid);

#endif /* UMDEV_BENCH_FLEET_H */
