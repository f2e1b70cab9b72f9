/*
 * A listening UNIX socket that feeds one device on an event loop. One
 * client at a time (the spec's socket model): a second one that connects
 * meanwhile has its first message answered at once with an EBUSY error
 * reply and is closed, rather than left waiting unanswered. The attached
 * client is served a bounded number of messages per wake-up, and its
 * output, when its socket is full, waits in its connection while the loop
 * watches for room (lib/conn), so no client holds up the others.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dev_priv.h"
#include "util.h"

/* Second clients waiting for their first message to be refused; more are
 * closed at once. */
#define SERVER_MAX_REFUSING 4
/* How long a second client's first message may take to arrive. */
#define SERVER_REFUSE_WAIT_MS 2000
/* After accept() failed for want of descriptors or memory, listen again
 * this much later instead of spinning on a listener that stays ready. */
#define SERVER_ACCEPT_RETRY_MS 100
/* Refusals logged per window at most, so a client that keeps connecting
 * cannot flood a log other instances share; the rest are counted. */
#define SERVER_REFUSE_LOG_BURST 5
#define SERVER_REFUSE_LOG_WINDOW_MS 10000

struct refusal;

struct umdev_server {
    struct umdev_dev *dev;
    struct umdev_loop *loop;
    int listen_fd;
    bool listening; /* listen_fd is on the loop */
    int64_t accept_timer;
    char *path; /* unlinked on destroy; NULL when given an fd */

    int client_fd; /* the attached client's fd while watched, or -1 */
    uint32_t client_events;
    /* Continues a client whose budget ran out with messages left. */
    int64_t more_timer;

    int mgr_fd; /* the migration manager's fd while watched, or -1 */
    uint32_t mgr_events;

    /* Between handover_save() and its commit or abort: the loop watches
     * none of our fds, and the device is stopped. */
    bool handing_over;

    struct refusal *refusals;
    size_t nrefusals;
    int64_t refuse_window; /* start of the log window (ms) */
    unsigned int refuse_logged, refuse_quiet;
};

/* A second client, held until its first message can be refused. */
struct refusal {
    struct umdev_server *srv;
    struct conn *conn;
    int64_t timer;
    struct refusal *next;
};

static void on_listen(struct umdev_loop *loop, int fd, uint32_t events,
                      void *opaque);

/* Watch the client fd for what its device needs next: input, or room for
 * queued output (and then not input: a client that does not read is not
 * read from). */
static void
client_sync_events(struct umdev_server *srv)
{
    uint32_t want = umdev_dev_events(srv->dev);

    if (srv->client_fd < 0 || want == 0)
        return;
    /* The attached client is what a loop that has nothing else to do
     * may sleep reading (umdev_loop_sleep_in_read()). */
    want |= UMDEV_LOOP_SOLO;
    if (want == srv->client_events)
        return;
    if (umdev_loop_mod(srv->loop, srv->client_fd, want) == 0)
        srv->client_events = want;
}

static void on_more(struct umdev_loop *loop, void *opaque);

static void
on_tx(struct conn *conn, bool pending, void *opaque)
{
    struct umdev_server *srv = opaque;
    int64_t id;

    client_sync_events(srv);
    /*
     * The queue also empties when a send broke the connection (past
     * CONN_TX_MAX_QUEUED, say). A send from outside dev_serve(), such as
     * a device's DMA request, leaves nobody to notice: the client, which
     * is not reading, would never be detached. A turn of its own does
     * it (dev_serve() meets the error).
     */
    if (pending || conn_flush(conn) == 0 || srv->more_timer != 0)
        return;
    id = umdev_loop_timer_add(srv->loop, 0, on_more, srv);
    if (id > 0)
        srv->more_timer = id;
}

/* The client was detached (its fd is closed): forget it. */
static void
client_gone(struct umdev_server *srv)
{
    umdev_loop_del(srv->loop, srv->client_fd);
    umdev_loop_timer_cancel(srv->loop, srv->more_timer);
    srv->more_timer = 0;
    srv->client_fd = -1;
}

static void
client_serve(struct umdev_server *srv, bool readable, bool sleep)
{
    bool more;
    int64_t id;

    if (dev_serve(srv->dev, readable, sleep, UMDEV_SERVER_MSGS_PER_WAKE,
                  &more) < 0) {
        client_gone(srv);
        return;
    }
    client_sync_events(srv);
    if (!more)
        return;
    /*
     * Messages are buffered that no fd event will announce. A timer due
     * now runs after the fds of the next turn (lib/loop), so the other
     * connections are served first.
     */
    id = umdev_loop_timer_add(srv->loop, 0, on_more, srv);
    if (id > 0) {
        srv->more_timer = id;
        return;
    }
    /* No timer: serve them now rather than leave them unanswered. */
    if (dev_serve(srv->dev, false, false, SIZE_MAX, &more) < 0)
        client_gone(srv);
    else
        client_sync_events(srv);
}

static void
on_more(struct umdev_loop *loop, void *opaque)
{
    struct umdev_server *srv = opaque;

    (void)loop;
    srv->more_timer = 0;
    client_serve(srv, false, false);
}

static void
on_client(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct umdev_server *srv = opaque;

    (void)fd;
    /* This turn serves the client: a pending continuation would serve it
     * twice. */
    umdev_loop_timer_cancel(loop, srv->more_timer);
    srv->more_timer = 0;
    client_serve(srv, (events & UMDEV_LOOP_IN) != 0,
                 (events & UMDEV_LOOP_SLEEP) != 0);
}

static void
client_attach(struct umdev_server *srv, int cfd)
{
    int rc;

    rc = umdev_dev_attach(srv->dev, cfd);
    if (rc < 0) {
        umdev_log(srv->dev->log, LOG_WARNING, "%s: refusing client: %s",
                  srv->dev->name, strerror(-rc));
        return;
    }
    conn_set_async_send(srv->dev->conn, on_tx, srv);
    cfd = umdev_dev_client_fd(srv->dev);
    if (umdev_loop_add(srv->loop, cfd, UMDEV_LOOP_IN | UMDEV_LOOP_SOLO,
                       on_client, srv) < 0) {
        umdev_dev_detach(srv->dev);
        return;
    }
    srv->client_fd = cfd;
    srv->client_events = UMDEV_LOOP_IN | UMDEV_LOOP_SOLO;
}

static void
refusal_end(struct refusal *r)
{
    struct umdev_server *srv = r->srv;
    struct refusal **pp;

    for (pp = &srv->refusals; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    srv->nrefusals--;
    umdev_loop_del(srv->loop, conn_fd(r->conn));
    umdev_loop_timer_cancel(srv->loop, r->timer);
    conn_destroy(r->conn);
    free(r);
}

/*
 * The second client's first message (VERSION, from any VMM) gets an error
 * reply: EBUSY. The spec lets an error reply carry the header alone
 * ("Header"), so who holds the device goes to the log.
 */
static void
on_refused(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct refusal *r = opaque;
    struct conn_msg *m;
    int rc;

    (void)loop;
    (void)fd;
    (void)events;
    conn_rx_ready(r->conn);
    rc = conn_read(r->conn, &m);
    if (rc == -EAGAIN)
        return;
    if (rc == 0) {
        if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) ==
                VFIO_USER_F_TYPE_COMMAND &&
            !(m->hdr.flags & VFIO_USER_F_NO_REPLY))
            conn_send_error(r->conn, &m->hdr, EBUSY);
        conn_msg_free(m);
    }
    refusal_end(r);
}

static void
on_refuse_timeout(struct umdev_loop *loop, void *opaque)
{
    struct refusal *r = opaque;

    (void)loop;
    r->timer = 0;
    refusal_end(r);
}

static void
refusal_log(struct umdev_server *srv, int cfd)
{
    int64_t now = util_now_ms();

    if (now - srv->refuse_window >= SERVER_REFUSE_LOG_WINDOW_MS) {
        if (srv->refuse_quiet > 0)
            umdev_log(srv->dev->log, LOG_WARNING,
                      "%s: %u more second clients refused unlogged",
                      srv->dev->name, srv->refuse_quiet);
        srv->refuse_window = now;
        srv->refuse_logged = srv->refuse_quiet = 0;
    }
    if (srv->refuse_logged == SERVER_REFUSE_LOG_BURST) {
        srv->refuse_quiet++;
        return;
    }
    srv->refuse_logged++;
    umdev_log(srv->dev->log, LOG_WARNING,
              "%s: refusing a second client (pid %d): in use by pid %d",
              srv->dev->name, (int)umdev_peer_pid(cfd),
              (int)umdev_peer_pid(umdev_dev_client_fd(srv->dev)));
}

static void
client_refuse(struct umdev_server *srv, int cfd)
{
    struct refusal *r = NULL;
    int rc;

    refusal_log(srv, cfd);
    if (srv->nrefusals >= SERVER_MAX_REFUSING)
        goto fail;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto fail;
    r->srv = srv;
    rc = conn_create(cfd, srv->dev->log, &r->conn);
    if (rc < 0)
        goto fail;
    cfd = -1; /* the connection has it */
    conn_set_async_send(r->conn, NULL, NULL);
    if (umdev_loop_add(srv->loop, conn_fd(r->conn), UMDEV_LOOP_IN, on_refused,
                       r) < 0)
        goto fail;
    r->timer = umdev_loop_timer_add(srv->loop, SERVER_REFUSE_WAIT_MS,
                                    on_refuse_timeout, r);
    if (r->timer < 0) {
        umdev_loop_del(srv->loop, conn_fd(r->conn));
        goto fail;
    }
    r->next = srv->refusals;
    srv->refusals = r;
    srv->nrefusals++;
    return;
fail:
    /* Closing at once still tells the client promptly. */
    if (r != NULL)
        conn_destroy(r->conn);
    free(r);
    if (cfd >= 0)
        close(cfd);
}

/* The attached client closed its end (its EOF may wait behind the new
 * connection in this turn's events). */
static bool
client_hung_up(struct umdev_server *srv)
{
    struct pollfd p = { .fd = srv->client_fd, .events = POLLRDHUP };

    if (srv->client_fd < 0 || poll(&p, 1, 0) != 1)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/* Serve what a client that hung up sent before it left, up to its EOF,
 * so a VMM that reconnects at once is not refused by its own past. */
static void
client_finish(struct umdev_server *srv)
{
    bool more;

    if (dev_serve(srv->dev, true, false, SIZE_MAX, &more) < 0)
        client_gone(srv);
    else
        client_sync_events(srv);
}

static void
on_accept_retry(struct umdev_loop *loop, void *opaque)
{
    struct umdev_server *srv = opaque;

    srv->accept_timer = 0;
    if (umdev_loop_add(loop, srv->listen_fd, UMDEV_LOOP_IN, on_listen, srv) ==
        0)
        srv->listening = true;
    else
        umdev_log(srv->dev->log, LOG_ERR, "%s: cannot listen again",
                  srv->dev->name);
}

static void
on_listen(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct umdev_server *srv = opaque;
    int cfd, err;

    (void)events;
    cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) {
        err = errno;
        if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
            return;
        /* The listener stays ready: pause it rather than spin. */
        umdev_log(srv->dev->log, LOG_WARNING,
                  "%s: cannot accept a client: %s; retrying in %d ms",
                  srv->dev->name, strerror(err), SERVER_ACCEPT_RETRY_MS);
        srv->accept_timer = umdev_loop_timer_add(loop, SERVER_ACCEPT_RETRY_MS,
                                                 on_accept_retry, srv);
        if (srv->accept_timer > 0) {
            umdev_loop_del(loop, fd);
            srv->listening = false;
        } else {
            srv->accept_timer = 0;
        }
        return;
    }
    if (umdev_dev_attached(srv->dev) && client_hung_up(srv))
        client_finish(srv);
    if (umdev_dev_attached(srv->dev))
        client_refuse(srv, cfd);
    else
        client_attach(srv, cfd);
}

static void
manager_gone(struct umdev_server *srv)
{
    umdev_loop_del(srv->loop, srv->mgr_fd);
    srv->mgr_fd = -1;
}

/* Input, or room for output it has not taken (then no input). */
static void
manager_sync_events(struct umdev_server *srv)
{
    uint32_t want;

    if (srv->mgr_fd < 0 || srv->dev->mgr == NULL)
        return;
    want = conn_tx_pending(srv->dev->mgr) ? UMDEV_LOOP_OUT : UMDEV_LOOP_IN;
    if (want != srv->mgr_events &&
        umdev_loop_mod(srv->loop, srv->mgr_fd, want) == 0)
        srv->mgr_events = want;
}

static void
on_manager_tx(struct conn *conn, bool pending, void *opaque)
{
    (void)conn;
    (void)pending;
    manager_sync_events(opaque);
}

static void
on_manager(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct umdev_server *srv = opaque;
    bool more = true;
    int rc = 0;

    (void)loop;
    (void)fd;
    /* A manager's messages are few (a state change, a chunk of stream):
     * what came in one wake-up is handled in it. */
    for (bool first = true; rc == 0 && more; first = false)
        rc = dev_serve_manager(srv->dev, first && (events & UMDEV_LOOP_IN),
                               UMDEV_SERVER_MSGS_PER_WAKE, &more);
    if (rc < 0)
        manager_gone(srv);
    else
        manager_sync_events(srv);
}

int
umdev_server_manage(struct umdev_server *srv, int fd)
{
    int rc;

    rc = umdev_dev_manage(srv->dev, fd);
    if (rc < 0)
        return rc;
    conn_set_async_send(srv->dev->mgr, on_manager_tx, srv);
    fd = umdev_dev_manager_fd(srv->dev);
    rc = umdev_loop_add(srv->loop, fd, UMDEV_LOOP_IN, on_manager, srv);
    if (rc < 0) {
        umdev_dev_manage_end(srv->dev);
        return rc;
    }
    srv->mgr_fd = fd;
    srv->mgr_events = UMDEV_LOOP_IN;
    return 0;
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
    srv->client_fd = -1;
    srv->mgr_fd = -1;
    dev->loop = loop;
    rc = umdev_loop_add(loop, listen_fd, UMDEV_LOOP_IN, on_listen, srv);
    if (rc < 0) {
        umdev_server_destroy(srv);
        return rc;
    }
    srv->listening = true;
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
    /* Owners wanting more than 0600 chmod afterwards. */
    const struct umdev_listen_opts lo = {
        .mode = 0600, .uid = (uid_t)-1, .gid = (gid_t)-1, .backlog = 16
    };
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
    /* The path appears only once the socket listens. */
    fd = umdev_listen_unix(-1, path, &lo);
    if (fd < 0) {
        free(copy);
        return fd;
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
    while (srv->refusals != NULL)
        refusal_end(srv->refusals);
    if (srv->client_fd >= 0)
        client_gone(srv);
    if (umdev_dev_attached(srv->dev))
        umdev_dev_detach(srv->dev);
    if (srv->mgr_fd >= 0)
        manager_gone(srv);
    umdev_dev_manage_end(srv->dev);
    umdev_loop_timer_cancel(srv->loop, srv->accept_timer);
    if (srv->listening)
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

/* ---- handover (docs/PROTOCOL.md "Handover"; the package: handover.c) */

/* Stop watching everything a client's message or a new client could
 * reach, so that what comes meanwhile waits in its socket for whichever
 * process serves next. */
static void
unwatch(struct umdev_server *srv)
{
    if (srv->client_fd >= 0) {
        umdev_loop_del(srv->loop, srv->client_fd);
        srv->client_events = 0;
    }
    umdev_loop_timer_cancel(srv->loop, srv->more_timer);
    srv->more_timer = 0;
    umdev_loop_timer_cancel(srv->loop, srv->accept_timer);
    srv->accept_timer = 0;
    if (srv->listening)
        umdev_loop_del(srv->loop, srv->listen_fd);
    srv->listening = false;
    dev_irq_watch(srv->dev, false);
}

/* Watch the client (and the listener) again and serve what waits;
 * @irqs: the resample eventfds too (a restore watched them already). */
static int
rewatch(struct umdev_server *srv, bool irqs)
{
    int rc;

    rc = umdev_loop_add(srv->loop, srv->listen_fd, UMDEV_LOOP_IN, on_listen,
                        srv);
    if (rc < 0)
        return rc;
    srv->listening = true;
    rc = irqs ? dev_irq_watch(srv->dev, true) : 0;
    if (rc < 0)
        return rc;
    if (srv->client_fd >= 0) {
        rc = umdev_loop_add(srv->loop, srv->client_fd,
                            UMDEV_LOOP_IN | UMDEV_LOOP_SOLO, on_client, srv);
        if (rc < 0)
            return rc;
        srv->client_events = UMDEV_LOOP_IN | UMDEV_LOOP_SOLO;
        client_sync_events(srv);
        /* Input already buffered (or queued output) announces itself
         * through no fd event: a turn of its own serves it. */
        srv->more_timer = umdev_loop_timer_add(srv->loop, 0, on_more, srv);
        if (srv->more_timer < 0) {
            rc = (int)srv->more_timer;
            srv->more_timer = 0;
            return rc;
        }
    }
    return 0;
}

int
umdev_server_handover_save(struct umdev_server *srv,
                           struct umdev_handover **out)
{
    int rc;

    *out = NULL;
    if (srv->handing_over)
        return -EALREADY;
    rc = dev_handover_check(srv->dev);
    if (rc < 0)
        return rc;
    unwatch(srv);
    rc = dev_handover_save(srv->dev, srv->listen_fd, out);
    if (rc < 0) {
        int rc2 = rewatch(srv, true);

        if (rc2 < 0)
            umdev_log(srv->dev->log, LOG_ERR,
                      "%s: cannot serve again after a refused handover: %s",
                      srv->dev->name, strerror(-rc2));
        return rc;
    }
    srv->handing_over = true;
    return 0;
}

int
umdev_server_handover_abort(struct umdev_server *srv)
{
    int rc;

    if (!srv->handing_over)
        return -EINVAL;
    srv->handing_over = false;
    rc = dev_mig_set_state(srv->dev, VFIO_USER_DEVICE_STATE_RUNNING);
    if (rc < 0) {
        umdev_log(srv->dev->log, LOG_ERR,
                  "%s: handover aborted, but the device does not run again: %s",
                  srv->dev->name, strerror(-rc));
        return rc;
    }
    rc = rewatch(srv, true);
    umdev_log(srv->dev->log, rc < 0 ? LOG_ERR : LOG_NOTICE,
              "%s: handover aborted: serving on%s%s", srv->dev->name,
              rc < 0 ? " failed: " : "", rc < 0 ? strerror(-rc) : "");
    return rc;
}

void
umdev_server_handover_commit(struct umdev_server *srv)
{
    struct umdev_dev *dev = srv->dev;

    if (srv->handing_over && dev->conn != NULL) {
        /* Our descriptor closes; the socket stays the new process's. No
         * detach: that would tell the device its client left. */
        conn_destroy(dev->conn);
        dev->conn = NULL;
        dev->negotiated = false;
        dev->precopy_info = false;
        dev_dma_unmap_all(dev);
        dev_irq_release_all(dev);
        srv->client_fd = -1;
    }
    /* The device's own host endpoints are the new process's too. */
    if (srv->handing_over && dev->hend_ops != NULL)
        dev->hend_ops->release(dev->hend_opaque);
    /* The path, if we made it, is the new process's socket now. */
    free(srv->path);
    srv->path = NULL;
    umdev_log(dev->log, LOG_NOTICE, "%s: handed over", dev->name);
    umdev_server_destroy(srv);
}

int
umdev_server_handover_restore(struct umdev_dev *dev, struct umdev_loop *loop,
                              const struct umdev_handover *pkg,
                              struct umdev_server **out)
{
    struct umdev_server *srv;
    int listen_fd, rc;

    *out = NULL;
    rc = dev_handover_restore(dev, loop, pkg, &listen_fd);
    if (rc < 0)
        return rc;
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        close(listen_fd);
        dev_handover_undo(dev);
        return -ENOMEM;
    }
    srv->dev = dev;
    srv->loop = loop;
    srv->listen_fd = listen_fd;
    srv->client_fd = -1;
    srv->mgr_fd = -1;
    if (dev->conn != NULL) {
        conn_set_async_send(dev->conn, on_tx, srv);
        srv->client_fd = conn_fd(dev->conn);
    }
    /* The device runs once the loop watches its client: interrupts it
     * owes are delivered, then its resume hook. */
    rc = rewatch(srv, false);
    if (rc == 0)
        rc = dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_RUNNING);
    if (rc < 0) {
        unwatch(srv);
        srv->client_fd = -1;
        close(srv->listen_fd);
        free(srv);
        dev_handover_undo(dev);
        return rc;
    }
    dev->hend_taken = false; /* the device's for good */
    umdev_log(dev->log, LOG_NOTICE, "%s: serving a handed-over %s", dev->name,
              dev->conn != NULL ? "client" : "socket");
    *out = srv;
    return 0;
}
