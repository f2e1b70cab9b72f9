/* Unit tests of audit_run(): a well-built device passes what can be
 * checked in place, and a deliberately bad one fails each criterion it
 * breaks with a reason that names the defect. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "audit.h"
#include "umdev/pci.h"
#include "umdev/profile.h"

static uint8_t regs[4096];

static ssize_t
access_regs(void *opaque, uint64_t off, void *buf, size_t count,
            bool is_write)
{
    (void)opaque;
    if (is_write)
        memcpy(regs + off, buf, count);
    else
        memcpy(buf, regs + off, count);
    return (ssize_t)count;
}

static const struct umdev_region_desc bar_desc = {
    .size = 4096,
    .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
    .access = access_regs,
};

static const struct umdev_profile_reg good_regs[] = {
    { .name = "CTRL", .offset = 0, .size = 4, .widths = UMDEV_W(4),
      .access = UMDEV_PROFILE_RW, .purpose = "enable and reset" },
    { .name = "DOORBELL", .offset = 0x100, .size = 4, .widths = UMDEV_W(4),
      .access = UMDEV_PROFILE_W, .data_path = true,
      .purpose = "wakes a sleeping engine" },
};
static const struct umdev_profile_region good_region = {
    .index = 0, .regs = good_regs, .nregs = 2,
};
static const struct umdev_profile good_profile = {
    .type = "good-1",
    .regions = &good_region,
    .nregions = 1,
    .data_path = UMDEV_PROFILE_DP_RING,
    .data_path_unit = "descriptor",
};

static struct json_object *
criterion(struct json_object *doc, int id)
{
    struct json_object *arr = json_object_object_get(doc, "criteria");
    size_t i;

    for (i = 0; i < json_object_array_length(arr); i++) {
        struct json_object *c = json_object_array_get_idx(arr, i);

        if (json_object_get_int(json_object_object_get(c, "id")) == id)
            return c;
    }
    fail_msg("criterion %d missing", id);
    return NULL;
}

static void
expect(struct json_object *doc, int id, const char *verdict,
       const char *evidence_part)
{
    struct json_object *c = criterion(doc, id);
    const char *v = json_object_get_string(json_object_object_get(c, "verdict"));
    const char *e =
        json_object_get_string(json_object_object_get(c, "evidence"));

    if (strcmp(v, verdict) != 0 || strstr(e, evidence_part) == NULL)
        fail_msg("criterion %d: verdict '%s' evidence '%s'; wanted '%s' "
                 "with '%s'",
                 id, v, e, verdict, evidence_part);
}

/* What an audit must report for criterion @id. */
struct want {
    int id;
    const char *verdict;
    const char *evidence_part;
};

#define N_WANT(w) (sizeof(w) / sizeof((w)[0]))

/* Each of @n criteria as @w says, then the document's verdict @overall. */
static void
expect_all(struct json_object *doc, const struct want *w, size_t n,
           const char *overall)
{
    size_t i;

    for (i = 0; i < n; i++)
        expect(doc, w[i].id, w[i].verdict, w[i].evidence_part);
    assert_string_equal(
        json_object_get_string(json_object_object_get(doc, "verdict")),
        overall);
}

static struct json_object *
audit(struct umdev_dev *dev, struct umdev_pci *pci, const char *kit,
      bool *all)
{
    struct json_object *doc;
    char *text;

    assert_int_equal(audit_run(dev, pci, kit, &text, all), 0);
    doc = json_tokener_parse(text);
    assert_non_null(doc);
    free(text);
    return doc;
}

static const char kit_all_pass[] =
    "{\"checks\":[{\"name\":\"protocol\",\"pass\":true,\"evidence\":\"p\"},"
    "{\"name\":\"config\",\"pass\":true,\"evidence\":\"c\"},"
    "{\"name\":\"reset\",\"pass\":true,\"evidence\":\"r\"},"
    "{\"name\":\"datapath\",\"pass\":true,\"evidence\":\"0 msgs/io\"},"
    "{\"name\":\"fuzz\",\"pass\":true,\"evidence\":\"f\"},"
    "{\"name\":\"leaks\",\"pass\":true,\"evidence\":\"l\"}]}";

static void
test_good_device(void **state)
{
    static const struct want in_place[] = {
        { 1, "pass", "MSI@0x" },
        { 2, "not run", "ring" },
        { 3, "pass", "2 trapped registers" },
        { 4, "not run", "--conformance" },
        { 5, "not run", "--conformance" },
        { 6, "not run", "--conformance" },
    };
    static const struct want with_kit[] = {
        { 2, "pass", "0 msgs/io" },
        { 5, "pass", "all 6 checks" },
    };
    struct umdev_dev_info info = { .name = "good", .pci = true };
    struct umdev_pci_id id = { .vendor_id = 0x1234, .device_id = 2,
                               .class_code = 0x088000, .interrupt_pin = 1 };
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    struct json_object *doc;
    bool all;

    (void)state;
    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    assert_int_equal(umdev_pci_create(dev, &id, &pci), 0);
    assert_int_equal(umdev_pci_bar_add(pci, 0, UMDEV_PCI_BAR_MEM32, false,
                                       4096, &bar_desc),
                     0);
    assert_true(umdev_pci_cap_add_msi(pci, 1, false, false) >= 0x40);
    assert_int_equal(umdev_dev_set_profile(dev, &good_profile), 0);

    /* In place only: what needs traffic is "not run", never a pass. */
    doc = audit(dev, pci, NULL, &all);
    assert_false(all);
    expect_all(doc, in_place, N_WANT(in_place), "incomplete");
    assert_non_null(json_object_object_get(doc, "profile"));
    json_object_put(doc);

    doc = audit(dev, pci, kit_all_pass, &all);
    assert_true(all);
    expect_all(doc, with_kit, N_WANT(with_kit), "pass");
    json_object_put(doc);
    assert_int_equal(audit_run(dev, pci, "{not json", &(char *){ NULL },
                                 &all),
                     -EINVAL);
    umdev_pci_destroy(pci);
    umdev_dev_destroy(dev);
}

/* Everything wrong at once, each reported on its own. */
static void
test_bad_device(void **state)
{
    struct umdev_dev_info info = { .name = "bad", .pci = true };
    struct umdev_region_desc cfg = {
        .size = 256,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = access_regs, /* hand-coded config space */
    };
    static struct umdev_profile_reg many[70];
    struct umdev_profile_region r = { .index = 0, .regs = many, .nregs = 70 };
    struct umdev_profile p = {
        .type = "bad-1",
        .regions = &r,
        .nregions = 1,
        .data_path = UMDEV_PROFILE_DP_PIO,
        .max_msgs_per_io = 4, /* and no reason given */
    };
    static const char kit[] =
        "[{\"name\":\"protocol\",\"pass\":true,\"evidence\":\"p\"},"
        "{\"name\":\"reset\",\"pass\":false,\"evidence\":\"CTRL reads 0x1 "
        "after reset, 0x0 at power-on\"},"
        "{\"name\":\"datapath\",\"pass\":false,\"evidence\":\"4.0 msgs per "
        "byte\"},"
        "{\"name\":\"fuzz\",\"pass\":false,\"evidence\":\"server died\"}]";
    static const struct want each_wrong[] = {
        { 1, "fail", "no lib/pci config space" },
        { 2, "fail", "without a bound and a reason" },
        { 3, "fail", "region 1 is trapped but declares no registers" },
        { 4, "fail", "server died" },
        { 5, "fail", "reset, datapath, fuzz" },
        { 6, "fail", "CTRL reads 0x1" },
    };
    struct umdev_dev *dev;
    struct json_object *doc;
    size_t i;
    bool all;

    (void)state;
    for (i = 0; i < 70; i++)
        many[i] = (struct umdev_profile_reg){ .name = "R", .offset = 8 * i,
                                              .size = 8, .widths = UMDEV_W(8),
                                              .access = UMDEV_PROFILE_RW,
                                              .purpose = "p" };
    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    assert_int_equal(umdev_dev_region_add(dev, UMDEV_PCI_CONFIG_REGION, &cfg),
                     0);
    assert_int_equal(umdev_dev_region_add(dev, 0, &bar_desc), 0);
    assert_int_equal(umdev_dev_region_add(dev, 1, &bar_desc), 0);
    assert_int_equal(umdev_dev_set_profile(dev, &p), 0);

    doc = audit(dev, NULL, kit, &all);
    assert_false(all);
    expect_all(doc, each_wrong, N_WANT(each_wrong), "fail");
    json_object_put(doc);
    umdev_dev_destroy(dev);
}

/* Over the bound of trapped registers, all regions declared. */
static void
test_too_many_registers(void **state)
{
    struct umdev_dev_info info = { .name = "big", .pci = true };
    struct umdev_pci_id id = { .vendor_id = 0x1234, .device_id = 3,
                               .class_code = 0x088000 };
    static struct umdev_profile_reg many[AUDIT_MAX_TRAPPED_REGS + 1];
    struct umdev_profile_region r = {
        .index = 0, .regs = many, .nregs = AUDIT_MAX_TRAPPED_REGS + 1,
    };
    struct umdev_profile p = { .type = "big", .regions = &r, .nregions = 1,
                               .data_path = UMDEV_PROFILE_DP_RING };
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    struct json_object *doc;
    char want[64];
    size_t i;
    bool all;

    (void)state;
    for (i = 0; i < r.nregs; i++)
        many[i] = (struct umdev_profile_reg){ .name = "R", .offset = 4 * i,
                                              .size = 4, .widths = UMDEV_W(4),
                                              .access = UMDEV_PROFILE_R,
                                              .purpose = "p" };
    assert_int_equal(umdev_dev_create(&info, &dev), 0);
    assert_int_equal(umdev_pci_create(dev, &id, &pci), 0);
    assert_int_equal(umdev_dev_region_add(dev, 0, &bar_desc), 0);
    assert_int_equal(umdev_dev_set_profile(dev, &p), 0);
    doc = audit(dev, pci, NULL, &all);
    snprintf(want, sizeof(want), "%d trapped registers",
             AUDIT_MAX_TRAPPED_REGS + 1);
    expect(doc, 3, "fail", want);
    expect(doc, 1, "pass", "capabilities: none");
    json_object_put(doc);
    umdev_pci_destroy(pci);
    umdev_dev_destroy(dev);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_device),
        cmocka_unit_test(test_bad_device),
        cmocka_unit_test(test_too_many_registers),
    };

    return cmocka_run_group_tests_name("unit.audit", tests, NULL, NULL);
}
