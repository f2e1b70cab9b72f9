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
#include <sys/stat.h>

#include "accel.h"
#include "display_parent.h"
#include "nvme_parent.h"
#include "parents.h"
#include "serial.h"

/* The parents built into umdevd, registered exactly as a plug-in's. */
static const struct umdev_parent *const builtin[] = {
    &serial_parent,
    &accel_parent,
    &nvme_parent,
    &display_parent,
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
    if ((PARENT_FLAGS(drv) & ~UMDEV_PARENT_F_ALL) != 0) {
        snprintf(err, errlen,
                 "parent '%s' declares flags %#x this umdevd does not know "
                 "(it knows %#x)",
                 drv->name, (unsigned int)PARENT_FLAGS(drv),
                 (unsigned int)UMDEV_PARENT_F_ALL);
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

int
parents_datadir(const struct daemon *d, const char *name, char *out, size_t len)
{
    /* '.' is no parent name's: defs_load_all() passes it by. */
    if (snprintf(out, len, "%s/%s.data", d->opts.statedir, name) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

int
parents_instance_data(struct daemon *d, const struct inst_config *cfg,
                      bool remove, char *where, size_t len)
{
    const struct parent_entry *pe = parents_find(d->parents, cfg->parent);
    int (*fn)(const struct umdev_instance_args *, bool, char *, size_t) =
        pe != NULL ? PARENT_OP3(pe->drv, instance_data) : NULL;
    struct umdev_instance_args args = {
        .type = cfg->type,
        .uuid = cfg->uuid,
        .rundir = d->opts.rundir,
        .uid = cfg->uid,
        .gid = cfg->gid,
        .attrs = cfg->attrs,
        .log = &d->log,
    };
    char datadir[PATH_MAX];
    int rc;

    where[0] = '\0';
    if (fn == NULL)
        return 0;
    if (parents_datadir(d, pe->drv->name, datadir, sizeof(datadir)) == 0)
        args.datadir = datadir;
    rc = fn(&args, remove, where, len);
    if (rc < 0 && where[0] == '\0')
        snprintf(where, len, "%s", strerror(-rc));
    return rc;
}

/*
 * Make @drv's data directory (root's, 0700: only umdevd and the workers
 * it hands files to look inside) and let @drv size its pools @cap for
 * this host. A running daemon only: `umdevd --help` lists the declared
 * capacities and creates nothing.
 */
static void
prepare_parent(struct daemon *d, const struct umdev_parent *drv, uint32_t *cap)
{
    int (*size_pools)(const char *, uint32_t *, size_t) =
        PARENT_OP3(drv, size_pools);
    char dir[PATH_MAX];
    size_t i;
    int rc;

    if (d->opts.statedir[0] == '\0')
        return;
    /* Only a parent that keeps data has a directory for it. */
    if (PARENT_OP3(drv, instance_data) != NULL) {
        /* STATEDIR as defs_save() makes it; the data directory
         * private. */
        rc = parents_datadir(d, drv->name, dir, sizeof(dir));
        if (rc == 0)
            rc = mkdir_p(d->opts.statedir, 0755);
        if (rc == 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
            rc = -errno;
        if (rc < 0) {
            umdev_log(&d->log, LOG_ERR, "parent %s: cannot create %s: %s",
                      drv->name, dir, strerror(-rc));
            return;
        }
    }
    if (size_pools == NULL)
        return;
    rc = size_pools(PARENT_OP3(drv, instance_data) != NULL ? dir : NULL, cap,
                    drv->npools);
    for (i = 0; rc == 0 && i < drv->npools; i++)
        if (cap[i] > drv->pools[i].capacity)
            rc = -ERANGE; /* raised: not allowed */
    if (rc < 0) {
        umdev_log(&d->log, LOG_WARNING,
                  "parent %s could not size its pools for this host (%s): "
                  "they keep their declared capacities",
                  drv->name, strerror(-rc));
        for (i = 0; i < drv->npools; i++)
            cap[i] = drv->pools[i].capacity;
        return;
    }
    for (i = 0; i < drv->npools; i++)
        if (cap[i] != drv->pools[i].capacity)
            umdev_log(&d->log, LOG_INFO, "pool %s.%s sized to %u for this host",
                      drv->name, drv->pools[i].name, (unsigned int)cap[i]);
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
    uint32_t cap[MDEV_MAX_POOLS];
    size_t i, j;
    int rc;

    for (i = 0; i < drv->npools; i++)
        cap[i] = drv->pools[i].capacity;
    prepare_parent(d, drv, cap);
    for (i = 0; i < drv->npools; i++) {
        pools[i].name = drv->pools[i].name;
        pools[i].capacity = cap[i];
        for (j = 0; j < d->opts.npools; j++) {
            const struct pool_override *po = &d->opts.pools[j];

            if (strcmp(po->parent, drv->name) != 0 || pools[i].name == NULL ||
                strcmp(po->pool, pools[i].name) != 0 ||
                po->capacity > pools[i].capacity)
                continue;
            /* Of the declared capacity: what --pool is measured by,
             * whatever the parent sized the pool to for this host. */
            umdev_log(&d->log, LOG_NOTICE,
                      "pool %s.%s limited to %u of %u units", drv->name,
                      pools[i].name, (unsigned int)po->capacity,
                      (unsigned int)drv->pools[i].capacity);
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

/* The costs @type's attributes @attrs add, into @out. Return: how many,
 * or -errno with @err filled. */
static int
attr_costs(struct daemon *d, const char *type, struct json_object *attrs,
           const struct parent_entry **pe, struct umdev_parent_cost *out,
           char *err, size_t errlen)
{
    int (*fn)(const char *, struct json_object *, struct umdev_parent_cost *,
              size_t, char *, size_t);
    int n, i;

    if (parents_type(d->parents, type, pe) == NULL)
        return 0;
    fn = PARENT_OP3((*pe)->drv, attr_costs);
    if (fn == NULL)
        return 0;
    n = fn(type, attrs, out, UMDEV_PARENT_MAX_COSTS, err, errlen);
    if (n < 0)
        return n;
    if (n > UMDEV_PARENT_MAX_COSTS)
        n = -EINVAL;
    for (i = 0; n > 0 && i < n; i++) {
        uint32_t f, c;

        if (out[i].pool == NULL || out[i].amount == 0 ||
            mdev_pool_get(d->mdev, (*pe)->drv->name, out[i].pool, &f, &c) < 0)
            n = -EINVAL;
    }
    if (n < 0)
        snprintf(err, errlen,
                 "parent %s reports costs for %s it cannot have (a pool it "
                 "lacks, or none of it)",
                 (*pe)->drv->name, type);
    return n;
}

int
parents_fit(struct daemon *d, const char *type, struct json_object *attrs,
            bool free, char *err, size_t errlen)
{
    struct umdev_parent_cost costs[UMDEV_PARENT_MAX_COSTS];
    const struct parent_entry *pe = NULL;
    int n = attr_costs(d, type, attrs, &pe, costs, err, errlen), i;

    for (i = 0; i < n; i++) {
        uint32_t f = 0, c = 0;

        mdev_pool_get(d->mdev, pe->drv->name, costs[i].pool, &f, &c);
        if (costs[i].amount <= (free ? f : c))
            continue;
        snprintf(err, errlen,
                 "parent '%s' has no free resources for %s with these "
                 "attributes: it needs %u units of pool %s.%s, which has "
                 "%u %s (%s; umdevd --pool sets the pool)",
                 pe->drv->name, type, (unsigned int)costs[i].amount,
                 pe->drv->name, costs[i].pool, (unsigned int)(free ? f : c),
                 free ? "free" : "in all",
                 free ? "stop another instance, or ask for less"
                      : "ask for less");
        return -ENOSPC;
    }
    return n < 0 ? n : 0;
}

int
parents_claim(struct daemon *d, struct instance *inst, char *err, size_t errlen)
{
    struct umdev_parent_cost costs[UMDEV_PARENT_MAX_COSTS];
    const struct parent_entry *pe = NULL;
    int n, i, rc;

    inst->nattr_claims = 0;
    rc = parents_fit(d, inst->cfg.type, inst->cfg.attrs, true, err, errlen);
    if (rc < 0)
        return rc;
    n = attr_costs(d, inst->cfg.type, inst->cfg.attrs, &pe, costs, err, errlen);
    for (i = 0; i < n; i++) {
        rc = mdev_pool_claim(d->mdev, pe->drv->name, costs[i].pool,
                             costs[i].amount);
        if (rc < 0) {
            snprintf(err, errlen, "cannot claim %u units of pool %s.%s: %s",
                     (unsigned int)costs[i].amount, pe->drv->name,
                     costs[i].pool, strerror(-rc));
            parents_release(d, inst);
            return rc;
        }
        inst->attr_claims[i].pool = costs[i].pool;
        inst->attr_claims[i].amount = costs[i].amount;
        inst->nattr_claims = (size_t)i + 1;
    }
    return n < 0 ? n : 0;
}

void
parents_release(struct daemon *d, struct instance *inst)
{
    size_t i;

    for (i = 0; i < inst->nattr_claims; i++)
        mdev_pool_release(d->mdev, inst->cfg.parent, inst->attr_claims[i].pool,
                          inst->attr_claims[i].amount);
    inst->nattr_claims = 0;
}

uint32_t
parents_attr_available(struct daemon *d, const char *type)
{
    struct umdev_parent_cost costs[UMDEV_PARENT_MAX_COSTS];
    const struct parent_entry *pe = NULL;
    uint32_t avail = UINT32_MAX;
    char err[256];
    int n = attr_costs(d, type, NULL, &pe, costs, err, sizeof(err)), i;

    if (n < 0)
        return 0;
    for (i = 0; i < n; i++) {
        uint32_t f = 0, c = 0;

        mdev_pool_get(d->mdev, pe->drv->name, costs[i].pool, &f, &c);
        if (f / costs[i].amount < avail)
            avail = f / costs[i].amount;
    }
    return avail;
}
