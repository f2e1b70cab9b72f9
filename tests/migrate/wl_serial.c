/*
 * The serial card's workload for umdev-vmm: one port (0, or
 * --serial-port's) driven by interrupt
 * as Linux's 8250 driver does (IER, IIR, LSR, INTx unmasked after each
 * handling), a seeded byte stream each way between the guest and a host
 * peer on the port's host end (a UNIX socket), every byte checked in
 * order, so a byte lost or doubled anywhere fails the run.
 *
 * The move, on the host side. The peer pauses with the vCPUs (sends
 * nothing); once the source is stopped it finds out how many of the
 * bytes it sent the source never took, and after the switch sends them
 * again, to the destination's host end. It reads the source's host end
 * until EOF (what the source had transmitted before it stopped comes out
 * as the source ends), then the destination's.
 *
 * How many bytes the source did not take: a UNIX stream socket charges
 * each unread message to its sender, and SIOCOUTQ returns that charge,
 * in bytes of kernel memory, not of data. The peer sends one byte per
 * message, so each unread byte costs the same; the cost of one is
 * measured on a socket pair at start, and a charge that is not a
 * multiple of it fails the run rather than guessing.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/sockios.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "uart_driver.h"
#include "umdev/pci.h"
#include "vmm.h"

#define UNIT_BYTES 64u /* bytes each side adds to its stream per unit */
#define WINDOW 256u    /* host bytes the guest has not read, at most */
#define FIFO 16u
#define HANDLER_PASSES 64u

struct ser_wl {
    int efd;
    uint8_t ier;
    /* Host -> guest: sent by the peer, read by the guest. */
    uint64_t h_sent, h_read;
    /* Guest -> host: allowed so far, written to THR, read by the peer. */
    uint64_t g_budget, g_sent, g_read;
    bool draining;     /* finish: the streams grow no more */
    int src, dst;      /* the peer's sockets; src -1 once it ended */
    int msg_cost;      /* SIOCOUTQ charge of one unread one-byte message */
    uint64_t untaken;  /* sent to the source, never taken by it */
    uint64_t resent;   /* ... so sent again to the destination */
    uint64_t src_tail; /* read from the source after the switch */
    uint64_t irqs, lsr_errors;
};

static uint8_t
stream_byte(uint64_t seed, unsigned int dir, uint64_t i)
{
    struct vmm_rng r;

    vmm_rng_init(&r, seed * 2 + dir, i / 8);
    return (uint8_t)(vmm_rng_next(&r) >> (8 * (i % 8)));
}

static int
reg_rd(void *opaque, unsigned int reg, uint8_t *val)
{
    struct vmm *v = opaque;

    return vmm_rd(v, UMDEV_PCI_BAR0_REGION + v->serial_port, reg, val, 1);
}

static int
reg_wr(void *opaque, unsigned int reg, uint8_t val)
{
    struct vmm *v = opaque;

    return vmm_wr(v, UMDEV_PCI_BAR0_REGION + v->serial_port, reg, &val, 1);
}

static uint8_t
rd(struct vmm *v, unsigned int reg)
{
    uint8_t val = 0xff;

    reg_rd(v, reg, &val);
    return val;
}

/* A connected, non-blocking socket to the host end at @path. */
static int
peer_connect(struct vmm *v, const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int fd;

    if (path == NULL || strlen(path) >= sizeof(a.sun_path))
        return vmm_fail(v, "the serial workload needs --host-src and "
                           "--host-dst");
    strcpy(a.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        vmm_fail(v, "host end %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Blocking connect, then non-blocking I/O: the peer never waits on
     * the port, it comes back next unit. */
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        close(fd);
        return vmm_fail(v, "fcntl: %s", strerror(errno));
    }
    return fd;
}

static int
outq(int fd)
{
    int n = -1;

    return ioctl(fd, SIOCOUTQ, &n) < 0 ? -errno : n;
}

/* The charge of one unread one-byte message (see the file comment). */
static int
measure_msg_cost(struct vmm *v)
{
    struct ser_wl *w = v->wl_priv;
    int sv[2], a, b;
    char c = 0;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return vmm_fail(v, "socketpair: %s", strerror(errno));
    a = send(sv[0], &c, 1, 0) == 1 ? outq(sv[0]) : -1;
    b = send(sv[0], &c, 1, 0) == 1 ? outq(sv[0]) : -1;
    close(sv[0]);
    close(sv[1]);
    if (a <= 0 || b != 2 * a)
        return vmm_fail(v,
                        "SIOCOUTQ does not count unread messages here "
                        "(%d, %d)",
                        a, b);
    w->msg_cost = a;
    return 0;
}

/* The peer's share of a unit: send, then read what came. */
static int
peer_io(struct vmm *v, uint64_t add)
{
    struct ser_wl *w = v->wl_priv;
    int fd = w->src >= 0 ? w->src : w->dst;
    int out = v->migrated ? w->dst : w->src;
    uint8_t buf[4096];
    uint64_t goal = w->h_sent + add;
    ssize_t n, i;

    while (w->h_sent < goal && w->h_sent - w->h_read < WINDOW) {
        uint8_t c = stream_byte(v->seed, 0, w->h_sent);

        n = send(out, &c, 1, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n != 1)
            return vmm_fail(v, "host end: send: %s", strerror(errno));
        w->h_sent++;
    }
    while (fd >= 0) {
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n < 0)
            return vmm_fail(v, "host end: recv: %s", strerror(errno));
        if (n == 0) {
            if (fd == w->dst)
                return vmm_fail(v, "the destination's host end closed");
            if (!v->migrated)
                return vmm_fail(v, "the source's host end closed before "
                                   "the move");
            close(w->src);
            w->src = -1;
            fd = w->dst;
            continue;
        }
        for (i = 0; i < n; i++, w->g_read++) {
            uint8_t want = stream_byte(v->seed, 1, w->g_read);

            if (w->g_read >= w->g_sent)
                return vmm_fail(v,
                                "host end: byte %" PRIu64 " (0x%02x) "
                                "arrived, the guest sent %" PRIu64,
                                w->g_read, buf[i], w->g_sent);
            if (buf[i] != want)
                return vmm_fail(v,
                                "host end: guest byte %" PRIu64
                                " is 0x%02x, expected 0x%02x",
                                w->g_read, buf[i], want);
        }
        if (fd == w->src && v->migrated)
            w->src_tail += (uint64_t)n;
    }
    return 0;
}

static int
set_ier(struct vmm *v, uint8_t ier)
{
    struct ser_wl *w = v->wl_priv;

    if (ier == w->ier)
        return 0;
    w->ier = ier;
    return reg_wr(v, UART_IER, ier);
}

/* The interrupt handler, after serial8250_handle_irq(). */
static int
guest_irq(struct vmm *v)
{
    struct ser_wl *w = v->wl_priv;
    unsigned int pass, i;
    uint8_t iir, lsr, c;
    int rc;

    for (pass = 0; pass < HANDLER_PASSES; pass++) {
        iir = rd(v, UART_IIR);
        if (v->errors)
            return -1;
        if (iir & UART_IIR_NO_INT)
            break;
        switch (iir & UART_IIR_ID) {
        case UART_IIR_RLSI:
        case UART_IIR_RDI:
        case UART_IIR_RX_TIMEOUT:
            while ((lsr = rd(v, UART_LSR)) & UART_LSR_DR) {
                if (lsr & UART_LSR_BRK_ERROR_BITS)
                    w->lsr_errors++;
                c = rd(v, UART_RX);
                if (v->errors)
                    return -1;
                if (w->h_read >= w->h_sent)
                    return vmm_fail(v,
                                    "guest: byte %" PRIu64 " (0x%02x) "
                                    "received, the host sent %" PRIu64,
                                    w->h_read, c, w->h_sent);
                if (c != stream_byte(v->seed, 0, w->h_read))
                    return vmm_fail(v,
                                    "guest: host byte %" PRIu64
                                    " is 0x%02x, expected 0x%02x",
                                    w->h_read, c,
                                    stream_byte(v->seed, 0, w->h_read));
                w->h_read++;
            }
            if (lsr & UART_LSR_BRK_ERROR_BITS)
                w->lsr_errors++;
            break;
        case UART_IIR_THRI:
            /* The FIFO is empty: up to 16 bytes, or stop asking. */
            for (i = 0; i < FIFO && w->g_sent < w->g_budget; i++) {
                rc = reg_wr(v, UART_TX, stream_byte(v->seed, 1, w->g_sent));
                if (rc < 0)
                    return -1;
                w->g_sent++;
            }
            if (i == 0 && set_ier(v, w->ier & ~UART_IER_THRI) < 0)
                return -1;
            break;
        case UART_IIR_MSI:
            rd(v, UART_MSR);
            break;
        default:
            return vmm_fail(v, "IIR 0x%02x", iir);
        }
    }
    if (w->lsr_errors)
        return vmm_fail(v, "guest: %" PRIu64 " line status error(s)",
                        w->lsr_errors);
    /* INTx is masked when it fires (vfio's automask): the VMM unmasks it
     * once the guest has handled it, as QEMU does on the EOI. */
    rc = umdev_client_set_irqs(
        v->c, VFIO_PCI_INTX_IRQ_INDEX,
        VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, 1, NULL, NULL);
    if (rc < 0)
        return vmm_fail(v, "INTx unmask: %s", strerror(-rc));
    return 0;
}

static int
ser_irqs(struct vmm *v, struct umdev_client *c)
{
    struct ser_wl *w = v->wl_priv;
    int rc = umdev_client_set_irqs(c, VFIO_PCI_INTX_IRQ_INDEX,
                                   VFIO_IRQ_SET_DATA_EVENTFD |
                                       VFIO_IRQ_SET_ACTION_TRIGGER,
                                   0, 1, &w->efd, NULL);

    if (rc < 0)
        return vmm_fail(v, "SET_IRQS INTx: %s", strerror(-rc));
    return 0;
}

static int
ser_open(struct vmm *v)
{
    struct ser_wl *w = calloc(1, sizeof(*w));
    struct uart_driver d = { reg_rd, reg_wr, v };
    uint16_t cmd = PCI_COMMAND_IO;
    uint8_t iir;

    if (w == NULL)
        return vmm_fail(v, "out of memory");
    v->wl_priv = w;
    w->src = w->dst = -1;
    w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->efd < 0)
        return vmm_fail(v, "eventfd: %s", strerror(errno));
    if (measure_msg_cost(v) < 0)
        return -1;
    if (vmm_wr(v, UMDEV_PCI_CONFIG_REGION, PCI_COMMAND, &cmd, 2) < 0 ||
        ser_irqs(v, v->c) < 0)
        return -1;
    /* 8N1, FIFOs on (trigger 14), DTR RTS OUT2, interrupts off; nothing
     * to drain, as no peer is connected yet. */
    if (uart_driver_setup(&d) < 0)
        return -1;
    iir = rd(v, UART_IIR);
    if ((iir & UART_IIR_FIFO_ENABLED) != UART_IIR_FIFO_ENABLED)
        return vmm_fail(v, "IIR 0x%02x: not a 16550A with FIFOs on", iir);
    w->src = peer_connect(v, v->host_src);
    if (w->src < 0)
        return -1;
    return set_ier(v, UART_IER_RDI | UART_IER_RLSI);
}

static int
ser_service(struct vmm *v, int timeout_ms)
{
    struct ser_wl *w = v->wl_priv;
    uint64_t n;

    /* Data to send and THRI off: turn it on (8250's start_tx); with the
     * FIFO empty that interrupts at once. */
    if (w->g_sent < w->g_budget && !(w->ier & UART_IER_THRI) &&
        set_ier(v, w->ier | UART_IER_THRI) < 0)
        return -1;
    n = vmm_efd_wait(w->efd, timeout_ms);
    if (n == 0)
        return 0;
    w->irqs += n;
    return guest_irq(v);
}

static int
ser_step(struct vmm *v, unsigned long unit)
{
    struct ser_wl *w = v->wl_priv;

    (void)unit;
    w->g_budget += UNIT_BYTES;
    /* The peer's bytes last: a pause after this unit finds them sent
     * and not all taken (the RX FIFO holds 16), so the move has bytes
     * in the source's socket to account for. */
    if (ser_service(v, 5) < 0)
        return -1;
    return peer_io(v, UNIT_BYTES);
}

/* The source is stopped: what it never took of the peer's bytes. */
static int
ser_attach(struct vmm *v)
{
    struct ser_wl *w = v->wl_priv;
    int q = outq(w->src);

    if (q < 0)
        return vmm_fail(v, "SIOCOUTQ: %s", strerror(-q));
    if (q % w->msg_cost)
        return vmm_fail(v,
                        "SIOCOUTQ %d is not a multiple of %d: cannot "
                        "tell what the source took",
                        q, w->msg_cost);
    w->untaken = (uint64_t)(q / w->msg_cost);
    if (w->untaken > w->h_sent - w->h_read)
        return vmm_fail(v,
                        "%" PRIu64 " bytes untaken, but only %" PRIu64
                        " unread by the guest",
                        w->untaken, w->h_sent - w->h_read);
    return 0;
}

static int
ser_switched(struct vmm *v)
{
    struct ser_wl *w = v->wl_priv;

    w->dst = peer_connect(v, v->host_dst);
    if (w->dst < 0)
        return -1;
    /* The bytes the source never took go again, to the destination. */
    w->h_sent -= w->untaken;
    w->resent = w->untaken;
    return 0;
}

static int
ser_finish(struct vmm *v)
{
    struct ser_wl *w = v->wl_priv;
    uint64_t t0 = vmm_now_us();
    uint8_t lsr;

    while (w->h_read < w->h_sent || w->g_read < w->g_budget ||
           (v->migrated && w->src >= 0)) {
        if (vmm_now_us() - t0 > 2 * VMM_TIMEOUT_MS * 1000ull)
            return vmm_fail(v,
                            "stalled: guest read %" PRIu64 " of %" PRIu64
                            " host bytes, host read %" PRIu64 " of %" PRIu64
                            " guest bytes (%" PRIu64 " written)%s",
                            w->h_read, w->h_sent, w->g_read, w->g_budget,
                            w->g_sent,
                            v->migrated && w->src >= 0
                                ? "; the source's host end never closed"
                                : "");
        if (peer_io(v, 0) < 0 || ser_service(v, 5) < 0)
            return -1;
    }
    /* Nothing more may come either way. */
    if (set_ier(v, 0) < 0)
        return -1;
    usleep(100 * 1000);
    if (peer_io(v, 0) < 0)
        return -1;
    lsr = rd(v, UART_LSR);
    if (lsr & UART_LSR_DR)
        return vmm_fail(v, "guest: a byte beyond the host's %" PRIu64,
                        w->h_sent);
    return 0;
}

static void
ser_summary(struct vmm *v, FILE *f)
{
    struct ser_wl *w = v->wl_priv;

    if (w == NULL)
        return;
    fprintf(f,
            ",\"host_to_guest\":%" PRIu64 ",\"guest_to_host\":%" PRIu64
            ",\"interrupts\":%" PRIu64 ",\"resent_untaken\":%" PRIu64
            ",\"source_tail\":%" PRIu64,
            w->h_read, w->g_read, w->irqs, w->resent, w->src_tail);
}

static void
ser_close(struct vmm *v)
{
    struct ser_wl *w = v->wl_priv;

    if (w == NULL)
        return;
    if (w->efd >= 0)
        close(w->efd);
    if (w->src >= 0)
        close(w->src);
    if (w->dst >= 0)
        close(w->dst);
    free(w);
    v->wl_priv = NULL;
}

const struct vmm_workload vmm_wl_serial = {
    .name = "serial",
    .open = ser_open,
    .irqs = ser_irqs,
    .step = ser_step,
    .attach = ser_attach,
    .switched = ser_switched,
    .finish = ser_finish,
    .summary = ser_summary,
    .close = ser_close,
};
