/*
 * Unit tests of the DMA mapping limits (lib/dev): a device's max_dma_maps
 * at the limit and one past it, the process budget its devices reserve
 * from at the limit and one past it, and that the default budget, filled
 * with real fd mappings, fits the kernel's per-process mapping cap.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "kit_util.h"
#include "umdev/dev.h"
#include "umdev/dev_testing.h"
#include "umdev/wire.h"

#define PG 4096u
#define RW (VFIO_USER_DMA_MAP_FLAG_READ | VFIO_USER_DMA_MAP_FLAG_WRITE)
/* Mappings the process keeps beyond the budget: libraries, heap, stacks,
 * sanitizer shadow. A default that leaves less than this is too big. */
#define HEADROOM 8192

static struct kit_log LOG;

static struct umdev_dev *
dev_new(uint32_t max)
{
    struct umdev_dev_info info = {
        .name = "limits",
        .log = &LOG.logger,
        .max_dma_maps = max,
    };
    struct umdev_dev *dev = NULL;

    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    return dev;
}

static int
dev_try(uint32_t max, struct umdev_dev **out)
{
    struct umdev_dev_info info = {
        .name = "limits",
        .log = &LOG.logger,
        .max_dma_maps = max,
    };

    return umdev_dev_create(&info, out);
}

/* Mapping i of a device: page-sized, a page apart. */
static uint64_t
iova(size_t i)
{
    return 0x100000000ull + (uint64_t)i * 2 * PG;
}

static long
read_long(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = -1;

    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &v), 1);
    fclose(f);
    return v;
}

/* Lines of /proc/self/maps: the mappings that count against the cap. */
static long
maps_now(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    long n = 0;
    int c;

    assert_non_null(f);
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* A device maps max_dma_maps and refuses one more with ENOSPC; the
 * default is UMDEV_DEFAULT_MAX_DMA_MAPS. */
static void
test_device_limit(void **state)
{
    struct umdev_dev *dev = dev_new(8);
    size_t i;

    (void)state;
    for (i = 0; i < 8; i++)
        assert_int_equal(umdev_dev_dma_map(dev, iova(i), PG, -1, 0, RW), 0);
    assert_int_equal(umdev_dev_dma_map(dev, iova(8), PG, -1, 0, RW), -ENOSPC);
    assert_int_equal(umdev_dma_count(dev), 8);
    umdev_dev_destroy(dev);

    dev = dev_new(0);
    for (i = 0; i < UMDEV_DEFAULT_MAX_DMA_MAPS; i++)
        assert_int_equal(umdev_dev_dma_map(dev, iova(i), PG, -1, 0, RW), 0);
    assert_int_equal(umdev_dev_dma_map(dev, iova(i), PG, -1, 0, RW), -ENOSPC);
    umdev_dev_destroy(dev);
}

/* Devices reserve their max_dma_maps from the process budget: up to it
 * exactly, never past it, and a destroyed device gives its share back. */
static void
test_process_limit(void **state)
{
    struct umdev_dev *a, *b, *c = NULL, *d = NULL;
    int w0 = atomic_load(&LOG.warnings);

    (void)state;
    assert_int_equal(umdev_dma_set_process_limit(64), 0);
    a = dev_new(40);
    b = dev_new(24);
    assert_int_equal(dev_try(1, &c), -ENOSPC);
    assert_null(c);
    assert_int_equal(atomic_load(&LOG.warnings), w0 + 1);
    /* Never below what is reserved. */
    assert_int_equal(umdev_dma_set_process_limit(63), -EBUSY);
    umdev_dev_destroy(b);
    c = dev_new(1);
    assert_int_equal(dev_try(24, &d), -ENOSPC);
    d = dev_new(23);
    umdev_dev_destroy(a);
    umdev_dev_destroy(c);
    umdev_dev_destroy(d);
    assert_int_equal(umdev_dma_set_process_limit(0), 0);
}

/*
 * The defaults fill the whole budget with fd mappings (one mmap each) in
 * one process: every map succeeds, the next is ENOSPC rather than ENOMEM,
 * and the process still has room to map after (the failure the budget
 * prevents: ENOMEM near 65,500 maps, then every other device of the
 * process unable to map, and the sanitizer runtime aborting).
 */
static void
test_default_fits_max_map_count(void **state)
{
    enum { MAX_DEVS = 64 };
    struct umdev_dev *devs[MAX_DEVS] = { NULL };
    long cap = read_long("/proc/sys/vm/max_map_count"), before;
    size_t n = 0, i, j;
    void *p;
    int fd;

    (void)state;
    before = maps_now();
    assert_true(UMDEV_PROCESS_MAX_DMA_MAPS + before + HEADROOM <= cap);
    fd = memfd_create("limits", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, PG), 0);
    while (n < MAX_DEVS && dev_try(0, &devs[n]) == 0)
        n++;
    assert_int_equal(n,
                     UMDEV_PROCESS_MAX_DMA_MAPS / UMDEV_DEFAULT_MAX_DMA_MAPS);
    for (i = 0; i < n; i++) {
        /* The same file page each time: no two mappings merge. */
        for (j = 0; j < UMDEV_DEFAULT_MAX_DMA_MAPS; j++)
            assert_int_equal(umdev_dev_dma_map(devs[i], iova(j), PG, fd, 0, RW),
                             0);
        assert_int_equal(umdev_dev_dma_map(devs[i], iova(j), PG, fd, 0, RW),
                         -ENOSPC);
    }
    assert_true(maps_now() >= before + UMDEV_PROCESS_MAX_DMA_MAPS);
    assert_true(maps_now() + HEADROOM <= cap);
    p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(p != MAP_FAILED);
    munmap(p, PG);
    for (i = 0; i < n; i++)
        umdev_dev_destroy(devs[i]);
    close(fd);
    assert_true(maps_now() <= before + 16);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_limit),
        cmocka_unit_test(test_process_limit),
        cmocka_unit_test(test_default_fits_max_map_count),
    };

    kit_log_init(&LOG, "limits", "UMDEV_UNIT_LOG");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
