/*
 * What the static guest-side helpers of the e2e tests (serial-tool.c,
 * accel-tool.c) share: error lines and a clock. Header-only, since each
 * helper is a single source built static and uninstrumented for the
 * initramfs (tests/e2e/CMakeLists.txt) and links nothing of the tree.
 * Define `static const char *prog` (the helper's name, for messages)
 * before including it.
 */
#ifndef UMDEV_E2E_GUEST_TOOL_H
#define UMDEV_E2E_GUEST_TOOL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* One error line on stderr: "prog: message". */
static void __attribute__((format(printf, 1, 2))) err(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Nanoseconds of CLOCK_MONOTONIC. */
static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif /* UMDEV_E2E_GUEST_TOOL_H */
