/*
 * umdev-nvme-drive: act as a VMM plus a polled NVMe guest driver for an
 * nvme subdevice and move verified data through it. It maps guest memory
 * (a memfd) for DMA, turns on bus mastering, brings the controller up
 * (admin queues, CC.EN, CSTS.RDY), reads the namespace's size and block
 * size from Identify, creates one polled I/O queue pair, writes a
 * pattern over the first --mib MiB of the namespace in 128 KiB commands
 * (PRP lists), flushes, reads it all back and compares, then shuts the
 * controller down (CC.SHN) as a driver does before it lets go.
 *
 *   umdev-nvme-drive [--mib N] [--timeout S] SOCKET
 *
 * Its last line is "io ops=N bytes=N seconds=F MBps=F errors=N" (ops:
 * commands, bytes: moved both ways). Exit status: 0 all data verified,
 * 1 a mismatch or error, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nvme_spec.h"
#include "tool.h"
#include "umdev/client.h"

#define PROG "umdev-nvme-drive"

#define BAR0 VFIO_PCI_BAR0_REGION_INDEX
#define CONFIG VFIO_PCI_CONFIG_REGION_INDEX

/* Guest memory layout (IOVAs from 0; the controller takes an admin queue
 * address of 0 for none): queues, Identify, PRP list, data. */
#define QDEPTH 64u
#define ASQ 0x1000u
#define ACQ 0x2000u
#define IOSQ 0x3000u
#define IOCQ 0x4000u
#define IDENT 0x5000u
#define PRPLIST 0x6000u
#define DATA 0x10000u
#define XFER (128u << 10) /* per command: 32 pages, one PRP list */
#define PAGE 4096u

static double timeout_s = 60;

struct q {
    uint16_t tail, head;
    bool phase;
};

static struct {
    struct umdev_client *c;
    uint8_t *mem;
    size_t memsize;
    struct q asq, acq, sq, cq;
    uint16_t cid;
    uint64_t ops;
} D;

#define die(...) tool_die(PROG, __VA_ARGS__)

static void
put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t
get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
reg_write(uint64_t off, uint64_t v, size_t len)
{
    uint8_t b[8];
    int rc;

    put64(b, v);
    rc = umdev_client_region_write(D.c, BAR0, off, b, len);
    if (rc < 0)
        die("BAR0 write at %#" PRIx64 ": %s", off, strerror(-rc));
}

static uint32_t
reg_read32(uint64_t off)
{
    uint8_t b[4];
    int rc = umdev_client_region_read(D.c, BAR0, off, b, 4);

    if (rc < 0)
        die("BAR0 read at %#" PRIx64 ": %s", off, strerror(-rc));
    return get32(b);
}

static void
wait_csts(uint32_t mask, uint32_t want, const char *what)
{
    double t0 = tool_now_s();
    uint32_t v;

    while (((v = reg_read32(NVME_REG_CSTS)) & mask) != want) {
        if (v & NVME_CSTS_CFS)
            die("controller fatal status (CSTS %#x) waiting for %s", v, what);
        if (tool_now_s() - t0 > timeout_s)
            die("CSTS %#x: no %s within %.0f s", v, what, timeout_s);
        usleep(200);
    }
}

/* Doorbell of SQ @qid's tail (@cq false) or CQ @qid's head, CAP.DSTRD 0. */
static void
ring(uint16_t qid, bool cq, uint16_t v)
{
    reg_write(NVME_REG_DBS + (2u * qid + (cq ? 1u : 0u)) * 4u, v, 4);
}

/* Submit a command on SQ @qid (0 admin, 1 I/O), wait for its completion,
 * and return its status field (0: success). */
static uint16_t
cmd(uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t prp1, uint64_t prp2,
    const uint32_t cdw[6], uint32_t *dw0)
{
    struct q *sq = qid ? &D.sq : &D.asq, *cq = qid ? &D.cq : &D.acq;
    uint8_t *s = D.mem + (qid ? IOSQ : ASQ) + (size_t)sq->tail * NVME_SQE_SIZE;
    uint8_t *e = D.mem + (qid ? IOCQ : ACQ) + (size_t)cq->head * NVME_CQE_SIZE;
    uint16_t cid = D.cid++;
    double t0 = tool_now_s();
    uint32_t dw3;

    memset(s, 0, NVME_SQE_SIZE);
    put32(s, opc | (uint32_t)cid << 16);
    put32(s + 4, nsid);
    put64(s + 24, prp1);
    put64(s + 32, prp2);
    for (int i = 0; i < 6; i++)
        put32(s + 40 + 4 * i, cdw[i]);
    sq->tail = (uint16_t)((sq->tail + 1) % QDEPTH);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    ring(qid, false, sq->tail);
    for (;;) {
        /* The device writes the entry, then its phase: load DW3 once,
         * ordered before the reads of the rest. */
        uint32_t raw = __atomic_load_n((uint32_t *)(e + 12), __ATOMIC_ACQUIRE);

        dw3 = get32((const uint8_t *)&raw);
        if (((dw3 >> 16) & 1) == (cq->phase ? 1u : 0u))
            break;
        if (tool_now_s() - t0 > timeout_s)
            die("queue %u: no completion for command %u (opcode %#x) "
                "within %.0f s",
                qid, cid, opc, timeout_s);
        sched_yield();
    }
    if ((uint16_t)dw3 != cid)
        die("queue %u: completion for command %u, expected %u", qid,
            (unsigned int)(uint16_t)dw3, cid);
    if (dw0 != NULL)
        *dw0 = get32(e);
    if (++cq->head == QDEPTH) {
        cq->head = 0;
        cq->phase = !cq->phase;
    }
    ring(qid, true, cq->head);
    D.ops++;
    return (uint16_t)(dw3 >> 17);
}

static void
admin(uint8_t opc, uint64_t prp1, const uint32_t cdw[6], const char *what)
{
    uint16_t st =
        cmd(0, opc, opc == NVME_ADM_IDENTIFY ? 1 : 0, prp1, 0, cdw, NULL);

    if (st != 0)
        die("%s failed: status %#x", what, st);
}

static void
fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;

    /* xorshift64: deterministic, so a mismatch can be reproduced. */
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
}

/* One 128 KiB command at @lba of @bs-byte blocks from/to DATA. */
static void
io(uint8_t opc, uint64_t lba, uint32_t bs)
{
    uint32_t cdw[6] = { (uint32_t)lba, (uint32_t)(lba >> 32), XFER / bs - 1 };
    uint16_t st;

    /* PRP1 the first page, PRP2 a list of the other 31 (4.1.1). */
    for (uint32_t i = 1; i < XFER / PAGE; i++)
        put64(D.mem + PRPLIST + 8u * (i - 1), DATA + (uint64_t)i * PAGE);
    st = cmd(1, opc, 1, DATA, PRPLIST, cdw, NULL);
    if (st != 0)
        die("%s at LBA %" PRIu64 ": status %#x",
            opc == NVME_CMD_WRITE ? "write" : "read", lba, st);
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: " PROG " [--mib N] [--timeout S] SOCKET\n"
               "  --mib N       MiB to write and read back (1 to 1024, default "
               "16)\n"
               "  --timeout S   bound on every wait (default 60)\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mib", required_argument, NULL, 'm' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const uint32_t none[6] = { 0 };
    long mib = 16;
    uint64_t nsze, bytes, lba, errors = 0;
    uint32_t bs, cdw[6];
    uint16_t command;
    uint8_t *want;
    double t0, secs;
    int ch, fd, rc;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            if (!tool_parse_long(optarg, 10, 1, 1024, &mib)) {
                usage(stderr);
                return 2;
            }
            break;
        case 't':
            if (!tool_parse_double(optarg, 1, 3600, &timeout_s)) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    rc = umdev_client_connect(argv[optind], NULL, &D.c);
    if (rc < 0)
        die("cannot connect to %s: %s", argv[optind], strerror(-rc));
    /* Guest RAM as a VMM shares it: a memfd the server maps. */
    D.memsize = DATA + XFER;
    fd = memfd_create("umdev-nvme-drive", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)D.memsize) < 0)
        die("guest memory: %s", strerror(errno));
    D.mem = mmap(NULL, D.memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (D.mem == MAP_FAILED)
        die("guest memory: %s", strerror(errno));
    rc = umdev_client_dma_map(D.c, 0, D.memsize, D.mem, fd, 0,
                              PROT_READ | PROT_WRITE);
    if (rc < 0)
        die("DMA map: %s", strerror(-rc));
    rc = umdev_client_region_read(D.c, CONFIG, PCI_COMMAND, &command, 2);
    command |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    if (rc == 0)
        rc = umdev_client_region_write(D.c, CONFIG, PCI_COMMAND, &command, 2);
    if (rc < 0)
        die("PCI command register: %s", strerror(-rc));

    /* Bring-up (3.5.1): admin queues, then CC.EN with 64/16-byte
     * entries, and CSTS.RDY. */
    D.acq.phase = D.cq.phase = true;
    reg_write(NVME_REG_AQA, (QDEPTH - 1) << 16 | (QDEPTH - 1), 4);
    /* 64-bit registers as two dwords, low first, as drivers may. */
    reg_write(NVME_REG_ASQ, ASQ, 4);
    reg_write(NVME_REG_ASQ + 4, 0, 4);
    reg_write(NVME_REG_ACQ, ACQ, 4);
    reg_write(NVME_REG_ACQ + 4, 0, 4);
    reg_write(NVME_REG_CC, NVME_CC_EN | 6u << 16 | 4u << 20, 4);
    wait_csts(NVME_CSTS_RDY, NVME_CSTS_RDY, "CSTS.RDY");

    /* Identify Namespace 1 (CNS 0): NSZE and the LBA format in use. */
    memset(cdw, 0, sizeof(cdw));
    admin(NVME_ADM_IDENTIFY, IDENT, cdw, "Identify Namespace");
    nsze = get64(D.mem + IDENT);
    bs = 1u << D.mem[IDENT + 128 + 4 * (D.mem[IDENT + 26] & 0xf) + 2];
    if (bs < 512 || bs > PAGE)
        die("namespace block size %u is not one this driver handles", bs);
    bytes = (uint64_t)mib << 20;
    if (bytes > nsze * bs)
        die("--mib %ld is more than the namespace's %" PRIu64 " bytes", mib,
            nsze * bs);
    /* One polled I/O queue pair: CQ 1 without interrupts, SQ 1 on it. */
    cdw[0] = 1 | (QDEPTH - 1) << 16;
    cdw[1] = 1; /* physically contiguous, IEN 0 */
    admin(NVME_ADM_CREATE_CQ, IOCQ, cdw, "Create I/O Completion Queue");
    cdw[1] = 1 | 1u << 16; /* contiguous, on CQ 1 */
    admin(NVME_ADM_CREATE_SQ, IOSQ, cdw, "Create I/O Submission Queue");
    printf("namespace: %" PRIu64 " blocks of %u bytes; driving %ld MiB\n", nsze,
           bs, mib);

    want = malloc(XFER);
    if (want == NULL)
        die("out of memory");
    t0 = tool_now_s();
    for (lba = 0; lba < bytes / bs; lba += XFER / bs) {
        fill(D.mem + DATA, XFER, lba);
        io(NVME_CMD_WRITE, lba, bs);
    }
    if (cmd(1, NVME_CMD_FLUSH, 1, 0, 0, none, NULL) != 0)
        die("flush failed");
    for (lba = 0; lba < bytes / bs; lba += XFER / bs) {
        memset(D.mem + DATA, 0, XFER);
        io(NVME_CMD_READ, lba, bs);
        fill(want, XFER, lba);
        if (memcmp(D.mem + DATA, want, XFER) != 0) {
            fprintf(stderr,
                    PROG ": data read at LBA %" PRIu64 " differs "
                         "from what was written\n",
                    lba);
            errors++;
        }
    }
    secs = tool_now_s() - t0;
    free(want);

    /* Shutdown (3.6.1): CC.SHN normal, then CSTS.SHST complete. */
    reg_write(NVME_REG_CC, NVME_CC_EN | 6u << 16 | 4u << 20 | 1u << 14, 4);
    wait_csts(NVME_CSTS_SHST_MASK, 2u << NVME_CSTS_SHST_SHIFT,
              "shutdown complete");
    umdev_client_destroy(D.c);
    printf("io ops=%" PRIu64 " bytes=%" PRIu64 " seconds=%.2f MBps=%.1f "
           "errors=%" PRIu64 "\n",
           D.ops, 2 * bytes, secs, 2.0 * (double)bytes / secs / 1e6, errors);
    return errors ? 1 : 0;
}
