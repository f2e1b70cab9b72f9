#!/usr/bin/env python3
"""The figures of bench/nvme-fio.sh, from its results directory.

Usage: nvme-fio-report.py RESULTS_DIR REPEATS JOB...  (JOB: name:rw:bs:depth)

For each job and device (umdev, qemu) it reads the REPEATS runs' fio JSON
(r<R>-<job>-<dev>.json), umdev's counters around each of its runs
(r<R>-<job>-umdev.{pre,post}.info, `umdevctl --json info`) and the guest's
/proc/interrupts around each run (.irq-pre, .irq-post) and the host CPU
time of umdev's worker and of QEMU's main thread around each run
(.pre.cpu, .post.cpu), and prints per job the IOPS and latency (fio's
lat: submission to completion) of both devices and their ratios
umdev/QEMU, and per-I/O counts. Figures are means over the repeats; [min..max] is their range.
Exit status 1 (with the reason on stderr) if any run is missing, failed
or cannot be read.
"""

import json
import os
import statistics
import sys

DEVS = ("umdev", "qemu")


class Missing(Exception):
    pass


def load_json(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise Missing("%s: %s" % (path, e.strerror))
    # fio may print notes before its JSON.
    start = text.find("{")
    try:
        return json.loads(text[start:])
    except ValueError as e:
        raise Missing("%s: not JSON (%s)" % (path, e))


def fio_figures(path):
    """IOPS, MB/s, lat mean/p50/p99 (us) and the I/Os the disk saw."""
    d = load_json(path)
    jobs = d.get("jobs") or []
    if len(jobs) != 1:
        raise Missing("%s: %d jobs, expected 1" % (path, len(jobs)))
    j = jobs[0]
    if j.get("error"):
        raise Missing("%s: fio error %s" % (path, j["error"]))
    side = j["read"] if j["read"]["io_bytes"] > 0 else j["write"]
    if side["io_bytes"] == 0 or side["iops"] <= 0:
        raise Missing("%s: no I/O" % path)
    lat = side["lat_ns"]
    pct = lat.get("percentile", {})
    disk_ios = None
    for u in d.get("disk_util", []):
        disk_ios = u.get("read_ios", 0) + u.get("write_ios", 0)
    return {
        "iops": side["iops"],
        "mbps": side["bw_bytes"] / 1e6,
        "lat": lat["mean"] / 1000.0,
        "p50": pct.get("50.000000", 0) / 1000.0,
        "p99": pct.get("99.000000", 0) / 1000.0,
        "disk_ios": disk_ios,
    }


def find(obj, key):
    """The first value of KEY in a nested JSON object."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = find(v, key)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = find(v, key)
            if r is not None:
                return r
    return None


def counters(path):
    info = load_json(path)
    ep = find(info, "endpoints")
    msgs = find(find(info, "device") or {}, "counters")
    if not isinstance(ep, dict) or not isinstance(msgs, dict):
        raise Missing("%s: no endpoints or counters" % path)
    return {
        "io": ep["io_commands"],
        "msgs": msgs["msgs"],
        "doorbells": ep["doorbell_writes"],
        "wakeups": ep["poller_wakeups"],
        "irqs": ep["irqs"],
    }


def cpu(path):
    """{"worker": ticks, "qemu_main": ticks, "hz": ticks per second}."""
    try:
        with open(path) as f:
            return {k: int(v) for k, v in
                    (w.split("=") for w in f.read().split())}
    except (OSError, ValueError) as e:
        raise Missing("%s: %s" % (path, e))


def guest_irqs(path, ctrl):
    """Interrupts of controller CTRL's queues (nvmeNq*) in /proc/interrupts."""
    total = 0
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if not fields or not fields[-1].startswith(ctrl + "q"):
                    continue
                total += sum(int(x) for x in fields[1:] if x.isdigit())
    except OSError as e:
        raise Missing("%s: %s" % (path, e.strerror))
    return total


def rng(values, fmt):
    return "%s [%s..%s]" % (fmt % statistics.mean(values),
                            fmt % min(values), fmt % max(values))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__.split("\n\n")[1])
    res, repeats, jobs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    ctrls = {}
    try:
        with open(os.path.join(res, "devices")) as f:
            for line in f:
                dev, _blk, ctrl = line.split()
                ctrls[dev] = ctrl
    except (OSError, ValueError):
        print("no device map in %s/devices" % res, file=sys.stderr)
        return 1
    problems = []
    verdicts = []
    for spec in jobs:
        name, _rw, _bs, depth = spec.split(":")
        fig = {d: [] for d in DEVS}
        per_io = {"msgs": [], "doorbells": [], "wakeups": [], "irqs": []}
        girq = {d: [] for d in DEVS}
        # Host CPU us per I/O: umdev's worker in umdev's runs, QEMU's main
        # thread in QEMU's runs.
        cpu_io = {d: [] for d in DEVS}
        for r in range(1, repeats + 1):
            for d in DEVS:
                base = os.path.join(res, "r%d-%s-%s" % (r, name, d))
                try:
                    f = fio_figures(base + ".json")
                    fig[d].append(f)
                    n = guest_irqs(base + ".irq-post", ctrls[d]) - \
                        guest_irqs(base + ".irq-pre", ctrls[d])
                    if f["disk_ios"]:
                        girq[d].append(n / f["disk_ios"])
                    a, b = cpu(base + ".pre.cpu"), cpu(base + ".post.cpu")
                    who = "worker" if d == "umdev" else "qemu_main"
                    if f["disk_ios"] and b[who] > 0:
                        cpu_io[d].append((b[who] - a[who]) * 1e6 / a["hz"] /
                                         f["disk_ios"])
                    if d == "umdev":
                        a = counters(base + ".pre.info")
                        b = counters(base + ".post.info")
                        io = b["io"] - a["io"]
                        if io <= 0:
                            raise Missing("%s: umdev counted no I/O" % base)
                        for k in per_io:
                            per_io[k].append((b[k] - a[k]) / io)
                except Missing as e:
                    problems.append(str(e))
        if not fig["umdev"] or not fig["qemu"]:
            continue
        mean = {d: {k: statistics.mean(x[k] for x in fig[d])
                    for k in ("iops", "mbps", "lat", "p50", "p99")}
                for d in DEVS}
        iops_ratio = mean["umdev"]["iops"] / mean["qemu"]["iops"]
        lat_ratio = mean["umdev"]["lat"] / mean["qemu"]["lat"]
        print("job=%s qd=%s umdev_iops=%s qemu_iops=%s iops_ratio=%.3f"
              % (name, depth, rng([x["iops"] for x in fig["umdev"]], "%.0f"),
                 rng([x["iops"] for x in fig["qemu"]], "%.0f"), iops_ratio))
        print("  MB/s umdev=%.1f qemu=%.1f" % (mean["umdev"]["mbps"],
                                              mean["qemu"]["mbps"]))
        print("  lat_us umdev mean=%.1f p50=%.1f p99=%.1f"
              " qemu mean=%.1f p50=%.1f p99=%.1f lat_ratio=%.3f"
              % (mean["umdev"]["lat"], mean["umdev"]["p50"],
                 mean["umdev"]["p99"], mean["qemu"]["lat"],
                 mean["qemu"]["p50"], mean["qemu"]["p99"], lat_ratio))
        if per_io["msgs"]:
            print("  umdev per I/O: msgs=%.3f doorbell_writes=%.3f"
                  " poller_wakeups=%.3f irqs=%.3f"
                  % tuple(statistics.mean(per_io[k]) for k in
                          ("msgs", "doorbells", "wakeups", "irqs")))
        if girq["umdev"] and girq["qemu"]:
            print("  guest interrupts per I/O: umdev=%.3f qemu=%.3f"
                  % (statistics.mean(girq["umdev"]),
                     statistics.mean(girq["qemu"])))
        if cpu_io["umdev"] and cpu_io["qemu"]:
            print("  host CPU us per I/O: umdev worker=%.1f"
                  " qemu main thread=%.1f"
                  % (statistics.mean(cpu_io["umdev"]),
                     statistics.mean(cpu_io["qemu"])))
        if depth == "32":
            verdicts.append("%s: IOPS ratio %.3f (target >= 1.0: %s)"
                            % (name, iops_ratio,
                               "met" if iops_ratio >= 1.0 else "below"))
        if depth == "1":
            verdicts.append("%s: latency ratio %.3f (target <= 1.2: %s)"
                            % (name, lat_ratio,
                               "met" if lat_ratio <= 1.2 else "above"))
    for v in verdicts:
        print("target " + v)
    for p in problems:
        print("missing: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
