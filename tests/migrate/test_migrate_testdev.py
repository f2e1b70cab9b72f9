"""Live migration of the test device under a running workload (issue 16).

Two umdev-testdev processes, each with a vfio-user socket and a manager
socket; umdev-vmm (tests/migrate/vmm.c) keeps DMA and interrupts going
on the first, moves the device to the second through the managers
(umdev_client_migrate(), in-process) and checks every byte, every
interrupt and the dirty log. Its self-tests show the checks can fail.

    python3 test_migrate_testdev.py --vmm P --testdev P [unittest args]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

BIN = {}
T_RUN = 60  # one umdev-vmm run; a healthy one takes well under a second
T_READY = 10


class Testdev:
    """An umdev-testdev serving DIR/NAME.sock with manager DIR/NAME.mgr."""

    def __init__(self, tmp, name):
        self.sock = os.path.join(tmp, name + ".sock")
        self.mgr = os.path.join(tmp, name + ".mgr")
        self.proc = subprocess.Popen(
            [BIN["testdev"], "--socket", self.sock, "--manage-socket", self.mgr])
        deadline = time.monotonic() + T_READY
        while not (os.path.exists(self.sock) and os.path.exists(self.mgr)):
            if self.proc.poll() is not None:
                raise AssertionError("umdev-testdev exited with %d"
                                     % self.proc.returncode)
            if time.monotonic() > deadline:
                raise AssertionError("umdev-testdev did not come up")
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(T_READY)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class MigrateTestdev(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="umdev-migrate-")
        self.src = Testdev(self.tmp, "src")
        self.dst = Testdev(self.tmp, "dst")

    def tearDown(self):
        codes = (self.src.stop(), self.dst.stop())
        shutil.rmtree(self.tmp, ignore_errors=True)
        # Both servers lived through the move and stopped cleanly.
        self.assertEqual(codes, (0, 0))

    def vmm(self, *extra, dst_mgr=None, dst_sock=None, units=200, at=100):
        self.at = at
        argv = [BIN["vmm"], "--workload", "testdev",
                "--socket", self.src.sock, "--units", str(units),
                "--migrate-after", str(at),
                "--migrate-to", dst_sock or self.dst.sock,
                "--manage", self.src.mgr,
                "--dest-manage", dst_mgr or self.dst.mgr] + list(extra)
        p = subprocess.run(argv, stdout=subprocess.PIPE, timeout=T_RUN,
                           text=True)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1, "one JSON line: %r" % p.stdout)
        out = json.loads(lines[0])
        sys.stderr.write("%s %s\n" % (" ".join(extra), lines[0]))
        return p.returncode, out

    def assert_moved(self, rc, out, units=200):
        self.assertEqual((rc, out["ok"], out["errors"]), (0, True, 0), out)
        self.assertTrue(out["migrated"])
        self.assertGreaterEqual(out["units"], units)
        self.assertGreater(out["units_dst"], 0)
        # Every unit's interrupt arrived once, its bytes checked twice.
        self.assertEqual(out["interrupts"], out["units"])
        self.assertEqual(out["dma_commands"], 3 * out["units"])
        self.assertEqual(out["memory_mismatch_bytes"], 0)
        self.assertEqual(out["false_negatives"], 0)
        # The device wrote during pre-copy, and the log saw it (unit k
        # writes guest memory from unit 1 on: unit 0 only reads).
        if out["pause_at_unit"] - self.at >= 2:
            self.assertGreater(out["pages_dirty"], 0)
        self.assertGreaterEqual(out["pages_reported"], out["pages_dirty"])
        # Reports during pre-copy (every 4 units) and one after the stop.
        if out["pause_at_unit"] - self.at >= 4:
            self.assertGreater(out["log_reports"], 1)
        else:
            self.assertGreaterEqual(out["log_reports"], 1)
        self.assertGreater(out["precopy_bytes"], 0)
        self.assertGreater(out["state_bytes"], 0)
        self.assertGreaterEqual(out["blackout_us"], out["transfer_us"])
        self.assertGreater(out["vm_pause_us"], 0)

    def test_msix(self):
        rc, out = self.vmm()
        self.assert_moved(rc, out)
        self.assertEqual(out["irq"], "msix")

    def test_intx(self):
        rc, out = self.vmm("--intx", "--seed", "7")
        self.assert_moved(rc, out)
        self.assertEqual(out["irq"], "intx")

    def test_move_at_the_first_unit(self):
        # Nothing of the guest's in BAR2 yet beyond unit 0's pattern, and
        # the pause before any pre-copy unit.
        rc, out = self.vmm("--precopy-units", "0", units=50, at=0)
        self.assert_moved(rc, out, units=50)

    def test_selftest_corrupt_fails(self):
        # One byte the device wrote, changed after the dirty report: the
        # byte checks must catch it.
        rc, out = self.vmm("--selftest", "corrupt")
        self.assertEqual(rc, 1, out)
        self.assertFalse(out["ok"])
        self.assertEqual(out["false_negatives"], 0)
        self.assertEqual(out["memory_mismatch_bytes"], 1)
        self.assertIn("guest memory differs", out["first_error"])

    def test_selftest_unlogged_fails(self):
        # A page written behind the dirty log's back: a false negative,
        # so the VMM refuses the attach and the move is aborted.
        rc, out = self.vmm("--selftest", "unlogged")
        self.assertEqual(rc, 1, out)
        self.assertFalse(out["ok"])
        self.assertEqual(out["false_negatives"], 1)
        self.assertFalse(out["migrated"])
        self.assertIn("dirty log missed", out["first_error"])

    def test_unreachable_destination_aborts_and_source_runs_on(self):
        # The attach fails after the source stopped: the driver aborts,
        # the source runs again and the workload finishes there intact.
        rc, out = self.vmm(dst_sock=os.path.join(self.tmp, "nowhere.sock"))
        self.assertEqual(rc, 3, out)
        self.assertEqual((out["ok"], out["migrated"]), (True, False))
        self.assertIn("abort", out)
        self.assertEqual(out["units_dst"], 0)
        self.assertEqual(out["interrupts"], out["units"])
        self.assertEqual(out["memory_mismatch_bytes"], 0)

    def test_vmm_that_cannot_pause_aborts(self):
        rc, out = self.vmm("--refuse", "stop")
        self.assertEqual(rc, 3, out)
        self.assertEqual((out["ok"], out["migrated"]), (True, False))
        self.assertIn("did not pause", out["abort"])
        self.assertEqual(out["interrupts"], out["units"])

    def test_vmm_that_cannot_attach_aborts_and_source_runs_on(self):
        # After the source stopped and its state went to the destination:
        # the source runs again with its BAR2 and registers, as the
        # pending unit's pattern read back out of it proves.
        rc, out = self.vmm("--refuse", "attach")
        self.assertEqual(rc, 3, out)
        self.assertEqual((out["ok"], out["migrated"]), (True, False))
        self.assertIn("could not attach", out["abort"])
        self.assertEqual(out["false_negatives"], 0)
        self.assertGreater(out["pages_dirty"], 0)
        self.assertEqual(out["interrupts"], out["units"])
        self.assertEqual(out["memory_mismatch_bytes"], 0)

    def test_no_destination_manager_aborts_before_stopping(self):
        rc, out = self.vmm(dst_mgr=os.path.join(self.tmp, "nowhere.mgr"))
        self.assertEqual(rc, 3, out)
        self.assertEqual((out["ok"], out["migrated"]), (True, False))
        self.assertIn("nowhere.mgr", out["abort"])
        self.assertEqual(out["vm_pause_us"], 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--testdev", required=True)
    args, rest = ap.parse_known_args()
    BIN.update(vmm=args.vmm, testdev=args.testdev)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
