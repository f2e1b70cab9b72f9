/* Protocol facts the edge tests share: see kit_proto.h. */
#include <errno.h>
#include <linux/vfio.h>
#include <string.h>

#include "kit_proto.h"
#include "umdev/wire.h"

const struct kit_cmd kit_cmds[KIT_NCMDS] = {
    { VFIO_USER_VERSION, 4, false, EINVAL }, /* a second VERSION */
    { VFIO_USER_DMA_MAP, 32, true, 0 },
    { VFIO_USER_DMA_UNMAP, 24, true, 0 },
    { VFIO_USER_DEVICE_GET_INFO, 16, true, 0 },
    { VFIO_USER_DEVICE_GET_REGION_INFO, 32, true, 0 },
    { VFIO_USER_DEVICE_GET_REGION_IO_FDS, 16, true, 0 },
    { VFIO_USER_DEVICE_GET_IRQ_INFO, 16, true, 0 },
    { VFIO_USER_DEVICE_SET_IRQS, 20, true, 0 },
    { VFIO_USER_REGION_READ, 16, false, 0 },
    { VFIO_USER_REGION_WRITE, 16, false, 0 },
    { VFIO_USER_DMA_READ, 16, false, EINVAL },  /* server to client only */
    { VFIO_USER_DMA_WRITE, 16, false, EINVAL }, /* server to client only */
    { VFIO_USER_DEVICE_RESET, 0, false, 0 },
    { KIT_CMD_RETIRED, 0, false, ENOSYS },
    { VFIO_USER_REGION_WRITE_MULTI, 8, false, 0 },
    { VFIO_USER_DEVICE_FEATURE, 8, true, ENOTSUP },
    { VFIO_USER_MIG_DATA_READ, 8, true, EINVAL },
    { VFIO_USER_MIG_DATA_WRITE, 8, true, EINVAL },
};

bool
kit_qemu_proposes(const char *key)
{
    static const char *const keys[] = {
        "max_msg_fds",  "max_data_xfer_size", "pgsizes",
        "max_dma_maps", "migration",          "write_multiple",
    };
    size_t i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(key, keys[i]) == 0)
            return true;
    return false;
}

size_t
kit_version_payload(uint8_t *buf, size_t cap, uint16_t major, uint16_t minor,
                    const char *json, size_t json_len)
{
    if (cap < sizeof(struct vfio_user_version) ||
        json_len > cap - sizeof(struct vfio_user_version))
        return 0;
    memcpy(buf, &major, 2);
    memcpy(buf + 2, &minor, 2);
    if (json_len > 0)
        memcpy(buf + sizeof(struct vfio_user_version), json, json_len);
    return sizeof(struct vfio_user_version) + json_len;
}

/* Put @len bytes of @obj at the start of @buf; return @len. */
static size_t
put(uint8_t *buf, const void *obj, size_t len)
{
    memcpy(buf, obj, len);
    return len;
}

size_t
kit_good_payload(const struct kit_good *g, uint16_t cmd,
                 uint8_t buf[KIT_GOOD_MAX])
{
    const struct vfio_user_dma_map map = {
        .argsz = sizeof(map),
        .flags = VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE,
        .addr = g->dma_addr,
        .size = 0x1000,
    };
    const struct vfio_user_dma_unmap unmap = {
        .argsz = sizeof(unmap),
        .flags = VFIO_USER_DMA_UNMAP_FLAG_ALL,
    };
    const struct vfio_user_irq_set irq = {
        .argsz = sizeof(irq),
        .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
        .index = g->irq_index,
        .count = 1,
    };
    const struct vfio_user_region_access rd = { g->read_offset, g->read_region,
                                                g->read_count };
    const struct vfio_user_region_access wr = { g->write_offset,
                                                g->write_region,
                                                g->write_count };
    const struct vfio_user_dma_access dma = { g->dma_addr, 4 };
    struct vfio_user_write_multi_entry e = {
        .offset = g->write_offset,
        .region = g->write_region,
        .count = g->write_count,
    };
    const uint64_t one = 1;
    uint32_t argsz = 0;
    size_t n;

    memset(buf, 0, KIT_GOOD_MAX);
    switch (cmd) {
    case VFIO_USER_VERSION:
        return sizeof(struct vfio_user_version);
    case VFIO_USER_DMA_MAP:
        return put(buf, &map, sizeof(map));
    case VFIO_USER_DMA_UNMAP:
        return put(buf, &unmap, sizeof(unmap));
    case VFIO_USER_DEVICE_SET_IRQS:
        return put(buf, &irq, sizeof(irq));
    case VFIO_USER_REGION_READ:
        return put(buf, &rd, sizeof(rd));
    case VFIO_USER_REGION_WRITE:
        n = put(buf, &wr, sizeof(wr));
        memcpy(buf + n, g->write_data, g->write_count);
        return n + g->write_count;
    case VFIO_USER_DMA_READ:
        return put(buf, &dma, sizeof(dma));
    case VFIO_USER_DMA_WRITE:
        return put(buf, &dma, sizeof(dma)) + 4;
    case VFIO_USER_REGION_WRITE_MULTI:
        memcpy(e.data, g->write_data, sizeof(e.data));
        n = put(buf, &one, sizeof(one));
        return n + put(buf + n, &e, sizeof(e));
    case VFIO_USER_DEVICE_RESET:
        return 0;
    case VFIO_USER_DEVICE_FEATURE: {
        /* Probe GET of feature 0 (the kernel's PCI_VF_TOKEN), which
         * vfio-user does not define: well formed, and ENOTSUP from any
         * server, with migration or without. */
        struct vfio_user_device_feature f = {
            .argsz = sizeof(f),
            .flags =
                VFIO_USER_DEVICE_FEATURE_PROBE | VFIO_USER_DEVICE_FEATURE_GET,
        };

        return put(buf, &f, sizeof(f));
    }
    default:
        break;
    }
    /* The queries and migration data: argsz (flags 0) alone. */
    for (n = 0; n < KIT_NCMDS; n++) {
        if (kit_cmds[n].cmd == cmd && kit_cmds[n].has_argsz) {
            argsz = (uint32_t)kit_cmds[n].fixed;
            memcpy(buf, &argsz, sizeof(argsz));
            return argsz;
        }
    }
    return 0;
}
