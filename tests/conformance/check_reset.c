/*
 * reset: VFIO_USER_DEVICE_RESET returns the device to its power-on state.
 *
 * At the kit's first attach (main.c, before any check runs) the config
 * space and a set of trapped registers are read: the "fresh" values. The
 * registers are those the profile declares readable or, without a
 * profile, every (offset, width) of each trapped BAR that answers a read
 * (probe). The check then writes the inverse of every config dword and
 * of every writable register, resets, and compares everything with the
 * fresh values. Registers the profile marks "volatile" (status, FIFOs,
 * counters that change by themselves) are read but not compared; without
 * a profile nothing is known to be volatile, so a type with such
 * registers needs its profile to pass.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"

/* Differences quoted in the evidence; the rest are counted. */
#define MAX_QUOTED_DIFFS 4

int
cf_reg_read(struct umdev_client *c, const struct cf_reg *reg, uint64_t *v)
{
    uint8_t buf[8] = { 0 };
    int rc;

    rc = umdev_client_region_read(c, reg->region, reg->offset, buf, reg->width);
    if (rc == 0)
        *v = (uint64_t)cf_le(buf, 4) | (uint64_t)cf_le(buf + 4, 4) << 32;
    return rc;
}

static int
reg_write(struct umdev_client *c, const struct cf_reg *reg, uint64_t v)
{
    uint8_t buf[8];

    cf_put_le(buf, 8, v);
    return umdev_client_region_write(c, reg->region, reg->offset, buf,
                                     reg->width);
}

static struct cf_reg *
add_reg(struct cf_baseline *b, uint32_t region, uint64_t off, uint32_t width)
{
    struct cf_reg *r;

    if (b->nregs == CF_MAX_REGS)
        return NULL;
    r = &b->regs[b->nregs++];
    memset(r, 0, sizeof(*r));
    r->region = region;
    r->offset = off;
    r->width = width;
    return r;
}

/* The widest allowed width that tiles the register. */
static uint32_t
tile_width(const struct cf_profile_reg *pr)
{
    uint32_t w;

    for (w = 8; w >= 1; w /= 2)
        if ((pr->widths & (1u << w)) && pr->size % w == 0)
            return w;
    for (w = 1; w <= 8; w *= 2)
        if (pr->widths & (1u << w))
            return w;
    return 1;
}

static void
from_profile(struct conform *cf, struct cf_baseline *b)
{
    size_t i, j;

    for (i = 0; i < cf->profile->nregions; i++) {
        const struct cf_profile_region *pr = &cf->profile->regions[i];

        if (pr->index == VFIO_PCI_CONFIG_REGION_INDEX ||
            !cf_region_present(cf, pr->index))
            continue;
        for (j = 0; j < pr->nregs; j++) {
            const struct cf_profile_reg *p = &pr->regs[j];
            uint32_t w = tile_width(p);
            uint64_t k, n = p->size / w ? p->size / w : 1;

            if (!(p->access & CF_ACCESS_R))
                continue;
            for (k = 0; k < n; k++) {
                struct cf_reg *r = add_reg(b, pr->index, p->offset + k * w, w);

                if (r == NULL)
                    return;
                r->is_volatile = p->is_volatile;
                r->writable = (p->access & CF_ACCESS_W) != 0;
                if (n == 1)
                    snprintf(r->name, sizeof(r->name), "%s.%s", pr->name,
                             p->name);
                else
                    snprintf(r->name, sizeof(r->name), "%s.%s+0x%" PRIx64,
                             pr->name, p->name, k * w);
            }
        }
    }
}

/* Without a profile: every offset of each trapped BAR that answers a
 * 4-byte read, or failing that 1-byte reads. */
static void
probe(struct conform *cf, struct umdev_client *c, struct cf_baseline *b)
{
    uint32_t i;

    for (i = 0; i < cf->dev.num_regions && i < CF_MAX_REGIONS; i++) {
        const struct cf_region *reg = &cf->dev.regions[i];
        uint64_t limit = reg->size < CF_PROBE_MAX ? reg->size : CF_PROBE_MAX;
        uint64_t off;

        if (i == VFIO_PCI_CONFIG_REGION_INDEX || !cf_region_present(cf, i) ||
            !(reg->flags & VFIO_REGION_INFO_FLAG_READ))
            continue;
        for (off = 0; off < limit; off += 4) {
            struct cf_reg tmp = { .region = i, .offset = off, .width = 4 };
            uint64_t v, k;

            if (cf_in_mmap_area(cf, i, off, 4))
                continue;
            if (off + 4 <= reg->size) {
                b->probe_reads++;
                if (cf_reg_read(c, &tmp, &v) == 0) {
                    if (add_reg(b, i, off, 4) == NULL)
                        return;
                    continue;
                }
            }
            for (k = 0; k < 4 && off + k < reg->size; k++) {
                tmp.offset = off + k;
                tmp.width = 1;
                b->probe_reads++;
                if (cf_reg_read(c, &tmp, &v) == 0 &&
                    add_reg(b, i, off + k, 1) == NULL)
                    return;
            }
        }
    }
}

int
cf_baseline_collect(struct conform *cf, struct umdev_client *c, char *err,
                    size_t errlen)
{
    struct cf_baseline *b = &cf->base;
    size_t i;

    b->regs = calloc(CF_MAX_REGS, sizeof(*b->regs));
    if (b->regs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (cf->profile != NULL) {
        b->source = "profile";
        from_profile(cf, b);
    } else {
        b->source = "probe";
        probe(cf, c, b);
        for (i = 0; i < b->nregs; i++) {
            b->regs[i].writable = true;
            snprintf(b->regs[i].name, sizeof(b->regs[i].name),
                     "region%u+0x%" PRIx64 "/%u", b->regs[i].region,
                     b->regs[i].offset, b->regs[i].width);
        }
    }
    for (i = 0; i < b->nregs; i++) {
        int rc = cf_reg_read(c, &b->regs[i], &b->regs[i].value);

        if (rc == -ECONNRESET || rc == -ETIMEDOUT || rc == -EPIPE) {
            snprintf(err, errlen, "reading %s at attach: %s", b->regs[i].name,
                     strerror(-rc));
            return rc;
        }
        b->regs[i].read_err = rc < 0 ? -rc : 0;
    }
    return 0;
}

/* Write the inverse of every config dword. Return: bytes that changed. */
static int
mutate_config(const struct conform *cf, struct umdev_client *c,
              struct cf_result *r)
{
    uint8_t cur[CF_CFG_MAX], after[CF_CFG_MAX];
    size_t len = cf->dev.cfg_len & ~(size_t)3, off;
    int rc, changed = 0;

    rc = umdev_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0, cur, len);
    if (rc < 0) {
        cf_fail(r, R_CONFIG_ACCESS, "reading config space: %s",
                cf_errname(-rc));
        return -1;
    }
    for (off = 0; off < len; off += 4) {
        uint8_t inv[4];
        size_t k;

        for (k = 0; k < 4; k++)
            inv[k] = (uint8_t)~cur[off + k];
        rc = umdev_client_region_write(c, VFIO_PCI_CONFIG_REGION_INDEX, off,
                                       inv, 4);
        if (rc < 0) {
            cf_fail(r, R_CONFIG_WRITE_ACCEPTED,
                    "config write at 0x%zx refused: %s", off, cf_errname(-rc));
            return -1;
        }
    }
    rc = umdev_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0, after,
                                  len);
    if (rc < 0) {
        cf_fail(r, R_CONFIG_ACCESS, "reading config space: %s",
                cf_errname(-rc));
        return -1;
    }
    for (off = 0; off < len; off++)
        changed += after[off] != cf->dev.cfg[off];
    return changed;
}

static void
compare_config(const struct conform *cf, struct umdev_client *c,
               struct cf_result *r, unsigned int *diffs)
{
    uint8_t now[CF_CFG_MAX];
    size_t off;
    int rc;

    rc = umdev_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0, now,
                                  cf->dev.cfg_len);
    if (rc < 0) {
        cf_fail(r, R_CONFIG_ACCESS, "reading config space after reset: %s",
                cf_errname(-rc));
        return;
    }
    for (off = 0; off < cf->dev.cfg_len; off++) {
        if (now[off] == cf->dev.cfg[off])
            continue;
        if (++*diffs <= MAX_QUOTED_DIFFS)
            cf_fail(r, R_RESET_POWER_ON,
                    "config byte 0x%03zx is 0x%02x after reset, 0x%02x "
                    "at attach",
                    off, now[off], cf->dev.cfg[off]);
    }
}

/* Write the inverse of every writable, non-volatile register's value in
 * @vals (NULL: as read at attach). Return: 0, or the transport error that
 * stopped it. */
static int
mutate_regs(const struct conform *cf, struct umdev_client *c,
            const uint64_t *vals, unsigned int *mutated, unsigned int *refused)
{
    size_t i;

    for (i = 0; i < cf->base.nregs; i++) {
        const struct cf_reg *reg = &cf->base.regs[i];
        int rc;

        if (!reg->writable || reg->is_volatile || reg->read_err)
            continue;
        (*mutated)++;
        rc = reg_write(c, reg, ~(vals != NULL ? vals[i] : reg->value));
        if (rc == -ECONNRESET || rc == -ETIMEDOUT)
            return rc;
        *refused += rc < 0;
    }
    return 0;
}

/* Config space and compared registers, now. Return: 0 or -errno. */
static int
snapshot(const struct conform *cf, struct umdev_client *c, uint8_t *cfg,
         uint64_t *vals)
{
    size_t i;
    int rc = 0;

    if (cf->dev.pci && cf->dev.cfg_len >= 64)
        rc = umdev_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0, cfg,
                                      cf->dev.cfg_len);
    for (i = 0; rc == 0 && i < cf->base.nregs; i++) {
        vals[i] = 0;
        if (!cf->base.regs[i].read_err && !cf->base.regs[i].is_volatile)
            rc = cf_reg_read(c, &cf->base.regs[i], &vals[i]);
    }
    return rc;
}

/*
 * Tell "reset does not restore" from "the device was not at power-on when
 * the kit attached": reset, snapshot, mutate, reset, snapshot; true if
 * both snapshots agree.
 */
static bool
resets_agree(const struct conform *cf, struct umdev_client *c)
{
    static uint8_t cfg_a[CF_CFG_MAX], cfg_b[CF_CFG_MAX];
    uint64_t *a = calloc(cf->base.nregs + 1, sizeof(*a));
    uint64_t *b = calloc(cf->base.nregs + 1, sizeof(*b));
    struct cf_result scratch = { .pass = true };
    unsigned int n = 0, refused = 0;
    bool same = false;

    if (a != NULL && b != NULL && umdev_client_reset(c) == 0 &&
        snapshot(cf, c, cfg_a, a) == 0) {
        if (cf->dev.pci && cf->dev.cfg_len >= 64)
            mutate_config(cf, c, &scratch);
        if (mutate_regs(cf, c, a, &n, &refused) == 0 &&
            umdev_client_reset(c) == 0 && snapshot(cf, c, cfg_b, b) == 0)
            same = memcmp(cfg_a, cfg_b, cf->dev.cfg_len) == 0 &&
                   memcmp(a, b, cf->base.nregs * sizeof(*a)) == 0;
    }
    free(a);
    free(b);
    return same;
}

void
check_reset(struct conform *cf, struct cf_result *r)
{
    const struct cf_baseline *b = &cf->base;
    struct umdev_client *c = NULL;
    unsigned int cfg_diffs = 0, reg_diffs = 0, compared = 0, nvol = 0;
    unsigned int mutated = 0, changed = 0, refused = 0;
    int cfg_changed = 0, rc;
    size_t i;

    if (!(cf->dev.flags & VFIO_DEVICE_FLAGS_RESET)) {
        cf_fail(r, R_RESET_OFFERED,
                "DEVICE_GET_INFO does not offer reset "
                "(VFIO_DEVICE_FLAGS_RESET clear)");
        return;
    }
    rc = cf_client_connect(cf, &c);
    if (rc < 0) {
        cf_error(r, "cannot attach: %s", strerror(-rc));
        return;
    }
    for (i = 0; i < b->nregs; i++) {
        if (b->regs[i].read_err)
            cf_fail(r, R_RESET_REGISTERS,
                    "%s (readable in the profile) refused a %u-byte read "
                    "at attach: %s",
                    b->regs[i].name, b->regs[i].width,
                    cf_errname(b->regs[i].read_err));
        nvol += b->regs[i].is_volatile;
    }
    /* Mutate. */
    if (cf->dev.pci && cf->dev.cfg_len >= 64) {
        cfg_changed = mutate_config(cf, c, r);
        if (cfg_changed < 0)
            goto out;
    }
    rc = mutate_regs(cf, c, NULL, &mutated, &refused);
    if (rc < 0) {
        cf_fail(r, R_RESET_REGISTERS, "writing registers: %s", cf_errname(-rc));
        goto out;
    }
    for (i = 0; i < b->nregs; i++) {
        const struct cf_reg *reg = &b->regs[i];
        uint64_t v;

        if (reg->is_volatile || reg->read_err)
            continue;
        if (cf_reg_read(c, reg, &v) == 0 && v != reg->value)
            changed++;
    }
    /* Reset, then everything must read as it did at attach. */
    rc = umdev_client_reset(c);
    if (rc < 0) {
        cf_fail(r, R_RESET_SUCCEEDS, "DEVICE_RESET failed: %s",
                cf_errname(-rc));
        goto out;
    }
    if (cf->dev.pci && cf->dev.cfg_len >= 64)
        compare_config(cf, c, r, &cfg_diffs);
    for (i = 0; i < b->nregs; i++) {
        const struct cf_reg *reg = &b->regs[i];
        uint64_t v = 0;

        if (reg->read_err)
            continue;
        rc = cf_reg_read(c, reg, &v);
        if (rc < 0) {
            cf_fail(r, R_RESET_REGISTERS, "reading %s after reset: %s",
                    reg->name, cf_errname(-rc));
            continue;
        }
        if (reg->is_volatile)
            continue;
        compared++;
        if (v != reg->value && ++reg_diffs <= MAX_QUOTED_DIFFS)
            cf_fail(r, R_RESET_POWER_ON,
                    "%s is 0x%" PRIx64 " after reset, 0x%" PRIx64 " at attach",
                    reg->name, v, reg->value);
    }
    if (cfg_diffs > MAX_QUOTED_DIFFS || reg_diffs > MAX_QUOTED_DIFFS)
        cf_note(r, "%u config bytes and %u registers differ in all", cfg_diffs,
                reg_diffs);
    if (cfg_diffs + reg_diffs > 0 && resets_agree(cf, c))
        cf_note(r, "two resets agree with each other, not with the state "
                   "at attach: was the instance fresh when the kit started?");
    if (cfg_changed == 0 && changed == 0)
        cf_error(r, "nothing could be changed before the reset (no writable "
                    "config bit or register): the check proves nothing");
    cf_note(r, "registers from the %s%s%s: %zu (%u volatile, not compared)",
            b->source, cf->profile && cf->profile->type ? " " : "",
            cf->profile && cf->profile->type ? cf->profile->type : "", b->nregs,
            nvol);
    if (b->probe_reads)
        cf_note(r, "probe: %zu reads found %zu readable (offset, width)",
                b->probe_reads, b->nregs);
    cf_note(r,
            "mutated: %d config bytes, %u of %u writable registers changed "
            "(%u writes refused)",
            cfg_changed, changed, mutated, refused);
    cf_note(r,
            "after DEVICE_RESET: %zu config bytes and %u registers compared, "
            "%u + %u differ from attach",
            cf->dev.pci ? cf->dev.cfg_len : (size_t)0, compared, cfg_diffs,
            reg_diffs);
out:
    umdev_client_destroy(c);
}
