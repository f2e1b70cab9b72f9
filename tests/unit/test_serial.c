/*
 * Unit tests of the serial device (devices/serial/serial.c) in-process,
 * around the 16550A model that test_uart.c covers: config space, the I/O
 * BARs, INTx status, and bytes crossing the host-end UNIX socket with
 * flow control, the loop run by the test.
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kit_util.h"
#include "serial.h"
#include "uart.h"
#include "umdev/pci.h"
#include "umdev/profile.h"
#include "umdev/dev_testing.h"

struct glue {
    char dir[64];
    char path0[96];
    struct umdev_loop *loop;
    struct serial *s;
    struct umdev_dev *dev;
};

static int
glue_setup(void **state)
{
    struct serial_config cfg = { .name = "test-serial" };
    struct glue *g = calloc(1, sizeof(*g));

    assert_non_null(g);
    snprintf(g->dir, sizeof(g->dir), "/tmp/test_uart.XXXXXX");
    assert_non_null(mkdtemp(g->dir));
    snprintf(g->path0, sizeof(g->path0), "%s/port0", g->dir);
    cfg.port[0].path = g->path0;
    assert_int_equal(umdev_loop_create(&g->loop), 0);
    assert_int_equal(serial_create(g->loop, &cfg, NULL, &g->s), 0);
    g->dev = serial_dev(g->s);
    for (unsigned int i = 0; i < SERIAL_NR_PORTS; i++) {
        uint8_t lcr = 0x03; /* 8N1 */

        assert_int_equal(umdev_dev_region_rw(g->dev, i, UART_LCR, &lcr, 1,
                                             true),
                         0);
    }
    *state = g;
    return 0;
}

static int
glue_teardown(void **state)
{
    struct glue *g = *state;

    serial_destroy(g->s);
    umdev_loop_destroy(g->loop);
    assert_int_equal(access(g->path0, F_OK), -1); /* socket removed */
    rmdir(g->dir);
    free(g);
    return 0;
}

static void
bar_write(struct glue *g, unsigned int bar, unsigned int reg, uint8_t v)
{
    assert_int_equal(umdev_dev_region_rw(g->dev, bar, reg, &v, 1, true), 0);
}

static uint8_t
bar_read(struct glue *g, unsigned int bar, unsigned int reg)
{
    uint8_t v = 0;

    assert_int_equal(umdev_dev_region_rw(g->dev, bar, reg, &v, 1, false),
                     0);
    return v;
}

static uint32_t
cfg_read(struct glue *g, unsigned int off, size_t len)
{
    uint32_t v = 0;

    assert_int_equal(umdev_dev_region_rw(g->dev, UMDEV_PCI_CONFIG_REGION,
                                         off, &v, len, false),
                     0);
    return v;
}

static int
connect_port(const char *path)
{
    int fd = kit_connect_unix(path);

    assert_true(fd >= 0);
    return fd;
}

/* Run the loop until it has nothing to do for @ms milliseconds. */
static void
pump(struct glue *g, int ms)
{
    while (umdev_loop_run_once(g->loop, ms) > 0)
        ;
}

static size_t
read_avail(int fd, uint8_t *buf, size_t len, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    size_t got = 0;
    ssize_t n;

    while (got < len && poll(&pfd, 1, ms) == 1) {
        n = read(fd, buf + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static void
test_glue_config_space(void **state)
{
    struct glue *g = *state;
    struct umdev_dev_region_info ri;
    uint32_t v;

    assert_int_equal(cfg_read(g, PCI_VENDOR_ID, 2), SERIAL_VENDOR_ID);
    assert_int_equal(cfg_read(g, PCI_DEVICE_ID, 2), SERIAL_DEVICE_ID);
    assert_int_equal(cfg_read(g, PCI_CLASS_REVISION, 4) >> 8, SERIAL_CLASS);
    assert_int_equal(cfg_read(g, PCI_SUBSYSTEM_VENDOR_ID, 2),
                     SERIAL_SUBSYS_VENDOR_ID);
    assert_int_equal(cfg_read(g, PCI_SUBSYSTEM_ID, 2), SERIAL_SUBSYS_ID);
    assert_int_equal(cfg_read(g, PCI_INTERRUPT_PIN, 1), 1); /* INTA# */
    /* Two 8-byte I/O BARs, nothing else. */
    assert_int_equal(cfg_read(g, PCI_BASE_ADDRESS_0, 4),
                     PCI_BASE_ADDRESS_SPACE_IO);
    assert_int_equal(cfg_read(g, PCI_BASE_ADDRESS_1, 4),
                     PCI_BASE_ADDRESS_SPACE_IO);
    assert_int_equal(cfg_read(g, PCI_BASE_ADDRESS_2, 4), 0);
    v = 0xffffffff;
    assert_int_equal(umdev_dev_region_rw(g->dev, UMDEV_PCI_CONFIG_REGION,
                                         PCI_BASE_ADDRESS_0, &v, 4, true),
                     0);
    assert_int_equal(cfg_read(g, PCI_BASE_ADDRESS_0, 4), 0xfffffff9);
    assert_int_equal(umdev_dev_region_info(g->dev, UMDEV_PCI_BAR0_REGION,
                                           &ri),
                     0);
    assert_true(ri.present && ri.trapped && !ri.shm);
    assert_int_equal(ri.size, SERIAL_BAR_SIZE);
    assert_int_equal(umdev_dev_region_info(g->dev, UMDEV_PCI_BAR1_REGION,
                                           &ri),
                     0);
    assert_true(ri.present);
    assert_int_equal(umdev_dev_region_info(g->dev, UMDEV_PCI_BAR2_REGION,
                                           &ri),
                     0);
    assert_false(ri.present);
    assert_int_equal(umdev_dev_irq_count(g->dev, UMDEV_PCI_INTX_IRQ), 1);
    /* Register widths other than 1 byte are refused by the mediation
     * profile, and counted, before the model sees them. */
    v = 0;
    assert_int_equal(umdev_dev_region_rw(g->dev, UMDEV_PCI_BAR0_REGION, 0,
                                         &v, 2, false),
                     -EACCES);
    assert_int_equal(umdev_dev_profile_refused(g->dev), 1);
    assert_non_null(umdev_dev_profile(g->dev));
    /* Each BAR is its own UART. */
    bar_write(g, 0, UART_SCR, 0x11);
    bar_write(g, 1, UART_SCR, 0x22);
    assert_int_equal(bar_read(g, 0, UART_SCR), 0x11);
    assert_int_equal(bar_read(g, 1, UART_SCR), 0x22);
    assert_int_equal(bar_read(g, 1, UART_LSR), 0x60);
}

static void
test_glue_intx_status(void **state)
{
    struct glue *g = *state;

    /* PCI Status.Interrupt follows the OUT2-gated UART outputs. */
    bar_write(g, 1, UART_IER, UART_IER_THRI);
    assert_int_equal(cfg_read(g, 0x06, 2) & 0x08, 0);
    bar_write(g, 1, UART_MCR, UART_MCR_OUT2);
    assert_int_equal(cfg_read(g, 0x06, 2) & 0x08, 0x08);
    assert_int_equal(bar_read(g, 1, UART_IIR), 0x02);
    assert_int_equal(cfg_read(g, 0x06, 2) & 0x08, 0);
}

static void
test_glue_socket_tx_rx(void **state)
{
    struct glue *g = *state;
    const char *msg = "hello, host";
    uint8_t buf[256];
    size_t i;
    int fd;

    /* Bytes written before a client connects are held for it. */
    bar_write(g, 0, UART_TX, '>');
    fd = connect_port(g->path0);
    pump(g, 10);
    for (i = 0; i < strlen(msg); i++)
        bar_write(g, 0, UART_TX, (uint8_t)msg[i]);
    assert_int_equal(read_avail(fd, buf, 1 + strlen(msg), 1000),
                     1 + strlen(msg));
    assert_int_equal(buf[0], '>');
    assert_memory_equal(buf + 1, msg, strlen(msg));
    /* A client means carrier: DCD/DSR/CTS up with deltas. */
    assert_int_equal(bar_read(g, 0, UART_MSR), 0xbb);

    /* Host -> guest, with FIFOs and a trigger level of 8. */
    bar_write(g, 0, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
    assert_int_equal(write(fd, "xyz", 3), 3);
    pump(g, 10);
    assert_int_equal(bar_read(g, 0, UART_LSR) & UART_LSR_DR, UART_LSR_DR);
    assert_int_equal(bar_read(g, 0, UART_RX), 'x');
    assert_int_equal(bar_read(g, 0, UART_RX), 'y');
    assert_int_equal(bar_read(g, 0, UART_RX), 'z');
    assert_int_equal(bar_read(g, 0, UART_LSR) & UART_LSR_DR, 0);
    close(fd);
    pump(g, 10);
    /* The client left: carrier drops. */
    assert_int_equal(bar_read(g, 0, UART_MSR), 0x0b);
}

static void
test_glue_rx_flow_control(void **state)
{
    struct glue *g = *state;
    uint8_t data[100], got[100];
    size_t n = 0;
    int fd, rounds = 0;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 1);
    bar_write(g, 0, UART_FCR, UART_FCR_ENABLE_FIFO);
    fd = connect_port(g->path0);
    pump(g, 10);
    assert_int_equal(write(fd, data, sizeof(data)), (ssize_t)sizeof(data));
    /* The FIFO takes 16 at a time; the rest waits in the socket. */
    while (n < sizeof(data) && rounds++ < 100) {
        size_t batch = 0;

        pump(g, 10);
        while (bar_read(g, 0, UART_LSR) & UART_LSR_DR) {
            got[n++] = bar_read(g, 0, UART_RX);
            batch++;
        }
        assert_true(batch <= UART_FIFO_SIZE);
        assert_int_equal(bar_read(g, 0, UART_LSR) & UART_LSR_OE, 0);
    }
    assert_int_equal(n, sizeof(data));
    assert_memory_equal(got, data, sizeof(data));
    close(fd);
    pump(g, 10);
}

/*
 * One host client at a time: a second one is closed at once (end of file
 * within the loop's next turns) while the first keeps its port; one that
 * connects right after the first hung up is served.
 */
static void
test_glue_second_host_refused(void **state)
{
    struct glue *g = *state;
    uint8_t buf[8];
    int fd, fd2;

    fd = connect_port(g->path0);
    pump(g, 10);
    fd2 = connect_port(g->path0);
    pump(g, 10);
    {
        struct pollfd pfd = { .fd = fd2, .events = POLLIN };

        /* Already closed by the device: no waiting for it here. */
        assert_int_equal(poll(&pfd, 1, 0), 1);
        assert_int_equal(read(fd2, buf, sizeof(buf)), 0);
    }
    close(fd2);
    /* The first still has the port, both ways. */
    bar_write(g, 0, UART_TX, 'k');
    assert_int_equal(read_avail(fd, buf, 1, 1000), 1);
    assert_int_equal(buf[0], 'k');
    assert_int_equal(write(fd, "m", 1), 1);
    pump(g, 10);
    assert_int_equal(bar_read(g, 0, UART_RX), 'm');
    /* Hang up and come straight back: the new client gets the port. */
    close(fd);
    fd = connect_port(g->path0);
    pump(g, 10);
    bar_write(g, 0, UART_TX, 'n');
    assert_int_equal(read_avail(fd, buf, 1, 1000), 1);
    assert_int_equal(buf[0], 'n');
    close(fd);
    pump(g, 10);
}

static void
test_glue_rx_timeout_timer(void **state)
{
    struct glue *g = *state;
    int fd;

    bar_write(g, 0, UART_LCR, UART_LCR_DLAB);
    bar_write(g, 0, UART_DLL, 1);
    bar_write(g, 0, UART_LCR, 0x03);
    bar_write(g, 0, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_14);
    bar_write(g, 0, UART_IER, UART_IER_RDI);
    bar_write(g, 0, UART_MCR, UART_MCR_OUT2);
    fd = connect_port(g->path0);
    pump(g, 10);
    (void)bar_read(g, 0, UART_MSR);
    assert_int_equal(write(fd, "ab", 2), 2);
    /* The timerfd fires ~350 us after the last byte: the loop delivers
     * the character timeout. */
    pump(g, 20);
    assert_int_equal(bar_read(g, 0, UART_IIR), 0xcc);
    assert_int_equal(cfg_read(g, 0x06, 2) & 0x08, 0x08);
    assert_int_equal(bar_read(g, 0, UART_RX), 'a');
    assert_int_equal(bar_read(g, 0, UART_IIR), 0xc1);
    pump(g, 20);
    assert_int_equal(bar_read(g, 0, UART_IIR), 0xcc);
    assert_int_equal(bar_read(g, 0, UART_RX), 'b');
    assert_int_equal(bar_read(g, 0, UART_IIR), 0xc1);
    close(fd);
    pump(g, 10);
}

static void
test_glue_tx_back_pressure(void **state)
{
    struct glue *g = *state;
    size_t written = 0, got = 0, i;
    uint8_t *buf = malloc(1 << 20);
    int fd;

    assert_non_null(buf);
    fd = connect_port(g->path0);
    pump(g, 10);
    bar_write(g, 0, UART_FCR, UART_FCR_ENABLE_FIFO);
    /* The client does not read: the guest writes 16 bytes per THRE,
     * like Linux, until THRE stays clear. */
    for (;;) {
        if (!(bar_read(g, 0, UART_LSR) & UART_LSR_THRE))
            break;
        for (i = 0; i < UART_FIFO_SIZE; i++)
            bar_write(g, 0, UART_TX, (uint8_t)(written + i));
        written += UART_FIFO_SIZE;
        assert_true(written < (1u << 20));
    }
    /* Now the client reads: every byte arrives, in order, and THRE
     * comes back. */
    while (got < written) {
        size_t n = read_avail(fd, buf + got, written - got, 200);

        assert_true(n > 0);
        got += n;
        pump(g, 1);
    }
    for (i = 0; i < written; i++)
        assert_int_equal(buf[i], (uint8_t)i);
    pump(g, 10);
    assert_int_equal(bar_read(g, 0, UART_LSR) & 0x60, 0x60);
    close(fd);
    pump(g, 10);
    free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_glue_config_space, glue_setup, glue_teardown),
        cmocka_unit_test_setup_teardown(test_glue_intx_status, glue_setup, glue_teardown),
        cmocka_unit_test_setup_teardown(test_glue_socket_tx_rx, glue_setup, glue_teardown),
        cmocka_unit_test_setup_teardown(test_glue_rx_flow_control, glue_setup, glue_teardown),
        cmocka_unit_test_setup_teardown(test_glue_second_host_refused, glue_setup, glue_teardown),
        cmocka_unit_test_setup_teardown(test_glue_rx_timeout_timer, glue_setup, glue_teardown),
        cmocka_unit_test_setup_teardown(test_glue_tx_back_pressure, glue_setup, glue_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
