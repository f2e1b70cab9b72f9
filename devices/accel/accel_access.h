/*
 * The embedded access-path provider of the accel parent: host code in the
 * process that owns the engine opens queues of it through lib/access
 * (umdev/access.h), beside the PCI subdevices served from the same engine.
 * A queue held by an access user is claimed from the engine like a
 * subdevice's, so accel_engine_free_queues() (and available_instances)
 * counts it.
 */
#ifndef UMDEV_ACCEL_ACCESS_H
#define UMDEV_ACCEL_ACCESS_H

#include "engine.h"
#include "umdev/access.h"

struct accel_access;

/**
 * accel_access_create() - a provider serving queues of @e.
 * @e: borrowed; must outlive the provider. @log: borrowed; may be NULL.
 * Return: 0; -EINVAL; -ENOMEM.
 */
int accel_access_create(struct accel_engine *e, const struct umdev_logger *log,
                        struct accel_access **out);

/** Free the provider; every handle opened on it must be closed first.
 * NULL is ok. */
void accel_access_destroy(struct accel_access *p);

/** What umdev_access_open() takes; owned by @p. */
const struct umdev_access_provider *
accel_access_provider(struct accel_access *p);

/** Queues open on @p now. */
unsigned int accel_access_open_queues(struct accel_access *p);

#endif /* UMDEV_ACCEL_ACCESS_H */
