/*
 * umdevctl: the command line for umdevd, with mdevctl's verbs. It speaks
 * the control protocol (docs/CONTROL.md) and nothing else.
 *
 * Exit codes: 0 success; 1 the daemon refused the request; 2 usage error;
 * 3 the daemon cannot be reached.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "umdev/ctl.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_NODAEMON 3

/* The daemon's bound on a stop's grace period (docs/CONTROL.md). */
#define UMDEVCTL_MAX_GRACE_MS 600000

struct ctx {
    const char *control;
    bool json;
    struct umdev_ctl *ctl; /* connected at the first request */
};

struct verb {
    const char *name;
    const char *args;
    const char *help;
    const char *details; /* what each option does, for VERB --help */
    int (*run)(struct ctx *c, int argc, char **argv);
};

static const struct verb *find_verb(const char *name);
static size_t alen(struct json_object *a);
static const char *jstr(struct json_object *o, const char *key,
                        const char *dflt);
static void print_verb_help(const char *name);

static int
connect_daemon(struct ctx *c)
{
    int rc = umdev_ctl_connect(c->control, -1, &c->ctl);

    if (rc == -ENAMETOOLONG) {
        fprintf(stderr, "umdevctl: control path too long: %s\n", c->control);
        return EXIT_USAGE;
    }
    if (rc < 0) {
        fprintf(stderr,
                "umdevctl: cannot reach umdevd at %s: %s\n"
                "  (is umdevd running? use --control PATH or UMDEV_CONTROL "
                "for a private daemon)\n",
                c->control, strerror(-rc));
        return EXIT_NODAEMON;
    }
    return 0;
}

/* The daemon's error object as it sent it, for --json. */
static void
print_error_json(const struct umdev_ctl_error *e)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "errno", json_object_new_int(e->err));
    json_object_object_add(o, "code", json_object_new_string(e->code));
    json_object_object_add(o, "message", json_object_new_string(e->message));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
    json_object_put(o);
}

/*
 * Send one request (taking @args); on success *result is the result
 * object (caller puts it). On a refusal, print the daemon's message and
 * return EXIT_REFUSED; a daemon that cannot be reached, died or answered
 * nonsense is EXIT_NODAEMON.
 */
static int
call(struct ctx *c, const char *cmd, struct json_object *args,
     struct json_object **result)
{
    struct umdev_ctl_error e;
    int rc;

    *result = NULL;
    if (c->ctl == NULL && (rc = connect_daemon(c)) != 0) {
        json_object_put(args);
        return rc;
    }
    /* No time limit: the daemon bounds what it waits for itself (a stop
     * waits for the grace period the caller chose). */
    rc = umdev_ctl_call(c->ctl, cmd, args, -1, result, &e);
    json_object_put(args);
    if (rc == 0)
        return 0;
    if (rc != -EREMOTEIO) {
        fprintf(stderr, "umdevctl: %s\n", e.message);
        return EXIT_NODAEMON;
    }
    if (c->json)
        print_error_json(&e);
    fprintf(stderr, "umdevctl %s: %s\n", cmd, e.message);
    return EXIT_REFUSED;
}

static void
print_json(struct json_object *o)
{
    printf("%s\n",
           json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *
str(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v))
        return "";
    return json_object_get_string(v);
}

/* Parse "key=value" into attrs; values "true"/"false"/numbers become JSON
 * types, the rest strings. */
static int
add_attr(struct json_object *attrs, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char key[128];
    char *end;
    long long n;

    if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
        fprintf(stderr, "umdevctl: attribute must be KEY=VALUE, got '%s'\n",
                kv);
        return -1;
    }
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    eq++;
    if (strcmp(eq, "true") == 0 || strcmp(eq, "false") == 0) {
        json_object_object_add(attrs, key,
                               json_object_new_boolean(eq[0] == 't'));
        return 0;
    }
    n = strtoll(eq, &end, 10);
    if (*eq != '\0' && *end == '\0')
        json_object_object_add(attrs, key, json_object_new_int64(n));
    else
        json_object_object_add(attrs, key, json_object_new_string(eq));
    return 0;
}

static struct json_object *
read_json_file(const char *path)
{
    struct json_object *o = json_object_from_file(path);

    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        fprintf(stderr, "umdevctl: %s is not a JSON object: %s\n", path,
                json_util_get_last_err() ? json_util_get_last_err() : "");
        json_object_put(o);
        return NULL;
    }
    return o;
}

static int usage_error(const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
usage_error(const char *verb, const char *fmt, ...)
{
    const struct verb *v = find_verb(verb);
    va_list ap;

    fprintf(stderr, "umdevctl %s: ", verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: umdevctl %s %s\n", verb, v ? v->args : "");
    return EXIT_USAGE;
}

/* Options shared by define/start/modify. */
struct def_opts {
    const char *uuid, *parent, *type, *jsonfile, *mode, *user, *group;
    int start; /* -1 unset, 0 manual, 1 auto */
    struct json_object *attrs;
    int grace_ms;
};

/*
 * Parse a verb's options. @allowed lists the short codes (the `val`s
 * below) the verb takes; any other option is a usage error rather than
 * silently ignored. @bare_uuid: a lone positional argument is the UUID.
 * Return: 0; -1 after --help (exit 0); EXIT_USAGE after a message.
 */
static int
parse_def_opts_once(const char *verb, const char *allowed, bool bare_uuid,
                    int argc, char **argv, struct def_opts *o)
{
    static const struct option opts[] = {
        { "uuid", required_argument, NULL, 'u' },
        { "parent", required_argument, NULL, 'p' },
        { "type", required_argument, NULL, 't' },
        { "auto", no_argument, NULL, 'a' },
        { "manual", no_argument, NULL, 'm' },
        { "jsonfile", required_argument, NULL, 'j' },
        { "attr", required_argument, NULL, 'A' },
        { "owner", required_argument, NULL, 'o' },
        { "group", required_argument, NULL, 'g' },
        { "mode", required_argument, NULL, 'M' },
        { "grace", required_argument, NULL, 'G' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->start = -1;
    o->grace_ms = -1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:p:t:ah", opts, NULL)) != -1) {
        if (c != '?' && c != 'h' && strchr(allowed, c) == NULL) {
            const struct option *op = opts;

            while (op->name != NULL && op->val != c)
                op++;
            return usage_error(verb, "option --%s does not apply here",
                               op->name);
        }
        switch (c) {
        case 'u':
            o->uuid = optarg;
            break;
        case 'p':
            o->parent = optarg;
            break;
        case 't':
            o->type = optarg;
            break;
        case 'a':
            o->start = 1;
            break;
        case 'm':
            o->start = 0;
            break;
        case 'j':
            o->jsonfile = optarg;
            break;
        case 'A':
            if (o->attrs == NULL)
                o->attrs = json_object_new_object();
            if (add_attr(o->attrs, optarg) < 0)
                return EXIT_USAGE;
            break;
        case 'o':
            o->user = optarg;
            break;
        case 'g':
            o->group = optarg;
            break;
        case 'M':
            o->mode = optarg;
            break;
        case 'G': {
            char *end;
            long ms;

            errno = 0;
            ms = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || ms < 0 ||
                ms > UMDEVCTL_MAX_GRACE_MS)
                return usage_error(verb,
                                   "--grace takes milliseconds, 0 to %d; "
                                   "got '%s'",
                                   UMDEVCTL_MAX_GRACE_MS, optarg);
            o->grace_ms = (int)ms;
            break;
        }
        case 'h':
            print_verb_help(verb);
            return -1;
        default:
            return usage_error(verb, "bad option");
        }
    }
    /* The UUID may also come bare, as in `umdevctl info UUID`. */
    if (bare_uuid && o->uuid == NULL && optind + 1 == argc)
        o->uuid = argv[optind++];
    if (optind != argc)
        return usage_error(verb, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* parse_def_opts_once() that owns nothing when it fails. */
static int
parse_def_opts(const char *verb, const char *allowed, bool bare_uuid,
               int argc, char **argv, struct def_opts *o)
{
    int rc = parse_def_opts_once(verb, allowed, bare_uuid, argc, argv, o);

    if (rc != 0) {
        json_object_put(o->attrs);
        o->attrs = NULL;
    }
    return rc;
}

/* Build define/modify/start args from options (and --jsonfile); takes
 * o->attrs either way. */
static struct json_object *
def_args(struct def_opts *o, bool with_parent)
{
    struct json_object *a = NULL;

    if (o->jsonfile != NULL) {
        a = read_json_file(o->jsonfile);
        if (a == NULL) {
            json_object_put(o->attrs);
            o->attrs = NULL;
            return NULL;
        }
    } else {
        a = json_object_new_object();
    }
    if (o->uuid != NULL)
        json_object_object_add(a, "uuid", json_object_new_string(o->uuid));
    if (with_parent && o->parent != NULL)
        json_object_object_add(a, "parent", json_object_new_string(o->parent));
    if (o->type != NULL)
        json_object_object_add(a, "type", json_object_new_string(o->type));
    if (o->start >= 0)
        json_object_object_add(
            a, "start", json_object_new_string(o->start ? "auto" : "manual"));
    if (o->mode != NULL)
        json_object_object_add(a, "mode", json_object_new_string(o->mode));
    if (o->user != NULL || o->group != NULL) {
        struct json_object *own = json_object_new_object();

        if (o->user != NULL)
            json_object_object_add(own, "user",
                                   json_object_new_string(o->user));
        if (o->group != NULL)
            json_object_object_add(own, "group",
                                   json_object_new_string(o->group));
        json_object_object_add(a, "owner", own);
    }
    if (o->attrs != NULL) {
        json_object_object_add(a, "attrs", o->attrs);
        o->attrs = NULL;
    }
    return a;
}

static void
print_instance_line(struct json_object *inst)
{
    /* mdevctl's shape: uuid parent type start [state]. */
    printf("%s %s %s %s %s", str(inst, "uuid"), str(inst, "parent"),
           str(inst, "type"), str(inst, "start"), str(inst, "state"));
    if (strcmp(str(inst, "state"), "failed") == 0) {
        struct json_object *e;

        if (json_object_object_get_ex(inst, "exit", &e))
            printf(" (%s)", str(e, "reason"));
    }
    if (json_object_get_boolean(json_object_object_get(inst, "defined")))
        printf(" (defined)");
    if (json_object_object_get(inst, "lease_pid") != NULL)
        printf(" (access queue, lease pid %s)", str(inst, "lease_pid"));
    printf("\n");
}

static int
verb_types(struct ctx *c, int argc, char **argv)
{
    struct def_opts o;
    struct json_object *args = json_object_new_object(), *r, *types;
    size_t i;
    int rc = parse_def_opts("types", "p", false, argc, argv, &o);

    if (rc != 0) {
        json_object_put(args);
        return rc < 0 ? 0 : rc;
    }
    if (o.parent != NULL)
        json_object_object_add(args, "parent",
                               json_object_new_string(o.parent));
    rc = call(c, "types", args, &r);
    if (rc != 0)
        return rc;
    if (c->json) {
        print_json(r);
    } else {
        const char *last = "";

        types = json_object_object_get(r, "types");
        for (i = 0; i < json_object_array_length(types); i++) {
            struct json_object *t = json_object_array_get_idx(types, i);

            if (strcmp(last, str(t, "parent")) != 0) {
                last = str(t, "parent");
                printf("%s\n", last);
            }
            printf("  %s\n    Available instances: %s\n"
                   "    Device API: %s\n    Description: %s\n",
                   str(t, "name"), str(t, "available_instances"),
                   str(t, "device_api"), str(t, "description"));
        }
    }
    json_object_put(r);
    return 0;
}

static int
verb_list(struct ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "defined", no_argument, NULL, 'd' },
        { "dumpjson", no_argument, NULL, 'D' },
        { "uuid", required_argument, NULL, 'u' },
        { "parent", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct json_object *args = json_object_new_object(), *r, *arr;
    bool dump = false;
    size_t i;
    int ch, rc;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "du:p:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            json_object_object_add(args, "defined",
                                   json_object_new_boolean(true));
            break;
        case 'D':
            dump = true;
            break;
        case 'u':
            json_object_object_add(args, "uuid",
                                   json_object_new_string(optarg));
            break;
        case 'p':
            json_object_object_add(args, "parent",
                                   json_object_new_string(optarg));
            break;
        case 'h':
            print_verb_help("list");
            json_object_put(args);
            return 0;
        default:
            json_object_put(args);
            return usage_error("list", "bad option");
        }
    }
    if (optind != argc) {
        json_object_put(args);
        return usage_error("list", "unexpected argument '%s'", argv[optind]);
    }
    rc = call(c, "list", args, &r);
    if (rc != 0)
        return rc;
    arr = json_object_object_get(r, "instances");
    if (dump) {
        /* Definitions in the on-disk shape, for --jsonfile round trips. */
        struct json_object *out = json_object_new_array();

        for (i = 0; i < json_object_array_length(arr); i++) {
            struct json_object *in = json_object_array_get_idx(arr, i);
            struct json_object *d = json_object_new_object();
            static const char *const keep[] = { "uuid", "parent", "type",
                                                "start", "owner", "mode",
                                                "attrs", NULL };
            size_t k;

            for (k = 0; keep[k] != NULL; k++) {
                struct json_object *v;

                if (json_object_object_get_ex(in, keep[k], &v))
                    json_object_object_add(d, keep[k], json_object_get(v));
            }
            json_object_array_add(out, d);
        }
        print_json(out);
        json_object_put(out);
    } else if (c->json) {
        print_json(r);
    } else {
        for (i = 0; i < json_object_array_length(arr); i++)
            print_instance_line(json_object_array_get_idx(arr, i));
    }
    json_object_put(r);
    return 0;
}

static int
print_instance_result(struct ctx *c, struct json_object *r, const char *what)
{
    struct json_object *inst = json_object_object_get(r, "instance");

    if (c->json)
        print_json(r);
    else if (inst != NULL && what == NULL)
        printf("%s\n", str(inst, "uuid"));
    else if (inst != NULL)
        printf("%s %s\n", str(inst, "uuid"), what);
    json_object_put(r);
    return 0;
}

static int
verb_define(struct ctx *c, int argc, char **argv)
{
    struct def_opts o;
    struct json_object *args, *r;
    int rc = parse_def_opts("define", "uptamjAogM", true, argc, argv, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    args = def_args(&o, true);
    if (args == NULL)
        return EXIT_USAGE;
    if (!json_object_object_get_ex(args, "parent", NULL) ||
        !json_object_object_get_ex(args, "type", NULL)) {
        json_object_put(args);
        return usage_error("define", "-p PARENT and -t TYPE are required");
    }
    rc = call(c, "define", args, &r);
    if (rc != 0)
        return rc;
    /* The bare UUID, so scripts can take it: U=$(umdevctl define ...). */
    return print_instance_result(c, r, NULL);
}

static int
uuid_verb(struct ctx *c, const char *verb, const char *cmd, int argc,
          char **argv)
{
    struct def_opts o;
    struct json_object *args, *r;
    int rc = parse_def_opts(verb, strcmp(verb, "stop") == 0 ? "uG" : "u",
                            true, argc, argv, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (o.uuid == NULL)
        return usage_error(verb, "-u UUID is required");
    args = json_object_new_object();
    json_object_object_add(args, "uuid", json_object_new_string(o.uuid));
    if (o.grace_ms >= 0)
        json_object_object_add(args, "grace_ms",
                               json_object_new_int(o.grace_ms));
    rc = call(c, cmd, args, &r);
    if (rc != 0)
        return rc;
    if (c->json)
        print_json(r);
    json_object_put(r);
    return 0;
}

static int
verb_undefine(struct ctx *c, int argc, char **argv)
{
    return uuid_verb(c, "undefine", "undefine", argc, argv);
}

static int
verb_stop(struct ctx *c, int argc, char **argv)
{
    return uuid_verb(c, "stop", "stop", argc, argv);
}

static int
verb_start(struct ctx *c, int argc, char **argv)
{
    struct def_opts o;
    struct json_object *args, *r;
    int rc = parse_def_opts("start", "uptjAogM", true, argc, argv, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (o.parent == NULL && o.uuid == NULL)
        return usage_error("start",
                           "give -u UUID (a definition) or -p PARENT -t "
                           "TYPE (transient)");
    if (o.parent != NULL && o.type == NULL) {
        json_object_put(o.attrs);
        return usage_error("start", "-t TYPE is required with -p");
    }
    if (o.parent == NULL &&
        (o.type != NULL || o.jsonfile != NULL || o.attrs != NULL ||
         o.user != NULL || o.group != NULL || o.mode != NULL)) {
        json_object_put(o.attrs);
        return usage_error("start",
                           "-t, --jsonfile, --attr, --owner, --group and "
                           "--mode describe a transient instance and need "
                           "-p PARENT; to change a definition use "
                           "'umdevctl modify'");
    }
    if (o.parent == NULL) {
        args = json_object_new_object();
        json_object_object_add(args, "uuid", json_object_new_string(o.uuid));
    } else {
        args = def_args(&o, true);
        if (args == NULL)
            return EXIT_USAGE;
        json_object_object_del(args, "start");
    }
    rc = call(c, "start", args, &r);
    if (rc != 0)
        return rc;
    if (c->json) {
        print_json(r);
    } else {
        struct json_object *inst = json_object_object_get(r, "instance");

        printf("%s started: %s\n", str(inst, "uuid"), str(inst, "socket"));
    }
    json_object_put(r);
    return 0;
}

static int
verb_modify(struct ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "uuid", required_argument, NULL, 'u' },
        { "type", required_argument, NULL, 't' },
        { "auto", no_argument, NULL, 'a' },
        { "manual", no_argument, NULL, 'm' },
        { "attr", required_argument, NULL, 'A' },
        { "delattr", required_argument, NULL, 'D' },
        { "owner", required_argument, NULL, 'o' },
        { "group", required_argument, NULL, 'g' },
        { "mode", required_argument, NULL, 'M' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct def_opts o = { .start = -1 };
    struct json_object *args, *r, *dels = json_object_new_object();
    int ch, rc;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "u:t:amh", opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o.uuid = optarg;
            break;
        case 't':
            o.type = optarg;
            break;
        case 'a':
            o.start = 1;
            break;
        case 'm':
            o.start = 0;
            break;
        case 'A':
            if (o.attrs == NULL)
                o.attrs = json_object_new_object();
            if (add_attr(o.attrs, optarg) < 0) {
                json_object_put(dels);
                json_object_put(o.attrs);
                return EXIT_USAGE;
            }
            break;
        case 'D':
            json_object_object_add(dels, optarg, NULL);
            break;
        case 'o':
            o.user = optarg;
            break;
        case 'g':
            o.group = optarg;
            break;
        case 'M':
            o.mode = optarg;
            break;
        case 'h':
            print_verb_help("modify");
            json_object_put(dels);
            json_object_put(o.attrs);
            return 0;
        default:
            json_object_put(dels);
            json_object_put(o.attrs);
            return usage_error("modify", "bad option");
        }
    }
    if (o.uuid == NULL && optind + 1 == argc)
        o.uuid = argv[optind++];
    if (o.uuid == NULL || optind != argc) {
        json_object_put(dels);
        json_object_put(o.attrs);
        if (optind != argc)
            return usage_error("modify", "unexpected argument '%s'",
                               argv[optind]);
        return usage_error("modify", "-u UUID is required");
    }
    if (json_object_object_length(dels) > 0) {
        if (o.attrs == NULL)
            o.attrs = json_object_new_object();
        json_object_object_foreach(dels, k, v)
        {
            (void)v;
            json_object_object_add(o.attrs, k, NULL);
        }
    }
    json_object_put(dels);
    args = def_args(&o, false);
    rc = call(c, "modify", args, &r);
    if (rc != 0)
        return rc;
    return print_instance_result(c, r,
                                 "modified (takes effect at next start)");
}

static void
print_info(struct json_object *r)
{
    struct json_object *inst = json_object_object_get(r, "instance");
    struct json_object *dev = json_object_object_get(r, "device");
    struct json_object *a, *v;
    size_t i;

    printf("%s\n  parent: %s\n  type: %s\n  state: %s\n  socket: %s\n",
           str(inst, "uuid"), str(inst, "parent"), str(inst, "type"),
           str(inst, "state"), str(inst, "socket"));
    printf("  defined: %s\n  start: %s\n  owner: %s:%s\n  mode: %s\n",
           json_object_get_boolean(json_object_object_get(inst, "defined"))
               ? "yes"
               : "no (transient)",
           str(inst, "start"),
           str(json_object_object_get(inst, "owner"), "uid"),
           str(json_object_object_get(inst, "owner"), "gid"),
           str(inst, "mode"));
    if (json_object_object_get_ex(inst, "pid", &v))
        printf("  worker pid: %s\n", json_object_get_string(v));
    if (json_object_object_get_ex(inst, "lease_pid", &v))
        printf("  leased to pid: %s (an access-path queue)\n",
               json_object_get_string(v));
    if (json_object_object_get_ex(inst, "exit", &v))
        printf("  exit: %s (status %s, signal %s)\n", str(v, "reason"),
               str(v, "status"), str(v, "signal"));
    if (json_object_object_get_ex(inst, "attrs", &a) &&
        json_object_object_length(a) > 0) {
        printf("  attrs:\n");
        json_object_object_foreach(a, ak, av)
            printf("    %s=%s\n", ak, json_object_get_string(av));
    }
    if (dev == NULL)
        return;
    printf("  client pid: %s\n",
           json_object_object_get_ex(dev, "client_pid", &v)
               ? json_object_get_string(v)
               : "(no client attached)");
    a = json_object_object_get(dev, "regions");
    printf("  regions:\n");
    for (i = 0; i < json_object_array_length(a); i++) {
        struct json_object *reg = json_object_array_get_idx(a, i);

        printf("    %-6s size %-8s %s%s\n", str(reg, "name"),
               str(reg, "size"),
               json_object_get_boolean(json_object_object_get(reg, "mmap"))
                   ? "mmap "
                   : "",
               json_object_get_boolean(
                   json_object_object_get(reg, "trapped"))
                   ? "trapped"
                   : "");
    }
    a = json_object_object_get(dev, "irqs");
    printf("  irqs:\n");
    for (i = 0; i < json_object_array_length(a); i++) {
        struct json_object *q = json_object_array_get_idx(a, i);

        printf("    %-5s count %s\n", str(q, "name"), str(q, "count"));
    }
    printf("  counters:\n");
    json_object_object_foreach(json_object_object_get(dev, "counters"), k, cv)
        printf("    %-14s %s\n", k, json_object_get_string(cv));
    if (json_object_object_get_ex(dev, "profile", &v)) {
        struct json_object *regs = json_object_object_get(v, "regions");
        int64_t rd = 0, wr = 0;
        size_t nregs = 0, ri;

        for (i = 0; i < alen(regs); i++) {
            struct json_object *tr = json_object_object_get(
                json_object_array_get_idx(regs, i), "trapped");

            for (ri = 0; ri < alen(tr); ri++) {
                struct json_object *t = json_object_array_get_idx(tr, ri);

                rd += json_object_get_int64(json_object_object_get(t,
                                                                   "reads"));
                wr += json_object_get_int64(
                    json_object_object_get(t, "writes"));
                nregs++;
            }
        }
        printf("  traps: %lld reads, %lld writes on %zu declared registers; "
               "%s refused (umdevctl stats has the detail)\n",
               (long long)rd, (long long)wr, nregs, str(v, "refused"));
    }
    if (json_object_object_get_ex(dev, "endpoints", &a)) {
        printf("  endpoints:\n");
        /* A parent describes each endpoint as {kind, host_end[, path]}. */
        json_object_object_foreach(a, ek, ev)
        {
            if (json_object_is_type(ev, json_type_object))
                printf("    %-8s %-6s %s\n", ek, str(ev, "kind"),
                       str(ev, "host_end"));
            else
                printf("    %-8s %s\n", ek, json_object_get_string(ev));
        }
    }
}

static int
verb_info(struct ctx *c, int argc, char **argv)
{
    struct def_opts o;
    struct json_object *args, *r;
    int rc = parse_def_opts("info", "u", true, argc, argv, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (o.uuid == NULL)
        return usage_error("info", "-u UUID is required");
    args = json_object_new_object();
    json_object_object_add(args, "uuid", json_object_new_string(o.uuid));
    rc = call(c, "info", args, &r);
    if (rc != 0)
        return rc;
    if (c->json)
        print_json(r);
    else
        print_info(r);
    json_object_put(r);
    return 0;
}

static int
verb_version(struct ctx *c, int argc, char **argv)
{
    struct def_opts o;
    struct json_object *r;
    int rc = parse_def_opts("version", "", false, argc, argv, &o);

    if (rc != 0)
        return rc < 0 ? 0 : rc;
    rc = call(c, "version", json_object_new_object(), &r);
    if (rc != 0)
        return rc;
    if (c->json)
        print_json(r);
    else
        printf("umdevd %s, protocol %s\n", str(r, "daemon"),
               str(r, "protocol"));
    json_object_put(r);
    return 0;
}

/* ---- audit ------------------------------------------------------------- */

/* The length of @a, 0 when it is not an array (a field a reply lacks). */
static size_t
alen(struct json_object *a)
{
    return json_object_is_type(a, json_type_array)
               ? json_object_array_length(a)
               : 0;
}

/* Bound on one conformance run beyond its fuzz time (seconds). */
#define AUDIT_KIT_MARGIN_S 180

static volatile sig_atomic_t interrupted;

static void
on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Where umdev-conform is: next to this umdevctl (where `cmake --install`
 * puts both), else $UMDEV_CONFORM. Return: 0 with @out filled, or -1.
 */
static int
find_conform(char *out, size_t len, char *self, size_t selflen)
{
    const char *env = getenv("UMDEV_CONFORM");
    ssize_t n = readlink("/proc/self/exe", self, selflen - 1);
    char *slash;

    if (n > 0) {
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash != NULL &&
            snprintf(out, len, "%.*s/umdev-conform", (int)(slash - self),
                     self) < (int)len &&
            access(out, X_OK) == 0)
            return 0;
    } else {
        /* The kit then finds umdevctl on PATH. */
        snprintf(self, selflen, "umdevctl");
    }
    if (env != NULL && env[0] != '\0' && access(env, X_OK) == 0) {
        snprintf(out, len, "%s", env);
        return 0;
    }
    fprintf(stderr,
            "umdevctl audit: umdev-conform is neither next to umdevctl (%s) "
            "nor named by UMDEV_CONFORM%s%s\n",
            self, env ? ": not executable: " : "",
            env ? env : "");
    return -1;
}

/*
 * Run the kit against @sock with its arguments, collecting its JSON on
 * stdout. Return: the parsed array (caller puts it), or NULL after a
 * message.
 */
static struct json_object *
run_kit(struct ctx *c, const char *conform, const char *self,
        const char *sock, const char *uuid, const char *profile,
        const char *fuzz)
{
    int64_t deadline = mono_ms() + (AUDIT_KIT_MARGIN_S + atoi(fuzz)) * 1000;
    struct json_object *kit = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int p[2], status = 0;
    bool killed = false;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0) {
        perror("umdevctl audit: pipe");
        return NULL;
    }
    pid = fork();
    if (pid < 0) {
        perror("umdevctl audit: fork");
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    if (pid == 0) {
        /* The kit reads counters with `umdevctl info` of this daemon. */
        setenv("UMDEV_CONTROL", c->control, 1);
        dup2(p[1], STDOUT_FILENO);
        execl(conform, conform, sock, "--json", "--profile", profile,
              "--daemon-uuid", uuid, "--umdevctl", self, "--fuzz-seconds",
              fuzz, (char *)NULL);
        fprintf(stderr, "umdevctl audit: cannot run %s: %s\n", conform,
                strerror(errno));
        _exit(127);
    }
    close(p[1]);
    for (;;) {
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        int64_t left = deadline - mono_ms();
        ssize_t n;

        if (interrupted || left <= 0) {
            fprintf(stderr, "umdevctl audit: %s; stopping the kit\n",
                    interrupted ? "interrupted" : "the kit ran too long");
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        if (poll(&pfd, 1, left > 1000 ? 1000 : (int)left) <= 0)
            continue;
        if (len + 4096 > cap) {
            char *b = realloc(buf, cap ? cap * 2 : 65536);

            if (b == NULL)
                break;
            buf = b;
            cap = cap ? cap * 2 : 65536;
        }
        n = read(p[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(p[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!killed && buf != NULL) {
        buf[len] = '\0';
        kit = json_tokener_parse(buf);
    }
    free(buf);
    if (killed)
        ;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        fprintf(stderr, "umdevctl audit: umdev-conform failed (%s %d); see "
                        "its messages above\n",
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    else if (kit == NULL || !json_object_is_type(kit, json_type_array))
        fprintf(stderr, "umdevctl audit: umdev-conform printed no JSON "
                        "array\n");
    else
        return kit;
    json_object_put(kit);
    return NULL;
}

/*
 * --conformance: a private transient instance of the type owned by the
 * caller, the kit against it with the type's own profile, then stopped
 * whatever happened. Return: the kit's array, or NULL after a message.
 */
static struct json_object *
conformance_run(struct ctx *c, struct json_object *first, const char *fuzz)
{
    char conform[PATH_MAX], self[PATH_MAX], profile[] =
        "/tmp/umdevctl-profile-XXXXXX";
    struct json_object *doc = json_object_object_get(first, "audit");
    struct json_object *prof = json_object_object_get(doc, "profile");
    struct json_object *args, *r = NULL, *inst, *kit = NULL;
    struct sigaction sa = { .sa_handler = on_interrupt }, oi, ot;
    char uuid[64], sock[PATH_MAX];
    int fd;

    if (find_conform(conform, sizeof(conform), self, sizeof(self)) < 0)
        return NULL;
    if (prof == NULL) {
        fprintf(stderr, "umdevctl audit: the type declares no profile; the "
                        "kit has nothing to check it against\n");
        return NULL;
    }
    fd = mkstemp(profile);
    if (fd < 0 || json_object_to_fd(fd, prof, JSON_C_TO_STRING_PLAIN) < 0) {
        perror("umdevctl audit: profile file");
        if (fd >= 0) {
            close(fd);
            unlink(profile);
        }
        return NULL;
    }
    close(fd);
    args = json_object_new_object();
    json_object_object_add(args, "parent",
                           json_object_new_string(jstr(first, "parent", "")));
    json_object_object_add(args, "type",
                           json_object_new_string(jstr(first, "type", "")));
    if (getuid() != 0) {
        /* The kit connects as us: the socket and host ends must be ours. */
        struct json_object *own = json_object_new_object();

        json_object_object_add(own, "uid", json_object_new_int64(getuid()));
        json_object_object_add(own, "gid", json_object_new_int64(getgid()));
        json_object_object_add(args, "owner", own);
    }
    if (call(c, "start", args, &r) != 0) {
        unlink(profile);
        return NULL;
    }
    inst = json_object_object_get(r, "instance");
    snprintf(uuid, sizeof(uuid), "%s", str(inst, "uuid"));
    snprintf(sock, sizeof(sock), "%s", str(inst, "socket"));
    json_object_put(r);
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &oi);
    sigaction(SIGTERM, &sa, &ot);
    kit = run_kit(c, conform, self, sock, uuid, profile, fuzz);
    sigaction(SIGINT, &oi, NULL);
    sigaction(SIGTERM, &ot, NULL);
    unlink(profile);
    args = json_object_new_object();
    json_object_object_add(args, "uuid", json_object_new_string(uuid));
    json_object_object_add(args, "grace_ms", json_object_new_int(0));
    if (call(c, "stop", args, &r) == 0)
        json_object_put(r);
    else
        fprintf(stderr, "umdevctl audit: could not stop instance %s\n", uuid);
    if (interrupted) {
        json_object_put(kit);
        return NULL;
    }
    return kit;
}

static const char *
jstr(struct json_object *o, const char *key, const char *dflt)
{
    struct json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
        return dflt;
    return json_object_get_string(v);
}

static void
print_widths(struct json_object *t)
{
    struct json_object *w = json_object_object_get(t, "widths");
    size_t i;

    for (i = 0; i < alen(w); i++)
        printf("%s%s", i ? "/" : "",
               json_object_get_string(json_object_array_get_idx(w, i)));
    if (json_object_get_boolean(json_object_object_get(t, "bulk")))
        printf("%sbulk", i ? "/" : "");
}

static void
print_profile(struct json_object *p)
{
    struct json_object *dp = json_object_object_get(p, "data_path");
    struct json_object *regs = json_object_object_get(p, "regions");
    struct json_object *cfg = json_object_object_get(p, "config");
    struct json_object *a;
    size_t i, j;

    printf("profile:\n  data path: %s, at most %s socket messages per %s",
           jstr(dp, "kind", "?"), jstr(dp, "max_msgs_per_io", "?"),
           jstr(dp, "unit", "I/O"));
    if (json_object_object_get_ex(dp, "note", &a))
        printf(" (%s)", json_object_get_string(a));
    printf("\n");
    for (i = 0; i < alen(regs); i++) {
        struct json_object *r = json_object_array_get_idx(regs, i);
        struct json_object *mm = json_object_object_get(r, "mmap");
        struct json_object *tr = json_object_object_get(r, "trapped");

        printf("  %s (region %s, %s bytes): %zu trapped registers, ",
               jstr(r, "name", "?"), jstr(r, "index", "?"),
               jstr(r, "size", "?"), alen(tr));
        if (alen(mm) == 0)
            printf("nothing direct\n");
        for (j = 0; j < alen(mm); j++) {
            struct json_object *m = json_object_array_get_idx(mm, j);

            printf("%sdirect (mmappable) 0x%llx+0x%llx", j ? ", " : "",
                   (unsigned long long)json_object_get_int64(
                       json_object_object_get(m, "offset")),
                   (unsigned long long)json_object_get_int64(
                       json_object_object_get(m, "size")));
        }
        if (j > 0)
            printf("\n");
        for (j = 0; j < alen(tr); j++) {
            struct json_object *t = json_object_array_get_idx(tr, j);

            printf("    0x%04llx %-14s %4s bytes, widths ",
                   (unsigned long long)json_object_get_int64(
                       json_object_object_get(t, "offset")),
                   jstr(t, "name", "?"), jstr(t, "size", "?"));
            print_widths(t);
            printf(", %s%s%s: %s\n", jstr(t, "access", "?"),
                   json_object_get_boolean(
                       json_object_object_get(t, "data_path"))
                       ? ", data path"
                       : ", control",
                   json_object_get_boolean(
                       json_object_object_get(t, "volatile"))
                       ? ", volatile"
                       : "",
                   jstr(t, "purpose", ""));
        }
    }
    if (cfg != NULL) {
        printf("  config space: %s bytes; writable bits:\n",
               jstr(cfg, "size", "?"));
        a = json_object_object_get(cfg, "writable");
        for (i = 0; i < alen(a); i++) {
            struct json_object *w = json_object_array_get_idx(a, i);

            printf("    %-6s rw %-10s w1c %s\n", jstr(w, "offset", "?"),
                   jstr(w, "rw", "?"), jstr(w, "w1c", "?"));
        }
        a = json_object_object_get(cfg, "capabilities");
        printf("  capabilities:%s", alen(a) ? "" :
                                                                   " none");
        for (i = 0; i < alen(a); i++) {
            struct json_object *cp = json_object_array_get_idx(a, i);

            printf(" id %s at %s%s", jstr(cp, "id", "?"),
                   jstr(cp, "offset", "?"),
                   i + 1 < alen(a) ? "," : "");
        }
        printf("\n");
    }
    a = json_object_object_get(p, "irqs");
    printf("  irqs:");
    for (i = 0; i < alen(a); i++) {
        struct json_object *q = json_object_array_get_idx(a, i);

        printf(" %s (%s)", jstr(q, "name", "?"), jstr(q, "count", "?"));
    }
    printf("\n");
}

static void
print_audit(struct json_object *r)
{
    struct json_object *doc = json_object_object_get(r, "audit");
    struct json_object *crit = json_object_object_get(doc, "criteria");
    struct json_object *p = json_object_object_get(doc, "profile");
    size_t i;

    printf("audit of %s (parent %s)\n", jstr(r, "type", "?"),
           jstr(r, "parent", "?"));
    if (p != NULL)
        print_profile(p);
    else
        printf("profile: none declared\n");
    printf("criteria:\n");
    for (i = 0; i < alen(crit); i++) {
        struct json_object *k = json_object_array_get_idx(crit, i);

        printf("  %s. %-8s %s\n       %s\n", jstr(k, "id", "?"),
               jstr(k, "verdict", "?"), jstr(k, "name", ""),
               jstr(k, "evidence", ""));
    }
    printf("verdict: %s%s\n", jstr(doc, "verdict", "?"),
           strcmp(jstr(doc, "verdict", ""), "incomplete") == 0
               ? " (criteria marked 'not run' need --conformance)"
               : "");
}

static int
verb_audit(struct ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "type", required_argument, NULL, 't' },
        { "conformance", no_argument, NULL, 'C' },
        { "fuzz-seconds", required_argument, NULL, 'F' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *type = NULL, *fuzz = "10";
    struct json_object *args, *r, *kit;
    bool conformance = false, fuzz_set = false;
    int ch, rc;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 't':
            type = optarg;
            break;
        case 'C':
            conformance = true;
            break;
        case 'F': {
            char *end;
            long n = strtol(optarg, &end, 10);

            if (end == optarg || *end != '\0' || n < 1 || n > 3600)
                return usage_error("audit", "--fuzz-seconds takes 1 to "
                                            "3600; got '%s'",
                                   optarg);
            fuzz = optarg;
            fuzz_set = true;
            break;
        }
        case 'h':
            print_verb_help("audit");
            return 0;
        default:
            return usage_error("audit", "bad option");
        }
    }
    if (type == NULL && optind + 1 == argc)
        type = argv[optind++];
    if (optind != argc)
        return usage_error("audit", "unexpected argument '%s'",
                           argv[optind]);
    if (type == NULL)
        return usage_error("audit", "TYPE is required");
    if (fuzz_set && !conformance)
        return usage_error("audit", "--fuzz-seconds needs --conformance");
    args = json_object_new_object();
    json_object_object_add(args, "type", json_object_new_string(type));
    rc = call(c, "audit", args, &r);
    if (rc != 0)
        return rc;
    if (conformance) {
        kit = conformance_run(c, r, fuzz);
        if (kit == NULL) {
            json_object_put(r);
            return EXIT_REFUSED;
        }
        json_object_put(r);
        args = json_object_new_object();
        json_object_object_add(args, "type", json_object_new_string(type));
        json_object_object_add(args, "conformance", kit);
        rc = call(c, "audit", args, &r);
        if (rc != 0)
            return rc;
    }
    if (c->json)
        print_json(json_object_object_get(r, "audit"));
    else
        print_audit(r);
    rc = json_object_get_boolean(json_object_object_get(r, "all_pass"))
             ? 0
             : EXIT_REFUSED;
    json_object_put(r);
    return rc;
}

/* ---- stats ------------------------------------------------------------- */

/* "N" or, with a previous sample, "N (+D)". */
static void
num(const char *label, int64_t v, struct json_object *prev_obj,
    const char *key, bool have_prev)
{
    struct json_object *pv;
    int64_t d = 0;

    if (have_prev && prev_obj != NULL &&
        json_object_object_get_ex(prev_obj, key, &pv))
        d = v - json_object_get_int64(pv);
    printf("%s %lld", label, (long long)v);
    if (d != 0)
        printf(" (%+lld)", (long long)d);
}

static struct json_object *
find_named(struct json_object *arr, const char *name)
{
    size_t i;

    for (i = 0; i < alen(arr); i++) {
        struct json_object *o = json_object_array_get_idx(arr, i);

        if (strcmp(jstr(o, "name", ""), name) == 0)
            return o;
    }
    return NULL;
}

static void
print_stats(struct json_object *s, struct json_object *prev)
{
    struct json_object *ctr = json_object_object_get(s, "counters");
    struct json_object *pctr = prev ? json_object_object_get(prev, "counters")
                                    : NULL;
    struct json_object *regs = json_object_object_get(s, "regions");
    struct json_object *pregs = prev ? json_object_object_get(prev, "regions")
                                     : NULL;
    size_t i, j, n = 0;

    printf("%s (%s, %s)\n ", jstr(s, "uuid", "?"), jstr(s, "type", "?"),
           jstr(s, "state", "?"));
    json_object_object_foreach(ctr, k, v)
    {
        printf("%s", n++ % 4 == 0 && n > 1 ? "\n " : "");
        num(" ", json_object_get_int64(v), pctr, k, prev != NULL);
        printf(" %s", k);
    }
    printf("\n ");
    num(" refused", json_object_get_int64(json_object_object_get(s,
                                                                 "refused")),
        prev, "refused", prev != NULL);
    printf(" (accesses outside the mediation profile)\n");
    for (i = 0; i < alen(regs); i++) {
        struct json_object *r = json_object_array_get_idx(regs, i);
        struct json_object *pr = find_named(pregs, jstr(r, "name", ""));
        struct json_object *tr = json_object_object_get(r, "registers");
        size_t quiet = 0;

        printf("  %s trapped:", jstr(r, "name", "?"));
        num(" reads", json_object_get_int64(json_object_object_get(r, "reads")),
            pr, "reads", prev != NULL);
        num(", writes",
            json_object_get_int64(json_object_object_get(r, "writes")), pr,
            "writes", prev != NULL);
        printf("\n");
        for (j = 0; j < alen(tr); j++) {
            struct json_object *t = json_object_array_get_idx(tr, j);
            struct json_object *pt =
                pr ? find_named(json_object_object_get(pr, "registers"),
                                jstr(t, "name", ""))
                   : NULL;
            int64_t rd = json_object_get_int64(json_object_object_get(t,
                                                                      "reads"));
            int64_t wr = json_object_get_int64(
                json_object_object_get(t, "writes"));

            if (rd == 0 && wr == 0) {
                quiet++;
                continue;
            }
            printf("    %-16s", jstr(t, "name", "?"));
            num(" reads", rd, pt, "reads", prev != NULL);
            num(", writes", wr, pt, "writes", prev != NULL);
            printf("\n");
        }
        if (quiet > 0)
            printf("    (%zu registers not accessed)\n", quiet);
    }
    fflush(stdout);
}

static int
verb_stats(struct ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "uuid", required_argument, NULL, 'u' },
        { "watch", optional_argument, NULL, 'w' },
        { "count", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct sigaction sa = { .sa_handler = on_interrupt };
    const char *uuid = NULL;
    struct json_object *prev = NULL, *r;
    double interval = 0;
    long count = 1, i;
    bool watch = false, count_set = false;
    int ch, rc = 0;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "u:w::n:h", opts, NULL)) != -1) {
        char *end;

        switch (ch) {
        case 'u':
            uuid = optarg;
            break;
        case 'w':
            watch = true;
            interval = 1;
            /* --watch SECONDS as well as --watch=SECONDS. */
            if (optarg == NULL && optind < argc &&
                strspn(argv[optind], "0123456789.") == strlen(argv[optind]) &&
                argv[optind][0] != '\0')
                optarg = argv[optind++];
            if (optarg != NULL) {
                interval = strtod(optarg, &end);
                if (end == optarg || *end != '\0' || interval < 0.1 ||
                    interval > 3600)
                    return usage_error("stats", "--watch takes 0.1 to 3600 "
                                                "seconds; got '%s'",
                                       optarg);
            }
            break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (end == optarg || *end != '\0' || count < 1 ||
                count > 1000000)
                return usage_error("stats", "--count takes 1 to 1000000; "
                                            "got '%s'",
                                   optarg);
            count_set = true;
            break;
        case 'h':
            print_verb_help("stats");
            return 0;
        default:
            return usage_error("stats", "bad option");
        }
    }
    if (uuid == NULL && optind + 1 == argc)
        uuid = argv[optind++];
    if (optind != argc)
        return usage_error("stats", "unexpected argument '%s'",
                           argv[optind]);
    if (uuid == NULL)
        return usage_error("stats", "UUID is required");
    if (count_set && !watch)
        return usage_error("stats", "--count needs --watch");
    sigemptyset(&sa.sa_mask);
    if (watch)
        sigaction(SIGINT, &sa, NULL);
    for (i = 0; !interrupted; i++) {
        struct json_object *args = json_object_new_object();

        json_object_object_add(args, "uuid", json_object_new_string(uuid));
        rc = call(c, "stats", args, &r);
        if (rc != 0)
            break;
        if (c->json) {
            printf("%s\n", json_object_to_json_string_ext(
                               r, watch ? JSON_C_TO_STRING_PLAIN
                                        : JSON_C_TO_STRING_PRETTY));
            fflush(stdout);
        } else {
            if (watch)
                printf("%s--- sample %ld\n", i ? "\n" : "", i + 1);
            print_stats(r, prev);
        }
        json_object_put(prev);
        prev = r;
        if (!watch || (count_set && i + 1 >= count))
            break;
        {
            double whole = (double)(time_t)interval;
            struct timespec ts = {
                .tv_sec = (time_t)whole,
                .tv_nsec = (long)((interval - whole) * 1e9),
            };

            while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !interrupted)
                ;
        }
    }
    json_object_put(prev);
    return rc;
}

/* The instance options define, start and modify share. */
#define OPT_DEF                                                            \
    "  --owner USER       the socket's owner (default: the daemon's user);" \
    "\n                     the worker runs as this user\n"                \
    "  --group GROUP      the socket's group (default: USER's group)\n"     \
    "  --mode OCTAL       the socket's mode, owner rw required (default"    \
    " 0600)\n"                                                             \
    "  --attr KEY=VALUE   a device attribute (repeatable); serial: port0,"  \
    " port1 =\n                     socket | pty | none | /abs/socket/path\n"

static const struct verb verbs[] = {
    { "types", "[-p PARENT] [--json]", "list parents and their types",
      "  -p, --parent P     only the types of parent P\n",
      verb_types },
    { "list", "[--defined] [--dumpjson] [-u UUID] [-p PARENT] [--json]",
      "list running (or defined) instances",
      "  -d, --defined      definitions (in any state) instead of the "
      "instances\n"
      "                     that are not stopped\n"
      "  --dumpjson         print definitions as a JSON array in the on-disk "
      "shape\n"
      "  -u, --uuid U       only instance U\n"
      "  -p, --parent P     only instances of parent P\n",
      verb_list },
    { "define",
      "[-u UUID] -p PARENT -t TYPE [--auto|--manual] [--jsonfile FILE] "
      "[--owner USER] [--group GROUP] [--mode OCTAL] [--attr KEY=VALUE]...",
      "write a persistent definition",
      "  -u, --uuid U       the instance's UUID (default: a new random one); "
      "the\n"
      "                     UUID is printed on success\n"
      "  -p, --parent P     the parent device\n"
      "  -t, --type T       the type, with or without the 'PARENT-' prefix\n"
      "  -a, --auto         start it whenever umdevd starts\n"
      "  --manual           start it only on request (default)\n"
      "  --jsonfile FILE    take the fields from a JSON object (one element "
      "of\n"
      "                     'list --dumpjson'); options override it\n"
      OPT_DEF,
      verb_define },
    { "undefine", "-u UUID | UUID", "remove a definition",
      "  -u, --uuid U       the definition to remove (it must not be "
      "running)\n",
      verb_undefine },
    { "start",
      "-u UUID | UUID | -p PARENT -t TYPE [-u UUID] [--jsonfile FILE] "
      "[--owner USER] [--group GROUP] [--mode OCTAL] [--attr KEY=VALUE]...",
      "start a definition, or a transient instance",
      "  -u, --uuid U       the definition to start; with -p, the transient\n"
      "                     instance's UUID (default: a new random one)\n"
      "  -p, --parent P     start a transient instance of parent P (gone "
      "when\n"
      "                     stopped)\n"
      "  -t, --type T       its type\n"
      "  --jsonfile FILE    take its fields from a JSON object\n"
      OPT_DEF
      "Returns once the instance's socket is listening and prints its "
      "path.\n",
      verb_start },
    { "stop", "-u UUID | UUID [--grace MS]", "stop an instance",
      "  -u, --uuid U       the instance to stop\n"
      "  --grace MS         how long an attached VMM has to let go after "
      "the\n"
      "                     device request (REQ) IRQ (default 5000, at most "
      "600000)\n"
      "Stopping a failed instance acknowledges the failure.\n",
      verb_stop },
    { "modify",
      "-u UUID | UUID [-t TYPE] [--auto|--manual] [--attr KEY=VALUE]... "
      "[--delattr KEY]... [--owner USER] [--group GROUP] [--mode OCTAL]",
      "change a definition (applies at next start)",
      "  -u, --uuid U       the definition to change\n"
      "  -t, --type T       another type of the same parent\n"
      "  -a, --auto, -m, --manual\n"
      "                     the start policy\n"
      "  --delattr KEY      remove an attribute (repeatable)\n"
      OPT_DEF
      "A running instance keeps what it started with until it is started "
      "again.\n",
      verb_modify },
    { "info", "-u UUID | UUID [--json]",
      "socket, state, client, regions, IRQs and counters",
      "  -u, --uuid U       the instance; a running one also reports its "
      "device\n",
      verb_info },
    { "stats", "-u UUID | UUID [--watch [SECONDS]] [--count N] [--json]",
      "trap, refusal, DMA, IRQ and error counters of a running instance",
      "  -u, --uuid U       the instance (it must be running)\n"
      "  --watch [SECONDS]  print again every SECONDS (default 1, 0.1 to "
      "3600)\n"
      "                     with the change since the last sample, until "
      "SIGINT\n"
      "  --count N          with --watch: stop after N samples\n"
      "With --json, one result object (one line each with --watch).\n",
      verb_stats },
    { "audit", "TYPE [--conformance [--fuzz-seconds N]] [--json]",
      "check a type against docs/CRITERIA.md",
      "  -t, --type T       the type (e.g. serial-2port)\n"
      "  --conformance      also run umdev-conform against a private "
      "transient\n"
      "                     instance of T (found next to umdevctl, else "
      "at\n"
      "                     $UMDEV_CONFORM), so criteria 2, 4, 5, 6 get "
      "verdicts\n"
      "  --fuzz-seconds N   length of the kit's fuzz run (default 10)\n"
      "Prints the mediation profile and a verdict per criterion with its\n"
      "evidence; --json prints the audit document. Exit status: 0 every\n"
      "criterion passed, 1 one failed or did not run (or refused), 2 "
      "usage.\n",
      verb_audit },
    { "version", "[--json]", "daemon and protocol version", "", verb_version },
};

static const struct verb *
find_verb(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

static void
print_verb_help(const char *name)
{
    const struct verb *v = find_verb(name);

    printf("usage: umdevctl %s %s\n%s.\n%s", v->name, v->args, v->help,
           v->details);
    printf("Global options (before the verb): --control PATH, --json.\n"
           "Exit status: 0 ok, 1 refused by umdevd, 2 usage, 3 umdevd "
           "unreachable.\n");
}

static void
usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: umdevctl [--control PATH] [--json] VERB [ARGS]\n\n");
    for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].help);
    fprintf(f, "\n'umdevctl VERB --help' shows a verb's arguments.\n"
               "Exit status: 0 ok, 1 refused by umdevd, 2 usage, 3 umdevd "
               "unreachable.\n");
}

int
main(int argc, char **argv)
{
    struct ctx c = { 0 };
    const struct verb *v;
    char def[PATH_MAX];
    int i = 1, rc;

    signal(SIGPIPE, SIG_IGN);
    /* A default that does not fit is reported when it is used. */
    umdev_ctl_default_path(def, sizeof(def));
    c.control = def;
    /* Global options come before the verb; --json may also follow it. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--control") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "umdevctl: --control needs a PATH\n");
                return EXIT_USAGE;
            }
            c.control = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            c.json = true;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "umdevctl: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    v = find_verb(argv[i]);
    if (v == NULL) {
        fprintf(stderr, "umdevctl: unknown verb '%s'\n", argv[i]);
        usage(stderr);
        return EXIT_USAGE;
    }
    /* Strip a trailing/embedded --json so verbs need not know it. */
    {
        int j, k = 0;
        char **vargv = calloc((size_t)(argc - i + 1), sizeof(char *));

        if (vargv == NULL)
            return EXIT_USAGE;
        for (j = i; j < argc; j++) {
            if (strcmp(argv[j], "--json") == 0)
                c.json = true;
            else
                vargv[k++] = argv[j];
        }
        rc = v->run(&c, k, vargv);
        free(vargv);
    }
    umdev_ctl_close(c.ctl);
    return rc;
}
