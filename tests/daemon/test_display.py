"""The display parent under umdevd (devices/display/README.md).

  * types display-1024 and display-1920, available_instances from the
    video memory pool (MiB) as --pool sets it, following running
    instances of both types, ENOSPC when it is spent;
  * an instance answers as the PCI device bochs-drm binds (1234:1111,
    revision 2, class 038000), `umdevctl info` shows its video memory
    and mode; attributes are refused with the reason;
  * `umdevctl audit display-1024 --conformance` passes every criterion,
    the kit's data path driven by the parent's exercise() hook with no
    message per page drawn;
  * `umdevctl screenshot` writes the screen a VMM stand-in
    (daemon-display-client) set up and drew, pixel for pixel, in every
    pixel format, with pitch and X/Y offsets, black when blanked or
    without a mode; only for its owner, root or the management group;
    clear refusals for a bad UUID, a stopped or non-display instance.

    python3 test_display.py --umdevd P --umdevctl P --probe P \
        --req-client P --conform P --display-client P [unittest arguments]
"""

import os
import subprocess
import sys

import harness
from harness import DaemonTestCase, NOBODY, as_user

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "common"))
from pngread import png_decode  # noqa: E402

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


def widen(v, bits):
    return (v << (8 - bits)) | (v >> (2 * bits - 8))


def expected_rows(vram, w, h, bpp, virt_w, xoff, yoff, big_endian):
    """The picture a monitor shows of @vram in this mode, worked out
    here from the register values (devices/display/README.md)."""
    bytepp = (bpp + 7) // 8
    pitch = virt_w * bytepp
    start = yoff * pitch + xoff * bytepp
    rows = []
    for y in range(h):
        row = vram[start + y * pitch:start + y * pitch + w * bytepp]
        out = bytearray(3 * w)
        if bpp == 32 and not big_endian:    # B G R X
            out[0::3], out[1::3], out[2::3] = row[2::4], row[1::4], row[0::4]
        elif bpp == 32:                     # X R G B
            out[0::3], out[1::3], out[2::3] = row[1::4], row[2::4], row[3::4]
        elif bpp == 24:                     # B G R
            out[0::3], out[1::3], out[2::3] = row[2::3], row[1::3], row[0::3]
        else:
            for x in range(w):
                v = row[2 * x] | row[2 * x + 1] << 8
                if bpp == 16:
                    rgb = (widen(v >> 11, 5), widen((v >> 5) & 0x3f, 6),
                           widen(v & 0x1f, 5))
                else:
                    rgb = (widen((v >> 10) & 0x1f, 5),
                           widen((v >> 5) & 0x1f, 5), widen(v & 0x1f, 5))
                out[3 * x:3 * x + 3] = bytes(rgb)
        rows.append(bytes(out))
    return rows


class Screenshot(DisplayTestCase):

    def setUp(self):
        super().setUp()
        # In the harness's directory (removed with it); nobody writes its
        # screenshot here.
        self.shots = os.path.join(self.tmp, "shots")
        os.mkdir(self.shots)
        os.chmod(self.shots, 0o777)

    def draw(self, inst, mode, order="le", seed=1, extra=()):
        """Set @mode (w, h, bpp, virt_w, xoff, yoff) through the stand-in
        and fill video memory; return video memory as it drew it."""
        dump = os.path.join(self.shots, "vram")
        p = subprocess.run([harness.BIN["display_client"], inst["socket"],
                            "5000", dump] + [str(v) for v in mode] +
                           [order, str(seed)] + list(extra),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        if "off" not in extra:
            # The device took the mode as asked: no fix-up hides a bug.
            self.assertEqual(p.stdout.decode().split(),
                             ["mode"] + [str(v) for v in mode])
        with open(dump, "rb") as f:
            return f.read()

    def shot(self, u, name="s.png", **kw):
        path = os.path.join(self.shots, name)
        r = self.ok("--json", "screenshot", u, path, **kw)
        with open(path, "rb") as f:
            return r.json(), png_decode(f.read())

    def check_mode(self, inst, mode, order="le", seed=1):
        vram = self.draw(inst, mode, order, seed)
        res, (w, h, rows) = self.shot(inst["uuid"])
        self.assertEqual((w, h), mode[:2], res)
        self.assertEqual((res["width"], res["height"]), mode[:2], res)
        want = expected_rows(vram, *mode, big_endian=order == "be")
        for y in range(h):
            if rows[y] != want[y]:
                x = next(i for i in range(len(rows[y]))
                         if rows[y][i] != want[y][i]) // 3
                self.fail("mode %r %s: pixel (%d, %d) is %s, the guest "
                          "drew %s" % (mode, order, x, y,
                                       rows[y][3 * x:3 * x + 3].hex(),
                                       want[y][3 * x:3 * x + 3].hex()))

    def test_pixels(self):
        inst = self.start_instance("-p", "display", "-t", "display-1024")
        cases = [
            ((1024, 768, 32, 1024, 0, 0), "le"),
            # A page flip: the second frame, a wider pitch, a column
            # offset; big-endian byte order.
            ((800, 600, 32, 1000, 16, 700), "be"),
            ((800, 600, 32, 1000, 16, 700), "le"),
            ((640, 480, 24, 700, 5, 9), "le"),
            ((640, 480, 16, 656, 3, 10), "le"),
            ((320, 200, 15, 330, 1, 500), "le"),
        ]
        for i, (mode, order) in enumerate(cases):
            with self.subTest(mode=mode, order=order):
                self.check_mode(inst, mode, order, seed=i + 1)
        info = self.js("info", inst["uuid"])["device"]
        self.assertEqual(info["screenshots"], len(cases), info)
        self.assertEqual(info["endpoints"]["mode"], "320x200@15", info)
        self.assertIn("screenshots: %d taken" % len(cases),
                      self.ok("info", inst["uuid"]).out)

    def test_1920_second_page(self):
        inst = self.start_instance("-p", "display", "-t", "display-1920")
        self.check_mode(inst, (1920, 1080, 32, 1920, 0, 1080), "le", 7)

    def test_black(self):
        inst = self.start_instance("-p", "display", "-t", "display-1024")
        u = inst["uuid"]
        for extra, size, why in (((), (640, 480), "no mode set"),
                                 (("blank",), (800, 600), "blanked"),
                                 (("off",), (640, 480), "no mode set")):
            with self.subTest(extra=extra):
                if extra:
                    self.draw(inst, (800, 600, 32, 800, 0, 0), extra=extra)
                r = self.ok("screenshot", u, os.path.join(self.shots, "b.png"))
                self.assertIn("black (%s)" % why, r.out, str(r))
                with open(os.path.join(self.shots, "b.png"), "rb") as f:
                    w, h, rows = png_decode(f.read())
                self.assertEqual((w, h), size)
                self.assertEqual(set(rows), {bytes(3 * w)})

    def test_owner_only(self):
        u = self.ok("define", "-p", "display", "-t", "display-1024",
                    "--owner", "nobody").out.strip()
        inst = self.js("start", u)["instance"]
        self.draw(inst, (640, 480, 32, 640, 0, 0))
        nobody = as_user(NOBODY.pw_uid, NOBODY.pw_gid)
        res, (w, h, _) = self.shot(u, user=nobody)
        self.assertEqual((w, h), (640, 480))
        # Someone else: neither the owner nor a manager.
        other = as_user(NOBODY.pw_uid - 1, NOBODY.pw_gid)
        self.refused("EPERM", "screenshot", u,
                     os.path.join(self.shots, "x.png"), user=other,
                     says="is for its owner (uid %d)" % NOBODY.pw_uid)
        self.assertFalse(os.path.exists(os.path.join(self.shots, "x.png")))
        root = self.start_instance("-p", "display", "-t", "display-1024")
        self.refused("EPERM", "screenshot", root["uuid"],
                     os.path.join(self.shots, "x.png"), user=nobody)

    def test_read_only(self):
        """The descriptor umdevd hands out cannot write the screen."""
        inst = self.start_instance("-p", "display", "-t", "display-1024")
        # umdevctl maps it PROT_READ; here the descriptor itself is
        # checked through /proc: opened O_RDONLY.
        code = ("import json,os,socket,sys\n"
                "s=socket.socket(socket.AF_UNIX)\n"
                "s.connect(sys.argv[1])\n"
                "s.sendall(json.dumps({'version':1,'cmd':'screen','id':1,"
                "'args':{'uuid':sys.argv[2]}}).encode()+b'\\n')\n"
                "msg,fds,_,_=socket.recv_fds(s,65536,4)\n"
                "print(json.loads(msg.split(b'\\n')[0])['result']"
                "['screen']['size'])\n"
                "fl=int(open('/proc/self/fdinfo/%d'%fds[0]).read()"
                ".split('flags:')[1].split()[0],8)\n"
                "print(fl&3)\n"
                "try:\n"
                "  os.write(fds[0],b'x'); print('wrote')\n"
                "except OSError as e: print(e.errno)\n"
                "import fcntl\n"
                "print(fcntl.fcntl(fds[0],fcntl.F_GET_SEALS))\n"
                "try:\n"
                "  os.ftruncate(fds[0],0); print('truncated')\n"
                "except OSError as e: print(e.errno)\n")
        p = subprocess.run(["python3", "-c", code, self.d.control,
                            inst["uuid"]], capture_output=True,
                           timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        size, acc, wr, seals, trunc = p.stdout.decode().split()
        self.assertEqual(int(size), 8 << 20)
        self.assertEqual(int(acc), os.O_RDONLY)
        self.assertEqual(int(wr), 9)  # EBADF
        # Sealed at its size (lib/dev), so no holder can pull pages from
        # under a reader's mapping: shrink, grow and the seals themselves.
        import fcntl
        want = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
        self.assertEqual(int(seals) & want, want)
        self.assertIn(int(trunc), (22, 1, 9))  # not truncated

    def test_refusals(self):
        serial = self.start_instance("-p", "serial", "-t", "serial-2port")
        path = os.path.join(self.shots, "r.png")
        self.refused("ENOTSUP", "screenshot", serial["uuid"], path,
                     says="shows no screen: its type has no screen")
        self.refused("EINVAL", "screenshot", "not-a-uuid", path,
                     says="is not a UUID")
        self.refused("ENOENT", "screenshot", harness.new_uuid(), path,
                     says="no instance")
        u = self.ok("define", "-p", "display", "-t",
                    "display-1024").out.strip()
        self.refused("ENOENT", "screenshot", u, path,
                     says="only a running instance shows a screen")
        self.fails(2, "screenshot", u, says="FILE is required")
        inst = self.js("start", u)["instance"]
        self.fails(1, "screenshot", u, os.path.join(self.shots, "no", "x.png"),
                   says="cannot create")
        self.assertFalse(os.path.exists(path))
        self.assertEqual(inst["state"], "running")


class ParentScreens(DaemonTestCase):
    """What a parent's screen operation says is checked by the worker:
    plugin_screen.c describes what its attribute asks."""

    def setUp(self):
        super().setUp()
        self.shots = self.tmp
        pdir = os.path.join(self.tmp, "plugins")
        os.mkdir(pdir)
        os.symlink(harness.BIN["plugin_screen"],
                   os.path.join(pdir, "screen.so"))
        self.daemon(["--plugin-dir", pdir, "--admit", "any"])

    def test_worker_checks(self):
        path = os.path.join(self.shots, "p.png")
        i = self.start_instance("-p", "screen", "-t", "screen-card",
                                "--attr", "screen=ok")
        r = self.js("screenshot", i["uuid"], path)
        self.assertEqual((r["width"], r["height"]), (16, 16), r)
        for what, code, says in (
                ("outside", "EIO", "described a screen outside its memory"),
                ("format", "EIO", "in an unknown format"),
                ("trapped", "EIO", "its screen is not in shared memory"),
                ("fails", "EIO", "shows no screen: Input/output error")):
            with self.subTest(screen=what):
                i = self.start_instance("-p", "screen", "-t", "screen-card",
                                        "--attr", "screen=" + what)
                os.unlink(path) if os.path.exists(path) else None
                self.refused(code, "screenshot", i["uuid"], path, says=says)
                self.assertFalse(os.path.exists(path))
                # The worker serves on.
                self.assertEqual(self.js("info", i["uuid"])["device"]
                                 ["screenshots"], 0)


if __name__ == "__main__":
    harness.main(programs=("conform", "display-client", "plugin-screen"))
