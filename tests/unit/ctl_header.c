/*
 * Compile check: include/umdev/ctl.h stands alone (nothing included
 * before it) from C, here, and from C++ (tests/unit/ctl.cmake compiles
 * this file again as C++).
 */
#include "umdev/ctl.h"

int ctl_header_check(const struct umdev_ctl_error *e);

int
ctl_header_check(const struct umdev_ctl_error *e)
{
    int (*call)(struct umdev_ctl *, const char *, struct json_object *, int,
                struct json_object **, struct umdev_ctl_error *) =
        umdev_ctl_call;

    return e->err + (int)sizeof(e->message) + (call != 0);
}
