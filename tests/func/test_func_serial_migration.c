/*
 * Migration v2 of the serial card (devices/serial, README.md "Migration")
 * through the client library: two cards served on real sockets, their
 * host ends real UNIX sockets the test connects to as the host peers. A
 * card saved mid-transfer (bytes in both FIFOs, in the host-end buffer,
 * and sent by the host peer but not yet received) and loaded into a
 * fresh one carries on byte for byte both ways, reads back the same
 * registers and re-signals its interrupt; a stopped card raises no
 * interrupt and moves no byte; a corrupt state is refused and changes
 * nothing on the destination; a save drains at most its bound of what the
 * host client sent. A handover (umdevctl restart's) to a card built with
 * `restoring` carries the host ends themselves: the same connection, the
 * same listening socket at the same path, every byte in flight.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/sockios.h>

#include "harness.h"
#include "serial.h"
#include "uart.h"

#define S_STOP VFIO_USER_DEVICE_STATE_STOP
#define S_RUNNING VFIO_USER_DEVICE_STATE_RUNNING
#define S_STOP_COPY VFIO_USER_DEVICE_STATE_STOP_COPY
#define S_RESUMING VFIO_USER_DEVICE_STATE_RESUMING
#define S_ERROR VFIO_USER_DEVICE_STATE_ERROR

/* The stream around the state (docs/PROTOCOL.md "Migration stream"): a
 * 64-byte header, the configuration (serial_mig_config(): 5 words), a
 * 16-byte section header, the state, a 16-byte end section. */
#define HDR_SIZE 64
#define CONFIG_LEN 20
#define SEC_SIZE 16
#define STATE_OFF (HDR_SIZE + CONFIG_LEN + SEC_SIZE)
#define STREAM_CAP (1u << 20)
#define PCI_BLOB_CONFIG 128 /* config space's offset in lib/pci's blob */

/* Two cards, each with both host ends as sockets in the kit's dir. */
struct fx {
    struct kit_serve ks;
    struct kit_log log;
    struct serial *card[2]; /* source, destination */
    char end[2][SERIAL_NR_PORTS][108];
};

static struct fx F;

static void
destroy_card(void *arg)
{
    serial_destroy(arg);
}

static int
fx_setup(void **state)
{
    static const char *const names[2] = { "src", "dst" };
    unsigned int i, p;

    (void)state;
    memset(&F, 0, sizeof(F));
    kit_log_init(&F.log, "serial-mig: ", "UMDEV_FUNC_LOG");
    assert_int_equal(kit_serve_init(&F.ks, "sermig"), 0);
    for (i = 0; i < 2; i++) {
        struct serial_config cfg = { .name = names[i] };

        for (p = 0; p < SERIAL_NR_PORTS; p++) {
            snprintf(F.end[i][p], sizeof(F.end[i][p]), "%s/%s.port%u", F.ks.dir,
                     names[i], p);
            cfg.port[p].path = F.end[i][p];
        }
        assert_int_equal(
            serial_create(F.ks.loop, &cfg, &F.log.logger, &F.card[i]), 0);
        assert_int_equal(kit_serve_add(&F.ks, names[i], serial_dev(F.card[i]),
                                       destroy_card, F.card[i]),
                         0);
    }
    assert_int_equal(kit_serve_start(&F.ks), 0);
    return 0;
}

static int
fx_teardown(void **state)
{
    (void)state;
    assert_int_equal(kit_serve_stop(&F.ks, HARNESS_TIMEOUT_MS), 0);
    return 0;
}

static struct umdev_client *
connect_card(unsigned int i)
{
    struct umdev_client *c = NULL;

    assert_int_equal(umdev_client_connect(F.ks.devs[i].path, NULL, &c), 0);
    return c;
}

static void
wr(struct umdev_client *c, unsigned int port, unsigned int reg, uint8_t v)
{
    assert_int_equal(
        umdev_client_region_write(c, UMDEV_PCI_BAR0_REGION + port, reg, &v, 1),
        0);
}

static uint8_t
rd(struct umdev_client *c, unsigned int port, unsigned int reg)
{
    uint8_t v = 0;

    assert_int_equal(
        umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION + port, reg, &v, 1),
        0);
    return v;
}

static void
set_state(struct umdev_client *c, uint32_t to)
{
    uint32_t now = 0xffff;

    assert_int_equal(umdev_client_mig_set_state(c, to, &now), 0);
    assert_int_equal(now, to);
}

/* The card's whole stream (it must be in STOP_COPY). */
static size_t
read_stream(struct umdev_client *c, uint8_t *buf)
{
    ssize_t n = umdev_client_mig_read(c, buf, STREAM_CAP);

    assert_true(n > STATE_OFF && (size_t)n < STREAM_CAP);
    return (size_t)n;
}

static int
host_connect(const char *path)
{
    int fd = kit_connect_unix(path);

    assert_true(fd >= 0);
    return fd;
}

/* Exactly @len bytes from the host peer @fd within the timeout. */
static void
host_expect(int fd, const uint8_t *want, size_t len)
{
    uint8_t *got = malloc(len + 1);
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    size_t n = 0;
    ssize_t r;

    assert_non_null(got);
    while (n < len) {
        if (poll(&pfd, 1, HARNESS_TIMEOUT_MS) != 1)
            fail_msg("host end: %zu of %zu bytes arrived", n, len);
        r = read(fd, got + n, len - n);
        assert_true(r > 0);
        n += (size_t)r;
    }
    assert_memory_equal(got, want, len);
    free(got);
}

/* Nothing arrives at the host peer @fd for a while. */
static void
host_quiet(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    assert_int_equal(poll(&pfd, 1, HARNESS_QUIET_MS), 0);
}

/* Wait until the card has taken port @port's host client (DCD). */
static void
wait_carrier(struct umdev_client *c, unsigned int port)
{
    int i;

    for (i = 0; i < HARNESS_TIMEOUT_MS; i++) {
        if (rd(c, port, UART_MSR) & UART_MSR_DCD)
            return;
        usleep(1000);
    }
    fail_msg("port%u: host client never seen", port);
}

/* Read @len bytes as the guest does (LSR.DR, then RBR). */
static void
guest_expect(struct umdev_client *c, unsigned int port, const uint8_t *want,
             size_t len)
{
    size_t n = 0;
    int idle = 0;

    while (n < len) {
        if (!(rd(c, port, UART_LSR) & UART_LSR_DR)) {
            if (++idle > HARNESS_TIMEOUT_MS)
                fail_msg("port%u: %zu of %zu bytes received", port, n, len);
            usleep(1000);
            continue;
        }
        idle = 0;
        if (rd(c, port, UART_RX) != want[n])
            fail_msg("port%u: byte %zu differs", port, n);
        n++;
    }
}

static void
guest_send(struct umdev_client *c, unsigned int port, const uint8_t *buf,
           size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        wr(c, port, UART_TX, buf[i]);
}

static uint16_t
pci_status(struct umdev_client *c)
{
    uint16_t v = 0;

    assert_int_equal(
        umdev_client_region_read(c, UMDEV_PCI_CONFIG_REGION, PCI_STATUS, &v, 2),
        0);
    return v;
}

/* The registers a read does not change (RBR excluded; IIR while THRI is
 * not its source; LSR without errors latched; MSR without deltas). */
struct regs {
    uint8_t v[SERIAL_NR_PORTS][9];
};

static void
read_regs(struct umdev_client *c, struct regs *r)
{
    unsigned int p;

    for (p = 0; p < SERIAL_NR_PORTS; p++) {
        uint8_t lcr = rd(c, p, UART_LCR);

        r->v[p][0] = rd(c, p, UART_IER);
        r->v[p][1] = rd(c, p, UART_IIR);
        r->v[p][2] = lcr;
        r->v[p][3] = rd(c, p, UART_MCR);
        r->v[p][4] = rd(c, p, UART_LSR);
        r->v[p][5] = rd(c, p, UART_MSR);
        r->v[p][6] = rd(c, p, UART_SCR);
        wr(c, p, UART_LCR, lcr | UART_LCR_DLAB);
        r->v[p][7] = rd(c, p, UART_DLL);
        r->v[p][8] = rd(c, p, UART_DLM);
        wr(c, p, UART_LCR, lcr);
    }
}

/*
 * Stopped, the source card raises no interrupt, takes nothing from its
 * host ends and gives them nothing, and refuses register accesses (each
 * would change its state); resumed, all of it happens.
 */
static void
test_stop_is_quiet(void **state)
{
    struct umdev_client *c = connect_card(0);
    int efd = efd_new(), h0, h0b, h1, unread = 0;
    uint8_t v;
    uint8_t *stream = malloc(STREAM_CAP);

    (void)state;
    assert_non_null(stream);
    irq_trigger(c, UMDEV_PCI_INTX_IRQ, 0, efd);
    wr(c, 0, UART_LCR, 0x03);
    wr(c, 0, UART_FCR, UART_FCR_ENABLE_FIFO);
    wr(c, 0, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    h0 = host_connect(F.end[0][0]);
    wait_carrier(c, 0);
    wr(c, 0, UART_IER, UART_IER_RDI);
    /* Port 1 holds ten bytes for a host client still to come. */
    wr(c, 1, UART_LCR, 0x03);
    guest_send(c, 1, (const uint8_t *)"0123456789", 10);
    assert_int_equal(efd_wait(efd, 0), 0);

    set_state(c, S_STOP);
    assert_int_equal(write(h0, "late", 4), 4);
    h1 = host_connect(F.end[0][1]);
    /* A second client of port 0 is refused (closed) only once the card
     * runs: stopped, it is not even accepted. */
    h0b = host_connect(F.end[0][0]);
    assert_int_equal(efd_wait(efd, HARNESS_QUIET_MS), 0);
    assert_int_equal(pci_status(c) & PCI_STATUS_INTERRUPT, 0);
    host_quiet(h1);
    host_quiet(h0b);
    /* The card has not read "late" (the receiver had room for it). */
    assert_int_equal(ioctl(h0, SIOCOUTQ, &unread), 0);
    assert_true(unread > 0);
    /* A save takes them from the socket into the state; a migration
     * given up (back to RUNNING) still delivers them, once. */
    set_state(c, S_STOP_COPY);
    assert_true(umdev_client_mig_read(c, stream, STREAM_CAP) > STATE_OFF);
    assert_int_equal(ioctl(h0, SIOCOUTQ, &unread), 0);
    assert_int_equal(unread, 0);
    set_state(c, S_STOP);
    assert_int_equal(
        umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION, UART_LSR, &v, 1),
        -EBUSY);
    assert_int_equal(
        umdev_client_region_write(c, UMDEV_PCI_BAR1_REGION, UART_TX, "x", 1),
        -EBUSY);

    set_state(c, S_RUNNING);
    assert_int_equal(efd_wait(efd, HARNESS_TIMEOUT_MS), 1);
    assert_true(pci_status(c) & PCI_STATUS_INTERRUPT);
    guest_expect(c, 0, (const uint8_t *)"late", 4);
    host_expect(h1, (const uint8_t *)"0123456789", 10);
    {
        struct pollfd pfd = { .fd = h0b, .events = POLLIN };
        uint8_t b;

        assert_int_equal(poll(&pfd, 1, HARNESS_TIMEOUT_MS), 1);
        assert_int_equal(read(h0b, &b, 1), 0);
    }
    close(h0b);
    assert_int_equal(rd(c, 0, UART_LSR) & UART_LSR_DR, 0);
    free(stream);
    close(h0);
    close(h1);
    close(efd);
    umdev_client_destroy(c);
}

/* Offsets in a stream's state: lib/pci's blob, each port's UART state
 * and its count of held host bytes. */
struct layout {
    size_t pci, pci_len, uart[SERIAL_NR_PORTS], in[SERIAL_NR_PORTS];
    size_t end;
};

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void
parse(const uint8_t *s, size_t len, struct layout *l)
{
    size_t off = STATE_OFF;
    unsigned int p;

    l->pci_len = le32(s + off);
    l->pci = off + 4;
    off = l->pci + l->pci_len;
    for (p = 0; p < SERIAL_NR_PORTS; p++) {
        l->uart[p] = off;
        off += UART_STATE_FIXED + le32(s + off + UART_STATE_FIXED - 4);
        l->in[p] = off;
        off += 4 + le32(s + off);
    }
    l->end = off;
    assert_int_equal(l->end + SEC_SIZE, len);
}

/*
 * The whole move: the source mid-transfer in both directions on port 0
 * (bytes in the RX FIFO, more in the host socket, more sent after the
 * stop) and port 1 (4 KiB held for a host client that has not come, and
 * the TX FIFO behind them), an RDI interrupt pending. The destination,
 * re-attached by a new client while stopped, carries on exactly.
 */
static void
test_move_mid_transfer(void **state)
{
    enum { IN0 = 150, OUT1 = UART_OUT_SIZE + 10 };
    struct umdev_client *c = connect_card(0), *d = connect_card(1);
    uint8_t in0[IN0], *out1 = malloc(OUT1), *stream = malloc(STREAM_CAP);
    int efd = efd_new(), defd = efd_new(), h0, g0, g1;
    struct regs before, after;
    struct layout l;
    size_t len, i;

    (void)state;
    assert_non_null(out1);
    assert_non_null(stream);
    for (i = 0; i < IN0; i++)
        in0[i] = (uint8_t)(i * 7 + 3);
    for (i = 0; i < OUT1; i++)
        out1[i] = (uint8_t)(i ^ (i >> 8));
    /* The destination's port 0 host client is there from the start. */
    g0 = host_connect(F.end[1][0]);
    wait_carrier(d, 0);

    irq_trigger(c, UMDEV_PCI_INTX_IRQ, 0, efd);
    wr(c, 0, UART_LCR, UART_LCR_DLAB | 0x03);
    wr(c, 0, UART_DLL, 1);
    wr(c, 0, UART_DLM, 0);
    wr(c, 0, UART_LCR, 0x03);
    wr(c, 0, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
    wr(c, 0, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    wr(c, 0, UART_SCR, 0x5a);
    wr(c, 1, UART_LCR, 0x1b); /* 8E1 */
    wr(c, 1, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_4);
    wr(c, 1, UART_MCR, UART_MCR_OUT2 | UART_MCR_DTR);
    wr(c, 1, UART_SCR, 0xa5);
    h0 = host_connect(F.end[0][0]);
    wait_carrier(c, 0);
    (void)rd(c, 0, UART_MSR);
    wr(c, 0, UART_IER, UART_IER_RDI | UART_IER_RLSI);
    guest_send(c, 0, (const uint8_t *)"hello", 5);
    host_expect(h0, (const uint8_t *)"hello", 5);
    /* Host -> guest: 100 bytes, 3 of them read before the move. */
    assert_int_equal(write(h0, in0, 100), 100);
    guest_expect(c, 0, in0, 3);
    /* The FIFO refills to 16 from the socket, above the trigger: RDI. */
    for (i = 0; i < HARNESS_TIMEOUT_MS &&
                (rd(c, 0, UART_IIR) & UART_IIR_ID) != UART_IIR_RDI;
         i++)
        usleep(1000);
    assert_true(efd_wait(efd, HARNESS_TIMEOUT_MS) >= 1);
    /* Guest -> host on port 1, no host client: the 4 KiB buffer fills,
     * then the TX FIFO, and THRE stays clear. */
    guest_send(c, 1, out1, OUT1);
    assert_int_equal(rd(c, 1, UART_LSR) & UART_LSR_THRE, 0);
    read_regs(c, &before);

    set_state(c, S_STOP);
    /* Sent after the stop, before the save: drained into the state. */
    assert_int_equal(write(h0, in0 + 100, IN0 - 100), IN0 - 100);
    set_state(c, S_STOP_COPY);
    len = read_stream(c, stream);
    parse(stream, len, &l);
    /* Port 1 carries the full host-end buffer and 10 FIFO bytes. */
    assert_int_equal(le32(stream + l.uart[1] + UART_STATE_FIXED - 4),
                     UART_OUT_SIZE);
    assert_int_equal(stream[l.uart[1] + 44], 10);
    /* Port 0: the 97 bytes left, between RX FIFO and held bytes. */
    assert_int_equal(stream[l.uart[0] + 11] + le32(stream + l.in[0]), IN0 - 3);
    host_quiet(h0);

    /* The destination. */
    irq_trigger(d, UMDEV_PCI_INTX_IRQ, 0, defd);
    set_state(d, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(d, stream, len), 0);
    set_state(d, S_STOP);
    assert_int_equal(efd_wait(defd, HARNESS_QUIET_MS), 0);
    /* The VMM re-attaches while the card is stopped: nothing of the
     * loaded state goes. */
    umdev_client_destroy(d);
    close(defd);
    d = connect_card(1);
    defd = efd_new();
    irq_trigger(d, UMDEV_PCI_INTX_IRQ, 0, defd);
    assert_int_equal(efd_wait(defd, HARNESS_QUIET_MS), 0);
    set_state(d, S_RUNNING);
    /* The pending RDI is signalled to the new client. */
    assert_true(efd_wait(defd, HARNESS_TIMEOUT_MS) >= 1);
    assert_true(pci_status(d) & PCI_STATUS_INTERRUPT);
    read_regs(d, &after);
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        assert_memory_equal(before.v[i], after.v[i], sizeof(before.v[i]));

    /* Host -> guest, byte for byte, then the new host client's bytes. */
    guest_expect(d, 0, in0 + 3, IN0 - 3);
    assert_int_equal(write(g0, "after", 5), 5);
    guest_expect(d, 0, (const uint8_t *)"after", 5);
    /* Guest -> host: the new client gets only what was written since;
     * port 1's held bytes go to its first client, in order. */
    guest_send(d, 0, (const uint8_t *)"xyz", 3);
    host_expect(g0, (const uint8_t *)"xyz", 3);
    g1 = host_connect(F.end[1][1]);
    host_expect(g1, out1, OUT1);
    for (i = 0; i < HARNESS_TIMEOUT_MS && !(rd(d, 1, UART_LSR) & UART_LSR_THRE);
         i++)
        usleep(1000);
    guest_send(d, 1, (const uint8_t *)"tail", 4);
    host_expect(g1, (const uint8_t *)"tail", 4);
    /* The source's host client got nothing after the stop. */
    host_quiet(h0);

    close(h0);
    close(g0);
    close(g1);
    close(efd);
    close(defd);
    umdev_client_destroy(c);
    umdev_client_destroy(d);
    free(out1);
    free(stream);
}

/* The destination refuses @stream (it is RUNNING before and after). */
static void
expect_refused(struct umdev_client *d, const uint8_t *stream, size_t len,
               const char *why)
{
    uint32_t now = 0;
    uint32_t bar0 = 0;

    kit_log_watch(&F.log, "migrated state refused");
    set_state(d, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(d, stream, len), 0);
    if (umdev_client_mig_set_state(d, S_STOP, &now) != -EINVAL)
        fail_msg("%s: loaded", why);
    assert_int_equal(umdev_client_mig_state(d, &now), 0);
    assert_int_equal(now, S_ERROR);
    assert_int_equal(F.log.watched, 1);
    kit_log_watch(&F.log, NULL);
    /* Config space is the destination's own still. */
    assert_int_equal(umdev_client_region_read(d, UMDEV_PCI_CONFIG_REGION,
                                              PCI_BASE_ADDRESS_0, &bar0, 4),
                     0);
    assert_int_equal(bar0, 0xc001);
    assert_int_equal(umdev_client_reset(d), 0);
    /* The reset cleared BAR0; set it again for the next round. */
    bar0 = 0xc000;
    assert_int_equal(umdev_client_region_write(d, UMDEV_PCI_CONFIG_REGION,
                                               PCI_BASE_ADDRESS_0, &bar0, 4),
                     0);
}

/*
 * Corrupt states (truncated, a FIFO count above 16 in the second port,
 * a pci blob of another device) are refused with a log line, and the
 * destination keeps what it had: its config space, and the bytes its
 * guest wrote for its own host clients (a reset keeps them; a state
 * taken in part would have replaced them).
 */
static void
test_corrupt_state_refused(void **state)
{
    struct umdev_client *c = connect_card(0), *d = connect_card(1);
    uint8_t *stream = malloc(STREAM_CAP), *bad = malloc(STREAM_CAP);
    uint32_t bar0 = 0xe000;
    struct layout l;
    size_t len;
    uint64_t sec_len;
    int g0, g1;

    (void)state;
    assert_non_null(stream);
    assert_non_null(bad);
    /* The source: its own BAR0, bytes held on both ports. */
    assert_int_equal(umdev_client_region_write(c, UMDEV_PCI_CONFIG_REGION,
                                               PCI_BASE_ADDRESS_0, &bar0, 4),
                     0);
    wr(c, 0, UART_LCR, 0x03);
    wr(c, 1, UART_LCR, 0x03);
    guest_send(c, 0, (const uint8_t *)"SRC0", 4);
    guest_send(c, 1, (const uint8_t *)"SRC1", 4);
    set_state(c, S_STOP_COPY);
    len = read_stream(c, stream);
    parse(stream, len, &l);
    /* README.md "Migration": 532 bytes idle, here 4 held bytes a port. */
    assert_int_equal(l.pci_len, 128 + 256);
    assert_int_equal(l.end - STATE_OFF, 532 + 2 * 4);
    set_state(c, S_RUNNING);
    /* The destination's own. */
    bar0 = 0xc000;
    assert_int_equal(umdev_client_region_write(d, UMDEV_PCI_CONFIG_REGION,
                                               PCI_BASE_ADDRESS_0, &bar0, 4),
                     0);
    wr(d, 0, UART_LCR, 0x03);
    wr(d, 1, UART_LCR, 0x03);
    guest_send(d, 0, (const uint8_t *)"p0", 2);
    guest_send(d, 1, (const uint8_t *)"p1own", 5);

    /* Truncated: the state one byte short (its section says so). */
    memcpy(bad, stream, len);
    memcpy(&sec_len, bad + STATE_OFF - 8, 8);
    sec_len--;
    memcpy(bad + STATE_OFF - 8, &sec_len, 8);
    memmove(bad + l.end - 1, bad + l.end, SEC_SIZE);
    expect_refused(d, bad, len - 1, "truncated");
    /* Port 1's RX FIFO count above the FIFO. */
    memcpy(bad, stream, len);
    bad[l.uart[1] + 11] = UART_FIFO_SIZE + 1;
    expect_refused(d, bad, len, "rx count");
    /* Port 1's held bytes above what the host-end buffer holds. */
    memcpy(bad, stream, len);
    bad[l.uart[1] + UART_STATE_FIXED - 3] = 0x20; /* 8196 */
    expect_refused(d, bad, len, "out count");
    /* lib/pci's blob of another device: the vendor ID differs. */
    memcpy(bad, stream, len);
    bad[l.pci + PCI_BLOB_CONFIG] ^= 0xff;
    expect_refused(d, bad, len, "pci blob");
    /* Bytes after the last port. */
    memcpy(bad, stream, len);
    memcpy(&sec_len, bad + STATE_OFF - 8, 8);
    sec_len++;
    memcpy(bad + STATE_OFF - 8, &sec_len, 8);
    memmove(bad + l.end + 1, bad + l.end, SEC_SIZE);
    bad[l.end] = 0;
    expect_refused(d, bad, len + 1, "trailing");

    /* The destination's bytes, not the source's, reach its clients. */
    g0 = host_connect(F.end[1][0]);
    g1 = host_connect(F.end[1][1]);
    host_expect(g0, (const uint8_t *)"p0", 2);
    host_expect(g1, (const uint8_t *)"p1own", 5);
    host_quiet(g0);
    host_quiet(g1);
    /* And the good stream still loads. */
    set_state(d, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(d, stream, len), 0);
    set_state(d, S_STOP);
    set_state(d, S_RUNNING);
    /* The source had no host clients, this card has: the lines come up
     * (the modem inputs are the host end's, not the state's). */
    assert_int_equal(rd(d, 0, UART_MSR), 0xbb);
    assert_int_equal(rd(d, 1, UART_MSR), 0xbb);
    host_expect(g0, (const uint8_t *)"SRC0", 4);
    host_expect(g1, (const uint8_t *)"SRC1", 4);
    close(g0);
    close(g1);
    umdev_client_destroy(c);
    umdev_client_destroy(d);
    free(stream);
    free(bad);
}

/*
 * A host client that sent more than a save drains: the state carries
 * SERIAL_MIG_IN_MAX bytes of it, in order after the RX FIFO's, the rest
 * stays in the socket (logged), and the largest state still loads.
 */
static void
test_drain_bound(void **state)
{
    enum { SENT = SERIAL_MIG_IN_MAX + 40000 };
    struct umdev_client *c = connect_card(0), *d = connect_card(1);
    uint8_t *data = malloc(SENT), *stream = malloc(STREAM_CAP);
    struct layout l;
    size_t len, off = 0;
    ssize_t n;
    int h0, unread = 0, i;

    (void)state;
    assert_non_null(data);
    assert_non_null(stream);
    for (i = 0; i < SENT; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 9));
    wr(c, 0, UART_LCR, 0x03);
    wr(c, 0, UART_FCR, UART_FCR_ENABLE_FIFO);
    h0 = host_connect(F.end[0][0]);
    wait_carrier(c, 0);
    assert_int_equal(fcntl(h0, F_SETFL, O_NONBLOCK), 0);
    while (off < SENT && (n = write(h0, data + off, SENT - off)) > 0)
        off += (size_t)n;
    assert_int_equal(off, SENT); /* the socket buffers hold it all */
    /* The receiver fills; the rest waits in the socket. */
    for (i = 0; i < HARNESS_TIMEOUT_MS && !(rd(c, 0, UART_LSR) & UART_LSR_DR);
         i++)
        usleep(1000);
    usleep(20000);
    kit_log_watch(&F.log, "drained for migration");
    set_state(c, S_STOP_COPY);
    len = read_stream(c, stream);
    assert_int_equal(F.log.watched, 1);
    kit_log_watch(&F.log, NULL);
    parse(stream, len, &l);
    assert_int_equal(stream[l.uart[0] + 11], UART_FIFO_SIZE);
    assert_memory_equal(stream + l.uart[0] + 12, data, UART_FIFO_SIZE);
    assert_int_equal(le32(stream + l.in[0]), SERIAL_MIG_IN_MAX);
    assert_memory_equal(stream + l.in[0] + 4, data + UART_FIFO_SIZE,
                        SERIAL_MIG_IN_MAX);
    assert_int_equal(ioctl(h0, SIOCOUTQ, &unread), 0);
    assert_true(unread > 0);
    set_state(d, S_RESUMING);
    assert_int_equal(umdev_client_mig_write(d, stream, len), 0);
    set_state(d, S_STOP);
    set_state(d, S_RUNNING);
    guest_expect(d, 0, data, 2 * UART_FIFO_SIZE);
    close(h0);
    umdev_client_destroy(c);
    umdev_client_destroy(d);
    free(data);
    free(stream);
}

/* The handover, run on the server thread (no cmocka there). */
struct ho {
    struct umdev_handover *pkg;
    struct serial *card;
    struct umdev_server *srv;
    int rc;
};

static void
ho_save(void *arg)
{
    struct ho *h = arg;

    h->rc = umdev_server_handover_save(F.ks.devs[0].srv, &h->pkg);
}

/* What a restarted worker does: build the card with restoring set and
 * the same configuration, restore, and the old one lets go. */
static void
ho_restore(void *arg)
{
    struct ho *h = arg;
    struct serial_config cfg = { .name = "src", .restoring = true };

    for (unsigned int p = 0; p < SERIAL_NR_PORTS; p++)
        cfg.port[p].path = F.end[0][p];
    h->rc = serial_create(F.ks.loop, &cfg, &F.log.logger, &h->card);
    if (h->rc == 0)
        h->rc = umdev_server_handover_restore(serial_dev(h->card), F.ks.loop,
                                              h->pkg, &h->srv);
    if (h->rc == 0) {
        umdev_server_handover_commit(F.ks.devs[0].srv);
        F.ks.devs[0].srv = NULL;
    } else if (umdev_server_handover_abort(F.ks.devs[0].srv) < 0) {
        h->rc = -EIO;
    }
    umdev_handover_free(h->pkg);
    h->pkg = NULL;
}

static void
ho_destroy(void *arg)
{
    struct ho *h = arg;

    umdev_server_destroy(h->srv);
    serial_destroy(h->card); /* removes the host ends' paths, now its own */
    /* The vfio-user socket's path stays its creator's (umdevd's; here
     * the kit's, whose server was handed over). */
    unlink(F.ks.devs[0].path);
}

/*
 * A handover mid-transfer: port 0's host client connected with bytes in
 * the RX FIFO, in its socket, and sent after the save; port 1 holding 4
 * KiB and its TX FIFO for a client that has not come. The VMM's
 * connection and the host client's go on with the new card, which reads
 * back the same registers (the modem lines did not move: the client
 * never left), and every byte arrives once, in order; port 1's first
 * client connects at the same path, the same socket file.
 */
static void
test_handover_mid_transfer(void **state)
{
    enum { IN0 = 150, OUT1 = UART_OUT_SIZE + 10, BIG = 48 * 1024 };
    struct umdev_client *c = connect_card(0);
    uint8_t in0[IN0], *out1 = malloc(OUT1), *big = malloc(BIG);
    size_t pkg_len;
    struct ho h = { .rc = -1 };
    struct stat st_before[SERIAL_NR_PORTS], st;
    struct regs before, after;
    int efd = efd_new(), h0, g1;
    size_t i;

    (void)state;
    assert_non_null(out1);
    assert_non_null(big);
    for (i = 0; i < IN0; i++)
        in0[i] = (uint8_t)(i * 5 + 1);
    for (i = 0; i < BIG; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 9));
    for (i = 0; i < OUT1; i++)
        out1[i] = (uint8_t)(i ^ (i >> 7));
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        assert_int_equal(stat(F.end[0][i], &st_before[i]), 0);
    irq_trigger(c, UMDEV_PCI_INTX_IRQ, 0, efd);
    wr(c, 0, UART_LCR, 0x03);
    wr(c, 0, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
    wr(c, 0, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    wr(c, 1, UART_LCR, 0x03);
    wr(c, 1, UART_FCR, UART_FCR_ENABLE_FIFO);
    h0 = host_connect(F.end[0][0]);
    wait_carrier(c, 0);
    (void)rd(c, 0, UART_MSR);
    wr(c, 0, UART_IER, UART_IER_RDI | UART_IER_RLSI);
    guest_send(c, 0, (const uint8_t *)"hello", 5);
    host_expect(h0, (const uint8_t *)"hello", 5);
    assert_int_equal(write(h0, in0, 100), 100);
    guest_expect(c, 0, in0, 3);
    for (i = 0; i < HARNESS_TIMEOUT_MS &&
                (rd(c, 0, UART_IIR) & UART_IIR_ID) != UART_IIR_RDI;
         i++)
        usleep(1000);
    assert_true(efd_wait(efd, HARNESS_TIMEOUT_MS) >= 1);
    guest_send(c, 1, out1, OUT1);
    assert_int_equal(rd(c, 1, UART_LSR) & UART_LSR_THRE, 0);
    read_regs(c, &before);
    /* Waiting in the connection at the save: it moves with the socket,
     * not in the device's state (a migration would drain it into the
     * state, 64 KiB a port at most). */
    assert_int_equal(write(h0, big, BIG), BIG);

    assert_int_equal(kit_serve_call(&F.ks, ho_save, &h, HARNESS_TIMEOUT_MS), 0);
    assert_int_equal(h.rc, 0);
    (void)umdev_handover_blob(h.pkg, &pkg_len);
    assert_true(pkg_len < BIG / 4);
    /* Sent after the save: it waits in the connection, which moves. */
    assert_int_equal(write(h0, in0 + 100, IN0 - 100), IN0 - 100);
    assert_int_equal(kit_serve_call(&F.ks, ho_restore, &h, HARNESS_TIMEOUT_MS),
                     0);
    assert_int_equal(h.rc, 0);

    read_regs(c, &after);
    for (i = 0; i < SERIAL_NR_PORTS; i++)
        assert_memory_equal(before.v[i], after.v[i], sizeof(before.v[i]));
    guest_expect(c, 0, in0 + 3, 100 - 3);
    guest_expect(c, 0, big, BIG);
    guest_expect(c, 0, in0 + 100, IN0 - 100);
    assert_int_equal(write(h0, "after", 5), 5);
    guest_expect(c, 0, (const uint8_t *)"after", 5);
    guest_send(c, 0, (const uint8_t *)"xyz", 3);
    host_expect(h0, (const uint8_t *)"xyz", 3);
    host_quiet(h0);
    /* Port 1: the same socket file, and its first client gets what the
     * guest wrote before the handover. */
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        assert_int_equal(stat(F.end[0][i], &st), 0);
        assert_int_equal(st.st_ino, st_before[i].st_ino);
    }
    g1 = host_connect(F.end[0][1]);
    host_expect(g1, out1, OUT1);
    for (i = 0; i < HARNESS_TIMEOUT_MS && !(rd(c, 1, UART_LSR) & UART_LSR_THRE);
         i++)
        usleep(1000);
    guest_send(c, 1, (const uint8_t *)"tail", 4);
    host_expect(g1, (const uint8_t *)"tail", 4);

    close(h0);
    close(g1);
    close(efd);
    umdev_client_destroy(c);
    assert_int_equal(kit_serve_call(&F.ks, ho_destroy, &h, HARNESS_TIMEOUT_MS),
                     0);
    free(out1);
    free(big);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_stop_is_quiet, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_move_mid_transfer, fx_setup,
                                    fx_teardown),
    cmocka_unit_test_setup_teardown(test_corrupt_state_refused, fx_setup,
                                    fx_teardown),
    cmocka_unit_test_setup_teardown(test_drain_bound, fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(test_handover_mid_transfer, fx_setup,
                                    fx_teardown),
};

HARNESS_MAIN("func.serial_migration", tests)
