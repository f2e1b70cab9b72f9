/*
 * umdev-probe's own header: what the probe learns (struct probe), which
 * probe.c gathers over the vfio-user client, probe_pci.c decodes as PCI
 * and names, and probe_print.c prints as text or JSON.
 */
#ifndef UMDEV_PROBE_H
#define UMDEV_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/pci_regs.h>

#include "umdev/client.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* How much config space the probe reads and decodes: PCI's, not PCIe's
 * extended space. */
#define PROBE_CFG_MAX PCI_CFG_SPACE_SIZE
/* Capabilities that fit after the header (4 bytes each, dword aligned). */
#define PROBE_MAX_CAPS ((PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / 4)

struct pci_bar {
    bool present; /* the region for this BAR index has a size */
    bool io, mem64, prefetch;
    uint64_t addr, size;
};

/* One capability; for MSI and MSI-X its fields, decoded if complete. */
struct pci_cap {
    uint8_t offset, id;
    bool complete;       /* the decoded fields lie in what was read */
    bool enable;         /* MSI, MSI-X message control */
    bool maskable, is64; /* MSI */
    unsigned int count, count_enabled; /* MSI vectors: capable, enabled */
    bool function_mask;                /* MSI-X */
    unsigned int table_size;
    uint32_t table_bir, table_offset, pba_bir, pba_offset;
};

struct pci_info {
    bool valid; /* config space was read */
    size_t len;
    uint8_t cfg[PROBE_CFG_MAX];
    struct pci_bar bars[PCI_STD_NUM_BARS];
    struct pci_cap caps[PROBE_MAX_CAPS];
    size_t ncaps;
    unsigned int chain_stop; /* offset where the walk gave up, or 0 */
    const char *chain_error; /* why, or NULL */
};

struct probe {
    struct umdev_client *c;
    const struct umdev_client_caps *caps; /* borrowed from c */
    struct umdev_client_device_info dev;
    struct umdev_client_region *regions; /* dev.num_regions entries */
    struct umdev_client_irq_info *irqs;  /* dev.num_irqs entries */
    struct pci_info pci;
    char what[96]; /* the step that failed, for the error message */
};

/* ---- probe_pci.c: PCI decoding and names */

/** @len bytes of config space at @off, little-endian, as a number. */
uint32_t pci_cfg_get(const struct pci_info *pci, unsigned int off,
                     unsigned int len);

/**
 * pci_decode() - from @pci->cfg (@pci->len bytes read): the BARs, sized
 * by the @nregions @regions the device reported, and the capability
 * list with the fields of those the probe knows.
 */
void pci_decode(struct pci_info *pci, const struct umdev_client_region *regions,
                uint32_t nregions);

const char *pci_class_name(uint32_t class_code);
const char *pci_header_type_name(uint8_t type);
const char *pci_cap_name(uint8_t id);

/* A region's or IRQ index's name ("BAR0", "MSIX"; "region 9" where a
 * PCI device has none or the device is not PCI), in @buf if made up. */
const char *probe_region_name(const struct probe *p, uint32_t i, char *buf,
                              size_t len);
const char *probe_irq_name(const struct probe *p, uint32_t i, char *buf,
                           size_t len);

/* ---- probe_print.c: output. Return: 0 or -ENOMEM. */

int probe_print_text(const struct probe *p);
int probe_print_json(const struct probe *p);

#endif /* UMDEV_PROBE_H */
