/*
 * The DMA map table: client mappings kept sorted by IOVA for O(log n)
 * translation, holds that make DMA_UNMAP wait for in-flight device access,
 * and the DMA_READ/DMA_WRITE messages that reach mappings without an fd.
 * Those are asynchronous: the server never waits for the client's answer
 * (a VMM such as QEMU serves them only between its own requests to us, so
 * waiting deadlocks both), it keeps dispatching the client's commands in
 * order and moves the copy on when the answer arrives.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev_priv.h"
#include "umdev/dev_testing.h"

/*
 * The process's DMA mapping budget (dev.h: UMDEV_PROCESS_MAX_DMA_MAPS)
 * and what its devices reserved of it. Process-wide by nature: the
 * kernel's mapping cap is per process, whichever device maps.
 */
static _Atomic uint32_t dma_budget = UMDEV_PROCESS_MAX_DMA_MAPS;
static _Atomic uint32_t dma_reserved;

static int
budget_take(uint32_t n)
{
    uint32_t cur = atomic_load(&dma_reserved);

    do {
        if (n > atomic_load(&dma_budget) - cur)
            return -ENOSPC;
    } while (!atomic_compare_exchange_weak(&dma_reserved, &cur, cur + n));
    return 0;
}

int
umdev_dma_set_process_limit(uint32_t n)
{
    uint32_t cur = atomic_load(&dma_budget);

    if (n == 0)
        n = UMDEV_PROCESS_MAX_DMA_MAPS;
    /* Never below what devices hold now: their promises stand. */
    do {
        if (n < atomic_load(&dma_reserved))
            return -EBUSY;
    } while (!atomic_compare_exchange_weak(&dma_budget, &cur, n));
    return 0;
}

int
dev_dma_init(struct dma_table *t, uint32_t max, uint32_t *left)
{
    memset(t, 0, sizeof(*t));
    t->max = max;
    *left = atomic_load(&dma_budget) - atomic_load(&dma_reserved);
    if (budget_take(max) < 0)
        return -ENOSPC;
    if (pthread_rwlock_init(&t->lock, NULL) != 0)
        goto fail;
    if (pthread_mutex_init(&t->wait_lock, NULL) != 0) {
        pthread_rwlock_destroy(&t->lock);
        goto fail;
    }
    if (pthread_cond_init(&t->released, NULL) != 0) {
        pthread_mutex_destroy(&t->wait_lock);
        pthread_rwlock_destroy(&t->lock);
        goto fail;
    }
    return 0;
fail:
    atomic_fetch_sub(&dma_reserved, max);
    return -ENOMEM;
}

/*
 * Index of the first mapping whose end lies above @iova (t->n if none).
 * O(log n) over the inline keys. Written without a data-dependent branch
 * (the compiler emits a conditional move): random lookups would
 * mispredict about every other step.
 */
static size_t
lower_bound(const struct dma_table *t, uint64_t iova)
{
    const struct dma_slot *s = t->slots;
    size_t base = 0, size = t->n;

    if (size == 0)
        return 0;
    /* Every slot below base ends at or below @iova; the first one that
     * does not lies in [base, base + size]. */
    while (size > 1) {
        size_t half = size / 2;

        base = s[base + half].end <= iova ? base + half : base;
        size -= half;
    }
    return base + (s[base].end <= iova);
}

/* The slot of the mapping containing @iova, under the read lock, or
 * NULL. */
static const struct dma_slot *
find(const struct dma_table *t, uint64_t iova)
{
    size_t i = lower_bound(t, iova);

    if (i < t->n && t->slots[i].iova <= iova)
        return &t->slots[i];
    return NULL;
}

/*
 * The descriptor kept for @fd's file: shared with a mapping of the same
 * file already in the table, else a duplicate of @fd. NULL if none could
 * be made (no descriptor or memory left).
 */
static struct dma_file *
dma_file_get(struct umdev_dev *dev, int fd)
{
    struct dma_table *t = &dev->dma;
    struct dma_file *f = NULL;
    struct stat st;

    if (fstat(fd, &st) < 0)
        return NULL;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->n && f == NULL; i++) {
        struct dma_file *o = t->slots[i].map->file;

        if (o != NULL && o->dev == st.st_dev && o->ino == st.st_ino)
            f = o;
    }
    pthread_rwlock_unlock(&t->lock);
    if (f != NULL) {
        f->refs++;
        return f;
    }
    f = malloc(sizeof(*f));
    if (f == NULL)
        return NULL;
    f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (f->fd < 0) {
        free(f);
        return NULL;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->refs = 1;
    return f;
}

static void
map_free(struct umdev_dev *dev, struct dma_map *m)
{
    if (m->mmap_addr != NULL)
        munmap(m->mmap_addr, m->mmap_len);
    if (m->file != NULL && --m->file->refs == 0) {
        close(m->file->fd);
        free(m->file);
    }
    if (atomic_load(&m->dirty) != NULL)
        atomic_fetch_sub(&dev->log_bitmap_bytes, m->dirty_bytes);
    free(atomic_load(&m->dirty));
    free(m);
}

int
dev_dma_map(struct umdev_dev *dev, const struct vfio_user_dma_map *req, int fd)
{
    struct dma_table *t = &dev->dma;
    struct dma_map *m;
    size_t pos;
    int rc = 0;

    if ((req->addr | req->size) % DEV_PAGE_SIZE != 0 || req->size == 0 ||
        req->addr + req->size < req->addr)
        return -EINVAL;
    /*
     * Touching a mapping beyond the end of its file raises SIGBUS in this
     * process, so a client's fd must be a regular file (memfd, tmpfs,
     * hugetlbfs) that covers the whole range now. Whether it can shrink
     * later: a memfd whose seal list is still open must carry
     * F_SEAL_SHRINK (QEMU's memory-backend-memfd seals grow, shrink and
     * the list itself by default). A file that cannot be sealed (a memfd
     * created without MFD_ALLOW_SEALING, as QEMU's seal=off makes, or a
     * tmpfs or hugetlbfs file: F_SEAL_SEAL set from the start) is
     * accepted; if its owner shrinks it, device accesses run under
     * umdev_fault_guard_run() and fault instead of killing the process.
     */
    if (fd >= 0) {
        struct stat st;
        int seals;

        if (fstat(fd, &st) < 0)
            return -errno;
        if (!S_ISREG(st.st_mode))
            return -EBADF;
        if (req->offset > (uint64_t)st.st_size ||
            req->size > (uint64_t)st.st_size - req->offset)
            return -EINVAL;
        seals = fcntl(fd, F_GET_SEALS);
        if (seals >= 0 && !(seals & (F_SEAL_SEAL | F_SEAL_SHRINK))) {
            umdev_log(dev->log, LOG_WARNING,
                      "DMA_MAP %#llx+%#llx refused: the memfd can still be "
                      "sealed but is not sealed against shrinking; add "
                      "F_SEAL_SHRINK first",
                      (unsigned long long)req->addr,
                      (unsigned long long)req->size);
            return -EINVAL;
        }
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    m->iova = req->addr;
    m->size = req->size;
    m->prot = req->flags;
    m->offset = req->offset;
    /* Logging runs: the new mapping is logged from its first write. Only
     * this thread starts logging, so the flag cannot change meanwhile. */
    if (atomic_load(&dev->dma_logging)) {
        size_t bytes = dev_log_bitmap_bytes(m->size);
        uint64_t *bits;

        if (bytes > UMDEV_DMA_LOG_MAX_BITMAP_BYTES -
                        atomic_load(&dev->log_bitmap_bytes)) {
            free(m);
            return -E2BIG;
        }
        bits = calloc(1, bytes ? bytes : 1);
        if (bits == NULL) {
            free(m);
            return -ENOMEM;
        }
        m->dirty_bytes = bytes;
        atomic_fetch_add(&dev->log_bitmap_bytes, bytes);
        atomic_store(&m->dirty, bits);
    }
    if (fd >= 0) {
        uint64_t pg_off = req->offset % DEV_PAGE_SIZE;
        int prot = 0;
        void *p;

        if (req->flags & VFIO_USER_DMA_MAP_FLAG_READ)
            prot |= PROT_READ;
        if (req->flags & VFIO_USER_DMA_MAP_FLAG_WRITE)
            prot |= PROT_WRITE;
        if (req->size > SIZE_MAX - pg_off) {
            free(m);
            return -EINVAL;
        }
        m->mmap_len = req->size + pg_off;
        p = mmap(NULL, m->mmap_len, prot ? prot : PROT_READ, MAP_SHARED, fd,
                 (off_t)(req->offset - pg_off));
        if (p == MAP_FAILED) {
            rc = -errno;
            free(m);
            return rc;
        }
        m->mmap_addr = p;
        m->base = (uint8_t *)p + pg_off;
        /* Without it the mapping still works; only a handover, which
         * needs it, is refused (it says why). */
        m->file = dma_file_get(dev, fd);
    }

    pthread_rwlock_wrlock(&t->lock);
    if (t->n >= t->max) {
        rc = -ENOSPC;
        goto out;
    }
    pos = lower_bound(t, m->iova);
    /* Spec "VFIO_USER_DMA_MAP": mapping over an existing region is EEXIST. */
    if (pos < t->n && t->slots[pos].iova < m->iova + m->size) {
        rc = -EEXIST;
        goto out;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct dma_slot *v = realloc(t->slots, cap * sizeof(*v));

        if (v == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        t->slots = v;
        t->cap = cap;
    }
    memmove(&t->slots[pos + 1], &t->slots[pos],
            (t->n - pos) * sizeof(*t->slots));
    t->slots[pos] = (struct dma_slot){
        .iova = m->iova,
        .end = m->iova + m->size,
        .map = m,
    };
    t->n++;
out:
    pthread_rwlock_unlock(&t->lock);
    if (rc < 0)
        map_free(dev, m);
    return rc;
}

/* Wait until no device thread holds @m (already unpublished: no new
 * hold can be taken), then free it. */
static void
retire(struct umdev_dev *dev, struct dma_map *m)
{
    struct dma_table *t = &dev->dma;

    if (dev->ops != NULL && dev->ops->dma_unmap != NULL)
        dev->ops->dma_unmap(dev->opaque, m->iova, m->size);
    /*
     * From here on the put that drops the last hold broadcasts (see
     * umdev_dma_put()). It takes wait_lock to do so, and we check under
     * wait_lock before each wait, so the wake-up cannot fall between the
     * check and the wait. A put that saw no DYING bit decremented before
     * our fetch_or and touches @m no more.
     */
    if ((atomic_fetch_or(&m->holds, DMA_MAP_DYING) & ~DMA_MAP_DYING) != 0) {
        pthread_mutex_lock(&t->wait_lock);
        while ((atomic_load(&m->holds) & ~DMA_MAP_DYING) != 0)
            pthread_cond_wait(&t->released, &t->wait_lock);
        pthread_mutex_unlock(&t->wait_lock);
    }
    map_free(dev, m);
}

int
dev_dma_unmap(struct umdev_dev *dev, uint64_t iova, uint64_t size)
{
    struct dma_table *t = &dev->dma;
    struct dma_map *m = NULL;
    size_t pos;

    pthread_rwlock_wrlock(&t->lock);
    pos = lower_bound(t, iova);
    /* Spec "VFIO_USER_DMA_UNMAP": address and size match a mapping. */
    if (pos < t->n && t->slots[pos].iova == iova &&
        t->slots[pos].end - iova == size) {
        m = t->slots[pos].map;
        memmove(&t->slots[pos], &t->slots[pos + 1],
                (t->n - pos - 1) * sizeof(*t->slots));
        t->n--;
    }
    pthread_rwlock_unlock(&t->lock);
    if (m == NULL)
        return -ENOENT;
    /* Unpublished: new translations fail; now drain the old ones. */
    retire(dev, m);
    return 0;
}

void
dev_dma_unmap_all(struct umdev_dev *dev)
{
    struct dma_table *t = &dev->dma;
    struct dma_slot *slots;
    size_t n, i;

    pthread_rwlock_wrlock(&t->lock);
    slots = t->slots;
    n = t->n;
    t->slots = NULL;
    t->n = t->cap = 0;
    pthread_rwlock_unlock(&t->lock);
    for (i = 0; i < n; i++)
        retire(dev, slots[i].map);
    free(slots);
}

void
dev_dma_fini(struct umdev_dev *dev)
{
    dev_dma_unmap_all(dev);
    pthread_cond_destroy(&dev->dma.released);
    pthread_mutex_destroy(&dev->dma.wait_lock);
    pthread_rwlock_destroy(&dev->dma.lock);
    atomic_fetch_sub(&dma_reserved, dev->dma.max);
}

int
umdev_dev_dma_map(struct umdev_dev *dev, uint64_t iova, uint64_t size, int fd,
                  uint64_t offset, uint32_t flags)
{
    struct vfio_user_dma_map m = {
        .argsz = sizeof(m),
        .flags = flags,
        .offset = offset,
        .addr = iova,
        .size = size,
    };

    return dev_dma_map(dev, &m, fd);
}

size_t
umdev_dma_count(struct umdev_dev *dev)
{
    size_t n;

    pthread_rwlock_rdlock(&dev->dma.lock);
    n = dev->dma.n;
    pthread_rwlock_unlock(&dev->dma.lock);
    return n;
}

static int
check_prot(const struct dma_map *m, int prot)
{
    if ((prot & UMDEV_DMA_READ) && !(m->prot & VFIO_USER_DMA_MAP_FLAG_READ))
        return -EACCES;
    if ((prot & UMDEV_DMA_WRITE) && !(m->prot & VFIO_USER_DMA_MAP_FLAG_WRITE))
        return -EACCES;
    return 0;
}

/* A device that needs mapped guest memory met memory without an fd: say
 * why it cannot work, once per client, where an operator looks. */
static void
not_shared(struct umdev_dev *dev, uint64_t iova)
{
    if (!dev->needs_shared_memory || atomic_exchange(&dev->unshared_seen, true))
        return;
    /* The address tells RAM from the ROMs a VMM also maps without an fd. */
    umdev_log(dev->log, LOG_ERR, "%s: %s (first met at guest address 0x%llx)",
              dev->name, UMDEV_DMA_NOT_SHARED_REASON, (unsigned long long)iova);
}

void
umdev_dev_set_needs_shared_memory(struct umdev_dev *dev, bool needs)
{
    dev->needs_shared_memory = needs;
}

bool
umdev_dev_needs_shared_memory(const struct umdev_dev *dev)
{
    return dev->needs_shared_memory;
}

const char *
umdev_dev_guest_memory_problem(struct umdev_dev *dev)
{
    return atomic_load(&dev->unshared_seen) ? UMDEV_DMA_NOT_SHARED_REASON
                                            : NULL;
}

int
umdev_dma_get(struct umdev_dev *dev, uint64_t iova, uint64_t len, int prot,
              struct umdev_dma_hold *hold)
{
    struct dma_table *t = &dev->dma;
    const struct dma_slot *s;
    struct dma_map *m = NULL;
    int rc = 0;

    hold->ptr = NULL;
    hold->span_iova = hold->span_len = 0;
    hold->map_ = NULL;
    if (len == 0 || iova + len < iova)
        return -EFAULT;
    pthread_rwlock_rdlock(&t->lock);
    s = find(t, iova);
    if (s == NULL || iova + len > s->end) {
        rc = -EFAULT;
    } else {
        m = s->map;
        rc = check_prot(m, prot);
        if (rc == 0 && m->base == NULL)
            rc = -ENOTSUP;
    }
    if (rc == 0) {
        atomic_fetch_add(&m->holds, 1);
        hold->ptr = m->base + (iova - m->iova);
        hold->span_iova = m->iova;
        hold->span_len = m->size;
        hold->map_ = m;
        /* Marked now, with the hold counted (see dev_log_report()). */
        if ((prot & UMDEV_DMA_WRITE) && dev_log_on(dev))
            dev_log_mark(m, iova, len);
    }
    pthread_rwlock_unlock(&t->lock);
    if (rc == -ENOTSUP)
        not_shared(dev, iova);
    return rc;
}

void
umdev_dma_put(struct umdev_dev *dev, struct umdev_dma_hold *hold)
{
    struct dma_map *m = hold->map_;

    if (m == NULL)
        return;
    hold->map_ = NULL;
    hold->ptr = NULL;
    /* Only the last hold on a map being retired wakes anyone (retire());
     * after this RMW @m may be freed, so it is not touched again. */
    if (atomic_fetch_sub(&m->holds, 1) == (DMA_MAP_DYING | 1)) {
        pthread_mutex_lock(&dev->dma.wait_lock);
        pthread_cond_broadcast(&dev->dma.released);
        pthread_mutex_unlock(&dev->dma.wait_lock);
    }
}

int
umdev_dma_mark(struct umdev_dev *dev, const struct umdev_dma_hold *hold,
               uint64_t iova, uint64_t len)
{
    struct dma_map *m = hold->map_;

    if (m == NULL || len == 0 || iova < m->iova || iova - m->iova > m->size ||
        len > m->size - (iova - m->iova))
        return -EFAULT;
    if (dev_log_on(dev))
        dev_log_mark(m, iova, len);
    return 0;
}

/*
 * Copy the parts of [*iova, *iova + *len) mapped with an fd, advancing the
 * cursors, until the range ends (return 0) or reaches a part mapped
 * without one (return 1, *msg_span = how much of the rest lies in that
 * mapping). -EFAULT on a hole or on pages the client cut from the file
 * behind the mapping, -EACCES on the wrong protection.
 */
static int
copy_mapped(struct umdev_dev *dev, uint64_t *iova, uint8_t **p, size_t *len,
            bool write, size_t *msg_span)
{
    int prot = write ? UMDEV_DMA_WRITE : UMDEV_DMA_READ;
    struct dma_table *t = &dev->dma;

    if (*len > 0 && *iova + *len < *iova)
        return -EFAULT;
    while (*len > 0) {
        const struct dma_slot *s;
        struct dma_map *m = NULL;
        size_t chunk = 0;
        uint8_t *host = NULL;
        int rc;

        pthread_rwlock_rdlock(&t->lock);
        s = find(t, *iova);
        if (s != NULL)
            m = s->map;
        rc = m == NULL ? -EFAULT : check_prot(m, prot);
        if (rc == 0) {
            uint64_t left = s->end - *iova;

            chunk = left < *len ? (size_t)left : *len;
            if (m->base != NULL) {
                host = m->base + (*iova - m->iova);
                atomic_fetch_add(&m->holds, 1);
            }
        }
        pthread_rwlock_unlock(&t->lock);
        if (rc < 0)
            return rc;
        if (host == NULL) {
            *msg_span = chunk;
            return 1;
        }
        {
            struct umdev_dma_hold h = { .ptr = host, .map_ = m };

            /* The client may have shrunk the file behind the mapping: a
             * bus error is its fault, not a reason to end the server. */
            rc = write ? umdev_fault_guard_memcpy(host, *p, chunk)
                       : umdev_fault_guard_memcpy(*p, host, chunk);
            /* Marked even if the copy faulted part way: some bytes may
             * have landed, and a false positive costs only a page. */
            if (write && dev_log_on(dev))
                dev_log_mark(m, *iova, chunk);
            umdev_dma_put(dev, &h);
            if (rc < 0)
                return rc;
        }
        atomic_fetch_add(&dev->dma_bytes, chunk);
        *iova += chunk;
        *p += chunk;
        *len -= chunk;
    }
    return 0;
}

static int
dma_copy(struct umdev_dev *dev, uint64_t iova, void *buf, size_t len,
         bool write)
{
    uint8_t *p = buf;
    size_t span;
    int rc;

    rc = copy_mapped(dev, &iova, &p, &len, write, &span);
    /* Waiting here for the client's answer is what deadlocks a VMM that
     * serves DMA only between vCPU exits: that part is for the async
     * calls. */
    if (rc == 1) {
        not_shared(dev, iova);
        return -ENOTSUP;
    }
    return rc;
}

int
umdev_dma_read(struct umdev_dev *dev, uint64_t iova, void *buf, size_t len)
{
    return dma_copy(dev, iova, buf, len, false);
}

int
umdev_dma_write(struct umdev_dev *dev, uint64_t iova, const void *buf,
                size_t len)
{
    return dma_copy(dev, iova, (void *)buf, len, true);
}

/* An id no pending request uses: ids wrap at 65536, and a request the
 * client sits on must not be answered by a reply meant for a newer one. */
static uint16_t
free_id(struct umdev_dev *dev)
{
    for (;;) {
        uint16_t id = conn_next_id(dev->conn);
        const struct dma_req *r;

        for (r = dev->dma_pending; r != NULL; r = r->next)
            if (r->msg_id == id)
                break;
        if (r == NULL)
            return id;
    }
}

/* Send the DMA_READ/DMA_WRITE for the start of @span bytes at r->iova and
 * put @r on the pending list. */
static int
req_send(struct umdev_dev *dev, struct dma_req *r, size_t span)
{
    struct vfio_user_dma_access a = { .addr = r->iova };
    struct vfio_user_header hdr = { 0 };
    size_t chunk, max;
    int rc;

    if (dev->conn == NULL || !dev->negotiated)
        return -ENOTCONN;
    /* A DMA_WRITE's data goes to the client, a DMA_READ's comes back to
     * us: both sides' max_data_xfer_size bound a chunk. */
    max = conn_peer_caps(dev->conn)->max_data_xfer_size;
    if (max > conn_local_caps(dev->conn)->max_data_xfer_size)
        max = conn_local_caps(dev->conn)->max_data_xfer_size;
    if (max > UMDEV_DMA_MAX_PENDING_BYTES)
        max = UMDEV_DMA_MAX_PENDING_BYTES;
    if (max == 0)
        return -EIO;
    chunk = span < max ? span : max;
    if (dev->dma_pending_n >= UMDEV_DMA_MAX_PENDING ||
        chunk > UMDEV_DMA_MAX_PENDING_BYTES - dev->dma_pending_bytes)
        return -EBUSY;
    a.count = chunk;
    hdr.msg_id = free_id(dev);
    hdr.cmd = r->write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ;
    hdr.msg_size = (uint32_t)umdev_wire_size(sizeof(a), r->write ? chunk : 0);
    rc = conn_sendv(dev->conn, &hdr, &a, sizeof(a), r->write ? r->buf : NULL,
                    r->write ? chunk : 0, NULL, 0);
    if (rc < 0)
        return rc;
    /* The client does this write, but the device asked for it: logged
     * like the others (the client's own tracking may not see it). */
    if (r->write && dev_log_on(dev))
        dev_log_mark_range(dev, r->iova, chunk);
    r->msg_id = hdr.msg_id;
    r->chunk = (uint32_t)chunk;
    r->next = NULL;
    if (dev->dma_pending_tail != NULL)
        dev->dma_pending_tail->next = r;
    else
        dev->dma_pending = r;
    dev->dma_pending_tail = r;
    dev->dma_pending_n++;
    dev->dma_pending_bytes += chunk;
    return 0;
}

/* Move @r on from r->iova: copy what is mapped, send the next request.
 * Return 0 when all is moved, 1 with a request in flight, or -errno. */
static int
req_advance(struct umdev_dev *dev, struct dma_req *r)
{
    size_t span;
    int rc;

    rc = copy_mapped(dev, &r->iova, &r->buf, &r->left, r->write, &span);
    if (rc <= 0)
        return rc;
    rc = req_send(dev, r, span);
    return rc < 0 ? rc : 1;
}

static int
dma_async(struct umdev_dev *dev, uint64_t iova, void *buf, size_t len,
          bool write, umdev_dma_done_fn *done, void *opaque)
{
    struct dma_req first = {
        .iova = iova,
        .buf = buf,
        .left = len,
        .write = write,
        .done = done,
        .opaque = opaque,
    };
    struct dma_req *r;
    size_t span;
    int rc;

    if (done == NULL)
        return -EINVAL;
    rc = copy_mapped(dev, &first.iova, &first.buf, &first.left, write, &span);
    if (rc <= 0)
        return rc;
    r = malloc(sizeof(*r));
    if (r == NULL)
        return -ENOMEM;
    *r = first;
    rc = req_send(dev, r, span);
    if (rc < 0) {
        free(r);
        return rc;
    }
    return -EINPROGRESS;
}

int
umdev_dma_read_async(struct umdev_dev *dev, uint64_t iova, void *buf,
                     size_t len, umdev_dma_done_fn *done, void *opaque)
{
    return dma_async(dev, iova, buf, len, false, done, opaque);
}

int
umdev_dma_write_async(struct umdev_dev *dev, uint64_t iova, const void *buf,
                      size_t len, umdev_dma_done_fn *done, void *opaque)
{
    return dma_async(dev, iova, (void *)buf, len, true, done, opaque);
}

/* What the client's answer to @r says: 0 (a DMA_READ's data copied) or
 * the error the copy ends with. */
static int
reply_result(struct umdev_dev *dev, struct dma_req *r, const struct conn_msg *m)
{
    struct umdev_wire_msg w;

    if (m->rx_error < 0)
        return -EIO;
    if (m->hdr.flags & VFIO_USER_F_ERROR)
        return m->hdr.error != 0 && m->hdr.error < 4096 ? -(int)m->hdr.error
                                                        : -EIO;
    if (umdev_wire_decode(m->buf, m->len, m->nfds, conn_rx_limits(dev->conn),
                          &w) < 0)
        return -EIO;
    if (w.u.dma_access.addr != r->iova)
        return -EIO;
    if (!r->write) {
        if (w.data_len != r->chunk)
            return -EIO;
        if (r->buf != NULL)
            memcpy(r->buf, w.data, r->chunk);
    }
    return 0;
}

bool
dev_dma_reply(struct umdev_dev *dev, const struct conn_msg *m)
{
    struct dma_req *r, *prev = NULL;
    umdev_dma_done_fn *done;
    void *opaque;
    int rc;

    for (r = dev->dma_pending; r != NULL; prev = r, r = r->next)
        if (r->msg_id == m->hdr.msg_id &&
            m->hdr.cmd == (r->write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ))
            break;
    if (r == NULL)
        return false;
    if (prev != NULL)
        prev->next = r->next;
    else
        dev->dma_pending = r->next;
    if (dev->dma_pending_tail == r)
        dev->dma_pending_tail = prev;
    dev->dma_pending_n--;
    dev->dma_pending_bytes -= r->chunk;
    if (r->done == NULL) {
        /* Cancelled: the answer only frees the slot. */
        free(r);
        return true;
    }
    rc = reply_result(dev, r, m);
    if (rc == 0) {
        atomic_fetch_add(&dev->dma_bytes, r->chunk);
        r->iova += r->chunk;
        r->buf += r->chunk;
        r->left -= r->chunk;
        rc = r->left > 0 ? req_advance(dev, r) : 0;
        if (rc == 1)
            return true;
    }
    /* Off the list before the call: the device may start another copy. */
    done = r->done;
    opaque = r->opaque;
    free(r);
    done(opaque, rc);
    return true;
}

void
dev_dma_fail_pending(struct umdev_dev *dev)
{
    struct dma_req *r = dev->dma_pending;

    dev->dma_pending = dev->dma_pending_tail = NULL;
    dev->dma_pending_n = dev->dma_pending_bytes = 0;
    while (r != NULL) {
        struct dma_req *next = r->next;

        if (r->done != NULL)
            r->done(r->opaque, -ECONNRESET);
        free(r);
        r = next;
    }
}

size_t
umdev_dma_cancel(struct umdev_dev *dev, void *opaque)
{
    struct dma_req *r;
    size_t n = 0;

    for (r = dev->dma_pending; r != NULL; r = r->next) {
        if (r->done != NULL && r->opaque == opaque) {
            r->done = NULL;
            r->buf = NULL;
            n++;
        }
    }
    return n;
}

size_t
umdev_dma_pending(struct umdev_dev *dev)
{
    return dev->dma_pending_n;
}
