/*
 * A test device (not shipped) that exercises every lib/dev path: a trapped
 * register BAR (with the MSI-X table), a RAM-backed 64-bit BAR with sparse
 * mmap, INTx, MSI-X, ERR/REQ IRQs and DMA (mapped or through messages).
 * Its config space is built by lib/pci. Its register map is below; tests and
 * the demo drive it through the vfio-user client.
 */
#ifndef UMDEV_TESTDEV_H
#define UMDEV_TESTDEV_H

#include <stdint.h>

#include "umdev/dev.h"

#define TESTDEV_VENDOR_ID 0x1234
#define TESTDEV_DEVICE_ID 0x11ef

/* BAR0: 4 KiB of trapped registers (32-bit unless noted). */
#define TESTDEV_BAR0_SIZE 0x1000
#define TESTDEV_REG_ID 0x00        /* RO: TESTDEV_ID_VALUE */
#define TESTDEV_REG_SCRATCH 0x04   /* RW */
#define TESTDEV_REG_SCRATCH64 0x08 /* RW, 64-bit */
#define TESTDEV_REG_DMA_ADDR 0x10  /* RW, 64-bit guest address */
#define TESTDEV_REG_DMA_LEN 0x18   /* RW, bytes (<= BAR2 size) */
#define TESTDEV_REG_DMA_CMD 0x1c   /* WO: TESTDEV_DMA_* starts a transfer */
/* RO: TESTDEV_DMA_BUSY while a DMA runs (guest memory mapped without an fd
 * is reached by messages, which take a while), then 0 or the errno of the
 * last DMA. A DMA_CMD written while busy is ignored. */
#define TESTDEV_REG_DMA_STATUS 0x20
#define TESTDEV_REG_IRQ_LEVEL 0x24 /* RW: INTx line level (0/1) */
#define TESTDEV_REG_IRQ_RAISED 0x28 /* RO: times the line was raised */
#define TESTDEV_REG_ERR_TRIGGER 0x2c /* WO: any value signals the ERR IRQ */
#define TESTDEV_REG_RESETS 0x30    /* RO: device resets since creation */
#define TESTDEV_REG_MSIX_TRIGGER 0x34 /* WO: raise MSI-X (or MSI) vector N */
#define TESTDEV_SCRATCH_ARRAY 0x100 /* 256 bytes, any width/alignment */
#define TESTDEV_SCRATCH_ARRAY_SIZE 0x100

#define TESTDEV_ID_VALUE 0x7e57de71u

/* DMA commands: between guest memory and BAR2's start. */
#define TESTDEV_DMA_TO_DEVICE 1   /* guest[ADDR..+LEN) -> BAR2[0..LEN) */
#define TESTDEV_DMA_FROM_DEVICE 2 /* BAR2[0..LEN) -> guest[ADDR..+LEN) */
#define TESTDEV_DMA_INVERT 3      /* guest bytes inverted in place */
#define TESTDEV_DMA_BUSY 0x80000000u /* DMA_STATUS: not finished yet */

/* MSI-X: table and PBA in BAR0, served by lib/pci. */
#define TESTDEV_MSIX_VECTORS 4
#define TESTDEV_MSIX_TABLE 0x800
#define TESTDEV_MSIX_PBA 0xc00

/* BAR2: 64 KiB of shared memory; page 0 trapped, the rest mmappable. */
#define TESTDEV_BAR2_SIZE 0x10000

struct testdev;

int testdev_create(const struct umdev_logger *log, struct testdev **out);
void testdev_destroy(struct testdev *td);
/*
 * testdev_power_cycle() - back to what a client of a new device would
 * see (a reset, and RESETS reads 0 again), without the cost of creating
 * one: for harnesses that run one device through many independent
 * clients. Call it with no client attached (umdev_dev_detach() drops a
 * client's DMA mappings and IRQ state). Only the statistics and profile
 * counters, which no client reads, keep counting.
 */
void testdev_power_cycle(struct testdev *td);
struct umdev_dev *testdev_dev(struct testdev *td);

#endif /* UMDEV_TESTDEV_H */
