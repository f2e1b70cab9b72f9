#!/usr/bin/env python3
"""What tests/e2e/guide.sh takes from the documentation, so that the
commands users read are the commands that run.

    doc-blocks.py sh FILE              every ```sh block of FILE, in order,
                                       one script on stdout
    doc-blocks.py xml FILE             check every ```xml block: well formed
                                       (QEMU-NAMESPACE stands for libvirt's
                                       namespace URI), qemu:commandline
                                       passes a JSON vfio-user-pci -device,
                                       memoryBacking is memfd and shared
    doc-blocks.py qemu-args FILE SOCK  the QEMU arguments in FILE's code
                                       span that mentions vfio-user-pci
                                       (README.md's), SOCKET replaced by
                                       SOCK, one per line (NUL-free)
Exit status 1 with the reason on stderr when FILE lacks what is asked.
"""

import json
import re
import shlex
import sys
import xml.etree.ElementTree as ET


def blocks(text, lang):
    return re.findall(r"^```" + lang + r"\n(.*?)^```$", text, re.M | re.S)


def die(msg):
    sys.exit("doc-blocks: " + msg)


def main():
    if len(sys.argv) < 3:
        die(__doc__)
    what, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        text = f.read()
    if what == "sh":
        found = blocks(text, "sh")
        if not found:
            die("no ```sh block in " + path)
        sys.stdout.write("\n".join(found))
    elif what == "xml":
        found = blocks(text, "xml")
        if not found:
            die("no ```xml block in " + path)
        for b in found:
            root = ET.fromstring(b.replace("QEMU-NAMESPACE", "urn:qemu"))
            ns = {"q": "urn:qemu"}
            args = [a.get("value") for a in
                    root.findall("q:commandline/q:arg", ns)]
            i = args.index("-device") if "-device" in args else -1
            if i < 0 or i + 1 >= len(args):
                die("no qemu:arg -device in the domain XML")
            dev = json.loads(args[i + 1])
            if (dev.get("driver") != "vfio-user-pci" or
                    dev.get("socket", {}).get("type") != "unix" or
                    not dev["socket"].get("path", "").endswith(".sock")):
                die("the -device argument is not a vfio-user-pci on a "
                    "unix socket: %s" % args[i + 1])
            mb = root.find("memoryBacking")
            if (mb is None or mb.find("source") is None or
                    mb.find("source").get("type") != "memfd" or
                    mb.find("access") is None or
                    mb.find("access").get("mode") != "shared"):
                die("memoryBacking is not memfd with shared access")
        print("%d xml block(s) checked" % len(found))
    elif what == "qemu-args":
        spans = [s for s in re.findall(r"`([^`]+)`", text)
                 if "vfio-user-pci" in s and "-device" in s]
        if len(spans) != 1:
            die("expected one code span with a vfio-user-pci -device in "
                "%s, found %d" % (path, len(spans)))
        args = shlex.split(spans[0].replace("\n", " "))
        if not any("SOCKET" in a for a in args):
            die("the QEMU line names no SOCKET: " + spans[0])
        for a in args:
            print(a.replace("SOCKET", sys.argv[3]))
    else:
        die(__doc__)


if __name__ == "__main__":
    main()
