/*
 * umdev-conform: the conformance kit, runnable against any device type's
 * vfio-user socket.
 *
 *   umdev-conform SOCKET [--profile FILE] [--fuzz-seconds N] [--seed N]
 *                 [--json] [--only CHECK,...] [--host-end PATH]
 *                 [--daemon-uuid UUID] [--umdevctl PATH] [--server-pid PID]
 *                 [--timeout MS] [--leak-cycles N] [--level spec|policy]
 *                 [--verbose]
 *   umdev-conform --list-rules [--json]
 *
 * It attaches once to learn the device (regions, IRQs, config space and
 * the registers the reset check compares), then runs the checks in a
 * fixed order, each on connections of its own: protocol, config, reset,
 * datapath, fuzz, leaks. Every failure is against a rule (rules.c) of
 * level "spec" (the vfio-user spec, or PCI for config space, requires it)
 * or "policy" (umdev's stricter rule); both are reported apart, and
 * --level says which fail the run (default policy: both). Output: one
 * "PASS|FAIL name [spec ..., policy ...]: evidence" line per check and a
 * summary, or with --json an array of {name, pass, spec_pass,
 * policy_pass, ...}. Exit status: 0 every check passed at the level, 1
 * some failed (or could not be carried out), 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/vfio.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "conform.h"

#define PROG "umdev-conform"
/* Failures quoted word for word per check and level; the rest are
 * counted. */
#define MAX_QUOTED_FAILS 6

struct check {
    const char *name;
    void (*run)(struct conform *cf, struct cf_result *r);
};

static const struct check checks[] = {
    { "protocol", check_protocol }, { "config", check_config },
    { "reset", check_reset },       { "datapath", check_datapath },
    { "fuzz", check_fuzz },         { "leaks", check_leaks },
};

static const char usage_text[] =
    "usage: " PROG " SOCKET [--profile FILE] [--fuzz-seconds N] [--seed N]\n"
    "                     [--json] [--only CHECK,...] [--host-end PATH]\n"
    "                     [--daemon-uuid UUID] [--umdevctl PATH]\n"
    "                     [--server-pid PID] [--timeout MS]\n"
    "                     [--leak-cycles N] [--plugin SO --type TYPE]\n"
    "                     [--level spec|policy] [--verbose]\n"
    "       " PROG " --list-rules [--json]\n";

static const char help_text[] =
    "\n"
    "Run the umdev conformance checks against the vfio-user device served\n"
    "on SOCKET (start the server fresh: the reset check compares with the\n"
    "state read at the first attach).\n"
    "\n"
    "checks: protocol config reset datapath fuzz leaks\n"
    "  --profile FILE      the type's mediation profile (JSON): trapped\n"
    "                      registers, volatile ones, data-path bound\n"
    "  --fuzz-seconds N    length of the fuzz run (default 10)\n"
    "  --seed N            fuzz PRNG seed, to replay a run\n"
    "  --json              print [{name, pass, spec_pass, policy_pass,\n"
    "                      evidence, ...}, ...] only\n"
    "  --level spec|policy what fails the run: spec (the vfio-user spec's\n"
    "                      requirements; umdev's policy differences are\n"
    "                      reported only) or policy (both; the default)\n"
    "  --list-rules        print every rule: id, level, what, basis\n"
    "  --only LIST         run only these checks (comma-separated)\n"
    "  --host-end PATH     serial load generator: port 0's host end\n"
    "                      (default SOCKET.port0, or STEM.port0 for\n"
    "                      STEM.sock)\n"
    "  --daemon-uuid UUID  the instance under umdevd: its worker pid and\n"
    "                      counters come from `umdevctl --json info UUID`\n"
    "  --umdevctl PATH     the umdevctl to run (default: from PATH)\n"
    "  --server-pid PID    the serving process (default: SO_PEERCRED)\n"
    "  --timeout MS        bound on every wait for the server (default "
    "5000)\n"
    "  --leak-cycles N     attach/detach cycles of the leaks check "
    "(default 200)\n"
    "  --plugin SO --type TYPE\n"
    "                      TYPE comes from the parent plug-in SO: its\n"
    "                      exercise() drives the datapath check\n"
    "  --verbose           progress on stderr\n"
    "  --progress          each check's name on stderr as it starts, and\n"
    "                      its outcome when it ends\n"
    "Exit status: 0 all passed at the level, 1 a check failed or could not\n"
    "be carried out, 2 usage.\n";

static bool verbose_log;

double
cf_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *
cf_errname(int err)
{
    static char buf[16];
    const char *n = err > 0 ? strerrorname_np(err) : NULL;

    if (n != NULL)
        return n;
    snprintf(buf, sizeof(buf), "E#%d", err);
    return buf;
}

static void __attribute__((format(printf, 3, 0)))
append(char *buf, size_t cap, const char *fmt, va_list ap)
{
    size_t len = strlen(buf);

    if (len + 3 >= cap)
        return;
    if (len > 0) {
        strcpy(buf + len, "; ");
        len += 2;
    }
    vsnprintf(buf + len, cap - len, fmt, ap);
}

static void __attribute__((format(printf, 3, 0)))
fail_at(struct cf_result *r, enum cf_level level, const char *fmt, va_list ap)
{
    struct cf_level_result *l = &r->level[level];

    r->pass = false;
    if (++l->nfail > MAX_QUOTED_FAILS)
        return;
    append(l->fails, sizeof(l->fails), fmt, ap);
}

void
cf_fail(struct cf_result *r, enum cf_rule_id rule, const char *fmt, ...)
{
    va_list ap;

    r->rule_fails[rule]++;
    va_start(ap, fmt);
    fail_at(r, cf_rules[rule].level, fmt, ap);
    va_end(ap);
}

void
cf_error(struct cf_result *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fail_at(r, CF_LEVEL_ERROR, fmt, ap);
    va_end(ap);
}

void
cf_note(struct cf_result *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    append(r->notes, sizeof(r->notes), fmt, ap);
    va_end(ap);
}

void
cf_log(const struct conform *cf, const char *fmt, ...)
{
    va_list ap;

    (void)cf;
    if (!verbose_log)
        return;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint32_t
cf_le(const uint8_t *p, unsigned int len)
{
    uint32_t v = 0;

    while (len-- > 0)
        v = v << 8 | p[len];
    return v;
}

void
cf_put_le(uint8_t *p, unsigned int len, uint64_t v)
{
    unsigned int i;

    for (i = 0; i < len; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Library log lines: only errors, prefixed, on stderr. */
static void
client_log(void *opaque, int level, const char *line)
{
    (void)opaque;
    (void)level;
    if (verbose_log)
        fprintf(stderr, PROG ": client: %s\n", line);
}

static const struct umdev_logger quiet_logger = {
    .fn = client_log,
    .max_level = LOG_ERR,
};

int
cf_client_connect(const struct conform *cf, struct umdev_client **out)
{
    struct umdev_client_opts o = {
        .log = &quiet_logger,
        .timeout_ms = cf->timeout_ms,
    };

    return umdev_client_connect(cf->socket, &o, out);
}

bool
cf_region_present(const struct conform *cf, uint32_t index)
{
    return index < cf->dev.num_regions && index < CF_MAX_REGIONS &&
           cf->dev.regions[index].size > 0;
}

bool
cf_in_mmap_area(const struct conform *cf, uint32_t index, uint64_t off,
                uint64_t len)
{
    const struct cf_region *r;
    size_t i;

    if (!cf_region_present(cf, index))
        return false;
    r = &cf->dev.regions[index];
    for (i = 0; i < r->nr_areas; i++) {
        const struct vfio_user_sparse_area *a = &r->areas[i];

        if (off >= a->offset && off - a->offset < a->size &&
            len <= a->size - (off - a->offset))
            return true;
    }
    return false;
}

/* First attach: what the device is, and the state the reset check
 * compares with. */
static int
discover(struct conform *cf, bool want_baseline, char *err, size_t errlen)
{
    struct cf_device *d = &cf->dev;
    struct umdev_client_device_info di;
    const struct umdev_client_caps *caps;
    struct umdev_client *c = NULL;
    double deadline = cf_now() + cf->timeout_ms / 1000.0;
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    uint32_t i;
    int rc;

    /* A server just started may have bound its socket and not listen
     * yet: wait for it, within the timeout. */
    for (;;) {
        rc = cf_client_connect(cf, &c);
        if ((rc != -ECONNREFUSED && rc != -ENOENT) || cf_now() > deadline)
            break;
        usleep(20000);
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot attach to %s: %s", cf->socket,
                 strerror(-rc));
        return rc;
    }
    if (getsockopt(umdev_client_fd(c), SOL_SOCKET, SO_PEERCRED, &cred, &clen) ==
        0)
        cf->peercred_pid = cred.pid;
    caps = umdev_client_caps(c);
    d->server_max_fds = caps->max_msg_fds;
    d->server_max_xfer = caps->max_data_xfer_size;
    rc = umdev_client_device_info(c, &di);
    if (rc < 0) {
        snprintf(err, errlen, "DEVICE_GET_INFO: %s", strerror(-rc));
        goto out;
    }
    d->flags = di.flags;
    d->num_regions = di.num_regions;
    d->num_irqs = di.num_irqs;
    d->pci = (di.flags & VFIO_DEVICE_FLAGS_PCI) != 0;
    for (i = 0; i < d->num_regions && i < CF_MAX_REGIONS; i++) {
        struct umdev_client_region r;

        rc = umdev_client_region_info(c, i, &r);
        if (rc < 0) {
            snprintf(err, errlen, "GET_REGION_INFO %u: %s", i, strerror(-rc));
            goto out;
        }
        d->regions[i].flags = r.flags;
        d->regions[i].size = r.size;
        if (r.flags & VFIO_REGION_INFO_FLAG_MMAP) {
            d->regions[i].nr_areas = r.nr_areas;
            memcpy(d->regions[i].areas, r.areas,
                   r.nr_areas * sizeof(r.areas[0]));
        }
    }
    for (i = 0; i < d->num_irqs && i < CF_MAX_IRQS; i++) {
        rc = umdev_client_irq_info(c, i, &d->irqs[i]);
        if (rc < 0) {
            snprintf(err, errlen, "GET_IRQ_INFO %u: %s", i, strerror(-rc));
            goto out;
        }
    }
    if (d->pci && cf_region_present(cf, VFIO_PCI_CONFIG_REGION_INDEX)) {
        uint64_t size = d->regions[VFIO_PCI_CONFIG_REGION_INDEX].size;

        d->cfg_len = size < CF_CFG_MAX ? (size_t)size : CF_CFG_MAX;
        rc = umdev_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0,
                                      d->cfg, d->cfg_len);
        if (rc < 0) {
            snprintf(err, errlen, "reading config space: %s", strerror(-rc));
            goto out;
        }
        d->vendor = (uint16_t)cf_le(d->cfg, 2);
        d->device = (uint16_t)cf_le(d->cfg + 2, 2);
    }
    if (want_baseline) {
        rc = cf_baseline_collect(cf, c, err, errlen);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    umdev_client_destroy(c);
    return rc;
}

/* One line: text control characters would break (a server's strings
 * reach the evidence). */
static void
one_line(char *buf)
{
    char *p;

    for (p = buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
}

/* A level's failures as one line: quoted ones, then how many more. */
static void
level_evidence(const struct cf_level_result *l, char *buf, size_t len)
{
    snprintf(buf, len, "%s", l->fails);
    if (l->nfail > MAX_QUOTED_FAILS) {
        size_t n = strlen(buf);

        snprintf(buf + n, len - n, " (+%u more)", l->nfail - MAX_QUOTED_FAILS);
    }
    one_line(buf);
}

/* "protocol.version.refuse x2, ..." for the rules of @level that failed. */
static void
rules_failed(const struct cf_result *r, enum cf_level level, char *buf,
             size_t len)
{
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < CF_NRULES && n + 1 < len; i++) {
        if (r->rule_fails[i] == 0 || cf_rules[i].level != level)
            continue;
        n += (size_t)snprintf(buf + n, len - n, "%s%s x%u", n ? ", " : "",
                              cf_rules[i].id, r->rule_fails[i]);
    }
}

/* Evidence as one line: kit errors, spec failures, policy failures (each
 * with the rules they break), then the notes. */
static void
evidence(const struct cf_result *r, char *buf, size_t len)
{
    static const enum cf_level order[] = { CF_LEVEL_ERROR, CF_LEVEL_SPEC,
                                           CF_LEVEL_POLICY };
    char fails[CF_EVIDENCE_MAX + 32], rules[512];
    size_t i, n = 0;

    buf[0] = '\0';
    for (i = 0; i < CF_ARRAY_SIZE(order) && n + 1 < len; i++) {
        const struct cf_level_result *l = &r->level[order[i]];

        if (l->nfail == 0)
            continue;
        level_evidence(l, fails, sizeof(fails));
        rules_failed(r, order[i], rules, sizeof(rules));
        n += (size_t)snprintf(
            buf + n, len - n, "%s%s%s%s%s: %s", n ? "; " : "",
            order[i] == CF_LEVEL_ERROR ? "could not check"
                                       : cf_level_name(order[i]),
            rules[0] ? " (" : "", rules, rules[0] ? ")" : "", fails);
    }
    if (r->notes[0] != '\0' && n + 1 < len)
        snprintf(buf + n, len - n, "%s%s", n ? "; " : "", r->notes);
    one_line(buf);
}

static int
parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;

    errno = 0;
    *out = strtoull(s, &end, 0);
    return errno == 0 && end != s && *end == '\0' && s[0] != '-' && *out <= max
               ? 0
               : -1;
}

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n%s", usage_text);
    va_end(ap);
    return 2;
}

/*
 * The options that store their argument in struct conform: a string as
 * it is (size 0), or a number in [min, max] into a 4- or 8-byte field,
 * refused with "--NAME: RANGE, not 'ARG'". @given_off, if not 0, names a
 * bool set when the option is given.
 */
struct stored_opt {
    const char *name;
    size_t off, size;
    unsigned long long min, max;
    const char *range;
    size_t given_off;
};

#define STRING_OPT(name, field)                                                \
    {                                                                          \
        name, offsetof(struct conform, field), 0, 0, 0, NULL, 0                \
    }
#define NUMBER_OPT(name, field, lo, hi, range, given)                          \
    {                                                                          \
        name, offsetof(struct conform, field),                                 \
            sizeof(((struct conform *)0)->field), lo, hi, range, given         \
    }

static const struct stored_opt stored_opts[] = {
    STRING_OPT("profile", profile_path),
    NUMBER_OPT("fuzz-seconds", fuzz_seconds, 0, 3600, "0..3600", 0),
    NUMBER_OPT("seed", seed, 0, UINT64_MAX, "a number",
               offsetof(struct conform, seed_given)),
    STRING_OPT("host-end", host_end),
    STRING_OPT("daemon-uuid", daemon_uuid),
    STRING_OPT("umdevctl", umdevctl),
    NUMBER_OPT("server-pid", server_pid, 1, INT_MAX, "a pid", 0),
    NUMBER_OPT("timeout", timeout_ms, 100, 600000, "100..600000 ms", 0),
    NUMBER_OPT("leak-cycles", leak_cycles, 20, 100000, "20..100000", 0),
    STRING_OPT("plugin", plugin_path),
    STRING_OPT("type", type),
};

/* Return: -1 to go on, else the exit status (a usage error). */
static int
store_opt(struct conform *cf, const struct stored_opt *o, const char *arg)
{
    char *field = (char *)cf + o->off;
    unsigned long long v;

    if (o->size == 0) {
        memcpy(field, &arg, sizeof(arg));
        return -1;
    }
    if (parse_uint(arg, o->max, &v) < 0 || v < o->min)
        return usage_error("--%s: %s, not '%s'", o->name, o->range, arg);
    if (o->size == sizeof(uint64_t)) {
        uint64_t x = v;

        memcpy(field, &x, sizeof(x));
    } else {
        /* int, unsigned int or pid_t, and v <= INT_MAX: one layout. */
        uint32_t x = (uint32_t)v;

        memcpy(field, &x, sizeof(x));
    }
    if (o->given_off != 0)
        *(bool *)((char *)cf + o->given_off) = true;
    return -1;
}

/* --only: the checks named in @list (comma-separated) are selected. */
static int
select_checks(const char *list, bool selected[])
{
    char *copy = strdup(list), *save = NULL, *tok;
    size_t i;

    if (copy == NULL)
        return usage_error("%s", "out of memory");
    for (tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        for (i = 0; i < CF_ARRAY_SIZE(checks); i++)
            if (strcmp(tok, checks[i].name) == 0)
                break;
        if (i == CF_ARRAY_SIZE(checks)) {
            int rc = usage_error("--only: no check named '%s' (checks: "
                                 "protocol config reset datapath fuzz leaks)",
                                 tok);

            free(copy);
            return rc;
        }
        selected[i] = true;
    }
    free(copy);
    return -1;
}

/* What the run holds the server to (--level). */
struct run_opts {
    bool json;
    bool list_rules;
    bool progress;
    /* CF_LEVEL_SPEC: only spec failures (and kit errors) fail the run;
     * CF_LEVEL_POLICY: umdev's policy failures too. */
    enum cf_level level;
};

/* Return: -1 to go on, else the exit status. */
static int
parse_args(int argc, char **argv, struct conform *cf, struct run_opts *ro,
           bool selected[])
{
    /* getopt_long() values: the stored options count from OPT_STORED. */
    enum {
        OPT_JSON = 1,
        OPT_ONLY,
        OPT_VERBOSE,
        OPT_PROGRESS,
        OPT_LEVEL,
        OPT_LIST_RULES,
        OPT_STORED
    };
    /* The fixed options, the stored ones and the all-zero end. */
    struct option opts[CF_ARRAY_SIZE(stored_opts) + 8] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "only", required_argument, NULL, OPT_ONLY },
        { "verbose", no_argument, NULL, OPT_VERBOSE },
        { "progress", no_argument, NULL, OPT_PROGRESS },
        { "level", required_argument, NULL, OPT_LEVEL },
        { "list-rules", no_argument, NULL, OPT_LIST_RULES },
        { "help", no_argument, NULL, 'h' },
    };
    bool only = false;
    size_t i, nfixed = 0;
    int ch, rc;

    /* After the fixed ones above (counted, so that adding one cannot
     * overwrite another); the last entry stays all zero. */
    while (opts[nfixed].name != NULL)
        nfixed++;
    for (i = 0; i < CF_ARRAY_SIZE(stored_opts); i++)
        opts[nfixed + i] = (struct option){ stored_opts[i].name,
                                            required_argument, NULL,
                                            OPT_STORED + (int)i };
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_JSON:
            ro->json = true;
            break;
        case OPT_LIST_RULES:
            ro->list_rules = true;
            break;
        case OPT_LEVEL:
            if (strcmp(optarg, "spec") == 0)
                ro->level = CF_LEVEL_SPEC;
            else if (strcmp(optarg, "policy") == 0)
                ro->level = CF_LEVEL_POLICY;
            else
                return usage_error("--level: spec or policy, not '%s'", optarg);
            break;
        case OPT_ONLY:
            only = true;
            rc = select_checks(optarg, selected);
            if (rc >= 0)
                return rc;
            break;
        case OPT_VERBOSE:
            cf->verbose = true;
            break;
        case OPT_PROGRESS:
            ro->progress = true;
            break;
        case 'h':
            printf("%s%s", usage_text, help_text);
            return 0;
        case ':':
            return usage_error("option '%s' needs an argument",
                               argv[optind - 1]);
        default:
            if (ch < OPT_STORED ||
                ch >= OPT_STORED + (int)CF_ARRAY_SIZE(stored_opts))
                return usage_error("unknown option '%s'", argv[optind - 1]);
            rc = store_opt(cf, &stored_opts[ch - OPT_STORED], optarg);
            if (rc >= 0)
                return rc;
            break;
        }
    }
    if (ro->list_rules) {
        if (optind != argc)
            return usage_error("%s", "--list-rules takes no SOCKET");
        cf_rules_print(ro->json);
        return 0;
    }
    if (optind + 1 != argc)
        return usage_error("%s", "expected one SOCKET argument");
    if ((cf->plugin_path == NULL) != (cf->type == NULL))
        return usage_error("%s", "--plugin and --type go together");
    cf->socket = argv[optind];
    if (!only)
        for (i = 0; i < CF_ARRAY_SIZE(checks); i++)
            selected[i] = true;
    return -1;
}

/* A check's verdicts: by the spec alone, by umdev's policy, and at the
 * run's level. A check the kit could not carry out passes neither. */
struct verdict {
    bool error, spec, policy, pass;
};

static struct verdict
judge(const struct cf_result *r, enum cf_level level)
{
    struct verdict v;

    v.error = r->level[CF_LEVEL_ERROR].nfail > 0;
    v.spec = !v.error && r->level[CF_LEVEL_SPEC].nfail == 0;
    v.policy = !v.error && r->level[CF_LEVEL_POLICY].nfail == 0;
    v.pass = v.spec && (level == CF_LEVEL_SPEC || v.policy);
    return v;
}

/* {"spec": [{id, failures}...], ...}: the rules that failed, by level. */
static struct json_object *
json_rules(const struct cf_result *r)
{
    struct json_object *arr = json_object_new_array();
    size_t i;

    for (i = 0; i < CF_NRULES; i++) {
        struct json_object *o;

        if (r->rule_fails[i] == 0)
            continue;
        o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(cf_rules[i].id));
        json_object_object_add(
            o, "level",
            json_object_new_string(cf_level_name(cf_rules[i].level)));
        json_object_object_add(o, "failures",
                               json_object_new_int64(r->rule_fails[i]));
        json_object_array_add(arr, o);
    }
    return arr;
}

static struct json_object *
json_check(const struct cf_result *r, const struct verdict *v,
           enum cf_level level, const char *ev)
{
    struct json_object *o = json_object_new_object(), *f;
    char buf[CF_EVIDENCE_MAX + 32];
    int l;

    json_object_object_add(o, "name", json_object_new_string(r->name));
    json_object_object_add(o, "pass", json_object_new_boolean(v->pass));
    json_object_object_add(o, "level",
                           json_object_new_string(cf_level_name(level)));
    json_object_object_add(o, "spec_pass", json_object_new_boolean(v->spec));
    json_object_object_add(o, "policy_pass",
                           json_object_new_boolean(v->policy));
    json_object_object_add(o, "evidence", json_object_new_string(ev));
    f = json_object_new_object();
    for (l = 0; l < CF_NLEVELS; l++) {
        if (r->level[l].nfail == 0)
            continue;
        level_evidence(&r->level[l], buf, sizeof(buf));
        json_object_object_add(f, cf_level_name((enum cf_level)l),
                               json_object_new_string(buf));
    }
    json_object_object_add(o, "failures", f);
    json_object_object_add(o, "rules", json_rules(r));
    return o;
}

/* "PASS", "FAIL", or for policy judged at spec level "DIFFERS". */
static const char *
word(bool ok, bool error, bool judged)
{
    return error ? "ERROR" : ok ? "PASS" : judged ? "FAIL" : "DIFFERS";
}

/* Return: whether every selected check passed at @level. */
static bool
print_results(const struct cf_result *res, const bool selected[], bool json,
              enum cf_level level, double total)
{
    char ev[3 * CF_EVIDENCE_MAX + 1024];
    unsigned int n = 0, passed = 0, spec_ok = 0, policy_ok = 0, errors = 0;
    struct json_object *arr = json ? json_object_new_array() : NULL;
    size_t i;

    for (i = 0; i < CF_ARRAY_SIZE(checks); i++) {
        struct verdict v;

        if (!selected[i])
            continue;
        v = judge(&res[i], level);
        evidence(&res[i], ev, sizeof(ev));
        n++;
        passed += v.pass;
        spec_ok += v.spec;
        policy_ok += v.policy;
        errors += v.error;
        if (arr != NULL)
            json_object_array_add(arr, json_check(&res[i], &v, level, ev));
        else
            printf("%s %s [spec %s, policy %s]: %s (%.1f s)\n",
                   v.pass ? "PASS" : "FAIL", res[i].name,
                   word(v.spec, v.error, true),
                   word(v.policy, v.error, level == CF_LEVEL_POLICY), ev,
                   res[i].seconds);
    }
    if (arr != NULL) {
        printf("%s\n", json_object_to_json_string_ext(
                           arr, JSON_C_TO_STRING_PRETTY |
                                    JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
    } else {
        printf("conformance at %s level: %u checks, %u passed, %u failed; "
               "spec: %u passed; umdev policy: %u passed, %u %s; %u could "
               "not be checked (%.1f s)\n",
               level == CF_LEVEL_SPEC ? "spec" : "policy", n, passed,
               n - passed, spec_ok, policy_ok, n - policy_ok - errors,
               level == CF_LEVEL_SPEC ? "differ" : "failed", errors, total);
    }
    fflush(stdout);
    return passed == n;
}

int
main(int argc, char **argv)
{
    struct conform cf = {
        .timeout_ms = CF_DEFAULT_TIMEOUT_MS,
        .fuzz_seconds = CF_DEFAULT_FUZZ_SECONDS,
        .leak_cycles = CF_DEFAULT_LEAK_CYCLES,
    };
    struct cf_result res[CF_ARRAY_SIZE(checks)];
    bool selected[CF_ARRAY_SIZE(checks)] = { false };
    struct run_opts ro = { .level = CF_LEVEL_POLICY };
    char err[512] = "";
    bool all_pass;
    double t0 = cf_now();
    size_t i, n = 0, nsel = 0;
    int rc;

    rc = parse_args(argc, argv, &cf, &ro, selected);
    if (rc >= 0)
        return rc;
    verbose_log = cf.verbose;
    signal(SIGPIPE, SIG_IGN);
    if (cf.profile_path != NULL &&
        cf_profile_load(cf.profile_path, &cf.profile, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": profile %s: %s\n", cf.profile_path, err);
        return 2;
    }
    if (cf.plugin_path != NULL && cf_plugin_load(&cf, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": plug-in %s: %s\n", cf.plugin_path, err);
        cf_profile_free(cf.profile);
        return 2;
    }
    memset(res, 0, sizeof(res));
    for (i = 0; i < CF_ARRAY_SIZE(checks); i++) {
        res[i].name = checks[i].name;
        res[i].pass = true;
    }
    cf_log(&cf, "attaching to %s", cf.socket);
    rc = discover(&cf, selected[2], err, sizeof(err));
    for (i = 0; i < CF_ARRAY_SIZE(checks); i++)
        nsel += selected[i];
    for (i = 0; i < CF_ARRAY_SIZE(checks); i++) {
        double t = cf_now();

        if (!selected[i])
            continue;
        /* A long run (the fuzz check) says what it is doing. */
        if (ro.progress)
            fprintf(stderr, PROG ": [%zu/%zu] %s ...\n", ++n, nsel,
                    checks[i].name);
        if (rc < 0) {
            cf_error(&res[i], "%s", err);
        } else {
            cf_log(&cf, "running %s", checks[i].name);
            checks[i].run(&cf, &res[i]);
        }
        res[i].seconds = cf_now() - t;
        if (ro.progress)
            fprintf(stderr, PROG ": [%zu/%zu] %s: %s (%.1f s)\n", n, nsel,
                    checks[i].name, res[i].pass ? "pass" : "FAIL",
                    res[i].seconds);
    }
    all_pass = print_results(res, selected, ro.json, ro.level, cf_now() - t0);
    free(cf.base.regs);
    cf_profile_free(cf.profile);
    cf_plugin_unload(&cf);
    return all_pass ? 0 : 1;
}
