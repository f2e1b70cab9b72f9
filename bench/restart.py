#!/usr/bin/env python3
"""bench/restart.py: blackout of `umdevctl restart` per type (issue 17).

A private umdevd; for each type, one instance with umdev-vmm
(tests/migrate) attached and running its workload (accel: every queue
32 descriptors deep, i.e. full rings in flight; serial: bytes both ways
through a host end; nvme: a queue of writes and reads), and ROUNDS
`umdevctl restart` meanwhile, 100 ms apart. The VMM checks every byte and
descriptor to the end (a run that loses anything is an error here, not a
figure). The blackout is what umdevctl reports: from the old worker's
stop to the new worker's confirmation that it serves (the device answers
nothing meanwhile; QEMU gives a message 5 s). Printed per type: median,
90th percentile and maximum, each also as a ratio to a raw UNIX-socket
round trip measured in the same run (bench/rtt), since this machine's
speed varies from run to run, and the target (under 50 ms) met or not by
the maximum.

No CPU pinning: the daemon, both workers, umdevctl and the VMM share
every CPU this process may use (the count is printed), as on a host.

usage: restart.py BUILD_DIR [--rounds N] [--types T,T...]
"""

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migrate import Daemon, die, parse_args, raw_rtt_us  # noqa: E402

TYPES = {
    # type: (umdev-vmm arguments, start attributes)
    "serial-2port": (["--workload", "serial"], []),
    "accel-1wq": (["--workload", "accel", "--depth", "32"], []),
    "accel-4wq": (["--workload", "accel", "--depth", "32"], []),
    "nvme-1q": (["--workload", "nvme", "--depth", "16"], ["size=64M"]),
    "nvme-4q": (["--workload", "nvme", "--depth", "16"], ["size=64M"]),
}
TARGET_MS = 50.0


def attached(d, u):
    return "client_pid" in d.ctl("--json", "info", u)


def one_type(build, d, typ, rounds):
    vmm_args, attrs = TYPES[typ]
    u = str(uuid.uuid4())
    parent = typ.split("-")[0]
    argv = ["start", "-u", u, "-p", parent, "-t", typ]
    for a in attrs:
        argv += ["--attr", a]
    d.ctl(*argv)
    info = json.loads(d.ctl("--json", "info", u))
    vmm = [os.path.join(build, "tests", "migrate", "umdev-vmm"),
           "--socket", info["instance"]["socket"], "--until-signal"]
    vmm += vmm_args
    if parent == "serial":
        end = os.path.join(d.dir, "run", u + ".port0")
        vmm += ["--host-src", end, "--host-dst", end]
    p = subprocess.Popen(vmm, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.monotonic() + 30
    while not attached(d, u):
        if p.poll() is not None or time.monotonic() > deadline:
            die("%s: umdev-vmm did not attach: %s" % (typ, p.stderr.read()))
        time.sleep(0.05)
    time.sleep(0.2)  # the workload is in flight
    blackouts = []
    for _ in range(rounds):
        r = json.loads(d.ctl("--json", "restart", u))
        blackouts.append(r["blackout_us"])
        time.sleep(0.1)
    p.send_signal(signal.SIGUSR1)
    out, err = p.communicate(timeout=120)
    lines = out.strip().splitlines()
    res = json.loads(lines[-1]) if lines else {}
    if p.returncode != 0 or not res.get("ok") or res.get("errors"):
        die("%s: umdev-vmm failed (rc %d): %s %s" % (
            typ, p.returncode, out.strip()[-400:], err.strip()[-800:]))
    d.ctl("stop", u)
    return blackouts


def main():
    build, rounds, types = parse_args(__doc__, TYPES, 20)
    root = tempfile.mkdtemp(prefix="umdev-bench-restart-")
    d = None
    try:
        d = Daemon(build, root, "d")
        cpus = len(os.sched_getaffinity(0))
        base = raw_rtt_us(build)
        print("restart: %d CPU(s), no pinning; raw UNIX-socket round trip "
              "%.2f us (bench/rtt, same CPU); %d restarts per type under "
              "load" % (cpus, base, rounds))
        for t in types:
            b = sorted(one_type(build, d, t, rounds))
            med = statistics.median(b)
            p90 = b[min(len(b) - 1, int(0.9 * len(b)))]
            worst = b[-1]
            print("restart type=%s blackout_ms median=%.3f (%.0fx rtt) "
                  "p90=%.3f (%.0fx rtt) max=%.3f (%.0fx rtt) "
                  "target(max<%.0fms)=%s"
                  % (t, med / 1000, med / base, p90 / 1000, p90 / base,
                     worst / 1000, worst / base, TARGET_MS,
                     "met" if worst / 1000 < TARGET_MS else "MISSED"))
            sys.stdout.flush()
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
