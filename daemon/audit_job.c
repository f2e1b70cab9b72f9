/*
 * `audit` requests (docs/CONTROL.md): each runs in a forked child that
 * builds a throw-away device of the type through its parent driver, with
 * host endpoints in a private directory under RUNDIR, serves nothing,
 * runs audit_run() and writes the document to a pipe. The supervisor
 * reads the pipe from its loop, bounded in size and time, so a slow or
 * crashing device build never blocks it; SIGCHLD reaping (waitpid(-1) in
 * supervisor_reap) collects the child.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "audit.h"
#include "audit_job.h"
#include "parents.h"

struct audit_job {
    struct daemon *d;
    audit_done_fn *done;
    void *opaque;
    int pipe_fd;   /* read end, -1 once closed */
    int pidfd;     /* the child, for a kill that cannot hit a reused pid */
    int64_t timer; /* bounds the child's run */
    char *buf;
    size_t len, cap;
};

static void
job_free(struct audit_job *job)
{
    struct daemon *d = job->d;

    if (job->pipe_fd >= 0) {
        umdev_loop_del(d->loop, job->pipe_fd);
        close(job->pipe_fd);
    }
    umdev_loop_timer_cancel(d->loop, job->timer);
    if (job->pidfd >= 0)
        close(job->pidfd);
    free(job->buf);
    free(job);
}

void
audit_job_cancel(struct audit_job *job)
{
    if (job == NULL)
        return;
    if (job->pidfd >= 0)
        pidfd_send_signal(job->pidfd, SIGKILL, NULL, 0);
    job_free(job);
}

static void
finish(struct audit_job *job, int err, const char *msg,
       struct json_object *result)
{
    if (job->pidfd >= 0 && err != 0)
        pidfd_send_signal(job->pidfd, SIGKILL, NULL, 0);
    job->done(job->opaque, err, msg, result);
    job_free(job);
}

/* The child's last word: {"result": ...} or {"errno", "message"}. */
static void
child_output(struct audit_job *job)
{
    struct json_object *o, *v, *res;

    if (job->len == 0) {
        finish(job, -EIO,
               "the audit process died before answering (the device "
               "crashed while being built or audited)",
               NULL);
        return;
    }
    job->buf[job->len] = '\0';
    o = json_tokener_parse(job->buf);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        finish(job, -EIO, "the audit process answered garbage", NULL);
        return;
    }
    if (json_object_object_get_ex(o, "result", &res)) {
        finish(job, 0, NULL, json_object_get(res));
    } else {
        char msg[256];
        int err = EIO;

        if (json_object_object_get_ex(o, "errno", &v))
            err = json_object_get_int(v);
        if (err <= 0 || err > 4095)
            err = EIO;
        snprintf(msg, sizeof(msg), "%s",
                 json_object_object_get_ex(o, "message", &v)
                     ? json_object_get_string(v)
                     : "the audit failed");
        finish(job, -err, msg, NULL);
    }
    json_object_put(o);
}

static void
on_pipe(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct audit_job *job = opaque;
    ssize_t n;

    (void)loop;
    (void)events;
    if (job->cap - job->len < 4096) {
        size_t cap = job->cap ? job->cap * 2 : 16384;
        char *b;

        if (cap > AUDIT_MAX_OUTPUT + 1) {
            finish(job, -E2BIG, "the audit document is too large", NULL);
            return;
        }
        b = realloc(job->buf, cap);
        if (b == NULL) {
            finish(job, -ENOMEM, NULL, NULL);
            return;
        }
        job->buf = b;
        job->cap = cap;
    }
    n = read(fd, job->buf + job->len, job->cap - job->len - 1);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        child_output(job);
        return;
    }
    job->len += (size_t)n;
}

static void
on_timeout(struct umdev_loop *loop, void *opaque)
{
    struct audit_job *job = opaque;

    (void)loop;
    job->timer = 0;
    finish(job, -ETIMEDOUT, "the audit process did not answer within 30 s",
           NULL);
}

/* ---- the child --------------------------------------------------------- */

static void
child_write(int fd, struct json_object *o)
{
    const char *s = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t len = strlen(s), off = 0;

    while (off < len) {
        ssize_t n = write(fd, s + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

static void __attribute__((noreturn))
child_fail(int fd, int err, const char *what)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "errno", json_object_new_int(err));
    json_object_object_add(o, "message", json_object_new_string(what));
    child_write(fd, o);
    _exit(1);
}

/* Whatever a driver left in the private directory, then the directory. */
static void
remove_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    struct dirent *e;

    while (dp != NULL && (e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(dp), e->d_name, 0);
    }
    if (dp != NULL)
        closedir(dp);
    rmdir(dir);
}

static void __attribute__((noreturn))
child_run(struct daemon *d, const struct umdev_parent *drv, const char *type,
          const char *parent, const char *kit, int fd)
{
    struct umdev_instance inst = { .dev = NULL };
    struct umdev_instance_args args = { .type = type, .log = &d->log };
    struct umdev_loop *loop = NULL;
    struct json_object *o, *doc;
    char dir[PATH_MAX], uuid[MDEV_UUID_STR_LEN + 1], msg[256];
    char *text = NULL;
    bool all_pass = false;
    int rc;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "umdev-audit");
    /* Only the pipe and the standard streams: nothing of the daemon's. */
    if (dup2(fd, 3) < 0 || close_range(4, ~0u, 0) < 0)
        _exit(1);
    fd = 3;
    if (snprintf(dir, sizeof(dir), "%s/.audit-XXXXXX", d->opts.rundir) >=
            (int)sizeof(dir) ||
        mkdtemp(dir) == NULL)
        child_fail(fd, errno ? errno : ENAMETOOLONG,
                   "cannot make a private directory under RUNDIR");
    mdev_uuid_generate(uuid);
    rc = umdev_loop_create(&loop);
    args.uuid = uuid;
    args.rundir = dir;
    args.uid = geteuid();
    args.gid = getegid();
    args.loop = loop;
    if (rc == 0)
        rc = drv->ops->create(&args, &inst);
    if (rc == 0)
        rc = audit_run(inst.dev, inst.pci, kit, &text, &all_pass);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "cannot %s a %s device: %s",
                 inst.dev == NULL ? "build" : "audit", type, strerror(-rc));
        if (inst.dev != NULL)
            drv->ops->destroy(&inst);
        umdev_loop_destroy(loop);
        remove_dir(dir);
        child_fail(fd, -rc, msg);
    }
    drv->ops->destroy(&inst);
    umdev_loop_destroy(loop);
    remove_dir(dir);
    doc = json_tokener_parse(text);
    free(text);
    if (doc == NULL)
        child_fail(fd, EIO, "audit_run() produced invalid JSON");
    o = json_object_new_object();
    {
        struct json_object *r = json_object_new_object();

        json_object_object_add(r, "type", json_object_new_string(type));
        json_object_object_add(r, "parent", json_object_new_string(parent));
        json_object_object_add(r, "all_pass",
                               json_object_new_boolean(all_pass));
        json_object_object_add(r, "audit", doc);
        json_object_object_add(o, "result", r);
    }
    child_write(fd, o);
    _exit(0);
}

/* ---- the supervisor's side --------------------------------------------- */

int
audit_job_start(struct daemon *d, const char *type, const char *kit_json,
                audit_done_fn *done, void *opaque, struct audit_job **out,
                char *err, size_t errlen)
{
    const struct parent_entry *pe;
    struct mdev_type_info info;
    struct audit_job *job;
    int p[2];
    pid_t pid;

    *out = NULL;
    if (mdev_type_find(d->mdev, type, &info) < 0 ||
        (pe = parents_find(d->parents, info.parent)) == NULL) {
        snprintf(err, errlen, "unknown type '%s' (umdevctl types lists them)",
                 type);
        return -ENOENT;
    }
    job = calloc(1, sizeof(*job));
    if (job == NULL)
        return -ENOMEM;
    job->d = d;
    job->done = done;
    job->opaque = opaque;
    job->pidfd = -1;
    if (pipe2(p, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        free(job);
        return -EIO;
    }
    job->pipe_fd = p[0];
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork the audit process: %s",
                 strerror(errno));
        close(p[1]);
        job_free(job);
        return -EIO;
    }
    if (pid == 0)
        child_run(d, pe->drv, info.name, info.parent, kit_json, p[1]);
    close(p[1]);
    /* Reaping happens only from the loop, so the pid is still ours. */
    job->pidfd = pidfd_open(pid, 0);
    job->timer =
        umdev_loop_timer_add(d->loop, AUDIT_TIMEOUT_MS, on_timeout, job);
    if (job->pidfd < 0 || job->timer < 0 ||
        fcntl(job->pipe_fd, F_SETFL, O_NONBLOCK) < 0) {
        kill(pid, SIGKILL);
        job_free(job);
        snprintf(err, errlen, "cannot watch the audit process");
        return -EIO;
    }
    if (umdev_loop_add(d->loop, job->pipe_fd, UMDEV_LOOP_IN, on_pipe, job) <
        0) {
        pidfd_send_signal(job->pidfd, SIGKILL, NULL, 0);
        close(job->pipe_fd);
        job->pipe_fd = -1;
        job_free(job);
        snprintf(err, errlen, "cannot watch the audit process");
        return -EIO;
    }
    *out = job;
    return 0;
}
