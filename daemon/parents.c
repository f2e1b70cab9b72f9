/*
 * The parent registry (parents.h): built-in parents and plug-ins go
 * through the same parents_add(), which checks what a parent declares
 * before lib/mdev sees it and keeps each type's admission verdict.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accel.h"
#include "nvme_parent.h"
#include "parents.h"
#include "serial.h"

/* The parents built into umdevd, registered exactly as a plug-in's. */
static const struct umdev_parent *const builtin[] = {
    &serial_parent,
    &accel_parent,
    &nvme_parent,
};

static const char *const admission_names[] = {
    [ADMIT_BUILTIN] = "built-in", [ADMIT_WAIVED] = "waived",
    [ADMIT_PENDING] = "pending",  [ADMIT_PASSED] = "admitted",
    [ADMIT_REFUSED] = "refused",
};

const char *
admission_state_name(enum admission_state s)
{
    return admission_names[s];
}

/* What lib/mdev cannot check: the interface version, the operations,
 * and the limits of parent.h (lib/mdev checks names, pools and costs). */
static int
check_driver(const struct umdev_parent *drv, char *err, size_t errlen)
{
    size_t i;

    if (drv->abi_version < UMDEV_PARENT_ABI_MIN_VERSION ||
        drv->abi_version > UMDEV_PARENT_ABI_VERSION) {
        snprintf(err, errlen,
                 "built for parent ABI version %u; this umdevd takes "
                 "versions %u to %u (rebuild it against this umdev)",
                 (unsigned int)drv->abi_version,
                 (unsigned int)UMDEV_PARENT_ABI_MIN_VERSION,
                 (unsigned int)UMDEV_PARENT_ABI_VERSION);
        return -EINVAL;
    }
    if (drv->name == NULL || drv->ops == NULL || drv->ops->create == NULL ||
        drv->ops->destroy == NULL) {
        snprintf(err, errlen,
                 "a parent needs a name and the create and "
                 "destroy operations");
        return -EINVAL;
    }
    if (drv->npools > UMDEV_PARENT_MAX_POOLS ||
        drv->ntypes > UMDEV_PARENT_MAX_TYPES || drv->ntypes == 0 ||
        (drv->npools > 0 && drv->pools == NULL) || drv->types == NULL) {
        snprintf(err, errlen,
                 "parent '%s' declares %zu pools and %zu types (1 to %d "
                 "types, at most %d pools)",
                 drv->name, drv->npools, drv->ntypes, UMDEV_PARENT_MAX_TYPES,
                 UMDEV_PARENT_MAX_POOLS);
        return -EINVAL;
    }
    if (drv->abi_version < 2)
        return 0; /* no attribute descriptions */
    if (drv->nattrs > UMDEV_PARENT_MAX_ATTRS ||
        (drv->nattrs > 0 && drv->attrs == NULL)) {
        snprintf(err, errlen,
                 "parent '%s' describes %zu attributes (at most %d)", drv->name,
                 drv->nattrs, UMDEV_PARENT_MAX_ATTRS);
        return -EINVAL;
    }
    for (i = 0; i < drv->nattrs; i++) {
        if (drv->attrs[i].name == NULL || drv->attrs[i].name[0] == '\0' ||
            drv->attrs[i].help == NULL) {
            snprintf(err, errlen,
                     "parent '%s': attribute %zu needs a name and a help "
                     "line",
                     drv->name, i);
            return -EINVAL;
        }
    }
    return 0;
}

size_t
parents_type_attrs(const struct parent_entry *pe, const char *type,
                   const struct umdev_parent_attr **out, size_t max)
{
    const struct umdev_parent *drv = pe->drv;
    size_t plen = strlen(drv->name), i, n = 0;
    const char *shortname;

    if (drv->abi_version < 2 || strncmp(type, drv->name, plen) != 0 ||
        type[plen] != '-')
        return 0;
    shortname = type + plen + 1;
    for (i = 0; i < drv->nattrs && n < max; i++) {
        const char *t = drv->attrs[i].types;
        size_t len = strlen(shortname);
        bool match = t == NULL;

        /* One of the blank-separated names in t. */
        while (!match && t != NULL && *t != '\0') {
            size_t w;

            t += strspn(t, " \t");
            w = strcspn(t, " \t");
            match = w == len && strncmp(t, shortname, len) == 0;
            t += w;
        }
        if (match)
            out[n++] = &drv->attrs[i];
    }
    return n;
}

/* @drv as lib/mdev takes it, with the --pool overrides applied. */
static int
register_mdev(struct daemon *d, const struct umdev_parent *drv, char *err,
              size_t errlen)
{
    struct mdev_pool_desc pools[MDEV_MAX_POOLS];
    struct mdev_type_desc types[MDEV_MAX_TYPES];
    struct mdev_parent_desc desc = {
        .name = drv->name,
        .pools = pools,
        .npools = drv->npools,
        .types = types,
        .ntypes = drv->ntypes,
    };
    size_t i, j;
    int rc;

    for (i = 0; i < drv->npools; i++) {
        pools[i].name = drv->pools[i].name;
        pools[i].capacity = drv->pools[i].capacity;
        for (j = 0; j < d->opts.npools; j++) {
            const struct pool_override *po = &d->opts.pools[j];

            if (strcmp(po->parent, drv->name) != 0 || pools[i].name == NULL ||
                strcmp(po->pool, pools[i].name) != 0 ||
                po->capacity > pools[i].capacity)
                continue;
            umdev_log(&d->log, LOG_NOTICE,
                      "pool %s.%s limited to %u of %u units", drv->name,
                      pools[i].name, (unsigned int)po->capacity,
                      (unsigned int)pools[i].capacity);
            pools[i].capacity = po->capacity;
        }
    }
    for (i = 0; i < drv->ntypes; i++) {
        const struct umdev_parent_type *t = &drv->types[i];

        memset(&types[i], 0, sizeof(types[i]));
        types[i].name = t->name;
        types[i].description = t->description ? t->description : "";
        types[i].device_api = "vfio-pci";
        if (t->ncosts > MDEV_MAX_COSTS) {
            snprintf(err, errlen,
                     "type '%s' draws from %zu pools (at most "
                     "%d)",
                     t->name ? t->name : "?", t->ncosts, MDEV_MAX_COSTS);
            return -EINVAL;
        }
        for (j = 0; j < t->ncosts; j++) {
            types[i].costs[j].pool = t->costs[j].pool;
            types[i].costs[j].amount = t->costs[j].amount;
        }
        types[i].ncosts = t->ncosts;
    }
    rc = mdev_parent_add(d->mdev, &desc);
    if (rc == -EEXIST)
        snprintf(err, errlen, "a parent named '%s' is registered already",
                 drv->name);
    else if (rc < 0)
        snprintf(err, errlen,
                 "parent '%s' is malformed: names are 1 to %d characters of "
                 "[a-z0-9_], every cost names one of its pools with an "
                 "amount above 0 (%s)",
                 drv->name, MDEV_NAME_MAX, strerror(-rc));
    return rc;
}

int
parents_add(struct daemon *d, const struct umdev_parent *drv,
            const char *plugin, void *dl, char *err, size_t errlen)
{
    struct parent_entry *e, **tail;
    size_t i;
    int rc;

    rc = check_driver(drv, err, errlen);
    if (rc == 0)
        rc = register_mdev(d, drv, err, errlen);
    if (rc < 0)
        goto fail;
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    e->drv = drv;
    e->dl = dl;
    snprintf(e->plugin, sizeof(e->plugin), "%s", plugin ? plugin : "");
    for (i = 0; i < drv->ntypes; i++) {
        struct parent_type *t = &e->types[i];

        full_type_name(drv->name, drv->types[i].name, t->name, sizeof(t->name));
        t->admission = plugin == NULL      ? ADMIT_BUILTIN
                       : d->opts.admit_any ? ADMIT_WAIVED
                                           : ADMIT_PENDING;
    }
    for (tail = &d->parents->list; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = e;
    return 0;
fail:
    if (dl != NULL)
        dlclose(dl);
    return rc;
}

int
parents_create(struct daemon *d, struct parents **out)
{
    char err[512];
    size_t i;
    int rc;

    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return -ENOMEM;
    d->parents = *out;
    for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        rc = parents_add(d, builtin[i], NULL, NULL, err, sizeof(err));
        if (rc < 0) {
            umdev_log(&d->log, LOG_ERR, "built-in parent %s: %s",
                      builtin[i]->name, err);
            return rc;
        }
    }
    return 0;
}

void
parents_destroy(struct parents *p)
{
    struct parent_entry *e, *next;
    struct refused_plugin *r, *rnext;

    if (p == NULL)
        return;
    for (e = p->list; e != NULL; e = next) {
        next = e->next;
        if (e->dl != NULL)
            dlclose(e->dl);
        free(e);
    }
    for (r = p->refused; r != NULL; r = rnext) {
        rnext = r->next;
        free(r);
    }
    free(p);
}

int
parents_check_overrides(struct daemon *d, char *err, size_t errlen)
{
    size_t i, j;

    for (i = 0; i < d->opts.npools; i++) {
        const struct pool_override *po = &d->opts.pools[i];
        const struct parent_entry *e = parents_find(d->parents, po->parent);

        if (e == NULL) {
            snprintf(err, errlen,
                     "--pool %s.%s: no parent named '%s' (umdevd --help "
                     "lists the pools)",
                     po->parent, po->pool, po->parent);
            return -EINVAL;
        }
        for (j = 0; j < e->drv->npools; j++)
            if (strcmp(e->drv->pools[j].name, po->pool) == 0)
                break;
        if (j == e->drv->npools) {
            snprintf(err, errlen,
                     "--pool %s.%s: parent '%s' has no pool '%s' (umdevd "
                     "--help lists the pools)",
                     po->parent, po->pool, po->parent, po->pool);
            return -EINVAL;
        }
        if (po->capacity > e->drv->pools[j].capacity) {
            snprintf(err, errlen,
                     "--pool %s.%s=%u: N must be a number from 0 to %u, the "
                     "capacity of %s.%s",
                     po->parent, po->pool, (unsigned int)po->capacity,
                     (unsigned int)e->drv->pools[j].capacity, po->parent,
                     po->pool);
            return -EINVAL;
        }
    }
    return 0;
}

const struct parent_entry *
parents_find(const struct parents *p, const char *name)
{
    const struct parent_entry *e;

    for (e = p->list; e != NULL; e = e->next)
        if (strcmp(e->drv->name, name) == 0)
            return e;
    return NULL;
}

struct parent_type *
parents_type(struct parents *p, const char *type,
             const struct parent_entry **entry)
{
    struct parent_entry *e;
    size_t i;

    for (e = p->list; e != NULL; e = e->next) {
        for (i = 0; i < e->drv->ntypes; i++) {
            if (strcmp(e->types[i].name, type) == 0) {
                if (entry != NULL)
                    *entry = e;
                return &e->types[i];
            }
        }
    }
    return NULL;
}

int
parents_type_offered(struct parents *p, const char *type, char *err,
                     size_t errlen)
{
    const struct parent_entry *e;
    struct parent_type *t = parents_type(p, type, &e);

    if (t == NULL) {
        snprintf(err, errlen, "unknown type '%s' (umdevctl types lists them)",
                 type);
        return -ENOENT;
    }
    switch (t->admission) {
    case ADMIT_BUILTIN:
    case ADMIT_WAIVED:
    case ADMIT_PASSED:
        return 0;
    case ADMIT_PENDING:
        snprintf(err, errlen,
                 "type %s (plug-in %s) is not offered yet: its admission "
                 "audit has not finished (umdevctl types shows the verdict)",
                 type, e->plugin);
        return -EACCES;
    case ADMIT_REFUSED:
        break;
    }
    snprintf(err, errlen, "type %s (plug-in %s) was refused admission: %s",
             type, e->plugin, t->verdict);
    return -EACCES;
}
