/*
 * Connection framing. Bytes are read into a buffer as they come, so one
 * recvmsg() usually brings a whole message (or several) and the common
 * request costs one read, not two. Descriptors are the subtle part: the
 * kernel hands over the fds of at most one sendmsg() per recvmsg(), and
 * stops right after that sendmsg's data, so the fds belong to the last
 * message that *starts* inside the bytes just read (or, if none starts
 * there, to the one those bytes continue). Each batch of fds is tagged with
 * its owner's buffer offset and handed to that message when it is parsed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "util.h"

#define RX_INITIAL_SIZE 16384
/* At most one fd-carrying sendmsg() arrives per recvmsg(), and we read
 * only when no complete message is buffered, so two tags can be pending:
 * the incomplete message's and the new one's. */
#define RX_MAX_TAGS 4

struct fd_tag {
    size_t owner; /* buffer offset of the owning message */
    size_t nfds;
    bool overflow; /* more fds than one message may carry */
    int fds[UMDEV_WIRE_MAX_MSG_FDS];
};

/* Bytes of one message the socket did not take, with the descriptors
 * that go with its first byte if none of it is sent yet (our duplicates:
 * the caller keeps its own). */
struct conn_out {
    struct conn_out *next;
    size_t len, off;
    size_t nfds;
    int fds[UMDEV_WIRE_MAX_MSG_FDS];
    uint8_t data[];
};

struct conn {
    int fd;
    const struct umdev_logger *log;
    struct conn_caps local;
    struct conn_caps peer;
    struct umdev_wire_limits rx_lim;
    uint16_t next_id;
    bool blocking; /* socket in blocking mode: waits block in recvmsg */

    uint8_t *rx;
    size_t rx_cap, rx_off, rx_len;
    /* The last recvmsg() returned less than asked: the socket was empty
     * then, so reading again before it polls readable would only cost an
     * EAGAIN. Cleared by conn_rx_ready(). */
    bool rx_drained;
    struct fd_tag tags[RX_MAX_TAGS];
    size_t ntags;

    /* An oversized message whose body is being skipped. */
    struct conn_msg *discard_msg;
    uint64_t discard;

    struct conn_msg *queue_head, *queue_tail;
    size_t queue_n, queue_bytes; /* bounded by CONN_MAX_QUEUED_* */

    /* Output the socket did not take yet, oldest first (tx_enqueue()). */
    struct conn_out *tx_head, *tx_tail;
    size_t tx_bytes; /* unsent bytes in the queue */
    /* A send failed part way or the queue outgrew its limit: the stream
     * is broken; every later send and read returns this. 0 if none. */
    int tx_err;
    bool tx_async; /* conn_set_async_send(): sends never wait */
    conn_tx_fn *tx_notify;
    void *tx_opaque;

    /* One message block recycled between messages of up to
     * MSG_SPARE_SIZE bytes (msg_alloc()), and the message using it now. */
    struct conn_msg *spare, *lent;
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

void
conn_attach_fds(struct msghdr *mh, void *ctl, const int *fds, size_t nfds)
{
    struct cmsghdr *c;

    memset(ctl, 0, CMSG_SPACE(sizeof(int) * nfds));
    mh->msg_control = ctl;
    mh->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    c = CMSG_FIRSTHDR(mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
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

int
conn_set_blocking(struct conn *conn, int timeout_ms)
{
    struct timeval tv = {
        .tv_sec = timeout_ms / 1000,
        .tv_usec = (timeout_ms % 1000) * 1000,
    };
    int fl = fcntl(conn->fd, F_GETFL);

    if (fl < 0 || fcntl(conn->fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        return -errno;
    if (setsockopt(conn->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
        return -errno;
    conn->blocking = true;
    return 0;
}

static void
close_fds(int *fds, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Free the output queue and its descriptors (nothing more is sent). */
static void
tx_drop(struct conn *conn)
{
    struct conn_out *o, *next;

    for (o = conn->tx_head; o != NULL; o = next) {
        next = o->next;
        close_fds(o->fds, o->nfds);
        free(o);
    }
    conn->tx_head = conn->tx_tail = NULL;
    conn->tx_bytes = 0;
}

/* Where msg_alloc() puts a message's bytes: right after the struct, as
 * aligned as malloc() would have aligned a buffer of their own. */
#define MSG_INLINE_OFF                                                         \
    ((sizeof(struct conn_msg) + _Alignof(max_align_t) - 1) &                   \
     ~(_Alignof(max_align_t) - 1))

/* Every register access and most control messages fit. */
#define MSG_SPARE_SIZE 256

/*
 * A message with room for @size bytes of it, in one allocation. A small
 * one reuses the connection's spare block when no other message has it,
 * so the usual request/reply traffic (one message in hand at a time)
 * allocates nothing. If allocating fails, an empty message with rx_error
 * -ENOMEM (refused with an error reply); NULL only if even that fails.
 */
static struct conn_msg *
msg_alloc(struct conn *conn, size_t size)
{
    bool spare = size <= MSG_SPARE_SIZE && conn->lent == NULL;
    struct conn_msg *m;

    if (spare && conn->spare != NULL)
        m = conn->spare;
    else
        m = malloc(MSG_INLINE_OFF + (spare ? MSG_SPARE_SIZE : size));
    if (m == NULL) {
        m = calloc(1, sizeof(*m));
        if (m != NULL)
            m->rx_error = -ENOMEM;
        return m;
    }
    /* Every field but fds[] (read only below nfds): clearing the array
     * too is a measurable share of a register read's cost. */
    m->hdr = (struct vfio_user_header){ 0 };
    m->len = 0;
    m->nfds = 0;
    m->rx_error = 0;
    m->next = NULL;
    m->home = NULL;
    m->buf = (uint8_t *)m + MSG_INLINE_OFF;
    if (spare) {
        conn->spare = NULL;
        conn->lent = m;
        m->home = conn;
    }
    return m;
}

void
conn_msg_free(struct conn_msg *msg)
{
    if (msg == NULL)
        return;
    close_fds(msg->fds, msg->nfds);
    if (msg->home != NULL) {
        /* The spare block comes home; only one is ever lent. */
        msg->home->lent = NULL;
        msg->home->spare = msg;
        return;
    }
    /* Messages are made only in rx_parse(): bytes inline, or none. */
    free(msg);
}

void
conn_destroy(struct conn *conn)
{
    struct conn_msg *m, *next;
    size_t i;

    if (conn == NULL)
        return;
    for (m = conn->queue_head; m != NULL; m = next) {
        next = m->next;
        conn_msg_free(m);
    }
    conn_msg_free(conn->discard_msg);
    tx_drop(conn);
    for (i = 0; i < conn->ntags; i++)
        close_fds(conn->tags[i].fds, conn->tags[i].nfds);
    /* A message still out (the caller frees it after us) becomes an
     * ordinary allocation. */
    if (conn->lent != NULL)
        conn->lent->home = NULL;
    free(conn->spare);
    free(conn->rx);
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

void
conn_rx_ready(struct conn *conn)
{
    conn->rx_drained = false;
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

static uint32_t
size_at(const struct conn *conn, size_t off)
{
    uint32_t size;

    memcpy(&size, conn->rx + off + 4, sizeof(size));
    return size;
}

/* Which buffered message owns fds that came with bytes [from, to)? */
static size_t
fd_owner(const struct conn *conn, size_t from, size_t to)
{
    size_t b = conn->rx_off, owner = conn->rx_off;

    (void)from;

    for (;;) {
        uint32_t size;

        /* The last message starting before the new bytes end: one that
         * starts among them, else the one they continue. */
        if (b < to)
            owner = b;
        if (b >= to || b + UMDEV_WIRE_HDR_SIZE > to)
            break;
        size = size_at(conn, b);
        /* An impossible size is reported when parsed; stop here. */
        if (size < UMDEV_WIRE_HDR_SIZE)
            break;
        b += size;
    }
    return owner;
}

static struct fd_tag *
tag_for(struct conn *conn, size_t owner)
{
    size_t i;

    for (i = 0; i < conn->ntags; i++)
        if (conn->tags[i].owner == owner)
            return &conn->tags[i];
    if (conn->ntags == RX_MAX_TAGS)
        return NULL;
    conn->tags[conn->ntags] = (struct fd_tag){ .owner = owner };
    return &conn->tags[conn->ntags++];
}

/* File the descriptors of one recvmsg(); @discarding: they belong to the
 * oversized message being skipped. */
static void
collect_fds(struct conn *conn, struct msghdr *mh, size_t from, size_t to,
            bool discarding)
{
    struct fd_tag *tag = NULL;
    struct cmsghdr *c;
    bool bad = (mh->msg_flags & MSG_CTRUNC) != 0;

    if (!discarding)
        tag = tag_for(conn, fd_owner(conn, from, to));
    for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        size_t n, i;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
            if (tag != NULL && tag->nfds < UMDEV_WIRE_MAX_MSG_FDS &&
                tag->nfds < conn->rx_lim.max_msg_fds) {
                tag->fds[tag->nfds++] = fd;
            } else {
                close(fd);
                bad = true;
            }
        }
    }
    if (bad && tag != NULL)
        tag->overflow = true;
    if (bad && discarding && conn->discard_msg != NULL)
        conn->discard_msg->rx_error = -E2BIG;
}

/* Move the unparsed bytes to the front and make room for @need bytes from
 * rx_off. */
static int
make_room(struct conn *conn, size_t need)
{
    size_t i;

    if (conn->rx_off > 0) {
        memmove(conn->rx, conn->rx + conn->rx_off,
                conn->rx_len - conn->rx_off);
        for (i = 0; i < conn->ntags; i++)
            conn->tags[i].owner -= conn->rx_off;
        conn->rx_len -= conn->rx_off;
        conn->rx_off = 0;
    }
    if (need < RX_INITIAL_SIZE)
        need = RX_INITIAL_SIZE;
    if (conn->rx_cap < need) {
        uint8_t *p = realloc(conn->rx, need);

        if (p == NULL)
            return -ENOMEM;
        conn->rx = p;
        conn->rx_cap = need;
    }
    return 0;
}

static ssize_t
do_recvmsg(struct conn *conn, void *dst, size_t len, bool wait,
           struct msghdr *mh, struct iovec *iov)
{
    ssize_t n;

    iov->iov_base = dst;
    iov->iov_len = len;
    mh->msg_iov = iov;
    mh->msg_iovlen = 1;
    do {
        n = recvmsg(conn->fd, mh, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

/* One recvmsg() into the buffer (or, while skipping an oversized message,
 * into a scratch area never past that message's end). */
static int
rx_fill(struct conn *conn, size_t need, bool wait)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * UMDEV_WIRE_MAX_MSG_FDS)];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = { 0 };
    struct iovec iov;
    char sink[4096];
    bool discarding = conn->discard_msg != NULL;
    size_t ask, from = conn->rx_len;
    ssize_t n;
    int rc;

    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    if (discarding) {
        ask = conn->discard < sizeof(sink) ? (size_t)conn->discard
                                           : sizeof(sink);
        n = do_recvmsg(conn, sink, ask, wait, &mh, &iov);
    } else {
        if (conn->rx_cap - conn->rx_off < need ||
            conn->rx_cap == conn->rx_len) {
            rc = make_room(conn, need);
            if (rc < 0)
                return rc;
            from = conn->rx_len;
        }
        ask = conn->rx_cap - conn->rx_len;
        n = do_recvmsg(conn, conn->rx + conn->rx_len, ask, wait, &mh, &iov);
    }
    if (n < 0) {
        if (n == -EAGAIN)
            conn->rx_drained = true;
        return (int)n;
    }
    if (!discarding)
        conn->rx_len += (size_t)n;
    if (mh.msg_controllen > 0 || (mh.msg_flags & MSG_CTRUNC))
        collect_fds(conn, &mh, from, conn->rx_len, discarding);
    if (n == 0)
        return -ECONNRESET;
    if (discarding)
        conn->discard -= (uint64_t)n;
    conn->rx_drained = (size_t)n < ask;
    return 0;
}

/* Hand the fds tagged for the message at @owner to @m. */
static void
claim_fds(struct conn *conn, size_t owner, struct conn_msg *m)
{
    size_t i;

    for (i = 0; i < conn->ntags; i++) {
        struct fd_tag *t = &conn->tags[i];

        if (t->owner != owner)
            continue;
        memcpy(m->fds, t->fds, t->nfds * sizeof(int));
        m->nfds = t->nfds;
        if (t->overflow && m->rx_error == 0)
            m->rx_error = -EBADF;
        conn->tags[i] = conn->tags[--conn->ntags];
        return;
    }
}

/*
 * Take one complete message from the buffer. Return 0 with *out, -EAGAIN
 * with *need set when more bytes are needed, -EPROTO on a bad header.
 */
static int
rx_parse(struct conn *conn, size_t *need, struct conn_msg **out)
{
    size_t avail = conn->rx_len - conn->rx_off;
    struct vfio_user_header hdr;
    struct conn_msg *m;
    bool oversized;

    *need = UMDEV_WIRE_HDR_SIZE;
    if (avail < UMDEV_WIRE_HDR_SIZE)
        return -EAGAIN;
    if (umdev_wire_decode_header(conn->rx + conn->rx_off, &hdr) < 0) {
        umdev_log(conn->log, LOG_ERR,
                  "bad stream: impossible header (size %u, flags 0x%x)",
                  hdr.msg_size, hdr.flags);
        return -EPROTO;
    }
    if (hdr.msg_size <= max_rx_size(conn) && avail < hdr.msg_size) {
        *need = hdr.msg_size;
        return -EAGAIN;
    }
    oversized = hdr.msg_size > max_rx_size(conn);
    m = oversized ? calloc(1, sizeof(*m)) : msg_alloc(conn, hdr.msg_size);
    if (m == NULL)
        return -ENOMEM;
    m->hdr = hdr;
    m->len = hdr.msg_size;
    if (oversized) {
        /* Keep the stream in step by skipping the body, then refuse the
         * message: a bad message, not a bad stream. */
        m->rx_error = -E2BIG;
        claim_fds(conn, conn->rx_off, m);
        conn->discard = hdr.msg_size - avail;
        conn->rx_off = conn->rx_len;
    } else {
        if (m->buf != NULL)
            memcpy(m->buf, conn->rx + conn->rx_off, hdr.msg_size);
        claim_fds(conn, conn->rx_off, m);
        conn->rx_off += hdr.msg_size;
    }
    if (conn->rx_off == conn->rx_len)
        conn->rx_off = conn->rx_len = 0;
    if (conn->discard > 0) {
        conn->discard_msg = m;
        *need = 0;
        return -EAGAIN;
    }
    *out = m;
    return 0;
}

static int
enqueue(struct conn *conn, struct conn_msg *m)
{
    if (conn->queue_n >= CONN_MAX_QUEUED_MSGS ||
        m->len > CONN_MAX_QUEUED_BYTES - conn->queue_bytes) {
        umdev_log(conn->log, LOG_ERR,
                  "peer sent more than %u commands or %u bytes while we "
                  "waited for its reply: closing",
                  CONN_MAX_QUEUED_MSGS, CONN_MAX_QUEUED_BYTES);
        return -ENOBUFS;
    }
    conn->queue_n++;
    conn->queue_bytes += m->len;
    m->next = NULL;
    if (conn->queue_tail != NULL)
        conn->queue_tail->next = m;
    else
        conn->queue_head = m;
    conn->queue_tail = m;
    return 0;
}

static struct conn_msg *
dequeue(struct conn *conn)
{
    struct conn_msg *m = conn->queue_head;

    if (m != NULL) {
        conn->queue_n--;
        conn->queue_bytes -= m->len;
        conn->queue_head = m->next;
        if (conn->queue_head == NULL)
            conn->queue_tail = NULL;
        m->next = NULL;
    }
    return m;
}

/* Next message from the socket (not the queue). @wait lets recvmsg()
 * sleep, if the socket is in blocking mode. */
static int
rx_message(struct conn *conn, bool wait, struct conn_msg **out)
{
    size_t need;
    int rc;

    for (;;) {
        if (conn->discard_msg != NULL) {
            if (conn->discard == 0) {
                *out = conn->discard_msg;
                conn->discard_msg = NULL;
                return 0;
            }
            need = 0;
        } else {
            rc = rx_parse(conn, &need, out);
            if (rc != -EAGAIN)
                return rc;
            if (conn->discard_msg != NULL)
                continue;
        }
        if (conn->rx_drained && !wait)
            return -EAGAIN;
        rc = rx_fill(conn, need, wait);
        if (rc < 0)
            return rc;
    }
}

bool
conn_rx_pending(const struct conn *conn)
{
    size_t avail = conn->rx_len - conn->rx_off;
    uint32_t size;

    if (conn->queue_head != NULL || conn->tx_err)
        return true;
    if (conn->discard_msg != NULL)
        return conn->discard == 0;
    if (avail < UMDEV_WIRE_HDR_SIZE)
        return false;
    /* A whole message, or a header rx_parse() decides on alone. */
    size = size_at(conn, conn->rx_off);
    return size < UMDEV_WIRE_HDR_SIZE || size > max_rx_size(conn) ||
           size <= avail;
}

int
conn_read(struct conn *conn, struct conn_msg **out)
{
    *out = NULL;
    if (conn->tx_err)
        return conn->tx_err;
    *out = dequeue(conn);
    if (*out != NULL)
        return 0;
    return rx_message(conn, false, out);
}

int
conn_read_sleep(struct conn *conn, struct conn_msg **out)
{
    *out = NULL;
    if (conn->tx_err)
        return conn->tx_err;
    *out = dequeue(conn);
    if (*out != NULL)
        return 0;
    conn_rx_ready(conn);
    return rx_message(conn, true, out);
}


static int
wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };
    int timeout = -1;
    int rc;

    if (deadline >= 0) {
        int64_t left = deadline - util_now_ms();

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
    int64_t deadline = timeout_ms < 0 ? -1 : util_now_ms() + timeout_ms;
    int rc;

    for (;;) {
        rc = conn_read(conn, out);
        if (rc != -EAGAIN)
            return rc;
        rc = wait_fd(conn->fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
        conn_rx_ready(conn);
    }
}

/* Largest message tx_direct() copies into one buffer for send(2). */
#define SEND_GATHER_MAX 256

/*
 * Hand the socket what it takes now of @iov (@total bytes), never waiting;
 * @fds go with the first byte. Return: bytes taken (0 if the socket is
 * full), or -errno.
 */
static ssize_t
tx_direct(struct conn *conn, struct iovec *iov, int iovcnt, size_t total,
          const int *fds, size_t nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * UMDEV_WIRE_MAX_MSG_FDS)];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };
    char small[SEND_GATHER_MAX];
    ssize_t n;
    int i;

    /*
     * Most messages are small replies without fds. Gathering them into one
     * buffer for send(2) skips sendmsg's iovec and control-message work,
     * which is measurable on a 4-byte register read's round trip
     * (bench/rtt).
     */
    if (nfds == 0 && (iovcnt == 1 || total <= sizeof(small))) {
        const char *flat = iov[0].iov_base;

        if (iovcnt > 1) {
            size_t off = 0;

            for (i = 0; i < iovcnt; i++) {
                memcpy(small + off, iov[i].iov_base, iov[i].iov_len);
                off += iov[i].iov_len;
            }
            flat = small;
        }
        do {
            n = send(conn->fd, flat, total, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
    } else {
        if (nfds > 0)
            conn_attach_fds(&mh, ctl.buf, fds, nfds);
        do {
            n = sendmsg(conn->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
    }
    if (n < 0) {
        if (errno == EAGAIN)
            return 0;
        return errno == EPIPE ? -ECONNRESET : -errno;
    }
    return n;
}

/* The stream is broken (a message went out in part, or the peer does not
 * read): remember why, and send nothing more. Return: @err. */
static int
tx_fail(struct conn *conn, int err)
{
    bool had = conn->tx_head != NULL;

    if (conn->tx_err == 0) {
        conn->tx_err = err;
        /*
         * Whoever polls the socket must learn of it now: a send made
         * outside a serving turn (a device's DMA request) broke it, and
         * a client that does not read would otherwise never make the fd
         * ready again. Shut, it polls readable (and hung up) at once, so
         * the next read meets the error; the peer sees the end.
         */
        shutdown(conn->fd, SHUT_RDWR);
    }
    tx_drop(conn);
    if (had && conn->tx_notify != NULL)
        conn->tx_notify(conn, false, conn->tx_opaque);
    return conn->tx_err;
}

size_t
conn_tx_limit(const struct conn *conn)
{
    /* Room for two of the largest replies we can be asked for. */
    size_t two =
        2 * ((size_t)conn->local.max_data_xfer_size + UMDEV_WIRE_HDR_SIZE + 64);

    return two > CONN_TX_MAX_QUEUED ? two : CONN_TX_MAX_QUEUED;
}

/*
 * Queue the bytes of @iov from @skip on (@total in all), and @fds with
 * them if none was sent (duplicated: the caller keeps its own). Past the
 * limit the connection fails. Return: 0 or -errno; an error that leaves
 * the message wholly unsent (no memory, no descriptors) leaves the stream
 * intact.
 */
static int
tx_enqueue(struct conn *conn, const struct iovec *iov, int iovcnt, size_t skip,
           size_t total, const int *fds, size_t nfds)
{
    size_t len = total - skip, limit = conn_tx_limit(conn), off = 0;
    struct conn_out *o;
    int i;

    if (len > limit - conn->tx_bytes) {
        umdev_log(conn->log, LOG_WARNING,
                  "peer does not read: %zu bytes wait to be sent and %zu "
                  "more exceed the limit of %zu; closing",
                  conn->tx_bytes, len, limit);
        return tx_fail(conn, -ENOBUFS);
    }
    o = malloc(sizeof(*o) + len);
    if (o == NULL)
        return skip > 0 ? tx_fail(conn, -ENOMEM) : -ENOMEM;
    o->next = NULL;
    o->len = len;
    o->off = 0;
    o->nfds = 0;
    for (i = 0; (size_t)i < nfds; i++) {
        int d = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);

        if (d < 0) {
            int err = -errno;

            close_fds(o->fds, o->nfds);
            free(o);
            return err;
        }
        o->fds[o->nfds++] = d;
    }
    for (i = 0; i < iovcnt; i++) {
        size_t l = iov[i].iov_len;
        const uint8_t *b = iov[i].iov_base;

        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(o->data + off, b + skip, l - skip);
        off += l - skip;
        skip = 0;
    }
    if (conn->tx_tail != NULL)
        conn->tx_tail->next = o;
    else
        conn->tx_head = o;
    conn->tx_tail = o;
    conn->tx_bytes += len;
    if (o == conn->tx_head && conn->tx_notify != NULL)
        conn->tx_notify(conn, true, conn->tx_opaque);
    return 0;
}

int
conn_flush(struct conn *conn)
{
    bool had = conn->tx_head != NULL;

    if (conn->tx_err)
        return conn->tx_err;
    while (conn->tx_head != NULL) {
        struct conn_out *o = conn->tx_head;
        struct iovec iov = { .iov_base = o->data + o->off,
                             .iov_len = o->len - o->off };
        ssize_t n = tx_direct(conn, &iov, 1, iov.iov_len, o->fds, o->nfds);

        if (n < 0)
            return tx_fail(conn, (int)n);
        if (n == 0)
            return 0;
        /* The descriptors went with the first byte. */
        close_fds(o->fds, o->nfds);
        o->nfds = 0;
        o->off += (size_t)n;
        conn->tx_bytes -= (size_t)n;
        if (o->off < o->len)
            return 0;
        conn->tx_head = o->next;
        if (conn->tx_head == NULL)
            conn->tx_tail = NULL;
        free(o);
    }
    if (had && conn->tx_notify != NULL)
        conn->tx_notify(conn, false, conn->tx_opaque);
    return 0;
}

/* Flush, waiting for the socket until @deadline (ms, -1: none). */
static int
tx_flush_wait(struct conn *conn, int64_t deadline)
{
    int rc;

    for (;;) {
        rc = conn_flush(conn);
        if (rc < 0 || conn->tx_head == NULL)
            return rc;
        rc = wait_fd(conn->fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
    }
}

void
conn_set_async_send(struct conn *conn, conn_tx_fn *notify, void *opaque)
{
    conn->tx_async = true;
    conn->tx_notify = notify;
    conn->tx_opaque = opaque;
}

bool
conn_tx_pending(const struct conn *conn)
{
    return conn->tx_head != NULL;
}

size_t
conn_tx_queued(const struct conn *conn)
{
    return conn->tx_bytes;
}

/*
 * Send one message: straight into the socket when nothing waits before it,
 * the rest queued behind what does. An asynchronous connection returns at
 * once (conn_flush() sends the rest); otherwise wait until it is all in
 * the socket, bounded by CONN_DEFAULT_TIMEOUT_MS (after a timeout the
 * rest stays queued, so the stream stays whole).
 */
static int
send_iov(struct conn *conn, struct iovec *iov, int iovcnt, const int *fds,
         size_t nfds)
{
    size_t total = 0, sent = 0;
    ssize_t n;
    int i, rc;

    if (nfds > UMDEV_WIRE_MAX_MSG_FDS || nfds > conn->peer.max_msg_fds)
        return -EINVAL;
    if (conn->tx_err)
        return conn->tx_err;
    for (i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (conn->tx_head == NULL) {
        n = tx_direct(conn, iov, iovcnt, total, fds, nfds);
        if (n < 0)
            return tx_fail(conn, (int)n);
        sent = (size_t)n;
        if (sent == total)
            return 0;
    }
    rc = tx_enqueue(conn, iov, iovcnt, sent, total, sent == 0 ? fds : NULL,
                    sent == 0 ? nfds : 0);
    if (rc < 0 || conn->tx_async)
        return rc;
    return tx_flush_wait(conn, util_now_ms() + CONN_DEFAULT_TIMEOUT_MS);
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

    /* A small message without fds (a register read's reply): lay it out
     * here once rather than build iovecs for send_iov() to gather. */
    if (nfds == 0 && fixed_len <= SEND_GATHER_MAX - sizeof(*hdr) &&
        data_len <= SEND_GATHER_MAX - sizeof(*hdr) - fixed_len) {
        char flat[SEND_GATHER_MAX];
        size_t len = sizeof(*hdr);

        memcpy(flat, hdr, sizeof(*hdr));
        if (fixed_len) {
            memcpy(flat + len, fixed, fixed_len);
            len += fixed_len;
        }
        if (data_len) {
            memcpy(flat + len, data, data_len);
            len += data_len;
        }
        iov[0].iov_base = flat;
        iov[0].iov_len = len;
        return send_iov(conn, iov, 1, NULL, 0);
    }
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
    int rc;

    umdev_wire_encode_error(&hdr, req, err);
    rc = conn_send(conn, &hdr, sizeof(hdr), NULL, 0);
    /* The error reply is a command's last word: if even it cannot be
     * queued, the peer would wait for it for ever on a connection that
     * looks alive. End the connection instead. (A timed-out wait leaves
     * it queued, not lost.) */
    if (rc < 0 && rc != -ETIMEDOUT)
        return tx_fail(conn, rc);
    return rc;
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
    deadline = timeout_ms < 0 ? -1 : util_now_ms() + timeout_ms;
    /* An asynchronous connection may hold the command back. */
    rc = tx_flush_wait(conn, deadline);
    if (rc < 0)
        return rc;
    for (;;) {
        struct conn_msg *m;
        bool is_reply;

        /* Only the socket: queued messages are commands kept for later.
         * A blocking connection sleeps in recvmsg() (one syscall per
         * reply); otherwise poll, then read. */
        conn_rx_ready(conn);
        rc = rx_message(conn, conn->blocking, &m);
        if (rc == -EAGAIN && conn->blocking) {
            if (deadline >= 0 && util_now_ms() >= deadline)
                return -ETIMEDOUT;
            continue;
        }
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
                rc = enqueue(conn, m);
                if (rc < 0) {
                    conn_msg_free(m);
                    return rc;
                }
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

_Static_assert(CONN_RX_MAX_FDSETS == RX_MAX_TAGS, "fd sets are the tags");

int
conn_export_check(const struct conn *conn)
{
    if (conn->tx_err)
        return conn->tx_err;
    /* Neither happens between turns of a server: an oversized message is
     * skipped as its bytes come, and only conn_request() queues. */
    if (conn->discard_msg != NULL || conn->queue_head != NULL)
        return -EAGAIN;
    return 0;
}

size_t
conn_export_rx(const struct conn *conn, const uint8_t **bytes,
               struct conn_fdset *sets, size_t *nsets)
{
    size_t i;

    for (i = 0; i < conn->ntags; i++) {
        const struct fd_tag *t = &conn->tags[i];

        sets[i].owner = t->owner - conn->rx_off;
        sets[i].nfds = t->nfds;
        sets[i].overflow = t->overflow;
        memcpy(sets[i].fds, t->fds, t->nfds * sizeof(int));
    }
    *nsets = conn->ntags;
    *bytes = conn->rx != NULL ? conn->rx + conn->rx_off : NULL;
    return conn->rx_len - conn->rx_off;
}

int
conn_export_tx(const struct conn *conn,
               int (*fn)(void *opaque, const uint8_t *data, size_t len,
                         const int *fds, size_t nfds),
               void *opaque)
{
    const struct conn_out *o;
    int rc;

    for (o = conn->tx_head; o != NULL; o = o->next) {
        rc = fn(opaque, o->data + o->off, o->len - o->off, o->fds, o->nfds);
        if (rc != 0)
            return rc;
    }
    return 0;
}

uint16_t
conn_peek_next_id(const struct conn *conn)
{
    return conn->next_id;
}

void
conn_set_next_id(struct conn *conn, uint16_t id)
{
    conn->next_id = id;
}

int
conn_import_rx(struct conn *conn, const uint8_t *bytes, size_t len,
               struct conn_fdset *sets, size_t nsets)
{
    size_t i;
    int rc = 0;

    if (conn->rx_len != 0 || conn->ntags != 0 || nsets > RX_MAX_TAGS)
        rc = -EBUSY;
    for (i = 0; rc == 0 && i < nsets; i++) {
        if (sets[i].owner >= len || sets[i].nfds > UMDEV_WIRE_MAX_MSG_FDS)
            rc = -EINVAL;
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (sets[j].owner == sets[i].owner)
                rc = -EINVAL;
    }
    if (rc == 0 && len > 0)
        rc = make_room(conn, len);
    if (rc < 0) {
        for (i = 0; i < nsets && i < RX_MAX_TAGS; i++)
            close_fds(sets[i].fds, sets[i].nfds < UMDEV_WIRE_MAX_MSG_FDS
                                       ? sets[i].nfds
                                       : UMDEV_WIRE_MAX_MSG_FDS);
        return rc;
    }
    if (len > 0)
        memcpy(conn->rx, bytes, len);
    conn->rx_off = 0;
    conn->rx_len = len;
    for (i = 0; i < nsets; i++) {
        struct fd_tag *t = &conn->tags[i];

        t->owner = sets[i].owner;
        t->nfds = sets[i].nfds;
        t->overflow = sets[i].overflow;
        memcpy(t->fds, sets[i].fds, t->nfds * sizeof(int));
    }
    conn->ntags = nsets;
    /* The old process may have read to the socket's end: read it again
     * rather than trust a flag that was about another process's view. */
    conn->rx_drained = false;
    return 0;
}

int
conn_import_tx(struct conn *conn, const uint8_t *data, size_t len,
               const int *fds, size_t nfds)
{
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };

    if (nfds > UMDEV_WIRE_MAX_MSG_FDS || len == 0)
        return -EINVAL;
    if (len > conn_tx_limit(conn) - conn->tx_bytes)
        return -ENOBUFS;
    return tx_enqueue(conn, &iov, 1, 0, len, fds, nfds);
}
