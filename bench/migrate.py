#!/usr/bin/env python3
"""bench/migrate.py: blackout and state size of `umdevctl migrate` per type.

Two private umdevd on this host; for each type, ROUNDS times: a fresh
instance on the first, umdev-vmm (tests/migrate) driving its workload
(accel: every queue 32 descriptors deep, i.e. full rings in flight;
serial: bytes both ways through the host end; nvme: a queue of writes
and reads over a backing directory both daemons share), and, in the
middle of it, `umdevctl migrate --handshake` to the second daemon. The
VMM checks every byte and descriptor (a run that loses anything is an
error here, not a figure). Printed per type: the median blackout (the
source asked to STOP_COPY until the destination RUNNING, the VMM's
re-attach included) and transfer (until the destination loaded the
state), the state bytes after the stop and before it (pre-copy), and both
times as ratios to a raw UNIX-socket round trip measured in the same run
(bench/rtt), since this machine's speed varies from run to run.

No CPU pinning: the daemons, their workers, umdevctl and the VMM share
every CPU this process may use (the count is printed), as on a host.

usage: migrate.py BUILD_DIR [--rounds N] [--types T,T...]
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

TYPES = {
    # type: (umdev-vmm arguments, start attributes)
    "serial-2port": (["--workload", "serial", "--units", "120",
                      "--migrate-after", "60"], []),
    "accel-1wq": (["--workload", "accel", "--depth", "32", "--units", "120",
                   "--migrate-after", "60"], []),
    "accel-2wq": (["--workload", "accel", "--depth", "32", "--units", "120",
                   "--migrate-after", "60"], []),
    "accel-4wq": (["--workload", "accel", "--depth", "32", "--units", "120",
                   "--migrate-after", "60"], []),
    "nvme-4q": (["--workload", "nvme", "--depth", "16", "--units", "120",
                 "--migrate-after", "60"], ["size=64M"]),
}
TARGET_MS = {"accel-4wq": 20.0}


def die(msg):
    sys.stderr.write("%s: %s\n" % (os.path.basename(sys.argv[0]), msg))
    sys.exit(1)


class Daemon:
    def __init__(self, build, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.control = os.path.join(self.dir, "control")
        self.log = os.path.join(self.dir, "umdevd.log")
        self.umdevctl = os.path.join(build, "cli", "umdevctl")
        argv = [os.path.join(build, "daemon", "umdevd"),
                "--rundir", os.path.join(self.dir, "run"),
                "--statedir", os.path.join(self.dir, "state"),
                "--control", self.control]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.control):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                die("umdevd did not start; see %s" % self.log)
            time.sleep(0.02)

    def ctl(self, *args):
        p = subprocess.run([self.umdevctl, "--control", self.control] +
                           list(args), capture_output=True, text=True,
                           timeout=60)
        if p.returncode != 0:
            die("umdevctl %s: %s" % (" ".join(args), p.stderr.strip()))
        return p.stdout

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def raw_rtt_us(build):
    """The raw UNIX-socket ping-pong of bench/rtt, both ends on one CPU."""
    p = subprocess.run([os.path.join(build, "bench", "rtt"), "--iters",
                        "2000", "--batches", "5", "--placement", "same"],
                       capture_output=True, text=True, timeout=300)
    m = re.search(r"raw_us=([0-9.]+)", p.stdout)
    if p.returncode != 0 or m is None:
        die("bench/rtt failed: %s" % p.stderr.strip())
    return float(m.group(1))


def one_round(build, src, dst, shared, typ):
    vmm_args, attrs = TYPES[typ]
    u = str(uuid.uuid4())
    parent = typ.split("-")[0]
    argv = ["start", "-u", u, "-p", parent, "-t", typ]
    for a in attrs:
        argv += ["--attr", a]
    if parent == "nvme":
        argv += ["--attr", "dir=" + shared]
    src.ctl(*argv)
    info = json.loads(src.ctl("--json", "info", u))
    cmd = " ".join([src.umdevctl, "--control", src.control, "migrate", u,
                    "--to", dst.control, "--handshake"])
    vmm = [os.path.join(build, "tests", "migrate", "umdev-vmm"),
           "--socket", info["instance"]["socket"], "--migrate-cmd", cmd]
    vmm += vmm_args
    if parent == "serial":
        ends = {}
        for d, key in ((src, "--host-src"), (dst, "--host-dst")):
            ends[key] = os.path.join(d.dir, "run", u + ".port0")
        for key, path in ends.items():
            vmm += [key, path]
    p = subprocess.run(vmm, capture_output=True, text=True, timeout=120)
    out = p.stdout.strip().splitlines()
    if p.returncode != 0 or not out:
        die("%s: umdev-vmm exited %d: %s %s" % (typ, p.returncode,
                                                 p.stdout.strip()[-400:],
                                                 p.stderr.strip()[-800:]))
    r = json.loads(out[-1])
    dst.ctl("stop", u)
    dst.ctl("undefine", "--delete-data", u) if parent == "nvme" else \
        dst.ctl("undefine", u)
    return r


def parse_args(doc, known, rounds):
    """BUILD_DIR [--rounds N] [--types T,T...], checked, with the programs
    a blackout benchmark runs. Return: (build dir, rounds, types)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--types", default=",".join(known))
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    types = a.types.split(",")
    for t in types:
        if t not in known:
            die("unknown type %s (known: %s)" % (t, ", ".join(known)))
    if a.rounds < 1:
        die("--rounds must be at least 1")
    for prog in ("daemon/umdevd", "cli/umdevctl", "bench/rtt",
                 "tests/migrate/umdev-vmm"):
        if not os.access(os.path.join(build, prog), os.X_OK):
            die("%s/%s is not built" % (build, prog))
    return build, a.rounds, types


def main():
    build, rounds, types = parse_args(__doc__, TYPES, 5)
    root = tempfile.mkdtemp(prefix="umdev-bench-migrate-")
    src = dst = None
    try:
        shared = os.path.join(root, "nvme")
        os.makedirs(shared)
        src = Daemon(build, root, "a")
        dst = Daemon(build, root, "b")
        cpus = len(os.sched_getaffinity(0))
        base = raw_rtt_us(build)
        print("migrate: %d CPU(s), no pinning; raw UNIX-socket round trip "
              "%.2f us (bench/rtt, same CPU); %d rounds per type"
              % (cpus, base, rounds))
        for t in types:
            runs = [one_round(build, src, dst, shared, t)
                    for _ in range(rounds)]
            bl = statistics.median(r["blackout_us"] for r in runs)
            # The VMM's own work inside the blackout (its check of guest
            # RAM against the dirty reports, 16 MiB compared) is not the
            # device's: a real VMM copies the last dirty pages then.
            dev = statistics.median(r["blackout_us"] - r["dirty_check_us"]
                                    for r in runs)
            tr = statistics.median(r["transfer_us"] for r in runs)
            state = statistics.median(r["state_bytes"] for r in runs)
            pre = statistics.median(r["precopy_bytes"] for r in runs)
            target = TARGET_MS.get(t)
            verdict = ""
            if target is not None:
                verdict = " target(blackout<%.0fms)=%s" % (
                    target, "met" if bl / 1000 < target else "MISSED")
            print("migrate type=%s blackout_ms=%.3f (%.0fx rtt) "
                  "without_vmm_ram_check_ms=%.3f (%.0fx rtt) "
                  "transfer_ms=%.3f (%.0fx rtt) state_bytes=%d "
                  "precopy_bytes=%d blackout_range_ms=%.3f..%.3f%s"
                  % (t, bl / 1000, bl / base, dev / 1000, dev / base,
                     tr / 1000, tr / base, state, pre,
                     min(r["blackout_us"] for r in runs) / 1000,
                     max(r["blackout_us"] for r in runs) / 1000, verdict))
            sys.stdout.flush()
    finally:
        for d in (src, dst):
            if d is not None:
                d.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
