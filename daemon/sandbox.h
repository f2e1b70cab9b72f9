/*
 * The seccomp filter an instance worker installs once its device is built
 * and it has dropped privileges, before it serves a single message. The
 * allow-list is documented in docs/SANDBOX.md (`umdevd --print-sandbox`
 * prints it from this code).
 */
#ifndef UMDEVD_SANDBOX_H
#define UMDEVD_SANDBOX_H

#include <stdbool.h>
#include <stdio.h>

/* Built with AddressSanitizer or UndefinedBehaviorSanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define UMDEV_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) ||                                        \
    __has_feature(undefined_behavior_sanitizer)
#define UMDEV_SANITIZER 1
#endif
#endif

/**
 * sandbox_apply() - install the worker filter: every system call not on
 * the allow-list kills the process (SIGSYS). With @log_only, violations
 * are logged by the kernel instead (debugging; UMDEV_SANDBOX=log).
 * Requires no_new_privs (or CAP_SYS_ADMIN).
 * Return: 0 or -errno.
 */
int sandbox_apply(bool log_only);

/** Print the allow-list, one system call per line with its restriction. */
void sandbox_print(FILE *f);

/** Number of system calls on the allow-list. */
unsigned int sandbox_count(void);

#endif /* UMDEVD_SANDBOX_H */
