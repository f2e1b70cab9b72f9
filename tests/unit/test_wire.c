/* Unit tests for lib/wire: encode/decode round trips of every message and
 * the refusal of every malformed shape. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "umdev/wire.h"

#define QEMU_JSON                                                            \
    "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":1048576," \
    "\"pgsizes\":4096,\"max_dma_maps\":65535,\"migration\":{\"pgsize\":"     \
    "4096,\"max_bitmap_size\":268435456},\"write_multiple\":true}}"

static uint8_t buf[2 * 1024 * 1024];

/* Build a message into buf: header + fixed + data. */
static size_t
build(uint16_t cmd, uint32_t flags, const void *fixed, size_t fixed_len,
      const void *data, size_t data_len)
{
    ssize_t n = umdev_wire_encode(buf, sizeof(buf), 7, cmd, flags, fixed,
                                  fixed_len, data, data_len);

    assert_true(n > 0);
    return (size_t)n;
}

static int
decode(size_t len, size_t nfds, struct umdev_wire_msg *m)
{
    return umdev_wire_decode(buf, len, nfds, NULL, m);
}

static void
check_header(const struct umdev_wire_msg *m, uint16_t cmd, size_t len,
             bool reply)
{
    assert_int_equal(m->hdr.msg_id, 7);
    assert_int_equal(m->hdr.cmd, cmd);
    assert_int_equal(m->hdr.msg_size, len);
    assert_int_equal(m->is_reply, reply);
    assert_int_equal(m->payload_len, len - 16);
}

static void
test_version_qemu_exchange(void **state)
{
    struct vfio_user_version v = { 0, 0 };
    struct umdev_wire_msg m;
    size_t len;

    (void)state;
    len = build(VFIO_USER_VERSION, 0, &v, sizeof(v), QEMU_JSON,
                sizeof(QEMU_JSON));
    assert_int_equal(decode(len, 0, &m), 0);
    check_header(&m, VFIO_USER_VERSION, len, false);
    assert_int_equal(m.u.version.major, 0);
    assert_int_equal(m.u.version.minor, 0);
    assert_string_equal(m.u.version.json, QEMU_JSON);
    /* Without JSON. */
    len = build(VFIO_USER_VERSION, 0, &v, sizeof(v), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_null(m.u.version.json);
    /* JSON not NUL-terminated inside the message. */
    len = build(VFIO_USER_VERSION, 0, &v, sizeof(v), QEMU_JSON,
                sizeof(QEMU_JSON) - 1);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    /* Reply form decodes too (the client's side). */
    len = build(VFIO_USER_VERSION, VFIO_USER_F_TYPE_REPLY, &v, sizeof(v),
                QEMU_JSON, sizeof(QEMU_JSON));
    assert_int_equal(decode(len, 0, &m), 0);
    assert_true(m.is_reply);
}

static void
test_dma_map_unmap(void **state)
{
    struct vfio_user_dma_map mp = { 32, 3, 0x2000, 0x100000, 0x10000 };
    struct vfio_user_dma_unmap u = { 24, 0, 0x100000, 0x10000 };
    struct vfio_user_bitmap bm = { 4096, 2 };
    uint8_t tail[24 + 16];
    struct umdev_wire_msg m;
    size_t len;

    (void)state;
    len = build(VFIO_USER_DMA_MAP, 0, &mp, sizeof(mp), NULL, 0);
    assert_int_equal(decode(len, 1, &m), 0);
    assert_int_equal(m.u.dma_map.flags, 3);
    assert_int_equal(m.u.dma_map.offset, 0x2000);
    assert_int_equal(m.u.dma_map.addr, 0x100000);
    assert_int_equal(m.u.dma_map.size, 0x10000);
    assert_int_equal(decode(len, 0, &m), 0); /* no fd: message fallback */
    assert_int_equal(decode(len, 2, &m), -EBADF);
    mp.addr = UINT64_MAX - 10;
    len = build(VFIO_USER_DMA_MAP, 0, &mp, sizeof(mp), NULL, 0);
    assert_int_equal(decode(len, 1, &m), -EINVAL);
    mp.addr = 0;
    mp.flags = 4;
    len = build(VFIO_USER_DMA_MAP, 0, &mp, sizeof(mp), NULL, 0);
    assert_int_equal(decode(len, 1, &m), -EINVAL);

    len = build(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.dma_unmap.unmap.addr, 0x100000);
    assert_int_equal(m.u.dma_unmap.unmap.size, 0x10000);
    u.flags = VFIO_USER_DMA_UNMAP_FLAG_ALL;
    len = build(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL); /* ALL needs 0/0 */
    u.addr = u.size = 0;
    len = build(VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    /* The dirty-bitmap variant: request carries the bitmap header, the
     * reply also the bits (16 pages -> 2 bytes). */
    u = (struct vfio_user_dma_unmap){ 40, 1, 0x100000, 0x10000 };
    memcpy(tail, &u, sizeof(u));
    memcpy(tail + sizeof(u), &bm, sizeof(bm));
    len = build(VFIO_USER_DMA_UNMAP, 0, tail, sizeof(tail), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.dma_unmap.bitmap.pgsize, 4096);
    assert_int_equal(m.u.dma_unmap.bitmap.size, 2);
    len = build(VFIO_USER_DMA_UNMAP, VFIO_USER_F_TYPE_REPLY, tail,
                sizeof(tail), "\xff\x0f", 2);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.data_len, 2);
    assert_int_equal(m.data[0], 0xff);
    bm.size = 1; /* too small for 16 pages */
    memcpy(tail + sizeof(u), &bm, sizeof(bm));
    len = build(VFIO_USER_DMA_UNMAP, 0, tail, sizeof(tail), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
}

static void
test_info_queries(void **state)
{
    struct vfio_user_device_info di = { 16, 0, 0, 0 };
    struct vfio_user_region_info ri = { 32, 0, 2, 0, 0, 0 };
    struct vfio_user_region_io_fds_request io = { 16, 0, 0, 0 };
    struct vfio_user_irq_info ii = { 16, 0, 2, 0 };
    struct umdev_wire_msg m;
    size_t len;

    (void)state;
    len = build(VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.device_info.argsz, 16);
    di = (struct vfio_user_device_info){ 16, 3, 9, 5 };
    len = build(VFIO_USER_DEVICE_GET_INFO, VFIO_USER_F_TYPE_REPLY, &di,
                sizeof(di), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.device_info.num_regions, 9);
    assert_int_equal(m.u.device_info.num_irqs, 5);

    len = build(VFIO_USER_DEVICE_GET_REGION_INFO, 0, &ri, sizeof(ri), NULL,
                0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.region_info.index, 2);

    len = build(VFIO_USER_DEVICE_GET_REGION_IO_FDS, 0, &io, sizeof(io),
                NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    {
        struct vfio_user_sub_region_ioeventfd sub[2] = {
            { 0x1000, 4, 0, VFIO_USER_IO_FD_TYPE_IOEVENTFD, 0, 0, 0 },
            { 0x2000, 4, 1, VFIO_USER_IO_FD_TYPE_IOEVENTFD, 1, 0, 7 },
        };

        io = (struct vfio_user_region_io_fds_request){ 16 + 80, 0, 2, 2 };
        len = build(VFIO_USER_DEVICE_GET_REGION_IO_FDS,
                    VFIO_USER_F_TYPE_REPLY, &io, sizeof(io), sub,
                    sizeof(sub));
        assert_int_equal(decode(len, 2, &m), 0);
        assert_int_equal(m.u.io_fds.count, 2);
        assert_int_equal(m.data_len, sizeof(sub));
        /* Count claims more entries than the reply carries. */
        io.count = 3;
        len = build(VFIO_USER_DEVICE_GET_REGION_IO_FDS,
                    VFIO_USER_F_TYPE_REPLY, &io, sizeof(io), sub,
                    sizeof(sub));
        io.argsz = (uint32_t)(len - 16);
        len = build(VFIO_USER_DEVICE_GET_REGION_IO_FDS,
                    VFIO_USER_F_TYPE_REPLY, &io, sizeof(io), sub,
                    sizeof(sub));
        assert_int_equal(decode(len, 2, &m), -EINVAL);
    }
    len = build(VFIO_USER_DEVICE_GET_IRQ_INFO, 0, &ii, sizeof(ii), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.irq_info.index, 2);
}

static void
test_set_irqs(void **state)
{
    struct vfio_user_irq_set s = { 20, (1u << 2) | (1u << 5), 2, 0, 4 };
    const uint8_t bools[3] = { 1, 0, 1 };
    struct umdev_wire_msg m;
    size_t len;

    (void)state;
    /* DATA_EVENTFD + TRIGGER with 4 fds, and with none (de-assign). */
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    assert_int_equal(decode(len, 4, &m), 0);
    assert_int_equal(m.u.irq_set.count, 4);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(decode(len, 3, &m), -EBADF);
    /* DATA_BOOL + UNMASK with bools. */
    s = (struct vfio_user_irq_set){ 23, (1u << 1) | (1u << 4), 0, 0, 3 };
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), bools, 3);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.data_len, 3);
    assert_int_equal(m.data[2], 1);
    assert_int_equal(decode(len, 1, &m), -EBADF);
    /* Bools missing. */
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), bools, 2);
    s.argsz = 22;
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), bools, 2);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    /* DATA_NONE + MASK. */
    s = (struct vfio_user_irq_set){ 20, (1u << 0) | (1u << 3), 0, 0, 1 };
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    /* Two data bits, two action bits, none, unknown bits. */
    s.flags = (1u << 0) | (1u << 1) | (1u << 3);
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    s.flags = (1u << 0) | (1u << 3) | (1u << 4);
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    s.flags = (1u << 0);
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    s.flags = (1u << 0) | (1u << 5) | (1u << 9);
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    /* start + count wraps. */
    s = (struct vfio_user_irq_set){ 20, (1u << 0) | (1u << 5), 0,
                                    0xffffffff, 2 };
    len = build(VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
}

static void
test_region_and_dma_access(void **state)
{
    struct vfio_user_region_access a = { 0x10, 2, 4 };
    struct vfio_user_dma_access d = { 0x100000, 8 };
    struct umdev_wire_msg m;
    size_t len;

    (void)state;
    len = build(VFIO_USER_REGION_READ, 0, &a, sizeof(a), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.region_access.offset, 0x10);
    assert_int_equal(m.u.region_access.region, 2);
    assert_int_equal(m.u.region_access.count, 4);
    len = build(VFIO_USER_REGION_READ, VFIO_USER_F_TYPE_REPLY, &a,
                sizeof(a), "abcd", 4);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_memory_equal(m.data, "abcd", 4);
    len = build(VFIO_USER_REGION_READ, VFIO_USER_F_TYPE_REPLY, &a,
                sizeof(a), "abc", 3);
    assert_int_equal(decode(len, 0, &m), -EINVAL);

    len = build(VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, &a, sizeof(a),
                "wxyz", 4);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.hdr.flags & VFIO_USER_F_NO_REPLY,
                     VFIO_USER_F_NO_REPLY);
    assert_memory_equal(m.data, "wxyz", 4);
    len = build(VFIO_USER_REGION_WRITE, 0, &a, sizeof(a), "wxyzq", 5);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    /* Zero count, wrapping offset, count over the limit. */
    a.count = 0;
    len = build(VFIO_USER_REGION_READ, 0, &a, sizeof(a), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    a = (struct vfio_user_region_access){ UINT64_MAX - 1, 0, 4 };
    len = build(VFIO_USER_REGION_READ, 0, &a, sizeof(a), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    a = (struct vfio_user_region_access){ 0, 0,
                                          UMDEV_WIRE_DEFAULT_MAX_DATA_XFER +
                                              1 };
    len = build(VFIO_USER_REGION_READ, 0, &a, sizeof(a), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -E2BIG);

    len = build(VFIO_USER_DMA_READ, 0, &d, sizeof(d), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.dma_access.addr, 0x100000);
    assert_int_equal(m.u.dma_access.count, 8);
    len = build(VFIO_USER_DMA_READ, VFIO_USER_F_TYPE_REPLY, &d, sizeof(d),
                "01234567", 8);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_memory_equal(m.data, "01234567", 8);
    len = build(VFIO_USER_DMA_WRITE, 0, &d, sizeof(d), "01234567", 8);
    assert_int_equal(decode(len, 0, &m), 0);
    /* The spec's DMA_WRITE reply: address and a 4-byte count. */
    len = build(VFIO_USER_DMA_WRITE, VFIO_USER_F_TYPE_REPLY, &d, 12, NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.dma_access.count, 8);
    len = build(VFIO_USER_DMA_WRITE, VFIO_USER_F_TYPE_REPLY, &d, 8, NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
}

static void
test_write_multi(void **state)
{
    struct vfio_user_write_multi_entry e[3] = {
        { 0x4, 0, 4, { 1, 2, 3, 4 } },
        { 0x100, 0, 2, { 9, 8 } },
        { 0x0, 2, 8, { 1, 2, 3, 4, 5, 6, 7, 8 } },
    };
    struct vfio_user_write_multi_entry got;
    struct umdev_wire_msg m;
    uint8_t p[8 + sizeof(e)];
    uint64_t n = 3;
    size_t len;

    (void)state;
    memcpy(p, &n, 8);
    memcpy(p + 8, e, sizeof(e));
    len = build(VFIO_USER_REGION_WRITE_MULTI, 0, p, sizeof(p), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.write_multi.count, 3);
    umdev_wire_write_multi_entry(&m, 1, &got);
    assert_int_equal(got.offset, 0x100);
    assert_int_equal(got.count, 2);
    assert_int_equal(got.data[0], 9);
    umdev_wire_write_multi_entry(&m, 2, &got);
    assert_int_equal(got.region, 2);
    assert_int_equal(got.data[7], 8);
    /* Entry count 9, entry count 0, wr_cnt 0, wr_cnt over the limit, and
     * wr_cnt disagreeing with the size. */
    e[1].count = 9;
    memcpy(p + 8, e, sizeof(e));
    len = build(VFIO_USER_REGION_WRITE_MULTI, 0, p, sizeof(p), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    e[1].count = 0;
    memcpy(p + 8, e, sizeof(e));
    len = build(VFIO_USER_REGION_WRITE_MULTI, 0, p, sizeof(p), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    e[1].count = 2;
    memcpy(p + 8, e, sizeof(e));
    n = 0;
    memcpy(p, &n, 8);
    len = build(VFIO_USER_REGION_WRITE_MULTI, 0, p, sizeof(p), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    n = UMDEV_WIRE_MAX_WRITE_MULTI + 1;
    memcpy(p, &n, 8);
    len = build(VFIO_USER_REGION_WRITE_MULTI, 0, p, sizeof(p), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    n = 2;
    memcpy(p, &n, 8);
    len = build(VFIO_USER_REGION_WRITE_MULTI, 0, p, sizeof(p), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    /* Reply: completed count. */
    n = 3;
    len = build(VFIO_USER_REGION_WRITE_MULTI, VFIO_USER_F_TYPE_REPLY, &n, 8,
                NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.write_multi.count, 3);
}

static void
test_reset_feature_migration(void **state)
{
    struct vfio_user_device_feature f = { 8, (1u << 16) | 1 };
    struct vfio_user_mig_data md = { 8, 64 };
    struct umdev_wire_msg m;
    uint64_t mig_flags = 1;
    size_t len;

    (void)state;
    len = build(VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    check_header(&m, VFIO_USER_DEVICE_RESET, 16, false);
    len = build(VFIO_USER_DEVICE_FEATURE, 0, &f, sizeof(f), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.feature.flags, (1u << 16) | 1);
    f.argsz = 16;
    len = build(VFIO_USER_DEVICE_FEATURE, VFIO_USER_F_TYPE_REPLY, &f,
                sizeof(f), &mig_flags, 8);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.data_len, 8);
    len = build(VFIO_USER_MIG_DATA_READ, 0, &md, sizeof(md), NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_int_equal(m.u.mig.size, 64);
    md.size = 4;
    len = build(VFIO_USER_MIG_DATA_READ, VFIO_USER_F_TYPE_REPLY, &md,
                sizeof(md), "1234", 4);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_memory_equal(m.data, "1234", 4);
    len = build(VFIO_USER_MIG_DATA_WRITE, 0, &md, sizeof(md), "1234", 4);
    assert_int_equal(decode(len, 0, &m), 0);
    len = build(VFIO_USER_MIG_DATA_WRITE, 0, &md, sizeof(md), "12345", 5);
    assert_int_equal(decode(len, 0, &m), -EINVAL);
    md.size = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER + 1;
    len = build(VFIO_USER_MIG_DATA_READ, 0, &md, sizeof(md), NULL, 0);
    assert_int_equal(decode(len, 0, &m), -E2BIG);
}

/* The fixed size each command needs, for the "short" and "bad argsz"
 * sweeps; 0 for commands without one. */
static const struct {
    uint16_t cmd;
    size_t fixed;
    bool has_argsz;
} fixed_sizes[] = {
    { VFIO_USER_VERSION, 4, false },
    { VFIO_USER_DMA_MAP, 32, true },
    { VFIO_USER_DMA_UNMAP, 24, true },
    { VFIO_USER_DEVICE_GET_INFO, 16, true },
    { VFIO_USER_DEVICE_GET_REGION_INFO, 32, true },
    { VFIO_USER_DEVICE_GET_REGION_IO_FDS, 16, true },
    { VFIO_USER_DEVICE_GET_IRQ_INFO, 16, true },
    { VFIO_USER_DEVICE_SET_IRQS, 20, true },
    { VFIO_USER_REGION_READ, 16, false },
    { VFIO_USER_REGION_WRITE, 16, false },
    { VFIO_USER_DMA_READ, 16, false },
    { VFIO_USER_DMA_WRITE, 16, false },
    { VFIO_USER_REGION_WRITE_MULTI, 8, false },
    { VFIO_USER_DEVICE_FEATURE, 8, true },
    { VFIO_USER_MIG_DATA_READ, 8, true },
    { VFIO_USER_MIG_DATA_WRITE, 8, true },
};

static void
test_short_and_bad_argsz_every_command(void **state)
{
    uint8_t zeros[64] = { 0 };
    struct umdev_wire_msg m;
    size_t i, len;

    (void)state;
    for (i = 0; i < sizeof(fixed_sizes) / sizeof(fixed_sizes[0]); i++) {
        size_t f = fixed_sizes[i].fixed;

        len = build(fixed_sizes[i].cmd, 0, zeros, f - 1, NULL, 0);
        assert_int_equal(decode(len, 0, &m), -EINVAL);
        if (fixed_sizes[i].has_argsz) {
            uint32_t argsz = (uint32_t)f - 1;

            memcpy(zeros, &argsz, 4);
            len = build(fixed_sizes[i].cmd, 0, zeros, f, NULL, 0);
            assert_int_equal(decode(len, 0, &m), -EINVAL);
            memset(zeros, 0, sizeof(zeros));
        }
    }
}

static void
test_fds_where_none_belong(void **state)
{
    struct vfio_user_device_info di = { 16, 0, 0, 0 };
    struct vfio_user_region_access a = { 0, 0, 4 };
    struct umdev_wire_msg m;
    size_t len;

    (void)state;
    len = build(VFIO_USER_DEVICE_GET_INFO, 0, &di, sizeof(di), NULL, 0);
    assert_int_equal(decode(len, 1, &m), -EBADF);
    len = build(VFIO_USER_REGION_READ, 0, &a, sizeof(a), NULL, 0);
    assert_int_equal(decode(len, 1, &m), -EBADF);
    len = build(VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
    assert_int_equal(decode(len, 1, &m), -EBADF);
    /* More than any message may carry. */
    len = build(VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
    assert_int_equal(decode(len, UMDEV_WIRE_MAX_MSG_FDS + 1, &m), -EBADF);
    /* A reply that takes none. */
    len = build(VFIO_USER_REGION_WRITE, VFIO_USER_F_TYPE_REPLY, &a,
                sizeof(a), NULL, 0);
    assert_int_equal(decode(len, 1, &m), -EBADF);
}

static void
test_headers(void **state)
{
    struct vfio_user_header h;
    struct umdev_wire_msg m;
    size_t len;
    static const uint16_t unknown[] = { 0, 14, 19, 0xffff };
    size_t i;

    (void)state;
    for (i = 0; i < 4; i++) {
        len = build(unknown[i], 0, NULL, 0, NULL, 0);
        assert_int_equal(decode(len, 0, &m), -ENOSYS);
    }
    len = build(VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0);
    assert_int_equal(umdev_wire_decode(buf, len + 1, 0, NULL, &m), -EPROTO);
    assert_int_equal(umdev_wire_decode(buf, 15, 0, NULL, &m), -EPROTO);
    memcpy(&h, buf, sizeof(h));
    h.msg_size = 8;
    memcpy(buf, &h, sizeof(h));
    assert_int_equal(umdev_wire_decode_header(buf, &h), -EPROTO);
    len = build(VFIO_USER_DEVICE_RESET, 2, NULL, 0, NULL, 0); /* type 2 */
    assert_int_equal(decode(len, 0, &m), -EPROTO);
    len = build(VFIO_USER_DEVICE_RESET, VFIO_USER_F_ERROR, NULL, 0, NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EPROTO);
    len = build(VFIO_USER_DEVICE_RESET, 1u << 8, NULL, 0, NULL, 0);
    assert_int_equal(decode(len, 0, &m), -EPROTO);
    /* An error reply decodes with any payload and no fds. */
    len = build(VFIO_USER_REGION_READ,
                VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR, NULL, 0, NULL, 0);
    assert_int_equal(decode(len, 0, &m), 0);
    assert_true(m.is_reply);
}

static void
test_encode_limits_and_error(void **state)
{
    struct vfio_user_header req = { 42, VFIO_USER_REGION_READ, 32, 0, 0 };
    struct vfio_user_header out;
    uint8_t small[20] = { 0 };

    (void)state;
    assert_int_equal(umdev_wire_encode(small, sizeof(small), 1,
                                       VFIO_USER_DEVICE_RESET, 0, small, 8,
                                       NULL, 0),
                     -E2BIG);
    assert_int_equal(umdev_wire_size(8, 0), 24);
    assert_int_equal(umdev_wire_size(SIZE_MAX, 1), 0);
    umdev_wire_encode_error(&out, &req, -EINVAL);
    assert_int_equal(out.msg_id, 42);
    assert_int_equal(out.cmd, VFIO_USER_REGION_READ);
    assert_int_equal(out.msg_size, 16);
    assert_int_equal(out.flags, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR);
    assert_int_equal(out.error, EINVAL);
    assert_string_equal(umdev_wire_cmd_name(VFIO_USER_DMA_MAP), "DMA_MAP");
    assert_string_equal(umdev_wire_cmd_name(14), "UNKNOWN");
}

struct caps_seen {
    int n;
    uint16_t ids[8];
};

static int
collect(const struct vfio_user_cap_header *h, const uint8_t *cap,
        size_t avail, void *opaque)
{
    struct caps_seen *s = opaque;

    (void)cap;
    assert_true(avail >= sizeof(*h));
    s->ids[s->n++] = h->id;
    return 0;
}

static void
test_region_caps_walk(void **state)
{
    uint8_t r[32 + 16 + 16 + 16];
    struct vfio_user_region_info ri = { sizeof(r), 1u << 3, 2, 32, 0x10000,
                                        0 };
    struct vfio_user_cap_sparse_mmap sp = { { 1, 1, 48 + 16 }, 1, 0 };
    struct vfio_user_sparse_area area = { 0x1000, 0xf000 };
    struct vfio_user_cap_header type_hdr = { 2, 1, 0 };
    struct caps_seen seen = { 0 };

    (void)state;
    memset(r, 0, sizeof(r));
    memcpy(r, &ri, sizeof(ri));
    memcpy(r + 32, &sp, sizeof(sp));
    memcpy(r + 48, &area, sizeof(area));
    memcpy(r + 64, &type_hdr, sizeof(type_hdr));
    assert_int_equal(umdev_wire_region_caps_walk(r, sizeof(r), collect,
                                                 &seen),
                     0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.ids[0], 1);
    assert_int_equal(seen.ids[1], 2);
    /* A loop back to itself. */
    type_hdr.next = 64;
    memcpy(r + 64, &type_hdr, sizeof(type_hdr));
    seen.n = 0;
    assert_int_equal(umdev_wire_region_caps_walk(r, sizeof(r), collect,
                                                 &seen),
                     -EINVAL);
    /* Misaligned and out-of-range pointers. */
    type_hdr.next = 66;
    memcpy(r + 64, &type_hdr, sizeof(type_hdr));
    assert_int_equal(umdev_wire_region_caps_walk(r, sizeof(r), collect,
                                                 &seen),
                     -EINVAL);
    ri.cap_offset = sizeof(r);
    memcpy(r, &ri, sizeof(ri));
    assert_int_equal(umdev_wire_region_caps_walk(r, sizeof(r), collect,
                                                 &seen),
                     -EINVAL);
}

/* Every truncation of a valid message is refused without a crash. */
static void
test_truncations(void **state)
{
    struct vfio_user_dma_map mp = { 32, 3, 0, 0x100000, 0x10000 };
    struct vfio_user_region_access a = { 0, 0, 8 };
    struct vfio_user_version v = { 0, 0 };
    uint8_t copy[512];
    struct umdev_wire_msg m;
    size_t lens[3], i, n;

    (void)state;
    lens[0] = build(VFIO_USER_VERSION, 0, &v, sizeof(v), QEMU_JSON,
                    sizeof(QEMU_JSON));
    memcpy(copy, buf, lens[0]);
    for (n = 0; n <= lens[0]; n++) {
        int rc = umdev_wire_decode(copy, n, 0, NULL, &m);

        assert_int_equal(rc == 0, n == lens[0]);
    }
    lens[1] = build(VFIO_USER_DMA_MAP, 0, &mp, sizeof(mp), NULL, 0);
    lens[2] = build(VFIO_USER_REGION_WRITE, 0, &a, sizeof(a), "12345678", 8);
    for (i = 1; i < 3; i++) {
        size_t len = build(i == 1 ? VFIO_USER_DMA_MAP : VFIO_USER_REGION_WRITE,
                           0, i == 1 ? (void *)&mp : (void *)&a, 32 - 16 * (i - 1),
                           i == 1 ? NULL : "12345678", i == 1 ? 0 : 8);

        assert_int_equal(len, lens[i]);
        memcpy(copy, buf, len);
        for (n = 0; n <= len; n++) {
            struct vfio_user_header h;

            /* Keep the header consistent with the truncated length so
             * the payload checks, not the size check, are exercised. */
            memcpy(&h, copy, sizeof(h));
            h.msg_size = (uint32_t)n;
            if (n >= 16)
                memcpy(copy, &h, sizeof(h));
            assert_int_equal(umdev_wire_decode(copy, n, i == 1, NULL, &m) == 0,
                             n == len);
            h.msg_size = (uint32_t)len;
            memcpy(copy, &h, sizeof(h));
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_qemu_exchange),
        cmocka_unit_test(test_dma_map_unmap),
        cmocka_unit_test(test_info_queries),
        cmocka_unit_test(test_set_irqs),
        cmocka_unit_test(test_region_and_dma_access),
        cmocka_unit_test(test_write_multi),
        cmocka_unit_test(test_reset_feature_migration),
        cmocka_unit_test(test_short_and_bad_argsz_every_command),
        cmocka_unit_test(test_fds_where_none_belong),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_encode_limits_and_error),
        cmocka_unit_test(test_region_caps_walk),
        cmocka_unit_test(test_truncations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
