"""What a worker taken over by its guest can do to the host under a root
umdevd (docs/SANDBOX.md): nothing a worker's own user could not, and that
user is never root.

  * every thread of a worker of a root-owned instance runs as the worker
    user (uid, gid, no supplementary groups) with no capability at all,
    its bounding and ambient sets empty; `--worker-user` picks the user
    and refuses root;
  * host ends at a path the owner chose are made with the owner's rights:
    root never follows a link the owner placed (the chown race of issue
    13), and RUNDIR's host ends are removed by the daemon at stop;
  * with the test hook (UMDEV_TEST_HOOKS builds), a worker trying to
    remove a root-only file gets EACCES from the filter, and its try to
    reach the control socket kills it; with the filter only logging, the
    daemon still refuses a worker's management request although its user
    is in the management group; with --syslog a worker still logs, through
    the socket it connected before the filter.

The daemon runs as root (as in CI); the owner of the instances is nobody.

    python3 test_contain.py --umdevd P --umdevctl P --probe P \
        --req-client P [--test-hooks] [unittest args]
"""

import os
import socket
import stat
import subprocess
import sys

import harness
from harness import (NOBODY, DaemonTestCase, as_user, new_uuid, other_group,
                     status_fields)

T = "serial-2port"
NO_CAPS = "0000000000000000"




class Contain(DaemonTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("the containment tests need a root umdevd (run them "
                      "as root, as CI does)")

    def assert_unprivileged(self, pid, uid, gid):
        """Every thread of @pid runs as @uid/@gid with nothing more, and
        it is not dumpable (its /proc files are root's)."""
        self.assertEqual(os.stat("/proc/%d/status" % pid).st_uid, 0)
        tasks = os.listdir("/proc/%d/task" % pid)
        for t in tasks:
            st = status_fields("/proc/%d/task/%s/status" % (pid, t))
            self.assertEqual(st["Uid"].split(), [str(uid)] * 4, (t, st))
            self.assertEqual(st["Gid"].split(), [str(gid)] * 4, (t, st))
            self.assertEqual(st["Groups"], "", (t, st))
            for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                self.assertEqual(st[k], NO_CAPS, (t, k, st))
        return tasks

    # ---- who a worker is --------------------------------------------

    def test_root_owned_worker_is_not_root(self):
        self.daemon()
        w = harness.default_worker_user()
        a = self.start_instance("-p", "accel", "-t", "accel-4wq", "--attr",
                                "engine_threads=3")
        s = self.start_instance("-p", "serial", "-t", T)
        self.assertEqual((a["owner"], s["owner"]),
                         ({"uid": 0, "gid": 0}, {"uid": 0, "gid": 0}))
        # Engine threads exist before the worker gives up root: each
        # must have lost everything too.
        self.assertGreaterEqual(
            len(self.assert_unprivileged(a["pid"], w.pw_uid, w.pw_gid)), 4)
        self.assert_unprivileged(s["pid"], w.pw_uid, w.pw_gid)
        # Root still owns the instance socket and the host ends; the
        # workers serve all the same.
        st = os.stat(s["socket"])
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600))
        ep = self.js("info", s["uuid"])["device"]["endpoints"]
        self.assertEqual(os.stat(ep["port0"]["host_end"]).st_uid, 0)
        self.assertIn("PCI", str(self.probe(s["socket"])))
        p = subprocess.run([harness.BIN["accel_client"], a["socket"], "4",
                            "3000"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.ok("stop", a["uuid"])
        self.ok("stop", s["uuid"])
        self.assertIn("workers of root-owned instances run as %s (uid %d, "
                      "gid %d)" % (w.pw_name, w.pw_uid, w.pw_gid),
                      self.d.log())

    def test_root_group_owner_is_not_lent(self):
        """An owner with group root (or user root) does not lend its
        identity: the worker user serves."""
        self.daemon(["--worker-user", "nobody"])
        i = self.start_instance("-p", "serial", "-t", T, "--owner", "nobody",
                                "--group", "root")
        self.assertEqual(i["owner"], {"uid": NOBODY.pw_uid, "gid": 0})
        self.assert_unprivileged(i["pid"], NOBODY.pw_uid, NOBODY.pw_gid)
        self.ok("stop", i["uuid"])

    def test_worker_user_option(self):
        gname, gid = other_group()
        self.daemon(["--worker-user", "nobody"])
        i = self.start_instance("-p", "serial", "-t", T, "--owner", "nobody",
                                "--group", gname)
        # An unprivileged owner lends its identity.
        self.assert_unprivileged(i["pid"], NOBODY.pw_uid, gid)
        self.ok("stop", i["uuid"])
        for user, says in (("root", "workers may not run as root"),
                           ("no-such-user-%s" % new_uuid()[:6],
                            "--worker-user: no user named 'no-such-user-")):
            with self.subTest(user=user):
                p = subprocess.run([harness.BIN["umdevd"], "--worker-user",
                                    user, "--control", self.tmp + "/c2",
                                    "--rundir", self.tmp + "/r2",
                                    "--statedir", self.tmp + "/s2"],
                                   stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=harness.T_CMD)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn(says, p.stderr.decode())
                self.assertFalse(os.path.exists(self.tmp + "/c2"))

    def test_syslog_through_the_filter(self):
        """With --syslog a worker logs through a socket it connected
        before the filter, which has no socket() and no connect()."""
        if not harness.FLAGS["test_hooks"]:
            self.fail("umdevd was built without UMDEV_TEST_HOOKS")
        path = os.path.join(self.tmp, "syslog")
        log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(log.close)
        log.bind(path)
        os.environ["UMDEV_TEST_SYSLOG"] = path
        try:
            # Its own lines go to the machine's syslog, not to stderr.
            d = self.daemon(["--syslog"], start=False)
            d.start(wait=False)
        finally:
            del os.environ["UMDEV_TEST_SYSLOG"]
        self.wait_for("umdevd to listen", d.connectable)
        i = self.start_instance("-p", "serial", "-t", T)
        self.assertEqual(os.readlink("/proc/%d/fd/5" % i["pid"])[:7],
                         "socket:")
        self.probe(i["socket"])
        want = ["<30>umdevd[%d]: %s: serial: client %s" %
                (i["pid"], i["uuid"], what)
                for what in ("attached", "detached")]
        got = []
        log.settimeout(harness.T_CMD)
        while len(got) < 2:
            line = log.recv(4096).decode()
            if "serial: client" in line:
                got.append(line)
        self.assertEqual(got, want)
        self.assertEqual(self.instance(i["uuid"])["state"], "running")
        self.ok("stop", i["uuid"])

    # ---- host ends: never a path the owner controls, as root ---------

    def owned_dir(self):
        """A directory nobody owns, and a root-only one beside it with a
        root-only file: (owned, rootonly, secret)."""
        owned = os.path.join(self.tmp, "owned")
        os.mkdir(owned, 0o755)
        os.chown(owned, NOBODY.pw_uid, NOBODY.pw_gid)
        rootonly = os.path.join(self.tmp, "rootonly")
        os.mkdir(rootonly, 0o700)
        secret = os.path.join(rootonly, "secret")
        with open(secret, "w") as f:
            f.write("root's\n")
        os.chmod(secret, 0o600)
        return owned, rootonly, secret

    def test_owner_link_not_followed(self):
        """The owner puts a symlink into the path of its host end,
        pointing into a root-only directory. Root used to create the
        socket there and chown it (by path, following links) to the
        owner; now the socket is made with the owner's rights, which do
        not reach there: the start fails and names why, and nothing of
        root's changes hands."""
        self.daemon()
        owned, rootonly, secret = self.owned_dir()
        os.symlink(rootonly, os.path.join(owned, "sub"))
        os.lchown(os.path.join(owned, "sub"), NOBODY.pw_uid, NOBODY.pw_gid)
        u = self.ok("define", "-p", "serial", "-t", T, "--owner", "nobody",
                    "--attr", "port0=%s/sub/p0.sock" % owned).out.strip()
        e = self.refused("EIO", "start", u)
        self.assertIn("cannot create the device", e["message"])
        self.assertIn("the instance owner (uid %d, gid %d) may not create it "
                      "there" % (NOBODY.pw_uid, NOBODY.pw_gid), self.d.log())
        self.assertEqual(os.listdir(rootonly), ["secret"])
        st = os.stat(secret)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                         (0, 0, 0o600))
        # A link placed at the path itself is refused as before.
        os.symlink(secret, os.path.join(owned, "p0.sock"))
        self.ok("modify", u, "--attr", "port0=%s/p0.sock" % owned)
        self.refused("EIO", "start", u)
        st = os.stat(secret)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600))

    def test_owner_dir_host_end(self):
        """In a directory the owner may write, the host end is born the
        owner's (mode 0600) and the owner reaches the guest's UART through
        it; a stopped instance leaves a dead socket there (the worker may
        not remove files) that the next start replaces. RUNDIR's host
        ends are the daemon's to remove."""
        self.daemon()
        owned, _, _ = self.owned_dir()
        path = os.path.join(owned, "p0.sock")
        u = self.ok("define", "-p", "serial", "-t", T, "--owner", "nobody",
                    "--attr", "port0=" + path, "--attr",
                    "port1=pty").out.strip()
        for run in range(2):
            i = self.start_instance(u)
            st = os.lstat(path)
            self.assertTrue(stat.S_ISSOCK(st.st_mode), run)
            self.assertEqual((st.st_uid, st.st_gid,
                              stat.S_IMODE(st.st_mode)),
                             (NOBODY.pw_uid, NOBODY.pw_gid, 0o600), run)
            ep = self.js("info", u)["device"]["endpoints"]
            pty = os.stat(ep["port1"]["host_end"])
            self.assertEqual(pty.st_uid, NOBODY.pw_uid)
            link = ep["port1"]["path"]
            self.assertEqual(os.lstat(link).st_uid, NOBODY.pw_uid)
            p = subprocess.run(
                as_user(NOBODY.pw_uid, NOBODY.pw_gid) +
                [sys.executable, "-c",
                 "import socket,sys; s=socket.socket(socket.AF_UNIX); "
                 "s.connect(sys.argv[1])", path],
                capture_output=True, timeout=harness.T_CMD)
            self.assertEqual(p.returncode, 0, p)
            self.ok("stop", u)
            self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))
            self.assertFalse(os.path.lexists(link), link)
        t = self.start_instance("-p", "serial", "-t", T, "--owner", "nobody")
        ends = [n for n in os.listdir(self.d.rundir)
                if n.startswith(t["uuid"] + ".port")]
        self.assertEqual(sorted(ends), [t["uuid"] + ".port0",
                                        t["uuid"] + ".port1"])
        self.ok("stop", t["uuid"])
        self.assertEqual([n for n in os.listdir(self.d.rundir)
                          if n.startswith(t["uuid"])], [])

    # ---- a worker taken over by its guest ----------------------------

    def hostile(self, args, owner=()):
        """A serial instance armed with the hostile test hook; a VMM
        attaches to it. Return (instance, victim file)."""
        if not harness.FLAGS["test_hooks"]:
            self.fail("umdevd was built without UMDEV_TEST_HOOKS")
        rootonly = os.path.join(self.tmp, "rootonly")
        os.mkdir(rootonly, 0o700)
        victim = os.path.join(rootonly, "victim")
        with open(victim, "w") as f:
            f.write("keep me\n")
        bad = new_uuid()
        os.environ["UMDEV_TEST_HOSTILE"] = bad
        os.environ["UMDEV_TEST_UNLINK"] = victim
        try:
            self.daemon(args)
        finally:
            del os.environ["UMDEV_TEST_HOSTILE"]
            del os.environ["UMDEV_TEST_UNLINK"]
        i = self.start_instance("-p", "serial", "-t", T, "-u", bad, *owner)
        subprocess.run([harness.BIN["probe"], "--timeout", "3000",
                        i["socket"]], capture_output=True,
                       timeout=harness.T_CMD)
        return i, victim

    def test_hostile_worker_contained(self):
        i, victim = self.hostile([])
        self.wait_for("the hook", lambda: "test hook: connecting to the "
                      "control socket" in self.d.log())
        log = self.d.log()
        # unlink: refused by the filter, softly; the file is there.
        self.assertIn("test hook: unlink(%s) = -1 (Permission denied)" %
                      victim, log)
        self.assertTrue(os.path.exists(victim))
        # connect: outside the sandbox, the worker dies there.
        f = self.wait_state(i["uuid"], "failed")
        log = self.d.log()
        self.assertNotIn("test hook: connect:", log)
        self.assertNotIn("test hook: control replied", log)
        self.assertEqual(f["exit"]["signal"], 31, f)
        self.assertEqual(self.instances(defined=True), {})

    def test_worker_never_manages(self):
        """Even with the filter only logging (as if it had been
        bypassed) and the worker's user in the management group, the
        daemon refuses a worker's management request."""
        gname, gid = other_group()
        i, victim = self.hostile(["--sandbox", "log", "--group", gname],
                                 owner=("--owner", "nobody", "--group",
                                        gname))
        self.assertEqual(harness.proc_ids(i["pid"]), (NOBODY.pw_uid, gid))
        self.wait_for("the hook's reply",
                      lambda: "test hook: control replied" in self.d.log())
        log = self.d.log()
        self.assertIn("test hook: control replied: {", log)
        reply = log.split("test hook: control replied: ", 1)[1]
        self.assertIn('"ok":false', reply)
        self.assertIn('"code":"EPERM"', reply)
        self.assertIn("'define' refused: pid %d is the worker of instance "
                      "%s, and workers never manage" % (i["pid"], i["uuid"]),
                      reply)
        self.assertIn("%s: its worker (pid %d) sent 'define' on the control "
                      "socket; refused" % (i["uuid"], i["pid"]), log)
        self.assertEqual(self.instances(defined=True), {})
        self.assertTrue(os.path.exists(victim))
        # The same user, not a worker, does manage.
        u = self.ok("define", "-p", "serial", "-t", T,
                    user=as_user(NOBODY.pw_uid, gid)).out.strip()
        self.ok("undefine", u)
        self.assertEqual(self.instance(i["uuid"])["state"], "running")
        self.ok("stop", i["uuid"])


if __name__ == "__main__":
    harness.main(programs=("accel-client",), flags=("test-hooks",))
