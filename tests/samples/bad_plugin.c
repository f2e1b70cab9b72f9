/*
 * Broken parent plug-ins umdevd must refuse (tests/samples/run.py), one
 * per build flag:
 *   -DBAD_ABI     built for another parent ABI version
 *   -DBAD_LOAD    aborts while the daemon loads it
 *   -DBAD_CREATE  loads fine; its device crashes when built, so its
 *                 admission audit cannot pass
 *   -DOLD_ABI     as BAD_CREATE, but says parent ABI version 1, which
 *                 had no attribute descriptions: umdevd must load it and
 *                 never read the fields versions 2 and 3 added (set
 *                 to garbage here)
 */
#include <stdlib.h>

#include <umdev/parent.h>

static int
bad_create(const struct umdev_instance_args *args, struct umdev_instance *out)
{
    (void)args;
    (void)out;
    abort(); /* a device that cannot even be built */
}

static void
bad_destroy(struct umdev_instance *inst)
{
    (void)inst;
}

static const struct umdev_parent_pool pools[] = { { "units", 1 } };
static const struct umdev_parent_type types[] = {
    { .name = "loop",
      .description = "a broken plug-in for tests",
      .costs = { { "units", 1 } },
      .ncosts = 1 },
};
static const struct umdev_parent_ops ops = {
    .create = bad_create,
    .destroy = bad_destroy,
#ifdef OLD_ABI
    /* Past a version 1 (or 2) ops structure's end: never to be called. */
    .size_pools = (int (*)(const char *, uint32_t *, size_t))1,
    .attr_costs =
        (int (*)(const char *, struct json_object *, struct umdev_parent_cost *,
                 size_t, char *, size_t))1,
    .instance_data =
        (int (*)(const struct umdev_instance_args *, bool, char *, size_t))1,
#endif
};

#if defined(BAD_ABI)
#define BAD_NAME "badabi"
#define BAD_VERSION 999u
#elif defined(BAD_LOAD)
#define BAD_NAME "badload"
#define BAD_VERSION UMDEV_PARENT_ABI_VERSION
/* Runs at dlopen(), before the daemon could call anything. */
__attribute__((constructor)) static void
crash_at_load(void)
{
    abort();
}
#elif defined(OLD_ABI)
#define BAD_NAME "oldabi"
#define BAD_VERSION 1u
#else
#define BAD_NAME "badcreate"
#define BAD_VERSION UMDEV_PARENT_ABI_VERSION
#endif

static const struct umdev_parent bad_parent = {
    .abi_version = BAD_VERSION,
    .name = BAD_NAME,
    .pools = pools,
    .npools = 1,
    .types = types,
    .ntypes = 1,
    .ops = &ops,
#ifdef OLD_ABI
    /* Past a version 1 description's end: never to be read. */
    .attrs = (const struct umdev_parent_attr *)1,
    .nattrs = 99,
#endif
};

UMDEV_PARENT_PLUGIN(&bad_parent)
