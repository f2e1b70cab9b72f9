/*
 * The control socket (docs/CONTROL.md): newline-delimited JSON requests,
 * answered in order. A request that must wait for a worker (start, stop,
 * info, stats) or for an audit process parks its connection until it is
 * completed, so responses never overtake each other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "audit_job.h"
#include "umdevd.h"

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
    /* The audit this connection waits for, or NULL. */
    struct audit_job *audit;
    struct json_object *audit_id;
    /* The parked info request is a `stats` one: shape its answer so. */
    bool want_stats;
    struct ctl_conn *next;
};

/* A peer that lets this much output pile up is cut off. */
#define CTL_MAX_OUT (64u << 20)

static const struct {
    int err;
    const char *name;
} errno_names[] = {
    { EPERM, "EPERM" },     { ENOENT, "ENOENT" },
    { EIO, "EIO" },         { E2BIG, "E2BIG" },
    { ENOMEM, "ENOMEM" },   { EBUSY, "EBUSY" },
    { EEXIST, "EEXIST" },   { EINVAL, "EINVAL" },
    { ENOSPC, "ENOSPC" },   { ENAMETOOLONG, "ENAMETOOLONG" },
    { EALREADY, "EALREADY" }, { EPROTONOSUPPORT, "EPROTONOSUPPORT" },
    { ETIMEDOUT, "ETIMEDOUT" }, { ENOTSUP, "ENOTSUP" },
};

const char *
errno_name(int err)
{
    size_t i;

    if (err < 0)
        err = -err;
    for (i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (errno_names[i].err == err)
            return errno_names[i].name;
    return "EUNKNOWN";
}

static void conn_close(struct ctl_conn *c);

/* Watch for requests unless parked, and for room while output waits. */
static void
update_events(struct ctl_conn *c)
{
    uint32_t ev = c->parked ? 0 : UMDEV_LOOP_IN;

    /* A resumed connection waits for "writable" only to be called back
     * from the loop (control_conn_resume). */
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

void
control_send_response(struct ctl_conn *c, struct json_object *id, int err,
                      const char *msg, struct json_object *result)
{
    struct json_object *r = json_object_new_object();
    const char *text;

    json_object_object_add(r, "version", json_object_new_int(UMDEVD_PROTOCOL));
    json_object_object_add(r, "id", json_object_get(id));
    json_object_object_add(r, "ok", json_object_new_boolean(err == 0));
    if (err == 0) {
        json_object_object_add(r, "result", result != NULL
                                                ? result
                                                : json_object_new_object());
    } else {
        struct json_object *e = json_object_new_object();

        json_object_object_add(e, "errno", json_object_new_int(-err));
        json_object_object_add(e, "code",
                               json_object_new_string(errno_name(err)));
        json_object_object_add(
            e, "message",
            json_object_new_string(msg != NULL && msg[0] ? msg
                                                         : strerror(-err)));
        json_object_object_add(r, "error", e);
        json_object_put(result);
    }
    text = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    /* Never block the daemon on one client: queue what the socket does
     * not take now; a client that stops reading for good is cut off. */
    if (queue_out(c, text, strlen(text)) < 0 || queue_out(c, "\n", 1) < 0 ||
        flush_out(c) < 0)
        shutdown(c->fd, SHUT_RDWR);
    else
        update_events(c);
    json_object_put(r);
}

static void
park(struct ctl_conn *c, struct instance *inst, struct json_object *id,
     int kind)
{
    inst->pending.conn = c;
    inst->pending.id = json_object_get(id);
    inst->pending.kind = kind;
    c->parked = true;
    update_events(c);
}

static struct json_object *
take(struct json_object *from, const char *key)
{
    struct json_object *v = NULL;

    if (from != NULL && json_object_object_get_ex(from, key, &v))
        return json_object_get(v);
    return NULL;
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
    struct json_object *dev = NULL, *prof = NULL, *regs, *out;
    struct json_object *ctr;
    size_t i, j;

    if (extra != NULL)
        json_object_object_get_ex(extra, "device", &dev);
    if (dev != NULL)
        json_object_object_get_ex(dev, "profile", &prof);
    json_object_object_add(r, "uuid", json_object_new_string(inst->uuid));
    json_object_object_add(r, "type", json_object_new_string(inst->type));
    json_object_object_add(r, "state", json_object_new_string(
                                           inst_state_name(inst->state)));
    ctr = take(dev, "counters");
    json_object_object_add(r, "counters",
                           ctr != NULL ? ctr : json_object_new_object());
    json_object_object_add(r, "irqs", take(dev, "irqs"));
    json_object_object_add(r, "refused",
                           prof != NULL ? take(prof, "refused")
                                        : json_object_new_int(0));
    out = json_object_new_array();
    if (prof != NULL && json_object_object_get_ex(prof, "regions", &regs) &&
        json_object_is_type(regs, json_type_array)) {
        for (i = 0; i < json_object_array_length(regs); i++) {
            struct json_object *reg = json_object_array_get_idx(regs, i);
            struct json_object *o = json_object_new_object();
            struct json_object *list = json_object_new_array();
            struct json_object *trapped = NULL;
            int64_t reads = 0, writes = 0;

            json_object_object_add(o, "index", take(reg, "index"));
            json_object_object_add(o, "name", take(reg, "name"));
            json_object_object_get_ex(reg, "trapped", &trapped);
            for (j = 0; trapped != NULL &&
                        j < json_object_array_length(trapped);
                 j++) {
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
                json_object_object_add(e, "writes",
                                       json_object_new_int64(wr));
                json_object_array_add(list, e);
            }
            json_object_object_add(o, "reads", json_object_new_int64(reads));
            json_object_object_add(o, "writes",
                                   json_object_new_int64(writes));
            json_object_object_add(o, "registers", list);
            json_object_array_add(out, o);
        }
    }
    json_object_object_add(r, "regions", out);
    return r;
}

void
pending_complete(struct daemon *d, struct instance *inst, int err,
                 const char *msg, struct json_object *extra)
{
    struct ctl_conn *c = inst->pending.conn;
    struct json_object *result = NULL;
    struct json_object *id = inst->pending.id; /* our reference */
    int kind = inst->pending.kind;

    inst->pending.conn = NULL;
    inst->pending.kind = 0;
    inst->pending.id = NULL;
    /* A lessee that left while this request was pending: the instance
     * could not be stopped then; it is now. */
    if (inst->lease && inst->lease_conn == NULL &&
        inst->state == ST_RUNNING)
        inst_stop(d, inst, 0);
    if (c != NULL) {
        if (err == 0 && kind == PENDING_START) {
            result = json_object_new_object();
            json_object_object_add(result, "instance", inst_to_json(inst));
        } else if (err == 0 && kind == PENDING_INFO && c->want_stats) {
            result = stats_result(inst, extra);
        } else if (err == 0 && kind == PENDING_INFO) {
            struct json_object *ij = inst_to_json(inst);
            struct json_object *dev = NULL, *pid;

            result = json_object_new_object();
            json_object_object_add(result, "instance", ij);
            if (extra != NULL && json_object_object_get_ex(extra, "device",
                                                           &dev)) {
                json_object_object_add(result, "device",
                                       json_object_get(dev));
                /* Only the worker knows its client; the instance object
                 * carries it too (docs/CONTROL.md). */
                if (json_object_object_get_ex(dev, "client_pid", &pid))
                    json_object_object_add(ij, "client_pid",
                                           json_object_get(pid));
            }
        }
        c->want_stats = false;
        control_send_response(c, id, err, msg, result);
        control_conn_resume(d, c);
    }
    json_object_put(id);
}

/* Argument helpers: unknown keys are errors (docs/CONTROL.md). */
static int
check_keys(struct json_object *args, const char *const *allowed, char *err,
           size_t errlen)
{
    json_object_object_foreach(args, key, val)
    {
        size_t i;

        (void)val;
        for (i = 0; allowed[i] != NULL; i++)
            if (strcmp(allowed[i], key) == 0)
                break;
        if (allowed[i] == NULL) {
            snprintf(err, errlen, "unknown argument '%s'", key);
            return -EINVAL;
        }
    }
    return 0;
}

static const char *
arg_str(struct json_object *args, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(args, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The instance args.uuid names. Return: 0; -EINVAL no uuid or not a
 * UUID; -ENOENT no such instance. */
static int
need_instance(struct daemon *d, struct json_object *args,
              struct instance **out, char *err, size_t errlen)
{
    const char *uuid = arg_str(args, "uuid");
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
    *out = inst_find(d, norm);
    if (*out == NULL) {
        snprintf(err, errlen,
                 "no instance %s (umdevctl list --defined shows them)", norm);
        return -ENOENT;
    }
    return 0;
}

static int
cmd_types(struct daemon *d, struct json_object *args,
          struct json_object **result, char *err, size_t errlen)
{
    static const char *const keys[] = { "parent", NULL };
    const char *parent = arg_str(args, "parent");
    struct json_object *arr;
    size_t i, n;
    int rc;

    rc = check_keys(args, keys, err, errlen);
    if (rc < 0)
        return rc;
    if (parent != NULL && parents_find(parent) == NULL) {
        snprintf(err, errlen, "no parent named '%s'", parent);
        return -ENOENT;
    }
    arr = json_object_new_array();
    n = mdev_type_count(d->mdev);
    for (i = 0; i < n; i++) {
        struct mdev_type_info t;
        struct json_object *o;

        mdev_type_get(d->mdev, i, &t);
        if (parent != NULL && strcmp(parent, t.parent) != 0)
            continue;
        o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(t.name));
        json_object_object_add(o, "parent", json_object_new_string(t.parent));
        json_object_object_add(o, "description",
                               json_object_new_string(t.description));
        json_object_object_add(o, "device_api",
                               json_object_new_string(t.device_api));
        json_object_object_add(o, "available_instances",
                               json_object_new_int64(t.available_instances));
        json_object_array_add(arr, o);
    }
    *result = json_object_new_object();
    json_object_object_add(*result, "types", arr);
    return 0;
}

static int
cmd_list(struct daemon *d, struct json_object *args,
         struct json_object **result, char *err, size_t errlen)
{
    static const char *const keys[] = { "defined", "uuid", "parent", NULL };
    struct json_object *v, *arr;
    const char *uuid = arg_str(args, "uuid");
    const char *parent = arg_str(args, "parent");
    bool defined = false;
    struct instance *inst;
    char norm[MDEV_UUID_STR_LEN + 1];
    int rc;

    rc = check_keys(args, keys, err, errlen);
    if (rc < 0)
        return rc;
    if (json_object_object_get_ex(args, "defined", &v))
        defined = json_object_get_boolean(v);
    if (uuid != NULL && mdev_uuid_parse(uuid, norm) < 0) {
        snprintf(err, errlen, "'%s' is not a UUID", uuid);
        return -EINVAL;
    }
    arr = json_object_new_array();
    for (inst = d->instances; inst != NULL; inst = inst->next) {
        if (defined ? !inst->defined : inst->state == ST_STOPPED)
            continue;
        if (uuid != NULL && strcmp(norm, inst->uuid) != 0)
            continue;
        if (parent != NULL && strcmp(parent, inst->parent) != 0)
            continue;
        json_object_array_add(arr, inst_to_json(inst));
    }
    *result = json_object_new_object();
    json_object_object_add(*result, "instances", arr);
    return 0;
}

static int
cmd_define(struct daemon *d, struct json_object *args,
           struct json_object **result, char *err, size_t errlen,
           bool transient, struct instance **made)
{
    const char *type = arg_str(args, "type");
    const char *parent = arg_str(args, "parent");
    char full[2 * MDEV_NAME_MAX + 2];
    struct json_object *fields, *v;
    struct instance *inst;
    int rc;

    if (parent == NULL || type == NULL) {
        snprintf(err, errlen, "parent and type are required");
        return -EINVAL;
    }
    if (parents_find(parent) == NULL) {
        snprintf(err, errlen, "no parent named '%s' (umdevctl types lists "
                              "parents and types)",
                 parent);
        return -ENOENT;
    }
    /* Accept "2port" as well as "serial-2port". */
    if (strncmp(type, parent, strlen(parent)) == 0 &&
        type[strlen(parent)] == '-')
        snprintf(full, sizeof(full), "%s", type);
    else
        snprintf(full, sizeof(full), "%s-%s", parent, type);
    rc = inst_new(d, arg_str(args, "uuid"), full, &inst, err, errlen);
    if (rc < 0)
        return rc;
    if (json_object_object_get_ex(args, "uuid", &v) &&
        !json_object_is_type(v, json_type_string)) {
        inst_free(d, inst);
        snprintf(err, errlen, "uuid must be a string");
        return -EINVAL;
    }
    /* The definition fields minus what inst_new took. */
    fields = json_object_new_object();
    json_object_object_foreach(args, key, val)
    {
        if (strcmp(key, "parent") != 0 && strcmp(key, "uuid") != 0 &&
            strcmp(key, "type") != 0)
            json_object_object_add(fields, key, json_object_get(val));
    }
    rc = defs_apply_json(d, inst, fields, true, err, errlen);
    json_object_put(fields);
    if (rc == 0 && !transient) {
        rc = defs_save(d, inst, err, errlen);
        if (rc == 0)
            inst->defined = true;
    }
    if (rc < 0) {
        inst_free(d, inst);
        return rc;
    }
    if (made != NULL)
        *made = inst;
    if (result != NULL) {
        *result = json_object_new_object();
        json_object_object_add(*result, "instance", inst_to_json(inst));
    }
    return 0;
}

static int
cmd_undefine(struct daemon *d, struct json_object *args, char *err,
             size_t errlen)
{
    static const char *const keys[] = { "uuid", NULL };
    struct instance *inst;
    int rc;

    rc = check_keys(args, keys, err, errlen);
    if (rc < 0)
        return rc;
    rc = need_instance(d, args, &inst, err, errlen);
    if (rc < 0)
        return rc;
    if (!inst->defined) {
        snprintf(err, errlen, "instance %s is not defined (it is a "
                              "transient instance: stop it instead)",
                 inst->uuid);
        return -ENOENT;
    }
    if (inst->state != ST_STOPPED && inst->state != ST_FAILED) {
        snprintf(err, errlen, "instance %s is %s; stop it first", inst->uuid,
                 inst_state_name(inst->state));
        return -EBUSY;
    }
    rc = defs_remove(d, inst);
    if (rc < 0) {
        snprintf(err, errlen, "cannot remove its definition: %s",
                 strerror(-rc));
        return rc;
    }
    inst_free(d, inst);
    return 0;
}

static int
cmd_modify(struct daemon *d, struct json_object *args,
           struct json_object **result, char *err, size_t errlen)
{
    struct json_object *fields, *saved;
    struct instance *inst;
    int rc;

    rc = need_instance(d, args, &inst, err, errlen);
    if (rc < 0)
        return rc;
    if (!inst->defined) {
        snprintf(err, errlen, "instance %s is transient; only "
                              "definitions can be modified",
                 inst->uuid);
        return -ENOENT;
    }
    fields = json_object_new_object();
    json_object_object_foreach(args, key, val)
    {
        if (strcmp(key, "uuid") != 0)
            json_object_object_add(fields, key, json_object_get(val));
    }
    /* Apply to a copy first so a failed save changes nothing. */
    saved = inst_to_json(inst);
    rc = defs_apply_json(d, inst, fields, false, err, errlen);
    json_object_put(fields);
    if (rc == 0) {
        rc = defs_save(d, inst, err, errlen);
        if (rc < 0) {
            char ignored[64];

            json_object_object_del(saved, "uuid");
            json_object_object_del(saved, "parent");
            json_object_object_del(saved, "defined");
            json_object_object_del(saved, "state");
            json_object_object_del(saved, "socket");
            json_object_object_del(saved, "pid");
            json_object_object_del(saved, "exit");
            defs_apply_json(d, inst, saved, true, ignored, sizeof(ignored));
        }
    }
    json_object_put(saved);
    if (rc < 0)
        return rc;
    *result = json_object_new_object();
    json_object_object_add(*result, "instance", inst_to_json(inst));
    return 0;
}

/* Returns 1 when the response will come later. */
static int
cmd_start(struct daemon *d, struct ctl_conn *c, struct json_object *id,
          struct json_object *args, char *err, size_t errlen)
{
    struct instance *inst;
    bool transient = arg_str(args, "parent") != NULL;
    bool lease = false;
    struct json_object *v;
    int rc;

    if (json_object_object_get_ex(args, "lease", &v)) {
        if (!transient || !json_object_is_type(v, json_type_boolean)) {
            snprintf(err, errlen, "lease must be true or false, and only a "
                                  "transient instance (parent + type) can "
                                  "be leased");
            return -EINVAL;
        }
        lease = json_object_get_boolean(v);
    }
    if (transient) {
        struct json_object *def = json_object_new_object();

        /* "lease" is a property of this start, not of the definition. */
        json_object_object_foreach(args, key, val)
        {
            if (strcmp(key, "lease") != 0)
                json_object_object_add(def, key, json_object_get(val));
        }
        rc = cmd_define(d, def, NULL, err, errlen, true, &inst);
        json_object_put(def);
        if (rc < 0)
            return rc;
        if (lease) {
            struct ucred cred;
            socklen_t len = sizeof(cred);

            inst->lease = true;
            inst->lease_conn = c;
            inst->lease_pid = getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED,
                                         &cred, &len) == 0 ? cred.pid : -1;
        }
    } else {
        static const char *const keys[] = { "uuid", NULL };

        rc = check_keys(args, keys, err, errlen);
        if (rc < 0)
            return rc;
        rc = need_instance(d, args, &inst, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (inst->pending.kind != 0) {
        snprintf(err, errlen, "instance %s is busy with another request",
                 inst->uuid);
        return -EBUSY;
    }
    rc = inst_start(d, inst, err, errlen);
    if (rc < 0) {
        if (transient)
            inst_free(d, inst);
        return rc;
    }
    park(c, inst, id, PENDING_START);
    return 1;
}

static int
cmd_stop(struct daemon *d, struct ctl_conn *c, struct json_object *id,
         struct json_object *args, char *err, size_t errlen)
{
    static const char *const keys[] = { "uuid", "grace_ms", NULL };
    struct instance *inst;
    struct json_object *v;
    int grace = UMDEVD_DEFAULT_GRACE_MS;
    int rc;

    rc = check_keys(args, keys, err, errlen);
    if (rc < 0)
        return rc;
    if (json_object_object_get_ex(args, "grace_ms", &v)) {
        if (!json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 0 ||
            json_object_get_int64(v) > 600000) {
            snprintf(err, errlen, "grace_ms must be 0..600000");
            return -EINVAL;
        }
        grace = json_object_get_int(v);
    }
    rc = need_instance(d, args, &inst, err, errlen);
    if (rc < 0)
        return rc;
    if (inst->state == ST_FAILED) {
        /* Acknowledge the failure: back to stopped (or gone). */
        inst->state = ST_STOPPED;
        if (!inst->defined)
            inst_free(d, inst);
        return 0;
    }
    if (inst->pending.kind != 0) {
        snprintf(err, errlen, "instance %s is busy with another request",
                 inst->uuid);
        return -EBUSY;
    }
    rc = inst_stop(d, inst, grace);
    if (rc < 0) {
        snprintf(err, errlen, "instance %s is not running", inst->uuid);
        return rc;
    }
    park(c, inst, id, PENDING_STOP);
    return 1;
}

static int
cmd_info(struct daemon *d, struct ctl_conn *c, struct json_object *id,
         struct json_object *args, struct json_object **result, char *err,
         size_t errlen)
{
    static const char *const keys[] = { "uuid", NULL };
    struct instance *inst;
    int rc;

    rc = check_keys(args, keys, err, errlen);
    if (rc < 0)
        return rc;
    rc = need_instance(d, args, &inst, err, errlen);
    if (rc < 0)
        return rc;
    if (inst->state != ST_RUNNING || inst->pending.kind != 0) {
        *result = json_object_new_object();
        json_object_object_add(*result, "instance", inst_to_json(inst));
        return 0;
    }
    if (inst_request_info(d, inst) < 0) {
        snprintf(err, errlen, "cannot reach the worker of %s", inst->uuid);
        return -EIO;
    }
    park(c, inst, id, PENDING_INFO);
    return 1;
}

static int
cmd_stats(struct daemon *d, struct ctl_conn *c, struct json_object *id,
          struct json_object *args, char *err, size_t errlen)
{
    static const char *const keys[] = { "uuid", NULL };
    struct instance *inst;
    int rc;

    rc = check_keys(args, keys, err, errlen);
    if (rc < 0)
        return rc;
    rc = need_instance(d, args, &inst, err, errlen);
    if (rc < 0)
        return rc;
    if (inst->state != ST_RUNNING) {
        snprintf(err, errlen,
                 "instance %s is %s: only a running instance has counters",
                 inst->uuid, inst_state_name(inst->state));
        return -ENOENT;
    }
    if (inst->pending.kind != 0) {
        snprintf(err, errlen, "instance %s is busy with another request",
                 inst->uuid);
        return -EBUSY;
    }
    if (inst_request_info(d, inst) < 0) {
        snprintf(err, errlen, "cannot reach the worker of %s", inst->uuid);
        return -EIO;
    }
    c->want_stats = true;
    park(c, inst, id, PENDING_INFO);
    return 1;
}

/* The kit's `--json` result: [{name, pass, evidence?}...], bounded. */
static int
check_kit(struct json_object *kit, char *err, size_t errlen)
{
    size_t i, n;

    if (!json_object_is_type(kit, json_type_array)) {
        snprintf(err, errlen, "conformance must be the array umdev-conform "
                              "--json prints");
        return -EINVAL;
    }
    n = json_object_array_length(kit);
    if (n == 0 || n > 64) {
        snprintf(err, errlen, "conformance must hold 1 to 64 checks, not "
                              "%zu",
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

static void
audit_done(void *opaque, int err, const char *msg, struct json_object *result)
{
    struct ctl_conn *c = opaque;
    struct json_object *id = c->audit_id;

    c->audit = NULL;
    c->audit_id = NULL;
    control_send_response(c, id, err, msg, result);
    json_object_put(id);
    control_conn_resume(c->d, c);
}

static int
cmd_audit(struct daemon *d, struct ctl_conn *c, struct json_object *id,
          struct json_object *args, char *err, size_t errlen)
{
    static const char *const keys[] = { "type", "conformance", NULL };
    const char *type = arg_str(args, "type");
    struct json_object *kit = NULL;
    const char *kit_json = NULL;
    int rc;

    rc = check_keys(args, keys, err, errlen);
    if (rc < 0)
        return rc;
    if (type == NULL || type[0] == '\0' ||
        strlen(type) > 2 * MDEV_NAME_MAX + 1) {
        snprintf(err, errlen, "a type (string, e.g. \"serial-2port\") is "
                              "required");
        return -EINVAL;
    }
    if (json_object_object_get_ex(args, "conformance", &kit)) {
        rc = check_kit(kit, err, errlen);
        if (rc < 0)
            return rc;
        kit_json = json_object_to_json_string_ext(kit,
                                                  JSON_C_TO_STRING_PLAIN);
    }
    rc = audit_job_start(d, type, kit_json, audit_done, c, &c->audit, err,
                     errlen);
    if (rc < 0)
        return rc;
    c->audit_id = json_object_get(id);
    c->parked = true;
    update_events(c);
    return 1;
}

static bool
needs_manage(const char *cmd)
{
    return strcmp(cmd, "types") != 0 && strcmp(cmd, "list") != 0 &&
           strcmp(cmd, "info") != 0 && strcmp(cmd, "stats") != 0 &&
           strcmp(cmd, "version") != 0;
}

static void
handle_request(struct ctl_conn *c, struct json_object *req)
{
    struct daemon *d = c->d;
    struct json_object *v, *id = NULL, *args = NULL, *result = NULL;
    char err[512] = "";
    const char *cmd;
    int rc;

    json_object_object_get_ex(req, "id", &id);
    if (!json_object_object_get_ex(req, "version", &v) ||
        json_object_get_int(v) != UMDEVD_PROTOCOL) {
        control_send_response(c, id, -EPROTONOSUPPORT,
                              "protocol version 1 is required", NULL);
        return;
    }
    cmd = arg_str(req, "cmd");
    if (cmd == NULL) {
        control_send_response(c, id, -EINVAL, "cmd is required", NULL);
        return;
    }
    if (json_object_object_get_ex(req, "args", &args) &&
        !json_object_is_type(args, json_type_object)) {
        control_send_response(c, id, -EINVAL, "args must be an object",
                              NULL);
        return;
    }
    if (args == NULL)
        args = json_object_new_object();
    else
        json_object_get(args);
    if (needs_manage(cmd) && !c->may_manage) {
        rc = -EPERM;
        snprintf(err, sizeof(err),
                 "'%s' needs root or the daemon's management group", cmd);
    } else if (strcmp(cmd, "version") == 0) {
        result = json_object_new_object();
        json_object_object_add(result, "daemon",
                               json_object_new_string(UMDEV_VERSION_STRING));
        json_object_object_add(result, "protocol",
                               json_object_new_int(UMDEVD_PROTOCOL));
        rc = 0;
    } else if (strcmp(cmd, "types") == 0) {
        rc = cmd_types(d, args, &result, err, sizeof(err));
    } else if (strcmp(cmd, "list") == 0) {
        rc = cmd_list(d, args, &result, err, sizeof(err));
    } else if (strcmp(cmd, "define") == 0) {
        rc = cmd_define(d, args, &result, err, sizeof(err), false, NULL);
    } else if (strcmp(cmd, "undefine") == 0) {
        rc = cmd_undefine(d, args, err, sizeof(err));
    } else if (strcmp(cmd, "modify") == 0) {
        rc = cmd_modify(d, args, &result, err, sizeof(err));
    } else if (strcmp(cmd, "start") == 0) {
        rc = cmd_start(d, c, id, args, err, sizeof(err));
    } else if (strcmp(cmd, "stop") == 0) {
        rc = cmd_stop(d, c, id, args, err, sizeof(err));
    } else if (strcmp(cmd, "info") == 0) {
        rc = cmd_info(d, c, id, args, &result, err, sizeof(err));
    } else if (strcmp(cmd, "stats") == 0) {
        rc = cmd_stats(d, c, id, args, err, sizeof(err));
    } else if (strcmp(cmd, "audit") == 0) {
        rc = cmd_audit(d, c, id, args, err, sizeof(err));
    } else {
        rc = -EINVAL;
        snprintf(err, sizeof(err),
                 "unknown command '%s' (see docs/CONTROL.md)", cmd);
    }
    json_object_put(args);
    if (rc == 1)
        return; /* parked: answered by pending_complete() */
    control_send_response(c, id, rc, err, result);
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
            control_send_response(c, NULL, -EINVAL,
                                  "request is not a JSON object", NULL);
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
            control_send_response(c, NULL, -E2BIG,
                                  "request line longer than 1 MiB", NULL);
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

void
control_conn_resume(struct daemon *d, struct ctl_conn *c)
{
    (void)d;
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

void
control_lease_end(struct daemon *d, struct instance *inst)
{
    umdev_log(&d->log, LOG_INFO, "%s: lessee (pid %d) is gone", inst->uuid,
              (int)inst->lease_pid);
    if (inst->pending.kind != 0)
        return; /* pending_complete() stops it */
    if (inst->state == ST_RUNNING) {
        /* Its client was the lessee too, or will get the REQ IRQ: no
         * grace, the queue belongs to nobody now. */
        inst_stop(d, inst, 0);
    } else if (inst->state == ST_FAILED || inst->state == ST_STOPPED) {
        inst_free(d, inst);
    }
}

static void
conn_close(struct ctl_conn *c)
{
    struct ctl_conn **pp;
    struct instance *inst;

    /* A parked request's answer has nowhere to go now. */
    audit_job_cancel(c->audit);
    json_object_put(c->audit_id);
    for (inst = c->d->instances; inst != NULL; inst = inst->next)
        if (inst->pending.conn == c)
            inst->pending.conn = NULL;
    /* Leases end with their connection; control_lease_end may free the
     * instance, so find the next one first. */
    for (inst = c->d->instances; inst != NULL;) {
        struct instance *next = inst->next;

        if (inst->lease && inst->lease_conn == c) {
            inst->lease_conn = NULL;
            control_lease_end(c->d, inst);
        }
        inst = next;
    }
    for (pp = &c->d->conns; *pp != NULL; pp = &(*pp)->next) {
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
    if (umdev_loop_add(loop, cfd, UMDEV_LOOP_IN, on_conn, c) < 0) {
        close(cfd);
        free(c);
        return;
    }
    c->next = d->conns;
    d->conns = c;
}

int
control_listen(struct daemon *d)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    mode_t old;
    int fd, rc;

    if (strlen(d->opts.control) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
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
    d->control_fd = fd;
    return 0;
}

void
control_close_all(struct daemon *d)
{
    while (d->conns != NULL)
        conn_close(d->conns);
    if (d->control_fd >= 0) {
        umdev_loop_del(d->loop, d->control_fd);
        close(d->control_fd);
        unlink(d->opts.control);
        d->control_fd = -1;
    }
}
