/* Unit tests for lib/wire: every message round trips, every bad one fails. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "umdev/wire.h"

/* <linux/vfio.h> values the messages below use. */
#define IRQ_DATA_NONE (1u << 0)
#define IRQ_DATA_BOOL (1u << 1)
#define IRQ_DATA_EVENTFD (1u << 2)
#define IRQ_ACTION_MASK (1u << 3)
#define IRQ_ACTION_UNMASK (1u << 4)
#define IRQ_ACTION_TRIGGER (1u << 5)
#define REGION_FLAG_READ (1u << 0)
#define REGION_FLAG_WRITE (1u << 1)
#define REGION_FLAG_MMAP (1u << 2)
#define REGION_FLAG_CAPS (1u << 3)
#define FEATURE_GET (1u << 16)
#define FEATURE_PROBE (1u << 18)
#define FEATURE_MIGRATION 1u
#define MIGRATION_STOP_COPY (1u << 0)
#define MIGRATION_PRE_COPY (1u << 2)
#define IOEVENTFD_FLAG_DATAMATCH (1u << 0)

#define REPLY VFIO_USER_F_TYPE_REPLY
#define HDR UMDEV_WIRE_HDR_SIZE
#define MSG_ID 0x5a17u
#define MSG_CAP 8192u
#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

/* What QEMU 11.1.3 sends in its VERSION command, NUL included. */
#define QEMU_JSON                                                            \
    "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576," \
    "\"pgsizes\":4096,\"max_dma_maps\":65535,\"migration\":{\"pgsize\":"     \
    "4096,\"max_bitmap_size\":268435456},\"write_multiple\":true}}"

/* Return codes in decimal, with the message they came from. */
#define check_rc(name, tag, got, want)                                      \
    do {                                                                    \
        int got_ = (got), want_ = (want);                                   \
                                                                            \
        if (got_ != want_)                                                  \
            fail_msg("%s [%s]: rc %d (%s), want %d (%s)", (name), (tag),    \
                     got_, strerror(-got_), want_, strerror(-want_));       \
    } while (0)

/* Equality of a decoded value, naming the sample it came from. */
#define SAMPLE_EQ(s, got, want)                                             \
    do {                                                                    \
        uintmax_t got_ = (uintmax_t)(got), want_ = (uintmax_t)(want);       \
                                                                            \
        if (got_ != want_)                                                  \
            fail_msg("%s: %s = %#jx, want %#jx", (s)->name, #got, got_,     \
                     want_);                                                \
    } while (0)

/* Field-by-field equality of two structures of the same type. */
#define EQ(got, want, field) assert_int_equal((got)->field, (want)->field)

struct msg {
    size_t len;
    uint8_t b[MSG_CAP];
};

struct unmap_dirty {
    struct vfio_user_dma_unmap unmap;
    struct vfio_user_bitmap bitmap;
};

/* A GET_REGION_INFO reply: sparse-mmap capability chained to a type one. */
struct region_reply {
    struct vfio_user_region_info info;
    struct vfio_user_cap_sparse_mmap sparse; /* at 32 */
    struct vfio_user_sparse_area areas[2];   /* at 48 */
    struct vfio_user_cap_type type;          /* at 80 */
};

struct io_fds_reply {
    struct vfio_user_region_io_fds_request head;
    struct vfio_user_sub_region_ioeventfd sub[2];
};

struct multi_req {
    uint64_t wr_cnt;
    struct vfio_user_write_multi_entry e[3];
};

/* The spec's DMA_WRITE reply: address and a 4-byte count, 12 bytes. */
struct dma_write_reply {
    uint64_t addr;
    uint32_t count;
};

static const struct vfio_user_version k_version = { 0, 0 };
static const struct vfio_user_version k_version_reply = { 1, 2 };
static const char k_qemu_json[] = QEMU_JSON;
static const char k_server_json[] =
    "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":65536}}";
static const struct vfio_user_dma_map k_dma_map = {
    .argsz = 32,
    .flags = VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE,
    .offset = 0x2000,
    .addr = 0x100000,
    .size = 0x10000,
};
static const struct vfio_user_dma_unmap k_unmap = {
    .argsz = 24, .flags = 0, .addr = 0x100000, .size = 0x10000,
};
static const struct vfio_user_dma_unmap k_unmap_all = {
    .argsz = 24, .flags = VFIO_USER_DMA_UNMAP_FLAG_ALL,
};
/* 16 pages of 4 KiB: a 2-byte bitmap. */
static const struct unmap_dirty k_unmap_dirty = {
    .unmap = { .argsz = 24 + 16 + 2,
               .flags = VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
               .addr = 0x300000,
               .size = 0x10000 },
    .bitmap = { .pgsize = 4096, .size = 2 },
};
static const uint8_t k_bitmap[2] = { 0xa5, 0x0f };
static const struct vfio_user_device_info k_info_req = { .argsz = 16 };
static const struct vfio_user_device_info k_info = { 16, 3, 9, 5 };
static const struct vfio_user_region_info k_region_req = {
    .argsz = 128, .index = 2,
};
static const struct region_reply k_region = {
    .info = { .argsz = sizeof(struct region_reply),
              .flags = REGION_FLAG_READ | REGION_FLAG_WRITE |
                       REGION_FLAG_MMAP | REGION_FLAG_CAPS,
              .index = 2,
              .cap_offset = 32,
              .size = 0x10000,
              .offset = 0x7f0000 },
    .sparse = { .header = { VFIO_USER_REGION_CAP_SPARSE_MMAP, 1, 80 },
                .nr_areas = 2 },
    .areas = { { 0x1000, 0x3000 }, { 0x8000, 0x8000 } },
    .type = { .header = { VFIO_USER_REGION_CAP_TYPE, 1, 0 },
              .type = 0x80008086u,
              .subtype = 7 },
};
static const struct vfio_user_region_io_fds_request k_io_fds_req = {
    .argsz = sizeof(struct io_fds_reply), .index = 1,
};
static const struct io_fds_reply k_io_fds = {
    .head = { .argsz = sizeof(struct io_fds_reply), .index = 1, .count = 2 },
    .sub = { { .offset = 0x100,
               .size = 4,
               .fd_index = 0,
               .type = VFIO_USER_IO_FD_TYPE_IOEVENTFD,
               .flags = IOEVENTFD_FLAG_DATAMATCH,
               .datamatch = 0x1234 },
             { .offset = 0x200,
               .size = 8,
               .fd_index = 1,
               .type = VFIO_USER_IO_FD_TYPE_IOEVENTFD } },
};
static const struct vfio_user_irq_info k_irq_info_req = {
    .argsz = 16, .index = 2,
};
static const struct vfio_user_irq_info k_irq_info = { 16, 0xb, 2, 2048 };
static const struct vfio_user_irq_set k_irqs_none = {
    20, IRQ_DATA_NONE | IRQ_ACTION_TRIGGER, 1, 3, 2,
};
static const struct vfio_user_irq_set k_irqs_bool = {
    23, IRQ_DATA_BOOL | IRQ_ACTION_UNMASK, 2, 4, 3,
};
static const uint8_t k_bools[3] = { 1, 0, 1 };
static const struct vfio_user_irq_set k_irqs_fd = {
    20, IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER, 2, 5, 4,
};
static const struct vfio_user_region_access k_rr = { 0x10, 2, 4 };
static const uint8_t k_rr_data[4] = { 0xde, 0xad, 0xbe, 0xef };
static const struct vfio_user_region_access k_rw = { 0x18, 3, 4 };
static const uint8_t k_rw_data[4] = { 'w', 'x', 'y', 'z' };
static const struct vfio_user_dma_access k_dr = { 0x100040, 8 };
static const uint8_t k_dr_data[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
static const struct vfio_user_dma_access k_dw = { 0x100080, 6 };
static const uint8_t k_dw_data[6] = { 'd', 'm', 'a', 'w', 'r', '!' };
static const struct dma_write_reply k_dw_reply = { 0x100080, 6 };
static const struct multi_req k_multi = {
    .wr_cnt = 3,
    .e = { { 0x4, 0, 4, { 1, 2, 3, 4 } },
           { 0x100, 1, 2, { 9, 8 } },
           { 0x8, 2, 8, { 1, 2, 3, 4, 5, 6, 7, 8 } } },
};
static const uint64_t k_multi_done = 3;
static const struct vfio_user_device_feature k_feat = {
    .argsz = 16, .flags = FEATURE_GET | FEATURE_PROBE | FEATURE_MIGRATION,
};
static const uint64_t k_mig_flags = MIGRATION_STOP_COPY | MIGRATION_PRE_COPY;
static const struct vfio_user_mig_data k_mig_req = { 8 + 64, 64 };
static const struct vfio_user_mig_data k_mig_reply = { 8 + 5, 5 };
static const struct vfio_user_mig_data k_mig_write = { 8 + 5, 5 };
static const uint8_t k_mig_bytes[5] = { 0x4d, 0x49, 0x47, 0x00, 0xff };

/* How a message may carry fds. */
enum fd_rule {
    FDS_NONE,  /* none at all */
    FDS_MAP,   /* DMA_MAP: zero or one */
    FDS_EXACT, /* SET_IRQS eventfd: zero or exactly count */
    FDS_ANY,   /* VERSION/GET_REGION_INFO/GET_REGION_IO_FDS replies */
};

/* One valid message and what each sweep may change in it. */
struct sample {
    const char *name;
    uint16_t cmd;
    uint32_t flags;
    const void *fixed;
    size_t fixed_len;
    const void *data;
    size_t data_len;
    size_t nfds;        /* fds it is sent with */
    enum fd_rule fds;
    size_t min_fixed;   /* shortest payload its layout allows; 0: none */
    uint32_t argsz_min; /* smallest argsz accepted; 0: no argsz */
    size_t count_off;   /* data count field offset in the payload */
    size_t count_size;  /* its size, 4 or 8; 0: no data count */
};

#define FIXED(x) .fixed = &(x), .fixed_len = sizeof(x)
#define DATA(x) .data = (x), .data_len = sizeof(x)
#define COUNT(off, size) .count_off = (off), .count_size = (size)
#define NO_PAYLOAD .fixed = NULL, .fixed_len = 0

static const struct sample samples[] = {
    /* Commands, in the spec's order. */
    { "VERSION", VFIO_USER_VERSION, 0, FIXED(k_version), DATA(k_qemu_json),
      .min_fixed = 4 },
    { "VERSION no JSON", VFIO_USER_VERSION, 0, FIXED(k_version),
      .min_fixed = 4 },
    { "DMA_MAP", VFIO_USER_DMA_MAP, 0, FIXED(k_dma_map), .nfds = 1,
      .fds = FDS_MAP, .min_fixed = 32, .argsz_min = 32 },
    { "DMA_UNMAP", VFIO_USER_DMA_UNMAP, 0, FIXED(k_unmap), .min_fixed = 24,
      .argsz_min = 24 },
    { "DMA_UNMAP all", VFIO_USER_DMA_UNMAP, 0, FIXED(k_unmap_all),
      .min_fixed = 24, .argsz_min = 24 },
    { "DMA_UNMAP dirty", VFIO_USER_DMA_UNMAP, 0, FIXED(k_unmap_dirty),
      .min_fixed = 40, .argsz_min = 40 },
    { "DEVICE_GET_INFO", VFIO_USER_DEVICE_GET_INFO, 0, FIXED(k_info_req),
      .min_fixed = 16, .argsz_min = 16 },
    { "DEVICE_GET_REGION_INFO", VFIO_USER_DEVICE_GET_REGION_INFO, 0,
      FIXED(k_region_req), .min_fixed = 32, .argsz_min = 32 },
    { "DEVICE_GET_REGION_IO_FDS", VFIO_USER_DEVICE_GET_REGION_IO_FDS, 0,
      FIXED(k_io_fds_req), .min_fixed = 16, .argsz_min = 16 },
    { "DEVICE_GET_IRQ_INFO", VFIO_USER_DEVICE_GET_IRQ_INFO, 0,
      FIXED(k_irq_info_req), .min_fixed = 16, .argsz_min = 16 },
    { "SET_IRQS none", VFIO_USER_DEVICE_SET_IRQS, 0, FIXED(k_irqs_none),
      .min_fixed = 20, .argsz_min = 20 },
    { "SET_IRQS bool", VFIO_USER_DEVICE_SET_IRQS, 0, FIXED(k_irqs_bool),
      DATA(k_bools), .min_fixed = 20, .argsz_min = 20 },
    { "SET_IRQS eventfd", VFIO_USER_DEVICE_SET_IRQS, 0, FIXED(k_irqs_fd),
      .nfds = 4, .fds = FDS_EXACT, .min_fixed = 20, .argsz_min = 20 },
    { "REGION_READ", VFIO_USER_REGION_READ, 0, FIXED(k_rr), .min_fixed = 16,
      COUNT(12, 4) },
    { "REGION_WRITE", VFIO_USER_REGION_WRITE, 0, FIXED(k_rw),
      DATA(k_rw_data), .min_fixed = 16, COUNT(12, 4) },
    { "REGION_WRITE posted", VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY,
      FIXED(k_rw), DATA(k_rw_data), .min_fixed = 16, COUNT(12, 4) },
    { "DMA_READ", VFIO_USER_DMA_READ, 0, FIXED(k_dr), .min_fixed = 16,
      COUNT(8, 8) },
    { "DMA_WRITE", VFIO_USER_DMA_WRITE, 0, FIXED(k_dw), DATA(k_dw_data),
      .min_fixed = 16, COUNT(8, 8) },
    { "DEVICE_RESET", VFIO_USER_DEVICE_RESET, 0, NO_PAYLOAD },
    { "REGION_WRITE_MULTI", VFIO_USER_REGION_WRITE_MULTI, 0,
      FIXED(k_multi.wr_cnt), DATA(k_multi.e), .min_fixed = 8 },
    { "DEVICE_FEATURE", VFIO_USER_DEVICE_FEATURE, 0, FIXED(k_feat),
      .min_fixed = 8, .argsz_min = 8 },
    { "MIG_DATA_READ", VFIO_USER_MIG_DATA_READ, 0, FIXED(k_mig_req),
      .min_fixed = 8, .argsz_min = 8, COUNT(4, 4) },
    { "MIG_DATA_WRITE", VFIO_USER_MIG_DATA_WRITE, 0, FIXED(k_mig_write),
      DATA(k_mig_bytes), .min_fixed = 8, .argsz_min = 8, COUNT(4, 4) },
    /* Replies. */
    { "VERSION reply", VFIO_USER_VERSION, REPLY, FIXED(k_version_reply),
      DATA(k_server_json), .fds = FDS_ANY, .min_fixed = 4 },
    { "DMA_MAP reply", VFIO_USER_DMA_MAP, REPLY, NO_PAYLOAD },
    { "DMA_UNMAP reply", VFIO_USER_DMA_UNMAP, REPLY, FIXED(k_unmap),
      .min_fixed = 24, .argsz_min = 24 },
    { "DMA_UNMAP dirty reply", VFIO_USER_DMA_UNMAP, REPLY,
      FIXED(k_unmap_dirty), DATA(k_bitmap), .min_fixed = 40,
      .argsz_min = 40 },
    { "DEVICE_GET_INFO reply", VFIO_USER_DEVICE_GET_INFO, REPLY,
      FIXED(k_info), .min_fixed = 16, .argsz_min = 16 },
    { "DEVICE_GET_REGION_INFO reply", VFIO_USER_DEVICE_GET_REGION_INFO,
      REPLY, FIXED(k_region.info), .data = (const uint8_t *)&k_region + 32,
      .data_len = sizeof(k_region) - 32, .nfds = 1, .fds = FDS_ANY,
      .min_fixed = 32, .argsz_min = 32 },
    { "DEVICE_GET_REGION_IO_FDS reply", VFIO_USER_DEVICE_GET_REGION_IO_FDS,
      REPLY, FIXED(k_io_fds.head), DATA(k_io_fds.sub), .nfds = 2,
      .fds = FDS_ANY, .min_fixed = 16, .argsz_min = 16 },
    { "DEVICE_GET_IRQ_INFO reply", VFIO_USER_DEVICE_GET_IRQ_INFO, REPLY,
      FIXED(k_irq_info), .min_fixed = 16, .argsz_min = 16 },
    { "SET_IRQS reply", VFIO_USER_DEVICE_SET_IRQS, REPLY, NO_PAYLOAD },
    { "REGION_READ reply", VFIO_USER_REGION_READ, REPLY, FIXED(k_rr),
      DATA(k_rr_data), .min_fixed = 16, COUNT(12, 4) },
    { "REGION_WRITE reply", VFIO_USER_REGION_WRITE, REPLY, FIXED(k_rw) },
    { "DMA_READ reply", VFIO_USER_DMA_READ, REPLY, FIXED(k_dr),
      DATA(k_dr_data), .min_fixed = 16, COUNT(8, 8) },
    { "DMA_WRITE reply", VFIO_USER_DMA_WRITE, REPLY, .fixed = &k_dw_reply,
      .fixed_len = 12, .min_fixed = 12 },
    { "DMA_WRITE reply 16", VFIO_USER_DMA_WRITE, REPLY, FIXED(k_dw),
      .min_fixed = 12 },
    { "DEVICE_RESET reply", VFIO_USER_DEVICE_RESET, REPLY, NO_PAYLOAD },
    { "REGION_WRITE_MULTI reply", VFIO_USER_REGION_WRITE_MULTI, REPLY,
      FIXED(k_multi_done), .min_fixed = 8 },
    { "DEVICE_FEATURE reply", VFIO_USER_DEVICE_FEATURE, REPLY,
      FIXED(k_feat), .data = &k_mig_flags, .data_len = sizeof(k_mig_flags),
      .min_fixed = 8, .argsz_min = 8 },
    { "MIG_DATA_READ reply", VFIO_USER_MIG_DATA_READ, REPLY,
      FIXED(k_mig_reply), DATA(k_mig_bytes), .min_fixed = 8,
      .argsz_min = 8, COUNT(4, 4) },
    { "MIG_DATA_WRITE reply", VFIO_USER_MIG_DATA_WRITE, REPLY, NO_PAYLOAD },
};

static const uint16_t known_cmds[] = {
    VFIO_USER_VERSION,
    VFIO_USER_DMA_MAP,
    VFIO_USER_DMA_UNMAP,
    VFIO_USER_DEVICE_GET_INFO,
    VFIO_USER_DEVICE_GET_REGION_INFO,
    VFIO_USER_DEVICE_GET_REGION_IO_FDS,
    VFIO_USER_DEVICE_GET_IRQ_INFO,
    VFIO_USER_DEVICE_SET_IRQS,
    VFIO_USER_REGION_READ,
    VFIO_USER_REGION_WRITE,
    VFIO_USER_DMA_READ,
    VFIO_USER_DMA_WRITE,
    VFIO_USER_DEVICE_RESET,
    VFIO_USER_REGION_WRITE_MULTI,
    VFIO_USER_DEVICE_FEATURE,
    VFIO_USER_MIG_DATA_READ,
    VFIO_USER_MIG_DATA_WRITE,
};

/* Lay out header, fixed part and data in @m; fails the test if it can't. */
static void
enc(struct msg *m, uint16_t cmd, uint32_t flags, const void *fixed,
    size_t fixed_len, const void *data, size_t data_len)
{
    ssize_t n = umdev_wire_encode(m->b, sizeof(m->b), MSG_ID, cmd, flags,
                                  fixed, fixed_len, data, data_len);

    assert_int_equal(n, HDR + fixed_len + data_len);
    m->len = (size_t)n;
}

static void
enc_sample(struct msg *m, const struct sample *s)
{
    enc(m, s->cmd, s->flags, s->fixed, s->fixed_len, s->data, s->data_len);
}

static const struct sample *
sample(const char *name)
{
    size_t i;

    for (i = 0; i < N_ELEM(samples); i++)
        if (strcmp(samples[i].name, name) == 0)
            return &samples[i];
    fail_msg("no sample \"%s\"", name);
    return NULL;
}

static void
put32(struct msg *m, size_t off, uint32_t v)
{
    memcpy(m->b + off, &v, sizeof(v));
}

static void
put64(struct msg *m, size_t off, uint64_t v)
{
    memcpy(m->b + off, &v, sizeof(v));
}

/* Store @v in the payload field at @off that is @size bytes wide. */
static void
put_field(struct msg *m, size_t off, size_t size, uint64_t v)
{
    if (size == 4)
        put32(m, HDR + off, (uint32_t)v);
    else
        put64(m, HDR + off, v);
}

/*
 * Decode a heap copy of exactly @len bytes, so that ASan reports any read
 * past the message; for checks that need only the result.
 */
static int
decode_exact(const void *buf, size_t len, size_t nfds,
             const struct umdev_wire_limits *lim)
{
    struct umdev_wire_msg w;
    uint8_t *copy = malloc(len ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, buf, len);
    rc = umdev_wire_decode(copy, len, nfds, lim, &w);
    free(copy);
    return rc;
}

static int
rc_of(const struct msg *m, size_t nfds)
{
    return decode_exact(m->b, m->len, nfds, NULL);
}

/*
 * Encode @s, decode it into @w and check what every decode reports. The
 * tail is the data after the fixed part; for a reply whose payload the
 * decoder does not interpret (min_fixed 0), the whole payload.
 */
static void
round_trip(const struct sample *s, struct msg *m, struct umdev_wire_msg *w)
{
    size_t tail_off = s->min_fixed ? s->fixed_len : 0;
    size_t tail_len = s->fixed_len + s->data_len - tail_off;

    enc_sample(m, s);
    check_rc(s->name, "decode", umdev_wire_decode(m->b, m->len, s->nfds,
                                                  NULL, w),
             0);
    SAMPLE_EQ(s, w->hdr.msg_id, MSG_ID);
    SAMPLE_EQ(s, w->hdr.cmd, s->cmd);
    SAMPLE_EQ(s, w->hdr.msg_size, m->len);
    SAMPLE_EQ(s, w->hdr.flags, s->flags);
    SAMPLE_EQ(s, w->hdr.error, 0);
    SAMPLE_EQ(s, w->is_reply, (s->flags & REPLY) != 0);
    SAMPLE_EQ(s, w->payload, m->b + HDR);
    SAMPLE_EQ(s, w->payload_len, s->fixed_len + s->data_len);
    SAMPLE_EQ(s, w->data_len, tail_len);
    if (tail_len != 0)
        SAMPLE_EQ(s, w->data, m->b + HDR + tail_off);
    if (s->data_len != 0)
        assert_memory_equal(w->data, s->data, s->data_len);
}

static struct umdev_wire_msg
round_trip_named(const char *name, struct msg *m)
{
    struct umdev_wire_msg w;

    round_trip(sample(name), m, &w);
    return w;
}

static void
test_every_sample_round_trips(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEM(samples); i++)
        round_trip(&samples[i], &m, &w);
}

/* Every spec command appears in the table as a command and as a reply. */
static void
test_samples_cover_every_command(void **state)
{
    size_t i, j;

    (void)state;
    for (i = 0; i < N_ELEM(known_cmds); i++) {
        bool cmd = false, reply = false;

        for (j = 0; j < N_ELEM(samples); j++) {
            if (samples[j].cmd != known_cmds[i])
                continue;
            if (samples[j].flags & REPLY)
                reply = true;
            else
                cmd = true;
        }
        if (!cmd || !reply)
            fail_msg("%s: command %d reply %d",
                     umdev_wire_cmd_name(known_cmds[i]), cmd, reply);
    }
}

/* QEMU 11.1.3's VERSION command, laid out byte by byte. */
static void
test_version_qemu_replay(void **state)
{
    uint8_t raw[HDR + 4 + sizeof(QEMU_JSON)];
    struct vfio_user_header h = {
        .msg_id = 0, .cmd = 1, .msg_size = sizeof(raw), .flags = 0,
    };
    struct umdev_wire_msg w;

    (void)state;
    memcpy(raw, &h, sizeof(h));
    memset(raw + HDR, 0, 4); /* major 0, minor 0 */
    memcpy(raw + HDR + 4, QEMU_JSON, sizeof(QEMU_JSON));
    assert_int_equal(raw[sizeof(raw) - 1], '\0');
    check_rc("QEMU VERSION", "decode",
             umdev_wire_decode(raw, sizeof(raw), 0, NULL, &w), 0);
    assert_int_equal(w.hdr.cmd, VFIO_USER_VERSION);
    assert_int_equal(w.hdr.msg_size, 16 + 4 + 178 + 1);
    assert_false(w.is_reply);
    assert_int_equal(w.u.version.major, 0);
    assert_int_equal(w.u.version.minor, 0);
    assert_ptr_equal(w.u.version.json, (const char *)raw + HDR + 4);
    assert_string_equal(w.u.version.json, QEMU_JSON);
    assert_int_equal(w.data_len, sizeof(QEMU_JSON));
}

static void
test_version(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("VERSION", &m);
    assert_int_equal(w.u.version.major, 0);
    assert_int_equal(w.u.version.minor, 0);
    assert_ptr_equal(w.u.version.json, (const char *)m.b + HDR + 4);
    assert_string_equal(w.u.version.json, QEMU_JSON);

    w = round_trip_named("VERSION no JSON", &m);
    assert_null(w.u.version.json);

    w = round_trip_named("VERSION reply", &m);
    assert_int_equal(w.u.version.major, 1);
    assert_int_equal(w.u.version.minor, 2);
    assert_string_equal(w.u.version.json, k_server_json);

    /* The reply may carry the twin socket. */
    enc_sample(&m, sample("VERSION reply"));
    check_rc("VERSION reply", "1 fd", rc_of(&m, 1), 0);
}

static void
test_version_json_bounds(void **state)
{
    static char json[UMDEV_WIRE_MAX_VERSION_JSON + 1];
    struct msg m;

    (void)state;
    /* Without its NUL, as command and as reply. */
    enc(&m, VFIO_USER_VERSION, 0, &k_version, 4, QEMU_JSON,
        sizeof(QEMU_JSON) - 1);
    check_rc("VERSION", "no NUL", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_VERSION, REPLY, &k_version, 4, QEMU_JSON,
        sizeof(QEMU_JSON) - 1);
    check_rc("VERSION reply", "no NUL", rc_of(&m, 0), -EINVAL);
    /* Bytes after the NUL are not JSON and not allowed. */
    memcpy(json, QEMU_JSON, sizeof(QEMU_JSON));
    json[sizeof(QEMU_JSON)] = 'x';
    json[sizeof(QEMU_JSON) + 1] = '\0';
    enc(&m, VFIO_USER_VERSION, 0, &k_version, 4, json, sizeof(QEMU_JSON) + 2);
    check_rc("VERSION", "bytes after NUL", rc_of(&m, 0), -EINVAL);
    /* The longest JSON accepted, and one byte more. */
    memset(json, ' ', sizeof(json));
    json[UMDEV_WIRE_MAX_VERSION_JSON - 1] = '\0';
    enc(&m, VFIO_USER_VERSION, 0, &k_version, 4, json,
        UMDEV_WIRE_MAX_VERSION_JSON);
    check_rc("VERSION", "max JSON", rc_of(&m, 0), 0);
    json[UMDEV_WIRE_MAX_VERSION_JSON] = '\0';
    enc(&m, VFIO_USER_VERSION, 0, &k_version, 4, json, sizeof(json));
    check_rc("VERSION", "JSON too long", rc_of(&m, 0), -E2BIG);
}

static void
test_dma_map(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("DMA_MAP", &m);
    EQ(&w.u.dma_map, &k_dma_map, argsz);
    EQ(&w.u.dma_map, &k_dma_map, flags);
    EQ(&w.u.dma_map, &k_dma_map, offset);
    EQ(&w.u.dma_map, &k_dma_map, addr);
    EQ(&w.u.dma_map, &k_dma_map, size);
    /* Without an fd the server reaches the memory by DMA_READ/WRITE. */
    check_rc("DMA_MAP", "no fd", rc_of(&m, 0), 0);
    round_trip_named("DMA_MAP reply", &m);
}

static void
test_dma_map_bad(void **state)
{
    struct vfio_user_dma_map d;
    struct msg m;

    (void)state;
    d = k_dma_map;
    d.addr = UINT64_MAX - 0xfff; /* addr + size wraps */
    enc(&m, VFIO_USER_DMA_MAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_MAP", "addr+size wraps", rc_of(&m, 1), -EINVAL);
    check_rc("DMA_MAP", "addr+size wraps, no fd", rc_of(&m, 0), -EINVAL);
    d = k_dma_map;
    d.offset = UINT64_MAX - 0xfff; /* offset + size wraps */
    enc(&m, VFIO_USER_DMA_MAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_MAP", "offset+size wraps", rc_of(&m, 1), -EINVAL);
    d = k_dma_map;
    d.size = 0;
    enc(&m, VFIO_USER_DMA_MAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_MAP", "size 0", rc_of(&m, 1), -EINVAL);
    d = k_dma_map;
    d.flags |= 1u << 2;
    enc(&m, VFIO_USER_DMA_MAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_MAP", "unknown flag", rc_of(&m, 1), -EINVAL);
    d = k_dma_map;
    d.argsz = 33; /* more than the message holds */
    enc(&m, VFIO_USER_DMA_MAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_MAP", "argsz > payload", rc_of(&m, 1), -EINVAL);
}

static void
test_dma_unmap(void **state)
{
    const struct unmap_dirty *k = &k_unmap_dirty;
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("DMA_UNMAP", &m);
    EQ(&w.u.dma_unmap.unmap, &k_unmap, argsz);
    EQ(&w.u.dma_unmap.unmap, &k_unmap, flags);
    EQ(&w.u.dma_unmap.unmap, &k_unmap, addr);
    EQ(&w.u.dma_unmap.unmap, &k_unmap, size);
    assert_int_equal(w.u.dma_unmap.bitmap.pgsize, 0);
    assert_int_equal(w.u.dma_unmap.bitmap.size, 0);

    w = round_trip_named("DMA_UNMAP all", &m);
    EQ(&w.u.dma_unmap.unmap, &k_unmap_all, argsz);
    assert_int_equal(w.u.dma_unmap.unmap.flags,
                     VFIO_USER_DMA_UNMAP_FLAG_ALL);
    assert_int_equal(w.u.dma_unmap.unmap.addr, 0);
    assert_int_equal(w.u.dma_unmap.unmap.size, 0);

    w = round_trip_named("DMA_UNMAP dirty", &m);
    EQ(&w.u.dma_unmap.unmap, &k->unmap, argsz);
    EQ(&w.u.dma_unmap.unmap, &k->unmap, flags);
    EQ(&w.u.dma_unmap.unmap, &k->unmap, addr);
    EQ(&w.u.dma_unmap.unmap, &k->unmap, size);
    EQ(&w.u.dma_unmap.bitmap, &k->bitmap, pgsize);
    EQ(&w.u.dma_unmap.bitmap, &k->bitmap, size);

    w = round_trip_named("DMA_UNMAP reply", &m);
    EQ(&w.u.dma_unmap.unmap, &k_unmap, addr);
    EQ(&w.u.dma_unmap.unmap, &k_unmap, size);

    /* The reply carries the bitmap data after the bitmap structure. */
    w = round_trip_named("DMA_UNMAP dirty reply", &m);
    EQ(&w.u.dma_unmap.unmap, &k->unmap, addr);
    EQ(&w.u.dma_unmap.bitmap, &k->bitmap, pgsize);
    EQ(&w.u.dma_unmap.bitmap, &k->bitmap, size);
    assert_int_equal(w.data_len, 2);
    assert_int_equal(w.data[0], 0xa5);
    assert_int_equal(w.data[1], 0x0f);

    /* A reply with no payload at all is accepted too. */
    enc(&m, VFIO_USER_DMA_UNMAP, REPLY, NULL, 0, NULL, 0);
    check_rc("DMA_UNMAP reply", "empty", rc_of(&m, 0), 0);
}

static void
test_dma_unmap_bad(void **state)
{
    struct unmap_dirty d;
    struct msg m;

    (void)state;
    d.unmap = k_unmap_all;
    d.unmap.size = 0x1000;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d.unmap, 24, NULL, 0);
    check_rc("DMA_UNMAP", "ALL with a size", rc_of(&m, 0), -EINVAL);
    d.unmap = k_unmap_all;
    d.unmap.addr = 0x1000;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d.unmap, 24, NULL, 0);
    check_rc("DMA_UNMAP", "ALL with an addr", rc_of(&m, 0), -EINVAL);
    d = k_unmap_dirty;
    d.unmap.flags |= VFIO_USER_DMA_UNMAP_FLAG_ALL;
    d.unmap.addr = d.unmap.size = 0;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_UNMAP", "ALL with bitmap", rc_of(&m, 0), -EINVAL);
    d.unmap = k_unmap;
    d.unmap.flags = 1u << 2;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d.unmap, 24, NULL, 0);
    check_rc("DMA_UNMAP", "unknown flag", rc_of(&m, 0), -EINVAL);
    d.unmap = k_unmap;
    d.unmap.size = 0;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d.unmap, 24, NULL, 0);
    check_rc("DMA_UNMAP", "size 0", rc_of(&m, 0), -EINVAL);
    d.unmap = k_unmap;
    d.unmap.addr = UINT64_MAX;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d.unmap, 24, NULL, 0);
    check_rc("DMA_UNMAP", "addr+size wraps", rc_of(&m, 0), -EINVAL);
    d = k_unmap_dirty;
    d.bitmap.pgsize = 0;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_UNMAP dirty", "pgsize 0", rc_of(&m, 0), -EINVAL);
    d.bitmap.pgsize = 4096 + 512;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_UNMAP dirty", "pgsize not 2^n", rc_of(&m, 0), -EINVAL);
    d = k_unmap_dirty;
    d.bitmap.size = 1; /* 16 pages need 2 bytes */
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_UNMAP dirty", "bitmap too small", rc_of(&m, 0), -EINVAL);
    d = k_unmap_dirty;
    d.bitmap.size = 3;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_UNMAP dirty", "bitmap too big", rc_of(&m, 0), -E2BIG);
    d = k_unmap_dirty;
    d.unmap.size += 512;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_UNMAP dirty", "size not whole pages", rc_of(&m, 0),
             -EINVAL);
    d = k_unmap_dirty;
    d.bitmap.size = (uint64_t)UINT32_MAX + 1;
    enc(&m, VFIO_USER_DMA_UNMAP, 0, &d, sizeof(d), NULL, 0);
    check_rc("DMA_UNMAP dirty", "bitmap > 4 GiB", rc_of(&m, 0), -EINVAL);
    /* Reply bitmap data must be exactly bitmap.size bytes. */
    enc(&m, VFIO_USER_DMA_UNMAP, REPLY, &k_unmap_dirty, sizeof(d), k_bitmap,
        1);
    check_rc("DMA_UNMAP dirty reply", "1 of 2 bytes", rc_of(&m, 0),
             -EINVAL);
    enc(&m, VFIO_USER_DMA_UNMAP, REPLY, &k_unmap_dirty, sizeof(d), NULL, 0);
    check_rc("DMA_UNMAP dirty reply", "no bitmap", rc_of(&m, 0), -EINVAL);
}

static void
test_device_get_info(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("DEVICE_GET_INFO", &m);
    EQ(&w.u.device_info, &k_info_req, argsz);
    EQ(&w.u.device_info, &k_info_req, flags);
    EQ(&w.u.device_info, &k_info_req, num_regions);
    EQ(&w.u.device_info, &k_info_req, num_irqs);
    w = round_trip_named("DEVICE_GET_INFO reply", &m);
    EQ(&w.u.device_info, &k_info, argsz);
    EQ(&w.u.device_info, &k_info, flags);
    EQ(&w.u.device_info, &k_info, num_regions);
    EQ(&w.u.device_info, &k_info, num_irqs);
}

/* What the capability walk saw. */
struct caps_seen {
    size_t n;
    struct {
        struct vfio_user_cap_header h;
        size_t off;   /* from the start of the region info */
        size_t avail; /* bytes the walk said may be read */
        uint8_t body[64];
    } cap[8];
    const uint8_t *base;
    int fail_at; /* return -ENOENT from this call (1-based), 0: never */
};

static int
collect_cap(const struct vfio_user_cap_header *h, const uint8_t *cap,
            size_t avail, void *opaque)
{
    struct caps_seen *s = opaque;
    size_t n = sizeof(s->cap[0].body);

    if (avail < n)
        n = avail;

    assert_true(s->n < N_ELEM(s->cap));
    s->cap[s->n].h = *h;
    s->cap[s->n].off = (size_t)(cap - s->base);
    s->cap[s->n].avail = avail;
    memcpy(s->cap[s->n].body, cap, n); /* reads inside the walk's bound */
    s->n++;
    if (s->fail_at != 0 && (size_t)s->fail_at == s->n)
        return -ENOENT;
    return 0;
}

/* Walk a heap copy of exactly @len bytes of @info. */
static int
walk_exact(const void *info, size_t len, struct caps_seen *seen)
{
    uint8_t *copy = malloc(len ? len : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, info, len);
    seen->n = 0;
    seen->base = copy;
    rc = umdev_wire_region_caps_walk(copy, len, collect_cap, seen);
    free(copy);
    return rc;
}

static void
test_region_info(void **state)
{
    struct vfio_user_cap_sparse_mmap sp;
    struct vfio_user_sparse_area area[2];
    struct vfio_user_cap_type ty;
    struct caps_seen seen = { 0 };
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    w = round_trip_named("DEVICE_GET_REGION_INFO", &m);
    EQ(&w.u.region_info, &k_region_req, argsz);
    EQ(&w.u.region_info, &k_region_req, flags);
    EQ(&w.u.region_info, &k_region_req, index);
    EQ(&w.u.region_info, &k_region_req, cap_offset);
    EQ(&w.u.region_info, &k_region_req, size);
    EQ(&w.u.region_info, &k_region_req, offset);

    w = round_trip_named("DEVICE_GET_REGION_INFO reply", &m);
    EQ(&w.u.region_info, &k_region.info, argsz);
    EQ(&w.u.region_info, &k_region.info, flags);
    EQ(&w.u.region_info, &k_region.info, index);
    EQ(&w.u.region_info, &k_region.info, cap_offset);
    EQ(&w.u.region_info, &k_region.info, size);
    EQ(&w.u.region_info, &k_region.info, offset);

    check_rc("GET_REGION_INFO reply", "walk",
             walk_exact(w.payload, w.payload_len, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.cap[0].h.id, VFIO_USER_REGION_CAP_SPARSE_MMAP);
    assert_int_equal(seen.cap[0].h.version, 1);
    assert_int_equal(seen.cap[0].h.next, 80);
    assert_int_equal(seen.cap[0].off, 32);
    assert_int_equal(seen.cap[0].avail, sizeof(k_region) - 32);
    assert_int_equal(seen.cap[1].h.id, VFIO_USER_REGION_CAP_TYPE);
    assert_int_equal(seen.cap[1].h.version, 1);
    assert_int_equal(seen.cap[1].h.next, 0);
    assert_int_equal(seen.cap[1].off, 80);
    assert_int_equal(seen.cap[1].avail, sizeof(ty));

    memcpy(&sp, seen.cap[0].body, sizeof(sp));
    memcpy(area, seen.cap[0].body + sizeof(sp), sizeof(area));
    assert_int_equal(sp.nr_areas, 2);
    for (i = 0; i < 2; i++) {
        EQ(&area[i], &k_region.areas[i], offset);
        EQ(&area[i], &k_region.areas[i], size);
    }
    memcpy(&ty, seen.cap[1].body, sizeof(ty));
    EQ(&ty, &k_region.type, type);
    EQ(&ty, &k_region.type, subtype);
}

/* Build the region reply with its chain changed, and walk it. */
static int
walk_modified(uint32_t cap_offset, uint32_t sparse_next, uint32_t type_next,
              struct caps_seen *seen)
{
    struct region_reply r = k_region;

    r.info.cap_offset = cap_offset;
    r.sparse.header.next = sparse_next;
    r.type.header.next = type_next;
    return walk_exact(&r, sizeof(r), seen);
}

static void
test_region_caps_walk_bad(void **state)
{
    struct caps_seen seen = { 0 };
    struct region_reply r;

    (void)state;
    /* The unmodified chain walks; the helpers are sound. */
    check_rc("walk", "valid", walk_modified(32, 80, 0, &seen), 0);
    assert_int_equal(seen.n, 2);
    /* Next pointing at itself. */
    check_rc("walk", "type -> itself", walk_modified(32, 80, 80, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 2);
    check_rc("walk", "sparse -> itself", walk_modified(32, 32, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 1);
    /* Backwards: to the first cap, into the region info, below it. */
    check_rc("walk", "type -> sparse", walk_modified(32, 80, 32, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 2);
    check_rc("walk", "type -> info", walk_modified(32, 80, 8, &seen),
             -EINVAL);
    check_rc("walk", "cap_offset inside info", walk_modified(16, 80, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 0);
    /* Into the middle of the previous header. */
    check_rc("walk", "sparse -> sparse + 4", walk_modified(32, 36, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 1);
    /* Misaligned. */
    check_rc("walk", "misaligned next", walk_modified(32, 82, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 1);
    check_rc("walk", "misaligned cap_offset", walk_modified(34, 80, 0, &seen),
             -EINVAL);
    assert_int_equal(seen.n, 0);
    /* Beyond the buffer: past it, and a header straddling its end. */
    check_rc("walk", "next past end",
             walk_modified(32, sizeof(r), 0, &seen), -EINVAL);
    check_rc("walk", "next straddles end",
             walk_modified(32, sizeof(r) - 4, 0, &seen), -EINVAL);
    check_rc("walk", "next far away",
             walk_modified(32, 0xfffffff8u, 0, &seen), -EINVAL);
    check_rc("walk", "cap_offset past end",
             walk_modified(sizeof(r), 80, 0, &seen), -EINVAL);
    assert_int_equal(seen.n, 0);
    /* argsz below the buffer bounds the chain: the type cap lies past it. */
    r = k_region;
    r.info.argsz = 80;
    check_rc("walk", "argsz cuts chain", walk_exact(&r, sizeof(r), &seen),
             -EINVAL);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.cap[0].avail, 80 - 32);
    /* Shorter than the region info itself. */
    check_rc("walk", "len 31", walk_exact(&k_region, 31, &seen), -EINVAL);
    /* No CAPS flag, or no cap_offset: nothing to walk. */
    r = k_region;
    r.info.flags &= ~REGION_FLAG_CAPS;
    check_rc("walk", "no CAPS flag", walk_exact(&r, sizeof(r), &seen), 0);
    assert_int_equal(seen.n, 0);
    r = k_region;
    r.info.cap_offset = 0;
    check_rc("walk", "cap_offset 0", walk_exact(&r, sizeof(r), &seen), 0);
    assert_int_equal(seen.n, 0);
    /* A callback error stops the walk and is returned. */
    seen.fail_at = 1;
    check_rc("walk", "callback error", walk_modified(32, 80, 0, &seen),
             -ENOENT);
    assert_int_equal(seen.n, 1);
}

static void
test_region_io_fds(void **state)
{
    struct vfio_user_sub_region_ioeventfd sub;
    struct vfio_user_region_io_fds_request head;
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    w = round_trip_named("DEVICE_GET_REGION_IO_FDS", &m);
    EQ(&w.u.io_fds, &k_io_fds_req, argsz);
    EQ(&w.u.io_fds, &k_io_fds_req, flags);
    EQ(&w.u.io_fds, &k_io_fds_req, index);
    EQ(&w.u.io_fds, &k_io_fds_req, count);

    w = round_trip_named("DEVICE_GET_REGION_IO_FDS reply", &m);
    EQ(&w.u.io_fds, &k_io_fds.head, argsz);
    EQ(&w.u.io_fds, &k_io_fds.head, flags);
    EQ(&w.u.io_fds, &k_io_fds.head, index);
    EQ(&w.u.io_fds, &k_io_fds.head, count);
    assert_int_equal(w.data_len, 2 * sizeof(sub));
    for (i = 0; i < 2; i++) {
        memcpy(&sub, w.data + i * sizeof(sub), sizeof(sub));
        EQ(&sub, &k_io_fds.sub[i], offset);
        EQ(&sub, &k_io_fds.sub[i], size);
        EQ(&sub, &k_io_fds.sub[i], fd_index);
        EQ(&sub, &k_io_fds.sub[i], type);
        EQ(&sub, &k_io_fds.sub[i], flags);
        EQ(&sub, &k_io_fds.sub[i], padding);
        EQ(&sub, &k_io_fds.sub[i], datamatch);
    }
    /* Count beyond the sub-regions carried, argsz claiming they are all
     * there. */
    head = k_io_fds.head;
    head.count = 3;
    enc(&m, VFIO_USER_DEVICE_GET_REGION_IO_FDS, REPLY, &head, sizeof(head),
        k_io_fds.sub, sizeof(k_io_fds.sub));
    check_rc("IO_FDS reply", "count 3 of 2", rc_of(&m, 2), -EINVAL);
    /* A reply to a too-small argsz: the needed size, no sub-regions. */
    head.count = 2;
    head.argsz = sizeof(k_io_fds);
    enc(&m, VFIO_USER_DEVICE_GET_REGION_IO_FDS, REPLY, &head, sizeof(head),
        NULL, 0);
    check_rc("IO_FDS reply", "argsz too small", rc_of(&m, 0), 0);
}

static void
test_irq_info(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("DEVICE_GET_IRQ_INFO", &m);
    EQ(&w.u.irq_info, &k_irq_info_req, argsz);
    EQ(&w.u.irq_info, &k_irq_info_req, flags);
    EQ(&w.u.irq_info, &k_irq_info_req, index);
    EQ(&w.u.irq_info, &k_irq_info_req, count);
    w = round_trip_named("DEVICE_GET_IRQ_INFO reply", &m);
    EQ(&w.u.irq_info, &k_irq_info, argsz);
    EQ(&w.u.irq_info, &k_irq_info, flags);
    EQ(&w.u.irq_info, &k_irq_info, index);
    EQ(&w.u.irq_info, &k_irq_info, count);
}

static void
check_irq_set(const struct vfio_user_irq_set *got,
              const struct vfio_user_irq_set *want)
{
    EQ(got, want, argsz);
    EQ(got, want, flags);
    EQ(got, want, index);
    EQ(got, want, start);
    EQ(got, want, count);
}

static void
test_set_irqs(void **state)
{
    struct vfio_user_irq_set s;
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("SET_IRQS none", &m);
    check_irq_set(&w.u.irq_set, &k_irqs_none);
    w = round_trip_named("SET_IRQS bool", &m);
    check_irq_set(&w.u.irq_set, &k_irqs_bool);
    assert_int_equal(w.data[0], 1);
    assert_int_equal(w.data[1], 0);
    assert_int_equal(w.data[2], 1);
    w = round_trip_named("SET_IRQS eventfd", &m);
    check_irq_set(&w.u.irq_set, &k_irqs_fd);
    /* Eventfd with no fds de-assigns. */
    check_rc("SET_IRQS eventfd", "0 fds", rc_of(&m, 0), 0);
    round_trip_named("SET_IRQS reply", &m);
    /* Count 0 with DATA_NONE disables the whole index. */
    s = (struct vfio_user_irq_set){ 20, IRQ_DATA_NONE | IRQ_ACTION_TRIGGER,
                                    2, 0, 0 };
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    check_rc("SET_IRQS", "disable all", rc_of(&m, 0), 0);
    /* Bools with MASK, and a trailing byte past count is not data. */
    s = k_irqs_bool;
    s.flags = IRQ_DATA_BOOL | IRQ_ACTION_MASK;
    s.argsz = 24;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), "\1\1\0\7", 4);
    check_rc("SET_IRQS bool", "extra byte", umdev_wire_decode(m.b, m.len, 0,
                                                              NULL, &w),
             0);
    assert_int_equal(w.data_len, 3);
}

/* QEMU's set_irqs: argsz 20 for eventfds, chunks of valid or of -1 fds. */
static void
test_set_irqs_qemu_chunks(void **state)
{
    struct vfio_user_irq_set s = { 20, IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER,
                                   2, 0, 3 };
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    check_rc("QEMU SET_IRQS", "3 fds", umdev_wire_decode(m.b, m.len, 3, NULL,
                                                         &w),
             0);
    check_irq_set(&w.u.irq_set, &s);
    s.start = 3;
    s.count = 2;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    check_rc("QEMU SET_IRQS", "2 x -1", rc_of(&m, 0), 0);
}

static void
test_set_irqs_bad(void **state)
{
    static const uint32_t bad_flags[] = {
        IRQ_DATA_NONE | IRQ_DATA_BOOL | IRQ_ACTION_TRIGGER,
        IRQ_DATA_NONE | IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER,
        IRQ_DATA_BOOL | IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER,
        IRQ_DATA_NONE | IRQ_ACTION_MASK | IRQ_ACTION_UNMASK,
        IRQ_DATA_NONE | IRQ_ACTION_MASK | IRQ_ACTION_TRIGGER,
        IRQ_DATA_NONE | IRQ_ACTION_UNMASK | IRQ_ACTION_TRIGGER,
        IRQ_DATA_NONE,        /* no action */
        IRQ_ACTION_TRIGGER,   /* no data type */
        IRQ_DATA_NONE | IRQ_ACTION_TRIGGER | (1u << 6),
        IRQ_DATA_NONE | IRQ_ACTION_TRIGGER | (1u << 31),
    };
    struct vfio_user_irq_set s;
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEM(bad_flags); i++) {
        s = k_irqs_none;
        s.flags = bad_flags[i];
        enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
        if (rc_of(&m, 0) != -EINVAL)
            fail_msg("SET_IRQS flags %#x: rc %d, want %d", bad_flags[i],
                     rc_of(&m, 0), -EINVAL);
    }
    s = k_irqs_none;
    s.start = UINT32_MAX;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    check_rc("SET_IRQS", "start+count wraps", rc_of(&m, 0), -EINVAL);
    /* Bools: fewer than count, argsz not covering them, argsz too big. */
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &k_irqs_bool, sizeof(s), k_bools,
        2);
    check_rc("SET_IRQS bool", "2 of 3", rc_of(&m, 0), -EINVAL);
    s = k_irqs_bool;
    s.argsz = 22;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), k_bools, 3);
    check_rc("SET_IRQS bool", "argsz 22", rc_of(&m, 0), -EINVAL);
    s.argsz = 24;
    enc(&m, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), k_bools, 3);
    check_rc("SET_IRQS bool", "argsz > payload", rc_of(&m, 0), -EINVAL);
    /* Eventfds: neither zero nor count. */
    enc_sample(&m, sample("SET_IRQS eventfd"));
    check_rc("SET_IRQS eventfd", "3 of 4 fds", rc_of(&m, 3), -EBADF);
    check_rc("SET_IRQS eventfd", "5 of 4 fds", rc_of(&m, 5), -EBADF);
    enc_sample(&m, sample("SET_IRQS bool"));
    check_rc("SET_IRQS bool", "1 fd", rc_of(&m, 1), -EBADF);
}

static void
check_region_access(const struct vfio_user_region_access *got,
                    const struct vfio_user_region_access *want)
{
    EQ(got, want, offset);
    EQ(got, want, region);
    EQ(got, want, count);
}

static void
test_region_read_write(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("REGION_READ", &m);
    check_region_access(&w.u.region_access, &k_rr);
    w = round_trip_named("REGION_READ reply", &m);
    check_region_access(&w.u.region_access, &k_rr);
    w = round_trip_named("REGION_WRITE", &m);
    check_region_access(&w.u.region_access, &k_rw);
    assert_int_equal(w.hdr.flags & VFIO_USER_F_NO_REPLY, 0);
    w = round_trip_named("REGION_WRITE posted", &m);
    check_region_access(&w.u.region_access, &k_rw);
    assert_int_equal(w.hdr.flags, VFIO_USER_F_NO_REPLY);
    round_trip_named("REGION_WRITE reply", &m);
}

static void
test_region_access_bad(void **state)
{
    struct vfio_user_region_access a;
    struct msg m;

    (void)state;
    /* REGION_WRITE data shorter and longer than count. */
    enc(&m, VFIO_USER_REGION_WRITE, 0, &k_rw, 16, k_rw_data, 3);
    check_rc("REGION_WRITE", "3 of 4 bytes", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_REGION_WRITE, 0, &k_rw, 16, "wxyz!", 5);
    check_rc("REGION_WRITE", "5 of 4 bytes", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_REGION_WRITE, 0, &k_rw, 16, NULL, 0);
    check_rc("REGION_WRITE", "no data", rc_of(&m, 0), -EINVAL);
    /* REGION_READ: data on the request, and short data in the reply. */
    enc(&m, VFIO_USER_REGION_READ, 0, &k_rr, 16, k_rr_data, 4);
    check_rc("REGION_READ", "with data", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_REGION_READ, REPLY, &k_rr, 16, k_rr_data, 3);
    check_rc("REGION_READ reply", "3 of 4 bytes", rc_of(&m, 0), -EINVAL);
    /* Count 0 and an offset that wraps. */
    a = k_rr;
    a.count = 0;
    enc(&m, VFIO_USER_REGION_READ, 0, &a, 16, NULL, 0);
    check_rc("REGION_READ", "count 0", rc_of(&m, 0), -EINVAL);
    a = k_rr;
    a.offset = UINT64_MAX - 1;
    enc(&m, VFIO_USER_REGION_READ, 0, &a, 16, NULL, 0);
    check_rc("REGION_READ", "offset wraps", rc_of(&m, 0), -EINVAL);
}

static void
test_write_multi(void **state)
{
    struct vfio_user_write_multi_entry e;
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    w = round_trip_named("REGION_WRITE_MULTI", &m);
    assert_int_equal(w.u.write_multi.count, 3);
    for (i = 0; i < 3; i++) {
        umdev_wire_write_multi_entry(&w, i, &e);
        EQ(&e, &k_multi.e[i], offset);
        EQ(&e, &k_multi.e[i], region);
        EQ(&e, &k_multi.e[i], count);
        assert_memory_equal(e.data, k_multi.e[i].data, sizeof(e.data));
    }
    w = round_trip_named("REGION_WRITE_MULTI reply", &m);
    assert_int_equal(w.u.write_multi.count, 3);
}

/* A WRITE_MULTI of @n copies of entry 0, wr_cnt @wr_cnt, entry @bad_i
 * changed to count @bad_count (when @bad_i < n). */
static int
write_multi_rc(uint64_t wr_cnt, size_t n, size_t bad_i, uint32_t bad_count)
{
    struct vfio_user_write_multi_entry e[UMDEV_WIRE_MAX_WRITE_MULTI + 1];
    struct msg m;
    size_t i;

    assert_true(n <= N_ELEM(e));
    for (i = 0; i < n; i++) {
        e[i] = k_multi.e[0];
        e[i].offset += 4 * i;
    }
    if (bad_i < n)
        e[bad_i].count = bad_count;
    enc(&m, VFIO_USER_REGION_WRITE_MULTI, 0, &wr_cnt, 8, e, n * sizeof(e[0]));
    return rc_of(&m, 0);
}

static void
test_write_multi_bad(void **state)
{
    const size_t max = UMDEV_WIRE_MAX_WRITE_MULTI;

    (void)state;
    check_rc("WRITE_MULTI", "3 entries", write_multi_rc(3, 3, 3, 0), 0);
    check_rc("WRITE_MULTI", "max entries", write_multi_rc(max, max, max, 0),
             0);
    check_rc("WRITE_MULTI", "entry count 0", write_multi_rc(3, 3, 1, 0),
             -EINVAL);
    check_rc("WRITE_MULTI", "entry count 9", write_multi_rc(3, 3, 2, 9),
             -EINVAL);
    check_rc("WRITE_MULTI", "entry count 8", write_multi_rc(3, 3, 2, 8), 0);
    check_rc("WRITE_MULTI", "wr_cnt 0", write_multi_rc(0, 0, 0, 0), -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt 0, 1 entry", write_multi_rc(0, 1, 1, 0),
             -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt over max",
             write_multi_rc(max + 1, max + 1, max + 1, 0), -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt 2^32 + 1",
             write_multi_rc((1ull << 32) + 1, 1, 1, 0), -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt 4, 3 entries", write_multi_rc(4, 3, 3, 0),
             -EINVAL);
    check_rc("WRITE_MULTI", "wr_cnt 2, 3 entries", write_multi_rc(2, 3, 3, 0),
             -EINVAL);
}

static void
test_write_multi_entry_wraps(void **state)
{
    struct multi_req r = k_multi;
    struct msg m;

    (void)state;
    r.e[1].offset = UINT64_MAX;
    enc(&m, VFIO_USER_REGION_WRITE_MULTI, 0, &r, sizeof(r), NULL, 0);
    check_rc("WRITE_MULTI", "offset wraps", rc_of(&m, 0), -EINVAL);
}

static void
test_dma_read_write(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("DMA_READ", &m);
    EQ(&w.u.dma_access, &k_dr, addr);
    EQ(&w.u.dma_access, &k_dr, count);
    w = round_trip_named("DMA_READ reply", &m);
    EQ(&w.u.dma_access, &k_dr, addr);
    EQ(&w.u.dma_access, &k_dr, count);
    w = round_trip_named("DMA_WRITE", &m);
    EQ(&w.u.dma_access, &k_dw, addr);
    EQ(&w.u.dma_access, &k_dw, count);
    /* The spec's 12-byte reply, and the 16-byte one others send. */
    w = round_trip_named("DMA_WRITE reply", &m);
    assert_int_equal(m.len, HDR + 12);
    EQ(&w.u.dma_access, &k_dw_reply, addr);
    EQ(&w.u.dma_access, &k_dw_reply, count);
    w = round_trip_named("DMA_WRITE reply 16", &m);
    EQ(&w.u.dma_access, &k_dw, addr);
    EQ(&w.u.dma_access, &k_dw, count);
}

static void
test_dma_access_bad(void **state)
{
    struct vfio_user_dma_access d;
    struct msg m;

    (void)state;
    enc(&m, VFIO_USER_DMA_WRITE, 0, &k_dw, 16, k_dw_data, 5);
    check_rc("DMA_WRITE", "5 of 6 bytes", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_DMA_READ, 0, &k_dr, 16, k_dr_data, 8);
    check_rc("DMA_READ", "with data", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_DMA_READ, REPLY, &k_dr, 16, k_dr_data, 7);
    check_rc("DMA_READ reply", "7 of 8 bytes", rc_of(&m, 0), -EINVAL);
    d = k_dr;
    d.count = 0;
    enc(&m, VFIO_USER_DMA_READ, 0, &d, 16, NULL, 0);
    check_rc("DMA_READ", "count 0", rc_of(&m, 0), -EINVAL);
    d = k_dr;
    d.addr = UINT64_MAX - 3;
    enc(&m, VFIO_USER_DMA_READ, 0, &d, 16, NULL, 0);
    check_rc("DMA_READ", "addr wraps", rc_of(&m, 0), -EINVAL);
}

static void
test_device_reset(void **state)
{
    struct msg m;

    (void)state;
    round_trip_named("DEVICE_RESET", &m);
    assert_int_equal(m.len, 16);
    round_trip_named("DEVICE_RESET reply", &m);
    assert_int_equal(m.len, 16);
}

static void
test_device_feature(void **state)
{
    struct umdev_wire_msg w;
    uint64_t flags;
    struct msg m;

    (void)state;
    w = round_trip_named("DEVICE_FEATURE", &m);
    EQ(&w.u.feature, &k_feat, argsz);
    EQ(&w.u.feature, &k_feat, flags);
    w = round_trip_named("DEVICE_FEATURE reply", &m);
    EQ(&w.u.feature, &k_feat, argsz);
    EQ(&w.u.feature, &k_feat, flags);
    memcpy(&flags, w.data, sizeof(flags));
    assert_int_equal(flags, MIGRATION_STOP_COPY | MIGRATION_PRE_COPY);
}

static void
test_migration_data(void **state)
{
    struct umdev_wire_msg w;
    struct msg m;

    (void)state;
    w = round_trip_named("MIG_DATA_READ", &m);
    EQ(&w.u.mig, &k_mig_req, argsz);
    EQ(&w.u.mig, &k_mig_req, size);
    w = round_trip_named("MIG_DATA_READ reply", &m);
    EQ(&w.u.mig, &k_mig_reply, argsz);
    EQ(&w.u.mig, &k_mig_reply, size);
    w = round_trip_named("MIG_DATA_WRITE", &m);
    EQ(&w.u.mig, &k_mig_write, argsz);
    EQ(&w.u.mig, &k_mig_write, size);
    round_trip_named("MIG_DATA_WRITE reply", &m);

    enc(&m, VFIO_USER_MIG_DATA_WRITE, 0, &k_mig_write, 8, k_mig_bytes, 4);
    check_rc("MIG_DATA_WRITE", "4 of 5 bytes", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_MIG_DATA_READ, 0, &k_mig_req, 8, k_mig_bytes, 5);
    check_rc("MIG_DATA_READ", "with data", rc_of(&m, 0), -EINVAL);
    enc(&m, VFIO_USER_MIG_DATA_READ, REPLY, &k_mig_reply, 8, k_mig_bytes, 4);
    check_rc("MIG_DATA_READ reply", "4 of 5 bytes", rc_of(&m, 0), -EINVAL);
}

/* One byte less than the fixed part, for every message that has one. */
static void
test_short_payload_every_message(void **state)
{
    struct msg m;
    size_t i, n = 0;

    (void)state;
    for (i = 0; i < N_ELEM(samples); i++) {
        const struct sample *s = &samples[i];

        if (s->min_fixed == 0)
            continue;
        enc(&m, s->cmd, s->flags, s->fixed, s->min_fixed - 1, NULL, 0);
        check_rc(s->name, "short", rc_of(&m, s->nfds), -EINVAL);
        n++;
    }
    assert_int_equal(n, 36);
}

static void
test_bad_argsz_every_message(void **state)
{
    struct msg m;
    size_t i, n = 0;

    (void)state;
    for (i = 0; i < N_ELEM(samples); i++) {
        const struct sample *s = &samples[i];

        if (s->argsz_min == 0)
            continue;
        enc_sample(&m, s);
        put32(&m, HDR, s->argsz_min - 1);
        check_rc(s->name, "argsz - 1", rc_of(&m, s->nfds), -EINVAL);
        put32(&m, HDR, 0);
        check_rc(s->name, "argsz 0", rc_of(&m, s->nfds), -EINVAL);
        n++;
    }
    assert_int_equal(n, 22);
}

static void
test_data_over_limit_every_message(void **state)
{
    static const struct umdev_wire_limits small = {
        .max_data_xfer_size = 4096, .max_msg_fds = UMDEV_WIRE_MAX_MSG_FDS,
    };
    struct msg m;
    size_t i, n = 0;

    (void)state;
    for (i = 0; i < N_ELEM(samples); i++) {
        const struct sample *s = &samples[i];

        if (s->count_size == 0)
            continue;
        enc_sample(&m, s);
        check_rc(s->name, "small limit",
                 decode_exact(m.b, m.len, s->nfds, &small), 0);
        put_field(&m, s->count_off, s->count_size,
                  UMDEV_WIRE_DEFAULT_MAX_DATA_XFER + 1);
        check_rc(s->name, "default limit + 1", rc_of(&m, s->nfds), -E2BIG);
        put_field(&m, s->count_off, s->count_size, 4097);
        check_rc(s->name, "small limit + 1",
                 decode_exact(m.b, m.len, s->nfds, &small), -E2BIG);
        if (s->count_size == 8) {
            put_field(&m, s->count_off, 8, (1ull << 32) + 4);
            check_rc(s->name, "2^32 + 4", rc_of(&m, s->nfds), -E2BIG);
        }
        n++;
    }
    assert_int_equal(n, 10);
}

/* Exactly max_data_xfer_size of data is fine; one more byte is not. */
static void
test_data_at_limit(void **state)
{
    const size_t max = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER;
    size_t cap = HDR + 16 + max + 1;
    uint8_t *buf = calloc(1, cap), *zeros = calloc(1, max + 1);
    struct vfio_user_region_access a = { 0, 0, (uint32_t)max };
    struct vfio_user_dma_access d = { 0x100000, max };
    ssize_t n;

    (void)state;
    assert_non_null(buf);
    assert_non_null(zeros);
    n = umdev_wire_encode(buf, cap, 1, VFIO_USER_REGION_WRITE, 0, &a, 16,
                          zeros, max);
    assert_int_equal(n, HDR + 16 + max);
    check_rc("REGION_WRITE", "max", decode_exact(buf, (size_t)n, 0, NULL),
             0);
    n = umdev_wire_encode(buf, cap, 1, VFIO_USER_DMA_READ, REPLY, &d, 16,
                          zeros, max);
    check_rc("DMA_READ reply", "max", decode_exact(buf, (size_t)n, 0, NULL),
             0);
    a.count++;
    n = umdev_wire_encode(buf, cap, 1, VFIO_USER_REGION_WRITE, 0, &a, 16,
                          zeros, max + 1);
    check_rc("REGION_WRITE", "max + 1",
             decode_exact(buf, (size_t)n, 0, NULL), -E2BIG);
    free(zeros);
    free(buf);
}

static void
test_fds_every_message(void **state)
{
    static const struct umdev_wire_limits no_fds = {
        .max_data_xfer_size = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER,
    };
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEM(samples); i++) {
        const struct sample *s = &samples[i];

        enc_sample(&m, s);
        check_rc(s->name, "max fds + 1",
                 rc_of(&m, UMDEV_WIRE_MAX_MSG_FDS + 1), -EBADF);
        check_rc(s->name, "lim: no fds",
                 decode_exact(m.b, m.len, s->nfds, &no_fds),
                 s->nfds ? -EBADF : 0);
        switch (s->fds) {
        case FDS_NONE:
            check_rc(s->name, "1 fd", rc_of(&m, 1), -EBADF);
            break;
        case FDS_MAP:
            check_rc(s->name, "0 fds", rc_of(&m, 0), 0);
            check_rc(s->name, "2 fds", rc_of(&m, 2), -EBADF);
            break;
        case FDS_EXACT:
            check_rc(s->name, "0 fds", rc_of(&m, 0), 0);
            check_rc(s->name, "count + 1", rc_of(&m, s->nfds + 1), -EBADF);
            check_rc(s->name, "count - 1", rc_of(&m, s->nfds - 1), -EBADF);
            break;
        case FDS_ANY:
            check_rc(s->name, "max fds", rc_of(&m, UMDEV_WIRE_MAX_MSG_FDS),
                     0);
            break;
        }
    }
}

static void
test_unknown_commands(void **state)
{
    static const uint16_t unknown[] = { 0, 14, 19, 0xffff };
    struct vfio_user_header req, err;
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEM(unknown); i++) {
        char name[16];

        snprintf(name, sizeof(name), "command %u", unknown[i]);
        enc(&m, unknown[i], 0, NULL, 0, NULL, 0);
        check_rc(name, "command", rc_of(&m, 0), -ENOSYS);
        enc(&m, unknown[i], 0, k_rr_data, 4, NULL, 0);
        check_rc(name, "command + payload", rc_of(&m, 0), -ENOSYS);
        enc(&m, unknown[i], REPLY, NULL, 0, NULL, 0);
        check_rc(name, "reply", rc_of(&m, 0), -ENOSYS);
        memcpy(&req, m.b, sizeof(req));
        umdev_wire_encode_error(&err, &req, EIO);
        check_rc(name, "error reply", decode_exact(&err, sizeof(err), 0, NULL),
                 -ENOSYS);
    }
}

static void
test_msg_size_mismatch(void **state)
{
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEM(samples); i++) {
        const struct sample *s = &samples[i];

        enc_sample(&m, s);
        m.b[m.len] = 0;
        check_rc(s->name, "len + 1",
                 decode_exact(m.b, m.len + 1, s->nfds, NULL), -EPROTO);
        check_rc(s->name, "len - 1",
                 decode_exact(m.b, m.len - 1, s->nfds, NULL), -EPROTO);
        put32(&m, 4, (uint32_t)m.len + 1);
        check_rc(s->name, "msg_size + 1", rc_of(&m, s->nfds), -EPROTO);
        put32(&m, 4, UINT32_MAX);
        check_rc(s->name, "msg_size max", rc_of(&m, s->nfds), -EPROTO);
    }
}

static void
test_bad_headers(void **state)
{
    struct vfio_user_header h;
    struct msg m;
    uint32_t v;

    (void)state;
    /* msg_size below the header, and a buffer shorter than one. */
    for (v = 0; v < HDR; v++) {
        enc(&m, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
        put32(&m, 4, v);
        check_rc("header", "msg_size < 16", umdev_wire_decode_header(m.b, &h),
                 -EPROTO);
        check_rc("header", "msg_size < 16 (decode)", rc_of(&m, 0), -EPROTO);
        enc(&m, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
        check_rc("header", "len < 16", decode_exact(m.b, v, 0, NULL),
                 -EPROTO);
    }
    /* Unknown type values. */
    for (v = 2; v <= VFIO_USER_F_TYPE_MASK; v++) {
        enc(&m, VFIO_USER_DEVICE_RESET, v, NULL, 0, NULL, 0);
        check_rc("header", "type", umdev_wire_decode_header(m.b, &h),
                 -EPROTO);
        check_rc("header", "type (decode)", rc_of(&m, 0), -EPROTO);
    }
    /* The Error flag on a command. */
    enc(&m, VFIO_USER_DEVICE_RESET, VFIO_USER_F_ERROR, NULL, 0, NULL, 0);
    check_rc("header", "error on command", rc_of(&m, 0), -EPROTO);
    /* Every reserved bit, on a command and on a reply. */
    for (v = 6; v < 32; v++) {
        enc(&m, VFIO_USER_DEVICE_RESET, 1u << v, NULL, 0, NULL, 0);
        check_rc("header", "reserved bit on command", rc_of(&m, 0), -EPROTO);
        enc(&m, VFIO_USER_DEVICE_RESET, REPLY | (1u << v), NULL, 0, NULL, 0);
        check_rc("header", "reserved bit on reply", rc_of(&m, 0), -EPROTO);
    }
    /* A good header decodes field for field. */
    enc(&m, VFIO_USER_REGION_READ, REPLY | VFIO_USER_F_NO_REPLY, NULL, 0,
        NULL, 0);
    put32(&m, 12, 0x77);
    check_rc("header", "good", umdev_wire_decode_header(m.b, &h), 0);
    assert_int_equal(h.msg_id, MSG_ID);
    assert_int_equal(h.cmd, VFIO_USER_REGION_READ);
    assert_int_equal(h.msg_size, 16);
    assert_int_equal(h.flags, REPLY | VFIO_USER_F_NO_REPLY);
    assert_int_equal(h.error, 0x77);
}

/* Error replies carry only the header; any command may get one. */
static void
test_error_replies(void **state)
{
    struct vfio_user_header req = { .msg_id = 9, .msg_size = 16 };
    struct vfio_user_header err;
    struct umdev_wire_msg w;
    struct msg m;
    size_t i;

    (void)state;
    for (i = 0; i < N_ELEM(known_cmds); i++) {
        const char *name = umdev_wire_cmd_name(known_cmds[i]);

        req.cmd = known_cmds[i];
        umdev_wire_encode_error(&err, &req, -EIO);
        check_rc(name, "error reply",
                 umdev_wire_decode(&err, sizeof(err), 0, NULL, &w), 0);
        assert_true(w.is_reply);
        assert_int_equal(w.hdr.msg_id, 9);
        assert_int_equal(w.hdr.cmd, known_cmds[i]);
        assert_int_equal(w.hdr.flags, REPLY | VFIO_USER_F_ERROR);
        assert_int_equal(w.hdr.error, EIO);
        assert_int_equal(w.payload_len, 0);
        assert_int_equal(w.data_len, 0);
        check_rc(name, "error reply + fd",
                 decode_exact(&err, sizeof(err), 1, NULL), -EBADF);
        /* Errno 0 is allowed with the flag; a payload is ignored. */
        enc(&m, known_cmds[i], REPLY | VFIO_USER_F_ERROR, k_rr_data, 3, NULL,
            0);
        check_rc(name, "error reply + 3 bytes", rc_of(&m, 0), 0);
    }
}

static void
test_encode(void **state)
{
    const uint8_t fixed[3] = { 0xf1, 0xf2, 0xf3 }, data[2] = { 0xd1, 0xd2 };
    struct vfio_user_header h;
    uint8_t out[HDR + 5 + 1];
    uint32_t v;

    (void)state;
    memset(out, 0xee, sizeof(out));
    assert_int_equal(umdev_wire_encode(out, HDR + 5, 0x1234,
                                       VFIO_USER_REGION_WRITE,
                                       VFIO_USER_F_NO_REPLY, fixed, 3, data,
                                       2),
                     HDR + 5);
    memcpy(&h, out, sizeof(h));
    assert_int_equal(h.msg_id, 0x1234);
    assert_int_equal(h.cmd, VFIO_USER_REGION_WRITE);
    assert_int_equal(h.msg_size, HDR + 5);
    assert_int_equal(h.flags, VFIO_USER_F_NO_REPLY);
    assert_int_equal(h.error, 0);
    /* The spec's header offsets, read independently of the struct. */
    memcpy(&v, out + 4, 4);
    assert_int_equal(v, HDR + 5);
    memcpy(&v, out + 8, 4);
    assert_int_equal(v, VFIO_USER_F_NO_REPLY);
    assert_memory_equal(out + HDR, fixed, 3);
    assert_memory_equal(out + HDR + 3, data, 2);
    assert_int_equal(out[HDR + 5], 0xee); /* nothing past the message */

    /* Too small by one byte, by everything, and sizes that overflow. */
    assert_int_equal(umdev_wire_encode(out, HDR + 4, 1, 1, 0, fixed, 3, data,
                                       2),
                     -E2BIG);
    assert_int_equal(umdev_wire_encode(out, 0, 1, 13, 0, NULL, 0, NULL, 0),
                     -E2BIG);
    assert_int_equal(umdev_wire_encode(out, HDR - 1, 1, 13, 0, NULL, 0, NULL,
                                       0),
                     -E2BIG);
    assert_int_equal(umdev_wire_encode(out, SIZE_MAX, 1, 1, 0, fixed,
                                       SIZE_MAX, data, 2),
                     -E2BIG);
    assert_int_equal(umdev_wire_encode(out, SIZE_MAX, 1, 1, 0, fixed, 0,
                                       data, UINT32_MAX),
                     -E2BIG);
    assert_int_equal(umdev_wire_encode(out, HDR, 1, 13, 0, NULL, 0, NULL, 0),
                     HDR);

    assert_int_equal(umdev_wire_size(0, 0), 16);
    assert_int_equal(umdev_wire_size(8, 4), 28);
    assert_int_equal(umdev_wire_size(0, UINT32_MAX - HDR), UINT32_MAX);
    assert_int_equal(umdev_wire_size(0, UINT32_MAX - HDR + 1), 0);
    assert_int_equal(umdev_wire_size(SIZE_MAX, 0), 0);
    assert_int_equal(umdev_wire_size(SIZE_MAX - 8, 16), 0);
}

static void
test_encode_error(void **state)
{
    const struct vfio_user_header req = {
        .msg_id = 42, .cmd = VFIO_USER_REGION_READ, .msg_size = 32,
        .flags = VFIO_USER_F_NO_REPLY, .error = 0x55,
    };
    struct vfio_user_header out;
    struct umdev_wire_msg w;

    (void)state;
    umdev_wire_encode_error(&out, &req, -EINVAL);
    assert_int_equal(sizeof(out), 16);
    assert_int_equal(out.msg_id, 42);
    assert_int_equal(out.cmd, VFIO_USER_REGION_READ);
    assert_int_equal(out.msg_size, 16);
    assert_int_equal(out.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(out.error, EINVAL);
    umdev_wire_encode_error(&out, &req, ENOSPC);
    assert_int_equal(out.error, ENOSPC);
    check_rc("encode_error", "decodes",
             umdev_wire_decode(&out, sizeof(out), 0, NULL, &w), 0);
    assert_int_equal(w.hdr.error, ENOSPC);
}

static void
test_cmd_names(void **state)
{
    static const char *const names[] = {
        "VERSION", "DMA_MAP", "DMA_UNMAP", "DEVICE_GET_INFO",
        "DEVICE_GET_REGION_INFO", "DEVICE_GET_REGION_IO_FDS",
        "DEVICE_GET_IRQ_INFO", "DEVICE_SET_IRQS", "REGION_READ",
        "REGION_WRITE", "DMA_READ", "DMA_WRITE", "DEVICE_RESET",
        "REGION_WRITE_MULTI", "DEVICE_FEATURE", "MIG_DATA_READ",
        "MIG_DATA_WRITE",
    };
    size_t i;

    (void)state;
    assert_int_equal(N_ELEM(names), N_ELEM(known_cmds));
    for (i = 0; i < N_ELEM(known_cmds); i++)
        assert_string_equal(umdev_wire_cmd_name(known_cmds[i]), names[i]);
    assert_string_equal(umdev_wire_cmd_name(0), "UNKNOWN");
    assert_string_equal(umdev_wire_cmd_name(14), "UNKNOWN");
    assert_string_equal(umdev_wire_cmd_name(19), "UNKNOWN");
    assert_string_equal(umdev_wire_cmd_name(0xffff), "UNKNOWN");
}

/* The spec's DMA_UNMAP reply echoes the request; an empty one is taken. */
static bool
empty_reply_ok(const struct sample *s)
{
    return s->cmd == VFIO_USER_DMA_UNMAP && (s->flags & REPLY);
}

static bool
known_errno(int rc)
{
    return rc == -EPROTO || rc == -EINVAL || rc == -E2BIG || rc == -ENOSYS ||
           rc == -EBADF;
}

/*
 * Every prefix of every sample: as cut off by a short read (msg_size still
 * the full size), and with msg_size claiming the prefix, so the payload
 * checks run on it. Decoding works on exact-size heap copies.
 */
static void
test_truncations(void **state)
{
    struct msg m;
    size_t i, n;

    (void)state;
    for (i = 0; i < N_ELEM(samples); i++) {
        const struct sample *s = &samples[i];

        enc_sample(&m, s);
        for (n = 0; n <= m.len; n++) {
            int rc = decode_exact(m.b, n, s->nfds, NULL);

            if (n == m.len)
                check_rc(s->name, "full length", rc, 0);
            else
                check_rc(s->name, "cut", rc, -EPROTO);
        }
        for (n = HDR; n <= m.len; n++) {
            int rc;

            put32(&m, 4, (uint32_t)n);
            rc = decode_exact(m.b, n, s->nfds, NULL);
            if (rc != 0 && !known_errno(rc))
                fail_msg("%s: prefix %zu: rc %d", s->name, n, rc);
            if (n == m.len)
                check_rc(s->name, "full length", rc, 0);
            else if (n < HDR + s->min_fixed && rc == 0 &&
                     !(n == HDR && empty_reply_ok(s)))
                fail_msg("%s: accepted with %zu of %zu fixed bytes", s->name,
                         n - HDR, s->min_fixed);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_sample_round_trips),
        cmocka_unit_test(test_samples_cover_every_command),
        cmocka_unit_test(test_version_qemu_replay),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_version_json_bounds),
        cmocka_unit_test(test_dma_map),
        cmocka_unit_test(test_dma_map_bad),
        cmocka_unit_test(test_dma_unmap),
        cmocka_unit_test(test_dma_unmap_bad),
        cmocka_unit_test(test_device_get_info),
        cmocka_unit_test(test_region_info),
        cmocka_unit_test(test_region_caps_walk_bad),
        cmocka_unit_test(test_region_io_fds),
        cmocka_unit_test(test_irq_info),
        cmocka_unit_test(test_set_irqs),
        cmocka_unit_test(test_set_irqs_qemu_chunks),
        cmocka_unit_test(test_set_irqs_bad),
        cmocka_unit_test(test_region_read_write),
        cmocka_unit_test(test_region_access_bad),
        cmocka_unit_test(test_write_multi),
        cmocka_unit_test(test_write_multi_bad),
        cmocka_unit_test(test_write_multi_entry_wraps),
        cmocka_unit_test(test_dma_read_write),
        cmocka_unit_test(test_dma_access_bad),
        cmocka_unit_test(test_device_reset),
        cmocka_unit_test(test_device_feature),
        cmocka_unit_test(test_migration_data),
        cmocka_unit_test(test_short_payload_every_message),
        cmocka_unit_test(test_bad_argsz_every_message),
        cmocka_unit_test(test_data_over_limit_every_message),
        cmocka_unit_test(test_data_at_limit),
        cmocka_unit_test(test_fds_every_message),
        cmocka_unit_test(test_unknown_commands),
        cmocka_unit_test(test_msg_size_mismatch),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_error),
        cmocka_unit_test(test_cmd_names),
        cmocka_unit_test(test_truncations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
