"""umdevctl verb by verb, and the control protocol under it.

Every verb on its success and failure paths: exit status (0 ok, 1 refused
by umdevd, 2 usage, 3 umdevd unreachable), the fields of --json output
(docs/CONTROL.md), --help, and error messages that name what is wrong.
"""

import json
import os
import re
import stat
import uuid as uuidlib

import harness
from harness import DaemonTestCase, new_uuid

VERBS = ["types", "list", "define", "undefine", "start", "stop", "modify",
         "info", "version"]
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}$")
INSTANCE_KEYS = {"uuid", "parent", "type", "defined", "start", "state",
                 "socket", "owner", "mode", "attrs"}
TYPE_KEYS = {"name", "parent", "description", "device_api",
             "available_instances", "admission", "attributes"}
DEF_KEYS = ["attrs", "mode", "owner", "parent", "start", "type", "uuid"]
MDEVCTL_KEYS = ["attrs", "mdev_type", "mode", "owner", "start"]
T = "serial-2port"


class Usage(DaemonTestCase):
    """What umdevctl decides alone: help, usage errors, no daemon."""

    def setUp(self):
        super().setUp()
        # A control path nobody serves: a verb that reaches for the
        # daemon exits 3, so exit 0/2 below proves it did not.
        self.nowhere = os.path.join(self.tmp, "nobody-listens")

    def cli(self, *args):
        return self.ctl(*args, control=self.nowhere)

    def test_global_help(self):
        for flag in ("--help", "-h"):
            r = self.cli(flag)
            self.assertEqual(r.rc, 0, str(r))
            for v in VERBS:
                self.assertRegex(r.out, r"(?m)^  %s " % v, str(r))
            self.assertIn("Exit status: 0 ok, 1 refused by umdevd, 2 usage, "
                          "3 umdevd unreachable", r.out)

    def test_verb_help(self):
        for v in VERBS:
            for flag in ("--help", "-h"):
                r = self.cli(v, flag)
                self.assertEqual(r.rc, 0, str(r))
                self.assertTrue(r.out.startswith("usage: umdevctl %s" % v),
                                str(r))
                self.assertEqual(r.err, "", str(r))

    def test_usage_errors(self):
        u = new_uuid()
        cases = [
            ((), "usage: umdevctl"),
            (("frob",), "unknown verb 'frob'"),
            (("--frob", "list"), "unknown option '--frob'"),
            (("list", "--frob"), "usage: umdevctl list"),
            (("list", "extra"), "unexpected argument 'extra'"),
            (("types", "extra"), "unexpected argument 'extra'"),
            (("types", "--auto"), "option --auto does not apply here"),
            (("info",), "-u UUID is required"),
            (("info", "--auto", u), "option --auto does not apply here"),
            (("info", u, "extra"), "unexpected argument"),
            (("undefine",), "-u UUID is required"),
            (("undefine", "-p", "serial", u), "option --parent does not"),
            (("stop",), "-u UUID is required"),
            (("stop", u, "--grace", "soon"), "--grace takes milliseconds"),
            (("stop", u, "--grace", "-5"), "--grace takes milliseconds"),
            (("stop", u, "--grace", "600001"), "--grace takes milliseconds"),
            (("start",), "give -u UUID"),
            (("start", "-p", "serial"), "-t TYPE is required with -p"),
            (("start", u, "--attr", "port0=pty"), "need -p PARENT"),
            (("start", u, "-t", T), "need -p PARENT"),
            (("start", u, "--auto"), "option --auto does not apply here"),
            (("define",), "-p PARENT and -t TYPE are required"),
            (("define", "-p", "serial"), "-p PARENT and -t TYPE are required"),
            (("define", "-p", "serial", "-t", T, "--attr", "port0"),
             "attribute must be KEY=VALUE, got 'port0'"),
            (("define", "-p", "serial", "-t", T, "--attr", "=x"),
             "attribute must be KEY=VALUE"),
            (("define", "-p", "serial", "-t", T, "--grace", "5"),
             "option --grace does not apply here"),
            (("define", "--jsonfile", os.path.join(self.tmp, "missing")),
             "missing"),
            (("modify",), "-u UUID is required"),
            (("modify", u, "extra"), "unexpected argument"),
            (("modify", u, "--frob"), "usage: umdevctl modify"),
            (("version", "extra"), "unexpected argument 'extra'"),
            (("version", "--auto"), "option --auto does not apply here"),
            (("--control",), "--control needs a PATH"),
        ]
        for args, says in cases:
            with self.subTest(args=args):
                r = self.cli(*args)
                self.assertEqual(r.rc, 2, str(r))
                self.assertIn(says, r.err, str(r))
                self.assertEqual(r.out, "", str(r))

    def test_jsonfile_not_an_object(self):
        for text in ("[1, 2]", "{oops", ""):
            path = os.path.join(self.tmp, "def.json")
            with open(path, "w") as f:
                f.write(text)
            r = self.cli("define", "--jsonfile", path)
            self.assertEqual(r.rc, 2, str(r))
            self.assertIn("%s is not a JSON object" % path, r.err)

    def test_unreachable(self):
        u = new_uuid()
        for args in (("types",), ("list",), ("list", "--defined"),
                     ("define", "-p", "serial", "-t", T), ("undefine", u),
                     ("start", u), ("start", "-p", "serial", "-t", T),
                     ("stop", u), ("modify", u, "--auto"), ("info", u),
                     ("version",), ("--json", "version")):
            with self.subTest(args=args):
                r = self.cli(*args)
                self.assertEqual(r.rc, 3, str(r))
                self.assertIn("cannot reach umdevd at %s" % self.nowhere,
                              r.err)
                self.assertIn("UMDEV_CONTROL", r.err)
        # The default path follows UMDEV_CONTROL, else UMDEV_RUNDIR.
        r = self.ctl("version", control=False,
                     env={"UMDEV_CONTROL": self.nowhere + "2"})
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn(self.nowhere + "2", r.err)
        r = self.ctl("version", control=False,
                     env={"UMDEV_RUNDIR": self.tmp + "/rd"})
        self.assertEqual(r.rc, 3, str(r))
        self.assertIn(self.tmp + "/rd/control", r.err)


class Verbs(DaemonTestCase):
    """Each verb against a running daemon."""

    def setUp(self):
        super().setUp()
        self.daemon()

    def def_path(self, u, parent="serial"):
        return os.path.join(self.d.statedir, parent, u)

    def check_instance(self, i, **want):
        self.assertTrue(INSTANCE_KEYS <= set(i), i)
        self.assertRegex(i["uuid"], UUID_RE)
        self.assertIsInstance(i["defined"], bool)
        self.assertIn(i["start"], ("auto", "manual"))
        self.assertIn(i["state"], ("stopped", "starting", "running",
                                   "stopping", "failed"))
        self.assertEqual(i["socket"],
                         os.path.join(self.d.rundir, i["uuid"] + ".sock"))
        self.assertEqual(sorted(i["owner"]), ["gid", "uid"])
        self.assertRegex(i["mode"], r"^0[0-7]{3}$")
        self.assertIsInstance(i["attrs"], dict)
        if i["state"] in ("running", "starting", "stopping"):
            self.assertIsInstance(i["pid"], int)
            self.assertTrue(harness.alive(i["pid"]), i)
        else:
            self.assertNotIn("pid", i)
        if i["state"] == "failed":
            self.assertEqual(sorted(i["exit"]), ["reason", "signal",
                                                 "status"])
        else:
            self.assertNotIn("exit", i)
        for k, v in want.items():
            self.assertEqual(i[k], v, "%s of %s" % (k, i))

    def test_version(self):
        r = self.ok("version")
        self.assertRegex(r.out, r"^umdevd \d+\.\d+\.\d+, protocol 1\n$")
        v = self.js("version")
        self.assertEqual(sorted(v), ["daemon", "protocol"])
        self.assertEqual(v["protocol"], 1)
        self.assertIn(v["daemon"], r.out)
        # --json after the verb, and the control path from the environment.
        v2 = self.ok("version", "--json", control=False,
                     env={"UMDEV_CONTROL": self.d.control}).json()
        self.assertEqual(v, v2)

    def test_types(self):
        types = self.js("types")["types"]
        self.assertGreaterEqual(len(types), 1)
        names = set()
        for t in types:
            self.assertEqual(set(t), TYPE_KEYS, t)
            # Built-in types need no admission (docs/PLUGINS.md).
            self.assertEqual(t["admission"], {"state": "built-in"}, t)
            self.assertTrue(t["name"].startswith(t["parent"] + "-"), t)
            self.assertEqual(t["device_api"], "vfio-pci")
            self.assertIsInstance(t["available_instances"], int)
            self.assertGreater(t["available_instances"], 0)
            self.assertTrue(t["description"])
            names.add(t["name"])
        self.assertIn(T, names)
        text = self.ok("types").out
        for t in types:
            self.assertRegex(text, r"(?m)^%s$" % t["parent"])
            self.assertIn("  %s\n    Available instances: %d\n" %
                          (t["name"], t["available_instances"]), text)
        only = self.js("types", "-p", "serial")["types"]
        self.assertEqual(only, [t for t in types if t["parent"] == "serial"])
        self.refused("ENOENT", "types", "-p", "gpu",
                     says="no parent named 'gpu'")

    def test_define_forms(self):
        # -u: prints exactly the UUID, writes the definition.
        u = new_uuid()
        r = self.ok("define", "-u", u, "-p", "serial", "-t", T)
        self.assertEqual(r.out, u + "\n")
        with open(self.def_path(u)) as f:
            body = json.load(f)
        self.assertEqual(sorted(body), DEF_KEYS)
        self.assertEqual((body["uuid"], body["parent"], body["type"],
                          body["start"], body["mode"], body["attrs"]),
                         (u, "serial", T, "manual", "0600", {}))
        self.assertEqual(stat.S_IMODE(os.stat(self.def_path(u)).st_mode),
                         0o644)
        # Generated UUID, short type name, --auto.
        g = self.ok("define", "-p", "serial", "-t", "2port", "--auto")
        g = g.out.strip()
        self.assertRegex(g, UUID_RE)
        self.assertEqual(uuidlib.UUID(g).version, 4)
        # A bare UUID, upper case: stored normalised.
        up = new_uuid().upper()
        r = self.ok("define", up, "-p", "serial", "-t", T)
        self.assertEqual(r.out, up.lower() + "\n")
        self.assertTrue(os.path.exists(self.def_path(up.lower())))
        # --json: the instance object.
        j = self.js("define", "-p", "serial", "-t", T, "--attr",
                    "port0=pty", "--attr", "port1=none", "--mode", "0660")
        self.assertEqual(sorted(j), ["instance"])
        i = j["instance"]
        self.check_instance(i, parent="serial", type=T, defined=True,
                            start="manual", state="stopped", mode="0660",
                            attrs={"port0": "pty", "port1": "none"},
                            owner={"uid": os.geteuid(), "gid": os.getegid()})
        defs = self.instances(defined=True)
        self.assertEqual(set(defs), {u, g, up.lower(), i["uuid"]})
        self.assertEqual(defs[g]["start"], "auto")
        for d in defs.values():
            self.check_instance(d, defined=True, state="stopped")
        # Not running: plain `list` shows none of them.
        self.assertEqual(self.instances(), {})
        self.assertEqual(self.ok("list").out, "")
        text = self.ok("list", "--defined").out
        self.assertIn("%s serial %s manual stopped (defined)\n" % (u, T),
                      text)
        self.assertIn("%s serial %s auto stopped (defined)\n" % (g, T), text)

    def test_define_refused(self):
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", T)
        before = sorted(os.listdir(os.path.join(self.d.statedir, "serial")))
        cases = [
            ("EEXIST", ("-u", u, "-p", "serial", "-t", T),
             "%s exists already" % u),
            ("EEXIST", ("-u", u.upper(), "-p", "serial", "-t", T),
             "%s exists already" % u),
            ("EINVAL", ("-u", "not-a-uuid", "-p", "serial", "-t", T),
             "'not-a-uuid' is not a UUID"),
            ("EINVAL", ("-u", u[:-1], "-p", "serial", "-t", T),
             "is not a UUID"),
            ("ENOENT", ("-p", "gpu", "-t", "x"), "no parent named 'gpu'"),
            ("ENOENT", ("-p", "serial", "-t", "9port"),
             "unknown type 'serial-9port'"),
            ("EINVAL", ("-p", "serial", "-t", T, "--attr", "colour=red"),
             "unknown attribute 'colour'"),
            ("EINVAL", ("-p", "serial", "-t", T, "--attr", "port0=tty"),
             "port0='tty'"),
            ("EINVAL", ("-p", "serial", "-t", T, "--attr", "port0=7"),
             "attribute port0 must be a string"),
            ("ENAMETOOLONG", ("-p", "serial", "-t", T, "--attr",
                              "port1=/" + "x" * 200),
             "attribute port1: path longer than"),
            ("EINVAL", ("-p", "serial", "-t", T, "--mode", "0400"),
             "mode must be an octal string"),
            ("EINVAL", ("-p", "serial", "-t", T, "--mode", "rw"),
             "mode must be an octal string"),
            ("EINVAL", ("-p", "serial", "-t", T, "--owner", "no-such-user"),
             "owner.user 'no-such-user' does not exist"),
            ("EINVAL", ("-p", "serial", "-t", T, "--group", "no-such-grp"),
             "owner.group 'no-such-grp' does not exist"),
        ]
        for code, args, says in cases:
            with self.subTest(args=args):
                self.refused(code, "define", *args, says=says)
        # Nothing of the refused ones was written or kept.
        self.assertEqual(
            sorted(os.listdir(os.path.join(self.d.statedir, "serial"))),
            before)
        self.assertEqual(set(self.instances(defined=True)), {u})

    def test_jsonfile_round_trip(self):
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", T, "--auto",
                "--attr", "port0=pty", "--mode", "0640")
        # mdevctl's shape, with umdev's owner and mode.
        dump = self.ok("list", "--defined", "-u", u, "--dumpjson").json()
        self.assertEqual(sorted(dump), MDEVCTL_KEYS)
        self.assertEqual((dump["mdev_type"], dump["start"], dump["attrs"],
                          dump["mode"]),
                         (T, "auto", [{"port0": "pty"}], "0640"))
        path = os.path.join(self.tmp, "def.json")
        with open(path, "w") as f:
            json.dump(dump, f)
        # A copy under another UUID (the file names none: mdevctl's
        # definitions get theirs from -u and the parent from -p).
        c = new_uuid()
        self.assertEqual(self.ok("define", "--jsonfile", path, "-u", c,
                                 "-p", "serial").out, c + "\n")
        # The original, back from its dump.
        self.ok("undefine", u)
        self.assertEqual(self.ok("define", "--jsonfile", path, "-p",
                                 "serial", "-u", u).out, u + "\n")
        self.assertEqual(
            self.ok("list", "--defined", "-u", u, "--dumpjson").json(), dump)
        self.assertEqual(
            self.ok("list", "--defined", "-u", c, "--dumpjson").json(), dump)
        # umdev's own shape is a --jsonfile too.
        own = {k: v for k, v in self.instance(u).items()
               if k in DEF_KEYS}
        own["uuid"] = new_uuid()
        with open(path, "w") as f:
            json.dump(own, f)
        self.assertEqual(self.ok("define", "--jsonfile", path).out,
                         own["uuid"] + "\n")
        self.assertEqual(
            self.ok("list", "--defined", "-u", own["uuid"],
                    "--dumpjson").json(), dump)
        # Unknown keys in the file are refused, not ignored.
        with open(path, "w") as f:
            json.dump(dict(own, uuid=new_uuid(), colour="red"), f)
        self.refused("EINVAL", "define", "--jsonfile", path,
                     says="unknown key 'colour'")
        with open(path, "w") as f:
            json.dump(dict(dump, colour="red"), f)
        self.refused("EINVAL", "define", "--jsonfile", path, "-p", "serial",
                     says="unknown key 'colour'")

    def test_start_stop_definition(self):
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        r = self.ok("start", u)
        sock = os.path.join(self.d.rundir, u + ".sock")
        self.assertEqual(r.out, "%s started: %s\n" % (u, sock))
        st = os.stat(sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        i = self.instance(u)
        self.check_instance(i, state="running", defined=True)
        pid = i["pid"]
        self.assertEqual(set(self.instances()), {u})
        self.assertIn("%s serial %s manual running (defined)\n" % (u, T),
                      self.ok("list").out)
        p = self.probe(sock)
        self.assertIn("PCI", json.dumps(p))
        self.refused("EALREADY", "start", u, says="is running already")
        self.refused("EBUSY", "undefine", u, says="stop it first")
        self.assertEqual(self.ok("stop", u).out, "")
        self.check_instance(self.instance(u), state="stopped")
        self.assertFalse(os.path.exists(sock))
        self.wait_for("worker %d to end" % pid, lambda: not harness.alive(pid))
        self.refused("ENOENT", "stop", u, says="is not running")
        # -u form and --json output.
        j = self.js("start", "-u", u)
        self.assertEqual(sorted(j), ["instance"])
        self.check_instance(j["instance"], uuid=u, state="running")
        self.assertEqual(self.js("stop", "-u", u, "--grace", "0"), {})
        self.refused("ENOENT", "start", new_uuid(), says="no instance")
        self.refused("EINVAL", "start", "nope", says="'nope' is not a UUID")
        self.refused("ENOENT", "stop", new_uuid(), says="no instance")
        self.refused("EINVAL", "stop", "nope", says="'nope' is not a UUID")
        self.assertEqual(self.sockets_in_rundir(), [])

    def test_transient(self):
        r = self.ok("start", "-p", "serial", "-t", T)
        m = re.match(r"^(\S+) started: (\S+)\n$", r.out)
        self.assertIsNotNone(m, str(r))
        t = m.group(1)
        self.assertRegex(t, UUID_RE)
        self.assertEqual(m.group(2), os.path.join(self.d.rundir,
                                                  t + ".sock"))
        self.check_instance(self.instance(t), defined=False, state="running")
        self.assertNotIn(t, self.instances(defined=True))
        self.assertFalse(os.path.exists(self.def_path(t)))
        self.assertIn("%s serial %s manual running\n" % (t, T),
                      self.ok("list").out)
        # A chosen UUID and attributes.
        u = new_uuid()
        i = self.start_instance("-p", "serial", "-t", "2port", "-u", u,
                                "--attr", "port0=pty", "--attr",
                                "port1=none", "--mode", "0660")
        self.check_instance(i, uuid=u, defined=False, mode="0660",
                            attrs={"port0": "pty", "port1": "none"})
        self.assertEqual(stat.S_IMODE(os.stat(i["socket"]).st_mode), 0o660)
        ep = self.js("info", u)["device"]["endpoints"]
        self.assertEqual(sorted(ep), ["port0"])
        self.assertEqual(ep["port0"]["kind"], "pty")
        self.assertTrue(ep["port0"]["host_end"].startswith("/dev/pts/"))
        # Its UUID is taken, for definitions and transients alike.
        self.refused("EEXIST", "start", "-p", "serial", "-t", T, "-u", u,
                     says="exists already")
        # A define of it makes it persistent as it runs (test_operate.py),
        # so not as another type.
        self.refused("EINVAL", "define", "-p", "serial", "-t", "accel-1wq",
                     "-u", u, says="runs as type serial-2port, not 'accel-1wq'")
        self.refused("ENOENT", "undefine", u, says="transient")
        self.refused("ENOENT", "modify", u, "--auto", says="transient")
        # --jsonfile for a transient; options override the file.
        path = os.path.join(self.tmp, "t.json")
        with open(path, "w") as f:
            json.dump({"parent": "serial", "type": T, "mode": "0640",
                       "attrs": {"port0": "none", "port1": "none"}}, f)
        j = self.start_instance("-p", "serial", "-t", T, "--jsonfile", path,
                                "--mode", "0660")
        self.check_instance(j, mode="0660", defined=False,
                            attrs={"port0": "none", "port1": "none"})
        self.assertEqual(self.js("info", j["uuid"])["device"]["endpoints"],
                         {})
        self.ok("stop", j["uuid"])
        # Refused transients leave nothing behind.
        socks = self.sockets_in_rundir()
        self.refused("ENOENT", "start", "-p", "gpu", "-t", "x",
                     says="no parent named 'gpu'")
        self.refused("EINVAL", "start", "-p", "serial", "-t", T, "--attr",
                     "speed=9600", says="unknown attribute 'speed'")
        self.refused("EINVAL", "start", "-p", "serial", "-t", T, "-u", "x",
                     says="'x' is not a UUID")
        self.assertEqual(set(self.instances()), {t, u})
        self.assertEqual(self.sockets_in_rundir(), socks)
        # Stopped, a transient is gone.
        self.ok("stop", t)
        self.ok("stop", u)
        self.assertEqual(self.instances(), {})
        self.assertIsNone(self.lookup(t))
        self.assertEqual(self.sockets_in_rundir(), [])
        self.refused("ENOENT", "stop", t, says="no instance")

    def test_undefine(self):
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        self.assertTrue(os.path.exists(self.def_path(u)))
        self.assertEqual(self.ok("undefine", u).out, "")
        self.assertFalse(os.path.exists(self.def_path(u)))
        self.assertEqual(self.instances(defined=True), {})
        self.refused("ENOENT", "undefine", u, says="no instance %s" % u)
        self.refused("EINVAL", "undefine", "x", says="'x' is not a UUID")
        v = self.ok("define", "-p", "serial", "-t", T).out.strip()
        self.assertEqual(self.js("undefine", "-u", v.upper()), {})
        self.assertEqual(os.listdir(os.path.join(self.d.statedir, "serial")),
                         [])

    def test_modify(self):
        u = self.ok("define", "-p", "serial", "-t", T, "--attr",
                    "port1=none").out.strip()
        i = self.start_instance(u)
        ep = self.js("info", u)["device"]["endpoints"]
        self.assertEqual(sorted(ep), ["port0"])
        self.assertEqual(ep["port0"]["kind"], "socket")
        r = self.ok("modify", u, "--attr", "port0=pty", "--delattr", "port1",
                    "--auto", "--mode", "0660", "-t", "2port")
        self.assertEqual(r.out, "%s modified (takes effect at next start)\n"
                         % u)
        # What runs is shown, and apart from it what the next start
        # changes (the start policy is the definition's alone).
        d = self.instance(u)
        self.check_instance(d, attrs={"port1": "none"}, start="auto",
                            mode="0600", type=T, state="running")
        self.assertEqual(d["pending"], {"mode": "0660",
                                        "attrs": {"port0": "pty",
                                                  "port1": None}})
        with open(self.def_path(u)) as f:
            body = json.load(f)
        self.assertEqual((body["attrs"], body["start"], body["mode"]),
                         ({"port0": "pty"}, "auto", "0660"))
        # The running instance keeps what it started with ...
        ep = self.js("info", u)["device"]["endpoints"]
        self.assertEqual(sorted(ep), ["port0"])
        self.assertEqual(ep["port0"]["kind"], "socket")
        self.assertEqual(stat.S_IMODE(os.stat(i["socket"]).st_mode), 0o600)
        # ... until the next start.
        self.ok("stop", u)
        i = self.start_instance(u)
        ep = self.js("info", u)["device"]["endpoints"]
        self.assertEqual(sorted(ep), ["port0", "port1"])
        self.assertEqual(ep["port0"]["kind"], "pty")
        self.assertEqual(ep["port1"]["kind"], "socket")
        self.assertEqual(stat.S_IMODE(os.stat(i["socket"]).st_mode), 0o660)
        # --json, and --manual.
        j = self.js("modify", "-u", u, "--manual")
        self.check_instance(j["instance"], uuid=u, start="manual")
        # Refusals change nothing.
        with open(self.def_path(u)) as f:
            before = f.read()
        other = [t["name"] for t in self.js("types")["types"]
                 if t["parent"] != "serial"]
        cases = [
            ("EINVAL", ("-t", "serial-9port"),
             "type 'serial-9port' is not a type of parent 'serial'"),
            ("EINVAL", ("-t", "9port"), "'9port' is not a type of parent"),
            ("EINVAL", ("--attr", "colour=red"),
             "unknown attribute 'colour'"),
            ("EINVAL", ("--attr", "port0=here"), "port0='here'"),
            ("EINVAL", ("--mode", "0200"), "mode must be an octal string"),
            ("EINVAL", ("--owner", "no-such-user"),
             "owner.user 'no-such-user' does not exist"),
        ] + [("EINVAL", ("-t", o), "is not a type of parent 'serial'")
             for o in other]
        for code, args, says in cases:
            with self.subTest(args=args):
                self.refused(code, "modify", u, *args, says=says)
        with open(self.def_path(u)) as f:
            self.assertEqual(f.read(), before)
        self.refused("ENOENT", "modify", new_uuid(), "--auto",
                     says="no instance")
        self.refused("EINVAL", "modify", "x", "--auto",
                     says="'x' is not a UUID")

    def test_info(self):
        u = self.ok("define", "-p", "serial", "-t", T).out.strip()
        # Stopped: the instance only.
        j = self.js("info", u)
        self.assertEqual(sorted(j), ["instance"])
        self.check_instance(j["instance"], uuid=u, state="stopped")
        text = self.ok("info", u).out
        self.assertIn("state: stopped", text)
        self.assertNotIn("regions:", text)
        i = self.start_instance(u)
        self.probe(i["socket"])
        j = self.js("info", "-u", u)
        self.assertEqual(sorted(j), ["device", "instance"])
        self.check_instance(j["instance"], uuid=u, state="running")
        self.assertNotIn("client_pid", j["instance"])
        dev = j["device"]
        self.assertNotIn("client_pid", dev)
        names = {r["name"] for r in dev["regions"]}
        self.assertIn("CONFIG", names)
        for r in dev["regions"]:
            self.assertEqual(sorted(r), ["index", "mmap", "name", "size",
                                         "trapped"])
        irqs = {q["name"]: q["count"] for q in dev["irqs"]}
        self.assertEqual(irqs.get("REQ"), 1)
        self.assertEqual(sorted(dev["counters"]),
                         ["attaches", "dma_bytes", "errors", "irqs",
                          "irqs_dropped", "msgs", "region_reads",
                          "region_writes"])
        # The probe attached once and spoke.
        self.assertEqual(dev["counters"]["attaches"], 1)
        self.assertGreater(dev["counters"]["msgs"], 0)
        self.assertGreater(dev["counters"]["region_reads"], 0)
        text = self.ok("info", u).out
        for s in ("%s\n" % u, "  state: running\n",
                  "  socket: %s\n" % i["socket"],
                  "  worker pid: %d\n" % i["pid"],
                  "  client pid: (no client attached)\n", "  regions:\n",
                  "CONFIG", "  irqs:\n", "REQ", "  counters:\n",
                  "  endpoints:\n"):
            self.assertIn(s, text)
        self.refused("ENOENT", "info", new_uuid(), says="no instance")
        self.refused("EINVAL", "info", "zz", says="'zz' is not a UUID")

    def test_list_filters(self):
        a = self.ok("define", "-p", "serial", "-t", T).out.strip()
        b = self.ok("define", "-p", "serial", "-t", T).out.strip()
        self.ok("start", a)
        self.assertEqual(set(self.instances()), {a})
        self.assertEqual(set(self.instances(defined=True)), {a, b})
        self.assertEqual(
            [i["uuid"] for i in
             self.js("list", "--defined", "-u", b.upper())["instances"]],
            [b])
        self.assertEqual(self.js("list", "-u", b)["instances"], [])
        self.assertEqual(
            len(self.js("list", "--defined", "-p", "serial")["instances"]),
            2)
        self.refused("ENOENT", "list", "--defined", "-p", "gpu",
                     says="no parent named 'gpu'")
        self.refused("EINVAL", "list", "-u", "bogus",
                     says="'bogus' is not a UUID")
        # --dumpjson of running instances: mdevctl's shape.
        dump = self.ok("list", "--dumpjson").json()
        self.assertEqual(len(dump), 1)
        self.assertEqual(list(dump[0]), ["serial"])
        self.assertEqual([list(d) for d in dump[0]["serial"]], [[a]])
        self.assertEqual(sorted(dump[0]["serial"][0][a]), MDEVCTL_KEYS)


class Protocol(DaemonTestCase):
    """The control protocol itself (docs/CONTROL.md), without umdevctl."""

    def setUp(self):
        super().setUp()
        self.daemon(use_env=True)

    def test_errors_keep_the_connection(self):
        with self.d.connect() as c:
            r = c.call("version", version=2)
            self.assertEqual(r["error"]["code"], "EPROTONOSUPPORT")
            self.assertEqual(r["version"], 1)
            c.send_line('{"version": 1, "id": "x"}\n')
            r = c.recv_line()
            self.assertEqual((r["id"], r["ok"], r["error"]["code"]),
                             ("x", False, "EINVAL"))
            self.assertIn("cmd is required", r["error"]["message"])
            r = c.call("frobnicate")
            self.assertEqual(r["error"]["code"], "EINVAL")
            self.assertIn("unknown command 'frobnicate'",
                          r["error"]["message"])
            r = c.call("types", ["serial"])
            self.assertIn("args must be an object", r["error"]["message"])
            for cmd in ("types", "list", "undefine", "stop", "info"):
                r = c.call(cmd, {"bogus": 1})
                self.assertEqual(r["error"]["code"], "EINVAL", (cmd, r))
                self.assertIn("unknown argument 'bogus'",
                              r["error"]["message"])
            r = c.call("define", {"parent": "serial", "type": T,
                                  "bogus": 1})
            self.assertIn("unknown key 'bogus'", r["error"]["message"])
            r = c.call("modify", {"uuid": new_uuid(), "start": "auto"})
            self.assertEqual(r["error"]["code"], "ENOENT")
            r = c.call("stop", {"uuid": new_uuid(), "grace_ms": -1})
            self.assertEqual(r["error"]["code"], "EINVAL")
            r = c.call("undefine", {"uuid": 7})
            self.assertEqual(r["error"]["code"], "EINVAL")
            self.assertIn("a uuid (string) is required",
                          r["error"]["message"])
            r = c.call("define", {"parent": "serial", "type": T,
                                  "attrs": {"port0": None}})
            self.assertEqual(r["error"]["code"], "EINVAL")
            self.assertIn("attribute port0 is null", r["error"]["message"])
            # A definition cannot move to another parent or UUID.
            u = new_uuid()
            r = c.call("define", {"uuid": u, "parent": "serial",
                                  "type": T, "attrs": {"port0": "pty"}})
            self.assertTrue(r["ok"], r)
            r = c.call("modify", {"uuid": u, "parent": "gpu"})
            self.assertEqual(r["error"]["code"], "EINVAL")
            self.assertIn("parent 'gpu' does not match", r["error"]["message"])
            r = c.call("modify", {"uuid": u, "parent": "serial",
                                  "attrs": {"port0": None}})
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["result"]["instance"]["attrs"], {})
            # Still usable after all of that.
            r = c.call("version")
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["result"]["protocol"], 1)

    def test_pipelined_in_order(self):
        """Requests sent at once are answered in order, each with its id,
        including those that arrive while one waits for a worker and then
        act on the very instance that worker event concerned."""
        u, t = new_uuid(), new_uuid()
        tr = {"uuid": t, "parent": "serial", "type": T}
        reqs = [
            ("define", {"uuid": u, "parent": "serial", "type": T}),
            ("start", {"uuid": u}),
            ("list", None),
            ("info", {"uuid": u}),
            ("stop", {"uuid": u}),
            ("undefine", {"uuid": u}),
            ("list", {"defined": True}),
            ("start", tr),
            ("stop", {"uuid": t, "grace_ms": 0}),
            ("start", tr),
            ("stop", {"uuid": t}),
            ("list", None),
        ]
        with self.d.connect() as c:
            c.send_line("".join(
                json.dumps({"version": 1, "id": n, "cmd": cmd,
                            **({"args": a} if a is not None else {})}) + "\n"
                for n, (cmd, a) in enumerate(reqs)))
            resp = [c.recv_line() for _ in reqs]
        self.assertEqual([r["id"] for r in resp], list(range(len(reqs))))
        self.assertTrue(all(r["ok"] for r in resp), resp)
        self.assertEqual(resp[1]["result"]["instance"]["state"], "running")
        self.assertEqual([i["uuid"] for i in
                          resp[2]["result"]["instances"]], [u])
        self.assertIn("device", resp[3]["result"])
        self.assertEqual(resp[6]["result"]["instances"], [])
        self.assertEqual(resp[7]["result"]["instance"]["uuid"], t)
        self.assertEqual(resp[9]["result"]["instance"]["uuid"], t)
        self.assertEqual(resp[11]["result"]["instances"], [])

    def test_bad_stream_closes_only_that_connection(self):
        with self.d.connect() as other:
            with self.d.connect() as c:
                c.send_line("this is not json\n")
                r = c.recv_line()
                self.assertEqual(r["error"]["code"], "EINVAL")
                self.assertIsNone(c.recv_line())
            with self.d.connect() as c:
                c.send_line("[1, 2, 3]\n")
                self.assertEqual(c.recv_line()["error"]["code"], "EINVAL")
                self.assertIsNone(c.recv_line())
            with self.d.connect() as c:
                try:
                    c.send_line(b"{" + b" " * (1100 * 1024))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                r = c.recv_line()
                self.assertEqual(r["error"]["code"], "E2BIG")
                self.assertIsNone(c.recv_line())
            self.assertTrue(other.call("version")["ok"])

    def test_second_daemon_refused(self):
        d2 = harness.Daemon(self.tmp, name="second")
        self.daemons.append(d2)
        d2.start(wait=False)
        rc = d2.proc.wait(harness.T_EXIT)
        self.assertEqual(rc, 1, d2.log())
        self.assertIn("another umdevd is serving %s" % self.d.control,
                      d2.log())
        self.assertTrue(self.d.request("version")["ok"])

    def test_default_control_under_rundir(self):
        d2 = harness.Daemon(os.path.join(self.tmp, "second"),
                            name="rundir-only", control=False)
        os.makedirs(d2.tmp)
        self.daemons.append(d2)
        d2.start()
        self.assertEqual(d2.control, os.path.join(d2.rundir, "control"))
        self.assertIn("ready: control %s," % d2.control, d2.log())
        r = self.ok("version", control=False,
                    env={"UMDEV_RUNDIR": d2.rundir})
        self.assertIn("protocol 1", r.out)

if __name__ == "__main__":
    harness.main()
