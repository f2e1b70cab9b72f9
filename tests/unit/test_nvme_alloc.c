/*
 * Fault injection for the nvme controller's construction (STYLE.md
 * "Tests"): fail the Nth allocation, for every N, while building a
 * backend and a controller over it (null and file backends). Each run
 * fails cleanly (an error, no allocation or descriptor left, the
 * backend taken even on failure) or succeeds and then works: its
 * registers answer and it tears down clean.
 *
 * tests/fault/inject.c wraps the allocator for the whole link
 * (tests/unit/CMakeLists_nvme.cmake); only the armed thread's calls
 * count, so the poller thread is unaffected.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inject.h"
#include "kit_cmocka.h"
#include "nvme.h"
#include "nvme_spec.h"
#include "umdev/dev_testing.h"

struct run {
    bool file;
    char path[64];
    struct nvme_ctrl *c;
};

static int
build(struct run *r)
{
    struct nvme_ctrl_config cc = {
        .name = "nvme",
        .type = "nvme-4q",
        .nr_io_queues = 4,
        .size = 1 << 20,
    };
    char err[200];
    int rc;

    rc = r->file ? nvme_be_open_file(r->path, 1 << 20, &cc.be, err, sizeof(err))
                 : nvme_be_open_null(&cc.be);
    if (rc < 0)
        return rc;
    return nvme_ctrl_create(&cc, &r->c);
}

static void
check(struct run *r, int rc, long n, int fds_before)
{
    uint32_t v = 0;

    if (rc < 0) {
        assert_true(rc == -ENOMEM);
        assert_null(r->c);
    } else {
        assert_non_null(r->c);
        /* It works: CAP answers with MQES. */
        assert_int_equal(umdev_dev_region_rw(nvme_ctrl_dev(r->c),
                                             UMDEV_PCI_BAR0_REGION,
                                             NVME_REG_CAP, &v, 4, false),
                         0);
        assert_int_equal(v & 0xffff, NVME_MQES);
        nvme_ctrl_destroy(r->c);
        r->c = NULL;
    }
    if (fault_live() != 0 || kit_open_fds() != fds_before)
        fail_msg("N=%ld: %ld allocations and %d descriptors outstanding", n,
                 fault_live(), kit_open_fds() - fds_before);
}

static void
fail_each(struct run *r)
{
    int fds_before = kit_open_fds();
    long n;

    for (n = 1;; n++) {
        int rc;

        fault_arm(n);
        fault_arm_thread(true);
        rc = build(r);
        fault_arm_thread(false);
        if (rc < 0)
            assert_int_not_equal(fault_injected(), 0);
        check(r, rc, n, fds_before);
        if (fault_injected() == 0)
            break;
    }
    print_message("%s backend: %ld injection points\n",
                  r->file ? "file" : "null", n - 1);
    assert_true(n > 5);
}

static void
test_null(void **state)
{
    struct run r = { .file = false };

    (void)state;
    fail_each(&r);
}

static void
test_file(void **state)
{
    struct run r = { .file = true };
    int fd;

    (void)state;
    snprintf(r.path, sizeof(r.path), "/tmp/umdev-nvme-alloc-XXXXXX");
    fd = mkstemp(r.path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    fail_each(&r);
    unlink(r.path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null),
        cmocka_unit_test(test_file),
    };

    return cmocka_run_group_tests_name("unit.nvme_alloc", tests, NULL, NULL);
}
