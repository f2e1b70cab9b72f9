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
#include <float.h>
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
#include <unistd.h>

#include "tool.h"
#include "uart_driver.h"
#include "umdev/client.h"

#define PROG "umdev-serial-drive"
#define NR_PORTS 2

struct port {
    unsigned int index; /* = its BAR */
    struct umdev_client *c;
    struct uart_driver drv; /* registers over vfio-user */
    int host_fd;
    uint8_t *tx_pattern, *rx_pattern; /* guest->host, host->guest */
    uint8_t *got_host, *got_guest;
    size_t tx_done, host_got;  /* guest->host: sent by guest, received */
    size_t host_sent, rx_done; /* host->guest: sent by host, read by guest */
    double g2h_s, h2g_s;
};

static size_t total_bytes = 16384;
static double timeout_s = 60;

#define die(...) tool_die(PROG, __VA_ARGS__)

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

/* The driver's register accessors: the port's BAR over vfio-user. */
static int
reg_read(void *opaque, unsigned int reg, uint8_t *v)
{
    struct port *p = opaque;

    return umdev_client_region_read(p->c, p->index, reg, v, 1);
}

static int
reg_write(void *opaque, unsigned int reg, uint8_t v)
{
    struct port *p = opaque;

    return umdev_client_region_write(p->c, p->index, reg, &v, 1);
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

/* @rc of the driver, or die saying what the driver was doing. */
static long
driver_ok(const struct port *p, long rc, const char *what)
{
    if (rc < 0)
        die("port%u: %s: %s", p->index, what, strerror((int)-rc));
    return rc;
}

static void
guest_to_host(struct port *p)
{
    double t0 = tool_now_s();

    while (p->host_got < total_bytes) {
        if (tool_now_s() - t0 > timeout_s)
            die("port%u: guest->host stalled at %zu of %zu bytes", p->index,
                p->host_got, total_bytes);
        if (p->tx_done < total_bytes)
            p->tx_done += (size_t)driver_ok(
                p,
                uart_driver_send(&p->drv, p->tx_pattern + p->tx_done,
                                 total_bytes - p->tx_done),
                "transmit");
        host_drain(p);
        if (p->tx_done == total_bytes && p->host_got < total_bytes) {
            struct pollfd pfd = { .fd = p->host_fd, .events = POLLIN };

            poll(&pfd, 1, 100);
        }
    }
    p->g2h_s = tool_now_s() - t0;
    if (memcmp(p->got_host, p->tx_pattern, total_bytes) != 0)
        die("port%u: guest->host data differs", p->index);
}

static void
host_to_guest(struct port *p)
{
    double t0 = tool_now_s();

    while (p->rx_done < total_bytes) {
        uint8_t lsr;
        long n;

        if (tool_now_s() - t0 > timeout_s)
            die("port%u: host->guest stalled at %zu of %zu bytes", p->index,
                p->rx_done, total_bytes);
        if (p->host_sent < total_bytes) {
            ssize_t w = write(p->host_fd, p->rx_pattern + p->host_sent,
                              total_bytes - p->host_sent);

            if (w > 0)
                p->host_sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                die("port%u: host end write: %s", p->index, strerror(errno));
        }
        n = driver_ok(p,
                      uart_driver_recv(&p->drv, p->got_guest + p->rx_done,
                                       total_bytes - p->rx_done, &lsr),
                      "receive");
        if (lsr & UART_LSR_OE)
            die("port%u: receiver overrun: a byte was lost", p->index);
        p->rx_done += (size_t)n;
    }
    p->h2g_s = tool_now_s() - t0;
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
    long bytes;
    int ch, rc;

    while ((ch = getopt_long(argc, argv, "b:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            if (!tool_parse_long(optarg, 0, 1, 64l << 20, &bytes)) {
                fprintf(stderr, PROG ": --bytes: 1..67108864, not '%s'\n",
                        optarg);
                return 2;
            }
            total_bytes = (size_t)bytes;
            break;
        case 't':
            if (!tool_parse_double(optarg, 0, DBL_MAX, &timeout_s) ||
                timeout_s == 0) {
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
        p->c = c;
        p->drv = (struct uart_driver){ reg_read, reg_write, p };
        p->tx_pattern = malloc(total_bytes);
        p->rx_pattern = malloc(total_bytes);
        p->got_host = malloc(total_bytes);
        p->got_guest = malloc(total_bytes);
        if (!p->tx_pattern || !p->rx_pattern || !p->got_host || !p->got_guest)
            die("out of memory");
        fill_pattern(p->tx_pattern, total_bytes, 0x5eed0000u + 2 * i);
        fill_pattern(p->rx_pattern, total_bytes, 0x5eed0001u + 2 * i);
        p->host_fd = connect_host_end(argv[optind + 1 + i]);
        /* 8N1, FIFOs on and cleared, polled: no interrupts. */
        driver_ok(p, uart_driver_setup(&p->drv), "setup");
        guest_to_host(p);
        host_to_guest(p);
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
