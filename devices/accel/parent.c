/*
 * The accel parent behind the parent-driver interface
 * (include/umdev/parent.h): a pool of work queues, the types accel-1wq,
 * -2wq and -4wq, attribute checks, and building an instance's engine and
 * PCI subdevice (README.md) inside its worker.
 *
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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "accel.h"
#include "accel_attrs.h"
#include "umdev/parent.h"

#define ACCEL_POOL_QUEUES ACCEL_DEFAULT_QUEUES
/* Threads one instance may run: more than the largest type's queues buys
 * nothing, since one thread serves one queue at a time. */

static const struct umdev_parent_pool accel_pools[] = {
    { .name = "queues", .capacity = ACCEL_POOL_QUEUES },
};

/* The types differ only in their queue count K: "Kwq", K from the pool. */
#define ACCEL_TYPE(k, queues)                                                  \
    {                                                                          \
        .name = #k "wq",                                                       \
        .description = "work-queue accelerator with " queues " (PCI "          \
                       "1234:11ec, class 0880): memmove, fill, compare, "      \
                       "CRC32C, dualcast, batch; MSI-X",                       \
        .costs = { { .pool = "queues", .amount = k } }, .ncosts = 1,           \
    }

static const struct umdev_parent_type accel_types[] = {
    ACCEL_TYPE(1, "1 queue"),
    ACCEL_TYPE(2, "2 queues"),
    ACCEL_TYPE(4, "4 queues"),
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
    struct accel_engine *engine;
    struct accel_dev *dev;
    unsigned int nr_queues;
    unsigned int nr_threads;
};

static void
accel_instance_free(struct accel_instance *ai)
{
    if (ai == NULL)
        return;
    /* The device first: it returns its queues to the engine, which must
     * still be there (accel_dev_create's contract). */
    accel_dev_destroy(ai->dev);
    accel_engine_destroy(ai->engine);
    free(ai);
}

static void
accel_parent_destroy(struct umdev_instance *inst)
{
    accel_instance_free(inst->priv);
    inst->priv = NULL;
}

static struct json_object *
accel_parent_describe(struct umdev_instance *inst)
{
    struct accel_instance *ai = inst->priv;
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
accel_parent_create(const struct umdev_instance_args *args,
                    struct umdev_instance *out)
{
    const struct umdev_logger *log = args->log;
    struct accel_engine_config ec = { .log = log };
    struct accel_dev_config dc = { .name = "accel", .log = log };
    struct accel_settings s;
    struct accel_instance *ai;
    unsigned int nq;
    char err[160];
    int rc;

    /* No host endpoints: the vfio-user socket is the whole interface, and
     * the worker serves it on its own loop. */
    nq = accel_type_queues(args->type);
    if (nq == 0) {
        umdev_log(log, LOG_ERR, "no accel type '%s'", args->type);
        return -EINVAL;
    }
    rc = accel_parse_attrs(args->attrs, &s, err, sizeof(err));
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
    out->dev = accel_dev_dev(ai->dev);
    out->pci = accel_dev_pci(ai->dev);
    out->priv = ai;
    umdev_log(log, LOG_INFO, "accel: %u queue%s, %u engine thread%s, CRC32C %s",
              nq, nq == 1 ? "" : "s", s.threads, s.threads == 1 ? "" : "s",
              accel_engine_crc_hw(ai->engine) ? "hardware" : "software");
    return 0;
fail:
    accel_instance_free(ai);
    return rc;
}

static const struct umdev_parent_ops accel_parent_ops = {
    .check_attrs = accel_check_attrs,
    .create = accel_parent_create,
    .destroy = accel_parent_destroy,
    .describe = accel_parent_describe,
    /* The conformance kit drives the rings itself (an event-suppressing
     * ring driver, tests/conformance/check_datapath.c). */
    .exercise = NULL,
};

const struct umdev_parent accel_parent = {
    .abi_version = UMDEV_PARENT_ABI_VERSION,
    .name = "accel",
    .pools = accel_pools,
    .npools = sizeof(accel_pools) / sizeof(accel_pools[0]),
    .types = accel_types,
    .ntypes = ACCEL_NTYPES,
    .ops = &accel_parent_ops,
    .attrs = accel_attrs,
    .nattrs = ACCEL_NATTRS,
    /* Its whole state goes through the migration hooks, which is all a
     * restart needs. */
    .flags = UMDEV_PARENT_F_RESTARTABLE,
};
