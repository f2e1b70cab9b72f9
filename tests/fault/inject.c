/* Allocation-failure injection by --wrap: see inject.h. */
#include <errno.h>
#include <execinfo.h>
#include <json-c/json.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "inject.h"
#include "wrap.h"

/* Besides the allocator (wrap.h): the one json-c allocation the library
 * makes itself, and the kernel resources it allocates. */
WRAPPED(struct json_tokener *, json_tokener_new_ex, (int depth));
WRAPPED(int, memfd_create, (const char *name, unsigned int flags));
WRAPPED(void *, mmap,
        (void *addr, size_t len, int prot, int flags, int fd, off_t off));
WRAPPED(int, socket, (int domain, int type, int proto));
WRAPPED(int, epoll_create1, (int flags));
WRAPPED(int, accept4, (int fd, struct sockaddr *sa, socklen_t *len, int flags));

static _Thread_local bool armed;
static atomic_long calls;
static atomic_long fail_at;
static atomic_int injected; /* errno of the injected failure, 0: none */

void
fault_arm_thread(bool on)
{
    armed = on;
}

void
fault_arm(long n)
{
    atomic_store(&calls, 0);
    atomic_store(&injected, 0);
    atomic_store(&fail_at, n);
}

long
fault_fail_at(void)
{
    return atomic_load(&fail_at);
}

int
fault_injected(void)
{
    return atomic_load(&injected);
}

/* Whether this call is the one to fail; if so errno is @err. */
static bool
inject(int err)
{
    if (!armed)
        return false;
    if (atomic_fetch_add(&calls, 1) + 1 != atomic_load(&fail_at))
        return false;
    atomic_store(&injected, err);
    if (getenv("UMDEV_FAULT_TRACE") != NULL) {
        void *frames[16];
        int n = backtrace(frames, 16);

        fprintf(stderr, "fault: failing call %ld with errno %d:\n",
                atomic_load(&fail_at), err);
        backtrace_symbols_fd(frames, n, 2);
    }
    errno = err;
    return true;
}

/* Live heap blocks allocated through the wrappers (any thread): an open
 * addressing set of pointers. */
#define LIVE_SLOTS 65536
static void *_Atomic live[LIVE_SLOTS];
static atomic_long live_count;

long
fault_live(void)
{
    return atomic_load(&live_count);
}

/* Add @p (may be NULL) to the set; return it. */
static void *
track(void *p)
{
    size_t h = ((uintptr_t)p >> 4) % LIVE_SLOTS;

    if (p == NULL)
        return NULL;
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        void *expected = NULL;

        if (atomic_compare_exchange_strong(&live[(h + i) % LIVE_SLOTS],
                                           &expected, p)) {
            atomic_fetch_add(&live_count, 1);
            return p;
        }
    }
    abort();
}

static void
untrack(void *p)
{
    size_t h = ((uintptr_t)p >> 4) % LIVE_SLOTS;

    if (p == NULL)
        return;
    for (size_t i = 0; i < LIVE_SLOTS; i++) {
        void *expected = p;

        if (atomic_compare_exchange_strong(&live[(h + i) % LIVE_SLOTS],
                                           &expected, NULL)) {
            atomic_fetch_sub(&live_count, 1);
            return;
        }
    }
    /* Not from a wrapper (a shared library's block): nothing to count. */
}

void *
__wrap_malloc(size_t n)
{
    return inject(ENOMEM) ? NULL : track(__real_malloc(n));
}

void *
__wrap_calloc(size_t n, size_t m)
{
    return inject(ENOMEM) ? NULL : track(__real_calloc(n, m));
}

void *
__wrap_realloc(void *old, size_t n)
{
    void *p;

    if (inject(ENOMEM))
        return NULL;
    p = __real_realloc(old, n);
    if (p != NULL) {
        untrack(old);
        track(p);
    }
    return p;
}

char *
__wrap_strdup(const char *s)
{
    return inject(ENOMEM) ? NULL : track(__real_strdup(s));
}

void
__wrap_free(void *p)
{
    untrack(p);
    __real_free(p);
}

struct json_tokener *
__wrap_json_tokener_new_ex(int depth)
{
    return inject(ENOMEM) ? NULL : __real_json_tokener_new_ex(depth);
}

int
__wrap_memfd_create(const char *name, unsigned int flags)
{
    return inject(EMFILE) ? -1 : __real_memfd_create(name, flags);
}

void *
__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return inject(ENOMEM) ? MAP_FAILED
                          : __real_mmap(addr, len, prot, flags, fd, off);
}

int
__wrap_socket(int domain, int type, int proto)
{
    return inject(EMFILE) ? -1 : __real_socket(domain, type, proto);
}

int
__wrap_epoll_create1(int flags)
{
    return inject(EMFILE) ? -1 : __real_epoll_create1(flags);
}

int
__wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    return inject(EMFILE) ? -1 : __real_accept4(fd, sa, len, flags);
}
