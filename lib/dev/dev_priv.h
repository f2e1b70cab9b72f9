/*
 * Private layout of struct umdev_dev and the helpers its files share.
 */
#ifndef UMDEV_DEV_PRIV_H
#define UMDEV_DEV_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "conn.h"
#include "umdev/dev.h"

#define DEV_MAX_IRQ_INDEX 8u
#define DEV_PAGE_SIZE 4096u

struct dev_region {
    bool present;
    uint64_t size;
    uint32_t flags; /* UMDEV_REGION_F_* */
    umdev_region_access_fn *access;
    void *opaque;
    int shm_fd; /* -1 if none */
    void *shm;
    struct umdev_mmap_area *areas; /* mmappable parts; NULL if none */
    size_t nr_areas;
};

struct dev_irq_vec {
    int efd;      /* trigger eventfd from the client, -1 if none */
    bool masked;
    bool pending; /* triggered while masked */
    bool held;    /* triggered while the device was stopped (irq_hold) */
};

struct dev_irq {
    uint32_t count;
    uint32_t flags; /* VFIO_IRQ_INFO_* */
    struct dev_irq_vec *vec;
    int *old; /* count slots: eventfds replaced, closed after the writes */
    int unmask_efd; /* INTx: the client's resample eventfd, -1 if none */
};

/* One DMA mapping from the client. Immutable after insertion except
 * holds/dying, so translation needs only the table's read lock. */
struct dma_map {
    uint64_t iova;
    uint64_t size;
    uint32_t prot;   /* VFIO_USER_DMA_MAP_FLAG_* */
    uint8_t *base;   /* host address of iova, NULL: no fd (messages) */
    void *mmap_addr; /* what to munmap */
    size_t mmap_len;
    /* The file it maps and the offset it was mapped at, kept so that a
     * handover can give the same memory to the next process; NULL if
     * mapped without an fd, or if no descriptor was left to keep (then a
     * handover is refused; the mapping works). */
    struct dma_file *file;
    uint64_t offset;
    /* Holds taken, plus DMA_MAP_DYING once unpublished and being
     * retired: then the put that drops the last hold wakes the retirer.
     * One word, so that put touches the map only in that one RMW. */
    atomic_uint holds;
    /* DMA logging: one bit per DEV_PAGE_SIZE page of the mapping, set by
     * device writes. Allocated when logging starts (or the map arrives
     * while it runs) and kept until the map is freed, so a writer that
     * saw logging on never touches freed memory. NULL: never logged. */
    _Atomic(uint64_t *) dirty;
    size_t dirty_bytes; /* its size, counted in the device's total */
};

#define DMA_MAP_DYING (1u << 31)

/* One descriptor per file the client's mappings come from (QEMU maps all
 * of a RAM block from one memfd), shared by those mappings. Server
 * thread only: maps are made and freed there. */
struct dma_file {
    int fd; /* our duplicate */
    dev_t dev;
    ino_t ino;
    unsigned int refs; /* mappings using it */
};

/* A table slot: the keys the binary search compares are kept inline, so a
 * lookup walks one array instead of loading a dma_map per step. */
struct dma_slot {
    uint64_t iova;
    uint64_t end; /* iova + size; never wraps (dev_dma_map checks) */
    struct dma_map *map;
};

struct dma_table {
    pthread_rwlock_t lock;
    pthread_mutex_t wait_lock;
    pthread_cond_t released;
    struct dma_slot *slots; /* sorted by iova, non-overlapping */
    size_t n, cap;
    uint32_t max;
};

/*
 * One asynchronous device copy that needs messages (umdev_dma_*_async()).
 * Exactly one DMA_READ/DMA_WRITE of it is in flight while it is on the
 * device's pending list; each answer moves it on to the next chunk.
 */
struct dma_req {
    struct dma_req *next;
    uint64_t iova;           /* next byte to move */
    uint8_t *buf;            /* borrowed from the device; NULL once cancelled */
    size_t left;             /* bytes not moved yet, this chunk included */
    bool write;              /* to guest memory (DMA_WRITE) */
    umdev_dma_done_fn *done; /* NULL once cancelled */
    void *opaque;
    uint16_t msg_id; /* of the request in flight */
    uint32_t chunk;  /* its count */
};

/* A growable byte buffer: the stream being saved or received. */
struct umdev_mig_buf {
    uint8_t *data;
    size_t len, cap;
    size_t pos; /* saving: bytes MIG_DATA_READ has returned */
};

struct dev_mig {
    uint32_t state;           /* VFIO_USER_DEVICE_STATE_* */
    struct umdev_mig_buf out; /* saving group: the stream */
    struct umdev_mig_buf in;  /* RESUMING: what the client wrote */
    bool in_checked;          /* header and configuration matched */
    int in_error;             /* a refused stream: every write fails */
};

struct umdev_dev {
    char *name;
    bool pci;
    const struct umdev_dev_ops *ops;
    void *opaque;
    const struct umdev_logger *log;
    uint32_t max_data_xfer_size;

    struct dev_region regions[UMDEV_MAX_REGIONS];
    uint32_t num_regions;

    pthread_mutex_t irq_lock; /* triggers may come from device threads */
    atomic_uint irq_inflight; /* eventfd writes under way (irq.c) */
    struct dev_irq irqs[DEV_MAX_IRQ_INDEX];
    uint32_t num_irqs;
    bool intx_level;
    /* Migration: the device is stopped (STOP, STOP_COPY, RESUMING,
     * ERROR), so triggers are held in their vectors until it runs. */
    bool irq_hold;

    struct dma_table dma;
    /* DMA logging (dma_log.c): on between DMA_LOGGING_START and _STOP;
     * the ranges the client asked for (0: everything). Writers read only
     * the flag, and the bitmaps of the maps they hold. */
    atomic_bool dma_logging;
    /* Bytes of the maps' dirty bitmaps (UMDEV_DMA_LOG_MAX_BITMAP_BYTES);
     * maps are freed by the thread that retires them. */
    _Atomic size_t log_bitmap_bytes;
    struct vfio_user_dma_logging_range *log_ranges;
    uint32_t log_nranges;
    /* Server DMA requests in flight, oldest first (server thread only). */
    struct dma_req *dma_pending, *dma_pending_tail;
    size_t dma_pending_n, dma_pending_bytes;

    struct dev_mig mig;
    bool precopy_info; /* the client negotiated the extension */

    struct conn *conn; /* the attached client, or NULL */
    bool negotiated;
    /* The migration manager (umdev_dev_manage()), or NULL: a second
     * connection limited to the migration commands, so that whoever moves
     * the device drives it while the VMM keeps the client connection. */
    struct conn *mgr;
    bool mgr_negotiated, mgr_precopy_info;
    struct umdev_loop *loop; /* set by the server; for resample fds */
    /* Host endpoints the device hands over itself
     * (umdev_dev_set_host_end_ops()), or NULL; @hend_taken between a
     * restore's restore() and its success or undo. */
    const struct umdev_host_end_ops *hend_ops;
    void *hend_opaque;
    bool hend_taken;
    /* STOP_COPY is a handover's (umdev_dev_saving_handover()). */
    bool saving_handover;

    struct umdev_dev_stats stats;
    _Atomic uint64_t irqs_raised, irqs_dropped, dma_bytes;

    struct dev_profile *profile; /* mediation profile, NULL if none */
    bool needs_shared_memory;
    /* The last client's guest memory turned out not to be shared (said
     * once per client; device threads set it, attach clears it). */
    atomic_bool unshared_seen;
};

/* profile.c */
struct dev_profile;
void dev_profile_free(struct dev_profile *p);
/* 0 if the profile allows the access (counted), else -EACCES (counted). */
int dev_profile_check(struct umdev_dev *dev, uint32_t index, uint64_t offset,
                      uint64_t count, bool is_write);

/* dma.c */
/* Reserves @max of the process's DMA mapping budget (-ENOSPC: *@left
 * were left); dev_dma_fini() returns it. */
int dev_dma_init(struct dma_table *t, uint32_t max, uint32_t *left);
void dev_dma_fini(struct umdev_dev *dev);
int dev_dma_map(struct umdev_dev *dev, const struct vfio_user_dma_map *m,
                int fd);
int dev_dma_unmap(struct umdev_dev *dev, uint64_t iova, uint64_t size);
void dev_dma_unmap_all(struct umdev_dev *dev);
/* A reply from the client: if it answers one of our DMA requests, consume
 * it (moving that copy on) and return true. */
bool dev_dma_reply(struct umdev_dev *dev, const struct conn_msg *m);
/* The client is gone (dev->conn already NULL): fail every pending copy
 * with -ECONNRESET. */
void dev_dma_fail_pending(struct umdev_dev *dev);

/* dma_log.c */
/* Bytes of a map's dirty bitmap. */
size_t dev_log_bitmap_bytes(uint64_t size);
/* Mark [iova, iova+len) of @m, which the caller holds, dirty. Call only
 * when dev->dma_logging reads true (dev_log_on()). */
void dev_log_mark(struct dma_map *m, uint64_t iova, uint64_t len);
/* The same, for a range reached by messages (looked up, server thread). */
void dev_log_mark_range(struct umdev_dev *dev, uint64_t iova, uint64_t len);
static inline bool
dev_log_on(struct umdev_dev *dev)
{
    return __builtin_expect(
        atomic_load_explicit(&dev->dma_logging, memory_order_acquire), 0);
}
int dev_log_start(struct umdev_dev *dev,
                  const struct vfio_user_dma_logging_control *c,
                  const struct umdev_wire_msg *w);
void dev_log_stop(struct umdev_dev *dev);
/* The report of [iova, iova+length) at page_size into @bitmap (zeroed,
 * umdev_wire_log_bitmap_size() bytes), clearing what it reports.
 * Return: 0; -EINVAL not logging or outside the logged ranges; -ENOENT
 * part of the range is not mapped. */
int dev_log_report(struct umdev_dev *dev,
                   const struct vfio_user_dma_logging_report *r,
                   uint64_t *bitmap);

/* irq.c */
int dev_irq_set(struct umdev_dev *dev, const struct vfio_user_irq_set *s,
                const uint8_t *bools, int *fds, size_t nfds);
void dev_irq_release_all(struct umdev_dev *dev);
void dev_irq_fini(struct umdev_dev *dev);
/* Migration (server thread): from now on hold every trigger; returns once
 * no signal decided before is still being written. */
void dev_irq_hold(struct umdev_dev *dev);
/* Stop holding and deliver each held vector once, a high INTx line
 * again; each vector's mask is honoured as a trigger's is. */
void dev_irq_release(struct umdev_dev *dev);
/* Stop holding and forget what was held (device reset). */
void dev_irq_drop_held(struct umdev_dev *dev);
/* Handover: install @fd (taken on success) as INTx's resample eventfd of a
 * device that has none, watched on dev->loop. */
int dev_irq_adopt_unmask(struct umdev_dev *dev, uint32_t index, int fd);
/* Handover: stop (@on false) or resume watching the resample eventfds, so
 * that an EOI the guest makes meanwhile stays in its eventfd for whichever
 * process serves next. */
int dev_irq_watch(struct umdev_dev *dev, bool on);

/* dev.c */
/**
 * dev_serve() - send queued output, then handle up to @budget messages,
 * none while output waits for the socket. @readable: the socket polled
 * readable. @sleep: the loop asks for a sleeping read (UMDEV_LOOP_SLEEP):
 * the first message is waited for in recvmsg(). *@more: the budget ran out
 * with messages already received (no wake-up will come for them: call
 * again soon).
 * Return: 0 while attached, -ECONNRESET once detached.
 */
int dev_serve(struct umdev_dev *dev, bool readable, bool sleep, size_t budget,
              bool *more);
/* dev_serve() for the manager's connection (never a sleeping read). */
int dev_serve_manager(struct umdev_dev *dev, bool readable, size_t budget,
                      bool *more);

/* mig.c: the DEVICE_FEATURE and MIG_DATA handlers' work; each returns 0
 * or a negative errno and changes nothing on an error unless it says. */
bool dev_mig_supported(const struct umdev_dev *dev);
bool dev_mig_precopy(const struct umdev_dev *dev);
uint64_t dev_mig_flags(const struct umdev_dev *dev);
/* Walk to @target through the kernel's arcs; on a failed step the state
 * is the last one reached (ERROR if a load failed). */
int dev_mig_set_state(struct umdev_dev *dev, uint32_t target);
/* Copy up to @size stream bytes to @out: the count, or -EINVAL outside
 * the saving group. */
ssize_t dev_mig_read(struct umdev_dev *dev, void *out, size_t size);
int dev_mig_write(struct umdev_dev *dev, const void *data, size_t len);
/* Would a whole stream load here (header, type, configuration, sections)?
 * Changes nothing. Return: 0, or why not (logged). */
int dev_mig_check_stream(struct umdev_dev *dev, const void *data, size_t len);
int dev_mig_precopy_info(struct umdev_dev *dev,
                         struct umdev_wire_precopy_info *out);
/* DEVICE_RESET: back to RUNNING, streams dropped. @stopped: the device
 * was stopped, so resume() is due after its reset. */
void dev_mig_reset(struct umdev_dev *dev, bool *stopped);
void dev_mig_fini(struct umdev_dev *dev);

/* handover.c (the server's part is in server.c) */
/* The checksum a blob's header carries (tests and the fuzz target mend
 * it after changing a blob). */
uint64_t dev_handover_sum(const void *blob, size_t len);
/* Would a handover be refused now? 0, or why (logged). */
int dev_handover_check(struct umdev_dev *dev);
/* Stop the device, save it and pack the package; on error the device
 * runs again as before. */
int dev_handover_save(struct umdev_dev *dev, int listen_fd,
                      struct umdev_handover **out);
/* Check @pkg whole, then apply it to a fresh @dev: maps, IRQs, the
 * connection (dev->conn, not yet on @loop), the loaded state; the device
 * is left stopped (dev_mig_set_state(RUNNING) lets it run) and
 * *@listen_fd is a duplicate of the listening socket. On error nothing
 * is left applied. */
int dev_handover_restore(struct umdev_dev *dev, struct umdev_loop *loop,
                         const struct umdev_handover *pkg, int *listen_fd);
/* Take back what dev_handover_restore() applied, or (in the old process,
 * after a commit) drop this process's share: the client's socket is
 * closed, never shut down. */
void dev_handover_undo(struct umdev_dev *dev);

/* dispatch.c */
/* A message from the client, or from the manager (@manager). */
void dev_handle_msg(struct umdev_dev *dev, struct conn_msg *m, bool manager);

#endif /* UMDEV_DEV_PRIV_H */
