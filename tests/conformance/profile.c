/*
 * The optional mediation profile the kit is given with --profile: which
 * trapped registers each region has (offset, size, widths, direction,
 * volatile or not), which parts are mmappable, and the data-path bound.
 * The shape is the one the framework produces; unknown keys are ignored,
 * a known key of the wrong type is an error that names its place.
 */
#include <errno.h>
#include <json-c/json.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conform.h"

/* A profile is a few KiB; anything this large is not one. */
#define PROFILE_MAX_BYTES (1024 * 1024)

struct perr {
    char *buf;
    size_t len;
};

static int __attribute__((format(printf, 2, 3)))
bad(struct perr *e, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e->buf, e->len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A non-negative JSON integer at @key of @o; absent is -ENOENT. */
static int
get_u64(struct json_object *o, const char *key, const char *where,
        uint64_t *out, struct perr *e)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v))
        return -ENOENT;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
        return bad(e, "%s.%s: expected a non-negative integer", where, key);
    *out = json_object_get_uint64(v);
    return 0;
}

static int
get_bool(struct json_object *o, const char *key, const char *where, bool *out,
         struct perr *e)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v))
        return -ENOENT;
    if (!json_object_is_type(v, json_type_boolean))
        return bad(e, "%s.%s: expected true or false", where, key);
    *out = json_object_get_boolean(v);
    return 0;
}

static int
get_string(struct json_object *o, const char *key, const char *where,
           char **out, struct perr *e)
{
    struct json_object *v;

    if (!json_object_object_get_ex(o, key, &v))
        return -ENOENT;
    if (!json_object_is_type(v, json_type_string))
        return bad(e, "%s.%s: expected a string", where, key);
    *out = strdup(json_object_get_string(v));
    return *out == NULL ? -ENOMEM : 0;
}

static int
get_array(struct json_object *o, const char *key, const char *where,
          struct json_object **out, struct perr *e)
{
    if (!json_object_object_get_ex(o, key, out) || *out == NULL)
        return -ENOENT;
    if (!json_object_is_type(*out, json_type_array))
        return bad(e, "%s.%s: expected an array", where, key);
    return 0;
}

/*
 * The array at @key (absent: an empty one) as *@arr, its length *@n, and
 * a zeroed list of *@n + 1 elements of @size bytes for what it holds
 * (freed by cf_profile_free() whatever follows).
 */
static int
get_list(struct json_object *o, const char *key, const char *where, size_t size,
         struct json_object **arr, size_t *n, void **list, struct perr *e)
{
    int rc = get_array(o, key, where, arr, e);

    *list = NULL;
    if (rc < 0 && rc != -ENOENT)
        return rc;
    *n = rc == 0 ? json_object_array_length(*arr) : 0;
    *list = calloc(*n + 1, size);
    return *list == NULL ? -ENOMEM : 0;
}

static int
parse_reg(struct json_object *o, const char *where, struct cf_profile_reg *r,
          struct perr *e)
{
    struct json_object *widths;
    char *access = NULL;
    size_t i;
    int rc;

    if (!json_object_is_type(o, json_type_object))
        return bad(e, "%s: expected an object", where);
    rc = get_string(o, "name", where, &r->name, e);
    if (rc == -ENOENT)
        return bad(e, "%s: \"name\" is missing", where);
    if (rc < 0)
        return rc;
    rc = get_u64(o, "offset", where, &r->offset, e);
    if (rc == -ENOENT)
        return bad(e, "%s: \"offset\" is missing", where);
    if (rc < 0)
        return rc;
    rc = get_u64(o, "size", where, &r->size, e);
    if (rc == -ENOENT || (rc == 0 && r->size == 0))
        return bad(e, "%s: \"size\" must be a positive integer", where);
    if (rc < 0)
        return rc;
    if (r->offset + r->size < r->offset)
        return bad(e, "%s: offset + size wraps", where);
    rc = get_array(o, "widths", where, &widths, e);
    if (rc == -ENOENT || (rc == 0 && json_object_array_length(widths) == 0))
        return bad(e, "%s: \"widths\" must list 1, 2, 4 or 8", where);
    if (rc < 0)
        return rc;
    for (i = 0; i < json_object_array_length(widths); i++) {
        struct json_object *w = json_object_array_get_idx(widths, i);
        int64_t n = json_object_get_int64(w);

        if (!json_object_is_type(w, json_type_int) ||
            (n != 1 && n != 2 && n != 4 && n != 8))
            return bad(e, "%s.widths[%zu]: expected 1, 2, 4 or 8", where, i);
        r->widths |= 1u << n;
    }
    rc = get_bool(o, "bulk", where, &r->bulk, e);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    rc = get_string(o, "access", where, &access, e);
    if (rc == -ENOENT)
        return bad(e, "%s: \"access\" is missing", where);
    if (rc < 0)
        return rc;
    if (strcmp(access, "r") == 0)
        r->access = CF_ACCESS_R;
    else if (strcmp(access, "w") == 0)
        r->access = CF_ACCESS_W;
    else if (strcmp(access, "rw") == 0)
        r->access = CF_ACCESS_R | CF_ACCESS_W;
    free(access);
    if (r->access == 0)
        return bad(e, "%s.access: expected \"r\", \"w\" or \"rw\"", where);
    rc = get_bool(o, "data_path", where, &r->data_path, e);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    rc = get_bool(o, "volatile", where, &r->is_volatile, e);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    return 0;
}

static int
parse_region(struct json_object *o, const char *where,
             struct cf_profile_region *pr, struct perr *e)
{
    struct json_object *arr;
    void *list;
    uint64_t v;
    size_t i, n;
    int rc;

    if (!json_object_is_type(o, json_type_object))
        return bad(e, "%s: expected an object", where);
    rc = get_u64(o, "index", where, &v, e);
    if (rc == -ENOENT)
        return bad(e, "%s: \"index\" is missing", where);
    if (rc < 0)
        return rc;
    if (v >= CF_MAX_REGIONS)
        return bad(e, "%s.index: %llu is not a region index below %u", where,
                   (unsigned long long)v, CF_MAX_REGIONS);
    pr->index = (uint32_t)v;
    rc = get_string(o, "name", where, &pr->name, e);
    if (rc == -ENOENT) {
        char dflt[24];

        snprintf(dflt, sizeof(dflt), "region%u", pr->index);
        pr->name = strdup(dflt);
        rc = pr->name == NULL ? -ENOMEM : 0;
    }
    if (rc < 0)
        return rc;
    rc = get_u64(o, "size", where, &pr->size, e);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    pr->has_size = rc == 0;

    rc = get_list(o, "trapped", where, sizeof(*pr->regs), &arr, &n, &list, e);
    pr->regs = list;
    if (rc < 0)
        return rc;
    for (i = 0; i < n; i++) {
        char w[96];

        snprintf(w, sizeof(w), "%s.trapped[%zu]", where, i);
        rc = parse_reg(json_object_array_get_idx(arr, i), w, &pr->regs[i], e);
        pr->nregs = i + 1; /* freed whatever happened */
        if (rc < 0)
            return rc;
        if (pr->has_size && pr->regs[i].offset + pr->regs[i].size > pr->size)
            return bad(e,
                       "%s: register %s lies outside the region's %llu "
                       "bytes",
                       w, pr->regs[i].name, (unsigned long long)pr->size);
    }

    rc = get_list(o, "mmap", where, sizeof(*pr->mmap), &arr, &n, &list, e);
    pr->mmap = list;
    if (rc < 0)
        return rc;
    for (i = 0; i < n; i++) {
        struct json_object *a = json_object_array_get_idx(arr, i);
        char w[96];

        snprintf(w, sizeof(w), "%s.mmap[%zu]", where, i);
        if (!json_object_is_type(a, json_type_object))
            return bad(e, "%s: expected an object", w);
        if (get_u64(a, "offset", w, &pr->mmap[i].offset, e) != 0 ||
            get_u64(a, "size", w, &pr->mmap[i].size, e) != 0)
            return bad(e, "%s: needs integer \"offset\" and \"size\"", w);
        pr->nmmap = i + 1;
    }
    return 0;
}

static int
parse_profile(struct json_object *root, struct cf_profile *p, struct perr *e)
{
    struct json_object *arr, *dp;
    size_t i, j, n;
    void *list;
    int rc;

    if (!json_object_is_type(root, json_type_object))
        return bad(e, "the top level must be an object");
    rc = get_string(root, "type", "profile", &p->type, e);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    rc = get_list(root, "regions", "profile", sizeof(*p->regions), &arr, &n,
                  &list, e);
    p->regions = list;
    if (rc < 0)
        return rc;
    for (i = 0; i < n; i++) {
        char w[48];

        snprintf(w, sizeof(w), "regions[%zu]", i);
        rc = parse_region(json_object_array_get_idx(arr, i), w, &p->regions[i],
                          e);
        p->nregions = i + 1;
        if (rc < 0)
            return rc;
        for (j = 0; j < i; j++)
            if (p->regions[j].index == p->regions[i].index)
                return bad(e, "%s: region %u is listed twice", w,
                           p->regions[i].index);
    }
    if (json_object_object_get_ex(root, "data_path", &dp) && dp != NULL) {
        struct json_object *v;

        if (!json_object_is_type(dp, json_type_object))
            return bad(e, "data_path: expected an object");
        rc = get_string(dp, "kind", "data_path", &p->dp_kind, e);
        if (rc < 0 && rc != -ENOENT)
            return rc;
        if (json_object_object_get_ex(dp, "max_msgs_per_io", &v)) {
            if ((!json_object_is_type(v, json_type_int) &&
                 !json_object_is_type(v, json_type_double)) ||
                json_object_get_double(v) < 0)
                return bad(e, "data_path.max_msgs_per_io: expected a "
                              "non-negative number");
            p->has_max_msgs = true;
            p->max_msgs_per_io = json_object_get_double(v);
        }
    }
    return 0;
}

static char *
read_file(const char *path, size_t *len, struct perr *e)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;

    if (f == NULL) {
        bad(e, "cannot open: %s", strerror(errno));
        return NULL;
    }
    buf = malloc(PROFILE_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        bad(e, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, PROFILE_MAX_BYTES + 1, f);
    if (ferror(f) || n > PROFILE_MAX_BYTES) {
        bad(e, ferror(f) ? "read error" : "larger than 1 MiB");
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int
cf_profile_load(const char *path, struct cf_profile **out, char *err,
                size_t errlen)
{
    struct perr e = { err, errlen };
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    struct cf_profile *p;
    size_t len = 0, end;
    char *text;
    int rc = -EINVAL;

    *out = NULL;
    text = read_file(path, &len, &e);
    if (text == NULL)
        return -EINVAL;
    p = calloc(1, sizeof(*p));
    tok = json_tokener_new();
    if (p == NULL || tok == NULL) {
        rc = bad(&e, "out of memory");
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, text, (int)len);
    if (root == NULL) {
        rc = bad(&e, "not JSON: %s at byte %zu",
                 json_tokener_error_desc(json_tokener_get_error(tok)),
                 json_tokener_get_parse_end(tok));
        goto out;
    }
    end = json_tokener_get_parse_end(tok);
    while (end < len && strchr(" \t\r\n", text[end]) != NULL)
        end++;
    if (end != len) {
        rc = bad(&e, "junk after the JSON document at byte %zu", end);
        goto out;
    }
    rc = parse_profile(root, p, &e);
out:
    if (root != NULL)
        json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    free(text);
    if (rc < 0) {
        cf_profile_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void
cf_profile_free(struct cf_profile *p)
{
    size_t i, j;

    if (p == NULL)
        return;
    for (i = 0; i < p->nregions; i++) {
        for (j = 0; j < p->regions[i].nregs; j++)
            free(p->regions[i].regs[j].name);
        free(p->regions[i].regs);
        free(p->regions[i].mmap);
        free(p->regions[i].name);
    }
    free(p->regions);
    free(p->type);
    free(p->dp_kind);
    free(p);
}

const struct cf_profile_region *
cf_profile_region(const struct cf_profile *p, uint32_t index)
{
    size_t i;

    for (i = 0; p != NULL && i < p->nregions; i++)
        if (p->regions[i].index == index)
            return &p->regions[i];
    return NULL;
}

static bool
inside(uint64_t off, uint64_t len, uint64_t start, uint64_t size)
{
    return off >= start && off - start < size && len <= size - (off - start);
}

/*
 * A bulk copy over memory-like parts: every byte in a declared mmappable
 * area or in a "bulk" register allowing @access (the framework's rule,
 * docs/CRITERIA.md).
 */
static bool
memory_run(const struct cf_profile_region *pr, uint64_t off, uint64_t len,
           uint32_t access)
{
    uint64_t pos = off, end = off + len, next;
    size_t i;

    if (len == 0 || end < off)
        return false;
    while (pos < end) {
        next = pos;
        for (i = 0; i < pr->nmmap && next == pos; i++)
            if (inside(pos, 1, pr->mmap[i].offset, pr->mmap[i].size))
                next = pr->mmap[i].offset + pr->mmap[i].size;
        for (i = 0; i < pr->nregs && next == pos; i++) {
            const struct cf_profile_reg *r = &pr->regs[i];

            if (r->bulk && (r->access & access) &&
                inside(pos, 1, r->offset, r->size))
                next = r->offset + r->size;
        }
        if (next == pos)
            return false;
        pos = next;
    }
    return true;
}

bool
cf_profile_allows(const struct cf_profile *p, uint32_t index, uint64_t off,
                  uint32_t width, uint32_t access)
{
    const struct cf_profile_region *pr;
    size_t i;

    if (index == VFIO_PCI_CONFIG_REGION_INDEX)
        return true;
    pr = cf_profile_region(p, index);
    if (pr == NULL)
        return false;
    for (i = 0; i < pr->nmmap; i++)
        if (inside(off, width, pr->mmap[i].offset, pr->mmap[i].size))
            return true;
    if (memory_run(pr, off, width, access))
        return true;
    for (i = 0; i < pr->nregs; i++) {
        const struct cf_profile_reg *r = &pr->regs[i];

        if (inside(off, width, r->offset, r->size) && width <= 8 &&
            (r->widths & (1u << width)) && (r->access & access))
            return true;
    }
    return false;
}
