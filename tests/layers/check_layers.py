#!/usr/bin/env python3
"""Check that the tree's layers point one way (ARCHITECTURE.md "Layers").

Reads what the compiler and the linker know of a finished build, so
nothing here parses C:

* includes: `ninja -t deps` lists every header each object was built
  from (transitively). An object of module M built from a header that
  belongs to module N means M uses N.
* calls: `nm` on each object lists the symbols it defines and the ones it
  needs. An object of module M needing a symbol defined in module N means
  M calls N.

Each use must be allowed by the table below: a module may use itself and
the modules listed for it (which are all below it). Anything else is a
crossed layer, printed with the file that crosses it, and the check
fails. The table is a DAG, so no two modules can use each other.

Usage: check_layers.py SOURCE_DIR BUILD_DIR
"""
import os
import re
import subprocess
import sys

# Modules below a module, which it may use. Headers of include/umdev/
# belong to the module that implements them.
LIB = {
    "util": [],
    "loop": ["util"],
    "wire": ["util", "loop"],
    "conn": ["util", "loop", "wire"],
    "dev": ["util", "loop", "wire", "conn"],
    "pci": ["util", "loop", "wire", "conn", "dev"],
    "client": ["util", "loop", "wire", "conn"],
    "access": ["util", "loop"],
    "ctl": ["util"],
    "parent": ["util", "loop", "wire", "conn", "dev", "pci"],
    # lib/audit reads dev and pci through their public API only (the
    # *_pub pseudo-modules below: their public headers, no private one).
    "audit": ["util", "loop", "wire", "dev_pub", "pci_pub"],
    "mdev": ["util", "parent"],
}
PUBLIC_LIB = sorted(m for m in LIB if m not in ("audit", "mdev"))

# Parent drivers and the daemon sit above every lib module but may reach
# lib only through include/umdev/ (STYLE.md: "Devices include only
# include/umdev/"); the daemon also links the internal audit and mdev
# modules. Within the daemon, one owner per concern:
DAEMON = {
    "d_util": [],
    "d_parents": ["d_util"],
    "d_sandbox": ["d_util"],
    "d_defs": ["d_util", "d_parents"],
    "d_worker": ["d_util", "d_sandbox", "d_parents"],
    "d_callouts": ["d_util"],
    "d_supervisor": ["d_util", "d_defs", "d_worker", "d_parents",
                     "d_callouts"],
    "d_child": ["d_util"],
    "d_audit_job": ["d_util", "d_parents", "d_child"],
    "d_admission": ["d_util", "d_parents", "d_child"],
    "d_handlers": ["d_util", "d_parents", "d_defs", "d_supervisor",
                   "d_audit_job", "d_admission", "d_callouts"],
    "d_control": ["d_util", "d_handlers"],
    "d_main": ["d_util", "d_parents", "d_sandbox", "d_defs", "d_worker",
               "d_callouts", "d_supervisor", "d_child", "d_audit_job",
               "d_admission", "d_handlers", "d_control"],
}
DAEMON_FILES = {
    "umdevd.c": "d_main",
    "umdevd.h": "d_util",
    "util.c": "d_util",
    "defs.c": "d_defs",
    "defs.h": "d_defs",
    "sandbox.c": "d_sandbox",
    "sandbox.h": "d_sandbox",
    "parents.c": "d_parents",
    "parents.h": "d_parents",
    "plugins.c": "d_parents",
    "admission.c": "d_admission",
    "admission.h": "d_admission",
    "worker.c": "d_worker",
    "worker.h": "d_worker",
    "supervisor.c": "d_supervisor",
    "supervisor.h": "d_supervisor",
    "callouts.c": "d_callouts",
    "callouts.h": "d_callouts",
    "child.c": "d_child",
    "child.h": "d_child",
    "audit_job.c": "d_audit_job",
    "audit_job.h": "d_audit_job",
    "handlers.c": "d_handlers",
    "handlers.h": "d_handlers",
    "control.c": "d_control",
    "control.h": "d_control",
}

PUBLIC_HEADER_MODULE = {
    "umdev.h": "util",
    "loop.h": "loop",
    "wire.h": "wire",
    "dev.h": "dev",
    "profile.h": "dev",
    "pci.h": "pci",
    "client.h": "client",
    "access.h": "access",
    "accel_ring.h": "access",
    "ctl.h": "ctl",
    "parent.h": "parent",
}


def module_of(path, src):
    """The module a source or header belongs to, or None (system, tests)."""
    rel = os.path.relpath(os.path.realpath(path), src)
    if rel.startswith(".."):
        return None
    parts = rel.split(os.sep)
    if parts[0] == "include" and parts[1] == "umdev":
        mod = PUBLIC_HEADER_MODULE.get(parts[2])
        if mod is None:
            raise SystemExit("check_layers: %s: a public header this check "
                             "does not know; add it to PUBLIC_HEADER_MODULE"
                             % rel)
        return mod + "_pub" if mod in ("dev", "pci") else mod
    if parts[0] == "lib":
        if parts[1] == "include":
            # Headers lib keeps to itself and its tests: dev_testing.h
            # belongs to dev, wire_codec.h to wire.
            return parts[3].split("_")[0]
        return parts[1]
    if parts[0] == "daemon":
        mod = DAEMON_FILES.get(parts[1])
        if mod is None:
            raise SystemExit("check_layers: %s: a daemon file this check "
                             "does not know; add it to DAEMON_FILES" % rel)
        return mod
    if parts[0] == "devices":
        return "device:" + parts[1]
    return None


def allowed(user, used):
    """May module @user use module @used?"""
    base = used[:-4] if used is not None and used.endswith("_pub") else used
    if used is None or user == used or user == base:
        return True
    if user.startswith("device:"):
        # A device reaches lib only through the public headers and
        # functions; it may not use another device.
        return used.endswith("_pub") or base in PUBLIC_LIB
    if user.startswith("d_"):
        if used.startswith("d_"):
            return used in DAEMON[user]
        if used.startswith("device:"):
            # Built-in parents are linked in, reached through the
            # parent-driver interface from one place only.
            return user == "d_parents"
        return used.endswith("_pub") or base in PUBLIC_LIB or \
            base in ("audit", "mdev")
    if user.endswith("_pub"):
        user = user[:-4]
    deps = LIB.get(user)
    if deps is None:
        return False
    if used in deps or base in deps:
        # audit may not use dev/pci private headers: dev_pub yes, dev no.
        if user == "audit" and base in ("dev", "pci"):
            return used.endswith("_pub")
        return True
    return False


def ninja_deps(build):
    out = subprocess.run(["ninja", "-C", build, "-t", "deps"], check=True,
                         capture_output=True, text=True).stdout
    deps = {}
    obj = None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            obj = line.split(":")[0]
            deps[obj] = []
        elif line.strip() and obj is not None:
            deps[obj].append(line.strip())
    return deps


def main():
    src, build = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    problems = []
    deps = ninja_deps(build)
    objects = {}  # object path -> module, for the call check
    for obj, files in deps.items():
        if not files:
            continue
        user = module_of(files[0], src)  # the translation unit itself
        if user is None:
            continue
        objects[os.path.join(build, obj)] = user
        for f in files[1:]:
            used = module_of(f, src)
            if used is not None and not allowed(user, used):
                problems.append("%s (%s) includes %s (%s)" % (
                    os.path.relpath(files[0], src), user,
                    os.path.relpath(f, src), used))
    # Calls: who defines each global symbol, then who needs it.
    defined = {}
    needed = []
    for obj, user in objects.items():
        if not os.path.exists(obj):
            continue
        out = subprocess.run(["nm", obj], check=True, capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            m = re.match(r"^\s*(?:[0-9a-f]+)?\s+([A-Za-z])\s+(\S+)$", line)
            if not m:
                continue
            kind, sym = m.groups()
            if kind == "U":
                needed.append((obj, user, sym))
            elif kind in "TDBR":
                defined.setdefault(sym, set()).add(user)
    # Symbols libumdev.so exports: the public API. Code that may use lib
    # only through include/umdev/ must call nothing else of it.
    so = os.path.join(build, "libumdev.so")
    out = subprocess.run(["nm", "-D", "--defined-only", so], check=True,
                         capture_output=True, text=True).stdout
    exported = {l.split()[-1] for l in out.splitlines() if l.strip()}
    for obj, user, sym in needed:
        for used in defined.get(sym, ()):
            public_only = user.startswith(("device:", "d_")) or \
                user == "audit"
            if public_only and used in PUBLIC_LIB and sym not in exported:
                problems.append("%s (%s) calls %s of %s, which libumdev "
                                "does not export" % (
                                    os.path.relpath(obj, build), user, sym,
                                    used))
                continue
            base = user[:-4] if user.endswith("_pub") else user
            target = used
            # A call is to a module's functions, which its public header
            # declares: audit calling dev is dev_pub.
            if base == "audit" and used in ("dev", "pci"):
                target = used + "_pub"
            if not allowed(user, target) and not allowed(base, target):
                problems.append("%s (%s) calls %s of %s" % (
                    os.path.relpath(obj, build), user, sym, used))
    for p in sorted(set(problems)):
        print("layer crossed: " + p)
    print("%d objects checked, %d crossings" % (len(objects),
                                                  len(set(problems))))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
