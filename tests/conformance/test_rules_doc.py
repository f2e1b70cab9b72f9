#!/usr/bin/env python3
"""README.md's table of rules is the kit's own, and every rule is used.

The block of tests/conformance/README.md between the markers
"<!-- rules: umdev-conform --list-rules -->" and "<!-- /rules -->" must
equal what `umdev-conform --list-rules` prints; `--list-rules --json`
must list the same rules; and each rule's R_ name must appear in a
check's source besides rules.c and conform.h (no rule without a check).

Usage: test_rules_doc.py --conform P --source-dir tests/conformance
"""
import argparse
import json
import os
import re
import subprocess
import sys

BEGIN = "<!-- rules: umdev-conform --list-rules -->"
END = "<!-- /rules -->"


def fail(msg):
    print("rules_doc: FAIL: " + msg, flush=True)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conform", required=True)
    ap.add_argument("--source-dir", required=True)
    args = ap.parse_args()

    text = subprocess.run([args.conform, "--list-rules"], capture_output=True,
                          text=True, timeout=30, check=True).stdout
    rules = json.loads(subprocess.run(
        [args.conform, "--list-rules", "--json"], capture_output=True,
        text=True, timeout=30, check=True).stdout)
    with open(os.path.join(args.source_dir, "README.md")) as f:
        readme = f.read()
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        fail("README.md needs one %s ... %s block" % (BEGIN, END))
    block = readme.split(BEGIN)[1].split(END)[0].strip("\n") + "\n"
    if block != text:
        have = set(block.splitlines())
        want = set(text.splitlines())
        fail("README.md's rules table differs from --list-rules:\n"
             "only in README:\n  %s\nonly in the kit:\n  %s" % (
                 "\n  ".join(sorted(have - want)),
                 "\n  ".join(sorted(want - have))))
    rows = [l for l in text.splitlines()[2:]]
    if len(rows) != len(rules):
        fail("%d table rows, %d rules in --json" % (len(rows), len(rules)))
    for row, r in zip(rows, rules):
        if not row.startswith("| `%s` | %s |" % (r["id"], r["level"])):
            fail("row %r is not rule %s (%s)" % (row, r["id"], r["level"]))
        if r["level"] not in ("spec", "policy") or not r["basis"]:
            fail("rule %s: level %s, basis %r" % (
                r["id"], r["level"], r["basis"]))

    with open(os.path.join(args.source_dir, "conform.h")) as f:
        names = re.findall(r"^\s+(R_[A-Z0-9_]+),", f.read(), re.M)
    if len(names) != len(rules):
        fail("conform.h names %d rules, the kit lists %d" % (
            len(names), len(rules)))
    used = ""
    for fn in sorted(os.listdir(args.source_dir)):
        if fn.endswith(".c") and fn != "rules.c":
            with open(os.path.join(args.source_dir, fn)) as f:
                used += f.read()
    unused = [n for n in names if not re.search(r"\b%s\b" % n, used)]
    if unused:
        fail("rules no check judges by: %s" % ", ".join(unused))
    print("rules_doc: %d rules (%d spec, %d policy), README.md agrees, each "
          "used by a check" % (len(rules),
                               sum(r["level"] == "spec" for r in rules),
                               sum(r["level"] == "policy" for r in rules)),
          flush=True)


if __name__ == "__main__":
    main()
