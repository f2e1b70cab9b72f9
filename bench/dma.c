/*
 * bench/dma: how fast the DMA map table fills and translates. DMA_MAP of
 * 10,000 distinct 4 KiB pages of one memfd (the fd passed with each
 * message) from a client to the test device served by a thread of this
 * process, then umdev_dma_get()/umdev_dma_put() at random addresses
 * across those mappings on the device pointer. Run for both placements
 * (bench.h). Every translation is verified; any failure makes the exit
 * status non-zero. bench/README.md explains the figures.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "testdev.h"
#include "umdev/client.h"
#include "umdev/dev.h"
#include "umdev/loop.h"
#include "umdev/dev_testing.h"

#define DMA_MAPS 10000
#define DMA_LOOKUPS 1000000L
#define DMA_PAGE 4096u
#define DMA_IOVA_BASE 0x100000000ull
#define DMA_LOOKUP_LEN 64u

/* DMA: a device served by a thread of this process. */

struct dma_server {
    struct umdev_dev *dev;
    int cpu;
    int rc;
};

static void *
dma_serve(void *arg)
{
    struct dma_server *s = arg;
    struct umdev_loop *loop;

    /* sched_setaffinity(0) pins the calling thread only. */
    s->rc = bench_pin_cpu(s->cpu) < 0 ? -EINVAL : umdev_loop_create(&loop);
    if (s->rc < 0) {
        umdev_dev_detach(s->dev);
        return NULL;
    }
    s->rc = umdev_loop_add(loop, umdev_dev_client_fd(s->dev), UMDEV_LOOP_IN,
                           bench_serve_client, s->dev);
    if (s->rc == 0)
        s->rc = umdev_loop_run(loop);
    /* On error the client sees the hang-up and fails too. */
    umdev_dev_detach(s->dev);
    umdev_loop_destroy(loop);
    return NULL;
}

static int
run_dma(const struct bench_placement *pl)
{
    const uint32_t prot =
        VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;
    const size_t guest_len = (size_t)DMA_MAPS * DMA_PAGE;
    struct dma_server srv = { 0 };
    struct umdev_client *c = NULL;
    struct testdev *td = NULL;
    struct umdev_dev *dev = NULL;
    uint8_t *guest = MAP_FAILED;
    uint64_t *addrs = NULL;
    /* A fixed seed: every run looks up the same addresses. */
    unsigned short seed[3] = { 0x330e, 0xd1d, 0x2545 };
    bool thread = false;
    int sv[2] = { -1, -1 }, memfd = -1, rc = -1, r;
    pthread_t tid;
    int64_t t0, t1, t2, t3;
    long i;

    addrs = malloc(DMA_LOOKUPS * sizeof(*addrs));
    if (addrs == NULL) {
        fprintf(stderr, "dma: out of memory\n");
        goto out;
    }
    memfd = memfd_create("dma-guest", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, (off_t)guest_len) < 0) {
        fprintf(stderr, "dma: memfd: %s\n", strerror(errno));
        goto out;
    }
    guest = mmap(NULL, guest_len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (guest == MAP_FAILED) {
        fprintf(stderr, "dma: mmap guest memory: %s\n", strerror(errno));
        goto out;
    }
    /* A tag per page, checked through the server's mappings below. */
    for (i = 0; i < DMA_MAPS; i++) {
        uint64_t tag = 0xd3a0000000000000ull | (uint64_t)i;

        memcpy(guest + (size_t)i * DMA_PAGE, &tag, sizeof(tag));
    }
    r = testdev_create(NULL, &td);
    if (r < 0) {
        fprintf(stderr, "dma: testdev_create: %s\n", strerror(-r));
        goto out;
    }
    dev = testdev_dev(td);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        fprintf(stderr, "dma: socketpair: %s\n", strerror(errno));
        goto out;
    }
    r = umdev_dev_attach(dev, sv[0]);
    sv[0] = -1;
    if (r < 0) {
        fprintf(stderr, "dma: umdev_dev_attach: %s\n", strerror(-r));
        goto out;
    }
    srv.dev = dev;
    srv.cpu = pl->server_cpu;
    if (bench_pin_cpu(pl->client_cpu) < 0)
        goto out;
    r = pthread_create(&tid, NULL, dma_serve, &srv);
    if (r != 0) {
        fprintf(stderr, "dma: pthread_create: %s\n", strerror(r));
        umdev_dev_detach(dev);
        goto out;
    }
    thread = true;
    r = umdev_client_attach_fd(sv[1], NULL, &c);
    sv[1] = -1;
    if (r < 0) {
        fprintf(stderr, "dma: client attach: %s\n", strerror(-r));
        goto out;
    }

    /* Ascending IOVAs, adjacent pages: each DMA_MAP lands at the end of
     * the sorted table, as a guest's RAM does when it is mapped in order. */
    t0 = bench_now_ns();
    for (i = 0; i < DMA_MAPS; i++) {
        r = umdev_client_dma_map(c, DMA_IOVA_BASE + (uint64_t)i * DMA_PAGE,
                                 DMA_PAGE, guest + (size_t)i * DMA_PAGE, memfd,
                                 (uint64_t)i * DMA_PAGE, prot);
        if (r < 0) {
            fprintf(stderr, "dma: DMA_MAP %ld: %s\n", i, strerror(-r));
            goto out;
        }
    }
    t1 = bench_now_ns();
    if (umdev_dma_count(dev) != DMA_MAPS) {
        fprintf(stderr, "dma: %zu DMA mappings live, expected %d\n",
                umdev_dma_count(dev), DMA_MAPS);
        goto out;
    }
    /* Untimed: every mapping translates to its own page (this also
     * faults the server's mappings in before the timed lookups). */
    for (i = 0; i < DMA_MAPS; i++) {
        uint64_t want = 0xd3a0000000000000ull | (uint64_t)i, got;
        struct umdev_dma_hold h;

        r = umdev_dma_get(dev, DMA_IOVA_BASE + (uint64_t)i * DMA_PAGE,
                          sizeof(got), UMDEV_DMA_READ, &h);
        if (r < 0) {
            fprintf(stderr, "dma: umdev_dma_get page %ld: %s\n", i,
                    strerror(-r));
            goto out;
        }
        memcpy(&got, h.ptr, sizeof(got));
        umdev_dma_put(dev, &h);
        if (got != want) {
            fprintf(stderr,
                    "dma: page %ld reads 0x%016llx through DMA, "
                    "expected 0x%016llx\n",
                    i, (unsigned long long)got, (unsigned long long)want);
            goto out;
        }
    }
    /* Random addresses, drawn before the clock starts. */
    for (i = 0; i < DMA_LOOKUPS; i++) {
        uint64_t page = (uint64_t)nrand48(seed) % DMA_MAPS;
        uint64_t off =
            (uint64_t)nrand48(seed) % (DMA_PAGE - DMA_LOOKUP_LEN + 1);

        addrs[i] = DMA_IOVA_BASE + page * DMA_PAGE + off;
    }
    t2 = bench_now_ns();
    for (i = 0; i < DMA_LOOKUPS; i++) {
        struct umdev_dma_hold h;

        r = umdev_dma_get(dev, addrs[i], DMA_LOOKUP_LEN, UMDEV_DMA_READ, &h);
        if (r < 0 || h.ptr == NULL) {
            fprintf(stderr, "dma: umdev_dma_get 0x%llx: %s\n",
                    (unsigned long long)addrs[i], strerror(-r));
            goto out;
        }
        umdev_dma_put(dev, &h);
    }
    t3 = bench_now_ns();
    printf("dma placement=%s client_cpu=%d server_cpu=%d maps=%d "
           "maps_per_s=%.0f us_per_map=%.2f\n",
           pl->name, pl->client_cpu, pl->server_cpu, DMA_MAPS,
           DMA_MAPS / ((double)(t1 - t0) / 1e9),
           (double)(t1 - t0) / DMA_MAPS / 1e3);
    printf("dma placement=%s lookups=%ld lookups_per_s=%.0f "
           "ns_per_lookup=%.1f\n",
           pl->name, DMA_LOOKUPS, DMA_LOOKUPS / ((double)(t3 - t2) / 1e9),
           (double)(t3 - t2) / DMA_LOOKUPS);
    fflush(stdout);
    rc = 0;
out:
    umdev_client_destroy(c);
    if (thread) {
        pthread_join(tid, NULL);
        if (srv.rc < 0) {
            fprintf(stderr, "dma: DMA server thread: %s\n", strerror(-srv.rc));
            rc = -1;
        }
    }
    testdev_destroy(td);
    for (r = 0; r < 2; r++)
        if (sv[r] >= 0)
            close(sv[r]);
    if (guest != MAP_FAILED)
        munmap(guest, guest_len);
    if (memfd >= 0)
        close(memfd);
    free(addrs);
    return rc;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: dma [--placement same|split|both]\n"
               "\n"
               "  --placement P  same: client and server thread on one CPU;\n"
               "                 split: on two CPUs; both (default)\n");
}

static int
run_placement(const struct bench_placement *pl, void *opaque)
{
    (void)opaque;
    return run_dma(pl);
}

int
main(int argc, char **argv)
{
    struct bench_cpus cpus;
    int rc;

    bench_prog = "dma";
    if (bench_cpus_init(&cpus) < 0)
        return 1;
    rc = bench_parse_args(argc, argv, NULL, usage, NULL, NULL, &cpus);
    if (rc >= 0)
        return rc;
    printf("dma: %d DMA_MAPs of one 4 KiB page each (memfd passed "
           "every time, mmap in the server thread), then %ld "
           "umdev_dma_get+put of %u bytes at random addresses\n",
           DMA_MAPS, DMA_LOOKUPS, DMA_LOOKUP_LEN);
    fflush(stdout);
    /* About a second per placement; a minute means a hung peer. */
    return bench_run(&cpus, 60, run_placement, NULL);
}
