"""The nvme parent under umdevd (devices/nvme/README.md "Under umdevd").

  * types nvme-1q, nvme-4q, nvme-8q, available_instances from the
    32-pair pool, following mixed instances;
  * each type: start creates the sparse backing file of the default
    size in STATEDIR/nvme.data (root's, 0700), info shows the controller,
    the socket answers as a PCI device of class 010802, stop keeps the
    file;
  * the attributes size, backend and dir: applied, the file kept across
    restarts with its data and grown by a larger size, a smaller size
    than the file refused at start; bad values refused at define, start
    and modify with the reason, changing nothing;
  * the storage pool (MiB of backing files): sized to the data
    directory's free space unless --pool sets it, counted by
    available_instances with the queue pairs, a size that does not fit
    refused with ENOSPC at define, modify and start, changing nothing;
  * undefine keeps the backing file and says where it is, --delete-data
    removes it (as the owner in a dir of the definition's), and a
    running instance's is refused;
  * a transient instance's backing file goes when it stops (and when
    umdevd does), and a transient start on a file kept at undefine is
    refused, keeping it.

  * `umdevctl audit nvme-4q --conformance` passes every criterion, the
    kit's data path driven by the parent's exercise() hook.

    python3 test_nvme.py --umdevd P --umdevctl P --probe P --req-client P \
        --nvme-drive P --conform P [unittest arguments]
"""

import os
import pwd
import re
import subprocess

import harness
from harness import DaemonTestCase, new_uuid

TYPES = {"nvme-1q": 1, "nvme-4q": 4, "nvme-8q": 8}
POOL = 32
GIB = 1 << 30
# Backing storage for the tests that count queue pairs: room for more
# default (1 GiB) namespaces than the queue pairs allow, whatever the
# host's disk holds.
STORAGE = ("--pool", "nvme.storage_mib=65536")


class NvmeTestCase(DaemonTestCase):

    ARGS = STORAGE

    def setUp(self):
        super().setUp()
        self.daemon(self.ARGS)
        self.dir = os.path.join(self.d.statedir, "nvme.data")

    def nvme_types(self):
        return {t["name"]: t["available_instances"]
                for t in self.js("types", "-p", "nvme")["types"]}

    def expect_free(self, free):
        self.assertEqual(self.nvme_types(),
                         {t: free // k for t, k in TYPES.items()})

    def img(self, u, d=None):
        return os.path.join(d or self.dir, u + ".img")

    def define_in_nobodys_dir(self):
        """An 8M nvme-1q owned by nobody whose dir attribute names a
        directory nobody owns; returns (that directory, the UUID)."""
        nobody = pwd.getpwnam("nobody")
        shared = os.path.join(self.d.tmp, "shared")
        os.mkdir(shared)
        os.chown(shared, nobody.pw_uid, nobody.pw_gid)
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--owner",
                    "nobody", "--attr", "size=8M", "--attr",
                    "dir=" + shared).out.strip()
        return shared, u


class Types(NvmeTestCase):

    def test_types(self):
        types = self.js("types", "-p", "nvme")["types"]
        self.assertEqual(sorted(t["name"] for t in types), sorted(TYPES))
        for t in types:
            self.assertEqual(t["device_api"], "vfio-pci", t)
            self.assertIn("1234:11ed", t["description"], t)
        self.expect_free(POOL)

    def test_each_type(self):
        for t, k in TYPES.items():
            with self.subTest(type=t):
                u = self.ok("define", "-p", "nvme", "-t", t).out.strip()
                i = self.start_instance(u)
                self.assertEqual(i["state"], "running", i)
                self.assertEqual(self.nvme_types()[t], POOL // k - 1)
                st = os.stat(self.dir)
                self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o700))
                st = os.stat(self.img(u))
                # Sparse: the size, and (almost) nothing allocated.
                self.assertEqual(st.st_size, GIB)
                self.assertLess(st.st_blocks * 512, 1 << 20)
                self.assertEqual(st.st_mode & 0o777, 0o600)
                ep = self.js("info", u)["device"]["endpoints"]
                self.assertEqual((ep["queues"], ep["size"], ep["backend"],
                                  ep["file"]), (k, GIB, "file", self.img(u)),
                                 ep)
                self.assertEqual((ep["ready"], ep["fatal"], ep["commands"]),
                                 (False, False, 0), ep)
                info = self.js("info", u)
                msix = [q for q in info["device"]["irqs"]
                        if q["name"] == "MSIX"]
                self.assertEqual(msix[0]["count"], k + 1, info)
                pci = self.probe(i["socket"])["pci"]
                self.assertEqual((pci["vendor_id"], pci["device_id"],
                                  pci["subsystem_id"], pci["class"]),
                                 (0x1234, 0x11ed, k, 0x010802), pci)
                self.ok("stop", u)
                self.assertTrue(os.path.exists(self.img(u)))
                self.assertEqual(self.nvme_types()[t], POOL // k)
                self.ok("undefine", u)
        self.expect_free(POOL)

    def test_pool_follows_instances(self):
        a = self.start_instance("-p", "nvme", "-t", "nvme-8q")
        b = self.start_instance("-p", "nvme", "-t", "nvme-4q")
        self.expect_free(POOL - 12)
        for _ in range((POOL - 12) // 4):
            self.start_instance("-p", "nvme", "-t", "nvme-4q")
        self.expect_free(0)
        self.refused("ENOSPC", "start", "-p", "nvme", "-t", "nvme-1q",
                     says="nvme")
        self.ok("stop", a["uuid"])
        self.ok("stop", b["uuid"])
        self.expect_free(12)


class Attrs(NvmeTestCase):

    def test_size_dir_kept(self):
        other = os.path.join(self.d.tmp, "elsewhere")
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=64M", "--attr", "dir=" + other).out.strip()
        self.assertEqual(self.instance(u)["attrs"],
                         {"size": "64M", "dir": other})
        self.start_instance(u)
        path = self.img(u, other)
        self.assertEqual(os.stat(path).st_size, 64 << 20)
        self.assertEqual(os.stat(other).st_mode & 0o777, 0o700)
        self.ok("stop", u)
        # The data stays across a restart; a larger size grows the file.
        with open(path, "r+b") as f:
            f.seek(4096)
            f.write(b"kept")
        self.ok("modify", u, "--attr", "size=128M")
        self.start_instance(u)
        self.assertEqual(os.stat(path).st_size, 128 << 20)
        with open(path, "rb") as f:
            f.seek(4096)
            self.assertEqual(f.read(4), b"kept")
        ep = self.js("info", u)["device"]["endpoints"]
        self.assertEqual(ep["size"], 128 << 20, ep)
        self.ok("stop", u)
        # Smaller than the file: refused at start, the file untouched.
        self.ok("modify", u, "--attr", "size=64M")
        r = self.ctl("start", u)
        self.assertNotEqual(r.rc, 0, str(r))
        self.assertIn("more than size=", self.d.log())
        self.assertEqual(os.stat(path).st_size, 128 << 20)
        self.ok("undefine", u)

    def test_dir_as_owner(self):
        """A dir the definition names is used with the owner's rights:
        where nobody may not write, nothing is made; where it may, the
        file is nobody's."""
        nobody = pwd.getpwnam("nobody")
        locked = os.path.join(self.d.tmp, "locked")
        os.mkdir(locked, 0o700)
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--owner",
                    "nobody", "--attr", "size=8M", "--attr",
                    "dir=" + os.path.join(locked, "sub")).out.strip()
        r = self.ctl("start", u)
        self.assertNotEqual(r.rc, 0, str(r))
        self.assertIn("cannot create backing directory", self.d.log())
        self.assertEqual(os.listdir(locked), [])
        self.ok("undefine", u)
        shared, u = self.define_in_nobodys_dir()
        self.start_instance(u)
        st = os.stat(self.img(u, shared))
        self.assertEqual((st.st_uid, st.st_size), (nobody.pw_uid, 8 << 20))
        self.ok("stop", u)
        self.ok("undefine", u)

    def test_null_backend(self):
        i = self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                                "backend=null")
        ep = self.js("info", i["uuid"])["device"]["endpoints"]
        self.assertEqual(ep["backend"], "null", ep)
        self.assertNotIn("file", ep)
        self.assertFalse(os.path.exists(self.img(i["uuid"])))
        self.ok("stop", i["uuid"])

    def test_poll_max(self):
        i = self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                                "backend=null", "--attr", "poll_max_us=300")
        ep = self.js("info", i["uuid"])["device"]["endpoints"]
        self.assertEqual(ep["poll_max_us"], 300, ep)
        self.assertEqual(ep["poll_window_us"], 200, ep)
        self.ok("stop", i["uuid"])
        i = self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                                "backend=null")
        ep = self.js("info", i["uuid"])["device"]["endpoints"]
        self.assertEqual(ep["poll_max_us"], 8000, ep)
        self.ok("stop", i["uuid"])

    def test_refused(self):
        cases = [
            (["size=1000"], "attribute size=1000 is out of range: 1M to "
             "16T, a multiple of 4096"),
            (["size=17T"], "out of range"),
            (["size=1048577"], "out of range"),
            (["size=big"], "attribute size must be bytes"),
            (["size=1Q"], "attribute size must be bytes"),
            (["size=true"], "attribute size must be bytes"),
            (["backend=ram"], "attribute backend must be file or null"),
            (["dir=relative/path"], "attribute dir must be an absolute"),
            (["poll_max_us=199"], "attribute poll_max_us must be "
             "microseconds, 200 to 100000"),
            (["poll_max_us=100001"], "poll_max_us must be microseconds"),
            (["poll_max_us=2ms"], "poll_max_us must be microseconds"),
            (["poll_max_us=-300"], "poll_max_us must be microseconds"),
            (["queues=2"], "unknown attribute 'queues' for an nvme instance "
             "(allowed: size, backend, dir, poll_max_us)"),
        ]
        for attrs, says in cases:
            with self.subTest(attrs=attrs):
                args = []
                for a in attrs:
                    args += ["--attr", a]
                u = new_uuid()
                self.refused("EINVAL", "define", "-p", "nvme", "-t",
                             "nvme-1q", "-u", u, *args, says=says)
                self.assertIsNone(self.lookup(u))
                self.refused("EINVAL", "start", "-p", "nvme", "-t",
                             "nvme-1q", "-u", u, *args, says=says)
                self.assertIsNone(self.lookup(u))
                self.assertFalse(os.path.exists(self.img(u)))
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=2G").out.strip()
        self.refused("EINVAL", "modify", u, "--attr", "size=3",
                     says="size=3 is out of range")
        self.assertEqual(self.instance(u)["attrs"], {"size": "2G"})
        self.ok("undefine", u)
        self.expect_free(POOL)


class StoragePool(NvmeTestCase):
    """3 GiB of storage_mib: three default namespaces, or one of 2G."""

    ARGS = ("--pool", "nvme.storage_mib=3072")

    def test_counts_both_pools(self):
        self.assertEqual(self.nvme_types(),
                         {"nvme-1q": 3, "nvme-4q": 3, "nvme-8q": 3})
        a = self.start_instance("-p", "nvme", "-t", "nvme-8q", "--attr",
                                "size=2G")
        # 1 GiB and 24 pairs left: one more of the default size.
        self.assertEqual(self.nvme_types(),
                         {"nvme-1q": 1, "nvme-4q": 1, "nvme-8q": 1})
        self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                            "size=1G")
        self.assertEqual(self.nvme_types(),
                         {"nvme-1q": 0, "nvme-4q": 0, "nvme-8q": 0})
        # A null namespace stores nothing, and claims no storage.
        n = self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                                "backend=null")
        self.ok("stop", n["uuid"])
        self.ok("stop", a["uuid"])
        self.assertEqual(self.nvme_types(),
                         {"nvme-1q": 2, "nvme-4q": 2, "nvme-8q": 2})

    def test_define_modify_refused(self):
        u = new_uuid()
        self.refused("ENOSPC", "define", "-p", "nvme", "-t", "nvme-1q", "-u",
                     u, "--attr", "size=4G",
                     says="parent 'nvme' has no free resources for nvme-1q "
                     "with these attributes: it needs 4096 units of pool "
                     "nvme.storage_mib, which has 3072 in all")
        self.assertIsNone(self.lookup(u))
        self.assertFalse(os.path.exists(self.img(u)))
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=3G").out.strip()
        self.refused("ENOSPC", "modify", u, "--attr", "size=3073M",
                     says="needs 3073 units of pool nvme.storage_mib")
        self.assertEqual(self.instance(u)["attrs"], {"size": "3G"})
        # A size that is no whole MiB claims the MiB it reaches into.
        self.refused("ENOSPC", "modify", u, "--attr",
                     "size=%d" % ((3 << 30) + 4096), says="needs 3073 units")
        self.ok("undefine", u)

    def test_loaded_whatever_the_pool(self):
        """A definition written under a larger pool loads under a smaller
        one; its start says what is missing."""
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=3G").out.strip()
        self.d.terminate()
        self.daemon(("--pool", "nvme.storage_mib=1024"))
        self.assertEqual(self.instance(u)["attrs"], {"size": "3G"})
        self.refused("ENOSPC", "start", u,
                     says="it needs 3072 units of pool nvme.storage_mib, "
                     "which has 1024 free")
        self.assertEqual(self.instance(u)["state"], "stopped")
        self.ok("undefine", u)

    def test_start_refused(self):
        a = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=2G").out.strip()
        b = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=2G").out.strip()
        self.start_instance(a)
        self.refused("ENOSPC", "start", b,
                     says="it needs 2048 units of pool nvme.storage_mib, "
                     "which has 1024 free")
        self.assertEqual(self.instance(b)["state"], "stopped")
        self.assertFalse(os.path.exists(self.img(b)))
        u = new_uuid()
        self.refused("ENOSPC", "start", "-p", "nvme", "-t", "nvme-1q", "-u",
                     u, "--attr", "size=2G", says="which has 1024 free")
        self.assertIsNone(self.lookup(u))
        # Nothing leaked: the refused starts claimed nothing.
        self.assertEqual(self.nvme_types()["nvme-1q"], 1)
        self.ok("stop", a)
        self.start_instance(b)
        self.ok("stop", b)
        self.assertEqual(self.nvme_types()["nvme-1q"], 3)


class StorageDefault(NvmeTestCase):
    """Without --pool: the data directory's free space at start-up."""

    ARGS = ()

    def test_sized_for_host(self):
        m = re.search(r"pool nvme\.storage_mib sized to (\d+) for this host",
                      self.d.log())
        self.assertIsNotNone(m, self.d.log())
        vfs = os.statvfs(self.dir)
        free = vfs.f_bavail * vfs.f_frsize >> 20
        # Other tests write meanwhile: within 1 GiB of it.
        self.assertLess(abs(int(m.group(1)) - free), 1024,
                        (m.group(1), free))
        self.assertEqual(self.nvme_types()["nvme-1q"],
                         min(POOL, int(m.group(1)) >> 10))

    def test_no_definitions_in_data_dir(self):
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=8M").out.strip()
        self.start_instance(u)
        self.ok("stop", u)
        self.d.terminate()
        self.d.start()
        # The data directory is no parent's definitions.
        self.assertNotIn("skipping", self.d.log())
        # Only the parent that keeps data has a directory for it.
        self.assertEqual(sorted(os.listdir(self.d.statedir)),
                         ["nvme", "nvme.data"])
        self.assertEqual(self.instance(u)["attrs"], {"size": "8M"})


class Undefine(NvmeTestCase):

    def test_keeps_then_deletes(self):
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=8M").out.strip()
        self.start_instance(u)
        # Running: refused, the definition and the file stay.
        self.refused("EBUSY", "undefine", u, "--delete-data",
                     says="stop it first")
        self.assertTrue(os.path.exists(self.img(u)))
        self.ok("stop", u)
        r = self.ok("undefine", u)
        self.assertEqual(r.out, "kept backing file %s (undefine "
                         "--delete-data removes it)\n" % self.img(u))
        self.assertTrue(os.path.exists(self.img(u)))
        self.assertIsNone(self.lookup(u))
        # The same UUID again finds its data; this time it goes.
        self.ok("define", "-p", "nvme", "-t", "nvme-1q", "-u", u, "--attr",
                "size=8M")
        self.assertEqual(self.js("undefine", u, "--delete-data"),
                         {"removed": "backing file " + self.img(u)})
        self.assertFalse(os.path.exists(self.img(u)))
        self.assertIsNone(self.lookup(u))

    def test_never_started(self):
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q").out.strip()
        self.assertEqual(self.ok("undefine", u, "--delete-data").out, "")
        self.assertIsNone(self.lookup(u))

    def test_as_owner(self):
        """In a dir the definition names, the file goes with the owner's
        rights: where the owner may not remove it, it stays, and so does
        the definition."""
        nobody = pwd.getpwnam("nobody")
        shared, u = self.define_in_nobodys_dir()
        self.start_instance(u)
        self.ok("stop", u)
        os.chown(shared, 0, 0)
        os.chmod(shared, 0o755)
        self.refused("EACCES", "undefine", u, "--delete-data",
                     says="cannot remove backing file " + self.img(u, shared))
        self.assertTrue(os.path.exists(self.img(u, shared)))
        self.assertIsNotNone(self.lookup(u))
        os.chown(shared, nobody.pw_uid, nobody.pw_gid)
        self.ok("undefine", u, "--delete-data")
        self.assertFalse(os.path.exists(self.img(u, shared)))

    def test_other_parent(self):
        u = self.ok("define", "-p", "serial", "-t", "serial-2port"
                    ).out.strip()
        self.assertEqual(self.ok("undefine", u, "--delete-data").out, "")
        self.assertIsNone(self.lookup(u))


class Transient(NvmeTestCase):

    def test_data_goes_with_it(self):
        i = self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                                "size=8M")
        u = i["uuid"]
        self.assertEqual(os.path.getsize(self.img(u)), 8 << 20)
        self.ok("stop", u)
        self.assertFalse(os.path.exists(self.img(u)))
        self.assertIsNone(self.lookup(u))
        self.assertIn("%s: transient instance gone: backing file %s removed"
                      % (u, self.img(u)), self.d.log())
        # Running when umdevd stops: the same.
        u = self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                                "size=8M")["uuid"]
        self.assertTrue(os.path.exists(self.img(u)))
        self.d.terminate()
        self.assertFalse(os.path.exists(self.img(u)))
        self.assertEqual(os.listdir(self.dir), [])

    def test_made_persistent_keeps_it(self):
        u = self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                                "size=8M")["uuid"]
        self.ok("define", u)
        self.ok("stop", u)
        self.assertTrue(os.path.exists(self.img(u)))

    def test_kept_data_refused(self):
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=8M").out.strip()
        self.start_instance(u)
        self.ok("stop", u)
        self.ok("undefine", u)
        with open(self.img(u), "r+b") as f:
            f.write(b"kept data")
        self.refused("EEXIST", "start", "-p", "nvme", "-t", "nvme-1q", "-u",
                     u, "--attr", "size=8M",
                     says="backing file %s exists" % self.img(u))
        self.assertIsNone(self.lookup(u))
        with open(self.img(u), "rb") as f:
            self.assertEqual(f.read(9), b"kept data")
        # Defined again, it is the instance's data as before.
        self.ok("define", "-p", "nvme", "-t", "nvme-1q", "-u", u, "--attr",
                "size=8M")
        self.start_instance(u)
        self.ok("stop", u)
        with open(self.img(u), "rb") as f:
            self.assertEqual(f.read(9), b"kept data")


def pattern(seed, n):
    """umdev-nvme-drive's data for the 128 KiB at LBA @seed (xorshift64)."""
    m = (1 << 64) - 1
    x = (seed * 0x9e3779b97f4a7c15 & m) | 1
    out = bytearray()
    for _ in range(n // 8):
        x ^= x << 13 & m
        x ^= x >> 7
        x ^= x << 17 & m
        out += x.to_bytes(8, "little")
    return bytes(out)


class Audit(NvmeTestCase):

    def test_audit_leaves_nothing(self):
        """The audit's throw-away device keeps its backing file in the
        audit's own directory, removed with it."""
        # Without --conformance some criteria are "not run": exit 1.
        r = self.ctl("--json", "audit", "nvme-1q")
        doc = r.json()
        self.assertEqual(doc.get("type"), "nvme-1q", str(r))
        self.assertIn("criteria", doc, str(r))
        self.assertIn("backing file " + self.d.rundir + "/.audit-",
                      self.d.log())
        self.assertEqual(os.listdir(self.dir), [])
        self.assertEqual([n for n in os.listdir(self.d.rundir)
                          if n != "control"], [])


class Conformance(NvmeTestCase):

    def setUp(self):
        # NvmeTestCase.setUp() starts the daemon: the quarantine first.
        self.small_asan_quarantine()
        super().setUp()

    def test_conformance(self):
        """Every criterion passes, the data path measured by the nvme
        parent's exercise() hook driving all four I/O queues through the
        doorbell buffer: 2000 commands verified, none costing a message."""
        _, doc = self.audit_passes("nvme-4q")
        dp = {c["id"]: c["evidence"] for c in doc["criteria"]}[2]
        self.assertRegex(dp, r"1234:11ed nvme .*, the nvme parent's "
                         r"exercise\(\); exercise\(\): 2000 units in "
                         r"(\d+) messages, \1 of them waiting .* = "
                         r"0\.000 msgs/units; 4 I/O queues, 16 commands of "
                         r"16 KiB in flight")
        self.assertIn("worst 0.000 <= profile bound 0", dp)
        # The transient instance is gone, and its backing file with it.
        self.assertEqual(self.instances(), {})
        self.assertEqual(os.listdir(self.dir), [])


class Drive(NvmeTestCase):

    def test_verified_io(self):
        """umdev-nvme-drive's data is what lands in the backing file, and
        its counters are the controller's."""
        u = self.ok("define", "-p", "nvme", "-t", "nvme-1q", "--attr",
                    "size=8M").out.strip()
        i = self.start_instance(u)
        r = subprocess.run([harness.BIN["nvme_drive"], "--mib", "2",
                            "--timeout", "30", i["socket"]],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("namespace: 16384 blocks of 512 bytes", r.stdout)
        last = r.stdout.splitlines()[-1]
        # 3 admin commands, 16 writes of 128 KiB, a flush, 16 reads.
        self.assertRegex(last, r"^io ops=36 bytes=4194304 seconds=\S+ "
                         r"MBps=\S+ errors=0$")
        ep = self.js("info", u)["device"]["endpoints"]
        self.assertEqual((ep["written_bytes"], ep["read_bytes"],
                          ep["errors"]), (2 << 20, 2 << 20, 0), ep)
        with open(self.img(u), "rb") as f:
            for k in range(16):
                self.assertEqual(f.read(128 << 10), pattern(k * 256,
                                                            128 << 10), k)
        # More than the namespace: refused before any I/O.
        r = subprocess.run([harness.BIN["nvme_drive"], "--mib", "9",
                            i["socket"]], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("more than the namespace's 8388608 bytes", r.stderr)
        self.ok("stop", u)


if __name__ == "__main__":
    harness.main(programs=("nvme-drive", "conform"))
