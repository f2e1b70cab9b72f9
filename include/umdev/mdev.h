/*
 * Mediated-device bookkeeping: parents with resource pools, the types each
 * parent offers, and instances identified by UUID. The kernel's mdev sysfs
 * model in userspace: a type's available_instances is derived from its
 * parent's free resources whenever it is asked, never stored, so it moves
 * with instances (and access-path users) of every type of that parent.
 *
 * Pure bookkeeping: no processes, sockets or files (umdevd does those).
 * Not thread-safe; one registry per supervisor.
 */
#ifndef UMDEV_MDEV_H
#define UMDEV_MDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

#define UMDEV_MDEV_NAME_MAX 64   /* parent, pool and type names */
#define UMDEV_MDEV_MAX_POOLS 8   /* per parent */
#define UMDEV_MDEV_MAX_TYPES 16  /* per parent */
#define UMDEV_MDEV_MAX_COSTS 4   /* pools one type draws from */
#define UMDEV_UUID_STR_LEN 36

struct umdev_mdev_pool_desc {
    const char *name;  /* e.g. "queues", "ports" */
    uint32_t capacity;
};

struct umdev_mdev_cost {
    const char *pool;
    uint32_t amount; /* > 0 */
};

struct umdev_mdev_type_desc {
    const char *name;        /* short; the type is "<parent>-<name>" */
    const char *description; /* for people */
    const char *device_api;  /* "vfio-pci" */
    struct umdev_mdev_cost costs[UMDEV_MDEV_MAX_COSTS];
    size_t ncosts;
};

struct umdev_mdev_parent_desc {
    const char *name;
    const struct umdev_mdev_pool_desc *pools;
    size_t npools;
    const struct umdev_mdev_type_desc *types;
    size_t ntypes;
};

struct umdev_mdev;

int umdev_mdev_create(struct umdev_mdev **out);
void umdev_mdev_destroy(struct umdev_mdev *m);

/**
 * umdev_mdev_parent_add() - register a parent and its types. Everything is
 * copied. Return: 0; -EEXIST name taken; -EINVAL bad name (empty, too
 * long, characters other than [a-z0-9_]), unknown pool in a cost, zero
 * amount, too many pools/types; -ENOMEM.
 */
int umdev_mdev_parent_add(struct umdev_mdev *m,
                          const struct umdev_mdev_parent_desc *desc);

/* What a type looks like to an operator at this moment. */
struct umdev_mdev_type_info {
    char name[2 * UMDEV_MDEV_NAME_MAX + 2]; /* "<parent>-<type>" */
    char parent[UMDEV_MDEV_NAME_MAX + 1];
    const char *description; /* borrowed from the registry */
    const char *device_api;
    uint32_t available_instances;
};

/** Number of types over all parents; index them 0..n-1 (stable order). */
size_t umdev_mdev_type_count(const struct umdev_mdev *m);
int umdev_mdev_type_get(const struct umdev_mdev *m, size_t i,
                        struct umdev_mdev_type_info *out);
/** Look a type up by full name. Return: 0 or -ENOENT. */
int umdev_mdev_type_find(const struct umdev_mdev *m, const char *type,
                         struct umdev_mdev_type_info *out);

/** Free and total units of a parent's pool. Return: 0 or -ENOENT. */
int umdev_mdev_pool_get(const struct umdev_mdev *m, const char *parent,
                        const char *pool, uint32_t *free_units,
                        uint32_t *capacity);

/**
 * umdev_mdev_instance_add() - create an instance of @type with @uuid,
 * claiming the type's resources. All or nothing.
 * @uuid: RFC 4122 text form; normalised to lower case.
 * Return: 0; -EINVAL malformed UUID; -EEXIST UUID in use; -ENOENT unknown
 * type; -ENOSPC not enough free resources; -ENOMEM.
 */
int umdev_mdev_instance_add(struct umdev_mdev *m, const char *uuid,
                            const char *type);

/** Remove an instance and return its resources. -ENOENT if unknown. */
int umdev_mdev_instance_remove(struct umdev_mdev *m, const char *uuid);

/** The type of instance @uuid (full name, borrowed), or NULL. */
const char *umdev_mdev_instance_type(const struct umdev_mdev *m,
                                     const char *uuid);
size_t umdev_mdev_instance_count(const struct umdev_mdev *m);

/**
 * Claim/release raw pool units outside any instance (the direct access
 * path holds queues this way). Return: 0, -ENOENT, -ENOSPC, -EINVAL.
 */
int umdev_mdev_pool_claim(struct umdev_mdev *m, const char *parent,
                          const char *pool, uint32_t units);
int umdev_mdev_pool_release(struct umdev_mdev *m, const char *parent,
                            const char *pool, uint32_t units);

/**
 * umdev_uuid_parse() - validate and normalise an RFC 4122 UUID string
 * into @out (37 bytes). Return: 0 or -EINVAL.
 */
int umdev_uuid_parse(const char *text, char out[UMDEV_UUID_STR_LEN + 1]);
/** A fresh random (version 4) UUID. */
void umdev_uuid_generate(char out[UMDEV_UUID_STR_LEN + 1]);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_MDEV_H */
