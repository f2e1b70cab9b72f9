/*
 * The nvme PCI subdevice (README.md): one NVMe controller with one
 * namespace on a storage backend, served through lib/dev and lib/pci,
 * with a poller thread per controller that fetches commands from the
 * guest's submission queues, runs them and posts completions.
 *
 * Threading: create, destroy and everything lib/dev calls (BAR0 accesses,
 * reset, detach, the migration hooks) run on the serving thread; the
 * poller runs the queues.
 */
#ifndef UMDEV_NVME_H
#define UMDEV_NVME_H

#include <stdbool.h>
#include <stdint.h>

#include "nvme_be.h"
#include "umdev/dev.h"
#include "umdev/pci.h"
#include "umdev/umdev.h"

/* PCI identity (README.md "PCI"). */
#define NVME_VENDOR_ID 0x1234
#define NVME_DEVICE_ID 0x11ed
#define NVME_SUBSYS_VENDOR_ID NVME_VENDOR_ID
#define NVME_REVISION 1
#define NVME_CLASS 0x010802 /* mass storage, NVM, NVM Express */
#define NVME_FW_REV "1.0"   /* Identify FR, firmware slot 1 */

/* BAR0 layout. */
#define NVME_BAR0_SIZE 0x4000u
#define NVME_MSIX_TABLE 0x2000u
#define NVME_MSIX_PBA 0x3000u

/* Limits. */
#define NVME_MAX_IO_QUEUES 8u
#define NVME_MAX_QUEUES (NVME_MAX_IO_QUEUES + 1u)
#define NVME_MQES 1023u      /* CAP.MQES: 1024 entries per queue */
#define NVME_PAGE_SIZE 4096u /* CAP.MPSMIN = MPSMAX */
#define NVME_MDTS 8u         /* 2^8 pages: 1 MiB per command */
#define NVME_MAX_XFER (NVME_PAGE_SIZE << NVME_MDTS)
#define NVME_LBA_SHIFT 9u /* 512-byte logical blocks */
#define NVME_ACL 3u       /* Abort Command Limit, 0-based */
#define NVME_AERL 3u      /* Async Event Request Limit, 0-based */
#define NVME_ERROR_LOG_ENTRIES 64u
/* The poller's window (how long idle queues are polled before it sleeps)
 * adapts between these: see "Doorbells and the poller" in README.md. */
#define NVME_DEFAULT_POLL_US 200u
#define NVME_DEFAULT_POLL_MAX_US 8000u
#define NVME_POLL_MAX_LIMIT_US 100000u /* attribute poll_max_us's bound */
/* Migration's stop() waits this long at most for the I/O the backend has
 * in flight to complete before it refuses the arc (README "Migration"). */
#define NVME_MIG_STOP_TIMEOUT_MS 5000u
/* The migration state format (README "Migration"). */
#define NVME_MIG_VERSION 1u

struct nvme_ctrl;

struct nvme_ctrl_config {
    const char *name;               /* for logs; copied */
    const char *type;               /* e.g. "nvme-4q", for the profile */
    const struct umdev_logger *log; /* borrowed, outlives the controller */
    unsigned int nr_io_queues;      /* 1..NVME_MAX_IO_QUEUES */
    uint64_t size;                  /* namespace bytes, LBA multiple, > 0 */
    uint8_t uuid[16];               /* the instance's: serial, NGUID... */
    struct nvme_be *be;             /* taken, also on failure */
    unsigned int poll_us;           /* 0: NVME_DEFAULT_POLL_US */
    unsigned int poll_max_us;       /* 0: NVME_DEFAULT_POLL_MAX_US; <= poll_us:
                                       a fixed window of poll_us */
    /* Migration's stop() waits this long for the backend at most; 0:
     * NVME_MIG_STOP_TIMEOUT_MS. */
    unsigned int mig_stop_timeout_ms;
    /* No poller thread: the embedder runs the queues with
     * nvme_ctrl_poll() on its own thread, so what happens is fixed by
     * the order of its calls (fuzz/nvme_bar.c). */
    bool manual;
};

/**
 * nvme_ctrl_create() - build the device and start its poller.
 * Return: 0 or -errno (-EINVAL for a bad configuration).
 */
int nvme_ctrl_create(const struct nvme_ctrl_config *cfg,
                     struct nvme_ctrl **out);
/** Stop the poller, drain the backend, destroy the device. NULL is ok. */
void nvme_ctrl_destroy(struct nvme_ctrl *c);

/**
 * nvme_ctrl_poll() - for a controller created with @cfg->manual: one
 * pass of the poller on the caller's thread (fetch, execute, reap, post,
 * interrupts), then EventIdx as the thread leaves it: one behind the
 * doorbells after work, at them when idle (as before it sleeps).
 * Return: commands fetched or completed in the pass.
 */
unsigned int nvme_ctrl_poll(struct nvme_ctrl *c);

/**
 * nvme_ctrl_rewind() - for harnesses that run one controller through many
 * independent runs (fuzz/nvme_bar.c), after a device reset with no client
 * attached: what a controller reset keeps, as the specification asks,
 * back to what nvme_ctrl_create() left: the Error Information and SMART
 * logs' contents and counters, the power-on time and the statistics.
 */
void nvme_ctrl_rewind(struct nvme_ctrl *c);

struct umdev_dev *nvme_ctrl_dev(struct nvme_ctrl *c);
struct umdev_pci *nvme_ctrl_pci(struct nvme_ctrl *c);

struct nvme_ctrl_stats {
    uint64_t commands;    /* completions posted, admin and I/O */
    uint64_t io_commands; /* I/O completions posted */
    uint64_t errors;      /* completions with a status other than 0 */
    uint64_t read_bytes, written_bytes;
    uint64_t doorbells;      /* MMIO doorbell writes */
    uint64_t sleeps;         /* poller asked for doorbells to sleep */
    uint64_t wakeups;        /* poller woken from sleep */
    uint64_t io_waits;       /* slept for the backend, doorbells not asked */
    uint64_t flushes;        /* Flush commands and shutdowns made durable */
    uint64_t poll_window_ns; /* the poller's current window */
    uint64_t poll_max_ns;    /* and the most it may grow to */
    uint64_t irqs;           /* interrupts raised */
    uint64_t resets;         /* controller resets (CC.EN 1 -> 0) */
    bool ready;              /* CSTS.RDY */
    bool fatal;              /* CSTS.CFS */
    bool shadow;             /* Doorbell Buffer Config in force */
    bool direct;             /* the backend uses O_DIRECT */
};
void nvme_ctrl_get_stats(struct nvme_ctrl *c, struct nvme_ctrl_stats *out);

#endif /* UMDEV_NVME_H */
