#!/usr/bin/env python3
"""bench/display.py: `umdevctl screenshot` of a full 1920x1080 frame (issue 18).

A private umdevd and a display-1920 instance. daemon-display-client
(tests/daemon) plays the guest: it sets 1920x1080 at 32 bpp through BAR2
as bochs-drm does and fills video memory with a seeded pattern (noise:
the worst case for the PNG's compression), writing a copy of it to a
file. Then ROUNDS `umdevctl screenshot` runs, each timed from exec to
exit (the control request, the read-only mapping, the conversion to RGB,
libpng's encoding and the file written). The limit is a plain memcpy of
the visible frame (8,294,400 bytes), measured in the same run on the
copy of video memory; the ratio screenshot/memcpy is printed, since
this machine's speed varies from run to run. No CPU pinning.

usage: display.py BUILD_DIR [--rounds N]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migrate import Daemon, die  # noqa: E402

WIDTH, HEIGHT, BPP = 1920, 1080, 32


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=10)
    a = ap.parse_args()
    if a.rounds < 1:
        die("--rounds must be at least 1")
    build = os.path.abspath(a.build)
    client = os.path.join(build, "tests", "daemon", "daemon-display-client")
    for prog in ("daemon/umdevd", "cli/umdevctl"):
        if not os.access(os.path.join(build, prog), os.X_OK):
            die("%s/%s is not built" % (build, prog))
    if not os.access(client, os.X_OK):
        die("%s is not built (UMDEV_TESTS=ON)" % client)
    root = tempfile.mkdtemp(prefix="umdev-bench-display-")
    d = None
    try:
        d = Daemon(build, root, "d")
        u = str(uuid.uuid4())
        d.ctl("start", "-u", u, "-p", "display", "-t", "display-1920")
        sock = json.loads(d.ctl("--json", "info", u))["instance"]["socket"]
        dump = os.path.join(root, "vram")
        p = subprocess.run([client, sock, "10000", dump, str(WIDTH),
                            str(HEIGHT), str(BPP), str(WIDTH), "0", "0", "le",
                            "1"], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            die("daemon-display-client: %s" % p.stderr.strip())
        frame = WIDTH * HEIGHT * BPP // 8
        with open(dump, "rb") as f:
            vram = bytearray(f.read())
        if len(vram) < frame:
            die("video memory copy has %d bytes, less than a frame" %
                len(vram))
        view = memoryview(vram)[:frame]
        copies = []
        for _ in range(max(a.rounds, 20)):
            t0 = time.perf_counter_ns()
            b = bytes(view)  # one memcpy of the frame into a new buffer
            copies.append(time.perf_counter_ns() - t0)
            del b
        base = statistics.median(copies)
        shots, size = [], 0
        png = os.path.join(root, "shot.png")
        for _ in range(a.rounds):
            t0 = time.perf_counter_ns()
            d.ctl("screenshot", u, png)
            shots.append(time.perf_counter_ns() - t0)
            size = os.path.getsize(png)
        med = statistics.median(shots)
        print("display: %d CPU(s), no pinning; memcpy of a %dx%d frame "
              "(%d bytes) %.3f ms (median of %d)"
              % (len(os.sched_getaffinity(0)), WIDTH, HEIGHT, frame,
                 base / 1e6, len(copies)))
        print("display screenshot %dx%d@%d: median %.1f ms (%.0fx memcpy), "
              "min %.1f ms, max %.1f ms; PNG %d bytes (noise)"
              % (WIDTH, HEIGHT, BPP, med / 1e6, med / base, min(shots) / 1e6,
                 max(shots) / 1e6, size))
        d.ctl("stop", u)
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
