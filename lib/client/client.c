/*
 * The vfio-user client. Requests are synchronous; while one waits, the
 * server's DMA_READ/DMA_WRITE requests are served from registered memory
 * so a device may do message-based DMA in the middle of a register access.
 */
#include <errno.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "conn.h"
#include "umdev/client.h"
#include "umdev/client_testing.h"
#include "util.h"

#define MAX_CACHED_REGIONS 16

struct client_dma {
    uint64_t iova, size;
    uint8_t *host;
    uint32_t prot;
};

struct client_mapping {
    void *addr;
    size_t len;
};

struct umdev_client {
    struct conn *conn;
    const struct umdev_logger *log;
    int timeout_ms;
    struct umdev_client_caps caps;
    struct umdev_client_stats stats;

    struct umdev_client_region regions[MAX_CACHED_REGIONS];
    bool region_cached[MAX_CACHED_REGIONS];

    struct client_mapping *maps; /* our mmaps of device regions */
    size_t nmaps, cap_maps;

    struct client_dma *dma; /* registered guest memory, unsorted */
    size_t ndma, cap_dma;
};

static struct client_dma *
dma_find(struct umdev_client *c, uint64_t addr, uint64_t count)
{
    size_t i;

    for (i = 0; i < c->ndma; i++) {
        struct client_dma *d = &c->dma[i];

        if (addr >= d->iova && count <= d->size &&
            addr - d->iova <= d->size - count)
            return d;
    }
    return NULL;
}

/* Serve one DMA_READ/DMA_WRITE from the server. */
static int
serve_dma(struct conn *conn, struct conn_msg *m, void *opaque)
{
    struct umdev_client *c = opaque;
    struct vfio_user_header hdr = {
        .msg_id = m->hdr.msg_id,
        .cmd = m->hdr.cmd,
        .flags = VFIO_USER_F_TYPE_REPLY,
    };
    struct umdev_wire_msg w;
    struct client_dma *d;
    int rc;

    rc = m->rx_error;
    if (rc == 0)
        rc = umdev_wire_decode(m->buf, m->len, m->nfds, conn_rx_limits(conn),
                               &w);
    if (rc == 0 && w.hdr.cmd != VFIO_USER_DMA_READ &&
        w.hdr.cmd != VFIO_USER_DMA_WRITE)
        rc = -EINVAL;
    if (rc < 0)
        goto fail;
    d = dma_find(c, w.u.dma_access.addr, w.u.dma_access.count);
    if (d == NULL || d->host == NULL) {
        rc = -EFAULT;
        goto fail;
    }
    if (w.hdr.cmd == VFIO_USER_DMA_READ) {
        if (!(d->prot & VFIO_USER_DMA_MAP_FLAG_READ)) {
            rc = -EACCES;
            goto fail;
        }
        c->stats.dma_reads++;
        hdr.msg_size = (uint32_t)umdev_wire_size(sizeof(w.u.dma_access),
                                                 w.u.dma_access.count);
        return conn_sendv(conn, &hdr, &w.u.dma_access, sizeof(w.u.dma_access),
                          d->host + (w.u.dma_access.addr - d->iova),
                          w.u.dma_access.count, NULL, 0) < 0
                   ? -ECONNRESET
                   : 0;
    }
    if (!(d->prot & VFIO_USER_DMA_MAP_FLAG_WRITE)) {
        rc = -EACCES;
        goto fail;
    }
    memcpy(d->host + (w.u.dma_access.addr - d->iova), w.data,
           w.u.dma_access.count);
    c->stats.dma_writes++;
    hdr.msg_size = (uint32_t)umdev_wire_size(sizeof(w.u.dma_access), 0);
    return conn_sendv(conn, &hdr, &w.u.dma_access, sizeof(w.u.dma_access), NULL,
                      0, NULL, 0) < 0
               ? -ECONNRESET
               : 0;
fail:
    if (m->hdr.flags & VFIO_USER_F_NO_REPLY)
        return 0;
    return conn_send_error(conn, &m->hdr, rc) < 0 ? -ECONNRESET : 0;
}

/* Send a command built from parts and wait for the reply. */
static int
request(struct umdev_client *c, uint16_t cmd, uint32_t flags, const void *fixed,
        size_t fixed_len, const void *data, size_t data_len, const int *fds,
        size_t nfds, struct conn_msg **reply, struct umdev_wire_msg *w)
{
    size_t size = umdev_wire_size(fixed_len, data_len);
    uint16_t id = conn_next_id(c->conn);
    /* Register accesses, the trap path, fit on the stack: no allocation
     * per request. */
    uint8_t small[256], *buf = small;
    int rc;

    *reply = NULL;
    if (size == 0)
        return -E2BIG;
    if (size > sizeof(small))
        buf = malloc(size);
    if (buf == NULL)
        return -ENOMEM;
    umdev_wire_encode(buf, size, id, cmd, flags, fixed, fixed_len, data,
                      data_len);
    c->stats.requests++;
    if (flags & VFIO_USER_F_NO_REPLY) {
        rc = conn_send(c->conn, buf, size, fds, nfds);
        if (buf != small)
            free(buf);
        return rc;
    }
    rc = conn_request(c->conn, buf, size, fds, nfds, c->timeout_ms, serve_dma,
                      c, reply);
    if (buf != small)
        free(buf);
    if (rc < 0)
        return rc;
    rc = umdev_wire_decode((*reply)->buf, (*reply)->len, (*reply)->nfds,
                           conn_rx_limits(c->conn), w);
    if (rc < 0) {
        umdev_log(c->log, LOG_ERR, "malformed %s reply: %s",
                  umdev_wire_cmd_name(cmd), strerror(-rc));
        conn_msg_free(*reply);
        *reply = NULL;
        return -EPROTO;
    }
    return 0;
}

static int
negotiate(struct umdev_client *c, const struct umdev_client_opts *opts)
{
    struct conn_caps ours, theirs;
    struct vfio_user_version v = { 0, 0 };
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    char json[512];
    const char *send_json = json;
    ssize_t n;
    int rc;

    ours = *conn_local_caps(c->conn);
    if (opts != NULL && opts->max_msg_fds)
        ours.max_msg_fds = opts->max_msg_fds;
    if (opts != NULL && opts->max_data_xfer_size)
        ours.max_data_xfer_size = opts->max_data_xfer_size;
    ours.precopy_info = opts != NULL && opts->precopy_info;
    conn_set_local_caps(c->conn, &ours);
    if (opts != NULL && opts->version_json != NULL) {
        send_json = opts->version_json;
        n = (ssize_t)strlen(send_json) + 1;
    } else {
        n = conn_caps_format(conn_local_caps(c->conn), json, sizeof(json));
        if (n < 0)
            return (int)n;
    }
    rc = request(c, VFIO_USER_VERSION, 0, &v, sizeof(v), send_json, (size_t)n,
                 NULL, 0, &reply, &w);
    if (rc < 0)
        return rc;
    /* Spec "Version": same major, minor not above ours. */
    if (w.u.version.major != 0 || w.u.version.minor != 0) {
        conn_msg_free(reply);
        return -EPROTO;
    }
    rc = conn_caps_parse(w.u.version.json, &theirs);
    if (rc == 0) {
        conn_set_peer_caps(c->conn, &theirs);
        c->caps.major = w.u.version.major;
        c->caps.minor = w.u.version.minor;
        c->caps.max_msg_fds = theirs.max_msg_fds;
        c->caps.max_data_xfer_size = theirs.max_data_xfer_size;
        c->caps.pgsizes = theirs.pgsizes;
        c->caps.max_dma_maps = theirs.max_dma_maps;
        c->caps.write_multiple = theirs.write_multiple;
        c->caps.migration = theirs.migration;
        /* Only what we proposed counts: a server may not impose it. */
        c->caps.precopy_info = ours.precopy_info && theirs.precopy_info;
        if (w.u.version.json != NULL)
            snprintf(c->caps.json, sizeof(c->caps.json), "%s",
                     w.u.version.json);
    } else {
        rc = -EPROTO;
    }
    conn_msg_free(reply);
    return rc;
}

int
umdev_client_attach_fd(int fd, const struct umdev_client_opts *opts,
                       struct umdev_client **out)
{
    struct umdev_client *c;
    int rc;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return -ENOMEM;
    }
    c->log = opts != NULL ? opts->log : NULL;
    c->timeout_ms = opts != NULL && opts->timeout_ms ? opts->timeout_ms
                                                     : CONN_DEFAULT_TIMEOUT_MS;
    rc = conn_create(fd, c->log, &c->conn);
    if (rc < 0) {
        close(fd);
        free(c);
        return rc;
    }
    rc = conn_set_blocking(c->conn, c->timeout_ms);
    if (rc < 0) {
        umdev_client_destroy(c);
        return rc;
    }
    rc = negotiate(c, opts);
    if (rc < 0) {
        umdev_client_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

int
umdev_client_connect(const char *path, const struct umdev_client_opts *opts,
                     struct umdev_client **out)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, rc;

    *out = NULL;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return umdev_client_attach_fd(fd, opts, out);
}

void
umdev_client_destroy(struct umdev_client *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->nmaps; i++)
        munmap(c->maps[i].addr, c->maps[i].len);
    for (i = 0; i < MAX_CACHED_REGIONS; i++)
        if (c->region_cached[i] && c->regions[i].fd >= 0)
            close(c->regions[i].fd);
    free(c->maps);
    free(c->dma);
    conn_destroy(c->conn);
    free(c);
}

const struct umdev_client_caps *
umdev_client_caps(const struct umdev_client *c)
{
    return &c->caps;
}

int
umdev_client_fd(const struct umdev_client *c)
{
    return conn_fd(c->conn);
}

int
umdev_client_device_info(struct umdev_client *c,
                         struct umdev_client_device_info *out)
{
    struct vfio_user_device_info info = { .argsz = sizeof(info) };
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    int rc;

    rc = request(c, VFIO_USER_DEVICE_GET_INFO, 0, &info, sizeof(info), NULL, 0,
                 NULL, 0, &reply, &w);
    if (rc < 0)
        return rc;
    out->flags = w.u.device_info.flags;
    out->num_regions = w.u.device_info.num_regions;
    out->num_irqs = w.u.device_info.num_irqs;
    conn_msg_free(reply);
    return 0;
}

static int
collect_cap(const struct vfio_user_cap_header *h, const uint8_t *cap,
            size_t avail, void *opaque)
{
    struct umdev_client_region *r = opaque;

    if (h->id == VFIO_USER_REGION_CAP_SPARSE_MMAP) {
        struct vfio_user_cap_sparse_mmap sp;
        size_t i;

        if (avail < sizeof(sp))
            return -EINVAL;
        memcpy(&sp, cap, sizeof(sp));
        if (sp.nr_areas > UMDEV_WIRE_MAX_SPARSE_AREAS ||
            sp.nr_areas * sizeof(struct vfio_user_sparse_area) >
                avail - sizeof(sp))
            return -EINVAL;
        for (i = 0; i < sp.nr_areas; i++) {
            struct vfio_user_sparse_area *a = &r->areas[i];

            memcpy(a, cap + sizeof(sp) + i * sizeof(*a), sizeof(*a));
            if (a->offset > r->size || a->size > r->size - a->offset)
                return -EINVAL;
        }
        r->nr_areas = sp.nr_areas;
    } else if (h->id == VFIO_USER_REGION_CAP_TYPE) {
        struct vfio_user_cap_type t;

        if (avail < sizeof(t))
            return -EINVAL;
        memcpy(&t, cap, sizeof(t));
        r->has_type = true;
        r->type = t.type;
        r->subtype = t.subtype;
    }
    return 0;
}

int
umdev_client_region_info(struct umdev_client *c, uint32_t index,
                         struct umdev_client_region *out)
{
    struct vfio_user_region_info req = { .index = index };
    struct umdev_client_region *r;
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    uint32_t argsz = sizeof(req) + 1024;
    int attempt, rc;

    if (index < MAX_CACHED_REGIONS && c->region_cached[index]) {
        *out = c->regions[index];
        return 0;
    }
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    for (attempt = 0; attempt < 2; attempt++) {
        req.argsz = argsz;
        rc = request(c, VFIO_USER_DEVICE_GET_REGION_INFO, 0, &req, sizeof(req),
                     NULL, 0, NULL, 0, &reply, &w);
        if (rc < 0)
            return rc;
        if (w.u.region_info.argsz <= argsz)
            break;
        /* Too small: the server says how much it needs; ask once more. */
        argsz = w.u.region_info.argsz;
        conn_msg_free(reply);
        reply = NULL;
        if (argsz > UMDEV_WIRE_MAX_CONTROL_PAYLOAD)
            return -EPROTO;
    }
    if (reply == NULL)
        return -EPROTO;
    out->index = index;
    out->flags = w.u.region_info.flags;
    out->size = w.u.region_info.size;
    out->offset = w.u.region_info.offset;
    if (reply->nfds > 0) {
        out->fd = reply->fds[0];
        reply->fds[0] = -1;
    }
    rc = umdev_wire_region_caps_walk(reply->buf + UMDEV_WIRE_HDR_SIZE,
                                     reply->len - UMDEV_WIRE_HDR_SIZE,
                                     collect_cap, out);
    conn_msg_free(reply);
    if (rc < 0) {
        if (out->fd >= 0)
            close(out->fd);
        return -EPROTO;
    }
    if ((out->flags & VFIO_REGION_INFO_FLAG_MMAP) && out->nr_areas == 0 &&
        !(out->flags & VFIO_REGION_INFO_FLAG_CAPS)) {
        out->nr_areas = 1;
        out->areas[0].offset = 0;
        out->areas[0].size = out->size;
    }
    if (index < MAX_CACHED_REGIONS) {
        r = &c->regions[index];
        *r = *out;
        c->region_cached[index] = true;
    } else if (out->fd >= 0) {
        /* Not cached, so not ours to keep. */
        close(out->fd);
        out->fd = -1;
    }
    return 0;
}

static int
region_access(struct umdev_client *c, uint16_t cmd, uint32_t flags,
              uint32_t index, uint64_t offset, void *buf, size_t len)
{
    /*
     * Both ends bound a transfer: the server's limit for the data we send,
     * ours for the data it returns. Split by the smaller one.
     */
    uint32_t max = c->caps.max_data_xfer_size;
    uint32_t ours = conn_local_caps(c->conn)->max_data_xfer_size;
    uint8_t *p = buf;

    if (max == 0)
        max = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER;
    if (ours != 0 && ours < max)
        max = ours;
    while (len > 0) {
        size_t n = len < max ? len : max;
        struct vfio_user_region_access a = {
            .offset = offset,
            .region = index,
            .count = (uint32_t)n,
        };
        struct umdev_wire_msg w;
        struct conn_msg *reply;
        bool is_write = cmd == VFIO_USER_REGION_WRITE;
        int rc;

        rc = request(c, cmd, flags, &a, sizeof(a), is_write ? p : NULL,
                     is_write ? n : 0, NULL, 0, &reply, &w);
        if (rc < 0)
            return rc;
        if (reply != NULL) {
            if (!is_write) {
                if (w.u.region_access.count != n || w.data_len != n ||
                    w.u.region_access.offset != offset ||
                    w.u.region_access.region != index) {
                    conn_msg_free(reply);
                    return -EPROTO;
                }
                memcpy(p, w.data, n);
            }
            conn_msg_free(reply);
        }
        p += n;
        offset += n;
        len -= n;
    }
    return 0;
}

int
umdev_client_region_read(struct umdev_client *c, uint32_t index,
                         uint64_t offset, void *buf, size_t len)
{
    return region_access(c, VFIO_USER_REGION_READ, 0, index, offset, buf, len);
}

static int
config_read(void *ctx, unsigned int off, unsigned int len, uint16_t *val)
{
    uint8_t b[2] = { 0, 0 };
    int rc;

    rc = umdev_client_region_read(ctx, VFIO_PCI_CONFIG_REGION_INDEX, off, b,
                                  len);
    *val = (uint16_t)(b[0] | b[1] << 8);
    return rc;
}

int
umdev_client_pci_cap_find(struct umdev_client *c, uint8_t id,
                          unsigned int after)
{
    return util_pci_cap_find(config_read, c, id, after);
}

int
umdev_client_region_write(struct umdev_client *c, uint32_t index,
                          uint64_t offset, const void *buf, size_t len)
{
    return region_access(c, VFIO_USER_REGION_WRITE, 0, index, offset,
                         (void *)buf, len);
}

int
umdev_client_region_write_posted(struct umdev_client *c, uint32_t index,
                                 uint64_t offset, const void *buf, size_t len)
{
    return region_access(c, VFIO_USER_REGION_WRITE, VFIO_USER_F_NO_REPLY, index,
                         offset, (void *)buf, len);
}

int
umdev_client_region_mmap(struct umdev_client *c, uint32_t index, size_t area,
                         void **ptr, size_t *len)
{
    struct umdev_client_region r;
    struct client_mapping *m;
    int prot = 0;
    void *p;
    int rc;

    *ptr = NULL;
    rc = umdev_client_region_info(c, index, &r);
    if (rc < 0)
        return rc;
    if (!(r.flags & VFIO_REGION_INFO_FLAG_MMAP) || r.fd < 0 ||
        area >= r.nr_areas)
        return -ENODEV;
    if (r.flags & VFIO_REGION_INFO_FLAG_READ)
        prot |= PROT_READ;
    if (r.flags & VFIO_REGION_INFO_FLAG_WRITE)
        prot |= PROT_WRITE;
    if (c->nmaps == c->cap_maps) {
        size_t cap = c->cap_maps ? c->cap_maps * 2 : 8;

        m = realloc(c->maps, cap * sizeof(*m));
        if (m == NULL)
            return -ENOMEM;
        c->maps = m;
        c->cap_maps = cap;
    }
    p = mmap(NULL, r.areas[area].size, prot, MAP_SHARED, r.fd,
             (off_t)(r.offset + r.areas[area].offset));
    if (p == MAP_FAILED)
        return -errno;
    c->maps[c->nmaps++] = (struct client_mapping){ p, r.areas[area].size };
    *ptr = p;
    if (len != NULL)
        *len = r.areas[area].size;
    return 0;
}

int
umdev_client_irq_info(struct umdev_client *c, uint32_t index,
                      struct umdev_client_irq_info *out)
{
    struct vfio_user_irq_info req = { .argsz = sizeof(req), .index = index };
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    int rc;

    rc = request(c, VFIO_USER_DEVICE_GET_IRQ_INFO, 0, &req, sizeof(req), NULL,
                 0, NULL, 0, &reply, &w);
    if (rc < 0)
        return rc;
    out->flags = w.u.irq_info.flags;
    out->count = w.u.irq_info.count;
    conn_msg_free(reply);
    return 0;
}

int
umdev_client_set_irqs(struct umdev_client *c, uint32_t index, uint32_t flags,
                      uint32_t start, uint32_t count, const int *fds,
                      const uint8_t *bools)
{
    struct vfio_user_irq_set s = {
        .argsz = sizeof(s),
        .flags = flags,
        .index = index,
        .start = start,
        .count = count,
    };
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    size_t nfds = 0;
    size_t data_len = 0;
    int rc;

    if ((flags & VFIO_IRQ_SET_DATA_EVENTFD) && fds != NULL)
        nfds = count;
    if ((flags & VFIO_IRQ_SET_DATA_BOOL) && bools != NULL)
        data_len = count;
    s.argsz += (uint32_t)data_len;
    rc = request(c, VFIO_USER_DEVICE_SET_IRQS, 0, &s, sizeof(s), bools,
                 data_len, fds, nfds, &reply, &w);
    if (rc < 0)
        return rc;
    conn_msg_free(reply);
    return 0;
}

int
umdev_client_dma_map(struct umdev_client *c, uint64_t iova, uint64_t size,
                     void *host, int fd, uint64_t fd_offset, uint32_t prot)
{
    struct vfio_user_dma_map m = {
        .argsz = sizeof(m),
        .flags = prot,
        .offset = fd >= 0 ? fd_offset : 0,
        .addr = iova,
        .size = size,
    };
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    int rc;

    if (c->ndma == c->cap_dma) {
        size_t cap = c->cap_dma ? c->cap_dma * 2 : 16;
        struct client_dma *d = realloc(c->dma, cap * sizeof(*d));

        if (d == NULL)
            return -ENOMEM;
        c->dma = d;
        c->cap_dma = cap;
    }
    rc = request(c, VFIO_USER_DMA_MAP, 0, &m, sizeof(m), NULL, 0,
                 fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, &reply, &w);
    if (rc < 0)
        return rc;
    conn_msg_free(reply);
    c->dma[c->ndma++] = (struct client_dma){ iova, size, host, prot };
    return 0;
}

static void
forget_dma(struct umdev_client *c, uint64_t iova, uint64_t size)
{
    size_t i;

    for (i = 0; i < c->ndma; i++) {
        if (c->dma[i].iova == iova && c->dma[i].size == size) {
            c->dma[i] = c->dma[--c->ndma];
            return;
        }
    }
}

/* DMA_UNMAP of [@iova, +@size), or of everything with FLAG_ALL; then the
 * record of what the server may read goes too. */
static int
dma_unmap(struct umdev_client *c, uint64_t iova, uint64_t size, uint32_t flags)
{
    struct vfio_user_dma_unmap u = {
        .argsz = sizeof(u),
        .flags = flags,
        .addr = iova,
        .size = size,
    };
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    int rc;

    rc = request(c, VFIO_USER_DMA_UNMAP, 0, &u, sizeof(u), NULL, 0, NULL, 0,
                 &reply, &w);
    if (rc < 0)
        return rc;
    conn_msg_free(reply);
    if (flags & VFIO_USER_DMA_UNMAP_FLAG_ALL)
        c->ndma = 0;
    else
        forget_dma(c, iova, size);
    return 0;
}

int
umdev_client_dma_unmap(struct umdev_client *c, uint64_t iova, uint64_t size)
{
    return dma_unmap(c, iova, size, 0);
}

int
umdev_client_dma_unmap_all(struct umdev_client *c)
{
    return dma_unmap(c, 0, 0, VFIO_USER_DMA_UNMAP_FLAG_ALL);
}

int
umdev_client_reset(struct umdev_client *c)
{
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    int rc;

    rc = request(c, VFIO_USER_DEVICE_RESET, 0, NULL, 0, NULL, 0, NULL, 0,
                 &reply, &w);
    if (rc < 0)
        return rc;
    conn_msg_free(reply);
    return 0;
}

/* A DEVICE_FEATURE request; the reply's data (exactly @out_len bytes)
 * into @out. */
static int
feature(struct umdev_client *c, uint32_t flags, const void *in, size_t in_len,
        void *out, size_t out_len)
{
    struct vfio_user_device_feature f = {
        .argsz = (uint32_t)(sizeof(f) + out_len),
        .flags = flags,
    };
    struct umdev_wire_msg w;
    struct conn_msg *reply;
    int rc;

    rc = request(c, VFIO_USER_DEVICE_FEATURE, 0, &f, sizeof(f), in, in_len,
                 NULL, 0, &reply, &w);
    if (rc < 0)
        return rc;
    if (w.data_len != out_len || w.u.feature.hdr.flags != flags) {
        conn_msg_free(reply);
        return -EPROTO;
    }
    if (out_len != 0)
        memcpy(out, w.data, out_len);
    conn_msg_free(reply);
    return 0;
}

int
umdev_client_mig_flags(struct umdev_client *c, uint64_t *flags)
{
    struct vfio_user_feature_migration m;
    int rc;

    rc = feature(c, VFIO_USER_DEVICE_FEATURE_GET | VFIO_USER_FEATURE_MIGRATION,
                 NULL, 0, &m, sizeof(m));
    if (rc == 0)
        *flags = m.flags;
    return rc;
}

int
umdev_client_mig_state(struct umdev_client *c, uint32_t *state)
{
    struct vfio_user_feature_mig_state st;
    int rc;

    rc = feature(
        c, VFIO_USER_DEVICE_FEATURE_GET | VFIO_USER_FEATURE_MIG_DEVICE_STATE,
        NULL, 0, &st, sizeof(st));
    if (rc == 0)
        *state = st.device_state;
    return rc;
}

int
umdev_client_mig_set_state(struct umdev_client *c, uint32_t state,
                           uint32_t *now)
{
    struct vfio_user_feature_mig_state st = { state, 0 }, got;
    int rc;

    rc = feature(
        c, VFIO_USER_DEVICE_FEATURE_SET | VFIO_USER_FEATURE_MIG_DEVICE_STATE,
        &st, sizeof(st), &got, sizeof(got));
    if (rc == 0 && now != NULL)
        *now = got.device_state;
    return rc;
}

int
umdev_client_precopy_info(struct umdev_client *c,
                          struct umdev_wire_precopy_info *out)
{
    if (!c->caps.precopy_info)
        return -ENOTSUP;
    return feature(
        c, VFIO_USER_DEVICE_FEATURE_GET | UMDEV_WIRE_FEATURE_PRECOPY_INFO, NULL,
        0, out, sizeof(*out));
}

/* The largest data one message may carry either way. */
static size_t
xfer_max(struct umdev_client *c)
{
    uint32_t max = c->caps.max_data_xfer_size;
    uint32_t ours = conn_local_caps(c->conn)->max_data_xfer_size;

    if (max == 0)
        max = UMDEV_WIRE_DEFAULT_MAX_DATA_XFER;
    if (ours != 0 && ours < max)
        max = ours;
    return max;
}

int
umdev_client_dma_log_start(struct umdev_client *c, uint64_t page_size,
                           const struct vfio_user_dma_logging_range *r,
                           uint32_t n, uint64_t *chosen)
{
    struct vfio_user_dma_logging_control ctl = { page_size, n, 0 };
    size_t len = sizeof(ctl) + (size_t)n * sizeof(*r);
    uint8_t *in, *out;
    int rc;

    if (n > UMDEV_WIRE_MAX_LOG_RANGES)
        return -E2BIG;
    in = malloc(len);
    out = malloc(len);
    if (in == NULL || out == NULL) {
        free(in);
        free(out);
        return -ENOMEM;
    }
    memcpy(in, &ctl, sizeof(ctl));
    if (n != 0)
        memcpy(in + sizeof(ctl), r, (size_t)n * sizeof(*r));
    rc = feature(
        c, VFIO_USER_DEVICE_FEATURE_SET | VFIO_USER_FEATURE_DMA_LOGGING_START,
        in, len, out, len);
    if (rc == 0 && chosen != NULL) {
        memcpy(&ctl, out, sizeof(ctl));
        *chosen = ctl.page_size;
    }
    free(in);
    free(out);
    return rc;
}

int
umdev_client_dma_log_stop(struct umdev_client *c)
{
    return feature(
        c, VFIO_USER_DEVICE_FEATURE_SET | VFIO_USER_FEATURE_DMA_LOGGING_STOP,
        NULL, 0, NULL, 0);
}

int
umdev_client_dma_log_report(struct umdev_client *c, uint64_t iova,
                            uint64_t length, uint64_t page_size,
                            uint64_t *bitmap)
{
    struct vfio_user_dma_logging_report r = { iova, length, page_size };
    uint64_t bytes = umdev_wire_log_bitmap_size(length, page_size);
    uint8_t *out;
    size_t i;
    int rc;

    if (bytes == 0 || (page_size & (page_size - 1)) != 0)
        return -EINVAL;
    if (bytes > xfer_max(c))
        return -E2BIG;
    out = malloc(sizeof(r) + bytes);
    if (out == NULL)
        return -ENOMEM;
    rc = feature(
        c, VFIO_USER_DEVICE_FEATURE_GET | VFIO_USER_FEATURE_DMA_LOGGING_REPORT,
        &r, sizeof(r), out, sizeof(r) + bytes);
    if (rc == 0 && memcmp(out, &r, sizeof(r)) != 0)
        rc = -EPROTO;
    /* As the kernel's report: bits are set, never cleared. */
    for (i = 0; rc == 0 && i < bytes / sizeof(uint64_t); i++) {
        uint64_t w;

        memcpy(&w, out + sizeof(r) + i * sizeof(w), sizeof(w));
        bitmap[i] |= w;
    }
    free(out);
    return rc;
}

ssize_t
umdev_client_mig_read(struct umdev_client *c, void *buf, size_t len)
{
    size_t max = xfer_max(c), done = 0;
    uint8_t *p = buf;

    if (len > SSIZE_MAX)
        return -EINVAL;
    while (done < len) {
        size_t n = len - done < max ? len - done : max;
        struct vfio_user_mig_data m = {
            .argsz = (uint32_t)(sizeof(m) + n),
            .size = (uint32_t)n,
        };
        struct umdev_wire_msg w;
        struct conn_msg *reply;
        size_t got;
        int rc;

        rc = request(c, VFIO_USER_MIG_DATA_READ, 0, &m, sizeof(m), NULL, 0,
                     NULL, 0, &reply, &w);
        if (rc < 0)
            return rc;
        got = w.u.mig.size;
        if (got > n) {
            conn_msg_free(reply);
            return -EPROTO;
        }
        memcpy(p + done, w.data, got);
        conn_msg_free(reply);
        done += got;
        if (got < n)
            break; /* spec: a short read means no more data */
    }
    return (ssize_t)done;
}

int
umdev_client_mig_write(struct umdev_client *c, const void *buf, size_t len)
{
    size_t max = xfer_max(c);
    const uint8_t *p = buf;

    while (len > 0) {
        size_t n = len < max ? len : max;
        struct vfio_user_mig_data m = {
            .argsz = sizeof(m),
            .size = (uint32_t)n,
        };
        struct umdev_wire_msg w;
        struct conn_msg *reply;
        int rc;

        rc = request(c, VFIO_USER_MIG_DATA_WRITE, 0, &m, sizeof(m), p, n, NULL,
                     0, &reply, &w);
        if (rc < 0)
            return rc;
        conn_msg_free(reply);
        p += n;
        len -= n;
    }
    return 0;
}

int
umdev_client_poll(struct umdev_client *c, int timeout_ms)
{
    struct conn_msg *m;
    int served = 0;
    int rc;

    rc = conn_read_wait(c->conn, timeout_ms, &m);
    while (rc == 0) {
        if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) ==
            VFIO_USER_F_TYPE_COMMAND) {
            rc = serve_dma(c->conn, m, c);
            served++;
        } else {
            umdev_log(c->log, LOG_WARNING, "dropping stray %s reply",
                      umdev_wire_cmd_name(m->hdr.cmd));
        }
        conn_msg_free(m);
        if (rc < 0)
            return rc;
        rc = conn_read(c->conn, &m);
    }
    if (rc == -EAGAIN || rc == -ETIMEDOUT)
        return served;
    return rc;
}

int
umdev_client_raw(struct umdev_client *c, uint16_t cmd, uint32_t flags,
                 const void *payload, size_t len, const int *fds, size_t nfds,
                 void *reply_buf, size_t reply_cap, size_t *reply_len,
                 struct vfio_user_header *reply_hdr)
{
    size_t size = umdev_wire_size(len, 0);
    uint16_t id = conn_next_id(c->conn);
    struct conn_msg *reply;
    uint8_t *buf;
    int rc;

    if (reply_len != NULL)
        *reply_len = 0;
    if (size == 0)
        return -E2BIG;
    buf = malloc(size);
    if (buf == NULL)
        return -ENOMEM;
    umdev_wire_encode(buf, size, id, cmd, flags, payload, len, NULL, 0);
    if (flags & VFIO_USER_F_NO_REPLY) {
        rc = conn_send(c->conn, buf, size, fds, nfds);
        free(buf);
        return rc;
    }
    rc = conn_request(c->conn, buf, size, fds, nfds, c->timeout_ms, serve_dma,
                      c, &reply);
    free(buf);
    if (rc < 0)
        return rc;
    if (reply_hdr != NULL)
        *reply_hdr = reply->hdr;
    if (reply_buf != NULL && reply->len > UMDEV_WIRE_HDR_SIZE) {
        size_t n = reply->len - UMDEV_WIRE_HDR_SIZE;

        if (n > reply_cap)
            n = reply_cap;
        memcpy(reply_buf, reply->buf + UMDEV_WIRE_HDR_SIZE, n);
        if (reply_len != NULL)
            *reply_len = n;
    }
    conn_msg_free(reply);
    return 0;
}

int
umdev_client_send_bytes(struct umdev_client *c, const void *buf, size_t len)
{
    return conn_send(c->conn, buf, len, NULL, 0);
}

void
umdev_client_get_stats(const struct umdev_client *c,
                       struct umdev_client_stats *out)
{
    *out = c->stats;
}
