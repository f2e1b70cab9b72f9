/*
 * libFuzzer target: the handover package loader (lib/dev/handover.c),
 * umdev_server_handover_restore() on a fresh test device, as a new
 * process runs it on what an old one sent.
 *
 * Input: the blob. The harness mends its checksum (header bytes 56-63,
 * docs/PROTOCOL.md "Handover") so inputs reach the records behind it,
 * and gives it as many descriptors as its header names (at most
 * MAX_FDS; past that the count mismatches and must be refused), laid out
 * as a package of the test device usually is: 0 a listening socket, 1 a
 * connected socket (the client's), 2 a sealed 1 MiB memfd (guest
 * memory), the rest eventfds; in a format 2 package (which carries host
 * endpoints, record HOST) its last three are a listening socket, a
 * connected one and a pty master, as the device's host ends are the
 * last descriptors a save packs. The test device takes host endpoints
 * (umdev_dev_set_host_end_ops()), keeping whatever it is given.
 *
 * What must hold, besides no crash, leak (LSan, the descriptor count) or
 * hang: a refused package leaves the device as created (no client, no
 * mapping, RUNNING, no host endpoint taken); one that loads leaves it
 * RUNNING, attached if the package had a client, and destroying the
 * server and releasing the host endpoints closes all it took.
 *
 * The seed corpus, fuzz/corpus/handover_load/, holds real packages of the
 * test device written by tests/func/handover_server.c when
 * UMDEV_HANDOVER_DUMP names a directory (func.handover run with it:
 * pkg-*; pkg-host from its in-process host endpoint test), what 90 s of
 * fuzzing from them added (merged), and what 120 s more from pkg-host
 * on added (merged).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "testdev.h"
#include "umdev/dev.h"
#include "umdev/dev_testing.h"
#include "umdev/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FDS 40
#define HOST_FDS 3
#define MEM_SIZE (1u << 20)
#define SUM_AT 56

static struct umdev_loop *loop;
static int pool[MAX_FDS];
static int peer = -1;
/* Host endpoints: a listener, a connected socket (its peer below), a
 * pty master. */
static int host_pool[HOST_FDS];
static int host_peer = -1;

/* What the device took of them. */
static struct umdev_host_end taken[UMDEV_HANDOVER_MAX_HOST_ENDS];
static size_t ntaken;
static bool restored;

static int
hend_save(void *opaque, struct umdev_host_end *out, size_t max)
{
    (void)opaque;
    (void)out;
    (void)max;
    return 0;
}

static int
hend_restore(void *opaque, struct umdev_host_end *ends, size_t n)
{
    (void)opaque;
    FUZZ_CHECK(n <= UMDEV_HANDOVER_MAX_HOST_ENDS);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(ends[i].fd >= 0);
        taken[i] = ends[i];
        ends[i].fd = -1;
    }
    ntaken = n;
    restored = true;
    return 0;
}

static void
hend_release(void *opaque)
{
    (void)opaque;
    for (size_t i = 0; i < ntaken; i++)
        close(taken[i].fd);
    ntaken = 0;
}

static const struct umdev_host_end_ops hend_ops = {
    .save = hend_save,
    .restore = hend_restore,
    .release = hend_release,
};
static const struct umdev_logger quiet = { .fn = NULL, .max_level = -1 };

static void
harness_fail(const char *what)
{
    fprintf(stderr, "fuzz_handover_load: harness: %s: %s\n", what,
            strerror(errno));
    abort();
}

static void
setup(void)
{
    const struct sockaddr_un autobind = { .sun_family = AF_UNIX };
    int sp[2];

    if (umdev_loop_create(&loop) < 0)
        harness_fail("loop");
    /* Bound to an abstract name the kernel picks (no file to clean). */
    pool[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (pool[0] < 0 ||
        bind(pool[0], (struct sockaddr *)&autobind, sizeof(sa_family_t)) < 0 ||
        listen(pool[0], 4) < 0)
        harness_fail("listening socket");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        harness_fail("socketpair");
    pool[1] = sp[0];
    peer = sp[1];
    pool[2] = memfd_create("guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (pool[2] < 0 || ftruncate(pool[2], MEM_SIZE) < 0 ||
        fcntl(pool[2], F_ADD_SEALS, F_SEAL_SHRINK) < 0)
        harness_fail("memfd");
    for (int i = 3; i < MAX_FDS; i++) {
        pool[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (pool[i] < 0)
            harness_fail("eventfd");
    }
    host_pool[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (host_pool[0] < 0 ||
        bind(host_pool[0], (struct sockaddr *)&autobind, sizeof(sa_family_t)) <
            0 ||
        listen(host_pool[0], 4) < 0)
        harness_fail("host listening socket");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        harness_fail("host socketpair");
    host_pool[1] = sp[0];
    host_peer = sp[1];
    host_pool[2] = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (host_pool[2] < 0 || grantpt(host_pool[2]) < 0 ||
        unlockpt(host_pool[2]) < 0)
        harness_fail("pty");
}

static uint64_t
sum(const uint8_t *b, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = i >= SUM_AT && i < SUM_AT + 8 ? 0 : b[i];

        h = (h ^ c) * 0x100000001b3ull;
    }
    return h;
}

/* What a served client left in the peer end and the eventfds. */
static void
drain(void)
{
    uint8_t buf[4096];
    uint64_t v;

    while (recv(peer, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
    for (int i = 3; i < MAX_FDS; i++)
        while (read(pool[i], &v, sizeof(v)) == sizeof(v))
            ;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct umdev_handover *pkg = NULL;
    struct umdev_server *srv = NULL;
    struct testdev *td;
    struct umdev_dev *dev;
    int fds[MAX_FDS];
    uint8_t *blob;
    uint32_t nfds = 0, format = 0;
    int before, rc;

    if (loop == NULL)
        setup();
    if (size > (4u << 20))
        return 0;
    blob = malloc(size ? size : 1);
    if (blob == NULL)
        harness_fail("malloc");
    memcpy(blob, data, size);
    if (size >= 64) {
        uint64_t s;

        memcpy(&format, blob + 8, sizeof(format));
        memcpy(&nfds, blob + 12, sizeof(nfds));
        s = sum(blob, size);
        memcpy(blob + SUM_AT, &s, sizeof(s));
    }
    if (nfds > MAX_FDS)
        nfds = MAX_FDS;
    before = fuzz_count_fds();
    for (uint32_t i = 0; i < nfds; i++) {
        bool host = format == 2 && nfds >= HOST_FDS && i >= nfds - HOST_FDS;

        fds[i] = fcntl(host ? host_pool[i - (nfds - HOST_FDS)] : pool[i],
                       F_DUPFD_CLOEXEC, 0);
        if (fds[i] < 0)
            harness_fail("dup");
    }
    if (umdev_handover_wrap(blob, size, fds, nfds, &pkg) < 0)
        harness_fail("wrap");
    free(blob);
    if (testdev_create(&quiet, &td) < 0)
        harness_fail("testdev");
    dev = testdev_dev(td);
    if (umdev_dev_set_host_end_ops(dev, &hend_ops, NULL) < 0)
        harness_fail("host end ops");
    restored = false;
    rc = umdev_server_handover_restore(dev, loop, pkg, &srv);
    if (rc < 0) {
        /* Taken and given back, or never taken. */
        FUZZ_CHECK_EQ(ntaken, 0);
        FUZZ_CHECK(srv == NULL);
        FUZZ_CHECK(!umdev_dev_attached(dev));
        FUZZ_CHECK_EQ(umdev_dma_count(dev), 0);
        FUZZ_CHECK_EQ(umdev_dev_mig_state(dev), VFIO_USER_DEVICE_STATE_RUNNING);
    } else {
        FUZZ_CHECK(srv != NULL);
        FUZZ_CHECK_EQ(umdev_dev_mig_state(dev), VFIO_USER_DEVICE_STATE_RUNNING);
        FUZZ_CHECK(restored);
        umdev_server_destroy(srv);
        FUZZ_CHECK_EQ(umdev_dma_count(dev), 0);
        hend_release(NULL);
    }
    testdev_destroy(td);
    umdev_handover_free(pkg);
    drain();
    FUZZ_CHECK_EQ(fuzz_count_fds(), before);
    return 0;
}
