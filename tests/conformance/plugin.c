/*
 * Parent plug-ins in the kit (--plugin SO --type TYPE): load the shared
 * object the way umdevd does (ABI version checked) so the datapath check
 * can drive the type through the parent's own exercise() hook. The kit
 * counts the messages on its own client: what the plug-in claims about
 * its data path is measured, not taken on trust.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conform.h"

int
cf_plugin_load(struct conform *cf, char *err, size_t errlen)
{
    umdev_parent_plugin_fn *entry;
    const struct umdev_parent *p;
    size_t i, plen;

    cf->plugin_dl = dlopen(cf->plugin_path, RTLD_NOW | RTLD_LOCAL);
    if (cf->plugin_dl == NULL) {
        snprintf(err, errlen, "cannot load: %s", dlerror());
        return -EINVAL;
    }
    entry = (umdev_parent_plugin_fn *)dlsym(cf->plugin_dl,
                                            UMDEV_PARENT_PLUGIN_SYMBOL);
    p = entry != NULL ? entry() : NULL;
    if (p == NULL || p->abi_version < UMDEV_PARENT_ABI_MIN_VERSION ||
        p->abi_version > UMDEV_PARENT_ABI_VERSION || p->name == NULL ||
        p->ops == NULL) {
        snprintf(err, errlen,
                 "not a parent plug-in of ABI version %u to %u (no %s() or "
                 "another version)",
                 (unsigned int)UMDEV_PARENT_ABI_MIN_VERSION,
                 (unsigned int)UMDEV_PARENT_ABI_VERSION,
                 UMDEV_PARENT_PLUGIN_SYMBOL);
        cf_plugin_unload(cf);
        return -EINVAL;
    }
    /* The type by its full name, "<parent>-<name>". */
    plen = strlen(p->name);
    for (i = 0; i < p->ntypes; i++)
        if (strncmp(cf->type, p->name, plen) == 0 && cf->type[plen] == '-' &&
            strcmp(cf->type + plen + 1, p->types[i].name) == 0)
            break;
    if (i == p->ntypes) {
        snprintf(err, errlen, "parent '%s' has no type '%s'", p->name,
                 cf->type);
        cf_plugin_unload(cf);
        return -EINVAL;
    }
    cf->plugin = p;
    return 0;
}

void
cf_plugin_unload(struct conform *cf)
{
    cf->plugin = NULL;
    if (cf->plugin_dl != NULL)
        dlclose(cf->plugin_dl);
    cf->plugin_dl = NULL;
}
