/*
 * fuzz: a time-boxed random stream from a seeded PRNG (the seed is
 * printed; --seed replays it): region reads and writes (any region,
 * config space included, absent and past-the-last indices too; offsets
 * mostly inside, some at the end or anywhere; widths 1/2/4/8 and short
 * bursts; random values; posted and not), SET_IRQS (any index, action and
 * data type, eventfds or none), DMA_MAP (with a memfd or without, aligned
 * or not), DMA_UNMAP (a mapping, a random range, ALL), REGION_WRITE_MULTI,
 * the info queries and DEVICE_RESET.
 *
 * Pass: every non-posted request gets its reply (success or error, the
 * right id and command) within the kit's timeout; posted ones get none;
 * the server stays up; afterwards a fresh connection negotiates and the
 * config identity reads as it did at attach. With a profile, every access
 * to a non-config region that the profile does not allow (outside the
 * declared registers and mmap areas, or a width or direction not
 * declared) must be refused; the stream is biased towards the declared
 * registers' edges so such accesses come up.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "conform.h"

#define CFG VFIO_PCI_CONFIG_REGION_INDEX
#define FZ_MEM_SIZE (1u << 20)
#define FZ_IOVA_PAGES 4096u /* DMA addresses within 16 MiB */
#define FZ_MAX_MAPS 256u
#define FZ_EFDS 8
#define FZ_PAGE 4096u
/* Out-of-profile acceptances quoted in the evidence. */
#define MAX_QUOTED 3

struct fz_map {
    uint64_t iova, size;
};

struct fz {
    struct conform *cf;
    struct cf_result *r;
    struct rawc c;
    uint64_t s; /* PRNG state */
    int memfd;
    uint8_t *mem;
    struct fz_map maps[FZ_MAX_MAPS];
    size_t nmaps;
    int efds[FZ_EFDS];
    uint32_t present[CF_MAX_REGIONS];
    size_t npresent;
    bool dead;
    /* Counts. */
    uint64_t requests, posted, ok, errors;
    double max_ms, sum_ms;
    uint16_t slowest; /* the command that took max_ms */
    uint64_t prof_checked, prof_outside, prof_accepted;
    uint64_t op_counts[8];
};

/* splitmix64: small, fast, and the same sequence everywhere. */
static uint64_t
rnd(struct fz *f)
{
    uint64_t z = (f->s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t
below(struct fz *f, uint64_t n)
{
    return n ? rnd(f) % n : 0;
}

static bool
chance(struct fz *f, unsigned int percent)
{
    return below(f, 100) < percent;
}

/* Send; for non-posted, wait and check the reply. Return: the reply's
 * errno (0 success), or -1 if there was none to look at. */
static int
fz_send(struct fz *f, uint16_t cmd, bool posted, const void *p, size_t len,
        const int *fds, size_t nfds, struct rawc_msg *out)
{
    uint16_t id = rawc_id(&f->c);
    struct rawc_msg m;
    double t0, ms;
    char o[96];
    int rc;

    f->requests++;
    rc = rawc_send(&f->c, id, cmd, posted ? VFIO_USER_F_NO_REPLY : 0, p, len,
                   fds, nfds);
    if (rc < 0) {
        cf_fail(f->r, R_FUZZ_REPLY, "sending %s: %s", umdev_wire_cmd_name(cmd),
                cf_errname(-rc));
        f->dead = true;
        return -1;
    }
    if (posted) {
        f->posted++;
        return -1;
    }
    t0 = cf_now();
    rc = rawc_recv_reply(&f->c, f->cf->timeout_ms, &m);
    ms = (cf_now() - t0) * 1000.0;
    if (rc < 0) {
        cf_fail(f->r, R_FUZZ_REPLY, "%s id %u: %s within %d ms",
                umdev_wire_cmd_name(cmd), id,
                rawc_outcome(rc, &m, o, sizeof(o)), f->cf->timeout_ms);
        f->dead = true;
        return -1;
    }
    if (ms > f->max_ms) {
        f->max_ms = ms;
        f->slowest = cmd;
    }
    f->sum_ms += ms;
    if (m.hdr.msg_id != id || m.hdr.cmd != cmd ||
        (m.hdr.flags & ~(uint32_t)VFIO_USER_F_ERROR) !=
            VFIO_USER_F_TYPE_REPLY) {
        /* Every earlier request was answered or posted: a reply with an
         * earlier id answers a posted one (umdev policy), anything else
         * breaks the spec's reply form. */
        uint16_t back = (uint16_t)(id - m.hdr.msg_id);
        bool to_posted = (m.hdr.flags & ~(uint32_t)VFIO_USER_F_ERROR) ==
                             VFIO_USER_F_TYPE_REPLY &&
                         back > 0 && back < 0x8000;

        cf_fail(f->r, to_posted ? R_FUZZ_POSTED_SILENT : R_FUZZ_REPLY,
                "%s id %u answered by %s id %u flags 0x%x (a reply "
                "to a posted command?)",
                umdev_wire_cmd_name(cmd), id, umdev_wire_cmd_name(m.hdr.cmd),
                m.hdr.msg_id, m.hdr.flags);
        rawc_msg_free(&m);
        f->dead = true;
        return -1;
    }
    if (m.hdr.flags & VFIO_USER_F_ERROR) {
        f->errors++;
        rc = m.hdr.error ? (int)m.hdr.error : EIO;
        if (m.len != 0)
            cf_fail(f->r, R_FUZZ_REPLY, "%s error reply with %zu payload bytes",
                    umdev_wire_cmd_name(cmd), m.len);
    } else {
        f->ok++;
        rc = 0;
    }
    if (out != NULL)
        *out = m;
    else
        rawc_msg_free(&m);
    return rc;
}

static uint32_t
pick_region(struct fz *f)
{
    uint64_t k = below(f, 100);

    if (k < 85 && f->npresent > 0)
        return f->present[below(f, f->npresent)];
    if (k < 95)
        return (uint32_t)below(f, f->cf->dev.num_regions + 2);
    return (uint32_t)rnd(f);
}

/* An offset near a declared register's edges (profile bias), or -1. */
static int64_t
near_register(struct fz *f, uint32_t region)
{
    const struct cf_profile_region *pr =
        cf_profile_region(f->cf->profile, region);
    const struct cf_profile_reg *reg;
    int64_t off;

    if (pr == NULL || pr->nregs == 0)
        return -1;
    reg = &pr->regs[below(f, pr->nregs)];
    off = (int64_t)reg->offset + (int64_t)below(f, 12) - 4;
    if (chance(f, 30))
        off = (int64_t)(reg->offset + reg->size) - (int64_t)below(f, 8);
    return off < 0 ? 0 : off;
}

static void
op_region(struct fz *f)
{
    static const uint32_t widths[] = { 1, 2, 4, 8 };
    struct vfio_user_region_access a;
    uint8_t buf[sizeof(a) + 64];
    uint32_t region = pick_region(f);
    uint64_t size = region < CF_MAX_REGIONS && region < f->cf->dev.num_regions
                        ? f->cf->dev.regions[region].size
                        : 0;
    uint32_t count = widths[below(f, 4)];
    bool write = chance(f, 50), posted = write && chance(f, 50);
    int64_t near = -1;
    uint64_t off, k;
    int err;

    if (chance(f, 5))
        count = 1 + (uint32_t)below(f, 64);
    if (f->cf->profile != NULL && region != CFG && chance(f, 30))
        near = near_register(f, region);
    k = below(f, 100);
    if (near >= 0)
        off = (uint64_t)near;
    else if (size > 0 && k < 80)
        off = chance(f, 50) ? below(f, size) & ~(uint64_t)(count - 1)
                            : below(f, size);
    else if (size > 0 && k < 90)
        off = size - below(f, 16);
    else
        off = rnd(f);
    a = (struct vfio_user_region_access){ off, region, count };
    memcpy(buf, &a, sizeof(a));
    for (k = 0; k < count; k++)
        buf[sizeof(a) + k] = (uint8_t)rnd(f);
    f->op_counts[0]++;
    err = fz_send(f, write ? VFIO_USER_REGION_WRITE : VFIO_USER_REGION_READ,
                  posted, buf, sizeof(a) + (write ? count : 0), NULL, 0, NULL);
    if (err < 0 || f->cf->profile == NULL || region == CFG ||
        region >= CF_MAX_REGIONS || size == 0 || off >= size ||
        count > size - off || count > 8)
        return;
    f->prof_checked++;
    if (cf_profile_allows(f->cf->profile, region, off, count,
                          write ? CF_ACCESS_W : CF_ACCESS_R))
        return;
    f->prof_outside++;
    if (err != 0)
        return;
    if (++f->prof_accepted <= MAX_QUOTED)
        cf_fail(f->r, R_FUZZ_PROFILE,
                "%u-byte %s at region %u+0x%" PRIx64 " accepted but "
                "outside the profile",
                count, write ? "write" : "read", region, off);
}

static void
op_set_irqs(struct fz *f)
{
    static const uint32_t data[] = { VFIO_IRQ_SET_DATA_NONE,
                                     VFIO_IRQ_SET_DATA_BOOL,
                                     VFIO_IRQ_SET_DATA_EVENTFD };
    static const uint32_t action[] = { VFIO_IRQ_SET_ACTION_MASK,
                                       VFIO_IRQ_SET_ACTION_UNMASK,
                                       VFIO_IRQ_SET_ACTION_TRIGGER };
    struct vfio_user_irq_set s = {
        .argsz = sizeof(s),
        .flags = data[below(f, 3)] | action[below(f, 3)],
        .index = (uint32_t)below(f, f->cf->dev.num_irqs + 1),
        .start = (uint32_t)below(f, 3),
        .count = (uint32_t)below(f, 5),
    };
    uint8_t buf[sizeof(s) + 8];
    size_t len = sizeof(s), nfds = 0, i;

    if (chance(f, 5))
        s.flags = (uint32_t)rnd(f);
    if (chance(f, 30))
        s.start = 0;
    if (s.flags & VFIO_IRQ_SET_DATA_BOOL) {
        for (i = 0; i < s.count && i < 8; i++)
            buf[len++] = (uint8_t)below(f, 2);
        s.argsz = (uint32_t)len;
    }
    if ((s.flags & VFIO_IRQ_SET_DATA_EVENTFD) && chance(f, 80))
        nfds = s.count < FZ_EFDS ? s.count : FZ_EFDS;
    memcpy(buf, &s, sizeof(s));
    f->op_counts[1]++;
    fz_send(f, VFIO_USER_DEVICE_SET_IRQS, chance(f, 3), buf, len, f->efds, nfds,
            NULL);
}

static void
op_dma_map(struct fz *f)
{
    uint64_t pages = 1 + below(f, 16);
    struct vfio_user_dma_map m = {
        .argsz = sizeof(m),
        .flags = (uint32_t)below(f, 4),
        .addr = below(f, FZ_IOVA_PAGES) * FZ_PAGE,
        .size = pages * FZ_PAGE,
    };
    uint64_t host_off = below(f, FZ_MEM_SIZE / FZ_PAGE - 16) * FZ_PAGE;
    bool with_fd = chance(f, 70);
    int err;

    if (f->nmaps == FZ_MAX_MAPS)
        return;
    if (chance(f, 10))
        m.addr += below(f, FZ_PAGE);
    if (chance(f, 5))
        m.size += below(f, FZ_PAGE);
    if (with_fd)
        m.offset = host_off;
    f->op_counts[2]++;
    err = fz_send(f, VFIO_USER_DMA_MAP, false, &m, sizeof(m),
                  with_fd ? &f->memfd : NULL, with_fd ? 1 : 0, NULL);
    if (err != 0)
        return;
    f->maps[f->nmaps++] = (struct fz_map){ m.addr, m.size };
    /* What the server reaches by message is the same memory. */
    rawc_dma_add(&f->c, m.addr, m.size, f->mem + host_off, m.flags);
}

static void
op_dma_unmap(struct fz *f)
{
    struct vfio_user_dma_unmap u = { .argsz = sizeof(u) };
    uint64_t k = below(f, 100);
    size_t i = 0;
    int err;

    if (k < 60 && f->nmaps > 0) {
        i = below(f, f->nmaps);
        u.addr = f->maps[i].iova;
        u.size = f->maps[i].size;
    } else if (k < 85) {
        u.addr = below(f, FZ_IOVA_PAGES) * FZ_PAGE;
        u.size = (1 + below(f, 16)) * FZ_PAGE;
    } else {
        u.flags = VFIO_USER_DMA_UNMAP_FLAG_ALL;
    }
    if (chance(f, 3))
        u.flags = (uint32_t)rnd(f);
    f->op_counts[3]++;
    err = fz_send(f, VFIO_USER_DMA_UNMAP, false, &u, sizeof(u), NULL, 0, NULL);
    if (err != 0)
        return;
    if (u.flags & VFIO_USER_DMA_UNMAP_FLAG_ALL) {
        while (f->nmaps > 0) {
            f->nmaps--;
            rawc_dma_del(&f->c, f->maps[f->nmaps].iova, f->maps[f->nmaps].size);
        }
        return;
    }
    for (i = 0; i < f->nmaps; i++) {
        if (f->maps[i].iova == u.addr && f->maps[i].size == u.size) {
            rawc_dma_del(&f->c, u.addr, u.size);
            f->maps[i] = f->maps[--f->nmaps];
            return;
        }
    }
}

static void
op_write_multi(struct fz *f)
{
    struct vfio_user_write_multi_entry e[4];
    uint8_t buf[8 + sizeof(e)];
    uint64_t n = 1 + below(f, 4), i;

    for (i = 0; i < n; i++) {
        uint32_t region = pick_region(f);
        uint64_t size =
            region < CF_MAX_REGIONS && region < f->cf->dev.num_regions
                ? f->cf->dev.regions[region].size
                : 0;

        memset(&e[i], 0, sizeof(e[i]));
        e[i].region = region;
        e[i].count = 1u << below(f, 4);
        e[i].offset = size ? below(f, size) : rnd(f);
        cf_put_le(e[i].data, 8, rnd(f));
    }
    memcpy(buf, &n, 8);
    memcpy(buf + 8, e, n * sizeof(e[0]));
    f->op_counts[4]++;
    fz_send(f, VFIO_USER_REGION_WRITE_MULTI, chance(f, 20), buf,
            8 + n * sizeof(e[0]), NULL, 0, NULL);
}

static void
op_info(struct fz *f)
{
    uint32_t q[8] = { 0 };
    bool region = chance(f, 50);

    q[0] = region ? 32 : 16;
    q[2] = (uint32_t)below(
        f, (region ? f->cf->dev.num_regions : f->cf->dev.num_irqs) + 2);
    f->op_counts[5]++;
    fz_send(f,
            region ? VFIO_USER_DEVICE_GET_REGION_INFO
                   : VFIO_USER_DEVICE_GET_IRQ_INFO,
            false, q, region ? 32 : 16, NULL, 0, NULL);
}

static void
op_reset(struct fz *f)
{
    f->op_counts[6]++;
    fz_send(f, VFIO_USER_DEVICE_RESET, false, NULL, 0, NULL, 0, NULL);
}

static int
fz_setup(struct fz *f)
{
    uint32_t i;
    int rc;

    f->memfd = memfd_create("umdev-conform-fuzz", MFD_CLOEXEC);
    if (f->memfd < 0 || ftruncate(f->memfd, FZ_MEM_SIZE) < 0)
        return -errno;
    f->mem = mmap(NULL, FZ_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                  f->memfd, 0);
    if (f->mem == MAP_FAILED) {
        f->mem = NULL;
        return -errno;
    }
    for (i = 0; i < FZ_EFDS; i++) {
        f->efds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (f->efds[i] < 0)
            return -errno;
    }
    for (i = 0; i < f->cf->dev.num_regions && i < CF_MAX_REGIONS; i++)
        if (cf_region_present(f->cf, i))
            f->present[f->npresent++] = i;
    rc = rawc_connect(&f->c, f->cf->socket, f->cf->timeout_ms);
    if (rc == 0)
        rc = rawc_negotiate(&f->c, NULL);
    return rc;
}

static void
fz_teardown(struct fz *f)
{
    size_t i;

    rawc_close(&f->c);
    for (i = 0; i < FZ_EFDS; i++)
        if (f->efds[i] >= 0)
            close(f->efds[i]);
    if (f->mem != NULL)
        munmap(f->mem, FZ_MEM_SIZE);
    if (f->memfd >= 0)
        close(f->memfd);
}

/* The profile describes this device: region sizes agree. */
static void
profile_consistency(struct fz *f)
{
    const struct cf_profile *p = f->cf->profile;
    size_t i;

    for (i = 0; p != NULL && i < p->nregions; i++) {
        const struct cf_profile_region *pr = &p->regions[i];
        uint64_t size = cf_region_present(f->cf, pr->index)
                            ? f->cf->dev.regions[pr->index].size
                            : 0;

        if (pr->has_size && pr->size != size)
            cf_fail(f->r, R_FUZZ_PROFILE,
                    "the profile gives region %u %" PRIu64 " bytes, "
                    "the device %" PRIu64,
                    pr->index, pr->size, size);
    }
}

/* After the storm: a new client negotiates and the identity holds. */
static void
afterwards(struct fz *f)
{
    static const unsigned int id_offs[] = { PCI_VENDOR_ID, PCI_REVISION_ID,
                                            PCI_SUBSYSTEM_VENDOR_ID };
    struct umdev_client *c = NULL;
    uint8_t v[4];
    size_t i;
    int rc;

    rc = cf_client_connect(f->cf, &c);
    if (rc < 0) {
        cf_fail(f->r, R_FUZZ_SURVIVES,
                "after the run a fresh connection fails: %s", strerror(-rc));
        return;
    }
    for (i = 0; f->cf->dev.pci && i < CF_ARRAY_SIZE(id_offs); i++) {
        rc = umdev_client_region_read(c, CFG, id_offs[i], v, 4);
        if (rc < 0) {
            cf_fail(f->r, R_CONFIG_ACCESS,
                    "after the run, reading config 0x%02x: %s", id_offs[i],
                    cf_errname(-rc));
            break;
        }
        if (memcmp(v, f->cf->dev.cfg + id_offs[i], 4) != 0)
            cf_fail(f->r, R_FUZZ_IDENTITY,
                    "after the run config 0x%02x reads 0x%08x, 0x%08x "
                    "at attach",
                    id_offs[i], cf_le(v, 4),
                    cf_le(f->cf->dev.cfg + id_offs[i], 4));
    }
    umdev_client_destroy(c);
}

void
check_fuzz(struct conform *cf, struct cf_result *r)
{
    struct fz f = { .cf = cf, .r = r, .memfd = -1 };
    double t0, end;
    char err[128];
    int rc, i;

    for (i = 0; i < FZ_EFDS; i++)
        f.efds[i] = -1;
    f.c.fd = -1;
    if (!cf->seed_given) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        cf->seed = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^
                   (uint64_t)getpid() << 40;
    }
    f.s = cf->seed;
    fprintf(stderr, "umdev-conform: fuzz seed 0x%016" PRIx64 "\n", cf->seed);
    if (cf->server_pid <= 0)
        cf_find_server_pid(cf, err, sizeof(err));
    rc = fz_setup(&f);
    if (rc < 0) {
        cf_error(r, "setting up: %s", cf_errname(-rc));
        goto out;
    }
    profile_consistency(&f);
    t0 = cf_now();
    end = t0 + cf->fuzz_seconds;
    while (!f.dead && cf_now() < end) {
        uint64_t k = below(&f, 100);

        if (k < 70)
            op_region(&f);
        else if (k < 78)
            op_set_irqs(&f);
        else if (k < 85)
            op_dma_map(&f);
        else if (k < 91)
            op_dma_unmap(&f);
        else if (k < 94)
            op_write_multi(&f);
        else if (k < 98)
            op_info(&f);
        else
            op_reset(&f);
    }
    /* Posted ones last: a final request flushes them through. */
    if (!f.dead) {
        struct vfio_user_device_info di = { .argsz = sizeof(di) };

        if (fz_send(&f, VFIO_USER_DEVICE_GET_INFO, false, &di, sizeof(di), NULL,
                    0, NULL) != 0 &&
            !f.dead)
            cf_fail(r, R_FUZZ_SURVIVES, "DEVICE_GET_INFO after the run failed");
        if (!f.dead && !rawc_quiet(&f.c, 100))
            cf_fail(r, R_FUZZ_POSTED_SILENT, "a stray message after the run");
    }
    rawc_close(&f.c);
    if (cf->server_pid > 0 && !cf_proc_alive(cf->server_pid))
        cf_fail(r, R_FUZZ_SURVIVES, "server pid %d is gone",
                (int)cf->server_pid);
    afterwards(&f);
    cf_note(r,
            "seed 0x%016" PRIx64 ", %.1f s: %" PRIu64 " requests (%" PRIu64
            " posted; %" PRIu64 " answered ok, %" PRIu64 " with errors)",
            cf->seed, cf_now() - t0, f.requests, f.posted, f.ok, f.errors);
    cf_note(r,
            "ops: %" PRIu64 " region, %" PRIu64 " SET_IRQS, %" PRIu64
            " DMA_MAP, %" PRIu64 " DMA_UNMAP, %" PRIu64 " WRITE_MULTI, %" PRIu64
            " info, %" PRIu64 " RESET",
            f.op_counts[0], f.op_counts[1], f.op_counts[2], f.op_counts[3],
            f.op_counts[4], f.op_counts[5], f.op_counts[6]);
    cf_note(r,
            "replies: max %.2f ms (%s), mean %.3f ms (bound %d ms); %" PRIu64
            " DMA requests served",
            f.max_ms, umdev_wire_cmd_name(f.slowest),
            f.ok + f.errors ? f.sum_ms / (double)(f.ok + f.errors) : 0.0,
            cf->timeout_ms, f.c.served);
    if (cf->profile != NULL)
        cf_note(r,
                "profile: %" PRIu64 " answered BAR accesses checked, %" PRIu64
                " outside it, %" PRIu64 " of those accepted",
                f.prof_checked, f.prof_outside, f.prof_accepted);
    if (!f.dead)
        cf_note(r,
                "afterwards: fresh connection negotiates, identity "
                "%04x:%04x unchanged",
                cf->dev.vendor, cf->dev.device);
out:
    fz_teardown(&f);
}
