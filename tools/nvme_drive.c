/*
 * umdev-nvme-drive: act as a VMM plus a polled NVMe guest driver for an
 * nvme subdevice and move verified data through it. It maps guest memory
 * (a memfd) for DMA, turns on bus mastering, brings the controller up
 * (admin queues, CC.EN, CSTS.RDY), reads the namespace's size and block
 * size from Identify, creates one polled I/O queue pair, writes a
 * pattern over the first --mib MiB of the namespace in 128 KiB commands
 * (PRP lists), flushes, reads it all back and compares, then shuts the
 * controller down (CC.SHN) and disables it as a driver does before it
 * lets go. The driver side is devices/nvme/nvme_host.c, which the nvme
 * parent's conformance load (nvme_exercise.c) shares.
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
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nvme_host.h"
#include "tool.h"
#include "umdev/client.h"

#define PROG "umdev-nvme-drive"

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

#define die(...) tool_die(PROG, __VA_ARGS__)

/* Commands completed, for the last line. */
static uint64_t ops;

/* @rc from an nvme_host call: on an error, say what the driver saw. */
static void
check(struct nvme_host *h, int rc)
{
    if (rc < 0)
        die("%s", h->err);
    if (rc > 0)
        die("status %#x", rc);
}

/* One 128 KiB command at @lba of @bs-byte blocks from/to DATA. */
static void
io(struct nvme_host *h, uint8_t opc, uint64_t lba, uint32_t bs)
{
    struct nvme_sqe s;
    int rc;

    check(h, nvme_host_rw(h, opc, lba, XFER / bs, DATA, XFER, PRPLIST, &s));
    rc = nvme_host_cmd(h, 1, &s, NULL);
    if (rc < 0)
        die("%s", h->err);
    if (rc > 0)
        die("%s at LBA %" PRIu64 ": status %#x",
            opc == NVME_CMD_WRITE ? "write" : "read", lba, rc);
    ops++;
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
    double timeout_s = 60, t0, secs;
    struct umdev_client *c;
    struct nvme_host h;
    struct nvme_sqe s;
    long mib = 16;
    uint64_t nsze, bytes, lba, errors = 0;
    size_t memsize;
    uint8_t *mem;
    uint32_t bs;
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
    rc = umdev_client_connect(argv[optind], NULL, &c);
    if (rc < 0)
        die("cannot connect to %s: %s", argv[optind], strerror(-rc));
    /* Guest RAM as a VMM shares it: a memfd the server maps. */
    memsize = DATA + XFER;
    fd = memfd_create("umdev-nvme-drive", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)memsize) < 0)
        die("guest memory: %s", strerror(errno));
    mem = mmap(NULL, memsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED)
        die("guest memory: %s", strerror(errno));
    rc =
        umdev_client_dma_map(c, 0, memsize, mem, fd, 0, PROT_READ | PROT_WRITE);
    if (rc < 0)
        die("DMA map: %s", strerror(-rc));
    nvme_host_init(&h, c, mem, 0, memsize, timeout_s);
    check(&h, nvme_host_bus_master(&h));

    /* Bring-up (3.5.1): admin queues, then CC.EN with 64/16-byte
     * entries, and CSTS.RDY. */
    check(&h, nvme_host_enable(&h, QDEPTH, ASQ, ACQ));
    /* Identify Namespace 1 (CNS 0): NSZE and the LBA format in use. */
    check(&h, nvme_host_identify_ns(&h, IDENT, &nsze, &bs));
    ops++;
    bytes = (uint64_t)mib << 20;
    if (bytes > nsze * bs)
        die("--mib %ld is more than the namespace's %" PRIu64 " bytes", mib,
            nsze * bs);
    /* One polled I/O queue pair: CQ 1 without interrupts, SQ 1 on it. */
    check(&h, nvme_host_create_pair(&h, 1, QDEPTH, IOSQ, IOCQ));
    ops += 2;
    printf("namespace: %" PRIu64 " blocks of %u bytes; driving %ld MiB\n", nsze,
           bs, mib);

    t0 = tool_now_s();
    for (lba = 0; lba < bytes / bs; lba += XFER / bs) {
        nvme_host_pattern(mem + DATA, XFER, lba, false);
        io(&h, NVME_CMD_WRITE, lba, bs);
    }
    memset(&s, 0, sizeof(s));
    s.opcode = NVME_CMD_FLUSH;
    s.nsid = NVME_NSID;
    rc = nvme_host_cmd(&h, 1, &s, NULL);
    if (rc != 0)
        die("flush failed: %s", rc < 0 ? h.err : "an error status");
    ops++;
    for (lba = 0; lba < bytes / bs; lba += XFER / bs) {
        memset(mem + DATA, 0, XFER);
        io(&h, NVME_CMD_READ, lba, bs);
        if (nvme_host_pattern(mem + DATA, XFER, lba, true) != XFER) {
            fprintf(stderr,
                    PROG ": data read at LBA %" PRIu64 " differs "
                         "from what was written\n",
                    lba);
            errors++;
        }
    }
    secs = tool_now_s() - t0;

    /* Shutdown (3.6.1): CC.SHN normal, CSTS.SHST complete, then CC.EN
     * clear, as a driver does before it lets go. */
    check(&h, nvme_host_shutdown(&h));
    umdev_client_destroy(c);
    printf("io ops=%" PRIu64 " bytes=%" PRIu64 " seconds=%.2f MBps=%.1f "
           "errors=%" PRIu64 "\n",
           ops, 2 * bytes, secs, 2.0 * (double)bytes / secs / 1e6, errors);
    return errors ? 1 : 0;
}
