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

#include "nvme_driver.h"
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

static struct {
    struct umdev_client *c;
    uint8_t *mem;
    size_t memsize;
    struct nvme_driver drv;
    struct nvme_driver_q asq, acq, sq, cq;
    uint16_t cid;
    uint64_t ops;
} D;

#define die(...) tool_die(PROG, __VA_ARGS__)

static int
bar0_read32(void *opaque, uint32_t off, uint32_t *v)
{
    (void)opaque;
    return umdev_client_region_read(D.c, BAR0, off, v, 4);
}

static int
bar0_write32(void *opaque, uint32_t off, uint32_t v)
{
    (void)opaque;
    return umdev_client_region_write(D.c, BAR0, off, &v, 4);
}

/* Submit a command on SQ @qid (0 admin, 1 I/O), wait for its completion,
 * and return its status field (0: success). */
static uint16_t
cmd(uint16_t qid, uint8_t opc, uint32_t nsid, uint64_t prp1, uint64_t prp2,
    const uint32_t cdw[6], uint32_t *dw0)
{
    struct nvme_driver_q *sq = qid ? &D.sq : &D.asq, *cq = qid ? &D.cq : &D.acq;
    uint8_t s[NVME_SQE_SIZE];
    struct nvme_driver_cqe e;
    uint16_t cid = D.cid++;
    int rc;

    nvme_driver_sqe(s, opc, cid, nsid, prp1, prp2, cdw);
    rc = nvme_driver_cmd(&D.drv, sq, cq, s, &e);
    if (rc == -EPROTO)
        die("queue %u: completion for command %u of SQ %u, expected %u", qid,
            e.cid, e.sqid, cid);
    if (rc < 0)
        die("queue %u: command %u (opcode %#x): %s", qid, cid, opc,
            rc == -ETIMEDOUT ? "no completion in time" : strerror(-rc));
    if (dw0 != NULL)
        *dw0 = e.dw0;
    D.ops++;
    return e.status;
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
        nvme_driver_put64(D.mem + PRPLIST + 8u * (i - 1),
                          DATA + (uint64_t)i * PAGE);
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
    uint16_t command, st;
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
    D.drv = (struct nvme_driver){ .read32 = bar0_read32,
                                  .write32 = bar0_write32,
                                  .timeout_s = timeout_s };
    nvme_driver_q_init(&D.asq, D.mem + ASQ, 0, QDEPTH, false);
    nvme_driver_q_init(&D.acq, D.mem + ACQ, 0, QDEPTH, true);
    rc = nvme_driver_enable(&D.drv, &D.asq, ASQ, ACQ);
    if (rc < 0)
        die("enabling the controller: %s",
            rc == -EIO         ? "controller fatal status (CSTS.CFS)"
            : rc == -ETIMEDOUT ? "no CSTS.RDY in time"
                               : strerror(-rc));

    /* Identify Namespace 1 (CNS 0): NSZE and the LBA format in use. */
    memset(cdw, 0, sizeof(cdw));
    admin(NVME_ADM_IDENTIFY, IDENT, cdw, "Identify Namespace");
    nsze = nvme_driver_get32(D.mem + IDENT) |
           (uint64_t)nvme_driver_get32(D.mem + IDENT + 4) << 32;
    bs = 1u << D.mem[IDENT + 128 + 4 * (D.mem[IDENT + 26] & 0xf) + 2];
    if (bs < 512 || bs > PAGE)
        die("namespace block size %u is not one this driver handles", bs);
    bytes = (uint64_t)mib << 20;
    if (bytes > nsze * bs)
        die("--mib %ld is more than the namespace's %" PRIu64 " bytes", mib,
            nsze * bs);
    /* One polled I/O queue pair: CQ 1 without interrupts, SQ 1 on it. */
    nvme_driver_q_init(&D.cq, D.mem + IOCQ, 1, QDEPTH, true);
    nvme_driver_q_init(&D.sq, D.mem + IOSQ, 1, QDEPTH, false);
    rc = nvme_driver_create_pair(&D.drv, &D.asq, &D.acq, &D.sq, IOSQ, &D.cq,
                                 IOCQ, D.cid, &st);
    if (rc > 0)
        die("creating the I/O queue pair failed: status %#x", st);
    if (rc < 0)
        die("creating the I/O queue pair: %s", strerror(-rc));
    D.cid += 2;
    D.ops += 2;
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
    rc = nvme_driver_shutdown(&D.drv);
    if (rc < 0)
        die("shutdown: %s",
            rc == -ETIMEDOUT ? "no CSTS.SHST complete in time" : strerror(-rc));
    umdev_client_destroy(D.c);
    printf("io ops=%" PRIu64 " bytes=%" PRIu64 " seconds=%.2f MBps=%.1f "
           "errors=%" PRIu64 "\n",
           D.ops, 2 * bytes, secs, 2.0 * (double)bytes / secs / 1e6, errors);
    return errors ? 1 : 0;
}
