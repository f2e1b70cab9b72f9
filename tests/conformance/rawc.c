/*
 * A raw vfio-user connection for the conformance kit: it puts exactly the
 * bytes and descriptors it is given on the socket, frames what comes back
 * itself (so a bad reply is seen, not smoothed over), and while it waits
 * it serves the server's DMA_READ/DMA_WRITE like a VMM would. Every wait
 * has a deadline.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conform.h"

/* Descriptors one recvmsg() takes; more are a server bug, closed. */
#define RAWC_RX_FDS 32
/* Largest message we accept from a server: a 1 MiB data reply plus room. */
#define RAWC_MAX_MSG (UMDEV_WIRE_HDR_SIZE + 4u * 1024u * 1024u)

static int
deadline_left(double deadline)
{
    double left = (deadline - cf_now()) * 1000.0;

    return left <= 0 ? 0 : left > 1e9 ? 1000000000 : (int)left + 1;
}

int
rawc_connect(struct rawc *c, const char *path, int timeout_ms)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, rc;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->timeout_ms = timeout_ms;
    c->next_id = 1;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* A UNIX connect completes into the listen backlog at once; the
     * server takes us when its previous client has gone. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    c->fd = fd;
    return 0;
}

void
rawc_close(struct rawc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->dma);
    c->dma = NULL;
    c->ndma = c->cap_dma = 0;
}

void
rawc_msg_free(struct rawc_msg *m)
{
    size_t i;

    for (i = 0; i < m->nfds; i++)
        close(m->fds[i]);
    free(m->payload);
    memset(m, 0, sizeof(*m));
}

uint16_t
rawc_id(struct rawc *c)
{
    return c->next_id++;
}

/* Send all of @buf (the descriptors go with the first byte). */
static int
send_all(struct rawc *c, const uint8_t *buf, size_t len, const int *fds,
         size_t nfds)
{
    double deadline = cf_now() + c->timeout_ms / 1000.0;
    union {
        char b[CMSG_SPACE(sizeof(int) * 256)];
        struct cmsghdr align;
    } ctl;

    if (nfds > 256)
        return -EINVAL;
    while (len > 0) {
        struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        struct pollfd p = { .fd = c->fd, .events = POLLOUT };
        ssize_t n;

        if (nfds > 0) {
            struct cmsghdr *cm;

            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.b;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
        }
        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            nfds = 0;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            return errno == EPIPE ? -ECONNRESET : -errno;
        /* A full socket: the server is slow or gone; both are bounded. */
        if (poll(&p, 1, deadline_left(deadline)) <= 0)
            return -ETIMEDOUT;
    }
    return 0;
}

int
rawc_send_bytes(struct rawc *c, const void *buf, size_t len, const int *fds,
                size_t nfds)
{
    return send_all(c, buf, len, fds, nfds);
}

int
rawc_send(struct rawc *c, uint16_t id, uint16_t cmd, uint32_t flags,
          const void *payload, size_t len, const int *fds, size_t nfds)
{
    struct vfio_user_header h = {
        .msg_id = id,
        .cmd = cmd,
        .msg_size = (uint32_t)(UMDEV_WIRE_HDR_SIZE + len),
        .flags = flags,
    };
    uint8_t *buf;
    int rc;

    if (len > UINT32_MAX - UMDEV_WIRE_HDR_SIZE)
        return -E2BIG;
    buf = malloc(UMDEV_WIRE_HDR_SIZE + len);
    if (buf == NULL)
        return -ENOMEM;
    memcpy(buf, &h, sizeof(h));
    if (len > 0)
        memcpy(buf + sizeof(h), payload, len);
    rc = send_all(c, buf, UMDEV_WIRE_HDR_SIZE + len, fds, nfds);
    free(buf);
    return rc;
}

/* Read exactly @len bytes before @deadline, keeping descriptors in @m. */
static int
recv_exact(struct rawc *c, uint8_t *buf, size_t len, double deadline,
           struct rawc_msg *m)
{
    while (len > 0) {
        union {
            char b[CMSG_SPACE(sizeof(int) * RAWC_RX_FDS)];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { .iov_base = buf, .iov_len = len };
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = ctl.b,
            .msg_controllen = sizeof(ctl.b),
        };
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        struct cmsghdr *cm;
        ssize_t n;

        n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (poll(&p, 1, deadline_left(deadline)) <= 0)
                return -ETIMEDOUT;
            continue;
        }
        if (n < 0)
            return errno == ECONNRESET ? -ECONNRESET : -errno;
        for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
            size_t k, cnt;

            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            cnt = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (k = 0; k < cnt; k++) {
                int fd;

                memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof(fd));
                if (m->nfds < CF_ARRAY_SIZE(m->fds)) {
                    m->fds[m->nfds++] = fd;
                } else {
                    close(fd);
                    m->dropped_fds++;
                }
            }
        }
        if (n == 0)
            return -ECONNRESET;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The next whole message, whatever its type. */
static int
recv_msg(struct rawc *c, double deadline, struct rawc_msg *m)
{
    int rc;

    memset(m, 0, sizeof(*m));
    rc = recv_exact(c, (uint8_t *)&m->hdr, sizeof(m->hdr), deadline, m);
    if (rc < 0)
        goto fail;
    if (m->hdr.msg_size < UMDEV_WIRE_HDR_SIZE ||
        m->hdr.msg_size > RAWC_MAX_MSG) {
        rc = -EPROTO;
        goto fail;
    }
    m->len = m->hdr.msg_size - UMDEV_WIRE_HDR_SIZE;
    m->payload = malloc(m->len + 1);
    if (m->payload == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = recv_exact(c, m->payload, m->len, deadline, m);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    rawc_msg_free(m);
    return rc;
}

int
rawc_dma_add(struct rawc *c, uint64_t iova, uint64_t size, void *host,
             uint32_t prot)
{
    if (c->ndma == c->cap_dma) {
        size_t cap = c->cap_dma ? c->cap_dma * 2 : 16;
        struct rawc_dma *d = realloc(c->dma, cap * sizeof(*d));

        if (d == NULL)
            return -ENOMEM;
        c->dma = d;
        c->cap_dma = cap;
    }
    c->dma[c->ndma++] = (struct rawc_dma){ iova, size, host, prot };
    return 0;
}

void
rawc_dma_del(struct rawc *c, uint64_t iova, uint64_t size)
{
    size_t i;

    for (i = 0; i < c->ndma; i++) {
        if (c->dma[i].iova == iova && c->dma[i].size == size) {
            c->dma[i] = c->dma[--c->ndma];
            return;
        }
    }
}

static struct rawc_dma *
dma_find(struct rawc *c, uint64_t addr, uint64_t count)
{
    size_t i;

    for (i = 0; i < c->ndma; i++) {
        struct rawc_dma *d = &c->dma[i];

        if (addr >= d->iova && count <= d->size &&
            addr - d->iova <= d->size - count)
            return d;
    }
    return NULL;
}

static int
send_error(struct rawc *c, const struct vfio_user_header *req, int err)
{
    struct vfio_user_header h = {
        .msg_id = req->msg_id,
        .cmd = req->cmd,
        .msg_size = UMDEV_WIRE_HDR_SIZE,
        .flags = VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR,
        .error = (uint32_t)err,
    };

    c->unserved++;
    if (req->flags & VFIO_USER_F_NO_REPLY)
        return 0;
    return send_all(c, (const uint8_t *)&h, sizeof(h), NULL, 0);
}

/* Answer one server command (DMA_READ/DMA_WRITE) as a VMM would. */
static int
serve(struct rawc *c, const struct rawc_msg *m)
{
    struct vfio_user_dma_access a;
    struct vfio_user_header h = {
        .msg_id = m->hdr.msg_id,
        .cmd = m->hdr.cmd,
        .flags = VFIO_USER_F_TYPE_REPLY,
    };
    struct rawc_dma *d;
    uint8_t *buf;
    int rc;

    c->served++;
    if ((m->hdr.cmd != VFIO_USER_DMA_READ &&
         m->hdr.cmd != VFIO_USER_DMA_WRITE) ||
        m->len < sizeof(a))
        return send_error(c, &m->hdr, EINVAL);
    memcpy(&a, m->payload, sizeof(a));
    if (a.count == 0 || a.count > RAWC_MAX_MSG ||
        (m->hdr.cmd == VFIO_USER_DMA_WRITE ? m->len - sizeof(a) != a.count
                                           : m->len != sizeof(a)))
        return send_error(c, &m->hdr, EINVAL);
    d = dma_find(c, a.addr, a.count);
    if (d == NULL || d->host == NULL)
        return send_error(c, &m->hdr, EFAULT);
    if (m->hdr.cmd == VFIO_USER_DMA_WRITE) {
        if (!(d->prot & VFIO_USER_DMA_MAP_FLAG_WRITE))
            return send_error(c, &m->hdr, EACCES);
        memcpy(d->host + (a.addr - d->iova), m->payload + sizeof(a), a.count);
        if (m->hdr.flags & VFIO_USER_F_NO_REPLY)
            return 0;
        h.msg_size = UMDEV_WIRE_HDR_SIZE + sizeof(a);
        buf = malloc(h.msg_size);
        if (buf == NULL)
            return -ENOMEM;
        memcpy(buf, &h, sizeof(h));
        memcpy(buf + sizeof(h), &a, sizeof(a));
    } else {
        if (!(d->prot & VFIO_USER_DMA_MAP_FLAG_READ))
            return send_error(c, &m->hdr, EACCES);
        if (m->hdr.flags & VFIO_USER_F_NO_REPLY)
            return 0;
        h.msg_size = (uint32_t)(UMDEV_WIRE_HDR_SIZE + sizeof(a) + a.count);
        buf = malloc(h.msg_size);
        if (buf == NULL)
            return -ENOMEM;
        memcpy(buf, &h, sizeof(h));
        memcpy(buf + sizeof(h), &a, sizeof(a));
        memcpy(buf + sizeof(h) + sizeof(a), d->host + (a.addr - d->iova),
               a.count);
    }
    rc = send_all(c, buf, h.msg_size, NULL, 0);
    free(buf);
    return rc;
}

int
rawc_recv_reply(struct rawc *c, int timeout_ms, struct rawc_msg *m)
{
    double deadline = cf_now() + timeout_ms / 1000.0;
    int rc;

    for (;;) {
        rc = recv_msg(c, deadline, m);
        if (rc < 0)
            return rc;
        if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_COMMAND)
            return 0;
        rc = serve(c, m);
        rawc_msg_free(m);
        if (rc < 0)
            return rc;
    }
}

bool
rawc_quiet(struct rawc *c, int ms)
{
    double deadline = cf_now() + ms / 1000.0;

    for (;;) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        struct rawc_msg m;
        int left = deadline_left(deadline);

        if (left == 0 || poll(&p, 1, left) == 0)
            return true;
        if (recv_msg(c, cf_now() + c->timeout_ms / 1000.0, &m) < 0)
            return false; /* EOF or garbage: not quiet either */
        if ((m.hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_COMMAND) {
            rawc_msg_free(&m);
            return false;
        }
        serve(c, &m);
        rawc_msg_free(&m);
    }
}

int
rawc_call(struct rawc *c, uint16_t cmd, uint32_t flags, const void *payload,
          size_t len, const int *fds, size_t nfds, struct rawc_msg *m)
{
    uint16_t id = rawc_id(c);
    int rc;

    memset(m, 0, sizeof(*m));
    rc = rawc_send(c, id, cmd, flags, payload, len, fds, nfds);
    if (rc < 0)
        return rc;
    rc = rawc_recv_reply(c, c->timeout_ms, m);
    if (rc < 0)
        return rc;
    if (m->hdr.msg_id != id || m->hdr.cmd != cmd)
        return -EBADMSG;
    return 0;
}

int
rawc_negotiate(struct rawc *c, const char *json)
{
    const char *j = json != NULL ? json : CF_QEMU_VERSION_JSON;
    size_t jl = strlen(j) + 1;
    uint8_t *p = calloc(1, 4 + jl);
    struct rawc_msg m;
    int rc;

    if (p == NULL)
        return -ENOMEM;
    memcpy(p + 4, j, jl);
    rc = rawc_call(c, VFIO_USER_VERSION, 0, p, 4 + jl, NULL, 0, &m);
    free(p);
    if (rc == 0 && (m.hdr.flags & VFIO_USER_F_ERROR))
        rc = m.hdr.error ? -(int)m.hdr.error : -EIO;
    if (rc == -EBADMSG)
        rc = -EPROTO;
    rawc_msg_free(&m);
    return rc;
}

const char *
rawc_outcome(int rc, const struct rawc_msg *m, char *buf, size_t len)
{
    if (rc == -EBADMSG)
        snprintf(buf, len, "a reply to another message (id %u, %s)",
                 m->hdr.msg_id, umdev_wire_cmd_name(m->hdr.cmd));
    else if (rc == -ETIMEDOUT)
        snprintf(buf, len, "no reply");
    else if (rc == -ECONNRESET)
        snprintf(buf, len, "connection closed");
    else if (rc < 0)
        snprintf(buf, len, "transport error %s", cf_errname(-rc));
    else if (m->hdr.flags & VFIO_USER_F_ERROR)
        snprintf(buf, len, "error %s", cf_errname((int)m->hdr.error));
    else
        snprintf(buf, len, "success");
    return buf;
}
