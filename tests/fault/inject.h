/*
 * Allocation-failure injection for a whole program (STYLE.md "Tests":
 * fail the Nth allocation, for every N). inject.c defines --wrap wrappers
 * for the allocator (malloc, calloc, realloc, strdup, free), for the one
 * json-c allocation the library makes itself (json_tokener_new_ex) and for
 * the kernel resources it allocates (memfd_create, mmap, socket,
 * epoll_create1, accept4); tests/fault/CMakeLists.txt links with the
 * matching -Wl,--wrap options. Allocations inside shared libraries (libc's
 * own, json-c's) are not reached by --wrap and are never failed.
 *
 * Only calls made on an armed thread are counted, so N names the same call
 * in every run whatever other threads do meanwhile. The Nth counted call
 * fails (NULL or -1, errno ENOMEM or EMFILE). UMDEV_FAULT_TRACE=1 in the
 * environment prints a backtrace at each injected failure.
 * Thread-safety: all of it; fault_arm() while a thread is armed and
 * running moves the count under its feet, so arm before starting it.
 */
#ifndef UMDEV_FAULT_INJECT_H
#define UMDEV_FAULT_INJECT_H

#include <stdbool.h>

/** Count (and fail) the wrapped calls this thread makes, or stop. */
void fault_arm_thread(bool on);
/** Start a run: reset the count and fail the @n-th call (0: none). */
void fault_arm(long n);
/** The @n of the current run. */
long fault_fail_at(void);
/** The errno of the failure injected in this run, 0 if none was. */
int fault_injected(void);
/** Heap blocks allocated through the wrappers, on any thread, not yet
 * freed. */
long fault_live(void);

#endif /* UMDEV_FAULT_INJECT_H */
