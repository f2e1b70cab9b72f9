/*
 * Shared parts of the BAR-stream fuzz targets: see bar_harness.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bar_harness.h"
#include "kit_peer.h"
#include "kit_util.h"
#include "umdev/wire.h"
#include "umdev/dev_testing.h"

#define CANARY 0xcc
/* Largest reply we read: a region read of one page and its header. */
#define REPLY_MAX (2 * FUZZ_PAGE)
#define MAX_GUARDS 64

uint8_t
fuzz_u8(struct fuzz_in *in)
{
    uint8_t v = 0;

    if (in->n > 0) {
        v = in->p[0];
        in->p++;
        in->n--;
    }
    return v;
}

uint16_t
fuzz_u16(struct fuzz_in *in)
{
    return (uint16_t)fuzz_bytes(in, 2);
}

uint64_t
fuzz_bytes(struct fuzz_in *in, size_t len)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < len && i < 8; i++)
        v |= (uint64_t)fuzz_u8(in) << (8 * i);
    return v;
}

/* ---- guest-memory layouts ---- */

size_t
fuzz_layout(uint8_t v, uint64_t iova, uint64_t size, struct fuzz_map out[2])
{
    const uint32_t rd = VFIO_USER_DMA_MAP_FLAG_READ;
    const uint32_t rw = rd | VFIO_USER_DMA_MAP_FLAG_WRITE;
    uint64_t half = size / 2;

    switch (v % 4) {
    case 0:
        out[0] = (struct fuzz_map){ 0, iova, size, rw };
        return 1;
    case 1:
        out[0] = (struct fuzz_map){ 0, iova, half, rw };
        out[1] = (struct fuzz_map){ half, iova + half, half, rd };
        return 2;
    case 2:
        out[0] = (struct fuzz_map){ 0, iova, size, rd };
        return 1;
    default:
        out[0] = (struct fuzz_map){ 0, iova, half, rw };
        out[1] = (struct fuzz_map){ half, iova + half + FUZZ_PAGE, half, rw };
        return 2;
    }
}

void
fuzz_unmap_range(uint8_t v, uint64_t iova, uint64_t size, uint64_t *unmap_iova,
                 uint64_t *unmap_len)
{
    uint64_t half = size / 2;
    const uint64_t r[4][2] = {
        { iova, size },
        { iova, half },
        { iova + half, half },
        { iova + half + FUZZ_PAGE, half },
    };

    *unmap_iova = r[v % 4][0];
    *unmap_len = r[v % 4][1];
}

/* ---- the client ---- */

int
fuzz_client_call(struct fuzz_client *c, uint16_t cmd, const void *fixed,
                 size_t fixed_len, const void *data, size_t data_len,
                 const int *fds, size_t nfds, void *reply, size_t cap)
{
    static uint8_t in[REPLY_MAX];
    struct vfio_user_header h;
    uint16_t id = c->next_id++;
    ssize_t len;

    FUZZ_CHECK(c->fd >= 0);
    /* Our messages are small: the socket buffer always takes them. */
    FUZZ_CHECK_EQ(kit_peer_send(c->fd, id, cmd, 0, fixed, fixed_len, data,
                                data_len, fds, nfds),
                  0);
    FUZZ_CHECK_EQ(umdev_dev_process(c->dev), 0);
    /* The device answers before umdev_dev_process() returns: no wait. */
    len = kit_peer_recv(c->fd, in, sizeof(in), 0, NULL, NULL);
    FUZZ_CHECK(len >= UMDEV_WIRE_HDR_SIZE);
    memcpy(&h, in, sizeof(h));
    /* Only replies: the devices fuzzed here never send DMA_READ/WRITE
     * (their guest memory always comes with an fd). */
    FUZZ_CHECK_EQ(h.flags & VFIO_USER_F_TYPE_MASK, VFIO_USER_F_TYPE_REPLY);
    FUZZ_CHECK_EQ(h.msg_id, id);
    FUZZ_CHECK_EQ(h.cmd, cmd);
    if (h.flags & VFIO_USER_F_ERROR) {
        FUZZ_CHECK_EQ(len, UMDEV_WIRE_HDR_SIZE);
        FUZZ_CHECK(h.error != 0);
        return (int)h.error;
    }
    if (reply != NULL) {
        FUZZ_CHECK((size_t)len <= cap);
        memcpy(reply, in, (size_t)len);
    }
    return 0;
}

void
fuzz_client_attach(struct fuzz_client *c, struct umdev_dev *dev)
{
    static const char json[] =
        "{\"capabilities\":{\"max_msg_fds\":8,\"max_data_xfer_size\":"
        "1048576,\"pgsizes\":4096,\"max_dma_maps\":64}}";
    struct vfio_user_version v = { 0, 0 };
    int sv[2];

    FUZZ_CHECK_EQ(kit_peer_pair(sv), 0);
    c->dev = dev;
    c->fd = sv[1];
    c->next_id = 1;
    FUZZ_CHECK_EQ(umdev_dev_attach(dev, sv[0]), 0);
    FUZZ_CHECK_EQ(fuzz_client_call(c, VFIO_USER_VERSION, &v, sizeof(v), json,
                                   sizeof(json), NULL, 0, NULL, 0),
                  0);
}

void
fuzz_client_detach(struct fuzz_client *c)
{
    int i;

    if (c->fd < 0)
        return;
    shutdown(c->fd, SHUT_WR);
    for (i = 0; umdev_dev_attached(c->dev); i++) {
        FUZZ_CHECK(i < 100);
        umdev_dev_process(c->dev);
    }
    close(c->fd);
    c->fd = -1;
}

int
fuzz_dma_map(struct fuzz_client *c, int fd, uint64_t off, uint64_t iova,
             uint64_t size, uint32_t flags)
{
    struct vfio_user_dma_map m = { sizeof(m), flags, off, iova, size };

    return fuzz_client_call(c, VFIO_USER_DMA_MAP, &m, sizeof(m), NULL, 0, &fd,
                            1, NULL, 0);
}

int
fuzz_dma_unmap(struct fuzz_client *c, uint64_t iova, uint64_t size)
{
    struct vfio_user_dma_unmap u = { sizeof(u), 0, iova, size };

    return fuzz_client_call(c, VFIO_USER_DMA_UNMAP, &u, sizeof(u), NULL, 0,
                            NULL, 0, NULL, 0);
}

int
fuzz_set_irqs(struct fuzz_client *c, uint32_t index, uint32_t start,
              uint32_t count, int efd)
{
    struct vfio_user_irq_set s = {
        sizeof(s),
        VFIO_IRQ_SET_ACTION_TRIGGER |
            (efd >= 0 ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE),
        index,
        start,
        efd >= 0 ? count : 0,
    };
    int fds[4] = { efd, efd, efd, efd };

    if (efd >= 0 && count > 4)
        count = s.count = 4;
    return fuzz_client_call(c, VFIO_USER_DEVICE_SET_IRQS, &s, sizeof(s), NULL,
                            0, fds, efd >= 0 ? count : 0, NULL, 0);
}

int
fuzz_reset(struct fuzz_client *c)
{
    return fuzz_client_call(c, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0, NULL,
                            0, NULL, 0);
}

int
fuzz_client_reset_detached(struct umdev_dev *dev)
{
    struct fuzz_client c;
    int rc;

    fuzz_client_attach(&c, dev);
    rc = fuzz_reset(&c);
    fuzz_client_detach(&c);
    return rc;
}

int
fuzz_region_read(struct fuzz_client *c, uint32_t region, uint64_t off,
                 void *buf, uint32_t count)
{
    static uint8_t reply[REPLY_MAX];
    struct vfio_user_region_access a = { off, region, count };
    size_t at = UMDEV_WIRE_HDR_SIZE + sizeof(a);
    int rc;

    FUZZ_CHECK(count <= FUZZ_PAGE);
    rc = fuzz_client_call(c, VFIO_USER_REGION_READ, &a, sizeof(a), NULL, 0,
                          NULL, 0, reply, sizeof(reply));
    if (rc == 0)
        memcpy(buf, reply + at, count);
    return rc;
}

size_t
fuzz_width(uint8_t w)
{
    static const size_t w4[4] = { 1, 2, 4, 8 };

    return (w & 0x80) ? (size_t)(w & 15) + 1 : w4[w & 3];
}

void
fuzz_region_access(struct umdev_dev *dev, struct fuzz_in *in, uint32_t region,
                   uint64_t size, bool is_write)
{
    uint8_t buf[16];
    uint64_t off = fuzz_u16(in) % size;
    size_t n = fuzz_width(fuzz_u8(in)), i;

    if (is_write)
        for (i = 0; i < n; i++)
            buf[i] = fuzz_u8(in);
    if (off + n > size)
        n = (size_t)(size - off);
    /* Refusals (the profile's EACCES, bounds) are valid answers. */
    umdev_dev_region_rw(dev, region, off, buf, n, is_write);
}

void
fuzz_region_op(struct umdev_dev *dev, struct fuzz_in *in, unsigned int op,
               const struct fuzz_region regions[3])
{
    const struct fuzz_region *r = &regions[op / 2];

    fuzz_region_access(dev, in, r->index, r->size, !(op & 1));
}

void
fuzz_bar_play(struct fuzz_in *in, unsigned int nops, struct umdev_dev *dev,
              const struct fuzz_region regions[3], fuzz_op_fn *op,
              fuzz_check_fn *check, void *target)
{
    while (in->n > 0) {
        unsigned int code = fuzz_u8(in) % nops;

        if (code < FUZZ_REGION_OPS)
            fuzz_region_op(dev, in, code, regions);
        else
            op(target, code, in);
        check(target);
    }
}

int
fuzz_dma_map_guarded(struct fuzz_client *c, int fd, uint64_t off, uint64_t iova,
                     uint64_t size, uint32_t flags)
{
    struct umdev_dma_hold hold;

    fuzz_guard_prepare(size);
    /* Errors (EEXIST over an existing mapping) are valid answers. */
    if (fuzz_dma_map(c, fd, off, iova, size, flags) == 0 &&
        umdev_dma_get(c->dev, iova, size, UMDEV_DMA_READ, &hold) == 0) {
        int unguarded = fuzz_guard_settle(hold.ptr, size);

        umdev_dma_put(c->dev, &hold);
        return unguarded;
    }
    fuzz_guard_settle(NULL, size);
    return 0;
}

/* ---- guest memory ---- */

void
fuzz_guest_create(struct fuzz_guest *g, size_t pages)
{
    size_t len = (pages + 2) * FUZZ_PAGE;

    g->pages = pages;
    g->fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
    FUZZ_CHECK(g->fd >= 0);
    FUZZ_CHECK_EQ(ftruncate(g->fd, (off_t)len), 0);
    g->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd, 0);
    FUZZ_CHECK(g->map != MAP_FAILED);
    memset(g->map, CANARY, FUZZ_PAGE);
    memset(g->map + len - FUZZ_PAGE, CANARY, FUZZ_PAGE);
}

void
fuzz_guest_destroy(struct fuzz_guest *g)
{
    munmap(g->map, (g->pages + 2) * FUZZ_PAGE);
    close(g->fd);
    g->fd = -1;
}

uint8_t *
fuzz_guest_mem(struct fuzz_guest *g)
{
    return g->map + FUZZ_PAGE;
}

void
fuzz_guest_check_canaries(const struct fuzz_guest *g)
{
    static uint8_t want[FUZZ_PAGE];
    const uint8_t *hi = g->map + (g->pages + 1) * FUZZ_PAGE;

    /* memcmp, not a loop of checks: this runs after every operation,
     * and a loop would be most of the fuzzer's time under coverage. */
    if (want[0] != CANARY)
        memset(want, CANARY, sizeof(want));
    FUZZ_CHECK_EQ(memcmp(g->map, want, FUZZ_PAGE), 0);
    FUZZ_CHECK_EQ(memcmp(hi, want, FUZZ_PAGE), 0);
}

/* ---- guard pages ---- */

static void *guards[MAX_GUARDS];
static int nguards;
static void *reserve;
static size_t reserve_len;

static void
guard_add(void *at)
{
    if (nguards < MAX_GUARDS)
        guards[nguards++] = at;
    else
        munmap(at, FUZZ_PAGE);
}

void
fuzz_guard_prepare(size_t len)
{
    uint8_t *p;

    FUZZ_CHECK(reserve == NULL);
    reserve_len = len + 2 * FUZZ_PAGE;
    p = mmap(NULL, reserve_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FUZZ_CHECK(p != MAP_FAILED);
    /* Keep the two ends, free the middle for the device's mmap. */
    FUZZ_CHECK_EQ(munmap(p + FUZZ_PAGE, len), 0);
    reserve = p;
}

/* A PROT_NONE page at @at unless something is mapped there. */
static bool
guard_at(uint8_t *at)
{
    void *p = mmap(at, FUZZ_PAGE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

    if (p == MAP_FAILED)
        return false;
    if (p != at) { /* kernels before 4.17 take the hint loosely */
        munmap(p, FUZZ_PAGE);
        return false;
    }
    guard_add(p);
    return true;
}

int
fuzz_guard_settle(void *host, size_t len)
{
    uint8_t *r = reserve, *h = host;
    int unguarded = 0;

    FUZZ_CHECK(r != NULL);
    reserve = NULL;
    if (h == NULL) { /* nothing was mapped */
        munmap(r, FUZZ_PAGE);
        munmap(r + FUZZ_PAGE + len, FUZZ_PAGE);
        return 0;
    }
    if (h == r + FUZZ_PAGE) {
        /* It landed in the hole: both guards are ours already. */
        guard_add(r);
        guard_add(r + FUZZ_PAGE + len);
        return 0;
    }
    munmap(r, FUZZ_PAGE);
    munmap(r + FUZZ_PAGE + len, FUZZ_PAGE);
    unguarded += !guard_at(h - FUZZ_PAGE);
    unguarded += !guard_at(h + len);
    return unguarded;
}

void
fuzz_guard_release(void)
{
    int i;

    for (i = 0; i < nguards; i++)
        munmap(guards[i], FUZZ_PAGE);
    nguards = 0;
    if (reserve != NULL) {
        munmap(reserve, FUZZ_PAGE);
        munmap((uint8_t *)reserve + reserve_len - FUZZ_PAGE, FUZZ_PAGE);
        reserve = NULL;
    }
}

/* ---- per input ---- */

void
fuzz_bar_open(struct fuzz_bar *b, size_t guest_pages)
{
    b->c.fd = -1;
    b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    FUZZ_CHECK(b->efd >= 0);
    fuzz_guest_create(&b->g, guest_pages);
}

void
fuzz_bar_close(struct fuzz_bar *b)
{
    fuzz_guest_check_canaries(&b->g);
    fuzz_guest_destroy(&b->g);
    close(b->efd);
    b->efd = -1;
}

/* What the last input's DMA wrote must not reach this one: free the
 * pages between the canaries (which stay: they are checked), so they
 * read zeros again. */
static void
guest_wipe(struct fuzz_guest *g)
{
    FUZZ_CHECK_EQ(fallocate(g->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                            FUZZ_PAGE, (off_t)(g->pages * FUZZ_PAGE)),
                  0);
}

void
fuzz_bar_begin(struct fuzz_bar *b, struct umdev_dev *dev, struct umdev_pci *pci)
{
    uint64_t count;

    guest_wipe(&b->g);
    if (fuzz_selfcheck()) {
        static const uint8_t zero[FUZZ_PAGE];
        size_t i;

        for (i = 0; i < b->g.pages; i++)
            FUZZ_CHECK_EQ(
                memcmp(fuzz_guest_mem(&b->g) + i * FUZZ_PAGE, zero, FUZZ_PAGE),
                0);
    }
    /* What the last input signalled. */
    if (read(b->efd, &count, sizeof(count)) < 0)
        FUZZ_CHECK_EQ(errno, EAGAIN);
    b->fds_before = fuzz_count_fds();
    fuzz_client_attach(&b->c, dev);
    b->pci = pci;
    fuzz_pci_ro_snapshot(pci, &b->ro);
}

void
fuzz_bar_check(struct fuzz_bar *b)
{
    fuzz_pci_ro_check(b->pci, &b->ro);
    fuzz_guest_check_canaries(&b->g);
}

void
fuzz_bar_end(struct fuzz_bar *b)
{
    fuzz_guest_check_canaries(&b->g);
    FUZZ_CHECK_EQ(fuzz_reset(&b->c), 0);
    fuzz_client_detach(&b->c);
    fuzz_guard_release();
}

void
fuzz_bar_check_fds(const struct fuzz_bar *b)
{
    FUZZ_CHECK_EQ(fuzz_count_fds(), b->fds_before);
}

/* ---- the power cycle's self-check ---- */

bool
fuzz_selfcheck(void)
{
    static int on = -1;

    if (on < 0)
        on = getenv("FUZZ_SELFCHECK") != NULL;
    return on;
}

static void
differ(const char *what, const char *where, uint64_t at, uint64_t va,
       uint64_t vb)
{
    fprintf(stderr,
            "%s: FUZZ_SELFCHECK: a power-cycled device differs from a new "
            "one: %s at %#llx: %#llx, new %#llx\n",
            what, where, (unsigned long long)at, (unsigned long long)va,
            (unsigned long long)vb);
    abort();
}

static void
compare_region(const char *what, struct umdev_dev *a, struct umdev_dev *b,
               const struct fuzz_cmp_region *r)
{
    char where[32];
    uint64_t off;

    snprintf(where, sizeof(where), "region %u", r->index);
    for (off = 0; off + r->width <= r->size; off += r->width) {
        uint64_t va = 0, vb = 0;
        int ra = umdev_dev_region_rw(a, r->index, off, &va, r->width, false);
        int rb = umdev_dev_region_rw(b, r->index, off, &vb, r->width, false);

        if (ra != rb)
            differ(what, where, off, (uint64_t)ra, (uint64_t)rb);
        if (va != vb)
            differ(what, where, off, va, vb);
    }
}

void
fuzz_dev_compare(const char *what, struct umdev_dev *a, struct umdev_dev *b,
                 const struct fuzz_cmp_region *regions, size_t n)
{
    static const uint32_t irqs[] = {
        VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
        VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_ERR_IRQ_INDEX,
        VFIO_PCI_REQ_IRQ_INDEX,
    };
    struct umdev_dev_region_info ia, ib;
    struct fuzz_cmp_region cfg = { UMDEV_PCI_CONFIG_REGION, 0, 1 };
    size_t i;
    uint32_t sub, na, nb;

    FUZZ_CHECK_EQ(umdev_dev_region_info(a, UMDEV_PCI_CONFIG_REGION, &ia), 0);
    FUZZ_CHECK_EQ(umdev_dev_region_info(b, UMDEV_PCI_CONFIG_REGION, &ib), 0);
    if (ia.size != ib.size)
        differ(what, "config space size", 0, ia.size, ib.size);
    cfg.size = ia.size;
    compare_region(what, a, b, &cfg);
    for (i = 0; i < n; i++)
        compare_region(what, a, b, &regions[i]);
    for (i = 0; i < sizeof(irqs) / sizeof(irqs[0]); i++) {
        na = umdev_dev_irq_count(a, irqs[i]);
        nb = umdev_dev_irq_count(b, irqs[i]);
        if (na != nb)
            differ(what, "IRQ count of index", irqs[i], na, nb);
        for (sub = 0; sub < na; sub++) {
            if (umdev_dev_irq_masked(a, irqs[i], sub) !=
                umdev_dev_irq_masked(b, irqs[i], sub))
                differ(what, "IRQ mask of index.vector", irqs[i] << 16 | sub,
                       umdev_dev_irq_masked(a, irqs[i], sub),
                       umdev_dev_irq_masked(b, irqs[i], sub));
            if (umdev_dev_irq_enabled(a, irqs[i], sub) ||
                umdev_dev_irq_enabled(b, irqs[i], sub))
                differ(what, "IRQ eventfd of index.vector", irqs[i] << 16 | sub,
                       umdev_dev_irq_enabled(a, irqs[i], sub),
                       umdev_dev_irq_enabled(b, irqs[i], sub));
        }
    }
    if (umdev_dma_count(a) != 0 || umdev_dma_count(b) != 0)
        differ(what, "DMA mappings", 0, umdev_dma_count(a), umdev_dma_count(b));
}
