/*
 * Persistent definitions (defs.h): STATEDIR/<parent>/<uuid>, one JSON
 * object each, laid out like mdevctl's. Writes are atomic (temporary file,
 * fsync, rename, fsync of the directory) so a daemon killed at any moment
 * leaves either the old or the new file, never half of one. Loading
 * reports every bad file with its path and reason and skips it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "defs.h"
#include "parents.h"

/* The largest definition file read at start (docs/CONTROL.md, Limits);
 * defs_save() refuses to write a larger one, which would be skipped. */
#define DEF_MAX_SIZE (64 * 1024)

static int
fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int
defs_init(struct daemon *d, struct inst_config *cfg, const char *uuid,
          const char *type, char *err, size_t errlen)
{
    struct mdev_type_info info;

    memset(cfg, 0, sizeof(*cfg));
    if (mdev_type_find(d->mdev, type, &info) < 0) {
        snprintf(err, errlen, "unknown type '%s' (umdevctl types lists them)",
                 type);
        return -ENOENT;
    }
    if (uuid == NULL) {
        mdev_uuid_generate(cfg->uuid);
    } else if (mdev_uuid_parse(uuid, cfg->uuid) < 0) {
        snprintf(err, errlen,
                 "'%s' is not a UUID (expected the form "
                 "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                 uuid);
        return -EINVAL;
    }
    snprintf(cfg->parent, sizeof(cfg->parent), "%s", info.parent);
    snprintf(cfg->type, sizeof(cfg->type), "%s", info.name);
    /* Owner defaults to whoever runs the daemon (root in production). */
    cfg->uid = geteuid();
    cfg->gid = getegid();
    cfg->mode = 0600;
    cfg->attrs = json_object_new_object();
    if (cfg->attrs == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

struct json_object *
defs_to_json(const struct inst_config *cfg)
{
    struct json_object *o = json_object_new_object();
    struct json_object *owner = json_object_new_object();
    char mode[8];

    json_object_object_add(o, "uuid", json_object_new_string(cfg->uuid));
    json_object_object_add(o, "parent", json_object_new_string(cfg->parent));
    json_object_object_add(o, "type", json_object_new_string(cfg->type));
    json_object_object_add(
        o, "start",
        json_object_new_string(cfg->auto_start ? "auto" : "manual"));
    json_object_object_add(owner, "uid", json_object_new_int64(cfg->uid));
    json_object_object_add(owner, "gid", json_object_new_int64(cfg->gid));
    json_object_object_add(o, "owner", owner);
    snprintf(mode, sizeof(mode), "%04o", (unsigned int)cfg->mode);
    json_object_object_add(o, "mode", json_object_new_string(mode));
    json_object_object_add(o, "attrs", json_object_get(cfg->attrs));
    return o;
}

int
defs_save(const char *statedir, const struct inst_config *cfg, char *err,
          size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX];
    struct json_object *o;
    const char *text;
    size_t len, off = 0;
    int fd, rc;

    if (snprintf(dir, sizeof(dir), "%s/%s", statedir, cfg->parent) >=
            (int)sizeof(dir) ||
        snprintf(path, sizeof(path), "%s/%s", dir, cfg->uuid) >=
            (int)sizeof(path) ||
        snprintf(tmp, sizeof(tmp), "%s/.%s.tmpXXXXXX", dir, cfg->uuid) >=
            (int)sizeof(tmp))
        return -ENAMETOOLONG;
    o = defs_to_json(cfg);
    text = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text == NULL) {
        json_object_put(o);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    len = strlen(text);
    /* The file is the text and a newline. Measured as written, escapes
     * included (a control character takes six bytes), since that is what
     * the next start reads; refused before anything is touched. */
    if (len + 1 > DEF_MAX_SIZE) {
        snprintf(err, errlen,
                 "the definition would be a file of %zu bytes, more than "
                 "the %d a definition may have (its attributes are too "
                 "long)",
                 len + 1, DEF_MAX_SIZE);
        json_object_put(o);
        return -E2BIG;
    }
    rc = mkdir_p(dir, 0755);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
        json_object_put(o);
        return rc;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot write in %s: %s", dir, strerror(-rc));
        json_object_put(o);
        return rc;
    }
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        off += (size_t)n;
    }
    rc = off == len && write(fd, "\n", 1) == 1 && fchmod(fd, 0644) == 0 &&
                 fsync(fd) == 0
             ? 0
             : -errno;
    json_object_put(o);
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(dir);
    if (rc < 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
    }
    return rc;
}

int
defs_remove(const char *statedir, const struct inst_config *cfg)
{
    char dir[PATH_MAX], path[PATH_MAX];

    if (snprintf(dir, sizeof(dir), "%s/%s", statedir, cfg->parent) >=
            (int)sizeof(dir) ||
        snprintf(path, sizeof(path), "%s/%s", dir, cfg->uuid) >=
            (int)sizeof(path))
        return -ENAMETOOLONG;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    return fsync_dir(dir);
}

/* A JSON value as text for a message; never NULL (null prints "null"). */
static const char *
json_text(struct json_object *v)
{
    return v != NULL ? json_object_get_string(v) : "null";
}

/* owner.@key, if there, into *@out: a user or group ID. */
static int
parse_id(struct json_object *owner, const char *key, uint32_t *out, char *err,
         size_t errlen)
{
    struct json_object *v;

    if (!json_object_object_get_ex(owner, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0 || json_object_get_int64(v) > 0x7fffffff) {
        snprintf(err, errlen, "owner.%s must be a non-negative integer", key);
        return -EINVAL;
    }
    *out = (uint32_t)json_object_get_int64(v);
    return 0;
}

static int
parse_owner(struct json_object *o, uid_t *uid, gid_t *gid, char *err,
            size_t errlen)
{
    struct json_object *v;

    if (!json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen,
                 "owner must be an object like "
                 "{\"user\": \"qemu\"} or {\"uid\": 107}");
        return -EINVAL;
    }
    if (parse_id(o, "uid", uid, err, errlen) < 0 ||
        parse_id(o, "gid", gid, err, errlen) < 0)
        return -EINVAL;
    if (json_object_object_get_ex(o, "user", &v)) {
        struct passwd *pw = json_object_is_type(v, json_type_string)
                                ? getpwnam(json_object_get_string(v))
                                : NULL;

        if (pw == NULL) {
            snprintf(err, errlen, "owner.user '%s' does not exist",
                     json_text(v));
            return -EINVAL;
        }
        *uid = pw->pw_uid;
        if (!json_object_object_get_ex(o, "group", NULL) &&
            !json_object_object_get_ex(o, "gid", NULL))
            *gid = pw->pw_gid;
    }
    if (json_object_object_get_ex(o, "group", &v)) {
        struct group *gr = json_object_is_type(v, json_type_string)
                               ? getgrnam(json_object_get_string(v))
                               : NULL;

        if (gr == NULL) {
            snprintf(err, errlen, "owner.group '%s' does not exist",
                     json_text(v));
            return -EINVAL;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

/* Merge attrs: a null value deletes the key. */
static void
merge_attrs(struct json_object *dst, struct json_object *src)
{
    json_object_object_foreach(src, key, val)
    {
        if (val == NULL)
            json_object_object_del(dst, key);
        else
            json_object_object_add(dst, key, json_object_get(val));
    }
}

int
defs_apply(struct daemon *d, struct inst_config *cfg, struct json_object *obj,
           bool creating, char *err, size_t errlen)
{
    static const char *const known[] = { "uuid",  "parent", "type",  "start",
                                         "owner", "mode",   "attrs", NULL };
    const struct parent_entry *pe = parents_find(d->parents, cfg->parent);
    struct mdev_type_info ti;
    struct json_object *v, *attrs;
    char type[sizeof(cfg->type)];
    bool auto_start = cfg->auto_start;
    uid_t uid = cfg->uid;
    gid_t gid = cfg->gid;
    mode_t mode = cfg->mode;
    int rc;

    rc = json_only_keys(obj, known, "key", err, errlen);
    if (rc < 0)
        return rc;
    /* Who an instance is and where it lives never change; a definition
     * file or a request saying otherwise is refused, not ignored. */
    if (json_object_object_get_ex(obj, "uuid", &v) &&
        (!json_object_is_type(v, json_type_string) ||
         strcasecmp(json_object_get_string(v), cfg->uuid) != 0)) {
        snprintf(err, errlen, "uuid '%s' does not match instance %s",
                 json_text(v), cfg->uuid);
        return -EINVAL;
    }
    if (json_object_object_get_ex(obj, "parent", &v) &&
        (!json_object_is_type(v, json_type_string) ||
         strcmp(json_object_get_string(v), cfg->parent) != 0)) {
        snprintf(err, errlen,
                 "parent '%s' does not match instance %s of parent '%s' (a "
                 "definition cannot move: undefine it and define it anew)",
                 json_text(v), cfg->uuid, cfg->parent);
        return -EINVAL;
    }
    snprintf(type, sizeof(type), "%s", cfg->type);
    if (json_object_object_get_ex(obj, "type", &v)) {
        char full[sizeof(type)];
        int found = -ENOENT;

        /* "2port" names the same type as "serial-2port". */
        if (json_object_is_type(v, json_type_string) &&
            full_type_name(cfg->parent, json_object_get_string(v), full,
                           sizeof(full)) == 0)
            found = mdev_type_find(d->mdev, full, &ti);
        if (found < 0 || strcmp(ti.parent, cfg->parent) != 0) {
            snprintf(err, errlen,
                     "type '%s' is not a type of parent '%s' (umdevctl "
                     "types -p %s lists them)",
                     json_text(v), cfg->parent, cfg->parent);
            return -EINVAL;
        }
        snprintf(type, sizeof(type), "%s", ti.name);
    }
    if (json_object_object_get_ex(obj, "start", &v)) {
        const char *s = json_object_get_string(v);

        if (!json_object_is_type(v, json_type_string) ||
            (strcmp(s, "auto") != 0 && strcmp(s, "manual") != 0)) {
            snprintf(err, errlen, "start must be \"auto\" or \"manual\"");
            return -EINVAL;
        }
        auto_start = strcmp(s, "auto") == 0;
    }
    if (json_object_object_get_ex(obj, "owner", &v)) {
        rc = parse_owner(v, &uid, &gid, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (json_object_object_get_ex(obj, "mode", &v)) {
        const char *s = json_object_get_string(v);
        char *end;
        long m;

        m = json_object_is_type(v, json_type_string) ? strtol(s, &end, 8) : -1;
        if (m < 0 || m > 0777 || *end != '\0' || (m & 0600) != 0600) {
            snprintf(err, errlen,
                     "mode must be an octal string such as "
                     "\"0600\" or \"0660\" (owner rw required)");
            return -EINVAL;
        }
        /* Connecting to a UNIX socket needs write permission: o+w would
         * hand the device to every local user. */
        if (m & 0002) {
            snprintf(err, errlen,
                     "mode %04lo lets every user connect to the instance "
                     "(world-writable); grant access through the owner "
                     "and group instead, such as \"0660\"",
                     m);
            return -EINVAL;
        }
        mode = (mode_t)m;
    }
    attrs = json_object_get(cfg->attrs);
    if (json_object_object_get_ex(obj, "attrs", &v)) {
        if (!json_object_is_type(v, json_type_object)) {
            json_object_put(attrs);
            snprintf(err, errlen, "attrs must be an object");
            return -EINVAL;
        }
        json_object_put(attrs);
        if (creating) {
            /* null deletes an attribute in a modify; in a definition it
             * is a value of the wrong type. */
            json_object_object_foreach(v, akey, aval)
            {
                if (aval == NULL) {
                    snprintf(err, errlen,
                             "attribute %s is null (null removes an "
                             "attribute only in modify)",
                             akey);
                    return -EINVAL;
                }
            }
        }
        /* Deleting what is not there would "succeed" while the caller
         * meant another key (a typo, or an mdevctl option taken for a
         * key): say so, and change nothing. */
        json_object_object_foreach(v, dkey, dval)
        {
            if (!creating && dval == NULL &&
                !json_object_object_get_ex(cfg->attrs, dkey, NULL)) {
                snprintf(
                    err, errlen,
                    "attribute '%s' is not set in the definition of %s, "
                    "so it cannot be removed (set: %s)",
                    dkey, cfg->uuid,
                    json_object_object_length(cfg->attrs) > 0
                        ? json_object_to_json_string_ext(
                              cfg->attrs, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE)
                        : "none");
                return -EINVAL;
            }
        }
        attrs = json_object_new_object();
        if (!creating)
            merge_attrs(attrs, cfg->attrs);
        merge_attrs(attrs, v);
    }
    if (pe != NULL && pe->drv->ops->check_attrs != NULL) {
        rc = pe->drv->ops->check_attrs(type, attrs, err, errlen);
        if (rc < 0) {
            json_object_put(attrs);
            return rc;
        }
    }
    /* Everything checked: apply. */
    snprintf(cfg->type, sizeof(cfg->type), "%s", type);
    cfg->auto_start = auto_start;
    cfg->uid = uid;
    cfg->gid = gid;
    cfg->mode = mode;
    json_object_put(cfg->attrs);
    cfg->attrs = attrs;
    return 0;
}

static char *
read_small_file(const char *path, char *err, size_t errlen)
{
    struct stat st;
    char *buf;
    ssize_t n;
    int fd;

    /* O_NONBLOCK: a FIFO planted here must not hang the daemon's start
     * (it is refused below as not a regular file). */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size > DEF_MAX_SIZE) {
        snprintf(err, errlen, "not a regular file of at most %d bytes",
                 DEF_MAX_SIZE);
        close(fd);
        return NULL;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    n = read(fd, buf, (size_t)st.st_size);
    close(fd);
    if (n != st.st_size) {
        snprintf(err, errlen, "short read");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* The daemon writes lower-case UUIDs; any other name would be written
 * back under a second name by the next modify. */
static int
check_name(const char *name, char *err, size_t errlen)
{
    char norm[MDEV_UUID_STR_LEN + 1];

    if (mdev_uuid_parse(name, norm) < 0 || strcmp(norm, name) != 0) {
        snprintf(err, errlen,
                 "the file name is not a lower-case UUID (definitions are "
                 "named STATEDIR/PARENT/UUID)");
        return -EINVAL;
    }
    return 0;
}

int
defs_load_text(struct daemon *d, const char *parent, const char *name,
               const char *text, defs_found_fn *found, char *err, size_t errlen)
{
    struct json_object *obj = NULL, *v;
    int rc = -EINVAL;

    if (check_name(name, err, errlen) < 0)
        goto bad;
    obj = json_tokener_parse(text);
    if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
        snprintf(err, errlen, "not a JSON object");
        goto bad;
    }
    if (!json_object_object_get_ex(obj, "uuid", &v) ||
        !json_object_is_type(v, json_type_string) ||
        strcasecmp(json_object_get_string(v), name) != 0) {
        snprintf(err, errlen, "its uuid does not match the file name");
        goto bad;
    }
    if (!json_object_object_get_ex(obj, "parent", &v) ||
        !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), parent) != 0) {
        snprintf(err, errlen, "its parent does not match the directory");
        goto bad;
    }
    if (!json_object_object_get_ex(obj, "type", &v) ||
        !json_object_is_type(v, json_type_string)) {
        snprintf(err, errlen, "no type");
        goto bad;
    }
    rc = found(d, parent, name, obj, err, errlen);
bad:
    json_object_put(obj);
    return rc < 0 ? rc : 0;
}

int
defs_from_json(struct daemon *d, const char *parent, const char *uuid,
               struct json_object *obj, struct inst_config *cfg, char *err,
               size_t errlen)
{
    int rc;

    rc = defs_init(d, cfg, uuid, json_str(obj, "type"), err, errlen);
    if (rc < 0)
        return rc;
    if (strcmp(cfg->parent, parent) != 0) {
        snprintf(err, errlen, "type %s is not of parent %s", cfg->type, parent);
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = defs_apply(d, cfg, obj, true, err, errlen);
    if (rc < 0) {
        json_object_put(cfg->attrs);
        cfg->attrs = NULL;
    }
    return rc;
}

static void
load_one(struct daemon *d, const char *parent, const char *dir,
         const char *name, defs_found_fn *found)
{
    char path[PATH_MAX], err[512] = "";
    char *text;
    int rc;

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
        umdev_log(&d->log, LOG_ERR, "skipping %s/%s: path too long", dir, name);
        return;
    }
    if (name[0] == '.') {
        /* A temporary file from an interrupted write: the rename never
         * happened, so the definition it was meant to replace stands. */
        if (strstr(name, ".tmp") != NULL && unlink(path) == 0)
            umdev_log(&d->log, LOG_NOTICE,
                      "removed %s left by an interrupted write", path);
        return;
    }
    /* The name first: a misnamed file is not worth opening. */
    rc = check_name(name, err, sizeof(err));
    text = rc < 0 ? NULL : read_small_file(path, err, sizeof(err));
    rc = text == NULL
             ? -EINVAL
             : defs_load_text(d, parent, name, text, found, err, sizeof(err));
    free(text);
    if (rc < 0)
        umdev_log(&d->log, LOG_ERR, "skipping definition %s: %s", path,
                  err[0] ? err : "invalid");
}

void
defs_load_all(struct daemon *d, defs_found_fn *found)
{
    DIR *top = opendir(d->opts.statedir);
    struct dirent *pe;

    if (top == NULL) {
        if (errno != ENOENT)
            umdev_log(&d->log, LOG_ERR, "cannot read %s: %s", d->opts.statedir,
                      strerror(errno));
        return;
    }
    while ((pe = readdir(top)) != NULL) {
        char dir[PATH_MAX];
        struct dirent *fe;
        DIR *sub;

        /* Parents' data directories ("<parent>.data") hold no
         * definitions; no parent name has a '.'. */
        if (pe->d_name[0] == '.' || strchr(pe->d_name, '.') != NULL)
            continue;
        if (snprintf(dir, sizeof(dir), "%s/%s", d->opts.statedir, pe->d_name) >=
            (int)sizeof(dir))
            continue;
        if (parents_find(d->parents, pe->d_name) == NULL) {
            umdev_log(&d->log, LOG_ERR,
                      "skipping %s: no parent named '%s' in this daemon", dir,
                      pe->d_name);
            continue;
        }
        sub = opendir(dir);
        if (sub == NULL) {
            umdev_log(&d->log, LOG_ERR, "cannot read %s: %s", dir,
                      strerror(errno));
            continue;
        }
        while ((fe = readdir(sub)) != NULL)
            if (strcmp(fe->d_name, ".") != 0 && strcmp(fe->d_name, "..") != 0)
                load_one(d, pe->d_name, dir, fe->d_name, found);
        closedir(sub);
    }
    closedir(top);
}
