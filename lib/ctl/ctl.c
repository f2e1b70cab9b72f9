/*
 * The control-protocol client (include/umdev/ctl.h, docs/CONTROL.md): a
 * non-blocking UNIX stream socket, every wait a ppoll() against one
 * deadline, responses read into a growing buffer until their newline and
 * checked field by field before anything of them reaches the caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "umdev/ctl.h"

/* Read in chunks of this much; the buffer doubles from it as needed. */
#define CTL_READ_CHUNK 65536u
/* A buffer grown past this for one large response is given back once it
 * is empty, so a long-lived handle does not keep it. */
#define CTL_KEEP_BUF (1u << 20)
/* Descriptors kept from responses, not yet taken. */
#define CTL_MAX_FDS 4u

struct umdev_ctl {
    int fd;
    bool broken;     /* a line was cut or garbled: nothing more is sent */
    char why[256];   /* what broke it */
    int64_t next_id; /* the id the next request gets */
    int64_t oldest;  /* the oldest request not answered yet */
    char *buf;       /* received bytes not yet consumed */
    size_t len, cap;
    size_t scanned; /* buf[0..scanned) holds no newline */
    /* Descriptors that came with responses (`manage`), oldest first,
     * until umdev_ctl_take_fd(); more are closed. */
    int fds[CTL_MAX_FDS];
    size_t nfds;
};

static int fail(struct umdev_ctl_error *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int pending_refusal(struct umdev_ctl *c, struct umdev_ctl_error *err);

/* Describe a local failure in @err (may be NULL). Return: @rc. */
static int
fail(struct umdev_ctl_error *err, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return rc;
    err->err = -rc;
    err->code[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return rc;
}

/* The stream is out of step from here on: remember why, and fail every
 * later call (a partial line or a garbled one cannot be resynchronised). */
static int
broke(struct umdev_ctl *c, struct umdev_ctl_error *err, int rc,
      const char *what)
{
    c->broken = true;
    snprintf(c->why, sizeof(c->why), "%s", what);
    return fail(err, rc, "%s", what);
}

static int
fail_broken(struct umdev_ctl *c, struct umdev_ctl_error *err)
{
    return fail(err, -ENOTCONN,
                "the connection to umdevd is unusable after an earlier "
                "error (%s)",
                c->why);
}

#define NS_PER_S 1000000000L

/* @timeout_ms from now on CLOCK_MONOTONIC, in @d; NULL (no deadline) for
 * a timeout < 0. */
static const struct timespec *
deadline_of(int timeout_ms, struct timespec *d)
{
    if (timeout_ms < 0)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, d);
    d->tv_sec += timeout_ms / 1000;
    d->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (d->tv_nsec >= NS_PER_S) {
        d->tv_sec++;
        d->tv_nsec -= NS_PER_S;
    }
    return d;
}

/*
 * Wait until @fd has @events or @deadline (NULL: none) passes. Return: 0
 * (ready, or an error or hang-up the next send/recv will report);
 * -ETIMEDOUT; the ppoll() error.
 */
static int
wait_fd(int fd, short events, const struct timespec *deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    struct timespec now, left;
    int n;

    for (;;) {
        if (deadline != NULL) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            left.tv_sec = deadline->tv_sec - now.tv_sec;
            left.tv_nsec = deadline->tv_nsec - now.tv_nsec;
            if (left.tv_nsec < 0) {
                left.tv_sec--;
                left.tv_nsec += NS_PER_S;
            }
            if (left.tv_sec < 0)
                return -ETIMEDOUT;
        }
        n = ppoll(&p, 1, deadline != NULL ? &left : NULL, NULL);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
        /* A signal, or the time is up: the check above decides. */
    }
}

int
umdev_ctl_default_path(char *buf, size_t len)
{
    const char *control = getenv("UMDEV_CONTROL");
    const char *rundir = getenv("UMDEV_RUNDIR");
    int n;

    if (control != NULL)
        n = snprintf(buf, len, "%s", control);
    else
        n = snprintf(buf, len, "%s/control",
                     rundir != NULL ? rundir : UMDEV_CTL_DEFAULT_RUNDIR);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
umdev_ctl_connect(const char *path, int timeout_ms, struct umdev_ctl **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct umdev_ctl *c;
    int rc;

    if (out == NULL || path == NULL)
        return -EINVAL;
    *out = NULL;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->next_id = c->oldest = 1;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (timeout_ms >= 0) {
        /* A UNIX connect() waits only for room in the listener's backlog,
         * and that wait is bounded by the send timeout (0 would mean
         * none, so the shortest one stands for 0). */
        struct timeval tv = {
            .tv_sec = timeout_ms / 1000,
            .tv_usec = timeout_ms > 0 ? (timeout_ms % 1000) * 1000 : 1,
        };

        if (setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
            rc = -errno;
            goto fail;
        }
    }
    while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EISCONN)
            break;
        rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
        goto fail;
    }
    /* From here every wait is a poll() against the caller's deadline. */
    if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
        rc = -errno;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    umdev_ctl_close(c);
    return rc;
}

void
umdev_ctl_close(struct umdev_ctl *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd);
    while (c->nfds > 0)
        close(c->fds[--c->nfds]);
    free(c->buf);
    free(c);
}

int
umdev_ctl_take_fd(struct umdev_ctl *c)
{
    int fd;

    if (c->nfds == 0)
        return -1;
    fd = c->fds[0];
    memmove(c->fds, c->fds + 1, --c->nfds * sizeof(c->fds[0]));
    return fd;
}

/* recv() that keeps the descriptors a response brings. */
static ssize_t
recv_keep_fds(struct umdev_ctl *c, void *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(CTL_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = u.buf,
        .msg_controllen = sizeof(u.buf),
    };
    struct cmsghdr *cm;
    ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

    for (cm = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm != NULL;
         cm = CMSG_NXTHDR(&mh, cm)) {
        size_t i, nfds;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < nfds; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
            if (c->nfds < CTL_MAX_FDS)
                c->fds[c->nfds++] = fd;
            else
                close(fd);
        }
    }
    return n;
}

int
umdev_ctl_fd(const struct umdev_ctl *c)
{
    return c->fd;
}

/* {"version":1,"id":@id,"cmd":@cmd,"args":@args}, or NULL (no memory). */
static struct json_object *
build_request(int64_t id, const char *cmd, struct json_object *args)
{
    static const char *const keys[] = { "version", "id", "cmd", "args" };
    struct json_object *req = json_object_new_object();
    struct json_object *v[] = {
        json_object_new_int(UMDEV_CTL_VERSION),
        json_object_new_int64(id),
        json_object_new_string(cmd),
        args != NULL ? json_object_get(args) : json_object_new_object(),
    };
    size_t i, bad = req == NULL ? 0 : sizeof(v) / sizeof(v[0]);

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (v[i] == NULL)
            bad = 0;
    /* Each value is the request's once added; the rest stay ours. */
    for (i = 0; i < bad; i++)
        if (json_object_object_add(req, keys[i], v[i]) < 0)
            break;
    if (i == sizeof(v) / sizeof(v[0]))
        return req;
    for (; i < sizeof(v) / sizeof(v[0]); i++)
        json_object_put(v[i]);
    json_object_put(req);
    return NULL;
}

/* Write all of @p before @deadline. A line cut short breaks the stream;
 * one not started does not. */
static int
write_all(struct umdev_ctl *c, const char *p, size_t len,
          const struct timespec *deadline, struct umdev_ctl_error *err)
{
    char what[160];
    size_t done = 0;
    ssize_t n;
    int rc = 0;

    while (done < len) {
        n = send(c->fd, p + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            rc = -errno;
            break;
        }
        rc = wait_fd(c->fd, POLLOUT, deadline);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        return 0;
    snprintf(what, sizeof(what), "cannot send to umdevd: %s",
             rc == -EPIPE ? "it closed the connection" : strerror(-rc));
    if (done > 0)
        return broke(c, err, rc, what);
    return fail(err, rc, "%s", what);
}

static int
send_until(struct umdev_ctl *c, const char *cmd, struct json_object *args,
           const struct timespec *deadline, int64_t *id,
           struct umdev_ctl_error *err)
{
    struct json_object *req;
    const char *text;
    size_t len;
    char *line;
    int rc;

    if (c->broken)
        return fail_broken(c, err);
    if (cmd == NULL ||
        (args != NULL && !json_object_is_type(args, json_type_object)))
        return fail(err, -EINVAL,
                    "a request needs a command and an "
                    "object of arguments");
    req = build_request(c->next_id, cmd, args);
    text = req != NULL ? json_object_to_json_string_length(
                             req, JSON_C_TO_STRING_PLAIN, &len)
                       : NULL;
    /* One buffer, so the line goes out in one send() when it fits. */
    line = text != NULL ? malloc(len + 1) : NULL;
    if (line == NULL) {
        json_object_put(req);
        return fail(err, -ENOMEM, "out of memory for a request");
    }
    memcpy(line, text, len);
    line[len] = '\n';
    json_object_put(req);
    rc = write_all(c, line, len + 1, deadline, err);
    free(line);
    if ((rc == -EPIPE || rc == -ECONNRESET) && pending_refusal(c, err) < 0)
        return -EREMOTEIO;
    if (rc < 0)
        return rc;
    if (id != NULL)
        *id = c->next_id;
    c->next_id++;
    return 0;
}

int
umdev_ctl_send(struct umdev_ctl *c, const char *cmd, struct json_object *args,
               int timeout_ms, int64_t *id, struct umdev_ctl_error *err)
{
    struct timespec d;

    return send_until(c, cmd, args, deadline_of(timeout_ms, &d), id, err);
}

/*
 * Have a whole line at the start of the buffer before @deadline. Return:
 * 0 with *@line_len its length (the newline at buf[*line_len]);
 * -ETIMEDOUT (what arrived stays buffered); or a failure that breaks the
 * stream.
 */
static int
read_line(struct umdev_ctl *c, const struct timespec *deadline,
          size_t *line_len, struct umdev_ctl_error *err)
{
    char what[160];
    ssize_t n;
    int rc;

    for (;;) {
        char *nl = c->len > c->scanned
                       ? memchr(c->buf + c->scanned, '\n', c->len - c->scanned)
                       : NULL;

        if (nl != NULL) {
            *line_len = (size_t)(nl - c->buf);
            return 0;
        }
        c->scanned = c->len;
        if (c->len >= UMDEV_CTL_RESPONSE_MAX) {
            snprintf(what, sizeof(what),
                     "a response from umdevd is longer than %u bytes",
                     UMDEV_CTL_RESPONSE_MAX);
            return broke(c, err, -EMSGSIZE, what);
        }
        if (c->cap - c->len < CTL_READ_CHUNK &&
            c->cap < UMDEV_CTL_RESPONSE_MAX) {
            size_t cap = c->cap ? c->cap * 2 : CTL_READ_CHUNK;
            char *b;

            cap = cap > UMDEV_CTL_RESPONSE_MAX ? UMDEV_CTL_RESPONSE_MAX : cap;
            b = realloc(c->buf, cap);
            if (b == NULL)
                return broke(c, err, -ENOMEM, "out of memory for a response");
            c->buf = b;
            c->cap = cap;
        }
        n = recv_keep_fds(c, c->buf + c->len, c->cap - c->len);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n == 0)
            return broke(c, err, -ECONNRESET, "umdevd closed the connection");
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            rc = -errno;
            snprintf(what, sizeof(what), "cannot read from umdevd: %s",
                     strerror(-rc));
            return broke(c, err, rc, what);
        }
        rc = wait_fd(c->fd, POLLIN, deadline);
        if (rc == -ETIMEDOUT)
            return fail(err, rc, "umdevd did not answer in time");
        if (rc < 0)
            return fail(err, rc, "cannot wait for umdevd: %s", strerror(-rc));
    }
}

/* Drop the first @n bytes of the buffer (a line and its newline). */
static void
consume(struct umdev_ctl *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->scanned = 0;
    if (c->len == 0 && c->cap > CTL_KEEP_BUF) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
}

/* @key of @o if it has type @type, else NULL. */
static struct json_object *
member(struct json_object *o, const char *key, enum json_type type)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
        return NULL;
    return v;
}

/* Whether @e is an error object as the daemon sends it: a positive
 * errno, its name and a message. */
static bool
is_error_object(struct json_object *e)
{
    struct json_object *n = member(e, "errno", json_type_int);

    return n != NULL && json_object_get_int64(n) > 0 &&
           json_object_get_int64(n) < 4096 &&
           member(e, "code", json_type_string) != NULL &&
           member(e, "message", json_type_string) != NULL;
}

/* The id a response carries when it answers no request: the daemon
 * refusing or closing the whole connection ("id": null, docs/CONTROL.md
 * "Limits"). Request ids start at 1. */
#define CTL_ID_CONNECTION (-1)

/* Whether @o is a refusal of the connection: "id": null on an error. */
static bool
is_refusal(struct json_object *o)
{
    struct json_object *v, *ok = member(o, "ok", json_type_boolean);

    return json_object_object_get_ex(o, "id", &v) && v == NULL && ok != NULL &&
           !json_object_get_boolean(ok) &&
           is_error_object(member(o, "error", json_type_object));
}

/*
 * Parse and check one response line (docs/CONTROL.md, Responses).
 * Return: 0 with *@resp (ours to put) and *@id (CTL_ID_CONNECTION for a
 * refusal of the connection); -EPROTO or -ENOMEM, the reason in *@what.
 */
static int
parse_response(const char *line, size_t len, struct json_object **resp,
               int64_t *id, const char **what)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o, *v;

    *resp = NULL;
    if (tok == NULL) {
        *what = "out of memory to parse a response";
        return -ENOMEM;
    }
    o = json_tokener_parse_ex(tok, line, (int)len);
    /* Trailing bytes or an embedded NUL end the parse early. */
    if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len)
        *what = "not one JSON value";
    else if (!json_object_is_type(o, json_type_object))
        *what = "not a JSON object";
    else if ((v = member(o, "version", json_type_int)) == NULL ||
             json_object_get_int64(v) != UMDEV_CTL_VERSION)
        *what = "no \"version\": 1";
    else if (member(o, "id", json_type_int) == NULL && !is_refusal(o))
        *what = "no integer \"id\"";
    else if ((v = member(o, "ok", json_type_boolean)) == NULL)
        *what = "no boolean \"ok\"";
    else if (json_object_get_boolean(v) &&
             member(o, "result", json_type_object) == NULL)
        *what = "\"ok\": true without a \"result\" object";
    else if (!json_object_get_boolean(v) &&
             !is_error_object(member(o, "error", json_type_object)))
        *what = "\"ok\": false without an \"error\" object of errno, "
                "code and message";
    else
        *what = NULL;
    json_tokener_free(tok);
    if (*what != NULL) {
        json_object_put(o);
        return -EPROTO;
    }
    *id = member(o, "id", json_type_int) != NULL
              ? json_object_get_int64(member(o, "id", json_type_int))
              : CTL_ID_CONNECTION;
    *resp = o;
    return 0;
}

/* A checked response's outcome: its result, or the daemon's error. */
static int
take_outcome(struct json_object *resp, struct json_object **result,
             struct umdev_ctl_error *err)
{
    struct json_object *e;

    if (json_object_get_boolean(member(resp, "ok", json_type_boolean))) {
        if (result != NULL)
            *result = json_object_get(member(resp, "result", json_type_object));
        return 0;
    }
    e = member(resp, "error", json_type_object);
    if (err != NULL) {
        err->err =
            (int)json_object_get_int64(member(e, "errno", json_type_int));
        snprintf(err->code, sizeof(err->code), "%s",
                 json_object_get_string(member(e, "code", json_type_string)));
        snprintf(
            err->message, sizeof(err->message), "%s",
            json_object_get_string(member(e, "message", json_type_string)));
    }
    return -EREMOTEIO;
}

/* The daemon refused or closed the connection (@resp, taken): its
 * reason is the answer to every request, this one and any later. */
static int
refused(struct umdev_ctl *c, struct json_object *resp,
        struct umdev_ctl_error *err)
{
    struct umdev_ctl_error e;
    int rc = take_outcome(resp, NULL, &e);

    json_object_put(resp);
    c->broken = true;
    snprintf(c->why, sizeof(c->why), "umdevd closed it: %.200s", e.message);
    if (err != NULL)
        *err = e;
    return rc;
}

/* After a send failed because the daemon closed the connection: the
 * reason it left before closing, if any. Return: -EREMOTEIO with @err
 * filled, or 0 (no reason to be read). */
static int
pending_refusal(struct umdev_ctl *c, struct umdev_ctl_error *err)
{
    struct timespec now;
    struct json_object *resp;
    const char *what;
    size_t len = 0;
    int64_t got = 0;

    /* A deadline already past: read only what has arrived. */
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (read_line(c, &now, &len, NULL) < 0)
        return 0;
    if (parse_response(c->buf, len, &resp, &got, &what) < 0)
        return 0;
    consume(c, len + 1);
    if (got != CTL_ID_CONNECTION) {
        json_object_put(resp);
        return 0;
    }
    return refused(c, resp, err);
}

static int
recv_until(struct umdev_ctl *c, int64_t id, const struct timespec *deadline,
           struct json_object **result, struct umdev_ctl_error *err)
{
    struct json_object *resp;
    char ids[96], msg[256];
    const char *what;
    size_t len = 0; /* gcc -O2 cannot see read_line() sets it */
    int64_t got = 0;
    int rc;

    if (c->broken)
        return fail_broken(c, err);
    if (id < c->oldest || id >= c->next_id)
        return fail(err, -EINVAL, "request %lld is not outstanding",
                    (long long)id);
    for (;;) {
        rc = read_line(c, deadline, &len, err);
        if (rc < 0)
            return rc;
        rc = parse_response(c->buf, len, &resp, &got, &what);
        consume(c, len + 1);
        if (rc == 0 && got == CTL_ID_CONNECTION)
            return refused(c, resp, err);
        /* Responses come in request order (docs/CONTROL.md, Framing). */
        if (rc == 0 && got != c->oldest) {
            json_object_put(resp);
            snprintf(ids, sizeof(ids), "it answers request %lld, not %lld",
                     (long long)got, (long long)c->oldest);
            what = ids;
            rc = -EPROTO;
        }
        if (rc < 0) {
            /* Either way the answer is lost and later ones are out of
             * step with our ids. */
            snprintf(msg, sizeof(msg), "%s%s",
                     rc == -EPROTO ? "malformed response from umdevd: " : "",
                     what);
            return broke(c, err, rc, msg);
        }
        c->oldest++;
        if (got == id)
            break;
        /* The answer to a request its sender abandoned. */
        json_object_put(resp);
    }
    rc = take_outcome(resp, result, err);
    json_object_put(resp);
    return rc;
}

int
umdev_ctl_recv(struct umdev_ctl *c, int64_t id, int timeout_ms,
               struct json_object **result, struct umdev_ctl_error *err)
{
    struct timespec d;

    if (result != NULL)
        *result = NULL;
    return recv_until(c, id, deadline_of(timeout_ms, &d), result, err);
}

int
umdev_ctl_call(struct umdev_ctl *c, const char *cmd, struct json_object *args,
               int timeout_ms, struct json_object **result,
               struct umdev_ctl_error *err)
{
    struct timespec d;
    const struct timespec *deadline = deadline_of(timeout_ms, &d);
    int64_t id;
    int rc;

    if (result != NULL)
        *result = NULL;
    rc = send_until(c, cmd, args, deadline, &id, err);
    if (rc == 0)
        rc = recv_until(c, id, deadline, result, err);
    return rc;
}
