"""`umdevctl stats --all` and `--openmetrics` (docs/CLI.md "stats").

The exposition is read back with prometheus_client's OpenMetrics parser
(Debian's python3-prometheus-client), an implementation of the format
that is not ours: it refuses anything the format does not allow (a
family split in two, a missing `# EOF`, a bad label). Every value must be
the one `stats --json` reports for the same instance.
"""

import os
import signal

from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families

import harness
from harness import DaemonTestCase

COUNTERS = {
    "umdev_vfio_user_messages": "msgs",
    "umdev_vfio_user_errors": "errors",
    "umdev_region_reads": "region_reads",
    "umdev_region_writes": "region_writes",
    "umdev_dma_bytes": "dma_bytes",
    "umdev_irqs_raised": "irqs",
    "umdev_irqs_dropped": "irqs_dropped",
    "umdev_client_attaches": "attaches",
}
LABELS = {"uuid", "type", "parent"}


def parse(text):
    """{family name: family} of one exposition; raises if malformed."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples_of(family, uuid):
    return [s for s in family.samples if s.labels.get("uuid") == uuid]


class Metrics(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()
        self.serial = []
        for _ in range(2):
            u = self.ok("define", "-p", "serial", "-t", "serial-2port",
                        "--manual").out.strip()
            self.start_instance(u)
            self.serial.append(u)
        self.accel = self.ok("define", "-p", "accel", "-t", "accel-2wq",
                             "--manual").out.strip()
        self.start_instance(self.accel)
        # Defined, not running: no stats, not in the exposition.
        self.idle = self.ok("define", "-p", "serial", "-t", "serial-2port",
                            "--manual").out.strip()
        # Traffic, so that counters are not all zero.
        self.probe(self.instances()[self.serial[0]]["socket"])
        self.running = {u: i for u, i in self.instances().items()
                        if i["state"] == "running"}

    def check_against_json(self, fams, uuid):
        """Every sample of @uuid equals what stats --json says."""
        st = self.js("stats", uuid)
        inst = self.running[uuid]
        info = samples_of(fams["umdev_instance"], uuid)
        self.assertEqual(len(info), 1)
        self.assertEqual(info[0].labels,
                         {"uuid": uuid, "type": inst["type"],
                          "parent": inst["parent"], "state": "running"})
        for fam, key in COUNTERS.items():
            self.assertEqual(fams[fam].type, "counter", fam)
            s = samples_of(fams[fam], uuid)
            self.assertEqual(len(s), 1, fam)
            self.assertEqual(s[0].name, fam + "_total")
            self.assertEqual(set(s[0].labels), LABELS)
            self.assertEqual(s[0].value, st["counters"][key], fam)
        self.assertEqual(fams["umdev_dma_bytes"].unit, "bytes")
        (ref,) = samples_of(fams["umdev_refused_accesses"], uuid)
        self.assertEqual(ref.value, st["refused"])
        vec = {s.labels["irq"]: s.value
               for s in samples_of(fams["umdev_irq_vectors"], uuid)}
        self.assertEqual(vec, {q["name"]: q["count"] for q in st["irqs"]})
        for what in ("reads", "writes"):
            reg = {(s.labels["region"], s.labels["register"],
                    s.labels["offset"]): s.value
                   for s in samples_of(
                       fams["umdev_register_trapped_" + what], uuid)}
            want = {(r["name"], t["name"], "0x%x" % t["offset"]): t[what]
                    for r in st["regions"] for t in r["registers"]}
            self.assertEqual(reg, want, what)
            whole = {s.labels["region"]: s.value
                     for s in samples_of(
                         fams["umdev_region_trapped_" + what], uuid)}
            self.assertEqual(whole, {r["name"]: r[what]
                                     for r in st["regions"]})
        return st

    def test_openmetrics_all(self):
        r = self.ok("stats", "--all", "--openmetrics")
        self.assertTrue(r.out.endswith("# EOF\n"))
        fams = parse(r.out)
        seen = {s.labels["uuid"] for s in fams["umdev_instance"].samples}
        self.assertEqual(seen, set(self.running))
        self.assertNotIn(self.idle, seen)
        for u in self.running:
            with self.subTest(uuid=u):
                self.check_against_json(fams, u)
        busy = samples_of(fams["umdev_region_reads"], self.serial[0])
        self.assertGreater(busy[0].value, 0)
        up = {s.labels["uuid"]: s.value
              for s in fams["umdev_stats_up"].samples}
        self.assertEqual(up, {u: 1 for u in self.running})

    def test_openmetrics_one(self):
        u = self.serial[1]
        fams = parse(self.ok("stats", u, "--openmetrics").out)
        self.assertEqual({s.labels["uuid"]
                          for f in fams.values() for s in f.samples}, {u})
        self.check_against_json(fams, u)
        self.fails(1, "stats", self.idle, "--openmetrics",
                   says="is not running")

    def test_all_json_and_text(self):
        doc = self.js("stats", "--all")
        got = {s["uuid"]: s for s in doc["instances"]}
        self.assertEqual(set(got), set(self.running))
        for u, s in got.items():
            self.assertEqual(s["parent"], self.running[u]["parent"])
            self.assertIn("counters", s)
        text = self.ok("stats", "--all").out
        for u in self.running:
            self.assertIn(u, text)
        self.assertNotIn(self.idle, text)

    def test_worker_that_does_not_answer(self):
        """A stopped worker costs its own series, not the scrape: the
        others are there, it says umdev_stats_up 0, the exit status 1."""
        pid = self.running[self.accel]["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            r = self.ctl("stats", "--all", "--openmetrics",
                         timeout=harness.T_CMD + 5)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn(self.accel, r.err)
        fams = parse(r.out)
        up = {s.labels["uuid"]: s.value
              for s in fams["umdev_stats_up"].samples}
        self.assertEqual(up[self.accel], 0)
        self.assertEqual(samples_of(fams["umdev_vfio_user_messages"],
                                    self.accel), [])
        for u in self.serial:
            self.assertEqual(up[u], 1)
            self.check_against_json(fams, u)

    def test_usage(self):
        u = self.serial[0]
        self.fails(2, "stats", says="UUID or --all is required")
        self.fails(2, "stats", "--all", u, says="exclude each other")
        self.fails(2, "--json", "stats", "--all", "--openmetrics",
                   says="one scrape")
        self.fails(2, "stats", "--all", "--openmetrics", "--watch",
                   says="one scrape")
        self.fails(2, "info", u, "--openmetrics", says="unrecognized option")


if __name__ == "__main__":
    harness.main()
