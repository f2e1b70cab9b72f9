/*
 * Mediation profiles: what a device type emulates (traps) and what it
 * hands to the guest directly, declared once and enforced by the
 * framework. Every trapped register a guest may touch through the socket
 * is listed with its name, size, allowed access widths, direction and
 * purpose; an access the profile does not allow is refused with an error
 * reply and counted, whatever the device code would have done. Each
 * declared register counts its reads and writes. docs/CRITERIA.md says
 * what a profile must satisfy; `umdevctl audit` checks it (lib/audit,
 * which also gives the profile its JSON form).
 */
#ifndef UMDEV_PROFILE_H
#define UMDEV_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/dev.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Limits a profile may declare (criterion 3 states its own, lower bound). */
#define UMDEV_PROFILE_MAX_REGIONS 8
#define UMDEV_PROFILE_MAX_REGS 128 /* per region */

/* Allowed access widths, as a mask: UMDEV_W(4) allows 4-byte accesses. */
#define UMDEV_W(bytes) (1u << (bytes))
#define UMDEV_W_ANY (UMDEV_W(1) | UMDEV_W(2) | UMDEV_W(4) | UMDEV_W(8))
/* A memory-like block (a scratch array, a trapped page of shared memory):
 * any length at any alignment, as long as the access stays inside it.
 * Bit 0 is free because no access is 0 bytes wide. */
#define UMDEV_W_BULK (1u << 0)

#define UMDEV_PROFILE_R (1u << 0)
#define UMDEV_PROFILE_W (1u << 1)
#define UMDEV_PROFILE_RW (UMDEV_PROFILE_R | UMDEV_PROFILE_W)

/* One trapped register (or a block of identical ones, e.g. a table). */
struct umdev_profile_reg {
    const char *name;    /* datasheet name */
    uint64_t offset;     /* within the region */
    uint32_t size;       /* bytes it covers; an access stays inside */
    uint32_t widths;     /* UMDEV_W(n) mask, naturally aligned; or BULK */
    uint32_t access;     /* UMDEV_PROFILE_R / _W */
    bool data_path;      /* moved per I/O (doorbell, FIFO) vs control */
    bool is_volatile;    /* reads change by themselves (status, FIFO) */
    const char *purpose; /* why it is trapped, for people */
};

struct umdev_profile_region {
    uint32_t index; /* the region (BAR) */
    const struct umdev_profile_reg *regs;
    size_t nregs; /* sorted by offset, not overlapping */
};

enum umdev_profile_data_path {
    /* Descriptors and indices live in memory: no trap per I/O. */
    UMDEV_PROFILE_DP_RING,
    /* The hardware being modelled moves data through registers (a UART's
     * FIFO port): a bounded number of traps per I/O, by definition. */
    UMDEV_PROFILE_DP_PIO,
};

struct umdev_profile {
    const char *type; /* for reports, e.g. "serial-2port" */
    const struct umdev_profile_region *regions;
    size_t nregions;
    enum umdev_profile_data_path data_path;
    /* Socket messages per unit of I/O under steady load (0 for rings). */
    uint32_t max_msgs_per_io;
    const char *data_path_unit; /* "byte", "descriptor", ... */
    const char *data_path_note; /* why, when not a ring */
};

/**
 * umdev_dev_set_profile() - declare and start enforcing @p on @dev. Call
 * after the regions exist, before serving. Everything is copied.
 *
 * From then on every region access through the socket (and through
 * umdev_dev_region_rw()) except config space (lib/pci enforces that with
 * its write masks) must either stay inside one mmappable area or match a
 * declared register: inside it, an allowed width, naturally aligned, an
 * allowed direction. Anything else gets -EACCES and is counted.
 *
 * Return: 0; -EINVAL (an unknown or config region, a register outside its
 * region or overlapping another, unsorted, no widths or no access, a
 * missing name or purpose, too many); -EEXIST (a profile is set);
 * -ENOMEM.
 */
int umdev_dev_set_profile(struct umdev_dev *dev, const struct umdev_profile *p);

/** The profile in force, or NULL. Owned by @dev. */
const struct umdev_profile *umdev_dev_profile(const struct umdev_dev *dev);

struct umdev_profile_counters {
    uint64_t reads, writes;
};

/**
 * umdev_dev_profile_counters() - accesses of register @reg of the
 * profile's region entry @region so far. Thread-safe.
 * Return: 0 or -EINVAL.
 */
int umdev_dev_profile_counters(struct umdev_dev *dev, size_t region,
                               size_t reg,
                               struct umdev_profile_counters *out);

/** Accesses refused by the profile so far. Thread-safe. */
uint64_t umdev_dev_profile_refused(struct umdev_dev *dev);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_PROFILE_H */
