/*
 * Unit tests of the control-protocol client (lib/ctl) against a fake
 * umdevd: a thread listening on a UNIX socket in a temporary directory
 * that checks each request line and answers from a script, well-formed
 * or not. Covers the default path, connect failures and timeouts,
 * results, the daemon's refusals, malformed, oversized and cut-off
 * responses, a daemon that dies mid-request, abandoned and pipelined
 * requests. SIGPIPE keeps its default action: a send without
 * MSG_NOSIGNAL would kill the test.
 */
#include "umdev/ctl.h" /* first: it must stand alone */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#define MAX_STEPS 8
#define BIG_RESULT (8u << 20) /* far more than a socket buffer */

/* One answer of the fake daemon. */
struct step {
    bool no_read;      /* answer without reading a request first */
    int delay_ms;      /* before answering */
    const char *reply; /* written as is, "@ID" replaced by the request's
                        * id; NULL: write nothing */
    size_t reply_len;  /* nonzero: write @reply's bytes as they are */
    bool big;          /* instead: a result of BIG_RESULT bytes */
    bool endless;      /* instead: UMDEV_CTL_RESPONSE_MAX bytes, no \n */
    bool hang_up;      /* then close the connection */
};

struct fake {
    char dir[64];
    char path[108];
    int lfd;
    pthread_t thread;
    struct step steps[MAX_STEPS];
    int nsteps;
    /* What the server saw. */
    int requests, bad_requests;
    char last_cmd[32];
    char last_args[256];
};

/* ---- The fake daemon */

/* One line, without its newline. Return: its length, or -1 at EOF. */
static int
srv_read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    char ch;

    while (read(fd, &ch, 1) == 1) {
        if (ch == '\n') {
            buf[n] = '\0';
            return (int)n;
        }
        if (n + 1 < cap)
            buf[n++] = ch;
    }
    return -1;
}

static void
srv_write(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n <= 0)
            return; /* the client gave up: its business */
        p += n;
        len -= (size_t)n;
    }
}

/* Check a request as umdevd would (docs/CONTROL.md, Requests): returns
 * its id, or -1 when it is not one. */
static int64_t
srv_check(struct fake *f, const char *line)
{
    struct json_object *o = json_tokener_parse(line), *v, *id, *cmd, *args;
    int64_t r = -1;

    if (o != NULL && json_object_object_get_ex(o, "version", &v) &&
        json_object_is_type(v, json_type_int) && json_object_get_int(v) == 1 &&
        json_object_object_get_ex(o, "id", &id) &&
        json_object_is_type(id, json_type_int) &&
        json_object_object_get_ex(o, "cmd", &cmd) &&
        json_object_is_type(cmd, json_type_string) &&
        json_object_object_get_ex(o, "args", &args) &&
        json_object_is_type(args, json_type_object) &&
        json_object_object_length(o) == 4) {
        r = json_object_get_int64(id);
        snprintf(f->last_cmd, sizeof(f->last_cmd), "%s",
                 json_object_get_string(cmd));
        snprintf(f->last_args, sizeof(f->last_args), "%s",
                 json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(o);
    return r;
}

static void
srv_reply(int fd, const char *fmt, int64_t id)
{
    const char *at = strstr(fmt, "@ID");
    char buf[1024];
    int n;

    if (at == NULL)
        n = snprintf(buf, sizeof(buf), "%s", fmt);
    else
        n = snprintf(buf, sizeof(buf), "%.*s%lld%s", (int)(at - fmt), fmt,
                     (long long)id, at + 3);
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    srv_write(fd, buf, (size_t)n);
}

static void
srv_big(int fd, int64_t id, bool endless)
{
    size_t len = endless ? UMDEV_CTL_RESPONSE_MAX : BIG_RESULT;
    char *s = malloc(len);
    int n;

    assert_non_null(s);
    memset(s, 'x', len);
    if (!endless) {
        n = snprintf(s, 128,
                     "{\"version\":1,\"id\":%lld,\"ok\":true,"
                     "\"result\":{\"s\":\"",
                     (long long)id);
        s[n] = 'x'; /* snprintf's NUL */
        memcpy(s + len - 4, "\"}}\n", 4);
    }
    srv_write(fd, s, len);
    free(s);
}

static void *
srv_main(void *arg)
{
    struct fake *f = arg;
    char line[4096];
    int64_t id = 0;
    int fd = accept(f->lfd, NULL, NULL), i;

    if (fd < 0)
        return NULL;
    for (i = 0; i < f->nsteps; i++) {
        const struct step *s = &f->steps[i];

        if (!s->no_read) {
            if (srv_read_line(fd, line, sizeof(line)) < 0)
                break;
            f->requests++;
            id = srv_check(f, line);
            if (id < 0)
                f->bad_requests++;
        }
        if (s->delay_ms > 0)
            usleep((useconds_t)s->delay_ms * 1000);
        if (s->big || s->endless)
            srv_big(fd, id, s->endless);
        else if (s->reply_len > 0)
            srv_write(fd, s->reply, s->reply_len);
        else if (s->reply != NULL)
            srv_reply(fd, s->reply, id);
        if (s->hang_up) {
            close(fd);
            return NULL;
        }
    }
    /* Script done: wait for the client to hang up. */
    while (srv_read_line(fd, line, sizeof(line)) >= 0)
        f->requests++;
    close(fd);
    return NULL;
}

static void
fake_listen(struct fake *f, bool listening)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    snprintf(f->dir, sizeof(f->dir), "/tmp/umdev-ctl-test.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/control", f->dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    /* Backlog 0: one connection may wait, the next one blocks. */
    if (listening)
        assert_int_equal(listen(f->lfd, 0), 0);
}

/* Serve @steps to the next connection, from a thread. */
static void
fake_start(struct fake *f, const struct step *steps, int n)
{
    memset(f, 0, sizeof(*f));
    assert_true(n <= MAX_STEPS);
    memcpy(f->steps, steps, (size_t)n * sizeof(*steps));
    f->nsteps = n;
    fake_listen(f, true);
    assert_int_equal(pthread_create(&f->thread, NULL, srv_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
    if (f->thread != 0)
        pthread_join(f->thread, NULL);
    close(f->lfd);
    unlink(f->path);
    rmdir(f->dir);
}

/* A fake daemon serving a script, a handle connected to it, the last
 * call's result (ours to put) and error. */
struct session {
    struct fake f;
    struct umdev_ctl *c;
    struct json_object *r;
    struct umdev_ctl_error e;
};

#define OPEN(s, steps)                                                         \
    open_session((s), (steps), (int)(sizeof(steps) / sizeof((steps)[0])))

static void
open_session(struct session *s, const struct step *steps, int n)
{
    fake_start(&s->f, steps, n);
    s->r = NULL;
    assert_int_equal(umdev_ctl_connect(s->f.path, 1000, &s->c), 0);
    assert_non_null(s->c);
}

/* Call @cmd with @args (borrowed, may be NULL); the result in s->r. */
static int
call_args(struct session *s, const char *cmd, struct json_object *args,
          int timeout_ms)
{
    json_object_put(s->r);
    s->r = NULL;
    return umdev_ctl_call(s->c, cmd, args, timeout_ms, &s->r, &s->e);
}

static int
call(struct session *s, const char *cmd)
{
    return call_args(s, cmd, NULL, 1000);
}

/* The string @key of the last result. */
static const char *
result_str(struct session *s, const char *key)
{
    struct json_object *v;

    assert_non_null(s->r);
    assert_true(json_object_object_get_ex(s->r, key, &v));
    return json_object_get_string(v);
}

static void
close_session(struct session *s)
{
    json_object_put(s->r);
    umdev_ctl_close(s->c);
    fake_stop(&s->f);
}

static int64_t
elapsed_ms(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - since->tv_sec) * 1000 +
           (now.tv_nsec - since->tv_nsec) / 1000000;
}

#define OK_EMPTY "{\"version\":1,\"id\":@ID,\"ok\":true,\"result\":{}}\n"

/* ---- Tests */

static void
test_default_path(void **state)
{
    char buf[256], tiny[8];

    (void)state;
    unsetenv("UMDEV_CONTROL");
    unsetenv("UMDEV_RUNDIR");
    assert_int_equal(umdev_ctl_default_path(buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/umdev/control");
    setenv("UMDEV_RUNDIR", "/tmp/rd", 1);
    assert_int_equal(umdev_ctl_default_path(buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/tmp/rd/control");
    /* UMDEV_CONTROL wins over UMDEV_RUNDIR. */
    setenv("UMDEV_CONTROL", "/tmp/ctl", 1);
    assert_int_equal(umdev_ctl_default_path(buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/tmp/ctl");
    assert_int_equal(umdev_ctl_default_path(tiny, sizeof(tiny)), -ENAMETOOLONG);
    unsetenv("UMDEV_CONTROL");
    unsetenv("UMDEV_RUNDIR");
}

static void
test_connect_failures(void **state)
{
    struct umdev_ctl *c = (struct umdev_ctl *)1;
    char path[300];
    struct fake f;

    (void)state;
    memset(path, 'a', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(umdev_ctl_connect(path, 100, &c), -ENAMETOOLONG);
    assert_null(c);
    assert_int_equal(umdev_ctl_connect("/nonexistent/umdev/control", 100, &c),
                     -ENOENT);
    /* Bound, not listening: nobody home. */
    memset(&f, 0, sizeof(f));
    fake_listen(&f, false);
    assert_int_equal(umdev_ctl_connect(f.path, 100, &c), -ECONNREFUSED);
    assert_null(c);
    fake_stop(&f);
}

/* A listener that accepts nobody: once its backlog is full, connect
 * waits for the timeout, then gives up. */
static void
test_connect_timeout(void **state)
{
    struct umdev_ctl *c[4] = { NULL };
    struct timespec t0;
    struct fake f;
    int i, rc = 0;

    (void)state;
    memset(&f, 0, sizeof(f));
    fake_listen(&f, true);
    for (i = 0; i < 4 && rc == 0; i++) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = umdev_ctl_connect(f.path, 150, &c[i]);
    }
    assert_int_equal(rc, -ETIMEDOUT);
    assert_true(elapsed_ms(&t0) >= 140);
    assert_true(elapsed_ms(&t0) < 2000);
    for (i = 0; i < 4; i++)
        umdev_ctl_close(c[i]);
    fake_stop(&f);
}

static void
test_call_result(void **state)
{
    static const struct step steps[] = {
        { .reply = "{\"version\":1,\"id\":@ID,\"ok\":true,"
                   "\"result\":{\"daemon\":\"0.1.0\",\"protocol\":1}}\n" },
        { .reply = OK_EMPTY },
    };
    struct json_object *args = json_object_new_object();
    struct session s;

    (void)state;
    OPEN(&s, steps);
    assert_int_equal(call(&s, "version"), 0);
    assert_string_equal(result_str(&s, "daemon"), "0.1.0");
    assert_string_equal(s.f.last_cmd, "version");
    assert_string_equal(s.f.last_args, "{}");
    /* @args is borrowed: still ours afterwards. */
    json_object_object_add(args, "uuid", json_object_new_string("a/b"));
    assert_int_equal(call_args(&s, "info", args, 1000), 0);
    assert_int_equal(json_object_put(args), 1);
    close_session(&s);
    assert_int_equal(s.f.requests, 2);
    assert_int_equal(s.f.bad_requests, 0);
    assert_string_equal(s.f.last_cmd, "info");
    assert_string_equal(s.f.last_args, "{\"uuid\":\"a\\/b\"}");
}

static void
test_call_bad_args(void **state)
{
    static const struct step steps[] = { { .reply = OK_EMPTY } };
    struct json_object *arr = json_object_new_array();
    struct session s;

    (void)state;
    OPEN(&s, steps);
    assert_int_equal(call(&s, NULL), -EINVAL);
    assert_int_equal(s.e.err, EINVAL);
    assert_int_equal(call_args(&s, "list", arr, 1000), -EINVAL);
    /* Nothing was sent: the connection still works. */
    assert_int_equal(call(&s, "list"), 0);
    json_object_put(arr);
    close_session(&s);
    assert_int_equal(s.f.requests, 1);
}

/* A refusal is the daemon's error object, not a failure of ours, and
 * the connection stays up. */
static void
test_refused(void **state)
{
    static const struct step steps[] = {
        { .reply = "{\"version\":1,\"id\":@ID,\"ok\":false,\"error\":"
                   "{\"errno\":17,\"code\":\"EEXIST\",\"message\":"
                   "\"instance x is already defined\"}}\n" },
        { .reply = OK_EMPTY },
    };
    struct session s;

    (void)state;
    OPEN(&s, steps);
    assert_int_equal(call(&s, "define"), -EREMOTEIO);
    assert_null(s.r);
    assert_int_equal(s.e.err, EEXIST);
    assert_string_equal(s.e.code, "EEXIST");
    assert_string_equal(s.e.message, "instance x is already defined");
    assert_int_equal(call(&s, "list"), 0);
    close_session(&s);
}

/* Each of these breaks the protocol: -EPROTO with a reason, and the
 * handle refuses further use. */
static void
test_malformed(void **state)
{
    static const char *const bad[] = {
        "not json\n",
        "[1,2]\n",
        "{}\n",
        "{\"version\":2,\"id\":@ID,\"ok\":true,\"result\":{}}\n",
        "{\"version\":1,\"ok\":true,\"result\":{}}\n",
        "{\"version\":1,\"id\":null,\"ok\":true,\"result\":{}}\n",
        "{\"version\":1,\"id\":null,\"ok\":false,\"error\":{\"errno\":11}}\n",
        "{\"version\":1,\"id\":\"@ID\",\"ok\":true,\"result\":{}}\n",
        "{\"version\":1,\"id\":7,\"ok\":true,\"result\":{}}\n",
        "{\"version\":1,\"id\":@ID,\"ok\":1,\"result\":{}}\n",
        "{\"version\":1,\"id\":@ID,\"ok\":true}\n",
        "{\"version\":1,\"id\":@ID,\"ok\":true,\"result\":[]}\n",
        "{\"version\":1,\"id\":@ID,\"ok\":false}\n",
        "{\"version\":1,\"id\":@ID,\"ok\":false,\"error\":{\"errno\":0,"
        "\"code\":\"E\",\"message\":\"m\"}}\n",
        "{\"version\":1,\"id\":@ID,\"ok\":false,\"error\":{\"errno\":5,"
        "\"code\":\"EIO\"}}\n",
        "{\"version\":1,\"id\":@ID,\"ok\":true,\"result\":{}} trailing\n",
        "{\"version\":1,\"id\":@ID,\"ok\":true,\"result\":{\"a\":\n",
    };
    size_t i;
    int rc;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct step steps[] = { { .reply = bad[i] } };
        struct session s;

        OPEN(&s, steps);
        rc = call(&s, "list");
        if (rc != -EPROTO)
            fail_msg("reply %zu '%s': %d, expected -EPROTO", i, bad[i], rc);
        assert_null(s.r);
        assert_int_equal(s.e.err, EPROTO);
        assert_string_equal(s.e.code, "");
        assert_non_null(strstr(s.e.message, "malformed response from umdevd"));
        assert_int_equal(call(&s, "list"), -ENOTCONN);
        assert_non_null(strstr(s.e.message, "malformed"));
        close_session(&s);
        assert_int_equal(s.f.requests, 1);
    }
}

/* An embedded NUL ends the JSON text before the line does. */
static void
test_nul_in_line(void **state)
{
    static const char line[] =
        "{\"version\":1,\"id\":1,\"ok\":true,\"result\":{}}\0{}\n";
    const struct step steps[] = {
        { .reply = line, .reply_len = sizeof(line) - 1 },
    };
    struct session s;

    (void)state;
    OPEN(&s, steps);
    assert_int_equal(call(&s, "list"), -EPROTO);
    assert_non_null(strstr(s.e.message, "not one JSON value"));
    close_session(&s);
}

/* Far more than a socket buffer holds arrives in many reads. */
static void
test_large_result(void **state)
{
    static const struct step steps[] = { { .big = true },
                                         { .reply = OK_EMPTY } };
    struct session s;

    (void)state;
    OPEN(&s, steps);
    assert_int_equal(call_args(&s, "list", NULL, 5000), 0);
    assert_true(strlen(result_str(&s, "s")) > BIG_RESULT - 100);
    assert_int_equal(call(&s, "list"), 0);
    close_session(&s);
}

static void
test_oversized(void **state)
{
    static const struct step steps[] = { { .endless = true } };
    struct session s;

    (void)state;
    OPEN(&s, steps);
    assert_int_equal(call_args(&s, "list", NULL, 10000), -EMSGSIZE);
    assert_int_equal(s.e.err, EMSGSIZE);
    assert_non_null(strstr(s.e.message, "longer than"));
    close_session(&s);
}

/* The daemon dies half-way through its answer, or before it. */
static void
test_dies_mid_request(void **state)
{
    static const struct step half[] = {
        { .reply = "{\"version\":1,\"id\":@ID,\"ok\":", .hang_up = true },
    };
    static const struct step none[] = { { .hang_up = true } };
    const struct step *scripts[] = { half, none };
    size_t i;

    (void)state;
    for (i = 0; i < 2; i++) {
        struct session s;

        open_session(&s, scripts[i], 1);
        assert_int_equal(call(&s, "stop"), -ECONNRESET);
        assert_string_equal(s.e.message, "umdevd closed the connection");
        assert_int_equal(call(&s, "stop"), -ENOTCONN);
        close_session(&s);
    }
}

/* Sending to a daemon that is gone is -EPIPE, never SIGPIPE. */
static void
test_send_to_dead_peer(void **state)
{
    static const struct step steps[] = { { .no_read = true, .hang_up = true } };
    struct session s;
    int rc;

    (void)state;
    OPEN(&s, steps);
    pthread_join(s.f.thread, NULL);
    s.f.thread = 0;
    rc = call(&s, "list");
    assert_true(rc == -EPIPE || rc == -ECONNRESET);
    close_session(&s);
}

/* The daemon turns the whole connection away ("id": null, docs/CONTROL.md
 * "Limits"): its reason is the answer, whether it came before the request
 * was sent (the send fails) or after; the handle is done with. */
static void
test_connection_refused(void **state)
{
#define REFUSAL                                                                \
    "{\"version\":1,\"id\":null,\"ok\":false,\"error\":{\"errno\":11,"         \
    "\"code\":\"EAGAIN\",\"message\":\"uid 65534 has 32 control "              \
    "connections open\"}}\n"
    static const struct step before[] = {
        { .no_read = true, .reply = REFUSAL, .hang_up = true },
    };
    static const struct step after[] = {
        { .reply = REFUSAL, .hang_up = true },
    };
    const struct step *scripts[] = { before, after };
    size_t i;

    (void)state;
    for (i = 0; i < 2; i++) {
        struct session s;

        open_session(&s, scripts[i], 1);
        if (scripts[i] == before) {
            pthread_join(s.f.thread, NULL);
            s.f.thread = 0;
        }
        assert_int_equal(call(&s, "list"), -EREMOTEIO);
        assert_null(s.r);
        assert_int_equal(s.e.err, EAGAIN);
        assert_string_equal(s.e.code, "EAGAIN");
        assert_string_equal(s.e.message,
                            "uid 65534 has 32 control connections open");
        assert_int_equal(call(&s, "list"), -ENOTCONN);
        assert_non_null(strstr(s.e.message, "uid 65534 has 32"));
        close_session(&s);
    }
#undef REFUSAL
}

/* A call that times out leaves its request outstanding; the next call
 * drops that late answer and gets its own. */
static void
test_timeout_then_late_answer(void **state)
{
    static const struct step steps[] = {
        { .delay_ms = 1000,
          .reply = "{\"version\":1,\"id\":@ID,\"ok\":true,"
                   "\"result\":{\"n\":\"late\"}}\n" },
        { .reply = "{\"version\":1,\"id\":@ID,\"ok\":true,"
                   "\"result\":{\"n\":\"mine\"}}\n" },
    };
    struct timespec t0;
    struct session s;

    (void)state;
    OPEN(&s, steps);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(call_args(&s, "stats", NULL, 100), -ETIMEDOUT);
    assert_true(elapsed_ms(&t0) >= 90);
    /* Well before the answer (a loaded machine may be slow). */
    assert_true(elapsed_ms(&t0) < 900);
    assert_null(s.r);
    assert_int_equal(call_args(&s, "stats", NULL, 5000), 0);
    assert_string_equal(result_str(&s, "n"), "mine");
    close_session(&s);
}

/* Several requests in flight on one connection, answered in order. */
static void
test_pipelined(void **state)
{
    static const struct step steps[] = {
        { .reply = OK_EMPTY },
        { .reply = "{\"version\":1,\"id\":@ID,\"ok\":true,"
                   "\"result\":{\"n\":\"2\"}}\n" },
        { .reply = "{\"version\":1,\"id\":@ID,\"ok\":false,\"error\":"
                   "{\"errno\":2,\"code\":\"ENOENT\",\"message\":\"no\"}}\n" },
        { .reply = OK_EMPTY },
    };
    struct pollfd p = { .events = POLLIN };
    struct session s;
    int64_t id[3];
    int i;

    (void)state;
    OPEN(&s, steps);
    for (i = 0; i < 3; i++)
        assert_int_equal(umdev_ctl_send(s.c, "list", NULL, 1000, &id[i], &s.e),
                         0);
    assert_true(id[0] < id[1] && id[1] < id[2]);
    p.fd = umdev_ctl_fd(s.c);
    assert_int_equal(poll(&p, 1, 1000), 1);
    assert_int_equal(umdev_ctl_recv(s.c, id[1], 1000, &s.r, &s.e), 0);
    assert_string_equal(result_str(&s, "n"), "2");
    /* id[0]'s answer was dropped on the way to id[1]'s. */
    assert_int_equal(umdev_ctl_recv(s.c, id[0], 1000, NULL, &s.e), -EINVAL);
    assert_int_equal(umdev_ctl_recv(s.c, id[2], 1000, NULL, &s.e), -EREMOTEIO);
    assert_string_equal(s.e.code, "ENOENT");
    assert_int_equal(umdev_ctl_recv(s.c, id[2], 1000, NULL, &s.e), -EINVAL);
    assert_int_equal(umdev_ctl_recv(s.c, id[2] + 1, 1000, NULL, &s.e), -EINVAL);
    assert_int_equal(call(&s, "list"), 0);
    close_session(&s);
    assert_int_equal(s.f.bad_requests, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_call_result),
        cmocka_unit_test(test_call_bad_args),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_nul_in_line),
        cmocka_unit_test(test_large_result),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_dies_mid_request),
        cmocka_unit_test(test_send_to_dead_peer),
        cmocka_unit_test(test_timeout_then_late_answer),
        cmocka_unit_test(test_pipelined),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
