/*
 * A client of umdevd's control protocol (docs/CONTROL.md): one
 * connection to the daemon's control socket, requests out as one JSON
 * line each, responses matched to them by id. umdevctl, the daemon-served
 * access path and the benchmarks all speak the protocol through this.
 *
 * Two kinds of failure are kept apart. The daemon refusing a request is
 * -EREMOTEIO, with its error object (errno, code, message) copied into a
 * struct umdev_ctl_error; everything else (the socket, a timeout, a reply
 * that breaks the protocol) is the -errno of what went wrong here, with a
 * description in the same struct. After a failure in the middle of a line
 * the stream cannot be trusted: every later call on that handle returns
 * -ENOTCONN.
 *
 * Thread safety: a handle belongs to one thread at a time; separate
 * handles are independent. No call raises SIGPIPE.
 */
#ifndef UMDEV_CTL_H
#define UMDEV_CTL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct json_object;
struct umdev_ctl;

/* Where umdevd listens when neither UMDEV_CONTROL nor UMDEV_RUNDIR is
 * set (docs/CLI.md). */
#define UMDEV_CTL_DEFAULT_RUNDIR "/run/umdev"
/* The protocol version this client speaks. */
#define UMDEV_CTL_VERSION 1
/* The longest response line accepted (newline included). The daemon
 * queues at most 64 MiB for a client; a list of 1024 instances is about
 * half a MiB. */
#define UMDEV_CTL_RESPONSE_MAX (64u << 20)
/* How much of a message struct umdev_ctl_error keeps; longer ones are
 * cut. */
#define UMDEV_CTL_MESSAGE_MAX 4096

/*
 * Why a call failed. For -EREMOTEIO, the daemon's error object: @err its
 * errno, @code its name ("EEXIST"), @message what is wrong and how to fix
 * it. For any other failure, @err is the returned errno, @code is empty
 * and @message says what happened ("umdevd closed the connection").
 */
struct umdev_ctl_error {
    int err;
    char code[32];
    char message[UMDEV_CTL_MESSAGE_MAX];
};

/**
 * umdev_ctl_default_path() - the control socket umdevctl uses when given
 * none: $UMDEV_CONTROL if set, else $UMDEV_RUNDIR/control, else
 * /run/umdev/control.
 * @buf: receives the path, NUL-terminated. @len: its size.
 * Return: 0; -ENAMETOOLONG if it does not fit (@buf is then truncated).
 * Reads the environment: not safe against a concurrent setenv().
 */
int umdev_ctl_default_path(char *buf, size_t len);

/**
 * umdev_ctl_connect() - connect to the daemon listening on @path.
 * @path: copied as needed; not kept. @timeout_ms: how long to wait for
 * room in the daemon's listen queue; < 0: no limit.
 * @out: the new handle; NULL on failure.
 * Return: 0; -ENAMETOOLONG (@path does not fit a UNIX socket address);
 * -ETIMEDOUT; -ENOMEM; or the connect(2) error (-ENOENT nobody created
 * it, -ECONNREFUSED nobody listens, -EACCES).
 */
int umdev_ctl_connect(const char *path, int timeout_ms, struct umdev_ctl **out);

/** Close the connection and free the handle. NULL is ok. Requests still
 * unanswered are abandoned (the daemon finishes them anyway). */
void umdev_ctl_close(struct umdev_ctl *c);

/**
 * umdev_ctl_fd() - the connection's socket, for poll(2) while requests
 * are outstanding (readable: a response is arriving). Owned by @c: do not
 * read, write or close it. A response may already be buffered in @c when
 * the socket is not readable; this matters only with more than one
 * request outstanding.
 */
int umdev_ctl_fd(const struct umdev_ctl *c);

/**
 * umdev_ctl_send() - send one request without waiting for its response.
 * @cmd: the command (docs/CONTROL.md). @args: its arguments, borrowed
 * (serialized before the call returns); NULL means {}.
 * @timeout_ms: bound on writing the line; < 0: no limit.
 * @id: receives the request's id, for umdev_ctl_recv(); may be NULL.
 * @err: receives the reason on failure; may be NULL.
 * Return: 0; -EINVAL (@cmd NULL or @args not an object); -ETIMEDOUT
 * (nothing was sent; a line cut short makes the handle unusable);
 * -ENOTCONN (an earlier failure); -ENOMEM; -EREMOTEIO (the daemon closed
 * the connection and said why, such as too many connections: @err has
 * its error object); the send(2) error (-EPIPE: the daemon is gone).
 */
int umdev_ctl_send(struct umdev_ctl *c, const char *cmd,
                   struct json_object *args, int timeout_ms, int64_t *id,
                   struct umdev_ctl_error *err);

/**
 * umdev_ctl_recv() - wait for the response to request @id. Responses come
 * in request order; those to earlier requests still outstanding are read
 * and dropped (their senders gave up on them).
 * @timeout_ms: bound on the wait; < 0: no limit. On -ETIMEDOUT the
 * request stays outstanding and a later call may still collect it.
 * @result: on success, the response's result object: a new reference the
 * caller puts with json_object_put(). NULL on failure. May be NULL.
 * @err: receives the reason on failure; may be NULL.
 * Return: 0; -EREMOTEIO (the daemon refused: @err has its error object;
 * also when it closed the whole connection with a reason, docs/CONTROL.md
 * "Limits", after which the handle is unusable);
 * -EINVAL (@id is not outstanding); -ETIMEDOUT; -ECONNRESET (the daemon
 * closed the connection, e.g. it died); -EPROTO (a response that is not
 * the protocol's: not JSON, wrong version or id, missing fields);
 * -EMSGSIZE (a response line over UMDEV_CTL_RESPONSE_MAX); -ENOTCONN;
 * -ENOMEM; the recv(2) error.
 */
int umdev_ctl_recv(struct umdev_ctl *c, int64_t id, int timeout_ms,
                   struct json_object **result, struct umdev_ctl_error *err);

/**
 * umdev_ctl_call() - umdev_ctl_send() then umdev_ctl_recv() of the same
 * request, both within @timeout_ms (< 0: no limit).
 * Return: as those two.
 */
int umdev_ctl_call(struct umdev_ctl *c, const char *cmd,
                   struct json_object *args, int timeout_ms,
                   struct json_object **result, struct umdev_ctl_error *err);

/**
 * umdev_ctl_take_fd() - the oldest descriptor a response carried and the
 * caller has not taken (the `manage` command's), or -1. The caller owns
 * it; untaken ones are closed with the handle.
 */
int umdev_ctl_take_fd(struct umdev_ctl *c);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_CTL_H */
