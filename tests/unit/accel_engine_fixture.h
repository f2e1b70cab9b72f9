/*
 * What the accel engine's unit tests (test_accel_engine_*.c) share: a
 * model of guest memory (IOVA regions over separate host buffers, with
 * holds and unmap-waits-for-holds like lib/dev), a tiny driver that
 * writes rings the way a guest does (with the ring ABI's helpers), and the
 * per-test fixture: one engine and one queue, torn down with hold checks.
 * Assertions are cmocka's: call these from the test's thread only, except
 * where a comment says otherwise.
 */
#ifndef UMDEV_TEST_ACCEL_ENGINE_FIXTURE_H
#define UMDEV_TEST_ACCEL_ENGINE_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "kit_util.h"

/* Every wait in these tests ends within this. */
#define TIMEOUT_MS 10000

/* ---- Guest memory model: three regions over separate host buffers */

#define MB (1024u * 1024u)
#define R0 0x100000ull /* rings, completions, data */
#define R0_SIZE (4 * MB)
#define R1 (R0 + R0_SIZE) /* adjacent, another host buffer */
#define R1_SIZE (8 * MB)
#define RRO 0x1000000ull /* read-only */
#define RRO_SIZE (64 * 1024u)
#define HOLE 0x2000000ull /* never mapped */
#define NREG 3
#define RING_AREA(i) (R0 + (uint64_t)(i)*0x10000) /* 8 x 64 KiB */
#define COMP_AREA(i) (R0 + 0x80000 + (uint64_t)(i)*0x10000)
#define COMPS_PER_Q (0x10000 / ACCEL_COMP_SIZE)
#define DATA0 (R0 + 1 * MB) /* 3 MiB up to R1 */
/* A BATCH list and its elements' records (put_elem()). */
#define BATCH_LIST (DATA0 + 2 * MB + 512 * 1024)
#define BATCH_COMPS (BATCH_LIST + 64 * 1024)

struct region {
    uint64_t iova, size;
    uint8_t *host;
    int prot;
    bool live;
    atomic_int holds;
};

struct mem {
    pthread_rwlock_t lock;
    struct region r[NREG];
    atomic_int holds; /* all regions */
    atomic_long maps; /* successful map calls */
};

/* ---- A queue as the tests drive it */

#define MAX_ERRS 64

struct tq {
    struct accel_engine *e;
    struct accel_queue *q;
    unsigned int slot; /* ring and completion area number */
    uint64_t ring;     /* its guest address */
    /* The driver side: TAIL, HEAD and the flags through the ring ABI's
     * helpers (a ring's first line is always in one host buffer). */
    struct accel_ring_drv r;
    atomic_uint notifies;
    pthread_mutex_t elock;
    struct accel_error errs[MAX_ERRS];
    unsigned int nerr;
    bool no_map; /* fail every map (callbacks check it) */
    enum { SPAN_REGION, SPAN_NONE, SPAN_BOGUS } span; /* what map reports */
};

/* Descriptor @idx of @t, for drive_until()'s predicates. */
struct comp_arg {
    struct tq *t;
    uint32_t idx;
};

/* One engine and one queue per test, torn down with hold checks. */
struct fx {
    struct accel_engine *e;
    struct tq t;
};

extern struct mem M;
extern struct fx F;
extern bool g_manual; /* the current test's engine mode */
/* The queue callbacks over the memory model (opaque: the struct tq). */
extern const struct accel_queue_ops tq_ops;

/* ---- The memory model */

/* The host view of guest address @iova (test side). */
void *G(uint64_t iova);

/* Copy to / from guest memory that may span regions (host buffers). */
void gput(uint64_t iova, const void *buf, size_t n);

void gget(uint64_t iova, void *buf, size_t n);

/* True if @iova is in a live region. */
bool mapped(uint64_t iova);

/*
 * Unmap region @i like lib/dev's DMA_UNMAP: unpublish it, wait for the
 * holds taken before, then free the host buffer (so a late access by the
 * engine is a use-after-free ASan reports). Callable from any thread.
 */
int mem_unmap(unsigned int i);

/* ---- Queues and their driver */

/* Claim queue @slot of @e for @t (ring and record areas @slot). */
void tq_claim(struct tq *t, struct accel_engine *e, unsigned int slot);

/* Drive the ring at guest address @ring from index 0. */
void tq_attach(struct tq *t, uint64_t ring, uint32_t size);

/* Enable @t on RING_AREA(slot) (filled with junk first: enable must
 * reset HEAD and the flags), checking HEAD = 0 and DOORBELL_NEEDED = 1. */
void tq_enable(struct tq *t, uint32_t size, uint32_t prio, uint32_t coal_count,
               uint32_t coal_usec);

void tq_release(struct tq *t);

/* Ring word @off (HEAD, the flags), acquire. */
uint32_t ring_word(const struct tq *t, uint32_t off);

/* The record of descriptor @idx: COMP_AREA(slot), COMPS_PER_Q of them. */
uint64_t comp_iova(const struct tq *t, uint32_t idx);
struct accel_comp *comp_of(const struct tq *t, uint32_t idx);
/* Its status, acquire. */
uint8_t comp_status(const struct tq *t, uint32_t idx);

/* Run the engine (manual) or wait (threads) until @done(@arg). */
bool drive_until(struct accel_engine *e, bool manual, bool (*done)(void *),
                 void *arg);

/* Publish TAIL (for descriptors posted with kick = false) and ring if the
 * engine asks for it (accel_ring_publish()). */
void tq_kick(struct tq *t);

/* Copy @d into the next slot through the memory model, which a ring may
 * cross from one host buffer into another. Return: its ring index. */
uint32_t put_desc(struct tq *t, const struct accel_desc *d);

/*
 * Put @d in the ring as a driver does, once there is room; with @kick
 * publish it. With ACCEL_DF_COMP and .comp 0 the queue's completion slot
 * is used and zeroed first. Return: the ring index.
 */
uint32_t tq_post(struct tq *t, struct accel_desc d, bool kick);

/* tq_post() and publish. */
uint32_t tq_submit(struct tq *t, struct accel_desc d);

/* drive_until() predicate: struct comp_arg's descriptor is complete. */
bool comp_done(void *arg);

/* Wait for descriptor @idx's record; return its status. */
uint8_t tq_wait(struct tq *t, uint32_t idx);

/* Wait until HEAD reaches TAIL. */
void tq_drain(struct tq *t);

/* Batch element @i at BATCH_LIST with its record at BATCH_COMPS. */
void put_elem(unsigned int i, struct accel_desc d);
struct accel_comp *elem_comp(unsigned int i);

/* ---- Data and the fixture */

/* Test data and the reference CRC32C (independent of the engine) are the
 * kit's: kit_fill_rand(), kit_crc32c(). */

/*
 * The fixtures: one engine (manual: work runs in accel_engine_poll(); or
 * @threads engine threads polling an empty queue for @poll_us, 0: the
 * default) and F.t enabled on its queue 0 with @size slots. A test names
 * one with FX_TEST(test, FX_*).
 */
struct fx_cfg {
    unsigned int threads;
    unsigned int poll_us;
    uint32_t size;
};
enum { FX_MANUAL, FX_THREADS, FX_THREADS_LONG_POLL, FX_ONE_THREAD };
extern const struct fx_cfg fx_cfgs[];
#define FX_TEST(f, kind)                                                       \
    cmocka_unit_test_prestate_setup_teardown(f, fx_setup, fx_teardown,         \
                                             (void *)&fx_cfgs[kind])

/* Set up the fixture *@state points to (a struct fx_cfg). */
int fx_setup(void **state);

/* Release F.t, destroy the engine, check no hold is left. */
int fx_teardown(void **state);

#endif /* UMDEV_TEST_ACCEL_ENGINE_FIXTURE_H */
