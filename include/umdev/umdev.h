/*
 * Common definitions for every umdev module: logging sink, version, and the
 * conventions (0 or -errno) shared by the public API.
 */
#ifndef UMDEV_UMDEV_H
#define UMDEV_UMDEV_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

#define UMDEV_VERSION_STRING "0.1.0"

/*
 * A log sink supplied by the embedder. @fn receives one line without a
 * trailing newline; @level is a syslog level (LOG_ERR ... LOG_DEBUG).
 * Messages above @max_level are dropped before formatting. The library
 * never keeps global log state: every object that logs is given a sink.
 */
struct umdev_logger {
    void (*fn)(void *opaque, int level, const char *line);
    void *opaque;
    int max_level;
    /* Prefix added to each line (for example an instance UUID); may be
     * NULL. Borrowed: it must outlive the objects that log through it. */
    const char *prefix;
};

/**
 * umdev_log() - format and emit one log line through @log.
 * @log: the sink; NULL writes LOG_WARNING and worse to stderr.
 *
 * The formatted message reaches the sink with its control characters
 * (C0, DEL, C1) and any bytes that are not UTF-8 written as \xNN: the
 * strings it quotes come from peers and devices, and one call must stay
 * one line that cannot drive a terminal. Lines are cut at 1023 bytes.
 * Preserves errno. Thread-safe if the sink's @fn is.
 */
void umdev_log(const struct umdev_logger *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void umdev_vlog(const struct umdev_logger *log, int level, const char *fmt,
                va_list ap) __attribute__((format(printf, 3, 0)));

/**
 * umdev_log_stderr() - a ready-made sink writing one line to stderr:
 * "umdev: LEVEL: line", or "<LEVEL>line" when stderr is the systemd
 * journal (umdev_log_stderr_is_journal()), which journald stores as the
 * line's priority. Thread-safe.
 */
void umdev_log_stderr(void *opaque, int level, const char *line);

/**
 * umdev_log_stderr_is_journal() - is stderr connected to the systemd
 * journal? True when $JOURNAL_STREAM ("DEVICE:INODE", set by systemd for
 * a service) names the device and inode of file descriptor 2.
 * Return: 1 or 0. Changes nothing (errno aside); thread-safe.
 */
int umdev_log_stderr_is_journal(void);

/**
 * umdev_fault_guard_run() - run @fn(@arg), which reads or writes guest
 * memory (DMA holds), so that a bus error there ends @fn early with
 * -EFAULT instead of ending the process: a client can shrink the file
 * behind a DMA mapping at any time (a memfd without F_SEAL_SHRINK, a
 * tmpfs or hugetlbfs file), and touching a page past its new end raises
 * SIGBUS.
 * @fault: if not NULL, receives the host address that faulted (set only
 *   on -EFAULT).
 *
 * @fn may be left at any instruction, so it must only move and compare
 * memory: no locks, no allocation, no library state half-updated. Memory
 * it wrote before the fault stays written. Thread-safe; guards nest.
 * Return: 0 if @fn ran to its end; -EFAULT if a bus error cut it short.
 */
int umdev_fault_guard_run(void (*fn)(void *arg), void *arg, void **fault);

/**
 * umdev_fault_guard_memcpy() - memcpy() under umdev_fault_guard_run(),
 * the common case: one side is guest memory.
 * Return: 0, or -EFAULT if a bus error cut the copy short (what was
 * copied before stays).
 */
int umdev_fault_guard_memcpy(void *dst, const void *src, size_t n);

/**
 * umdev_fault_guard_init() - make the process's SIGBUS handler the one
 * umdev_fault_guard_run() relies on, unless it already is; a bus error
 * outside any guard goes on to the handler it replaced (or the default
 * action). umdev_dev_create() and accel_engine_create() call it: a
 * sandbox that forbids sigaction() must come after them. Code that sets
 * its own SIGBUS handler later (a test framework does, per test) turns
 * guards off until it calls this again. Thread-safe.
 * Return: 0 or sigaction()'s -errno.
 */
int umdev_fault_guard_init(void);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_UMDEV_H */
