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

/*
 * The daemon-served provider (access_daemon.c): every queue opened on it
 * is a transient accel-1wq instance of the umdevd listening on @control,
 * leased to this process (it ends when the handle closes or the process
 * dies). Needs umdevd's management permission (root or its group).
 */
struct accel_access_daemon;

/**
 * accel_access_daemon_create() - a provider for queues of umdevd's accel
 * parent. Nothing is contacted until a queue is opened.
 * @control: the daemon's control socket path. @log: borrowed; may be NULL.
 * Return: 0; -EINVAL; -ENAMETOOLONG; -ENOMEM.
 */
int accel_access_daemon_create(const char *control,
                               const struct umdev_logger *log,
                               struct accel_access_daemon **out);

/** Free it; every handle opened on it must be closed first. NULL is ok. */
void accel_access_daemon_destroy(struct accel_access_daemon *p);

const struct umdev_access_provider *
accel_access_daemon_provider(struct accel_access_daemon *p);

/** Queues open on @p now. */
unsigned int
accel_access_daemon_open_queues(const struct accel_access_daemon *p);

#endif /* UMDEV_ACCEL_ACCESS_H */
