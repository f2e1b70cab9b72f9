/*
 * umdevd: the umdev supervisor. Owns the control socket, the definitions
 * and the parents' resources; runs one worker process per instance. This
 * file parses options, wires the parts together (umdevd.h lists them),
 * handles signals and tells systemd how the service is doing (sd_notify:
 * READY, STATUS, WATCHDOG, STOPPING; a no-op without $NOTIFY_SOCKET).
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

/* The sink's own file and line would say nothing about the message. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#include "admission.h"
#include "callouts.h"
#include "control.h"
#include "defs.h"
#include "handlers.h"
#include "parents.h"
#include "sandbox.h"
#include "supervisor.h"
#include "worker.h"

static void
usage(FILE *f)
{
    const struct parent_entry *e;
    struct daemon d = { .opts.admit_any = true };
    size_t i;

    fprintf(
        f,
        "usage: umdevd [options]\n"
        "  --rundir DIR     instance sockets (env UMDEV_RUNDIR, default "
        "%s)\n"
        "  --statedir DIR   definitions (env UMDEV_STATEDIR, default %s)\n"
        "  --control PATH   control socket (env UMDEV_CONTROL, default "
        "RUNDIR/control)\n"
        "  --group NAME     group allowed to manage instances\n"
        "  --worker-user NAME\n"
        "                   who workers of root-owned instances run as\n"
        "                   (default: user umdev if it exists, else "
        "nobody)\n"
        "  --pool PARENT.POOL=N\n"
        "                   hand out at most N units of a parent's pool\n"
        "                   (repeatable; N may not exceed the capacity)\n"
        "  --syslog         log to syslog/journald instead of stderr\n"
        "                   (a stderr that is the journal gets structured\n"
        "                   entries without it)\n"
        "  --log-level LEVEL\n"
        "                   log LEVEL and worse: emerg, alert, crit, err,\n"
        "                   warning, notice, info (default), debug, or 0-7\n"
        "  --sandbox MODE   kill (default): a worker's system call outside\n"
        "                   its seccomp allow-list kills it; log: the\n"
        "                   kernel logs it and lets it run (debugging;\n"
        "                   env UMDEV_SANDBOX)\n"
        "  --print-sandbox  print the workers' allow-list and exit\n"
        "  --plugin-dir DIR load parent plug-ins from DIR (env\n"
        "                   UMDEV_PLUGIN_DIR, default %s)\n"
        "  --admit MODE     audit (default): offer a plug-in's types only\n"
        "                   after `umdevctl audit TYPE --conformance`\n"
        "                   passes; any: offer them unchecked\n"
        "  --admit-fuzz-seconds N\n"
        "                   fuzz time of each admission audit (default "
        "%u)\n"
        "  --umdevctl PATH  the umdevctl admission audits run (default "
        "%s)\n"
        "  --callouts DIR   run mdevctl-style callout scripts from DIR\n"
        "                   before and after each define, undefine,\n"
        "                   modify, start and stop (default %s;\n"
        "                   \"\" for none)\n"
        "  --notifiers DIR  run every mdevctl-style notifier script in DIR\n"
        "                   after each of them (default %s)\n"
        "  --callout-timeout SECONDS\n"
        "                   kill a callout script running longer (1-%d,\n"
        "                   default %d; a veto before the action)\n"
        "  --upgrade        take over from the umdevd serving the control\n"
        "                   socket: it leaves its instances running and\n"
        "                   exits (SIGUSR2), this one adopts them\n"
        "  --verbose        log debug messages (--log-level debug)\n"
        "  --help\n"
        "  --version, -V    print umdevd's version and exit\n"
        "built-in pools (PARENT.POOL capacity):\n",
        UMDEVD_DEFAULT_RUNDIR, UMDEVD_DEFAULT_STATEDIR,
        UMDEVD_DEFAULT_PLUGIN_DIR, UMDEVD_DEFAULT_ADMIT_FUZZ,
        UMDEVD_DEFAULT_UMDEVCTL, UMDEVD_DEFAULT_CALLOUT_DIR,
        UMDEVD_DEFAULT_NOTIFIER_DIR, UMDEVD_MAX_CALLOUT_TIMEOUT_S,
        UMDEVD_DEFAULT_CALLOUT_TIMEOUT_S);
    /* A registry of the built-in parents alone, to list their pools. */
    if (mdev_create(&d.mdev) == 0 && parents_create(&d, &d.parents) == 0)
        for (e = d.parents->list; e != NULL; e = e->next)
            for (i = 0; i < e->drv->npools; i++)
                fprintf(f, "  %s.%s %u\n", e->drv->name, e->drv->pools[i].name,
                        (unsigned int)e->drv->pools[i].capacity);
    parents_destroy(d.parents);
    mdev_destroy(d.mdev);
}

/* Parse "PARENT.POOL=N" into @o's overrides. Whether the pool exists and
 * N fits its capacity is known once the parents are loaded
 * (parents_check_overrides()). Return: 0, or -1 after saying what is
 * wrong. */
static int
parse_pool(struct daemon_opts *o, const char *arg)
{
    const char *dot = strchr(arg, '.');
    const char *eq = strchr(arg, '=');
    struct pool_override *po;
    unsigned long long n;
    char *end;
    size_t i;

    if (dot == NULL || eq == NULL || dot > eq || dot == arg || eq == dot + 1 ||
        eq[1] == '\0') {
        fprintf(stderr,
                "umdevd: --pool %s: expected PARENT.POOL=N, e.g. "
                "serial.ports=8\n",
                arg);
        return -1;
    }
    if ((size_t)(dot - arg) > MDEV_NAME_MAX ||
        (size_t)(eq - dot - 1) > MDEV_NAME_MAX) {
        fprintf(stderr, "umdevd: --pool %s: name too long\n", arg);
        return -1;
    }
    errno = 0;
    n = strtoull(eq + 1, &end, 10);
    if (errno != 0 || *end != '\0' || eq[1] == '-' || n > UINT32_MAX) {
        fprintf(stderr,
                "umdevd: --pool %s: N must be a number from 0 to the "
                "pool's capacity (umdevd --help lists them)\n",
                arg);
        return -1;
    }
    /* A later --pool for the same pool replaces an earlier one. */
    for (i = 0; i < o->npools; i++)
        if (strncmp(o->pools[i].parent, arg, (size_t)(dot - arg)) == 0 &&
            o->pools[i].parent[dot - arg] == '\0' &&
            strncmp(o->pools[i].pool, dot + 1, (size_t)(eq - dot - 1)) == 0 &&
            o->pools[i].pool[eq - dot - 1] == '\0')
            break;
    if (i == UMDEVD_MAX_POOL_OVERRIDES) {
        fprintf(stderr, "umdevd: at most %d --pool options\n",
                UMDEVD_MAX_POOL_OVERRIDES);
        return -1;
    }
    po = &o->pools[i];
    snprintf(po->parent, sizeof(po->parent), "%.*s", (int)(dot - arg), arg);
    snprintf(po->pool, sizeof(po->pool), "%.*s", (int)(eq - dot - 1), dot + 1);
    po->capacity = (uint32_t)n;
    if (i == o->npools)
        o->npools++;
    return 0;
}

static void
syslog_sink(void *opaque, int level, const char *line)
{
    (void)opaque;
    syslog(level, "%s", line);
}

/*
 * The journal sink: one structured entry per line. A line about an
 * instance starts with its UUID (the daemon's convention, STYLE.md
 * "Logging"); such an entry also carries UUID, TYPE and PARENT, so that
 * `journalctl UUID=...` shows one instance's story. A line the journal
 * does not take goes to stderr, which is the journal's stream too.
 */
static void
journal_sink(void *opaque, int level, const char *line)
{
    const struct daemon *d = opaque;
    const struct instance *i = NULL;
    int rc;

    if (strlen(line) > MDEV_UUID_STR_LEN && line[MDEV_UUID_STR_LEN] == ':')
        for (i = d->instances; i != NULL; i = i->next)
            if (strncmp(line, i->cfg.uuid, MDEV_UUID_STR_LEN) == 0)
                break;
    if (i != NULL)
        rc = sd_journal_send("MESSAGE=%s", line, "PRIORITY=%d", level,
                             "SYSLOG_IDENTIFIER=umdevd", "UUID=%s", i->cfg.uuid,
                             "TYPE=%s", i->cfg.type, "PARENT=%s", i->cfg.parent,
                             NULL);
    else
        rc = sd_journal_send("MESSAGE=%s", line, "PRIORITY=%d", level,
                             "SYSLOG_IDENTIFIER=umdevd", NULL);
    if (rc < 0)
        umdev_log_stderr(NULL, level, line);
}

/* "--log-level LEVEL": a syslog level's name (as syslog.conf spells it,
 * "error" and "warn" too) or number. Return: the level, or -1. */
static int
parse_log_level(const char *arg)
{
    static const char *const names[] = {
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    };
    int i;

    if (arg[0] >= '0' && arg[0] <= '7' && arg[1] == '\0')
        return arg[0] - '0';
    for (i = 0; i <= LOG_DEBUG; i++)
        if (strcmp(arg, names[i]) == 0)
            return i;
    if (strcmp(arg, "error") == 0)
        return LOG_ERR;
    if (strcmp(arg, "warn") == 0)
        return LOG_WARNING;
    return -1;
}

static int
set_path(char *dst, const char *src, const char *what)
{
    if (snprintf(dst, PATH_MAX, "%s", src) >= PATH_MAX) {
        fprintf(stderr, "umdevd: %s path is too long\n", what);
        return -1;
    }
    return 0;
}

/* The options that name a path: their letter, the option's field, its
 * environment variable (NULL: none), its default (NULL: none) and a name
 * for messages. */
static const struct path_option {
    int letter;
    size_t field;
    const char *env;
    const char *dflt;
    const char *what;
} path_options[] = {
    { 'r', offsetof(struct daemon_opts, rundir), "UMDEV_RUNDIR",
      UMDEVD_DEFAULT_RUNDIR, "rundir" },
    { 's', offsetof(struct daemon_opts, statedir), "UMDEV_STATEDIR",
      UMDEVD_DEFAULT_STATEDIR, "statedir" },
    { 'c', offsetof(struct daemon_opts, control), "UMDEV_CONTROL", NULL,
      "control" },
    { 'D', offsetof(struct daemon_opts, plugin_dir), "UMDEV_PLUGIN_DIR",
      UMDEVD_DEFAULT_PLUGIN_DIR, "plugin dir" },
    { 'U', offsetof(struct daemon_opts, umdevctl), NULL,
      UMDEVD_DEFAULT_UMDEVCTL, "umdevctl" },
    { 'C', offsetof(struct daemon_opts, callout_dir), NULL,
      UMDEVD_DEFAULT_CALLOUT_DIR, "callouts" },
    { 'N', offsetof(struct daemon_opts, notifier_dir), NULL,
      UMDEVD_DEFAULT_NOTIFIER_DIR, "notifiers" },
};

/* The path option @letter, or NULL. */
static const struct path_option *
path_option(int letter)
{
    size_t i;

    for (i = 0; i < sizeof(path_options) / sizeof(path_options[0]); i++)
        if (path_options[i].letter == letter)
            return &path_options[i];
    return NULL;
}

/* Defaults first, then the environment beats them. */
static void
path_defaults(struct daemon_opts *o)
{
    size_t i;

    for (i = 0; i < sizeof(path_options) / sizeof(path_options[0]); i++) {
        const struct path_option *p = &path_options[i];
        const char *env = p->env != NULL ? getenv(p->env) : NULL;

        if (env != NULL || p->dflt != NULL)
            set_path((char *)o + p->field, env != NULL ? env : p->dflt,
                     p->what);
    }
}

static int
parse_sandbox(struct daemon_opts *o, const char *mode)
{
    if (strcmp(mode, "kill") == 0) {
        o->sandbox_log = false;
    } else if (strcmp(mode, "log") == 0) {
        o->sandbox_log = true;
    } else {
        fprintf(stderr,
                "umdevd: sandbox mode must be 'kill' or 'log', not "
                "'%s'\n",
                mode);
        return -1;
    }
    return 0;
}

/* Make @dir (PATH_MAX bytes, of option @opt) absolute, from the working
 * directory. Return: 0, or -1 after saying what is wrong. */
static int
absolute(char *dir, const char *opt)
{
    char cwd[PATH_MAX], rel[PATH_MAX];

    if (dir[0] == '\0' || dir[0] == '/')
        return 0;
    memcpy(rel, dir, sizeof(rel));
    if (getcwd(cwd, sizeof(cwd)) == NULL ||
        snprintf(dir, PATH_MAX, "%s/%s", cwd, rel) >= PATH_MAX) {
        fprintf(stderr, "umdevd: %s %s: cannot make it absolute\n", opt, rel);
        return -1;
    }
    return 0;
}

static int
parse_args(int argc, char **argv, struct daemon_opts *o)
{
    static const struct option opts[] = {
        { "rundir", required_argument, NULL, 'r' },
        { "statedir", required_argument, NULL, 's' },
        { "control", required_argument, NULL, 'c' },
        { "group", required_argument, NULL, 'g' },
        { "worker-user", required_argument, NULL, 'W' },
        { "pool", required_argument, NULL, 'P' },
        { "syslog", no_argument, NULL, 'S' },
        { "sandbox", required_argument, NULL, 'X' },
        { "print-sandbox", no_argument, NULL, 'p' },
        { "plugin-dir", required_argument, NULL, 'D' },
        { "admit", required_argument, NULL, 'A' },
        { "admit-fuzz-seconds", required_argument, NULL, 'F' },
        { "umdevctl", required_argument, NULL, 'U' },
        { "callouts", required_argument, NULL, 'C' },
        { "notifiers", required_argument, NULL, 'N' },
        { "callout-timeout", required_argument, NULL, 'T' },
        { "verbose", no_argument, NULL, 'v' },
        { "upgrade", no_argument, NULL, 'u' },
        { "log-level", required_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *env;
    int c;

    memset(o, 0, sizeof(*o));
    o->manage_gid = (gid_t)-1;
    o->log_level = LOG_INFO;
    path_defaults(o);
    o->admit_fuzz_seconds = UMDEVD_DEFAULT_ADMIT_FUZZ;
    o->callout_timeout_s = UMDEVD_DEFAULT_CALLOUT_TIMEOUT_S;
    if ((env = getenv("UMDEV_SANDBOX")) != NULL && parse_sandbox(o, env) < 0)
        return 2;
    while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
        const struct path_option *po = path_option(c);

        if (po != NULL) {
            if (set_path((char *)o + po->field, optarg, po->what) < 0)
                return 2;
            continue;
        }
        switch (c) {
        case 'g': {
            struct group *g = getgrnam(optarg);

            if (g == NULL) {
                fprintf(stderr, "umdevd: no group named '%s'\n", optarg);
                return 2;
            }
            o->manage_gid = g->gr_gid;
            break;
        }
        case 'W':
            if (snprintf(o->worker_user, sizeof(o->worker_user), "%s",
                         optarg) >= (int)sizeof(o->worker_user)) {
                fprintf(stderr, "umdevd: --worker-user name too long\n");
                return 2;
            }
            break;
        case 'P':
            if (parse_pool(o, optarg) < 0)
                return 2;
            break;
        case 'S':
            o->syslog = true;
            break;
        case 'X':
            if (parse_sandbox(o, optarg) < 0)
                return 2;
            break;
        case 'p':
            printf("# %u system calls; anything else kills the worker "
                   "(SIGSYS)\n",
                   sandbox_count());
            sandbox_print(stdout);
            return 1;
        case 'A':
            if (strcmp(optarg, "any") != 0 && strcmp(optarg, "audit") != 0) {
                fprintf(stderr,
                        "umdevd: --admit takes 'audit' or 'any', not "
                        "'%s'\n",
                        optarg);
                return 2;
            }
            o->admit_any = strcmp(optarg, "any") == 0;
            break;
        case 'F': {
            char *end;
            unsigned long n;

            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || optarg[0] == '-' || n > 3600) {
                fprintf(stderr,
                        "umdevd: --admit-fuzz-seconds takes 0 to "
                        "3600, not '%s'\n",
                        optarg);
                return 2;
            }
            o->admit_fuzz_seconds = (unsigned int)n;
            break;
        }
        case 'T': {
            char *end;
            unsigned long n;

            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || optarg[0] == '-' || n < 1 ||
                n > UMDEVD_MAX_CALLOUT_TIMEOUT_S) {
                fprintf(stderr,
                        "umdevd: --callout-timeout takes 1 to %d (seconds), "
                        "not '%s'\n",
                        UMDEVD_MAX_CALLOUT_TIMEOUT_S, optarg);
                return 2;
            }
            o->callout_timeout_s = (unsigned int)n;
            break;
        }
        case 'v':
            o->log_level = LOG_DEBUG;
            break;
        case 'u':
            o->upgrade = true;
            break;
        case 'L':
            o->log_level = parse_log_level(optarg);
            if (o->log_level < 0) {
                fprintf(stderr,
                        "umdevd: --log-level takes emerg, alert, crit, err, "
                        "warning, notice, info, debug or 0-7, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("umdevd %s\n", UMDEV_PROJECT_VERSION);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "umdevd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (o->control[0] == '\0' &&
        snprintf(o->control, PATH_MAX, "%s/control", o->rundir) >= PATH_MAX)
        return 2;
    /* Scripts run from /, so their directories are made absolute now. */
    if (absolute(o->callout_dir, "--callouts") < 0 ||
        absolute(o->notifier_dir, "--notifiers") < 0)
        return 2;
    return 0;
}

/* The daemon and what systemd has been told about it. */
struct service {
    struct daemon *d;
    bool ready;       /* READY=1 sent */
    char status[128]; /* the last "STATUS=..." sent */
    uint64_t watchdog_ms;
    bool done; /* stopping, and every instance stopped */
};

/* sd_notify() @msg; a failure is worth one warning, not an exit. */
static void
notify(struct service *s, const char *msg)
{
    static bool warned;
    int rc = sd_notify(0, msg);

    if (rc < 0 && !warned) {
        warned = true;
        umdev_log(&s->d->log, LOG_WARNING, "cannot notify systemd: %s",
                  strerror(-rc));
    }
}

/*
 * Tell systemd what changed since the last call, after each turn of the
 * loop. READY=1 once nothing is starting any more: the control socket
 * listens before the first turn, and the instances marked auto (except
 * those of plug-ins awaiting admission) were started before it, so
 * dependent units (a VM) find their sockets. STATUS= whenever the counts
 * change.
 */
static void
notify_update(struct service *s)
{
    unsigned int running = 0, starting = 0, stopping = 0, failed = 0;
    unsigned int defined = 0;
    const struct instance *i;
    char msg[sizeof(s->status)];

    for (i = s->d->instances; i != NULL; i = i->next) {
        running += i->state == ST_RUNNING;
        starting += i->state == ST_STARTING;
        stopping += i->state == ST_STOPPING;
        failed += i->state == ST_FAILED;
        defined += i->defined;
    }
    starting += s->d->auto_pending;
    if (s->d->stopping)
        snprintf(msg, sizeof(msg),
                 "STATUS=shutting down: instances still stopping: %u",
                 running + starting + stopping);
    else
        snprintf(msg, sizeof(msg),
                 "STATUS=%u running, %u starting, %u failed; %u defined",
                 running, starting, failed, defined);
    if (strcmp(msg, s->status) != 0) {
        memcpy(s->status, msg, sizeof(msg));
        notify(s, msg);
    }
    if (!s->ready && starting == 0 && !s->d->stopping) {
        s->ready = true;
        notify(s, "READY=1");
    }
}

/* WATCHDOG=1 from the loop itself: a loop that is stuck stops the pings
 * and systemd restarts the service (WatchdogSec= in the unit). */
static void
on_watchdog(struct umdev_loop *loop, void *opaque)
{
    struct service *s = opaque;

    notify(s, "WATCHDOG=1");
    if (umdev_loop_timer_add(loop, s->watchdog_ms, on_watchdog, s) < 0)
        umdev_log(&s->d->log, LOG_ERR,
                  "cannot re-arm the watchdog timer: out of memory");
}

static void
on_signal(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct service *s = opaque;
    struct daemon *d = s->d;
    struct signalfd_siginfo si;

    (void)loop;
    (void)events;
    while (read(fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            supervisor_reap(d);
        } else if (si.ssi_signo == SIGUSR2 && !d->stopping) {
            umdev_log(&d->log, LOG_NOTICE,
                      "signal %u: upgrade: leaving the instances running for "
                      "the next umdevd",
                      si.ssi_signo);
            notify(s, "STOPPING=1");
            d->stopping = true;
            d->upgrading = true;
            control_close_all(d);
            admission_destroy(d);
            callouts_stop_all(d);
            supervisor_detach_all(d);
        } else if (si.ssi_signo == SIGUSR2) {
            /* Already stopping every instance: too late to hand over. */
        } else if (!d->stopping) {
            umdev_log(&d->log, LOG_NOTICE, "signal %u: stopping every instance",
                      si.ssi_signo);
            notify(s, "STOPPING=1");
            d->stopping = true;
            control_close_all(d);
            admission_destroy(d);
            callouts_stop_all(d);
            supervisor_stop_all(d);
        }
    }
    if (d->stopping && supervisor_all_stopped(d))
        s->done = true;
}

/* Run the loop until a signal stopped every instance. Return: the exit
 * status. */
static int
serve(struct service *s)
{
    uint64_t usec;

    if (sd_watchdog_enabled(0, &usec) > 0) {
        /* Ping at half the period, as sd_watchdog_enabled(3) advises. */
        s->watchdog_ms = usec / 2000 > 0 ? usec / 2000 : 1;
        on_watchdog(s->d->loop, s);
    }
    notify_update(s);
    while (!s->done) {
        if (umdev_loop_run_once(s->d->loop, -1) < 0)
            return 1;
        /* The last worker may also go without a signal: let go of when
         * it became ready during an upgrade. */
        if (s->d->stopping && supervisor_all_stopped(s->d))
            s->done = true;
        notify_update(s);
    }
    return 0;
}

/* Start the definitions marked auto of @type (NULL: of every type on
 * offer); a plug-in's wait for its admission. */
static void
start_auto(struct daemon *d, const char *type)
{
    struct instance *i;

    for (i = d->instances; i != NULL; i = i->next) {
        /* Not one adopted from an earlier umdevd, nor a failed one. */
        if (!i->defined || !i->cfg.auto_start || i->state != ST_STOPPED ||
            (type != NULL && strcmp(i->cfg.type, type) != 0) ||
            parents_type_offered(d->parents, i->cfg.type, NULL, 0) < 0)
            continue;
        handlers_auto_start(d, i);
    }
}

static void
on_admitted(struct daemon *d, const char *type)
{
    start_auto(d, type);
}

/* defs_load_all()'s callback: a definition read at start. */
static int
definition_found(struct daemon *d, const char *parent, const char *uuid,
                 struct json_object *obj, char *err, size_t errlen)
{
    struct inst_config cfg;
    struct instance *inst;
    int rc;

    rc = defs_from_json(d, parent, uuid, obj, &cfg, err, errlen);
    if (rc < 0)
        return rc;
    rc = inst_add(d, &cfg, true, &inst, err, errlen);
    json_object_put(cfg.attrs);
    return rc;
}

/*
 * Is another daemon serving @path? Binding would unlink its socket and
 * leave it running unreachable, with its workers and resources.
 */
static bool
control_in_use(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    bool used;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return false;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    used = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return used;
}

/*
 * A root daemon's workers must never serve as root (docs/SANDBOX.md):
 * those of instances owned by root (or by group root) run as the worker
 * user. Return: 0, or -1 after saying what is wrong.
 */
static int
resolve_worker_user(struct daemon *d)
{
    struct daemon_opts *o = &d->opts;
    const struct passwd *pw;

    if (geteuid() != 0) {
        /* Workers keep the daemon's own unprivileged user. */
        if (o->worker_user[0] != '\0')
            umdev_log(&d->log, LOG_WARNING,
                      "--worker-user %s: ignored, umdevd is not root "
                      "(workers run as uid %u)",
                      o->worker_user, (unsigned int)geteuid());
        o->worker_user[0] = '\0';
        o->worker_uid = geteuid();
        o->worker_gid = getegid();
        return 0;
    }
    if (o->worker_user[0] != '\0') {
        pw = getpwnam(o->worker_user);
        if (pw == NULL) {
            fprintf(stderr, "umdevd: --worker-user: no user named '%s'\n",
                    o->worker_user);
            return -1;
        }
    } else {
        pw = getpwnam(UMDEVD_DEFAULT_WORKER_USER);
        if (pw == NULL)
            pw = getpwnam("nobody");
        if (pw == NULL) {
            fprintf(stderr,
                    "umdevd: neither user '%s' nor 'nobody' exists for the "
                    "workers to run as (create one, or pass "
                    "--worker-user)\n",
                    UMDEVD_DEFAULT_WORKER_USER);
            return -1;
        }
    }
    if (pw->pw_uid == 0 || pw->pw_gid == 0) {
        fprintf(stderr,
                "umdevd: --worker-user %s: workers may not run as root or "
                "with group root (uid %u, gid %u)\n",
                pw->pw_name, (unsigned int)pw->pw_uid,
                (unsigned int)pw->pw_gid);
        return -1;
    }
    snprintf(o->worker_user, sizeof(o->worker_user), "%s", pw->pw_name);
    o->worker_uid = pw->pw_uid;
    o->worker_gid = pw->pw_gid;
    return 0;
}

/*
 * --upgrade: ask the umdevd serving the control socket to hand over
 * (SIGUSR2: it leaves its workers running and exits) and wait until it
 * is gone. Which process that is, the socket itself says (SO_PEERCRED),
 * so no pid file can send the signal astray. Return: 0 (also when none
 * answers: nothing to take over), or -1 after saying why.
 */
static int
take_over(struct daemon *d)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct ucred cred = { .pid = 0 };
    socklen_t clen = sizeof(cred);
    struct pollfd pfd;
    int fd, pidfd, rc;

    if (strlen(d->opts.control) >= sizeof(sa.sun_path))
        return 0;
    strcpy(sa.sun_path, d->opts.control);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        umdev_log(&d->log, LOG_NOTICE,
                  "upgrade: no umdevd answers on %s; starting afresh "
                  "(workers a killed umdevd left are adopted all the same)",
                  d->opts.control);
        return 0;
    }
    rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen);
    close(fd);
    if (rc < 0 || cred.pid <= 0) {
        fprintf(stderr, "umdevd: --upgrade: cannot tell who serves %s\n",
                d->opts.control);
        return -1;
    }
    pidfd = (int)pidfd_open(cred.pid, 0);
    if (pidfd < 0 || pidfd_send_signal(pidfd, SIGUSR2, NULL, 0) < 0) {
        fprintf(stderr,
                "umdevd: --upgrade: cannot signal umdevd (pid %d): %s\n",
                (int)cred.pid, strerror(errno));
        if (pidfd >= 0)
            close(pidfd);
        return -1;
    }
    umdev_log(&d->log, LOG_NOTICE,
              "upgrade: umdevd (pid %d) asked to hand over; waiting for it "
              "to exit",
              (int)cred.pid);
    pfd = (struct pollfd){ .fd = pidfd, .events = POLLIN };
    do
        rc = poll(&pfd, 1, UMDEVD_UPGRADE_TIMEOUT_MS);
    while (rc < 0 && errno == EINTR);
    close(pidfd);
    if (rc != 1) {
        fprintf(stderr,
                "umdevd: --upgrade: umdevd (pid %d) did not exit within %d "
                "s\n",
                (int)cred.pid, UMDEVD_UPGRADE_TIMEOUT_MS / 1000);
        return -1;
    }
    return 0;
}

/* Many instances means many sockets and channels: lift the soft limit. */
static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The registry: built-in parents, then the plug-ins. Return: 0, or the
 * exit status. */
static int
load_parents(struct daemon *d)
{
    char err[512];
    int rc;

    rc = mdev_create(&d->mdev);
    if (rc == 0)
        rc = parents_create(d, &d->parents);
    if (rc < 0) {
        fprintf(stderr, "umdevd: cannot initialise: %s\n", strerror(-rc));
        return 1;
    }
    if (d->opts.plugin_dir[0] != '\0') {
        rc = plugins_load(d, d->opts.plugin_dir);
        if (rc < 0 && rc != -ENOENT)
            umdev_log(&d->log, LOG_ERR, "cannot read plug-in directory %s: %s",
                      d->opts.plugin_dir, strerror(-rc));
    }
    if (parents_check_overrides(d, err, sizeof(err)) < 0) {
        fprintf(stderr, "umdevd: %s\n", err);
        return 2;
    }
    return 0;
}

/* A restarted worker that cannot even read its instance: say why on its
 * channel, as a worker does, and go (its predecessor serves on). */
static void __attribute__((noreturn)) restore_refuse(const char *why)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "event", json_object_new_string("error"));
    json_object_object_add(o, "message", json_object_new_string(why));
    channel_send(WORKER_RESTORE_CHANNEL_FD, o);
    json_object_put(o);
    _exit(1);
}

/* The supervisor's "restore" request (inst_restart()): the instance a
 * restarted worker is to build, configured as the old worker runs it. */
static void
restore_request(struct daemon *d, struct instance *inst, int *grace_ms)
{
    struct pollfd p = { .fd = WORKER_RESTORE_CHANNEL_FD, .events = POLLIN };
    struct json_object *req = NULL, *cfg = NULL, *v;
    const char *parent, *token, *uuid, *kind;
    char buf[65536], err[256], why[300];
    ssize_t n = -1;

    if (poll(&p, 1, WORKER_HANDOVER_TIMEOUT_MS) == 1)
        n = recv(WORKER_RESTORE_CHANNEL_FD, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        restore_refuse("no restore request from umdevd");
    buf[n] = '\0';
    req = json_tokener_parse(buf);
    kind = json_str(req, "req");
    parent = json_str(req, "parent");
    uuid = json_str(req, "uuid");
    token = json_str(req, "token");
    if (kind == NULL || strcmp(kind, "restore") != 0 || parent == NULL ||
        uuid == NULL || token == NULL || strlen(token) >= sizeof(inst->token) ||
        !json_object_object_get_ex(req, "config", &cfg))
        restore_refuse("malformed restore request");
    if (defs_from_json(d, parent, uuid, cfg, &inst->cfg, err, sizeof(err)) <
        0) {
        snprintf(why, sizeof(why), "cannot restore: %s", err);
        restore_refuse(why);
    }
    snprintf(inst->token, sizeof(inst->token), "%s", token);
    if (json_object_object_get_ex(req, "grace_ms", &v))
        *grace_ms = json_object_get_int(v);
    json_object_put(req);
}

int
main(int argc, char **argv)
{
    struct daemon d = { .signal_fd = -1 };
    struct service svc = { .d = &d };
    int status = 1; /* until the loop ran */
    bool restore_worker = false;
    sigset_t mask;
    ssize_t n;
    int rc;

    /* A restarted worker (inst_restart()): umdevd's own arguments
     * follow, for the same options. Never a daemon. */
    if (argc > 1 && strcmp(argv[1], "--restore-worker") == 0) {
        restore_worker = true;
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    rc = parse_args(argc, argv, &d.opts);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    /* The file, not /proc/self/exe: a package upgrade replaces the file,
     * and a restart is to run what is installed now. */
    n = readlink("/proc/self/exe", d.exe, sizeof(d.exe) - 1);
    if (n > 0)
        d.exe[n] = '\0';
    d.argc = argc;
    d.argv = argv;
    d.log.max_level = d.opts.log_level;
    if (d.opts.syslog) {
        openlog("umdevd", LOG_PID, LOG_DAEMON);
        d.log.fn = syslog_sink;
    } else if (umdev_log_stderr_is_journal()) {
        /* Started by systemd with stderr to the journal: entries with
         * fields. Workers keep "<N>"-prefixed lines on stderr, since the
         * sandbox lets them open no socket (docs/SANDBOX.md). */
        d.log.fn = journal_sink;
        d.log.opaque = &d;
    } else {
        d.log.fn = umdev_log_stderr;
    }
    if (resolve_worker_user(&d) < 0) {
        status = 2;
        goto out;
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    if (restore_worker) {
        static struct instance inst = { .status_fd = -1, .pidfd = -1 };
        int grace_ms = UMDEVD_DEFAULT_GRACE_MS;

        if (load_parents(&d) != 0)
            restore_refuse("cannot load the parent drivers");
        restore_request(&d, &inst, &grace_ms);
        worker_restore(&d, &inst, grace_ms);
    }
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    status = load_parents(&d);
    if (status != 0)
        goto out;
    status = 1;
    d.signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (d.signal_fd < 0) {
        fprintf(stderr, "umdevd: cannot initialise: signalfd: %s\n",
                strerror(errno));
        goto out;
    }
    rc = umdev_loop_create(&d.loop);
    if (rc == 0)
        rc = admission_create(&d);
    if (rc < 0) {
        fprintf(stderr, "umdevd: cannot initialise: %s\n", strerror(-rc));
        goto out;
    }
    handlers_init(&d);
    d.hooks.admitted = on_admitted;
    rc = mkdir_p(d.opts.rundir, 0755);
    if (rc < 0) {
        fprintf(stderr, "umdevd: cannot create %s: %s\n", d.opts.rundir,
                strerror(-rc));
        goto out;
    }
    if (d.opts.upgrade && take_over(&d) < 0)
        goto out;
    if (control_in_use(d.opts.control)) {
        fprintf(stderr,
                "umdevd: another umdevd is serving %s (stop it, or give this "
                "one its own --control and --rundir)\n",
                d.opts.control);
        goto out;
    }
    rc = control_listen(&d);
    if (rc < 0) {
        fprintf(stderr, "umdevd: cannot listen on %s: %s\n", d.opts.control,
                strerror(-rc));
        goto out;
    }
    /* From here on this daemon's sockets are removed even if it is
     * killed outright (supervisor.h). */
    rc = supervisor_cleanup_start(&d);
    if (rc < 0)
        umdev_log(&d.log, LOG_WARNING,
                  "cannot start the cleanup process (%s): sockets stay "
                  "behind if umdevd is killed",
                  strerror(-rc));
    supervisor_cleanup_watch(&d, d.opts.control);
    umdev_loop_add(d.loop, d.signal_fd, UMDEV_LOOP_IN, on_signal, &svc);
    defs_load_all(&d, definition_found);
    /* Workers an earlier umdevd left running (upgraded, or killed) come
     * back before anything starts: their resources are taken. */
    supervisor_adopt_all(&d);
    start_auto(&d, NULL);
    admission_start(&d);
    umdev_log(&d.log, LOG_NOTICE,
              "workers of root-owned instances run as %s (uid %u, gid %u)",
              d.opts.worker_user[0] ? d.opts.worker_user : "umdevd's user",
              (unsigned int)d.opts.worker_uid, (unsigned int)d.opts.worker_gid);
    umdev_log(&d.log, LOG_NOTICE,
              "ready: control %s, rundir %s, statedir %s (%zu definitions)",
              d.opts.control, d.opts.rundir, d.opts.statedir, d.ninstances);
    status = serve(&svc);
out:
    control_close_all(&d);
    admission_destroy(&d);
    supervisor_free_all(&d);
    parents_destroy(d.parents);
    mdev_destroy(d.mdev);
    umdev_loop_destroy(d.loop);
    if (d.signal_fd >= 0)
        close(d.signal_fd);
    return status;
}
