/*
 * The accel engine's private header: its objects and what its files
 * share. engine.c schedules queues on threads, claims queues and builds
 * and tears down the engine; engine_ring.c is the ring protocol (serving a
 * ring, going to sleep, enable and disable); engine_ops.c translates
 * memory, runs the operations and completes descriptors; engine_crc.c is
 * CRC32C. Embedders use engine.h; nothing outside these files includes
 * this one.
 *
 * Memory: every byte the engine touches comes from the queue's map
 * callback and is held until the descriptor (or ring access) is done, so an
 * embedder that waits for its holds (lib/dev's DMA_UNMAP does) never frees
 * memory under a running descriptor. All operands of a descriptor are
 * translated before the first byte is written: an address fault leaves
 * memory as it was.
 *
 * Concurrency: the engine lock guards the scheduling fields (active, busy,
 * kick, rr) and the claim/error fields. A queue is served by at most one
 * thread at a time (the one that set busy), so per-queue serving state
 * needs no lock and descriptors of one queue complete in ring order. The
 * state field is atomic so a serving thread sees a disable between two
 * descriptors.
 */
#ifndef UMDEV_ACCEL_ENGINE_PRIV_H
#define UMDEV_ACCEL_ENGINE_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "engine.h"

/* Operands per descriptor at most (DUALCAST: src, dst, dst2). */
#define MAX_OPERANDS 3
/* One thread's context (or the accel_engine_poll() caller's). */
struct worker {
    struct accel_engine *e;
    pthread_t thread;
    bool started;
    struct accel_map *scratch; /* MAX_OPERANDS * e->seg_cap */
};

/*
 * A span an embedder's hold keeps translated, kept for the rest of one
 * visit: the descriptors of a visit mostly touch one or two guest
 * mappings, and a map/unmap pair per operand costs a few locked
 * instructions each, which stall on the stores to lines the driver's CPU
 * owns. Few entries: a ring, its records and the data buffers.
 */
#define VISIT_MAPS 4

struct visit_map {
    uint64_t lo, hi; /* [lo, hi) */
    uint8_t *base;   /* host address of lo */
    int prot;        /* what the hold was granted for */
    struct accel_map hold;
};

struct accel_queue {
    struct accel_engine *e;
    unsigned int index;

    /* Engine lock. */
    bool claimed;
    bool active; /* runnable: polled by the engine */
    bool busy;   /* a thread serves it now */
    bool kick;   /* a doorbell arrived while active */
    uint8_t error;
    uint64_t error_addr;

    const struct accel_queue_ops *ops; /* borrowed */
    void *opaque;
    /* Written by the control thread while disabled; read by the serving
     * thread after it picked the queue under the lock. */
    struct accel_queue_config cfg;
    _Atomic int state; /* enum accel_queue_state */
    /* Migration: not picked, doorbells only noted in kick. Written under
     * the lock; the serving thread reads it between descriptors. */
    _Atomic bool paused;

    /* The serving thread's (busy holder's), handed over by the lock. */
    struct visit_map vmap[VISIT_MAPS]; /* spans held for this visit */
    unsigned int nvmap;
    bool visiting; /* engine_serve() runs: map may keep spans */
    _Atomic uint32_t head;
    int64_t deficit;
    bool published; /* DOORBELL_NEEDED = 1 is in the ring */
    uint64_t idle_since_ns;
    uint32_t intr_pending;
    uint64_t intr_first_ns;
    /* The BATCH at HEAD paused before element batch_next (0: none), with
     * batch_ok elements succeeded and batch_failed set if one did not:
     * the next visit, here or on a migration's destination, goes on
     * from there. */
    uint32_t batch_next, batch_ok;
    bool batch_failed;

    _Atomic uint64_t completed, bytes, failed, notifies, doorbells;
};

struct accel_engine {
    pthread_mutex_t lock;
    pthread_cond_t work; /* threads wait for a runnable queue */
    pthread_cond_t idle; /* disable waits for a busy queue */
    bool lock_init, work_init, idle_init;
    bool stop;
    unsigned int sleepers;
    unsigned int idle_waiters;
    unsigned int rr; /* round-robin cursor */

    unsigned int nq;
    struct accel_queue *q;
    unsigned int nthreads;
    struct worker *workers;
    struct worker poller; /* accel_engine_poll()'s context */

    uint32_t max_transfer;
    unsigned int seg_cap; /* segments per operand */
    uint64_t poll_ns;
    bool no_poll;
    bool crc_hw;
    const struct umdev_logger *log;
    uint32_t crc_table[8][256];
};

/* What a descriptor came to. */
struct result {
    uint8_t status;
    uint8_t cmp;
    uint32_t bytes;
    uint64_t info;
    uint64_t value;
    uint64_t data_bytes; /* for the statistics */
    uint64_t cost;       /* scheduling cost */
    /* A BATCH paused between elements (accel_queue_pause()): not
     * complete, its progress in the queue's batch_* fields. */
    bool suspended;
};

/* CLOCK_MONOTONIC in nanoseconds (coalescing and poll windows). */
static inline uint64_t
engine_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- engine_ops.c: memory, operations, completions */

/*
 * engine_seg_get() - translate and hold a prefix of [@addr, @addr + @len)
 * into @m: the embedder's map, or a span held earlier in this visit (then
 * @m->borrowed). Return: 0; the embedder's error.
 */
int engine_seg_get(struct accel_queue *q, uint64_t addr, uint64_t len, int prot,
                   struct accel_map *m);

/* Give back a segment from engine_seg_get() (a borrowed span stays the
 * visit's until engine_visit_end()). */
static inline void
engine_seg_put(struct accel_queue *q, struct accel_map *m)
{
    if (!m->borrowed)
        q->ops->unmap(q->opaque, m);
    m->borrowed = false;
}

/* memcpy() under a fault guard (umdev_fault_guard_run()): -EFAULT if
 * guest memory at @src or @dst was gone from its file. */
int engine_copy(void *dst, const void *src, size_t n);

/* Map exactly @len bytes at @addr as one piece (ring lines, descriptors
 * and completion records never cross a page). */
static inline void *
engine_map_small(struct accel_queue *q, uint64_t addr, uint64_t len, int prot,
                 struct accel_map *m)
{
    if (addr + len < addr)
        return NULL;
    if (engine_seg_get(q, addr, len, prot, m) < 0)
        return NULL;
    if (m->len != len) {
        engine_seg_put(q, m);
        return NULL;
    }
    return m->ptr;
}

/* A visit (engine_serve()) may keep the spans its holds pin; the end
 * returns them: a DMA unmap may be waiting for them. */
static inline void
engine_visit_begin(struct accel_queue *q)
{
    q->nvmap = 0;
    q->visiting = true;
}

static inline void
engine_visit_end(struct accel_queue *q)
{
    while (q->nvmap > 0)
        q->ops->unmap(q->opaque, &q->vmap[--q->nvmap].hold);
    q->visiting = false;
}

/* Run descriptor @d (a copy; ring index @index) into @r. */
void engine_run_desc(struct worker *w, struct accel_queue *q,
                     const struct accel_desc *d, uint32_t index, bool in_batch,
                     struct result *r);

/* Publish @r for @d: its completion record or the error callback, then
 * the interrupt (coalesced). */
void engine_complete(struct accel_queue *q, const struct accel_desc *d,
                     uint32_t index, const struct result *r);

/* Write ABORTED for elements @i..@n - 1 of the batch list at @list. */
void engine_abort_batch_rest(struct accel_queue *q, uint64_t list, uint32_t i,
                             uint32_t n, uint32_t index);

/* Forget a paused batch's progress. */
static inline void
engine_batch_clear(struct accel_queue *q)
{
    q->batch_next = q->batch_ok = 0;
    q->batch_failed = false;
}

/* Signal the interrupts coalesced so far. */
void engine_intr_flush(struct accel_queue *q);

/* An error with no completion record to carry it. */
void engine_report(struct accel_queue *q, uint8_t code, uint8_t opcode,
                   uint32_t index, uint64_t addr);

/* ---- engine_ring.c: the ring protocol */

/* One visit of @q: descriptors while it has work and deficit. *@empty:
 * the ring was seen empty. Return: descriptors done. */
unsigned int engine_serve(struct worker *w, struct accel_queue *q, bool *empty);

/* Publish WAKE_INDEX and DOORBELL_NEEDED. Return: true if @q may sleep. */
bool engine_try_sleep(struct accel_queue *q);

/* Why @c cannot be enabled (ACCEL_QERR_*), or ACCEL_QERR_NONE. */
uint8_t engine_check_config(const struct accel_queue_config *c);

/* ---- engine_crc.c: CRC32C */

/* The slicing-by-8 tables of the software implementation. */
void engine_crc_init(uint32_t t[8][256]);

/* True if the CPU has the CRC32 instruction. */
bool engine_crc_hw_present(void);

/* The raw register update (no inversions) with @e's implementation. */
uint32_t engine_crc_update(const struct accel_engine *e, uint32_t crc,
                           const uint8_t *p, size_t len);

#endif /* UMDEV_ACCEL_ENGINE_PRIV_H */
