/*
 * Mediated-device bookkeeping: parents with resource pools, the types each
 * parent offers, and instances identified by UUID. The kernel's mdev sysfs
 * model in userspace: a type's available_instances is derived from its
 * parent's free resources whenever it is asked, never stored, so it moves
 * with instances (and access-path users) of every type of that parent.
 *
 * Pure bookkeeping: no processes, sockets or files (umdevd does those).
 * Not thread-safe; one registry per supervisor. Not part of libumdev's
 * public API: umdevd and the tests link it (the umdev_mdev library).
 */
#ifndef MDEV_H
#define MDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MDEV_NAME_MAX 64   /* parent, pool and type names */
#define MDEV_MAX_POOLS 8   /* per parent */
#define MDEV_MAX_TYPES 16  /* per parent */
#define MDEV_MAX_COSTS 4   /* pools one type draws from */
#define MDEV_UUID_STR_LEN 36

struct mdev_pool_desc {
    const char *name;  /* e.g. "queues", "ports" */
    uint32_t capacity;
};

struct mdev_cost {
    const char *pool;
    uint32_t amount; /* > 0 */
};

struct mdev_type_desc {
    const char *name;        /* short; the type is "<parent>-<name>" */
    const char *description; /* for people */
    const char *device_api;  /* "vfio-pci" */
    struct mdev_cost costs[MDEV_MAX_COSTS];
    size_t ncosts;
};

struct mdev_parent_desc {
    const char *name;
    const struct mdev_pool_desc *pools;
    size_t npools;
    const struct mdev_type_desc *types;
    size_t ntypes;
};

struct mdev;

int mdev_create(struct mdev **out);
void mdev_destroy(struct mdev *m);

/**
 * mdev_parent_add() - register a parent and its types. Everything is
 * copied. Return: 0; -EEXIST name taken; -EINVAL bad name (empty, too
 * long, characters other than [a-z0-9_]), unknown pool in a cost, zero
 * amount, too many pools/types; -ENOMEM.
 */
int mdev_parent_add(struct mdev *m,
                          const struct mdev_parent_desc *desc);

/* What a type looks like to an operator at this moment. */
struct mdev_type_info {
    char name[2 * MDEV_NAME_MAX + 2]; /* "<parent>-<type>" */
    char parent[MDEV_NAME_MAX + 1];
    const char *description; /* borrowed from the registry */
    const char *device_api;
    uint32_t available_instances;
};

/** Number of types over all parents; index them 0..n-1 (stable order). */
size_t mdev_type_count(const struct mdev *m);
int mdev_type_get(const struct mdev *m, size_t i,
                        struct mdev_type_info *out);
/** Look a type up by full name. Return: 0 or -ENOENT. */
int mdev_type_find(const struct mdev *m, const char *type,
                         struct mdev_type_info *out);

/** Free and total units of a parent's pool. Return: 0 or -ENOENT. */
int mdev_pool_get(const struct mdev *m, const char *parent,
                        const char *pool, uint32_t *free_units,
                        uint32_t *capacity);

/**
 * mdev_instance_add() - create an instance of @type with @uuid,
 * claiming the type's resources. All or nothing.
 * @uuid: RFC 4122 text form; normalised to lower case.
 * Return: 0; -EINVAL malformed UUID; -EEXIST UUID in use; -ENOENT unknown
 * type; -ENOSPC not enough free resources; -ENOMEM.
 */
int mdev_instance_add(struct mdev *m, const char *uuid,
                            const char *type);

/** Remove an instance and return its resources. -ENOENT if unknown. */
int mdev_instance_remove(struct mdev *m, const char *uuid);

/** The type of instance @uuid (full name, borrowed), or NULL. */
const char *mdev_instance_type(const struct mdev *m,
                                     const char *uuid);
size_t mdev_instance_count(const struct mdev *m);

/**
 * Claim/release raw pool units outside any instance (the direct access
 * path holds queues this way). Return: 0, -ENOENT, -ENOSPC, -EINVAL.
 */
int mdev_pool_claim(struct mdev *m, const char *parent,
                          const char *pool, uint32_t units);
int mdev_pool_release(struct mdev *m, const char *parent,
                            const char *pool, uint32_t units);

/**
 * mdev_uuid_parse() - validate and normalise an RFC 4122 UUID string
 * into @out (37 bytes). Return: 0 or -EINVAL.
 */
int mdev_uuid_parse(const char *text, char out[MDEV_UUID_STR_LEN + 1]);
/** A fresh random (version 4) UUID. */
void mdev_uuid_generate(char out[MDEV_UUID_STR_LEN + 1]);

#endif /* MDEV_H */
