/*
 * The embedded access-path provider (accel_access.h): lib/access's
 * provider ops on top of the accel engine, for host code in the process
 * that owns the engine. Addresses in descriptors are the process's own
 * virtual addresses, so translation is the identity, limited to the queue
 * memory and the ranges lib/access registered; anything else is an
 * address fault the engine reports in the completion record.
 *
 * Locks: each queue's lock guards its range table and hold counts. The
 * engine's threads take it in map/unmap; unregister waits on the
 * condition variable until a dead range's holds drop to zero, which is
 * what makes "returns once no work in flight touches it" true.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel_access.h"

/* lib/access registers whole pages; every registered range then holds the
 * rest of the granule page of any address in it, as the engine's map
 * contract asks (aq_map). */
_Static_assert(UMDEV_ACCESS_PAGE % ACCEL_MAP_GRANULE == 0, "granule");

/* Range 0 is the queue memory; the rest are lib/access registrations. */
#define AQ_RANGES (UMDEV_ACCESS_MAX_REGIONS + 1u)

struct aq_range {
    uint64_t va, len;
    int prot;
    bool used;
    bool dead;          /* unregistering: no new holds */
    unsigned int holds; /* engine maps not yet unmapped */
};

struct aq {
    struct accel_access *p;
    struct accel_queue *q;
    int efd; /* borrowed from lib/access */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct aq_range r[AQ_RANGES];
    _Atomic uint64_t errors;
};

struct accel_access {
    struct accel_engine *e;
    const struct umdev_logger *log;
    struct umdev_access_provider prov;
    _Atomic unsigned int open;
};

static int
aq_map(void *opaque, uint64_t addr, uint64_t len, int prot,
       struct accel_map *m)
{
    struct aq *aq = opaque;
    int want = ((prot & ACCEL_MAP_READ) ? UMDEV_ACCESS_READ : 0) |
               ((prot & ACCEL_MAP_WRITE) ? UMDEV_ACCESS_WRITE : 0);
    unsigned int i;
    int rc = -EFAULT;

    pthread_mutex_lock(&aq->lock);
    for (i = 0; i < AQ_RANGES; i++) {
        struct aq_range *r = &aq->r[i];

        if (!r->used || r->dead || addr < r->va || addr - r->va >= r->len)
            continue;
        if ((r->prot & want) != want)
            break;
        r->holds++;
        m->ptr = (void *)(uintptr_t)addr;
        /* Ranges are page-granular, so the rest of the range is at
         * least the rest of the page (ACCEL_MAP_GRANULE). */
        m->len = len < r->len - (addr - r->va) ? len : r->len - (addr - r->va);
        m->span = r->va; /* the hold is on the whole range */
        m->span_len = r->len;
        memcpy(m->priv, &i, sizeof(i));
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&aq->lock);
    return rc;
}

static void
aq_unmap(void *opaque, struct accel_map *m)
{
    struct aq *aq = opaque;
    unsigned int i;

    memcpy(&i, m->priv, sizeof(i));
    pthread_mutex_lock(&aq->lock);
    if (--aq->r[i].holds == 0 && aq->r[i].dead)
        pthread_cond_broadcast(&aq->idle);
    pthread_mutex_unlock(&aq->lock);
}

static void
aq_notify(void *opaque)
{
    struct aq *aq = opaque;
    uint64_t one = 1;
    ssize_t n;

    /* Only EAGAIN can fail it (a counter at 2^64 - 2 unread signals),
     * and then the reader has a wakeup pending anyway. */
    n = write(aq->efd, &one, sizeof(one));
    (void)n;
}

static void
aq_error(void *opaque, const struct accel_error *err)
{
    struct aq *aq = opaque;

    atomic_fetch_add(&aq->errors, 1);
    umdev_log(aq->p->log, LOG_WARNING,
              "access queue %u: error %#x opcode %#x index %u addr %#llx",
              accel_queue_index(aq->q), err->code, err->opcode, err->index,
              (unsigned long long)err->addr);
}

static const struct accel_queue_ops aq_ops = {
    .map = aq_map,
    .unmap = aq_unmap,
    .notify = aq_notify,
    .error = aq_error,
};

static void aq_close(void *queue);

static int
aq_open(void *opaque, const struct umdev_access_queue_args *args,
        void **queue)
{
    struct accel_access *p = opaque;
    struct accel_queue_config cfg = {
        .ring = args->va,
        .size = args->depth,
        .priority = args->priority,
        .coal_count = 1,
    };
    struct aq *aq;
    int rc;

    *queue = NULL;
    if (args->va == 0 || args->len < accel_ring_bytes(args->depth) ||
        args->efd < 0)
        return -EINVAL;
    aq = calloc(1, sizeof(*aq));
    if (aq == NULL)
        return -ENOMEM;
    aq->p = p;
    aq->efd = args->efd;
    if (pthread_mutex_init(&aq->lock, NULL) != 0) {
        free(aq);
        return -ENOMEM;
    }
    if (pthread_cond_init(&aq->idle, NULL) != 0) {
        pthread_mutex_destroy(&aq->lock);
        free(aq);
        return -ENOMEM;
    }
    aq->r[0] = (struct aq_range){
        .va = args->va,
        .len = args->len,
        .prot = UMDEV_ACCESS_READ | UMDEV_ACCESS_WRITE,
        .used = true,
    };
    atomic_fetch_add(&p->open, 1);
    rc = accel_queue_claim(p->e, -1, &aq_ops, aq, &aq->q);
    if (rc == 0)
        rc = accel_queue_enable(aq->q, &cfg);
    if (rc < 0) {
        umdev_log(p->log, LOG_NOTICE, "access: open a queue: %s",
                  strerror(-rc));
        aq_close(aq);
        return rc;
    }
    *queue = aq;
    return 0;
}

static int
aq_register(void *queue, uint64_t va, uint64_t len, int fd, uint64_t offset,
            int prot)
{
    struct aq *aq = queue;
    unsigned int i;
    int rc = -ENOSPC;

    /* Same address space: @fd and @offset were checked by lib/access
     * against this very mapping; the engine uses @va directly. */
    (void)fd;
    (void)offset;
    pthread_mutex_lock(&aq->lock);
    for (i = 1; i < AQ_RANGES; i++) {
        if (!aq->r[i].used) {
            aq->r[i] = (struct aq_range){
                .va = va, .len = len, .prot = prot, .used = true };
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&aq->lock);
    return rc;
}

static int
aq_unregister(void *queue, uint64_t va)
{
    struct aq *aq = queue;
    unsigned int i;
    int rc = -ENOENT;

    pthread_mutex_lock(&aq->lock);
    for (i = 1; i < AQ_RANGES; i++) {
        struct aq_range *r = &aq->r[i];

        if (!r->used || r->dead || r->va != va)
            continue;
        r->dead = true;
        while (r->holds > 0)
            pthread_cond_wait(&aq->idle, &aq->lock);
        memset(r, 0, sizeof(*r));
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&aq->lock);
    return rc;
}

static void
aq_doorbell(void *queue)
{
    accel_queue_doorbell(((struct aq *)queue)->q);
}

static void
aq_status(void *queue, struct umdev_access_qstatus *out)
{
    struct aq *aq = queue;
    struct accel_queue_status st;

    accel_queue_status(aq->q, &st);
    memset(out, 0, sizeof(*out));
    out->completed = st.completed;
    out->bytes = st.bytes;
    out->failed = st.failed;
    out->notifies = st.notifies;
    out->doorbells = st.doorbells;
    out->errors = atomic_load(&aq->errors);
    out->head = st.head;
    out->halted = st.state == ACCEL_QS_ERROR;
}

static void
aq_close(void *queue)
{
    struct aq *aq = queue;

    if (aq == NULL)
        return;
    /* Release disables the queue and waits for the engine's threads:
     * after it, no map, unmap or notify runs for this queue. */
    accel_queue_release(aq->q);
    atomic_fetch_sub(&aq->p->open, 1);
    pthread_cond_destroy(&aq->idle);
    pthread_mutex_destroy(&aq->lock);
    free(aq);
}

static const struct umdev_access_provider_ops provider_ops = {
    .open = aq_open,
    .mem_register = aq_register,
    .mem_unregister = aq_unregister,
    .doorbell = aq_doorbell,
    .status = aq_status,
    .close = aq_close,
};

int
accel_access_create(struct accel_engine *e, const struct umdev_logger *log,
                    struct accel_access **out)
{
    struct accel_access *p;

    *out = NULL;
    if (e == NULL)
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->e = e;
    p->log = log;
    p->prov.ops = &provider_ops;
    p->prov.opaque = p;
    p->prov.name = "accel";
    *out = p;
    return 0;
}

void
accel_access_destroy(struct accel_access *p)
{
    free(p);
}

const struct umdev_access_provider *
accel_access_provider(struct accel_access *p)
{
    return &p->prov;
}

unsigned int
accel_access_open_queues(struct accel_access *p)
{
    return atomic_load(&p->open);
}
