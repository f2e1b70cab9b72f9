/*
 * A listening UNIX socket that feeds one device on an event loop. While a
 * client is attached the listener is not watched, so a second client waits
 * in the backlog until the first leaves (one client per device socket, as
 * the spec's socket model has it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dev_priv.h"

struct umdev_server {
    struct umdev_dev *dev;
    struct umdev_loop *loop;
    int listen_fd;
    char *path; /* unlinked on destroy; NULL when given an fd */
};

static void on_listen(struct umdev_loop *loop, int fd, uint32_t events,
                      void *opaque);

static void
on_client(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct umdev_server *srv = opaque;

    (void)events;
    if (umdev_dev_process(srv->dev) == 0)
        return;
    /* Detached: the fd is closed already; forget it and listen again. */
    umdev_loop_del(loop, fd);
    if (umdev_loop_add(loop, srv->listen_fd, UMDEV_LOOP_IN, on_listen,
                       srv) < 0)
        umdev_log(srv->dev->log, LOG_ERR, "%s: cannot listen again",
                  srv->dev->name);
}

static void
on_listen(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct umdev_server *srv = opaque;
    int cfd, rc;

    (void)events;
    cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    rc = umdev_dev_attach(srv->dev, cfd);
    if (rc < 0) {
        umdev_log(srv->dev->log, LOG_WARNING, "%s: refusing client: %s",
                  srv->dev->name, strerror(-rc));
        return;
    }
    cfd = umdev_dev_client_fd(srv->dev);
    if (umdev_loop_add(loop, cfd, UMDEV_LOOP_IN, on_client, srv) < 0) {
        umdev_dev_detach(srv->dev);
        return;
    }
    umdev_loop_del(loop, fd);
}

int
umdev_server_create_fd(struct umdev_dev *dev, struct umdev_loop *loop,
                       int listen_fd, struct umdev_server **out)
{
    struct umdev_server *srv;
    int rc;

    *out = NULL;
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        close(listen_fd);
        return -ENOMEM;
    }
    srv->dev = dev;
    srv->loop = loop;
    srv->listen_fd = listen_fd;
    dev->loop = loop;
    rc = umdev_loop_add(loop, listen_fd, UMDEV_LOOP_IN, on_listen, srv);
    if (rc < 0) {
        umdev_server_destroy(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

/*
 * Make room for a socket at path: a socket file nobody listens on (left
 * by a dead server) is removed; a live server's socket or any other kind
 * of file is never touched.
 */
static int
clear_stale_socket(const struct sockaddr_un *sa)
{
    struct stat st;
    int fd, rc;

    if (lstat(sa->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    close(fd);
    if (rc == 0)
        return -EADDRINUSE;
    if (errno != ECONNREFUSED)
        return -errno;
    if (unlink(sa->sun_path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int
umdev_server_create(struct umdev_dev *dev, struct umdev_loop *loop,
                    const char *path, struct umdev_server **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct umdev_server *srv;
    char *copy;
    int fd, rc;

    *out = NULL;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    rc = clear_stale_socket(&sa);
    if (rc < 0)
        return rc;
    copy = strdup(path);
    if (copy == NULL)
        return -ENOMEM;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        free(copy);
        return rc;
    }
    /*
     * The socket file gets the socket inode's mode (less the umask) at
     * bind, so 0600 from the start without touching the process umask,
     * which other threads share. Owners wanting more chmod afterwards.
     */
    if (fchmod(fd, 0600) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        close(fd);
        free(copy);
        return rc;
    }
    if (listen(fd, 16) < 0) {
        rc = -errno;
        close(fd);
        unlink(path);
        free(copy);
        return rc;
    }
    rc = umdev_server_create_fd(dev, loop, fd, &srv);
    if (rc < 0) {
        unlink(path);
        free(copy);
        return rc;
    }
    srv->path = copy;
    *out = srv;
    return 0;
}

void
umdev_server_destroy(struct umdev_server *srv)
{
    if (srv == NULL)
        return;
    if (umdev_dev_attached(srv->dev)) {
        umdev_loop_del(srv->loop, umdev_dev_client_fd(srv->dev));
        umdev_dev_detach(srv->dev);
    }
    umdev_loop_del(srv->loop, srv->listen_fd);
    if (srv->dev->loop == srv->loop)
        srv->dev->loop = NULL;
    close(srv->listen_fd);
    if (srv->path != NULL) {
        unlink(srv->path);
        free(srv->path);
    }
    free(srv);
}
