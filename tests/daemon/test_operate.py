"""Operating umdevd as an administrator would (issue 14): what `info` and
`list` report of a running instance whose definition changed, attribute
changes that cannot be applied, --json when the daemon is unreachable,
the log of management requests, usage details of umdevctl, and what a
SIGKILLed daemon leaves behind.
"""

import errno
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time

import harness
from harness import DaemonTestCase, new_uuid

T = "serial-2port"
SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


class Running(DaemonTestCase):
    """A modify of a running instance changes its definition only: info
    and list show what runs and, apart, what is pending."""

    def setUp(self):
        super().setUp()
        self.daemon()

    def test_info_and_list_show_what_runs_and_what_is_pending(self):
        u = self.ok("define", "-p", "serial", "-t", T, "--attr",
                    "port1=none").out.strip()
        sock = self.start_instance(u)["socket"]
        self.ok("modify", u, "--attr", "port0=pty", "--delattr", "port1",
                "--mode", "0660", "--auto")
        i = self.js("info", u)["instance"]
        # What runs: the socket's mode and host ends as they are.
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o600)
        self.assertEqual((i["mode"], i["attrs"], i["type"], i["state"]),
                         ("0600", {"port1": "none"}, T, "running"))
        # The start policy is the definition's: it is what the next daemon
        # start does.
        self.assertEqual(i["start"], "auto")
        # What the next start changes, as a modify would send it.
        self.assertEqual(i["pending"], {"mode": "0660",
                                        "attrs": {"port0": "pty",
                                                  "port1": None}})
        # The same in list (--json and text) and in the modify's answer.
        self.assertEqual(self.instance(u)["pending"], i["pending"])
        line = [ln for ln in self.ok("list").out.splitlines()
                if ln.startswith(u)]
        self.assertEqual(line, ["%s serial %s auto running (defined) "
                                "(pending: mode, attrs)" % (u, T)])
        text = self.ok("info", u).out
        self.assertIn("  mode: 0600\n", text)
        self.assertIn("    port1=none\n", text)
        self.assertIn("  pending (the definition, from the next start):\n"
                      "    mode: 0660\n"
                      "    attrs: port0=pty\n"
                      "    attrs: port1 removed\n", text)
        # The definition on disk is the new one; list --defined --dumpjson
        # shows it as it will start, list --dumpjson as it runs.
        with open(os.path.join(self.d.statedir, "serial", u)) as f:
            body = json.load(f)
        self.assertEqual((body["mode"], body["attrs"]),
                         ("0660", {"port0": "pty"}))
        self.assertEqual(
            self.ok("list", "--defined", "-u", u, "--dumpjson").json(),
            {"mdev_type": T, "start": "auto",
             "attrs": [{"port0": "pty"}], "owner": i["owner"],
             "mode": "0660"})
        self.assertEqual(
            self.ok("list", "-u", u, "--dumpjson").json()["attrs"],
            [{"port1": "none"}])
        # Restarted, the definition runs and nothing is pending.
        self.ok("stop", u)
        self.assertNotIn("pending", self.instance(u))
        sock = self.start_instance(u)["socket"]
        i = self.instance(u)
        self.assertNotIn("pending", i)
        self.assertEqual((i["mode"], i["attrs"]), ("0660", {"port0": "pty"}))
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o660)
        # A type and an owner are shown the same way; stats counts the
        # type that runs.
        a = self.ok("define", "-p", "accel", "-t", "1wq").out.strip()
        self.start_instance(a)
        self.ok("modify", a, "-t", "2wq", "--owner", "nobody")
        i = self.instance(a)
        self.assertEqual(i["type"], "accel-1wq")
        self.assertEqual(i["owner"], {"uid": os.getuid(), "gid": os.getgid()})
        self.assertEqual(i["pending"],
                         {"type": "accel-2wq",
                          "owner": {"uid": harness.NOBODY.pw_uid,
                                    "gid": harness.NOBODY.pw_gid}})
        self.assertEqual(self.js("stats", a)["type"], "accel-1wq")
        self.assertIn("    type: accel-2wq\n    owner: %d:%d\n" %
                      (harness.NOBODY.pw_uid, harness.NOBODY.pw_gid),
                      self.ok("info", a).out)
        self.ok("stop", a)
        # A modify back to what runs leaves nothing pending.
        self.ok("modify", u, "--mode", "0600")
        self.assertEqual(self.instance(u)["pending"], {"mode": "0600"})
        self.ok("modify", u, "--mode", "0660")
        self.assertNotIn("pending", self.instance(u))


class Attrs(DaemonTestCase):
    """Attribute changes that cannot be applied are refused, say why, and
    change nothing."""

    def setUp(self):
        super().setUp()
        self.daemon()
        self.u = self.ok("define", "-p", "serial", "-t", T, "--attr",
                         "port0=pty", "--attr", "port1=none").out.strip()
        self.path = os.path.join(self.d.statedir, "serial", self.u)

    def body(self):
        with open(self.path) as f:
            return f.read()

    def test_delattr_of_a_key_not_set(self):
        before = self.body()
        self.refused("EINVAL", "modify", self.u, "--delattr", "port7",
                     says=["attribute 'port7' is not set", "cannot be removed"])
        # With another, valid change: all or nothing.
        self.refused("EINVAL", "modify", self.u, "--delattr", "port7",
                     "--mode", "0660", says="'port7'")
        self.assertEqual(self.body(), before)
        r = self.d.request("modify", {"uuid": self.u,
                                      "attrs": {"nope": None}})
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"]["code"], "EINVAL")
        self.assertEqual(self.body(), before)

    def test_mdevctl_delattr_index(self):
        before = self.body()
        # mdevctl's form: --delattr removes by position, not a key named
        # "--index=0".
        for args in (("--delattr", "--index=9"), ("--delattr", "-i", "2")):
            self.refused("EINVAL", "modify", "-u", self.u, *args,
                         says="there is none at --index")
        self.assertEqual(self.body(), before)
        self.ok("modify", "--delattr", "--index=0", "-u", self.u)
        self.assertEqual(self.instance(self.u)["attrs"], {"port1": "none"})
        # Without --index: the last one.
        self.ok("modify", "-u", self.u, "--delattr")
        self.assertEqual(self.instance(self.u)["attrs"], {})
        self.refused("EINVAL", "modify", "-u", self.u, "--delattr",
                     says="has no attributes to remove")

    def test_contradictions_are_usage_errors(self):
        before = self.body()
        cases = [
            (("--delattr", "port0", "--attr", "port0=none"),
             "attribute 'port0' is both set and removed"),
            (("--attr", "port0=none", "--delattr", "port0"),
             "attribute 'port0' is both set and removed"),
            (("--addattr", "port0", "--value", "none", "--delattr", "port0"),
             "attribute 'port0' is both set and removed"),
            (("--addattr", "port0"), "--addattr KEY and --value VALUE go "
                                     "together"),
            (("--value", "x"), "--addattr KEY and --value VALUE go together"),
            (("--addattr", "port0", "--value", "none", "--index", "0"),
             "--index applies to --delattr without a KEY"),
            (("--delattr", "port0", "--index", "0"),
             "--index applies to --delattr without a KEY"),
            (("--delattr", "--delattr"), "--delattr without a KEY may be "
                                         "given once"),
            (("--delattr", "--index", "x"), "--index takes"),
        ]
        for args, says in cases:
            with self.subTest(args=args):
                self.fails(2, "modify", "-u", self.u, *args, says=says)
        # The index form contradicting an --attr is found once the index
        # is resolved.
        self.fails(2, "modify", "-u", self.u, "--delattr", "--index", "0",
                   "--attr", "port0=none", says="both set and removed")
        self.assertEqual(self.body(), before)

    def test_mdevctl_addattr(self):
        self.ok("modify", "-u", self.u, "--addattr", "port0", "--value",
                "none", "-p", "serial")
        self.assertEqual(self.instance(self.u)["attrs"],
                         {"port0": "none", "port1": "none"})
        self.refused("EINVAL", "modify", "-u", self.u, "-p", "accel",
                     "--auto", says="does not match")


class Unreachable(DaemonTestCase):
    """--json prints an error object whatever went wrong."""

    def test_json_error_object_when_unreachable(self):
        nowhere = os.path.join(self.tmp, "nobody-listens")
        for args in (("--json", "version"), ("list", "--json"),
                     ("--json", "define", "-p", "serial", "-t", T)):
            with self.subTest(args=args):
                r = self.ctl(*args, control=nowhere)
                self.assertEqual(r.rc, 3, str(r))
                e = r.json()
                self.assertEqual(sorted(e), ["code", "errno", "message"])
                self.assertEqual(e["code"], "ENOENT", str(r))
                self.assertEqual(e["errno"], errno.ENOENT, str(r))
                self.assertEqual(e["message"],
                                 "cannot reach umdevd at %s: %s" %
                                 (nowhere, os.strerror(errno.ENOENT)))
                self.assertIn(e["message"], r.err)
        # Something that is not umdevd's socket: refused connection.
        path = os.path.join(self.tmp, "plain")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()
        r = self.ctl("--json", "version", control=path)
        self.assertEqual(r.rc, 3, str(r))
        self.assertEqual(r.json()["code"], "ECONNREFUSED", str(r))


class Logging(DaemonTestCase):
    """Every management request is logged with its peer's uid and pid
    and how it ended; reads are not."""

    def test_management_requests_are_logged(self):
        self.daemon()
        me = "by uid %d pid %d" % (os.getuid(), os.getpid())
        u = new_uuid()
        with self.d.connect() as c:
            self.assertTrue(c.call("define", {"uuid": u, "parent": "serial",
                                              "type": T})["ok"])
            self.assertTrue(c.call("modify", {"uuid": u,
                                              "mode": "0660"})["ok"])
            bad = c.call("modify", {"uuid": u, "mode": "0666"})
            self.assertFalse(bad["ok"])
            self.assertTrue(c.call("start", {"uuid": u})["ok"])
            self.assertTrue(c.call("stop", {"uuid": u})["ok"])
            self.assertTrue(c.call("undefine", {"uuid": u})["ok"])
            t = c.call("start", {"parent": "serial", "type": "2port"})
            tu = t["result"]["instance"]["uuid"]
            self.assertTrue(c.call("stop", {"uuid": tu})["ok"])
            self.assertTrue(c.call("list", {})["ok"])
            self.assertTrue(c.call("types", {})["ok"])
        log = self.d.log()
        for line in ("%s: define %s: done" % (u, me),
                     "%s: modify %s: done" % (u, me),
                     "%s: modify %s: refused (EINVAL): mode 0666" % (u, me),
                     "%s: start %s: done" % (u, me),
                     "%s: stop %s: done" % (u, me),
                     "%s: undefine %s: done" % (u, me),
                     "%s: start %s: done" % (tu, me),
                     "%s: stop %s: done" % (tu, me)):
            self.assertIn("umdev: ", log)
            self.assertRegex(log, r"(?m)^umdev: (info|notice): %s" %
                             re.escape(line), log)
        # Reads are not management: not logged.
        self.assertNotRegex(log, r" (list|types) by uid ")
        # A refused define names what it tried; one from a reader is
        # logged too.
        r = self.d.request("define", {"parent": "serial", "type": "9port"})
        self.assertFalse(r["ok"])
        self.assertRegex(self.d.log(), r"notice: define 9port by uid %d "
                         r"pid \d+: refused \(ENOENT\)" % os.getuid())
        with harness.as_peer(harness.NOBODY.pw_uid, harness.NOBODY.pw_gid):
            r = self.d.request("undefine", {"uuid": u})
        self.assertEqual(r["error"]["code"], "EPERM")
        self.assertIn("%s: undefine by uid %d pid %d: refused (EPERM)" %
                      (u, harness.NOBODY.pw_uid, os.getpid()), self.d.log())


class Mdevctl(DaemonTestCase):
    """mdevctl's command lines and JSON shapes, unchanged."""

    def setUp(self):
        super().setUp()
        self.daemon()

    def test_types_dumpjson(self):
        dump = self.ok("types", "--dumpjson").json()
        self.assertEqual(len(dump), 1)
        self.assertEqual(sorted(dump[0]), ["accel", "display", "nvme",
                                           "serial"])
        self.assertEqual([list(t) for t in dump[0]["accel"]],
                         [["accel-1wq"], ["accel-2wq"], ["accel-4wq"]])
        self.assertEqual([list(t) for t in dump[0]["nvme"]],
                         [["nvme-1q"], ["nvme-4q"], ["nvme-8q"]])
        self.assertEqual([list(t) for t in dump[0]["display"]],
                         [["display-1024"], ["display-1920"]])
        [[name, t]] = [list(x.items())[0] for x in dump[0]["serial"]]
        self.assertEqual(name, T)
        self.assertEqual(sorted(t), ["available_instances", "description",
                                     "device_api"])
        self.assertEqual((t["available_instances"], t["device_api"]),
                         (1024, "vfio-pci"))
        self.assertEqual(self.ok("types", "--dumpjson").out,
                         json.dumps(dump, indent=2) + "\n")
        # --json does not change it; -p narrows it.
        self.assertEqual(self.ok("--json", "types", "--dumpjson").json(),
                         dump)
        self.assertEqual(self.ok("types", "-p", "serial", "--dumpjson")
                         .json(), [{"serial": dump[0]["serial"]}])

    def test_list_dumpjson_and_verbose(self):
        self.assertEqual(self.ok("list", "--dumpjson").json(), [])
        self.assertEqual(self.ok("list", "--defined", "--dumpjson").json(),
                         [])
        a = self.ok("define", "-p", "serial", "-t", T, "--attr", "port0=pty",
                    "--attr", "port1=none").out.strip()
        b = self.ok("define", "-p", "accel", "-t", "2wq", "--auto", "--attr",
                    "engine_threads=2").out.strip()
        dump = self.ok("list", "--defined", "--dumpjson").json()
        me = {"uid": os.getuid(), "gid": os.getgid()}
        self.assertEqual(dump, [{
            "serial": [{a: {"mdev_type": T, "start": "manual",
                            "attrs": [{"port0": "pty"}, {"port1": "none"}],
                            "owner": me, "mode": "0600"}}],
            "accel": [{b: {"mdev_type": "accel-2wq", "start": "auto",
                           "attrs": [{"engine_threads": "2"}],
                           "owner": me, "mode": "0600"}}]}])
        # Printed as mdevctl prints it (serde_json's pretty form, which
        # is Python's indent=2).
        self.assertEqual(self.ok("list", "--defined", "--dumpjson").out,
                         json.dumps(dump, indent=2) + "\n")
        # One -u: the object alone; no match: [].
        one = self.ok("list", "--defined", "-u", b, "--dumpjson").out
        self.assertEqual(json.loads(one), dump[0]["accel"][0][b])
        self.assertEqual(one, json.dumps(json.loads(one), indent=2) + "\n")
        c = self.ok("define", "-p", "serial", "-t", T).out.strip()
        self.assertIn('  "attrs": [],\n',
                      self.ok("list", "--defined", "-u", c,
                              "--dumpjson").out)
        self.ok("undefine", c)
        self.assertEqual(self.ok("list", "-u", b, "--dumpjson").json(), [])
        # -v: mdevctl's numbered attributes under each line.
        out = self.ok("list", "--defined", "-v").out
        self.assertIn("%s serial %s manual stopped (defined)\n"
                      "  Attrs:\n"
                      "    @{0}: {\"port0\":\"pty\"}\n"
                      "    @{1}: {\"port1\":\"none\"}\n" % (a, T), out)
        self.assertIn("%s accel accel-2wq auto stopped (defined)\n"
                      "  Attrs:\n"
                      "    @{0}: {\"engine_threads\":2}\n" % b, out)
        self.fails(2, "list", "-v", "--dumpjson", says="do not go together")

    def write(self, obj):
        path = os.path.join(self.tmp, "def.json")
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def test_define_jsonfile_in_mdevctls_shape(self):
        u = new_uuid()
        path = self.write({"mdev_type": "accel-2wq", "start": "auto",
                           "attrs": [{"engine_threads": "2"},
                                     {"max_transfer": "65536"}]})
        self.assertEqual(self.ok("define", "-u", u, "-p", "accel",
                                 "--jsonfile", path).out, u + "\n")
        i = self.instance(u)
        self.assertEqual((i["type"], i["start"], i["attrs"]),
                         ("accel-2wq", "auto",
                          {"engine_threads": 2, "max_transfer": 65536}))
        # As `mdevctl list --dumpjson` wraps it: {UUID: {...}}.
        w = new_uuid()
        path = self.write({w: {"mdev_type": T, "start": "manual",
                               "attrs": []}})
        self.assertEqual(self.ok("define", "-p", "serial", "--jsonfile",
                                 path).out, w + "\n")
        self.assertEqual(self.instance(w)["type"], T)
        # mdevctl's start of a transient from such a file.
        path = self.write({"mdev_type": T, "start": "manual",
                           "attrs": [{"port0": "none"}]})
        r = self.js("start", "-p", "serial", "--jsonfile", path)
        self.assertEqual(r["instance"]["attrs"], {"port0": "none"})
        self.ok("stop", r["instance"]["uuid"])
        # What cannot be one umdev definition is refused, nothing written.
        before = self.instances(defined=True)
        for obj, says in (
                ({"mdev_type": T, "start": "manual",
                  "attrs": [{"port0": "pty"}, {"port0": "none"}]},
                 "attribute 'port0' is given twice"),
                ({"mdev_type": T, "start": "manual",
                  "attrs": {"port0": "pty"}},
                 "attrs in mdevctl's shape is a list"),
                ({"mdev_type": T, "start": "manual",
                  "attrs": [{"port0": 1}]}, "with a string value"),
                ({"mdev_type": T, "start": "manual",
                  "attrs": [{"port0": "pty", "port1": "pty"}]},
                 "must be one"),
                ({"mdev_type": T, "type": T}, "both mdev_type"),
        ):
            with self.subTest(obj=obj):
                self.fails(2, "define", "-p", "serial", "--jsonfile",
                           self.write(obj), says=says)
        self.refused("EINVAL", "define", "-p", "serial", "--jsonfile",
                     self.write({"mdev_type": T, "start": "sometimes"}),
                     says="start must be")
        self.assertEqual(self.instances(defined=True).keys(), before.keys())

    def test_define_makes_a_running_transient_persistent(self):
        t = self.start_instance("-p", "serial", "-t", "2port", "--attr",
                                "port0=pty", "--mode", "0660")
        u = t["uuid"]
        sock = t["socket"]
        self.assertEqual(self.ok("define", "-u", u, "--auto").out, u + "\n")
        i = self.instance(u)
        self.assertEqual((i["defined"], i["state"], i["start"], i["pid"],
                          i["attrs"], i["mode"]),
                         (True, "running", "auto", t["pid"],
                          {"port0": "pty"}, "0660"))
        self.assertNotIn("pending", i)
        with open(os.path.join(self.d.statedir, "serial", u)) as f:
            body = json.load(f)
        self.assertEqual((body["type"], body["start"], body["attrs"],
                          body["mode"]), (T, "auto", {"port0": "pty"},
                                          "0660"))
        # Stopped, it stays as a definition, and starts again as one.
        self.ok("stop", u)
        self.assertFalse(os.path.exists(sock))
        self.assertEqual(self.instance(u)["state"], "stopped")
        self.start_instance(u)
        # Now it is a definition: define it again and it exists.
        self.refused("EEXIST", "define", "-u", u, says="exists already")
        # Fields given with it override what runs, as pending changes.
        v = self.start_instance("-p", "serial", "-t", T)["uuid"]
        self.ok("define", "-u", v, "-p", "serial", "-t", "2port",
                "--mode", "0640")
        self.assertEqual(self.instance(v)["pending"], {"mode": "0640"})
        # A leased queue lives as long as its lessee: not definable.
        with self.d.connect() as c:
            r = c.call("start", {"parent": "serial", "type": T,
                                 "lease": True})
            q = r["result"]["instance"]["uuid"]
            e = self.refused("EBUSY", "define", "-u", q)
            self.assertIn("leased", e["message"])
        self.fails(2, "define", says="-p PARENT and -t TYPE are required")
        self.refused("EINVAL", "define", "-u", new_uuid(),
                     says="parent and type are required")


class Import(DaemonTestCase):
    """umdevctl import: a directory laid out like /etc/mdevctl.d becomes
    umdev definitions for the parents umdevd has."""

    def test_import_mdevctl_d(self):
        self.daemon()
        top = os.path.join(self.tmp, "mdevctl.d")
        u1, u2, u3, u4, u5 = sorted(new_uuid() for _ in range(5))

        def put(parent, name, body):
            os.makedirs(os.path.join(top, parent), exist_ok=True)
            with open(os.path.join(top, parent, name), "w") as f:
                f.write(body if isinstance(body, str) else json.dumps(body))

        put("serial", u1, {"mdev_type": "serial-2port", "start": "auto",
                           "attrs": [{"port0": "pty"}]})
        put("accel", u2, {"mdev_type": "accel-2wq", "start": "manual",
                          "attrs": [{"engine_threads": "2"}]})
        put("serial", u3, {"mdev_type": "serial-9port", "start": "manual",
                           "attrs": []})
        put("serial", u4, "{not json")
        put("serial", "README", "notes")
        put("0000:00:02.0", u5, {"mdev_type": "i915-GVTg_V5_4",
                                 "start": "auto", "attrs": []})
        os.makedirs(os.path.join(top, "scripts.d", "callouts"))
        r = self.fails(1, "--json", "import", top)
        rep = r.json()
        self.assertEqual([d["uuid"] for d in rep["defined"]], [u2, u1])
        self.assertEqual(sorted(d["uuid"] for d in rep["refused"]),
                         sorted([u3, u4]))
        skipped = {os.path.relpath(d["path"], top): d["reason"]
                   for d in rep["skipped"]}
        self.assertEqual(sorted(skipped), ["0000:00:02.0/" + u5, "scripts.d",
                                           "serial/README"])
        # A host device's directory: its file's type is no type of umdevd.
        self.assertEqual(skipped["0000:00:02.0/" + u5],
                         "no parent of umdevd offers type 'i915-GVTg_V5_4' "
                         "(umdevctl types lists them; --parent-map "
                         "HOSTPARENT=PARENT names one)")
        self.assertIn("copy those of callouts/ that handle umdev's types "
                      "into umdevd's --callouts directory",
                      skipped["scripts.d"])
        i = self.instance(u1)
        self.assertEqual((i["type"], i["start"], i["attrs"]),
                         ("serial-2port", "auto", {"port0": "pty"}))
        self.assertEqual(self.instance(u2)["attrs"], {"engine_threads": 2})
        self.assertIsNone(self.lookup(u3))
        self.assertIsNone(self.lookup(u5))
        # Again: what is defined is left as it is.
        self.ok("modify", u1, "--manual")
        r = self.fails(1, "import", top)
        self.assertIn("0 defined, 5 skipped, 2 refused", r.out)
        self.assertIn("skipped: %s/serial/%s (%s): umdevd has a definition "
                      "of this UUID already" % (top, u1, u1), r.out)
        self.assertEqual(self.instance(u1)["start"], "manual")
        # Only what can be imported: exit 0.
        os.unlink(os.path.join(top, "serial", u3))
        os.unlink(os.path.join(top, "serial", u4))
        self.ok("undefine", u2)
        r = self.ok("import", top)
        self.assertIn("defined: %s/accel/%s (%s)\n" % (top, u2, u2), r.out)
        self.fails(2, "import", os.path.join(self.tmp, "nowhere"),
                   says="cannot read")

    def test_import_host_parents(self):
        """mdevctl's parents are host devices: a directory is mapped to a
        parent of umdevd by --parent-map, else each file by its type when
        exactly one parent offers it."""
        pdir = os.path.join(self.tmp, "plugins")
        os.mkdir(pdir)
        for p in ("plugin_sample", "plugin_liar"):
            os.symlink(harness.BIN[p], os.path.join(
                pdir, os.path.basename(harness.BIN[p])))
        self.daemon(["--plugin-dir", pdir, "--admit", "any"])
        # Two parents with a type "loop": the short name is ambiguous.
        types = {t["name"] for t in self.js("types")["types"]}
        self.assertTrue({"sample-loop", "liar-loop", T} <= types, types)
        top = os.path.join(self.tmp, "mdevctl.d")
        u = sorted(new_uuid() for _ in range(8))

        def put(parent, name, mdev_type):
            os.makedirs(os.path.join(top, parent), exist_ok=True)
            with open(os.path.join(top, parent, name), "w") as f:
                json.dump({"mdev_type": mdev_type, "start": "manual",
                           "attrs": []}, f)

        put("0000:00:02.0", u[0], T)              # by --parent-map
        put("0000:00:02.0", u[1], "accel-1wq")    # mapped: serial refuses
        put("0000:00:03.0", u[2], "accel-2wq")    # by its full type name
        put("0000:00:03.0", u[3], "4wq")          # by its short name
        put("0000:00:03.0", u[4], "loop")         # ambiguous
        put("0000:00:03.0", u[5], "sample-loop")  # the full name is not
        put("0000:00:04.0", u[6], "i915-GVTg_V5_4")  # nobody offers it
        with open(os.path.join(top, "0000:00:04.0", u[7]), "w") as f:
            json.dump({"start": "manual"}, f)  # no type at all
        # Bad --parent-map: a usage error, and nothing is defined.
        for bad, says in (
                ("0000:00:02.0", "takes HOSTPARENT=PARENT"),
                ("=serial", "takes HOSTPARENT=PARENT"),
                ("0000:00:02.0=", "takes HOSTPARENT=PARENT"),
                ("../x=serial", "is not a directory name"),
                ("..=serial", "is not a directory name"),
                ("0000:00:02.0=gpu", "umdevd has no parent 'gpu'")):
            with self.subTest(bad=bad):
                self.fails(2, "import", top, "--parent-map", bad,
                           says=says)
        self.fails(2, "import", top, "--parent-map", "0000:00:02.0=serial",
                   "--parent-map", "0000:00:02.0=accel",
                   says="maps '0000:00:02.0' to both serial and accel")
        self.assertEqual(self.js("list", "--defined")["instances"], [])
        # Repeated, the same map is one map.
        r = self.fails(1, "--json", "import", top,
                       "--parent-map", "0000:00:02.0=serial",
                       "--parent-map", "0000:00:02.0=serial",
                       "--parent-map", "0000:00:09.0=accel")
        rep = r.json()
        got = {d["uuid"]: (d["parent"], d["by"]) for d in rep["defined"]}
        self.assertEqual(got, {u[0]: ("serial", "parent-map"),
                               u[2]: ("accel", "type"),
                               u[3]: ("accel", "type"),
                               u[5]: ("sample", "type")})
        for x, parent, typ in ((u[0], "serial", T),
                               (u[2], "accel", "accel-2wq"),
                               (u[3], "accel", "accel-4wq"),
                               (u[5], "sample", "sample-loop")):
            i = self.instance(x)
            self.assertEqual((i["parent"], i["type"]), (parent, typ))
        # The map is the user's word: umdevd judges the type on it.
        self.assertEqual([(d["uuid"], d["parent"]) for d in rep["refused"]],
                         [(u[1], "serial")])
        skipped = {os.path.relpath(d["path"], top): d["reason"]
                   for d in rep["skipped"]}
        self.assertEqual(skipped, {
            "0000:00:03.0/" + u[4]:
                "type 'loop' is offered by more than one parent (liar, "
                "sample): --parent-map HOSTPARENT=PARENT picks one",
            "0000:00:04.0/" + u[6]:
                "no parent of umdevd offers type 'i915-GVTg_V5_4' (umdevctl "
                "types lists them; --parent-map HOSTPARENT=PARENT names one)",
            "0000:00:04.0/" + u[7]:
                "it names no type (mdev_type), so no parent of umdevd can "
                "be told from it",
            "0000:00:09.0":
                "--parent-map names it, but there is no such directory"})
        for x in (u[1], u[4], u[6], u[7]):
            self.assertIsNone(self.lookup(x))
        # The text says where a parent came from; a map beats the types,
        # so it settles the ambiguous one.
        r = self.fails(1, "import", top, "--parent-map", "0000:00:02.0=serial",
                       "--parent-map", "0000:00:03.0=liar")
        self.assertIn("skipped: %s/0000:00:02.0/%s (%s): umdevd has a "
                      "definition of this UUID already [parent serial, by "
                      "--parent-map]\n" % (top, u[0], u[0]), r.out)
        self.assertIn("defined: %s/0000:00:03.0/%s (%s) [parent liar, by "
                      "--parent-map]\n" % (top, u[4], u[4]), r.out)
        self.assertIn("skipped: %s/0000:00:03.0/%s (%s): umdevd has a "
                      "definition of this UUID already [parent liar, by "
                      "--parent-map]\n" % (top, u[2], u[2]), r.out)
        self.assertIn("refused: %s/0000:00:02.0/%s (%s): unknown type "
                      "'serial-accel-1wq' (umdevctl types lists them) "
                      "[parent serial, by --parent-map]\n"
                      % (top, u[1], u[1]), r.out)
        self.assertIn("skipped: %s/0000:00:04.0/%s (%s): no parent of umdevd "
                      "offers type 'i915-GVTg_V5_4'" % (top, u[6], u[6]),
                      r.out)
        self.assertIn("1 defined, ", r.out)
        self.assertEqual(self.instance(u[4])["type"], "liar-loop")


class Metrics(DaemonTestCase):
    """stats --all and --openmetrics, checked by parsing: Prometheus's own
    OpenMetrics parser (python3-prometheus-client) must take it, and its
    numbers must be those of --json."""

    def test_openmetrics_of_every_instance(self):
        from prometheus_client.openmetrics.parser import \
            text_string_to_metric_families
        self.daemon()
        self.assertEqual(self.ok("stats", "--all", "--openmetrics").out,
                         "# EOF\n")
        s = self.start_instance("-p", "serial", "-t", T)
        a = self.start_instance("-p", "accel", "-t", "1wq")
        self.ok("define", "-p", "serial", "-t", T)  # stopped: not listed
        self.probe(s["socket"])  # traffic: config reads, BAR reads
        js = {x["uuid"]: x for x in
              self.js("stats", "--all")["instances"]}
        self.assertEqual(set(js), {s["uuid"], a["uuid"]})
        self.assertEqual(js[s["uuid"]]["parent"], "serial")
        text = self.ok("stats", "--all", "--openmetrics").out
        self.assertTrue(text.endswith("\n# EOF\n"), text[-200:])
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        # One family per counter, every one a counter.
        self.assertEqual(len(fams), text.count("# TYPE "))
        for f in fams.values():
            self.assertEqual(f.type, "counter", f.name)
            self.assertTrue(f.documentation, f.name)
        names = {"msgs": "umdev_messages", "errors": "umdev_errors",
                 "region_reads": "umdev_region_reads",
                 "region_writes": "umdev_region_writes",
                 "dma_bytes": "umdev_dma_bytes",
                 "irqs": "umdev_interrupts",
                 "irqs_dropped": "umdev_interrupts_dropped",
                 "attaches": "umdev_attaches"}
        got = {}
        for f in fams.values():
            for smp in f.samples:
                self.assertEqual(smp.name, f.name + "_total")
                lab = dict(smp.labels)
                key = (f.name, lab.pop("uuid"))
                inst = js[key[1]]
                self.assertEqual((lab.pop("type"), lab.pop("parent")),
                                 (inst["type"], inst["parent"]))
                got[key + tuple(sorted(lab.items()))] = smp.value
        for u, st in js.items():
            for k, v in st["counters"].items():
                self.assertEqual(got[(names[k], u)], v, (u, k))
            self.assertEqual(got[("umdev_refused", u)], st["refused"])
            for q in st["irqs"]:
                self.assertEqual(got[("umdev_irq_signals", u,
                                      ("irq", q["name"]))], q["count"])
            for reg in st["regions"]:
                for r in reg["registers"]:
                    labels = (("region", reg["name"]),
                              ("register", r["name"]))
                    self.assertEqual(got[("umdev_register_reads", u) +
                                         labels], r["reads"])
                    self.assertEqual(got[("umdev_register_writes", u) +
                                         labels], r["writes"])
        self.assertGreater(got[("umdev_messages", s["uuid"])], 0)
        # One instance alone, by UUID; what does not combine is refused.
        one = self.ok("stats", a["uuid"], "--openmetrics").out
        self.assertNotIn(s["uuid"], one)
        self.assertIn('uuid="%s"' % a["uuid"], one)
        for args, says in ((("--all", a["uuid"]), "not both"),
                           (("--all", "--watch"), "--watch follows one"),
                           ((a["uuid"], "--openmetrics", "--watch"),
                            "--watch follows one"),
                           (("--all", "--openmetrics", "--json"),
                            "two formats"),
                           ((), "UUID is required (or --all)")):
            with self.subTest(args=args):
                self.fails(2, "stats", *args, says=says)
        # Text: every instance, one after the other.
        out = self.ok("stats", "--all").out
        self.assertIn("%s (serial-2port, running)" % s["uuid"], out)
        self.assertIn("%s (accel-1wq, running)" % a["uuid"], out)


class Usage(DaemonTestCase):
    """umdevctl's details: which argument is wrong, the short type name,
    unknown parents, -m, --version, one exit-status block per help."""

    def test_extra_argument_is_blamed(self):
        nowhere = os.path.join(self.tmp, "nobody-listens")
        u = new_uuid()
        for verb in ("info", "stop", "undefine", "stats", "modify", "start"):
            with self.subTest(verb=verb):
                r = self.ctl(verb, u, "extra", control=nowhere)
                self.assertEqual(r.rc, 2, str(r))
                self.assertIn("unexpected argument 'extra'", r.err)
                self.assertNotIn("'%s'" % u, r.err)
        r = self.ctl("audit", "2port", "extra", control=nowhere)
        self.assertIn("unexpected argument 'extra'", r.err)

    def test_short_type_name_and_unknown_parent(self):
        self.daemon()
        # Without --conformance some criteria are not run: exit 1.
        full = self.fails(1, "--json", "audit", T).json()
        short = self.fails(1, "--json", "audit", "2port").json()
        self.assertEqual(short, full)
        self.assertIn("audit of serial-2port (parent serial)",
                      self.fails(1, "audit", "2port").out)
        self.refused("ENOENT", "audit", "9port")
        # list -p names a parent the way types -p does.
        for verb in ("types", "list"):
            self.refused("ENOENT", verb, "-p", "nope",
                         says="no parent named 'nope'")
        self.refused("ENOENT", "list", "--defined", "-p", "nope")
        self.assertEqual(self.js("list", "-p", "accel")["instances"], [])

    def test_define_m_and_version(self):
        self.daemon()
        u = self.ok("define", "-m", "-p", "serial", "-t", T).out.strip()
        self.assertEqual(self.instance(u)["start"], "manual")
        self.fails(2, "start", u, "-m", says="option --manual does not apply")
        with open(os.path.join(SOURCE, "CMakeLists.txt")) as f:
            version = re.search(r"project\(umdev VERSION ([0-9.]+)",
                                f.read()).group(1)
        for flag in ("--version", "-V"):
            r = self.ctl(flag, control=False)
            self.assertEqual((r.rc, r.out, r.err),
                             (0, "umdevctl %s\n" % version, ""), str(r))
            p = subprocess.run([harness.BIN["umdevd"], flag],
                               capture_output=True, timeout=harness.T_CMD)
            self.assertEqual((p.returncode, p.stdout, p.stderr),
                             (0, b"umdevd %s\n" % version.encode(), b""))
        self.assertEqual(self.js("version")["daemon"], version)
        self.assertIn("--version", self.ok("--help").out)

    def test_define_help_lists_every_parents_attributes(self):
        # No daemon: the built-in parents' own tables.
        nowhere = os.path.join(self.tmp, "nobody-listens")
        for verb in ("define", "start"):
            r = self.ctl(verb, "--help", control=nowhere)
            self.assertEqual(r.rc, 0, str(r))
            self.assertIn("of the built-in parents' types", r.out)
            self.assertRegex(r.out, r"(?s)  serial \(every type\)\n"
                             r"    port0:\n      socket.*    port1:\n")
            self.assertRegex(r.out, r"(?s)  accel \(every type\)\n"
                             r"    engine_threads:\n      1 to 4 .*"
                             r"    max_transfer:\n      4096 to 1073741824")
            section = r.out[r.out.index("\nAttributes"):]
            self.assertTrue(all(len(ln) <= 78
                                for ln in section.splitlines()), section)
        # A daemon: what it says of every type it offers.
        self.daemon()
        types = {t["name"]: t for t in self.js("types")["types"]}
        self.assertEqual([a["name"] for a in types[T]["attributes"]],
                         ["port0", "port1"])
        self.assertEqual([a["name"] for a in types["accel-4wq"]["attributes"]],
                         ["engine_threads", "max_transfer"])
        self.assertIn("1 to 4", types["accel-1wq"]["attributes"][0]["help"])
        r = self.ok("define", "--help")
        self.assertIn("of the types umdevd at %s offers:" % self.d.control,
                      r.out.replace("\n", " "))
        for t in (T, "accel-1wq", "accel-2wq", "accel-4wq"):
            self.assertRegex(r.out, r"(?m)^  %s\n    \w+:\n" % t)

    def test_one_exit_status_block_per_help(self):
        nowhere = os.path.join(self.tmp, "nobody-listens")
        for verb in ("types", "list", "define", "undefine", "start", "stop",
                     "modify", "info", "stats", "audit", "import",
                     "version"):
            with self.subTest(verb=verb):
                r = self.ctl(verb, "--help", control=nowhere)
                self.assertEqual(r.rc, 0, str(r))
                self.assertEqual(r.out.count("Exit status"), 1, r.out)
        r = self.ctl("audit", "--help", control=nowhere)
        self.assertIn("Exit status: 0 every criterion passed, 1 one failed",
                      r.out)


class Sigkill(DaemonTestCase):
    """A daemon killed outright leaves no socket behind but those of the
    workers that serve on for the next daemon."""

    def test_sockets_removed_after_sigkill(self):
        self.daemon()
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        self.start_instance(u)
        t = self.start_instance("-p", "serial", "-t", T, "--attr",
                                "port0=pty", "--attr", "port1=none")
        names = sorted(os.listdir(self.d.rundir))
        for n in ("%s.sock" % u, "%s.port0" % u, "%s.port1" % u,
                  "%s.sock" % t["uuid"], "%s.port0" % t["uuid"]):
            self.assertIn(n, names)
        self.assertTrue(os.path.exists(self.d.control))
        # Something of the operator's own in RUNDIR stays.
        keep = os.path.join(self.d.rundir, "notes.txt")
        with open(keep, "w") as f:
            f.write("mine\n")
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait(harness.T_EXIT)
        # The control socket goes; the instances' workers serve on, so
        # their sockets and host ends stay, for the next daemon.
        self.wait_for("the control socket of a killed daemon to go",
                      lambda: not os.path.exists(self.d.control))
        self.wait_for("the killed daemon's cleanup",
                      lambda: "ended leaving 2 instances running" in
                      self.d.log())
        self.assertEqual(sorted(os.listdir(self.d.rundir)),
                         sorted(names + ["notes.txt"]))
        # The definition is kept, and the next daemon adopts both; once
        # stopped, nothing of theirs is left.
        self.daemon()
        self.assertEqual(self.instance(u)["state"], "running")
        self.ok("stop", u)
        self.ok("stop", t["uuid"])
        self.assertEqual(self.d.terminate(), 0)
        self.assertEqual(sorted(os.listdir(self.d.rundir)), ["notes.txt"])

    def cleanup_pid(self):
        """The pid of the daemon's cleanup process."""
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name) as f:
                    stat_ = f.read()
            except OSError:
                continue
            comm = stat_[stat_.index("(") + 1:stat_.rindex(")")]
            ppid = int(stat_[stat_.rindex(")") + 2:].split()[1])
            if comm == "umdev-cleanup" and ppid == self.d.proc.pid:
                return int(name)
        return None

    def test_cleanup_process_killed_alone(self):
        # Killed on its own, it is missed once in the log; the daemon
        # serves on and still stops cleanly.
        self.daemon()
        # The child names itself after the fork, which may come after the
        # daemon is ready: wait for the name rather than look once.
        pid = self.wait_for("the cleanup process", self.cleanup_pid)
        os.kill(pid, signal.SIGKILL)
        self.wait_for("the cleanup process to go",
                      lambda: (harness.reap_orphans(),
                               not harness.alive(pid))[1])
        for _ in range(2):
            t = self.start_instance("-p", "serial", "-t", T)
            self.ok("stop", t["uuid"])
        self.assertEqual(self.d.log().count("cleanup process unreachable"),
                         1, self.d.log())
        self.assertEqual(self.d.terminate(), 0)
        self.assertFalse(os.path.exists(self.d.control))

    def test_a_new_daemons_sockets_are_not_removed(self):
        # The cleanup of a killed daemon removes what it made, never what
        # took its place (same path, another socket).
        self.daemon()
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        v = self.ok("define", "-p", "serial", "-t", T).out.strip()
        self.start_instance(u)
        self.start_instance(v)
        old = self.d
        old.proc.send_signal(signal.SIGSTOP)
        # While it is stopped, its control socket and one instance's
        # socket are taken over.
        taken = []
        for p in (old.control, os.path.join(old.rundir, u + ".sock")):
            os.unlink(p)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(p)
            s.listen(1)
            taken.append(s)
        old.proc.send_signal(signal.SIGKILL)
        old.proc.wait(harness.T_EXIT)
        self.wait_for("the killed daemon's cleanup",
                      lambda: "ended leaving 2 instances running" in
                      old.log())
        # The control socket is the new owner's, and nothing was
        # removed: the workers of u and v serve on.
        self.assertNotIn("left behind by umdevd", old.log())
        names = sorted(os.listdir(old.rundir))
        self.assertEqual(names, sorted([u + ".sock", u + ".port0",
                                        u + ".port1", v + ".sock",
                                        v + ".port0", v + ".port1",
                                        "workers"]), old.log())
        self.assertTrue(stat.S_ISSOCK(os.lstat(old.control).st_mode))
        for s in taken:
            s.close()


if __name__ == "__main__":
    harness.main(programs=("plugin-sample", "plugin-liar"))
