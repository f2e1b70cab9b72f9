/*
 * A raw vfio-user peer: tests and fuzz targets speak the protocol byte by
 * byte over a stream socket (connected to a server's path, or the free end
 * of a socketpair whose other end a device was attached to), so they can
 * send what no well-behaved client would and see exactly what comes back.
 * lib/client is the well-behaved client; tests/conformance/rawc.c is the
 * conformance kit's own peer, kept apart on purpose (it is installed).
 *
 * Two rules shape it:
 *  - It never allocates memory: tests/fault/test_alloc.c fails the Nth
 *    allocation of the whole program, and its scripted client must not
 *    take failures meant for the library. Messages go out as iovecs from
 *    the caller's buffers; replies land in the caller's buffer.
 *  - It never asserts or aborts: every function returns 0 (or a length) or
 *    -errno, and the caller turns that into a cmocka failure, an abort()
 *    or a result.
 * Descriptors that arrive with a message are always either handed to the
 * caller or closed, never leaked. Thread-safety: the functions keep no
 * state; one thread may send while another receives on the same socket.
 */
#ifndef UMDEV_KIT_PEER_H
#define UMDEV_KIT_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kit_proto.h" /* KIT_QEMU_VERSION_JSON */

/* Most descriptors one send carries or one receive keeps apart. */
#define KIT_PEER_MAX_FDS 64

/**
 * kit_peer_connect() - a raw connection to the server listening at @path,
 * not negotiated.
 * @timeout_ms: > 0 sets it as the socket's send and receive timeouts
 * (SO_SNDTIMEO, SO_RCVTIMEO), so a blocking call cannot hang a test.
 * Return: the descriptor (the caller closes it), or -errno.
 */
int kit_peer_connect(const char *path, int timeout_ms);

/**
 * kit_peer_pair() - a connected pair of stream sockets (close-on-exec) for
 * a device run by the caller: @sv[0] is the device's end (hand it to
 * umdev_dev_attach(), which takes it), @sv[1] the peer's.
 * Return: 0 or -errno.
 */
int kit_peer_pair(int sv[2]);

/*
 * Called when a non-blocking send finds the socket full: typically runs
 * the device on the same thread so it drains its end. Return 0 to try
 * again, or -errno to give up (the send then returns it).
 */
typedef int kit_peer_full_fn(void *arg);

/**
 * kit_peer_send_bytes() - send @len bytes exactly as given (no framing),
 * with @nfds descriptors (borrowed; at most KIT_PEER_MAX_FDS) on the
 * first sendmsg() and the rest, if any, after it.
 * @full: NULL blocks while the socket is full (bounded by the socket's
 * SO_SNDTIMEO, if any); otherwise sends with MSG_DONTWAIT and calls
 * @full(@arg) each time the socket is full.
 * Return: 0 once every byte is sent; -EINVAL (@len 0 or too many fds), the
 * error of sendmsg() (-EPIPE, -ECONNRESET, -EAGAIN on timeout...), or what
 * @full returned.
 */
int kit_peer_send_bytes(int fd, const void *buf, size_t len, const int *fds,
                        size_t nfds, kit_peer_full_fn *full, void *arg);

/**
 * kit_peer_send() - send one message: a header built from @id, @cmd,
 * @flags and the sizes, then @fixed (@fixed_len bytes, may be 0) and
 * @data (@data_len, may be 0), with @nfds descriptors on its first bytes.
 * Blocking, as kit_peer_send_bytes() with no @full.
 * Return: 0, -E2BIG if the size does not fit msg_size, or as
 * kit_peer_send_bytes().
 */
int kit_peer_send(int fd, uint16_t id, uint16_t cmd, uint32_t flags,
                  const void *fixed, size_t fixed_len, const void *data,
                  size_t data_len, const int *fds, size_t nfds);

/**
 * kit_peer_send_version() - send VERSION 0.0 (the spec's major and minor
 * a client proposes) with @json and its NUL as the capabilities; NULL
 * sends none. The reply is the caller's to read (a device on the same
 * thread must run first).
 * Return: as kit_peer_send().
 */
int kit_peer_send_version(int fd, uint16_t id, const char *json);

/**
 * kit_peer_recv() - receive one whole message into @buf (@cap bytes).
 * @timeout_ms: bound of the whole message; < 0 waits forever; 0 takes
 * only what is already there.
 * @fds: where descriptors that come with it go, up to *@nfds of them;
 * *@nfds is set to how many were kept. Any others, and all of them when
 * @fds or @nfds is NULL, are closed.
 * Return: the message's length; 0 if the peer closed or reset the
 * connection (also in the middle of a message); -ETIMEDOUT; -EPROTO if
 * the header's msg_size is below the header's size, -EMSGSIZE if above
 * @cap (for both the header is in @buf and the rest is left unread);
 * -EINVAL if @cap cannot hold a header; another -errno from the socket.
 */
ssize_t kit_peer_recv(int fd, void *buf, size_t cap, int timeout_ms, int *fds,
                      size_t *nfds);

#endif /* UMDEV_KIT_PEER_H */
