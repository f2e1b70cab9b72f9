/*
 * The control socket (docs/CONTROL.md "Framing"): connections, one JSON
 * request per line in and one response per line out, in order; a request
 * that waits (handlers.h) parks its connection until answered.
 */
#ifndef UMDEVD_CONTROL_H
#define UMDEVD_CONTROL_H

#include "umdevd.h"

/** Listen on opts.control (mode 0666: every peer is checked with
 * SO_PEERCRED) and install daemon_hooks.respond. Return: 0 or -errno. */
int control_listen(struct daemon *d);

/** Close every connection and the listening socket (shutdown). */
void control_close_all(struct daemon *d);

#endif /* UMDEVD_CONTROL_H */
