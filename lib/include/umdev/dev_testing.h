/*
 * A hook for tests, fuzzers and the conformance tools: a region access
 * without a connection, through the same checks and callbacks as the
 * protocol's. Not installed and not exported from libumdev.so: programs
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

#endif /* UMDEV_DEV_TESTING_H */
