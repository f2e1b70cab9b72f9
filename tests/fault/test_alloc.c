/*
 * Fault injection: fail the Nth allocation, for every N, on the paths that
 * build a device and that handle messages. Linked with --wrap for the
 * allocator, so every allocation made by library code on the armed thread
 * is counted and the chosen one fails. Each run must end without a crash,
 * with every request answered (normally or with an error reply) or the
 * connection closed, and with no allocation or descriptor left behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testdev.h"
#include "umdev/wire.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void __wrap_free(void *p);

/* Allocation accounting for the armed thread only, so the count is
 * deterministic whatever the other thread does. */
static _Thread_local bool armed;
static atomic_long alloc_count;
static long fail_at;
static atomic_bool failed;

#define LIVE_SLOTS 65536
static void *_Atomic live[LIVE_SLOTS];
static atomic_long live_count;

static bool
should_fail(void)
{
    if (!armed)
        return false;
    if (atomic_fetch_add(&alloc_count, 1) + 1 == fail_at) {
        atomic_store(&failed, true);
        return true;
    }
    return false;
}

static void
track(void *p)
{
    size_t h;

    if (p == NULL)
        return;
    h = ((uintptr_t)p >> 4) % LIVE_SLOTS;
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        void *expected = NULL;

        if (atomic_compare_exchange_strong(&live[(h + i) % LIVE_SLOTS],
                                           &expected, p)) {
            atomic_fetch_add(&live_count, 1);
            return;
        }
    }
    abort();
}

static void
untrack(void *p)
{
    size_t h;

    if (p == NULL)
        return;
    h = ((uintptr_t)p >> 4) % LIVE_SLOTS;
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        void *expected = p;

        if (atomic_compare_exchange_strong(&live[(h + i) % LIVE_SLOTS],
                                           &expected, NULL)) {
            atomic_fetch_sub(&live_count, 1);
            return;
        }
    }
    /* Not ours (allocated by a shared library): nothing to account. */
}

void *
__wrap_malloc(size_t n)
{
    void *p;

    if (should_fail())
        return NULL;
    p = __real_malloc(n);
    track(p);
    return p;
}

void *
__wrap_calloc(size_t n, size_t m)
{
    void *p;

    if (should_fail())
        return NULL;
    p = __real_calloc(n, m);
    track(p);
    return p;
}

void *
__wrap_realloc(void *old, size_t n)
{
    void *p;

    if (should_fail())
        return NULL;
    p = __real_realloc(old, n);
    if (p != NULL) {
        untrack(old);
        track(p);
    }
    return p;
}

char *
__wrap_strdup(const char *s)
{
    char *p;

    if (should_fail())
        return NULL;
    p = __real_strdup(s);
    track(p);
    return p;
}

void
__wrap_free(void *p)
{
    untrack(p);
    __real_free(p);
}

static int
count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void
arm(long n)
{
    atomic_store(&alloc_count, 0);
    atomic_store(&failed, false);
    fail_at = n;
}

/* (a) Building the device fails cleanly at every allocation. */
static void
test_build_device(void **state)
{
    long n;
    int fds = count_fds();

    (void)state;
    for (n = 1;; n++) {
        struct testdev *td = NULL;
        int rc;

        arm(n);
        armed = true;
        rc = testdev_create(NULL, &td);
        armed = false;
        if (!atomic_load(&failed)) {
            assert_int_equal(rc, 0);
            testdev_destroy(td);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_null(td);
        assert_int_equal(atomic_load(&live_count), 0);
        assert_int_equal(count_fds(), fds);
    }
    assert_int_equal(atomic_load(&live_count), 0);
    print_message("device build: %ld allocation points, each failed once\n",
                  n - 1);
}

/* (b) Message handling. The server thread is armed; the script thread
 * plays the client, answering the device's DMA_READ requests. */
struct script_ctx {
    struct testdev *td;
    int sv[2];
};

static void *
server(void *arg)
{
    struct umdev_dev *dev = arg;

    armed = true;
    while (umdev_dev_attached(dev)) {
        struct pollfd p = { .fd = umdev_dev_client_fd(dev),
                            .events = POLLIN };

        if (poll(&p, 1, 5000) <= 0)
            break;
        umdev_dev_process(dev);
    }
    armed = false;
    return NULL;
}

static int
send_msg(int fd, uint16_t id, uint16_t cmd, uint32_t flags, const void *p,
         size_t len, int pass_fd)
{
    uint8_t buf[256];
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n = umdev_wire_encode(buf, sizeof(buf), id, cmd, flags, p, len,
                                  NULL, 0);

    iov.iov_base = buf;
    iov.iov_len = (size_t)n;
    if (pass_fd >= 0) {
        struct cmsghdr *c;

        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.b;
        mh.msg_controllen = sizeof(ctl.b);
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    return sendmsg(fd, &mh, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* Read one message (fds closed); 0 EOF, -1 timeout, else its size. */
static long
recv_msg(int fd, uint8_t *buf, size_t cap)
{
    size_t have = 0, want = 16;

    while (have < want) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        union {
            char b[CMSG_SPACE(sizeof(int) * 16)];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = { buf + have, want - have };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctl.b,
                             .msg_controllen = sizeof(ctl.b) };
        struct cmsghdr *c;
        ssize_t n;

        if (poll(&p, 1, 8000) <= 0)
            return -1;
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        if (n <= 0)
            return 0;
        for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
            int *f = (int *)CMSG_DATA(c);
            size_t k, nf = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (k = 0; k < nf; k++)
                close(f[k]);
        }
        have += (size_t)n;
        if (have == 16) {
            uint32_t size;

            memcpy(&size, buf + 4, 4);
            assert_true(size >= 16 && size <= cap);
            want = size;
        }
    }
    return (long)have;
}

/* Send one request and wait for its reply, serving DMA requests meanwhile.
 * Return 1 answered, 0 connection closed. */
static int
request(int fd, uint16_t id, uint16_t cmd, uint32_t flags, const void *p,
        size_t len, int pass_fd, const uint8_t *guest)
{
    static uint8_t buf[128 * 1024];

    if (send_msg(fd, id, cmd, flags, p, len, pass_fd) < 0)
        return 0;
    if (flags & VFIO_USER_F_NO_REPLY)
        return 1;
    for (;;) {
        struct vfio_user_header h;
        long n = recv_msg(fd, buf, sizeof(buf));

        if (n == 0)
            return 0;
        assert_true(n > 0); /* a timeout would mean a lost reply */
        memcpy(&h, buf, sizeof(h));
        if ((h.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_COMMAND) {
            struct vfio_user_dma_access a;
            uint8_t out[16 + 16 + 4096];
            ssize_t m;

            memcpy(&a, buf + 16, sizeof(a));
            assert_int_equal(h.cmd, VFIO_USER_DMA_READ);
            assert_true(a.addr >= 0x200000 && a.count <= 4096);
            m = umdev_wire_encode(out, sizeof(out), h.msg_id, h.cmd,
                                  VFIO_USER_F_TYPE_REPLY, &a, sizeof(a),
                                  guest + (a.addr - 0x200000), a.count);
            if (send(fd, out, (size_t)m, MSG_NOSIGNAL) != m)
                return 0;
            continue;
        }
        assert_int_equal(h.msg_id, id);
        assert_int_equal(h.cmd, cmd);
        return 1;
    }
}

static int
run_script(int fd, int memfd, const uint8_t *guest)
{
    static const char json[] = "{\"capabilities\":{\"max_msg_fds\":16}}";
    uint8_t p[128] = { 0 };
    struct vfio_user_dma_map mp = { 32, 3, 0, 0x100000, 0x2000 };
    struct vfio_user_dma_map mp_nofd = { 32, 3, 0, 0x200000, 0x1000 };
    struct vfio_user_dma_unmap um = { 24, 0, 0x100000, 0x2000 };
    struct vfio_user_device_info di = { 16, 0, 0, 0 };
    struct vfio_user_irq_set is = { 20, (1u << 2) | (1u << 5), 3, 0, 1 };
    int efd = eventfd(0, EFD_CLOEXEC);
    uint16_t id = 1;
    uint32_t i;
    int ok = 1;

#define REQ(cmd, flags, payload, len, pfd)                                   \
    do {                                                                     \
        if (ok)                                                              \
            ok = request(fd, id++, cmd, flags, payload, len, pfd, guest);    \
    } while (0)
    memcpy(p + 4, json, sizeof(json));
    REQ(VFIO_USER_VERSION, 0, p, 4 + sizeof(json), -1);
    REQ(VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), -1);
    for (i = 0; i < 9; i++) {
        struct vfio_user_region_info ri = { 1024, 0, i, 0, 0, 0 };

        REQ(VFIO_USER_DEVICE_GET_REGION_INFO, 0, &ri, sizeof(ri), -1);
    }
    REQ(VFIO_USER_DEVICE_SET_IRQS, 0, &is, sizeof(is), efd);
    REQ(VFIO_USER_DMA_MAP, 0, &mp, sizeof(mp), memfd);
    REQ(VFIO_USER_DMA_MAP, 0, &mp_nofd, sizeof(mp_nofd), -1);
    {
        struct vfio_user_region_access a = { TESTDEV_REG_SCRATCH, 0, 4 };
        uint8_t w[24];
        uint64_t addr = 0x200000;
        uint32_t v;

        memcpy(w, &a, 16);
        v = 0x1234;
        memcpy(w + 16, &v, 4);
        REQ(VFIO_USER_REGION_WRITE, 0, w, 20, -1);
        REQ(VFIO_USER_REGION_READ, 0, &a, 16, -1);
        /* DMA through the message fallback: the device sends DMA_READ. */
        a.offset = TESTDEV_REG_DMA_ADDR;
        a.count = 8;
        memcpy(w, &a, 16);
        memcpy(w + 16, &addr, 8);
        REQ(VFIO_USER_REGION_WRITE, 0, w, 24, -1);
        a.offset = TESTDEV_REG_DMA_LEN;
        a.count = 4;
        v = 256;
        memcpy(w, &a, 16);
        memcpy(w + 16, &v, 4);
        REQ(VFIO_USER_REGION_WRITE, 0, w, 20, -1);
        a.offset = TESTDEV_REG_DMA_CMD;
        v = TESTDEV_DMA_TO_DEVICE;
        memcpy(w, &a, 16);
        memcpy(w + 16, &v, 4);
        REQ(VFIO_USER_REGION_WRITE, 0, w, 20, -1);
        /* A 4 KiB read (allocates its reply buffer). */
        a = (struct vfio_user_region_access){ 0, 2, 4096 };
        REQ(VFIO_USER_REGION_READ, 0, &a, 16, -1);
        /* A posted write. */
        a = (struct vfio_user_region_access){ TESTDEV_REG_SCRATCH, 0, 4 };
        memcpy(w, &a, 16);
        REQ(VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, w, 20, -1);
    }
    REQ(VFIO_USER_DMA_UNMAP, 0, &um, sizeof(um), -1);
    REQ(VFIO_USER_DEVICE_RESET, 0, NULL, 0, -1);
    REQ(VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), -1);
#undef REQ
    close(efd);
    return ok;
}

static void
test_message_handling(void **state)
{
    uint8_t *guest;
    long n;
    int memfd, fds, full = 0;

    (void)state;
    memfd = memfd_create("guest", MFD_CLOEXEC);
    assert_int_equal(ftruncate(memfd, 0x2000), 0);
    guest = __real_malloc(4096);
    memset(guest, 0x3c, 4096);
    fds = count_fds();
    for (n = 1;; n++) {
        struct testdev *td = NULL;
        pthread_t thread;
        int sv[2], ok;

        assert_int_equal(testdev_create(NULL, &td), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
                                    sv),
                         0);
        assert_int_equal(umdev_dev_attach(testdev_dev(td), sv[0]), 0);
        arm(n);
        assert_int_equal(pthread_create(&thread, NULL, server,
                                        testdev_dev(td)),
                         0);
        ok = run_script(sv[1], memfd, guest);
        close(sv[1]);
        pthread_join(thread, NULL);
        testdev_destroy(td);
        assert_int_equal(atomic_load(&live_count), 0);
        assert_int_equal(count_fds(), fds);
        if (!atomic_load(&failed)) {
            assert_true(ok);
            full++;
            break;
        }
    }
    print_message("message handling: %ld allocation points, each failed "
                  "once\n",
                  n - 1);
    __real_free(guest);
    close(memfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_device),
        cmocka_unit_test(test_message_handling),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
