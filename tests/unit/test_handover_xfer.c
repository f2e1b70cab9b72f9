/*
 * The handover package's transport (umdev_handover_send/recv,
 * docs/PROTOCOL.md "Handover transport"): a blob and more descriptors
 * than one message carries arrive whole, each descriptor the same file
 * in the same place; a frame that breaks its own rules is refused with
 * every descriptor received so far closed. A device's host endpoints
 * (record HOST: a listening socket, a connected one, a pty master) go
 * over as the same files and stay usable: the listener accepts, the
 * connection carries bytes both ways, the pty master reaches its slave.
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
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kit_cmocka.h" /* kit_open_fds() */
#include "umdev/dev.h"

struct sender {
    int sock;
    const struct umdev_handover *h;
    int rc;
};

static void *
send_thread(void *arg)
{
    struct sender *s = arg;

    s->rc = umdev_handover_send(s->sock, s->h, 5000);
    return NULL;
}

static struct umdev_handover *
make_pkg(size_t nfds, size_t len)
{
    struct umdev_handover *h;
    uint8_t *blob = malloc(len);
    int *fds = malloc(nfds * sizeof(int));

    assert_non_null(blob);
    assert_non_null(fds);
    for (size_t i = 0; i < len; i++)
        blob[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < nfds; i++) {
        fds[i] = eventfd((unsigned int)i, EFD_CLOEXEC | EFD_NONBLOCK);
        assert_true(fds[i] >= 0);
    }
    assert_int_equal(umdev_handover_wrap(blob, len, fds, nfds, &h), 0);
    free(blob);
    free(fds);
    return h;
}

/* @nfds across chunks (UMDEV_HANDOVER_FDS_PER_MSG each) and a blob bigger
 * than the socket buffer, sent from another thread. */
static void
roundtrip(size_t nfds, size_t len)
{
    struct umdev_handover *h = make_pkg(nfds, len), *got = NULL;
    struct sender s = { .h = h };
    const int *a, *b;
    const uint8_t *ba, *bb;
    size_t na, nb, la, lb;
    pthread_t t;
    int sp[2], fds0;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    s.sock = sp[0];
    assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
    assert_int_equal(umdev_handover_recv(sp[1], 5000, &got), 0);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, 0);
    a = umdev_handover_fds(h, &na);
    b = umdev_handover_fds(got, &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        struct stat sa, sb;
        uint64_t v = 0;

        assert_int_equal(fstat(a[i], &sa), 0);
        assert_int_equal(fstat(b[i], &sb), 0);
        assert_int_equal(sa.st_ino, sb.st_ino);
        /* The same eventfd, in the same place: its counter is i (0
         * reads as EAGAIN). */
        if (i == 0) {
            assert_int_equal(read(b[i], &v, sizeof(v)), -1);
            continue;
        }
        assert_int_equal(read(b[i], &v, sizeof(v)), sizeof(v));
        assert_int_equal(v, i);
    }
    ba = umdev_handover_blob(h, &la);
    bb = umdev_handover_blob(got, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    fds0 = kit_open_fds();
    umdev_handover_free(got);
    assert_int_equal(kit_open_fds(), fds0 - (int)nb);
    umdev_handover_free(h);
    close(sp[0]);
    close(sp[1]);
}

static void
test_roundtrip_small(void **state)
{
    (void)state;
    roundtrip(3, 100);
}

static void
test_roundtrip_chunks(void **state)
{
    (void)state;
    /* Exactly one chunk, one more than one, and three. */
    roundtrip(UMDEV_HANDOVER_FDS_PER_MSG, 64);
    roundtrip(UMDEV_HANDOVER_FDS_PER_MSG + 1, 4096);
    roundtrip(2 * UMDEV_HANDOVER_FDS_PER_MSG + 17, 3u << 20);
}

static void
test_roundtrip_empty(void **state)
{
    (void)state;
    roundtrip(0, 0);
}

/* A raw frame header (the layout docs/PROTOCOL.md gives). */
struct frame {
    char magic[8];
    uint32_t version;
    uint32_t nfds;
    uint64_t len;
};

static void
send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (nfds) {
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
    assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* Send @f with @nsent descriptors (and, if @close_after, EOF), then
 * expect @err from the receiver and no descriptor left behind. */
static void
expect_refused(const struct frame *f, size_t nsent, bool close_after, int err)
{
    struct umdev_handover *got = (void *)1;
    int sp[2], fds[8], fds0;

    assert_true(nsent <= 8);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    for (size_t i = 0; i < nsent; i++)
        fds[i] = eventfd(0, EFD_CLOEXEC);
    send_raw(sp[0], f, sizeof(*f), fds, nsent);
    for (size_t i = 0; i < nsent; i++)
        close(fds[i]);
    if (close_after)
        close(sp[0]);
    fds0 = kit_open_fds();
    assert_int_equal(umdev_handover_recv(sp[1], 200, &got), err);
    assert_null(got);
    assert_int_equal(kit_open_fds(), fds0);
    if (!close_after)
        close(sp[0]);
    close(sp[1]);
}

static void
test_refused_frames(void **state)
{
    struct frame f = { .magic = "UMDEVHOX", .version = 1, .nfds = 2 };

    (void)state;
    /* Fewer and more descriptors than the header announces. */
    expect_refused(&f, 1, false, -EPROTO);
    expect_refused(&f, 3, false, -EPROTO);
    /* Bad magic, newer version. */
    f.nfds = 0;
    memcpy(f.magic, "UMDEVHOY", 8);
    expect_refused(&f, 0, false, -EPROTO);
    memcpy(f.magic, "UMDEVHOX", 8);
    f.version = 2;
    expect_refused(&f, 0, false, -EPROTO);
    /* Past the limits. */
    f.version = 1;
    f.nfds = UMDEV_HANDOVER_MAX_FDS + 1;
    expect_refused(&f, 0, false, -E2BIG);
    f.nfds = 0;
    f.len = UMDEV_HANDOVER_MAX_BYTES + 1ull;
    expect_refused(&f, 0, false, -E2BIG);
    /* The blob never comes: the peer closes, or time runs out. */
    f.len = 100;
    expect_refused(&f, 0, true, -ECONNRESET);
    expect_refused(&f, 0, false, -ETIMEDOUT);
    /* Two descriptors arrive, then the blob does not. */
    f.nfds = 2;
    expect_refused(&f, 2, true, -ECONNRESET);
}

static void
test_host_kinds(void **state)
{
    const struct sockaddr_un autobind = { .sun_family = AF_UNIX };
    struct sockaddr_un name;
    socklen_t nlen = sizeof(name);
    struct umdev_handover *h, *got = NULL;
    struct sender s = { 0 };
    int sp[2], pair[2], fds[3], cfd, slave;
    const int *b;
    size_t nb;
    unsigned int ptn;
    pthread_t t;
    char c = 0;

    (void)state;
    fds[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fds[0] >= 0);
    assert_int_equal(
        bind(fds[0], (const struct sockaddr *)&autobind, sizeof(sa_family_t)),
        0);
    assert_int_equal(listen(fds[0], 4), 0);
    assert_int_equal(getsockname(fds[0], (struct sockaddr *)&name, &nlen), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair),
                     0);
    fds[1] = pair[0];
    fds[2] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(fds[2] >= 0);
    assert_int_equal(grantpt(fds[2]), 0);
    assert_int_equal(unlockpt(fds[2]), 0);
    slave = open(ptsname(fds[2]), O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(slave >= 0);
    assert_int_equal(umdev_handover_wrap("host", 4, fds, 3, &h), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    s.sock = sp[0];
    s.h = h;
    assert_int_equal(pthread_create(&t, NULL, send_thread, &s), 0);
    assert_int_equal(umdev_handover_recv(sp[1], 5000, &got), 0);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, 0);
    umdev_handover_free(h); /* the sender's copies go */
    b = umdev_handover_fds(got, &nb);
    assert_int_equal(nb, 3);
    /* The listener: a client connecting by its name is accepted. */
    cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(cfd, (struct sockaddr *)&name, nlen), 0);
    close(cfd);
    cfd = accept(b[0], NULL, NULL);
    assert_true(cfd >= 0);
    close(cfd);
    /* The connection, both ways. */
    assert_int_equal(send(pair[1], "a", 1, 0), 1);
    assert_int_equal(recv(b[1], &c, 1, 0), 1);
    assert_int_equal(c, 'a');
    assert_int_equal(send(b[1], "b", 1, 0), 1);
    assert_int_equal(recv(pair[1], &c, 1, 0), 1);
    assert_int_equal(c, 'b');
    /* The pty master: still a master, of the same slave. */
    assert_int_equal(ioctl(b[2], TIOCGPTN, &ptn), 0);
    assert_string_equal(ptsname(b[2]), ttyname(slave));
    umdev_handover_free(got);
    close(pair[1]);
    close(slave);
    close(sp[0]);
    close(sp[1]);
}

int
main(void)
{
    struct rlimit rl;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_small),
        cmocka_unit_test(test_roundtrip_chunks),
        cmocka_unit_test(test_roundtrip_empty),
        cmocka_unit_test(test_host_kinds),
        cmocka_unit_test(test_refused_frames),
    };

    /* Three chunks' descriptors, twice (sent and received): past the
     * usual soft limit of 1024. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 &&
        rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return cmocka_run_group_tests_name("unit.handover_xfer", tests, NULL, NULL);
}
