/*
 * Unit tests of device DMA by message (lib/dev/dma.c) and of the bound on
 * what a connection queues while it waits (lib/conn). The test thread is
 * both the server (it runs umdev_dev_process()) and the client (a raw
 * peer on the other end of a socketpair), so it decides exactly when each
 * DMA request is answered: late, out of order, wrongly, never, while
 * client commands keep coming and must be answered meanwhile.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "kit_peer.h"
#include "umdev/dev.h"
#include "umdev/wire.h"

#define MSG_IOVA 0x100000u            /* mapped without an fd */
#define MSG_SIZE 0x100000u            /* 1 MiB */
#define FD_IOVA (MSG_IOVA + MSG_SIZE) /* right after it, with an fd */
#define FD_SIZE 0x1000u
#define XFER 4096u /* the client's max_data_xfer_size */
#define REG_VALUE 0x600dcafeu
#define TIMEOUT_MS 5000

/* One asynchronous copy the test started and how it ended. */
struct copy {
    int calls; /* done() calls: exactly 0 or 1 */
    int rc;
    uint8_t buf[3 * XFER];
};

struct fix {
    struct umdev_dev *dev;
    int peer; /* the client's end */
    uint16_t next_id;
    uint8_t msg[16 + 16 + 3 * XFER];
    uint8_t *fd_mem; /* the fd-backed mapping, as the client sees it */
    int memfd;
};

static void
copy_done(void *opaque, int rc)
{
    struct copy *c = opaque;

    c->calls++;
    c->rc = rc;
}

static ssize_t
reg_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    uint32_t v = REG_VALUE;

    (void)opaque;
    (void)off;
    if (!is_write)
        memcpy(buf, &v, count < 4 ? count : 4);
    return (ssize_t)count;
}

/* Run the server until it has handled everything the client sent. */
static void
serve(struct fix *f)
{
    assert_int_equal(umdev_dev_process(f->dev), 0);
}

/* The next message from the server; its header in *h. */
static size_t
recv_msg(struct fix *f, struct vfio_user_header *h)
{
    ssize_t n =
        kit_peer_recv(f->peer, f->msg, sizeof(f->msg), TIMEOUT_MS, NULL, NULL);

    assert_true(n >= 16);
    memcpy(h, f->msg, sizeof(*h));
    return (size_t)n;
}

static void
expect_quiet(struct fix *f)
{
    assert_int_equal(
        kit_peer_recv(f->peer, f->msg, sizeof(f->msg), 0, NULL, NULL),
        -ETIMEDOUT);
}

/* Send a client command and expect its (non-error) reply now. */
static void
command(struct fix *f, uint16_t cmd, const void *p, size_t len)
{
    struct vfio_user_header h;
    uint16_t id = f->next_id++;

    assert_int_equal(
        kit_peer_send(f->peer, id, cmd, 0, p, len, NULL, 0, NULL, 0), 0);
    serve(f);
    recv_msg(f, &h);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.cmd, cmd);
}

/* A register read, answered while DMA requests are out. */
static void
reg_read_answered(struct fix *f)
{
    struct vfio_user_region_access a = { 0, 0, 4 };
    uint32_t v;

    command(f, VFIO_USER_REGION_READ, &a, sizeof(a));
    memcpy(&v, f->msg + 16 + sizeof(a), 4);
    assert_int_equal(v, REG_VALUE);
}

/* A DMA request the server sent. */
struct req {
    struct vfio_user_header h;
    struct vfio_user_dma_access a;
    uint8_t data[XFER];
};

static void
expect_request(struct fix *f, uint16_t cmd, uint64_t addr, uint64_t count,
               struct req *r)
{
    size_t n = recv_msg(f, &r->h);

    assert_int_equal(r->h.flags, VFIO_USER_F_TYPE_COMMAND);
    assert_int_equal(r->h.cmd, cmd);
    memcpy(&r->a, f->msg + 16, sizeof(r->a));
    assert_int_equal(r->a.addr, addr);
    assert_int_equal(r->a.count, count);
    assert_int_equal(n, 32 + (cmd == VFIO_USER_DMA_WRITE ? count : 0));
    if (cmd == VFIO_USER_DMA_WRITE)
        memcpy(r->data, f->msg + 32, count);
}

/* Answer @r: a DMA_READ with @data (@len bytes), a DMA_WRITE plainly. */
static void
answer(struct fix *f, const struct req *r, const void *data, size_t len)
{
    assert_int_equal(kit_peer_send(f->peer, r->h.msg_id, r->h.cmd,
                                   VFIO_USER_F_TYPE_REPLY, &r->a, sizeof(r->a),
                                   data, len, NULL, 0),
                     0);
}

static void
answer_error(struct fix *f, const struct req *r, uint32_t err)
{
    struct vfio_user_header h = r->h;

    h.flags = VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR;
    h.error = err;
    h.msg_size = 16;
    assert_int_equal(
        kit_peer_send_bytes(f->peer, &h, sizeof(h), NULL, 0, NULL, NULL), 0);
}

static void
pattern(uint8_t *p, size_t n, unsigned int seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed);
}

static int
setup(void **state)
{
    static const struct umdev_region_desc bar0 = {
        .size = 0x1000,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = reg_access,
    };
    struct umdev_dev_info info = { .name = "dma-async" };
    struct vfio_user_dma_map msg_map = { sizeof(msg_map), 3, 0, MSG_IOVA,
                                         MSG_SIZE };
    struct vfio_user_dma_map fd_map = { sizeof(fd_map), 3, 0, FD_IOVA,
                                        FD_SIZE };
    struct vfio_user_header h;
    struct fix *f = calloc(1, sizeof(*f));
    int sv[2];

    assert_non_null(f);
    assert_int_equal(umdev_dev_create(&info, &f->dev), 0);
    assert_int_equal(umdev_dev_region_add(f->dev, 0, &bar0), 0);
    assert_int_equal(kit_peer_pair(sv), 0);
    assert_int_equal(umdev_dev_attach(f->dev, sv[0]), 0);
    f->peer = sv[1];
    f->next_id = 1;
    assert_int_equal(kit_peer_send_version(
                         f->peer, f->next_id++,
                         "{\"capabilities\":{\"max_data_xfer_size\":4096}}"),
                     0);
    serve(f);
    recv_msg(f, &h);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    command(f, VFIO_USER_DMA_MAP, &msg_map, sizeof(msg_map));
    f->memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_true(f->memfd >= 0);
    assert_int_equal(ftruncate(f->memfd, FD_SIZE), 0);
    f->fd_mem =
        mmap(NULL, FD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
    assert_true(f->fd_mem != MAP_FAILED);
    {
        uint16_t id = f->next_id++;

        assert_int_equal(kit_peer_send(f->peer, id, VFIO_USER_DMA_MAP, 0,
                                       &fd_map, sizeof(fd_map), NULL, 0,
                                       &f->memfd, 1),
                         0);
        serve(f);
        recv_msg(f, &h);
        assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
        assert_int_equal(h.msg_id, id);
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;

    umdev_dev_destroy(f->dev);
    close(f->peer);
    munmap(f->fd_mem, FD_SIZE);
    close(f->memfd);
    free(f);
    return 0;
}

/*
 * Three copies out at once; client commands are answered while all wait;
 * the answers come out of order, one copy needs three requests (the
 * client's 4 KiB limit), one ends with a bad answer, one with the
 * client's error.
 */
static void
test_interleaved_out_of_order(void **state)
{
    struct fix *f = *state;
    static struct copy a, b, c, d;
    uint8_t want[3 * XFER], wdata[50];
    struct req ra, rb, rc, rd;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    memset(&d, 0, sizeof(d));
    pattern(wdata, sizeof(wdata), 9);
    assert_int_equal(
        umdev_dma_read_async(f->dev, MSG_IOVA + 8, a.buf, 100, copy_done, &a),
        -EINPROGRESS);
    assert_int_equal(umdev_dma_read_async(f->dev, MSG_IOVA + 0x2000, b.buf,
                                          2 * XFER + 100, copy_done, &b),
                     -EINPROGRESS);
    assert_int_equal(umdev_dma_write_async(f->dev, MSG_IOVA + 0x8000, wdata,
                                           sizeof(wdata), copy_done, &c),
                     -EINPROGRESS);
    assert_int_equal(umdev_dma_read_async(f->dev, MSG_IOVA + 0x9000, d.buf, 16,
                                          copy_done, &d),
                     -EINPROGRESS);
    assert_int_equal(umdev_dma_pending(f->dev), 4);
    expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA + 8, 100, &ra);
    expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA + 0x2000, XFER, &rb);
    expect_request(f, VFIO_USER_DMA_WRITE, MSG_IOVA + 0x8000, sizeof(wdata),
                   &rc);
    assert_memory_equal(rc.data, wdata, sizeof(wdata));
    expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA + 0x9000, 16, &rd);
    expect_quiet(f);

    /* Nothing answered: commands still are. */
    reg_read_answered(f);
    reg_read_answered(f);

    /* The last request answered first, then the second, with a command
     * in between. */
    answer(f, &rc, NULL, 0);
    serve(f);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.rc, 0);
    reg_read_answered(f);
    pattern(want, sizeof(want), 3);
    answer(f, &rb, want, XFER);
    serve(f);
    assert_int_equal(b.calls, 0);
    expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA + 0x2000 + XFER, XFER, &rb);
    reg_read_answered(f);
    answer(f, &rb, want + XFER, XFER);
    serve(f);
    expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA + 0x2000 + 2 * XFER, 100,
                   &rb);
    answer(f, &rb, want + 2 * XFER, 100);
    serve(f);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.rc, 0);
    assert_memory_equal(b.buf, want, 2 * XFER + 100);

    /* A reply of the wrong length ends that copy with EIO; the client's
     * error ends the other with its errno. */
    answer(f, &ra, want, 99);
    answer_error(f, &rd, EFAULT);
    serve(f);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, -EIO);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, -EFAULT);
    assert_int_equal(umdev_dma_pending(f->dev), 0);
    expect_quiet(f);
    /* A late duplicate answers nothing: logged, counted, dropped. */
    {
        struct umdev_dev_stats st0, st1;

        umdev_dev_get_stats(f->dev, &st0);
        answer(f, &rb, want, 100);
        serve(f);
        umdev_dev_get_stats(f->dev, &st1);
        assert_int_equal(st1.errors, st0.errors + 1);
        assert_int_equal(c.calls + b.calls + a.calls + d.calls, 4);
    }
    reg_read_answered(f);
}

/* A range across the fd-less mapping into the fd-backed one: the message
 * part first, then the mapped part copied when its answer arrives. */
static void
test_spanning_mappings(void **state)
{
    struct fix *f = *state;
    static struct copy a;
    uint8_t want[256];
    struct req r;

    memset(&a, 0, sizeof(a));
    pattern(want, 128, 5);
    pattern(f->fd_mem, 128, 6);
    memcpy(want + 128, f->fd_mem, 128);
    assert_int_equal(
        umdev_dma_read_async(f->dev, FD_IOVA - 128, a.buf, 256, copy_done, &a),
        -EINPROGRESS);
    expect_request(f, VFIO_USER_DMA_READ, FD_IOVA - 128, 128, &r);
    answer(f, &r, want, 128);
    serve(f);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, 0);
    assert_memory_equal(a.buf, want, 256);
    /* All mapped: done at once, no callback. */
    memset(&a, 0, sizeof(a));
    assert_int_equal(
        umdev_dma_read_async(f->dev, FD_IOVA, a.buf, 64, copy_done, &a), 0);
    assert_int_equal(a.calls, 0);
    assert_memory_equal(a.buf, f->fd_mem, 64);
    /* The blocking call never waits for the client. */
    assert_int_equal(umdev_dma_read(f->dev, MSG_IOVA, a.buf, 8), -ENOTSUP);
    assert_int_equal(umdev_dma_read(f->dev, FD_IOVA, a.buf, 8), 0);
    /* Holes fail at once. */
    assert_int_equal(umdev_dma_read_async(f->dev, FD_IOVA + FD_SIZE, a.buf, 8,
                                          copy_done, &a),
                     -EFAULT);
    assert_int_equal(a.calls, 0);
    expect_quiet(f);
}

/* UMDEV_DMA_MAX_PENDING requests go out; one more is EBUSY until one is
 * answered. */
static void
test_pending_bound(void **state)
{
    struct fix *f = *state;
    static struct copy c[UMDEV_DMA_MAX_PENDING + 1];
    static struct req r[UMDEV_DMA_MAX_PENDING];
    uint8_t byte = 0x42;
    unsigned int i;

    memset(c, 0, sizeof(c));
    for (i = 0; i < UMDEV_DMA_MAX_PENDING; i++)
        assert_int_equal(umdev_dma_read_async(f->dev, MSG_IOVA + i, c[i].buf, 1,
                                              copy_done, &c[i]),
                         -EINPROGRESS);
    assert_int_equal(
        umdev_dma_read_async(f->dev, MSG_IOVA, c[i].buf, 1, copy_done, &c[i]),
        -EBUSY);
    for (i = 0; i < UMDEV_DMA_MAX_PENDING; i++)
        expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA + i, 1, &r[i]);
    expect_quiet(f);
    reg_read_answered(f);
    answer(f, &r[7], &byte, 1);
    serve(f);
    assert_int_equal(c[7].calls, 1);
    i = UMDEV_DMA_MAX_PENDING;
    assert_int_equal(umdev_dma_read_async(f->dev, MSG_IOVA + 0x100, c[i].buf, 1,
                                          copy_done, &c[i]),
                     -EINPROGRESS);
    /* The rest is failed by the detach. */
    umdev_dev_detach(f->dev);
    for (i = 0; i <= UMDEV_DMA_MAX_PENDING; i++) {
        assert_int_equal(c[i].calls, 1);
        if (i != 7)
            assert_int_equal(c[i].rc, -ECONNRESET);
    }
    assert_int_equal(umdev_dma_pending(f->dev), 0);
    /* No client: nothing to send to. */
    assert_int_equal(
        umdev_dma_read_async(f->dev, MSG_IOVA, c[0].buf, 1, copy_done, &c[0]),
        -EFAULT);
}

/* The byte bound: with the default 1 MiB transfers, eight 1 MiB reads
 * fill UMDEV_DMA_MAX_PENDING_BYTES and a ninth is EBUSY. */
static void
test_pending_byte_bound(void **state)
{
    struct fix *f = *state;
    struct vfio_user_dma_map map = { sizeof(map), 3, 0, 0x40000000,
                                     0x10000000 };
    const size_t mib = 1u << 20;
    uint8_t *buf = malloc(9 * mib);
    struct vfio_user_header h;
    static struct copy c[9];
    int sv[2];
    unsigned int i;

    assert_non_null(buf);
    memset(c, 0, sizeof(c));
    umdev_dev_detach(f->dev);
    close(f->peer);
    assert_int_equal(kit_peer_pair(sv), 0);
    assert_int_equal(umdev_dev_attach(f->dev, sv[0]), 0);
    f->peer = sv[1];
    assert_int_equal(kit_peer_send_version(f->peer, f->next_id++, NULL), 0);
    serve(f);
    recv_msg(f, &h);
    command(f, VFIO_USER_DMA_MAP, &map, sizeof(map));
    for (i = 0; i < 8; i++)
        assert_int_equal(
            umdev_dma_read_async(f->dev, 0x40000000 + (uint64_t)i * mib,
                                 buf + i * mib, mib, copy_done, &c[i]),
            -EINPROGRESS);
    assert_int_equal(umdev_dma_pending(f->dev), 8);
    assert_true(UMDEV_DMA_MAX_PENDING_BYTES <= 8 * mib);
    assert_int_equal(umdev_dma_read_async(f->dev, 0x48000000, buf + 8 * mib, 1,
                                          copy_done, &c[8]),
                     -EBUSY);
    umdev_dev_detach(f->dev);
    for (i = 0; i < 8; i++)
        assert_int_equal(c[i].rc, -ECONNRESET);
    assert_int_equal(c[8].calls, 0);
    free(buf);
}

/* A cancelled copy is never called back and its late answer is dropped
 * quietly; the others go on. */
static void
test_cancel(void **state)
{
    struct fix *f = *state;
    static struct copy a, b;
    uint8_t data[16];
    struct req ra, rb;
    struct umdev_dev_stats st0, st1;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    pattern(data, sizeof(data), 1);
    assert_int_equal(
        umdev_dma_read_async(f->dev, MSG_IOVA, a.buf, 16, copy_done, &a),
        -EINPROGRESS);
    assert_int_equal(
        umdev_dma_read_async(f->dev, MSG_IOVA + 16, b.buf, 16, copy_done, &b),
        -EINPROGRESS);
    expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA, 16, &ra);
    expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA + 16, 16, &rb);
    assert_int_equal(umdev_dma_cancel(f->dev, &a), 1);
    assert_int_equal(umdev_dma_cancel(f->dev, &a), 0);
    assert_int_equal(umdev_dma_pending(f->dev), 2);
    umdev_dev_get_stats(f->dev, &st0);
    answer(f, &ra, data, 16);
    answer(f, &rb, data, 16);
    serve(f);
    umdev_dev_get_stats(f->dev, &st1);
    assert_int_equal(st1.errors, st0.errors);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_memory_equal(b.buf, data, 16);
    assert_int_equal(umdev_dma_pending(f->dev), 0);
    reg_read_answered(f);
}

/* The callback may start the next copy (a device's read-modify-write). */
struct chain {
    struct fix *f;
    uint8_t buf[32];
    int stage, rc;
};

static void
chain_done(void *opaque, int rc)
{
    struct chain *ch = opaque;

    ch->rc = rc;
    if (rc == 0 && ch->stage++ == 0) {
        for (size_t i = 0; i < sizeof(ch->buf); i++)
            ch->buf[i] ^= 0xff;
        ch->rc = umdev_dma_write_async(ch->f->dev, MSG_IOVA, ch->buf,
                                       sizeof(ch->buf), chain_done, ch);
    }
}

static void
test_callback_starts_next(void **state)
{
    struct fix *f = *state;
    struct chain ch = { .f = f };
    uint8_t data[32];
    struct req r;

    pattern(data, sizeof(data), 2);
    assert_int_equal(umdev_dma_read_async(f->dev, MSG_IOVA, ch.buf,
                                          sizeof(ch.buf), chain_done, &ch),
                     -EINPROGRESS);
    expect_request(f, VFIO_USER_DMA_READ, MSG_IOVA, 32, &r);
    answer(f, &r, data, 32);
    serve(f);
    assert_int_equal(ch.rc, -EINPROGRESS);
    expect_request(f, VFIO_USER_DMA_WRITE, MSG_IOVA, 32, &r);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(r.data[i], (uint8_t)~data[i]);
    answer(f, &r, NULL, 0);
    serve(f);
    assert_int_equal(ch.stage, 2);
    assert_int_equal(ch.rc, 0);
}

/* ---- lib/conn: what conn_request() queues is bounded ------------------- */

struct flood {
    int fd;
    unsigned int n;    /* commands before the reply */
    size_t size;       /* bytes of each */
    uint16_t reply_id; /* the reply to send after them */
};

static void *
flood_thread(void *arg)
{
    struct flood *fl = arg;
    static uint8_t body[1u << 20];
    unsigned int i;

    for (i = 0; i < fl->n; i++)
        if (kit_peer_send(fl->fd, (uint16_t)i, VFIO_USER_DMA_READ, 0, NULL, 0,
                          body, fl->size - 16, NULL, 0) < 0)
            return NULL;
    kit_peer_send(fl->fd, fl->reply_id, VFIO_USER_DEVICE_GET_INFO,
                  VFIO_USER_F_TYPE_REPLY, NULL, 0, NULL, 0, NULL, 0);
    return NULL;
}

static int
keep(struct conn *conn, struct conn_msg *msg, void *opaque)
{
    (void)conn;
    (void)msg;
    (void)opaque;
    return 1;
}

/* conn_request() with @n commands of @size bytes arriving first. */
static int
flood_request(unsigned int n, size_t size, size_t *queued)
{
    struct vfio_user_header req = {
        .msg_id = 7,
        .cmd = VFIO_USER_DEVICE_GET_INFO,
        .msg_size = 16,
    };
    struct flood fl = { .n = n, .size = size, .reply_id = 7 };
    struct conn_msg *reply = NULL, *m;
    struct conn *conn;
    pthread_t t;
    int sv[2], rc;

    assert_int_equal(kit_peer_pair(sv), 0);
    assert_int_equal(conn_create(sv[0], NULL, &conn), 0);
    fl.fd = sv[1];
    assert_int_equal(pthread_create(&t, NULL, flood_thread, &fl), 0);
    rc = conn_request(conn, &req, sizeof(req), NULL, 0, TIMEOUT_MS, keep, NULL,
                      &reply);
    *queued = 0;
    if (rc == 0) {
        conn_msg_free(reply);
        while (conn_read(conn, &m) == 0 &&
               (m->hdr.flags & VFIO_USER_F_TYPE_MASK) ==
                   VFIO_USER_F_TYPE_COMMAND) {
            (*queued)++;
            conn_msg_free(m);
        }
    }
    conn_destroy(conn);
    /* The peer may still be sending into a closed socket: it stops. */
    pthread_join(t, NULL);
    close(sv[1]);
    return rc;
}

static void
test_conn_queue_bound(void **state)
{
    size_t queued;

    (void)state;
    assert_int_equal(flood_request(CONN_MAX_QUEUED_MSGS, 32, &queued), 0);
    assert_int_equal(queued, CONN_MAX_QUEUED_MSGS);
    assert_int_equal(flood_request(CONN_MAX_QUEUED_MSGS + 1, 32, &queued),
                     -ENOBUFS);
    /* Bytes: four 1 MiB commands fit exactly, a fifth does not. */
    assert_int_equal(
        flood_request(CONN_MAX_QUEUED_BYTES / (1u << 20), 1u << 20, &queued),
        0);
    assert_int_equal(queued, CONN_MAX_QUEUED_BYTES / (1u << 20));
    assert_int_equal(flood_request(CONN_MAX_QUEUED_BYTES / (1u << 20) + 1,
                                   1u << 20, &queued),
                     -ENOBUFS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_interleaved_out_of_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spanning_mappings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pending_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_byte_bound, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_starts_next, setup,
                                        teardown),
        cmocka_unit_test(test_conn_queue_bound),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
