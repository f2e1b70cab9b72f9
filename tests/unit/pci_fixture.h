/*
 * The device under test of the lib/pci and profile unit tests (test_pci.c,
 * test_profile.c): a umdev_dev with lib/pci config space whose trapped
 * BARs read and write one byte array and count the callbacks that reach
 * it, so a test sees both what a guest reads and whether the device was
 * asked at all. Helpers fail the running cmocka test on any error.
 */
#ifndef UMDEV_UNIT_PCI_FIXTURE_H
#define UMDEV_UNIT_PCI_FIXTURE_H

#include <stdint.h>

#include "umdev/dev.h"
#include "umdev/pci.h"

struct pci_fixture {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    uint8_t bar0[4096];        /* what every trapped region reads and writes */
    unsigned int device_calls; /* accesses that reached the callback */
};

/** Zero @f and create its device (@name) and config space (@id). */
void pci_fixture_init(struct pci_fixture *f, const char *name,
                      const struct umdev_pci_id *id);

/** A cmocka teardown: *@state is a struct pci_fixture. */
int pci_fixture_teardown(void **state);
/* Test @f on the fixture @setup makes (a function calling
 * pci_fixture_init() with the test program's identity). */
#define PCI_FIXTURE_TEST(f, setup)                                             \
    cmocka_unit_test_setup_teardown(f, setup, pci_fixture_teardown)

/** A readable and writable trapped region of @size bytes on f->bar0
 * (accesses past its 4096 bytes fail with -EINVAL). */
struct umdev_region_desc pci_fixture_trapped(struct pci_fixture *f,
                                             uint64_t size);

#endif /* UMDEV_UNIT_PCI_FIXTURE_H */
