/*
 * The control socket (control.h, docs/CONTROL.md): newline-delimited JSON
 * requests, answered in order. A request that must wait for a worker
 * (start, stop, info, stats) or for an audit process parks its connection
 * until it is completed, so responses never overtake each other. What
 * each command does is handlers.c's business.
 *
 * Every peer may connect, so every resource a connection can hold is
 * bounded (docs/CONTROL.md "Limits"): connections in total, per user and
 * for all peers outside management together; the length of a request
 * line; the time a line may take and a reader may sit idle; and one
 * request in progress per connection, the rest left in the socket until
 * its answer is taken.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "handlers.h"

/* Connections open at once, from everyone. */
#define CTL_MAX_CONNS 4096
/* Of those, connections from peers outside management (readers)... */
#define CTL_MAX_READER_CONNS 256
/* ...and from one reader uid. */
#define CTL_MAX_CONNS_PER_UID 32
/* A request line, without its newline: a manager's, and a reader's (the
 * read commands need a few hundred bytes). */
#define CTL_MAX_LINE (1024 * 1024)
#define CTL_MAX_READER_LINE 4096
/* From the first byte of a request line to its newline. */
#define CTL_LINE_TIMEOUT_MS 5000
/* A reader's connection with nothing in progress is closed after this. */
#define CTL_IDLE_TIMEOUT_MS 10000
/* Requests of one connection handled in one turn of the loop before the
 * others get theirs. */
#define CTL_MAX_REQUESTS_PER_TURN 16
/* A peer that lets this much output pile up is cut off (one response is
 * queued at a time; a `list` of thousands of instances is megabytes). */
#define CTL_MAX_OUT (64u << 20)
#ifdef UMDEV_TEST_HOOKS
/* Test-only (tests/daemon/test_control.py): a lower CTL_MAX_OUT, so the
 * limit is tested with answers the daemon really makes (64 MiB of `list`
 * would take some 130000 definitions). Never built into release binaries. */
#define CTL_TEST_MAX_OUT_ENV "UMDEV_TEST_CTL_MAX_OUT"
#endif

/* How often the time limits are checked, and how long accepting pauses
 * when the kernel cannot give us a connection (no memory). */
#define CTL_SWEEP_MS 250
#define CTL_ACCEPT_PAUSE_MS 100
#define CTL_READ_CHUNK 65536

struct ctl_conn {
    struct daemon *d;
    int fd;
    uid_t uid;
    pid_t peer_pid;
    bool may_manage;
    bool parked; /* a request waits for a worker */
    size_t max_line;
    char *buf; /* received bytes not yet handled */
    size_t len, cap;
    int64_t line_since; /* when the partial line in buf began (ms) */
    int64_t active;     /* last request or answer (ms), for the idle limit */
    /* Responses not yet taken by the peer. */
    char *out;
    size_t out_off, out_len, out_cap;
    /* A descriptor that goes with the first byte of the queued answer
     * (`manage`), or -1. */
    int out_fd;
    struct ctl_conn *next;
};

struct control {
    int fd;         /* the listening socket */
    int reserve_fd; /* given up to accept() and refuse when out of fds */
    int64_t sweep;  /* the time-limit timer, 0 if not armed */
    int64_t resume; /* the timer that resumes accepting, 0 if none */
    struct ctl_conn *conns;
    size_t nconns, nreaders;
    size_t max_out; /* CTL_MAX_OUT, unless a test lowered it */
};

static void conn_close(struct ctl_conn *c);
static void process(struct ctl_conn *c);
static void send_goodbye(int fd, int err, const char *msg);

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A complete request line is buffered. */
static bool
has_line(const struct ctl_conn *c)
{
    return c->len > 0 && memchr(c->buf, '\n', c->len) != NULL;
}

static bool
out_pending(const struct ctl_conn *c)
{
    return c->out_off < c->out_len;
}

/*
 * Read a connection only when nothing of it is in progress: no request
 * parked, no answer unsent and no complete request buffered. What the
 * peer pipelines meanwhile waits in its socket, so one connection holds
 * at most one request line and one answer in the daemon.
 */
static bool
wants_input(const struct ctl_conn *c)
{
    return !c->parked && !out_pending(c) && !has_line(c);
}

/* Watch for requests when wanted, and for room while output waits. A
 * buffered request waits for "writable" only to be handled from the
 * loop (process), never from a caller in the middle of something. */
static void
update_events(struct ctl_conn *c)
{
    uint32_t ev = wants_input(c) ? UMDEV_LOOP_IN : 0;

    if (out_pending(c) || (!c->parked && has_line(c)))
        ev |= UMDEV_LOOP_OUT;
    umdev_loop_mod(c->d->loop, c->fd, ev);
}

/* Send what the socket takes now. Return: 0, or -errno (peer gone). */
static int
flush_out(struct ctl_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n;

        if (c->out_fd >= 0) {
            n = send_with_fd(c->fd, c->out + c->out_off,
                             c->out_len - c->out_off, c->out_fd);
            if (n > 0) {
                close(c->out_fd);
                c->out_fd = -1;
            }
        } else {
            n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
        }

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0)
            return -errno;
        c->out_off += (size_t)n;
        c->active = now_ms();
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Bytes of output @c may still queue. */
static size_t
out_room(const struct ctl_conn *c)
{
    size_t queued = c->out_len - c->out_off, max = c->d->control->max_out;

    return queued < max ? max - queued : 0;
}

static int
queue_out(struct ctl_conn *c, const char *s, size_t len)
{
    if (len > out_room(c))
        return -ENOBUFS;
    if (c->out_off > 0 && c->out_len + len > c->out_cap) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        char *b;

        while (cap < c->out_len + len)
            cap *= 2;
        b = realloc(c->out, cap);
        if (b == NULL)
            return -ENOMEM;
        c->out = b;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, len);
    c->out_len += len;
    return 0;
}

/* The response line for request @id (NULL: not tied to a request, the
 * connection is being refused or closed): a new object. */
static struct json_object *
response(struct json_object *id, int err, const char *msg,
         struct json_object *result)
{
    struct json_object *r = json_object_new_object();

    json_object_object_add(r, "version", json_object_new_int(UMDEVD_PROTOCOL));
    json_object_object_add(r, "id", json_object_get(id));
    json_object_object_add(r, "ok", json_object_new_boolean(err == 0));
    if (err == 0) {
        json_object_object_add(
            r, "result", result != NULL ? result : json_object_new_object());
    } else {
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "errno", json_object_new_int(-err));
        json_object_object_add(e, "code",
                               json_object_new_string(errno_name(err)));
        json_object_object_add(e, "message",
                               json_object_new_string(msg != NULL && msg[0]
                                                          ? msg
                                                          : strerror(-err)));
        json_object_object_add(r, "error", e);
        json_object_put(result);
    }
    return r;
}

static const char *
response_text(struct json_object *r)
{
    return json_object_to_json_string_ext(
        r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/*
 * An answer of @len bytes (newline included) does not fit CTL_MAX_OUT:
 * the connection ends, with the reason when nothing else waits to go
 * out. Shut down, not closed: the caller may be the supervisor in the
 * middle of an instance event (respond()); the hang-up closes it from
 * the loop (on_conn()).
 */
static void
too_much_out(struct ctl_conn *c, size_t len)
{
    char msg[200];

    if (!out_pending(c)) {
        snprintf(msg, sizeof(msg),
                 "the answer is %zu bytes, more than the %zu a control "
                 "connection may have queued; connection closed (narrow "
                 "the request)",
                 len, c->d->control->max_out);
        send_goodbye(c->fd, -ENOBUFS, msg);
    }
    shutdown(c->fd, SHUT_RDWR);
}

static void
send_response(struct ctl_conn *c, struct json_object *id, int err,
              const char *msg, struct json_object *result)
{
    struct json_object *r = response(id, err, msg, result);
    const char *text = response_text(r);
    size_t len = strlen(text);

    if (len + 1 > out_room(c)) {
        /* Nothing of it is queued, so the reason can go out in its
         * place (send_goodbye() is defined below). */
        too_much_out(c, len + 1);
        json_object_put(r);
        return;
    }
    /* Never block the daemon on one client: queue what the socket does
     * not take now; a client that stops reading for good is cut off. */
    if (queue_out(c, text, len) < 0 || queue_out(c, "\n", 1) < 0 ||
        flush_out(c) < 0)
        shutdown(c->fd, SHUT_RDWR);
    else
        update_events(c);
    json_object_put(r);
}

/* Tell the peer of a connection about to be closed why (best effort: an
 * error line with "id": null, docs/CONTROL.md "Limits"). */
static void
send_goodbye(int fd, int err, const char *msg)
{
    struct json_object *r = response(NULL, err, msg, NULL);
    const char *text = response_text(r);
    size_t len = strlen(text);
    char *line = malloc(len + 1);

    if (line != NULL) {
        memcpy(line, text, len);
        line[len] = '\n';
        if (send(fd, line, len + 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
            /* Nobody is listening, or the socket is full: just close. */
        }
        free(line);
    }
    json_object_put(r);
}

/* Close @c after telling it why; what was queued for it goes first
 * when the socket takes it. */
static void
conn_refuse(struct ctl_conn *c, int err, const char *msg)
{
    if (flush_out(c) == 0 && !out_pending(c))
        send_goodbye(c->fd, err, msg);
    conn_close(c);
}

/* daemon_hooks.respond: a parked request's answer. */
static void
respond(struct daemon *d, void *conn, struct json_object *id, int err,
        const char *msg, struct json_object *result)
{
    struct ctl_conn *c = conn;

    (void)d;
    c->parked = false;
    c->active = now_ms();
    /* A partial line read before the request parked starts its clock
     * now: it could not be completed while nothing was read. */
    c->line_since = c->active;
    /*
     * Requests already buffered are handled from the loop, never from
     * here (update_events asks for a turn): the caller is the supervisor
     * in the middle of an instance event, and a pipelined request
     * (undefine, start, stop) must not change or free that instance
     * under it.
     */
    send_response(c, id, err, msg, result);
}

/* daemon_hooks.respond_fd: a parked request's answer with a descriptor.
 * A parked connection has no other answer queued (one request at a
 * time), so the descriptor goes with this one. */
static void
respond_fd(struct daemon *d, void *conn, struct json_object *id, int err,
           const char *msg, struct json_object *result, int fd)
{
    struct ctl_conn *c = conn;

    if (c->out_fd < 0 && !out_pending(c)) {
        c->out_fd = fd;
    } else {
        close(fd);
        json_object_put(result);
        result = NULL;
        err = -EBUSY;
        msg = "cannot pass a descriptor now";
    }
    respond(d, conn, id, err, msg, result);
}

/* The request's protocol version: the JSON integer 1, nothing else. */
static bool
version_ok(struct json_object *req)
{
    struct json_object *v;

    return json_object_object_get_ex(req, "version", &v) &&
           json_object_is_type(v, json_type_int) &&
           json_object_get_int64(v) == UMDEVD_PROTOCOL;
}

static void
handle_request(struct ctl_conn *c, struct json_object *req)
{
    struct daemon *d = c->d;
    struct json_object *id = NULL, *args = NULL, *result = NULL;
    struct ctl_request rq;
    char err[512] = "";
    const char *cmd;
    int rc;

    json_object_object_get_ex(req, "id", &id);
    if (!version_ok(req)) {
        send_response(c, id, -EPROTONOSUPPORT,
                      "protocol version 1 (the JSON integer) is required",
                      NULL);
        return;
    }
    cmd = json_str(req, "cmd");
    if (cmd == NULL) {
        send_response(c, id, -EINVAL, "cmd is required", NULL);
        return;
    }
    if (json_object_object_get_ex(req, "args", &args) &&
        !json_object_is_type(args, json_type_object)) {
        send_response(c, id, -EINVAL, "args must be an object", NULL);
        return;
    }
    if (args == NULL)
        args = json_object_new_object();
    else
        json_object_get(args);
    rq.conn = c;
    rq.id = id;
    rq.peer_pid = c->peer_pid;
    rq.peer_uid = c->uid;
    rq.may_manage = c->may_manage;
    rq.pass_fd = -1;
    rc = handlers_dispatch(d, &rq, cmd, args, &result, err, sizeof(err));
    json_object_put(args);
    if (rq.pass_fd >= 0) {
        /* Only an answer given at once carries one, and it is the only
         * answer queued (one request at a time). */
        if (rc == 0 && c->out_fd < 0 && !out_pending(c)) {
            c->out_fd = rq.pass_fd;
        } else {
            close(rq.pass_fd);
            if (rc >= 0) {
                json_object_put(result);
                result = NULL;
                rc = -EBUSY;
                snprintf(err, sizeof(err), "cannot pass a descriptor now");
            }
        }
    }
    if (rc == 1) {
        /* Answered later through respond(); nothing behind it is read
         * until then, so responses keep their order. */
        c->parked = true;
        update_events(c);
        return;
    }
    send_response(c, id, rc, err, result);
}

/*
 * The request in @line (@len bytes, its newline replaced by NUL), or NULL
 * with @why: one JSON object and nothing after it but blanks; a NUL byte
 * inside would hide the rest of the line from the parser.
 */
static struct json_object *
parse_line(const char *line, size_t len, const char **why)
{
    struct json_tokener *tok;
    struct json_object *o;
    size_t end;

    *why = "request is not a JSON object";
    if (memchr(line, '\0', len) != NULL) {
        *why = "request line contains a NUL byte";
        return NULL;
    }
    tok = json_tokener_new();
    if (tok == NULL)
        return NULL;
    o = json_tokener_parse_ex(tok, line, (int)len);
    end = o != NULL && json_tokener_get_error(tok) == json_tokener_success
              ? json_tokener_get_parse_end(tok)
              : 0;
    json_tokener_free(tok);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    for (; end < len; end++) {
        if (strchr(" \t\r", line[end]) == NULL) {
            *why = "request line has more after its JSON object";
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}

/* The line limit of @c, as a message. */
static void
too_long(struct ctl_conn *c)
{
    char msg[160];

    snprintf(msg, sizeof(msg), "request line longer than %zu bytes%s",
             c->max_line,
             c->may_manage ? "" : " (the limit outside the management group)");
    conn_refuse(c, -E2BIG, msg);
}

/*
 * Handle complete lines until the buffer runs dry, a request parks, an
 * answer waits for room, or this turn's share is used. Return: false if
 * @c was closed.
 */
static bool
drain_lines(struct ctl_conn *c)
{
    unsigned int handled = 0;

    while (!c->parked && !out_pending(c) &&
           handled < CTL_MAX_REQUESTS_PER_TURN) {
        char *nl = memchr(c->buf, '\n', c->len);
        struct json_object *req;
        const char *why;
        size_t line;

        if (nl == NULL)
            break;
        if ((size_t)(nl - c->buf) > c->max_line) {
            too_long(c);
            return false;
        }
        *nl = '\0';
        line = (size_t)(nl - c->buf) + 1;
        req = parse_line(c->buf, line - 1, &why);
        memmove(c->buf, c->buf + line, c->len - line);
        c->len -= line;
        /* The rest came with the latest read. */
        c->active = c->line_since = now_ms();
        if (req == NULL) {
            /* Not one JSON object: the stream cannot be trusted any
             * more. */
            conn_refuse(c, -EINVAL, why);
            return false;
        }
        handle_request(c, req);
        json_object_put(req);
        handled++;
    }
    if (!has_line(c) && c->len > c->max_line) {
        too_long(c);
        return false;
    }
    return true;
}

/* One read of what the peer sent. Return: false if @c was closed. */
static bool
read_some(struct ctl_conn *c)
{
    /* At most one line and its newline is ever buffered. */
    size_t room = c->max_line + 1 - c->len;
    ssize_t n;

    if (room > CTL_READ_CHUNK)
        room = CTL_READ_CHUNK;
    if (c->cap - c->len < room) {
        size_t cap = c->cap ? c->cap : 1024;
        char *b;

        while (cap - c->len < room)
            cap *= 2;
        b = realloc(c->buf, cap);
        if (b == NULL) {
            conn_refuse(c, -ENOMEM, "out of memory for the request");
            return false;
        }
        c->buf = b;
        c->cap = cap;
    }
    n = recv(c->fd, c->buf + c->len, room, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return false;
    }
    if (n > 0) {
        if (c->len == 0)
            c->line_since = now_ms();
        c->len += (size_t)n;
    }
    return true;
}

/* Handle what is buffered, then watch for what comes next. */
static void
process(struct ctl_conn *c)
{
    if (!drain_lines(c))
        return;
    /* A large buffer held for one long line is given back. */
    if (c->len == 0 && c->cap > CTL_READ_CHUNK) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    update_events(c);
}

static void
on_conn(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct ctl_conn *c = opaque;

    (void)loop;
    (void)fd;
    if ((events & UMDEV_LOOP_OUT) && flush_out(c) < 0) {
        conn_close(c);
        return;
    }
    if (events & (UMDEV_LOOP_IN | UMDEV_LOOP_HUP | UMDEV_LOOP_ERR)) {
        if (wants_input(c)) {
            /* What a peer sent before it hung up is still handled; the
             * end of its data closes the connection. */
            if (!read_some(c))
                return;
        } else if (events & (UMDEV_LOOP_HUP | UMDEV_LOOP_ERR)) {
            /* Gone while a request of it is in progress: nobody will
             * read the answer (and a hang-up is reported whatever we
             * watch, so waiting would spin). */
            conn_close(c);
            return;
        }
    }
    process(c);
}

static void
conn_close(struct ctl_conn *c)
{
    struct control *ctl = c->d->control;
    struct ctl_conn **pp;

    /* A parked request's answer has nowhere to go now; leases end. */
    handlers_conn_closed(c->d, c);
    for (pp = &ctl->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    ctl->nconns--;
    if (!c->may_manage)
        ctl->nreaders--;
    umdev_loop_del(c->d->loop, c->fd);
    close(c->fd);
    if (c->out_fd >= 0)
        close(c->out_fd);
    free(c->buf);
    free(c->out);
    free(c);
}

/* Close connections past a time limit; re-arm while any are open. */
static void
on_sweep(struct umdev_loop *loop, void *opaque)
{
    struct daemon *d = opaque;
    struct control *ctl = d->control;
    struct ctl_conn *c, *next;
    int64_t now = now_ms();
    char msg[160];

    ctl->sweep = 0;
    for (c = ctl->conns; c != NULL; c = next) {
        next = c->next;
        if (c->parked)
            continue;
        if (out_pending(c)) {
            /* A reader that does not take its answer holds it. */
            if (!c->may_manage && now - c->active >= CTL_IDLE_TIMEOUT_MS)
                conn_close(c);
            continue;
        }
        /* A partial line behind a complete one is not being read yet. */
        if (has_line(c))
            continue;
        if (c->len > 0 && now - c->line_since >= CTL_LINE_TIMEOUT_MS) {
            snprintf(msg, sizeof(msg),
                     "request line not completed within %d ms",
                     CTL_LINE_TIMEOUT_MS);
            conn_refuse(c, -ETIMEDOUT, msg);
        } else if (c->len == 0 && !c->may_manage &&
                   now - c->active >= CTL_IDLE_TIMEOUT_MS) {
            snprintf(msg, sizeof(msg),
                     "connection idle for %d ms; closed (connect again "
                     "for another request)",
                     CTL_IDLE_TIMEOUT_MS);
            conn_refuse(c, -ETIMEDOUT, msg);
        }
    }
    if (ctl->conns != NULL) {
        ctl->sweep = umdev_loop_timer_add(loop, CTL_SWEEP_MS, on_sweep, d);
        if (ctl->sweep < 0)
            ctl->sweep = 0; /* out of memory: armed again at the next
                               accept */
    }
}

/* The groups the peer had when it connected (not what /proc says now:
 * its pid may be another process by then). */
static bool
peer_in_group(int fd, gid_t gid)
{
    gid_t stack[64], *groups = stack;
    socklen_t len = sizeof(stack);
    bool found = false;
    size_t i;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
        if (errno != ERANGE)
            return false;
        groups = malloc(len);
        if (groups == NULL ||
            getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
            free(groups);
            return false;
        }
    }
    for (i = 0; i < len / sizeof(gid_t); i++)
        if (groups[i] == gid)
            found = true;
    if (groups != stack)
        free(groups);
    return found;
}

static bool
peer_may_manage(struct daemon *d, int fd, const struct ucred *cred)
{
    /* Root, or the user the daemon itself runs as (a private daemon). */
    if (cred->uid == 0 || cred->uid == geteuid())
        return true;
    if (d->opts.manage_gid == (gid_t)-1)
        return false;
    return cred->gid == d->opts.manage_gid ||
           peer_in_group(fd, d->opts.manage_gid);
}

/* Why a new connection from @uid (@manager or not) is refused, or NULL. */
static const char *
over_limit(struct control *ctl, uid_t uid, bool manager, char *msg, size_t len)
{
    const struct ctl_conn *c;
    size_t mine = 0;

    if (ctl->nconns >= CTL_MAX_CONNS) {
        snprintf(msg, len,
                 "umdevd has %d control connections open, its limit; try "
                 "again later",
                 CTL_MAX_CONNS);
        return msg;
    }
    if (manager)
        return NULL;
    if (ctl->nreaders >= CTL_MAX_READER_CONNS) {
        snprintf(msg, len,
                 "umdevd has %d control connections open from users "
                 "outside the management group, their limit; try again "
                 "later",
                 CTL_MAX_READER_CONNS);
        return msg;
    }
    for (c = ctl->conns; c != NULL; c = c->next)
        if (!c->may_manage && c->uid == uid)
            mine++;
    if (mine >= CTL_MAX_CONNS_PER_UID) {
        snprintf(msg, len,
                 "uid %u has %d control connections open, the limit for a "
                 "user outside the management group; close one and try "
                 "again",
                 (unsigned int)uid, CTL_MAX_CONNS_PER_UID);
        return msg;
    }
    return NULL;
}

static void on_accept(struct umdev_loop *loop, int fd, uint32_t events,
                      void *opaque);

static void
on_resume_accept(struct umdev_loop *loop, void *opaque)
{
    struct daemon *d = opaque;

    d->control->resume = 0;
    umdev_loop_mod(loop, d->control->fd, UMDEV_LOOP_IN);
}

/* Stop accepting for a moment: the listener is level-triggered, and a
 * failure that repeats must not spin the daemon. */
static void
pause_accept(struct daemon *d)
{
    struct control *ctl = d->control;

    if (ctl->resume > 0)
        return;
    ctl->resume =
        umdev_loop_timer_add(d->loop, CTL_ACCEPT_PAUSE_MS, on_resume_accept, d);
    if (ctl->resume < 0) {
        ctl->resume = 0;
        return; /* cannot wait: keep trying */
    }
    umdev_loop_mod(d->loop, ctl->fd, 0);
}

/*
 * Out of descriptors: give up the reserve for a moment to take the
 * connection off the queue and tell its peer, so the queue does not
 * stay readable (a spin) and the peer does not wait for nothing.
 */
static void
refuse_out_of_fds(struct daemon *d, int fd)
{
    struct control *ctl = d->control;
    int cfd;

    if (ctl->reserve_fd < 0) {
        pause_accept(d);
        return;
    }
    close(ctl->reserve_fd);
    cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd >= 0) {
        send_goodbye(cfd, -EMFILE,
                     "umdevd is out of file descriptors; try again later");
        close(cfd);
    }
    ctl->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (cfd < 0 || ctl->reserve_fd < 0)
        pause_accept(d);
}

static void
on_accept(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct daemon *d = opaque;
    struct control *ctl = d->control;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    struct ctl_conn *c;
    char msg[256];
    bool manager;
    int cfd;

    (void)events;
    cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0) {
        if (errno == EMFILE || errno == ENFILE)
            refuse_out_of_fds(d, fd);
        else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            pause_accept(d);
        return;
    }
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        close(cfd);
        return;
    }
    manager = peer_may_manage(d, cfd, &cred);
    if (over_limit(ctl, cred.uid, manager, msg, sizeof(msg)) != NULL) {
        send_goodbye(cfd, -EAGAIN, msg);
        close(cfd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(cfd);
        return;
    }
    c->d = d;
    c->fd = cfd;
    c->out_fd = -1;
    c->uid = cred.uid;
    c->peer_pid = cred.pid;
    c->may_manage = manager;
    c->max_line = manager ? CTL_MAX_LINE : CTL_MAX_READER_LINE;
    c->active = now_ms();
    if (umdev_loop_add(loop, cfd, UMDEV_LOOP_IN, on_conn, c) < 0) {
        close(cfd);
        free(c);
        return;
    }
    c->next = ctl->conns;
    ctl->conns = c;
    ctl->nconns++;
    if (!manager)
        ctl->nreaders++;
    if (ctl->sweep == 0) {
        ctl->sweep = umdev_loop_timer_add(loop, CTL_SWEEP_MS, on_sweep, d);
        if (ctl->sweep < 0)
            ctl->sweep = 0;
    }
}

int
control_listen(struct daemon *d)
{
    /* Everyone may connect and read; SO_PEERCRED decides who manages.
     * A socket left by an earlier daemon is replaced in one step. */
    const struct umdev_listen_opts lo = { .mode = 0666,
                                          .uid = (uid_t)-1,
                                          .gid = (gid_t)-1,
                                          .backlog = 64,
                                          .replace = true };
    int fd, rc;

    if (strlen(d->opts.control) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    d->control = calloc(1, sizeof(*d->control));
    if (d->control == NULL)
        return -ENOMEM;
    d->control->fd = -1;
    d->control->max_out = CTL_MAX_OUT;
#ifdef UMDEV_TEST_HOOKS
    if (getenv(CTL_TEST_MAX_OUT_ENV) != NULL) {
        unsigned long long v = strtoull(getenv(CTL_TEST_MAX_OUT_ENV), NULL, 0);

        if (v > 0 && v < CTL_MAX_OUT)
            d->control->max_out = (size_t)v;
    }
#endif
    d->hooks.respond = respond;
    d->hooks.respond_fd = respond_fd;
    d->control->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (d->control->reserve_fd < 0)
        return -errno;
    fd = umdev_listen_unix(-1, d->opts.control, &lo);
    if (fd < 0)
        return fd;
    rc = umdev_loop_add(d->loop, fd, UMDEV_LOOP_IN, on_accept, d);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    d->control->fd = fd;
    return 0;
}

void
control_close_all(struct daemon *d)
{
    struct control *ctl = d->control;

    if (ctl == NULL)
        return;
    while (ctl->conns != NULL)
        conn_close(ctl->conns);
    umdev_loop_timer_cancel(d->loop, ctl->sweep);
    umdev_loop_timer_cancel(d->loop, ctl->resume);
    if (ctl->fd >= 0) {
        umdev_loop_del(d->loop, ctl->fd);
        close(ctl->fd);
        unlink(d->opts.control);
    }
    if (ctl->reserve_fd >= 0)
        close(ctl->reserve_fd);
    free(ctl);
    d->control = NULL;
}
