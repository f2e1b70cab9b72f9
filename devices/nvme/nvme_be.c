/*
 * nvme storage backends (nvme_be.h): io_uring on a backing file, and
 * null.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nvme_be.h"

struct done_ent {
    uint64_t tag;
    int res;
};

struct nvme_be {
    bool null;
    /* file */
    struct io_uring ring;
    bool ring_init;
    int fd_direct; /* -1: the file system refused O_DIRECT */
    int fd;        /* buffered */
    int efd;
    uint32_t dio_align; /* offset, length and address alignment */
    /* Which file it is (st_dev, st_ino), taken at open: the sandboxed
     * worker may not stat it later. */
    uint64_t file_id[2];
    unsigned int queued, inflight;
    /* null: finished, not reaped yet */
    struct done_ent done[NVME_BE_DEPTH];
    unsigned int ndone;
};

static int
be_alloc(struct nvme_be **out)
{
    struct nvme_be *be = calloc(1, sizeof(*be));

    *out = be;
    if (be == NULL)
        return -ENOMEM;
    be->fd = -1;
    be->fd_direct = -1;
    be->efd = -1;
    return 0;
}

int
nvme_be_open_null(struct nvme_be **out)
{
    int rc = be_alloc(out);

    if (rc == 0)
        (*out)->null = true;
    return rc;
}

/* The O_DIRECT alignment the file takes: try the smallest one that
 * block devices have (512), else the page. */
static uint32_t
probe_dio_align(int fd)
{
    void *buf;
    uint32_t a;

    if (posix_memalign(&buf, 4096, 4096) != 0)
        return 4096;
    for (a = 512; a < 4096; a <<= 1)
        if (pread(fd, (char *)buf + a, a, a) >= 0)
            break;
    free(buf);
    return a;
}

/*
 * The ring may only read, write, sync and punch holes, and no more
 * restrictions or buffers can be registered: umdevd's worker sandbox
 * lets io_uring_enter() through, and io_uring's operations are not seen
 * by seccomp, so the ring itself must not open files or sockets for a
 * compromised worker (docs/SANDBOX.md).
 */
static int
restrict_ring(struct io_uring *ring)
{
    static const uint8_t ops[] = {
        IORING_OP_READV,
        IORING_OP_WRITEV,
        IORING_OP_FSYNC,
        IORING_OP_FALLOCATE,
    };
    struct io_uring_restriction r[sizeof(ops)];
    size_t i;

    memset(r, 0, sizeof(r));
    for (i = 0; i < sizeof(ops); i++) {
        r[i].opcode = IORING_RESTRICTION_SQE_OP;
        r[i].sqe_op = ops[i];
    }
    /* Debian's liburing 2.3 declares io_uring_register_restrictions()
     * and io_uring_enable_rings() but does not export them: the system
     * call, then. */
    if (syscall(__NR_io_uring_register, ring->ring_fd,
                IORING_REGISTER_RESTRICTIONS, r,
                (unsigned int)sizeof(ops)) < 0 ||
        syscall(__NR_io_uring_register, ring->ring_fd,
                IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
        return -errno;
    return 0;
}

int
nvme_be_open_file(const char *path, uint64_t size, struct nvme_be **out,
                  char *err, size_t errlen)
{
    struct nvme_be *be;
    struct stat st;
    int rc;

    rc = be_alloc(&be);
    if (rc < 0)
        return rc;
    be->fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (be->fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open backing file %s: %s", path,
                 strerror(-rc));
        goto fail;
    }
    if (fstat(be->fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < size) {
        rc = -EINVAL;
        snprintf(err, errlen,
                 "backing file %s is not a regular file of at least %llu "
                 "bytes",
                 path, (unsigned long long)size);
        goto fail;
    }
    be->file_id[0] = (uint64_t)st.st_dev;
    be->file_id[1] = (uint64_t)st.st_ino;
    /* tmpfs and some others refuse O_DIRECT: buffered only, then. */
    be->fd_direct = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_DIRECT);
    if (be->fd_direct >= 0)
        be->dio_align = probe_dio_align(be->fd_direct);
    /* Disabled until restricted: see restrict_ring(). */
    rc = io_uring_queue_init(NVME_BE_DEPTH, &be->ring, IORING_SETUP_R_DISABLED);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
        goto fail;
    }
    be->ring_init = true;
    be->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (be->efd < 0) {
        rc = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(-rc));
        goto fail;
    }
    rc = io_uring_register_eventfd(&be->ring, be->efd);
    if (rc == 0)
        rc = restrict_ring(&be->ring);
    if (rc < 0) {
        snprintf(err, errlen, "cannot set up the io_uring: %s", strerror(-rc));
        goto fail;
    }
    *out = be;
    return 0;
fail:
    nvme_be_close(be);
    *out = NULL;
    return rc;
}

void
nvme_be_close(struct nvme_be *be)
{
    if (be == NULL)
        return;
    if (be->ring_init) {
        while (be->queued + be->inflight > 0) {
            if (be->queued > 0)
                nvme_be_submit(be);
            nvme_be_reap(be, true, NULL, NULL);
        }
        io_uring_queue_exit(&be->ring);
    }
    if (be->fd_direct >= 0)
        close(be->fd_direct);
    if (be->fd >= 0)
        close(be->fd);
    if (be->efd >= 0)
        close(be->efd);
    free(be);
}

static struct io_uring_sqe *
get_sqe(struct nvme_be *be)
{
    struct io_uring_sqe *sqe;

    if (be->queued + be->inflight >= NVME_BE_DEPTH)
        return NULL;
    sqe = io_uring_get_sqe(&be->ring);
    if (sqe != NULL)
        be->queued++;
    return sqe;
}

static int
null_done(struct nvme_be *be, uint64_t tag, int res)
{
    if (be->ndone == NVME_BE_DEPTH)
        return -EBUSY;
    be->done[be->ndone].tag = tag;
    be->done[be->ndone].res = res;
    be->ndone++;
    return 0;
}

static uint64_t
iov_len(const struct iovec *iov, unsigned int n)
{
    uint64_t len = 0;
    unsigned int i;

    for (i = 0; i < n; i++)
        len += iov[i].iov_len;
    return len;
}

/* The fd to use for a transfer: O_DIRECT if everything is aligned. */
static int
rw_fd(const struct nvme_be *be, const struct iovec *iov, unsigned int n,
      uint64_t off)
{
    uint64_t m = be->dio_align - 1;
    unsigned int i;

    if (be->fd_direct < 0 || (off & m))
        return be->fd;
    for (i = 0; i < n; i++)
        if (((uintptr_t)iov[i].iov_base & m) || (iov[i].iov_len & m))
            return be->fd;
    return be->fd_direct;
}

int
nvme_be_readv(struct nvme_be *be, const struct iovec *iov, unsigned int n,
              uint64_t off, uint64_t tag)
{
    struct io_uring_sqe *sqe;

    if (be->null)
        return null_done(be, tag, (int)iov_len(iov, n));
    sqe = get_sqe(be);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_readv(sqe, rw_fd(be, iov, n, off), iov, n, off);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int
nvme_be_writev(struct nvme_be *be, const struct iovec *iov, unsigned int n,
               uint64_t off, bool dsync, uint64_t tag)
{
    struct io_uring_sqe *sqe;

    if (be->null)
        return null_done(be, tag, (int)iov_len(iov, n));
    sqe = get_sqe(be);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_writev2(sqe, rw_fd(be, iov, n, off), iov, n, off,
                          dsync ? RWF_DSYNC : 0);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int
nvme_be_flush(struct nvme_be *be, uint64_t tag)
{
    struct io_uring_sqe *sqe;

    if (be->null)
        return null_done(be, tag, 0);
    sqe = get_sqe(be);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_fsync(sqe, be->fd, IORING_FSYNC_DATASYNC);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int
nvme_be_discard(struct nvme_be *be, uint64_t off, uint64_t len, uint64_t tag)
{
    struct io_uring_sqe *sqe;

    if (be->null)
        return null_done(be, tag, 0);
    sqe = get_sqe(be);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_fallocate(sqe, be->fd,
                            FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            (off_t)off, (off_t)len);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int
nvme_be_submit(struct nvme_be *be)
{
    int rc;

    if (be->null || be->queued == 0)
        return 0;
    rc = io_uring_submit(&be->ring);
    if (rc < 0)
        return rc;
    be->inflight += (unsigned int)rc;
    be->queued -= (unsigned int)rc < be->queued ? (unsigned int)rc : be->queued;
    return 0;
}

unsigned int
nvme_be_reap(struct nvme_be *be, bool wait, nvme_be_done_fn *done, void *opaque)
{
    struct io_uring_cqe *cqe;
    unsigned int n = 0, i;

    if (be->null) {
        struct done_ent d[NVME_BE_DEPTH];

        if (be->ndone == 0)
            return 0;

        /* Copy first: @done may queue more. */
        n = be->ndone;
        memcpy(d, be->done, n * sizeof(d[0]));
        be->ndone = 0;
        for (i = 0; i < n; i++)
            if (done != NULL)
                done(opaque, d[i].tag, d[i].res);
        return n;
    }
    for (;;) {
        int rc;

        if (wait && n == 0 && be->inflight > 0)
            rc = io_uring_wait_cqe(&be->ring, &cqe);
        else
            rc = io_uring_peek_cqe(&be->ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (rc < 0 || cqe == NULL)
            break;
        uint64_t tag = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;

        io_uring_cqe_seen(&be->ring, cqe);
        be->inflight--;
        n++;
        if (done != NULL)
            done(opaque, tag, res);
    }
    return n;
}

bool
nvme_be_ready(struct nvme_be *be)
{
    uint64_t v;

    if (be->null)
        return be->ndone > 0;
    /* Reaping leaves the eventfd alone (a syscall per poll pass); it is
     * drained here, before the ring is looked at, so a completion after
     * the look makes it readable again. */
    if (be->efd >= 0 && read(be->efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing signalled. */
    }
    return io_uring_cq_ready(&be->ring) > 0;
}

unsigned int
nvme_be_busy(const struct nvme_be *be)
{
    return be->null ? be->ndone : be->queued + be->inflight;
}

int
nvme_be_eventfd(const struct nvme_be *be)
{
    return be->efd;
}

int
nvme_be_probe_op(struct nvme_be *be, uint8_t opcode)
{
    struct io_uring_sqe *sqe;
    struct io_uring_cqe *cqe;
    int rc;

    if (be->null)
        return -ENOTSUP;
    if (be->queued + be->inflight > 0)
        return -EBUSY;
    sqe = io_uring_get_sqe(&be->ring);
    if (sqe == NULL)
        return -EBUSY;
    io_uring_prep_rw(opcode, sqe, -1, NULL, 0, 0);
    rc = io_uring_submit_and_wait(&be->ring, 1);
    if (rc < 0)
        return rc;
    rc = io_uring_wait_cqe(&be->ring, &cqe);
    if (rc < 0)
        return rc;
    rc = cqe->res;
    io_uring_cqe_seen(&be->ring, cqe);
    return rc;
}

bool
nvme_be_direct(const struct nvme_be *be)
{
    return be->fd_direct >= 0;
}

bool
nvme_be_is_null(const struct nvme_be *be)
{
    return be->null;
}

void
nvme_be_file_id(const struct nvme_be *be, uint64_t id[2])
{
    id[0] = be->file_id[0];
    id[1] = be->file_id[1];
}
