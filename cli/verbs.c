/*
 * umdevctl's verbs: each turns its options (options.c) into one control
 * request (more for stats --watch and audit --conformance) and hands the
 * result to a printer (print.c); and the table that names them, with
 * their help.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

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
    return cli_run(c, "types", filter_args("parent", o->parent, NULL, NULL),
                   cli_print_types);
}

static int
verb_list(struct cli *c, struct cli_opts *o)
{
    struct json_object *args =
        filter_args("uuid", o->uuid, "parent", o->parent);
    struct json_object *r;
    int rc;

    if (o->defined)
        json_object_object_add(args, "defined", json_object_new_boolean(true));
    if (!o->dumpjson)
        return cli_run(c, "list", args, cli_print_instances);
    /* --dumpjson prints its own JSON, --json or not. */
    rc = cli_call(c, "list", args, &r);
    if (rc == 0)
        cli_print_definitions(r);
    json_object_put(r);
    return rc;
}

static int
verb_define(struct cli *c, struct cli_opts *o)
{
    struct json_object *args = cli_def_args(o, true);

    if (args == NULL)
        return EXIT_USAGE;
    if (!json_object_object_get_ex(args, "parent", NULL) ||
        !json_object_object_get_ex(args, "type", NULL)) {
        json_object_put(args);
        return cli_usage_error("define", "-p PARENT and -t TYPE are required");
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

static int
verb_undefine(struct cli *c, struct cli_opts *o)
{
    return uuid_verb(c, o, "undefine", NULL);
}

static int
verb_stop(struct cli *c, struct cli_opts *o)
{
    return uuid_verb(c, o, "stop", NULL);
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
    if (o->parent != NULL && o->type == NULL)
        return cli_usage_error("start", "-t TYPE is required with -p");
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

static int
verb_modify(struct cli *c, struct cli_opts *o)
{
    if (o->uuid == NULL)
        return cli_usage_error("modify", "-u UUID is required");
    return cli_run(c, "modify", cli_def_args(o, false), cli_print_modified);
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
 * The stats of every running instance (or of @uuid alone, when not NULL),
 * as {"instances": [...]}: each a
 * stats object with the instance's parent added, or, for a worker that
 * did not answer, {"uuid", "type", "parent", "state", "error": {"code",
 * "message"}} (after a line on stderr). An instance that stopped between
 * the list and its stats is left out. Return: 0; EXIT_REFUSED if some
 * worker did not answer (*out is complete all the same); EXIT_NODAEMON.
 */
static int
stats_all(struct cli *c, const char *uuid_only, struct json_object **out)
{
    struct json_object *list, *insts, *all;
    size_t i;
    int rc, status = 0;

    *out = NULL;
    rc = cli_call(c, "list", filter_args("uuid", uuid_only, NULL, NULL), &list);
    if (rc != 0)
        return rc;
    insts = json_object_object_get(list, "instances");
    all = json_object_new_array();
    for (i = 0; i < cli_alen(insts); i++) {
        struct json_object *inst = json_object_array_get_idx(insts, i);
        const char *uuid = cli_jstr(inst, "uuid", "");
        struct json_object *args = json_object_new_object(), *s = NULL;
        struct umdev_ctl_error e;

        if (strcmp(cli_jstr(inst, "state", ""), "running") != 0) {
            json_object_put(args);
            continue;
        }
        json_object_object_add(args, "uuid", json_object_new_string(uuid));
        rc = umdev_ctl_call(c->ctl, "stats", args, -1, &s, &e);
        json_object_put(args);
        if (rc == -EREMOTEIO && e.err == ENOENT)
            continue; /* stopped meanwhile */
        if (rc != 0 && rc != -EREMOTEIO) {
            fputs("umdevctl: ", stderr);
            cli_fputs_safe(stderr, e.message);
            fputc('\n', stderr);
            json_object_put(all);
            json_object_put(list);
            return EXIT_NODAEMON;
        }
        if (rc != 0) {
            struct json_object *err = json_object_new_object();

            fprintf(stderr, "umdevctl stats: %s: ", uuid);
            cli_fputs_safe(stderr, e.message);
            fputc('\n', stderr);
            json_object_object_add(err, "code", json_object_new_string(e.code));
            json_object_object_add(err, "message",
                                   json_object_new_string(e.message));
            s = json_object_new_object();
            json_object_object_add(s, "uuid", json_object_new_string(uuid));
            json_object_object_add(
                s, "type", json_object_new_string(cli_jstr(inst, "type", "")));
            json_object_object_add(s, "state",
                                   json_object_new_string("running"));
            json_object_object_add(s, "error", err);
            status = EXIT_REFUSED;
        }
        json_object_object_add(
            s, "parent", json_object_new_string(cli_jstr(inst, "parent", "")));
        json_object_array_add(all, s);
    }
    json_object_put(list);
    if (uuid_only != NULL && json_object_array_length(all) == 0) {
        fprintf(stderr, "umdevctl stats: %s is not running\n", uuid_only);
        json_object_put(all);
        return EXIT_REFUSED;
    }
    *out = json_object_new_object();
    json_object_object_add(*out, "instances", all);
    return status;
}

/* The entry of @uuid in @prev's instances, for --watch's changes. */
static struct json_object *
prev_of(struct json_object *prev, const char *uuid)
{
    struct json_object *a = json_object_object_get(prev, "instances");
    size_t i;

    for (i = 0; i < cli_alen(a); i++) {
        struct json_object *s = json_object_array_get_idx(a, i);

        if (strcmp(cli_jstr(s, "uuid", ""), uuid) == 0)
            return s;
    }
    return NULL;
}

static void
print_stats_sample(struct cli *c, struct cli_opts *o, struct json_object *r,
                   struct json_object *prev)
{
    struct json_object *a;
    size_t i;

    if (o->openmetrics) {
        cli_print_openmetrics(stdout, json_object_object_get(r, "instances"));
        return;
    }
    if (c->json) {
        /* One line per sample when watching, for line readers. */
        cli_print_json_ext(r, o->watch ? JSON_C_TO_STRING_PLAIN
                                       : JSON_C_TO_STRING_PRETTY);
        fflush(stdout);
        return;
    }
    if (!o->all) {
        cli_print_stats(r, prev);
        return;
    }
    a = json_object_object_get(r, "instances");
    for (i = 0; i < cli_alen(a); i++) {
        struct json_object *s = json_object_array_get_idx(a, i);

        if (i > 0)
            printf("\n");
        if (json_object_object_get(s, "error") != NULL)
            printf(
                "%s (%s): no answer: %s\n", cli_jstr(s, "uuid", "?"),
                cli_jstr(s, "type", "?"),
                cli_jstr(json_object_object_get(s, "error"), "message", "?"));
        else
            cli_print_stats(s, prev ? prev_of(prev, cli_jstr(s, "uuid", ""))
                                    : NULL);
    }
    if (cli_alen(a) == 0)
        printf("no running instance\n");
    fflush(stdout);
}

static int
verb_stats(struct cli *c, struct cli_opts *o)
{
    struct sigaction sa = { .sa_handler = cli_on_interrupt };
    struct json_object *prev = NULL, *r;
    long i;
    int rc = 0;

    if (o->uuid == NULL && !o->all)
        return cli_usage_error("stats", "UUID or --all is required");
    if (o->uuid != NULL && o->all)
        return cli_usage_error("stats", "UUID and --all exclude each other");
    if (o->count_set && !o->watch)
        return cli_usage_error("stats", "--count needs --watch");
    if (o->openmetrics && (c->json || o->watch))
        return cli_usage_error("stats", "--openmetrics prints one scrape: "
                                        "not with --json or --watch");
    sigemptyset(&sa.sa_mask);
    if (o->watch)
        sigaction(SIGINT, &sa, NULL);
    for (i = 0; !cli_interrupted; i++) {
        rc = o->all || o->openmetrics ? stats_all(c, o->uuid, &r)
                                      : cli_call(c, "stats", uuid_args(o), &r);
        if (r == NULL)
            break;
        /* Device strings reach a terminal or a label value: escaped. */
        if (!c->json) {
            struct json_object *safe = cli_safe(r);

            json_object_put(r);
            r = safe;
        }
        if (o->watch && !c->json)
            printf("%s--- sample %ld\n", i ? "\n" : "", i + 1);
        print_stats_sample(c, o, r, prev);
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
#define DEF_SHORTS "u:p:t:ah"
#define DEF_KNOWN "uptamjAogMG"

/* The instance options define, start and modify share. */
#define OPT_DEF                                                                \
    "  --owner USER       the socket's owner (default: the daemon's user);"    \
    "\n                     the worker runs as this user\n"                    \
    "  --group GROUP      the socket's group (default: USER's group)\n"        \
    "  --mode OCTAL       the socket's mode, owner rw required (default"       \
    " 0600)\n"                                                                 \
    "  --attr KEY=VALUE   a device attribute (repeatable); serial: port0,"     \
    " port1 =\n                     socket | pty | none | /abs/socket/path\n"

static const struct cli_verb verbs[] = {
    { "types", "[-p PARENT] [--json]", "list parents and their types",
      "  -p, --parent P     only the types of parent P\n", DEF_SHORTS,
      DEF_KNOWN, "p", CLI_BARE_NONE, verb_types },
    { "list", "[--defined] [--dumpjson] [-u UUID] [-p PARENT] [--json]",
      "list running (or defined) instances",
      "  -d, --defined      definitions (in any state) instead of the "
      "instances\n"
      "                     that are not stopped\n"
      "  --dumpjson         print definitions as a JSON array in the on-disk "
      "shape\n"
      "  -u, --uuid U       only instance U\n"
      "  -p, --parent P     only instances of parent P\n",
      "du:p:h", "dJup", "dJup", CLI_BARE_NONE, verb_list },
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
      "                     'list --dumpjson'); options override it\n" OPT_DEF,
      DEF_SHORTS, DEF_KNOWN, "uptamjAogM", CLI_BARE_UUID, verb_define },
    { "undefine", "-u UUID | UUID", "remove a definition",
      "  -u, --uuid U       the definition to remove (it must not be "
      "running)\n",
      DEF_SHORTS, DEF_KNOWN, "u", CLI_BARE_UUID, verb_undefine },
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
      DEF_SHORTS, DEF_KNOWN, "uptjAogM", CLI_BARE_UUID, verb_start },
    { "stop", "-u UUID | UUID [--grace MS]", "stop an instance",
      "  -u, --uuid U       the instance to stop\n"
      "  --grace MS         how long an attached VMM has to let go after "
      "the\n"
      "                     device request (REQ) IRQ (default 5000, at most "
      "600000)\n"
      "Stopping a failed instance acknowledges the failure.\n",
      DEF_SHORTS, DEF_KNOWN, "uG", CLI_BARE_UUID, verb_stop },
    { "modify",
      "-u UUID | UUID [-t TYPE] [--auto|--manual] [--attr KEY=VALUE]... "
      "[--delattr KEY]... [--owner USER] [--group GROUP] [--mode OCTAL]",
      "change a definition (applies at next start)",
      "  -u, --uuid U       the definition to change\n"
      "  -t, --type T       another type of the same parent\n"
      "  -a, --auto, -m, --manual\n"
      "                     the start policy\n"
      "  --delattr KEY      remove an attribute (repeatable)\n" OPT_DEF
      "A running instance keeps what it started with until it is started "
      "again.\n",
      "u:t:amh", "utamAXogM", "utamAXogM", CLI_BARE_UUID, verb_modify },
    { "info", "-u UUID | UUID [--json]",
      "socket, state, client, regions, IRQs and counters",
      "  -u, --uuid U       the instance; a running one also reports its "
      "device\n",
      DEF_SHORTS, DEF_KNOWN, "u", CLI_BARE_UUID, verb_info },
    { "stats",
      "-u UUID | UUID | --all [--watch [SECONDS]] [--count N] "
      "[--json | --openmetrics]",
      "trap, refusal, DMA, IRQ and error counters of running instances",
      "  -u, --uuid U       the instance (it must be running)\n"
      "  --all              every running instance\n"
      "  --openmetrics      one scrape in the OpenMetrics text format\n"
      "                     (Prometheus), labels uuid, type, parent\n"
      "  --watch [SECONDS]  print again every SECONDS (default 1, 0.1 to "
      "3600)\n"
      "                     with the change since the last sample, until "
      "SIGINT\n"
      "  --count N          with --watch: stop after N samples\n"
      "With --json, one result object (one line each with --watch); with\n"
      "--all, {\"instances\": [...]}. Exit status 1 if a worker did not\n"
      "answer (the others are printed all the same).\n",
      "u:w::n:h", "uwnLO", "uwnLO", CLI_BARE_UUID, verb_stats },
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
      "t:h", "tCF", "tCF", CLI_BARE_TYPE, verb_audit },
    { "version", "[--json]", "daemon and protocol version", "", DEF_SHORTS,
      DEF_KNOWN, "", CLI_BARE_NONE, verb_version },
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
    printf("Global options (before the verb): --control PATH, --json.\n"
           "Exit status: 0 ok, 1 refused by umdevd, 2 usage, 3 umdevd "
           "unreachable.\n");
}

void
cli_usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: umdevctl [--control PATH] [--json] VERB [ARGS]\n\n");
    for (i = 0; i < N_VERBS; i++)
        fprintf(f, "  %-9s %s\n", verbs[i].name, verbs[i].help);
    fprintf(f, "\n'umdevctl VERB --help' shows a verb's arguments.\n"
               "Exit status: 0 ok, 1 refused by umdevd, 2 usage, 3 umdevd "
               "unreachable.\n");
}
