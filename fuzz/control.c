/*
 * libFuzzer target: umdevd's control protocol (docs/CONTROL.md), from the
 * bytes a client writes on the control socket to the answers: framing
 * and request checks (daemon/control.c), every command's argument checks
 * and effects (daemon/handlers.c), definitions written and removed
 * (daemon/defs.c), instances added, started and removed
 * (daemon/supervisor.c).
 *
 * One daemon serves the whole run: the built-in parents, its loop, its
 * control socket, a state directory under /dev/shm (or TMPDIR). Each
 * input is one client connection. No process is ever started: the run
 * directory's name is longer than a socket path may be, so a start fails
 * (with its resources claimed and released) just before the worker would
 * be forked, and audits meet the stand-in of fuzz/daemon_child.c.
 *
 * Oracles, per input:
 *  - every complete line gets exactly one answer, in order, with the
 *    request's id, {"version": 1, "ok": ...} and, when refused, an error
 *    with a message; a line that is not a JSON object gets one error and
 *    ends the connection;
 *  - when the client is gone: no waiter, no claimed resource (every type
 *    offers what it offered at start), no descriptor left open;
 *  - the state directory holds exactly the defined instances, each file
 *    loading back (defs_load_text) to the instance's configuration.
 * Then every instance and definition is removed, for the next input.
 *
 * Input:
 *   byte 0  bits 0-3: the client writes in pieces of 2^n bytes, the
 *           daemon's loop turning between them (partial lines);
 *   rest    the bytes the client writes (at most 64 KiB); then it shuts
 *           down its side and reads everything until the daemon closes.
 * fuzz/corpus/control/ holds sessions of every command, valid and not.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "control.h"
#include "defs.h"
#include "handlers.h"
#include "kit_util.h"
#include "parents.h"
#include "supervisor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Answers to a run's worth of input: more is a daemon gone wrong. */
#define MAX_OUT (8u << 20)
/* Loop turns a piece may take before the harness calls it a hang. */
#define MAX_TURNS 100000

static struct kit_log fuzz_log;
static struct daemon daemon_obj;
static char base[PATH_MAX];
/* What each type offers with nothing started, in registry order. */
static uint32_t *avail_start;
static size_t ntypes;

/* Remove @path and everything below it. */
static void
rm_tree(const char *path)
{
    DIR *dir = opendir(path);
    struct dirent *e;

    if (dir == NULL) {
        unlink(path);
        return;
    }
    while ((e = readdir(dir)) != NULL) {
        char sub[PATH_MAX];

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rm_tree(sub);
    }
    closedir(dir);
    rmdir(path);
}

static void
cleanup(void)
{
    rm_tree(base);
}

static void
setup(void)
{
    struct daemon *d = &daemon_obj;
    const char *tmp = getenv("TMPDIR");
    struct stat st;
    size_t i;

    kit_log_init(&fuzz_log, "umdevd", "UMDEV_FUZZ_VERBOSE");
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode))
        tmp = "/dev/shm"; /* fsync of each definition costs nothing */
    snprintf(base, sizeof(base), "%s/umdev-fuzz-control.XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(base) == NULL)
        abort();
    atexit(cleanup);
    d->log = fuzz_log.logger;
    d->signal_fd = -1;
    d->opts.manage_gid = (gid_t)-1;
    d->opts.log_level = LOG_DEBUG;
    /* The run directory's name is longer than a socket path may be (108),
     * so no worker starts. */
    if (snprintf(d->opts.statedir, sizeof(d->opts.statedir), "%s/state",
                 base) >= (int)sizeof(d->opts.statedir) ||
        snprintf(d->opts.control, sizeof(d->opts.control), "%s/ctl", base) >=
            (int)sizeof(d->opts.control) ||
        snprintf(d->opts.rundir, sizeof(d->opts.rundir), "%s/run-%0100d", base,
                 0) >= (int)sizeof(d->opts.rundir))
        abort();
    if (mkdir(d->opts.rundir, 0755) < 0 || mkdir(d->opts.statedir, 0755) < 0)
        abort();
    if (umdev_loop_create(&d->loop) < 0 || mdev_create(&d->mdev) < 0 ||
        parents_create(d, &d->parents) < 0)
        abort();
    handlers_init(d);
    if (control_listen(d) < 0)
        abort();
    ntypes = mdev_type_count(d->mdev);
    avail_start = calloc(ntypes + 1, sizeof(*avail_start));
    if (avail_start == NULL)
        abort();
    for (i = 0; i < ntypes; i++) {
        struct mdev_type_info t;

        mdev_type_get(d->mdev, i, &t);
        avail_start[i] = t.available_instances;
    }
}

static int
client_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
                 daemon_obj.opts.control) >= (int)sizeof(sa.sun_path))
        abort();
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        abort();
    return fd;
}

/* What the client has read: the daemon's answers. */
struct answers {
    char *buf;
    size_t len;
    bool eof;
};

static void
client_read(int fd, struct answers *a)
{
    for (;;) {
        ssize_t n;

        if (a->len == MAX_OUT) {
            fprintf(stderr, "fuzz_control: more than %u bytes of answers\n",
                    MAX_OUT);
            abort();
        }
        n = recv(fd, a->buf + a->len, MAX_OUT - a->len, 0);
        if (n > 0) {
            a->len += (size_t)n;
            continue;
        }
        if (n == 0)
            a->eof = true;
        else if (errno != EAGAIN && errno != EINTR)
            a->eof = true; /* reset by the daemon: also its end */
        return;
    }
}

/* Turn the daemon's loop until nothing is left to do right now. */
static void
turn(void)
{
    int i;

    for (i = 0; umdev_loop_run_once(daemon_obj.loop, 0) > 0; i++) {
        if (i == MAX_TURNS) {
            fprintf(stderr, "fuzz_control: the daemon's loop never rests\n");
            abort();
        }
    }
}

/* One answer line must answer request @id. */
static void
check_answer(const char *line, struct json_object *id)
{
    struct json_object *r = json_tokener_parse(line), *v, *e;

    if (r == NULL || !json_object_is_type(r, json_type_object)) {
        fprintf(stderr, "fuzz_control: answer is not a JSON object: %s\n",
                line);
        abort();
    }
    FUZZ_CHECK(json_object_object_get_ex(r, "version", &v));
    FUZZ_CHECK_EQ(json_object_get_int(v), UMDEVD_PROTOCOL);
    v = NULL;
    json_object_object_get_ex(r, "id", &v);
    /* The id as the daemon's JSON library prints it: json-c takes "2e"
     * for the double 2, which goes back as 2, an int to the reader. */
    if (strcmp(json_object_to_json_string(v), json_object_to_json_string(id)) !=
        0) {
        fprintf(stderr, "fuzz_control: answer %s for request id %s\n", line,
                json_object_to_json_string(id));
        abort();
    }
    FUZZ_CHECK(json_object_object_get_ex(r, "ok", &v));
    FUZZ_CHECK(json_object_is_type(v, json_type_boolean));
    if (json_object_get_boolean(v)) {
        FUZZ_CHECK(json_object_object_get_ex(r, "result", &v));
        FUZZ_CHECK(json_object_is_type(v, json_type_object));
    } else {
        FUZZ_CHECK(json_object_object_get_ex(r, "error", &e));
        FUZZ_CHECK(json_object_object_get_ex(e, "errno", &v));
        FUZZ_CHECK(json_object_get_int(v) > 0);
        FUZZ_CHECK(json_object_object_get_ex(e, "message", &v));
        FUZZ_CHECK(json_object_get_string_len(v) > 0);
    }
    json_object_put(r);
}

/*
 * The request a line of @n bytes holds, as docs/CONTROL.md defines one
 * (written here again, not taken from the daemon: this is the oracle):
 * one JSON object and nothing after it but blanks, no NUL byte. NULL for
 * anything else, which the daemon answers once and then hangs up.
 */
static struct json_object *
request_object(const char *p, size_t n)
{
    struct json_tokener *tok;
    struct json_object *o;
    size_t end = 0;

    if (memchr(p, '\0', n) != NULL)
        return NULL;
    tok = json_tokener_new();
    if (tok == NULL)
        abort();
    o = json_tokener_parse_ex(tok, p, (int)n);
    if (o != NULL && json_tokener_get_error(tok) == json_tokener_success)
        end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return NULL;
    }
    for (; end < n; end++) {
        if (p[end] != ' ' && p[end] != '\t' && p[end] != '\r') {
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}

/*
 * The answers in @a against the requests in @req (@len bytes): one per
 * complete line, in order, until a line that is not a JSON object.
 */
static void
check_answers(const uint8_t *req, size_t len, const struct answers *a)
{
    const char *out = a->buf, *out_end = a->buf + a->len;
    size_t off = 0;

    while (off < len) {
        const uint8_t *nl = memchr(req + off, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - (req + off)) : 0;
        struct json_object *q, *id = NULL;
        const char *onl;
        char *line;

        if (nl == NULL)
            break; /* an unfinished line is never answered */
        q = request_object((const char *)req + off, n);
        off += n + 1;
        if (q != NULL && json_object_is_type(q, json_type_object))
            json_object_object_get_ex(q, "id", &id);
        onl = memchr(out, '\n', (size_t)(out_end - out));
        if (onl == NULL) {
            fprintf(stderr,
                    "fuzz_control: request %zu bytes in got no "
                    "answer\n",
                    off);
            abort();
        }
        line = strndup(out, (size_t)(onl - out));
        if (line == NULL)
            abort();
        check_answer(line, id);
        free(line);
        out = onl + 1;
        if (q == NULL || !json_object_is_type(q, json_type_object)) {
            json_object_put(q);
            break; /* the daemon hangs up: the stream is lost */
        }
        json_object_put(q);
    }
    if (out != out_end) {
        fprintf(stderr,
                "fuzz_control: %zu bytes of answers nobody asked "
                "for: %.*s\n",
                (size_t)(out_end - out), (int)(out_end - out), out);
        abort();
    }
}

/* defs_load_text()'s callback for a written definition: it must be the
 * configuration of the instance it names. */
static int
found_saved(struct daemon *d, const char *parent, const char *uuid,
            struct json_object *obj, char *err, size_t errlen)
{
    struct instance *inst = inst_find(d, uuid);
    struct inst_config cfg;
    int rc;

    if (inst == NULL || !inst->defined) {
        fprintf(stderr,
                "fuzz_control: definition %s/%s of no defined "
                "instance\n",
                parent, uuid);
        abort();
    }
    rc = defs_from_json(d, parent, uuid, obj, &cfg, err, errlen);
    if (rc < 0)
        return rc;
    FUZZ_CHECK(strcmp(cfg.type, inst->cfg.type) == 0);
    FUZZ_CHECK_EQ(cfg.auto_start, inst->cfg.auto_start);
    FUZZ_CHECK_EQ(cfg.uid, inst->cfg.uid);
    FUZZ_CHECK_EQ(cfg.gid, inst->cfg.gid);
    FUZZ_CHECK_EQ(cfg.mode, inst->cfg.mode);
    FUZZ_CHECK(json_object_equal(cfg.attrs, inst->cfg.attrs));
    json_object_put(cfg.attrs);
    return 0;
}

/* Read a small definition file whole. */
static char *
slurp(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = malloc(65536 + 1);
    ssize_t n;

    if (fd < 0 || buf == NULL)
        abort();
    n = read(fd, buf, 65536);
    close(fd);
    if (n < 0)
        abort();
    buf[n] = '\0';
    return buf;
}

/* The state directory against the instances, then empty it. Return: the
 * number of definition files. */
static size_t
check_and_clear_state(void)
{
    struct daemon *d = &daemon_obj;
    DIR *top = opendir(d->opts.statedir);
    struct dirent *pe;
    size_t files = 0;

    if (top == NULL)
        abort();
    while ((pe = readdir(top)) != NULL) {
        char dir[PATH_MAX];
        struct dirent *fe;
        DIR *sub;

        if (pe->d_name[0] == '.')
            continue;
        if (snprintf(dir, sizeof(dir), "%s/%s", d->opts.statedir, pe->d_name) >=
            (int)sizeof(dir))
            abort();
        sub = opendir(dir);
        FUZZ_CHECK(sub != NULL);
        while ((fe = readdir(sub)) != NULL) {
            char path[PATH_MAX], err[512] = "";
            char *text;

            if (strcmp(fe->d_name, ".") == 0 || strcmp(fe->d_name, "..") == 0)
                continue;
            if (snprintf(path, sizeof(path), "%s/%s", dir, fe->d_name) >=
                (int)sizeof(path))
                abort();
            FUZZ_CHECK(fe->d_name[0] != '.'); /* no temporary left */
            text = slurp(path);
            if (defs_load_text(d, pe->d_name, fe->d_name, text, found_saved,
                               err, sizeof(err)) < 0) {
                fprintf(stderr, "fuzz_control: %s does not load: %s\n%s\n",
                        path, err, text);
                abort();
            }
            free(text);
            unlink(path);
            files++;
        }
        closedir(sub);
    }
    closedir(top);
    return files;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    static struct answers a;
    struct daemon *d = &daemon_obj;
    const struct instance *inst;
    size_t piece, off = 0, defined = 0, i;
    int fd, fds_before, turns;

    /* Far below the daemon's 1 MiB line limit, whose answer the line
     * oracle does not model. */
    if (size < 1 || size > 65536)
        return 0;
    if (!ready) {
        setup();
        a.buf = malloc(MAX_OUT);
        if (a.buf == NULL)
            abort();
        ready = true;
    }
    a.len = 0;
    a.eof = false;
    fds_before = fuzz_count_fds();
    piece = (size_t)1 << (data[0] & 15);
    data++;
    size--;

    fd = client_connect();
    turn(); /* accept */
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        ssize_t w = send(fd, data + off, n, MSG_NOSIGNAL);

        if (w < 0 && errno != EAGAIN)
            break; /* the daemon hung up (a line that is not JSON) */
        if (w > 0)
            off += (size_t)w;
        turn();
        client_read(fd, &a);
    }
    shutdown(fd, SHUT_WR);
    for (turns = 0; !a.eof; turns++) {
        if (turns == MAX_TURNS) {
            fprintf(stderr, "fuzz_control: the daemon never hung up\n");
            abort();
        }
        turn();
        client_read(fd, &a);
        if (!a.eof)
            umdev_loop_run_once(d->loop, 10);
    }
    close(fd);
    if (fuzz_log.print)
        fprintf(stderr, "answers:\n%.*s", (int)a.len, a.buf);
    check_answers(data, off, &a);

    /* The connection is gone: nothing may wait, nothing stay claimed. */
    FUZZ_CHECK(d->waiters == NULL);
    for (inst = d->instances; inst != NULL; inst = inst->next) {
        FUZZ_CHECK(!inst->claimed);
        FUZZ_CHECK_EQ(inst->state, ST_STOPPED);
        defined += inst->defined;
    }
    FUZZ_CHECK_EQ(check_and_clear_state(), defined);
    supervisor_free_all(d);
    for (i = 0; i < ntypes; i++) {
        struct mdev_type_info t;

        mdev_type_get(d->mdev, i, &t);
        FUZZ_CHECK_EQ(t.available_instances, avail_start[i]);
    }
    FUZZ_CHECK_EQ(fuzz_count_fds(), fds_before);
    return 0;
}
