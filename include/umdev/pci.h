/*
 * PCI personality for a device: the type-0 config space as the vfio-user
 * config region, with per-bit write masks (read-only, read-write,
 * write-1-to-clear), BARs with size probing, a capability builder (PM, MSI,
 * MSI-X, PCI Express, vendor specific), MSI-X table and PBA emulation, and
 * interrupt routing (MSI-X, MSI or INTx, whichever the guest enabled).
 * A device describes itself through these calls and never writes config
 * bytes itself.
 *
 * Threading: as struct umdev_dev (the device's serving thread), except
 * umdev_pci_irq_raise()/umdev_pci_intx_set(), which may be called from any
 * thread.
 */
#ifndef UMDEV_PCI_H
#define UMDEV_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/dev.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct umdev_pci;

#define UMDEV_PCI_CONFIG_SIZE 256u     /* conventional config space */
#define UMDEV_PCI_CONFIG_SIZE_EXP 4096u /* with a PCIe capability */

struct umdev_pci_id {
    uint16_t vendor_id;
    uint16_t device_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    uint8_t revision;
    uint32_t class_code; /* 24 bits: base class, sub class, prog-if */
    uint8_t interrupt_pin; /* 0: no INTx, 1..4: INTA#..INTD# */
};

enum umdev_pci_bar_type {
    UMDEV_PCI_BAR_IO,
    UMDEV_PCI_BAR_MEM32,
    UMDEV_PCI_BAR_MEM64, /* takes this BAR and the next */
};

/**
 * umdev_pci_create() - give @dev a PCI config space.
 * Registers the config region (UMDEV_PCI_CONFIG_REGION) on @dev; the PCI
 * object lives as long as @dev's owner keeps it (destroy it before @dev).
 * @dev must have been created with info.pci = true.
 * Return: 0, -EINVAL (bad id, dev not PCI), -ENOMEM, -EEXIST.
 */
int umdev_pci_create(struct umdev_dev *dev, const struct umdev_pci_id *id,
                     struct umdev_pci **out);
void umdev_pci_destroy(struct umdev_pci *pci);

/**
 * umdev_pci_bar_add() - declare BAR @bar and register its region on the
 * device. @size must be a power of two (I/O: 4..256 bytes; memory: at
 * least 16 bytes; use 4 KiB or more for mmappable BARs). @region describes
 * the contents (its size must equal @size); accesses that fall in an MSI-X
 * table or PBA placed in this BAR are handled by lib/pci and never reach
 * @region->access.
 * Return: 0, -EINVAL (bad index, size, type, or a 64-bit BAR at index 5),
 * -EEXIST, or the region error.
 */
int umdev_pci_bar_add(struct umdev_pci *pci, unsigned int bar,
                      enum umdev_pci_bar_type type, bool prefetchable,
                      uint64_t size, const struct umdev_region_desc *region);

/* Capabilities, appended to the chain in call order. Each returns the
 * capability's config offset (> 0) or a negative errno (-ENOSPC when the
 * 192 bytes of capability space are exhausted, -EEXIST for a second one of
 * the same kind). */

/** Power management, D0/D3hot, no PME. */
int umdev_pci_cap_add_pm(struct umdev_pci *pci);

/**
 * umdev_pci_cap_add_msi() - MSI with @vectors (1, 2, 4, 8, 16 or 32)
 * vectors, 64-bit addresses if @addr64, per-vector masking if @maskable.
 * Declares the MSI IRQ index on the device.
 */
int umdev_pci_cap_add_msi(struct umdev_pci *pci, unsigned int vectors,
                          bool addr64, bool maskable);

/**
 * umdev_pci_cap_add_msix() - MSI-X with @vectors (1..2048) vectors, the
 * table at @table_offset of BAR @table_bar and the PBA at @pba_offset of
 * BAR @pba_bar (both 8-byte aligned, inside BARs added earlier, not
 * overlapping each other). Declares the MSI-X IRQ index on the device.
 */
int umdev_pci_cap_add_msix(struct umdev_pci *pci, unsigned int vectors,
                           unsigned int table_bar, uint32_t table_offset,
                           unsigned int pba_bar, uint32_t pba_offset);

/** PCI Express endpoint capability (v2), link x1 at 2.5 GT/s. Config
 * space (the region) becomes 4 KiB, its extended part zero and read-only;
 * call it before the device is served (-EBUSY with a client attached). */
int umdev_pci_cap_add_pcie(struct umdev_pci *pci);

/** Vendor-specific capability carrying @len (<= 61) bytes of @data. */
int umdev_pci_cap_add_vendor(struct umdev_pci *pci, const void *data,
                             size_t len);

/**
 * umdev_pci_cap_find() - the capability with ID @id (PCI_CAP_ID_* of
 * <linux/pci_regs.h>; 0: any) after the one at @after (0: from the
 * start of the chain). Walk them all with
 * `for (at = find(pci, 0, 0); at > 0; at = find(pci, 0, at))`.
 * Return: its config offset; 0 if there is none; -ELOOP if the chain is
 * broken (lib/pci never builds one that is).
 */
int umdev_pci_cap_find(struct umdev_pci *pci, uint8_t id, unsigned int after);

/**
 * umdev_pci_irq_raise() - signal interrupt @vector through whatever the
 * guest enabled: MSI-X (honouring function and vector masks, setting the
 * pending bit when masked), else MSI (vector < enabled count, honouring
 * the mask bits), else, for vector 0, an INTx pulse is not meaningful:
 * use umdev_pci_intx_set() for level interrupts.
 * Return: 0; -EAGAIN masked (left pending); -ENODEV nothing enabled.
 */
int umdev_pci_irq_raise(struct umdev_pci *pci, unsigned int vector);

/**
 * umdev_pci_intx_set() - drive the INTx line. Reflected in the Interrupt
 * Status bit; delivered unless Command.InterruptDisable is set (then held
 * until the guest clears it).
 */
void umdev_pci_intx_set(struct umdev_pci *pci, bool level);

/** Which interrupt mode the guest has enabled. */
enum umdev_pci_irq_mode {
    UMDEV_PCI_IRQ_INTX,
    UMDEV_PCI_IRQ_MSI,
    UMDEV_PCI_IRQ_MSIX,
};
enum umdev_pci_irq_mode umdev_pci_irq_mode(struct umdev_pci *pci);

/** Config space as the guest sees it (for tests and tools). */
int umdev_pci_config_read(struct umdev_pci *pci, uint32_t offset, void *buf,
                          size_t len);

/**
 * umdev_pci_config_masks() - which config bits the guest may change:
 * @wmask read-write bits, @w1c write-1-to-clear bits (either may be NULL),
 * @len bytes from @offset. For profiles and audits.
 * Return: 0 or -EINVAL (outside config space).
 */
int umdev_pci_config_masks(struct umdev_pci *pci, uint32_t offset,
                           uint8_t *wmask, uint8_t *w1c, size_t len);

/** Size of config space: 256, or 4096 with a PCI Express capability. */
uint32_t umdev_pci_config_size(const struct umdev_pci *pci);

/** Return config space and MSI-X state to power-on (device reset). */
void umdev_pci_reset(struct umdev_pci *pci);

/*
 * Config space state for migration (docs/PROTOCOL.md "PCI config space
 * state"): a versioned little-endian blob of everything the guest sees
 * and lib/pci keeps: config space, the MSI-X table and PBA, MSI pending
 * bits, the INTx level. Both ends must be the same device type.
 */
#define UMDEV_PCI_STATE_VERSION 1u

/** Bytes umdev_pci_state_save() writes for @pci (fixed once built). */
size_t umdev_pci_state_size(const struct umdev_pci *pci);

/**
 * umdev_pci_state_save() - write @pci's state, umdev_pci_state_size()
 * bytes, to @buf. Call it with the device stopped, so nothing raises an
 * interrupt meanwhile.
 * Return: 0; -ENOSPC if @len is smaller than the state.
 */
int umdev_pci_state_save(struct umdev_pci *pci, void *buf, size_t len);

/**
 * umdev_pci_state_check() - would umdev_pci_state_load() take the @len
 * bytes at @buf? Checks the whole blob, changing nothing: the blob's
 * version and length, the identity (config size, BAR types and sizes,
 * MSI-X vector count, and every read-only config bit: IDs, class,
 * capability chain and layout) must equal @pci's, and the state must be
 * one a device can be in (no pending vector that is enabled and
 * unmasked). A device whose migrated state holds this blob calls it in
 * its load hook before changing any state of its own, so that a refusal
 * leaves the whole device as it was. On refusal, @err (@errlen bytes,
 * may be NULL) says why, NUL-terminated.
 * Return: 0; -EINVAL (malformed or another device); -ENOTSUP (a newer
 * blob version).
 */
int umdev_pci_state_check(struct umdev_pci *pci, const void *buf, size_t len,
                          char *err, size_t errlen);

/**
 * umdev_pci_state_load() - replace @pci's guest-written state with the
 * @len bytes at @buf (from umdev_pci_state_save() on another instance of
 * the same device type). The blob is checked whole first, as
 * umdev_pci_state_check() does, and on refusal nothing changes. Only bits
 * the guest could write (and write-1-to-clear bits) are taken. Pending
 * MSI/MSI-X bits stay pending until the guest unmasks them; the INTx
 * line is driven as loaded (the Interrupt Status bit, and the INTx IRQ
 * unless Command.InterruptDisable is set). A migrating device is stopped,
 * so lib/dev holds that interrupt until the device runs again
 * (docs/PROTOCOL.md). @err and the return values as
 * umdev_pci_state_check().
 */
int umdev_pci_state_load(struct umdev_pci *pci, const void *buf, size_t len,
                         char *err, size_t errlen);

/** Command register bits the device may want to honour. */
bool umdev_pci_io_enabled(struct umdev_pci *pci);
bool umdev_pci_mem_enabled(struct umdev_pci *pci);
bool umdev_pci_bus_master(struct umdev_pci *pci);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_PCI_H */
