/*
 * A parent plug-in for the daemon tests of the screen operation
 * (test_display.py): parent "screen", type "screen-card", whose card has
 * one BAR of shared memory (BAR0, 64 KiB, the client maps it) and a
 * screen operation that describes what the attribute "screen" says, so
 * a test can hand the worker a screen a real parent would never
 * describe:
 *
 *   ok        16x16 XRGB8888 at offset 0, pitch 64 (inside BAR0)
 *   outside   16x16 XRGB8888 whose last row ends past BAR0
 *   format    an unknown pixel format, with nothing shown
 *   trapped   a screen in BAR2, trapped memory with no memfd
 *   fails     the operation fails (EIO)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <umdev/parent.h>

#define BAR0_SIZE 0x10000u
#define BAR2_SIZE 0x1000u

struct screen_card {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    char what[16];
};

static const char *const choices[] = { "ok", "outside", "format", "trapped",
                                       "fails" };

static ssize_t
bar2_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    (void)opaque;
    (void)off;
    if (!is_write)
        memset(buf, 0, count);
    return (ssize_t)count;
}

static void
card_destroy(struct umdev_instance *inst)
{
    struct screen_card *s = inst->priv;

    if (s == NULL)
        return;
    umdev_pci_destroy(s->pci);
    umdev_dev_destroy(s->dev);
    free(s);
    inst->priv = NULL;
}

static int
card_create(const struct umdev_instance_args *args, struct umdev_instance *out)
{
    struct umdev_dev_info info = { .name = "screen",
                                   .pci = true,
                                   .log = args->log };
    const struct umdev_pci_id id = {
        .vendor_id = 0x1234,
        .device_id = 0x11f4,
        .subsystem_vendor_id = 0x1234,
        .subsystem_id = 0x0001,
        .class_code = 0x038000,
    };
    struct umdev_region_desc bar0 = {
        .size = BAR0_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .shm = true,
    };
    struct umdev_region_desc bar2 = {
        .size = BAR2_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar2_access,
    };
    struct screen_card *s = calloc(1, sizeof(*s));
    struct json_object *v;
    int rc;

    if (s == NULL)
        return -ENOMEM;
    snprintf(s->what, sizeof(s->what), "ok");
    if (args->attrs != NULL &&
        json_object_object_get_ex(args->attrs, "screen", &v))
        snprintf(s->what, sizeof(s->what), "%s", json_object_get_string(v));
    out->priv = info.opaque = bar2.opaque = s;
    rc = umdev_dev_create(&info, &s->dev);
    if (rc == 0)
        rc = umdev_pci_create(s->dev, &id, &s->pci);
    if (rc == 0)
        rc = umdev_pci_bar_add(s->pci, 0, UMDEV_PCI_BAR_MEM32, false, BAR0_SIZE,
                               &bar0);
    if (rc == 0)
        rc = umdev_pci_bar_add(s->pci, 2, UMDEV_PCI_BAR_MEM32, false, BAR2_SIZE,
                               &bar2);
    if (rc < 0) {
        card_destroy(out);
        return rc;
    }
    out->dev = s->dev;
    out->pci = s->pci;
    return 0;
}

static int
card_screen(struct umdev_instance *inst, struct umdev_screen *out)
{
    const struct screen_card *s = inst->priv;

    memset(out, 0, sizeof(*out));
    out->enabled = true;
    out->region = UMDEV_PCI_BAR0_REGION;
    out->width = out->height = 16;
    out->pitch = 64;
    out->format = UMDEV_SCREEN_FMT_XRGB8888;
    if (strcmp(s->what, "outside") == 0) {
        out->offset = BAR0_SIZE - 15 * 64; /* the last row ends past it */
    } else if (strcmp(s->what, "format") == 0) {
        memset(out, 0, sizeof(*out));
        out->format = (enum umdev_screen_format)99;
    } else if (strcmp(s->what, "trapped") == 0) {
        out->region = UMDEV_PCI_BAR0_REGION + 2;
    } else if (strcmp(s->what, "fails") == 0) {
        return -EIO;
    }
    return 0;
}

static int
card_check_attrs(const char *type, struct json_object *attrs, char *err,
                 size_t errlen)
{
    size_t i;

    if (attrs == NULL)
        return 0;
    json_object_object_foreach(attrs, key, v)
    {
        if (strcmp(key, "screen") != 0 ||
            !json_object_is_type(v, json_type_string)) {
            snprintf(err, errlen, "%s has one attribute, screen", type);
            return -EINVAL;
        }
        for (i = 0; i < sizeof(choices) / sizeof(choices[0]); i++)
            if (strcmp(json_object_get_string(v), choices[i]) == 0)
                break;
        if (i == sizeof(choices) / sizeof(choices[0])) {
            snprintf(err, errlen,
                     "screen: ok, outside, format, trapped or fails");
            return -EINVAL;
        }
    }
    return 0;
}

static const struct umdev_parent_pool pools[] = { { "cards", 8 } };
static const struct umdev_parent_type types[] = {
    { .name = "card",
      .description = "a card whose screen is what its attribute says (tests)",
      .costs = { { "cards", 1 } },
      .ncosts = 1 },
};
static const struct umdev_parent_attr attrs[] = {
    { "screen", NULL, "ok, outside, format, trapped or fails" },
};
static const struct umdev_parent_ops parent_ops = {
    .check_attrs = card_check_attrs,
    .create = card_create,
    .destroy = card_destroy,
    .screen = card_screen,
};
static const struct umdev_parent screen_parent = {
    .abi_version = UMDEV_PARENT_ABI_VERSION,
    .name = "screen",
    .pools = pools,
    .npools = 1,
    .types = types,
    .ntypes = 1,
    .ops = &parent_ops,
    .attrs = attrs,
    .nattrs = 1,
};

UMDEV_PARENT_PLUGIN(&screen_parent)
