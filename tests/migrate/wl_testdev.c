/*
 * The test device's workload for umdev-vmm: DMA both ways through BAR2
 * with seeded patterns, every byte checked, and an interrupt per unit.
 *
 * Unit k writes pattern P(k) (length and position vary) into a source
 * buffer and DMAs it into BAR2 (TO_DEVICE); unit k+1 first DMAs BAR2 out
 * into slot k (FROM_DEVICE), checks it is P(k), inverts it in place
 * (INVERT: the device reads and writes guest memory), checks ~P(k), and
 * raises an interrupt it must receive exactly once. So a pattern the
 * source took in comes out of the destination when the move falls
 * between two units, and the SCRATCH register carries a value across
 * too. Slots do not overlap; after the last one they are reused (the
 * model tracks what each holds).
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "testdev.h"
#include "umdev/pci.h"
#include "vmm.h"

#define BAR0 UMDEV_PCI_BAR0_REGION
#define SRC_BUF VMM_GPA_BASE
#define SLOTS_AT (VMM_GPA_BASE + (1u << 20))
#define SLOT_SIZE 0x4000u
#define MAX_LEN 0x3000u
#define MIN_LEN 512u
#define NVEC TESTDEV_MSIX_VECTORS

struct td_wl {
    int efd[NVEC]; /* MSI-X vector i's, or INTx's in [0] */
    unsigned int nefd;
    unsigned long nslots;
    bool pending;
    unsigned long pending_unit;
    uint32_t scratch;
    bool scratch_set;
    uint64_t dma_cmds, dma_bytes, irqs, bytes_checked;
    uint8_t want[MAX_LEN];
};

/* Length, slot position and pattern of unit @k. */
static size_t
unit_pattern(struct vmm *v, unsigned long k, uint8_t *buf, uint64_t *slot)
{
    struct vmm_rng r;
    size_t len;
    struct td_wl *w = v->wl_priv;

    vmm_rng_init(&r, v->seed, k);
    len = MIN_LEN + vmm_rng_next(&r) % (MAX_LEN - MIN_LEN + 1);
    /* Any byte alignment, inside the slot. */
    *slot = SLOTS_AT + (k % w->nslots) * SLOT_SIZE +
            vmm_rng_next(&r) % (SLOT_SIZE - MAX_LEN);
    if (buf)
        vmm_rng_fill(&r, buf, len);
    return len;
}

static int
dma(struct vmm *v, uint64_t addr, uint32_t len, uint32_t cmd)
{
    struct td_wl *w = v->wl_priv;
    uint64_t t0 = vmm_now_us();
    uint32_t st;

    if (vmm_wr(v, BAR0, TESTDEV_REG_DMA_ADDR, &addr, 8) < 0 ||
        vmm_wr32(v, BAR0, TESTDEV_REG_DMA_LEN, len) < 0 ||
        vmm_wr32(v, BAR0, TESTDEV_REG_DMA_CMD, cmd) < 0)
        return -1;
    /* As a driver polls: DMA_STATUS reads busy until the copy is done. */
    while ((st = vmm_rd32(v, BAR0, TESTDEV_REG_DMA_STATUS)) ==
           TESTDEV_DMA_BUSY) {
        if (v->errors)
            return -1;
        if (vmm_now_us() - t0 > VMM_TIMEOUT_MS * 1000ull)
            return vmm_fail(v, "DMA command %u never finished", cmd);
    }
    if (st != 0)
        return vmm_fail(v, "DMA command %u at 0x%" PRIx64 "+%u: status %u", cmd,
                        addr, len, st);
    w->dma_cmds++;
    w->dma_bytes += len;
    return 0;
}

static int
check(struct vmm *v, unsigned long k, uint64_t addr, const uint8_t *want,
      size_t len, const char *what)
{
    struct td_wl *w = v->wl_priv;
    const uint8_t *got = vmm_gpa(v, addr, len);
    size_t i;

    for (i = 0; i < len; i++)
        if (got[i] != want[i])
            return vmm_fail(v,
                            "unit %lu: %s: byte %zu of %zu at 0x%" PRIx64
                            " is 0x%02x, expected 0x%02x",
                            k, what, i, len, addr + i, got[i], want[i]);
    w->bytes_checked += len;
    return 0;
}

/* Raise interrupt @k's vector and receive it exactly once. */
static int
interrupt(struct vmm *v, unsigned long k)
{
    struct td_wl *w = v->wl_priv;
    unsigned int vec = v->intx ? 0 : (unsigned int)(k % NVEC);
    uint64_t n;

    if (v->intx) {
        if (vmm_wr32(v, BAR0, TESTDEV_REG_IRQ_LEVEL, 1) < 0)
            return -1;
    } else if (vmm_wr32(v, BAR0, TESTDEV_REG_MSIX_TRIGGER, vec) < 0) {
        return -1;
    }
    n = vmm_efd_wait(w->efd[vec], VMM_TIMEOUT_MS);
    if (n != 1)
        return vmm_fail(v, "unit %lu: interrupt %u came %" PRIu64 " times", k,
                        vec, n);
    w->irqs++;
    if (v->intx) {
        /* The handler clears the source, then the VMM unmasks the line
         * (vfio masks INTx when it fires). */
        if (vmm_wr32(v, BAR0, TESTDEV_REG_IRQ_LEVEL, 0) < 0)
            return -1;
        n = umdev_client_set_irqs(v->c, VFIO_PCI_INTX_IRQ_INDEX,
                                  VFIO_IRQ_SET_DATA_NONE |
                                      VFIO_IRQ_SET_ACTION_UNMASK,
                                  0, 1, NULL, NULL);
        if (n != 0)
            return vmm_fail(v, "INTx unmask: %s", strerror(-(int)n));
    }
    return 0;
}

/* The second half of unit @k: BAR2 out, checked, inverted, checked. */
static int
complete(struct vmm *v, unsigned long k)
{
    struct td_wl *w = v->wl_priv;
    uint64_t slot;
    size_t len = unit_pattern(v, k, w->want, &slot), i;

    if (dma(v, slot, (uint32_t)len, TESTDEV_DMA_FROM_DEVICE) < 0 ||
        check(v, k, slot, w->want, len, "BAR2 read out") < 0)
        return -1;
    if (dma(v, slot, (uint32_t)len, TESTDEV_DMA_INVERT) < 0)
        return -1;
    for (i = 0; i < len; i++)
        w->want[i] = (uint8_t)~w->want[i];
    if (check(v, k, slot, w->want, len, "inverted in place") < 0)
        return -1;
    vmm_accept(v, slot, len);
    w->pending = false;
    return interrupt(v, k);
}

static int
td_irqs(struct vmm *v, struct umdev_client *c)
{
    struct td_wl *w = v->wl_priv;
    uint32_t index =
        v->intx ? VFIO_PCI_INTX_IRQ_INDEX : VFIO_PCI_MSIX_IRQ_INDEX;
    int rc = umdev_client_set_irqs(
        c, index, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0,
        w->nefd, w->efd, NULL);

    if (rc < 0)
        return vmm_fail(v, "SET_IRQS: %s", strerror(-rc));
    return 0;
}

static int
td_open(struct vmm *v)
{
    struct td_wl *w = calloc(1, sizeof(*w));
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    unsigned int i;

    if (w == NULL)
        return vmm_fail(v, "out of memory");
    v->wl_priv = w;
    w->nslots = (v->mem_size - (SLOTS_AT - VMM_GPA_BASE)) / SLOT_SIZE;
    w->nefd = v->intx ? 1 : NVEC;
    for (i = 0; i < NVEC; i++)
        w->efd[i] = -1;
    for (i = 0; i < w->nefd; i++) {
        w->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd[i] < 0)
            return vmm_fail(v, "eventfd: %s", strerror(errno));
    }
    if (vmm_rd32(v, BAR0, TESTDEV_REG_ID) != TESTDEV_ID_VALUE)
        return vmm_fail(v, "%s is not the test device", v->src_path);
    if (vmm_wr(v, UMDEV_PCI_CONFIG_REGION, PCI_COMMAND, &cmd, 2) < 0 ||
        td_irqs(v, v->c) < 0)
        return -1;
    if (!v->intx &&
        vmm_msix_enable(v, BAR0, TESTDEV_MSIX_TABLE, TESTDEV_MSIX_VECTORS) < 0)
        return -1;
    return 0;
}

static int
td_step(struct vmm *v, unsigned long k)
{
    struct td_wl *w = v->wl_priv;
    uint64_t slot;
    size_t len;
    uint32_t s;

    if (w->pending && complete(v, w->pending_unit) < 0)
        return -1;
    if (w->scratch_set &&
        (s = vmm_rd32(v, BAR0, TESTDEV_REG_SCRATCH)) != w->scratch)
        return vmm_fail(v, "unit %lu: SCRATCH reads 0x%x, 0x%x written", k, s,
                        w->scratch);
    w->scratch = (uint32_t)(k * 2654435761u) ^ 0x5a5a5a5au;
    if (vmm_wr32(v, BAR0, TESTDEV_REG_SCRATCH, w->scratch) < 0)
        return -1;
    w->scratch_set = true;
    len = unit_pattern(v, k, w->want, &slot);
    vmm_gwrite(v, SRC_BUF, w->want, len);
    if (dma(v, SRC_BUF, (uint32_t)len, TESTDEV_DMA_TO_DEVICE) < 0)
        return -1;
    w->pending = true;
    w->pending_unit = k;
    return 0;
}

static int
td_finish(struct vmm *v)
{
    struct td_wl *w = v->wl_priv;
    unsigned int i;

    if (w->pending && complete(v, w->pending_unit) < 0)
        return -1;
    /* Every interrupt was taken as it came: none may follow. */
    for (i = 0; i < w->nefd; i++) {
        uint64_t n = vmm_efd_wait(w->efd[i], 100);

        if (n)
            return vmm_fail(v,
                            "%" PRIu64 " interrupt(s) on vector %u "
                            "nobody raised",
                            n, i);
    }
    return 0;
}

static void
td_summary(struct vmm *v, FILE *f)
{
    struct td_wl *w = v->wl_priv;

    if (w == NULL)
        return;
    fprintf(f,
            ",\"dma_commands\":%" PRIu64 ",\"dma_bytes\":%" PRIu64
            ",\"bytes_checked\":%" PRIu64 ",\"interrupts\":%" PRIu64
            ",\"irq\":\"%s\"",
            w->dma_cmds, w->dma_bytes, w->bytes_checked, w->irqs,
            v->intx ? "intx" : "msix");
}

static void
td_close(struct vmm *v)
{
    struct td_wl *w = v->wl_priv;
    unsigned int i;

    if (w == NULL)
        return;
    for (i = 0; i < NVEC; i++)
        if (w->efd[i] >= 0)
            close(w->efd[i]);
    free(w);
    v->wl_priv = NULL;
}

const struct vmm_workload vmm_wl_testdev = {
    .name = "testdev",
    .open = td_open,
    .irqs = td_irqs,
    .step = td_step,
    .finish = td_finish,
    .summary = td_summary,
    .close = td_close,
};
