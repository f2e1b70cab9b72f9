/*
 * Unit tests of the 16550A register model (devices/serial/uart.c). The
 * serial device around it (config space, BARs, the host-end sockets) is
 * tested in test_serial.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "uart.h"

/* 8N1 at 115200 baud: 4 characters of 10 bits. */
#define TIMEOUT_115200_NS (4ull * 10 * 1000000000ull / 115200)

/* A UART after power-on, programmed for 8-bit words (LCR resets to 5
 * data bits, and the model masks data to the word length). */
static struct uart *
new_uart(size_t out_limit)
{
    struct uart *u = malloc(sizeof(*u));

    assert_non_null(u);
    uart_init(u, out_limit);
    uart_write(u, UART_LCR, 0x03);
    return u;
}

/* The fixture: *@state is new_uart()'s, with the host-end buffer limit
 * that points to (none: 0, the default), freed by uart_teardown(). */
static int
uart_setup(void **state)
{
    const size_t *out_limit = *state;

    *state = new_uart(out_limit != NULL ? *out_limit : 0);
    return 0;
}

static int
uart_teardown(void **state)
{
    free(*state);
    return 0;
}

/* Host-end buffer limits of the tests that fill it. */
static const size_t out_1 = 1, out_2 = 2, out_8 = 8;
#define UART_TEST(f)                                                           \
    cmocka_unit_test_setup_teardown(f, uart_setup, uart_teardown)
#define UART_TEST_OUT(f, limit)                                                \
    cmocka_unit_test_prestate_setup_teardown(f, uart_setup, uart_teardown,     \
                                             (void *)&(limit))

/* ---------------------------------------------------------------- */
/* Register model                                                    */

static void
test_reset_values(void **state)
{
    struct uart *u = *state;

    uart_init(u, 0);
    assert_int_equal(uart_read(u, UART_IER), 0x00);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    assert_int_equal(uart_read(u, UART_LCR), 0x00);
    assert_int_equal(uart_read(u, UART_MCR), 0x00);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    assert_int_equal(uart_read(u, UART_MSR), 0x00);
    assert_int_equal(uart_read(u, UART_SCR), 0x00);
    assert_false(uart_irq_level(u));
    /* Divisor after reset: 12 (9600 baud). */
    uart_write(u, UART_LCR, UART_LCR_DLAB);
    assert_int_equal(uart_read(u, UART_DLL), UART_RESET_DIVISOR);
    assert_int_equal(uart_read(u, UART_DLM), 0);

    /* MSR follows the inputs, with no deltas after a reset. */
    uart_set_modem_inputs(u, UART_MSR_CTS | UART_MSR_DCD);
    uart_write(u, UART_SCR, 0x5a);
    uart_reset(u);
    assert_int_equal(uart_read(u, UART_MSR), UART_MSR_CTS | UART_MSR_DCD);
    assert_int_equal(uart_read(u, UART_SCR), 0x00);
    assert_int_equal(uart_read(u, UART_LCR), 0x00);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
}

static void
test_divisor_latch(void **state)
{
    struct uart *u = *state;

    uart_write(u, UART_IER, UART_IER_MSI);
    uart_write(u, UART_LCR, UART_LCR_DLAB | 0x03);
    uart_write(u, UART_DLL, 0x01);
    uart_write(u, UART_DLM, 0x02);
    assert_int_equal(uart_read(u, UART_DLL), 0x01);
    assert_int_equal(uart_read(u, UART_DLM), 0x02);
    assert_int_equal(uart_read(u, UART_LCR), UART_LCR_DLAB | 0x03);
    /* DLAB off: offsets 0 and 1 are RBR/THR and IER again. */
    uart_write(u, UART_LCR, 0x03);
    assert_int_equal(uart_read(u, UART_IER), UART_IER_MSI);
    assert_int_equal(uart_read(u, UART_LSR), 0x60); /* no byte read/sent */
    assert_int_equal(uart_tx_pending(u), 0);
    uart_write(u, UART_IER, 0x05);
    uart_write(u, UART_LCR, UART_LCR_DLAB | 0x03);
    assert_int_equal(uart_read(u, UART_DLL), 0x01);
    assert_int_equal(uart_read(u, UART_DLM), 0x02);
    /* 115200 baud (divisor 1), 8N1: 4 characters ~347 us. */
    uart_write(u, UART_DLL, 1);
    uart_write(u, UART_DLM, 0);
    assert_int_equal(uart_char_timeout_ns(u), TIMEOUT_115200_NS);
    /* 7E2 adds parity and a stop bit: 11 bits. */
    uart_write(u, UART_LCR, 0x02 | UART_LCR_PARITY | UART_LCR_STOP);
    assert_int_equal(uart_char_timeout_ns(u),
                     4ull * 11 * 1000000000ull / 115200);
}

static void
test_ier_scr_readonly(void **state)
{
    struct uart *u = *state;

    uart_write(u, UART_IER, 0xff);
    assert_int_equal(uart_read(u, UART_IER), 0x0f); /* upper nibble 0 */
    uart_write(u, UART_IER, 0);
    uart_write(u, UART_SCR, 0xa5);
    assert_int_equal(uart_read(u, UART_SCR), 0xa5);
    /* LSR and MSR ignore writes. */
    uart_write(u, UART_LSR, 0x1f);
    uart_write(u, UART_MSR, 0xff);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    assert_int_equal(uart_read(u, UART_MSR), 0x00);
    /* MCR bits 5-7 read as 0 on a 16550A. */
    uart_write(u, UART_MCR, 0xff);
    assert_int_equal(uart_read(u, UART_MCR), 0x1f);
}

static void
test_access_widths(void **state)
{
    struct uart *u = *state;
    uint32_t v = 0;
    uint8_t b = 0x42;

    assert_int_equal(uart_access(u, UART_SCR, &v, 2, false), -EINVAL);
    assert_int_equal(uart_access(u, 0, &v, 4, true), -EINVAL);
    assert_int_equal(uart_access(u, 0, &v, 0, false), -EINVAL);
    assert_int_equal(uart_access(u, 8, &b, 1, false), -EINVAL);
    assert_int_equal(uart_access(u, UART_SCR, &b, 1, true), 0);
    b = 0;
    assert_int_equal(uart_access(u, UART_SCR, &b, 1, false), 0);
    assert_int_equal(b, 0x42);
}

static void
test_fifo_enable_and_trigger(void **state)
{
    static const struct {
        uint8_t fcr;
        unsigned int level;
    } t[] = {
        { UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_1, 1 },
        { UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_4, 4 },
        { UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8, 8 },
        { UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_14, 14 },
    };
    struct uart *u = *state;
    size_t i;

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO);
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    assert_int_equal(uart_rx_room(u), 16);
    uart_write(u, UART_FCR, 0);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    assert_int_equal(uart_rx_room(u), 1); /* one holding register */
    /* Trigger bits without FCR0 are not written. */
    uart_write(u, UART_FCR, UART_FCR_TRIGGER_14);
    assert_int_equal(uart_rx_trigger(u), 1);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        uart_write(u, UART_FCR, t[i].fcr);
        assert_int_equal(uart_rx_trigger(u), t[i].level);
        assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    }
}

static void
test_rx_data_available_each_level(void **state)
{
    static const uint8_t trig[] = { UART_FCR_TRIGGER_1, UART_FCR_TRIGGER_4,
                                    UART_FCR_TRIGGER_8,
                                    UART_FCR_TRIGGER_14 };
    static const unsigned int level[] = { 1, 4, 8, 14 };
    size_t i;
    unsigned int n;

    (void)state;
    for (i = 0; i < 4; i++) {
        struct uart *u = new_uart(0);

        uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | trig[i]);
        uart_write(u, UART_IER, UART_IER_RDI);
        uart_write(u, UART_MCR, UART_MCR_OUT2);
        for (n = 0; n + 1 < level[i]; n++) {
            assert_int_equal(uart_rx_push(u, (uint8_t)('a' + n)), 0);
            assert_int_equal(uart_read(u, UART_IIR), 0xc1);
            assert_false(uart_irq_level(u));
        }
        assert_int_equal(uart_rx_push(u, (uint8_t)('a' + n)), 0);
        assert_int_equal(uart_read(u, UART_IIR), 0xc4);
        assert_true(uart_irq_level(u));
        /* Reading one byte drops the count below the trigger level. */
        assert_int_equal(uart_read(u, UART_RX), 'a');
        assert_int_equal(uart_read(u, UART_IIR), 0xc1);
        assert_false(uart_irq_level(u));
        if (level[i] > 1)
            assert_int_equal(uart_read(u, UART_LSR) & UART_LSR_DR,
                             UART_LSR_DR);
        free(u);
    }
}

static void
test_rx_non_fifo(void **state)
{
    struct uart *u = *state;

    uart_write(u, UART_IER, UART_IER_RDI);
    uart_write(u, UART_MCR, UART_MCR_OUT2);
    assert_int_equal(uart_rx_room(u), 1);
    assert_int_equal(uart_rx_push(u, 'x'), 0);
    assert_int_equal(uart_read(u, UART_LSR), 0x61);
    assert_int_equal(uart_read(u, UART_IIR), 0x04);
    assert_true(uart_irq_level(u));
    /* The holding register is full: the host byte is refused, not lost. */
    assert_int_equal(uart_rx_room(u), 0);
    assert_int_equal(uart_rx_push(u, 'y'), -ENOSPC);
    assert_int_equal(uart_read(u, UART_RX), 'x');
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    assert_false(uart_irq_level(u));
    /* An empty RBR reads its last value. */
    assert_int_equal(uart_read(u, UART_RX), 'x');
    /* No timeout machinery without FIFOs. */
    uint64_t ns;
    assert_int_equal(uart_rx_push(u, 'y'), 0);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_KEEP);
}

static void
test_char_timeout(void **state)
{
    struct uart *u = *state;
    uint64_t ns = 0;

    uart_write(u, UART_LCR, UART_LCR_DLAB);
    uart_write(u, UART_DLL, 1); /* 115200 */
    uart_write(u, UART_LCR, 0x03);
    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
    uart_write(u, UART_IER, UART_IER_RDI);
    uart_write(u, UART_MCR, UART_MCR_OUT2);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_KEEP);

    assert_int_equal(uart_rx_push(u, '1'), 0);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    assert_int_equal(ns, TIMEOUT_115200_NS);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_KEEP);
    /* Each byte received restarts the window. */
    assert_int_equal(uart_rx_push(u, '2'), 0);
    assert_int_equal(uart_rx_push(u, '3'), 0);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    assert_int_equal(uart_read(u, UART_IIR), 0xc1); /* 3 < 8: quiet */
    uart_timer_expired(u);
    assert_int_equal(uart_read(u, UART_IIR), 0xcc);
    assert_true(uart_irq_level(u));
    /* Indicated: the expired timer stays idle until the next read. */
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_KEEP);
    /* Reading a byte clears the indication and restarts the window. */
    assert_int_equal(uart_read(u, UART_RX), '1');
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    assert_false(uart_irq_level(u));
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    uart_timer_expired(u);
    assert_int_equal(uart_read(u, UART_IIR), 0xcc);
    assert_int_equal(uart_read(u, UART_RX), '2');
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    assert_int_equal(uart_read(u, UART_RX), '3');
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    /* Empty FIFO: a running timer is stopped, once. */
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_STOP);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_KEEP);
    uart_timer_expired(u); /* a late expiry of a stopped timer */
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);

    /* A byte that arrives before the embedder re-armed makes a pending
     * expiry stale. */
    assert_int_equal(uart_rx_push(u, '4'), 0);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    assert_int_equal(uart_rx_push(u, '5'), 0);
    uart_timer_expired(u);
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    uart_timer_expired(u);
    assert_int_equal(uart_read(u, UART_IIR), 0xcc);

    /* At or above the trigger level it is RDI, with no timer. */
    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_1);
    assert_int_equal(uart_read(u, UART_IIR), 0xcc); /* still indicated */
    assert_int_equal(uart_read(u, UART_RX), '4');
    assert_int_equal(uart_read(u, UART_IIR), 0xc4);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_KEEP);
    /* An RX FIFO reset cancels everything. */
    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_STOP);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
}

static void
test_thre_interrupt(void **state)
{
    struct uart *u = *state;

    uart_write(u, UART_MCR, UART_MCR_OUT2);
    /* Enabling ETBEI with THR empty raises the THRE interrupt. */
    uart_write(u, UART_IER, UART_IER_THRI);
    assert_true(uart_irq_level(u));
    /* Reading IIR while THRE is the source clears it. */
    assert_int_equal(uart_read(u, UART_IIR), 0x02);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    assert_false(uart_irq_level(u));
    /* Re-enabling raises it again (Linux's UART_BUG_THRE probe). */
    uart_write(u, UART_IER, 0);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    uart_write(u, UART_IER, UART_IER_THRI);
    assert_int_equal(uart_read(u, UART_IIR), 0x02);
    /* A THR write clears it; the byte leaves at once (host end has room)
     * and the emptied THR raises it again. */
    uart_write(u, UART_TX, 'A');
    assert_int_equal(uart_tx_pending(u), 1);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    assert_int_equal(uart_read(u, UART_IIR), 0x02);
    /* Disabled: no interrupt, and IIR reads never clear a masked one. */
    uart_write(u, UART_IER, 0);
    assert_false(uart_irq_level(u));
}

static void
test_thre_cleared_by_thr_write(void **state)
{
    struct uart *u = *state;
    const uint8_t *p;

    uart_write(u, UART_MCR, UART_MCR_OUT2);
    uart_write(u, UART_TX, 'a');
    uart_write(u, UART_TX, 'b'); /* host-end buffer now full */
    assert_int_equal(uart_tx_pending(u), 2);
    assert_int_equal(uart_read(u, UART_LSR), 0x60); /* FIFO still empty */
    uart_write(u, UART_IER, UART_IER_THRI);
    assert_int_equal(uart_read(u, UART_IIR) & 0x0f, 0x02);
    /* Pending again (re-enabled); the THR write clears it and, with the
     * transmitter stalled, it stays clear. */
    uart_write(u, UART_IER, 0);
    uart_write(u, UART_IER, UART_IER_THRI);
    assert_true(uart_irq_level(u));
    uart_write(u, UART_TX, 'c');
    assert_false(uart_irq_level(u));
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    assert_int_equal(uart_read(u, UART_LSR), 0x00); /* THRE, TEMT clear */
    /* The host takes one byte: 'c' moves on, THRE and its IRQ return. */
    assert_int_equal(uart_tx_peek(u, &p), 2);
    assert_memory_equal(p, "ab", 2);
    uart_tx_consume(u, 1);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    assert_true(uart_irq_level(u));
    assert_int_equal(uart_read(u, UART_IIR), 0x02);
    assert_int_equal(uart_tx_peek(u, &p), 2);
    assert_memory_equal(p, "bc", 2);
}

static void
test_tx_back_pressure(void **state)
{
    struct uart *u = *state;
    struct uart_stats st;
    const uint8_t *p;
    size_t i, n, total = 0;

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO);
    uart_write(u, UART_MCR, UART_MCR_OUT2);
    uart_write(u, UART_IER, UART_IER_THRI);
    /* No host end draining: 4 KiB go to the host-end buffer, then the 16
     * byte FIFO fills and THRE/TEMT stay clear. */
    for (i = 0; i < UART_OUT_SIZE; i++)
        uart_write(u, UART_TX, (uint8_t)i);
    assert_int_equal(uart_tx_pending(u), UART_OUT_SIZE);
    assert_int_equal(uart_read(u, UART_LSR) & 0x60, 0x60);
    for (i = 0; i < UART_FIFO_SIZE; i++) {
        uart_write(u, UART_TX, (uint8_t)(UART_OUT_SIZE + i));
        assert_int_equal(uart_read(u, UART_LSR) & 0x60, 0x00);
    }
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    assert_false(uart_irq_level(u));
    /* A guest ignoring THRE loses that byte, as on hardware. */
    uart_write(u, UART_TX, 0xee);
    uart_get_stats(u, &st);
    assert_int_equal(st.tx_dropped, 1);
    /* Draining part of the buffer is not enough while bytes still wait
     * in the FIFO ... */
    uart_tx_consume(u, 8);
    assert_int_equal(uart_read(u, UART_LSR) & 0x60, 0x00);
    assert_false(uart_irq_level(u));
    /* ... the FIFO empties once 16 bytes have room: THRE re-asserts. */
    uart_tx_consume(u, 8);
    assert_int_equal(uart_read(u, UART_LSR) & 0x60, 0x60);
    assert_true(uart_irq_level(u));
    assert_int_equal(uart_read(u, UART_IIR), 0xc2);
    /* Everything arrives in order across the ring's wrap. */
    for (i = 16; uart_tx_pending(u) > 0; i += n) {
        n = uart_tx_peek(u, &p);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(p[k], (uint8_t)(i + k));
        uart_tx_consume(u, n);
        total += n;
    }
    assert_int_equal(total, UART_OUT_SIZE);
    uart_get_stats(u, &st);
    assert_int_equal(st.tx_bytes, UART_OUT_SIZE + 16);
}

static void
test_lsr_bits(void **state)
{
    struct uart *u = *state;

    assert_int_equal(uart_read(u, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
    assert_int_equal(uart_rx_push(u, 'q'), 0);
    assert_int_equal(uart_read(u, UART_LSR),
                     UART_LSR_DR | UART_LSR_THRE | UART_LSR_TEMT);
    assert_int_equal(uart_read(u, UART_RX), 'q');
    assert_int_equal(uart_read(u, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
    uart_write(u, UART_TX, '1'); /* fills the 1-byte host buffer */
    uart_write(u, UART_TX, '2'); /* waits in THR */
    assert_int_equal(uart_read(u, UART_LSR), 0x00);
    uart_tx_consume(u, 1);
    assert_int_equal(uart_read(u, UART_LSR), UART_LSR_THRE | UART_LSR_TEMT);
}

static void
test_overrun_non_fifo(void **state)
{
    struct uart *u = *state;
    struct uart_stats st;

    uart_write(u, UART_IER, UART_IER_RLSI | UART_IER_RDI);
    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2);
    uart_write(u, UART_TX, 'a');
    assert_int_equal(uart_read(u, UART_IIR), 0x04);
    uart_write(u, UART_TX, 'b'); /* RBR still full: overrun */
    assert_int_equal(uart_read(u, UART_IIR), 0x06);
    assert_int_equal(uart_read(u, UART_LSR),
                     UART_LSR_DR | UART_LSR_OE | UART_LSR_THRE |
                         UART_LSR_TEMT);
    /* Reading LSR clears OE and the line status interrupt. */
    assert_int_equal(uart_read(u, UART_LSR) & UART_LSR_OE, 0);
    assert_int_equal(uart_read(u, UART_IIR), 0x04);
    /* 16450 mode: the new character overwrote RBR. */
    assert_int_equal(uart_read(u, UART_RX), 'b');
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    uart_get_stats(u, &st);
    assert_int_equal(st.overruns, 1);
}

static void
test_overrun_fifo(void **state)
{
    struct uart *u = *state;
    unsigned int i;

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO);
    uart_write(u, UART_MCR, UART_MCR_LOOP);
    for (i = 0; i < UART_FIFO_SIZE + 1; i++)
        uart_write(u, UART_TX, (uint8_t)('A' + i));
    assert_int_equal(uart_read(u, UART_LSR) & (UART_LSR_OE | UART_LSR_DR),
                     UART_LSR_OE | UART_LSR_DR);
    /* FIFO mode: the FIFO keeps its 16, the 17th is lost. */
    for (i = 0; i < UART_FIFO_SIZE; i++)
        assert_int_equal(uart_read(u, UART_RX), 'A' + i);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
}

static void
test_fifo_limits(void **state)
{
    struct uart *u = *state;
    struct uart_stats st;
    unsigned int i;

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO);
    for (i = 0; i < UART_FIFO_SIZE; i++) {
        assert_int_equal(uart_rx_room(u), UART_FIFO_SIZE - i);
        assert_int_equal(uart_rx_push(u, (uint8_t)i), 0);
    }
    assert_int_equal(uart_rx_room(u), 0);
    assert_int_equal(uart_rx_push(u, 0xff), -ENOSPC);
    uart_get_stats(u, &st);
    assert_int_equal(st.overruns, 0); /* refused, not overrun */
    assert_int_equal(st.rx_bytes, UART_FIFO_SIZE);
    assert_int_equal(uart_read(u, UART_LSR) & UART_LSR_OE, 0);
    assert_int_equal(uart_read(u, UART_RX), 0);
    assert_int_equal(uart_rx_room(u), 1);
    assert_int_equal(uart_rx_push(u, 0xff), 0);
    for (i = 1; i < UART_FIFO_SIZE; i++)
        assert_int_equal(uart_read(u, UART_RX), i);
    assert_int_equal(uart_read(u, UART_RX), 0xff);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
}

static void
test_fifo_reset_bits(void **state)
{
    struct uart *u = *state;
    struct uart_stats st;

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO);
    uart_write(u, UART_MCR, UART_MCR_OUT2);
    assert_int_equal(uart_rx_push(u, 'r'), 0);
    assert_int_equal(uart_rx_push(u, 's'), 0);
    uart_write(u, UART_TX, 't'); /* to the host buffer */
    uart_write(u, UART_TX, 'u'); /* stays in the TX FIFO */
    uart_write(u, UART_TX, 'v');
    uart_write(u, UART_IER, UART_IER_THRI);
    assert_int_equal(uart_read(u, UART_LSR), UART_LSR_DR);
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    /* RX FIFO reset: DR drops, room returns. */
    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
    assert_int_equal(uart_read(u, UART_LSR), 0x00);
    assert_int_equal(uart_rx_room(u), 16);
    /* TX FIFO reset: THRE and its interrupt come back; bytes already in
     * the host buffer stay. */
    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_XMIT);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    assert_int_equal(uart_read(u, UART_IIR), 0xc2);
    assert_int_equal(uart_tx_pending(u), 1);
    uart_get_stats(u, &st);
    assert_int_equal(st.fifo_cleared, 4);
    /* The reset bits self-clear; turning FIFOs off clears them too. */
    assert_int_equal(uart_rx_push(u, 'w'), 0);
    uart_write(u, UART_FCR, 0);
    assert_int_equal(uart_read(u, UART_LSR) & UART_LSR_DR, 0);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
}

static void
test_loopback_echo(void **state)
{
    struct uart *u = *state;
    const char *msg = "hello";
    size_t i;

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_4);
    uart_write(u, UART_IER, UART_IER_RDI);
    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2);
    /* The serial input is disconnected in loopback. */
    assert_int_equal(uart_rx_room(u), 0);
    assert_int_equal(uart_rx_push(u, 'x'), -ENOSPC);
    for (i = 0; i < strlen(msg); i++)
        uart_write(u, UART_TX, (uint8_t)msg[i]);
    assert_int_equal(uart_tx_pending(u), 0); /* nothing to the host */
    assert_int_equal(uart_read(u, UART_IIR), 0xc4);
    assert_true(uart_irq_level(u));
    for (i = 0; i < strlen(msg); i++)
        assert_int_equal(uart_read(u, UART_RX), msg[i]);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    /* Loopback off: the host input is back, output goes to the host. */
    uart_write(u, UART_MCR, UART_MCR_OUT2);
    assert_int_equal(uart_rx_room(u), 16);
    uart_write(u, UART_TX, '!');
    assert_int_equal(uart_tx_pending(u), 1);
    assert_int_equal(uart_read(u, UART_LSR) & UART_LSR_DR, 0);
}

static void
test_loopback_modem_lines(void **state)
{
    struct uart *u = *state;

    uart_set_modem_inputs(u, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
    (void)uart_read(u, UART_MSR);
    uart_write(u, UART_IER, UART_IER_MSI);
    /* Loopback: the inputs follow the outputs, ignoring the host. */
    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_RTS | UART_MCR_OUT2);
    assert_int_equal(uart_read(u, UART_IIR), 0x00);
    assert_true(uart_irq_level(u));
    assert_int_equal(uart_read(u, UART_MSR),
                     UART_MSR_CTS | UART_MSR_DCD | UART_MSR_DDSR);
    /* Delta bits cleared by the read. */
    assert_int_equal(uart_read(u, UART_MSR), UART_MSR_CTS | UART_MSR_DCD);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT1 |
                                UART_MCR_OUT2);
    assert_int_equal(uart_read(u, UART_MSR),
                     UART_MSR_DSR | UART_MSR_RI | UART_MSR_DCD |
                         UART_MSR_DCTS | UART_MSR_DDSR);
    /* RI: only the trailing edge sets TERI. */
    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR | UART_MCR_OUT2);
    assert_int_equal(uart_read(u, UART_MSR),
                     UART_MSR_DSR | UART_MSR_DCD | UART_MSR_TERI);
    /* OUT2 low: DCD drops, and the interrupt output is gated off. */
    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_DTR);
    assert_int_equal(uart_read(u, UART_IIR), 0x00);
    assert_false(uart_irq_level(u));
    assert_int_equal(uart_read(u, UART_MSR), UART_MSR_DSR | UART_MSR_DDCD);
    /* Leaving loopback: back to the host's lines. */
    uart_write(u, UART_MCR, UART_MCR_OUT2);
    assert_int_equal(uart_read(u, UART_MSR), UART_MSR_CTS | UART_MSR_DSR |
                                                 UART_MSR_DCD | UART_MSR_DCTS |
                                                 UART_MSR_DDCD);
}

static void
test_modem_inputs(void **state)
{
    struct uart *u = *state;

    uart_write(u, UART_IER, UART_IER_MSI);
    uart_write(u, UART_MCR, UART_MCR_OUT2);
    assert_false(uart_irq_level(u));
    uart_set_modem_inputs(u, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
    assert_true(uart_irq_level(u));
    assert_int_equal(uart_read(u, UART_MSR),
                     UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD |
                         UART_MSR_DCTS | UART_MSR_DDSR | UART_MSR_DDCD);
    assert_false(uart_irq_level(u));
    uart_set_modem_inputs(u, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD |
                                 UART_MSR_RI);
    assert_int_equal(uart_read(u, UART_MSR), 0xf0); /* leading edge: no TERI */
    uart_set_modem_inputs(u, 0);
    assert_int_equal(uart_read(u, UART_MSR), UART_MSR_DCTS | UART_MSR_DDSR |
                                                 UART_MSR_DDCD | UART_MSR_TERI);
}

static void
test_out2_gate(void **state)
{
    struct uart *u = *state;

    uart_write(u, UART_IER, UART_IER_RDI);
    assert_int_equal(uart_rx_push(u, 'z'), 0);
    /* Pending in IIR, but OUT2 low keeps the line quiet. */
    assert_false(uart_irq_level(u));
    uart_write(u, UART_MCR, UART_MCR_OUT2);
    assert_true(uart_irq_level(u));
    assert_int_equal(uart_read(u, UART_IIR), 0x04);
    uart_write(u, UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
    assert_false(uart_irq_level(u));
    assert_int_equal(uart_read(u, UART_IIR), 0x04);
}

static void
test_iir_priorities(void **state)
{
    struct uart *u = *state;

    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2); /* DCD delta */
    assert_int_equal(uart_read(u, UART_IIR), 0x01); /* nothing enabled */
    uart_write(u, UART_IER, 0x0f);
    /* THRE (3) outranks modem status (4). */
    assert_int_equal(uart_read(u, UART_IIR) & 0x0f, 0x02);
    uart_write(u, UART_IER, 0x0d); /* the IIR read cleared THRE anyway */
    assert_int_equal(uart_read(u, UART_IIR), 0x00);
    uart_write(u, UART_IER, 0x0f);
    uart_write(u, UART_TX, 'a'); /* looped back: RX data (2) */
    assert_int_equal(uart_read(u, UART_IIR), 0x04);
    uart_write(u, UART_TX, 'b'); /* overrun: line status (1) */
    assert_int_equal(uart_read(u, UART_IIR), 0x06);
    (void)uart_read(u, UART_LSR);
    assert_int_equal(uart_read(u, UART_IIR), 0x04);
    (void)uart_read(u, UART_RX);
    /* The transmitter emptied after 'b': THRE, then modem status. */
    assert_int_equal(uart_read(u, UART_IIR), 0x02);
    assert_int_equal(uart_read(u, UART_IIR), 0x00);
    (void)uart_read(u, UART_MSR);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    assert_false(uart_irq_level(u));
}

static void
test_break_and_fifo_error(void **state)
{
    struct uart *u = *state;

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO);
    uart_write(u, UART_IER, UART_IER_RLSI);
    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2);
    uart_write(u, UART_TX, 'k');
    uart_write(u, UART_LCR, UART_LCR_SBC | 0x03); /* break: NUL + BI */
    uart_write(u, UART_LCR, 0x03);
    /* 'k' is on top: no error reported yet, but one waits in the FIFO. */
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    assert_int_equal(uart_read(u, UART_LSR),
                     UART_LSR_FIFOE | UART_LSR_THRE | UART_LSR_TEMT |
                         UART_LSR_DR);
    assert_int_equal(uart_read(u, UART_RX), 'k');
    /* The break character reaches the top: BI and its interrupt. */
    assert_int_equal(uart_read(u, UART_IIR), 0xc6);
    assert_int_equal(uart_read(u, UART_LSR),
                     UART_LSR_FIFOE | UART_LSR_BI | UART_LSR_THRE |
                         UART_LSR_TEMT | UART_LSR_DR);
    assert_int_equal(uart_read(u, UART_LSR),
                     UART_LSR_THRE | UART_LSR_TEMT | UART_LSR_DR);
    assert_int_equal(uart_read(u, UART_IIR), 0xc1);
    assert_int_equal(uart_read(u, UART_RX), 0);
}

static void
test_word_length(void **state)
{
    struct uart *u = *state;
    const uint8_t *p;

    uart_write(u, UART_LCR, 0x02); /* 7 data bits */
    assert_int_equal(uart_rx_push(u, 0xff), 0);
    assert_int_equal(uart_read(u, UART_RX), 0x7f);
    uart_write(u, UART_TX, 0xc1);
    assert_int_equal(uart_tx_peek(u, &p), 1);
    assert_int_equal(p[0], 0x41);
}

static void
test_reset_keeps_host_bytes(void **state)
{
    struct uart *u = *state;
    const uint8_t *p;
    uint64_t ns;

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_4);
    uart_write(u, UART_TX, 'o'); /* in the host buffer */
    uart_write(u, UART_TX, 'p'); /* in the FIFO */
    assert_int_equal(uart_rx_push(u, 'i'), 0);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    uart_write(u, UART_IER, 0x0f);
    uart_reset(u);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_STOP);
    assert_int_equal(uart_read(u, UART_IER), 0);
    assert_int_equal(uart_read(u, UART_IIR), 0x01);
    assert_int_equal(uart_read(u, UART_LSR), 0x60);
    assert_int_equal(uart_tx_peek(u, &p), 1);
    assert_int_equal(p[0], 'o');
}

/* Both UARTs' states, saved, are the same bytes. */
static void
assert_same_state(const struct uart *a, const struct uart *b)
{
    size_t n = uart_state_size(a);
    uint8_t *x = malloc(n), *y = malloc(n);

    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(uart_state_size(b), n);
    uart_state_save(a, x);
    uart_state_save(b, y);
    assert_memory_equal(x, y, n);
    free(x);
    free(y);
}

/* A UART mid-transfer both ways, moved to another one: every register
 * reads back the same, and both carry on byte for byte. */
static void
test_state_round_trip(void **state)
{
    struct uart *u = *state, *v = new_uart(8);
    uint8_t *buf, a[32], b[32];
    const uint8_t *p;
    uint64_t ns;
    size_t n, i;
    long used;

    uart_set_modem_inputs(u, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
    uart_write(u, UART_LCR, UART_LCR_DLAB | 0x03);
    uart_write(u, UART_DLL, 0x34);
    uart_write(u, UART_DLM, 0x01);
    uart_write(u, UART_LCR, 0x03);
    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_8);
    uart_write(u, UART_IER, 0x0f);
    uart_write(u, UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
    uart_write(u, UART_SCR, 0x5a);
    /* 20 bytes out: 8 fill the host-end buffer (limit 8), 12 wait in the
     * TX FIFO; the host takes 3, so 3 more move on. */
    for (i = 0; i < 20; i++)
        uart_write(u, UART_TX, (uint8_t)('A' + i));
    uart_tx_consume(u, 3);
    /* 5 bytes in, below the trigger: the character timeout fires. */
    for (i = 0; i < 5; i++)
        assert_int_equal(uart_rx_push(u, (uint8_t)('a' + i)), 0);
    assert_int_equal(uart_rx_timer(u, &ns), UART_TIMER_START);
    uart_timer_expired(u);
    assert_int_equal(uart_read(u, UART_IIR), 0xcc);
    assert_true(uart_irq_level(u));

    n = uart_state_size(u);
    assert_int_equal(n, UART_STATE_FIXED + 8);
    buf = malloc(n);
    assert_non_null(buf);
    uart_state_save(u, buf);
    /* The destination's host end is connected too: no modem change. */
    uart_set_modem_inputs(v, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
    used = uart_state_check(v, buf, n, NULL, 0);
    assert_int_equal(used, (long)n);
    uart_state_load(v, buf);
    assert_same_state(u, v);
    assert_true(uart_irq_level(v));
    /* The timer restarts on the destination: a fresh window. */
    assert_int_equal(uart_rx_timer(v, &ns), UART_TIMER_KEEP); /* latched */

    /* Register read-back, side effects and all, in the same order. */
    for (i = 0; i < UART_NR_REGS; i++)
        assert_int_equal(uart_read(u, (unsigned int)i),
                         uart_read(v, (unsigned int)i));
    uart_write(u, UART_LCR, UART_LCR_DLAB | 0x03);
    uart_write(v, UART_LCR, UART_LCR_DLAB | 0x03);
    assert_int_equal(uart_read(v, UART_DLL), 0x34);
    assert_int_equal(uart_read(v, UART_DLM), 0x01);
    uart_write(u, UART_LCR, 0x03);
    uart_write(v, UART_LCR, 0x03);

    /* Guest -> host: what is left of 'A'..'T', in order, on both. */
    for (n = 0; n < 17;) {
        size_t k = uart_tx_peek(v, &p);

        assert_true(k > 0);
        memcpy(a + n, p, k);
        uart_tx_consume(v, k);
        n += k;
    }
    assert_int_equal(uart_tx_pending(v), 0);
    for (i = 0; i < 17; i++)
        assert_int_equal(a[i], 'A' + 3 + i);
    assert_int_equal(uart_read(v, UART_LSR) & 0x60, 0x60);
    /* Host -> guest: the 4 bytes the read-back left ('a' went to RBR on
     * both), then new ones behind them. */
    assert_int_equal(uart_rx_push(v, 'f'), 0);
    for (i = 0; i < 5; i++)
        b[i] = uart_read(v, UART_RX);
    assert_memory_equal(b, "bcdef", 5);
    assert_int_equal(uart_read(v, UART_LSR) & UART_LSR_DR, 0);
    free(buf);
    free(v);
}

/* A loopback UART with a break character and a latched overrun moves
 * too, and a destination in another modem state sees the change. */
static void
test_state_loopback_and_modem_change(void **state)
{
    struct uart *u = *state, *v = new_uart(0);
    uint8_t buf[UART_STATE_FIXED];

    uart_set_modem_inputs(v, UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD);
    (void)uart_read(v, UART_MSR);
    uart_write(u, UART_MCR, UART_MCR_LOOP | UART_MCR_OUT2 | UART_MCR_RTS);
    uart_write(u, UART_TX, 'x');
    uart_write(u, UART_TX, 'y'); /* overrun: FIFOs off */
    uart_write(u, UART_LCR, UART_LCR_SBC | 0x03);
    assert_int_equal(uart_state_size(u), UART_STATE_FIXED);
    uart_state_save(u, buf);
    assert_int_equal(uart_state_check(v, buf, sizeof(buf), NULL, 0),
                     UART_STATE_FIXED);
    uart_state_load(v, buf);
    assert_same_state(u, v);
    assert_int_equal(uart_read(v, UART_LSR), uart_read(u, UART_LSR));
    assert_int_equal(uart_read(v, UART_RX), uart_read(u, UART_RX));
    /* Out of loopback, the destination's lines are its host end's. */
    uart_write(v, UART_MCR, 0);
    assert_int_equal(uart_read(v, UART_MSR), 0xbb);
    free(v);
}

/* Each malformed state is refused, saying why; the UART is untouched. */
static void
test_state_refused(void **state)
{
    struct uart *u = *state, *v = new_uart(4);
    uint8_t good[UART_STATE_FIXED + 4], bad[sizeof(good)], before[64];
    char err[120];
    size_t i;
    static const struct {
        unsigned int off;
        uint8_t val;
        const char *why;
    } cases[] = {
        { 0, 0x10, "IER" },        /* IER bit 4 */
        { 2, 0x20, "MCR" },        /* MCR bit 5 */
        { 3, 0x40, "FCR" },        /* trigger, FIFOs off */
        { 3, 0x02, "FCR" },        /* self-clearing bit */
        { 4, 0x01, "LSR" },        /* DR is not latched */
        { 10, 0x04, "latch" },     /* unknown flag */
        { 11, 17, "FIFO counts" }, /* RX count > 16 */
        { 44, 17, "FIFO counts" }, /* TX count > 16 */
        { 28, 0x01, "flags" },     /* rx_flags of byte 0 */
        { 45, 1, "reserved" },     /* reserved */
        { 62, 1, "reserved" },     /* reserved */
        { 64, 5, "buffer" },       /* out_count > limit */
    };

    uart_write(u, UART_FCR, UART_FCR_ENABLE_FIFO);
    assert_int_equal(uart_rx_push(u, 'q'), 0);
    uart_write(u, UART_TX, 'w');
    assert_int_equal(uart_state_size(u), UART_STATE_FIXED + 1);
    uart_state_save(u, good);
    assert_int_equal(uart_state_check(v, good, UART_STATE_FIXED + 1, NULL, 0),
                     UART_STATE_FIXED + 1);
    memcpy(before, v, sizeof(before));
    /* Truncated: in the fixed part, in the held bytes. */
    assert_int_equal(
        uart_state_check(v, good, UART_STATE_FIXED - 1, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(
        uart_state_check(v, good, UART_STATE_FIXED, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "truncated"));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, good, sizeof(bad));
        bad[cases[i].off] = cases[i].val;
        err[0] = '\0';
        if (uart_state_check(v, bad, sizeof(bad), err, sizeof(err)) != -EINVAL)
            fail_msg("case %zu (byte %u = %#x) accepted", i, cases[i].off,
                     cases[i].val);
        if (strstr(err, cases[i].why) == NULL)
            fail_msg("case %zu: \"%s\" does not say %s", i, err, cases[i].why);
    }
    /* FIFOs off: one holding register each. */
    memcpy(bad, good, sizeof(bad));
    bad[3] = 0;
    bad[11] = 2;
    bad[13] = 'r';
    assert_int_equal(uart_state_check(v, bad, sizeof(bad), NULL, 0), -EINVAL);
    /* A THRE latch beside TX FIFO bytes, a timeout without RX bytes. */
    memcpy(bad, good, sizeof(bad));
    bad[10] = 0x01;
    bad[44] = 1;
    bad[46] = 'e';
    assert_int_equal(uart_state_check(v, bad, sizeof(bad), NULL, 0), -EINVAL);
    memcpy(bad, good, sizeof(bad));
    bad[10] = 0x02;
    bad[11] = 0;
    bad[12] = 0;
    assert_int_equal(uart_state_check(v, bad, sizeof(bad), NULL, 0), -EINVAL);
    /* Loopback with MSR not following MCR. */
    memcpy(bad, good, sizeof(bad));
    bad[2] = UART_MCR_LOOP | UART_MCR_RTS;
    bad[5] = 0;
    assert_int_equal(uart_state_check(v, bad, sizeof(bad), NULL, 0), -EINVAL);
    bad[5] = UART_MSR_CTS;
    assert_int_equal(uart_state_check(v, bad, sizeof(bad), NULL, 0),
                     UART_STATE_FIXED + 1);
    assert_memory_equal(before, v, sizeof(before));
    free(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        UART_TEST(test_reset_values),
        UART_TEST(test_divisor_latch),
        UART_TEST(test_ier_scr_readonly),
        UART_TEST(test_access_widths),
        UART_TEST(test_fifo_enable_and_trigger),
        cmocka_unit_test(test_rx_data_available_each_level),
        UART_TEST(test_rx_non_fifo),
        UART_TEST(test_char_timeout),
        UART_TEST(test_thre_interrupt),
        UART_TEST_OUT(test_thre_cleared_by_thr_write, out_2),
        UART_TEST(test_tx_back_pressure),
        UART_TEST_OUT(test_lsr_bits, out_1),
        UART_TEST(test_overrun_non_fifo),
        UART_TEST(test_overrun_fifo),
        UART_TEST(test_fifo_limits),
        UART_TEST_OUT(test_fifo_reset_bits, out_1),
        UART_TEST(test_loopback_echo),
        UART_TEST(test_loopback_modem_lines),
        UART_TEST(test_modem_inputs),
        UART_TEST(test_out2_gate),
        UART_TEST(test_iir_priorities),
        UART_TEST(test_break_and_fifo_error),
        UART_TEST(test_word_length),
        UART_TEST_OUT(test_reset_keeps_host_bytes, out_1),
        UART_TEST_OUT(test_state_round_trip, out_8),
        UART_TEST(test_state_loopback_and_modem_change),
        UART_TEST(test_state_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
