/*
 * IRQ indices: eventfds from the client, masking with pending bits, and
 * level-triggered INTx with VFIO's automask/unmask-on-EOI contract.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/vfio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <syslog.h>
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
    irq->old = calloc(count, sizeof(*irq->old));
    if (irq->vec == NULL || irq->old == NULL) {
        free(irq->vec);
        free(irq->old);
        irq->vec = NULL;
        irq->old = NULL;
        return -ENOMEM;
    }
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

/*
 * Interrupts are signalled outside irq_lock: a write that stalls must
 * never stall the other threads that take the lock (the engine raising
 * the next interrupt, the main thread at SET_IRQS). The eventfd a decision
 * picked is pinned by irq_inflight until its write is done; whoever takes
 * an eventfd away waits for that count before closing it (unpin_wait()),
 * so a write never lands in an fd number reused meanwhile.
 */

/* Pick @v's eventfd to signal (pinned), or -1 counted as dropped.
 * irq_lock held. */
static int
pick(struct umdev_dev *dev, struct dev_irq_vec *v)
{
    if (v->efd < 0) {
        atomic_fetch_add(&dev->irqs_dropped, 1);
        return -1;
    }
    atomic_fetch_add(&dev->irq_inflight, 1);
    return v->efd;
}

/* Signal what pick() returned and unpin it; irq_lock not held. The
 * eventfd is non-blocking (dev_irq_set()), so this never waits. */
static int
fire(struct umdev_dev *dev, int efd)
{
    uint64_t one = 1;
    int rc = 0;

    if (efd < 0)
        return -ENOENT;
    if (write(efd, &one, sizeof(one)) != sizeof(one)) {
        rc = -errno;
        atomic_fetch_add(&dev->irqs_dropped, 1);
    } else {
        atomic_fetch_add(&dev->irqs_raised, 1);
    }
    atomic_fetch_sub(&dev->irq_inflight, 1);
    return rc;
}

/* Wait until no signal is in flight: eventfds unpublished before this
 * call may be closed after it. Writes do not block, so this is short. */
static void
unpin_wait(struct umdev_dev *dev)
{
    while (atomic_load(&dev->irq_inflight) != 0)
        sched_yield();
}

/*
 * ERR and REQ tell the VMM about the device (an error, a request to
 * release it), as the kernel's vfio-pci signals them whatever the
 * migration state; a VM paused (its devices in STOP) must still hear
 * that the device is being taken away. They are never held.
 */
static bool
to_vmm(const struct umdev_dev *dev, uint32_t index)
{
    return dev->pci &&
           (index == UMDEV_PCI_ERR_IRQ || index == UMDEV_PCI_REQ_IRQ);
}

/*
 * Deliver or keep pending: returns the eventfd to fire() after the lock
 * is dropped, or -1. INTx masks itself only when there is an eventfd to
 * deliver to, so a line asserted before the client installs its eventfd
 * is not left masked with nobody to unmask it. A stopped device
 * (migration) raises no interrupt in the guest: the trigger is held in
 * the vector, and dev_irq_release() passes it here again once the device
 * runs, where the mask it then has decides. irq_lock held.
 */
static int
trigger_locked(struct umdev_dev *dev, uint32_t index, struct dev_irq_vec *v)
{
    int efd;

    if (v->masked) {
        v->pending = true;
        return -1;
    }
    v->pending = false;
    if (dev->irq_hold && !to_vmm(dev, index)) {
        v->held = true;
        return -1;
    }
    efd = pick(dev, v);
    if (efd >= 0 && is_intx(dev, index))
        v->masked = true;
    return efd;
}

int
umdev_dev_irq_trigger(struct umdev_dev *dev, uint32_t index, uint32_t sub)
{
    bool held;
    int efd;

    if (index >= DEV_MAX_IRQ_INDEX || sub >= dev->irqs[index].count)
        return -EINVAL;
    pthread_mutex_lock(&dev->irq_lock);
    efd = trigger_locked(dev, index, &dev->irqs[index].vec[sub]);
    held = dev->irqs[index].vec[sub].pending || dev->irqs[index].vec[sub].held;
    pthread_mutex_unlock(&dev->irq_lock);
    /* Kept pending while masked, or held while stopped: not an error. */
    return efd < 0 && held ? 0 : fire(dev, efd);
}

int
umdev_dev_intx_set_level(struct umdev_dev *dev, bool level)
{
    struct dev_irq *irq = &dev->irqs[UMDEV_PCI_INTX_IRQ];
    bool fired = false, pending = false;
    int efd = -1;

    if (!dev->pci || irq->count == 0)
        return -EINVAL;
    pthread_mutex_lock(&dev->irq_lock);
    if (level && !dev->intx_level) {
        efd = trigger_locked(dev, UMDEV_PCI_INTX_IRQ, &irq->vec[0]);
        fired = true;
        pending = irq->vec[0].pending || irq->vec[0].held;
    } else if (!level) {
        /* A level interrupt lowered before delivery is gone. */
        irq->vec[0].pending = false;
        irq->vec[0].held = false;
    }
    dev->intx_level = level;
    pthread_mutex_unlock(&dev->irq_lock);
    if (!fired || (efd < 0 && pending))
        return 0;
    return fire(dev, efd);
}

/* irq_lock held; returns what trigger_locked() does (-1: nothing to
 * fire). */
static int
unmask_locked(struct umdev_dev *dev, uint32_t index, struct dev_irq_vec *v)
{
    v->masked = false;
    /* The guest's EOI: a line still asserted fires again (VFIO INTx). */
    if (is_intx(dev, index) && dev->intx_level)
        v->pending = true;
    if (v->pending)
        return trigger_locked(dev, index, v);
    return -1;
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
    int efd = -1;

    (void)loop;
    (void)events;
    if (read(fd, &n, sizeof(n)) != sizeof(n))
        return;
    pthread_mutex_lock(&dev->irq_lock);
    if (irq->count > 0)
        efd = unmask_locked(dev, UMDEV_PCI_INTX_IRQ, &irq->vec[0]);
    pthread_mutex_unlock(&dev->irq_lock);
    if (efd >= 0)
        fire(dev, efd);
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

/*
 * An fd a client gives for an interrupt must be one whose write cannot
 * block: an eventfd (what the spec and QEMU send). A pipe, socket, FIFO,
 * file or device is refused; what passes is an anonymous-inode file
 * (eventfd, timerfd, signalfd, epoll, ...: fstat() cannot tell them
 * apart, and /proc is out of the sandbox's reach), and none of those can
 * block a write: only an eventfd takes one, the rest fail it. The eventfd
 * is made non-blocking, which it already is in QEMU (EFD_NONBLOCK): a
 * counter the client drove to its maximum then fails our write with
 * EAGAIN instead of stopping the thread that raised the interrupt.
 */
static int
check_irq_fd(struct umdev_dev *dev, uint32_t index, int fd)
{
    struct stat st;
    int fl;

    if (fstat(fd, &st) < 0)
        return -errno;
    if ((st.st_mode & S_IFMT) != 0) {
        umdev_log(dev->log, LOG_WARNING,
                  "SET_IRQS index %u: refused an fd that is not an eventfd "
                  "(file type %#o)",
                  index, (unsigned int)(st.st_mode & S_IFMT));
        return -EINVAL;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Take @v's eventfd away (for closing after unpin_wait()); irq_lock
 * held. */
static int
unpublish(struct dev_irq_vec *v)
{
    int efd = v->efd;

    *v = (struct dev_irq_vec){ .efd = -1 };
    return efd;
}

/* Close what unpublish() took, once no write can be using it. */
static void
close_unpinned(struct umdev_dev *dev, int *fds, size_t n)
{
    size_t i;

    unpin_wait(dev);
    for (i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
}

/* Every vector of @irq back to power-on state, eventfds closed. */
static void
irq_clear(struct umdev_dev *dev, struct dev_irq *irq)
{
    uint32_t i, n = 0;
    int *old = irq->old;

    pthread_mutex_lock(&dev->irq_lock);
    for (i = 0; i < irq->count; i++) {
        int efd = unpublish(&irq->vec[i]);

        if (efd >= 0)
            old[n++] = efd;
    }
    pthread_mutex_unlock(&dev->irq_lock);
    close_unpinned(dev, old, n);
    set_unmask_fd(dev, irq, -1);
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
    size_t k;
    int rc, efd;

    if (s->index >= dev->num_irqs || s->index >= DEV_MAX_IRQ_INDEX)
        return -EINVAL;
    irq = &dev->irqs[s->index];
    /* count 0 with DATA_NONE and TRIGGER disables every vector. */
    if (s->count == 0) {
        if (data != VFIO_IRQ_SET_DATA_NONE ||
            action != VFIO_IRQ_SET_ACTION_TRIGGER || s->start != 0)
            return -EINVAL;
        irq_clear(dev, irq);
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
        /* All or nothing: every fd is checked before any is taken. */
        for (k = 0; k < nfds; k++) {
            if (fds[k] >= 0 && (rc = check_irq_fd(dev, s->index, fds[k])) < 0)
                return rc;
        }
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
        efd = -1;
        pthread_mutex_lock(&dev->irq_lock);
        for (i = 0; i < s->count; i++) {
            struct dev_irq_vec *v = &irq->vec[s->start + i];

            irq->old[i] = v->efd;
            v->efd = nfds ? fds[i] : -1;
            if (nfds)
                fds[i] = -1;
        }
        /* A line already high is delivered to the new eventfd. */
        if (is_intx(dev, s->index) && dev->intx_level && irq->vec[0].efd >= 0)
            efd = trigger_locked(dev, s->index, &irq->vec[0]);
        pthread_mutex_unlock(&dev->irq_lock);
        fire(dev, efd);
        close_unpinned(dev, irq->old, s->count);
        goto changed;
    }

    for (i = 0; i < s->count; i++) {
        struct dev_irq_vec *v = &irq->vec[s->start + i];

        if (data == VFIO_IRQ_SET_DATA_BOOL && !bools[i])
            continue;
        efd = -1;
        pthread_mutex_lock(&dev->irq_lock);
        switch (action) {
        case VFIO_IRQ_SET_ACTION_TRIGGER:
            efd = trigger_locked(dev, s->index, v);
            break;
        case VFIO_IRQ_SET_ACTION_MASK:
            v->masked = true;
            break;
        case VFIO_IRQ_SET_ACTION_UNMASK:
            efd = unmask_locked(dev, s->index, v);
            break;
        }
        pthread_mutex_unlock(&dev->irq_lock);
        if (efd >= 0)
            fire(dev, efd);
    }
changed:
    if (dev->ops != NULL && dev->ops->irq_changed != NULL)
        dev->ops->irq_changed(dev->opaque, s->index);
    return 0;
}

void
dev_irq_hold(struct umdev_dev *dev)
{
    pthread_mutex_lock(&dev->irq_lock);
    dev->irq_hold = true;
    pthread_mutex_unlock(&dev->irq_lock);
    /* A trigger that picked its eventfd before the hold may still be
     * writing it: the stop is not complete until it has. */
    unpin_wait(dev);
}

void
dev_irq_release(struct umdev_dev *dev)
{
    uint32_t i, s, n[DEV_MAX_IRQ_INDEX] = { 0 };

    /*
     * One critical section ends the hold and takes every held vector: a
     * trigger before it was held and is fired here, one after it fires
     * itself, so none is lost or sent twice. The eventfds go to each
     * index's spare slots (old[], the server thread's, as this is).
     */
    pthread_mutex_lock(&dev->irq_lock);
    dev->irq_hold = false;
    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++) {
        struct dev_irq *irq = &dev->irqs[i];

        for (s = 0; s < irq->count; s++) {
            struct dev_irq_vec *v = &irq->vec[s];
            int efd;

            /* A line still high is owed again (automasking), whether it
             * rose while stopped or was loaded high. */
            if (is_intx(dev, i) && dev->intx_level && v->efd >= 0)
                v->held = true;
            if (!v->held)
                continue;
            v->held = false;
            efd = trigger_locked(dev, i, v);
            if (efd >= 0)
                irq->old[n[i]++] = efd;
        }
    }
    pthread_mutex_unlock(&dev->irq_lock);
    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++) {
        for (s = 0; s < n[i]; s++)
            fire(dev, dev->irqs[i].old[s]);
    }
}

void
dev_irq_drop_held(struct umdev_dev *dev)
{
    uint32_t i, s;

    pthread_mutex_lock(&dev->irq_lock);
    dev->irq_hold = false;
    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++) {
        for (s = 0; s < dev->irqs[i].count; s++)
            dev->irqs[i].vec[s].held = false;
    }
    pthread_mutex_unlock(&dev->irq_lock);
}

void
dev_irq_release_all(struct umdev_dev *dev)
{
    uint32_t i;

    /* The next client starts from power-on state: unmasked, idle. */
    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++)
        irq_clear(dev, &dev->irqs[i]);
}

void
dev_irq_fini(struct umdev_dev *dev)
{
    uint32_t i;

    dev_irq_release_all(dev);
    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++) {
        free(dev->irqs[i].vec);
        free(dev->irqs[i].old);
        dev->irqs[i].vec = NULL;
        dev->irqs[i].old = NULL;
        dev->irqs[i].count = 0;
    }
}

int
dev_irq_adopt_unmask(struct umdev_dev *dev, uint32_t index, int fd)
{
    if (index >= DEV_MAX_IRQ_INDEX || !is_intx(dev, index) ||
        dev->irqs[index].unmask_efd >= 0)
        return -EINVAL;
    return set_unmask_fd(dev, &dev->irqs[index], fd);
}

int
dev_irq_watch(struct umdev_dev *dev, bool on)
{
    uint32_t i;
    int rc;

    if (dev->loop == NULL)
        return 0;
    for (i = 0; i < DEV_MAX_IRQ_INDEX; i++) {
        int fd = dev->irqs[i].unmask_efd;

        if (fd < 0)
            continue;
        if (!on) {
            umdev_loop_del(dev->loop, fd);
            continue;
        }
        rc = umdev_loop_add(dev->loop, fd, UMDEV_LOOP_IN, resample_ready, dev);
        if (rc < 0)
            return rc;
    }
    return 0;
}
