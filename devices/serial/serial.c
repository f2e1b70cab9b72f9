/*
 * The serial device glue: two 16550A models (uart.c) behind two 8-byte I/O
 * BARs of a lib/pci personality, their shared INTA line, one RX-timeout
 * loop timer per port, and each port's host end (a listening UNIX socket
 * serving one client at a time, or a pty) on the embedder's loop.
 *
 * Flow control, both directions, loses no byte:
 *  - host -> guest: the host fd is read only while the RX FIFO has room,
 *    and never more than that room; the rest waits in the kernel's socket
 *    or pty buffer.
 *  - guest -> host: bytes go to the model's bounded host-end buffer and
 *    are written out non-blockingly; while it is full the TX FIFO stays
 *    full and THRE clear, so the guest driver waits. Without a client the
 *    bytes are held for the next one.
 * After every guest access, host event and timer expiry, port_sync()
 * flushes, re-derives the fd interest and the timer from the model, and
 * recomputes the interrupt line.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "serial.h"
#include "uart.h"
#include "umdev/pci.h"
#include "umdev/profile.h"

/*
 * The mediation profile (docs/CRITERIA.md): each port's eight 1-byte
 * registers, nothing else. A 16550 moves data through its FIFO port, so
 * the data path is trapped by definition: a byte sent costs a THR write
 * and, per FIFO load, an LSR poll; a byte received an RBR read and an LSR
 * read. tests/conformance/profiles/serial-2port.json is the same contract
 * as the conformance kit reads it.
 */
#define B1 UMDEV_W(1)
#define RW UMDEV_PROFILE_RW

static const struct umdev_profile_reg serial_port_regs[] = {
    { "RBR_THR_DLL", UART_RX, 1, B1, RW, true, true,
      "receive/transmit FIFO port (divisor latch low with DLAB)" },
    { "IER_DLM", UART_IER, 1, B1, RW, false, false,
      "interrupt enables (divisor latch high with DLAB)" },
    { "IIR_FCR", UART_IIR, 1, B1, RW, false, true,
      "interrupt identification / FIFO control" },
    { "LCR", UART_LCR, 1, B1, RW, false, false, "line control" },
    { "MCR", UART_MCR, 1, B1, RW, false, false, "modem control" },
    { "LSR", UART_LSR, 1, B1, RW, true, true,
      "line status, polled per byte (writes ignored)" },
    { "MSR", UART_MSR, 1, B1, RW, false, true,
      "modem status, follows the host end (writes ignored)" },
    { "SCR", UART_SCR, 1, B1, RW, false, false, "scratch" },
};

#define NREGS (sizeof(serial_port_regs) / sizeof(serial_port_regs[0]))

static const struct umdev_profile_region serial_profile_regions[] = {
    { UMDEV_PCI_BAR0_REGION, serial_port_regs, NREGS },
    { UMDEV_PCI_BAR1_REGION, serial_port_regs, NREGS },
};

static const struct umdev_profile serial_profile = {
    .type = "serial-2port",
    .regions = serial_profile_regions,
    .nregions = SERIAL_NR_PORTS,
    .data_path = UMDEV_PROFILE_DP_PIO,
    .max_msgs_per_io = 2,
    .data_path_unit = "byte",
    .data_path_note = "a 16550 moves every byte through its FIFO port "
                      "register, as the guest's unmodified 8250 driver "
                      "expects",
};

/* Modem inputs while a host end is present: a null-modem peer that keeps
 * its DTR and RTS up (our DSR, DCD and CTS). */
#define HOST_PRESENT_LINES (UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD)

struct serial_port {
    struct serial *s;
    unsigned int index;
    struct uart uart;
    bool is_pty;
    bool owner_creates; /* serial_port_config.owner_creates */
    char *path;         /* socket or symlink we created; unlinked at the end */
    char *pty_name;     /* slave device name */
    int listen_fd;      /* -1 if none */
    bool listening;     /* listen_fd is on the loop */
    int host_fd;        /* the connected client or the pty master; -1 */
    bool host_watched;
    uint32_t host_events;
    bool rx_eof;      /* the peer sends no more */
    bool out_closed;  /* the peer reads no more */
    int pty_slave_fd; /* held open so the master never hangs up */
    int64_t timer;    /* the RX timeout's loop timer, 0 if none */
    /* Bytes from the host end the UART has not received yet: drained
     * from the host fd at a migration save (its connection does not move
     * with the device) or loaded from one. They go to the receiver
     * before anything read from the host fd, as its room allows. */
    uint8_t *in;
    size_t in_head, in_count, in_cap;
    bool relisten; /* stopped while listening: listen again on resume */
    /* Built to take a handover: the host end to expect (a socket, a
     * pty, none) and its path, ours once the handover brings it. */
    bool adopt;
    bool adopt_pty;
    char *adopt_path;
};

struct serial {
    char *name;
    struct umdev_loop *loop;
    const struct umdev_logger *log;
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    bool irq_level;
    /* Migration STOP (or a saving or resuming state): nothing moves,
     * no interrupt changes, BAR accesses are refused. */
    bool stopped;
    bool set_owner; /* serial_config's: who the host ends belong to */
    bool restoring; /* serial_config's */
    uid_t uid;
    gid_t gid;
    struct serial_port port[SERIAL_NR_PORTS];
};

static void on_listen(struct umdev_loop *loop, int fd, uint32_t events,
                      void *opaque);

/* The INTA line: either UART's (OUT2-gated) interrupt output. */
static void
serial_update_irq(struct serial *s)
{
    bool level = false;
    unsigned int i;

    if (s->stopped)
        return; /* resume() drives the line */
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        level = level || uart_irq_level(&s->port[i].uart);
    if (level == s->irq_level)
        return;
    s->irq_level = level;
    umdev_pci_intx_set(s->pci, level);
}

/* Write what the host end takes now, without blocking. */
static void
host_flush(struct serial_port *p)
{
    const uint8_t *buf;
    size_t len;
    ssize_t n;

    while (p->host_fd >= 0 && !p->out_closed &&
           (len = uart_tx_peek(&p->uart, &buf)) > 0) {
        if (p->is_pty)
            n = write(p->host_fd, buf, len);
        else
            n = send(p->host_fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            uart_tx_consume(&p->uart, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* EPIPE, ECONNRESET, ...: the peer reads no more. The bytes
         * stay for the next client. */
        p->out_closed = true;
    }
}

/* Hand the receiver what it takes of the bytes held in p->in. */
static void
host_in_feed(struct serial_port *p)
{
    while (p->in_count > 0 && uart_rx_room(&p->uart) > 0) {
        uart_rx_push(&p->uart, p->in[p->in_head]);
        p->in_head++;
        p->in_count--;
    }
    if (p->in_count == 0)
        p->in_head = 0;
}

/* Read at most what the RX FIFO takes; the rest stays in the kernel. */
static void
host_read(struct serial_port *p)
{
    uint8_t buf[UART_FIFO_SIZE];
    size_t room;
    ssize_t n, i;

    /* Held bytes came first: the fd waits until they are in. */
    host_in_feed(p);
    room = uart_rx_room(&p->uart);
    if (p->host_fd < 0 || p->rx_eof || room == 0 || p->in_count > 0)
        return;
    if (room > sizeof(buf))
        room = sizeof(buf);
    n = read(p->host_fd, buf, room);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (n < 0 && !p->is_pty)
            p->out_closed = true; /* a socket error ends both ways */
        p->rx_eof = true;
        return;
    }
    for (i = 0; i < n; i++)
        uart_rx_push(&p->uart, buf[i]); /* cannot fail: n <= room */
}

static void
host_unwatch(struct serial_port *p)
{
    if (p->host_watched)
        umdev_loop_del(p->s->loop, p->host_fd);
    p->host_watched = false;
}

static void on_host(struct umdev_loop *loop, int fd, uint32_t events,
                    void *opaque);

/* Watch the host fd for what the model can use now. With nothing to
 * wait for it stays watched with no events so a hang-up is still seen,
 * unless the peer is known gone. */
static void
host_watch(struct serial_port *p)
{
    uint32_t ev = 0;
    int rc;

    if (p->host_fd < 0)
        return;
    if (!p->rx_eof && uart_rx_room(&p->uart) > 0 && p->in_count == 0)
        ev |= UMDEV_LOOP_IN;
    if (!p->out_closed && uart_tx_pending(&p->uart) > 0)
        ev |= UMDEV_LOOP_OUT;
    if (ev == 0 && p->out_closed) {
        host_unwatch(p);
        return;
    }
    if (p->host_watched && ev == p->host_events)
        return;
    if (p->host_watched)
        rc = umdev_loop_mod(p->s->loop, p->host_fd, ev);
    else
        rc = umdev_loop_add(p->s->loop, p->host_fd, ev, on_host, p);
    if (rc < 0) {
        umdev_log(p->s->log, LOG_ERR, "%s: port%u: cannot watch host end: %s",
                  p->s->name, p->index, strerror(-rc));
        return;
    }
    p->host_watched = true;
    p->host_events = ev;
}

static void
host_attach(struct serial_port *p, int fd)
{
    p->host_fd = fd;
    p->rx_eof = false;
    p->out_closed = false;
    p->host_watched = false;
    uart_set_modem_inputs(&p->uart, HOST_PRESENT_LINES);
}

/* The client left: close it, drop the modem lines, listen again. */
static void
host_detach(struct serial_port *p)
{
    int rc;

    host_unwatch(p);
    close(p->host_fd);
    p->host_fd = -1;
    uart_set_modem_inputs(&p->uart, 0);
    umdev_log(p->s->log, LOG_INFO,
              "%s: port%u: host client left (%zu bytes held for the next)",
              p->s->name, p->index, uart_tx_pending(&p->uart));
    if (p->listen_fd >= 0 && !p->listening) {
        rc = umdev_loop_add(p->s->loop, p->listen_fd, UMDEV_LOOP_IN, on_listen,
                            p);
        if (rc < 0)
            umdev_log(p->s->log, LOG_ERR, "%s: port%u: cannot listen again: %s",
                      p->s->name, p->index, strerror(-rc));
        else
            p->listening = true;
    }
}

static void on_timer(struct umdev_loop *loop, void *opaque);

static void
timer_sync(struct serial_port *p)
{
    uint64_t ns = 0;

    switch (uart_rx_timer(&p->uart, &ns)) {
    case UART_TIMER_KEEP:
        return;
    case UART_TIMER_START:
        /* Re-arming drops the old timer, so a stale expiry never runs;
         * the loop counts in milliseconds, and a character timeout may
         * end later than the line rate says, never earlier. */
        umdev_loop_timer_cancel(p->s->loop, p->timer);
        p->timer = umdev_loop_timer_add(p->s->loop, (ns + 999999u) / 1000000u,
                                        on_timer, p);
        if (p->timer < 0) {
            umdev_log(p->s->log, LOG_ERR,
                      "%s: port%u: cannot arm the RX timeout: %s", p->s->name,
                      p->index, strerror((int)-p->timer));
            p->timer = 0;
        }
        return;
    case UART_TIMER_STOP:
        umdev_loop_timer_cancel(p->s->loop, p->timer);
        p->timer = 0;
        return;
    }
}

/* After any change: move bytes, re-derive fd interest, timer and IRQ. */
static void
port_sync(struct serial_port *p)
{
    if (p->s->stopped)
        return; /* resume() syncs */
    host_in_feed(p);
    host_flush(p);
    if (p->host_fd >= 0 && p->rx_eof && p->out_closed)
        host_detach(p);
    host_watch(p);
    timer_sync(p);
    serial_update_irq(p->s);
}

static void
on_host(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct serial_port *p = opaque;

    (void)loop;
    (void)fd;
    if (events & (UMDEV_LOOP_HUP | UMDEV_LOOP_ERR))
        p->out_closed = true; /* unread input is still read below/later */
    if (events & (UMDEV_LOOP_IN | UMDEV_LOOP_HUP | UMDEV_LOOP_ERR))
        host_read(p);
    port_sync(p);
}

/* The host client closed its end; its last bytes may still be read. */
static bool
host_hung_up(const struct serial_port *p)
{
    struct pollfd pfd = { .fd = p->host_fd, .events = POLLRDHUP };

    return p->rx_eof || p->out_closed ||
           (poll(&pfd, 1, 0) == 1 &&
            (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0);
}

/*
 * One host client at a time. Another that connects meanwhile is closed at
 * once, the log saying who holds the port, rather than left connected and
 * unanswered in the backlog. Only when the current one has hung up does
 * the next wait, to be accepted once its last bytes are in (host_detach()
 * listens again).
 */
static void
on_listen(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct serial_port *p = opaque;
    int cfd;

    (void)events;
    if (p->host_fd >= 0 && host_hung_up(p)) {
        umdev_loop_del(loop, fd);
        p->listening = false;
        return;
    }
    cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    if (p->host_fd >= 0) {
        umdev_log(p->s->log, LOG_WARNING,
                  "%s: port%u: refusing a second host client (pid %d): "
                  "in use by pid %d",
                  p->s->name, p->index, (int)umdev_peer_pid(cfd),
                  (int)umdev_peer_pid(p->host_fd));
        close(cfd);
        return;
    }
    host_attach(p, cfd);
    umdev_log(p->s->log, LOG_INFO, "%s: port%u: host client connected",
              p->s->name, p->index);
    port_sync(p);
}

static void
on_timer(struct umdev_loop *loop, void *opaque)
{
    struct serial_port *p = opaque;

    (void)loop;
    p->timer = 0;
    uart_timer_expired(&p->uart);
    port_sync(p);
}

static ssize_t
bar_access(void *opaque, uint64_t offset, void *buf, size_t count,
           bool is_write)
{
    struct serial_port *p = opaque;
    int rc;

    /* A stopped device changes no state (<linux/vfio.h>, "RUNNING_P2P ->
     * STOP"), and nearly every register access would: reading RBR pops
     * the FIFO, reading LSR, IIR or MSR clears latches. */
    if (p->s->stopped) {
        umdev_log(p->s->log, LOG_DEBUG,
                  "%s: port%u: %s at %#llx refused: device stopped for "
                  "migration",
                  p->s->name, p->index, is_write ? "write" : "read",
                  (unsigned long long)offset);
        return -EBUSY;
    }
    rc = uart_access(&p->uart, offset, buf, count, is_write);
    if (rc < 0) {
        umdev_log(p->s->log, LOG_DEBUG,
                  "%s: port%u: %zu-byte %s at %#llx refused", p->s->name,
                  p->index, count, is_write ? "write" : "read",
                  (unsigned long long)offset);
        return rc;
    }
    port_sync(p);
    return (ssize_t)count;
}

static int
serial_reset(void *opaque)
{
    struct serial *s = opaque;
    unsigned int i;

    for (i = 0; i < SERIAL_NR_PORTS; i++)
        uart_reset(&s->port[i].uart);
    umdev_pci_reset(s->pci); /* drops INTx too */
    s->irq_level = false;
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        port_sync(&s->port[i]);
    return 0;
}

/*
 * Migration. The state (format SERIAL_MIG_VERSION, README.md "Migration"):
 * a uint32_t length and that many bytes of lib/pci's state, then per port
 * the UART's state (uart_state_save(): registers, latches, FIFOs, the
 * bytes held for the host end) and a uint32_t count with that many bytes
 * from the host end the UART had not received. Integers little-endian.
 */
static void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* What both ends must agree on for the state to fit: ports, FIFO and BAR
 * sizes, each port's host-end buffer. The host ends' kinds and paths are
 * the host's business: the guest sees the same card either way. */
static int
serial_mig_config(void *opaque, struct umdev_mig_buf *out)
{
    struct serial *s = opaque;
    uint8_t cfg[4 * (3 + SERIAL_NR_PORTS)];
    unsigned int i;

    put_le32(cfg, SERIAL_NR_PORTS);
    put_le32(cfg + 4, UART_FIFO_SIZE);
    put_le32(cfg + 8, SERIAL_BAR_SIZE);
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        put_le32(cfg + 12 + 4 * i, (uint32_t)s->port[i].uart.out_limit);
    return umdev_mig_buf_put(out, cfg, sizeof(cfg));
}

static int
serial_mig_stop(void *opaque)
{
    struct serial *s = opaque;
    unsigned int i;

    /* Nothing may reach the UARTs now: no host fd, no new client (its
     * modem lines would change MSR; it waits in the backlog), no timer. */
    s->stopped = true;
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        struct serial_port *p = &s->port[i];

        host_unwatch(p);
        p->relisten = p->listening;
        if (p->listening)
            umdev_loop_del(s->loop, p->listen_fd);
        p->listening = false;
        umdev_loop_timer_cancel(s->loop, p->timer);
        p->timer = 0;
        uart_timer_cancelled(&p->uart);
    }
    return 0;
}

static void
serial_mig_resume(void *opaque)
{
    struct serial *s = opaque;
    bool level = false;
    unsigned int i;

    s->stopped = false;
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        struct serial_port *p = &s->port[i];

        if (p->relisten && p->listen_fd >= 0 &&
            umdev_loop_add(s->loop, p->listen_fd, UMDEV_LOOP_IN, on_listen,
                           p) == 0)
            p->listening = true;
        p->relisten = false;
        /* Held bytes move, the host fd is watched, the timer restarts. */
        port_sync(p);
    }
    /* The line as the UARTs say, whatever the cached level: after a load
     * it was never driven here (lib/pci took only its status bit). lib/dev
     * signals a line that rises, and one already high to each eventfd a
     * client sets and on each unmask. */
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        level = level || uart_irq_level(&s->port[i].uart);
    s->irq_level = level;
    umdev_pci_intx_set(s->pci, level);
}

/*
 * What the host peer sent and the UART has not received leaves with the
 * device: the connection ends here. Read it without blocking, at most
 * SERIAL_MIG_IN_MAX bytes held per port; a peer that keeps sending
 * past that loses the rest with its connection.
 */
static int
host_drain(struct serial_port *p)
{
    uint8_t *in;
    ssize_t n;

    if (p->host_fd < 0 || p->rx_eof)
        return 0;
    if (p->in_cap < SERIAL_MIG_IN_MAX) {
        in = realloc(p->in, SERIAL_MIG_IN_MAX);
        if (in == NULL)
            return -ENOMEM;
        p->in = in;
        p->in_cap = SERIAL_MIG_IN_MAX;
    }
    if (p->in_head != 0) {
        memmove(p->in, p->in + p->in_head, p->in_count);
        p->in_head = 0;
    }
    while (p->in_count < SERIAL_MIG_IN_MAX) {
        n = read(p->host_fd, p->in + p->in_count,
                 SERIAL_MIG_IN_MAX - p->in_count);
        if (n > 0) {
            p->in_count += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* End of file or error: the peer sends no more (as host_read()). */
        if (n < 0 && !p->is_pty)
            p->out_closed = true;
        p->rx_eof = true;
        break;
    }
    if (p->in_count == SERIAL_MIG_IN_MAX)
        umdev_log(p->s->log, LOG_WARNING,
                  "%s: port%u: host end still sending after %u bytes "
                  "drained for migration; the rest stays behind",
                  p->s->name, p->index, SERIAL_MIG_IN_MAX);
    return 0;
}

static int
serial_mig_save(void *opaque, struct umdev_mig_buf *out)
{
    struct serial *s = opaque;
    uint32_t pci_len = (uint32_t)umdev_pci_state_size(s->pci);
    uint8_t *buf, le[4];
    size_t len;
    unsigned int i;
    int rc;

    /* In a handover the connections go along, the bytes with them. */
    for (i = 0; !umdev_dev_saving_handover(s->dev) && i < SERIAL_NR_PORTS;
         i++) {
        rc = host_drain(&s->port[i]);
        if (rc < 0)
            return rc;
    }
    len = pci_len;
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        if (uart_state_size(&s->port[i].uart) > len)
            len = uart_state_size(&s->port[i].uart);
    buf = malloc(len);
    if (buf == NULL)
        return -ENOMEM;
    rc = umdev_pci_state_save(s->pci, buf, pci_len);
    put_le32(le, pci_len);
    if (rc == 0)
        rc = umdev_mig_buf_put(out, le, sizeof(le));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, buf, pci_len);
    for (i = 0; rc == 0 && i < SERIAL_NR_PORTS; i++) {
        struct serial_port *p = &s->port[i];

        uart_state_save(&p->uart, buf);
        rc = umdev_mig_buf_put(out, buf, uart_state_size(&p->uart));
        put_le32(le, (uint32_t)p->in_count);
        if (rc == 0)
            rc = umdev_mig_buf_put(out, le, sizeof(le));
        if (rc == 0 && p->in_count > 0)
            rc = umdev_mig_buf_put(out, p->in + p->in_head, p->in_count);
    }
    free(buf);
    return rc;
}

/*
 * Check the whole state before taking any of it; on refusal log why and
 * leave the device as it was. A load replaces the UARTs' state whole,
 * held bytes included (README.md "Migration").
 */
static int
serial_mig_load(void *opaque, uint32_t version, const void *early,
                size_t early_len, const void *state, size_t len)
{
    struct serial *s = opaque;
    const uint8_t *b = state, *pci_state, *ust[SERIAL_NR_PORTS],
                  *in[SERIAL_NR_PORTS];
    uint32_t pci_len, in_len[SERIAL_NR_PORTS];
    uint8_t *newin[SERIAL_NR_PORTS] = { NULL };
    size_t off;
    char err[160] = "";
    unsigned int i;
    long n;
    int rc = -EINVAL;

    if (version != SERIAL_MIG_VERSION) {
        snprintf(err, sizeof(err), "state version %u unknown", version);
        goto refuse;
    }
    if (early_len != 0 || early != NULL) {
        snprintf(err, sizeof(err), "a pre-copy section (serial sends none)");
        goto refuse;
    }
    if (len < 4) {
        snprintf(err, sizeof(err), "truncated: %zu bytes", len);
        goto refuse;
    }
    pci_len = get_le32(b);
    off = 4;
    if (len - off < pci_len) {
        snprintf(err, sizeof(err),
                 "truncated: config space state of %u bytes, %zu there",
                 pci_len, len - off);
        goto refuse;
    }
    pci_state = b + off;
    off += pci_len;
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        char why[120];

        n = uart_state_check(&s->port[i].uart, b + off, len - off, why,
                             sizeof(why));
        if (n < 0) {
            snprintf(err, sizeof(err), "port%u: %s", i, why);
            goto refuse;
        }
        ust[i] = b + off;
        off += (size_t)n;
        if (len - off < 4) {
            snprintf(err, sizeof(err), "port%u: truncated, no host count", i);
            goto refuse;
        }
        in_len[i] = get_le32(b + off);
        off += 4;
        if (in_len[i] > SERIAL_MIG_IN_MAX || len - off < in_len[i]) {
            snprintf(err, sizeof(err),
                     "port%u: %u host bytes (at most %u, %zu there)", i,
                     in_len[i], SERIAL_MIG_IN_MAX, len - off);
            goto refuse;
        }
        in[i] = b + off;
        off += in_len[i];
    }
    if (off != len) {
        snprintf(err, sizeof(err), "%zu bytes after the last port", len - off);
        goto refuse;
    }
    /* Allocations before the first change, so none can fail halfway. */
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        if (in_len[i] == 0)
            continue;
        newin[i] = malloc(SERIAL_MIG_IN_MAX);
        if (newin[i] == NULL) {
            rc = -ENOMEM;
            snprintf(err, sizeof(err), "out of memory");
            goto refuse;
        }
        memcpy(newin[i], in[i], in_len[i]);
    }
    /* Last of the checks and first of the changes: lib/pci checks its
     * whole blob before taking any of it. */
    rc = umdev_pci_state_load(s->pci, pci_state, pci_len, err, sizeof(err));
    if (rc < 0)
        goto refuse;
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        struct serial_port *p = &s->port[i];

        free(p->in);
        p->in = newin[i];
        p->in_head = 0;
        p->in_count = in_len[i];
        p->in_cap = newin[i] != NULL ? SERIAL_MIG_IN_MAX : 0;
        uart_state_load(&p->uart, ust[i]);
    }
    return 0;
refuse:
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        free(newin[i]);
    umdev_log(s->log, LOG_ERR, "%s: migrated state refused: %s", s->name, err);
    return rc;
}

static const struct umdev_mig_ops serial_mig = {
    .type = "serial",
    .version = SERIAL_MIG_VERSION,
    .config = serial_mig_config,
    .stop = serial_mig_stop,
    .resume = serial_mig_resume,
    .save = serial_mig_save,
    .load = serial_mig_load,
};

static const struct umdev_dev_ops serial_ops = {
    .reset = serial_reset,
    .mig = &serial_mig,
};

/*
 * Handover (README.md "Handover"): each port's host end goes to the next
 * process as it is, the listening socket (with the peers waiting in its
 * backlog), the connected peer (with the bytes in its socket either
 * way) or the pty master, tagged with the port's index. What the UART
 * holds, and what the save drained from the peer, is in the migration
 * state, which loads after the host ends are back: the modem lines then
 * stay as they were.
 */
static int
serial_hend_save(void *opaque, struct umdev_host_end *out, size_t max)
{
    struct serial *s = opaque;
    size_t n = 0;

    for (unsigned int i = 0; i < SERIAL_NR_PORTS; i++) {
        const struct serial_port *p = &s->port[i];

        if (n + 2 > max)
            return -E2BIG;
        if (p->listen_fd >= 0)
            out[n++] = (struct umdev_host_end){ .kind = UMDEV_HOST_END_LISTENER,
                                                .tag = i,
                                                .fd = p->listen_fd };
        if (p->host_fd >= 0)
            out[n++] = (struct umdev_host_end){
                .kind = p->is_pty ? UMDEV_HOST_END_PTY : UMDEV_HOST_END_STREAM,
                .tag = i,
                .fd = p->host_fd
            };
    }
    return (int)n;
}

/* What a port needs besides the descriptors, made before any is taken
 * so that a refusal leaves the card without host ends. */
struct hend_port {
    int listen, stream, pty; /* indexes into the ends, -1: none */
    int slave;
    char *pty_name;
    char *path;
};

static int
hend_refuse(struct serial *s, unsigned int port, const char *why)
{
    umdev_log(s->log, LOG_ERR, "%s: port%u: handed-over host end refused: %s",
              s->name, port, why);
    return -EINVAL;
}

static int
hend_prepare(struct serial_port *p, struct umdev_host_end *ends,
             struct hend_port *h)
{
    char name[128];
    int rc;

    if (!p->adopt && (h->listen >= 0 || h->stream >= 0 || h->pty >= 0))
        return hend_refuse(p->s, p->index,
                           "this port has no host end, or was not built to "
                           "take one");
    if (!p->adopt)
        return 0;
    if (p->adopt_pty && (h->pty < 0 || h->listen >= 0 || h->stream >= 0))
        return hend_refuse(p->s, p->index,
                           "a pty port takes one pty master and nothing "
                           "else");
    if (!p->adopt_pty && (h->listen < 0 || h->pty >= 0))
        return hend_refuse(p->s, p->index,
                           "a socket port takes its listening socket and at "
                           "most the peer connected to it");
    if (p->adopt_path != NULL) {
        h->path = strdup(p->adopt_path);
        if (h->path == NULL)
            return -ENOMEM;
    }
    if (!p->adopt_pty)
        return 0;
    /* The slave held open as port_open_pty() holds it, reached from the
     * master (no lookup by name); its raw mode lives in the pty. */
    h->slave =
        ioctl(ends[h->pty].fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (h->slave < 0)
        return -errno;
    rc = ptsname_r(ends[h->pty].fd, name, sizeof(name));
    if (rc != 0)
        return -rc;
    h->pty_name = strdup(name);
    return h->pty_name == NULL ? -ENOMEM : 0;
}

static void
hend_port_free(struct hend_port *h)
{
    if (h->slave >= 0)
        close(h->slave);
    free(h->pty_name);
    free(h->path);
}

static int
serial_hend_restore(void *opaque, struct umdev_host_end *ends, size_t n)
{
    struct serial *s = opaque;
    struct hend_port h[SERIAL_NR_PORTS];
    unsigned int i;
    int rc = 0;

    for (i = 0; i < SERIAL_NR_PORTS; i++)
        h[i] = (struct hend_port){
            .listen = -1, .stream = -1, .pty = -1, .slave = -1
        };
    for (size_t k = 0; k < n; k++) {
        int *slot;

        if (ends[k].tag >= SERIAL_NR_PORTS) {
            umdev_log(s->log, LOG_ERR,
                      "%s: handed-over host end for port %u: the card has "
                      "%d ports",
                      s->name, ends[k].tag, SERIAL_NR_PORTS);
            return -EINVAL;
        }
        slot = ends[k].kind == UMDEV_HOST_END_LISTENER ? &h[ends[k].tag].listen
               : ends[k].kind == UMDEV_HOST_END_STREAM ? &h[ends[k].tag].stream
                                                       : &h[ends[k].tag].pty;
        *slot = (int)k; /* lib/dev let no kind repeat on a port */
    }
    for (i = 0; rc == 0 && i < SERIAL_NR_PORTS; i++) {
        rc = hend_prepare(&s->port[i], ends, &h[i]);
        if (rc < 0 && rc != -EINVAL)
            umdev_log(s->log, LOG_ERR,
                      "%s: port%u: cannot take the handed-over host end: %s",
                      s->name, i, strerror(-rc));
    }
    if (rc < 0) {
        for (i = 0; i < SERIAL_NR_PORTS; i++)
            hend_port_free(&h[i]);
        return rc;
    }
    /* Nothing fails from here on. The card is stopped: resume() watches
     * what comes in. */
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        struct serial_port *p = &s->port[i];

        if (!p->adopt)
            continue;
        p->path = h[i].path;
        if (h[i].listen >= 0) {
            p->listen_fd = ends[h[i].listen].fd;
            ends[h[i].listen].fd = -1;
            p->relisten = true;
        }
        if (h[i].pty >= 0) {
            p->is_pty = true;
            p->pty_name = h[i].pty_name;
            p->pty_slave_fd = h[i].slave;
            host_attach(p, ends[h[i].pty].fd);
            ends[h[i].pty].fd = -1;
        } else if (h[i].stream >= 0) {
            host_attach(p, ends[h[i].stream].fd);
            ends[h[i].stream].fd = -1;
        }
        umdev_log(s->log, LOG_INFO, "%s: port%u: host end handed over (%s%s)",
                  s->name, i,
                  p->is_pty         ? p->pty_name
                  : p->path != NULL ? p->path
                                    : "a socket",
                  p->host_fd >= 0 && !p->is_pty ? ", a peer connected" : "");
    }
    return 0;
}

/* Another process serves the host ends now: close ours without a word to
 * the peers (no shutdown) and leave the paths to it. */
static void
serial_hend_release(void *opaque)
{
    struct serial *s = opaque;

    for (unsigned int i = 0; i < SERIAL_NR_PORTS; i++) {
        struct serial_port *p = &s->port[i];

        host_unwatch(p);
        if (p->listening)
            umdev_loop_del(s->loop, p->listen_fd);
        p->listening = false;
        p->relisten = false;
        if (p->host_fd >= 0)
            close(p->host_fd);
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        if (p->pty_slave_fd >= 0)
            close(p->pty_slave_fd);
        p->host_fd = p->listen_fd = p->pty_slave_fd = -1;
        uart_set_modem_inputs(&p->uart, 0);
        free(p->path);
        p->path = NULL;
        free(p->pty_name);
        p->pty_name = NULL;
        p->is_pty = false;
    }
}

static const struct umdev_host_end_ops serial_hend_ops = {
    .save = serial_hend_save,
    .restore = serial_hend_restore,
    .release = serial_hend_release,
};

/* A filesystem identity this thread switched away from. */
struct fs_ident {
    bool switched;
    uid_t uid;
    gid_t gid;
};

static void
owner_leave(const struct fs_ident *saved)
{
    if (!saved->switched)
        return;
    setfsuid(saved->uid);
    setfsgid(saved->gid);
}

/*
 * Work on port @p's host-end path with the owner's filesystem identity
 * when the owner controls its directory: then lookups, creation and
 * removal there get exactly the owner's rights (no CAP_DAC_OVERRIDE, and
 * the files are born the owner's), so swapping a component for a symlink
 * gains the owner nothing. Only this thread's identity changes.
 */
static int
owner_enter(struct serial_port *p, struct fs_ident *saved)
{
    struct serial *s = p->s;

    saved->switched = false;
    if (!s->set_owner || !p->owner_creates || geteuid() != 0)
        return 0;
    saved->gid = (gid_t)setfsgid(s->gid);
    saved->uid = (uid_t)setfsuid(s->uid);
    saved->switched = true;
    /* setfsuid() reports no error: ask again (-1 changes nothing). */
    if ((uid_t)setfsuid((uid_t)-1) != s->uid ||
        (gid_t)setfsgid((gid_t)-1) != s->gid) {
        owner_leave(saved);
        return -EPERM;
    }
    return 0;
}

/* A host end root made in a directory only it may change: hand it to the
 * owner, never following a link. */
static int
owner_take(struct serial_port *p, const char *path)
{
    struct serial *s = p->s;

    if (!s->set_owner || p->owner_creates || geteuid() != 0)
        return 0;
    return lchown(path, s->uid, s->gid) < 0 ? -errno : 0;
}

/* Remove a host end this port made, with the rights that made it. */
static void
port_unlink(struct serial_port *p, const char *path)
{
    struct fs_ident id;

    if (path == NULL || owner_enter(p, &id) < 0)
        return;
    unlink(path);
    owner_leave(&id);
}

/* Make room for a socket at @path: remove a dead one, refuse anything
 * else (another file, or a socket someone still listens on). */
static int
clear_socket_path(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    strcpy(sa.sun_path, path); /* length checked by the caller */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rc == 0 || errno == EAGAIN) {
        close(fd);
        return -EADDRINUSE; /* somebody serves it */
    }
    close(fd);
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

static int
port_open_socket(struct serial_port *p, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct serial *s = p->s;
    /*
     * Made by the owner (owner_enter()), the file is born the owner's.
     * Made by root in a directory only root may change, it is handed to
     * the owner (lchown() of the temporary name, never following a link:
     * owner_take()'s rule) before it appears at @path.
     */
    bool hand_over = s->set_owner && !p->owner_creates && geteuid() == 0;
    const struct umdev_listen_opts lo = {
        .mode = 0600,
        .uid = hand_over ? s->uid : (uid_t)-1,
        .gid = hand_over ? s->gid : (gid_t)-1,
        .backlog = 4,
    };
    struct fs_ident id;
    char *copy;
    int rc;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                          0); /* closed by port_fini() from here on */
    if (p->listen_fd < 0)
        return -errno;
    /* Linux creates the socket file with the socket inode's mode (less
     * the umask): 0600 without touching the process-wide umask. (Before
     * owner_enter(): the socket inode is the process's.) */
    if (fchmod(p->listen_fd, 0600) < 0)
        return -errno;
    copy = strdup(path);
    if (copy == NULL)
        return -ENOMEM;
    rc = owner_enter(p, &id);
    if (rc == 0)
        rc = clear_socket_path(path);
    /* The path appears only once the socket listens. */
    if (rc == 0)
        rc = umdev_listen_unix(p->listen_fd, path, &lo);
    owner_leave(&id);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    p->path = copy; /* ours now: port_fini() removes it */
    rc = umdev_loop_add(p->s->loop, p->listen_fd, UMDEV_LOOP_IN, on_listen, p);
    if (rc < 0)
        return rc;
    p->listening = true;
    return 0;
}

/* A symbolic link to the pty at @link, replacing only a stale link to a
 * pty, never anything else. */
static int
pty_link(struct serial_port *p, const char *link, const char *name)
{
    struct fs_ident id;
    struct stat st;
    int rc;

    rc = owner_enter(p, &id);
    if (rc < 0)
        return rc;
    if (lstat(link, &st) == 0) {
        char old[128];
        ssize_t n = -1;

        if (S_ISLNK(st.st_mode))
            n = readlink(link, old, sizeof(old) - 1);
        if (n >= 0)
            old[n] = '\0';
        if (n < 0 || strncmp(old, "/dev/pts/", 9) != 0)
            rc = -EEXIST;
        else
            unlink(link);
    }
    if (rc == 0 && symlink(name, link) < 0)
        rc = -errno;
    owner_leave(&id);
    if (rc < 0)
        return rc;
    p->path = strdup(link);
    if (p->path == NULL) {
        port_unlink(p, link);
        return -ENOMEM;
    }
    return owner_take(p, link);
}

static int
port_open_pty(struct serial_port *p, const char *link)
{
    char name[128];
    struct termios tio;
    int fd, rc;

    fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    p->host_fd = fd; /* closed by port_fini() from here on */
    if (grantpt(fd) < 0 || unlockpt(fd) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        return -errno;
    rc = ptsname_r(fd, name, sizeof(name));
    if (rc != 0)
        return -rc;
    p->is_pty = true;
    p->pty_name = strdup(name);
    if (p->pty_name == NULL)
        return -ENOMEM;
    /* Hold the slave open: the master then never reads EOF/EIO, and the
     * slave's raw mode keeps the line discipline from echoing guest
     * output back as input. */
    p->pty_slave_fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (p->pty_slave_fd < 0)
        return -errno;
    /* The owner's terminal: set on the descriptor, not by name. */
    if (p->s->set_owner && geteuid() == 0 &&
        fchown(p->pty_slave_fd, p->s->uid, p->s->gid) < 0)
        return -errno;
    if (tcgetattr(p->pty_slave_fd, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(p->pty_slave_fd, TCSANOW, &tio);
    }
    if (link != NULL) {
        rc = pty_link(p, link, name);
        if (rc < 0)
            return rc;
    }
    host_attach(p, fd);
    port_sync(p);
    return 0;
}

static void
port_fini(struct serial_port *p)
{
    if (p->s == NULL)
        return;
    host_unwatch(p);
    if (p->listening)
        umdev_loop_del(p->s->loop, p->listen_fd);
    umdev_loop_timer_cancel(p->s->loop, p->timer);
    if (p->host_fd >= 0)
        close(p->host_fd);
    if (p->listen_fd >= 0)
        close(p->listen_fd);
    if (p->pty_slave_fd >= 0)
        close(p->pty_slave_fd);
    port_unlink(p, p->path);
    free(p->path);
    free(p->pty_name);
    free(p->in);
    free(p->adopt_path);
}

static int
port_init(struct serial *s, unsigned int i,
          const struct serial_port_config *cfg)
{
    struct serial_port *p = &s->port[i];
    struct umdev_region_desc bar = {
        .size = SERIAL_BAR_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar_access,
        .opaque = p,
    };
    int rc;

    p->s = s;
    p->index = i;
    p->owner_creates = cfg->owner_creates;
    p->listen_fd = p->host_fd = p->pty_slave_fd = -1;
    uart_init(&p->uart, 0);
    rc = umdev_pci_bar_add(s->pci, i, UMDEV_PCI_BAR_IO, false, SERIAL_BAR_SIZE,
                           &bar);
    if (rc < 0)
        return rc;
    if (s->restoring) {
        /* Its host end comes with the handover; a path is only noted. */
        p->adopt = cfg->pty || cfg->path != NULL;
        p->adopt_pty = cfg->pty;
        if (cfg->path != NULL) {
            p->adopt_path = strdup(cfg->path);
            if (p->adopt_path == NULL)
                return -ENOMEM;
        }
        return 0;
    }
    if (cfg->pty)
        rc = port_open_pty(p, cfg->path);
    else if (cfg->path != NULL)
        rc = port_open_socket(p, cfg->path);
    if (rc == -EACCES && p->owner_creates && s->set_owner && geteuid() == 0)
        umdev_log(s->log, LOG_ERR,
                  "%s: port%u: cannot open the host end at %s: the "
                  "instance owner (uid %u, gid %u) may not create it there; "
                  "a host end outside RUNDIR is made with the owner's "
                  "rights, so its directory must be writable by the owner",
                  s->name, i, cfg->path, (unsigned int)s->uid,
                  (unsigned int)s->gid);
    else if (rc < 0)
        umdev_log(s->log, LOG_ERR,
                  "%s: port%u: cannot open the host end%s%s: %s", s->name, i,
                  cfg->path ? " at " : "", cfg->path ? cfg->path : "",
                  strerror(-rc));
    return rc;
}

int
serial_create(struct umdev_loop *loop, const struct serial_config *cfg,
              const struct umdev_logger *log, struct serial **out)
{
    static const struct umdev_pci_id id = {
        .vendor_id = SERIAL_VENDOR_ID,
        .device_id = SERIAL_DEVICE_ID,
        .subsystem_vendor_id = SERIAL_SUBSYS_VENDOR_ID,
        .subsystem_id = SERIAL_SUBSYS_ID,
        .revision = SERIAL_REVISION,
        .class_code = SERIAL_CLASS,
        .interrupt_pin = 1, /* INTA# */
    };
    struct umdev_dev_info info = {
        .pci = true,
        .ops = &serial_ops,
        .log = log,
    };
    struct serial *s;
    unsigned int i;
    int rc;

    *out = NULL;
    if (loop == NULL || cfg == NULL)
        return -EINVAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->loop = loop;
    s->log = log;
    s->set_owner = cfg->set_owner;
    s->uid = cfg->uid;
    s->gid = cfg->gid;
    s->restoring = cfg->restoring;
    s->name = strdup(cfg->name ? cfg->name : "serial");
    if (s->name == NULL) {
        free(s);
        return -ENOMEM;
    }
    info.name = s->name;
    info.opaque = s;
    rc = umdev_dev_create(&info, &s->dev);
    if (rc == 0)
        rc = umdev_pci_create(s->dev, &id, &s->pci);
    for (i = 0; rc == 0 && i < SERIAL_NR_PORTS; i++)
        rc = port_init(s, i, &cfg->port[i]);
    if (rc == 0)
        rc = umdev_dev_set_profile(s->dev, &serial_profile);
    if (rc == 0)
        rc = umdev_dev_set_host_end_ops(s->dev, &serial_hend_ops, s);
    if (rc < 0) {
        serial_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

void
serial_destroy(struct serial *s)
{
    unsigned int i;

    if (s == NULL)
        return;
    /* The device first: a client's detach may still reach the PCI
     * state; then the host ends. */
    umdev_dev_destroy(s->dev);
    umdev_pci_destroy(s->pci);
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        port_fini(&s->port[i]);
    free(s->name);
    free(s);
}

void
serial_power_cycle(struct serial *s)
{
    unsigned int i;
    int fd;

    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        struct serial_port *p = &s->port[i];

        host_unwatch(p);
        if (p->host_fd >= 0 && !p->is_pty) {
            close(p->host_fd);
            p->host_fd = -1;
        }
        /* Peers in the backlog would be the next input's host client. */
        while (p->listen_fd >= 0 &&
               (fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
            close(fd);
        if (p->listen_fd >= 0 && !p->listening &&
            umdev_loop_add(s->loop, p->listen_fd, UMDEV_LOOP_IN, on_listen,
                           p) == 0)
            p->listening = true;
        umdev_loop_timer_cancel(s->loop, p->timer);
        p->timer = 0;
        p->rx_eof = false;
        p->out_closed = false;
        p->host_events = 0;
        p->in_head = p->in_count = 0; /* a new card holds no host bytes */
        p->relisten = false;
        uart_init(&p->uart, p->uart.out_limit);
        if (p->host_fd >= 0) /* a pty master: always there */
            uart_set_modem_inputs(&p->uart, HOST_PRESENT_LINES);
    }
    s->stopped = false;
    serial_reset(s);
}

struct umdev_dev *
serial_dev(struct serial *s)
{
    return s->dev;
}

struct umdev_pci *
serial_pci(struct serial *s)
{
    return s->pci;
}

const char *
serial_port_host_end(struct serial *s, unsigned int port)
{
    if (port >= SERIAL_NR_PORTS)
        return NULL;
    if (s->port[port].is_pty)
        return s->port[port].pty_name;
    return s->port[port].listen_fd >= 0 ? s->port[port].path : NULL;
}

bool
serial_port_is_pty(struct serial *s, unsigned int port)
{
    return port < SERIAL_NR_PORTS && s->port[port].is_pty;
}
