/*
 * umdevctl's verb options: one table of every option, one parser that
 * takes what a verb's table entry (verbs.c) allows, and the request
 * arguments define, start and modify build from them.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "umdevctl.h"
#include "tool.h"

/* How an option lands in struct cli_opts: a string option keeps its
 * argument, a flag sets a bool, the others are parsed one by one. */
enum opt_kind { OPT_STRING, OPT_FLAG, OPT_OTHER };

struct opt_def {
    struct option opt;
    enum opt_kind kind;
    size_t off; /* of the const char * or bool it sets */
};

#define AT(field) offsetof(struct cli_opts, field)

/* Every verb option; a verb's `known` and `allowed` name them by val. */
static const struct opt_def all_opts[] = {
    { { "uuid", required_argument, NULL, 'u' }, OPT_STRING, AT(uuid) },
    { { "parent", required_argument, NULL, 'p' }, OPT_STRING, AT(parent) },
    { { "type", required_argument, NULL, 't' }, OPT_STRING, AT(type) },
    { { "auto", no_argument, NULL, 'a' }, OPT_OTHER, 0 },
    { { "manual", no_argument, NULL, 'm' }, OPT_OTHER, 0 },
    { { "jsonfile", required_argument, NULL, 'j' }, OPT_STRING, AT(jsonfile) },
    { { "attr", required_argument, NULL, 'A' }, OPT_OTHER, 0 },
    /* mdevctl's --delattr takes no key (it removes by --index); umdev's
     * names the key: the key may follow as the next argument. */
    { { "delattr", optional_argument, NULL, 'X' }, OPT_OTHER, 0 },
    { { "addattr", required_argument, NULL, 'B' }, OPT_STRING, AT(addattr) },
    { { "value", required_argument, NULL, 'L' }, OPT_STRING, AT(value) },
    { { "index", required_argument, NULL, 'i' }, OPT_OTHER, 0 },
    { { "verbose", no_argument, NULL, 'v' }, OPT_FLAG, AT(verbose) },
    { { "all", no_argument, NULL, 'K' }, OPT_FLAG, AT(all) },
    { { "openmetrics", no_argument, NULL, 'O' }, OPT_FLAG, AT(openmetrics) },
    { { "owner", required_argument, NULL, 'o' }, OPT_STRING, AT(user) },
    { { "group", required_argument, NULL, 'g' }, OPT_STRING, AT(group) },
    { { "mode", required_argument, NULL, 'M' }, OPT_STRING, AT(mode) },
    { { "grace", required_argument, NULL, 'G' }, OPT_OTHER, 0 },
    { { "defined", no_argument, NULL, 'd' }, OPT_FLAG, AT(defined) },
    { { "dumpjson", no_argument, NULL, 'J' }, OPT_FLAG, AT(dumpjson) },
    { { "watch", optional_argument, NULL, 'w' }, OPT_OTHER, 0 },
    { { "count", required_argument, NULL, 'n' }, OPT_OTHER, 0 },
    { { "openmetrics", no_argument, NULL, 'O' }, OPT_FLAG, AT(openmetrics) },
    { { "conformance", no_argument, NULL, 'C' }, OPT_FLAG, AT(conformance) },
    { { "fuzz-seconds", required_argument, NULL, 'F' }, OPT_OTHER, 0 },
    { { "parent-map", required_argument, NULL, 'P' }, OPT_OTHER, 0 },
    { { "delete-data", no_argument, NULL, 'D' }, OPT_FLAG, AT(delete_data) },
    { { "to", required_argument, NULL, 'T' }, OPT_STRING, AT(to) },
    { { "handshake", no_argument, NULL, 'H' }, OPT_FLAG, AT(handshake) },
    { { "help", no_argument, NULL, 'h' }, OPT_OTHER, 0 },
};
#define N_OPTS (sizeof(all_opts) / sizeof(all_opts[0]))

int
cli_usage_error(const char *verb, const char *fmt, ...)
{
    const struct cli_verb *v = cli_find_verb(verb);
    va_list ap;

    fprintf(stderr, "umdevctl %s: ", verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: umdevctl %s %s\n", verb, v ? v->args : "");
    return EXIT_USAGE;
}

/* Parse "key=value" into attrs; values "true"/"false"/numbers become JSON
 * types, the rest strings. */
int
cli_add_attr(struct json_object *attrs, const char *kv)
{
    const char *eq = strchr(kv, '=');
    char key[128];

    if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
        fprintf(stderr, "umdevctl: attribute must be KEY=VALUE, got '%s'\n",
                kv);
        return -1;
    }
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    cli_put_attr(attrs, key, eq + 1);
    return 0;
}

void
cli_put_attr(struct json_object *attrs, const char *key, const char *val)
{
    long long n;
    char *end;

    if (strcmp(val, "true") == 0 || strcmp(val, "false") == 0) {
        json_object_object_add(attrs, key,
                               json_object_new_boolean(val[0] == 't'));
        return;
    }
    n = strtoll(val, &end, 10);
    if (*val != '\0' && *end == '\0')
        json_object_object_add(attrs, key, json_object_new_int64(n));
    else
        json_object_object_add(attrs, key, json_object_new_string(val));
}

/* --watch [SECONDS]: the seconds may also be the next argument. */
static int
parse_watch(const char *verb, char *arg, int argc, char **argv,
            struct cli_opts *o)
{
    o->watch = true;
    o->interval = 1;
    if (arg == NULL && optind < argc &&
        strspn(argv[optind], "0123456789.") == strlen(argv[optind]) &&
        argv[optind][0] != '\0')
        arg = argv[optind++];
    if (arg == NULL)
        return 0;
    if (!tool_parse_double(arg, 0.1, 3600, &o->interval))
        return cli_usage_error(
            verb, "--watch takes 0.1 to 3600 seconds; got '%s'", arg);
    return 0;
}

/*
 * import's --parent-map HOST=PARENT into o->parent_map. HOST is the name
 * of a directory of mdevctl's (a host device, 0000:00:02.0); PARENT is
 * checked against umdevd's parents once they are known (import.c).
 * Return: 0, or EXIT_USAGE after a message.
 */
static int
parse_parent_map(const char *verb, const char *arg, struct cli_opts *o)
{
    const char *eq = strchr(arg, '=');
    struct json_object *had;
    char host[NAME_MAX + 1];
    size_t n = eq != NULL ? (size_t)(eq - arg) : 0;

    if (eq == NULL || n == 0 || eq[1] == '\0' || n >= sizeof(host))
        return cli_usage_error(verb,
                               "--parent-map takes HOSTPARENT=PARENT (a "
                               "directory name of DIR, a parent of "
                               "umdevd); got '%s'",
                               arg);
    memcpy(host, arg, n);
    host[n] = '\0';
    /* A name inside DIR, never a path out of it. */
    if (memchr(host, '/', n) != NULL || strcmp(host, ".") == 0 ||
        strcmp(host, "..") == 0)
        return cli_usage_error(verb,
                               "--parent-map: '%s' is not a directory name "
                               "(the names in DIR, such as 0000:00:02.0)",
                               host);
    if (strchr(eq + 1, '/') != NULL || strchr(eq + 1, '=') != NULL)
        return cli_usage_error(verb,
                               "--parent-map: '%s' is not a parent "
                               "name (umdevctl types lists them)",
                               eq + 1);
    if (o->parent_map == NULL)
        o->parent_map = json_object_new_object();
    if (json_object_object_get_ex(o->parent_map, host, &had) &&
        strcmp(json_object_get_string(had), eq + 1) != 0)
        return cli_usage_error(verb,
                               "--parent-map maps '%s' to both %s and %s; "
                               "give one",
                               host, json_object_get_string(had), eq + 1);
    json_object_object_add(o->parent_map, host, json_object_new_string(eq + 1));
    return 0;
}

/* The options that are not plain strings or flags: @ch with its
 * argument @arg (NULL if none) into @o. Return: 0, or EXIT_USAGE after a
 * message. */
static int
take_opt(const char *verb, int ch, char *arg, int argc, char **argv,
         struct cli_opts *o)
{
    long n;

    switch (ch) {
    case 'a':
    case 'm':
        o->start = ch == 'a';
        return 0;
    case 'X':
        /* `--delattr KEY` (umdev) or `--delattr [--index N]` (mdevctl):
         * a next argument that is no option is the key. */
        if (arg == NULL && optind < argc && argv[optind][0] != '-')
            arg = argv[optind++];
        if (arg == NULL) {
            if (o->del_at)
                return cli_usage_error(verb, "--delattr without a KEY "
                                             "may be given once");
            o->del_at = true;
            return 0;
        }
        if (arg[0] == '\0')
            return cli_usage_error(verb, "--delattr takes a KEY, not ''");
        json_object_object_add(o->dels, arg, NULL);
        return 0;
    case 'i':
        if (!tool_parse_long(arg, 10, 0, 1000000, &o->index))
            return cli_usage_error(
                verb,
                "--index takes an attribute's position, 0 or more; "
                "got '%s'",
                arg);
        return 0;
    case 'A':
        if (o->attrs == NULL)
            o->attrs = json_object_new_object();
        return cli_add_attr(o->attrs, arg) < 0 ? EXIT_USAGE : 0;
    case 'G':
        if (!tool_parse_long(arg, 10, 0, UMDEVCTL_MAX_GRACE_MS, &n))
            return cli_usage_error(verb,
                                   "--grace takes milliseconds, 0 to %d; "
                                   "got '%s'",
                                   UMDEVCTL_MAX_GRACE_MS, arg);
        o->grace_ms = (int)n;
        return 0;
    case 'w':
        return parse_watch(verb, arg, argc, argv, o);
    case 'n':
        if (!tool_parse_long(arg, 10, 1, 1000000, &o->count))
            return cli_usage_error(verb, "--count takes 1 to 1000000; got '%s'",
                                   arg);
        o->count_set = true;
        return 0;
    case 'F':
        if (!tool_parse_long(arg, 10, 1, 3600, &n))
            return cli_usage_error(
                verb, "--fuzz-seconds takes 1 to 3600; got '%s'", arg);
        o->fuzz = arg;
        o->fuzz_set = true;
        return 0;
    case 'P':
        return parse_parent_map(verb, arg, o);
    default:
        return cli_usage_error(verb, "bad option");
    }
}

/* The table entry of option @val, or NULL ('?': getopt refused it). */
static const struct opt_def *
find_opt(int val)
{
    size_t i;

    for (i = 0; i < N_OPTS; i++)
        if (all_opts[i].opt.val == val)
            return &all_opts[i];
    return NULL;
}

/* The options getopt knows for @v: those its `known` names, and help. */
static void
known_opts(const struct cli_verb *v, struct option *out)
{
    size_t i, n = 0;

    for (i = 0; i < N_OPTS; i++)
        if (all_opts[i].opt.val == 'h' || strchr(v->known, all_opts[i].opt.val))
            out[n++] = all_opts[i].opt;
    out[n] = (struct option){ NULL, 0, NULL, 0 };
}

static int
parse(const struct cli_verb *v, int argc, char **argv, struct cli_opts *o)
{
    struct option opts[N_OPTS + 1];
    const char *verb = v->name;
    int ch, rc;

    known_opts(v, opts);
    optind = 1;
    while ((ch = getopt_long(argc, argv, v->shorts, opts, NULL)) != -1) {
        const struct opt_def *d = find_opt(ch);

        /* Any option a verb does not take is an error, never ignored. */
        if (d != NULL && ch != 'h' && strchr(v->allowed, ch) == NULL)
            return cli_usage_error(verb, "option --%s does not apply here",
                                   d->opt.name);
        if (ch == 'h') {
            cli_print_verb_help(v);
            return CLI_HELPED;
        }
        if (d != NULL && d->kind == OPT_STRING) {
            *(const char **)((char *)o + d->off) = optarg;
            continue;
        }
        if (d != NULL && d->kind == OPT_FLAG) {
            *(bool *)((char *)o + d->off) = true;
            continue;
        }
        rc = take_opt(verb, ch, optarg, argc, argv, o);
        if (rc != 0)
            return rc;
    }
    /* The UUID (or audit's TYPE) may also come bare: `info UUID`; what
     * follows it is the argument too many. */
    if ((v->bare == CLI_BARE_UUID || v->bare == CLI_BARE_UUID_FILE) &&
        o->uuid == NULL && optind < argc)
        o->uuid = argv[optind++];
    if (v->bare == CLI_BARE_UUID_FILE && optind < argc)
        o->file = argv[optind++];
    if (v->bare == CLI_BARE_TYPE && o->type == NULL && optind < argc)
        o->type = argv[optind++];
    if (v->bare == CLI_BARE_DIR && optind < argc)
        o->dir = argv[optind++];
    if (optind != argc)
        return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/*
 * The attribute changes taken together: mdevctl's --addattr KEY --value
 * V is --attr KEY=V; a key both set and removed is a contradiction, not
 * a choice. Return: 0, or EXIT_USAGE after a message.
 */
static int
check_attr_opts(const char *verb, struct cli_opts *o)
{
    if ((o->addattr != NULL) != (o->value != NULL))
        return cli_usage_error(verb, "--addattr KEY and --value VALUE go "
                                     "together");
    if (o->index >= 0 && !o->del_at)
        return cli_usage_error(
            verb, "--index applies to --delattr without a KEY (umdev's "
                  "attributes are named, not ordered: --addattr and --attr "
                  "set a key wherever it is)");
    if (o->addattr != NULL) {
        if (o->addattr[0] == '\0')
            return cli_usage_error(verb, "--addattr takes a KEY, not ''");
        if (o->attrs == NULL)
            o->attrs = json_object_new_object();
        cli_put_attr(o->attrs, o->addattr, o->value);
    }
    json_object_object_foreach(o->dels, k, val)
    {
        (void)val;
        if (o->attrs != NULL && json_object_object_get_ex(o->attrs, k, NULL))
            return cli_usage_error(verb,
                                   "attribute '%s' is both set and removed; "
                                   "give one of the two",
                                   k);
    }
    return 0;
}

int
cli_parse_opts(const struct cli_verb *v, int argc, char **argv,
               struct cli_opts *o)
{
    int rc;

    memset(o, 0, sizeof(*o));
    o->start = -1;
    o->grace_ms = -1;
    o->index = -1;
    o->count = 1;
    o->fuzz = "10";
    o->dels = json_object_new_object();
    rc = parse(v, argc, argv, o);
    if (rc == 0)
        rc = check_attr_opts(v->name, o);
    /* A removal travels as a null value (docs/CONTROL.md, modify). */
    if (rc == 0 && json_object_object_length(o->dels) > 0) {
        if (o->attrs == NULL)
            o->attrs = json_object_new_object();
        json_object_object_foreach(o->dels, k, val)
        {
            (void)val;
            json_object_object_add(o->attrs, k, NULL);
        }
    }
    return rc;
}

struct json_object *
cli_read_json_file(const char *path)
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

/*
 * mdevctl's definition as umdev's: {"mdev_type": T, "start": S, "attrs":
 * [{K: V}, ...]} (what `mdevctl list --dumpjson -u U` prints; wrapped as
 * {UUID: {...}} in its lists) becomes {"type", "start", "attrs": {K: V}}
 * (and "uuid" from the wrapper). Values are strings there; they are
 * typed as --attr types them. Other keys pass through (umdev's owner and
 * mode, which umdevctl adds to that shape; umdevd refuses unknown ones).
 * A key given twice cannot be one attribute of umdev's: refused. Return:
 * the object (taken: @in), or NULL after a message.
 */
struct json_object *
cli_from_mdevctl(const char *path, struct json_object *in)
{
    struct json_object *out, *inner = in, *v, *attrs;
    const char *wrapped = NULL;
    size_t i;

    if (json_object_object_length(in) == 1) {
        json_object_object_foreach(in, k, val)
        {
            if (json_object_is_type(val, json_type_object) &&
                json_object_object_get_ex(val, "mdev_type", NULL)) {
                wrapped = k;
                inner = val;
            }
        }
    }
    if (!json_object_object_get_ex(inner, "mdev_type", NULL))
        return in; /* umdev's own shape */
    if (json_object_object_get_ex(inner, "type", NULL)) {
        fprintf(stderr,
                "umdevctl: %s has both mdev_type (mdevctl's) and type "
                "(umdev's); keep one\n",
                path);
        goto fail;
    }
    out = json_object_new_object();
    if (wrapped != NULL)
        json_object_object_add(out, "uuid", json_object_new_string(wrapped));
    json_object_object_foreach(inner, key, val)
    {
        if (strcmp(key, "mdev_type") == 0)
            json_object_object_add(out, "type", json_object_get(val));
        else if (strcmp(key, "attrs") != 0)
            json_object_object_add(out, key, json_object_get(val));
    }
    v = json_object_object_get(inner, "attrs");
    if (v != NULL && !json_object_is_type(v, json_type_array)) {
        fprintf(stderr,
                "umdevctl: %s: attrs in mdevctl's shape is a list of "
                "{\"KEY\": \"VALUE\"} objects\n",
                path);
        json_object_put(out);
        goto fail;
    }
    attrs = json_object_new_object();
    json_object_object_add(out, "attrs", attrs);
    for (i = 0; v != NULL && i < json_object_array_length(v); i++) {
        struct json_object *a = json_object_array_get_idx(v, i);
        const char *name = NULL, *text = NULL;

        if (json_object_is_type(a, json_type_object) &&
            json_object_object_length(a) == 1) {
            json_object_object_foreach(a, ak, av)
            {
                name = ak;
                if (json_object_is_type(av, json_type_string))
                    text = json_object_get_string(av);
            }
        }
        if (name == NULL || text == NULL) {
            fprintf(stderr,
                    "umdevctl: %s: attrs[%zu] must be one {\"KEY\": "
                    "\"VALUE\"} with a string value\n",
                    path, i);
            json_object_put(out);
            goto fail;
        }
        if (json_object_object_get_ex(attrs, name, NULL)) {
            fprintf(stderr,
                    "umdevctl: %s: attribute '%s' is given twice; umdev's "
                    "attributes are named, each once\n",
                    path, name);
            json_object_put(out);
            goto fail;
        }
        cli_put_attr(attrs, name, text);
    }
    json_object_put(in);
    return out;
fail:
    json_object_put(in);
    return NULL;
}

static void
add_str(struct json_object *o, const char *key, const char *v)
{
    if (v != NULL)
        json_object_object_add(o, key, json_object_new_string(v));
}

struct json_object *
cli_def_args(struct cli_opts *o, bool with_parent)
{
    struct json_object *a;

    if (o->jsonfile != NULL) {
        a = cli_read_json_file(o->jsonfile);
        if (a != NULL)
            a = cli_from_mdevctl(o->jsonfile, a);
        if (a == NULL)
            return NULL;
    } else {
        a = json_object_new_object();
    }
    add_str(a, "uuid", o->uuid);
    if (with_parent)
        add_str(a, "parent", o->parent);
    add_str(a, "type", o->type);
    if (o->start >= 0)
        add_str(a, "start", o->start ? "auto" : "manual");
    add_str(a, "mode", o->mode);
    if (o->user != NULL || o->group != NULL) {
        struct json_object *own = json_object_new_object();

        add_str(own, "user", o->user);
        add_str(own, "group", o->group);
        json_object_object_add(a, "owner", own);
    }
    if (o->attrs != NULL) {
        json_object_object_add(a, "attrs", o->attrs);
        o->attrs = NULL;
    }
    return a;
}
