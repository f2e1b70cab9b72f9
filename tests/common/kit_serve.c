/* The test kit's serve-devices-on-a-thread harness: see kit_serve.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kit_serve.h"
#include "umdev/loop.h"

int
kit_serve_init(struct kit_serve *s, const char *tag)
{
    int rc;

    memset(s, 0, sizeof(*s));
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        return -ENOMEM;
    if (pthread_cond_init(&s->cond, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        return -ENOMEM;
    }
    s->sync_ready = true;
    if ((size_t)snprintf(s->dir, sizeof(s->dir), "/tmp/umdev-%s-XXXXXX", tag) >=
        sizeof(s->dir)) {
        s->dir[0] = '\0';
        return -ENAMETOOLONG;
    }
    if (mkdtemp(s->dir) == NULL) {
        rc = -errno;
        s->dir[0] = '\0';
        return rc;
    }
    return umdev_loop_create(&s->loop);
}

int
kit_serve_add(struct kit_serve *s, const char *name, struct umdev_dev *dev,
              kit_serve_fn *destroy, void *arg)
{
    char path[sizeof(s->devs[0].path)];
    struct kit_serve_dev *d;
    int rc;

    if (s->running)
        rc = -EBUSY;
    else if (s->loop == NULL)
        rc = -EINVAL;
    else if (s->ndevs == KIT_SERVE_MAX_DEVS)
        rc = -ENOSPC;
    else if ((size_t)snprintf(path, sizeof(path), "%s/%s.sock", s->dir, name) >=
             sizeof(path))
        rc = -ENAMETOOLONG;
    else
        rc = 0;
    if (rc < 0)
        goto fail;
    /* Built in a local: gcc cannot tell that s->dir and d->path, both in
     * *s, do not overlap (-Wrestrict). */
    d = &s->devs[s->ndevs];
    *d = (struct kit_serve_dev){
        .dev = dev,
        .destroy = destroy,
        .destroy_arg = arg,
    };
    memcpy(d->path, path, sizeof(path));
    rc = umdev_server_create(dev, s->loop, d->path, &d->srv);
    if (rc == 0) {
        s->ndevs++;
        return 0;
    }
    memset(d, 0, sizeof(*d));
fail:
    if (destroy != NULL)
        destroy(arg);
    return rc;
}

static void *
server_thread(void *arg)
{
    struct kit_serve *s = arg;

    umdev_loop_run(s->loop);
    return NULL;
}

int
kit_serve_start(struct kit_serve *s)
{
    int rc;

    if (s->loop == NULL || s->running)
        return -EINVAL;
    rc = pthread_create(&s->thread, NULL, server_thread, s);
    if (rc != 0)
        return -rc;
    s->running = true;
    return 0;
}

/* On the server thread: the call of kit_serve_call(). */
static void
run_call(struct umdev_loop *loop, void *opaque)
{
    struct kit_serve *s = opaque;

    (void)loop;
    s->call_fn(s->call_arg);
    pthread_mutex_lock(&s->lock);
    s->call_done = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* A CLOCK_REALTIME deadline @ms from now (what the pthread waits take). */
static struct timespec
deadline_in(int ms)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

int
kit_serve_call(struct kit_serve *s, kit_serve_fn *fn, void *arg, int timeout_ms)
{
    struct timespec deadline = deadline_in(timeout_ms);
    int rc = 0;

    if (!s->running)
        return -EINVAL;
    if (s->call_lost)
        return -EBUSY;
    /* The server thread reads the slot only after the post below. */
    s->call_fn = fn;
    s->call_arg = arg;
    s->call_done = false;
    rc = umdev_loop_post(s->loop, run_call, s);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    while (!s->call_done && rc == 0)
        rc = pthread_cond_timedwait(&s->cond, &s->lock, &deadline);
    if (!s->call_done) {
        s->call_lost = true;
        rc = -ETIMEDOUT;
    } else {
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* On the server thread: the stop of kit_serve_stop(). */
static void
run_stop(struct umdev_loop *loop, void *opaque)
{
    (void)opaque;
    umdev_loop_stop(loop);
}

int
kit_serve_stop(struct kit_serve *s, int timeout_ms)
{
    size_t i;
    int rc = 0;

    if (s->running) {
        struct timespec deadline = deadline_in(timeout_ms);

        rc = umdev_loop_post(s->loop, run_stop, NULL);
        if (rc < 0)
            return rc;
        rc = pthread_timedjoin_np(s->thread, NULL, &deadline);
        if (rc != 0)
            return -rc;
        s->running = false;
    }
    for (i = 0; i < s->ndevs; i++) {
        struct kit_serve_dev *d = &s->devs[i];

        umdev_server_destroy(d->srv);
        if (d->destroy != NULL)
            d->destroy(d->destroy_arg);
        memset(d, 0, sizeof(*d));
    }
    s->ndevs = 0;
    umdev_loop_destroy(s->loop);
    s->loop = NULL;
    if (s->sync_ready) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        s->sync_ready = false;
    }
    /* Each server removed its socket, so the directory is empty. */
    if (s->dir[0] != '\0' && rmdir(s->dir) < 0)
        rc = -errno;
    s->dir[0] = '\0';
    return rc;
}
