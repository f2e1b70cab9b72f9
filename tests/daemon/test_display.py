"""The display parent under umdevd (devices/display/README.md).

  * types display-1024 and display-1920, available_instances from the
    video memory pool (MiB) as --pool sets it, following running
    instances of both types, ENOSPC when it is spent;
  * an instance answers as the PCI device bochs-drm binds (1234:1111,
    revision 2, class 038000), `umdevctl info` shows its video memory
    and mode; attributes are refused with the reason;
  * `umdevctl audit display-1024 --conformance` passes every criterion,
    the kit's data path driven by the parent's exercise() hook with no
    message per page drawn.

    python3 test_display.py --umdevd P --umdevctl P --probe P \
        --req-client P --conform P [unittest arguments]
"""

import harness
from harness import DaemonTestCase

TYPES = {"display-1024": 8, "display-1920": 16}
POOL = 40  # MiB: five display-1024 or two display-1920


class DisplayTestCase(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon(("--pool", "display.vram_mib=%d" % POOL))

    def avail(self):
        return {t["name"]: t["available_instances"]
                for t in self.js("types", "-p", "display")["types"]}

    def expect_free(self, free):
        self.assertEqual(self.avail(),
                         {t: free // k for t, k in TYPES.items()})


class Types(DisplayTestCase):

    def test_types(self):
        types = self.js("types", "-p", "display")["types"]
        self.assertEqual(sorted(t["name"] for t in types), sorted(TYPES))
        for t in types:
            self.assertEqual(t["device_api"], "vfio-pci", t)
            self.assertIn("1234:1111", t["description"], t)
        self.expect_free(POOL)

    def test_instance(self):
        for t, mib in TYPES.items():
            with self.subTest(type=t):
                u = self.ok("define", "-p", "display", "-t", t).out.strip()
                i = self.js("start", u)["instance"]
                self.assertEqual(i["state"], "running", i)
                self.expect_free(POOL - mib)
                pci = self.probe(i["socket"])["pci"]
                self.assertEqual((pci["vendor_id"], pci["device_id"],
                                  pci["class"]), (0x1234, 0x1111, 0x038000),
                                 pci)
                ep = self.js("info", u)["device"]["endpoints"]
                self.assertEqual((ep["vram_bytes"], ep["mode_enabled"],
                                  ep["blanked"]), (mib << 20, False, False),
                                 ep)
                self.ok("stop", u)
                self.ok("undefine", u)
        self.expect_free(POOL)

    def test_pool_follows_instances(self):
        big = self.js("start", "-p", "display", "-t",
                      "display-1920")["instance"]
        self.expect_free(POOL - 16)
        for _ in range((POOL - 16) // 8):
            self.js("start", "-p", "display", "-t", "display-1024")
        self.expect_free(0)
        self.refused("ENOSPC", "start", "-p", "display", "-t",
                     "display-1024", says="display")
        self.ok("stop", big["uuid"])
        self.expect_free(16)

    def test_attributes_refused(self):
        r = self.fails(1, "define", "-p", "display", "-t", "display-1024",
                       "--attr", "vnc=on")
        self.assertIn("unknown attribute 'vnc'", r.err, str(r))
        self.assertEqual(self.instances(defined=True), {})


class Audit(DisplayTestCase):

    def setUp(self):
        # DisplayTestCase.setUp() starts the daemon: the quarantine first.
        self.small_asan_quarantine()
        super().setUp()

    def test_conformance(self):
        for t in TYPES:
            with self.subTest(type=t):
                _, doc = self.audit_passes(t)
                dp = {c["id"]: c["evidence"] for c in doc["criteria"]}[2]
                self.assertRegex(dp, r"1234:1111 display .*the display "
                                 r"parent's exercise\(\); exercise\(\): "
                                 r"2000 units in (\d+) messages, \1 of them "
                                 r"waiting .* = 0\.000 msgs/units; 2000 "
                                 r"pages drawn through the BAR0 mapping in "
                                 r"0 msgs")
                self.assertIn("worst 0.000 <= profile bound 0", dp)
                self.assertEqual(self.instances(), {})


if __name__ == "__main__":
    harness.main(programs=("conform",))
