/*
 * The serial parent behind the parent-driver interface
 * (include/umdev/parent.h): a pool of UART ports, one type (a two-port
 * 16550A card, README.md), attribute checks, and building an instance's
 * card with its host ends (UNIX sockets or ptys) inside its worker.
 *
 * attrs: { "port0": SPEC, "port1": SPEC }, each optional. SPEC is
 * "socket" (default: a UNIX socket at RUNDIR/<uuid>.portN), "pty" (a
 * pseudo-terminal, with a symlink to it at RUNDIR/<uuid>.portN), "none",
 * or an absolute path where the UNIX socket is made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "serial_attrs.h"
#include "serial.h"
#include "umdev/parent.h"

/* Ports one daemon hands out: 1024 two-port instances. */
#define SERIAL_POOL_PORTS 2048

static const char *const serial_port_keys[SERIAL_NR_PORTS] = { "port0",
                                                               "port1" };

static int
check_spec(const char *key, struct json_object *v, char *err, size_t errlen)
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
        rc = check_spec(key, v, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct serial_instance {
    struct serial *serial;
    char paths[SERIAL_NR_PORTS][sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void
serial_instance_free(struct serial_instance *si)
{
    if (si == NULL)
        return;
    serial_destroy(si->serial);
    free(si);
}

static void
serial_parent_destroy(struct umdev_instance *inst)
{
    serial_instance_free(inst->priv);
    inst->priv = NULL;
}

static struct json_object *
serial_parent_describe(struct umdev_instance *inst)
{
    struct serial_instance *si = inst->priv;
    struct json_object *o = json_object_new_object();
    unsigned int i;

    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        const char *end = serial_port_host_end(si->serial, i);
        struct json_object *p;

        if (end == NULL)
            continue;
        p = json_object_new_object();
        json_object_object_add(
            p, "kind",
            json_object_new_string(
                serial_port_is_pty(si->serial, i) ? "pty" : "socket"));
        json_object_object_add(p, "host_end", json_object_new_string(end));
        if (si->paths[i][0] != '\0')
            json_object_object_add(p, "path",
                                   json_object_new_string(si->paths[i]));
        json_object_object_add(o, serial_port_keys[i], p);
    }
    return o;
}

static int
serial_parent_create(const struct umdev_instance_args *args,
                     struct umdev_instance *out)
{
    /* The worker's logger already prefixes every line with the UUID. */
    struct serial_config cfg = { .name = "serial" };
    struct serial_instance *si;
    char err[160];
    unsigned int i;
    int rc;

    rc = serial_check_attrs(args->type, args->attrs, err, sizeof(err));
    if (rc < 0) {
        umdev_log(args->log, LOG_ERR, "%s", err);
        return rc;
    }
    si = calloc(1, sizeof(*si));
    if (si == NULL)
        return -ENOMEM;
    for (i = 0; i < SERIAL_NR_PORTS; i++) {
        struct json_object *v = NULL;
        const char *spec = "socket";
        int n;

        if (args->attrs != NULL &&
            json_object_object_get_ex(args->attrs, serial_port_keys[i], &v))
            spec = json_object_get_string(v);
        if (strcmp(spec, "none") == 0)
            continue;
        if (spec[0] == '/')
            n = snprintf(si->paths[i], sizeof(si->paths[i]), "%s", spec);
        else
            n = snprintf(si->paths[i], sizeof(si->paths[i]), "%s/%s.%s",
                         args->rundir, args->uuid, serial_port_keys[i]);
        if (n < 0 || (size_t)n >= sizeof(si->paths[i])) {
            free(si);
            return -ENAMETOOLONG;
        }
        cfg.port[i].path = si->paths[i];
        cfg.port[i].pty = strcmp(spec, "pty") == 0;
        /* A path a user chose may lie in a directory the owner can
         * change; RUNDIR is the daemon's alone. */
        cfg.port[i].owner_creates = spec[0] == '/';
    }
    /* The worker builds the device while still root and then gives it
     * up: the host ends are the owner's (and only the owner's). */
    cfg.set_owner = true;
    cfg.uid = args->uid;
    cfg.gid = args->gid;
    /* A restart's new worker: the host ends, with their peers, come
     * with the handover from the worker that still serves them. */
    cfg.restoring = args->restoring;
    rc = serial_create(args->loop, &cfg, args->log, &si->serial);
    if (rc < 0) {
        serial_instance_free(si);
        return rc;
    }
    out->dev = serial_dev(si->serial);
    out->pci = serial_pci(si->serial);
    out->priv = si;
    return 0;
}

static const struct umdev_parent_pool serial_pools[] = {
    { .name = "ports", .capacity = SERIAL_POOL_PORTS },
};

static const struct umdev_parent_type serial_types[] = {
    {
        .name = "2port",
        .description = "16550A two-port PCI serial card (4348:3253, "
                       "Linux 8250_pci), host ends as UNIX sockets or ptys",
        .costs = { { .pool = "ports", .amount = SERIAL_NR_PORTS } },
        .ncosts = 1,
    },
};

static const struct umdev_parent_ops serial_parent_ops = {
    .check_attrs = serial_check_attrs,
    .create = serial_parent_create,
    .destroy = serial_parent_destroy,
    .describe = serial_parent_describe,
    /* The conformance kit drives the 16550 itself (a polled 8250
     * driver, tests/conformance/check_datapath.c). */
    .exercise = NULL,
};

const struct umdev_parent serial_parent = {
    .abi_version = UMDEV_PARENT_ABI_VERSION,
    .name = "serial",
    .pools = serial_pools,
    .npools = sizeof(serial_pools) / sizeof(serial_pools[0]),
    .types = serial_types,
    .ntypes = sizeof(serial_types) / sizeof(serial_types[0]),
    .ops = &serial_parent_ops,
    .attrs = serial_attrs,
    .nattrs = SERIAL_NATTRS,
    /* The host ends travel with the handover (serial.c, "Handover"). */
    .flags = UMDEV_PARENT_F_RESTARTABLE,
};
