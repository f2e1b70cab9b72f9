/*
 * The JSON forms of a device: its mediation profile (docs/CRITERIA.md
 * "The profile's JSON form") and the introspection document `umdevctl
 * info` and `umdevctl stats` are built from. Everything is read through
 * lib/dev's and lib/pci's public getters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "audit.h"
#include "umdev/profile.h"

static const char *const region_names[] = { "BAR0", "BAR1",   "BAR2",
                                            "BAR3", "BAR4",   "BAR5",
                                            "ROM",  "CONFIG", "VGA" };
static const char *const irq_names[] = { "INTX", "MSI", "MSIX", "ERR", "REQ" };

const char *
audit_region_name(uint32_t index)
{
    return index < sizeof(region_names) / sizeof(region_names[0])
               ? region_names[index]
               : "?";
}

const char *
audit_irq_name(uint32_t index)
{
    return index < sizeof(irq_names) / sizeof(irq_names[0]) ? irq_names[index]
                                                            : "?";
}

static struct json_object *
hex(uint64_t v)
{
    char b[24];

    snprintf(b, sizeof(b), "0x%" PRIx64, v);
    return json_object_new_string(b);
}

static struct json_object *
widths_json(uint32_t widths)
{
    struct json_object *a = json_object_new_array();
    unsigned int w;

    for (w = 1; w <= 8; w *= 2)
        if (widths & UMDEV_W(w))
            json_object_array_add(a, json_object_new_int((int)w));
    return a;
}

static struct json_object *
regs_json(struct umdev_dev *dev, const struct umdev_profile *p, size_t slot)
{
    const struct umdev_profile_region *pr = &p->regions[slot];
    struct json_object *a = json_object_new_array();
    size_t i;

    for (i = 0; i < pr->nregs; i++) {
        const struct umdev_profile_reg *r = &pr->regs[i];
        struct umdev_profile_counters c = { 0, 0 };
        struct json_object *o = json_object_new_object();

        umdev_dev_profile_counters(dev, slot, i, &c);
        json_object_object_add(o, "name", json_object_new_string(r->name));
        json_object_object_add(o, "offset",
                               json_object_new_int64((int64_t)r->offset));
        json_object_object_add(o, "size", json_object_new_int64(r->size));
        json_object_object_add(o, "widths", widths_json(r->widths));
        if (r->widths & UMDEV_W_BULK)
            json_object_object_add(o, "bulk", json_object_new_boolean(true));
        json_object_object_add(
            o, "access",
            json_object_new_string(r->access == UMDEV_PROFILE_RW  ? "rw"
                                   : r->access == UMDEV_PROFILE_R ? "r"
                                                                  : "w"));
        json_object_object_add(o, "data_path",
                               json_object_new_boolean(r->data_path));
        json_object_object_add(o, "volatile",
                               json_object_new_boolean(r->is_volatile));
        json_object_object_add(o, "purpose",
                               json_object_new_string(r->purpose));
        json_object_object_add(o, "reads",
                               json_object_new_int64((int64_t)c.reads));
        json_object_object_add(o, "writes",
                               json_object_new_int64((int64_t)c.writes));
        json_object_array_add(a, o);
    }
    return a;
}

/* The profile entry declaring region @index, or -1. */
static int
profile_slot(const struct umdev_profile *p, uint32_t index)
{
    size_t i;

    for (i = 0; i < p->nregions; i++)
        if (p->regions[i].index == index)
            return (int)i;
    return -1;
}

/* Regions other than config space (lib/pci's, shown under "config"). */
static struct json_object *
regions_json(struct umdev_dev *dev, const struct umdev_profile *p,
             bool has_config)
{
    struct json_object *a = json_object_new_array();
    uint32_t i;

    for (i = 0; i < umdev_dev_num_regions(dev); i++) {
        struct umdev_dev_region_info ri;
        struct json_object *o, *mm;
        size_t k;
        int slot;

        if (umdev_dev_region_info(dev, i, &ri) < 0 || !ri.present ||
            (has_config && i == UMDEV_PCI_CONFIG_REGION))
            continue;
        o = json_object_new_object();
        mm = json_object_new_array();
        json_object_object_add(o, "index", json_object_new_int((int)i));
        json_object_object_add(o, "name",
                               json_object_new_string(audit_region_name(i)));
        json_object_object_add(o, "size",
                               json_object_new_int64((int64_t)ri.size));
        for (k = 0; ri.shm && k < ri.nr_areas; k++) {
            struct json_object *m = json_object_new_object();

            json_object_object_add(
                m, "offset",
                json_object_new_int64((int64_t)ri.areas[k].offset));
            json_object_object_add(
                m, "size", json_object_new_int64((int64_t)ri.areas[k].size));
            json_object_array_add(mm, m);
        }
        json_object_object_add(o, "mmap", mm);
        slot = profile_slot(p, i);
        json_object_object_add(o, "trapped",
                               slot >= 0 ? regs_json(dev, p, (size_t)slot)
                                         : json_object_new_array());
        json_object_array_add(a, o);
    }
    return a;
}

/* Writable bits as {offset, rw, w1c} for each dword with any set, and the
 * capability chain. */
static struct json_object *
config_json(struct umdev_pci *pci)
{
    struct json_object *o = json_object_new_object();
    struct json_object *bits = json_object_new_array();
    struct json_object *caps = json_object_new_array();
    uint32_t size = umdev_pci_config_size(pci), off;
    int at;

    for (off = 0; off < size; off += 4) {
        uint8_t w[4], c[4];
        uint32_t wm, cm;
        struct json_object *e;

        umdev_pci_config_masks(pci, off, w, c, 4);
        wm = (uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 |
             (uint32_t)w[3] << 24;
        cm = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 |
             (uint32_t)c[3] << 24;
        if (wm == 0 && cm == 0)
            continue;
        e = json_object_new_object();
        json_object_object_add(e, "offset", hex(off));
        json_object_object_add(e, "rw", hex(wm));
        json_object_object_add(e, "w1c", hex(cm));
        json_object_array_add(bits, e);
    }
    for (at = umdev_pci_cap_find(pci, 0, 0); at > 0;
         at = umdev_pci_cap_find(pci, 0, (unsigned int)at)) {
        struct json_object *e = json_object_new_object();
        uint8_t id = 0;

        umdev_pci_config_read(pci, (uint32_t)at, &id, 1);
        json_object_object_add(e, "offset", hex((uint64_t)at));
        json_object_object_add(e, "id", hex(id));
        json_object_array_add(caps, e);
    }
    json_object_object_add(o, "size", json_object_new_int64(size));
    json_object_object_add(o, "writable", bits);
    json_object_object_add(o, "capabilities", caps);
    return o;
}

/* IRQ indices with vectors: {index, name, count}. */
static struct json_object *
irqs_json(struct umdev_dev *dev)
{
    struct json_object *a = json_object_new_array();
    uint32_t i;

    for (i = 0; i < umdev_dev_num_irqs(dev); i++) {
        uint32_t count = umdev_dev_irq_count(dev, i);
        struct json_object *q;

        if (count == 0)
            continue;
        q = json_object_new_object();
        json_object_object_add(q, "index", json_object_new_int((int)i));
        json_object_object_add(q, "name",
                               json_object_new_string(audit_irq_name(i)));
        json_object_object_add(q, "count", json_object_new_int((int)count));
        json_object_array_add(a, q);
    }
    return a;
}

struct json_object *
audit_profile_object(struct umdev_dev *dev, struct umdev_pci *pci)
{
    const struct umdev_profile *p = umdev_dev_profile(dev);
    struct json_object *o, *dp;

    if (p == NULL)
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "type",
                           json_object_new_string(p->type ? p->type : ""));
    dp = json_object_new_object();
    json_object_object_add(
        dp, "kind",
        json_object_new_string(p->data_path == UMDEV_PROFILE_DP_RING ? "ring"
                                                                     : "pio"));
    json_object_object_add(dp, "max_msgs_per_io",
                           json_object_new_int64(p->max_msgs_per_io));
    if (p->data_path_unit != NULL)
        json_object_object_add(dp, "unit",
                               json_object_new_string(p->data_path_unit));
    if (p->data_path_note != NULL)
        json_object_object_add(dp, "note",
                               json_object_new_string(p->data_path_note));
    json_object_object_add(o, "data_path", dp);
    /* Whether guest RAM must be shared with the server (share=on), or the
     * device also works through DMA_READ/DMA_WRITE messages. */
    json_object_object_add(
        o, "needs_shared_memory",
        json_object_new_boolean(umdev_dev_needs_shared_memory(dev)));
    json_object_object_add(o, "regions", regions_json(dev, p, pci != NULL));
    json_object_object_add(o, "irqs", irqs_json(dev));
    if (pci != NULL)
        json_object_object_add(o, "config", config_json(pci));
    json_object_object_add(
        o, "refused",
        json_object_new_int64((int64_t)umdev_dev_profile_refused(dev)));
    return o;
}

char *
audit_profile_json(struct umdev_dev *dev, struct umdev_pci *pci)
{
    struct json_object *o = audit_profile_object(dev, pci);
    char *out;

    if (o == NULL)
        return NULL;
    out = strdup(json_object_to_json_string_ext(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return out;
}

static struct json_object *
counters_json(struct umdev_dev *dev)
{
    struct json_object *o = json_object_new_object();
    struct umdev_dev_stats st;

    umdev_dev_get_stats(dev, &st);
#define COUNTER(name)                                                          \
    json_object_object_add(o, #name, json_object_new_int64((int64_t)st.name))
    COUNTER(msgs);
    COUNTER(errors);
    COUNTER(region_reads);
    COUNTER(region_writes);
    COUNTER(dma_bytes);
    COUNTER(irqs);
    COUNTER(irqs_dropped);
    COUNTER(attaches);
#undef COUNTER
    return o;
}

struct json_object *
audit_device_object(struct umdev_dev *dev, struct umdev_pci *pci)
{
    struct json_object *o = json_object_new_object();
    struct json_object *regions = json_object_new_array();
    struct json_object *prof;
    uint32_t i;

    if (umdev_dev_attached(dev)) {
        struct ucred cred;
        socklen_t len = sizeof(cred);

        if (getsockopt(umdev_dev_client_fd(dev), SOL_SOCKET, SO_PEERCRED, &cred,
                       &len) == 0)
            json_object_object_add(o, "client_pid",
                                   json_object_new_int64(cred.pid));
    }
    for (i = 0; i < umdev_dev_num_regions(dev); i++) {
        struct umdev_dev_region_info ri;
        struct json_object *r;

        if (umdev_dev_region_info(dev, i, &ri) < 0 || !ri.present)
            continue;
        r = json_object_new_object();
        json_object_object_add(r, "index", json_object_new_int((int)i));
        json_object_object_add(r, "name",
                               json_object_new_string(audit_region_name(i)));
        json_object_object_add(r, "size",
                               json_object_new_int64((int64_t)ri.size));
        json_object_object_add(r, "mmap", json_object_new_boolean(ri.shm));
        json_object_object_add(r, "trapped",
                               json_object_new_boolean(ri.trapped));
        json_object_array_add(regions, r);
    }
    json_object_object_add(o, "regions", regions);
    json_object_object_add(o, "irqs", irqs_json(dev));
    json_object_object_add(o, "counters", counters_json(dev));
    json_object_object_add(
        o, "needs_shared_memory",
        json_object_new_boolean(umdev_dev_needs_shared_memory(dev)));
    if (umdev_dev_guest_memory_problem(dev) != NULL)
        json_object_object_add(
            o, "guest_memory",
            json_object_new_string(umdev_dev_guest_memory_problem(dev)));
    /* Per-register trap counts and refusals (`umdevctl stats`). */
    prof = audit_profile_object(dev, pci);
    if (prof != NULL)
        json_object_object_add(o, "profile", prof);
    return o;
}
