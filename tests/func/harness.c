/* The functional-test harness: a served test device on a server thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

struct call {
    void (*fn)(void *);
    void *arg;
    int done_fd;
};

static struct umdev_logger quiet = { .fn = NULL, .max_level = LOG_ERR };

/* Calls to run on the server thread arrive through the wake eventfd. */
static struct call *pending_call;
static volatile int stop_flag;

static void
on_wake(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    uint64_t n;

    (void)events;
    (void)opaque;
    if (read(fd, &n, sizeof(n)) != sizeof(n))
        return;
    if (pending_call != NULL) {
        struct call *c = pending_call;
        uint64_t one = 1;

        pending_call = NULL;
        c->fn(c->arg);
        if (write(c->done_fd, &one, sizeof(one)) != sizeof(one))
            abort();
    }
    if (stop_flag)
        umdev_loop_stop(loop);
}

static void *
server_thread(void *arg)
{
    struct harness *h = arg;

    umdev_loop_run(h->loop);
    return NULL;
}

void
harness_start(struct harness *h)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "/tmp/umdev-func-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->path, sizeof(h->path), "%s/dev.sock", h->dir);
    assert_int_equal(testdev_create(&quiet, &h->td), 0);
    h->dev = testdev_dev(h->td);
    assert_int_equal(umdev_loop_create(&h->loop), 0);
    assert_int_equal(umdev_server_create(h->dev, h->loop, h->path, &h->srv),
                     0);
    h->wake_fd = eventfd(0, EFD_CLOEXEC);
    assert_true(h->wake_fd >= 0);
    assert_int_equal(umdev_loop_add(h->loop, h->wake_fd, UMDEV_LOOP_IN,
                                    on_wake, h),
                     0);
    stop_flag = 0;
    assert_int_equal(pthread_create((pthread_t *)&h->thread, NULL,
                                    server_thread, h),
                     0);
    h->thread_started = 1;
}

void
harness_stop(struct harness *h)
{
    uint64_t one = 1;

    stop_flag = 1;
    assert_int_equal(write(h->wake_fd, &one, sizeof(one)), sizeof(one));
    pthread_join((pthread_t)h->thread, NULL);
    umdev_server_destroy(h->srv);
    testdev_destroy(h->td);
    umdev_loop_del(h->loop, h->wake_fd);
    umdev_loop_destroy(h->loop);
    close(h->wake_fd);
    rmdir(h->dir);
}

void
harness_call(struct harness *h, void (*fn)(void *), void *arg)
{
    struct call c = { fn, arg, eventfd(0, EFD_CLOEXEC) };
    struct pollfd p = { .fd = c.done_fd, .events = POLLIN };
    uint64_t one = 1, n;

    assert_true(c.done_fd >= 0);
    pending_call = &c;
    assert_int_equal(write(h->wake_fd, &one, sizeof(one)), sizeof(one));
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(read(c.done_fd, &n, sizeof(n)), sizeof(n));
    close(c.done_fd);
}

struct umdev_client *
harness_connect(struct harness *h)
{
    struct umdev_client_opts o = { .log = &quiet, .timeout_ms = 5000 };
    struct umdev_client *c = NULL;

    assert_int_equal(umdev_client_connect(h->path, &o, &c), 0);
    return c;
}

int
harness_raw_socket(struct harness *h)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    strcpy(sa.sun_path, h->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

size_t
raw_send(int fd, uint16_t id, uint16_t cmd, uint32_t flags,
         const void *payload, size_t len, const int *fds, size_t nfds)
{
    static uint8_t buf[2 * 1024 * 1024];
    union {
        char b[CMSG_SPACE(sizeof(int) * 32)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n = umdev_wire_encode(buf, sizeof(buf), id, cmd, flags, payload,
                                  len, NULL, 0);

    assert_true(n > 0);
    iov.iov_base = buf;
    iov.iov_len = (size_t)n;
    if (nfds > 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), n);
    return (size_t)n;
}

long
raw_recv(int fd, void *buf, size_t cap, int timeout_ms)
{
    struct vfio_user_header h;
    size_t have = 0, want = sizeof(h);

    while (have < want) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        n = recv(fd, (uint8_t *)buf + have, want - have, 0);
        if (n <= 0)
            return 0;
        have += (size_t)n;
        if (have == sizeof(h)) {
            memcpy(&h, buf, sizeof(h));
            assert_true(h.msg_size >= sizeof(h) && h.msg_size <= cap);
            want = h.msg_size;
        }
    }
    return (long)have;
}

void
raw_negotiate(int fd)
{
    static const char json[] = "{\"capabilities\":{\"max_msg_fds\":16}}";
    uint8_t p[4 + sizeof(json)] = { 0 };
    uint8_t reply[1024];
    struct vfio_user_header h;

    memcpy(p + 4, json, sizeof(json));
    raw_send(fd, 1, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    assert_true(raw_recv(fd, reply, sizeof(reply), 5000) > 16);
    memcpy(&h, reply, sizeof(h));
    assert_int_equal(h.flags & VFIO_USER_F_ERROR, 0);
}

int
count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}
