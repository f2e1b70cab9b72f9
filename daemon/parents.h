/*
 * Built-in parent drivers as the daemon sees them: resource pools and
 * types for lib/mdev, attribute validation for definitions, and the
 * factory a worker calls to build the device it serves.
 */
#ifndef UMDEVD_PARENTS_H
#define UMDEVD_PARENTS_H

#include <sys/types.h>

#include <json-c/json.h>

#include "umdev/dev.h"
#include "mdev.h"
#include "umdev/pci.h"

/* A device instance built inside a worker. */
struct parent_instance {
    struct umdev_dev *dev;
    /* Its lib/pci config space (audits read it), owned by the parent;
     * NULL if it has none. */
    struct umdev_pci *pci;
    void *priv;
    void (*destroy)(struct parent_instance *pi);
    /* Extra facts for `umdevctl info` (host endpoints, ...); may be NULL.
     * Returns a new JSON object. */
    struct json_object *(*describe)(struct parent_instance *pi);
};

struct parent_driver {
    struct mdev_parent_desc desc;
    /* Check a definition's attrs for @type; fill @err (size @errlen) with
     * what is wrong and how to fix it. NULL attrs means none. */
    int (*check_attrs)(const char *type, struct json_object *attrs,
                       char *err, size_t errlen);
    /* Build the device for instance @uuid inside its worker (still
     * privileged). @rundir is where host endpoints go by default; they
     * must be handed to @uid/@gid, the instance owner. */
    int (*create)(const char *type, const char *uuid, const char *rundir,
                  uid_t uid, gid_t gid, struct json_object *attrs,
                  struct umdev_loop *loop,
                  const struct umdev_logger *log,
                  struct parent_instance **out);
};

/** The built-in parents, NULL-terminated. */
const struct parent_driver *const *parents_builtin(void);
const struct parent_driver *parents_find(const char *name);

#endif /* UMDEVD_PARENTS_H */
