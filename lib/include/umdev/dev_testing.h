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

#endif /* UMDEV_DEV_TESTING_H */
