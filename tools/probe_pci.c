/*
 * umdev-probe's PCI decoding (probe.h): BARs and the capability list out
 * of the config space bytes read once, and the names lspci gives what it
 * finds. Pure functions of what was read: no I/O.
 */
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdio.h>

#include "probe.h"

/* First match wins: exact class code, then base+sub class, then base. */
static const struct {
    uint32_t mask, value;
    const char *name;
} class_names[] = {
    { 0xffffff, 0x070002, "Serial controller: 16550" },
    { 0xffff00, 0x000000, "unclassified" },
    { 0xffff00, 0x010800, "Non-Volatile memory controller" },
    { 0xffff00, 0x020000, "Ethernet controller" },
    { 0xffff00, 0x030000, "VGA compatible controller" },
    { 0xffff00, 0x070000, "Serial controller" },
    { 0xffff00, 0x088000, "System peripheral" },
    { 0xffff00, 0x120000, "Processing accelerators" },
    { 0xff0000, 0x000000, "Unclassified device" },
    { 0xff0000, 0x010000, "Mass storage controller" },
    { 0xff0000, 0x020000, "Network controller" },
    { 0xff0000, 0x030000, "Display controller" },
    { 0xff0000, 0x070000, "Communication controller" },
    { 0xff0000, 0x080000, "Generic system peripheral" },
    { 0xff0000, 0xff0000, "Unassigned class" },
};

static const char *const header_type_names[] = {
    [PCI_HEADER_TYPE_NORMAL] = "normal",
    [PCI_HEADER_TYPE_BRIDGE] = "bridge",
    [PCI_HEADER_TYPE_CARDBUS] = "cardbus",
};

/* BARs each header layout has (PCI Local Bus 3.0, 6.1 and bridge 3.2). */
static const unsigned int header_type_bars[] = {
    [PCI_HEADER_TYPE_NORMAL] = 6,
    [PCI_HEADER_TYPE_BRIDGE] = 2,
    [PCI_HEADER_TYPE_CARDBUS] = 0,
};

static const struct {
    uint8_t id;
    const char *name;
} cap_names[] = {
    { PCI_CAP_ID_PM, "Power Management" },  { PCI_CAP_ID_MSI, "MSI" },
    { PCI_CAP_ID_VNDR, "Vendor Specific" }, { PCI_CAP_ID_EXP, "PCI Express" },
    { PCI_CAP_ID_MSIX, "MSI-X" },
};

/* VFIO's PCI region and IRQ indices (linux/vfio.h). */
static const char *const pci_region_names[] = {
    [VFIO_PCI_BAR0_REGION_INDEX] = "BAR0",
    [VFIO_PCI_BAR1_REGION_INDEX] = "BAR1",
    [VFIO_PCI_BAR2_REGION_INDEX] = "BAR2",
    [VFIO_PCI_BAR3_REGION_INDEX] = "BAR3",
    [VFIO_PCI_BAR4_REGION_INDEX] = "BAR4",
    [VFIO_PCI_BAR5_REGION_INDEX] = "BAR5",
    [VFIO_PCI_ROM_REGION_INDEX] = "ROM",
    [VFIO_PCI_CONFIG_REGION_INDEX] = "CONFIG",
    [VFIO_PCI_VGA_REGION_INDEX] = "VGA",
};

static const char *const pci_irq_names[] = {
    [VFIO_PCI_INTX_IRQ_INDEX] = "INTX", [VFIO_PCI_MSI_IRQ_INDEX] = "MSI",
    [VFIO_PCI_MSIX_IRQ_INDEX] = "MSIX", [VFIO_PCI_ERR_IRQ_INDEX] = "ERR",
    [VFIO_PCI_REQ_IRQ_INDEX] = "REQ",
};

uint32_t
pci_cfg_get(const struct pci_info *pci, unsigned int off, unsigned int len)
{
    uint32_t v = 0;

    /* Config space is little-endian; vfio-user passes it as bytes. */
    while (len-- > 0)
        v = v << 8 | pci->cfg[off + len];
    return v;
}

static void
decode_bars(struct pci_info *pci, const struct umdev_client_region *regions,
            uint32_t nregions)
{
    unsigned int type = pci->cfg[PCI_HEADER_TYPE] & PCI_HEADER_TYPE_MASK;
    unsigned int nbars =
        type < ARRAY_SIZE(header_type_bars) ? header_type_bars[type] : 0;
    unsigned int i;

    for (i = 0; i < nbars && i < nregions; i++) {
        struct pci_bar *b = &pci->bars[i];
        uint32_t v = pci_cfg_get(pci, PCI_BASE_ADDRESS_0 + 4 * i, 4);

        if (regions[i].size == 0)
            continue;
        b->present = true;
        b->size = regions[i].size;
        b->io = (v & PCI_BASE_ADDRESS_SPACE) == PCI_BASE_ADDRESS_SPACE_IO;
        if (b->io) {
            b->addr = v & PCI_BASE_ADDRESS_IO_MASK;
            continue;
        }
        b->addr = v & PCI_BASE_ADDRESS_MEM_MASK;
        b->prefetch = v & PCI_BASE_ADDRESS_MEM_PREFETCH;
        b->mem64 = (v & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
                   PCI_BASE_ADDRESS_MEM_TYPE_64;
        /* The upper half is the next BAR, which is then not one itself. */
        if (b->mem64 && i + 1 < PCI_STD_NUM_BARS) {
            b->addr |=
                (uint64_t)pci_cfg_get(pci, PCI_BASE_ADDRESS_0 + 4 * i + 4, 4)
                << 32;
            i++;
        }
    }
}

/* The message control of MSI and MSI-X, and where MSI-X's table and PBA
 * are: lspci's fields. */
static void
decode_cap(const struct pci_info *pci, struct pci_cap *cap)
{
    unsigned int off = cap->offset;
    /* Bytes the decoded fields span: through the PBA dword, or control. */
    unsigned int need =
        cap->id == PCI_CAP_ID_MSIX ? PCI_MSIX_PBA + 4 : PCI_MSI_FLAGS + 2;
    uint16_t ctl;
    uint32_t table, pba;

    cap->complete = off + need <= pci->len;
    if (!cap->complete)
        return;
    ctl = (uint16_t)pci_cfg_get(pci, off + PCI_MSI_FLAGS, 2);
    if (cap->id == PCI_CAP_ID_MSI) {
        cap->enable = ctl & PCI_MSI_FLAGS_ENABLE;
        cap->count = 1u << ((ctl & PCI_MSI_FLAGS_QMASK) >> 1);
        cap->count_enabled = 1u << ((ctl & PCI_MSI_FLAGS_QSIZE) >> 4);
        cap->maskable = ctl & PCI_MSI_FLAGS_MASKBIT;
        cap->is64 = ctl & PCI_MSI_FLAGS_64BIT;
    } else if (cap->id == PCI_CAP_ID_MSIX) {
        table = pci_cfg_get(pci, off + PCI_MSIX_TABLE, 4);
        pba = pci_cfg_get(pci, off + PCI_MSIX_PBA, 4);
        cap->enable = ctl & PCI_MSIX_FLAGS_ENABLE;
        cap->function_mask = ctl & PCI_MSIX_FLAGS_MASKALL;
        cap->table_size = (ctl & PCI_MSIX_FLAGS_QSIZE) + 1u;
        cap->table_bir = table & PCI_MSIX_TABLE_BIR;
        cap->table_offset = table & PCI_MSIX_TABLE_OFFSET;
        cap->pba_bir = pba & PCI_MSIX_PBA_BIR;
        cap->pba_offset = pba & PCI_MSIX_PBA_OFFSET;
    }
}

/*
 * Walk the capability list in the bytes read with the rules of
 * umdev_client_pci_cap_find(): a pointer's low two bits are ignored, a
 * pointer into the header breaks the chain, and so does a loop. The
 * library counts links to find a loop (more than PROBE_MAX_CAPS); the
 * probe, holding the bytes, stops at the first offset seen twice, the
 * same verdict with the place to show. A pointer past what was read
 * (config space shorter than 256 bytes) breaks the chain too.
 */
static void
walk_caps(struct pci_info *pci)
{
    bool seen[PROBE_CFG_MAX] = { false };
    unsigned int off = pci->cfg[PCI_CAPABILITY_LIST] & ~3u;

    if (!(pci_cfg_get(pci, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
        return;
    while (off != 0) {
        struct pci_cap *cap;

        if (off < PCI_STD_HEADER_SIZEOF)
            pci->chain_error = "pointer into the header";
        else if (off + 2 > pci->len)
            pci->chain_error = "pointer past the end";
        else if (seen[off])
            pci->chain_error = "loop";
        if (pci->chain_error != NULL) {
            pci->chain_stop = off;
            return;
        }
        /* Offsets seen are distinct and dword-aligned in [0x40, 0xfc]:
         * at most PROBE_MAX_CAPS of them. */
        seen[off] = true;
        cap = &pci->caps[pci->ncaps++];
        cap->offset = (uint8_t)off;
        cap->id = pci->cfg[off + PCI_CAP_LIST_ID];
        decode_cap(pci, cap);
        off = pci->cfg[off + PCI_CAP_LIST_NEXT] & ~3u;
    }
}

void
pci_decode(struct pci_info *pci, const struct umdev_client_region *regions,
           uint32_t nregions)
{
    decode_bars(pci, regions, nregions);
    walk_caps(pci);
}

const char *
pci_class_name(uint32_t class_code)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(class_names); i++)
        if ((class_code & class_names[i].mask) == class_names[i].value)
            return class_names[i].name;
    return "Unknown class";
}

const char *
pci_header_type_name(uint8_t type)
{
    type &= PCI_HEADER_TYPE_MASK;
    return type < ARRAY_SIZE(header_type_names) ? header_type_names[type]
                                                : "unknown";
}

const char *
pci_cap_name(uint8_t id)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cap_names); i++)
        if (cap_names[i].id == id)
            return cap_names[i].name;
    return "Unknown";
}

static const char *
index_name(const char *const *names, size_t n, const struct probe *p,
           const char *kind, uint32_t i, char *buf, size_t len)
{
    if ((p->dev.flags & VFIO_DEVICE_FLAGS_PCI) && i < n && names[i] != NULL)
        return names[i];
    snprintf(buf, len, "%s %" PRIu32, kind, i);
    return buf;
}

const char *
probe_region_name(const struct probe *p, uint32_t i, char *buf, size_t len)
{
    return index_name(pci_region_names, ARRAY_SIZE(pci_region_names), p,
                      "region", i, buf, len);
}

const char *
probe_irq_name(const struct probe *p, uint32_t i, char *buf, size_t len)
{
    return index_name(pci_irq_names, ARRAY_SIZE(pci_irq_names), p, "irq", i,
                      buf, len);
}
