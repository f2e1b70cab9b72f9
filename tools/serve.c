/*
 * umdev-serve: serve devices standalone (no daemon) on vfio-user UNIX
 * sockets until SIGTERM or SIGINT, for demos, tests and development. One
 * subcommand per device type:
 *
 *   umdev-serve serial --socket PATH [--port0 SOCK] [--port1 SOCK] [--pty]
 *                      [--verbose]
 *   umdev-serve accel --socket PATH [--queues K] [--instances N]
 *                     [--threads M] [--profile-json FILE] [--verbose]
 *   umdev-serve display --socket PATH [--type TYPE] [--uuid UUID]
 *                       [--profile-json FILE] [--verbose]
 *
 * serial is devices/serial/README.md's card; accel puts N subdevices
 * (devices/accel/README.md) on one engine, on PATH or, with N > 1, on
 * PATH.0 .. PATH.<N-1>; display is devices/display/README.md's
 * framebuffer device. What the subcommands share lives here once: the
 * common options, usage errors, the event loop and its stop on a signal.
 *
 * Exit status: 0 after a signal, 1 on a runtime error, 2 on a usage error.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "audit.h"
#include "display.h"
#include "serial.h"
#include "tool.h"
#include "umdev/dev.h"
#include "umdev/loop.h"

#define PROG "umdev-serve"
#define ACCEL_MAX_INSTANCES 16

static const char usage_text[] =
    "usage: " PROG " serial --socket PATH [--port0 SOCK] [--port1 SOCK]\n"
    "                          [--pty] [--verbose]\n"
    "       " PROG " accel --socket PATH [--queues K] [--instances N]\n"
    "                         [--threads M] [--profile-json FILE]\n"
    "                         [--verbose]\n"
    "       " PROG " display --socket PATH [--type TYPE] [--uuid UUID]\n"
    "                           [--profile-json FILE] [--verbose]\n"
    "       " PROG " --help\n"
    "\n"
    "Serve devices on the vfio-user socket PATH (mode 0600) until\n"
    "SIGTERM/SIGINT; --verbose logs at debug level.\n"
    "\n"
    "serial: a two-port 16550A PCI card (PCI 4348:3253, Linux 8250_pci).\n"
    "  --port0 SOCK    host end of port 0: a UNIX socket (default PATH.port0)\n"
    "  --port1 SOCK    host end of port 1 (default PATH.port1)\n"
    "  --pty           use pseudo-terminals as host ends instead; with\n"
    "                  --portN the path becomes a symlink to the pty\n"
    "Connect a port with:  socat -,raw,echo=0 UNIX-CONNECT:PATH.port0\n"
    "\n"
    "accel: work-queue accelerator subdevices (PCI 1234:11ec) on one engine.\n"
    "  --queues K      work queues per subdevice: 1, 2 or 4 (default 1)\n"
    "  --instances N   subdevices on the engine (default 1); with N > 1\n"
    "                  their sockets are PATH.0 .. PATH.<N-1>\n"
    "  --threads M     engine threads (default 1)\n"
    "  --profile-json FILE  write the first subdevice's mediation profile\n"
    "                  (JSON, for umdev-conform --profile) and serve\n"
    "\n"
    "display: the Bochs/QEMU display interface (PCI 1234:1111, Linux\n"
    "  bochs-drm), its framebuffer (BAR0) mapped by the VMM.\n"
    "  --type TYPE     display-1024 (default) or display-1920\n"
    "  --uuid UUID     the instance UUID its EDID serial derives from\n"
    "  --profile-json FILE  write its mediation profile and serve\n"
    "\n"
    "Attach to QEMU with:  -device '{\"driver\":\"vfio-user-pci\","
    "\"socket\":{\"path\":\"PATH\",\"type\":\"unix\"}}'\n";

/* Options every subcommand takes; a subcommand's own are numbered from
 * OPT_OWN up. */
enum { OPT_SOCKET = 1, OPT_VERBOSE, OPT_OWN };

static const struct option common_opts[] = {
    { "socket", required_argument, NULL, OPT_SOCKET },
    { "socket-path", required_argument, NULL, OPT_SOCKET },
    { "verbose", no_argument, NULL, OPT_VERBOSE },
    { "help", no_argument, NULL, 'h' },
};
#define NR_COMMON_OPTS (sizeof(common_opts) / sizeof(common_opts[0]))
#define MAX_OWN_OPTS 8

/* What the common part gives a subcommand to serve on. */
struct serve {
    const char *sock;        /* --socket */
    struct umdev_logger log; /* --verbose: LOG_DEBUG, else LOG_NOTICE */
    struct umdev_loop *loop; /* stops on SIGTERM or SIGINT */
};

/* One subcommand: a device type. Its state is a static of this file: a
 * process serves one type. */
struct serve_type {
    const char *name;
    const struct option *opts; /* its own options, NULL-terminated */
    /* Take option @opt with @arg. Return: 0, or the exit status (2)
     * after usage_error(). */
    int (*option)(int opt, const char *arg);
    /* Check the options taken together (may be NULL). Return: 0, or 2
     * after usage_error(). */
    int (*check)(const struct serve *sv);
    /* Create the devices and serve them on @sv->loop, saying where on
     * stdout. Return: 0, or -1 after a message. */
    int (*start)(struct serve *sv);
    /* Undo start, whatever part of it was done. */
    void (*stop)(void);
};

/* Print "umdev-serve: MSG[ 'ARG']" and a hint; the usage exit status. */
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

/* The common options and @t's own in one table for getopt_long(). */
static void
merge_opts(const struct serve_type *t, struct option *all)
{
    size_t n = 0, i;

    for (i = 0; t->opts[i].name != NULL; i++) {
        assert(n < MAX_OWN_OPTS);
        all[n++] = t->opts[i];
    }
    for (i = 0; i < NR_COMMON_OPTS; i++)
        all[n++] = common_opts[i];
    all[n] = (struct option){ NULL, 0, NULL, 0 };
}

/* @argv[0] is the subcommand. Return: -1 to go on, else the exit status. */
static int
parse_args(const struct serve_type *t, int argc, char **argv, struct serve *sv)
{
    struct option all[MAX_OWN_OPTS + NR_COMMON_OPTS + 1];
    int c, rc;

    merge_opts(t, all);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", all, NULL)) != -1) {
        switch (c) {
        case OPT_SOCKET:
            sv->sock = optarg;
            break;
        case OPT_VERBOSE:
            sv->log.max_level = LOG_DEBUG;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case ':':
            return usage_error("option needs an argument", argv[optind - 1]);
        case '?':
            return usage_error("unknown option", argv[optind - 1]);
        default:
            rc = t->option(c, optarg);
            if (rc != 0)
                return rc;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    if (sv->sock == NULL || *sv->sock == '\0') {
        char msg[64];

        snprintf(msg, sizeof(msg), "%s: --socket PATH is required", t->name);
        return usage_error(msg, NULL);
    }
    rc = t->check != NULL ? t->check(sv) : 0;
    return rc != 0 ? rc : -1;
}

/* The loop every subcommand serves on, stopped by SIGTERM or SIGINT.
 * Before any device: engine threads must inherit the blocked signals. */
static int
serve_loop_create(struct serve *sv)
{
    int rc = umdev_loop_create(&sv->loop);

    if (rc == 0)
        rc = umdev_loop_stop_on_signals(sv->loop);
    /* One client per device; with one device the loop sleeps in its
     * read (the accel subcommand's several instances keep epoll). */
    if (rc == 0)
        rc = umdev_loop_sleep_in_read(sv->loop, SIGRTMIN);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot create the event loop: %s\n",
                strerror(-rc));
        return -1;
    }
    /* A peer that goes away mid-write is an error return, not a kill. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Serve @path with @dev on the loop. Return: 0, or -1 after a message. */
static int
serve_on(struct serve *sv, struct umdev_dev *dev, const char *path,
         struct umdev_server **srv)
{
    int rc = umdev_server_create(dev, sv->loop, path, srv);

    if (rc < 0) {
        fprintf(stderr, PROG ": cannot serve on %s: %s\n", path, strerror(-rc));
        return -1;
    }
    return 0;
}

static int
serve_main(const struct serve_type *t, int argc, char **argv)
{
    struct serve sv = {
        .log = { .fn = umdev_log_stderr, .max_level = LOG_NOTICE },
    };
    int rc, status = 1;

    rc = parse_args(t, argc, argv, &sv);
    if (rc >= 0)
        return rc;
    if (serve_loop_create(&sv) == 0 && t->start(&sv) == 0) {
        fflush(stdout);
        rc = umdev_loop_run(sv.loop);
        if (rc < 0)
            fprintf(stderr, PROG ": event loop failed: %s\n", strerror(-rc));
        else
            status = 0;
    }
    t->stop();
    umdev_loop_destroy(sv.loop);
    return status;
}

/* ------------------------------------------------------------------ */
/* serial                                                             */

enum { OPT_PORT0 = OPT_OWN, OPT_PORT1, OPT_PTY };

static const struct option serial_opts[] = {
    { "port0", required_argument, NULL, OPT_PORT0 },
    { "port1", required_argument, NULL, OPT_PORT1 },
    { "pty", no_argument, NULL, OPT_PTY },
    { NULL, 0, NULL, 0 },
};

static struct {
    struct serial_config cfg;
    char *defaults[SERIAL_NR_PORTS]; /* PATH.portN we made up */
    struct serial *s;
    struct umdev_server *srv;
} serial_state = { .cfg = { .name = "serial" } };

static int
serial_option(int opt, const char *arg)
{
    struct serial_config *cfg = &serial_state.cfg;

    if (opt == OPT_PTY)
        cfg->port[0].pty = cfg->port[1].pty = true;
    else
        cfg->port[opt == OPT_PORT0 ? 0 : 1].path = arg;
    return 0;
}

static int
serial_check(const struct serve *sv)
{
    const struct serial_port_config *port = serial_state.cfg.port;
    unsigned int i;

    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        if (port[i].path != NULL && *port[i].path == '\0')
            return usage_error("--port0/--port1 need a path", NULL);
        if (port[i].path != NULL && !strcmp(port[i].path, sv->sock))
            return usage_error("a port path equals --socket", NULL);
    }
    if (port[0].path && port[1].path && !strcmp(port[0].path, port[1].path))
        return usage_error("--port0 and --port1 are the same path", NULL);
    return 0;
}

/* "PATH" + suffix, or NULL on allocation failure. */
static char *
path_with(const char *path, const char *suffix)
{
    size_t n = strlen(path) + strlen(suffix) + 1;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s%s", path, suffix);
    return p;
}

static void
serial_print(const struct serve *sv)
{
    const struct serial_config *cfg = &serial_state.cfg;
    unsigned int i;

    printf("serial: vfio-user socket %s (PCI %04x:%04x, 2 x 16550A)\n",
           sv->sock, SERIAL_VENDOR_ID, SERIAL_DEVICE_ID);
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        const char *end = serial_port_host_end(serial_state.s, i);

        if (end == NULL)
            printf("port%u: no host end\n", i);
        else if (serial_port_is_pty(serial_state.s, i))
            printf("port%u: pty %s%s%s  (screen %s 115200)\n", i, end,
                   cfg->port[i].path ? ", linked at " : "",
                   cfg->port[i].path ? cfg->port[i].path : "", end);
        else
            printf("port%u: socat -,raw,echo=0 UNIX-CONNECT:%s\n", i, end);
    }
}

static int
serial_start(struct serve *sv)
{
    struct serial_config *cfg = &serial_state.cfg;
    unsigned int i;
    int rc;

    /* Sockets default to PATH.portN; ptys get a link only when asked. */
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        if (cfg->port[i].path != NULL || cfg->port[i].pty)
            continue;
        serial_state.defaults[i] =
            path_with(sv->sock, i == 0 ? ".port0" : ".port1");
        if (serial_state.defaults[i] == NULL) {
            fprintf(stderr, PROG ": out of memory\n");
            return -1;
        }
        cfg->port[i].path = serial_state.defaults[i];
    }
    rc = serial_create(sv->loop, cfg, &sv->log, &serial_state.s);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot create the serial device: %s%s\n",
                strerror(-rc),
                rc == -EEXIST       ? " (a port path exists and is not ours)"
                : rc == -EADDRINUSE ? " (a port socket is in use)"
                                    : "");
        return -1;
    }
    if (serve_on(sv, serial_dev(serial_state.s), sv->sock, &serial_state.srv) <
        0)
        return -1;
    serial_print(sv);
    return 0;
}

static void
serial_stop(void)
{
    unsigned int i;

    umdev_server_destroy(serial_state.srv);
    serial_destroy(serial_state.s);
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        free(serial_state.defaults[i]);
}

/* ------------------------------------------------------------------ */
/* accel                                                              */

enum { OPT_QUEUES = OPT_OWN, OPT_INSTANCES, OPT_THREADS, OPT_PROFILE };

static const struct option accel_opts[] = {
    { "queues", required_argument, NULL, OPT_QUEUES },
    { "instances", required_argument, NULL, OPT_INSTANCES },
    { "threads", required_argument, NULL, OPT_THREADS },
    { "profile-json", required_argument, NULL, OPT_PROFILE },
    { NULL, 0, NULL, 0 },
};

static struct {
    long queues, instances, threads;
    const char *profile_path;
    struct accel_engine *e;
    struct accel_dev *dev[ACCEL_MAX_INSTANCES];
    struct umdev_server *srv[ACCEL_MAX_INSTANCES];
} accel_state = { .queues = 1, .instances = 1, .threads = 1 };

static int
accel_option(int opt, const char *arg)
{
    switch (opt) {
    case OPT_QUEUES:
        if (!tool_parse_long(arg, 10, 1, 4, &accel_state.queues) ||
            accel_state.queues == 3)
            return usage_error("--queues must be 1, 2 or 4", arg);
        return 0;
    case OPT_INSTANCES:
        if (!tool_parse_long(arg, 10, 1, ACCEL_MAX_INSTANCES,
                             &accel_state.instances))
            return usage_error("bad --instances", arg);
        return 0;
    case OPT_THREADS:
        if (!tool_parse_long(arg, 10, 1, ACCEL_MAX_THREADS,
                             &accel_state.threads))
            return usage_error("bad --threads", arg);
        return 0;
    default: /* OPT_PROFILE */
        accel_state.profile_path = arg;
        return 0;
    }
}

/* A device's mediation profile as JSON, for umdev-conform. */
static int
write_profile(struct umdev_dev *dev, struct umdev_pci *pci, const char *path)
{
    char *json = audit_profile_json(dev, pci);
    FILE *f = json != NULL ? fopen(path, "we") : NULL;
    int rc = 0;

    if (f == NULL || fputs(json, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, PROG ": cannot write the profile to %s\n", path);
        rc = -1;
    }
    free(json);
    return rc;
}

static int
accel_start(struct serve *sv)
{
    struct accel_engine_config ec = {
        .nr_threads = (unsigned int)accel_state.threads,
        /* The engine's queues are the parent's pool; size it to the
         * need. */
        .nr_queues = (unsigned int)(accel_state.queues * accel_state.instances),
        .log = &sv->log,
    };
    long i, nq = accel_state.queues, nt = accel_state.threads;
    int rc;

    rc = accel_engine_create(&ec, &accel_state.e);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot create the accel engine: %s\n",
                strerror(-rc));
        return -1;
    }
    for (i = 0; i < accel_state.instances; i++) {
        struct accel_dev_config dc = {
            .nr_queues = (unsigned int)nq,
            .log = &sv->log,
        };
        char name[32], path[4096];

        snprintf(name, sizeof(name), "accel%ld", i);
        dc.name = name;
        if (accel_state.instances == 1)
            snprintf(path, sizeof(path), "%s", sv->sock);
        else
            snprintf(path, sizeof(path), "%s.%ld", sv->sock, i);
        rc = accel_dev_create(accel_state.e, &dc, &accel_state.dev[i]);
        if (rc < 0) {
            fprintf(stderr, PROG ": cannot create %s: %s\n", name,
                    strerror(-rc));
            return -1;
        }
        if (serve_on(sv, accel_dev_dev(accel_state.dev[i]), path,
                     &accel_state.srv[i]) < 0)
            return -1;
        printf("%s: vfio-user socket %s (PCI %04x:%04x, %ld queue%s)\n", name,
               path, ACCEL_VENDOR_ID, ACCEL_DEVICE_ID, nq, nq == 1 ? "" : "s");
    }
    if (accel_state.profile_path != NULL &&
        write_profile(accel_dev_dev(accel_state.dev[0]),
                      accel_dev_pci(accel_state.dev[0]),
                      accel_state.profile_path) < 0)
        return -1;
    printf("engine: %ld thread%s, CRC32C %s\n", nt, nt == 1 ? "" : "s",
           accel_engine_crc_hw(accel_state.e) ? "SSE4.2" : "table");
    return 0;
}

static void
accel_stop(void)
{
    unsigned int i;

    /* Each subdevice before the engine it returns its queues to. */
    for (i = 0; i < ACCEL_MAX_INSTANCES; i++) {
        umdev_server_destroy(accel_state.srv[i]);
        accel_dev_destroy(accel_state.dev[i]);
    }
    accel_engine_destroy(accel_state.e);
}

/* ------------------------------------------------------------------ */
/* display                                                            */

enum { OPT_TYPE = OPT_OWN, OPT_UUID, OPT_DISPLAY_PROFILE };
static const struct option display_opts[] = {
    { "type", required_argument, NULL, OPT_TYPE },
    { "uuid", required_argument, NULL, OPT_UUID },
    { "profile-json", required_argument, NULL, OPT_DISPLAY_PROFILE },
    { NULL, 0, NULL, 0 },
};

static struct {
    const char *type, *uuid, *profile_path;
    struct display *d;
    struct umdev_server *srv;
} display_state = { .type = "display-1024" };

static int
display_option(int opt, const char *arg)
{
    switch (opt) {
    case OPT_TYPE:
        if (display_type_find(arg) == NULL)
            return usage_error("--type: display-1024 or display-1920, not",
                               arg);
        display_state.type = arg;
        return 0;
    case OPT_UUID:
        display_state.uuid = arg;
        return 0;
    case OPT_DISPLAY_PROFILE:
        display_state.profile_path = arg;
        return 0;
    }
    return usage_error("unknown option", NULL);
}

static int
display_start(struct serve *sv)
{
    struct display_config cfg = { .type = display_state.type,
                                  .uuid = display_state.uuid,
                                  .name = "display" };
    int rc;

    rc = display_create(&cfg, &sv->log, &display_state.d);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot create the display: %s%s\n",
                strerror(-rc), rc == -EINVAL ? " (is --uuid a UUID?)" : "");
        return -1;
    }
    if (serve_on(sv, display_dev(display_state.d), sv->sock,
                 &display_state.srv) < 0)
        return -1;
    if (display_state.profile_path != NULL &&
        write_profile(display_dev(display_state.d),
                      display_pci(display_state.d),
                      display_state.profile_path) < 0)
        return -1;
    printf("display: vfio-user socket %s (PCI %04x:%04x, %s)\n", sv->sock,
           DISPLAY_VENDOR_ID, DISPLAY_DEVICE_ID, display_state.type);
    return 0;
}

static void
display_stop(void)
{
    umdev_server_destroy(display_state.srv);
    display_destroy(display_state.d);
}

/* ------------------------------------------------------------------ */

static const struct serve_type types[] = {
    { "serial", serial_opts, serial_option, serial_check, serial_start,
      serial_stop },
    { "accel", accel_opts, accel_option, NULL, accel_start, accel_stop },
    { "display", display_opts, display_option, NULL, display_start,
      display_stop },
};

int
main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(argv[1], types[i].name))
            return serve_main(&types[i], argc - 1, argv + 1);
    return usage_error("unknown device type (known: serial, accel, display)",
                       argv[1]);
}
