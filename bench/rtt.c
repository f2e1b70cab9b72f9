/*
 * bench/rtt: what a trapped register access through umdev costs on top of
 * the bare transport. A 4-byte REGION_READ of the test device's SCRATCH
 * register in BAR0 (umdev_client_region_read() against the real server
 * path: an epoll loop in another process calling umdev_dev_process())
 * versus a raw UNIX-socket ping-pong between two processes with the same
 * message sizes (a 32-byte request, a 36-byte reply; the echo side does a
 * blocking read and a write, the client a write and a read). Batches of
 * the two kinds alternate so machine noise hits both. Run for two
 * placements (bench.h): everything on one CPU, and client and servers on
 * different CPUs. bench/dma measures the DMA map table.
 *
 * Every read is verified; any failure makes the exit status non-zero.
 * With no arguments it takes about ten seconds.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "testdev.h"
#include "umdev/client.h"
#include "umdev/dev.h"
#include "umdev/loop.h"
#include "umdev/wire.h"

/* The raw ping-pong moves exactly what a REGION_READ moves: a 32-byte
 * request and a reply of 32 + width bytes (36 for the test device's
 * 4-byte SCRATCH; with --socket the width given). */
#define RAW_REQ_SIZE                                                           \
    (UMDEV_WIRE_HDR_SIZE + sizeof(struct vfio_user_region_access))
#define MAX_WIDTH 8
#define MAX_REPLY_SIZE (RAW_REQ_SIZE + MAX_WIDTH)
_Static_assert(RAW_REQ_SIZE == 32, "request is 16 + 16 bytes");

/* Set before any server forks: every kind moves these many bytes back. */
static size_t raw_reply_size = RAW_REQ_SIZE + sizeof(uint32_t);

#define WARMUP_ROUNDS 1000

struct opts {
    long iters;
    long batches;
    bool breakdown;
    /* --socket: the spec client measures this server instead. */
    const char *socket;
    uint32_t region, width;
    uint64_t offset;
};

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Median of @n values; sorts @v. */
static double
median_i64(int64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_i64);
    return n % 2 ? (double)v[n / 2]
                 : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
}

static int
read_full(int fd, void *buf, size_t len)
{
    size_t have = 0;

    while (have < len) {
        ssize_t n = read(fd, (char *)buf + have, len - have);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 && have == 0 ? 0 : -1;
        have += (size_t)n;
    }
    return 1;
}

static int
write_full(int fd, const void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, (const char *)buf + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Servers. Each runs in a child process until its peer hangs up. */

/* The test device on @fd, served like umdev_server does: an epoll loop
 * that calls umdev_dev_process() when the socket is readable. */
static int
serve_vfio_user(int fd)
{
    struct umdev_loop *loop = NULL;
    struct testdev *td = NULL;
    struct umdev_dev *dev;
    int rc;

    rc = umdev_loop_create(&loop);
    if (rc == 0)
        rc = testdev_create(NULL, &td);
    if (rc < 0) {
        close(fd);
        goto out;
    }
    dev = testdev_dev(td);
    rc = umdev_dev_attach(dev, fd);
    if (rc == 0)
        rc = umdev_loop_add(loop, umdev_dev_client_fd(dev), UMDEV_LOOP_IN,
                            bench_serve_client, dev);
    if (rc == 0)
        rc = umdev_loop_run(loop);
out:
    if (rc < 0)
        fprintf(stderr, "rtt: vfio-user server: %s\n", strerror(-rc));
    testdev_destroy(td);
    umdev_loop_destroy(loop);
    return rc < 0 ? 1 : 0;
}

/* The baseline: a blocking read of the request, a write of the reply
 * (which echoes the request's first word so the client can check it). */
static int
serve_raw(int fd)
{
    uint8_t req[RAW_REQ_SIZE], reply[MAX_REPLY_SIZE] = { 0 };
    int rc;

    for (;;) {
        rc = read_full(fd, req, sizeof(req));
        if (rc <= 0)
            break;
        memcpy(reply, req, sizeof(uint32_t));
        if (write_full(fd, reply, raw_reply_size) < 0) {
            rc = -1;
            break;
        }
    }
    close(fd);
    if (rc < 0)
        fprintf(stderr, "rtt: raw server: short read or write\n");
    return rc < 0 ? 1 : 0;
}

/* The receive side of lib/conn: one recvmsg() of up to 16 KiB with room
 * for 16 descriptors, as rx_fill() issues it. Return: bytes, 0 at EOF,
 * or -1. */
static ssize_t
conn_like_recv(int fd, void *buf, size_t cap, int flags)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * UMDEV_WIRE_MAX_MSG_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf),
    };
    ssize_t n;

    do {
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | flags);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Read exactly @len bytes with conn_like_recv() into a 16 KiB buffer.
 * Return: 1; 0 at EOF; -EAGAIN if nothing was there (non-blocking); -1. */
static int
conn_like_read(int fd, uint8_t *rx, size_t len, int flags)
{
    size_t have = 0;

    while (have < len) {
        ssize_t n = conn_like_recv(fd, rx + have, 16384 - have, flags);

        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = fd, .events = POLLIN };

            if (have == 0)
                return -EAGAIN;
            /* Half a message: the rest is on its way. */
            if (poll(&p, 1, 5000) <= 0)
                return -1;
            continue;
        }
        if (n <= 0)
            return n == 0 && have == 0 ? 0 : -1;
        have += (size_t)n;
    }
    return have == len ? 1 : -1;
}

/*
 * The two --breakdown servers, each the baseline with one piece of the
 * umdev server's syscall pattern added, so the gap can be attributed:
 * raw_epoll (!@msg): epoll_wait() before each blocking read;
 * raw_msg (@msg): exactly the server's syscalls without the library: a
 * non-blocking socket, epoll_wait(), recvmsg() with a control buffer,
 * and one send(2) of the reply (lib/conn gathers a small reply without
 * fds into one buffer and sends that).
 */
static int
serve_epoll(int fd, bool msg)
{
    static uint8_t rx[16384];
    uint8_t reply[MAX_REPLY_SIZE] = { 0 };
    struct epoll_event ev = { .events = EPOLLIN };
    int ep = epoll_create1(EPOLL_CLOEXEC), rc = -1;

    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ||
        (msg && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0))
        goto out;
    for (;;) {
        if (epoll_wait(ep, &ev, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = -1;
            break;
        }
        rc = msg ? conn_like_read(fd, rx, RAW_REQ_SIZE, MSG_DONTWAIT)
                 : read_full(fd, rx, RAW_REQ_SIZE);
        if (rc == -EAGAIN)
            continue;
        if (rc <= 0)
            break;
        memcpy(reply, rx, sizeof(uint32_t));
        if (msg ? send(fd, reply, raw_reply_size,
                       MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)raw_reply_size
                : write_full(fd, reply, raw_reply_size) < 0) {
            rc = -1;
            break;
        }
    }
out:
    if (ep >= 0)
        close(ep);
    close(fd);
    if (rc < 0)
        fprintf(stderr, "rtt: %s server failed\n",
                msg ? "raw_msg" : "raw_epoll");
    return rc < 0 ? 1 : 0;
}

static int
serve_raw_epoll(int fd)
{
    return serve_epoll(fd, false);
}

static int
serve_raw_msg(int fd)
{
    return serve_epoll(fd, true);
}

/* Fork a server on @fd pinned to @cpu. The child closes every other
 * socket end in @all (a copy left open there would keep a peer from ever
 * seeing end-of-file). Return: its pid, or -1. */
static pid_t
spawn(int (*serve)(int), int fd, const int *all, size_t nall, int cpu)
{
    pid_t pid;
    size_t i;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "rtt: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Never outlive the benchmark, whatever happens to it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (i = 0; i < nall; i++)
            if (all[i] >= 0 && all[i] != fd)
                close(all[i]);
        if (bench_pin_cpu(cpu) < 0)
            _exit(1);
        _exit(serve(fd));
    }
    return pid;
}

/* Wait for a server; @ru (may be NULL) gets the CPU time it used. */
static int
reap(pid_t pid, const char *what, struct rusage *ru)
{
    int status;

    if (pid <= 0)
        return 0;
    while (wait4(pid, &status, 0, ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "rtt: waitpid %s: %s\n", what, strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    fprintf(stderr, "rtt: %s server failed (status 0x%x)\n", what, status);
    return -1;
}

/* The kinds of round trip, each against its own server process. */

enum kind_id { K_RAW, K_VFIO_USER, K_SPEC, K_RAW_EPOLL, K_RAW_MSG, K_MAX };

struct kind {
    const char *name;
    int (*serve)(int fd);
};

static const struct kind kinds[K_MAX] = {
    [K_RAW] = { "raw", serve_raw },
    [K_VFIO_USER] = { "vfio_user", serve_vfio_user },
    [K_SPEC] = { "spec_client", serve_vfio_user },
    [K_RAW_EPOLL] = { "raw_epoll", serve_raw_epoll },
    [K_RAW_MSG] = { "raw_msg", serve_raw_msg },
};

struct spec_client;

struct rtt_ctx {
    struct umdev_client *c;
    struct spec_client *spec;
    int fd[K_MAX];    /* client ends of the raw kinds */
    uint32_t scratch; /* what SCRATCH holds */
    uint32_t seq;     /* raw request counter */
};

/* @t gets n + 1 timestamps: round trip i took t[i+1] - t[i]. */
static int
batch_vfio_user(struct rtt_ctx *x, long n, int64_t *t)
{
    long i;
    int rc;

    t[0] = bench_now_ns();
    for (i = 0; i < n; i++) {
        uint32_t v = 0;

        rc = umdev_client_region_read(x->c, UMDEV_PCI_BAR0_REGION,
                                      TESTDEV_REG_SCRATCH, &v, sizeof(v));
        if (rc < 0) {
            fprintf(stderr, "rtt: REGION_READ failed: %s\n", strerror(-rc));
            return -1;
        }
        if (v != x->scratch) {
            fprintf(stderr,
                    "rtt: REGION_READ returned 0x%08x, expected 0x%08x\n", v,
                    x->scratch);
            return -1;
        }
        t[i + 1] = bench_now_ns();
    }
    return 0;
}

/* The raw client: write the request, read the reply. With @msg, the
 * client's syscalls of lib/conn instead: send(MSG_DONTWAIT) and a
 * blocking recvmsg() with a control buffer. */
static int
batch_raw(struct rtt_ctx *x, int fd, bool msg, long n, int64_t *t)
{
    static uint8_t rx[16384];
    uint8_t req[RAW_REQ_SIZE] = { 0 }, reply[MAX_REPLY_SIZE];
    long i;

    t[0] = bench_now_ns();
    for (i = 0; i < n; i++) {
        uint32_t seq = ++x->seq, got;
        int rc;

        memcpy(req, &seq, sizeof(seq));
        if (msg) {
            rc = send(fd, req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT) ==
                         (ssize_t)sizeof(req)
                     ? conn_like_read(fd, rx, raw_reply_size, 0)
                     : -1;
            memcpy(reply, rx, raw_reply_size);
        } else {
            rc = write_full(fd, req, sizeof(req)) < 0
                     ? -1
                     : read_full(fd, reply, raw_reply_size);
        }
        if (rc <= 0) {
            fprintf(stderr, "rtt: %s ping-pong failed: %s\n",
                    msg ? "raw_msg" : "raw",
                    rc == 0 ? "server hung up" : strerror(errno));
            return -1;
        }
        memcpy(&got, reply, sizeof(got));
        if (got != seq) {
            fprintf(stderr, "rtt: raw reply %u, expected %u\n", got, seq);
            return -1;
        }
        t[i + 1] = bench_now_ns();
    }
    return 0;
}

/*
 * The spec client: what an independent client written from
 * docs/interop/vfio-user.rst does, with the raw client's syscalls (one
 * write() of a prebuilt request, one read() of the reply), so that its
 * ratio to raw is the server's cost alone. This is the figure to set
 * beside one measured for another server (libvfio-user's samples, say)
 * with a client of one's own: umdev's client library is not in it.
 */
struct spec_client {
    int fd;
    uint16_t next_id;
    uint32_t region, width;
    uint64_t offset;
    uint8_t req[RAW_REQ_SIZE]; /* the REGION_READ; only msg_id changes */
    uint8_t expect[MAX_WIDTH]; /* what every read must return */
};

/* Read one whole message of at most @cap bytes (one read() when the
 * peer sent it in one piece, as servers do). Return: its size, 0 at EOF
 * before any byte, -1 with errno (EPROTO: not a message that fits). */
static ssize_t
spec_read_msg(int fd, uint8_t *buf, size_t cap)
{
    size_t have = 0, want = UMDEV_WIRE_HDR_SIZE;

    while (have < want) {
        ssize_t n = read(fd, buf + have, cap - have);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 && have == 0 ? 0 : -1;
        have += (size_t)n;
        if (have >= UMDEV_WIRE_HDR_SIZE) {
            struct vfio_user_header h;

            memcpy(&h, buf, sizeof(h));
            if (h.msg_size < UMDEV_WIRE_HDR_SIZE || h.msg_size > cap) {
                errno = EPROTO;
                return -1;
            }
            want = h.msg_size;
        }
    }
    /* A ping-pong peer sends nothing behind its reply. */
    if (have != want) {
        errno = EPROTO;
        return -1;
    }
    return (ssize_t)have;
}

/* Is @buf (@n bytes) the successful reply to command @cmd with @id? */
static bool
spec_reply_ok(const uint8_t *buf, size_t n, uint16_t id, uint16_t cmd)
{
    struct vfio_user_header h;

    if (n < sizeof(h))
        return false;
    memcpy(&h, buf, sizeof(h));
    return h.msg_id == id && h.cmd == cmd && h.msg_size == n &&
           (h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY &&
           !(h.flags & VFIO_USER_F_ERROR);
}

/* VERSION 0.1 with the smallest capabilities object. */
static int
spec_negotiate(struct spec_client *c)
{
    static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":1}}";
    uint8_t msg[UMDEV_WIRE_HDR_SIZE + sizeof(struct vfio_user_version) +
                sizeof(caps)];
    static uint8_t reply[UMDEV_WIRE_HDR_SIZE +
                         sizeof(struct vfio_user_version) +
                         UMDEV_WIRE_MAX_VERSION_JSON];
    struct vfio_user_header h = {
        .msg_id = c->next_id++,
        .cmd = VFIO_USER_VERSION,
        .msg_size = sizeof(msg),
    };
    struct vfio_user_version v = { .major = 0, .minor = 1 };
    ssize_t n;

    memcpy(msg, &h, sizeof(h));
    memcpy(msg + sizeof(h), &v, sizeof(v));
    memcpy(msg + sizeof(h) + sizeof(v), caps, sizeof(caps));
    if (write_full(c->fd, msg, sizeof(msg)) < 0)
        return -1;
    n = spec_read_msg(c->fd, reply, sizeof(reply));
    if (n <= 0 ||
        !spec_reply_ok(reply, (size_t)n, h.msg_id, VFIO_USER_VERSION) ||
        (size_t)n < sizeof(h) + sizeof(v)) {
        fprintf(stderr, "rtt: spec client: VERSION refused or failed\n");
        return -1;
    }
    memcpy(&v, reply + sizeof(h), sizeof(v));
    if (v.major != 0) {
        fprintf(stderr, "rtt: spec client: server speaks %u.%u\n", v.major,
                v.minor);
        return -1;
    }
    return 0;
}

/* One REGION_READ or REGION_WRITE of c->width bytes, untimed and built
 * from scratch; a read stores the value in @val. */
static int
spec_access(struct spec_client *c, bool write, uint8_t *val)
{
    uint8_t msg[MAX_REPLY_SIZE], reply[MAX_REPLY_SIZE];
    struct vfio_user_header h = {
        .msg_id = c->next_id++,
        .cmd = write ? VFIO_USER_REGION_WRITE : VFIO_USER_REGION_READ,
        .msg_size = RAW_REQ_SIZE + (write ? c->width : 0),
    };
    struct vfio_user_region_access a = {
        .offset = c->offset,
        .region = c->region,
        .count = c->width,
    };
    size_t want = RAW_REQ_SIZE + (write ? 0 : c->width);
    ssize_t n;

    memcpy(msg, &h, sizeof(h));
    memcpy(msg + sizeof(h), &a, sizeof(a));
    if (write)
        memcpy(msg + RAW_REQ_SIZE, val, c->width);
    if (write_full(c->fd, msg, h.msg_size) < 0)
        return -1;
    n = spec_read_msg(c->fd, reply, sizeof(reply));
    if (n != (ssize_t)want || !spec_reply_ok(reply, want, h.msg_id, h.cmd)) {
        fprintf(stderr,
                "rtt: spec client: REGION_%s of region %u offset "
                "0x%" PRIx64 " width %u failed\n",
                write ? "WRITE" : "READ", c->region, c->offset, c->width);
        return -1;
    }
    if (!write)
        memcpy(val, reply + RAW_REQ_SIZE, c->width);
    return 0;
}

/* Negotiate on @fd and prebuild the timed request. */
static int
spec_init(struct spec_client *c, int fd, uint32_t region, uint64_t offset,
          uint32_t width)
{
    struct vfio_user_header h = {
        .cmd = VFIO_USER_REGION_READ,
        .msg_size = RAW_REQ_SIZE,
    };
    struct vfio_user_region_access a = {
        .offset = offset,
        .region = region,
        .count = width,
    };

    c->fd = fd;
    c->region = region;
    c->offset = offset;
    c->width = width;
    memcpy(c->req, &h, sizeof(h));
    memcpy(c->req + sizeof(h), &a, sizeof(a));
    return spec_negotiate(c);
}

static int
batch_spec(struct spec_client *c, long n, int64_t *t)
{
    uint8_t reply[MAX_REPLY_SIZE];
    size_t want = RAW_REQ_SIZE + c->width;
    long i;

    t[0] = bench_now_ns();
    for (i = 0; i < n; i++) {
        uint16_t id = c->next_id++;
        ssize_t got;

        memcpy(c->req, &id, sizeof(id));
        if (write_full(c->fd, c->req, sizeof(c->req)) < 0) {
            fprintf(stderr, "rtt: spec client: write: %s\n", strerror(errno));
            return -1;
        }
        got = spec_read_msg(c->fd, reply, sizeof(reply));
        if (got != (ssize_t)want ||
            !spec_reply_ok(reply, want, id, VFIO_USER_REGION_READ) ||
            memcmp(reply + sizeof(struct vfio_user_header),
                   c->req + sizeof(struct vfio_user_header),
                   sizeof(struct vfio_user_region_access)) != 0 ||
            memcmp(reply + RAW_REQ_SIZE, c->expect, c->width) != 0) {
            fprintf(stderr, "rtt: spec client: REGION_READ %u: %s\n", id,
                    got < 0 ? strerror(errno) : "wrong reply");
            return -1;
        }
        t[i + 1] = bench_now_ns();
    }
    return 0;
}

static int
run_batch(struct rtt_ctx *x, enum kind_id k, long n, int64_t *t)
{
    switch (k) {
    case K_VFIO_USER:
        return batch_vfio_user(x, n, t);
    case K_SPEC:
        return batch_spec(x->spec, n, t);
    case K_RAW_MSG:
        return batch_raw(x, x->fd[k], true, n, t);
    default:
        return batch_raw(x, x->fd[k], false, n, t);
    }
}

static int64_t
thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double
tv_us(const struct timeval *tv)
{
    return (double)tv->tv_sec * 1e6 + (double)tv->tv_usec;
}

/* Give SCRATCH a new value (untimed) so every batch checks fresh data:
 * through the library client's server and the spec client's (each kind
 * has a device of its own). An external server's register is read once
 * at the start and must keep its value. */
static int
set_scratch(struct rtt_ctx *x, uint32_t v)
{
    int rc =
        x->c == NULL
            ? 0
            : umdev_client_region_write(x->c, UMDEV_PCI_BAR0_REGION,
                                        TESTDEV_REG_SCRATCH, &v, sizeof(v));

    if (rc < 0) {
        fprintf(stderr, "rtt: REGION_WRITE failed: %s\n", strerror(-rc));
        return -1;
    }
    if (x->c != NULL && x->spec != NULL) {
        memcpy(x->spec->expect, &v, sizeof(v));
        if (spec_access(x->spec, true, x->spec->expect) < 0)
            return -1;
    }
    x->scratch = v;
    return 0;
}

struct series {
    int64_t *samples; /* every round trip, ns */
    int64_t *batch;   /* per batch: total ns (mean = total / iters) */
    /* CPU time the client thread spent in this kind's batches. */
    int64_t cpu_ns;
    struct rusage server;           /* the server process's, at its exit */
    double batch_us, sample_us;     /* medians */
    double p90_us, p99_us, p999_us; /* of the single round trips */
    double min_us, max_us;          /* of the batch means */
};

/* A batch of kind @k, timed and with the client's CPU accounted. */
static int
timed_batch(struct rtt_ctx *x, enum kind_id k, long n, int64_t *t,
            struct series *s)
{
    int64_t c0 = thread_cpu_ns();
    int rc = run_batch(x, k, n, t);

    s->cpu_ns += thread_cpu_ns() - c0;
    return rc;
}

static void
record(struct series *s, long b, long iters, const int64_t *t)
{
    long i;

    for (i = 0; i < iters; i++)
        s->samples[b * iters + i] = t[i + 1] - t[i];
    s->batch[b] = t[iters] - t[0];
}

static void
summarize(struct series *s, long batches, long iters)
{
    long b;

    s->min_us = 1e18;
    s->max_us = 0;
    for (b = 0; b < batches; b++) {
        double v = (double)s->batch[b] / (double)iters / 1e3;

        s->min_us = v < s->min_us ? v : s->min_us;
        s->max_us = v > s->max_us ? v : s->max_us;
    }
    s->batch_us = median_i64(s->batch, (size_t)batches) / (double)iters / 1e3;
    s->sample_us =
        median_i64(s->samples, (size_t)batches * (size_t)iters) / 1e3;
    /* median_i64() sorted the samples. */
    s->p90_us =
        (double)s->samples[(size_t)batches * (size_t)iters * 9 / 10] / 1e3;
    s->p99_us =
        (double)s->samples[(size_t)batches * (size_t)iters * 99 / 100] / 1e3;
    s->p999_us =
        (double)s->samples[(size_t)batches * (size_t)iters * 999 / 1000] / 1e3;
}

/* Per kind: wall time per round trip (median of batch means), the
 * client thread's CPU per round trip, the server's CPU per round trip
 * (over its whole life, warm-up included: @served round trips). */
static void
print_breakdown(const struct series *ser, const struct opts *o, size_t served)
{
    static const char *const what[K_MAX] = {
        [K_RAW] = "read/write echo",
        [K_RAW_EPOLL] = "+ epoll_wait in the server",
        [K_RAW_MSG] = "+ lib/conn's send/recvmsg calls, both sides",
        [K_SPEC] = "+ the server library: a spec client's REGION_READ",
        [K_VFIO_USER] = "+ the client library: the real REGION_READ",
    };
    static const enum kind_id order[] = { K_RAW, K_RAW_EPOLL, K_RAW_MSG, K_SPEC,
                                          K_VFIO_USER };
    size_t n = (size_t)o->batches * (size_t)o->iters, i;

    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const struct series *s = &ser[order[i]];
        /* utime + stime is the exact runtime; only the split between
         * the two is sampled, so print the sum. */
        double server_us =
            (tv_us(&s->server.ru_utime) + tv_us(&s->server.ru_stime)) /
            (double)served;

        printf("    breakdown %-11s wall_us=%.2f client_cpu_us=%.2f "
               "server_cpu_us=%.2f  %s\n",
               kinds[order[i]].name, s->batch_us,
               (double)s->cpu_ns / (double)n / 1e3, server_us, what[order[i]]);
    }
    fflush(stdout);
}

/* Connect to the vfio-user server at @path. Return: the fd, or -1. */
static int
connect_socket(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "rtt: socket path too long: %s\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        fprintf(stderr, "rtt: connect %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/*
 * An external server runs where its owner started it; for the placement
 * to mean anything, move every thread of the peer on @fd to @cpu, and
 * keep the old masks in @saved (up to @max threads) to put back.
 * Return: threads moved, or -1 after a message.
 */
struct saved_affinity {
    pid_t tid;
    cpu_set_t mask;
};

static int
pin_peer(int fd, int cpu, struct saved_affinity *saved, int max)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);
    char dir[64];
    struct dirent *d;
    cpu_set_t one;
    DIR *tasks;
    int n = 0;

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.pid <= 0) {
        fprintf(stderr, "rtt: SO_PEERCRED: %s\n", strerror(errno));
        return -1;
    }
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)cr.pid);
    tasks = opendir(dir);
    if (tasks == NULL) {
        fprintf(stderr, "rtt: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    while ((d = readdir(tasks)) != NULL && n < max) {
        pid_t tid = (pid_t)atoi(d->d_name);

        if (tid <= 0 ||
            sched_getaffinity(tid, sizeof(saved[n].mask), &saved[n].mask) < 0)
            continue;
        if (sched_setaffinity(tid, sizeof(one), &one) < 0) {
            fprintf(stderr, "rtt: pinning the server's thread %d: %s\n",
                    (int)tid, strerror(errno));
            n = -1;
            break;
        }
        saved[n++].tid = tid;
    }
    closedir(tasks);
    return n;
}

static void
unpin_peer(const struct saved_affinity *saved, int n)
{
    int i;

    for (i = 0; i < n; i++)
        sched_setaffinity(saved[i].tid, sizeof(saved[i].mask), &saved[i].mask);
}

#define MAX_PEER_THREADS 64

static int
run_rtt(const struct bench_placement *pl, const struct opts *o)
{
    size_t n = (size_t)o->batches * (size_t)o->iters;
    struct saved_affinity peer[MAX_PEER_THREADS];
    struct series ser[K_MAX] = { 0 };
    struct spec_client spec = { .fd = -1 };
    struct rtt_ctx x = { 0 };
    bool on[K_MAX] = { false };
    int sv[K_MAX][2], order[K_MAX];
    int rc = -1, r, k, nk = 0, npeer = 0;
    pid_t pid[K_MAX];
    int64_t *t = NULL;
    long b;

    /* Which kinds run: raw always; the library client and spec client
     * against forked test devices, or the spec client alone against
     * --socket; the breakdown's two on request. */
    on[K_RAW] = on[K_SPEC] = true;
    on[K_VFIO_USER] = o->socket == NULL;
    on[K_RAW_EPOLL] = on[K_RAW_MSG] = o->breakdown;
    for (k = 0; k < K_MAX; k++) {
        pid[k] = -1;
        sv[k][0] = sv[k][1] = x.fd[k] = -1;
        if (on[k])
            order[nk++] = k;
    }
    for (r = 0; r < nk; r++) {
        k = order[r];
        ser[k].samples = calloc(n, sizeof(int64_t));
        ser[k].batch = calloc((size_t)o->batches, sizeof(int64_t));
        if (!ser[k].samples || !ser[k].batch)
            break;
    }
    /* Timestamps for one batch or the warm-up, whichever is longer. */
    t = calloc((size_t)(o->iters > WARMUP_ROUNDS ? o->iters : WARMUP_ROUNDS) +
                   1,
               sizeof(int64_t));
    if (r < nk || t == NULL) {
        fprintf(stderr, "rtt: out of memory for %zu samples\n", n);
        goto out;
    }
    for (r = 0; r < nk; r++) {
        k = order[r];
        if (k == K_SPEC && o->socket != NULL)
            continue;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[k]) < 0) {
            fprintf(stderr, "rtt: socketpair: %s\n", strerror(errno));
            goto out;
        }
    }
    for (r = 0; r < nk; r++) {
        k = order[r];
        if (sv[k][0] < 0)
            continue;
        pid[k] = spawn(kinds[k].serve, sv[k][0], &sv[0][0], 2 * K_MAX,
                       pl->server_cpu);
        if (pid[k] < 0)
            goto out;
    }
    for (k = 0; k < K_MAX; k++) {
        if (sv[k][0] >= 0)
            close(sv[k][0]);
        sv[k][0] = -1;
    }
    if (bench_pin_cpu(pl->client_cpu) < 0)
        goto out;
    if (on[K_VFIO_USER]) {
        r = umdev_client_attach_fd(sv[K_VFIO_USER][1], NULL, &x.c);
        sv[K_VFIO_USER][1] = -1;
        if (r < 0) {
            fprintf(stderr, "rtt: client attach: %s\n", strerror(-r));
            goto out;
        }
    }
    for (k = 0; k < K_MAX; k++) {
        x.fd[k] = sv[k][1];
        sv[k][1] = -1;
    }
    if (o->socket != NULL) {
        x.fd[K_SPEC] = connect_socket(o->socket);
        if (x.fd[K_SPEC] < 0)
            goto out;
        npeer = pin_peer(x.fd[K_SPEC], pl->server_cpu, peer, MAX_PEER_THREADS);
        if (npeer < 0)
            goto out;
    }
    x.spec = &spec;
    if (spec_init(&spec, x.fd[K_SPEC],
                  o->socket ? o->region : UMDEV_PCI_BAR0_REGION,
                  o->socket ? o->offset : TESTDEV_REG_SCRATCH,
                  o->socket ? o->width : sizeof(uint32_t)) < 0)
        goto out;
    if (o->socket != NULL && spec_access(&spec, false, spec.expect) < 0)
        goto out;
    if (o->breakdown) {
        /* The client conn's blocking reads carry a timeout; so do ours. */
        struct timeval tv = { .tv_sec = 5 };

        if (setsockopt(x.fd[K_RAW_MSG], SOL_SOCKET, SO_RCVTIMEO, &tv,
                       sizeof(tv)) < 0) {
            fprintf(stderr, "rtt: SO_RCVTIMEO: %s\n", strerror(errno));
            goto out;
        }
    }

    if (set_scratch(&x, 0x5ca1ab1e) < 0)
        goto out;
    for (r = 0; r < nk; r++)
        if (run_batch(&x, order[r], WARMUP_ROUNDS, t) < 0)
            goto out;
    for (b = 0; b < o->batches; b++) {
        if (set_scratch(&x, 0x5ca1ab1eu ^ (uint32_t)(b * 0x9e3779b9u)) < 0)
            goto out;
        /* Rotate which kind goes first, so none always follows the same
         * other kind's cache and scheduler state. */
        for (r = 0; r < nk; r++) {
            k = order[(b + r) % nk];
            if (timed_batch(&x, k, o->iters, t, &ser[k]) < 0)
                goto out;
            record(&ser[k], b, o->iters, t);
        }
    }
    for (r = 0; r < nk; r++)
        summarize(&ser[order[r]], o->batches, o->iters);
    if (o->socket == NULL) {
        printf("rtt placement=%s client_cpu=%d server_cpu=%d raw_us=%.2f "
               "vfio_user_us=%.2f ratio=%.3f spec_client_us=%.2f "
               "spec_ratio=%.3f samples=%zu\n",
               pl->name, pl->client_cpu, pl->server_cpu, ser[K_RAW].batch_us,
               ser[K_VFIO_USER].batch_us,
               ser[K_VFIO_USER].batch_us / ser[K_RAW].batch_us,
               ser[K_SPEC].batch_us, ser[K_SPEC].batch_us / ser[K_RAW].batch_us,
               n);
    } else {
        printf("rtt placement=%s client_cpu=%d server_cpu=%d "
               "server_threads=%d socket=%s region=%u offset=0x%" PRIx64
               " width=%u raw_us=%.2f spec_client_us=%.2f spec_ratio=%.3f "
               "samples=%zu\n",
               pl->name, pl->client_cpu, pl->server_cpu, npeer, o->socket,
               o->region, o->offset, o->width, ser[K_RAW].batch_us,
               ser[K_SPEC].batch_us, ser[K_SPEC].batch_us / ser[K_RAW].batch_us,
               n);
    }
    printf("    median of %ld batch means of %ld round trips; batch means "
           "raw %.2f..%.2f us, spec_client %.2f..%.2f us",
           o->batches, o->iters, ser[K_RAW].min_us, ser[K_RAW].max_us,
           ser[K_SPEC].min_us, ser[K_SPEC].max_us);
    if (on[K_VFIO_USER])
        printf(", vfio_user %.2f..%.2f us", ser[K_VFIO_USER].min_us,
               ser[K_VFIO_USER].max_us);
    printf("\n    median single round trip: raw_us=%.2f spec_client_us=%.2f "
           "spec_ratio=%.3f",
           ser[K_RAW].sample_us, ser[K_SPEC].sample_us,
           ser[K_SPEC].sample_us / ser[K_RAW].sample_us);
    if (on[K_VFIO_USER])
        printf(" vfio_user_us=%.2f ratio=%.3f", ser[K_VFIO_USER].sample_us,
               ser[K_VFIO_USER].sample_us / ser[K_RAW].sample_us);
    printf("\n");
    for (r = 0; r < nk; r++) {
        const struct series *q = &ser[order[r]];

        printf("    tail %-11s p50=%.2f p90=%.2f p99=%.2f p99.9=%.2f us\n",
               kinds[order[r]].name, q->sample_us, q->p90_us, q->p99_us,
               q->p999_us);
    }
    fflush(stdout);
    rc = 0;
out:
    unpin_peer(peer, npeer);
    /* Hanging up ends every server; then their exit status counts. */
    umdev_client_destroy(x.c);
    for (k = 0; k < K_MAX; k++) {
        if (x.fd[k] >= 0)
            close(x.fd[k]);
        if (sv[k][0] >= 0)
            close(sv[k][0]);
        if (sv[k][1] >= 0)
            close(sv[k][1]);
    }
    for (k = 0; k < K_MAX; k++)
        if (reap(pid[k], kinds[k].name, &ser[k].server) < 0)
            rc = -1;
    if (rc == 0 && o->breakdown)
        print_breakdown(ser, o, (size_t)WARMUP_ROUNDS + n);
    for (k = 0; k < K_MAX; k++) {
        free(ser[k].samples);
        free(ser[k].batch);
    }
    free(t);
    return rc;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: rtt [--iters N] [--batches N] "
            "[--placement same|split|both] [--breakdown]\n"
            "           [--socket PATH [--region N] [--offset X] "
            "[--width 1|2|4|8]]\n"
            "\n"
            "  --iters N      round trips per batch and kind (default 2000)\n"
            "  --batches N    batches per kind, alternating (default 20)\n"
            "  --placement P  same: client and servers on one CPU; split:\n"
            "                 client on one CPU, servers on another;\n"
            "                 both (default)\n"
            "  --breakdown    also time the raw ping-pong with the server's\n"
            "                 epoll_wait, then with lib/conn's exact\n"
            "                 send/recvmsg calls, to attribute the gap\n"
            "  --socket PATH  time the spec client against the vfio-user\n"
            "                 server listening there (umdev-serve, an\n"
            "                 umdevd instance) instead of the test device;\n"
            "                 its threads are moved to the server CPU for\n"
            "                 the run. It reads --width bytes (default 4)\n"
            "                 at --offset (default 0) of --region (default\n"
            "                 0, BAR0), a register that must keep its value\n"
            "(The DMA map/lookup benchmark is bench/dma.)\n");
}

/* rtt's own options (bench_opt_fn). */
static int
take_opt(int ch, const char *arg, void *opaque)
{
    struct opts *o = opaque;

    switch (ch) {
    case 'i':
        if (bench_parse_count(arg, 10000000, &o->iters))
            return 0;
        fprintf(stderr, "rtt: bad --iters '%s'\n", arg);
        return 2;
    case 'b':
        if (bench_parse_count(arg, 100000, &o->batches))
            return 0;
        fprintf(stderr, "rtt: bad --batches '%s'\n", arg);
        return 2;
    case 's':
        o->socket = arg;
        return 0;
    case 'r':
    case 'o':
    case 'w': {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(arg, &end, 0);
        if (errno == 0 && end != arg && *end == '\0' && arg[0] != '-') {
            if (ch == 'o') {
                o->offset = v;
                return 0;
            }
            if (ch == 'r' && v < UMDEV_MAX_REGIONS) {
                o->region = (uint32_t)v;
                return 0;
            }
            if (ch == 'w' && (v == 1 || v == 2 || v == 4 || v == 8)) {
                o->width = (uint32_t)v;
                return 0;
            }
        }
        fprintf(stderr, "rtt: bad --%s '%s'\n",
                ch == 'o'   ? "offset"
                : ch == 'r' ? "region"
                            : "width",
                arg);
        return 2;
    }
    default: /* 'B' */
        o->breakdown = true;
        return 0;
    }
}

static int
run_placement(const struct bench_placement *pl, void *opaque)
{
    return run_rtt(pl, opaque);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "iters", required_argument, NULL, 'i' },
        { "batches", required_argument, NULL, 'b' },
        { "breakdown", no_argument, NULL, 'B' },
        { "socket", required_argument, NULL, 's' },
        { "region", required_argument, NULL, 'r' },
        { "offset", required_argument, NULL, 'o' },
        { "width", required_argument, NULL, 'w' },
        { NULL, 0, NULL, 0 },
    };
    struct opts o = { .iters = 2000, .batches = 20, .width = 4 };
    struct bench_cpus cpus;
    int rc;

    bench_prog = "rtt";
    if (bench_cpus_init(&cpus) < 0)
        return 1;
    rc = bench_parse_args(argc, argv, longopts, usage, take_opt, &o, &cpus);
    if (rc >= 0)
        return rc;
    if ((size_t)o.iters * (size_t)o.batches > 100000000u) {
        fprintf(stderr, "rtt: --iters x --batches is over 1e8 samples\n");
        return 2;
    }
    if (o.socket != NULL && o.breakdown) {
        fprintf(stderr, "rtt: --breakdown needs the built-in server (it "
                        "reads the server's CPU time); drop --socket\n");
        return 2;
    }
    if (o.socket == NULL && (o.region != 0 || o.offset != 0 || o.width != 4)) {
        fprintf(stderr, "rtt: --region, --offset and --width go with "
                        "--socket\n");
        return 2;
    }
    raw_reply_size = RAW_REQ_SIZE + o.width;
    signal(SIGPIPE, SIG_IGN);
    printf("rtt: %d CPU(s) online, %d usable here; %u-byte REGION_READ of "
           "%s vs raw %zu/%zu-byte UNIX-socket ping-pong, "
           "%ld batches x %ld round trips per kind\n",
           cpus.online, cpus.usable, o.width,
           o.socket ? o.socket : "the test device's BAR0 SCRATCH", RAW_REQ_SIZE,
           raw_reply_size, o.batches, o.iters);
    fflush(stdout);
    /* Allow 1 ms per round trip (about 100 times the usual) plus a
     * minute for the rest. */
    return bench_run(&cpus,
                     (unsigned int)(60 + (size_t)o.iters * (size_t)o.batches *
                                             (o.breakdown ? K_MAX : 3) * 2 /
                                             1000),
                     run_placement, &o);
}
