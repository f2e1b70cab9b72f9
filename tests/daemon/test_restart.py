"""Restarting an instance's worker under a running VMM (issue 17).

umdev-vmm (tests/migrate/vmm.c) plays the VMM, attached to an instance
and running its workload without migrating, verifying every descriptor
(accel: result and interrupt; nvme: every read's data) to the end. The
test runs `umdevctl restart` several times meanwhile: each must give
the instance a new worker pid and report its blackout, and the VMM must
pass, so nothing was lost, doubled or reset across the swaps. A new
worker that dies (a test hook) leaves the old one serving, the VMM
passing. Serial's host ends go over with the device: umdev-vmm's
serial workload checks each port's bytes both ways through a host
connection made before the restarts.

    python3 test_restart.py --umdevd P --umdevctl P --probe P \
        --req-client P --vmm P [--test-hooks] [unittest arguments]
"""

import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
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

    def hooked_daemon(self, **env):
        """A umdevd (replacing the test's) started with the test hooks
        @env names; return a new instance's uuid for them to name."""
        if not harness.FLAGS["test_hooks"]:
            self.fail("umdevd was built without UMDEV_TEST_HOOKS")
        self.d.terminate()
        u = harness.new_uuid()
        for k, v in env.items():
            os.environ[k] = u if v is None else v
        try:
            self.daemon()
        finally:
            for k in env:
                del os.environ[k]
        return u

    def accel_under_vmm(self, u):
        i = self.start_instance("-u", u, "-p", "accel", "-t", "accel-4wq")
        p = self.vmm_start("accel", i)
        self.wait_for("the VMM to attach",
                      lambda: self.attached(u) or p.poll() is not None)
        self.assertIsNone(p.poll(), "the VMM ended before any restart")
        return i, p

    def accel_under_req_client(self, u):
        """An accel instance @u with daemon-req-client attached, which
        lets go when asked (REQ)."""
        i = self.start_instance("-u", u, "-p", "accel", "-t", "accel-4wq")
        vmm = self.spawn([harness.BIN["req_client"], i["socket"], "release",
                          "60000"])
        lines = harness.Lines(vmm)
        first = lines.next()
        self.assertTrue(first is not None and first.startswith("attached"),
                        first)
        return i, vmm, lines

    def restart_under_way(self, u):
        """`umdevctl restart` of @u, returned once the new worker exists
        (its restore is slowed down by the hook)."""
        r = self.spawn([harness.BIN["umdevctl"], "--control", self.d.control,
                        "--json", "restart", u])
        self.wait_for("the new worker", lambda: os.path.exists(os.path.join(
            self.d.rundir, "workers", u + ".adopt.new")) or
            r.poll() is not None)
        self.assertIsNone(r.poll(), "the restart ended at once")
        return r

    def test_new_worker_failing_early_never_stops_the_device(self):
        # The new worker builds its device while the old one serves on;
        # one that dies before it is ready costs the guest nothing: the
        # old worker never stopped (never saved) its device.
        u = self.hooked_daemon(UMDEV_TEST_READY_FAIL=None)
        i, p = self.accel_under_vmm(u)
        before = self.pid(u)
        self.refused("EIO", "restart", u,
                     says=("test hook: dying before it is ready",
                           "ended before it was ready"))
        self.assertEqual(self.pid(u), before)
        self.assertNotIn("handover package", self.d.log())
        self.assertNotIn("handover aborted", self.d.log())
        self.vmm_finish(p)

    def test_refused_state_leaves_the_old_serving(self):
        # The new worker gets a package whose device state was changed by
        # one byte: its loader refuses it, the old worker resumes.
        u = self.hooked_daemon(UMDEV_TEST_RESTORE_CORRUPT=None)
        i, p = self.accel_under_vmm(u)
        before = self.pid(u)
        e = self.refused("EIO", "restart", u,
                         says=("the package was refused",
                               "restart of " + u + " failed"))
        self.assertEqual(self.pid(u), before, e)
        self.assertEqual(self.instance(u)["state"], "running")
        self.assertIn("restart refused, serving on", self.d.log())
        self.vmm_finish(p)

    def test_hang_in_quiesce_past_the_bound(self):
        # The old worker stops its device and then says nothing for 3 s,
        # past the 1 s umdevd gives it here: the restart fails at the
        # bound, the new worker is ended, and the old one, once it moves
        # again, finds no one to hand to, resumes and serves on.
        u = self.hooked_daemon(UMDEV_TEST_QUIESCE_HANG=None,
                               UMDEV_TEST_RESTART_TIMEOUT_MS="1000")
        i, p = self.accel_under_vmm(u)
        before = self.pid(u)
        t0 = time.monotonic()
        self.refused("EIO", "restart", u,
                     says="the old worker did not report within the time "
                          "limit")
        self.assertLess(time.monotonic() - t0, 2.9)
        self.assertEqual(self.pid(u), before)
        self.wait_for("the old worker to resume", lambda:
                      "restart refused, serving on" in self.d.log())
        self.assertEqual(self.instance(u)["state"], "running")
        self.assertFalse(os.path.exists(os.path.join(
            self.d.rundir, "workers", u + ".adopt.new")))
        self.vmm_finish(p)

    def test_upgrade_during_restart(self):
        # umdevd is told to hand over (SIGUSR2) while a restart is under
        # way: it lets the instance go only once the restart ended, so
        # the next umdevd adopts the worker that serves (the new one),
        # and the VMM never notices.
        u = self.hooked_daemon(UMDEV_TEST_RESTORE_SLOW=None)
        i, p = self.accel_under_vmm(u)
        before = self.pid(u)
        r = self.restart_under_way(u)
        old = self.d
        old.signal(signal.SIGUSR2)
        self.assertEqual(old.proc.wait(harness.T_EXIT), 0, old.log())
        r.communicate(timeout=harness.T_CMD)
        self.assertIn("%s: restarted (pid" % u, old.log())
        self.assertIn("%s: left running for the next umdevd" % u, old.log())
        self.assertFalse(harness.alive(before))
        self.daemon()
        inst = self.instance(u)
        self.assertEqual(inst["state"], "running",
                         old.log(whole=True) + "\n---\n" + self.d.log())
        self.assertNotEqual(inst["pid"], before)
        self.assertIn("%s: adopted running worker (pid %d" %
                      (u, inst["pid"]), self.d.log())
        self.vmm_finish(p)
        self.restart(u)

    def test_stop_and_sigterm_during_restart(self):
        # A stop asked during a restart waits its turn (EBUSY); umdevd's
        # SIGTERM during one stops the instance whichever worker serves
        # when the restart ends: the VMM is asked to let go, both
        # workers end, nothing is left in RUNDIR.
        u = self.hooked_daemon(UMDEV_TEST_RESTORE_SLOW=None)
        i, vmm, lines = self.accel_under_req_client(u)
        before = self.pid(u)
        r = self.restart_under_way(u)
        self.refused("EBUSY", "stop", u)
        out, _ = r.communicate(timeout=harness.T_CMD)
        self.assertEqual(r.returncode, 0, out)
        after = json.loads(out)["pid"]
        self.assertNotEqual(after, before)
        r = self.restart_under_way(u)
        self.d.signal(signal.SIGTERM)
        self.assertEqual(self.d.proc.wait(harness.T_EXIT), 0, self.d.log())
        r.communicate(timeout=harness.T_CMD)
        self.assertEqual(lines.rest(), ["req", "released"], lines.seen)
        self.assertEqual(vmm.wait(harness.T_CMD), 0)
        self.assertFalse(harness.alive(after))
        self.assertEqual(os.listdir(self.d.rundir), [])

    def test_neither_worker_serves(self):
        # The new worker dies and the old one cannot resume: the VMM is
        # asked to let go (REQ, after the device's error interrupt) before
        # the connection ends, the restart fails with both reasons, and
        # the instance is failed with them: never a device silently
        # reset.
        u = self.hooked_daemon(UMDEV_TEST_RESTORE_FAIL=None,
                               UMDEV_TEST_RESUME_FAIL=None)
        i, vmm, lines = self.accel_under_req_client(u)
        before = self.pid(u)
        self.refused("EIO", "restart", u,
                     says=("test hook: dying before the restore",))
        self.assertEqual(lines.next(), "req", lines.seen)
        inst = self.wait_state(u, "failed")
        self.assertFalse(harness.alive(before))
        self.assertIn("cannot resume", json.dumps(inst) + self.d.log())
        self.assertIn("test hook: dying before the restore",
                      json.dumps(inst) + self.d.log())

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
    """The host ends travel with the device: the listening sockets (the
    paths never change), the peers connected to them and the pty
    masters, so a host program on a port never notices a restart."""

    def port_path(self, inst, n):
        return os.path.join(self.d.rundir, "%s.port%d" % (inst["uuid"], n))

    def endpoints(self, uuid):
        return self.js("info", uuid)["device"]["endpoints"]

    def vmm_on(self, inst, port, host):
        return ("serial", inst, "--serial-port", port, "--host-src", host)

    def test_restarts_under_traffic_both_ports(self):
        # Port 1's host program connects first and holds its connection
        # through everything below; port 0's is umdev-vmm's own peer.
        i = self.start_instance("-p", "serial", "-t", "serial-2port")
        u = i["uuid"]
        paths = [self.port_path(i, n) for n in range(2)]
        inodes = [os.stat(p).st_ino for p in paths]
        peer1 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        peer1.connect(paths[1])
        relay = Relay(self, peer1)
        try:
            # Five restarts while the guest and port 0's peer move bytes
            # both ways, each byte checked in order by umdev-vmm.
            res, ctx = self.restarts_under_load(
                *self.vmm_on(i, 0, paths[0]))
            self.assertGreater(res["host_to_guest"], 0, ctx)
            self.assertGreater(res["guest_to_host"], 0, ctx)
            self.assertFalse(relay.port_closed, "port 1's peer was cut")
            # Five more on port 1, through the connection made before
            # the first restart (relayed to umdev-vmm's peer).
            res, ctx = self.restarts_under_load(
                *self.vmm_on(i, 1, relay.path))
            self.assertGreater(res["host_to_guest"], 0, ctx)
            self.assertGreater(res["guest_to_host"], 0, ctx)
            self.assertFalse(relay.port_closed, "port 1's peer was cut")
            self.assertEqual(relay.accepted, 1)
        finally:
            relay.stop()
        self.assertEqual([os.stat(p).st_ino for p in paths], inodes,
                         "a restarted worker made the sockets anew")
        ep = self.endpoints(u)
        self.assertEqual([ep["port%d" % n]["host_end"] for n in range(2)],
                         paths)

    def test_pty_port(self):
        # A pty's slave stays the same device while the master lives; a
        # program holding it open goes on, bytes exact both ways.
        i = self.start_instance("-p", "serial", "-t", "serial-2port",
                                "--attr", "port1=pty")
        u = i["uuid"]
        ep = self.endpoints(u)["port1"]
        self.assertEqual(ep["kind"], "pty")
        pts = ep["host_end"]
        self.assertEqual(os.readlink(self.port_path(i, 1)), pts)
        fd = os.open(pts, os.O_RDWR | os.O_NOCTTY)
        relay = Relay(self, fd)
        try:
            res, ctx = self.restarts_under_load(
                *self.vmm_on(i, 1, relay.path))
            self.assertGreater(res["host_to_guest"], 0, ctx)
            self.assertGreater(res["guest_to_host"], 0, ctx)
            self.assertFalse(relay.port_closed, "the pty hung up")
        finally:
            relay.stop()
        ep = self.endpoints(u)["port1"]
        self.assertEqual((ep["kind"], ep["host_end"]), ("pty", pts))
        self.assertEqual(os.readlink(self.port_path(i, 1)), pts)

    def test_no_peer_then_connect(self):
        # Restarted with nobody on either port, then a peer connects to
        # the listening socket the new worker was handed, and the next
        # worker takes that connection over too.
        i = self.start_instance("-p", "serial", "-t", "serial-2port")
        u = i["uuid"]
        paths = [self.port_path(i, n) for n in range(2)]
        inodes = [os.stat(p).st_ino for p in paths]
        for _ in range(2):
            before = self.pid(u)
            res = self.restart(u)
            self.assertEqual(res["old_pid"], before)
            self.assertNotEqual(res["pid"], before)
            self.wait_for("the old worker %d to exit" % before,
                          lambda: not harness.alive(before))
        self.assertEqual([os.stat(p).st_ino for p in paths], inodes)
        res, ctx = self.restarts_under_load(*self.vmm_on(i, 0, paths[0]))
        self.assertGreater(res["host_to_guest"], 0, ctx)
        self.assertGreater(res["guest_to_host"], 0, ctx)
        self.assertEqual([os.stat(p).st_ino for p in paths], inodes)

    def test_all_and_by_type(self):
        # --all restarts every running instance, serial included, one
        # after the other; -t names a type, serial's as well.
        s = self.start_instance("-p", "serial", "-t", "serial-2port")
        a = self.start_instance("-p", "accel", "-t", "accel-4wq")
        spid, apid = self.pid(s["uuid"]), self.pid(a["uuid"])
        r = self.ok("restart", "--all")
        self.assertIn(a["uuid"] + ": restarted: worker pid", r.out)
        self.assertIn(s["uuid"] + ": restarted: worker pid", r.out)
        self.assertNotIn("skipped", r.err)
        self.assertNotEqual(self.pid(s["uuid"]), spid)
        self.assertNotEqual(self.pid(a["uuid"]), apid)
        spid, apid = self.pid(s["uuid"]), self.pid(a["uuid"])
        res = self.js("restart", "-t", "4wq")
        self.assertEqual([x["old_pid"] for x in res], [apid])
        self.assertEqual(self.pid(a["uuid"]), res[0]["pid"])
        apid = res[0]["pid"]
        res = self.js("restart", "-t", "serial-2port")
        self.assertEqual([x["old_pid"] for x in res], [spid])
        self.assertEqual(self.pid(s["uuid"]), res[0]["pid"])
        self.assertEqual(self.pid(a["uuid"]), apid)
        self.fails(2, "restart", "--all", "-t", "4wq")
        self.probe(s["socket"])


class Relay:
    """A host program's connection to a port (a connected socket, or a
    pty slave's fd), relayed byte for byte to whoever connects to
    @path: umdev-vmm's peer, which checks the streams. @port_closed says
    whether the port's side ever ended."""

    def __init__(self, case, port):
        self.port = port
        self.path = os.path.join(case.tmp, "relay-%d" % id(self))
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.path)
        self.lsock.listen(1)
        self.port_closed = False
        self.accepted = 0
        self.done = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def pfd(self):
        return self.port if isinstance(self.port, int) else self.port.fileno()

    def pread(self):
        try:
            return os.read(self.pfd(), 4096)
        except OSError:
            return b""

    def pwrite(self, b):
        while b:
            n = os.write(self.pfd(), b)
            b = b[n:]

    def run(self):
        client = None
        while not self.done:
            fds = [self.lsock if client is None else client]
            if not self.port_closed:
                fds.append(self.pfd())
            r, _, _ = select.select(fds, [], [], 0.1)
            if self.lsock in r:
                client, _ = self.lsock.accept()
                self.accepted += 1
                continue
            if self.pfd() in r:
                b = self.pread()
                if not b:
                    self.port_closed = True
                elif client is not None:
                    client.sendall(b)
            if client is not None and client in r:
                b = client.recv(4096)
                if not b:
                    client.close()
                    client = None
                else:
                    self.pwrite(b)
        if client is not None:
            client.close()

    def stop(self):
        self.done = True
        self.t.join(10)
        self.lsock.close()
        if isinstance(self.port, int):
            os.close(self.port)
        else:
            self.port.close()


if __name__ == "__main__":
    harness.main(programs=("vmm",), flags=("test-hooks",))
