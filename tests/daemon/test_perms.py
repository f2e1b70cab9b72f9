"""Who may do what: SO_PEERCRED checks on the control socket, the
management group, and instance ownership (socket owner and mode, the
worker's user). The daemon runs as root; peers become `nobody` through
setpriv."""

import os
import stat
import subprocess

import harness
from harness import NOBODY, DaemonTestCase, as_user, new_uuid, other_group

T = "serial-2port"
READ = [("types",), ("list",), ("list", "--defined"), ("version",)]



class Perms(DaemonTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("the permission tests need root (they switch to "
                      "nobody with setpriv)")
        self.gname, self.gid = other_group()

    def nobody(self, groups=(), gid=None):
        return as_user(NOBODY.pw_uid, NOBODY.pw_gid if gid is None else gid,
                       groups)

    def check_read_only(self, user, u):
        for args in READ + [("info", u), ("list", "-u", u)]:
            with self.subTest(args=args):
                self.ok(*args, user=user)
        manage = [
            ("define", ("-p", "serial", "-t", T)),
            ("undefine", (u,)),
            ("start", (u,)),
            ("start", ("-p", "serial", "-t", T)),
            ("stop", (u,)),
            ("modify", (u, "--auto")),
        ]
        for verb, args in manage:
            with self.subTest(verb=verb, args=args):
                self.refused("EPERM", verb, *args, user=user,
                             says="'%s' needs root or the daemon's "
                                  "management group" % verb)

    def test_nobody_reads_only(self):
        self.daemon()
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        s = self.ok("define", "-p", "serial", "-t", T).out.strip()
        self.ok("start", s)
        before = self.ok("list", "--defined", "--json").out
        self.check_read_only(self.nobody(), u)
        self.check_read_only(self.nobody(), s)
        # Nothing changed.
        self.assertEqual(self.ok("list", "--defined", "--json").out, before)
        # info of a running instance works for a reader too.
        j = self.ok("--json", "info", s, user=self.nobody()).json()
        self.assertEqual(j["instance"]["state"], "running")
        self.assertIn("device", j)
        # The control socket lets everyone in; the daemon decides.
        self.assertEqual(stat.S_IMODE(os.stat(self.d.control).st_mode),
                         0o666)

    def test_management_group(self):
        self.daemon(["--group", self.gname])
        # Supplementary group, and primary group: may manage.
        for user in (self.nobody(groups=(self.gid,)),
                     self.nobody(gid=self.gid)):
            with self.subTest(user=user):
                u = self.ok("define", "-p", "serial", "-t", T,
                            user=user).out.strip()
                self.start_instance(u)
                self.ok("stop", u, user=user)
                self.ok("modify", u, "--auto", user=user)
                self.ok("undefine", u, user=user)
                t = self.ok("start", "-p", "serial", "-t", T,
                            user=user).out.split()[0]
                self.ok("stop", t, user=user)
        # Not in the group: read only.
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        self.check_read_only(self.nobody(), u)

    def test_unknown_group_refused(self):
        p = subprocess.run([harness.BIN["umdevd"], "--group",
                            "no-such-group-%s" % new_uuid()[:6],
                            "--control", self.tmp + "/control"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("no group named 'no-such-group-", p.stderr.decode())
        self.assertFalse(os.path.exists(self.tmp + "/control"))

    def test_instance_owner(self):
        """A definition owned by nobody: its socket and host ends belong to
        nobody, mode as defined, and its worker runs as nobody (an owner
        that is not root lends the worker its identity)."""
        self.daemon()
        u = self.ok("define", "-p", "serial", "-t", T, "--owner", "nobody",
                    "--mode", "0660", "--attr", "port1=pty").out.strip()
        i = self.instance(u)
        self.assertEqual(i["owner"], {"uid": NOBODY.pw_uid,
                                      "gid": NOBODY.pw_gid})
        i = self.start_instance(u)
        st = os.stat(i["socket"])
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                         (NOBODY.pw_uid, NOBODY.pw_gid, 0o660))
        self.assertEqual(harness.proc_ids(i["pid"]),
                         (NOBODY.pw_uid, NOBODY.pw_gid))
        ep = self.js("info", u)["device"]["endpoints"]
        for port in ("port0", "port1"):
            st = os.stat(ep[port]["host_end"])
            self.assertEqual((st.st_uid, st.st_gid),
                             (NOBODY.pw_uid, NOBODY.pw_gid), port)
        # The owner can drive the device.
        p = subprocess.run(self.nobody() + [harness.BIN["probe"], "--json",
                                            "--timeout", "5000",
                                            i["socket"]],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.ok("stop", u)
        # --group alone changes the socket's group; a root-owned
        # instance's worker runs as the worker user, never as root.
        self.ok("modify", u, "--owner", "root", "--group", self.gname)
        i = self.start_instance(u)
        st = os.stat(i["socket"])
        self.assertEqual((st.st_uid, st.st_gid), (0, self.gid))
        w = harness.default_worker_user()
        self.assertEqual(harness.proc_ids(i["pid"]), (w.pw_uid, w.pw_gid))


if __name__ == "__main__":
    harness.main()
