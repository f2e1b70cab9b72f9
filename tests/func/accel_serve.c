/* Accel subdevices served for the functional tests: see accel_serve.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "accel_serve.h"

static void
destroy_dev(void *arg)
{
    accel_dev_destroy(arg);
}

void
accel_serve(struct kit_serve *s, const char *tag, struct accel_engine *e,
            const unsigned int *queues, size_t n,
            const struct umdev_logger *log, struct accel_dev **devs)
{
    size_t i;

    assert_int_equal(kit_serve_init(s, tag), 0);
    for (i = 0; i < n; i++) {
        struct accel_dev_config dc = {
            .nr_queues = queues[i],
            .log = log,
        };
        char name[32];

        snprintf(name, sizeof(name), "accel%zu", i);
        dc.name = name;
        assert_int_equal(accel_dev_create(e, &dc, &devs[i]), 0);
        assert_int_equal(kit_serve_add(s, name, accel_dev_dev(devs[i]),
                                       destroy_dev, devs[i]),
                         0);
    }
    assert_int_equal(kit_serve_start(s), 0);
}
