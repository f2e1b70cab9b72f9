/*
 * Small helpers that tests, fuzz targets and benchmarks share: clocks,
 * open-descriptor counts, deterministic data, the CRC32C oracle, a log
 * sink, and the line printer of the daemon tests' helper programs.
 *
 * Nothing here asserts or aborts: each function reports failure by its
 * return value and the caller decides what that means (a cmocka failure,
 * an abort() in a fuzz target, an exit in a benchmark). Every function is
 * thread-safe unless its comment says otherwise.
 */
#ifndef UMDEV_KIT_UTIL_H
#define UMDEV_KIT_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/umdev.h"

/** Milliseconds of CLOCK_MONOTONIC (never goes back, any origin). */
int64_t kit_now_ms(void);
/** Nanoseconds of CLOCK_MONOTONIC. */
int64_t kit_now_ns(void);
/** Milliseconds until @deadline (a kit_now_ms() value), 0 once past it:
 * a poll() timeout that never goes negative (-1 would mean forever). */
int kit_left_ms(int64_t deadline);

/**
 * kit_count_fds() - descriptors open in this process.
 *
 * Counts /proc/self/fd, leaving out the descriptor the count itself holds
 * open, so two calls around leak-free code return the same number.
 * Allocates inside libc (opendir), never through the program's own
 * malloc() references, so tests/fault/test_alloc.c's wrappers see nothing.
 *
 * Return: the count, or -errno if /proc/self/fd cannot be read.
 */
int kit_count_fds(void);

/**
 * kit_fill_rand() - fill @p with @n bytes of a linear congruential
 * sequence. The same @seed gives the same bytes, different seeds and
 * neighbouring positions give different ones (never all equal), which is
 * what data-path tests need to see a byte land in the wrong place.
 */
void kit_fill_rand(uint8_t *p, size_t n, uint32_t seed);

/**
 * kit_crc32c() - the CRC32C (Castagnoli, reflected polynomial 0x82F63B78)
 * of @n bytes at @p, continuing from @crc (0 to start; a previous result
 * to continue, as the accel device's seed field does).
 *
 * Bit at a time, straight from the definition: independent of the accel
 * engine's table and of the SSE4.2 instruction it checks. Slow (about a
 * nanosecond a bit): meant for verifying results, not for timed loops.
 * kit_crc32c(0, "123456789", 9) is the standard check value 0xE3069283.
 */
uint32_t kit_crc32c(uint32_t crc, const void *p, size_t n);

/**
 * kit_connect_unix() - connect a new stream socket (close-on-exec) to the
 * UNIX socket at @path.
 * Return: the descriptor (the caller closes it), or -errno; -ENAMETOOLONG
 * if @path does not fit a sockaddr_un.
 */
int kit_connect_unix(const char *path);

/**
 * kit_say() - print one line (printf format, newline added) on stdout and
 * flush it: the line protocol between the daemon tests' C helpers and the
 * Python scripts that read them. Not thread-safe against other stdout use.
 */
void kit_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A log sink for a device or client under test. Every line is formatted
 * (so format bugs show under the sanitizers) and lines at LOG_WARNING or
 * worse are counted; they are printed on stderr only when the environment
 * variable named at init is set, so a passing test stays quiet.
 */
struct kit_log {
    struct umdev_logger logger; /* hand &logger to the library */
    atomic_int warnings;        /* lines at LOG_WARNING or worse */
    bool print;                 /* the variable was set at init */
    /* kit_log_watch(): lines containing this text are counted. */
    _Atomic(const char *) watch;
    atomic_int watched;
};

/**
 * kit_log_watch() - count from now on the lines of @l that contain @text
 * (borrowed until the next call; NULL stops), in @l->watched, reset here.
 * Any thread.
 */
void kit_log_watch(struct kit_log *l, const char *text);

/**
 * kit_log_init() - set up @l. @prefix (borrowed, may be NULL) starts each
 * line; @env (may be NULL: never print) names the variable that makes
 * lines print, for example "UMDEV_FUNC_LOG", read once here so a fuzz
 * target's hot path does not search the environment. @l must outlive
 * every object that logs through it. The sink is thread-safe.
 */
void kit_log_init(struct kit_log *l, const char *prefix, const char *env);

#endif /* UMDEV_KIT_UTIL_H */
