/*
 * daemon-accel-client: a VMM plus guest driver for the daemon tests of the
 * accel parent. It attaches to an instance socket (RUNDIR/<uuid>.sock)
 * with lib/client, maps memfd-backed guest RAM, checks the PCI identity
 * and BAR0 capabilities against the expected queue count, enables MSI-X,
 * the device and every queue, and then on each queue runs one MEMMOVE and
 * one CRC32C (unaligned, with a seed) and verifies the data, the
 * completion record and the queue's MSI-X interrupt. Last, a descriptor
 * whose source lies outside the DMA map must fail with an address fault
 * naming that address, leaving the destination untouched.
 *
 * The rings are driven with the ring ABI's helpers (umdev/accel_ring.h);
 * devices/accel's accel.h gives the register map only; everything else
 * goes over the socket as a VMM's would.
 *
 * Progress goes to stdout one line at a time:
 *   attached id=VVVV:DDDD subsys=N queues=N max_xfer=N
 *   memmove queue=Q bytes=N ok | crc32c queue=Q value=0xX ok
 *   fault addr=0xX ok | done completed=N
 * or "error WHAT" as the last line. Exit: 0 all checks passed; 1 a check
 * failed; 2 usage. Every wait is bounded by the timeout argument.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accel.h"
#include "umdev/accel_ring.h"
#include "kit_util.h"
#include "umdev/client.h"

#define USAGE "usage: daemon-accel-client SOCKET QUEUES TIMEOUT_MS [unshared]\n"

#define BAR0 UMDEV_PCI_BAR0_REGION
#define BAR2 UMDEV_PCI_BAR2_REGION
#define CONFIG UMDEV_PCI_CONFIG_REGION

/* Guest RAM: one memfd at GUEST_BASE. Per queue a ring and a page of
 * completion records, then per queue a data area for source and
 * destination. */
#define MB (1024u * 1024u)
#define GUEST_BASE 0x100000000ull
#define GUEST_SIZE (8 * MB)
#define RING_SIZE 16u
#define RING(q) (GUEST_BASE + (uint64_t)(q)*0x1000)
#define COMPS(q) (GUEST_BASE + 0x10000 + (uint64_t)(q)*0x1000)
#define DATA(q) (GUEST_BASE + 1 * MB + (uint64_t)(q)*MB)
/* Sizes and misalignments chosen so no transfer is page-aligned or a
 * whole number of pages: the engine's DMA segment walk is exercised. */
#define MOVE_LEN (64u * 1024u + 13u)
#define MOVE_SRC_OFF 3u
#define MOVE_DST_OFF (512u * 1024u + 5u)
#define CRC_LEN (4096u + 7u)
#define CRC_OFF 1u
#define CRC_SEED 0x5eed1234u
#define GUARD 64u /* bytes around each destination that must stay put */

struct guest {
    struct umdev_client *c;
    uint8_t *mem;
    int memfd;
    unsigned int nq;
    int efd[ACCEL_DEV_MAX_QUEUES + 1];
    /* Each queue's ring, with one record per slot (COMPS(q)). */
    struct accel_ring_drv r[ACCEL_DEV_MAX_QUEUES];
    int64_t deadline;
    /* Map guest RAM without its fd, as QEMU does without share=on: every
     * queue must then fail to come up with RING_FAULT. */
    bool unshared;
};


static int
left_ms(const struct guest *g)
{
    int64_t left = g->deadline - kit_now_ms();

    return left < 0 ? 0 : (int)left;
}

/* Host pointer of guest address @iova, which the caller keeps in RAM. */
static void *
gp(struct guest *g, uint64_t iova)
{
    return g->mem + (iova - GUEST_BASE);
}

static int
cfg_read(struct guest *g, uint64_t off, void *buf, size_t n)
{
    int rc = umdev_client_region_read(g->c, CONFIG, off, buf, n);

    if (rc < 0)
        kit_say("error config read at %#llx: %s", (unsigned long long)off,
            strerror(-rc));
    return rc;
}

static int
cfg_write(struct guest *g, uint64_t off, uint16_t v)
{
    int rc = umdev_client_region_write(g->c, CONFIG, off, &v, sizeof(v));

    if (rc < 0)
        kit_say("error config write at %#llx: %s", (unsigned long long)off,
            strerror(-rc));
    return rc;
}

static int
rd32(struct guest *g, uint64_t off, uint32_t *v)
{
    int rc = umdev_client_region_read(g->c, BAR0, off, v, sizeof(*v));

    if (rc < 0)
        kit_say("error BAR0 read at %#llx: %s", (unsigned long long)off,
            strerror(-rc));
    return rc;
}

static int
wr(struct guest *g, uint64_t off, uint64_t v, size_t n)
{
    int rc = umdev_client_region_write(g->c, BAR0, off, &v, n);

    if (rc < 0)
        kit_say("error BAR0 write at %#llx: %s", (unsigned long long)off,
            strerror(-rc));
    return rc;
}

/* Check the identity and capabilities; the subsystem ID and NUM_QUEUES
 * both carry the queue count of the type. */
static int
check_identity(struct guest *g, unsigned int want_queues)
{
    uint32_t nq, xfer;
    uint8_t cfg[64];
    unsigned int vid, did, ssid;

    if (cfg_read(g, 0, cfg, sizeof(cfg)) < 0 ||
        rd32(g, ACCEL_REG_NUM_QUEUES, &nq) < 0 ||
        rd32(g, ACCEL_REG_MAX_XFER, &xfer) < 0)
        return -EIO;
    vid = cfg[PCI_VENDOR_ID] | (unsigned int)cfg[PCI_VENDOR_ID + 1] << 8;
    did = cfg[PCI_DEVICE_ID] | (unsigned int)cfg[PCI_DEVICE_ID + 1] << 8;
    ssid = cfg[PCI_SUBSYSTEM_ID] | (unsigned int)cfg[PCI_SUBSYSTEM_ID + 1] << 8;
    kit_say("attached id=%04x:%04x subsys=%u queues=%u max_xfer=%u", vid, did, ssid,
        nq, xfer);
    if (vid != ACCEL_VENDOR_ID || did != ACCEL_DEVICE_ID) {
        kit_say("error id %04x:%04x, expected %04x:%04x", vid, did, ACCEL_VENDOR_ID,
            ACCEL_DEVICE_ID);
        return -EIO;
    }
    if (nq != want_queues || ssid != want_queues) {
        kit_say("error NUM_QUEUES %u, subsystem %u, expected %u", nq, ssid,
            want_queues);
        return -EIO;
    }
    if (xfer < MOVE_LEN) {
        kit_say("error MAX_XFER %u is below the test's %u bytes", xfer, MOVE_LEN);
        return -EIO;
    }
    return 0;
}

/* Config offset of the MSI-X capability, found as a guest would. */
static int
find_msix(struct guest *g, uint8_t *out)
{
    int at = umdev_client_pci_cap_find(g->c, PCI_CAP_ID_MSIX, 0);

    if (at <= 0) {
        kit_say("error no MSI-X capability: %s",
                at == 0 ? "not in the chain" : strerror(-at));
        return at == 0 ? -ENOENT : at;
    }
    *out = (uint8_t)at;
    return 0;
}

/* Map RAM, memory + bus master, MSI-X with one eventfd per vector, the
 * device, then each queue with its vector. */
static int
guest_setup(struct guest *g)
{
    unsigned int nvec = g->nq + 1, q;
    uint8_t msix;
    int rc;

    g->memfd = memfd_create("accel-guest-ram", MFD_CLOEXEC);
    if (g->memfd < 0 || ftruncate(g->memfd, GUEST_SIZE) < 0) {
        kit_say("error guest RAM: %s", strerror(errno));
        return -errno;
    }
    g->mem =
        mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
    if (g->mem == MAP_FAILED) {
        g->mem = NULL;
        kit_say("error mmap guest RAM: %s", strerror(errno));
        return -errno;
    }
    rc = umdev_client_dma_map(
        g->c, GUEST_BASE, GUEST_SIZE, g->mem, g->unshared ? -1 : g->memfd, 0,
        VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE);
    if (rc < 0) {
        kit_say("error DMA_MAP: %s", strerror(-rc));
        return rc;
    }
    if (cfg_write(g, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER) < 0)
        return -EIO;
    for (q = 0; q < nvec; q++) {
        g->efd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (g->efd[q] < 0) {
            kit_say("error eventfd: %s", strerror(errno));
            return -errno;
        }
    }
    rc = umdev_client_set_irqs(g->c, VFIO_PCI_MSIX_IRQ_INDEX,
                               VFIO_IRQ_SET_DATA_EVENTFD |
                                   VFIO_IRQ_SET_ACTION_TRIGGER,
                               0, nvec, g->efd, NULL);
    if (rc < 0) {
        kit_say("error SET_IRQS MSI-X 0..%u: %s", nvec - 1, strerror(-rc));
        return rc;
    }
    if (find_msix(g, &msix) < 0 ||
        cfg_write(g, msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE) < 0 ||
        wr(g, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_ENABLE, 4) < 0)
        return -EIO;
    for (q = 0; q < g->nq; q++) {
        uint64_t base = ACCEL_REG_QUEUE(q);
        uint32_t st;

        memset(gp(g, RING(q)), 0, accel_ring_bytes(RING_SIZE));
        accel_ring_drv_init(&g->r[q], gp(g, RING(q)), RING_SIZE,
                            gp(g, COMPS(q)), COMPS(q));
        if (wr(g, base + ACCEL_Q_RING_BASE, RING(q), 8) < 0 ||
            wr(g, base + ACCEL_Q_RING_SIZE, RING_SIZE, 4) < 0 ||
            wr(g, base + ACCEL_Q_PRIORITY, ACCEL_PRIO_MIN, 4) < 0 ||
            wr(g, base + ACCEL_Q_INT_VECTOR, q, 4) < 0 ||
            wr(g, base + ACCEL_Q_CTRL, ACCEL_Q_CTRL_ENABLE, 4) < 0 ||
            rd32(g, base + ACCEL_Q_STATUS, &st) < 0)
            return -EIO;
        if (g->unshared) {
            if (ACCEL_Q_STATUS_ERROR(st) != ACCEL_QERR_RING_FAULT) {
                kit_say("error queue %u on unshared RAM: status %#x, expected "
                        "RING_FAULT",
                        q, st);
                return -EIO;
            }
            kit_say("unshared queue=%u ring_fault ok", q);
            continue;
        }
        if (ACCEL_Q_STATUS_STATE(st) != ACCEL_QS_ENABLED) {
            kit_say("error queue %u did not enable: status %#x (error %#x)", q, st,
                ACCEL_Q_STATUS_ERROR(st));
            return -EIO;
        }
    }
    return 0;
}

/* Post @d on queue @q with a record of its own and an interrupt, and
 * publish it, ringing the doorbell only if the engine asks for one
 * (README "Submitting"). Return: 0, or -errno after saying why. */
static int
submit(struct guest *g, unsigned int q, struct accel_desc d)
{
    uint32_t one = 1;
    int rc;

    if (accel_ring_room(&g->r[q]) == 0) {
        kit_say("error queue %u ring full", q);
        return -ENOSPC;
    }
    d.flags = ACCEL_DF_INTR; /* and ACCEL_DF_COMP: the slot's record */
    accel_ring_post(&g->r[q], &d);
    if (accel_ring_publish(&g->r[q])) {
        rc = umdev_client_region_write_posted(
            g->c, BAR2, (uint64_t)q * ACCEL_DOORBELL_STRIDE, &one, 4);
        if (rc < 0) {
            kit_say("error doorbell of queue %u: %s", q, strerror(-rc));
            return rc;
        }
    }
    return 0;
}

/* Reap queue @q's oldest record into @c, then wait for its MSI-X
 * vector. */
static int
wait_done(struct guest *g, unsigned int q, struct accel_comp *c)
{
    struct pollfd p = { .fd = g->efd[q], .events = POLLIN };
    uint64_t n;

    while (!accel_ring_reap(&g->r[q], c)) {
        if (left_ms(g) == 0) {
            kit_say("error queue %u: descriptor never completed (HEAD %u TAIL "
                "%u)",
                q, accel_ring_load(g->r[q].ring, ACCEL_RING_HEAD),
                g->r[q].tail);
            return -ETIMEDOUT;
        }
        usleep(50);
    }
    if (poll(&p, 1, left_ms(g)) != 1 || read(g->efd[q], &n, sizeof(n)) < 0) {
        kit_say("error queue %u: no MSI-X interrupt on vector %u", q, q);
        return -ETIMEDOUT;
    }
    return 0;
}

static bool
all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

static int
check_comp(unsigned int q, const char *what, const struct accel_comp *c,
           uint8_t op, uint32_t bytes)
{
    if (c->status != ACCEL_ST_SUCCESS || c->opcode != op || c->bytes != bytes) {
        kit_say("error %s queue=%u: status %#x opcode %#x bytes %u info %#llx, "
            "expected success, %#x, %u",
            what, q, c->status, c->opcode, c->bytes,
            (unsigned long long)c->info, op, bytes);
        return -EIO;
    }
    return 0;
}

static int
run_memmove(struct guest *g, unsigned int q)
{
    uint64_t src = DATA(q) + MOVE_SRC_OFF, dst = DATA(q) + MOVE_DST_OFF;
    struct accel_desc d = {
        .opcode = ACCEL_OP_MEMMOVE,
        .size = MOVE_LEN,
        .src = src,
        .dst = dst,
        .tag = 0x1000 + q,
    };
    struct accel_comp c;

    kit_fill_rand(gp(g, src), MOVE_LEN, 7 + q);
    memset(gp(g, dst - GUARD), 0xa5, MOVE_LEN + 2 * GUARD);
    if (submit(g, q, d) < 0 || wait_done(g, q, &c) < 0 ||
        check_comp(q, "memmove", &c, ACCEL_OP_MEMMOVE, MOVE_LEN) < 0)
        return -EIO;
    if (c.tag != d.tag) {
        kit_say("error memmove queue=%u: tag %#llx, expected %#llx", q,
            (unsigned long long)c.tag, (unsigned long long)d.tag);
        return -EIO;
    }
    if (memcmp(gp(g, dst), gp(g, src), MOVE_LEN) != 0) {
        kit_say("error memmove queue=%u: destination differs from source", q);
        return -EIO;
    }
    if (!all_bytes(gp(g, dst - GUARD), GUARD, 0xa5) ||
        !all_bytes(gp(g, dst + MOVE_LEN), GUARD, 0xa5)) {
        kit_say("error memmove queue=%u: bytes outside the destination changed", q);
        return -EIO;
    }
    kit_say("memmove queue=%u bytes=%u ok", q, MOVE_LEN);
    return 0;
}

static int
run_crc(struct guest *g, unsigned int q)
{
    uint64_t src = DATA(q) + CRC_OFF;
    struct accel_desc d = {
        .opcode = ACCEL_OP_CRC32C,
        .size = CRC_LEN,
        .src = src,
        .crc_seed = CRC_SEED,
    };
    struct accel_comp c;
    uint32_t want;

    kit_fill_rand(gp(g, src), CRC_LEN, 99 + q);
    want = kit_crc32c(CRC_SEED, gp(g, src), CRC_LEN);
    if (submit(g, q, d) < 0 || wait_done(g, q, &c) < 0 ||
        check_comp(q, "crc32c", &c, ACCEL_OP_CRC32C, CRC_LEN) < 0)
        return -EIO;
    if (c.value != want) {
        kit_say("error crc32c queue=%u: value %#llx, expected %#x", q,
            (unsigned long long)c.value, want);
        return -EIO;
    }
    kit_say("crc32c queue=%u value=%#x ok", q, want);
    return 0;
}

/* A source just past guest RAM: the device must refuse it, not read host
 * memory, and leave the destination alone. */
static int
run_fault(struct guest *g)
{
    uint64_t bad = GUEST_BASE + GUEST_SIZE, dst = DATA(0) + MOVE_DST_OFF;
    struct accel_desc d = {
        .opcode = ACCEL_OP_MEMMOVE,
        .size = 4096,
        .src = bad,
        .dst = dst,
    };
    struct accel_comp c;

    memset(gp(g, dst), 0x5a, 4096);
    if (submit(g, 0, d) < 0 || wait_done(g, 0, &c) < 0)
        return -EIO;
    if (c.status != ACCEL_ST_ADDR_FAULT || c.info != bad) {
        kit_say("error fault: status %#x info %#llx, expected %#x at %#llx",
            c.status, (unsigned long long)c.info, ACCEL_ST_ADDR_FAULT,
            (unsigned long long)bad);
        return -EIO;
    }
    if (!all_bytes(gp(g, dst), 4096, 0x5a)) {
        kit_say("error fault: the destination was written");
        return -EIO;
    }
    kit_say("fault addr=%#llx ok", (unsigned long long)bad);
    return 0;
}

static int
run(struct guest *g, const char *path, unsigned int want_queues, int timeout_ms)
{
    struct umdev_client_opts opts = { .timeout_ms = timeout_ms };
    uint64_t completed = 0;
    unsigned int q;
    int rc;

    /* "123456789" is CRC32C's check value: the reference is right. */
    if (kit_crc32c(0, (const uint8_t *)"123456789", 9) != 0xe3069283u) {
        kit_say("error the reference CRC32C is wrong");
        return -EIO;
    }
    rc = umdev_client_connect(path, &opts, &g->c);
    if (rc < 0) {
        kit_say("error connect %s: %s", path, strerror(-rc));
        return rc;
    }
    /* A device keeps its state across clients (the spec's Client
     * Disconnection, and what lets a restarted VMM reconnect), so start
     * from power-on as QEMU does at machine reset: the counters checked
     * below are then this run's alone. */
    rc = umdev_client_reset(g->c);
    if (rc < 0) {
        kit_say("error DEVICE_RESET: %s", strerror(-rc));
        return rc;
    }
    g->nq = want_queues;
    if (check_identity(g, want_queues) < 0 || guest_setup(g) < 0)
        return -EIO;
    if (g->unshared) {
        kit_say("done unshared");
        return 0;
    }
    for (q = 0; q < g->nq; q++)
        if (run_memmove(g, q) < 0 || run_crc(g, q) < 0)
            return -EIO;
    if (run_fault(g) < 0)
        return -EIO;
    for (q = 0; q < g->nq; q++) {
        uint32_t lo, hi;

        if (rd32(g, ACCEL_REG_QUEUE(q) + ACCEL_Q_COMPLETED, &lo) < 0 ||
            rd32(g, ACCEL_REG_QUEUE(q) + ACCEL_Q_COMPLETED + 4, &hi) < 0)
            return -EIO;
        completed += (uint64_t)hi << 32 | lo;
    }
    /* Two per queue, and the fault. */
    if (completed != 2u * g->nq + 1u) {
        kit_say("error COMPLETED sums to %llu, expected %u",
            (unsigned long long)completed, 2u * g->nq + 1u);
        return -EIO;
    }
    /* Leave as a driver does: queues off, then the device, so the
     * engine stops touching guest RAM before the VMM drops it. */
    for (q = 0; q < g->nq; q++)
        if (wr(g, ACCEL_REG_QUEUE(q) + ACCEL_Q_CTRL, 0, 4) < 0)
            return -EIO;
    if (wr(g, ACCEL_REG_DEVCTL, 0, 4) < 0)
        return -EIO;
    kit_say("done completed=%llu", (unsigned long long)completed);
    return 0;
}

int
main(int argc, char **argv)
{
    struct guest g = { .memfd = -1 };
    unsigned long queues, timeout;
    char *end;
    unsigned int i;
    int rc;

    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "unshared") == 0))
        goto usage;
    g.unshared = argc == 5;
    errno = 0;
    queues = strtoul(argv[2], &end, 10);
    if (errno != 0 || *end != '\0' || queues < 1 ||
        queues > ACCEL_DEV_MAX_QUEUES)
        goto usage;
    timeout = strtoul(argv[3], &end, 10);
    if (errno != 0 || *end != '\0' || timeout < 1 || timeout > 600000)
        goto usage;
    for (i = 0; i <= ACCEL_DEV_MAX_QUEUES; i++)
        g.efd[i] = -1;
    g.deadline = kit_now_ms() + (int64_t)timeout;
    rc = run(&g, argv[1], (unsigned int)queues, (int)timeout);
    umdev_client_destroy(g.c);
    if (g.mem != NULL)
        munmap(g.mem, GUEST_SIZE);
    if (g.memfd >= 0)
        close(g.memfd);
    for (i = 0; i <= ACCEL_DEV_MAX_QUEUES; i++)
        if (g.efd[i] >= 0)
            close(g.efd[i]);
    return rc < 0 ? 1 : 0;
usage:
    fputs(USAGE, stderr);
    return 2;
}
