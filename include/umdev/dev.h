/*
 * The device object device authors build on: regions, IRQs, the DMA map
 * table, reset, and the vfio-user server that dispatches a client's
 * commands to them. One device serves one client at a time (the spec's
 * one-client-per-socket model); a new client may attach after the previous
 * one detaches, and then finds the device state retained but DMA mappings
 * and IRQ eventfds gone (spec "Client Disconnection").
 *
 * Threading: the device and its server run on one thread (the one calling
 * umdev_dev_process() / the loop). The synchronous DMA API (umdev_dma_get,
 * _put, _read, _write) may also be called from device worker threads;
 * umdev_dev_irq_trigger() too. The asynchronous copies (umdev_dma_*_async,
 * which reach guest memory mapped without an fd by messages) belong to the
 * server thread, which never waits for the client's answer.
 */
#ifndef UMDEV_DEV_H
#define UMDEV_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "umdev/loop.h"
#include "umdev/umdev.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct umdev_dev;

/* PCI region and IRQ indices (<linux/vfio.h> VFIO_PCI_*_INDEX). */
enum {
    UMDEV_PCI_BAR0_REGION = 0,
    UMDEV_PCI_BAR1_REGION,
    UMDEV_PCI_BAR2_REGION,
    UMDEV_PCI_BAR3_REGION,
    UMDEV_PCI_BAR4_REGION,
    UMDEV_PCI_BAR5_REGION,
    UMDEV_PCI_ROM_REGION,
    UMDEV_PCI_CONFIG_REGION,
    UMDEV_PCI_VGA_REGION,
    UMDEV_PCI_NUM_REGIONS,
};
enum {
    UMDEV_PCI_INTX_IRQ = 0,
    UMDEV_PCI_MSI_IRQ,
    UMDEV_PCI_MSIX_IRQ,
    UMDEV_PCI_ERR_IRQ,
    UMDEV_PCI_REQ_IRQ,
    UMDEV_PCI_NUM_IRQS,
};

/* Limits (documented in docs/PROTOCOL.md). */
#define UMDEV_MAX_REGIONS 16u
#define UMDEV_MAX_IRQ_VECTORS 2048u /* MSI-X table maximum */
/*
 * DMA mappings: each one with an fd is an mmap() in this process, and the
 * kernel caps a process's mappings (vm.max_map_count, 65530 by default),
 * all its libraries, heap, thread stacks and sanitizer shadow included.
 * So the devices of one process share UMDEV_PROCESS_MAX_DMA_MAPS, half
 * of that cap: each device reserves its max_dma_maps (what it advertises
 * in VERSION, a promise it can keep) from it when it is created.
 */
#define UMDEV_DEFAULT_MAX_DMA_MAPS 2048u
#define UMDEV_PROCESS_MAX_DMA_MAPS 32768u

#define UMDEV_REGION_F_READ (1u << 0)
#define UMDEV_REGION_F_WRITE (1u << 1)

/**
 * umdev_region_access_fn - a trapped access to a region.
 * @opaque: the region's opaque pointer.
 * @offset: checked by the framework: @offset + @count <= region size.
 * @buf: @count bytes to fill (read) or to consume (write).
 *
 * Return: @count, or a negative errno that becomes the error reply.
 */
typedef ssize_t umdev_region_access_fn(void *opaque, uint64_t offset,
                                       void *buf, size_t count, bool is_write);

/* A part of a region the client may mmap (offset and size page-aligned). */
struct umdev_mmap_area {
    uint64_t offset;
    uint64_t size;
};

struct umdev_region_desc {
    uint64_t size;
    uint32_t flags; /* UMDEV_REGION_F_* */
    /* Trapped accesses. NULL with @shm: reads and writes go straight to the
     * shared memory. At least one of @access and @shm is needed. */
    umdev_region_access_fn *access;
    void *opaque; /* borrowed */
    /* Back the region with shared memory (a memfd the client may mmap). */
    bool shm;
    /* Which parts of the shared memory the client may mmap: NULL/0 means
     * the whole region; the rest is trapped (to @access if set, else to
     * the shared memory directly). Copied. */
    const struct umdev_mmap_area *areas;
    size_t nr_areas;
};

/*
 * Migration (docs/PROTOCOL.md "Migration"). The framework runs the v2
 * state machine, frames the stream and checks an incoming one before the
 * device sees a byte of it; the device only stops, resumes, saves and
 * loads. Its save and precopy hooks write into a buffer the framework
 * owns, with umdev_mig_buf_put().
 */
struct umdev_mig_buf;

/**
 * umdev_mig_buf_put() - append @len bytes to the stream being saved.
 * Return: 0; -ENOMEM; -EFBIG past UMDEV_MIG_MAX_STATE.
 */
int umdev_mig_buf_put(struct umdev_mig_buf *b, const void *data, size_t len);

/* A stream (header, configuration and state) is at most this long. */
#define UMDEV_MIG_MAX_STATE (64u << 20)
/* The device type named in the stream, NUL included. */
#define UMDEV_MIG_TYPE_MAX 32u

struct umdev_mig_ops {
    /* The stream's device type (below UMDEV_MIG_TYPE_MAX bytes) and the
     * version of the device's state format: a destination refuses another
     * type, and a version above its own (it reads its own and older). */
    const char *type;
    uint32_t version;
    /* What must be equal on both sides (queue counts, sizes, attributes),
     * compared byte for byte before anything is loaded. NULL: nothing. */
    int (*config)(void *opaque, struct umdev_mig_buf *out);
    /* RUNNING -> STOP: once it returns 0 the device writes no guest
     * memory and raises no interrupt until resume(); work in flight is
     * finished first or kept in the state save() writes. A negative
     * errno refuses the arc and the device keeps running. */
    int (*stop)(void *opaque);
    /* STOP -> RUNNING, and after a reset from a stopped state. */
    void (*resume)(void *opaque);
    /* Entering STOP_COPY (the device is stopped): all guest-visible state. */
    int (*save)(void *opaque, struct umdev_mig_buf *out);
    /*
     * Leaving RESUMING: replace the device's state with @state (what save()
     * wrote, format @version) and @early (what precopy() wrote, or 0
     * bytes). Type and configuration were checked already. A negative
     * errno fails the arc; the device is then in ERROR until a reset.
     */
    int (*load)(void *opaque, uint32_t version, const void *early,
                size_t early_len, const void *state, size_t len);
    /* Optional, PRE_COPY is offered only with it: RUNNING -> PRE_COPY, what
     * can be sent while the device runs (the final save() still carries
     * everything that may change). */
    int (*precopy)(void *opaque, struct umdev_mig_buf *out);
    /* Optional: bytes of state that changed since precopy() (the
     * pre-copy sizes extension); NULL reports 0. */
    uint64_t (*precopy_dirty)(void *opaque);
};

/* Optional device hooks. Every callback gets the device's opaque. */
struct umdev_dev_ops {
    /* VFIO_USER_DEVICE_RESET: return the device to its power-on state. */
    int (*reset)(void *opaque);
    /* Quiesce: called before a DMA range disappears (DMA_UNMAP, client
     * detach). The device must stop using [iova, iova+size) and release its
     * holds on it before returning; the unmap then waits for any hold
     * still taken on another thread. */
    void (*dma_unmap)(void *opaque, uint64_t iova, uint64_t size);
    /* A client attached / detached. */
    void (*attach)(void *opaque);
    void (*detach)(void *opaque);
    /* The client changed an IRQ index's eventfds or masks. */
    void (*irq_changed)(void *opaque, uint32_t index);
    /* Migration; NULL: DEVICE_FEATURE MIGRATION is not offered. Needs
     * type, stop, resume, save and load. Borrowed. */
    const struct umdev_mig_ops *mig;
};

/**
 * umdev_dev_mig_state() - the migration state (VFIO_USER_DEVICE_STATE_*
 * of umdev/wire.h); RUNNING for a device without migration. Server thread.
 */
uint32_t umdev_dev_mig_state(const struct umdev_dev *dev);

/**
 * umdev_dev_manage() - take @fd (a connected stream socket) as the
 * device's migration manager: a vfio-user connection beside the client's
 * that may send VERSION, DEVICE_GET_INFO, DEVICE_FEATURE MIGRATION /
 * MIG_DEVICE_STATE / umdev's PRECOPY_INFO, and MIG_DATA_READ/WRITE;
 * anything else is refused with EPERM (docs/PROTOCOL.md "Migration
 * manager"). It lets a management tool move the device while the VMM
 * keeps its connection, guest memory and interrupts. umdev_server serves
 * it; without a server, umdev_dev_manager_fd() and the caller's loop.
 * Return: 0; -EBUSY a manager is attached; -ENOTSUP no migration hooks
 * (@fd is closed on every error).
 */
int umdev_dev_manage(struct umdev_dev *dev, int fd);
bool umdev_dev_managed(const struct umdev_dev *dev);
int umdev_dev_manager_fd(const struct umdev_dev *dev);
/* Close the manager's connection; the migration state is left as is. */
void umdev_dev_manage_end(struct umdev_dev *dev);

struct umdev_dev_info {
    const char *name;          /* for logs; copied */
    bool pci;                  /* VFIO_DEVICE_FLAGS_PCI */
    const struct umdev_dev_ops *ops; /* borrowed; may be NULL */
    void *opaque;              /* borrowed */
    const struct umdev_logger *log; /* borrowed; may be NULL */
    /* 0: UMDEV_DEFAULT_MAX_DMA_MAPS; reserved from the process's
     * UMDEV_PROCESS_MAX_DMA_MAPS while the device exists */
    uint32_t max_dma_maps;
    uint32_t max_data_xfer_size; /* 0: 1 MiB */
};

/**
 * umdev_dev_create() - a device with no regions or IRQs yet.
 * Return: 0 or -ENOMEM / -EINVAL; -ENOSPC when the process's devices have
 * reserved too many DMA mappings to grant this one its max_dma_maps
 * (logged).
 */
int umdev_dev_create(const struct umdev_dev_info *info,
                     struct umdev_dev **out);

/** umdev_dev_destroy() - detach any client, unmap DMA, free. NULL is ok. */
void umdev_dev_destroy(struct umdev_dev *dev);

/**
 * umdev_dev_region_add() - describe region @index.
 * Return: 0; -EINVAL bad index/size/areas; -EEXIST; -ENOMEM; or the
 * memfd/mmap error for shared memory.
 */
int umdev_dev_region_add(struct umdev_dev *dev, uint32_t index,
                         const struct umdev_region_desc *desc);

/**
 * umdev_dev_region_resize() - change trapped region @index's size while
 * the device is being built (lib/pci: config space becomes 4 KiB when a
 * PCI Express capability is added). Return: 0; -EINVAL for a region that
 * is absent or shared memory, or a size of 0; -EBUSY with a client
 * attached.
 */
int umdev_dev_region_resize(struct umdev_dev *dev, uint32_t index,
                            uint64_t size);

/** Server-side pointer to a shared-memory region, or NULL. */
void *umdev_dev_region_mem(struct umdev_dev *dev, uint32_t index);

/**
 * umdev_dev_irq_add() - declare @count vectors for IRQ @index.
 * @flags: VFIO_IRQ_INFO_* as reported to the client (EVENTFD is implied;
 *   INTx is always MASKABLE|AUTOMASKED).
 */
int umdev_dev_irq_add(struct umdev_dev *dev, uint32_t index, uint32_t count,
                      uint32_t flags);

/**
 * umdev_dev_irq_trigger() - signal vector @sub of IRQ @index.
 * A masked vector is left pending and fires on unmask. While migration
 * has the device stopped (STOP, STOP_COPY, RESUMING, ERROR) the trigger
 * is held and fires once when it runs again (docs/PROTOCOL.md); a PCI
 * device's ERR and REQ, which tell the VMM, are never held. Safe from
 * any thread. Return: 0 (also when kept pending or held); -ENOENT no
 * eventfd set (counted as dropped); -EINVAL.
 */
int umdev_dev_irq_trigger(struct umdev_dev *dev, uint32_t index,
                          uint32_t sub);

/**
 * umdev_dev_intx_set_level() - level-triggered INTx. Raising the line
 * signals the eventfd and masks the vector (VFIO's automasked INTx); when
 * the client unmasks (the guest's EOI) and the line is still high, it
 * signals again. A stopped device's line is signalled when it runs again,
 * if still high.
 */
int umdev_dev_intx_set_level(struct umdev_dev *dev, bool level);

/* DMA: guest addresses reach host memory only through these. */

#define UMDEV_DMA_READ 1  /* the device reads guest memory */
#define UMDEV_DMA_WRITE 2 /* the device writes guest memory */

/*
 * A hold on mapped guest memory: it pins the whole mapping, which
 * DMA_UNMAP of it waits for, so keep it no longer than a bounded piece of
 * work.
 */
struct umdev_dma_hold {
    void *ptr;
    /* The mapping held: [span_iova, span_iova + span_len), contiguous in
     * the host around ptr, with the protection checked for the get. */
    uint64_t span_iova, span_len;
    void *map_; /* private */
};

/**
 * umdev_dma_get() - translate [@iova, @iova+@len) to a host pointer and
 * hold the mapping until umdev_dma_put().
 * @prot: UMDEV_DMA_READ and/or UMDEV_DMA_WRITE; checked against the
 *   client's DMA_MAP flags.
 *
 * While the client logs DMA writes, a hold taken with UMDEV_DMA_WRITE
 * marks [@iova, @iova+@len) dirty when it is taken, and a report clears
 * no page of a mapping while any hold on it is out, so a write made
 * through the pointer after a report is still in a later one
 * (docs/PROTOCOL.md "DMA dirty logging" says why taken, not released).
 * Writes elsewhere in the span need umdev_dma_mark().
 *
 * The range must lie inside one mapping that came with an fd.
 * Return: 0; -EFAULT unmapped or crossing a mapping edge; -EACCES wrong
 * protection; -ENOTSUP mapped without an fd (use umdev_dma_read/write).
 */
int umdev_dma_get(struct umdev_dev *dev, uint64_t iova, uint64_t len,
                  int prot, struct umdev_dma_hold *hold);
void umdev_dma_put(struct umdev_dev *dev, struct umdev_dma_hold *hold);

/**
 * umdev_dma_mark() - a device that keeps a write hold and writes through
 * it outside the range it was taken for (elsewhere in the span) reports
 * those writes here, before releasing the hold, so dirty logging sees
 * them. Costs one branch while the client does not log. Any thread.
 * Return: 0; -EFAULT outside the hold's span or no hold.
 */
int umdev_dma_mark(struct umdev_dev *dev, const struct umdev_dma_hold *hold,
                   uint64_t iova, uint64_t len);

/**
 * umdev_dma_read() / umdev_dma_write() - copy between guest and @buf, now.
 * The range may span adjacent mappings, all of which must have come with
 * an fd. Any thread. Return: 0 or -EFAULT / -EACCES; -ENOTSUP if part of
 * the range was mapped without an fd: only messages reach it, and the
 * server thread must not wait for the client's answer (the client may be
 * waiting for ours); use umdev_dma_read_async() / umdev_dma_write_async().
 */
int umdev_dma_read(struct umdev_dev *dev, uint64_t iova, void *buf,
                   size_t len);
int umdev_dma_write(struct umdev_dev *dev, uint64_t iova, const void *buf,
                    size_t len);

/*
 * Server DMA requests (DMA_READ/DMA_WRITE) the client has not answered yet,
 * per device, at most: requests, and bytes they move. Past either bound an
 * asynchronous copy that needs a message fails with -EBUSY (the device
 * retries later or reports the error; the client is not at fault).
 */
#define UMDEV_DMA_MAX_PENDING 32u
#define UMDEV_DMA_MAX_PENDING_BYTES (8u << 20)

/*
 * DMA logging's dirty bitmaps, per device, at most (one bit per 4 KiB of
 * mapped guest memory: 32 MiB covers 1 TiB). A DMA_LOGGING_START whose
 * mappings would need more, or a DMA_MAP while logging that would pass
 * it, is refused with E2BIG: the client chooses mapping sizes, and a
 * mapping without an fd costs nothing else.
 */
#define UMDEV_DMA_LOG_MAX_BITMAP_BYTES (32u << 20)

/**
 * umdev_dma_done_fn - an asynchronous copy finished.
 * @opaque: as given to umdev_dma_read_async() / umdev_dma_write_async().
 * @rc: 0; -EFAULT / -EACCES (a chunk's mapping is gone or lacks the
 *   protection); the client's error for a request (its errno, -EIO if it
 *   gave none); -EIO for a malformed answer; -ECONNRESET when the client
 *   detached first. After an error, part of the range may have been
 *   copied.
 *
 * Called on the server thread from umdev_dev_process() (or
 * umdev_dev_detach()); it may start another copy.
 */
typedef void umdev_dma_done_fn(void *opaque, int rc);

/**
 * umdev_dma_read_async() / umdev_dma_write_async() - copy between guest
 * memory and @buf without ever waiting for the client.
 *
 * Parts mapped with an fd are copied at once; a part mapped without one is
 * moved by DMA_READ/DMA_WRITE messages of at most the client's
 * max_data_xfer_size, one at a time, and the server keeps serving the
 * client's commands meanwhile (so a register the guest polls can answer
 * "busy": a device whose register reports a DMA's result reads busy until
 * @done runs, as real hardware would).
 * Server thread only.
 *
 * @buf: borrowed until @done runs or umdev_dma_cancel() returns; read
 *   lazily for a write (each message copies its chunk when it is sent).
 * @done, @opaque: called once if and only if the return is -EINPROGRESS.
 *
 * Return: 0 when the whole copy is done already, @len 0 included (@done
 * is not called); -EINPROGRESS when messages carry it (@done will be
 * called); otherwise an error before any message was sent (@done is not
 * called; parts mapped with an fd may have been copied): -EFAULT
 * (unmapped, or the range wraps), -EACCES, -EINVAL (@done NULL),
 * -ENOTCONN (no negotiated client), -EBUSY (UMDEV_DMA_MAX_PENDING or
 * UMDEV_DMA_MAX_PENDING_BYTES reached), -ENOMEM, or the send's error.
 */
int umdev_dma_read_async(struct umdev_dev *dev, uint64_t iova, void *buf,
                         size_t len, umdev_dma_done_fn *done, void *opaque);
int umdev_dma_write_async(struct umdev_dev *dev, uint64_t iova, const void *buf,
                          size_t len, umdev_dma_done_fn *done, void *opaque);

/**
 * umdev_dma_cancel() - forget every asynchronous copy started with
 * @opaque: their @done is not called and their buffers are no longer
 * touched once this returns (a device resetting itself, or freeing the
 * buffers). Requests already sent stay counted as pending until the
 * client answers them; the answers are dropped. Server thread only.
 * Return: how many copies were cancelled.
 */
size_t umdev_dma_cancel(struct umdev_dev *dev, void *opaque);

/*
 * What a device that needs guest memory mapped says, once per client, when
 * it meets guest memory the client mapped without an fd.
 */
#define UMDEV_DMA_NOT_SHARED_REASON                                            \
    "guest RAM is not shared with the server: start QEMU with a memory "       \
    "backend that has share=on (-object memory-backend-memfd,id=mem,"          \
    "size=SIZE,share=on -machine memory-backend=mem)"

/**
 * umdev_dev_set_needs_shared_memory() - declare that @dev works only on
 * guest memory it can map (rings it reads in place, umdev_dma_get()), not
 * through DMA_READ/DMA_WRITE messages. The client's fd-less DMA_MAPs are
 * still accepted (VMMs map ROMs that way even when RAM is shared), but the
 * first time the device reaches such memory (umdev_dma_get() or
 * umdev_dma_read/write() failing with -ENOTSUP) the framework logs
 * UMDEV_DMA_NOT_SHARED_REASON at LOG_ERR, once per client, and reports it
 * through umdev_dev_guest_memory_problem() (`umdevctl info`). The audit
 * lists the flag per type. Call before serving.
 */
void umdev_dev_set_needs_shared_memory(struct umdev_dev *dev, bool needs);
bool umdev_dev_needs_shared_memory(const struct umdev_dev *dev);

/**
 * umdev_dev_guest_memory_problem() - UMDEV_DMA_NOT_SHARED_REASON once a
 * device that needs shared guest memory met memory the client did not
 * share (kept after that client leaves, so an operator still finds it,
 * until the next one attaches), else NULL. Any thread.
 */
const char *umdev_dev_guest_memory_problem(struct umdev_dev *dev);

/** Server DMA requests sent and not answered yet (tests, tools). */
size_t umdev_dma_pending(struct umdev_dev *dev);

/* Serving. */

/**
 * umdev_dev_attach() - take a connected client socket.
 * @fd: taken over. Return: -EBUSY if a client is attached already.
 */
int umdev_dev_attach(struct umdev_dev *dev, int fd);

/** True if a client is attached. */
bool umdev_dev_attached(const struct umdev_dev *dev);

/** The attached client's socket (for polling), or -1. */
int umdev_dev_client_fd(const struct umdev_dev *dev);

/**
 * umdev_dev_process() - send replies still queued, then handle every
 * complete message from the client, without blocking. Replies the socket
 * does not take are queued; while any are, no message is handled (a
 * client that stops reading is not read from): wait until the client fd
 * is ready for umdev_dev_events() and call again. Bad messages get error
 * replies; a bad stream, a closed peer, or more queued output than the
 * limit (docs/PROTOCOL.md) detaches the client.
 * Return: 0 while attached, -ECONNRESET once detached.
 */
int umdev_dev_process(struct umdev_dev *dev);

/**
 * umdev_dev_events() - what to wait for on the client fd before the next
 * umdev_dev_process(): UMDEV_LOOP_IN, or UMDEV_LOOP_OUT while replies wait
 * for room in the socket; 0 when detached.
 */
uint32_t umdev_dev_events(const struct umdev_dev *dev);

/** Detach the client: DMA unmapped, IRQ eventfds closed, state kept. */
void umdev_dev_detach(struct umdev_dev *dev);

/** Send the REQ IRQ to the client (device removal request). */
int umdev_dev_request_release(struct umdev_dev *dev);

/* Introspection for tools (umdevctl info, audits). */
struct umdev_dev_region_info {
    bool present;
    uint64_t size;
    uint32_t flags;   /* UMDEV_REGION_F_* */
    bool shm;         /* shared-memory backed (client may mmap) */
    size_t nr_areas;  /* mmappable areas */
    /* Those areas; borrowed from @dev, valid while the region exists. */
    const struct umdev_mmap_area *areas;
    bool trapped;     /* has an access callback */
};
/** Return: 0, or -EINVAL for an index >= UMDEV_MAX_REGIONS. */
int umdev_dev_region_info(struct umdev_dev *dev, uint32_t index,
                          struct umdev_dev_region_info *out);
/**
 * umdev_dev_region_shm_fd() - the memfd behind shared-memory region
 * @index, borrowed (valid while @dev exists; dup it to keep it), for a
 * reader of that memory other than the client (a screenshot).
 * Return: the fd, or -ENOENT when the region is absent or not shared
 * memory.
 */
int umdev_dev_region_shm_fd(const struct umdev_dev *dev, uint32_t index);
uint32_t umdev_dev_num_regions(const struct umdev_dev *dev);
uint32_t umdev_dev_num_irqs(const struct umdev_dev *dev);
/** Vectors declared for IRQ @index (0 if none). */
uint32_t umdev_dev_irq_count(struct umdev_dev *dev, uint32_t index);

/* Counters for tools and tests. */
struct umdev_dev_stats {
    uint64_t msgs;          /* commands handled */
    uint64_t errors;        /* error replies sent */
    uint64_t region_reads, region_writes;
    uint64_t dma_bytes;     /* bytes the device moved through the DMA API */
    uint64_t irqs;          /* eventfd signals */
    uint64_t irqs_dropped;  /* triggers with no eventfd */
    uint64_t attaches;
};
void umdev_dev_get_stats(struct umdev_dev *dev, struct umdev_dev_stats *out);

/**
 * umdev_server - a listening socket serving one device on a loop, one
 * client at a time: a client that connects while another is attached gets
 * an EBUSY error reply to its first message (VERSION) and is closed, and
 * the log names the pid holding the device. The attached client's
 * messages are handled at most UMDEV_SERVER_MSGS_PER_WAKE per wake-up, so
 * devices sharing a loop take turns; replies its socket does not take
 * wait in memory (bounded, docs/PROTOCOL.md) while the loop serves the
 * others, and the client is not read from meanwhile.
 */
struct umdev_server;

/* Messages one wake-up handles from one client at most. */
#define UMDEV_SERVER_MSGS_PER_WAKE 64

/**
 * umdev_server_create() - bind @path (removing a stale socket) and serve
 * @dev on @loop. @dev and @loop are borrowed. The socket is created with
 * mode 0600, and @path appears only once it listens (umdev_listen_unix()):
 * a client that sees the file can connect.
 */
int umdev_server_create(struct umdev_dev *dev, struct umdev_loop *loop,
                        const char *path, struct umdev_server **out);
/** Like umdev_server_create() with an already listening socket (taken). */
int umdev_server_create_fd(struct umdev_dev *dev, struct umdev_loop *loop,
                           int listen_fd, struct umdev_server **out);
/* Unlinks the socket path it created. */
void umdev_server_destroy(struct umdev_server *srv);

/**
 * umdev_server_manage() - umdev_dev_manage() @fd, served on the server's
 * loop until it closes. Return: as umdev_dev_manage(), or the loop's
 * error.
 */
int umdev_server_manage(struct umdev_server *srv, int fd);

/*
 * Handover (docs/PROTOCOL.md "Handover"): a running server gives its live
 * client connection and everything tied to it to another process, which
 * goes on serving the same connection; the client never notices but for
 * the pause. The old process quiesces the device (as migration's STOP),
 * saves its state through the migration hooks and packs, with the
 * connection's negotiated state, its unparsed input and queued output,
 * the DMA map table and every interrupt's eventfds and bits, a *package*:
 * a versioned byte blob and the descriptors it refers to. The new process
 * restores it on a freshly created device of the same type and
 * configuration; until it confirms, the old process keeps everything and
 * can resume (umdev_server_handover_abort()).
 *
 * The order (the daemon's part, docs/PROTOCOL.md):
 *   old: umdev_server_handover_save() -> send the package
 *   new: receive it -> umdev_server_handover_restore() -> confirm
 *   old: on the confirmation umdev_server_handover_commit(), then destroy
 *        the device; on a refusal, a crash or a timeout of the new
 *        process, umdev_server_handover_abort() and serve on.
 */
struct umdev_handover;

/* A package's blob at most (the device state is UMDEV_MIG_MAX_STATE at
 * most; the rest is bounded by the connection's limits). */
#define UMDEV_HANDOVER_MAX_BYTES (80u << 20)
/* A package's descriptors at most (DMA mappings, interrupt eventfds). */
#define UMDEV_HANDOVER_MAX_FDS 8192u

/*
 * Host endpoints a device owns itself, outside the vfio-user connection
 * (a serial port's listening socket and the peer connected to it, a pty
 * master), carried by a handover beside the client (docs/PROTOCOL.md
 * "Handover", record HOST) so that the host programs using them never
 * notice either. The device names each with a kind, which the new
 * process checks on the descriptor, and a tag of its own choosing
 * (which port, which role), which lib/dev only keeps unique per kind.
 */
enum umdev_host_end_kind {
    UMDEV_HOST_END_LISTENER = 1, /* a listening AF_UNIX stream socket */
    UMDEV_HOST_END_STREAM = 2,   /* a connected AF_UNIX stream socket */
    UMDEV_HOST_END_PTY = 3,      /* a pseudo-terminal's master */
};

/* Host endpoints one device hands over at most. */
#define UMDEV_HANDOVER_MAX_HOST_ENDS 64u

struct umdev_host_end {
    uint32_t kind; /* enum umdev_host_end_kind */
    uint32_t tag;  /* the device's */
    int fd;
};

/*
 * A device's part in handing its host endpoints over. Each callback
 * gets the opaque given to umdev_dev_set_host_end_ops(); all run on the
 * server thread with the device stopped (migration's STOP contract), so
 * nothing reads or writes the endpoints meanwhile.
 */
struct umdev_host_end_ops {
    /*
     * Old process, in umdev_server_handover_save() after the state was
     * saved: list the endpoints, at most @max into @out (the fds stay
     * the device's; the package gets duplicates). Return: how many, or
     * a negative errno that refuses the handover (the device resumes).
     */
    int (*save)(void *opaque, struct umdev_host_end *out, size_t max);
    /*
     * New process, in umdev_server_handover_restore(), once the device
     * is stopped and before its state loads (a peer's presence is part
     * of what the state is checked against): take @ends (@n of them,
     * perhaps 0; each fd a duplicate, already checked to be of its
     * kind). Set the fd of each one taken to -1; lib/dev closes the
     * rest. Return: 0, or a negative errno (they do not fit this
     * device's configuration: say why through the log) that refuses the
     * package; the device then holds none of them.
     */
    int (*restore)(void *opaque, struct umdev_host_end *ends, size_t n);
    /*
     * Let go of every endpoint without a word to its peer: close the
     * descriptors, never shut a socket down or unlink a path (another
     * process serves them now). In the old process at
     * umdev_server_handover_commit(); in the new one when a restore
     * fails after restore() took them.
     */
    void (*release)(void *opaque);
};

/**
 * umdev_dev_set_host_end_ops() - have handovers of @dev carry its host
 * endpoints (@ops borrowed, all three callbacks set; @opaque passed to
 * them). A device without them hands over no host endpoint and refuses a
 * package that carries some. Call before serving.
 * Return: 0; -EINVAL a callback missing; -EBUSY a client is attached.
 */
int umdev_dev_set_host_end_ops(struct umdev_dev *dev,
                               const struct umdev_host_end_ops *ops,
                               void *opaque);

/**
 * umdev_dev_saving_handover() - whether @dev's migration save hook runs
 * for a handover (umdev_server_handover_save()) rather than a migration.
 * Then the host endpoints go along with the state, so a device need not
 * take in what its host peers sent: it waits in their sockets for the
 * new process.
 */
bool umdev_dev_saving_handover(const struct umdev_dev *dev);

/**
 * umdev_server_handover_save() - quiesce @srv's device and pack what a
 * new process needs to go on serving its socket and client.
 *
 * From a successful return on, the device is stopped (STOP's contract:
 * no guest memory written, no interrupt raised; interrupts it owes are
 * in the package), the loop no longer watches the listening socket, the
 * client or its resample eventfds (what the client sends waits in the
 * socket), and @srv must not be used but with _commit() or _abort().
 * Server thread.
 *
 * Return: 0 with *@out (the caller frees it; the fds in it are
 * duplicates); -ENOTSUP the device has no migration hooks; -EBUSY a
 * migration is under way (state not RUNNING), a migration manager is
 * attached, or the client runs DMA logging (its dirty bitmaps, the
 * migration's, are not carried: finish or cancel the migration first);
 * -EAGAIN transient (server DMA requests await the client's answers, or
 * the connection is mid-way through skipping an oversized message): serve
 * and retry; -EALREADY a handover is in progress; -EBADF a DMA mapping
 * kept no descriptor; the stop, save or host-end save hook's error
 * (-EINVAL for a host-end list it could not take); -ENOMEM/-EMFILE.
 * Each refusal is logged with its reason; on every error the device and
 * server go on as before.
 */
int umdev_server_handover_save(struct umdev_server *srv,
                               struct umdev_handover **out);

/**
 * umdev_server_handover_abort() - the new process failed or refused: run
 * the device again (held interrupts delivered, the resume hook) and serve
 * the client from where it stopped, messages sent meanwhile included.
 * Return: 0; -EINVAL no handover in progress; the loop's error (the
 * server is then unusable: destroy it).
 */
int umdev_server_handover_abort(struct umdev_server *srv);

/**
 * umdev_server_handover_commit() - the new process serves now: drop this
 * process's share (closes our descriptors without a word to the client,
 * unlinks no socket path; the device's host endpoints go the same way,
 * through its release hook) and free @srv. The device stays stopped and
 * without a client; destroy it. Nothing is written to the client.
 */
void umdev_server_handover_commit(struct umdev_server *srv);

/**
 * umdev_server_handover_restore() - in the new process: rebuild the
 * server from @pkg around @dev, created just before with the same type
 * and configuration and never served, on @loop.
 *
 * The whole package is checked (format, version, every record, each
 * descriptor's kind, the device type, configuration, IRQ layout and
 * limits) before anything is applied, and the device's load hook runs
 * before the device is given to the loop; on any error nothing is left
 * applied (@dev as created) and the client's socket is left untouched,
 * so the old process can resume. @pkg stays the caller's (descriptors
 * kept are duplicated). The restored server owns no socket path (its
 * creator keeps it).
 *
 * Return: 0 with *@out serving; -EINVAL malformed or for another device
 * (type, configuration, IRQ layout, limits), or host endpoints for a
 * device without umdev_dev_set_host_end_ops(), logged with the reason;
 * -ENOTSUP a format version newer than this library's, or @dev has no
 * migration hooks; -EBUSY @dev was served already; -EBADF a descriptor of
 * the wrong kind; the host-end restore hook's or the load hook's error;
 * -ENOMEM/-EMFILE.
 */
int umdev_server_handover_restore(struct umdev_dev *dev,
                                  struct umdev_loop *loop,
                                  const struct umdev_handover *pkg,
                                  struct umdev_server **out);

/**
 * umdev_handover_wrap() - a package from a blob (copied) and descriptors
 * (taken: each slot set to -1, also on error, where they are closed).
 * Only the sizes are checked here; _restore() checks the rest.
 * Return: 0; -E2BIG past UMDEV_HANDOVER_MAX_BYTES / _MAX_FDS; -ENOMEM.
 */
int umdev_handover_wrap(const void *blob, size_t len, int *fds, size_t nfds,
                        struct umdev_handover **out);
/** The blob (borrowed from @h). */
const void *umdev_handover_blob(const struct umdev_handover *h, size_t *len);
/** The descriptors (borrowed from @h, which closes them when freed). */
const int *umdev_handover_fds(const struct umdev_handover *h, size_t *nfds);
/** Close the descriptors, free. NULL is ok. */
void umdev_handover_free(struct umdev_handover *h);

/**
 * umdev_handover_send() - write @h to @sock, a connected UNIX stream
 * socket, as one frame (docs/PROTOCOL.md "Handover transport"): the
 * descriptors go in chunks of UMDEV_HANDOVER_FDS_PER_MSG, each with its
 * own message, then the blob. Waits up to @timeout_ms in all (-1: no
 * bound). Return: 0; -ETIMEDOUT; the socket's -errno (-ECONNRESET when
 * the peer is gone).
 */
#define UMDEV_HANDOVER_FDS_PER_MSG 250u
int umdev_handover_send(int sock, const struct umdev_handover *h,
                        int timeout_ms);
/**
 * umdev_handover_recv() - read one frame umdev_handover_send() wrote.
 * Strict: a bad magic or version, sizes past the limits, a chunk with a
 * descriptor count other than announced (or truncated control data) are
 * refused, every descriptor received so far closed.
 * Return: 0 with *@out; -EPROTO malformed (also when this process had no
 * descriptors left for them: the kernel cuts them off); -E2BIG; -ETIMEDOUT;
 * -ECONNRESET the peer closed early; -ENOMEM; the socket's -errno.
 */
int umdev_handover_recv(int sock, int timeout_ms, struct umdev_handover **out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_DEV_H */
