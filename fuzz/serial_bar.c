/*
 * libFuzzer target: a stream of BAR (I/O port) accesses, config writes,
 * host-end traffic, timer runs, DMA mappings and resets against the
 * serial card (devices/serial: two 16550A ports). Port 0's host end is a
 * UNIX socket the harness connects to, so received bytes, FIFO overruns,
 * the RX timeout and the modem lines a connection drives are in reach;
 * port 1 has none. The device and its event loop run on the fuzzer's
 * thread, the loop only when the input says (op LOOP, HOST_TX).
 *
 * After every operation: config space keeps its identity, BAR type bits
 * and capability chain; both ports still answer a side-effect-free
 * register read (SCR); the canaries around guest memory are intact (the
 * card does no DMA: a mapping must simply change nothing). At the end the
 * device answers a REGION_READ over the socket, and once the input's
 * client and host connection are gone no descriptor is left open.
 *
 * Speed: the card, its loop, port 0's listening socket and guest memory
 * live for the process; an input is one new client (a socketpair and
 * VERSION) and one host connection. After it the client resets the card
 * (VFIO_USER_DEVICE_RESET, its own reset path) and hangs up, the memfd is
 * emptied, and serial_power_cycle() restores what a reset keeps and a new
 * card has not: the host connection and any peer still in the backlog,
 * the RX timeout timer, and the bytes a UART handed to the host end but
 * the host had not read yet. So no input depends on the one before and a
 * crash replays alone. FUZZ_SELFCHECK=1 compares each power-cycled card
 * with a new one (config space, both ports' registers, IRQ state) and
 * aborts on a difference; the committed corpus passes it. Teardown runs
 * at exit, under LSan.
 * Measured (2 CPUs, two other nice-19 fuzzers and other builds running):
 *   taskset -c 1 nice -n -5 fuzz_serial_bar -max_total_time=30
 *   -print_final_stats=1 DIR  (DIR a copy of fuzz/corpus/serial_bar, or
 *   empty), stat::average_exec_per_sec:
 *     a card per input:    from the corpus 275/s, from empty 1310/s
 *     one for the process: from the corpus 267/s, from empty 2158/s
 *   Inputs of the corpus spend most of their time asleep in op LOOP,
 *   which waits up to 2 ms for the loop's timers (replaying the corpus
 *   takes 0.8 s, 0.09 s of it on a CPU): no power cycle shortens that.
 *
 * Input: ops until it ends, each an opcode byte (mod OP_COUNT) and its
 * operands (missing operand bytes read as 0):
 *   BAR0_WR / BAR0_RD / BAR1_WR / BAR1_RD / CFG_WR / CFG_RD
 *            u16 offset (mod the region's size), u8 width code (as in
 *            accel_bar.c), the bytes of a write
 *   HOST_TX  u8 n, n bytes the host end sends; then one loop run
 *   HOST_RX  read what the device sent to the host end
 *   HOST_CYCLE  hang up the host end, or connect it again
 *   LOOP     u8: one loop run waiting (u8 % 3) ms (timers)
 *   RESET    VFIO_USER_DEVICE_RESET over the socket
 *   IRQS     u8: bit 0 tear INTx down, else an eventfd on it
 *   MAP      u8: DMA_MAP of guest memory read-write (bit 0: read-only)
 *   SOCK_RD  a REGION_READ of port 0's SCR over the socket
 * fuzz/corpus/serial_bar/ holds hand-made inputs: set the line up,
 * enable interrupts and FIFOs, send and receive, loopback, overrun.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bar_harness.h"
#include "kit_util.h"
#include "serial.h"
#include "umdev/loop.h"
#include "umdev/wire.h"
#include "umdev/dev_testing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUEST_PAGES 4u
#define GUEST_IOVA 0x100000ull
#define UART_SCR 7

enum op {
    OP_BAR0_WR,
    OP_BAR0_RD,
    OP_BAR1_WR,
    OP_BAR1_RD,
    OP_CFG_WR,
    OP_CFG_RD, /* the last of the FUZZ_REGION_OPS */
    OP_HOST_TX,
    OP_HOST_RX,
    OP_HOST_CYCLE,
    OP_LOOP,
    OP_RESET,
    OP_IRQS,
    OP_MAP,
    OP_SOCK_RD,
    OP_COUNT,
};

/* Every line is formatted (format bugs show under the sanitizers);
 * UMDEV_FUZZ_VERBOSE=1 prints them. */
static struct kit_log fuzz_log;
struct harness {
    struct umdev_loop *loop;
    struct serial *s;
    struct umdev_dev *dev;
    struct fuzz_bar b; /* client, guest memory, invariants, eventfd */
    char path[108]; /* port 0's host end */
    int host;       /* our connection to it, or -1 */
};

static void
host_connect(struct harness *h)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };

    memcpy(a.sun_path, h->path, sizeof(h->path));
    h->host = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(h->host >= 0);
    if (connect(h->host, (struct sockaddr *)&a, sizeof(a)) < 0) {
        /* The backlog is full of peers the device has not accepted yet
         * (it takes one host client at a time): a valid state. */
        FUZZ_CHECK_EQ(errno, EAGAIN);
        close(h->host);
        h->host = -1;
        return;
    }
    /* the device accepts on its loop */
    umdev_loop_run_once(h->loop, 0);
}

static void
host_tx(struct harness *h, struct fuzz_in *in)
{
    uint8_t buf[256];
    size_t n = fuzz_u8(in), i;

    for (i = 0; i < n; i++)
        buf[i] = fuzz_u8(in);
    if (h->host >= 0 && n > 0)
        /* a full socket drops the rest, as a real peer would wait */
        (void)!send(h->host, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    umdev_loop_run_once(h->loop, 0);
}

static void
host_rx(struct harness *h)
{
    uint8_t buf[4096];

    if (h->host < 0)
        return;
    umdev_loop_run_once(h->loop, 0);
    while (recv(h->host, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

static void
host_cycle(struct harness *h)
{
    if (h->host >= 0) {
        close(h->host);
        h->host = -1;
        umdev_loop_run_once(h->loop, 0);
    } else {
        host_connect(h);
    }
}

static void
sock_read_scr(struct harness *h)
{
    uint8_t v;

    FUZZ_CHECK_EQ(
        fuzz_region_read(&h->b.c, UMDEV_PCI_BAR0_REGION, UART_SCR, &v, 1), 0);
}

static void
dma_map(struct harness *h, uint8_t v)
{
    uint32_t flags = VFIO_USER_DMA_MAP_FLAG_READ |
                     ((v & 1) ? 0 : VFIO_USER_DMA_MAP_FLAG_WRITE);

    fuzz_dma_map_guarded(&h->b.c, h->b.g.fd, FUZZ_PAGE, GUEST_IOVA,
                         GUEST_PAGES * FUZZ_PAGE, flags);
}

/* Both ports still answer a side-effect-free read, after every op. */
static void
check(void *arg)
{
    struct harness *h = arg;
    uint8_t v;

    fuzz_bar_check(&h->b);
    FUZZ_CHECK_EQ(umdev_dev_region_rw(h->dev, UMDEV_PCI_BAR0_REGION, UART_SCR,
                                      &v, 1, false),
                  0);
    FUZZ_CHECK_EQ(umdev_dev_region_rw(h->dev, UMDEV_PCI_BAR1_REGION, UART_SCR,
                                      &v, 1, false),
                  0);
}

static void
serial_op(void *arg, unsigned int op, struct fuzz_in *in)
{
    struct harness *h = arg;
    uint8_t v;

    switch (op) {
    case OP_HOST_TX:
        host_tx(h, in);
        break;
    case OP_HOST_RX:
        host_rx(h);
        break;
    case OP_HOST_CYCLE:
        host_cycle(h);
        break;
    case OP_LOOP:
        umdev_loop_run_once(h->loop, fuzz_u8(in) % 3);
        break;
    case OP_RESET:
        FUZZ_CHECK_EQ(fuzz_reset(&h->b.c), 0);
        break;
    case OP_IRQS:
        v = fuzz_u8(in);
        fuzz_set_irqs(&h->b.c, VFIO_PCI_INTX_IRQ_INDEX, 0, 1,
                      (v & 1) ? -1 : h->b.efd);
        break;
    case OP_MAP:
        dma_map(h, fuzz_u8(in));
        break;
    case OP_SOCK_RD:
        sock_read_scr(h);
        break;
    }
}

/* The card, its loop and port 0's host-end socket, made on first use and
 * kept for the process; power-cycled after every input. */
static struct umdev_loop *loop;
static struct serial *card;
static struct fuzz_bar bar; /* guest memory, eventfd: the process's */
static char dir[64];        /* holds port 0's socket */
static char path[108];

static void
card_create(struct umdev_loop **l, struct serial **s, const char *sock)
{
    struct serial_config cfg = { .name = "fuzz" };

    cfg.port[0].path = sock;
    FUZZ_CHECK_EQ(umdev_loop_create(l), 0);
    FUZZ_CHECK_EQ(serial_create(*l, &cfg, &fuzz_log.logger, s), 0);
}

/* At exit, so that teardown runs under the sanitizers (and LSan) too. */
static void
card_free(void)
{
    serial_destroy(card);
    umdev_loop_destroy(loop);
    card = NULL;
    loop = NULL;
    fuzz_bar_close(&bar);
    rmdir(dir);
}

static void
card_get(void)
{
    if (card != NULL)
        return;
    kit_log_init(&fuzz_log, "device", "UMDEV_FUZZ_VERBOSE");
    snprintf(dir, sizeof(dir), "%s/umdev-fuzz-serial.XXXXXX",
             getenv("TMPDIR") != NULL && strlen(getenv("TMPDIR")) < 30
                 ? getenv("TMPDIR")
                 : "/tmp");
    FUZZ_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/port0.sock", dir);
    fuzz_bar_open(&bar, GUEST_PAGES);
    card_create(&loop, &card, path);
    atexit(card_free);
}

/* FUZZ_SELFCHECK: what a host client connecting to @sock on @l gets at
 * once. */
static ssize_t
host_pending(struct umdev_loop *l, const char *sock)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    uint8_t buf[4096];
    ssize_t n, total = 0;
    int fd;

    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    umdev_loop_run_once(l, 0); /* accept */
    umdev_loop_run_once(l, 0); /* flush */
    while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        total += n;
    close(fd);
    umdev_loop_run_once(l, 0); /* hang-up */
    return total;
}

/* FUZZ_SELFCHECK: the power-cycled card against a new one. */
static void
selfcheck(void)
{
    static const struct fuzz_cmp_region r[2] = {
        { UMDEV_PCI_BAR0_REGION, SERIAL_BAR_SIZE, 1 },
        { UMDEV_PCI_BAR1_REGION, SERIAL_BAR_SIZE, 1 },
    };
    char sock[128];
    struct umdev_loop *l;
    struct serial *s;

    snprintf(sock, sizeof(sock), "%s/check.sock", dir);
    card_create(&l, &s, sock);
    fuzz_dev_compare("serial_bar", serial_dev(card), serial_dev(s), r, 2);
    /* What neither register shows: bytes waiting for a host client. */
    FUZZ_CHECK_EQ(host_pending(loop, path), host_pending(l, sock));
    serial_destroy(s);
    umdev_loop_destroy(l);
}

/* The rest of the power cycle, after the client reset the card and left:
 * our host client goes, and what a reset keeps (serial_power_cycle()). */
static void
power_cycle(struct harness *h)
{
    if (h->host >= 0)
        close(h->host);
    h->host = -1;
    serial_power_cycle(card);
    if (fuzz_selfcheck()) {
        selfcheck();
        /* The check's reads had effects (IIR, LSR, MSR): cycle again. */
        FUZZ_CHECK_EQ(fuzz_client_reset_detached(serial_dev(card)), 0);
        serial_power_cycle(card);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct fuzz_region regions[3] = {
        { UMDEV_PCI_BAR0_REGION, SERIAL_BAR_SIZE },
        { UMDEV_PCI_BAR1_REGION, SERIAL_BAR_SIZE },
        { UMDEV_PCI_CONFIG_REGION, 256 },
    };
    struct fuzz_in in = { data, size };
    struct harness h = { .host = -1 };

    if (size < 1)
        return 0;
    card_get();
    h.loop = loop;
    h.s = card;
    h.dev = serial_dev(card);
    h.b = bar; /* the process's guest memory and eventfd */
    memcpy(h.path, path, sizeof(h.path));
    fuzz_bar_begin(&h.b, h.dev, serial_pci(card));
    host_connect(&h);

    fuzz_bar_play(&in, OP_COUNT, h.dev, regions, serial_op, check, &h);

    umdev_loop_run_once(h.loop, 0);
    sock_read_scr(&h);
    fuzz_bar_end(&h.b);
    power_cycle(&h);
    fuzz_bar_check_fds(&h.b);
    return 0;
}
