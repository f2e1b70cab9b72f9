/*
 * libFuzzer target: the 16550A model's migration state (devices/serial
 * uart.c, uart_state_check() and uart_state_load()). The input is a host-
 * end buffer limit, a UART state, then register accesses and host-end
 * events run on the loaded UART.
 *
 * Promises checked: the checker reads nothing outside the bytes it is
 * given (ASan) and spans at most them; a refused state leaves the UART
 * exactly as it was; an accepted one, loaded where the modem inputs agree
 * with its MSR, saves back to the very same bytes (the loader took all of
 * it and nothing else); and every state the model reaches from there by
 * any access or event is one the checker accepts (the checker refuses no
 * state the device can be in).
 *
 * Input: byte 0, the limit (0: UART_OUT_SIZE, else that many bytes); then
 * the state; then ops until the input ends, each an opcode byte (mod 7)
 * and one operand byte (missing: 0).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "uart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { OP_READ, OP_WRITE, OP_PUSH, OP_CONSUME, OP_TIMER, OP_MODEM, OP_RESET };

#define STATE_MAX (UART_STATE_FIXED + UART_OUT_SIZE)

/* The saved state of @u must be accepted by a UART like it, whole. */
static void
check_reachable(const struct uart *u, uint8_t *buf)
{
    static struct uart like;
    size_t n = uart_state_size(u);

    uart_init(&like, u->out_limit);
    uart_state_save(u, buf);
    FUZZ_CHECK_EQ(uart_state_check(&like, buf, n, NULL, 0), n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct uart u, before;
    static uint8_t buf[STATE_MAX];
    const uint8_t *end = data + size;
    char err[160];
    uint64_t ns;
    long n;

    if (size < 1)
        return 0;
    uart_init(&u, data[0]);
    data++;
    /* The destination's host end agrees with the state's MSR (outside
     * loopback, where MCR drives it), so the load adds no delta bits. */
    if ((size_t)(end - data) > 5)
        uart_set_modem_inputs(&u, data[5] & UART_MSR_STATUS);
    before = u;
    n = uart_state_check(&u, data, (size_t)(end - data), err, sizeof(err));
    if (n < 0) {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(memcmp(&u, &before, sizeof(u)) == 0);
        return 0;
    }
    FUZZ_CHECK(n >= (long)UART_STATE_FIXED && n <= end - data);
    uart_state_load(&u, data);
    FUZZ_CHECK_EQ(uart_state_size(&u), n);
    uart_state_save(&u, buf);
    FUZZ_CHECK(memcmp(buf, data, (size_t)n) == 0);
    data += n;

    while (data < end) {
        uint8_t op = *data++ % 7, arg = data < end ? *data++ : 0;

        switch (op) {
        case OP_READ:
            (void)uart_read(&u, arg & 7);
            break;
        case OP_WRITE:
            uart_write(&u, arg & 7, data < end ? *data++ : 0);
            break;
        case OP_PUSH:
            (void)uart_rx_push(&u, arg);
            break;
        case OP_CONSUME:
            uart_tx_consume(
                &u, arg <= uart_tx_pending(&u) ? arg : uart_tx_pending(&u));
            break;
        case OP_TIMER:
            if (uart_rx_timer(&u, &ns) == UART_TIMER_START && (arg & 1))
                uart_timer_expired(&u);
            break;
        case OP_MODEM:
            uart_set_modem_inputs(&u, arg);
            break;
        case OP_RESET:
            uart_reset(&u);
            break;
        }
        check_reachable(&u, buf);
    }
    return 0;
}
