/*
 * The device object device authors build on: regions, IRQs, the DMA map
 * table, reset, and the vfio-user server that dispatches a client's
 * commands to them. One device serves one client at a time (the spec's
 * one-client-per-socket model); a new client may attach after the previous
 * one detaches, and then finds the device state retained but DMA mappings
 * and IRQ eventfds gone (spec "Client Disconnection").
 *
 * Threading: the device and its server run on one thread (the one calling
 * umdev_dev_process() / the loop). The DMA API (umdev_dma_*) may also be
 * called from device worker threads; umdev_dev_irq_trigger() too.
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
};

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
 * A masked vector is left pending and fires on unmask. Safe from any
 * thread. Return: 0; -ENOENT no eventfd set (counted as dropped); -EINVAL.
 */
int umdev_dev_irq_trigger(struct umdev_dev *dev, uint32_t index,
                          uint32_t sub);

/**
 * umdev_dev_intx_set_level() - level-triggered INTx. Raising the line
 * signals the eventfd and masks the vector (VFIO's automasked INTx); when
 * the client unmasks (the guest's EOI) and the line is still high, it
 * signals again.
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
 * The range must lie inside one mapping that came with an fd.
 * Return: 0; -EFAULT unmapped or crossing a mapping edge; -EACCES wrong
 * protection; -ENOTSUP mapped without an fd (use umdev_dma_read/write).
 */
int umdev_dma_get(struct umdev_dev *dev, uint64_t iova, uint64_t len,
                  int prot, struct umdev_dma_hold *hold);
void umdev_dma_put(struct umdev_dev *dev, struct umdev_dma_hold *hold);

/**
 * umdev_dma_read() / umdev_dma_write() - copy between guest and @buf.
 * The range may span adjacent mappings. For mappings without an fd the
 * copy goes over the socket as DMA_READ/DMA_WRITE messages (server thread
 * only). Return: 0 or -EFAULT / -EACCES / a transport error.
 */
int umdev_dma_read(struct umdev_dev *dev, uint64_t iova, void *buf,
                   size_t len);
int umdev_dma_write(struct umdev_dev *dev, uint64_t iova, const void *buf,
                    size_t len);

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
 * umdev_dev_process() - handle every complete message from the client
 * without blocking. Bad messages get error replies; a bad stream or a
 * closed peer detaches the client.
 * Return: 0 while attached, -ECONNRESET once detached.
 */
int umdev_dev_process(struct umdev_dev *dev);

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
 * umdev_server - a listening socket serving one device on a loop: accepts
 * one client at a time (others wait in the backlog until it detaches).
 */
struct umdev_server;

/**
 * umdev_server_create() - bind @path (removing a stale socket) and serve
 * @dev on @loop. @dev and @loop are borrowed. The socket is created with
 * mode 0600.
 */
int umdev_server_create(struct umdev_dev *dev, struct umdev_loop *loop,
                        const char *path, struct umdev_server **out);
/** Like umdev_server_create() with an already listening socket (taken). */
int umdev_server_create_fd(struct umdev_dev *dev, struct umdev_loop *loop,
                           int listen_fd, struct umdev_server **out);
/* Unlinks the socket path it created. */
void umdev_server_destroy(struct umdev_server *srv);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_DEV_H */
