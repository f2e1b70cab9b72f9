/*
 * The direct access path (uacce-like): a host process opens one work queue
 * of a parent, gets the queue's ring memory mapped into its address space,
 * registers its own memfd-backed buffers so descriptors carry its own
 * virtual addresses (SVA-like: iova == VA), submits descriptors and reaps
 * completion records by polling or by waiting on an eventfd.
 *
 * Two halves:
 * - the application API (umdev_access_*): owns the handle, the ring
 *   bookkeeping (producer index, completion slots, event suppression) and
 *   the validation of everything the caller passes;
 * - the provider interface (struct umdev_access_provider_ops): what the
 *   parent supplies. The embedded provider is the parent itself in the
 *   same process (devices/accel/accel_access.h); a daemon-served one
 *   hands a queue to a host process over a socket (lib/access/README.md).
 *
 * The queue ABI (ring layout, 64-byte descriptors, 32-byte completion
 * records, opcodes, statuses) is the accel parent's, defined once in
 * umdev/accel_ring.h (devices/accel/README.md documents it): the
 * application passes struct accel_desc and gets struct accel_comp back.
 *
 * What the engine may touch: the registered ranges and the queue memory
 * (guard pages on both sides keep the two apart). A descriptor that names
 * the queue memory on purpose can only corrupt the caller's own queue;
 * anything else faults (ACCEL_ST_ADDR_FAULT) and is not touched.
 *
 * Threading: one handle is used by one thread at a time; different
 * handles are independent.
 */
#ifndef UMDEV_ACCESS_H
#define UMDEV_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "umdev/accel_ring.h"
#include "umdev/umdev.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* ---- Limits and defaults */

#define UMDEV_ACCESS_DEFAULT_DEPTH 64u
#define UMDEV_ACCESS_RING_MAX ACCEL_RING_MAX /* descriptors per ring */
#define UMDEV_ACCESS_MAX_REGIONS 64u         /* registered buffers per handle */
#define UMDEV_ACCESS_PAGE 4096u              /* registration granule */
#define UMDEV_ACCESS_PRIO_MIN ACCEL_PRIO_MIN
#define UMDEV_ACCESS_PRIO_MAX ACCEL_PRIO_MAX

/* ---- Earlier names of the ABI's parts. They are the ring ABI's own
 * types and values under other names, kept so that code written against
 * them builds; new code uses the ABI's names. */

#define umdev_access_desc accel_desc /* struct umdev_access_desc */
#define umdev_access_comp accel_comp /* struct umdev_access_comp */
#define UMDEV_ACCESS_RING_TAIL ACCEL_RING_TAIL
#define UMDEV_ACCESS_RING_HEAD ACCEL_RING_HEAD
#define UMDEV_ACCESS_RING_DOORBELL_NEEDED ACCEL_RING_DOORBELL_NEEDED
#define UMDEV_ACCESS_RING_WAKE_INDEX ACCEL_RING_WAKE_INDEX
#define UMDEV_ACCESS_RING_DESCS ACCEL_RING_DESCS
#define UMDEV_ACCESS_OP_NOP ACCEL_OP_NOP
#define UMDEV_ACCESS_OP_BATCH ACCEL_OP_BATCH
#define UMDEV_ACCESS_OP_DRAIN ACCEL_OP_DRAIN
#define UMDEV_ACCESS_OP_MEMMOVE ACCEL_OP_MEMMOVE
#define UMDEV_ACCESS_OP_FILL ACCEL_OP_FILL
#define UMDEV_ACCESS_OP_COMPARE ACCEL_OP_COMPARE
#define UMDEV_ACCESS_OP_COMPARE_PATTERN ACCEL_OP_COMPARE_PATTERN
#define UMDEV_ACCESS_OP_CRC32C ACCEL_OP_CRC32C
#define UMDEV_ACCESS_OP_DUALCAST ACCEL_OP_DUALCAST
#define UMDEV_ACCESS_OP_COPY_CRC ACCEL_OP_COPY_CRC
#define UMDEV_ACCESS_DF_COMP ACCEL_DF_COMP
#define UMDEV_ACCESS_DF_INTR ACCEL_DF_INTR
#define UMDEV_ACCESS_ST_NONE ACCEL_ST_NONE
#define UMDEV_ACCESS_ST_SUCCESS ACCEL_ST_SUCCESS
#define UMDEV_ACCESS_ST_MISMATCH ACCEL_ST_MISMATCH
#define UMDEV_ACCESS_ST_ADDR_FAULT ACCEL_ST_ADDR_FAULT
#define UMDEV_ACCESS_ST_INVALID_OPCODE ACCEL_ST_INVALID_OPCODE
#define UMDEV_ACCESS_ST_INVALID_FIELD ACCEL_ST_INVALID_FIELD
#define UMDEV_ACCESS_ST_BATCH_PARTIAL ACCEL_ST_BATCH_PARTIAL
#define UMDEV_ACCESS_ST_ABORTED ACCEL_ST_ABORTED

/* ---- The provider interface (parents implement it) */

#define UMDEV_ACCESS_READ 1  /* the engine may read the memory */
#define UMDEV_ACCESS_WRITE 2 /* the engine may write the memory */

/* What the library hands a provider to open a queue on. */
struct umdev_access_queue_args {
    /* The queue memory: ring at @va, then the completion records. The
     * engine reads and writes it all. Page-aligned, page-granular. */
    uint64_t va;
    uint64_t len;
    int fd;          /* memfd backing it, offset 0; borrowed */
    uint32_t depth;  /* descriptors, a power of two */
    uint32_t priority;
    int efd;         /* completion eventfd; borrowed until close */
};

/* Counters a provider reports about its queue. */
struct umdev_access_qstatus {
    uint64_t completed; /* descriptors (batch elements too) */
    uint64_t bytes;
    uint64_t failed;    /* completions other than SUCCESS */
    uint64_t notifies;  /* eventfd signals */
    uint64_t doorbells;
    uint64_t errors;    /* errors with no record to carry them */
    uint32_t head;
    int halted;         /* the queue stopped on a ring fault */
};

struct umdev_access_provider_ops {
    /*
     * Claim a queue and enable it on @args. Return: 0 and *@queue; -ENOSPC
     * no free queue; -EINVAL; -ENOMEM.
     */
    int (*open)(void *opaque, const struct umdev_access_queue_args *args,
                void **queue);
    /*
     * From now on descriptors may name [va, va + len) (page-granular,
     * checked by the library, never overlapping another range) with
     * @prot; @fd at @offset backs it (borrowed: a provider in another
     * process maps it). Return: 0; -ENOSPC; -ENOMEM.
     */
    int (*mem_register)(void *queue, uint64_t va, uint64_t len, int fd,
                        uint64_t offset, int prot);
    /* Forget the range registered at @va; returns once no work in
     * flight touches it. Return: 0; -ENOENT. */
    int (*mem_unregister)(void *queue, uint64_t va);
    /* TAIL moved while the engine asked for a doorbell. */
    void (*doorbell)(void *queue);
    /* Counters; may be NULL. */
    void (*status)(void *queue, struct umdev_access_qstatus *out);
    /* Stop the queue (work not yet run is discarded), return it to the
     * parent. After it returns nothing touches the queue's memory, the
     * registered memory or the eventfd. */
    void (*close)(void *queue);
};

struct umdev_access_provider {
    const struct umdev_access_provider_ops *ops;
    void *opaque;
    const char *name; /* for logs */
};

/* ---- The application API */

struct umdev_access;

struct umdev_access_opts {
    uint32_t depth;    /* power of two, 1..RING_MAX; 0: DEFAULT_DEPTH */
    uint32_t priority; /* PRIO_MIN..PRIO_MAX; 0: PRIO_MIN */
    const struct umdev_logger *log; /* borrowed; may be NULL */
};

/**
 * umdev_access_open() - open a queue of @p's parent: create the queue
 * memory (a memfd, mapped here), the completion eventfd, and have the
 * provider claim and enable a queue on them.
 * @p: borrowed; must outlive the handle. @opts may be NULL.
 * Return: 0; -EINVAL bad options or provider; -ENOSPC no free queue;
 * -ENOMEM; a memfd/mmap/eventfd error.
 */
int umdev_access_open(const struct umdev_access_provider *p,
                      const struct umdev_access_opts *opts,
                      struct umdev_access **out);

/**
 * umdev_access_close() - stop the queue (outstanding descriptors are
 * discarded), return it to the parent, unmap and free. Registered memory
 * is untouched and stays the caller's. NULL is ok.
 */
void umdev_access_close(struct umdev_access *a);

/**
 * umdev_access_mem_register() - let descriptors name [@addr, @addr + @len).
 * @addr, @len, @offset: multiples of UMDEV_ACCESS_PAGE; the range must be
 * a shared mapping of @fd at @offset in this process, with at least the
 * access @prot (UMDEV_ACCESS_READ and/or _WRITE) asks the engine for.
 * @fd: borrowed (the library neither keeps nor closes it).
 * Return: 0; -EINVAL misaligned, empty, overlapping a registered range or
 * the queue memory, or not @fd's mapping; -EBADF; -ENOSPC too many
 * ranges; the provider's error.
 */
int umdev_access_mem_register(struct umdev_access *a, void *addr, size_t len,
                              int fd, uint64_t offset, int prot);

/**
 * umdev_access_mem_unregister() - forget the range registered at @addr.
 * Descriptors naming it afterwards fail with ADDR_FAULT. Blocks until no
 * descriptor in flight touches it. Return: 0; -ENOENT.
 */
int umdev_access_mem_unregister(struct umdev_access *a, void *addr);

/**
 * umdev_access_submit() - copy up to @n descriptors into the ring, give
 * each the library's completion record, publish them, and ring the
 * doorbell only if the engine asked for one (event suppression).
 * @d: addresses are the process's own (registered) virtual addresses;
 * .comp must be 0 (the library's record is used; ACCEL_DF_COMP is implied)
 * and .flags only ACCEL_DF_INTR (signal the eventfd) and ACCEL_DF_COMP.
 * BATCH elements in registered memory name records of their own.
 * Return: descriptors queued (fewer than @n when the ring is full, 0 if
 * it is); -EINVAL a descriptor names a completion record or other flags
 * (then none is queued).
 */
int umdev_access_submit(struct umdev_access *a, const struct accel_desc *d,
                        unsigned int n);

/**
 * umdev_access_reap() - copy out the completion records of finished
 * descriptors, oldest first, up to @max; never blocks.
 * Return: records copied (0: the oldest is not done, or none is
 * outstanding).
 */
int umdev_access_reap(struct umdev_access *a, struct accel_comp *out,
                      unsigned int max);

/**
 * umdev_access_wait() - sleep on the eventfd until the oldest outstanding
 * descriptor is complete (umdev_access_reap() then returns it). It must
 * carry ACCEL_DF_INTR. @timeout_ms < 0: no limit.
 * Return: 0; -ENOENT nothing outstanding; -EINVAL the oldest has no
 * DF_INTR; -ETIMEDOUT; a poll error.
 */
int umdev_access_wait(struct umdev_access *a, int timeout_ms);

/** The completion eventfd (for the caller's poll loop); owned by @a. */
int umdev_access_fd(const struct umdev_access *a);
/** Descriptors submitted and not yet reaped. */
unsigned int umdev_access_outstanding(const struct umdev_access *a);
/** Free ring slots. */
unsigned int umdev_access_space(const struct umdev_access *a);
uint32_t umdev_access_depth(const struct umdev_access *a);
/** The ring (read-only for inspection; the library writes TAIL). */
const void *umdev_access_ring(const struct umdev_access *a);

struct umdev_access_stats {
    uint64_t submitted;
    uint64_t reaped;
    uint64_t doorbells; /* provider doorbell calls made by submit */
    uint64_t waits;     /* times umdev_access_wait() slept */
    struct umdev_access_qstatus queue; /* the provider's; zero if none */
};
void umdev_access_get_stats(struct umdev_access *a,
                            struct umdev_access_stats *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_ACCESS_H */
