/*
 * leaks: repeated attach/detach must not grow the server. Each cycle
 * connects, maps a memfd for DMA (and a range without an fd), gives every
 * IRQ index eventfds, does some config and BAR I/O, and detaches; every
 * other cycle it unmaps and de-assigns first, the others leave that to
 * the server's detach (spec "Client Disconnection").
 *
 * The server process is found with --server-pid, the daemon's report
 * (--daemon-uuid) or SO_PEERCRED, and proven to be the one serving: while
 * attached it must hold the eventfds we passed. Its descriptors, mappings
 * (/proc/PID/fd, /proc/PID/maps) and resident memory (VmRSS) are sampled
 * while a fresh client is attached (so the previous one has been fully
 * detached), after warm-up cycles and after the measured ones. Warm-up
 * goes on until two batches of cycles in a row change neither VmRSS nor
 * the mapping count (bounded): a leak never settles and then shows in the
 * measured cycles; an allocator filling its caches does settle. Pass:
 * descriptors and mappings exactly as before; VmRSS grown by at most
 * RSS_SLACK_KIB.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conform.h"

#define LEAK_MEM_SIZE (64u * 1024u)
#define LEAK_EFDS 8u
/* Allowed VmRSS growth over the measured cycles once warm: page-granular
 * noise, not a per-cycle leak (200 cycles x 512 B is already 100 KiB). */
#define RSS_SLACK_KIB 64
/* Warm-up runs in batches until WARM_STABLE batches in a row leave VmRSS
 * and the mapping count unchanged (allocators, sanitizer quarantines and
 * caches fill up first), at most WARM_MAX_BATCHES of them. */
#define WARM_BATCH 50u
#define WARM_STABLE 2u
#define WARM_MAX_BATCHES 40u

struct sample {
    int fds, maps;
    long rss;
};

struct lk {
    struct conform *cf;
    struct cf_result *r;
    pid_t pid;
    int memfd;
    uint8_t *mem;
    int efds[LEAK_EFDS];
    unsigned int efds_set; /* eventfds one cycle hands over */
    unsigned int cycles;
};

static int
sample_now(const struct lk *l, struct sample *s)
{
    s->fds = cf_proc_fd_count(l->pid);
    s->maps = cf_proc_map_count(l->pid);
    s->rss = cf_proc_rss_kib(l->pid);
    if (s->fds < 0)
        return s->fds;
    if (s->maps < 0)
        return s->maps;
    return s->rss < 0 ? (int)s->rss : 0;
}

/* A fresh client attached (the previous one fully detached): sample. */
static int
sample_fresh(struct lk *l, struct sample *s)
{
    struct umdev_client *c = NULL;
    int rc = cf_client_connect(l->cf, &c);

    if (rc < 0) {
        cf_error(l->r, "cannot attach: %s", strerror(-rc));
        return rc;
    }
    rc = sample_now(l, s);
    umdev_client_destroy(c);
    if (rc < 0)
        cf_error(l->r, "reading /proc/%d: %s", (int)l->pid, strerror(-rc));
    return rc;
}

/* One attach/detach. With @probe, sample while attached into *@probe. */
static int
cycle(struct lk *l, unsigned int n, struct sample *probe)
{
    const uint32_t rw =
        VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;
    const struct cf_device *d = &l->cf->dev;
    struct umdev_client *c = NULL;
    bool tidy = n % 2 == 0;
    unsigned int used = 0;
    uint8_t buf[64];
    uint32_t i;
    int rc;

    rc = cf_client_connect(l->cf, &c);
    if (rc < 0) {
        cf_error(l->r, "cycle %u: cannot attach: %s", n, strerror(-rc));
        return rc;
    }
    rc = umdev_client_dma_map(c, 0x100000, LEAK_MEM_SIZE, l->mem, l->memfd, 0,
                              rw);
    if (rc == 0)
        rc =
            umdev_client_dma_map(c, 0x200000, LEAK_MEM_SIZE, l->mem, -1, 0, rw);
    if (rc < 0) {
        cf_error(l->r, "cycle %u: DMA_MAP: %s", n, cf_errname(-rc));
        goto out;
    }
    for (i = 0; i < d->num_irqs && i < CF_MAX_IRQS; i++) {
        uint32_t cnt = d->irqs[i].count;

        if (cnt == 0 || !(d->irqs[i].flags & VFIO_IRQ_INFO_EVENTFD))
            continue;
        if (cnt > LEAK_EFDS - used)
            cnt = LEAK_EFDS - used;
        if (cnt == 0)
            break;
        rc = umdev_client_set_irqs(
            c, i, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0,
            cnt, l->efds + used, NULL);
        if (rc < 0) {
            cf_error(l->r, "cycle %u: SET_IRQS %u eventfds on index %u: %s", n,
                     cnt, i, cf_errname(-rc));
            goto out;
        }
        used += cnt;
    }
    l->efds_set = used;
    /* Some I/O: config, and the first bytes of each BAR (errors are fine:
     * widths vary by device). */
    if (d->pci) {
        rc = umdev_client_region_read(c, VFIO_PCI_CONFIG_REGION_INDEX, 0, buf,
                                      sizeof(buf));
        if (rc < 0) {
            cf_error(l->r, "cycle %u: config read: %s", n, cf_errname(-rc));
            goto out;
        }
    }
    for (i = 0; i < VFIO_PCI_ROM_REGION_INDEX; i++)
        if (cf_region_present(l->cf, i)) {
            umdev_client_region_read(c, i, 0, buf, 1);
            umdev_client_region_read(c, i, 0, buf, 4);
        }
    if (probe != NULL && sample_now(l, probe) < 0) {
        cf_error(l->r, "reading /proc/%d: %s", (int)l->pid, strerror(errno));
        rc = -EIO;
        goto out;
    }
    if (tidy) {
        for (i = 0; i < d->num_irqs && i < CF_MAX_IRQS; i++)
            if (d->irqs[i].count && (d->irqs[i].flags & VFIO_IRQ_INFO_EVENTFD))
                umdev_client_set_irqs(
                    c, i, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                    0, 0, NULL, NULL);
        umdev_client_dma_unmap(c, 0x100000, LEAK_MEM_SIZE);
        umdev_client_dma_unmap(c, 0x200000, LEAK_MEM_SIZE);
    }
    rc = 0;
out:
    umdev_client_destroy(c);
    return rc;
}

void
check_leaks(struct conform *cf, struct cf_result *r)
{
    struct lk l = { .cf = cf, .r = r, .memfd = -1 };
    struct sample pre, attached, first, s0, s1;
    unsigned int warm = cf->leak_cycles / 10, i, b, stable;
    bool settled = false;
    char err[256];
    double t0;

    for (i = 0; i < LEAK_EFDS; i++)
        l.efds[i] = -1;
    if (warm < 10)
        warm = 10;
    if (cf->server_pid <= 0 && cf_find_server_pid(cf, err, sizeof(err)) < 0) {
        cf_error(r, "%s", err);
        return;
    }
    l.pid = cf->server_pid;
    l.memfd = memfd_create("umdev-conform-leaks", MFD_CLOEXEC);
    if (l.memfd < 0 || ftruncate(l.memfd, LEAK_MEM_SIZE) < 0) {
        cf_error(r, "memfd: %s", strerror(errno));
        goto out;
    }
    l.mem = mmap(NULL, LEAK_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                 l.memfd, 0);
    if (l.mem == MAP_FAILED) {
        l.mem = NULL;
        cf_error(r, "mmap: %s", strerror(errno));
        goto out;
    }
    for (i = 0; i < LEAK_EFDS; i++) {
        l.efds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (l.efds[i] < 0) {
            cf_error(r, "eventfd: %s", strerror(errno));
            goto out;
        }
    }
    t0 = cf_now();
    if (sample_fresh(&l, &pre) < 0)
        goto out;
    /* Is it the serving process? It must hold what we handed over. */
    if (cycle(&l, 1, &attached) < 0)
        goto out;
    if (l.efds_set == 0) {
        cf_error(r, "no IRQ index takes eventfds: cannot tell the server "
                    "process apart");
        goto out;
    }
    if (attached.fds < pre.fds + (int)l.efds_set) {
        cf_error(r,
                 "pid %d (%s) held %d descriptors with our %u eventfds "
                 "set, %d without: it is not the serving process (pass "
                 "--server-pid or --daemon-uuid)",
                 (int)l.pid, cf->pid_source, attached.fds, l.efds_set, pre.fds);
        goto out;
    }
    for (i = 1; i < warm; i++)
        if (cycle(&l, i + 1, NULL) < 0)
            goto out;
    if (sample_fresh(&l, &s0) < 0)
        goto out;
    first = s0;
    for (b = 0, stable = 0; b < WARM_MAX_BATCHES && !settled; b++) {
        struct sample w;

        for (i = 0; i < WARM_BATCH; i++)
            if (cycle(&l, ++warm, NULL) < 0)
                goto out;
        if (sample_fresh(&l, &w) < 0)
            goto out;
        stable = w.rss <= s0.rss && w.maps == s0.maps ? stable + 1 : 0;
        settled = stable == WARM_STABLE;
        s0 = w;
    }
    /* Growth that never stops is a leak even when each batch is small. */
    if (!settled && (s0.rss - first.rss > RSS_SLACK_KIB ||
                     s0.maps != first.maps || s0.fds != first.fds))
        cf_fail(r,
                s0.maps != first.maps || s0.fds != first.fds ? R_LEAKS_DETACH
                                                             : R_LEAKS_MEMORY,
                "the server kept growing through %u warm-up cycles: "
                "VmRSS %+ld KiB, mappings %+d, fds %+d",
                warm, s0.rss - first.rss, s0.maps - first.maps,
                s0.fds - first.fds);
    for (i = 0; i < cf->leak_cycles; i++)
        if (cycle(&l, warm + i + 1, NULL) < 0)
            goto out;
    if (sample_fresh(&l, &s1) < 0)
        goto out;
    if (s1.fds != s0.fds)
        cf_fail(r, R_LEAKS_DETACH, "server descriptors %d -> %d over %u cycles",
                s0.fds, s1.fds, cf->leak_cycles);
    if (s1.maps != s0.maps)
        cf_fail(r, R_LEAKS_DETACH, "server mappings %d -> %d over %u cycles",
                s0.maps, s1.maps, cf->leak_cycles);
    if (s1.rss - s0.rss > RSS_SLACK_KIB)
        cf_fail(r, R_LEAKS_MEMORY,
                "server VmRSS grew %ld KiB over %u cycles (%.1f KiB per "
                "cycle; slack %d KiB)",
                s1.rss - s0.rss, cf->leak_cycles,
                (double)(s1.rss - s0.rss) / cf->leak_cycles, RSS_SLACK_KIB);
    cf_note(r, "server pid %d (%s): %d fds idle, %d with our %u eventfds",
            (int)l.pid, cf->pid_source, pre.fds, attached.fds, l.efds_set);
    cf_note(r,
            "%u warm-up (%s) + %u cycles in %.1f s: fds %d -> %d, maps "
            "%d -> %d, VmRSS %ld -> %ld KiB",
            warm, settled ? "settled" : "did not settle", cf->leak_cycles,
            cf_now() - t0, s0.fds, s1.fds, s0.maps, s1.maps, s0.rss, s1.rss);
out:
    for (i = 0; i < LEAK_EFDS; i++)
        if (l.efds[i] >= 0)
            close(l.efds[i]);
    if (l.mem != NULL)
        munmap(l.mem, LEAK_MEM_SIZE);
    if (l.memfd >= 0)
        close(l.memfd);
}
