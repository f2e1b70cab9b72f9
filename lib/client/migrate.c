/*
 * Moving a device from one server to another through two manager (or
 * client) connections: the source is read, the destination written, in
 * the v2 arcs a VMM's migration code walks (docs/PROTOCOL.md "Migration
 * driver"). The VMM's own part (pausing what touches the device, then
 * attaching to the destination) comes in through the hooks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "umdev/client.h"

/* One MIG_DATA_READ batch: the client splits it at the server's limit. */
#define MIGRATE_CHUNK (1u << 20)

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int failed(char *err, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
failed(char *err, size_t len, int rc, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err != NULL && len != 0) {
        va_start(ap, fmt);
        n = vsnprintf(err, len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < len)
            snprintf(err + n, len - (size_t)n, ": %s", strerror(-rc));
    }
    return rc;
}

/* Copy what the source's stream has now into the destination; *@refused
 * when it was the destination that failed (it checks the stream's header
 * and configuration as they arrive). */
static int
shuttle(struct umdev_client *src, struct umdev_client *dst, uint8_t *buf,
        uint64_t *bytes, bool *refused)
{
    ssize_t n;
    int rc;

    *refused = false;
    do {
        n = umdev_client_mig_read(src, buf, MIGRATE_CHUNK);
        if (n < 0)
            return (int)n;
        if (n > 0) {
            rc = umdev_client_mig_write(dst, buf, (size_t)n);
            if (rc < 0) {
                *refused = true;
                return rc;
            }
            *bytes += (uint64_t)n;
        }
    } while (n == MIGRATE_CHUNK);
    return 0;
}

#define REFUSED_TEXT                                                           \
    "the destination refused the state (another type, state version or "       \
    "configuration; its log says which)"

/* Put a source that was stopped back to work (its state is intact). */
static void
source_back(struct umdev_client *src)
{
    umdev_client_mig_set_state(src, VFIO_USER_DEVICE_STATE_RUNNING, NULL);
}

int
umdev_client_migrate(struct umdev_client *src, struct umdev_client *dst,
                     const struct umdev_migrate_hooks *hooks,
                     struct umdev_migrate_stats *st, char *err, size_t errlen)
{
    uint64_t flags = 0, t_stop, t_loaded;
    uint32_t state;
    uint8_t *buf;
    bool precopy, refused;
    int rc;

    memset(st, 0, sizeof(*st));
    rc = umdev_client_mig_flags(src, &flags);
    if (rc < 0)
        return failed(err, errlen, rc, "the source offers no migration");
    rc = umdev_client_mig_state(src, &state);
    if (rc == 0 && state != VFIO_USER_DEVICE_STATE_RUNNING)
        rc = -EBUSY;
    if (rc < 0)
        return failed(err, errlen, rc, "the source is not running (state %u)",
                      state);
    /* A destination in a session (RESUMING, saving) is left alone: only
     * a reset ends one without a load. */
    rc = umdev_client_mig_state(dst, &state);
    if (rc == 0 && state != VFIO_USER_DEVICE_STATE_RUNNING &&
        state != VFIO_USER_DEVICE_STATE_STOP)
        rc = -EBUSY;
    if (rc < 0)
        return failed(err, errlen, rc,
                      "the destination is not ready (state %u; reset it)",
                      state);
    buf = malloc(MIGRATE_CHUNK);
    if (buf == NULL)
        return failed(err, errlen, -ENOMEM, "no memory");
    /* The destination walks RUNNING -> STOP -> RESUMING, which also
     * drops anything a fresh device might have had. */
    rc = umdev_client_mig_set_state(dst, VFIO_USER_DEVICE_STATE_RESUMING, NULL);
    if (rc < 0) {
        free(buf);
        return failed(err, errlen, rc,
                      "the destination cannot take a migration");
    }
    precopy = (flags & VFIO_USER_MIGRATION_PRE_COPY) != 0;
    if (precopy) {
        rc = umdev_client_mig_set_state(src, VFIO_USER_DEVICE_STATE_PRE_COPY,
                                        NULL);
        if (rc == 0)
            rc = shuttle(src, dst, buf, &st->precopy_bytes, &refused);
        if (rc < 0) {
            source_back(src);
            free(buf);
            return failed(err, errlen, rc,
                          refused ? REFUSED_TEXT : "pre-copy failed");
        }
    }
    rc = hooks != NULL && hooks->stop != NULL ? hooks->stop(hooks->opaque) : 0;
    if (rc < 0) {
        if (precopy)
            source_back(src);
        free(buf);
        return failed(err, errlen, rc, "the VMM did not pause");
    }
    t_stop = now_ns();
    rc =
        umdev_client_mig_set_state(src, VFIO_USER_DEVICE_STATE_STOP_COPY, NULL);
    if (rc < 0) {
        source_back(src);
        free(buf);
        return failed(err, errlen, rc, "the source did not stop");
    }
    rc = shuttle(src, dst, buf, &st->state_bytes, &refused);
    free(buf);
    if (rc < 0) {
        source_back(src);
        return failed(err, errlen, rc,
                      refused ? REFUSED_TEXT : "copying the state failed");
    }
    /* Leaving RESUMING loads the stream: this is where the destination
     * checks and takes it. */
    rc = umdev_client_mig_set_state(dst, VFIO_USER_DEVICE_STATE_STOP, NULL);
    if (rc < 0) {
        source_back(src);
        return failed(err, errlen, rc, REFUSED_TEXT);
    }
    t_loaded = now_ns();
    st->transfer_ns = t_loaded - t_stop;
    rc = hooks != NULL && hooks->attach != NULL ? hooks->attach(hooks->opaque)
                                                : 0;
    if (rc < 0) {
        source_back(src);
        return failed(err, errlen, rc,
                      "the VMM could not attach to the destination");
    }
    rc = umdev_client_mig_set_state(dst, VFIO_USER_DEVICE_STATE_RUNNING, NULL);
    if (rc < 0) {
        source_back(src);
        return failed(err, errlen, rc, "the destination did not start");
    }
    st->blackout_ns = now_ns() - t_stop;
    /* The saving session ends; the source stays stopped for good. */
    rc = umdev_client_mig_set_state(src, VFIO_USER_DEVICE_STATE_STOP, NULL);
    if (rc < 0)
        return failed(err, errlen, rc,
                      "the destination runs, but the source did not "
                      "leave STOP_COPY");
    return 0;
}
