/*
 * bench/fair: what one client does to another device's latency when both
 * devices share one event loop (umdev-serve with several devices, any
 * embedder). A measuring client times 4-byte trapped reads of device B
 * alone (the baseline), then while a second client floods device A with
 * posted writes, then while that client has asked A for more than its
 * socket holds and stopped reading. It prints medians and p99s and the
 * ratios against the baseline of the same run. Every read is checked.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kit_peer.h"
#include "umdev/client.h"
#include "umdev/dev.h"
#include "umdev/loop.h"
#include "umdev/wire.h"

#define READS 4000u
#define REGION (1024u * 1024)
#define BIG (512u * 1024) /* one read the stalled client asks for */
#define NBIG 8u

static const char *prog = "fair";

struct server {
    char dir[64], path_a[108], path_b[108];
    struct umdev_loop *loop;
    struct umdev_dev *a, *b;
    struct umdev_server *sa, *sb;
    pthread_t th;
};

static ssize_t
region_access(void *opaque, uint64_t offset, void *buf, size_t count,
              bool is_write)
{
    size_t i;

    (void)opaque;
    if (!is_write)
        for (i = 0; i < count; i++)
            ((uint8_t *)buf)[i] = (uint8_t)(offset + i);
    return (ssize_t)count;
}

static int
dev_make(struct server *s, const char *name, char *path, struct umdev_dev **dev,
         struct umdev_server **srv)
{
    struct umdev_dev_info info = { .name = name };
    struct umdev_region_desc rd = {
        .size = REGION,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = region_access,
    };

    snprintf(path, 108, "%s/%s.sock", s->dir, name);
    if (umdev_dev_create(&info, dev) < 0 ||
        umdev_dev_region_add(*dev, 0, &rd) < 0 ||
        umdev_server_create(*dev, s->loop, path, srv) < 0)
        return -1;
    return 0;
}

static void *
serve(void *arg)
{
    struct server *s = arg;

    umdev_loop_run(s->loop);
    return NULL;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Time READS reads of B; median and p99 in microseconds. */
static int
measure(const char *path, double *med, double *p99)
{
    static double lat[READS];
    struct umdev_client_opts o = { .timeout_ms = 10000 };
    struct umdev_client *c;
    uint32_t i;
    int rc;

    rc = umdev_client_connect(path, &o, &c);
    if (rc < 0) {
        fprintf(stderr, "%s: connect: %s\n", prog, strerror(-rc));
        return -1;
    }
    for (i = 0; i < READS; i++) {
        uint8_t v[4];
        uint32_t off = (i * 4) % REGION;
        double t0 = now_us();

        rc = umdev_client_region_read(c, 0, off, v, 4);
        lat[i] = now_us() - t0;
        if (rc == 0 && (v[0] != (uint8_t)off || v[3] != (uint8_t)(off + 3))) {
            fprintf(stderr, "%s: read %u: wrong data\n", prog, i);
            exit(1);
        }
        if (rc < 0) {
            fprintf(stderr, "%s: read %u: %s\n", prog, i, strerror(-rc));
            umdev_client_destroy(c);
            return -1;
        }
    }
    umdev_client_destroy(c);
    qsort(lat, READS, sizeof(lat[0]), cmp);
    *med = lat[READS / 2];
    *p99 = lat[READS * 99 / 100];
    return 0;
}

struct flooder {
    const char *path;
    atomic_bool stop;
    uint64_t sent;
    int err;
};

/* Posted 4-byte writes to A, in batches, as fast as the socket takes
 * them. */
static void *
flood(void *arg)
{
    struct flooder *f = arg;
    static uint8_t batch[512 * 44];
    struct vfio_user_region_access a = { 0, 0, 4 };
    size_t len = 0;
    uint32_t i;
    int fd = kit_peer_connect(f->path, 10000);

    if (fd < 0 || kit_peer_send_version(fd, 1, NULL) < 0 ||
        kit_peer_recv(fd, batch, sizeof(batch), 10000, NULL, NULL) <= 0) {
        f->err = -1;
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    for (i = 0; i < 512; i++) {
        struct vfio_user_header h = {
            .msg_id = (uint16_t)i,
            .cmd = VFIO_USER_REGION_WRITE,
            .msg_size = 44,
            .flags = VFIO_USER_F_NO_REPLY,
        };

        memcpy(batch + len, &h, sizeof(h));
        memcpy(batch + len + 16, &a, sizeof(a));
        memcpy(batch + len + 32, &i, 4);
        len += 44;
    }
    while (!atomic_load(&f->stop)) {
        if (kit_peer_send_bytes(fd, batch, len, NULL, 0, NULL, NULL) < 0) {
            f->err = -1;
            break;
        }
        f->sent += 512;
    }
    close(fd);
    return NULL;
}

/* A client of A that asks for more than its socket holds, then does not
 * read. Return: its fd (closed by the caller), or -1. */
static int
stall(const char *path)
{
    uint8_t buf[1024];
    uint32_t i;
    int fd = kit_peer_connect(path, 10000);

    if (fd < 0 || kit_peer_send_version(fd, 1, NULL) < 0 ||
        kit_peer_recv(fd, buf, sizeof(buf), 10000, NULL, NULL) <= 0)
        goto fail;
    for (i = 0; i < NBIG; i++) {
        struct vfio_user_region_access a = { 0, 0, BIG };

        if (kit_peer_send(fd, (uint16_t)(i + 2), VFIO_USER_REGION_READ, 0, &a,
                          sizeof(a), NULL, 0, NULL, 0) < 0)
            goto fail;
    }
    return fd;
fail:
    if (fd >= 0)
        close(fd);
    return -1;
}

/* One phase's line: its figures against the baseline, or that the
 * measuring client got no answer in time (starved). */
static void
report(const char *name, int rc, double m, double p, double m0, double p0)
{
    if (rc < 0)
        printf("fair %s_us starved: a read or the connect got no answer "
               "within 10 s\n",
               name);
    else
        printf("fair %s_us median=%.1f p99=%.1f ratio=%.2f p99_ratio=%.2f\n",
               name, m, p, m / m0, p / p0);
}

int
main(int argc, char **argv)
{
    struct server s = { 0 };
    struct flooder f = { 0 };
    pthread_t ft;
    double m0, p0, m1 = 0, p1 = 0, m2 = 0, p2 = 0;
    int sfd, r1, r2, rc = 1;

    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: %s (no arguments)\n", prog);
        return 2;
    }
    snprintf(s.dir, sizeof(s.dir), "/tmp/umdev-fair-XXXXXX");
    if (mkdtemp(s.dir) == NULL || umdev_loop_create(&s.loop) < 0 ||
        dev_make(&s, "a", s.path_a, &s.a, &s.sa) < 0 ||
        dev_make(&s, "b", s.path_b, &s.b, &s.sb) < 0 ||
        pthread_create(&s.th, NULL, serve, &s) != 0) {
        fprintf(stderr, "%s: setup failed\n", prog);
        return 1;
    }
    if (measure(s.path_b, &m0, &p0) < 0)
        goto out;
    printf("fair alone_us median=%.1f p99=%.1f\n", m0, p0);

    f.path = s.path_a;
    if (pthread_create(&ft, NULL, flood, &f) != 0)
        goto out;
    usleep(100000); /* let the flood get going */
    r1 = measure(s.path_b, &m1, &p1);
    atomic_store(&f.stop, true);
    pthread_join(ft, NULL);
    if (f.err < 0) {
        fprintf(stderr, "%s: the flooding client failed\n", prog);
        goto out;
    }
    report("flood", r1, m1, p1, m0, p0);
    usleep(100000); /* the flood's last batch is handled, A detached */

    sfd = stall(s.path_a);
    if (sfd < 0) {
        fprintf(stderr, "%s: the stalling client failed\n", prog);
        goto out;
    }
    usleep(100000);
    r2 = measure(s.path_b, &m2, &p2);
    close(sfd);
    report("stalled", r2, m2, p2, m0, p0);
    rc = 0;
out:
    umdev_loop_stop(s.loop);
    pthread_join(s.th, NULL);
    umdev_server_destroy(s.sa);
    umdev_server_destroy(s.sb);
    umdev_dev_destroy(s.a);
    umdev_dev_destroy(s.b);
    umdev_loop_destroy(s.loop);
    rmdir(s.dir);
    if (rc)
        fprintf(stderr, "%s: FAILED\n", prog);
    return rc;
}
