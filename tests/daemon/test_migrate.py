"""Live migration between two umdevd with a VMM attached (issue 16).

umdev-vmm (tests/migrate/vmm.c) plays the VMM: it attaches to an
instance of the source daemon, keeps a workload running on it, and runs
`umdevctl migrate UUID --to DEST-CONTROL --handshake` as its migration
command, speaking the handshake on its stdin and stdout (docs/CLI.md
"migrate"). It pauses at "stop", attaches to the destination at
"attach", resumes there at "done", and proves that nothing was lost,
doubled or corrupted: every byte each way on a serial port with its host
peer moving too, every accel descriptor on every queue 32 deep with its
result and its interrupt, and the dirty log against a shadow of guest
memory. A failed move must leave the guest running on the source with
nothing lost; the VMM's self-test must fail.

    python3 test_migrate.py --umdevd P --umdevctl P --probe P \
        --req-client P --vmm P [Accel|Serial|Nvme] [unittest arguments]
"""

import json
import os
import shlex
import subprocess
import sys

import harness
from harness import Daemon, DaemonTestCase

T_VMM = 40  # one umdev-vmm run, migration included


class MigrateTestCase(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.src = self.daemon_in("src")
        self.dst = self.daemon_in("dst")
        self.d = self.src

    def daemon_in(self, name):
        tmp = os.path.join(self.tmp, name)
        os.mkdir(tmp)
        os.chmod(tmp, 0o755)
        d = Daemon(tmp)
        self.daemons.append(d)
        d.start()
        return d

    def migrate_cmd(self, uuid, to=None):
        return " ".join(shlex.quote(a) for a in (
            harness.BIN["umdevctl"], "--control", self.src.control,
            "migrate", uuid, "--to", to or self.dst.control, "--handshake"))

    def vmm(self, workload, inst, *extra, to=None, units=200, at=80):
        argv = [harness.BIN["vmm"], "--workload", workload,
                "--socket", inst["socket"], "--units", str(units),
                "--migrate-after", str(at),
                "--migrate-cmd", self.migrate_cmd(inst["uuid"], to)]
        argv += [str(a) for a in extra]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=T_VMM)
        lines = p.stdout.strip().splitlines()
        ctx = "umdev-vmm %s: rc %d\n%s%s\nsource log:\n%s\ndest log:\n%s" % (
            workload, p.returncode, p.stdout, p.stderr, self.src.log(),
            self.dst.log())
        self.assertEqual(len(lines), 1, ctx)
        out = json.loads(lines[0])
        sys.stderr.write("%s %s\n" % (" ".join(map(str, extra)), lines[0]))
        return p.returncode, out, ctx

    def assert_moved(self, rc, out, ctx):
        self.assertEqual((rc, out["ok"], out["migrated"]), (0, True, True),
                         ctx)
        self.assertGreater(out["units_dst"], 0, ctx)
        self.assertEqual(out["false_negatives"], 0, ctx)
        self.assertEqual(out["memory_mismatch_bytes"], 0, ctx)
        self.assertGreater(out["state_bytes"], 0, ctx)
        self.assertGreaterEqual(out["blackout_us"], out["transfer_us"], ctx)

    def assert_moved_instance(self, uuid):
        # The source instance was stopped, the destination's runs.
        self.d = self.src
        self.wait_state(uuid, None)
        self.d = self.dst
        self.assertEqual(self.instance(uuid)["state"], "running")

    def host_end(self, d, uuid):
        return os.path.join(d.rundir, uuid + ".port0")

    def start_serial(self):
        self.d = self.src
        return self.start_instance("-p", "serial", "-t", "serial-2port")

    def start_accel(self, typ="accel-4wq"):
        self.d = self.src
        return self.start_instance("-p", "accel", "-t", typ)


class Serial(MigrateTestCase):

    def test_moves_under_traffic(self):
        i = self.start_serial()
        u = i["uuid"]
        rc, out, ctx = self.vmm("serial", i,
                                "--host-src", self.host_end(self.src, u),
                                "--host-dst", self.host_end(self.dst, u))
        self.assert_moved(rc, out, ctx)
        self.assertGreater(out["host_to_guest"], 200 * 32, ctx)
        self.assertGreater(out["guest_to_host"], 200 * 32, ctx)
        self.assertGreater(out["interrupts"], 0, ctx)
        self.assert_moved_instance(u)


    def test_vmm_that_cannot_attach_aborts_and_source_runs_on(self):
        # The source stopped (what its host end had sent and the UART
        # had not received went into its state), then the move failed:
        # the source runs again and every byte still arrives, once.
        i = self.start_serial()
        u = i["uuid"]
        rc, out, ctx = self.vmm("serial", i, "--refuse", "attach",
                                "--host-src", self.host_end(self.src, u),
                                "--host-dst", self.host_end(self.dst, u))
        self.assertEqual((rc, out["ok"], out["migrated"]), (3, True, False),
                         ctx)
        self.assertIn("could not attach", out["abort"], ctx)
        self.assertGreater(out["host_to_guest"], 200 * 32, ctx)
        self.assertGreater(out["guest_to_host"], 200 * 32, ctx)
        self.d = self.src
        self.assertEqual(self.instance(u)["state"], "running")


class Nvme(MigrateTestCase):

    def start_nvme(self):
        # The data is the backing file, which both daemons must serve:
        # one directory for both (docs/CLI.md "migrate").
        shared = os.path.join(self.tmp, "shared")
        os.makedirs(shared, exist_ok=True)
        self.d = self.src
        return self.start_instance("-p", "nvme", "-t", "nvme-1q",
                                   "--attr", "size=16M",
                                   "--attr", "dir=" + shared)

    def test_moves_under_io(self):
        i = self.start_nvme()
        rc, out, ctx = self.vmm("nvme", i, "--depth", 16)
        self.assert_moved(rc, out, ctx)
        self.assertEqual(out["slots"], 16, ctx)
        self.assertGreater(out["reads"], 0, ctx)
        self.assertEqual(out["bytes_checked"], out["reads"] * 8192, ctx)
        # The controller wrote read data, completions and EventIdx
        # during pre-copy, and the log saw every page of it.
        self.assertGreater(out["pages_dirty"], 0, ctx)
        self.assert_moved_instance(i["uuid"])

    def test_selftest_corrupt_fails(self):
        i = self.start_nvme()
        rc, out, ctx = self.vmm("nvme", i, "--depth", 16,
                                "--selftest", "corrupt")
        self.assertEqual((rc, out["ok"]), (1, False), ctx)
        # A Read the controller finished before the stop, caught when
        # the guest consumed it, or a completion entry's CID.
        self.assertRegex(out["first_error"],
                         "data read at LBA \\d+ differs|a completion for "
                         "command \\d+ of SQ 1, which is not outstanding",
                         ctx)


class Accel(MigrateTestCase):

    def test_moves_under_load(self):
        """Every accel type, each queue 32 deep when the source stops."""
        for typ, queues in (("accel-1wq", 1), ("accel-2wq", 2),
                            ("accel-4wq", 4)):
            with self.subTest(type=typ):
                i = self.start_accel(typ)
                rc, out, ctx = self.vmm("accel", i, "--depth", 32)
                self.assert_moved(rc, out, ctx)
                self.assertEqual(out["queues"], queues, ctx)
                self.assertEqual(out["interrupts"], out["descriptors"], ctx)
                # The engine wrote guest memory during pre-copy, and the
                # log saw every page of it.
                self.assertGreater(out["pages_dirty"], 0, ctx)
                self.assert_moved_instance(i["uuid"])

    def test_selftest_corrupt_fails(self):
        i = self.start_accel()
        rc, out, ctx = self.vmm("accel", i, "--selftest", "corrupt")
        self.assertEqual((rc, out["ok"]), (1, False), ctx)
        # Caught by the byte check of the descriptor whose output it was.
        self.assertRegex(out["first_error"],
                         r"queue \d+ descriptor \d+ .*: byte \d+ of \d+ "
                         r"at 0x[0-9a-f]+ is 0x[0-9a-f]{2}, expected", ctx)

    def test_vmm_that_cannot_attach_aborts_and_source_runs_on(self):
        # The source stopped with descriptors in flight, its state went
        # to the destination, then the VMM could not attach: the source
        # runs again, finishes them all, and the destination's instance
        # is gone.
        i = self.start_accel()
        rc, out, ctx = self.vmm("accel", i, "--refuse", "attach")
        self.assertEqual((rc, out["ok"], out["migrated"]), (3, True, False),
                         ctx)
        self.assertIn("could not attach", out["abort"], ctx)
        self.assertEqual(out["false_negatives"], 0, ctx)
        self.assertEqual(out["interrupts"], out["descriptors"], ctx)
        self.assertEqual(out["memory_mismatch_bytes"], 0, ctx)
        self.d = self.src
        self.assertEqual(self.instance(i["uuid"])["state"], "running")
        self.d = self.dst
        self.wait_state(i["uuid"], None)

    def test_failed_move_runs_on_at_the_source(self):
        # A destination that cannot be reached: umdevctl aborts before the
        # stop, and the guest goes on at the source, nothing lost.
        i = self.start_accel()
        rc, out, ctx = self.vmm("accel", i,
                                to=os.path.join(self.tmp, "nowhere"))
        self.assertEqual((rc, out["ok"], out["migrated"]), (3, True, False),
                         ctx)
        self.assertIn("cannot reach the destination", out["abort"], ctx)
        self.assertEqual(out["interrupts"], out["descriptors"], ctx)
        self.d = self.src
        self.assertEqual(self.instance(i["uuid"])["state"], "running")


if __name__ == "__main__":
    harness.main(programs=("vmm",))
