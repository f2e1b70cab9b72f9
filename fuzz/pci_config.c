/*
 * libFuzzer target: a stream of config-space reads and writes (and INTx,
 * interrupt raises, resets) against a lib/pci device with every kind of
 * BAR and capability. After each operation the invariants a guest relies
 * on must hold: identity and other read-only fields never change, BAR
 * type bits and size masks hold, the capability chain stays intact.
 */
#include <linux/pci_regs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pci_ro.h"
#include "umdev/pci.h"
#include "umdev/dev_testing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ssize_t
sink_access(void *opaque, uint64_t off, void *buf, size_t count,
            bool is_write)
{
    (void)opaque;
    (void)off;
    if (!is_write)
        memset(buf, 0, count);
    return (ssize_t)count;
}

struct bar_spec {
    unsigned int index;
    enum umdev_pci_bar_type type;
    bool prefetch;
    uint64_t size;
};

static const struct bar_spec bars[] = {
    { 0, UMDEV_PCI_BAR_IO, false, 8 },
    { 1, UMDEV_PCI_BAR_MEM32, false, 4096 },
    { 2, UMDEV_PCI_BAR_MEM64, true, 1 << 20 },
    { 4, UMDEV_PCI_BAR_MEM32, true, 65536 },
};

static uint32_t
cfg32(struct umdev_pci *pci, uint32_t off)
{
    uint32_t v;

    FUZZ_CHECK(umdev_pci_config_read(pci, off, &v, 4) == 0);
    return v;
}

/* What every device keeps (pci_ro.h), and what this one's BARs and
 * capabilities make exact: each BAR's type bits and size mask, no ROM,
 * all five capabilities. */
static void
check_invariants(struct umdev_pci *pci, const struct fuzz_pci_ro *power_on)
{
    size_t i;

    fuzz_pci_ro_check(pci, power_on);
    for (i = 0; i < sizeof(bars) / sizeof(bars[0]); i++) {
        const struct bar_spec *b = &bars[i];
        uint32_t lo = cfg32(pci, PCI_BASE_ADDRESS_0 + 4 * b->index);
        uint32_t type =
            b->type == UMDEV_PCI_BAR_IO
                ? PCI_BASE_ADDRESS_SPACE_IO
                : (b->type == UMDEV_PCI_BAR_MEM64
                       ? PCI_BASE_ADDRESS_MEM_TYPE_64
                       : PCI_BASE_ADDRESS_MEM_TYPE_32) |
                      (b->prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
        uint32_t low_mask = b->type == UMDEV_PCI_BAR_IO
                                ? (uint32_t)~PCI_BASE_ADDRESS_IO_MASK
                                : (uint32_t)~PCI_BASE_ADDRESS_MEM_MASK;

        FUZZ_CHECK((lo & low_mask) == type);
        FUZZ_CHECK((lo & ~low_mask & (uint32_t)(b->size - 1)) == 0);
    }
    FUZZ_CHECK(cfg32(pci, PCI_ROM_ADDRESS) == 0);
    FUZZ_CHECK_EQ(power_on->ncaps, 5);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct umdev_dev_info info = { .name = "fuzz-pci", .pci = true };
    struct umdev_pci_id id = {
        .vendor_id = 0x1234,
        .device_id = 0xabcd,
        .subsystem_vendor_id = 0x1234,
        .subsystem_id = 0x0001,
        .revision = 7,
        .class_code = 0x088000,
        .interrupt_pin = 1,
    };
    struct umdev_dev *dev = NULL;
    struct umdev_pci *pci = NULL;
    struct fuzz_pci_ro power_on;
    size_t i;

    if (umdev_dev_create(&info, &dev) < 0)
        return 0;
    if (umdev_pci_create(dev, &id, &pci) < 0)
        goto out;
    for (i = 0; i < sizeof(bars) / sizeof(bars[0]); i++) {
        struct umdev_region_desc r = {
            .size = bars[i].size,
            .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
            .access = sink_access,
        };

        FUZZ_CHECK(umdev_pci_bar_add(pci, bars[i].index, bars[i].type,
                                     bars[i].prefetch, bars[i].size, &r) == 0);
    }
    FUZZ_CHECK(umdev_pci_cap_add_pm(pci) > 0);
    FUZZ_CHECK(umdev_pci_cap_add_msi(pci, 8, true, true) > 0);
    FUZZ_CHECK(umdev_pci_cap_add_msix(pci, 16, 1, 0x800, 1, 0xc00) > 0);
    FUZZ_CHECK(umdev_pci_cap_add_pcie(pci) > 0);
    FUZZ_CHECK(umdev_pci_cap_add_vendor(pci, "umdev", 5) > 0);
    fuzz_pci_ro_snapshot(pci, &power_on);

    /* Each operation: kind, offset (2), width selector, value (4). */
    while (size >= 8) {
        uint8_t kind = data[0] % 8;
        uint32_t off = (uint32_t)(data[1] | (data[2] << 8));
        size_t len = (size_t)1 << (data[3] % 3);
        uint32_t val;
        uint8_t buf[4];

        memcpy(&val, data + 4, 4);
        switch (kind) {
        case 0: /* config write */
        case 1:
        case 2:
            memcpy(buf, &val, sizeof(buf));
            umdev_dev_region_rw(dev, UMDEV_PCI_CONFIG_REGION, off % 260, buf,
                                len, true);
            break;
        case 3: /* config read, in or out of range */
            umdev_dev_region_rw(dev, UMDEV_PCI_CONFIG_REGION, off % 260, buf,
                                len, false);
            break;
        case 4: /* MSI-X table / PBA in BAR1 */
            memcpy(buf, &val, sizeof(buf));
            umdev_dev_region_rw(dev, 1, 0x800 + off % 0x500, buf, len,
                                (data[3] & 0x80) != 0);
            break;
        case 5:
            umdev_pci_irq_raise(pci, val % 40);
            break;
        case 6:
            umdev_pci_intx_set(pci, val & 1);
            break;
        case 7:
            if ((val & 0xff) == 0)
                umdev_pci_reset(pci);
            break;
        }
        check_invariants(pci, &power_on);
        data += 8;
        size -= 8;
    }
out:
    umdev_pci_destroy(pci);
    umdev_dev_destroy(dev);
    return 0;
}
