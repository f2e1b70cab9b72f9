/*
 * umdev-probe's output (probe.h): what the probe gathered, as text in the
 * manner of lspci -vv or as one JSON object whose keys keep insertion
 * order, so golden files can compare it byte for byte.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdio.h>

#include <json-c/json.h>

#include "probe.h"

/* ------------------------------------------------------------------ */
/* Names of bits                                                      */

struct flag_name {
    uint32_t bit;
    const char *name;
};

static const struct flag_name device_flags[] = {
    { VFIO_DEVICE_FLAGS_RESET, "RESET" },
    { VFIO_DEVICE_FLAGS_PCI, "PCI" },
    { 0, NULL },
};

static const struct flag_name region_flags[] = {
    { VFIO_REGION_INFO_FLAG_READ, "READ" },
    { VFIO_REGION_INFO_FLAG_WRITE, "WRITE" },
    { VFIO_REGION_INFO_FLAG_MMAP, "MMAP" },
    { VFIO_REGION_INFO_FLAG_CAPS, "CAPS" },
    { 0, NULL },
};

static const struct flag_name irq_flags[] = {
    { VFIO_IRQ_INFO_EVENTFD, "EVENTFD" },
    { VFIO_IRQ_INFO_MASKABLE, "MASKABLE" },
    { VFIO_IRQ_INFO_AUTOMASKED, "AUTOMASKED" },
    { VFIO_IRQ_INFO_NORESIZE, "NORESIZE" },
    { 0, NULL },
};

static const struct flag_name command_bits[] = {
    { PCI_COMMAND_IO, "I/O" },
    { PCI_COMMAND_MEMORY, "Mem" },
    { PCI_COMMAND_MASTER, "BusMaster" },
    { PCI_COMMAND_INTX_DISABLE, "INTx-disable" },
    { 0, NULL },
};

static const struct flag_name status_bits[] = {
    { PCI_STATUS_CAP_LIST, "CapList" },
    { PCI_STATUS_INTERRUPT, "INTx" },
    { 0, NULL },
};

static const char *
human(uint64_t n, char *buf, size_t len)
{
    static const char units[] = "KMGTPE";
    unsigned u = 0;

    while (n >= 1024 && n % 1024 == 0 && u < sizeof(units) - 1) {
        n /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64, n);
    else
        snprintf(buf, len, "%" PRIu64 "%c", n, units[u - 1]);
    return buf;
}

/* ------------------------------------------------------------------ */
/* JSON helpers                                                       */

static void
jadd_u64(struct json_object *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_uint64(v));
}

static void
jadd_str(struct json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, json_object_new_string(v));
}

static void
jadd_bool(struct json_object *o, const char *key, bool v)
{
    json_object_object_add(o, key, json_object_new_boolean(v));
}

/* ------------------------------------------------------------------ */
/* Capability fields (probe_pci.c decodes them)                       */

static bool
cap_has_fields(const struct pci_cap *cap)
{
    return cap->id == PCI_CAP_ID_MSI || cap->id == PCI_CAP_ID_MSIX;
}

static char
pm(bool on)
{
    return on ? '+' : '-';
}

/* lspci -vv's line, and for MSI-X the two after it. */
static void
text_cap_fields(const struct pci_cap *cap)
{
    if (cap->id == PCI_CAP_ID_MSI) {
        printf(": Enable%c Count=%u/%u Maskable%c 64bit%c", pm(cap->enable),
               cap->count_enabled, cap->count, pm(cap->maskable),
               pm(cap->is64));
        return;
    }
    printf(": Enable%c FunctionMask%c TableSize=%u\n", pm(cap->enable),
           pm(cap->function_mask), cap->table_size);
    printf("%16sVector table: BAR=%" PRIu32 " offset=%08" PRIx32 "\n", "",
           cap->table_bir, cap->table_offset);
    printf("%16sPBA: BAR=%" PRIu32 " offset=%08" PRIx32, "", cap->pba_bir,
           cap->pba_offset);
}

static void
json_cap_fields(const struct pci_cap *cap, struct json_object *o)
{
    jadd_bool(o, "enable", cap->enable);
    if (cap->id == PCI_CAP_ID_MSI) {
        jadd_u64(o, "count", cap->count);
        jadd_u64(o, "count_enabled", cap->count_enabled);
        jadd_bool(o, "64bit", cap->is64);
        jadd_bool(o, "maskable", cap->maskable);
        return;
    }
    jadd_bool(o, "function_mask", cap->function_mask);
    jadd_u64(o, "table_size", cap->table_size);
    jadd_u64(o, "table_bir", cap->table_bir);
    jadd_u64(o, "table_offset", cap->table_offset);
    jadd_u64(o, "pba_bir", cap->pba_bir);
    jadd_u64(o, "pba_offset", cap->pba_offset);
}

/* ------------------------------------------------------------------ */

/* The set bits by name, unnamed ones in hex, "-" when none is set. */
static void
text_flags(uint32_t v, const struct flag_name *names)
{
    const char *sep = "";

    for (; names->name != NULL; names++) {
        if (v & names->bit) {
            printf("%s%s", sep, names->name);
            sep = " ";
            v &= ~names->bit;
        }
    }
    if (v != 0)
        printf("%s0x%" PRIx32, sep, v);
    else if (*sep == '\0')
        printf("-");
}

/* lspci style: every named bit with + or -. */
static void
text_bits(uint32_t v, const struct flag_name *names)
{
    const char *sep = "";

    for (; names->name != NULL; names++) {
        printf("%s%s%c", sep, names->name, v & names->bit ? '+' : '-');
        sep = " ";
    }
}

static void
text_caps(const struct probe *p)
{
    const struct umdev_client_caps *caps = p->caps;
    char hb[32];

    printf("vfio-user %u.%u\n", caps->major, caps->minor);
    printf("  max_msg_fds %" PRIu32 ", max_data_xfer_size %" PRIu32
           " (%s), pgsizes 0x%" PRIx64 "\n",
           caps->max_msg_fds, caps->max_data_xfer_size,
           human(caps->max_data_xfer_size, hb, sizeof(hb)), caps->pgsizes);
    printf("  max_dma_maps %" PRIu32 ", write_multiple %s, migration %s\n",
           caps->max_dma_maps, caps->write_multiple ? "yes" : "no",
           caps->migration ? "yes" : "no");
}

static void
text_device(const struct probe *p)
{
    printf("Device: flags ");
    text_flags(p->dev.flags, device_flags);
    printf(", %" PRIu32 " regions, %" PRIu32 " IRQ indices\n",
           p->dev.num_regions, p->dev.num_irqs);
}

static void
text_regions(const struct probe *p)
{
    uint32_t i;
    size_t a;

    printf("Regions:\n");
    for (i = 0; i < p->dev.num_regions; i++) {
        const struct umdev_client_region *r = &p->regions[i];
        char nb[32], hb[32];

        printf("  %-2" PRIu32 " %-9s ", i,
               probe_region_name(p, i, nb, sizeof(nb)));
        if (r->size == 0) {
            printf("absent\n");
            continue;
        }
        printf("size 0x%" PRIx64 " (%s) ", r->size,
               human(r->size, hb, sizeof(hb)));
        text_flags(r->flags, region_flags);
        printf("\n");
        for (a = 0; a < r->nr_areas; a++)
            printf("               mmap 0x%" PRIx64 "+0x%" PRIx64 " (%s)\n",
                   r->areas[a].offset, r->areas[a].size,
                   human(r->areas[a].size, hb, sizeof(hb)));
    }
}

static void
text_irqs(const struct probe *p)
{
    uint32_t i;

    printf("IRQs:\n");
    for (i = 0; i < p->dev.num_irqs; i++) {
        char nb[32];

        printf("  %-2" PRIu32 " %-9s count %-4" PRIu32 " ", i,
               probe_irq_name(p, i, nb, sizeof(nb)), p->irqs[i].count);
        text_flags(p->irqs[i].flags, irq_flags);
        printf("\n");
    }
}

static void
text_pci_header(const struct pci_info *pci)
{
    uint32_t class_code = pci_cfg_get(pci, PCI_CLASS_PROG, 3);
    uint8_t pin = pci->cfg[PCI_INTERRUPT_PIN];

    printf("PCI config space (%zu bytes):\n", pci->len);
    printf("  Device %04x:%04x (rev %02x)\n",
           pci_cfg_get(pci, PCI_VENDOR_ID, 2),
           pci_cfg_get(pci, PCI_DEVICE_ID, 2), pci->cfg[PCI_REVISION_ID]);
    printf("  Subsystem: %04x:%04x\n",
           pci_cfg_get(pci, PCI_SUBSYSTEM_VENDOR_ID, 2),
           pci_cfg_get(pci, PCI_SUBSYSTEM_ID, 2));
    printf("  Class %02x %02x %02x: %s\n", class_code >> 16,
           (class_code >> 8) & 0xff, class_code & 0xff,
           pci_class_name(class_code));
    printf("  Control: ");
    text_bits(pci_cfg_get(pci, PCI_COMMAND, 2), command_bits);
    printf("\n  Status: ");
    text_bits(pci_cfg_get(pci, PCI_STATUS, 2), status_bits);
    printf("\n  Header type %02x (%s)\n", pci->cfg[PCI_HEADER_TYPE],
           pci_header_type_name(pci->cfg[PCI_HEADER_TYPE]));
    if (pin >= 1 && pin <= 4)
        printf("  Interrupt: pin %c routed to IRQ %u\n", 'A' + pin - 1,
               pci->cfg[PCI_INTERRUPT_LINE]);
    else if (pin != 0)
        printf("  Interrupt: invalid pin %u\n", pin);
}

static void
text_pci_bars(const struct pci_info *pci)
{
    unsigned i;

    for (i = 0; i < PCI_STD_NUM_BARS; i++) {
        const struct pci_bar *b = &pci->bars[i];
        char hb[32];

        if (!b->present)
            continue;
        human(b->size, hb, sizeof(hb));
        if (b->io) {
            printf("  Region %u: I/O ports at %04" PRIx64 " [size=%s]\n", i,
                   b->addr, hb);
            continue;
        }
        printf("  Region %u: Memory at %0*" PRIx64
               " (%s, %sprefetchable) [size=%s]\n",
               i, b->mem64 ? 16 : 8, b->addr, b->mem64 ? "64-bit" : "32-bit",
               b->prefetch ? "" : "non-", hb);
    }
}

static void
text_pci_caps(const struct pci_info *pci)
{
    size_t i;

    for (i = 0; i < pci->ncaps; i++) {
        const struct pci_cap *cap = &pci->caps[i];

        printf("  Capabilities: [%02x] %s (%02x)", cap->offset,
               pci_cap_name(cap->id), cap->id);
        if (cap_has_fields(cap) && cap->complete)
            text_cap_fields(cap);
        else if (cap_has_fields(cap))
            printf(": <truncated>");
        printf("\n");
    }
    if (pci->chain_error != NULL)
        printf("  Capabilities: [%02x] <chain broken: %s>\n", pci->chain_stop,
               pci->chain_error);
}

int
probe_print_text(const struct probe *p)
{
    text_caps(p);
    text_device(p);
    text_regions(p);
    text_irqs(p);
    if (p->pci.valid) {
        text_pci_header(&p->pci);
        text_pci_bars(&p->pci);
        text_pci_caps(&p->pci);
    }
    return 0;
}

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* The set bits by name; unnamed ones as one "0x..." string. */
static struct json_object *
json_flags(uint32_t v, const struct flag_name *names)
{
    struct json_object *a = json_object_new_array();
    char hex[16];

    for (; names->name != NULL; names++) {
        if (v & names->bit) {
            json_object_array_add(a, json_object_new_string(names->name));
            v &= ~names->bit;
        }
    }
    if (v != 0) {
        snprintf(hex, sizeof(hex), "0x%" PRIx32, v);
        json_object_array_add(a, json_object_new_string(hex));
    }
    return a;
}

static void
json_caps(const struct probe *p, struct json_object *out)
{
    const struct umdev_client_caps *caps = p->caps;
    struct json_object *v = json_object_new_object();
    struct json_object *c = json_object_new_object();

    jadd_u64(v, "major", caps->major);
    jadd_u64(v, "minor", caps->minor);
    json_object_object_add(out, "version", v);
    jadd_u64(c, "max_msg_fds", caps->max_msg_fds);
    jadd_u64(c, "max_data_xfer_size", caps->max_data_xfer_size);
    jadd_u64(c, "pgsizes", caps->pgsizes);
    jadd_u64(c, "max_dma_maps", caps->max_dma_maps);
    jadd_bool(c, "write_multiple", caps->write_multiple);
    jadd_bool(c, "migration", caps->migration);
    json_object_object_add(out, "capabilities", c);
}

static void
json_device(const struct probe *p, struct json_object *out)
{
    struct json_object *d = json_object_new_object();

    json_object_object_add(d, "flags", json_flags(p->dev.flags, device_flags));
    jadd_u64(d, "num_regions", p->dev.num_regions);
    jadd_u64(d, "num_irqs", p->dev.num_irqs);
    json_object_object_add(out, "device", d);
}

static struct json_object *
json_region(const struct probe *p, uint32_t i)
{
    const struct umdev_client_region *r = &p->regions[i];
    struct json_object *o = json_object_new_object();
    struct json_object *areas = json_object_new_array();
    char nb[32];
    size_t a;

    jadd_u64(o, "index", i);
    jadd_str(o, "name", probe_region_name(p, i, nb, sizeof(nb)));
    jadd_u64(o, "size", r->size);
    json_object_object_add(o, "flags", json_flags(r->flags, region_flags));
    for (a = 0; a < r->nr_areas; a++) {
        struct json_object *ao = json_object_new_object();

        jadd_u64(ao, "offset", r->areas[a].offset);
        jadd_u64(ao, "size", r->areas[a].size);
        json_object_array_add(areas, ao);
    }
    json_object_object_add(o, "mmap_areas", areas);
    return o;
}

static void
json_regions(const struct probe *p, struct json_object *out)
{
    struct json_object *arr = json_object_new_array();
    uint32_t i;

    for (i = 0; i < p->dev.num_regions; i++)
        json_object_array_add(arr, json_region(p, i));
    json_object_object_add(out, "regions", arr);
}

static void
json_irqs(const struct probe *p, struct json_object *out)
{
    struct json_object *arr = json_object_new_array();
    uint32_t i;

    for (i = 0; i < p->dev.num_irqs; i++) {
        struct json_object *o = json_object_new_object();
        char nb[32];

        jadd_u64(o, "index", i);
        jadd_str(o, "name", probe_irq_name(p, i, nb, sizeof(nb)));
        jadd_u64(o, "count", p->irqs[i].count);
        json_object_object_add(o, "flags",
                               json_flags(p->irqs[i].flags, irq_flags));
        json_object_array_add(arr, o);
    }
    json_object_object_add(out, "irqs", arr);
}

static void
json_pci_header(const struct pci_info *pci, struct json_object *o)
{
    static const struct {
        const char *key;
        unsigned off, len;
    } fields[] = {
        { "vendor_id", PCI_VENDOR_ID, 2 },
        { "device_id", PCI_DEVICE_ID, 2 },
        { "subsystem_vendor_id", PCI_SUBSYSTEM_VENDOR_ID, 2 },
        { "subsystem_id", PCI_SUBSYSTEM_ID, 2 },
        { "class", PCI_CLASS_PROG, 3 },
        { "revision", PCI_REVISION_ID, 1 },
        { "command", PCI_COMMAND, 2 },
        { "status", PCI_STATUS, 2 },
        { "header_type", PCI_HEADER_TYPE, 1 },
        { "interrupt_pin", PCI_INTERRUPT_PIN, 1 },
        { "interrupt_line", PCI_INTERRUPT_LINE, 1 },
    };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(fields); i++)
        jadd_u64(o, fields[i].key,
                 pci_cfg_get(pci, fields[i].off, fields[i].len));
}

static void
json_pci_bars(const struct pci_info *pci, struct json_object *o)
{
    struct json_object *arr = json_object_new_array();
    unsigned i;

    for (i = 0; i < PCI_STD_NUM_BARS; i++) {
        const struct pci_bar *b = &pci->bars[i];
        struct json_object *bo;

        if (!b->present)
            continue;
        bo = json_object_new_object();
        jadd_u64(bo, "index", i);
        jadd_str(bo, "type", b->io ? "io" : b->mem64 ? "mem64" : "mem32");
        jadd_bool(bo, "prefetchable", b->prefetch);
        jadd_u64(bo, "size", b->size);
        jadd_u64(bo, "address", b->addr);
        json_object_array_add(arr, bo);
    }
    json_object_object_add(o, "bars", arr);
}

static void
json_pci_caps(const struct pci_info *pci, struct json_object *o)
{
    struct json_object *arr = json_object_new_array();
    size_t i;

    for (i = 0; i < pci->ncaps; i++) {
        const struct pci_cap *cap = &pci->caps[i];
        struct json_object *co = json_object_new_object();

        jadd_u64(co, "offset", cap->offset);
        jadd_u64(co, "id", cap->id);
        jadd_str(co, "name", pci_cap_name(cap->id));
        if (cap_has_fields(cap) && cap->complete)
            json_cap_fields(cap, co);
        json_object_array_add(arr, co);
    }
    json_object_object_add(o, "capabilities", arr);
    if (pci->chain_error != NULL) {
        struct json_object *eo = json_object_new_object();

        jadd_u64(eo, "offset", pci->chain_stop);
        jadd_str(eo, "reason", pci->chain_error);
        json_object_object_add(o, "capability_chain_error", eo);
    }
}

int
probe_print_json(const struct probe *p)
{
    struct json_object *out = json_object_new_object();
    const char *s;

    if (out == NULL)
        return -ENOMEM;
    json_caps(p, out);
    json_device(p, out);
    json_regions(p, out);
    json_irqs(p, out);
    if (p->pci.valid) {
        struct json_object *pci = json_object_new_object();

        json_pci_header(&p->pci, pci);
        json_pci_bars(&p->pci, pci);
        json_pci_caps(&p->pci, pci);
        json_object_object_add(out, "pci", pci);
    }
    s = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY |
                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    if (s != NULL)
        printf("%s\n", s);
    json_object_put(out);
    return s != NULL ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------------ */
/* Command line                                                       */
