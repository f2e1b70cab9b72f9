/* Protocol facts the edge tests share: see kit_proto.h. */
#include <errno.h>
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
