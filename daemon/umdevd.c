/*
 * umdevd: the umdev supervisor. Owns the control socket, the definitions
 * and the parents' resources; runs one worker process per instance.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "sandbox.h"
#include "umdevd.h"

static void
usage(FILE *f)
{
    const struct parent_driver *const *p;
    size_t i;

    fprintf(f,
            "usage: umdevd [options]\n"
            "  --rundir DIR     instance sockets (env UMDEV_RUNDIR, default "
            "%s)\n"
            "  --statedir DIR   definitions (env UMDEV_STATEDIR, default %s)\n"
            "  --control PATH   control socket (env UMDEV_CONTROL, default "
            "RUNDIR/control)\n"
            "  --group NAME     group allowed to manage instances\n"
            "  --pool PARENT.POOL=N\n"
            "                   hand out at most N units of a parent's pool\n"
            "                   (repeatable; N may not exceed the capacity)\n"
            "  --syslog         log to syslog/journald instead of stderr\n"
            "  --sandbox MODE   kill (default): a worker's system call outside\n"
            "                   its seccomp allow-list kills it; log: the\n"
            "                   kernel logs it and lets it run (debugging;\n"
            "                   env UMDEV_SANDBOX)\n"
            "  --print-sandbox  print the workers' allow-list and exit\n"
            "  --verbose        log debug messages\n"
            "  --help\n"
            "built-in pools (PARENT.POOL capacity):\n",
            UMDEVD_DEFAULT_RUNDIR, UMDEVD_DEFAULT_STATEDIR);
    for (p = parents_builtin(); *p != NULL; p++)
        for (i = 0; i < (*p)->desc.npools; i++)
            fprintf(f, "  %s.%s %u\n", (*p)->desc.name,
                    (*p)->desc.pools[i].name,
                    (unsigned int)(*p)->desc.pools[i].capacity);
}

/* Parse "PARENT.POOL=N" into @o's overrides; N within the built-in
 * capacity (a pool may be lowered, never raised past what the parent
 * has). Return: 0, or -1 after saying what is wrong. */
static int
parse_pool(struct daemon_opts *o, const char *arg)
{
    const struct parent_driver *drv;
    const char *dot = strchr(arg, '.');
    const char *eq = strchr(arg, '=');
    char parent[MDEV_NAME_MAX + 1], pool[MDEV_NAME_MAX + 1];
    struct pool_override *po;
    unsigned long long n;
    char *end;
    size_t i;

    if (dot == NULL || eq == NULL || dot > eq || dot == arg ||
        eq == dot + 1 || eq[1] == '\0') {
        fprintf(stderr, "umdevd: --pool %s: expected PARENT.POOL=N, e.g. "
                        "serial.ports=8\n",
                arg);
        return -1;
    }
    if ((size_t)(dot - arg) >= sizeof(parent) ||
        (size_t)(eq - dot - 1) >= sizeof(pool)) {
        fprintf(stderr, "umdevd: --pool %s: name too long\n", arg);
        return -1;
    }
    snprintf(parent, sizeof(parent), "%.*s", (int)(dot - arg), arg);
    snprintf(pool, sizeof(pool), "%.*s", (int)(eq - dot - 1), dot + 1);
    drv = parents_find(parent);
    if (drv == NULL) {
        fprintf(stderr, "umdevd: --pool %s: no parent named '%s' (umdevd "
                        "--help lists the pools)\n",
                arg, parent);
        return -1;
    }
    for (i = 0; i < drv->desc.npools; i++)
        if (strcmp(drv->desc.pools[i].name, pool) == 0)
            break;
    if (i == drv->desc.npools) {
        fprintf(stderr, "umdevd: --pool %s: parent '%s' has no pool '%s' "
                        "(umdevd --help lists the pools)\n",
                arg, parent, pool);
        return -1;
    }
    errno = 0;
    n = strtoull(eq + 1, &end, 10);
    if (errno != 0 || *end != '\0' || eq[1] == '-' ||
        n > drv->desc.pools[i].capacity) {
        fprintf(stderr, "umdevd: --pool %s: N must be a number from 0 to "
                        "%u, the capacity of %s.%s\n",
                arg, (unsigned int)drv->desc.pools[i].capacity, parent,
                pool);
        return -1;
    }
    /* A later --pool for the same pool replaces an earlier one. */
    for (i = 0; i < o->npools; i++)
        if (strcmp(o->pools[i].parent, parent) == 0 &&
            strcmp(o->pools[i].pool, pool) == 0)
            break;
    if (i == UMDEVD_MAX_POOL_OVERRIDES) {
        fprintf(stderr, "umdevd: at most %d --pool options\n",
                UMDEVD_MAX_POOL_OVERRIDES);
        return -1;
    }
    po = &o->pools[i];
    snprintf(po->parent, sizeof(po->parent), "%s", parent);
    snprintf(po->pool, sizeof(po->pool), "%s", pool);
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

static int
set_path(char *dst, const char *src, const char *what)
{
    if (snprintf(dst, PATH_MAX, "%s", src) >= PATH_MAX) {
        fprintf(stderr, "umdevd: %s path is too long\n", what);
        return -1;
    }
    return 0;
}

static int
parse_sandbox(struct daemon_opts *o, const char *mode)
{
    if (strcmp(mode, "kill") == 0) {
        o->sandbox_log = false;
    } else if (strcmp(mode, "log") == 0) {
        o->sandbox_log = true;
    } else {
        fprintf(stderr, "umdevd: sandbox mode must be 'kill' or 'log', not "
                        "'%s'\n",
                mode);
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
        { "pool", required_argument, NULL, 'P' },
        { "syslog", no_argument, NULL, 'S' },
        { "sandbox", required_argument, NULL, 'X' },
        { "print-sandbox", no_argument, NULL, 'p' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *env;
    int c;

    memset(o, 0, sizeof(*o));
    o->manage_gid = (gid_t)-1;
    o->log_level = LOG_INFO;
    set_path(o->rundir, (env = getenv("UMDEV_RUNDIR")) ? env
                                                       : UMDEVD_DEFAULT_RUNDIR,
             "rundir");
    set_path(o->statedir, (env = getenv("UMDEV_STATEDIR"))
                              ? env
                              : UMDEVD_DEFAULT_STATEDIR,
             "statedir");
    if ((env = getenv("UMDEV_CONTROL")) != NULL)
        set_path(o->control, env, "control");
    if ((env = getenv("UMDEV_SANDBOX")) != NULL && parse_sandbox(o, env) < 0)
        return 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (set_path(o->rundir, optarg, "rundir") < 0)
                return 2;
            break;
        case 's':
            if (set_path(o->statedir, optarg, "statedir") < 0)
                return 2;
            break;
        case 'c':
            if (set_path(o->control, optarg, "control") < 0)
                return 2;
            break;
        case 'g': {
            struct group *g = getgrnam(optarg);

            if (g == NULL) {
                fprintf(stderr, "umdevd: no group named '%s'\n", optarg);
                return 2;
            }
            o->manage_gid = g->gr_gid;
            break;
        }
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
        case 'v':
            o->log_level = LOG_DEBUG;
            break;
        case 'h':
            usage(stdout);
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
    return 0;
}

static bool
all_stopped(struct daemon *d)
{
    struct instance *i;

    for (i = d->instances; i != NULL; i = i->next)
        if (i->pid > 0)
            return false;
    return true;
}

static void
stop_everything(struct daemon *d)
{
    struct instance *i;

    for (i = d->instances; i != NULL; i = i->next)
        if (i->state == ST_RUNNING || i->state == ST_STARTING)
            inst_stop(d, i, UMDEVD_DEFAULT_GRACE_MS);
}

static void
on_signal(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct daemon *d = opaque;
    struct signalfd_siginfo si;

    (void)events;
    while (read(fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            supervisor_reap(d);
        } else if (!d->stopping) {
            umdev_log(&d->log, LOG_NOTICE,
                      "signal %u: stopping every instance", si.ssi_signo);
            d->stopping = true;
            control_close_all(d);
            stop_everything(d);
        }
    }
    if (d->stopping && all_stopped(d))
        umdev_loop_stop(loop);
}

static int
register_parents(struct daemon *d)
{
    const struct parent_driver *const *p;
    int rc;

    for (p = parents_builtin(); *p != NULL; p++) {
        struct mdev_pool_desc pools[MDEV_MAX_POOLS];
        struct mdev_parent_desc desc = (*p)->desc;
        size_t i, j;

        /* lib/mdev copies the description: override on a local copy. */
        if (desc.npools > MDEV_MAX_POOLS)
            return -EINVAL;
        for (i = 0; i < desc.npools; i++) {
            pools[i] = desc.pools[i];
            for (j = 0; j < d->opts.npools; j++) {
                const struct pool_override *po = &d->opts.pools[j];

                if (strcmp(po->parent, desc.name) == 0 &&
                    strcmp(po->pool, pools[i].name) == 0) {
                    pools[i].capacity = po->capacity;
                    umdev_log(&d->log, LOG_NOTICE,
                              "pool %s.%s limited to %u of %u units",
                              desc.name, pools[i].name,
                              (unsigned int)po->capacity,
                              (unsigned int)desc.pools[i].capacity);
                }
            }
        }
        desc.pools = pools;
        rc = mdev_parent_add(d->mdev, &desc);
        if (rc < 0) {
            umdev_log(&d->log, LOG_ERR, "cannot register parent %s: %s",
                      (*p)->desc.name, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

static void
start_auto(struct daemon *d)
{
    struct instance *i;

    for (i = d->instances; i != NULL; i = i->next) {
        char err[256] = "";

        if (!i->defined || !i->auto_start)
            continue;
        if (inst_start(d, i, err, sizeof(err)) < 0)
            umdev_log(&d->log, LOG_ERR, "%s: cannot start: %s", i->uuid, err);
    }
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

int
main(int argc, char **argv)
{
    struct daemon d = { .control_fd = -1, .signal_fd = -1 };
    int status = 1; /* until the loop ran */
    sigset_t mask;
    int rc;

    rc = parse_args(argc, argv, &d.opts);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    d.log.max_level = d.opts.log_level;
    if (d.opts.syslog) {
        openlog("umdevd", LOG_PID, LOG_DAEMON);
        d.log.fn = syslog_sink;
    } else {
        d.log.fn = umdev_log_stderr;
    }
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    d.signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (d.signal_fd < 0) {
        fprintf(stderr, "umdevd: cannot initialise: signalfd: %s\n",
                strerror(errno));
        goto out;
    }
    rc = umdev_loop_create(&d.loop);
    if (rc == 0)
        rc = mdev_create(&d.mdev);
    if (rc == 0)
        rc = register_parents(&d);
    if (rc < 0) {
        fprintf(stderr, "umdevd: cannot initialise: %s\n", strerror(-rc));
        goto out;
    }
    rc = mkdir_p(d.opts.rundir, 0755);
    if (rc < 0) {
        fprintf(stderr, "umdevd: cannot create %s: %s\n", d.opts.rundir,
                strerror(-rc));
        goto out;
    }
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
    umdev_loop_add(d.loop, d.signal_fd, UMDEV_LOOP_IN, on_signal, &d);
    defs_load_all(&d);
    start_auto(&d);
    umdev_log(&d.log, LOG_NOTICE,
              "ready: control %s, rundir %s, statedir %s (%zu definitions)",
              d.opts.control, d.opts.rundir, d.opts.statedir, d.ninstances);
    status = umdev_loop_run(d.loop) < 0 ? 1 : 0;
out:
    control_close_all(&d);
    while (d.instances != NULL)
        inst_free(&d, d.instances);
    mdev_destroy(d.mdev);
    umdev_loop_destroy(d.loop);
    if (d.signal_fd >= 0)
        close(d.signal_fd);
    return status;
}
