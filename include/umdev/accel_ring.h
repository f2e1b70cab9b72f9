/*
 * The accel ring ABI: the memory a driver shares with one work queue of
 * the accel parent (devices/accel/README.md "Rings", "Descriptors",
 * "Completion records"), and the driver's side of the protocol on it.
 *
 * The accel device owns this ABI and this header is its only definition:
 * the engine (devices/accel/engine.h) implements it, lib/access and its
 * applications (umdev/access.h) speak it, and so do guest drivers, tests
 * and benchmarks. It needs only <stddef.h> and <stdint.h>, builds as C
 * and as C++, and defines no function with external linkage, so a tool
 * built for a guest uses it without libumdev.
 *
 * Names are the device's datasheet names (ACCEL_*), like its register
 * map's. Every field is little-endian; the structures are that layout in
 * the native byte order of a little-endian host.
 */
#ifndef UMDEV_ACCEL_RING_H
#define UMDEV_ACCEL_RING_H

#include <stddef.h>
#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "accel_ring.h: the ABI's layout is little-endian"
#endif

#ifdef __cplusplus
#define ACCEL_RING_ASSERT(cond, what) static_assert(cond, what)
extern "C" {
#else
#define ACCEL_RING_ASSERT(cond, what) _Static_assert(cond, what)
#endif

/* ---- Queue limits a driver programs within (README "Queue registers") */

#define ACCEL_RING_MAX 32768u /* descriptors per ring: MAX_RING */
#define ACCEL_BATCH_MAX 1024u /* descriptors per BATCH: MAX_BATCH */
#define ACCEL_PRIO_MIN 1u     /* PRIORITY */
#define ACCEL_PRIO_MAX 15u

/* ---- Ring layout (at the queue's RING_BASE, ACCEL_RING_ALIGN aligned).
 * Indices are free-running u32; the driver line (TAIL) and the device
 * line (HEAD and the flags) are separate cache lines. */

#define ACCEL_RING_ALIGN 64u
#define ACCEL_RING_TAIL 0x00u /* u32, driver: producer index */
#define ACCEL_RING_HEAD 0x40u /* u32, engine: consumer index */
/* u32, engine: 1 = the engine sleeps (a doorbell wakes it); 0 = it polls
 * TAIL. */
#define ACCEL_RING_DOORBELL_NEEDED 0x44u
/* u32, engine: the HEAD at which it went to sleep (see
 * accel_ring_need_doorbell()). */
#define ACCEL_RING_WAKE_INDEX 0x48u
#define ACCEL_RING_DESCS 0x80u /* descriptor i at DESCS + (i % size) * 64 */

/** Bytes a ring of @size descriptors occupies. */
static inline uint64_t
accel_ring_bytes(uint32_t size)
{
    return ACCEL_RING_DESCS + (uint64_t)size * 64u;
}

/* ---- Descriptor (64 bytes) */

enum accel_opcode {
    ACCEL_OP_NOP = 0x00,
    ACCEL_OP_BATCH = 0x01,
    ACCEL_OP_DRAIN = 0x02,
    ACCEL_OP_MEMMOVE = 0x03,
    ACCEL_OP_FILL = 0x04,
    ACCEL_OP_COMPARE = 0x05,
    ACCEL_OP_COMPARE_PATTERN = 0x06,
    ACCEL_OP_CRC32C = 0x07,
    ACCEL_OP_DUALCAST = 0x08,
    ACCEL_OP_COPY_CRC = 0x09,
    ACCEL_OP_COUNT,
};
#define ACCEL_OPCAP_MASK ((1ull << ACCEL_OP_COUNT) - 1) /* OPCAP */

#define ACCEL_DF_COMP 0x01u /* write a completion record at .comp */
#define ACCEL_DF_INTR 0x02u /* signal the queue's interrupt when done */
#define ACCEL_DF_MASK 0x03u

#define ACCEL_DESC_SIZE 64u
#define ACCEL_COMP_SIZE 32u
#define ACCEL_COMP_ALIGN 32u
#define ACCEL_BATCH_ALIGN 64u

struct accel_desc {
    uint8_t opcode;    /* 0x00 enum accel_opcode */
    uint8_t flags;     /* 0x01 ACCEL_DF_* */
    uint16_t rsvd0;    /* 0x02 must be 0 */
    uint32_t size;     /* 0x04 bytes; BATCH: descriptor count */
    uint64_t src;      /* 0x08 source; COMPARE: first; BATCH: the list */
    uint64_t dst;      /* 0x10 destination; COMPARE: second source */
    uint64_t dst2;     /* 0x18 DUALCAST: second destination */
    uint64_t comp;     /* 0x20 completion record (ACCEL_COMP_ALIGN) */
    uint64_t pattern;  /* 0x28 FILL, COMPARE_PATTERN: byte i is
                        * (pattern >> 8 * (i % 8)) & 0xff */
    uint32_t crc_seed; /* 0x30 CRC32C, COPY_CRC */
    uint32_t rsvd1;    /* 0x34 must be 0 */
    uint64_t tag;      /* 0x38 echoed in the completion record */
};
ACCEL_RING_ASSERT(sizeof(struct accel_desc) == ACCEL_DESC_SIZE, "descriptor");
ACCEL_RING_ASSERT(offsetof(struct accel_desc, comp) == 0x20 &&
                      offsetof(struct accel_desc, tag) == 0x38,
                  "descriptor layout");

/* ---- Completion record (32 bytes) */

enum accel_status {
    ACCEL_ST_NONE = 0x00, /* not written yet (drivers zero it) */
    ACCEL_ST_SUCCESS = 0x01,
    ACCEL_ST_MISMATCH = 0x02,       /* COMPARE*: info = first differing
                                     * byte offset, bytes = info */
    ACCEL_ST_ADDR_FAULT = 0x03,     /* info = faulting address */
    ACCEL_ST_INVALID_OPCODE = 0x04, /* info = 0 */
    ACCEL_ST_INVALID_FIELD = 0x05,  /* info = descriptor byte offset */
    ACCEL_ST_BATCH_PARTIAL = 0x06,  /* some element did not succeed */
    ACCEL_ST_ABORTED = 0x07,        /* queue disabled before it ran */
};

struct accel_comp {
    uint8_t status; /* 0x00 written last: enum accel_status */
    uint8_t result; /* 0x01 COMPARE*: 0 equal, 1 different */
    uint8_t opcode; /* 0x02 the descriptor's opcode */
    uint8_t rsvd;   /* 0x03 */
    uint32_t bytes; /* 0x04 bytes done; BATCH: elements that succeeded */
    uint64_t info;  /* 0x08 see enum accel_status */
    uint64_t value; /* 0x10 CRC32C, COPY_CRC: the CRC (low 32 bits) */
    uint64_t tag;   /* 0x18 the descriptor's tag */
};
ACCEL_RING_ASSERT(sizeof(struct accel_comp) == ACCEL_COMP_SIZE, "record");
ACCEL_RING_ASSERT(offsetof(struct accel_comp, info) == 0x08 &&
                      offsetof(struct accel_comp, tag) == 0x18,
                  "record layout");

/* ---- Driver side (README "Submitting (event suppression)")
 *
 * Memory ordering, against an engine running on other CPUs or in another
 * process: descriptors and zeroed records are plain stores, published by
 * the release store of TAIL; a full fence separates that store from the
 * loads of DOORBELL_NEEDED and WAKE_INDEX (the engine fences between its
 * store of DOORBELL_NEEDED and its last look at TAIL, so one of the two
 * sides always sees the other); HEAD and a record's status are loaded
 * with acquire (the engine writes a record's status last, with release,
 * and the record before it moves HEAD past the descriptor).
 */

/**
 * accel_ring_need_doorbell() - the event-suppression rule, after the
 * driver moved TAIL from @old_tail to @new_tail and then, after a full
 * fence, read @doorbell_needed and @wake_index: ring only if the engine
 * sleeps and the move crossed the HEAD it went to sleep at, so a sleeping
 * engine gets one doorbell, not one per descriptor posted before it is
 * awake. Return: nonzero to write the doorbell. Pure.
 */
static inline int
accel_ring_need_doorbell(uint32_t doorbell_needed, uint32_t wake_index,
                         uint32_t old_tail, uint32_t new_tail)
{
    return doorbell_needed != 0 && (uint32_t)(new_tail - wake_index - 1) <
                                       (uint32_t)(new_tail - old_tail);
}

/**
 * accel_ring_load() - ring word @off (ACCEL_RING_HEAD, _DOORBELL_NEEDED,
 * _WAKE_INDEX) of the ring mapped at @ring, with acquire order: having
 * seen HEAD pass a descriptor, the driver sees its record too.
 */
static inline uint32_t
accel_ring_load(const void *ring, uint32_t off)
{
    return __atomic_load_n((const uint32_t *)((const char *)ring + off),
                           __ATOMIC_ACQUIRE);
}

/**
 * accel_comp_status() - the status of record @c (0: not complete), with
 * acquire order: when it is not 0 the rest of the record is readable.
 */
static inline uint8_t
accel_comp_status(const struct accel_comp *c)
{
    return __atomic_load_n(&c->status, __ATOMIC_ACQUIRE);
}

/**
 * accel_desc_make() - a descriptor of @op over @size bytes from @src to
 * @dst asking for a completion record (ACCEL_DF_COMP): the fields most
 * operations take; set the others (pattern, crc_seed, dst2, tag, flags)
 * on the result.
 */
static inline struct accel_desc
accel_desc_make(uint8_t op, uint32_t size, uint64_t src, uint64_t dst)
{
    struct accel_desc d;

    __builtin_memset(&d, 0, sizeof(d));
    d.opcode = op;
    d.flags = ACCEL_DF_COMP;
    d.size = size;
    d.src = src;
    d.dst = dst;
    return d;
}

/**
 * struct accel_ring_drv - a driver's side of one ring.
 * @ring: the ring (accel_ring_bytes(@size) contiguous bytes) as the driver
 *        maps it.
 * @comps: NULL, or one completion record per ring slot as the driver maps
 *         them: descriptor i then always gets comps[i % @size], and is
 *         reaped in order with accel_ring_reap().
 * @comps_addr: the address descriptors name @comps by (the device's view).
 * @size: the queue's RING_SIZE, a power of two.
 * @tail: the next ring index to post (free-running).
 * @published: TAIL as last stored in the ring.
 * @reaped: with @comps, the oldest descriptor not reaped.
 *
 * Set it up with accel_ring_drv_init() once the queue is enabled with
 * TAIL 0. One thread at a time drives a ring (the helpers take no lock);
 * the engine runs concurrently on its own threads or in another process.
 */
struct accel_ring_drv {
    void *ring;
    struct accel_comp *comps;
    uint64_t comps_addr;
    uint32_t size;
    uint32_t tail;
    uint32_t published;
    uint32_t reaped;
};

/**
 * accel_ring_drv_init() - a driver at index 0 of the ring at @ring of
 * @size descriptors; @comps and @comps_addr as in struct accel_ring_drv.
 * Touches no shared memory.
 */
static inline void
accel_ring_drv_init(struct accel_ring_drv *r, void *ring, uint32_t size,
                    struct accel_comp *comps, uint64_t comps_addr)
{
    r->ring = ring;
    r->comps = comps;
    r->comps_addr = comps_addr;
    r->size = size;
    r->tail = 0;
    r->published = 0;
    r->reaped = 0;
}

/** The slot of ring index @idx, as the driver maps it. */
static inline struct accel_desc *
accel_ring_slot(const struct accel_ring_drv *r, uint32_t idx)
{
    return (struct accel_desc *)((char *)r->ring + ACCEL_RING_DESCS +
                                 (uint64_t)(idx & (r->size - 1)) *
                                     ACCEL_DESC_SIZE);
}

/**
 * accel_ring_room() - descriptors the driver may post now. A slot is free
 * once HEAD passed it; with @comps, once its record was reaped (the
 * engine copies a descriptor out before it writes its record, so a
 * reaped slot is free even while HEAD, stored after the record, lags).
 * Return: 0 too if HEAD is beyond TAIL, which the engine never writes.
 * Loads HEAD (acquire).
 */
static inline uint32_t
accel_ring_room(const struct accel_ring_drv *r)
{
    uint32_t head = accel_ring_load(r->ring, ACCEL_RING_HEAD);

    if ((uint32_t)(r->tail - head) > r->size)
        return 0;
    if (r->comps != NULL)
        return r->size - (r->tail - r->reaped);
    return r->size - (r->tail - head);
}

/**
 * accel_ring_post() - copy @d into the next slot (the caller checked the
 * room). With @comps the descriptor gets its slot's record: ACCEL_DF_COMP
 * is set, .comp names the record, and the record is zeroed. Not visible
 * to the engine until accel_ring_publish().
 * Return: the descriptor's ring index.
 */
static inline uint32_t
accel_ring_post(struct accel_ring_drv *r, const struct accel_desc *d)
{
    uint32_t idx = r->tail, slot = idx & (r->size - 1);
    struct accel_desc *s = accel_ring_slot(r, idx);
    struct accel_comp *c = r->comps != NULL ? &r->comps[slot] : NULL;
    uint64_t comp = r->comps_addr + (uint64_t)slot * ACCEL_COMP_SIZE;

    /* Everything read from @r first, then one block copy into the slot
     * (the engine reads none of it before the TAIL store). */
    r->tail = idx + 1;
    __builtin_memcpy(s, d, sizeof(*s));
    if (c != NULL) {
        __builtin_memset(c, 0, sizeof(*c));
        s->flags = (uint8_t)(s->flags | ACCEL_DF_COMP);
        s->comp = comp;
    }
    return idx;
}

/**
 * accel_ring_store_tail() - publishing, step 1: store TAIL = @r->tail
 * with release order, so an engine that reads it sees every descriptor
 * and zeroed record posted before.
 * Return: the TAIL stored before, for accel_ring_doorbell_wanted().
 */
static inline uint32_t
accel_ring_store_tail(struct accel_ring_drv *r)
{
    uint32_t old = r->published;

    __atomic_store_n((uint32_t *)((char *)r->ring + ACCEL_RING_TAIL), r->tail,
                     __ATOMIC_RELEASE);
    r->published = r->tail;
    return old;
}

/**
 * accel_ring_doorbell_wanted() - publishing, step 2, after
 * accel_ring_store_tail() returned @old: a full fence, then the engine's
 * flags (acquire) and accel_ring_need_doorbell().
 * Return: nonzero if the driver must write the queue's doorbell.
 */
static inline int
accel_ring_doorbell_wanted(const struct accel_ring_drv *r, uint32_t old)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return accel_ring_need_doorbell(
        accel_ring_load(r->ring, ACCEL_RING_DOORBELL_NEEDED),
        accel_ring_load(r->ring, ACCEL_RING_WAKE_INDEX), old, r->published);
}

/**
 * accel_ring_publish() - make the posted descriptors the engine's: both
 * steps above.
 * Return: nonzero if the driver must write the queue's doorbell.
 */
static inline int
accel_ring_publish(struct accel_ring_drv *r)
{
    return accel_ring_doorbell_wanted(r, accel_ring_store_tail(r));
}

/**
 * accel_ring_reap() - with @comps: copy out the record of the oldest
 * descriptor not reaped yet, if it is complete (status loaded with
 * acquire), and move on to the next. Descriptors complete in ring order,
 * so reaping in order loses nothing.
 * Return: 1 and *@out; 0 if nothing is outstanding or the oldest is not
 * complete.
 */
static inline int
accel_ring_reap(struct accel_ring_drv *r, struct accel_comp *out)
{
    const struct accel_comp *c;
    uint8_t st;

    if (r->reaped == r->tail)
        return 0;
    c = &r->comps[r->reaped & (r->size - 1)];
    st = accel_comp_status(c);
    if (st == ACCEL_ST_NONE)
        return 0;
    *out = *c;
    out->status = st;
    r->reaped++;
    return 1;
}

#ifdef __cplusplus
}
#endif

#undef ACCEL_RING_ASSERT

#endif /* UMDEV_ACCEL_RING_H */
