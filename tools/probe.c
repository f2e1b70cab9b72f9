/*
 * umdev-probe: connect to a vfio-user socket as a client and show what a
 * VMM would see: the negotiated capabilities, device info, every region with
 * its mmappable areas, every IRQ index, and for a PCI device its config
 * space decoded the way lspci -vv does. The probe first gathers everything
 * into a struct probe, then prints it as text or (--json) as one JSON
 * object whose keys keep insertion order, so golden files can compare it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "umdev/client.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Regions or IRQ indices we accept from a peer before calling it hostile. */
#define PROBE_MAX_INDICES 256u
/* How much config space we read and decode. */
#define PCI_CFG_READ_MAX 256u
#define PCI_NUM_BARS 6u
/* Capability walk guards, as lspci has them. */
#define PCI_MAX_CAPS 48u
#define PCI_CAP_MIN_OFFSET PCI_STD_HEADER_SIZEOF

#define USAGE "usage: umdev-probe [--json] [--timeout MS] SOCKET\n"

/* ------------------------------------------------------------------ */
/* Name tables                                                        */

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

static const char *const pci_region_names[] = {
    [VFIO_PCI_BAR0_REGION_INDEX] = "BAR0",
    [VFIO_PCI_BAR1_REGION_INDEX] = "BAR1",
    [VFIO_PCI_BAR2_REGION_INDEX] = "BAR2",
    [VFIO_PCI_BAR3_REGION_INDEX] = "BAR3",
    [VFIO_PCI_BAR4_REGION_INDEX] = "BAR4",
    [VFIO_PCI_BAR5_REGION_INDEX] = "BAR5",
    [VFIO_PCI_ROM_REGION_INDEX] = "ROM",
    [VFIO_PCI_CONFIG_REGION_INDEX] = "CONFIG",
    [VFIO_PCI_VGA_REGION_INDEX] = "VGA",
};

static const char *const pci_irq_names[] = {
    [VFIO_PCI_INTX_IRQ_INDEX] = "INTX",
    [VFIO_PCI_MSI_IRQ_INDEX] = "MSI",
    [VFIO_PCI_MSIX_IRQ_INDEX] = "MSIX",
    [VFIO_PCI_ERR_IRQ_INDEX] = "ERR",
    [VFIO_PCI_REQ_IRQ_INDEX] = "REQ",
};

/* First match wins: exact class code, then base+sub class, then base. */
static const struct {
    uint32_t mask, value;
    const char *name;
} class_names[] = {
    { 0xffffff, 0x070002, "Serial controller: 16550" },
    { 0xffff00, 0x000000, "unclassified" },
    { 0xffff00, 0x010800, "Non-Volatile memory controller" },
    { 0xffff00, 0x020000, "Ethernet controller" },
    { 0xffff00, 0x030000, "VGA compatible controller" },
    { 0xffff00, 0x070000, "Serial controller" },
    { 0xffff00, 0x088000, "System peripheral" },
    { 0xffff00, 0x120000, "Processing accelerators" },
    { 0xff0000, 0x000000, "Unclassified device" },
    { 0xff0000, 0x010000, "Mass storage controller" },
    { 0xff0000, 0x020000, "Network controller" },
    { 0xff0000, 0x030000, "Display controller" },
    { 0xff0000, 0x070000, "Communication controller" },
    { 0xff0000, 0x080000, "Generic system peripheral" },
    { 0xff0000, 0xff0000, "Unassigned class" },
};

static const char *const header_type_names[] = {
    [PCI_HEADER_TYPE_NORMAL] = "normal",
    [PCI_HEADER_TYPE_BRIDGE] = "bridge",
    [PCI_HEADER_TYPE_CARDBUS] = "cardbus",
};

/* BARs each header layout has (PCI Local Bus 3.0, 6.1 and bridge 3.2). */
static const unsigned header_type_bars[] = {
    [PCI_HEADER_TYPE_NORMAL] = 6,
    [PCI_HEADER_TYPE_BRIDGE] = 2,
    [PCI_HEADER_TYPE_CARDBUS] = 0,
};

/* ------------------------------------------------------------------ */
/* What the probe learns                                              */

struct pci_bar {
    bool present; /* the region for this BAR index has a size */
    bool io, mem64, prefetch;
    uint64_t addr, size;
};

struct pci_cap {
    uint8_t offset, id;
    bool complete;    /* the whole capability lies in what we read */
    uint16_t control; /* message control (MSI, MSI-X) */
    uint32_t table;   /* MSI-X table BIR and offset */
    uint32_t pba;     /* MSI-X PBA BIR and offset */
};

struct pci_info {
    bool valid; /* config space was read */
    size_t len;
    uint8_t cfg[PCI_CFG_READ_MAX];
    struct pci_bar bars[PCI_NUM_BARS];
    struct pci_cap caps[PCI_MAX_CAPS];
    size_t ncaps;
    unsigned chain_stop;     /* offset where the walk gave up, or 0 */
    const char *chain_error; /* why, or NULL */
};

struct probe {
    struct umdev_client *c;
    const struct umdev_client_caps *caps; /* borrowed from c */
    struct umdev_client_device_info dev;
    struct umdev_client_region *regions; /* dev.num_regions entries */
    struct umdev_client_irq_info *irqs;  /* dev.num_irqs entries */
    struct pci_info pci;
    char what[96]; /* the step that failed, for the error message */
};

/* Record which step failed; returns @rc for the caller to pass up. */
static int __attribute__((format(printf, 3, 4)))
probe_fail(struct probe *p, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->what, sizeof(p->what), fmt, ap);
    va_end(ap);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Gathering                                                          */

static int
probe_device(struct probe *p)
{
    int rc = umdev_client_device_info(p->c, &p->dev);

    if (rc < 0)
        return probe_fail(p, rc, "get device info");
    if (p->dev.num_regions > PROBE_MAX_INDICES)
        return probe_fail(p, -EPROTO,
                          "device reports %" PRIu32 " regions (limit %u)",
                          p->dev.num_regions, PROBE_MAX_INDICES);
    if (p->dev.num_irqs > PROBE_MAX_INDICES)
        return probe_fail(p, -EPROTO,
                          "device reports %" PRIu32 " IRQ indices (limit %u)",
                          p->dev.num_irqs, PROBE_MAX_INDICES);
    return 0;
}

static int
probe_regions(struct probe *p)
{
    uint32_t i;
    int rc;

    /* One spare entry: calloc(0) may return NULL. */
    p->regions = calloc(p->dev.num_regions + 1, sizeof(*p->regions));
    if (p->regions == NULL)
        return probe_fail(p, -ENOMEM, "allocate region table");
    for (i = 0; i < p->dev.num_regions; i++) {
        rc = umdev_client_region_info(p->c, i, &p->regions[i]);
        if (rc < 0)
            return probe_fail(p, rc, "get region %" PRIu32 " info", i);
    }
    return 0;
}

static int
probe_irqs(struct probe *p)
{
    uint32_t i;
    int rc;

    p->irqs = calloc(p->dev.num_irqs + 1, sizeof(*p->irqs));
    if (p->irqs == NULL)
        return probe_fail(p, -ENOMEM, "allocate IRQ table");
    for (i = 0; i < p->dev.num_irqs; i++) {
        rc = umdev_client_irq_info(p->c, i, &p->irqs[i]);
        if (rc < 0)
            return probe_fail(p, rc, "get IRQ %" PRIu32 " info", i);
    }
    return 0;
}

static uint32_t
cfg_get(const struct pci_info *pci, unsigned off, unsigned len)
{
    uint32_t v = 0;

    /* Config space is little-endian; vfio-user passes it as bytes. */
    while (len-- > 0)
        v = v << 8 | pci->cfg[off + len];
    return v;
}

static void
pci_decode_bars(struct pci_info *pci, const struct probe *p)
{
    unsigned type = pci->cfg[PCI_HEADER_TYPE] & PCI_HEADER_TYPE_MASK;
    unsigned nbars =
        type < ARRAY_SIZE(header_type_bars) ? header_type_bars[type] : 0;
    unsigned i;

    for (i = 0; i < nbars && i < p->dev.num_regions; i++) {
        struct pci_bar *b = &pci->bars[i];
        uint32_t v = cfg_get(pci, PCI_BASE_ADDRESS_0 + 4 * i, 4);

        if (p->regions[i].size == 0)
            continue;
        b->present = true;
        b->size = p->regions[i].size;
        b->io = (v & PCI_BASE_ADDRESS_SPACE) == PCI_BASE_ADDRESS_SPACE_IO;
        if (b->io) {
            b->addr = v & PCI_BASE_ADDRESS_IO_MASK;
            continue;
        }
        b->addr = v & PCI_BASE_ADDRESS_MEM_MASK;
        b->prefetch = v & PCI_BASE_ADDRESS_MEM_PREFETCH;
        b->mem64 = (v & PCI_BASE_ADDRESS_MEM_TYPE_MASK) ==
                   PCI_BASE_ADDRESS_MEM_TYPE_64;
        /* The upper half is the next BAR, which is then not one itself. */
        if (b->mem64 && i + 1 < PCI_NUM_BARS) {
            b->addr |= (uint64_t)cfg_get(pci, PCI_BASE_ADDRESS_0 + 4 * i + 4, 4)
                       << 32;
            i++;
        }
    }
}

static void
pci_decode_cap(const struct pci_info *pci, struct pci_cap *cap)
{
    unsigned off = cap->offset;
    /* Bytes the decoded fields span: through the PBA dword, or control. */
    unsigned need =
        cap->id == PCI_CAP_ID_MSIX ? PCI_MSIX_PBA + 4 : PCI_MSI_FLAGS + 2;

    cap->complete = off + need <= pci->len;
    if (!cap->complete)
        return;
    cap->control = (uint16_t)cfg_get(pci, off + PCI_MSI_FLAGS, 2);
    if (cap->id == PCI_CAP_ID_MSIX) {
        cap->table = cfg_get(pci, off + PCI_MSIX_TABLE, 4);
        cap->pba = cfg_get(pci, off + PCI_MSIX_PBA, 4);
    }
}

/* Walk the capability list; a broken or hostile chain ends the walk. */
static void
pci_walk_caps(struct pci_info *pci)
{
    bool seen[PCI_CFG_READ_MAX] = { false };
    unsigned off = pci->cfg[PCI_CAPABILITY_LIST] & ~3u;

    if (!(cfg_get(pci, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST))
        return;
    while (off != 0) {
        struct pci_cap *cap;

        if (off < PCI_CAP_MIN_OFFSET)
            pci->chain_error = "pointer into the header";
        else if (off + 2 > pci->len)
            pci->chain_error = "pointer past the end";
        else if (seen[off])
            pci->chain_error = "loop";
        else if (pci->ncaps == PCI_MAX_CAPS)
            pci->chain_error = "too many capabilities";
        if (pci->chain_error != NULL) {
            pci->chain_stop = off;
            return;
        }
        seen[off] = true;
        cap = &pci->caps[pci->ncaps++];
        cap->offset = (uint8_t)off;
        cap->id = pci->cfg[off];
        pci_decode_cap(pci, cap);
        off = pci->cfg[off + PCI_CAP_LIST_NEXT] & ~3u;
    }
}

static int
probe_config(struct probe *p)
{
    struct pci_info *pci = &p->pci;
    const struct umdev_client_region *r;
    size_t off;
    int rc;

    if (!(p->dev.flags & VFIO_DEVICE_FLAGS_PCI) ||
        p->dev.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX)
        return 0;
    r = &p->regions[VFIO_PCI_CONFIG_REGION_INDEX];
    if (r->size < PCI_STD_HEADER_SIZEOF)
        return 0;
    pci->len = r->size < PCI_CFG_READ_MAX ? (size_t)r->size & ~(size_t)3
                                          : PCI_CFG_READ_MAX;
    for (off = 0; off < pci->len; off += 4) {
        rc = umdev_client_region_read(p->c, VFIO_PCI_CONFIG_REGION_INDEX, off,
                                      pci->cfg + off, 4);
        if (rc < 0)
            return probe_fail(p, rc, "read config space at 0x%zx", off);
    }
    pci->valid = true;
    pci_decode_bars(pci, p);
    pci_walk_caps(pci);
    return 0;
}

static int
probe_run(struct probe *p, const char *path,
          const struct umdev_client_opts *opts)
{
    int rc = umdev_client_connect(path, opts, &p->c);

    if (rc < 0)
        return probe_fail(p, rc, "connect and negotiate");
    p->caps = umdev_client_caps(p->c);
    rc = probe_device(p);
    if (rc == 0)
        rc = probe_regions(p);
    if (rc == 0)
        rc = probe_irqs(p);
    if (rc == 0)
        rc = probe_config(p);
    return rc;
}

static void
probe_fini(struct probe *p)
{
    free(p->regions);
    free(p->irqs);
    umdev_client_destroy(p->c);
}

/* ------------------------------------------------------------------ */
/* Names                                                              */

static bool
is_pci(const struct probe *p)
{
    return p->dev.flags & VFIO_DEVICE_FLAGS_PCI;
}

static const char *
index_name(const char *const *names, size_t n, bool pci, const char *kind,
           uint32_t i, char *buf, size_t len)
{
    if (pci && i < n && names[i] != NULL)
        return names[i];
    snprintf(buf, len, "%s %" PRIu32, kind, i);
    return buf;
}

static const char *
region_name(const struct probe *p, uint32_t i, char *buf, size_t len)
{
    return index_name(pci_region_names, ARRAY_SIZE(pci_region_names), is_pci(p),
                      "region", i, buf, len);
}

static const char *
irq_name(const struct probe *p, uint32_t i, char *buf, size_t len)
{
    return index_name(pci_irq_names, ARRAY_SIZE(pci_irq_names), is_pci(p),
                      "irq", i, buf, len);
}

static const char *
class_name(uint32_t class_code)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(class_names); i++)
        if ((class_code & class_names[i].mask) == class_names[i].value)
            return class_names[i].name;
    return "Unknown class";
}

static const char *
header_type_name(uint8_t type)
{
    type &= PCI_HEADER_TYPE_MASK;
    return type < ARRAY_SIZE(header_type_names) ? header_type_names[type]
                                                : "unknown";
}

/* 4096 -> "4K"; sizes that are not a whole unit stay in bytes. */
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
/* PCI capability details, one entry per capability ID we know        */

static void
msi_text(const struct pci_cap *cap)
{
    uint16_t ctl = cap->control;

    printf(": Enable%c Count=%u/%u Maskable%c 64bit%c",
           ctl & PCI_MSI_FLAGS_ENABLE ? '+' : '-',
           1u << ((ctl & PCI_MSI_FLAGS_QSIZE) >> 4),
           1u << ((ctl & PCI_MSI_FLAGS_QMASK) >> 1),
           ctl & PCI_MSI_FLAGS_MASKBIT ? '+' : '-',
           ctl & PCI_MSI_FLAGS_64BIT ? '+' : '-');
}

static void
msi_json(const struct pci_cap *cap, struct json_object *o)
{
    uint16_t ctl = cap->control;

    jadd_bool(o, "enable", ctl & PCI_MSI_FLAGS_ENABLE);
    jadd_u64(o, "count", 1u << ((ctl & PCI_MSI_FLAGS_QMASK) >> 1));
    jadd_u64(o, "count_enabled", 1u << ((ctl & PCI_MSI_FLAGS_QSIZE) >> 4));
    jadd_bool(o, "64bit", ctl & PCI_MSI_FLAGS_64BIT);
    jadd_bool(o, "maskable", ctl & PCI_MSI_FLAGS_MASKBIT);
}

static void
msix_text(const struct pci_cap *cap)
{
    uint16_t ctl = cap->control;

    printf(": Enable%c FunctionMask%c TableSize=%u\n",
           ctl & PCI_MSIX_FLAGS_ENABLE ? '+' : '-',
           ctl & PCI_MSIX_FLAGS_MASKALL ? '+' : '-',
           (ctl & PCI_MSIX_FLAGS_QSIZE) + 1u);
    printf("%16sVector table: BAR=%" PRIu32 " offset=%08" PRIx32 "\n", "",
           cap->table & PCI_MSIX_TABLE_BIR, cap->table & PCI_MSIX_TABLE_OFFSET);
    printf("%16sPBA: BAR=%" PRIu32 " offset=%08" PRIx32, "",
           cap->pba & PCI_MSIX_PBA_BIR, cap->pba & PCI_MSIX_PBA_OFFSET);
}

static void
msix_json(const struct pci_cap *cap, struct json_object *o)
{
    uint16_t ctl = cap->control;

    jadd_bool(o, "enable", ctl & PCI_MSIX_FLAGS_ENABLE);
    jadd_bool(o, "function_mask", ctl & PCI_MSIX_FLAGS_MASKALL);
    jadd_u64(o, "table_size", (ctl & PCI_MSIX_FLAGS_QSIZE) + 1u);
    jadd_u64(o, "table_bir", cap->table & PCI_MSIX_TABLE_BIR);
    jadd_u64(o, "table_offset", cap->table & PCI_MSIX_TABLE_OFFSET);
    jadd_u64(o, "pba_bir", cap->pba & PCI_MSIX_PBA_BIR);
    jadd_u64(o, "pba_offset", cap->pba & PCI_MSIX_PBA_OFFSET);
}

static const struct cap_kind {
    uint8_t id;
    const char *name;
    void (*text)(const struct pci_cap *cap);
    void (*json)(const struct pci_cap *cap, struct json_object *o);
} cap_kinds[] = {
    { PCI_CAP_ID_PM, "Power Management", NULL, NULL },
    { PCI_CAP_ID_MSI, "MSI", msi_text, msi_json },
    { PCI_CAP_ID_VNDR, "Vendor Specific", NULL, NULL },
    { PCI_CAP_ID_EXP, "PCI Express", NULL, NULL },
    { PCI_CAP_ID_MSIX, "MSI-X", msix_text, msix_json },
};

static const struct cap_kind *
cap_kind(uint8_t id)
{
    static const struct cap_kind unknown = { 0, "Unknown", NULL, NULL };
    size_t i;

    for (i = 0; i < ARRAY_SIZE(cap_kinds); i++)
        if (cap_kinds[i].id == id)
            return &cap_kinds[i];
    return &unknown;
}

/* ------------------------------------------------------------------ */
/* Text output                                                        */

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

        printf("  %-2" PRIu32 " %-9s ", i, region_name(p, i, nb, sizeof(nb)));
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
               irq_name(p, i, nb, sizeof(nb)), p->irqs[i].count);
        text_flags(p->irqs[i].flags, irq_flags);
        printf("\n");
    }
}

static void
text_pci_header(const struct pci_info *pci)
{
    uint32_t class_code = cfg_get(pci, PCI_CLASS_PROG, 3);
    uint8_t pin = pci->cfg[PCI_INTERRUPT_PIN];

    printf("PCI config space (%zu bytes):\n", pci->len);
    printf("  Device %04x:%04x (rev %02x)\n", cfg_get(pci, PCI_VENDOR_ID, 2),
           cfg_get(pci, PCI_DEVICE_ID, 2), pci->cfg[PCI_REVISION_ID]);
    printf("  Subsystem: %04x:%04x\n", cfg_get(pci, PCI_SUBSYSTEM_VENDOR_ID, 2),
           cfg_get(pci, PCI_SUBSYSTEM_ID, 2));
    printf("  Class %02x %02x %02x: %s\n", class_code >> 16,
           (class_code >> 8) & 0xff, class_code & 0xff, class_name(class_code));
    printf("  Control: ");
    text_bits(cfg_get(pci, PCI_COMMAND, 2), command_bits);
    printf("\n  Status: ");
    text_bits(cfg_get(pci, PCI_STATUS, 2), status_bits);
    printf("\n  Header type %02x (%s)\n", pci->cfg[PCI_HEADER_TYPE],
           header_type_name(pci->cfg[PCI_HEADER_TYPE]));
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

    for (i = 0; i < PCI_NUM_BARS; i++) {
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
        const struct cap_kind *k = cap_kind(cap->id);

        printf("  Capabilities: [%02x] %s (%02x)", cap->offset, k->name,
               cap->id);
        if (k->text != NULL && cap->complete)
            k->text(cap);
        else if (k->text != NULL)
            printf(": <truncated>");
        printf("\n");
    }
    if (pci->chain_error != NULL)
        printf("  Capabilities: [%02x] <chain broken: %s>\n", pci->chain_stop,
               pci->chain_error);
}

static int
print_text(const struct probe *p)
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
/* JSON output                                                        */

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
    jadd_str(o, "name", region_name(p, i, nb, sizeof(nb)));
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
        jadd_str(o, "name", irq_name(p, i, nb, sizeof(nb)));
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
        jadd_u64(o, fields[i].key, cfg_get(pci, fields[i].off, fields[i].len));
}

static void
json_pci_bars(const struct pci_info *pci, struct json_object *o)
{
    struct json_object *arr = json_object_new_array();
    unsigned i;

    for (i = 0; i < PCI_NUM_BARS; i++) {
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
        const struct cap_kind *k = cap_kind(cap->id);
        struct json_object *co = json_object_new_object();

        jadd_u64(co, "offset", cap->offset);
        jadd_u64(co, "id", cap->id);
        jadd_str(co, "name", k->name);
        if (k->json != NULL && cap->complete)
            k->json(cap, co);
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

static int
print_json(const struct probe *p)
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

struct args {
    bool json;
    int timeout_ms;
    const char *socket;
};

static void
usage_full(void)
{
    printf(USAGE "\n"
           "Connect to a vfio-user device socket and show its capabilities,\n"
           "regions, IRQs and (for PCI devices) decoded config space.\n\n"
           "  --json         print one JSON object instead of text\n"
           "  --timeout MS   per-request timeout in milliseconds "
           "(default 5000)\n"
           "  -h, --help     show this help\n");
}

/* Return: -1 to go on with @a filled in, or the exit status. */
static int
parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char *end;
    long v;
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            a->json = true;
            break;
        case 't':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || v <= 0 ||
                v > INT_MAX) {
                fprintf(stderr, "umdev-probe: bad timeout '%s'\n", optarg);
                fputs(USAGE, stderr);
                return 2;
            }
            a->timeout_ms = (int)v;
            break;
        case 'h':
            usage_full();
            return 0;
        default:
            fputs(USAGE, stderr);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    a->socket = argv[optind];
    return -1;
}

int
main(int argc, char **argv)
{
    struct args a = { 0 };
    struct umdev_client_opts copts = { 0 };
    struct probe p = { 0 };
    int rc;

    rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    copts.timeout_ms = a.timeout_ms;
    rc = probe_run(&p, a.socket, &copts);
    if (rc == 0) {
        rc = a.json ? print_json(&p) : print_text(&p);
        if (rc < 0)
            probe_fail(&p, rc, "format output");
    }
    if (rc == 0 && fflush(stdout) != 0)
        rc = probe_fail(&p, -errno, "write output");
    if (rc < 0)
        fprintf(stderr, "umdev-probe: %s: %s: %s\n", a.socket, p.what,
                strerror(-rc));
    probe_fini(&p);
    return rc < 0 ? 1 : 0;
}
