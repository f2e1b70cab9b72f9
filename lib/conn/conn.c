/*
 * Connection framing. A message is read in two steps, header then body,
 * each possibly spread over many recvmsg() calls; descriptors arrive with
 * the first byte of the sendmsg() that carried them, so they are gathered
 * into the message being assembled whenever they show up.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"

enum rx_state {
    RX_HEADER,  /* filling hdr_bytes */
    RX_BODY,    /* filling cur->buf */
    RX_DISCARD, /* oversized: skipping body bytes */
};

struct conn {
    int fd;
    const struct umdev_logger *log;
    struct conn_caps local;
    struct conn_caps peer;
    struct umdev_wire_limits rx_lim;
    uint16_t next_id;

    enum rx_state state;
    uint8_t hdr_bytes[UMDEV_WIRE_HDR_SIZE];
    size_t have;       /* bytes of the current message received */
    uint64_t discard;  /* body bytes still to skip in RX_DISCARD */
    struct conn_msg *cur;

    struct conn_msg *queue_head, *queue_tail;
};

void
conn_caps_defaults(struct conn_caps *c)
{
    memset(c, 0, sizeof(*c));
    c->max_msg_fds = UMDEV_WIRE_DEFAULT_MAX_MSG_FDS;
    c->max_data_xfer_size = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER;
    c->pgsizes = 4096;
    c->max_dma_maps = UMDEV_WIRE_DEFAULT_MAX_DMA_MAPS;
}

static void
update_rx_limits(struct conn *conn)
{
    conn->rx_lim.max_data_xfer_size = conn->local.max_data_xfer_size;
    conn->rx_lim.max_msg_fds = conn->local.max_msg_fds;
}

int
conn_create(int fd, const struct umdev_logger *log, struct conn **out)
{
    struct conn *conn;
    int fl;

    *out = NULL;
    conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return -ENOMEM;
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int err = -errno;

        free(conn);
        return err;
    }
    conn->fd = fd;
    conn->log = log;
    conn_caps_defaults(&conn->local);
    conn->local.max_msg_fds = UMDEV_WIRE_MAX_MSG_FDS;
    conn->local.write_multiple = true;
    conn_caps_defaults(&conn->peer);
    update_rx_limits(conn);
    conn->next_id = 1;
    *out = conn;
    return 0;
}

void
conn_msg_free(struct conn_msg *msg)
{
    size_t i;

    if (msg == NULL)
        return;
    for (i = 0; i < msg->nfds; i++)
        if (msg->fds[i] >= 0)
            close(msg->fds[i]);
    free(msg->buf);
    free(msg);
}

void
conn_destroy(struct conn *conn)
{
    struct conn_msg *m, *next;

    if (conn == NULL)
        return;
    for (m = conn->queue_head; m != NULL; m = next) {
        next = m->next;
        conn_msg_free(m);
    }
    conn_msg_free(conn->cur);
    if (conn->fd >= 0)
        close(conn->fd);
    free(conn);
}

int
conn_fd(const struct conn *conn)
{
    return conn->fd;
}

void
conn_set_local_caps(struct conn *conn, const struct conn_caps *caps)
{
    conn->local = *caps;
    if (conn->local.max_msg_fds > UMDEV_WIRE_MAX_MSG_FDS)
        conn->local.max_msg_fds = UMDEV_WIRE_MAX_MSG_FDS;
    update_rx_limits(conn);
}

const struct conn_caps *
conn_local_caps(const struct conn *conn)
{
    return &conn->local;
}

void
conn_set_peer_caps(struct conn *conn, const struct conn_caps *caps)
{
    conn->peer = *caps;
}

const struct conn_caps *
conn_peer_caps(const struct conn *conn)
{
    return &conn->peer;
}

const struct umdev_wire_limits *
conn_rx_limits(const struct conn *conn)
{
    return &conn->rx_lim;
}

uint16_t
conn_next_id(struct conn *conn)
{
    return conn->next_id++;
}

bool
conn_has_queued(const struct conn *conn)
{
    return conn->queue_head != NULL;
}

/* Largest message we accept whole: the biggest data transfer plus its
 * fixed part, or the control bound, whichever is larger. */
static size_t
max_rx_size(const struct conn *conn)
{
    size_t data = (size_t)conn->local.max_data_xfer_size + 64;

    return UMDEV_WIRE_HDR_SIZE +
           (data > UMDEV_WIRE_MAX_CONTROL_PAYLOAD
                ? data
                : UMDEV_WIRE_MAX_CONTROL_PAYLOAD);
}

/* Take descriptors from control messages into the current message; any
 * past what one message may carry are closed and the message refused. */
static void
collect_fds(struct conn *conn, struct msghdr *mh)
{
    struct conn_msg *m = conn->cur;
    struct cmsghdr *c;

    for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        size_t n, i;
        int *fds;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        fds = (int *)CMSG_DATA(c);
        for (i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, &fds[i], sizeof(fd));
            if (m != NULL && m->nfds < UMDEV_WIRE_MAX_MSG_FDS &&
                m->nfds < conn->rx_lim.max_msg_fds) {
                m->fds[m->nfds++] = fd;
            } else {
                close(fd);
                if (m != NULL)
                    m->rx_error = -EBADF;
            }
        }
    }
    if ((mh->msg_flags & MSG_CTRUNC) && m != NULL)
        m->rx_error = -EBADF;
}

/* One recvmsg() into [dst, dst+len); dst NULL discards. */
static ssize_t
rx_some(struct conn *conn, void *dst, size_t len)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * UMDEV_WIRE_MAX_MSG_FDS)];
        struct cmsghdr align;
    } ctl;
    char sink[4096];
    struct iovec iov = {
        .iov_base = dst != NULL ? dst : sink,
        .iov_len = dst != NULL ? len : (len < sizeof(sink) ? len : sizeof(sink)),
    };
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf),
    };
    ssize_t n;

    do {
        n = recvmsg(conn->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if (mh.msg_controllen > 0 || (mh.msg_flags & MSG_CTRUNC))
        collect_fds(conn, &mh);
    if (n == 0)
        return -ECONNRESET;
    return n;
}

static int
start_body(struct conn *conn)
{
    struct conn_msg *m = conn->cur;
    int rc;

    rc = umdev_wire_decode_header(conn->hdr_bytes, &m->hdr);
    if (rc < 0) {
        umdev_log(conn->log, LOG_ERR,
                  "bad stream: impossible header (size %u, flags 0x%x)",
                  m->hdr.msg_size, m->hdr.flags);
        return -EPROTO;
    }
    m->len = m->hdr.msg_size;
    if (m->len > max_rx_size(conn)) {
        /* Keep the stream in step by skipping the body, then refuse the
         * message: a bad message, not a bad stream. */
        m->rx_error = -E2BIG;
        conn->discard = m->len - UMDEV_WIRE_HDR_SIZE;
        conn->state = RX_DISCARD;
        return 0;
    }
    m->buf = malloc(m->len);
    if (m->buf == NULL) {
        m->rx_error = -ENOMEM;
        conn->discard = m->len - UMDEV_WIRE_HDR_SIZE;
        conn->state = RX_DISCARD;
        return 0;
    }
    memcpy(m->buf, conn->hdr_bytes, UMDEV_WIRE_HDR_SIZE);
    conn->state = RX_BODY;
    return 0;
}

static void
enqueue(struct conn *conn, struct conn_msg *m)
{
    m->next = NULL;
    if (conn->queue_tail != NULL)
        conn->queue_tail->next = m;
    else
        conn->queue_head = m;
    conn->queue_tail = m;
}

static struct conn_msg *
dequeue(struct conn *conn)
{
    struct conn_msg *m = conn->queue_head;

    if (m != NULL) {
        conn->queue_head = m->next;
        if (conn->queue_head == NULL)
            conn->queue_tail = NULL;
        m->next = NULL;
    }
    return m;
}

/* Read from the socket until one message completes or it would block. */
static int
rx_message(struct conn *conn, struct conn_msg **out)
{
    ssize_t n;
    int rc;

    for (;;) {
        if (conn->cur == NULL) {
            conn->cur = calloc(1, sizeof(*conn->cur));
            if (conn->cur == NULL)
                return -ENOMEM;
            conn->have = 0;
            conn->state = RX_HEADER;
        }
        switch (conn->state) {
        case RX_HEADER:
            n = rx_some(conn, conn->hdr_bytes + conn->have,
                        UMDEV_WIRE_HDR_SIZE - conn->have);
            if (n < 0)
                return (int)n;
            conn->have += (size_t)n;
            if (conn->have < UMDEV_WIRE_HDR_SIZE)
                continue;
            rc = start_body(conn);
            if (rc < 0)
                return rc;
            break;
        case RX_BODY:
            if (conn->have < conn->cur->len) {
                n = rx_some(conn, conn->cur->buf + conn->have,
                            conn->cur->len - conn->have);
                if (n < 0)
                    return (int)n;
                conn->have += (size_t)n;
            }
            break;
        case RX_DISCARD:
            if (conn->discard > 0) {
                n = rx_some(conn, NULL, conn->discard);
                if (n < 0)
                    return (int)n;
                conn->discard -= (uint64_t)n;
            }
            break;
        }
        if ((conn->state == RX_BODY && conn->have == conn->cur->len) ||
            (conn->state == RX_DISCARD && conn->discard == 0)) {
            *out = conn->cur;
            conn->cur = NULL;
            return 0;
        }
    }
}

int
conn_read(struct conn *conn, struct conn_msg **out)
{
    *out = dequeue(conn);
    if (*out != NULL)
        return 0;
    return rx_message(conn, out);
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    int timeout = -1;
    int rc;

    if (deadline >= 0) {
        int64_t left = deadline - now_ms();

        if (left <= 0)
            return -ETIMEDOUT;
        timeout = left > INT32_MAX ? INT32_MAX : (int)left;
    }
    rc = poll(&p, 1, timeout);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    if (rc == 0)
        return -ETIMEDOUT;
    return 0;
}

int
conn_read_wait(struct conn *conn, int timeout_ms, struct conn_msg **out)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int rc;

    for (;;) {
        rc = conn_read(conn, out);
        if (rc != -EAGAIN)
            return rc;
        rc = wait_fd(conn->fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
    }
}

static int
send_iov(struct conn *conn, struct iovec *iov, int iovcnt, const int *fds,
         size_t nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * UMDEV_WIRE_MAX_MSG_FDS)];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
    int64_t deadline = now_ms() + CONN_DEFAULT_TIMEOUT_MS;
    ssize_t n;
    int rc;

    if (nfds > UMDEV_WIRE_MAX_MSG_FDS || nfds > conn->peer.max_msg_fds)
        return -EINVAL;
    if (nfds > 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    while (mh.msg_iovlen > 0) {
        n = sendmsg(conn->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                rc = wait_fd(conn->fd, POLLOUT, deadline);
                if (rc < 0)
                    return rc;
                continue;
            }
            return errno == EPIPE ? -ECONNRESET : -errno;
        }
        /* The descriptors went with the first bytes. */
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
        while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov->iov_len) {
            n -= (ssize_t)mh.msg_iov->iov_len;
            mh.msg_iov++;
            mh.msg_iovlen--;
        }
        if (mh.msg_iovlen > 0) {
            mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
            mh.msg_iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

int
conn_send(struct conn *conn, const void *buf, size_t len, const int *fds,
          size_t nfds)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    return send_iov(conn, &iov, 1, fds, nfds);
}

int
conn_sendv(struct conn *conn, const struct vfio_user_header *hdr,
           const void *fixed, size_t fixed_len, const void *data,
           size_t data_len, const int *fds, size_t nfds)
{
    struct iovec iov[3];
    int n = 0;

    iov[n].iov_base = (void *)hdr;
    iov[n++].iov_len = sizeof(*hdr);
    if (fixed_len) {
        iov[n].iov_base = (void *)fixed;
        iov[n++].iov_len = fixed_len;
    }
    if (data_len) {
        iov[n].iov_base = (void *)data;
        iov[n++].iov_len = data_len;
    }
    return send_iov(conn, iov, n, fds, nfds);
}

int
conn_send_error(struct conn *conn, const struct vfio_user_header *req,
                int err)
{
    struct vfio_user_header hdr;

    umdev_wire_encode_error(&hdr, req, err);
    return conn_send(conn, &hdr, sizeof(hdr), NULL, 0);
}

int
conn_request(struct conn *conn, const void *buf, size_t len, const int *fds,
             size_t nfds, int timeout_ms, conn_request_fn *on_command,
             void *opaque, struct conn_msg **reply)
{
    struct vfio_user_header req;
    int64_t deadline;
    int rc;

    *reply = NULL;
    if (len < sizeof(req))
        return -EINVAL;
    memcpy(&req, buf, sizeof(req));
    rc = conn_send(conn, buf, len, fds, nfds);
    if (rc < 0)
        return rc;
    deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        struct conn_msg *m;
        bool is_reply;

        /* Only the socket: queued messages are commands kept for later. */
        rc = rx_message(conn, &m);
        if (rc == -EAGAIN) {
            rc = wait_fd(conn->fd, POLLIN, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        if (rc < 0)
            return rc;
        is_reply = (m->hdr.flags & VFIO_USER_F_TYPE_MASK) ==
                   VFIO_USER_F_TYPE_REPLY;
        if (!is_reply) {
            rc = on_command != NULL ? on_command(conn, m, opaque) : 1;
            if (rc == 1) {
                enqueue(conn, m);
                continue;
            }
            conn_msg_free(m);
            if (rc < 0)
                return rc;
            continue;
        }
        if (m->hdr.msg_id != req.msg_id || m->hdr.cmd != req.cmd) {
            umdev_log(conn->log, LOG_WARNING,
                      "dropping unexpected reply id %u cmd %s",
                      m->hdr.msg_id, umdev_wire_cmd_name(m->hdr.cmd));
            conn_msg_free(m);
            continue;
        }
        if (m->rx_error < 0) {
            rc = m->rx_error;
            conn_msg_free(m);
            return rc;
        }
        if (m->hdr.flags & VFIO_USER_F_ERROR) {
            rc = m->hdr.error != 0 && m->hdr.error < 4096 ? -(int)m->hdr.error
                                                          : -EIO;
            conn_msg_free(m);
            return rc;
        }
        *reply = m;
        return 0;
    }
}
