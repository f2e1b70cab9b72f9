/*
 * The vfio-user codec (lib/wire): decode and validate a message, lay one
 * out, error replies, the region-info capability walk. Every byte from a
 * socket passes through it first, in lib/conn, lib/dev and lib/client.
 * Not exported from libumdev.so: the protocol's layouts are public
 * (umdev/wire.h), how lib parses them is not. Tests and fuzzers reach it
 * through the static library (umdev_static), which puts lib/include on
 * their include path.
 */
#ifndef UMDEV_WIRE_CODEC_H
#define UMDEV_WIRE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "umdev/wire.h"

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
        struct {
            /* First, so the header reads as the spec's structure. */
            struct vfio_user_device_feature hdr;
            uint32_t index; /* flags & VFIO_USER_DEVICE_FEATURE_MASK */
            bool get, set, probe;
            /* By index, valid for a GET/SET (not a probe) the decoder
             * knows (a request's data, a reply's data). */
            union {
                struct vfio_user_feature_migration migration;
                struct vfio_user_feature_mig_state mig_state;
                struct vfio_user_dma_logging_control log_start;
                struct vfio_user_dma_logging_report log_report;
                struct umdev_wire_precopy_info precopy;
            } d;
            /* DMA_LOGGING_START: the ranges (umdev_wire_log_range());
             * DMA_LOGGING_REPORT reply: the bitmap. */
            const uint8_t *tail;
            size_t tail_len;
        } feature;
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
 * umdev_wire_log_range() - fetch range @i of a decoded DMA_LOGGING_START
 * SET. @i must be below msg->u.feature.d.log_start.num_ranges (the decoder
 * has checked they all lie in the message, none empty, none wrapping).
 */
void umdev_wire_log_range(const struct umdev_wire_msg *msg, size_t i,
                          struct vfio_user_dma_logging_range *out);

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

#endif /* UMDEV_WIRE_CODEC_H */
