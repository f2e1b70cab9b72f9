"""What a reader, an owner or a device must not be able to do to an
instance or to whoever looks at it: reads (`info`, `stats`) that kill a
worker which is slow to answer or block the admin's start and stop
(docs/CONTROL.md "Reads"); instance sockets any user could connect to
(a world-writable mode); device strings that drive the terminal of the
one running umdevctl or forge lines in the log (docs/CLI.md).
"""

import json
import os
import signal
import threading
import time

import harness
from harness import (NOBODY, Conn, DaemonTestCase, as_peer, as_user, new_uuid,
                     peek)

T = "serial-2port"
# daemon/supervisor.c's bound on a read (INFO_TIMEOUT_MS).
INFO_TIMEOUT = 2.0


class Safety(DaemonTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("these tests need root (they act as nobody too)")

    def nobody(self):
        return as_user(NOBODY.pw_uid, NOBODY.pw_gid)

    def reader(self):
        """A control connection from nobody."""
        with as_peer(NOBODY.pw_uid, NOBODY.pw_gid):
            return Conn(self.d.control)

    # ---- instance sockets ----------------------------------------------

    def test_world_writable_mode_refused(self):
        self.daemon()
        for mode in ("0777", "0666", "0602", "0622"):
            with self.subTest(mode=mode):
                self.refused("EINVAL", "define", "-p", "serial", "-t", T,
                             "--mode", mode,
                             says=("mode %s lets every user connect" % mode,
                                   "world-writable"))
                self.refused("EINVAL", "start", "-p", "serial", "-t", T,
                             "--mode", mode, says="world-writable")
        u = self.ok("define", "-p", "serial", "-t", T, "--mode",
                    "0660").out.strip()
        self.refused("EINVAL", "modify", u, "--mode", "0666",
                     says="world-writable")
        self.assertEqual(self.instance(u)["mode"], "0660")
        # A definition file saying so is skipped, with the reason.
        bad = new_uuid()
        os.makedirs(os.path.join(self.d.statedir, "serial"), exist_ok=True)
        with open(os.path.join(self.d.statedir, "serial", bad), "w") as f:
            json.dump({"uuid": bad, "parent": "serial", "type": T,
                       "mode": "0666"}, f)
        self.d.terminate()
        self.d.start()
        self.assertIsNone(self.lookup(bad))
        self.assertIn("skipping definition", self.d.log())
        self.assertIn("0666 lets every user connect", self.d.log())

    # ---- reads ---------------------------------------------------------

    def test_read_answered_within_timeout(self):
        """A worker that answers a read before INFO_TIMEOUT_MS has passed
        (stopped, then woken 1.2 s after the request) gets its answer to
        the reader; test_reads_do_not_kill holds the limit from above."""
        self.daemon()
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        pid = self.start_instance(u)["pid"]
        for verb in ("info", "stats"):
            with self.subTest(verb=verb), self.reader() as c:
                os.kill(pid, signal.SIGSTOP)
                try:
                    t = time.monotonic()
                    c.send_line(json.dumps({"version": 1, "id": 3,
                                            "cmd": verb,
                                            "args": {"uuid": u}}) + "\n")
                    time.sleep(1.2)
                finally:
                    os.kill(pid, signal.SIGCONT)
                r = c.recv_line()
                took = time.monotonic() - t
                self.assertTrue(r["ok"], r)
                self.assertEqual(r["id"], 3)
                self.assertGreaterEqual(took, 1.2)
        self.ok("stop", u)

    def test_reads_do_not_kill(self):
        """A worker that does not answer a read in time is left alone;
        the reader gets an error."""
        self.daemon()
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        pid = self.start_instance(u)["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            for verb in ("info", "stats"):
                with self.subTest(verb=verb):
                    t = time.monotonic()
                    self.refused("ETIMEDOUT", verb, u, user=self.nobody(),
                                 says=("did not answer within %d ms"
                                       % (INFO_TIMEOUT * 1000),
                                       "left running"))
                    took = time.monotonic() - t
                    self.assertGreaterEqual(took, INFO_TIMEOUT - 0.1)
                    self.assertTrue(harness.alive(pid))
                    self.assertEqual(self.instance(u)["state"], "running")
            # Many readers at once share one request to the worker and
            # all get their answer in time.
            conns = [self.reader()
                     for _ in range(10)]
            for c in conns:
                c.send_line(json.dumps({"version": 1, "id": 9,
                                        "cmd": "stats",
                                        "args": {"uuid": u}}) + "\n")
            for c in conns:
                r = c.recv_line()
                self.assertEqual(r["error"]["code"], "ETIMEDOUT", r)
                c.close()
        finally:
            os.kill(pid, signal.SIGCONT)
        # Awake again: it answers, and it is the same worker.
        j = self.js("info", u, user=self.nobody())
        self.assertEqual(j["instance"]["pid"], pid)
        self.assertIn("device", j)
        self.ok("stats", u)
        self.ok("stop", u)
        self.assertEqual(self.instance(u)["state"], "stopped")

    def test_reads_do_not_block_management(self):
        self.daemon()
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        pid = self.start_instance(u)["pid"]
        # A read waits for a stopped worker; the admin's stop goes
        # through anyway.
        os.kill(pid, signal.SIGSTOP)
        reader = self.reader()
        admin = Conn(self.d.control)
        try:
            reader.send_line(json.dumps({"version": 1, "id": 1,
                                         "cmd": "info",
                                         "args": {"uuid": u}}) + "\n")
            time.sleep(0.2)
            admin.send_line(json.dumps({"version": 1, "id": 2,
                                        "cmd": "stop",
                                        "args": {"uuid": u,
                                                 "grace_ms": 0}}) + "\n")
            time.sleep(0.2)
            self.assertEqual(peek(admin.sock), "open",
                             "stop was answered at once (refused?)")
        finally:
            os.kill(pid, signal.SIGCONT)
        r = admin.recv_line()
        self.assertTrue(r["ok"], r)
        r = reader.recv_line()
        self.assertEqual(r["id"], 1)
        admin.close()
        reader.close()
        self.assertEqual(self.instance(u)["state"], "stopped")
        # Readers polling as fast as they can while the admin stops and
        # starts: every management request succeeds.
        self.start_instance(u)
        stop = threading.Event()
        errors = []

        def poll(c):
            try:
                with c:
                    while not stop.is_set():
                        c.call("stats", {"uuid": u})
            except Exception as e:  # reported below
                errors.append(e)
        # Connected here, before the threads: as_peer() changes the whole
        # process, umdevctl's children included.
        pollers = [threading.Thread(target=poll, args=(
            self.reader(),)) for _ in range(4)]
        for p in pollers:
            p.start()
        try:
            for _ in range(15):
                self.ok("stop", u, "--grace", "0")
                self.start_instance(u)
        finally:
            stop.set()
            for p in pollers:
                p.join(harness.T_CMD)
        self.assertEqual(errors, [])

    # ---- what devices say ------------------------------------------------

    def test_device_strings_escaped(self):
        self.daemon()
        evil = os.path.join(self.tmp, "no-such-dir",
                            "x\x1b[31mRED\x7f\u009b\nFORGED line")
        u = self.ok("define", "-p", "serial", "-t", T, "--attr",
                    "port0=" + evil).out.strip()
        r = self.ctl("start", u)
        self.assertEqual(r.rc, 1, str(r))
        for name, text in (("start", r.err),
                           ("list", self.ok("list", "--defined").out),
                           ("info", self.ok("info", u).out)):
            with self.subTest(output=name):
                self.assertNotIn("\x1b", text)
                self.assertNotIn("\x7f", text)
                self.assertNotIn("\u009b", text)
                self.assertFalse(any(line.startswith("FORGED")
                                     for line in text.splitlines()), text)
        info = self.ok("info", u).out
        self.assertIn("x\\x1b[31mRED\\x7f\\xc2\\x9b\\x0aFORGED line", info)
        # --json keeps the value, escaped as JSON.
        j = self.ok("--json", "info", u)
        self.assertNotIn("\x1b", j.out)
        self.assertNotIn("\u009b", j.out)
        self.assertEqual(j.json()["instance"]["attrs"]["port0"], evil)
        log = self.d.log()
        self.assertIn("x\\x1b[31mRED", log)
        self.assertNotIn("\x1b", log)
        self.assertFalse(any(line.startswith("FORGED")
                             for line in log.splitlines()), log)


if __name__ == "__main__":
    harness.main()
