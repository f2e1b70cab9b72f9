/*
 * IRQ indices: eventfds from the client, masking with pending bits, and
 * level-triggered INTx with VFIO's automask/unmask-on-EOI contract.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "dev_priv.h"
#include "umdev/dev_testing.h"

int
umdev_dev_irq_add(struct umdev_dev *dev, uint32_t index, uint32_t count,
                  uint32_t flags)
{
    struct dev_irq *irq;
    uint32_t i;

    if (index >= DEV_MAX_IRQ_INDEX || count == 0 ||
        count > UMDEV_MAX_IRQ_VECTORS)
        return -EINVAL;
    irq = &dev->irqs[index];
    if (irq->count != 0)
        return -EEXIST;
    irq->vec = calloc(count, sizeof(*irq->vec));
    if (irq->vec == NULL)
        return -ENOMEM;
    for (i = 0; i < count; i++)
        irq->vec[i].efd = -1;
    irq->count = count;
    irq->flags = flags | VFIO_IRQ_INFO_EVENTFD;
    if (dev->pci && index == UMDEV_PCI_INTX_IRQ)
        irq->flags |= VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED;
    if (index + 1 > dev->num_irqs)
        dev->num_irqs = index + 1;
    return 0;
}

static bool
is_intx(const struct umdev_dev *dev, uint32_t index)
{
    return dev->pci && index == UMDEV_PCI_INTX_IRQ;
}

/* Signal a vector; irq_lock held. */
static int
fire(struct umdev_dev *dev, struct dev_irq_vec *v)
{
    uint64_t one = 1;

    if (v->efd < 0) {
        atomic_fetch_add(&dev->irqs_dropped, 1);
        return -ENOENT;
    }
    if (write(v->efd, &one, sizeof(one)) != sizeof(one)) {
        atomic_fetch_add(&dev->irqs_dropped, 1);
        return -errno;
    }
    atomic_fetch_add(&dev->irqs_raised, 1);
    return 0;
}

/*
 * Deliver or keep pending; INTx masks itself only when actually delivered,
 * so a line asserted before the client installs its eventfd is not left
 * masked with nobody to unmask it. irq_lock held.
 */
static int
trigger_locked(struct umdev_dev *dev, uint32_t index, struct dev_irq_vec *v)
{
    int rc;

    if (v->masked) {
        v->pending = true;
        return 0;
    }
    v->pending = false;
    rc = fire(dev, v);
    if (rc == 0 && is_intx(dev, index))
        v->masked = true;
    return rc;
}

int
umdev_dev_irq_trigger(struct umdev_dev *dev, uint32_t index, uint32_t sub)
{
    int rc;

    if (index >= DEV_MAX_IRQ_INDEX || sub >= dev->irqs[index].count)
        return -EINVAL;
    pthread_mutex_lock(&dev->irq_lock);
    rc = trigger_locked(dev, index, &dev->irqs[index].vec[sub]);
    pthread_mutex_unlock(&dev->irq_lock);
    return rc;
}

int
umdev_dev_intx_set_level(struct umdev_dev *dev, bool level)
{
    struct dev_irq *irq = &dev->irqs[UMDEV_PCI_INTX_IRQ];
    int rc = 0;

    if (!dev->pci || irq->count == 0)
        return -EINVAL;
    pthread_mutex_lock(&dev->irq_lock);
    if (level && !dev->intx_level)
        rc = trigger_locked(dev, UMDEV_PCI_INTX_IRQ, &irq->vec[0]);
    else if (!level)
        irq->vec[0].pending = false;
    dev->intx_level = level;
    pthread_mutex_unlock(&dev->irq_lock);
    return rc;
}

/* irq_lock held. */
static void
unmask_locked(struct umdev_dev *dev, uint32_t index, struct dev_irq_vec *v)
{
    v->masked = false;
    /* The guest's EOI: a line still asserted fires again (VFIO INTx). */
    if (is_intx(dev, index) && dev->intx_level)
        v->pending = true;
    if (v->pending)
        trigger_locked(dev, index, v);
}

bool
umdev_dev_irq_masked(struct umdev_dev *dev, uint32_t index, uint32_t sub)
{
    bool m;

    if (index >= DEV_MAX_IRQ_INDEX || sub >= dev->irqs[index].count)
        return true;
    pthread_mutex_lock(&dev->irq_lock);
    m = dev->irqs[index].vec[sub].masked;
    pthread_mutex_unlock(&dev->irq_lock);
    return m;
}

bool
umdev_dev_irq_enabled(struct umdev_dev *dev, uint32_t index, uint32_t sub)
{
    bool e;

    if (index >= DEV_MAX_IRQ_INDEX || sub >= dev->irqs[index].count)
        return false;
    pthread_mutex_lock(&dev->irq_lock);
    e = dev->irqs[index].vec[sub].efd >= 0;
    pthread_mutex_unlock(&dev->irq_lock);
    return e;
}

static void
resample_ready(struct umdev_loop *loop, int fd, uint32_t events, void *opaque)
{
    struct umdev_dev *dev = opaque;
    struct dev_irq *irq = &dev->irqs[UMDEV_PCI_INTX_IRQ];
    uint64_t n;

    (void)loop;
    (void)events;
    if (read(fd, &n, sizeof(n)) != sizeof(n))
        return;
    pthread_mutex_lock(&dev->irq_lock);
    if (irq->count > 0)
        unmask_locked(dev, UMDEV_PCI_INTX_IRQ, &irq->vec[0]);
    pthread_mutex_unlock(&dev->irq_lock);
}

/*
 * Install (fd >= 0) or remove (fd < 0) the INTx resample eventfd. On
 * failure nothing changes and the caller keeps fd. A device without a loop
 * cannot watch an eventfd, so it cannot take one.
 */
static int
set_unmask_fd(struct umdev_dev *dev, struct dev_irq *irq, int fd)
{
    int rc;

    if (fd >= 0) {
        if (dev->loop == NULL)
            return -ENOTSUP;
        rc = umdev_loop_add(dev->loop, fd, UMDEV_LOOP_IN, resample_ready, dev);
        if (rc < 0)
            return rc;
    }
    if (irq->unmask_efd >= 0) {
        if (dev->loop != NULL)
            umdev_loop_del(dev->loop, irq->unmask_efd);
        close(irq->unmask_efd);
    }
    irq->unmask_efd = fd;
    return 0;
}

/* Spec "VFIO_USER_DEVICE_SET_IRQS". Takes the fds it keeps (slots set to
 * -1); the caller closes the rest. */
int
dev_irq_set(struct umdev_dev *dev, const struct vfio_user_irq_set *s,
            const uint8_t *bools, int *fds, size_t nfds)
{
    uint32_t data = s->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    uint32_t action = s->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    struct dev_irq *irq;
    uint32_t i;
    int rc;

    if (s->index >= dev->num_irqs || s->index >= DEV_MAX_IRQ_INDEX)
        return -EINVAL;
    irq = &dev->irqs[s->index];
    /* count 0 with DATA_NONE and TRIGGER disables every vector. */
    if (s->count == 0) {
        if (data != VFIO_IRQ_SET_DATA_NONE ||
            action != VFIO_IRQ_SET_ACTION_TRIGGER || s->start != 0)
            return -EINVAL;
        pthread_mutex_lock(&dev->irq_lock);
        for (i = 0; i < irq->count; i++) {
            if (irq->vec[i].efd >= 0)
                close(irq->vec[i].efd);
            irq->vec[i] = (struct dev_irq_vec){ .efd = -1 };
        }
        pthread_mutex_unlock(&dev->irq_lock);
        set_unmask_fd(dev, irq, -1);
        goto changed;
    }
    if (irq->count == 0 || s->start >= irq->count ||
        s->count > irq->count - s->start)
        return -EINVAL;
    if ((action & (VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK)) &&
        !(irq->flags & VFIO_IRQ_INFO_MASKABLE))
        return -EINVAL;

    if (data == VFIO_IRQ_SET_DATA_EVENTFD) {
        if (action == VFIO_IRQ_SET_ACTION_MASK)
            return -EINVAL;
        if (action == VFIO_IRQ_SET_ACTION_UNMASK) {
            /* A resample eventfd: the client signals it on guest EOI. */
            if (!is_intx(dev, s->index) || s->count != 1)
                return -EINVAL;
            rc = set_unmask_fd(dev, irq, nfds ? fds[0] : -1);
            if (rc < 0)
                return rc;
            if (nfds)
                fds[0] = -1;
            goto changed;
        }
        pthread_mutex_lock(&dev->irq_lock);
        for (i = 0; i < s->count; i++) {
            struct dev_irq_vec *v = &irq->vec[s->start + i];

            if (v->efd >= 0)
                close(v->efd);
            v->efd = nfds ? fds[i] : -1;
            if (nfds)
                fds[i] = -1;
        }
        /* A line already high is delivered to the new eventfd. */
        if (is_intx(dev, s->index) && dev->intx_level && irq->vec[0].efd >= 0)
            trigger_locked(dev, s->index, &irq->vec[0]);
        pthread_mutex_unlock(&dev->irq_lock);
        goto changed;
    }

    pthread_mutex_lock(&dev->irq_lock);
    for (i = 0; i < s->count; i++) {
        struct dev_irq_vec *v = &irq->vec[s->start + i];

        if (data == VFIO_IRQ_SET_DATA_BOOL && !bools[i])
            continue;
        switch (action) {
        case VFIO_IRQ_SET_ACTION_TRIGGER:
            trigger_locked(dev, s->index, v);
            break;
        case VFIO_IRQ_SET_ACTION_MASK:
            v->masked = true;
            break;
        case VFIO_IRQ_SET_ACTION_UNMASK:
            unmask_locked(dev, s->index, v);
            break;
        }
    }
    pthread_mutex_unlock(&dev->irq_lock);
changed:
    if (dev->ops != NULL && dev->ops->irq_changed != NULL)
        dev->ops->irq_changed(dev->opaque, s->index);
    return 0;
}

void
dev_irq_release_all(struct umdev_dev *dev)
{
    uint32_t i, j;

    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++) {
        struct dev_irq *irq = &dev->irqs[i];

        pthread_mutex_lock(&dev->irq_lock);
        /* The next client starts from power-on state: unmasked, idle. */
        for (j = 0; j < irq->count; j++) {
            if (irq->vec[j].efd >= 0)
                close(irq->vec[j].efd);
            irq->vec[j] = (struct dev_irq_vec){ .efd = -1 };
        }
        pthread_mutex_unlock(&dev->irq_lock);
        set_unmask_fd(dev, irq, -1);
    }
}

void
dev_irq_fini(struct umdev_dev *dev)
{
    uint32_t i;

    dev_irq_release_all(dev);
    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++) {
        free(dev->irqs[i].vec);
        dev->irqs[i].vec = NULL;
        dev->irqs[i].count = 0;
    }
}
