"""What an owner or a device must not be able to do to an instance or to
whoever looks at it: instance sockets any user could connect to (a
world-writable mode); device strings that drive the terminal of the one
running umdevctl or forge lines in the log (docs/CLI.md).
"""

import json
import os

import harness
from harness import DaemonTestCase, new_uuid

T = "serial-2port"


class Safety(DaemonTestCase):

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
