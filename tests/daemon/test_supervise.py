"""Worker supervision: stop with a VMM attached, crashes, failed starts,
and SIGTERM to the daemon.

The VMM is daemon-req-client (lib/client): it attaches, registers an
eventfd for the device request IRQ (index 4), and either lets go when REQ
fires ("release") or holds on until the server closes ("hold").
"""

import errno
import os
import signal
import socket
import struct
import time

import harness
from harness import DaemonTestCase, Lines, new_uuid

T = "serial-2port"


class Supervise(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()

    def attach(self, sock, mode, timeout_ms=20000):
        """Start a VMM stand-in on @sock; return (process, its lines)."""
        p = self.spawn([harness.BIN["req_client"], sock, mode,
                        str(timeout_ms)])
        lines = Lines(p)
        first = lines.next()
        if first is None:
            p.wait(harness.T_CMD)
            self.fail("req-client: %s" % p.stderr.read().decode())
        self.assertRegex(first, r"^attached pid=%d id=[0-9a-f]{4}:[0-9a-f]{4}$"
                         % p.pid)
        return p, lines

    def finish(self, p, lines, want):
        """The client's remaining lines must be @want, then exit 0."""
        got = lines.rest()
        self.assertEqual(got, want, "req-client said %s" % lines.seen)
        self.assertEqual(p.wait(harness.T_CMD), 0, lines.seen)

    def define_start(self, *attrs):
        u = self.ok("define", "-p", "serial", "-t", T, *attrs).out.strip()
        return self.start_instance(u)

    def test_stop_client_releases(self):
        i = self.define_start()
        p, lines = self.attach(i["socket"], "release")
        j = self.js("info", i["uuid"])
        self.assertEqual(j["instance"]["client_pid"], p.pid)
        self.assertEqual(j["device"]["client_pid"], p.pid)
        self.assertIn("  client pid: %d\n" % p.pid,
                      self.ok("info", i["uuid"]).out)
        t0 = time.monotonic()
        self.ok("stop", i["uuid"], "--grace", "8000")
        took = time.monotonic() - t0
        self.finish(p, lines, ["req", "released"])
        # It let go on REQ, long before the grace period ran out.
        self.assertLess(took, 4.0)
        self.assertEqual(self.instance(i["uuid"])["state"], "stopped")
        self.assertFalse(harness.alive(i["pid"]))
        self.assertFalse(os.path.exists(i["socket"]))
        self.assertIn("stop requested with a client attached", self.d.log())

    def test_second_client_refused(self):
        """A second VMM gets an EBUSY error reply to its VERSION at once
        (from the sandboxed worker), the log names both pids, and the
        first keeps the device."""
        i = self.define_start()
        p, lines = self.attach(i["socket"], "release")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2.0)
        s.connect(i["socket"])
        # VERSION 0.0, no capabilities: id 0x77, command 1, 20 bytes.
        s.sendall(struct.pack("<HHIII", 0x77, 1, 20, 0, 0) +
                  struct.pack("<HH", 0, 0))
        t0 = time.monotonic()
        reply = b""
        while len(reply) < 16:
            chunk = s.recv(16 - len(reply))
            self.assertTrue(chunk, "closed without a reply")
            reply += chunk
        self.assertLess(time.monotonic() - t0, 1.5)
        # Reply|Error, errno EBUSY, the header alone; then closed.
        self.assertEqual(struct.unpack("<HHIII", reply),
                         (0x77, 1, 16, 0x21, errno.EBUSY))
        self.assertEqual(s.recv(16), b"")
        s.close()
        self.wait_for("the refusal in the log", lambda: (
            "refusing a second client (pid %d): in use by pid %d"
            % (os.getpid(), p.pid)) in self.d.log())
        j = self.js("info", i["uuid"])
        self.assertEqual(j["instance"]["client_pid"], p.pid)
        self.ok("stop", i["uuid"], "--grace", "8000")
        self.finish(p, lines, ["req", "released"])

    def test_stop_client_holds(self):
        i = self.define_start()
        p, lines = self.attach(i["socket"], "hold")
        t0 = time.monotonic()
        self.ok("stop", i["uuid"], "--grace", "1000")
        took = time.monotonic() - t0
        self.finish(p, lines, ["req", "disconnected"])
        # The grace period, then the worker left on its own (killing it
        # is the supervisor's last resort, 2 s later).
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 3.0)
        i2 = self.instance(i["uuid"])
        self.assertEqual(i2["state"], "stopped")
        self.assertNotIn("exit", i2)
        self.assertIn("client still attached after the grace period",
                      self.d.log())
        self.assertFalse(harness.alive(i["pid"]))

    def test_stop_transient_with_client(self):
        i = self.start_instance("-p", "serial", "-t", T)
        p, lines = self.attach(i["socket"], "release")
        self.assertEqual(self.js("stop", i["uuid"]), {})
        self.finish(p, lines, ["req", "released"])
        self.assertIsNone(self.lookup(i["uuid"]))

    def test_worker_crash(self):
        a = self.define_start()
        b = self.define_start()
        c = self.start_instance("-p", "serial", "-t", T)
        avail = self.types()[T]
        os.kill(a["pid"], signal.SIGKILL)
        f = self.wait_state(a["uuid"], "failed")
        self.assertEqual(f["exit"]["signal"], 9, f)
        self.assertEqual(f["exit"]["status"], -1, f)
        self.assertIn("killed by signal 9", f["exit"]["reason"])
        self.assertNotIn("pid", f)
        # Resources back, socket gone, the others untouched and serving.
        self.assertEqual(self.types()[T], avail + 1)
        self.assertFalse(os.path.exists(a["socket"]))
        for o in (b, c):
            now = self.instance(o["uuid"])
            self.assertEqual((now["state"], now["pid"]),
                             ("running", o["pid"]))
            self.probe(o["socket"])
        # Shown as failed, with the reason, by list and info.
        self.assertIn(a["uuid"], self.instances())
        line = [ln for ln in self.ok("list").out.splitlines()
                if ln.startswith(a["uuid"])]
        self.assertEqual(len(line), 1)
        self.assertIn(" failed (worker killed by signal 9", line[0])
        info = self.ok("info", a["uuid"]).out
        self.assertIn("  state: failed\n", info)
        self.assertIn("  exit: worker killed by signal 9", info)
        self.assertIn("(status -1, signal 9)", info)
        self.assertRegex(self.d.log(),
                         r"%s: worker killed by signal 9" % a["uuid"])
        # A failed definition starts again.
        a2 = self.start_instance(a["uuid"])
        self.assertNotEqual(a2["pid"], a["pid"])
        self.assertNotIn("exit", a2)
        self.probe(a2["socket"])
        self.assertEqual(self.types()[T], avail)
        # A crashed transient stays, failed, until stop acknowledges it.
        # (Not SIGSEGV: a sanitizer would catch it and exit instead.)
        os.kill(c["pid"], signal.SIGUSR1)
        f = self.wait_state(c["uuid"], "failed")
        self.assertEqual(f["exit"]["signal"], signal.SIGUSR1)
        self.assertFalse(f["defined"])
        self.assertEqual(self.types()[T], avail + 1)
        self.ok("stop", c["uuid"])
        self.assertIsNone(self.lookup(c["uuid"]))
        # A failed definition may be undefined.
        os.kill(b["pid"], signal.SIGKILL)
        self.wait_state(b["uuid"], "failed")
        self.ok("undefine", b["uuid"])
        self.assertIsNone(self.lookup(b["uuid"]))
        self.assertEqual(self.types()[T], avail + 2)
        self.probe(a2["socket"])

    def test_start_failure(self):
        """A worker that cannot build its device: EIO with the reason,
        exit status 1, resources back, nothing left of a transient."""
        avail = self.types()[T]
        bad = "/nonexistent-%s/port0.sock" % new_uuid()[:8]
        u = self.ok("define", "-p", "serial", "-t", T, "--attr",
                    "port0=" + bad).out.strip()
        self.refused("EIO", "start", u, says="cannot create the device")
        f = self.instance(u)
        self.assertEqual(f["state"], "failed")
        self.assertEqual((f["exit"]["status"], f["exit"]["signal"]), (1, 0))
        self.assertIn("cannot create the device", f["exit"]["reason"])
        self.assertEqual(self.types()[T], avail)
        self.assertEqual(self.sockets_in_rundir(), [])
        # Fixed by modify, it starts.
        self.ok("modify", u, "--delattr", "port0")
        self.assertEqual(self.start_instance(u)["state"], "running")
        t = new_uuid()
        self.refused("EIO", "start", "-p", "serial", "-t", T, "-u", t,
                     "--attr", "port1=" + bad,
                     says="cannot create the device")
        self.assertIsNone(self.lookup(t))
        self.assertEqual(self.types()[T], avail - 1)
        self.assertEqual(self.sockets_in_rundir(), [u + ".sock"])

    def test_sigterm_stops_every_worker(self):
        insts = [self.define_start() for _ in range(3)]
        insts.append(self.start_instance("-p", "serial", "-t", T))
        p, lines = self.attach(insts[0]["socket"], "release")
        pids = [i["pid"] for i in insts]
        t0 = time.monotonic()
        self.assertEqual(self.d.terminate(), 0, self.d.log())
        took = time.monotonic() - t0
        self.finish(p, lines, ["req", "released"])
        self.assertLess(took, 5.0)
        for pid in pids:
            self.assertFalse(harness.alive(pid), pid)
        log = self.d.log()
        self.assertIn("signal 15: stopping every instance", log)
        for i in insts:
            self.assertIn("%s: stopped" % i["uuid"], log)
        self.assertNotIn("failed", log)
        self.assertNotIn("killed", log)
        self.assertEqual(os.listdir(self.d.rundir), [])
        self.assertFalse(os.path.exists(self.d.control))


if __name__ == "__main__":
    harness.main()
