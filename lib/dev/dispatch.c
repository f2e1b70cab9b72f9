/*
 * Server dispatch: one decoded command becomes one device operation. Each
 * handler either sends its reply or returns a negative errno; that errno
 * becomes an error reply in exactly one place, dev_handle_msg().
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev_priv.h"
#include "umdev/dev_testing.h"

/* Reads up to this size are served from the stack: the trapped 1-8 byte
 * register read is the hot path and must not allocate. */
#define SMALL_READ 64

struct req {
    struct conn_msg *m;
    struct umdev_wire_msg w;
    bool no_reply;
    /* The connection it came on: the client's, or the migration
     * manager's (umdev_dev_manage()), with that session's flags. */
    struct conn *conn;
    bool manager;
    bool *negotiated;
    bool *precopy_info;
};

static int
reply(struct umdev_dev *dev, struct req *r, const void *fixed,
      size_t fixed_len, const void *data, size_t data_len, const int *fds,
      size_t nfds)
{
    struct vfio_user_header hdr = {
        .msg_id = r->w.hdr.msg_id,
        .cmd = r->w.hdr.cmd,
        .flags = VFIO_USER_F_TYPE_REPLY,
    };
    size_t size = umdev_wire_size(fixed_len, data_len);

    if (r->no_reply)
        return 0;
    if (size == 0)
        return -E2BIG;
    hdr.msg_size = (uint32_t)size;
    (void)dev;
    return conn_sendv(r->conn, &hdr, fixed, fixed_len, data, data_len, fds,
                      nfds);
}

static int
handle_version(struct umdev_dev *dev, struct req *r)
{
    struct conn_caps peer, ours;
    char json[512];
    uint8_t buf[4 + sizeof(json)];
    uint16_t major = 0, minor = 0;
    ssize_t n;
    int rc;

    if (*r->negotiated)
        return -EINVAL;
    /* Spec "Version": same major; minor at most the client's. We speak
     * 0.0, the only version published. */
    if (r->w.u.version.major != 0)
        return -ENOTSUP;
    rc = conn_caps_parse(r->w.u.version.json, &peer);
    if (rc < 0) {
        umdev_log(dev->log, LOG_WARNING,
                  "%s: VERSION capabilities are malformed", dev->name);
        return rc;
    }
    if (!(peer.pgsizes & DEV_PAGE_SIZE))
        return -ENOTSUP;
    if (peer.max_msg_fds > UMDEV_WIRE_MAX_MSG_FDS)
        peer.max_msg_fds = UMDEV_WIRE_MAX_MSG_FDS;
    conn_set_peer_caps(r->conn, &peer);
    ours = *conn_local_caps(r->conn);
    ours.pgsizes = DEV_PAGE_SIZE;
    /* The reply's capabilities are a subset of those proposed. */
    ours.write_multiple = peer.write_multiple;
    ours.migration = false;
    /* The extension is answered only to a client that asked for it, for
     * a device that has pre-copy: others see the spec's reply. */
    ours.precopy_info = peer.precopy_info && dev_mig_precopy(dev);
    *r->precopy_info = ours.precopy_info;
    n = conn_caps_format(&ours, json, sizeof(json));
    if (n < 0)
        return (int)n;
    memcpy(buf, &major, 2);
    memcpy(buf + 2, &minor, 2);
    memcpy(buf + 4, json, (size_t)n);
    rc = reply(dev, r, buf, 4 + (size_t)n, NULL, 0, NULL, 0);
    if (rc == 0)
        *r->negotiated = true;
    return rc;
}

static int
handle_dma_map(struct umdev_dev *dev, struct req *r)
{
    int fd = r->m->nfds ? r->m->fds[0] : -1;
    int rc;

    rc = dev_dma_map(dev, &r->w.u.dma_map, fd);
    if (rc < 0)
        return rc;
    return reply(dev, r, NULL, 0, NULL, 0, NULL, 0);
}

static int
handle_dma_unmap(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_dma_unmap u = r->w.u.dma_unmap.unmap;
    int rc;

    /* Migration v1's bitmap: v2 reports through DMA_LOGGING_REPORT
     * (dma_log.c), and inventing this one would be worse than refusing. */
    if (u.flags & VFIO_USER_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP)
        return -ENOTSUP;
    if (u.flags & VFIO_USER_DMA_UNMAP_FLAG_ALL) {
        dev_dma_unmap_all(dev);
        rc = 0;
    } else {
        rc = dev_dma_unmap(dev, u.addr, u.size);
    }
    if (rc < 0)
        return rc;
    u.argsz = sizeof(u);
    return reply(dev, r, &u, sizeof(u), NULL, 0, NULL, 0);
}

static int
handle_get_info(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_device_info info = {
        .argsz = sizeof(info),
        .flags = VFIO_DEVICE_FLAGS_RESET |
                 (dev->pci ? VFIO_DEVICE_FLAGS_PCI : 0),
        .num_regions = dev->num_regions,
        .num_irqs = dev->num_irqs,
    };

    return reply(dev, r, &info, sizeof(info), NULL, 0, NULL, 0);
}

static bool
whole_region_mappable(const struct dev_region *reg)
{
    return reg->nr_areas == 1 && reg->areas[0].offset == 0 &&
           reg->areas[0].size == reg->size && reg->access == NULL;
}

static int
handle_region_info(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_region_info info = { 0 };
    uint8_t caps[sizeof(struct vfio_user_cap_sparse_mmap) +
                 UMDEV_WIRE_MAX_SPARSE_AREAS *
                     sizeof(struct vfio_user_sparse_area)];
    size_t caps_len = 0;
    const struct dev_region *reg;
    uint32_t index = r->w.u.region_info.index;
    int fd = -1;

    if (index >= dev->num_regions)
        return -EINVAL;
    reg = &dev->regions[index];
    info.index = index;
    info.argsz = sizeof(info);
    if (reg->present) {
        info.size = reg->size;
        if (reg->flags & UMDEV_REGION_F_READ)
            info.flags |= VFIO_REGION_INFO_FLAG_READ;
        if (reg->flags & UMDEV_REGION_F_WRITE)
            info.flags |= VFIO_REGION_INFO_FLAG_WRITE;
    }
    if (reg->present && reg->shm_fd >= 0) {
        info.flags |= VFIO_REGION_INFO_FLAG_MMAP;
        fd = reg->shm_fd;
        /* Only part mappable (or trapped through a callback): say which
         * part with a sparse-mmap capability. */
        if (!whole_region_mappable(reg)) {
            struct vfio_user_cap_sparse_mmap sp = {
                .header = { .id = VFIO_USER_REGION_CAP_SPARSE_MMAP,
                            .version = 1 },
                .nr_areas = (uint32_t)reg->nr_areas,
            };
            size_t i;

            memcpy(caps, &sp, sizeof(sp));
            caps_len = sizeof(sp);
            for (i = 0; i < reg->nr_areas; i++) {
                struct vfio_user_sparse_area a = {
                    .offset = reg->areas[i].offset,
                    .size = reg->areas[i].size,
                };

                memcpy(caps + caps_len, &a, sizeof(a));
                caps_len += sizeof(a);
            }
            info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
            info.argsz += (uint32_t)caps_len;
        }
    }
    /*
     * Too small a buffer: report the size needed and no capabilities; the
     * client asks again. Unlike the kernel, the CAPS flag is cleared too:
     * QEMU's vfio-user client rejects CAPS with a cap_offset outside the
     * reply, and there is no chain in this reply.
     */
    if (r->w.u.region_info.argsz < info.argsz) {
        info.flags &= ~(uint32_t)VFIO_REGION_INFO_FLAG_CAPS;
        info.cap_offset = 0;
        return reply(dev, r, &info, sizeof(info), NULL, 0, NULL, 0);
    }
    if (caps_len)
        info.cap_offset = sizeof(info);
    return reply(dev, r, &info, sizeof(info), caps, caps_len,
                 fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0);
}

static int
handle_region_io_fds(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_region_io_fds_request out = r->w.u.io_fds;

    if (out.index >= dev->num_regions || out.flags != 0)
        return -EINVAL;
    /* No region offers ioeventfds yet: an empty list. */
    out.argsz = sizeof(out);
    out.count = 0;
    return reply(dev, r, &out, sizeof(out), NULL, 0, NULL, 0);
}

static int
handle_irq_info(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_irq_info info = r->w.u.irq_info;

    if (info.index >= dev->num_irqs || info.index >= DEV_MAX_IRQ_INDEX)
        return -EINVAL;
    info.argsz = sizeof(info);
    info.flags = dev->irqs[info.index].flags;
    info.count = dev->irqs[info.index].count;
    return reply(dev, r, &info, sizeof(info), NULL, 0, NULL, 0);
}

static int
handle_set_irqs(struct umdev_dev *dev, struct req *r)
{
    int rc;

    rc = dev_irq_set(dev, &r->w.u.irq_set, r->w.data, r->m->fds,
                     r->m->nfds);
    if (rc < 0)
        return rc;
    return reply(dev, r, NULL, 0, NULL, 0, NULL, 0);
}

/* Bounds and permission of a region access; the one check every path
 * (READ, WRITE, WRITE_MULTI) goes through. */
static int
region_check(struct umdev_dev *dev, uint32_t index, uint64_t offset,
             uint64_t count, bool is_write, struct dev_region **out)
{
    struct dev_region *reg;

    if (index >= UMDEV_MAX_REGIONS || !dev->regions[index].present)
        return -EINVAL;
    reg = &dev->regions[index];
    if (!(reg->flags & (is_write ? UMDEV_REGION_F_WRITE : UMDEV_REGION_F_READ)))
        return -EPERM;
    if (offset >= reg->size || count > reg->size - offset)
        return -EINVAL;
    if (dev->profile != NULL) {
        int rc = dev_profile_check(dev, index, offset, count, is_write);

        if (rc < 0)
            return rc;
    }
    *out = reg;
    return 0;
}

static int
region_io(struct dev_region *reg, uint64_t offset, void *buf, size_t count,
          bool is_write)
{
    ssize_t n;

    if (reg->access != NULL) {
        n = reg->access(reg->opaque, offset, buf, count, is_write);
        if (n < 0)
            return (int)n;
        return (size_t)n == count ? 0 : -EIO;
    }
    if (is_write)
        memcpy((uint8_t *)reg->shm + offset, buf, count);
    else
        memcpy(buf, (uint8_t *)reg->shm + offset, count);
    return 0;
}

int
umdev_dev_region_rw(struct umdev_dev *dev, uint32_t index, uint64_t offset,
                    void *buf, size_t count, bool is_write)
{
    struct dev_region *reg;
    int rc;

    if (count == 0)
        return -EINVAL;
    rc = region_check(dev, index, offset, count, is_write, &reg);
    if (rc < 0)
        return rc;
    return region_io(reg, offset, buf, count, is_write);
}

static int
handle_region_read(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_region_access a = r->w.u.region_access;
    uint8_t small[SMALL_READ];
    struct dev_region *reg;
    uint8_t *buf = small;
    int rc;

    rc = region_check(dev, a.region, a.offset, a.count, false, &reg);
    if (rc < 0)
        return rc;
    if (a.count > sizeof(small)) {
        buf = malloc(a.count);
        if (buf == NULL)
            return -ENOMEM;
    }
    rc = region_io(reg, a.offset, buf, a.count, false);
    if (rc == 0) {
        dev->stats.region_reads++;
        rc = reply(dev, r, &a, sizeof(a), buf, a.count, NULL, 0);
    }
    if (buf != small)
        free(buf);
    return rc;
}

static int
handle_region_write(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_region_access a = r->w.u.region_access;
    struct dev_region *reg;
    int rc;

    rc = region_check(dev, a.region, a.offset, a.count, true, &reg);
    if (rc < 0)
        return rc;
    /* The decoder checked data_len == count; the buffer is ours to give
     * the device (it may modify it, e.g. for masking). */
    rc = region_io(reg, a.offset, (void *)r->w.data, a.count, true);
    if (rc < 0)
        return rc;
    dev->stats.region_writes++;
    return reply(dev, r, &a, sizeof(a), NULL, 0, NULL, 0);
}

static int
handle_write_multi(struct umdev_dev *dev, struct req *r)
{
    uint64_t n = r->w.u.write_multi.count;
    uint64_t i;
    int rc;

    /* All entries are validated before any is applied. */
    for (i = 0; i < n; i++) {
        struct vfio_user_write_multi_entry e;
        struct dev_region *reg;

        umdev_wire_write_multi_entry(&r->w, i, &e);
        rc = region_check(dev, e.region, e.offset, e.count, true, &reg);
        if (rc < 0)
            return rc;
    }
    for (i = 0; i < n; i++) {
        struct vfio_user_write_multi_entry e;
        struct dev_region *reg;

        umdev_wire_write_multi_entry(&r->w, i, &e);
        rc = region_check(dev, e.region, e.offset, e.count, true, &reg);
        if (rc == 0)
            rc = region_io(reg, e.offset, e.data, e.count, true);
        if (rc < 0)
            return rc;
        dev->stats.region_writes++;
    }
    return reply(dev, r, &n, sizeof(n), NULL, 0, NULL, 0);
}

static int
handle_reset(struct umdev_dev *dev, struct req *r)
{
    bool stopped;
    int rc = 0;

    if (dev->ops != NULL && dev->ops->reset != NULL)
        rc = dev->ops->reset(dev->opaque);
    if (rc < 0)
        return rc;
    /* Spec: a reset is the way out of ERROR, and ends in RUNNING from
     * any state; a device that was stopped runs again. */
    dev_mig_reset(dev, &stopped);
    if (stopped && dev_mig_supported(dev))
        dev->ops->mig->resume(dev->opaque);
    return reply(dev, r, NULL, 0, NULL, 0, NULL, 0);
}

/* A DEVICE_FEATURE reply: the request's header with @data after it. */
static int
feature_reply(struct umdev_dev *dev, struct req *r, const void *data,
              size_t len)
{
    struct vfio_user_device_feature f = r->w.u.feature.hdr;

    f.argsz = (uint32_t)(sizeof(f) + len);
    return reply(dev, r, &f, sizeof(f), data, len, NULL, 0);
}

/* Which of GET/SET each feature takes; 0: not offered by this device. */
static uint32_t
feature_methods(struct umdev_dev *dev, const struct req *r, uint32_t index)
{
    const uint32_t get = VFIO_USER_DEVICE_FEATURE_GET;
    const uint32_t set = VFIO_USER_DEVICE_FEATURE_SET;

    switch (index) {
    case VFIO_USER_FEATURE_MIGRATION:
        return dev_mig_supported(dev) ? get : 0;
    case VFIO_USER_FEATURE_MIG_DEVICE_STATE:
        return dev_mig_supported(dev) ? get | set : 0;
    case UMDEV_WIRE_FEATURE_PRECOPY_INFO:
        return *r->precopy_info ? get : 0;
    /* Every device: its writes all pass lib/dev's DMA API. */
    case VFIO_USER_FEATURE_DMA_LOGGING_START:
    case VFIO_USER_FEATURE_DMA_LOGGING_STOP:
        return set;
    case VFIO_USER_FEATURE_DMA_LOGGING_REPORT:
        return get;
    default:
        return 0;
    }
}

static int
handle_log_start(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_dma_logging_control c = r->w.u.feature.d.log_start;
    uint8_t *out;
    size_t len = r->w.data_len;
    int rc;

    rc = dev_log_start(dev, &c, &r->w);
    if (rc < 0)
        return rc;
    /* The reply repeats the request with the page size we track at
     * (reports come at whatever size the client asks). */
    out = malloc(len);
    if (out == NULL) {
        dev_log_stop(dev);
        return -ENOMEM;
    }
    c.page_size = DEV_PAGE_SIZE;
    memcpy(out, r->w.data, len);
    memcpy(out, &c, sizeof(c));
    rc = feature_reply(dev, r, out, len);
    free(out);
    return rc;
}

static int
handle_log_report(struct umdev_dev *dev, struct req *r)
{
    const struct vfio_user_dma_logging_report *rep =
        &r->w.u.feature.d.log_report;
    /* The decoder bounded it by max_data_xfer_size. */
    size_t bytes =
        (size_t)umdev_wire_log_bitmap_size(rep->length, rep->page_size);
    uint8_t *out = calloc(1, sizeof(*rep) + bytes);
    uint64_t *bitmap;
    int rc;

    if (out == NULL)
        return -ENOMEM;
    /* Word-aligned scratch for the bits, then laid after the range. */
    bitmap = calloc(1, bytes);
    if (bitmap == NULL) {
        free(out);
        return -ENOMEM;
    }
    rc = dev_log_report(dev, rep, bitmap);
    if (rc == 0) {
        memcpy(out, rep, sizeof(*rep));
        memcpy(out + sizeof(*rep), bitmap, bytes);
        rc = feature_reply(dev, r, out, sizeof(*rep) + bytes);
    }
    free(bitmap);
    free(out);
    return rc;
}

static int
handle_feature(struct umdev_dev *dev, struct req *r)
{
    const typeof(r->w.u.feature) *f = &r->w.u.feature;
    uint32_t methods = feature_methods(dev, r, f->index);
    uint32_t asked = f->hdr.flags & (VFIO_USER_DEVICE_FEATURE_GET |
                                     VFIO_USER_DEVICE_FEATURE_SET);
    struct vfio_user_feature_mig_state st = { 0, 0 };
    struct vfio_user_feature_migration mf;
    struct umdev_wire_precopy_info pi;
    int rc;

    if (methods == 0)
        return -ENOTSUP;
    /* As the kernel's vfio_check_feature(): a method the feature lacks is
     * EINVAL, and a probe answers whether all those asked exist. */
    if ((asked & methods) != asked)
        return -EINVAL;
    if (f->probe)
        return reply(dev, r, &f->hdr, sizeof(f->hdr), NULL, 0, NULL, 0);
    switch (f->index) {
    case VFIO_USER_FEATURE_MIGRATION:
        mf.flags = dev_mig_flags(dev);
        return feature_reply(dev, r, &mf, sizeof(mf));
    case VFIO_USER_FEATURE_MIG_DEVICE_STATE:
        if (f->set) {
            rc = dev_mig_set_state(dev, f->d.mig_state.device_state);
            if (rc < 0)
                return rc;
        }
        st.device_state = umdev_dev_mig_state(dev);
        return feature_reply(dev, r, &st, sizeof(st));
    case UMDEV_WIRE_FEATURE_PRECOPY_INFO:
        rc = dev_mig_precopy_info(dev, &pi);
        if (rc < 0)
            return rc;
        return feature_reply(dev, r, &pi, sizeof(pi));
    case VFIO_USER_FEATURE_DMA_LOGGING_START:
        return handle_log_start(dev, r);
    case VFIO_USER_FEATURE_DMA_LOGGING_STOP:
        dev_log_stop(dev);
        return feature_reply(dev, r, NULL, 0);
    case VFIO_USER_FEATURE_DMA_LOGGING_REPORT:
        return handle_log_report(dev, r);
    default:
        return -ENOTSUP;
    }
}

static int
handle_mig_read(struct umdev_dev *dev, struct req *r)
{
    struct vfio_user_mig_data m = r->w.u.mig;
    uint8_t *buf = NULL;
    ssize_t n;
    int rc;

    /* argsz is the largest reply the client takes. */
    if (m.argsz < sizeof(m) + (uint64_t)m.size)
        return -EINVAL;
    if (m.size != 0) {
        buf = malloc(m.size);
        if (buf == NULL)
            return -ENOMEM;
    }
    n = dev_mig_read(dev, buf, m.size);
    if (n < 0) {
        free(buf);
        return (int)n;
    }
    m.size = (uint32_t)n;
    m.argsz = (uint32_t)(sizeof(m) + (size_t)n);
    rc = reply(dev, r, &m, sizeof(m), buf, (size_t)n, NULL, 0);
    free(buf);
    return rc;
}

static int
handle_mig_write(struct umdev_dev *dev, struct req *r)
{
    int rc;

    rc = dev_mig_write(dev, r->w.data, r->w.data_len);
    if (rc < 0)
        return rc;
    return reply(dev, r, NULL, 0, NULL, 0, NULL, 0);
}

/*
 * What a migration manager may send: the migration commands, nothing
 * that touches guest memory, interrupts or registers, which stay the
 * VMM's (docs/PROTOCOL.md "Migration manager").
 */
static bool
manager_may(const struct req *r)
{
    switch (r->w.hdr.cmd) {
    case VFIO_USER_VERSION:
    case VFIO_USER_DEVICE_GET_INFO:
    case VFIO_USER_MIG_DATA_READ:
    case VFIO_USER_MIG_DATA_WRITE:
        return true;
    case VFIO_USER_DEVICE_FEATURE:
        switch (r->w.u.feature.index) {
        case VFIO_USER_FEATURE_MIGRATION:
        case VFIO_USER_FEATURE_MIG_DEVICE_STATE:
        case UMDEV_WIRE_FEATURE_PRECOPY_INFO:
            return true;
        default:
            return false;
        }
    default:
        return false;
    }
}

static int
dispatch(struct umdev_dev *dev, struct req *r)
{
    if (!*r->negotiated && r->w.hdr.cmd != VFIO_USER_VERSION)
        return -EINVAL;
    if (r->manager && !manager_may(r))
        return -EPERM;
    switch (r->w.hdr.cmd) {
    case VFIO_USER_VERSION:
        return handle_version(dev, r);
    case VFIO_USER_DMA_MAP:
        return handle_dma_map(dev, r);
    case VFIO_USER_DMA_UNMAP:
        return handle_dma_unmap(dev, r);
    case VFIO_USER_DEVICE_GET_INFO:
        return handle_get_info(dev, r);
    case VFIO_USER_DEVICE_GET_REGION_INFO:
        return handle_region_info(dev, r);
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
        return handle_region_io_fds(dev, r);
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
        return handle_irq_info(dev, r);
    case VFIO_USER_DEVICE_SET_IRQS:
        return handle_set_irqs(dev, r);
    case VFIO_USER_REGION_READ:
        return handle_region_read(dev, r);
    case VFIO_USER_REGION_WRITE:
        return handle_region_write(dev, r);
    case VFIO_USER_REGION_WRITE_MULTI:
        return handle_write_multi(dev, r);
    case VFIO_USER_DEVICE_RESET:
        return handle_reset(dev, r);
    case VFIO_USER_DEVICE_FEATURE:
        return handle_feature(dev, r);
    case VFIO_USER_MIG_DATA_READ:
        return handle_mig_read(dev, r);
    case VFIO_USER_MIG_DATA_WRITE:
        return handle_mig_write(dev, r);
    default:
        /* DMA_READ/DMA_WRITE are server-to-client only. */
        return -EINVAL;
    }
}

void
dev_handle_msg(struct umdev_dev *dev, struct conn_msg *m, bool manager)
{
    struct conn *conn = manager ? dev->mgr : dev->conn;
    struct req r;
    int rc;

    /* r.w is whatever umdev_wire_decode() makes of the message (it
     * clears it first) and is read only after it succeeded. */
    r.m = m;
    r.no_reply = (m->hdr.flags & VFIO_USER_F_NO_REPLY) != 0;
    r.conn = conn;
    r.manager = manager;
    r.negotiated = manager ? &dev->mgr_negotiated : &dev->negotiated;
    r.precopy_info = manager ? &dev->mgr_precopy_info : &dev->precopy_info;
    if ((m->hdr.flags & VFIO_USER_F_TYPE_MASK) == VFIO_USER_F_TYPE_REPLY) {
        /* The manager is asked nothing. */
        if (!manager && dev_dma_reply(dev, m))
            return;
        /* A reply to nothing we asked. */
        umdev_log(dev->log, LOG_WARNING, "%s: unexpected reply to %s id %u",
                  dev->name, umdev_wire_cmd_name(m->hdr.cmd), m->hdr.msg_id);
        dev->stats.errors++;
        return;
    }
    r.w.hdr = m->hdr;
    rc = m->rx_error;
    if (rc == 0)
        rc = umdev_wire_decode(m->buf, m->len, m->nfds, conn_rx_limits(conn),
                               &r.w);
    if (rc == 0) {
        dev->stats.msgs++;
        rc = dispatch(dev, &r);
    }
    if (rc == 0)
        return;
    dev->stats.errors++;
    umdev_log(dev->log, LOG_DEBUG, "%s: %s id %u failed: %s", dev->name,
              umdev_wire_cmd_name(m->hdr.cmd), m->hdr.msg_id,
              strerror(-rc));
    /* A posted command gets no reply, not even an error one: the client
     * is not reading one and a stray reply would corrupt its stream. */
    if (r.no_reply || (manager ? dev->mgr : dev->conn) == NULL)
        return;
    if (rc == -ECONNRESET || rc == -EPIPE || rc == -ETIMEDOUT)
        return;
    conn_send_error(conn, &m->hdr, rc);
}
