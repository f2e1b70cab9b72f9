/*
 * The DMA map table: client mappings kept sorted by IOVA for O(log n)
 * translation, holds that make DMA_UNMAP wait for in-flight device access,
 * and the DMA_READ/DMA_WRITE message fallback for mappings without an fd.
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

static void
map_free(struct dma_map *m)
{
    if (m->mmap_addr != NULL)
        munmap(m->mmap_addr, m->mmap_len);
    free(m);
}

int
dev_dma_map(struct umdev_dev *dev, const struct vfio_user_dma_map *req,
            int fd)
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
        map_free(m);
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
    map_free(m);
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
    if ((prot & UMDEV_DMA_WRITE) &&
        !(m->prot & VFIO_USER_DMA_MAP_FLAG_WRITE))
        return -EACCES;
    return 0;
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
    }
    pthread_rwlock_unlock(&t->lock);
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

/* Client commands that arrive while we wait for a DMA reply are kept for
 * the dispatcher, in order. */
static int
queue_commands(struct conn *conn, struct conn_msg *msg, void *opaque)
{
    (void)conn;
    (void)msg;
    (void)opaque;
    return 1;
}

/* One DMA_READ/DMA_WRITE exchange of at most max_data_xfer_size bytes. */
static int
dma_message(struct umdev_dev *dev, uint64_t iova, void *buf, size_t len,
            bool write)
{
    struct vfio_user_dma_access a = { .addr = iova, .count = len };
    struct vfio_user_header hdr = { 0 };
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    uint8_t *msg;
    size_t size;
    int rc;

    if (dev->conn == NULL || !dev->negotiated)
        return -ENOTCONN;
    size = umdev_wire_size(sizeof(a), write ? len : 0);
    msg = malloc(size);
    if (msg == NULL)
        return -ENOMEM;
    hdr.msg_id = conn_next_id(dev->conn);
    umdev_wire_encode(msg, size, hdr.msg_id,
                      write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ, 0,
                      &a, sizeof(a), write ? buf : NULL, write ? len : 0);
    rc = conn_request(dev->conn, msg, size, NULL, 0, CONN_DEFAULT_TIMEOUT_MS,
                      queue_commands, NULL, &reply);
    free(msg);
    if (rc < 0)
        return rc;
    rc = umdev_wire_decode(reply->buf, reply->len, reply->nfds,
                           conn_rx_limits(dev->conn), &w);
    if (rc == 0 && !write &&
        (w.u.dma_access.addr != iova || w.data_len != len))
        rc = -EIO;
    if (rc == 0 && !write)
        memcpy(buf, w.data, len);
    conn_msg_free(reply);
    return rc;
}

static int
dma_copy(struct umdev_dev *dev, uint64_t iova, void *buf, size_t len,
         bool write)
{
    int prot = write ? UMDEV_DMA_WRITE : UMDEV_DMA_READ;
    uint8_t *p = buf;

    if (len == 0)
        return 0;
    if (iova + len < iova)
        return -EFAULT;
    while (len > 0) {
        struct dma_table *t = &dev->dma;
        const struct dma_slot *s;
        struct dma_map *m = NULL;
        size_t chunk;
        uint8_t *host = NULL;
        int rc;

        pthread_rwlock_rdlock(&t->lock);
        s = find(t, iova);
        if (s != NULL)
            m = s->map;
        rc = m == NULL ? -EFAULT : check_prot(m, prot);
        if (rc == 0) {
            uint64_t left = s->end - iova;

            chunk = left < len ? (size_t)left : len;
            if (m->base != NULL) {
                host = m->base + (iova - m->iova);
                atomic_fetch_add(&m->holds, 1);
            }
        }
        pthread_rwlock_unlock(&t->lock);
        if (rc < 0)
            return rc;
        if (host != NULL) {
            struct umdev_dma_hold h = { .ptr = host, .map_ = m };

            if (write)
                memcpy(host, p, chunk);
            else
                memcpy(p, host, chunk);
            umdev_dma_put(dev, &h);
        } else {
            uint32_t max = conn_peer_caps(dev->conn)->max_data_xfer_size;

            if (max == 0)
                return -EIO;
            if (chunk > max)
                chunk = max;
            rc = dma_message(dev, iova, p, chunk, write);
            if (rc < 0)
                return rc;
        }
        atomic_fetch_add(&dev->dma_bytes, chunk);
        iova += chunk;
        p += chunk;
        len -= chunk;
    }
    return 0;
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
