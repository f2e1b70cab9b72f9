/*
 * umdev-testdev: serve the test device on a UNIX socket until SIGTERM or
 * SIGINT. Follows the vfio-user backend conventions (--socket-path or
 * --fd; no daemonizing).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdev.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: umdev-testdev (--socket PATH | --fd N) [--verbose]\n");
}

int
main(int argc, char **argv)
{
    struct umdev_logger log = { .fn = umdev_log_stderr, .max_level = LOG_NOTICE };
    const char *path = NULL;
    int listen_fd = -1;
    struct umdev_server *srv = NULL;
    struct umdev_loop *loop = NULL;
    struct testdev *td = NULL;
    int rc, i;

    for (i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--socket") ||
             !strcmp(argv[i], "--socket-path")) && i + 1 < argc)
            path = argv[++i];
        else if (!strncmp(argv[i], "--socket-path=", 14))
            path = argv[i] + 14;
        else if (!strcmp(argv[i], "--fd") && i + 1 < argc)
            listen_fd = atoi(argv[++i]);
        else if (!strncmp(argv[i], "--fd=", 5))
            listen_fd = atoi(argv[i] + 5);
        else if (!strcmp(argv[i], "--verbose"))
            log.max_level = LOG_DEBUG;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if ((path == NULL) == (listen_fd < 0)) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    rc = umdev_loop_create(&loop);
    if (rc == 0)
        rc = umdev_loop_stop_on_signals(loop);
    /* As umdev-serve and umdevd's workers serve: sleeping in the read
     * while one client is attached. */
    if (rc == 0)
        rc = umdev_loop_sleep_in_read(loop, SIGRTMIN);
    if (rc == 0)
        rc = testdev_create(&log, &td);
    if (rc == 0)
        rc = path ? umdev_server_create(testdev_dev(td), loop, path, &srv)
                  : umdev_server_create_fd(testdev_dev(td), loop, listen_fd,
                                           &srv);
    if (rc < 0) {
        fprintf(stderr, "umdev-testdev: cannot serve %s: %s\n",
                path ? path : "fd", strerror(-rc));
        goto out;
    }
    rc = umdev_loop_run(loop);
out:
    umdev_server_destroy(srv);
    testdev_destroy(td);
    umdev_loop_destroy(loop);
    return rc < 0 ? 1 : 0;
}
