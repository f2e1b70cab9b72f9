/*
 * The serial parent's attribute descriptions (serial_attrs.h). Pure data, so
 * umdevctl can link it without the device.
 */
#include "serial_attrs.h"

/* The host end of each port (devices/serial/README.md). */
#define SERIAL_PORT_HELP                                                       \
    "socket (default: a UNIX socket at RUNDIR/UUID.portN) | pty (a "           \
    "pseudo-terminal, linked at RUNDIR/UUID.portN) | none | an absolute "      \
    "path for the UNIX socket"

const struct umdev_parent_attr serial_attrs[SERIAL_NATTRS] = {
    { "port0", NULL, SERIAL_PORT_HELP },
    { "port1", NULL, SERIAL_PORT_HELP },
};
