/*
 * The fuzz targets' assertion: a broken promise aborts, after saying
 * where and what with both operands (STYLE.md "Tests"), so libFuzzer and
 * the replay runner both report it with a readable cause.
 */
#ifndef UMDEV_FUZZ_CHECK_H
#define UMDEV_FUZZ_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK_EQ(a, b)                                                    \
    fuzz_check_eq((uint64_t)(a), (uint64_t)(b), #a, #b, __FILE__, __LINE__)
#define FUZZ_CHECK(c) fuzz_check_eq(!!(c), 1, #c, "true", __FILE__, __LINE__)

static inline void
fuzz_check_eq(uint64_t a, uint64_t b, const char *sa, const char *sb,
              const char *file, int line)
{
    if (a == b)
        return;
    fprintf(stderr, "%s:%d: check failed: %s == %s (0x%llx != 0x%llx)\n", file,
            line, sa, sb, (unsigned long long)a, (unsigned long long)b);
    abort();
}

#endif /* UMDEV_FUZZ_CHECK_H */
