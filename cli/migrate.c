/*
 * `umdevctl migrate UUID --to CONTROL`: move a running instance to the
 * umdevd listening on CONTROL (docs/CLI.md "migrate"). The destination
 * gets a transient instance of the same UUID, parent, type, owner, mode
 * and attributes; both daemons hand out a migration manager connection
 * (`manage`), and lib/client's migration driver moves the state between
 * them. The VMM keeps its own connection: with --handshake it takes part
 * over this process's stdin and stdout (pause before the stop, attach to
 * the destination before it runs).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "umdev/client.h"
#include "umdev/ctl.h"
#include "umdevctl.h"

/* How long the VMM may take to answer a handshake line. */
#define HANDSHAKE_TIMEOUT_MS 30000
/* A request to a daemon or a migration step. */
#define MIGRATE_REQ_TIMEOUT_MS 30000
/* The source's VMM has left by the time it is stopped; a slow one gets
 * this long after the device request IRQ. */
#define SOURCE_STOP_GRACE_MS 5000

struct migration {
    struct cli *c;
    bool handshake;
    const char *dest_socket;
    char err[512];
};

/* One request to the daemon at @ctl. Return: 0, or -errno with @err. */
static int
call_on(struct umdev_ctl *ctl, const char *cmd, struct json_object *args,
        struct json_object **result, char *err, size_t errlen)
{
    struct umdev_ctl_error e;
    int rc;

    rc = umdev_ctl_call(ctl, cmd, args, MIGRATE_REQ_TIMEOUT_MS, result, &e);
    json_object_put(args);
    if (rc < 0)
        snprintf(err, errlen, "%s: %.400s", cmd, e.message);
    return rc < 0 ? (e.err != 0 ? -abs(e.err) : rc) : 0;
}

static struct json_object *
uuid_obj(const char *uuid)
{
    struct json_object *a = json_object_new_object();

    json_object_object_add(a, "uuid", json_object_new_string(uuid));
    return a;
}

/* A manager connection to @uuid's device on the daemon at @ctl. */
static int
manager_of(struct umdev_ctl *ctl, const char *uuid, struct umdev_client **out,
           char *socket, size_t socklen, char *err, size_t errlen)
{
    struct umdev_client_opts opts = {
        .precopy_info = true,
        .timeout_ms = MIGRATE_REQ_TIMEOUT_MS,
    };
    struct json_object *r = NULL;
    int fd, rc;

    rc = call_on(ctl, "manage", uuid_obj(uuid), &r, err, errlen);
    if (rc < 0)
        return rc;
    if (socket != NULL)
        snprintf(socket, socklen, "%s", cli_jstr(r, "socket", ""));
    json_object_put(r);
    fd = umdev_ctl_take_fd(ctl);
    if (fd < 0) {
        snprintf(err, errlen, "manage: umdevd sent no connection");
        return -EPROTO;
    }
    rc = umdev_client_attach_fd(fd, &opts, out);
    if (rc < 0)
        snprintf(err, errlen,
                 "the worker of %s refused a migration connection (%s): "
                 "another migration is under way, or its type cannot "
                 "migrate (see umdevd's log)",
                 uuid, strerror(-rc));
    return rc;
}

/* Print a handshake line and wait for the VMM's "go". */
static int
handshake(const char *word, const char *arg)
{
    struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
    char line[64];
    size_t len = 0;

    printf("%s%s%s\n", word, arg != NULL ? " " : "", arg != NULL ? arg : "");
    fflush(stdout);
    /* One byte at a time: nothing past the answer is taken from stdin. */
    while (len < sizeof(line) - 1) {
        ssize_t n;
        int rc = poll(&p, 1, HANDSHAKE_TIMEOUT_MS);

        if (rc == 0)
            return -ETIMEDOUT;
        if (rc < 0)
            return -errno;
        n = read(STDIN_FILENO, line + len, 1);
        if (n <= 0)
            return -ECONNRESET;
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';
    return strcmp(line, "go") == 0 ? 0 : -ECANCELED;
}

static int
hook_stop(void *opaque)
{
    struct migration *m = opaque;

    return m->handshake ? handshake("stop", NULL) : 0;
}

static int
hook_attach(void *opaque)
{
    struct migration *m = opaque;

    return m->handshake ? handshake("attach", m->dest_socket) : 0;
}

/* The destination's definition: the source's instance as it runs, with
 * its start policy when it has a definition (manual when transient). */
static struct json_object *
dest_args(struct json_object *inst)
{
    static const char *const keys[] = { "uuid",  "parent", "type",
                                        "owner", "mode",   "attrs" };
    struct json_object *a = json_object_new_object(), *v;
    bool defined = json_object_object_get_ex(inst, "defined", &v) &&
                   json_object_get_boolean(v);
    size_t i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_object_object_get_ex(inst, keys[i], &v))
            json_object_object_add(a, keys[i], json_object_get(v));
    json_object_object_add(
        a, "start",
        json_object_new_string(defined ? cli_jstr(inst, "start", "manual")
                                       : "manual"));
    return a;
}

/*
 * Take back what was made at the destination: stop its instance and drop
 * its definition, keeping the data (a backing file the destination
 * shares with the source is the source's).
 */
static void
dest_discard(struct umdev_ctl *to, const char *uuid, bool started)
{
    struct json_object *a, *r = NULL;
    char ignored[256];

    if (started) {
        a = uuid_obj(uuid);
        json_object_object_add(a, "grace_ms", json_object_new_int(0));
        json_object_object_add(a, "keep_data", json_object_new_boolean(true));
        call_on(to, "stop", a, &r, ignored, sizeof(ignored));
        json_object_put(r);
        r = NULL;
    }
    call_on(to, "undefine", uuid_obj(uuid), &r, ignored, sizeof(ignored));
    json_object_put(r);
}

static void
print_result(struct migration *m, const char *uuid, const char *to,
             const struct umdev_migrate_stats *st)
{
    struct json_object *r;

    if (m->handshake) {
        printf("done blackout_us=%llu transfer_us=%llu precopy_bytes=%llu "
               "state_bytes=%llu\n",
               (unsigned long long)(st->blackout_ns / 1000),
               (unsigned long long)(st->transfer_ns / 1000),
               (unsigned long long)st->precopy_bytes,
               (unsigned long long)st->state_bytes);
        fflush(stdout);
        return;
    }
    if (m->c->json) {
        r = json_object_new_object();
        json_object_object_add(r, "uuid", json_object_new_string(uuid));
        json_object_object_add(r, "to", json_object_new_string(to));
        json_object_object_add(r, "socket",
                               json_object_new_string(m->dest_socket));
        json_object_object_add(r, "blackout_us",
                               json_object_new_int64(st->blackout_ns / 1000));
        json_object_object_add(r, "transfer_us",
                               json_object_new_int64(st->transfer_ns / 1000));
        json_object_object_add(r, "precopy_bytes",
                               json_object_new_int64(st->precopy_bytes));
        json_object_object_add(r, "state_bytes",
                               json_object_new_int64(st->state_bytes));
        cli_print_json(r);
        json_object_put(r);
        return;
    }
    printf("migrated %s to %s (socket %s): blackout %.3f ms (transfer %.3f "
           "ms), %llu bytes of state after %llu of pre-copy\n",
           uuid, to, m->dest_socket, st->blackout_ns / 1e6,
           st->transfer_ns / 1e6, (unsigned long long)st->state_bytes,
           (unsigned long long)st->precopy_bytes);
}

/* Why it failed: on the handshake's stdout for the VMM, and on stderr. */
static int
refuse(struct migration *m, int rc, const char *msg)
{
    if (m->handshake) {
        printf("abort %s\n", msg);
        fflush(stdout);
    }
    return cli_refuse(m->c, "migrate", rc, "%s", msg);
}

int
cli_verb_migrate(struct cli *c, struct cli_opts *o)
{
    struct migration m = { .c = c, .handshake = o->handshake };
    struct umdev_migrate_hooks hooks = { hook_stop, hook_attach, &m };
    struct umdev_client *src = NULL, *dst = NULL;
    struct umdev_migrate_stats st;
    struct json_object *info = NULL, *r = NULL, *inst, *dev, *args;
    struct umdev_ctl *to = NULL;
    char dest_socket[256] = "", why[512];
    bool defined;
    int rc;

    if (o->uuid == NULL)
        return cli_usage_error("migrate", "-u UUID is required");
    if (o->to == NULL)
        return cli_usage_error("migrate", "--to CONTROL-SOCKET is required");
    m.dest_socket = dest_socket;
    rc = cli_call(c, "info", uuid_obj(o->uuid), &info);
    if (rc != 0)
        return rc;
    inst = json_object_object_get(info, "instance");
    if (strcmp(cli_jstr(inst, "state", ""), "running") != 0) {
        snprintf(why, sizeof(why),
                 "instance %s is %s: only a running "
                 "instance migrates",
                 o->uuid, cli_jstr(inst, "state", "?"));
        json_object_put(info);
        return refuse(&m, -ENOENT, why);
    }
    /* The VMM must pause before the stop and move with the device; one
     * that does not take part would keep writing to a stopped device. */
    if (json_object_object_get_ex(info, "device", &dev) &&
        json_object_object_get_ex(dev, "client_pid", NULL) && !o->handshake) {
        snprintf(
            why, sizeof(why),
            "a VMM (pid %s) is attached to %s: it must pause and move "
            "with the device; run migrate --handshake from the VMM's "
            "side (docs/CLI.md)",
            json_object_get_string(json_object_object_get(dev, "client_pid")),
            o->uuid);
        json_object_put(info);
        return refuse(&m, -EBUSY, why);
    }
    /* The source first: a type that cannot migrate, or a migration under
     * way, is refused before anything is started at the destination. */
    rc = manager_of(c->ctl, o->uuid, &src, NULL, 0, why, sizeof(why));
    if (rc < 0) {
        json_object_put(info);
        return refuse(&m, rc, why);
    }
    rc = umdev_ctl_connect(o->to, 5000, &to);
    if (rc < 0) {
        snprintf(why, sizeof(why),
                 "cannot reach the destination umdevd at "
                 "%s: %s",
                 o->to, strerror(-rc));
        json_object_put(info);
        umdev_client_destroy(src);
        return refuse(&m, rc, why);
    }
    /*
     * The destination is a definition, whatever the source was: its
     * data (an nvme backing file in a directory both daemons name) is
     * then never removed behind the move, and a failed move is undone by
     * undefining it, which keeps the data.
     */
    defined = json_object_get_boolean(json_object_object_get(inst, "defined"));
    args = dest_args(inst);
    json_object_put(info);
    rc = call_on(to, "define", args, &r, why, sizeof(why));
    json_object_put(r);
    r = NULL;
    if (rc == 0) {
        rc = call_on(to, "start", uuid_obj(o->uuid), &r, why, sizeof(why));
        json_object_put(r);
        r = NULL;
        if (rc < 0)
            dest_discard(to, o->uuid, false);
    }
    if (rc < 0) {
        umdev_ctl_close(to);
        umdev_client_destroy(src);
        return refuse(&m, rc, why);
    }
    rc = manager_of(to, o->uuid, &dst, dest_socket, sizeof(dest_socket), why,
                    sizeof(why));
    if (rc == 0)
        rc = umdev_client_migrate(src, dst, &hooks, &st, why, sizeof(why));
    umdev_client_destroy(src);
    umdev_client_destroy(dst);
    if (rc < 0) {
        /* The source runs again (the driver saw to it); what was made
         * for it at the destination goes. */
        dest_discard(to, o->uuid, true);
        umdev_ctl_close(to);
        return refuse(&m, rc, why);
    }
    umdev_ctl_close(to);
    print_result(&m, o->uuid, o->to, &st);
    /* The device lives on at the destination: the source instance ends
     * (its VMM was told to leave it) with its data, which is the
     * destination's now, and its definition moved too. */
    args = uuid_obj(o->uuid);
    json_object_object_add(args, "grace_ms",
                           json_object_new_int(SOURCE_STOP_GRACE_MS));
    json_object_object_add(args, "keep_data", json_object_new_boolean(true));
    rc = cli_call(c, "stop", args, &r);
    json_object_put(r);
    r = NULL;
    if (rc == 0 && defined) {
        rc = cli_call(c, "undefine", uuid_obj(o->uuid), &r);
        json_object_put(r);
    }
    return rc;
}
