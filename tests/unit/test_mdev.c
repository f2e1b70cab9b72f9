/* Unit tests for lib/mdev: parents, pools, types, instances and the
 * derived available_instances. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "mdev.h"

#define U1 "0f1e2d3c-4b5a-4978-8a9b-0c1d2e3f4a5b"
#define U2 "11111111-2222-4333-8444-555555555555"
#define U3 "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
#define U4 "99999999-8888-4777-8666-555555555555"

static const struct mdev_pool_desc accel_pools[] = {
    { "queues", 8 },
};
static const struct mdev_type_desc accel_types[] = {
    { "1wq", "one work queue", "vfio-pci", { { "queues", 1 } }, 1 },
    { "2wq", "two work queues", "vfio-pci", { { "queues", 2 } }, 1 },
    { "4wq", "four work queues", "vfio-pci", { { "queues", 4 } }, 1 },
};
static const struct mdev_parent_desc accel = {
    "accel", accel_pools, 1, accel_types, 3,
};
static const struct mdev_pool_desc serial_pools[] = {
    { "ports", 4 },
    { "irqs", 3 },
};
static const struct mdev_type_desc serial_types[] = {
    { "2port", "two 16550A ports", "vfio-pci",
      { { "ports", 2 }, { "irqs", 1 } }, 2 },
};
static const struct mdev_parent_desc serial = {
    "serial", serial_pools, 2, serial_types, 1,
};

static int
setup(void **state)
{
    struct mdev *m;

    assert_int_equal(mdev_create(&m), 0);
    assert_int_equal(mdev_parent_add(m, &accel), 0);
    assert_int_equal(mdev_parent_add(m, &serial), 0);
    *state = m;
    return 0;
}

static int
teardown(void **state)
{
    mdev_destroy(*state);
    return 0;
}

static uint32_t
avail(struct mdev *m, const char *type)
{
    struct mdev_type_info info;

    assert_int_equal(mdev_type_find(m, type, &info), 0);
    return info.available_instances;
}

static void
test_types_listed(void **state)
{
    struct mdev *m = *state;
    struct mdev_type_info info;

    assert_int_equal(mdev_type_count(m), 4);
    assert_int_equal(mdev_type_get(m, 0, &info), 0);
    assert_string_equal(info.name, "accel-1wq");
    assert_string_equal(info.parent, "accel");
    assert_string_equal(info.device_api, "vfio-pci");
    assert_int_equal(info.available_instances, 8);
    assert_int_equal(mdev_type_get(m, 3, &info), 0);
    assert_string_equal(info.name, "serial-2port");
    assert_string_equal(info.description, "two 16550A ports");
    assert_int_equal(info.available_instances, 2);
    assert_int_equal(mdev_type_get(m, 4, &info), -ENOENT);
    assert_int_equal(mdev_type_find(m, "accel-3wq", &info), -ENOENT);
}

static void
test_available_follows_every_type(void **state)
{
    struct mdev *m = *state;
    uint32_t free_units, cap;

    assert_int_equal(mdev_instance_add(m, U1, "accel-4wq"), 0);
    assert_int_equal(avail(m, "accel-1wq"), 4);
    assert_int_equal(avail(m, "accel-2wq"), 2);
    assert_int_equal(avail(m, "accel-4wq"), 1);
    assert_int_equal(mdev_instance_add(m, U2, "accel-2wq"), 0);
    assert_int_equal(avail(m, "accel-1wq"), 2);
    assert_int_equal(avail(m, "accel-4wq"), 0);
    /* The other parent is unaffected. */
    assert_int_equal(avail(m, "serial-2port"), 2);
    assert_int_equal(mdev_instance_add(m, U3, "accel-4wq"), -ENOSPC);
    /* Access-path users hold queues too. */
    assert_int_equal(mdev_pool_claim(m, "accel", "queues", 1), 0);
    assert_int_equal(avail(m, "accel-1wq"), 1);
    assert_int_equal(mdev_pool_get(m, "accel", "queues", &free_units,
                                         &cap),
                     0);
    assert_int_equal(free_units, 1);
    assert_int_equal(cap, 8);
    assert_int_equal(mdev_pool_claim(m, "accel", "queues", 2),
                     -ENOSPC);
    assert_int_equal(mdev_pool_release(m, "accel", "queues", 1), 0);
    assert_int_equal(mdev_pool_release(m, "accel", "queues", 99),
                     -EINVAL);
    /* Stopping returns resources to every type. */
    assert_int_equal(mdev_instance_remove(m, U1), 0);
    assert_int_equal(avail(m, "accel-4wq"), 1);
    assert_int_equal(avail(m, "accel-1wq"), 6);
    assert_int_equal(mdev_instance_remove(m, U2), 0);
    assert_int_equal(avail(m, "accel-1wq"), 8);
}

static void
test_multi_pool_cost_all_or_nothing(void **state)
{
    struct mdev *m = *state;
    uint32_t ports, irqs;

    assert_int_equal(mdev_instance_add(m, U1, "serial-2port"), 0);
    /* irqs (3) would allow 2 more, ports (4) only 1 more. */
    assert_int_equal(avail(m, "serial-2port"), 1);
    assert_int_equal(mdev_instance_add(m, U2, "serial-2port"), 0);
    assert_int_equal(mdev_instance_add(m, U3, "serial-2port"),
                     -ENOSPC);
    /* The refused create claimed nothing. */
    mdev_pool_get(m, "serial", "ports", &ports, NULL);
    mdev_pool_get(m, "serial", "irqs", &irqs, NULL);
    assert_int_equal(ports, 0);
    assert_int_equal(irqs, 1);
}

static void
test_uuid_rules(void **state)
{
    struct mdev *m = *state;
    char out[MDEV_UUID_STR_LEN + 1], gen[MDEV_UUID_STR_LEN + 1];

    assert_int_equal(mdev_instance_add(m, U3, "accel-1wq"), 0);
    /* The same UUID in another case is the same UUID. */
    assert_int_equal(mdev_instance_add(
                         m, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
                         "accel-1wq"),
                     -EEXIST);
    assert_string_equal(mdev_instance_type(m, U3), "accel-1wq");
    assert_int_equal(mdev_instance_add(m, "not-a-uuid", "accel-1wq"),
                     -EINVAL);
    assert_int_equal(mdev_instance_add(m, U4, "nosuch-type"), -ENOENT);
    assert_int_equal(mdev_instance_count(m), 1);
    assert_int_equal(mdev_instance_remove(m, U4), -ENOENT);
    assert_int_equal(mdev_uuid_parse(U3, out), 0);
    assert_string_equal(out, "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
    assert_int_equal(mdev_uuid_parse(U3 "0", out), -EINVAL);
    mdev_uuid_generate(gen);
    assert_int_equal(mdev_uuid_parse(gen, out), 0);
    assert_string_equal(gen, out);
    assert_int_equal(gen[14], '4');
}

static void
test_bad_parents_refused(void **state)
{
    struct mdev *m = *state;
    static const struct mdev_type_desc bad_cost[] = {
        { "x", "", "vfio-pci", { { "nopool", 1 } }, 1 },
    };
    static const struct mdev_type_desc zero_cost[] = {
        { "x", "", "vfio-pci", { { "queues", 0 } }, 1 },
    };
    struct mdev_parent_desc d = { "accel", accel_pools, 1,
                                        accel_types, 3 };

    assert_int_equal(mdev_parent_add(m, &d), -EEXIST);
    d.name = "Bad-Name";
    assert_int_equal(mdev_parent_add(m, &d), -EINVAL);
    d.name = "other";
    d.types = bad_cost;
    d.ntypes = 1;
    assert_int_equal(mdev_parent_add(m, &d), -EINVAL);
    d.types = zero_cost;
    assert_int_equal(mdev_parent_add(m, &d), -EINVAL);
    assert_int_equal(mdev_type_count(m), 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_types_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_available_follows_every_type,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_pool_cost_all_or_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuid_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_parents_refused, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
