/*
 * Mediation profiles (include/umdev/profile.h): a copy of what the device
 * declared, the run-time check every socket region access passes through,
 * and per-register counters. Their JSON form and the audits live above
 * lib/pci, in lib/audit.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_priv.h"
#include "umdev/profile.h"

struct dev_profile {
    struct umdev_profile pub; /* points into the copies below */
    struct umdev_profile_region regions[UMDEV_PROFILE_MAX_REGIONS];
    struct umdev_profile_reg *regs[UMDEV_PROFILE_MAX_REGIONS];
    _Atomic uint64_t *reads[UMDEV_PROFILE_MAX_REGIONS];
    _Atomic uint64_t *writes[UMDEV_PROFILE_MAX_REGIONS];
    int slot[UMDEV_MAX_REGIONS]; /* region index -> entry, -1: undeclared */
    /*
     * Per entry, the register at each byte offset below reg_span (its
     * position + 1; 0: none), so that the trap path's check is one load
     * rather than a search. Built when the registers end within
     * PROFILE_LOOKUP_SPAN; a region whose registers reach further is
     * searched (NULL).
     */
    uint8_t *reg_at[UMDEV_PROFILE_MAX_REGIONS];
    uint64_t reg_span[UMDEV_PROFILE_MAX_REGIONS];
    _Atomic uint64_t refused;
    char **strings; /* every copied string, freed with the profile */
    size_t nstrings;
};

void
dev_profile_free(struct dev_profile *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < UMDEV_PROFILE_MAX_REGIONS; i++) {
        free(p->reg_at[i]);
        free(p->regs[i]);
        free((void *)p->reads[i]);
        free((void *)p->writes[i]);
    }
    for (i = 0; i < p->nstrings; i++)
        free(p->strings[i]);
    free(p->strings);
    free(p);
}

/* Copy @s into the profile (NULL stays NULL). Return: 0 or -ENOMEM. */
static int
keep_string(struct dev_profile *p, const char *s, const char **out)
{
    char **v;
    char *copy;

    *out = NULL;
    if (s == NULL)
        return 0;
    copy = strdup(s);
    if (copy == NULL)
        return -ENOMEM;
    v = realloc(p->strings, (p->nstrings + 1) * sizeof(*v));
    if (v == NULL) {
        free(copy);
        return -ENOMEM;
    }
    p->strings = v;
    p->strings[p->nstrings++] = copy;
    *out = copy;
    return 0;
}

static bool
valid_reg(const struct umdev_profile_reg *r, uint64_t region_size)
{
    if (r->name == NULL || r->name[0] == '\0' || r->purpose == NULL ||
        r->purpose[0] == '\0')
        return false;
    if (r->size == 0 || r->offset >= region_size ||
        r->size > region_size - r->offset)
        return false;
    if ((r->widths & (UMDEV_W_ANY | UMDEV_W_BULK)) == 0 ||
        (r->widths & ~(UMDEV_W_ANY | UMDEV_W_BULK)) != 0)
        return false;
    return (r->access & UMDEV_PROFILE_RW) != 0 &&
           (r->access & ~UMDEV_PROFILE_RW) == 0;
}

static int
check_region(const struct umdev_dev *dev, const struct umdev_profile_region *pr)
{
    const struct dev_region *reg;
    size_t i;

    if (pr->index >= UMDEV_MAX_REGIONS || !dev->regions[pr->index].present)
        return -EINVAL;
    /* Config space is lib/pci's: its write masks are the profile there. */
    if (dev->pci && pr->index == UMDEV_PCI_CONFIG_REGION)
        return -EINVAL;
    if (pr->nregs > UMDEV_PROFILE_MAX_REGS || (pr->nregs > 0 && !pr->regs))
        return -EINVAL;
    reg = &dev->regions[pr->index];
    for (i = 0; i < pr->nregs; i++) {
        if (!valid_reg(&pr->regs[i], reg->size))
            return -EINVAL;
        if (i > 0 && pr->regs[i].offset <
                         pr->regs[i - 1].offset + pr->regs[i - 1].size)
            return -EINVAL;
    }
    return 0;
}

/* Register regions are small (a BAR of a few KiB); one byte per offset
 * buys an O(1) check. Beyond this the table would cost more memory than
 * the search costs time. */
#define PROFILE_LOOKUP_SPAN (64u * 1024)

_Static_assert(UMDEV_PROFILE_MAX_REGS < 256, "a position + 1 fits a byte");

/* The offset -> register table of entry @i (registers sorted, disjoint:
 * check_region() saw to it). Return: 0 (also when the span is too big to
 * tabulate), or -ENOMEM. */
static int
build_lookup(struct dev_profile *dp, size_t i)
{
    const struct umdev_profile_region *pr = &dp->regions[i];
    uint64_t span;
    size_t j;

    if (pr->nregs == 0)
        return 0;
    span = pr->regs[pr->nregs - 1].offset + pr->regs[pr->nregs - 1].size;
    if (span > PROFILE_LOOKUP_SPAN)
        return 0;
    dp->reg_at[i] = calloc(span, 1);
    if (dp->reg_at[i] == NULL)
        return -ENOMEM;
    for (j = 0; j < pr->nregs; j++)
        memset(dp->reg_at[i] + pr->regs[j].offset, (int)(j + 1),
               pr->regs[j].size);
    dp->reg_span[i] = span;
    return 0;
}

int
umdev_dev_set_profile(struct umdev_dev *dev, const struct umdev_profile *p)
{
    struct dev_profile *dp;
    size_t i, j;
    int rc;

    if (dev->profile != NULL)
        return -EEXIST;
    if (p == NULL || p->nregions > UMDEV_PROFILE_MAX_REGIONS ||
        (p->nregions > 0 && p->regions == NULL) ||
        (p->data_path != UMDEV_PROFILE_DP_RING &&
         p->data_path != UMDEV_PROFILE_DP_PIO) ||
        (p->data_path == UMDEV_PROFILE_DP_RING && p->max_msgs_per_io != 0))
        return -EINVAL;
    for (i = 0; i < p->nregions; i++) {
        rc = check_region(dev, &p->regions[i]);
        if (rc < 0)
            return rc;
        for (j = 0; j < i; j++)
            if (p->regions[j].index == p->regions[i].index)
                return -EINVAL;
    }
    dp = calloc(1, sizeof(*dp));
    if (dp == NULL)
        return -ENOMEM;
    for (i = 0; i < UMDEV_MAX_REGIONS; i++)
        dp->slot[i] = -1;
    dp->pub = *p;
    dp->pub.regions = dp->regions;
    if (keep_string(dp, p->type, &dp->pub.type) < 0 ||
        keep_string(dp, p->data_path_unit, &dp->pub.data_path_unit) < 0 ||
        keep_string(dp, p->data_path_note, &dp->pub.data_path_note) < 0)
        goto nomem;
    for (i = 0; i < p->nregions; i++) {
        const struct umdev_profile_region *src = &p->regions[i];
        size_t n = src->nregs ? src->nregs : 1;

        dp->regs[i] = calloc(n, sizeof(*dp->regs[i]));
        dp->reads[i] = calloc(n, sizeof(*dp->reads[i]));
        dp->writes[i] = calloc(n, sizeof(*dp->writes[i]));
        if (!dp->regs[i] || !dp->reads[i] || !dp->writes[i])
            goto nomem;
        for (j = 0; j < src->nregs; j++) {
            dp->regs[i][j] = src->regs[j];
            if (keep_string(dp, src->regs[j].name, &dp->regs[i][j].name) <
                    0 ||
                keep_string(dp, src->regs[j].purpose,
                            &dp->regs[i][j].purpose) < 0)
                goto nomem;
        }
        dp->regions[i] = *src;
        dp->regions[i].regs = dp->regs[i];
        dp->slot[src->index] = (int)i;
        if (build_lookup(dp, i) < 0)
            goto nomem;
    }
    dev->profile = dp;
    return 0;
nomem:
    dev_profile_free(dp);
    return -ENOMEM;
}

const struct umdev_profile *
umdev_dev_profile(const struct umdev_dev *dev)
{
    return dev->profile != NULL ? &dev->profile->pub : NULL;
}

static bool
inside_mmap_area(const struct dev_region *reg, uint64_t offset, uint64_t count)
{
    size_t i;

    if (reg->shm == NULL)
        return false;
    for (i = 0; i < reg->nr_areas; i++) {
        const struct umdev_mmap_area *a = &reg->areas[i];

        if (offset >= a->offset && count <= a->size &&
            offset - a->offset <= a->size - count)
            return true;
    }
    return false;
}

/* The declared register containing @offset, or NULL (binary search). */
static const struct umdev_profile_reg *
find_reg(const struct umdev_profile_region *pr, uint64_t offset, size_t *pos)
{
    size_t lo = 0, hi = pr->nregs;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct umdev_profile_reg *r = &pr->regs[mid];

        if (offset < r->offset)
            hi = mid;
        else if (offset - r->offset >= r->size)
            lo = mid + 1;
        else {
            *pos = mid;
            return r;
        }
    }
    return NULL;
}

/* The mmappable area of @reg containing @offset, or NULL. */
static const struct umdev_mmap_area *
find_area(const struct dev_region *reg, uint64_t offset)
{
    size_t i;

    for (i = 0; reg->shm != NULL && i < reg->nr_areas; i++)
        if (offset >= reg->areas[i].offset &&
            offset - reg->areas[i].offset < reg->areas[i].size)
            return &reg->areas[i];
    return NULL;
}

/*
 * Memory-like accesses: every byte of [offset, offset + count) lies in an
 * mmappable area or in a BULK register allowing @dir, so a bulk copy may
 * run across a trapped page of shared memory and the mapped rest, as it
 * would over plain memory. Each BULK register touched counts the access.
 */
static bool
memory_run(struct dev_profile *p, int slot, const struct dev_region *reg,
           uint64_t offset, uint64_t count, uint32_t dir)
{
    const struct umdev_profile_region *pr = &p->regions[slot];
    uint64_t pos = offset, end = offset + count;
    size_t touched[UMDEV_PROFILE_MAX_REGS], ntouched = 0, i, at;

    if (count == 0 || end < offset)
        return false;
    while (pos < end) {
        const struct umdev_mmap_area *a = find_area(reg, pos);
        const struct umdev_profile_reg *r;

        if (a != NULL) {
            pos = a->offset + a->size;
            continue;
        }
        r = find_reg(pr, pos, &at);
        if (r == NULL || !(r->widths & UMDEV_W_BULK) || !(r->access & dir) ||
            ntouched == UMDEV_PROFILE_MAX_REGS)
            return false;
        touched[ntouched++] = at;
        pos = r->offset + r->size;
    }
    for (i = 0; i < ntouched; i++)
        atomic_fetch_add_explicit(dir == UMDEV_PROFILE_W
                                      ? &p->writes[slot][touched[i]]
                                      : &p->reads[slot][touched[i]],
                                  1, memory_order_relaxed);
    return true;
}

int
dev_profile_check(struct umdev_dev *dev, uint32_t index, uint64_t offset,
                  uint64_t count, bool is_write)
{
    struct dev_profile *p = dev->profile;
    const struct umdev_profile_region *pr;
    const struct umdev_profile_reg *r;
    size_t pos;
    int slot;

    if (p == NULL || (dev->pci && index == UMDEV_PCI_CONFIG_REGION))
        return 0;
    /* Memory the guest may map anyway: no register semantics to guard. */
    if (inside_mmap_area(&dev->regions[index], offset, count))
        return 0;
    slot = p->slot[index];
    if (slot < 0)
        goto refuse;
    pr = &p->regions[slot];
    /* A register access, the trap path's common case, first: it counts
     * what memory_run() would for the same bytes (the one register), at
     * a fraction of the cost. */
    if (p->reg_at[slot] != NULL) {
        size_t at = offset < p->reg_span[slot] ? p->reg_at[slot][offset] : 0;

        pos = at - 1;
        r = at != 0 ? &pr->regs[pos] : NULL;
    } else {
        r = find_reg(pr, offset, &pos);
    }
    if (r != NULL && count <= 8 && (count & (count - 1)) == 0 &&
        (r->widths & UMDEV_W(count)) && offset % count == 0 &&
        count <= r->size - (offset - r->offset) &&
        (r->access & (is_write ? UMDEV_PROFILE_W : UMDEV_PROFILE_R))) {
        atomic_fetch_add_explicit(is_write ? &p->writes[slot][pos]
                                           : &p->reads[slot][pos],
                                  1, memory_order_relaxed);
        return 0;
    }
    if (memory_run(p, slot, &dev->regions[index], offset, count,
                   is_write ? UMDEV_PROFILE_W : UMDEV_PROFILE_R))
        return 0;
refuse:
    atomic_fetch_add_explicit(&p->refused, 1, memory_order_relaxed);
    if (dev->log != NULL)
        umdev_log(dev->log, LOG_DEBUG,
                  "%s: refused %s of %" PRIu64 " bytes at region %u offset "
                  "0x%" PRIx64 " (not in the mediation profile)",
                  dev->name, is_write ? "write" : "read", count, index,
                  offset);
    return -EACCES;
}

int
umdev_dev_profile_counters(struct umdev_dev *dev, size_t region, size_t reg,
                           struct umdev_profile_counters *out)
{
    struct dev_profile *p = dev->profile;

    if (p == NULL || region >= p->pub.nregions ||
        reg >= p->regions[region].nregs)
        return -EINVAL;
    out->reads = atomic_load_explicit(&p->reads[region][reg],
                                      memory_order_relaxed);
    out->writes = atomic_load_explicit(&p->writes[region][reg],
                                       memory_order_relaxed);
    return 0;
}

uint64_t
umdev_dev_profile_refused(struct umdev_dev *dev)
{
    if (dev->profile == NULL)
        return 0;
    return atomic_load_explicit(&dev->profile->refused, memory_order_relaxed);
}
