/*
 * Functional tests of two devices served on one loop (as umdev-serve and
 * any embedder with several instances run them): a client that floods
 * does not starve the other, a client that stops reading its replies
 * neither stalls the loop nor loses a reply, and what the server holds
 * for such a client is bounded (CONN_TX_MAX_QUEUED) to the byte. The
 * test's own thread runs the loop one turn at a time, so what each device
 * has handled when the other is served is an exact count, not a timing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kit_peer.h"
#include "kit_util.h"
#include "umdev/dev.h"
#include "umdev/loop.h"
#include "umdev/wire.h"
#include "umdev/wire_codec.h"

/* Most loop turns any step may take before the test fails. */
#define MAX_TURNS 2000
#define FLOOD 2000u       /* posted writes from the flooding client */
#define BIG (256u * 1024) /* bytes per read of the client that stalls */
#define NBIG 4u           /* its reads; their replies exceed its socket */
#define BIG_REGION (1024u * 1024)

/*
 * What the server holds for a client its socket has not taken, at most:
 * CONN_TX_MAX_QUEUED (lib/conn/conn.h, docs/PROTOCOL.md "Limits"), since
 * these devices keep the default max_data_xfer_size (1 MiB).
 */
#define TX_LIMIT (4u * 1024 * 1024)
/* Guest memory client A maps without an fd: the device's copies to it
 * go out as DMA_WRITE requests, one per copy of at most a chunk (the
 * default max_data_xfer_size of both sides). */
#define GUEST_IOVA 0x40000000u
#define GUEST_SIZE (16u << 20)
#define CHUNK (1024u * 1024)
#define MAX_COPIES UMDEV_DMA_MAX_PENDING

/* One device and what its region saw. */
struct side {
    struct umdev_dev *dev;
    struct umdev_server *srv;
    char path[108];
    int fd; /* the raw client */
    uint64_t reads, writes;
    uint32_t last; /* value of the last 4-byte write */
    struct side *other;
    uint64_t other_seen; /* the other's reads + writes at our last read */
};

struct fixture {
    char dir[64];
    struct umdev_loop *loop;
    struct kit_log log;
    struct side a, b;
};

static ssize_t
region_access(void *opaque, uint64_t offset, void *buf, size_t count,
              bool is_write)
{
    struct side *s = opaque;
    size_t i;

    if (is_write) {
        s->writes++;
        if (count == 4)
            memcpy(&s->last, buf, 4);
        return (ssize_t)count;
    }
    s->reads++;
    s->other_seen = s->other->reads + s->other->writes;
    for (i = 0; i < count; i++)
        ((uint8_t *)buf)[i] = (uint8_t)(offset + i);
    return (ssize_t)count;
}

static void
side_open(struct fixture *f, struct side *s, const char *name)
{
    struct umdev_dev_info info = { .name = name, .log = &f->log.logger };
    struct umdev_region_desc rd = {
        .size = BIG_REGION,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = region_access,
        .opaque = s,
    };

    assert_int_equal(umdev_dev_create(&info, &s->dev), 0);
    assert_int_equal(umdev_dev_region_add(s->dev, 0, &rd), 0);
    snprintf(s->path, sizeof(s->path), "%s/%s.sock", f->dir, name);
    assert_int_equal(umdev_server_create(s->dev, f->loop, s->path, &s->srv), 0);
    s->fd = kit_peer_connect(s->path, 5000);
    assert_true(s->fd >= 0);
}

/* Run the loop until @fd has something to read. */
static void
turn_until_readable(struct fixture *f, int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int i;

    for (i = 0; i < MAX_TURNS; i++) {
        if (poll(&p, 1, 0) == 1)
            return;
        assert_true(umdev_loop_run_once(f->loop, 10) >= 0);
    }
    fail_msg("no reply after %d loop turns", MAX_TURNS);
}

/* Receive one reply (already readable) and check its header. */
static void
expect_reply(int fd, uint16_t id, uint16_t cmd, size_t len)
{
    static uint8_t buf[BIG + 64];
    struct vfio_user_header h;
    ssize_t n = kit_peer_recv(fd, buf, sizeof(buf), 5000, NULL, NULL);

    assert_int_equal(n, (ssize_t)len);
    memcpy(&h, buf, sizeof(h));
    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.cmd, cmd);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
}

static void
negotiate(struct fixture *f, struct side *s)
{
    uint8_t buf[1024];

    assert_int_equal(kit_peer_send_version(s->fd, 1, NULL), 0);
    turn_until_readable(f, s->fd);
    assert_true(kit_peer_recv(s->fd, buf, sizeof(buf), 5000, NULL, NULL) > 16);
}

static void
send_read(int fd, uint16_t id, uint64_t offset, uint32_t count)
{
    struct vfio_user_region_access a = { offset, 0, count };

    assert_int_equal(kit_peer_send(fd, id, VFIO_USER_REGION_READ, 0, &a,
                                   sizeof(a), NULL, 0, NULL, 0),
                     0);
}

/* A 4-byte read on a negotiated client is answered. */
static void
expect_alive(struct fixture *f, struct side *s, uint16_t id)
{
    send_read(s->fd, id, 0, 4);
    turn_until_readable(f, s->fd);
    expect_reply(s->fd, id, VFIO_USER_REGION_READ,
                 sizeof(struct vfio_user_header) +
                     sizeof(struct vfio_user_region_access) + 4);
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/umdev-fair-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    kit_log_init(&f->log, "fair: ", "UMDEV_FUNC_LOG");
    assert_int_equal(umdev_loop_create(&f->loop), 0);
    f->a.other = &f->b;
    f->b.other = &f->a;
    side_open(f, &f->a, "a");
    side_open(f, &f->b, "b");
    negotiate(f, &f->a);
    negotiate(f, &f->b);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    struct side *sides[] = { &f->a, &f->b };
    size_t i;

    for (i = 0; i < 2; i++) {
        if (sides[i]->fd >= 0)
            close(sides[i]->fd);
        umdev_server_destroy(sides[i]->srv);
        umdev_dev_destroy(sides[i]->dev);
    }
    umdev_loop_destroy(f->loop);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* @n posted 4-byte REGION_WRITEs of BAR0 offset 0 (ids and values 1 to
 * @n) laid out in @out, which holds 64 bytes per message. Return: bytes. */
static size_t
posted_writes(uint8_t *out, uint32_t n)
{
    const struct vfio_user_region_access a = { 0, 0, 4 };
    size_t len = 0, sz = umdev_wire_size(sizeof(a), 4);
    uint32_t i;

    for (i = 1; i <= n; i++) {
        struct vfio_user_header h = {
            .msg_id = (uint16_t)i,
            .cmd = VFIO_USER_REGION_WRITE,
            .msg_size = (uint32_t)sz,
            .flags = VFIO_USER_F_NO_REPLY,
        };

        memcpy(out + len, &h, sizeof(h));
        memcpy(out + len + sizeof(h), &a, sizeof(a));
        memcpy(out + len + sizeof(h) + sizeof(a), &i, 4);
        len += sz;
    }
    return len;
}

/*
 * A flood of posted writes on one connection, then one read on the other:
 * the read is served before the flood is through, after at most one
 * wake-up's worth of it (UMDEV_SERVER_MSGS_PER_WAKE). The whole flood is
 * still applied, in order.
 */
static void
test_flood_does_not_starve(void **state)
{
    struct fixture *f = *state;
    static uint8_t flood[FLOOD * 64];
    struct vfio_user_region_access a = { 0, 0, 4 };
    size_t len = posted_writes(flood, FLOOD);
    int t;

    /* All of it is in the socket before the loop runs. */
    assert_int_equal(
        kit_peer_send_bytes(f->a.fd, flood, len, NULL, 0, NULL, NULL), 0);
    send_read(f->b.fd, 7, 0, 4);
    turn_until_readable(f, f->b.fd);
    expect_reply(f->b.fd, 7, VFIO_USER_REGION_READ,
                 sizeof(struct vfio_user_header) + sizeof(a) + 4);
    assert_int_equal(f->b.reads, 1);
    assert_true(f->b.other_seen <= UMDEV_SERVER_MSGS_PER_WAKE);
    assert_true(f->a.writes < FLOOD);
    for (t = 0; t < MAX_TURNS && f->a.writes < FLOOD; t++)
        assert_true(umdev_loop_run_once(f->loop, 10) >= 0);
    assert_int_equal(f->a.writes, FLOOD);
    assert_int_equal(f->a.last, FLOOD);
    expect_alive(f, &f->a, 9);
    expect_alive(f, &f->b, 9);
}

/*
 * UMDEV_SERVER_MSGS_PER_WAKE exactly: client A's @n posted writes and
 * client B's read are in their sockets when the loop turns, A reported
 * first. With 64 all of A's are handled before B's read; with 65 the
 * 65th waits until B was served (a turn of its own, after the other
 * connections), and is still applied.
 */
static void
msgs_per_wake(struct fixture *f, uint32_t n)
{
    static uint8_t flood[(UMDEV_SERVER_MSGS_PER_WAKE + 1) * 64];
    struct vfio_user_region_access a = { 0, 0, 4 };
    size_t len;
    int t;

    /*
     * A round trip of A last: the turn that takes it looks at B again
     * and finds it idle, so B is no longer on epoll's ready list (a
     * level-triggered fd it reported stays there until the next look)
     * and the two are reported in the order their messages arrive.
     */
    expect_alive(f, &f->a, 5);
    len = posted_writes(flood, n);
    assert_int_equal(
        kit_peer_send_bytes(f->a.fd, flood, len, NULL, 0, NULL, NULL), 0);
    send_read(f->b.fd, 7, 0, 4);
    turn_until_readable(f, f->b.fd);
    expect_reply(f->b.fd, 7, VFIO_USER_REGION_READ,
                 sizeof(struct vfio_user_header) + sizeof(a) + 4);
    /* A's reads: the one of expect_alive(). */
    assert_int_equal(
        f->b.other_seen,
        1 + (n < UMDEV_SERVER_MSGS_PER_WAKE ? n : UMDEV_SERVER_MSGS_PER_WAKE));
    for (t = 0; t < MAX_TURNS && f->a.writes < n; t++)
        assert_true(umdev_loop_run_once(f->loop, 10) >= 0);
    assert_int_equal(f->a.writes, n);
    assert_int_equal(f->a.last, n);
    expect_alive(f, &f->a, 9);
    expect_alive(f, &f->b, 9);
}

static void
test_msgs_per_wake_at_limit(void **state)
{
    msgs_per_wake(*state, UMDEV_SERVER_MSGS_PER_WAKE);
}

static void
test_msgs_per_wake_past_limit(void **state)
{
    msgs_per_wake(*state, UMDEV_SERVER_MSGS_PER_WAKE + 1);
}

struct reader {
    int fd;
    atomic_bool done;
    int err; /* 0, or the reply number (from 1) that was wrong */
};

/* The stalled client wakes up and reads its replies: all of them, whole,
 * in order. */
static void *
read_big_replies(void *arg)
{
    struct reader *r = arg;
    static uint8_t buf[BIG + 64];
    uint32_t i, j;

    for (i = 1; i <= NBIG && r->err == 0; i++) {
        struct vfio_user_header h;
        ssize_t n = kit_peer_recv(r->fd, buf, sizeof(buf), 5000, NULL, NULL);
        size_t data = 16 + sizeof(struct vfio_user_region_access);

        memcpy(&h, buf, sizeof(h));
        if (n != (ssize_t)(data + BIG) || h.msg_id != i ||
            h.flags != VFIO_USER_F_TYPE_REPLY) {
            r->err = (int)i;
            break;
        }
        for (j = 0; j < BIG; j++) {
            if (buf[data + j] != (uint8_t)(i * 4096 + j)) {
                r->err = (int)i;
                break;
            }
        }
    }
    atomic_store(&r->done, true);
    return NULL;
}

/*
 * One client asks for more than its socket holds and stops reading; the
 * other client's request is then served at once, with the first client's
 * requests not read past the reply that did not fit. When the first
 * client reads again, every reply arrives whole and in order, and its
 * connection still works.
 */
static void
test_stalled_reader_does_not_block(void **state)
{
    struct fixture *f = *state;
    struct reader r = { .fd = f->a.fd };
    pthread_t th;
    uint32_t i;
    int t;

    for (i = 1; i <= NBIG; i++)
        send_read(f->a.fd, (uint16_t)i, i * 4096, BIG);
    send_read(f->b.fd, 7, 0, 4);
    turn_until_readable(f, f->b.fd);
    expect_reply(f->b.fd, 7, VFIO_USER_REGION_READ,
                 sizeof(struct vfio_user_header) +
                     sizeof(struct vfio_user_region_access) + 4);
    /* At most the read whose reply did not fit was handled. */
    assert_true(f->b.other_seen <= 1);
    assert_true(umdev_dev_attached(f->a.dev));
    /* More turns while it does not read: it stays paused and attached. */
    for (t = 0; t < 10; t++)
        assert_true(umdev_loop_run_once(f->loop, 0) >= 0);
    assert_true(f->a.reads <= 1);
    assert_true(umdev_dev_attached(f->a.dev));
    expect_alive(f, &f->b, 8);

    assert_int_equal(pthread_create(&th, NULL, read_big_replies, &r), 0);
    for (t = 0; t < MAX_TURNS && !atomic_load(&r.done); t++)
        assert_true(umdev_loop_run_once(f->loop, 10) >= 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(atomic_load(&r.done));
    assert_int_equal(r.err, 0);
    assert_int_equal(f->a.reads, NBIG);
    expect_alive(f, &f->a, 9);
}

/* DMA_WRITE requests and replies a stalled client gets, in order. */
struct expect {
    bool dma;            /* a DMA_WRITE request, else a REGION_READ reply */
    uint16_t id;         /* the reply's msg_id */
    uint64_t addr;       /* DMA_WRITE: where */
    uint32_t count;      /* bytes of data */
    const uint8_t *data; /* DMA_WRITE: what it carries */
};

struct stalled {
    struct fixture *f;
    struct expect exp[MAX_COPIES + 4];
    size_t nexp;
    size_t produced; /* bytes the server made for A since it last read */
    uint8_t src[GUEST_SIZE];
    uint64_t next_iova;
    /* The copies' outcomes. */
    unsigned int done_ok, done_reset, done_other;
    /* The reader thread's. */
    int fd;
    atomic_bool finished;
    int err;      /* 0, or the message number (from 1) that was wrong */
    size_t nread; /* whole messages read */
    bool eof;
};

static void
copy_done(void *opaque, int rc)
{
    struct stalled *st = opaque;

    if (rc == 0)
        st->done_ok++;
    else if (rc == -ECONNRESET)
        st->done_reset++;
    else
        st->done_other++;
}

/* A DMA_WRITE of @count bytes to the next stretch of guest memory: a
 * message of 16 + 16 + @count bytes. Return: the copy's result. */
static int
start_copy(struct stalled *st, uint32_t count)
{
    uint64_t off = st->next_iova - GUEST_IOVA;
    int rc;

    assert_true(off + count <= GUEST_SIZE);
    assert_true(st->nexp < sizeof(st->exp) / sizeof(st->exp[0]));
    rc = umdev_dma_write_async(st->f->a.dev, st->next_iova, st->src + off,
                               count, copy_done, st);
    if (rc == -EINPROGRESS) {
        st->exp[st->nexp++] = (struct expect){ .dma = true,
                                               .addr = st->next_iova,
                                               .count = count,
                                               .data = st->src + off };
        st->produced += 32 + count;
        st->next_iova += count;
    }
    return rc;
}

static bool
tx_queued(struct fixture *f)
{
    return (umdev_dev_events(f->a.dev) & UMDEV_LOOP_OUT) != 0;
}

/* What region_access() reads at @offset. */
static bool
region_bytes_ok(const uint8_t *p, uint64_t offset, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++)
        if (p[i] != (uint8_t)(offset + i))
            return false;
    return true;
}

/* The stalled client reads again: every expected message, whole and in
 * order (answering the DMA_WRITEs as a client does), then, when the
 * server dropped it, the end of the stream. */
static void *
read_stalled(void *arg)
{
    struct stalled *st = arg;
    static uint8_t buf[CHUNK + 64];
    size_t i;

    for (i = 0; i < st->nexp && st->err == 0; i++) {
        const struct expect *e = &st->exp[i];
        struct vfio_user_header h;
        struct vfio_user_dma_access a;
        ssize_t n = kit_peer_recv(st->fd, buf, sizeof(buf), 10000, NULL, NULL);

        if (n == 0) {
            st->eof = true;
            break;
        }
        memcpy(&h, buf, sizeof(h));
        memcpy(&a, buf + sizeof(h), sizeof(a));
        if (n != (ssize_t)(32 + e->count) ||
            h.flags !=
                (e->dma ? VFIO_USER_F_TYPE_COMMAND : VFIO_USER_F_TYPE_REPLY) ||
            h.cmd != (e->dma ? VFIO_USER_DMA_WRITE : VFIO_USER_REGION_READ) ||
            (!e->dma && h.msg_id != e->id) ||
            (e->dma && (a.addr != e->addr || a.count != e->count)) ||
            (e->dma && memcmp(buf + 32, e->data, e->count) != 0) ||
            (!e->dma && !region_bytes_ok(buf + 32, 0, e->count))) {
            st->err = (int)i + 1;
            break;
        }
        st->nread++;
        if (e->dma && kit_peer_send(st->fd, h.msg_id, VFIO_USER_DMA_WRITE,
                                    VFIO_USER_F_TYPE_REPLY, &a, sizeof(a), NULL,
                                    0, NULL, 0) < 0) {
            /* Dropped by the server: its end is what comes next. */
        }
    }
    if (st->err == 0 && !st->eof && st->nread < st->nexp)
        st->err = -1;
    atomic_store(&st->finished, true);
    return NULL;
}

/*
 * Client A maps guest memory without an fd, asks for more than its
 * socket holds and stops reading. Replies alone cannot pile up (the
 * server reads nothing more from a client while output waits for it),
 * but the device's own DMA_WRITE requests can: the test starts copies
 * until exactly TX_LIMIT + @over bytes wait in the server, measuring
 * what the kernel took with SIOCINQ on A's end. At the limit A stays
 * attached and gets every message once it reads again; one byte more
 * detaches A (its pending copies end with ECONNRESET). Client B, on the
 * same loop, is served throughout, and A's socket takes a new client.
 */
static void
stalled_to_limit(struct fixture *f, size_t over)
{
    static struct stalled st;
    struct vfio_user_dma_map map = {
        .argsz = sizeof(map),
        .flags = VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE,
        .addr = GUEST_IOVA,
        .size = GUEST_SIZE,
    };
    pthread_t th;
    size_t queued, need;
    int inq, inq0, t, rc;

    memset(&st, 0, sizeof(st));
    st.f = f;
    st.next_iova = GUEST_IOVA;
    kit_fill_rand(st.src, sizeof(st.src), 7);
    assert_int_equal(kit_peer_send(f->a.fd, 2, VFIO_USER_DMA_MAP, 0, &map,
                                   sizeof(map), NULL, 0, NULL, 0),
                     0);
    turn_until_readable(f, f->a.fd);
    expect_reply(f->a.fd, 2, VFIO_USER_DMA_MAP,
                 sizeof(struct vfio_user_header));

    /* A big read and a small one; A reads nothing from here on. */
    send_read(f->a.fd, 3, 0, BIG);
    send_read(f->a.fd, 4, 0, 4);
    for (t = 0; t < MAX_TURNS && f->a.reads == 0; t++)
        assert_true(umdev_loop_run_once(f->loop, 10) >= 0);
    assert_int_equal(f->a.reads, 1);
    st.exp[st.nexp++] = (struct expect){ .id = 3, .count = BIG };
    st.produced = 32 + BIG;
    /* The device writes guest memory until output waits in the server:
     * from then on the socket takes nothing until A reads. */
    while (!tx_queued(f))
        assert_int_equal(start_copy(&st, CHUNK), -EINPROGRESS);
    assert_int_equal(f->a.reads, 1);
    assert_int_equal(ioctl(f->a.fd, SIOCINQ, &inq), 0);
    assert_true((size_t)inq < st.produced);
    queued = st.produced - (size_t)inq;
    inq0 = inq;
    assert_true(queued <= TX_LIMIT);
    /* Exactly to the limit (and @over past it), in messages of 33 bytes
     * or more. */
    need = TX_LIMIT - queued + over;
    while (need > 0) {
        size_t msg = need < 32 + CHUNK ? need : 32 + CHUNK;

        if (need - msg > 0 && need - msg < 33)
            msg -= 33;
        rc = start_copy(&st, (uint32_t)(msg - 32));
        need -= msg;
        if (need == 0 && over > 0) {
            /* The one that does not fit is not sent (nor expected). */
            assert_int_equal(rc, -ENOBUFS);
        } else {
            assert_int_equal(rc, -EINPROGRESS);
        }
    }
    /* A while later: nothing taken yet (A still does not read). */
    for (t = 0; t < 10; t++)
        assert_true(umdev_loop_run_once(f->loop, 0) >= 0);
    assert_int_equal(ioctl(f->a.fd, SIOCINQ, &inq), 0);
    assert_int_equal(inq, inq0);
    expect_alive(f, &f->b, 8);
    if (over == 0) {
        assert_true(umdev_dev_attached(f->a.dev));
        assert_true(tx_queued(f));
        /* The small read is answered after everything queued before it. */
        st.exp[st.nexp++] = (struct expect){ .id = 4, .count = 4 };
    } else {
        assert_false(umdev_dev_attached(f->a.dev));
        assert_int_equal(st.done_reset, st.nexp - 1);
    }

    st.fd = f->a.fd;
    assert_int_equal(pthread_create(&th, NULL, read_stalled, &st), 0);
    for (t = 0; t < MAX_TURNS && !atomic_load(&st.finished); t++)
        assert_true(umdev_loop_run_once(f->loop, 10) >= 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(atomic_load(&st.finished));
    assert_int_equal(st.err, 0);
    if (over == 0) {
        assert_int_equal(st.nread, st.nexp);
        assert_false(st.eof);
        /* Every copy answered and done. */
        for (t = 0; t < MAX_TURNS && st.done_ok < st.nexp - 2; t++)
            assert_true(umdev_loop_run_once(f->loop, 10) >= 0);
        assert_int_equal(st.done_ok, st.nexp - 2);
        assert_int_equal(st.done_other + st.done_reset, 0);
        assert_int_equal(f->a.reads, 2);
        expect_alive(f, &f->a, 9);
    } else {
        /* What the socket had taken, then the end. */
        assert_true(st.eof);
        assert_true(st.nread < st.nexp);
        close(f->a.fd);
        f->a.fd = kit_peer_connect(f->a.path, 5000);
        assert_true(f->a.fd >= 0);
        negotiate(f, &f->a);
        expect_alive(f, &f->a, 9);
    }
    expect_alive(f, &f->b, 9);
}

static void
test_tx_limit_reached(void **state)
{
    stalled_to_limit(*state, 0);
}

static void
test_tx_limit_passed(void **state)
{
    stalled_to_limit(*state, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flood_does_not_starve, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_msgs_per_wake_at_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_msgs_per_wake_past_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stalled_reader_does_not_block,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_limit_reached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_limit_passed, setup, teardown),
    };

    return cmocka_run_group_tests_name("func.fair", tests, NULL, NULL);
}
