#!/usr/bin/env python3
"""The tree names no package mirror or other network host (issue 14,
defect 10): what a test fetches comes from the machine's own
configuration, never from a host written into the source.

    check_hosts.py SRC_DIR APT_MIRROR_SH
        check the patterns on samples made from the archive this
        machine's apt sources name (APT_MIRROR_SH prints it), then scan
        every text file under SRC_DIR (git's list of files when SRC_DIR
        is a checkout)
    check_hosts.py --self-test APT_MIRROR_SH
        the samples only

A hit prints FILE:LINE: the name, and the exit status is 1.
"""

import os
import re
import subprocess
import sys

TLDS = (r"(?:org|com|net|edu|gov|io|info|de|fr|uk|jp|cn|ru|nl|se|us|ca|"
        r"au|br|it|es|ch|at|be|cz|pl|kr|tw|in|eu|dk|fi|no)")
PATTERNS = [
    # A URL with a host part, dotted or not (file:///x has none).
    re.compile(r"\b[a-z][a-z0-9+.-]*://([a-z0-9-]+(?:\.[a-z0-9-]+)*)",
               re.I),
    # Any name in a distribution's domains.
    re.compile(r"\b(?:[a-z0-9-]+\.)+(?:debian|ubuntu|launchpad|"
               r"fedoraproject|centos|kernel)\.(?:org|net|com)\b", re.I),
    # Names that look like package mirrors anywhere.
    re.compile(r"\b(?:ftp|deb|mirrors?|archive|security|snapshot|"
               r"httpredir|cdn|ports|packages)\d*(?:\.[a-z0-9-]+)*\." + TLDS +
               r"\b", re.I),
]
SKIP_DIRS = {".git", "build"}


def files(src):
    try:
        out = subprocess.run(["git", "-C", src, "ls-files", "-z", "--cached",
                              "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout
        return [os.path.join(src, f) for f in out.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        found = []
        for root, dirs, names in os.walk(src):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            found += [os.path.join(root, n) for n in names]
        return found


def hits(text):
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        names = []
        for p in PATTERNS:
            for m in p.finditer(line):
                name = m.group(0)
                if not any(name in x or x in name for x in names):
                    names.append(name)
        out += [(n, name) for name in names]
    return out


def self_test(mirror):
    """The patterns against samples. Real host names are not written
    here either: the ones that must hit are built around @mirror, the
    archive this machine's own apt sources name (apt-mirror.sh prints
    it)."""
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", mirror).split("/")[0]
    bad = ["MIRROR=" + mirror, "deb %s bookworm main" % mirror,
           "URIs: " + mirror + "/", "fetch it from " + host,
           # A URL alone names a host, whatever the name: the mirror's
           # labels reversed are in no distribution's domain.
           "http://" + ".".join(reversed(host.split("."))) + "/x",
           # ... and a host name of one label is a host all the same.
           "URIs: http://" + host.split(".")[0] + "/debian"]
    good = ["tests/func/test_func_io.c", "HARNESS_MAIN(\"func.io\")",
            "file:///usr/share/doc", "archive.tar.gz", "docs/interop/"
            "vfio-user.rst", "unix:/run/umdev/control", "libvfio-user.so"]
    ok = True
    if "." not in host:
        print("self-test: the apt mirror %r has no host name to look for"
              % mirror)
        ok = False
    for s in bad:
        if not hits(s):
            print("self-test: no hit in %r" % s)
            ok = False
    for s in good:
        if hits(s):
            print("self-test: false hit in %r: %s" % (s, hits(s)))
            ok = False
    return ok


def apt_mirror(script):
    """The archive this machine's apt sources name, by @script."""
    p = subprocess.run([script], capture_output=True, text=True)
    if p.returncode != 0 or not p.stdout.strip():
        sys.exit("%s failed: %s" % (script, p.stderr.strip()))
    return p.stdout.strip()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    if not self_test(apt_mirror(sys.argv[2])):
        return 1
    if sys.argv[1] == "--self-test":
        return 0
    src = os.path.abspath(sys.argv[1])
    found = 0
    for path in files(src):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if b"\0" in data:
            continue  # binary: fuzz inputs, images
        for n, name in hits(data.decode("utf-8", "replace")):
            print("%s:%d: %s" % (os.path.relpath(path, src), n, name))
            found += 1
    if found:
        print("%d host name(s) in the tree: take them from the machine's "
              "configuration instead" % found)
        return 1
    print("no host names in %d files" % len(files(src)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
