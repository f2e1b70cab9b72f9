/*
 * DMA dirty logging (spec DEVICE_FEATURE DMA_LOGGING_START/STOP/REPORT):
 * every write the device makes to guest memory through the lib/dev DMA API
 * sets a bit per DEV_PAGE_SIZE page in the bitmap of the mapping it went
 * to, so no device can forget to. A report walks the mappings of the range
 * asked, takes and clears their bits, and lays them out at the page size
 * the client asks (a bit set for every report page that overlaps a dirty
 * page: replicated when the client's pages are smaller, merged when
 * larger). While logging is off a writer pays one load of a flag.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dev_priv.h"

size_t
dev_log_bitmap_bytes(uint64_t size)
{
    uint64_t pages = size / DEV_PAGE_SIZE; /* maps are page multiples */

    return (size_t)((pages + 63) / 64) * sizeof(uint64_t);
}

void
dev_log_mark(struct dma_map *m, uint64_t iova, uint64_t len)
{
    uint64_t *bits = atomic_load_explicit(&m->dirty, memory_order_acquire);
    uint64_t first, last, p;

    if (bits == NULL || len == 0)
        return;
    /* Callers pass ranges inside @m; clamp anyway, it costs nothing. */
    if (iova < m->iova)
        iova = m->iova;
    if (iova + len - 1 > m->iova + m->size - 1)
        len = m->iova + m->size - iova;
    first = (iova - m->iova) / DEV_PAGE_SIZE;
    last = (iova + len - 1 - m->iova) / DEV_PAGE_SIZE;
    /* seq_cst: ordered against a report's clear and hold check (see
     * report_map()); paid only while logging. */
    for (p = first; p <= last; p++)
        atomic_fetch_or((_Atomic uint64_t *)&bits[p / 64], 1ull << (p % 64));
}

void
dev_log_mark_range(struct umdev_dev *dev, uint64_t iova, uint64_t len)
{
    struct dma_table *t = &dev->dma;
    size_t i;

    pthread_rwlock_rdlock(&t->lock);
    for (i = 0; i < t->n && len > 0; i++) {
        const struct dma_slot *s = &t->slots[i];
        uint64_t lo, hi;

        if (s->end <= iova || s->iova >= iova + len)
            continue;
        lo = s->iova > iova ? s->iova : iova;
        hi = s->end < iova + len ? s->end : iova + len;
        dev_log_mark(s->map, lo, hi - lo);
    }
    pthread_rwlock_unlock(&t->lock);
}

/* Give every current map a clear bitmap. */
static int
bitmaps_ready(struct umdev_dev *dev)
{
    struct dma_table *t = &dev->dma;
    size_t i, need = 0;
    int rc = 0;

    pthread_rwlock_wrlock(&t->lock);
    /* The client chose the mappings' sizes: bound what they cost before
     * allocating any of it. */
    for (i = 0; i < t->n; i++) {
        const struct dma_map *m = t->slots[i].map;
        size_t bytes = dev_log_bitmap_bytes(m->size);

        if (atomic_load(&m->dirty) == NULL) {
            if (bytes > UMDEV_DMA_LOG_MAX_BITMAP_BYTES - need) {
                need = SIZE_MAX;
                break;
            }
            need += bytes;
        }
    }
    if (need >
        UMDEV_DMA_LOG_MAX_BITMAP_BYTES - atomic_load(&dev->log_bitmap_bytes)) {
        pthread_rwlock_unlock(&t->lock);
        return -E2BIG;
    }
    for (i = 0; i < t->n; i++) {
        struct dma_map *m = t->slots[i].map;
        uint64_t *bits = atomic_load(&m->dirty);
        size_t bytes = dev_log_bitmap_bytes(m->size);

        if (bits != NULL) {
            /* Left from an earlier session: only stray bits of writers
             * that raced its stop can land after this (false positives,
             * never a lost write). */
            memset(bits, 0, bytes);
            continue;
        }
        bits = calloc(1, bytes ? bytes : 1);
        if (bits == NULL) {
            rc = -ENOMEM;
            break;
        }
        m->dirty_bytes = bytes;
        atomic_fetch_add(&dev->log_bitmap_bytes, bytes);
        atomic_store_explicit(&m->dirty, bits, memory_order_release);
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

/*
 * A hold taken before logging started marked nothing, and its writes may
 * come after: every page of a mapping held now counts as dirty. A get
 * counts its hold before it reads the flag, and the flag was set before
 * this looks at the counts, so each hold is seen by one side or both.
 */
static void
holds_dirty(struct umdev_dev *dev)
{
    struct dma_table *t = &dev->dma;
    size_t i;

    pthread_rwlock_rdlock(&t->lock);
    for (i = 0; i < t->n; i++) {
        struct dma_map *m = t->slots[i].map;

        if ((atomic_load(&m->holds) & ~DMA_MAP_DYING) != 0)
            dev_log_mark(m, m->iova, m->size);
    }
    pthread_rwlock_unlock(&t->lock);
}

int
dev_log_start(struct umdev_dev *dev,
              const struct vfio_user_dma_logging_control *c,
              const struct umdev_wire_msg *w)
{
    struct vfio_user_dma_logging_range *ranges = NULL;
    uint32_t i;
    int rc;

    /* Kernel: one START, then a STOP before the next. */
    if (atomic_load(&dev->dma_logging))
        return -EBUSY;
    if (c->num_ranges != 0) {
        ranges = calloc(c->num_ranges, sizeof(*ranges));
        if (ranges == NULL)
            return -ENOMEM;
        for (i = 0; i < c->num_ranges; i++)
            umdev_wire_log_range(w, i, &ranges[i]);
    }
    rc = bitmaps_ready(dev);
    if (rc < 0) {
        free(ranges);
        return rc;
    }
    free(dev->log_ranges);
    dev->log_ranges = ranges;
    dev->log_nranges = c->num_ranges;
    atomic_store(&dev->dma_logging, true);
    holds_dirty(dev);
    return 0;
}

void
dev_log_stop(struct umdev_dev *dev)
{
    atomic_store_explicit(&dev->dma_logging, false, memory_order_release);
    free(dev->log_ranges);
    dev->log_ranges = NULL;
    dev->log_nranges = 0;
}

/* Is [iova, iova+len) inside one range the client asked to log? */
static bool
in_ranges(const struct umdev_dev *dev, uint64_t iova, uint64_t len)
{
    uint32_t i;

    if (dev->log_nranges == 0)
        return true;
    for (i = 0; i < dev->log_nranges; i++) {
        const struct vfio_user_dma_logging_range *r = &dev->log_ranges[i];

        if (iova >= r->iova && iova - r->iova <= r->length &&
            len <= r->length - (iova - r->iova))
            return true;
    }
    return false;
}

static void
set_report_bits(uint64_t *bitmap, const struct vfio_user_dma_logging_report *r,
                uint64_t lo, uint64_t hi)
{
    uint64_t b, first = (lo - r->iova) / r->page_size;
    uint64_t last = (hi - 1 - r->iova) / r->page_size;

    for (b = first; b <= last; b++)
        bitmap[b / 64] |= 1ull << (b % 64);
}

/* Take @m's dirty pages inside [lo, hi) into the report, clearing them. */
static void
report_map(struct dma_map *m, const struct vfio_user_dma_logging_report *r,
           uint64_t lo, uint64_t hi, uint64_t *bitmap)
{
    uint64_t *bits = atomic_load_explicit(&m->dirty, memory_order_acquire);
    uint64_t first = (lo - m->iova) / DEV_PAGE_SIZE;
    uint64_t last = (hi - 1 - m->iova) / DEV_PAGE_SIZE;
    uint64_t w;

    if (bits == NULL)
        return;
    for (w = first / 64; w <= last / 64; w++) {
        uint64_t mask = ~0ull, got;

        if (w == first / 64)
            mask &= ~0ull << (first % 64);
        if (w == last / 64 && last % 64 != 63)
            mask &= (1ull << (last % 64 + 1)) - 1;
        /* Only the bits reported are cleared: a page half inside the
         * range stays dirty for the report that covers the rest. */
        got = atomic_fetch_and((_Atomic uint64_t *)&bits[w], ~mask) & mask;
        /*
         * A hold out on the mapping may still write through its pointer
         * (its pages were marked when it was taken, not when it is
         * released): keep the bits for the next report too. Checked
         * after the clear; a get counts its hold before marking, so a
         * hold this misses marks after the clear.
         */
        if (got != 0 && (atomic_load(&m->holds) & ~DMA_MAP_DYING) != 0)
            atomic_fetch_or((_Atomic uint64_t *)&bits[w], got);
        while (got != 0) {
            uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(got);
            uint64_t a = m->iova + p * DEV_PAGE_SIZE;
            uint64_t plo = a > lo ? a : lo;
            uint64_t phi = a + DEV_PAGE_SIZE < hi ? a + DEV_PAGE_SIZE : hi;

            set_report_bits(bitmap, r, plo, phi);
            got &= got - 1;
        }
    }
}

int
dev_log_report(struct umdev_dev *dev,
               const struct vfio_user_dma_logging_report *r, uint64_t *bitmap)
{
    struct dma_table *t = &dev->dma;
    uint64_t end = r->iova + r->length; /* the decoder checked: no wrap */
    uint64_t covered = r->iova;
    size_t i;

    if (!atomic_load(&dev->dma_logging) || !in_ranges(dev, r->iova, r->length))
        return -EINVAL;
    pthread_rwlock_rdlock(&t->lock);
    /* The whole range must be mapped: check before clearing any bit, so a
     * refused report loses nothing. */
    for (i = 0; i < t->n && covered < end; i++) {
        const struct dma_slot *s = &t->slots[i];

        if (s->end <= covered)
            continue;
        if (s->iova > covered)
            break;
        covered = s->end;
    }
    if (covered < end) {
        pthread_rwlock_unlock(&t->lock);
        return -ENOENT;
    }
    for (i = 0; i < t->n; i++) {
        const struct dma_slot *s = &t->slots[i];
        uint64_t lo, hi;

        if (s->end <= r->iova || s->iova >= end)
            continue;
        lo = s->iova > r->iova ? s->iova : r->iova;
        hi = s->end < end ? s->end : end;
        report_map(s->map, r, lo, hi, bitmap);
    }
    pthread_rwlock_unlock(&t->lock);
    return 0;
}
