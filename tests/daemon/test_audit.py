"""umdevctl audit and umdevctl stats (issue 6), and the control requests
under them (docs/CONTROL.md: `audit`, `stats`).

audit: the in-place criteria of serial-2port pass and the rest are "not
run" (exit 1); with --conformance the kit runs against a private
transient instance and every criterion passes (exit 0), leaving no
instance behind; --json prints the audit document; an unknown type is a
refusal naming it. stats: the per-register trap counts rise by exactly the
accesses daemon-region-client made, and a refused access is counted.

    python3 test_audit.py --umdevd P --umdevctl P --probe P --req-client P \
        --region-client P --conform P [unittest arguments]
"""

import json
import os
import re
import subprocess

import harness
from harness import DaemonTestCase

T = "serial-2port"
CRITERIA = [1, 2, 3, 4, 5, 6]
IN_PLACE = {1, 3}


class Audit(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.small_asan_quarantine()
        self.daemon()

    def no_leftovers(self):
        """Nothing the audit made stays behind: no private directory, no
        instance, no socket."""
        left = [n for n in os.listdir(self.d.rundir)
                if n.startswith(".audit-")]
        self.assertEqual(left, [], "audit directories left in RUNDIR")
        self.assertEqual(self.instances(), {})
        self.assertEqual(self.sockets_in_rundir(), [])

    def test_in_place(self):
        r = self.ctl("--json", "audit", T)
        self.assertEqual(r.rc, 1, str(r))  # criteria not run: not a pass
        doc = r.json()
        self.assertEqual(sorted(doc), ["criteria", "profile", "type",
                                       "verdict"], str(r))
        self.assertEqual(doc["type"], T)
        self.assertEqual(doc["verdict"], "incomplete")
        self.assertEqual([c["id"] for c in doc["criteria"]], CRITERIA)
        for c in doc["criteria"]:
            self.assertEqual(sorted(c), ["evidence", "id", "name",
                                         "verdict"])
            want = "pass" if c["id"] in IN_PLACE else "not run"
            self.assertEqual(c["verdict"], want, c)
            self.assertTrue(c["evidence"], c)
        prof = doc["profile"]
        self.assertEqual(prof["data_path"]["kind"], "pio")
        self.assertEqual([g["name"] for g in prof["regions"]],
                         ["BAR0", "BAR1"])
        for g in prof["regions"]:
            self.assertEqual(g["mmap"], [])
            self.assertEqual(len(g["trapped"]), 8)
            for t in g["trapped"]:
                self.assertEqual((t["reads"], t["writes"]), (0, 0))
                self.assertTrue(t["purpose"])
        self.assertEqual(prof["config"]["size"], 256)
        self.assertIn("INTX", [q["name"] for q in prof["irqs"]])
        self.no_leftovers()
        # The text form: the profile, then a verdict per criterion.
        r = self.ctl("audit", T)
        self.assertEqual(r.rc, 1, str(r))
        for s in ("audit of serial-2port (parent serial)",
                  "0x0000 RBR_THR_DLL", "data path, volatile",
                  "0x0007 SCR", "config space: 256 bytes",
                  "1. pass", "3. pass", "5. not run",
                  "verdict: incomplete"):
            self.assertIn(s, r.out, str(r))

    def test_conformance(self):
        r, doc = self.audit_passes(T)
        by_id = {c["id"]: c["evidence"] for c in doc["criteria"]}
        self.assertIn("measured:", by_id[2])
        self.assertIn("all 6 checks passed", by_id[5])
        # Each check said on stderr as it started, in order, then how
        # it ended; stdout held the JSON alone.
        starts = re.findall(r"^umdev-conform: \[(\d)/6\] (\w+) \.\.\.$",
                            r.err, re.M)
        self.assertEqual(starts, [(str(i + 1), n) for i, n in enumerate(
            ("protocol", "config", "reset", "datapath", "fuzz", "leaks"))],
            r.err)
        self.assertEqual(len(re.findall(r"^umdev-conform: \[\d/6\] \w+: "
                                        r"pass \(", r.err, re.M)), 6, r.err)
        self.no_leftovers()

    def test_conformance_without_kit(self):
        # Run from a copy with no umdev-conform beside it and no
        # UMDEV_CONFORM: a clear error, nothing started.
        r = self.ctl("audit", T, "--conformance",
                     env={"UMDEV_CONFORM": "/nonexistent/umdev-conform"})
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("umdev-conform is neither next to umdevctl", r.err)
        self.no_leftovers()

    def test_errors(self):
        self.refused("ENOENT", "audit", "nope-1x",
                     says="unknown type 'nope-1x'")
        self.fails(2, "audit", says="TYPE is required")
        self.fails(2, "audit", T, "--fuzz-seconds", "2",
                   says="--fuzz-seconds needs --conformance")
        self.fails(2, "audit", T, "--conformance", "--fuzz-seconds", "0")
        with self.d.connect() as c:
            bad = [{"name": "x"}, [], [{"name": 1, "pass": True}], "s"]
            for kit in bad:
                resp = c.call("audit", {"type": T, "conformance": kit})
                self.assertFalse(resp["ok"], resp)
                self.assertEqual(resp["error"]["code"], "EINVAL", resp)
            resp = c.call("audit", {"type": T, "what": 1})
            self.assertEqual(resp["error"]["code"], "EINVAL", resp)
            # The connection still answers, and a kit result that failed
            # a check fails criterion 5 with the check's name.
            resp = c.call("audit", {"type": T, "conformance": [
                {"name": "reset", "pass": False, "evidence": "differs"}]})
            self.assertTrue(resp["ok"], resp)
            doc = resp["result"]["audit"]
            self.assertEqual(doc["verdict"], "fail")
            five = [k for k in doc["criteria"] if k["id"] == 5][0]
            self.assertEqual(five["verdict"], "fail")
            self.assertIn("reset", five["evidence"])
            self.assertFalse(resp["result"]["all_pass"])
        # audit builds a device: read-only peers may not.
        self.refused("EPERM", "audit", T,
                     user=harness.as_user(harness.NOBODY.pw_uid,
                                          harness.NOBODY.pw_gid))


class Stats(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()
        self.inst = self.start_instance("-p", "serial", "-t", T)
        self.u = self.inst["uuid"]

    def drive(self, *ops):
        p = subprocess.run([harness.BIN["region_client"], self.inst["socket"],
                            "5000"] + list(ops), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode().split("\n")[:-1]

    def regs(self, st):
        return {(g["name"], t["name"]): (t["reads"], t["writes"])
                for g in st["regions"] for t in g["registers"]}

    def test_counts_follow_accesses(self):
        before = self.js("stats", self.u)
        self.assertEqual(sorted(before), ["counters", "irqs", "parent",
                                          "refused", "regions", "state",
                                          "type", "uuid"])
        self.assertEqual(before["refused"], 0)
        self.assertTrue(all(v == (0, 0) for v in
                            self.regs(before).values()))
        out = self.drive("r0:3:1", "w0:7:1:0x5a", "r0:7:1", "r1:7:1",
                         "r0:0:2", "w1:4:4:0")
        self.assertEqual(out[2], "ok 0x5a", out)
        self.assertEqual(out[4:], ["err EACCES", "err EACCES"], out)
        after = self.js("stats", self.u)
        regs = self.regs(after)
        want = {("BAR0", "LCR"): (1, 0), ("BAR0", "SCR"): (1, 1),
                ("BAR1", "SCR"): (1, 0)}
        for k, v in regs.items():
            self.assertEqual(v, want.get(k, (0, 0)), k)
        self.assertEqual(after["refused"], 2)
        sums = {g["name"]: (g["reads"], g["writes"])
                for g in after["regions"]}
        self.assertEqual(sums, {"BAR0": (2, 1), "BAR1": (1, 0)})
        c0, c1 = before["counters"], after["counters"]
        self.assertEqual(c1["errors"] - c0["errors"], 2)
        self.assertEqual(c1["attaches"] - c0["attaches"], 1)
        # info summarises the same counters.
        r = self.ok("info", self.u)
        self.assertIn("traps: 3 reads, 1 writes on 16 declared registers; "
                      "2 refused", r.out)
        # Text: the accessed registers, the rest summed up.
        r = self.ok("stats", self.u)
        self.assertIn("refused 2", r.out)
        self.assertIn("BAR0 trapped: reads 2, writes 1", r.out)
        self.assertIn("(6 registers not accessed)", r.out)

    def test_watch(self):
        r = self.ctl("--json", "stats", self.u, "--watch", "0.1",
                     "--count", "3")
        self.assertEqual(r.rc, 0, str(r))
        lines = r.out.strip().split("\n")
        self.assertEqual(len(lines), 3, str(r))
        for line in lines:
            self.assertEqual(json.loads(line)["uuid"], self.u)
        # Text: each sample numbered; changes show as deltas.
        p = self.spawn([harness.BIN["umdevctl"], "--control",
                        self.d.control, "stats", self.u, "--watch", "1.5",
                        "--count", "3"])
        lines = harness.Lines(p)
        self.assertEqual(lines.next(), "--- sample 1")
        # Sample 1 ends with BAR1's summary line.
        while not lines.next().startswith("  BAR1 trapped"):
            pass
        lines.next()
        self.drive("w0:7:1:1", "w0:7:1:2")
        rest = lines.rest()
        self.assertEqual(p.wait(harness.T_CMD), 0)
        self.assertEqual(rest[:2], ["", "--- sample 2"], rest)
        self.assertIn("--- sample 3", rest)
        # The two writes land in sample 2, or on a slow machine one of
        # them in sample 3: SCR ends at 2, and its deltas add up to 2.
        scr = re.findall(r"(?m)^    SCR +reads 0, writes (\d+)(?: \(\+(\d+)\))?$",
                         "\n".join(rest))
        self.assertTrue(scr, rest)
        self.assertEqual(scr[-1][0], "2", rest)
        self.assertEqual(sum(int(d or 0) for _, d in scr), 2, rest)

    def test_errors(self):
        self.fails(2, "stats", says="UUID is required")
        self.fails(2, "stats", self.u, "--count", "2",
                   says="--count needs --watch")
        self.fails(2, "stats", self.u, "--watch", "0")
        self.refused("ENOENT", "stats", harness.new_uuid())
        self.ok("stop", self.u)
        self.refused("ENOENT", "stats", self.u)


if __name__ == "__main__":
    harness.main(programs=("region-client", "conform"))
