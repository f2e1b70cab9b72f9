/*
 * The test device's behaviour: register dispatch for BAR0, a hand-built
 * config space (lib/pci replaces this once it exists), DMA commands.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "testdev.h"
#include "umdev/dev_testing.h"
#include "umdev/pci.h"
#include "umdev/profile.h"

struct testdev {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    const struct umdev_logger *log; /* borrowed */
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
    /* Migration: stopped between stop() and resume(); snap is BAR2 as
     * pre-copy sent it (NULL outside a pre-copy), so the final state
     * carries only the pages that changed since. Neither is guest state:
     * power_on() keeps them. */
    bool stopped;
    bool relevel; /* loaded without lib/pci's state: drive the line on
                   * resume */
    uint8_t *snap;
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
        /* Stopped (migration STOP): no guest memory is written. The
         * command is dropped, as a stopped engine would not see it. */
        if (!td->stopped)
            run_dma(td, (uint32_t)v);
        return 0;
    case TESTDEV_REG_IRQ_LEVEL:
        if (td->stopped)
            return 0; /* no interrupt while stopped */
        if (v && !td->irq_level)
            td->irq_raised++;
        td->irq_level = v ? 1 : 0;
        umdev_pci_intx_set(td->pci, td->irq_level != 0);
        return 0;
    case TESTDEV_REG_ERR_TRIGGER:
        if (!td->stopped)
            umdev_dev_irq_trigger(td->dev, UMDEV_PCI_ERR_IRQ, 0);
        return 0;
    case TESTDEV_REG_MSIX_TRIGGER:
        if (!td->stopped)
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
    const struct umdev_logger *log = td->log;

    /* A DMA still waiting for the client ends here: its answer must not
     * land in the reset device. */
    umdev_dma_cancel(dev, td);
    memset(umdev_dev_region_mem(dev, UMDEV_PCI_BAR2_REGION), 0,
           TESTDEV_BAR2_SIZE);
    umdev_pci_reset(pci);
    /* All but dma_buf: zeroing its 64 KiB was a measurable share of a
     * fuzz input (fuzz/dispatch.c power-cycles after each). */
    {
        bool stopped = td->stopped, relevel = td->relevel;
        uint8_t *snap = td->snap;

        memset(td, 0, offsetof(struct testdev, dma_buf));
        td->stopped = stopped;
        td->relevel = relevel;
        td->snap = snap;
    }
    td->dev = dev;
    td->pci = pci;
    td->log = log;
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
    /* A new device runs, with no migration under way. */
    td->stopped = false;
    td->relevel = false;
    free(td->snap);
    td->snap = NULL;
    umdev_dev_mig_power_on(td->dev);
}

/*
 * Migration. The state (format TESTDEV_MIG_VERSION, 2): struct mig_regs,
 * a uint32_t length and that many bytes of lib/pci's state (config space,
 * MSI-X table and PBA: umdev_pci_state_save()), then BAR2 as pages: a
 * uint32_t count, then each page's index (uint32_t) and its 4096 bytes.
 * After a pre-copy (whose data is all of BAR2) only the pages that changed
 * since are sent; without one, every page is. Version 1 was the same
 * without the PCI state: it loads, leaving config space as it is.
 */
#define TESTDEV_MIG_VERSION 2u
#define MIG_PAGE 4096u
#define MIG_PAGES (TESTDEV_BAR2_SIZE / MIG_PAGE)

struct mig_regs {
    uint64_t scratch64;
    uint64_t dma_addr;
    uint32_t scratch;
    uint32_t dma_len;
    uint32_t dma_status;
    uint32_t irq_level;
    uint32_t irq_raised;
    uint32_t resets;
    uint8_t array[TESTDEV_SCRATCH_ARRAY_SIZE];
};
_Static_assert(sizeof(struct mig_regs) == 16 + 24 + 256, "mig_regs");

/* What both ends must agree on: the BARs and vectors the state fits. */
static int
testdev_mig_config(void *opaque, struct umdev_mig_buf *out)
{
    static const uint32_t cfg[] = { TESTDEV_BAR0_SIZE, TESTDEV_BAR2_SIZE,
                                    TESTDEV_MSIX_VECTORS };

    (void)opaque;
    return umdev_mig_buf_put(out, cfg, sizeof(cfg));
}

static int
testdev_mig_stop(void *opaque)
{
    struct testdev *td = opaque;

    /* A DMA through messages waits for the client, which is what is
     * being stopped: refuse until it is done rather than lose it. */
    if (td->dma_phase != DMA_PHASE_IDLE)
        return -EBUSY;
    td->stopped = true;
    return 0;
}

static void
testdev_mig_resume(void *opaque)
{
    struct testdev *td = opaque;

    td->stopped = false;
    free(td->snap);
    td->snap = NULL;
    /* A version 1 state's line, raised now that the device runs. */
    if (td->relevel)
        umdev_pci_intx_set(td->pci, td->irq_level != 0);
    td->relevel = false;
}

static int
testdev_mig_precopy(void *opaque, struct umdev_mig_buf *out)
{
    struct testdev *td = opaque;
    const uint8_t *bar2 = umdev_dev_region_mem(td->dev, UMDEV_PCI_BAR2_REGION);

    if (td->snap == NULL)
        td->snap = malloc(TESTDEV_BAR2_SIZE);
    if (td->snap == NULL)
        return -ENOMEM;
    memcpy(td->snap, bar2, TESTDEV_BAR2_SIZE);
    return umdev_mig_buf_put(out, td->snap, TESTDEV_BAR2_SIZE);
}

static bool
page_changed(const struct testdev *td, const uint8_t *bar2, uint32_t i)
{
    return td->snap == NULL ||
           memcmp(td->snap + i * MIG_PAGE, bar2 + i * MIG_PAGE, MIG_PAGE) != 0;
}

static uint64_t
testdev_mig_precopy_dirty(void *opaque)
{
    struct testdev *td = opaque;
    const uint8_t *bar2 = umdev_dev_region_mem(td->dev, UMDEV_PCI_BAR2_REGION);
    uint64_t n = 0;
    uint32_t i;

    for (i = 0; i < MIG_PAGES; i++)
        n += page_changed(td, bar2, i) ? MIG_PAGE : 0;
    return n;
}

static int
testdev_mig_save(void *opaque, struct umdev_mig_buf *out)
{
    struct testdev *td = opaque;
    const uint8_t *bar2 = umdev_dev_region_mem(td->dev, UMDEV_PCI_BAR2_REGION);
    struct mig_regs r = {
        .scratch64 = td->scratch64,
        .dma_addr = td->dma_addr,
        .scratch = td->scratch,
        .dma_len = td->dma_len,
        .dma_status = td->dma_status,
        .irq_level = td->irq_level,
        .irq_raised = td->irq_raised,
        .resets = td->resets,
    };
    uint32_t i, n = 0, pci_len = (uint32_t)umdev_pci_state_size(td->pci);
    uint8_t *pci_state = malloc(pci_len);
    int rc;

    if (pci_state == NULL)
        return -ENOMEM;
    rc = umdev_pci_state_save(td->pci, pci_state, pci_len);
    memcpy(r.array, td->array, sizeof(r.array));
    for (i = 0; i < MIG_PAGES; i++)
        n += page_changed(td, bar2, i);
    if (rc == 0)
        rc = umdev_mig_buf_put(out, &r, sizeof(r));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, &pci_len, sizeof(pci_len));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, pci_state, pci_len);
    free(pci_state);
    if (rc == 0)
        rc = umdev_mig_buf_put(out, &n, sizeof(n));
    for (i = 0; rc == 0 && i < MIG_PAGES; i++) {
        if (!page_changed(td, bar2, i))
            continue;
        rc = umdev_mig_buf_put(out, &i, sizeof(i));
        if (rc == 0)
            rc = umdev_mig_buf_put(out, bar2 + i * MIG_PAGE, MIG_PAGE);
    }
    return rc;
}

static int
testdev_mig_load(void *opaque, uint32_t version, const void *early,
                 size_t early_len, const void *state, size_t len)
{
    struct testdev *td = opaque;
    uint8_t *bar2 = umdev_dev_region_mem(td->dev, UMDEV_PCI_BAR2_REGION);
    const uint8_t *p = state, *pci_state = NULL;
    bool seen[MIG_PAGES] = { false };
    struct mig_regs r;
    uint32_t i, n, idx, pci_len = 0;
    char err[160];
    int rc;

    /* Check everything before changing anything. */
    if (version != 1 && version != TESTDEV_MIG_VERSION)
        return -EINVAL;
    if (early_len != 0 && early_len != TESTDEV_BAR2_SIZE)
        return -EINVAL;
    if (len < sizeof(r))
        return -EINVAL;
    memcpy(&r, p, sizeof(r));
    p += sizeof(r);
    len -= sizeof(r);
    if (version >= 2) {
        if (len < sizeof(pci_len))
            return -EINVAL;
        memcpy(&pci_len, p, sizeof(pci_len));
        if (len - sizeof(pci_len) < pci_len)
            return -EINVAL;
        pci_state = p + sizeof(pci_len);
        p += sizeof(pci_len) + pci_len;
        len -= sizeof(pci_len) + pci_len;
    }
    if (len < sizeof(n))
        return -EINVAL;
    memcpy(&n, p, sizeof(n));
    if (n > MIG_PAGES || len != sizeof(n) + n * (sizeof(idx) + MIG_PAGE))
        return -EINVAL;
    for (i = 0; i < n; i++) {
        memcpy(&idx, p + sizeof(n) + i * (sizeof(idx) + MIG_PAGE), sizeof(idx));
        if (idx >= MIG_PAGES || seen[idx])
            return -EINVAL;
        seen[idx] = true;
    }
    /* Without a pre-copy every page must have come. */
    if (early_len == 0 && n != MIG_PAGES)
        return -EINVAL;
    if (r.irq_level > 1)
        return -EINVAL;
    if (pci_state != NULL) {
        rc = umdev_pci_state_check(td->pci, pci_state, pci_len, err,
                                   sizeof(err));
        if (rc < 0) {
            umdev_log(td->log, LOG_ERR,
                      "testdev: migrated config space refused: %s", err);
            return rc;
        }
    }

    /* The first change; what follows cannot fail. */
    if (pci_state != NULL) {
        rc = umdev_pci_state_load(td->pci, pci_state, pci_len, NULL, 0);
        if (rc < 0)
            return rc;
    }
    if (early_len != 0)
        memcpy(bar2, early, TESTDEV_BAR2_SIZE);
    for (i = 0; i < n; i++) {
        const uint8_t *pg = p + sizeof(n) + i * (sizeof(idx) + MIG_PAGE);

        memcpy(&idx, pg, sizeof(idx));
        memcpy(bar2 + idx * MIG_PAGE, pg + sizeof(idx), MIG_PAGE);
    }
    td->scratch64 = r.scratch64;
    td->dma_addr = r.dma_addr;
    td->scratch = r.scratch;
    td->dma_len = r.dma_len;
    td->dma_status = r.dma_status;
    td->irq_level = r.irq_level;
    td->irq_raised = r.irq_raised;
    td->resets = r.resets;
    memcpy(td->array, r.array, sizeof(td->array));
    td->dma_phase = DMA_PHASE_IDLE;
    /* lib/pci's state carries the line (and lib/dev holds it until the
     * device runs); a version 1 stream has none, so resume() drives it. */
    td->relevel = pci_state == NULL;
    return 0;
}

static const struct umdev_mig_ops testdev_mig = {
    .type = "testdev",
    .version = TESTDEV_MIG_VERSION,
    .config = testdev_mig_config,
    .stop = testdev_mig_stop,
    .resume = testdev_mig_resume,
    .save = testdev_mig_save,
    .load = testdev_mig_load,
    .precopy = testdev_mig_precopy,
    .precopy_dirty = testdev_mig_precopy_dirty,
};

static const struct umdev_dev_ops testdev_ops = {
    .reset = testdev_reset,
    .mig = &testdev_mig,
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
    td->log = log;
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
    free(td->snap);
    free(td);
}

struct umdev_dev *
testdev_dev(struct testdev *td)
{
    return td->dev;
}
