/* Config-space invariants of the fuzz targets: see pci_ro.h. */
#include <linux/pci_regs.h>
#include <string.h>

#include "check.h"
#include "pci_ro.h"

static void
cfg_read(struct umdev_pci *pci, uint8_t cfg[256])
{
    FUZZ_CHECK_EQ(umdev_pci_config_read(pci, 0, cfg, 256), 0);
}

void
fuzz_pci_ro_snapshot(struct umdev_pci *pci, struct fuzz_pci_ro *ro)
{
    uint8_t cfg[256];
    int at;

    cfg_read(pci, cfg);
    memcpy(ro->hdr, cfg, sizeof(ro->hdr));
    ro->ncaps = 0;
    for (at = umdev_pci_cap_find(pci, 0, 0); at > 0;
         at = umdev_pci_cap_find(pci, 0, (unsigned int)at)) {
        FUZZ_CHECK(ro->ncaps < FUZZ_PCI_MAX_CAPS);
        FUZZ_CHECK(at >= 0x40 && at < 256 && at % 4 == 0);
        ro->cap_at[ro->ncaps] = (uint8_t)at;
        ro->cap_id[ro->ncaps] = cfg[at + PCI_CAP_LIST_ID];
        ro->cap_next[ro->ncaps] = cfg[at + PCI_CAP_LIST_NEXT];
        ro->ncaps++;
    }
    FUZZ_CHECK_EQ(at, 0); /* not -ELOOP */
    /* A chain exactly when Status says there is one. */
    FUZZ_CHECK_EQ(ro->ncaps > 0, (cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST) != 0);
}

void
fuzz_pci_ro_check(struct umdev_pci *pci, const struct fuzz_pci_ro *ro)
{
    /* Identity, header type, subsystem, capability pointer, interrupt
     * pin: {offset, bytes}. */
    static const uint8_t ro_fields[][2] = {
        { PCI_VENDOR_ID, 2 },           { PCI_DEVICE_ID, 2 },
        { PCI_CLASS_REVISION, 4 },      { PCI_HEADER_TYPE, 1 },
        { PCI_SUBSYSTEM_VENDOR_ID, 2 }, { PCI_SUBSYSTEM_ID, 2 },
        { PCI_CAPABILITY_LIST, 1 },     { PCI_INTERRUPT_PIN, 1 },
    };
    uint8_t cfg[256];
    size_t i;
    int at, k;

    cfg_read(pci, cfg);
    for (i = 0; i < sizeof(ro_fields) / sizeof(ro_fields[0]); i++) {
        unsigned int off = ro_fields[i][0], end = off + ro_fields[i][1];

        for (; off < end; off++)
            FUZZ_CHECK_EQ(cfg[off], ro->hdr[off]);
    }
    FUZZ_CHECK_EQ(cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST,
                  ro->hdr[PCI_STATUS] & PCI_STATUS_CAP_LIST);
    /* BAR type bits (memory: 3:0, I/O: 1:0); the upper half of a 64-bit
     * BAR is all address bits */
    for (i = 0; i < 6; i++) {
        unsigned int off = PCI_BASE_ADDRESS_0 + 4 * (unsigned int)i;
        uint8_t was = ro->hdr[off];
        uint8_t mask = (was & PCI_BASE_ADDRESS_SPACE_IO)
                           ? (uint8_t)~PCI_BASE_ADDRESS_IO_MASK
                           : (uint8_t)~PCI_BASE_ADDRESS_MEM_MASK;

        FUZZ_CHECK_EQ(cfg[off] & mask, was & mask);
        if ((was &
             (PCI_BASE_ADDRESS_SPACE_IO | PCI_BASE_ADDRESS_MEM_TYPE_MASK)) ==
            PCI_BASE_ADDRESS_MEM_TYPE_64)
            i++;
    }
    /* The same chain, found the same way, with the same bytes where a
     * guest reads it. */
    at = 0;
    for (k = 0; k < ro->ncaps; k++) {
        at = umdev_pci_cap_find(pci, 0, (unsigned int)at);
        FUZZ_CHECK_EQ(at, ro->cap_at[k]);
        FUZZ_CHECK_EQ(cfg[at + PCI_CAP_LIST_ID], ro->cap_id[k]);
        FUZZ_CHECK_EQ(cfg[at + PCI_CAP_LIST_NEXT], ro->cap_next[k]);
    }
    FUZZ_CHECK_EQ(umdev_pci_cap_find(pci, 0, (unsigned int)at), 0);
}
