/*
 * An out-of-tree parent plug-in for umdevd (docs/PLUGINS.md), built from
 * the installed headers and library with pkg-config (samples/Makefile):
 * parent "sample" with a pool of 4 "fifos" and one type, sample-loop, a
 * loopback FIFO card (PCI 1234:11f2, samples/README.md). BAR0:
 *
 *   0x0 DATA    rw 8-bit  write: push a byte; read: pop one (0 if empty)
 *   0x4 STATUS  r 32-bit  bit 0 RX_READY, bit 1 TX_READY, 15:8 fill level
 *   0x8 CTRL    rw 32-bit bit 0 FLUSH (reads 0), bit 1 IRQ_EN (INTx while
 *                         RX_READY)
 *
 * Every byte crosses the DATA register, as on the FIFO port it models: a
 * trapped data path by design, which the profile declares (pio, 2
 * messages per byte) and the admission audit measures through exercise().
 * Built with -DSAMPLE_LIAR it becomes the broken plug-in: the same device
 * whose profile claims a ring data path with no message per byte; the
 * audit measures otherwise and refuses it (criterion 2).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <umdev/client.h>
#include <umdev/parent.h>
#include <umdev/profile.h>

#define LOOP_DEPTH 16u
#define REG_DATA 0x0
#define REG_STATUS 0x4
#define REG_CTRL 0x8
#define STATUS_RX_READY (1u << 0)
#define STATUS_TX_READY (1u << 1)
#define CTRL_FLUSH (1u << 0)
#define CTRL_IRQ_EN (1u << 1)

struct loop {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    uint8_t fifo[LOOP_DEPTH];
    unsigned int head, count;
    uint32_t ctrl;
    uint64_t looped;
};

static void
update_irq(struct loop *l)
{
    umdev_pci_intx_set(l->pci, (l->ctrl & CTRL_IRQ_EN) && l->count > 0);
}

static uint32_t
status(const struct loop *l)
{
    return (l->count > 0 ? STATUS_RX_READY : 0) |
           (l->count < LOOP_DEPTH ? STATUS_TX_READY : 0) | l->count << 8;
}

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    struct loop *l = opaque;
    uint32_t v = 0;

    if (is_write)
        memcpy(&v, buf, count);
    if (off == REG_DATA && is_write && l->count < LOOP_DEPTH) {
        l->fifo[(l->head + l->count++) % LOOP_DEPTH] = (uint8_t)v;
    } else if (off == REG_DATA && !is_write) {
        v = 0;
        if (l->count > 0) {
            v = l->fifo[l->head];
            l->head = (l->head + 1) % LOOP_DEPTH;
            l->count--;
            l->looped++;
        }
    } else if (off == REG_STATUS) {
        v = status(l);
    } else if (off == REG_CTRL && is_write) {
        if (v & CTRL_FLUSH)
            l->head = l->count = 0;
        l->ctrl = v & CTRL_IRQ_EN;
    } else if (off == REG_CTRL) {
        v = l->ctrl;
    }
    if (!is_write)
        memcpy(buf, &v, count);
    update_irq(l);
    return (ssize_t)count;
}

static int
loop_reset(void *opaque)
{
    struct loop *l = opaque;

    l->head = l->count = 0;
    l->ctrl = 0;
    umdev_pci_reset(l->pci);
    update_irq(l);
    return 0;
}

#ifdef SAMPLE_LIAR
#define PARENT_NAME "liar"
#define DATA_PATH UMDEV_PROFILE_DP_RING, 0, "descriptor", NULL
#define DATA_IS_IO false
#else
#define PARENT_NAME "sample"
#define DATA_PATH                                                              \
    UMDEV_PROFILE_DP_PIO, 2, "byte",                                           \
        "a FIFO port: each byte is written in and read out through DATA"
#define DATA_IS_IO true
#endif

static const struct umdev_profile_reg regs[] = {
    { "DATA", REG_DATA, 1, UMDEV_W(1), UMDEV_PROFILE_RW, DATA_IS_IO, true,
      "the FIFO port: write pushes a byte, read pops one" },
    { "STATUS", REG_STATUS, 4, UMDEV_W(4), UMDEV_PROFILE_R, false, true,
      "RX/TX ready and fill level, polled by the driver" },
    { "CTRL", REG_CTRL, 4, UMDEV_W(4), UMDEV_PROFILE_RW, false, false,
      "flush the FIFO, enable the interrupt" },
};
static const struct umdev_profile_region profile_regions[] = {
    { .index = UMDEV_PCI_BAR0_REGION, .regs = regs, .nregs = 3 },
};
static const struct umdev_profile profile = {
    .type = PARENT_NAME "-loop",
    .regions = profile_regions,
    .nregions = 1,
    .data_path = DATA_PATH,
};

static void
loop_destroy(struct umdev_instance *inst)
{
    struct loop *l = inst->priv;

    if (l == NULL)
        return;
    umdev_pci_destroy(l->pci);
    umdev_dev_destroy(l->dev);
    free(l);
    inst->priv = NULL;
}

static int
loop_create(const struct umdev_instance_args *args, struct umdev_instance *out)
{
    static const struct umdev_dev_ops ops = { .reset = loop_reset };
    struct umdev_dev_info info = {
        .name = "loop", .pci = true, .ops = &ops, .log = args->log
    };
    const struct umdev_pci_id id = {
        .vendor_id = 0x1234,
        .device_id = 0x11f2,
        .subsystem_vendor_id = 0x1234,
        .subsystem_id = 0x0001,
        .class_code = 0x078000,
        .interrupt_pin = 1,
    };
    struct umdev_region_desc bar = {
        .size = 16,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar0_access,
    };
    struct loop *l = calloc(1, sizeof(*l));
    int rc;

    if (l == NULL)
        return -ENOMEM;
    out->priv = info.opaque = bar.opaque = l;
    rc = umdev_dev_create(&info, &l->dev);
    if (rc == 0)
        rc = umdev_pci_create(l->dev, &id, &l->pci);
    if (rc == 0)
        rc = umdev_pci_bar_add(l->pci, 0, UMDEV_PCI_BAR_MEM32, false, 16, &bar);
    if (rc == 0)
        rc = umdev_dev_set_profile(l->dev, &profile);
    if (rc < 0) {
        loop_destroy(out);
        return rc;
    }
    out->dev = l->dev;
    out->pci = l->pci;
    return 0;
}

static int
loop_check_attrs(const char *type, struct json_object *attrs, char *err,
                 size_t errlen)
{
    /* The card has no settings; an attribute is a mistake to point out. */
    if (attrs != NULL && json_object_object_length(attrs) > 0) {
        snprintf(err, errlen, "%s takes no attributes", type);
        return -EINVAL;
    }
    return 0;
}

static struct json_object *
loop_describe(struct umdev_instance *inst)
{
    struct loop *l = inst->priv;
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "fifo_depth", json_object_new_int(LOOP_DEPTH));
    json_object_object_add(o, "bytes_looped",
                           json_object_new_int64((int64_t)l->looped));
    return o;
}

/* The conformance kit's load generator: bytes through the FIFO, as a
 * polling driver moves them. */
static int
loop_exercise(const struct umdev_exercise_args *args,
              struct umdev_exercise_result *out)
{
    struct umdev_client *c = args->client;
    uint64_t done = 0;
    int rc = 0;

    while (done < args->units && rc == 0) {
        unsigned int n = args->units - done < LOOP_DEPTH
                             ? (unsigned int)(args->units - done)
                             : LOOP_DEPTH;
        uint32_t st = 0;
        unsigned int i;

        for (i = 0; i < n && rc == 0; i++) {
            uint8_t b = (uint8_t)(done + i) * 7u;

            rc = umdev_client_region_write(c, 0, REG_DATA, &b, 1);
        }
        if (rc == 0)
            rc = umdev_client_region_read(c, 0, REG_STATUS, &st, 4);
        out->waiting_msgs++;
        if (rc == 0 && (st >> 8 & 0xff) != n)
            rc = -EIO;
        for (i = 0; i < n && rc == 0; i++) {
            uint8_t b = 0;

            rc = umdev_client_region_read(c, 0, REG_DATA, &b, 1);
            if (rc == 0 && b != (uint8_t)((uint8_t)(done + i) * 7u))
                rc = -EIO;
        }
        if (rc == 0)
            done += n;
    }
    out->units = done;
    snprintf(out->note, sizeof(out->note),
             "%llu bytes written to DATA and read back in %u-byte bursts%s",
             (unsigned long long)done, LOOP_DEPTH,
             rc == -EIO ? "; a byte came back wrong" : "");
    return rc;
}

static const struct umdev_parent_pool pools[] = { { "fifos", 4 } };
static const struct umdev_parent_type types[] = {
    { .name = "loop",
      .description = "sample loopback FIFO card (PCI 1234:11f2), a "
                     "plug-in built out of tree",
      .costs = { { "fifos", 1 } },
      .ncosts = 1 },
};
static const struct umdev_parent_ops parent_ops = {
    .check_attrs = loop_check_attrs,
    .create = loop_create,
    .destroy = loop_destroy,
    .describe = loop_describe,
    .exercise = loop_exercise,
};
static const struct umdev_parent sample_parent = {
    .abi_version = UMDEV_PARENT_ABI_VERSION,
    .name = PARENT_NAME,
    .pools = pools,
    .npools = 1,
    .types = types,
    .ntypes = 1,
    .ops = &parent_ops,
};

UMDEV_PARENT_PLUGIN(&sample_parent)
