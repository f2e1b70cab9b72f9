/*
 * umdevctl's verbs: each turns its options (options.c) into one control
 * request (more for stats --watch and audit --conformance) and hands the
 * result to a printer (print.c); and the table that names them, with
 * their help.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "accel_attrs.h"
#include "nvme_attrs.h"
#include "serial_attrs.h"
#include "umdev/ctl.h"
#include "umdevctl.h"

/* {"uuid": o->uuid}, and o->grace_ms when set. */
static struct json_object *
uuid_args(const struct cli_opts *o)
{
    struct json_object *a = json_object_new_object();

    json_object_object_add(a, "uuid", json_object_new_string(o->uuid));
    if (o->grace_ms >= 0)
        json_object_object_add(a, "grace_ms", json_object_new_int(o->grace_ms));
    return a;
}

/* Arguments of the form {KEY: VALUE} for each VALUE given. */
static struct json_object *
filter_args(const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct json_object *a = json_object_new_object();

    if (v1 != NULL)
        json_object_object_add(a, k1, json_object_new_string(v1));
    if (v2 != NULL)
        json_object_object_add(a, k2, json_object_new_string(v2));
    return a;
}

static int
verb_types(struct cli *c, struct cli_opts *o)
{
    struct json_object *args = filter_args("parent", o->parent, NULL, NULL);
    struct json_object *r;
    int rc;

    if (!o->dumpjson)
        return cli_run(c, "types", args, cli_print_types);
    /* --dumpjson prints mdevctl's shape, --json or not. */
    rc = cli_call(c, "types", args, &r);
    if (rc == 0)
        cli_print_types_dump(r);
    json_object_put(r);
    return rc;
}

static int
verb_list(struct cli *c, struct cli_opts *o)
{
    struct json_object *args, *r;
    int rc;

    if (o->dumpjson && o->verbose)
        return cli_usage_error("list", "--dumpjson and --verbose do not go "
                                       "together (--dumpjson has the "
                                       "attributes)");
    args = filter_args("uuid", o->uuid, "parent", o->parent);
    if (o->defined)
        json_object_object_add(args, "defined", json_object_new_boolean(true));
    if (!o->dumpjson)
        return cli_run(c, "list", args,
                       o->verbose ? cli_print_instances_verbose
                                  : cli_print_instances);
    /* --dumpjson prints mdevctl's shape, --json or not. */
    rc = cli_call(c, "list", args, &r);
    if (rc == 0)
        cli_print_definitions(r, o->uuid != NULL, o->defined);
    json_object_put(r);
    return rc;
}

static int
verb_define(struct cli *c, struct cli_opts *o)
{
    struct json_object *args = cli_def_args(o, true);

    if (args == NULL)
        return EXIT_USAGE;
    /* With the UUID alone, umdevd makes the running transient instance
     * of that UUID persistent (mdevctl's habit). */
    if (!json_object_object_get_ex(args, "uuid", NULL) &&
        (!json_object_object_get_ex(args, "parent", NULL) ||
         !json_object_object_get_ex(args, "type", NULL))) {
        json_object_put(args);
        return cli_usage_error("define",
                               "-p PARENT and -t TYPE are required (or -u "
                               "UUID of a running transient instance)");
    }
    return cli_run(c, "define", args, cli_print_defined);
}

/* The verbs that name an instance and print nothing but --json. */
static int
uuid_verb(struct cli *c, struct cli_opts *o, const char *verb,
          void (*print)(struct json_object *r))
{
    if (o->uuid == NULL)
        return cli_usage_error(verb, "-u UUID is required");
    return cli_run(c, verb, uuid_args(o), print);
}

/* Where the instance's data went, or stays. */
static void
print_undefined(struct json_object *r)
{
    struct json_object *v;

    if (json_object_object_get_ex(r, "removed", &v))
        printf("removed %s\n", json_object_get_string(v));
    if (json_object_object_get_ex(r, "kept", &v))
        printf("kept %s (undefine --delete-data removes it)\n",
               json_object_get_string(v));
}

static int
verb_undefine(struct cli *c, struct cli_opts *o)
{
    struct json_object *args;

    if (o->uuid == NULL)
        return cli_usage_error("undefine", "-u UUID is required");
    args = uuid_args(o);
    if (o->delete_data)
        json_object_object_add(args, "delete_data",
                               json_object_new_boolean(true));
    return cli_run(c, "undefine", args, print_undefined);
}

static int
verb_stop(struct cli *c, struct cli_opts *o)
{
    return uuid_verb(c, o, "stop", NULL);
}

/* The new worker, and how long the device was stopped for the swap. */
static void
print_restarted(struct json_object *r)
{
    struct json_object *pid, *old, *us;

    if (json_object_object_get_ex(r, "pid", &pid) &&
        json_object_object_get_ex(r, "old_pid", &old) &&
        json_object_object_get_ex(r, "blackout_us", &us))
        printf("restarted: worker pid %lld (was %lld), blackout %.3f ms\n",
               (long long)json_object_get_int64(pid),
               (long long)json_object_get_int64(old),
               (double)json_object_get_int64(us) / 1000.0);
}

/* Is @inst (a list entry) of type @type, by its full or short name? */
static bool
of_type(struct json_object *inst, const char *type)
{
    const char *full = cli_jstr(inst, "type", ""),
               *parent = cli_jstr(inst, "parent", "");
    size_t pl = strlen(parent);

    return strcmp(full, type) == 0 ||
           (pl > 0 && strncmp(full, parent, pl) == 0 && full[pl] == '-' &&
            strcmp(full + pl + 1, type) == 0);
}

/*
 * restart --all or -t TYPE: every running instance (of TYPE), one after
 * the other, so that only one device is stopped at a time. With --all an
 * instance whose parent cannot restart (ENOTSUP) is skipped with a note;
 * named by -t, it is a failure. Return: 0; EXIT_REFUSED when one failed
 * (the others were still tried); EXIT_NODAEMON.
 */
static int
restart_many(struct cli *c, struct cli_opts *o)
{
    struct json_object *r, *insts, *out = json_object_new_array();
    int rc, status = 0;
    size_t i;

    rc = cli_call(c, "list", json_object_new_object(), &r);
    if (rc != 0) {
        json_object_put(out);
        return rc;
    }
    insts = json_object_object_get(r, "instances");
    for (i = 0; i < cli_alen(insts) && !cli_interrupted; i++) {
        struct json_object *inst = json_object_array_get_idx(insts, i);
        const char *uuid = cli_jstr(inst, "uuid", "");
        struct json_object *args, *res = NULL;
        struct umdev_ctl_error e;

        if (strcmp(cli_jstr(inst, "state", ""), "running") != 0 ||
            (o->type != NULL && !of_type(inst, o->type)))
            continue;
        args = filter_args("uuid", uuid, NULL, NULL);
        rc = umdev_ctl_call(c->ctl, "restart", args, -1, &res, &e);
        json_object_put(args);
        if (rc == 0) {
            if (!c->json) {
                printf("%s: ", uuid);
                print_restarted(res);
            }
            json_object_array_add(out, res);
            continue;
        }
        if (rc != -EREMOTEIO) {
            fputs("umdevctl restart: ", stderr);
            cli_fputs_safe(stderr, e.message);
            fputc('\n', stderr);
            json_object_put(r);
            json_object_put(out);
            return EXIT_NODAEMON;
        }
        if (e.err == ENOENT)
            continue; /* stopped since the list */
        fprintf(stderr, "umdevctl restart: %s",
                e.err == ENOTSUP && o->all ? "skipped: " : "");
        cli_fputs_safe(stderr, e.message);
        fputc('\n', stderr);
        if (!(e.err == ENOTSUP && o->all))
            status = EXIT_REFUSED;
    }
    json_object_put(r);
    if (c->json) {
        struct json_object *safe = cli_safe(out);

        printf("%s\n",
               json_object_to_json_string_ext(safe, JSON_C_TO_STRING_PRETTY));
        json_object_put(safe);
    }
    json_object_put(out);
    return status;
}

static int
verb_restart(struct cli *c, struct cli_opts *o)
{
    if ((o->all || o->type != NULL) && o->uuid != NULL)
        return cli_usage_error("restart",
                               "name one instance, or --all / -t TYPE");
    if (o->all && o->type != NULL)
        return cli_usage_error("restart", "--all or -t TYPE, not both");
    if (o->all || o->type != NULL)
        return restart_many(c, o);
    return uuid_verb(c, o, "restart", print_restarted);
}

static int
verb_info(struct cli *c, struct cli_opts *o)
{
    return uuid_verb(c, o, "info", cli_print_info);
}

static int
verb_start(struct cli *c, struct cli_opts *o)
{
    struct json_object *args;

    if (o->parent == NULL && o->uuid == NULL)
        return cli_usage_error("start",
                               "give -u UUID (a definition) or -p PARENT -t "
                               "TYPE (transient)");
    if (o->parent != NULL && o->type == NULL && o->jsonfile == NULL)
        return cli_usage_error("start", "-t TYPE is required with -p (or "
                                        "a --jsonfile that names it)");
    if (o->parent == NULL &&
        (o->type != NULL || o->jsonfile != NULL || o->attrs != NULL ||
         o->user != NULL || o->group != NULL || o->mode != NULL))
        return cli_usage_error("start",
                               "-t, --jsonfile, --attr, --owner, --group and "
                               "--mode describe a transient instance and need "
                               "-p PARENT; to change a definition use "
                               "'umdevctl modify'");
    if (o->parent == NULL) {
        args = uuid_args(o);
    } else {
        args = cli_def_args(o, true);
        if (args == NULL)
            return EXIT_USAGE;
        json_object_object_del(args, "start");
    }
    return cli_run(c, "start", args, cli_print_started);
}

/*
 * mdevctl's `--delattr [--index N]`: the key of the definition's
 * attribute at position N (default: the last), in the order `list
 * --defined -v` shows them. Return: 0 with it in @o's attrs as a removal,
 * or an exit status after a message.
 */
static int
delattr_at(struct cli *c, struct cli_opts *o)
{
    struct json_object *args = filter_args("uuid", o->uuid, NULL, NULL);
    struct json_object *r, *inst, *attrs, *pend;
    const char *key = NULL;
    size_t n, i = 0;
    int rc;

    json_object_object_add(args, "defined", json_object_new_boolean(true));
    rc = cli_call(c, "list", args, &r);
    if (rc != 0)
        return rc;
    inst = json_object_array_get_idx(json_object_object_get(r, "instances"), 0);
    if (inst == NULL) {
        json_object_put(r);
        return cli_refuse(c, "modify", ENOENT,
                          "no definition %s (umdevctl list --defined shows "
                          "them)",
                          o->uuid);
    }
    /* The definition's attributes: what runs, with what is pending. */
    attrs = json_object_object_get(inst, "attrs");
    pend = json_object_object_get(json_object_object_get(inst, "pending"),
                                  "attrs");
    if (pend != NULL) {
        struct json_object *def = json_object_new_object();

        json_object_object_foreach(attrs, k, v)
            json_object_object_add(def, k, json_object_get(v));
        json_object_object_foreach(pend, pk, pv)
        {
            if (pv == NULL)
                json_object_object_del(def, pk);
            else
                json_object_object_add(def, pk, json_object_get(pv));
        }
        json_object_object_add(inst, "attrs", def);
        attrs = def;
    }
    n = json_object_object_length(attrs);
    if (n == 0 || (o->index >= 0 && (size_t)o->index >= n)) {
        if (n == 0)
            rc = cli_refuse(c, "modify", EINVAL,
                            "definition %s has no attributes to remove",
                            o->uuid);
        else
            rc = cli_refuse(c, "modify", EINVAL,
                            "definition %s has %zu attributes (--index 0 to "
                            "%zu); there is none at --index %ld",
                            o->uuid, n, n - 1, o->index);
        json_object_put(r);
        return rc;
    }
    json_object_object_foreach(attrs, k, v)
    {
        (void)v;
        if (o->index < 0 ? i == n - 1 : i == (size_t)o->index)
            key = k;
        i++;
    }
    if (o->attrs != NULL && json_object_object_get_ex(o->attrs, key, NULL)) {
        rc = cli_usage_error("modify",
                             "attribute '%s' (at --index %zu) is both set "
                             "and removed; give one of the two",
                             key, o->index < 0 ? n - 1 : (size_t)o->index);
        json_object_put(r);
        return rc;
    }
    if (o->attrs == NULL)
        o->attrs = json_object_new_object();
    json_object_object_add(o->attrs, key, NULL);
    json_object_put(r);
    return 0;
}

static int
verb_modify(struct cli *c, struct cli_opts *o)
{
    struct json_object *args;
    int rc;

    if (o->uuid == NULL)
        return cli_usage_error("modify", "-u UUID is required");
    if (o->del_at && (rc = delattr_at(c, o)) != 0)
        return rc;
    args = cli_def_args(o, true);
    if (args == NULL)
        return EXIT_USAGE;
    return cli_run(c, "modify", args, cli_print_modified);
}

static int
verb_import(struct cli *c, struct cli_opts *o)
{
    return cli_import(c, o->dir, o->parent_map);
}

static int
verb_version(struct cli *c, struct cli_opts *o)
{
    (void)o;
    return cli_run(c, "version", json_object_new_object(), cli_print_version);
}

static void
sleep_s(double s)
{
    double whole = (double)(time_t)s;
    struct timespec ts = {
        .tv_sec = (time_t)whole,
        .tv_nsec = (long)((s - whole) * 1e9),
    };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !cli_interrupted)
        ;
}

/*
 * The stats of every running instance, into @out (an array): what `list`
 * shows running, each asked in turn. One that stopped meanwhile is left
 * out; one whose worker does not answer is reported and left out (exit
 * status 1 at the end). Return: 0, EXIT_REFUSED, or an exit status of
 * cli_call().
 */
static int
stats_all(struct cli *c, struct json_object *out)
{
    struct json_object *r, *insts;
    int rc, status = 0;
    size_t i;

    rc = cli_call(c, "list", json_object_new_object(), &r);
    if (rc != 0)
        return rc;
    insts = json_object_object_get(r, "instances");
    for (i = 0; i < cli_alen(insts); i++) {
        struct json_object *inst = json_object_array_get_idx(insts, i);
        struct json_object *args, *s = NULL;
        struct umdev_ctl_error e;

        if (strcmp(cli_jstr(inst, "state", ""), "running") != 0)
            continue;
        args = filter_args("uuid", cli_jstr(inst, "uuid", ""), NULL, NULL);
        rc = umdev_ctl_call(c->ctl, "stats", args, -1, &s, &e);
        json_object_put(args);
        if (rc == 0) {
            json_object_array_add(out, s);
            continue;
        }
        if (rc != -EREMOTEIO) {
            fputs("umdevctl stats: ", stderr);
            cli_fputs_safe(stderr, e.message);
            fputc('\n', stderr);
            json_object_put(r);
            return EXIT_NODAEMON;
        }
        if (e.err == ENOENT)
            continue; /* stopped since the list */
        fputs("umdevctl stats: ", stderr);
        cli_fputs_safe(stderr, e.message);
        fputc('\n', stderr);
        status = EXIT_REFUSED;
    }
    json_object_put(r);
    return status;
}

/* stats --all or --openmetrics: one sample, of one or every instance. */
static int
stats_once(struct cli *c, struct cli_opts *o)
{
    struct json_object *arr = json_object_new_array(), *r;
    int rc;
    size_t i;

    if (o->all) {
        rc = stats_all(c, arr);
    } else {
        rc = cli_call(c, "stats", uuid_args(o), &r);
        if (rc == 0)
            json_object_array_add(arr, r);
    }
    if (rc == EXIT_NODAEMON || rc == EXIT_USAGE ||
        (rc != 0 && cli_alen(arr) == 0 && !o->all)) {
        json_object_put(arr);
        return rc;
    }
    if (o->openmetrics) {
        struct json_object *safe = cli_safe(arr);

        cli_print_openmetrics(safe);
        json_object_put(safe);
    } else if (c->json) {
        struct json_object *w = json_object_new_object();

        json_object_object_add(w, "instances", json_object_get(arr));
        cli_print_json(w);
        json_object_put(w);
    } else {
        struct json_object *safe = cli_safe(arr);

        for (i = 0; i < cli_alen(safe); i++) {
            if (i > 0)
                putchar('\n');
            cli_print_stats(json_object_array_get_idx(safe, i), NULL);
        }
        json_object_put(safe);
    }
    json_object_put(arr);
    return rc;
}

static int
verb_stats(struct cli *c, struct cli_opts *o)
{
    struct sigaction sa = { .sa_handler = cli_on_interrupt };
    struct json_object *prev = NULL, *r;
    long i;
    int rc = 0;

    if (o->all && o->uuid != NULL)
        return cli_usage_error("stats", "give a UUID or --all, not both");
    if (o->uuid == NULL && !o->all)
        return cli_usage_error("stats", "UUID is required (or --all)");
    if (o->count_set && !o->watch)
        return cli_usage_error("stats", "--count needs --watch");
    if (o->openmetrics && c->json)
        return cli_usage_error("stats", "--openmetrics and --json are two "
                                        "formats; give one");
    if (o->watch && (o->all || o->openmetrics))
        return cli_usage_error("stats",
                               "--watch follows one instance in text or "
                               "--json; --all and --openmetrics print one "
                               "sample (run them as often as you need)");
    if (o->all || o->openmetrics)
        return stats_once(c, o);
    sigemptyset(&sa.sa_mask);
    if (o->watch)
        sigaction(SIGINT, &sa, NULL);
    for (i = 0; !cli_interrupted; i++) {
        rc = cli_call(c, "stats", uuid_args(o), &r);
        if (rc != 0)
            break;
        if (c->json) {
            /* One line per sample when watching, for line readers. */
            cli_print_json_ext(r, o->watch ? JSON_C_TO_STRING_PLAIN
                                           : JSON_C_TO_STRING_PRETTY);
            fflush(stdout);
        } else {
            struct json_object *safe = cli_safe(r);

            json_object_put(r);
            r = safe;
            if (o->watch)
                printf("%s--- sample %ld\n", i ? "\n" : "", i + 1);
            cli_print_stats(r, prev);
        }
        json_object_put(prev);
        prev = r;
        if (!o->watch || (o->count_set && i + 1 >= o->count))
            break;
        /* A connection from outside the management group is closed
         * after 10 s idle (docs/CONTROL.md "Limits"): connect again for
         * each sample rather than sit on one. */
        umdev_ctl_close(c->ctl);
        c->ctl = NULL;
        sleep_s(o->interval);
    }
    json_object_put(prev);
    return rc;
}

static struct json_object *
audit_args(const char *type, struct json_object *kit)
{
    struct json_object *a = filter_args("type", type, NULL, NULL);

    if (kit != NULL)
        json_object_object_add(a, "conformance", kit);
    return a;
}

static int
verb_audit(struct cli *c, struct cli_opts *o)
{
    struct json_object *r, *kit;
    int rc;

    if (o->type == NULL)
        return cli_usage_error("audit", "TYPE is required");
    if (o->fuzz_set && !o->conformance)
        return cli_usage_error("audit", "--fuzz-seconds needs --conformance");
    rc = cli_call(c, "audit", audit_args(o->type, NULL), &r);
    if (rc != 0)
        return rc;
    if (o->conformance) {
        /* Criteria that need traffic get the kit's run against a
         * private instance of the type, in a second audit. */
        kit = cli_conformance_run(c, r, o->fuzz);
        json_object_put(r);
        if (kit == NULL)
            return EXIT_REFUSED;
        rc = cli_call(c, "audit", audit_args(o->type, kit), &r);
        if (rc != 0)
            return rc;
    }
    if (c->json) {
        cli_print_json(json_object_object_get(r, "audit"));
    } else {
        struct json_object *safe = cli_safe(r);

        cli_print_audit(safe);
        json_object_put(safe);
    }
    rc = json_object_get_boolean(json_object_object_get(r, "all_pass"))
             ? 0
             : EXIT_REFUSED;
    json_object_put(r);
    return rc;
}

/* What getopt knows for the verbs that share define's options: any of
 * them a verb does not take is "does not apply here". */
#define DEF_SHORTS "u:p:t:amh"
#define DEF_KNOWN "uptamjAogMGJ"

/* The instance options define, start and modify share. */
#define OPT_DEF                                                                \
    "  --owner USER       the socket's owner (default: the daemon's user);"    \
    "\n                     the worker runs as this user\n"                    \
    "  --group GROUP      the socket's group (default: USER's group)\n"        \
    "  --mode OCTAL       the socket's mode, owner rw required (default"       \
    " 0600)\n"                                                                 \
    "  --attr KEY=VALUE   a device attribute (repeatable; each type's are"     \
    "\n                     listed below)\n"

static const struct cli_verb verbs[] = {
    { "types", "[-p PARENT] [--dumpjson] [--json]",
      "list parents and their types",
      "  -p, --parent P     only the types of parent P\n"
      "  --dumpjson         print them in mdevctl's JSON shape\n",
      DEF_SHORTS, DEF_KNOWN, "pJ", CLI_BARE_NONE, verb_types, NULL, false },
    { "list", "[--defined] [--dumpjson] [-v] [-u UUID] [-p PARENT] [--json]",
      "list running (or defined) instances",
      "  -d, --defined      definitions (in any state) instead of the "
      "instances\n"
      "                     that are not stopped\n"
      "  --dumpjson         print them in mdevctl's JSON shape (one object "
      "with -u)\n"
      "                     with umdev's owner and mode; a file of one is "
      "a --jsonfile\n"
      "  -v, --verbose      each with its attributes\n"
      "  -u, --uuid U       only instance U\n"
      "  -p, --parent P     only instances of parent P\n"
      "A running instance shows what it runs with; a definition changed "
      "since\n"
      "(modify) is marked '(pending: FIELDS)' until it is started "
      "again.\n",
      "du:p:vh", "dJupv", "dJupv", CLI_BARE_NONE, verb_list, NULL, false },
    { "define",
      "[-u UUID] -p PARENT -t TYPE [--auto|--manual] [--jsonfile FILE] "
      "[--owner USER] [--group GROUP] [--mode OCTAL] [--attr KEY=VALUE]...",
      "write a persistent definition",
      "  -u, --uuid U       the instance's UUID (default: a new random one); "
      "the\n"
      "                     UUID is printed on success. U alone: the "
      "running\n"
      "                     transient instance U becomes persistent as it "
      "runs\n"
      "  -p, --parent P     the parent device\n"
      "  -t, --type T       the type, with or without the 'PARENT-' prefix\n"
      "  -a, --auto         start it whenever umdevd starts\n"
      "  -m, --manual       start it only on request (default)\n"
      "  --jsonfile FILE    take the fields from a JSON object: umdev's "
      "definition,\n"
      "                     or mdevctl's (mdev_type, start, attrs list, as "
      "'list\n"
      "                     -u U --dumpjson' prints it); options override "
      "it\n" OPT_DEF,
      DEF_SHORTS, DEF_KNOWN, "uptamjAogM", CLI_BARE_UUID, verb_define, NULL,
      true },
    { "undefine", "-u UUID | UUID [--delete-data]", "remove a definition",
      "  -u, --uuid U       the definition to remove (it must not be "
      "running)\n"
      "  --delete-data      remove the data it keeps across runs too (an "
      "nvme\n"
      "                     instance's backing file); without it the data "
      "stays\n"
      "                     and its place is printed\n",
      DEF_SHORTS, DEF_KNOWN "D", "uD", CLI_BARE_UUID, verb_undefine, NULL,
      false },
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
      "  --jsonfile FILE    take its fields from a JSON object\n" OPT_DEF
      "Returns once the instance's socket is listening and prints its "
      "path.\n",
      DEF_SHORTS, DEF_KNOWN, "uptjAogM", CLI_BARE_UUID, verb_start, NULL,
      true },
    { "stop", "-u UUID | UUID [--grace MS]", "stop an instance",
      "  -u, --uuid U       the instance to stop\n"
      "  --grace MS         how long an attached VMM has to let go after "
      "the\n"
      "                     device request (REQ) IRQ (default 5000, at most "
      "600000)\n"
      "Stopping a failed instance acknowledges the failure.\n",
      DEF_SHORTS, DEF_KNOWN, "uG", CLI_BARE_UUID, verb_stop, NULL, false },
    { "restart", "-u UUID | UUID | --all | -t TYPE",
      "serve a running instance from a new worker, its VMM attached",
      "  -u, --uuid U       the instance to restart\n"
      "  --all              every running instance, one at a time (those "
      "whose\n"
      "                     parent cannot restart are skipped, with a "
      "note)\n"
      "  -t, --type T       every running instance of type T, one at a "
      "time\n"
      "The new worker is started from the umdevd installed now and takes\n"
      "over the device, its socket, its client's connection, DMA maps and\n"
      "interrupts; the old one exits. Prints the new pid and the blackout\n"
      "(how long the device was stopped). If the new worker fails, the "
      "old\n"
      "one serves on and the error says why. Accel and nvme instances "
      "only:\n"
      "serial ones are refused (ENOTSUP), their host ends are not carried.\n",
      DEF_SHORTS, DEF_KNOWN "K", "utK", CLI_BARE_UUID, verb_restart, NULL,
      false },
    { "modify",
      "-u UUID | UUID [-p PARENT] [-t TYPE] [--auto|--manual] "
      "[--attr KEY=VALUE]... [--addattr KEY --value VALUE] "
      "[--delattr KEY]... [--delattr [--index N]] [--owner USER] "
      "[--group GROUP] [--mode OCTAL]",
      "change a definition (applies at next start)",
      "  -u, --uuid U       the definition to change\n"
      "  -p, --parent P     its parent (it cannot change: a check)\n"
      "  -t, --type T       another type of the same parent\n"
      "  -a, --auto, -m, --manual\n"
      "                     the start policy\n"
      "  --addattr KEY --value VALUE\n"
      "                     as --attr KEY=VALUE (mdevctl's form)\n"
      "  --delattr KEY      remove attribute KEY (repeatable); it must be "
      "set\n"
      "  --delattr [-i, --index N]\n"
      "                     remove the attribute at position N, as 'list "
      "-d -v'\n"
      "                     numbers them (default: the last; mdevctl's "
      "form)\n" OPT_DEF
      "A key both set and removed, or removed but not set, is refused and\n"
      "nothing changes. A running instance keeps what it started with "
      "until it\n"
      "is started again ('info' and 'list' show the change as pending).\n",
      "u:p:t:ami:h", "uptamAXogMBLi", "uptamAXogMBLi", CLI_BARE_UUID,
      verb_modify, NULL, false },
    { "info", "-u UUID | UUID [--json]",
      "socket, state, client, regions, IRQs and counters",
      "  -u, --uuid U       the instance; a running one also reports its "
      "device\n",
      DEF_SHORTS, DEF_KNOWN, "u", CLI_BARE_UUID, verb_info, NULL, false },
    { "stats",
      "-u UUID | UUID | --all [--watch [SECONDS]] [--count N] "
      "[--openmetrics] [--json]",
      "trap, refusal, DMA, IRQ and error counters of a running instance",
      "  -u, --uuid U       the instance (it must be running)\n"
      "  --all              every running instance\n"
      "  --openmetrics      print them in the OpenMetrics (Prometheus) text "
      "format:\n"
      "                     one family per counter, labels uuid, type, "
      "parent\n"
      "  --watch [SECONDS]  print again every SECONDS (default 1, 0.1 to "
      "3600)\n"
      "                     with the change since the last sample, until "
      "SIGINT\n"
      "  --count N          with --watch: stop after N samples\n"
      "With --json, one result object (one line each with --watch).\n",
      "u:w::n:h", "uwnKO", "uwnKO", CLI_BARE_UUID, verb_stats, NULL, false },
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
      "TYPE may be the full name or, as for the other verbs, the name "
      "without its\n"
      "'PARENT-' prefix when only one parent has it.\n"
      "Prints the mediation profile and a verdict per criterion with its\n"
      "evidence; --json prints the audit document.\n",
      "t:h", "tCF", "tCF", CLI_BARE_TYPE, verb_audit,
      "Exit status: 0 every criterion passed, 1 one failed or did not run "
      "(or\n"
      "umdevd refused), 2 usage, 3 umdevd unreachable.\n",
      false },
    { "import", "[DIR] [--parent-map HOSTPARENT=PARENT]... [--json]",
      "define mdevctl's definitions (DIR/PARENT/UUID) in umdevd",
      "  DIR                laid out like /etc/mdevctl.d (the default): "
      "PARENT/UUID\n"
      "                     files in mdevctl's JSON\n"
      "  --parent-map HOSTPARENT=PARENT\n"
      "                     define the files of DIR/HOSTPARENT (mdevctl's "
      "parent,\n"
      "                     e.g. 0000:00:02.0) on umdevd's parent PARENT "
      "(repeatable)\n"
      "A directory's parent is the one --parent-map names, else the "
      "directory's\n"
      "name if umdevd has that parent, else for each file the one parent "
      "that\n"
      "offers its mdev_type (none, or more than one: skipped, with the "
      "reason).\n"
      "Each becomes one 'define'; scripts.d and a UUID umdevd has defined "
      "already\n"
      "are reported as skipped, never changed.\n",
      "h", "P", "P", CLI_BARE_DIR, verb_import,
      "Exit status: 0 every definition defined or skipped, 1 one refused, "
      "2 usage\n"
      "or DIR unreadable (nothing defined), 3 umdevd unreachable.\n",
      false },
    { "migrate", "-u UUID | UUID --to CONTROL-SOCKET [--handshake] [--json]",
      "move a running instance to another umdevd",
      "  -u, --uuid U       the instance to move\n"
      "  --to SOCKET        the destination umdevd's control socket; it "
      "starts a\n"
      "                     transient instance of the same UUID, parent, "
      "type,\n"
      "                     owner, mode and attributes, and takes the "
      "device's state\n"
      "  --handshake        the VMM takes part (needed when one is "
      "attached): lines\n"
      "                     'stop', then 'attach SOCKET' are printed and "
      "each waits\n"
      "                     for 'go' on stdin (pause the vCPUs; connect, "
      "map memory\n"
      "                     and set interrupts at the destination), then "
      "'done ...'\n"
      "                     or 'abort REASON' (docs/CLI.md)\n"
      "On success the source instance is stopped; on failure it runs on "
      "with its\n"
      "state and the destination's instance is stopped.\n",
      DEF_SHORTS, DEF_KNOWN "TH", "uTH", CLI_BARE_UUID, cli_verb_migrate, NULL,
      false },
    { "screenshot", "-u UUID FILE | UUID FILE [--json]",
      "write the screen of a running display instance as a PNG",
      "  -u, --uuid U       the instance (running, of a type that shows a "
      "screen:\n"
      "                     display-*); root, the management group or its "
      "owner\n"
      "  FILE               the PNG to write (replaced if it exists)\n"
      "The screen as the guest shows it: its mode, pitch, offsets and "
      "byte order.\n"
      "A blanked screen is black at its mode's size; with no mode set "
      "(power-on,\n"
      "or the guest disabled it) black at 640x480.\n",
      DEF_SHORTS, DEF_KNOWN, "u", CLI_BARE_UUID_FILE, cli_verb_screenshot, NULL,
      false },
    { "version", "[--json]", "daemon and protocol version", "", DEF_SHORTS,
      DEF_KNOWN, "", CLI_BARE_NONE, verb_version, NULL, false },
};

#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

const struct cli_verb *
cli_find_verb(const char *name)
{
    size_t i;

    for (i = 0; i < N_VERBS; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

void
cli_print_verb_help(const struct cli_verb *v)
{
    printf("usage: umdevctl %s %s\n%s.\n%s", v->name, v->args, v->help,
           v->details);
    printf("Global options (before the verb): --control PATH, --json.\n%s",
           v->exits != NULL ? v->exits
                            : "Exit status: 0 ok, 1 refused by umdevd, 2 "
                              "usage, 3 umdevd unreachable.\n");
}

void
cli_usage(FILE *f)
{
    size_t i;
    int width = 0;

    /* Two blanks at least after the longest verb: the completion and the
     * man page check split the list there. */
    for (i = 0; i < N_VERBS; i++)
        if ((int)strlen(verbs[i].name) > width)
            width = (int)strlen(verbs[i].name);
    fprintf(f, "usage: umdevctl [--control PATH] [--json] VERB [ARGS]\n"
               "       umdevctl --version | -V\n\n");
    for (i = 0; i < N_VERBS; i++)
        fprintf(f, "  %-*s  %s\n", width, verbs[i].name, verbs[i].help);
    fprintf(f, "\n'umdevctl VERB --help' shows a verb's arguments.\n"
               "Exit status: 0 ok, 1 refused by umdevd, 2 usage, 3 umdevd "
               "unreachable.\n");
}

/* @text after @indent, wrapped at 78 columns. */
static void
print_wrapped(const char *indent, const char *text)
{
    size_t col = 0, w;

    while (*text != '\0') {
        text += strspn(text, " ");
        w = strcspn(text, " ");
        if (w == 0)
            break;
        if (col > 0 && col + 1 + w > 78) {
            putchar('\n');
            col = 0;
        }
        if (col == 0)
            col = (size_t)printf("%s", indent);
        else
            col += (size_t)printf(" ");
        col += (size_t)printf("%.*s", (int)w, text);
        text += w;
    }
    if (col > 0)
        putchar('\n');
}

static void
print_attr(const char *name, const char *help)
{
    printf("    ");
    cli_fputs_safe(stdout, name);
    printf(":\n");
    print_wrapped("      ", help);
}

/* From umdevd: Return 0, or -1 when it could not be asked. */
static int
attr_help_daemon(struct cli *c)
{
    struct json_object *r = NULL, *types, *safe, *args;
    char line[PATH_MAX + 128];
    int rc;
    struct umdev_ctl *ctl;
    struct umdev_ctl_error e;
    size_t i, j;

    /* Help must not hang on a daemon that does not answer. */
    if (umdev_ctl_connect(c->control, 1000, &ctl) < 0)
        return -1;
    args = json_object_new_object();
    rc = umdev_ctl_call(ctl, "types", args, 2000, &r, &e);
    json_object_put(args);
    umdev_ctl_close(ctl);
    if (rc < 0)
        return -1;
    safe = cli_safe(r);
    json_object_put(r);
    types = json_object_object_get(safe, "types");
    snprintf(line, sizeof(line),
             "Attributes (--attr KEY=VALUE) of the types umdevd at %s "
             "offers:",
             c->control);
    putchar('\n');
    print_wrapped("", line);
    for (i = 0; i < cli_alen(types); i++) {
        struct json_object *t = json_object_array_get_idx(types, i);
        struct json_object *a = json_object_object_get(t, "attributes");

        printf("  %s%s\n", cli_jstr(t, "name", "?"),
               cli_alen(a) == 0 ? ": none described" : "");
        for (j = 0; j < cli_alen(a); j++) {
            struct json_object *at = json_object_array_get_idx(a, j);

            print_attr(cli_jstr(at, "name", "?"), cli_jstr(at, "help", ""));
        }
    }
    json_object_put(safe);
    return 0;
}

void
cli_print_attr_help(struct cli *c)
{
    static const struct {
        const char *parent;
        const struct umdev_parent_attr *attrs;
        size_t n;
    } builtin[] = {
        { "serial", serial_attrs, SERIAL_NATTRS },
        { "accel", accel_attrs, ACCEL_NATTRS },
        { "nvme", nvme_attrs, NVME_NATTRS },
    };
    char line[PATH_MAX + 160];
    size_t i, j;

    fflush(stdout);
    if (attr_help_daemon(c) == 0)
        return;
    snprintf(line, sizeof(line),
             "Attributes (--attr KEY=VALUE) of the built-in parents' types "
             "(umdevd at %s could not be asked; when it can be, its "
             "plug-ins' types are listed too):",
             c->control);
    putchar('\n');
    print_wrapped("", line);
    for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        printf("  %s (every type)\n", builtin[i].parent);
        for (j = 0; j < builtin[i].n; j++)
            print_attr(builtin[i].attrs[j].name, builtin[i].attrs[j].help);
    }
}
