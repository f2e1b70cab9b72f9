/*
 * The instance worker's seccomp filter (libseccomp). A worker has built its
 * device, dropped to an unprivileged user and set no_new_privs before this
 * runs; from then on it only serves: socket I/O on fds it already holds
 * (it can neither create a socket nor connect one), epoll, timers, memory
 * management for its own heap and for the guest memory the VMM maps in
 * (DMA_MAP: never executable), and exiting. Anything else kills it with
 * SIGSYS; the supervisor marks the instance failed.
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <seccomp.h>

#include "sandbox.h"

/*
 * Sanitizer builds (the asan preset): the runtime's report path makes
 * system calls a served worker never does. Without the extra rules a
 * memory error in a worker would show up as a SIGSYS with its report cut
 * short (docs/SANDBOX.md, "Sanitizer builds").
 */
#ifdef UMDEV_SANITIZER
#include <sanitizer/common_interface_defs.h>
#include <sys/ioctl.h>
#endif

enum restriction {
    R_NONE,
    R_NO_EXEC,      /* mmap/mprotect: PROT_EXEC refused */
    R_THREADS_ONLY, /* clone: CLONE_THREAD set (threads, not processes) */
    R_SELF_ONLY,    /* tgkill: this process only (abort) */
    R_ENOSYS,       /* clone3: fails with ENOSYS so glibc uses clone */
    R_EACCES,       /* fails with EACCES: cleanup code fails softly */
    R_TCGETS_ONLY,  /* sanitizer builds: ioctl(fd, TCGETS) (isatty) */
};

struct rule {
    const char *name;
    enum restriction r;
    const char *why;
};

static const struct rule allowed[] = {
    { "read", R_NONE, "eventfds, signalfd, host ends" },
    { "write", R_NONE, "eventfds (IRQs), host ends, logs" },
    { "readv", R_NONE, "stdio" },
    { "writev", R_NONE, "stdio, logs" },
    { "recvfrom", R_NONE, "host-end sockets" },
    { "recvmsg", R_NONE, "vfio-user messages with fds" },
    { "sendto", R_NONE, "vfio-user replies, supervisor channel" },
    { "sendmsg", R_NONE, "vfio-user messages with fds (region info)" },
    { "accept4", R_NONE, "the next VMM, host-end clients" },
    { "shutdown", R_NONE, "dropping a client" },
    { "getsockopt", R_NONE, "SO_PEERCRED of the VMM (umdevctl info)" },
    { "close", R_NONE, "" },
    { "fcntl", R_NONE, "sleeping reads: the client socket's O_NONBLOCK" },
    { "newfstatat", R_NONE, "DMA_MAP: the fd covers the mapping" },
    { "fstat", R_NONE, "DMA_MAP: the fd covers the mapping" },
    { "epoll_wait", R_NONE, "the event loop" },
    { "epoll_pwait", R_NONE, "the event loop" },
    { "epoll_ctl", R_NONE, "the event loop" },
    { "poll", R_NONE, "bounded socket waits" },
    { "ppoll", R_NONE, "bounded socket waits" },
    { "io_uring_enter", R_NONE,
      "nvme file backend: its ring only reads, writes, syncs, punches" },
    { "clock_gettime", R_NONE, "loop timers (vDSO fallback)" },
    { "clock_nanosleep", R_NONE, "" },
    { "nanosleep", R_NONE, "" },
    { "restart_syscall", R_NONE,
      "the kernel resumes a stopped thread's poll or sleep" },
    { "mmap", R_NO_EXEC, "DMA_MAP of guest memory, heap" },
    { "munmap", R_NONE, "DMA_UNMAP, heap" },
    { "mremap", R_NONE, "heap" },
    { "mprotect", R_NO_EXEC, "heap, thread stacks" },
    { "madvise", R_NONE, "heap" },
    { "brk", R_NONE, "heap" },
    { "futex", R_NONE, "locks" },
    { "set_robust_list", R_NONE, "threads" },
    { "rseq", R_NONE, "threads" },
    { "clone", R_THREADS_ONLY, "device engine threads" },
    { "clone3", R_ENOSYS, "refused softly: glibc falls back to clone" },
    { "sched_yield", R_NONE, "" },
    { "sched_getaffinity", R_NONE, "" },
    { "getpid", R_NONE, "" },
    { "gettid", R_NONE, "" },
    { "getrandom", R_NONE, "" },
    { "sigaltstack", R_NONE, "sanitizer builds" },
    { "rt_sigprocmask", R_NONE, "" },
    { "rt_sigreturn", R_NONE, "the loop's wake-up signal" },
    { "tgkill", R_SELF_ONLY, "abort(), waking a sleeping read" },
    { "unlink", R_EACCES, "refused softly: umdevd removes host ends" },
    { "unlinkat", R_EACCES, "refused softly: umdevd removes host ends" },
    { "exit", R_NONE, "" },
    { "exit_group", R_NONE, "" },
};

#define N_ALLOWED (sizeof(allowed) / sizeof(allowed[0]))

#ifdef UMDEV_SANITIZER
static const struct rule sanitizer_extra[] = {
    { "open", R_EACCES, "report: /proc/self/maps (cached before the filter)" },
    { "openat", R_EACCES, "the same, for runtimes that use openat" },
    { "stat", R_EACCES, "report: no llvm-symbolizer (addresses stay raw)" },
    { "ioctl", R_TCGETS_ONLY, "report: isatty() for colour" },
};
#define N_SANITIZER (sizeof(sanitizer_extra) / sizeof(sanitizer_extra[0]))
#else
#define N_SANITIZER 0u
#endif

static const char *const restriction_text[] = {
    [R_NONE] = "",
    [R_NO_EXEC] = "without PROT_EXEC",
    [R_THREADS_ONLY] = "CLONE_THREAD only",
    [R_SELF_ONLY] = "own process only",
    [R_ENOSYS] = "fails with ENOSYS",
    [R_EACCES] = "fails with EACCES",
    [R_TCGETS_ONLY] = "TCGETS only",
};

unsigned int
sandbox_count(void)
{
    return N_ALLOWED;
}

static void
print_rules(FILE *f, const struct rule *rules, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        fprintf(f, "%-18s %-18s %s\n", rules[i].name,
                rules[i].r == R_NONE ? "-" : restriction_text[rules[i].r],
                rules[i].why);
}

void
sandbox_print(FILE *f)
{
    print_rules(f, allowed, N_ALLOWED);
#ifdef UMDEV_SANITIZER
    fprintf(f, "# sanitizer build: %u more for the runtime's reports\n",
            (unsigned int)N_SANITIZER);
    print_rules(f, sanitizer_extra, N_SANITIZER);
#endif
}

static int
add_rule(scmp_filter_ctx ctx, int nr, enum restriction r)
{
    switch (r) {
    case R_NONE:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    case R_NO_EXEC:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    case R_THREADS_ONLY:
        return seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, nr, 1,
            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    case R_SELF_ONLY:
        return seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, nr, 1,
            SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
    case R_ENOSYS:
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    case R_EACCES:
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), nr, 0);
    case R_TCGETS_ONLY:
#ifdef UMDEV_SANITIZER
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                SCMP_A1(SCMP_CMP_EQ, TCGETS, 0));
#else
        break;
#endif
    }
    return -EINVAL;
}

static int
add_rules(scmp_filter_ctx ctx, const struct rule *rules, size_t n)
{
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(rules[i].name);

        /* A call this architecture does not have needs no rule. */
        if (nr == __NR_SCMP_ERROR)
            continue;
        rc = add_rule(ctx, nr, rules[i].r);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
sandbox_apply(bool log_only)
{
    scmp_filter_ctx ctx;
    int rc;

    ctx = seccomp_init(log_only ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        return -ENOMEM;
    /* The device's threads (accel engine threads) exist already: the
     * filter must cover every thread, not only the caller. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc < 0)
        goto out;
    rc = add_rules(ctx, allowed, N_ALLOWED);
    if (rc < 0)
        goto out;
#ifdef UMDEV_SANITIZER
    rc = add_rules(ctx, sanitizer_extra, N_SANITIZER);
    if (rc < 0)
        goto out;
    {
        /* Caches /proc/self/maps for the reports' module list. */
        __sanitizer_sandbox_arguments args = { .coverage_fd = -1 };

        __sanitizer_sandbox_on_notify(&args);
    }
#endif
    rc = seccomp_load(ctx);
out:
    seccomp_release(ctx);
    return rc;
}
