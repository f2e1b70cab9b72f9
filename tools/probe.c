/*
 * umdev-probe: connect to a vfio-user socket as a client and show what a
 * VMM would see: negotiated capabilities, device info, regions with their
 * mmappable areas, IRQ indices, and the PCI config space decoded the way
 * lspci -vv does. --json prints the same as one JSON object with a stable
 * key order (golden tests compare it).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "umdev/client.h"

#define CONFIG_INDEX 7
#define MAX_CAPS 48

static const char *const region_names[] = {
    "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "CONFIG", "VGA",
};
static const char *const irq_names[] = { "INTX", "MSI", "MSIX", "ERR", "REQ" };

struct flag_name {
    uint32_t bit;
    const char *name;
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
static const struct flag_name device_flags[] = {
    { VFIO_DEVICE_FLAGS_RESET, "RESET" },
    { VFIO_DEVICE_FLAGS_PCI, "PCI" },
    { 0, NULL },
};
static const struct flag_name command_bits[] = {
    { 0x0001, "I/O" },      { 0x0002, "Mem" },   { 0x0004, "BusMaster" },
    { 0x0040, "ParErr" },   { 0x0100, "SERR" },  { 0x0400, "DisINTx" },
    { 0, NULL },
};
static const struct flag_name status_bits[] = {
    { 0x0008, "INTx" },     { 0x0010, "Cap" },   { 0x0100, "MDPERR" },
    { 0x0800, "TAbort" },   { 0x1000, "<TAbort" }, { 0x2000, "<MAbort" },
    { 0x4000, ">SERR" },    { 0x8000, "DetParErr" }, { 0, NULL },
};

static const struct {
    uint8_t id;
    const char *name;
} cap_names[] = {
    { 0x01, "Power Management" }, { 0x05, "MSI" },
    { 0x09, "Vendor Specific" },  { 0x10, "Express" },
    { 0x11, "MSI-X" },
};

static const struct {
    uint32_t mask, value;
    const char *name;
} class_names[] = {
    { 0xffffff, 0x070002, "Serial controller: 16550-compatible" },
    { 0xffff00, 0x070000, "Serial controller" },
    { 0xffff00, 0x088000, "System peripheral" },
    { 0xffff00, 0x010800, "Non-Volatile memory controller" },
    { 0xffff00, 0x030000, "VGA compatible controller" },
    { 0xffff00, 0x120000, "Processing accelerator" },
    { 0xffff00, 0x000000, "Unclassified device" },
};

struct probe {
    struct umdev_client *c;
    bool json;
    struct json_object *out;
    uint64_t bar_size[6];
};

static struct json_object *
flags_json(uint32_t v, const struct flag_name *names)
{
    struct json_object *a = json_object_new_array();

    for (; names->name != NULL; names++)
        if (v & names->bit)
            json_object_array_add(a, json_object_new_string(names->name));
    return a;
}

static void
flags_print(uint32_t v, const struct flag_name *names)
{
    bool first = true;

    for (; names->name != NULL; names++) {
        if (v & names->bit) {
            printf("%s%s", first ? "" : " ", names->name);
            first = false;
        }
    }
    if (first)
        printf("-");
}

static void
human(uint64_t n, char *buf, size_t len)
{
    if (n >= (1ull << 30) && n % (1ull << 30) == 0)
        snprintf(buf, len, "%" PRIu64 "G", n >> 30);
    else if (n >= (1ull << 20) && n % (1ull << 20) == 0)
        snprintf(buf, len, "%" PRIu64 "M", n >> 20);
    else if (n >= 1024 && n % 1024 == 0)
        snprintf(buf, len, "%" PRIu64 "K", n >> 10);
    else
        snprintf(buf, len, "%" PRIu64, n);
}

static void
show_caps(struct probe *p)
{
    const struct umdev_client_caps *caps = umdev_client_caps(p->c);

    if (p->json) {
        struct json_object *v = json_object_new_object();
        struct json_object *c = json_object_new_object();

        json_object_object_add(v, "major", json_object_new_int(caps->major));
        json_object_object_add(v, "minor", json_object_new_int(caps->minor));
        json_object_object_add(p->out, "version", v);
        json_object_object_add(c, "max_msg_fds",
                               json_object_new_int64(caps->max_msg_fds));
        json_object_object_add(c, "max_data_xfer_size",
                               json_object_new_int64(caps->max_data_xfer_size));
        json_object_object_add(c, "pgsizes",
                               json_object_new_int64((int64_t)caps->pgsizes));
        json_object_object_add(c, "max_dma_maps",
                               json_object_new_int64(caps->max_dma_maps));
        json_object_object_add(c, "write_multiple",
                               json_object_new_boolean(caps->write_multiple));
        json_object_object_add(c, "migration",
                               json_object_new_boolean(caps->migration));
        json_object_object_add(p->out, "capabilities", c);
        return;
    }
    printf("vfio-user %u.%u\n", caps->major, caps->minor);
    printf("  max_msg_fds %u, max_data_xfer_size %u, pgsizes 0x%" PRIx64
           ", max_dma_maps %u, write_multiple %s, migration %s\n",
           caps->max_msg_fds, caps->max_data_xfer_size, caps->pgsizes,
           caps->max_dma_maps, caps->write_multiple ? "yes" : "no",
           caps->migration ? "yes" : "no");
}

static int
show_device(struct probe *p, struct umdev_client_device_info *info)
{
    int rc = umdev_client_device_info(p->c, info);

    if (rc < 0)
        return rc;
    if (p->json) {
        struct json_object *d = json_object_new_object();

        json_object_object_add(d, "flags",
                               flags_json(info->flags, device_flags));
        json_object_object_add(d, "num_regions",
                               json_object_new_int64(info->num_regions));
        json_object_object_add(d, "num_irqs",
                               json_object_new_int64(info->num_irqs));
        json_object_object_add(p->out, "device", d);
        return 0;
    }
    printf("device: flags ");
    flags_print(info->flags, device_flags);
    printf(", %u regions, %u irq indices\n", info->num_regions,
           info->num_irqs);
    return 0;
}

static const char *
region_name(uint32_t i, char *buf, size_t len)
{
    if (i < sizeof(region_names) / sizeof(region_names[0]))
        return region_names[i];
    snprintf(buf, len, "region%u", i);
    return buf;
}

static int
show_regions(struct probe *p, uint32_t n)
{
    struct json_object *arr = json_object_new_array();
    uint32_t i;

    if (!p->json)
        printf("regions:\n");
    for (i = 0; i < n; i++) {
        struct umdev_client_region r;
        char nb[32], hb[32];
        size_t a;
        int rc = umdev_client_region_info(p->c, i, &r);

        if (rc < 0) {
            json_object_put(arr);
            return rc;
        }
        if (i < 6)
            p->bar_size[i] = r.size;
        if (p->json) {
            struct json_object *o = json_object_new_object();
            struct json_object *areas = json_object_new_array();

            json_object_object_add(o, "index", json_object_new_int(i));
            json_object_object_add(
                o, "name", json_object_new_string(region_name(i, nb,
                                                              sizeof(nb))));
            json_object_object_add(o, "size",
                                   json_object_new_int64((int64_t)r.size));
            json_object_object_add(o, "flags",
                                   flags_json(r.flags, region_flags));
            for (a = 0; a < r.nr_areas; a++) {
                struct json_object *ao = json_object_new_object();

                json_object_object_add(
                    ao, "offset",
                    json_object_new_int64((int64_t)r.areas[a].offset));
                json_object_object_add(
                    ao, "size", json_object_new_int64((int64_t)r.areas[a].size));
                json_object_array_add(areas, ao);
            }
            json_object_object_add(o, "mmap_areas", areas);
            json_object_array_add(arr, o);
            continue;
        }
        if (r.size == 0) {
            printf("  %-7s absent\n", region_name(i, nb, sizeof(nb)));
            continue;
        }
        human(r.size, hb, sizeof(hb));
        printf("  %-7s size 0x%-8" PRIx64 " (%s) ", region_name(i, nb, sizeof(nb)),
               r.size, hb);
        flags_print(r.flags, region_flags);
        for (a = 0; a < r.nr_areas; a++)
            printf("%s0x%" PRIx64 "+0x%" PRIx64, a ? ", " : "  mmap ",
                   r.areas[a].offset, r.areas[a].size);
        printf("\n");
    }
    if (p->json)
        json_object_object_add(p->out, "regions", arr);
    else
        json_object_put(arr);
    return 0;
}

static int
show_irqs(struct probe *p, uint32_t n)
{
    struct json_object *arr = json_object_new_array();
    uint32_t i;

    if (!p->json)
        printf("irqs:\n");
    for (i = 0; i < n; i++) {
        struct umdev_client_irq_info q;
        char nb[16];
        const char *name = i < 5 ? irq_names[i] : nb;
        int rc = umdev_client_irq_info(p->c, i, &q);

        if (rc < 0) {
            json_object_put(arr);
            return rc;
        }
        if (i >= 5)
            snprintf(nb, sizeof(nb), "irq%u", i);
        if (p->json) {
            struct json_object *o = json_object_new_object();

            json_object_object_add(o, "index", json_object_new_int(i));
            json_object_object_add(o, "name", json_object_new_string(name));
            json_object_object_add(o, "count", json_object_new_int64(q.count));
            json_object_object_add(o, "flags", flags_json(q.flags, irq_flags));
            json_object_array_add(arr, o);
            continue;
        }
        printf("  %-5s count %-4u ", name, q.count);
        flags_print(q.flags, irq_flags);
        printf("\n");
    }
    if (p->json)
        json_object_object_add(p->out, "irqs", arr);
    else
        json_object_put(arr);
    return 0;
}

static uint32_t
cfg_get(const uint8_t *cfg, unsigned off, unsigned len)
{
    uint32_t v = 0;

    memcpy(&v, cfg + off, len);
    return v;
}

static const char *
class_name(uint32_t class_code)
{
    size_t i;

    for (i = 0; i < sizeof(class_names) / sizeof(class_names[0]); i++)
        if ((class_code & class_names[i].mask) == class_names[i].value)
            return class_names[i].name;
    return "Unknown class";
}

static const char *
cap_name(uint8_t id)
{
    size_t i;

    for (i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++)
        if (cap_names[i].id == id)
            return cap_names[i].name;
    return "Unknown";
}

/* Capability details worth a line: MSI and MSI-X control fields. */
static void
cap_details(const uint8_t *cfg, unsigned off, struct json_object *o,
            char *text, size_t len)
{
    uint16_t ctl = (uint16_t)cfg_get(cfg, off + 2, 2);

    text[0] = '\0';
    if (cfg[off] == 0x05) {
        unsigned count = 1u << ((ctl >> 1) & 7);

        snprintf(text, len, "Enable%c Count=%u 64bit%c Maskable%c",
                 ctl & 1 ? '+' : '-', count, ctl & 0x80 ? '+' : '-',
                 ctl & 0x100 ? '+' : '-');
        json_object_object_add(o, "enable", json_object_new_boolean(ctl & 1));
        json_object_object_add(o, "count", json_object_new_int(count));
        json_object_object_add(o, "addr64",
                               json_object_new_boolean(ctl & 0x80));
        json_object_object_add(o, "maskable",
                               json_object_new_boolean(ctl & 0x100));
    } else if (cfg[off] == 0x11) {
        uint32_t table = cfg_get(cfg, off + 4, 4), pba = cfg_get(cfg, off + 8, 4);

        snprintf(text, len,
                 "Enable%c Count=%u Masked%c Table: BAR=%u offset=%08x PBA: "
                 "BAR=%u offset=%08x",
                 ctl & 0x8000 ? '+' : '-', (ctl & 0x7ff) + 1,
                 ctl & 0x4000 ? '+' : '-', table & 7, table & ~7u, pba & 7,
                 pba & ~7u);
        json_object_object_add(o, "enable",
                               json_object_new_boolean(ctl & 0x8000));
        json_object_object_add(o, "count",
                               json_object_new_int((ctl & 0x7ff) + 1));
        json_object_object_add(o, "table_bar", json_object_new_int(table & 7));
        json_object_object_add(o, "table_offset",
                               json_object_new_int64(table & ~7u));
        json_object_object_add(o, "pba_bar", json_object_new_int(pba & 7));
        json_object_object_add(o, "pba_offset",
                               json_object_new_int64(pba & ~7u));
    }
}

static void
show_bars(struct probe *p, const uint8_t *cfg, struct json_object *pci)
{
    struct json_object *bars = json_object_new_array();
    unsigned i;

    for (i = 0; i < 6; i++) {
        uint32_t v = cfg_get(cfg, 0x10 + 4 * i, 4);
        const char *type;
        bool pref = false;
        uint64_t addr;
        char hb[32];

        if (p->bar_size[i] == 0)
            continue;
        if (v & 1) {
            type = "io";
            addr = v & ~3u;
        } else {
            type = ((v >> 1) & 3) == 2 ? "mem64" : "mem32";
            pref = (v & 8) != 0;
            addr = v & ~0xfu;
            if (((v >> 1) & 3) == 2 && i < 5)
                addr |= (uint64_t)cfg_get(cfg, 0x14 + 4 * i, 4) << 32;
        }
        human(p->bar_size[i], hb, sizeof(hb));
        if (p->json) {
            struct json_object *o = json_object_new_object();

            json_object_object_add(o, "index", json_object_new_int(i));
            json_object_object_add(o, "type", json_object_new_string(type));
            json_object_object_add(o, "prefetchable",
                                   json_object_new_boolean(pref));
            json_object_object_add(o, "size",
                                   json_object_new_int64((int64_t)p->bar_size[i]));
            json_object_array_add(bars, o);
        } else {
            printf("  Region %u: %s at %" PRIx64 " [size=%s]%s\n", i,
                   strcmp(type, "io") == 0 ? "I/O ports" : "Memory", addr,
                   hb,
                   strcmp(type, "io") == 0
                       ? ""
                       : (strcmp(type, "mem64") == 0
                              ? (pref ? " (64-bit, prefetchable)"
                                      : " (64-bit, non-prefetchable)")
                              : (pref ? " (32-bit, prefetchable)"
                                      : " (32-bit, non-prefetchable)")));
        }
    }
    if (pci != NULL)
        json_object_object_add(pci, "bars", bars);
    else
        json_object_put(bars);
}

static void
show_cap_list(struct probe *p, const uint8_t *cfg, size_t cfg_len,
              struct json_object *pci)
{
    struct json_object *caps = json_object_new_array();
    bool seen[256] = { false };
    unsigned off = cfg[0x34] & ~3u;
    int n = 0;

    if (!(cfg_get(cfg, 0x06, 2) & 0x10))
        off = 0;
    while (off != 0 && n++ < MAX_CAPS) {
        struct json_object *o;
        char text[160];

        /* A hostile or broken device must not make us loop or overread. */
        if (off < 0x40 || off + 2 > cfg_len || seen[off]) {
            if (!p->json)
                printf("  Capabilities: [%02x] <chain broken>\n", off);
            break;
        }
        seen[off] = true;
        o = json_object_new_object();
        json_object_object_add(o, "offset", json_object_new_int(off));
        json_object_object_add(o, "id", json_object_new_int(cfg[off]));
        json_object_object_add(o, "name",
                               json_object_new_string(cap_name(cfg[off])));
        cap_details(cfg, off, o, text, sizeof(text));
        if (p->json) {
            json_object_array_add(caps, o);
        } else {
            printf("  Capabilities: [%02x] %s%s%s\n", off, cap_name(cfg[off]),
                   text[0] ? ": " : "", text);
            json_object_put(o);
        }
        off = cfg[off + 1] & ~3u;
    }
    if (pci != NULL)
        json_object_object_add(pci, "capabilities", caps);
    else
        json_object_put(caps);
}

static int
show_config(struct probe *p)
{
    struct umdev_client_region r;
    uint8_t cfg[256] = { 0 };
    struct json_object *pci = NULL;
    uint32_t class_code;
    size_t len, off;
    int rc;

    rc = umdev_client_region_info(p->c, CONFIG_INDEX, &r);
    if (rc < 0 || r.size < 64)
        return rc;
    len = r.size < sizeof(cfg) ? (size_t)r.size : sizeof(cfg);
    for (off = 0; off < len; off += 4) {
        rc = umdev_client_region_read(p->c, CONFIG_INDEX, off, cfg + off, 4);
        if (rc < 0)
            return rc;
    }
    class_code = cfg_get(cfg, 0x09, 3);
    if (p->json) {
        pci = json_object_new_object();
#define PCI_INT(key, off, len)                                              \
    json_object_object_add(pci, key,                                        \
                           json_object_new_int64(cfg_get(cfg, off, len)))
        PCI_INT("vendor_id", 0x00, 2);
        PCI_INT("device_id", 0x02, 2);
        PCI_INT("subsystem_vendor_id", 0x2c, 2);
        PCI_INT("subsystem_id", 0x2e, 2);
        PCI_INT("class", 0x09, 3);
        PCI_INT("revision", 0x08, 1);
        PCI_INT("command", 0x04, 2);
        PCI_INT("status", 0x06, 2);
        PCI_INT("header_type", 0x0e, 1);
        PCI_INT("interrupt_pin", 0x3d, 1);
        PCI_INT("interrupt_line", 0x3c, 1);
#undef PCI_INT
    } else {
        printf("config space (%zu bytes):\n", len);
        printf("  %04x:%04x %s (prog-if %02x) (rev %02x)\n",
               cfg_get(cfg, 0, 2), cfg_get(cfg, 2, 2),
               class_name(class_code), class_code & 0xff, cfg[0x08]);
        printf("  Subsystem: %04x:%04x\n", cfg_get(cfg, 0x2c, 2),
               cfg_get(cfg, 0x2e, 2));
        printf("  Control: ");
        flags_print(cfg_get(cfg, 0x04, 2), command_bits);
        printf("\n  Status: ");
        flags_print(cfg_get(cfg, 0x06, 2), status_bits);
        printf("\n  Header type %02x", cfg[0x0e]);
        if (cfg[0x3d] >= 1 && cfg[0x3d] <= 4)
            printf(", Interrupt: pin %c routed to IRQ %u", 'A' + cfg[0x3d] - 1,
                   cfg[0x3c]);
        printf("\n");
    }
    show_bars(p, cfg, pci);
    show_cap_list(p, cfg, len, pci);
    if (pci != NULL)
        json_object_object_add(p->out, "pci", pci);
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: umdev-probe [--json] [--timeout MS] SOCKET\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct umdev_client_opts copts = { 0 };
    struct umdev_client_device_info info;
    struct probe p = { 0 };
    const char *what = "connect";
    int ch, rc;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            p.json = true;
            break;
        case 't':
            copts.timeout_ms = atoi(optarg);
            if (copts.timeout_ms <= 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return 2;
    }
    rc = umdev_client_connect(argv[optind], &copts, &p.c);
    if (rc == 0) {
        p.out = json_object_new_object();
        show_caps(&p);
        what = "device info";
        rc = show_device(&p, &info);
    }
    if (rc == 0) {
        what = "region info";
        rc = show_regions(&p, info.num_regions);
    }
    if (rc == 0) {
        what = "irq info";
        rc = show_irqs(&p, info.num_irqs);
    }
    if (rc == 0 && (info.flags & VFIO_DEVICE_FLAGS_PCI)) {
        what = "config space";
        rc = show_config(&p);
    }
    if (rc < 0) {
        fprintf(stderr, "umdev-probe: %s: %s failed: %s\n", argv[optind],
                what, strerror(-rc));
    } else if (p.json) {
        printf("%s\n", json_object_to_json_string_ext(
                           p.out, JSON_C_TO_STRING_PRETTY |
                                      JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_put(p.out);
    umdev_client_destroy(p.c);
    return rc < 0 ? 1 : 0;
}
