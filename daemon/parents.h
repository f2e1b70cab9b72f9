/*
 * The parent drivers umdevd serves: the built-in ones and the plug-ins it
 * loaded (plugins.c), all behind include/umdev/parent.h, registered with
 * lib/mdev (pools and types, with --pool overrides), and each type's
 * admission verdict (admission.c decides it; this file keeps it).
 */
#ifndef UMDEVD_PARENTS_H
#define UMDEVD_PARENTS_H

#include <stdbool.h>

#include "umdev/parent.h"
#include "umdevd.h"

enum admission_state {
    ADMIT_BUILTIN, /* shipped with umdevd: offered without a gate */
    ADMIT_WAIVED,  /* a plug-in under --admit any: offered unchecked */
    ADMIT_PENDING, /* a plug-in's type waiting for (or in) its audit */
    ADMIT_PASSED,  /* passed `umdevctl audit --conformance`: offered */
    ADMIT_REFUSED, /* failed it: never offered */
};

struct parent_type {
    char name[2 * MDEV_NAME_MAX + 2]; /* full: "<parent>-<type>" */
    enum admission_state admission;
    /* Why it was refused (the failed criteria and their evidence), or
     * what the audit found when it passed. */
    char verdict[1024];
};

struct parent_entry {
    const struct umdev_parent *drv;
    char plugin[PATH_MAX]; /* the shared object; "" for a built-in */
    void *dl;              /* its dlopen() handle */
    struct parent_type types[UMDEV_PARENT_MAX_TYPES];
    struct parent_entry *next;
};

/* A plug-in refused before any of its types could be known. */
struct refused_plugin {
    char path[PATH_MAX];
    char reason[512];
    struct refused_plugin *next;
};

struct parents {
    struct parent_entry *list; /* in registration order */
    struct refused_plugin *refused;
};

/** Register the built-in parents. Return: 0 or -errno (logged). */
int parents_create(struct daemon *d, struct parents **out);
void parents_destroy(struct parents *p);

/**
 * parents_add() - check @drv (ABI version, names, ops) and register it
 * with lib/mdev, applying the --pool overrides. @plugin: its path, or
 * NULL for a built-in; @dl: the handle to close with it (taken).
 * Return: 0; -EINVAL with @err filled; -EEXIST (a parent of that name).
 */
int parents_add(struct daemon *d, const struct umdev_parent *drv,
                const char *plugin, void *dl, char *err, size_t errlen);

/** Check every --pool override names a registered pool within its
 * capacity. Return: 0, or -EINVAL with @err filled. */
int parents_check_overrides(struct daemon *d, char *err, size_t errlen);

const struct parent_entry *parents_find(const struct parents *p,
                                        const char *name);
/** The attributes @pe describes for its full type name @type, at most
 * @max of them into @out (borrowed from the driver). Return: how many
 * (0 for a plug-in of ABI version 1, which describes none). */
size_t parents_type_attrs(const struct parent_entry *pe, const char *type,
                          const struct umdev_parent_attr **out, size_t max);

/** The parent entry and type record of full type name @type, or NULL. */
struct parent_type *parents_type(struct parents *p, const char *type,
                                 const struct parent_entry **entry);

/**
 * parents_type_offered() - may @type be defined and started? Built-in,
 * admitted and waived types are; pending and refused ones are not (@err
 * says why: the verdict, or that the audit is still running).
 * Return: 0, -ENOENT unknown type, -EACCES not admitted.
 */
int parents_type_offered(struct parents *p, const char *type, char *err,
                         size_t errlen);

/** @drv's operation @op if its ABI version has it (version 3 added
 * size_pools, attr_costs and instance_data at the end of the ops), else
 * NULL: an older plug-in's ops structure ends before them. */
#define PARENT_OP3(drv, op) ((drv)->abi_version >= 3 ? (drv)->ops->op : NULL)

/** @drv's screen operation, which version 5 added after instance_data;
 * NULL for an older parent. */
#define PARENT_OP5(drv, op) ((drv)->abi_version >= 5 ? (drv)->ops->op : NULL)

/** @drv's flags (UMDEV_PARENT_F_*): version 4 added them at the end of
 * struct umdev_parent, which an older plug-in's ends before. */
#define PARENT_FLAGS(drv) ((drv)->abi_version >= 4 ? (drv)->flags : 0u)

/** The data directory of parent @name, STATEDIR/<name>.data, into @out.
 * Return: 0 or -ENAMETOOLONG. */
int parents_datadir(const struct daemon *d, const char *name, char *out,
                    size_t len);

/**
 * parents_instance_data() - the data an instance of @cfg keeps across
 * runs (a backing file), through its parent's instance_data hook: @where
 * says what and where it is ("" for none: also for a parent without the
 * hook), and when @remove it is removed. Return: 0, or -errno with @where
 * saying why.
 */
int parents_instance_data(struct daemon *d, const struct inst_config *cfg,
                          bool remove, char *where, size_t len);

/**
 * parents_fit() - do the costs the attributes @attrs of an instance of
 * @type add to the type's fit the pools of its parent: their capacity
 * (@free false: define, modify) or what is free now (@free true: start)?
 * Return: 0; -ENOSPC or -EINVAL (a parent that reports a pool it lacks)
 * with @err saying which pool, how much was asked and how much there is.
 */
int parents_fit(struct daemon *d, const char *type, struct json_object *attrs,
                bool free, char *err, size_t errlen);

/** Claim what @inst's attributes cost (parents_fit() with @free true,
 * then the claim), remembering it in @inst. All or nothing. Return: 0 or
 * -errno with @err filled. */
int parents_claim(struct daemon *d, struct instance *inst, char *err,
                  size_t errlen);
/** Return what parents_claim() took. */
void parents_release(struct daemon *d, struct instance *inst);

/** How many instances of @type with no attributes its parent's
 * attribute-dependent pools still have room for; UINT32_MAX when they
 * do not limit it. */
uint32_t parents_attr_available(struct daemon *d, const char *type);

/** Name of an admission state for `umdevctl types`. */
const char *admission_state_name(enum admission_state s);

/* plugins.c */

/**
 * plugins_load() - load every "*.so" in @dir (sorted by name) after
 * probing it in a child process, so a plug-in that crashes or hangs while
 * loading is refused without harming the daemon. Refusals are logged and
 * kept (struct refused_plugin). Return: number loaded, or -errno when
 * @dir cannot be read.
 */
int plugins_load(struct daemon *d, const char *dir);

#endif /* UMDEVD_PARENTS_H */
