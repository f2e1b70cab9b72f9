/*
 * umdev-probe: connect to a vfio-user socket as a client and show what a
 * VMM would see: the negotiated capabilities, device info, every region with
 * its mmappable areas, every IRQ index, and for a PCI device its config
 * space decoded the way lspci -vv does.
 *
 *   umdev-probe [--json] [--timeout MS] SOCKET
 *
 * This file gathers everything into a struct probe (probe.h) over the
 * client, reading config space once; probe_pci.c decodes it, and
 * probe_print.c prints it as text or as one JSON object. Exit status: 0
 * shown, 1 a connection or device error, 2 usage.
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

#include "probe.h"
#include "tool.h"

/* Regions or IRQ indices we accept from a peer before calling it hostile. */
#define PROBE_MAX_INDICES 256u

#define USAGE "usage: umdev-probe [--json] [--timeout MS] SOCKET\n"

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

/* Every region's and IRQ index's info. */
static int
probe_indices(struct probe *p)
{
    uint32_t i;
    int rc = 0;

    /* One spare entry each: calloc(0) may return NULL. */
    p->regions = calloc(p->dev.num_regions + 1, sizeof(*p->regions));
    p->irqs = calloc(p->dev.num_irqs + 1, sizeof(*p->irqs));
    if (p->regions == NULL || p->irqs == NULL)
        return probe_fail(p, -ENOMEM, "allocate region and IRQ tables");
    for (i = 0; i < p->dev.num_regions && rc == 0; i++)
        rc = umdev_client_region_info(p->c, i, &p->regions[i]);
    if (rc < 0)
        return probe_fail(p, rc, "get region %" PRIu32 " info", i - 1);
    for (i = 0; i < p->dev.num_irqs && rc == 0; i++)
        rc = umdev_client_irq_info(p->c, i, &p->irqs[i]);
    if (rc < 0)
        return probe_fail(p, rc, "get IRQ %" PRIu32 " info", i - 1);
    return 0;
}

/* Config space, read once (up to PROBE_CFG_MAX bytes), then decoded
 * from that copy. */
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
    pci->len =
        r->size < PROBE_CFG_MAX ? (size_t)r->size & ~(size_t)3 : PROBE_CFG_MAX;
    for (off = 0; off < pci->len; off += 4) {
        rc = umdev_client_region_read(p->c, VFIO_PCI_CONFIG_REGION_INDEX, off,
                                      pci->cfg + off, 4);
        if (rc < 0)
            return probe_fail(p, rc, "read config space at 0x%zx", off);
    }
    pci->valid = true;
    pci_decode(pci, p->regions, p->dev.num_regions);
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
        rc = probe_indices(p);
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
/* Command line                                                       */

struct args {
    bool json;
    int timeout_ms;
    const char *socket;
};

static void
usage_full(void)
{
    printf(USAGE
           "\n"
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
    long v;
    int ch;

    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            a->json = true;
            break;
        case 't':
            if (!tool_parse_long(optarg, 10, 1, INT_MAX, &v)) {
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
        rc = a.json ? probe_print_json(&p) : probe_print_text(&p);
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
