/*
 * umdev-serve: serve one device instance standalone (no daemon) on a
 * vfio-user UNIX socket until SIGTERM or SIGINT, for demos, tests and
 * development. Device types: serial (devices/serial/README.md).
 *
 *   umdev-serve serial --socket PATH [--port0 SOCK] [--port1 SOCK] [--pty]
 *                      [--verbose]
 *
 * Exit status: 0 after a signal, 1 on a runtime error, 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "serial.h"
#include "umdev/dev.h"

#define PROG "umdev-serve"

static const char usage_text[] =
    "usage: " PROG " serial --socket PATH [--port0 SOCK] [--port1 SOCK]\n"
    "                        [--pty] [--verbose]\n"
    "       " PROG " --help\n"
    "\n"
    "Serve one device on the vfio-user socket PATH until SIGTERM/SIGINT.\n"
    "\n"
    "serial: a two-port 16550A PCI card (PCI 4348:3253, Linux 8250_pci).\n"
    "  --socket PATH   vfio-user socket for the VMM (mode 0600)\n"
    "  --port0 SOCK    host end of port 0: a UNIX socket (default PATH.port0)\n"
    "  --port1 SOCK    host end of port 1 (default PATH.port1)\n"
    "  --pty           use pseudo-terminals as host ends instead; with\n"
    "                  --portN the path becomes a symlink to the pty\n"
    "  --verbose       log at debug level\n"
    "\n"
    "Connect a port with:  socat -,raw,echo=0 UNIX-CONNECT:PATH.port0\n"
    "Attach to QEMU with:  -device '{\"driver\":\"vfio-user-pci\","
    "\"socket\":{\"path\":\"PATH\",\"type\":\"unix\"}}'\n";

static void
on_signal(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct signalfd_siginfo si;

    (void)events;
    (void)opaque;
    if (read(fd, &si, sizeof(si)) == sizeof(si))
        umdev_loop_stop(loop);
}

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

static int
serve_serial(int argc, char **argv)
{
    enum { OPT_SOCKET = 1, OPT_PORT0, OPT_PORT1, OPT_PTY, OPT_VERBOSE };
    static const struct option opts[] = {
        { "socket", required_argument, NULL, OPT_SOCKET },
        { "socket-path", required_argument, NULL, OPT_SOCKET },
        { "port0", required_argument, NULL, OPT_PORT0 },
        { "port1", required_argument, NULL, OPT_PORT1 },
        { "pty", no_argument, NULL, OPT_PTY },
        { "verbose", no_argument, NULL, OPT_VERBOSE },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct umdev_logger log = { .fn = umdev_log_stderr,
                                .max_level = LOG_NOTICE };
    struct serial_config cfg = { .name = "serial" };
    const char *sock = NULL;
    char *defaults[SERIAL_NR_PORTS] = { NULL, NULL };
    struct umdev_loop *loop = NULL;
    struct umdev_server *srv = NULL;
    struct serial *s = NULL;
    sigset_t mask;
    int sfd = -1, c, rc, status = 1;
    unsigned int i;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_SOCKET:
            sock = optarg;
            break;
        case OPT_PORT0:
            cfg.port[0].path = optarg;
            break;
        case OPT_PORT1:
            cfg.port[1].path = optarg;
            break;
        case OPT_PTY:
            cfg.port[0].pty = cfg.port[1].pty = true;
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
        return usage_error("serial: --socket PATH is required", NULL);
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        if (cfg.port[i].path != NULL && *cfg.port[i].path == '\0')
            return usage_error("--port0/--port1 need a path", NULL);
        if (cfg.port[i].path != NULL && !strcmp(cfg.port[i].path, sock))
            return usage_error("a port path equals --socket", NULL);
    }
    if (cfg.port[0].path && cfg.port[1].path &&
        !strcmp(cfg.port[0].path, cfg.port[1].path))
        return usage_error("--port0 and --port1 are the same path", NULL);
    /* Sockets default to PATH.portN; ptys get a link only when asked. */
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        if (cfg.port[i].path != NULL || cfg.port[i].pty)
            continue;
        defaults[i] = path_with(sock, i == 0 ? ".port0" : ".port1");
        if (defaults[i] == NULL) {
            fprintf(stderr, PROG ": out of memory\n");
            goto out;
        }
        cfg.port[i].path = defaults[i];
    }

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
    rc = umdev_loop_create(&loop);
    if (rc == 0)
        rc = umdev_loop_add(loop, sfd, UMDEV_LOOP_IN, on_signal, NULL);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot create the event loop: %s\n",
                strerror(-rc));
        goto out;
    }
    rc = serial_create(loop, &cfg, &log, &s);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot create the serial device: %s%s\n",
                strerror(-rc),
                rc == -EEXIST ? " (a port path exists and is not ours)"
                : rc == -EADDRINUSE ? " (a port socket is in use)"
                                    : "");
        goto out;
    }
    rc = umdev_server_create(serial_dev(s), loop, sock, &srv);
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot serve on %s: %s\n", sock,
                strerror(-rc));
        goto out;
    }
    printf("serial: vfio-user socket %s (PCI %04x:%04x, 2 x 16550A)\n",
           sock, SERIAL_VENDOR_ID, SERIAL_DEVICE_ID);
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        const char *end = serial_port_host_end(s, i);

        if (end == NULL)
            printf("port%u: no host end\n", i);
        else if (serial_port_is_pty(s, i))
            printf("port%u: pty %s%s%s  (screen %s 115200)\n", i, end,
                   cfg.port[i].path ? ", linked at " : "",
                   cfg.port[i].path ? cfg.port[i].path : "", end);
        else
            printf("port%u: socat -,raw,echo=0 UNIX-CONNECT:%s\n", i, end);
    }
    fflush(stdout);
    rc = umdev_loop_run(loop);
    if (rc < 0) {
        fprintf(stderr, PROG ": event loop failed: %s\n", strerror(-rc));
        goto out;
    }
    status = 0;
out:
    umdev_server_destroy(srv);
    serial_destroy(s);
    umdev_loop_destroy(loop);
    if (sfd >= 0)
        close(sfd);
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        free(defaults[i]);
    return status;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "serial"))
        return serve_serial(argc - 1, argv + 1);
    return usage_error("unknown device type (known: serial)", argv[1]);
}
