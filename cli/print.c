/*
 * What umdevctl prints: each verb's result as text (--json prints the
 * result object itself, main.c), in the shapes docs/CLI.md shows.
 *
 * Strings in a result come from definitions, devices and workers: a
 * terminal must never receive their control characters. Text output
 * prints a copy with them escaped (cli_safe); JSON output escapes what
 * json-c leaves raw (cli_print_json).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "umdev/umdev.h"
#include "umdevctl.h"

const char *
cli_jstr(struct json_object *o, const char *key, const char *dflt)
{
    struct json_object *v;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
        return dflt;
    return json_object_get_string(v);
}

/* @key of @o, "" when absent. */
static const char *
str(struct json_object *o, const char *key)
{
    return cli_jstr(o, key, "");
}

size_t
cli_alen(struct json_object *a)
{
    return json_object_is_type(a, json_type_array) ? json_object_array_length(a)
                                                   : 0;
}

/* A control character a terminal acts on: C0, DEL, C1 (as UTF-8). */
static bool
is_control(const unsigned char *p, size_t n)
{
    return (n == 1 && (p[0] < 0x20 || p[0] == 0x7f)) ||
           (n == 2 && p[0] == 0xc2 && p[1] < 0xa0);
}

/*
 * @s for a terminal (@json false): control characters and bytes that are
 * not UTF-8 as \xNN, a backslash as \\ so the escapes read back
 * unambiguously. Or inside JSON text (@json true), where json-c already
 * wrote C0 as \u00NN: DEL and C1 as \u00NN, bytes that are not UTF-8 as
 * U+FFFD (JSON text is UTF-8). Return: a new string (NULL: no memory).
 */
static char *
escape(const char *s, bool json)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = malloc(6 * strlen(s) + 1), *o = out;

    if (out == NULL)
        return NULL;
    while (*p != '\0') {
        size_t n = umdev_utf8_len(p);

        if (n == 0) {
            o += json ? sprintf(o, "\\ufffd") : sprintf(o, "\\x%02x", *p);
            p++;
        } else if (is_control(p, n) && !(json && *p < 0x20)) {
            /* (In JSON text a raw C0 byte is layout: json-c escapes
             * those inside strings itself.) */
            unsigned int cp = n == 1 ? p[0] : p[1];

            if (json)
                o += sprintf(o, "\\u%04x", cp);
            else if (n == 1)
                o += sprintf(o, "\\x%02x", p[0]);
            else
                o += sprintf(o, "\\x%02x\\x%02x", p[0], p[1]);
            p += n;
        } else if (!json && *p == '\\') {
            o += sprintf(o, "\\\\");
            p++;
        } else {
            memcpy(o, p, n);
            o += n;
            p += n;
        }
    }
    *o = '\0';
    return out;
}

/* A new string object of @s escaped for a terminal. */
static struct json_object *
safe_string(const char *s)
{
    char *e = escape(s, false);
    struct json_object *o = json_object_new_string(e != NULL ? e : "?");

    free(e);
    return o;
}

struct json_object *
cli_safe(struct json_object *o)
{
    struct json_object *copy;
    size_t i;

    switch (json_object_get_type(o)) {
    case json_type_string:
        return safe_string(json_object_get_string(o));
    case json_type_array:
        copy = json_object_new_array();
        for (i = 0; i < json_object_array_length(o); i++)
            json_object_array_add(copy,
                                  cli_safe(json_object_array_get_idx(o, i)));
        return copy;
    case json_type_object:
        copy = json_object_new_object();
        json_object_object_foreach(o, key, val)
        {
            char *k = escape(key, false);

            json_object_object_add(copy, k != NULL ? k : "?", cli_safe(val));
            free(k);
        }
        return copy;
    default:
        /* Numbers, booleans and null print no text of their own. */
        return json_object_get(o);
    }
}

void
cli_fputs_safe(FILE *f, const char *s)
{
    char *e = escape(s, false);

    fputs(e != NULL ? e : "?", f);
    free(e);
}

void
cli_print_json_ext(struct json_object *o, int flags)
{
    char *e = escape(json_object_to_json_string_ext(o, flags), true);

    printf("%s\n", e != NULL ? e : "null");
    free(e);
}

/*
 * @o as mdevctl prints JSON (serde_json's pretty form): two-space
 * indents, "key": value, and empty arrays and objects as [] and {}, where
 * json-c breaks them over two lines. A raw newline is only ever layout in
 * JSON text (json-c escapes one inside a string), so an opening bracket
 * followed by one and then only blanks up to its closing bracket is an
 * empty container.
 */
static void
print_json_mdevctl(struct json_object *o)
{
    const char *text = json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
               JSON_C_TO_STRING_NOSLASHESCAPE);
    char *flat = malloc(strlen(text) + 1), *e;
    size_t i = 0, n = 0;

    if (flat == NULL) {
        cli_print_json(o);
        return;
    }
    while (text[i] != '\0') {
        char ch = text[i];

        flat[n++] = text[i++];
        if ((ch == '[' || ch == '{') && text[i] == '\n') {
            size_t j = i + 1;

            while (text[j] == ' ')
                j++;
            if (text[j] == (ch == '[' ? ']' : '}'))
                i = j; /* the closing bracket comes next */
        }
    }
    flat[n] = '\0';
    e = escape(flat, true);
    printf("%s\n", e != NULL ? e : "null");
    free(e);
    free(flat);
}

void
cli_print_json(struct json_object *o)
{
    cli_print_json_ext(o, JSON_C_TO_STRING_PRETTY |
                              JSON_C_TO_STRING_NOSLASHESCAPE);
}

void
cli_print_types(struct json_object *r)
{
    struct json_object *types = json_object_object_get(r, "types");
    const char *last = "";
    size_t i;

    for (i = 0; i < cli_alen(types); i++) {
        struct json_object *t = json_object_array_get_idx(types, i);

        if (strcmp(last, str(t, "parent")) != 0) {
            last = str(t, "parent");
            printf("%s\n", last);
        }
        printf("  %s\n    Available instances: %s\n"
               "    Device API: %s\n    Description: %s\n",
               str(t, "name"), str(t, "available_instances"),
               str(t, "device_api"), str(t, "description"));
        /* A plug-in's types carry their admission (docs/PLUGINS.md). */
        if (json_object_object_get_ex(t, "plugin", NULL)) {
            struct json_object *adm = json_object_object_get(t, "admission");

            printf("    Plug-in: %s\n    Admission: %s%s%s\n", str(t, "plugin"),
                   str(adm, "state"),
                   json_object_object_get_ex(adm, "verdict", NULL) ? ": " : "",
                   json_object_object_get_ex(adm, "verdict", NULL)
                       ? str(adm, "verdict")
                       : "");
        }
    }
    types = json_object_object_get(r, "refused_plugins");
    if (cli_alen(types) > 0)
        printf("refused plug-ins\n");
    for (i = 0; i < cli_alen(types); i++) {
        struct json_object *t = json_object_array_get_idx(types, i);

        printf("  %s: %s\n", str(t, "path"), str(t, "reason"));
    }
}

static void
print_instance_line(struct json_object *inst)
{
    struct json_object *e;

    /* mdevctl's shape: uuid parent type start [state]. */
    printf("%s %s %s %s %s", str(inst, "uuid"), str(inst, "parent"),
           str(inst, "type"), str(inst, "start"), str(inst, "state"));
    if (strcmp(str(inst, "state"), "failed") == 0) {
        if (json_object_object_get_ex(inst, "exit", &e))
            printf(" (%s)", str(e, "reason"));
    }
    if (json_object_get_boolean(json_object_object_get(inst, "defined")))
        printf(" (defined)");
    if (json_object_object_get(inst, "lease_pid") != NULL)
        printf(" (access queue, lease pid %s)", str(inst, "lease_pid"));
    /* What runs is shown; a definition changed since is marked. */
    if (json_object_object_get_ex(inst, "pending", &e)) {
        size_t n = 0;

        printf(" (pending: ");
        json_object_object_foreach(e, k, v)
        {
            (void)v;
            printf("%s%s", n++ ? ", " : "", k);
        }
        printf(")");
    }
    printf("\n");
}

void
cli_print_instances(struct json_object *r)
{
    struct json_object *arr = json_object_object_get(r, "instances");
    size_t i;

    for (i = 0; i < cli_alen(arr); i++)
        print_instance_line(json_object_array_get_idx(arr, i));
}

/* @attrs as mdevctl numbers them: "@{N}: {"KEY":VALUE}". */
static void
print_attr_list(struct json_object *attrs, const char *indent)
{
    size_t i = 0;

    json_object_object_foreach(attrs, k, v)
    {
        struct json_object *one = json_object_new_object();

        json_object_object_add(one, k, json_object_get(v));
        printf(
            "%s@{%zu}: %s\n", indent, i++,
            json_object_to_json_string_ext(
                one, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(one);
    }
}

void
cli_print_instances_verbose(struct json_object *r)
{
    struct json_object *arr = json_object_object_get(r, "instances");
    size_t i;

    for (i = 0; i < cli_alen(arr); i++) {
        struct json_object *inst = json_object_array_get_idx(arr, i);
        struct json_object *a = json_object_object_get(inst, "attrs");

        print_instance_line(inst);
        if (json_object_object_length(a) > 0) {
            printf("  Attrs:\n");
            print_attr_list(a, "    ");
        }
    }
}

/* The definition @inst (an instance object) would start with: what it
 * runs with, changed by what is pending. A new object. */
static struct json_object *
definition_of(struct json_object *inst)
{
    struct json_object *d = json_object_new_object();
    struct json_object *pend = json_object_object_get(inst, "pending");
    struct json_object *attrs = json_object_new_object(), *pa;

    json_object_object_foreach(inst, k, v)
        json_object_object_add(d, k, json_object_get(v));
    json_object_object_foreach(json_object_object_get(inst, "attrs"), ak, av)
        json_object_object_add(attrs, ak, json_object_get(av));
    json_object_object_del(d, "pending");
    if (pend != NULL) {
        json_object_object_foreach(pend, pk, pv)
        {
            if (strcmp(pk, "attrs") != 0)
                json_object_object_add(d, pk, json_object_get(pv));
        }
        pa = json_object_object_get(pend, "attrs");
        if (pa != NULL) {
            json_object_object_foreach(pa, qk, qv)
            {
                if (qv == NULL)
                    json_object_object_del(attrs, qk);
                else
                    json_object_object_add(attrs, qk, json_object_get(qv));
            }
        }
    }
    json_object_object_add(d, "attrs", attrs);
    return d;
}

/* One instance in mdevctl's shape: {"mdev_type", "start", "attrs": [{K:
 * V}...]} with string values, and umdev's owner and mode after them
 * (mdevctl ignores keys it does not know; umdevctl define --jsonfile
 * takes them back). */
static struct json_object *
mdevctl_device(struct json_object *inst)
{
    struct json_object *o = json_object_new_object();
    struct json_object *attrs = json_object_new_array(), *v;

    json_object_object_add(o, "mdev_type",
                           json_object_new_string(str(inst, "type")));
    json_object_object_add(o, "start",
                           json_object_new_string(str(inst, "start")));
    json_object_object_foreach(json_object_object_get(inst, "attrs"), k, av)
    {
        struct json_object *one = json_object_new_object();

        json_object_object_add(
            one, k, json_object_new_string(json_object_get_string(av)));
        json_object_array_add(attrs, one);
    }
    json_object_object_add(o, "attrs", attrs);
    if (json_object_object_get_ex(inst, "owner", &v))
        json_object_object_add(o, "owner", json_object_get(v));
    if (json_object_object_get_ex(inst, "mode", &v))
        json_object_object_add(o, "mode", json_object_get(v));
    return o;
}

/*
 * mdevctl's `list --dumpjson`: [{PARENT: [{UUID: device}, ...], ...}]
 * (one object holding every parent; [] when nothing is listed), or with
 * one -u that found its instance the device object alone. Definitions
 * (@defined) are shown as they will start; running instances as they
 * run.
 */
void
cli_print_definitions(struct json_object *r, bool single, bool defined)
{
    struct json_object *arr = json_object_object_get(r, "instances");
    struct json_object *parents = json_object_new_object();
    struct json_object *out = json_object_new_array(), *list;
    size_t i;

    for (i = 0; i < cli_alen(arr); i++) {
        struct json_object *in = json_object_array_get_idx(arr, i);
        struct json_object *inst =
            defined ? definition_of(in) : json_object_get(in);
        struct json_object *dev = mdevctl_device(inst);
        struct json_object *one;

        if (single && cli_alen(arr) == 1) {
            print_json_mdevctl(dev);
            json_object_put(dev);
            json_object_put(inst);
            json_object_put(parents);
            json_object_put(out);
            return;
        }
        if (!json_object_object_get_ex(parents, str(inst, "parent"), &list)) {
            list = json_object_new_array();
            json_object_object_add(parents, str(inst, "parent"), list);
        }
        one = json_object_new_object();
        json_object_object_add(one, str(inst, "uuid"), dev);
        json_object_array_add(list, one);
        json_object_put(inst);
    }
    if (json_object_object_length(parents) > 0)
        json_object_array_add(out, parents);
    else
        json_object_put(parents);
    print_json_mdevctl(out);
    json_object_put(out);
}

/* mdevctl's `types --dumpjson`: [{PARENT: [{TYPE: {available_instances,
 * device_api, description}}, ...], ...}], [] when there are none. */
void
cli_print_types_dump(struct json_object *r)
{
    struct json_object *types = json_object_object_get(r, "types");
    struct json_object *parents = json_object_new_object();
    struct json_object *out = json_object_new_array(), *list;
    size_t i;

    for (i = 0; i < cli_alen(types); i++) {
        struct json_object *t = json_object_array_get_idx(types, i);
        struct json_object *o = json_object_new_object();
        struct json_object *one = json_object_new_object(), *v;

        if (json_object_object_get_ex(t, "available_instances", &v))
            json_object_object_add(o, "available_instances",
                                   json_object_get(v));
        if (json_object_object_get_ex(t, "device_api", &v))
            json_object_object_add(o, "device_api", json_object_get(v));
        if (json_object_object_get_ex(t, "description", &v))
            json_object_object_add(o, "description", json_object_get(v));
        json_object_object_add(one, str(t, "name"), o);
        if (!json_object_object_get_ex(parents, str(t, "parent"), &list)) {
            list = json_object_new_array();
            json_object_object_add(parents, str(t, "parent"), list);
        }
        json_object_array_add(list, one);
    }
    if (json_object_object_length(parents) > 0)
        json_object_array_add(out, parents);
    else
        json_object_put(parents);
    print_json_mdevctl(out);
    json_object_put(out);
}

/* The bare UUID, so scripts can take it: U=$(umdevctl define ...). */
void
cli_print_defined(struct json_object *r)
{
    struct json_object *inst = json_object_object_get(r, "instance");

    if (inst != NULL)
        printf("%s\n", str(inst, "uuid"));
}

void
cli_print_modified(struct json_object *r)
{
    struct json_object *inst = json_object_object_get(r, "instance");

    if (inst != NULL)
        printf("%s modified (takes effect at next start)\n", str(inst, "uuid"));
}

void
cli_print_started(struct json_object *r)
{
    struct json_object *inst = json_object_object_get(r, "instance");

    printf("%s started: %s\n", str(inst, "uuid"), str(inst, "socket"));
}

void
cli_print_version(struct json_object *r)
{
    printf("umdevd %s, protocol %s\n", str(r, "daemon"), str(r, "protocol"));
}

void
cli_print_info(struct json_object *r)
{
    struct json_object *inst = json_object_object_get(r, "instance");
    struct json_object *dev = json_object_object_get(r, "device");
    struct json_object *a, *v;
    size_t i;

    printf("%s\n  parent: %s\n  type: %s\n  state: %s\n  socket: %s\n",
           str(inst, "uuid"), str(inst, "parent"), str(inst, "type"),
           str(inst, "state"), str(inst, "socket"));
    printf(
        "  defined: %s\n  start: %s\n  owner: %s:%s\n  mode: %s\n",
        json_object_get_boolean(json_object_object_get(inst, "defined"))
            ? "yes"
            : "no (transient)",
        str(inst, "start"), str(json_object_object_get(inst, "owner"), "uid"),
        str(json_object_object_get(inst, "owner"), "gid"), str(inst, "mode"));
    if (json_object_object_get_ex(inst, "pid", &v))
        printf("  worker pid: %s\n", json_object_get_string(v));
    if (json_object_object_get_ex(inst, "lease_pid", &v))
        printf("  leased to pid: %s (an access-path queue)\n",
               json_object_get_string(v));
    if (json_object_object_get_ex(inst, "exit", &v))
        printf("  exit: %s (status %s, signal %s)\n", str(v, "reason"),
               str(v, "status"), str(v, "signal"));
    if (json_object_object_get_ex(inst, "attrs", &a) &&
        json_object_object_length(a) > 0) {
        printf("  attrs:\n");
        json_object_object_foreach(a, ak, av)
            printf("    %s=%s\n", ak, json_object_get_string(av));
    }
    /* The fields above are what runs; the definition differs here. */
    if (json_object_object_get_ex(inst, "pending", &v)) {
        printf("  pending (the definition, from the next start):\n");
        json_object_object_foreach(v, pk, pv)
        {
            if (strcmp(pk, "owner") == 0)
                printf("    owner: %s:%s\n", str(pv, "uid"), str(pv, "gid"));
            else if (strcmp(pk, "attrs") != 0)
                printf("    %s: %s\n", pk, json_object_get_string(pv));
        }
        if ((a = json_object_object_get(v, "attrs")) != NULL) {
            json_object_object_foreach(a, qk, qv)
            {
                if (qv == NULL)
                    printf("    attrs: %s removed\n", qk);
                else
                    printf("    attrs: %s=%s\n", qk,
                           json_object_get_string(qv));
            }
        }
    }
    if (dev == NULL)
        return;
    printf("  client pid: %s\n",
           json_object_object_get_ex(dev, "client_pid", &v)
               ? json_object_get_string(v)
               : "(no client attached)");
    a = json_object_object_get(dev, "regions");
    printf("  regions:\n");
    for (i = 0; i < json_object_array_length(a); i++) {
        struct json_object *reg = json_object_array_get_idx(a, i);

        printf("    %-6s size %-8s %s%s\n", str(reg, "name"), str(reg, "size"),
               json_object_get_boolean(json_object_object_get(reg, "mmap"))
                   ? "mmap "
                   : "",
               json_object_get_boolean(json_object_object_get(reg, "trapped"))
                   ? "trapped"
                   : "");
    }
    a = json_object_object_get(dev, "irqs");
    printf("  irqs:\n");
    for (i = 0; i < json_object_array_length(a); i++) {
        struct json_object *q = json_object_array_get_idx(a, i);

        printf("    %-5s count %s\n", str(q, "name"), str(q, "count"));
    }
    if (json_object_object_get_ex(dev, "guest_memory", &v))
        printf("  guest memory: %s\n", json_object_get_string(v));
    else if (json_object_get_boolean(
                 json_object_object_get(dev, "needs_shared_memory")))
        printf("  guest memory: must be shared with the server (share=on)\n");
    if (json_object_object_get_ex(dev, "screenshots", &v))
        printf("  screenshots: %s taken (umdevctl screenshot)\n",
               json_object_get_string(v));
    printf("  counters:\n");
    json_object_object_foreach(json_object_object_get(dev, "counters"), k, cv)
        printf("    %-14s %s\n", k, json_object_get_string(cv));
    if (json_object_object_get_ex(dev, "profile", &v)) {
        struct json_object *regs = json_object_object_get(v, "regions");
        int64_t rd = 0, wr = 0;
        size_t nregs = 0, ri;

        for (i = 0; i < cli_alen(regs); i++) {
            struct json_object *tr = json_object_object_get(
                json_object_array_get_idx(regs, i), "trapped");

            for (ri = 0; ri < cli_alen(tr); ri++) {
                struct json_object *t = json_object_array_get_idx(tr, ri);

                rd += json_object_get_int64(json_object_object_get(t, "reads"));
                wr +=
                    json_object_get_int64(json_object_object_get(t, "writes"));
                nregs++;
            }
        }
        printf("  traps: %lld reads, %lld writes on %zu declared registers; "
               "%s refused (umdevctl stats has the detail)\n",
               (long long)rd, (long long)wr, nregs, str(v, "refused"));
    }
    if (json_object_object_get_ex(dev, "endpoints", &a)) {
        printf("  endpoints:\n");
        /* A parent describes each endpoint as {kind, host_end[, path]}. */
        json_object_object_foreach(a, ek, ev)
        {
            if (json_object_is_type(ev, json_type_object))
                printf("    %-8s %-6s %s\n", ek, str(ev, "kind"),
                       str(ev, "host_end"));
            else
                printf("    %-8s %s\n", ek, json_object_get_string(ev));
        }
    }
}

static void
print_widths(struct json_object *t)
{
    struct json_object *w = json_object_object_get(t, "widths");
    size_t i;

    for (i = 0; i < cli_alen(w); i++)
        printf("%s%s", i ? "/" : "",
               json_object_get_string(json_object_array_get_idx(w, i)));
    if (json_object_get_boolean(json_object_object_get(t, "bulk")))
        printf("%sbulk", i ? "/" : "");
}

static void
print_profile(struct json_object *p)
{
    struct json_object *dp = json_object_object_get(p, "data_path");
    struct json_object *regs = json_object_object_get(p, "regions");
    struct json_object *cfg = json_object_object_get(p, "config");
    struct json_object *a;
    size_t i, j;

    printf("profile:\n  data path: %s, at most %s socket messages per %s",
           cli_jstr(dp, "kind", "?"), cli_jstr(dp, "max_msgs_per_io", "?"),
           cli_jstr(dp, "unit", "I/O"));
    if (json_object_object_get_ex(dp, "note", &a))
        printf(" (%s)", json_object_get_string(a));
    printf("\n  guest memory: %s\n",
           json_object_get_boolean(
               json_object_object_get(p, "needs_shared_memory"))
               ? "must be shared with the server (share=on): the device "
                 "maps it"
               : "shared or not (unshared memory is reached by "
                 "DMA_READ/DMA_WRITE messages)");
    for (i = 0; i < cli_alen(regs); i++) {
        struct json_object *r = json_object_array_get_idx(regs, i);
        struct json_object *mm = json_object_object_get(r, "mmap");
        struct json_object *tr = json_object_object_get(r, "trapped");

        printf("  %s (region %s, %s bytes): %zu trapped registers, ",
               cli_jstr(r, "name", "?"), cli_jstr(r, "index", "?"),
               cli_jstr(r, "size", "?"), cli_alen(tr));
        if (cli_alen(mm) == 0)
            printf("nothing direct\n");
        for (j = 0; j < cli_alen(mm); j++) {
            struct json_object *m = json_object_array_get_idx(mm, j);

            printf("%sdirect (mmappable) 0x%llx+0x%llx", j ? ", " : "",
                   (unsigned long long)json_object_get_int64(
                       json_object_object_get(m, "offset")),
                   (unsigned long long)json_object_get_int64(
                       json_object_object_get(m, "size")));
        }
        if (j > 0)
            printf("\n");
        for (j = 0; j < cli_alen(tr); j++) {
            struct json_object *t = json_object_array_get_idx(tr, j);

            printf("    0x%04llx %-14s %4s bytes, widths ",
                   (unsigned long long)json_object_get_int64(
                       json_object_object_get(t, "offset")),
                   cli_jstr(t, "name", "?"), cli_jstr(t, "size", "?"));
            print_widths(t);
            printf(
                ", %s%s%s: %s\n", cli_jstr(t, "access", "?"),
                json_object_get_boolean(json_object_object_get(t, "data_path"))
                    ? ", data path"
                    : ", control",
                json_object_get_boolean(json_object_object_get(t, "volatile"))
                    ? ", volatile"
                    : "",
                cli_jstr(t, "purpose", ""));
        }
    }
    if (cfg != NULL) {
        printf("  config space: %s bytes; writable bits:\n",
               cli_jstr(cfg, "size", "?"));
        a = json_object_object_get(cfg, "writable");
        for (i = 0; i < cli_alen(a); i++) {
            struct json_object *w = json_object_array_get_idx(a, i);

            printf("    %-6s rw %-10s w1c %s\n", cli_jstr(w, "offset", "?"),
                   cli_jstr(w, "rw", "?"), cli_jstr(w, "w1c", "?"));
        }
        a = json_object_object_get(cfg, "capabilities");
        printf("  capabilities:%s", cli_alen(a) ? "" : " none");
        for (i = 0; i < cli_alen(a); i++) {
            struct json_object *cp = json_object_array_get_idx(a, i);

            printf(" id %s at %s%s", cli_jstr(cp, "id", "?"),
                   cli_jstr(cp, "offset", "?"), i + 1 < cli_alen(a) ? "," : "");
        }
        printf("\n");
    }
    a = json_object_object_get(p, "irqs");
    printf("  irqs:");
    for (i = 0; i < cli_alen(a); i++) {
        struct json_object *q = json_object_array_get_idx(a, i);

        printf(" %s (%s)", cli_jstr(q, "name", "?"), cli_jstr(q, "count", "?"));
    }
    printf("\n");
}

void
cli_print_audit(struct json_object *r)
{
    struct json_object *doc = json_object_object_get(r, "audit");
    struct json_object *crit = json_object_object_get(doc, "criteria");
    struct json_object *p = json_object_object_get(doc, "profile");
    size_t i;

    printf("audit of %s (parent %s)\n", cli_jstr(r, "type", "?"),
           cli_jstr(r, "parent", "?"));
    if (p != NULL)
        print_profile(p);
    else
        printf("profile: none declared\n");
    printf("criteria:\n");
    for (i = 0; i < cli_alen(crit); i++) {
        struct json_object *k = json_object_array_get_idx(crit, i);

        printf("  %s. %-8s %s\n       %s\n", cli_jstr(k, "id", "?"),
               cli_jstr(k, "verdict", "?"), cli_jstr(k, "name", ""),
               cli_jstr(k, "evidence", ""));
    }
    printf("verdict: %s%s\n", cli_jstr(doc, "verdict", "?"),
           strcmp(cli_jstr(doc, "verdict", ""), "incomplete") == 0
               ? " (criteria marked 'not run' need --conformance)"
               : "");
}

/* "N" or, with a previous sample, "N (+D)". */
static void
num(const char *label, int64_t v, struct json_object *prev_obj, const char *key,
    bool have_prev)
{
    struct json_object *pv;
    int64_t d = 0;

    if (have_prev && prev_obj != NULL &&
        json_object_object_get_ex(prev_obj, key, &pv))
        d = v - json_object_get_int64(pv);
    printf("%s %lld", label, (long long)v);
    if (d != 0)
        printf(" (%+lld)", (long long)d);
}

static struct json_object *
find_named(struct json_object *arr, const char *name)
{
    size_t i;

    for (i = 0; i < cli_alen(arr); i++) {
        struct json_object *o = json_object_array_get_idx(arr, i);

        if (strcmp(cli_jstr(o, "name", ""), name) == 0)
            return o;
    }
    return NULL;
}

void
cli_print_stats(struct json_object *s, struct json_object *prev)
{
    struct json_object *ctr = json_object_object_get(s, "counters");
    struct json_object *pctr =
        prev ? json_object_object_get(prev, "counters") : NULL;
    struct json_object *regs = json_object_object_get(s, "regions");
    struct json_object *pregs =
        prev ? json_object_object_get(prev, "regions") : NULL;
    size_t i, j, n = 0;

    printf("%s (%s, %s)\n ", cli_jstr(s, "uuid", "?"), cli_jstr(s, "type", "?"),
           cli_jstr(s, "state", "?"));
    json_object_object_foreach(ctr, k, v)
    {
        printf("%s", n++ % 4 == 0 && n > 1 ? "\n " : "");
        num(" ", json_object_get_int64(v), pctr, k, prev != NULL);
        printf(" %s", k);
    }
    printf("\n ");
    num(" refused", json_object_get_int64(json_object_object_get(s, "refused")),
        prev, "refused", prev != NULL);
    printf(" (accesses outside the mediation profile)\n");
    for (i = 0; i < cli_alen(regs); i++) {
        struct json_object *r = json_object_array_get_idx(regs, i);
        struct json_object *pr = find_named(pregs, cli_jstr(r, "name", ""));
        struct json_object *tr = json_object_object_get(r, "registers");
        size_t quiet = 0;

        printf("  %s trapped:", cli_jstr(r, "name", "?"));
        num(" reads", json_object_get_int64(json_object_object_get(r, "reads")),
            pr, "reads", prev != NULL);
        num(", writes",
            json_object_get_int64(json_object_object_get(r, "writes")), pr,
            "writes", prev != NULL);
        printf("\n");
        for (j = 0; j < cli_alen(tr); j++) {
            struct json_object *t = json_object_array_get_idx(tr, j);
            struct json_object *pt =
                pr ? find_named(json_object_object_get(pr, "registers"),
                                cli_jstr(t, "name", ""))
                   : NULL;
            int64_t rd =
                json_object_get_int64(json_object_object_get(t, "reads"));
            int64_t wr =
                json_object_get_int64(json_object_object_get(t, "writes"));

            if (rd == 0 && wr == 0) {
                quiet++;
                continue;
            }
            printf("    %-16s", cli_jstr(t, "name", "?"));
            num(" reads", rd, pt, "reads", prev != NULL);
            num(", writes", wr, pt, "writes", prev != NULL);
            printf("\n");
        }
        if (quiet > 0)
            printf("    (%zu registers not accessed)\n", quiet);
    }
    fflush(stdout);
}

/* ---- stats --openmetrics ----------------------------------------------
 *
 * The OpenMetrics text format (Prometheus reads it): each counter is a
 * family, "# TYPE NAME counter" and "# HELP NAME TEXT" before its samples
 * "NAME_total{LABELS} VALUE", every family once, and "# EOF" last. The
 * labels say which instance: uuid, type, parent.
 */

/* The device counters of docs/CONTROL.md's stats object, named for
 * people (a counter a newer worker adds gets a name made from its key). */
static const struct {
    const char *key, *family, *help;
} om_counters[] = {
    { "msgs", "umdev_messages", "vfio-user commands the device handled" },
    { "errors", "umdev_errors", "error replies the device sent" },
    { "region_reads", "umdev_region_reads",
      "region reads the device served, config space included" },
    { "region_writes", "umdev_region_writes",
      "region writes the device served, config space included" },
    { "dma_bytes", "umdev_dma_bytes",
      "bytes the device moved through the DMA API" },
    { "irqs", "umdev_interrupts", "interrupts the device signalled" },
    { "irqs_dropped", "umdev_interrupts_dropped",
      "interrupt triggers that found no eventfd" },
    { "attaches", "umdev_attaches", "clients the device accepted" },
};

/* @s as a label value: backslash, double quote and newline escaped. */
static void
om_label_value(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            printf("\\%c", *s);
        else if (*s == '\n')
            printf("\\n");
        else
            putchar(*s);
    }
}

/* A metric name from @key: [a-z0-9_], anything else as '_'. */
static void
om_name(char *out, size_t len, const char *prefix, const char *key)
{
    size_t n = (size_t)snprintf(out, len, "%s", prefix), i;

    for (i = 0; key[i] != '\0' && n + 1 < len; i++, n++) {
        char ch = key[i];

        out[n] = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
                     ? ch
                     : (ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : '_');
    }
    out[n] = '\0';
}

static void
om_family(const char *name, const char *help)
{
    printf("# TYPE %s counter\n# HELP %s %s\n", name, name, help);
}

/* One sample of family @name for instance @s, with @extra labels
 * ("region", "BAR0", ... NULL-terminated pairs; may be NULL). */
static void
om_sample(const char *name, struct json_object *s, const char *const *extra,
          int64_t v)
{
    size_t i;

    printf("%s_total{uuid=\"", name);
    om_label_value(cli_jstr(s, "uuid", ""));
    printf("\",type=\"");
    om_label_value(cli_jstr(s, "type", ""));
    printf("\",parent=\"");
    om_label_value(cli_jstr(s, "parent", ""));
    putchar('"');
    for (i = 0; extra != NULL && extra[i] != NULL; i += 2) {
        printf(",%s=\"", extra[i]);
        om_label_value(extra[i + 1]);
        putchar('"');
    }
    printf("} %lld\n", (long long)v);
}

static int64_t
om_int(struct json_object *o, const char *key)
{
    return json_object_get_int64(json_object_object_get(o, key));
}

/* Every key of the "counters" objects of @stats, in first-seen order. */
static struct json_object *
om_counter_keys(struct json_object *stats)
{
    struct json_object *keys = json_object_new_object();
    size_t i;

    for (i = 0; i < cli_alen(stats); i++) {
        struct json_object *ctr = json_object_object_get(
            json_object_array_get_idx(stats, i), "counters");

        if (!json_object_is_type(ctr, json_type_object))
            continue;
        json_object_object_foreach(ctr, k, v)
        {
            (void)v;
            if (!json_object_object_get_ex(keys, k, NULL))
                json_object_object_add(keys, k, NULL);
        }
    }
    return keys;
}

/* The per-register families: @what is "reads" or "writes". */
static void
om_registers(struct json_object *stats, const char *what)
{
    char name[64], help[160];
    size_t i, r, t;

    snprintf(name, sizeof(name), "umdev_register_%s", what);
    snprintf(help, sizeof(help),
             "trapped %s of a register the mediation profile declares", what);
    om_family(name, help);
    for (i = 0; i < cli_alen(stats); i++) {
        struct json_object *s = json_object_array_get_idx(stats, i);
        struct json_object *regs = json_object_object_get(s, "regions");

        for (r = 0; r < cli_alen(regs); r++) {
            struct json_object *reg = json_object_array_get_idx(regs, r);
            struct json_object *list = json_object_object_get(reg, "registers");

            for (t = 0; t < cli_alen(list); t++) {
                struct json_object *e = json_object_array_get_idx(list, t);
                const char *const labels[] = { "region",
                                               cli_jstr(reg, "name", ""),
                                               "register",
                                               cli_jstr(e, "name", ""), NULL };

                om_sample(name, s, labels, om_int(e, what));
            }
        }
    }
}

void
cli_print_openmetrics(struct json_object *stats)
{
    struct json_object *keys;
    char name[96], help[160];
    size_t i, j, k;

    /* No instance, no family. */
    if (cli_alen(stats) == 0) {
        printf("# EOF\n");
        return;
    }
    keys = om_counter_keys(stats);
    json_object_object_foreach(keys, key, kv)
    {
        const char *help_text = NULL;

        (void)kv;
        om_name(name, sizeof(name), "umdev_counter_", key);
        for (k = 0; k < sizeof(om_counters) / sizeof(om_counters[0]); k++) {
            if (strcmp(om_counters[k].key, key) == 0) {
                snprintf(name, sizeof(name), "%s", om_counters[k].family);
                help_text = om_counters[k].help;
            }
        }
        if (help_text == NULL) {
            snprintf(help, sizeof(help), "the device's counter %s", key);
            help_text = help;
        }
        om_family(name, help_text);
        for (i = 0; i < cli_alen(stats); i++) {
            struct json_object *s = json_object_array_get_idx(stats, i);
            struct json_object *v;

            if (json_object_object_get_ex(json_object_object_get(s, "counters"),
                                          key, &v))
                om_sample(name, s, NULL, json_object_get_int64(v));
        }
    }
    json_object_put(keys);
    om_family("umdev_refused",
              "accesses the mediation profile refused (EACCES to the client)");
    for (i = 0; i < cli_alen(stats); i++) {
        struct json_object *s = json_object_array_get_idx(stats, i);

        om_sample("umdev_refused", s, NULL, om_int(s, "refused"));
    }
    om_family("umdev_irq_signals", "interrupts signalled, per IRQ index");
    for (i = 0; i < cli_alen(stats); i++) {
        struct json_object *s = json_object_array_get_idx(stats, i);
        struct json_object *irqs = json_object_object_get(s, "irqs");

        for (j = 0; j < cli_alen(irqs); j++) {
            struct json_object *q = json_object_array_get_idx(irqs, j);
            const char *const labels[] = { "irq", cli_jstr(q, "name", ""),
                                           NULL };

            om_sample("umdev_irq_signals", s, labels, om_int(q, "count"));
        }
    }
    om_registers(stats, "reads");
    om_registers(stats, "writes");
    printf("# EOF\n");
}
