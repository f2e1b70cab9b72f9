/*
 * The kit's calls in the form cmocka tests want: each fails the running
 * test where the kit would return -errno for something a sound test
 * machine always has, so the test asserts only on what it tests.
 * Header-only, since the kit library itself never asserts (it serves fuzz
 * targets and benchmarks too); include it after <cmocka.h>. Call from the
 * test's thread.
 */
#ifndef UMDEV_KIT_CMOCKA_H
#define UMDEV_KIT_CMOCKA_H

#include "kit_util.h"

/** kit_count_fds(), which must succeed. */
static inline int
kit_open_fds(void)
{
    int n = kit_count_fds();

    assert_true(n >= 0);
    return n;
}

#endif /* UMDEV_KIT_CMOCKA_H */
