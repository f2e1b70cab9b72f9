/*
 * VERSION capabilities JSON (spec "Version"): parse what the peer can
 * receive, and format what we can.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "conn.h"

static int
get_uint(struct json_object *obj, const char *key, uint64_t max,
         uint64_t *out)
{
    struct json_object *v;
    uint64_t n;

    if (!json_object_object_get_ex(obj, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int))
        return -EINVAL;
    /*
     * pgsizes is a bitmap, so values above INT64_MAX are legitimate
     * (0xfffffffffffff000 means "every page size from 4 KiB"). json-c
     * saturates out-of-range numbers at either end; both ends are refused.
     */
    if (json_object_get_int64(v) < 0)
        return -EINVAL;
    n = json_object_get_uint64(v);
    if (n > max || n == UINT64_MAX)
        return -EINVAL;
    *out = n;
    return 0;
}

int
conn_caps_parse(const char *json, struct conn_caps *out)
{
    struct json_object *caps, *v;
    struct json_object *root = NULL;
    struct json_tokener *tok;
    size_t len;
    uint64_t n;
    int rc = -EINVAL;

    conn_caps_defaults(out);
    if (json == NULL || json[0] == '\0')
        return 0;
    tok = json_tokener_new_ex(16);
    if (tok == NULL)
        return -ENOMEM;
    /* Strict: no trailing commas, comments or bytes after the object. */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    len = strlen(json);
    if (len > INT32_MAX)
        goto out;
    root = json_tokener_parse_ex(tok, json, (int)len);
    if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len)
        goto out;
    if (!json_object_is_type(root, json_type_object))
        goto out;
    if (!json_object_object_get_ex(root, "capabilities", &caps)) {
        rc = 0;
        goto out;
    }
    if (!json_object_is_type(caps, json_type_object))
        goto out;

    n = out->max_msg_fds;
    if (get_uint(caps, "max_msg_fds", UINT32_MAX, &n) < 0)
        goto out;
    out->max_msg_fds = (uint32_t)n;
    n = out->max_data_xfer_size;
    if (get_uint(caps, "max_data_xfer_size", UINT32_MAX, &n) < 0)
        goto out;
    out->max_data_xfer_size = (uint32_t)n;
    n = out->pgsizes;
    if (get_uint(caps, "pgsizes", UINT64_MAX, &n) < 0 || n == 0)
        goto out;
    out->pgsizes = n;
    n = out->max_dma_maps;
    if (get_uint(caps, "max_dma_maps", UINT32_MAX, &n) < 0)
        goto out;
    out->max_dma_maps = (uint32_t)n;
    if (json_object_object_get_ex(caps, "write_multiple", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            goto out;
        out->write_multiple = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(caps, UMDEV_WIRE_CAP_PRECOPY_INFO, &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            goto out;
        out->precopy_info = json_object_get_boolean(v);
    }
    if (json_object_object_get_ex(caps, "migration", &v)) {
        if (!json_object_is_type(v, json_type_object))
            goto out;
        out->migration = true;
        n = 4096;
        if (get_uint(v, "pgsize", UINT64_MAX, &n) < 0)
            goto out;
        out->mig_pgsize = n;
        n = 0;
        if (get_uint(v, "max_bitmap_size", UINT64_MAX, &n) < 0)
            goto out;
        out->mig_max_bitmap_size = n;
    }
    rc = 0;
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

ssize_t
conn_caps_format(const struct conn_caps *c, char *buf, size_t cap)
{
    char mig[128] = "";
    int n;

    if (c->migration)
        snprintf(mig, sizeof(mig),
                 ",\"migration\":{\"pgsize\":%" PRIu64
                 ",\"max_bitmap_size\":%" PRIu64 "}",
                 c->mig_pgsize, c->mig_max_bitmap_size);
    n = snprintf(
        buf, cap,
        "{\"capabilities\":{\"max_msg_fds\":%" PRIu32
        ",\"max_data_xfer_size\":%" PRIu32 ",\"pgsizes\":%" PRIu64
        ",\"max_dma_maps\":%" PRIu32 "%s%s%s}}",
        c->max_msg_fds, c->max_data_xfer_size, c->pgsizes, c->max_dma_maps,
        c->write_multiple ? ",\"write_multiple\":true" : "",
        c->precopy_info ? ",\"" UMDEV_WIRE_CAP_PRECOPY_INFO "\":true" : "",
        mig);
    if (n < 0 || (size_t)n + 1 > cap)
        return -E2BIG;
    return n + 1;
}
