/* Functional tests of region I/O over a real socket: widths, errors, mmap. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/vfio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "harness.h"
#include "kit_serve.h"
#include "umdev/client_testing.h"

#define BAR0 UMDEV_PCI_BAR0_REGION
#define BAR2 UMDEV_PCI_BAR2_REGION
#define BAR2_TRAPPED 0x1000u /* page 0 of BAR2 is not mappable */

static void
expect_array(struct umdev_client *c, const uint8_t *ref)
{
    uint8_t got[TESTDEV_SCRATCH_ARRAY_SIZE];

    memset(got, 0xee, sizeof(got));
    assert_int_equal(umdev_client_region_read(c, BAR0, TESTDEV_SCRATCH_ARRAY,
                                              got, sizeof(got)),
                     0);
    assert_memory_equal(got, ref, sizeof(got));
}

/* 1, 2, 4 and 8 bytes at every alignment 0..7 in the scratch array: each
 * write lands exactly where it should and nowhere else. */
static void
test_scratch_every_width_and_alignment(void **state)
{
    static const size_t widths[] = { 1, 2, 4, 8 };
    struct umdev_client *c = harness_connect(&H, NULL);
    uint8_t ref[TESTDEV_SCRATCH_ARRAY_SIZE];
    size_t w, a;

    (void)state;
    kit_fill_rand(ref, sizeof(ref), 1);
    assert_int_equal(umdev_client_region_write(c, BAR0,
                                               TESTDEV_SCRATCH_ARRAY, ref,
                                               sizeof(ref)),
                     0);
    expect_array(c, ref);
    for (w = 0; w < 4; w++) {
        for (a = 0; a < 8; a++) {
            /* A different 8-byte block for every case. */
            uint64_t off = 8 * ((w * 8 + a) % 31) + a;
            uint8_t val[8], got[8];

            assert_true(off + widths[w] <= TESTDEV_SCRATCH_ARRAY_SIZE);
            /* Reads first: the bytes the pattern put there. */
            memset(got, 0xee, sizeof(got));
            assert_int_equal(umdev_client_region_read(
                                 c, BAR0, TESTDEV_SCRATCH_ARRAY + off, got,
                                 widths[w]),
                             0);
            assert_memory_equal(got, ref + off, widths[w]);
            /* Then a write of new bytes, checked against the whole array
             * so a write that spills over its neighbours fails. */
            kit_fill_rand(val, widths[w], (uint32_t)(100 + w * 8 + a));
            assert_int_equal(umdev_client_region_write(
                                 c, BAR0, TESTDEV_SCRATCH_ARRAY + off, val,
                                 widths[w]),
                             0);
            memcpy(ref + off, val, widths[w]);
            memset(got, 0xee, sizeof(got));
            assert_int_equal(umdev_client_region_read(
                                 c, BAR0, TESTDEV_SCRATCH_ARRAY + off, got,
                                 widths[w]),
                             0);
            assert_memory_equal(got, val, widths[w]);
            expect_array(c, ref);
        }
    }
    /* The last 8 bytes of the array are still "any width". */
    assert_int_equal(umdev_client_region_write(
                         c, BAR0,
                         TESTDEV_SCRATCH_ARRAY + TESTDEV_SCRATCH_ARRAY_SIZE -
                             8,
                         "ABCDEFGH", 8),
                     0);
    memcpy(ref + TESTDEV_SCRATCH_ARRAY_SIZE - 8, "ABCDEFGH", 8);
    expect_array(c, ref);
    umdev_client_destroy(c);
}

static void
test_register_widths(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);

    (void)state;
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    /* 4-byte register. */
    reg_wr(c, TESTDEV_REG_SCRATCH, 0xa5a55a5a, 4);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_SCRATCH), 0xa5a55a5a);
    reg_wr(c, TESTDEV_REG_SCRATCH, 0x01234567, 4);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_SCRATCH), 0x01234567);
    /* 8-byte registers, both halves significant. */
    reg_wr(c, TESTDEV_REG_SCRATCH64, 0x1122334455667788ull, 8);
    assert_int_equal(reg_rd64(c, TESTDEV_REG_SCRATCH64),
                     0x1122334455667788ull);
    /* A 4-byte read of a 64-bit register gives its low half. */
    assert_int_equal(reg_rd32(c, TESTDEV_REG_SCRATCH64), 0x55667788);
    reg_wr(c, TESTDEV_REG_DMA_ADDR, 0xfedcba9876543210ull, 8);
    assert_int_equal(reg_rd64(c, TESTDEV_REG_DMA_ADDR),
                     0xfedcba9876543210ull);
    /* Read-only: the write is accepted and ignored. */
    reg_wr(c, TESTDEV_REG_ID, 0, 4);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    /* Unchanged by the others. */
    assert_int_equal(reg_rd32(c, TESTDEV_REG_SCRATCH), 0x01234567);
    umdev_client_destroy(c);
}

struct bad_access {
    uint32_t region;
    uint64_t offset;
    size_t count;
};

/* test_bad_accesses(): cases before this index are outside the region
 * (-EINVAL from lib/dev's bounds checks), the rest inside it but not in
 * the test device's mediation profile (-EACCES). */
#define FIRST_PROFILE_CASE 11

/*
 * Every bad access gets -EINVAL, read or write, is counted as exactly one
 * error reply, changes nothing, and the connection goes on.
 */
static void
test_bad_accesses(void **state)
{
    static const struct bad_access cases[] = {
        /* Past the region end, and starting at it. */
        { BAR0, TESTDEV_BAR0_SIZE - 2, 4 },
        { BAR0, TESTDEV_BAR0_SIZE, 4 },
        { BAR0, TESTDEV_BAR0_SIZE - 1, 2 },
        { BAR2, TESTDEV_BAR2_SIZE - 16, 32 },
        { BAR2, TESTDEV_BAR2_SIZE, 1 },
        /* Absent regions: index 1, and the upper half of 64-bit BAR2. */
        { UMDEV_PCI_BAR1_REGION, 0, 4 },
        { UMDEV_PCI_BAR3_REGION, 0, 4 },
        { UMDEV_PCI_ROM_REGION, 0, 4 },
        /* Indices at and beyond num_regions. */
        { UMDEV_PCI_NUM_REGIONS, 0, 4 },
        { UMDEV_MAX_REGIONS, 0, 4 },
        { 0xffffffffu, 0, 4 },
        /* Register widths the device does not take: from here on the
         * mediation profile refuses them before the device sees them. */
        { BAR0, TESTDEV_REG_SCRATCH, 1 },
        { BAR0, TESTDEV_REG_SCRATCH, 2 },
        { BAR0, TESTDEV_REG_SCRATCH, 3 },
        { BAR0, TESTDEV_REG_SCRATCH + 1, 4 },
        { BAR0, TESTDEV_REG_SCRATCH, 8 }, /* 8 bytes, 4-aligned */
        { BAR0, TESTDEV_REG_SCRATCH64 + 2, 8 },
        /* Straddling the scratch array's end: a register access. */
        { BAR0, TESTDEV_SCRATCH_ARRAY + TESTDEV_SCRATCH_ARRAY_SIZE - 4, 8 },
        /* No register there. */
        { BAR0, 0x40, 4 },
    };
    struct umdev_client *c = harness_connect(&H, NULL);
    struct harness_state before, after;
    uint8_t buf[64];
    size_t i;
    int dir;

    (void)state;
    reg_wr(c, TESTDEV_REG_SCRATCH, 0x600df00d, 4);
    reg_wr(c, TESTDEV_REG_SCRATCH64, 0x0123456789abcdefull, 8);
    harness_get_state(&H, &before);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (dir = 0; dir < 2; dir++) {
            int rc, want;

            memset(buf, 0xff, sizeof(buf));
            if (dir == 0)
                rc = umdev_client_region_read(c, cases[i].region,
                                              cases[i].offset, buf,
                                              cases[i].count);
            else
                rc = umdev_client_region_write(c, cases[i].region,
                                               cases[i].offset, buf,
                                               cases[i].count);
            want = i < FIRST_PROFILE_CASE ? -EINVAL : -EACCES;
            if (rc != want)
                print_error("case %zu (%s region %u offset 0x%llx count "
                            "%zu): %d\n",
                            i, dir ? "write" : "read", cases[i].region,
                            (unsigned long long)cases[i].offset,
                            cases[i].count, rc);
            assert_int_equal(rc, want);
            /* A good read right after. */
            assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
        }
    }
    harness_get_state(&H, &after);
    assert_int_equal(after.stats.errors - before.stats.errors,
                     2 * sizeof(cases) / sizeof(cases[0]));
    assert_true(after.attached);
    /* The refused writes of 0xff bytes changed nothing. */
    assert_int_equal(reg_rd32(c, TESTDEV_REG_SCRATCH), 0x600df00d);
    assert_int_equal(reg_rd64(c, TESTDEV_REG_SCRATCH64),
                     0x0123456789abcdefull);
    umdev_client_destroy(c);
}

struct bar2_copy {
    uint8_t data[TESTDEV_BAR2_SIZE];
};

static void
copy_bar2(struct umdev_dev *dev, void *arg)
{
    struct bar2_copy *b = arg;
    const void *mem = umdev_dev_region_mem(dev, BAR2);

    if (mem != NULL)
        memcpy(b->data, mem, sizeof(b->data));
    else
        memset(b->data, 0xee, sizeof(b->data));
}

/* Write @len bytes at @off through REGION_WRITE, read them back through
 * REGION_READ, and check the server's own view of BAR2 too. */
static void
bar2_roundtrip(struct umdev_client *c, uint64_t off, size_t len,
               uint32_t seed)
{
    static uint8_t out[TESTDEV_BAR2_SIZE], back[TESTDEV_BAR2_SIZE];
    static struct bar2_copy server;

    kit_fill_rand(out, len, seed);
    memset(back, 0, len);
    assert_int_equal(umdev_client_region_write(c, BAR2, off, out, len), 0);
    assert_int_equal(umdev_client_region_read(c, BAR2, off, back, len), 0);
    assert_memory_equal(back, out, len);
    harness_call(&H, copy_bar2, &server);
    assert_memory_equal(server.data + off, out, len);
}

static void
test_bar2_large_transfers(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct umdev_dev_stats s0;
    struct harness_state st;

    (void)state;
    harness_get_state(&H, &st);
    s0 = st.stats;
    /* 4 KiB: the trapped page, then a page of the mappable part. */
    bar2_roundtrip(c, 0, 4096, 11);
    bar2_roundtrip(c, BAR2_TRAPPED + 0x3000, 4096, 12);
    /* 60 KiB: all of the mappable part; then across the boundary. */
    bar2_roundtrip(c, BAR2_TRAPPED, TESTDEV_BAR2_SIZE - BAR2_TRAPPED, 13);
    bar2_roundtrip(c, 0x800, 60 * 1024, 14);
    /* The whole BAR in one message, and odd sizes and offsets. */
    bar2_roundtrip(c, 0, TESTDEV_BAR2_SIZE, 15);
    bar2_roundtrip(c, 0xffd, 7, 16);
    bar2_roundtrip(c, TESTDEV_BAR2_SIZE - 1, 1, 17);
    /* One message each way per transfer (all within max_data_xfer_size). */
    harness_get_state(&H, &st);
    assert_int_equal(st.stats.region_writes - s0.region_writes, 7);
    assert_int_equal(st.stats.region_reads - s0.region_reads, 7);
    assert_int_equal(st.stats.errors, s0.errors);
    umdev_client_destroy(c);
}

/*
 * A client that advertises a small max_data_xfer_size must split reads by
 * its own limit too, not only by the server's: the reply to a read carries
 * the data it asked for, and a 60 KiB reply would exceed what the client
 * said it accepts (lib/client/client.c region_access() once returned
 * -EPROTO here).
 */
static void
test_small_client_transfer_limit(void **state)
{
    struct umdev_client_opts o = { .max_data_xfer_size = 4096 };
    static uint8_t out[60 * 1024], back[60 * 1024];
    struct umdev_client *c = harness_connect(&H, &o);

    (void)state;
    kit_fill_rand(out, sizeof(out), 21);
    assert_int_equal(umdev_client_region_write(c, BAR2, BAR2_TRAPPED, out,
                                               sizeof(out)),
                     0);
    assert_int_equal(umdev_client_region_read(c, BAR2, BAR2_TRAPPED, back,
                                              sizeof(back)),
                     0);
    assert_memory_equal(back, out, sizeof(out));
    umdev_client_destroy(c);
}

/* A raw GET_REGION_INFO reply: its payload, its header, and the region
 * info at the payload's start. */
struct raw_info {
    uint8_t b[256];
    size_t len;
    struct vfio_user_header rh;
    struct vfio_user_region_info ri;
};

/* GET_REGION_INFO of region @index with @argsz, the reply in @r.
 * Return: the client's result. */
static int
raw_region_info(struct umdev_client *c, uint32_t index, uint32_t argsz,
                struct raw_info *r)
{
    struct vfio_user_region_info req = { .argsz = argsz, .index = index };
    int rc = umdev_client_raw(c, VFIO_USER_DEVICE_GET_REGION_INFO, 0, &req,
                              sizeof(req), NULL, 0, r->b, sizeof(r->b), &r->len,
                              &r->rh);

    if (rc == 0)
        memcpy(&r->ri, r->b, sizeof(r->ri));
    return rc;
}

/* GET_REGION_INFO of BAR2 on the wire: a too-small argsz gets the size
 * needed and no capability; a large one gets the sparse-mmap capability
 * and the region's fd. */
static void
test_bar2_region_info_wire(void **state)
{
    struct umdev_client *c = harness_connect(&H, NULL);
    struct vfio_user_cap_sparse_mmap sp;
    struct vfio_user_sparse_area area;
    struct raw_info r;

    (void)state;
    assert_int_equal(raw_region_info(c, BAR2, sizeof(r.ri), &r), 0);
    assert_int_equal(r.len, sizeof(r.ri));
    assert_int_equal(r.ri.argsz, sizeof(r.ri) + sizeof(sp) + sizeof(area));
    assert_int_equal(r.ri.cap_offset, 0);
    assert_int_equal(r.ri.size, TESTDEV_BAR2_SIZE);
    /* No chain in a short reply, so no CAPS flag (QEMU checks it). */
    assert_int_equal(r.ri.flags, VFIO_REGION_INFO_FLAG_READ |
                                     VFIO_REGION_INFO_FLAG_WRITE |
                                     VFIO_REGION_INFO_FLAG_MMAP);

    assert_int_equal(raw_region_info(c, BAR2, 512, &r), 0);
    assert_int_equal(r.len, sizeof(r.ri) + sizeof(sp) + sizeof(area));
    assert_int_equal(r.ri.argsz, r.len);
    assert_int_equal(r.ri.index, BAR2);
    assert_int_equal(r.ri.cap_offset, sizeof(r.ri));
    memcpy(&sp, r.b + r.ri.cap_offset, sizeof(sp));
    assert_int_equal(sp.header.id, VFIO_USER_REGION_CAP_SPARSE_MMAP);
    assert_int_equal(sp.header.version, 1);
    assert_int_equal(sp.header.next, 0);
    assert_int_equal(sp.nr_areas, 1);
    memcpy(&area, r.b + r.ri.cap_offset + sizeof(sp), sizeof(area));
    assert_int_equal(area.offset, BAR2_TRAPPED);
    assert_int_equal(area.size, TESTDEV_BAR2_SIZE - BAR2_TRAPPED);
    assert_int_equal(r.rh.msg_size, sizeof(r.rh) + r.len);

    /* An absent region: present in the list, empty. */
    assert_int_equal(raw_region_info(c, UMDEV_PCI_BAR1_REGION, 512, &r), 0);
    assert_int_equal(r.len, sizeof(r.ri));
    assert_int_equal(r.ri.size, 0);
    assert_int_equal(r.ri.flags, 0);
    /* Beyond num_regions: refused, and the connection goes on. */
    assert_int_equal(raw_region_info(c, UMDEV_PCI_NUM_REGIONS, 512, &r),
                     -EINVAL);
    assert_int_equal(reg_rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(c);
}

static void
test_sparse_mmap(void **state)
{
    static uint8_t page0[BAR2_TRAPPED], rest[TESTDEV_BAR2_SIZE -
                                             BAR2_TRAPPED];
    static uint8_t back[TESTDEV_BAR2_SIZE];
    struct umdev_client *c = harness_connect(&H, NULL);
    struct umdev_client_region r;
    uint8_t *map;
    void *p;
    size_t len, i;

    (void)state;
    assert_int_equal(umdev_client_region_info(c, BAR2, &r), 0);
    assert_int_equal(r.flags, VFIO_REGION_INFO_FLAG_READ |
                                  VFIO_REGION_INFO_FLAG_WRITE |
                                  VFIO_REGION_INFO_FLAG_MMAP |
                                  VFIO_REGION_INFO_FLAG_CAPS);
    assert_int_equal(r.size, TESTDEV_BAR2_SIZE);
    assert_int_equal(r.nr_areas, 1);
    assert_int_equal(r.areas[0].offset, BAR2_TRAPPED);
    assert_int_equal(r.areas[0].size, TESTDEV_BAR2_SIZE - BAR2_TRAPPED);
    assert_true(r.fd >= 0);
    /* BAR0 is trapped only. */
    assert_int_equal(umdev_client_region_info(c, BAR0, &r), 0);
    assert_int_equal(r.flags, VFIO_REGION_INFO_FLAG_READ |
                                  VFIO_REGION_INFO_FLAG_WRITE);
    assert_int_equal(r.size, TESTDEV_BAR0_SIZE);
    assert_int_equal(umdev_client_region_mmap(c, BAR0, 0, &p, &len),
                     -ENODEV);

    /* Distinct contents for the trapped page and the rest. */
    kit_fill_rand(page0, sizeof(page0), 31);
    kit_fill_rand(rest, sizeof(rest), 32);
    assert_int_equal(umdev_client_region_write(c, BAR2, 0, page0,
                                               sizeof(page0)),
                     0);
    assert_int_equal(umdev_client_region_write(c, BAR2, BAR2_TRAPPED, rest,
                                               sizeof(rest)),
                     0);
    assert_int_equal(umdev_client_region_mmap(c, BAR2, 0, &p, &len), 0);
    map = p;
    assert_int_equal(len, TESTDEV_BAR2_SIZE - BAR2_TRAPPED);
    /* The mapping starts at region offset 0x1000: page 0 is not in it. */
    assert_memory_equal(map, rest, len);
    assert_int_equal(umdev_client_region_mmap(c, BAR2, 1, &p, &len),
                     -ENODEV);

    /* Through the mapping, then REGION_READ sees it. */
    for (i = 0; i < 64; i++)
        map[0x2000 + i] = (uint8_t)(0xc0 + i);
    map[len - 1] = 0x5a;
    memset(back, 0, sizeof(back));
    assert_int_equal(umdev_client_region_read(c, BAR2, 0, back,
                                              sizeof(back)),
                     0);
    for (i = 0; i < 64; i++)
        assert_int_equal(back[BAR2_TRAPPED + 0x2000 + i], 0xc0 + i);
    assert_int_equal(back[TESTDEV_BAR2_SIZE - 1], 0x5a);
    /* ...and the trapped page is untouched by writes to the mapping. */
    assert_memory_equal(back, page0, sizeof(page0));

    /* Through REGION_WRITE, then the mapping sees it. */
    assert_int_equal(umdev_client_region_write(c, BAR2, BAR2_TRAPPED + 8,
                                               "mmap-coherent", 13),
                     0);
    assert_memory_equal(map + 8, "mmap-coherent", 13);
    /* A write to page 0 does not show up anywhere in the mapping. */
    assert_int_equal(umdev_client_region_write(c, BAR2, 0x10, "page0", 5),
                     0);
    assert_memory_equal(map + 8, "mmap-coherent", 13);
    assert_memory_not_equal(map + 0x10, "page0", 5);
    umdev_client_destroy(c);
}

/*
 * UMDEV_WIRE_MAX_SPARSE_AREAS (64): a region with 64 mmappable areas is
 * made and a client gets all of them; 65 are refused when the region is
 * added, which leaves it absent.
 */
static void
test_sparse_areas_limit(void **state)
{
    enum { N = UMDEV_WIRE_MAX_SPARSE_AREAS };
    static struct umdev_mmap_area areas[N + 1];
    struct umdev_dev_info info = { .name = "areas" };
    struct umdev_region_desc rd = {
        .size = 2 * (N + 1) * 4096ull,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .shm = true,
        .areas = areas,
    };
    struct umdev_client_region r;
    struct umdev_client *c;
    struct kit_serve s;
    struct umdev_dev *dev;
    size_t i;

    (void)state;
    /* Every other page. */
    for (i = 0; i <= N; i++)
        areas[i] = (struct umdev_mmap_area){ 2 * i * 4096, 4096 };
    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    rd.nr_areas = N + 1;
    assert_int_equal(umdev_dev_region_add(dev, 1, &rd), -EINVAL);
    rd.nr_areas = N;
    assert_int_equal(umdev_dev_region_add(dev, 0, &rd), 0);
    assert_int_equal(kit_serve_init(&s, "areas"), 0);
    assert_int_equal(kit_serve_add(&s, "areas", dev, NULL, NULL), 0);
    assert_int_equal(kit_serve_start(&s), 0);
    assert_int_equal(umdev_client_connect(s.devs[0].path, NULL, &c), 0);
    assert_int_equal(umdev_client_region_info(c, 0, &r), 0);
    assert_int_equal(r.nr_areas, N);
    for (i = 0; i < N; i++) {
        assert_int_equal(r.areas[i].offset, areas[i].offset);
        assert_int_equal(r.areas[i].size, areas[i].size);
    }
    if (r.fd >= 0)
        close(r.fd);
    /* The refused one is not there: the device has one region. */
    assert_int_equal(umdev_client_region_info(c, 1, &r), -EINVAL);
    umdev_client_destroy(c);
    assert_int_equal(kit_serve_stop(&s, 5000), 0);
    umdev_dev_destroy(dev);
}

static ssize_t
last_region_access(void *opaque, uint64_t offset, void *buf, size_t count,
                   bool is_write)
{
    (void)opaque;
    if (!is_write)
        memset(buf, (int)(0x40 + offset), count);
    return (ssize_t)count;
}

/*
 * UMDEV_MAX_REGIONS (16) and UMDEV_MAX_IRQ_VECTORS (2048): a device may
 * have region index 15 and an IRQ index of 2048 vectors, and a client
 * reaches both ends; region 16 and 2049 vectors are refused when the
 * device is built, and the client's index 16 and vector 2048 with EINVAL.
 */
static void
test_device_bounds(void **state)
{
    struct umdev_dev_info info = { .name = "bounds" };
    struct umdev_region_desc rd = {
        .size = 4096,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = last_region_access,
    };
    struct umdev_client_region r;
    struct umdev_client_irq_info ii;
    struct umdev_client *c;
    struct kit_serve s;
    struct umdev_dev *dev;
    uint8_t b[4];
    int efd;

    (void)state;
    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    assert_int_equal(umdev_dev_region_add(dev, UMDEV_MAX_REGIONS, &rd),
                     -EINVAL);
    assert_int_equal(umdev_dev_region_add(dev, UMDEV_MAX_REGIONS - 1, &rd), 0);
    assert_int_equal(umdev_dev_irq_add(dev, 1, UMDEV_MAX_IRQ_VECTORS + 1, 0),
                     -EINVAL);
    assert_int_equal(umdev_dev_irq_add(dev, 0, UMDEV_MAX_IRQ_VECTORS, 0), 0);
    assert_int_equal(kit_serve_init(&s, "bounds"), 0);
    assert_int_equal(kit_serve_add(&s, "bounds", dev, NULL, NULL), 0);
    assert_int_equal(kit_serve_start(&s), 0);
    assert_int_equal(umdev_client_connect(s.devs[0].path, NULL, &c), 0);

    assert_int_equal(umdev_client_region_info(c, UMDEV_MAX_REGIONS - 1, &r), 0);
    assert_int_equal(r.size, 4096);
    assert_int_equal(
        umdev_client_region_read(c, UMDEV_MAX_REGIONS - 1, 8, b, sizeof(b)), 0);
    assert_int_equal(b[0], 0x48);
    assert_int_equal(umdev_client_region_info(c, UMDEV_MAX_REGIONS, &r),
                     -EINVAL);
    assert_int_equal(
        umdev_client_region_read(c, UMDEV_MAX_REGIONS, 0, b, sizeof(b)),
        -EINVAL);

    assert_int_equal(umdev_client_irq_info(c, 0, &ii), 0);
    assert_int_equal(ii.count, UMDEV_MAX_IRQ_VECTORS);
    efd = eventfd(0, EFD_CLOEXEC);
    assert_true(efd >= 0);
    assert_int_equal(
        umdev_client_set_irqs(
            c, 0, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            UMDEV_MAX_IRQ_VECTORS - 1, 1, &efd, NULL),
        0);
    assert_int_equal(
        umdev_client_set_irqs(
            c, 0, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
            UMDEV_MAX_IRQ_VECTORS, 1, &efd, NULL),
        -EINVAL);
    close(efd);
    umdev_client_destroy(c);
    assert_int_equal(kit_serve_stop(&s, 5000), 0);
    umdev_dev_destroy(dev);
}

static const struct CMUnitTest tests[] = {
    HARNESS_TEST(test_scratch_every_width_and_alignment),
    HARNESS_TEST(test_register_widths),
    HARNESS_TEST(test_bad_accesses),
    HARNESS_TEST(test_bar2_large_transfers),
    HARNESS_TEST(test_bar2_region_info_wire),
    HARNESS_TEST(test_sparse_mmap),
    HARNESS_TEST(test_small_client_transfer_limit),
    cmocka_unit_test(test_sparse_areas_limit),
    cmocka_unit_test(test_device_bounds),
};

HARNESS_MAIN("func.io", tests)
