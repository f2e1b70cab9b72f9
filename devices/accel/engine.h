/*
 * The accel work-queue engine: a software data-movement accelerator with N
 * work queues served by M engine threads. One engine serves one parent;
 * its embedders (PCI subdevices, the host access path) claim queues
 * on it and supply, per queue, the only way the engine may reach memory: a
 * translation callback that validates and holds every address it returns.
 *
 * The memory a driver shares with a queue (ring, descriptors, completion
 * records: the ring ABI) is defined once, in umdev/accel_ring.h, which
 * this device owns; devices/accel/README.md documents it for guest
 * authors. The engine implements it from that header alone.
 *
 * Threading: accel_engine_create/destroy and accel_queue_claim/release on
 * one thread at a time; accel_queue_enable/disable/doorbell/status from
 * any thread (one control thread per queue); the queue callbacks run on
 * engine threads (and on the thread calling accel_queue_enable/disable or
 * accel_engine_poll).
 */
#ifndef UMDEV_ACCEL_ENGINE_H
#define UMDEV_ACCEL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/accel_ring.h"
#include "umdev/umdev.h"

/* ---- Limits and defaults ---- */

#define ACCEL_DEFAULT_QUEUES 16u
#define ACCEL_MAX_QUEUES 256u
#define ACCEL_DEFAULT_THREADS 1u
#define ACCEL_MAX_THREADS 64u
#define ACCEL_DEFAULT_MAX_TRANSFER (2u << 20) /* bytes per descriptor */
#define ACCEL_MIN_MAX_TRANSFER 4096u
#define ACCEL_MAX_MAX_TRANSFER (1u << 30)
#define ACCEL_DEFAULT_POLL_US 200u /* poll an empty queue before sleeping */
#define ACCEL_COAL_COUNT_MAX 65535u
#define ACCEL_COAL_USEC_MAX 1000000u
/* Scheduling: a queue of priority p may spend p * ACCEL_QUANTUM cost
 * units per round; a descriptor costs its bytes plus ACCEL_DESC_COST. */
#define ACCEL_QUANTUM 16384u
#define ACCEL_DESC_COST 256u
/* A translation callback must return at least the rest of the 4 KiB page
 * holding the address (mappings are page-granular); the engine sizes its
 * segment lists by it. */
#define ACCEL_MAP_GRANULE 4096u

/* ---- Errors that have no completion record to go to (the error
 * callback): a descriptor without ACCEL_DF_COMP that failed, a record the
 * engine could not write, a queue fault. */

enum accel_err {
    /* 0x01..0x07: a descriptor status (enum accel_status) */
    ACCEL_ERR_COMP_FAULT = 0x10, /* addr: the completion address */
    ACCEL_ERR_RING_FAULT = 0x11, /* queue halted; addr: ring address */
    ACCEL_ERR_BAD_INDEX = 0x12,  /* queue halted; addr: the TAIL value */
};

struct accel_error {
    uint8_t code;   /* enum accel_status or enum accel_err */
    uint8_t opcode; /* of the descriptor, if any */
    uint32_t index; /* ring index of the descriptor (or HEAD) */
    uint64_t addr;  /* faulting address, field offset or index */
};

/* ---- Queue configuration and state */

/* Why a queue could not be enabled or stopped (status error codes). */
enum accel_qerr {
    ACCEL_QERR_NONE = 0x00,
    ACCEL_QERR_RING_ALIGN = 0x01, /* ring base not ACCEL_RING_ALIGN aligned */
    ACCEL_QERR_RING_SIZE = 0x02,  /* not a power of two in 1..RING_MAX */
    ACCEL_QERR_PRIORITY = 0x03,   /* not in PRIO_MIN..PRIO_MAX */
    ACCEL_QERR_COALESCE = 0x04,   /* coalescing values out of range */
    ACCEL_QERR_RING_FAULT = 0x05, /* ring memory not readable/writable */
    ACCEL_QERR_BAD_INDEX = 0x06,  /* TAIL - HEAD > size */
};

struct accel_queue_config {
    uint64_t ring;     /* guest address of the ring */
    uint32_t size;     /* descriptors */
    uint32_t priority; /* ACCEL_PRIO_MIN..ACCEL_PRIO_MAX */
    /* Interrupt coalescing: signal after this many ACCEL_DF_INTR
     * completions (0 or 1: each), or once the oldest unsignalled one is
     * this old (0: no time limit). Whatever is pending is signalled as
     * soon as the queue runs empty, so nothing waits for a count. */
    uint32_t coal_count;
    uint32_t coal_usec;
};

enum accel_queue_state {
    ACCEL_QS_DISABLED = 0,
    ACCEL_QS_ENABLED = 1,
    ACCEL_QS_ERROR = 2, /* halted by a ring fault; disable to recover */
};

struct accel_queue_status {
    enum accel_queue_state state;
    uint8_t error; /* enum accel_qerr: why enable failed / halted */
    uint64_t error_addr;
    uint32_t head;      /* engine's consumer index */
    bool sleeping;      /* DOORBELL_NEEDED is published */
    uint64_t completed; /* descriptors completed (batch elements too) */
    uint64_t bytes;     /* bytes processed */
    uint64_t failed;    /* completions with a status other than SUCCESS */
    uint64_t notifies;  /* interrupts signalled */
    uint64_t doorbells; /* accel_queue_doorbell() calls */
};

/* ---- Memory access, supplied per queue by the embedder */

#define ACCEL_MAP_READ 1  /* the engine reads the memory */
#define ACCEL_MAP_WRITE 2 /* the engine writes the memory */

struct accel_map {
    void *ptr;    /* host address of the first byte */
    uint64_t len; /* contiguous bytes at ptr */
    /*
     * Optional (the engine zeroes them before map): the hold keeps all of
     * [span, span + span_len) translated, contiguously around ptr and with
     * the protection asked for, as a hold on a whole DMA mapping does.
     * ACCEL_MAP_GRANULE-aligned. The engine then keeps the hold for the
     * rest of a queue visit and serves the visit's later accesses inside
     * the span without calling map again: a mapping's teardown (which
     * waits for its holds) waits for at most that visit.
     */
    uint64_t span, span_len;
    bool borrowed; /* the engine's: served from a visit's held span */
    /* The embedder's hold, returned to unmap. */
    _Alignas(8) unsigned char priv[32];
};

struct accel_queue_ops {
    /*
     * Translate [addr, addr + len) and hold it until unmap. On success
     * m->len is in 1..len: a shorter prefix means the rest lies in another
     * mapping (the engine calls again for it), and is at least the rest of
     * the ACCEL_MAP_GRANULE page of @addr. Any error is an address fault at
     * @addr. @prot is ACCEL_MAP_READ and/or _WRITE. Must not block for
     * long; called without engine locks.
     */
    int (*map)(void *opaque, uint64_t addr, uint64_t len, int prot,
               struct accel_map *m);
    void (*unmap)(void *opaque, struct accel_map *m);
    /*
     * Optional: the engine is about to write [addr, addr + len) through
     * @hold, a hold map() returned for another range of its span (the
     * visit reuses spans). An embedder whose map() records what it hands
     * out for writing (lib/dev's dirty log) records this too. Engine
     * threads; must not block.
     */
    void (*mark)(void *opaque, const struct accel_map *hold, uint64_t addr,
                 uint64_t len);
    /* Completions to signal (already coalesced). May be NULL. */
    void (*notify)(void *opaque);
    /* An error with no completion record to carry it. May be NULL. */
    void (*error)(void *opaque, const struct accel_error *err);
};

/* ---- The engine */

struct accel_engine_config {
    unsigned int nr_queues;  /* 0: ACCEL_DEFAULT_QUEUES */
    unsigned int nr_threads; /* 0: ACCEL_DEFAULT_THREADS */
    /* No engine threads: work runs only in accel_engine_poll() (tests,
     * and embedders that bring their own threads). */
    bool manual;
    uint32_t max_transfer; /* 0: ACCEL_DEFAULT_MAX_TRANSFER */
    unsigned int poll_us;  /* 0: ACCEL_DEFAULT_POLL_US */
    bool no_poll;          /* ask for a doorbell as soon as a queue empties */
    bool crc_soft;         /* never use the CPU's CRC32 instruction */
    const struct umdev_logger *log; /* borrowed; may be NULL */
};

struct accel_engine;
struct accel_queue;

/**
 * accel_engine_create() - an engine with its queues (all free) and, unless
 * @cfg->manual, its threads started (idle: they sleep until a doorbell).
 * Return: 0; -EINVAL (a value out of range); -ENOMEM; a pthread error.
 */
int accel_engine_create(const struct accel_engine_config *cfg,
                        struct accel_engine **out);

/** Stop the threads and free. Claimed queues are released (discarding
 * their work). NULL is ok. */
void accel_engine_destroy(struct accel_engine *e);

/** Queues not claimed. */
unsigned int accel_engine_free_queues(struct accel_engine *e);
unsigned int accel_engine_nr_queues(const struct accel_engine *e);
uint32_t accel_engine_max_transfer(const struct accel_engine *e);
/** True if CRC32C runs on the CPU's instruction. */
bool accel_engine_crc_hw(const struct accel_engine *e);

/**
 * accel_engine_poll() - run up to @visits queue visits on the calling
 * thread (a visit serves one queue for one scheduling quantum). One
 * caller at a time. Return: descriptors completed (0: nothing to do).
 */
unsigned int accel_engine_poll(struct accel_engine *e, unsigned int visits);

/**
 * accel_engine_rewind() - for harnesses that run one engine through many
 * independent runs (fuzz/accel_bar.c): the scheduling and queue state
 * back to what accel_engine_create() left, so that no run depends on the
 * one before: the round-robin cursor, and each queue's error status,
 * HEAD and serving state (disabling a queue that was not running, after
 * a refused enable or a halt, keeps its error; a new engine has none).
 * The statistics keep counting (embedders read them relative to their
 * last reset). Every queue must be disabled and no thread in the engine.
 */
void accel_engine_rewind(struct accel_engine *e);

/**
 * accel_queue_claim() - take queue @index (or any free one if @index < 0)
 * for an embedder. @ops and @opaque are borrowed until release.
 * Return: 0; -EBUSY taken; -ENOSPC none free; -EINVAL bad index or ops.
 */
int accel_queue_claim(struct accel_engine *e, int index,
                      const struct accel_queue_ops *ops, void *opaque,
                      struct accel_queue **out);

/** Disable (discarding pending work) and return the queue. NULL is ok. */
void accel_queue_release(struct accel_queue *q);

unsigned int accel_queue_index(const struct accel_queue *q);

/**
 * accel_queue_enable() - validate @cfg and start the queue: the engine
 * writes HEAD = 0 and DOORBELL_NEEDED = 1 into the ring and waits for a
 * doorbell (TAIL must be 0 or name descriptors to run after it).
 * Return: 0; -EBUSY not disabled; -EINVAL or -EFAULT with the reason in
 * the status (ACCEL_QERR_*), the queue staying disabled.
 */
int accel_queue_enable(struct accel_queue *q,
                       const struct accel_queue_config *cfg);

/**
 * accel_queue_disable() - stop the queue. The descriptor being processed
 * finishes (a BATCH stops between elements, the rest ABORTED); then with
 * @abort_pending the descriptors between HEAD and TAIL get ABORTED
 * completion records and HEAD = TAIL (queue disable), without it nothing
 * more is written to memory (device reset). Blocks until no engine thread
 * touches the queue's memory. A halted (ERROR) queue is only reset.
 */
void accel_queue_disable(struct accel_queue *q, bool abort_pending);

/** accel_queue_disable(@q, false) for a device reset, which also clears
 * the queue's error code and address (a disable keeps them). */
void accel_queue_reset(struct accel_queue *q);

/** The driver moved TAIL while DOORBELL_NEEDED was 1 (or at any time):
 * look at the ring again. Cheap; never blocks for long. */
void accel_queue_doorbell(struct accel_queue *q);

void accel_queue_status(struct accel_queue *q, struct accel_queue_status *out);

/* ---- Migration: a queue stopped where it stands, and its state moved
 * to a queue of another engine. The ring, its descriptors and records
 * are guest memory and move with it; what the engine adds is below. */

struct accel_queue_mig {
    enum accel_queue_state state;
    uint8_t error;       /* enum accel_qerr, also while DISABLED */
    uint64_t error_addr; /* and what it is about */
    uint32_t head;       /* the next descriptor to run (ENABLED) */
    bool published;      /* DOORBELL_NEEDED = 1 is in the ring (ENABLED) */
    struct accel_queue_config cfg; /* ENABLED or ERROR */
    /* A BATCH at head paused before element batch_next (0: none), with
     * batch_ok elements succeeded, batch_failed if any did not. */
    uint32_t batch_next, batch_ok;
    bool batch_failed;
};

/**
 * accel_queue_pause() - stop serving @q without touching its ring: the
 * descriptor being processed finishes (a BATCH pauses between two
 * elements and goes on from there when served again, its progress in the
 * queue's state), the rest stay in the ring for whoever serves it next,
 * and completions
 * coalesced so far are signalled. On return no engine thread touches the
 * queue's memory or calls its callbacks until accel_queue_resume();
 * doorbells meanwhile are remembered. Other queues keep running. Control
 * thread; blocks for at most one descriptor (or batch element).
 */
void accel_queue_pause(struct accel_queue *q);

/** Serve @q again: an ENABLED queue looks at its ring at once (a doorbell
 * may have gone to the engine it came from). Control thread. */
void accel_queue_resume(struct accel_queue *q);

/** @q's state to carry; @q paused or disabled. */
void accel_queue_save(struct accel_queue *q, struct accel_queue_mig *out);

/**
 * accel_queue_mig_check() - could @in be restored? A queue that runs or
 * halted needs a configuration accel_queue_enable() accepts.
 * Return: ACCEL_QERR_NONE, else why not (the ACCEL_QERR_* code, or
 * 0xff for a state or error code out of range).
 */
uint8_t accel_queue_mig_check(const struct accel_queue_mig *in);

/**
 * accel_queue_restore() - make @q what @in says, writing nothing to
 * memory. @q must be paused; it was reset first (accel_queue_reset()).
 * Return: 0; -EINVAL if accel_queue_mig_check() refuses @in (nothing
 * changed).
 */
int accel_queue_restore(struct accel_queue *q,
                        const struct accel_queue_mig *in);

/* ---- CRC32C (Castagnoli, reflected 0x82F63B78), also for tests */

/**
 * accel_crc32c() - CRC32C of @buf continuing from @crc (0 to start; the
 * CRC of A then passed as @crc over B gives the CRC of A||B). Uses the
 * engine's implementation choice.
 */
uint32_t accel_crc32c(const struct accel_engine *e, uint32_t crc,
                      const void *buf, size_t len);
/** The table implementation, always available. */
uint32_t accel_crc32c_soft(const struct accel_engine *e, uint32_t crc,
                           const void *buf, size_t len);
/** The SSE4.2 implementation. Return: false if the CPU has none. */
bool accel_crc32c_hw(uint32_t crc, const void *buf, size_t len, uint32_t *out);

#endif /* UMDEV_ACCEL_ENGINE_H */
