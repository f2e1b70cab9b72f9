/*
 * The daemon-served access-path provider (accel_access.h): a host process
 * that does not own an engine gets a queue of umdevd's accel parent.
 *
 * Each open queue is a *leased* transient accel-1wq instance: umdevd
 * claims one queue of the parent's pool for it (so available_instances
 * counts it), serves it from its own sandboxed worker, and stops it when
 * the control connection that started it closes, so a process that dies
 * gives its queue back. The worker is reached over vfio-user with
 * iova == our virtual address: the queue memory and every registered
 * range are DMA maps of the caller's memfds at their own addresses, which
 * is what lets descriptors carry the process's virtual addresses.
 *
 * Why vfio-user and not a protocol of its own: the worker's only input is
 * then the message set the conformance kit, the fuzzers and the mediation
 * profile already cover, so the access path adds no attack surface to a
 * worker. It costs nothing on the data path: the ring, the indices and the
 * completion records are shared memory, a doorbell is one posted write and
 * only when the engine sleeps, and completions arrive on the eventfd
 * lib/access created (the queue's MSI-X vector).
 *
 * Blocking: open, register, unregister, status and close each wait for
 * the daemon or the worker (bounded by the vfio-user client's timeout
 * and AD_CTL_TIMEOUT_MS); submit and reap never do.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "accel.h"
#include "accel_access.h"
#include "umdev/client.h"
#include "umdev/ctl.h"

#define AD_TYPE "accel-1wq"

struct accel_access_daemon {
    struct umdev_access_provider provider;
    char control[sizeof(((struct sockaddr_un *)0)->sun_path)];
    const struct umdev_logger *log;
    unsigned int open;
};

struct ad_range {
    uint64_t va, len;
    bool used;
};

struct ad_queue {
    struct accel_access_daemon *p;
    struct umdev_ctl *ctl; /* the control connection holding the lease */
    char uuid[64];
    struct umdev_client *c;
    uint64_t ring_va; /* the ring, in our address space */
    struct ad_range ranges[UMDEV_ACCESS_MAX_REGIONS];
};

/* ---- The control connection (docs/CONTROL.md, through lib/ctl) */

/* Bound on one control request: above the daemon's own bound on a
 * worker's start (10 s) and on a stop without grace. */
#define AD_CTL_TIMEOUT_MS 30000

/*
 * Send @cmd with @args (taken) and wait for its response. On success
 * *@result is the response's result (a new reference). A refusal is
 * logged with the daemon's message and returns its errno; a failure to
 * reach the daemon is logged and returned as is.
 */
static int
ctl_call(struct ad_queue *q, const char *cmd, struct json_object *args,
         struct json_object **result)
{
    struct umdev_ctl_error e;
    int rc = umdev_ctl_call(q->ctl, cmd, args, AD_CTL_TIMEOUT_MS, result, &e);

    json_object_put(args);
    if (rc < 0)
        umdev_log(q->p->log, LOG_ERR, "umdevd %s: %s", cmd, e.message);
    return rc == -EREMOTEIO ? -e.err : rc;
}

/* ---- Device programming (devices/accel/README.md) */

static int
reg_write32(struct ad_queue *q, uint32_t region, uint64_t off, uint32_t v)
{
    return umdev_client_region_write(q->c, region, off, &v, sizeof(v));
}

static int
reg_read32(struct ad_queue *q, uint32_t region, uint64_t off, uint32_t *v)
{
    return umdev_client_region_read(q->c, region, off, v, sizeof(*v));
}

/* Bus mastering on, MSI-X vector 0 (queue 0's) unmasked and enabled,
 * its eventfd set. */
static int
setup_pci(struct ad_queue *q, int efd)
{
    const uint32_t cfg = VFIO_PCI_CONFIG_REGION_INDEX;
    uint16_t cmd, flags;
    int pos, rc;

    rc = umdev_client_region_read(q->c, cfg, PCI_COMMAND, &cmd, 2);
    if (rc < 0)
        return rc;
    cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    rc = umdev_client_region_write(q->c, cfg, PCI_COMMAND, &cmd, 2);
    if (rc < 0)
        return rc;
    pos = umdev_client_pci_cap_find(q->c, PCI_CAP_ID_MSIX, 0);
    if (pos <= 0)
        return pos < 0 ? pos : -ENODEV;
    rc = reg_write32(q, VFIO_PCI_BAR0_REGION_INDEX,
                     ACCEL_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
    if (rc == 0)
        rc = umdev_client_region_read(q->c, cfg, pos + PCI_MSIX_FLAGS,
                                      &flags, 2);
    if (rc < 0)
        return rc;
    flags |= PCI_MSIX_FLAGS_ENABLE;
    rc = umdev_client_region_write(q->c, cfg, pos + PCI_MSIX_FLAGS, &flags,
                                   2);
    if (rc < 0)
        return rc;
    return umdev_client_set_irqs(q->c, VFIO_PCI_MSIX_IRQ_INDEX,
                                 VFIO_IRQ_SET_DATA_EVENTFD |
                                     VFIO_IRQ_SET_ACTION_TRIGGER,
                                 0, 1, &efd, NULL);
}

static int
enable_queue(struct ad_queue *q, const struct umdev_access_queue_args *args)
{
    const uint32_t bar0 = VFIO_PCI_BAR0_REGION_INDEX;
    const uint64_t qb = ACCEL_REG_QUEUE(0);
    uint32_t st;
    int rc;

    rc = reg_write32(q, bar0, ACCEL_REG_DEVCTL, ACCEL_DEVCTL_ENABLE);
    if (rc == 0)
        rc = umdev_client_region_write(q->c, bar0, qb + ACCEL_Q_RING_BASE,
                                       &args->va, sizeof(args->va));
    if (rc == 0)
        rc = reg_write32(q, bar0, qb + ACCEL_Q_RING_SIZE, args->depth);
    if (rc == 0)
        rc = reg_write32(q, bar0, qb + ACCEL_Q_PRIORITY, args->priority);
    if (rc == 0)
        rc = reg_write32(q, bar0, qb + ACCEL_Q_CTRL, ACCEL_Q_CTRL_ENABLE);
    if (rc == 0)
        rc = reg_read32(q, bar0, qb + ACCEL_Q_STATUS, &st);
    if (rc < 0)
        return rc;
    if (ACCEL_Q_STATUS_STATE(st) != ACCEL_QS_ENABLED) {
        umdev_log(q->p->log, LOG_ERR,
                  "%s: queue did not enable: error code 0x%02x "
                  "(devices/accel/README.md, queue errors)",
                  q->uuid, ACCEL_Q_STATUS_ERROR(st));
        return -EINVAL;
    }
    return 0;
}

/* ---- Provider ops */

static void ad_close(void *queue);

static int
ad_open(void *opaque, const struct umdev_access_queue_args *args,
        void **queue)
{
    struct accel_access_daemon *p = opaque;
    struct umdev_client_opts co = { .log = p->log };
    struct json_object *a, *result = NULL, *inst, *v;
    struct ad_queue *q;
    int rc;

    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return -ENOMEM;
    q->p = p;
    rc = umdev_ctl_connect(p->control, AD_CTL_TIMEOUT_MS, &q->ctl);
    if (rc < 0) {
        umdev_log(p->log, LOG_ERR, "cannot reach umdevd at %s: %s",
                  p->control, strerror(-rc));
        free(q);
        return rc;
    }
    a = json_object_new_object();
    json_object_object_add(a, "parent", json_object_new_string("accel"));
    json_object_object_add(a, "type", json_object_new_string(AD_TYPE));
    json_object_object_add(a, "lease", json_object_new_boolean(true));
    rc = ctl_call(q, "start", a, &result);
    if (rc < 0)
        goto fail;
    if (!json_object_object_get_ex(result, "instance", &inst) ||
        !json_object_object_get_ex(inst, "uuid", &v) ||
        snprintf(q->uuid, sizeof(q->uuid), "%s",
                 json_object_get_string(v)) >= (int)sizeof(q->uuid) ||
        !json_object_object_get_ex(inst, "socket", &v)) {
        rc = -EPROTO;
        goto fail;
    }
    rc = umdev_client_connect(json_object_get_string(v), &co, &q->c);
    if (rc < 0) {
        umdev_log(p->log, LOG_ERR, "cannot attach to %s: %s",
                  json_object_get_string(v), strerror(-rc));
        goto fail;
    }
    /* The engine reads and writes the whole queue memory. */
    rc = umdev_client_dma_map(q->c, args->va, args->len,
                              (void *)(uintptr_t)args->va, args->fd, 0,
                              VFIO_USER_DMA_MAP_FLAG_READ |
                                  VFIO_USER_DMA_MAP_FLAG_WRITE);
    if (rc == 0)
        rc = setup_pci(q, args->efd);
    if (rc == 0)
        rc = enable_queue(q, args);
    if (rc < 0)
        goto fail;
    q->ring_va = args->va;
    json_object_put(result);
    p->open++;
    umdev_log(p->log, LOG_INFO, "access queue: instance %s, depth %u",
              q->uuid, args->depth);
    *queue = q;
    return 0;
fail:
    json_object_put(result);
    p->open++; /* ad_close counts it back */
    ad_close(q);
    return rc;
}

static int
ad_mem_register(void *queue, uint64_t va, uint64_t len, int fd,
                uint64_t offset, int prot)
{
    struct ad_queue *q = queue;
    uint32_t flags = 0;
    size_t i;
    int rc;

    for (i = 0; i < UMDEV_ACCESS_MAX_REGIONS && q->ranges[i].used; i++)
        ;
    if (i == UMDEV_ACCESS_MAX_REGIONS)
        return -ENOSPC;
    if (prot & UMDEV_ACCESS_READ)
        flags |= VFIO_USER_DMA_MAP_FLAG_READ;
    if (prot & UMDEV_ACCESS_WRITE)
        flags |= VFIO_USER_DMA_MAP_FLAG_WRITE;
    rc = umdev_client_dma_map(q->c, va, len, (void *)(uintptr_t)va, fd,
                              offset, flags);
    if (rc < 0)
        return rc;
    q->ranges[i] = (struct ad_range){ .va = va, .len = len, .used = true };
    return 0;
}

static int
ad_mem_unregister(void *queue, uint64_t va)
{
    struct ad_queue *q = queue;
    size_t i;
    int rc;

    for (i = 0; i < UMDEV_ACCESS_MAX_REGIONS; i++)
        if (q->ranges[i].used && q->ranges[i].va == va)
            break;
    if (i == UMDEV_ACCESS_MAX_REGIONS)
        return -ENOENT;
    /* The worker answers DMA_UNMAP only once no descriptor in flight
     * holds the range (lib/dev's quiesce). */
    rc = umdev_client_dma_unmap(q->c, va, q->ranges[i].len);
    if (rc < 0)
        return rc;
    q->ranges[i].used = false;
    return 0;
}

static void
ad_doorbell(void *queue)
{
    struct ad_queue *q = queue;
    uint32_t one = 1;

    /* Posted, as a VMM's MMIO write is: the engine needs no answer. */
    if (umdev_client_region_write_posted(q->c, VFIO_PCI_BAR2_REGION_INDEX, 0,
                                         &one, sizeof(one)) < 0)
        umdev_log(q->p->log, LOG_ERR, "%s: doorbell lost: the worker is "
                                      "gone",
                  q->uuid);
}

static uint64_t
json_u64(struct json_object *o, const char *key)
{
    struct json_object *v;

    return json_object_object_get_ex(o, key, &v)
               ? (uint64_t)json_object_get_int64(v)
               : 0;
}

static void
ad_status(void *queue, struct umdev_access_qstatus *out)
{
    struct ad_queue *q = queue;
    const uint64_t qb = ACCEL_REG_QUEUE(0);
    struct json_object *a = json_object_new_object(), *r = NULL, *dev, *ep;
    uint32_t st = 0, swerr = 0;

    memset(out, 0, sizeof(*out));
    out->head = __atomic_load_n(
        (uint32_t *)(uintptr_t)(q->ring_va + ACCEL_RING_HEAD),
        __ATOMIC_ACQUIRE);
    if (reg_read32(q, VFIO_PCI_BAR0_REGION_INDEX, qb + ACCEL_Q_STATUS, &st) ==
        0)
        out->halted = ACCEL_Q_STATUS_STATE(st) == ACCEL_QS_ERROR;
    /* Errors with no completion record to carry them are the software
     * error log's entries, kept and dropped. */
    if (reg_read32(q, VFIO_PCI_BAR0_REGION_INDEX, ACCEL_REG_SWERR_COUNT,
                   &swerr) == 0)
        out->errors = (swerr & 0xffu) + (swerr >> 16);
    /* The engine's own counters are what `umdevctl info` shows. */
    json_object_object_add(a, "uuid", json_object_new_string(q->uuid));
    if (ctl_call(q, "info", a, &r) == 0 &&
        json_object_object_get_ex(r, "device", &dev) &&
        json_object_object_get_ex(dev, "endpoints", &ep)) {
        out->completed = json_u64(ep, "completed");
        out->bytes = json_u64(ep, "bytes");
        out->failed = json_u64(ep, "failed");
        out->notifies = json_u64(ep, "notifies");
        out->doorbells = json_u64(ep, "doorbells");
    }
    json_object_put(r);
}

static void
ad_close(void *queue)
{
    struct ad_queue *q = queue;
    struct json_object *a, *r = NULL;

    if (q == NULL)
        return;
    /* Detach first so the worker has no client to wait for, then stop it
     * and wait: when `stop` is answered the worker has exited and nothing
     * touches our memory or the eventfd any more. */
    umdev_client_destroy(q->c);
    if (q->uuid[0] != '\0') {
        a = json_object_new_object();
        json_object_object_add(a, "uuid", json_object_new_string(q->uuid));
        json_object_object_add(a, "grace_ms", json_object_new_int(0));
        if (ctl_call(q, "stop", a, &r) < 0)
            umdev_log(q->p->log, LOG_WARNING,
                      "%s: stop failed; the lease ends with the connection",
                      q->uuid);
        json_object_put(r);
    }
    umdev_ctl_close(q->ctl);
    q->p->open--;
    free(q);
}

static const struct umdev_access_provider_ops ad_ops = {
    .open = ad_open,
    .mem_register = ad_mem_register,
    .mem_unregister = ad_mem_unregister,
    .doorbell = ad_doorbell,
    .status = ad_status,
    .close = ad_close,
};

int
accel_access_daemon_create(const char *control,
                           const struct umdev_logger *log,
                           struct accel_access_daemon **out)
{
    struct accel_access_daemon *p;

    *out = NULL;
    if (control == NULL || control[0] == '\0')
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    if (snprintf(p->control, sizeof(p->control), "%s", control) >=
        (int)sizeof(p->control)) {
        free(p);
        return -ENAMETOOLONG;
    }
    p->log = log;
    p->provider.ops = &ad_ops;
    p->provider.opaque = p;
    p->provider.name = "umdevd";
    *out = p;
    return 0;
}

void
accel_access_daemon_destroy(struct accel_access_daemon *p)
{
    free(p);
}

const struct umdev_access_provider *
accel_access_daemon_provider(struct accel_access_daemon *p)
{
    return &p->provider;
}

unsigned int
accel_access_daemon_open_queues(const struct accel_access_daemon *p)
{
    return p->open;
}
