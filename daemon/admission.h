/*
 * The admission gate for parent plug-ins (docs/PLUGINS.md): a plug-in's
 * type is offered only after `umdevctl audit TYPE --conformance` passes
 * for it. umdevd runs that command itself, one type at a time, against
 * its own control socket, and keeps the verdict (parents.h) that
 * `umdevctl types` shows. `umdevd --admit any` waives the gate.
 */
#ifndef UMDEVD_ADMISSION_H
#define UMDEVD_ADMISSION_H

#include <stdbool.h>
#include <sys/types.h>

#include "umdevd.h"

/* The audit of one type may take this long beyond its fuzz time. */
#define ADMISSION_TIMEOUT_MS (300 * 1000)
/* The most an audit may print (its JSON document). */
#define ADMISSION_MAX_OUTPUT (4u << 20)

/** Set up the gate (d->admission). Return: 0 or -ENOMEM. */
int admission_create(struct daemon *d);
/** Kill an audit in progress, free the gate. */
void admission_destroy(struct daemon *d);

/** Audit every pending type in turn. The control socket must be listening
 * (the audit is a client of it). */
void admission_start(struct daemon *d);

/** True while @pid is the audit of pending type @type: it may define and
 * start instances of it, which nobody else may yet. */
bool admission_peer_may_use(struct daemon *d, const char *type, pid_t pid);

#endif /* UMDEVD_ADMISSION_H */
