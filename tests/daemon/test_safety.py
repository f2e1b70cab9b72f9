"""What a device must not be able to do to whoever looks at it: its
strings driving the terminal of the one running umdevctl or forging
lines in the log (docs/CLI.md).
"""

import os

import harness
from harness import DaemonTestCase

T = "serial-2port"


class Safety(DaemonTestCase):

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
