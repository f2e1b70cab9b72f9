"""The accel parent under umdevd (devices/accel/README.md "Under umdevd").

  * types: accel-1wq, accel-2wq, accel-4wq with their descriptions and
    device_api, available_instances 16/8/4 from the 16-queue pool;
  * each type: define, start, list, info (the worker's engine facts),
    real descriptors through RUNDIR/<uuid>.sock (daemon-accel-client: one
    MEMMOVE and one CRC32C per queue, verified, plus an address fault),
    stop, undefine;
  * available_instances of all three types following the free queues as
    mixed instances start and stop, and ENOSPC naming the parent;
  * the attributes engine_threads and max_transfer: applied, and refused
    with a reason when wrong;
  * one instance per worker: killing one worker leaves the others serving.

    python3 test_accel.py --umdevd P --umdevctl P --probe P --req-client P \
        --accel-client P [unittest arguments]
"""

import os
import signal
import subprocess

import harness
from harness import DaemonTestCase, new_uuid

TYPES = {"accel-1wq": 1, "accel-2wq": 2, "accel-4wq": 4}
POOL = 16  # queues in the built-in pool
T_TRAFFIC = 30  # seconds for one client run (sanitized builds are slow)


class AccelTestCase(DaemonTestCase):

    def traffic(self, sock, queues):
        """Run daemon-accel-client on @sock; return its output lines."""
        p = subprocess.run([harness.BIN["accel_client"], sock, str(queues),
                            str(T_TRAFFIC * 1000)],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=T_TRAFFIC + 10)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0,
                         "accel client on %s (%d queues) failed:\n%s%s\n"
                         "daemon log:\n%s" % (sock, queues, out,
                                              p.stderr.decode(),
                                              self.d.log()))
        lines = out.splitlines()
        for q in range(queues):
            self.assertIn("memmove queue=%d bytes=65549 ok" % q, lines)
            self.assertTrue([ln for ln in lines
                             if ln.startswith("crc32c queue=%d " % q) and
                             ln.endswith(" ok")], out)
        self.assertIn("fault addr=0x100800000 ok", lines)
        self.assertEqual(lines[-1], "done completed=%d" % (2 * queues + 1))
        return lines

    def accel_types(self):
        """{type: available_instances} of the accel parent only."""
        return {t["name"]: t["available_instances"]
                for t in self.js("types", "-p", "accel")["types"]}

    def expect_free(self, free):
        """Every accel type shows what @free queues hold of it."""
        self.assertEqual(self.accel_types(),
                         {t: free // k for t, k in TYPES.items()})


class Types(AccelTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()

    def test_types(self):
        types = self.js("types", "-p", "accel")["types"]
        self.assertEqual(sorted(t["name"] for t in types), sorted(TYPES))
        for t in types:
            k = TYPES[t["name"]]
            self.assertEqual(t["parent"], "accel", t)
            self.assertEqual(t["device_api"], "vfio-pci", t)
            self.assertEqual(t["available_instances"], POOL // k, t)
            self.assertIn("with %d queue%s" % (k, "" if k == 1 else "s"),
                          t["description"])
            self.assertIn("1234:11ec", t["description"])
        # The serial parent is still there, untouched.
        self.assertEqual(self.types()["serial-2port"], 1024)
        # Both pools are listed for --pool.
        p = subprocess.run([harness.BIN["umdevd"], "--help"],
                           capture_output=True, timeout=harness.T_CMD)
        self.assertIn("  accel.queues %d\n" % POOL, p.stdout.decode())
        # The plain listing shows the parent and its types.
        out = self.ok("types").out
        for t in TYPES:
            self.assertIn("  %s\n" % t, out)

    def test_each_type(self):
        for t, k in sorted(TYPES.items()):
            with self.subTest(type=t):
                short = t.split("-", 1)[1]
                u = self.ok("define", "-p", "accel", "-t", short).out.strip()
                d = self.instance(u)
                self.assertEqual((d["parent"], d["type"], d["state"]),
                                 ("accel", t, "stopped"), d)
                self.assertEqual(d["attrs"], {})
                i = self.start_instance(u)
                self.assertEqual(i["state"], "running", i)
                self.assertTrue(os.path.exists(i["socket"]), i)
                self.assertEqual(i["socket"],
                                 os.path.join(self.d.rundir, u + ".sock"))
                self.assertEqual(self.accel_types()[t], POOL // k - 1)
                self.assertIn(u, self.instances())
                self.assertIn(u, self.ok("list").out)
                info = self.js("info", u)
                ep = info["device"]["endpoints"]
                self.assertEqual(ep["queues"], k, ep)
                self.assertEqual(ep["engine_threads"], 1, ep)
                self.assertIn(ep["crc32c"], ("hardware", "software"), ep)
                self.assertEqual(ep["max_transfer"], 2 << 20, ep)
                self.assertEqual((ep["completed"], ep["failed"]), (0, 0), ep)
                msix = [q for q in info["device"]["irqs"]
                        if q["name"] == "MSIX"]
                self.assertEqual(msix[0]["count"], k + 1, info)
                self.assertIn("PCI", str(self.probe(i["socket"])))
                self.traffic(i["socket"], k)
                ep = self.js("info", u)["device"]["endpoints"]
                # 2 per queue and the address fault, all counted.
                self.assertEqual((ep["completed"], ep["failed"]),
                                 (2 * k + 1, 1), ep)
                self.assertGreater(ep["bytes"], k * 65549, ep)
                text = self.ok("info", u).out
                self.assertIn("    queues   %d\n" % k, text)
                self.assertIn("    completed %d\n" % (2 * k + 1), text)
                self.assertEqual(self.ok("stop", u).out, "")
                self.assertEqual(self.instance(u)["state"], "stopped")
                self.assertFalse(os.path.exists(i["socket"]))
                self.assertEqual(self.accel_types()[t], POOL // k)
                self.ok("undefine", u)
                self.assertIsNone(self.lookup(u))
        self.expect_free(POOL)
        self.assertEqual(self.sockets_in_rundir(), [])

    def test_unshared_guest_memory(self):
        """Guest RAM mapped without an fd (QEMU without share=on): queues
        fault, and the worker says why once, in its log and in
        umdevctl info, naming the fix."""
        reason = "guest RAM is not shared with the server: start QEMU " \
                 "with a memory backend that has share=on"
        u = self.ok("define", "-p", "accel", "-t", "2wq").out.strip()
        i = self.start_instance(u)
        info = self.js("info", u)["device"]
        self.assertTrue(info["needs_shared_memory"], info)
        self.assertNotIn("guest_memory", info)
        p = subprocess.run([harness.BIN["accel_client"], i["socket"], "2",
                            str(T_TRAFFIC * 1000), "unshared"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=T_TRAFFIC + 10)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        self.assertIn("unshared queue=1 ring_fault ok", out.splitlines())
        info = self.js("info", u)["device"]
        self.assertTrue(info.get("guest_memory", "").startswith(reason),
                        info)
        self.assertIn("  guest memory: " + reason, self.ok("info", u).out)
        self.assertEqual(self.d.log().count(reason), 1, self.d.log())
        self.ok("stop", u)
        self.ok("undefine", u)
        # The audit says which types need it.
        audit = self.ctl("--json", "audit", "accel-2wq").json()
        self.assertTrue(audit["profile"]["needs_shared_memory"], audit)
        self.assertIn("guest memory: must be shared",
                      self.ctl("audit", "accel-2wq").out)

    def test_transient_restarts_clean(self):
        """A second session on a fresh worker sees a fresh device."""
        for _ in range(2):
            i = self.start_instance("-p", "accel", "-t", "accel-2wq")
            self.traffic(i["socket"], 2)
            self.ok("stop", i["uuid"])
            self.assertIsNone(self.lookup(i["uuid"]))
        self.expect_free(POOL)


class Availability(AccelTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()

    def test_mixed(self):
        self.expect_free(16)
        a = self.start_instance("-p", "accel", "-t", "accel-4wq")["uuid"]
        self.expect_free(12)
        b = self.start_instance("-p", "accel", "-t", "accel-2wq")["uuid"]
        self.expect_free(10)
        c = self.start_instance("-p", "accel", "-t", "accel-1wq")["uuid"]
        self.assertEqual(self.accel_types(),
                         {"accel-1wq": 9, "accel-2wq": 4, "accel-4wq": 2})
        # Fill up: two more 4wq leave one queue.
        more = [self.start_instance("-p", "accel", "-t", "accel-4wq")["uuid"]
                for _ in range(2)]
        self.assertEqual(self.accel_types(),
                         {"accel-1wq": 1, "accel-2wq": 0, "accel-4wq": 0})
        for t in ("accel-2wq", "accel-4wq"):
            u = new_uuid()
            self.refused("ENOSPC", "start", "-p", "accel", "-t", t, "-u", u,
                         says=["parent 'accel' has no free resources", t])
            self.assertIsNone(self.lookup(u))
        d = self.ok("define", "-p", "accel", "-t", "4wq").out.strip()
        self.refused("ENOSPC", "start", d,
                     says="parent 'accel' has no free resources")
        self.assertEqual(self.instance(d)["state"], "stopped")
        last = self.start_instance("-p", "accel", "-t", "accel-1wq")["uuid"]
        self.expect_free(0)
        self.refused("ENOSPC", "start", "-p", "accel", "-t", "accel-1wq",
                     says="parent 'accel' has no free resources")
        # The serial parent is not affected by accel's pool.
        self.assertEqual(self.types()["serial-2port"], 1024)
        # Everything that runs still serves while the pool is full.
        self.traffic(self.instance(b)["socket"], 2)
        # Stops give the queues back to all three types at once.
        self.ok("stop", c, "--grace", "0")
        self.expect_free(1)
        self.ok("stop", b, "--grace", "0")
        self.expect_free(3)
        self.ok("stop", more[0], "--grace", "0")
        self.expect_free(7)
        # Now the definition fits.
        self.assertEqual(self.start_instance(d)["state"], "running")
        self.expect_free(3)
        for u in (a, more[1], last, d):
            self.ok("stop", u, "--grace", "0")
        self.ok("undefine", d)
        self.expect_free(16)
        self.assertEqual(self.sockets_in_rundir(), [])


class PoolOption(AccelTestCase):

    def test_lowered(self):
        self.daemon(["--pool", "accel.queues=6"])
        self.assertIn("pool accel.queues limited to 6 of %d units" % POOL,
                      self.d.log())
        self.expect_free(6)
        i = self.start_instance("-p", "accel", "-t", "accel-4wq")
        self.expect_free(2)
        self.refused("ENOSPC", "start", "-p", "accel", "-t", "accel-4wq",
                     says="parent 'accel' has no free resources")
        # An engine is per instance: the 4wq has all of its 4 queues.
        self.traffic(i["socket"], 4)
        self.ok("stop", i["uuid"])
        self.expect_free(6)


class Attrs(AccelTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()

    def test_applied(self):
        u = self.ok("define", "-p", "accel", "-t", "accel-4wq", "--attr",
                    "engine_threads=2", "--attr",
                    "max_transfer=131072").out.strip()
        self.assertEqual(self.instance(u)["attrs"],
                         {"engine_threads": 2, "max_transfer": 131072})
        i = self.start_instance(u)
        ep = self.js("info", u)["device"]["endpoints"]
        self.assertEqual((ep["queues"], ep["engine_threads"],
                          ep["max_transfer"]), (4, 2, 131072), ep)
        self.assertRegex(self.d.log(), r"%s: accel: 4 queues, 2 engine "
                         r"threads, CRC32C (hardware|software)" % u)
        # The guest sees the limit in MAX_XFER; two threads still serve.
        lines = self.traffic(i["socket"], 4)
        self.assertIn("max_xfer=131072", lines[0])
        self.ok("stop", u)
        # modify takes effect at the next start.
        self.ok("modify", u, "--delattr", "max_transfer", "--attr",
                "engine_threads=4")
        self.start_instance(u)
        ep = self.js("info", u)["device"]["endpoints"]
        self.assertEqual((ep["engine_threads"], ep["max_transfer"]),
                         (4, 2 << 20), ep)
        self.ok("stop", u)
        self.ok("undefine", u)

    def test_refused(self):
        cases = [
            (["engine_threads=0"],
             "attribute engine_threads=0 is out of range: 1 to 4"),
            (["engine_threads=5"],
             "attribute engine_threads=5 is out of range: 1 to 4"),
            (["engine_threads=-1"], "engine_threads=-1 is out of range"),
            (["engine_threads=two"],
             "attribute engine_threads must be an integer from 1 to 4 "
             "(got \"two\")"),
            (["engine_threads=true"], "must be an integer"),
            (["max_transfer=4095"],
             "attribute max_transfer=4095 is out of range: 4096 to "
             "1073741824 bytes"),
            (["max_transfer=1073741825"], "out of range"),
            (["max_transfer=big"], "max_transfer must be an integer"),
            (["queues=2"],
             "unknown attribute 'queues' for an accel instance (allowed: "
             "engine_threads, max_transfer)"),
            (["port0=pty"], "unknown attribute 'port0'"),
        ]
        for attrs, says in cases:
            with self.subTest(attrs=attrs):
                args = []
                for a in attrs:
                    args += ["--attr", a]
                u = new_uuid()
                self.refused("EINVAL", "define", "-p", "accel", "-t",
                             "accel-1wq", "-u", u, *args, says=says)
                self.assertIsNone(self.lookup(u))
                self.refused("EINVAL", "start", "-p", "accel", "-t",
                             "accel-1wq", "-u", u, *args, says=says)
                self.assertIsNone(self.lookup(u))
        # modify is checked the same way, and a refusal changes nothing.
        u = self.ok("define", "-p", "accel", "-t", "accel-1wq", "--attr",
                    "engine_threads=3").out.strip()
        self.refused("EINVAL", "modify", u, "--attr", "engine_threads=9",
                     says="engine_threads=9 is out of range")
        self.assertEqual(self.instance(u)["attrs"], {"engine_threads": 3})
        self.ok("undefine", u)
        self.expect_free(POOL)
        self.assertEqual(self.instances(), {})


class Isolation(AccelTestCase):
    """Each instance has its own worker and engine: one dying ends only
    itself."""

    def setUp(self):
        super().setUp()
        self.daemon()

    def test_worker_killed(self):
        a = self.start_instance("-p", "accel", "-t", "accel-2wq")
        b = self.start_instance("-p", "accel", "-t", "accel-4wq")
        self.assertNotEqual(a["pid"], b["pid"])
        self.expect_free(10)
        os.kill(a["pid"], signal.SIGKILL)
        f = self.wait_state(a["uuid"], "failed")
        self.assertIn("killed by signal 9", f["exit"]["reason"])
        # Its queues are back; the other one serves on.
        self.expect_free(12)
        now = self.instance(b["uuid"])
        self.assertEqual((now["state"], now["pid"]), ("running", b["pid"]))
        self.traffic(b["socket"], 4)
        self.ok("stop", a["uuid"])
        self.ok("stop", b["uuid"])
        self.expect_free(POOL)


if __name__ == "__main__":
    harness.main(programs=("accel-client",))
