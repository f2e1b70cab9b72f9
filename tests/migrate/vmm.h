/*
 * umdev-vmm: a VMM stand-in for the migration proof (issue 16). No VMM
 * speaks vfio-user migration yet, so this program plays one: it owns
 * guest memory (a memfd DMA-mapped with its fd), its interrupts
 * (eventfds), and a "guest" that keeps a workload running on a device;
 * at the switch it pauses, re-attaches to the destination and resumes
 * there, then proves that nothing was lost, doubled or corrupted.
 *
 * Two views of guest memory back the proof. Every byte the guest writes
 * goes through vmm_gwrite(), which updates the memory, the shadow and the
 * model. The shadow is a copy of memory taken when dirty logging starts,
 * kept up to date with the guest's writes only, so the pages where memory
 * and shadow differ are exactly those the device wrote since: the dirty
 * report must name every one. The model is what memory must hold: the
 * guest's writes plus the device's output once the workload has checked
 * it byte for byte (vmm_accept()); at the end memory must equal it
 * everywhere, so a device write nobody expected, or a checked byte that
 * changed afterwards, fails the run.
 *
 * A workload is a driver for one device type (wl_*.c). The VMM core
 * (vmm.c) owns connections, memory and the migration protocol.
 */
#ifndef UMDEV_TESTS_MIGRATE_VMM_H
#define UMDEV_TESTS_MIGRATE_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "umdev/client.h"

/* Guest physical (= IO virtual) address of guest RAM's first byte. */
#define VMM_GPA_BASE ((uint64_t)1 << 32)
/* Device-owned ranges of guest RAM (vmm_device_owned()), at most. */
#define VMM_MAX_OWNED 16
/* Any single wait for the device (a register, an interrupt). */
#define VMM_TIMEOUT_MS 10000

struct vmm;

struct vmm_workload {
    const char *name;
    /* Bring the device up as a guest driver would, on vmm->c (memory is
     * mapped already; interrupts are the workload's: it calls irqs). */
    int (*open)(struct vmm *v);
    /* Give connection @c the guest's interrupt eventfds (SET_IRQS; no
     * register access: on a destination, the device is not running). */
    int (*irqs)(struct vmm *v, struct umdev_client *c);
    /* One unit of work; a negative return ends the run (vmm_fail()). */
    int (*step)(struct vmm *v, unsigned long unit);
    /* The vCPUs pause (@paused) or resume (optional): host-side peers
     * follow them. */
    int (*pause)(struct vmm *v, bool paused);
    /* The source is stopped and the VMM attached to the destination,
     * which is not running yet (optional). */
    int (*attach)(struct vmm *v);
    /* For --selftest corrupt (optional): *@gpa, a byte of device output
     * the guest will check and the device will not write again. Return:
     * 0, or -ENOENT (the VMM then picks checked output). */
    int (*corrupt)(struct vmm *v, uint64_t *gpa);
    /* The destination runs and vmm->c is its connection (optional). */
    int (*switched)(struct vmm *v);
    /* No new work: wait for what is outstanding, check and accept it. */
    int (*finish)(struct vmm *v);
    /* The workload's fields of the JSON summary (",\"x\":1..."). */
    void (*summary)(struct vmm *v, FILE *f);
    void (*close)(struct vmm *v);
};

extern const struct vmm_workload vmm_wl_testdev;
extern const struct vmm_workload vmm_wl_serial;
extern const struct vmm_workload vmm_wl_accel;
extern const struct vmm_workload vmm_wl_nvme;

struct vmm {
    /* Options. */
    const char *src_path;
    uint64_t mem_size;
    uint64_t seed;
    unsigned long units; /* at least this many units in all */
    unsigned long after; /* and at least this many after the switch */
    /* Units run after the migration began before the VMM heeds "stop" */
    unsigned long precopy_units;
    long migrate_after;  /* -1: no migration */
    bool intx;           /* INTx even where the device has MSI-X */
    unsigned int queues; /* accel: queues to drive (0: all) */
    unsigned int depth;  /* accel: descriptors in flight per queue */
    const char *host_src, *host_dst; /* serial: the host ends */
    unsigned int serial_port;        /* serial: the port (= its BAR) driven */
    int verbose;

    /* Guest memory: @mem shared with the device; shadow and model ours. */
    int memfd;
    uint8_t *mem, *shadow, *model;
    struct {
        uint64_t off, len;
    } owned[VMM_MAX_OWNED];
    unsigned int nowned;

    /* The connection the vCPUs use: the source's, then the
     * destination's. */
    struct umdev_client *c;
    bool migrated;

    const struct vmm_workload *wl;
    void *wl_priv;

    /* The first discrepancy; every one counts. */
    char fail[512];
    unsigned long errors;
};

/* Record a discrepancy (the first message is kept). Return: -1. */
int vmm_fail(struct vmm *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void vmm_log(struct vmm *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Guest RAM at @gpa as the guest sees it (inside guest RAM, checked). */
void *vmm_gpa(struct vmm *v, uint64_t gpa, size_t len);
/* The guest writes @len bytes at @gpa: memory, shadow and model. */
void vmm_gwrite(struct vmm *v, uint64_t gpa, const void *buf, size_t len);
/* The guest has checked the device's bytes at [@gpa, +@len): memory
 * there is what it must stay. */
void vmm_accept(struct vmm *v, uint64_t gpa, size_t len);
/* [@gpa, +@len) is the device's to write whenever it likes (a ring's
 * HEAD, an EventIdx), not output to check: the final memory check
 * leaves it out. At most VMM_MAX_OWNED ranges. */
void vmm_device_owned(struct vmm *v, uint64_t gpa, size_t len);

/* Register access on the current connection. Return: 0 or -errno (the
 * failure recorded). */
int vmm_rd(struct vmm *v, uint32_t region, uint64_t off, void *buf, size_t len);
int vmm_wr(struct vmm *v, uint32_t region, uint64_t off, const void *buf,
           size_t len);
uint32_t vmm_rd32(struct vmm *v, uint32_t region, uint64_t off);
int vmm_wr32(struct vmm *v, uint32_t region, uint64_t off, uint32_t val);

/* The guest's MSI-X setup: Enable in the capability, and every vector's
 * table entry (in BAR @bar at @table) given an address and unmasked. */
int vmm_msix_enable(struct vmm *v, uint32_t bar, uint64_t table,
                    unsigned int vectors);

/* An eventfd's count once it fires within @timeout_ms, or 0. */
uint64_t vmm_efd_wait(int efd, int timeout_ms);

/* A deterministic byte stream: xorshift64* seeded by (@seed, @stream). */
struct vmm_rng {
    uint64_t s;
};
void vmm_rng_init(struct vmm_rng *r, uint64_t seed, uint64_t stream);
uint64_t vmm_rng_next(struct vmm_rng *r);
void vmm_rng_fill(struct vmm_rng *r, uint8_t *buf, size_t len);

uint64_t vmm_now_us(void);

#endif /* UMDEV_TESTS_MIGRATE_VMM_H */
