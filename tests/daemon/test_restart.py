"""Restarting an instance's worker under a running VMM (issue 17).

umdev-vmm (tests/migrate/vmm.c) plays the VMM, attached to an instance
and running its workload without migrating, verifying every descriptor
(accel: result and interrupt; nvme: every read's data) to the end. The
test runs `umdevctl restart` several times meanwhile: each must give
the instance a new worker pid and report its blackout, and the VMM must
pass, so nothing was lost, doubled or reset across the swaps. A new
worker that dies (a test hook) leaves the old one serving, the VMM
passing; a serial instance is refused with ENOTSUP.

    python3 test_restart.py --umdevd P --umdevctl P --probe P \
        --req-client P --vmm P [--test-hooks] [unittest arguments]
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import harness
from harness import DaemonTestCase

T_VMM = 90  # one umdev-vmm run, all the restarts included
RESTARTS = 5


class RestartTestCase(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()

    def vmm_start(self, workload, inst, *extra):
        """umdev-vmm working until vmm_finish() asks it to end (SIGUSR1):
        a run of a fixed number of units could end before the restarts
        do on a fast machine, or take too long on a slow one."""
        argv = [harness.BIN["vmm"], "--workload", workload,
                "--socket", inst["socket"], "--until-signal"]
        argv += [str(a) for a in extra]
        return self.spawn(argv)

    def vmm_finish(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGUSR1)
        out, err = p.communicate(timeout=T_VMM)
        ctx = "umdev-vmm: rc %d\n%s%s\nlog:\n%s" % (
            p.returncode, out.decode(), err.decode(), self.d.log())
        lines = out.decode().strip().splitlines()
        self.assertEqual(len(lines), 1, ctx)
        res = json.loads(lines[0])
        self.assertEqual((p.returncode, res["ok"], res["errors"]),
                         (0, True, 0), ctx)
        return res, ctx

    def attached(self, uuid):
        return "client_pid" in json.dumps(self.js("info", uuid))

    def pid(self, uuid):
        return self.instance(uuid)["pid"]

    def restart(self, uuid):
        r = self.ok("--json", "restart", uuid)
        res = r.json()
        self.assertEqual(res["uuid"], uuid, str(r))
        self.assertGreater(res["blackout_us"], 0, str(r))
        return res

    def restarts_under_load(self, workload, inst, *extra):
        u = inst["uuid"]
        p = self.vmm_start(workload, inst, *extra)
        # The VMM is attached and working before the first restart.
        self.wait_for("the VMM to attach",
                      lambda: self.attached(u) or p.poll() is not None)
        self.assertIsNone(p.poll(), "the VMM ended before any restart")
        blackouts = []
        for n in range(RESTARTS):
            before = self.pid(u)
            res = self.restart(u)
            self.assertEqual(res["old_pid"], before)
            self.assertNotEqual(res["pid"], before)
            self.assertEqual(self.pid(u), res["pid"])
            self.assertEqual(self.instance(u)["state"], "running")
            # It exits once it let go (tearing its stopped device down
            # takes a moment); umdevd reaps it.
            self.wait_for("the old worker %d to exit" % before,
                          lambda: not harness.alive(before))
            blackouts.append(res["blackout_us"])
            self.assertIsNone(p.poll(), "the VMM ended during restart %d"
                              % (n + 1))
            time.sleep(0.2)
        sys.stderr.write("%s blackouts (us): %s\n" % (workload, blackouts))
        res, ctx = self.vmm_finish(p)
        self.assertEqual(self.instance(u)["state"], "running")
        # The human form says what it did.
        r = self.ok("restart", u)
        self.assertIn("restarted: worker pid", r.out)
        self.assertIn("blackout", r.out)
        return res, ctx


class Accel(RestartTestCase):

    def test_restarts_under_load(self):
        i = self.start_instance("-p", "accel", "-t", "accel-4wq")
        res, ctx = self.restarts_under_load("accel", i)
        self.assertGreater(res["units"], 0, ctx)


class Recovery(RestartTestCase):
    """A new worker that fails, and a restarted worker's record."""

    def test_failing_new_worker_leaves_the_old_serving(self):
        if not harness.FLAGS["test_hooks"]:
            self.fail("umdevd was built without UMDEV_TEST_HOOKS")
        self.d.terminate()
        u = harness.new_uuid()
        os.environ["UMDEV_TEST_RESTORE_FAIL"] = u
        try:
            self.daemon()
        finally:
            del os.environ["UMDEV_TEST_RESTORE_FAIL"]
        i = self.start_instance("-u", u, "-p", "accel", "-t", "accel-4wq")
        p = self.vmm_start("accel", i)
        self.wait_for("the VMM to attach",
                      lambda: self.attached(u) or p.poll() is not None)
        self.assertIsNone(p.poll(), "the VMM ended before any restart")
        before = self.pid(u)
        for _ in range(2):
            e = self.refused("EIO", "restart", u,
                             says=("test hook: dying before the restore",
                                   "restart of " + u + " failed"))
            self.assertEqual(self.pid(u), before, e)
            self.assertEqual(self.instance(u)["state"], "running")
        # Nothing of the new worker is left; the record is the old one's.
        workers = os.path.join(self.d.rundir, "workers")
        self.assertFalse(os.path.exists(os.path.join(workers,
                                                     u + ".adopt.new")))
        with open(os.path.join(workers, u + ".json")) as f:
            self.assertEqual(json.load(f)["pid"], before)
        self.vmm_finish(p)

    def test_next_umdevd_adopts_the_new_worker(self):
        # The record names the restarted worker (pid, start time, token,
        # adoption socket): a umdevd started after this one was killed
        # takes it over, and it serves.
        i = self.start_instance("-p", "accel", "-t", "accel-4wq")
        u = i["uuid"]
        res = self.restart(u)
        rec = os.path.join(self.d.rundir, "workers", u + ".json")
        with open(rec) as f:
            self.assertEqual(json.load(f)["pid"], res["pid"])
        self.assertFalse(os.path.exists(os.path.join(
            self.d.rundir, "workers", u + ".adopt.new")))
        self.d.kill9()
        self.daemon()
        self.assertEqual(self.instance(u)["state"], "running")
        self.assertEqual(self.pid(u), res["pid"])
        self.probe(i["socket"])
        # And it can be restarted again under this umdevd.
        again = self.restart(u)
        self.assertEqual(again["old_pid"], res["pid"])
        self.probe(i["socket"])

    def test_new_worker_runs_the_installed_file(self):
        # An upgrade replaces umdevd's file under the running daemon; a
        # restart runs what is there now (the path umdevd was started
        # from, not the image it runs). Here the file is replaced by a
        # wrapper that leaves a mark, then runs the real binary.
        self.d.terminate()
        bindir = os.path.join(self.tmp, "bin")
        os.mkdir(bindir)
        exe = os.path.join(bindir, "umdevd")
        mark = os.path.join(self.tmp, "exec-mark")
        shutil.copy(harness.BIN["umdevd"], exe)
        real = harness.BIN["umdevd"]
        harness.BIN["umdevd"] = exe
        try:
            self.daemon()
        finally:
            harness.BIN["umdevd"] = real
        i = self.start_instance("-p", "accel", "-t", "accel-4wq")
        tmp = exe + ".new"
        with open(tmp, "w") as f:
            f.write("#!/bin/sh\necho \"$@\" > %s\nexec %s \"$@\"\n" %
                    (shlex.quote(mark), shlex.quote(real)))
        os.chmod(tmp, 0o755)
        os.rename(tmp, exe)  # as a package manager replaces it
        res = self.restart(i["uuid"])
        with open(mark) as f:
            argv = f.read().split()
        self.assertEqual(argv[0], "--restore-worker", argv)
        self.assertIn("--rundir", argv)
        self.assertEqual(self.pid(i["uuid"]), res["pid"])
        self.probe(i["socket"])


class Nvme(RestartTestCase):

    def test_restarts_under_io(self):
        i = self.start_instance("-p", "nvme", "-t", "nvme-1q",
                                "--attr", "size=16M")
        res, ctx = self.restarts_under_load("nvme", i, "--depth", 16)
        self.assertGreater(res["reads"], 0, ctx)
        self.assertEqual(res["bytes_checked"], res["reads"] * 8192, ctx)


class Serial(RestartTestCase):

    def test_refused(self):
        i = self.start_instance("-p", "serial", "-t", "serial-2port")
        before = self.pid(i["uuid"])
        self.refused("ENOTSUP", "restart", i["uuid"],
                     says=("host-end sockets", "not carried"))
        self.assertEqual(self.pid(i["uuid"]), before)
        self.assertEqual(self.instance(i["uuid"])["state"], "running")

    def test_all_and_by_type(self):
        # --all restarts what can be (an idle accel instance: the
        # handover carries its listening socket alone) and skips serial;
        # -t names a type, and naming serial's is a failure.
        s = self.start_instance("-p", "serial", "-t", "serial-2port")
        a = self.start_instance("-p", "accel", "-t", "accel-4wq")
        spid, apid = self.pid(s["uuid"]), self.pid(a["uuid"])
        r = self.ok("restart", "--all")
        self.assertIn(a["uuid"] + ": restarted: worker pid", r.out)
        self.assertIn("skipped: instance " + s["uuid"], r.err)
        self.assertEqual(self.pid(s["uuid"]), spid)
        self.assertNotEqual(self.pid(a["uuid"]), apid)
        apid = self.pid(a["uuid"])
        res = self.js("restart", "-t", "4wq")
        self.assertEqual([x["old_pid"] for x in res], [apid])
        self.assertEqual(self.pid(a["uuid"]), res[0]["pid"])
        self.fails(1, "restart", "-t", "serial-2port", says="not carried")
        self.assertEqual(self.pid(s["uuid"]), spid)
        self.fails(2, "restart", "--all", "-t", "4wq")
        self.fails(2, "restart", "--all", a["uuid"])
        # The idle one still serves after its restarts.
        self.probe(a["socket"])


if __name__ == "__main__":
    harness.main(programs=("vmm",), flags=("test-hooks",))
