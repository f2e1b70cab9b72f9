/*
 * The config-space invariants every lib/pci device keeps whatever a guest
 * writes (pci_config, and through bar_harness.h the BAR-stream targets):
 * identity and the other read-only header bytes, the capability-list
 * bit, BAR type bits, and the capability chain, walked with
 * umdev_pci_cap_find() and checked byte by byte where a guest reads it.
 * A broken invariant aborts (check.h).
 */
#ifndef UMDEV_FUZZ_PCI_RO_H
#define UMDEV_FUZZ_PCI_RO_H

#include <stdint.h>

#include "umdev/pci.h"

/* More capabilities than config space past the header can hold. */
#define FUZZ_PCI_MAX_CAPS 48

struct fuzz_pci_ro {
    uint8_t hdr[64];                   /* power-on header */
    uint8_t cap_at[FUZZ_PCI_MAX_CAPS]; /* capability offsets, in order */
    uint8_t cap_id[FUZZ_PCI_MAX_CAPS];
    uint8_t cap_next[FUZZ_PCI_MAX_CAPS];
    int ncaps;
};

/** Snapshot what must never change (call at power-on). */
void fuzz_pci_ro_snapshot(struct umdev_pci *pci, struct fuzz_pci_ro *ro);
/** Identity bytes, BAR type bits and the capability chain are intact. */
void fuzz_pci_ro_check(struct umdev_pci *pci, const struct fuzz_pci_ro *ro);

#endif /* UMDEV_FUZZ_PCI_RO_H */
