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

/* What decode learns about a message; pointers borrow the caller's buffer. */
struct umdev_wire_msg {
    struct vfio_user_header hdr;
    bool is_reply;
    const uint8_t *payload; /* borrowed: right after the header */
    size_t payload_len;
    /* The variable tail of the message (data, JSON, bools, entries). */
    const uint8_t *data;
    size_t data_len;
    union {
        struct {
            uint16_t major, minor;
            const char *json; /* NUL-terminated within the message, or NULL */
        } version;
        struct vfio_user_dma_map dma_map;
        struct {
            struct vfio_user_dma_unmap unmap;
            struct vfio_user_bitmap bitmap; /* valid with GET_DIRTY_BITMAP */
        } dma_unmap;
        struct vfio_user_device_info device_info;
        struct vfio_user_region_info region_info;
        struct vfio_user_region_io_fds_request io_fds;
        struct vfio_user_irq_info irq_info;
        struct vfio_user_irq_set irq_set;
        struct vfio_user_region_access region_access;
        struct vfio_user_dma_access dma_access;
        struct {
            uint64_t count;
        } write_multi;
        struct vfio_user_device_feature feature;
        struct vfio_user_mig_data mig;
    } u;
};

/* Limits a decoder checks beyond the layout itself. */
struct umdev_wire_limits {
    uint32_t max_data_xfer_size; /* REGION/DMA/MIG data bytes */
    uint32_t max_msg_fds;
};

/**
 * umdev_wire_decode_header() - validate the fixed header.
 * @buf: at least UMDEV_WIRE_HDR_SIZE bytes.
 * @hdr: filled on success.
 *
 * Return: 0; -EPROTO if the header is impossible (size below the header,
 * unknown type bits, error flag on a command). A bad header is a bad stream.
 */
int umdev_wire_decode_header(const void *buf, struct vfio_user_header *hdr);

/**
 * umdev_wire_decode() - validate a whole message and describe its fields.
 * @buf: the message, header included; must stay alive while @msg is used.
 * @len: bytes in @buf; must equal the header's msg_size.
 * @nfds: file descriptors that arrived with it.
 * @lim: limits to apply; NULL means the spec defaults.
 * @msg: filled on success.
 *
 * Validates every size, count, offset and argsz against @len before use,
 * for commands in the direction the spec allows and for replies. An error
 * reply is valid with any payload (the spec says it carries only the
 * header; extra bytes are ignored).
 *
 * Return: 0; -EPROTO bad header; -EINVAL malformed payload; -E2BIG data
 * over the limit; -ENOSYS unknown command; -EBADF fds where the message
 * takes none or more than it takes.
 */
int umdev_wire_decode(const void *buf, size_t len, size_t nfds,
                      const struct umdev_wire_limits *lim,
                      struct umdev_wire_msg *msg);

/**
 * umdev_wire_write_multi_entry() - fetch entry @i of a decoded
 * REGION_WRITE_MULTI. @i must be below msg->u.write_multi.count (the decoder
 * has checked that all entries lie inside the message and each count is
 * 1..8).
 */
void umdev_wire_write_multi_entry(const struct umdev_wire_msg *msg, size_t i,
                                  struct vfio_user_write_multi_entry *out);

/**
 * umdev_wire_encode() - lay out a message: header, fixed part, data.
 * @buf: output, @cap bytes.
 * @fixed/@fixed_len: the command's fixed structure (may be 0 bytes).
 * @data/@data_len: the variable tail (may be NULL/0).
 *
 * Return: the message size; -E2BIG if @cap is too small or the size does
 * not fit the 32-bit size field.
 */
ssize_t umdev_wire_encode(void *buf, size_t cap, uint16_t msg_id,
                          uint16_t cmd, uint32_t flags, const void *fixed,
                          size_t fixed_len, const void *data,
                          size_t data_len);

/** Size of an encoded message with these parts, or 0 on overflow. */
size_t umdev_wire_size(size_t fixed_len, size_t data_len);

/**
 * umdev_wire_encode_error() - an error reply to @req: header only, the
 * Error flag set and @err (a positive errno) in the error field.
 */
void umdev_wire_encode_error(struct vfio_user_header *out,
                             const struct vfio_user_header *req, int err);

/** Name of a command for logs and tools ("REGION_READ"), or "UNKNOWN". */
const char *umdev_wire_cmd_name(uint16_t cmd);

/**
 * umdev_wire_region_caps_walk() - iterate the capability chain of a
 * GET_REGION_INFO reply.
 * @info: the reply payload (struct vfio_user_region_info first).
 * @len: its length.
 * @cb: called for each capability with its offset and length available.
 *
 * Validates every next pointer (inside @len, forward only, aligned) so a
 * hostile server cannot make a client loop or read out of bounds.
 *
 * Return: 0, a negative errno from @cb, or -EINVAL on a bad chain.
 */
int umdev_wire_region_caps_walk(const void *info, size_t len,
                                int (*cb)(const struct vfio_user_cap_header *,
                                          const uint8_t *cap, size_t avail,
                                          void *opaque),
                                void *opaque);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_WIRE_H */
