/* Functional tests, client <-> server over a real socket: region I/O of
 * every width, sparse mmap, IRQ delivery, DMA mapped and by message,
 * 1000 DMA regions, reset. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/vfio.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

static struct harness H;

static int
setup(void **state)
{
    (void)state;
    harness_start(&H);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    harness_stop(&H);
    return 0;
}

static uint32_t
rd32(struct umdev_client *c, uint64_t off)
{
    uint32_t v = 0;

    assert_int_equal(umdev_client_region_read(c, 0, off, &v, 4), 0);
    return v;
}

static void
wr(struct umdev_client *c, uint64_t off, uint64_t v, size_t n)
{
    assert_int_equal(umdev_client_region_write(c, 0, off, &v, n), 0);
}

static void
test_every_width_and_alignment(void **state)
{
    struct umdev_client *c = harness_connect(&H);
    uint8_t ref[TESTDEV_SCRATCH_ARRAY_SIZE] = { 0 }, got[256];
    size_t widths[] = { 1, 2, 4, 8 };
    uint64_t v64 = 0;
    size_t w, off;

    (void)state;
    for (w = 0; w < 4; w++) {
        for (off = 0; off < 8; off++) {
            uint8_t val[8];
            size_t i;

            for (i = 0; i < widths[w]; i++)
                val[i] = (uint8_t)(w * 16 + off * 3 + i + 1);
            assert_int_equal(umdev_client_region_write(
                                 c, 0, TESTDEV_SCRATCH_ARRAY + 32 * w + off,
                                 val, widths[w]),
                             0);
            memcpy(ref + 32 * w + off, val, widths[w]);
            memset(got, 0, sizeof(got));
            assert_int_equal(umdev_client_region_read(
                                 c, 0, TESTDEV_SCRATCH_ARRAY + 32 * w + off,
                                 got, widths[w]),
                             0);
            assert_memory_equal(got, val, widths[w]);
        }
    }
    assert_int_equal(umdev_client_region_read(c, 0, TESTDEV_SCRATCH_ARRAY,
                                              got, sizeof(got)),
                     0);
    assert_memory_equal(got, ref, sizeof(ref));
    /* Registers: 4 and 8 bytes; other widths refused, then still fine. */
    wr(c, TESTDEV_REG_SCRATCH64, 0x1122334455667788ull, 8);
    assert_int_equal(umdev_client_region_read(c, 0, TESTDEV_REG_SCRATCH64,
                                              &v64, 8),
                     0);
    assert_int_equal(v64, 0x1122334455667788ull);
    assert_int_equal(umdev_client_region_read(c, 0, TESTDEV_REG_SCRATCH,
                                              got, 2),
                     -EINVAL);
    assert_int_equal(rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    /* Past the end, absent region, index beyond the device. */
    assert_int_equal(umdev_client_region_read(c, 0, TESTDEV_BAR0_SIZE - 2,
                                              got, 4),
                     -EINVAL);
    assert_int_equal(umdev_client_region_read(c, 1, 0, got, 4), -EINVAL);
    assert_int_equal(umdev_client_region_read(c, 40, 0, got, 4), -EINVAL);
    assert_int_equal(rd32(c, TESTDEV_REG_ID), TESTDEV_ID_VALUE);
    umdev_client_destroy(c);
}

static void
test_large_transfers_and_sparse_mmap(void **state)
{
    static uint8_t big[60 * 1024], back[60 * 1024];
    struct umdev_client *c = harness_connect(&H);
    struct umdev_client_region r;
    uint8_t *map;
    size_t len, i;

    (void)state;
    assert_int_equal(umdev_client_region_info(c, 2, &r), 0);
    assert_int_equal(r.flags & (VFIO_REGION_INFO_FLAG_MMAP |
                                VFIO_REGION_INFO_FLAG_CAPS),
                     VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS);
    assert_int_equal(r.nr_areas, 1);
    assert_int_equal(r.areas[0].offset, 0x1000);
    assert_int_equal(r.areas[0].size, 0xf000);
    for (i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 3);
    /* Trapped page and mappable part through messages, 60 KiB at once. */
    assert_int_equal(umdev_client_region_write(c, 2, 0x100, big, sizeof(big)),
                     0);
    assert_int_equal(umdev_client_region_read(c, 2, 0x100, back,
                                              sizeof(back)),
                     0);
    assert_memory_equal(big, back, sizeof(big));
    /* The mapping sees what messages wrote, and the other way round. */
    assert_int_equal(umdev_client_region_mmap(c, 2, 0, (void **)&map, &len),
                     0);
    assert_int_equal(len, 0xf000);
    assert_memory_equal(map, big + 0x1000 - 0x100, 0x1000);
    memset(map + 0x2000, 0x5a, 64);
    assert_int_equal(umdev_client_region_read(c, 2, 0x3000, back, 64), 0);
    for (i = 0; i < 64; i++)
        assert_int_equal(back[i], 0x5a);
    /* BAR0 is not mappable at all. */
    assert_int_equal(umdev_client_region_mmap(c, 0, 0, (void **)&map, &len),
                     -ENODEV);
    umdev_client_destroy(c);
}

static bool
fired(int efd, int timeout_ms)
{
    struct pollfd p = { .fd = efd, .events = POLLIN };
    uint64_t n;

    if (poll(&p, 1, timeout_ms) != 1)
        return false;
    return read(efd, &n, sizeof(n)) == sizeof(n);
}

static void
request_release(void *arg)
{
    assert_int_equal(umdev_dev_request_release(arg), 0);
}

struct stats_arg {
    struct umdev_dev *dev;
    struct umdev_dev_stats st;
    size_t dma_count;
};

static void
read_stats(void *arg)
{
    struct stats_arg *s = arg;

    umdev_dev_get_stats(s->dev, &s->st);
    s->dma_count = umdev_dma_count(s->dev);
}

static void
set_trigger(struct umdev_client *c, uint32_t index, int efd)
{
    assert_int_equal(umdev_client_set_irqs(c, index,
                                           VFIO_IRQ_SET_DATA_EVENTFD |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           0, 1, efd >= 0 ? &efd : NULL,
                                           NULL),
                     0);
}

static void
test_irqs(void **state)
{
    struct umdev_client *c = harness_connect(&H);
    struct umdev_client_irq_info qi;
    struct stats_arg s = { .dev = H.dev };
    int intx = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int req = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int msix = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    uint64_t dropped;

    (void)state;
    assert_int_equal(umdev_client_irq_info(c, VFIO_PCI_INTX_IRQ_INDEX, &qi),
                     0);
    assert_int_equal(qi.count, 1);
    assert_int_equal(qi.flags, VFIO_IRQ_INFO_EVENTFD |
                                   VFIO_IRQ_INFO_MASKABLE |
                                   VFIO_IRQ_INFO_AUTOMASKED);
    assert_int_equal(umdev_client_irq_info(c, VFIO_PCI_MSI_IRQ_INDEX, &qi),
                     0);
    assert_int_equal(qi.count, 0);
    assert_int_equal(umdev_client_irq_info(c, VFIO_PCI_MSIX_IRQ_INDEX, &qi),
                     0);
    assert_int_equal(qi.count, TESTDEV_MSIX_VECTORS);
    assert_int_equal(umdev_client_irq_info(c, 9, &qi), -EINVAL);

    set_trigger(c, VFIO_PCI_INTX_IRQ_INDEX, intx);
    set_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, err);
    set_trigger(c, VFIO_PCI_REQ_IRQ_INDEX, req);
    /* INTx: level raised -> one signal, automasked; lowering and raising
     * while masked does not signal again; EOI (unmask) with the line high
     * re-fires. */
    wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_true(fired(intx, 2000));
    wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    wr(c, TESTDEV_REG_IRQ_LEVEL, 1, 4);
    assert_false(fired(intx, 50));
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_INTX_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_NONE |
                                               VFIO_IRQ_SET_ACTION_UNMASK,
                                           0, 1, NULL, NULL),
                     0);
    assert_true(fired(intx, 2000));
    wr(c, TESTDEV_REG_IRQ_LEVEL, 0, 4);
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_INTX_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_NONE |
                                               VFIO_IRQ_SET_ACTION_UNMASK,
                                           0, 1, NULL, NULL),
                     0);
    assert_false(fired(intx, 50));
    /* ERR from the device, REQ from the server side. */
    wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    assert_true(fired(err, 2000));
    harness_call(&H, request_release, H.dev);
    assert_true(fired(req, 2000));
    /* MSI-X: enable in config (as a VMM does), vector 2 fires. */
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_MSIX_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_EVENTFD |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           2, 1, &msix, NULL),
                     0);
    {
        uint16_t ctl = 0x8000;

        assert_int_equal(umdev_client_region_write(c, 7, 0x48 + 2, &ctl, 2),
                         0);
    }
    wr(c, TESTDEV_REG_MSIX_TRIGGER, 2, 4);
    assert_true(fired(msix, 2000));
    /* De-assign ERR, trigger: counted as dropped, nothing signalled. */
    harness_call(&H, read_stats, &s);
    dropped = s.st.irqs_dropped;
    set_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, -1);
    wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    assert_false(fired(err, 50));
    harness_call(&H, read_stats, &s);
    assert_int_equal(s.st.irqs_dropped, dropped + 1);
    /* Software trigger through SET_IRQS (DATA_NONE + TRIGGER). */
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_REQ_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_NONE |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           0, 1, NULL, NULL),
                     0);
    assert_true(fired(req, 2000));
    /* Out of range sub-index. */
    assert_int_equal(umdev_client_set_irqs(c, VFIO_PCI_ERR_IRQ_INDEX,
                                           VFIO_IRQ_SET_DATA_NONE |
                                               VFIO_IRQ_SET_ACTION_TRIGGER,
                                           1, 1, NULL, NULL),
                     -EINVAL);
    umdev_client_destroy(c);
    close(intx);
    close(err);
    close(req);
    close(msix);
}

static void *
guest_memory(size_t size, int *fd)
{
    void *p;

    *fd = memfd_create("guest", MFD_CLOEXEC);
    assert_true(*fd >= 0);
    assert_int_equal(ftruncate(*fd, (off_t)size), 0);
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

static void
dma_cmd(struct umdev_client *c, uint64_t addr, uint32_t len, uint32_t cmd)
{
    wr(c, TESTDEV_REG_DMA_ADDR, addr, 8);
    wr(c, TESTDEV_REG_DMA_LEN, len, 4);
    wr(c, TESTDEV_REG_DMA_CMD, cmd, 4);
}

static void
test_dma_1000_regions(void **state)
{
    const size_t n = 1000, pg = 4096;
    struct umdev_client *c = harness_connect(&H);
    struct stats_arg s = { .dev = H.dev };
    uint32_t rw = VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;
    uint8_t *mem, back[64];
    size_t i;
    int fd;

    (void)state;
    mem = guest_memory(n * pg, &fd);
    for (i = 0; i < n; i++)
        assert_int_equal(umdev_client_dma_map(c, 0x10000000 + i * 2 * pg, pg,
                                              mem + i * pg, fd, i * pg, rw),
                         0);
    harness_call(&H, read_stats, &s);
    assert_int_equal(s.dma_count, n);
    /* DMA through a few of them. */
    for (i = 0; i < n; i += 333) {
        memset(mem + i * pg, (int)(i & 0xff) + 1, 64);
        dma_cmd(c, 0x10000000 + i * 2 * pg, 64, TESTDEV_DMA_TO_DEVICE);
        assert_int_equal(rd32(c, TESTDEV_REG_DMA_STATUS), 0);
        assert_int_equal(umdev_client_region_read(c, 2, 0, back, 64), 0);
        assert_memory_equal(back, mem + i * pg, 64);
    }
    /* A transfer into the hole between two mappings faults. */
    dma_cmd(c, 0x10000000 + pg, 64, TESTDEV_DMA_TO_DEVICE);
    assert_int_equal(rd32(c, TESTDEV_REG_DMA_STATUS), EFAULT);
    /* Overlap, unknown range, unaligned. */
    assert_int_equal(umdev_client_dma_map(c, 0x10000000, 2 * pg, mem, fd, 0,
                                          rw),
                     -EEXIST);
    assert_int_equal(umdev_client_dma_unmap(c, 0x90000000, pg), -ENOENT);
    assert_int_equal(umdev_client_dma_unmap(c, 0x10000000, 2 * pg), -ENOENT);
    assert_int_equal(umdev_client_dma_map(c, 0x90000100, pg, mem, fd, 0, rw),
                     -EINVAL);
    for (i = 0; i < n; i++)
        assert_int_equal(umdev_client_dma_unmap(c, 0x10000000 + i * 2 * pg,
                                                pg),
                         0);
    harness_call(&H, read_stats, &s);
    assert_int_equal(s.dma_count, 0);
    /* UNMAP_ALL. */
    assert_int_equal(umdev_client_dma_map(c, 0x20000000, pg, mem, fd, 0, rw),
                     0);
    assert_int_equal(umdev_client_dma_unmap_all(c), 0);
    harness_call(&H, read_stats, &s);
    assert_int_equal(s.dma_count, 0);
    munmap(mem, n * pg);
    close(fd);
    umdev_client_destroy(c);
}

static void
test_dma_message_fallback(void **state)
{
    const size_t size = TESTDEV_BAR2_SIZE;
    struct umdev_client *c = harness_connect(&H);
    uint32_t rw = VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE;
    struct umdev_client_stats cs;
    static uint8_t back[TESTDEV_BAR2_SIZE];
    uint8_t *mem;
    size_t i;
    int fd;

    (void)state;
    mem = guest_memory(2 * size, &fd);
    for (i = 0; i < 2 * size; i++)
        mem[i] = (uint8_t)(i * 13 + 1);
    /* First half mapped without fd (messages), second half with. */
    assert_int_equal(umdev_client_dma_map(c, 0x40000000, size, mem, -1, 0,
                                          rw),
                     0);
    assert_int_equal(umdev_client_dma_map(c, 0x40000000 + size, size,
                                          mem + size, fd, size, rw),
                     0);
    dma_cmd(c, 0x40000000, (uint32_t)size, TESTDEV_DMA_TO_DEVICE);
    assert_int_equal(rd32(c, TESTDEV_REG_DMA_STATUS), 0);
    assert_int_equal(umdev_client_region_read(c, 2, 0, back, size), 0);
    assert_memory_equal(back, mem, size);
    umdev_client_get_stats(c, &cs);
    assert_true(cs.dma_reads >= 1);
    /* Invert in place: read and write by message. */
    dma_cmd(c, 0x40000000, (uint32_t)size, TESTDEV_DMA_INVERT);
    assert_int_equal(rd32(c, TESTDEV_REG_DMA_STATUS), 0);
    for (i = 0; i < size; i++)
        assert_int_equal(mem[i], (uint8_t)~(uint8_t)(i * 13 + 1));
    umdev_client_get_stats(c, &cs);
    assert_true(cs.dma_writes >= 1);
    /* A transfer spanning the message-mapped and fd-mapped halves. */
    dma_cmd(c, 0x40000000 + size - 2048, 4096, TESTDEV_DMA_TO_DEVICE);
    assert_int_equal(rd32(c, TESTDEV_REG_DMA_STATUS), 0);
    assert_int_equal(umdev_client_region_read(c, 2, 0, back, 4096), 0);
    assert_memory_equal(back, mem + size - 2048, 4096);
    /* FROM_DEVICE into the fd half. */
    dma_cmd(c, 0x40000000 + size, 4096, TESTDEV_DMA_FROM_DEVICE);
    assert_int_equal(rd32(c, TESTDEV_REG_DMA_STATUS), 0);
    assert_memory_equal(mem + size, back, 4096);
    munmap(mem, 2 * size);
    close(fd);
    umdev_client_destroy(c);
}

static void
test_reset_keeps_mappings_and_irqs(void **state)
{
    struct umdev_client *c = harness_connect(&H);
    struct stats_arg s = { .dev = H.dev };
    uint8_t back[16];
    uint32_t resets;
    uint8_t *mem;
    int fd, efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

    (void)state;
    mem = guest_memory(4096, &fd);
    assert_int_equal(umdev_client_dma_map(c, 0x1000, 4096, mem, fd, 0,
                                          VFIO_USER_DMA_MAP_FLAG_READ),
                     0);
    set_trigger(c, VFIO_PCI_ERR_IRQ_INDEX, efd);
    wr(c, TESTDEV_REG_SCRATCH, 0xabcd, 4);
    assert_int_equal(umdev_client_region_write(c, 2, 0, "0123456789abcdef",
                                               16),
                     0);
    resets = rd32(c, TESTDEV_REG_RESETS);
    assert_int_equal(umdev_client_reset(c), 0);
    assert_int_equal(rd32(c, TESTDEV_REG_RESETS), resets + 1);
    assert_int_equal(rd32(c, TESTDEV_REG_SCRATCH), 0);
    assert_int_equal(umdev_client_region_read(c, 2, 0, back, 16), 0);
    assert_memory_equal(back, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16);
    /* VFIO reset keeps DMA mappings and IRQ eventfds. */
    harness_call(&H, read_stats, &s);
    assert_int_equal(s.dma_count, 1);
    wr(c, TESTDEV_REG_ERR_TRIGGER, 1, 4);
    assert_true(fired(efd, 2000));
    /* Config space is back to power-on too. */
    {
        uint16_t cmd = 0x0006;

        assert_int_equal(umdev_client_region_write(c, 7, 4, &cmd, 2), 0);
        assert_int_equal(umdev_client_reset(c), 0);
        cmd = 0xffff;
        assert_int_equal(umdev_client_region_read(c, 7, 4, &cmd, 2), 0);
        assert_int_equal(cmd, 0);
    }
    munmap(mem, 4096);
    close(fd);
    close(efd);
    umdev_client_destroy(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_width_and_alignment,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_transfers_and_sparse_mmap,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_irqs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dma_1000_regions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dma_message_fallback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reset_keeps_mappings_and_irqs,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
