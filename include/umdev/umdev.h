/*
 * Common definitions for every umdev module: logging sink, version, and the
 * conventions (0 or -errno) shared by the public API.
 */
#ifndef UMDEV_UMDEV_H
#define UMDEV_UMDEV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
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
 * umdev_utf8_len() - the length of the UTF-8 sequence at @p (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF; 1 for an ASCII
 * byte), or 0 if the bytes there are not one. Reads at most 4 bytes and
 * stops at the first that does not continue the sequence, so a
 * NUL-terminated string is never read past its end. What umdev_log()
 * escapes, and what a program printing peers' strings may use the same
 * way.
 */
size_t umdev_utf8_len(const unsigned char *p);

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

/* How umdev_listen_unix() makes its socket. */
struct umdev_listen_opts {
    mode_t mode; /* the file's permission bits, exactly (no umask) */
    /* Owner given to the file before it appears (never through a link);
     * (uid_t)-1 / (gid_t)-1 keep the creator's. */
    uid_t uid;
    gid_t gid;
    int backlog;   /* listen()'s; 0 means 16 */
    bool replace;  /* replace whatever is at the path, atomically */
    bool nonblock; /* a socket made here gets O_NONBLOCK */
};

/**
 * umdev_listen_unix() - a listening UNIX stream socket whose path exists
 * only once it listens, so a client that sees the path can connect (no
 * ECONNREFUSED window between bind() and listen()): it is bound to a
 * temporary name beside @path (".NAME.XXXXXX" in the same directory, or
 * ".XXXXXX" when that is too long), listens, gets its mode and owner,
 * and is then renamed to @path in one step.
 * @fd: an unbound AF_UNIX stream socket of the caller's (which it keeps
 *   whatever happens), or -1 to make one here (close-on-exec, closed
 *   again on failure). The file is born with the socket inode's mode
 *   less the umask, so a caller that makes its own sets @opts->mode on
 *   it first with fchmod() (the inode is the process's: do it before any
 *   setfsuid()); one made here gets it.
 * @path: where the socket appears.
 * @opts: mode, owner and what happens to an existing @path. Without
 *   @opts->replace any file at @path is left alone and the call fails
 *   with -EEXIST (a caller that removes dead sockets first, as
 *   umdev_server_create() does, still never removes a live one).
 *
 * The kernel keeps the name the socket was bound to: getsockname(), ss -x
 * and /proc/net/unix show the temporary name, so wait for @path itself.
 *
 * Filesystem work happens with the calling thread's filesystem identity
 * (a caller may setfsuid() around the call). The process umask is
 * neither read nor changed. On failure nothing is left at @path or at
 * the temporary name. Thread-safe.
 * Return: the listening descriptor (@fd, or the one made), or -errno:
 * -ENAMETOOLONG if @path or the temporary name does not fit a
 * sockaddr_un, -EEXIST, or the error of socket(), bind(), listen(),
 * chmod(), lchown() or the rename.
 */
int umdev_listen_unix(int fd, const char *path,
                      const struct umdev_listen_opts *opts);

/**
 * umdev_peer_pid() - the pid of the process at the other end of the
 * connected UNIX socket @fd when it connected (SO_PEERCRED), for logs.
 * Return: the pid, or -1 if the kernel cannot say.
 */
pid_t umdev_peer_pid(int fd);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_UMDEV_H */
