/*
 * The accel parent's attribute descriptions (accel_attrs.h). Pure data, so
 * umdevctl can link it without the device; the numbers in the text are
 * held to the constants the checks use.
 */
#include "accel_attrs.h"
#include "engine.h"

_Static_assert(ACCEL_INST_MAX_THREADS == 4u, "update engine_threads' help");
_Static_assert(ACCEL_MIN_MAX_TRANSFER == 4096u &&
                   ACCEL_MAX_MAX_TRANSFER == 1073741824u &&
                   ACCEL_DEFAULT_MAX_TRANSFER == 2097152u,
               "update max_transfer's help");

const struct umdev_parent_attr accel_attrs[ACCEL_NATTRS] = {
    { "engine_threads", NULL,
      "1 to 4 engine threads serving the instance's queues (default 1)" },
    { "max_transfer", NULL,
      "4096 to 1073741824 bytes per descriptor, the guest's MAX_XFER "
      "(default 2097152)" },
};
