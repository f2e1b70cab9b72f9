/*
 * The display subdevice (display.h): lib/pci config space, the
 * framebuffer BAR as shared memory, the register BAR trapped into the
 * model of vbe.c, its mediation profile, reset and migration.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <uuid/uuid.h>

#include "display.h"
#include "umdev/profile.h"
#include "umdev/wire.h"

#define MIB (1u << 20)

/*
 * The types. The preferred (largest) modes are VESA DMT's 1024x768@60
 * and CTA-861's 1920x1080@60 timings; the other modes a type lists are
 * the established and standard timings no larger than it, so a guest
 * can switch between them (README.md "EDID").
 */
static const struct display_type types[] = {
    {
        .name = "1024",
        .max_xres = 1024,
        .max_yres = 768,
        .vram_mib = DISPLAY_1024_VRAM_MIB,
        .preferred = { 65000, 1024, 24, 136, 160, 768, 3, 6, 29, 0, 0 },
        .established = { EDID_EST_640x480_60 | EDID_EST_800x600_60,
                         EDID_EST_1024x768_60, 0 },
        .nstd = 0,
    },
    {
        .name = "1920",
        .max_xres = 1920,
        .max_yres = 1080,
        .vram_mib = DISPLAY_1920_VRAM_MIB,
        .preferred = { 148500, 1920, 88, 44, 148, 1080, 4, 5, 36, 1, 1 },
        .established = { EDID_EST_640x480_60 | EDID_EST_800x600_60,
                         EDID_EST_1024x768_60, 0 },
        .std = { { 1280, 720, 60 },
                 { 1280, 800, 60 },
                 { 1280, 1024, 60 },
                 { 1440, 900, 60 },
                 { 1600, 900, 60 },
                 { 1680, 1050, 60 } },
        .nstd = 6,
    },
};

#define NTYPES (sizeof(types) / sizeof(types[0]))

const struct display_type *
display_types(size_t *n)
{
    *n = NTYPES;
    return types;
}

const struct display_type *
display_type_find(const char *type)
{
    static const char prefix[] = "display-";
    size_t i;

    if (type == NULL)
        return NULL;
    if (strncmp(type, prefix, sizeof(prefix) - 1) == 0)
        type += sizeof(prefix) - 1;
    for (i = 0; i < NTYPES; i++)
        if (strcmp(type, types[i].name) == 0)
            return &types[i];
    return NULL;
}

/*
 * The mediation profile (docs/CRITERIA.md): BAR0, the framebuffer, is
 * mapped by the client whole, so the guest draws without a message;
 * BAR2's registers are trapped, each at the width bochs-drm uses. A mode
 * set costs a dozen register writes, a page flip three, a frame none.
 * tests/conformance/profiles/display.json is the same contract as the
 * conformance kit reads it.
 */
#define R UMDEV_PROFILE_R
#define RW UMDEV_PROFILE_RW
#define DISPI(i) (VBE_DISPI_OFFSET + 2 * (i))

static const struct umdev_profile_reg display_bar2_regs[] = {
    { "EDID", VBE_EDID_OFFSET, VBE_EDID_AREA, UMDEV_W_ANY | UMDEV_W_BULK, R,
      false, false,
      "the EDID block listing the type's modes (zeros after 128 bytes)" },
    { "VGA_ATT_W", VBE_VGA_OFFSET + 0x00, 1, UMDEV_W(1), RW, false, false,
      "attribute controller index/data; index bit 5 unblanks the screen" },
    { "VGA_ATT_R", VBE_VGA_OFFSET + 0x01, 1, UMDEV_W(1), R, false, false,
      "attribute controller data read" },
    { "VGA_MIS_W", VBE_VGA_OFFSET + 0x02, 1, UMDEV_W(1), RW, false, false,
      "misc output write (colour mode decodes IS1); reads input status 0" },
    { "VGA_MIS_R", VBE_VGA_OFFSET + 0x0c, 1, UMDEV_W(1), R, false, false,
      "misc output read" },
    { "VGA_IS1_RC", VBE_VGA_OFFSET + 0x1a, 1, UMDEV_W(1), R, false, true,
      "input status 1: resets the attribute flip-flop, retrace toggles" },
    { "DISPI_ID", DISPI(VBE_DISPI_INDEX_ID), 2, UMDEV_W(2), RW, false, false,
      "interface version (0xb0c0..0xb0c5 negotiated)" },
    { "DISPI_XRES", DISPI(VBE_DISPI_INDEX_XRES), 2, UMDEV_W(2), RW, false,
      false, "horizontal resolution, at most the type's" },
    { "DISPI_YRES", DISPI(VBE_DISPI_INDEX_YRES), 2, UMDEV_W(2), RW, false,
      false, "vertical resolution, at most the type's" },
    { "DISPI_BPP", DISPI(VBE_DISPI_INDEX_BPP), 2, UMDEV_W(2), RW, false, false,
      "bits per pixel: 15, 16, 24 or 32" },
    { "DISPI_ENABLE", DISPI(VBE_DISPI_INDEX_ENABLE), 2, UMDEV_W(2), RW, false,
      false, "mode on/off, GETCAPS, linear framebuffer, no-clear" },
    { "DISPI_BANK", DISPI(VBE_DISPI_INDEX_BANK), 2, UMDEV_W(2), RW, false,
      false, "64 KiB bank number (kept; no legacy window)" },
    { "DISPI_VIRT_WIDTH", DISPI(VBE_DISPI_INDEX_VIRT_WIDTH), 2, UMDEV_W(2), RW,
      false, false, "pixels per line in video memory (the pitch)" },
    { "DISPI_VIRT_HEIGHT", DISPI(VBE_DISPI_INDEX_VIRT_HEIGHT), 2, UMDEV_W(2),
      RW, false, false, "lines in video memory at that pitch (computed)" },
    { "DISPI_X_OFFSET", DISPI(VBE_DISPI_INDEX_X_OFFSET), 2, UMDEV_W(2), RW,
      false, false, "first visible column" },
    { "DISPI_Y_OFFSET", DISPI(VBE_DISPI_INDEX_Y_OFFSET), 2, UMDEV_W(2), RW,
      false, false, "first visible line (page flipping)" },
    { "DISPI_VIDEO_MEMORY_64K", DISPI(VBE_DISPI_INDEX_VIDEO_MEMORY_64K), 2,
      UMDEV_W(2), R, false, false, "video memory size in 64 KiB units" },
    { "QEXT_SIZE", VBE_QEXT_OFFSET + VBE_QEXT_REG_SIZE, 4, UMDEV_W(4), R, false,
      false, "size of the QEMU extended register block" },
    { "QEXT_BYTEORDER", VBE_QEXT_OFFSET + VBE_QEXT_REG_BYTEORDER, 4, UMDEV_W(4),
      RW, false, false,
      "framebuffer byte order (0x1e1e1e1e little, 0xbebebebe big)" },
};

static const struct umdev_profile_region display_profile_regions[] = {
    { UMDEV_PCI_BAR2_REGION, display_bar2_regs,
      sizeof(display_bar2_regs) / sizeof(display_bar2_regs[0]) },
};

static const struct umdev_profile display_profile_tmpl = {
    .regions = display_profile_regions,
    .nregions = 1,
    .data_path = UMDEV_PROFILE_DP_RING,
    .max_msgs_per_io = 0,
    .data_path_unit = "framebuffer page",
    .data_path_note = "the guest draws into BAR0, video memory it maps "
                      "whole; registers are touched per mode set and page "
                      "flip only",
};

struct display {
    char *name;
    char type_name[32];
    const struct display_type *type;
    const struct umdev_logger *log;
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    uint8_t *vram; /* BAR0's shared memory, owned by dev */
    uint32_t vram_size;
    uint8_t edid[EDID_BLOCK_LEN];
    struct vbe vbe;
    bool stopped; /* migration: registers are frozen */
    /* The mode as display_screen() hands it to any thread: published
     * after every change of the registers on the serving thread. */
    pthread_mutex_t lock;
    bool lock_ready;
    struct vbe_mode shown;
    /* Pre-copy: a hash per page of video memory as display_mig_precopy()
     * sent it (README.md "Migration"). */
    uint64_t *page_hash;
    size_t npages;
};

/* Serving thread, after any change of the registers. */
static void
publish_mode(struct display *d)
{
    struct vbe_mode m;

    vbe_get_mode(&d->vbe, &m);
    pthread_mutex_lock(&d->lock);
    d->shown = m;
    pthread_mutex_unlock(&d->lock);
}

static ssize_t
bar2_access(void *opaque, uint64_t offset, void *buf, size_t count,
            bool is_write)
{
    struct display *d = opaque;
    int rc;

    /* A stopped device changes no state, and register reads may
     * (IS1 resets the attribute flip-flop). */
    if (d->stopped) {
        umdev_log(d->log, LOG_DEBUG,
                  "%s: register %s at %#llx refused: device stopped for "
                  "migration",
                  d->name, is_write ? "write" : "read",
                  (unsigned long long)offset);
        return -EBUSY;
    }
    if (offset > VBE_MMIO_SIZE)
        return -EINVAL;
    rc = is_write ? vbe_mmio_write(&d->vbe, (uint32_t)offset, buf, count)
                  : vbe_mmio_read(&d->vbe, (uint32_t)offset, buf, count);
    if (rc < 0)
        return rc;
    /* Reads change no mode (IS1 only toggles its own bits). */
    if (is_write)
        publish_mode(d);
    return (ssize_t)count;
}

/*
 * Video memory back to zeros as a new instance has it: the pages are
 * given back to the kernel (a hole punched in the memfd, which the
 * client's mapping sees as well) rather than written, so a reset costs
 * no memory the guest never drew into.
 */
static void
vram_clear(struct display *d)
{
    if (madvise(d->vram, d->vram_size, MADV_REMOVE) < 0)
        memset(d->vram, 0, d->vram_size);
}

static int
display_reset(void *opaque)
{
    struct display *d = opaque;

    vbe_reset(&d->vbe);
    vram_clear(d);
    umdev_pci_reset(d->pci);
    publish_mode(d);
    return 0;
}

/*
 * Migration. The configuration (must match): the type's limits and video
 * memory size. The state (format DISPLAY_MIG_VERSION, README.md
 * "Migration"): a uint32_t length and lib/pci's state, the register blob
 * of vbe_state_save(), then video memory: version 1 all of it; version 2
 * a byte saying how, then all of it (DISPLAY_VRAM_FULL) or, after a
 * pre-copy section that carried all of it, a uint32_t count and that
 * many pages changed since, each a uint32_t page number and its bytes
 * (DISPLAY_VRAM_PAGES). Integers little-endian.
 */
#define DISPLAY_PAGE 4096u
enum { DISPLAY_VRAM_FULL = 0, DISPLAY_VRAM_PAGES = 1 };
static void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int
display_mig_config(void *opaque, struct umdev_mig_buf *out)
{
    struct display *d = opaque;
    uint8_t cfg[12];

    put_le32(cfg, d->type->max_xres);
    put_le32(cfg + 4, d->type->max_yres);
    put_le32(cfg + 8, d->vram_size);
    return umdev_mig_buf_put(out, cfg, sizeof(cfg));
}

static int
display_mig_stop(void *opaque)
{
    struct display *d = opaque;

    d->stopped = true;
    return 0;
}

static void
display_mig_resume(void *opaque)
{
    struct display *d = opaque;

    d->stopped = false;
}

/* A 64-bit hash of page @n of video memory: whether it changed since
 * the pre-copy (a 2^-64 chance per changed page to miss it). */
static uint64_t
page_hash(const struct display *d, size_t n)
{
    const uint8_t *p = d->vram + n * DISPLAY_PAGE;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    size_t i;

    for (i = 0; i < DISPLAY_PAGE; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

/*
 * RUNNING -> PRE_COPY: all of video memory while the guest draws on,
 * and the hash of each page as sent, so that the final save() sends
 * only the pages that changed since.
 */
static int
display_mig_precopy(void *opaque, struct umdev_mig_buf *out)
{
    struct display *d = opaque;
    size_t n;

    for (n = 0; n < d->npages; n++)
        d->page_hash[n] = page_hash(d, n);
    return umdev_mig_buf_put(out, d->vram, d->vram_size);
}

/* Pages that changed since the pre-copy, in bytes. */
static size_t
changed_pages(const struct display *d)
{
    size_t n, k = 0;

    for (n = 0; n < d->npages; n++)
        k += page_hash(d, n) != d->page_hash[n];
    return k;
}

static uint64_t
display_mig_precopy_dirty(void *opaque)
{
    struct display *d = opaque;

    return (uint64_t)changed_pages(d) * DISPLAY_PAGE;
}

/* Video memory into the state: whole, or the pages that changed since
 * this stream's pre-copy section. */
static int
put_vram(struct display *d, struct umdev_mig_buf *out)
{
    /* The state being left: PRE_COPY only on the arc PRE_COPY ->
     * STOP_COPY, whose stream holds the pre-copy section. Any other way
     * to STOP_COPY (or a handover) sends all of it. */
    bool delta = umdev_dev_mig_state(d->dev) == VFIO_USER_DEVICE_STATE_PRE_COPY;
    uint8_t kind = delta ? DISPLAY_VRAM_PAGES : DISPLAY_VRAM_FULL, le[4];
    size_t n;
    int rc;

    rc = umdev_mig_buf_put(out, &kind, 1);
    if (rc < 0 || !delta)
        return rc < 0 ? rc : umdev_mig_buf_put(out, d->vram, d->vram_size);
    put_le32(le, (uint32_t)changed_pages(d));
    rc = umdev_mig_buf_put(out, le, sizeof(le));
    for (n = 0; rc == 0 && n < d->npages; n++) {
        if (page_hash(d, n) == d->page_hash[n])
            continue;
        put_le32(le, (uint32_t)n);
        rc = umdev_mig_buf_put(out, le, sizeof(le));
        if (rc == 0)
            rc = umdev_mig_buf_put(out, d->vram + n * DISPLAY_PAGE,
                                   DISPLAY_PAGE);
    }
    return rc;
}

static int
display_mig_save(void *opaque, struct umdev_mig_buf *out)
{
    struct display *d = opaque;
    size_t pci_len = umdev_pci_state_size(d->pci);
    uint8_t le[4], regs[VBE_STATE_SIZE], *pci_buf;
    int rc;

    pci_buf = malloc(pci_len);
    if (pci_buf == NULL)
        return -ENOMEM;
    rc = umdev_pci_state_save(d->pci, pci_buf, pci_len);
    put_le32(le, (uint32_t)pci_len);
    if (rc == 0)
        rc = umdev_mig_buf_put(out, le, sizeof(le));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, pci_buf, pci_len);
    free(pci_buf);
    vbe_state_save(&d->vbe, regs);
    if (rc == 0)
        rc = umdev_mig_buf_put(out, regs, sizeof(regs));
    /* The guest is stopped: video memory holds still while it is read. */
    if (rc == 0)
        rc = put_vram(d, out);
    return rc;
}

/*
 * Check video memory's part of a state (@b, @len bytes, format
 * @version) against the pre-copy section (@early_len bytes): return
 * the number of changed pages (0 for a whole copy) with *@full set, or
 * -1 with @err filled.
 */
static long
check_vram(const struct display *d, uint32_t version, const uint8_t *b,
           size_t len, size_t early_len, bool *full, char *err, size_t errlen)
{
    uint32_t count, i;

    *full = true;
    if (early_len != 0 && early_len != d->vram_size) {
        snprintf(err, errlen, "a pre-copy section of %zu bytes, not %u",
                 early_len, d->vram_size);
        return -1;
    }
    if (version == 1 || (len >= 1 && b[0] == DISPLAY_VRAM_FULL)) {
        size_t skip = version == 1 ? 0 : 1;

        if (len != skip + d->vram_size) {
            snprintf(err, errlen, "video memory: %zu bytes where %u belong",
                     len - skip, d->vram_size);
            return -1;
        }
        return 0;
    }
    if (len < 5 || b[0] != DISPLAY_VRAM_PAGES) {
        snprintf(err, errlen, "video memory: unknown encoding");
        return -1;
    }
    if (early_len == 0) {
        snprintf(err, errlen,
                 "changed pages of video memory without the pre-copy "
                 "section they apply to");
        return -1;
    }
    count = get_le32(b + 1);
    if (count > d->npages || len - 5 != (size_t)count * (4 + DISPLAY_PAGE)) {
        snprintf(err, errlen,
                 "video memory: %u changed pages in %zu bytes (at most %zu "
                 "pages of %u bytes, each after its number)",
                 count, len - 5, d->npages, DISPLAY_PAGE);
        return -1;
    }
    for (i = 0; i < count; i++)
        if (get_le32(b + 5 + (size_t)i * (4 + DISPLAY_PAGE)) >= d->npages) {
            snprintf(err, errlen, "video memory: page %u of %zu",
                     get_le32(b + 5 + (size_t)i * (4 + DISPLAY_PAGE)),
                     d->npages);
            return -1;
        }
    *full = false;
    return count;
}

static int
display_mig_load(void *opaque, uint32_t version, const void *early,
                 size_t early_len, const void *state, size_t len)
{
    struct display *d = opaque;
    const uint8_t *b = state, *vb;
    uint32_t pci_len;
    char err[160] = "";
    bool full;
    long count, i;
    int rc = -EINVAL;

    if (version < 1 || version > DISPLAY_MIG_VERSION) {
        snprintf(err, sizeof(err), "state version %u unknown", version);
        goto refuse;
    }
    if (len < 4) {
        snprintf(err, sizeof(err), "truncated: %zu bytes", len);
        goto refuse;
    }
    pci_len = get_le32(b);
    if (len - 4 < pci_len || len - 4 - pci_len < VBE_STATE_SIZE) {
        snprintf(err, sizeof(err),
                 "%zu bytes: want 4 + %u of config space + %u of registers "
                 "and video memory",
                 len, pci_len, VBE_STATE_SIZE);
        goto refuse;
    }
    vb = b + 4 + pci_len + VBE_STATE_SIZE;
    count = check_vram(d, version, vb, len - 4 - pci_len - VBE_STATE_SIZE,
                       early != NULL ? early_len : 0, &full, err, sizeof(err));
    if (count < 0)
        goto refuse;
    /* lib/pci checks its whole blob before taking any of it; after it
     * nothing can fail. */
    rc = umdev_pci_state_load(d->pci, b + 4, pci_len, err, sizeof(err));
    if (rc < 0)
        goto refuse;
    vbe_state_load(&d->vbe, b + 4 + pci_len, VBE_STATE_SIZE);
    if (full) {
        memcpy(d->vram, vb + (version == 1 ? 0 : 1), d->vram_size);
    } else {
        memcpy(d->vram, early, d->vram_size);
        for (i = 0; i < count; i++) {
            const uint8_t *pg = vb + 5 + (size_t)i * (4 + DISPLAY_PAGE);

            memcpy(d->vram + (size_t)get_le32(pg) * DISPLAY_PAGE, pg + 4,
                   DISPLAY_PAGE);
        }
    }
    publish_mode(d);
    return 0;
refuse:
    umdev_log(d->log, LOG_ERR, "%s: migrated state refused: %s", d->name, err);
    return rc;
}

static const struct umdev_mig_ops display_mig = {
    .type = "display",
    .version = DISPLAY_MIG_VERSION,
    .config = display_mig_config,
    .stop = display_mig_stop,
    .resume = display_mig_resume,
    .save = display_mig_save,
    .load = display_mig_load,
    .precopy = display_mig_precopy,
    .precopy_dirty = display_mig_precopy_dirty,
};

static const struct umdev_dev_ops display_ops = {
    .reset = display_reset,
    .mig = &display_mig,
};

/* The EDID of @t for instance @uuid (NULL: serial 0). */
static int
make_edid(const struct display_type *t, const char *uuid, uint8_t *out)
{
    struct edid_desc e = {
        .product = t->max_xres,
        .name = "umdev",
        .preferred = &t->preferred,
        .std = t->std,
        .nstd = t->nstd,
    };
    char text[14] = "0";
    uuid_t u;

    memcpy(e.established, t->established, sizeof(e.established));
    if (uuid != NULL) {
        if (uuid_parse(uuid, u) < 0)
            return -EINVAL;
        e.serial = edid_serial_from_uuid(u);
        /* The UUID's first 12 hex digits: a person matches the monitor
         * the guest reports to the instance. */
        snprintf(text, sizeof(text), "%.8s%.4s", uuid, uuid + 9);
    }
    e.serial_text = text;
    return edid_build(&e, out);
}

int
display_create(const struct display_config *cfg, const struct umdev_logger *log,
               struct display **out)
{
    static const struct umdev_pci_id id = {
        .vendor_id = DISPLAY_VENDOR_ID,
        .device_id = DISPLAY_DEVICE_ID,
        .subsystem_vendor_id = DISPLAY_SUBSYS_VENDOR_ID,
        .subsystem_id = DISPLAY_SUBSYS_ID,
        .revision = DISPLAY_REVISION,
        .class_code = DISPLAY_CLASS,
        .interrupt_pin = 0, /* the interface has no interrupt */
    };
    struct umdev_dev_info info = {
        .pci = true,
        .ops = &display_ops,
        .log = log,
    };
    struct umdev_region_desc bar0 = {
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .shm = true, /* no areas: the client maps all of it */
    };
    struct umdev_region_desc bar2 = {
        .size = VBE_MMIO_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar2_access,
    };
    struct umdev_profile prof = display_profile_tmpl;
    struct vbe_limits lim;
    struct display *d;
    int rc;

    *out = NULL;
    if (cfg == NULL)
        return -EINVAL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->log = log;
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        free(d);
        return -ENOMEM;
    }
    d->lock_ready = true;
    d->type = display_type_find(cfg->type ? cfg->type : "display-1024");
    d->name = strdup(cfg->name ? cfg->name : "display");
    if (d->name == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if (d->type == NULL) {
        umdev_log(log, LOG_ERR, "%s: unknown display type '%s'", d->name,
                  cfg->type);
        rc = -EINVAL;
        goto fail;
    }
    snprintf(d->type_name, sizeof(d->type_name), "display-%s", d->type->name);
    rc = make_edid(d->type, cfg->uuid, d->edid);
    if (rc < 0) {
        umdev_log(log, LOG_ERR, "%s: cannot make the EDID for UUID '%s'",
                  d->name, cfg->uuid ? cfg->uuid : "");
        goto fail;
    }
    d->vram_size = d->type->vram_mib * MIB;
    info.name = d->name;
    info.opaque = d;
    bar0.size = d->vram_size;
    bar2.opaque = d;
    rc = umdev_dev_create(&info, &d->dev);
    if (rc == 0)
        rc = umdev_pci_create(d->dev, &id, &d->pci);
    /* Prefetchable, as bochs-display's: plain memory, no side effects. */
    if (rc == 0)
        rc = umdev_pci_bar_add(d->pci, 0, UMDEV_PCI_BAR_MEM32, true,
                               d->vram_size, &bar0);
    if (rc == 0)
        rc = umdev_pci_bar_add(d->pci, 2, UMDEV_PCI_BAR_MEM32, false,
                               VBE_MMIO_SIZE, &bar2);
    if (rc < 0)
        goto fail;
    d->vram = umdev_dev_region_mem(d->dev, UMDEV_PCI_BAR0_REGION);
    d->npages = d->vram_size / DISPLAY_PAGE;
    d->page_hash = calloc(d->npages, sizeof(*d->page_hash));
    if (d->page_hash == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    lim.max_xres = d->type->max_xres;
    lim.max_yres = d->type->max_yres;
    lim.vram_size = d->vram_size;
    rc = vbe_init(&d->vbe, &lim, d->vram, d->edid);
    prof.type = d->type_name;
    if (rc == 0)
        rc = umdev_dev_set_profile(d->dev, &prof);
    if (rc < 0)
        goto fail;
    publish_mode(d);
    *out = d;
    return 0;
fail:
    display_destroy(d);
    return rc;
}

void
display_destroy(struct display *d)
{
    if (d == NULL)
        return;
    umdev_dev_destroy(d->dev);
    umdev_pci_destroy(d->pci);
    if (d->lock_ready)
        pthread_mutex_destroy(&d->lock);
    free(d->page_hash);
    free(d->name);
    free(d);
}

struct umdev_dev *
display_dev(struct display *d)
{
    return d->dev;
}

struct umdev_pci *
display_pci(struct display *d)
{
    return d->pci;
}

const uint8_t *
display_edid(struct display *d)
{
    return d->edid;
}

void
display_screen(struct display *d, struct display_screen *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&d->lock);
    out->mode = d->shown;
    pthread_mutex_unlock(&d->lock);
    out->vram = d->vram;
    out->vram_size = d->vram_size;
    if (out->mode.enabled)
        out->pixels = d->vram + out->mode.offset;
}
