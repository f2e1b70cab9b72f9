/*
 * A 16550A UART register model: pure logic, no I/O, no umdev dependency,
 * so it is unit-tested register by register. The embedder (serial.c)
 * forwards 1-byte register accesses, feeds bytes from the host end while
 * uart_rx_room() allows, drains bytes for the host end with
 * uart_tx_peek()/uart_tx_consume(), drives the character-timeout timer as
 * uart_rx_timer() asks, and copies uart_irq_level() to its interrupt line.
 *
 * Register names and bits follow the National PC16550D datasheet with the
 * names Linux's include/uapi/linux/serial_reg.h gives them. Every change of
 * state ends in one uart_update_irq() that recomputes IIR and the line, as
 * QEMU's hw/char/serial.c does.
 *
 * Not thread-safe: one embedder thread owns a struct uart.
 */
#ifndef UMDEV_SERIAL_UART_H
#define UMDEV_SERIAL_UART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Register offsets (8 bytes of I/O space). */
#define UART_RX 0  /* in: receive buffer (DLAB=0) */
#define UART_TX 0  /* out: transmit holding (DLAB=0) */
#define UART_DLL 0 /* divisor latch low (DLAB=1) */
#define UART_IER 1 /* interrupt enable (DLAB=0) */
#define UART_DLM 1 /* divisor latch high (DLAB=1) */
#define UART_IIR 2 /* in: interrupt identification */
#define UART_FCR 2 /* out: FIFO control */
#define UART_LCR 3 /* line control */
#define UART_MCR 4 /* modem control */
#define UART_LSR 5 /* line status (read-only) */
#define UART_MSR 6 /* modem status (read-only) */
#define UART_SCR 7 /* scratch */
#define UART_NR_REGS 8

#define UART_IER_RDI 0x01  /* received data available (and timeout) */
#define UART_IER_THRI 0x02 /* transmit holding register empty */
#define UART_IER_RLSI 0x04 /* receiver line status */
#define UART_IER_MSI 0x08  /* modem status */
#define UART_IER_MASK 0x0f /* the upper nibble reads as 0 on a 16550A */

#define UART_IIR_NO_INT 0x01
#define UART_IIR_ID 0x0e
#define UART_IIR_MSI 0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_RX_TIMEOUT 0x0c
#define UART_IIR_FIFO_ENABLED 0xc0 /* both bits: 16550A with FIFOs on */

#define UART_FCR_ENABLE_FIFO 0x01
#define UART_FCR_CLEAR_RCVR 0x02
#define UART_FCR_CLEAR_XMIT 0x04
#define UART_FCR_DMA_SELECT 0x08
#define UART_FCR_TRIGGER_MASK 0xc0
#define UART_FCR_TRIGGER_1 0x00
#define UART_FCR_TRIGGER_4 0x40
#define UART_FCR_TRIGGER_8 0x80
#define UART_FCR_TRIGGER_14 0xc0

#define UART_LCR_WLEN_MASK 0x03 /* 5 + n data bits */
#define UART_LCR_WLEN8 0x03     /* 8 data bits */
#define UART_LCR_STOP 0x04
#define UART_LCR_PARITY 0x08
#define UART_LCR_EPAR 0x10
#define UART_LCR_SPAR 0x20
#define UART_LCR_SBC 0x40 /* set break */
#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08 /* gates the interrupt output, as on PCs */
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f

#define UART_LSR_DR 0x01   /* data ready */
#define UART_LSR_OE 0x02   /* overrun */
#define UART_LSR_PE 0x04   /* parity error */
#define UART_LSR_FE 0x08   /* framing error */
#define UART_LSR_BI 0x10   /* break interrupt */
#define UART_LSR_THRE 0x20 /* transmit holding register (FIFO) empty */
#define UART_LSR_TEMT 0x40 /* transmitter empty: nothing left to send */
#define UART_LSR_FIFOE 0x80 /* an error is somewhere in the RX FIFO */
#define UART_LSR_BRK_ERROR_BITS 0x1e /* OE | PE | FE | BI */

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80
#define UART_MSR_ANY_DELTA 0x0f
#define UART_MSR_STATUS 0xf0

/* Limits. */
#define UART_FIFO_SIZE 16u       /* RX and TX FIFOs of a 16550A */
#define UART_OUT_SIZE 4096u      /* bytes held for the host end, at most */
#define UART_BASE_BAUD 115200u   /* 1.8432 MHz clock / 16 */
#define UART_RESET_DIVISOR 12u   /* 9600 baud after reset */

/* Per-character receive flags kept beside each RX FIFO byte. */
#define UART_RXF_PE UART_LSR_PE
#define UART_RXF_FE UART_LSR_FE
#define UART_RXF_BI UART_LSR_BI

struct uart_stats {
    uint64_t rx_bytes;    /* bytes taken from the host end */
    uint64_t tx_bytes;    /* bytes handed to the host end */
    uint64_t overruns;    /* receive overruns (loopback only: the host
                           * path is flow-controlled and never overruns) */
    uint64_t tx_dropped;  /* THR writes while THRE was clear (lost, as on
                           * hardware) */
    uint64_t fifo_cleared; /* bytes discarded by guest FIFO resets */
};

/* Everything below is private to uart.c; embed the struct, use the API. */
struct uart {
    uint8_t ier, iir, lcr, mcr, lsr, msr, scr, fcr;
    uint8_t rbr;          /* last byte read (RBR when the FIFO is empty) */
    uint16_t divisor;
    uint8_t modem_in;     /* CTS/DSR/RI/DCD from the host end */
    bool thr_ipending;    /* THRE interrupt latched */
    bool timeout_ipending; /* character timeout indicated */
    bool timer_armed;     /* the embedder's timer is running */
    bool timer_restart;   /* a byte arrived or was read since arming */
    bool irq;             /* interrupt output (after the OUT2 gate) */

    uint8_t rx[UART_FIFO_SIZE];
    uint8_t rx_flags[UART_FIFO_SIZE];
    unsigned int rx_head, rx_count;
    uint8_t tx[UART_FIFO_SIZE];
    unsigned int tx_head, tx_count;

    uint8_t out[UART_OUT_SIZE]; /* ring of bytes for the host end */
    size_t out_head, out_count, out_limit;

    struct uart_stats stats;
};

/**
 * uart_init() - power-on state.
 * @out_limit: bytes held for the host end before the transmitter stalls
 *   (THRE stays clear); 0 means UART_OUT_SIZE, larger values are clamped.
 */
void uart_init(struct uart *u, size_t out_limit);

/**
 * uart_reset() - master reset: registers and FIFOs to power-on values.
 * Bytes already handed to the host end (uart_tx_pending()) are kept: they
 * left the UART. The modem inputs are external and kept too.
 */
void uart_reset(struct uart *u);

/**
 * uart_access() - a guest register access.
 * @offset: 0..7. @len: must be 1 (the 16550A has byte registers only).
 * Return: 0, or -EINVAL for another width or an offset beyond 7.
 */
int uart_access(struct uart *u, uint64_t offset, void *buf, size_t len,
                bool is_write);

/* Byte-wide helpers for tests; @offset & 7 selects the register. */
uint8_t uart_read(struct uart *u, unsigned int offset);
void uart_write(struct uart *u, unsigned int offset, uint8_t value);

/**
 * uart_rx_room() - bytes the receiver takes from the host end now: free
 * FIFO slots (one holding register with FIFOs off), 0 in loopback mode
 * (the serial input is disconnected then). Read no more than this from
 * the host so the rest waits in the host's buffers.
 */
size_t uart_rx_room(const struct uart *u);

/**
 * uart_rx_push() - one byte from the host end arrives on the serial input.
 * Return: 0; -ENOSPC when uart_rx_room() is 0 (the byte is refused, not
 * lost: keep it and offer it again later).
 */
int uart_rx_push(struct uart *u, uint8_t byte);

/** Bytes waiting for the host end. */
size_t uart_tx_pending(const struct uart *u);

/**
 * uart_tx_peek() - the first contiguous run of bytes for the host end.
 * Return: its length (0 if none); *@p points into the model and stays
 * valid until the next call that changes it.
 */
size_t uart_tx_peek(const struct uart *u, const uint8_t **p);

/**
 * uart_tx_consume() - the host end took @n (<= uart_tx_pending()) bytes.
 * The transmitter then moves waiting FIFO bytes on, and THRE rises (with
 * its interrupt) when the FIFO drains.
 */
void uart_tx_consume(struct uart *u, size_t n);

/**
 * uart_set_modem_inputs() - the modem input lines the host end drives:
 * any of UART_MSR_CTS, UART_MSR_DSR, UART_MSR_RI, UART_MSR_DCD. Changes
 * set the MSR delta bits (except in loopback mode, where the inputs follow
 * MCR instead).
 */
void uart_set_modem_inputs(struct uart *u, uint8_t lines);

/** The interrupt output: an interrupt is pending and MCR.OUT2 is set. */
bool uart_irq_level(const struct uart *u);

/** uart_update_irq() - recompute IIR and the interrupt output. */
void uart_update_irq(struct uart *u);

/* The character-timeout timer (PC16550D "FIFO interrupt mode operation"):
 * the embedder runs one timer per UART as this asks. */
enum uart_timer_op {
    UART_TIMER_KEEP,  /* leave the timer as it is */
    UART_TIMER_START, /* (re)start it to expire *@delay_ns from now */
    UART_TIMER_STOP,  /* stop it; no timeout is possible now */
};

/**
 * uart_rx_timer() - what to do with the timer; call after every access,
 * push or consume. A timeout is possible while FIFOs are on and the RX
 * FIFO holds fewer bytes than the trigger level but at least one; each
 * byte received or read restarts the 4-character window.
 */
enum uart_timer_op uart_rx_timer(struct uart *u, uint64_t *delay_ns);

/** uart_timer_expired() - the timer started by UART_TIMER_START fired. */
void uart_timer_expired(struct uart *u);

/** Four character times at the programmed divisor and frame, in ns. */
uint64_t uart_char_timeout_ns(const struct uart *u);

/** RX FIFO trigger level in bytes (1 with FIFOs off). */
unsigned int uart_rx_trigger(const struct uart *u);

void uart_get_stats(const struct uart *u, struct uart_stats *out);

/*
 * Migration state of one UART (devices/serial/README.md "Migration"): a
 * little-endian blob of UART_STATE_FIXED bytes (registers, interrupt
 * latches, both FIFOs oldest byte first) followed by the bytes held for
 * the host end, as many as its last field says. IIR, LSR's live bits and
 * the interrupt output are not in it: they follow from the rest. Nor are
 * the modem inputs (the host end's, which the destination has its own
 * of), the timer (restarted on resume, which may lengthen a character
 * timeout, never shorten it) or the statistics.
 */
#define UART_STATE_FIXED 68u

/** Bytes uart_state_save() writes now (UART_STATE_FIXED and the held bytes). */
size_t uart_state_size(const struct uart *u);

/** uart_state_save() - write uart_state_size() bytes at @buf. */
void uart_state_save(const struct uart *u, uint8_t *buf);

/**
 * uart_state_check() - is the state at @buf (@len bytes available, maybe
 * followed by other data) one @u can take? Every field is checked against
 * what a 16550A can hold: register bits that read as 0, FIFO counts
 * within the FIFO (one byte with FIFOs off), per-character flags, latches
 * that only exist in some states, reserved bytes, and the held bytes
 * within @u's host-end buffer limit.
 * @err: @errlen bytes for why not, NUL-terminated (may be NULL).
 * Return: the bytes the state spans (<= @len), or -EINVAL.
 */
long uart_state_check(const struct uart *u, const uint8_t *buf, size_t len,
                      char *err, size_t errlen);

/**
 * uart_state_load() - replace @u's state with a checked one. The modem
 * inputs stay @u's own: where they differ from the saved MSR's status
 * bits, the delta bits and modem status interrupt follow as for any
 * change of the lines. The statistics and the host-end buffer limit stay
 * @u's too. The timer is reported stopped: the next uart_rx_timer() starts
 * a fresh window if a timeout is possible.
 */
void uart_state_load(struct uart *u, const uint8_t *buf);

/**
 * uart_timer_cancelled() - the embedder dropped the timer it was running
 * (its device stopped): the next uart_rx_timer() starts it afresh.
 */
void uart_timer_cancelled(struct uart *u);

#endif /* UMDEV_SERIAL_UART_H */
