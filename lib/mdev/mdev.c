/*
 * Parents, pools, types and instances. Free units live only in the pools;
 * a type's available_instances is computed from them on every query.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "mdev.h"

struct pool {
    char name[MDEV_NAME_MAX + 1];
    uint32_t capacity;
    uint32_t used;
};

struct cost {
    size_t pool; /* index into the parent's pools */
    uint32_t amount;
};

struct type {
    char name[2 * MDEV_NAME_MAX + 2]; /* full name */
    char *description;
    char *device_api;
    struct cost costs[MDEV_MAX_COSTS];
    size_t ncosts;
};

struct parent {
    char name[MDEV_NAME_MAX + 1];
    struct pool pools[MDEV_MAX_POOLS];
    size_t npools;
    struct type types[MDEV_MAX_TYPES];
    size_t ntypes;
};

struct instance {
    char uuid[MDEV_UUID_STR_LEN + 1];
    struct parent *parent;
    struct type *type;
};

struct mdev {
    struct parent **parents;
    size_t nparents;
    struct instance *instances; /* unsorted; counts stay in the thousands */
    size_t ninstances, cap_instances;
};

int
mdev_create(struct mdev **out)
{
    *out = calloc(1, sizeof(**out));
    return *out != NULL ? 0 : -ENOMEM;
}

static void
parent_free(struct parent *p)
{
    size_t i;

    if (p == NULL)
        return;
    for (i = 0; i < p->ntypes; i++) {
        free(p->types[i].description);
        free(p->types[i].device_api);
    }
    free(p);
}

void
mdev_destroy(struct mdev *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->nparents; i++)
        parent_free(m->parents[i]);
    free(m->parents);
    free(m->instances);
    free(m);
}

/* Names appear in type names, paths and CLI arguments: keep them plain. */
static bool
valid_name(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strlen(s);
    if (n == 0 || n > MDEV_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
              *s == '_'))
            return false;
    return true;
}

static struct parent *
find_parent(const struct mdev *m, const char *name)
{
    size_t i;

    for (i = 0; i < m->nparents; i++)
        if (strcmp(m->parents[i]->name, name) == 0)
            return m->parents[i];
    return NULL;
}

static int
find_pool(const struct parent *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->npools; i++)
        if (strcmp(p->pools[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int
add_type(struct parent *p, const struct mdev_type_desc *d)
{
    struct type *t = &p->types[p->ntypes];
    size_t i;

    if (!valid_name(d->name) || d->ncosts > MDEV_MAX_COSTS)
        return -EINVAL;
    for (i = 0; i < d->ncosts; i++) {
        int pool = d->costs[i].pool ? find_pool(p, d->costs[i].pool) : -1;

        if (pool < 0 || d->costs[i].amount == 0)
            return -EINVAL;
        t->costs[i] = (struct cost){ (size_t)pool, d->costs[i].amount };
    }
    t->ncosts = d->ncosts;
    strcpy(t->name, p->name);
    strcat(t->name, "-");
    strcat(t->name, d->name);
    for (i = 0; i < p->ntypes; i++)
        if (strcmp(p->types[i].name, t->name) == 0)
            return -EEXIST;
    t->description = strdup(d->description ? d->description : "");
    t->device_api = strdup(d->device_api ? d->device_api : "vfio-pci");
    if (t->description == NULL || t->device_api == NULL) {
        free(t->description);
        free(t->device_api);
        return -ENOMEM;
    }
    p->ntypes++;
    return 0;
}

int
mdev_parent_add(struct mdev *m,
                      const struct mdev_parent_desc *desc)
{
    struct parent *p, **v;
    size_t i;
    int rc;

    if (desc == NULL || !valid_name(desc->name) ||
        desc->npools > MDEV_MAX_POOLS ||
        desc->ntypes > MDEV_MAX_TYPES || desc->ntypes == 0)
        return -EINVAL;
    if (find_parent(m, desc->name) != NULL)
        return -EEXIST;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    strcpy(p->name, desc->name);
    for (i = 0; i < desc->npools; i++) {
        if (!valid_name(desc->pools[i].name) ||
            find_pool(p, desc->pools[i].name) >= 0) {
            rc = -EINVAL;
            goto fail;
        }
        strcpy(p->pools[i].name, desc->pools[i].name);
        p->pools[i].capacity = desc->pools[i].capacity;
        p->npools++;
    }
    for (i = 0; i < desc->ntypes; i++) {
        rc = add_type(p, &desc->types[i]);
        if (rc < 0)
            goto fail;
    }
    v = realloc(m->parents, (m->nparents + 1) * sizeof(*v));
    if (v == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    m->parents = v;
    m->parents[m->nparents++] = p;
    return 0;
fail:
    parent_free(p);
    return rc;
}

static uint32_t
available(const struct parent *p, const struct type *t)
{
    uint32_t best = UINT32_MAX;
    size_t i;

    for (i = 0; i < t->ncosts; i++) {
        const struct pool *pool = &p->pools[t->costs[i].pool];
        uint32_t n = (pool->capacity - pool->used) / t->costs[i].amount;

        if (n < best)
            best = n;
    }
    /* A type that costs nothing is limited only by the instance table. */
    return best;
}

static void
fill_info(const struct parent *p, const struct type *t,
          struct mdev_type_info *out)
{
    memset(out, 0, sizeof(*out));
    strcpy(out->name, t->name);
    strcpy(out->parent, p->name);
    out->description = t->description;
    out->device_api = t->device_api;
    out->available_instances = available(p, t);
}

size_t
mdev_type_count(const struct mdev *m)
{
    size_t i, n = 0;

    for (i = 0; i < m->nparents; i++)
        n += m->parents[i]->ntypes;
    return n;
}

int
mdev_type_get(const struct mdev *m, size_t idx,
                    struct mdev_type_info *out)
{
    size_t i;

    for (i = 0; i < m->nparents; i++) {
        const struct parent *p = m->parents[i];

        if (idx < p->ntypes) {
            fill_info(p, &p->types[idx], out);
            return 0;
        }
        idx -= p->ntypes;
    }
    return -ENOENT;
}

static int
lookup_type(const struct mdev *m, const char *name, struct parent **pp,
            struct type **tp)
{
    size_t i, j;

    if (name == NULL)
        return -ENOENT;
    for (i = 0; i < m->nparents; i++) {
        struct parent *p = m->parents[i];

        for (j = 0; j < p->ntypes; j++) {
            if (strcmp(p->types[j].name, name) == 0) {
                *pp = p;
                *tp = &p->types[j];
                return 0;
            }
        }
    }
    return -ENOENT;
}

int
mdev_type_find(const struct mdev *m, const char *name,
                     struct mdev_type_info *out)
{
    struct parent *p;
    struct type *t;
    int rc = lookup_type(m, name, &p, &t);

    if (rc == 0)
        fill_info(p, t, out);
    return rc;
}

int
mdev_pool_get(const struct mdev *m, const char *parent,
                    const char *pool, uint32_t *free_units,
                    uint32_t *capacity)
{
    const struct parent *p = find_parent(m, parent);
    int i = p != NULL ? find_pool(p, pool) : -1;

    if (i < 0)
        return -ENOENT;
    if (free_units != NULL)
        *free_units = p->pools[i].capacity - p->pools[i].used;
    if (capacity != NULL)
        *capacity = p->pools[i].capacity;
    return 0;
}

static struct instance *
find_instance(const struct mdev *m, const char *uuid)
{
    size_t i;

    for (i = 0; i < m->ninstances; i++)
        if (strcmp(m->instances[i].uuid, uuid) == 0)
            return &m->instances[i];
    return NULL;
}

int
mdev_uuid_parse(const char *text, char out[MDEV_UUID_STR_LEN + 1])
{
    uuid_t u;

    if (text == NULL || strlen(text) != MDEV_UUID_STR_LEN ||
        uuid_parse(text, u) != 0)
        return -EINVAL;
    uuid_unparse_lower(u, out);
    return 0;
}

void
mdev_uuid_generate(char out[MDEV_UUID_STR_LEN + 1])
{
    uuid_t u;

    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

int
mdev_instance_add(struct mdev *m, const char *uuid,
                        const char *type)
{
    char norm[MDEV_UUID_STR_LEN + 1];
    struct instance *inst;
    struct parent *p;
    struct type *t;
    size_t i;
    int rc;

    rc = mdev_uuid_parse(uuid, norm);
    if (rc < 0)
        return rc;
    if (find_instance(m, norm) != NULL)
        return -EEXIST;
    rc = lookup_type(m, type, &p, &t);
    if (rc < 0)
        return rc;
    /* Check every pool before touching any: nothing is half-claimed. */
    if (available(p, t) == 0)
        return -ENOSPC;
    if (m->ninstances == m->cap_instances) {
        size_t cap = m->cap_instances ? m->cap_instances * 2 : 64;

        inst = realloc(m->instances, cap * sizeof(*inst));
        if (inst == NULL)
            return -ENOMEM;
        m->instances = inst;
        m->cap_instances = cap;
    }
    for (i = 0; i < t->ncosts; i++)
        p->pools[t->costs[i].pool].used += t->costs[i].amount;
    inst = &m->instances[m->ninstances++];
    strcpy(inst->uuid, norm);
    inst->parent = p;
    inst->type = t;
    return 0;
}

int
mdev_instance_remove(struct mdev *m, const char *uuid)
{
    char norm[MDEV_UUID_STR_LEN + 1];
    struct instance *inst;
    size_t i;

    if (mdev_uuid_parse(uuid, norm) < 0)
        return -ENOENT;
    inst = find_instance(m, norm);
    if (inst == NULL)
        return -ENOENT;
    for (i = 0; i < inst->type->ncosts; i++)
        inst->parent->pools[inst->type->costs[i].pool].used -=
            inst->type->costs[i].amount;
    *inst = m->instances[--m->ninstances];
    return 0;
}

const char *
mdev_instance_type(const struct mdev *m, const char *uuid)
{
    char norm[MDEV_UUID_STR_LEN + 1];
    const struct instance *inst;

    if (mdev_uuid_parse(uuid, norm) < 0)
        return NULL;
    inst = find_instance(m, norm);
    return inst != NULL ? inst->type->name : NULL;
}

size_t
mdev_instance_count(const struct mdev *m)
{
    return m->ninstances;
}

static struct pool *
pool_of(struct mdev *m, const char *parent, const char *pool)
{
    struct parent *p = find_parent(m, parent);
    int i = p != NULL ? find_pool(p, pool) : -1;

    return i >= 0 ? &p->pools[i] : NULL;
}

int
mdev_pool_claim(struct mdev *m, const char *parent,
                      const char *pool, uint32_t units)
{
    struct pool *p = pool_of(m, parent, pool);

    if (p == NULL)
        return -ENOENT;
    if (units == 0)
        return -EINVAL;
    if (p->capacity - p->used < units)
        return -ENOSPC;
    p->used += units;
    return 0;
}

int
mdev_pool_release(struct mdev *m, const char *parent,
                        const char *pool, uint32_t units)
{
    struct pool *p = pool_of(m, parent, pool);

    if (p == NULL)
        return -ENOENT;
    if (units == 0 || units > p->used)
        return -EINVAL;
    p->used -= units;
    return 0;
}
