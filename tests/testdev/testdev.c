/*
 * The test device's behaviour: register dispatch for BAR0, a hand-built
 * config space (lib/pci replaces this once it exists), DMA commands.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "testdev.h"
#include "umdev/pci.h"
#include "umdev/profile.h"

struct testdev {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    uint32_t scratch;
    uint64_t scratch64;
    uint64_t dma_addr;
    uint32_t dma_len;
    uint32_t dma_status;
    /* The DMA command running, if dma_phase is not IDLE (READ: INVERT's
     * read; LAST: the command's last or only copy), and what it was
     * started with (the guest may rewrite DMA_ADDR/DMA_LEN meanwhile). */
    enum { DMA_PHASE_IDLE, DMA_PHASE_READ, DMA_PHASE_LAST } dma_phase;
    uint32_t dma_cmd;
    uint64_t dma_cur_addr;
    uint32_t dma_cur_len;
    uint32_t irq_level;
    uint32_t irq_raised;
    uint32_t resets;
    uint8_t array[TESTDEV_SCRATCH_ARRAY_SIZE];
    /* INVERT's bytes: scratch that its read fills before anything reads
     * it, so power_on() leaves it as it is (last, for that). */
    uint8_t dma_buf[TESTDEV_BAR2_SIZE];
};

/*
 * The mediation profile: every register a client may touch through the
 * socket. lib/dev refuses the rest (misaligned, wrong width, straddling
 * two registers or a register and the mmappable part of BAR2) before
 * bar0_access() sees it. tests/conformance/profiles/testdev.json is the
 * same contract as the conformance kit reads it.
 */
#define W4 UMDEV_W(4)
#define W48 (UMDEV_W(4) | UMDEV_W(8))
#define RW UMDEV_PROFILE_RW
#define WO UMDEV_PROFILE_W

static const struct umdev_profile_reg testdev_bar0_regs[] = {
    { "ID", TESTDEV_REG_ID, 4, W4, RW, false, false,
      "identification (writes ignored)" },
    { "SCRATCH", TESTDEV_REG_SCRATCH, 4, W4, RW, false, false, "scratch" },
    { "SCRATCH64", TESTDEV_REG_SCRATCH64, 8, W48, RW, false, false,
      "64-bit scratch" },
    { "DMA_ADDR", TESTDEV_REG_DMA_ADDR, 8, W48, RW, true, false,
      "DMA guest address" },
    { "DMA_LEN", TESTDEV_REG_DMA_LEN, 4, W4, RW, false, false, "DMA length" },
    { "DMA_CMD", TESTDEV_REG_DMA_CMD, 4, W4, WO, true, false,
      "starts a DMA transfer" },
    { "DMA_STATUS", TESTDEV_REG_DMA_STATUS, 4, W4, RW, true, false,
      "result of the last DMA (writes ignored)" },
    { "IRQ_LEVEL", TESTDEV_REG_IRQ_LEVEL, 4, W4, RW, false, false,
      "INTx line level" },
    { "IRQ_RAISED", TESTDEV_REG_IRQ_RAISED, 4, W4, RW, false, false,
      "times the line was raised (writes ignored)" },
    { "ERR_TRIGGER", TESTDEV_REG_ERR_TRIGGER, 4, W4, WO, false, false,
      "signals the ERR IRQ" },
    { "RESETS", TESTDEV_REG_RESETS, 4, W4, RW, false, true,
      "device resets since creation (writes ignored)" },
    { "MSIX_TRIGGER", TESTDEV_REG_MSIX_TRIGGER, 4, W4, WO, false, false,
      "raises an MSI-X vector" },
    { "SCRATCH_ARRAY", TESTDEV_SCRATCH_ARRAY, TESTDEV_SCRATCH_ARRAY_SIZE,
      UMDEV_W_ANY | UMDEV_W_BULK, RW, false, false, "byte-addressable scratch" },
    { "MSIX_TABLE", TESTDEV_MSIX_TABLE, TESTDEV_MSIX_VECTORS * 16, W48, RW,
      false, false, "MSI-X table (lib/pci)" },
    { "MSIX_PBA", TESTDEV_MSIX_PBA, 8, W48, RW, false, false,
      "MSI-X pending bits (lib/pci; writes ignored)" },
};

static const struct umdev_profile_reg testdev_bar2_regs[] = {
    { "DMA_BUF", 0, 0x1000, UMDEV_W_ANY | UMDEV_W_BULK, RW, true, false,
      "DMA target page, trapped to shared memory" },
};

static const struct umdev_profile_region testdev_profile_regions[] = {
    { UMDEV_PCI_BAR0_REGION, testdev_bar0_regs,
      sizeof(testdev_bar0_regs) / sizeof(testdev_bar0_regs[0]) },
    { UMDEV_PCI_BAR2_REGION, testdev_bar2_regs,
      sizeof(testdev_bar2_regs) / sizeof(testdev_bar2_regs[0]) },
};

static const struct umdev_profile testdev_profile = {
    .type = "testdev",
    .regions = testdev_profile_regions,
    .nregions = 2,
    .data_path = UMDEV_PROFILE_DP_PIO,
    /* A DMA command is its address, its length and its start. */
    .max_msgs_per_io = 3,
    .data_path_unit = "DMA command",
    .data_path_note = "a test device: one register write starts each DMA",
};

static void dma_done(void *opaque, int rc);

/*
 * Take a step of the running DMA command given the result of the last
 * copy: -EINPROGRESS waits for dma_done(); an error or the last step ends
 * the command with its status; INVERT's read leads to its write.
 */
static void
dma_step(struct testdev *td, int rc)
{
    if (rc == 0 && td->dma_phase == DMA_PHASE_READ &&
        td->dma_cmd == TESTDEV_DMA_INVERT) {
        for (uint32_t i = 0; i < td->dma_cur_len; i++)
            td->dma_buf[i] = (uint8_t)~td->dma_buf[i];
        td->dma_phase = DMA_PHASE_LAST;
        rc = umdev_dma_write_async(td->dev, td->dma_cur_addr, td->dma_buf,
                                   td->dma_cur_len, dma_done, td);
    }
    if (rc == -EINPROGRESS)
        return;
    td->dma_phase = DMA_PHASE_IDLE;
    td->dma_status = (uint32_t)-rc;
}

static void
dma_done(void *opaque, int rc)
{
    dma_step(opaque, rc);
}

static void
run_dma(struct testdev *td, uint32_t cmd)
{
    uint8_t *bar2 = umdev_dev_region_mem(td->dev, UMDEV_PCI_BAR2_REGION);
    int rc;

    /* One command at a time, as on hardware with one DMA engine: a command
     * written while one runs is ignored (DMA_STATUS still reads busy). */
    if (td->dma_phase != DMA_PHASE_IDLE)
        return;
    if (td->dma_len > TESTDEV_BAR2_SIZE) {
        td->dma_status = EINVAL;
        return;
    }
    td->dma_cmd = cmd;
    td->dma_cur_addr = td->dma_addr;
    td->dma_cur_len = td->dma_len;
    td->dma_status = TESTDEV_DMA_BUSY;
    switch (cmd) {
    case TESTDEV_DMA_TO_DEVICE:
        td->dma_phase = DMA_PHASE_LAST;
        rc = umdev_dma_read_async(td->dev, td->dma_cur_addr, bar2,
                                  td->dma_cur_len, dma_done, td);
        break;
    case TESTDEV_DMA_FROM_DEVICE:
        td->dma_phase = DMA_PHASE_LAST;
        rc = umdev_dma_write_async(td->dev, td->dma_cur_addr, bar2,
                                   td->dma_cur_len, dma_done, td);
        break;
    case TESTDEV_DMA_INVERT:
        td->dma_phase = DMA_PHASE_READ;
        rc = umdev_dma_read_async(td->dev, td->dma_cur_addr, td->dma_buf,
                                  td->dma_cur_len, dma_done, td);
        break;
    default:
        rc = -EINVAL;
        break;
    }
    dma_step(td, rc);
}

static int
reg_write(struct testdev *td, uint64_t off, uint64_t v, size_t count)
{
    switch (off) {
    case TESTDEV_REG_SCRATCH:
        td->scratch = (uint32_t)v;
        return 0;
    case TESTDEV_REG_SCRATCH64:
        if (count != 8)
            return -EINVAL;
        td->scratch64 = v;
        return 0;
    case TESTDEV_REG_DMA_ADDR:
        if (count != 8)
            return -EINVAL;
        td->dma_addr = v;
        return 0;
    case TESTDEV_REG_DMA_LEN:
        td->dma_len = (uint32_t)v;
        return 0;
    case TESTDEV_REG_DMA_CMD:
        run_dma(td, (uint32_t)v);
        return 0;
    case TESTDEV_REG_IRQ_LEVEL:
        if (v && !td->irq_level)
            td->irq_raised++;
        td->irq_level = v ? 1 : 0;
        umdev_pci_intx_set(td->pci, td->irq_level != 0);
        return 0;
    case TESTDEV_REG_ERR_TRIGGER:
        umdev_dev_irq_trigger(td->dev, UMDEV_PCI_ERR_IRQ, 0);
        return 0;
    case TESTDEV_REG_MSIX_TRIGGER:
        umdev_pci_irq_raise(td->pci, (unsigned int)v);
        return 0;
    case TESTDEV_REG_ID:
    case TESTDEV_REG_DMA_STATUS:
    case TESTDEV_REG_IRQ_RAISED:
    case TESTDEV_REG_RESETS:
        return 0; /* read-only: writes ignored */
    default:
        return -EINVAL;
    }
}

static int
reg_read(struct testdev *td, uint64_t off, uint64_t *v, size_t count)
{
    switch (off) {
    case TESTDEV_REG_ID:
        *v = TESTDEV_ID_VALUE;
        return 0;
    case TESTDEV_REG_SCRATCH:
        *v = td->scratch;
        return 0;
    case TESTDEV_REG_SCRATCH64:
        *v = count == 8 ? td->scratch64 : (uint32_t)td->scratch64;
        return 0;
    case TESTDEV_REG_DMA_ADDR:
        *v = td->dma_addr;
        return 0;
    case TESTDEV_REG_DMA_LEN:
        *v = td->dma_len;
        return 0;
    case TESTDEV_REG_DMA_STATUS:
        *v = td->dma_status;
        return 0;
    case TESTDEV_REG_IRQ_LEVEL:
        *v = td->irq_level;
        return 0;
    case TESTDEV_REG_IRQ_RAISED:
        *v = td->irq_raised;
        return 0;
    case TESTDEV_REG_RESETS:
        *v = td->resets;
        return 0;
    default:
        return -EINVAL;
    }
}

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count,
            bool is_write)
{
    struct testdev *td = opaque;
    uint64_t v = 0;
    int rc;

    if (off >= TESTDEV_SCRATCH_ARRAY &&
        off + count <= TESTDEV_SCRATCH_ARRAY + TESTDEV_SCRATCH_ARRAY_SIZE) {
        uint8_t *p = td->array + (off - TESTDEV_SCRATCH_ARRAY);

        if (is_write)
            memcpy(p, buf, count);
        else
            memcpy(buf, p, count);
        return (ssize_t)count;
    }
    /* Registers take aligned 4- or 8-byte accesses only. */
    if ((count != 4 && count != 8) || off % count != 0)
        return -EINVAL;
    if (is_write) {
        memcpy(&v, buf, count);
        rc = reg_write(td, off, v, count);
    } else {
        rc = reg_read(td, off, &v, count);
        memcpy(buf, &v, count);
    }
    return rc < 0 ? rc : (ssize_t)count;
}

/* Power-on state, with @resets as the RESETS register. */
static void
power_on(struct testdev *td, uint32_t resets)
{
    struct umdev_dev *dev = td->dev;
    struct umdev_pci *pci = td->pci;

    /* A DMA still waiting for the client ends here: its answer must not
     * land in the reset device. */
    umdev_dma_cancel(dev, td);
    memset(umdev_dev_region_mem(dev, UMDEV_PCI_BAR2_REGION), 0,
           TESTDEV_BAR2_SIZE);
    umdev_pci_reset(pci);
    /* All but dma_buf: zeroing its 64 KiB was a measurable share of a
     * fuzz input (fuzz/dispatch.c power-cycles after each). */
    memset(td, 0, offsetof(struct testdev, dma_buf));
    td->dev = dev;
    td->pci = pci;
    td->resets = resets;
}

static int
testdev_reset(void *opaque)
{
    struct testdev *td = opaque;

    power_on(td, td->resets + 1);
    return 0;
}

void
testdev_power_cycle(struct testdev *td)
{
    power_on(td, 0);
}

static const struct umdev_dev_ops testdev_ops = {
    .reset = testdev_reset,
};

int
testdev_create(const struct umdev_logger *log, struct testdev **out)
{
    static const struct umdev_mmap_area bar2_areas[] = {
        { .offset = 0x1000, .size = TESTDEV_BAR2_SIZE - 0x1000 },
    };
    static const struct umdev_pci_id id = {
        .vendor_id = TESTDEV_VENDOR_ID,
        .device_id = TESTDEV_DEVICE_ID,
        .subsystem_vendor_id = TESTDEV_VENDOR_ID,
        .subsystem_id = TESTDEV_DEVICE_ID,
        .revision = 1,
        .class_code = 0x00ff00, /* unclassified: no guest driver binds */
        .interrupt_pin = 1,
    };
    struct umdev_dev_info info = {
        .name = "testdev",
        .pci = true,
        .ops = &testdev_ops,
        .log = log,
    };
    struct umdev_region_desc bar0 = {
        .size = TESTDEV_BAR0_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar0_access,
    };
    struct umdev_region_desc bar2 = {
        .size = TESTDEV_BAR2_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .shm = true,
        .areas = bar2_areas,
        .nr_areas = 1,
    };
    struct testdev *td;
    int rc;

    *out = NULL;
    td = calloc(1, sizeof(*td));
    if (td == NULL)
        return -ENOMEM;
    info.opaque = td;
    bar0.opaque = td;
    rc = umdev_dev_create(&info, &td->dev);
    if (rc == 0)
        rc = umdev_pci_create(td->dev, &id, &td->pci);
    if (rc == 0)
        rc = umdev_pci_bar_add(td->pci, 0, UMDEV_PCI_BAR_MEM32, false,
                               TESTDEV_BAR0_SIZE, &bar0);
    if (rc == 0)
        rc = umdev_pci_bar_add(td->pci, 2, UMDEV_PCI_BAR_MEM64, true,
                               TESTDEV_BAR2_SIZE, &bar2);
    if (rc == 0)
        rc = umdev_pci_cap_add_pm(td->pci);
    if (rc > 0)
        rc = umdev_pci_cap_add_msix(td->pci, TESTDEV_MSIX_VECTORS, 0,
                                    TESTDEV_MSIX_TABLE, 0, TESTDEV_MSIX_PBA);
    if (rc > 0)
        rc = umdev_dev_set_profile(td->dev, &testdev_profile);
    if (rc < 0)
        goto fail;
    *out = td;
    return 0;
fail:
    testdev_destroy(td);
    return rc;
}

void
testdev_destroy(struct testdev *td)
{
    if (td == NULL)
        return;
    /* The device first: its detach may still reach the PCI state. */
    umdev_dev_destroy(td->dev);
    umdev_pci_destroy(td->pci);
    free(td);
}

struct umdev_dev *
testdev_dev(struct testdev *td)
{
    return td->dev;
}
