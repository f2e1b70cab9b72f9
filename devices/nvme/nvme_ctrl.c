/*
 * The nvme controller (nvme.h, README.md): BAR0 registers and doorbells
 * on the serving thread; queues, admin commands, I/O and completions on
 * the poller thread; the PCI personality and mediation profile.
 *
 * Locking: c->lock guards all controller state except the doorbell
 * mailboxes (atomics the serving thread fills without the lock and the
 * poller drains). The poller holds the lock for a whole pass over the
 * queues and drops it between passes and while it sleeps; the serving
 * thread takes it for every register access but the doorbells, raising
 * want_lock first so a busy poller yields.
 *
 * Controller states (3.6, 3.7): disabled (CC.EN 0, CSTS.RDY 0) ->
 * running (EN 1, RDY 1) -> [shutting down (SHST 01b) -> shut down (SHST
 * 10b, queues no longer processed)] -> disabled by CC.EN 0 (controller
 * reset: in-flight I/O is waited for and dropped, queues deleted). A
 * queue-memory fault sets CSTS.CFS and stops processing until reset.
 * Across all of them, migration's stop() parks the poller (in-flight I/O
 * completed and posted first) until resume(); load() replaces the state
 * of a stopped controller.
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "nvme.h"
#include "nvme_cmd.h"
#include "umdev/profile.h"
#include "umdev/wire.h"

/* Commands taken from one queue per pass: the queues take turns. */
#define SQ_BATCH 32u
/* Guest mappings one request may span (PRP pages are translated through
 * them; guest RAM is a handful of mappings). */
#define REQ_HOLDS 8u
#define MAX_SEGS (NVME_MAX_XFER / NVME_PAGE_SIZE + 1u)
#define MAX_IOV (MAX_SEGS + REQ_HOLDS)
#define NR_REQS NVME_BE_DEPTH
#define TAG_SHUTDOWN (1ull << 32)
#define DB_NEW (1u << 31)
/* The composite temperature reported: there is no sensor (README). */
#define NVME_TEMP_KELVIN 293u
#define NVME_WCTEMP 343u
#define NVME_CCTEMP 358u

struct sq {
    bool live;
    uint16_t size, cqid, head, tail;
    uint64_t base;
    unsigned int inflight; /* fetched, completion not posted */
    _Atomic uint32_t db;   /* MMIO SQyTDBL: DB_NEW | value */
};

struct cq {
    bool live, ien, phase;
    uint16_t size, iv, head, tail;
    uint64_t base;
    unsigned int nsq;      /* SQs posting here */
    unsigned int reserved; /* completions owed to fetched commands */
    unsigned int pending;  /* posted, interrupt not raised yet */
    uint64_t first_ns;     /* when the oldest of those was posted */
    _Atomic uint32_t db;   /* MMIO CQyHDBL: DB_NEW | value */
};

struct hold {
    uint64_t iova; /* what was asked for: ptr is its host address */
    struct umdev_dma_hold h;
};

struct req {
    bool used;
    uint16_t sqid, cid;
    uint32_t nsid; /* the command's, for the Error Information log */
    struct nvme_io io;
    unsigned int ops; /* backend operations outstanding */
    uint16_t status;
    unsigned int nholds, niov;
    struct hold holds[REQ_HOLDS];
    struct iovec iov[MAX_IOV];
};

struct err_entry {
    uint64_t count;
    uint16_t sqid, cid, status;
    uint32_t nsid;
};

struct nvme_ctrl {
    char *name;
    char type[32];
    const struct umdev_logger *log;
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    struct nvme_be *be;
    unsigned int nq; /* I/O queue pairs offered */
    struct nvme_geom geom;
    uint8_t uuid[16];
    uint8_t eui64[8], nguid[16];
    char serial[21];
    uint64_t poll_ns; /* the window now: poll_min_ns..poll_max_ns */
    uint64_t poll_min_ns, poll_max_ns;
    uint64_t created_ns;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    bool lock_init;
    int wake_efd;
    _Atomic bool sleeping;
    _Atomic bool sq_rung; /* a submission doorbell since the poller slept */
    _Atomic unsigned int want_lock;
    bool stop;

    /* Registers. */
    uint32_t cc, csts, aqa, intms;
    uint64_t asq, acq;
    bool running;     /* queues processed */
    bool shn_pending; /* shutdown requested, not complete */
    bool shn_flushing;

    struct sq sq[NVME_MAX_QUEUES];
    struct cq cq[NVME_MAX_QUEUES];
    struct req *reqs;
    unsigned int nreqs_used;
    /* An I/O submission queue whose head command needs more backend
     * slots than are free (a Dataset Management of many ranges): until
     * it gets them no other queue starts I/O, or busy neighbours could
     * keep the room below its need for ever. 0: none. */
    uint16_t room_waiter;
    uint8_t *scratch; /* admin data and DSM ranges; poller */
    struct nvme_range ranges[NVME_DSM_MAX_RANGES];

    /* Features (5.27.1). */
    uint32_t arbitration, vwc, irq_coalesce, async_cfg, write_atomic;
    uint32_t nsq_alloc, ncq_alloc;      /* 0-based */
    bool coalesce_off[NVME_MAX_QUEUES]; /* Interrupt Vector Config CD */
    uint16_t temp_over, temp_under;

    /* Doorbell Buffer Config. */
    bool dbbuf;
    uint64_t dbbuf_db, dbbuf_ei;

    /* Asynchronous events (5.2). */
    uint16_t aer_cid[NVME_AERL + 1];
    unsigned int naer;
    uint32_t aer_pending; /* bit: event info of type Error */
    bool aer_error_masked;
    _Atomic uint32_t bad_db; /* bit 0: bad register; 1: bad value */

    /* Logs. */
    struct err_entry errlog[NVME_ERROR_LOG_ENTRIES];
    uint64_t err_count;
    uint64_t units_read, units_written; /* bytes, for SMART */
    uint64_t host_reads, host_writes, media_errors, unsafe_shutdowns;
    uint64_t busy_ns;

    uint64_t power_on_prior_ns; /* power-on time before a migration */
    unsigned int mig_stop_timeout_ms;

    /* Migration (README "Migration"). mig_stopped: between stop() and
     * resume() nothing is fetched, posted, raised or written. mig_loaded:
     * the state came from a load and has not run yet, so a client leaving
     * does not reset it (the VMM attaches to the destination after the
     * load). mig_meta: what precopy() sent this saving session, NULL when
     * none did. */
    bool mig_stopped, mig_loaded;
    uint8_t *mig_meta;

    /* Counters (nvme_ctrl_stats). */
    struct nvme_ctrl_stats st;
    _Atomic uint64_t doorbells;
};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
lock_ctrl(struct nvme_ctrl *c)
{
    atomic_fetch_add(&c->want_lock, 1);
    pthread_mutex_lock(&c->lock);
    atomic_fetch_sub(&c->want_lock, 1);
}

static void
wake(struct nvme_ctrl *c)
{
    uint64_t one = 1;

    if (write(c->wake_efd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is full, the poller wakes anyway. */
    }
}

/* ------------------------------------------------------------------ */
/* Guest memory                                                        */

/* For the PRP walk: lists are read with the synchronous DMA API. */
static int
mem_read(void *opaque, uint64_t addr, void *buf, size_t len)
{
    struct nvme_ctrl *c = opaque;

    return umdev_dma_read(c->dev, addr, buf, len);
}

static void
holds_put(struct nvme_ctrl *c, struct hold *holds, unsigned int *n)
{
    unsigned int i;

    for (i = 0; i < *n; i++)
        umdev_dma_put(c->dev, &holds[i].h);
    *n = 0;
}

/*
 * Translate the guest range [addr, addr+len) into host iovecs, reusing a
 * hold whose mapping covers it, else taking one more. Pieces are at most
 * a page so that a range crossing from one mapping into the next splits
 * where they meet. Return: 0, or -EFAULT/-EACCES/-ENOTSUP/-E2BIG.
 */
static int
translate(struct nvme_ctrl *c, uint64_t addr, uint64_t len, int prot,
          struct hold *holds, unsigned int *nholds, struct iovec *iov,
          unsigned int *niov, unsigned int maxiov)
{
    while (len > 0) {
        uint64_t chunk = NVME_PAGE_SIZE - (addr & (NVME_PAGE_SIZE - 1));
        struct hold *h = NULL;
        uint8_t *p;
        unsigned int i;
        int rc;

        if (chunk > len)
            chunk = len;
        for (i = 0; i < *nholds; i++) {
            struct umdev_dma_hold *d = &holds[i].h;

            /* Without sums that wrap: a page at the top of the address
             * space ends at 0, which is "below" any span's end. */
            if (addr - d->span_iova < d->span_len &&
                chunk <= d->span_len - (addr - d->span_iova)) {
                h = &holds[i];
                break;
            }
        }
        if (h == NULL) {
            if (*nholds == REQ_HOLDS)
                return -E2BIG;
            h = &holds[*nholds];
            rc = umdev_dma_get(c->dev, addr, chunk, prot, &h->h);
            if (rc < 0)
                return rc;
            h->iova = addr;
            (*nholds)++;
        } else if (prot & UMDEV_DMA_WRITE) {
            /* The get marked only the piece it was taken for: dirty
             * logging must see this one too (it will be written). */
            umdev_dma_mark(c->dev, &h->h, addr, chunk);
        }
        /* Inside the held mapping, host addresses run parallel to guest
         * ones (umdev_dma_hold's span), below the address asked for as
         * well as above it: a signed offset. */
        p = (uint8_t *)h->h.ptr + ((int64_t)addr - (int64_t)h->iova);
        if (*niov > 0 &&
            (uint8_t *)iov[*niov - 1].iov_base + iov[*niov - 1].iov_len == p)
            iov[*niov - 1].iov_len += chunk;
        else if (*niov == maxiov)
            return -E2BIG;
        else
            iov[(*niov)++] = (struct iovec){ .iov_base = p, .iov_len = chunk };
        addr += chunk;
        len -= chunk;
    }
    return 0;
}

/* Status for a failed translation: guest addresses the device cannot
 * reach are a Data Transfer Error (4.6.1.2.1). */
static uint16_t
dma_status(int rc)
{
    return rc == -E2BIG ? NVME_SC_INTERNAL : NVME_SC_DATA_XFER_ERROR;
}

/*
 * The iovecs of a PRP-described transfer, with every page held, so a
 * command that fails here has touched nothing.
 */
static uint16_t
map_prps(struct nvme_ctrl *c, uint64_t prp1, uint64_t prp2, uint64_t len,
         int prot, struct hold *holds, unsigned int *nholds, struct iovec *iov,
         unsigned int *niov)
{
    struct nvme_seg segs[MAX_SEGS];
    size_t nsegs, i;
    uint16_t st;
    int rc;

    *nholds = 0;
    *niov = 0;
    st = nvme_prp_walk(prp1, prp2, len, NVME_PAGE_SIZE, mem_read, c, segs,
                       MAX_SEGS, &nsegs);
    if (st != NVME_SC_SUCCESS)
        return st;
    for (i = 0; i < nsegs; i++) {
        rc = translate(c, segs[i].addr, segs[i].len, prot, holds, nholds, iov,
                       niov, MAX_IOV);
        if (rc < 0) {
            holds_put(c, holds, nholds);
            return dma_status(rc);
        }
    }
    return NVME_SC_SUCCESS;
}

/* Copy @len bytes between @buf and a command's PRPs (admin data). */
static uint16_t
xfer(struct nvme_ctrl *c, const struct nvme_sqe *s, void *buf, uint64_t len,
     bool to_guest)
{
    struct hold holds[REQ_HOLDS];
    struct iovec iov[MAX_IOV];
    unsigned int nholds, niov, i;
    uint8_t *p = buf;
    uint16_t st;

    st = map_prps(c, s->prp1, s->prp2, len,
                  to_guest ? UMDEV_DMA_WRITE : UMDEV_DMA_READ, holds, &nholds,
                  iov, &niov);
    if (st != NVME_SC_SUCCESS)
        return st;
    for (i = 0; i < niov; i++) {
        if (to_guest)
            memcpy(iov[i].iov_base, p, iov[i].iov_len);
        else
            memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    holds_put(c, holds, &nholds);
    return NVME_SC_SUCCESS;
}

/* A fault on queue memory: the controller cannot go on (3.1.3.6 CFS). */
static void
fatal(struct nvme_ctrl *c, const char *what, uint64_t addr, int rc)
{
    if (!(c->csts & NVME_CSTS_CFS))
        umdev_log(c->log, LOG_ERR,
                  "%s: %s at guest address %#llx failed (%s): controller "
                  "fatal status set until the guest resets it",
                  c->name, what, (unsigned long long)addr, strerror(-rc));
    c->csts |= NVME_CSTS_CFS;
    c->running = false;
}

/* ------------------------------------------------------------------ */
/* Interrupts                                                          */

static void
update_intx(struct nvme_ctrl *c)
{
    bool level = false;
    unsigned int i;

    /* Stopped for migration, the line stays as it was: resume()
     * recomputes it. */
    if (c->mig_stopped)
        return;
    if (umdev_pci_irq_mode(c->pci) == UMDEV_PCI_IRQ_INTX && !(c->intms & 1)) {
        for (i = 0; i <= c->nq; i++) {
            struct cq *q = &c->cq[i];

            if (q->live && q->ien && q->head != q->tail)
                level = true;
        }
    }
    umdev_pci_intx_set(c->pci, level);
}

static void
raise_cq(struct nvme_ctrl *c, struct cq *q)
{
    enum umdev_pci_irq_mode mode = umdev_pci_irq_mode(c->pci);

    assert(!c->mig_stopped);
    q->pending = 0;
    if (!q->ien)
        return;
    c->st.irqs++;
    if (mode == UMDEV_PCI_IRQ_MSIX) {
        umdev_pci_irq_raise(c->pci, q->iv);
    } else if (mode == UMDEV_PCI_IRQ_MSI) {
        /* INTMS masks MSI vectors (3.1.3.3); a masked one fires on
         * INTMC through update_msi(). */
        if (!(c->intms & (1u << (q->iv & 31))))
            umdev_pci_irq_raise(c->pci, q->iv);
    } else {
        update_intx(c);
    }
}

/* Raise what coalescing held back once it is due; return the time of
 * the next deadline (0: none). Aggregation applies to I/O queues only
 * (5.27.1.8). */
static uint64_t
flush_irqs(struct nvme_ctrl *c, uint64_t now)
{
    uint32_t thr = (c->irq_coalesce & 0xff) + 1;
    uint64_t time_ns = ((c->irq_coalesce >> 8) & 0xff) * 100000ull;
    uint64_t next = 0;
    unsigned int i;

    for (i = 0; i <= c->nq; i++) {
        struct cq *q = &c->cq[i];
        uint64_t due;

        if (!q->live || q->pending == 0)
            continue;
        if (i == 0 || c->coalesce_off[q->iv < NVME_MAX_QUEUES ? q->iv : 0] ||
            q->pending >= thr || time_ns == 0 || now - q->first_ns >= time_ns) {
            raise_cq(c, q);
            continue;
        }
        due = q->first_ns + time_ns;
        if (next == 0 || due < next)
            next = due;
    }
    return next;
}

/* ------------------------------------------------------------------ */
/* Completions                                                         */

static void
log_error(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid, uint16_t status,
          uint32_t nsid)
{
    struct err_entry *e;

    c->err_count++;
    memmove(&c->errlog[1], &c->errlog[0],
            sizeof(c->errlog[0]) * (NVME_ERROR_LOG_ENTRIES - 1));
    e = &c->errlog[0];
    e->count = c->err_count;
    e->sqid = sqid;
    e->cid = cid;
    e->status = status;
    e->nsid = nsid;
}

/* Post a completion to CQ @cqid (4.6); false on a queue-memory fault.
 * @nsid: the command's, which an error's log entry names. */
static bool
post(struct nvme_ctrl *c, uint16_t cqid, uint16_t sqid, uint16_t cid,
     uint16_t status, uint32_t dw0, uint32_t nsid)
{
    struct cq *q = &c->cq[cqid];
    uint64_t addr = q->base + (uint64_t)q->tail * NVME_CQE_SIZE;
    struct umdev_dma_hold h;
    uint8_t e[12];
    uint32_t dw3;
    int rc;

    rc = umdev_dma_get(c->dev, addr, NVME_CQE_SIZE, UMDEV_DMA_WRITE, &h);
    if (rc < 0) {
        fatal(c, "posting a completion", addr, rc);
        return false;
    }
    nvme_put32(e, dw0);
    nvme_put32(e + 4, 0);
    nvme_put16(e + 8, c->sq[sqid].head);
    nvme_put16(e + 10, sqid);
    memcpy(h.ptr, e, sizeof(e));
    /* The phase tag tells the host the entry is new: everything else
     * must be visible first. */
    dw3 = (uint32_t)cid | (uint32_t)(q->phase ? 1u : 0u) << 16 |
          (uint32_t)status << 17;
    nvme_put32(e, dw3);
    atomic_thread_fence(memory_order_release);
    __atomic_store_n((uint32_t *)((uint8_t *)h.ptr + 12),
                     *(uint32_t *)(void *)e, __ATOMIC_RELEASE);
    umdev_dma_put(c->dev, &h);
    if (++q->tail == q->size) {
        q->tail = 0;
        q->phase = !q->phase;
    }
    if (q->pending++ == 0)
        q->first_ns = now_ns();
    c->st.commands++;
    if (sqid != 0)
        c->st.io_commands++;
    if ((status & 0x7ff) != 0) {
        c->st.errors++;
        /* The whole Status Field (DNR, M and CRD too), as the
         * completion carried it (Base, Error Information log). */
        log_error(c, sqid, cid, status & 0x7fff, nsid);
    }
    return true;
}

/* Complete a fetched command of SQ @sqid: its reserved CQ slot is used. */
static void
complete(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid, uint16_t status,
         uint32_t dw0, uint32_t nsid)
{
    struct sq *s = &c->sq[sqid];
    struct cq *q = &c->cq[s->cqid];

    q->reserved--;
    s->inflight--;
    post(c, s->cqid, sqid, cid, status, dw0, nsid);
}

static unsigned int cq_free(const struct cq *q);

/* ------------------------------------------------------------------ */
/* Asynchronous events (5.2)                                           */

static void
deliver_events(struct nvme_ctrl *c)
{
    uint32_t bad = atomic_exchange(&c->bad_db, 0);

    c->aer_pending |= bad;
    /* Async Event Configuration has no bit for error events: they are
     * always reported, one at a time until the Error log is read. */
    while (c->naer > 0 && c->aer_pending != 0 && !c->aer_error_masked &&
           cq_free(&c->cq[0]) > c->cq[0].reserved) {
        unsigned int info = (unsigned int)__builtin_ctz(c->aer_pending);
        uint32_t dw0 =
            NVME_AER_TYPE_ERROR | info << 8 | (uint32_t)NVME_LOG_ERROR << 16;

        c->aer_pending &= ~(1u << info);
        c->aer_error_masked = true;
        c->naer--;
        post(c, 0, 0, c->aer_cid[c->naer], NVME_SC_SUCCESS, dw0, 0);
    }
}

/* ------------------------------------------------------------------ */
/* Admin commands (5)                                                  */

static void
put_str(uint8_t *p, const char *s, size_t n)
{
    size_t l = strlen(s);

    /* ASCII, space padded, not NUL terminated (1.5 "ASCII string"). */
    memset(p, ' ', n);
    memcpy(p, s, l < n ? l : n);
}

static void
identify_ctrl(struct nvme_ctrl *c, uint8_t *d)
{
    char mn[64];

    snprintf(mn, sizeof(mn), "umdev NVMe %s", c->type);
    nvme_put16(d + NVME_IDC_VID, NVME_VENDOR_ID);
    nvme_put16(d + NVME_IDC_SSVID, NVME_SUBSYS_VENDOR_ID);
    put_str(d + NVME_IDC_SN, c->serial, 20);
    put_str(d + NVME_IDC_MN, mn, 40);
    put_str(d + NVME_IDC_FR, NVME_FW_REV, 8);
    d[NVME_IDC_RAB] = 6;
    d[NVME_IDC_MDTS] = NVME_MDTS;
    nvme_put16(d + NVME_IDC_CNTLID, 1);
    nvme_put32(d + NVME_IDC_VER, 0x00010400);
    d[NVME_IDC_CNTRLTYPE] = 1; /* I/O controller */
    nvme_put16(d + NVME_IDC_OACS, NVME_OACS_DBBUF);
    d[NVME_IDC_ACL] = NVME_ACL;
    d[NVME_IDC_AERL] = NVME_AERL;
    d[NVME_IDC_FRMW] = 0x03; /* one slot, read only */
    d[NVME_IDC_LPA] = 0x04;  /* extended data for Get Log Page */
    d[NVME_IDC_ELPE] = NVME_ERROR_LOG_ENTRIES - 1;
    nvme_put16(d + NVME_IDC_WCTEMP, NVME_WCTEMP);
    nvme_put16(d + NVME_IDC_CCTEMP, NVME_CCTEMP);
    d[NVME_IDC_SQES] = NVME_SQES_LOG2 << 4 | NVME_SQES_LOG2;
    d[NVME_IDC_CQES] = NVME_CQES_LOG2 << 4 | NVME_CQES_LOG2;
    nvme_put32(d + NVME_IDC_NN, 1);
    /* Bit 4: Get Features' Select field is implemented; Set Features'
     * Save is refused per feature, none being saveable. */
    nvme_put16(d + NVME_IDC_ONCS, NVME_ONCS_DSM | NVME_ONCS_WRITE_ZEROES |
                                      NVME_ONCS_SET_FEATURES_SAVE);
    /* A volatile write cache; Flush with NSID FFFFFFFFh supported. */
    d[NVME_IDC_VWC] = 0x07;
    {
        /* The UUID-based NQN format (4.5), from the instance UUID. */
        const uint8_t *u = c->uuid;

        snprintf((char *)d + NVME_IDC_SUBNQN, 256,
                 "nqn.2014-08.org.nvmexpress:uuid:%02x%02x%02x%02x-%02x%02x-"
                 "%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
                 u[10], u[11], u[12], u[13], u[14], u[15]);
    }
    nvme_put16(d + NVME_IDC_PSD0, 2500); /* MP: 25 W, informational */
}

static void
identify_ns(struct nvme_ctrl *c, uint8_t *d)
{
    nvme_put64(d + NVME_IDN_NSZE, c->geom.nlba);
    nvme_put64(d + NVME_IDN_NCAP, c->geom.nlba);
    nvme_put64(d + NVME_IDN_NUSE, c->geom.nlba);
    d[NVME_IDN_NLBAF] = 0;
    d[NVME_IDN_FLBAS] = 0;
    /* Deallocated blocks read as zeroes; Write Zeroes may deallocate. */
    d[NVME_IDN_DLFEAT] = 0x01 | 0x08;
    memcpy(d + NVME_IDN_NGUID, c->nguid, 16);
    memcpy(d + NVME_IDN_EUI64, c->eui64, 8);
    nvme_put32(d + NVME_IDN_LBAF0, (uint32_t)NVME_LBA_SHIFT << 16);
}

static void
identify_descs(struct nvme_ctrl *c, uint8_t *d)
{
    d[0] = NVME_NIDT_EUI64;
    d[1] = 8;
    memcpy(d + 4, c->eui64, 8);
    d += 12;
    d[0] = NVME_NIDT_NGUID;
    d[1] = 16;
    memcpy(d + 4, c->nguid, 16);
    d += 20;
    d[0] = NVME_NIDT_UUID;
    d[1] = 16;
    memcpy(d + 4, c->uuid, 16);
    d += 20;
    d[0] = NVME_NIDT_CSI;
    d[1] = 1;
    d[4] = 0; /* NVM command set */
}

static uint16_t
admin_identify(struct nvme_ctrl *c, const struct nvme_sqe *s,
               const struct nvme_admin *a)
{
    uint8_t *d = c->scratch;

    memset(d, 0, NVME_IDENTIFY_SIZE);
    switch (a->cns) {
    case NVME_CNS_CTRL:
        identify_ctrl(c, d);
        break;
    case NVME_CNS_NS:
        if (s->nsid != NVME_NSID)
            return NVME_SC_INVALID_NS | NVME_DNR;
        identify_ns(c, d);
        break;
    case NVME_CNS_ACTIVE_NS_LIST:
        /* NSIDs above CDW1.NSID; FFFFFFFEh and FFFFFFFFh are invalid
         * there (5.17.2.3). */
        if (s->nsid >= 0xfffffffeu)
            return NVME_SC_INVALID_NS | NVME_DNR;
        if (s->nsid < NVME_NSID)
            nvme_put32(d, NVME_NSID);
        break;
    case NVME_CNS_CS_NS:
        /* The NVM set's own namespace fields: no extended LBA formats,
         * no protection information, all zero. */
        if (s->nsid != NVME_NSID)
            return NVME_SC_INVALID_NS | NVME_DNR;
        break;
    case NVME_CNS_CS_CTRL:
        /* The NVM set's controller limits (VSL, WZSL, WUSL, DMRL,
         * DMRSL, DMSL): 0, no limit beyond MDTS. */
        break;
    default: /* NVME_CNS_NS_DESC_LIST */
        if (s->nsid != NVME_NSID)
            return NVME_SC_INVALID_NS | NVME_DNR;
        identify_descs(c, d);
        break;
    }
    return xfer(c, s, d, NVME_IDENTIFY_SIZE, true);
}

static void
put128(uint8_t *p, uint64_t v)
{
    nvme_put64(p, v);
    nvme_put64(p + 8, 0);
}

static uint16_t
admin_get_log(struct nvme_ctrl *c, const struct nvme_sqe *s,
              const struct nvme_admin *a)
{
    uint8_t *d = c->scratch;
    uint64_t size;
    unsigned int i;

    if (a->log_len > NVME_MAX_XFER)
        return NVME_SC_INVALID_FIELD | NVME_DNR;
    /* The whole log, then the requested window of it, zero padded. */
    memset(d, 0, NVME_ERROR_LOG_ENTRIES * NVME_LOG_ERROR_ENTRY_SIZE);
    switch (a->lid) {
    case NVME_LOG_ERROR:
        size = NVME_ERROR_LOG_ENTRIES * NVME_LOG_ERROR_ENTRY_SIZE;
        for (i = 0; i < NVME_ERROR_LOG_ENTRIES; i++) {
            const struct err_entry *e = &c->errlog[i];
            uint8_t *p = d + i * NVME_LOG_ERROR_ENTRY_SIZE;

            if (e->count == 0)
                break;
            nvme_put64(p, e->count);
            nvme_put16(p + 8, e->sqid);
            nvme_put16(p + 10, e->cid);
            nvme_put16(p + 12, (uint16_t)(e->status << 1));
            nvme_put16(p + 14, 0xffff); /* parameter location unknown */
            nvme_put32(p + 24, e->nsid);
        }
        if (!a->rae)
            c->aer_error_masked = false;
        break;
    case NVME_LOG_SMART: {
        uint64_t hours = (c->power_on_prior_ns + now_ns() - c->created_ns) /
                         3600000000000ull;

        size = NVME_LOG_SMART_SIZE;
        if (s->nsid != NVME_NSID && s->nsid != NVME_NSID_BROADCAST &&
            s->nsid != 0)
            return NVME_SC_INVALID_NS | NVME_DNR;
        nvme_put16(d + 1, NVME_TEMP_KELVIN);
        d[3] = 100; /* available spare */
        d[4] = 10;  /* its threshold */
        /* Data units are thousands of 512-byte units, rounded up. */
        put128(d + 32, (c->units_read / 512 + 999) / 1000);
        put128(d + 48, (c->units_written / 512 + 999) / 1000);
        put128(d + 64, c->host_reads);
        put128(d + 80, c->host_writes);
        put128(d + 96, c->busy_ns / 60000000000ull);
        put128(d + 112, 1);
        put128(d + 128, hours);
        put128(d + 144, c->unsafe_shutdowns);
        put128(d + 160, c->media_errors);
        put128(d + 176, c->err_count);
        break;
    }
    default: /* NVME_LOG_FW_SLOT */
        size = NVME_LOG_FW_SLOT_SIZE;
        d[0] = 1; /* slot 1 active */
        put_str(d + 8, NVME_FW_REV, 8);
        break;
    }
    if (a->log_offset > size)
        return NVME_SC_INVALID_FIELD | NVME_DNR;
    if (a->log_offset > 0)
        memmove(d, d + a->log_offset, size - a->log_offset);
    if (a->log_len > size - a->log_offset)
        memset(d + (size - a->log_offset), 0,
               a->log_len - (size - a->log_offset));
    return xfer(c, s, d, a->log_len, true);
}

static void
features_default(struct nvme_ctrl *c)
{
    c->arbitration = 0;
    c->vwc = 1;
    c->irq_coalesce = 0;
    c->async_cfg = 0;
    c->write_atomic = 0;
    c->nsq_alloc = c->nq - 1;
    c->ncq_alloc = c->nq - 1;
    memset(c->coalesce_off, 0, sizeof(c->coalesce_off));
    c->temp_over = NVME_WCTEMP;
    c->temp_under = 0;
}

static bool
io_queues_exist(const struct nvme_ctrl *c)
{
    unsigned int i;

    for (i = 1; i <= c->nq; i++)
        if (c->sq[i].live || c->cq[i].live)
            return true;
    return false;
}

/* Async Event Configuration bits we can report: SMART critical warnings
 * 7:0 (none is ever raised, but the host may enable them). */
#define ASYNC_CFG_MASK 0xffu

static uint16_t
admin_features(struct nvme_ctrl *c, const struct nvme_sqe *s,
               const struct nvme_admin *a, uint32_t *dw0)
{
    bool set = a->opcode == NVME_ADM_SET_FEATURES;
    uint32_t v = s->cdw11, *cur = NULL, dflt = 0;

    if (!set && a->sel == NVME_SEL_SUPPORTED) {
        switch (a->fid) {
        case NVME_FEAT_ARBITRATION:
        case NVME_FEAT_POWER_MGMT:
        case NVME_FEAT_TEMP_THRESH:
        case NVME_FEAT_VOLATILE_WC:
        case NVME_FEAT_NUM_QUEUES:
        case NVME_FEAT_IRQ_COALESCE:
        case NVME_FEAT_IRQ_CONFIG:
        case NVME_FEAT_WRITE_ATOMIC:
        case NVME_FEAT_ASYNC_EVENT:
            *dw0 = 1u << 2; /* changeable, not saveable, not per NS */
            return NVME_SC_SUCCESS;
        }
        return NVME_SC_INVALID_FIELD | NVME_DNR;
    }
    switch (a->fid) {
    case NVME_FEAT_ARBITRATION:
        cur = &c->arbitration;
        break;
    case NVME_FEAT_POWER_MGMT:
        /* One power state (NPSS 0): only PS 0 exists. */
        if (set && (v & 0x1f) != 0)
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        *dw0 = 0;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_TEMP_THRESH: {
        /* Composite temperature only (TMPSEL 0), over or under. */
        unsigned int tmpsel = (v >> 16) & 0xf, thsel = (v >> 20) & 3;
        uint16_t *t = thsel == 0 ? &c->temp_over : &c->temp_under;

        if (tmpsel != 0 || thsel > 1)
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        if (set)
            *t = (uint16_t)v;
        *dw0 = a->sel == NVME_SEL_DEFAULT && !set
                   ? (thsel == 0 ? NVME_WCTEMP : 0)
                   : *t;
        return NVME_SC_SUCCESS;
    }
    case NVME_FEAT_VOLATILE_WC:
        cur = &c->vwc;
        dflt = 1;
        v &= 1;
        break;
    case NVME_FEAT_NUM_QUEUES:
        if (set) {
            uint32_t nsq = v & 0xffff, ncq = v >> 16;

            if (nsq == 0xffff || ncq == 0xffff)
                return NVME_SC_INVALID_FIELD | NVME_DNR;
            /* Only before I/O queues exist (5.27.1.7). */
            if (io_queues_exist(c))
                return NVME_SC_CMD_SEQ_ERROR | NVME_DNR;
        }
        /* The controller allocates every queue pair it has, whatever
         * was asked (the host creates at most what it asked for): the
         * completion and the current value say so (5.27.1.7). */
        *dw0 = c->nsq_alloc | c->ncq_alloc << 16;
        return NVME_SC_SUCCESS;
    case NVME_FEAT_IRQ_COALESCE:
        cur = &c->irq_coalesce;
        v &= 0xffff;
        break;
    case NVME_FEAT_IRQ_CONFIG: {
        uint32_t iv = v & 0xffff;

        if (iv > c->nq)
            return NVME_SC_INVALID_FIELD | NVME_DNR;
        if (set)
            c->coalesce_off[iv] = (v >> 16) & 1;
        *dw0 = iv | (uint32_t)(a->sel == NVME_SEL_DEFAULT && !set
                                   ? 0
                                   : c->coalesce_off[iv])
                        << 16;
        return NVME_SC_SUCCESS;
    }
    case NVME_FEAT_WRITE_ATOMIC:
        cur = &c->write_atomic;
        v &= 1;
        break;
    case NVME_FEAT_ASYNC_EVENT:
        cur = &c->async_cfg;
        v &= ASYNC_CFG_MASK;
        break;
    default:
        return NVME_SC_INVALID_FIELD | NVME_DNR;
    }
    if (set)
        *cur = v;
    /* Nothing is saveable: the saved value is the default (5.27). */
    *dw0 = !set && a->sel != NVME_SEL_CURRENT ? dflt : *cur;
    return NVME_SC_SUCCESS;
}

static uint16_t
admin_create_cq(struct nvme_ctrl *c, const struct nvme_sqe *s,
                const struct nvme_admin *a)
{
    struct cq *q;

    if (a->qid > c->ncq_alloc + 1 || c->cq[a->qid].live)
        return NVME_SC_QID_INVALID | NVME_DNR;
    if (a->qsize > NVME_MQES + 1)
        return NVME_SC_QUEUE_SIZE | NVME_DNR;
    if (a->ien && a->iv > c->nq)
        return NVME_SC_INVALID_VECTOR | NVME_DNR;
    q = &c->cq[a->qid];
    memset(q, 0, offsetof(struct cq, db));
    atomic_store(&q->db, 0);
    q->live = true;
    q->ien = a->ien;
    q->iv = a->iv;
    q->size = (uint16_t)a->qsize; /* checked against MQES */
    q->base = s->prp1;
    q->phase = true;
    return NVME_SC_SUCCESS;
}

static uint16_t
admin_create_sq(struct nvme_ctrl *c, const struct nvme_sqe *s,
                const struct nvme_admin *a)
{
    struct sq *q;

    if (a->qid > c->nsq_alloc + 1 || c->sq[a->qid].live)
        return NVME_SC_QID_INVALID | NVME_DNR;
    if (a->cqid > c->nq || !c->cq[a->cqid].live)
        return NVME_SC_CQ_INVALID | NVME_DNR;
    if (a->qsize > NVME_MQES + 1)
        return NVME_SC_QUEUE_SIZE | NVME_DNR;
    q = &c->sq[a->qid];
    memset(q, 0, offsetof(struct sq, db));
    atomic_store(&q->db, 0);
    q->live = true;
    q->size = (uint16_t)a->qsize; /* checked against MQES */
    q->cqid = a->cqid;
    q->base = s->prp1;
    c->cq[a->cqid].nsq++;
    return NVME_SC_SUCCESS;
}

static void be_done(void *opaque, uint64_t tag, int res);

static uint16_t
admin_delete_sq(struct nvme_ctrl *c, const struct nvme_admin *a)
{
    struct sq *q;

    if (a->qid > c->nq || !c->sq[a->qid].live)
        return NVME_SC_QID_INVALID | NVME_DNR;
    q = &c->sq[a->qid];
    /* Commands in flight finish and complete first (their completions
     * precede this one's, 5.6); those not fetched are dropped. */
    while (q->inflight > 0 && nvme_be_busy(c->be) > 0) {
        nvme_be_submit(c->be);
        nvme_be_reap(c->be, true, be_done, c);
    }
    q->live = false;
    c->cq[q->cqid].nsq--;
    return NVME_SC_SUCCESS;
}

static uint16_t
admin_delete_cq(struct nvme_ctrl *c, const struct nvme_admin *a)
{
    if (a->qid > c->nq || !c->cq[a->qid].live)
        return NVME_SC_QID_INVALID | NVME_DNR;
    if (c->cq[a->qid].nsq > 0)
        return NVME_SC_INVALID_QUEUE_DELETION | NVME_DNR;
    c->cq[a->qid].live = false;
    update_intx(c);
    return NVME_SC_SUCCESS;
}

static void shadow_write(struct nvme_ctrl *c, uint64_t base, uint16_t qid,
                         bool cq, uint32_t v);
static bool doorbell(struct nvme_ctrl *c, uint16_t qid, bool is_cq,
                     uint16_t size, uint16_t *out);

/*
 * Doorbell Buffer Config. I/O queues that exist already switch to the
 * shadow doorbells with their current values written there first, so
 * that a buffer the host has not filled in cannot move a tail or head
 * backwards (the Linux driver configures before creating queues).
 */
static uint16_t
admin_dbbuf(struct nvme_ctrl *c, const struct nvme_sqe *s)
{
    uint8_t probe[4];
    unsigned int i;

    /* Both pages must be reachable now: a fault later is fatal. */
    if (umdev_dma_read(c->dev, s->prp1, probe, 4) < 0 ||
        umdev_dma_read(c->dev, s->prp2, probe, 4) < 0)
        return NVME_SC_DATA_XFER_ERROR;
    /* Register doorbells written before this command (the serving
     * thread handled them before the admin doorbell that brought it)
     * may not have been taken yet: take them now. */
    for (i = 1; i <= c->nq; i++) {
        uint16_t v;

        if (c->sq[i].live && doorbell(c, (uint16_t)i, false, c->sq[i].size, &v))
            c->sq[i].tail = v;
        if (c->cq[i].live && doorbell(c, (uint16_t)i, true, c->cq[i].size, &v))
            c->cq[i].head = v;
    }
    for (i = 1; i <= c->nq; i++) {
        if (c->sq[i].live) {
            shadow_write(c, s->prp1, (uint16_t)i, false, c->sq[i].tail);
            shadow_write(c, s->prp2, (uint16_t)i, false, c->sq[i].tail);
        }
        if (c->cq[i].live) {
            shadow_write(c, s->prp1, (uint16_t)i, true, c->cq[i].head);
            shadow_write(c, s->prp2, (uint16_t)i, true, c->cq[i].head);
        }
    }
    c->dbbuf = true;
    c->dbbuf_db = s->prp1;
    c->dbbuf_ei = s->prp2;
    return NVME_SC_SUCCESS;
}

/* Execute an admin command. Return true if it completes later (AER). */
static bool
admin(struct nvme_ctrl *c, const struct nvme_sqe *s, uint16_t *status,
      uint32_t *dw0)
{
    struct nvme_admin a;
    uint16_t st;

    *dw0 = 0;
    st = nvme_admin_parse(s, NVME_PAGE_SIZE, &a);
    if (st != NVME_SC_SUCCESS) {
        *status = st;
        return false;
    }
    switch (a.opcode) {
    case NVME_ADM_IDENTIFY:
        st = admin_identify(c, s, &a);
        break;
    case NVME_ADM_GET_LOG_PAGE:
        st = admin_get_log(c, s, &a);
        break;
    case NVME_ADM_SET_FEATURES:
    case NVME_ADM_GET_FEATURES:
        st = admin_features(c, s, &a, dw0);
        break;
    case NVME_ADM_CREATE_CQ:
        st = admin_create_cq(c, s, &a);
        break;
    case NVME_ADM_CREATE_SQ:
        st = admin_create_sq(c, s, &a);
        break;
    case NVME_ADM_DELETE_SQ:
        st = admin_delete_sq(c, &a);
        break;
    case NVME_ADM_DELETE_CQ:
        st = admin_delete_cq(c, &a);
        break;
    case NVME_ADM_ABORT:
        /* Best effort (5.1): commands reach the backend as soon as they
         * are fetched, so none is ever still abortable. Bit 0 set: not
         * aborted. */
        *dw0 = 1;
        st = NVME_SC_SUCCESS;
        break;
    case NVME_ADM_ASYNC_EVENT:
        if (c->naer > NVME_AERL) {
            st = NVME_SC_AER_LIMIT | NVME_DNR;
            break;
        }
        c->aer_cid[c->naer++] = s->cid;
        return true;
    default: /* NVME_ADM_DBBUF_CONFIG */
        st = admin_dbbuf(c, s);
        break;
    }
    *status = st;
    return false;
}

/* ------------------------------------------------------------------ */
/* I/O commands                                                        */

static void
req_free(struct nvme_ctrl *c, struct req *r)
{
    holds_put(c, r->holds, &r->nholds);
    r->used = false;
    c->nreqs_used--;
}

static uint16_t
be_status(const struct req *r, int res)
{
    switch (r->io.kind) {
    case NVME_IO_READ:
        return NVME_SC_UNRECOVERED_READ;
    case NVME_IO_WRITE:
        return res == -ENOSPC ? NVME_SC_CAP_EXCEEDED : NVME_SC_WRITE_FAULT;
    default:
        return NVME_SC_INTERNAL;
    }
}

static void
be_done(void *opaque, uint64_t tag, int res)
{
    struct nvme_ctrl *c = opaque;
    struct req *r;

    if (tag == TAG_SHUTDOWN) {
        c->st.flushes++;
        c->shn_flushing = false;
        c->shn_pending = false;
        c->running = false;
        c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) |
                  NVME_SHST_COMPLETE << NVME_CSTS_SHST_SHIFT;
        if (res < 0)
            umdev_log(c->log, LOG_ERR, "%s: flush at shutdown failed: %s",
                      c->name, strerror(-res));
        return;
    }
    r = &c->reqs[tag];
    if (res < 0 ||
        ((r->io.kind == NVME_IO_READ || r->io.kind == NVME_IO_WRITE) &&
         (uint64_t)res != r->io.len)) {
        if (r->status == NVME_SC_SUCCESS) {
            r->status = be_status(r, res < 0 ? res : -EIO);
            c->media_errors++;
            umdev_log(c->log, LOG_WARNING,
                      "%s: I/O (opcode kind %d) at %llu failed: %s", c->name,
                      (int)r->io.kind, (unsigned long long)r->io.offset,
                      res < 0 ? strerror(-res) : "short transfer");
        }
    }
    if (--r->ops > 0)
        return;
    if (r->status == NVME_SC_SUCCESS) {
        if (r->io.kind == NVME_IO_FLUSH)
            c->st.flushes++;
        if (r->io.kind == NVME_IO_READ) {
            c->units_read += r->io.len;
            c->st.read_bytes += r->io.len;
        } else if (r->io.kind == NVME_IO_WRITE) {
            c->units_written += r->io.len;
            c->st.written_bytes += r->io.len;
        }
    }
    /* Holds go before the completion: once the host sees it, it may
     * unmap the buffer. */
    holds_put(c, r->holds, &r->nholds);
    /* A controller shutting down runs until its flush is done; one that
     * stopped (fatal status, reset) posts nothing. */
    if (c->running)
        complete(c, r->sqid, r->cid, r->status, 0, r->nsid);
    else
        c->sq[r->sqid].inflight--;
    req_free(c, r);
}

static struct req *
req_alloc(struct nvme_ctrl *c)
{
    unsigned int i;

    for (i = 0; i < NR_REQS; i++) {
        if (!c->reqs[i].used) {
            struct req *r = &c->reqs[i];

            r->used = true;
            r->ops = 0;
            r->nholds = 0;
            r->niov = 0;
            r->status = NVME_SC_SUCCESS;
            c->nreqs_used++;
            return r;
        }
    }
    return NULL;
}

enum io_result { IO_DONE, IO_QUEUED, IO_RETRY };

/*
 * Start I/O command @s from SQ @sqid. IO_DONE: *@status is its
 * completion status now; IO_QUEUED: it completes through be_done();
 * IO_RETRY: the backend is full, fetch it again later.
 */
static enum io_result
io_start(struct nvme_ctrl *c, uint16_t sqid, const struct nvme_sqe *s,
         uint16_t *status)
{
    unsigned int room = NVME_BE_DEPTH - nvme_be_busy(c->be);
    struct nvme_io io;
    struct req *r;
    uint16_t st;
    uint32_t i, nops;
    int rc = 0;

    st = nvme_io_parse(s, &c->geom, &io);
    if (st != NVME_SC_SUCCESS) {
        *status = st;
        return IO_DONE;
    }
    nops = 1;
    if (io.kind == NVME_IO_DSM) {
        uint32_t len = io.nr_ranges * NVME_DSM_RANGE_SIZE;

        if (!io.deallocate) {
            *status = NVME_SC_SUCCESS;
            return IO_DONE;
        }
        st = xfer(c, s, c->scratch, len, false);
        if (st == NVME_SC_SUCCESS)
            st = nvme_dsm_ranges(c->scratch, io.nr_ranges, &c->geom, c->ranges);
        if (st != NVME_SC_SUCCESS) {
            *status = st;
            return IO_DONE;
        }
        nops = 0;
        for (i = 0; i < io.nr_ranges; i++)
            nops += c->ranges[i].len > 0;
        if (nops == 0) {
            *status = NVME_SC_SUCCESS;
            return IO_DONE;
        }
    }
    if (c->room_waiter != 0 && c->room_waiter != sqid)
        return IO_RETRY;
    if (nops > room || c->nreqs_used == NR_REQS) {
        if (nops > 1)
            c->room_waiter = sqid;
        return IO_RETRY;
    }
    c->room_waiter = 0;
    r = req_alloc(c);
    r->sqid = sqid;
    r->cid = s->cid;
    r->nsid = s->nsid;
    r->io = io;
    switch (io.kind) {
    case NVME_IO_READ:
    case NVME_IO_WRITE:
        st =
            map_prps(c, s->prp1, s->prp2, io.len,
                     io.kind == NVME_IO_READ ? UMDEV_DMA_WRITE : UMDEV_DMA_READ,
                     r->holds, &r->nholds, r->iov, &r->niov);
        if (st != NVME_SC_SUCCESS) {
            req_free(c, r);
            *status = st;
            return IO_DONE;
        }
        if (io.kind == NVME_IO_READ) {
            c->host_reads++;
            rc = nvme_be_readv(c->be, r->iov, r->niov, io.offset,
                               (uint64_t)(r - c->reqs));
        } else {
            c->host_writes++;
            rc = nvme_be_writev(c->be, r->iov, r->niov, io.offset,
                                io.fua || !(c->vwc & 1),
                                (uint64_t)(r - c->reqs));
        }
        r->ops = rc == 0;
        break;
    case NVME_IO_FLUSH:
        rc = nvme_be_flush(c->be, (uint64_t)(r - c->reqs));
        r->ops = rc == 0;
        break;
    case NVME_IO_WRITE_ZEROES:
        /* Punched: the range reads back as zeroes (DLFEAT), whether or
         * not DEAC asked for deallocation. */
        rc = nvme_be_discard(c->be, io.offset, io.len, (uint64_t)(r - c->reqs));
        r->ops = rc == 0;
        break;
    case NVME_IO_DSM:
        for (i = 0; i < io.nr_ranges && rc == 0; i++) {
            if (c->ranges[i].len == 0)
                continue;
            rc = nvme_be_discard(c->be, c->ranges[i].offset, c->ranges[i].len,
                                 (uint64_t)(r - c->reqs));
            r->ops += rc == 0;
        }
        break;
    }
    if (rc < 0) {
        /* Room was checked: only a backend failure gets here. */
        r->status = NVME_SC_INTERNAL;
        if (r->ops == 0) {
            req_free(c, r);
            *status = NVME_SC_INTERNAL;
            return IO_DONE;
        }
    }
    return IO_QUEUED;
}

/* ------------------------------------------------------------------ */
/* The poller                                                          */

static uint32_t
shadow_off(uint16_t qid, bool cq)
{
    return (uint32_t)(2u * qid + (cq ? 1u : 0u)) * 4u; /* CAP.DSTRD 0 */
}

/* Read I/O queue @qid's shadow doorbell. */
static int
shadow_read(struct nvme_ctrl *c, uint16_t qid, bool cq, uint32_t *v)
{
    uint8_t b[4];
    int rc = umdev_dma_read(c->dev, c->dbbuf_db + shadow_off(qid, cq), b, 4);

    if (rc < 0) {
        fatal(c, "reading a shadow doorbell", c->dbbuf_db, rc);
        return rc;
    }
    *v = nvme_le32(b);
    return 0;
}

/* Write @v into the shadow doorbell or EventIdx buffer at @base. */
static void
shadow_write(struct nvme_ctrl *c, uint64_t base, uint16_t qid, bool cq,
             uint32_t v)
{
    uint8_t b[4];
    int rc;

    nvme_put32(b, v);
    rc = umdev_dma_write(c->dev, base + shadow_off(qid, cq), b, 4);
    if (rc < 0)
        fatal(c, "writing a shadow doorbell or EventIdx", base, rc);
}

static void
eventidx_write(struct nvme_ctrl *c, uint16_t qid, bool cq, uint32_t v)
{
    shadow_write(c, c->dbbuf_ei, qid, cq, v);
}

/* The newest doorbell value of a queue, validated; false if none. */
static bool
doorbell(struct nvme_ctrl *c, uint16_t qid, bool is_cq, uint16_t size,
         uint16_t *out)
{
    _Atomic uint32_t *db = is_cq ? &c->cq[qid].db : &c->sq[qid].db;
    uint32_t v = atomic_exchange(db, 0);

    /* The admin queue goes by its registers (the Linux driver never
     * updates its shadow); I/O queues by their shadow doorbells, the
     * registers only waking the poller. */
    if (c->dbbuf && qid != 0) {
        uint32_t raw;

        if (shadow_read(c, qid, is_cq, &raw) < 0)
            return false;
        /* As for the registers: past 16 bits stays invalid (bit 31 is
         * DB_NEW's, not the host's). */
        v = DB_NEW | (raw > 0xffff ? 0xffffu : raw);
    }
    /* The entries the host wrote before moving the doorbell are read
     * after it. */
    atomic_thread_fence(memory_order_acquire);
    if (!(v & DB_NEW))
        return false;
    v &= ~DB_NEW;
    if (v >= size) {
        /* Invalid Doorbell Write Value (5.2): ignored. */
        atomic_fetch_or(&c->bad_db, 1u << 1);
        return false;
    }
    *out = (uint16_t)v;
    return true;
}

static unsigned int
cq_free(const struct cq *q)
{
    unsigned int used = (q->tail + q->size - q->head) % q->size;

    return q->size - 1 - used;
}

/*
 * Copy up to @max entries of SQ @s from its head on, as far as the tail
 * or the end of the ring, into @buf under one hold and one guarded copy:
 * fetched one by one, each entry would take the DMA table's lock and a
 * hold of its own, and those locked instructions wait for the stores
 * to the host's cache lines that came before them. Reading entries
 * between head and tail early is allowed: the host handed them over
 * with the tail it wrote, and one not processed in this pass is read
 * again in the next.
 * Return: how many were copied; 0 when they are not one mapping's
 * shared memory (per-entry reads then find the fault at its entry).
 */
static unsigned int
sq_prefetch(struct nvme_ctrl *c, const struct sq *s,
            uint8_t (*buf)[NVME_SQE_SIZE], unsigned int max)
{
    unsigned int n = (s->tail > s->head ? s->tail : s->size) - s->head;
    uint64_t addr = s->base + (uint64_t)s->head * NVME_SQE_SIZE;
    struct umdev_dma_hold h;
    int rc;

    if (n > max)
        n = max;
    if (n < 2 || umdev_dma_get(c->dev, addr, (uint64_t)n * NVME_SQE_SIZE,
                               UMDEV_DMA_READ, &h) < 0)
        return 0;
    rc = umdev_fault_guard_memcpy(buf, h.ptr, (size_t)n * NVME_SQE_SIZE);
    umdev_dma_put(c->dev, &h);
    return rc == 0 ? n : 0;
}

static unsigned int
process_sq(struct nvme_ctrl *c, uint16_t qid)
{
    struct sq *s = &c->sq[qid];
    struct cq *q = &c->cq[s->cqid];
    uint8_t ahead[SQ_BATCH][NVME_SQE_SIZE];
    unsigned int n = 0, have = 0, used = 0;
    bool ahead_ok = true;
    uint16_t tail;

    if (doorbell(c, qid, false, s->size, &tail))
        s->tail = tail;
    while (c->running && !c->shn_pending && s->head != s->tail &&
           n < SQ_BATCH && q->reserved < cq_free(q)) {
        uint64_t addr = s->base + (uint64_t)s->head * NVME_SQE_SIZE;
        uint8_t raw[NVME_SQE_SIZE];
        struct nvme_sqe sqe;
        uint16_t status = NVME_SC_SUCCESS;
        uint32_t dw0 = 0;
        int rc;

        if (used == have && ahead_ok) {
            have = sq_prefetch(c, s, ahead, SQ_BATCH - n);
            used = 0;
            ahead_ok = have > 0;
        }
        if (used < have) {
            nvme_sqe_decode(ahead[used++], &sqe);
        } else {
            rc = umdev_dma_read(c->dev, addr, raw, sizeof(raw));
            if (rc < 0) {
                fatal(c, "fetching a command", addr, rc);
                break;
            }
            nvme_sqe_decode(raw, &sqe);
        }
        if (qid == 0) {
            bool later;

            q->reserved++;
            s->inflight++;
            s->head = (uint16_t)((s->head + 1) % s->size);
            later = admin(c, &sqe, &status, &dw0);
            if (later) {
                /* An AER holds no completion slot: it is posted when an
                 * event comes and the queue has room. */
                q->reserved--;
                s->inflight--;
            } else {
                complete(c, qid, sqe.cid, status, dw0, sqe.nsid);
            }
        } else {
            enum io_result res = io_start(c, qid, &sqe, &status);

            if (res == IO_RETRY)
                break;
            q->reserved++;
            s->inflight++;
            s->head = (uint16_t)((s->head + 1) % s->size);
            if (res == IO_DONE)
                complete(c, qid, sqe.cid, status, 0, sqe.nsid);
        }
        n++;
    }
    return n;
}

static void
process_cq_heads(struct nvme_ctrl *c)
{
    unsigned int i;

    for (i = 0; i <= c->nq; i++) {
        struct cq *q = &c->cq[i];
        uint16_t head;

        if (q->live && doorbell(c, (uint16_t)i, true, q->size, &head))
            q->head = head;
    }
    update_intx(c);
}

/* Doorbells written for queues that do not exist (the serving thread
 * cannot tell: queues are the poller's). */
static void
check_stray_doorbells(struct nvme_ctrl *c)
{
    unsigned int i;

    for (i = 0; i <= c->nq; i++) {
        if (!c->sq[i].live && (atomic_exchange(&c->sq[i].db, 0) & DB_NEW))
            atomic_fetch_or(&c->bad_db, 1u << 0);
        if (!c->cq[i].live && (atomic_exchange(&c->cq[i].db, 0) & DB_NEW))
            atomic_fetch_or(&c->bad_db, 1u << 0);
    }
}

/* A sleeping poller must hear of CQ @i's head moving only when INTx
 * follows it, or a submission queue waits for room in it. */
static bool
cq_head_wanted(struct nvme_ctrl *c, unsigned int i)
{
    struct cq *q = &c->cq[i];
    unsigned int j;

    if (umdev_pci_irq_mode(c->pci) == UMDEV_PCI_IRQ_INTX)
        return true;
    for (j = 1; j <= c->nq; j++) {
        struct sq *s = &c->sq[j];

        if (s->live && s->cqid == i && s->head != s->tail &&
            q->reserved >= cq_free(q))
            return true;
    }
    return false;
}

/* Keep the EventIdx of each I/O queue one behind its doorbell while we
 * poll (the host skips the MMIO write), or at it when we are about to
 * sleep (its next update rings; a completion queue's only when its head
 * matters, so that a sleeping poller costs one message per submission,
 * not two): NVMe 1.3 "Doorbell Buffer Config". */
static void
eventidx_update(struct nvme_ctrl *c, bool sleeping)
{
    unsigned int i;

    if (!c->dbbuf || c->mig_stopped)
        return;
    for (i = 1; i <= c->nq && c->running; i++) {
        uint16_t off = sleeping ? 0 : 1;

        if (c->sq[i].live)
            eventidx_write(c, (uint16_t)i, false,
                           (uint16_t)(c->sq[i].tail - off));
        if (c->cq[i].live)
            eventidx_write(
                c, (uint16_t)i, true,
                (uint16_t)(c->cq[i].head -
                           (sleeping && cq_head_wanted(c, i) ? 0 : 1)));
    }
}

/* Shutdown (3.6.2): once everything in flight completed, make it
 * durable; be_done() then reports SHST complete. Lock held. */
static void
shutdown_step(struct nvme_ctrl *c)
{
    if (c->shn_pending && !c->shn_flushing && nvme_be_busy(c->be) == 0 &&
        nvme_be_flush(c->be, TAG_SHUTDOWN) == 0 && nvme_be_submit(c->be) == 0)
        c->shn_flushing = true;
}

/* One pass; lock held. Return: commands fetched or completed. */
static unsigned int
pass(struct nvme_ctrl *c, uint64_t *deadline)
{
    unsigned int n, i;

    *deadline = 0;
    /* Stopped for migration: stop() has drained the backend; nothing is
     * fetched and nothing reaches guest memory until resume(). */
    if (c->mig_stopped)
        return 0;
    /* Bus mastering off under a running controller: it may not reach
     * guest memory any more, so it stops as on a fatal error (the guest
     * resets it). Lock order: ours, then lib/pci's. */
    if (c->running && !umdev_pci_bus_master(c->pci)) {
        umdev_log(c->log, LOG_WARNING,
                  "%s: bus mastering disabled while running: controller "
                  "fatal status set until the guest resets it",
                  c->name);
        c->csts |= NVME_CSTS_CFS;
        c->running = false;
    }
    n = nvme_be_reap(c->be, false, be_done, c);
    if (!c->running) {
        /* Stopped by a fatal status: a shutdown still makes what was
         * written durable (3.6.2), without touching guest memory. */
        shutdown_step(c);
        return n;
    }
    check_stray_doorbells(c);
    process_cq_heads(c);
    /* A waiter whose queue was deleted waits no more. */
    if (c->room_waiter != 0 && !c->sq[c->room_waiter].live)
        c->room_waiter = 0;
    for (i = 0; i <= c->nq; i++)
        if (c->sq[i].live)
            n += process_sq(c, (uint16_t)i);
    if (nvme_be_submit(c->be) < 0)
        fatal(c, "submitting to the backend", 0, -EIO);
    /* What finished while this pass fetched (the null backend: all it
     * started) is posted now, not a pass later. */
    n += nvme_be_reap(c->be, false, be_done, c);
    shutdown_step(c);
    deliver_events(c);
    *deadline = flush_irqs(c, now_ns());
    return n;
}

/* Anything a sleeping poller would miss? Lock held. */
static bool
work_pending(struct nvme_ctrl *c)
{
    unsigned int i;

    if (!c->running)
        return false;
    for (i = 0; i <= c->nq; i++) {
        uint32_t v;

        if ((atomic_load(&c->sq[i].db) & DB_NEW) ||
            (atomic_load(&c->cq[i].db) & DB_NEW))
            return true;
        /* A shadow tail past the queue's end is ignored (and reported)
         * by every pass: it is no work to stay awake for. */
        if (c->dbbuf && i > 0 && c->sq[i].live &&
            (shadow_read(c, (uint16_t)i, false, &v) < 0 ||
             (v != c->sq[i].tail && v < c->sq[i].size)))
            return true;
        if (c->sq[i].live && c->sq[i].head != c->sq[i].tail &&
            c->cq[c->sq[i].cqid].reserved < cq_free(&c->cq[c->sq[i].cqid]))
            return true;
    }
    return atomic_load(&c->bad_db) != 0;
}

/*
 * After a sleep a submission doorbell ended: the poll window adapts as
 * KVM's halt polling does. Had polling gone on for the whole idle time
 * (window + sleep) without passing the maximum, the doorbell would have
 * cost no message: grow the window to cover such a gap next time. A
 * sleep longer than that says the host went quiet: shrink it, so an idle
 * controller stops spending CPU on polls that find nothing.
 */
static void
poll_window_adapt(struct nvme_ctrl *c, uint64_t slept_ns)
{
    uint64_t idle = c->poll_ns + slept_ns;

    if (idle <= c->poll_max_ns) {
        uint64_t want = idle + idle / 4;

        if (want < 2 * c->poll_ns)
            want = 2 * c->poll_ns;
        c->poll_ns = want < c->poll_max_ns ? want : c->poll_max_ns;
    } else {
        c->poll_ns /= 2;
        if (c->poll_ns < c->poll_min_ns)
            c->poll_ns = c->poll_min_ns;
    }
}

static void *
poller(void *arg)
{
    struct nvme_ctrl *c = arg;
    uint64_t idle_since = 0;

    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        uint64_t deadline, t0 = now_ns(), now, window;
        struct pollfd pfd[2];
        unsigned int n;
        int timeout = -1;
        bool inflight, doorbells;

        if (c->mig_stopped) {
            /* Parked until resume() or destroy wakes it. */
            pthread_mutex_unlock(&c->lock);
            pfd[0] = (struct pollfd){ .fd = c->wake_efd, .events = POLLIN };
            if (poll(pfd, 1, -1) > 0) {
                uint64_t v;

                if (read(c->wake_efd, &v, sizeof(v)) < 0) {
                    /* EAGAIN: another reader got it; nothing lost. */
                }
            }
            pthread_mutex_lock(&c->lock);
            idle_since = 0;
            continue;
        }
        n = pass(c, &deadline);
        now = now_ns();
        if (n > 0) {
            c->busy_ns += now - t0;
            idle_since = 0;
        } else if (idle_since == 0) {
            idle_since = now;
        }
        /* Poll, then sleep (the accel engine's rule). With I/O in flight
         * on the backend its next completion wakes the poller anyway, so
         * polling for it goes on for the shortest window only: on a host
         * with fewer CPUs than busy threads a spinning poller delays the
         * very kernel work that completes the I/O, and the VMM's vCPUs.
         * Without, the window the host's pace taught it. */
        inflight = nvme_be_busy(c->be) > 0 && nvme_be_eventfd(c->be) >= 0;
        window = inflight ? c->poll_min_ns : c->poll_ns;
        if (c->running && (n > 0 || now - idle_since < window)) {
            if (n > 0)
                eventidx_update(c, false);
            pthread_mutex_unlock(&c->lock);
            /* A pass that found nothing gives way to whatever else wants
             * this CPU (the VMM's vCPUs, on a host with fewer CPUs than
             * threads): a yield costs little when nothing else is
             * runnable. */
            if (atomic_load(&c->want_lock) > 0 || n == 0)
                sched_yield();
            pthread_mutex_lock(&c->lock);
            continue;
        }
        /* Waiting for the backend, EventIdx stays behind the doorbells:
         * the host rings none, and what it submits meanwhile is fetched
         * at the completion's wake-up. Otherwise EventIdx moves to them
         * so the host's next submission rings. */
        doorbells = !(c->running && inflight);
        atomic_store(&c->sleeping, true);
        atomic_store(&c->sq_rung, false);
        if (doorbells) {
            c->st.sleeps++;
            eventidx_update(c, true);
        } else {
            c->st.io_waits++;
        }
        atomic_thread_fence(memory_order_seq_cst);
        if (work_pending(c) || nvme_be_ready(c->be)) {
            atomic_store(&c->sleeping, false);
            idle_since = 0;
            continue;
        }
        if (deadline != 0)
            timeout =
                (int)((deadline > now ? deadline - now : 0) / 1000000u) + 1;
        else if (nvme_be_busy(c->be) > 0 && nvme_be_eventfd(c->be) < 0)
            timeout = 1; /* null backend: completions are reaped by polling */
        pthread_mutex_unlock(&c->lock);
        pfd[0] = (struct pollfd){ .fd = c->wake_efd, .events = POLLIN };
        pfd[1] =
            (struct pollfd){ .fd = nvme_be_eventfd(c->be), .events = POLLIN };
        if (poll(pfd, pfd[1].fd >= 0 ? 2 : 1, timeout) > 0 &&
            (pfd[0].revents & POLLIN)) {
            uint64_t v;

            if (read(c->wake_efd, &v, sizeof(v)) < 0) {
                /* EAGAIN: another reader got it; nothing lost. */
            }
        }
        pthread_mutex_lock(&c->lock);
        atomic_store(&c->sleeping, false);
        c->st.wakeups++;
        /* Only the host's submissions say how long it was quiet, and
         * only when it was asked to ring: not the backend's completions
         * or our own deadlines, nor a completion queue's head (rung
         * while asleep only under INTx or a full queue, soon after each
         * completion whatever the host's pace). */
        if (atomic_exchange(&c->sq_rung, false) && doorbells)
            poll_window_adapt(c, now_ns() - now);
        idle_since = 0;
        eventidx_update(c, false);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Enable, reset, shutdown (3.5.1, 3.7.2, 3.6)                          */

/* Wait for the backend; drop what finishes. Lock held, poller parked. */
static void
drain(struct nvme_ctrl *c)
{
    c->running = false;
    c->shn_pending = false;
    c->room_waiter = 0;
    while (nvme_be_busy(c->be) > 0) {
        nvme_be_submit(c->be);
        nvme_be_reap(c->be, true, be_done, c);
    }
}

/* Controller Level Reset (3.7.2): lock held. After it returns nothing
 * the controller started touches guest memory again. */
static void
ctrl_reset(struct nvme_ctrl *c)
{
    unsigned int i;

    if ((c->csts & NVME_CSTS_RDY) &&
        ((c->csts & NVME_CSTS_SHST_MASK) >> NVME_CSTS_SHST_SHIFT) !=
            NVME_SHST_COMPLETE)
        c->unsafe_shutdowns++;
    if (c->csts & NVME_CSTS_RDY)
        c->st.resets++;
    drain(c);
    for (i = 0; i < NVME_MAX_QUEUES; i++) {
        memset(&c->sq[i], 0, offsetof(struct sq, db));
        memset(&c->cq[i], 0, offsetof(struct cq, db));
        atomic_store(&c->sq[i].db, 0);
        atomic_store(&c->cq[i].db, 0);
    }
    c->shn_pending = false;
    c->shn_flushing = false;
    c->dbbuf = false;
    c->naer = 0;
    c->aer_pending = 0;
    c->aer_error_masked = false;
    atomic_store(&c->bad_db, 0);
    features_default(c);
    c->csts = 0;
    c->intms = 0;
    update_intx(c);
}

/* Why CC, AQA, ASQ and ACQ cannot enable the controller, or NULL (also
 * what a migrated state of a ready controller must pass). */
static const char *
enable_refusal(uint32_t cc, uint32_t aqa, uint64_t asq, uint64_t acq)
{
    if (NVME_CC_MPS(cc) != 0)
        return "CC.MPS is not 4 KiB";
    if (NVME_CC_CSS(cc) != 0)
        return "CC.CSS is not the NVM command set";
    if (NVME_CC_AMS(cc) != 0)
        return "CC.AMS is not round robin";
    if (NVME_CC_IOSQES(cc) != NVME_SQES_LOG2 ||
        NVME_CC_IOCQES(cc) != NVME_CQES_LOG2)
        return "CC.IOSQES/IOCQES are not 6/4";
    if (NVME_AQA_ASQS(aqa) == 0 || NVME_AQA_ACQS(aqa) == 0)
        return "AQA sizes an admin queue of one entry";
    if (asq == 0 || acq == 0 || (asq & (NVME_PAGE_SIZE - 1)) ||
        (acq & (NVME_PAGE_SIZE - 1)))
        return "ASQ/ACQ are not page aligned";
    return NULL;
}

static void
ctrl_enable(struct nvme_ctrl *c)
{
    struct sq *s = &c->sq[0];
    struct cq *q = &c->cq[0];
    const char *why;

    if (!umdev_pci_bus_master(c->pci))
        why = "bus mastering is off (PCI Command)";
    else
        why = enable_refusal(c->cc, c->aqa, c->asq, c->acq);
    if (why != NULL) {
        /* CSTS.RDY stays 0: the host times out (CAP.TO) and reports. */
        umdev_log(c->log, LOG_WARNING, "%s: enable refused: %s", c->name, why);
        return;
    }
    memset(s, 0, offsetof(struct sq, db));
    memset(q, 0, offsetof(struct cq, db));
    /* Doorbells rung while disabled name no queue position (queues
     * exist only while enabled): none carries into this run. */
    for (unsigned int i = 0; i <= c->nq; i++) {
        atomic_store(&c->sq[i].db, 0);
        atomic_store(&c->cq[i].db, 0);
    }
    s->live = q->live = true;
    s->size = (uint16_t)(NVME_AQA_ASQS(c->aqa) + 1);
    q->size = (uint16_t)(NVME_AQA_ACQS(c->aqa) + 1);
    s->base = c->asq;
    q->base = c->acq;
    q->ien = true;
    q->phase = true;
    q->nsq = 1;
    c->running = true;
    c->csts = NVME_CSTS_RDY;
}

/* ------------------------------------------------------------------ */
/* BAR0                                                                 */

#define CAP_VALUE                                                              \
    ((uint64_t)NVME_MQES | NVME_CAP_CQR |                                      \
     (uint64_t)15 << NVME_CAP_TO_SHIFT /* 7.5 s */ | NVME_CAP_CSS_NVM)

static uint32_t
reg_read(struct nvme_ctrl *c, uint64_t off)
{
    switch (off) {
    case NVME_REG_CAP:
        return (uint32_t)CAP_VALUE;
    case NVME_REG_CAP + 4:
        return (uint32_t)(CAP_VALUE >> 32);
    case NVME_REG_VS:
        return 0x00010400;
    case NVME_REG_INTMS:
    case NVME_REG_INTMC:
        return c->intms;
    case NVME_REG_CC:
        return c->cc;
    case NVME_REG_CSTS:
        return c->csts;
    case NVME_REG_AQA:
        return c->aqa;
    case NVME_REG_ASQ:
        return (uint32_t)c->asq;
    case NVME_REG_ASQ + 4:
        return (uint32_t)(c->asq >> 32);
    case NVME_REG_ACQ:
        return (uint32_t)c->acq;
    case NVME_REG_ACQ + 4:
        return (uint32_t)(c->acq >> 32);
    default: /* NSSR (not supported), CMBLOC, CMBSZ: 0 */
        return 0;
    }
}

static void
cc_write(struct nvme_ctrl *c, uint32_t v)
{
    uint32_t old = c->cc;

    v &= NVME_CC_WRITABLE;
    if ((old & NVME_CC_EN) && (v & NVME_CC_EN)) {
        /* While enabled only SHN may change (3.1.3.5). */
        v = (old & ~(3u << 14)) | (v & (3u << 14));
    }
    c->cc = v;
    if ((old & NVME_CC_EN) && !(v & NVME_CC_EN)) {
        ctrl_reset(c);
        c->cc = v;
        return;
    }
    if (!(old & NVME_CC_EN) && (v & NVME_CC_EN))
        ctrl_enable(c);
    if (NVME_CC_SHN(v) != 0 && NVME_CC_SHN(old) == 0 &&
        (c->csts & NVME_CSTS_RDY)) {
        c->csts = (c->csts & ~NVME_CSTS_SHST_MASK) |
                  NVME_SHST_OCCURRING << NVME_CSTS_SHST_SHIFT;
        /* Running or stopped by a fatal status, the poller completes
         * it: what is in flight first, then the flush. */
        c->shn_pending = true;
    }
}

static void
reg_write(struct nvme_ctrl *c, uint64_t off, uint32_t v)
{
    switch (off) {
    case NVME_REG_INTMS:
    case NVME_REG_INTMC:
        /* Not with MSI-X (3.1.3.3, 3.1.3.4). */
        if (umdev_pci_irq_mode(c->pci) == UMDEV_PCI_IRQ_MSIX)
            return;
        if (off == NVME_REG_INTMS) {
            c->intms |= v;
        } else {
            unsigned int i;

            c->intms &= ~v;
            /* A vector unmasked with completions waiting fires now. */
            for (i = 0; i <= c->nq; i++) {
                struct cq *q = &c->cq[i];

                if (q->live && q->ien && q->head != q->tail &&
                    (v & (1u << (q->iv & 31))) && !c->mig_stopped &&
                    umdev_pci_irq_mode(c->pci) == UMDEV_PCI_IRQ_MSI)
                    umdev_pci_irq_raise(c->pci, q->iv);
            }
        }
        update_intx(c);
        return;
    case NVME_REG_CC:
        cc_write(c, v);
        return;
    case NVME_REG_AQA:
        if (!(c->cc & NVME_CC_EN))
            c->aqa = v & NVME_AQA_WRITABLE;
        return;
    case NVME_REG_ASQ:
    case NVME_REG_ASQ + 4:
    case NVME_REG_ACQ:
    case NVME_REG_ACQ + 4: {
        uint64_t *r = off < NVME_REG_ACQ ? &c->asq : &c->acq;
        unsigned int sh = (off & 4) ? 32 : 0;

        /* Fixed while enabled (3.1.3.8); bits 11:0 are reserved. */
        if (c->cc & NVME_CC_EN)
            return;
        *r = (*r & ~(0xffffffffull << sh)) | ((uint64_t)v << sh);
        *r &= ~0xfffull;
        return;
    }
    default: /* read-only: ignored */
        return;
    }
}

static void
doorbell_write(struct nvme_ctrl *c, uint64_t off, uint32_t v)
{
    uint64_t idx = (off - NVME_REG_DBS) / 4;
    unsigned int qid = (unsigned int)(idx / 2);
    _Atomic uint32_t *db;

    atomic_fetch_add(&c->doorbells, 1);
    if (qid > c->nq)
        return; /* outside the profile: never reached */
    db = (idx & 1) ? &c->cq[qid].db : &c->sq[qid].db;
    /* Values past 16 bits are invalid anyway: keep them invalid. */
    atomic_store(db, DB_NEW | (v > 0xffff ? 0xffffu : v));
    if (!(idx & 1))
        atomic_store(&c->sq_rung, true);
    /* A level interrupt drops with the head doorbell that consumed its
     * completions, as on hardware: before the host can unmask (EOI) and
     * find it still high. */
    if ((idx & 1) && umdev_pci_irq_mode(c->pci) == UMDEV_PCI_IRQ_INTX) {
        lock_ctrl(c);
        if (c->running && !c->mig_stopped)
            process_cq_heads(c);
        pthread_mutex_unlock(&c->lock);
    }
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&c->sleeping))
        wake(c);
}

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    struct nvme_ctrl *c = opaque;
    uint32_t lo, hi = 0;

    if ((count != 4 && count != 8) || off % count != 0)
        return -EINVAL;
    if (off >= NVME_REG_DBS) {
        if (!is_write) {
            memset(buf, 0, count);
            return (ssize_t)count;
        }
        memcpy(&lo, buf, 4);
        doorbell_write(c, off, lo);
        return (ssize_t)count;
    }
    lock_ctrl(c);
    if (is_write) {
        memcpy(&lo, buf, 4);
        if (count == 8)
            memcpy(&hi, (uint8_t *)buf + 4, 4);
        reg_write(c, off, lo);
        if (count == 8)
            reg_write(c, off + 4, hi);
    } else {
        lo = reg_read(c, off);
        memcpy(buf, &lo, 4);
        if (count == 8) {
            hi = reg_read(c, off + 4);
            memcpy((uint8_t *)buf + 4, &hi, 4);
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (is_write)
        wake(c);
    return (ssize_t)count;
}

/* ------------------------------------------------------------------ */
/* Device hooks                                                        */

/* A controller reset, and the registers it keeps (AQA, ASQ, ACQ) back to
 * their power-on values too. Under the lock. */
static void
power_on_regs(struct nvme_ctrl *c)
{
    ctrl_reset(c);
    c->cc = 0;
    c->aqa = 0;
    c->asq = c->acq = 0;
}

static int
nvme_reset(void *opaque)
{
    struct nvme_ctrl *c = opaque;

    lock_ctrl(c);
    power_on_regs(c);
    c->mig_loaded = false;
    umdev_pci_reset(c->pci);
    update_intx(c);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

/* The client left with guest memory: what the queues pointed at is
 * gone, so the controller resets as at power-on, and the next client
 * finds none of this one's queue addresses. */
static void
nvme_detach(void *opaque)
{
    struct nvme_ctrl *c = opaque;

    lock_ctrl(c);
    /* A migrated state that has not run yet is for the VMM that attaches
     * next (it may load through one connection and run through another):
     * the queues it names are in that VMM's memory, not the one leaving.
     * A source that saved and stopped resets as always, writing nothing:
     * stopped, it raises no interrupt either. */
    if (c->mig_loaded)
        umdev_log(c->log, LOG_INFO,
                  "%s: client left a migrated state that has not run: kept "
                  "for the next client",
                  c->name);
    else
        power_on_regs(c);
    pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------------ */
/* Migration (README "Migration")                                      */

/*
 * The stream's parts are written field by field, little endian, in the
 * order README "Migration" lists them; a reader keeps a cursor and
 * notes a short read rather than checking each field's room.
 */
struct mig_w {
    uint8_t *p;
};

struct mig_r {
    const uint8_t *p;
    size_t left;
    bool short_read;
};

static void
w8(struct mig_w *w, uint8_t v)
{
    *w->p++ = v;
}

static void
w16(struct mig_w *w, uint16_t v)
{
    nvme_put16(w->p, v);
    w->p += 2;
}

static void
w32(struct mig_w *w, uint32_t v)
{
    nvme_put32(w->p, v);
    w->p += 4;
}

static void
w64(struct mig_w *w, uint64_t v)
{
    nvme_put64(w->p, v);
    w->p += 8;
}

static void
wbytes(struct mig_w *w, const void *b, size_t n)
{
    memcpy(w->p, b, n);
    w->p += n;
}

static const uint8_t *
rtake(struct mig_r *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->left < n) {
        r->short_read = true;
        r->left = 0;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static uint8_t
r8(struct mig_r *r)
{
    const uint8_t *p = rtake(r, 1);

    return p != NULL ? *p : 0;
}

static uint16_t
r16(struct mig_r *r)
{
    const uint8_t *p = rtake(r, 2);

    return p != NULL ? nvme_le16(p) : 0;
}

static uint32_t
r32(struct mig_r *r)
{
    const uint8_t *p = rtake(r, 4);

    return p != NULL ? nvme_le32(p) : 0;
}

static uint64_t
r64(struct mig_r *r)
{
    const uint8_t *p = rtake(r, 8);

    return p != NULL ? nvme_le64(p) : 0;
}

/* Configuration: 32 (type) + 4 + 8 + 4 + 4 + 4 + 4 + 16 + 8 + 16 + 20
 * + 16 (the backing file). */
#define MIG_CONFIG_SIZE 136u
/* Metadata: features, shadow doorbell buffer, then per queue pair. */
#define MIG_META_FIXED (7u * 4u + 2u * 2u + 1u + 2u * 8u)
#define MIG_META_PER_Q (1u + 13u + 14u)
/* State: registers, flags, queue positions, events, logs. */
#define MIG_REGS_SIZE (4u * 4u + 2u * 8u + 2u)
#define MIG_QPOS_SIZE 17u
#define MIG_AER_SIZE (1u + 2u * (NVME_AERL + 1u) + 4u + 1u + 4u)
#define MIG_ERR_ENTRY_SIZE 18u
#define MIG_LOGS_SIZE                                                          \
    (8u + NVME_ERROR_LOG_ENTRIES * MIG_ERR_ENTRY_SIZE + 8u * 8u)

static size_t
mig_meta_size(const struct nvme_ctrl *c)
{
    return MIG_META_FIXED + (c->nq + 1u) * MIG_META_PER_Q;
}

static int
nvme_mig_config(void *opaque, struct umdev_mig_buf *out)
{
    struct nvme_ctrl *c = opaque;
    uint8_t b[MIG_CONFIG_SIZE], type[32] = { 0 };
    struct mig_w w = { b };
    uint64_t file_id[2];

    /* Everything that shapes what the guest sees and that the state does
     * not carry: the namespace's identity too, so a destination serving
     * another namespace (or another instance's) refuses the stream. */
    memcpy(type, c->type, strnlen(c->type, sizeof(type) - 1));
    wbytes(&w, type, sizeof(type));
    w32(&w, c->nq);
    w64(&w, c->geom.nlba << c->geom.lba_shift);
    w32(&w, c->geom.lba_shift);
    w32(&w, NVME_MQES);
    w32(&w, NVME_MDTS);
    w32(&w, nvme_be_is_null(c->be) ? 1u : 0u);
    wbytes(&w, c->uuid, 16);
    wbytes(&w, c->eui64, 8);
    wbytes(&w, c->nguid, 16);
    wbytes(&w, c->serial, 20);
    /* The namespace's data is the backing file's: a destination over
     * another file (another directory, another daemon's state) would
     * show the guest other blocks under the same identity. */
    nvme_be_file_id(c->be, file_id);
    w64(&w, file_id[0]);
    w64(&w, file_id[1]);
    assert(w.p == b + sizeof(b));
    return umdev_mig_buf_put(out, b, sizeof(b));
}

/* The metadata (mig_meta_size() bytes at @b): what changes only by admin
 * commands, so pre-copy can send it while the guest runs. Lock held. */
static void
mig_meta_write(const struct nvme_ctrl *c, uint8_t *b)
{
    struct mig_w w = { b };
    unsigned int i;

    w32(&w, c->arbitration);
    w32(&w, c->vwc);
    w32(&w, c->irq_coalesce);
    w32(&w, c->async_cfg);
    w32(&w, c->write_atomic);
    w32(&w, c->nsq_alloc);
    w32(&w, c->ncq_alloc);
    w16(&w, c->temp_over);
    w16(&w, c->temp_under);
    w8(&w, c->dbbuf);
    w64(&w, c->dbbuf_db);
    w64(&w, c->dbbuf_ei);
    for (i = 0; i <= c->nq; i++) {
        const struct sq *s = &c->sq[i];
        const struct cq *q = &c->cq[i];

        w8(&w, c->coalesce_off[i]);
        w8(&w, s->live);
        w16(&w, s->size);
        w16(&w, s->cqid);
        w64(&w, s->base);
        w8(&w, q->live);
        w8(&w, q->ien);
        w16(&w, q->iv);
        w16(&w, q->size);
        w64(&w, q->base);
    }
    assert((size_t)(w.p - b) == mig_meta_size(c));
}

static int
nvme_mig_precopy(void *opaque, struct umdev_mig_buf *out)
{
    struct nvme_ctrl *c = opaque;
    size_t n = mig_meta_size(c);
    uint8_t *m = malloc(n);

    if (m == NULL)
        return -ENOMEM;
    lock_ctrl(c);
    mig_meta_write(c, m);
    free(c->mig_meta);
    c->mig_meta = m;
    pthread_mutex_unlock(&c->lock);
    return umdev_mig_buf_put(out, m, n);
}

/* Does the metadata still equal what pre-copy sent? Lock held. */
static bool
mig_meta_unchanged(const struct nvme_ctrl *c)
{
    uint8_t now[MIG_META_FIXED + NVME_MAX_QUEUES * MIG_META_PER_Q];

    if (c->mig_meta == NULL)
        return false;
    mig_meta_write(c, now);
    return memcmp(now, c->mig_meta, mig_meta_size(c)) == 0;
}

static uint64_t
nvme_mig_precopy_dirty(void *opaque)
{
    struct nvme_ctrl *c = opaque;
    bool same;

    lock_ctrl(c);
    same = mig_meta_unchanged(c);
    pthread_mutex_unlock(&c->lock);
    /* save() sends the metadata again, whole, when any of it changed. */
    return same ? 0 : mig_meta_size(c);
}

/*
 * RUNNING or PRE_COPY -> stopped: no more fetching; what the backend has
 * in flight completes and is posted with its interrupt, within
 * NVME_MIG_STOP_TIMEOUT_MS, else the arc is refused and the controller
 * runs on. The lock is held throughout, so the poller makes no pass.
 */
static int
nvme_mig_stop(void *opaque)
{
    struct nvme_ctrl *c = opaque;
    uint64_t deadline = now_ns() + c->mig_stop_timeout_ms * 1000000ull;
    unsigned int i;

    lock_ctrl(c);
    /* A saving session without pre-copy (or after one that ended)
     * sends the metadata in the state. */
    if (umdev_dev_mig_state(c->dev) != VFIO_USER_DEVICE_STATE_PRE_COPY) {
        free(c->mig_meta);
        c->mig_meta = NULL;
    }
    while (nvme_be_busy(c->be) > 0) {
        uint64_t now = now_ns();
        int fd = nvme_be_eventfd(c->be);

        if (now >= deadline) {
            umdev_log(c->log, LOG_ERR,
                      "%s: migration stop refused: %u backend operations "
                      "still in flight after %u ms; the controller keeps "
                      "running",
                      c->name, nvme_be_busy(c->be), c->mig_stop_timeout_ms);
            pthread_mutex_unlock(&c->lock);
            wake(c);
            return -EBUSY;
        }
        if (nvme_be_submit(c->be) < 0)
            fatal(c, "submitting to the backend", 0, -EIO);
        /* be_done() posts each completion (the controller still runs). */
        if (nvme_be_reap(c->be, false, be_done, c) > 0 ||
            nvme_be_busy(c->be) == 0)
            continue;
        if (fd >= 0 && !nvme_be_ready(c->be)) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            uint64_t ms = (deadline - now) / 1000000u + 1;

            if (poll(&pfd, 1, (int)(ms < 10 ? ms : 10)) < 0 && errno != EINTR)
                usleep(100);
        } else if (fd < 0) {
            usleep(50);
        }
    }
    /* A shutdown's flush has completed (be_done()); one that had not
     * started starts after resume. Coalescing holds nothing back past
     * the stop: its interrupts are raised now. */
    c->shn_flushing = false;
    c->room_waiter = 0;
    for (i = 0; i <= c->nq; i++)
        if (c->cq[i].live && c->cq[i].pending > 0)
            raise_cq(c, &c->cq[i]);
    update_intx(c);
    c->mig_stopped = true;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static void
nvme_mig_resume(void *opaque)
{
    struct nvme_ctrl *c = opaque;

    lock_ctrl(c);
    c->mig_stopped = false;
    c->mig_loaded = false;
    free(c->mig_meta);
    c->mig_meta = NULL;
    /* Guest memory is translated at each use: on a destination the
     * VMM's mappings made after the load are what the next pass finds.
     * The INTx line is driven again from the loaded queues. */
    update_intx(c);
    pthread_mutex_unlock(&c->lock);
    wake(c);
}

static int
nvme_mig_save(void *opaque, struct umdev_mig_buf *out)
{
    struct nvme_ctrl *c = opaque;
    size_t pci_len = umdev_pci_state_size(c->pci);
    size_t meta = mig_meta_size(c);
    size_t len = MIG_REGS_SIZE + 1 + meta + (c->nq + 1u) * MIG_QPOS_SIZE +
                 MIG_AER_SIZE + MIG_LOGS_SIZE + 4 + pci_len;
    uint8_t *b = malloc(len);
    struct mig_w w = { b };
    unsigned int i;
    int rc;

    if (b == NULL)
        return -ENOMEM;
    lock_ctrl(c);
    assert(c->mig_stopped && nvme_be_busy(c->be) == 0);
    w32(&w, c->cc);
    w32(&w, c->csts);
    w32(&w, c->aqa);
    w32(&w, c->intms);
    w64(&w, c->asq);
    w64(&w, c->acq);
    w8(&w, c->running);
    w8(&w, c->shn_pending);
    if (mig_meta_unchanged(c)) {
        w8(&w, 0);
        len -= meta;
    } else {
        w8(&w, 1);
        mig_meta_write(c, w.p);
        w.p += meta;
    }
    for (i = 0; i <= c->nq; i++) {
        const struct sq *s = &c->sq[i];
        const struct cq *q = &c->cq[i];

        assert(s->inflight == 0 && q->reserved == 0);
        w16(&w, s->head);
        w16(&w, s->tail);
        w32(&w, atomic_load(&s->db));
        w16(&w, q->head);
        w16(&w, q->tail);
        w8(&w, q->phase);
        w32(&w, atomic_load(&q->db));
    }
    w8(&w, (uint8_t)c->naer);
    for (i = 0; i <= NVME_AERL; i++)
        w16(&w, c->aer_cid[i]);
    w32(&w, c->aer_pending);
    w8(&w, c->aer_error_masked);
    w32(&w, atomic_load(&c->bad_db));
    w64(&w, c->err_count);
    for (i = 0; i < NVME_ERROR_LOG_ENTRIES; i++) {
        const struct err_entry *e = &c->errlog[i];

        w64(&w, e->count);
        w16(&w, e->sqid);
        w16(&w, e->cid);
        w16(&w, e->status);
        w32(&w, e->nsid);
    }
    w64(&w, c->units_read);
    w64(&w, c->units_written);
    w64(&w, c->host_reads);
    w64(&w, c->host_writes);
    w64(&w, c->media_errors);
    w64(&w, c->unsafe_shutdowns);
    w64(&w, c->busy_ns);
    w64(&w, c->power_on_prior_ns + now_ns() - c->created_ns);
    w32(&w, (uint32_t)pci_len);
    rc = umdev_pci_state_save(c->pci, w.p, pci_len);
    w.p += pci_len;
    pthread_mutex_unlock(&c->lock);
    assert(rc < 0 || (size_t)(w.p - b) == len);
    if (rc == 0)
        rc = umdev_mig_buf_put(out, b, len);
    free(b);
    return rc;
}

/* A loaded state, checked before it replaces the controller's. */
struct mig_state {
    uint32_t cc, csts, aqa, intms;
    uint64_t asq, acq;
    bool running, shn_pending;
    /* Metadata. */
    uint32_t arbitration, vwc, irq_coalesce, async_cfg, write_atomic;
    uint32_t nsq_alloc, ncq_alloc;
    uint16_t temp_over, temp_under;
    bool dbbuf;
    uint64_t dbbuf_db, dbbuf_ei;
    bool coalesce_off[NVME_MAX_QUEUES];
    struct sq sq[NVME_MAX_QUEUES];
    struct cq cq[NVME_MAX_QUEUES];
    uint32_t sq_db[NVME_MAX_QUEUES], cq_db[NVME_MAX_QUEUES];
    /* Events and logs. */
    unsigned int naer;
    uint16_t aer_cid[NVME_AERL + 1];
    uint32_t aer_pending, bad_db;
    bool aer_error_masked;
    uint64_t err_count;
    struct err_entry errlog[NVME_ERROR_LOG_ENTRIES];
    uint64_t units_read, units_written, host_reads, host_writes;
    uint64_t media_errors, unsafe_shutdowns, busy_ns, power_on_ns;
    const uint8_t *pci;
    uint32_t pci_len;
};

/* A flag byte: 0 or 1, else @bad. */
static bool
rflag(struct mig_r *r, bool *bad)
{
    uint8_t v = r8(r);

    if (v > 1)
        *bad = true;
    return v != 0;
}

static const char *
mig_meta_read(const struct nvme_ctrl *c, struct mig_r *r, struct mig_state *m)
{
    bool bad = false;
    unsigned int i;

    m->arbitration = r32(r);
    m->vwc = r32(r);
    m->irq_coalesce = r32(r);
    m->async_cfg = r32(r);
    m->write_atomic = r32(r);
    m->nsq_alloc = r32(r);
    m->ncq_alloc = r32(r);
    m->temp_over = r16(r);
    m->temp_under = r16(r);
    m->dbbuf = rflag(r, &bad);
    m->dbbuf_db = r64(r);
    m->dbbuf_ei = r64(r);
    for (i = 0; i <= c->nq; i++) {
        struct sq *s = &m->sq[i];
        struct cq *q = &m->cq[i];

        m->coalesce_off[i] = rflag(r, &bad);
        s->live = rflag(r, &bad);
        s->size = r16(r);
        s->cqid = r16(r);
        s->base = r64(r);
        q->live = rflag(r, &bad);
        q->ien = rflag(r, &bad);
        q->iv = r16(r);
        q->size = r16(r);
        q->base = r64(r);
    }
    if (r->short_read)
        return "the metadata is cut short";
    if (bad)
        return "a flag of the metadata is neither 0 nor 1";
    if (m->vwc > 1 || m->write_atomic > 1 || m->irq_coalesce > 0xffff ||
        (m->async_cfg & ~ASYNC_CFG_MASK) != 0)
        return "a feature has a value Set Features cannot give it";
    if (m->nsq_alloc != c->nq - 1 || m->ncq_alloc != c->nq - 1)
        return "the queues allocated are not this controller's";
    return NULL;
}

/* Queues: ids, pairing, sizes, bases, vectors, then positions. */
static const char *
mig_check_queues(const struct nvme_ctrl *c, const struct mig_state *m)
{
    unsigned int i;

    if (m->sq[0].live != m->cq[0].live)
        return "one admin queue exists without the other";
    if (m->sq[0].live && (!(m->cc & NVME_CC_EN) || m->sq[0].cqid != 0 ||
                          m->sq[0].size != NVME_AQA_ASQS(m->aqa) + 1 ||
                          m->cq[0].size != NVME_AQA_ACQS(m->aqa) + 1 ||
                          m->sq[0].base != m->asq || m->cq[0].base != m->acq ||
                          !m->cq[0].ien || m->cq[0].iv != 0))
        return "the admin queues disagree with CC, AQA, ASQ or ACQ";
    for (i = 0; i <= c->nq; i++) {
        const struct sq *s = &m->sq[i];
        const struct cq *q = &m->cq[i];

        if (i > 0 && (s->live || q->live) && !m->sq[0].live)
            return "an I/O queue exists without admin queues";
        if (q->live &&
            (q->size < 2 || q->size > NVME_MQES + 1 || q->iv > c->nq ||
             (q->base & (NVME_PAGE_SIZE - 1)) != 0 || q->base == 0 ||
             q->head >= q->size || q->tail >= q->size))
            return "a completion queue's size, base, vector or indices are "
                   "out of range";
        if (s->live && (s->size < 2 || s->size > NVME_MQES + 1 ||
                        (s->base & (NVME_PAGE_SIZE - 1)) != 0 || s->base == 0 ||
                        s->head >= s->size || s->tail >= s->size))
            return "a submission queue's size, base or indices are out of "
                   "range";
        if (s->live && i > 0 &&
            (s->cqid == 0 || s->cqid > c->nq || !m->cq[s->cqid].live))
            return "a submission queue names a completion queue that does "
                   "not exist";
        if ((m->sq_db[i] != 0 && !(m->sq_db[i] & DB_NEW)) ||
            (m->sq_db[i] & ~DB_NEW) > 0xffff ||
            (m->cq_db[i] != 0 && !(m->cq_db[i] & DB_NEW)) ||
            (m->cq_db[i] & ~DB_NEW) > 0xffff)
            return "a doorbell not yet taken has an impossible value";
    }
    return NULL;
}

static const char *
mig_state_read(const struct nvme_ctrl *c, const void *early, size_t early_len,
               const void *state, size_t len, struct mig_state *m)
{
    struct mig_r r = { state, len, false };
    struct mig_r e = { early, early_len, false };
    bool bad = false, has_meta;
    const char *why;
    unsigned int i, shst;

    memset(m, 0, sizeof(*m));
    m->cc = r32(&r);
    m->csts = r32(&r);
    m->aqa = r32(&r);
    m->intms = r32(&r);
    m->asq = r64(&r);
    m->acq = r64(&r);
    m->running = rflag(&r, &bad);
    m->shn_pending = rflag(&r, &bad);
    has_meta = rflag(&r, &bad);
    if (r.short_read || bad)
        return "the registers are cut short or a flag is neither 0 nor 1";
    /* The metadata comes from the state when it changed after pre-copy
     * (or there was none), else from what pre-copy sent. */
    if (early_len != 0 && early_len != mig_meta_size(c))
        return "the pre-copy data is not this controller's metadata";
    if (has_meta) {
        why = mig_meta_read(c, &r, m);
    } else if (early_len != 0) {
        why = mig_meta_read(c, &e, m);
    } else {
        why = "the metadata is in neither the state nor a pre-copy";
    }
    if (why != NULL)
        return why;
    for (i = 0; i <= c->nq; i++) {
        m->sq[i].head = r16(&r);
        m->sq[i].tail = r16(&r);
        m->sq_db[i] = r32(&r);
        m->cq[i].head = r16(&r);
        m->cq[i].tail = r16(&r);
        m->cq[i].phase = rflag(&r, &bad);
        m->cq_db[i] = r32(&r);
    }
    m->naer = r8(&r);
    for (i = 0; i <= NVME_AERL; i++)
        m->aer_cid[i] = r16(&r);
    m->aer_pending = r32(&r);
    m->aer_error_masked = rflag(&r, &bad);
    m->bad_db = r32(&r);
    m->err_count = r64(&r);
    for (i = 0; i < NVME_ERROR_LOG_ENTRIES; i++) {
        struct err_entry *x = &m->errlog[i];

        x->count = r64(&r);
        x->sqid = r16(&r);
        x->cid = r16(&r);
        x->status = r16(&r);
        x->nsid = r32(&r);
    }
    m->units_read = r64(&r);
    m->units_written = r64(&r);
    m->host_reads = r64(&r);
    m->host_writes = r64(&r);
    m->media_errors = r64(&r);
    m->unsafe_shutdowns = r64(&r);
    m->busy_ns = r64(&r);
    m->power_on_ns = r64(&r);
    m->pci_len = r32(&r);
    m->pci = rtake(&r, m->pci_len);
    if (r.short_read)
        return "the state is cut short";
    if (r.left != 0)
        return "the state is longer than its fields";
    if (bad)
        return "a flag of the state is neither 0 nor 1";

    /* Registers: values the guest could have written, a status the
     * controller could have reached from them. */
    shst = (m->csts & NVME_CSTS_SHST_MASK) >> NVME_CSTS_SHST_SHIFT;
    if ((m->cc & ~NVME_CC_WRITABLE) != 0 ||
        (m->aqa & ~NVME_AQA_WRITABLE) != 0 || (m->asq & 0xfff) != 0 ||
        (m->acq & 0xfff) != 0)
        return "CC, AQA, ASQ or ACQ has bits set that are not writable";
    if ((m->csts & ~(NVME_CSTS_RDY | NVME_CSTS_CFS | NVME_CSTS_SHST_MASK)) !=
            0 ||
        shst > NVME_SHST_COMPLETE)
        return "CSTS has reserved bits or values set";
    if ((m->csts & NVME_CSTS_RDY) &&
        (!(m->cc & NVME_CC_EN) ||
         enable_refusal(m->cc, m->aqa, m->asq, m->acq) != NULL))
        return "CSTS.RDY is set with a CC, AQA, ASQ or ACQ that cannot "
               "enable";
    if (!(m->csts & NVME_CSTS_RDY) &&
        (m->running || m->shn_pending || shst || m->sq[0].live))
        return "a controller that is not ready runs queues or shuts down";
    if (m->running && (m->csts & NVME_CSTS_CFS))
        return "a controller with fatal status runs queues";
    if (m->shn_pending != (shst == NVME_SHST_OCCURRING))
        return "the shutdown in progress disagrees with CSTS.SHST";
    why = mig_check_queues(c, m);
    if (why != NULL)
        return why;
    if (m->naer > NVME_AERL + 1 || (m->aer_pending & ~3u) != 0 ||
        (m->bad_db & ~3u) != 0)
        return "asynchronous events outstanding are out of range";
    for (i = 0; i < NVME_ERROR_LOG_ENTRIES; i++)
        if (m->errlog[i].status > 0x7fff)
            return "an Error Information entry's status is out of range";
    return NULL;
}

static int
nvme_mig_load(void *opaque, uint32_t version, const void *early,
              size_t early_len, const void *state, size_t len)
{
    struct nvme_ctrl *c = opaque;
    struct mig_state *m;
    const char *why = NULL;
    char err[160];
    unsigned int i;
    int rc;

    if (version != NVME_MIG_VERSION) {
        umdev_log(c->log, LOG_ERR,
                  "%s: migrated state refused: format %u, this controller "
                  "reads %u",
                  c->name, version, NVME_MIG_VERSION);
        return -EINVAL;
    }
    m = malloc(sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    why = mig_state_read(c, early, early_len, state, len, m);
    if (why != NULL) {
        umdev_log(c->log, LOG_ERR, "%s: migrated state refused: %s", c->name,
                  why);
        free(m);
        return -EINVAL;
    }
    lock_ctrl(c);
    /* RESUMING is entered through STOP: the controller is stopped and
     * its backend idle. */
    assert(c->mig_stopped && nvme_be_busy(c->be) == 0);
    /* Last of the checks, as it is also the first change: lib/pci
     * checks its whole blob before taking any of it. */
    rc = umdev_pci_state_load(c->pci, m->pci, m->pci_len, err, sizeof(err));
    if (rc < 0) {
        pthread_mutex_unlock(&c->lock);
        umdev_log(c->log, LOG_ERR,
                  "%s: migrated state refused: config space: %s", c->name, err);
        free(m);
        return rc;
    }
    c->cc = m->cc;
    c->csts = m->csts;
    c->aqa = m->aqa;
    c->intms = m->intms;
    c->asq = m->asq;
    c->acq = m->acq;
    c->running = m->running;
    c->shn_pending = m->shn_pending;
    c->shn_flushing = false;
    c->room_waiter = 0;
    c->arbitration = m->arbitration;
    c->vwc = m->vwc;
    c->irq_coalesce = m->irq_coalesce;
    c->async_cfg = m->async_cfg;
    c->write_atomic = m->write_atomic;
    c->nsq_alloc = m->nsq_alloc;
    c->ncq_alloc = m->ncq_alloc;
    c->temp_over = m->temp_over;
    c->temp_under = m->temp_under;
    memcpy(c->coalesce_off, m->coalesce_off, sizeof(c->coalesce_off));
    c->dbbuf = m->dbbuf;
    c->dbbuf_db = m->dbbuf_db;
    c->dbbuf_ei = m->dbbuf_ei;
    for (i = 0; i < NVME_MAX_QUEUES; i++) {
        memset(&c->sq[i], 0, offsetof(struct sq, db));
        memset(&c->cq[i], 0, offsetof(struct cq, db));
        atomic_store(&c->sq[i].db, 0);
        atomic_store(&c->cq[i].db, 0);
    }
    for (i = 0; i <= c->nq; i++) {
        struct sq *s = &c->sq[i];
        struct cq *q = &c->cq[i];

        if (m->sq[i].live) {
            s->live = true;
            s->size = m->sq[i].size;
            s->cqid = m->sq[i].cqid;
            s->base = m->sq[i].base;
            s->head = m->sq[i].head;
            s->tail = m->sq[i].tail;
            c->cq[s->cqid].nsq++;
        }
        if (m->cq[i].live) {
            q->live = true;
            q->ien = m->cq[i].ien;
            q->iv = m->cq[i].iv;
            q->size = m->cq[i].size;
            q->base = m->cq[i].base;
            q->head = m->cq[i].head;
            q->tail = m->cq[i].tail;
            q->phase = m->cq[i].phase;
        }
        atomic_store(&s->db, m->sq_db[i]);
        atomic_store(&q->db, m->cq_db[i]);
    }
    c->naer = m->naer;
    memcpy(c->aer_cid, m->aer_cid, sizeof(c->aer_cid));
    c->aer_pending = m->aer_pending;
    c->aer_error_masked = m->aer_error_masked;
    atomic_store(&c->bad_db, m->bad_db);
    c->err_count = m->err_count;
    memcpy(c->errlog, m->errlog, sizeof(c->errlog));
    c->units_read = m->units_read;
    c->units_written = m->units_written;
    c->host_reads = m->host_reads;
    c->host_writes = m->host_writes;
    c->media_errors = m->media_errors;
    c->unsafe_shutdowns = m->unsafe_shutdowns;
    c->busy_ns = m->busy_ns;
    c->power_on_prior_ns = m->power_on_ns;
    c->created_ns = now_ns();
    c->mig_loaded = true;
    pthread_mutex_unlock(&c->lock);
    free(m);
    return 0;
}

static const struct umdev_mig_ops nvme_mig = {
    .type = "nvme",
    .version = NVME_MIG_VERSION,
    .config = nvme_mig_config,
    .stop = nvme_mig_stop,
    .resume = nvme_mig_resume,
    .save = nvme_mig_save,
    .load = nvme_mig_load,
    .precopy = nvme_mig_precopy,
    .precopy_dirty = nvme_mig_precopy_dirty,
};

static const struct umdev_dev_ops nvme_ops = {
    .reset = nvme_reset,
    .detach = nvme_detach,
    .mig = &nvme_mig,
};

/* ------------------------------------------------------------------ */
/* Mediation profile (docs/CRITERIA.md)                                 */

#define W4 UMDEV_W(4)
#define W48 (UMDEV_W(4) | UMDEV_W(8))

static const struct umdev_profile_reg ctrl_regs[] = {
    { "CAP", NVME_REG_CAP, 8, W48, UMDEV_PROFILE_RW, false, false,
      "controller capabilities (writes ignored)" },
    { "VS", NVME_REG_VS, 4, W4, UMDEV_PROFILE_RW, false, false,
      "version 1.4 (writes ignored)" },
    { "INTMS", NVME_REG_INTMS, 4, W4, UMDEV_PROFILE_RW, false, false,
      "interrupt mask set (INTx, MSI)" },
    { "INTMC", NVME_REG_INTMC, 4, W4, UMDEV_PROFILE_RW, false, false,
      "interrupt mask clear (INTx, MSI)" },
    { "CC", NVME_REG_CC, 4, W4, UMDEV_PROFILE_RW, false, false,
      "controller configuration: enable, shutdown, queue entry sizes" },
    { "CSTS", NVME_REG_CSTS, 4, W4, UMDEV_PROFILE_RW, false, true,
      "controller status: ready, fatal, shutdown (writes ignored)" },
    { "NSSR", NVME_REG_NSSR, 4, W4, UMDEV_PROFILE_RW, false, false,
      "subsystem reset, not supported (reads 0, writes ignored)" },
    { "AQA", NVME_REG_AQA, 4, W4, UMDEV_PROFILE_RW, false, false,
      "admin queue sizes" },
    { "ASQ", NVME_REG_ASQ, 8, W48, UMDEV_PROFILE_RW, false, false,
      "admin submission queue base" },
    { "ACQ", NVME_REG_ACQ, 8, W48, UMDEV_PROFILE_RW, false, false,
      "admin completion queue base" },
    { "CMBLOC", 0x38, 4, W4, UMDEV_PROFILE_RW, false, false,
      "no controller memory buffer (reads 0, writes ignored)" },
    { "CMBSZ", 0x3c, 4, W4, UMDEV_PROFILE_RW, false, false,
      "no controller memory buffer (reads 0, writes ignored)" },
};
#define NCTRL_REGS (sizeof(ctrl_regs) / sizeof(ctrl_regs[0]))

static int
set_profile(struct nvme_ctrl *c)
{
    struct umdev_profile_reg r[NCTRL_REGS + 2 * NVME_MAX_QUEUES + 2];
    char names[2 * NVME_MAX_QUEUES][24];
    struct umdev_profile_region region = { .index = UMDEV_PCI_BAR0_REGION };
    struct umdev_profile p = {
        .type = c->type,
        .regions = &region,
        .nregions = 1,
        .data_path = UMDEV_PROFILE_DP_RING,
        .max_msgs_per_io = 0,
        .data_path_unit = "command",
        .data_path_note =
            "commands and completions in guest memory, I/O queues' "
            "doorbells in the shadow doorbell buffer (Doorbell Buffer "
            "Config); a doorbell register write only wakes a sleeping "
            "poller, as EventIdx asks",
    };
    size_t n = 0, i;

    for (i = 0; i < NCTRL_REGS; i++)
        r[n++] = ctrl_regs[i];
    for (i = 0; i < 2u * (c->nq + 1); i++) {
        snprintf(names[i], sizeof(names[i]), "%s%zu%s", (i & 1) ? "CQ" : "SQ",
                 i / 2, (i & 1) ? "HDBL" : "TDBL");
        r[n++] = (struct umdev_profile_reg){
            .name = names[i],
            .offset = NVME_REG_DBS + i * 4,
            .size = 4,
            .widths = W4,
            .access = UMDEV_PROFILE_W,
            .data_path = true,
            .purpose = i < 2 ? "admin queue doorbell"
                             : "I/O queue doorbell: wakes the poller "
                               "(the shadow doorbell carries the value)",
        };
    }
    r[n++] = (struct umdev_profile_reg){
        .name = "MSIX_TABLE",
        .offset = NVME_MSIX_TABLE,
        .size = (c->nq + 1) * 16u,
        .widths = W48,
        .access = UMDEV_PROFILE_RW,
        .purpose = "MSI-X table (lib/pci)",
    };
    r[n++] = (struct umdev_profile_reg){
        .name = "MSIX_PBA",
        .offset = NVME_MSIX_PBA,
        .size = 8,
        .widths = W48,
        .access = UMDEV_PROFILE_RW,
        .is_volatile = true,
        .purpose = "MSI-X pending bits (lib/pci; writes ignored)",
    };
    region.regs = r;
    region.nregs = n;
    return umdev_dev_set_profile(c->dev, &p);
}

/* ------------------------------------------------------------------ */
/* Construction                                                        */

/* FNV-1a: stable identifiers from the instance UUID and a salt. */
static uint64_t
fnv1a(const uint8_t *p, size_t n, uint64_t h)
{
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void
derive_ids(struct nvme_ctrl *c)
{
    uint64_t a = fnv1a(c->uuid, 16, 0xcbf29ce484222325ull ^ 0x65756936);
    uint64_t b = fnv1a(c->uuid, 16, a ^ 0x6e677569);
    unsigned int i;

    /* EUI-64 with the U/L bit set: locally administered, no IEEE OUI
     * claimed (README "Identifiers"). */
    for (i = 0; i < 8; i++)
        c->eui64[i] = (uint8_t)(a >> (56 - 8 * i));
    c->eui64[0] = (uint8_t)((c->eui64[0] & ~1u) | 2u);
    for (i = 0; i < 8; i++)
        c->nguid[i] = (uint8_t)(b >> (56 - 8 * i));
    memcpy(c->nguid + 8, c->eui64, 8);
    for (i = 0; i < 10; i++)
        snprintf(c->serial + 2 * i, 3, "%02x", c->uuid[i]);
}

int
nvme_ctrl_create(const struct nvme_ctrl_config *cfg, struct nvme_ctrl **out)
{
    struct umdev_pci_id id = {
        .vendor_id = NVME_VENDOR_ID,
        .device_id = NVME_DEVICE_ID,
        .subsystem_vendor_id = NVME_SUBSYS_VENDOR_ID,
        .revision = NVME_REVISION,
        .class_code = NVME_CLASS,
        .interrupt_pin = 1,
    };
    struct umdev_dev_info info = {
        .pci = true,
        .ops = &nvme_ops,
        .max_data_xfer_size = 0,
    };
    struct umdev_region_desc bar0 = {
        .size = NVME_BAR0_SIZE,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar0_access,
    };
    struct nvme_ctrl *c;
    int rc;

    *out = NULL;
    if (cfg->be == NULL)
        return -EINVAL;
    if (cfg->nr_io_queues == 0 || cfg->nr_io_queues > NVME_MAX_IO_QUEUES ||
        cfg->size == 0 || cfg->size % (1u << NVME_LBA_SHIFT) != 0) {
        nvme_be_close(cfg->be);
        return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        nvme_be_close(cfg->be);
        return -ENOMEM;
    }
    c->be = cfg->be;
    c->wake_efd = -1;
    c->log = cfg->log;
    c->nq = cfg->nr_io_queues;
    c->geom.nlba = cfg->size >> NVME_LBA_SHIFT;
    c->geom.lba_shift = NVME_LBA_SHIFT;
    c->geom.max_xfer = NVME_MAX_XFER;
    c->poll_min_ns =
        (uint64_t)(cfg->poll_us ? cfg->poll_us : NVME_DEFAULT_POLL_US) * 1000u;
    c->poll_max_ns = (uint64_t)(cfg->poll_max_us ? cfg->poll_max_us
                                                 : NVME_DEFAULT_POLL_MAX_US) *
                     1000u;
    if (c->poll_max_ns < c->poll_min_ns)
        c->poll_max_ns = c->poll_min_ns;
    c->poll_ns = c->poll_min_ns;
    c->created_ns = now_ns();
    c->mig_stop_timeout_ms = cfg->mig_stop_timeout_ms
                                 ? cfg->mig_stop_timeout_ms
                                 : NVME_MIG_STOP_TIMEOUT_MS;
    memcpy(c->uuid, cfg->uuid, 16);
    snprintf(c->type, sizeof(c->type), "%s", cfg->type ? cfg->type : "nvme");
    derive_ids(c);
    features_default(c);
    c->name = strdup(cfg->name ? cfg->name : "nvme");
    c->reqs = calloc(NR_REQS, sizeof(*c->reqs));
    c->scratch = malloc(NVME_MAX_XFER);
    c->wake_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->name == NULL || c->reqs == NULL || c->scratch == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if (c->wake_efd < 0) {
        rc = -errno;
        goto fail;
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        rc = -ENOMEM;
        goto fail;
    }
    c->lock_init = true;

    info.name = c->name;
    info.opaque = c;
    info.log = c->log;
    id.subsystem_id = (uint16_t)c->nq;
    bar0.opaque = c;
    rc = umdev_dev_create(&info, &c->dev);
    /* Queues and data are reached in place: guest memory that only
     * messages reach cannot work, and the operator is told why. */
    if (rc == 0)
        umdev_dev_set_needs_shared_memory(c->dev, true);
    if (rc == 0)
        rc = umdev_pci_create(c->dev, &id, &c->pci);
    if (rc == 0)
        rc = umdev_pci_bar_add(c->pci, 0, UMDEV_PCI_BAR_MEM64, false,
                               NVME_BAR0_SIZE, &bar0);
    if (rc == 0)
        rc = umdev_pci_cap_add_pm(c->pci);
    if (rc > 0)
        rc = umdev_pci_cap_add_pcie(c->pci);
    if (rc > 0)
        rc = umdev_pci_cap_add_msix(c->pci, c->nq + 1, 0, NVME_MSIX_TABLE, 0,
                                    NVME_MSIX_PBA);
    if (rc >= 0)
        rc = set_profile(c);
    if (rc < 0)
        goto fail;
    if (!cfg->manual) {
        rc = -pthread_create(&c->thread, NULL, poller, c);
        if (rc < 0)
            goto fail;
        c->thread_started = true;
    }
    *out = c;
    return 0;
fail:
    nvme_ctrl_destroy(c);
    return rc;
}

void
nvme_ctrl_destroy(struct nvme_ctrl *c)
{
    if (c == NULL)
        return;
    if (c->thread_started) {
        lock_ctrl(c);
        c->stop = true;
        pthread_mutex_unlock(&c->lock);
        wake(c);
        pthread_join(c->thread, NULL);
    }
    if (c->lock_init && c->be != NULL)
        drain(c);
    /* The device first (its client detaches, which resets us: the
     * poller is gone, so that only clears state). */
    umdev_dev_destroy(c->dev);
    umdev_pci_destroy(c->pci);
    nvme_be_close(c->be);
    if (c->wake_efd >= 0)
        close(c->wake_efd);
    if (c->lock_init)
        pthread_mutex_destroy(&c->lock);
    free(c->reqs);
    free(c->scratch);
    free(c->mig_meta);
    free(c->name);
    free(c);
}

unsigned int
nvme_ctrl_poll(struct nvme_ctrl *c)
{
    uint64_t deadline, v;
    unsigned int n;

    assert(!c->thread_started);
    lock_ctrl(c);
    /* What BAR0 writes signalled for a thread that is not there. */
    if (read(c->wake_efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing was written. */
    }
    n = pass(c, &deadline);
    eventidx_update(c, n == 0 && nvme_be_busy(c->be) == 0);
    pthread_mutex_unlock(&c->lock);
    return n;
}

void
nvme_ctrl_rewind(struct nvme_ctrl *c)
{
    uint64_t v;

    lock_ctrl(c);
    assert(!(c->cc & NVME_CC_EN) && nvme_be_busy(c->be) == 0);
    memset(c->errlog, 0, sizeof(c->errlog));
    c->err_count = 0;
    c->units_read = c->units_written = 0;
    c->host_reads = c->host_writes = 0;
    c->media_errors = c->unsafe_shutdowns = 0;
    c->busy_ns = 0;
    c->created_ns = now_ns();
    c->power_on_prior_ns = 0;
    c->poll_ns = c->poll_min_ns;
    memset(&c->st, 0, sizeof(c->st));
    atomic_store(&c->doorbells, 0);
    if (read(c->wake_efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing was written. */
    }
    pthread_mutex_unlock(&c->lock);
}

struct umdev_dev *
nvme_ctrl_dev(struct nvme_ctrl *c)
{
    return c->dev;
}

struct umdev_pci *
nvme_ctrl_pci(struct nvme_ctrl *c)
{
    return c->pci;
}

void
nvme_ctrl_get_stats(struct nvme_ctrl *c, struct nvme_ctrl_stats *out)
{
    lock_ctrl(c);
    *out = c->st;
    out->doorbells = atomic_load(&c->doorbells);
    out->poll_window_ns = c->poll_ns;
    out->poll_max_ns = c->poll_max_ns;
    out->ready = (c->csts & NVME_CSTS_RDY) != 0;
    out->fatal = (c->csts & NVME_CSTS_CFS) != 0;
    out->shadow = c->dbbuf;
    out->direct = nvme_be_direct(c->be);
    pthread_mutex_unlock(&c->lock);
}
