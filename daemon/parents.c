/*
 * The parents built into umdevd and their glue: resource pools and types
 * for lib/mdev, validation of each type's definition attributes, and the
 * factory a worker calls to build the device it serves.
 *
 * serial: a pool of UART ports; each instance is a two-port 16550A card
 * (devices/serial/README.md) whose host ends are UNIX sockets or ptys.
 *
 * accel: a pool of work queues; each instance is an accel PCI subdevice
 * of 1, 2 or 4 queues (devices/accel/README.md) on an engine of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "accel.h"
#include "parents.h"
#include "serial.h"

/* Ports one daemon hands out: 1024 two-port instances. */
#define SERIAL_POOL_PORTS 2048

/* ---- serial ------------------------------------------------------------ */

/*
 * attrs: { "port0": SPEC, "port1": SPEC }, each optional. SPEC is
 * "socket" (default: a UNIX socket at RUNDIR/<uuid>.portN), "pty" (a
 * pseudo-terminal, with a symlink to it at RUNDIR/<uuid>.portN), "none",
 * or an absolute path where the UNIX socket is made.
 */
static const char *const serial_port_keys[SERIAL_NR_PORTS] = { "port0",
                                                               "port1" };

static int
serial_check_spec(const char *key, struct json_object *v, char *err,
                  size_t errlen)
{
    struct sockaddr_un sa;
    const char *s;

    if (!json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen,
                 "attribute %s must be a string: \"socket\", \"pty\", "
                 "\"none\" or an absolute socket path",
                 key);
        return -EINVAL;
    }
    s = json_object_get_string(v);
    if (strcmp(s, "socket") == 0 || strcmp(s, "pty") == 0 ||
        strcmp(s, "none") == 0)
        return 0;
    if (s[0] != '/') {
        snprintf(err, errlen,
                 "attribute %s='%s': expected \"socket\", \"pty\", \"none\" "
                 "or an absolute path",
                 key, s);
        return -EINVAL;
    }
    if (strlen(s) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen,
                 "attribute %s: path longer than %zu bytes (a UNIX socket "
                 "path limit)",
                 key, sizeof(sa.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    return 0;
}

static int
serial_check_attrs(const char *type, struct json_object *attrs, char *err,
                   size_t errlen)
{
    (void)type;
    if (attrs == NULL)
        return 0;
    if (!json_object_is_type(attrs, json_type_object)) {
        snprintf(err, errlen, "attrs must be a JSON object");
        return -EINVAL;
    }
    json_object_object_foreach(attrs, key, v)
    {
        unsigned int i;
        int rc;

        for (i = 0; i < SERIAL_NR_PORTS; i++)
            if (strcmp(key, serial_port_keys[i]) == 0)
                break;
        if (i == SERIAL_NR_PORTS) {
            snprintf(err, errlen,
                     "unknown attribute '%s' for a serial instance "
                     "(allowed: port0, port1)",
                     key);
            return -EINVAL;
        }
        rc = serial_check_spec(key, v, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct serial_instance {
    struct parent_instance pi;
    struct serial *serial;
    char paths[SERIAL_NR_PORTS][sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void
serial_instance_destroy(struct parent_instance *pi)
{
    struct serial_instance *si = (struct serial_instance *)pi;

    if (si == NULL)
        return;
    serial_destroy(si->serial);
    free(si);
}

static struct json_object *
serial_instance_describe(struct parent_instance *pi)
{
    struct serial_instance *si = (struct serial_instance *)pi;
    struct json_object *o = json_object_new_object();
    unsigned int i;

    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        const char *end = serial_port_host_end(si->serial, i);
        struct json_object *p;

        if (end == NULL)
            continue;
        p = json_object_new_object();
        json_object_object_add(p, "kind",
                               json_object_new_string(
                                   serial_port_is_pty(si->serial, i) ? "pty"
                                                                     : "socket"));
        json_object_object_add(p, "host_end", json_object_new_string(end));
        if (si->paths[i][0] != '\0')
            json_object_object_add(p, "path",
                                   json_object_new_string(si->paths[i]));
        json_object_object_add(o, serial_port_keys[i], p);
    }
    return o;
}

/*
 * The worker builds the device while still root and then becomes the
 * instance owner; hand it the host ends so the owner (and only the owner)
 * can use them.
 */
static int
serial_give_to_owner(struct serial_instance *si, uid_t uid, gid_t gid)
{
    unsigned int i;

    if (geteuid() != 0)
        return 0;
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        const char *end = serial_port_host_end(si->serial, i);

        if (end == NULL)
            continue;
        if (chown(end, uid, gid) < 0)
            return -errno;
        if (si->paths[i][0] != '\0' && serial_port_is_pty(si->serial, i) &&
            lchown(si->paths[i], uid, gid) < 0)
            return -errno;
    }
    return 0;
}

static int
serial_create_instance(const char *type, const char *uuid,
                       const char *rundir, uid_t uid, gid_t gid,
                       struct json_object *attrs, struct umdev_loop *loop,
                       const struct umdev_logger *log,
                       struct parent_instance **out)
{
    /* The worker's logger already prefixes every line with the UUID. */
    struct serial_config cfg = { .name = "serial" };
    struct serial_instance *si;
    char err[160];
    unsigned int i;
    int rc;

    (void)type;
    *out = NULL;
    rc = serial_check_attrs(type, attrs, err, sizeof(err));
    if (rc < 0) {
        umdev_log(log, LOG_ERR, "%s", err);
        return rc;
    }
    si = calloc(1, sizeof(*si));
    if (si == NULL)
        return -ENOMEM;
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        struct json_object *v = NULL;
        const char *spec = "socket";
        int n;

        if (attrs != NULL &&
            json_object_object_get_ex(attrs, serial_port_keys[i], &v))
            spec = json_object_get_string(v);
        if (strcmp(spec, "none") == 0)
            continue;
        if (spec[0] == '/')
            n = snprintf(si->paths[i], sizeof(si->paths[i]), "%s", spec);
        else
            n = snprintf(si->paths[i], sizeof(si->paths[i]), "%s/%s.%s",
                         rundir, uuid, serial_port_keys[i]);
        if (n < 0 || (size_t)n >= sizeof(si->paths[i])) {
            free(si);
            return -ENAMETOOLONG;
        }
        cfg.port[i].path = si->paths[i];
        cfg.port[i].pty = strcmp(spec, "pty") == 0;
    }
    rc = serial_create(loop, &cfg, log, &si->serial);
    if (rc < 0)
        goto fail;
    rc = serial_give_to_owner(si, uid, gid);
    if (rc < 0)
        goto fail;
    si->pi.dev = serial_dev(si->serial);
    si->pi.pci = serial_pci(si->serial);
    si->pi.priv = si;
    si->pi.destroy = serial_instance_destroy;
    si->pi.describe = serial_instance_describe;
    *out = &si->pi;
    return 0;
fail:
    serial_instance_destroy(&si->pi);
    return rc;
}

static const struct mdev_pool_desc serial_pools[] = {
    { .name = "ports", .capacity = SERIAL_POOL_PORTS },
};

static const struct mdev_type_desc serial_types[] = {
    {
        .name = "2port",
        .description = "16550A two-port PCI serial card (4348:3253, "
                       "Linux 8250_pci), host ends as UNIX sockets or ptys",
        .device_api = "vfio-pci",
        .costs = { { .pool = "ports", .amount = SERIAL_NR_PORTS } },
        .ncosts = 1,
    },
};

static const struct parent_driver serial_parent = {
    .desc = {
        .name = "serial",
        .pools = serial_pools,
        .npools = sizeof(serial_pools) / sizeof(serial_pools[0]),
        .types = serial_types,
        .ntypes = sizeof(serial_types) / sizeof(serial_types[0]),
    },
    .check_attrs = serial_check_attrs,
    .create = serial_create_instance,
};

/* ---- accel ------------------------------------------------------------- */

/*
 * Process model: the daemon's pool `queues` is bookkeeping only. Each
 * instance's worker builds an accel engine of exactly the instance's
 * queue count (its own engine threads included) and the PCI subdevice
 * over it; ->destroy tears both down. This is deliberate:
 *  - isolation: a worker that crashes (or is killed, or is compromised by
 *    a hostile guest) ends that one instance; no engine state, thread or
 *    guest mapping is shared with another instance's process, and each
 *    worker holds only its own guest's memory;
 *  - the engine's priority fairness (README "Scheduling") applies among
 *    the queues of one instance; between instances the host scheduler
 *    shares the CPUs, as it does between any two processes;
 *  - available_instances is lib/mdev's accounting of the pool, so it
 *    follows free queues across the three types without asking workers.
 * The cost is one set of engine threads per instance instead of one per
 * parent, which is why engine_threads defaults to 1.
 *
 * attrs: { "engine_threads": 1..ACCEL_INST_MAX_THREADS (default 1),
 *          "max_transfer": ACCEL_MIN_MAX_TRANSFER..ACCEL_MAX_MAX_TRANSFER
 *                          bytes per descriptor (default
 *                          ACCEL_DEFAULT_MAX_TRANSFER) }, both optional
 * integers. They are the instance's engine settings; the guest sees
 * max_transfer in BAR0 MAX_XFER.
 */
#define ACCEL_POOL_QUEUES ACCEL_DEFAULT_QUEUES
/* Threads one instance may run: more than the largest type's queues buys
 * nothing, since one thread serves one queue at a time. */
#define ACCEL_INST_MAX_THREADS 4u

static const struct mdev_pool_desc accel_pools[] = {
    { .name = "queues", .capacity = ACCEL_POOL_QUEUES },
};

static const struct mdev_type_desc accel_types[] = {
    {
        .name = "1wq",
        .description = "work-queue accelerator with 1 queue (PCI 1234:11ec, "
                       "class 0880): memmove, fill, compare, CRC32C, "
                       "dualcast, batch; MSI-X",
        .device_api = "vfio-pci",
        .costs = { { .pool = "queues", .amount = 1 } },
        .ncosts = 1,
    },
    {
        .name = "2wq",
        .description = "work-queue accelerator with 2 queues (PCI "
                       "1234:11ec, class 0880): memmove, fill, compare, "
                       "CRC32C, dualcast, batch; MSI-X",
        .device_api = "vfio-pci",
        .costs = { { .pool = "queues", .amount = 2 } },
        .ncosts = 1,
    },
    {
        .name = "4wq",
        .description = "work-queue accelerator with 4 queues (PCI "
                       "1234:11ec, class 0880): memmove, fill, compare, "
                       "CRC32C, dualcast, batch; MSI-X",
        .device_api = "vfio-pci",
        .costs = { { .pool = "queues", .amount = 4 } },
        .ncosts = 1,
    },
};
#define ACCEL_NTYPES (sizeof(accel_types) / sizeof(accel_types[0]))

/* Queues of type @type ("accel-1wq" or its short name "1wq"): what the
 * type costs in the pool, so the two can never disagree. 0: no such type. */
static unsigned int
accel_type_queues(const char *type)
{
    static const char prefix[] = "accel-";
    unsigned int i;

    if (type == NULL)
        return 0;
    if (strncmp(type, prefix, sizeof(prefix) - 1) == 0)
        type += sizeof(prefix) - 1;
    for (i = 0; i < ACCEL_NTYPES; i++)
        if (strcmp(type, accel_types[i].name) == 0)
            return accel_types[i].costs[0].amount;
    return 0;
}

/* The integer attribute @v in [lo, hi] into *out, or an error naming it. */
static int
accel_attr_uint(const char *key, struct json_object *v, uint64_t lo,
                uint64_t hi, const char *unit, uint64_t *out, char *err,
                size_t errlen)
{
    int64_t n;

    if (!json_object_is_type(v, json_type_int)) {
        snprintf(err, errlen,
                 "attribute %s must be an integer from %llu to %llu%s "
                 "(got %s)",
                 key, (unsigned long long)lo, (unsigned long long)hi, unit,
                 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        return -EINVAL;
    }
    n = json_object_get_int64(v);
    if (n < 0 || (uint64_t)n < lo || (uint64_t)n > hi) {
        snprintf(err, errlen,
                 "attribute %s=%lld is out of range: %llu to %llu%s", key,
                 (long long)n, (unsigned long long)lo, (unsigned long long)hi,
                 unit);
        return -EINVAL;
    }
    *out = (uint64_t)n;
    return 0;
}

struct accel_settings {
    unsigned int threads;
    uint32_t max_transfer;
};

/* Validate @attrs and, when @out is not NULL, return the settings. */
static int
accel_parse_attrs(struct json_object *attrs, struct accel_settings *out,
                  char *err, size_t errlen)
{
    struct accel_settings s = {
        .threads = ACCEL_DEFAULT_THREADS,
        .max_transfer = ACCEL_DEFAULT_MAX_TRANSFER,
    };

    if (attrs != NULL && !json_object_is_type(attrs, json_type_object)) {
        snprintf(err, errlen, "attrs must be a JSON object");
        return -EINVAL;
    }
    if (attrs != NULL) {
        json_object_object_foreach(attrs, key, v)
        {
            uint64_t n;
            int rc;

            if (strcmp(key, "engine_threads") == 0) {
                rc = accel_attr_uint(key, v, 1, ACCEL_INST_MAX_THREADS, "", &n,
                                     err, errlen);
                if (rc < 0)
                    return rc;
                s.threads = (unsigned int)n;
            } else if (strcmp(key, "max_transfer") == 0) {
                rc = accel_attr_uint(key, v, ACCEL_MIN_MAX_TRANSFER,
                                     ACCEL_MAX_MAX_TRANSFER, " bytes", &n, err,
                                     errlen);
                if (rc < 0)
                    return rc;
                s.max_transfer = (uint32_t)n;
            } else {
                snprintf(err, errlen,
                         "unknown attribute '%s' for an accel instance "
                         "(allowed: engine_threads, max_transfer)",
                         key);
                return -EINVAL;
            }
        }
    }
    if (out != NULL)
        *out = s;
    return 0;
}

static int
accel_check_attrs(const char *type, struct json_object *attrs, char *err,
                  size_t errlen)
{
    (void)type;
    return accel_parse_attrs(attrs, NULL, err, errlen);
}

struct accel_instance {
    struct parent_instance pi;
    struct accel_engine *engine;
    struct accel_dev *dev;
    unsigned int nr_queues;
    unsigned int nr_threads;
};

static void
accel_instance_destroy(struct parent_instance *pi)
{
    struct accel_instance *ai = (struct accel_instance *)pi;

    if (ai == NULL)
        return;
    /* The device first: it returns its queues to the engine, which must
     * still be there (accel_dev_create's contract). */
    accel_dev_destroy(ai->dev);
    accel_engine_destroy(ai->engine);
    free(ai);
}

static struct json_object *
accel_instance_describe(struct parent_instance *pi)
{
    struct accel_instance *ai = (struct accel_instance *)pi;
    struct json_object *o = json_object_new_object();
    uint64_t completed = 0, bytes = 0, failed = 0, doorbells = 0;
    uint64_t notifies = 0;
    unsigned int i;

    for (i = 0; i < ai->nr_queues; i++) {
        struct accel_queue *q = accel_dev_queue(ai->dev, i);
        struct accel_queue_status st;

        if (q == NULL)
            continue;
        accel_queue_status(q, &st);
        completed += st.completed;
        bytes += st.bytes;
        failed += st.failed;
        doorbells += st.doorbells;
        notifies += st.notifies;
    }
    json_object_object_add(o, "queues", json_object_new_int(ai->nr_queues));
    json_object_object_add(o, "engine_threads",
                           json_object_new_int(ai->nr_threads));
    json_object_object_add(
        o, "crc32c",
        json_object_new_string(accel_engine_crc_hw(ai->engine) ? "hardware"
                                                               : "software"));
    json_object_object_add(
        o, "max_transfer",
        json_object_new_int64(accel_engine_max_transfer(ai->engine)));
    json_object_object_add(o, "completed",
                           json_object_new_int64((int64_t)completed));
    json_object_object_add(o, "bytes", json_object_new_int64((int64_t)bytes));
    json_object_object_add(o, "failed", json_object_new_int64((int64_t)failed));
    json_object_object_add(o, "doorbells",
                           json_object_new_int64((int64_t)doorbells));
    json_object_object_add(o, "notifies",
                           json_object_new_int64((int64_t)notifies));
    return o;
}

static int
accel_create_instance(const char *type, const char *uuid, const char *rundir,
                      uid_t uid, gid_t gid, struct json_object *attrs,
                      struct umdev_loop *loop, const struct umdev_logger *log,
                      struct parent_instance **out)
{
    struct accel_engine_config ec = { .log = log };
    struct accel_dev_config dc = { .name = "accel", .log = log };
    struct accel_settings s;
    struct accel_instance *ai;
    unsigned int nq;
    char err[160];
    int rc;

    /* No host endpoints: the vfio-user socket is the whole interface, and
     * the worker serves it on its own loop. */
    (void)uuid;
    (void)rundir;
    (void)uid;
    (void)gid;
    (void)loop;
    *out = NULL;
    nq = accel_type_queues(type);
    if (nq == 0) {
        umdev_log(log, LOG_ERR, "no accel type '%s'", type);
        return -EINVAL;
    }
    rc = accel_parse_attrs(attrs, &s, err, sizeof(err));
    if (rc < 0) {
        umdev_log(log, LOG_ERR, "%s", err);
        return rc;
    }
    ai = calloc(1, sizeof(*ai));
    if (ai == NULL)
        return -ENOMEM;
    ai->nr_queues = nq;
    ai->nr_threads = s.threads;
    ec.nr_queues = nq;
    ec.nr_threads = s.threads;
    ec.max_transfer = s.max_transfer;
    rc = accel_engine_create(&ec, &ai->engine);
    if (rc < 0) {
        umdev_log(log, LOG_ERR, "cannot create an engine of %u queues: %s", nq,
                  strerror(-rc));
        goto fail;
    }
    dc.nr_queues = nq;
    rc = accel_dev_create(ai->engine, &dc, &ai->dev);
    if (rc < 0) {
        umdev_log(log, LOG_ERR, "cannot create the accel device: %s",
                  strerror(-rc));
        goto fail;
    }
    ai->pi.dev = accel_dev_dev(ai->dev);
    ai->pi.pci = accel_dev_pci(ai->dev);
    ai->pi.priv = ai;
    ai->pi.destroy = accel_instance_destroy;
    ai->pi.describe = accel_instance_describe;
    umdev_log(log, LOG_INFO, "accel: %u queue%s, %u engine thread%s, CRC32C %s",
              nq, nq == 1 ? "" : "s", s.threads, s.threads == 1 ? "" : "s",
              accel_engine_crc_hw(ai->engine) ? "hardware" : "software");
    *out = &ai->pi;
    return 0;
fail:
    accel_instance_destroy(&ai->pi);
    return rc;
}

static const struct parent_driver accel_parent = {
    .desc = {
        .name = "accel",
        .pools = accel_pools,
        .npools = sizeof(accel_pools) / sizeof(accel_pools[0]),
        .types = accel_types,
        .ntypes = ACCEL_NTYPES,
    },
    .check_attrs = accel_check_attrs,
    .create = accel_create_instance,
};

/* ---- registry ---------------------------------------------------------- */

static const struct parent_driver *const builtin[] = {
    &serial_parent,
    &accel_parent,
    NULL,
};

const struct parent_driver *const *
parents_builtin(void)
{
    return builtin;
}

const struct parent_driver *
parents_find(const char *name)
{
    const struct parent_driver *const *p;

    for (p = builtin; *p != NULL; p++)
        if (strcmp((*p)->desc.name, name) == 0)
            return *p;
    return NULL;
}
