/* Unit tests for lib/pci's migration state: a source's guest-programmed
 * config space, MSI/MSI-X state and INTx level arrive whole on a
 * destination of the same type; a blob from another type, a truncated or
 * newer one, or one no device could produce is refused and changes
 * nothing (umdev_pci_state_check() refusing it alike); a load delivers
 * no MSI/MSI-X vector, and pending bits are delivered when the guest
 * unmasks them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/pci_regs.h>
#include <stdlib.h>
#include <string.h>

#include "pci_fixture.h"
#include "umdev/dev_testing.h"
#include "umdev/pci.h"

#define MSIX_TABLE 0x800
#define MSIX_PBA 0xc00
#define MSIX_VECTORS 4
#define MSIX_ENTRY(v, field) (MSIX_TABLE + (v)*PCI_MSIX_ENTRY_SIZE + (field))
/* Offsets in the blob (docs/PROTOCOL.md "PCI config space state"). */
#define BLOB_VERSION 8
#define BLOB_LEN 12
#define BLOB_CFG 128

static const struct umdev_pci_id test_id = {
    .vendor_id = 0x1234,
    .device_id = 0x5678,
    .subsystem_vendor_id = 0x1af4,
    .subsystem_id = 0x1100,
    .revision = 3,
    .class_code = 0x070002,
    .interrupt_pin = 1,
};

struct pair {
    struct pci_fixture src, dst;
    int src_msi, src_msix, dst_msi, dst_msix;
};

/* The device both ends are: BAR0 trapped with the MSI-X table and PBA,
 * BAR2 64-bit, PM, MSI (4 vectors, 64-bit, maskable), MSI-X, and PCI
 * Express if @pcie. */
static void
build(struct pci_fixture *f, const struct umdev_pci_id *id, bool pm, bool pcie,
      int *msi, int *msix)
{
    struct umdev_region_desc r0, r2;

    pci_fixture_init(f, "pcistate", id);
    r0 = pci_fixture_trapped(f, 4096);
    r2 = pci_fixture_trapped(f, 4096);
    assert_int_equal(
        umdev_pci_bar_add(f->pci, 0, UMDEV_PCI_BAR_MEM32, false, 4096, &r0), 0);
    assert_int_equal(
        umdev_pci_bar_add(f->pci, 2, UMDEV_PCI_BAR_MEM64, true, 4096, &r2), 0);
    if (pm)
        assert_true(umdev_pci_cap_add_pm(f->pci) > 0);
    *msi = umdev_pci_cap_add_msi(f->pci, 4, true, true);
    assert_true(*msi > 0);
    *msix = umdev_pci_cap_add_msix(f->pci, MSIX_VECTORS, 0, MSIX_TABLE, 0,
                                   MSIX_PBA);
    assert_true(*msix > 0);
    if (pcie)
        assert_true(umdev_pci_cap_add_pcie(f->pci) > 0);
}

static struct pair *
pair_new(void)
{
    struct pair *p = calloc(1, sizeof(*p));

    assert_non_null(p);
    return p;
}

static int
setup(void **state)
{
    struct pair *p = pair_new();

    build(&p->src, &test_id, true, false, &p->src_msi, &p->src_msix);
    build(&p->dst, &test_id, true, false, &p->dst_msi, &p->dst_msix);
    *state = p;
    return 0;
}

static int
setup_pcie(void **state)
{
    struct pair *p = pair_new();

    build(&p->src, &test_id, true, true, &p->src_msi, &p->src_msix);
    build(&p->dst, &test_id, true, true, &p->dst_msi, &p->dst_msix);
    *state = p;
    return 0;
}

static int
teardown(void **state)
{
    struct pair *p = *state;
    void *f;

    f = &p->src;
    pci_fixture_teardown(&f);
    f = &p->dst;
    pci_fixture_teardown(&f);
    free(p);
    return 0;
}

static void
cfg_w(struct pci_fixture *f, uint32_t off, uint32_t v, size_t len)
{
    assert_int_equal(umdev_dev_region_rw(f->dev, UMDEV_PCI_CONFIG_REGION, off,
                                         &v, len, true),
                     0);
}

static void
bar0_w(struct pci_fixture *f, uint32_t off, uint32_t v)
{
    assert_int_equal(umdev_dev_region_rw(f->dev, 0, off, &v, 4, true), 0);
}

static uint32_t
bar0_r(struct pci_fixture *f, uint32_t off)
{
    uint32_t v = 0;

    assert_int_equal(umdev_dev_region_rw(f->dev, 0, off, &v, 4, false), 0);
    return v;
}

static uint64_t
irqs(struct pci_fixture *f)
{
    struct umdev_dev_stats st;

    /* No eventfds in these tests: every interrupt fired is "dropped". */
    umdev_dev_get_stats(f->dev, &st);
    return st.irqs + st.irqs_dropped;
}

/* Everything a guest reads from lib/pci: config space, then the MSI-X
 * table and PBA through BAR0. */
struct view {
    uint8_t cfg[UMDEV_PCI_CONFIG_SIZE_EXP];
    uint32_t msix[MSIX_VECTORS * 4 + 2];
};

static void
view(struct pci_fixture *f, struct view *v)
{
    uint32_t i, size = umdev_pci_config_size(f->pci);

    memset(v, 0, sizeof(*v));
    for (i = 0; i < size; i += 4)
        assert_int_equal(umdev_dev_region_rw(f->dev, UMDEV_PCI_CONFIG_REGION, i,
                                             v->cfg + i, 4, false),
                         0);
    for (i = 0; i < MSIX_VECTORS * 4; i++)
        v->msix[i] = bar0_r(f, MSIX_TABLE + 4 * i);
    v->msix[MSIX_VECTORS * 4] = bar0_r(f, MSIX_PBA);
    v->msix[MSIX_VECTORS * 4 + 1] = bar0_r(f, MSIX_PBA + 4);
}

static bool
rd_status_intx(const struct view *v)
{
    return (v->cfg[PCI_STATUS] & PCI_STATUS_INTERRUPT) != 0;
}

static uint8_t *
save(struct pci_fixture *f, size_t *len)
{
    uint8_t *b;

    *len = umdev_pci_state_size(f->pci);
    b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(umdev_pci_state_save(f->pci, b, *len - 1), -ENOSPC);
    assert_int_equal(umdev_pci_state_save(f->pci, b, *len), 0);
    return b;
}

/* What a guest driver leaves behind: memory decode, bus master, INTx
 * disabled, BARs placed, MSI programmed but off, MSI-X on with vector 1
 * masked and pending, vectors 0, 2, 3 live. */
static void
program(struct pair *p)
{
    struct pci_fixture *f = &p->src;
    unsigned int v;

    cfg_w(f, PCI_COMMAND,
          PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE,
          2);
    cfg_w(f, PCI_BASE_ADDRESS_0, 0xfe000000, 4);
    cfg_w(f, PCI_BASE_ADDRESS_2, 0xc0000000, 4);
    cfg_w(f, PCI_BASE_ADDRESS_3, 0x00000080, 4);
    cfg_w(f, PCI_CACHE_LINE_SIZE, 0x10, 1);
    cfg_w(f, PCI_INTERRUPT_LINE, 11, 1);
    cfg_w(f, p->src_msi + PCI_MSI_ADDRESS_LO, 0xfee01000, 4);
    cfg_w(f, p->src_msi + PCI_MSI_DATA_64, 0x4021, 2);
    for (v = 0; v < MSIX_VECTORS; v++) {
        bar0_w(f, MSIX_ENTRY(v, PCI_MSIX_ENTRY_LOWER_ADDR), 0xfee00000 + v);
        bar0_w(f, MSIX_ENTRY(v, PCI_MSIX_ENTRY_UPPER_ADDR), 0);
        bar0_w(f, MSIX_ENTRY(v, PCI_MSIX_ENTRY_DATA), 0x40 + v);
        bar0_w(f, MSIX_ENTRY(v, PCI_MSIX_ENTRY_VECTOR_CTRL),
               v == 1 ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
    }
    cfg_w(f, p->src_msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, 2);
    assert_int_equal(umdev_pci_irq_raise(f->pci, 1), -EAGAIN);
    assert_int_equal(bar0_r(f, MSIX_PBA), 1u << 1);
    /* The device holds INTx high; the guest disabled delivery. */
    umdev_pci_intx_set(f->pci, true);
}

static void
test_roundtrip(void **state)
{
    struct pair *p = *state;
    struct view vs, vd;
    uint64_t before;
    char err[160];
    uint8_t *b;
    size_t len;

    program(p);
    b = save(&p->src, &len);
    before = irqs(&p->dst);
    assert_int_equal(umdev_pci_state_load(p->dst.pci, b, len, err, sizeof(err)),
                     0);
    /* Nothing fired by the load itself. */
    assert_int_equal(irqs(&p->dst), before);
    view(&p->src, &vs);
    view(&p->dst, &vd);
    assert_memory_equal(vs.cfg, vd.cfg, sizeof(vs.cfg));
    assert_memory_equal(vs.msix, vd.msix, sizeof(vs.msix));
    assert_true(rd_status_intx(&vd));
    assert_int_equal(umdev_pci_irq_mode(p->dst.pci), UMDEV_PCI_IRQ_MSIX);
    assert_true(umdev_pci_mem_enabled(p->dst.pci));
    assert_true(umdev_pci_bus_master(p->dst.pci));
    /* Masking works on the destination: vector 1 is still held, 0 is
     * delivered. */
    assert_int_equal(umdev_pci_irq_raise(p->dst.pci, 1), -EAGAIN);
    assert_int_equal(irqs(&p->dst), before);
    assert_int_not_equal(umdev_pci_irq_raise(p->dst.pci, 0), -EAGAIN);
    assert_int_equal(irqs(&p->dst), before + 1);
    /* The pending bit becomes an interrupt once the guest unmasks it. */
    bar0_w(&p->dst, MSIX_ENTRY(1, PCI_MSIX_ENTRY_VECTOR_CTRL), 0);
    assert_int_equal(irqs(&p->dst), before + 2);
    assert_int_equal(bar0_r(&p->dst, MSIX_PBA), 0);
    free(b);
}

/* MSI: a vector masked and pending on the source is pending on the
 * destination and delivered there when unmasked. */
static void
test_msi_pending(void **state)
{
    struct pair *p = *state;
    uint32_t mask_off = (uint32_t)p->src_msi + PCI_MSI_MASK_64;
    char err[160];
    uint64_t before;
    uint32_t v = 0;
    uint8_t *b;
    size_t len;

    cfg_w(&p->src, p->src_msi + PCI_MSI_ADDRESS_LO, 0xfee00000, 4);
    cfg_w(&p->src, mask_off, 1u << 2, 4);
    cfg_w(&p->src, p->src_msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE | (2u << 4),
          2);
    assert_int_equal(umdev_pci_irq_raise(p->src.pci, 2), -EAGAIN);
    b = save(&p->src, &len);
    before = irqs(&p->dst);
    assert_int_equal(umdev_pci_state_load(p->dst.pci, b, len, err, sizeof(err)),
                     0);
    assert_int_equal(irqs(&p->dst), before);
    assert_int_equal(umdev_pci_irq_mode(p->dst.pci), UMDEV_PCI_IRQ_MSI);
    assert_int_equal(umdev_pci_config_read(p->dst.pci, mask_off + 4, &v, 4), 0);
    assert_int_equal(v, 1u << 2);
    cfg_w(&p->dst, mask_off, 0, 4);
    assert_int_equal(irqs(&p->dst), before + 1);
    assert_int_equal(umdev_pci_config_read(p->dst.pci, mask_off + 4, &v, 4), 0);
    assert_int_equal(v, 0);
    free(b);
}

/* A refusal: @err names @why, and the destination reads as before. */
static void
refused(struct pair *p, struct pci_fixture *dst, const uint8_t *b, size_t len,
        int want, const char *why)
{
    struct view before, after;
    uint64_t n = irqs(dst);
    char err[160];
    int rc;

    view(dst, &before);
    /* The check alone says the same. */
    rc = umdev_pci_state_check(dst->pci, b, len, err, sizeof(err));
    if (rc != want || strstr(err, why) == NULL)
        fail_msg("check for \"%s\": %d, want %d (%s)", why, rc, want, err);
    view(dst, &after);
    assert_memory_equal(before.cfg, after.cfg, sizeof(before.cfg));
    rc = umdev_pci_state_load(dst->pci, b, len, err, sizeof(err));
    if (rc != want)
        fail_msg("load for \"%s\": %d, want %d (%s)", why, rc, want, err);
    if (strstr(err, why) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", err, why);
    view(dst, &after);
    assert_memory_equal(before.cfg, after.cfg, sizeof(before.cfg));
    assert_memory_equal(before.msix, after.msix, sizeof(before.msix));
    assert_int_equal(irqs(dst), n);
    (void)p;
}

static void
put32(uint8_t *b, size_t off, uint32_t v)
{
    unsigned int i;

    for (i = 0; i < 4; i++)
        b[off + i] = (uint8_t)(v >> (8 * i));
}

static void
test_refusals(void **state)
{
    struct pair *p = *state;
    struct umdev_pci_id other = test_id;
    struct pci_fixture *o = calloc(1, sizeof(*o));
    uint8_t *b, *bad;
    size_t len;
    int msi, msix;
    void *f = o;

    assert_non_null(o);
    program(p);
    b = save(&p->src, &len);
    bad = malloc(len);
    assert_non_null(bad);
    /* The destination has state of its own that must survive. */
    cfg_w(&p->dst, PCI_COMMAND, PCI_COMMAND_IO, 2);
    bar0_w(&p->dst, MSIX_ENTRY(3, PCI_MSIX_ENTRY_DATA), 0xabcd);

    refused(p, &p->dst, b, len - 1, -EINVAL, "length");
    refused(p, &p->dst, b, 10, -EINVAL, "truncated");
    memcpy(bad, b, len);
    put32(bad, BLOB_LEN, (uint32_t)len + 4);
    refused(p, &p->dst, bad, len, -EINVAL, "length");
    memcpy(bad, b, len);
    bad[0] ^= 1;
    refused(p, &p->dst, bad, len, -EINVAL, "magic");
    memcpy(bad, b, len);
    put32(bad, BLOB_VERSION, UMDEV_PCI_STATE_VERSION + 1);
    refused(p, &p->dst, bad, len, -ENOTSUP, "newer");
    /* Read-only bits: vendor ID, class code, the capability chain. */
    memcpy(bad, b, len);
    bad[BLOB_CFG + PCI_VENDOR_ID] ^= 0x01;
    refused(p, &p->dst, bad, len, -EINVAL, "vendor ID");
    memcpy(bad, b, len);
    bad[BLOB_CFG + PCI_CLASS_DEVICE] ^= 0x80;
    refused(p, &p->dst, bad, len, -EINVAL, "class code");
    memcpy(bad, b, len);
    bad[BLOB_CFG + p->src_msi + PCI_MSI_FLAGS + 1] ^=
        PCI_MSI_FLAGS_MASKBIT >> 8;
    refused(p, &p->dst, bad, len, -EINVAL, "capability 0x05");
    /* The status bit disagreeing with the INTx level. */
    memcpy(bad, b, len);
    bad[BLOB_CFG + PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    refused(p, &p->dst, bad, len, -EINVAL, "INTx");
    /* Unknown flags. */
    memcpy(bad, b, len);
    bad[24] |= 0x80;
    refused(p, &p->dst, bad, len, -EINVAL, "flags");
    /* A vector both pending and unmasked: no device is in that state. */
    memcpy(bad, b, len);
    bad[len - 8] |= 1u << 0;
    refused(p, &p->dst, bad, len, -EINVAL, "vector 0 pending but unmasked");
    memcpy(bad, b, len);
    bad[len - 8] |= 1u << 5;
    refused(p, &p->dst, bad, len, -EINVAL, "past 4 vectors");
    /* The BAR table: another size for BAR2. */
    memcpy(bad, b, len);
    put32(bad, 32 + 2 * 16 + 8, 8192);
    refused(p, &p->dst, bad, len, -EINVAL, "BAR2");

    /* Other device types. */
    other.vendor_id = 0x1235;
    build(o, &other, true, false, &msi, &msix);
    refused(p, o, b, len, -EINVAL, "vendor ID");
    pci_fixture_teardown(&f);
    build(o, &test_id, false, false, &msi, &msix); /* no PM: layout */
    refused(p, o, b, len, -EINVAL, "capability 0x05 at 0x40 (layout)");
    pci_fixture_teardown(&f);
    build(o, &test_id, true, true, &msi, &msix); /* PCIe: 4 KiB */
    refused(p, o, b, len, -EINVAL, "config size 256");
    pci_fixture_teardown(&f);

    /* And the untouched blob still loads; the check changes nothing. */
    {
        struct view before, after;

        view(&p->dst, &before);
        assert_int_equal(umdev_pci_state_check(p->dst.pci, b, len, NULL, 0), 0);
        view(&p->dst, &after);
        assert_memory_equal(before.cfg, after.cfg, sizeof(before.cfg));
        assert_memory_equal(before.msix, after.msix, sizeof(before.msix));
    }
    assert_int_equal(umdev_pci_state_load(p->dst.pci, b, len, NULL, 0), 0);
    free(bad);
    free(b);
    free(o);
}

/* The INTx line as loaded is driven: a destination whose guest left INTx
 * delivery on raises it (lib/dev holds it while a migrating device is
 * stopped, tests/func/test_func_migration.c), and a line loaded low is
 * lowered. */
static void
test_intx_driven(void **state)
{
    struct pair *p = *state;
    uint8_t *high, *low;
    size_t len;
    uint64_t n;

    cfg_w(&p->src, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
    umdev_pci_intx_set(p->src.pci, true);
    high = save(&p->src, &len);
    umdev_pci_intx_set(p->src.pci, false);
    low = save(&p->src, &len);

    n = irqs(&p->dst);
    assert_int_equal(umdev_pci_state_load(p->dst.pci, high, len, NULL, 0), 0);
    assert_int_equal(irqs(&p->dst), n + 1);
    /* Still high: a second load raises no second edge. */
    assert_int_equal(umdev_pci_state_load(p->dst.pci, high, len, NULL, 0), 0);
    assert_int_equal(irqs(&p->dst), n + 1);
    assert_int_equal(umdev_pci_state_load(p->dst.pci, low, len, NULL, 0), 0);
    assert_int_equal(umdev_pci_state_load(p->dst.pci, high, len, NULL, 0), 0);
    assert_int_equal(irqs(&p->dst), n + 2);
    free(high);
    free(low);
}

/* Without MSI-X there is no table a guest could have written: a blob
 * saying it did is from another device. */
static void
test_no_msix(void **state)
{
    struct pci_fixture *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    uint8_t *blob, line;
    size_t len;
    void *f;

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    pci_fixture_init(a, "pcistate-a", &test_id);
    pci_fixture_init(b, "pcistate-b", &test_id);
    cfg_w(a, PCI_INTERRUPT_LINE, 9, 1);
    blob = save(a, &len);
    assert_int_equal(len, 128 + 256);
    blob[24] |= 0x02;
    assert_int_equal(umdev_pci_state_load(b->pci, blob, len, NULL, 0), -EINVAL);
    blob[24] &= (uint8_t)~0x02;
    assert_int_equal(umdev_pci_state_load(b->pci, blob, len, NULL, 0), 0);
    line = 0;
    assert_int_equal(
        umdev_pci_config_read(b->pci, PCI_INTERRUPT_LINE, &line, 1), 0);
    assert_int_equal(line, 9);
    f = a;
    pci_fixture_teardown(&f);
    f = b;
    pci_fixture_teardown(&f);
    free(blob);
    free(a);
    free(b);
}

/* 4 KiB config space: the extended part travels and stays read-only. */
static void
test_pcie(void **state)
{
    struct pair *p = *state;
    struct view vs, vd;
    char err[160];
    uint8_t *b;
    size_t len;
    int exp = umdev_pci_cap_find(p->src.pci, PCI_CAP_ID_EXP, 0);

    assert_true(exp > 0);
    program(p);
    cfg_w(&p->src, exp + PCI_EXP_DEVCTL, 0x2c1f, 2);
    b = save(&p->src, &len);
    assert_int_equal(len, 128 + 4096 + MSIX_VECTORS * 16 + 8);
    assert_int_equal(umdev_pci_state_load(p->dst.pci, b, len, err, sizeof(err)),
                     0);
    view(&p->src, &vs);
    view(&p->dst, &vd);
    assert_memory_equal(vs.cfg, vd.cfg, sizeof(vs.cfg));
    assert_memory_equal(vs.msix, vd.msix, sizeof(vs.msix));
    /* A byte of the read-only extended space set in the stream. */
    b[128 + 0x800] = 1;
    refused(p, &p->dst, b, len, -EINVAL, "config byte 0x800");
    free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_msi_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intx_driven, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pcie, setup_pcie, teardown),
        cmocka_unit_test(test_no_msix),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
