/*
 * The criteria of docs/CRITERIA.md, checked by machine: in place from the
 * device object and its profile (1, 2 declared, 3), and from the
 * conformance kit's result (2 measured, 4, 5, 6).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "audit.h"
#include "umdev/profile.h"

enum verdict { V_PASS, V_FAIL, V_NOT_RUN };

struct audit {
    struct json_object *criteria;
    bool any_fail, any_not_run;
};

static void __attribute__((format(printf, 5, 6)))
report(struct audit *a, int id, const char *name, enum verdict v,
       const char *fmt, ...)
{
    struct json_object *o = json_object_new_object();
    char evidence[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(evidence, sizeof(evidence), fmt, ap);
    va_end(ap);
    json_object_object_add(o, "id", json_object_new_int(id));
    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "verdict",
                           json_object_new_string(v == V_PASS   ? "pass"
                                                  : v == V_FAIL ? "fail"
                                                                : "not run"));
    json_object_object_add(o, "evidence", json_object_new_string(evidence));
    json_object_array_add(a->criteria, o);
    if (v == V_FAIL)
        a->any_fail = true;
    if (v == V_NOT_RUN)
        a->any_not_run = true;
}

/* Capability IDs lib/pci builds (pci.h's umdev_pci_cap_add_*). */
static const char *
libpci_cap_name(uint8_t id)
{
    switch (id) {
    case 0x01:
        return "PM";
    case 0x05:
        return "MSI";
    case 0x09:
        return "vendor";
    case 0x10:
        return "PCIe";
    case 0x11:
        return "MSI-X";
    default:
        return NULL;
    }
}

static void
criterion_config(struct audit *a, struct umdev_dev *dev, struct umdev_pci *pci)
{
    static const char name[] = "config space and capabilities through lib/pci";
    struct umdev_dev_region_info ri;
    char caps[256] = "";
    size_t used = 0;
    unsigned int writable = 0;
    uint32_t size, off;
    int at;

    if (pci == NULL) {
        umdev_dev_region_info(dev, UMDEV_PCI_CONFIG_REGION, &ri);
        report(a, 1, name, V_FAIL,
               ri.present ? "no lib/pci config space: region %u is served by "
                            "device code with no write masks the framework "
                            "can enforce"
                          : "the device has no PCI config space (region %u)",
               (unsigned)UMDEV_PCI_CONFIG_REGION);
        return;
    }
    size = umdev_pci_config_size(pci);
    for (off = 0; off < size; off++) {
        uint8_t w = 0, c = 0;

        umdev_pci_config_masks(pci, off, &w, &c, 1);
        writable += (unsigned)__builtin_popcount(w | c);
    }
    for (at = umdev_pci_cap_find(pci, 0, 0); at > 0;
         at = umdev_pci_cap_find(pci, 0, (unsigned int)at)) {
        const char *cap;
        uint8_t id = 0;
        int n;

        umdev_pci_config_read(pci, (uint32_t)at, &id, 1);
        cap = libpci_cap_name(id);
        if (cap == NULL) {
            report(a, 1, name, V_FAIL,
                   "capability 0x%02x at 0x%02x is not one lib/pci builds", id,
                   at);
            return;
        }
        n = snprintf(caps + used, sizeof(caps) - used, "%s%s@0x%02x",
                     used ? ", " : "", cap, at);
        if (n > 0 && (size_t)n < sizeof(caps) - used)
            used += (size_t)n;
    }
    if (at < 0) {
        report(a, 1, name, V_FAIL,
               "capability chain broken (a pointer below 0x40, unaligned, "
               "out of config space or in a loop)");
        return;
    }
    report(a, 1, name, V_PASS,
           "lib/pci config space of %u bytes, %u guest-writable bits (masks "
           "enforced by lib/pci), capabilities: %s",
           (unsigned)size, writable, used ? caps : "none");
}

static bool
region_fully_mappable(const struct umdev_dev_region_info *ri)
{
    return ri->shm && !ri->trapped && ri->nr_areas == 1 &&
           ri->areas[0].offset == 0 && ri->areas[0].size == ri->size;
}

static void
criterion_surface(struct audit *a, struct umdev_dev *dev, bool has_config)
{
    static const char name[] = "trapped surface bounded and documented";
    const struct umdev_profile *p = umdev_dev_profile(dev);
    char where[256] = "";
    size_t used = 0, total = 0, i;
    uint32_t idx;

    if (p == NULL) {
        report(a, 3, name, V_FAIL,
               "no mediation profile: nothing says what is trapped");
        return;
    }
    for (idx = 0; idx < umdev_dev_num_regions(dev); idx++) {
        struct umdev_dev_region_info ri;
        bool declared = false;

        if (umdev_dev_region_info(dev, idx, &ri) < 0 || !ri.present ||
            (has_config && idx == UMDEV_PCI_CONFIG_REGION) ||
            region_fully_mappable(&ri))
            continue;
        for (i = 0; i < p->nregions; i++)
            if (p->regions[i].index == idx && p->regions[i].nregs > 0)
                declared = true;
        if (!declared) {
            report(a, 3, name, V_FAIL,
                   "region %u is trapped but declares no registers",
                   (unsigned)idx);
            return;
        }
    }
    for (i = 0; i < p->nregions; i++) {
        int n = snprintf(where + used, sizeof(where) - used, "%sregion %u: %zu",
                         used ? ", " : "", (unsigned)p->regions[i].index,
                         p->regions[i].nregs);

        if (n > 0 && (size_t)n < sizeof(where) - used)
            used += (size_t)n;
        total += p->regions[i].nregs;
    }
    if (total > AUDIT_MAX_TRAPPED_REGS) {
        report(a, 3, name, V_FAIL,
               "%zu trapped registers (%s): more than the bound of %u", total,
               where, AUDIT_MAX_TRAPPED_REGS);
        return;
    }
    report(a, 3, name, V_PASS,
           "%zu trapped registers (%s), bound %u, each named with a purpose; "
           "every trapped region declared",
           total, where, AUDIT_MAX_TRAPPED_REGS);
}

/* The kit's result: a check by name, or NULL. */
static struct json_object *
kit_check(struct json_object *kit, const char *check)
{
    struct json_object *arr = kit;
    size_t i;

    if (kit == NULL)
        return NULL;
    if (json_object_is_type(kit, json_type_object) &&
        !json_object_object_get_ex(kit, "checks", &arr))
        return NULL;
    if (!json_object_is_type(arr, json_type_array))
        return NULL;
    for (i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *c = json_object_array_get_idx(arr, i), *n;

        if (json_object_object_get_ex(c, "name", &n) &&
            strcmp(json_object_get_string(n), check) == 0)
            return c;
    }
    return NULL;
}

static bool
kit_passed(struct json_object *c)
{
    struct json_object *v;

    return c != NULL && json_object_object_get_ex(c, "pass", &v) &&
           json_object_get_boolean(v);
}

static const char *
kit_evidence(struct json_object *c)
{
    struct json_object *v;

    if (c != NULL && json_object_object_get_ex(c, "evidence", &v))
        return json_object_get_string(v);
    return "";
}

static void
criterion_data_path(struct audit *a, struct umdev_dev *dev,
                    struct json_object *kit)
{
    static const char name[] = "data path untrapped";
    const struct umdev_profile *p = umdev_dev_profile(dev);
    struct json_object *c = kit_check(kit, "datapath");
    char declared[512];

    if (p == NULL) {
        report(a, 2, name, V_FAIL,
               "no mediation profile declares the data "
               "path");
        return;
    }
    if (p->data_path == UMDEV_PROFILE_DP_RING) {
        snprintf(declared, sizeof(declared),
                 "ring: descriptors and indices in memory, declared 0 "
                 "messages per %s",
                 p->data_path_unit ? p->data_path_unit : "I/O");
    } else {
        if (p->data_path_note == NULL || p->data_path_note[0] == '\0' ||
            p->max_msgs_per_io == 0) {
            report(a, 2, name, V_FAIL,
                   "register data path (pio) without a bound and a reason");
            return;
        }
        snprintf(declared, sizeof(declared),
                 "trapped data path by design (pio): at most %u messages "
                 "per %s, because %s",
                 (unsigned)p->max_msgs_per_io,
                 p->data_path_unit ? p->data_path_unit : "I/O",
                 p->data_path_note);
    }
    if (kit == NULL) {
        report(a, 2, name, V_NOT_RUN,
               "%s; not measured (run with --conformance)", declared);
        return;
    }
    if (c == NULL) {
        report(a, 2, name, V_FAIL,
               "%s; the conformance run has no "
               "datapath check",
               declared);
        return;
    }
    report(a, 2, name, kit_passed(c) ? V_PASS : V_FAIL, "%s; measured: %s",
           declared, kit_evidence(c));
}

static void
criterion_from_kit(struct audit *a, struct json_object *kit, int id,
                   const char *name, const char *check, const char *what)
{
    struct json_object *c = kit_check(kit, check);

    if (kit == NULL) {
        report(a, id, name, V_NOT_RUN, "%s; run with --conformance", what);
        return;
    }
    if (c == NULL) {
        report(a, id, name, V_FAIL, "the conformance run has no %s check",
               check);
        return;
    }
    report(a, id, name, kit_passed(c) ? V_PASS : V_FAIL, "%s: %s", what,
           kit_evidence(c));
}

static void
criterion_kit(struct audit *a, struct json_object *kit)
{
    static const char name[] = "passes the conformance kit";
    struct json_object *arr = kit;
    char failed[512] = "";
    size_t i, n = 0, used = 0;

    if (kit == NULL) {
        report(a, 5, name, V_NOT_RUN, "run with --conformance");
        return;
    }
    if (json_object_is_type(kit, json_type_object))
        json_object_object_get_ex(kit, "checks", &arr);
    if (!json_object_is_type(arr, json_type_array) ||
        json_object_array_length(arr) == 0) {
        report(a, 5, name, V_FAIL, "the conformance run reported no checks");
        return;
    }
    for (i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *c = json_object_array_get_idx(arr, i), *nm;

        n++;
        if (kit_passed(c))
            continue;
        if (json_object_object_get_ex(c, "name", &nm)) {
            int k = snprintf(failed + used, sizeof(failed) - used, "%s%s",
                             used ? ", " : "", json_object_get_string(nm));

            if (k > 0 && (size_t)k < sizeof(failed) - used)
                used += (size_t)k;
        }
    }
    if (used > 0)
        report(a, 5, name, V_FAIL, "failed: %s (of %zu checks)", failed, n);
    else
        report(a, 5, name, V_PASS, "all %zu checks passed", n);
}

int
audit_run(struct umdev_dev *dev, struct umdev_pci *pci,
          const char *conformance_json, char **json_out, bool *all_pass)
{
    struct audit a = { .criteria = json_object_new_array() };
    struct json_object *kit = NULL, *out, *prof;
    const struct umdev_profile *p = umdev_dev_profile(dev);
    char *text;

    *json_out = NULL;
    *all_pass = false;
    if (conformance_json != NULL) {
        kit = json_tokener_parse(conformance_json);
        if (kit == NULL) {
            json_object_put(a.criteria);
            return -EINVAL;
        }
    }
    criterion_config(&a, dev, pci);
    criterion_data_path(&a, dev, kit);
    criterion_surface(&a, dev, pci != NULL);
    criterion_from_kit(&a, kit, 4,
                       "guest addresses reach memory only through the DMA "
                       "API",
                       "fuzz",
                       "random registers, DMA maps and unmaps against the "
                       "server");
    criterion_kit(&a, kit);
    criterion_from_kit(&a, kit, 6, "reset returns the power-on state", "reset",
                       "config space and registers after reset");
    out = json_object_new_object();
    json_object_object_add(out, "type",
                           json_object_new_string(p && p->type ? p->type : ""));
    json_object_object_add(out, "verdict",
                           json_object_new_string(a.any_fail      ? "fail"
                                                  : a.any_not_run ? "incomplete"
                                                                  : "pass"));
    json_object_object_add(out, "criteria", a.criteria);
    prof = audit_profile_object(dev, pci);
    if (prof != NULL)
        json_object_object_add(out, "profile", prof);
    text = strdup(json_object_to_json_string_ext(
        out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(out);
    json_object_put(kit);
    if (text == NULL)
        return -ENOMEM;
    *json_out = text;
    *all_pass = !a.any_fail && !a.any_not_run;
    return 0;
}
