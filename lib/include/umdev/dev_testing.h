/*
 * Hooks for tests, fuzzers and benchmarks: a region access without a
 * connection, through the same checks and callbacks as the protocol's,
 * and what a test asks of a device's interrupt and DMA state. Not
 * installed and not exported from libumdev.so: programs
 * that use it link the static library (umdev_static), which puts
 * lib/include on their include path.
 */
#ifndef UMDEV_DEV_TESTING_H
#define UMDEV_DEV_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "umdev/dev.h"

/**
 * umdev_dev_region_rw() - perform a region access exactly as a client's
 * REGION_READ/REGION_WRITE would (same bounds and permission checks, same
 * callbacks), without a connection.
 * Return: 0; -EINVAL bad index/range; -EPERM not readable/writable; or
 * the device callback's error.
 */
int umdev_dev_region_rw(struct umdev_dev *dev, uint32_t index,
                        uint64_t offset, void *buf, size_t count,
                        bool is_write);

/* Current mask state of a vector (true: masked). */
bool umdev_dev_irq_masked(struct umdev_dev *dev, uint32_t index,
                          uint32_t sub);

/** Whether a client has an eventfd on the vector. */
bool umdev_dev_irq_enabled(struct umdev_dev *dev, uint32_t index,
                           uint32_t sub);

/* Number of live DMA mappings. */
size_t umdev_dma_count(struct umdev_dev *dev);

/*
 * A DMA_MAP exactly as a client's would be (same checks, same table),
 * without a connection. @fd (-1: none) is borrowed. Return: 0 or the
 * errno the client would get, negated.
 */
int umdev_dev_dma_map(struct umdev_dev *dev, uint64_t iova, uint64_t size,
                      int fd, uint64_t offset, uint32_t flags);

/*
 * Set the process's DMA mapping budget (0: UMDEV_PROCESS_MAX_DMA_MAPS),
 * so a test reaches it without tens of thousands of mappings. Return: 0;
 * -EBUSY below what devices have reserved now.
 */
int umdev_dma_set_process_limit(uint32_t n);

/*
 * Back to RUNNING with no stream, as a new device starts, without the
 * device's hooks (its own power-on does the rest): harnesses that run
 * one device through many independent clients (testdev_power_cycle()).
 * No client attached.
 */
void umdev_dev_mig_power_on(struct umdev_dev *dev);

#endif /* UMDEV_DEV_TESTING_H */
