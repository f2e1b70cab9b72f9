/*
 * umdevctl: the command line for umdevd, with mdevctl's verbs. It speaks
 * the control protocol (docs/CONTROL.md) through lib/ctl and nothing
 * else. This file: global options, the connection, dispatch to a verb
 * (verbs.c).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "umdev/ctl.h"
#include "umdevctl.h"

volatile sig_atomic_t cli_interrupted;

void
cli_on_interrupt(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

/* An error object for --json: the daemon's as it sent it, or one of
 * the same shape for a failure on this side (@code empty: the errno's
 * name). */
static void
print_error_json(int err, const char *code, const char *message)
{
    struct json_object *o = json_object_new_object();
    const char *name = code != NULL && code[0] ? code : strerrorname_np(err);

    json_object_object_add(o, "errno", json_object_new_int(err));
    json_object_object_add(o, "code",
                           json_object_new_string(name ? name : "EUNKNOWN"));
    json_object_object_add(o, "message", json_object_new_string(message));
    cli_print_json_ext(o, JSON_C_TO_STRING_PRETTY);
    json_object_put(o);
}

static int
connect_daemon(struct cli *c)
{
    int rc = umdev_ctl_connect(c->control, -1, &c->ctl);
    char msg[PATH_MAX + 128];

    if (rc == -ENAMETOOLONG) {
        fprintf(stderr, "umdevctl: control path too long: %s\n", c->control);
        return EXIT_USAGE;
    }
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "cannot reach umdevd at %s: %s", c->control,
                 strerror(-rc));
        /* A program reading stdout learns why as it would for a refusal
         * (the exit status, 3, tells the two apart). */
        if (c->json)
            print_error_json(-rc, NULL, msg);
        fprintf(stderr,
                "umdevctl: %s\n"
                "  (is umdevd running? use --control PATH or UMDEV_CONTROL "
                "for a private daemon)\n",
                msg);
        return EXIT_NODAEMON;
    }
    return 0;
}

int
cli_call(struct cli *c, const char *cmd, struct json_object *args,
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
    /* The message may quote a device's strings: escaped, like results. */
    if (rc != -EREMOTEIO) {
        if (c->json)
            print_error_json(e.err, NULL, e.message);
        fputs("umdevctl: ", stderr);
        cli_fputs_safe(stderr, e.message);
        fputc('\n', stderr);
        return EXIT_NODAEMON;
    }
    if (c->json)
        print_error_json(e.err, e.code, e.message);
    fprintf(stderr, "umdevctl %s: ", cmd);
    cli_fputs_safe(stderr, e.message);
    fputc('\n', stderr);
    return EXIT_REFUSED;
}

int
cli_refuse(struct cli *c, const char *verb, int err, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->json)
        print_error_json(err, NULL, msg);
    fprintf(stderr, "umdevctl %s: ", verb);
    cli_fputs_safe(stderr, msg);
    fputc('\n', stderr);
    return EXIT_REFUSED;
}

int
cli_run(struct cli *c, const char *cmd, struct json_object *args,
        void (*print)(struct json_object *result))
{
    struct json_object *r;
    int rc = cli_call(c, cmd, args, &r);

    if (rc != 0)
        return rc;
    if (c->json) {
        cli_print_json(r);
    } else if (print != NULL) {
        struct json_object *safe = cli_safe(r);

        print(safe);
        json_object_put(safe);
    }
    json_object_put(r);
    return 0;
}

/* Parse @v's options from @argv and run it. */
static int
run_verb(struct cli *c, const struct cli_verb *v, int argc, char **argv)
{
    struct cli_opts o;
    int rc = cli_parse_opts(v, argc, argv, &o);

    if (rc == 0) {
        rc = v->run(c, &o);
    } else if (rc == CLI_HELPED) {
        if (v->attr_help)
            cli_print_attr_help(c);
        rc = 0;
    }
    json_object_put(o.attrs);
    json_object_put(o.dels);
    json_object_put(o.parent_map);
    return rc;
}

int
main(int argc, char **argv)
{
    struct cli c = { 0 };
    const struct cli_verb *v;
    char def[PATH_MAX];
    char **vargv;
    int i = 1, j, k = 0, rc;

    /* A closed stdout must not kill us half-way through a request. */
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
            cli_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0 ||
                   strcmp(argv[i], "-V") == 0) {
            /* This program's version; `umdevctl version` asks the
             * daemon for its own. */
            printf("umdevctl %s\n", UMDEV_PROJECT_VERSION);
            return 0;
        } else {
            fprintf(stderr, "umdevctl: unknown option '%s'\n", argv[i]);
            cli_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        cli_usage(stderr);
        return EXIT_USAGE;
    }
    v = cli_find_verb(argv[i]);
    if (v == NULL) {
        fprintf(stderr, "umdevctl: unknown verb '%s'\n", argv[i]);
        cli_usage(stderr);
        return EXIT_USAGE;
    }
    /* Strip a trailing/embedded --json so verbs need not know it. */
    vargv = calloc((size_t)(argc - i + 1), sizeof(char *));
    if (vargv == NULL)
        return EXIT_USAGE;
    for (j = i; j < argc; j++) {
        if (strcmp(argv[j], "--json") == 0)
            c.json = true;
        else
            vargv[k++] = argv[j];
    }
    rc = run_verb(&c, v, k, vargv);
    free(vargv);
    umdev_ctl_close(c.ctl);
    return rc;
}
