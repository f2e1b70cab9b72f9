/*
 * A parent plug-in for the daemon tests whose attribute takes text of
 * any length: parent "label", type "label-card", attribute "label". The
 * built-in parents bound every attribute value (a path fits a socket
 * address), so only a parent like this one, an EDID or a firmware name
 * list in real life, lets a definition grow toward the size its file may
 * have (test_persist.py, the definition size limit).
 *
 * The card is a real device: BAR0 holds one read-only register, LEN,
 * the label's length in bytes, so a guest can tell which label the
 * instance was started with.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <umdev/parent.h>
#include <umdev/profile.h>

#define REG_LEN 0x0
#define BAR0_SIZE 16

struct label_card {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    uint32_t len;
};

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    struct label_card *l = opaque;
    uint32_t v = off == REG_LEN ? l->len : 0;

    /* The profile admits 4-byte reads of LEN alone. */
    if (is_write || count != sizeof(v))
        return -EINVAL;
    memcpy(buf, &v, sizeof(v));
    return (ssize_t)count;
}

static const struct umdev_profile_reg regs[] = {
    { "LEN", REG_LEN, 4, UMDEV_W(4), UMDEV_PROFILE_R, false, false,
      "the label's length in bytes, fixed while the instance runs" },
};
static const struct umdev_profile_region profile_regions[] = {
    { .index = UMDEV_PCI_BAR0_REGION, .regs = regs, .nregs = 1 },
};
static const struct umdev_profile profile = {
    .type = "label-card",
    .regions = profile_regions,
    .nregions = 1,
    .data_path = UMDEV_PROFILE_DP_RING,
    .data_path_unit = "label",
};

static void
label_destroy(struct umdev_instance *inst)
{
    struct label_card *l = inst->priv;

    if (l == NULL)
        return;
    umdev_pci_destroy(l->pci);
    umdev_dev_destroy(l->dev);
    free(l);
    inst->priv = NULL;
}

static int
label_create(const struct umdev_instance_args *args, struct umdev_instance *out)
{
    struct umdev_dev_info info = { .name = "label",
                                   .pci = true,
                                   .log = args->log };
    const struct umdev_pci_id id = {
        .vendor_id = 0x1234,
        .device_id = 0x11f3,
        .subsystem_vendor_id = 0x1234,
        .subsystem_id = 0x0001,
        .class_code = 0x088000,
    };
    struct umdev_region_desc bar = {
        .size = BAR0_SIZE,
        .flags = UMDEV_REGION_F_READ,
        .access = bar0_access,
    };
    struct label_card *l = calloc(1, sizeof(*l));
    struct json_object *v;
    int rc;

    if (l == NULL)
        return -ENOMEM;
    if (args->attrs != NULL &&
        json_object_object_get_ex(args->attrs, "label", &v))
        l->len = (uint32_t)json_object_get_string_len(v);
    out->priv = info.opaque = bar.opaque = l;
    rc = umdev_dev_create(&info, &l->dev);
    if (rc == 0)
        rc = umdev_pci_create(l->dev, &id, &l->pci);
    if (rc == 0)
        rc = umdev_pci_bar_add(l->pci, 0, UMDEV_PCI_BAR_MEM32, false, BAR0_SIZE,
                               &bar);
    if (rc == 0)
        rc = umdev_dev_set_profile(l->dev, &profile);
    if (rc < 0) {
        label_destroy(out);
        return rc;
    }
    out->dev = l->dev;
    out->pci = l->pci;
    return 0;
}

static int
label_check_attrs(const char *type, struct json_object *attrs, char *err,
                  size_t errlen)
{
    if (attrs == NULL)
        return 0;
    json_object_object_foreach(attrs, key, v)
    {
        if (strcmp(key, "label") != 0) {
            snprintf(err, errlen, "%s has one attribute, label; not '%s'", type,
                     key);
            return -EINVAL;
        }
        if (!json_object_is_type(v, json_type_string)) {
            snprintf(err, errlen, "%s: label must be a string", type);
            return -EINVAL;
        }
    }
    return 0;
}

static const struct umdev_parent_pool pools[] = { { "cards", 4 } };
static const struct umdev_parent_type types[] = {
    { .name = "card",
      .description = "a card that reports its label's length (tests)",
      .costs = { { "cards", 1 } },
      .ncosts = 1 },
};
static const struct umdev_parent_attr attrs[] = {
    { "label", NULL, "any text, of any length" },
};
static const struct umdev_parent_ops parent_ops = {
    .check_attrs = label_check_attrs,
    .create = label_create,
    .destroy = label_destroy,
};
static const struct umdev_parent label_parent = {
    .abi_version = UMDEV_PARENT_ABI_VERSION,
    .name = "label",
    .pools = pools,
    .npools = 1,
    .types = types,
    .ntypes = 1,
    .ops = &parent_ops,
    .attrs = attrs,
    .nattrs = 1,
};

UMDEV_PARENT_PLUGIN(&label_parent)
