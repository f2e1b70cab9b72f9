/*
 * umdev-accel-serve: serve accel subdevices standalone (no daemon) for
 * manual testing: one engine, one or more subdevices on it, each on its
 * own vfio-user socket, until SIGTERM or SIGINT.
 *
 *   umdev-accel-serve --socket PATH [--queues K] [--instances N]
 *                     [--threads M] [--profile-json FILE] [--verbose]
 *
 * With N > 1 the sockets are PATH.0 .. PATH.<N-1>. Exit status: 0 after
 * a signal, 1 on a runtime error, 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "accel.h"
#include "umdev/dev.h"
#include "umdev/loop.h"
#include "audit.h"

#define PROG "umdev-accel-serve"
#define MAX_INSTANCES 16

static const char usage_text[] =
    "usage: " PROG " --socket PATH [--queues K] [--instances N]\n"
    "                         [--threads M] [--profile-json FILE]\n"
    "                         [--verbose]\n"
    "\n"
    "Serve accel subdevices (devices/accel/README.md) on one engine.\n"
    "  --socket PATH    vfio-user socket (mode 0600); with N > 1 instances\n"
    "                   PATH.0 .. PATH.<N-1>\n"
    "  --queues K       work queues per subdevice: 1, 2 or 4 (default 1)\n"
    "  --instances N    subdevices on the engine (default 1)\n"
    "  --threads M      engine threads (default 1)\n"
    "  --profile-json FILE  write the first subdevice's mediation profile\n"
    "                   (JSON, for umdev-conform --profile) and serve\n"
    "  --verbose        log at debug level\n";

static void
on_signal(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct signalfd_siginfo si;

    (void)events;
    (void)opaque;
    if (read(fd, &si, sizeof(si)) == sizeof(si))
        umdev_loop_stop(loop);
}

static int
usage_error(const char *msg, const char *arg)
{
    if (arg != NULL)
        fprintf(stderr, PROG ": %s '%s'\n", msg, arg);
    else
        fprintf(stderr, PROG ": %s\n", msg);
    fprintf(stderr, "Try '" PROG " --help'.\n");
    return 2;
}

/* A decimal in [lo, hi], or -1. */
static long
number(const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

int
main(int argc, char **argv)
{
    enum {
        OPT_SOCKET = 1,
        OPT_QUEUES,
        OPT_INSTANCES,
        OPT_PROFILE,
        OPT_THREADS,
        OPT_VERBOSE
    };
    static const struct option opts[] = {
        { "socket", required_argument, NULL, OPT_SOCKET },
        { "queues", required_argument, NULL, OPT_QUEUES },
        { "instances", required_argument, NULL, OPT_INSTANCES },
        { "threads", required_argument, NULL, OPT_THREADS },
        { "profile-json", required_argument, NULL, OPT_PROFILE },
        { "verbose", no_argument, NULL, OPT_VERBOSE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct umdev_logger log = { .fn = umdev_log_stderr,
                                .max_level = LOG_NOTICE };
    struct accel_engine_config ec = { .log = &log };
    struct accel_dev *dev[MAX_INSTANCES] = { NULL };
    struct umdev_server *srv[MAX_INSTANCES] = { NULL };
    struct accel_engine *e = NULL;
    struct umdev_loop *loop = NULL;
    const char *sock = NULL, *profile_path = NULL;
    long queues = 1, instances = 1, threads = 1;
    int sfd = -1, c, rc, status = 1;
    sigset_t mask;
    long i;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SOCKET:
            sock = optarg;
            break;
        case OPT_QUEUES:
            queues = number(optarg, 1, 4);
            if (queues != 1 && queues != 2 && queues != 4)
                return usage_error("--queues must be 1, 2 or 4", optarg);
            break;
        case OPT_INSTANCES:
            instances = number(optarg, 1, MAX_INSTANCES);
            if (instances < 0)
                return usage_error("bad --instances", optarg);
            break;
        case OPT_THREADS:
            threads = number(optarg, 1, ACCEL_MAX_THREADS);
            if (threads < 0)
                return usage_error("bad --threads", optarg);
            break;
        case OPT_PROFILE:
            profile_path = optarg;
            break;
        case OPT_VERBOSE:
            log.max_level = LOG_DEBUG;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case ':':
            return usage_error("option needs an argument", argv[optind - 1]);
        default:
            return usage_error("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    if (sock == NULL || *sock == '\0')
        return usage_error("--socket PATH is required", NULL);

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        fprintf(stderr, PROG ": signalfd: %s\n", strerror(errno));
        goto out;
    }
    ec.nr_threads = (unsigned int)threads;
    /* The engine's queues are the parent's pool; size it to the need. */
    ec.nr_queues = (unsigned int)(queues * instances);
    rc = accel_engine_create(&ec, &e);
    if (rc == 0)
        rc = umdev_loop_create(&loop);
    if (rc == 0)
        rc = umdev_loop_add(loop, sfd, UMDEV_LOOP_IN, on_signal, NULL);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", strerror(-rc));
        goto out;
    }
    for (i = 0; i < instances; i++) {
        struct accel_dev_config dc = {
            .nr_queues = (unsigned int)queues,
            .log = &log,
        };
        char name[32], path[4096];

        snprintf(name, sizeof(name), "accel%ld", i);
        dc.name = name;
        if (instances == 1)
            snprintf(path, sizeof(path), "%s", sock);
        else
            snprintf(path, sizeof(path), "%s.%ld", sock, i);
        rc = accel_dev_create(e, &dc, &dev[i]);
        if (rc < 0) {
            fprintf(stderr, PROG ": cannot create %s: %s\n", name,
                    strerror(-rc));
            goto out;
        }
        rc = umdev_server_create(accel_dev_dev(dev[i]), loop, path, &srv[i]);
        if (rc < 0) {
            fprintf(stderr, PROG ": cannot serve on %s: %s\n", path,
                    strerror(-rc));
            goto out;
        }
        printf("%s: vfio-user socket %s (PCI %04x:%04x, %ld queue%s)\n", name,
               path, ACCEL_VENDOR_ID, ACCEL_DEVICE_ID, queues,
               queues == 1 ? "" : "s");
    }
    if (profile_path != NULL) {
        char *json = audit_profile_json(accel_dev_dev(dev[0]),
                                        accel_dev_pci(dev[0]));
        FILE *f = json != NULL ? fopen(profile_path, "we") : NULL;

        if (f == NULL || fputs(json, f) < 0 || fclose(f) != 0) {
            fprintf(stderr, PROG ": cannot write the profile to %s\n",
                    profile_path);
            free(json);
            goto out;
        }
        free(json);
    }
    printf("engine: %ld thread%s, CRC32C %s\n", threads,
           threads == 1 ? "" : "s",
           accel_engine_crc_hw(e) ? "SSE4.2" : "table");
    fflush(stdout);
    rc = umdev_loop_run(loop);
    if (rc < 0) {
        fprintf(stderr, PROG ": event loop: %s\n", strerror(-rc));
        goto out;
    }
    status = 0;
out:
    for (i = 0; i < MAX_INSTANCES; i++) {
        umdev_server_destroy(srv[i]);
        accel_dev_destroy(dev[i]);
    }
    accel_engine_destroy(e);
    if (loop != NULL && sfd >= 0)
        umdev_loop_del(loop, sfd);
    umdev_loop_destroy(loop);
    if (sfd >= 0)
        close(sfd);
    return status;
}
