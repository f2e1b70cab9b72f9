/*
 * `audit` requests (docs/CONTROL.md): each runs in a child process
 * (child.c) that builds a throw-away device of the type through its parent
 * driver, with host endpoints in a private directory under RUNDIR, serves
 * nothing, runs audit_run() and writes the document on its stdout, which
 * the supervisor collects from its loop, bounded in size and time, so a
 * slow or crashing device build never blocks it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "audit_job.h"
#include "child.h"
#include "parents.h"

struct audit_job {
    struct daemon *d;
    audit_done_fn *done;
    void *opaque;
    struct child *child;
    /* What the child needs, copied before the fork. */
    const struct umdev_parent *drv;
    char type[2 * MDEV_NAME_MAX + 2];
    char parent[MDEV_NAME_MAX + 1];
    char *kit;
};

static void
job_free(struct audit_job *job)
{
    free(job->kit);
    free(job);
}

void
audit_job_cancel(struct audit_job *job)
{
    if (job == NULL)
        return;
    child_cancel(job->child);
    job_free(job);
}

/* The child's last word: {"result": ...} or {"errno", "message"}. */
static void
child_done(void *opaque, const char *failure, const char *out, size_t len,
           const char *err_tail)
{
    struct audit_job *job = opaque;
    struct json_object *o = NULL, *v, *res;
    char msg[256];
    int err = EIO;

    (void)err_tail;
    if (failure != NULL) {
        snprintf(msg, sizeof(msg), "the audit process %s", failure);
        err = strstr(failure, "time") ? ETIMEDOUT : EIO;
    } else if (len == 0) {
        snprintf(msg, sizeof(msg),
                 "the audit process died before answering (the device "
                 "crashed while being built or audited)");
    } else if ((o = json_tokener_parse(out)) == NULL ||
               !json_object_is_type(o, json_type_object)) {
        snprintf(msg, sizeof(msg), "the audit process answered garbage");
    } else if (json_object_object_get_ex(o, "result", &res)) {
        job->done(job->opaque, 0, NULL, json_object_get(res));
        json_object_put(o);
        job_free(job);
        return;
    } else {
        if (json_object_object_get_ex(o, "errno", &v))
            err = json_object_get_int(v);
        if (err <= 0 || err > 4095)
            err = EIO;
        snprintf(msg, sizeof(msg), "%s",
                 json_str(o, "message") != NULL ? json_str(o, "message")
                                                : "the audit failed");
    }
    json_object_put(o);
    job->done(job->opaque, -err, msg, NULL);
    job_free(job);
}

/* ---- the child --------------------------------------------------------- */

/* Write @o on stdout, the pipe the supervisor reads. */
static void
child_write(struct json_object *o)
{
    const char *s = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t len = strlen(s), off = 0;

    while (off < len) {
        ssize_t n = write(STDOUT_FILENO, s + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

static void __attribute__((noreturn)) child_fail(int err, const char *what)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "errno", json_object_new_int(err));
    json_object_object_add(o, "message", json_object_new_string(what));
    child_write(o);
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

/* The audit process (child_main_fn): build, audit, answer, exit. */
static void
child_main(void *arg)
{
    const struct audit_job *job = arg;
    const struct umdev_parent *drv = job->drv;
    const char *type = job->type;
    struct daemon *d = job->d;
    struct umdev_instance inst = { .dev = NULL };
    struct umdev_instance_args args = { .type = type, .log = &d->log };
    struct umdev_loop *loop = NULL;
    struct json_object *o, *doc;
    char dir[PATH_MAX], uuid[MDEV_UUID_STR_LEN + 1], msg[256];
    char *text = NULL;
    bool all_pass = false;
    int rc;

    if (snprintf(dir, sizeof(dir), "%s/.audit-XXXXXX", d->opts.rundir) >=
            (int)sizeof(dir) ||
        mkdtemp(dir) == NULL)
        child_fail(errno ? errno : ENAMETOOLONG,
                   "cannot make a private directory under RUNDIR");
    mdev_uuid_generate(uuid);
    rc = umdev_loop_create(&loop);
    args.uuid = uuid;
    args.rundir = dir;
    /* Data a parent keeps (a backing file) lives and dies with this
     * throw-away device too. */
    args.datadir = dir;
    args.uid = geteuid();
    args.gid = getegid();
    args.loop = loop;
    if (rc == 0)
        rc = drv->ops->create(&args, &inst);
    if (rc == 0)
        rc = audit_run(inst.dev, inst.pci, job->kit, &text, &all_pass);
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "cannot %s a %s device: %s",
                 inst.dev == NULL ? "build" : "audit", type, strerror(-rc));
        if (inst.dev != NULL)
            drv->ops->destroy(&inst);
        umdev_loop_destroy(loop);
        remove_dir(dir);
        child_fail(-rc, msg);
    }
    drv->ops->destroy(&inst);
    umdev_loop_destroy(loop);
    remove_dir(dir);
    doc = json_tokener_parse(text);
    free(text);
    if (doc == NULL)
        child_fail(EIO, "audit_run() produced invalid JSON");
    o = json_object_new_object();
    {
        struct json_object *r = json_object_new_object();

        json_object_object_add(r, "type", json_object_new_string(type));
        json_object_object_add(r, "parent",
                               json_object_new_string(job->parent));
        json_object_object_add(r, "all_pass",
                               json_object_new_boolean(all_pass));
        json_object_object_add(r, "audit", doc);
        json_object_object_add(o, "result", r);
    }
    child_write(o);
    _exit(0);
}

/* ---- the supervisor's side --------------------------------------------- */

int
audit_job_start(struct daemon *d, const char *type, const char *kit_json,
                audit_done_fn *done, void *opaque, struct audit_job **out,
                char *err, size_t errlen)
{
    struct child_spec spec = {
        .name = "umdev-audit",
        .main = child_main,
        .timeout_ms = AUDIT_TIMEOUT_MS,
        .max_out = AUDIT_MAX_OUTPUT,
        .done = child_done,
    };
    const struct parent_entry *pe;
    struct mdev_type_info info;
    struct audit_job *job;
    int rc;

    *out = NULL;
    if (mdev_type_find(d->mdev, type, &info) < 0 ||
        (pe = parents_find(d->parents, info.parent)) == NULL) {
        snprintf(err, errlen, "unknown type '%s' (umdevctl types lists them)",
                 type);
        return -ENOENT;
    }
    job = calloc(1, sizeof(*job));
    if (job == NULL ||
        (kit_json != NULL && (job->kit = strdup(kit_json)) == NULL)) {
        free(job);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    job->d = d;
    job->done = done;
    job->opaque = opaque;
    job->drv = pe->drv;
    snprintf(job->type, sizeof(job->type), "%s", info.name);
    snprintf(job->parent, sizeof(job->parent), "%s", info.parent);
    spec.arg = spec.opaque = job;
    rc = child_start(d, &spec, &job->child, err, errlen);
    if (rc < 0) {
        job_free(job);
        return rc;
    }
    *out = job;
    return 0;
}
