/*
 * The nvme parent's instance attributes as people read about them
 * (include/umdev/parent.h struct umdev_parent_attr): the parent hands
 * them to umdevd, and umdevctl's help lists them when no umdevd is
 * there to ask. nvme_settings_parse() (parent.c) is what decides.
 */
#ifndef UMDEV_NVME_ATTRS_H
#define UMDEV_NVME_ATTRS_H

#include "umdev/parent.h"

/* Namespace bytes (size) and the backing directory's default (dir). */
#define NVME_MIN_SIZE (1ull << 20)
#define NVME_MAX_SIZE (16ull << 40)
#define NVME_DEFAULT_SIZE (1ull << 30)

#define NVME_NATTRS 4

extern const struct umdev_parent_attr nvme_attrs[NVME_NATTRS];

#endif /* UMDEV_NVME_ATTRS_H */
