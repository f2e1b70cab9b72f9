/*
 * The parent-driver interface: what a parent device tells umdevd about
 * itself (its resource pools, the types it offers and what each costs),
 * how it checks an instance's attributes, and how it builds and tears
 * down the device an instance's worker serves. The built-in parents
 * (devices/serial, devices/accel, devices/nvme, devices/display)
 * implement exactly this; so does a plug-in, a shared object umdevd
 * loads from its plug-in directory (docs/PLUGINS.md), which exports one
 * function:
 *
 *     UMDEV_PARENT_PLUGIN(&my_parent);
 *
 * A plug-in's types are offered only after they pass the admission gate
 * (`umdevctl audit TYPE --conformance`, docs/CRITERIA.md), which drives
 * each type's data path through the parent's exercise hook.
 *
 * Threading and processes: umdevd reads the description and calls
 * check_attrs() in the supervisor; create(), destroy() and describe() run
 * in the instance's worker process on its serving thread (create() while
 * still privileged, before the worker drops to the instance owner);
 * exercise() runs in the conformance kit. No call may keep global state
 * that another instance would see.
 */
#ifndef UMDEV_PARENT_H
#define UMDEV_PARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "umdev/dev.h"
#include "umdev/loop.h"
#include "umdev/pci.h"
#include "umdev/umdev.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

struct json_object; /* json-c */
struct umdev_client;

/* Bumped whenever a structure below changes shape; umdevd refuses a
 * plug-in built against a version it does not know. Version 2 added
 * struct umdev_parent's attrs and nattrs at its end; umdevd still loads
 * plug-ins of version 1 (from UMDEV_PARENT_ABI_MIN_VERSION on), which
 * describe no attributes. Version 3 added struct umdev_parent_ops'
 * size_pools, attr_costs and instance_data and struct
 * umdev_instance_args' datadir, each at its end: umdevd reads the new
 * operations only from a parent of version 3 or later (an older one's
 * ops structure ends before them), and an older parent never looks at
 * datadir. Version 4 added struct umdev_parent's flags and struct
 * umdev_instance_args' restoring, at their ends: umdevd reads flags only
 * from a parent of version 4 or later (an older one is not restartable),
 * and sets restoring only for one. Version 5 added struct
 * umdev_parent_ops' screen at its end, read only from a parent of
 * version 5 or later. */
#define UMDEV_PARENT_ABI_VERSION 5u
#define UMDEV_PARENT_ABI_MIN_VERSION 1u

/* Limits (docs/PLUGINS.md). Names are [a-z0-9_], 1..NAME_MAX bytes. */
#define UMDEV_PARENT_NAME_MAX 64
#define UMDEV_PARENT_MAX_POOLS 8
#define UMDEV_PARENT_MAX_TYPES 16
#define UMDEV_PARENT_MAX_COSTS 4
#define UMDEV_PARENT_MAX_ATTRS 32

/* A resource pool: "queues", "ports", "bytes" of video memory. */
struct umdev_parent_pool {
    const char *name;
    uint32_t capacity;
};

/* @amount units of pool @pool, claimed while an instance runs. */
struct umdev_parent_cost {
    const char *pool;
    uint32_t amount; /* > 0 */
};

struct umdev_parent_type {
    const char *name;        /* short; the full type is "<parent>-<name>" */
    const char *description; /* for people: what the guest sees */
    struct umdev_parent_cost costs[UMDEV_PARENT_MAX_COSTS];
    size_t ncosts;
};

/*
 * An instance attribute as people read about it (`umdevctl define
 * --help`, `umdevctl types --json`); check_attrs() alone decides what is
 * accepted.
 */
struct umdev_parent_attr {
    const char *name; /* the key of --attr KEY=VALUE */
    /* The types it applies to, by short name separated by blanks
     * ("2wq 4wq"); NULL: every type of the parent. */
    const char *types;
    const char *help; /* its values and default, one line */
};

/* What umdevd hands create() for one instance. Everything is borrowed
 * for the duration of the call, except @loop and @log, which outlive the
 * instance. */
struct umdev_instance_args {
    const char *type; /* the full type name, e.g. "serial-2port" */
    const char *uuid; /* the instance's UUID, lower case */
    /* Where host endpoints go unless the attributes say otherwise, named
     * "<uuid>.*" (umdevd removes them when the worker is gone); hand
     * what you create there to @uid/@gid, the instance owner, without
     * following links (lchown). Anywhere else, create as the owner
     * (setfsuid/setfsgid): docs/SANDBOX.md, "Host ends". */
    const char *rundir;
    uid_t uid;
    gid_t gid;
    struct json_object *attrs; /* checked by check_attrs(); may be NULL */
    struct umdev_loop *loop;   /* the worker's loop: host endpoints go here */
    const struct umdev_logger *log; /* prefixes lines with the UUID */
    /* Since ABI version 3, for a parent with an instance_data
     * operation (NULL otherwise): its own directory under umdevd's
     * STATEDIR ("STATEDIR/<parent>.data", mode 0700, root's), where
     * data that outlives a run (a disk's backing file) belongs by
     * default. It exists before any call that gets it. */
    const char *datadir;
    /* Since ABI version 4, for a restartable parent
     * (UMDEV_PARENT_F_RESTARTABLE): true when the worker builds the
     * device to restore a handover into it (`umdevctl restart`) rather
     * than to start it. The previous worker still serves, and host
     * endpoints it carries through the handover
     * (umdev_dev_set_host_end_ops()) must not be created or touched by
     * path: they arrive with the package. */
    bool restoring;
};

/* Pixel layouts of a screen (struct umdev_screen). */
enum umdev_screen_format {
    UMDEV_SCREEN_FMT_NONE,     /* nothing shown */
    UMDEV_SCREEN_FMT_RGB555,   /* 16-bit little-endian words, x:1 r:5 g:5 b:5 */
    UMDEV_SCREEN_FMT_RGB565,   /* 16-bit little-endian words, r:5 g:6 b:5 */
    UMDEV_SCREEN_FMT_BGR888,   /* bytes B, G, R */
    UMDEV_SCREEN_FMT_XRGB8888, /* bytes B, G, R, X */
    UMDEV_SCREEN_FMT_BGRX8888, /* bytes X, R, G, B */
};

/*
 * What a display-like device shows (the screen operation): its pixels
 * lie in the shared memory of region @region (UMDEV_REGION_F_* with
 * shm), the top left one at byte @offset, rows @pitch bytes apart.
 * Shown (@enabled and not @blanked) or not, the geometry must lie inside
 * the region: a reader maps it and trusts nothing else, but checks.
 */
struct umdev_screen {
    bool enabled; /* a mode is set; otherwise the rest is 0 */
    bool blanked; /* a mode is set and the screen is blanked */
    uint32_t region;
    uint64_t offset;
    uint32_t width, height, pitch;
    enum umdev_screen_format format;
};

/* A device a parent built: what the worker serves and audits read. */
struct umdev_instance {
    struct umdev_dev *dev;
    struct umdev_pci *pci; /* its lib/pci config space; NULL if none */
    void *priv;            /* the parent's */
};

/* What the conformance kit hands exercise(): a client attached to a fresh
 * instance of @type, and guest memory it has mapped for DMA. Every
 * message the hook causes on @client is counted against the type's
 * declared data path. */
struct umdev_exercise_args {
    struct umdev_client *client;
    const char *type;
    void *guest;         /* the kit's view of the guest memory */
    uint64_t guest_iova; /* where the device sees it */
    uint64_t guest_size;
    uint64_t units; /* I/O to move, in the profile's data_path_unit */
    const struct umdev_logger *log;
};

struct umdev_exercise_result {
    uint64_t units; /* moved and verified */
    /* Messages that move no data: spent waiting (polls that found the
     * device not ready, doorbells that wake a sleeping device) or
     * bringing the device up and down around the load. Reported, and
     * not counted against the bound. */
    uint64_t waiting_msgs;
    char note[160]; /* what was driven, for the evidence */
};

struct umdev_parent_ops {
    /*
     * Check @attrs for an instance of @type (full name). NULL @attrs
     * means none. On error fill @err (@errlen bytes) with what is wrong
     * and how to fix it. Return: 0 or -EINVAL. Must not block.
     */
    int (*check_attrs)(const char *type, struct json_object *attrs, char *err,
                       size_t errlen);
    /* Build the device for @args->type into @out. Return: 0 or -errno
     * (say why through @args->log). */
    int (*create)(const struct umdev_instance_args *args,
                  struct umdev_instance *out);
    /* Tear down what create() built; @inst's fields as create() set them.
     * After it returns nothing touches guest memory or the loop. */
    void (*destroy)(struct umdev_instance *inst);
    /* Facts for `umdevctl info` under "endpoints" (host ends, engine
     * settings): a new JSON object. May be NULL. */
    struct json_object *(*describe)(struct umdev_instance *inst);
    /*
     * The conformance kit's load generator for this parent's types: move
     * @args->units units of I/O through the device the way its guest
     * driver would, verify them, and report in @out. Required for a
     * plug-in to pass admission (criterion 2 measures it). Return: 0 or
     * -errno (with @out->note saying what failed).
     */
    int (*exercise)(const struct umdev_exercise_args *args,
                    struct umdev_exercise_result *out);
    /* The operations below exist since ABI version 3; umdevd calls them
     * only for a parent of that version or later. Each may be NULL. */
    /*
     * Size the pools for this machine, once, before any instance: @cap
     * holds the declared capacities (@npools of them, in the order of
     * struct umdev_parent's pools); lower any that the host cannot back
     * (never raise one). @datadir: as in struct umdev_instance_args
     * (NULL for a parent without instance_data).
     * `umdevd --pool` applies afterwards, up to the declared capacity.
     * Must not block for long. Return: 0 or -errno (umdevd then keeps
     * the declared capacities and says so).
     */
    int (*size_pools)(const char *datadir, uint32_t *cap, size_t npools);
    /*
     * What an instance of @type (full name) with @attrs (checked by
     * check_attrs(); NULL: none) claims while it runs on top of its
     * type's fixed costs: at most @max costs into @out, each naming a
     * pool of this parent with an amount above 0. umdevd refuses a
     * define or modify whose costs exceed a pool's capacity and a start
     * whose costs exceed what is free, with ENOSPC; with NULL @attrs the
     * result is what `umdevctl types` counts available_instances by.
     * Return: the number of costs, or -EINVAL with @err filled.
     */
    int (*attr_costs)(const char *type, struct json_object *attrs,
                      struct umdev_parent_cost *out, size_t max, char *err,
                      size_t errlen);
    /*
     * The data an instance keeps across runs (a backing file): say in
     * @where (@len bytes) what and where it is ("" for none), and when
     * @remove is true remove it (data already gone is no error). Called
     * by umdevd's supervisor at undefine, never while the instance runs;
     * @args as create() gets them, without @loop. Return: 0 or -errno
     * with @where saying why.
     */
    int (*instance_data)(const struct umdev_instance_args *args, bool remove,
                         char *where, size_t len);
    /*
     * Since ABI version 5; may be NULL (the device shows no screen):
     * what @inst shows now, into @out (`umdevctl screenshot`). Called
     * in the worker on its serving thread, sandboxed. Return: 0 or
     * -errno.
     */
    int (*screen)(struct umdev_instance *inst, struct umdev_screen *out);
};

struct umdev_parent {
    uint32_t abi_version; /* UMDEV_PARENT_ABI_VERSION */
    const char *name;
    const struct umdev_parent_pool *pools;
    size_t npools;
    const struct umdev_parent_type *types;
    size_t ntypes;
    const struct umdev_parent_ops *ops;
    /* Since ABI version 2: the attributes check_attrs() takes, for
     * people (at most UMDEV_PARENT_MAX_ATTRS; may be none). */
    const struct umdev_parent_attr *attrs;
    size_t nattrs;
    /* Since ABI version 4: UMDEV_PARENT_F_*; unknown bits are refused. */
    uint32_t flags;
};

/*
 * struct umdev_parent's flags (since ABI version 4).
 *
 * UMDEV_PARENT_F_RESTARTABLE: `umdevctl restart` may replace an
 * instance's worker under its VMM (docs/CLI.md "restart"). Declare it
 * only if everything the device's guest and host users depend on is in
 * what a handover carries (docs/PROTOCOL.md "Handover"): its migration
 * hooks save and load all its state, its host endpoints are handed over
 * through umdev_dev_set_host_end_ops() (or are files it opens again by
 * path), and create() honours umdev_instance_args' restoring. Without
 * it, restart is refused with ENOTSUP.
 */
#define UMDEV_PARENT_F_RESTARTABLE (1u << 0)
#define UMDEV_PARENT_F_ALL UMDEV_PARENT_F_RESTARTABLE

/* The symbol umdevd looks up in a plug-in, and its type. */
#define UMDEV_PARENT_PLUGIN_SYMBOL "umdev_parent_plugin"
typedef const struct umdev_parent *umdev_parent_plugin_fn(void);

#ifdef __cplusplus
#define UMDEV_PARENT_LINKAGE_ extern "C"
#else
#define UMDEV_PARENT_LINKAGE_
#endif

/* In a plug-in's source, once, at file scope: export @parent (a const
 * struct umdev_parent *) under the symbol umdevd looks for. */
#define UMDEV_PARENT_PLUGIN(parent)                                            \
    UMDEV_PARENT_LINKAGE_ __attribute__((visibility("default")))               \
    const struct umdev_parent *                                                \
    umdev_parent_plugin(void);                                                 \
    UMDEV_PARENT_LINKAGE_ const struct umdev_parent *umdev_parent_plugin(void) \
    {                                                                          \
        return (parent);                                                       \
    }

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_PARENT_H */
