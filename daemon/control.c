/*
 * The control socket (control.h, docs/CONTROL.md): newline-delimited JSON
 * requests, answered in order. A request that must wait for a worker
 * (start, stop, info, stats) or for an audit process parks its connection
 * until it is completed, so responses never overtake each other. What
 * each command does is handlers.c's business.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "handlers.h"

#define CTL_MAX_LINE (1024 * 1024)

struct ctl_conn {
    struct daemon *d;
    int fd;
    bool may_manage;
    bool parked;  /* a request waits for a worker */
    bool resumed; /* unparked with requests buffered: drain from the loop */
    char *buf;
    size_t len, cap;
    /* Responses not yet taken by the peer: a `list` of a thousand
     * instances is larger than a socket buffer. */
    char *out;
    size_t out_off, out_len, out_cap;
    pid_t peer_pid;
    struct ctl_conn *next;
};

struct control {
    int fd; /* the listening socket */
    struct ctl_conn *conns;
};

/* A peer that lets this much output pile up is cut off. */
#define CTL_MAX_OUT (64u << 20)

static void conn_close(struct ctl_conn *c);
static void conn_resume(struct ctl_conn *c);

/* Watch for requests unless parked, and for room while output waits. */
static void
update_events(struct ctl_conn *c)
{
    uint32_t ev = c->parked ? 0 : UMDEV_LOOP_IN;

    /* A resumed connection waits for "writable" only to be called back
     * from the loop (conn_resume). */
    if (c->out_off < c->out_len || (c->resumed && !c->parked))
        ev |= UMDEV_LOOP_OUT;
    umdev_loop_mod(c->d->loop, c->fd, ev);
}

/* Send what the socket takes now. Return: 0, or -errno (peer gone). */
static int
flush_out(struct ctl_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0)
            return -errno;
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

static int
queue_out(struct ctl_conn *c, const char *s, size_t len)
{
    if (c->out_len - c->out_off + len > CTL_MAX_OUT)
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

static void
send_response(struct ctl_conn *c, struct json_object *id, int err,
              const char *msg, struct json_object *result)
{
    struct json_object *r = json_object_new_object();
    const char *text;

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
    text = json_object_to_json_string_ext(
        r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    /* Never block the daemon on one client: queue what the socket does
     * not take now; a client that stops reading for good is cut off. */
    if (queue_out(c, text, strlen(text)) < 0 || queue_out(c, "\n", 1) < 0 ||
        flush_out(c) < 0)
        shutdown(c->fd, SHUT_RDWR);
    else
        update_events(c);
    json_object_put(r);
}

/* daemon_hooks.respond: a parked request's answer. */
static void
respond(struct daemon *d, void *conn, struct json_object *id, int err,
        const char *msg, struct json_object *result)
{
    struct ctl_conn *c = conn;

    (void)d;
    send_response(c, id, err, msg, result);
    conn_resume(c);
}

static pid_t
peer_pid(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid
                                                                     : -1;
}

static void
handle_request(struct ctl_conn *c, struct json_object *req)
{
    struct daemon *d = c->d;
    struct json_object *v, *id = NULL, *args = NULL, *result = NULL;
    struct ctl_request rq;
    char err[512] = "";
    const char *cmd;
    int rc;

    json_object_object_get_ex(req, "id", &id);
    if (!json_object_object_get_ex(req, "version", &v) ||
        json_object_get_int(v) != UMDEVD_PROTOCOL) {
        send_response(c, id, -EPROTONOSUPPORT, "protocol version 1 is required",
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
    rq.may_manage = c->may_manage;
    rc = handlers_dispatch(d, &rq, cmd, args, &result, err, sizeof(err));
    json_object_put(args);
    if (rc == 1) {
        /* Answered later through respond(); nothing behind it is read
         * until then, so responses keep their order. */
        c->parked = true;
        update_events(c);
        return;
    }
    send_response(c, id, rc, err, result);
}

/* Handle complete lines until the buffer runs dry or a request parks. */
static void
drain_lines(struct ctl_conn *c)
{
    while (!c->parked) {
        char *nl = memchr(c->buf, '\n', c->len);
        struct json_object *req;
        size_t line;

        if (nl == NULL)
            return;
        *nl = '\0';
        line = (size_t)(nl - c->buf) + 1;
        req = json_tokener_parse(c->buf);
        memmove(c->buf, c->buf + line, c->len - line);
        c->len -= line;
        if (req == NULL || !json_object_is_type(req, json_type_object)) {
            /* Not JSON: the stream cannot be trusted any more. */
            send_response(c, NULL, -EINVAL, "request is not a JSON object",
                          NULL);
            json_object_put(req);
            conn_close(c);
            return;
        }
        handle_request(c, req);
        json_object_put(req);
    }
}

static void
on_conn(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct ctl_conn *c = opaque;
    ssize_t n;

    (void)loop;
    (void)fd;
    if (events & UMDEV_LOOP_OUT) {
        if (flush_out(c) < 0) {
            conn_close(c);
            return;
        }
        if (c->resumed) {
            /* Requests that arrived while parked; new input (IN is
             * level-triggered) waits for the next turn. */
            c->resumed = false;
            update_events(c);
            drain_lines(c);
            return;
        }
        update_events(c);
    }
    if (!(events & (UMDEV_LOOP_IN | UMDEV_LOOP_HUP | UMDEV_LOOP_ERR)))
        return;
    if (c->cap - c->len < 4096) {
        size_t cap = c->cap ? c->cap * 2 : 8192;
        char *b;

        if (cap > CTL_MAX_LINE + 4096) {
            send_response(c, NULL, -E2BIG, "request line longer than 1 MiB",
                          NULL);
            conn_close(c);
            return;
        }
        b = realloc(c->buf, cap);
        if (b == NULL) {
            conn_close(c);
            return;
        }
        c->buf = b;
        c->cap = cap;
    }
    n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(c);
        return;
    }
    if (n < 0)
        return;
    c->len += (size_t)n;
    drain_lines(c);
}

static void
conn_resume(struct ctl_conn *c)
{
    c->parked = false;
    /*
     * Requests already buffered are handled from the loop, never from
     * here: the caller is the supervisor in the middle of an instance
     * event, and a pipelined request (undefine, start, stop) must not
     * change or free that instance under it.
     */
    c->resumed = c->len > 0;
    update_events(c);
}

static void
conn_close(struct ctl_conn *c)
{
    struct ctl_conn **pp;

    /* A parked request's answer has nowhere to go now; leases end. */
    handlers_conn_closed(c->d, c);
    for (pp = &c->d->control->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    umdev_loop_del(c->d->loop, c->fd);
    close(c->fd);
    free(c->buf);
    free(c->out);
    free(c);
}

static bool
peer_may_manage(struct daemon *d, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    gid_t groups[256];
    int n, i;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return false;
    /* Root, or the user the daemon itself runs as (a private daemon). */
    if (cred.uid == 0 || cred.uid == geteuid())
        return true;
    if (d->opts.manage_gid == (gid_t)-1)
        return false;
    if (cred.gid == d->opts.manage_gid)
        return true;
    /* Supplementary groups of the peer process. */
    {
        char path[64], line[4096];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)cred.pid);
        f = fopen(path, "re");
        if (f == NULL)
            return false;
        n = 0;
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, "Groups:", 7) == 0) {
                char *p = line + 7, *end;

                while (n < 256) {
                    long g = strtol(p, &end, 10);

                    if (end == p)
                        break;
                    groups[n++] = (gid_t)g;
                    p = end;
                }
            }
        }
        fclose(f);
        for (i = 0; i < n; i++)
            if (groups[i] == d->opts.manage_gid)
                return true;
    }
    return false;
}

static void
on_accept(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct daemon *d = opaque;
    struct ctl_conn *c;
    int cfd;

    (void)events;
    cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(cfd);
        return;
    }
    c->d = d;
    c->fd = cfd;
    c->may_manage = peer_may_manage(d, cfd);
    c->peer_pid = peer_pid(cfd);
    if (umdev_loop_add(loop, cfd, UMDEV_LOOP_IN, on_conn, c) < 0) {
        close(cfd);
        free(c);
        return;
    }
    c->next = d->control->conns;
    d->control->conns = c;
}

int
control_listen(struct daemon *d)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    mode_t old;
    int fd, rc;

    if (strlen(d->opts.control) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    d->control = calloc(1, sizeof(*d->control));
    if (d->control == NULL)
        return -ENOMEM;
    d->control->fd = -1;
    d->hooks.respond = respond;
    strcpy(sa.sun_path, d->opts.control);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(d->opts.control);
    /* Everyone may connect and read; SO_PEERCRED decides who manages. */
    old = umask(0);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc == 0)
        rc = chmod(d->opts.control, 0666);
    if (rc < 0 || listen(fd, 64) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
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
    if (ctl->fd >= 0) {
        umdev_loop_del(d->loop, ctl->fd);
        close(ctl->fd);
        unlink(d->opts.control);
    }
    free(ctl);
    d->control = NULL;
}
