/*
 * The device object: construction, regions, attaching a client and pumping
 * its messages into the dispatcher.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dev_priv.h"

int
umdev_dev_create(const struct umdev_dev_info *info, struct umdev_dev **out)
{
    struct umdev_dev *dev;
    uint32_t i, max, left;
    int rc;

    *out = NULL;
    if (info == NULL)
        return -EINVAL;
    /* Now, while sigaction() is allowed: workers sandbox after creating
     * their device, and device DMA runs under guards. */
    rc = umdev_fault_guard_init();
    if (rc < 0)
        umdev_log(info->log, LOG_WARNING,
                  "cannot install the SIGBUS handler (%s): a client that "
                  "shrinks guest memory can end the process",
                  strerror(-rc));
    dev = calloc(1, sizeof(*dev));
    if (dev == NULL)
        return -ENOMEM;
    for (i = 0; i < UMDEV_MAX_REGIONS; i++)
        dev->regions[i].shm_fd = -1;
    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++)
        dev->irqs[i].unmask_efd = -1;
    dev->name = strdup(info->name != NULL ? info->name : "umdev");
    dev->mig.state = VFIO_USER_DEVICE_STATE_RUNNING;
    if (dev->name == NULL) {
        free(dev);
        return -ENOMEM;
    }
    if (pthread_mutex_init(&dev->irq_lock, NULL) != 0) {
        free(dev->name);
        free(dev);
        return -ENOMEM;
    }
    max = info->max_dma_maps ? info->max_dma_maps : UMDEV_DEFAULT_MAX_DMA_MAPS;
    rc = dev_dma_init(&dev->dma, max, &left);
    if (rc == -ENOSPC)
        umdev_log(info->log, LOG_ERR,
                  "%s: cannot reserve %u DMA mappings: %u of the process's %u "
                  "are left (lower max_dma_maps, or serve fewer devices in "
                  "one process)",
                  dev->name, max, left, UMDEV_PROCESS_MAX_DMA_MAPS);
    if (rc < 0) {
        pthread_mutex_destroy(&dev->irq_lock);
        free(dev->name);
        free(dev);
        return rc;
    }
    dev->pci = info->pci;
    dev->ops = info->ops;
    dev->opaque = info->opaque;
    dev->log = info->log;
    dev->max_data_xfer_size = info->max_data_xfer_size
                                  ? info->max_data_xfer_size
                                  : UMDEV_WIRE_DEFAULT_MAX_DATA_XFER;
    /* A PCI device always reports the standard indices (QEMU asks for each
     * of them, VGA included, and expects an empty answer for absent ones). */
    if (dev->pci) {
        dev->num_regions = UMDEV_PCI_NUM_REGIONS;
        dev->num_irqs = UMDEV_PCI_NUM_IRQS;
    }
    *out = dev;
    return 0;
}

static void
region_fini(struct dev_region *r)
{
    if (r->shm != NULL)
        munmap(r->shm, r->size);
    if (r->shm_fd >= 0)
        close(r->shm_fd);
    free(r->areas);
    memset(r, 0, sizeof(*r));
    r->shm_fd = -1;
}

void
umdev_dev_destroy(struct umdev_dev *dev)
{
    uint32_t i;

    if (dev == NULL)
        return;
    umdev_dev_detach(dev);
    umdev_dev_manage_end(dev);
    dev_dma_fini(dev);
    dev_mig_fini(dev);
    dev_log_stop(dev);
    dev_irq_fini(dev);
    for (i = 0; i < UMDEV_MAX_REGIONS; i++)
        region_fini(&dev->regions[i]);
    dev_profile_free(dev->profile);
    pthread_mutex_destroy(&dev->irq_lock);
    free(dev->name);
    free(dev);
}

static int
check_areas(const struct umdev_region_desc *d)
{
    size_t i;

    if (d->nr_areas > UMDEV_WIRE_MAX_SPARSE_AREAS)
        return -EINVAL;
    if (d->nr_areas > 0 && d->areas == NULL)
        return -EINVAL;
    for (i = 0; i < d->nr_areas; i++) {
        const struct umdev_mmap_area *a = &d->areas[i];

        if (a->size == 0 || (a->offset | a->size) % DEV_PAGE_SIZE != 0 ||
            a->offset + a->size < a->offset || a->offset + a->size > d->size)
            return -EINVAL;
    }
    return 0;
}

int
umdev_dev_region_add(struct umdev_dev *dev, uint32_t index,
                     const struct umdev_region_desc *desc)
{
    struct dev_region *r;
    int rc;

    if (index >= UMDEV_MAX_REGIONS || desc == NULL || desc->size == 0)
        return -EINVAL;
    if (desc->access == NULL && !desc->shm)
        return -EINVAL;
    if (desc->flags & ~(UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE))
        return -EINVAL;
    if (desc->shm && desc->size % DEV_PAGE_SIZE != 0)
        return -EINVAL;
    if (!desc->shm && desc->nr_areas > 0)
        return -EINVAL;
    rc = check_areas(desc);
    if (rc < 0)
        return rc;
    r = &dev->regions[index];
    if (r->present)
        return -EEXIST;
    r->size = desc->size;
    r->flags = desc->flags;
    r->access = desc->access;
    r->opaque = desc->opaque;
    if (desc->shm) {
        size_t n = desc->nr_areas ? desc->nr_areas : 1;

        r->areas = calloc(n, sizeof(*r->areas));
        if (r->areas == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
        if (desc->nr_areas)
            memcpy(r->areas, desc->areas, n * sizeof(*r->areas));
        else
            r->areas[0] = (struct umdev_mmap_area){ 0, desc->size };
        r->nr_areas = n;
        r->shm_fd = memfd_create(dev->name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        /* Sealed at its size for good: a reader the memory is handed to
         * (the client, a screenshot) maps it whole and must never fault
         * past an end someone moved, whoever holds it writable. */
        if (r->shm_fd < 0 || ftruncate(r->shm_fd, (off_t)desc->size) < 0 ||
            fcntl(r->shm_fd, F_ADD_SEALS,
                  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
            rc = -errno;
            goto fail;
        }
        r->shm = mmap(NULL, desc->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                      r->shm_fd, 0);
        if (r->shm == MAP_FAILED) {
            r->shm = NULL;
            rc = -errno;
            goto fail;
        }
    }
    r->present = true;
    if (index + 1 > dev->num_regions)
        dev->num_regions = index + 1;
    return 0;
fail:
    region_fini(r);
    return rc;
}

int
umdev_dev_region_resize(struct umdev_dev *dev, uint32_t index, uint64_t size)
{
    struct dev_region *r;

    if (index >= UMDEV_MAX_REGIONS)
        return -EINVAL;
    r = &dev->regions[index];
    if (!r->present || r->shm != NULL || size == 0)
        return -EINVAL;
    /* A client read the size in REGION_INFO and checks accesses by it. */
    if (dev->conn != NULL)
        return -EBUSY;
    r->size = size;
    return 0;
}

void *
umdev_dev_region_mem(struct umdev_dev *dev, uint32_t index)
{
    if (index >= UMDEV_MAX_REGIONS)
        return NULL;
    return dev->regions[index].shm;
}

int
umdev_dev_attach(struct umdev_dev *dev, int fd)
{
    struct conn_caps caps;
    int rc;

    if (dev->conn != NULL) {
        close(fd);
        return -EBUSY;
    }
    rc = conn_create(fd, dev->log, &dev->conn);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    /* Replies never wait for a client that does not read (dev_serve()). */
    conn_set_async_send(dev->conn, NULL, NULL);
    caps = *conn_local_caps(dev->conn);
    caps.max_data_xfer_size = dev->max_data_xfer_size;
    caps.max_dma_maps = dev->dma.max;
    conn_set_local_caps(dev->conn, &caps);
    dev->negotiated = false;
    dev->precopy_info = false;
    atomic_store(&dev->unshared_seen, false);
    dev->stats.attaches++;
    umdev_log(dev->log, LOG_INFO, "%s: client attached", dev->name);
    if (dev->ops != NULL && dev->ops->attach != NULL)
        dev->ops->attach(dev->opaque);
    return 0;
}

bool
umdev_dev_attached(const struct umdev_dev *dev)
{
    return dev->conn != NULL;
}

int
umdev_dev_client_fd(const struct umdev_dev *dev)
{
    return dev->conn != NULL ? conn_fd(dev->conn) : -1;
}

void
umdev_dev_detach(struct umdev_dev *dev)
{
    if (dev->conn == NULL)
        return;
    /* Spec "Client Disconnection": unmap all client memory, close every
     * IRQ fd from the client, keep the device state. */
    dev_dma_unmap_all(dev);
    dev_irq_release_all(dev);
    /* Logging is the client's session, and the memory it watched is gone:
     * the next client starts its own (migration state is device state,
     * kept until a reset). */
    dev_log_stop(dev);
    conn_destroy(dev->conn);
    dev->conn = NULL;
    dev->negotiated = false;
    dev->precopy_info = false;
    /* With no connection left, a copy these callbacks start fails at
     * once instead of queueing behind the dead client. */
    dev_dma_fail_pending(dev);
    umdev_log(dev->log, LOG_INFO, "%s: client detached", dev->name);
    if (dev->ops != NULL && dev->ops->detach != NULL)
        dev->ops->detach(dev->opaque);
}

int
dev_serve(struct umdev_dev *dev, bool readable, bool sleep, size_t budget,
          bool *more)
{
    struct conn_msg *m;
    size_t n = 0;
    int rc;

    *more = false;
    if (dev->conn == NULL)
        return -ECONNRESET;
    if (readable)
        conn_rx_ready(dev->conn);
    rc = conn_flush(dev->conn);
    while (rc == 0 && dev->conn != NULL) {
        /*
         * A client that does not take its replies is not read from
         * either, so what it makes us queue stays bounded by one reply
         * (and the socket fills on its side, not in our memory).
         */
        if (conn_tx_pending(dev->conn))
            return 0;
        if (n == budget) {
            *more = conn_rx_pending(dev->conn);
            return 0;
        }
        /* Only the first read sleeps: after a message, whatever else
         * came with it is taken and the loop gets its turn back. */
        rc = sleep && n == 0 ? conn_read_sleep(dev->conn, &m)
                             : conn_read(dev->conn, &m);
        if (rc == -EAGAIN)
            return 0;
        if (rc < 0)
            break;
        dev_handle_msg(dev, m, false);
        conn_msg_free(m);
        n++;
    }
    if (dev->conn != NULL) {
        if (rc != -ECONNRESET)
            umdev_log(dev->log, LOG_WARNING, "%s: closing connection: %s",
                      dev->name, strerror(-rc));
        umdev_dev_detach(dev);
    }
    return -ECONNRESET;
}

int
umdev_dev_manage(struct umdev_dev *dev, int fd)
{
    int rc;

    if (dev->mgr != NULL) {
        close(fd);
        return -EBUSY;
    }
    if (!dev_mig_supported(dev)) {
        close(fd);
        return -ENOTSUP;
    }
    rc = conn_create(fd, dev->log, &dev->mgr);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    conn_set_async_send(dev->mgr, NULL, NULL);
    dev->mgr_negotiated = false;
    dev->mgr_precopy_info = false;
    umdev_log(dev->log, LOG_INFO, "%s: migration manager attached", dev->name);
    return 0;
}

bool
umdev_dev_managed(const struct umdev_dev *dev)
{
    return dev->mgr != NULL;
}

int
umdev_dev_manager_fd(const struct umdev_dev *dev)
{
    return dev->mgr != NULL ? conn_fd(dev->mgr) : -1;
}

void
umdev_dev_manage_end(struct umdev_dev *dev)
{
    if (dev->mgr == NULL)
        return;
    /* The migration state stays where the manager left it, as the
     * kernel's stays when its data fd closes: a source it stopped is
     * resumed by the one who stopped it (or the VMM), never guessed. */
    conn_destroy(dev->mgr);
    dev->mgr = NULL;
    dev->mgr_negotiated = false;
    dev->mgr_precopy_info = false;
    umdev_log(dev->log, LOG_INFO, "%s: migration manager detached (state %u)",
              dev->name, dev->mig.state);
}

int
dev_serve_manager(struct umdev_dev *dev, bool readable, size_t budget,
                  bool *more)
{
    struct conn_msg *m;
    size_t n = 0;
    int rc;

    *more = false;
    if (dev->mgr == NULL)
        return -ECONNRESET;
    if (readable)
        conn_rx_ready(dev->mgr);
    rc = conn_flush(dev->mgr);
    while (rc == 0 && dev->mgr != NULL) {
        /* As dev_serve(): a manager that does not take the stream it
         * asked for is not read from. */
        if (conn_tx_pending(dev->mgr))
            return 0;
        if (n == budget) {
            *more = conn_rx_pending(dev->mgr);
            return 0;
        }
        rc = conn_read(dev->mgr, &m);
        if (rc == -EAGAIN)
            return 0;
        if (rc < 0)
            break;
        dev_handle_msg(dev, m, true);
        conn_msg_free(m);
        n++;
    }
    if (dev->mgr != NULL) {
        if (rc != -ECONNRESET)
            umdev_log(dev->log, LOG_WARNING,
                      "%s: closing the manager's connection: %s", dev->name,
                      strerror(-rc));
        umdev_dev_manage_end(dev);
    }
    return -ECONNRESET;
}

int
umdev_dev_process(struct umdev_dev *dev)
{
    bool more;

    return dev_serve(dev, true, false, SIZE_MAX, &more);
}

uint32_t
umdev_dev_events(const struct umdev_dev *dev)
{
    if (dev->conn == NULL)
        return 0;
    return conn_tx_pending(dev->conn) ? UMDEV_LOOP_OUT : UMDEV_LOOP_IN;
}

int
umdev_dev_request_release(struct umdev_dev *dev)
{
    if (dev->num_irqs <= UMDEV_PCI_REQ_IRQ || !dev->pci)
        return -ENOTSUP;
    return umdev_dev_irq_trigger(dev, UMDEV_PCI_REQ_IRQ, 0);
}

void
umdev_dev_get_stats(struct umdev_dev *dev, struct umdev_dev_stats *out)
{
    *out = dev->stats;
    out->irqs = atomic_load(&dev->irqs_raised);
    out->irqs_dropped = atomic_load(&dev->irqs_dropped);
    out->dma_bytes = atomic_load(&dev->dma_bytes);
}

int
umdev_dev_region_info(struct umdev_dev *dev, uint32_t index,
                      struct umdev_dev_region_info *out)
{
    const struct dev_region *r;

    memset(out, 0, sizeof(*out));
    if (index >= UMDEV_MAX_REGIONS)
        return -EINVAL;
    r = &dev->regions[index];
    out->present = r->present;
    out->size = r->size;
    out->flags = r->flags;
    out->shm = r->shm != NULL;
    out->nr_areas = r->nr_areas;
    out->areas = r->areas;
    out->trapped = r->access != NULL;
    return 0;
}

int
umdev_dev_region_shm_fd(const struct umdev_dev *dev, uint32_t index)
{
    if (index >= UMDEV_MAX_REGIONS || !dev->regions[index].present ||
        dev->regions[index].shm_fd < 0)
        return -ENOENT;
    return dev->regions[index].shm_fd;
}

uint32_t
umdev_dev_num_regions(const struct umdev_dev *dev)
{
    return dev->num_regions;
}

uint32_t
umdev_dev_num_irqs(const struct umdev_dev *dev)
{
    return dev->num_irqs;
}

uint32_t
umdev_dev_irq_count(struct umdev_dev *dev, uint32_t index)
{
    return index < DEV_MAX_IRQ_INDEX ? dev->irqs[index].count : 0;
}
