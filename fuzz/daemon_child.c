/*
 * What the daemon's fuzz targets link instead of daemon/child.c: a
 * daemon that never starts a helper process. An audit forked from a
 * fuzzer would fork the fuzzer, so child_start() refuses, as a daemon
 * out of processes would; the request is answered with the reason, and
 * the code up to the fork (argument checks, the kit's validation) is
 * fuzzed all the same.
 */
#include <errno.h>
#include <stdio.h>

#include "child.h"

int
child_start(struct daemon *d, const struct child_spec *spec, struct child **out,
            char *err, size_t errlen)
{
    (void)d;
    *out = NULL;
    snprintf(err, errlen, "cannot fork %s: %s", spec->name,
             "no helper processes under the fuzzer");
    return -EAGAIN;
}

pid_t
child_pid(const struct child *c)
{
    (void)c;
    return -1;
}

void
child_cancel(struct child *c)
{
    (void)c;
}
