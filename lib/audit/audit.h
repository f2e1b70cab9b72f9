/*
 * lib/audit: what a built device exposes, put in words a person or a
 * program can check: the mediation profile's JSON form, a device's
 * introspection document (regions, IRQs, counters, profile), and the
 * criteria of docs/CRITERIA.md. It sits above lib/dev and lib/pci and
 * reads them through their public getters only.
 *
 * Not part of libumdev's public API: umdevd, umdevctl's daemon and the
 * tests link it (the umdev_audit static library). Not thread-safe beyond
 * what the getters it calls are: call it from the device's serving thread.
 */
#ifndef UMDEV_LIB_AUDIT_H
#define UMDEV_LIB_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "umdev/dev.h"
#include "umdev/pci.h"

struct json_object;

/* Criterion 3's bound on trapped registers per type. */
#define AUDIT_MAX_TRAPPED_REGS 64

/** Conventional names of VFIO PCI region and IRQ indices ("BAR0", "MSIX");
 * "?" for an index with no name. */
const char *audit_region_name(uint32_t index);
const char *audit_irq_name(uint32_t index);

/**
 * audit_profile_object() - the profile of @dev as JSON: type, data path,
 * each region (size, mmappable areas, trapped registers with their
 * counters), the IRQ indices, and with @pci (may be NULL) the config
 * space's writable and write-1-to-clear bits and capability list. The
 * format is documented in docs/CRITERIA.md.
 * Return: a new object (the caller puts it), or NULL when @dev has no
 * profile.
 */
struct json_object *audit_profile_object(struct umdev_dev *dev,
                                         struct umdev_pci *pci);

/** The same as a malloc'd string (free() it), or NULL. */
char *audit_profile_json(struct umdev_dev *dev, struct umdev_pci *pci);

/**
 * audit_device_object() - what `umdevctl info` shows of a served device:
 * the attached client's pid, regions (size, mmap, trapped), IRQ indices
 * with their vector counts, the traffic counters, and the profile (as
 * audit_profile_object()). Return: a new object, never NULL.
 */
struct json_object *audit_device_object(struct umdev_dev *dev,
                                        struct umdev_pci *pci);

/**
 * audit_run() - audit @dev against docs/CRITERIA.md.
 * @pci: its lib/pci config space, or NULL if it has none (criterion 1
 *   then fails).
 * @conformance_json: the kit's `--json` output for an instance of the same
 *   type, or NULL (criteria that need it are reported "not run").
 * @json_out: a malloc'd JSON document (free() it): {"type", "verdict":
 *   "pass"|"fail"|"incomplete", "criteria": [{"id", "name", "verdict":
 *   "pass"|"fail"|"not run", "evidence"}], "profile": {...}}.
 * @all_pass: true when every criterion passed (none failed, none not run).
 * Return: 0, -EINVAL (unparsable @conformance_json), -ENOMEM.
 */
int audit_run(struct umdev_dev *dev, struct umdev_pci *pci,
              const char *conformance_json, char **json_out, bool *all_pass);

#endif /* UMDEV_LIB_AUDIT_H */
