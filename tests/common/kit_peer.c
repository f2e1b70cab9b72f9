/* The test kit's raw vfio-user peer: see kit_peer.h. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kit_peer.h"
#include "kit_util.h"
#include "umdev/wire.h"
#include "umdev/wire_codec.h"

/* Room for KIT_PEER_MAX_FDS descriptors in one control message. */
union fd_ctl {
    char b[CMSG_SPACE(sizeof(int) * KIT_PEER_MAX_FDS)];
    struct cmsghdr align;
};

int
kit_peer_connect(const char *path, int timeout_ms)
{
    struct timeval tv = {
        .tv_sec = timeout_ms / 1000,
        .tv_usec = (timeout_ms % 1000) * 1000,
    };
    int fd = kit_connect_unix(path), err;

    if (fd < 0 || timeout_ms <= 0)
        return fd;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

int
kit_peer_pair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    return 0;
}

/* Drop the first @n bytes of @iov[0..*niov), which were sent. */
static void
iov_advance(struct iovec **iov, size_t *niov, size_t n)
{
    while (*niov > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*niov)--;
    }
    if (*niov > 0) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

/* One SCM_RIGHTS control message in @ctl carrying @nfds (> 0) @fds. */
static void
put_fds(struct msghdr *mh, union fd_ctl *ctl, const int *fds, size_t nfds)
{
    const struct cmsghdr h = {
        .cmsg_len = CMSG_LEN(sizeof(int) * nfds),
        .cmsg_level = SOL_SOCKET,
        .cmsg_type = SCM_RIGHTS,
    };

    memset(ctl, 0, sizeof(*ctl));
    ctl->align = h;
    memcpy(CMSG_DATA(&ctl->align), fds, sizeof(int) * nfds);
    mh->msg_control = ctl->b;
    mh->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
}

/* Send every byte of @iov (which is consumed), the fds with the first. */
static int
sendv(int fd, struct iovec *iov, size_t niov, const int *fds, size_t nfds,
      kit_peer_full_fn *full, void *arg)
{
    union fd_ctl ctl;
    struct msghdr mh = { 0 };
    int flags = MSG_NOSIGNAL | (full != NULL ? MSG_DONTWAIT : 0);

    if (nfds > KIT_PEER_MAX_FDS)
        return -EINVAL;
    if (nfds > 0)
        put_fds(&mh, &ctl, fds, nfds);
    while (niov > 0 && iov->iov_len == 0) {
        iov++;
        niov--;
    }
    if (niov == 0)
        return -EINVAL; /* descriptors need at least one byte to ride on */
    while (niov > 0) {
        ssize_t n;

        mh.msg_iov = iov;
        mh.msg_iovlen = niov;
        n = sendmsg(fd, &mh, flags);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && full != NULL) {
            int rc = full(arg);

            if (rc < 0)
                return rc;
            continue;
        }
        if (n < 0)
            return -errno;
        /* The descriptors went with the first byte. */
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
        iov_advance(&iov, &niov, (size_t)n);
    }
    return 0;
}

int
kit_peer_send_bytes(int fd, const void *buf, size_t len, const int *fds,
                    size_t nfds, kit_peer_full_fn *full, void *arg)
{
    struct iovec iov = { (void *)buf, len };

    return sendv(fd, &iov, 1, fds, nfds, full, arg);
}

int
kit_peer_send(int fd, uint16_t id, uint16_t cmd, uint32_t flags,
              const void *fixed, size_t fixed_len, const void *data,
              size_t data_len, const int *fds, size_t nfds)
{
    size_t size = umdev_wire_size(fixed_len, data_len);
    struct vfio_user_header h = {
        .msg_id = id,
        .cmd = cmd,
        .msg_size = (uint32_t)size,
        .flags = flags,
    };
    struct iovec iov[3] = {
        { &h, sizeof(h) },
        { (void *)fixed, fixed_len },
        { (void *)data, data_len },
    };

    if (size == 0)
        return -E2BIG;
    return sendv(fd, iov, 3, fds, nfds, NULL, NULL);
}

int
kit_peer_send_version(int fd, uint16_t id, const char *json)
{
    struct vfio_user_version v = { .major = 0, .minor = 0 };

    return kit_peer_send(fd, id, VFIO_USER_VERSION, 0, &v, sizeof(v), json,
                         json != NULL ? strlen(json) + 1 : 0, NULL, 0);
}

/* Keep or close the descriptors of one recvmsg(). */
static void
take_fds(struct msghdr *mh, int *fds, size_t cap, size_t *kept)
{
    struct cmsghdr *c;

    for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        const uint8_t *p = CMSG_DATA(c);
        const uint8_t *end = (const uint8_t *)c + c->cmsg_len;
        int fd;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        /* One int each, possibly unaligned in the control buffer. */
        for (; p + sizeof(fd) <= end; p += sizeof(fd)) {
            memcpy(&fd, p, sizeof(fd));
            if (fds != NULL && *kept < cap)
                fds[(*kept)++] = fd;
            else
                close(fd);
        }
    }
}

ssize_t
kit_peer_recv(int fd, void *buf, size_t cap, int timeout_ms, int *fds,
              size_t *nfds)
{
    int64_t deadline = kit_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    size_t have = 0, want = UMDEV_WIRE_HDR_SIZE, cap_fds = 0, kept = 0;
    struct vfio_user_header h;
    ssize_t ret;

    if (nfds != NULL) {
        cap_fds = fds != NULL ? *nfds : 0;
        *nfds = 0;
    }
    if (cap < UMDEV_WIRE_HDR_SIZE)
        return -EINVAL;
    for (;;) {
        union fd_ctl ctl;
        struct iovec iov = { (uint8_t *)buf + have, want - have };
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = ctl.b,
            .msg_controllen = sizeof(ctl.b),
        };
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int rc = poll(&p, 1, timeout_ms < 0 ? -1 : kit_left_ms(deadline));
        ssize_t n;

        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            ret = -errno;
            break;
        }
        if (rc == 0) {
            ret = -ETIMEDOUT;
            break;
        }
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = errno == ECONNRESET ? 0 : -errno;
            break;
        }
        take_fds(&mh, fds, cap_fds, &kept);
        if (n == 0) {
            ret = 0;
            break;
        }
        have += (size_t)n;
        if (have == UMDEV_WIRE_HDR_SIZE) {
            memcpy(&h, buf, sizeof(h));
            if (h.msg_size < UMDEV_WIRE_HDR_SIZE) {
                ret = -EPROTO;
                break;
            }
            if (h.msg_size > cap) {
                ret = -EMSGSIZE;
                break;
            }
            want = h.msg_size;
        }
        if (have == want) {
            ret = (ssize_t)have;
            break;
        }
    }
    if (nfds != NULL)
        *nfds = kept;
    return ret;
}
