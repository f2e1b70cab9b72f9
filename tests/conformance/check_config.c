/*
 * config: the PCI config space rules a guest driver relies on (PCI Local
 * Bus 3.0 §6): the type-0 header's read-only fields ignore writes; BAR
 * sizing (write all ones, read the size mask, restore) agrees with each
 * region's size for every BAR kind (I/O, 32-bit and 64-bit memory) and
 * keeps the type and prefetchable bits; unimplemented BARs read 0; the
 * capability list walks without loops, every pointer in range and dword
 * aligned, each capability's ID readable on its own and its header
 * read-only; Status RW1C bits are never set by writing ones nor cleared by
 * writing zeros; MSI and MSI-X control registers keep their read-only
 * fields and take their enable bits. Everything written is restored.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <string.h>

#include "conform.h"

#define CFG VFIO_PCI_CONFIG_REGION_INDEX
/* Capability walk guard, as lspci has it. */
#define MAX_CAPS 48
#define NUM_BARS 6

struct cfgio {
    struct umdev_client *c;
    struct cf_result *r;
    bool broken; /* the connection failed: stop */
};

static uint32_t
rd(struct cfgio *io, unsigned int off, unsigned int len)
{
    uint8_t b[4] = { 0 };
    int rc;

    if (io->broken)
        return 0;
    rc = umdev_client_region_read(io->c, CFG, off, b, len);
    if (rc < 0) {
        cf_fail(io->r, R_CONFIG_ACCESS, "config read of %u bytes at 0x%02x: %s",
                len, off, cf_errname(-rc));
        if (rc == -ECONNRESET || rc == -ETIMEDOUT)
            io->broken = true;
        return 0;
    }
    return cf_le(b, len);
}

static void
wr(struct cfgio *io, unsigned int off, unsigned int len, uint32_t v)
{
    uint8_t b[4];
    int rc;

    if (io->broken)
        return;
    cf_put_le(b, len, v);
    rc = umdev_client_region_write(io->c, CFG, off, b, len);
    if (rc < 0) {
        /* Writes to read-only bits are ignored (§6.1); umdev never
         * refuses one. */
        cf_fail(io->r, R_CONFIG_WRITE_ACCEPTED,
                "config write of %u bytes at 0x%02x refused: %s", len, off,
                cf_errname(-rc));
        if (rc == -ECONNRESET || rc == -ETIMEDOUT)
            io->broken = true;
    }
}

struct ro_field {
    const char *name;
    unsigned int off, len;
};

static const struct ro_field ro_fields[] = {
    { "Vendor ID", PCI_VENDOR_ID, 2 },
    { "Device ID", PCI_DEVICE_ID, 2 },
    { "Revision ID", PCI_REVISION_ID, 1 },
    { "Class Code", PCI_CLASS_PROG, 3 },
    { "Header Type", PCI_HEADER_TYPE, 1 },
    { "Subsystem Vendor ID", PCI_SUBSYSTEM_VENDOR_ID, 2 },
    { "Subsystem ID", PCI_SUBSYSTEM_ID, 2 },
    { "Capabilities Pointer", PCI_CAPABILITY_LIST, 1 },
    { "Interrupt Pin", PCI_INTERRUPT_PIN, 1 },
};

/* Dwords written whole (inverted) to catch wide writes leaking into RO
 * fields; each is restored. */
static const unsigned int ro_dwords[] = { 0x00, 0x08, 0x0c, 0x2c, 0x34, 0x3c };

static void
check_ro_fields(struct cfgio *io, unsigned int *nwrites)
{
    uint32_t before[CF_ARRAY_SIZE(ro_fields)];
    size_t i, k;

    for (i = 0; i < CF_ARRAY_SIZE(ro_fields); i++)
        before[i] = rd(io, ro_fields[i].off, ro_fields[i].len);
    /* Byte writes of all ones and of the inverse. */
    for (i = 0; i < CF_ARRAY_SIZE(ro_fields); i++) {
        const struct ro_field *f = &ro_fields[i];

        for (k = 0; k < f->len; k++) {
            uint8_t b = (uint8_t)(before[i] >> (8 * k));

            wr(io, f->off + (unsigned int)k, 1, 0xff);
            wr(io, f->off + (unsigned int)k, 1, (uint8_t)~b);
            *nwrites += 2;
        }
        if (f->len == 2) {
            wr(io, f->off, 2, ~before[i] & 0xffff);
            (*nwrites)++;
        }
    }
    for (i = 0; i < CF_ARRAY_SIZE(ro_dwords); i++) {
        uint32_t d = rd(io, ro_dwords[i], 4);

        wr(io, ro_dwords[i], 4, ~d);
        wr(io, ro_dwords[i], 4, d); /* restores the writable bits */
        *nwrites += 2;
    }
    for (i = 0; i < CF_ARRAY_SIZE(ro_fields); i++) {
        const struct ro_field *f = &ro_fields[i];
        uint32_t now = rd(io, f->off, f->len);

        if (now != before[i]) {
            cf_fail(io->r, R_CONFIG_HEADER_RO,
                    "%s (0x%02x) is read-only but changed from 0x%x "
                    "to 0x%x by writes",
                    f->name, f->off, before[i], now);
            for (k = 0; k < f->len; k++)
                wr(io, f->off + (unsigned int)k, 1,
                   (uint8_t)(before[i] >> (8 * k)));
        }
    }
}

static void
check_command_status(struct cfgio *io, const uint8_t *cfg, char *ev,
                     size_t evlen)
{
    uint32_t cmd0 = rd(io, PCI_COMMAND, 2), cmd1;
    uint32_t st0, st1, st2, st3;
    uint32_t live = PCI_STATUS_INTERRUPT; /* follows the INTx line */

    wr(io, PCI_COMMAND, 2, 0xffff);
    cmd1 = rd(io, PCI_COMMAND, 2);
    wr(io, PCI_COMMAND, 2, cmd0);
    if (cmd1 & 0xf800)
        cf_fail(io->r, R_CONFIG_COMMAND_STATUS,
                "Command reserved bits 15:11 read 0x%04x after "
                "writing ones (must read 0)",
                cmd1 & 0xf800);
    if (rd(io, PCI_COMMAND, 2) != cmd0)
        cf_fail(io->r, R_CONFIG_COMMAND_STATUS,
                "Command did not restore to 0x%04x", cmd0);

    /* RW1C: a 1 clears, never sets; a 0 leaves the bit alone. */
    st0 = rd(io, PCI_STATUS, 2);
    wr(io, PCI_STATUS, 2, 0xffff);
    st1 = rd(io, PCI_STATUS, 2);
    if ((st1 & ~st0) & ~live)
        cf_fail(io->r, R_CONFIG_COMMAND_STATUS,
                "writing ones to Status set bits 0x%04x "
                "(0x%04x -> 0x%04x)",
                (st1 & ~st0) & ~live, st0, st1);
    if (st1 & 0xf900)
        cf_fail(io->r, R_CONFIG_COMMAND_STATUS,
                "Status error bits 0x%04x (RW1C) stayed set after "
                "writing ones",
                st1 & 0xf900);
    if ((st1 ^ st0) & PCI_STATUS_CAP_LIST)
        cf_fail(io->r, R_CONFIG_COMMAND_STATUS,
                "Status Capabilities List bit changed on a write");
    wr(io, PCI_STATUS, 2, 0);
    st2 = rd(io, PCI_STATUS, 2);
    if ((st2 ^ st1) & ~live)
        cf_fail(io->r, R_CONFIG_COMMAND_STATUS,
                "writing zeros to Status changed it (0x%04x -> "
                "0x%04x)",
                st1, st2);
    /* The same through a dword write to Command+Status. */
    wr(io, PCI_COMMAND, 4, 0xffff0000u | cmd0);
    st3 = rd(io, PCI_STATUS, 2);
    if ((st3 & ~st0) & ~live)
        cf_fail(io->r, R_CONFIG_COMMAND_STATUS,
                "a dword write of ones to Status set bits 0x%04x",
                (st3 & ~st0) & ~live);
    if (rd(io, PCI_COMMAND, 2) != cmd0)
        cf_fail(io->r, R_CONFIG_COMMAND_STATUS,
                "a dword write to Command+Status changed Command");

    /* Interrupt Line is read-write for a device with an interrupt pin. */
    if (cfg[PCI_INTERRUPT_PIN] != 0) {
        uint32_t line = rd(io, PCI_INTERRUPT_LINE, 1);

        wr(io, PCI_INTERRUPT_LINE, 1, ~line & 0xff);
        if (rd(io, PCI_INTERRUPT_LINE, 1) != (~line & 0xff))
            cf_fail(io->r, R_CONFIG_INTERRUPT_LINE,
                    "Interrupt Line is not writable (pin %u)",
                    cfg[PCI_INTERRUPT_PIN]);
        wr(io, PCI_INTERRUPT_LINE, 1, line);
    }
    snprintf(ev, evlen,
             "Command writable 0x%04x, Status 0x%04x -> 0x%04x after ones, "
             "0x%04x after zeros",
             cmd1, st0, st1, st2);
}

static bool
pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* Size one BAR (and its upper half); append "BARn kind size" to @ev. */
static unsigned int
check_bar(struct cfgio *io, const struct conform *cf, unsigned int i, char *ev,
          size_t evlen)
{
    unsigned int off = PCI_BASE_ADDRESS_0 + 4 * i;
    uint64_t rsize = cf_region_present(cf, i) ? cf->dev.regions[i].size : 0;
    uint32_t orig = rd(io, off, 4), rb, rbh = 0, orig_hi = 0;
    uint64_t mask, size;
    const char *kind;
    size_t n = strlen(ev);
    unsigned int used = 1;

    wr(io, off, 4, 0xffffffffu);
    rb = rd(io, off, 4);
    if (rb == 0) {
        wr(io, off, 4, orig);
        if (rsize != 0)
            cf_fail(io->r, R_CONFIG_BAR_SIZE,
                    "BAR%u reads 0 after sizing but region %u has "
                    "%" PRIu64 " bytes",
                    i, i, rsize);
        return 1;
    }
    if (rb & PCI_BASE_ADDRESS_SPACE_IO) {
        kind = "io";
        mask = rb & PCI_BASE_ADDRESS_IO_MASK;
        if ((mask & 0xffff0000u) == 0) /* 16-bit decode */
            mask |= 0xffff0000u;
        mask |= 0xffffffff00000000ull;
        if ((rb & 3) != (orig & 3))
            cf_fail(io->r, R_CONFIG_BAR, "BAR%u type bits changed on sizing",
                    i);
    } else {
        unsigned int type = (rb & PCI_BASE_ADDRESS_MEM_TYPE_MASK);

        if ((rb & 0xf) != (orig & 0xf))
            cf_fail(io->r, R_CONFIG_BAR,
                    "BAR%u type/prefetchable bits changed on sizing "
                    "(0x%x -> 0x%x)",
                    i, orig & 0xf, rb & 0xf);
        mask = (rb & PCI_BASE_ADDRESS_MEM_MASK) | 0xffffffff00000000ull;
        if (type == PCI_BASE_ADDRESS_MEM_TYPE_64) {
            kind = rb & PCI_BASE_ADDRESS_MEM_PREFETCH ? "mem64 pref" : "mem64";
            if (i + 1 >= NUM_BARS) {
                cf_fail(io->r, R_CONFIG_BAR,
                        "BAR%u is 64-bit but has no upper half", i);
            } else {
                orig_hi = rd(io, off + 4, 4);
                wr(io, off + 4, 4, 0xffffffffu);
                rbh = rd(io, off + 4, 4);
                wr(io, off + 4, 4, orig_hi);
                mask = (uint64_t)rbh << 32 | (rb & PCI_BASE_ADDRESS_MEM_MASK);
                used = 2;
                if (cf_region_present(cf, i + 1))
                    cf_fail(io->r, R_CONFIG_BAR_SIZE,
                            "region %u is present but BAR%u is the "
                            "upper half of 64-bit BAR%u",
                            i + 1, i + 1, i);
                if (rd(io, off + 4, 4) != orig_hi)
                    cf_fail(io->r, R_CONFIG_BAR,
                            "BAR%u (upper half) did not restore", i + 1);
            }
        } else if (type == PCI_BASE_ADDRESS_MEM_TYPE_32) {
            kind = rb & PCI_BASE_ADDRESS_MEM_PREFETCH ? "mem32 pref" : "mem32";
        } else {
            kind = "reserved type";
            cf_fail(io->r, R_CONFIG_BAR, "BAR%u has reserved memory type %u", i,
                    type >> 1);
        }
    }
    wr(io, off, 4, orig);
    if (rd(io, off, 4) != orig)
        cf_fail(io->r, R_CONFIG_BAR, "BAR%u did not restore to 0x%08x", i,
                orig);
    size = ~mask + 1;
    if (!pow2(size))
        cf_fail(io->r, R_CONFIG_BAR,
                "BAR%u size mask 0x%" PRIx64 " is not contiguous", i, mask);
    else if (size != rsize)
        cf_fail(io->r, R_CONFIG_BAR_SIZE,
                "BAR%u decodes %" PRIu64 " bytes, region %u has %" PRIu64, i,
                size, i, rsize);
    snprintf(ev + n, evlen - n, "%sBAR%u %s %" PRIu64 " B", n ? ", " : "", i,
             kind, size);
    return used;
}

static void
check_bars(struct cfgio *io, const struct conform *cf, char *ev, size_t evlen)
{
    uint32_t orig, rb;
    unsigned int i;

    ev[0] = '\0';
    for (i = 0; i < NUM_BARS && !io->broken;)
        i += check_bar(io, cf, i, ev, evlen);
    /* Expansion ROM: unimplemented reads 0, else sizes like a BAR. */
    orig = rd(io, PCI_ROM_ADDRESS, 4);
    wr(io, PCI_ROM_ADDRESS, 4, PCI_ROM_ADDRESS_MASK);
    rb = rd(io, PCI_ROM_ADDRESS, 4);
    wr(io, PCI_ROM_ADDRESS, 4, orig);
    if (!cf_region_present(cf, VFIO_PCI_ROM_REGION_INDEX)) {
        if (rb != 0)
            cf_fail(io->r, R_CONFIG_BAR_SIZE,
                    "no ROM region but the ROM BAR reads 0x%08x "
                    "after sizing",
                    rb);
    } else {
        uint64_t size = (uint32_t) ~(rb & PCI_ROM_ADDRESS_MASK) + 1ull;

        if (size != cf->dev.regions[VFIO_PCI_ROM_REGION_INDEX].size)
            cf_fail(io->r, R_CONFIG_BAR_SIZE,
                    "ROM BAR decodes %" PRIu64 " bytes, the region "
                    "has %" PRIu64,
                    size, cf->dev.regions[VFIO_PCI_ROM_REGION_INDEX].size);
    }
    if (ev[0] == '\0')
        snprintf(ev, evlen, "no BARs");
}

static void
check_msi(struct cfgio *io, unsigned int off, char *ev, size_t evlen)
{
    uint32_t ctrl = rd(io, off + PCI_MSI_FLAGS, 2), now;
    uint32_t ro = PCI_MSI_FLAGS_QMASK | PCI_MSI_FLAGS_64BIT |
                  PCI_MSI_FLAGS_MASKBIT | 0xfe00;
    unsigned int mmc = (ctrl & PCI_MSI_FLAGS_QMASK) >> 1;

    if (ctrl & 0xfe00)
        cf_fail(io->r, R_CONFIG_MSI, "MSI control reserved bits read 0x%04x",
                ctrl & 0xfe00);
    wr(io, off + PCI_MSI_FLAGS, 2, (ctrl ^ ro) & ~PCI_MSI_FLAGS_ENABLE);
    now = rd(io, off + PCI_MSI_FLAGS, 2);
    if ((now ^ ctrl) & ro)
        cf_fail(io->r, R_CONFIG_MSI,
                "MSI control read-only bits changed (0x%04x -> "
                "0x%04x)",
                ctrl, now);
    wr(io, off + PCI_MSI_FLAGS, 2,
       (ctrl & ro) | PCI_MSI_FLAGS_ENABLE | (mmc << 4));
    now = rd(io, off + PCI_MSI_FLAGS, 2);
    if (!(now & PCI_MSI_FLAGS_ENABLE))
        cf_fail(io->r, R_CONFIG_MSI, "MSI Enable does not take a write");
    if (((now & PCI_MSI_FLAGS_QSIZE) >> 4) != mmc)
        cf_fail(io->r, R_CONFIG_MSI,
                "MSI Multiple Message Enable does not take %u", mmc);
    wr(io, off + PCI_MSI_FLAGS, 2, ctrl);
    if (rd(io, off + PCI_MSI_FLAGS, 2) != ctrl)
        cf_fail(io->r, R_CONFIG_MSI, "MSI control did not restore");
    snprintf(ev, evlen, "MSI %u vectors%s%s", 1u << mmc,
             ctrl & PCI_MSI_FLAGS_64BIT ? " 64-bit" : "",
             ctrl & PCI_MSI_FLAGS_MASKBIT ? " maskable" : "");
}

static void
check_msix(struct cfgio *io, const struct conform *cf, unsigned int off,
           char *ev, size_t evlen)
{
    uint32_t ctrl = rd(io, off + PCI_MSIX_FLAGS, 2), now;
    uint32_t table = rd(io, off + PCI_MSIX_TABLE, 4);
    uint32_t pba = rd(io, off + PCI_MSIX_PBA, 4);
    uint32_t n = (ctrl & PCI_MSIX_FLAGS_QSIZE) + 1;
    uint32_t tbir = table & PCI_MSIX_TABLE_BIR, pbir = pba & PCI_MSIX_PBA_BIR;
    uint64_t toff = table & PCI_MSIX_TABLE_OFFSET;
    uint64_t poff = pba & PCI_MSIX_PBA_OFFSET;
    uint64_t tlen = (uint64_t)n * PCI_MSIX_ENTRY_SIZE;
    uint64_t plen = ((n + 63) / 64) * 8ull;
    uint8_t vc[4];
    int rc;

    if (ctrl & 0x3800)
        cf_fail(io->r, R_CONFIG_MSIX, "MSI-X control reserved bits read 0x%04x",
                ctrl & 0x3800);
    wr(io, off + PCI_MSIX_FLAGS, 2,
       ctrl | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    now = rd(io, off + PCI_MSIX_FLAGS, 2);
    if ((now & (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL)) !=
        (PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL))
        cf_fail(io->r, R_CONFIG_MSIX,
                "MSI-X Enable/Function Mask do not take a write "
                "(0x%04x)",
                now);
    wr(io, off + PCI_MSIX_FLAGS, 2, (~ctrl & 0x3fff) | (ctrl & 0xc000));
    now = rd(io, off + PCI_MSIX_FLAGS, 2);
    if ((now ^ ctrl) & 0x3fff)
        cf_fail(io->r, R_CONFIG_MSIX,
                "MSI-X Table Size changed on a write (0x%04x -> "
                "0x%04x)",
                ctrl, now);
    wr(io, off + PCI_MSIX_FLAGS, 2, ctrl);
    if (rd(io, off + PCI_MSIX_FLAGS, 2) != ctrl)
        cf_fail(io->r, R_CONFIG_MSIX, "MSI-X control did not restore");
    wr(io, off + PCI_MSIX_TABLE, 4, ~table);
    wr(io, off + PCI_MSIX_PBA, 4, ~pba);
    if (rd(io, off + PCI_MSIX_TABLE, 4) != table ||
        rd(io, off + PCI_MSIX_PBA, 4) != pba)
        cf_fail(io->r, R_CONFIG_MSIX,
                "MSI-X Table/PBA offset registers are writable");
    /* Where they point must exist. */
    if (tbir >= NUM_BARS || !cf_region_present(cf, tbir) ||
        toff + tlen > cf->dev.regions[tbir].size)
        cf_fail(io->r, R_CONFIG_MSIX,
                "MSI-X table (BAR%u+0x%" PRIx64 ", %u entries) lies "
                "outside BAR%u's region",
                tbir, toff, n, tbir);
    else if (pbir >= NUM_BARS || !cf_region_present(cf, pbir) ||
             poff + plen > cf->dev.regions[pbir].size)
        cf_fail(io->r, R_CONFIG_MSIX,
                "MSI-X PBA (BAR%u+0x%" PRIx64 ") lies outside BAR%u's "
                "region",
                pbir, poff, pbir);
    else if (tbir == pbir && toff < poff + plen && poff < toff + tlen)
        cf_fail(io->r, R_CONFIG_MSIX, "MSI-X table and PBA overlap");
    else if ((rc = umdev_client_region_read(
                  io->c, tbir, toff + PCI_MSIX_ENTRY_VECTOR_CTRL, vc, 4)) < 0)
        cf_fail(io->r, R_CONFIG_MSIX,
                "reading MSI-X vector 0 control (BAR%u+0x%" PRIx64 "): %s",
                tbir, toff + PCI_MSIX_ENTRY_VECTOR_CTRL, cf_errname(-rc));
    snprintf(ev, evlen,
             "MSI-X %u vectors, table BAR%u+0x%" PRIx64
             ", PBA BAR%u+0x%" PRIx64,
             n, tbir, toff, pbir, poff);
}

static void
check_caps(struct cfgio *io, const struct conform *cf, const uint8_t *cfg,
           char *ev, size_t evlen)
{
    bool seen[256] = { false };
    unsigned int ptr = cfg[PCI_CAPABILITY_LIST], ncaps = 0;
    size_t len = cf->dev.cfg_len < 256 ? cf->dev.cfg_len : 256, n;

    ev[0] = '\0';
    if (!(cf_le(cfg + PCI_STATUS, 2) & PCI_STATUS_CAP_LIST)) {
        snprintf(ev, evlen, "no capabilities (Status.CapList clear)");
        return;
    }
    if (ptr == 0)
        cf_fail(io->r, R_CONFIG_CAPABILITIES,
                "Status.CapList is set but the pointer is 0");
    while (ptr != 0 && !io->broken) {
        unsigned int id, next;
        char sub[160] = "";

        if (ptr & 3) {
            cf_fail(io->r, R_CONFIG_CAPABILITIES,
                    "capability pointer 0x%02x is not dword aligned", ptr);
            break;
        }
        if (ptr < PCI_STD_HEADER_SIZEOF || ptr + 2 > len) {
            cf_fail(io->r, R_CONFIG_CAPABILITIES,
                    "capability pointer 0x%02x is outside 0x40..0x%zx", ptr,
                    len - 4);
            break;
        }
        if (seen[ptr]) {
            cf_fail(io->r, R_CONFIG_CAPABILITIES,
                    "capability chain loops back to 0x%02x", ptr);
            break;
        }
        if (++ncaps > MAX_CAPS) {
            cf_fail(io->r, R_CONFIG_CAPABILITIES, "more than %d capabilities",
                    MAX_CAPS);
            break;
        }
        seen[ptr] = true;
        id = rd(io, ptr, 1);
        next = rd(io, ptr + 1, 1);
        if (id != cfg[ptr] || next != cfg[ptr + 1])
            cf_fail(io->r, R_CONFIG_CAPABILITIES,
                    "capability at 0x%02x reads %02x/%02x alone, "
                    "%02x/%02x in the whole space",
                    ptr, id, next, cfg[ptr], cfg[ptr + 1]);
        /* The header is read-only: a driver's write must not relink it. */
        wr(io, ptr, 1, ~id & 0xff);
        wr(io, ptr + 1, 1, ~next & 0xff);
        if (rd(io, ptr, 1) != id || rd(io, ptr + 1, 1) != next) {
            cf_fail(io->r, R_CONFIG_CAPABILITIES,
                    "capability header at 0x%02x is writable", ptr);
            wr(io, ptr, 1, id);
            wr(io, ptr + 1, 1, next);
        }
        if (id == PCI_CAP_ID_MSI && ptr + 4 <= len) {
            check_msi(io, ptr, sub, sizeof(sub));
        } else if (id == PCI_CAP_ID_MSIX && ptr + 12 <= len) {
            check_msix(io, cf, ptr, sub, sizeof(sub));
        } else if (id == PCI_CAP_ID_PM && ptr + 4 <= len) {
            uint32_t pmc = rd(io, ptr + PCI_PM_PMC, 2);

            wr(io, ptr + PCI_PM_PMC, 2, ~pmc & 0xffff);
            if (rd(io, ptr + PCI_PM_PMC, 2) != pmc)
                cf_fail(io->r, R_CONFIG_CAPABILITIES,
                        "PM capabilities (0x%02x) are writable",
                        ptr + PCI_PM_PMC);
            snprintf(sub, sizeof(sub), "PM");
        } else {
            snprintf(sub, sizeof(sub), "ID 0x%02x", id);
        }
        n = strlen(ev);
        snprintf(ev + n, evlen - n, "%s0x%02x %s", n ? ", " : "", ptr, sub);
        ptr = next;
    }
    /* PCI Express extended capabilities, if the space has them. */
    if (cf->dev.cfg_len >= 4096 && !io->broken) {
        bool xseen[1024] = { false };
        unsigned int x = 0x100, nx = 0;
        uint32_t h = rd(io, x, 4);

        while (h != 0 && h != 0xffffffffu && !io->broken) {
            unsigned int next = (h >> 20) & 0xfff;

            if (xseen[x / 4] || ++nx > 1024) {
                cf_fail(io->r, R_CONFIG_CAPABILITIES,
                        "extended capability chain loops at 0x%03x", x);
                break;
            }
            xseen[x / 4] = true;
            if (next == 0)
                break;
            if ((next & 3) || next < 0x100 || next + 4 > cf->dev.cfg_len) {
                cf_fail(io->r, R_CONFIG_CAPABILITIES,
                        "extended capability 0x%03x points to 0x%03x", x, next);
                break;
            }
            x = next;
            h = rd(io, x, 4);
        }
        n = strlen(ev);
        snprintf(ev + n, evlen - n, "; %u extended", nx);
    }
}

/* Everything written was put back: the space reads as before the check,
 * Status (RW1C bits, the live INTx bit) aside. */
static void
check_restored(struct cfgio *io, const uint8_t *before, size_t len)
{
    uint8_t now[CF_CFG_MAX];
    size_t off;
    int rc;

    rc = umdev_client_region_read(io->c, CFG, 0, now, len);
    if (rc < 0) {
        cf_fail(io->r, R_CONFIG_ACCESS, "reading config space: %s",
                cf_errname(-rc));
        return;
    }
    for (off = 0; off < len; off++) {
        if (off == PCI_STATUS || off == PCI_STATUS + 1 ||
            now[off] == before[off])
            continue;
        cf_fail(io->r, R_CONFIG_ACCESS,
                "config byte 0x%03zx reads 0x%02x after the check, "
                "0x%02x before (a write changed another field?)",
                off, now[off], before[off]);
        break;
    }
}

void
check_config(struct conform *cf, struct cf_result *r)
{
    struct cfgio io = { .r = r };
    uint8_t cfg[CF_CFG_MAX];
    char ev_cmd[160], ev_bars[256], ev_caps[512];
    unsigned int nwrites = 0;
    int rc;

    if (!cf->dev.pci || cf->dev.cfg_len < 256) {
        cf_error(r,
                 "not a PCI device with a 256-byte config region "
                 "(flags 0x%x, %zu bytes)",
                 cf->dev.flags, cf->dev.cfg_len);
        return;
    }
    rc = cf_client_connect(cf, &io.c);
    if (rc < 0) {
        cf_error(r, "cannot attach: %s", strerror(-rc));
        return;
    }
    rc = umdev_client_region_read(io.c, CFG, 0, cfg, cf->dev.cfg_len);
    if (rc < 0) {
        cf_fail(r, R_CONFIG_ACCESS, "reading config space: %s",
                cf_errname(-rc));
        goto out;
    }
    if ((cfg[PCI_HEADER_TYPE] & 0x7f) != PCI_HEADER_TYPE_NORMAL) {
        cf_error(r, "header type 0x%02x: the kit checks type-0 devices only",
                 cfg[PCI_HEADER_TYPE]);
        goto out;
    }
    if (cf_le(cfg, 2) == 0xffff || cf_le(cfg, 2) == 0)
        cf_fail(r, R_CONFIG_HEADER_RO, "Vendor ID 0x%04x is invalid",
                cf_le(cfg, 2));
    check_ro_fields(&io, &nwrites);
    check_command_status(&io, cfg, ev_cmd, sizeof(ev_cmd));
    check_bars(&io, cf, ev_bars, sizeof(ev_bars));
    check_caps(&io, cf, cfg, ev_caps, sizeof(ev_caps));
    if (io.broken)
        goto out;
    check_restored(&io, cfg, cf->dev.cfg_len);
    cf_note(r,
            "%04x:%04x class %06x: %zu RO header fields checked with %u "
            "writes",
            cf_le(cfg, 2), cf_le(cfg + 2, 2), cf_le(cfg + PCI_CLASS_PROG, 3),
            CF_ARRAY_SIZE(ro_fields), nwrites);
    cf_note(r, "%s", ev_cmd);
    cf_note(r, "%s", ev_bars);
    cf_note(r, "capabilities: %s", ev_caps);
out:
    umdev_client_destroy(io.c);
}
