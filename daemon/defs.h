/*
 * Persistent definitions (STATEDIR/<parent>/<uuid>, one JSON object each,
 * laid out like mdevctl's) and the definition fields they hold: parsing
 * and checking them into a struct inst_config, writing them atomically,
 * reading them all at start. Pure persistence: nothing here creates,
 * starts or frees an instance.
 */
#ifndef UMDEVD_DEFS_H
#define UMDEVD_DEFS_H

#include <stdbool.h>
#include <stddef.h>

#include "umdevd.h"

/**
 * defs_init() - a fresh configuration of full type @type with @uuid (NULL:
 * a new random one), owned by the daemon's user, mode 0600, no attrs.
 * Return: 0; -ENOENT unknown type; -EINVAL malformed UUID; -ENOMEM; @err
 * filled on error. On success the caller puts @cfg->attrs.
 */
int defs_init(struct daemon *d, struct inst_config *cfg, const char *uuid,
              const char *type, char *err, size_t errlen);

/** @cfg as its definition file holds it: a new object. */
struct json_object *defs_to_json(const struct inst_config *cfg);

/**
 * defs_apply() - check the definition fields in @obj (uuid, parent, type,
 * start, owner, mode, attrs; unknown keys are refused) against @cfg's
 * identity, the type registry and the parent's attribute rules, then
 * apply them to @cfg. With @creating, attrs replace the old ones and may
 * not hold null; otherwise they are merged and null deletes a key. All or
 * nothing. Return: 0, or -EINVAL/-ENOENT with @err filled.
 */
int defs_apply(struct daemon *d, struct inst_config *cfg,
               struct json_object *obj, bool creating, char *err,
               size_t errlen);

/** Write @cfg's definition atomically (temporary file, fsync, rename,
 * fsync of the directory). Return: 0; -E2BIG when the file would be
 * larger than the loader takes (nothing written); or -errno; @err filled
 * on error. */
int defs_save(const char *statedir, const struct inst_config *cfg, char *err,
              size_t errlen);

/** Remove @cfg's definition file (durably). Return: 0 or -errno. */
int defs_remove(const char *statedir, const struct inst_config *cfg);

/*
 * Called by defs_load_all() for each definition that is a readable JSON
 * object whose name, uuid and parent agree with its place. Return 0 when
 * taken, or -errno with @err filled: the file is then reported and
 * skipped.
 */
typedef int defs_found_fn(struct daemon *d, const char *parent,
                          const char *uuid, struct json_object *obj, char *err,
                          size_t errlen);

/** Read every definition under STATEDIR, reporting each bad one with its
 * path and reason; remove temporary files of interrupted writes. */
void defs_load_all(struct daemon *d, defs_found_fn *found);

/**
 * defs_load_text() - what defs_load_all() checks of one definition file,
 * given its text: @name (the file's name) must be a lower-case UUID,
 * @text (NUL-terminated) a JSON object whose uuid, parent and type agree
 * with @name and @parent (the directory's name); then @found takes it.
 * Nothing is read from or written to disk (fuzz/defs_load.c calls it).
 * Return: 0 taken, or -errno with @err filled.
 */
int defs_load_text(struct daemon *d, const char *parent, const char *name,
                   const char *text, defs_found_fn *found, char *err,
                   size_t errlen);

/**
 * defs_from_json() - the configuration a definition object @obj read
 * from STATEDIR/@parent/@uuid describes: defs_init() with its type, then
 * defs_apply() of all its fields; the type must be one of @parent's.
 * Return: 0 (the caller puts @cfg->attrs), or -errno with @err filled
 * (@cfg holds nothing to free).
 */
int defs_from_json(struct daemon *d, const char *parent, const char *uuid,
                   struct json_object *obj, struct inst_config *cfg, char *err,
                   size_t errlen);

#endif /* UMDEVD_DEFS_H */
