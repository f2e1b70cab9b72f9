"""The daemon-served access path (lib/access over accel_access_daemon).

umdev-access-drive opens a queue of umdevd's accel parent: a leased
transient accel-1wq instance that lives as long as the control connection
that started it. Checked here:

  * a queue held by a host process counts in available_instances, is
    listed with the lessee's pid, carries verified traffic (every
    operation at several sizes, faults, the eventfd, a load run) and is
    returned when the process closes it;
  * kill -9 of the process returns the queue within a few seconds;
  * a leased worker that dies leaves the lessee with errors, not a hang,
    and the queue still comes back;
  * two subdevices and an access queue run at once on the parent, each
    with its own data;
  * a full pool refuses the open with ENOSPC; `lease` is refused unless
    the start is transient and the value a boolean.

    python3 test_access.py --umdevd P --umdevctl P --probe P --req-client P \
        --access-drive P --accel-client P [unittest arguments]
"""

import os
import signal
import subprocess

import harness
from harness import DaemonTestCase, Lines, new_uuid

POOL = 16
T_RUN = 60  # one drive run, sanitized builds included


class AccessTestCase(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()

    def drive(self, *args):
        """Start umdev-access-drive against this daemon."""
        return self.spawn([harness.BIN["access_drive"], "--control", self.d.control,
                           "--timeout", "20000", *args])

    def finish(self, p, rc=0):
        """Wait for @p; assert its exit status; return its stdout lines."""
        try:
            out, err = p.communicate(timeout=T_RUN)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        out, err = out.decode(), err.decode()
        self.assertEqual(p.returncode, rc,
                         "umdev-access-drive exited %s:\n%s%s\ndaemon log:\n"
                         "%s" % (p.returncode, out, err, self.d.log()))
        return out.splitlines()

    def holding(self, seconds):
        """Start a drive that holds its queue; return it and its Lines
        once it says so (it must not exit before)."""
        p = self.drive("--seconds", seconds, "--hold")
        out = Lines(p)
        while True:
            ln = out.next(T_RUN)
            self.assertIsNotNone(ln, "exited early: %s" % out.seen)
            if ln == "holding":
                return p, out

    def free_1wq(self):
        return {t["name"]: t["available_instances"]
                for t in self.js("types", "-p", "accel")["types"]}["accel-1wq"]

    def leased(self):
        return [i for i in self.instances().values() if "lease_pid" in i]

    def assert_traffic(self, lines):
        for check in ("check memmove compare crc32c fill sizes=7 skews=2 ok",
                      "check fault addr=unregistered ok",
                      "check unregister ok", "check eventfd ok"):
            self.assertIn(check, lines)
        load = [ln for ln in lines if ln.startswith("load ")]
        self.assertEqual(len(load), 1, lines)
        f = dict(kv.split("=") for kv in load[0].split()[1:])
        self.assertEqual(f["errors"], "0", load)
        self.assertGreater(int(f["ops"]), 100, load)
        q = [ln for ln in lines if ln.startswith("queue ")]
        qf = dict(kv.split("=") for kv in q[0].split()[1:])
        # The engine saw at least what the process reaped; what failed is
        # exactly the mismatches, faults and the unregistered range the
        # checks provoke (14 + 2 + 1).
        self.assertGreaterEqual(int(qf["completed"]), int(f["ops"]), q)
        self.assertEqual(qf["failed"], "17", q)
        self.assertGreaterEqual(int(qf["notifies"]), 1, q)
        return f


class Lease(AccessTestCase):

    def test_held_and_returned(self):
        self.assertEqual(self.free_1wq(), POOL)
        p, out = self.holding("0.5")
        self.assertEqual(self.free_1wq(), POOL - 1)
        held = self.leased()
        self.assertEqual(len(held), 1, held)
        i = held[0]
        self.assertEqual((i["parent"], i["type"], i["state"],
                          i["lease_pid"]),
                         ("accel", "accel-1wq", "running", p.pid), i)
        self.assertIn("lease pid", self.ok("list").out)
        ep = self.js("info", i["uuid"])["device"]["endpoints"]
        self.assertGreater(ep["completed"], 100, ep)
        self.assertEqual(ep["failed"], 17, ep)
        # Not persistent: a lease is never written to the state directory.
        self.assertEqual(self.instances(defined=True), {})
        p.send_signal(signal.SIGUSR1)
        lines = out.seen + self.finish(p)
        self.assert_traffic(lines)
        self.assertEqual(lines[-1], "closed")
        self.assertIsNone(self.lookup(i["uuid"]))
        self.assertEqual(self.free_1wq(), POOL)
        self.assertEqual(self.sockets_in_rundir(), [])

    def test_killed_lessee(self):
        p, _ = self.holding("0")
        i = self.leased()[0]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(harness.T_CMD)
        self.wait_state(i["uuid"], None)
        self.assertEqual(self.free_1wq(), POOL)
        self.assertIn("%s: lessee (pid %d) is gone" % (i["uuid"], p.pid),
                      self.d.log())
        self.assertFalse(harness.alive(i["pid"]), "worker still running")
        self.assertEqual(self.sockets_in_rundir(), [])

    def test_worker_dies(self):
        p, _ = self.holding("0")
        i = self.leased()[0]
        os.kill(i["pid"], signal.SIGKILL)
        f = self.wait_state(i["uuid"], "failed")
        self.assertIn("killed by signal 9", f["exit"]["reason"])
        self.assertEqual(self.free_1wq(), POOL)
        # The process still closes cleanly; the failed lease is forgotten.
        p.send_signal(signal.SIGUSR1)
        self.assertEqual(self.finish(p)[-1], "closed")
        self.wait_state(i["uuid"], None)
        self.assertEqual(self.free_1wq(), POOL)

    def test_with_subdevices(self):
        a = self.start_instance("-p", "accel", "-t", "accel-2wq")
        b = self.start_instance("-p", "accel", "-t", "accel-1wq")
        p = self.drive("--seconds", "3", "--depth", "16", "--size", "8192")
        runs = [subprocess.Popen([harness.BIN["accel_client"], s["socket"], str(k),
                                  "30000"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
                for s, k in ((a, 2), (b, 1))]
        for r, k in zip(runs, (2, 1)):
            o, e = r.communicate(timeout=T_RUN)
            self.assertEqual(r.returncode, 0, o.decode() + e.decode())
            self.assertEqual(o.decode().splitlines()[-1],
                             "done completed=%d" % (2 * k + 1))
        self.assert_traffic(self.finish(p))
        # Each subdevice counted only its own work.
        for s, k in ((a, 2), (b, 1)):
            ep = self.js("info", s["uuid"])["device"]["endpoints"]
            self.assertEqual((ep["completed"], ep["failed"]),
                             (2 * k + 1, 1), ep)
        self.assertEqual(self.free_1wq(), POOL - 3)
        self.ok("stop", a["uuid"])
        self.ok("stop", b["uuid"])
        self.assertEqual(self.free_1wq(), POOL)


class Refusals(AccessTestCase):

    def test_pool_full(self):
        held = [self.start_instance("-p", "accel", "-t", "accel-4wq")
                for _ in range(POOL // 4)]
        lines = self.finish(self.drive("--seconds", "0"), rc=1)
        self.assertEqual(lines, ["error open: No space left on device"])
        self.assertEqual(self.leased(), [])
        self.ok("stop", held[0]["uuid"])
        self.assertEqual(self.finish(self.drive("--seconds", "0"))[-1],
                         "closed")
        for h in held[1:]:
            self.ok("stop", h["uuid"])
        self.assertEqual(self.free_1wq(), POOL)

    def test_lease_arguments(self):
        u = self.ok("define", "-p", "accel", "-t", "accel-1wq").out.strip()
        bad = [{"uuid": u, "lease": True},
               {"parent": "accel", "type": "accel-1wq", "lease": "yes"},
               {"parent": "accel", "type": "accel-1wq", "lease": 1}]
        with self.d.connect() as c:
            for args in bad:
                with self.subTest(args=args):
                    r = c.call("start", args)
                    self.assertFalse(r["ok"], r)
                    self.assertEqual(r["error"]["code"], "EINVAL", r)
                    self.assertIn("only a transient instance (parent + "
                                  "type) can be leased",
                                  r["error"]["message"])
            # "lease": false is an ordinary transient start: it outlives
            # the connection.
            r = c.call("start", {"parent": "accel", "type": "accel-1wq",
                                 "lease": False})
            self.assertTrue(r["ok"], r)
            plain = r["result"]["instance"]
            self.assertNotIn("lease_pid", plain)
        self.assertEqual(self.instance(u)["state"], "stopped")
        self.assertEqual(self.instance(plain["uuid"])["state"], "running")
        self.ok("stop", plain["uuid"])
        self.ok("undefine", u)
        self.assertEqual(self.free_1wq(), POOL)
        self.assertIsNone(self.lookup(new_uuid()))

    def test_bad_options(self):
        for args, says in (
                (["--depth", "3"], "--depth: a power of two"),
                (["--size", "0"], "--size: 1 to 65536"),
                (["--depth", "256", "--size", "65536"],
                 "at most 4 MiB"),
                (["--seconds", "x"], "--seconds"),
                (["extra"], "unexpected argument 'extra'")):
            with self.subTest(args=args):
                p = subprocess.run([harness.BIN["access_drive"], "--control", self.d.control,
                                    *args], capture_output=True,
                                   timeout=harness.T_CMD)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn(says, p.stderr.decode())
        p = subprocess.run([harness.BIN["access_drive"], "--control",
                            os.path.join(self.tmp, "nothing")],
                           capture_output=True, timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("cannot reach umdevd", p.stderr.decode())
        self.assertEqual(self.instances(), {})


if __name__ == "__main__":
    harness.main(programs=("access-drive", "accel-client"))
