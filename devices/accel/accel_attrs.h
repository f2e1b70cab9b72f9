/*
 * The accel parent's instance attributes as people read about them
 * (include/umdev/parent.h struct umdev_parent_attr): the parent hands
 * them to umdevd, and umdevctl's help lists them when no umdevd is
 * there to ask. accel_check_attrs() (parent.c) is what decides.
 */
#ifndef UMDEV_ACCEL_ATTRS_H
#define UMDEV_ACCEL_ATTRS_H

#include "umdev/parent.h"

/* Engine threads one instance may ask for (engine_threads). */
#define ACCEL_INST_MAX_THREADS 4u

#define ACCEL_NATTRS 2

extern const struct umdev_parent_attr accel_attrs[ACCEL_NATTRS];

#endif /* UMDEV_ACCEL_ATTRS_H */
