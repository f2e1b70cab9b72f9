/*
 * Unit tests of the capability-chain walk lib/pci and lib/client share
 * (lib/util/pci_caps.c), over config spaces a device could never build
 * through lib/pci but a hostile server can serve: chains into the header,
 * loops, stray low bits, a failing read.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <linux/pci_regs.h>

#include "util.h"

struct cfg {
    uint8_t b[PCI_CFG_SPACE_SIZE];
    int fail_at; /* a read touching this offset fails; -1: none */
};

static int
cfg_read(void *ctx, unsigned int off, unsigned int len, uint16_t *val)
{
    struct cfg *c = ctx;

    if (c->fail_at >= 0 && (unsigned int)c->fail_at >= off &&
        (unsigned int)c->fail_at < off + len)
        return -EIO;
    *val = (uint16_t)(c->b[off] | (len == 2 ? c->b[off + 1] << 8 : 0));
    return 0;
}

/* Status says there is a list; @first is the Capabilities Pointer. */
static void
cfg_init(struct cfg *c, uint8_t first)
{
    memset(c, 0, sizeof(*c));
    c->fail_at = -1;
    c->b[PCI_STATUS] = PCI_STATUS_CAP_LIST;
    c->b[PCI_CAPABILITY_LIST] = first;
}

static void
cap(struct cfg *c, uint8_t at, uint8_t id, uint8_t next)
{
    c->b[at + PCI_CAP_LIST_ID] = id;
    c->b[at + PCI_CAP_LIST_NEXT] = next;
}

static void
test_walk_and_find(void **state)
{
    struct cfg c;

    (void)state;
    cfg_init(&c, 0x40);
    cap(&c, 0x40, PCI_CAP_ID_PM, 0x50);
    cap(&c, 0x50, PCI_CAP_ID_MSIX, 0x60);
    cap(&c, 0x60, PCI_CAP_ID_EXP, 0);
    /* Every one in order with id 0, then the end. */
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0), 0x40);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0x40), 0x50);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0x50), 0x60);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0x60), 0);
    /* By ID, from the start or after one. */
    assert_int_equal(util_pci_cap_find(cfg_read, &c, PCI_CAP_ID_EXP, 0), 0x60);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, PCI_CAP_ID_PM, 0x40), 0);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, PCI_CAP_ID_MSI, 0), 0);
}

static void
test_no_list(void **state)
{
    struct cfg c;

    (void)state;
    cfg_init(&c, 0x40);
    cap(&c, 0x40, PCI_CAP_ID_PM, 0);
    /* Without Status.CapList the pointer means nothing. */
    c.b[PCI_STATUS] = 0;
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0), 0);
    /* With it, a pointer of 0 is an empty list. */
    cfg_init(&c, 0);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0), 0);
}

static void
test_low_bits_ignored(void **state)
{
    struct cfg c;

    (void)state;
    /* Linux masks the two low bits of every pointer; so does the walk. */
    cfg_init(&c, 0x43);
    cap(&c, 0x40, PCI_CAP_ID_PM, 0x52);
    cap(&c, 0x50, PCI_CAP_ID_MSI, 0);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0), 0x40);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, PCI_CAP_ID_MSI, 0), 0x50);
}

static void
test_broken_chains(void **state)
{
    struct cfg c;

    (void)state;
    /* Into the standard header. */
    cfg_init(&c, 0x3c);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0), -ELOOP);
    cfg_init(&c, 0x40);
    cap(&c, 0x40, PCI_CAP_ID_PM, 0x10);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, PCI_CAP_ID_MSI, 0),
                     -ELOOP);
    /* A loop: found in bounded time, whatever is asked. */
    cfg_init(&c, 0x40);
    cap(&c, 0x40, PCI_CAP_ID_PM, 0x50);
    cap(&c, 0x50, PCI_CAP_ID_MSI, 0x40);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, PCI_CAP_ID_EXP, 0),
                     -ELOOP);
    /* A self-loop after a valid start. */
    cap(&c, 0x50, PCI_CAP_ID_MSI, 0x50);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, PCI_CAP_ID_EXP, 0x40),
                     -ELOOP);
    /* @after outside the capability area. */
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0x20), -ELOOP);
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0x100), -ELOOP);
}

static void
test_read_error(void **state)
{
    struct cfg c;

    (void)state;
    cfg_init(&c, 0x40);
    cap(&c, 0x40, PCI_CAP_ID_PM, 0x50);
    cap(&c, 0x50, PCI_CAP_ID_MSI, 0);
    c.fail_at = 0x50;
    assert_int_equal(util_pci_cap_find(cfg_read, &c, PCI_CAP_ID_MSI, 0), -EIO);
    c.fail_at = PCI_STATUS;
    assert_int_equal(util_pci_cap_find(cfg_read, &c, 0, 0), -EIO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_and_find),
        cmocka_unit_test(test_no_list),
        cmocka_unit_test(test_low_bits_ignored),
        cmocka_unit_test(test_broken_chains),
        cmocka_unit_test(test_read_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
