/*
 * lib/access: the host-process side of the direct access path. A handle
 * owns the queue memory (a memfd holding the ring and one completion
 * record per ring slot), the completion eventfd, the table of registered
 * ranges and the ring bookkeeping; the provider (umdev/access.h) owns the
 * queue and the engine behind it. Everything the caller passes is checked
 * here, before a provider sees it.
 *
 * Ring protocol (devices/accel/README.md "Submitting"): the library
 * writes descriptors and TAIL; the engine writes HEAD, the completion
 * records, DOORBELL_NEEDED and WAKE_INDEX. The driver side is the ring
 * ABI's own helpers (umdev/accel_ring.h) with one record per ring slot,
 * so a slot is reused only after its record was reaped.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "umdev/access.h"
#include "util.h"

struct range {
    uint64_t va, len;
};

struct umdev_access {
    const struct umdev_access_provider *p; /* borrowed */
    void *pq;                              /* the provider's queue */
    const struct umdev_logger *log;        /* borrowed */

    int memfd;
    uint8_t *mem; /* the queue memory: ring, then completion records */
    size_t mem_len;
    uint8_t *resv; /* mem with a PROT_NONE guard page on each side */
    size_t resv_len;
    uint8_t *intr; /* per slot: DF_INTR was set */
    int efd;

    /* Ring and records (within mem), TAIL and reaping; the engine sees
     * the same addresses, so comps_addr is the records' VA. */
    struct accel_ring_drv r;

    struct range ranges[UMDEV_ACCESS_MAX_REGIONS];
    unsigned int nranges;

    struct umdev_access_stats stats;
};

static uint64_t
page_up(uint64_t v)
{
    return (v + UMDEV_ACCESS_PAGE - 1) & ~(uint64_t)(UMDEV_ACCESS_PAGE - 1);
}

static bool
overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static bool
provider_ok(const struct umdev_access_provider *p)
{
    const struct umdev_access_provider_ops *o = p ? p->ops : NULL;

    return o != NULL && o->open != NULL && o->mem_register != NULL &&
           o->mem_unregister != NULL && o->doorbell != NULL &&
           o->close != NULL;
}

int
umdev_access_open(const struct umdev_access_provider *p,
                  const struct umdev_access_opts *opts,
                  struct umdev_access **out)
{
    struct umdev_access_opts o = { 0 };
    struct umdev_access_queue_args qa = { 0 };
    struct umdev_access *a;
    uint64_t ring_len, comps_off;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (opts != NULL)
        o = *opts;
    if (!provider_ok(p)) {
        umdev_log(o.log, LOG_ERR, "access: provider lacks required ops");
        return -EINVAL;
    }
    if (o.depth == 0)
        o.depth = UMDEV_ACCESS_DEFAULT_DEPTH;
    if (o.priority == 0)
        o.priority = UMDEV_ACCESS_PRIO_MIN;
    if (o.depth > UMDEV_ACCESS_RING_MAX || (o.depth & (o.depth - 1)) != 0) {
        umdev_log(o.log, LOG_ERR,
                  "access: depth %" PRIu32 " is not a power of two in "
                  "1..%u",
                  o.depth, UMDEV_ACCESS_RING_MAX);
        return -EINVAL;
    }
    if (o.priority < UMDEV_ACCESS_PRIO_MIN ||
        o.priority > UMDEV_ACCESS_PRIO_MAX) {
        umdev_log(o.log, LOG_ERR, "access: priority %" PRIu32 " not in %u..%u",
                  o.priority, UMDEV_ACCESS_PRIO_MIN, UMDEV_ACCESS_PRIO_MAX);
        return -EINVAL;
    }

    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    a->p = p;
    a->log = o.log;
    a->memfd = -1;
    a->efd = -1;
    a->mem = MAP_FAILED;
    a->resv = MAP_FAILED;
    a->intr = calloc(o.depth, 1);
    if (a->intr == NULL) {
        rc = -ENOMEM;
        goto fail;
    }

    /* Ring first (page-aligned, so ACCEL_RING_ALIGN holds), then one
     * record per slot on its own pages. */
    ring_len = accel_ring_bytes(o.depth);
    comps_off = page_up(ring_len);
    a->mem_len = page_up(comps_off + (uint64_t)o.depth * ACCEL_COMP_SIZE);
    a->memfd = memfd_create("umdev-access-queue", MFD_CLOEXEC);
    if (a->memfd < 0 || ftruncate(a->memfd, (off_t)a->mem_len) < 0) {
        rc = -errno;
        umdev_log(a->log, LOG_ERR, "access: queue memory: %s", strerror(-rc));
        goto fail;
    }
    /* Guard pages keep the caller's registered memory from ever lying
     * next to the queue memory, so an operand running off the end of a
     * registered range faults instead of reaching the ring. */
    a->resv_len = a->mem_len + 2 * (size_t)UMDEV_ACCESS_PAGE;
    a->resv = mmap(NULL, a->resv_len, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a->resv != MAP_FAILED)
        a->mem = mmap(a->resv + UMDEV_ACCESS_PAGE, a->mem_len,
                      PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
                      a->memfd, 0);
    if (a->resv == MAP_FAILED || a->mem == MAP_FAILED) {
        rc = -errno;
        umdev_log(a->log, LOG_ERR, "access: map queue memory: %s",
                  strerror(-rc));
        goto fail;
    }
    accel_ring_drv_init(&a->r, a->mem, o.depth,
                        (struct accel_comp *)(void *)(a->mem + comps_off),
                        (uint64_t)(uintptr_t)(a->mem + comps_off));
    a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->efd < 0) {
        rc = -errno;
        umdev_log(a->log, LOG_ERR, "access: eventfd: %s", strerror(-rc));
        goto fail;
    }

    qa.va = (uint64_t)(uintptr_t)a->mem;
    qa.len = a->mem_len;
    qa.fd = a->memfd;
    qa.depth = o.depth;
    qa.priority = o.priority;
    qa.efd = a->efd;
    rc = p->ops->open(p->opaque, &qa, &a->pq);
    if (rc < 0) {
        umdev_log(a->log, LOG_ERR, "access: %s: cannot open a queue: %s",
                  p->name ? p->name : "provider", strerror(-rc));
        a->pq = NULL;
        goto fail;
    }
    *out = a;
    return 0;
fail:
    umdev_access_close(a);
    return rc;
}

void
umdev_access_close(struct umdev_access *a)
{
    if (a == NULL)
        return;
    /* The provider first: after close nothing touches our memory. */
    if (a->pq != NULL)
        a->p->ops->close(a->pq);
    if (a->resv != MAP_FAILED)
        munmap(a->resv, a->resv_len); /* the queue memory with it */
    if (a->memfd >= 0)
        close(a->memfd);
    if (a->efd >= 0)
        close(a->efd);
    free(a->intr);
    free(a);
}

/*
 * Check in /proc/self/maps that [va, va + len) is a shared mapping of the
 * file (@st) at @offset, with the permissions @prot needs: the embedded
 * engine writes through these very addresses, so a read-only or private
 * mapping must not get in.
 */
static int
check_mapping(const struct umdev_access *a, uint64_t va, uint64_t len,
              const struct stat *st, uint64_t offset, int prot)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char *line = NULL;
    size_t cap = 0;
    uint64_t cur = va, end = va + len;
    bool said = false;

    if (f == NULL)
        return -errno;
    while (cur < end && getline(&line, &cap, f) > 0) {
        unsigned long long lo, hi, off, ino;
        unsigned int maj, mnr;
        char perms[5];

        if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu", &lo, &hi, perms,
                   &off, &maj, &mnr, &ino) != 7)
            continue;
        if (hi <= cur)
            continue;
        if (lo > cur)
            break;
        if (perms[3] != 's' ||
            ((prot & UMDEV_ACCESS_READ) && perms[0] != 'r') ||
            ((prot & UMDEV_ACCESS_WRITE) && perms[1] != 'w') ||
            ino != (unsigned long long)st->st_ino ||
            makedev(maj, mnr) != st->st_dev ||
            off + (cur - lo) != offset + (cur - va)) {
            umdev_log(a->log, LOG_NOTICE,
                      "access: %#" PRIx64 " is not a shared %s%s mapping "
                      "of the fd at offset %#" PRIx64,
                      cur, (prot & UMDEV_ACCESS_READ) ? "r" : "",
                      (prot & UMDEV_ACCESS_WRITE) ? "w" : "",
                      offset + (cur - va));
            said = true;
            break;
        }
        cur = hi;
    }
    free(line);
    fclose(f);
    if (cur >= end)
        return 0;
    if (!said)
        umdev_log(a->log, LOG_NOTICE, "access: %#" PRIx64 " is not mapped",
                  cur);
    return -EINVAL;
}

int
umdev_access_mem_register(struct umdev_access *a, void *addr, size_t len,
                          int fd, uint64_t offset, int prot)
{
    uint64_t va = (uint64_t)(uintptr_t)addr;
    struct stat st;
    unsigned int i;
    int rc;

    if (a == NULL)
        return -EINVAL;
    if (addr == NULL || len == 0 || va % UMDEV_ACCESS_PAGE != 0 ||
        len % UMDEV_ACCESS_PAGE != 0 || offset % UMDEV_ACCESS_PAGE != 0 ||
        va + len < va || offset + len < offset ||
        (prot & ~(UMDEV_ACCESS_READ | UMDEV_ACCESS_WRITE)) != 0 || prot == 0) {
        umdev_log(a->log, LOG_NOTICE,
                  "access: register %#" PRIx64 "+%#zx at offset %#" PRIx64
                  " prot %d: not page-granular or bad prot",
                  va, len, offset, prot);
        return -EINVAL;
    }
    if (fd < 0 || fstat(fd, &st) < 0)
        return -EBADF;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < offset + len) {
        umdev_log(a->log, LOG_NOTICE,
                  "access: register: fd is not a file of at least %#" PRIx64
                  " bytes",
                  offset + len);
        return -EINVAL;
    }
    if (overlaps(va, len, (uint64_t)(uintptr_t)a->mem, a->mem_len)) {
        umdev_log(a->log, LOG_NOTICE,
                  "access: register %#" PRIx64 ": overlaps the queue memory",
                  va);
        return -EINVAL;
    }
    for (i = 0; i < a->nranges; i++) {
        if (overlaps(va, len, a->ranges[i].va, a->ranges[i].len)) {
            umdev_log(a->log, LOG_NOTICE,
                      "access: register %#" PRIx64
                      ": overlaps the range at %#" PRIx64,
                      va, a->ranges[i].va);
            return -EINVAL;
        }
    }
    if (a->nranges == UMDEV_ACCESS_MAX_REGIONS)
        return -ENOSPC;
    rc = check_mapping(a, va, len, &st, offset, prot);
    if (rc < 0)
        return rc;
    rc = a->p->ops->mem_register(a->pq, va, len, fd, offset, prot);
    if (rc < 0)
        return rc;
    a->ranges[a->nranges].va = va;
    a->ranges[a->nranges].len = len;
    a->nranges++;
    return 0;
}

int
umdev_access_mem_unregister(struct umdev_access *a, void *addr)
{
    uint64_t va = (uint64_t)(uintptr_t)addr;
    unsigned int i;
    int rc;

    if (a == NULL)
        return -EINVAL;
    for (i = 0; i < a->nranges && a->ranges[i].va != va; i++)
        ;
    if (i == a->nranges)
        return -ENOENT;
    rc = a->p->ops->mem_unregister(a->pq, va);
    if (rc < 0)
        return rc;
    a->ranges[i] = a->ranges[--a->nranges];
    return 0;
}

unsigned int
umdev_access_space(const struct umdev_access *a)
{
    /* A slot's record was reaped, so the engine is done with the slot
     * (accel_ring_room()); a HEAD beyond TAIL gives no room. */
    return accel_ring_room(&a->r);
}

int
umdev_access_submit(struct umdev_access *a, const struct accel_desc *d,
                    unsigned int n)
{
    unsigned int i, room;

    if (a == NULL || (d == NULL && n > 0))
        return -EINVAL;
    for (i = 0; i < n; i++) {
        if (d[i].comp != 0 || (d[i].flags & ~(ACCEL_DF_COMP | ACCEL_DF_INTR))) {
            umdev_log(a->log, LOG_NOTICE, "access: descriptor %u: %s", i,
                      d[i].comp != 0 ? "names a completion record"
                                     : "unknown flags");
            return -EINVAL;
        }
    }
    room = umdev_access_space(a);
    if (n > room)
        n = room;
    if (n == 0)
        return 0;
    for (i = 0; i < n; i++) {
        uint32_t idx = accel_ring_post(&a->r, &d[i]);

        a->intr[idx & (a->r.size - 1)] = (d[i].flags & ACCEL_DF_INTR) != 0;
    }
    if (accel_ring_publish(&a->r)) {
        a->p->ops->doorbell(a->pq);
        a->stats.doorbells++;
    }
    a->stats.submitted += n;
    return (int)n;
}

/* The oldest outstanding descriptor's record (status with acquire). */
static uint8_t
oldest_status(const struct umdev_access *a)
{
    return accel_comp_status(&a->r.comps[a->r.reaped & (a->r.size - 1)]);
}

int
umdev_access_reap(struct umdev_access *a, struct accel_comp *out,
                  unsigned int max)
{
    unsigned int n = 0;

    if (a == NULL || (out == NULL && max > 0))
        return -EINVAL;
    while (n < max && accel_ring_reap(&a->r, &out[n]))
        n++;
    a->stats.reaped += n;
    return (int)n;
}


int
umdev_access_wait(struct umdev_access *a, int timeout_ms)
{
    int64_t deadline;

    if (a == NULL)
        return -EINVAL;
    if (a->r.reaped == a->r.tail)
        return -ENOENT;
    if (!a->intr[a->r.reaped & (a->r.size - 1)])
        return -EINVAL;
    deadline = util_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd pfd = { .fd = a->efd, .events = POLLIN };
        uint64_t cnt;
        int left = -1, rc;

        /* Checked after each drain of the eventfd: a completion that
         * lands between the check and poll() leaves the eventfd set. */
        if (oldest_status(a) != ACCEL_ST_NONE)
            return 0;
        if (timeout_ms >= 0) {
            int64_t l = deadline - util_now_ms();

            if (l <= 0)
                return -ETIMEDOUT;
            left = l > INT32_MAX ? INT32_MAX : (int)l;
        }
        a->stats.waits++;
        rc = poll(&pfd, 1, left);
        if (rc < 0 && errno != EINTR)
            return -errno;
        if (rc > 0 && read(a->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
            return -errno;
    }
}

int
umdev_access_fd(const struct umdev_access *a)
{
    return a->efd;
}

unsigned int
umdev_access_outstanding(const struct umdev_access *a)
{
    return a->r.tail - a->r.reaped;
}

uint32_t
umdev_access_depth(const struct umdev_access *a)
{
    return a->r.size;
}

const void *
umdev_access_ring(const struct umdev_access *a)
{
    return a->mem;
}

void
umdev_access_get_stats(struct umdev_access *a, struct umdev_access_stats *out)
{
    *out = a->stats;
    memset(&out->queue, 0, sizeof(out->queue));
    if (a->p->ops->status != NULL)
        a->p->ops->status(a->pq, &out->queue);
}
