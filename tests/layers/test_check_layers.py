#!/usr/bin/env python3
"""The layer check's own rules: a crossing it must report, and uses it
must allow, so that a green `layers` test means something."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_layers as cl  # noqa: E402


class Rules(unittest.TestCase):
    def test_lib_points_one_way(self):
        order = ["util", "loop", "wire", "conn", "dev", "pci"]
        for i, low in enumerate(order):
            for high in order[i + 1:]:
                self.assertTrue(cl.allowed(high, low), (high, low))
                self.assertFalse(cl.allowed(low, high), (low, high))

    def test_no_pair_uses_each_other(self):
        for mods in (list(cl.LIB), list(cl.DAEMON)):
            for a in mods:
                for b in mods:
                    if a != b:
                        self.assertFalse(
                            cl.allowed(a, b) and cl.allowed(b, a), (a, b))

    def check(self, rules):
        """rules: {user: (what it may use, what it may not)}."""
        for user, (may, may_not) in rules.items():
            for used in may:
                self.assertTrue(cl.allowed(user, used), (user, used))
            for used in may_not:
                self.assertFalse(cl.allowed(user, used), (user, used))

    def test_audit_uses_public_api_only(self):
        self.check({"audit": (["dev_pub", "pci_pub"], ["dev", "conn"])})

    def test_devices_reach_public_lib_only(self):
        self.check({"device:accel": (
            ["dev_pub", "client"],
            ["audit", "mdev", "device:serial", "d_supervisor"])})

    def test_daemon_layers(self):
        self.check({
            "d_supervisor": ([], ["d_handlers", "device:serial"]),
            "d_defs": ([], ["d_supervisor"]),
            "d_handlers": ([], ["d_control"]),
            "d_control": (["d_handlers"], []),
            "d_parents": (["device:serial"], []),
            "d_main": (["mdev"], []),
        })

    def test_module_of(self):
        src = "/src"
        self.assertEqual(cl.module_of("/src/lib/dev/dma.c", src), "dev")
        self.assertEqual(cl.module_of("/src/include/umdev/pci.h", src),
                         "pci_pub")
        self.assertEqual(cl.module_of("/src/include/umdev/loop.h", src),
                         "loop")
        self.assertEqual(
            cl.module_of("/src/lib/include/umdev/dev_testing.h", src), "dev")
        self.assertEqual(cl.module_of("/src/devices/accel/engine.c", src),
                         "device:accel")
        self.assertIsNone(cl.module_of("/usr/include/stdio.h", src))
        self.assertIsNone(cl.module_of("/src/tests/func/harness.c", src))


if __name__ == "__main__":
    unittest.main()
