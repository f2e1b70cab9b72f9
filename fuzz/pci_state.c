/*
 * libFuzzer target: lib/pci's migration state loader. A source device is
 * driven by config, MSI-X table, interrupt and INTx operations, its state
 * saved, the blob patched and possibly cut, and loaded into a destination
 * of the same type. A refused blob must leave the destination exactly as
 * it was; an accepted one must keep every read-only invariant and save
 * back to the very same bytes (the loader took all of it and nothing
 * else). A refused blob raises no interrupt; an accepted one raises
 * only the INTx line it carries, if delivered (no MSI/MSI-X vector).
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pci_ro.h"
#include "umdev/dev_testing.h"
#include "umdev/pci.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MSIX_VECTORS 16
#define MSIX_TABLE 0x800
#define MSIX_PBA 0xc00

static ssize_t
sink_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    (void)opaque;
    (void)off;
    if (!is_write)
        memset(buf, 0, count);
    return (ssize_t)count;
}

struct side {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
};

/* Every kind of BAR and capability, as pci_config's device. */
static bool
side_build(struct side *s)
{
    static const struct {
        unsigned int index;
        enum umdev_pci_bar_type type;
        bool prefetch;
        uint64_t size;
    } bars[] = {
        { 0, UMDEV_PCI_BAR_IO, false, 8 },
        { 1, UMDEV_PCI_BAR_MEM32, false, 4096 },
        { 2, UMDEV_PCI_BAR_MEM64, true, 1 << 20 },
        { 4, UMDEV_PCI_BAR_MEM32, true, 65536 },
    };
    struct umdev_dev_info info = { .name = "fuzz-pci-state", .pci = true };
    const struct umdev_pci_id id = {
        .vendor_id = 0x1234,
        .device_id = 0xabce,
        .subsystem_vendor_id = 0x1234,
        .subsystem_id = 0x0002,
        .revision = 1,
        .class_code = 0x088000,
        .interrupt_pin = 1,
    };
    size_t i;

    if (umdev_dev_create(&info, &s->dev) < 0)
        return false;
    if (umdev_pci_create(s->dev, &id, &s->pci) < 0)
        return false;
    for (i = 0; i < sizeof(bars) / sizeof(bars[0]); i++) {
        struct umdev_region_desc r = {
            .size = bars[i].size,
            .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
            .access = sink_access,
        };

        FUZZ_CHECK(umdev_pci_bar_add(s->pci, bars[i].index, bars[i].type,
                                     bars[i].prefetch, bars[i].size, &r) == 0);
    }
    FUZZ_CHECK(umdev_pci_cap_add_pm(s->pci) > 0);
    FUZZ_CHECK(umdev_pci_cap_add_msi(s->pci, 8, true, true) > 0);
    FUZZ_CHECK(umdev_pci_cap_add_msix(s->pci, MSIX_VECTORS, 1, MSIX_TABLE, 1,
                                      MSIX_PBA) > 0);
    FUZZ_CHECK(umdev_pci_cap_add_pcie(s->pci) > 0);
    FUZZ_CHECK(umdev_pci_cap_add_vendor(s->pci, "umdev", 5) > 0);
    return true;
}

static void
side_free(struct side *s)
{
    umdev_pci_destroy(s->pci);
    umdev_dev_destroy(s->dev);
}

/* What a guest reads of lib/pci's state, and the interrupts raised. */
struct view {
    uint8_t cfg[UMDEV_PCI_CONFIG_SIZE_EXP];
    uint8_t msix[MSIX_VECTORS * PCI_MSIX_ENTRY_SIZE + 8];
    uint64_t irqs;
};

static void
view(struct side *s, struct view *v)
{
    struct umdev_dev_stats st;
    uint32_t i;

    FUZZ_CHECK(umdev_pci_config_read(s->pci, 0, v->cfg, sizeof(v->cfg)) == 0);
    for (i = 0; i < MSIX_VECTORS * PCI_MSIX_ENTRY_SIZE; i += 4)
        FUZZ_CHECK(umdev_dev_region_rw(s->dev, 1, MSIX_TABLE + i, v->msix + i,
                                       4, false) == 0);
    FUZZ_CHECK(
        umdev_dev_region_rw(s->dev, 1, MSIX_PBA, v->msix + i, 8, false) == 0);
    umdev_dev_get_stats(s->dev, &st);
    v->irqs = st.irqs + st.irqs_dropped;
}

/* pci_config's operation encoding: kind, offset (2), width, value (4). */
static void
run_op(struct side *s, const uint8_t *op)
{
    uint32_t off = (uint32_t)(op[1] | (op[2] << 8)), val;
    size_t len = (size_t)1 << (op[3] % 3);
    uint8_t buf[4];

    memcpy(&val, op + 4, 4);
    memcpy(buf, &val, sizeof(buf));
    switch (op[0] % 6) {
    case 0:
    case 1:
        umdev_dev_region_rw(s->dev, UMDEV_PCI_CONFIG_REGION, off % 260, buf,
                            len, true);
        break;
    case 2: /* MSI-X table and PBA, 4-byte accesses */
        umdev_dev_region_rw(s->dev, 1, (MSIX_TABLE + off % 0x500) & ~3u, buf, 4,
                            true);
        break;
    case 3:
        umdev_pci_irq_raise(s->pci, val % 20);
        break;
    case 4:
        umdev_pci_intx_set(s->pci, val & 1);
        break;
    case 5:
        if ((val & 0xff) == 0)
            umdev_pci_reset(s->pci);
        break;
    }
}

/*
 * Input: a byte whose low 5 bits count the operations on the source and
 * whose bit 6 asks for a cut (the next byte: how many bytes off the
 * end), the operations (8 bytes each), then patches of 3 bytes (blob
 * offset, 2 bytes; a byte XORed in) to the end.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct side src = { 0 }, dst = { 0 };
    struct view *before = malloc(sizeof(*before));
    struct view *after = malloc(sizeof(*after));
    struct fuzz_pci_ro ro;
    uint8_t *blob = NULL, *again = NULL;
    size_t len, load_len, n, i;
    char err[160];
    int rc;

    if (before == NULL || after == NULL || size < 1)
        goto out;
    if (!side_build(&src) || !side_build(&dst))
        goto out;
    fuzz_pci_ro_snapshot(dst.pci, &ro);
    len = umdev_pci_state_size(src.pci);
    FUZZ_CHECK_EQ(len, umdev_pci_state_size(dst.pci));
    blob = malloc(len);
    again = malloc(len);
    if (blob == NULL || again == NULL)
        goto out;

    n = data[0] & 0x1f;
    load_len = len;
    if ((data[0] & 0x40) && size >= 2) {
        load_len -= data[1] % 16 + 1u;
        data++;
        size--;
    }
    data++;
    size--;
    for (i = 0; i < n && size >= 8; i++, data += 8, size -= 8)
        run_op(&src, data);
    FUZZ_CHECK(umdev_pci_state_save(src.pci, blob, len) == 0);
    for (; size >= 3; data += 3, size -= 3)
        blob[(size_t)(data[0] | (data[1] << 8)) % len] ^= data[2];

    view(&dst, before);
    rc = umdev_pci_state_load(dst.pci, blob, load_len, err, sizeof(err));
    view(&dst, after);
    if (rc < 0) {
        FUZZ_CHECK_EQ(after->irqs, before->irqs);
        FUZZ_CHECK(rc == -EINVAL || rc == -ENOTSUP);
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(memcmp(before, after, sizeof(*before)) == 0);
    } else {
        uint16_t cmd = (uint16_t)(after->cfg[PCI_COMMAND] |
                                  after->cfg[PCI_COMMAND + 1] << 8);

        /* The fresh destination's line was low: it rises exactly when
         * the loaded one is high and delivered (not disabled). */
        FUZZ_CHECK_EQ(after->irqs - before->irqs,
                      (after->cfg[PCI_STATUS] & PCI_STATUS_INTERRUPT) &&
                          !(cmd & PCI_COMMAND_INTX_DISABLE));
        FUZZ_CHECK_EQ(load_len, len);
        fuzz_pci_ro_check(dst.pci, &ro);
        FUZZ_CHECK(umdev_pci_state_save(dst.pci, again, len) == 0);
        FUZZ_CHECK(memcmp(blob, again, len) == 0);
    }
out:
    side_free(&dst);
    side_free(&src);
    free(blob);
    free(again);
    free(before);
    free(after);
    return 0;
}
