/*
 * The accel PCI subdevice: the BAR0 register file and BAR2 doorbells
 * (dispatch on the serving thread), the engine-queue glue (DMA through
 * lib/dev holds, interrupts through lib/pci, the software error log), and
 * reset. Register names follow README.md.
 *
 * Locks: irq_lock guards INTSTS, the error log and the INTx level; engine
 * threads take it in their notify/error callbacks. It is never held while
 * calling into the engine, because accel_queue_disable() waits for those
 * very callbacks to return.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "umdev/pci.h"
#include "umdev/profile.h"
#include "umdev/wire.h"

struct swerr {
    uint8_t code;
    uint8_t queue;
    uint8_t opcode;
    uint32_t index;
    uint64_t addr;
};

/* A queue's configuration registers in the migration stream (README
 * "Migration"). */
struct mig_qcfg {
    uint32_t index;
    uint32_t ring_size;
    uint64_t ring_base;
    uint32_t priority;
    uint32_t vector;
    uint32_t coal_count;
    uint32_t coal_usec;
};
_Static_assert(sizeof(struct mig_qcfg) == 32, "mig_qcfg");

struct accel_dev_queue {
    struct accel_dev *d;
    unsigned int index;    /* within the device */
    struct accel_queue *q; /* the engine's; NULL once released */
    /* Registers; serving thread only. */
    uint64_t ring_base;
    uint32_t ring_size;
    uint32_t priority;
    uint32_t vector;
    uint32_t coal_count;
    uint32_t coal_usec;
    uint8_t dev_error; /* ACCEL_QERR_DEV_* of the last enable, or 0 */
    /* The engine's counters at the last reset: COMPLETED and DOORBELLS
     * count from there, so a reset returns them to 0. */
    uint64_t completed_base;
    uint64_t doorbells_base;
    /* The vector in use, read by engine threads. */
    _Atomic uint32_t live_vector;
};

struct accel_dev {
    char *name;
    struct accel_engine *e;
    const struct umdev_logger *log;
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    unsigned int nq;
    unsigned int nvec; /* MSI-X vectors: one per queue + the error one */
    struct accel_dev_queue q[ACCEL_DEV_MAX_QUEUES];
    bool enabled; /* DEVCTL.ENABLE; serving thread */
    /* Migration (serving thread): between stop() and resume(); the queue
     * configuration pre-copy sent, if a pre-copy runs. */
    bool stopped;
    bool have_snap;
    struct mig_qcfg snap[ACCEL_DEV_MAX_QUEUES];

    pthread_mutex_t irq_lock;
    bool irq_lock_init;
    uint32_t intsts;
    struct swerr swerr[ACCEL_SWERR_DEPTH];
    unsigned int swerr_head, swerr_count;
    uint32_t swerr_dropped;
};

/* ------------------------------------------------------------------ */
/* Interrupts and the error log (any thread)                           */

/* irq_lock held: INTx follows INTSTS while MSI-X is off. */
static void
update_intx_locked(struct accel_dev *d)
{
    bool level =
        d->intsts != 0 && umdev_pci_irq_mode(d->pci) == UMDEV_PCI_IRQ_INTX;

    umdev_pci_intx_set(d->pci, level);
}

static void
signal_cause(struct accel_dev *d, unsigned int vector, uint32_t cause)
{
    pthread_mutex_lock(&d->irq_lock);
    d->intsts |= cause;
    if (umdev_pci_irq_mode(d->pci) == UMDEV_PCI_IRQ_MSIX)
        umdev_pci_irq_raise(d->pci, vector); /* masked: left pending */
    else
        update_intx_locked(d);
    pthread_mutex_unlock(&d->irq_lock);
}

static void
q_notify(void *opaque)
{
    struct accel_dev_queue *dq = opaque;

    signal_cause(dq->d, atomic_load(&dq->live_vector),
                 ACCEL_INTSTS_QUEUE(dq->index));
}

static void
q_error(void *opaque, const struct accel_error *err)
{
    struct accel_dev_queue *dq = opaque;
    struct accel_dev *d = dq->d;

    pthread_mutex_lock(&d->irq_lock);
    if (d->swerr_count == ACCEL_SWERR_DEPTH) {
        if (d->swerr_dropped < 0xffff)
            d->swerr_dropped++;
    } else {
        struct swerr *s =
            &d->swerr[(d->swerr_head + d->swerr_count) % ACCEL_SWERR_DEPTH];

        s->code = err->code;
        s->queue = (uint8_t)dq->index;
        s->opcode = err->opcode;
        s->index = err->index;
        s->addr = err->addr;
        d->swerr_count++;
    }
    pthread_mutex_unlock(&d->irq_lock);
    signal_cause(d, d->nq, ACCEL_INTSTS_ERROR);
}

/* ------------------------------------------------------------------ */
/* DMA through lib/dev (engine threads and the serving thread)         */

static int
dma_prot(int prot)
{
    return ((prot & ACCEL_MAP_READ) ? UMDEV_DMA_READ : 0) |
           ((prot & ACCEL_MAP_WRITE) ? UMDEV_DMA_WRITE : 0);
}

_Static_assert(sizeof(struct umdev_dma_hold) <=
                   sizeof(((struct accel_map *)0)->priv),
               "a DMA hold fits in accel_map");

/*
 * umdev_dma_get() takes a range inside one mapping only. When a range
 * crosses into an adjacent mapping, find the longest prefix that one
 * mapping holds (prefixes of a held range are held, so the search is
 * monotonic) and let the engine ask again for the rest.
 */
static int
q_map(void *opaque, uint64_t addr, uint64_t len, int prot, struct accel_map *m)
{
    struct accel_dev_queue *dq = opaque;
    struct umdev_dev *dev = dq->d->dev;
    struct umdev_dma_hold h;
    uint64_t lo, hi;
    int p = dma_prot(prot), rc;

    rc = umdev_dma_get(dev, addr, len, p, &h);
    if (rc == -EFAULT && len > 1) {
        rc = umdev_dma_get(dev, addr, 1, p, &h);
        if (rc < 0)
            return rc;
        umdev_dma_put(dev, &h);
        lo = 1;   /* held */
        hi = len; /* not held */
        while (hi - lo > 1) {
            uint64_t mid = lo + (hi - lo) / 2;

            if (umdev_dma_get(dev, addr, mid, p, &h) == 0) {
                umdev_dma_put(dev, &h);
                lo = mid;
            } else {
                hi = mid;
            }
        }
        len = lo;
        /* The mapping may have gone meanwhile: this is the answer. */
        rc = umdev_dma_get(dev, addr, len, p, &h);
    }
    if (rc < 0)
        return rc;
    m->ptr = h.ptr;
    m->len = len;
    m->span = h.span_iova;
    m->span_len = h.span_len;
    memcpy(m->priv, &h, sizeof(h));
    return 0;
}

static void
q_unmap(void *opaque, struct accel_map *m)
{
    struct accel_dev_queue *dq = opaque;
    struct umdev_dma_hold h;

    memcpy(&h, m->priv, sizeof(h));
    umdev_dma_put(dq->d->dev, &h);
}

/* A write through a hold outside the range it was taken for: lib/dev
 * logged only that range as dirty. */
static void
q_mark(void *opaque, const struct accel_map *hold, uint64_t addr, uint64_t len)
{
    struct accel_dev_queue *dq = opaque;
    struct umdev_dma_hold h;

    memcpy(&h, hold->priv, sizeof(h));
    umdev_dma_mark(dq->d->dev, &h, addr, len);
}

static const struct accel_queue_ops queue_ops = {
    .map = q_map,
    .unmap = q_unmap,
    .mark = q_mark,
    .notify = q_notify,
    .error = q_error,
};

/* ------------------------------------------------------------------ */
/* Queue registers (serving thread)                                    */

/* The queue's registers to reset values; the queue must be stopped. */
static void
queue_regs_reset(struct accel_dev_queue *dq)
{
    if (dq->q != NULL) {
        struct accel_queue_status st;

        accel_queue_status(dq->q, &st);
        dq->completed_base = st.completed;
        dq->doorbells_base = st.doorbells;
    }
    dq->ring_base = 0;
    dq->ring_size = 0;
    dq->priority = 1;
    dq->vector = dq->index;
    dq->coal_count = 1;
    dq->coal_usec = 0;
    dq->dev_error = 0;
    atomic_store(&dq->live_vector, dq->index);
}

static bool
queue_stopped(struct accel_dev_queue *dq)
{
    struct accel_queue_status st;

    accel_queue_status(dq->q, &st);
    return st.state == ACCEL_QS_DISABLED;
}

static void
queue_enable(struct accel_dev_queue *dq)
{
    struct accel_dev *d = dq->d;
    struct accel_queue_config cfg = {
        .ring = dq->ring_base,
        .size = dq->ring_size,
        .priority = dq->priority,
        .coal_count = dq->coal_count,
        .coal_usec = dq->coal_usec,
    };
    int rc;

    if (!queue_stopped(dq))
        return; /* enabled or halted: disable first */
    dq->dev_error = 0;
    if (!d->enabled)
        dq->dev_error = ACCEL_QERR_DEV_DISABLED;
    else if (dq->vector >= d->nvec)
        dq->dev_error = ACCEL_QERR_VECTOR;
    else if (!umdev_pci_bus_master(d->pci))
        dq->dev_error = ACCEL_QERR_NO_BUS_MASTER;
    if (dq->dev_error != 0) {
        umdev_log(d->log, LOG_DEBUG, "%s: queue %u: enable refused (%#x)",
                  d->name, dq->index, dq->dev_error);
        return;
    }
    atomic_store(&dq->live_vector, dq->vector);
    rc = accel_queue_enable(dq->q, &cfg);
    if (rc < 0)
        umdev_log(d->log, LOG_DEBUG, "%s: queue %u: enable failed: %s", d->name,
                  dq->index, strerror(-rc));
}

/* The 32-bit configuration register at @off (README "Queue registers":
 * written while the queue is stopped, read back as written), or NULL. */
static uint32_t *
queue_cfg_reg(struct accel_dev_queue *dq, uint64_t off)
{
    switch (off) {
    case ACCEL_Q_RING_SIZE:
        return &dq->ring_size;
    case ACCEL_Q_PRIORITY:
        return &dq->priority;
    case ACCEL_Q_INT_VECTOR:
        return &dq->vector;
    case ACCEL_Q_COAL_COUNT:
        return &dq->coal_count;
    case ACCEL_Q_COAL_USEC:
        return &dq->coal_usec;
    default:
        return NULL;
    }
}

static uint32_t
queue_rd32(struct accel_dev_queue *dq, uint64_t off)
{
    const uint32_t *cfg = queue_cfg_reg(dq, off);
    struct accel_queue_status st;

    if (cfg != NULL)
        return *cfg;
    if (off == ACCEL_Q_RING_BASE)
        return (uint32_t)dq->ring_base;
    if (off == ACCEL_Q_RING_BASE + 4)
        return (uint32_t)(dq->ring_base >> 32);
    accel_queue_status(dq->q, &st);
    switch (off) {
    case ACCEL_Q_CTRL:
        return st.state != ACCEL_QS_DISABLED ? ACCEL_Q_CTRL_ENABLE : 0;
    case ACCEL_Q_STATUS:
        return (uint32_t)st.state |
               (uint32_t)(dq->dev_error ? dq->dev_error : st.error) << 8;
    case ACCEL_Q_ERR_ADDR:
        return (uint32_t)st.error_addr;
    case ACCEL_Q_ERR_ADDR + 4:
        return (uint32_t)(st.error_addr >> 32);
    case ACCEL_Q_COMPLETED:
        return (uint32_t)(st.completed - dq->completed_base);
    case ACCEL_Q_COMPLETED + 4:
        return (uint32_t)((st.completed - dq->completed_base) >> 32);
    case ACCEL_Q_DOORBELLS:
        return (uint32_t)(st.doorbells - dq->doorbells_base);
    default:
        return 0;
    }
}

static void
queue_wr32(struct accel_dev_queue *dq, uint64_t off, uint32_t v)
{
    struct accel_dev *d = dq->d;
    uint32_t *cfg = queue_cfg_reg(dq, off);

    if (off == ACCEL_Q_CTRL) {
        /* Enable writes HEAD, disable ABORTED records: guest memory,
         * which a stopped device must leave alone (migration v2). */
        if (d->stopped) {
            umdev_log(d->log, LOG_WARNING,
                      "%s: queue %u: CTRL write while migration-stopped "
                      "ignored",
                      d->name, dq->index);
            return;
        }
        if (v & ACCEL_Q_CTRL_ENABLE)
            queue_enable(dq);
        else
            accel_queue_disable(dq->q, true);
        return;
    }
    if (cfg == NULL && off != ACCEL_Q_RING_BASE && off != ACCEL_Q_RING_BASE + 4)
        return; /* read-only or undefined */
    if (!queue_stopped(dq)) {
        /* Configuration is fixed while the queue runs. */
        umdev_log(d->log, LOG_DEBUG,
                  "%s: queue %u: write to %#llx while enabled ignored", d->name,
                  dq->index, (unsigned long long)off);
        return;
    }
    if (cfg != NULL)
        *cfg = v;
    else if (off == ACCEL_Q_RING_BASE)
        dq->ring_base = (dq->ring_base & ~0xffffffffull) | v;
    else
        dq->ring_base = (dq->ring_base & 0xffffffffull) | (uint64_t)v << 32;
}

/* ------------------------------------------------------------------ */
/* Device registers (serving thread)                                   */

/* Stop every queue; @abort: queue-disable semantics (ABORTED records),
 * else reset semantics (no more memory writes, errors cleared). */
static void
stop_queues(struct accel_dev *d, bool abort)
{
    unsigned int i;

    for (i = 0; i < d->nq; i++) {
        if (d->q[i].q == NULL)
            continue;
        if (abort)
            accel_queue_disable(d->q[i].q, true);
        else
            accel_queue_reset(d->q[i].q);
    }
}

/* Device state to power-on values (not config space). */
static void
device_reset(struct accel_dev *d)
{
    unsigned int i;

    stop_queues(d, false);
    for (i = 0; i < d->nq; i++)
        queue_regs_reset(&d->q[i]);
    d->enabled = false;
    pthread_mutex_lock(&d->irq_lock);
    d->intsts = 0;
    d->swerr_head = d->swerr_count = 0;
    d->swerr_dropped = 0;
    update_intx_locked(d);
    pthread_mutex_unlock(&d->irq_lock);
}

static uint32_t
dev_rd32(struct accel_dev *d, uint64_t off)
{
    const struct swerr *s = &d->swerr[d->swerr_head];
    uint32_t v = 0;

    if (off >= ACCEL_REG_QUEUE(0) && off < ACCEL_REG_QUEUE(d->nq))
        return queue_rd32(&d->q[(off - ACCEL_REG_QUEUE(0)) / 0x40],
                          (off - ACCEL_REG_QUEUE(0)) % 0x40);
    switch (off) {
    case ACCEL_REG_VERSION:
        return ACCEL_VERSION;
    case ACCEL_REG_NUM_QUEUES:
        return d->nq;
    case ACCEL_REG_OPCAP:
        return (uint32_t)ACCEL_OPCAP_MASK;
    case ACCEL_REG_OPCAP + 4:
        return (uint32_t)(ACCEL_OPCAP_MASK >> 32);
    case ACCEL_REG_MAX_XFER:
        return accel_engine_max_transfer(d->e);
    case ACCEL_REG_MAX_BATCH:
        return ACCEL_BATCH_MAX;
    case ACCEL_REG_MAX_RING:
        return ACCEL_RING_MAX;
    case ACCEL_REG_FEATURES:
        return ACCEL_FEAT_EVENT_SUPPRESSION | ACCEL_FEAT_COALESCING |
               ACCEL_FEAT_INTX;
    case ACCEL_REG_DEVCTL:
        return d->enabled ? ACCEL_DEVCTL_ENABLE : 0;
    case ACCEL_REG_DEVSTS:
        return d->enabled ? ACCEL_DEVSTS_ENABLED : 0;
    }
    pthread_mutex_lock(&d->irq_lock);
    switch (off) {
    case ACCEL_REG_INTSTS:
        v = d->intsts;
        break;
    case ACCEL_REG_SWERR_COUNT:
        v = d->swerr_count | d->swerr_dropped << 16;
        break;
    case ACCEL_REG_SWERR_INFO:
        if (d->swerr_count > 0)
            v = s->code | (uint32_t)s->queue << 8 | (uint32_t)s->opcode << 16;
        break;
    case ACCEL_REG_SWERR_INDEX:
        if (d->swerr_count > 0)
            v = s->index;
        break;
    case ACCEL_REG_SWERR_ADDR:
        if (d->swerr_count > 0)
            v = (uint32_t)s->addr;
        break;
    case ACCEL_REG_SWERR_ADDR + 4:
        if (d->swerr_count > 0)
            v = (uint32_t)(s->addr >> 32);
        break;
    }
    pthread_mutex_unlock(&d->irq_lock);
    return v;
}

static void
dev_wr32(struct accel_dev *d, uint64_t off, uint32_t v)
{
    if (off >= ACCEL_REG_QUEUE(0) && off < ACCEL_REG_QUEUE(d->nq)) {
        queue_wr32(&d->q[(off - ACCEL_REG_QUEUE(0)) / 0x40],
                   (off - ACCEL_REG_QUEUE(0)) % 0x40, v);
        return;
    }
    switch (off) {
    case ACCEL_REG_DEVCTL:
        if (v & ACCEL_DEVCTL_RESET) {
            device_reset(d);
            return;
        }
        if (d->enabled && !(v & ACCEL_DEVCTL_ENABLE) && d->stopped) {
            /* As for CTRL: the disable would write records. */
            umdev_log(d->log, LOG_WARNING,
                      "%s: DEVCTL write while migration-stopped ignored",
                      d->name);
            return;
        }
        if (d->enabled && !(v & ACCEL_DEVCTL_ENABLE))
            stop_queues(d, true);
        d->enabled = (v & ACCEL_DEVCTL_ENABLE) != 0;
        return;
    case ACCEL_REG_INTSTS:
        pthread_mutex_lock(&d->irq_lock);
        d->intsts &= ~v;
        update_intx_locked(d);
        pthread_mutex_unlock(&d->irq_lock);
        return;
    case ACCEL_REG_SWERR_POP:
        pthread_mutex_lock(&d->irq_lock);
        if (d->swerr_count > 0) {
            d->swerr_head = (d->swerr_head + 1) % ACCEL_SWERR_DEPTH;
            d->swerr_count--;
        }
        pthread_mutex_unlock(&d->irq_lock);
        return;
    default:
        return; /* read-only or undefined: ignored */
    }
}

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    struct accel_dev *d = opaque;
    uint32_t lo, hi = 0;

    if ((count != 4 && count != 8) || off % count != 0)
        return -EINVAL;
    if (is_write) {
        memcpy(&lo, buf, 4);
        if (count == 8)
            memcpy(&hi, (uint8_t *)buf + 4, 4);
        dev_wr32(d, off, lo);
        if (count == 8)
            dev_wr32(d, off + 4, hi);
    } else {
        lo = dev_rd32(d, off);
        memcpy(buf, &lo, 4);
        if (count == 8) {
            hi = dev_rd32(d, off + 4);
            memcpy((uint8_t *)buf + 4, &hi, 4);
        }
    }
    return (ssize_t)count;
}

/* BAR2: doorbells. Posted writes in QEMU, so they must never fail. */
static ssize_t
bar2_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    struct accel_dev *d = opaque;
    uint64_t page = off / ACCEL_DOORBELL_STRIDE;

    if (!is_write) {
        memset(buf, 0, count);
        return (ssize_t)count;
    }
    if (count == 4 && off % ACCEL_DOORBELL_STRIDE == 0 && page < d->nq)
        accel_queue_doorbell(d->q[page].q);
    return (ssize_t)count;
}

/* ------------------------------------------------------------------ */
/* Device hooks and construction                                       */

static int
accel_reset(void *opaque)
{
    struct accel_dev *d = opaque;

    device_reset(d);
    umdev_pci_reset(d->pci);
    pthread_mutex_lock(&d->irq_lock);
    update_intx_locked(d);
    pthread_mutex_unlock(&d->irq_lock);
    return 0;
}

static uint64_t
pow2_at_least(uint64_t v)
{
    uint64_t p = 1;

    while (p < v)
        p <<= 1;
    return p;
}

/* ------------------------------------------------------------------ */
/* Migration (serving thread; README "Migration" is the format)        */

#define ACCEL_MIG_VERSION 1u

/* What both ends must agree on: the guest's view of the function. */
struct mig_config {
    uint32_t nr_queues;
    uint32_t nvec;
    uint32_t version; /* VERSION */
    uint32_t max_xfer;
    uint32_t max_batch;
    uint32_t max_ring;
    uint32_t features;
    uint32_t bar2_size;
    uint64_t opcap;
};
_Static_assert(sizeof(struct mig_config) == 40, "mig_config");

struct mig_swerr {
    uint8_t code, queue, opcode, reserved;
    uint32_t index;
    uint64_t addr;
};

struct mig_dev {
    uint32_t nr_queues;
    uint32_t devctl;
    uint32_t intsts;
    uint32_t swerr_head;
    uint32_t swerr_count;
    uint32_t swerr_dropped;
    struct mig_swerr swerr[ACCEL_SWERR_DEPTH];
};
_Static_assert(sizeof(struct mig_dev) == 24 + 16 * ACCEL_SWERR_DEPTH,
               "mig_dev");

struct mig_queue {
    uint32_t state; /* enum accel_queue_state */
    uint32_t head;
    uint32_t error;     /* enum accel_qerr of the engine */
    uint32_t dev_error; /* ACCEL_QERR_DEV_* of the last enable, or 0 */
    uint64_t error_addr;
    uint64_t completed; /* COMPLETED */
    uint32_t doorbells; /* DOORBELLS */
    uint32_t published; /* DOORBELL_NEEDED = 1 is in the ring */
    /* A BATCH at head paused before this element (0: none). */
    uint32_t batch_next;
    uint32_t batch_ok;     /* its elements that succeeded so far */
    uint32_t batch_failed; /* 1: one of them did not */
    uint32_t reserved;     /* 0 */
};
_Static_assert(sizeof(struct mig_queue) == 56, "mig_queue");

static int
accel_mig_config(void *opaque, struct umdev_mig_buf *out)
{
    struct accel_dev *d = opaque;
    struct mig_config c = {
        .nr_queues = d->nq,
        .nvec = d->nvec,
        .version = ACCEL_VERSION,
        .max_xfer = accel_engine_max_transfer(d->e),
        .max_batch = ACCEL_BATCH_MAX,
        .max_ring = ACCEL_RING_MAX,
        .features = ACCEL_FEAT_EVENT_SUPPRESSION | ACCEL_FEAT_COALESCING |
                    ACCEL_FEAT_INTX,
        .bar2_size =
            (uint32_t)pow2_at_least((uint64_t)d->nq * ACCEL_DOORBELL_STRIDE),
        .opcap = ACCEL_OPCAP_MASK,
    };

    return umdev_mig_buf_put(out, &c, sizeof(c));
}

static void
qcfg_of(const struct accel_dev_queue *dq, struct mig_qcfg *c)
{
    memset(c, 0, sizeof(*c));
    c->index = dq->index;
    c->ring_size = dq->ring_size;
    c->ring_base = dq->ring_base;
    c->priority = dq->priority;
    c->vector = dq->vector;
    c->coal_count = dq->coal_count;
    c->coal_usec = dq->coal_usec;
}

/* Has queue @i's configuration changed since pre-copy sent it? */
static bool
qcfg_dirty(const struct accel_dev *d, unsigned int i)
{
    struct mig_qcfg c;

    if (!d->have_snap)
        return true;
    qcfg_of(&d->q[i], &c);
    return memcmp(&c, &d->snap[i], sizeof(c)) != 0;
}

static int
accel_mig_stop(void *opaque)
{
    struct accel_dev *d = opaque;
    unsigned int i;

    /* Only a pre-copy of this very session may be relied on: one that
     * ended back in RUNNING sent its bytes to nobody. */
    if (umdev_dev_mig_state(d->dev) != VFIO_USER_DEVICE_STATE_PRE_COPY)
        d->have_snap = false;
    for (i = 0; i < d->nq; i++)
        accel_queue_pause(d->q[i].q);
    d->stopped = true;
    return 0;
}

static void
accel_mig_resume(void *opaque)
{
    struct accel_dev *d = opaque;
    unsigned int i;

    d->stopped = false;
    d->have_snap = false;
    /* A loaded INTSTS raises INTx again; MSI-X pending bits wait in the
     * PBA for the guest's unmask (lib/pci). */
    pthread_mutex_lock(&d->irq_lock);
    update_intx_locked(d);
    pthread_mutex_unlock(&d->irq_lock);
    for (i = 0; i < d->nq; i++)
        accel_queue_resume(d->q[i].q);
}

static int
accel_mig_precopy(void *opaque, struct umdev_mig_buf *out)
{
    struct accel_dev *d = opaque;
    uint32_t n = d->nq;
    unsigned int i;
    int rc;

    for (i = 0; i < d->nq; i++)
        qcfg_of(&d->q[i], &d->snap[i]);
    rc = umdev_mig_buf_put(out, &n, sizeof(n));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, d->snap, n * sizeof(d->snap[0]));
    d->have_snap = rc == 0;
    return rc;
}

static uint64_t
accel_mig_precopy_dirty(void *opaque)
{
    struct accel_dev *d = opaque;
    unsigned int i;
    uint64_t n = 0;

    for (i = 0; i < d->nq; i++)
        n += qcfg_dirty(d, i) ? sizeof(struct mig_qcfg) : 0;
    return n;
}

static int
accel_mig_save(void *opaque, struct umdev_mig_buf *out)
{
    struct accel_dev *d = opaque;
    struct mig_dev md = { .nr_queues = d->nq };
    struct mig_queue mq[ACCEL_DEV_MAX_QUEUES];
    struct mig_qcfg cfg[ACCEL_DEV_MAX_QUEUES];
    uint32_t ncfg = 0, pci_len = (uint32_t)umdev_pci_state_size(d->pci);
    uint8_t *pci_state = malloc(pci_len);
    unsigned int i;
    int rc;

    if (pci_state == NULL)
        return -ENOMEM;
    rc = umdev_pci_state_save(d->pci, pci_state, pci_len);
    md.devctl = d->enabled ? ACCEL_DEVCTL_ENABLE : 0;
    pthread_mutex_lock(&d->irq_lock);
    md.intsts = d->intsts;
    md.swerr_head = d->swerr_head;
    md.swerr_count = d->swerr_count;
    md.swerr_dropped = d->swerr_dropped;
    for (i = 0; i < ACCEL_SWERR_DEPTH; i++) {
        md.swerr[i].code = d->swerr[i].code;
        md.swerr[i].queue = d->swerr[i].queue;
        md.swerr[i].opcode = d->swerr[i].opcode;
        md.swerr[i].index = d->swerr[i].index;
        md.swerr[i].addr = d->swerr[i].addr;
    }
    pthread_mutex_unlock(&d->irq_lock);
    memset(mq, 0, sizeof(mq));
    for (i = 0; i < d->nq; i++) {
        struct accel_dev_queue *dq = &d->q[i];
        struct accel_queue_status st;
        struct accel_queue_mig m;

        accel_queue_save(dq->q, &m);
        accel_queue_status(dq->q, &st);
        mq[i].state = m.state;
        mq[i].head = m.head;
        mq[i].error = m.error;
        mq[i].dev_error = dq->dev_error;
        mq[i].error_addr = m.error_addr;
        mq[i].completed = st.completed - dq->completed_base;
        mq[i].doorbells = (uint32_t)(st.doorbells - dq->doorbells_base);
        mq[i].published = m.published;
        mq[i].batch_next = m.batch_next;
        mq[i].batch_ok = m.batch_ok;
        mq[i].batch_failed = m.batch_failed;
        if (qcfg_dirty(d, i))
            qcfg_of(dq, &cfg[ncfg++]);
    }
    if (rc == 0)
        rc = umdev_mig_buf_put(out, &md, sizeof(md));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, mq, d->nq * sizeof(mq[0]));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, &ncfg, sizeof(ncfg));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, cfg, ncfg * sizeof(cfg[0]));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, &pci_len, sizeof(pci_len));
    if (rc == 0)
        rc = umdev_mig_buf_put(out, pci_state, pci_len);
    free(pci_state);
    return rc;
}

/* A list of queue configurations (a count, then records) at *@p: into
 * @cfg by queue, marking @seen. Return: bytes taken, or 0 if malformed. */
static size_t
parse_qcfgs(const struct accel_dev *d, const uint8_t *p, size_t len,
            struct mig_qcfg *cfg, bool *seen, const char **why)
{
    bool here[ACCEL_DEV_MAX_QUEUES] = { false };
    uint32_t n, i;

    if (len < sizeof(n)) {
        *why = "truncated queue configuration";
        return 0;
    }
    memcpy(&n, p, sizeof(n));
    if (n > d->nq || len - sizeof(n) < (size_t)n * sizeof(*cfg)) {
        *why = "queue configuration count out of range";
        return 0;
    }
    for (i = 0; i < n; i++) {
        struct mig_qcfg c;

        memcpy(&c, p + sizeof(n) + i * sizeof(c), sizeof(c));
        if (c.index >= d->nq || here[c.index]) {
            *why = "queue configuration index out of range or repeated";
            return 0;
        }
        here[c.index] = seen[c.index] = true;
        cfg[c.index] = c;
    }
    return sizeof(n) + (size_t)n * sizeof(*cfg);
}

static int
mig_refuse(struct accel_dev *d, const char *why)
{
    umdev_log(d->log, LOG_ERR, "%s: migration state refused: %s", d->name, why);
    return -EINVAL;
}

static int
accel_mig_load(void *opaque, uint32_t version, const void *early,
               size_t early_len, const void *state, size_t len)
{
    struct accel_dev *d = opaque;
    const uint8_t *p = state;
    struct mig_qcfg cfg[ACCEL_DEV_MAX_QUEUES];
    struct accel_queue_mig qm[ACCEL_DEV_MAX_QUEUES];
    struct mig_queue mq[ACCEL_DEV_MAX_QUEUES];
    bool seen[ACCEL_DEV_MAX_QUEUES] = { false };
    const char *why = NULL;
    struct mig_dev md;
    uint32_t pci_len, intsts_ok;
    unsigned int i;
    char err[160];
    size_t n;
    int rc;

    /* Everything is checked before anything changes. */
    if (version != ACCEL_MIG_VERSION)
        return mig_refuse(d, "unknown state version");
    if (early_len != 0) {
        n = parse_qcfgs(d, early, early_len, cfg, seen, &why);
        if (n == 0)
            return mig_refuse(d, why);
        if (n != early_len)
            return mig_refuse(d, "pre-copy data has trailing bytes");
    }
    if (len < sizeof(md) + d->nq * sizeof(mq[0]))
        return mig_refuse(d, "state truncated");
    memcpy(&md, p, sizeof(md));
    memcpy(mq, p + sizeof(md), d->nq * sizeof(mq[0]));
    p += sizeof(md) + d->nq * sizeof(mq[0]);
    len -= sizeof(md) + d->nq * sizeof(mq[0]);
    n = parse_qcfgs(d, p, len, cfg, seen, &why);
    if (n == 0)
        return mig_refuse(d, why);
    p += n;
    len -= n;
    for (i = 0; i < d->nq; i++)
        if (!seen[i])
            return mig_refuse(d, "a queue's configuration is missing");
    if (len < sizeof(pci_len))
        return mig_refuse(d, "config space state truncated");
    memcpy(&pci_len, p, sizeof(pci_len));
    if (len - sizeof(pci_len) != pci_len)
        return mig_refuse(d, "config space state length does not match");
    p += sizeof(pci_len);

    intsts_ok = ACCEL_INTSTS_ERROR | ((1u << d->nq) - 1);
    if (md.nr_queues != d->nq)
        return mig_refuse(d, "queue count differs");
    if ((md.devctl & ~ACCEL_DEVCTL_ENABLE) != 0 || (md.intsts & ~intsts_ok))
        return mig_refuse(d, "DEVCTL or INTSTS bits out of range");
    if (md.swerr_head >= ACCEL_SWERR_DEPTH ||
        md.swerr_count > ACCEL_SWERR_DEPTH || md.swerr_dropped > 0xffff)
        return mig_refuse(d, "error log indices out of range");
    for (i = 0; i < md.swerr_count; i++)
        if (md.swerr[(md.swerr_head + i) % ACCEL_SWERR_DEPTH].queue >= d->nq)
            return mig_refuse(d, "error log entry for a queue out of range");
    for (i = 0; i < d->nq; i++) {
        uint8_t bad;

        memset(&qm[i], 0, sizeof(qm[i]));
        qm[i].state = (enum accel_queue_state)mq[i].state;
        qm[i].error = (uint8_t)mq[i].error;
        qm[i].error_addr = mq[i].error_addr;
        qm[i].head = mq[i].head;
        qm[i].published = mq[i].published != 0;
        qm[i].batch_next = mq[i].batch_next;
        qm[i].batch_ok = mq[i].batch_ok;
        qm[i].batch_failed = mq[i].batch_failed != 0;
        qm[i].cfg = (struct accel_queue_config){
            .ring = cfg[i].ring_base,
            .size = cfg[i].ring_size,
            .priority = cfg[i].priority,
            .coal_count = cfg[i].coal_count,
            .coal_usec = cfg[i].coal_usec,
        };
        bad = mq[i].state > 0xff || mq[i].error > 0xff || mq[i].published > 1 ||
                      mq[i].batch_failed > 1 || mq[i].reserved != 0
                  ? 0xff
                  : accel_queue_mig_check(&qm[i]);
        if (bad == ACCEL_QERR_NONE && mq[i].state != ACCEL_QS_DISABLED &&
            cfg[i].vector >= d->nvec)
            bad = ACCEL_QERR_VECTOR;
        if (bad == ACCEL_QERR_NONE && mq[i].dev_error != 0 &&
            mq[i].dev_error != ACCEL_QERR_DEV_DISABLED &&
            mq[i].dev_error != ACCEL_QERR_VECTOR &&
            mq[i].dev_error != ACCEL_QERR_NO_BUS_MASTER)
            bad = 0xff;
        if (bad != ACCEL_QERR_NONE) {
            umdev_log(d->log, LOG_ERR,
                      "%s: migration state refused: queue %u cannot be in "
                      "that state (%#x)",
                      d->name, i, bad);
            return -EINVAL;
        }
    }
    /* Last of the checks and first of the changes: lib/pci checks all of
     * its state before it takes any. */
    rc = umdev_pci_state_load(d->pci, p, pci_len, err, sizeof(err));
    if (rc < 0) {
        umdev_log(d->log, LOG_ERR,
                  "%s: migration state refused: config space: %s", d->name,
                  err);
        return rc;
    }

    /* Commit: nothing below fails. The queues are paused (stop()). */
    for (i = 0; i < d->nq; i++) {
        struct accel_dev_queue *dq = &d->q[i];
        struct accel_queue_status st;

        accel_queue_reset(dq->q);
        rc = accel_queue_restore(dq->q, &qm[i]);
        assert(rc == 0);
        dq->ring_base = cfg[i].ring_base;
        dq->ring_size = cfg[i].ring_size;
        dq->priority = cfg[i].priority;
        dq->vector = cfg[i].vector;
        dq->coal_count = cfg[i].coal_count;
        dq->coal_usec = cfg[i].coal_usec;
        dq->dev_error = (uint8_t)mq[i].dev_error;
        atomic_store(&dq->live_vector, dq->vector);
        accel_queue_status(dq->q, &st);
        dq->completed_base = st.completed - mq[i].completed;
        dq->doorbells_base = st.doorbells - mq[i].doorbells;
    }
    d->enabled = md.devctl & ACCEL_DEVCTL_ENABLE;
    pthread_mutex_lock(&d->irq_lock);
    d->intsts = md.intsts;
    d->swerr_head = md.swerr_head;
    d->swerr_count = md.swerr_count;
    d->swerr_dropped = md.swerr_dropped;
    for (i = 0; i < ACCEL_SWERR_DEPTH; i++) {
        d->swerr[i].code = md.swerr[i].code;
        d->swerr[i].queue = md.swerr[i].queue;
        d->swerr[i].opcode = md.swerr[i].opcode;
        d->swerr[i].index = md.swerr[i].index;
        d->swerr[i].addr = md.swerr[i].addr;
    }
    pthread_mutex_unlock(&d->irq_lock);
    return 0;
}

static const struct umdev_mig_ops accel_mig_ops = {
    .type = "accel",
    .version = ACCEL_MIG_VERSION,
    .config = accel_mig_config,
    .stop = accel_mig_stop,
    .resume = accel_mig_resume,
    .save = accel_mig_save,
    .load = accel_mig_load,
    .precopy = accel_mig_precopy,
    .precopy_dirty = accel_mig_precopy_dirty,
};

static const struct umdev_dev_ops accel_ops = {
    .reset = accel_reset,
    .mig = &accel_mig_ops,
};

/* ------------------------------------------------------------------ */
/* Mediation profile (docs/CRITERIA.md)                                 */

#define W4 UMDEV_W(4)
#define W48 (UMDEV_W(4) | UMDEV_W(8))

struct reg_desc {
    const char *name;
    uint32_t offset, size, widths, access;
    bool volatile_;
    const char *purpose;
};

/* Read-only registers are declared "rw": the device ignores writes to
 * them as hardware does, and the kit checks that. */
static const struct reg_desc dev_regs[] = {
    { "VERSION", ACCEL_REG_VERSION, 4, W4, UMDEV_PROFILE_RW, false,
      "interface version (writes ignored)" },
    { "NUM_QUEUES", ACCEL_REG_NUM_QUEUES, 4, W4, UMDEV_PROFILE_RW, false,
      "work queues of this subdevice (writes ignored)" },
    { "OPCAP", ACCEL_REG_OPCAP, 8, W48, UMDEV_PROFILE_RW, false,
      "supported opcodes (writes ignored)" },
    { "MAX_XFER", ACCEL_REG_MAX_XFER, 4, W4, UMDEV_PROFILE_RW, false,
      "largest transfer per descriptor (writes ignored)" },
    { "MAX_BATCH", ACCEL_REG_MAX_BATCH, 4, W4, UMDEV_PROFILE_RW, false,
      "largest batch (writes ignored)" },
    { "MAX_RING", ACCEL_REG_MAX_RING, 4, W4, UMDEV_PROFILE_RW, false,
      "largest ring (writes ignored)" },
    { "FEATURES", ACCEL_REG_FEATURES, 4, W4, UMDEV_PROFILE_RW, false,
      "optional features (writes ignored)" },
    { "DEVCTL", ACCEL_REG_DEVCTL, 4, W4, UMDEV_PROFILE_RW, false,
      "device enable and reset" },
    { "DEVSTS", ACCEL_REG_DEVSTS, 4, W4, UMDEV_PROFILE_RW, false,
      "device status (writes ignored)" },
    { "INTSTS", ACCEL_REG_INTSTS, 4, W4, UMDEV_PROFILE_RW, true,
      "interrupt causes, write 1 to clear (INTx)" },
    { "SWERR_COUNT", ACCEL_REG_SWERR_COUNT, 4, W4, UMDEV_PROFILE_RW, true,
      "entries in the software error log (writes ignored)" },
    { "SWERR_POP", ACCEL_REG_SWERR_POP, 4, W4, UMDEV_PROFILE_W, false,
      "drops the oldest error log entry" },
    { "SWERR_ENTRY", ACCEL_REG_SWERR_INFO, 16, W48, UMDEV_PROFILE_RW, true,
      "oldest error log entry: code, queue, opcode, index, address "
      "(writes ignored)" },
};

static const struct reg_desc queue_regs[] = {
    { "RING_BASE", ACCEL_Q_RING_BASE, 8, W48, UMDEV_PROFILE_RW, false,
      "guest address of the descriptor ring" },
    { "RING_SIZE", ACCEL_Q_RING_SIZE, 4, W4, UMDEV_PROFILE_RW, false,
      "descriptors in the ring" },
    { "PRIORITY", ACCEL_Q_PRIORITY, 4, W4, UMDEV_PROFILE_RW, false,
      "share of the engine" },
    { "CTRL", ACCEL_Q_CTRL, 4, W4, UMDEV_PROFILE_RW, false,
      "queue enable/disable" },
    { "STATUS", ACCEL_Q_STATUS, 4, W4, UMDEV_PROFILE_RW, true,
      "queue state and error code (writes ignored)" },
    { "ERR_ADDR", ACCEL_Q_ERR_ADDR, 8, W48, UMDEV_PROFILE_RW, true,
      "what the queue error is about (writes ignored)" },
    { "INT_VECTOR", ACCEL_Q_INT_VECTOR, 4, W4, UMDEV_PROFILE_RW, false,
      "MSI-X vector for completions" },
    { "COAL_COUNT", ACCEL_Q_COAL_COUNT, 4, W4, UMDEV_PROFILE_RW, false,
      "interrupt coalescing: completions per interrupt" },
    { "COAL_USEC", ACCEL_Q_COAL_USEC, 4, W4, UMDEV_PROFILE_RW, false,
      "interrupt coalescing: time bound" },
    { "COMPLETED", ACCEL_Q_COMPLETED, 8, W48, UMDEV_PROFILE_RW, true,
      "descriptors completed since reset (writes ignored)" },
    { "DOORBELLS", ACCEL_Q_DOORBELLS, 4, W4, UMDEV_PROFILE_RW, true,
      "doorbells received since reset (writes ignored)" },
};

#define NDEV_REGS (sizeof(dev_regs) / sizeof(dev_regs[0]))
#define NQUEUE_REGS (sizeof(queue_regs) / sizeof(queue_regs[0]))
#define MAX_PROFILE_REGS (NDEV_REGS + NQUEUE_REGS * ACCEL_DEV_MAX_QUEUES + 2)

static struct umdev_profile_reg
reg_of(const struct reg_desc *r, uint32_t base, const char *name)
{
    return (struct umdev_profile_reg){
        .name = name,
        .offset = base + r->offset,
        .size = r->size,
        .widths = r->widths,
        .access = r->access,
        .is_volatile = r->volatile_,
        .purpose = r->purpose,
    };
}

/* Declare what a guest may reach through the socket: every register
 * above, the MSI-X table and PBA, one doorbell per queue. lib/dev copies
 * it and refuses every other BAR access. */
static int
set_profile(struct accel_dev *d)
{
    struct umdev_profile_reg *r0, r2[ACCEL_DEV_MAX_QUEUES];
    char(*names)[24], type[16];
    struct umdev_profile_region regions[2];
    struct umdev_profile p = {
        .type = type,
        .regions = regions,
        .nregions = 2,
        .data_path = UMDEV_PROFILE_DP_RING,
        .max_msgs_per_io = 0,
        .data_path_unit = "descriptor",
        .data_path_note = "descriptors, indices and completions in guest "
                          "memory; doorbells only to wake a sleeping "
                          "engine",
    };
    size_t n = 0, i, q;
    int rc;

    r0 = calloc(MAX_PROFILE_REGS, sizeof(*r0));
    names = calloc(NQUEUE_REGS * ACCEL_DEV_MAX_QUEUES + ACCEL_DEV_MAX_QUEUES,
                   sizeof(*names));
    if (r0 == NULL || names == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(type, sizeof(type), "accel-%uwq", d->nq);
    for (i = 0; i < NDEV_REGS; i++)
        r0[n++] = reg_of(&dev_regs[i], 0, dev_regs[i].name);
    for (q = 0; q < d->nq; q++) {
        for (i = 0; i < NQUEUE_REGS; i++) {
            char *nm = names[q * NQUEUE_REGS + i];

            snprintf(nm, sizeof(*names), "Q%zu_%s", q, queue_regs[i].name);
            r0[n++] = reg_of(&queue_regs[i], ACCEL_REG_QUEUE(q), nm);
        }
    }
    r0[n++] = (struct umdev_profile_reg){
        .name = "MSIX_TABLE",
        .offset = ACCEL_MSIX_TABLE,
        .size = d->nvec * 16u,
        .widths = W48,
        .access = UMDEV_PROFILE_RW,
        .purpose = "MSI-X table (lib/pci)",
    };
    r0[n++] = (struct umdev_profile_reg){
        .name = "MSIX_PBA",
        .offset = ACCEL_MSIX_PBA,
        .size = 8,
        .widths = W48,
        .access = UMDEV_PROFILE_RW,
        .is_volatile = true,
        .purpose = "MSI-X pending bits (lib/pci; writes ignored)",
    };
    for (q = 0; q < d->nq; q++) {
        char *nm = names[NQUEUE_REGS * ACCEL_DEV_MAX_QUEUES + q];

        snprintf(nm, sizeof(*names), "DOORBELL%zu", q);
        r2[q] = (struct umdev_profile_reg){
            .name = nm,
            .offset = q * ACCEL_DOORBELL_STRIDE,
            .size = 4,
            .widths = W4,
            .access = UMDEV_PROFILE_W,
            .data_path = true,
            .purpose = "wakes the queue's sleeping engine (only when the "
                       "ring says DOORBELL_NEEDED)",
        };
    }
    regions[0] = (struct umdev_profile_region){
        .index = UMDEV_PCI_BAR0_REGION,
        .regs = r0,
        .nregs = n,
    };
    regions[1] = (struct umdev_profile_region){
        .index = UMDEV_PCI_BAR2_REGION,
        .regs = r2,
        .nregs = d->nq,
    };
    rc = umdev_dev_set_profile(d->dev, &p);
out:
    free(r0);
    free(names);
    return rc;
}

int
accel_dev_create(struct accel_engine *e, const struct accel_dev_config *cfg,
                 struct accel_dev **out)
{
    struct umdev_pci_id id = {
        .vendor_id = ACCEL_VENDOR_ID,
        .device_id = ACCEL_DEVICE_ID,
        .subsystem_vendor_id = ACCEL_SUBSYS_VENDOR_ID,
        .revision = ACCEL_REVISION,
        .class_code = ACCEL_CLASS,
        .interrupt_pin = 1, /* INTA#: the fallback without MSI-X */
    };
    struct umdev_dev_info info = {
        .pci = true,
        .ops = &accel_ops,
    };
    struct umdev_region_desc bar0 = {
        .size = ACCEL_BAR0_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar0_access,
    };
    struct umdev_region_desc bar2 = {
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar2_access,
    };
    struct accel_dev *d;
    unsigned int i;
    int rc;

    *out = NULL;
    if (e == NULL || cfg == NULL || cfg->nr_queues == 0 ||
        cfg->nr_queues > ACCEL_DEV_MAX_QUEUES)
        return -EINVAL;
    if (accel_engine_free_queues(e) < cfg->nr_queues)
        return -ENOSPC;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    d->e = e;
    d->log = cfg->log;
    d->nq = cfg->nr_queues;
    d->nvec = d->nq + 1;
    d->name = strdup(cfg->name ? cfg->name : "accel");
    if (d->name == NULL || pthread_mutex_init(&d->irq_lock, NULL) != 0) {
        rc = -ENOMEM;
        goto fail;
    }
    d->irq_lock_init = true;
    for (i = 0; i < d->nq; i++) {
        d->q[i].d = d;
        d->q[i].index = i;
        queue_regs_reset(&d->q[i]);
    }

    info.name = d->name;
    info.opaque = d;
    info.log = d->log;
    id.subsystem_id = (uint16_t)d->nq;
    bar0.opaque = d;
    bar2.opaque = d;
    bar2.size = pow2_at_least((uint64_t)d->nq * ACCEL_DOORBELL_STRIDE);
    rc = umdev_dev_create(&info, &d->dev);
    /* The engine reads rings and buffers in place: guest memory that only
     * messages reach cannot work, and the operator is told why. */
    if (rc == 0)
        umdev_dev_set_needs_shared_memory(d->dev, true);
    if (rc == 0)
        rc = umdev_pci_create(d->dev, &id, &d->pci);
    if (rc == 0)
        rc = umdev_pci_bar_add(d->pci, 0, UMDEV_PCI_BAR_MEM64, false,
                               ACCEL_BAR0_SIZE, &bar0);
    if (rc == 0)
        rc = umdev_pci_bar_add(d->pci, 2, UMDEV_PCI_BAR_MEM64, false, bar2.size,
                               &bar2);
    if (rc == 0)
        rc = umdev_pci_cap_add_pm(d->pci);
    if (rc > 0)
        rc = umdev_pci_cap_add_msix(d->pci, d->nvec, 0, ACCEL_MSIX_TABLE, 0,
                                    ACCEL_MSIX_PBA);
    if (rc >= 0)
        rc = set_profile(d);
    if (rc < 0)
        goto fail;
    /* Queues last: from here engine threads may call back into us. */
    for (i = 0; i < d->nq; i++) {
        rc = accel_queue_claim(e, -1, &queue_ops, &d->q[i], &d->q[i].q);
        if (rc < 0)
            goto fail;
    }
    *out = d;
    return 0;
fail:
    accel_dev_destroy(d);
    return rc;
}

void
accel_dev_destroy(struct accel_dev *d)
{
    unsigned int i;

    if (d == NULL)
        return;
    /* The queues first: after this no engine thread calls us or holds
     * DMA on the device; then the device (its client detaches), then
     * the PCI state its detach may still reach. */
    for (i = 0; i < d->nq; i++) {
        accel_queue_release(d->q[i].q);
        d->q[i].q = NULL;
    }
    umdev_dev_destroy(d->dev);
    umdev_pci_destroy(d->pci);
    if (d->irq_lock_init)
        pthread_mutex_destroy(&d->irq_lock);
    free(d->name);
    free(d);
}

struct umdev_dev *
accel_dev_dev(struct accel_dev *d)
{
    return d->dev;
}

struct umdev_pci *
accel_dev_pci(struct accel_dev *d)
{
    return d->pci;
}

struct accel_queue *
accel_dev_queue(struct accel_dev *d, unsigned int i)
{
    return i < d->nq ? d->q[i].q : NULL;
}
