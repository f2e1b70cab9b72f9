/*
 * The nvme command parser (devices/nvme/nvme_cmd.c): each bad field gets
 * the status the NVMe base specification names, good commands decode to
 * the right byte ranges, and PRP walks (one page, two, lists chained
 * across list pages) yield exactly the guest ranges a driver described.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvme_be.h"
#include "nvme_cmd.h"

#define PAGE 4096u

static const struct nvme_geom G = {
    .nlba = 2048, /* 1 MiB of 512-byte blocks */
    .lba_shift = 9,
    .max_xfer = 256 * 1024,
};

static struct nvme_sqe
io_cmd(uint8_t opc, uint64_t slba, uint32_t nlb)
{
    struct nvme_sqe s = {
        .opcode = opc,
        .cid = 7,
        .nsid = 1,
        .prp1 = 0x10000,
        .cdw10 = (uint32_t)slba,
        .cdw11 = (uint32_t)(slba >> 32),
        .cdw12 = nlb - 1,
    };
    return s;
}

static uint16_t
parse(const struct nvme_sqe *s, struct nvme_io *io)
{
    uint8_t raw[NVME_SQE_SIZE], again[NVME_SQE_SIZE];
    struct nvme_sqe d;

    /* Through the bytes, as the controller sees them. */
    nvme_sqe_encode(s, raw);
    nvme_sqe_decode(raw, &d);
    nvme_sqe_encode(&d, again);
    assert_memory_equal(raw, again, sizeof(raw));
    return nvme_io_parse(&d, &G, io);
}

static void
test_sqe_bytes(void **state)
{
    uint8_t raw[NVME_SQE_SIZE] = { 0 };
    struct nvme_sqe s;

    (void)state;
    raw[0] = 0x02;                  /* opcode */
    raw[1] = 0x01 | 0x40;           /* FUSE 01b, PSDT 01b */
    raw[2] = 0x34, raw[3] = 0x12;   /* CID */
    raw[4] = 1;                     /* NSID */
    raw[24] = 0x00, raw[25] = 0x20; /* PRP1 0x2000 */
    raw[40] = 0x10;                 /* CDW10 */
    raw[48] = 0x07;                 /* CDW12 */
    nvme_sqe_decode(raw, &s);
    assert_int_equal(s.opcode, 0x02);
    assert_int_equal(s.fuse, 1);
    assert_int_equal(s.psdt, 1);
    assert_int_equal(s.cid, 0x1234);
    assert_int_equal(s.nsid, 1);
    assert_int_equal(s.prp1, 0x2000);
    assert_int_equal(s.cdw10, 0x10);
    assert_int_equal(s.cdw12, 7);
}

static void
test_io_good(void **state)
{
    struct nvme_sqe s = io_cmd(NVME_CMD_READ, 10, 8);
    struct nvme_io io;

    (void)state;
    assert_int_equal(parse(&s, &io), NVME_SC_SUCCESS);
    assert_int_equal(io.kind, NVME_IO_READ);
    assert_int_equal(io.offset, 10 * 512);
    assert_int_equal(io.len, 8 * 512);
    assert_false(io.fua);

    s = io_cmd(NVME_CMD_WRITE, 2040, 8); /* the last blocks exactly */
    s.cdw12 |= NVME_RW_FUA;
    assert_int_equal(parse(&s, &io), NVME_SC_SUCCESS);
    assert_int_equal(io.kind, NVME_IO_WRITE);
    assert_true(io.fua);

    s = io_cmd(NVME_CMD_WRITE_ZEROES, 0, 2048); /* no MDTS bound */
    s.cdw12 |= NVME_WZ_DEAC;
    assert_int_equal(parse(&s, &io), NVME_SC_SUCCESS);
    assert_int_equal(io.kind, NVME_IO_WRITE_ZEROES);
    assert_int_equal(io.len, 1024 * 1024);
    assert_true(io.deallocate);

    s = io_cmd(NVME_CMD_FLUSH, 0, 1);
    s.nsid = NVME_NSID_BROADCAST; /* flush of every namespace */
    assert_int_equal(parse(&s, &io), NVME_SC_SUCCESS);
    assert_int_equal(io.kind, NVME_IO_FLUSH);

    s = io_cmd(NVME_CMD_DSM, 0, 1);
    s.cdw10 = 255; /* 256 ranges */
    s.cdw11 = NVME_DSM_AD;
    assert_int_equal(parse(&s, &io), NVME_SC_SUCCESS);
    assert_int_equal(io.nr_ranges, 256);
    assert_true(io.deallocate);
}

static void
test_io_bad(void **state)
{
    struct nvme_sqe s;
    struct nvme_io io;

    (void)state;
    s = io_cmd(0x7f, 0, 1);
    assert_int_equal(parse(&s, &io), NVME_SC_INVALID_OPCODE | NVME_DNR);
    s = io_cmd(NVME_CMD_READ, 0, 1);
    s.fuse = 1;
    assert_int_equal(parse(&s, &io), NVME_SC_INVALID_FIELD | NVME_DNR);
    s = io_cmd(NVME_CMD_READ, 0, 1);
    s.psdt = 1; /* SGL: not supported */
    assert_int_equal(parse(&s, &io), NVME_SC_INVALID_FIELD | NVME_DNR);
    s = io_cmd(NVME_CMD_READ, 0, 1);
    s.nsid = 2;
    assert_int_equal(parse(&s, &io), NVME_SC_INVALID_NS | NVME_DNR);
    s.nsid = 0;
    assert_int_equal(parse(&s, &io), NVME_SC_INVALID_NS | NVME_DNR);
    s.nsid = NVME_NSID_BROADCAST; /* only flush takes it */
    assert_int_equal(parse(&s, &io), NVME_SC_INVALID_NS | NVME_DNR);
    /* One block past the end, the start past the end, and a start
     * whose sum with the count wraps. */
    s = io_cmd(NVME_CMD_WRITE, 2041, 8);
    assert_int_equal(parse(&s, &io), NVME_SC_LBA_RANGE | NVME_DNR);
    s = io_cmd(NVME_CMD_READ, 2048, 1);
    assert_int_equal(parse(&s, &io), NVME_SC_LBA_RANGE | NVME_DNR);
    s = io_cmd(NVME_CMD_READ, UINT64_MAX - 2, 8);
    assert_int_equal(parse(&s, &io), NVME_SC_LBA_RANGE | NVME_DNR);
    s = io_cmd(NVME_CMD_WRITE_ZEROES, 2000, 49);
    assert_int_equal(parse(&s, &io), NVME_SC_LBA_RANGE | NVME_DNR);
    /* Above MDTS (256 KiB = 512 blocks). */
    s = io_cmd(NVME_CMD_READ, 0, 513);
    assert_int_equal(parse(&s, &io), NVME_SC_INVALID_FIELD | NVME_DNR);
    s = io_cmd(NVME_CMD_READ, 0, 512);
    assert_int_equal(parse(&s, &io), NVME_SC_SUCCESS);
}

static void
put_range(uint8_t *b, unsigned int i, uint64_t slba, uint32_t nlb)
{
    nvme_put32(b + i * 16 + 4, nlb);
    nvme_put64(b + i * 16 + 8, slba);
}

static void
test_dsm_ranges(void **state)
{
    uint8_t b[3 * 16] = { 0 };
    struct nvme_range r[3];

    (void)state;
    put_range(b, 0, 0, 8);
    put_range(b, 1, 100, 0); /* empty: no-op */
    put_range(b, 2, 2040, 8);
    assert_int_equal(nvme_dsm_ranges(b, 3, &G, r), NVME_SC_SUCCESS);
    assert_int_equal(r[0].offset, 0);
    assert_int_equal(r[0].len, 4096);
    assert_int_equal(r[1].len, 0);
    assert_int_equal(r[2].offset, 2040 * 512);
    put_range(b, 2, 2041, 8);
    assert_int_equal(nvme_dsm_ranges(b, 3, &G, r),
                     NVME_SC_LBA_RANGE | NVME_DNR);
}

/* Guest memory for the PRP walk: 64 pages at MEM, readable. */
#define MEM 0x100000ull
static uint8_t mem[64 * PAGE];
static unsigned int reads;

static int
rd(void *opaque, uint64_t addr, void *buf, size_t len)
{
    (void)opaque;
    reads++;
    if (addr < MEM || addr + len > MEM + sizeof(mem))
        return -14;
    memcpy(buf, mem + (addr - MEM), len);
    return 0;
}

static void
test_prp_simple(void **state)
{
    struct nvme_seg s[8];
    size_t n;

    (void)state;
    /* Inside PRP1's page: PRP2 is not looked at. */
    assert_int_equal(
        nvme_prp_walk(0x5200, 0xdead, 512, PAGE, rd, NULL, s, 8, &n),
        NVME_SC_SUCCESS);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].addr, 0x5200);
    assert_int_equal(s[0].len, 512);
    /* Crossing into PRP2's page; adjacent pages merge. */
    assert_int_equal(
        nvme_prp_walk(0x5e00, 0x6000, 1024, PAGE, rd, NULL, s, 8, &n),
        NVME_SC_SUCCESS);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].len, 1024);
    assert_int_equal(
        nvme_prp_walk(0x5e00, 0x9000, 1024, PAGE, rd, NULL, s, 8, &n),
        NVME_SC_SUCCESS);
    assert_int_equal(n, 2);
    assert_int_equal(s[1].addr, 0x9000);
    assert_int_equal(s[1].len, 512);
    /* A page size no list could make progress with is refused, not
     * walked forever. */
    assert_int_equal(nvme_prp_walk(0x5e00, 0x9000, 1024, 8, rd, NULL, s, 8, &n),
                     NVME_SC_INTERNAL | NVME_DNR);
    assert_int_equal(
        nvme_prp_walk(0x5e00, 0x9000, 1024, 3000, rd, NULL, s, 8, &n),
        NVME_SC_INTERNAL | NVME_DNR);
    /* The last page of the address space and page 0 are not adjacent:
     * two segments, none wrapping around (one did). */
    assert_int_equal(nvme_prp_walk(0xfffffffffffff000ull, 0, 2 * PAGE, PAGE, rd,
                                   NULL, s, 8, &n),
                     NVME_SC_SUCCESS);
    assert_int_equal(n, 2);
    assert_int_equal(s[0].len, PAGE);
    assert_int_equal(s[1].addr, 0);
    /* PRP2 as a data pointer carries no offset; PRP1 is dword aligned. */
    assert_int_equal(
        nvme_prp_walk(0x5e00, 0x9200, 1024, PAGE, rd, NULL, s, 8, &n),
        NVME_SC_PRP_OFFSET_INVALID | NVME_DNR);
    assert_int_equal(
        nvme_prp_walk(0x5e02, 0x9000, 1024, PAGE, rd, NULL, s, 8, &n),
        NVME_SC_PRP_OFFSET_INVALID | NVME_DNR);
}

static void
test_prp_list(void **state)
{
    struct nvme_seg s[16];
    uint8_t *list = mem + 0x1ff0; /* two entries left in that page */
    size_t n;

    (void)state;
    memset(mem, 0, sizeof(mem));
    /* 5 pages after PRP1's: the first list page holds two entries, the
     * second of which chains to a list page at MEM + 0x3000. */
    nvme_put64(list, 0x40000);
    nvme_put64(list + 8, MEM + 0x3000);
    nvme_put64(mem + 0x3000, 0x50000);
    nvme_put64(mem + 0x3008, 0x51000); /* merges with the previous */
    nvme_put64(mem + 0x3010, 0x70000);
    nvme_put64(mem + 0x3018, 0x90000);
    reads = 0;
    assert_int_equal(nvme_prp_walk(0x20800, MEM + 0x1ff0,
                                   0x800 + 4 * PAGE + 100, PAGE, rd, NULL, s,
                                   16, &n),
                     NVME_SC_SUCCESS);
    assert_int_equal(n, 5);
    assert_int_equal(s[0].addr, 0x20800);
    assert_int_equal(s[0].len, 0x800);
    assert_int_equal(s[1].addr, 0x40000);
    assert_int_equal(s[2].addr, 0x50000);
    assert_int_equal(s[2].len, 2 * PAGE);
    assert_int_equal(s[3].addr, 0x70000);
    assert_int_equal(s[4].addr, 0x90000);
    assert_int_equal(s[4].len, 100);
    assert_int_equal(reads, 2);

    /* A data entry with an offset, a chain pointer with one. */
    nvme_put64(mem + 0x3010, 0x70200);
    assert_int_equal(nvme_prp_walk(0x20800, MEM + 0x1ff0,
                                   0x800 + 4 * PAGE + 100, PAGE, rd, NULL, s,
                                   16, &n),
                     NVME_SC_PRP_OFFSET_INVALID | NVME_DNR);
    nvme_put64(mem + 0x3010, 0x70000);
    nvme_put64(list + 8, MEM + 0x3008);
    assert_int_equal(nvme_prp_walk(0x20800, MEM + 0x1ff0,
                                   0x800 + 4 * PAGE + 100, PAGE, rd, NULL, s,
                                   16, &n),
                     NVME_SC_PRP_OFFSET_INVALID | NVME_DNR);
    /* A list the device cannot read: Data Transfer Error. */
    assert_int_equal(
        nvme_prp_walk(0x20800, 0x900000, 3 * PAGE, PAGE, rd, NULL, s, 16, &n),
        NVME_SC_DATA_XFER_ERROR);
    /* A list pointer not qword aligned. */
    assert_int_equal(
        nvme_prp_walk(0x20800, MEM + 4, 3 * PAGE, PAGE, rd, NULL, s, 16, &n),
        NVME_SC_PRP_OFFSET_INVALID | NVME_DNR);
    /* More segments than the caller has room for. */
    nvme_put64(mem, 0x40000);
    nvme_put64(mem + 8, 0x60000);
    nvme_put64(mem + 16, 0x80000);
    assert_int_equal(
        nvme_prp_walk(0x20000, MEM, 4 * PAGE, PAGE, rd, NULL, s, 3, &n),
        NVME_SC_INTERNAL | NVME_DNR);
    assert_int_equal(
        nvme_prp_walk(0x20000, MEM, 4 * PAGE, PAGE, rd, NULL, s, 4, &n),
        NVME_SC_SUCCESS);
}

static uint16_t
admin(struct nvme_sqe *s, struct nvme_admin *a)
{
    return nvme_admin_parse(s, PAGE, a);
}

static void
test_admin(void **state)
{
    struct nvme_sqe s;
    struct nvme_admin a;

    (void)state;
    memset(&s, 0, sizeof(s));
    s.opcode = 0x80; /* Format NVM: not implemented */
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_OPCODE | NVME_DNR);
    s.opcode = NVME_ADM_IDENTIFY;
    s.cdw10 = 0x10; /* CNS 10h: not supported */
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);
    s.cdw10 = NVME_CNS_CTRL;
    assert_int_equal(admin(&s, &a), NVME_SC_SUCCESS);
    s.cdw10 = NVME_CNS_CS_CTRL;
    s.cdw11 = 0x02u << 24; /* CSI: zoned namespaces */
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);
    s.cdw11 = 0;
    assert_int_equal(admin(&s, &a), NVME_SC_SUCCESS);
    s.cdw10 = NVME_CNS_CTRL;
    s.psdt = 1;
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);

    memset(&s, 0, sizeof(s));
    s.opcode = NVME_ADM_CREATE_CQ;
    s.prp1 = 0x10000;
    s.cdw10 = 1 | 63u << 16;
    s.cdw11 = 1 | 2 | 3u << 16;
    assert_int_equal(admin(&s, &a), NVME_SC_SUCCESS);
    assert_int_equal(a.qid, 1);
    assert_int_equal(a.qsize, 64);
    assert_true(a.ien);
    assert_int_equal(a.iv, 3);
    s.cdw10 = 1; /* QSIZE 0 */
    assert_int_equal(admin(&s, &a), NVME_SC_QUEUE_SIZE | NVME_DNR);
    /* QSIZE FFFFh: 65536 entries, a count 16 bits cannot hold (a 0 that
     * passed every size check divided by zero in the poller). */
    s.cdw10 = 1 | 0xffffu << 16;
    assert_int_equal(admin(&s, &a), NVME_SC_SUCCESS);
    assert_int_equal(a.qsize, 65536);
    s.cdw10 = 0 | 63u << 16;
    assert_int_equal(admin(&s, &a), NVME_SC_QID_INVALID | NVME_DNR);
    s.cdw10 = 1 | 63u << 16;
    s.cdw11 = 2; /* not physically contiguous */
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);
    s.cdw11 = 1;
    s.prp1 = 0x10200;
    assert_int_equal(admin(&s, &a), NVME_SC_PRP_OFFSET_INVALID | NVME_DNR);

    s.opcode = NVME_ADM_CREATE_SQ;
    s.prp1 = 0x10000;
    s.cdw11 = 1; /* CQID 0 */
    assert_int_equal(admin(&s, &a), NVME_SC_CQ_INVALID | NVME_DNR);

    memset(&s, 0, sizeof(s));
    s.opcode = NVME_ADM_GET_LOG_PAGE;
    s.cdw10 = NVME_LOG_SMART | 127u << 16;
    assert_int_equal(admin(&s, &a), NVME_SC_SUCCESS);
    assert_int_equal(a.log_len, 512);
    s.cdw10 = 0xc0 | 127u << 16;
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_LOG_PAGE | NVME_DNR);
    /* NUMD 4000_0000h: 2^30 + 1 dwords, whose byte count wrapped to 4 in
     * 32 bits and succeeded as a 4-byte read. */
    s.cdw10 = NVME_LOG_SMART;
    s.cdw11 = 0x4000;
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);
    s.cdw10 = NVME_LOG_SMART | 0xfffeu << 16; /* the largest: 2^32 - 4 B */
    s.cdw11 = 0x3fff;
    assert_int_equal(admin(&s, &a), NVME_SC_SUCCESS);
    assert_int_equal(a.log_len, 0xfffffffcu);
    s.cdw11 = 0;
    s.cdw10 = NVME_LOG_SMART | 127u << 16;
    s.cdw12 = 2; /* offset not dword aligned */
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);

    memset(&s, 0, sizeof(s));
    s.opcode = NVME_ADM_SET_FEATURES;
    s.cdw10 = NVME_FEAT_NUM_QUEUES | 1u << 31; /* save */
    assert_int_equal(admin(&s, &a), NVME_SC_FEAT_NOT_SAVEABLE | NVME_DNR);
    s.opcode = NVME_ADM_GET_FEATURES;
    s.cdw10 = NVME_FEAT_NUM_QUEUES | 4u << 8; /* SEL 100b */
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);

    memset(&s, 0, sizeof(s));
    s.opcode = NVME_ADM_DBBUF_CONFIG;
    s.prp1 = 0x10000;
    s.prp2 = 0x20100;
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);
    s.prp2 = 0x20000;
    assert_int_equal(admin(&s, &a), NVME_SC_SUCCESS);
    s.prp1 = 0;
    assert_int_equal(admin(&s, &a), NVME_SC_INVALID_FIELD | NVME_DNR);
}

/* The file backend's ring refuses every operation but the four it
 * needs (the worker sandbox relies on it). */
static void
test_ring_restricted(void **state)
{
    char path[] = "/tmp/umdev-nvme-ring-XXXXXX", err[200];
    struct nvme_be *be;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    assert_int_equal(nvme_be_open_file(path, 1 << 20, &be, err, sizeof(err)),
                     0);
    assert_int_equal(nvme_be_probe_op(be, IORING_OP_OPENAT), -EACCES);
    assert_int_equal(nvme_be_probe_op(be, IORING_OP_SOCKET), -EACCES);
    assert_int_equal(nvme_be_probe_op(be, IORING_OP_NOP), -EACCES);
    /* Allowed ones get as far as their bad fd. */
    assert_int_equal(nvme_be_probe_op(be, IORING_OP_FSYNC), -EBADF);
    nvme_be_close(be);
    close(fd);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqe_bytes),
        cmocka_unit_test(test_io_good),
        cmocka_unit_test(test_io_bad),
        cmocka_unit_test(test_dsm_ranges),
        cmocka_unit_test(test_prp_simple),
        cmocka_unit_test(test_prp_list),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_ring_restricted),
    };

    return cmocka_run_group_tests_name("unit.nvme_cmd", tests, NULL, NULL);
}
