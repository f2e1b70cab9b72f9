/*
 * Unit tests of a connection's send side (lib/conn) when the peer does
 * not read: an asynchronous connection queues what the socket does not
 * take and never waits; the queue may reach conn_tx_limit() exactly, one
 * byte more fails the connection (-ENOBUFS, then every send and read);
 * what was queued goes out whole and in order, descriptors included, once
 * the peer reads again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "conn.h"
#include "util.h"

struct pair {
    struct conn *conn;
    int fd; /* the connection's */
    int peer;
    size_t filled; /* bytes the socket took before the test began */
    int notified;  /* tx_notify calls: +1 pending, +100 drained */
};

static void
on_tx(struct conn *conn, bool pending, void *opaque)
{
    struct pair *p = opaque;

    (void)conn;
    p->notified += pending ? 1 : 100;
}

/* A connection whose socket is full: nothing more goes in until the peer
 * reads. */
static void
pair_open(struct pair *p)
{
    static const uint8_t junk[4096];
    int sv[2];
    ssize_t n;

    memset(p, 0, sizeof(*p));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(conn_create(sv[0], NULL, &p->conn), 0);
    p->fd = sv[0];
    p->peer = sv[1];
    /* Let the connection send a descriptor. */
    {
        struct conn_caps c = *conn_peer_caps(p->conn);

        c.max_msg_fds = 4;
        conn_set_peer_caps(p->conn, &c);
    }
    conn_set_async_send(p->conn, on_tx, p);
    for (;;) {
        n = send(sv[0], junk, sizeof(junk), MSG_DONTWAIT);
        if (n < 0)
            break;
        p->filled += (size_t)n;
    }
    assert_int_equal(errno, EAGAIN);
    /* A small one no longer fits either. */
    assert_int_equal(send(sv[0], junk, 1, MSG_DONTWAIT), -1);
}

static void
pair_close(struct pair *p)
{
    conn_destroy(p->conn);
    close(p->peer);
}

/* Read exactly @len bytes from the peer (blocking, bounded). */
static void
peer_read(struct pair *p, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n;

        /* Room keeps appearing as we read: push the queue on. */
        assert_true(conn_flush(p->conn) == 0);
        n = recv(p->peer, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN)
            continue;
        assert_true(n > 0);
        got += (size_t)n;
    }
}

static void
peer_skip(struct pair *p, size_t len)
{
    static uint8_t sink[65536];

    while (len > 0) {
        size_t n = len < sizeof(sink) ? len : sizeof(sink);

        peer_read(p, sink, n);
        len -= n;
    }
}

/* A message of @len bytes whose bytes say where they are. */
static uint8_t *
message(size_t len, uint8_t seed)
{
    uint8_t *m = malloc(len);
    size_t i;

    assert_non_null(m);
    for (i = 0; i < len; i++)
        m[i] = (uint8_t)(seed + i * 7);
    return m;
}

/* Exactly the limit queued: accepted, nothing waits, nothing is lost. */
static void
test_queue_at_limit(void **state)
{
    struct pair p;
    size_t limit;
    uint8_t *m1, *m2, *got;
    size_t l1, l2 = 16;

    (void)state;
    pair_open(&p);
    limit = conn_tx_limit(p.conn);
    assert_int_equal(limit, CONN_TX_MAX_QUEUED);
    l1 = limit - l2;
    m1 = message(l1, 1);
    m2 = message(l2, 2);
    assert_int_equal(conn_send(p.conn, m1, l1, NULL, 0), 0);
    assert_int_equal(p.notified, 1);
    assert_int_equal(conn_send(p.conn, m2, l2, NULL, 0), 0);
    assert_true(conn_tx_pending(p.conn));
    assert_int_equal(conn_tx_queued(p.conn), limit);
    /* Still a working connection: no error from the read side. */
    assert_false(conn_rx_pending(p.conn));
    /* The peer reads: first what filled the socket, then both messages
     * whole and in order. */
    peer_skip(&p, p.filled);
    got = malloc(l1);
    assert_non_null(got);
    peer_read(&p, got, l1);
    assert_memory_equal(got, m1, l1);
    peer_read(&p, got, l2);
    assert_memory_equal(got, m2, l2);
    assert_int_equal(conn_flush(p.conn), 0);
    assert_false(conn_tx_pending(p.conn));
    assert_int_equal(conn_tx_queued(p.conn), 0);
    assert_int_equal(p.notified, 101);
    free(got);
    free(m1);
    free(m2);
    pair_close(&p);
}

/* One byte past the limit: the connection fails, and says so to every
 * later send and read instead of losing output quietly. */
static void
test_queue_past_limit(void **state)
{
    struct pair p;
    struct conn_msg *msg;
    size_t limit;
    uint8_t *m1;
    uint8_t one = 0x5a;

    (void)state;
    pair_open(&p);
    limit = conn_tx_limit(p.conn);
    m1 = message(limit, 3);
    assert_int_equal(conn_send(p.conn, m1, limit, NULL, 0), 0);
    assert_int_equal(conn_tx_queued(p.conn), limit);
    assert_int_equal(conn_send(p.conn, &one, 1, NULL, 0), -ENOBUFS);
    assert_int_equal(conn_tx_queued(p.conn), 0);
    assert_false(conn_tx_pending(p.conn));
    assert_int_equal(conn_send(p.conn, &one, 1, NULL, 0), -ENOBUFS);
    assert_int_equal(conn_flush(p.conn), -ENOBUFS);
    assert_true(conn_rx_pending(p.conn));
    assert_int_equal(conn_read(p.conn, &msg), -ENOBUFS);
    assert_null(msg);
    /* And its fd says so to a poller at once, though the peer reads
     * nothing: an embedder waiting for umdev_dev_events() wakes. */
    assert_int_equal(
        poll(&(struct pollfd){ .fd = p.fd, .events = POLLIN }, 1, 0), 1);
    free(m1);
    pair_close(&p);

    /* The same with a single message of limit + 1 bytes. */
    pair_open(&p);
    m1 = message(limit + 1, 4);
    assert_int_equal(conn_send(p.conn, m1, limit + 1, NULL, 0), -ENOBUFS);
    assert_int_equal(conn_read(p.conn, &msg), -ENOBUFS);
    free(m1);
    pair_close(&p);
}

/* A queued message keeps its descriptor though the caller closes its own,
 * and it arrives with the message's first byte. */
static void
test_queued_fd_travels(void **state)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct pair p;
    struct msghdr mh = { 0 };
    struct iovec iov;
    uint8_t msg[32], got[32];
    uint64_t v = 0;
    int efd = eventfd(0, EFD_CLOEXEC), rfd;
    struct cmsghdr *c;

    (void)state;
    assert_true(efd >= 0);
    memset(msg, 0xab, sizeof(msg));
    pair_open(&p);
    assert_int_equal(conn_send(p.conn, msg, sizeof(msg), &efd, 1), 0);
    assert_true(conn_tx_pending(p.conn));
    close(efd);
    peer_skip(&p, p.filled);
    assert_int_equal(conn_flush(p.conn), 0);
    assert_false(conn_tx_pending(p.conn));
    iov.iov_base = got;
    iov.iov_len = sizeof(got);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    assert_int_equal(recvmsg(p.peer, &mh, MSG_CMSG_CLOEXEC), sizeof(got));
    assert_memory_equal(got, msg, sizeof(msg));
    c = CMSG_FIRSTHDR(&mh);
    assert_non_null(c);
    assert_int_equal(c->cmsg_type, SCM_RIGHTS);
    memcpy(&rfd, CMSG_DATA(c), sizeof(rfd));
    /* The same eventfd: a write on it counts there. */
    v = 3;
    assert_int_equal(write(rfd, &v, sizeof(v)), sizeof(v));
    assert_int_equal(read(rfd, &v, sizeof(v)), sizeof(v));
    assert_int_equal(v, 3);
    close(rfd);
    pair_close(&p);
}

/* A synchronous connection (clients) still waits, bounded, and after a
 * timeout keeps the rest queued rather than cut a message. */
static void
test_sync_send_times_out_whole(void **state)
{
    struct pair p;
    uint8_t *m = message(8192, 5), *got = malloc(8192);
    int sv[2];

    (void)state;
    assert_non_null(got);
    memset(&p, 0, sizeof(p));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(conn_create(sv[0], NULL, &p.conn), 0);
    p.peer = sv[1];
    for (;;) {
        static const uint8_t junk[4096];
        ssize_t n = send(sv[0], junk, sizeof(junk), MSG_DONTWAIT);

        if (n < 0)
            break;
        p.filled += (size_t)n;
    }
    assert_int_equal(conn_send(p.conn, m, 8192, NULL, 0), -ETIMEDOUT);
    assert_int_equal(conn_tx_queued(p.conn), 8192);
    peer_skip(&p, p.filled);
    peer_read(&p, got, 8192);
    assert_memory_equal(got, m, 8192);
    free(m);
    free(got);
    pair_close(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_at_limit),
        cmocka_unit_test(test_queue_past_limit),
        cmocka_unit_test(test_queued_fd_travels),
        cmocka_unit_test(test_sync_send_times_out_whole),
    };

    return cmocka_run_group_tests_name("unit.conn_tx", tests, NULL, NULL);
}
