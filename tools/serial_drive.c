/*
 * umdev-serial-drive: act as a VMM plus a polled 16550 guest driver for a
 * serial subdevice and move real traffic through it. For each port with a
 * host end it programs the UART (8N1, FIFOs on), then moves a pattern
 * guest -> host (THR writes over vfio-user, bytes read from the host-end
 * socket) and host -> guest (bytes written to the host end, RBR reads
 * over vfio-user), checks both byte-exact and prints the throughput.
 *
 *   umdev-serial-drive [--bytes N] [--timeout S] SOCKET HOST0 [HOST1]
 *
 * Exit status: 0 all data verified, 1 a mismatch or error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "umdev/client.h"

#define PROG "umdev-serial-drive"
#define NR_PORTS 2
#define FIFO_SIZE 16

/* 16550 register offsets and bits (PC16550D datasheet names). */
#define UART_RX 0  /* RBR, DLAB=0, read */
#define UART_TX 0  /* THR, DLAB=0, write */
#define UART_DLL 0 /* DLAB=1 */
#define UART_DLM 1 /* DLAB=1 */
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_FCR_ENABLE_FIFO 0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_CLEAR_XMIT 0x04
#define UART_FCR_TRIGGER_14 0xc0
#define UART_LCR_DLAB 0x80
#define UART_LCR_WLEN8 0x03
#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT2 0x08
#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_THRE 0x20

struct port {
    unsigned int index; /* = its BAR */
    int host_fd;
    uint8_t *tx_pattern, *rx_pattern; /* guest->host, host->guest */
    uint8_t *got_host, *got_guest;
    size_t tx_done, host_got;  /* guest->host: sent by guest, received */
    size_t host_sent, rx_done; /* host->guest: sent by host, read by guest */
    double g2h_s, h2g_s;
};

static size_t total_bytes = 16384;
static double timeout_s = 60;

static __attribute__((noreturn, format(printf, 1, 2))) void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed | 1;
    size_t i;

    /* xorshift32: deterministic, so a mismatch report can be reproduced. */
    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static uint8_t
reg_read(struct umdev_client *c, struct port *p, uint64_t reg)
{
    uint8_t v;
    int rc = umdev_client_region_read(c, p->index, reg, &v, 1);

    if (rc < 0)
        die("port%u: read of register %u: %s", p->index, (unsigned)reg,
            strerror(-rc));
    return v;
}

static void
reg_write(struct umdev_client *c, struct port *p, uint64_t reg, uint8_t v)
{
    int rc = umdev_client_region_write(c, p->index, reg, &v, 1);

    if (rc < 0)
        die("port%u: write of register %u: %s", p->index, (unsigned)reg,
            strerror(-rc));
}

static int
connect_host_end(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        die("%s: path too long for a UNIX socket", path);
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("cannot connect to host end %s: %s", path, strerror(errno));
    return fd;
}

/* 8N1 at the fastest divisor, FIFOs on and cleared, no interrupts: this
 * driver polls LSR. */
static void
uart_setup(struct umdev_client *c, struct port *p)
{
    reg_write(c, p, UART_IER, 0);
    reg_write(c, p, UART_LCR, UART_LCR_DLAB);
    reg_write(c, p, UART_DLL, 1);
    reg_write(c, p, UART_DLM, 0);
    reg_write(c, p, UART_LCR, UART_LCR_WLEN8);
    reg_write(c, p, UART_FCR,
              UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR |
                  UART_FCR_CLEAR_XMIT | UART_FCR_TRIGGER_14);
    reg_write(c, p, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    /* Anything left in the receiver from before is not ours. */
    while (reg_read(c, p, UART_LSR) & UART_LSR_DR)
        reg_read(c, p, UART_RX);
}

/* Take whatever the host end has for us, without blocking. */
static void
host_drain(struct port *p)
{
    while (p->host_got < total_bytes) {
        ssize_t n = read(p->host_fd, p->got_host + p->host_got,
                         total_bytes - p->host_got);

        if (n > 0) {
            p->host_got += (size_t)n;
            continue;
        }
        if (n == 0)
            die("port%u: host end closed", p->index);
        if (errno == EAGAIN || errno == EINTR)
            return;
        die("port%u: host end read: %s", p->index, strerror(errno));
    }
}

static void
guest_to_host(struct umdev_client *c, struct port *p)
{
    double t0 = now_s();

    while (p->host_got < total_bytes) {
        if (now_s() - t0 > timeout_s)
            die("port%u: guest->host stalled at %zu of %zu bytes", p->index,
                p->host_got, total_bytes);
        if (p->tx_done < total_bytes &&
            (reg_read(c, p, UART_LSR) & UART_LSR_THRE)) {
            /* THRE with FIFOs on: the whole transmit FIFO is free. */
            size_t n = total_bytes - p->tx_done;
            size_t i;

            if (n > FIFO_SIZE)
                n = FIFO_SIZE;
            for (i = 0; i < n; i++)
                reg_write(c, p, UART_TX, p->tx_pattern[p->tx_done + i]);
            p->tx_done += n;
        }
        host_drain(p);
        if (p->tx_done == total_bytes && p->host_got < total_bytes) {
            struct pollfd pfd = { .fd = p->host_fd, .events = POLLIN };

            poll(&pfd, 1, 100);
        }
    }
    p->g2h_s = now_s() - t0;
    if (memcmp(p->got_host, p->tx_pattern, total_bytes) != 0)
        die("port%u: guest->host data differs", p->index);
}

static void
host_to_guest(struct umdev_client *c, struct port *p)
{
    double t0 = now_s();

    while (p->rx_done < total_bytes) {
        uint8_t lsr;

        if (now_s() - t0 > timeout_s)
            die("port%u: host->guest stalled at %zu of %zu bytes", p->index,
                p->rx_done, total_bytes);
        if (p->host_sent < total_bytes) {
            ssize_t n = write(p->host_fd, p->rx_pattern + p->host_sent,
                              total_bytes - p->host_sent);

            if (n > 0)
                p->host_sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                die("port%u: host end write: %s", p->index, strerror(errno));
        }
        lsr = reg_read(c, p, UART_LSR);
        if (lsr & UART_LSR_OE)
            die("port%u: receiver overrun: a byte was lost", p->index);
        while ((lsr & UART_LSR_DR) && p->rx_done < total_bytes) {
            p->got_guest[p->rx_done++] = reg_read(c, p, UART_RX);
            lsr = reg_read(c, p, UART_LSR);
        }
    }
    p->h2g_s = now_s() - t0;
    if (memcmp(p->got_guest, p->rx_pattern, total_bytes) != 0)
        die("port%u: host->guest data differs", p->index);
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [--bytes N] [--timeout S] SOCKET HOST0 [HOST1]\n"
            "\n"
            "Drive a serial subdevice (devices/serial) as a VMM with a polled\n"
            "16550 driver: N bytes (default 16384) each way through every\n"
            "port whose host-end socket is given, verified byte-exact.\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "bytes", required_argument, NULL, 'b' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct port ports[NR_PORTS];
    struct umdev_client *c;
    unsigned int i, nports;
    char *end;
    int ch, rc;

    while ((ch = getopt_long(argc, argv, "b:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            errno = 0;
            total_bytes = strtoul(optarg, &end, 0);
            if (errno != 0 || *end != '\0' || total_bytes == 0 ||
                total_bytes > (64u << 20)) {
                fprintf(stderr, PROG ": --bytes: 1..67108864, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 't':
            timeout_s = strtod(optarg, &end);
            if (*end != '\0' || timeout_s <= 0) {
                fprintf(stderr, PROG ": --timeout: seconds > 0, not '%s'\n",
                        optarg);
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
    nports = (unsigned int)(argc - optind - 1);
    if (argc - optind < 2 || nports > NR_PORTS) {
        usage(stderr);
        return 2;
    }
    rc = umdev_client_connect(argv[optind], NULL, &c);
    if (rc < 0)
        die("cannot connect to %s: %s", argv[optind], strerror(-rc));
    for (i = 0; i < nports; i++) {
        struct port *p = &ports[i];

        memset(p, 0, sizeof(*p));
        p->index = i;
        p->tx_pattern = malloc(total_bytes);
        p->rx_pattern = malloc(total_bytes);
        p->got_host = malloc(total_bytes);
        p->got_guest = malloc(total_bytes);
        if (!p->tx_pattern || !p->rx_pattern || !p->got_host ||
            !p->got_guest)
            die("out of memory");
        fill_pattern(p->tx_pattern, total_bytes, 0x5eed0000u + 2 * i);
        fill_pattern(p->rx_pattern, total_bytes, 0x5eed0001u + 2 * i);
        p->host_fd = connect_host_end(argv[optind + 1 + i]);
        uart_setup(c, p);
        guest_to_host(c, p);
        host_to_guest(c, p);
        printf("port%u: %zu bytes guest->host in %.2f s (%.0f B/s), "
               "%zu bytes host->guest in %.2f s (%.0f B/s), verified\n",
               i, total_bytes, p->g2h_s, (double)total_bytes / p->g2h_s,
               total_bytes, p->h2g_s, (double)total_bytes / p->h2g_s);
        close(p->host_fd);
        free(p->tx_pattern);
        free(p->rx_pattern);
        free(p->got_host);
        free(p->got_guest);
    }
    umdev_client_destroy(c);
    return 0;
}
