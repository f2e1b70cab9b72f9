/*
 * The admission gate (admission.h). For each pending plug-in type, in
 * registration order, one at a time: fork and exec
 *
 *     umdevctl --control CONTROL --json audit TYPE --conformance
 *              --fuzz-seconds N
 *
 * read its stdout (the audit document) and stderr (why it could not run)
 * from the loop, bounded in size and time, and turn the document into the
 * type's verdict: admitted when every criterion passed, refused otherwise,
 * with the failed criteria and their evidence. An audit that cannot run
 * refuses the type too: nothing unaudited is offered.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "admission.h"
#include "parents.h"

struct admission {
    struct parent_type *type; /* the one being audited, or NULL */
    const struct parent_entry *entry;
    pid_t pid;
    int pidfd;
    int out_fd, err_fd; /* -1 once at EOF */
    int64_t timer;
    char *out;
    size_t out_len, out_cap;
    char err[1024];
    size_t err_len;
};

static void run_next(struct daemon *d);

int
admission_create(struct daemon *d)
{
    struct admission *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return -ENOMEM;
    a->pidfd = a->out_fd = a->err_fd = -1;
    d->admission = a;
    return 0;
}

/* Forget the audit in progress (killing it if it still runs). */
static void
reset(struct daemon *d)
{
    struct admission *a = d->admission;

    if (a->pidfd >= 0) {
        pidfd_send_signal(a->pidfd, SIGKILL, NULL, 0);
        close(a->pidfd);
    }
    if (a->out_fd >= 0) {
        umdev_loop_del(d->loop, a->out_fd);
        close(a->out_fd);
    }
    if (a->err_fd >= 0) {
        umdev_loop_del(d->loop, a->err_fd);
        close(a->err_fd);
    }
    umdev_loop_timer_cancel(d->loop, a->timer);
    free(a->out);
    memset(a, 0, sizeof(*a));
    a->pidfd = a->out_fd = a->err_fd = -1;
}

void
admission_destroy(struct daemon *d)
{
    if (d->admission == NULL)
        return;
    reset(d);
    free(d->admission);
    d->admission = NULL;
}

bool
admission_peer_may_use(struct daemon *d, const char *type, pid_t pid)
{
    const struct admission *a = d->admission;

    return a != NULL && a->type != NULL && pid > 0 && a->pid == pid &&
           strcmp(a->type->name, type) == 0;
}

/* Append "; " and @s to @t's verdict, cutting it short rather than
 * overflowing. */
static void
verdict_add(struct parent_type *t, const char *s)
{
    size_t used = strlen(t->verdict);

    snprintf(t->verdict + used, sizeof(t->verdict) - used, "%s%s",
             used ? "; " : "", s);
}

/* The audit document's criteria into @t's verdict. Return: true when
 * every criterion passed. */
static bool
judge(struct parent_type *t, struct json_object *doc)
{
    struct json_object *crit = NULL;
    bool pass;
    size_t i, n;

    pass = json_str(doc, "verdict") != NULL &&
           strcmp(json_str(doc, "verdict"), "pass") == 0;
    if (!json_object_object_get_ex(doc, "criteria", &crit) ||
        !json_object_is_type(crit, json_type_array))
        return false;
    n = json_object_array_length(crit);
    for (i = 0; i < n; i++) {
        struct json_object *c = json_object_array_get_idx(crit, i), *id;
        const char *v = json_str(c, "verdict");
        char line[1024];

        if (v != NULL && strcmp(v, "pass") == 0)
            continue;
        json_object_object_get_ex(c, "id", &id);
        snprintf(line, sizeof(line), "criterion %d (%s) %s: %s",
                 json_object_get_int(id),
                 json_str(c, "name") ? json_str(c, "name") : "?",
                 v != NULL && strcmp(v, "not run") == 0 ? "did not run"
                                                        : "failed",
                 json_str(c, "evidence") ? json_str(c, "evidence") : "");
        verdict_add(t, line);
    }
    if (pass)
        snprintf(t->verdict, sizeof(t->verdict),
                 "all %zu criteria passed (umdevctl audit %s --conformance)", n,
                 t->name);
    return pass && n > 0;
}

/* The last line of what the audit wrote on stderr: its reason. */
static const char *
last_line(struct admission *a)
{
    char *end, *start;

    a->err[a->err_len] = '\0';
    end = a->err + a->err_len;
    while (end > a->err && (end[-1] == '\n' || end[-1] == ' '))
        *--end = '\0';
    start = strrchr(a->err, '\n');
    return start != NULL ? start + 1 : a->err;
}

static void
conclude(struct daemon *d, const char *failure)
{
    struct admission *a = d->admission;
    struct parent_type *t = a->type;
    struct json_object *doc = NULL;
    bool pass = false;

    t->verdict[0] = '\0';
    if (failure == NULL && a->out_len > 0) {
        a->out[a->out_len] = '\0';
        doc = json_tokener_parse(a->out);
    }
    if (failure != NULL) {
        snprintf(t->verdict, sizeof(t->verdict), "the admission audit %s",
                 failure);
    } else if (doc == NULL || !json_object_is_type(doc, json_type_object) ||
               !json_object_object_get_ex(doc, "criteria", NULL)) {
        /* umdevctl --json prints the daemon's error object when the
         * audit was refused (the device could not even be built). */
        snprintf(t->verdict, sizeof(t->verdict),
                 "the admission audit could not run: %s",
                 json_str(doc, "message") != NULL ? json_str(doc, "message")
                 : a->err_len > 0                 ? last_line(a)
                                                  : "it printed no audit");
    } else {
        pass = judge(t, doc);
    }
    json_object_put(doc);
    t->admission = pass ? ADMIT_PASSED : ADMIT_REFUSED;
    umdev_log(&d->log, pass ? LOG_NOTICE : LOG_ERR,
              "type %s (plug-in %s) %s: %s", t->name, a->entry->plugin,
              pass ? "admitted" : "refused admission", t->verdict);
    reset(d);
    if (pass && d->hooks.admitted != NULL)
        d->hooks.admitted(d, t->name);
    run_next(d);
}

/* Both pipes at EOF: the audit is over. */
static void
maybe_done(struct daemon *d)
{
    struct admission *a = d->admission;

    if (a->out_fd < 0 && a->err_fd < 0)
        conclude(d, NULL);
}

static void
on_out(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct daemon *d = opaque;
    struct admission *a = d->admission;
    ssize_t n;

    (void)events;
    if (a->out_cap - a->out_len < 4096) {
        size_t cap = a->out_cap ? a->out_cap * 2 : 16384;
        char *b;

        if (cap > ADMISSION_MAX_OUTPUT + 1) {
            conclude(d, "printed more than 4 MiB");
            return;
        }
        b = realloc(a->out, cap);
        if (b == NULL) {
            conclude(d, "ran out of memory");
            return;
        }
        a->out = b;
        a->out_cap = cap;
    }
    n = read(fd, a->out + a->out_len, a->out_cap - a->out_len - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        a->out_len += (size_t)n;
        return;
    }
    umdev_loop_del(loop, fd);
    close(fd);
    a->out_fd = -1;
    maybe_done(d);
}

static void
on_err(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct daemon *d = opaque;
    struct admission *a = d->admission;
    char buf[512];
    ssize_t n;

    (void)events;
    n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        /* Keep the tail: the reason is in the last line. */
        if ((size_t)n > sizeof(a->err) - 1 - a->err_len) {
            size_t drop = (size_t)n - (sizeof(a->err) - 1 - a->err_len);

            if (drop > a->err_len)
                drop = a->err_len;
            memmove(a->err, a->err + drop, a->err_len - drop);
            a->err_len -= drop;
        }
        if ((size_t)n > sizeof(a->err) - 1 - a->err_len)
            n = (ssize_t)(sizeof(a->err) - 1 - a->err_len);
        memcpy(a->err + a->err_len, buf, (size_t)n);
        a->err_len += (size_t)n;
        return;
    }
    umdev_loop_del(loop, fd);
    close(fd);
    a->err_fd = -1;
    maybe_done(d);
}

static void
on_timeout(struct umdev_loop *loop, void *opaque)
{
    struct daemon *d = opaque;

    (void)loop;
    d->admission->timer = 0;
    conclude(d, "did not finish in time");
}

static void __attribute__((noreturn))
exec_audit(struct daemon *d, const char *type, int out, int err)
{
    char fuzz[16];
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0 ||
        close_range(3, ~0u, 0) < 0)
        _exit(127);
    snprintf(fuzz, sizeof(fuzz), "%u", d->opts.admit_fuzz_seconds);
    execl(d->opts.umdevctl, d->opts.umdevctl, "--control", d->opts.control,
          "--json", "audit", type, "--conformance", "--fuzz-seconds", fuzz,
          (char *)NULL);
    fprintf(stderr, "cannot run %s: %s\n", d->opts.umdevctl, strerror(errno));
    _exit(127);
}

/* Start auditing @t. Return: 0, or -errno with the failure in @why. */
static int
launch(struct daemon *d, struct parent_type *t, const char **why)
{
    struct admission *a = d->admission;
    int out[2] = { -1, -1 }, err[2] = { -1, -1 };
    uint64_t ms;

    *why = "could not start";
    if (pipe2(out, O_CLOEXEC | O_NONBLOCK) < 0 ||
        pipe2(err, O_CLOEXEC | O_NONBLOCK) < 0)
        goto fail;
    a->pid = fork();
    if (a->pid < 0)
        goto fail;
    if (a->pid == 0)
        exec_audit(d, t->name, out[1], err[1]);
    close(out[1]);
    close(err[1]);
    a->out_fd = out[0];
    a->err_fd = err[0];
    /* Reaping happens only from the loop, so the pid is still ours. */
    a->pidfd = pidfd_open(a->pid, 0);
    ms = (uint64_t)d->opts.admit_fuzz_seconds * 1000u + ADMISSION_TIMEOUT_MS;
    a->timer = umdev_loop_timer_add(d->loop, ms, on_timeout, d);
    if (a->pidfd < 0 || a->timer < 0 ||
        umdev_loop_add(d->loop, a->out_fd, UMDEV_LOOP_IN, on_out, d) < 0 ||
        umdev_loop_add(d->loop, a->err_fd, UMDEV_LOOP_IN, on_err, d) < 0) {
        *why = "could not be watched";
        if (a->pidfd < 0)
            kill(a->pid, SIGKILL);
        return -EIO;
    }
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    a->pid = 0;
    return -errno;
}

static void
run_next(struct daemon *d)
{
    struct admission *a = d->admission;
    struct parent_entry *e;
    size_t i;

    if (a->type != NULL || d->stopping)
        return;
    for (e = d->parents->list; e != NULL; e = e->next) {
        for (i = 0; i < e->drv->ntypes; i++) {
            struct parent_type *t = &e->types[i];
            const char *why;

            if (t->admission != ADMIT_PENDING)
                continue;
            a->type = t;
            a->entry = e;
            umdev_log(&d->log, LOG_NOTICE,
                      "type %s (plug-in %s): admission audit started", t->name,
                      e->plugin);
            if (launch(d, t, &why) < 0)
                conclude(d, why);
            return;
        }
    }
}

void
admission_start(struct daemon *d)
{
    run_next(d);
}
