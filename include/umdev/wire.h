/*
 * vfio-user wire format: message layouts, limits, and pure
 * encode/decode/validate functions (no I/O). Layouts follow
 * docs/interop/vfio-user.rst in qemu/qemu ("the spec") and <linux/vfio.h>;
 * all fields are host-endian, as the spec says for this protocol revision.
 */
#ifndef UMDEV_WIRE_H
#define UMDEV_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Spec "Commands". 14 was VFIO_USER_DIRTY_PAGES and is retired. */
enum umdev_wire_cmd {
    VFIO_USER_VERSION = 1,
    VFIO_USER_DMA_MAP = 2,
    VFIO_USER_DMA_UNMAP = 3,
    VFIO_USER_DEVICE_GET_INFO = 4,
    VFIO_USER_DEVICE_GET_REGION_INFO = 5,
    VFIO_USER_DEVICE_GET_REGION_IO_FDS = 6,
    VFIO_USER_DEVICE_GET_IRQ_INFO = 7,
    VFIO_USER_DEVICE_SET_IRQS = 8,
    VFIO_USER_REGION_READ = 9,
    VFIO_USER_REGION_WRITE = 10,
    VFIO_USER_DMA_READ = 11,
    VFIO_USER_DMA_WRITE = 12,
    VFIO_USER_DEVICE_RESET = 13,
    VFIO_USER_REGION_WRITE_MULTI = 15,
    VFIO_USER_DEVICE_FEATURE = 16,
    VFIO_USER_MIG_DATA_READ = 17,
    VFIO_USER_MIG_DATA_WRITE = 18,
    VFIO_USER_MAX_CMD = 19,
};

/* Spec "Header": flags word. */
#define VFIO_USER_F_TYPE_MASK 0xfu
#define VFIO_USER_F_TYPE_COMMAND 0x0u
#define VFIO_USER_F_TYPE_REPLY 0x1u
#define VFIO_USER_F_NO_REPLY (1u << 4)
#define VFIO_USER_F_ERROR (1u << 5)

struct vfio_user_header {
    uint16_t msg_id;
    uint16_t cmd;
    uint32_t msg_size; /* whole message, header included */
    uint32_t flags;
    uint32_t error; /* errno in an error reply; reserved in commands */
};

/*
 * Limits. Each has a documented default in docs/PROTOCOL.md; a connection
 * may negotiate lower values but never higher ones.
 */
#define UMDEV_WIRE_HDR_SIZE 16u
/* Spec default when the peer names none. */
#define UMDEV_WIRE_DEFAULT_MAX_DATA_XFER (1024u * 1024u)
#define UMDEV_WIRE_DEFAULT_MAX_DMA_MAPS 65535u
#define UMDEV_WIRE_DEFAULT_MAX_MSG_FDS 1u
/* What this implementation receives at most in one message. */
#define UMDEV_WIRE_MAX_MSG_FDS 16u
/* A VERSION message's JSON is small; anything past this is hostile. */
#define UMDEV_WIRE_MAX_VERSION_JSON 4096u
/* REGION_WRITE_MULTI entries per message (QEMU sends at most 200). */
#define UMDEV_WIRE_MAX_WRITE_MULTI 256u
/* Region capability chain bytes and sparse-mmap areas we produce/accept. */
#define UMDEV_WIRE_MAX_SPARSE_AREAS 64u
/* Fixed part of any message other than data transfers; 64 KiB is ample. */
#define UMDEV_WIRE_MAX_CONTROL_PAYLOAD (64u * 1024u)

/* Spec "VFIO_USER_VERSION". */
struct vfio_user_version {
    uint16_t major;
    uint16_t minor;
    /* followed by optional NUL-terminated JSON */
};

#define VFIO_USER_DMA_MAP_FLAG_READ (1u << 0)
#define VFIO_USER_DMA_MAP_FLAG_WRITE (1u << 1)

struct vfio_user_dma_map {
    uint32_t argsz;
    uint32_t flags;
    uint64_t offset; /* into the fd sent with the message */
    uint64_t addr;
    uint64_t size;
};

/* <linux/vfio.h> VFIO_DMA_UNMAP_FLAG_* values, reused by vfio-user. */
#define VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (1u << 0)
#define VFIO_USER_DMA_UNMAP_FLAG_ALL (1u << 1)

struct vfio_user_bitmap {
    uint64_t pgsize;
    uint64_t size; /* bytes of bitmap data that follow */
};

struct vfio_user_dma_unmap {
    uint32_t argsz;
    uint32_t flags;
    uint64_t addr;
    uint64_t size;
    /* GET_DIRTY_BITMAP: struct vfio_user_bitmap, then in the reply the data */
};

struct vfio_user_device_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t num_regions;
    uint32_t num_irqs;
};

struct vfio_user_region_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t cap_offset; /* from the start of this struct */
    uint64_t size;
    uint64_t offset;
};

struct vfio_user_cap_header {
    uint16_t id;
    uint16_t version;
    uint32_t next;
};

#define VFIO_USER_REGION_CAP_SPARSE_MMAP 1
#define VFIO_USER_REGION_CAP_TYPE 2

struct vfio_user_sparse_area {
    uint64_t offset;
    uint64_t size;
};

struct vfio_user_cap_sparse_mmap {
    struct vfio_user_cap_header header;
    uint32_t nr_areas;
    uint32_t reserved;
    /* struct vfio_user_sparse_area areas[nr_areas] */
};

struct vfio_user_cap_type {
    struct vfio_user_cap_header header;
    uint32_t type;
    uint32_t subtype;
};

struct vfio_user_region_io_fds_request {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
};

#define VFIO_USER_IO_FD_TYPE_IOEVENTFD 0
#define VFIO_USER_IO_FD_TYPE_IOREGIONFD 1

struct vfio_user_sub_region_ioeventfd {
    uint64_t offset;
    uint64_t size;
    uint32_t fd_index;
    uint32_t type;
    uint32_t flags;
    uint32_t padding;
    uint64_t datamatch;
};

struct vfio_user_irq_info {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
};

struct vfio_user_irq_set {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t start;
    uint32_t count;
    /* DATA_BOOL: uint8_t data[count] */
};

struct vfio_user_region_access {
    uint64_t offset;
    uint32_t region;
    uint32_t count;
    /* data */
};

struct vfio_user_dma_access {
    uint64_t addr;
    uint64_t count;
    /* data */
};

struct vfio_user_write_multi_entry {
    uint64_t offset;
    uint32_t region;
    uint32_t count; /* 1..8 */
    uint8_t data[8];
};

struct vfio_user_device_feature {
    uint32_t argsz;
    uint32_t flags;
    /* data */
};

struct vfio_user_mig_data {
    uint32_t argsz;
    uint32_t size;
    /* data */
};

/** Name of a command for logs and tools ("REGION_READ"), or "UNKNOWN". */
const char *umdev_wire_cmd_name(uint16_t cmd);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_WIRE_H */
