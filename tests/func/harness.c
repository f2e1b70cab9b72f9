/* The functional-test harness: a served test device on a server thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Most descriptors raw_send_fds() sends or raw_recv() takes at once. */
#define RAW_MAX_FDS 32
/* Name of guest memory memfds, as /proc/self/maps shows them. */
#define GUEST_MEMFD_NAME "umdev-func-guest"

static void
log_line(void *opaque, int level, const char *line)
{
    struct harness_log *l = opaque;

    if (level <= LOG_WARNING)
        atomic_fetch_add(&l->warnings, 1);
    /* The library prefixes each line with the logger's prefix. */
    if (getenv("UMDEV_FUNC_LOG") != NULL)
        fprintf(stderr, "<%d> %s\n", level, line);
}

static void
log_init(struct harness_log *l, const char *prefix)
{
    l->logger = (struct umdev_logger){
        .fn = log_line,
        .opaque = l,
        .max_level = LOG_DEBUG,
        .prefix = prefix,
    };
    atomic_store(&l->warnings, 0);
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs on the server thread: calls from the test thread and stop. */
static void
on_wake(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct harness *h = opaque;
    void (*fn)(struct umdev_dev *, void *);
    uint64_t n, one = 1;
    void *arg;
    int done;
    bool stop;

    (void)events;
    if (read(fd, &n, sizeof(n)) != sizeof(n))
        return;
    pthread_mutex_lock(&h->lock);
    fn = h->call_fn;
    arg = h->call_arg;
    done = h->call_done_fd;
    h->call_fn = NULL;
    stop = h->stop;
    pthread_mutex_unlock(&h->lock);
    if (fn != NULL) {
        fn(h->dev, arg);
        if (write(done, &one, sizeof(one)) != sizeof(one))
            abort();
    }
    if (stop)
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
    h->wake_fd = -1;
    log_init(&h->server_log, "server");
    log_init(&h->client_log, "client");
    assert_int_equal(pthread_mutex_init(&h->lock, NULL), 0);
    snprintf(h->dir, sizeof(h->dir), "/tmp/umdev-func-XXXXXX");
    assert_non_null(mkdtemp(h->dir));
    snprintf(h->path, sizeof(h->path), "%s/dev.sock", h->dir);
    assert_int_equal(testdev_create(&h->server_log.logger, &h->td), 0);
    h->dev = testdev_dev(h->td);
    assert_int_equal(umdev_loop_create(&h->loop), 0);
    assert_int_equal(umdev_server_create(h->dev, h->loop, h->path, &h->srv),
                     0);
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(h->wake_fd >= 0);
    assert_int_equal(umdev_loop_add(h->loop, h->wake_fd, UMDEV_LOOP_IN,
                                    on_wake, h),
                     0);
    assert_int_equal(pthread_create(&h->thread, NULL, server_thread, h), 0);
    h->running = true;
}

void
harness_stop(struct harness *h)
{
    struct timespec deadline;
    uint64_t one = 1;

    if (h->running) {
        pthread_mutex_lock(&h->lock);
        h->stop = true;
        pthread_mutex_unlock(&h->lock);
        assert_int_equal(write(h->wake_fd, &one, sizeof(one)), sizeof(one));
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += HARNESS_TIMEOUT_MS / 1000;
        assert_int_equal(pthread_timedjoin_np(h->thread, NULL, &deadline), 0);
        h->running = false;
    }
    umdev_server_destroy(h->srv);
    h->srv = NULL;
    testdev_destroy(h->td);
    h->td = NULL;
    h->dev = NULL;
    if (h->wake_fd >= 0) {
        umdev_loop_del(h->loop, h->wake_fd);
        close(h->wake_fd);
        h->wake_fd = -1;
    }
    umdev_loop_destroy(h->loop);
    h->loop = NULL;
    pthread_mutex_destroy(&h->lock);
    /* The server unlinked its socket, so the directory is empty. */
    assert_int_equal(access(h->path, F_OK), -1);
    assert_int_equal(rmdir(h->dir), 0);
}

void
harness_call(struct harness *h, void (*fn)(struct umdev_dev *dev, void *arg),
             void *arg)
{
    int done = eventfd(0, EFD_CLOEXEC);
    struct pollfd p = { .fd = done, .events = POLLIN };
    uint64_t one = 1, n;

    assert_true(done >= 0);
    pthread_mutex_lock(&h->lock);
    h->call_fn = fn;
    h->call_arg = arg;
    h->call_done_fd = done;
    pthread_mutex_unlock(&h->lock);
    assert_int_equal(write(h->wake_fd, &one, sizeof(one)), sizeof(one));
    assert_int_equal(poll(&p, 1, HARNESS_TIMEOUT_MS), 1);
    assert_int_equal(read(done, &n, sizeof(n)), sizeof(n));
    close(done);
}

static void
sample_state(struct umdev_dev *dev, void *arg)
{
    struct harness_state *s = arg;
    uint32_t i;

    s->attached = umdev_dev_attached(dev);
    s->dma_count = umdev_dma_count(dev);
    umdev_dev_get_stats(dev, &s->stats);
    for (i = 0; i < UMDEV_PCI_NUM_IRQS; i++)
        s->irq_enabled[i] = umdev_dev_irq_enabled(dev, i, 0);
    s->intx_masked = umdev_dev_irq_masked(dev, UMDEV_PCI_INTX_IRQ, 0);
}

void
harness_get_state(struct harness *h, struct harness_state *out)
{
    memset(out, 0, sizeof(*out));
    harness_call(h, sample_state, out);
}

void
harness_wait_detached(struct harness *h)
{
    int64_t deadline = now_ms() + HARNESS_TIMEOUT_MS;
    struct harness_state s;

    for (;;) {
        harness_get_state(h, &s);
        if (!s.attached || now_ms() > deadline)
            break;
        usleep(1000);
    }
    assert_false(s.attached);
}

struct umdev_client *
harness_connect(struct harness *h, const struct umdev_client_opts *opts)
{
    struct umdev_client_opts o = { 0 };
    struct umdev_client *c = NULL;

    if (opts != NULL)
        o = *opts;
    if (o.log == NULL)
        o.log = &h->client_log.logger;
    if (o.timeout_ms == 0)
        o.timeout_ms = HARNESS_TIMEOUT_MS;
    assert_int_equal(umdev_client_connect(h->path, &o, &c), 0);
    assert_non_null(c);
    return c;
}

int
harness_raw_socket(struct harness *h)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = HARNESS_TIMEOUT_MS / 1000 };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(strlen(h->path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, h->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
                                sizeof(tv)),
                     0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
                                sizeof(tv)),
                     0);
    return fd;
}

void
raw_send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

void
raw_send_fds(int fd, const void *buf, size_t len, const int *fds,
             size_t nfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * RAW_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    assert_true(len > 0);
    assert_true(nfds <= RAW_MAX_FDS);
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
    /* The descriptors go with the first bytes; the rest may follow. */
    do {
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    assert_true(n > 0);
    if ((size_t)n < len)
        raw_send_all(fd, (const uint8_t *)buf + n, len - (size_t)n);
}

void
raw_send(int fd, uint16_t id, uint16_t cmd, uint32_t flags,
         const void *payload, size_t len, const int *fds, size_t nfds)
{
    size_t size = umdev_wire_size(len, 0);
    uint8_t *buf;

    assert_true(size > 0);
    buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(umdev_wire_encode(buf, size, id, cmd, flags, payload,
                                       len, NULL, 0),
                     size);
    raw_send_fds(fd, buf, size, fds, nfds);
    free(buf);
}

/* File or close the descriptors of one recvmsg(). */
static void
take_fds(struct msghdr *mh, int *fds, size_t cap, size_t *nfds)
{
    struct cmsghdr *c;

    for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        size_t n, i;

        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
            if (fds != NULL && *nfds < cap)
                fds[(*nfds)++] = fd;
            else
                close(fd);
        }
    }
}

long
raw_recv(int fd, void *buf, size_t cap, int timeout_ms, int *fds,
         size_t *nfds)
{
    int64_t deadline = now_ms() + timeout_ms;
    struct vfio_user_header h;
    size_t have = 0, want = sizeof(h), fd_cap = 0;

    assert_true(cap >= sizeof(h));
    if (nfds != NULL) {
        fd_cap = *nfds;
        *nfds = 0;
    }
    while (have < want) {
        union {
            char b[CMSG_SPACE(sizeof(int) * RAW_MAX_FDS)];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { (uint8_t *)buf + have, want - have };
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = ctl.b,
            .msg_controllen = sizeof(ctl.b),
        };
        int64_t left = deadline - now_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (left < 0)
            left = 0;
        if (poll(&p, 1, (int)left) <= 0)
            return -1;
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ECONNRESET)
            return 0;
        assert_true(n >= 0);
        take_fds(&mh, fds, fd_cap, nfds);
        if (n == 0)
            return 0;
        have += (size_t)n;
        if (have == sizeof(h)) {
            memcpy(&h, buf, sizeof(h));
            assert_true(h.msg_size >= sizeof(h));
            assert_true(h.msg_size <= cap);
            want = h.msg_size;
        }
    }
    return (long)have;
}

long
raw_expect_reply(int fd, uint16_t id, uint16_t cmd, void *buf, size_t cap)
{
    struct vfio_user_header h;
    long n = raw_recv(fd, buf, cap, HARNESS_TIMEOUT_MS, NULL, NULL);

    assert_true(n >= (long)sizeof(h));
    memcpy(&h, buf, sizeof(h));
    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.cmd, cmd);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY);
    assert_int_equal(h.error, 0);
    assert_int_equal(h.msg_size, n);
    return n;
}

void
raw_expect_error(int fd, uint16_t id, uint16_t cmd, int err)
{
    uint8_t buf[256];
    struct vfio_user_header h;
    long n = raw_recv(fd, buf, sizeof(buf), HARNESS_TIMEOUT_MS, NULL, NULL);

    assert_true(n >= (long)sizeof(h));
    memcpy(&h, buf, sizeof(h));
    assert_int_equal(h.msg_id, id);
    assert_int_equal(h.cmd, cmd);
    assert_int_equal(h.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(h.error, err);
    /* Spec "Header": an error reply carries only the header. */
    assert_int_equal(h.msg_size, sizeof(h));
    assert_int_equal(n, sizeof(h));
}

void
raw_expect_alive(int fd, uint16_t id)
{
    struct vfio_user_device_info di = { .argsz = sizeof(di) };
    uint8_t buf[256];

    raw_send(fd, id, VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL,
             0);
    assert_int_equal(raw_expect_reply(fd, id, VFIO_USER_DEVICE_GET_INFO,
                                      buf, sizeof(buf)),
                     sizeof(struct vfio_user_header) + sizeof(di));
    memcpy(&di, buf + sizeof(struct vfio_user_header), sizeof(di));
    assert_int_equal(di.num_regions, UMDEV_PCI_NUM_REGIONS);
    assert_int_equal(di.num_irqs, UMDEV_PCI_NUM_IRQS);
}

void
raw_expect_quiet(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    assert_int_equal(poll(&p, 1, HARNESS_QUIET_MS), 0);
}

void
raw_negotiate(int fd, uint16_t id)
{
    static const char json[] = "{\"capabilities\":{\"max_msg_fds\":16}}";
    uint8_t p[sizeof(struct vfio_user_version) + sizeof(json)] = { 0 };
    uint8_t reply[1024];

    memcpy(p + sizeof(struct vfio_user_version), json, sizeof(json));
    raw_send(fd, id, VFIO_USER_VERSION, 0, p, sizeof(p), NULL, 0);
    assert_true(raw_expect_reply(fd, id, VFIO_USER_VERSION, reply,
                                 sizeof(reply)) >
                (long)(sizeof(struct vfio_user_header) +
                       sizeof(struct vfio_user_version)));
}

uint32_t
reg_rd32(struct umdev_client *c, uint64_t off)
{
    uint32_t v = 0xdeadbeef;

    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION, off,
                                              &v, sizeof(v)),
                     0);
    return v;
}

uint64_t
reg_rd64(struct umdev_client *c, uint64_t off)
{
    uint64_t v = 0xdeadbeefdeadbeefull;

    assert_int_equal(umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION, off,
                                              &v, sizeof(v)),
                     0);
    return v;
}

void
reg_wr(struct umdev_client *c, uint64_t off, uint64_t v, size_t n)
{
    assert_true(n == 4 || n == 8);
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_BAR0_REGION, off,
                                               &v, n),
                     0);
}

uint64_t
efd_wait(int efd, int timeout_ms)
{
    struct pollfd p = { .fd = efd, .events = POLLIN };
    uint64_t n = 0;

    if (poll(&p, 1, timeout_ms) != 1)
        return 0;
    assert_int_equal(read(efd, &n, sizeof(n)), sizeof(n));
    return n;
}

int
efd_new(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    assert_true(fd >= 0);
    return fd;
}

void *
guest_mem(size_t size, int *fd)
{
    void *p;

    *fd = memfd_create(GUEST_MEMFD_NAME, MFD_CLOEXEC);
    assert_true(*fd >= 0);
    assert_int_equal(ftruncate(*fd, (off_t)size), 0);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

void
guest_mem_free(void *p, size_t size, int fd)
{
    assert_int_equal(munmap(p, size), 0);
    assert_int_equal(close(fd), 0);
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
    return n - 1; /* the directory's own descriptor */
}

int
count_guest_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    int n = 0;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, "/memfd:" GUEST_MEMFD_NAME) != NULL)
            n++;
    fclose(f);
    return n;
}

int
harness_main(int argc, char **argv, const char *name,
             const struct CMUnitTest *tests, size_t ntests)
{
    if (argc != 1) {
        fprintf(stderr, "usage: %s\n", argv[0]);
        return 2;
    }
    return _cmocka_run_group_tests(name, tests, ntests, NULL, NULL);
}
