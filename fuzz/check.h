/*
 * The fuzz targets' assertion: a broken promise aborts, after saying
 * where and what with both operands (STYLE.md "Tests"), so libFuzzer and
 * the replay runner both report it with a readable cause.
 */
#ifndef UMDEV_FUZZ_CHECK_H
#define UMDEV_FUZZ_CHECK_H

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

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

/*
 * The number of open descriptors, counted with poll() (a closed one
 * answers POLLNVAL) over the lowest numbers only: the kernel hands out
 * the lowest free number, so a leak lands there. The range doubles while
 * its top quarter holds an open descriptor (up to the soft
 * RLIMIT_NOFILE). Per-input leak checks use it instead of
 * kit_count_fds(), whose opendir of /proc/self/fd costs more than a whole
 * input of the faster targets. Not instrumented for coverage: its loop is
 * the harness's, not the code under test's.
 */
#if defined(__clang__)
__attribute__((no_sanitize("coverage")))
#endif
static inline int
fuzz_count_fds(void)
{
    static struct pollfd pfd[4096];
    static nfds_t n = 64, max;
    struct rlimit rl;
    nfds_t i;
    int open_fds, top;

    /* The limit is read once: no target changes it. */
    if (max == 0) {
        max = 4096;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < max)
            max = (nfds_t)rl.rlim_cur;
    }
    for (;;) {
        if (n > max)
            n = max;
        for (i = 0; i < n; i++) {
            pfd[i].fd = (int)i;
            pfd[i].events = 0;
            pfd[i].revents = 0;
        }
        if (poll(pfd, n, 0) < 0) {
            perror("fuzz_count_fds: poll");
            abort();
        }
        open_fds = 0;
        top = -1;
        for (i = 0; i < n; i++) {
            if (!(pfd[i].revents & POLLNVAL)) {
                open_fds++;
                top = (int)i;
            }
        }
        if (n == max || top < (int)(n - n / 4))
            return open_fds;
        n *= 2;
    }
}

#endif /* UMDEV_FUZZ_CHECK_H */
