/*
 * msgdma-tool: the guest side of tests/e2e/msgdma.sh. Drives the test
 * device (1234:11ef) from guest userspace while guest RAM is not shared
 * with the server, so every device DMA is a DMA_READ/DMA_WRITE message
 * that QEMU serves: it programs INVERT commands on an mlocked page
 * (physical address from /proc/self/pagemap, so it runs as root) and
 * polls DMA_STATUS, timing every status read, until the DMA is done.
 *
 *   msgdma-tool SYSFS_DEVICE_DIR [COUNT]
 *
 * Output: "dma i=N status=S busy_reads=B max_read_us=M us=T" per command,
 * then "summary commands=N max_read_us=M busy_reads=B"; errors on stderr,
 * exit status 1 on any failure (2 for usage errors).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *prog = "msgdma-tool";
#include "guest-tool.h"

#define PAGE 4096u
/* The test device's BAR0 registers (tests/testdev/testdev.h). */
#define REG_DMA_ADDR 0x10
#define REG_DMA_LEN 0x18
#define REG_DMA_CMD 0x1c
#define REG_DMA_STATUS 0x20
#define DMA_INVERT 3
#define DMA_BUSY 0x80000000u
#define DMA_LEN 64
/* A DMA that is not done after this is a failure. */
#define DMA_TIMEOUT_NS 20000000000ull

static int
set_command(const char *dev)
{
    char path[512];
    uint16_t cmd;
    int fd;

    snprintf(path, sizeof(path), "%s/config", dev);
    fd = open(path, O_RDWR);
    if (fd < 0 || pread(fd, &cmd, 2, 4) != 2) {
        err("%s: %s", path, strerror(errno));
        return -1;
    }
    cmd |= 0x6; /* Memory Space, Bus Master */
    if (pwrite(fd, &cmd, 2, 4) != 2) {
        err("%s: writing Command: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int
phys_of(const void *virt, uint64_t *phys)
{
    uint64_t ent;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    off_t off = (off_t)((uintptr_t)virt / PAGE * 8);

    if (fd < 0 || pread(fd, &ent, 8, off) != 8) {
        err("/proc/self/pagemap: %s", strerror(errno));
        return -1;
    }
    close(fd);
    if (!(ent >> 63) || (ent & ((1ull << 55) - 1)) == 0) {
        err("no physical address (pagemap 0x%016" PRIx64 "; not root?)", ent);
        return -1;
    }
    *phys = (ent & ((1ull << 55) - 1)) * PAGE;
    return 0;
}

int
main(int argc, char **argv)
{
    uint64_t phys, worst_all = 0, busy_all = 0;
    volatile uint8_t *bar0;
    uint8_t *page, want[DMA_LEN];
    char path[512];
    int fd, count, i, j;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s SYSFS_DEVICE_DIR [COUNT]\n", prog);
        return 2;
    }
    count = argc == 3 ? atoi(argv[2]) : 20;
    if (set_command(argv[1]) < 0)
        return 1;
    snprintf(path, sizeof(path), "%s/resource0", argv[1]);
    fd = open(path, O_RDWR | O_SYNC);
    bar0 = fd < 0 ? MAP_FAILED
                  : mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bar0 == MAP_FAILED) {
        err("%s: %s", path, strerror(errno));
        return 1;
    }
    page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    if (page == MAP_FAILED || mlock(page, PAGE) < 0) {
        err("guest buffer: %s", strerror(errno));
        return 1;
    }
    memset(page, 0, PAGE);
    if (phys_of(page, &phys) < 0)
        return 1;
    printf("info phys=0x%" PRIx64 "\n", phys);
    for (i = 0; i < count; i++) {
        uint64_t t0, t1, start, worst = 0, busy = 0;
        uint32_t status;
        uint8_t *buf = page + (i % 32) * 128;

        for (j = 0; j < DMA_LEN; j++) {
            buf[j] = (uint8_t)(i * 13 + j);
            want[j] = (uint8_t)~buf[j];
        }
        *(volatile uint64_t *)(bar0 + REG_DMA_ADDR) =
            phys + (uint64_t)(buf - page);
        *(volatile uint32_t *)(bar0 + REG_DMA_LEN) = DMA_LEN;
        start = now_ns();
        *(volatile uint32_t *)(bar0 + REG_DMA_CMD) = DMA_INVERT;
        for (;;) {
            t0 = now_ns();
            status = *(volatile uint32_t *)(bar0 + REG_DMA_STATUS);
            t1 = now_ns();
            if (t1 - t0 > worst)
                worst = t1 - t0;
            if (status != DMA_BUSY)
                break;
            busy++;
            if (t1 - start > DMA_TIMEOUT_NS) {
                err("DMA %d still busy after %llu s", i,
                    (unsigned long long)(DMA_TIMEOUT_NS / 1000000000ull));
                return 1;
            }
        }
        printf("dma i=%d status=0x%x busy_reads=%" PRIu64
               " max_read_us=%" PRIu64 " us=%" PRIu64 "\n",
               i, status, busy, worst / 1000, (t1 - start) / 1000);
        fflush(stdout);
        if (status != 0) {
            err("DMA %d: status 0x%x", i, status);
            return 1;
        }
        if (memcmp(buf, want, DMA_LEN) != 0) {
            err("DMA %d: guest memory is not inverted", i);
            return 1;
        }
        if (worst > worst_all)
            worst_all = worst;
        busy_all += busy;
    }
    printf("summary commands=%d max_read_us=%" PRIu64 " busy_reads=%" PRIu64
           "\n",
           count, worst_all / 1000, busy_all);
    return 0;
}
