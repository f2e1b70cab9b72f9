/*
 * libFuzzer target: umdev_wire_decode() on arbitrary bytes. The first byte
 * is how many fds "arrived" (mod 17), the rest is the message. A message
 * that decodes has every field and tail byte read, so a bounds mistake
 * shows under ASan, and the decoder's documented promises checked, so a
 * logic mistake aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "umdev/wire.h"
#include "umdev/wire_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* <linux/vfio.h> VFIO_IRQ_SET_DATA_* and VFIO_REGION_INFO_FLAG_CAPS. */
#define IRQ_DATA_NONE (1u << 0)
#define IRQ_DATA_BOOL (1u << 1)
#define IRQ_DATA_EVENTFD (1u << 2)

#define HDR UMDEV_WIRE_HDR_SIZE

/* Where the sums of touched bytes go, so the reads are not optimised out. */
static volatile uint8_t sink;

static uint8_t
sum_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t s = 0;
    size_t i;

    for (i = 0; i < n; i++)
        s += b[i];
    return s;
}

struct walk {
    const uint8_t *base;
    size_t len;
    size_t calls;
    uint8_t sum;
};

/* Read all a capability may read, and check the walk's bounds. */
static int
touch_cap(const struct vfio_user_cap_header *h, const uint8_t *cap,
          size_t avail, void *opaque)
{
    struct walk *w = opaque;
    size_t off = (size_t)(cap - w->base);

    FUZZ_CHECK(off >= sizeof(struct vfio_user_region_info));
    FUZZ_CHECK((off & 3) == 0);
    FUZZ_CHECK(avail >= sizeof(*h) && off + avail <= w->len);
    /* Forward-only: each header starts past the previous one. */
    FUZZ_CHECK(++w->calls <= w->len / sizeof(*h));
    w->sum += sum_bytes(h, sizeof(*h));
    w->sum += sum_bytes(cap, avail);
    return 0;
}

static uint8_t
touch_region_info_reply(const struct umdev_wire_msg *m)
{
    struct walk w = { m->payload, m->payload_len, 0, 0 };
    int rc;

    rc = umdev_wire_region_caps_walk(m->payload, m->payload_len, touch_cap,
                                     &w);
    FUZZ_CHECK(rc == 0 || rc == -EINVAL);
    return w.sum;
}

static uint8_t
touch_io_fds_reply(const struct umdev_wire_msg *m)
{
    const struct vfio_user_region_io_fds_request *r = &m->u.io_fds;
    struct vfio_user_sub_region_ioeventfd sub;
    uint8_t sum = 0;
    size_t i;

    /* A complete reply (argsz within the message) holds count entries. */
    if (r->argsz > m->payload_len)
        return 0;
    FUZZ_CHECK((uint64_t)r->count * sizeof(sub) <= m->data_len);
    for (i = 0; i < r->count; i++) {
        memcpy(&sub, m->data + i * sizeof(sub), sizeof(sub));
        sum += sum_bytes(&sub, sizeof(sub));
    }
    return sum;
}

static uint8_t
touch_write_multi(const struct umdev_wire_msg *m)
{
    struct vfio_user_write_multi_entry e;
    uint8_t sum = 0;
    size_t i;

    FUZZ_CHECK(m->u.write_multi.count >= 1 &&
               m->u.write_multi.count <= UMDEV_WIRE_MAX_WRITE_MULTI);
    FUZZ_CHECK(m->data_len == m->u.write_multi.count * sizeof(e));
    for (i = 0; i < m->u.write_multi.count; i++) {
        umdev_wire_write_multi_entry(m, i, &e);
        FUZZ_CHECK(e.count >= 1 && e.count <= sizeof(e.data));
        FUZZ_CHECK(e.offset + e.count > e.offset);
        sum += sum_bytes(e.data, e.count);
    }
    return sum;
}

/* Promises about data-transfer counts (spec "Read and Write Operations"). */
static void
check_transfer(const struct umdev_wire_msg *m,
               const struct umdev_wire_limits *lim, uint64_t count,
               bool with_data)
{
    FUZZ_CHECK(count <= lim->max_data_xfer_size);
    FUZZ_CHECK(m->data_len == (with_data ? count : 0));
}

/* DEVICE_FEATURE: what the decoder promises for the features it knows. */
static uint8_t
touch_feature(const struct umdev_wire_msg *m,
              const struct umdev_wire_limits *lim)
{
    const typeof(m->u.feature) *f = &m->u.feature;
    uint8_t sum = 0;
    uint64_t bitmap;
    size_t i;

    FUZZ_CHECK(f->probe || f->get != f->set);
    FUZZ_CHECK(f->index == (f->hdr.flags & VFIO_USER_DEVICE_FEATURE_MASK));
    if (f->probe)
        return 0;
    if (f->set && f->index == VFIO_USER_FEATURE_DMA_LOGGING_START) {
        FUZZ_CHECK(f->d.log_start.num_ranges <= UMDEV_WIRE_MAX_LOG_RANGES);
        FUZZ_CHECK(f->tail_len ==
                   f->d.log_start.num_ranges *
                       sizeof(struct vfio_user_dma_logging_range));
        for (i = 0; i < f->d.log_start.num_ranges; i++) {
            struct vfio_user_dma_logging_range r;

            umdev_wire_log_range(m, i, &r);
            FUZZ_CHECK(r.length != 0 && r.iova + r.length > r.iova);
            sum += (uint8_t)r.iova;
        }
    }
    if (f->get && f->index == VFIO_USER_FEATURE_DMA_LOGGING_REPORT) {
        bitmap = umdev_wire_log_bitmap_size(f->d.log_report.length,
                                            f->d.log_report.page_size);
        FUZZ_CHECK(bitmap != 0 && bitmap <= lim->max_data_xfer_size);
        FUZZ_CHECK(f->tail_len == (m->is_reply ? bitmap : 0));
        if (!m->is_reply)
            FUZZ_CHECK(f->hdr.argsz >= 8 + 24 + bitmap);
        sum += sum_bytes(f->tail, f->tail_len);
    }
    return sum;
}

static uint8_t
check_command(const struct umdev_wire_msg *m, size_t nfds,
              const struct umdev_wire_limits *lim)
{
    const struct vfio_user_irq_set *s = &m->u.irq_set;
    uint32_t data_type = s->flags & (IRQ_DATA_NONE | IRQ_DATA_BOOL |
                                     IRQ_DATA_EVENTFD);

    switch (m->hdr.cmd) {
    case VFIO_USER_DMA_MAP:
        FUZZ_CHECK(nfds <= 1);
        FUZZ_CHECK(m->u.dma_map.size != 0);
        FUZZ_CHECK(m->u.dma_map.addr + m->u.dma_map.size > m->u.dma_map.addr);
        return 0;
    case VFIO_USER_DEVICE_SET_IRQS:
        if (data_type == IRQ_DATA_EVENTFD)
            FUZZ_CHECK(nfds == 0 || nfds == s->count);
        else
            FUZZ_CHECK(nfds == 0);
        if (data_type == IRQ_DATA_BOOL)
            FUZZ_CHECK(m->data_len == s->count);
        return 0;
    default:
        break;
    }
    FUZZ_CHECK(nfds == 0);
    switch (m->hdr.cmd) {
    case VFIO_USER_REGION_READ:
    case VFIO_USER_REGION_WRITE:
        FUZZ_CHECK(m->u.region_access.count != 0);
        check_transfer(m, lim, m->u.region_access.count,
                       m->hdr.cmd == VFIO_USER_REGION_WRITE);
        break;
    case VFIO_USER_DMA_READ:
    case VFIO_USER_DMA_WRITE:
        FUZZ_CHECK(m->u.dma_access.count != 0);
        check_transfer(m, lim, m->u.dma_access.count,
                       m->hdr.cmd == VFIO_USER_DMA_WRITE);
        break;
    case VFIO_USER_MIG_DATA_READ:
    case VFIO_USER_MIG_DATA_WRITE:
        check_transfer(m, lim, m->u.mig.size,
                       m->hdr.cmd == VFIO_USER_MIG_DATA_WRITE);
        break;
    case VFIO_USER_REGION_WRITE_MULTI:
        return touch_write_multi(m);
    case VFIO_USER_DEVICE_FEATURE:
        return touch_feature(m, lim);
    default:
        break;
    }
    return 0;
}

static uint8_t
check_reply(const struct umdev_wire_msg *m, size_t nfds,
            const struct umdev_wire_limits *lim)
{
    if (m->hdr.flags & VFIO_USER_F_ERROR) {
        FUZZ_CHECK(nfds == 0);
        return 0;
    }
    switch (m->hdr.cmd) {
    case VFIO_USER_VERSION:
        return 0;
    case VFIO_USER_DEVICE_GET_REGION_INFO:
        return touch_region_info_reply(m);
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
        return touch_io_fds_reply(m);
    default:
        break;
    }
    FUZZ_CHECK(nfds == 0);
    switch (m->hdr.cmd) {
    case VFIO_USER_REGION_READ:
        check_transfer(m, lim, m->u.region_access.count, true);
        break;
    case VFIO_USER_DMA_READ:
        check_transfer(m, lim, m->u.dma_access.count, true);
        break;
    case VFIO_USER_MIG_DATA_READ:
        check_transfer(m, lim, m->u.mig.size, true);
        break;
    case VFIO_USER_DEVICE_FEATURE:
        return touch_feature(m, lim);
    case VFIO_USER_DMA_UNMAP:
        if (m->u.dma_unmap.unmap.flags &
            VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP)
            FUZZ_CHECK(m->data_len == m->u.dma_unmap.bitmap.size);
        break;
    default:
        break;
    }
    return 0;
}

/* Laying the payload out again gives back the same bytes, and decodes. */
static void
check_reencode(const uint8_t *buf, size_t len, size_t nfds,
               const struct umdev_wire_limits *lim,
               const struct umdev_wire_msg *m)
{
    struct vfio_user_header err;
    struct umdev_wire_msg again;
    uint8_t *out = malloc(len);
    ssize_t n;

    if (out == NULL)
        return;
    n = umdev_wire_encode(out, len, m->hdr.msg_id, m->hdr.cmd, m->hdr.flags,
                          m->payload, m->payload_len, NULL, 0);
    FUZZ_CHECK(n == (ssize_t)len);
    memcpy(out + 12, &m->hdr.error, sizeof(m->hdr.error));
    FUZZ_CHECK(memcmp(out, buf, len) == 0);
    FUZZ_CHECK(umdev_wire_decode(out, len, nfds, lim, &again) == 0);
    FUZZ_CHECK(again.data_len == m->data_len);
    free(out);
    /* Any command that decodes can be answered with an error reply. */
    if (!m->is_reply) {
        umdev_wire_encode_error(&err, &m->hdr, EINVAL);
        FUZZ_CHECK(umdev_wire_decode(&err, sizeof(err), 0, NULL, &again) == 0);
        FUZZ_CHECK(again.hdr.error == EINVAL);
    }
}

static uint8_t
check_decoded(const uint8_t *buf, size_t len, size_t nfds,
              const struct umdev_wire_limits *lim,
              const struct umdev_wire_msg *m)
{
    uint8_t sum = 0;

    FUZZ_CHECK(len >= HDR && m->hdr.msg_size == len);
    FUZZ_CHECK(m->payload == buf + HDR && m->payload_len == len - HDR);
    FUZZ_CHECK(m->data_len <= m->payload_len);
    if (m->data_len != 0)
        FUZZ_CHECK(m->data >= m->payload &&
                   m->data + m->data_len <= m->payload + m->payload_len);
    FUZZ_CHECK(nfds <= lim->max_msg_fds);
    FUZZ_CHECK(m->is_reply == ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) ==
                               VFIO_USER_F_TYPE_REPLY));
    FUZZ_CHECK(strcmp(umdev_wire_cmd_name(m->hdr.cmd), "UNKNOWN") != 0);

    sum += sum_bytes(&m->hdr, sizeof(m->hdr));
    sum += sum_bytes(&m->u, sizeof(m->u));
    sum += sum_bytes(m->payload, m->payload_len);
    if (m->data_len != 0)
        sum += sum_bytes(m->data, m->data_len);
    if (m->hdr.cmd == VFIO_USER_VERSION && m->u.version.json != NULL) {
        size_t n = strlen(m->u.version.json);

        FUZZ_CHECK((const uint8_t *)m->u.version.json == m->data);
        FUZZ_CHECK(n < m->data_len);
        sum += (uint8_t)n;
    }
    if (m->is_reply)
        sum += check_reply(m, nfds, lim);
    else
        sum += check_command(m, nfds, lim);
    check_reencode(buf, len, nfds, lim, m);
    return sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct umdev_wire_limits defaults = {
        .max_data_xfer_size = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER,
        .max_msg_fds = UMDEV_WIRE_MAX_MSG_FDS,
    };
    static const struct umdev_wire_limits small = {
        .max_data_xfer_size = 4096,
        .max_msg_fds = 4,
    };
    struct umdev_wire_msg m;
    uint8_t *copy;
    size_t nfds;
    int pass, rc;

    if (size < 1)
        return 0;
    nfds = data[0] % 17;
    data++;
    size--;
    /* An exact-size copy, so reading one byte past the message is caught. */
    copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    for (pass = 0; pass < 2; pass++) {
        const struct umdev_wire_limits *lim = pass ? &small : NULL;

        rc = umdev_wire_decode(copy, size, nfds, lim, &m);
        FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EINVAL || rc == -E2BIG ||
                   rc == -ENOSYS || rc == -EBADF);
        if (rc != 0)
            continue;
        sink += check_decoded(copy, size, nfds, lim ? lim : &defaults, &m);
    }
    if (size >= HDR) {
        struct vfio_user_header h;

        rc = umdev_wire_decode_header(copy, &h);
        FUZZ_CHECK(rc == 0 || rc == -EPROTO);
    }
    free(copy);
    return 0;
}
