/*
 * libFuzzer target: the migration stream loader, through the server as a
 * VMM reaches it. A client on a socketpair (everything on the fuzzer's
 * thread, as fuzz/dispatch.c) puts the test device in RESUMING, writes
 * the input as MIG_DATA_WRITE chunks, and leaves RESUMING for STOP: lib/dev's
 * framing and header checks (lib/dev/mig.c), the test device's state
 * parser and lib/pci's blob checks see every byte.
 *
 * What must hold, besides no crash, leak (LSan, the descriptor count) or
 * hang (every wait is bounded): every reply decodes and answers its
 * request; a refused stream leaves the device in RESUMING (refused by
 * the framing) or ERROR (refused by the device's load), and a reset
 * brings it back to RUNNING; a stream that loads leaves it in STOP, it
 * runs, answers register and config accesses with its identity intact
 * (vendor, device, class, capability pointer, the ID register), and can
 * be saved again.
 *
 * Input: byte 0, bits 0-2 choose the chunk size (1, 7, 64, 512, 4096,
 * 16384, 65536 or 262144 bytes; at least a 64th of the stream, so an
 * input costs at most 64 writes, as long as it is below 16 MiB); bit 3
 * drives the loaded device's registers; bit 4 saves it again (STOP_COPY,
 * read to the end). The rest is the stream.
 *
 * The seed corpus, fuzz/corpus/mig_load/seed-*, is written by this file
 * built with UMDEV_MIG_SEEDS_MAIN (build/debug/fuzz/mig_seeds DIR, at the
 * end of it): real streams of the test device, from power-on, programmed
 * as a guest would, after a pre-copy, then cut short and broken.
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "kit_peer.h"
#include "kit_util.h"
#include "testdev.h"
#include "umdev/pci.h"
#include "umdev/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The biggest reply: a MIG_DATA_READ of MIG_READ bytes, with room. */
#define MIG_READ 65536u
#define REPLY_CAP (MIG_READ + 4096u)
/* device runs waited for one reply before the harness calls it a hang */
#define MAX_RUNS 64
/* The largest MIG_DATA_WRITE sent ("all at once" for a stream of a
 * test device, whose BAR2 is 64 KiB); a request, built in one buffer. */
#define MIG_WRITE_MAX (256u * 1024u)
#define REQ_CAP (UMDEV_WIRE_HDR_SIZE + 64u + MIG_WRITE_MAX)

static struct kit_log fuzz_log;
static bool log_ready;

struct harness {
    struct umdev_dev *dev;
    int fd; /* client end */
    uint16_t id;
    uint8_t *req;   /* REQ_CAP */
    uint8_t *reply; /* REPLY_CAP */
};

static void
fail(const char *what, int err)
{
    fprintf(stderr, "fuzz_mig_load: harness: %s: %s\n", what, strerror(err));
    abort();
}

static void
broken(const char *what, uint16_t cmd, long v)
{
    fprintf(stderr, "fuzz_mig_load: %s (command %s, %ld)\n", what,
            umdev_wire_cmd_name(cmd), v);
    abort();
}

/* The socket is full: let the device read. */
static int
run_full(void *arg)
{
    struct harness *h = arg;

    if (umdev_dev_process(h->dev) < 0)
        broken("the device hung up while being written to", 0, 0);
    return 0;
}

/*
 * One request and its reply (in h->reply). The device runs until the
 * reply is there, at most MAX_RUNS times.
 * Return: the reply's length (payload after the header) if it succeeded,
 * or -errno from an error reply.
 */
static long
request(struct harness *h, uint16_t cmd, const void *fixed, size_t flen,
        const void *data, size_t dlen)
{
    struct vfio_user_header hdr = {
        .msg_id = ++h->id,
        .cmd = cmd,
        .msg_size = (uint32_t)(sizeof(hdr) + flen + dlen),
        .flags = VFIO_USER_F_TYPE_COMMAND,
    };
    struct pollfd p = { .fd = h->fd, .events = POLLIN };
    ssize_t n;
    int i, rc;

    if (sizeof(hdr) + flen + dlen > REQ_CAP)
        fail("request too big for the harness", E2BIG);
    memcpy(h->req, &hdr, sizeof(hdr));
    if (flen)
        memcpy(h->req + sizeof(hdr), fixed, flen);
    if (dlen)
        memcpy(h->req + sizeof(hdr) + flen, data, dlen);
    rc = kit_peer_send_bytes(h->fd, h->req, hdr.msg_size, NULL, 0, run_full, h);
    if (rc < 0)
        fail("send", -rc);
    for (i = 0;; i++) {
        if (i == MAX_RUNS)
            broken("no reply", cmd, i);
        if (umdev_dev_process(h->dev) < 0)
            broken("the device hung up", cmd, 0);
        if (poll(&p, 1, 0) == 1)
            break;
    }
    /* The device writes a reply whole (or queues it all): bounded. */
    n = kit_peer_recv(h->fd, h->reply, REPLY_CAP, 5000, NULL, NULL);
    if (n < (ssize_t)sizeof(hdr))
        broken("no whole reply", cmd, (long)n);
    memcpy(&hdr, h->reply, sizeof(hdr));
    if (hdr.msg_id != h->id || hdr.cmd != cmd ||
        (hdr.flags & VFIO_USER_F_TYPE_MASK) != VFIO_USER_F_TYPE_REPLY)
        broken("a reply that answers something else", cmd, hdr.msg_id);
    if (hdr.flags & VFIO_USER_F_ERROR) {
        if (hdr.error == 0 || n != (ssize_t)sizeof(hdr))
            broken("a malformed error reply", cmd, (long)hdr.error);
        return -(long)hdr.error;
    }
    return (long)(n - (ssize_t)sizeof(hdr));
}

static long
set_state(struct harness *h, uint32_t st)
{
    struct {
        struct vfio_user_device_feature f;
        struct vfio_user_feature_mig_state s;
    } m = {
        .f = { .argsz = sizeof(m),
               .flags = VFIO_USER_DEVICE_FEATURE_SET |
                        VFIO_USER_FEATURE_MIG_DEVICE_STATE },
        .s = { .device_state = st },
    };

    return request(h, VFIO_USER_DEVICE_FEATURE, &m, sizeof(m), NULL, 0);
}

static uint32_t
get_state(struct harness *h)
{
    struct {
        struct vfio_user_device_feature f;
        struct vfio_user_feature_mig_state s;
    } m = {
        .f = { .argsz = sizeof(m),
               .flags = VFIO_USER_DEVICE_FEATURE_GET |
                        VFIO_USER_FEATURE_MIG_DEVICE_STATE },
    };
    /* A GET carries the header alone; argsz says the reply fits. */
    long n = request(h, VFIO_USER_DEVICE_FEATURE, &m.f, sizeof(m.f), NULL, 0);

    if (n != (long)sizeof(m))
        broken("GET of the migration state", VFIO_USER_DEVICE_FEATURE, n);
    memcpy(&m, h->reply + UMDEV_WIRE_HDR_SIZE, sizeof(m));
    return m.s.device_state;
}

static void
must(struct harness *h, long rc, uint16_t cmd, const char *what)
{
    (void)h;
    if (rc < 0)
        broken(what, cmd, rc);
}

/* Region I/O: a read's bytes land in @buf. */
static long
region(struct harness *h, uint32_t index, uint64_t off, void *buf,
       uint32_t count, bool write)
{
    struct vfio_user_region_access a = { .offset = off,
                                         .region = index,
                                         .count = count };
    long n;

    if (write)
        return request(h, VFIO_USER_REGION_WRITE, &a, sizeof(a), buf, count);
    n = request(h, VFIO_USER_REGION_READ, &a, sizeof(a), NULL, 0);
    if (n >= 0) {
        if (n != (long)(sizeof(a) + count))
            broken("a read of another size", VFIO_USER_REGION_READ, n);
        memcpy(buf, h->reply + UMDEV_WIRE_HDR_SIZE + sizeof(a), count);
    }
    return n;
}

static uint32_t
rd32(struct harness *h, uint32_t index, uint64_t off)
{
    uint32_t v = 0;

    must(h, region(h, index, off, &v, 4, false), VFIO_USER_REGION_READ,
         "a register read");
    return v;
}

static void
wr32(struct harness *h, uint64_t off, uint32_t v)
{
    must(h, region(h, UMDEV_PCI_BAR0_REGION, off, &v, 4, true),
         VFIO_USER_REGION_WRITE, "a register write");
}

/* What a guest would do with the device it was migrated with. */
static void
drive(struct harness *h, const uint8_t *id_before)
{
    uint8_t cfg[256];
    uint32_t i;

    for (i = 0; i < sizeof(cfg); i += 4)
        memcpy(cfg + i, &(uint32_t){ rd32(h, UMDEV_PCI_CONFIG_REGION, i) }, 4);
    /* IDs, class and revision, header type, subsystem, capability
     * pointer, interrupt pin: no stream may change them (lib/pci refuses
     * one that would). */
    if (memcmp(cfg + PCI_VENDOR_ID, id_before + PCI_VENDOR_ID, 4) != 0 ||
        memcmp(cfg + PCI_CLASS_REVISION, id_before + PCI_CLASS_REVISION, 4) !=
            0 ||
        cfg[PCI_HEADER_TYPE] != id_before[PCI_HEADER_TYPE] ||
        memcmp(cfg + PCI_SUBSYSTEM_VENDOR_ID,
               id_before + PCI_SUBSYSTEM_VENDOR_ID, 4) != 0 ||
        cfg[PCI_CAPABILITY_LIST] != id_before[PCI_CAPABILITY_LIST] ||
        cfg[PCI_INTERRUPT_PIN] != id_before[PCI_INTERRUPT_PIN])
        broken("a loaded stream changed read-only config space", 0, 0);
    if (rd32(h, UMDEV_PCI_BAR0_REGION, TESTDEV_REG_ID) != TESTDEV_ID_VALUE)
        broken("the ID register changed", 0, 0);
    wr32(h, TESTDEV_REG_SCRATCH, 0x5a5a5a5au);
    if (rd32(h, UMDEV_PCI_BAR0_REGION, TESTDEV_REG_SCRATCH) != 0x5a5a5a5au)
        broken("SCRATCH does not hold what was written", 0, 0);
    wr32(h, TESTDEV_REG_IRQ_LEVEL, 1);
    wr32(h, TESTDEV_REG_IRQ_LEVEL, 0);
    wr32(h, TESTDEV_REG_MSIX_TRIGGER, 1);
    wr32(h, TESTDEV_REG_ERR_TRIGGER, 1);
    for (i = 0; i < TESTDEV_MSIX_VECTORS * 4; i++)
        rd32(h, UMDEV_PCI_BAR0_REGION, TESTDEV_MSIX_TABLE + 4 * i);
    rd32(h, UMDEV_PCI_BAR0_REGION, TESTDEV_MSIX_PBA);
    rd32(h, UMDEV_PCI_BAR0_REGION, TESTDEV_REG_DMA_STATUS);
}

/* STOP_COPY, the whole stream read (bounded by the device's limit). */
static void
save_again(struct harness *h)
{
    struct vfio_user_mig_data m = { .argsz = sizeof(m) + MIG_READ,
                                    .size = MIG_READ };
    size_t total = 0;
    long n;

    must(h, set_state(h, VFIO_USER_DEVICE_STATE_STOP_COPY),
         VFIO_USER_DEVICE_FEATURE, "STOP_COPY after a load");
    do {
        n = request(h, VFIO_USER_MIG_DATA_READ, &m, sizeof(m), NULL, 0);
        must(h, n, VFIO_USER_MIG_DATA_READ, "MIG_DATA_READ");
        if (n < (long)sizeof(m))
            broken("a short MIG_DATA_READ reply", VFIO_USER_MIG_DATA_READ, n);
        n -= (long)sizeof(m);
        total += (size_t)n;
        if (total > UMDEV_MIG_MAX_STATE)
            broken("a stream without end", VFIO_USER_MIG_DATA_READ,
                   (long)total);
    } while (n == (long)MIG_READ);
    must(h, set_state(h, VFIO_USER_DEVICE_STATE_RUNNING),
         VFIO_USER_DEVICE_FEATURE, "RUNNING after a save");
}

static void
play(struct harness *h, const uint8_t *data, size_t size)
{
    static const size_t chunks[8] = { 1,    7,     64,    512,
                                      4096, 16384, 65536, MIG_WRITE_MAX };
    uint8_t flags = data[0], id[64];
    struct vfio_user_mig_data m = { 0 };
    size_t chunk = chunks[flags & 7], off;
    uint32_t i, st;
    long rc;

    data++;
    size--;
    if (chunk < size / 64 + 1)
        chunk = size / 64 + 1;
    if (chunk > MIG_WRITE_MAX)
        chunk = MIG_WRITE_MAX;
    for (i = 0; i < sizeof(id); i += 4)
        memcpy(id + i, &(uint32_t){ rd32(h, UMDEV_PCI_CONFIG_REGION, i) }, 4);

    must(h, set_state(h, VFIO_USER_DEVICE_STATE_RESUMING),
         VFIO_USER_DEVICE_FEATURE, "RESUMING");
    for (off = 0; off < size; off += m.size) {
        m.size = (uint32_t)(size - off < chunk ? size - off : chunk);
        m.argsz = (uint32_t)(sizeof(m) + m.size);
        /* A refusal here (header, type, configuration, size) is the
         * stream's; the rest is written anyway, and refused as well. */
        request(h, VFIO_USER_MIG_DATA_WRITE, &m, sizeof(m), data + off, m.size);
    }
    rc = set_state(h, VFIO_USER_DEVICE_STATE_STOP);
    st = get_state(h);
    if (rc < 0) {
        /* Refused by the framing: still RESUMING; by the load: ERROR. */
        if (st != VFIO_USER_DEVICE_STATE_RESUMING &&
            st != VFIO_USER_DEVICE_STATE_ERROR)
            broken("a refused stream left the device in state",
                   VFIO_USER_DEVICE_FEATURE, st);
        must(h, request(h, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0),
             VFIO_USER_DEVICE_RESET, "DEVICE_RESET after a refusal");
        if (get_state(h) != VFIO_USER_DEVICE_STATE_RUNNING)
            broken("a reset left the device stopped", 0, 0);
        if (rd32(h, UMDEV_PCI_BAR0_REGION, TESTDEV_REG_ID) != TESTDEV_ID_VALUE)
            broken("the ID register changed", 0, 0);
        return;
    }
    if (st != VFIO_USER_DEVICE_STATE_STOP)
        broken("a load did not end in STOP", VFIO_USER_DEVICE_FEATURE, st);
    must(h, set_state(h, VFIO_USER_DEVICE_STATE_RUNNING),
         VFIO_USER_DEVICE_FEATURE, "RUNNING after a load");
    if (flags & 8)
        drive(h, id);
    if (flags & 16)
        save_again(h);
}

/* The device: one for the process, power-cycled after each input. */
static struct testdev *device;

static void
device_free(void)
{
    testdev_destroy(device);
    device = NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char json[] =
        "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":"
        "1048576,\"pgsizes\":4096,\"max_dma_maps\":65535}}";
    static uint8_t *req, *reply;
    struct harness h = { 0 };
    int sv[2], fds_before, i, rc;

    if (size < 1)
        return 0;
    if (!log_ready) {
        kit_log_init(&fuzz_log, "device", "UMDEV_FUZZ_VERBOSE");
        log_ready = true;
    }
    if (req == NULL && ((req = malloc(REQ_CAP)) == NULL ||
                        (reply = malloc(REPLY_CAP)) == NULL))
        fail("malloc", ENOMEM);
    if (device == NULL) {
        rc = testdev_create(&fuzz_log.logger, &device);
        if (rc < 0)
            fail("testdev_create", -rc);
        atexit(device_free);
    }
    h.dev = testdev_dev(device);
    h.req = req;
    h.reply = reply;
    fds_before = fuzz_count_fds();
    if ((rc = kit_peer_pair(sv)) < 0)
        fail("socketpair", -rc);
    h.fd = sv[1];
    if ((rc = umdev_dev_attach(h.dev, sv[0])) < 0)
        fail("umdev_dev_attach", -rc);
    if ((rc = kit_peer_send_version(h.fd, 0, json)) < 0)
        fail("VERSION", -rc);
    umdev_dev_process(h.dev);
    if (kit_peer_recv(h.fd, h.reply, REPLY_CAP, 5000, NULL, NULL) <= 0)
        broken("no VERSION reply", VFIO_USER_VERSION, 0);

    play(&h, data, size);

    /* The client hangs up; the device notices and detaches. */
    shutdown(h.fd, SHUT_WR);
    for (i = 0; umdev_dev_attached(h.dev); i++) {
        if (i == MAX_RUNS)
            broken("the device never noticed the client hanging up", 0, 0);
        umdev_dev_process(h.dev);
        while (kit_peer_recv(h.fd, h.reply, REPLY_CAP, 0, NULL, NULL) > 0)
            ;
    }
    close(h.fd);
    testdev_power_cycle(device);
    if (fuzz_count_fds() != fds_before) {
        fprintf(stderr, "fuzz_mig_load: %d descriptors leaked\n",
                fuzz_count_fds() - fds_before);
        abort();
    }
    return 0;
}

#ifdef UMDEV_MIG_SEEDS_MAIN
/*
 * mig_seeds DIR: write the seed corpus, real streams of the test device
 * driven as a guest would, and the ways a stream goes wrong: cut short,
 * for another type, a newer format, other configuration, a config space
 * blob from another device, bytes after its end. Each seed is the flags
 * byte, then the stream.
 */
#include <sys/stat.h>

#define SEED_CAP (1u << 20)

static void
seed_write(const char *dir, int *n, const char *label, uint8_t flags,
           const uint8_t *s, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/seed-%02d-%s", dir, (*n)++, label);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(&flags, 1, 1, f) != 1 ||
        (len && fwrite(s, 1, len, f) != len) || fclose(f) != 0)
        fail(path, errno);
}

/* What the device sends from here to the end of the saving session. */
static size_t
read_stream(struct harness *h, uint8_t *out, size_t cap)
{
    struct vfio_user_mig_data m = { .argsz = sizeof(m) + MIG_READ,
                                    .size = MIG_READ };
    size_t len = 0;
    long n;

    do {
        n = request(h, VFIO_USER_MIG_DATA_READ, &m, sizeof(m), NULL, 0);
        must(h, n, VFIO_USER_MIG_DATA_READ, "MIG_DATA_READ");
        n -= (long)sizeof(m);
        if (len + (size_t)n > cap)
            fail("stream too big", EFBIG);
        memcpy(out + len, h->reply + UMDEV_WIRE_HDR_SIZE + sizeof(m),
               (size_t)n);
        len += (size_t)n;
    } while (n == (long)MIG_READ);
    return len;
}

/* A guest's setup: registers, BAR2, config space, MSI-X with vector 1
 * masked and pending, the INTx line high. */
static void
program(struct harness *h)
{
    uint8_t page[256];
    uint32_t v, at, cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    int i;

    wr32(h, TESTDEV_REG_SCRATCH, 0x1234u);
    for (i = 0; i < (int)sizeof(page); i++)
        page[i] = (uint8_t)(i * 7 + 3);
    must(h,
         region(h, UMDEV_PCI_BAR0_REGION, TESTDEV_SCRATCH_ARRAY, page,
                sizeof(page), true),
         VFIO_USER_REGION_WRITE, "scratch array");
    must(h, region(h, UMDEV_PCI_BAR2_REGION, 5000, page, sizeof(page), true),
         VFIO_USER_REGION_WRITE, "BAR2");
    must(h, region(h, UMDEV_PCI_CONFIG_REGION, PCI_COMMAND, &cmd, 2, true),
         VFIO_USER_REGION_WRITE, "Command");
    for (v = 0; v < TESTDEV_MSIX_VECTORS; v++) {
        uint64_t e = TESTDEV_MSIX_TABLE + v * PCI_MSIX_ENTRY_SIZE;

        wr32(h, e + PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee00000u + 4 * v);
        wr32(h, e + PCI_MSIX_ENTRY_DATA, 0x40u + v);
        wr32(h, e + PCI_MSIX_ENTRY_VECTOR_CTRL,
             v == 1 ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
    }
    at = rd32(h, UMDEV_PCI_CONFIG_REGION, PCI_CAPABILITY_LIST) & 0xff;
    for (i = 0; at != 0 && i < 48; i++) {
        uint32_t cap = rd32(h, UMDEV_PCI_CONFIG_REGION, at);

        if ((cap & 0xff) == PCI_CAP_ID_MSIX) {
            uint16_t fl = PCI_MSIX_FLAGS_ENABLE;

            must(h,
                 region(h, UMDEV_PCI_CONFIG_REGION, at + PCI_MSIX_FLAGS, &fl, 2,
                        true),
                 VFIO_USER_REGION_WRITE, "MSI-X enable");
            break;
        }
        at = cap >> 8 & 0xfc;
    }
    wr32(h, TESTDEV_REG_MSIX_TRIGGER, 1);
    wr32(h, TESTDEV_REG_IRQ_LEVEL, 1);
}

int
main(int argc, char **argv)
{
    static const char json[] =
        "{\"capabilities\":{\"max_data_xfer_size\":1048576}}";
    uint8_t *full = malloc(SEED_CAP), *pre = malloc(SEED_CAP);
    uint8_t *bad = malloc(SEED_CAP + 64), *fresh = malloc(SEED_CAP);
    struct harness h = { 0 };
    struct testdev *td;
    size_t len, plen, flen, blob;
    uint32_t u;
    int sv[2], n = 0;
    const char *dir;

    if (argc != 2) {
        fprintf(stderr, "usage: mig_seeds DIR\n");
        return 2;
    }
    dir = argv[1];
    if (full == NULL || pre == NULL || bad == NULL || fresh == NULL ||
        (h.req = malloc(REQ_CAP)) == NULL ||
        (h.reply = malloc(REPLY_CAP)) == NULL)
        fail("malloc", ENOMEM);
    kit_log_init(&fuzz_log, "device", "UMDEV_FUZZ_VERBOSE");
    if (testdev_create(&fuzz_log.logger, &td) < 0 || kit_peer_pair(sv) < 0)
        fail("device", EIO);
    h.dev = testdev_dev(td);
    h.fd = sv[1];
    if (umdev_dev_attach(h.dev, sv[0]) < 0 ||
        kit_peer_send_version(h.fd, 0, json) < 0)
        fail("attach", EIO);
    umdev_dev_process(h.dev);
    if (kit_peer_recv(h.fd, h.reply, REPLY_CAP, 5000, NULL, NULL) <= 0)
        fail("VERSION", EIO);

    /* A device at power-on. */
    must(&h, set_state(&h, VFIO_USER_DEVICE_STATE_STOP_COPY), 0, "save");
    flen = read_stream(&h, fresh, SEED_CAP);
    must(&h, set_state(&h, VFIO_USER_DEVICE_STATE_RUNNING), 0, "run");
    /* A programmed one: the whole state at once... */
    program(&h);
    must(&h, set_state(&h, VFIO_USER_DEVICE_STATE_STOP_COPY), 0, "save");
    len = read_stream(&h, full, SEED_CAP);
    must(&h, set_state(&h, VFIO_USER_DEVICE_STATE_RUNNING), 0, "run");
    /* ...and after a pre-copy, with one page changed since. */
    must(&h, set_state(&h, VFIO_USER_DEVICE_STATE_PRE_COPY), 0, "pre-copy");
    plen = read_stream(&h, pre, SEED_CAP);
    wr32(&h, TESTDEV_REG_SCRATCH, 0x4321u);
    u = 0xdeadbeefu;
    must(&h, region(&h, UMDEV_PCI_BAR2_REGION, 3 * 4096, &u, 4, true), 0,
         "BAR2");
    must(&h, set_state(&h, VFIO_USER_DEVICE_STATE_STOP_COPY), 0, "save");
    plen += read_stream(&h, pre + plen, SEED_CAP - plen);
    must(&h, set_state(&h, VFIO_USER_DEVICE_STATE_RUNNING), 0, "run");

    mkdir(dir, 0755);
    seed_write(dir, &n, "fresh", 0x04, fresh, flen);
    seed_write(dir, &n, "programmed-drive-save", 0x1c, full, len);
    seed_write(dir, &n, "programmed-bytes", 0x00, full, len);
    seed_write(dir, &n, "programmed-513", 0x0b, full, len);
    seed_write(dir, &n, "precopy", 0x0e, pre, plen);
    seed_write(dir, &n, "empty", 0x00, full, 0);
    /* Cut short: inside the header, after it, after the configuration,
     * inside the state, without the end section, one byte short. */
    seed_write(dir, &n, "cut-10", 0x04, full, 10);
    seed_write(dir, &n, "cut-header", 0x04, full, 64);
    seed_write(dir, &n, "cut-config", 0x04, full, 76);
    seed_write(dir, &n, "cut-state", 0x04, full, len / 2);
    seed_write(dir, &n, "cut-end", 0x04, full, len - 16);
    seed_write(dir, &n, "cut-1", 0x04, full, len - 1);
    /* Bytes after the end. */
    memcpy(bad, full, len);
    memset(bad + len, 0xa5, 16);
    seed_write(dir, &n, "trailing", 0x04, bad, len + 16);
    /* Another type; a newer format; a newer state version; a state
     * version the device never wrote; other configuration. */
    memcpy(bad, full, len);
    bad[16 + 6] = 'X';
    seed_write(dir, &n, "wrong-type", 0x04, bad, len);
    memcpy(bad, full, len);
    bad[8]++;
    seed_write(dir, &n, "newer-format", 0x04, bad, len);
    memcpy(bad, full, len);
    bad[12] = 9;
    seed_write(dir, &n, "newer-version", 0x04, bad, len);
    memcpy(bad, full, len);
    bad[12] = 0;
    seed_write(dir, &n, "version-0", 0x04, bad, len);
    memcpy(bad, full, len);
    bad[64] ^= 1;
    seed_write(dir, &n, "other-config", 0x04, bad, len);
    /* lib/pci's blob for another vendor: refused by the device's load. */
    memcpy(bad, full, len);
    blob = (size_t)((uint8_t *)memmem(bad, len, "UMDEVPCI", 8) - bad);
    bad[blob + 128] ^= 1;
    seed_write(dir, &n, "pci-other-vendor", 0x04, bad, len);
    /* The state section's length one past the stream. */
    memcpy(bad, full, len);
    memcpy(&u, bad + 76 + 8, 4);
    u++;
    memcpy(bad + 76 + 8, &u, 4);
    seed_write(dir, &n, "section-len", 0x04, bad, len);

    shutdown(h.fd, SHUT_WR);
    while (umdev_dev_attached(h.dev))
        umdev_dev_process(h.dev);
    close(h.fd);
    testdev_destroy(td);
    free(h.req);
    free(h.reply);
    free(full);
    free(pre);
    free(bad);
    free(fresh);
    printf("%d seeds in %s\n", n, dir);
    return 0;
}
#endif
