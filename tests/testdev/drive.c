/*
 * umdev-testdev-drive: drive the test device over vfio-user with real
 * traffic (register I/O, mmapped BAR, DMA mapped and through messages,
 * INTx with EOI) and check every result. The demo runs it; it exits
 * non-zero on the first mismatch.
 */
#include <errno.h>
#include <linux/vfio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kit_util.h"
#include "testdev.h"
#include "umdev/client.h"

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static double
now_s(void)
{
    return (double)kit_now_ns() / 1e9;
}

static uint32_t
rd32(struct umdev_client *c, uint64_t off)
{
    uint32_t v = 0;
    int rc = umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION, off, &v, 4);

    CHECK(rc == 0, "read 0x%lx: %s", (unsigned long)off, strerror(-rc));
    return v;
}

/* DMA_STATUS once the DMA is done, polled as a driver would (each read
 * also serves the device's DMA_READ/DMA_WRITE). */
static uint32_t
dma_status(struct umdev_client *c)
{
    double deadline = now_s() + 5;
    uint32_t v;

    while ((v = rd32(c, TESTDEV_REG_DMA_STATUS)) == TESTDEV_DMA_BUSY)
        CHECK(now_s() < deadline, "DMA_STATUS busy for 5 s");
    return v;
}

static void
wr(struct umdev_client *c, uint64_t off, uint64_t v, size_t n)
{
    int rc = umdev_client_region_write(c, UMDEV_PCI_BAR0_REGION, off, &v, n);

    CHECK(rc == 0, "write 0x%lx: %s", (unsigned long)off, strerror(-rc));
}

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* DMA through a memfd mapping (fd passed) or through messages (no fd). */
static void
drive_dma(struct umdev_client *c, bool with_fd)
{
    const size_t size = 1 << 20;
    const uint64_t iova = with_fd ? 0x100000000ull : 0x200000000ull;
    uint8_t *bar2, *guest, expect[4096];
    size_t bar2_len;
    int fd, rc;

    fd = memfd_create("guest", MFD_CLOEXEC);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)size) == 0, "memfd");
    guest = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(guest != MAP_FAILED, "mmap guest");
    rc = umdev_client_dma_map(c, iova, size, guest, with_fd ? fd : -1, 0,
                              VFIO_USER_DMA_MAP_FLAG_READ |
                                  VFIO_USER_DMA_MAP_FLAG_WRITE);
    CHECK(rc == 0, "dma map: %s", strerror(-rc));
    rc = umdev_client_region_mmap(c, UMDEV_PCI_BAR2_REGION, 0,
                                  (void **)&bar2, &bar2_len);
    CHECK(rc == 0 && bar2_len == TESTDEV_BAR2_SIZE - 0x1000, "mmap bar2");

    /* guest -> device: lands in BAR2, seen through the trapped page. */
    fill(guest + 8192, 4096, with_fd ? 1 : 2);
    wr(c, TESTDEV_REG_DMA_ADDR, iova + 8192, 8);
    wr(c, TESTDEV_REG_DMA_LEN, 4096, 4);
    wr(c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_TO_DEVICE, 4);
    CHECK(dma_status(c) == 0, "dma to device status");
    rc = umdev_client_region_read(c, UMDEV_PCI_BAR2_REGION, 0, expect, 4096);
    CHECK(rc == 0 && memcmp(expect, guest + 8192, 4096) == 0,
          "dma to device data");

    /* device -> guest, 8 KiB: the second page comes from the mmapped area
     * we write directly. */
    fill(bar2, 4096, 3);
    wr(c, TESTDEV_REG_DMA_ADDR, iova + 65536, 8);
    wr(c, TESTDEV_REG_DMA_LEN, 8192, 4);
    wr(c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_FROM_DEVICE, 4);
    CHECK(dma_status(c) == 0, "dma from device status");
    CHECK(memcmp(guest + 65536 + 4096, bar2, 4096) == 0,
          "dma from device data");

    /* A fault: outside every mapping. */
    wr(c, TESTDEV_REG_DMA_ADDR, 0x10, 8);
    wr(c, TESTDEV_REG_DMA_CMD, TESTDEV_DMA_TO_DEVICE, 4);
    CHECK(dma_status(c) == EFAULT, "dma fault status");

    rc = umdev_client_dma_unmap(c, iova, size);
    CHECK(rc == 0, "dma unmap: %s", strerror(-rc));
    munmap(guest, size);
    close(fd);
    printf("  dma (%s): 4 KiB in, 8 KiB out, fault reported: ok\n",
           with_fd ? "mapped fd" : "DMA_READ/WRITE messages");
}

static void
drive_irq(struct umdev_client *c)
{
    struct pollfd p;
    uint64_t n;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int rc;

    CHECK(efd >= 0, "eventfd");
    rc = umdev_client_set_irqs(c, UMDEV_PCI_INTX_IRQ,
                               VFIO_IRQ_SET_DATA_EVENTFD |
                                   VFIO_IRQ_SET_ACTION_TRIGGER,
                               0, 1, &efd, NULL);
    CHECK(rc == 0, "set irqs: %s", strerror(-rc));
    wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    p = (struct pollfd){ .fd = efd, .events = POLLIN };
    CHECK(poll(&p, 1, 2000) == 1 && read(efd, &n, 8) == 8, "intx fired");
    /* Still asserted: the EOI (unmask) fires it again. */
    rc = umdev_client_set_irqs(c, UMDEV_PCI_INTX_IRQ,
                               VFIO_IRQ_SET_DATA_NONE |
                                   VFIO_IRQ_SET_ACTION_UNMASK,
                               0, 1, NULL, NULL);
    CHECK(rc == 0, "unmask: %s", strerror(-rc));
    CHECK(poll(&p, 1, 2000) == 1 && read(efd, &n, 8) == 8, "intx refired");
    wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    umdev_client_set_irqs(c, UMDEV_PCI_INTX_IRQ,
                          VFIO_IRQ_SET_DATA_NONE |
                              VFIO_IRQ_SET_ACTION_UNMASK,
                          0, 1, NULL, NULL);
    CHECK(poll(&p, 1, 100) == 0, "intx quiet after lowering");
    close(efd);
    printf("  intx: raise, EOI re-fire, lower: ok\n");
}

int
main(int argc, char **argv)
{
    struct umdev_client *c;
    double t0, t;
    uint32_t v = 0;
    int rc, i, iters = 20000;

    if (argc != 2) {
        fprintf(stderr, "usage: umdev-testdev-drive SOCKET\n");
        return 2;
    }
    rc = umdev_client_connect(argv[1], NULL, &c);
    if (rc < 0) {
        fprintf(stderr, "umdev-testdev-drive: %s: %s\n", argv[1],
                strerror(-rc));
        return 1;
    }
    CHECK(rd32(c, TESTDEV_REG_ID) == TESTDEV_ID_VALUE, "id register");
    t0 = now_s();
    for (i = 0; i < iters; i++) {
        wr(c, TESTDEV_REG_SCRATCH, (uint32_t)i, 4);
        v = rd32(c, TESTDEV_REG_SCRATCH);
        CHECK(v == (uint32_t)i, "scratch %u != %d", v, i);
    }
    t = now_s() - t0;
    printf("  registers: %d write+read pairs in %.2f s (%.1f us per access)\n",
           iters, t, t * 1e6 / (2.0 * iters));
    drive_dma(c, true);
    drive_dma(c, false);
    drive_irq(c);
    v = rd32(c, TESTDEV_REG_RESETS);
    rc = umdev_client_reset(c);
    CHECK(rc == 0 && rd32(c, TESTDEV_REG_RESETS) == v + 1 &&
              rd32(c, TESTDEV_REG_SCRATCH) == 0,
          "reset");
    printf("  reset: registers back to power-on: ok\n");
    umdev_client_destroy(c);
    printf("testdev-drive: all checks passed\n");
    return 0;
}
