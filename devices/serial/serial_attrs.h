/*
 * The serial parent's instance attributes as people read about them
 * (include/umdev/parent.h struct umdev_parent_attr): the parent hands
 * them to umdevd, and umdevctl's help lists them when no umdevd is
 * there to ask. serial_check_attrs() (parent.c) is what decides.
 */
#ifndef UMDEV_SERIAL_ATTRS_H
#define UMDEV_SERIAL_ATTRS_H

#include "umdev/parent.h"

#define SERIAL_NATTRS 2

extern const struct umdev_parent_attr serial_attrs[SERIAL_NATTRS];

#endif /* UMDEV_SERIAL_ATTRS_H */
