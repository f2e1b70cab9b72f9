/*
 * One vfio-user connection (private to the library): framing over a UNIX
 * stream socket, SCM_RIGHTS descriptors, negotiated limits, and
 * request/reply matching. Both the server (lib/dev) and the client
 * (lib/client) use it. Not thread-safe: one thread owns a connection.
 */
#ifndef UMDEV_CONN_H
#define UMDEV_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/umdev.h"
#include "umdev/wire.h"
#include "umdev/wire_codec.h"

/* How long a blocking send or a wait for a reply may take (QEMU waits 5 s
 * for a reply). Asynchronous connections (servers) never wait to send. */
#define CONN_DEFAULT_TIMEOUT_MS 5000

/* Output a connection holds that its socket has not taken, at most: past
 * it the peer is taken to have stopped reading and the connection fails
 * (-ENOBUFS). conn_tx_limit() raises it to room for two of the largest
 * replies when max_data_xfer_size is above 1 MiB. */
#define CONN_TX_MAX_QUEUED (4u * 1024 * 1024)

/*
 * Capabilities exchanged in VERSION (spec "Version"). Each side states what
 * *it* can receive; the effective limits of a connection are derived from
 * both (conn_caps_merge()).
 */
struct conn_caps {
    uint32_t max_msg_fds;
    uint32_t max_data_xfer_size;
    uint64_t pgsizes;
    uint32_t max_dma_maps;
    bool write_multiple;
    bool migration;
    uint64_t mig_pgsize;
    uint64_t mig_max_bitmap_size;
    /* umdev's pre-copy sizes extension (UMDEV_WIRE_CAP_PRECOPY_INFO). */
    bool precopy_info;
};

/* One received message. The connection hands it over; conn_msg_free()
 * closes every fd still in @fds (a consumer takes an fd by setting its slot
 * to -1). */
/* msg_alloc() sets each field by name: a new field needs setting there. */
struct conn_msg {
    struct vfio_user_header hdr;
    uint8_t *buf; /* whole message, header included; NULL if discarded */
    size_t len;
    size_t nfds;
    int fds[UMDEV_WIRE_MAX_MSG_FDS];
    /* Non-zero when the message was received but must be refused:
     * -E2BIG oversized (its body was discarded), -EBADF too many fds. */
    int rx_error;
    struct conn_msg *next; /* queue link, owned by the connection */
    /* The connection whose spare block this is (conn_msg_free() returns
     * it there), or NULL. Private to conn.c. */
    struct conn *home;
};

struct conn;

/*
 * Commands conn_request() keeps for conn_read() while it waits, at most
 * (messages, and their bytes): a peer that floods commands while we wait
 * for its reply is cut off (-ENOBUFS; the caller closes the connection)
 * instead of growing the queue without end.
 */
#define CONN_MAX_QUEUED_MSGS 256u
#define CONN_MAX_QUEUED_BYTES (4u << 20)

/* Called for a command that arrives while conn_request() waits for a
 * reply. Return 0 if handled (msg is then freed by the connection), 1 to
 * queue it for conn_read() (see CONN_MAX_QUEUED_*), or a negative errno
 * to abort the wait. */
typedef int conn_request_fn(struct conn *conn, struct conn_msg *msg,
                            void *opaque);

/**
 * conn_create() - wrap a connected UNIX stream socket.
 * @fd: taken over (closed by conn_destroy()); set non-blocking here.
 * @log: borrowed sink.
 */
struct msghdr;

/**
 * conn_attach_fds() - put @nfds descriptors into @mh as one SCM_RIGHTS
 * control message, built in @ctl (at least CMSG_SPACE(nfds * sizeof(int))
 * bytes, aligned for struct cmsghdr). For every sender of descriptors in
 * lib: this connection's and lib/dev's handover transport.
 */
void conn_attach_fds(struct msghdr *mh, void *ctl, const int *fds, size_t nfds);

int conn_create(int fd, const struct umdev_logger *log, struct conn **out);
void conn_destroy(struct conn *conn);
int conn_fd(const struct conn *conn);

/* Our own receive limits (what we advertise); defaults from wire.h. */
void conn_set_local_caps(struct conn *conn, const struct conn_caps *caps);
const struct conn_caps *conn_local_caps(const struct conn *conn);
/* The peer's advertised receive limits after negotiation. */
void conn_set_peer_caps(struct conn *conn, const struct conn_caps *caps);
const struct conn_caps *conn_peer_caps(const struct conn *conn);
/* Limits to validate incoming messages with. */
const struct umdev_wire_limits *conn_rx_limits(const struct conn *conn);

/**
 * conn_read() - take the next complete message, without blocking.
 *
 * Survives partial reads: bytes and fds received so far are kept until the
 * message completes. Queued messages (see conn_request()) come first.
 *
 * Return: 0 with *@out set; -EAGAIN when no whole message is available;
 * -ECONNRESET when the peer closed; -EPROTO on an impossible header (bad
 * stream: the caller must close the connection); the error that broke
 * the send side (conn_send()); other -errno from recvmsg.
 */
int conn_read(struct conn *conn, struct conn_msg **out);

/**
 * conn_read_sleep() - conn_read(), but a socket that is in blocking mode
 * (its owner cleared O_NONBLOCK: lib/loop's sleeping reads) is read
 * without MSG_DONTWAIT, so the call sleeps until bytes arrive. -EAGAIN
 * when a non-blocking socket had nothing, or an incomplete message.
 */
int conn_read_sleep(struct conn *conn, struct conn_msg **out);

/**
 * conn_rx_ready() - the socket polled readable. conn_read() skips the
 * recvmsg() that would only return EAGAIN after a short read; call this
 * when the fd is reported readable (umdev_dev_process() does).
 */
void conn_rx_ready(struct conn *conn);

/**
 * conn_set_blocking() - let waits for a reply sleep in recvmsg() instead
 * of poll() + recvmsg() (clients). Reads that must not block still use
 * MSG_DONTWAIT. @timeout_ms bounds each blocking read.
 */
int conn_set_blocking(struct conn *conn, int timeout_ms);

/** conn_read() but wait up to @timeout_ms (-1: forever). -ETIMEDOUT. */
int conn_read_wait(struct conn *conn, int timeout_ms, struct conn_msg **out);

/** True if conn_read() would return a queued message without I/O. */
bool conn_has_queued(const struct conn *conn);

/* On the connection's thread, like every other call here. */
void conn_msg_free(struct conn_msg *msg);

/* Called when a connection's output queue becomes non-empty (@pending)
 * or empty, so the owner can watch the socket for writability. */
typedef void conn_tx_fn(struct conn *conn, bool pending, void *opaque);

/**
 * conn_set_async_send() - never wait to send (servers on an event loop):
 * what the socket does not take is queued, in order, and goes out with
 * conn_flush() once the socket polls writable. @notify (may be NULL) is
 * told when the queue fills and empties. Without this (clients), a send
 * waits until its message is wholly in the socket.
 */
void conn_set_async_send(struct conn *conn, conn_tx_fn *notify, void *opaque);

/** conn_flush() - send what is queued, as far as the socket takes it,
 *  without waiting. Return: 0 (conn_tx_pending() says whether some is
 *  left), or the -errno that broke the connection. */
int conn_flush(struct conn *conn);
bool conn_tx_pending(const struct conn *conn);
/** Bytes queued and not yet taken by the socket. */
size_t conn_tx_queued(const struct conn *conn);
/** The most conn_tx_queued() may reach: CONN_TX_MAX_QUEUED, or twice the
 *  largest reply to a data transfer of our max_data_xfer_size if more. */
size_t conn_tx_limit(const struct conn *conn);

/** True if conn_read() would return without reading the socket: a
 *  message (or a stream error) is already buffered. */
bool conn_rx_pending(const struct conn *conn);

/**
 * conn_send() - send one whole message and, with it, @nfds descriptors
 * (not closed; queued ones are duplicated). Messages go out whole and in
 * order. Waits (bounded by CONN_DEFAULT_TIMEOUT_MS) while the socket is
 * full unless the connection is asynchronous.
 * Return: 0; -EINVAL too many descriptors; -ENOMEM or -EMFILE with nothing
 * sent; -ETIMEDOUT (the rest stays queued); or the error that broke the
 * connection, which every later send and conn_read() return too:
 * -ENOBUFS past conn_tx_limit(), -ECONNRESET, another -errno.
 */
int conn_send(struct conn *conn, const void *buf, size_t len, const int *fds,
              size_t nfds);

/* Send header + fixed part + data without building one buffer first. */
int conn_sendv(struct conn *conn, const struct vfio_user_header *hdr,
               const void *fixed, size_t fixed_len, const void *data,
               size_t data_len, const int *fds, size_t nfds);

/** conn_send_error() - an error reply to @req carrying @err (errno).
 *  If it cannot be sent or queued the connection fails (conn_send()), so
 *  a command is never left without an answer on a live connection. */
int conn_send_error(struct conn *conn, const struct vfio_user_header *req,
                    int err);

/** Next message id for a request this side originates. */
uint16_t conn_next_id(struct conn *conn);

/**
 * conn_request() - send a command and wait for its reply.
 * @buf/@len/@fds/@nfds: the encoded command (its msg_id is used to match).
 * @on_command: called for commands from the peer meanwhile (may be NULL:
 *   they are queued for conn_read()).
 * @reply: receives the matching reply; an error reply is returned as
 *   -hdr.error (or -EIO) with *@reply NULL.
 *
 * Replies whose id matches nothing are logged and dropped.
 * Return: 0, -ETIMEDOUT, -ECONNRESET, -EPROTO, -ENOBUFS (the queue bound
 * was passed: treat as a bad stream) or the peer's -errno.
 */
int conn_request(struct conn *conn, const void *buf, size_t len,
                 const int *fds, size_t nfds, int timeout_ms,
                 conn_request_fn *on_command, void *opaque,
                 struct conn_msg **reply);

/*
 * Handover (lib/dev/handover.c): a connection's state beyond its socket,
 * read out in one process and rebuilt around a duplicate of the same
 * socket in another, so that no byte received or queued is lost.
 */

/* Descriptors that came with received bytes not parsed yet: they belong
 * to the message starting at @owner (an offset into those bytes). */
#define CONN_RX_MAX_FDSETS 4
struct conn_fdset {
    size_t owner;
    size_t nfds;
    bool overflow; /* more came than one message may carry */
    int fds[UMDEV_WIRE_MAX_MSG_FDS];
};

/**
 * conn_export_check() - can this connection's state be carried whole?
 * Return: 0; -EAGAIN an oversized message is being skipped or commands
 * are queued (a transient state: serve a turn and retry); the error that
 * broke the stream.
 */
int conn_export_check(const struct conn *conn);
/* Bytes received and not parsed yet (borrowed), and their fd sets
 * (copied into @sets, CONN_RX_MAX_FDSETS of them; the fds stay ours). */
size_t conn_export_rx(const struct conn *conn, const uint8_t **bytes,
                      struct conn_fdset *sets, size_t *nsets);
/* Call @fn for each queued output message, oldest first: the bytes the
 * socket has not taken and the fds still to go with them (borrowed).
 * Stops at @fn's first non-zero return and returns it. */
int conn_export_tx(const struct conn *conn,
                   int (*fn)(void *opaque, const uint8_t *data, size_t len,
                             const int *fds, size_t nfds),
                   void *opaque);
uint16_t conn_peek_next_id(const struct conn *conn);
void conn_set_next_id(struct conn *conn, uint16_t id);
/**
 * conn_import_rx() - a new connection's receive buffer gets @len bytes
 * (at most UMDEV_HANDOVER_MAX_BYTES, checked by the caller) and their fd
 * sets (owners below @len; the fds are taken, also on error).
 * Return: 0; -EBUSY the connection has received something already;
 * -EINVAL a set is malformed; -ENOMEM.
 */
int conn_import_rx(struct conn *conn, const uint8_t *bytes, size_t len,
                   struct conn_fdset *sets, size_t nsets);
/**
 * conn_import_tx() - queue @len bytes (the rest of a message) with @fds
 * (duplicated) behind the output already queued, as if the socket had not
 * taken them yet. Return: 0; -ENOBUFS past conn_tx_limit(); -EINVAL
 * too many fds; -ENOMEM/-EMFILE.
 */
int conn_import_tx(struct conn *conn, const uint8_t *data, size_t len,
                   const int *fds, size_t nfds);

/* VERSION JSON (lib/conn/version.c). */

/** Parse a capabilities object; absent fields take the spec defaults.
 *  Return: 0, or -EINVAL naming nothing more: the JSON is malformed or a
 *  field has the wrong type or range. */
int conn_caps_parse(const char *json, struct conn_caps *out);
/** Spec defaults for a peer that sent no JSON. */
void conn_caps_defaults(struct conn_caps *out);
/** Write the JSON for @caps into @buf (NUL included). Return: length with
 *  the NUL, or -E2BIG. */
ssize_t conn_caps_format(const struct conn_caps *caps, char *buf, size_t cap);

#endif /* UMDEV_CONN_H */
