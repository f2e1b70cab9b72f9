"""What a worker can do to the host under a root umdevd
(docs/SANDBOX.md).

  * host ends at a path the owner chose are made with the owner's rights:
    root never follows a link the owner placed (the chown race of issue
    13), and RUNDIR's host ends are removed by the daemon at stop.

The daemon runs as root (as in CI); the owner of the instances is nobody.

    python3 test_contain.py --umdevd P --umdevctl P --probe P \
        --req-client P [--test-hooks] [unittest args]
"""

import os
import stat
import subprocess
import sys

import harness
from harness import NOBODY, DaemonTestCase, as_user

T = "serial-2port"


class Contain(DaemonTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("the containment tests need a root umdevd (run them "
                      "as root, as CI does)")

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
        it, start after start. RUNDIR's host ends are the daemon's to
        remove."""
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
            self.assertFalse(os.path.lexists(link), link)
        t = self.start_instance("-p", "serial", "-t", T, "--owner", "nobody")
        ends = [n for n in os.listdir(self.d.rundir)
                if n.startswith(t["uuid"] + ".port")]
        self.assertEqual(sorted(ends), [t["uuid"] + ".port0",
                                        t["uuid"] + ".port1"])
        self.ok("stop", t["uuid"])
        self.assertEqual([n for n in os.listdir(self.d.rundir)
                          if n.startswith(t["uuid"])], [])


if __name__ == "__main__":
    harness.main(programs=("accel-client",), flags=("test-hooks",))
