/*
 * The parents built into umdevd and their glue: resource pools and types
 * for lib/mdev, validation of each type's definition attributes, and the
 * factory a worker calls to build the device it serves.
 *
 * serial: a pool of UART ports; each instance is a two-port 16550A card
 * (devices/serial/README.md) whose host ends are UNIX sockets or ptys.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

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
    si->pi.priv = si;
    si->pi.destroy = serial_instance_destroy;
    si->pi.describe = serial_instance_describe;
    *out = &si->pi;
    return 0;
fail:
    serial_instance_destroy(&si->pi);
    return rc;
}

static const struct umdev_mdev_pool_desc serial_pools[] = {
    { .name = "ports", .capacity = SERIAL_POOL_PORTS },
};

static const struct umdev_mdev_type_desc serial_types[] = {
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

/* ---- registry ---------------------------------------------------------- */

static const struct parent_driver *const builtin[] = {
    &serial_parent,
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
