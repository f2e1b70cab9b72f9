/*
 * Audits: check a built device against the criteria of docs/CRITERIA.md.
 * The checks that need only the device object run in place; the ones that
 * need traffic take the conformance kit's result (tests/conformance,
 * `umdev-conform --json`). `umdevctl audit` is the usual way in; tests
 * call this directly on devices they build.
 */
#ifndef UMDEV_AUDIT_H
#define UMDEV_AUDIT_H

#include <stdbool.h>

#include "umdev/dev.h"
#include "umdev/pci.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

/* Criterion 3's bound on trapped registers per type. */
#define UMDEV_AUDIT_MAX_TRAPPED_REGS 64

/**
 * umdev_audit() - audit @dev.
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
int umdev_audit(struct umdev_dev *dev, struct umdev_pci *pci,
                const char *conformance_json, char **json_out,
                bool *all_pass);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* UMDEV_AUDIT_H */
