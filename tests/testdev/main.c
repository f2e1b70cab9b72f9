/*
 * umdev-testdev: serve the test device on a UNIX socket until SIGTERM or
 * SIGINT. Follows the vfio-user backend conventions (--socket-path or
 * --fd; no daemonizing). With --manage-socket PATH it also listens there
 * for a migration manager (umdev_server_manage()): what a management
 * tool connects to in order to move the device while the VMM keeps its
 * own connection (tests/migrate).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "testdev.h"
#include "umdev/loop.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: umdev-testdev (--socket PATH | --fd N) "
               "[--manage-socket PATH] [--verbose]\n");
}

struct manage_listen {
    struct umdev_server *srv;
    const struct umdev_logger *log;
    int fd;
};

static void
on_manager_connect(struct umdev_loop *loop, int fd, uint32_t events,
                   void *opaque)
{
    struct manage_listen *ml = opaque;
    int c, rc;

    (void)loop;
    (void)events;
    c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            umdev_log(ml->log, LOG_ERR, "manager socket: accept: %s",
                      strerror(errno));
        return;
    }
    /* A second manager, or one for a device without migration, is turned
     * away by closing its socket (umdev_dev_manage() took it). */
    rc = umdev_server_manage(ml->srv, c);
    if (rc < 0)
        umdev_log(ml->log, LOG_WARNING, "migration manager refused: %s",
                  strerror(-rc));
}

/* A listening UNIX socket at @path, mode 0600. Return: its fd or -errno. */
static int
listen_at(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    mode_t old;
    int fd, rc;

    if (strlen(path) >= sizeof(a.sun_path))
        return -ENAMETOOLONG;
    strcpy(a.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    old = umask(0177);
    rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
    umask(old);
    if (rc < 0 || listen(fd, 4) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int
main(int argc, char **argv)
{
    struct umdev_logger log = { .fn = umdev_log_stderr, .max_level = LOG_NOTICE };
    const char *path = NULL, *mgr_path = NULL;
    struct manage_listen ml = { .log = &log, .fd = -1 };
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
        else if (!strcmp(argv[i], "--manage-socket") && i + 1 < argc)
            mgr_path = argv[++i];
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
    if (mgr_path != NULL) {
        ml.srv = srv;
        rc = ml.fd = listen_at(mgr_path);
        if (rc >= 0)
            rc = umdev_loop_add(loop, ml.fd, UMDEV_LOOP_IN, on_manager_connect,
                                &ml);
        if (rc < 0) {
            fprintf(stderr, "umdev-testdev: cannot listen on %s: %s\n",
                    mgr_path, strerror(-rc));
            goto out;
        }
    }
    rc = umdev_loop_run(loop);
out:
    if (ml.fd >= 0) {
        umdev_loop_del(loop, ml.fd);
        close(ml.fd);
        unlink(mgr_path);
    }
    umdev_server_destroy(srv);
    testdev_destroy(td);
    umdev_loop_destroy(loop);
    return rc < 0 ? 1 : 0;
}
