/*
 * The accel subdevice's workload for umdev-vmm: every queue kept --depth
 * descriptors deep (MEMMOVE, FILL and COPY_CRC over seeded data, each
 * with a completion record and an interrupt), each result checked byte
 * for byte when reaped. Across the move nothing may be lost (every
 * descriptor completes), nothing done twice (records carry the tag of
 * the descriptor in their slot, each queue's COMPLETED counter and its
 * interrupt count end equal to what was submitted), and every completion
 * comes with its interrupt.
 *
 * The ring helpers of include/umdev/accel_ring.h write guest memory in
 * place (descriptors, zeroed records, TAIL); each such write is told to
 * the VMM with vmm_gwrote() so the shadow and model follow the guest.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "accel.h"
#include "umdev/accel_ring.h"
#include "umdev/pci.h"
#include "vmm.h"

#define BAR0 UMDEV_PCI_BAR0_REGION
#define BAR2 UMDEV_PCI_BAR2_REGION
#define RING(q) (VMM_GPA_BASE + (uint64_t)(q)*0x10000)
#define COMPS(q) (VMM_GPA_BASE + 0x80000 + (uint64_t)(q)*0x10000)
#define DATA (VMM_GPA_BASE + (1u << 20))
#define BUF 4096u /* bytes per buffer; a descriptor moves 1..BUF */

/* What the guest asked of the descriptor in a ring slot. */
struct slot {
    uint64_t tag;
    uint8_t op;
    uint32_t size;
    uint64_t src, dst;
    uint64_t pattern;
    uint32_t seed;
};

struct aq {
    struct accel_ring_drv r;
    uint32_t rsize;
    struct slot *slots;
    uint64_t submitted, reaped, irqs, doorbells;
};

struct acc_wl {
    unsigned int nq, nvec;
    int efd[ACCEL_DEV_MAX_QUEUES + 1];
    struct aq q[ACCEL_DEV_MAX_QUEUES];
    uint64_t next_tag;
    uint64_t bytes_checked, ops[ACCEL_OP_COUNT];
    uint8_t buf[BUF];
};

static uint32_t
crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
    size_t i;
    int k;

    /* Reflected Castagnoli, preset ~seed and inverted at the end
     * (devices/accel/README.md "Descriptors"). */
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* The guest wrote [@gpa, +@len) in place (ring helpers): follow it. */
static void
gwrote(struct vmm *v, uint64_t gpa, size_t len)
{
    const uint8_t *p = vmm_gpa(v, gpa, len);
    uint8_t tmp[ACCEL_DESC_SIZE];

    /* Through vmm_gwrite() so there is one way memory, shadow and model
     * learn of a guest write. */
    memcpy(tmp, p, len);
    vmm_gwrite(v, gpa, tmp, len);
}

static uint32_t
qrd(struct vmm *v, unsigned int q, unsigned int off)
{
    return vmm_rd32(v, BAR0, ACCEL_REG_QUEUE(q) + off);
}

static int
qwr(struct vmm *v, unsigned int q, unsigned int off, uint32_t val)
{
    return vmm_wr32(v, BAR0, ACCEL_REG_QUEUE(q) + off, val);
}

static int
acc_irqs(struct vmm *v, struct umdev_client *c)
{
    struct acc_wl *w = v->wl_priv;
    int rc = umdev_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX,
                                   VFIO_IRQ_SET_DATA_EVENTFD |
                                       VFIO_IRQ_SET_ACTION_TRIGGER,
                                   0, w->nvec, w->efd, NULL);

    if (rc < 0)
        return vmm_fail(v, "SET_IRQS MSI-X: %s", strerror(-rc));
    return 0;
}

static uint64_t
buf_at(struct acc_wl *w, unsigned int q, uint32_t slot, unsigned int which)
{
    return DATA + (((uint64_t)q * w->q[0].rsize + slot) * 2 + which) * BUF;
}

static int
acc_open(struct vmm *v)
{
    struct acc_wl *w = calloc(1, sizeof(*w));
    uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    uint32_t rsize = 1, nq;
    unsigned int i;

    if (w == NULL)
        return vmm_fail(v, "out of memory");
    v->wl_priv = w;
    for (i = 0; i <= ACCEL_DEV_MAX_QUEUES; i++)
        w->efd[i] = -1;
    if (v->intx)
        return vmm_fail(v, "the accel workload drives MSI-X only");
    if (vmm_rd32(v, BAR0, ACCEL_REG_VERSION) != ACCEL_VERSION)
        return vmm_fail(v, "%s is not an accel subdevice", v->src_path);
    nq = vmm_rd32(v, BAR0, ACCEL_REG_NUM_QUEUES);
    if (nq == 0 || nq > ACCEL_DEV_MAX_QUEUES)
        return vmm_fail(v, "NUM_QUEUES reads %u", nq);
    w->nq = v->queues && v->queues < nq ? v->queues : nq;
    w->nvec = nq + 1;
    /* Room for depth descriptors and a record per slot. */
    while (rsize < v->depth)
        rsize <<= 1;
    if (rsize > 1024)
        return vmm_fail(v, "--depth %u: at most 1024 here", v->depth);
    if (DATA + (uint64_t)w->nq * rsize * 2 * BUF > VMM_GPA_BASE + v->mem_size)
        return vmm_fail(v, "guest RAM too small for %u queues at depth %u",
                        w->nq, v->depth);
    for (i = 0; i < w->nvec; i++) {
        w->efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd[i] < 0)
            return vmm_fail(v, "eventfd: %s", strerror(errno));
    }
    if (vmm_wr(v, UMDEV_PCI_CONFIG_REGION, PCI_COMMAND, &cmd, 2) < 0 ||
        acc_irqs(v, v->c) < 0 ||
        vmm_msix_enable(v, BAR0, ACCEL_MSIX_TABLE, w->nvec) < 0 ||
        vmm_wr32(v, BAR0, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_ENABLE) < 0)
        return -1;
    for (i = 0; i < w->nq; i++) {
        struct aq *q = &w->q[i];
        uint64_t base = RING(i);
        uint32_t zero = 0, st;

        q->rsize = rsize;
        q->slots = calloc(rsize, sizeof(*q->slots));
        if (q->slots == NULL)
            return vmm_fail(v, "out of memory");
        vmm_gwrite(v, base + ACCEL_RING_TAIL, &zero, 4);
        accel_ring_drv_init(
            &q->r, vmm_gpa(v, base, accel_ring_bytes(rsize)), rsize,
            vmm_gpa(v, COMPS(i), rsize * ACCEL_COMP_SIZE), COMPS(i));
        if (vmm_wr(v, BAR0, ACCEL_REG_QUEUE(i) + ACCEL_Q_RING_BASE, &base, 8) <
                0 ||
            qwr(v, i, ACCEL_Q_RING_SIZE, rsize) < 0 ||
            qwr(v, i, ACCEL_Q_INT_VECTOR, i) < 0 ||
            qwr(v, i, ACCEL_Q_CTRL, ACCEL_Q_CTRL_ENABLE) < 0)
            return -1;
        /* The ring's device line (HEAD, DOORBELL_NEEDED, WAKE_INDEX):
         * the engine writes it as it goes, even idle. */
        vmm_device_owned(v, base + ACCEL_RING_HEAD, 12);
        st = qrd(v, i, ACCEL_Q_STATUS);
        if (st != ACCEL_QS_ENABLED)
            return vmm_fail(v, "queue %u did not enable: STATUS 0x%x", i, st);
    }
    return 0;
}

/*
 * The descriptor of tag @s->tag, all from the seed: its operation, size,
 * pattern and CRC seed into @s, and into @buf the bytes its destination
 * must hold when done (the source bytes, or FILL's pattern).
 */
static void
plan(struct vmm *v, struct slot *s, uint8_t *buf)
{
    static const uint8_t ops[] = { ACCEL_OP_MEMMOVE, ACCEL_OP_FILL,
                                   ACCEL_OP_COPY_CRC };
    struct vmm_rng r;
    uint32_t i;

    vmm_rng_init(&r, v->seed, s->tag);
    s->op = ops[vmm_rng_next(&r) % sizeof(ops)];
    s->size = 1 + (uint32_t)(vmm_rng_next(&r) % BUF);
    s->pattern = vmm_rng_next(&r);
    s->seed = (uint32_t)vmm_rng_next(&r);
    if (s->op == ACCEL_OP_FILL)
        for (i = 0; i < s->size; i++)
            buf[i] = (uint8_t)(s->pattern >> 8 * (i % 8));
    else
        vmm_rng_fill(&r, buf, s->size);
}

/* Make and post the next descriptor of queue @qi. */
static void
post(struct vmm *v, unsigned int qi)
{
    struct acc_wl *w = v->wl_priv;
    struct aq *q = &w->q[qi];
    uint32_t idx = q->r.tail, si = idx & (q->rsize - 1);
    struct slot *s = &q->slots[si];
    struct accel_desc d;

    s->tag = ++w->next_tag;
    s->src = buf_at(w, qi, si, 0);
    s->dst = buf_at(w, qi, si, 1);
    plan(v, s, w->buf);
    if (s->op != ACCEL_OP_FILL)
        vmm_gwrite(v, s->src, w->buf, s->size);
    d = accel_desc_make(s->op, s->size, s->src, s->dst);
    d.flags |= ACCEL_DF_INTR;
    d.pattern = s->pattern;
    d.crc_seed = s->op == ACCEL_OP_COPY_CRC ? s->seed : 0;
    d.tag = s->tag;
    accel_ring_post(&q->r, &d);
    gwrote(v, RING(qi) + ACCEL_RING_DESCS + (uint64_t)si * ACCEL_DESC_SIZE,
           ACCEL_DESC_SIZE);
    gwrote(v, COMPS(qi) + (uint64_t)si * ACCEL_COMP_SIZE, ACCEL_COMP_SIZE);
    q->submitted++;
}

/* Check the record @c of queue @qi's oldest descriptor and its output. */
static int
check(struct vmm *v, unsigned int qi, const struct accel_comp *c)
{
    struct acc_wl *w = v->wl_priv;
    struct aq *q = &w->q[qi];
    uint32_t idx = q->r.reaped - 1, si = idx & (q->rsize - 1), i;
    struct slot *s = &q->slots[si];
    const uint8_t *got = vmm_gpa(v, s->dst, s->size);

    if (c->status != ACCEL_ST_SUCCESS || c->tag != s->tag ||
        c->opcode != s->op || c->bytes != s->size)
        return vmm_fail(v,
                        "queue %u descriptor %u (tag %" PRIu64
                        "): record status %u tag %" PRIu64
                        " opcode %u bytes %u, expected %u %" PRIu64 " %u %u",
                        qi, idx, s->tag, c->status, c->tag, c->opcode, c->bytes,
                        ACCEL_ST_SUCCESS, s->tag, s->op, s->size);
    /* What the guest asked for, from the seed again: not the source as
     * memory holds it now, which a stray device write might have
     * changed. */
    plan(v, s, w->buf);
    for (i = 0; i < s->size; i++)
        if (got[i] != w->buf[i])
            return vmm_fail(v,
                            "queue %u descriptor %u (tag %" PRIu64
                            ", opcode %u): byte %u of %u at 0x%" PRIx64
                            " is 0x%02x, expected 0x%02x",
                            qi, idx, s->tag, s->op, i, s->size, s->dst + i,
                            got[i], w->buf[i]);
    if (s->op == ACCEL_OP_COPY_CRC &&
        (uint32_t)c->value != crc32c(s->seed, w->buf, s->size))
        return vmm_fail(v,
                        "queue %u descriptor %u: CRC 0x%08x, expected "
                        "0x%08x",
                        qi, idx, (uint32_t)c->value,
                        crc32c(s->seed, w->buf, s->size));
    w->bytes_checked += s->size;
    w->ops[s->op]++;
    vmm_accept(v, s->dst, s->size);
    vmm_accept(v, COMPS(qi) + (uint64_t)si * ACCEL_COMP_SIZE, ACCEL_COMP_SIZE);
    q->reaped++;
    return 0;
}

static void
collect_irqs(struct acc_wl *w, int timeout_ms)
{
    struct pollfd p[ACCEL_DEV_MAX_QUEUES];
    unsigned int i;
    uint64_t n;

    for (i = 0; i < w->nq; i++)
        p[i] = (struct pollfd){ .fd = w->efd[i], .events = POLLIN };
    if (timeout_ms && poll(p, w->nq, timeout_ms) <= 0)
        return;
    for (i = 0; i < w->nq; i++)
        if (read(w->efd[i], &n, sizeof(n)) == sizeof(n))
            w->q[i].irqs += n;
}

/* Reap what completed on every queue. Return: descriptors reaped, or -1. */
static int
reap(struct vmm *v)
{
    struct acc_wl *w = v->wl_priv;
    struct accel_comp c;
    unsigned int i;
    int n = 0;

    /* Interrupts before records: each one counted had its record
     * written first, so the count can never be ahead of the reaping. */
    collect_irqs(w, 0);
    for (i = 0; i < w->nq; i++) {
        while (accel_ring_reap(&w->q[i].r, &c)) {
            if (check(v, i, &c) < 0)
                return -1;
            n++;
        }
        if (w->q[i].irqs > w->q[i].reaped)
            return vmm_fail(v,
                            "queue %u: %" PRIu64 " interrupts for %" PRIu64
                            " completions",
                            i, w->q[i].irqs, w->q[i].reaped);
    }
    return n;
}

static int
kick(struct vmm *v, unsigned int qi)
{
    struct acc_wl *w = v->wl_priv;
    uint32_t one = 1;
    int rc;

    if (!accel_ring_publish(&w->q[qi].r)) {
        gwrote(v, RING(qi) + ACCEL_RING_TAIL, 4);
        return 0;
    }
    gwrote(v, RING(qi) + ACCEL_RING_TAIL, 4);
    /* A posted write, as a VMM forwards a guest's BAR write. */
    rc = umdev_client_region_write_posted(
        v->c, BAR2, (uint64_t)qi * ACCEL_DOORBELL_STRIDE, &one, 4);
    if (rc < 0)
        return vmm_fail(v, "doorbell %u: %s", qi, strerror(-rc));
    w->q[qi].doorbells++;
    return 0;
}

static int
acc_step(struct vmm *v, unsigned long unit)
{
    struct acc_wl *w = v->wl_priv;
    unsigned int i;
    int n;

    (void)unit;
    n = reap(v);
    if (n < 0)
        return -1;
    for (i = 0; i < w->nq; i++) {
        struct aq *q = &w->q[i];
        bool posted = false;

        while (q->submitted - q->reaped < v->depth) {
            post(v, i);
            posted = true;
        }
        if (posted && kick(v, i) < 0)
            return -1;
    }
    /* A unit is a round over the queues; when none had anything done,
     * sleep on the interrupts as a guest would. */
    if (n == 0)
        collect_irqs(w, 5);
    return 0;
}

/* The output of a descriptor the engine completed and the guest has not
 * reaped yet (the vCPUs are paused): reaping it checks every byte. */
static int
acc_corrupt(struct vmm *v, uint64_t *gpa)
{
    struct acc_wl *w = v->wl_priv;
    unsigned int i;

    for (i = 0; i < w->nq; i++) {
        struct aq *q = &w->q[i];
        uint32_t si = q->r.reaped & (q->rsize - 1);

        if (q->r.reaped != q->r.tail &&
            accel_comp_status(&q->r.comps[si]) == ACCEL_ST_SUCCESS) {
            *gpa = q->slots[si].dst + q->slots[si].size / 2;
            return 0;
        }
    }
    return -ENOENT;
}

static int
acc_finish(struct vmm *v)
{
    struct acc_wl *w = v->wl_priv;
    uint64_t t0 = vmm_now_us(), out;
    unsigned int i;

    for (;;) {
        if (reap(v) < 0)
            return -1;
        out = 0;
        for (i = 0; i < w->nq; i++)
            out += w->q[i].submitted - w->q[i].reaped;
        if (out == 0)
            break;
        if (vmm_now_us() - t0 > VMM_TIMEOUT_MS * 1000ull) {
            for (i = 0; i < w->nq; i++)
                if (w->q[i].submitted != w->q[i].reaped)
                    return vmm_fail(
                        v,
                        "queue %u: %" PRIu64 " descriptor(s) never "
                        "completed (HEAD %u, TAIL %u)",
                        i, w->q[i].submitted - w->q[i].reaped,
                        accel_ring_load(w->q[i].r.ring, ACCEL_RING_HEAD),
                        w->q[i].r.tail);
        }
        collect_irqs(w, 5);
    }
    for (i = 0; i < w->nq; i++) {
        struct aq *q = &w->q[i];
        uint64_t done = 0;

        /* The last interrupts may trail the last records. */
        while (q->irqs < q->reaped &&
               vmm_now_us() - t0 < VMM_TIMEOUT_MS * 1000ull)
            collect_irqs(w, 5);
        if (vmm_rd(v, BAR0, ACCEL_REG_QUEUE(i) + ACCEL_Q_COMPLETED, &done, 8) <
            0)
            return -1;
        if (done != q->submitted)
            return vmm_fail(v,
                            "queue %u: COMPLETED reads %" PRIu64 ", %" PRIu64
                            " descriptors submitted",
                            i, done, q->submitted);
        /* HEAD moves after the record (and its interrupt) of the
         * descriptor it passes (devices/accel/README.md, ring order): the
         * last one's may still be on its way. */
        while (accel_ring_load(q->r.ring, ACCEL_RING_HEAD) != q->r.tail &&
               vmm_now_us() - t0 < VMM_TIMEOUT_MS * 1000ull)
            usleep(50);
        if (accel_ring_load(q->r.ring, ACCEL_RING_HEAD) != q->r.tail)
            return vmm_fail(v, "queue %u: HEAD %u, TAIL %u", i,
                            accel_ring_load(q->r.ring, ACCEL_RING_HEAD),
                            q->r.tail);
    }
    /* None may follow. */
    usleep(100 * 1000);
    collect_irqs(w, 0);
    for (i = 0; i < w->nq; i++)
        if (w->q[i].irqs != w->q[i].reaped)
            return vmm_fail(v,
                            "queue %u: %" PRIu64 " interrupts for %" PRIu64
                            " completions",
                            i, w->q[i].irqs, w->q[i].reaped);
    if ((out = vmm_efd_wait(w->efd[w->nvec - 1], 0)) != 0)
        return vmm_fail(v, "%" PRIu64 " error interrupt(s), SWERR_INFO 0x%x",
                        out, vmm_rd32(v, BAR0, ACCEL_REG_SWERR_INFO));
    return 0;
}

static void
acc_summary(struct vmm *v, FILE *f)
{
    struct acc_wl *w = v->wl_priv;
    uint64_t sub = 0, irqs = 0, dbs = 0;
    unsigned int i;

    if (w == NULL)
        return;
    for (i = 0; i < w->nq; i++) {
        sub += w->q[i].submitted;
        irqs += w->q[i].irqs;
        dbs += w->q[i].doorbells;
    }
    fprintf(f,
            ",\"queues\":%u,\"depth\":%u,\"descriptors\":%" PRIu64
            ",\"interrupts\":%" PRIu64 ",\"doorbells\":%" PRIu64
            ",\"bytes_checked\":%" PRIu64 ",\"memmove\":%" PRIu64
            ",\"fill\":%" PRIu64 ",\"copy_crc\":%" PRIu64,
            w->nq, v->depth, sub, irqs, dbs, w->bytes_checked,
            w->ops[ACCEL_OP_MEMMOVE], w->ops[ACCEL_OP_FILL],
            w->ops[ACCEL_OP_COPY_CRC]);
}

static void
acc_close(struct vmm *v)
{
    struct acc_wl *w = v->wl_priv;
    unsigned int i;

    if (w == NULL)
        return;
    for (i = 0; i <= ACCEL_DEV_MAX_QUEUES; i++)
        if (w->efd[i] >= 0)
            close(w->efd[i]);
    for (i = 0; i < ACCEL_DEV_MAX_QUEUES; i++)
        free(w->q[i].slots);
    free(w);
    v->wl_priv = NULL;
}

const struct vmm_workload vmm_wl_accel = {
    .name = "accel",
    .open = acc_open,
    .irqs = acc_irqs,
    .step = acc_step,
    .corrupt = acc_corrupt,
    .finish = acc_finish,
    .summary = acc_summary,
    .close = acc_close,
};
