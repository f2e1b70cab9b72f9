/*
 * What umdevctl's files share. main.c: global options, the connection to
 * umdevd (through lib/ctl) and dispatch; options.c: a verb's options;
 * verbs.c: the verbs and their table; print.c: what they print;
 * conform.c: `audit --conformance` (a private instance and the kit);
 * import.c: `import` (mdevctl's definitions).
 *
 * Exit codes: 0 success; 1 the daemon refused the request; 2 usage error;
 * 3 the daemon cannot be reached.
 */
#ifndef UMDEVCTL_H
#define UMDEVCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct json_object;
struct umdev_ctl;

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_NODAEMON 3
/* cli_parse_opts() printed a verb's help: exit 0 without running it. */
#define CLI_HELPED (-1)

/* The daemon's bound on a stop's grace period (docs/CONTROL.md). */
#define UMDEVCTL_MAX_GRACE_MS 600000

struct cli {
    const char *control;   /* the daemon's control socket */
    bool json;             /* --json */
    struct umdev_ctl *ctl; /* connected at the first request */
};

/* Every verb's options; each verb takes the subset its table entry
 * allows. Strings point into argv. */
struct cli_opts {
    const char *uuid, *parent, *type, *jsonfile, *mode, *user, *group;
    int start;                 /* -1 unset, 0 manual, 1 auto */
    struct json_object *attrs; /* --attr, and --delattr as nulls; owned */
    struct json_object *dels;  /* --delattr KEY: the keys; owned */
    /* mdevctl's forms: --addattr KEY --value V; --delattr without a key
     * removes the attribute at --index (default: the last). */
    const char *addattr, *value;
    bool del_at;
    long index;             /* -1 unset */
    int grace_ms;           /* -1 unset */
    bool defined, dumpjson; /* list (dumpjson: types too) */
    bool verbose;           /* list -v: attributes too */
    bool watch;             /* stats: every @interval seconds */
    bool all, openmetrics;  /* stats: every running instance; format */
    double interval;
    long count;
    bool count_set;
    bool conformance; /* audit */
    bool delete_data; /* undefine: the instance's data too */
    const char *fuzz; /* --fuzz-seconds, as given (default "10") */
    const char *dir;  /* import: the directory */
    /* import --parent-map HOST=PARENT: {HOST: PARENT}; owned */
    struct json_object *parent_map;
    bool fuzz_set;
    const char *to;   /* migrate: the destination umdevd's control socket */
    bool handshake;   /* migrate: the VMM takes part on stdin/stdout */
    const char *file; /* screenshot: the PNG to write */
};

/* Where a lone positional argument goes. */
enum cli_bare {
    CLI_BARE_NONE,
    CLI_BARE_UUID,
    CLI_BARE_TYPE,
    CLI_BARE_DIR,
    CLI_BARE_UUID_FILE, /* the UUID (unless -u gave it), then a file */
};

struct cli_verb {
    const char *name;
    const char *args;    /* the usage line after the name */
    const char *help;    /* one line, for the verb list */
    const char *details; /* what each option does, for VERB --help */
    const char *shorts;  /* getopt short options */
    const char *known;   /* option codes getopt knows for it (options.c) */
    const char *allowed; /* those it takes; the rest "do not apply" */
    enum cli_bare bare;
    int (*run)(struct cli *c, struct cli_opts *o);
    const char *exits; /* its exit status line; NULL: the common one */
    bool attr_help;    /* its help lists the types' attributes */
};

/* ---- main.c */

extern volatile sig_atomic_t cli_interrupted;
/* A SIGINT/SIGTERM handler that sets cli_interrupted. */
void cli_on_interrupt(int sig);

/*
 * Send @cmd with @args (taken); on success *@result is the result object
 * (the caller puts it). Return: 0; EXIT_REFUSED after printing the
 * daemon's message; EXIT_NODAEMON or EXIT_USAGE after a message.
 */
int cli_call(struct cli *c, const char *cmd, struct json_object *args,
             struct json_object **result);

/*
 * cli_call(), then print the result: as JSON with --json, else with
 * @print (NULL: nothing). Return: as cli_call().
 */
int cli_run(struct cli *c, const char *cmd, struct json_object *args,
            void (*print)(struct json_object *result));

/* ---- migrate.c */

int cli_verb_migrate(struct cli *c, struct cli_opts *o);

/* ---- screenshot.c */

int cli_verb_screenshot(struct cli *c, struct cli_opts *o);

/* ---- options.c */

/*
 * Parse @v's options from @argv (argv[0] is the verb) into @o. Return: 0;
 * CLI_HELPED after printing its help; EXIT_USAGE after a message. @o's
 * attrs are the caller's to put whatever happened.
 */
int cli_parse_opts(const struct cli_verb *v, int argc, char **argv,
                   struct cli_opts *o);

/* The arguments of define, start and modify from @o (and its
 * --jsonfile); takes o->attrs. Return: a new object, or NULL after a
 * message. */
struct json_object *cli_def_args(struct cli_opts *o, bool with_parent);

int cli_usage_error(const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The JSON object in file @path, or NULL after a message. */
struct json_object *cli_read_json_file(const char *path);
/* @in (taken), a definition in mdevctl's shape, as umdev's define
 * arguments; one in umdev's shape as it is. NULL after a message naming
 * @path. */
struct json_object *cli_from_mdevctl(const char *path, struct json_object *in);

/* A refusal decided here from what umdevd answered (a verb that needs
 * two requests): printed as umdevd's own would be, the error object
 * with --json. Return: EXIT_REFUSED. */
int cli_refuse(struct cli *c, const char *verb, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "KEY=VALUE" into @attrs as --attr takes it (true/false and integers
 * typed). Return: 0, or -1 after a message. */
int cli_add_attr(struct json_object *attrs, const char *kv);
/* @key = @val into @attrs, typed as cli_add_attr() types it. */
void cli_put_attr(struct json_object *attrs, const char *key, const char *val);

/* ---- verbs.c */

const struct cli_verb *cli_find_verb(const char *name);
void cli_print_verb_help(const struct cli_verb *v);
/* The global usage and the list of verbs. */
void cli_usage(FILE *f);
/* For define's and start's help: every type's attributes, as umdevd
 * describes them when it can be asked, else the built-in parents'. */
void cli_print_attr_help(struct cli *c);

/* ---- print.c */

/* @key of @o as a string; @dflt when @o, the key or its value is absent
 * or null. */
const char *cli_jstr(struct json_object *o, const char *key, const char *dflt);
/* The length of @a, 0 when it is not an array (a field a reply lacks). */
size_t cli_alen(struct json_object *a);
/* A copy of @o (a new reference) whose strings, keys included, are safe
 * to print on a terminal: control characters and bytes that are not
 * UTF-8 escaped as \xNN (docs/CLI.md). Every text printer below gets
 * one. */
struct json_object *cli_safe(struct json_object *o);
/* @s to @f, escaped as cli_safe() does. */
void cli_fputs_safe(FILE *f, const char *s);
/* @o as JSON text (json-c @flags) and a newline on stdout, with what
 * json-c leaves raw (DEL, C1 controls, bytes that are not UTF-8)
 * escaped. */
void cli_print_json_ext(struct json_object *o, int flags);
void cli_print_json(struct json_object *o);
void cli_print_types(struct json_object *r);
void cli_print_instances(struct json_object *r);
/* list --dumpjson: mdevctl's shape, one object for one -u (@single);
 * the definitions with @defined, else what runs. */
void cli_print_definitions(struct json_object *r, bool single, bool defined);
/* types --dumpjson: mdevctl's shape. */
void cli_print_types_dump(struct json_object *r);
/* list -v: the list lines, each with its attributes. */
void cli_print_instances_verbose(struct json_object *r);
void cli_print_defined(struct json_object *r);
void cli_print_modified(struct json_object *r);
void cli_print_started(struct json_object *r);
void cli_print_info(struct json_object *r);
void cli_print_version(struct json_object *r);
/* One stats sample; with @prev (may be NULL), the change since it. */
void cli_print_stats(struct json_object *s, struct json_object *prev);
void cli_print_audit(struct json_object *r);
/* Stats objects (an array) in the OpenMetrics text format. */
void cli_print_openmetrics(struct json_object *stats);

/* ---- import.c */

/* `import [DIR]`: mdevctl's definitions under @dir (NULL: /etc/mdevctl.d)
 * defined in umdevd; @map (borrowed, may be NULL) is --parent-map's
 * {DIRECTORY: PARENT}. Return: an exit status. */
int cli_import(struct cli *c, const char *dir, struct json_object *map);

/* ---- conform.c */

/*
 * `audit --conformance`: a private transient instance of the type @first
 * (an audit result) names, umdev-conform against it for @fuzz seconds
 * (as given), then the instance stopped whatever happened. Return: the
 * kit's array (the caller puts it), or NULL after a message.
 */
struct json_object *
cli_conformance_run(struct cli *c, struct json_object *first, const char *fuzz);

#endif /* UMDEVCTL_H */
