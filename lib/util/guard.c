/*
 * Bus errors in guest memory. A client that shrinks the file behind a
 * DMA mapping turns the device's next access there into SIGBUS, which
 * would end every device of the process. Device code runs its accesses
 * to guest memory under umdev_fault_guard_run(): the SIGBUS handler finds
 * the faulting thread's guard and jumps back to it, and the access ends
 * with -EFAULT. A bus error on a thread without a guard goes on to the
 * disposition that was there before ours (a sanitizer's report, an
 * embedder's handler, or the default: the process dies as it always
 * did).
 *
 * Signal dispositions are per process, so this file keeps the library's
 * only process-wide state: the disposition ours replaced. The guard in
 * use is per thread.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "umdev/umdev.h"

struct guard {
    sigjmp_buf env;
    struct guard *prev; /* an enclosing guard on this thread */
    void *addr;         /* the faulting address, set by the handler */
};

/* initial-exec: read in a signal handler, so no lazy TLS allocation. */
static __thread struct guard *current
    __attribute__((tls_model("initial-exec")));
static struct sigaction previous; /* what a fault outside guards meets */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int installed; /* 1 once installed */

static void
restore_default(void)
{
    struct sigaction dfl;

    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, NULL);
}

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
    struct guard *g = current;

    /* si_code > 0: the kernel raised it for this thread's own access (not
     * a kill() from elsewhere, which no guard is about). */
    if (g != NULL && si != NULL && si->si_code > 0) {
        g->addr = si->si_addr;
        current = g->prev;
        siglongjmp(g->env, 1);
    }
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction != NULL) {
            previous.sa_sigaction(sig, si, uc);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL &&
               previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    if (si != NULL && si->si_code <= 0) {
        /* Sent, not raised: do what the old disposition did with it. */
        if (previous.sa_handler == SIG_IGN && !(previous.sa_flags & SA_SIGINFO))
            return;
        restore_default();
        raise(sig);
        return;
    }
    /* A fault outside any guard: returning repeats the access, which
     * now meets the default action. */
    restore_default();
}

static bool
is_ours(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigbus;
}

int
umdev_fault_guard_init(void)
{
    struct sigaction sa, cur;
    int rc = 0;

    pthread_mutex_lock(&install_lock);
    if (sigaction(SIGBUS, NULL, &cur) < 0) {
        rc = -errno;
    } else if (!is_ours(&cur)) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigbus;
        /* SA_NODEFER and an empty mask: the handler runs with the
         * thread's own mask, so the jump back needs no mask restore
         * (sigsetjmp(, 0): no system call per guard). */
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        /* Whoever replaced ours since (a test framework does, per test)
         * is chained to from now on. */
        previous = cur;
        if (sigaction(SIGBUS, &sa, NULL) < 0)
            rc = -errno;
    }
    if (rc == 0)
        atomic_store(&installed, 1);
    pthread_mutex_unlock(&install_lock);
    return rc;
}

int
umdev_fault_guard_run(void (*fn)(void *arg), void *arg, void **fault)
{
    struct guard g;

    if (atomic_load_explicit(&installed, memory_order_relaxed) != 1 &&
        umdev_fault_guard_init() < 0) {
        fn(arg); /* no handler: a bus error ends the process, as before */
        return 0;
    }
    g.prev = current;
    g.addr = NULL;
    if (sigsetjmp(g.env, 0) != 0) {
        /* The handler put back the enclosing guard. */
        if (fault != NULL)
            *fault = g.addr;
        return -EFAULT;
    }
    current = &g;
    fn(arg);
    current = g.prev;
    return 0;
}

/* What umdev_fault_guard_memcpy() hands the guard. */
struct guarded_copy {
    void *dst;
    const void *src;
    size_t n;
};

static void
guarded_memcpy(void *arg)
{
    struct guarded_copy *c = arg;

    memcpy(c->dst, c->src, c->n);
}

int
umdev_fault_guard_memcpy(void *dst, const void *src, size_t n)
{
    struct guarded_copy c = { dst, src, n };

    return umdev_fault_guard_run(guarded_memcpy, &c, NULL);
}
