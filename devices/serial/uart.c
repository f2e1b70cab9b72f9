/*
 * The 16550A register model (see uart.h). Section names refer to the
 * National Semiconductor PC16550D datasheet.
 *
 * Transmission is instantaneous: a byte leaves the TX FIFO as soon as the
 * host-end buffer (or, in loopback mode, the receiver) takes it, so the
 * FIFO only holds bytes while the host end is stalled. That stall is the
 * back-pressure the guest sees: THRE stays clear until the host end
 * consumes bytes and the FIFO drains.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "uart.h"

#define NSEC_PER_SEC 1000000000ull

static bool
fifo_on(const struct uart *u)
{
    return (u->fcr & UART_FCR_ENABLE_FIFO) != 0;
}

static bool
loopback(const struct uart *u)
{
    return (u->mcr & UART_MCR_LOOP) != 0;
}

/* The FIFOs shrink to one holding register each with FIFOs off. */
static unsigned int
fifo_capacity(const struct uart *u)
{
    return fifo_on(u) ? UART_FIFO_SIZE : 1;
}

/* Data bits of the programmed word length (LCR bits 0-1: 5..8 bits). */
static uint8_t
word_mask(const struct uart *u)
{
    return (uint8_t)((1u << (5 + (u->lcr & UART_LCR_WLEN_MASK))) - 1);
}

unsigned int
uart_rx_trigger(const struct uart *u)
{
    static const unsigned int levels[4] = { 1, 4, 8, 14 };

    if (!fifo_on(u))
        return 1;
    return levels[(u->fcr & UART_FCR_TRIGGER_MASK) >> 6];
}

static bool
rx_fifo_has_error(const struct uart *u)
{
    unsigned int i;

    for (i = 0; i < u->rx_count; i++)
        if (u->rx_flags[(u->rx_head + i) % UART_FIFO_SIZE])
            return true;
    return false;
}

/* LSR as the guest reads it: the latched error bits plus live status.
 * TEMT equals THRE here: a byte that left the FIFO has left the UART
 * (it sits in the host-end buffer, which stands for the wire). */
static uint8_t
lsr_value(const struct uart *u)
{
    uint8_t v = u->lsr & UART_LSR_BRK_ERROR_BITS;

    if (u->rx_count)
        v |= UART_LSR_DR;
    if (u->tx_count == 0)
        v |= UART_LSR_THRE | UART_LSR_TEMT;
    if (fifo_on(u) && rx_fifo_has_error(u))
        v |= UART_LSR_FIFOE;
    return v;
}

void
uart_update_irq(struct uart *u)
{
    uint8_t id = UART_IIR_NO_INT;

    /* §8.6 Table IV: priorities 1 (highest) to 4. */
    if ((u->ier & UART_IER_RLSI) && (u->lsr & UART_LSR_BRK_ERROR_BITS))
        id = UART_IIR_RLSI;
    else if ((u->ier & UART_IER_RDI) && u->timeout_ipending)
        id = UART_IIR_RX_TIMEOUT;
    else if ((u->ier & UART_IER_RDI) && u->rx_count >= uart_rx_trigger(u))
        id = UART_IIR_RDI;
    else if ((u->ier & UART_IER_THRI) && u->thr_ipending)
        id = UART_IIR_THRI;
    else if ((u->ier & UART_IER_MSI) && (u->msr & UART_MSR_ANY_DELTA))
        id = UART_IIR_MSI;
    u->iir = (uint8_t)(id | (fifo_on(u) ? UART_IIR_FIFO_ENABLED : 0));
    u->irq = !(id & UART_IIR_NO_INT) && (u->mcr & UART_MCR_OUT2);
}

bool
uart_irq_level(const struct uart *u)
{
    return u->irq;
}

/* Recompute the MSR status nibble from its source and set the deltas. */
static void
msr_update(struct uart *u)
{
    uint8_t st, changed, delta = 0;

    if (loopback(u)) {
        /* §8.7: in loopback the modem outputs drive the inputs. */
        st = 0;
        if (u->mcr & UART_MCR_RTS)
            st |= UART_MSR_CTS;
        if (u->mcr & UART_MCR_DTR)
            st |= UART_MSR_DSR;
        if (u->mcr & UART_MCR_OUT1)
            st |= UART_MSR_RI;
        if (u->mcr & UART_MCR_OUT2)
            st |= UART_MSR_DCD;
    } else {
        st = u->modem_in & UART_MSR_STATUS;
    }
    changed = (uint8_t)((u->msr ^ st) & UART_MSR_STATUS);
    if (changed & UART_MSR_CTS)
        delta |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR)
        delta |= UART_MSR_DDSR;
    if (changed & UART_MSR_DCD)
        delta |= UART_MSR_DDCD;
    if ((u->msr & UART_MSR_RI) && !(st & UART_MSR_RI))
        delta |= UART_MSR_TERI; /* trailing edge only */
    u->msr = (uint8_t)((u->msr & UART_MSR_ANY_DELTA) | delta | st);
}

/* A character arrives at the receiver (host end or loopback). */
static void
rx_put(struct uart *u, uint8_t c, uint8_t flags)
{
    unsigned int idx;

    c &= word_mask(u);
    /* Any received character restarts the timeout window (§8.6.1). */
    u->timeout_ipending = false;
    u->timer_restart = true;
    if (u->rx_count == fifo_capacity(u)) {
        u->lsr |= UART_LSR_OE;
        u->stats.overruns++;
        if (!fifo_on(u)) {
            /* 16450 mode: the new character overwrites RBR. */
            u->rx[u->rx_head] = c;
            u->rx_flags[u->rx_head] = flags;
            u->lsr |= flags;
        }
        /* FIFO mode: the character in the shift register is lost. */
        return;
    }
    idx = (u->rx_head + u->rx_count) % UART_FIFO_SIZE;
    u->rx[idx] = c;
    u->rx_flags[idx] = flags;
    u->rx_count++;
    if (u->rx_count == 1)
        u->lsr |= flags; /* the top character's errors show in LSR */
}

static uint8_t
rx_pop(struct uart *u)
{
    if (u->rx_count == 0)
        return u->rbr; /* an empty RBR reads its last value */
    u->rbr = u->rx[u->rx_head];
    u->rx_flags[u->rx_head] = 0;
    u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
    u->rx_count--;
    if (u->rx_count)
        u->lsr |= u->rx_flags[u->rx_head];
    u->timeout_ipending = false;
    u->timer_restart = true;
    return u->rbr;
}

static void
rx_clear(struct uart *u)
{
    u->stats.fifo_cleared += u->rx_count;
    memset(u->rx_flags, 0, sizeof(u->rx_flags));
    u->rx_head = 0;
    u->rx_count = 0;
    u->lsr &= (uint8_t)~(UART_LSR_PE | UART_LSR_FE | UART_LSR_BI);
    u->timeout_ipending = false;
}

static void
tx_clear(struct uart *u)
{
    if (u->tx_count)
        u->thr_ipending = true; /* the FIFO became empty */
    u->stats.fifo_cleared += u->tx_count;
    u->tx_head = 0;
    u->tx_count = 0;
}

/* The transmitter: move FIFO bytes on while the next stage takes them. */
static void
tx_run(struct uart *u)
{
    bool had = u->tx_count > 0;

    while (u->tx_count) {
        uint8_t c = u->tx[u->tx_head];

        if (loopback(u)) {
            rx_put(u, c, 0);
        } else if (u->out_count < u->out_limit) {
            u->out[(u->out_head + u->out_count) % UART_OUT_SIZE] = c;
            u->out_count++;
        } else {
            break; /* host end stalled: back-pressure */
        }
        u->tx_head = (u->tx_head + 1) % UART_FIFO_SIZE;
        u->tx_count--;
    }
    if (had && u->tx_count == 0)
        u->thr_ipending = true; /* §8.6: THRE interrupt on FIFO empty */
}

static void
write_thr(struct uart *u, uint8_t v)
{
    u->thr_ipending = false; /* cleared by writing THR */
    if (u->tx_count == fifo_capacity(u)) {
        u->stats.tx_dropped++; /* written while THRE was clear */
    } else {
        u->tx[(u->tx_head + u->tx_count) % UART_FIFO_SIZE] =
            v & word_mask(u);
        u->tx_count++;
    }
    tx_run(u);
}

static void
write_ier(struct uart *u, uint8_t v)
{
    uint8_t old = u->ier;

    u->ier = v & UART_IER_MASK;
    /* Enabling the THRE interrupt while THR is empty raises it. */
    if ((u->ier & UART_IER_THRI) && !(old & UART_IER_THRI) &&
        u->tx_count == 0)
        u->thr_ipending = true;
}

static void
write_fcr(struct uart *u, uint8_t v)
{
    /* §8.4: changing FCR0 clears both FIFOs; the other bits are written
     * only together with FCR0 set. */
    if ((v ^ u->fcr) & UART_FCR_ENABLE_FIFO) {
        rx_clear(u);
        tx_clear(u);
    }
    if (!(v & UART_FCR_ENABLE_FIFO)) {
        u->fcr = 0;
        return;
    }
    if (v & UART_FCR_CLEAR_RCVR)
        rx_clear(u);
    if (v & UART_FCR_CLEAR_XMIT)
        tx_clear(u);
    u->fcr = v & (UART_FCR_ENABLE_FIFO | UART_FCR_DMA_SELECT |
                  UART_FCR_TRIGGER_MASK);
}

static void
write_lcr(struct uart *u, uint8_t v)
{
    bool brk_on = (v & UART_LCR_SBC) && !(u->lcr & UART_LCR_SBC);

    u->lcr = v;
    /* A break sent in loopback is received as a break: one NUL with BI. */
    if (brk_on && loopback(u))
        rx_put(u, 0, UART_LSR_BI);
}

static void
write_mcr(struct uart *u, uint8_t v)
{
    u->mcr = v & UART_MCR_MASK;
    msr_update(u);
    tx_run(u); /* loopback on/off changes where stalled bytes go */
}

static uint8_t
read_lsr(struct uart *u)
{
    uint8_t v = lsr_value(u);

    /* Reading LSR clears the error indications; the top character's
     * errors have now been reported. */
    u->lsr &= (uint8_t)~UART_LSR_BRK_ERROR_BITS;
    if (u->rx_count)
        u->rx_flags[u->rx_head] = 0;
    return v;
}

static uint8_t
read_iir(struct uart *u)
{
    uint8_t v = u->iir;

    if ((v & UART_IIR_ID) == UART_IIR_THRI && !(v & UART_IIR_NO_INT))
        u->thr_ipending = false; /* cleared by reading IIR (source) */
    return v;
}

static uint8_t
read_msr(struct uart *u)
{
    uint8_t v = u->msr;

    u->msr &= (uint8_t)~UART_MSR_ANY_DELTA;
    return v;
}

uint8_t
uart_read(struct uart *u, unsigned int offset)
{
    bool dlab = (u->lcr & UART_LCR_DLAB) != 0;
    uint8_t v = 0;

    switch (offset & 7) {
    case UART_RX:
        v = dlab ? (uint8_t)u->divisor : rx_pop(u);
        break;
    case UART_IER:
        v = dlab ? (uint8_t)(u->divisor >> 8) : u->ier;
        break;
    case UART_IIR:
        v = read_iir(u);
        break;
    case UART_LCR:
        v = u->lcr;
        break;
    case UART_MCR:
        v = u->mcr;
        break;
    case UART_LSR:
        v = read_lsr(u);
        break;
    case UART_MSR:
        v = read_msr(u);
        break;
    case UART_SCR:
        v = u->scr;
        break;
    }
    uart_update_irq(u);
    return v;
}

void
uart_write(struct uart *u, unsigned int offset, uint8_t v)
{
    bool dlab = (u->lcr & UART_LCR_DLAB) != 0;

    switch (offset & 7) {
    case UART_TX:
        if (dlab)
            u->divisor = (uint16_t)((u->divisor & 0xff00) | v);
        else
            write_thr(u, v);
        break;
    case UART_IER:
        if (dlab)
            u->divisor = (uint16_t)((u->divisor & 0x00ff) | (v << 8));
        else
            write_ier(u, v);
        break;
    case UART_FCR:
        write_fcr(u, v);
        break;
    case UART_LCR:
        write_lcr(u, v);
        break;
    case UART_MCR:
        write_mcr(u, v);
        break;
    case UART_LSR:
    case UART_MSR:
        break; /* read-only (factory test on real parts): ignored */
    case UART_SCR:
        u->scr = v;
        break;
    }
    uart_update_irq(u);
}

int
uart_access(struct uart *u, uint64_t offset, void *buf, size_t len,
            bool is_write)
{
    uint8_t *p = buf;

    if (len != 1 || offset >= UART_NR_REGS)
        return -EINVAL;
    if (is_write)
        uart_write(u, (unsigned int)offset, *p);
    else
        *p = uart_read(u, (unsigned int)offset);
    return 0;
}

size_t
uart_rx_room(const struct uart *u)
{
    if (loopback(u))
        return 0;
    return fifo_capacity(u) - u->rx_count;
}

int
uart_rx_push(struct uart *u, uint8_t byte)
{
    if (uart_rx_room(u) == 0)
        return -ENOSPC;
    rx_put(u, byte, 0);
    u->stats.rx_bytes++;
    uart_update_irq(u);
    return 0;
}

size_t
uart_tx_pending(const struct uart *u)
{
    return u->out_count;
}

size_t
uart_tx_peek(const struct uart *u, const uint8_t **p)
{
    size_t run = UART_OUT_SIZE - u->out_head;

    *p = u->out + u->out_head;
    return u->out_count < run ? u->out_count : run;
}

void
uart_tx_consume(struct uart *u, size_t n)
{
    if (n > u->out_count)
        n = u->out_count; /* programmer error; stay consistent */
    u->out_head = (u->out_head + n) % UART_OUT_SIZE;
    u->out_count -= n;
    if (u->out_count == 0)
        u->out_head = 0;
    u->stats.tx_bytes += n;
    tx_run(u);
    uart_update_irq(u);
}

void
uart_set_modem_inputs(struct uart *u, uint8_t lines)
{
    u->modem_in = lines & UART_MSR_STATUS;
    msr_update(u);
    uart_update_irq(u);
}

static bool
timeout_possible(const struct uart *u)
{
    return fifo_on(u) && u->rx_count > 0 &&
           u->rx_count < uart_rx_trigger(u) && !u->timeout_ipending;
}

uint64_t
uart_char_timeout_ns(const struct uart *u)
{
    unsigned int bits = 1 + 5 + (u->lcr & UART_LCR_WLEN_MASK) + 1;
    uint64_t divisor = u->divisor ? u->divisor : 1; /* 0 acts as 1 */

    if (u->lcr & UART_LCR_PARITY)
        bits++;
    if (u->lcr & UART_LCR_STOP)
        bits++;
    return 4 * bits * divisor * NSEC_PER_SEC / UART_BASE_BAUD;
}

enum uart_timer_op
uart_rx_timer(struct uart *u, uint64_t *delay_ns)
{
    if (!timeout_possible(u)) {
        u->timer_restart = false;
        if (!u->timer_armed)
            return UART_TIMER_KEEP;
        u->timer_armed = false;
        return UART_TIMER_STOP;
    }
    if (u->timer_armed && !u->timer_restart)
        return UART_TIMER_KEEP;
    u->timer_armed = true;
    u->timer_restart = false;
    *delay_ns = uart_char_timeout_ns(u);
    return UART_TIMER_START;
}

void
uart_timer_expired(struct uart *u)
{
    /* A restart not yet applied by the embedder makes this expiry
     * stale; the next uart_rx_timer() starts a fresh window. */
    if (!u->timer_armed || u->timer_restart)
        return;
    u->timer_armed = false;
    if (timeout_possible(u)) {
        u->timeout_ipending = true;
        uart_update_irq(u);
    }
}

void
uart_reset(struct uart *u)
{
    u->ier = 0;
    u->lcr = 0;
    u->mcr = 0;
    u->fcr = 0;
    u->scr = 0;
    u->lsr = 0;
    u->rbr = 0;
    u->divisor = UART_RESET_DIVISOR;
    memset(u->rx_flags, 0, sizeof(u->rx_flags));
    u->rx_head = u->rx_count = 0;
    u->tx_head = u->tx_count = 0;
    u->thr_ipending = false;
    u->timeout_ipending = false;
    u->timer_restart = false;
    /* timer_armed stays: the next uart_rx_timer() says STOP. */
    u->msr = u->modem_in & UART_MSR_STATUS; /* no deltas after reset */
    uart_update_irq(u);
}

void
uart_init(struct uart *u, size_t out_limit)
{
    memset(u, 0, sizeof(*u));
    if (out_limit == 0 || out_limit > UART_OUT_SIZE)
        out_limit = UART_OUT_SIZE;
    u->out_limit = out_limit;
    uart_reset(u);
}

void
uart_get_stats(const struct uart *u, struct uart_stats *out)
{
    *out = u->stats;
}

/* The state's layout (uart.h, devices/serial/README.md "Migration"). */
enum {
    ST_IER = 0,
    ST_LCR = 1,
    ST_MCR = 2,
    ST_FCR = 3,
    ST_LSR = 4,
    ST_MSR = 5,
    ST_SCR = 6,
    ST_RBR = 7,
    ST_DIVISOR = 8, /* 2 bytes */
    ST_FLAGS = 10,
    ST_RX_COUNT = 11,
    ST_RX = 12,
    ST_RX_FLAGS = ST_RX + UART_FIFO_SIZE,
    ST_TX_COUNT = ST_RX_FLAGS + UART_FIFO_SIZE,
    ST_RSVD1 = ST_TX_COUNT + 1,
    ST_TX = ST_RSVD1 + 1,
    ST_RSVD2 = ST_TX + UART_FIFO_SIZE, /* 2 bytes */
    ST_OUT_COUNT = ST_RSVD2 + 2,       /* 4 bytes */
};
_Static_assert(ST_OUT_COUNT + 4 == UART_STATE_FIXED, "uart state layout");

#define ST_F_THR_IPENDING 0x01
#define ST_F_TIMEOUT_IPENDING 0x02

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

size_t
uart_state_size(const struct uart *u)
{
    return UART_STATE_FIXED + u->out_count;
}

void
uart_state_save(const struct uart *u, uint8_t *buf)
{
    unsigned int i;
    size_t n;

    memset(buf, 0, UART_STATE_FIXED);
    buf[ST_IER] = u->ier;
    buf[ST_LCR] = u->lcr;
    buf[ST_MCR] = u->mcr;
    buf[ST_FCR] = u->fcr;
    buf[ST_LSR] = u->lsr & UART_LSR_BRK_ERROR_BITS;
    buf[ST_MSR] = u->msr;
    buf[ST_SCR] = u->scr;
    buf[ST_RBR] = u->rbr;
    buf[ST_DIVISOR] = (uint8_t)u->divisor;
    buf[ST_DIVISOR + 1] = (uint8_t)(u->divisor >> 8);
    buf[ST_FLAGS] =
        (uint8_t)((u->thr_ipending ? ST_F_THR_IPENDING : 0) |
                  (u->timeout_ipending ? ST_F_TIMEOUT_IPENDING : 0));
    buf[ST_RX_COUNT] = (uint8_t)u->rx_count;
    for (i = 0; i < u->rx_count; i++) {
        buf[ST_RX + i] = u->rx[(u->rx_head + i) % UART_FIFO_SIZE];
        buf[ST_RX_FLAGS + i] = u->rx_flags[(u->rx_head + i) % UART_FIFO_SIZE];
    }
    buf[ST_TX_COUNT] = (uint8_t)u->tx_count;
    for (i = 0; i < u->tx_count; i++)
        buf[ST_TX + i] = u->tx[(u->tx_head + i) % UART_FIFO_SIZE];
    put_le32(buf + ST_OUT_COUNT, (uint32_t)u->out_count);
    /* The ring in order, in at most two runs. */
    n = UART_OUT_SIZE - u->out_head;
    if (n > u->out_count)
        n = u->out_count;
    memcpy(buf + UART_STATE_FIXED, u->out + u->out_head, n);
    memcpy(buf + UART_STATE_FIXED + n, u->out, u->out_count - n);
}

/* Bytes [@from, @to) of @buf are all zero. */
static bool
all_zero(const uint8_t *buf, size_t from, size_t to)
{
    for (; from < to; from++)
        if (buf[from] != 0)
            return false;
    return true;
}

/* The MSR status nibble loopback derives from @mcr (msr_update()). */
static uint8_t
loop_status(uint8_t mcr)
{
    return (uint8_t)(((mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
                     ((mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
                     ((mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) |
                     ((mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0));
}

#define STATE_REFUSE(...)                                                      \
    do {                                                                       \
        if (err != NULL && errlen > 0)                                         \
            snprintf(err, errlen, __VA_ARGS__);                                \
        return -EINVAL;                                                        \
    } while (0)

long
uart_state_check(const struct uart *u, const uint8_t *buf, size_t len,
                 char *err, size_t errlen)
{
    uint8_t fcr, flags, mcr;
    unsigned int cap, rx_count, tx_count, i;
    uint32_t out_count;

    if (len < UART_STATE_FIXED)
        STATE_REFUSE("UART state truncated: %zu of %u bytes", len,
                     UART_STATE_FIXED);
    fcr = buf[ST_FCR];
    mcr = buf[ST_MCR];
    flags = buf[ST_FLAGS];
    rx_count = buf[ST_RX_COUNT];
    tx_count = buf[ST_TX_COUNT];
    out_count = get_le32(buf + ST_OUT_COUNT);
    if (buf[ST_IER] & ~UART_IER_MASK)
        STATE_REFUSE("IER %#x has bits a 16550A reads as 0", buf[ST_IER]);
    if (mcr & ~UART_MCR_MASK)
        STATE_REFUSE("MCR %#x has bits a 16550A reads as 0", mcr);
    if ((fcr & ~(UART_FCR_ENABLE_FIFO | UART_FCR_DMA_SELECT |
                 UART_FCR_TRIGGER_MASK)) ||
        (fcr != 0 && !(fcr & UART_FCR_ENABLE_FIFO)))
        STATE_REFUSE("FCR state %#x is not one the UART keeps", fcr);
    if (buf[ST_LSR] & ~UART_LSR_BRK_ERROR_BITS)
        STATE_REFUSE("LSR latch %#x has bits other than OE/PE/FE/BI",
                     buf[ST_LSR]);
    if (flags & ~(ST_F_THR_IPENDING | ST_F_TIMEOUT_IPENDING))
        STATE_REFUSE("unknown interrupt latch bits %#x", flags);
    cap = (fcr & UART_FCR_ENABLE_FIFO) ? UART_FIFO_SIZE : 1;
    if (rx_count > cap || tx_count > cap)
        STATE_REFUSE("FIFO counts rx %u, tx %u exceed the FIFO (%u)", rx_count,
                     tx_count, cap);
    for (i = 0; i < rx_count; i++)
        if (buf[ST_RX_FLAGS + i] & ~(UART_RXF_PE | UART_RXF_FE | UART_RXF_BI))
            STATE_REFUSE("RX FIFO byte %u has flags %#x", i,
                         buf[ST_RX_FLAGS + i]);
    if (!all_zero(buf, ST_RX + rx_count, ST_RX + UART_FIFO_SIZE) ||
        !all_zero(buf, ST_RX_FLAGS + rx_count, ST_RX_FLAGS + UART_FIFO_SIZE) ||
        !all_zero(buf, ST_TX + tx_count, ST_TX + UART_FIFO_SIZE) ||
        buf[ST_RSVD1] != 0 || !all_zero(buf, ST_RSVD2, ST_RSVD2 + 2))
        STATE_REFUSE("unused FIFO slots or reserved bytes are not zero");
    /* Latches that only exist in some states (uart_update_irq()'s
     * sources): THRI with an empty TX FIFO, a character timeout with
     * FIFOs on and a byte to time out. */
    if ((flags & ST_F_THR_IPENDING) && tx_count != 0)
        STATE_REFUSE("THRE interrupt latched with %u bytes in the TX FIFO",
                     tx_count);
    if ((flags & ST_F_TIMEOUT_IPENDING) &&
        (!(fcr & UART_FCR_ENABLE_FIFO) || rx_count == 0))
        STATE_REFUSE("character timeout latched without bytes in a FIFO");
    if ((mcr & UART_MCR_LOOP) &&
        (buf[ST_MSR] & UART_MSR_STATUS) != loop_status(mcr))
        STATE_REFUSE("MSR %#x does not follow MCR %#x in loopback", buf[ST_MSR],
                     mcr);
    if (out_count > u->out_limit)
        STATE_REFUSE("%u bytes held for the host end, more than its %zu-byte "
                     "buffer",
                     out_count, u->out_limit);
    if (len - UART_STATE_FIXED < out_count)
        STATE_REFUSE("UART state truncated: %zu of %u held bytes",
                     len - UART_STATE_FIXED, out_count);
    return (long)(UART_STATE_FIXED + out_count);
}

void
uart_state_load(struct uart *u, const uint8_t *buf)
{
    unsigned int i;

    u->ier = buf[ST_IER];
    u->lcr = buf[ST_LCR];
    u->mcr = buf[ST_MCR];
    u->fcr = buf[ST_FCR];
    u->lsr = buf[ST_LSR];
    u->msr = buf[ST_MSR];
    u->scr = buf[ST_SCR];
    u->rbr = buf[ST_RBR];
    u->divisor = (uint16_t)(buf[ST_DIVISOR] | buf[ST_DIVISOR + 1] << 8);
    u->thr_ipending = (buf[ST_FLAGS] & ST_F_THR_IPENDING) != 0;
    u->timeout_ipending = (buf[ST_FLAGS] & ST_F_TIMEOUT_IPENDING) != 0;
    u->rx_head = 0;
    u->rx_count = buf[ST_RX_COUNT];
    memset(u->rx, 0, sizeof(u->rx));
    memset(u->rx_flags, 0, sizeof(u->rx_flags));
    for (i = 0; i < u->rx_count; i++) {
        u->rx[i] = buf[ST_RX + i];
        u->rx_flags[i] = buf[ST_RX_FLAGS + i];
    }
    u->tx_head = 0;
    u->tx_count = buf[ST_TX_COUNT];
    memset(u->tx, 0, sizeof(u->tx));
    memcpy(u->tx, buf + ST_TX, u->tx_count);
    u->out_head = 0;
    u->out_count = get_le32(buf + ST_OUT_COUNT);
    memcpy(u->out, buf + UART_STATE_FIXED, u->out_count);
    u->timer_armed = false;
    u->timer_restart = false;
    /* The saved status bits against this side's modem inputs. */
    msr_update(u);
    uart_update_irq(u);
}

void
uart_timer_cancelled(struct uart *u)
{
    u->timer_armed = false;
    u->timer_restart = false;
}
