/* Functional tests of devices/accel: its subdevices served by the kit. */
#ifndef UMDEV_FUNC_ACCEL_SERVE_H
#define UMDEV_FUNC_ACCEL_SERVE_H

#include <stddef.h>

#include "accel.h"
#include "kit_serve.h"

/**
 * accel_serve() - create @n subdevices of engine @e (subdevice i named
 * "acceli", with @queues[i] queues, logging to @log) and serve them on
 * @s, initialised here (kit_serve_init(@tag)) and started. @devs[i]
 * receives subdevice i, borrowed: kit_serve_stop() destroys them, before
 * the engine may go. Fails the running cmocka test on any error.
 */
void accel_serve(struct kit_serve *s, const char *tag, struct accel_engine *e,
                 const unsigned int *queues, size_t n,
                 const struct umdev_logger *log, struct accel_dev **devs);

#endif /* UMDEV_FUNC_ACCEL_SERVE_H */
