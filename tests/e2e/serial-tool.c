/*
 * serial-tool: the guest-side helper of tests/e2e/serial.sh, linked
 * statically and put into the initramfs. Busybox cannot set MCR loopback
 * (TIOCM_LOOP), time a transfer below one second, or count interrupts
 * around a single direction of a transfer; this does, and nothing more.
 *
 *   serial-tool gen SEED LEN
 *       the LEN-byte test pattern of SEED on stdout
 *   serial-tool send TTY IRQ SEED LEN
 *       write the pattern to TTY and wait until it has left the UART
 *   serial-tool recv TTY IRQ LEN OUTFILE CTL LABEL
 *       open TTY, write "READY LABEL" to the control tty CTL (so the host
 *       starts sending), read LEN bytes into OUTFILE
 *   serial-tool loop TTY IRQ SEED LEN
 *       set MCR loopback, check the modem inputs follow MCR, write the
 *       pattern and read it back, clear loopback, send the END token
 *   serial-tool rtt IOBASE N
 *       time N reads and N writes of the scratch register (SCR) of the
 *       UART at I/O port IOBASE: each is one trapped access, so this is
 *       the cost of one register access as the 8250 driver pays it
 *
 * The READY line travels on a separate control port (QEMU's own second
 * ISA UART, another interrupt line) so that every interrupt counted while
 * receiving belongs to the received bytes, not to a handshake.
 *
 * TTY must be in raw mode (stty) already: this checks it, so a wrong stty
 * line shows up as such rather than as corrupted bytes. IRQ is the port's
 * interrupt number; each transfer reports how many interrupts it took
 * (summed over CPUs from /proc/interrupts). Every result goes to stdout
 * as one "key=value ..." line; errors go to stderr and give exit status 1
 * (2 for usage errors).
 *
 * The pattern is xorshift32 (Marsaglia 13/17/5) from a scrambled seed,
 * one byte (bits 31:24) per step; tests/e2e/serial-host.py implements it
 * separately, so the two sides only agree if both are right.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Linux's modem-control bit for MCR.LOOP: in <asm-generic/termios.h>,
 * which cannot be included beside glibc's <termios.h>. */
#ifndef TIOCM_LOOP
#define TIOCM_LOOP 0x8000
#endif

/* Ends the loopback phase on the port itself (serial-host.py). */
#define END_TOKEN "\nUMDEV-E2E-END\n"

/* A transfer that moves no byte for this long is stuck. Progress, not
 * total time, is bounded: a loaded host slows TCG down a lot, and the
 * whole run is bounded by serial.sh anyway. */
#define IDLE_TIMEOUT_MS 15000
/* Largest LEN accepted: the whole pattern is kept in memory. */
#define MAX_LEN (16u << 20)

/* The modem inputs the host end drives while a client is connected
 * (devices/serial/README.md, "Modem lines"). */
#define HOST_LINES (TIOCM_CAR | TIOCM_DSR | TIOCM_CTS)

static const char *prog = "serial-tool";

#include "guest-tool.h" /* err(), now_ns() */

static uint32_t
pattern_state(uint32_t seed)
{
    /* Scramble so neighbouring seeds give unrelated streams; xorshift
     * never leaves 0, so 0 must not be a state. */
    uint32_t x = seed * 0x9e3779b1u + 0x7f4a7c15u;

    return x != 0 ? x : 1;
}

static void
pattern_fill(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = pattern_state(seed);
    size_t i;

    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)(x >> 24);
    }
}

static int
ms_left(uint64_t deadline)
{
    uint64_t t = now_ns();

    return t >= deadline ? 0 : (int)((deadline - t) / 1000000u) + 1;
}

/* Bytes per second of @n bytes in @ns nanoseconds. */
static uint64_t
rate(uint64_t n, uint64_t ns)
{
    return ns ? n * 1000000000u / ns : 0;
}

static bool
parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Interrupts of line @irq so far, summed over CPUs; -1 if not listed. */
static long long
irq_count(uint32_t irq)
{
    char want[16], line[1024];
    long long sum = -1;
    FILE *f = fopen("/proc/interrupts", "r");

    if (f == NULL)
        return -1;
    snprintf(want, sizeof(want), "%" PRIu32 ":", irq);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *p = line, *end;

        while (*p == ' ')
            p++;
        if (strncmp(p, want, strlen(want)) != 0)
            continue;
        p += strlen(want);
        /* One count per CPU column, then the chip and handler names. */
        sum = 0;
        for (;;) {
            long long v = strtoll(p, &end, 10);

            if (end == p)
                break;
            sum += v;
            p = end;
        }
        break;
    }
    fclose(f);
    return sum;
}

/* Open @tty without waiting for DCD (a missing host end would hang a
 * blocking open) and check it is raw 8N1 at 115200. */
static int
open_raw(const char *tty)
{
    struct termios t;
    int fd = open(tty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        err("open %s: %s", tty, strerror(errno));
        return -1;
    }
    if (tcgetattr(fd, &t) < 0) {
        err("tcgetattr %s: %s", tty, strerror(errno));
        goto fail;
    }
    if ((t.c_lflag & (ICANON | ECHO | ISIG)) ||
        (t.c_iflag &
         (ISTRIP | ICRNL | INLCR | IGNCR | IXON | IXOFF | PARMRK | INPCK)) ||
        (t.c_oflag & OPOST) || (t.c_cflag & CSIZE) != CS8 ||
        (t.c_cflag & (PARENB | CRTSCTS)) || !(t.c_cflag & CREAD) ||
        t.c_cc[VMIN] != 1 || cfgetospeed(&t) != B115200 ||
        cfgetispeed(&t) != B115200) {
        err("%s is not raw 8N1 115200 without flow control (iflag %#o "
            "oflag %#o cflag %#o lflag %#o min %u): check the stty line",
            tty, t.c_iflag, t.c_oflag, t.c_cflag, t.c_lflag, t.c_cc[VMIN]);
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

static int
get_mctrl(int fd, int *bits)
{
    if (ioctl(fd, TIOCMGET, bits) < 0) {
        err("TIOCMGET: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int
set_mctrl(int fd, int bits, bool on)
{
    if (ioctl(fd, on ? TIOCMBIS : TIOCMBIC, &bits) < 0) {
        err("%s %#x: %s", on ? "TIOCMBIS" : "TIOCMBIC", bits, strerror(errno));
        return -1;
    }
    return 0;
}

/* The host end must be present: CD, DSR and CTS up, RI down. */
static int
check_host_lines(int fd, const char *when)
{
    int m;

    if (get_mctrl(fd, &m) < 0)
        return -1;
    if ((m & (HOST_LINES | TIOCM_RNG)) != HOST_LINES) {
        err("%s: modem inputs %#x: expected CD, DSR and CTS (%#x) without "
            "RI from the connected host end",
            when, m, HOST_LINES);
        return -1;
    }
    return 0;
}

/*
 * Move bytes until @tx_len bytes of @tx are written and @rx_len bytes are
 * read into @rx, or none moves for IDLE_TIMEOUT_MS. *@t_first is the time
 * the first byte was read (0 if none). Return: bytes read, or -1 on an
 * I/O error (reported).
 */
static ssize_t
pump(int fd, const uint8_t *tx, size_t tx_len, uint8_t *rx, size_t rx_len,
     uint64_t *t_first)
{
    uint64_t deadline = now_ns() + IDLE_TIMEOUT_MS * 1000000ull;
    size_t done_tx = 0, done_rx = 0;
    struct pollfd p = { .fd = fd };
    ssize_t n;
    int ms;

    *t_first = 0;
    while (done_tx < tx_len || done_rx < rx_len) {
        ms = ms_left(deadline);
        if (ms == 0)
            break;
        p.events = (short)((done_tx < tx_len ? POLLOUT : 0) |
                           (done_rx < rx_len ? POLLIN : 0));
        n = poll(&p, 1, ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err("poll: %s", strerror(errno));
            return -1;
        }
        if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) {
            err("tty hung up or failed (revents %#x)", p.revents);
            return -1;
        }
        if ((p.revents & POLLIN) && done_rx < rx_len) {
            n = read(fd, rx + done_rx, rx_len - done_rx);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                err("read: %s", strerror(errno));
                return -1;
            }
            if (n > 0 && done_rx == 0)
                *t_first = now_ns();
            if (n > 0) {
                done_rx += (size_t)n;
                deadline = now_ns() + IDLE_TIMEOUT_MS * 1000000ull;
            }
        }
        if ((p.revents & POLLOUT) && done_tx < tx_len) {
            n = write(fd, tx + done_tx, tx_len - done_tx);
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                err("write: %s", strerror(errno));
                return -1;
            }
            if (n > 0) {
                done_tx += (size_t)n;
                deadline = now_ns() + IDLE_TIMEOUT_MS * 1000000ull;
            }
        }
    }
    if (done_tx < tx_len)
        err("stuck for %d ms: wrote %zu of %zu bytes", IDLE_TIMEOUT_MS, done_tx,
            tx_len);
    return (ssize_t)done_rx;
}

/* Write everything and wait until the UART has sent it (TEMT). */
static int
send_all(int fd, const uint8_t *buf, size_t len)
{
    uint64_t unused;

    if (pump(fd, buf, len, NULL, 0, &unused) < 0)
        return -1;
    if (tcdrain(fd) < 0) {
        err("tcdrain: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static uint8_t *
alloc_pattern(uint32_t seed, size_t len)
{
    uint8_t *buf = malloc(len ? len : 1);

    if (buf == NULL)
        err("out of memory for %zu bytes", len);
    else
        pattern_fill(buf, len, seed);
    return buf;
}

static int
write_file(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL && fwrite(buf, 1, len, f) == len;

    if (f != NULL && fclose(f) != 0)
        ok = false;
    if (!ok) {
        err("writing %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * What send, recv and loop share: the port, opened raw with the host end
 * present, and the clock and the interrupt count around the transfer.
 */
struct run {
    int fd; /* -1: not open */
    uint32_t irq;
    long long irq0, irq1;
    uint64_t t0, t1;
};

/* Open @tty and check the host lines (@when names the moment in the
 * message). Return: 0, or -1 after saying why. */
static int
run_open(struct run *r, const char *tty, uint32_t irq, const char *when)
{
    r->irq = irq;
    r->fd = open_raw(tty);
    return r->fd < 0 || check_host_lines(r->fd, when) < 0 ? -1 : 0;
}

static void
run_start(struct run *r)
{
    r->irq0 = irq_count(r->irq);
    r->t0 = now_ns();
}

static void
run_stop(struct run *r)
{
    r->t1 = now_ns();
    r->irq1 = irq_count(r->irq);
}

/* Interrupts the transfer took; -1 if /proc/interrupts could not say. */
static long long
run_irqs(const struct run *r)
{
    return r->irq0 < 0 || r->irq1 < 0 ? -1 : r->irq1 - r->irq0;
}

/* Close the port, free the buffers (either may be NULL), return @rc. */
static int
run_end(struct run *r, void *buf, void *buf2, int rc)
{
    if (r->fd >= 0)
        close(r->fd);
    free(buf);
    free(buf2);
    return rc;
}

static int
cmd_gen(uint32_t seed, size_t len)
{
    uint8_t *buf = alloc_pattern(seed, len);
    int rc = 1;

    if (buf == NULL)
        return 1;
    if (fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0)
        rc = 0;
    else
        err("writing the pattern: %s", strerror(errno));
    free(buf);
    return rc;
}

static int
cmd_send(const char *tty, uint32_t irq, uint32_t seed, size_t len)
{
    uint8_t *buf = alloc_pattern(seed, len);
    struct run r = { .fd = -1 };

    if (buf == NULL || run_open(&r, tty, irq, "before sending") < 0)
        return run_end(&r, buf, NULL, 1);
    run_start(&r);
    if (send_all(r.fd, buf, len) < 0)
        return run_end(&r, buf, NULL, 1);
    run_stop(&r);
    printf("send bytes=%zu ns=%" PRIu64 " bytes_per_s=%" PRIu64 " irqs=%lld\n",
           len, r.t1 - r.t0, rate(len, r.t1 - r.t0), run_irqs(&r));
    return run_end(&r, buf, NULL, 0);
}

/* One line on the control tty; it must be out before we go on. */
static int
ctl_say(const char *ctl, const char *what, const char *label)
{
    char line[128];
    int fd, n, rc = -1;

    n = snprintf(line, sizeof(line), "%s %s\n", what, label);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        err("control line too long");
        return -1;
    }
    fd = open(ctl, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        err("open %s: %s", ctl, strerror(errno));
        return -1;
    }
    if (write(fd, line, (size_t)n) != n)
        err("write %s: %s", ctl, strerror(errno));
    else if (tcdrain(fd) < 0)
        err("tcdrain %s: %s", ctl, strerror(errno));
    else
        rc = 0;
    close(fd);
    return rc;
}

static int
cmd_recv(const char *tty, uint32_t irq, size_t len, const char *path,
         const char *ctl, const char *label)
{
    uint8_t *buf = malloc(len ? len : 1);
    struct run r = { .fd = -1 };
    uint64_t t_first;
    ssize_t got;

    if (buf == NULL) {
        err("out of memory for %zu bytes", len);
        return 1;
    }
    /* Open before announcing: the first open resets the FIFOs, and the
     * tty must be receiving before the host starts to send (there is no
     * flow control back to the host end in raw mode). */
    if (run_open(&r, tty, irq, "before receiving") < 0)
        return run_end(&r, buf, NULL, 1);
    run_start(&r);
    if (ctl_say(ctl, "READY", label) < 0)
        return run_end(&r, buf, NULL, 1);
    got = pump(r.fd, NULL, 0, buf, len, &t_first);
    run_stop(&r);
    if (got < 0 || write_file(path, buf, (size_t)got) < 0)
        return run_end(&r, buf, NULL, 1);
    /* The rate counts from the READY line: it includes the host's
     * reaction time, so it never overstates. */
    printf("recv bytes=%zd ns=%" PRIu64 " bytes_per_s=%" PRIu64
           " first_byte_ns=%" PRIu64 " irqs=%lld\n",
           got, r.t1 - r.t0, rate((uint64_t)got, r.t1 - r.t0),
           t_first ? t_first - r.t0 : 0, run_irqs(&r));
    if ((size_t)got != len) {
        err("stuck for %d ms: received %zd of %zu bytes", IDLE_TIMEOUT_MS, got,
            len);
        return run_end(&r, buf, NULL, 1);
    }
    return run_end(&r, buf, NULL, 0);
}

/* In loopback the modem inputs follow our outputs (CTS = RTS, DSR =
 * DTR): drop RTS and DTR in turn and see the inputs follow. The host end
 * keeps asserting CTS and DSR, so this tells loopback from a pass-through
 * that merely echoes. */
static int
check_loop_lines(int fd)
{
    static const struct {
        int out, in;
        const char *name;
    } pairs[] = {
        { TIOCM_RTS, TIOCM_CTS, "RTS->CTS" },
        { TIOCM_DTR, TIOCM_DSR, "DTR->DSR" },
    };
    size_t i;
    int m;

    for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        if (set_mctrl(fd, pairs[i].out, false) < 0 || get_mctrl(fd, &m) < 0)
            return -1;
        if (m & pairs[i].in) {
            err("loopback %s: input still set (mctrl %#x) with the output "
                "cleared",
                pairs[i].name, m);
            return -1;
        }
        if (set_mctrl(fd, pairs[i].out, true) < 0 || get_mctrl(fd, &m) < 0)
            return -1;
        if (!(m & pairs[i].in)) {
            err("loopback %s: input clear (mctrl %#x) with the output set",
                pairs[i].name, m);
            return -1;
        }
    }
    return 0;
}

static int
cmd_loop(const char *tty, uint32_t irq, uint32_t seed, size_t len)
{
    uint8_t *tx = alloc_pattern(seed, len), *rx = malloc(len ? len : 1);
    struct run r = { .fd = -1 };
    uint64_t t_first;
    ssize_t got;
    size_t i;

    if (tx == NULL || rx == NULL) {
        err("out of memory for %zu bytes", len);
        return run_end(&r, tx, rx, 1);
    }
    if (run_open(&r, tty, irq, "before loopback") < 0 ||
        set_mctrl(r.fd, TIOCM_LOOP, true) < 0 || check_loop_lines(r.fd) < 0)
        return run_end(&r, tx, rx, 1);
    run_start(&r);
    got = pump(r.fd, tx, len, rx, len, &t_first);
    run_stop(&r);
    if (got < 0)
        return run_end(&r, tx, rx, 1);
    if ((size_t)got != len) {
        err("loopback returned %zd of %zu bytes", got, len);
        return run_end(&r, tx, rx, 1);
    }
    for (i = 0; i < len && rx[i] == tx[i]; i++)
        ;
    if (i < len) {
        err("loopback byte %zu is %#04x, sent %#04x", i, rx[i], tx[i]);
        return run_end(&r, tx, rx, 1);
    }
    /* The host end must see this token and nothing before it: looped
     * bytes never leave the UART. */
    if (set_mctrl(r.fd, TIOCM_LOOP, false) < 0 ||
        check_host_lines(r.fd, "after loopback") < 0 ||
        send_all(r.fd, (const uint8_t *)END_TOKEN, strlen(END_TOKEN)) < 0)
        return run_end(&r, tx, rx, 1);
    printf("loop bytes=%zd ns=%" PRIu64 " bytes_per_s=%" PRIu64
           " irqs=%lld token_bytes=%zu\n",
           got, r.t1 - r.t0, rate((uint64_t)got, r.t1 - r.t0), run_irqs(&r),
           strlen(END_TOKEN));
    return run_end(&r, tx, rx, 0);
}

/* The scratch register: the 8250 driver leaves it alone once the port
 * is configured, so timing accesses to it disturbs nothing. */
#define UART_SCR_OFFSET 7

static int
cmd_rtt(uint32_t base, uint32_t n)
{
    uint64_t t0, t1, t2;
    uint32_t i;
    uint8_t v = 0;

    if (base > 0xfff8 || n == 0) {
        err("bad I/O base %#x or count %u", base, n);
        return 1;
    }
    if (ioperm(base, 8, 1) < 0) {
        err("ioperm %#x: %s", base, strerror(errno));
        return 1;
    }
    t0 = now_ns();
    for (i = 0; i < n; i++)
        v ^= inb((unsigned short)(base + UART_SCR_OFFSET));
    t1 = now_ns();
    for (i = 0; i < n; i++)
        outb((uint8_t)i, (unsigned short)(base + UART_SCR_OFFSET));
    t2 = now_ns();
    printf("rtt reads=%u read_ns=%" PRIu64 " writes=%u write_ns=%" PRIu64
           " last=%#x\n",
           n, (t1 - t0) / n, n, (t2 - t1) / n, v);
    return 0;
}

static int
usage(void)
{
    fprintf(stderr,
            "usage: %s gen SEED LEN\n"
            "       %s send TTY IRQ SEED LEN\n"
            "       %s recv TTY IRQ LEN OUTFILE CTL LABEL\n"
            "       %s loop TTY IRQ SEED LEN\n"
            "       %s rtt IOBASE N\n",
            prog, prog, prog, prog, prog);
    return 2;
}

int
main(int argc, char **argv)
{
    uint32_t irq, seed, len;

    if (argc >= 4 && !strcmp(argv[1], "gen") && argc == 4) {
        if (!parse_u32(argv[2], &seed) || !parse_u32(argv[3], &len) ||
            len > MAX_LEN)
            return usage();
        return cmd_gen(seed, len);
    }
    if (argc == 4 && !strcmp(argv[1], "rtt")) {
        if (!parse_u32(argv[2], &seed) || !parse_u32(argv[3], &len))
            return usage();
        return cmd_rtt(seed, len);
    }
    if (argc < 4 || !parse_u32(argv[3], &irq))
        return usage();
    if (!strcmp(argv[1], "send") || !strcmp(argv[1], "loop")) {
        if (argc != 6 || !parse_u32(argv[4], &seed) ||
            !parse_u32(argv[5], &len) || len > MAX_LEN)
            return usage();
        if (argv[1][0] == 's')
            return cmd_send(argv[2], irq, seed, len);
        return cmd_loop(argv[2], irq, seed, len);
    }
    if (!strcmp(argv[1], "recv")) {
        if (argc != 8 || !parse_u32(argv[4], &len) || len > MAX_LEN)
            return usage();
        return cmd_recv(argv[2], irq, len, argv[5], argv[6], argv[7]);
    }
    return usage();
}
