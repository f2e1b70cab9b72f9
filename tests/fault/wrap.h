/*
 * The allocator as the fault-injection tests wrap it (the link passes
 * -Wl,--wrap=NAME): the real functions, which --wrap names __real_NAME,
 * and the wrappers each test defines. tests/fault/inject.c and
 * tests/unit/test_accel_alloc.c include it.
 */
#ifndef UMDEV_FAULT_WRAP_H
#define UMDEV_FAULT_WRAP_H

#include <stddef.h>

/* Declare __real_NAME and __wrap_NAME with one signature. */
#define WRAPPED(ret, name, params)                                             \
    ret __real_##name params;                                                  \
    ret __wrap_##name params

WRAPPED(void *, malloc, (size_t n));
WRAPPED(void *, calloc, (size_t n, size_t m));
WRAPPED(void *, realloc, (void *p, size_t n));
WRAPPED(char *, strdup, (const char *s));
WRAPPED(void, free, (void *p));

#endif /* UMDEV_FAULT_WRAP_H */
