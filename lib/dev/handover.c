/*
 * Handover of a live client from one process to another (docs/PROTOCOL.md
 * "Handover"): the package (a versioned blob and the descriptors it
 * names), its strict loader, and its transport over a UNIX socket. The
 * server's part (which fds the loop watches, commit and abort) is in
 * server.c.
 *
 * The blob is in host byte order: both ends run on one machine. It is a
 * header, then records in a fixed order of kinds (CONN, RX?, TX*, DMA*,
 * IRQ*, DEV, HOST?, STATE, END), each a record header and a payload
 * padded to 8 bytes. Descriptors are named by their index in the
 * package's array, -1 for none; each one is named at least once. HOST
 * (the device's own host endpoints) came with format 2: a package
 * without one is written as format 1, which older loaders read.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dev_priv.h"
#include "umdev/dev_testing.h"

#define HND_MAGIC "UMDEVHND"
/* Format 1 without a HOST record, 2 with one (the newest we read). */
#define HND_FORMAT_BASE 1u
#define HND_FORMAT_HOST 2u
#define HND_FORMAT HND_FORMAT_HOST

struct hnd_header {
    char magic[8];
    uint32_t format;
    uint32_t nfds;                 /* descriptors the package carries */
    uint64_t len;                  /* the whole blob */
    char type[UMDEV_MIG_TYPE_MAX]; /* the device's migration type */
    uint64_t sum;                  /* FNV-1a 64 of the blob with this field 0 */
};
_Static_assert(sizeof(struct hnd_header) == 64, "handover header");

struct hnd_record {
    uint32_t kind;
    uint32_t reserved;
    uint64_t len; /* payload bytes, before padding to 8 */
};
_Static_assert(sizeof(struct hnd_record) == 16, "handover record");

enum {
    REC_CONN = 1,
    REC_RX = 2,
    REC_TX = 3,
    REC_DMA = 4,
    REC_IRQ = 5,
    REC_DEV = 6,
    REC_STATE = 7,
    REC_END = 8,
    REC_HOST = 9, /* format 2; between DEV and STATE */
    REC_MAX = REC_HOST,
};

/* Each kind's place in the package's order. */
static const uint8_t rec_rank[REC_MAX + 1] = {
    [REC_CONN] = 1, [REC_RX] = 2,    [REC_TX] = 3,
    [REC_DMA] = 4,  [REC_IRQ] = 5,   [REC_DEV] = 6,
    [REC_HOST] = 7, [REC_STATE] = 8, [REC_END] = 9,
};

#define CAPS_WRITE_MULTIPLE (1u << 0)
#define CAPS_MIGRATION (1u << 1)
#define CAPS_PRECOPY_INFO (1u << 2)
#define CAPS_ALL (CAPS_WRITE_MULTIPLE | CAPS_MIGRATION | CAPS_PRECOPY_INFO)

struct hnd_caps {
    uint32_t max_msg_fds;
    uint32_t max_data_xfer_size;
    uint32_t max_dma_maps;
    uint32_t flags; /* CAPS_* */
    uint64_t pgsizes;
    uint64_t mig_pgsize;
    uint64_t mig_max_bitmap_size;
};
_Static_assert(sizeof(struct hnd_caps) == 40, "handover caps");

#define CONN_NEGOTIATED (1u << 0)
#define CONN_PRECOPY_INFO (1u << 1)
#define CONN_ALL (CONN_NEGOTIATED | CONN_PRECOPY_INFO)

struct hnd_conn {
    int32_t listen_fd;
    int32_t client_fd; /* -1: no client attached */
    uint32_t flags;    /* CONN_* */
    uint16_t next_id;  /* of the server's next request (DMA_READ/WRITE) */
    uint16_t reserved;
    struct hnd_caps local, peer;
};
_Static_assert(sizeof(struct hnd_conn) == 96, "handover conn");

struct hnd_fdset {
    uint64_t owner; /* offset of the owning message in the RX bytes */
    uint32_t nfds;
    uint32_t overflow;
    int32_t fds[UMDEV_WIRE_MAX_MSG_FDS];
};
_Static_assert(sizeof(struct hnd_fdset) == 80, "handover fdset");

/* RX: this, nsets hnd_fdset, then nbytes bytes. */
struct hnd_rx {
    uint64_t nbytes;
    uint32_t nsets;
    uint32_t reserved;
};

/* TX: this, then the bytes (at least one). */
struct hnd_tx {
    uint32_t nfds;
    uint32_t reserved;
    int32_t fds[UMDEV_WIRE_MAX_MSG_FDS];
};
_Static_assert(sizeof(struct hnd_tx) == 72, "handover tx");

struct hnd_dma {
    uint64_t iova;
    uint64_t size;
    uint64_t offset; /* into the fd's file */
    uint32_t prot;   /* VFIO_USER_DMA_MAP_FLAG_* */
    int32_t fd;      /* -1: mapped without one (messages reach it) */
};
_Static_assert(sizeof(struct hnd_dma) == 32, "handover dma");

/* IRQ: this, then count hnd_vec. */
struct hnd_irq {
    uint32_t index;
    uint32_t count;
    int32_t unmask_fd; /* INTx's resample eventfd */
    uint32_t reserved;
};

struct hnd_vec {
    int32_t efd;
    uint8_t masked, pending, held, reserved;
};
_Static_assert(sizeof(struct hnd_vec) == 8, "handover vec");

struct hnd_dev {
    uint32_t intx_level;
    uint32_t reserved;
};

/* HOST: this, then count hnd_hend. */
struct hnd_host {
    uint32_t count;
    uint32_t reserved;
};

struct hnd_hend {
    uint32_t kind; /* UMDEV_HOST_END_* */
    uint32_t tag;  /* the device's */
    int32_t fd;
    uint32_t reserved;
};
_Static_assert(sizeof(struct hnd_hend) == 16, "handover host end");

struct umdev_handover {
    uint8_t *blob;
    size_t len;
    int *fds;
    size_t nfds;
};

/* ---- the package object ---- */

#define SUM_AT offsetof(struct hnd_header, sum)

/* FNV-1a over the blob, its sum field taken as zero: a package damaged
 * on its way (or cut) is refused before a byte of it is believed. */
static uint64_t
blob_sum(const uint8_t *b, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = i >= SUM_AT && i < SUM_AT + 8 ? 0 : b[i];

        h = (h ^ c) * 0x100000001b3ull;
    }
    return h;
}

uint64_t
dev_handover_sum(const void *blob, size_t len)
{
    return blob_sum(blob, len);
}

static void
close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

int
umdev_handover_wrap(const void *blob, size_t len, int *fds, size_t nfds,
                    struct umdev_handover **out)
{
    struct umdev_handover *h = NULL;
    int rc = -ENOMEM;

    *out = NULL;
    if (len > UMDEV_HANDOVER_MAX_BYTES || nfds > UMDEV_HANDOVER_MAX_FDS) {
        rc = -E2BIG;
        goto fail;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        goto fail;
    h->blob = malloc(len ? len : 1);
    h->fds = malloc((nfds ? nfds : 1) * sizeof(int));
    if (h->blob == NULL || h->fds == NULL)
        goto fail;
    if (len)
        memcpy(h->blob, blob, len);
    h->len = len;
    for (size_t i = 0; i < nfds; i++) {
        h->fds[i] = fds[i];
        fds[i] = -1;
    }
    h->nfds = nfds;
    *out = h;
    return 0;
fail:
    close_all(fds, nfds);
    if (h != NULL) {
        free(h->blob);
        free(h->fds);
        free(h);
    }
    return rc;
}

const void *
umdev_handover_blob(const struct umdev_handover *h, size_t *len)
{
    *len = h->len;
    return h->blob;
}

const int *
umdev_handover_fds(const struct umdev_handover *h, size_t *nfds)
{
    *nfds = h->nfds;
    return h->fds;
}

void
umdev_handover_free(struct umdev_handover *h)
{
    if (h == NULL)
        return;
    close_all(h->fds, h->nfds);
    free(h->fds);
    free(h->blob);
    free(h);
}

bool
umdev_dev_saving_handover(const struct umdev_dev *dev)
{
    return dev->saving_handover;
}

int
umdev_dev_set_host_end_ops(struct umdev_dev *dev,
                           const struct umdev_host_end_ops *ops, void *opaque)
{
    if (ops == NULL || ops->save == NULL || ops->restore == NULL ||
        ops->release == NULL)
        return -EINVAL;
    if (dev->conn != NULL)
        return -EBUSY;
    dev->hend_ops = ops;
    dev->hend_opaque = opaque;
    return 0;
}

/* ---- saving ---- */

struct packer {
    uint8_t *d;
    size_t len, cap;
    int *fds;
    size_t nfds, fd_cap;
    int err;
    /* DMA files already in fds[] (one descriptor per file). */
    struct {
        dev_t dev;
        ino_t ino;
        int32_t idx;
    } * files;
    size_t nfiles;
};

static void *
pk_reserve(struct packer *p, size_t n)
{
    size_t pad = (8 - n % 8) % 8;
    uint8_t *at;

    if (p->err)
        return NULL;
    if (n > UMDEV_HANDOVER_MAX_BYTES ||
        p->len + n + pad > UMDEV_HANDOVER_MAX_BYTES) {
        p->err = -E2BIG;
        return NULL;
    }
    if (p->len + n + pad > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        uint8_t *d;

        while (cap < p->len + n + pad)
            cap *= 2;
        d = realloc(p->d, cap);
        if (d == NULL) {
            p->err = -ENOMEM;
            return NULL;
        }
        p->d = d;
        p->cap = cap;
    }
    at = p->d + p->len;
    memset(at, 0, n + pad);
    p->len += n + pad;
    return at;
}

static void
pk_put(struct packer *p, const void *src, size_t n)
{
    void *at = pk_reserve(p, n);

    if (at != NULL && n)
        memcpy(at, src, n);
}

/* Start a record; returns its offset for pk_end(). */
static size_t
pk_begin(struct packer *p, uint32_t kind)
{
    struct hnd_record r = { .kind = kind };
    size_t at = p->len;

    pk_put(p, &r, sizeof(r));
    return at;
}

static void
pk_end(struct packer *p, size_t at, size_t payload)
{
    struct hnd_record r;

    if (p->err)
        return;
    memcpy(&r, p->d + at, sizeof(r));
    r.len = payload;
    memcpy(p->d + at, &r, sizeof(r));
}

/* A duplicate of @fd into the package: its index, or -1 with p->err. */
static int32_t
pk_fd(struct packer *p, int fd)
{
    int d;

    if (p->err)
        return -1;
    if (p->nfds == UMDEV_HANDOVER_MAX_FDS) {
        p->err = -E2BIG;
        return -1;
    }
    if (p->nfds == p->fd_cap) {
        size_t cap = p->fd_cap ? p->fd_cap * 2 : 16;
        int *v = realloc(p->fds, cap * sizeof(*v));

        if (v == NULL) {
            p->err = -ENOMEM;
            return -1;
        }
        p->fds = v;
        p->fd_cap = cap;
    }
    d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0) {
        p->err = -errno;
        return -1;
    }
    p->fds[p->nfds] = d;
    return (int32_t)p->nfds++;
}

static void
pk_caps(struct hnd_caps *o, const struct conn_caps *c)
{
    o->max_msg_fds = c->max_msg_fds;
    o->max_data_xfer_size = c->max_data_xfer_size;
    o->max_dma_maps = c->max_dma_maps;
    o->flags = (c->write_multiple ? CAPS_WRITE_MULTIPLE : 0) |
               (c->migration ? CAPS_MIGRATION : 0) |
               (c->precopy_info ? CAPS_PRECOPY_INFO : 0);
    o->pgsizes = c->pgsizes;
    o->mig_pgsize = c->mig_pgsize;
    o->mig_max_bitmap_size = c->mig_max_bitmap_size;
}

static int
pk_tx(void *opaque, const uint8_t *data, size_t len, const int *fds,
      size_t nfds)
{
    struct packer *p = opaque;
    struct hnd_tx t = { .nfds = (uint32_t)nfds };
    size_t at = pk_begin(p, REC_TX);

    for (size_t i = 0; i < UMDEV_WIRE_MAX_MSG_FDS; i++)
        t.fds[i] = i < nfds ? pk_fd(p, fds[i]) : -1;
    pk_put(p, &t, sizeof(t));
    pk_put(p, data, len);
    pk_end(p, at, sizeof(t) + len);
    return p->err;
}

static void
pk_conn(struct packer *p, struct umdev_dev *dev, int listen_fd)
{
    struct hnd_conn c = { .listen_fd = pk_fd(p, listen_fd), .client_fd = -1 };
    size_t at = pk_begin(p, REC_CONN);

    if (dev->conn != NULL) {
        c.client_fd = pk_fd(p, conn_fd(dev->conn));
        c.flags = (dev->negotiated ? CONN_NEGOTIATED : 0) |
                  (dev->precopy_info ? CONN_PRECOPY_INFO : 0);
        c.next_id = conn_peek_next_id(dev->conn);
        pk_caps(&c.local, conn_local_caps(dev->conn));
        pk_caps(&c.peer, conn_peer_caps(dev->conn));
    }
    pk_put(p, &c, sizeof(c));
    pk_end(p, at, sizeof(c));
    if (dev->conn == NULL)
        return;

    {
        struct conn_fdset sets[CONN_RX_MAX_FDSETS];
        const uint8_t *bytes;
        size_t nsets, n = conn_export_rx(dev->conn, &bytes, sets, &nsets);

        if (n > 0 || nsets > 0) {
            struct hnd_rx rx = { .nbytes = n, .nsets = (uint32_t)nsets };

            at = pk_begin(p, REC_RX);
            pk_put(p, &rx, sizeof(rx));
            for (size_t i = 0; i < nsets; i++) {
                struct hnd_fdset s = { .owner = sets[i].owner,
                                       .nfds = (uint32_t)sets[i].nfds,
                                       .overflow = sets[i].overflow };

                for (size_t k = 0; k < UMDEV_WIRE_MAX_MSG_FDS; k++)
                    s.fds[k] = k < sets[i].nfds ? pk_fd(p, sets[i].fds[k]) : -1;
                pk_put(p, &s, sizeof(s));
            }
            pk_put(p, bytes, n);
            pk_end(p, at, sizeof(rx) + nsets * sizeof(struct hnd_fdset) + n);
        }
    }
    if (p->err == 0)
        conn_export_tx(dev->conn, pk_tx, p);
}

/* One descriptor per DMA file: QEMU maps all of guest RAM from one. */
static int32_t
pk_dma_fd(struct packer *p, int fd)
{
    struct stat st;
    int32_t idx;
    void *v;

    if (p->err)
        return -1;
    if (fstat(fd, &st) < 0) {
        p->err = -errno;
        return -1;
    }
    for (size_t i = 0; i < p->nfiles; i++)
        if (p->files[i].dev == st.st_dev && p->files[i].ino == st.st_ino)
            return p->files[i].idx;
    v = realloc(p->files, (p->nfiles + 1) * sizeof(*p->files));
    if (v == NULL) {
        p->err = -ENOMEM;
        return -1;
    }
    p->files = v;
    idx = pk_fd(p, fd);
    p->files[p->nfiles].dev = st.st_dev;
    p->files[p->nfiles].ino = st.st_ino;
    p->files[p->nfiles++].idx = idx;
    return idx;
}

static void
pk_dma(struct packer *p, struct umdev_dev *dev)
{
    struct dma_table *t = &dev->dma;

    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->n && p->err == 0; i++) {
        const struct dma_map *m = t->slots[i].map;
        struct hnd_dma d = { .iova = m->iova,
                             .size = m->size,
                             .offset = m->base != NULL ? m->offset : 0,
                             .prot = m->prot,
                             .fd = -1 };
        size_t at = pk_begin(p, REC_DMA);

        if (m->base != NULL)
            d.fd = pk_dma_fd(p, m->file->fd);
        pk_put(p, &d, sizeof(d));
        pk_end(p, at, sizeof(d));
    }
    pthread_rwlock_unlock(&t->lock);
}

static void
pk_irqs(struct packer *p, struct umdev_dev *dev)
{
    for (uint32_t i = 0; i < DEV_MAX_IRQ_INDEX && p->err == 0; i++) {
        struct dev_irq *irq = &dev->irqs[i];
        struct hnd_irq h = { .index = i, .count = irq->count, .unmask_fd = -1 };
        size_t at;

        if (irq->count == 0)
            continue;
        at = pk_begin(p, REC_IRQ);
        if (irq->unmask_efd >= 0)
            h.unmask_fd = pk_fd(p, irq->unmask_efd);
        pk_put(p, &h, sizeof(h));
        /* The device is stopped and the client not served: nothing
         * changes these but a late device thread, which the lock keeps
         * out while they are read. */
        pthread_mutex_lock(&dev->irq_lock);
        for (uint32_t s = 0; s < irq->count; s++) {
            const struct dev_irq_vec *v = &irq->vec[s];
            struct hnd_vec o = { .efd = -1,
                                 .masked = v->masked,
                                 .pending = v->pending,
                                 .held = v->held };

            if (v->efd >= 0)
                o.efd = pk_fd(p, v->efd);
            pk_put(p, &o, sizeof(o));
        }
        pthread_mutex_unlock(&dev->irq_lock);
        pk_end(p, at, sizeof(h) + (size_t)irq->count * sizeof(struct hnd_vec));
    }
}

static bool
hend_kind_ok(uint32_t kind)
{
    return kind == UMDEV_HOST_END_LISTENER || kind == UMDEV_HOST_END_STREAM ||
           kind == UMDEV_HOST_END_PTY;
}

/* The device's host endpoints (its save hook, the device stopped) as a
 * HOST record, if it has any. Return: how many, or a negative errno. */
static int
pk_host(struct packer *p, struct umdev_dev *dev)
{
    struct umdev_host_end ends[UMDEV_HANDOVER_MAX_HOST_ENDS];
    struct hnd_host h = { 0 };
    size_t at;
    int n;

    if (dev->hend_ops == NULL || p->err)
        return p->err;
    n = dev->hend_ops->save(dev->hend_opaque, ends,
                            UMDEV_HANDOVER_MAX_HOST_ENDS);
    if (n < 0) {
        umdev_log(dev->log, LOG_WARNING,
                  "%s: handover refused: the device cannot list its host "
                  "endpoints: %s",
                  dev->name, strerror(-n));
        return n;
    }
    if ((size_t)n > UMDEV_HANDOVER_MAX_HOST_ENDS) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: handover refused: the device listed %d host "
                  "endpoints (at most %u)",
                  dev->name, n, UMDEV_HANDOVER_MAX_HOST_ENDS);
        return -EINVAL;
    }
    for (int i = 0; i < n; i++) {
        if (!hend_kind_ok(ends[i].kind) || ends[i].fd < 0) {
            umdev_log(dev->log, LOG_ERR,
                      "%s: handover refused: the device listed host "
                      "endpoint %d with kind %u, fd %d",
                      dev->name, i, ends[i].kind, ends[i].fd);
            return -EINVAL;
        }
    }
    if (n == 0)
        return 0;
    h.count = (uint32_t)n;
    at = pk_begin(p, REC_HOST);
    pk_put(p, &h, sizeof(h));
    for (int i = 0; i < n; i++) {
        struct hnd_hend e = { .kind = ends[i].kind,
                              .tag = ends[i].tag,
                              .fd = pk_fd(p, ends[i].fd) };

        pk_put(p, &e, sizeof(e));
    }
    pk_end(p, at, sizeof(h) + (size_t)n * sizeof(struct hnd_hend));
    return p->err ? p->err : n;
}

static int
refuse(struct umdev_dev *dev, int rc, const char *why)
{
    umdev_log(dev->log, LOG_WARNING, "%s: handover refused: %s", dev->name,
              why);
    return rc;
}

/* Is every mapping with memory one whose descriptor we kept? */
static bool
dma_fds_kept(struct umdev_dev *dev)
{
    struct dma_table *t = &dev->dma;
    bool ok = true;

    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->n; i++)
        if (t->slots[i].map->base != NULL && t->slots[i].map->file == NULL)
            ok = false;
    pthread_rwlock_unlock(&t->lock);
    return ok;
}

int
dev_handover_check(struct umdev_dev *dev)
{
    int rc;

    if (!dev_mig_supported(dev))
        return refuse(dev, -ENOTSUP,
                      "the device has no migration hooks to save its state");
    if (dev->mgr != NULL)
        return refuse(dev, -EBUSY, "a migration manager is attached");
    if (dev->mig.state != VFIO_USER_DEVICE_STATE_RUNNING)
        return refuse(dev, -EBUSY,
                      "a migration is under way (the device is not RUNNING)");
    if (atomic_load(&dev->dma_logging))
        return refuse(dev, -EBUSY,
                      "the client logs DMA writes for a migration; the dirty "
                      "bitmaps are that migration's and are not carried: "
                      "let it finish or stop logging first");
    if (dev->dma_pending_n > 0)
        return refuse(dev, -EAGAIN,
                      "server DMA requests await the client's answers; "
                      "serve and retry");
    if (dev->conn != NULL) {
        rc = conn_export_check(dev->conn);
        if (rc == -EAGAIN)
            return refuse(dev, rc,
                          "the connection is skipping an oversized message; "
                          "serve and retry");
        if (rc < 0)
            return refuse(dev, rc, "the client's connection is broken");
    }
    if (!dma_fds_kept(dev))
        return refuse(dev, -EBADF,
                      "a DMA mapping kept no descriptor (none was left "
                      "when it was mapped)");
    return 0;
}

int
dev_handover_save(struct umdev_dev *dev, int listen_fd,
                  struct umdev_handover **out)
{
    const struct umdev_mig_ops *m = dev->ops->mig;
    struct packer p = { 0 };
    struct umdev_mig_buf state;
    struct hnd_header h = { .format = HND_FORMAT_BASE };
    struct hnd_dev d = { 0 };
    size_t at;
    int rc, nhost;

    *out = NULL;
    rc = dev_handover_check(dev);
    if (rc < 0)
        return rc;
    /* STOP: the device's own quiesce, and interrupts held from now. */
    rc = dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_STOP);
    if (rc < 0) {
        umdev_log(dev->log, LOG_WARNING,
                  "%s: handover refused: the device cannot stop: %s", dev->name,
                  strerror(-rc));
        return rc;
    }
    if (dev->dma_pending_n > 0) {
        rc = refuse(dev, -EAGAIN,
                    "stopping started server DMA requests; serve and retry");
        goto resume;
    }
    dev->saving_handover = true;
    rc = dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_STOP_COPY);
    dev->saving_handover = false;
    if (rc < 0) {
        umdev_log(dev->log, LOG_WARNING,
                  "%s: handover refused: saving the device failed: %s",
                  dev->name, strerror(-rc));
        goto resume;
    }
    /* Taken from the session, which STOP then ends with nothing to drop. */
    state = dev->mig.out;
    memset(&dev->mig.out, 0, sizeof(dev->mig.out));
    dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_STOP);

    memcpy(h.magic, HND_MAGIC, sizeof(h.magic));
    strncpy(h.type, m->type, sizeof(h.type) - 1);
    pk_put(&p, &h, sizeof(h));
    pk_conn(&p, dev, listen_fd);
    pk_dma(&p, dev);
    pk_irqs(&p, dev);
    at = pk_begin(&p, REC_DEV);
    d.intx_level = dev->intx_level;
    pk_put(&p, &d, sizeof(d));
    pk_end(&p, at, sizeof(d));
    nhost = pk_host(&p, dev);
    if (nhost > 0)
        h.format = HND_FORMAT_HOST;
    else if (nhost < 0 && p.err == 0)
        p.err = nhost;
    at = pk_begin(&p, REC_STATE);
    pk_put(&p, state.data, state.len);
    pk_end(&p, at, state.len);
    pk_end(&p, pk_begin(&p, REC_END), 0);
    free(state.data);
    if (p.err == 0) {
        h.nfds = (uint32_t)p.nfds;
        h.len = p.len;
        memcpy(p.d, &h, sizeof(h));
        h.sum = blob_sum(p.d, p.len);
        memcpy(p.d, &h, sizeof(h));
        rc = umdev_handover_wrap(p.d, p.len, p.fds, p.nfds, out);
    } else {
        rc = p.err;
        close_all(p.fds, p.nfds);
    }
    free(p.d);
    free(p.fds);
    free(p.files);
    if (rc == 0) {
        umdev_log(dev->log, LOG_INFO,
                  "%s: handover package: %zu bytes, %zu descriptors", dev->name,
                  (*out)->len, (*out)->nfds);
        return 0;
    }
    umdev_log(dev->log, LOG_WARNING, "%s: handover failed: packing: %s",
              dev->name, strerror(-rc));
resume:
    dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_RUNNING);
    return rc;
}

/* ---- loading ---- */

/* What a checked blob says, pointing into it. */
struct parsed {
    const struct hnd_conn *conn;
    const struct hnd_rx *rx; /* NULL: none */
    const struct hnd_fdset *sets;
    const uint8_t *rx_bytes;
    const uint8_t *tx; /* the first TX record (its header); NULL: none */
    size_t ntx;        /* consecutive TX records from there */
    const struct hnd_dma *dma;
    size_t ndma;
    const uint8_t *irq[DEV_MAX_IRQ_INDEX];
    const struct hnd_dev *dev;
    const struct hnd_host *host; /* NULL: none */
    const uint8_t *state;
    size_t state_len;
};

static int
bad(struct umdev_dev *dev, const char *why, size_t off)
{
    umdev_log(dev->log, LOG_ERR,
              "%s: handover package refused: %s (at byte %zu)", dev->name, why,
              off);
    return -EINVAL;
}

/* Count a use of descriptor @idx (-1 allowed if @may_be_none). */
static bool
use_fd(uint32_t *uses, size_t nfds, int32_t idx, bool may_be_none)
{
    if (idx == -1)
        return may_be_none;
    if (idx < 0 || (size_t)idx >= nfds)
        return false;
    uses[idx]++;
    return true;
}

/* As VERSION would have let them through (lib/conn/version.c); ours
 * (@local) never take more descriptors than the wire allows, the
 * client's may be anything it can receive. */
static bool
caps_ok(const struct hnd_caps *c, bool local)
{
    return (c->flags & ~CAPS_ALL) == 0 && c->pgsizes != 0 &&
           (!local || c->max_msg_fds <= UMDEV_WIRE_MAX_MSG_FDS);
}

static void
caps_from(struct conn_caps *o, const struct hnd_caps *c)
{
    memset(o, 0, sizeof(*o));
    o->max_msg_fds = c->max_msg_fds;
    o->max_data_xfer_size = c->max_data_xfer_size;
    o->max_dma_maps = c->max_dma_maps;
    o->write_multiple = c->flags & CAPS_WRITE_MULTIPLE;
    o->migration = c->flags & CAPS_MIGRATION;
    o->precopy_info = c->flags & CAPS_PRECOPY_INFO;
    o->pgsizes = c->pgsizes;
    o->mig_pgsize = c->mig_pgsize;
    o->mig_max_bitmap_size = c->mig_max_bitmap_size;
}

/* The blob, checked whole against itself and @dev; nothing changes. */
static int
parse(struct umdev_dev *dev, const struct umdev_handover *pkg,
      struct parsed *ps, uint32_t *uses)
{
    const uint8_t *b = pkg->blob;
    struct hnd_header h;
    size_t off, last_kind = 0;
    uint64_t dma_end = 0;
    int last_irq = -1;
    bool have_dma = false;

    memset(ps, 0, sizeof(*ps));
    if (pkg->len < sizeof(h))
        return bad(dev, "shorter than its header", 0);
    memcpy(&h, b, sizeof(h));
    if (memcmp(h.magic, HND_MAGIC, sizeof(h.magic)) != 0)
        return bad(dev, "not a umdev handover package", 0);
    if (h.format > HND_FORMAT) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: handover package refused: format %u; this library "
                  "reads format %u",
                  dev->name, h.format, HND_FORMAT);
        return -ENOTSUP;
    }
    if (h.format == 0)
        return bad(dev, "bad format", 8);
    if (h.len != pkg->len)
        return bad(dev, "its length field differs from its size (cut short?)",
                   16);
    if (h.sum != blob_sum(b, pkg->len))
        return bad(dev, "its checksum does not match: it was damaged", 56);
    if (h.nfds != pkg->nfds) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: handover package refused: it names %u descriptors, "
                  "%zu came with it",
                  dev->name, h.nfds, pkg->nfds);
        return -EINVAL;
    }
    if (memchr(h.type, 0, sizeof(h.type)) == NULL ||
        strcmp(h.type, dev->ops->mig->type) != 0) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: handover package refused: it is for a device of type "
                  "\"%.*s\", this is \"%s\"",
                  dev->name, (int)sizeof(h.type) - 1, h.type,
                  dev->ops->mig->type);
        return -EINVAL;
    }
    off = sizeof(h);
    for (;;) {
        struct hnd_record r;
        const uint8_t *pl;
        size_t len, padded;

        if (pkg->len - off < sizeof(r))
            return bad(dev, "it ends before its END record", off);
        memcpy(&r, b + off, sizeof(r));
        if (r.reserved != 0 || r.kind < REC_CONN || r.kind > REC_MAX ||
            (r.kind == REC_HOST && h.format < HND_FORMAT_HOST))
            return bad(dev, "unknown record", off);
        if ((last_kind != 0 && rec_rank[r.kind] < rec_rank[last_kind]) ||
            (r.kind == last_kind && r.kind != REC_TX && r.kind != REC_DMA &&
             r.kind != REC_IRQ))
            return bad(dev, "record out of order or repeated", off);
        if (last_kind == 0 && r.kind != REC_CONN)
            return bad(dev, "the first record is not CONN", off);
        if ((r.kind == REC_HOST && last_kind != REC_DEV) ||
            (r.kind == REC_STATE && last_kind != REC_DEV &&
             last_kind != REC_HOST) ||
            (r.kind == REC_END && last_kind != REC_STATE))
            return bad(dev, "a required record is missing", off);
        last_kind = r.kind;
        if (r.len > pkg->len - off - sizeof(r))
            return bad(dev, "a record runs past the end", off);
        len = (size_t)r.len;
        padded = len + (8 - len % 8) % 8;
        if (padded > pkg->len - off - sizeof(r))
            return bad(dev, "a record's padding runs past the end", off);
        pl = b + off + sizeof(r);
        for (size_t i = len; i < padded; i++)
            if (pl[i] != 0)
                return bad(dev, "non-zero padding", off);
        switch (r.kind) {
        case REC_CONN: {
            const struct hnd_conn *c = (const void *)pl;
            bool client;

            if (len != sizeof(*c))
                return bad(dev, "CONN has the wrong size", off);
            client = c->client_fd != -1;
            if (c->listen_fd < 0 ||
                !use_fd(uses, pkg->nfds, c->listen_fd, false) ||
                !use_fd(uses, pkg->nfds, c->client_fd, true) ||
                c->listen_fd == c->client_fd || c->reserved != 0 ||
                (c->flags & ~CONN_ALL) != 0)
                return bad(dev, "CONN is malformed", off);
            if (client &&
                (!caps_ok(&c->local, true) || !caps_ok(&c->peer, false)))
                return bad(dev, "CONN's capabilities are malformed", off);
            if (client &&
                (c->local.max_data_xfer_size != dev->max_data_xfer_size ||
                 c->local.max_dma_maps != dev->dma.max)) {
                umdev_log(dev->log, LOG_ERR,
                          "%s: handover package refused: the client was "
                          "promised max_data_xfer_size %u and max_dma_maps %u; "
                          "this device offers %u and %u",
                          dev->name, c->local.max_data_xfer_size,
                          c->local.max_dma_maps, dev->max_data_xfer_size,
                          dev->dma.max);
                return -EINVAL;
            }
            if (!client) {
                struct hnd_conn z = { .listen_fd = c->listen_fd,
                                      .client_fd = -1 };

                if (memcmp(c, &z, sizeof(z)) != 0)
                    return bad(dev, "CONN without a client has client state",
                               off);
            }
            ps->conn = c;
            break;
        }
        case REC_RX: {
            const struct hnd_rx *rx = (const void *)pl;

            if (ps->conn->client_fd == -1)
                return bad(dev, "RX without a client", off);
            if (len < sizeof(*rx) || rx->reserved != 0 ||
                rx->nsets > CONN_RX_MAX_FDSETS ||
                rx->nbytes > UMDEV_HANDOVER_MAX_BYTES ||
                len != sizeof(*rx) + rx->nsets * sizeof(struct hnd_fdset) +
                           rx->nbytes)
                return bad(dev, "RX is malformed", off);
            ps->rx = rx;
            ps->sets = (const void *)(pl + sizeof(*rx));
            ps->rx_bytes =
                pl + sizeof(*rx) + rx->nsets * sizeof(struct hnd_fdset);
            for (uint32_t i = 0; i < rx->nsets; i++) {
                const struct hnd_fdset *s = &ps->sets[i];

                if (s->owner >= rx->nbytes ||
                    s->nfds > UMDEV_WIRE_MAX_MSG_FDS || s->overflow > 1)
                    return bad(dev, "an RX descriptor set is malformed", off);
                for (uint32_t j = 0; j < i; j++)
                    if (ps->sets[j].owner == s->owner)
                        return bad(dev,
                                   "two RX descriptor sets for one "
                                   "message",
                                   off);
                for (uint32_t k = 0; k < UMDEV_WIRE_MAX_MSG_FDS; k++)
                    if (!use_fd(uses, pkg->nfds, s->fds[k], k >= s->nfds) ||
                        (k >= s->nfds && s->fds[k] != -1) ||
                        (k < s->nfds && s->fds[k] == -1))
                        return bad(dev, "an RX descriptor is malformed", off);
            }
            break;
        }
        case REC_TX: {
            const struct hnd_tx *t = (const void *)pl;

            if (ps->conn->client_fd == -1)
                return bad(dev, "TX without a client", off);
            if (len <= sizeof(*t) || t->reserved != 0 ||
                t->nfds > UMDEV_WIRE_MAX_MSG_FDS)
                return bad(dev, "TX is malformed", off);
            for (uint32_t k = 0; k < UMDEV_WIRE_MAX_MSG_FDS; k++)
                if (!use_fd(uses, pkg->nfds, t->fds[k], k >= t->nfds) ||
                    (k >= t->nfds && t->fds[k] != -1) ||
                    (k < t->nfds && t->fds[k] == -1))
                    return bad(dev, "a TX descriptor is malformed", off);
            if (ps->ntx++ == 0)
                ps->tx = b + off;
            break;
        }
        case REC_DMA: {
            const struct hnd_dma *d = (const void *)pl;
            uint32_t prot_all =
                VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;

            if (len != sizeof(*d))
                return bad(dev, "DMA has the wrong size", off);
            if (ps->ndma == 0)
                ps->dma = d;
            /* Records are consecutive and 8-aligned: an array in all
             * but the record headers between them, so each is found
             * by its own pointer below. */
            if (d->size == 0 || (d->iova | d->size) % DEV_PAGE_SIZE != 0 ||
                d->iova + d->size < d->iova || (d->prot & ~prot_all) != 0 ||
                (have_dma && d->iova < dma_end) ||
                !use_fd(uses, pkg->nfds, d->fd, true) ||
                (d->fd == -1 && d->offset != 0))
                return bad(dev, "DMA is malformed, unsorted or overlapping",
                           off);
            if (++ps->ndma > dev->dma.max)
                return bad(dev, "more DMA mappings than the device takes", off);
            have_dma = true;
            dma_end = d->iova + d->size;
            break;
        }
        case REC_IRQ: {
            const struct hnd_irq *q = (const void *)pl;
            const struct hnd_vec *v;

            if (len < sizeof(*q) || q->reserved != 0 ||
                q->index >= DEV_MAX_IRQ_INDEX || (int)q->index <= last_irq ||
                len != sizeof(*q) + (size_t)q->count * sizeof(*v))
                return bad(dev, "IRQ is malformed or out of order", off);
            if (q->count != dev->irqs[q->index].count) {
                umdev_log(dev->log, LOG_ERR,
                          "%s: handover package refused: IRQ index %u has "
                          "%u vectors there, %u here",
                          dev->name, q->index, q->count,
                          dev->irqs[q->index].count);
                return -EINVAL;
            }
            if (!use_fd(uses, pkg->nfds, q->unmask_fd, true) ||
                (q->unmask_fd != -1 &&
                 !(dev->pci && q->index == UMDEV_PCI_INTX_IRQ)))
                return bad(dev, "IRQ's resample descriptor is malformed", off);
            v = (const void *)(pl + sizeof(*q));
            for (uint32_t s = 0; s < q->count; s++)
                if (v[s].masked > 1 || v[s].pending > 1 || v[s].held > 1 ||
                    v[s].reserved != 0 ||
                    !use_fd(uses, pkg->nfds, v[s].efd, true))
                    return bad(dev, "an IRQ vector is malformed", off);
            last_irq = (int)q->index;
            ps->irq[q->index] = pl;
            break;
        }
        case REC_DEV: {
            const struct hnd_dev *d = (const void *)pl;

            if (len != sizeof(*d) || d->intx_level > 1 || d->reserved != 0)
                return bad(dev, "DEV is malformed", off);
            ps->dev = d;
            break;
        }
        case REC_HOST: {
            const struct hnd_host *q = (const void *)pl;
            const struct hnd_hend *e = (const void *)(pl + sizeof(*q));

            if (len < sizeof(*q) || q->reserved != 0 || q->count == 0 ||
                q->count > UMDEV_HANDOVER_MAX_HOST_ENDS ||
                len != sizeof(*q) + (size_t)q->count * sizeof(*e))
                return bad(dev, "HOST is malformed", off);
            for (uint32_t i = 0; i < q->count; i++) {
                if (!hend_kind_ok(e[i].kind) || e[i].reserved != 0 ||
                    !use_fd(uses, pkg->nfds, e[i].fd, false))
                    return bad(dev, "a HOST endpoint is malformed", off);
                for (uint32_t j = 0; j < i; j++)
                    if (e[j].kind == e[i].kind && e[j].tag == e[i].tag)
                        return bad(dev,
                                   "two HOST endpoints of one kind share "
                                   "a tag",
                                   off);
            }
            if (dev->hend_ops == NULL) {
                umdev_log(dev->log, LOG_ERR,
                          "%s: handover package refused: it carries %u host "
                          "endpoints; this device takes none",
                          dev->name, q->count);
                return -EINVAL;
            }
            ps->host = q;
            break;
        }
        case REC_STATE:
            ps->state = pl;
            ps->state_len = len;
            break;
        case REC_END:
            if (len != 0 || off + sizeof(r) != pkg->len)
                return bad(dev, "END is not last or not empty", off);
            goto done;
        }
        off += sizeof(r) + padded;
    }
done:
    if (h.format == HND_FORMAT_HOST && ps->host == NULL)
        return bad(dev, "format 2 without a HOST record", 8);
    for (size_t i = 0; i < pkg->nfds; i++) {
        if (uses[i] == 0)
            return bad(dev, "a descriptor is named by no record", 0);
        if (((int32_t)i == ps->conn->listen_fd ||
             (int32_t)i == ps->conn->client_fd) &&
            uses[i] != 1)
            return bad(dev, "a socket descriptor is named twice", 0);
    }
    if (ps->host != NULL) {
        const struct hnd_hend *e = (const void *)(ps->host + 1);

        for (uint32_t i = 0; i < ps->host->count; i++)
            if (uses[e[i].fd] != 1)
                return bad(dev, "a HOST descriptor is named twice", 0);
    }
    return dev_mig_check_stream(dev, ps->state, ps->state_len);
}

static int
sock_kind(int fd, bool listening)
{
    int v;
    socklen_t l = sizeof(v);

    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) < 0 || v != AF_UNIX)
        return -EBADF;
    l = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0 || v != SOCK_STREAM)
        return -EBADF;
    l = sizeof(v);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) < 0 ||
        (v != 0) != listening)
        return -EBADF;
    return 0;
}

/* Each descriptor is of the kind its record needs (before any is used). */
static int
check_fds(struct umdev_dev *dev, const struct umdev_handover *pkg,
          const struct parsed *ps)
{
    struct stat st;
    const char *why = NULL;
    const uint8_t *at;

    if (sock_kind(pkg->fds[ps->conn->listen_fd], true) < 0)
        why = "the listening socket is not a listening UNIX stream socket";
    else if (ps->conn->client_fd >= 0 &&
             sock_kind(pkg->fds[ps->conn->client_fd], false) < 0)
        why = "the client's socket is not a connected UNIX stream socket";
    at = (const uint8_t *)ps->dma;
    for (size_t i = 0; why == NULL && i < ps->ndma; i++) {
        const struct hnd_dma *d =
            (const void *)(at + i * (sizeof(struct hnd_record) + sizeof(*d)));

        if (d->fd >= 0 &&
            (fstat(pkg->fds[d->fd], &st) < 0 || !S_ISREG(st.st_mode)))
            why = "a DMA mapping's descriptor is not a regular file";
    }
    for (uint32_t i = 0; why == NULL && i < DEV_MAX_IRQ_INDEX; i++) {
        const struct hnd_irq *q = (const void *)ps->irq[i];
        const struct hnd_vec *v;

        if (q == NULL)
            continue;
        v = (const void *)(ps->irq[i] + sizeof(*q));
        for (uint32_t s = 0; why == NULL && s <= q->count; s++) {
            int32_t idx = s < q->count ? v[s].efd : q->unmask_fd;

            /* An eventfd is an anonymous inode: no file type (irq.c). */
            if (idx >= 0 &&
                (fstat(pkg->fds[idx], &st) < 0 || (st.st_mode & S_IFMT) != 0))
                why = "an interrupt descriptor is not an eventfd";
        }
    }
    if (why == NULL && ps->host != NULL) {
        const struct hnd_hend *e = (const void *)(ps->host + 1);

        for (uint32_t i = 0; why == NULL && i < ps->host->count; i++) {
            int fd = pkg->fds[e[i].fd];
            unsigned int ptn;

            switch (e[i].kind) {
            case UMDEV_HOST_END_LISTENER:
                if (sock_kind(fd, true) < 0)
                    why = "a HOST listener is not a listening UNIX stream "
                          "socket";
                break;
            case UMDEV_HOST_END_STREAM:
                if (sock_kind(fd, false) < 0)
                    why = "a HOST stream is not a connected UNIX stream "
                          "socket";
                break;
            case UMDEV_HOST_END_PTY:
                /* Only a master has a pty number to report. */
                if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
                    ioctl(fd, TIOCGPTN, &ptn) < 0)
                    why = "a HOST pty is not a pseudo-terminal master";
                break;
            }
        }
    }
    if (why == NULL)
        return 0;
    umdev_log(dev->log, LOG_ERR, "%s: handover package refused: %s", dev->name,
              why);
    return -EBADF;
}

/* Let go of host endpoints a restore gave the device, before it may run
 * again (which would watch them). */
static void
hend_release(struct umdev_dev *dev)
{
    if (dev->hend_taken)
        dev->hend_ops->release(dev->hend_opaque);
    dev->hend_taken = false;
}

void
dev_handover_undo(struct umdev_dev *dev)
{
    hend_release(dev);
    if (dev->conn != NULL) {
        /* Closed, never shut down: the socket is still the old
         * process's, which may resume serving it. */
        conn_destroy(dev->conn);
        dev->conn = NULL;
    }
    dev->negotiated = false;
    dev->precopy_info = false;
    dev_dma_unmap_all(dev);
    dev_irq_release_all(dev);
    dev->intx_level = false;
    if (dev->mig.state == VFIO_USER_DEVICE_STATE_STOP)
        dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_RUNNING);
    else
        umdev_dev_mig_power_on(dev);
    dev->loop = NULL;
}

static int
dup_fd(int fd)
{
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);

    return d < 0 ? -errno : d;
}

static int
apply_conn(struct umdev_dev *dev, const struct umdev_handover *pkg,
           const struct parsed *ps)
{
    const struct hnd_conn *c = ps->conn;
    struct conn_caps caps;
    struct conn *conn;
    int fd, rc;

    fd = dup_fd(pkg->fds[c->client_fd]);
    if (fd < 0)
        return fd;
    rc = conn_create(fd, dev->log, &conn);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    dev->conn = conn; /* undone by dev_handover_undo() */
    conn_set_async_send(conn, NULL, NULL);
    caps_from(&caps, &c->local);
    conn_set_local_caps(conn, &caps);
    caps_from(&caps, &c->peer);
    conn_set_peer_caps(conn, &caps);
    conn_set_next_id(conn, c->next_id);
    if (ps->rx != NULL) {
        struct conn_fdset sets[CONN_RX_MAX_FDSETS];

        for (uint32_t i = 0; i < ps->rx->nsets; i++) {
            sets[i].owner = ps->sets[i].owner;
            sets[i].nfds = 0;
            sets[i].overflow = ps->sets[i].overflow;
        }
        rc = 0;
        for (uint32_t i = 0; i < ps->rx->nsets; i++) {
            for (uint32_t k = 0; k < ps->sets[i].nfds; k++) {
                int d = rc == 0 ? dup_fd(pkg->fds[ps->sets[i].fds[k]]) : -1;

                if (d < 0 && rc == 0)
                    rc = d;
                sets[i].fds[sets[i].nfds++] = d;
            }
        }
        if (rc < 0) {
            for (uint32_t i = 0; i < ps->rx->nsets; i++)
                close_all(sets[i].fds, sets[i].nfds);
            return rc;
        }
        rc = conn_import_rx(conn, ps->rx_bytes, ps->rx->nbytes, sets,
                            ps->rx->nsets);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0, off = 0; i < ps->ntx; i++) {
        struct hnd_record r;
        const struct hnd_tx *t;
        int fds[UMDEV_WIRE_MAX_MSG_FDS];

        /* parse() walked these consecutive records already. */
        memcpy(&r, ps->tx + off, sizeof(r));
        t = (const void *)(ps->tx + off + sizeof(r));
        for (uint32_t k = 0; k < t->nfds; k++)
            fds[k] = pkg->fds[t->fds[k]];
        rc = conn_import_tx(conn, (const uint8_t *)(t + 1),
                            (size_t)r.len - sizeof(*t), fds, t->nfds);
        if (rc < 0)
            return rc;
        off += sizeof(r) + (size_t)r.len + (8 - r.len % 8) % 8;
    }
    dev->negotiated = c->flags & CONN_NEGOTIATED;
    dev->precopy_info = c->flags & CONN_PRECOPY_INFO;
    return 0;
}

/* The device takes its host endpoints (duplicates; it keeps those it
 * sets to -1). */
static int
apply_host(struct umdev_dev *dev, const struct umdev_handover *pkg,
           const struct parsed *ps)
{
    struct umdev_host_end ends[UMDEV_HANDOVER_MAX_HOST_ENDS];
    const struct hnd_hend *e = NULL;
    size_t n = ps->host != NULL ? ps->host->count : 0;
    int rc = 0;

    if (dev->hend_ops == NULL)
        return 0;
    if (n > 0)
        e = (const void *)(ps->host + 1);
    for (size_t i = 0; i < n; i++) {
        ends[i] = (struct umdev_host_end){ .kind = e[i].kind,
                                           .tag = e[i].tag,
                                           .fd = -1 };
        if (rc == 0) {
            rc = dup_fd(pkg->fds[e[i].fd]);
            if (rc >= 0) {
                ends[i].fd = rc;
                rc = 0;
            }
        }
    }
    if (rc == 0) {
        rc = dev->hend_ops->restore(dev->hend_opaque, ends, n);
        if (rc < 0)
            umdev_log(dev->log, LOG_ERR,
                      "%s: handover package refused: the device does not "
                      "take its host endpoints: %s",
                      dev->name, strerror(-rc));
    }
    for (size_t i = 0; i < n; i++)
        if (ends[i].fd >= 0)
            close(ends[i].fd);
    dev->hend_taken = rc == 0;
    return rc;
}

static int
apply_irqs(struct umdev_dev *dev, const struct umdev_handover *pkg,
           const struct parsed *ps)
{
    for (uint32_t i = 0; i < DEV_MAX_IRQ_INDEX; i++) {
        const struct hnd_irq *q = (const void *)ps->irq[i];
        const struct hnd_vec *v;
        struct dev_irq *irq = &dev->irqs[i];
        int rc, fd;

        if (q == NULL)
            continue;
        v = (const void *)(ps->irq[i] + sizeof(*q));
        for (uint32_t s = 0; s < q->count; s++) {
            fd = v[s].efd >= 0 ? dup_fd(pkg->fds[v[s].efd]) : -1;
            if (v[s].efd >= 0 && fd < 0)
                return fd;
            if (fd >= 0 && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
                rc = -errno;
                close(fd);
                return rc;
            }
            pthread_mutex_lock(&dev->irq_lock);
            irq->vec[s] = (struct dev_irq_vec){ .efd = fd,
                                                .masked = v[s].masked,
                                                .pending = v[s].pending,
                                                .held = v[s].held };
            pthread_mutex_unlock(&dev->irq_lock);
        }
        if (q->unmask_fd >= 0) {
            fd = dup_fd(pkg->fds[q->unmask_fd]);
            if (fd < 0)
                return fd;
            rc = dev_irq_adopt_unmask(dev, i, fd);
            if (rc < 0) {
                close(fd);
                return rc;
            }
        }
    }
    return 0;
}

int
dev_handover_restore(struct umdev_dev *dev, struct umdev_loop *loop,
                     const struct umdev_handover *pkg, int *listen_fd)
{
    struct parsed *ps;
    uint32_t *uses;
    const uint8_t *at;
    int rc;

    *listen_fd = -1;
    if (!dev_mig_supported(dev)) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: handover refused: the device has no migration hooks",
                  dev->name);
        return -ENOTSUP;
    }
    if (dev->conn != NULL || dev->mgr != NULL || dev->loop != NULL ||
        dev->mig.state != VFIO_USER_DEVICE_STATE_RUNNING ||
        umdev_dma_count(dev) != 0) {
        umdev_log(dev->log, LOG_ERR,
                  "%s: handover refused: the device is served already",
                  dev->name);
        return -EBUSY;
    }
    ps = malloc(sizeof(*ps));
    uses = calloc(pkg->nfds ? pkg->nfds : 1, sizeof(*uses));
    if (ps == NULL || uses == NULL) {
        free(ps);
        free(uses);
        return -ENOMEM;
    }
    rc = parse(dev, pkg, ps, uses);
    free(uses);
    if (rc == 0)
        rc = check_fds(dev, pkg, ps);
    if (rc < 0)
        goto out;

    /* Stopped first, so that nothing installed below fires before the
     * state it belongs to is loaded. */
    dev->loop = loop;
    rc = dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_STOP);
    if (rc == 0)
        rc = apply_host(dev, pkg, ps);
    at = (const uint8_t *)ps->dma;
    for (size_t i = 0; rc == 0 && i < ps->ndma; i++) {
        const struct hnd_dma *d =
            (const void *)(at + i * (sizeof(struct hnd_record) + sizeof(*d)));
        struct vfio_user_dma_map m = { .argsz = sizeof(m),
                                       .flags = d->prot,
                                       .offset = d->offset,
                                       .addr = d->iova,
                                       .size = d->size };

        rc = dev_dma_map(dev, &m, d->fd >= 0 ? pkg->fds[d->fd] : -1);
        if (rc < 0)
            umdev_log(dev->log, LOG_ERR,
                      "%s: handover: mapping DMA %#llx+%#llx failed: %s",
                      dev->name, (unsigned long long)d->iova,
                      (unsigned long long)d->size, strerror(-rc));
    }
    if (rc == 0)
        rc = apply_irqs(dev, pkg, ps);
    if (rc == 0)
        dev->intx_level = ps->dev->intx_level;
    if (rc == 0 && ps->conn->client_fd >= 0)
        rc = apply_conn(dev, pkg, ps);
    if (rc == 0)
        rc = dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_RESUMING);
    if (rc == 0)
        rc = dev_mig_write(dev, ps->state, ps->state_len);
    if (rc == 0)
        rc = dev_mig_set_state(dev, VFIO_USER_DEVICE_STATE_STOP);
    if (rc == 0) {
        rc = dup_fd(pkg->fds[ps->conn->listen_fd]);
        if (rc >= 0) {
            *listen_fd = rc;
            rc = 0;
        }
    }
    if (rc < 0) {
        umdev_log(dev->log, LOG_ERR, "%s: handover: restoring failed: %s",
                  dev->name, strerror(-rc));
        dev_handover_undo(dev);
    }
out:
    free(ps);
    return rc;
}

/* ---- transport ---- */

#define XFER_MAGIC "UMDEVHOX"
#define XFER_VERSION 1u

/* The frame: this header (with the first chunk's descriptors), one
 * chunk header per further UMDEV_HANDOVER_FDS_PER_MSG descriptors (each
 * with its own), then the blob. */
struct xfer_header {
    char magic[8];
    uint32_t version;
    uint32_t nfds;
    uint64_t len;
};

struct xfer_chunk {
    uint32_t nfds; /* descriptors with this message */
    uint32_t reserved;
};

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
wait_for(int sock, short ev, int64_t deadline)
{
    struct pollfd p = { .fd = sock, .events = ev };
    int left = -1, rc;

    if (deadline >= 0) {
        int64_t l = deadline - now_ms();

        if (l <= 0)
            return -ETIMEDOUT;
        left = l > 60000 ? 60000 : (int)l;
    }
    rc = poll(&p, 1, left);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    return 0;
}

/* Send @len bytes, @fds with the first of them. */
static int
send_unit(int sock, const void *data, size_t len, const int *fds, size_t nfds,
          int64_t deadline)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * UMDEV_HANDOVER_FDS_PER_MSG)];
        struct cmsghdr align;
    } ctl;
    size_t done = 0;

    while (done < len) {
        struct iovec iov = { .iov_base = (uint8_t *)data + done,
                             .iov_len = len - done };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;
        int rc;

        if (done == 0 && nfds > 0)
            conn_attach_fds(&mh, ctl.buf, fds, nfds);
        n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EPIPE)
            return -ECONNRESET;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        rc = wait_for(sock, POLLOUT, deadline);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
umdev_handover_send(int sock, const struct umdev_handover *h, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    struct xfer_header x = { .version = XFER_VERSION,
                             .nfds = (uint32_t)h->nfds,
                             .len = h->len };
    size_t sent, n;
    int rc;

    memcpy(x.magic, XFER_MAGIC, sizeof(x.magic));
    n = h->nfds < UMDEV_HANDOVER_FDS_PER_MSG ? h->nfds
                                             : UMDEV_HANDOVER_FDS_PER_MSG;
    rc = send_unit(sock, &x, sizeof(x), h->fds, n, deadline);
    for (sent = n; rc == 0 && sent < h->nfds; sent += n) {
        struct xfer_chunk c;

        n = h->nfds - sent < UMDEV_HANDOVER_FDS_PER_MSG
                ? h->nfds - sent
                : UMDEV_HANDOVER_FDS_PER_MSG;
        c = (struct xfer_chunk){ .nfds = (uint32_t)n };
        rc = send_unit(sock, &c, sizeof(c), h->fds + sent, n, deadline);
    }
    if (rc == 0)
        rc = send_unit(sock, h->blob, h->len, NULL, 0, deadline);
    return rc;
}

/*
 * Receive exactly @len bytes; the descriptors that come with them go to
 * fds[*got..], at most @want of them (more, or truncated control data,
 * is -EPROTO: the extra ones are closed).
 */
static int
recv_unit(int sock, void *data, size_t len, int *fds, size_t *got, size_t want,
          int64_t deadline)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * UMDEV_HANDOVER_FDS_PER_MSG)];
        struct cmsghdr align;
    } ctl;
    size_t done = 0;
    int rc = 0;

    while (done < len) {
        struct iovec iov = { .iov_base = (uint8_t *)data + done,
                             .iov_len = len - done };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = ctl.buf,
                             .msg_controllen = sizeof(ctl.buf) };
        struct cmsghdr *c;
        ssize_t n;

        n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -errno;
            rc = wait_for(sock, POLLIN, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
            size_t k;

            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k; i++) {
                int fd;

                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
                if (*got < want)
                    fds[(*got)++] = fd;
                else {
                    close(fd);
                    rc = -EPROTO;
                }
            }
        }
        if (mh.msg_flags & MSG_CTRUNC)
            rc = -EPROTO;
        if (rc < 0)
            return rc;
        if (n == 0)
            return -ECONNRESET;
        done += (size_t)n;
    }
    return 0;
}

int
umdev_handover_recv(int sock, int timeout_ms, struct umdev_handover **out)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    int first[UMDEV_HANDOVER_FDS_PER_MSG];
    struct xfer_header x;
    uint8_t *blob = NULL;
    int *fds = NULL;
    size_t got = 0, want;
    int rc;

    *out = NULL;
    /* The first chunk's descriptors come with the header's first byte,
     * before it says how many to expect: take up to a chunk's worth,
     * then check. */
    rc = recv_unit(sock, &x, sizeof(x), first, &got, UMDEV_HANDOVER_FDS_PER_MSG,
                   deadline);
    if (rc < 0)
        goto fail_first;
    if (memcmp(x.magic, XFER_MAGIC, sizeof(x.magic)) != 0 ||
        x.version != XFER_VERSION) {
        rc = -EPROTO;
        goto fail_first;
    }
    if (x.nfds > UMDEV_HANDOVER_MAX_FDS || x.len > UMDEV_HANDOVER_MAX_BYTES) {
        rc = -E2BIG;
        goto fail_first;
    }
    want = x.nfds < UMDEV_HANDOVER_FDS_PER_MSG ? x.nfds
                                               : UMDEV_HANDOVER_FDS_PER_MSG;
    if (got != want) {
        rc = -EPROTO;
        goto fail_first;
    }
    fds = malloc((x.nfds ? x.nfds : 1) * sizeof(int));
    blob = malloc(x.len ? x.len : 1);
    if (fds == NULL || blob == NULL) {
        rc = -ENOMEM;
        goto fail_first;
    }
    memcpy(fds, first, got * sizeof(int));
    while (got < x.nfds) {
        struct xfer_chunk c;
        size_t before = got;

        want = x.nfds - got < UMDEV_HANDOVER_FDS_PER_MSG
                   ? x.nfds - got
                   : UMDEV_HANDOVER_FDS_PER_MSG;
        rc = recv_unit(sock, &c, sizeof(c), fds, &got, before + want, deadline);
        if (rc == 0 &&
            (c.nfds != want || c.reserved != 0 || got != before + want))
            rc = -EPROTO;
        if (rc < 0)
            goto fail;
    }
    rc = recv_unit(sock, blob, x.len, NULL, &got, got, deadline);
    if (rc < 0)
        goto fail;
    rc = umdev_handover_wrap(blob, x.len, fds, x.nfds, out);
    free(blob);
    free(fds);
    return rc;
fail_first:
    close_all(first, got);
    free(fds);
    free(blob);
    return rc;
fail:
    close_all(fds, got);
    free(fds);
    free(blob);
    return rc;
}
