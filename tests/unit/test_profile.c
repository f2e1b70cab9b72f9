/* Unit tests of mediation profiles (lib/dev/profile.c): validation,
 * enforcement of every rule, counters, and the JSON form. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <linux/pci_regs.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pci_fixture.h"
#include "umdev/pci.h"
#include "umdev/profile.h"
#include "audit.h"
#include "umdev/dev_testing.h"

/* BAR0: 256 bytes trapped. BAR2: 8 KiB shared memory, page 1 mmappable,
 * page 0 trapped straight to memory. */
static const struct umdev_profile_reg bar0_regs[] = {
    { .name = "ID", .offset = 0x00, .size = 4, .widths = UMDEV_W(4),
      .access = UMDEV_PROFILE_R, .purpose = "identification" },
    { .name = "CTRL", .offset = 0x08, .size = 8,
      .widths = UMDEV_W(4) | UMDEV_W(8), .access = UMDEV_PROFILE_RW,
      .purpose = "control" },
    { .name = "DOORBELL", .offset = 0x10, .size = 4, .widths = UMDEV_W(4),
      .access = UMDEV_PROFILE_W, .data_path = true,
      .purpose = "wakes the engine when it sleeps" },
    { .name = "FIFO", .offset = 0x20, .size = 16, .widths = UMDEV_W(1),
      .access = UMDEV_PROFILE_RW, .is_volatile = true,
      .purpose = "byte FIFO" },
};
static const struct umdev_profile_reg bar2_regs[] = {
    { .name = "PAGE0", .offset = 0, .size = 4096, .widths = UMDEV_W_ANY,
      .access = UMDEV_PROFILE_RW, .purpose = "test page" },
};
static const struct umdev_profile_region regions[] = {
    { .index = 0, .regs = bar0_regs, .nregs = 4 },
    { .index = 2, .regs = bar2_regs, .nregs = 1 },
};
static const struct umdev_profile profile = {
    .type = "unit-test",
    .regions = regions,
    .nregions = 2,
    .data_path = UMDEV_PROFILE_DP_RING,
};

static int
setup(void **state)
{
    static struct pci_fixture f;
    const struct umdev_pci_id id = { .vendor_id = 0x1234,
                                     .device_id = 0x1,
                                     .class_code = 0x088000 };
    struct umdev_mmap_area area = { .offset = 4096, .size = 4096 };
    struct umdev_region_desc bar0;
    struct umdev_region_desc bar2 = {
        .size = 8192,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .shm = true,
        .areas = &area,
        .nr_areas = 1,
    };

    pci_fixture_init(&f, "proftest", &id);
    bar0 = pci_fixture_trapped(&f, 256);
    assert_int_equal(umdev_dev_region_add(f.dev, 0, &bar0), 0);
    assert_int_equal(umdev_dev_region_add(f.dev, 2, &bar2), 0);
    assert_int_equal(umdev_dev_region_add(f.dev, 4, &bar0), 0);
    *state = &f;
    return 0;
}

static int
rw(struct pci_fixture *f, uint32_t region, uint64_t off, size_t n, bool write)
{
    uint8_t buf[8] = { 0 };

    return umdev_dev_region_rw(f->dev, region, off, buf, n, write);
}

static void
test_invalid_profiles_refused(void **state)
{
    struct pci_fixture *f = *state;
    struct umdev_profile_reg r[2] = { bar0_regs[1], bar0_regs[2] };
    struct umdev_profile_region pr = { .index = 0, .regs = r, .nregs = 2 };
    struct umdev_profile p = { .type = "bad", .regions = &pr, .nregions = 1,
                               .data_path = UMDEV_PROFILE_DP_RING };

    /* Each broken in one way. */
    r[1].offset = 0x0c; /* overlaps CTRL */
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    r[1] = bar0_regs[2];
    r[1].offset = 0x100; /* outside the 256-byte region */
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    r[1] = bar0_regs[2];
    r[1].purpose = ""; /* undocumented */
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    r[1] = bar0_regs[2];
    r[1].widths = UMDEV_W(16) >> 1 << 5; /* not a width */
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    r[1] = bar0_regs[2];
    r[1].access = 0;
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    r[1] = bar0_regs[2];
    r[0] = bar0_regs[2];
    r[1] = bar0_regs[1]; /* unsorted */
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    r[0] = bar0_regs[1];
    r[1] = bar0_regs[2];
    pr.index = UMDEV_PCI_CONFIG_REGION; /* lib/pci's */
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    pr.index = 3; /* absent */
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    pr.index = 0;
    p.max_msgs_per_io = 1; /* a ring costs no message per I/O */
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EINVAL);
    p.max_msgs_per_io = 0;
    /* Nothing was kept by the failures: every access still allowed. */
    assert_null(umdev_dev_profile(f->dev));
    assert_int_equal(rw(f, 0, 0x41, 2, true), 0);
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), 0);
    assert_int_equal(umdev_dev_set_profile(f->dev, &p), -EEXIST);
}

static void
test_enforcement(void **state)
{
    struct pci_fixture *f = *state;
    struct umdev_profile_counters c;
    unsigned int calls;

    assert_int_equal(umdev_dev_set_profile(f->dev, &profile), 0);
    assert_string_equal(umdev_dev_profile(f->dev)->type, "unit-test");
    /* Allowed. */
    assert_int_equal(rw(f, 0, 0x00, 4, false), 0);
    assert_int_equal(rw(f, 0, 0x08, 8, true), 0);
    assert_int_equal(rw(f, 0, 0x0c, 4, false), 0);
    assert_int_equal(rw(f, 0, 0x10, 4, true), 0);
    assert_int_equal(rw(f, 0, 0x2f, 1, false), 0);
    calls = f->device_calls;
    assert_int_equal(calls, 5);
    /* Refused, and the device never sees them. */
    assert_int_equal(rw(f, 0, 0x00, 4, true), -EACCES);   /* read-only */
    assert_int_equal(rw(f, 0, 0x10, 4, false), -EACCES);  /* write-only */
    assert_int_equal(rw(f, 0, 0x00, 2, false), -EACCES);  /* width */
    assert_int_equal(rw(f, 0, 0x0a, 4, false), -EACCES);  /* unaligned */
    assert_int_equal(rw(f, 0, 0x0c, 8, false), -EACCES);  /* crosses out */
    assert_int_equal(rw(f, 0, 0x04, 4, false), -EACCES);  /* a hole */
    assert_int_equal(rw(f, 0, 0x30, 1, false), -EACCES);  /* past all */
    assert_int_equal(rw(f, 4, 0x00, 4, false), -EACCES);  /* undeclared BAR */
    assert_int_equal(f->device_calls, calls);
    assert_int_equal(umdev_dev_profile_refused(f->dev), 8);
    /* Mappable memory is not register space: any access. */
    assert_int_equal(rw(f, 2, 4096 + 3, 2, true), 0);
    assert_int_equal(rw(f, 2, 8192 - 8, 8, false), 0);
    /* Trapped page of BAR2: declared with every width. */
    assert_int_equal(rw(f, 2, 16, 8, true), 0);
    /* Config space is lib/pci's business (its masks drop bad writes). */
    assert_int_equal(rw(f, UMDEV_PCI_CONFIG_REGION, PCI_DEVICE_ID, 2, true), 0);
    assert_int_equal(umdev_dev_profile_refused(f->dev), 8);
    /* Counters per register. */
    assert_int_equal(umdev_dev_profile_counters(f->dev, 0, 1, &c), 0);
    assert_int_equal(c.reads, 1);
    assert_int_equal(c.writes, 1);
    assert_int_equal(umdev_dev_profile_counters(f->dev, 0, 2, &c), 0);
    assert_int_equal(c.reads, 0);
    assert_int_equal(c.writes, 1);
    assert_int_equal(umdev_dev_profile_counters(f->dev, 1, 0, &c), 0);
    assert_int_equal(c.writes, 1);
    assert_int_equal(umdev_dev_profile_counters(f->dev, 0, 4, &c), -EINVAL);
    assert_int_equal(umdev_dev_profile_counters(f->dev, 2, 0, &c), -EINVAL);
}

/* BULK registers: any length and alignment inside; a copy may run on into
 * the mmappable part, never into a register that is not memory-like. */
static void
test_bulk_memory_runs(void **state)
{
    static const struct umdev_profile_reg bulk_regs[] = {
        { .name = "PAGE0", .offset = 0, .size = 4096,
          .widths = UMDEV_W_ANY | UMDEV_W_BULK, .access = UMDEV_PROFILE_RW,
          .purpose = "memory-like trapped page" },
    };
    static const struct umdev_profile_reg ro_bulk[] = {
        { .name = "ROM", .offset = 0x20, .size = 16,
          .widths = UMDEV_W_BULK, .access = UMDEV_PROFILE_R,
          .purpose = "read-only memory-like block" },
    };
    static const struct umdev_profile_region bulk_regions[] = {
        { .index = 0, .regs = ro_bulk, .nregs = 1 },
        { .index = 2, .regs = bulk_regs, .nregs = 1 },
    };
    static const struct umdev_profile bulk = {
        .type = "bulk-test",
        .regions = bulk_regions,
        .nregions = 2,
        .data_path = UMDEV_PROFILE_DP_RING,
    };
    struct pci_fixture *f = *state;
    struct umdev_profile_counters c;
    static uint8_t big[8192];

    assert_int_equal(umdev_dev_set_profile(f->dev, &bulk), 0);
    assert_int_equal(rw(f, 2, 1, 3, true), 0);    /* odd, unaligned */
    assert_int_equal(umdev_dev_region_rw(f->dev, 2, 0, big, 4096, false), 0);
    /* Across the trapped page into the mapped one, and all of BAR2. */
    assert_int_equal(umdev_dev_region_rw(f->dev, 2, 4000, big, 200, true),
                     0);
    assert_int_equal(umdev_dev_region_rw(f->dev, 2, 0, big, 8192, false), 0);
    assert_int_equal(umdev_dev_profile_refused(f->dev), 0);
    assert_int_equal(umdev_dev_profile_counters(f->dev, 1, 0, &c), 0);
    assert_int_equal(c.reads, 2);
    assert_int_equal(c.writes, 2);
    /* BAR0: inside ROM reads only, and not one byte past it. */
    assert_int_equal(rw(f, 0, 0x21, 5, false), 0);
    assert_int_equal(rw(f, 0, 0x21, 5, true), -EACCES);
    assert_int_equal(rw(f, 0, 0x2c, 8, false), -EACCES);
    assert_int_equal(rw(f, 0, 0x1f, 2, false), -EACCES);
    assert_int_equal(umdev_dev_profile_refused(f->dev), 3);
}

static void
test_json(void **state)
{
    struct pci_fixture *f = *state;
    struct json_object *o, *regs_json, *r0, *trapped, *reg, *v, *cfg;
    char *text;

    assert_null(audit_profile_json(f->dev, f->pci));
    assert_int_equal(umdev_dev_set_profile(f->dev, &profile), 0);
    assert_int_equal(rw(f, 0, 0x10, 4, true), 0);
    assert_int_equal(rw(f, 0, 0x10, 4, false), -EACCES);
    text = audit_profile_json(f->dev, f->pci);
    assert_non_null(text);
    o = json_tokener_parse(text);
    assert_non_null(o);
    assert_string_equal(json_object_get_string(json_object_object_get(o, "type")),
                        "unit-test");
    assert_int_equal(json_object_get_int(json_object_object_get(o, "refused")),
                     1);
    regs_json = json_object_object_get(o, "regions");
    assert_int_equal(json_object_array_length(regs_json), 3); /* 0, 2, 4 */
    r0 = json_object_array_get_idx(regs_json, 0);
    trapped = json_object_object_get(r0, "trapped");
    assert_int_equal(json_object_array_length(trapped), 4);
    reg = json_object_array_get_idx(trapped, 2);
    assert_string_equal(json_object_get_string(json_object_object_get(reg, "name")),
                        "DOORBELL");
    assert_true(json_object_get_boolean(json_object_object_get(reg, "data_path")));
    assert_string_equal(json_object_get_string(json_object_object_get(reg, "access")),
                        "w");
    assert_int_equal(json_object_get_int(json_object_object_get(reg, "writes")), 1);
    v = json_object_object_get(json_object_array_get_idx(regs_json, 1), "mmap");
    assert_int_equal(json_object_array_length(v), 1);
    assert_int_equal(json_object_get_int(json_object_object_get(
                         json_object_array_get_idx(v, 0), "offset")),
                     4096);
    /* Config: the Command register's writable bits are listed. */
    cfg = json_object_object_get(o, "config");
    assert_non_null(cfg);
    v = json_object_array_get_idx(json_object_object_get(cfg, "writable"), 0);
    assert_string_equal(json_object_get_string(json_object_object_get(v, "offset")),
                        "0x4");
    json_object_put(o);
    free(text);
}

/* The check looks registers up in a table when they end within 64 KiB of
 * the region's start, and searches otherwise: both must give the same
 * verdict on every access. Two devices with the same low registers, the
 * second also with one register past 64 KiB, are asked the same. */
static int
setup_wide(void **state)
{
    static struct pci_fixture f[2];
    const struct umdev_pci_id id = { .vendor_id = 0x1234,
                                     .device_id = 0x1,
                                     .class_code = 0x088000 };
    struct umdev_region_desc bar0;
    int i;

    for (i = 0; i < 2; i++) {
        pci_fixture_init(&f[i], i ? "searched" : "tabulated", &id);
        bar0 = pci_fixture_trapped(&f[i], 128 * 1024);
        assert_int_equal(umdev_dev_region_add(f[i].dev, 0, &bar0), 0);
    }
    *state = f;
    return 0;
}

static int
teardown_wide(void **state)
{
    struct pci_fixture *f = *state;
    void *second = &f[1];

    pci_fixture_teardown(&second);
    return pci_fixture_teardown(state);
}

static void
test_lookup_matches_search(void **state)
{
    struct pci_fixture *f = *state;
    struct umdev_profile_reg wide_regs[5];
    const struct umdev_profile_region low = { .index = 0,
                                              .regs = bar0_regs,
                                              .nregs = 4 };
    const struct umdev_profile_region wide = { .index = 0,
                                               .regs = wide_regs,
                                               .nregs = 5 };
    struct umdev_profile p = profile;
    struct umdev_profile_counters c;
    uint64_t off;
    size_t w;
    int write, refused = 0;

    memcpy(wide_regs, bar0_regs, sizeof(bar0_regs));
    wide_regs[4] =
        (struct umdev_profile_reg){ .name = "FAR",
                                    .offset = 0x18000,
                                    .size = 8,
                                    .widths = UMDEV_W(4) | UMDEV_W(8),
                                    .access = UMDEV_PROFILE_RW,
                                    .purpose =
                                        "a register past the table's reach" };
    p.regions = &low;
    p.nregions = 1;
    assert_int_equal(umdev_dev_set_profile(f[0].dev, &p), 0);
    p.regions = &wide;
    assert_int_equal(umdev_dev_set_profile(f[1].dev, &p), 0);
    for (off = 0; off < 0x40; off++) {
        for (w = 1; w <= 8; w *= 2) {
            for (write = 0; write < 2; write++) {
                int a = rw(&f[0], 0, off, w, write);
                int b = rw(&f[1], 0, off, w, write);

                assert_int_equal(a == -EACCES, b == -EACCES);
                refused += a == -EACCES;
            }
        }
    }
    /* Most of that space is holes, widths or directions refused; some is
     * not (the loop is no tautology of two refusals). */
    assert_true(refused > 0 && refused < 0x40 * 4 * 2);
    assert_int_equal(umdev_dev_profile_refused(f[0].dev), refused);
    assert_int_equal(umdev_dev_profile_refused(f[1].dev), refused);
    /* Beyond the low registers: a hole in both, the far register in the
     * second only; counted on the register found. */
    assert_int_equal(rw(&f[0], 0, 0x18000, 8, false), -EACCES);
    assert_int_not_equal(rw(&f[1], 0, 0x18000, 8, false), -EACCES);
    assert_int_not_equal(rw(&f[1], 0, 0x18004, 4, true), -EACCES);
    assert_int_equal(rw(&f[1], 0, 0x18004, 8, false), -EACCES);
    assert_int_equal(rw(&f[1], 0, 0x17ffc, 4, false), -EACCES);
    assert_int_equal(umdev_dev_profile_counters(f[1].dev, 0, 4, &c), 0);
    assert_int_equal(c.reads, 1);
    assert_int_equal(c.writes, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        PCI_FIXTURE_TEST(test_invalid_profiles_refused, setup),
        PCI_FIXTURE_TEST(test_enforcement, setup),
        PCI_FIXTURE_TEST(test_bulk_memory_runs, setup),
        PCI_FIXTURE_TEST(test_json, setup),
        cmocka_unit_test_setup_teardown(test_lookup_matches_search, setup_wide,
                                        teardown_wide),
    };

    return cmocka_run_group_tests_name("unit.profile", tests, NULL, NULL);
}
