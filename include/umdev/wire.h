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

/*
 * DEVICE_FEATURE flags (spec "VFIO_USER_DEVICE_FEATURE", the values of
 * <linux/vfio.h> VFIO_DEVICE_FEATURE_*): a 16-bit feature index and what
 * to do with it. GET and SET exclude each other except with PROBE.
 */
#define VFIO_USER_DEVICE_FEATURE_MASK 0xffffu
#define VFIO_USER_DEVICE_FEATURE_GET (1u << 16)
#define VFIO_USER_DEVICE_FEATURE_SET (1u << 17)
#define VFIO_USER_DEVICE_FEATURE_PROBE (1u << 18)

/* Feature indices vfio-user defines. */
#define VFIO_USER_FEATURE_MIGRATION 1u
#define VFIO_USER_FEATURE_MIG_DEVICE_STATE 2u
#define VFIO_USER_FEATURE_DMA_LOGGING_START 6u
#define VFIO_USER_FEATURE_DMA_LOGGING_STOP 7u
#define VFIO_USER_FEATURE_DMA_LOGGING_REPORT 8u
/*
 * umdev's extension (docs/PROTOCOL.md "Pre-copy sizes"): GET returns
 * struct umdev_wire_precopy_info in PRE_COPY, as the kernel's
 * VFIO_MIG_GET_PRECOPY_INFO does. Answered only on a connection whose
 * client proposed UMDEV_WIRE_CAP_PRECOPY_INFO in VERSION; for any other
 * it is an unknown feature like every index the spec does not define.
 */
#define UMDEV_WIRE_FEATURE_PRECOPY_INFO 0xff01u
#define UMDEV_WIRE_CAP_PRECOPY_INFO "umdev_precopy_info"

/* VFIO_USER_FEATURE_MIGRATION data (GET). */
#define VFIO_USER_MIGRATION_STOP_COPY (1u << 0)
#define VFIO_USER_MIGRATION_P2P (1u << 1)
#define VFIO_USER_MIGRATION_PRE_COPY (1u << 2)
struct vfio_user_feature_migration {
    uint64_t flags;
};

/* Migration states (<linux/vfio.h> enum vfio_device_mig_state). */
#define VFIO_USER_DEVICE_STATE_ERROR 0u
#define VFIO_USER_DEVICE_STATE_STOP 1u
#define VFIO_USER_DEVICE_STATE_RUNNING 2u
#define VFIO_USER_DEVICE_STATE_STOP_COPY 3u
#define VFIO_USER_DEVICE_STATE_RESUMING 4u
#define VFIO_USER_DEVICE_STATE_RUNNING_P2P 5u /* not used in vfio-user */
#define VFIO_USER_DEVICE_STATE_PRE_COPY 6u
#define VFIO_USER_DEVICE_STATE_PRE_COPY_P2P 7u /* not used in vfio-user */
#define VFIO_USER_DEVICE_STATE_COUNT 8u

/* VFIO_USER_FEATURE_MIG_DEVICE_STATE data (SET request, GET reply). */
struct vfio_user_feature_mig_state {
    uint32_t device_state;
    uint32_t data_fd; /* unused in vfio-user: MIG_DATA_READ/WRITE instead */
};

/* VFIO_USER_FEATURE_DMA_LOGGING_START data: ranges follow. */
struct vfio_user_dma_logging_control {
    uint64_t page_size;
    uint32_t num_ranges; /* 0: log every write */
    uint32_t reserved;
};
struct vfio_user_dma_logging_range {
    uint64_t iova;
    uint64_t length;
};
/* VFIO_USER_FEATURE_DMA_LOGGING_REPORT data; the reply adds the bitmap,
 * an array of uint64_t with one bit per page_size of the range. */
struct vfio_user_dma_logging_report {
    uint64_t iova;
    uint64_t length;
    uint64_t page_size;
};

/* UMDEV_WIRE_FEATURE_PRECOPY_INFO data (GET reply). */
struct umdev_wire_precopy_info {
    uint64_t initial_bytes; /* PRE_COPY stream bytes not read yet */
    uint64_t dirty_bytes;   /* device's estimate of what changed since */
};

/* DMA_LOGGING_START ranges accepted in one message (the kernel promises
 * at least a page of them, 256). */
#define UMDEV_WIRE_MAX_LOG_RANGES 256u

struct vfio_user_mig_data {
    uint32_t argsz;
    uint32_t size;
    /* data */
};

/**
 * umdev_wire_log_bitmap_size() - bytes of the DMA_LOGGING_REPORT bitmap
 * for @length bytes at @page_size (a power of two): whole uint64_t words.
 * Return: the size, or 0 if @length or @page_size is 0.
 */
uint64_t umdev_wire_log_bitmap_size(uint64_t length, uint64_t page_size);

/** Name of a command for logs and tools ("REGION_READ"), or "UNKNOWN". */
const char *umdev_wire_cmd_name(uint16_t cmd);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_WIRE_H */
