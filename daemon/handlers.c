/*
 * The control commands (handlers.h, docs/CONTROL.md). A command that must
 * wait for a worker or an audit process leaves a waiter: the supervisor
 * (or the audit job) hands it back when the result is in, and the answer
 * goes out through daemon_hooks.respond.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admission.h"
#include "audit_job.h"
#include "callouts.h"
#include "defs.h"
#include "handlers.h"
#include "parents.h"
#include "supervisor.h"

/* A parked request. */
struct waiter {
    struct daemon *d;
    void *conn; /* NULL once the connection closed */
    struct json_object *id;
    bool want_stats;         /* an info request shaped as `stats` */
    struct audit_job *audit; /* the audit it waits for, or NULL */
    /* A management request is logged with its outcome (cmd NULL: a
     * read, not logged). */
    const char *cmd;
    char subject[2 * MDEV_NAME_MAX + 2];
    uid_t uid;
    pid_t pid;
    /* A management request with callouts (callouts.h): the run, whose
     * post event follows the answer; and, while its pre event runs, what
     * is needed to do the command afterwards (its table entry and a copy
     * of its arguments, the UUID a define or start chose included). */
    struct callout_run *run;
    size_t cmd_index;
    struct json_object *args;
    bool auto_start; /* the daemon's own start of an auto definition */
    /* The answer, held while the post callouts run. */
    int err;
    char msg[512];
    struct json_object *result;
    struct waiter *next;
};

/* One command being handled. */
struct cmd {
    struct daemon *d;
    struct ctl_request *rq;
    struct json_object *args;   /* an object */
    struct json_object *result; /* the answer when it is given at once */
    struct instance *inst;      /* args.uuid's, for the commands on one */
    char *err;                  /* why it was refused */
    size_t errlen;
    const char *name; /* the command, for the log */
    bool manage;      /* a management command: logged */
    /* What it acts on, for the log: the instance's UUID or the audited
     * type; "" until known. */
    char subject[2 * MDEV_NAME_MAX + 2];
    /* Checking before the pre callouts: the command goes up to where it
     * would change something, describes the device there (check_point)
     * and stops. */
    bool check_only;
    struct inst_config dev; /* what check_point saw; attrs owned */
    bool dev_set;
    /* The request resumed after its pre callouts: park() hands its
     * waiter back instead of making one. */
    struct waiter *w;
};

/*
 * One line per management request, with who sent it (SO_PEERCRED) and
 * how it ended: an audit trail of every change, at LOG_INFO, and at
 * LOG_NOTICE for refusals. A line about an instance starts with its
 * UUID, as the daemon's other lines do.
 */
static void
log_request(struct daemon *d, const char *cmd, const char *subject, uid_t uid,
            pid_t pid, int err, const char *msg)
{
    char uuid[MDEV_UUID_STR_LEN + 1];
    bool is_uuid = mdev_uuid_parse(subject, uuid) == 0;
    char who[64];

    snprintf(who, sizeof(who), "by uid %u pid %d", (unsigned int)uid, (int)pid);
    if (err == 0 && is_uuid)
        umdev_log(&d->log, LOG_INFO, "%s: %s %s: done", uuid, cmd, who);
    else if (err == 0)
        umdev_log(&d->log, LOG_INFO, "%s%s%s %s: done", cmd,
                  subject[0] ? " " : "", subject, who);
    else if (is_uuid)
        umdev_log(&d->log, LOG_NOTICE, "%s: %s %s: refused (%s): %s", uuid, cmd,
                  who, errno_name(err), msg);
    else
        umdev_log(&d->log, LOG_NOTICE, "%s%s%s %s: refused (%s): %s", cmd,
                  subject[0] ? " " : "", subject, who, errno_name(err), msg);
}

/* @c's subject: the instance a command names. */
static void
set_subject(struct cmd *c, const char *s)
{
    snprintf(c->subject, sizeof(c->subject), "%s", s);
}

static struct waiter *
waiter_new(struct daemon *d, const struct ctl_request *rq)
{
    struct waiter *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->d = d;
    w->conn = rq->conn;
    w->id = json_object_get(rq->id);
    w->next = d->waiters;
    d->waiters = w;
    return w;
}

static void
waiter_free(struct daemon *d, struct waiter *w)
{
    struct waiter **pp;

    for (pp = &d->waiters; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    json_object_put(w->id);
    json_object_put(w->args);
    json_object_put(w->result);
    callout_run_free(w->run);
    free(w);
}

/* Send @w's answer (taking @result) and forget it. */
static void
waiter_respond(struct daemon *d, struct waiter *w, int err, const char *msg,
               struct json_object *result)
{
    if (w->conn != NULL)
        d->hooks.respond(d, w->conn, w->id, err, msg, result);
    else
        json_object_put(result);
    waiter_free(d, w);
}

/* The post callouts are over: the answer they held back goes out. */
static void
post_done(void *opaque, int err, const char *msg)
{
    struct waiter *w = opaque;
    struct json_object *result = w->result;

    (void)err;
    (void)msg;
    w->result = NULL;
    waiter_respond(w->d, w, w->err, w->msg, result);
}

/*
 * @w's request is done: log how, and answer it (taking @result) and
 * forget it. With callouts the answer waits for the post event, as
 * mdevctl returns only after it: a client's next command never meets
 * the scripts of its last one still running.
 */
static void
waiter_answer(struct daemon *d, struct waiter *w, int err, const char *msg,
              struct json_object *result)
{
    struct callout_run *run = w->run;

    if (w->auto_start && err == 0)
        umdev_log(&d->log, LOG_INFO, "%s: auto-start: done", w->subject);
    else if (w->auto_start)
        umdev_log(&d->log, LOG_ERR, "%s: cannot start: %s", w->subject,
                  msg != NULL && msg[0] ? msg : strerror(-err));
    else if (w->cmd != NULL)
        log_request(d, w->cmd, w->subject, w->uid, w->pid, err,
                    msg != NULL && msg[0] ? msg : strerror(-err));
    w->run = NULL;
    if (run != NULL) {
        w->err = err;
        snprintf(w->msg, sizeof(w->msg), "%s", msg != NULL ? msg : "");
        w->result = result;
        if (callout_run_post(run, err == 0, post_done, w))
            return;
        w->result = NULL;
    }
    waiter_respond(d, w, err, msg, result);
}

void
handlers_conn_closed(struct daemon *d, void *conn)
{
    struct waiter *w, *next;

    for (w = d->waiters; w != NULL; w = next) {
        next = w->next;
        if (w->conn != conn)
            continue;
        if (w->audit != NULL) {
            audit_job_cancel(w->audit);
            waiter_free(d, w);
        } else {
            /* The supervisor still holds it; its answer goes nowhere. */
            w->conn = NULL;
        }
    }
    supervisor_lessee_gone(d, conn);
}

static struct json_object *
instance_result(const struct instance *inst)
{
    struct json_object *r = json_object_new_object();

    json_object_object_add(r, "instance", inst_to_json(inst));
    return r;
}

static struct json_object *
take(struct json_object *from, const char *key)
{
    struct json_object *v = NULL;

    if (from != NULL && json_object_object_get_ex(from, key, &v))
        return json_object_get(v);
    return NULL;
}

/* One region of a `stats` answer: its registers' counts, and their sums. */
static struct json_object *
stats_region(struct json_object *reg)
{
    struct json_object *o = json_object_new_object();
    struct json_object *list = json_object_new_array();
    struct json_object *trapped = NULL;
    int64_t reads = 0, writes = 0;
    size_t j;

    json_object_object_add(o, "index", take(reg, "index"));
    json_object_object_add(o, "name", take(reg, "name"));
    json_object_object_get_ex(reg, "trapped", &trapped);
    for (j = 0; trapped != NULL && j < json_object_array_length(trapped); j++) {
        struct json_object *t = json_object_array_get_idx(trapped, j);
        struct json_object *e = json_object_new_object(), *v;
        int64_t rd = 0, wr = 0;

        if (json_object_object_get_ex(t, "reads", &v))
            rd = json_object_get_int64(v);
        if (json_object_object_get_ex(t, "writes", &v))
            wr = json_object_get_int64(v);
        reads += rd;
        writes += wr;
        json_object_object_add(e, "name", take(t, "name"));
        json_object_object_add(e, "offset", take(t, "offset"));
        json_object_object_add(e, "reads", json_object_new_int64(rd));
        json_object_object_add(e, "writes", json_object_new_int64(wr));
        json_object_array_add(list, e);
    }
    json_object_object_add(o, "reads", json_object_new_int64(reads));
    json_object_object_add(o, "writes", json_object_new_int64(writes));
    json_object_object_add(o, "registers", list);
    return o;
}

/*
 * A `stats` answer from the worker's info reply: the traffic counters,
 * the refusals, and per region the trapped registers' reads and writes
 * (summed per region too), without the profile's descriptions.
 */
static struct json_object *
stats_result(const struct instance *inst, struct json_object *extra)
{
    struct json_object *r = json_object_new_object();
    struct json_object *dev = NULL, *prof = NULL, *regs, *out, *ctr;
    size_t i;

    if (extra != NULL)
        json_object_object_get_ex(extra, "device", &dev);
    if (dev != NULL)
        json_object_object_get_ex(dev, "profile", &prof);
    json_object_object_add(r, "uuid", json_object_new_string(inst->cfg.uuid));
    json_object_object_add(r, "parent",
                           json_object_new_string(inst_live(inst)->parent));
    json_object_object_add(r, "type",
                           json_object_new_string(inst_live(inst)->type));
    json_object_object_add(
        r, "state", json_object_new_string(inst_state_name(inst->state)));
    ctr = take(dev, "counters");
    json_object_object_add(r, "counters",
                           ctr != NULL ? ctr : json_object_new_object());
    json_object_object_add(r, "irqs", take(dev, "irqs"));
    json_object_object_add(r, "refused",
                           prof != NULL ? take(prof, "refused")
                                        : json_object_new_int(0));
    out = json_object_new_array();
    if (prof != NULL && json_object_object_get_ex(prof, "regions", &regs) &&
        json_object_is_type(regs, json_type_array))
        for (i = 0; i < json_object_array_length(regs); i++)
            json_object_array_add(
                out, stats_region(json_object_array_get_idx(regs, i)));
    json_object_object_add(r, "regions", out);
    return r;
}

/* An info answer: the instance, and what its worker said of the device. */
static struct json_object *
info_result(const struct instance *inst, struct json_object *extra)
{
    struct json_object *result = instance_result(inst);
    struct json_object *ij = NULL, *dev = NULL, *pid;

    json_object_object_get_ex(result, "instance", &ij);
    if (extra != NULL && json_object_object_get_ex(extra, "device", &dev)) {
        json_object_object_add(result, "device", json_object_get(dev));
        /* Only the worker knows its client; the instance object carries
         * it too (docs/CONTROL.md). */
        if (json_object_object_get_ex(dev, "client_pid", &pid))
            json_object_object_add(ij, "client_pid", json_object_get(pid));
    }
    return result;
}

/* The supervisor's daemon_hooks.request_done. */
static void
instance_request_done(struct daemon *d, struct instance *inst, void *opaque,
                      enum inst_request req, int err, const char *msg,
                      struct json_object *extra)
{
    struct waiter *w = opaque;
    struct json_object *result = NULL;

    if (err == 0 && req == REQ_START)
        result = instance_result(inst);
    else if (err == 0 && req == REQ_RESTART)
        result = json_object_get(extra);
    else if (err == 0 && req == REQ_INFO)
        result = w->want_stats ? stats_result(inst, extra)
                               : info_result(inst, extra);
    waiter_answer(d, w, err, msg, result);
}

/*
 * The supervisor's daemon_hooks.screen_done: the worker's screen and the
 * memfd it lies in (@fd, borrowed). The caller gets its own open file,
 * reopened read-only through /proc: mapping it cannot write the guest's
 * framebuffer, and F_ADD_SEALS or ftruncate on it are refused. The
 * worker's writable descriptor never leaves umdevd.
 */
static void
instance_screen_done(struct daemon *d, struct instance *inst, void *opaque,
                     int err, const char *msg, struct json_object *extra,
                     int fd)
{
    struct waiter *w = opaque;
    struct json_object *result, *scr;
    char path[64], why[200];
    int ro;

    if (err < 0 || fd < 0 ||
        !json_object_object_get_ex(extra, "screen", &scr)) {
        waiter_answer(d, w, err < 0 ? err : -EIO,
                      err < 0 ? msg : "the worker's screen reply is malformed",
                      NULL);
        return;
    }
    if (w->conn == NULL) {
        waiter_free(d, w);
        return;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ro = open(path, O_RDONLY | O_CLOEXEC);
    if (ro < 0) {
        err = -errno;
        snprintf(why, sizeof(why),
                 "cannot reopen the screen memory of %s read-only: %s",
                 inst->cfg.uuid, strerror(-err));
        waiter_answer(d, w, err, why, NULL);
        return;
    }
    result = json_object_new_object();
    json_object_object_add(result, "uuid",
                           json_object_new_string(inst->cfg.uuid));
    json_object_object_add(result, "screen", json_object_get(scr));
    d->hooks.respond_fd(d, w->conn, w->id, 0, NULL, result, ro);
    waiter_free(d, w);
}

void
handlers_init(struct daemon *d)
{
    d->hooks.request_done = instance_request_done;
    d->hooks.screen_done = instance_screen_done;
}

/* Unknown arguments are errors (docs/CONTROL.md). */
static int
check_keys(struct json_object *args, const char *const *allowed, char *err,
           size_t errlen)
{
    return json_only_keys(args, allowed, "argument", err, errlen);
}

/* The instance args.uuid names. Return: 0; -EINVAL no uuid or not a
 * UUID; -ENOENT no such instance. */
static int
need_instance(struct cmd *c, struct instance **out)
{
    const char *uuid = json_str(c->args, "uuid");
    char *err = c->err;
    size_t errlen = c->errlen;
    char norm[MDEV_UUID_STR_LEN + 1];

    *out = NULL;
    if (uuid == NULL) {
        snprintf(err, errlen, "a uuid (string) is required");
        return -EINVAL;
    }
    if (mdev_uuid_parse(uuid, norm) < 0) {
        snprintf(err, errlen,
                 "'%s' is not a UUID (expected the form "
                 "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                 uuid);
        return -EINVAL;
    }
    *out = inst_find(c->d, norm);
    if (*out == NULL) {
        snprintf(err, errlen,
                 "no instance %s (umdevctl list --defined shows them)", norm);
        return -ENOENT;
    }
    return 0;
}

/* check_keys() and need_instance() for the commands that take a uuid
 * only. */
static int
uuid_only(struct cmd *c, struct instance **out)
{
    static const char *const keys[] = { "uuid", NULL };
    int rc = check_keys(c->args, keys, c->err, c->errlen);

    return rc < 0 ? rc : need_instance(c, out);
}

static int
busy(struct cmd *c, const struct instance *inst)
{
    if (inst->request == REQ_NONE)
        return 0;
    snprintf(c->err, c->errlen, "instance %s is busy with another request",
             inst->cfg.uuid);
    return -EBUSY;
}

/* What the parent says of @type's attributes, for people: [{"name",
 * "help"}...], empty when it says nothing. */
static struct json_object *
type_attrs_json(const struct parent_entry *pe, const char *type)
{
    const struct umdev_parent_attr *attrs[UMDEV_PARENT_MAX_ATTRS];
    struct json_object *arr = json_object_new_array();
    size_t i, n = pe != NULL ? parents_type_attrs(pe, type, attrs,
                                                  UMDEV_PARENT_MAX_ATTRS)
                             : 0;

    for (i = 0; i < n; i++) {
        struct json_object *a = json_object_new_object();

        json_object_object_add(a, "name",
                               json_object_new_string(attrs[i]->name));
        json_object_object_add(a, "help",
                               json_object_new_string(attrs[i]->help));
        json_object_array_add(arr, a);
    }
    return arr;
}

static struct json_object *
type_json(struct daemon *d, const struct mdev_type_info *t)
{
    const struct parent_entry *pe = NULL;
    struct parent_type *pt = parents_type(d->parents, t->name, &pe);
    struct json_object *o = json_object_new_object();
    struct json_object *adm = json_object_new_object();
    bool offered =
        pt != NULL && parents_type_offered(d->parents, t->name, NULL, 0) == 0;

    json_object_object_add(o, "name", json_object_new_string(t->name));
    json_object_object_add(o, "parent", json_object_new_string(t->parent));
    json_object_object_add(o, "description",
                           json_object_new_string(t->description));
    json_object_object_add(o, "device_api",
                           json_object_new_string(t->device_api));
    /* A type that is not offered has no instances to give. */
    uint32_t avail = t->available_instances;

    /* lib/mdev counts the type's fixed costs; the parent's
     * attribute-dependent pools (at the default attributes) too. */
    if (pt != NULL && parents_attr_available(d, t->name) < avail)
        avail = parents_attr_available(d, t->name);
    json_object_object_add(o, "available_instances",
                           json_object_new_int64(offered ? avail : 0));
    if (pt != NULL) {
        json_object_object_add(
            adm, "state",
            json_object_new_string(admission_state_name(pt->admission)));
        if (pt->verdict[0] != '\0')
            json_object_object_add(adm, "verdict",
                                   json_object_new_string(pt->verdict));
        if (pe->plugin[0] != '\0')
            json_object_object_add(o, "plugin",
                                   json_object_new_string(pe->plugin));
    }
    json_object_object_add(o, "admission", adm);
    json_object_object_add(o, "attributes",
                           type_attrs_json(pt != NULL ? pe : NULL, t->name));
    return o;
}

static int
cmd_types(struct cmd *c)
{
    static const char *const keys[] = { "parent", NULL };
    const char *parent = json_str(c->args, "parent");
    const struct refused_plugin *r;
    struct json_object *arr, *bad;
    size_t i, n;
    int rc;

    rc = check_keys(c->args, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (parent != NULL && parents_find(c->d->parents, parent) == NULL) {
        snprintf(c->err, c->errlen, "no parent named '%s'", parent);
        return -ENOENT;
    }
    arr = json_object_new_array();
    n = mdev_type_count(c->d->mdev);
    for (i = 0; i < n; i++) {
        struct mdev_type_info t;

        mdev_type_get(c->d->mdev, i, &t);
        if (parent == NULL || strcmp(parent, t.parent) == 0)
            json_object_array_add(arr, type_json(c->d, &t));
    }
    c->result = json_object_new_object();
    json_object_object_add(c->result, "types", arr);
    if (parent == NULL && c->d->parents->refused != NULL) {
        bad = json_object_new_array();
        for (r = c->d->parents->refused; r != NULL; r = r->next) {
            struct json_object *o = json_object_new_object();

            json_object_object_add(o, "path", json_object_new_string(r->path));
            json_object_object_add(o, "reason",
                                   json_object_new_string(r->reason));
            json_object_array_add(bad, o);
        }
        json_object_object_add(c->result, "refused_plugins", bad);
    }
    return 0;
}

static int
cmd_list(struct cmd *c)
{
    static const char *const keys[] = { "defined", "uuid", "parent", NULL };
    const char *uuid = json_str(c->args, "uuid");
    const char *parent = json_str(c->args, "parent");
    char norm[MDEV_UUID_STR_LEN + 1];
    struct json_object *v, *arr;
    struct instance *inst;
    bool defined = false;
    int rc;

    rc = check_keys(c->args, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (json_object_object_get_ex(c->args, "defined", &v))
        defined = json_object_get_boolean(v);
    if (uuid != NULL && mdev_uuid_parse(uuid, norm) < 0) {
        snprintf(c->err, c->errlen, "'%s' is not a UUID", uuid);
        return -EINVAL;
    }
    /* As `types` does: a parent this daemon lacks is a mistake to show,
     * not an empty list. */
    if (parent != NULL && parents_find(c->d->parents, parent) == NULL) {
        snprintf(c->err, c->errlen,
                 "no parent named '%s' (umdevctl types lists parents)", parent);
        return -ENOENT;
    }
    arr = json_object_new_array();
    for (inst = c->d->instances; inst != NULL; inst = inst->next) {
        if (defined ? !inst->defined : inst->state == ST_STOPPED)
            continue;
        if (uuid != NULL && strcmp(norm, inst->cfg.uuid) != 0)
            continue;
        if (parent != NULL && strcmp(parent, inst->cfg.parent) != 0)
            continue;
        json_object_array_add(arr, inst_to_json(inst));
    }
    c->result = json_object_new_object();
    json_object_object_add(c->result, "instances", arr);
    return 0;
}

/*
 * The point where command @c would change something. When it is only
 * being checked before its pre callouts (c->check_only), note the device
 * @cfg as the action leaves it (or, for undefine, start and stop, finds
 * it), with the start policy @auto_start, and say so: the caller then
 * returns 0 having changed nothing.
 */
static bool
check_point(struct cmd *c, const struct inst_config *cfg, bool auto_start)
{
    if (!c->check_only)
        return false;
    json_object_put(c->dev.attrs);
    c->dev = *cfg;
    c->dev.auto_start = auto_start;
    c->dev.attrs = json_object_get(cfg->attrs);
    c->dev_set = true;
    set_subject(c, cfg->uuid);
    return true;
}

/*
 * Whether what @cfg's attributes cost can fit its parent's pools at all
 * (a define or modify asking for more than a pool holds is refused);
 * whether it is free is for the start to find. Not a check of
 * defs_apply(): definitions already written load whatever the pools are
 * now, and their start says what is missing.
 */
static int
fits(struct cmd *c, const struct inst_config *cfg)
{
    return parents_fit(c->d, cfg->type, cfg->attrs, false, c->err, c->errlen);
}

/*
 * A transient instance's data goes when the instance does (nothing names
 * it afterwards), so one may not start on data something else left: a
 * backing file kept at undefine would be lost with it.
 */
static int
no_kept_data(struct cmd *c, const struct inst_config *cfg)
{
    char where[PATH_MAX + 64];
    int rc = parents_instance_data(c->d, cfg, false, where, sizeof(where));

    if (rc < 0) {
        snprintf(c->err, c->errlen, "%s", where);
        return rc;
    }
    if (where[0] != '\0') {
        snprintf(c->err, c->errlen,
                 "%s exists (kept when %s was undefined?): a transient "
                 "instance would remove it when it stops; define %s to use "
                 "it, or remove it first",
                 where, cfg->uuid, cfg->uuid);
        return -EEXIST;
    }
    return 0;
}

/*
 * A new instance from the definition fields in @args (parent, type, uuid
 * and the rest): checked, saved unless @transient, added. Only types on
 * offer may be instantiated, and pending plug-in types by their own
 * admission run.
 */
static int
new_instance(struct cmd *c, struct json_object *args, bool transient,
             struct instance **out)
{
    struct daemon *d = c->d;
    char *err = c->err;
    size_t errlen = c->errlen;
    const char *type = json_str(args, "type");
    const char *parent = json_str(args, "parent");
    struct inst_config cfg = { .attrs = NULL };
    struct json_object *fields, *v;
    char full[sizeof(cfg.type)];
    int rc;

    *out = NULL;
    if (parent == NULL || type == NULL) {
        snprintf(err, errlen, "parent and type are required");
        return -EINVAL;
    }
    if (parents_find(d->parents, parent) == NULL) {
        snprintf(err, errlen,
                 "no parent named '%s' (umdevctl types lists parents and "
                 "types)",
                 parent);
        return -ENOENT;
    }
    if (json_object_object_get_ex(args, "uuid", &v) &&
        !json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen, "uuid must be a string");
        return -EINVAL;
    }
    /* Accept "2port" as well as "serial-2port". */
    if (full_type_name(parent, type, full, sizeof(full)) < 0) {
        snprintf(err, errlen, "type name '%s' is too long", type);
        return -EINVAL;
    }
    rc = defs_init(d, &cfg, json_str(args, "uuid"), full, err, errlen);
    if (rc < 0)
        return rc;
    if (inst_find(d, cfg.uuid) != NULL) {
        snprintf(err, errlen,
                 "instance %s exists already (undefine or stop it, or pick "
                 "another UUID)",
                 cfg.uuid);
        rc = -EEXIST;
        goto out;
    }
    if (!admission_peer_may_use(d, cfg.type, c->rq->peer_pid)) {
        rc = parents_type_offered(d->parents, cfg.type, err, errlen);
        if (rc < 0)
            goto out;
    }
    /* The definition fields minus what defs_init() took. */
    fields = json_object_new_object();
    json_object_object_foreach(args, key, val)
    {
        if (strcmp(key, "parent") != 0 && strcmp(key, "uuid") != 0 &&
            strcmp(key, "type") != 0)
            json_object_object_add(fields, key, json_object_get(val));
    }
    rc = defs_apply(d, &cfg, fields, true, err, errlen);
    json_object_put(fields);
    if (rc == 0)
        rc = fits(c, &cfg);
    if (rc == 0 && transient)
        rc = no_kept_data(c, &cfg);
    if (rc == 0 && check_point(c, &cfg, cfg.auto_start))
        goto out;
    if (rc == 0 && !transient)
        rc = defs_save(d->opts.statedir, &cfg, err, errlen);
    if (rc == 0)
        rc = inst_add(d, &cfg, !transient, out, err, errlen);
out:
    json_object_put(cfg.attrs);
    return rc;
}

/*
 * `define` of the UUID of a running transient instance (mdevctl's habit):
 * the instance becomes a definition as it runs, with the fields given
 * overriding. parent and type may be left out; given, they must be the
 * instance's (a running instance cannot change its type; `modify` does,
 * for the next start).
 */
/*
 * Apply @fields (taken) to @cfg, a copy of @inst's configuration holding
 * its own reference to the attributes (taken), write the definition, and
 * only then make it @inst's. @creating: @inst becomes a definition (a
 * running transient one made persistent; defs_apply()'s @creating). On
 * any failure nothing of @inst changes. Sets c->result.
 */
static int
apply_and_save(struct cmd *c, struct instance *inst, struct inst_config *cfg,
               struct json_object *fields, bool creating)
{
    int rc = defs_apply(c->d, cfg, fields, creating, c->err, c->errlen);

    json_object_put(fields);
    if (rc == 0)
        rc = fits(c, cfg);
    if (rc == 0 && check_point(c, cfg, cfg->auto_start)) {
        json_object_put(cfg->attrs);
        return 0;
    }
    if (rc == 0)
        rc = defs_save(c->d->opts.statedir, cfg, c->err, c->errlen);
    if (rc < 0) {
        json_object_put(cfg->attrs);
        return rc;
    }
    inst_reconfigure(inst, cfg);
    if (creating)
        inst->defined = true;
    c->result = instance_result(inst);
    return 0;
}

static int
persist_transient(struct cmd *c, struct instance *inst)
{
    static const char *const ids[] = { "uuid", "parent", "type", NULL };
    const struct inst_config *run = inst_live(inst);
    struct inst_config cfg;
    struct json_object *fields, *v;
    char full[sizeof(cfg.type)];
    size_t i;

    if (inst->lease) {
        snprintf(c->err, c->errlen,
                 "instance %s is a leased queue of pid %d (the access path); "
                 "it lives as long as its lessee and cannot be defined",
                 inst->cfg.uuid, (int)inst->lease_pid);
        return -EBUSY;
    }
    if (inst->state != ST_RUNNING && inst->state != ST_STARTING) {
        snprintf(c->err, c->errlen,
                 "instance %s is %s; a transient instance can be made "
                 "persistent while it runs",
                 inst->cfg.uuid, inst_state_name(inst->state));
        return -EBUSY;
    }
    if ((v = json_object_object_get(c->args, "parent")) != NULL &&
        (!json_object_is_type(v, json_type_string) ||
         strcmp(json_object_get_string(v), run->parent) != 0)) {
        snprintf(c->err, c->errlen,
                 "instance %s runs with parent '%s', not '%s'", inst->cfg.uuid,
                 run->parent, json_object_get_string(v));
        return -EINVAL;
    }
    if ((v = json_object_object_get(c->args, "type")) != NULL &&
        (!json_object_is_type(v, json_type_string) ||
         full_type_name(run->parent, json_object_get_string(v), full,
                        sizeof(full)) < 0 ||
         strcmp(full, run->type) != 0)) {
        snprintf(c->err, c->errlen,
                 "instance %s runs as type %s, not '%s' (define it as it "
                 "runs, then 'umdevctl modify -t' for the next start)",
                 inst->cfg.uuid, run->type, json_object_get_string(v));
        return -EINVAL;
    }
    fields = json_object_new_object();
    json_object_object_foreach(c->args, key, val)
    {
        for (i = 0; ids[i] != NULL && strcmp(ids[i], key) != 0; i++)
            ;
        if (ids[i] == NULL)
            json_object_object_add(fields, key, json_object_get(val));
    }
    /* A copy: nothing changes unless the file is written. */
    cfg = inst->cfg;
    cfg.attrs = NULL;
    if (json_object_deep_copy(inst->cfg.attrs, &cfg.attrs, NULL) < 0) {
        json_object_put(fields);
        snprintf(c->err, c->errlen, "out of memory");
        return -ENOMEM;
    }
    return apply_and_save(c, inst, &cfg, fields, true);
}

static int
cmd_define(struct cmd *c)
{
    const char *uuid = json_str(c->args, "uuid");
    struct instance *inst;
    int rc;

    inst = uuid != NULL ? inst_find(c->d, uuid) : NULL;
    if (inst != NULL && !inst->defined)
        return persist_transient(c, inst);
    if (inst != NULL) {
        snprintf(c->err, c->errlen,
                 "instance %s exists already as a definition (modify it, "
                 "or undefine it first)",
                 inst->cfg.uuid);
        return -EEXIST;
    }
    rc = new_instance(c, c->args, false, &inst);
    if (rc < 0 || c->check_only)
        return rc;
    set_subject(c, inst->cfg.uuid);
    c->result = instance_result(inst);
    return 0;
}

/*
 * What the instance keeps across runs (a backing file): removed when
 * @remove. Return: 0, or -errno with c->err saying why; @where says what
 * (empty: nothing).
 */
static int
instance_data(struct cmd *c, const struct instance *inst, bool remove,
              char *where, size_t len)
{
    int rc = parents_instance_data(c->d, &inst->cfg, remove, where, len);

    if (rc < 0)
        snprintf(c->err, c->errlen, "%s (the definition is kept)", where);
    return rc;
}

static int
cmd_undefine(struct cmd *c)
{
    static const char *const keys[] = { "uuid", "delete_data", NULL };
    struct json_object *v = NULL;
    bool delete_data = false;
    char where[PATH_MAX + 64];
    int rc;

    rc = check_keys(c->args, keys, c->err, c->errlen);
    if (rc == 0 && json_object_object_get_ex(c->args, "delete_data", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            snprintf(c->err, c->errlen, "delete_data must be true or false");
            rc = -EINVAL;
        }
        delete_data = json_object_get_boolean(v);
    }
    if (rc == 0)
        rc = need_instance(c, &c->inst);
    if (rc < 0)
        return rc;
    if (!c->inst->defined) {
        snprintf(c->err, c->errlen,
                 "instance %s is not defined (it is a transient instance: "
                 "stop it instead)",
                 c->inst->cfg.uuid);
        return -ENOENT;
    }
    if (c->inst->state != ST_STOPPED && c->inst->state != ST_FAILED) {
        snprintf(c->err, c->errlen, "instance %s is %s; stop it first",
                 c->inst->cfg.uuid, inst_state_name(c->inst->state));
        return -EBUSY;
    }
    if (check_point(c, &c->inst->cfg, c->inst->cfg.auto_start))
        return 0;
    /* The data first: if it cannot go, the definition that names it
     * stays, and the undefine can be repeated. */
    rc = instance_data(c, c->inst, delete_data, where, sizeof(where));
    if (rc < 0)
        return rc;
    rc = defs_remove(c->d->opts.statedir, &c->inst->cfg);
    if (rc < 0) {
        snprintf(c->err, c->errlen, "cannot remove its definition: %s",
                 strerror(-rc));
        return rc;
    }
    if (where[0] != '\0') {
        c->result = json_object_new_object();
        json_object_object_add(c->result, delete_data ? "removed" : "kept",
                               json_object_new_string(where));
        umdev_log(&c->d->log, LOG_INFO, "%s: %s %s", c->inst->cfg.uuid, where,
                  delete_data ? "removed" : "kept");
    }
    inst_remove(c->d, c->inst);
    c->inst = NULL;
    return 0;
}

static int
cmd_modify(struct cmd *c)
{
    struct inst_config cfg;
    struct json_object *fields;
    struct instance *inst;
    int rc;

    rc = need_instance(c, &inst);
    if (rc < 0)
        return rc;
    if (!inst->defined) {
        snprintf(c->err, c->errlen,
                 "instance %s is transient; only definitions can be "
                 "modified",
                 inst->cfg.uuid);
        return -ENOENT;
    }
    fields = json_object_new_object();
    json_object_object_foreach(c->args, key, val)
    {
        if (strcmp(key, "uuid") != 0)
            json_object_object_add(fields, key, json_object_get(val));
    }
    /* Work on a copy: a refused or unsaved modify changes nothing. */
    cfg = inst->cfg;
    json_object_get(cfg.attrs);
    return apply_and_save(c, inst, &cfg, fields, false);
}

/* Park @rq until the supervisor answers through instance_request_done
 * (a request resumed after its pre callouts has its waiter already). */
static struct waiter *
park(struct cmd *c)
{
    struct waiter *w;

    if (c->w != NULL)
        return c->w;
    w = waiter_new(c->d, c->rq);
    if (w == NULL) {
        snprintf(c->err, c->errlen, "out of memory");
        return NULL;
    }
    /* Its outcome is logged when it is answered (waiter_answer). */
    if (c->manage) {
        w->cmd = c->name;
        snprintf(w->subject, sizeof(w->subject), "%s", c->subject);
        w->uid = c->rq->peer_uid;
        w->pid = c->rq->peer_pid;
    }
    return w;
}

static int
cmd_start(struct cmd *c)
{
    bool transient = json_str(c->args, "parent") != NULL;
    struct instance *inst;
    struct waiter *w;
    bool lease = false;
    struct json_object *v;
    int rc;

    if (json_object_object_get_ex(c->args, "lease", &v)) {
        if (!transient || !json_object_is_type(v, json_type_boolean)) {
            snprintf(c->err, c->errlen,
                     "lease must be true or false, and only a transient "
                     "instance (parent + type) can be leased");
            return -EINVAL;
        }
        lease = json_object_get_boolean(v);
    }
    if (transient) {
        struct json_object *def = json_object_new_object();

        /* "lease" is a property of this start, not of the definition. */
        json_object_object_foreach(c->args, key, val)
        {
            if (strcmp(key, "lease") != 0)
                json_object_object_add(def, key, json_object_get(val));
        }
        rc = new_instance(c, def, true, &inst);
        json_object_put(def);
        if (rc < 0 || c->check_only)
            return rc;
        set_subject(c, inst->cfg.uuid);
        if (lease)
            inst_lease(inst, c->rq->conn, c->rq->peer_pid);
    } else {
        rc = uuid_only(c, &inst);
        if (rc == 0)
            rc = busy(c, inst);
        if (rc == 0 &&
            !admission_peer_may_use(c->d, inst->cfg.type, c->rq->peer_pid))
            rc = parents_type_offered(c->d->parents, inst->cfg.type, c->err,
                                      c->errlen);
        if (rc == 0 &&
            (inst->state == ST_STARTING || inst->state == ST_RUNNING ||
             inst->state == ST_STOPPING)) {
            /* inst_start() says the same; said here, before any
             * callout runs for a start that cannot happen. */
            snprintf(c->err, c->errlen, "instance %s is %s already",
                     inst->cfg.uuid, inst_state_name(inst->state));
            rc = -EALREADY;
        }
        if (rc < 0)
            return rc;
        if (check_point(c, &inst->cfg, inst->cfg.auto_start))
            return 0;
    }
    w = park(c);
    rc = w == NULL ? -ENOMEM : inst_start(c->d, inst, w, c->err, c->errlen);
    if (rc < 0) {
        if (w != NULL && w != c->w)
            waiter_free(c->d, w);
        if (transient)
            inst_remove(c->d, inst);
        return rc;
    }
    return 1;
}

static int
cmd_stop(struct cmd *c)
{
    static const char *const keys[] = { "uuid", "grace_ms", "keep_data", NULL };
    int grace = UMDEVD_DEFAULT_GRACE_MS;
    struct instance *inst;
    struct json_object *v;
    bool keep_data = false;
    struct waiter *w;
    int rc;

    rc = check_keys(c->args, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (json_object_object_get_ex(c->args, "keep_data", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            snprintf(c->err, c->errlen, "keep_data must be true or false");
            return -EINVAL;
        }
        keep_data = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(c->args, "grace_ms", &v)) {
        if (!json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 0 || json_object_get_int64(v) > 600000) {
            snprintf(c->err, c->errlen, "grace_ms must be 0..600000");
            return -EINVAL;
        }
        grace = json_object_get_int(v);
    }
    rc = need_instance(c, &inst);
    if (rc < 0)
        return rc;
    if (inst->state != ST_FAILED) {
        rc = busy(c, inst);
        if (rc < 0)
            return rc;
        if (inst->state != ST_RUNNING && inst->state != ST_STARTING) {
            snprintf(c->err, c->errlen, "instance %s is not running",
                     inst->cfg.uuid);
            return -ENOENT;
        }
    }
    /* As it runs (or ran, when failed), with its definition's policy. */
    if (check_point(c, inst_live(inst), inst->cfg.auto_start))
        return 0;
    if (keep_data)
        inst->keep_data = true;
    /* Acknowledge a failure: back to stopped (or gone). */
    if (inst_acknowledge(c->d, inst) == 0)
        return 0;
    w = park(c);
    if (w == NULL)
        return -ENOMEM;
    inst_stop(c->d, inst, grace, w);
    return 1;
}

/* Ask the worker of running @inst for its device document for @rq. */
static int
ask_worker(struct cmd *c, struct instance *inst, bool want_stats)
{
    struct waiter *w = park(c);
    int rc;

    if (w == NULL)
        return -ENOMEM;
    w->want_stats = want_stats;
    rc = inst_request_info(c->d, inst, w);
    if (rc < 0) {
        waiter_free(c->d, w);
        if (rc == -ENOMEM)
            snprintf(c->err, c->errlen, "out of memory");
        else
            snprintf(c->err, c->errlen, "cannot reach the worker of %s",
                     inst->cfg.uuid);
        return rc;
    }
    return 1;
}

/* info and stats are reads: they never take the request slot, so they
 * neither wait for a start or stop nor hold one up. */
static int
cmd_info(struct cmd *c)
{
    if (c->inst->state != ST_RUNNING) {
        c->result = instance_result(c->inst);
        return 0;
    }
    return ask_worker(c, c->inst, false);
}

static int
cmd_stats(struct cmd *c)
{
    if (c->inst->state != ST_RUNNING) {
        snprintf(c->err, c->errlen,
                 "instance %s is %s: only a running instance has counters",
                 c->inst->cfg.uuid, inst_state_name(c->inst->state));
        return -ENOENT;
    }
    return ask_worker(c, c->inst, true);
}

/*
 * screen: what a running instance shows and a read-only descriptor of
 * the memory it lies in (docs/CONTROL.md "screen"). The guest's screen
 * is its owner's to see: only a manager or the instance's owner may.
 */
static int
cmd_screen(struct cmd *c)
{
    struct waiter *w;
    int rc;

    if (c->inst->state != ST_RUNNING) {
        snprintf(c->err, c->errlen,
                 "instance %s is %s: only a running instance shows a screen",
                 c->inst->cfg.uuid, inst_state_name(c->inst->state));
        return -ENOENT;
    }
    if (!c->rq->may_manage && c->rq->peer_uid != inst_live(c->inst)->uid) {
        snprintf(c->err, c->errlen,
                 "the screen of %s is for its owner (uid %u) or root and "
                 "the daemon's management group, not uid %u",
                 c->inst->cfg.uuid, (unsigned)inst_live(c->inst)->uid,
                 (unsigned)c->rq->peer_uid);
        return -EPERM;
    }
    w = park(c);
    if (w == NULL)
        return -ENOMEM;
    rc = inst_request_screen(c->d, c->inst, w);
    if (rc < 0) {
        waiter_free(c->d, w);
        snprintf(c->err, c->errlen, "cannot reach the worker of %s",
                 c->inst->cfg.uuid);
        return rc;
    }
    return 1;
}

/* The kit's `--json` result: [{name, pass, evidence?}...], bounded. */
static int
check_kit(struct json_object *kit, char *err, size_t errlen)
{
    size_t i, n;

    if (!json_object_is_type(kit, json_type_array)) {
        snprintf(err, errlen,
                 "conformance must be the array umdev-conform "
                 "--json prints");
        return -EINVAL;
    }
    n = json_object_array_length(kit);
    if (n == 0 || n > 64) {
        snprintf(err, errlen, "conformance must hold 1 to 64 checks, not %zu",
                 n);
        return -EINVAL;
    }
    for (i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(kit, i), *v;

        if (!json_object_is_type(e, json_type_object) ||
            !json_object_object_get_ex(e, "name", &v) ||
            !json_object_is_type(v, json_type_string) ||
            !json_object_object_get_ex(e, "pass", &v) ||
            !json_object_is_type(v, json_type_boolean) ||
            (json_object_object_get_ex(e, "evidence", &v) &&
             !json_object_is_type(v, json_type_string))) {
            snprintf(err, errlen,
                     "conformance[%zu] must be {\"name\": string, "
                     "\"pass\": bool, \"evidence\": string}",
                     i);
            return -EINVAL;
        }
    }
    return 0;
}

/*
 * The full name of the type audit's @type names, into @out: a full name
 * as it is, or a short one ("2port") when exactly one parent has a type
 * by that name, as every other command accepts it (they have the parent
 * to go by).
 */
static int
audit_type(struct cmd *c, const char *type, char *out, size_t len)
{
    struct mdev_type_info t;
    size_t i, n = mdev_type_count(c->d->mdev), nmatch = 0;
    char full[sizeof(t.name)];

    snprintf(out, len, "%s", type);
    if (mdev_type_find(c->d->mdev, type, &t) == 0)
        return 0;
    for (i = 0; i < n; i++) {
        mdev_type_get(c->d->mdev, i, &t);
        if (full_type_name(t.parent, type, full, sizeof(full)) == 0 &&
            strcmp(full, t.name) == 0 && nmatch++ == 0)
            snprintf(out, len, "%s", t.name);
    }
    if (nmatch > 1) {
        snprintf(c->err, c->errlen,
                 "type '%s' is offered by %zu parents; give the full name "
                 "(PARENT-%s: umdevctl types lists them)",
                 type, nmatch, type);
        return -EINVAL;
    }
    return 0;
}

static void
audit_done(void *opaque, int err, const char *msg, struct json_object *result)
{
    struct waiter *w = opaque;

    w->audit = NULL;
    waiter_answer(w->d, w, err, msg, result);
}

static int
cmd_audit(struct cmd *c)
{
    static const char *const keys[] = { "type", "conformance", NULL };
    const char *type = json_str(c->args, "type");
    char full[2 * MDEV_NAME_MAX + 2];
    struct json_object *kit = NULL;
    const char *kit_json = NULL;
    struct waiter *w;
    int rc;

    rc = check_keys(c->args, keys, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (type == NULL || type[0] == '\0' ||
        strlen(type) > 2 * MDEV_NAME_MAX + 1) {
        snprintf(c->err, c->errlen,
                 "a type (string, e.g. \"serial-2port\") is required");
        return -EINVAL;
    }
    rc = audit_type(c, type, full, sizeof(full));
    if (rc < 0)
        return rc;
    type = full;
    set_subject(c, type);
    if (json_object_object_get_ex(c->args, "conformance", &kit)) {
        rc = check_kit(kit, c->err, c->errlen);
        if (rc < 0)
            return rc;
        kit_json = json_object_to_json_string_ext(kit, JSON_C_TO_STRING_PLAIN);
    }
    w = park(c);
    if (w == NULL)
        return -ENOMEM;
    rc = audit_job_start(c->d, type, kit_json, audit_done, w, &w->audit, c->err,
                         c->errlen);
    if (rc < 0) {
        waiter_free(c->d, w);
        return rc;
    }
    return 1;
}

/*
 * manage: a migration manager connection to a running instance's device
 * (docs/CONTROL.md "manage", docs/PROTOCOL.md "Migration manager"). The
 * worker takes one end of a socket pair as its manager; the answer
 * carries the other. `umdevctl migrate` drives the move through two of
 * them while the VMM keeps its own connection.
 */
static int
cmd_manage(struct cmd *c)
{
    struct json_object *req;
    int sv[2], rc;

    if (c->inst->state != ST_RUNNING) {
        snprintf(c->err, c->errlen,
                 "instance %s is %s: only a running instance migrates",
                 c->inst->cfg.uuid, inst_state_name(c->inst->state));
        return -ENOENT;
    }
    rc = busy(c, c->inst);
    if (rc < 0)
        return rc;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -errno;
        snprintf(c->err, c->errlen, "socketpair: %s", strerror(-rc));
        return rc;
    }
    req = json_object_new_object();
    json_object_object_add(req, "req", json_object_new_string("manage"));
    rc = channel_send_fd(c->inst->status_fd, req, sv[1]);
    json_object_put(req);
    close(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        snprintf(c->err, c->errlen, "cannot reach the worker of %s: %s",
                 c->inst->cfg.uuid, strerror(-rc));
        return -EIO;
    }
    c->rq->pass_fd = sv[0];
    c->result = json_object_new_object();
    json_object_object_add(c->result, "uuid",
                           json_object_new_string(c->inst->cfg.uuid));
    json_object_object_add(c->result, "socket",
                           json_object_new_string(c->inst->sock_path));
    return 0;
}

/* A new worker takes the running device over (docs/CONTROL.md
 * "restart"); answered once it serves, or with why not. */
static int
cmd_restart(struct cmd *c)
{
    struct waiter *w;
    int rc;

    rc = busy(c, c->inst);
    if (rc < 0)
        return rc;
    w = park(c);
    if (w == NULL)
        return -ENOMEM;
    rc = inst_restart(c->d, c->inst, w, c->err, c->errlen);
    if (rc < 0) {
        waiter_free(c->d, w);
        return rc;
    }
    return 1;
}

static int
cmd_version(struct cmd *c)
{
    c->result = json_object_new_object();
    json_object_object_add(c->result, "daemon",
                           json_object_new_string(UMDEV_VERSION_STRING));
    json_object_object_add(c->result, "protocol",
                           json_object_new_int(UMDEVD_PROTOCOL));
    return 0;
}

typedef int handler_fn(struct cmd *c);

#define MANAGE 0x1   /* needs root, the daemon's user or its group */
#define ON_UUID 0x2  /* takes args.uuid alone: c->inst is found first */
#define CALLOUTS 0x4 /* mdevctl's callouts run before and after it */

static const struct {
    const char *name;
    handler_fn *fn;
    unsigned int flags;
} commands[] = {
    { "version", cmd_version, 0 },
    { "types", cmd_types, 0 },
    { "list", cmd_list, 0 },
    { "info", cmd_info, ON_UUID },
    { "stats", cmd_stats, ON_UUID },
    { "screen", cmd_screen, ON_UUID },
    { "define", cmd_define, MANAGE | CALLOUTS },
    { "undefine", cmd_undefine, MANAGE | CALLOUTS },
    { "modify", cmd_modify, MANAGE | CALLOUTS },
    { "start", cmd_start, MANAGE | CALLOUTS },
    { "stop", cmd_stop, MANAGE | CALLOUTS },
    { "audit", cmd_audit, MANAGE },
    { "manage", cmd_manage, MANAGE | ON_UUID },
    { "restart", cmd_restart, MANAGE | ON_UUID },
};

/* Command @i of the table for @c, its permission checked. */
static int
run_fn(struct cmd *c, size_t i)
{
    int rc = commands[i].flags & ON_UUID ? uuid_only(c, &c->inst) : 0;

    return rc < 0 ? rc : commands[i].fn(c);
}

/*
 * The pre callouts of waiter @w's request are over: refused (@err), or
 * the command runs now, checked again from the start (the scripts took
 * their time, and other requests were served meanwhile), and its answer
 * (then or once a worker replied) is followed by the post callouts.
 */
static void
pre_done(void *opaque, int err, const char *msg)
{
    struct waiter *w = opaque;
    struct daemon *d = w->d;
    struct ctl_request rq = { .conn = w->conn,
                              .id = w->id,
                              .peer_pid = w->pid,
                              .peer_uid = w->uid,
                              .may_manage = true };
    char errbuf[512] = "";
    struct cmd c = { .d = d,
                     .rq = &rq,
                     .args = w->args,
                     .err = errbuf,
                     .errlen = sizeof(errbuf),
                     .name = commands[w->cmd_index].name,
                     .manage = true,
                     .w = w };
    struct instance *inst;
    int rc;

    if (w->auto_start)
        d->auto_pending--;
    if (err < 0) {
        /* Refused: no action, so no post event (mdevctl's rule). @msg
         * lives in the run: it goes once the answer is out. */
        struct callout_run *run = w->run;

        w->run = NULL;
        waiter_answer(d, w, err, msg, NULL);
        callout_run_free(run);
        return;
    }
    if (w->auto_start) {
        inst = inst_find(d, w->subject);
        if (inst == NULL || !inst->defined) {
            waiter_answer(d, w, -ENOENT, "undefined while its pre callouts ran",
                          NULL);
            return;
        }
        rc = inst_start(d, inst, w, errbuf, sizeof(errbuf));
        if (rc < 0)
            waiter_answer(d, w, rc, errbuf, NULL);
        return;
    }
    if (w->conn == NULL) {
        waiter_answer(d, w, -ECANCELED,
                      "its client went away while the pre callouts ran; "
                      "not done",
                      NULL);
        return;
    }
    set_subject(&c, w->subject);
    rc = run_fn(&c, w->cmd_index);
    if (rc != 1)
        waiter_answer(d, w, rc, errbuf, c.result);
}

/*
 * A management command with mdevctl's callouts: checked first (a request
 * refused now never reaches a script, as mdevctl checks before its
 * callouts), then the pre event runs with the request parked, and the
 * command itself once the scripts let it (pre_done). Without scripts to
 * run it is done at once.
 */
static int
with_callouts(struct cmd *c, size_t i)
{
    struct callout_device dev;
    struct callout_run *run = NULL;
    struct json_object *args = NULL;
    struct waiter *w;
    int rc;

    if (c->d->opts.callout_dir[0] == '\0' && c->d->opts.notifier_dir[0] == '\0')
        return run_fn(c, i);
    c->check_only = true;
    rc = run_fn(c, i);
    c->check_only = false;
    if (rc < 0 || !c->dev_set) {
        json_object_put(c->dev.attrs);
        return rc < 0 ? rc : run_fn(c, i);
    }
    dev = (struct callout_device){ .uuid = c->dev.uuid,
                                   .parent = c->dev.parent,
                                   .type = c->dev.type,
                                   .auto_start = c->dev.auto_start,
                                   .attrs = c->dev.attrs };
    rc = callout_run_create(c->d, commands[i].name, &dev, &run, c->err,
                            c->errlen);
    if (rc == 0 && run != NULL &&
        json_object_deep_copy(c->args, &args, NULL) < 0) {
        snprintf(c->err, c->errlen, "out of memory");
        rc = -ENOMEM;
    }
    if (rc < 0 || run == NULL) {
        json_object_put(c->dev.attrs);
        callout_run_free(run);
        return rc < 0 ? rc : run_fn(c, i);
    }
    /* A define or start that chose a UUID tells it to the scripts, and
     * does it with that one. */
    json_object_object_add(args, "uuid", json_object_new_string(c->dev.uuid));
    json_object_put(c->dev.attrs);
    c->dev.attrs = NULL;
    w = park(c);
    if (w == NULL) {
        json_object_put(args);
        callout_run_free(run);
        return -ENOMEM;
    }
    w->run = run;
    w->cmd_index = i;
    w->args = args;
    if (callout_run_pre(run, pre_done, w) < 0) {
        waiter_free(c->d, w);
        snprintf(c->err, c->errlen, "out of memory");
        return -ENOMEM;
    }
    return 1;
}

void
handlers_auto_start(struct daemon *d, struct instance *inst)
{
    const struct callout_device dev = { .uuid = inst->cfg.uuid,
                                        .parent = inst->cfg.parent,
                                        .type = inst->cfg.type,
                                        .auto_start = inst->cfg.auto_start,
                                        .attrs = inst->cfg.attrs };
    struct callout_run *run = NULL;
    struct waiter *w = NULL;
    char err[256] = "";

    if (callout_run_create(d, "start", &dev, &run, err, sizeof(err)) == 0 &&
        run != NULL && (w = calloc(1, sizeof(*w))) == NULL)
        snprintf(err, sizeof(err), "out of memory");
    if (w == NULL) {
        callout_run_free(run);
        /* Without callouts, as it always was: no waiter, errors logged. */
        if (err[0] == '\0' && inst_start(d, inst, NULL, err, sizeof(err)) == 0)
            return;
        umdev_log(&d->log, LOG_ERR, "%s: cannot start: %s", inst->cfg.uuid,
                  err);
        return;
    }
    w->d = d;
    w->auto_start = true;
    w->run = run;
    snprintf(w->subject, sizeof(w->subject), "%s", inst->cfg.uuid);
    w->next = d->waiters;
    d->waiters = w;
    if (callout_run_pre(run, pre_done, w) < 0) {
        waiter_free(d, w);
        umdev_log(&d->log, LOG_ERR, "%s: cannot start: out of memory",
                  inst->cfg.uuid);
        return;
    }
    d->auto_pending++;
}

/* Run command @i of the table for @c. Return: as handlers_dispatch. */
static int
run_command(struct cmd *c, size_t i)
{
    const struct ctl_request *rq = c->rq;
    struct daemon *d = c->d;
    const char *cmd = c->name;
    char *err = c->err;
    size_t errlen = c->errlen;

    if ((commands[i].flags & MANAGE) && !rq->may_manage) {
        snprintf(err, errlen,
                 "'%s' needs root or the daemon's management group", cmd);
        return -EPERM;
    }
    if ((commands[i].flags & MANAGE) &&
        (c->inst = supervisor_worker(d, rq->peer_pid)) != NULL) {
        /* Whatever its uid or groups: a worker serves a guest and may
         * be that guest's (docs/SANDBOX.md). */
        umdev_log(&d->log, LOG_WARNING,
                  "%s: its worker (pid %d) sent '%s' on the control "
                  "socket; refused",
                  c->inst->cfg.uuid, (int)rq->peer_pid, cmd);
        snprintf(err, errlen,
                 "'%s' refused: pid %d is the worker of instance %s, and "
                 "workers never manage",
                 cmd, (int)rq->peer_pid, c->inst->cfg.uuid);
        return -EPERM;
    }
    if (commands[i].flags & CALLOUTS)
        return with_callouts(c, i);
    return run_fn(c, i);
}

int
handlers_dispatch(struct daemon *d, struct ctl_request *rq, const char *cmd,
                  struct json_object *args, struct json_object **result,
                  char *err, size_t errlen)
{
    struct cmd c = {
        .d = d, .rq = rq, .args = args, .err = err, .errlen = errlen
    };
    const char *s;
    size_t i;
    int rc;

    *result = NULL;
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, cmd) != 0)
            continue;
        c.name = commands[i].name;
        c.manage = (commands[i].flags & MANAGE) != 0;
        /* What the request names, as it named it, until the command
         * knows better (a new instance's UUID, the audited type). */
        if ((s = json_str(args, "uuid")) != NULL ||
            (s = json_str(args, "type")) != NULL)
            set_subject(&c, s);
        rc = run_command(&c, i);
        *result = c.result;
        if (c.manage && rc != 1)
            log_request(d, c.name, c.subject, rq->peer_uid, rq->peer_pid, rc,
                        err);
        return rc;
    }
    snprintf(err, errlen, "unknown command '%s' (see docs/CONTROL.md)", cmd);
    return -EINVAL;
}
