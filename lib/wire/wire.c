/*
 * vfio-user message validation and layout. Every byte read from a socket
 * passes through umdev_wire_decode() before anything else looks at it, so
 * each length, count and argsz is checked here against the message size.
 */
#include <errno.h>
#include <string.h>

#include "umdev/wire.h"
#include "umdev/wire_codec.h"

_Static_assert(sizeof(struct vfio_user_header) == 16, "header");
_Static_assert(sizeof(struct vfio_user_dma_map) == 32, "dma_map");
_Static_assert(sizeof(struct vfio_user_dma_unmap) == 24, "dma_unmap");
_Static_assert(sizeof(struct vfio_user_bitmap) == 16, "bitmap");
_Static_assert(sizeof(struct vfio_user_device_info) == 16, "device_info");
_Static_assert(sizeof(struct vfio_user_region_info) == 32, "region_info");
_Static_assert(sizeof(struct vfio_user_cap_sparse_mmap) == 16, "sparse");
_Static_assert(sizeof(struct vfio_user_sparse_area) == 16, "area");
_Static_assert(sizeof(struct vfio_user_sub_region_ioeventfd) == 40, "iofd");
_Static_assert(sizeof(struct vfio_user_irq_info) == 16, "irq_info");
_Static_assert(sizeof(struct vfio_user_irq_set) == 20, "irq_set");
_Static_assert(sizeof(struct vfio_user_region_access) == 16, "region rw");
_Static_assert(sizeof(struct vfio_user_dma_access) == 16, "dma rw");
_Static_assert(sizeof(struct vfio_user_write_multi_entry) == 24, "multi");
_Static_assert(sizeof(struct vfio_user_device_feature) == 8, "feature");
_Static_assert(sizeof(struct vfio_user_mig_data) == 8, "mig");
_Static_assert(sizeof(struct vfio_user_feature_mig_state) == 8, "state");
_Static_assert(sizeof(struct vfio_user_dma_logging_control) == 16, "log");
_Static_assert(sizeof(struct vfio_user_dma_logging_range) == 16, "range");
_Static_assert(sizeof(struct vfio_user_dma_logging_report) == 24, "report");
_Static_assert(sizeof(struct umdev_wire_precopy_info) == 16, "precopy");

/* From <linux/vfio.h>; repeated so this header-only layer needs no kernel
 * headers and so the values are pinned by the static asserts' neighbours. */
#define IRQ_SET_DATA_NONE (1u << 0)
#define IRQ_SET_DATA_BOOL (1u << 1)
#define IRQ_SET_DATA_EVENTFD (1u << 2)
#define IRQ_SET_ACTION_MASK (1u << 3)
#define IRQ_SET_ACTION_UNMASK (1u << 4)
#define IRQ_SET_ACTION_TRIGGER (1u << 5)
#define IRQ_SET_DATA_MASK (IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL | \
                           IRQ_SET_DATA_EVENTFD)
#define IRQ_SET_ACTION_MASK_ALL (IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK | \
                                 IRQ_SET_ACTION_TRIGGER)

static const char *const cmd_names[VFIO_USER_MAX_CMD] = {
    [VFIO_USER_VERSION] = "VERSION",
    [VFIO_USER_DMA_MAP] = "DMA_MAP",
    [VFIO_USER_DMA_UNMAP] = "DMA_UNMAP",
    [VFIO_USER_DEVICE_GET_INFO] = "DEVICE_GET_INFO",
    [VFIO_USER_DEVICE_GET_REGION_INFO] = "DEVICE_GET_REGION_INFO",
    [VFIO_USER_DEVICE_GET_REGION_IO_FDS] = "DEVICE_GET_REGION_IO_FDS",
    [VFIO_USER_DEVICE_GET_IRQ_INFO] = "DEVICE_GET_IRQ_INFO",
    [VFIO_USER_DEVICE_SET_IRQS] = "DEVICE_SET_IRQS",
    [VFIO_USER_REGION_READ] = "REGION_READ",
    [VFIO_USER_REGION_WRITE] = "REGION_WRITE",
    [VFIO_USER_DMA_READ] = "DMA_READ",
    [VFIO_USER_DMA_WRITE] = "DMA_WRITE",
    [VFIO_USER_DEVICE_RESET] = "DEVICE_RESET",
    [VFIO_USER_REGION_WRITE_MULTI] = "REGION_WRITE_MULTI",
    [VFIO_USER_DEVICE_FEATURE] = "DEVICE_FEATURE",
    [VFIO_USER_MIG_DATA_READ] = "MIG_DATA_READ",
    [VFIO_USER_MIG_DATA_WRITE] = "MIG_DATA_WRITE",
};

const char *
umdev_wire_cmd_name(uint16_t cmd)
{
    if (cmd < VFIO_USER_MAX_CMD && cmd_names[cmd] != NULL)
        return cmd_names[cmd];
    return "UNKNOWN";
}

int
umdev_wire_decode_header(const void *buf, struct vfio_user_header *hdr)
{
    uint32_t type;

    memcpy(hdr, buf, sizeof(*hdr));
    if (hdr->msg_size < UMDEV_WIRE_HDR_SIZE)
        return -EPROTO;
    type = hdr->flags & VFIO_USER_F_TYPE_MASK;
    if (type != VFIO_USER_F_TYPE_COMMAND && type != VFIO_USER_F_TYPE_REPLY)
        return -EPROTO;
    if (type == VFIO_USER_F_TYPE_COMMAND && (hdr->flags & VFIO_USER_F_ERROR))
        return -EPROTO;
    /* Bits above Error are reserved; a sender that sets them speaks some
     * other protocol revision, and nothing after this header can be
     * trusted to be framed the way we think. */
    if (hdr->flags & ~(VFIO_USER_F_TYPE_MASK | VFIO_USER_F_NO_REPLY |
                       VFIO_USER_F_ERROR))
        return -EPROTO;
    return 0;
}

/* Copy a fixed structure out of the payload; callers have checked size. */
#define TAKE(msg, field) \
    memcpy(&(msg)->u.field, (msg)->payload, sizeof((msg)->u.field))

static int
set_tail(struct umdev_wire_msg *msg, size_t fixed)
{
    if (msg->payload_len < fixed)
        return -EINVAL;
    msg->data = msg->payload + fixed;
    msg->data_len = msg->payload_len - fixed;
    return 0;
}

static int
decode_version(struct umdev_wire_msg *msg)
{
    const char *json;
    size_t json_max;

    if (msg->payload_len < sizeof(struct vfio_user_version))
        return -EINVAL;
    memcpy(&msg->u.version.major, msg->payload, 2);
    memcpy(&msg->u.version.minor, msg->payload + 2, 2);
    msg->u.version.json = NULL;
    set_tail(msg, sizeof(struct vfio_user_version));
    if (msg->data_len == 0)
        return 0;
    if (msg->data_len > UMDEV_WIRE_MAX_VERSION_JSON)
        return -E2BIG;
    /* The JSON is the rest of the message, its NUL the last byte. */
    json = (const char *)msg->data;
    json_max = msg->data_len;
    if (json[json_max - 1] != '\0' || strlen(json) != json_max - 1)
        return -EINVAL;
    msg->u.version.json = json;
    return 0;
}

static int
decode_dma_map(struct umdev_wire_msg *msg, size_t nfds)
{
    const struct vfio_user_dma_map *m = &msg->u.dma_map;

    if (msg->payload_len < sizeof(*m))
        return -EINVAL;
    TAKE(msg, dma_map);
    if (m->argsz < sizeof(*m) || m->argsz > msg->payload_len)
        return -EINVAL;
    if (m->flags & ~(VFIO_USER_DMA_MAP_FLAG_READ |
                     VFIO_USER_DMA_MAP_FLAG_WRITE))
        return -EINVAL;
    if (m->size == 0 || m->addr + m->size < m->addr)
        return -EINVAL;
    if (nfds > 1)
        return -EBADF;
    /* A mapping offset must not wrap when the server adds the size. */
    if (nfds == 1 && m->offset + m->size < m->offset)
        return -EINVAL;
    return 0;
}

static int
decode_dma_unmap(struct umdev_wire_msg *msg, bool reply)
{
    const struct vfio_user_dma_unmap *u = &msg->u.dma_unmap.unmap;
    struct vfio_user_bitmap *b = &msg->u.dma_unmap.bitmap;

    memset(b, 0, sizeof(*b));
    if (reply && msg->payload_len == 0)
        return 0;
    if (msg->payload_len < sizeof(*u))
        return -EINVAL;
    memcpy(&msg->u.dma_unmap.unmap, msg->payload, sizeof(*u));
    if (u->flags & ~(VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP |
                     VFIO_USER_DMA_UNMAP_FLAG_ALL))
        return -EINVAL;
    if (u->argsz < sizeof(*u))
        return -EINVAL;
    if (u->flags & VFIO_USER_DMA_UNMAP_FLAG_ALL) {
        if (u->addr != 0 || u->size != 0 ||
            (u->flags & VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP))
            return -EINVAL;
        return set_tail(msg, sizeof(*u));
    }
    if (u->size == 0 || u->addr + u->size < u->addr)
        return -EINVAL;
    if (!(u->flags & VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP))
        return set_tail(msg, sizeof(*u));
    if (msg->payload_len < sizeof(*u) + sizeof(*b))
        return -EINVAL;
    memcpy(b, msg->payload + sizeof(*u), sizeof(*b));
    /* pgsize must be a power of two; the bitmap must cover the range. */
    if (b->pgsize == 0 || (b->pgsize & (b->pgsize - 1)) != 0)
        return -EINVAL;
    if (b->size > UINT32_MAX || u->argsz < sizeof(*u) + sizeof(*b))
        return -EINVAL;
    /* Whole pages, and a bitmap of exactly the size the range needs. */
    if (u->size % b->pgsize != 0 || u->addr % b->pgsize != 0)
        return -EINVAL;
    if (((u->size / b->pgsize) + 7) / 8 > b->size)
        return -EINVAL;
    if (((u->size / b->pgsize) + 7) / 8 < b->size)
        return -E2BIG;
    set_tail(msg, sizeof(*u) + sizeof(*b));
    if (reply && msg->data_len != b->size)
        return -EINVAL;
    return 0;
}

/* The request form shared by the info queries: argsz then index fields. */
static int
decode_argsz_struct(struct umdev_wire_msg *msg, size_t size, void *dst)
{
    uint32_t argsz;

    if (msg->payload_len < size)
        return -EINVAL;
    memcpy(dst, msg->payload, size);
    memcpy(&argsz, msg->payload, sizeof(argsz));
    if (argsz < size)
        return -EINVAL;
    return set_tail(msg, size);
}

static int
decode_irq_set(struct umdev_wire_msg *msg, size_t nfds)
{
    const struct vfio_user_irq_set *s = &msg->u.irq_set;
    uint32_t data, action;

    if (msg->payload_len < sizeof(*s))
        return -EINVAL;
    TAKE(msg, irq_set);
    if (s->argsz < sizeof(*s) || s->argsz > msg->payload_len)
        return -EINVAL;
    if (s->flags & ~(IRQ_SET_DATA_MASK | IRQ_SET_ACTION_MASK_ALL))
        return -EINVAL;
    data = s->flags & IRQ_SET_DATA_MASK;
    action = s->flags & IRQ_SET_ACTION_MASK_ALL;
    /* Exactly one data type and one action (spec: mutually exclusive). */
    if (data == 0 || (data & (data - 1)) != 0)
        return -EINVAL;
    if (action == 0 || (action & (action - 1)) != 0)
        return -EINVAL;
    if ((uint64_t)s->start + s->count > UINT32_MAX)
        return -EINVAL;
    set_tail(msg, sizeof(*s));
    switch (data) {
    case IRQ_SET_DATA_BOOL:
        if (msg->data_len < s->count || s->argsz < sizeof(*s) + s->count)
            return -EINVAL;
        msg->data_len = s->count;
        break;
    case IRQ_SET_DATA_EVENTFD:
        if (nfds != 0 && nfds != s->count)
            return -EBADF;
        return 0;
    default:
        break;
    }
    return nfds ? -EBADF : 0;
}

static int
decode_region_access(struct umdev_wire_msg *msg, bool with_data,
                     const struct umdev_wire_limits *lim)
{
    const struct vfio_user_region_access *a = &msg->u.region_access;

    if (msg->payload_len < sizeof(*a))
        return -EINVAL;
    TAKE(msg, region_access);
    if (a->count > lim->max_data_xfer_size)
        return -E2BIG;
    if (a->count == 0 || a->offset + a->count < a->offset)
        return -EINVAL;
    set_tail(msg, sizeof(*a));
    if (with_data ? msg->data_len != a->count : msg->data_len != 0)
        return -EINVAL;
    return 0;
}

static int
decode_dma_access(struct umdev_wire_msg *msg, bool with_data,
                  const struct umdev_wire_limits *lim)
{
    const struct vfio_user_dma_access *a = &msg->u.dma_access;

    if (msg->payload_len < sizeof(*a))
        return -EINVAL;
    TAKE(msg, dma_access);
    if (a->count > lim->max_data_xfer_size)
        return -E2BIG;
    if (a->count == 0 || a->addr + a->count < a->addr)
        return -EINVAL;
    set_tail(msg, sizeof(*a));
    if (with_data ? msg->data_len != a->count : msg->data_len != 0)
        return -EINVAL;
    return 0;
}

static int
decode_write_multi(struct umdev_wire_msg *msg)
{
    uint64_t n;
    size_t i;

    if (msg->payload_len < sizeof(n))
        return -EINVAL;
    memcpy(&n, msg->payload, sizeof(n));
    if (n == 0 || n > UMDEV_WIRE_MAX_WRITE_MULTI)
        return -EINVAL;
    set_tail(msg, sizeof(n));
    if (msg->data_len != n * sizeof(struct vfio_user_write_multi_entry))
        return -EINVAL;
    msg->u.write_multi.count = n;
    for (i = 0; i < n; i++) {
        struct vfio_user_write_multi_entry e;

        umdev_wire_write_multi_entry(msg, i, &e);
        if (e.count == 0 || e.count > sizeof(e.data) ||
            e.offset + e.count < e.offset)
            return -EINVAL;
    }
    return 0;
}

void
umdev_wire_write_multi_entry(const struct umdev_wire_msg *msg, size_t i,
                             struct vfio_user_write_multi_entry *out)
{
    memcpy(out, msg->data + i * sizeof(*out), sizeof(*out));
}

static int
decode_mig(struct umdev_wire_msg *msg, bool with_data,
           const struct umdev_wire_limits *lim)
{
    const struct vfio_user_mig_data *m = &msg->u.mig;

    if (msg->payload_len < sizeof(*m))
        return -EINVAL;
    TAKE(msg, mig);
    if (m->argsz < sizeof(*m))
        return -EINVAL;
    if (m->size > lim->max_data_xfer_size)
        return -E2BIG;
    set_tail(msg, sizeof(*m));
    if (with_data ? msg->data_len != m->size : msg->data_len != 0)
        return -EINVAL;
    return 0;
}

uint64_t
umdev_wire_log_bitmap_size(uint64_t length, uint64_t page_size)
{
    uint64_t pages;

    if (length == 0 || page_size == 0)
        return 0;
    /* Rounded up without overflow: length may be near 2^64. */
    pages = length / page_size + (length % page_size != 0);
    return (pages / 64 + (pages % 64 != 0)) * sizeof(uint64_t);
}

void
umdev_wire_log_range(const struct umdev_wire_msg *msg, size_t i,
                     struct vfio_user_dma_logging_range *out)
{
    memcpy(out, msg->u.feature.tail + i * sizeof(*out), sizeof(*out));
}

static bool
is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* DMA_LOGGING_START's ranges: exactly num_ranges of them, none empty or
 * wrapping. */
static int
decode_log_start(struct umdev_wire_msg *msg)
{
    struct vfio_user_dma_logging_control *c = &msg->u.feature.d.log_start;
    size_t i;

    if (msg->data_len < sizeof(*c))
        return -EINVAL;
    memcpy(c, msg->data, sizeof(*c));
    if (!is_pow2(c->page_size))
        return -EINVAL;
    if (c->num_ranges > UMDEV_WIRE_MAX_LOG_RANGES)
        return -E2BIG;
    msg->u.feature.tail = msg->data + sizeof(*c);
    msg->u.feature.tail_len = msg->data_len - sizeof(*c);
    if (msg->u.feature.tail_len !=
        (size_t)c->num_ranges * sizeof(struct vfio_user_dma_logging_range))
        return -EINVAL;
    for (i = 0; i < c->num_ranges; i++) {
        struct vfio_user_dma_logging_range r;

        umdev_wire_log_range(msg, i, &r);
        if (r.length == 0 || r.iova + r.length < r.iova)
            return -EINVAL;
    }
    return 0;
}

/* A report's range: a power-of-two page size, a range that does not wrap,
 * a bitmap that fits one message. */
static int
check_log_report(const struct vfio_user_dma_logging_report *r,
                 const struct umdev_wire_limits *lim, uint64_t *bitmap)
{
    if (!is_pow2(r->page_size) || r->length == 0 ||
        r->iova + r->length < r->iova)
        return -EINVAL;
    *bitmap = umdev_wire_log_bitmap_size(r->length, r->page_size);
    if (*bitmap > lim->max_data_xfer_size)
        return -E2BIG;
    return 0;
}

/* The data a GET of a feature we know returns, in bytes (0: unknown). */
static size_t
feature_get_size(uint32_t index)
{
    switch (index) {
    case VFIO_USER_FEATURE_MIGRATION:
        return sizeof(struct vfio_user_feature_migration);
    case VFIO_USER_FEATURE_MIG_DEVICE_STATE:
        return sizeof(struct vfio_user_feature_mig_state);
    case VFIO_USER_FEATURE_DMA_LOGGING_REPORT:
        return sizeof(struct vfio_user_dma_logging_report);
    case UMDEV_WIRE_FEATURE_PRECOPY_INFO:
        return sizeof(struct umdev_wire_precopy_info);
    default:
        return 0;
    }
}

/*
 * DEVICE_FEATURE, request or reply. Only the shape is checked here: which
 * features a device has, and which of GET/SET each takes, is the server's
 * business (an unknown index decodes, and gets ENOTSUP there).
 */
static int
decode_feature(struct umdev_wire_msg *msg, bool reply,
               const struct umdev_wire_limits *lim)
{
    typeof(msg->u.feature) *f = &msg->u.feature;
    uint32_t flags;
    size_t want;
    uint64_t bitmap;
    int rc;

    rc = decode_argsz_struct(msg, sizeof(f->hdr), &f->hdr);
    if (rc < 0)
        return rc;
    flags = f->hdr.flags;
    if (flags &
        ~(VFIO_USER_DEVICE_FEATURE_MASK | VFIO_USER_DEVICE_FEATURE_GET |
          VFIO_USER_DEVICE_FEATURE_SET | VFIO_USER_DEVICE_FEATURE_PROBE))
        return -EINVAL;
    f->index = flags & VFIO_USER_DEVICE_FEATURE_MASK;
    f->get = (flags & VFIO_USER_DEVICE_FEATURE_GET) != 0;
    f->set = (flags & VFIO_USER_DEVICE_FEATURE_SET) != 0;
    f->probe = (flags & VFIO_USER_DEVICE_FEATURE_PROBE) != 0;
    /* Spec: GET and SET are mutually exclusive except with PROBE; one of
     * the three says what to do. */
    if (!f->probe && f->get == f->set)
        return -EINVAL;
    /* A probe carries no data (spec: "not used for probing"); neither
     * does its reply, which repeats the request. */
    if (f->probe)
        return 0;
    want = feature_get_size(f->index);
    if (f->get) {
        if (want == 0)
            return 0;
        if (f->index == VFIO_USER_FEATURE_DMA_LOGGING_REPORT) {
            if (msg->data_len < want)
                return -EINVAL;
            memcpy(&f->d.log_report, msg->data, want);
            rc = check_log_report(&f->d.log_report, lim, &bitmap);
            if (rc < 0)
                return rc;
            /* The request names the range; the reply adds the bitmap. */
            if (msg->data_len != want + (reply ? bitmap : 0))
                return -EINVAL;
            want += bitmap;
            f->tail = msg->data + sizeof(f->d.log_report);
            f->tail_len = msg->data_len - sizeof(f->d.log_report);
        } else if (reply) {
            if (msg->data_len != want)
                return -EINVAL;
            memcpy(&f->d, msg->data, want);
        } else if (msg->data_len != 0) {
            return -EINVAL;
        }
        /* argsz is the largest reply the client takes: too small for the
         * answer is refused (there is no partial answer to a GET). */
        if (!reply && f->hdr.argsz < sizeof(f->hdr) + want)
            return -EINVAL;
        return 0;
    }
    switch (f->index) {
    case VFIO_USER_FEATURE_MIG_DEVICE_STATE:
        if (msg->data_len != sizeof(f->d.mig_state))
            return -EINVAL;
        memcpy(&f->d.mig_state, msg->data, sizeof(f->d.mig_state));
        /* The reply repeats the state: the client must take it. */
        if (!reply && f->hdr.argsz < sizeof(f->hdr) + sizeof(f->d.mig_state))
            return -EINVAL;
        return 0;
    case VFIO_USER_FEATURE_DMA_LOGGING_START:
        return decode_log_start(msg);
    case VFIO_USER_FEATURE_DMA_LOGGING_STOP:
        return msg->data_len == 0 ? 0 : -EINVAL;
    default:
        return 0;
    }
}

static int
decode_command(struct umdev_wire_msg *msg, size_t nfds,
               const struct umdev_wire_limits *lim)
{
    int rc;

    switch (msg->hdr.cmd) {
    case VFIO_USER_VERSION:
        rc = decode_version(msg);
        break;
    case VFIO_USER_DMA_MAP:
        return decode_dma_map(msg, nfds);
    case VFIO_USER_DMA_UNMAP:
        rc = decode_dma_unmap(msg, false);
        break;
    case VFIO_USER_DEVICE_GET_INFO:
        rc = decode_argsz_struct(msg, sizeof(msg->u.device_info),
                                 &msg->u.device_info);
        break;
    case VFIO_USER_DEVICE_GET_REGION_INFO:
        rc = decode_argsz_struct(msg, sizeof(msg->u.region_info),
                                 &msg->u.region_info);
        break;
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
        rc = decode_argsz_struct(msg, sizeof(msg->u.io_fds), &msg->u.io_fds);
        break;
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
        rc = decode_argsz_struct(msg, sizeof(msg->u.irq_info),
                                 &msg->u.irq_info);
        break;
    case VFIO_USER_DEVICE_SET_IRQS:
        return decode_irq_set(msg, nfds);
    case VFIO_USER_REGION_READ:
        rc = decode_region_access(msg, false, lim);
        break;
    case VFIO_USER_REGION_WRITE:
        rc = decode_region_access(msg, true, lim);
        break;
    case VFIO_USER_DMA_READ:
        rc = decode_dma_access(msg, false, lim);
        break;
    case VFIO_USER_DMA_WRITE:
        rc = decode_dma_access(msg, true, lim);
        break;
    case VFIO_USER_DEVICE_RESET:
        rc = set_tail(msg, 0);
        break;
    case VFIO_USER_REGION_WRITE_MULTI:
        rc = decode_write_multi(msg);
        break;
    case VFIO_USER_DEVICE_FEATURE:
        rc = decode_feature(msg, false, lim);
        break;
    case VFIO_USER_MIG_DATA_READ:
        rc = decode_mig(msg, false, lim);
        break;
    case VFIO_USER_MIG_DATA_WRITE:
        rc = decode_mig(msg, true, lim);
        break;
    default:
        return -ENOSYS;
    }
    if (rc == 0 && nfds != 0)
        return -EBADF;
    return rc;
}

static int
decode_reply(struct umdev_wire_msg *msg, size_t nfds,
             const struct umdev_wire_limits *lim)
{
    bool fds_ok = false;
    int rc = 0;

    if (msg->hdr.cmd == 0 || msg->hdr.cmd >= VFIO_USER_MAX_CMD ||
        cmd_names[msg->hdr.cmd] == NULL)
        return -ENOSYS;
    /* Spec: an error reply carries only the header. */
    if (msg->hdr.flags & VFIO_USER_F_ERROR) {
        set_tail(msg, 0);
        return nfds ? -EBADF : 0;
    }
    switch (msg->hdr.cmd) {
    case VFIO_USER_VERSION:
        fds_ok = true; /* twin-socket mode passes a socket */
        rc = decode_version(msg);
        break;
    case VFIO_USER_DMA_UNMAP:
        rc = decode_dma_unmap(msg, true);
        break;
    case VFIO_USER_DEVICE_GET_INFO:
        rc = decode_argsz_struct(msg, sizeof(msg->u.device_info),
                                 &msg->u.device_info);
        break;
    case VFIO_USER_DEVICE_GET_REGION_INFO:
        fds_ok = true;
        rc = decode_argsz_struct(msg, sizeof(msg->u.region_info),
                                 &msg->u.region_info);
        break;
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS: {
        const struct vfio_user_region_io_fds_request *r = &msg->u.io_fds;

        fds_ok = true;
        rc = decode_argsz_struct(msg, sizeof(*r), &msg->u.io_fds);
        if (rc == 0 && r->count != 0 &&
            (uint64_t)r->count * sizeof(struct vfio_user_sub_region_ioeventfd) >
                msg->data_len && r->argsz <= msg->payload_len)
            rc = -EINVAL;
        break;
    }
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
        rc = decode_argsz_struct(msg, sizeof(msg->u.irq_info),
                                 &msg->u.irq_info);
        break;
    case VFIO_USER_REGION_READ:
        rc = decode_region_access(msg, true, lim);
        break;
    case VFIO_USER_DMA_READ:
        rc = decode_dma_access(msg, true, lim);
        break;
    case VFIO_USER_DMA_WRITE:
        /* The spec's DMA_WRITE reply has a 4-byte count; accept both it and
         * the 8-byte form other implementations send. */
        if (msg->payload_len < 12)
            return -EINVAL;
        memset(&msg->u.dma_access, 0, sizeof(msg->u.dma_access));
        memcpy(&msg->u.dma_access, msg->payload, 12);
        set_tail(msg, msg->payload_len);
        break;
    case VFIO_USER_REGION_WRITE_MULTI:
        if (msg->payload_len < sizeof(uint64_t))
            return -EINVAL;
        memcpy(&msg->u.write_multi.count, msg->payload, sizeof(uint64_t));
        set_tail(msg, sizeof(uint64_t));
        break;
    case VFIO_USER_DEVICE_FEATURE:
        rc = decode_feature(msg, true, lim);
        break;
    case VFIO_USER_MIG_DATA_READ:
        rc = decode_mig(msg, true, lim);
        break;
    default:
        /* DMA_MAP, SET_IRQS, REGION_WRITE, RESET, MIG_DATA_WRITE: no
         * payload the receiver needs; any echo is ignored. */
        set_tail(msg, 0);
        break;
    }
    if (rc == 0 && nfds != 0 && !fds_ok)
        return -EBADF;
    return rc;
}

int
umdev_wire_decode(const void *buf, size_t len, size_t nfds,
                  const struct umdev_wire_limits *lim,
                  struct umdev_wire_msg *msg)
{
    static const struct umdev_wire_limits defaults = {
        .max_data_xfer_size = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER,
        .max_msg_fds = UMDEV_WIRE_MAX_MSG_FDS,
    };
    int rc;

    if (lim == NULL)
        lim = &defaults;
    memset(msg, 0, sizeof(*msg));
    if (len < UMDEV_WIRE_HDR_SIZE)
        return -EPROTO;
    rc = umdev_wire_decode_header(buf, &msg->hdr);
    if (rc < 0)
        return rc;
    if (msg->hdr.msg_size != len)
        return -EPROTO;
    if (nfds > lim->max_msg_fds)
        return -EBADF;
    msg->is_reply = (msg->hdr.flags & VFIO_USER_F_TYPE_MASK) ==
                    VFIO_USER_F_TYPE_REPLY;
    msg->payload = (const uint8_t *)buf + UMDEV_WIRE_HDR_SIZE;
    msg->payload_len = len - UMDEV_WIRE_HDR_SIZE;
    if (msg->is_reply)
        return decode_reply(msg, nfds, lim);
    return decode_command(msg, nfds, lim);
}

size_t
umdev_wire_size(size_t fixed_len, size_t data_len)
{
    size_t total = UMDEV_WIRE_HDR_SIZE + fixed_len;

    if (total < fixed_len || total + data_len < total ||
        total + data_len > UINT32_MAX)
        return 0;
    return total + data_len;
}

ssize_t
umdev_wire_encode(void *buf, size_t cap, uint16_t msg_id, uint16_t cmd,
                  uint32_t flags, const void *fixed, size_t fixed_len,
                  const void *data, size_t data_len)
{
    struct vfio_user_header hdr = {
        .msg_id = msg_id,
        .cmd = cmd,
        .flags = flags,
    };
    uint8_t *p = buf;
    size_t total = umdev_wire_size(fixed_len, data_len);

    if (total == 0 || total > cap)
        return -E2BIG;
    hdr.msg_size = (uint32_t)total;
    memcpy(p, &hdr, sizeof(hdr));
    if (fixed_len)
        memcpy(p + sizeof(hdr), fixed, fixed_len);
    if (data_len)
        memcpy(p + sizeof(hdr) + fixed_len, data, data_len);
    return (ssize_t)total;
}

void
umdev_wire_encode_error(struct vfio_user_header *out,
                        const struct vfio_user_header *req, int err)
{
    memset(out, 0, sizeof(*out));
    out->msg_id = req->msg_id;
    out->cmd = req->cmd;
    out->msg_size = UMDEV_WIRE_HDR_SIZE;
    out->flags = VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR;
    out->error = (uint32_t)(err < 0 ? -err : err);
}

int
umdev_wire_region_caps_walk(const void *info, size_t len,
                            int (*cb)(const struct vfio_user_cap_header *,
                                      const uint8_t *cap, size_t avail,
                                      void *opaque),
                            void *opaque)
{
    struct vfio_user_region_info ri;
    const uint8_t *base = info;
    uint32_t off, prev_end;
    int rc;

    if (len < sizeof(ri))
        return -EINVAL;
    memcpy(&ri, info, sizeof(ri));
    /* VFIO_REGION_INFO_FLAG_CAPS is bit 3. */
    if (!(ri.flags & (1u << 3)) || ri.cap_offset == 0)
        return 0;
    if (ri.argsz < len)
        len = ri.argsz;
    off = ri.cap_offset;
    prev_end = sizeof(ri);
    while (off != 0) {
        struct vfio_user_cap_header h;

        /* Forward-only, aligned, and the header inside the buffer: a chain
         * can neither loop nor point outside what was received. */
        if (off < prev_end || (off & 3) != 0 ||
            (size_t)off + sizeof(h) > len)
            return -EINVAL;
        memcpy(&h, base + off, sizeof(h));
        rc = cb(&h, base + off, len - off, opaque);
        if (rc < 0)
            return rc;
        prev_end = off + sizeof(h);
        off = h.next;
    }
    return 0;
}
