"""Instances outlive umdevd: an upgrade (`umdevd --upgrade`, SIGUSR2) or a
SIGKILL leaves their workers serving, and the next umdevd adopts them
(pids, sockets, resource claims) after proving each from its record in
RUNDIR/workers; a record it cannot prove is refused and nothing of it
is harmed. Plain SIGTERM still stops every instance.

While no umdevd runs, the workers are checked to serve: a VMM stand-in
(daemon-req-client) stays attached to one serial instance and lets go on
the REQ interrupt of the final stop, so its one connection lasted
throughout; another serial instance answers a new client's register
accesses (daemon-region-client) that move a byte each way through its
host end, whose client stays connected.
"""

import json
import os
import signal
import socket
import subprocess
import time

import harness
from harness import DaemonTestCase, Lines

T = "serial-2port"
A = "accel-4wq"


def start_time(pid):
    """Field 22 of /proc/PID/stat: when the process started."""
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


class Upgrade(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()
        self.workers = os.path.join(self.d.rundir, "workers")

    # ---- helpers -------------------------------------------------------

    def attach(self, sock):
        """A VMM stand-in that stays attached until the REQ interrupt."""
        p = self.spawn([harness.BIN["req_client"], sock, "release", "60000"])
        lines = Lines(p)
        first = lines.next()
        self.assertIsNotNone(first, "req-client did not attach")
        self.assertTrue(first.startswith("attached pid=%d " % p.pid), first)
        return p, lines

    def host_end(self, uuid):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(harness.T_CMD)
        self.addCleanup(s.close)
        s.connect(os.path.join(self.d.rundir, uuid + ".port0"))
        return s

    def serial_round_trip(self, inst, host):
        """A byte from the host end reaches the guest side, and one
        written by the guest side reaches the host end: the worker
        serves, whatever umdevd does."""
        # 8-bit words (LCR: the receiver masks what it takes in), then
        # wait for the byte (LSR.DR): it may still be on its way.
        self.assertEqual(self.region(inst, "w0:3:1:0x3", "r0:3:1"),
                         ["ok 0x3", "ok 0x3"])
        host.sendall(b"Z")
        deadline = time.monotonic() + harness.T_CMD
        while True:
            out = self.region(inst, "r0:5:1")
            if out[0] == "ok 0x61" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(out, ["ok 0x61"])
        self.assertEqual(self.region(inst, "r0:0:1", "w0:0:1:0x41"),
                         ["ok 0x5a", "ok 0x41"])
        self.assertEqual(host.recv(16), b"A")

    def region(self, inst, *ops):
        p = subprocess.run([harness.BIN["region_client"], inst["socket"],
                            "5000"] + list(ops), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode().split("\n")[:-1]

    def record(self, uuid):
        with open(os.path.join(self.workers, uuid + ".json")) as f:
            return json.load(f)

    def write_record(self, uuid, rec):
        path = os.path.join(self.workers, uuid + ".json")
        with open(path, "w") as f:
            json.dump(rec, f)
        os.chmod(path, 0o600)

    def next_daemon(self, args=()):
        """A new umdevd on the same directories (its own log)."""
        d = harness.Daemon(self.tmp, args, name="umdevd-%d" %
                           len(self.daemons))
        self.daemons.append(d)
        self.d = d
        d.start()
        return d

    def sigusr2(self):
        old = self.d
        old.signal(signal.SIGUSR2)
        self.assertEqual(old.proc.wait(harness.T_EXIT), 0, old.log())
        return old

    def setup_instances(self):
        """A defined serial instance with a VMM attached, a transient one
        with a host-end client, an accel instance; and what the parents
        had free before."""
        free = self.types()
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        a = self.start_instance(u)
        vmm = self.attach(a["socket"])
        b = self.start_instance("-p", "serial", "-t", T)
        host = self.host_end(b["uuid"])
        c = self.start_instance("-p", "accel", "-t", A)
        self.assertEqual(self.types()[A], free[A] - 1)
        self.serial_round_trip(b, host)
        return free, (a, b, c), vmm, host

    def check_adopted(self, free, insts, vmm, host):
        """The new umdevd shows them as they were, they still serve, and
        stopping them works and returns their resources."""
        a, b, c = insts
        listed = self.instances()
        for i in insts:
            self.assertEqual(listed[i["uuid"]]["state"], "running",
                             self.d.log())
            self.assertEqual(listed[i["uuid"]]["pid"], i["pid"])
            self.assertEqual(listed[i["uuid"]]["socket"], i["socket"])
            self.assertIn("%s: adopted running worker (pid %d" %
                          (i["uuid"], i["pid"]), self.d.log())
        self.assertTrue(listed[a["uuid"]]["defined"])
        self.assertFalse(listed[b["uuid"]]["defined"])
        # The worker answers the new umdevd on its new channel.
        info = self.js("info", a["uuid"])
        self.assertEqual(info["device"]["client_pid"], vmm[0].pid)
        self.assertEqual(self.types()[A], free[A] - 1)
        self.serial_round_trip(b, host)
        # The one VMM connection lasted throughout: it gets REQ now.
        self.ok("stop", a["uuid"])
        self.assertEqual(vmm[1].rest(), ["req", "released"], vmm[1].seen)
        self.assertEqual(vmm[0].wait(harness.T_CMD), 0)
        self.ok("stop", b["uuid"])
        self.assertEqual(host.recv(16), b"")
        self.ok("stop", c["uuid"])
        for i in insts:
            self.assertFalse(harness.alive(i["pid"]))
        self.assertEqual(self.types(), free)
        self.assertEqual(self.instance(a["uuid"])["state"], "stopped")
        self.assertEqual(sorted(os.listdir(self.d.rundir)), ["workers"])
        self.assertEqual(os.listdir(self.workers), [])
        self.assertEqual(self.d.terminate(), 0, self.d.log())
        self.assertEqual(os.listdir(self.d.rundir), [])

    # ---- tests ---------------------------------------------------------

    def test_upgrade_signal_keeps_instances(self):
        free, insts, vmm, host = self.setup_instances()
        old = self.sigusr2()
        self.assertIn("upgrade: leaving the instances running", old.log())
        # No umdevd runs: the control socket is gone, the workers serve.
        self.assertFalse(os.path.exists(old.control))
        for i in insts:
            self.assertTrue(harness.alive(i["pid"]), i)
        self.serial_round_trip(insts[1], host)
        self.assertIsNone(vmm[0].poll())
        self.next_daemon()
        self.check_adopted(free, insts, vmm, host)

    def test_upgrade_flag_takes_over(self):
        free, insts, vmm, host = self.setup_instances()
        old = self.d
        new = self.next_daemon(["--upgrade"])
        self.assertEqual(old.proc.wait(harness.T_EXIT), 0, old.log())
        self.assertIn("upgrade: umdevd (pid %d) asked to hand over" %
                      old.proc.pid, new.log())
        self.check_adopted(free, insts, vmm, host)

    def test_upgrade_flag_without_a_daemon(self):
        self.d.terminate()
        d = self.next_daemon(["--upgrade"])
        self.assertIn("upgrade: no umdevd answers", d.log())

    def test_sigkill_keeps_instances(self):
        free, insts, vmm, host = self.setup_instances()
        old = self.d
        old.kill9()
        self.wait_for("the killed daemon's cleanup",
                      lambda: "ended leaving 3 instances running" in
                      old.log())
        self.assertFalse(os.path.exists(old.control))
        for i in insts:
            self.assertTrue(harness.alive(i["pid"]), i)
        self.serial_round_trip(insts[1], host)
        self.assertIsNone(vmm[0].poll())
        self.next_daemon()
        self.check_adopted(free, insts, vmm, host)

    def test_sigterm_still_stops_instances(self):
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        a = self.start_instance(u)
        p, lines = self.attach(a["socket"])
        self.assertEqual(self.d.terminate(), 0, self.d.log())
        self.assertEqual(lines.rest(), ["req", "released"], lines.seen)
        self.assertEqual(p.wait(harness.T_CMD), 0)
        self.assertFalse(harness.alive(a["pid"]))
        self.assertEqual(os.listdir(self.d.rundir), [])
        self.next_daemon()
        self.assertEqual(self.instance(u)["state"], "stopped")

    def slow_start(self, how):
        """An instance whose worker is still building its device when
        umdevd goes (@how: "upgrade" or "kill") is adopted all the same:
        an upgrade waits until it is ready, a new daemon until it
        listens."""
        if not harness.FLAGS["test_hooks"]:
            self.fail("umdevd was built without UMDEV_TEST_HOOKS")
        self.d.terminate()
        u = harness.new_uuid()
        os.environ["UMDEV_TEST_SLOW_START"] = u
        try:
            old = self.next_daemon()
        finally:
            del os.environ["UMDEV_TEST_SLOW_START"]
        c = old.connect()
        self.addCleanup(c.close)
        c.send_line(json.dumps({"version": 1, "id": 1, "cmd": "start",
                                "args": {"parent": "serial", "type": T,
                                         "uuid": u}}) + "\n")
        # Its record is written right after the fork (a worker killed
        # with its umdevd before that is not known to survive it).
        self.wait_for("the worker's record", lambda: os.path.exists(
            os.path.join(self.workers, u + ".json")))
        self.assertEqual(self.instance(u)["state"], "starting")
        if how == "upgrade":
            old.signal(signal.SIGUSR2)
            self.assertEqual(old.proc.wait(harness.T_EXIT), 0, old.log())
            self.assertIn("%s: left running for the next umdevd" % u,
                          old.log())
        else:
            old.kill9()
        self.next_daemon()
        i = self.lookup(u)
        self.assertIsNotNone(i, old.log(whole=True) + "\n---\n" +
                             self.d.log())
        self.assertEqual(i["state"], "running", self.d.log())
        self.assertIn("%s: adopted running worker (pid %d" % (u, i["pid"]),
                      self.d.log())
        self.probe(i["socket"])
        self.ok("stop", u)
        self.assertFalse(harness.alive(i["pid"]))

    def test_upgrade_while_starting(self):
        self.slow_start("upgrade")

    def test_sigkill_while_starting(self):
        self.slow_start("kill")

    def test_stop_in_progress_goes_on(self):
        # A worker asked to stop (its VMM holds on through the grace
        # period) is handed over stopping, and ends as a stop.
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        i = self.start_instance(u)
        p = self.spawn([harness.BIN["req_client"], i["socket"], "hold",
                        "60000"])
        vmm = Lines(p)
        self.assertTrue(vmm.next().startswith("attached"), vmm.seen)
        stop = self.spawn([harness.BIN["umdevctl"], "--control",
                           self.d.control, "stop", u, "--grace", "4000"])
        self.wait_state(u, "stopping")
        self.sigusr2()
        # The handover closed the control connection the stop waited on.
        self.assertEqual(stop.wait(harness.T_CMD), 3)
        d = self.next_daemon()
        self.assertIn("%s: adopted stopping worker (pid %d" % (u, i["pid"]),
                      d.log())
        self.assertEqual(self.instance(u)["state"], "stopping")
        self.wait_state(u, "stopped")
        self.assertEqual(vmm.rest(), ["req", "disconnected"], vmm.seen)
        self.assertFalse(harness.alive(i["pid"]))

    def test_claims_that_no_longer_fit(self):
        # The next umdevd hands out fewer queues: a worker whose claim
        # does not fit is adopted, then stopped with the reason.
        i = self.start_instance("-p", "accel", "-t", A)
        self.sigusr2()
        d = self.next_daemon(["--pool", "accel.queues=2"])
        self.assertIn("%s: adopted running worker (pid %d" %
                      (i["uuid"], i["pid"]), d.log())
        self.assertIn("%s: cannot claim its resources: the parent has none "
                      "free: stopping it" % i["uuid"], d.log())
        self.wait_state(i["uuid"], None)
        self.wait_for("the worker to end",
                      lambda: (harness.reap_orphans(),
                               not harness.alive(i["pid"]))[1])
        self.assertEqual(self.types()[A], 0)
        self.assertEqual(os.listdir(self.workers), [])

    def test_lease_ends_with_its_connection(self):
        # A leased instance lives as long as its control connection; that
        # ended with the killed daemon, so the next one stops it.
        free = self.types()
        with self.d.connect() as c:
            r = c.call("start", {"parent": "accel", "type": A,
                                 "lease": True})
            self.assertIn("result", r, r)
            i = r["result"]["instance"]
            self.assertEqual(i["lease_pid"], os.getpid())
            self.d.kill9()
        self.wait_for("the killed daemon's cleanup",
                      lambda: "ended leaving 1 instances running" in
                      self.d.log(whole=True))
        self.assertTrue(harness.alive(i["pid"]))
        d = self.next_daemon()
        self.wait_state(i["uuid"], None)
        self.assertIn("%s: lessee (pid %d) lost its connection with the "
                      "previous umdevd" % (i["uuid"], os.getpid()), d.log())
        self.wait_for("the leased worker to end",
                      lambda: (harness.reap_orphans(),
                               not harness.alive(i["pid"]))[1])
        self.assertEqual(self.types(), free)
        self.assertEqual(os.listdir(self.workers), [])

    def test_workers_dir_not_umdevds_alone(self):
        # Records in a directory others can write prove nothing: none is
        # read, and no instance starts until it is dealt with.
        self.d.terminate()
        os.makedirs(self.workers)
        os.chmod(self.workers, 0o755)
        d = self.next_daemon()
        self.assertIn("%s is not umdevd's user's alone (uid %d, mode 0755)"
                      % (self.workers, os.geteuid()), d.log())
        self.refused("EPERM", "start", "-p", "serial", "-t", T,
                     says="workers is not umdevd's user's alone")
        d.terminate()
        os.rmdir(self.workers)
        self.next_daemon()
        self.start_instance("-p", "serial", "-t", T)

    def test_forged_records_refused(self):
        us = [self.ok("define", "-p", "serial", "-t", T).out.strip()
              for _ in range(5)]
        insts = [self.start_instance(u) for u in us]
        free = self.types()
        old = self.sigusr2()
        # An unrelated process of the same user.
        bystander = self.spawn(["sleep", "120"])
        gone = self.spawn(["true"])
        gone.wait()
        wrong_token, stranger, recycled, dead, other_worker = us
        r = self.record(wrong_token)
        r["token"] = "0" * 64
        self.write_record(wrong_token, r)
        r = self.record(stranger)
        r["pid"], r["start_time"] = bystander.pid, start_time(bystander.pid)
        self.write_record(stranger, r)
        r = self.record(recycled)
        r["pid"] = bystander.pid
        r["start_time"] = start_time(bystander.pid) - 1
        self.write_record(recycled, r)
        r = self.record(dead)
        r["pid"], r["start_time"] = gone.pid, 1
        self.write_record(dead, r)
        # A real worker, but another record's: its adoption socket is not
        # served by it.
        r = self.record(other_worker)
        r["pid"] = insts[0]["pid"]
        r["start_time"] = start_time(insts[0]["pid"])
        self.write_record(other_worker, r)
        # A record anyone could have written proves nothing.
        stray = harness.new_uuid()
        self.write_record(stray, r)
        os.chmod(os.path.join(self.workers, stray + ".json"), 0o644)

        d = self.next_daemon()
        log = d.log()
        failed = {u: self.instance(u) for u in us}
        reason = {u: failed[u]["exit"]["reason"] for u in us}
        for u in us:
            self.assertEqual(failed[u]["state"], "failed", log)
        self.assertIn("refused the record's token", reason[wrong_token])
        self.assertRegex(reason[stranger],
                         r"pid %d is no umdevd worker \(it is 'sleep'" %
                         bystander.pid)
        self.assertRegex(reason[recycled],
                         r"ended while no umdevd supervised it")
        self.assertRegex(log, r"%s: worker record removed: pid %d is another "
                         r"process now" % (recycled, bystander.pid))
        self.assertRegex(log, r"%s: worker record removed: its worker "
                         r"\(pid %d\) is gone" % (dead, gone.pid))
        self.assertIn("its adoption socket is served by pid %d, not by the "
                      "recorded pid %d" % (insts[4]["pid"], insts[0]["pid"]),
                      reason[other_worker])
        self.assertRegex(log, r"worker record .*/workers/%s\.json ignored: it "
                         r"is not a regular file of umdevd's user" % stray)
        for u in (wrong_token, stranger, other_worker):
            self.assertIn("%s: worker pid" % u, log)
            self.assertIn("not adopted", log)
        # The worker told of a wrong token says so (in the log it
        # inherited) and serves on.
        self.assertIn("%s: adoption by pid %d (uid %d) refused: its token "
                      "is not the record's" % (wrong_token, d.proc.pid,
                                               os.geteuid()), old.log())
        # Nobody was harmed: the bystander, every worker the records
        # named, whose records (but the stale ones) stay.
        self.assertIsNone(bystander.poll())
        for i in insts:
            self.assertTrue(harness.alive(i["pid"]), i)
        self.probe(insts[0]["socket"])
        kept = sorted(n for n in os.listdir(self.workers)
                      if n.endswith(".json"))
        self.assertEqual(kept, sorted(u + ".json" for u in
                                      (wrong_token, stranger, other_worker,
                                       stray)))
        # None of them holds resources in the new umdevd.
        self.assertEqual(self.types()[T], free[T] + 5)


if __name__ == "__main__":
    harness.main(programs=("region-client",), flags=("test-hooks",))
