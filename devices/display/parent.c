/*
 * The display parent behind the parent-driver interface
 * (include/umdev/parent.h): a pool of video memory in MiB, one type per
 * largest mode (README.md), each claiming its video memory from the
 * pool while it runs. Instances take no attributes yet.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "display.h"
#include "display_parent.h"
#include "umdev/parent.h"

/*
 * Video memory one daemon hands out at most, in MiB: a bound on what
 * instances may pin (video memory is shared memory the guest may fill
 * whole). size_pools lowers it to a quarter of this host's RAM.
 */
#define DISPLAY_POOL_VRAM_MIB 16384u

static int
display_check_attrs(const char *type, struct json_object *attrs, char *err,
                    size_t errlen)
{
    if (display_type_find(type) == NULL) {
        snprintf(err, errlen, "unknown display type '%s'", type ? type : "");
        return -EINVAL;
    }
    if (attrs == NULL)
        return 0;
    if (!json_object_is_type(attrs, json_type_object)) {
        snprintf(err, errlen, "attrs must be a JSON object");
        return -EINVAL;
    }
    json_object_object_foreach(attrs, key, v)
    {
        (void)v;
        snprintf(err, errlen,
                 "unknown attribute '%s': display instances take none", key);
        return -EINVAL;
    }
    return 0;
}

static void
display_parent_destroy(struct umdev_instance *inst)
{
    display_destroy(inst->priv);
    inst->priv = NULL;
}

static struct json_object *
display_parent_describe(struct umdev_instance *inst)
{
    struct display_screen s;
    struct json_object *o = json_object_new_object();

    display_screen(inst->priv, &s);
    json_object_object_add(o, "vram_bytes",
                           json_object_new_int64((int64_t)s.vram_size));
    json_object_object_add(o, "mode_enabled",
                           json_object_new_boolean(s.mode.enabled));
    if (s.mode.enabled) {
        char mode[48];

        snprintf(mode, sizeof(mode), "%ux%u@%u", s.mode.width, s.mode.height,
                 s.mode.bpp);
        json_object_object_add(o, "mode", json_object_new_string(mode));
        json_object_object_add(o, "pitch",
                               json_object_new_int((int32_t)s.mode.pitch));
    }
    json_object_object_add(o, "blanked",
                           json_object_new_boolean(s.mode.blanked));
    /* What the guest reads as its monitor's EDID, in hex, so a host can
     * compare it with the guest's view (e2e.display). */
    {
        const uint8_t *e = display_edid(inst->priv);
        char hex[2 * EDID_BLOCK_LEN + 1];
        size_t i;

        for (i = 0; i < EDID_BLOCK_LEN; i++)
            snprintf(hex + 2 * i, 3, "%02x", e[i]);
        json_object_object_add(o, "edid", json_object_new_string(hex));
    }
    return o;
}

/*
 * The screen as the guest shows it (README.md "The screen-out side"):
 * BAR0's shared memory from the top left visible pixel. The mode was
 * fixed up at the guest's last register write to lie inside video
 * memory, which is all of BAR0.
 */
static int
display_parent_screen(struct umdev_instance *inst, struct umdev_screen *out)
{
    static const enum umdev_screen_format fmt[] = {
        [VBE_FMT_NONE] = UMDEV_SCREEN_FMT_NONE,
        [VBE_FMT_RGB555] = UMDEV_SCREEN_FMT_RGB555,
        [VBE_FMT_RGB565] = UMDEV_SCREEN_FMT_RGB565,
        [VBE_FMT_BGR888] = UMDEV_SCREEN_FMT_BGR888,
        [VBE_FMT_XRGB8888] = UMDEV_SCREEN_FMT_XRGB8888,
        [VBE_FMT_BGRX8888] = UMDEV_SCREEN_FMT_BGRX8888,
    };
    struct display_screen s;

    display_screen(inst->priv, &s);
    memset(out, 0, sizeof(*out));
    out->region = UMDEV_PCI_BAR0_REGION;
    if (!s.mode.enabled || s.mode.format == VBE_FMT_NONE ||
        (size_t)s.mode.format >= sizeof(fmt) / sizeof(fmt[0]))
        return 0;
    out->enabled = true;
    out->blanked = s.mode.blanked;
    out->offset = s.mode.offset;
    out->width = s.mode.width;
    out->height = s.mode.height;
    out->pitch = s.mode.pitch;
    out->format = fmt[s.mode.format];
    return 0;
}

static int
display_parent_create(const struct umdev_instance_args *args,
                      struct umdev_instance *out)
{
    struct display_config cfg = {
        .type = args->type,
        .uuid = args->uuid,
        .name = "display", /* the worker's logger adds the UUID */
    };
    struct display *d;
    char err[160];
    int rc;

    rc = display_check_attrs(args->type, args->attrs, err, sizeof(err));
    if (rc < 0) {
        umdev_log(args->log, LOG_ERR, "%s", err);
        return rc;
    }
    rc = display_create(&cfg, args->log, &d);
    if (rc < 0)
        return rc;
    out->dev = display_dev(d);
    out->pci = display_pci(d);
    out->priv = d;
    return 0;
}

static int
display_size_pools(const char *datadir, uint32_t *cap, size_t npools)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t mib;

    (void)datadir;
    if (npools < 1 || pages <= 0 || psz <= 0)
        return -EINVAL;
    mib = (uint64_t)pages * (uint64_t)psz / 4 / (1u << 20);
    if (mib < cap[0])
        cap[0] = (uint32_t)mib;
    return 0;
}

static const struct umdev_parent_pool display_pools[] = {
    { .name = "vram_mib", .capacity = DISPLAY_POOL_VRAM_MIB },
};

static const struct umdev_parent_type display_parent_types[] = {
    {
        .name = "1024",
        .description = "Bochs/QEMU display (PCI 1234:1111, Linux bochs-drm), "
                       "up to 1024x768, 8 MiB framebuffer mapped by the guest",
        .costs = { { .pool = "vram_mib", .amount = DISPLAY_1024_VRAM_MIB } },
        .ncosts = 1,
    },
    {
        .name = "1920",
        .description = "Bochs/QEMU display (PCI 1234:1111, Linux bochs-drm), "
                       "up to 1920x1080, 16 MiB framebuffer mapped by the "
                       "guest",
        .costs = { { .pool = "vram_mib", .amount = DISPLAY_1920_VRAM_MIB } },
        .ncosts = 1,
    },
};

static const struct umdev_parent_ops display_parent_ops = {
    .check_attrs = display_check_attrs,
    .create = display_parent_create,
    .destroy = display_parent_destroy,
    .describe = display_parent_describe,
    .exercise = display_exercise,
    .size_pools = display_size_pools,
    .screen = display_parent_screen,
};

const struct umdev_parent display_parent = {
    .abi_version = UMDEV_PARENT_ABI_VERSION,
    .name = "display",
    .pools = display_pools,
    .npools = sizeof(display_pools) / sizeof(display_pools[0]),
    .types = display_parent_types,
    .ntypes = sizeof(display_parent_types) / sizeof(display_parent_types[0]),
    .ops = &display_parent_ops,
    .attrs = NULL,
    .nattrs = 0,
};
