/* The lib/wire tests' samples and helpers: see wire_samples.h. */
#include <stdio.h>
#include <stdlib.h>

#include "wire_samples.h"
#include "umdev/wire_codec.h"

const struct vfio_user_version k_version = { 0, 0 };
static const struct vfio_user_version k_version_reply = { 1, 2 };
static const char k_qemu_json[] = KIT_QEMU_VERSION_JSON;
const char k_server_json[] =
    "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":65536}}";
static const struct vfio_user_dma_map k_dma_map = {
    .argsz = 32,
    .flags = VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE,
    .offset = 0x2000,
    .addr = 0x100000,
    .size = 0x10000,
};
const struct vfio_user_dma_unmap k_unmap = {
    .argsz = 24,
    .flags = 0,
    .addr = 0x100000,
    .size = 0x10000,
};
static const struct vfio_user_dma_unmap k_unmap_all = {
    .argsz = 24,
    .flags = VFIO_USER_DMA_UNMAP_FLAG_ALL,
};
/* 16 pages of 4 KiB: a 2-byte bitmap. */
const struct unmap_dirty k_unmap_dirty = {
    .unmap = { .argsz = 24 + 16 + 2,
               .flags = VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
               .addr = 0x300000,
               .size = 0x10000 },
    .bitmap = { .pgsize = 4096, .size = 2 },
};
const uint8_t k_bitmap[2] = { 0xa5, 0x0f };
static const struct vfio_user_device_info k_info_req = { .argsz = 16 };
static const struct vfio_user_device_info k_info = { 16, 3, 9, 5 };
static const struct vfio_user_region_info k_region_req = {
    .argsz = 128,
    .index = 2,
};
const struct region_reply k_region = {
    .info = { .argsz = sizeof(struct region_reply),
              .flags = REGION_FLAG_READ | REGION_FLAG_WRITE | REGION_FLAG_MMAP |
                       REGION_FLAG_CAPS,
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
    .argsz = sizeof(struct io_fds_reply),
    .index = 1,
};
const struct io_fds_reply k_io_fds = {
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
    .argsz = 16,
    .index = 2,
};
static const struct vfio_user_irq_info k_irq_info = { 16, 0xb, 2, 2048 };
const struct vfio_user_irq_set k_irqs_none = {
    20, IRQ_DATA_NONE | IRQ_ACTION_TRIGGER, 1, 3, 2,
};
const struct vfio_user_irq_set k_irqs_bool = {
    23, IRQ_DATA_BOOL | IRQ_ACTION_UNMASK, 2, 4, 3,
};
const uint8_t k_bools[3] = { 1, 0, 1 };
static const struct vfio_user_irq_set k_irqs_fd = {
    20, IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER, 2, 5, 4,
};
const struct vfio_user_region_access k_rr = { 0x10, 2, 4 };
const uint8_t k_rr_data[4] = { 0xde, 0xad, 0xbe, 0xef };
static const struct vfio_user_region_access k_rw = { 0x18, 3, 4 };
static const uint8_t k_rw_data[4] = { 'w', 'x', 'y', 'z' };
static const struct vfio_user_dma_access k_dr = { 0x100040, 8 };
const uint8_t k_dr_data[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
const struct vfio_user_dma_access k_dw = { 0x100080, 6 };
static const uint8_t k_dw_data[6] = { 'd', 'm', 'a', 'w', 'r', '!' };
const struct dma_write_reply k_dw_reply = { 0x100080, 6 };
const struct multi_req k_multi = {
    .wr_cnt = 3,
    .e = { { 0x4, 0, 4, { 1, 2, 3, 4 } },
           { 0x100, 1, 2, { 9, 8 } },
           { 0x8, 2, 8, { 1, 2, 3, 4, 5, 6, 7, 8 } } },
};
static const uint64_t k_multi_done = 3;
static const struct vfio_user_device_feature k_feat = {
    .argsz = 16,
    .flags = FEATURE_GET | FEATURE_PROBE | FEATURE_MIGRATION,
};
static const uint64_t k_mig_flags = MIGRATION_STOP_COPY | MIGRATION_PRE_COPY;
static const struct vfio_user_mig_data k_mig_req = { 8 + 64, 64 };
static const struct vfio_user_mig_data k_mig_reply = { 8 + 5, 5 };
static const struct vfio_user_mig_data k_mig_write = { 8 + 5, 5 };
const uint8_t k_mig_bytes[5] = { 0x4d, 0x49, 0x47, 0x00, 0xff };

/* The fields each decoded structure must give back. */
static const struct field version_fields[] = {
    FIELD(struct vfio_user_version, major),
    FIELD(struct vfio_user_version, minor),
    { NULL, 0, 0 },
};
static const struct field dma_map_fields[] = {
    FIELD(struct vfio_user_dma_map, argsz),
    FIELD(struct vfio_user_dma_map, flags),
    FIELD(struct vfio_user_dma_map, offset),
    FIELD(struct vfio_user_dma_map, addr),
    FIELD(struct vfio_user_dma_map, size),
    { NULL, 0, 0 },
};
static const struct field unmap_fields[] = {
    FIELD(struct vfio_user_dma_unmap, argsz),
    FIELD(struct vfio_user_dma_unmap, flags),
    FIELD(struct vfio_user_dma_unmap, addr),
    FIELD(struct vfio_user_dma_unmap, size),
    { NULL, 0, 0 },
};
static const struct field unmap_dirty_fields[] = {
    FIELD(struct unmap_dirty, unmap.argsz),
    FIELD(struct unmap_dirty, unmap.flags),
    FIELD(struct unmap_dirty, unmap.addr),
    FIELD(struct unmap_dirty, unmap.size),
    FIELD(struct unmap_dirty, bitmap.pgsize),
    FIELD(struct unmap_dirty, bitmap.size),
    { NULL, 0, 0 },
};
static const struct field device_info_fields[] = {
    FIELD(struct vfio_user_device_info, argsz),
    FIELD(struct vfio_user_device_info, flags),
    FIELD(struct vfio_user_device_info, num_regions),
    FIELD(struct vfio_user_device_info, num_irqs),
    { NULL, 0, 0 },
};
static const struct field region_info_fields[] = {
    FIELD(struct vfio_user_region_info, argsz),
    FIELD(struct vfio_user_region_info, flags),
    FIELD(struct vfio_user_region_info, index),
    FIELD(struct vfio_user_region_info, cap_offset),
    FIELD(struct vfio_user_region_info, size),
    FIELD(struct vfio_user_region_info, offset),
    { NULL, 0, 0 },
};
static const struct field io_fds_fields[] = {
    FIELD(struct vfio_user_region_io_fds_request, argsz),
    FIELD(struct vfio_user_region_io_fds_request, flags),
    FIELD(struct vfio_user_region_io_fds_request, index),
    FIELD(struct vfio_user_region_io_fds_request, count),
    { NULL, 0, 0 },
};
static const struct field irq_info_fields[] = {
    FIELD(struct vfio_user_irq_info, argsz),
    FIELD(struct vfio_user_irq_info, flags),
    FIELD(struct vfio_user_irq_info, index),
    FIELD(struct vfio_user_irq_info, count),
    { NULL, 0, 0 },
};
const struct field irq_set_fields[] = {
    FIELD(struct vfio_user_irq_set, argsz),
    FIELD(struct vfio_user_irq_set, flags),
    FIELD(struct vfio_user_irq_set, index),
    FIELD(struct vfio_user_irq_set, start),
    FIELD(struct vfio_user_irq_set, count),
    { NULL, 0, 0 },
};
static const struct field region_access_fields[] = {
    FIELD(struct vfio_user_region_access, offset),
    FIELD(struct vfio_user_region_access, region),
    FIELD(struct vfio_user_region_access, count),
    { NULL, 0, 0 },
};
static const struct field dma_access_fields[] = {
    FIELD(struct vfio_user_dma_access, addr),
    FIELD(struct vfio_user_dma_access, count),
    { NULL, 0, 0 },
};
/* Its 4-byte count decodes to 8 bytes: test_dma_read_write checks it. */
static const struct field dma_write_reply_fields[] = {
    FIELD(struct dma_write_reply, addr),
    { NULL, 0, 0 },
};
static const struct field write_multi_fields[] = {
    FIELD(struct multi_req, wr_cnt),
    { NULL, 0, 0 },
};
static const struct field feature_fields[] = {
    FIELD(struct vfio_user_device_feature, argsz),
    FIELD(struct vfio_user_device_feature, flags),
    { NULL, 0, 0 },
};
static const struct field mig_fields[] = {
    FIELD(struct vfio_user_mig_data, argsz),
    FIELD(struct vfio_user_mig_data, size),
    { NULL, 0, 0 },
};
/* Parts of a message's tail, checked by test_wire.c. */
const struct field sparse_area_fields[] = {
    FIELD(struct vfio_user_sparse_area, offset),
    FIELD(struct vfio_user_sparse_area, size),
    { NULL, 0, 0 },
};
const struct field cap_type_fields[] = {
    FIELD(struct vfio_user_cap_type, type),
    FIELD(struct vfio_user_cap_type, subtype),
    { NULL, 0, 0 },
};
const struct field sub_region_fields[] = {
    FIELD(struct vfio_user_sub_region_ioeventfd, offset),
    FIELD(struct vfio_user_sub_region_ioeventfd, size),
    FIELD(struct vfio_user_sub_region_ioeventfd, fd_index),
    FIELD(struct vfio_user_sub_region_ioeventfd, type),
    FIELD(struct vfio_user_sub_region_ioeventfd, flags),
    FIELD(struct vfio_user_sub_region_ioeventfd, padding),
    FIELD(struct vfio_user_sub_region_ioeventfd, datamatch),
    { NULL, 0, 0 },
};
const struct field write_multi_entry_fields[] = {
    FIELD(struct vfio_user_write_multi_entry, offset),
    FIELD(struct vfio_user_write_multi_entry, region),
    FIELD(struct vfio_user_write_multi_entry, count),
    FIELD(struct vfio_user_write_multi_entry, data),
    { NULL, 0, 0 },
};

#define FIXED(x) .fixed = &(x), .fixed_len = sizeof(x)
#define DATA(x) .data = (x), .data_len = sizeof(x)
#define COUNT(off, size) .count_off = (off), .count_size = (size)
#define NO_PAYLOAD .fixed = NULL, .fixed_len = 0

const struct sample samples[] = {
    /* Commands, in the spec's order. */
    { "VERSION", VFIO_USER_VERSION, 0, FIXED(k_version), DATA(k_qemu_json),
      .min_fixed = 4, .fields = version_fields },
    { "VERSION no JSON", VFIO_USER_VERSION, 0, FIXED(k_version), .min_fixed = 4,
      .fields = version_fields },
    { "DMA_MAP", VFIO_USER_DMA_MAP, 0, FIXED(k_dma_map), .nfds = 1,
      .fds = FDS_MAP, .min_fixed = 32, .argsz_min = 32,
      .fields = dma_map_fields },
    { "DMA_UNMAP", VFIO_USER_DMA_UNMAP, 0, FIXED(k_unmap), .min_fixed = 24,
      .argsz_min = 24, .fields = unmap_fields },
    { "DMA_UNMAP all", VFIO_USER_DMA_UNMAP, 0, FIXED(k_unmap_all),
      .min_fixed = 24, .argsz_min = 24, .fields = unmap_fields },
    { "DMA_UNMAP dirty", VFIO_USER_DMA_UNMAP, 0, FIXED(k_unmap_dirty),
      .min_fixed = 40, .argsz_min = 40, .fields = unmap_dirty_fields },
    { "DEVICE_GET_INFO", VFIO_USER_DEVICE_GET_INFO, 0, FIXED(k_info_req),
      .min_fixed = 16, .argsz_min = 16, .fields = device_info_fields },
    { "DEVICE_GET_REGION_INFO", VFIO_USER_DEVICE_GET_REGION_INFO, 0,
      FIXED(k_region_req), .min_fixed = 32, .argsz_min = 32,
      .fields = region_info_fields },
    { "DEVICE_GET_REGION_IO_FDS", VFIO_USER_DEVICE_GET_REGION_IO_FDS, 0,
      FIXED(k_io_fds_req), .min_fixed = 16, .argsz_min = 16,
      .fields = io_fds_fields },
    { "DEVICE_GET_IRQ_INFO", VFIO_USER_DEVICE_GET_IRQ_INFO, 0,
      FIXED(k_irq_info_req), .min_fixed = 16, .argsz_min = 16,
      .fields = irq_info_fields },
    { "SET_IRQS none", VFIO_USER_DEVICE_SET_IRQS, 0, FIXED(k_irqs_none),
      .min_fixed = 20, .argsz_min = 20, .fields = irq_set_fields },
    { "SET_IRQS bool", VFIO_USER_DEVICE_SET_IRQS, 0, FIXED(k_irqs_bool),
      DATA(k_bools), .min_fixed = 20, .argsz_min = 20,
      .fields = irq_set_fields },
    { "SET_IRQS eventfd", VFIO_USER_DEVICE_SET_IRQS, 0, FIXED(k_irqs_fd),
      .nfds = 4, .fds = FDS_EXACT, .min_fixed = 20, .argsz_min = 20,
      .fields = irq_set_fields },
    { "REGION_READ", VFIO_USER_REGION_READ, 0, FIXED(k_rr), .min_fixed = 16,
      COUNT(12, 4), .fields = region_access_fields },
    { "REGION_WRITE", VFIO_USER_REGION_WRITE, 0, FIXED(k_rw), DATA(k_rw_data),
      .min_fixed = 16, COUNT(12, 4), .fields = region_access_fields },
    { "REGION_WRITE posted", VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY,
      FIXED(k_rw), DATA(k_rw_data), .min_fixed = 16, COUNT(12, 4),
      .fields = region_access_fields },
    { "DMA_READ", VFIO_USER_DMA_READ, 0, FIXED(k_dr), .min_fixed = 16,
      COUNT(8, 8), .fields = dma_access_fields },
    { "DMA_WRITE", VFIO_USER_DMA_WRITE, 0, FIXED(k_dw), DATA(k_dw_data),
      .min_fixed = 16, COUNT(8, 8), .fields = dma_access_fields },
    { "DEVICE_RESET", VFIO_USER_DEVICE_RESET, 0, NO_PAYLOAD },
    { "REGION_WRITE_MULTI", VFIO_USER_REGION_WRITE_MULTI, 0,
      FIXED(k_multi.wr_cnt), DATA(k_multi.e), .min_fixed = 8,
      .fields = write_multi_fields },
    { "DEVICE_FEATURE", VFIO_USER_DEVICE_FEATURE, 0, FIXED(k_feat),
      .min_fixed = 8, .argsz_min = 8, .fields = feature_fields },
    { "MIG_DATA_READ", VFIO_USER_MIG_DATA_READ, 0, FIXED(k_mig_req),
      .min_fixed = 8, .argsz_min = 8, COUNT(4, 4), .fields = mig_fields },
    { "MIG_DATA_WRITE", VFIO_USER_MIG_DATA_WRITE, 0, FIXED(k_mig_write),
      DATA(k_mig_bytes), .min_fixed = 8, .argsz_min = 8, COUNT(4, 4),
      .fields = mig_fields },
    /* Replies. */
    { "VERSION reply", VFIO_USER_VERSION, REPLY, FIXED(k_version_reply),
      DATA(k_server_json), .fds = FDS_ANY, .min_fixed = 4,
      .fields = version_fields },
    { "DMA_MAP reply", VFIO_USER_DMA_MAP, REPLY, NO_PAYLOAD },
    { "DMA_UNMAP reply", VFIO_USER_DMA_UNMAP, REPLY, FIXED(k_unmap),
      .min_fixed = 24, .argsz_min = 24, .fields = unmap_fields },
    { "DMA_UNMAP dirty reply", VFIO_USER_DMA_UNMAP, REPLY, FIXED(k_unmap_dirty),
      DATA(k_bitmap), .min_fixed = 40, .argsz_min = 40,
      .fields = unmap_dirty_fields },
    { "DEVICE_GET_INFO reply", VFIO_USER_DEVICE_GET_INFO, REPLY, FIXED(k_info),
      .min_fixed = 16, .argsz_min = 16, .fields = device_info_fields },
    { "DEVICE_GET_REGION_INFO reply", VFIO_USER_DEVICE_GET_REGION_INFO, REPLY,
      FIXED(k_region.info), .data = (const uint8_t *)&k_region + 32,
      .data_len = sizeof(k_region) - 32, .nfds = 1, .fds = FDS_ANY,
      .min_fixed = 32, .argsz_min = 32, .fields = region_info_fields },
    { "DEVICE_GET_REGION_IO_FDS reply", VFIO_USER_DEVICE_GET_REGION_IO_FDS,
      REPLY, FIXED(k_io_fds.head), DATA(k_io_fds.sub), .nfds = 2,
      .fds = FDS_ANY, .min_fixed = 16, .argsz_min = 16,
      .fields = io_fds_fields },
    { "DEVICE_GET_IRQ_INFO reply", VFIO_USER_DEVICE_GET_IRQ_INFO, REPLY,
      FIXED(k_irq_info), .min_fixed = 16, .argsz_min = 16,
      .fields = irq_info_fields },
    { "SET_IRQS reply", VFIO_USER_DEVICE_SET_IRQS, REPLY, NO_PAYLOAD },
    { "REGION_READ reply", VFIO_USER_REGION_READ, REPLY, FIXED(k_rr),
      DATA(k_rr_data), .min_fixed = 16, COUNT(12, 4),
      .fields = region_access_fields },
    { "REGION_WRITE reply", VFIO_USER_REGION_WRITE, REPLY, FIXED(k_rw) },
    { "DMA_READ reply", VFIO_USER_DMA_READ, REPLY, FIXED(k_dr), DATA(k_dr_data),
      .min_fixed = 16, COUNT(8, 8), .fields = dma_access_fields },
    { "DMA_WRITE reply", VFIO_USER_DMA_WRITE, REPLY, .fixed = &k_dw_reply,
      .fixed_len = 12, .min_fixed = 12, .fields = dma_write_reply_fields },
    { "DMA_WRITE reply 16", VFIO_USER_DMA_WRITE, REPLY, FIXED(k_dw),
      .min_fixed = 12, .fields = dma_access_fields },
    { "DEVICE_RESET reply", VFIO_USER_DEVICE_RESET, REPLY, NO_PAYLOAD },
    { "REGION_WRITE_MULTI reply", VFIO_USER_REGION_WRITE_MULTI, REPLY,
      FIXED(k_multi_done), .min_fixed = 8, .fields = write_multi_fields },
    { "DEVICE_FEATURE reply", VFIO_USER_DEVICE_FEATURE, REPLY, FIXED(k_feat),
      .data = &k_mig_flags, .data_len = sizeof(k_mig_flags), .min_fixed = 8,
      .argsz_min = 8, .fields = feature_fields },
    { "MIG_DATA_READ reply", VFIO_USER_MIG_DATA_READ, REPLY, FIXED(k_mig_reply),
      DATA(k_mig_bytes), .min_fixed = 8, .argsz_min = 8, COUNT(4, 4),
      .fields = mig_fields },
    { "MIG_DATA_WRITE reply", VFIO_USER_MIG_DATA_WRITE, REPLY, NO_PAYLOAD },
};

const uint16_t known_cmds[] = {
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

const size_t n_samples = N_ELEM(samples);
const size_t n_known_cmds = N_ELEM(known_cmds);

void
enc(struct msg *m, uint16_t cmd, uint32_t flags, const void *fixed,
    size_t fixed_len, const void *data, size_t data_len)
{
    ssize_t n = umdev_wire_encode(m->b, sizeof(m->b), MSG_ID, cmd, flags, fixed,
                                  fixed_len, data, data_len);

    assert_int_equal(n, HDR + fixed_len + data_len);
    m->len = (size_t)n;
}

void
enc_sample(struct msg *m, const struct sample *s)
{
    enc(m, s->cmd, s->flags, s->fixed, s->fixed_len, s->data, s->data_len);
}

size_t
each_sample(bool (*check)(const struct sample *s, struct msg *m))
{
    static struct msg m;
    size_t i, n = 0;

    for (i = 0; i < n_samples; i++) {
        enc_sample(&m, &samples[i]);
        n += check(&samples[i], &m);
    }
    return n;
}

const struct sample *
sample(const char *name)
{
    size_t i;

    for (i = 0; i < N_ELEM(samples); i++)
        if (strcmp(samples[i].name, name) == 0)
            return &samples[i];
    fail_msg("no sample \"%s\"", name);
    return NULL;
}

void
put32(struct msg *m, size_t off, uint32_t v)
{
    memcpy(m->b + off, &v, sizeof(v));
}

void
put_field(struct msg *m, size_t off, size_t size, uint64_t v)
{
    if (size == 4)
        put32(m, HDR + off, (uint32_t)v);
    else
        memcpy(m->b + HDR + off, &v, sizeof(v));
}

/* So that ASan reports any read past the message. */
int
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

int
rc_of(const struct msg *m, size_t nfds)
{
    return decode_exact(m->b, m->len, nfds, NULL);
}

/* A field's value, little-endian, whatever its size (arrays: the first
 * 8 bytes; check_fields() compares the rest too). */
static uint64_t
field_value(const void *base, const struct field *f)
{
    uint64_t v = 0;

    memcpy(&v, (const uint8_t *)base + f->off, f->size < 8 ? f->size : 8);
    return v;
}

void
check_fields(const char *what, const void *got, const void *want,
             const struct field *fields)
{
    const struct field *f;

    for (f = fields; f != NULL && f->name != NULL; f++)
        if (memcmp((const uint8_t *)got + f->off,
                   (const uint8_t *)want + f->off, f->size) != 0)
            fail_msg("%s: %s = %#llx, want %#llx", what, f->name,
                     (unsigned long long)field_value(got, f),
                     (unsigned long long)field_value(want, f));
}

/*
 * The tail is the data after the fixed part; for a reply whose payload
 * the decoder does not interpret (min_fixed 0), the whole payload.
 */
void
round_trip(const struct sample *s, struct msg *m, struct umdev_wire_msg *w)
{
    size_t tail_off = s->min_fixed ? s->fixed_len : 0;
    size_t tail_len = s->fixed_len + s->data_len - tail_off;

    enc_sample(m, s);
    check_rc(s->name, "decode",
             umdev_wire_decode(m->b, m->len, s->nfds, NULL, w), 0);
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
    check_fields(s->name, &w->u, s->fixed, s->fields);
}

struct umdev_wire_msg
round_trip_named(const char *name, struct msg *m)
{
    struct umdev_wire_msg w;

    round_trip(sample(name), m, &w);
    return w;
}
