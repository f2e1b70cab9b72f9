/*
 * The driver's side of the 16550A whose model is uart.h: what a polled
 * guest driver does with the registers, as static inline code over the
 * caller's one-byte register accessors. Programs that play the guest
 * (umdev-serial-drive, the conformance kit's serial load generator) use
 * it; it needs nothing of the model's code (uart.c) nor of libumdev, only
 * uart.h's register names, as include/umdev/accel_ring.h is the driver's
 * side of the accel rings.
 *
 * Every function returns the first accessor error as is, so a driver
 * over vfio-user passes the transport's -errno up.
 */
#ifndef UMDEV_SERIAL_UART_DRIVER_H
#define UMDEV_SERIAL_UART_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "uart.h"

/* Register access as the driver sees it (@reg: UART_*): 0 or -errno. */
struct uart_driver {
    int (*read)(void *opaque, unsigned int reg, uint8_t *v);
    int (*write)(void *opaque, unsigned int reg, uint8_t v);
    void *opaque;
};

/* Bytes uart_driver_setup() reads away at most: more than a FIFO, for a
 * host end that was still sending, yet bounded against one that never
 * stops. */
#define UART_DRIVER_DRAIN_MAX 64u

/**
 * uart_driver_setup() - 8N1 at the fastest divisor (1), FIFOs on and
 * cleared with the receive trigger at 14, DTR, RTS and OUT2 set, and no
 * interrupts: the driver polls LSR. Then read away what the receiver
 * still holds from before (at most UART_DRIVER_DRAIN_MAX bytes).
 * Return: 0, or the first accessor error.
 */
static inline int
uart_driver_setup(const struct uart_driver *d)
{
    static const uint8_t setup[][2] = {
        { UART_IER, 0 },
        { UART_LCR, UART_LCR_DLAB },
        { UART_DLL, 1 },
        { UART_DLM, 0 },
        { UART_LCR, UART_LCR_WLEN8 },
        { UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR |
                        UART_FCR_CLEAR_XMIT | UART_FCR_TRIGGER_14 },
        { UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2 },
    };
    unsigned int i;
    uint8_t lsr, v;
    int rc = 0;

    for (i = 0; i < sizeof(setup) / sizeof(setup[0]) && rc == 0; i++)
        rc = d->write(d->opaque, setup[i][0], setup[i][1]);
    for (i = 0; i < UART_DRIVER_DRAIN_MAX && rc == 0; i++) {
        rc = d->read(d->opaque, UART_LSR, &lsr);
        if (rc < 0 || !(lsr & UART_LSR_DR))
            break;
        rc = d->read(d->opaque, UART_RX, &v);
    }
    return rc;
}

/**
 * uart_driver_send() - if LSR says THRE (with FIFOs on: the whole
 * transmit FIFO is free), write up to UART_FIFO_SIZE bytes of @buf to THR.
 * Return: bytes written, 0 when the transmitter was busy, or the first
 * accessor error.
 */
static inline long
uart_driver_send(const struct uart_driver *d, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    uint8_t lsr;
    int rc = d->read(d->opaque, UART_LSR, &lsr);

    if (rc < 0 || !(lsr & UART_LSR_THRE))
        return rc;
    for (; n < len && n < UART_FIFO_SIZE; n++) {
        rc = d->write(d->opaque, UART_TX, buf[n]);
        if (rc < 0)
            return rc;
    }
    return (long)n;
}

/**
 * uart_driver_recv() - read RBR while LSR says DR, at most @len bytes
 * into @buf, LSR again after every byte (as Linux's 8250 driver does).
 * @lsr: every LSR value read, ORed together. The error bits clear when
 * LSR is read, so this is where UART_LSR_OE (a byte was lost) shows.
 * Return: bytes read, 0 when none was ready, or the first accessor error.
 */
static inline long
uart_driver_recv(const struct uart_driver *d, uint8_t *buf, size_t len,
                 uint8_t *lsr)
{
    size_t n = 0;
    uint8_t v;
    int rc = d->read(d->opaque, UART_LSR, &v);

    *lsr = 0;
    while (rc == 0) {
        *lsr |= v;
        if (!(v & UART_LSR_DR) || n == len)
            return (long)n;
        rc = d->read(d->opaque, UART_RX, &buf[n++]);
        if (rc == 0)
            rc = d->read(d->opaque, UART_LSR, &v);
    }
    return rc;
}

#endif /* UMDEV_SERIAL_UART_DRIVER_H */
