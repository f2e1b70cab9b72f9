/*
 * PCI config space emulation. Every config byte has a write mask and a
 * write-1-to-clear mask; a guest write changes only what they allow
 * (PCI Local Bus 3.0 §6.1: writes to read-only bits are ignored). BAR size
 * probing falls out of the masks: writing all ones reads back the size
 * mask with the type bits. Interrupt routing lives here too because it
 * depends on config state (Command.InterruptDisable, MSI/MSI-X enables and
 * masks).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "umdev/pci.h"
#include "util.h"

/*
 * Register names are Linux's <linux/pci_regs.h> (the datasheet names).
 * What it lacks is defined here with a reason.
 */
/* Status bits the device reports as errors, all write-1-to-clear (PCI
 * Local Bus 3.0 §6.2.3). */
#define PCI_STATUS_ERR_BITS                                                   \
    (PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT |                        \
     PCI_STATUS_REC_TARGET_ABORT | PCI_STATUS_REC_MASTER_ABORT |              \
     PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY)
/* The PCI Express capability of a v2 endpoint through Slot Status 2:
 * pci_regs.h's PCI_CAP_EXP_ENDPOINT_SIZEOF_V2 stops at Link Status 2, but
 * drivers read the slot registers too and must find them zero. */
#define PCIE_CAP_SIZEOF 60

struct pci_bar {
    bool present;
    bool upper; /* high half of the 64-bit BAR below */
    enum umdev_pci_bar_type type;
    uint64_t size;
    umdev_region_access_fn *access; /* the device's; NULL: shared memory */
    void *opaque;
    struct umdev_pci *pci;
    unsigned int index;
};

struct umdev_pci {
    struct umdev_dev *dev;
    pthread_mutex_t lock;
    uint32_t cfg_size;
    uint8_t cfg[UMDEV_PCI_CONFIG_SIZE_EXP];
    uint8_t wmask[UMDEV_PCI_CONFIG_SIZE_EXP];
    uint8_t w1cmask[UMDEV_PCI_CONFIG_SIZE_EXP];
    uint8_t power_on[UMDEV_PCI_CONFIG_SIZE_EXP];
    struct pci_bar bars[PCI_STD_NUM_BARS];
    uint8_t cap_free; /* next free capability offset */
    uint8_t cap_last; /* offset of the last capability, 0: none */
    bool intx_level;

    uint8_t msi_off;
    unsigned int msi_vectors;
    bool msi_64, msi_maskable;
    uint32_t msi_pending;

    uint8_t msix_off;
    unsigned int msix_vectors;
    unsigned int msix_table_bar, msix_pba_bar;
    uint32_t msix_table_off, msix_pba_off;
    uint8_t *msix_table;
    uint64_t *msix_pba;
    /* A VMM that emulates the MSI-X table itself (QEMU's vfio-pci) never
     * writes it through; until a table write arrives after reset, vector
     * masking is the VMM's business, as for a physical device behind
     * VFIO. */
    bool msix_table_used;
};

static uint16_t
rd16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static uint32_t
rd32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static void
wr16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, sizeof(v));
}

static void
wr32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

/* Set a field's value and its masks in one place. */
static void
field(struct umdev_pci *pci, uint32_t off, unsigned int len, uint32_t value,
      uint32_t wmask, uint32_t w1c)
{
    unsigned int i;

    for (i = 0; i < len; i++) {
        pci->cfg[off + i] = (uint8_t)(value >> (8 * i));
        pci->wmask[off + i] = (uint8_t)(wmask >> (8 * i));
        pci->w1cmask[off + i] = (uint8_t)(w1c >> (8 * i));
    }
}

static bool
is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* Recompute INTx delivery and the status bit; lock held. */
static void
update_intx(struct umdev_pci *pci)
{
    uint16_t cmd = rd16(pci->cfg + PCI_COMMAND);
    uint16_t sta = rd16(pci->cfg + PCI_STATUS);
    bool deliver;

    if (pci->intx_level)
        sta |= PCI_STATUS_INTERRUPT;
    else
        sta &= (uint16_t)~PCI_STATUS_INTERRUPT;
    wr16(pci->cfg + PCI_STATUS, sta);
    deliver = pci->intx_level && !(cmd & PCI_COMMAND_INTX_DISABLE) &&
              pci->cfg[PCI_INTERRUPT_PIN] != 0;
    umdev_dev_intx_set_level(pci->dev, deliver);
}

static bool
msix_enabled(const struct umdev_pci *pci)
{
    return pci->msix_off &&
           (rd16(pci->cfg + pci->msix_off + PCI_MSIX_FLAGS) &
            PCI_MSIX_FLAGS_ENABLE);
}

static bool
msix_vector_masked(const struct umdev_pci *pci, unsigned int v)
{
    uint16_t flags = rd16(pci->cfg + pci->msix_off + PCI_MSIX_FLAGS);

    if (flags & PCI_MSIX_FLAGS_MASKALL)
        return true;
    if (!pci->msix_table_used)
        return false;
    return rd32(pci->msix_table + v * PCI_MSIX_ENTRY_SIZE +
                PCI_MSIX_ENTRY_VECTOR_CTRL) &
           PCI_MSIX_ENTRY_CTRL_MASKBIT;
}

static bool
msi_enabled(const struct umdev_pci *pci)
{
    return pci->msi_off &&
           (rd16(pci->cfg + pci->msi_off + PCI_MSI_FLAGS) &
            PCI_MSI_FLAGS_ENABLE);
}

static uint32_t
msi_mask_off(const struct umdev_pci *pci)
{
    return pci->msi_off + (pci->msi_64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);
}

/* Deliver pending MSI-X / MSI vectors that became unmasked; lock held. */
static void
deliver_pending(struct umdev_pci *pci)
{
    unsigned int v;

    if (msix_enabled(pci)) {
        for (v = 0; v < pci->msix_vectors; v++) {
            uint64_t bit = 1ull << (v % 64);

            if ((pci->msix_pba[v / 64] & bit) &&
                !msix_vector_masked(pci, v)) {
                pci->msix_pba[v / 64] &= ~bit;
                umdev_dev_irq_trigger(pci->dev, UMDEV_PCI_MSIX_IRQ, v);
            }
        }
    }
    if (msi_enabled(pci) && pci->msi_maskable && pci->msi_pending) {
        uint32_t mask = rd32(pci->cfg + msi_mask_off(pci));

        for (v = 0; v < pci->msi_vectors; v++) {
            if ((pci->msi_pending & (1u << v)) && !(mask & (1u << v))) {
                pci->msi_pending &= ~(1u << v);
                umdev_dev_irq_trigger(pci->dev, UMDEV_PCI_MSI_IRQ, v);
            }
        }
        wr32(pci->cfg + msi_mask_off(pci) + 4, pci->msi_pending);
    }
}

static void
config_write_locked(struct umdev_pci *pci, uint32_t off, const uint8_t *buf,
                    size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        uint32_t o = off + (uint32_t)i;
        uint8_t old = pci->cfg[o];
        uint8_t w = pci->wmask[o], c = pci->w1cmask[o];
        uint8_t v = (uint8_t)((old & ~w) | (buf[i] & w));

        v &= (uint8_t)~(buf[i] & c);
        pci->cfg[o] = v;
    }
    /* Side effects of the registers touched. */
    if (off < PCI_COMMAND + 2 && off + len > PCI_COMMAND)
        update_intx(pci);
    if (pci->msix_off && off < pci->msix_off + (uint32_t)PCI_CAP_MSIX_SIZEOF &&
        off + len > pci->msix_off)
        deliver_pending(pci);
    if (pci->msi_off && off + len > pci->msi_off &&
        off < pci->msi_off + 24u)
        deliver_pending(pci);
}

static ssize_t
config_access(void *opaque, uint64_t off, void *buf, size_t count,
              bool is_write)
{
    struct umdev_pci *pci = opaque;

    /* lib/dev checked off + count against the region size. */
    pthread_mutex_lock(&pci->lock);
    if (is_write)
        config_write_locked(pci, (uint32_t)off, buf, count);
    else
        memcpy(buf, pci->cfg + off, count);
    pthread_mutex_unlock(&pci->lock);
    return (ssize_t)count;
}

int
umdev_pci_create(struct umdev_dev *dev, const struct umdev_pci_id *id,
                 struct umdev_pci **out)
{
    struct umdev_region_desc cfg = {
        .size = UMDEV_PCI_CONFIG_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = config_access,
    };
    struct umdev_pci *pci;
    int rc;

    *out = NULL;
    if (dev == NULL || id == NULL || id->interrupt_pin > 4 ||
        id->class_code > 0xffffff || id->vendor_id == 0xffff ||
        id->vendor_id == 0)
        return -EINVAL;
    pci = calloc(1, sizeof(*pci));
    if (pci == NULL)
        return -ENOMEM;
    if (pthread_mutex_init(&pci->lock, NULL) != 0) {
        free(pci);
        return -ENOMEM;
    }
    pci->dev = dev;
    pci->cfg_size = UMDEV_PCI_CONFIG_SIZE;
    pci->cap_free = PCI_STD_HEADER_SIZEOF;
    field(pci, PCI_VENDOR_ID, 2, id->vendor_id, 0, 0);
    field(pci, PCI_DEVICE_ID, 2, id->device_id, 0, 0);
    field(pci, PCI_COMMAND, 2, 0,
          PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
              PCI_COMMAND_PARITY | PCI_COMMAND_SERR |
              PCI_COMMAND_INTX_DISABLE,
          0);
    field(pci, PCI_STATUS, 2, 0, 0, PCI_STATUS_ERR_BITS);
    field(pci, PCI_REVISION_ID, 1, id->revision, 0, 0);
    field(pci, PCI_CLASS_PROG, 3, id->class_code, 0, 0);
    field(pci, PCI_CACHE_LINE_SIZE, 1, 0, 0xff, 0);
    field(pci, PCI_LATENCY_TIMER, 1, 0, 0, 0);
    field(pci, PCI_HEADER_TYPE, 1, 0, 0, 0);
    field(pci, PCI_SUBSYSTEM_VENDOR_ID, 2, id->subsystem_vendor_id, 0, 0);
    field(pci, PCI_SUBSYSTEM_ID, 2, id->subsystem_id, 0, 0);
    field(pci, PCI_ROM_ADDRESS, 4, 0, 0, 0); /* no expansion ROM */
    field(pci, PCI_INTERRUPT_LINE, 1, 0, 0xff, 0);
    field(pci, PCI_INTERRUPT_PIN, 1, id->interrupt_pin, 0, 0);
    cfg.opaque = pci;
    rc = umdev_dev_region_add(dev, UMDEV_PCI_CONFIG_REGION, &cfg);
    if (rc == 0 && id->interrupt_pin != 0)
        rc = umdev_dev_irq_add(dev, UMDEV_PCI_INTX_IRQ, 1, 0);
    if (rc == 0)
        rc = umdev_dev_irq_add(dev, UMDEV_PCI_ERR_IRQ, 1, 0);
    if (rc == 0)
        rc = umdev_dev_irq_add(dev, UMDEV_PCI_REQ_IRQ, 1, 0);
    if (rc < 0) {
        umdev_pci_destroy(pci);
        return rc;
    }
    memcpy(pci->power_on, pci->cfg, sizeof(pci->cfg));
    *out = pci;
    return 0;
}

void
umdev_pci_destroy(struct umdev_pci *pci)
{
    if (pci == NULL)
        return;
    pthread_mutex_destroy(&pci->lock);
    free(pci->msix_table);
    free(pci->msix_pba);
    free(pci);
}

static bool
in_range(uint64_t off, size_t count, uint32_t start, uint64_t len)
{
    return off >= start && off - start < len && count <= len - (off - start);
}

static ssize_t
msix_table_access(struct umdev_pci *pci, uint64_t rel, void *buf,
                  size_t count, bool is_write)
{
    if ((count != 4 && count != 8) || rel % count != 0)
        return -EINVAL;
    pthread_mutex_lock(&pci->lock);
    if (is_write) {
        memcpy(pci->msix_table + rel, buf, count);
        pci->msix_table_used = true;
        deliver_pending(pci);
    } else {
        memcpy(buf, pci->msix_table + rel, count);
    }
    pthread_mutex_unlock(&pci->lock);
    return (ssize_t)count;
}

static ssize_t
msix_pba_access(struct umdev_pci *pci, uint64_t rel, void *buf, size_t count,
                bool is_write)
{
    if ((count != 4 && count != 8) || rel % count != 0)
        return -EINVAL;
    if (is_write)
        return (ssize_t)count; /* PBA is read-only */
    pthread_mutex_lock(&pci->lock);
    memcpy(buf, (uint8_t *)pci->msix_pba + rel, count);
    pthread_mutex_unlock(&pci->lock);
    return (ssize_t)count;
}

/* BAR accesses pass through here so the MSI-X table and PBA are served
 * by lib/pci wherever the device placed them. */
static ssize_t
bar_access(void *opaque, uint64_t off, void *buf, size_t count,
           bool is_write)
{
    struct pci_bar *bar = opaque;
    struct umdev_pci *pci = bar->pci;

    if (pci->msix_off) {
        uint64_t tsize = (uint64_t)pci->msix_vectors * PCI_MSIX_ENTRY_SIZE;
        uint64_t psize = ((pci->msix_vectors + 63) / 64) * 8;

        if (bar->index == pci->msix_table_bar &&
            in_range(off, count, pci->msix_table_off, tsize))
            return msix_table_access(pci, off - pci->msix_table_off, buf,
                                     count, is_write);
        if (bar->index == pci->msix_pba_bar &&
            in_range(off, count, pci->msix_pba_off, psize))
            return msix_pba_access(pci, off - pci->msix_pba_off, buf, count,
                                   is_write);
    }
    return bar->access(bar->opaque, off, buf, count, is_write);
}

int
umdev_pci_bar_add(struct umdev_pci *pci, unsigned int index,
                  enum umdev_pci_bar_type type, bool prefetchable,
                  uint64_t size, const struct umdev_region_desc *region)
{
    struct umdev_region_desc desc;
    struct pci_bar *bar;
    uint32_t off = PCI_BASE_ADDRESS_0 + 4 * index;
    uint64_t mask;
    int rc;

    if (index >= PCI_STD_NUM_BARS || region == NULL || region->size != size ||
        !is_pow2(size))
        return -EINVAL;
    if (type == UMDEV_PCI_BAR_IO && (size < 4 || size > 256 || prefetchable))
        return -EINVAL;
    if (type != UMDEV_PCI_BAR_IO && size < 16)
        return -EINVAL;
    if (type == UMDEV_PCI_BAR_MEM32 && size > 0x80000000ull)
        return -EINVAL;
    if (type == UMDEV_PCI_BAR_MEM64 && index == PCI_STD_NUM_BARS - 1)
        return -EINVAL;
    bar = &pci->bars[index];
    if (bar->present || bar->upper ||
        (type == UMDEV_PCI_BAR_MEM64 && pci->bars[index + 1].present))
        return -EEXIST;

    desc = *region;
    bar->access = region->access;
    bar->opaque = region->opaque;
    bar->pci = pci;
    bar->index = index;
    if (region->access != NULL) {
        desc.access = bar_access;
        desc.opaque = bar;
    }
    rc = umdev_dev_region_add(pci->dev, index, &desc);
    if (rc < 0) {
        memset(bar, 0, sizeof(*bar));
        return rc;
    }
    bar->present = true;
    bar->type = type;
    bar->size = size;
    mask = ~(size - 1);
    switch (type) {
    case UMDEV_PCI_BAR_IO:
        field(pci, off, 4, PCI_BASE_ADDRESS_SPACE_IO,
              (uint32_t)mask & ~3u, 0);
        break;
    case UMDEV_PCI_BAR_MEM32:
        field(pci, off, 4,
              prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0,
              (uint32_t)mask & ~0xfu, 0);
        break;
    case UMDEV_PCI_BAR_MEM64:
        field(pci, off, 4,
              PCI_BASE_ADDRESS_MEM_TYPE_64 |
                  (prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0),
              (uint32_t)mask & ~0xfu, 0);
        field(pci, off + 4, 4, 0, (uint32_t)(mask >> 32), 0);
        pci->bars[index + 1].upper = true;
        break;
    }
    memcpy(pci->power_on, pci->cfg, sizeof(pci->cfg));
    return 0;
}

/* Reserve @len bytes of capability space and link a capability. */
static int
cap_alloc(struct umdev_pci *pci, uint8_t id, unsigned int len)
{
    unsigned int off = pci->cap_free;

    if (off + len > UMDEV_PCI_CONFIG_SIZE)
        return -ENOSPC;
    field(pci, off, 1, id, 0, 0);
    field(pci, off + 1, 1, 0, 0, 0);
    if (pci->cap_last)
        pci->cfg[pci->cap_last + 1] = (uint8_t)off;
    else
        pci->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
    pci->cap_last = (uint8_t)off;
    pci->cap_free = (uint8_t)((off + len + 3) & ~3u);
    wr16(pci->cfg + PCI_STATUS,
         rd16(pci->cfg + PCI_STATUS) | PCI_STATUS_CAP_LIST);
    return (int)off;
}

static int
cap_done(struct umdev_pci *pci, int off)
{
    if (off > 0)
        memcpy(pci->power_on, pci->cfg, sizeof(pci->cfg));
    return off;
}

/* Capability pointers and IDs are read-only to the guest, so the chain is
 * what cap_alloc() built; read it without the lock. */
static int
cfg_read_unlocked(void *ctx, unsigned int off, unsigned int len,
                  uint16_t *val)
{
    const struct umdev_pci *pci = ctx;

    *val = len == 2 ? rd16(pci->cfg + off) : pci->cfg[off];
    return 0;
}

int
umdev_pci_cap_find(struct umdev_pci *pci, uint8_t id, unsigned int after)
{
    return util_pci_cap_find(cfg_read_unlocked, pci, id, after);
}

static bool
has_cap(struct umdev_pci *pci, uint8_t id)
{
    return umdev_pci_cap_find(pci, id, 0) > 0;
}

int
umdev_pci_cap_add_pm(struct umdev_pci *pci)
{
    int off;

    if (has_cap(pci, PCI_CAP_ID_PM))
        return -EEXIST;
    off = cap_alloc(pci, PCI_CAP_ID_PM, PCI_PM_SIZEOF);
    if (off < 0)
        return off;
    field(pci, off + PCI_PM_PMC, 2, 0x0003, 0, 0); /* PM spec 1.2 */
    field(pci, off + PCI_PM_CTRL, 2, PCI_PM_CTRL_NO_SOFT_RESET,
          PCI_PM_CTRL_STATE_MASK, 0);
    return cap_done(pci, off);
}

int
umdev_pci_cap_add_msi(struct umdev_pci *pci, unsigned int vectors,
                      bool addr64, bool maskable)
{
    unsigned int log2 = 0, len;
    uint16_t flags;
    int off, rc;

    if (!is_pow2(vectors) || vectors > 32)
        return -EINVAL;
    if (has_cap(pci, PCI_CAP_ID_MSI))
        return -EEXIST;
    while ((1u << log2) < vectors)
        log2++;
    len = 10 + (addr64 ? 4 : 0) + (maskable ? 10 : 0);
    off = cap_alloc(pci, PCI_CAP_ID_MSI, len);
    if (off < 0)
        return off;
    rc = umdev_dev_irq_add(pci->dev, UMDEV_PCI_MSI_IRQ, vectors, 0);
    if (rc < 0)
        return rc;
    flags = (uint16_t)(log2 << 1) | (addr64 ? PCI_MSI_FLAGS_64BIT : 0) |
            (maskable ? PCI_MSI_FLAGS_MASKBIT : 0);
    field(pci, off + PCI_MSI_FLAGS, 2, flags,
          PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE, 0);
    field(pci, off + PCI_MSI_ADDRESS_LO, 4, 0, 0xfffffffc, 0);
    if (addr64)
        field(pci, off + PCI_MSI_ADDRESS_HI, 4, 0, 0xffffffff, 0);
    field(pci, off + (addr64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2, 0,
          0xffff, 0);
    pci->msi_off = (uint8_t)off;
    pci->msi_vectors = vectors;
    pci->msi_64 = addr64;
    pci->msi_maskable = maskable;
    if (maskable) {
        uint32_t bits = vectors == 32 ? 0xffffffffu : (1u << vectors) - 1;

        field(pci, msi_mask_off(pci), 4, 0, bits, 0);
        field(pci, msi_mask_off(pci) + 4, 4, 0, 0, 0);
    }
    return cap_done(pci, off);
}

int
umdev_pci_cap_add_msix(struct umdev_pci *pci, unsigned int vectors,
                       unsigned int table_bar, uint32_t table_offset,
                       unsigned int pba_bar, uint32_t pba_offset)
{
    uint64_t tsize = (uint64_t)vectors * PCI_MSIX_ENTRY_SIZE;
    uint64_t psize = ((vectors + 63) / 64) * 8;
    unsigned int v;
    int off, rc;

    if (vectors == 0 || vectors > 2048 || table_bar >= PCI_STD_NUM_BARS ||
        pba_bar >= PCI_STD_NUM_BARS || (table_offset | pba_offset) % 8 != 0)
        return -EINVAL;
    if (!pci->bars[table_bar].present || !pci->bars[pba_bar].present ||
        pci->bars[table_bar].access == NULL ||
        pci->bars[pba_bar].access == NULL)
        return -EINVAL; /* the table must sit in a trapped BAR */
    if (table_offset + tsize > pci->bars[table_bar].size ||
        pba_offset + psize > pci->bars[pba_bar].size)
        return -EINVAL;
    if (table_bar == pba_bar && table_offset < pba_offset + psize &&
        pba_offset < table_offset + tsize)
        return -EINVAL;
    if (has_cap(pci, PCI_CAP_ID_MSIX))
        return -EEXIST;
    pci->msix_table = calloc(1, tsize);
    pci->msix_pba = calloc(1, psize);
    if (pci->msix_table == NULL || pci->msix_pba == NULL) {
        free(pci->msix_table);
        free(pci->msix_pba);
        pci->msix_table = NULL;
        pci->msix_pba = NULL;
        return -ENOMEM;
    }
    off = cap_alloc(pci, PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF);
    if (off < 0)
        return off;
    rc = umdev_dev_irq_add(pci->dev, UMDEV_PCI_MSIX_IRQ, vectors, 0);
    if (rc < 0)
        return rc;
    field(pci, off + PCI_MSIX_FLAGS, 2, (vectors - 1) & PCI_MSIX_FLAGS_QSIZE,
          PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 0);
    field(pci, off + PCI_MSIX_TABLE, 4, table_offset | table_bar, 0, 0);
    field(pci, off + PCI_MSIX_PBA, 4, pba_offset | pba_bar, 0, 0);
    pci->msix_off = (uint8_t)off;
    pci->msix_vectors = vectors;
    pci->msix_table_bar = table_bar;
    pci->msix_table_off = table_offset;
    pci->msix_pba_bar = pba_bar;
    pci->msix_pba_off = pba_offset;
    for (v = 0; v < vectors; v++)
        wr32(pci->msix_table + v * PCI_MSIX_ENTRY_SIZE +
                 PCI_MSIX_ENTRY_VECTOR_CTRL,
             PCI_MSIX_ENTRY_CTRL_MASKBIT);
    return cap_done(pci, off);
}

int
umdev_pci_cap_add_pcie(struct umdev_pci *pci)
{
    int off, rc;

    if (has_cap(pci, PCI_CAP_ID_EXP))
        return -EEXIST;
    /* A PCI Express function has 4 KiB of config space (PCIe 7.5.1):
     * without it QEMU's vfio-pci treats the device as conventional PCI.
     * The extended space is read-only zeroes: a zero header at 100h says
     * there are no extended capabilities (PCIe 7.6.3). */
    rc = umdev_dev_region_resize(pci->dev, UMDEV_PCI_CONFIG_REGION,
                                 UMDEV_PCI_CONFIG_SIZE_EXP);
    if (rc < 0)
        return rc;
    off = cap_alloc(pci, PCI_CAP_ID_EXP, PCIE_CAP_SIZEOF);
    if (off < 0) {
        umdev_dev_region_resize(pci->dev, UMDEV_PCI_CONFIG_REGION,
                                UMDEV_PCI_CONFIG_SIZE);
        return off;
    }
    pci->cfg_size = UMDEV_PCI_CONFIG_SIZE_EXP;
    /* Version 2, PCI Express endpoint (type 0). */
    field(pci, off + PCI_EXP_FLAGS, 2, 0x0002, 0, 0);
    /* DevCap: 128-byte max payload, role-based error reporting. */
    field(pci, off + PCI_EXP_DEVCAP, 4, 1u << 15, 0, 0);
    /* DevCtl: error reporting enables, relaxed ordering, payload and read
     * request sizes, no-snoop: writable as on real endpoints. */
    field(pci, off + PCI_EXP_DEVCTL, 2, 0x2810, 0x7cff, 0);
    field(pci, off + PCI_EXP_DEVSTA, 2, 0, 0, 0x000f);
    /* Link: 2.5 GT/s, x1. */
    field(pci, off + PCI_EXP_LNKCAP, 4, 0x00000011, 0, 0);
    field(pci, off + PCI_EXP_LNKCTL, 2, 0, 0x01c3, 0);
    field(pci, off + PCI_EXP_LNKSTA, 2, 0x0011, 0, 0);
    field(pci, off + PCI_EXP_DEVCAP2, 4, 0, 0, 0);
    field(pci, off + PCI_EXP_DEVCTL2, 2, 0, 0x001f, 0);
    return cap_done(pci, off);
}

int
umdev_pci_cap_add_vendor(struct umdev_pci *pci, const void *data,
                         size_t len)
{
    int off;

    if (len > 61 || (len > 0 && data == NULL))
        return -EINVAL;
    off = cap_alloc(pci, PCI_CAP_ID_VNDR, 3 + (unsigned int)len);
    if (off < 0)
        return off;
    field(pci, off + 2, 1, 3 + (uint32_t)len, 0, 0);
    if (len)
        memcpy(pci->cfg + off + 3, data, len);
    return cap_done(pci, off);
}

int
umdev_pci_irq_raise(struct umdev_pci *pci, unsigned int vector)
{
    int rc = -ENODEV;

    pthread_mutex_lock(&pci->lock);
    if (msix_enabled(pci)) {
        if (vector >= pci->msix_vectors) {
            rc = -EINVAL;
        } else if (msix_vector_masked(pci, vector)) {
            pci->msix_pba[vector / 64] |= 1ull << (vector % 64);
            rc = -EAGAIN;
        } else {
            rc = umdev_dev_irq_trigger(pci->dev, UMDEV_PCI_MSIX_IRQ, vector);
        }
    } else if (msi_enabled(pci)) {
        uint16_t flags = rd16(pci->cfg + pci->msi_off + PCI_MSI_FLAGS);
        unsigned int enabled = 1u << ((flags & PCI_MSI_FLAGS_QSIZE) >> 4);

        if (vector >= enabled || vector >= pci->msi_vectors) {
            rc = -EINVAL;
        } else if (pci->msi_maskable &&
                   (rd32(pci->cfg + msi_mask_off(pci)) & (1u << vector))) {
            pci->msi_pending |= 1u << vector;
            wr32(pci->cfg + msi_mask_off(pci) + 4, pci->msi_pending);
            rc = -EAGAIN;
        } else {
            rc = umdev_dev_irq_trigger(pci->dev, UMDEV_PCI_MSI_IRQ, vector);
        }
    }
    pthread_mutex_unlock(&pci->lock);
    return rc;
}

void
umdev_pci_intx_set(struct umdev_pci *pci, bool level)
{
    pthread_mutex_lock(&pci->lock);
    pci->intx_level = level;
    update_intx(pci);
    pthread_mutex_unlock(&pci->lock);
}

enum umdev_pci_irq_mode
umdev_pci_irq_mode(struct umdev_pci *pci)
{
    enum umdev_pci_irq_mode m = UMDEV_PCI_IRQ_INTX;

    pthread_mutex_lock(&pci->lock);
    if (msix_enabled(pci))
        m = UMDEV_PCI_IRQ_MSIX;
    else if (msi_enabled(pci))
        m = UMDEV_PCI_IRQ_MSI;
    pthread_mutex_unlock(&pci->lock);
    return m;
}

int
umdev_pci_config_read(struct umdev_pci *pci, uint32_t offset, void *buf,
                      size_t len)
{
    if (offset > pci->cfg_size || len > pci->cfg_size - offset)
        return -EINVAL;
    pthread_mutex_lock(&pci->lock);
    memcpy(buf, pci->cfg + offset, len);
    pthread_mutex_unlock(&pci->lock);
    return 0;
}

int
umdev_pci_config_masks(struct umdev_pci *pci, uint32_t offset,
                       uint8_t *wmask, uint8_t *w1c, size_t len)
{
    if (offset > pci->cfg_size || len > pci->cfg_size - offset)
        return -EINVAL;
    /* Masks are fixed once the device is built: no lock needed. */
    if (wmask != NULL)
        memcpy(wmask, pci->wmask + offset, len);
    if (w1c != NULL)
        memcpy(w1c, pci->w1cmask + offset, len);
    return 0;
}

uint32_t
umdev_pci_config_size(const struct umdev_pci *pci)
{
    return pci->cfg_size;
}

void
umdev_pci_reset(struct umdev_pci *pci)
{
    unsigned int v;

    pthread_mutex_lock(&pci->lock);
    memcpy(pci->cfg, pci->power_on, sizeof(pci->cfg));
    pci->intx_level = false;
    pci->msi_pending = 0;
    pci->msix_table_used = false;
    if (pci->msix_off) {
        memset(pci->msix_table, 0,
               (size_t)pci->msix_vectors * PCI_MSIX_ENTRY_SIZE);
        memset(pci->msix_pba, 0, ((pci->msix_vectors + 63) / 64) * 8);
        for (v = 0; v < pci->msix_vectors; v++)
            wr32(pci->msix_table + v * PCI_MSIX_ENTRY_SIZE +
                     PCI_MSIX_ENTRY_VECTOR_CTRL,
                 PCI_MSIX_ENTRY_CTRL_MASKBIT);
    }
    update_intx(pci);
    pthread_mutex_unlock(&pci->lock);
}

static bool
command_bit(struct umdev_pci *pci, uint16_t bit)
{
    bool set;

    pthread_mutex_lock(&pci->lock);
    set = (rd16(pci->cfg + PCI_COMMAND) & bit) != 0;
    pthread_mutex_unlock(&pci->lock);
    return set;
}

bool
umdev_pci_io_enabled(struct umdev_pci *pci)
{
    return command_bit(pci, PCI_COMMAND_IO);
}

bool
umdev_pci_mem_enabled(struct umdev_pci *pci)
{
    return command_bit(pci, PCI_COMMAND_MEMORY);
}

bool
umdev_pci_bus_master(struct umdev_pci *pci)
{
    return command_bit(pci, PCI_COMMAND_MASTER);
}

/*
 * Migration state (docs/PROTOCOL.md "PCI config space state"). All fields
 * little-endian; config space, the MSI-X table and PBA are the bytes the
 * guest reads. The BAR table and the read-only config bits identify the
 * device type; the loader takes only what a guest or the device could
 * have changed.
 */
#define STATE_MAGIC "UMDEVPCI"
#define STATE_HDR 32u
#define STATE_BAR 16u
#define STATE_F_INTX 0x1u      /* the device holds its INTx line high */
#define STATE_F_MSIX_USED 0x2u /* the guest wrote the MSI-X table */
#define STATE_F_ALL (STATE_F_INTX | STATE_F_MSIX_USED)

enum state_bar_kind {
    STATE_BAR_NONE,
    STATE_BAR_IO,
    STATE_BAR_MEM32,
    STATE_BAR_MEM64,
    STATE_BAR_UPPER, /* the high half of the 64-bit BAR before it */
};

static size_t
msix_table_size(const struct umdev_pci *pci)
{
    return (size_t)pci->msix_vectors * PCI_MSIX_ENTRY_SIZE;
}

static size_t
msix_pba_words(const struct umdev_pci *pci)
{
    return (pci->msix_vectors + 63) / 64;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
    unsigned int i;

    for (i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    unsigned int i;

    for (i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static uint32_t
bar_kind(const struct pci_bar *bar)
{
    if (bar->upper)
        return STATE_BAR_UPPER;
    if (!bar->present)
        return STATE_BAR_NONE;
    switch (bar->type) {
    case UMDEV_PCI_BAR_IO:
        return STATE_BAR_IO;
    case UMDEV_PCI_BAR_MEM32:
        return STATE_BAR_MEM32;
    case UMDEV_PCI_BAR_MEM64:
        break;
    }
    return STATE_BAR_MEM64;
}

size_t
umdev_pci_state_size(const struct umdev_pci *pci)
{
    return STATE_HDR + PCI_STD_NUM_BARS * STATE_BAR + pci->cfg_size +
           msix_table_size(pci) + msix_pba_words(pci) * 8;
}

int
umdev_pci_state_save(struct umdev_pci *pci, void *buf, size_t len)
{
    size_t size = umdev_pci_state_size(pci);
    uint8_t *p = buf;
    uint32_t flags = 0;
    unsigned int i;

    if (len < size)
        return -ENOSPC;
    memset(p, 0, STATE_HDR + PCI_STD_NUM_BARS * STATE_BAR);
    memcpy(p, STATE_MAGIC, 8);
    put_le32(p + 8, UMDEV_PCI_STATE_VERSION);
    put_le32(p + 12, (uint32_t)size);
    put_le32(p + 16, pci->cfg_size);
    put_le32(p + 20, pci->msix_vectors);
    for (i = 0; i < PCI_STD_NUM_BARS; i++) {
        const struct pci_bar *bar = &pci->bars[i];
        uint8_t *b = p + STATE_HDR + i * STATE_BAR;

        put_le32(b, bar_kind(bar));
        put_le64(b + 8, bar->present ? bar->size : 0);
    }
    p += STATE_HDR + PCI_STD_NUM_BARS * STATE_BAR;
    pthread_mutex_lock(&pci->lock);
    if (pci->intx_level)
        flags |= STATE_F_INTX;
    if (pci->msix_table_used)
        flags |= STATE_F_MSIX_USED;
    put_le32((uint8_t *)buf + 24, flags);
    memcpy(p, pci->cfg, pci->cfg_size);
    p += pci->cfg_size;
    if (pci->msix_off) {
        memcpy(p, pci->msix_table, msix_table_size(pci));
        p += msix_table_size(pci);
        for (i = 0; i < msix_pba_words(pci); i++)
            put_le64(p + 8 * i, pci->msix_pba[i]);
    }
    pthread_mutex_unlock(&pci->lock);
    return 0;
}

static void __attribute__((format(printf, 3, 4)))
state_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* What a read-only config byte belongs to, for a refusal's message. */
static void
cfg_byte_name(struct umdev_pci *pci, uint32_t off, char *buf, size_t len)
{
    static const struct {
        uint32_t start, end;
        const char *name;
    } hdr[] = {
        { PCI_VENDOR_ID, PCI_VENDOR_ID + 2, "vendor ID" },
        { PCI_DEVICE_ID, PCI_DEVICE_ID + 2, "device ID" },
        { PCI_STATUS, PCI_STATUS + 2, "status" },
        { PCI_REVISION_ID, PCI_REVISION_ID + 1, "revision ID" },
        { PCI_CLASS_PROG, PCI_CLASS_PROG + 3, "class code" },
        { PCI_HEADER_TYPE, PCI_HEADER_TYPE + 1, "header type" },
        { PCI_SUBSYSTEM_VENDOR_ID, PCI_SUBSYSTEM_VENDOR_ID + 2,
          "subsystem vendor ID" },
        { PCI_SUBSYSTEM_ID, PCI_SUBSYSTEM_ID + 2, "subsystem ID" },
        { PCI_CAPABILITY_LIST, PCI_CAPABILITY_LIST + 1, "capability pointer" },
        { PCI_INTERRUPT_PIN, PCI_INTERRUPT_PIN + 1, "interrupt pin" },
    };
    unsigned int i;
    int at, cap = 0;

    if (off >= PCI_BASE_ADDRESS_0 && off < PCI_BASE_ADDRESS_5 + 4) {
        snprintf(buf, len, "BAR%u", (off - PCI_BASE_ADDRESS_0) / 4);
        return;
    }
    for (i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
        if (off >= hdr[i].start && off < hdr[i].end) {
            snprintf(buf, len, "%s", hdr[i].name);
            return;
        }
    }
    /* Capabilities are laid out in chain order, each below the next. */
    for (at = umdev_pci_cap_find(pci, 0, 0); at > 0 && (uint32_t)at <= off;
         at = umdev_pci_cap_find(pci, 0, (unsigned int)at))
        cap = at;
    if (cap > 0 && off < pci->cap_free)
        snprintf(buf, len, "capability 0x%02x at 0x%02x (layout)",
                 pci->cfg[cap], (unsigned int)cap);
    else
        snprintf(buf, len, "read-only config");
}

/* MSI-X vector @v of a loaded state, masked? As msix_vector_masked(). */
static bool
state_msix_masked(const struct umdev_pci *pci, const uint8_t *cfg,
                  const uint8_t *table, bool table_used, unsigned int v)
{
    if (rd16(cfg + pci->msix_off + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_MASKALL)
        return true;
    if (!table_used)
        return false;
    return get_le32(table + v * PCI_MSIX_ENTRY_SIZE +
                    PCI_MSIX_ENTRY_VECTOR_CTRL) &
           PCI_MSIX_ENTRY_CTRL_MASKBIT;
}

/* Check a blob whose header and length were checked; 0 or -EINVAL. */
static int
state_check(struct umdev_pci *pci, const uint8_t *blob, char *err,
            size_t errlen)
{
    const uint8_t *cfg = blob + STATE_HDR + PCI_STD_NUM_BARS * STATE_BAR;
    const uint8_t *table = cfg + pci->cfg_size;
    const uint8_t *pba = table + msix_table_size(pci);
    uint32_t flags = get_le32(blob + 24);
    uint32_t o, msi_pend_off = 0;
    unsigned int i, v;
    char name[64];

    if ((flags & ~STATE_F_ALL) != 0 || get_le32(blob + 28) != 0 ||
        (!pci->msix_off && (flags & STATE_F_MSIX_USED))) {
        state_err(err, errlen, "unknown flags 0x%x or reserved bits set",
                  flags);
        return -EINVAL;
    }
    for (i = 0; i < PCI_STD_NUM_BARS; i++) {
        const struct pci_bar *bar = &pci->bars[i];
        const uint8_t *b = blob + STATE_HDR + i * STATE_BAR;
        uint32_t kind = get_le32(b);
        uint64_t size = get_le64(b + 8);

        if (kind != bar_kind(bar) || get_le32(b + 4) != 0 ||
            size != (bar->present ? bar->size : 0)) {
            state_err(err, errlen,
                      "BAR%u is kind %u of 0x%llx bytes in the stream, "
                      "kind %u of 0x%llx here",
                      i, kind, (unsigned long long)size, bar_kind(bar),
                      (unsigned long long)(bar->present ? bar->size : 0));
            return -EINVAL;
        }
    }
    if (pci->msi_off && pci->msi_maskable)
        msi_pend_off = msi_mask_off(pci) + 4;
    /* Read-only bits are the device type's, except the two the device
     * drives: Status.InterruptStatus and the MSI pending bits. */
    for (o = 0; o < pci->cfg_size; o++) {
        uint8_t ro = (uint8_t) ~(pci->wmask[o] | pci->w1cmask[o]);

        if (o == PCI_STATUS)
            ro &= (uint8_t)~PCI_STATUS_INTERRUPT;
        if (msi_pend_off && o >= msi_pend_off && o < msi_pend_off + 4)
            ro = 0;
        if (((cfg[o] ^ pci->power_on[o]) & ro) != 0) {
            cfg_byte_name(pci, o, name, sizeof(name));
            state_err(err, errlen,
                      "%s differs: config byte 0x%03x is 0x%02x in the "
                      "stream, 0x%02x here (read-only bits 0x%02x)",
                      name, (unsigned int)o, cfg[o], pci->power_on[o], ro);
            return -EINVAL;
        }
    }
    if (!(cfg[PCI_STATUS] & PCI_STATUS_INTERRUPT) != !(flags & STATE_F_INTX)) {
        state_err(err, errlen,
                  "Status.InterruptStatus does not match the INTx level");
        return -EINVAL;
    }
    if (msi_pend_off) {
        uint32_t pend = get_le32(cfg + msi_pend_off);
        uint32_t mask = get_le32(cfg + msi_mask_off(pci));
        uint32_t all =
            pci->msi_vectors == 32 ? 0xffffffffu : (1u << pci->msi_vectors) - 1;

        if ((pend & ~all) != 0) {
            state_err(err, errlen, "MSI pending bits 0x%x past %u vectors",
                      pend, pci->msi_vectors);
            return -EINVAL;
        }
        /* A source delivers a pending vector the moment it is unmasked;
         * one that is unmasked and still pending would be an interrupt
         * owed now, which a stopped device cannot raise. */
        if ((rd16(cfg + pci->msi_off + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_ENABLE) &&
            (pend & ~mask) != 0) {
            state_err(err, errlen, "MSI vectors 0x%x pending but unmasked",
                      pend & ~mask);
            return -EINVAL;
        }
    }
    if (pci->msix_off) {
        bool enabled =
            rd16(cfg + pci->msix_off + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE;

        for (v = 0; v < msix_pba_words(pci) * 64; v++) {
            bool pending = get_le64(pba + 8 * (v / 64)) >> (v % 64) & 1;

            if (!pending)
                continue;
            if (v >= pci->msix_vectors) {
                state_err(err, errlen, "MSI-X pending bit %u past %u vectors",
                          v, pci->msix_vectors);
                return -EINVAL;
            }
            if (enabled && !state_msix_masked(pci, cfg, table,
                                              flags & STATE_F_MSIX_USED, v)) {
                state_err(err, errlen, "MSI-X vector %u pending but unmasked",
                          v);
                return -EINVAL;
            }
        }
    }
    return 0;
}

int
umdev_pci_state_check(struct umdev_pci *pci, const void *buf, size_t len,
                      char *err, size_t errlen)
{
    const uint8_t *blob = buf;
    size_t want = umdev_pci_state_size(pci);
    uint32_t version;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (len < 16 || memcmp(blob, STATE_MAGIC, 8) != 0) {
        state_err(err, errlen, "%s",
                  len < 16 ? "truncated (no header)" : "bad magic");
        return -EINVAL;
    }
    version = get_le32(blob + 8);
    if (version > UMDEV_PCI_STATE_VERSION) {
        state_err(err, errlen, "blob version %u is newer than %u", version,
                  UMDEV_PCI_STATE_VERSION);
        return -ENOTSUP;
    }
    if (version == 0) {
        state_err(err, errlen, "blob version 0");
        return -EINVAL;
    }
    if (get_le32(blob + 12) != len) {
        state_err(err, errlen, "length field %u, %zu bytes given",
                  get_le32(blob + 12), len);
        return -EINVAL;
    }
    if (len < STATE_HDR || get_le32(blob + 16) != pci->cfg_size ||
        get_le32(blob + 20) != pci->msix_vectors) {
        state_err(err, errlen,
                  "config size %u with %u MSI-X vectors in the stream, "
                  "%u with %u here",
                  len < STATE_HDR ? 0 : get_le32(blob + 16),
                  len < STATE_HDR ? 0 : get_le32(blob + 20), pci->cfg_size,
                  pci->msix_vectors);
        return -EINVAL;
    }
    if (len != want) {
        state_err(err, errlen, "%zu bytes, %zu expected", len, want);
        return -EINVAL;
    }
    return state_check(pci, blob, err, errlen);
}

int
umdev_pci_state_load(struct umdev_pci *pci, const void *buf, size_t len,
                     char *err, size_t errlen)
{
    const uint8_t *blob = buf;
    const uint8_t *cfg, *table, *pba;
    uint32_t o, msi_pend_off = 0;
    unsigned int i;
    int rc;

    /* The whole blob, before anything of @pci changes. */
    rc = umdev_pci_state_check(pci, buf, len, err, errlen);
    if (rc < 0)
        return rc;

    cfg = blob + STATE_HDR + PCI_STD_NUM_BARS * STATE_BAR;
    table = cfg + pci->cfg_size;
    pba = table + msix_table_size(pci);
    if (pci->msi_off && pci->msi_maskable)
        msi_pend_off = msi_mask_off(pci) + 4;
    pthread_mutex_lock(&pci->lock);
    for (o = 0; o < pci->cfg_size; o++) {
        uint8_t m = pci->wmask[o] | pci->w1cmask[o];

        pci->cfg[o] = (uint8_t)((pci->cfg[o] & ~m) | (cfg[o] & m));
    }
    pci->intx_level = get_le32(blob + 24) & STATE_F_INTX;
    if (msi_pend_off) {
        pci->msi_pending = get_le32(cfg + msi_pend_off);
        wr32(pci->cfg + msi_pend_off, pci->msi_pending);
    }
    if (pci->msix_off) {
        pci->msix_table_used = get_le32(blob + 24) & STATE_F_MSIX_USED;
        memcpy(pci->msix_table, table, msix_table_size(pci));
        for (i = 0; i < msix_pba_words(pci); i++)
            pci->msix_pba[i] = get_le64(pba + 8 * i);
    }
    /* The status bit and the line as loaded. A migrating device is
     * stopped, so lib/dev holds the interrupt until it runs. */
    update_intx(pci);
    pthread_mutex_unlock(&pci->lock);
    return 0;
}
