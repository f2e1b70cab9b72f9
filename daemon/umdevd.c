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
#include <syslog.h>
#include <unistd.h>

#include "umdevd.h"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: umdevd [options]\n"
            "  --rundir DIR     instance sockets (env UMDEV_RUNDIR, default "
            "%s)\n"
            "  --statedir DIR   definitions (env UMDEV_STATEDIR, default %s)\n"
            "  --control PATH   control socket (env UMDEV_CONTROL, default "
            "RUNDIR/control)\n"
            "  --group NAME     group allowed to manage instances\n"
            "  --syslog         log to syslog/journald instead of stderr\n"
            "  --verbose        log debug messages\n"
            "  --help\n",
            UMDEVD_DEFAULT_RUNDIR, UMDEVD_DEFAULT_STATEDIR);
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
parse_args(int argc, char **argv, struct daemon_opts *o)
{
    static const struct option opts[] = {
        { "rundir", required_argument, NULL, 'r' },
        { "statedir", required_argument, NULL, 's' },
        { "control", required_argument, NULL, 'c' },
        { "group", required_argument, NULL, 'g' },
        { "syslog", no_argument, NULL, 'S' },
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
        case 'S':
            o->syslog = true;
            break;
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
        rc = umdev_mdev_parent_add(d->mdev, &(*p)->desc);
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
    if (d.signal_fd < 0 || umdev_loop_create(&d.loop) < 0 ||
        umdev_mdev_create(&d.mdev) < 0 || register_parents(&d) < 0) {
        fprintf(stderr, "umdevd: cannot initialise: %s\n", strerror(errno));
        return 1;
    }
    rc = mkdir_p(d.opts.rundir, 0755);
    if (rc < 0) {
        fprintf(stderr, "umdevd: cannot create %s: %s\n", d.opts.rundir,
                strerror(-rc));
        return 1;
    }
    rc = control_listen(&d);
    if (rc < 0) {
        fprintf(stderr, "umdevd: cannot listen on %s: %s\n", d.opts.control,
                strerror(-rc));
        return 1;
    }
    umdev_loop_add(d.loop, d.signal_fd, UMDEV_LOOP_IN, on_signal, &d);
    defs_load_all(&d);
    start_auto(&d);
    umdev_log(&d.log, LOG_NOTICE,
              "ready: control %s, rundir %s, statedir %s (%zu definitions)",
              d.opts.control, d.opts.rundir, d.opts.statedir, d.ninstances);
    rc = umdev_loop_run(d.loop);
    control_close_all(&d);
    while (d.instances != NULL)
        inst_free(&d, d.instances);
    umdev_mdev_destroy(d.mdev);
    umdev_loop_destroy(d.loop);
    close(d.signal_fd);
    return rc < 0 ? 1 : 0;
}
