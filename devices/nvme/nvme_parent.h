/*
 * The nvme parent (parent.c): its description for umdevd, and the
 * attribute parsing and backing-file preparation the tests reach too.
 */
#ifndef UMDEV_NVME_PARENT_H
#define UMDEV_NVME_PARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "umdev/parent.h"

extern const struct umdev_parent nvme_parent;

struct nvme_settings {
    uint64_t size;            /* namespace bytes */
    bool null;                /* backend=null */
    char dir[4096];           /* backing directory */
    bool dir_set;             /* named by the definition (attribute dir) */
    unsigned int poll_max_us; /* the poller's longest window */
};

/** Check @attrs (NULL: none) and return the settings, defaults filled. */
int nvme_settings_parse(struct json_object *attrs, struct nvme_settings *out,
                        char *err, size_t errlen);

/**
 * nvme_backing_open() - make @s->dir (0700) and the sparse file
 * "<dir>/<uuid>.img" of @s->size bytes (kept if it exists and is not
 * larger), owned by @uid/@gid; its path into @path.
 * Return: 0 or -errno with @err saying why.
 */
int nvme_backing_open(const struct nvme_settings *s, const char *uuid,
                      uid_t uid, gid_t gid, char *path, size_t pathlen,
                      char *err, size_t errlen);

#endif /* UMDEV_NVME_PARENT_H */
