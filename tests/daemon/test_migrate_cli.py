"""umdevctl migrate between two umdevd: the move itself (the destination
runs the instance as it ran, the source is gone), the handshake a VMM
speaks, and every refusal leaving the source running with its state and
nothing behind at the destination."""

import os
import pwd
import subprocess

import harness
from harness import DaemonTestCase, new_uuid

T = "serial-2port"
A = "accel-2wq"


class MigrateCli(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.start_daemons(())

    def start_daemons(self, args):
        """The source (self.d) and a destination with its own control
        socket, rundir and statedir."""
        tmp = os.path.join(self.tmp, "dst")
        os.makedirs(tmp, exist_ok=True)
        self.dst = harness.Daemon(tmp, args)
        self.daemons.append(self.dst)
        self.dst.start()
        self.src = self.daemon(args)

    def on(self, d, *args, **kw):
        """umdevctl against daemon @d."""
        return self.ctl(*args, control=d.control, **kw)

    def instances_of(self, d):
        r = self.on(d, "--json", "list")
        self.assertEqual(r.rc, 0, str(r))
        return {i["uuid"]: i for i in r.json()["instances"]}

    def start_serial(self, *attrs):
        u = new_uuid()
        self.ok("start", "-u", u, "-p", "serial", "-t", T, *attrs)
        return u

    def migrate(self, u, *extra, stdin=None, timeout=harness.T_CMD):
        argv = [harness.BIN["umdevctl"], "--control", self.src.control,
                "migrate", u, "--to", self.dst.control] + list(extra)
        p = subprocess.run(argv, input=stdin, capture_output=True,
                           timeout=timeout)
        return harness.Result(argv, p.returncode, p.stdout.decode(),
                              p.stderr.decode())

    def assert_untouched(self, u):
        """The source runs @u on; the destination has nothing of it."""
        self.assertEqual(self.instances_of(self.src)[u]["state"], "running")
        self.assertNotIn(u, self.instances_of(self.dst))

    def start_accel(self):
        u = new_uuid()
        self.ok("start", "-u", u, "-p", "accel", "-t", A, "--mode", "0640",
                "--attr", "max_transfer=65536")
        return u

    def vmm(self, sock, mode="release"):
        """A VMM stand-in attached to @sock (daemon-req-client)."""
        p = self.spawn([harness.BIN["req_client"], sock, mode, "20000"])
        lines = harness.Lines(p)
        first = lines.next()
        self.assertIsNotNone(first, p.stderr.read().decode() if
                             first is None else "")
        self.assertTrue(first.startswith("attached"), first)
        return p, lines

    def test_moves_an_idle_instance_there_and_back(self):
        """The destination runs the instance as the source ran it (type,
        mode, attributes), as a definition; the transient source is gone;
        the same command moves it back."""
        u = self.start_accel()
        before = self.instances_of(self.src)[u]
        r = self.migrate(u, "--json")
        self.assertEqual(r.rc, 0, str(r))
        out = r.json()
        self.assertEqual(out["uuid"], u)
        self.assertTrue(out["state_bytes"] > 0 and out["precopy_bytes"] > 0,
                        out)
        self.assertGreaterEqual(out["blackout_us"], out["transfer_us"])
        self.assertTrue(out["socket"].startswith(self.dst.rundir), out)
        moved = self.instances_of(self.dst)[u]
        for k in ("parent", "type", "mode", "owner", "attrs"):
            self.assertEqual(moved[k], before[k], k)
        self.assertEqual(moved["state"], "running")
        self.assertTrue(moved["defined"])
        self.wait_for("the source instance to go",
                      lambda: u not in self.instances_of(self.src))
        back = subprocess.run(
            [harness.BIN["umdevctl"], "--control", self.dst.control,
             "migrate", u, "--to", self.src.control],
            capture_output=True, timeout=harness.T_CMD)
        self.assertEqual(back.returncode, 0, back.stderr)
        self.assertIn(b"migrated %s to %s" % (u.encode(),
                                               self.src.control.encode()),
                      back.stdout)
        self.assertEqual(self.instances_of(self.src)[u]["state"], "running")
        # The definition moved back with it.
        self.assertNotIn(u, self.on(self.dst, "--json", "list",
                                    "--defined").json()["instances"])

    def test_definition_moves(self):
        """A defined source: its definition (start policy included) is
        at the destination afterwards, and gone from the source."""
        u = self.ok("define", "-p", "accel", "-t", A, "--auto").out.strip()
        self.ok("start", u)
        r = self.migrate(u)
        self.assertEqual(r.rc, 0, str(r))
        self.wait_state(u, None)
        moved = self.instances_of(self.dst)[u]
        self.assertEqual((moved["state"], moved["defined"], moved["start"]),
                         ("running", True, "auto"))

    def nvme_file(self, d, u, where=None):
        return os.path.join(where or os.path.join(d.statedir, "nvme.data"),
                            u + ".img")

    def test_nvme_needs_the_same_backing_file(self):
        """nvme's data is its backing file, not in the stream: with the
        default directories (each daemon's own) the destination would
        serve another file, so the move is refused and the source keeps
        running on its data; with `dir` naming one directory the file
        moves with the instance and is never removed on the way."""
        u = new_uuid()
        self.ok("start", "-u", u, "-p", "nvme", "-t", "nvme-1q",
                "--attr", "size=16M")
        src_file = self.nvme_file(self.src, u)
        with open(src_file, "r+b") as f:
            f.write(b"migrating data")
        r = self.migrate(u)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("the destination refused the state", r.err)
        self.assert_untouched(u)
        with open(src_file, "rb") as f:
            self.assertEqual(f.read(14), b"migrating data")
        self.wait_for("the refusal's reason in the destination's log",
                      lambda: "differs from this device's" in self.dst.log())

        shared = os.path.join(self.tmp, "shared")
        os.mkdir(shared)
        v = new_uuid()
        self.ok("start", "-u", v, "-p", "nvme", "-t", "nvme-1q",
                "--attr", "size=16M", "--attr", "dir=" + shared)
        with open(self.nvme_file(None, v, shared), "r+b") as f:
            f.write(b"shared data")
        r = self.migrate(v)
        self.assertEqual(r.rc, 0, str(r))
        self.wait_for("the source instance to go",
                      lambda: v not in self.instances_of(self.src))
        self.assertEqual(self.instances_of(self.dst)[v]["state"], "running")
        with open(self.nvme_file(None, v, shared), "rb") as f:
            self.assertEqual(f.read(11), b"shared data")

    def test_attached_vmm_needs_the_handshake(self):
        u = self.start_accel()
        sock = self.instances_of(self.src)[u]["socket"]
        p, lines = self.vmm(sock)
        r = self.migrate(u)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("a VMM (pid %d) is attached" % p.pid, r.err)
        self.assertIn("--handshake", r.err)
        self.assert_untouched(u)

    def handshake(self, u):
        argv = [harness.BIN["umdevctl"], "--control", self.src.control,
                "migrate", u, "--to", self.dst.control, "--handshake"]
        p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        harness._popen_pids.add(p.pid)
        self.procs.append(p)
        return p, harness.Lines(p)

    def say(self, p, text):
        p.stdin.write(text.encode() + b"\n")
        p.stdin.flush()

    def test_handshake_moves_the_vmm(self):
        """stop, go, attach SOCKET, go (the VMM attached there), done: the
        destination runs with the VMM on it; the source's VMM is asked
        to let go (REQ) and the source instance ends."""
        u = self.start_accel()
        src_vmm, src_lines = self.vmm(self.instances_of(self.src)[u]["socket"])
        p, lines = self.handshake(u)
        self.assertEqual(lines.next(), "stop")
        self.say(p, "go")
        line = lines.next()
        self.assertTrue(line.startswith("attach "), line)
        dest_sock = line.split(" ", 1)[1]
        self.assertTrue(dest_sock.startswith(self.dst.rundir), dest_sock)
        # The destination is loaded and stopped: the VMM attaches.
        dst_vmm, _ = self.vmm(dest_sock, mode="hold")
        self.say(p, "go")
        done = lines.next()
        self.assertRegex(done, r"^done blackout_us=\d+ transfer_us=\d+ "
                         r"precopy_bytes=\d+ state_bytes=\d+$")
        self.assertEqual(p.wait(harness.T_CMD), 0, p.stderr.read())
        p.stdin.close()
        # The source asked its VMM to let go, and ended.
        self.assertEqual(src_lines.rest(), ["req", "released"])
        self.wait_for("the source instance to go",
                      lambda: u not in self.instances_of(self.src))
        info = self.on(self.dst, "--json", "info", u).json()
        self.assertEqual(info["device"]["client_pid"], dst_vmm.pid)

    def test_handshake_refused_resumes_the_source(self):
        """A VMM that answers anything but go, or goes away, aborts: the
        source runs on with its VMM, the destination has nothing."""
        u = self.start_accel()
        src_vmm, _ = self.vmm(self.instances_of(self.src)[u]["socket"])
        for answer_at, answer in (("stop", "no"), ("attach", None)):
            with self.subTest(answer_at=answer_at, answer=answer):
                p, lines = self.handshake(u)
                self.assertEqual(lines.next(), "stop")
                if answer_at == "attach":
                    self.say(p, "go")
                    self.assertTrue(lines.next().startswith("attach "))
                if answer is None:
                    p.stdin.close()
                else:
                    self.say(p, answer)
                line = lines.next()
                self.assertTrue(line.startswith("abort "), line)
                self.assertEqual(p.wait(harness.T_CMD), 1)
                if not p.stdin.closed:
                    p.stdin.close()
                self.assert_untouched(u)
                info = self.js("info", u)
                self.assertEqual(info["device"]["client_pid"], src_vmm.pid)
        self.assertIsNone(src_vmm.poll())

    def test_usage(self):
        u = self.start_serial()
        self.fails(2, "migrate", u, says="--to CONTROL-SOCKET is required")
        self.fails(2, "migrate", "--to", self.dst.control,
                   says="-u UUID is required")
        self.assert_untouched(u)

    def test_not_running(self):
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        r = self.migrate(u)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("only a running instance migrates", r.err)
        self.assertNotIn(u, self.instances_of(self.dst))

    def test_destination_unreachable(self):
        u = self.start_accel()
        argv = [harness.BIN["umdevctl"], "--control", self.src.control,
                "migrate", u, "--to", os.path.join(self.tmp, "nobody")]
        p = subprocess.run(argv, capture_output=True, timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"cannot reach the destination umdevd", p.stderr)
        self.assert_untouched(u)

    def test_type_without_migration(self):
        """A plug-in type without migration hooks: the source's worker
        closes the manager connection and says why in the log; nothing
        is started at the destination."""
        pdir = os.path.join(self.tmp, "plugins")
        os.mkdir(pdir)
        os.symlink(harness.BIN["plugin_label"],
                   os.path.join(pdir, "label.so"))
        self.src.terminate()
        self.dst.terminate()
        self.start_daemons(["--plugin-dir", pdir, "--admit", "any"])
        u = new_uuid()
        self.ok("start", "-u", u, "-p", "label", "-t", "card",
                "--attr", "label=x")
        r = self.migrate(u)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("refused a migration connection", r.err)
        self.assert_untouched(u)
        self.wait_for("the worker's reason in the log",
                      lambda: "migration manager refused: Operation not "
                              "supported" in self.src.log())

    def test_manage_needs_management(self):
        """`manage` is a management command: a reader gets EPERM and no
        descriptor."""
        u = self.start_serial()
        with self.src.connect(timeout=5) as c:
            r = c.call("manage", {"uuid": u})
            self.assertTrue(r["ok"], r)
        pw = pwd.getpwnam("nobody")
        nobody = harness.as_user(pw.pw_uid, pw.pw_gid)
        r = self.ctl("migrate", u, "--to", self.dst.control, user=nobody)
        self.assertEqual(r.rc, 1, str(r))
        self.assertIn("needs root or the daemon's management group", r.err)
        self.assert_untouched(u)


if __name__ == "__main__":
    harness.main(programs=("plugin-label",))
