/*
 * What the standalone programs share (umdev-probe, umdev-serve,
 * umdev-serial-drive, umdev-access-drive, umdev-nvme-drive in tools/,
 * and umdevctl): reading numbers from the command line the same strict
 * way, a fatal error's message, and a monotonic clock. They are
 * installed, so they keep to libumdev and this; the test kit
 * (tests/common) is not theirs to link.
 */
#ifndef UMDEV_TOOL_H
#define UMDEV_TOOL_H

#include <stdbool.h>

/**
 * tool_parse_long() - all of @s as an integer in [@lo, @hi].
 * @base: as strtol() takes it (0: decimal, 0x hex or 0 octal).
 * Return: true with *@out set; false (nothing written) for an empty
 * string, trailing characters, an overflow or a value out of range.
 */
bool tool_parse_long(const char *s, int base, long lo, long hi, long *out);

/**
 * tool_parse_double() - all of @s as a finite number in [@lo, @hi].
 * Return: true with *@out set; false (nothing written) otherwise, NaN
 * and infinities included.
 */
bool tool_parse_double(const char *s, double lo, double hi, double *out);

/** "@prog: MESSAGE" on stderr, then exit(1). */
__attribute__((noreturn, format(printf, 2, 3))) void
tool_die(const char *prog, const char *fmt, ...);

/** Seconds of CLOCK_MONOTONIC (never goes back, any origin). */
double tool_now_s(void);

#endif /* UMDEV_TOOL_H */
