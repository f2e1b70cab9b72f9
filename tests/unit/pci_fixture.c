/* The lib/pci and profile unit tests' device (pci_fixture.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "pci_fixture.h"

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    struct pci_fixture *f = opaque;

    f->device_calls++;
    /* Regions may be larger than the array (BAR sizing tests); accesses
     * past it are refused, not served from elsewhere. */
    if (off > sizeof(f->bar0) || count > sizeof(f->bar0) - off)
        return -EINVAL;
    if (is_write)
        memcpy(f->bar0 + off, buf, count);
    else
        memcpy(buf, f->bar0 + off, count);
    return (ssize_t)count;
}

void
pci_fixture_init(struct pci_fixture *f, const char *name,
                 const struct umdev_pci_id *id)
{
    struct umdev_dev_info info = { .name = name, .pci = true };

    memset(f, 0, sizeof(*f));
    assert_int_equal(umdev_dev_create(&info, &f->dev), 0);
    assert_int_equal(umdev_pci_create(f->dev, id, &f->pci), 0);
}

int
pci_fixture_teardown(void **state)
{
    struct pci_fixture *f = *state;

    umdev_pci_destroy(f->pci);
    umdev_dev_destroy(f->dev);
    return 0;
}

struct umdev_region_desc
pci_fixture_trapped(struct pci_fixture *f, uint64_t size)
{
    struct umdev_region_desc d = {
        .size = size,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar0_access,
        .opaque = f,
    };

    return d;
}
