/*
 * A vfio-user client: connect to a device socket, negotiate, inspect and
 * drive the device. Tools, tests, benchmarks and host applications use it.
 * One thread per client handle. While a request waits for its reply the
 * client services the server's DMA_READ/DMA_WRITE from the memory the
 * caller registered with umdev_client_dma_map().
 */
#ifndef UMDEV_CLIENT_H
#define UMDEV_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "umdev/umdev.h"
#include "umdev/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct umdev_client;

struct umdev_client_opts {
    const struct umdev_logger *log; /* borrowed; NULL: stderr */
    int timeout_ms;                 /* per request; 0: 5000 */
    /* What we advertise; 0 takes the defaults (16 fds, 1 MiB). */
    uint32_t max_msg_fds;
    uint32_t max_data_xfer_size;
    /* Raw JSON to send instead of ours (tests of negotiation). */
    const char *version_json;
    /* Propose umdev's pre-copy sizes extension (docs/PROTOCOL.md). */
    bool precopy_info;
};

/* What the server said in VERSION. */
struct umdev_client_caps {
    uint16_t major, minor;
    uint32_t max_msg_fds;
    uint32_t max_data_xfer_size;
    uint64_t pgsizes;
    uint32_t max_dma_maps;
    bool write_multiple;
    bool migration;
    bool precopy_info; /* the server agreed to the extension */
    char json[UMDEV_WIRE_MAX_VERSION_JSON];
};

/**
 * umdev_client_connect() - connect to @path and negotiate the version.
 * Return: 0; -ENOENT/-ECONNREFUSED from connect; -EPROTO on a reply that
 * breaks the spec (major not 0, minor above ours, JSON not terminated).
 */
int umdev_client_connect(const char *path,
                         const struct umdev_client_opts *opts,
                         struct umdev_client **out);
/** Like connect but over an already connected socket (taken). */
int umdev_client_attach_fd(int fd, const struct umdev_client_opts *opts,
                           struct umdev_client **out);
/** Unmaps mmapped areas and DMA memory records, closes the socket. */
void umdev_client_destroy(struct umdev_client *c);

const struct umdev_client_caps *umdev_client_caps(
    const struct umdev_client *c);
int umdev_client_fd(const struct umdev_client *c);

struct umdev_client_device_info {
    uint32_t flags;
    uint32_t num_regions;
    uint32_t num_irqs;
};
int umdev_client_device_info(struct umdev_client *c,
                             struct umdev_client_device_info *out);

struct umdev_client_region {
    uint32_t index;
    uint32_t flags; /* VFIO_REGION_INFO_FLAG_* */
    uint64_t size;
    uint64_t offset; /* mmap offset base */
    int fd;          /* owned by the client handle; -1 if none */
    size_t nr_areas; /* sparse areas; one area = whole region when no cap */
    struct vfio_user_sparse_area areas[UMDEV_WIRE_MAX_SPARSE_AREAS];
    bool has_type;
    uint32_t type, subtype;
};
/** Query region @index (the result is cached; the fd stays owned by @c). */
int umdev_client_region_info(struct umdev_client *c, uint32_t index,
                             struct umdev_client_region *out);

int umdev_client_region_read(struct umdev_client *c, uint32_t index,
                             uint64_t offset, void *buf, size_t len);
int umdev_client_region_write(struct umdev_client *c, uint32_t index,
                              uint64_t offset, const void *buf, size_t len);
/** A posted write (No_reply flag): returns once sent. */
int umdev_client_region_write_posted(struct umdev_client *c, uint32_t index,
                                     uint64_t offset, const void *buf,
                                     size_t len);

/**
 * umdev_client_pci_cap_find() - walk the device's PCI capability chain
 * over config-space reads: the capability with ID @id (PCI_CAP_ID_*; 0:
 * any) after the one at @after (0: from the start).
 * Return: its config offset; 0 none; -ELOOP a broken chain (a pointer
 * below 0x40, or a loop); a transport or server error.
 */
int umdev_client_pci_cap_find(struct umdev_client *c, uint8_t id,
                              unsigned int after);

/**
 * umdev_client_region_mmap() - map sparse area @area of region @index.
 * Return: 0 with *@ptr set (unmapped by destroy); -ENODEV not mmappable.
 */
int umdev_client_region_mmap(struct umdev_client *c, uint32_t index,
                             size_t area, void **ptr, size_t *len);

struct umdev_client_irq_info {
    uint32_t flags; /* VFIO_IRQ_INFO_* */
    uint32_t count;
};
int umdev_client_irq_info(struct umdev_client *c, uint32_t index,
                          struct umdev_client_irq_info *out);

/**
 * umdev_client_set_irqs() - VFIO_USER_DEVICE_SET_IRQS.
 * @flags: VFIO_IRQ_SET_DATA_* | VFIO_IRQ_SET_ACTION_*.
 * @fds: with DATA_EVENTFD, @count eventfds (-1 entries are not allowed by
 *   the wire format: pass @fds NULL to de-assign); not taken.
 * @bools: with DATA_BOOL, @count bytes.
 */
int umdev_client_set_irqs(struct umdev_client *c, uint32_t index,
                          uint32_t flags, uint32_t start, uint32_t count,
                          const int *fds, const uint8_t *bools);

/**
 * umdev_client_dma_map() - tell the server about guest memory.
 * @host: our own view of the memory (used to service DMA_READ/WRITE);
 *   borrowed, must stay valid until unmapped.
 * @fd: sent to the server so it can mmap it, or -1 to force the message
 *   fallback. Not taken.
 * @fd_offset: offset of @iova inside @fd.
 * @prot: VFIO_USER_DMA_MAP_FLAG_READ | _WRITE.
 */
int umdev_client_dma_map(struct umdev_client *c, uint64_t iova,
                         uint64_t size, void *host, int fd,
                         uint64_t fd_offset, uint32_t prot);
int umdev_client_dma_unmap(struct umdev_client *c, uint64_t iova,
                           uint64_t size);
int umdev_client_dma_unmap_all(struct umdev_client *c);

int umdev_client_reset(struct umdev_client *c);

/*
 * Migration, the VMM's half (docs/PROTOCOL.md "Migration"). States are
 * VFIO_USER_DEVICE_STATE_* and flags VFIO_USER_MIGRATION_* (umdev/wire.h).
 * Each returns 0 or the server's errno (-ENOTSUP: no migration).
 */
/** DEVICE_FEATURE GET MIGRATION: the states the device offers. */
int umdev_client_mig_flags(struct umdev_client *c, uint64_t *flags);
/** GET MIG_DEVICE_STATE. */
int umdev_client_mig_state(struct umdev_client *c, uint32_t *state);
/** SET MIG_DEVICE_STATE to @state; @now (may be NULL) the state after. */
int umdev_client_mig_set_state(struct umdev_client *c, uint32_t state,
                               uint32_t *now);
/**
 * umdev_client_mig_read() - MIG_DATA_READ up to @len stream bytes, in as
 * many messages as the limits need. Return: the bytes read; fewer than
 * @len means the stream has no more for now (all of it in STOP_COPY).
 */
ssize_t umdev_client_mig_read(struct umdev_client *c, void *buf, size_t len);
/** MIG_DATA_WRITE all of @buf, split at the server's limit. */
int umdev_client_mig_write(struct umdev_client *c, const void *buf, size_t len);
/**
 * umdev_client_dma_log_start() - DMA_LOGGING_START over @n ranges (0: all
 * of guest memory) at @page_size, a hint; *@chosen (may be NULL) the page
 * size the server tracks at.
 */
int umdev_client_dma_log_start(struct umdev_client *c, uint64_t page_size,
                               const struct vfio_user_dma_logging_range *r,
                               uint32_t n, uint64_t *chosen);
int umdev_client_dma_log_stop(struct umdev_client *c);
/**
 * umdev_client_dma_log_report() - the pages of [@iova, @iova+@length) the
 * device wrote since the last report, one bit per @page_size, ORed into
 * @bitmap (umdev_wire_log_bitmap_size() bytes, uint64_t words; the
 * server's bits are cleared). Return: 0; -E2BIG for a bitmap over one
 * message (report a smaller range); the server's errno.
 */
int umdev_client_dma_log_report(struct umdev_client *c, uint64_t iova,
                                uint64_t length, uint64_t page_size,
                                uint64_t *bitmap);
/** The pre-copy sizes extension; -ENOTSUP unless both sides agreed. */
int umdev_client_precopy_info(struct umdev_client *c,
                              struct umdev_wire_precopy_info *out);

/*
 * The migration driver (docs/PROTOCOL.md "Migration driver"): what a
 * VMM's migration code does with the device, between two connections
 * (clients or managers, umdev_dev_manage()).
 */
struct umdev_migrate_hooks {
    /* Before the source stops (after pre-copy): the VMM pauses whatever
     * touches the device (its vCPUs). A negative errno aborts; the
     * source runs on. */
    int (*stop)(void *opaque);
    /* The destination has loaded the state and is stopped: the VMM
     * attaches to it now (memory, interrupts, no register access). A
     * negative errno aborts; the source runs again. */
    int (*attach)(void *opaque);
    void *opaque;
};

struct umdev_migrate_stats {
    uint64_t precopy_bytes; /* stream sent while the source ran */
    uint64_t state_bytes;   /* stream sent after it stopped */
    uint64_t transfer_ns;   /* STOP_COPY asked .. destination loaded */
    uint64_t blackout_ns;   /* STOP_COPY asked .. destination RUNNING */
};

/**
 * umdev_client_migrate() - move the device behind @src to @dst: @dst to
 * RESUMING; @src through PRE_COPY (when offered) and STOP_COPY, its stream
 * written to @dst; @dst to STOP (the load) and, after the attach hook, to
 * RUNNING; @src left in STOP. On failure @src runs again (when it was
 * stopped) and @dst is left for the caller to discard; @err says which
 * step failed and why. Return: 0 or a negative errno.
 */
int umdev_client_migrate(struct umdev_client *src, struct umdev_client *dst,
                         const struct umdev_migrate_hooks *hooks,
                         struct umdev_migrate_stats *st, char *err,
                         size_t errlen);

/**
 * umdev_client_poll() - service server requests (DMA_READ/WRITE) that
 * arrive while no request of ours is pending, for up to @timeout_ms.
 * Return: number serviced, or -errno (-ECONNRESET when the server left).
 */
int umdev_client_poll(struct umdev_client *c, int timeout_ms);

/* Counters. */
struct umdev_client_stats {
    uint64_t requests;
    uint64_t dma_reads, dma_writes; /* server requests serviced */
};
void umdev_client_get_stats(const struct umdev_client *c,
                            struct umdev_client_stats *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_CLIENT_H */
