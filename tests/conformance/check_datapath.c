/*
 * datapath: socket messages per unit of I/O under load, with a load
 * generator per device type keyed by the PCI vendor:device read from
 * config space:
 *
 *  - serial (4348:3253): a polled 16550 driver on port 0 (BAR0) moving a
 *    pattern through THR to the host end and from the host end through
 *    RBR, 8N1 with FIFOs on, LSR polled as Linux's 8250 driver does. Unit:
 *    one byte, each direction measured on its own.
 *  - testdev (1234:11ef): DMA commands on guest memory mapped with its fd
 *    (DMA_ADDR, DMA_CMD=INVERT, DMA_STATUS per command). Unit: one DMA
 *    command. The message-based DMA fallback is measured too and reported.
 *  - accel (1234:11ec): queue 0 with its ring and completion records in
 *    guest memory mapped with its fd, MEMMOVE descriptors kept 32 deep, TAIL
 *    published in memory, the doorbell rung only when the ring says the
 *    engine sleeps (event suppression, devices/accel/README.md). Unit: one
 *    descriptor. Doorbells that wake a sleeping engine are waiting, not
 *    I/O, like idle polls, and every other message counts. The engine may
 *    only sleep after the ring stayed empty for its poll window, so a
 *    doorbell asked for within that window of the previous TAIL store
 *    means suppression failed; there may be at most one such per
 *    ACCEL_WAKE_RATIO_MAX descriptors. Doorbells after the driver itself
 *    stalled longer than the window (descheduled on a busy machine) are
 *    the engine's rightful sleep: reported, not held against it.
 *  - nvme (1234:11ed): the nvme parent's own exercise() hook
 *    (devices/nvme/nvme_exercise.c), run as a plug-in's is: a polled
 *    driver brings the controller up with the doorbell buffer, writes
 *    patterns through every I/O queue several deep, reads them back
 *    through another queue and compares. Unit: one command. Bring-up,
 *    shutdown and doorbells that wake a sleeping controller are
 *    waiting; doorbells its EventIdx asks for while the queues are kept
 *    busy count, beyond one per 20 commands.
 *  - display (1234:1111): the display parent's exercise() hook
 *    (devices/display/display_exercise.c): a mode set as bochs-drm does
 *    it, then pages of pixels drawn through the client's mapping of
 *    BAR0 and read back through the device. Unit: a 4 KiB page. The
 *    mode set and the read-back are waiting; messages while drawing
 *    count (there are none: the framebuffer is mapped).
 *
 * Messages are counted on the client: the commands it sends plus the
 * server's DMA_READ/DMA_WRITE it serves. Polls that find the device not
 * ready (LSR without THRE or DR) are waiting, not I/O: they are reported
 * and left out of the per-unit figure, which is therefore the steady-load
 * cost (a polled 16550 byte costs THR + 1/16 LSR out, LSR + RBR in). With
 * --daemon-uuid the server's own command counter (umdevctl info) must
 * agree exactly with the client's count.
 * Pass: the data arrived intact, and with a profile the worst direction's
 * messages per unit is at most data_path.max_msgs_per_io.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "accel.h"
#include "conform.h"
#include "display.h"
#include "display_parent.h"
#include "engine.h"
#include "nvme_host.h"
#include "uart_driver.h"
#include "umdev/accel_ring.h"

/* Bytes moved each way by the serial generator. */
#define SERIAL_BYTES 4096u
#define SERIAL_FIFO 16u
/* DMA commands issued by the testdev generator (and via messages). */
#define TESTDEV_IOS 2000u
#define TESTDEV_MSG_IOS 200u
#define TESTDEV_GUEST_SIZE (1u << 20)
#define TESTDEV_BUF 4096u

/* The accel generator: descriptors, their size, queue depth, ring. */
#define ACCEL_IOS 20000u
#define ACCEL_WARMUP 500u
#define ACCEL_XFER 1024u
#define ACCEL_DEPTH 32u
#define ACCEL_RING 64u
#define ACCEL_GUEST_SIZE (1u << 20)
#define ACCEL_COMPS_OFF 0x2000u
#define ACCEL_BUFS_OFF 0x10000u
/* A driver that keeps the ring fed wakes the engine rarely; one doorbell
 * per descriptor means event suppression does not work. */
#define ACCEL_WAKE_RATIO_MAX 20u
/* The engine's documented poll window (umdevd and umdev-serve accel use
 * the default), less a margin for the two clock reads around it. */
#define ACCEL_POLL_WINDOW_S (ACCEL_DEFAULT_POLL_US * 0.9e-6)

/* The test device's registers (tests/testdev/testdev.h). */
#define TD_REG_DMA_ADDR 0x10
#define TD_REG_DMA_LEN 0x18
#define TD_REG_DMA_CMD 0x1c
#define TD_REG_DMA_STATUS 0x20
#define TD_DMA_BUSY 0x80000000u /* DMA_STATUS while a DMA runs */
#define TD_DMA_INVERT 3

/* One measured phase. */
struct phase {
    const char *what;
    const char *unit;
    uint64_t ios;
    uint64_t msgs;
    uint64_t idle; /* polls that found the device not ready: waiting */
};

/* Guest RAM: a memfd mapped shared, handed to the server with its fd. */
struct guest_ram {
    int fd;
    uint8_t *mem; /* NULL until mapped */
    size_t size;
};

struct gen_ctx {
    struct conform *cf;
    struct cf_result *r;
    struct umdev_client *c;
    /* The generator's guest RAM, if its table entry asks for some: made
     * before it runs, gone after (check_datapath()). */
    struct guest_ram ram;
    struct phase ph[2];
    size_t nph;
    bool moved; /* all data verified */
    char where[320];
    char note[160]; /* generator-specific evidence, if any */
};

static uint64_t
msgs_now(struct umdev_client *c, uint64_t *cmds)
{
    struct umdev_client_stats s;

    umdev_client_get_stats(c, &s);
    if (cmds != NULL)
        *cmds = s.requests;
    return s.requests + s.dma_reads + s.dma_writes;
}

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed | 1;
    size_t i;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* ------------------------------------------------------------------ */
/* serial                                                             */

/* Port 0's registers (BAR0), as uart_driver.h's accessors. */
static int
uart_rd(void *c, unsigned int reg, uint8_t *v)
{
    return umdev_client_region_read(c, 0, reg, v, 1);
}

static int
uart_wr(void *c, unsigned int reg, uint8_t v)
{
    return umdev_client_region_write(c, 0, reg, &v, 1);
}

static const char *
host_end_path(const struct conform *cf, char *buf, size_t len)
{
    size_t n = strlen(cf->socket);
    struct stat st;

    if (cf->host_end != NULL)
        return cf->host_end;
    snprintf(buf, len, "%s.port0", cf->socket);
    if (stat(buf, &st) == 0 || n < 5 ||
        strcmp(cf->socket + n - 5, ".sock") != 0)
        return buf;
    /* umdevd names them RUNDIR/UUID.sock and RUNDIR/UUID.port0. */
    snprintf(buf, len, "%.*s.port0", (int)(n - 5), cf->socket);
    return buf;
}

static int
host_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int rc = -errno;

        close(fd);
        return rc;
    }
    return fd;
}

/* Whatever the host end has, without waiting. Return: bytes or -errno. */
static ssize_t
host_take(int fd, uint8_t *buf, size_t cap)
{
    ssize_t n = read(fd, buf, cap);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n == 0)
        return -ECONNRESET;
    return n < 0 ? -errno : n;
}

/* Bytes left from earlier checks (THR writes with nobody connected). */
static int
host_drain_stale(int fd, int timeout_ms)
{
    double end = cf_now() + timeout_ms / 1000.0;
    uint8_t junk[4096];

    while (cf_now() < end) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 100) == 0)
            return 0; /* quiet for 100 ms */
        n = host_take(fd, junk, sizeof(junk));
        if (n < 0)
            return (int)n;
    }
    return -ETIMEDOUT;
}

static int
gen_serial(struct gen_ctx *g)
{
    struct umdev_client *c = g->c;
    double deadline;
    char pbuf[256];
    const char *path = host_end_path(g->cf, pbuf, sizeof(pbuf));
    uint8_t *tx = malloc(SERIAL_BYTES), *rx = malloc(SERIAL_BYTES);
    uint8_t *got_host = malloc(SERIAL_BYTES), *got_guest = malloc(SERIAL_BYTES);
    size_t tx_done = 0, host_got = 0, host_sent = 0, rx_done = 0, k;
    uint64_t m0, m1, idle = 0;
    uint8_t lsr = 0;
    int hfd = -1, rc = 0;

    snprintf(g->where, sizeof(g->where), "port0 host end %s", path);
    if (!tx || !rx || !got_host || !got_guest) {
        cf_error(g->r, "out of memory");
        goto out;
    }
    fill(tx, SERIAL_BYTES, 0xc0f0u);
    fill(rx, SERIAL_BYTES, 0xc0f1u);
    hfd = host_connect(path);
    if (hfd < 0) {
        cf_error(g->r,
                 "cannot connect to the host end %s: %s (give "
                 "--host-end)",
                 path, cf_errname(-hfd));
        goto out;
    }
    /* 8N1 at the fastest divisor, FIFOs on and cleared, polled. */
    rc = uart_driver_setup(&(struct uart_driver){ uart_rd, uart_wr, c });
    if (rc < 0) {
        cf_fail(g->r, R_DATAPATH_DATA, "programming the UART: %s",
                cf_errname(-rc));
        goto out;
    }
    rc = host_drain_stale(hfd, g->cf->timeout_ms);
    if (rc < 0) {
        cf_fail(g->r, R_DATAPATH_DATA, "draining old bytes: %s",
                cf_errname(-rc));
        goto out;
    }

    /* Guest -> host: THR while THRE (the whole FIFO is then free). A
     * phase fails when no byte arrives for the kit's timeout. */
    deadline = cf_now() + g->cf->timeout_ms / 1000.0;
    m0 = msgs_now(c, NULL);
    while (host_got < SERIAL_BYTES && rc == 0) {
        ssize_t n;

        if (cf_now() > deadline) {
            cf_fail(g->r, R_DATAPATH_DATA,
                    "guest->host stalled at %zu of %u bytes (%zu "
                    "written to THR)",
                    host_got, SERIAL_BYTES, tx_done);
            goto out;
        }
        if (tx_done < SERIAL_BYTES) {
            rc = uart_rd(c, UART_LSR, &lsr);
            idle += rc == 0 && !(lsr & UART_LSR_THRE);
            if (rc == 0 && (lsr & UART_LSR_THRE))
                for (k = 0;
                     k < SERIAL_FIFO && tx_done < SERIAL_BYTES && rc == 0; k++)
                    rc = uart_wr(c, UART_TX, tx[tx_done++]);
        } else {
            struct pollfd p = { .fd = hfd, .events = POLLIN };

            poll(&p, 1, 100);
        }
        n = host_take(hfd, got_host + host_got, SERIAL_BYTES - host_got);
        if (n < 0)
            rc = (int)n;
        else
            host_got += (size_t)n;
        if (n > 0)
            deadline = cf_now() + g->cf->timeout_ms / 1000.0;
    }
    m1 = msgs_now(c, NULL);
    g->ph[g->nph++] =
        (struct phase){ "guest->host", "B", SERIAL_BYTES, m1 - m0, idle };
    idle = 0;
    if (rc < 0) {
        cf_fail(g->r, R_DATAPATH_DATA, "guest->host: %s", cf_errname(-rc));
        goto out;
    }

    /* Host -> guest: LSR.DR then RBR, LSR after every byte. */
    deadline = cf_now() + g->cf->timeout_ms / 1000.0;
    m0 = msgs_now(c, NULL);
    while (rx_done < SERIAL_BYTES && rc == 0) {
        if (cf_now() > deadline) {
            cf_fail(g->r, R_DATAPATH_DATA,
                    "host->guest stalled at %zu of %u bytes", rx_done,
                    SERIAL_BYTES);
            goto out;
        }
        if (host_sent < SERIAL_BYTES) {
            ssize_t n = write(hfd, rx + host_sent, SERIAL_BYTES - host_sent);

            if (n > 0)
                host_sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                rc = -errno;
        }
        if (rc == 0)
            rc = uart_rd(c, UART_LSR, &lsr);
        idle += rc == 0 && !(lsr & UART_LSR_DR);
        if (rc == 0 && (lsr & UART_LSR_OE)) {
            cf_fail(g->r, R_DATAPATH_DATA, "receiver overrun after %zu bytes",
                    rx_done);
            goto out;
        }
        while (rc == 0 && (lsr & UART_LSR_DR) && rx_done < SERIAL_BYTES) {
            deadline = cf_now() + g->cf->timeout_ms / 1000.0;
            rc = uart_rd(c, UART_RX, &got_guest[rx_done++]);
            if (rc == 0)
                rc = uart_rd(c, UART_LSR, &lsr);
            idle += rc == 0 && !(lsr & UART_LSR_DR);
        }
    }
    m1 = msgs_now(c, NULL);
    g->ph[g->nph++] =
        (struct phase){ "host->guest", "B", SERIAL_BYTES, m1 - m0, idle };
    if (rc < 0) {
        cf_fail(g->r, R_DATAPATH_DATA, "host->guest: %s", cf_errname(-rc));
        goto out;
    }
    if (memcmp(got_host, tx, SERIAL_BYTES) != 0)
        cf_fail(g->r, R_DATAPATH_DATA, "guest->host data differs");
    else if (memcmp(got_guest, rx, SERIAL_BYTES) != 0)
        cf_fail(g->r, R_DATAPATH_DATA, "host->guest data differs");
    else
        g->moved = true;
out:
    if (hfd >= 0)
        close(hfd);
    free(tx);
    free(rx);
    free(got_host);
    free(got_guest);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Guest RAM (struct guest_ram)                                         */

/* g->ram of @size bytes. Return: 0, or -errno after failing the check
 * saying what failed. */
static int
guest_ram_open(struct gen_ctx *g, size_t size)
{
    struct guest_ram *ram = &g->ram;
    void *mem;

    ram->size = size;
    ram->mem = NULL;
    ram->fd = memfd_create("umdev-conform-guest", MFD_CLOEXEC);
    if (ram->fd < 0 || ftruncate(ram->fd, (off_t)size) < 0) {
        cf_error(g->r, "guest memory: memfd: %s", strerror(errno));
        return -errno;
    }
    mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, ram->fd, 0);
    if (mem == MAP_FAILED) {
        cf_error(g->r, "guest memory: mmap: %s", strerror(errno));
        return -errno;
    }
    ram->mem = mem;
    return 0;
}

/* The mapping outlives the descriptor: either may go first. */
static void
guest_ram_close(struct guest_ram *ram)
{
    if (ram->fd >= 0)
        close(ram->fd);
    if (ram->mem != NULL)
        munmap(ram->mem, ram->size);
}

/* ------------------------------------------------------------------ */
/* testdev                                                            */

static int
td_wr(struct umdev_client *c, uint64_t off, uint64_t v, size_t n)
{
    return umdev_client_region_write(c, 0, off, &v, n);
}

/* @n INVERT commands over the 4 KiB buffers of @guest at @iova; checks
 * every status and, at the end, every byte. */
static int
td_run(struct gen_ctx *g, uint64_t iova, uint8_t *guest, unsigned int n,
       const char *what)
{
    const unsigned int nbuf = TESTDEV_GUEST_SIZE / TESTDEV_BUF;
    uint8_t *expect = malloc(TESTDEV_GUEST_SIZE);
    uint64_t m0, m1, idle = 0;
    uint32_t status = 0;
    unsigned int i;
    size_t k;
    int rc;

    if (expect == NULL)
        return -ENOMEM;
    fill(guest, TESTDEV_GUEST_SIZE, 0x7e57u + n);
    memcpy(expect, guest, TESTDEV_GUEST_SIZE);
    rc = td_wr(g->c, TD_REG_DMA_LEN, TESTDEV_BUF, 4);
    m0 = msgs_now(g->c, NULL);
    for (i = 0; i < n && rc == 0; i++) {
        unsigned int b = (i * 37u) % nbuf;

        rc = td_wr(g->c, TD_REG_DMA_ADDR, iova + (uint64_t)b * TESTDEV_BUF, 8);
        if (rc == 0)
            rc = td_wr(g->c, TD_REG_DMA_CMD, TD_DMA_INVERT, 4);
        /* Messages take a while: the status reads busy until the DMA
         * requests this client serves are answered. Those reads wait. */
        for (status = TD_DMA_BUSY; rc == 0 && status == TD_DMA_BUSY;) {
            rc = umdev_client_region_read(g->c, 0, TD_REG_DMA_STATUS, &status,
                                          4);
            if (rc == 0 && status == TD_DMA_BUSY)
                idle++;
        }
        if (rc == 0 && status != 0) {
            cf_fail(g->r, R_DATAPATH_DATA, "%s: DMA %u reports status %s", what,
                    i, cf_errname((int)status));
            rc = -EIO;
        }
        for (k = 0; rc == 0 && k < TESTDEV_BUF; k++)
            expect[(size_t)b * TESTDEV_BUF + k] ^= 0xff;
    }
    m1 = msgs_now(g->c, NULL);
    g->ph[g->nph++] = (struct phase){ what, "DMA", i, m1 - m0, idle };
    if (rc == 0 && memcmp(expect, guest, TESTDEV_GUEST_SIZE) != 0) {
        cf_fail(g->r, R_DATAPATH_DATA,
                "%s: guest memory does not hold the inverted data", what);
        rc = -EIO;
    }
    free(expect);
    return rc;
}

static int
gen_testdev(struct gen_ctx *g)
{
    const uint32_t rw =
        VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;
    const uint64_t iova = 1ull << 32, iova_msg = 2ull << 32;
    uint8_t *guest = g->ram.mem;
    int rc;

    snprintf(g->where, sizeof(g->where), "INVERT of 4 KiB buffers");
    /* Guest RAM as a VMM hands it over: with its fd. */
    rc = umdev_client_dma_map(g->c, iova, TESTDEV_GUEST_SIZE, guest, g->ram.fd,
                              0, rw);
    if (rc == 0)
        rc = td_run(g, iova, guest, TESTDEV_IOS, "mapped DMA");
    if (rc == 0)
        rc = umdev_client_dma_unmap(g->c, iova, TESTDEV_GUEST_SIZE);
    if (rc < 0) {
        if (g->r->pass)
            cf_fail(g->r, R_DATAPATH_DATA, "mapped DMA: %s", cf_errname(-rc));
        return 0;
    }
    /* The fallback without an fd: every DMA is a message. */
    rc = umdev_client_dma_map(g->c, iova_msg, TESTDEV_GUEST_SIZE, guest, -1, 0,
                              rw);
    if (rc == 0)
        rc = td_run(g, iova_msg, guest, TESTDEV_MSG_IOS, "message DMA");
    if (rc == 0)
        rc = umdev_client_dma_unmap(g->c, iova_msg, TESTDEV_GUEST_SIZE);
    if (rc < 0) {
        if (g->r->pass)
            cf_fail(g->r, R_DATAPATH_DATA, "message DMA: %s", cf_errname(-rc));
        return 0;
    }
    g->moved = true;
    return 0;
}

/* ------------------------------------------------------------------ */
/* accel                                                              */

struct accel_load {
    struct gen_ctx *g;
    uint8_t *mem; /* guest memory, at iova */
    uint64_t iova;
    struct accel_ring_drv r; /* ring at mem, a record per slot */
    double published_at;     /* cf_now() right after the last TAIL store */
    uint64_t wakeups;
    uint64_t stalled_wakeups; /* of those: the driver was away longer than
                               * the engine's poll window */
};

/* Publish TAIL; ring the doorbell only when the engine asks for it. The
 * clock is read between the TAIL store and the fence before the flags:
 * the window below is measured from the store. */
static int
accel_publish(struct accel_load *a)
{
    double before = a->published_at;
    uint32_t old = accel_ring_store_tail(&a->r), one = 1;

    a->published_at = cf_now();
    if (!accel_ring_doorbell_wanted(&a->r, old))
        return 0;
    a->wakeups++;
    /* The flag was read after this store; the engine found the ring empty
     * no earlier than the previous one. */
    if (cf_now() - before >= ACCEL_POLL_WINDOW_S)
        a->stalled_wakeups++;
    return umdev_client_region_write_posted(a->g->c, 2, 0, &one, 4);
}

/* Buffer pair of ring slot @idx: source at 2k, destination at 2k + 1. */
static uint64_t
accel_buf(uint32_t idx, unsigned int which)
{
    return ACCEL_BUFS_OFF + ((idx % ACCEL_RING) * 2u + which) * ACCEL_XFER;
}

/* Post the next descriptor: a MEMMOVE of its slot's source to its
 * destination, with the slot's record. */
static void
accel_post(struct accel_load *a)
{
    uint32_t idx = a->r.tail;
    struct accel_desc d = {
        .opcode = ACCEL_OP_MEMMOVE,
        .size = ACCEL_XFER,
        .src = a->iova + accel_buf(idx, 0),
        .dst = a->iova + accel_buf(idx, 1),
        .tag = idx,
    };

    fill(a->mem + accel_buf(idx, 0), ACCEL_XFER, idx * 2654435761u + 1);
    memset(a->mem + accel_buf(idx, 1), 0, ACCEL_XFER);
    accel_ring_post(&a->r, &d);
}

/*
 * Run the next @n descriptors keeping ACCEL_DEPTH in flight; check each
 * completion and destination. Reaping only polls memory, as a driver
 * under load does. Return: 0 or -errno after failing @a->g->r.
 */
static int
accel_run(struct accel_load *a, uint32_t n)
{
    double deadline = cf_now() + a->g->cf->timeout_ms / 1000.0;
    struct accel_ring_drv *r = &a->r;
    uint32_t last = r->tail + n;
    int rc = 0;

    while (r->reaped < last) {
        struct accel_comp cr;
        uint32_t idx = r->reaped;

        if (r->tail < last && r->tail - r->reaped < ACCEL_DEPTH) {
            while (r->tail < last && r->tail - r->reaped < ACCEL_DEPTH)
                accel_post(a);
            rc = accel_publish(a);
            if (rc < 0) {
                cf_fail(a->g->r, R_DATAPATH_DATA, "doorbell: %s",
                        cf_errname(-rc));
                return rc;
            }
        }
        if (!accel_ring_reap(r, &cr)) {
            if (cf_now() > deadline) {
                cf_fail(a->g->r, R_DATAPATH_DATA,
                        "descriptor %u did not complete (HEAD %u, TAIL %u)",
                        idx, accel_ring_load(r->ring, ACCEL_RING_HEAD),
                        r->tail);
                return -ETIMEDOUT;
            }
            continue;
        }
        if (cr.status != ACCEL_ST_SUCCESS || cr.tag != idx ||
            cr.bytes != ACCEL_XFER ||
            memcmp(a->mem + accel_buf(idx, 0), a->mem + accel_buf(idx, 1),
                   ACCEL_XFER) != 0) {
            cf_fail(a->g->r, R_DATAPATH_DATA,
                    "descriptor %u: status 0x%02x, tag %" PRIu64 ", %u bytes%s",
                    idx, cr.status, cr.tag, cr.bytes,
                    cr.status == ACCEL_ST_SUCCESS ? ", destination differs"
                                                  : "");
            return -EIO;
        }
        deadline = cf_now() + a->g->cf->timeout_ms / 1000.0;
    }
    return 0;
}

static int
accel_reg_wr(struct umdev_client *c, uint64_t off, uint64_t v, size_t n)
{
    return umdev_client_region_write(c, 0, off, &v, n);
}

static int
gen_accel(struct gen_ctx *g)
{
    const uint32_t rw =
        VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;
    struct accel_load a = { .g = g, .iova = 1ull << 32 };
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    uint64_t m0, m1, w0, s0, stalled, loaded;
    uint32_t status = 0;
    int rc;

    snprintf(g->where, sizeof(g->where),
             "queue 0, MEMMOVE of %u B, %u in flight, event suppression",
             ACCEL_XFER, ACCEL_DEPTH);
    a.mem = g->ram.mem;
    accel_ring_drv_init(&a.r, a.mem, ACCEL_RING,
                        (struct accel_comp *)(void *)(a.mem + ACCEL_COMPS_OFF),
                        a.iova + ACCEL_COMPS_OFF);
    rc = umdev_client_dma_map(g->c, a.iova, ACCEL_GUEST_SIZE, a.mem, g->ram.fd,
                              0, rw);
    if (rc == 0)
        rc = umdev_client_region_write(g->c, VFIO_PCI_CONFIG_REGION_INDEX,
                                       PCI_COMMAND, &cmd, 2);
    if (rc == 0)
        rc = accel_reg_wr(g->c, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_ENABLE, 4);
    if (rc == 0)
        rc = accel_reg_wr(g->c, ACCEL_REG_QUEUE(0) + ACCEL_Q_RING_BASE, a.iova,
                          8);
    if (rc == 0)
        rc = accel_reg_wr(g->c, ACCEL_REG_QUEUE(0) + ACCEL_Q_RING_SIZE,
                          ACCEL_RING, 4);
    if (rc == 0)
        rc = accel_reg_wr(g->c, ACCEL_REG_QUEUE(0) + ACCEL_Q_PRIORITY, 1, 4);
    if (rc == 0)
        rc = accel_reg_wr(g->c, ACCEL_REG_QUEUE(0) + ACCEL_Q_CTRL,
                          ACCEL_Q_CTRL_ENABLE, 4);
    if (rc == 0)
        rc = umdev_client_region_read(
            g->c, 0, ACCEL_REG_QUEUE(0) + ACCEL_Q_STATUS, &status, 4);
    if (rc < 0) {
        cf_fail(g->r, R_DATAPATH_DATA, "programming queue 0: %s",
                cf_errname(-rc));
        return 0;
    }
    if (ACCEL_Q_STATUS_STATE(status) != ACCEL_QS_ENABLED) {
        cf_fail(g->r, R_DATAPATH_DATA, "queue 0 did not enable: STATUS 0x%08x",
                status);
        return 0;
    }
    /* The engine starts asleep: the first doorbell is its wake-up, not
     * steady load. */
    if (accel_run(&a, ACCEL_WARMUP) < 0)
        return 0;
    m0 = msgs_now(g->c, NULL);
    w0 = a.wakeups;
    s0 = a.stalled_wakeups;
    rc = accel_run(&a, ACCEL_IOS);
    m1 = msgs_now(g->c, NULL);
    g->ph[g->nph++] =
        (struct phase){ "ring", "desc", ACCEL_IOS, m1 - m0, a.wakeups - w0 };
    if (rc < 0)
        return 0;
    stalled = a.stalled_wakeups - s0;
    loaded = a.wakeups - w0 - stalled;
    snprintf(g->note, sizeof(g->note),
             "doorbells: %" PRIu64 " under load, %" PRIu64
             " after the driver stalled >= %u us",
             loaded, stalled, ACCEL_DEFAULT_POLL_US);
    if (loaded * ACCEL_WAKE_RATIO_MAX > ACCEL_IOS) {
        cf_fail(g->r, R_DATAPATH_MSGS_PER_IO,
                "%" PRIu64 " doorbells for %u descriptors kept %u deep, each "
                "within %u us of the previous TAIL store: more than one per "
                "%u, event suppression does not hold",
                loaded, ACCEL_IOS, ACCEL_DEPTH, ACCEL_DEFAULT_POLL_US,
                ACCEL_WAKE_RATIO_MAX);
        return 0;
    }
    rc = accel_reg_wr(g->c, ACCEL_REG_QUEUE(0) + ACCEL_Q_CTRL, 0, 4);
    if (rc == 0)
        rc = umdev_client_dma_unmap(g->c, a.iova, ACCEL_GUEST_SIZE);
    if (rc < 0) {
        cf_fail(g->r, R_DATAPATH_DATA, "disabling queue 0: %s",
                cf_errname(-rc));
        return 0;
    }
    g->moved = true;
    return 0;
}

/* ------------------------------------------------------------------ */
/* A parent's own load generator, its exercise() hook: a plug-in's       */
/* (--plugin, plugin.c) or a built-in parent's linked into the kit       */

#define HOOK_IOS 2000u
#define HOOK_GUEST_IOVA 0x100000000ull
#define HOOK_GUEST_SIZE (1u << 20)

typedef int exercise_fn(const struct umdev_exercise_args *args,
                        struct umdev_exercise_result *out);

/* Run @fn (the exercise() of @whose) on guest memory mapped with its fd
 * and measure it: every message on the client counts, less those it
 * says were waiting. */
static int
run_hook(struct gen_ctx *g, exercise_fn *fn, const char *whose)
{
    struct umdev_exercise_result res;
    struct umdev_exercise_args a = {
        .client = g->c,
        .type = g->cf->type ? g->cf->type : "",
        .guest_iova = HOOK_GUEST_IOVA,
        .guest_size = HOOK_GUEST_SIZE,
        .units = HOOK_IOS,
    };
    uint64_t m0, m1;
    int rc;

    memset(&res, 0, sizeof(res));
    snprintf(g->where, sizeof(g->where), "%s exercise()%s%s", whose,
             g->cf->type ? " for " : "", g->cf->type ? g->cf->type : "");
    rc = umdev_client_dma_map(
        g->c, HOOK_GUEST_IOVA, HOOK_GUEST_SIZE, g->ram.mem, g->ram.fd, 0,
        VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE);
    if (rc < 0) {
        cf_error(g->r, "guest memory for %s exercise(): %s", whose,
                 cf_errname(-rc));
        return 0;
    }
    a.guest = g->ram.mem;
    m0 = msgs_now(g->c, NULL);
    rc = fn(&a, &res);
    m1 = msgs_now(g->c, NULL);
    g->ph[g->nph++] = (struct phase){ "exercise()", "units", res.units, m1 - m0,
                                      res.waiting_msgs };
    snprintf(g->note, sizeof(g->note), "%s", res.note);
    if (rc < 0 || res.units != HOOK_IOS) {
        cf_fail(g->r, R_DATAPATH_DATA, "exercise() moved %llu of %u units: %s",
                (unsigned long long)res.units, HOOK_IOS,
                rc < 0 ? (res.note[0] ? res.note : cf_errname(-rc))
                       : "stopped short");
        return 0;
    }
    if (res.waiting_msgs > m1 - m0) {
        cf_error(g->r,
                 "exercise() says %llu messages were waiting, but "
                 "only %llu were sent",
                 (unsigned long long)res.waiting_msgs,
                 (unsigned long long)(m1 - m0));
        return 0;
    }
    rc = umdev_client_dma_unmap(g->c, HOOK_GUEST_IOVA, HOOK_GUEST_SIZE);
    if (rc < 0) {
        cf_fail(g->r, R_DATAPATH_DATA, "unmapping guest memory: %s",
                cf_errname(-rc));
        return 0;
    }
    g->moved = true;
    return 0;
}

static int
gen_plugin(struct gen_ctx *g)
{
    const struct umdev_parent *p = g->cf->plugin;

    if (p->ops->exercise == NULL) {
        snprintf(g->where, sizeof(g->where), "the plug-in's exercise() for %s",
                 g->cf->type);
        cf_error(g->r,
                 "plug-in parent '%s' offers no exercise() load "
                 "generator: its data path cannot be measured",
                 p->name);
        return 0;
    }
    return run_hook(g, p->ops->exercise, "the plug-in's");
}

/* nvme (devices/nvme): the parent's own hook, a polled Linux-like
 * driver on the I/O queues (devices/nvme/README.md "Conformance"). */
static int
gen_nvme(struct gen_ctx *g)
{
    return run_hook(g, nvme_exercise, "the nvme parent's");
}

/* display (devices/display): the parent's own hook, a mode set as
 * bochs-drm does it, pages drawn through the BAR0 mapping and read back
 * (devices/display/README.md "Conformance"). */
static int
gen_display(struct gen_ctx *g)
{
    return run_hook(g, display_exercise, "the display parent's");
}

/* ------------------------------------------------------------------ */

struct generator {
    uint16_t vendor, device;
    const char *name;
    int (*run)(struct gen_ctx *g);
    size_t nrule;      /* phases the pass rule covers (the rest: reported) */
    size_t guest_size; /* guest RAM it drives (g->ram), 0: none */
};

static const struct generator generators[] = {
    { 0x4348, 0x3253, "serial (polled 16550 on port 0)", gen_serial, 2, 0 },
    { 0x1234, 0x11ef, "testdev (DMA commands)", gen_testdev, 1,
      TESTDEV_GUEST_SIZE },
    { ACCEL_VENDOR_ID, ACCEL_DEVICE_ID, "accel (descriptor ring)", gen_accel, 1,
      ACCEL_GUEST_SIZE },
    { NVME_VENDOR_ID, NVME_DEVICE_ID, "nvme (I/O queues, shadow doorbells)",
      gen_nvme, 1, HOOK_GUEST_SIZE },
    { DISPLAY_VENDOR_ID, DISPLAY_DEVICE_ID,
      "display (framebuffer pages drawn through BAR0's mapping)", gen_display,
      1, HOOK_GUEST_SIZE },
};

void
check_datapath(struct conform *cf, struct cf_result *r)
{
    static const struct generator plugin = { 0,          0, "plug-in",
                                             gen_plugin, 1, HOOK_GUEST_SIZE };
    const struct generator *gen = NULL;
    struct gen_ctx g = { .cf = cf, .r = r, .ram = { .fd = -1 } };
    struct cf_daemon_info d0, d1;
    bool have_daemon = false;
    double worst = 0;
    uint64_t req0, req1;
    char err[256];
    size_t i;
    int rc;

    for (i = 0; i < CF_ARRAY_SIZE(generators); i++)
        if (generators[i].vendor == cf->dev.vendor &&
            generators[i].device == cf->dev.device)
            gen = &generators[i];
    /* A plug-in's type is driven by the plug-in, whatever its IDs. */
    if (cf->plugin != NULL)
        gen = &plugin;
    if (gen == NULL) {
        cf_error(r, "no load generator for %04x:%04x", cf->dev.vendor,
                 cf->dev.device);
        return;
    }
    rc = cf_client_connect(cf, &g.c);
    if (rc < 0) {
        cf_error(r, "cannot attach: %s", strerror(-rc));
        return;
    }
    if (cf->daemon_uuid != NULL) {
        if (cf_daemon_info(cf, &d0, err, sizeof(err)) < 0)
            cf_error(r, "%s", err);
        else
            have_daemon = true;
    }
    msgs_now(g.c, &req0);
    if (gen->guest_size == 0 || guest_ram_open(&g, gen->guest_size) == 0)
        gen->run(&g);
    guest_ram_close(&g.ram);
    msgs_now(g.c, &req1);
    cf_note(r, "%04x:%04x %s, %s", cf->dev.vendor, cf->dev.device, gen->name,
            g.where);
    for (i = 0; i < g.nph; i++) {
        const struct phase *ph = &g.ph[i];
        double per =
            ph->ios ? (double)(ph->msgs - ph->idle) / (double)ph->ios : 0;

        cf_note(r,
                "%s: %" PRIu64 " %s in %" PRIu64 " messages, %" PRIu64
                " of them waiting (idle polls, wake-ups) = %.3f msgs/%s%s",
                ph->what, ph->ios, ph->unit, ph->msgs, ph->idle, per, ph->unit,
                i < gen->nrule ? "" : " (reported only)");
        if (i < gen->nrule && per > worst)
            worst = per;
    }
    if (g.note[0] != '\0')
        cf_note(r, "%s", g.note);
    if (have_daemon) {
        /* Asked while still attached: every command the client sent
         * since the first sample must have been counted, no more. */
        if (cf_daemon_info(cf, &d1, err, sizeof(err)) < 0) {
            cf_error(r, "%s", err);
        } else {
            uint64_t server = d1.msgs - d0.msgs;

            cf_note(r,
                    "server counted %" PRIu64 " commands (umdevctl "
                    "info), the client sent %" PRIu64,
                    server, req1 - req0);
            if (server != req1 - req0)
                cf_fail(r, R_DATAPATH_COUNTERS,
                        "the server's counter says %" PRIu64 " commands, "
                        "the client sent %" PRIu64,
                        server, req1 - req0);
        }
    }
    umdev_client_destroy(g.c);
    if (!g.moved) {
        if (r->pass)
            cf_fail(r, R_DATAPATH_DATA, "the load did not complete");
        return;
    }
    if (cf->profile != NULL && cf->profile->has_max_msgs) {
        if (worst > cf->profile->max_msgs_per_io)
            cf_fail(r, R_DATAPATH_MSGS_PER_IO,
                    "%.3f messages per I/O exceeds the profile's bound "
                    "of %g",
                    worst, cf->profile->max_msgs_per_io);
        else
            cf_note(r, "worst %.3f <= profile bound %g", worst,
                    cf->profile->max_msgs_per_io);
    } else {
        cf_note(r, "no profile bound: data verified, %.3f msgs/I/O reported",
                worst);
    }
}
