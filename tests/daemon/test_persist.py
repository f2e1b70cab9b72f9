"""Persistent definitions: atomic writes under kill -9, corrupt and hostile
files at start, and the start policy across daemon restarts."""

import json
import os
import re
import threading

import harness
from harness import DaemonTestCase, new_uuid

T = "serial-2port"
ACKS_BEFORE_KILL = 300


class Persist(DaemonTestCase):

    def definitions(self):
        """{uuid: definition} as `list --defined --dumpjson` prints them
        (mdevctl's shape: [{PARENT: [{UUID: definition}, ...]}])."""
        dump = self.ok("list", "--defined", "--dumpjson").json()
        return {u: d for parent in dump for devs in parent.values()
                for one in devs for u, d in one.items()}

    def serial_dir(self):
        return os.path.join(self.d.statedir, "serial")

    def test_kill9_during_define_burst(self):
        d = self.daemon()
        acked = {}  # uuid -> the fields its define asked for
        lock = threading.Lock()
        stop = threading.Event()
        errors = []

        def protocol_client(k):
            n = 0
            try:
                with d.connect(timeout=5) as c:
                    while not stop.is_set():
                        n += 1
                        u = new_uuid()
                        args = {"uuid": u, "parent": "serial", "type": T,
                                "start": "auto" if n % 25 == 0 else "manual",
                                "mode": "0640" if n % 3 else "0600",
                                "attrs": {"port0": "pty" if n % 2 else
                                          "none"}}
                        r = c.call("define", args)
                        if not r["ok"]:
                            errors.append(r)
                            return
                        with lock:
                            acked[u] = args
            except (OSError, ConnectionError, ValueError):
                # The daemon died with this request in flight: it was
                # never acknowledged.
                return

        def cli_client():
            while not stop.is_set():
                r = self.ctl("define", "-p", "serial", "-t", "2port",
                             "--attr", "port1=none", timeout=10)
                if r.rc == 3:
                    return  # umdevd is gone
                if r.rc != 0:
                    errors.append(str(r))
                    return
                with lock:
                    acked[r.out.strip()] = {
                        "type": T, "start": "manual", "mode": "0600",
                        "attrs": {"port1": "none"}}

        threads = [threading.Thread(target=protocol_client, args=(k,))
                   for k in range(4)]
        threads += [threading.Thread(target=cli_client) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            self.wait_for("%d acknowledged defines" % ACKS_BEFORE_KILL,
                          lambda: len(acked) >= ACKS_BEFORE_KILL or errors,
                          timeout=30, interval=0.005)
            d.kill9()
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(errors, [])
        # On disk right after the kill: every definition file whole. A
        # temporary file may be left; plant one more to be sure.
        left = [n for n in os.listdir(self.serial_dir()) if n[0] == "."]
        for n in os.listdir(self.serial_dir()):
            if n[0] == ".":
                continue
            with open(os.path.join(self.serial_dir(), n)) as f:
                self.assertEqual(json.load(f)["uuid"], n)
        planted = os.path.join(self.serial_dir(),
                               ".%s.tmpAbC123" % new_uuid())
        with open(planted, "w") as f:
            f.write('{"uuid": "')
        # Restart: every acknowledged definition, as asked, and no
        # temporary file.
        self.daemon()
        log = self.d.log()
        self.assertNotIn("skipping", log)
        self.assertIn("removed %s left by an interrupted write" % planted,
                      log)
        for n in left:
            self.assertIn("removed %s/%s left by an interrupted write" %
                          (self.serial_dir(), n), log)
        self.assertEqual([n for n in os.listdir(self.serial_dir())
                          if n[0] == "."], [])
        defs = self.instances(defined=True)
        self.assertGreaterEqual(len(acked), ACKS_BEFORE_KILL)
        missing = set(acked) - set(defs)
        self.assertEqual(missing, set(), "acknowledged, then lost")
        for u, want in acked.items():
            got = defs[u]
            for k in ("type", "start", "mode", "attrs"):
                self.assertEqual(got[k], want[k], (u, k, got))
        self.assertEqual(sorted(os.listdir(self.serial_dir())),
                         sorted(defs))
        autos = [u for u, a in acked.items() if a["start"] == "auto"]
        self.assertTrue(autos)
        for u in autos:
            self.wait_state(u, "running")

    def test_workers_outlive_a_killed_daemon(self):
        # They serve on, and the next daemon takes them over as they are
        # (tests/daemon/test_upgrade.py has the rest).
        d = self.daemon()
        started = [self.start_instance("-p", "serial", "-t", T)
                   for _ in range(3)]
        d.kill9()
        self.wait_for("the killed daemon's cleanup",
                      lambda: "ended leaving 3 instances running" in d.log())
        for i in started:
            self.assertTrue(harness.alive(i["pid"]), i)
        self.daemon()
        for i in started:
            got = self.instance(i["uuid"])
            self.assertEqual((got["state"], got["pid"]),
                             ("running", i["pid"]))

    def test_start_policy_across_restarts(self):
        self.daemon()
        a = self.ok("define", "-p", "serial", "-t", T, "--auto").out.strip()
        b = self.ok("define", "-p", "serial", "-t", T).out.strip()
        c = self.ok("define", "-p", "serial", "-t", T, "--auto").out.strip()
        t = self.start_instance("-p", "serial", "-t", T)["uuid"]
        self.ok("modify", b, "--auto")
        self.ok("modify", c, "--manual")
        before = self.definitions()
        self.assertEqual(self.d.terminate(), 0, self.d.log())
        self.daemon()
        self.assertIn("(3 definitions)", self.d.log())
        self.wait_state(a, "running")
        self.wait_state(b, "running")
        self.assertEqual(self.instance(c)["state"], "stopped")
        self.assertIsNone(self.lookup(t))
        self.assertEqual(self.definitions(), before)

    def test_corrupt_definitions_skipped(self):
        sd = os.path.join(self.tmp, "state")
        serial = os.path.join(sd, "serial")
        os.makedirs(serial)

        def body(u, **kw):
            b = {"uuid": u, "parent": "serial", "type": T, "start": "auto",
                 "owner": {"uid": 0, "gid": 0}, "mode": "0600",
                 "attrs": {}}
            for k, v in kw.items():
                if v is KeyError:
                    del b[k]
                else:
                    b[k] = v
            return json.dumps(b).encode()

        def put(name, data, parent_dir=serial):
            path = os.path.join(parent_dir, name)
            with open(path, "wb") as f:
                f.write(data)
            return path

        good_auto = [new_uuid() for _ in range(2)]
        good_manual = new_uuid()
        for u in good_auto:
            put(u, body(u))
        put(good_manual, body(good_manual, start="manual",
                              attrs={"port0": "pty"}))
        bad = []  # (path, reason)

        def expect(reason, data=None, name=None, **kw):
            u = name or new_uuid()
            path = put(u, data if data is not None else body(u, **kw))
            bad.append((path, reason))

        other = new_uuid()
        not_json = "not a JSON object"
        expect(not_json, b'{"uuid": ')
        expect(not_json, b"")
        expect(not_json, b"\x00\xff\xfe garbage \x00")
        expect(not_json, b"[]")
        expect(not_json, b"[" * 5000 + b"]" * 5000)
        expect(not_json, b'"just a string"')
        expect("its uuid does not match the file name", uuid=other)
        expect("its uuid does not match the file name", uuid=None)
        expect("its uuid does not match the file name", uuid=42)
        expect("its uuid does not match the file name", uuid=KeyError)
        expect("its parent does not match the directory", parent="gpu")
        expect("its parent does not match the directory", parent=None)
        expect("its parent does not match the directory", parent=["serial"])
        expect("no type", type=KeyError)
        expect("no type", type=7)
        expect("no type", type=None)
        expect("unknown type 'serial-9port'", type="serial-9port")
        expect("unknown type 'gpu-big'", type="gpu-big")
        expect('start must be "auto" or "manual"', start=5)
        expect('start must be "auto" or "manual"', start="sometimes")
        expect('start must be "auto" or "manual"', start=None)
        expect("mode must be an octal string", mode=384)
        expect("mode must be an octal string", mode="0000")
        expect("mode must be an octal string", mode="07777")
        expect("mode must be an octal string", mode="0x180")
        expect("owner must be an object", owner="root")
        expect("owner.uid must be a non-negative integer", owner={"uid": -1})
        expect("owner.uid must be a non-negative integer",
               owner={"uid": 2 ** 40})
        expect("owner.gid must be a non-negative integer",
               owner={"gid": "0"})
        expect("owner.user 'null' does not exist", owner={"user": None})
        expect("owner.user 'no-such-user' does not exist",
               owner={"user": "no-such-user"})
        expect("attrs must be an object", attrs=["port0"])
        expect("attrs must be an object", attrs=None)
        expect("attribute port0 must be a string", attrs={"port0": 7})
        expect("attribute port1 is null", attrs={"port1": None})
        expect("port0='../../etc/passwd'",
               attrs={"port0": "../../etc/passwd"})
        expect("path longer than", attrs={"port0": "/" + "a" * 300})
        expect("unknown attribute 'colour'", attrs={"colour": "red"})
        expect("unknown key 'extra'", extra=1)
        big = body(new_uuid())
        expect("not a regular file of at most 65536 bytes",
               big[:-1] + b', "pad": "' + b"x" * 70000 + b'"}')
        fifo = os.path.join(serial, new_uuid())
        os.mkfifo(fifo)
        bad.append((fifo, "not a regular file"))
        link = os.path.join(serial, new_uuid())
        os.symlink(os.path.join(serial, good_auto[0]), link)
        bad.append((link, "cannot open"))
        subdir = os.path.join(serial, new_uuid())
        os.mkdir(subdir)
        bad.append((subdir, "not a regular file"))
        name_reason = "the file name is not a lower-case UUID"
        expect(name_reason, name="README")
        up = new_uuid().upper()
        expect(name_reason, body(up), name=up)
        # The same UUID under two parents' directories can't both load;
        # a directory that names no parent is skipped whole.
        gpu = os.path.join(sd, "gpu")
        os.makedirs(gpu)
        put(new_uuid(), body(new_uuid()), parent_dir=gpu)
        # A temporary file left by an interrupted write: removed.
        tmpf = put(".%s.tmpQwErTy" % new_uuid(), b'{"uuid": "')

        self.daemon(statedir=sd)
        log = self.d.log()
        for path, reason in bad:
            with self.subTest(path=os.path.basename(path), reason=reason):
                self.assertRegex(log, r"skipping definition %s: [^\n]*%s" %
                                 (re.escape(path), re.escape(reason)))
                self.assertTrue(os.path.lexists(path))
        self.assertIn("skipping %s: no parent named 'gpu' in this daemon" %
                      gpu, log)
        self.assertIn("removed %s left by an interrupted write" % tmpf, log)
        self.assertFalse(os.path.exists(tmpf))
        self.assertEqual(set(self.instances(defined=True)),
                         set(good_auto) | {good_manual})
        for u in good_auto:
            self.wait_state(u, "running")
        self.assertEqual(self.instance(good_manual)["state"], "stopped")
        self.assertEqual(set(self.instances()), set(good_auto))
        self.assertIn("(%d definitions)" % (len(good_auto) + 1), log)


    def test_definition_size_limit(self):
        """The next start reads a definition file of at most DEF_MAX_SIZE
        (65536) bytes, so define and modify refuse (E2BIG, nothing
        changed) a definition whose file would be larger, escapes
        counted; one of exactly 65536 bytes is written, and the next
        daemon takes it. The label plug-in's attribute takes any text."""
        limit = 65536
        pdir = os.path.join(self.tmp, "plugins")
        os.mkdir(pdir)
        os.symlink(harness.BIN["plugin_label"], os.path.join(pdir, "label.so"))
        args = ["--plugin-dir", pdir, "--admit", "any"]
        self.daemon(args)
        u = self.ok("define", "-p", "label", "-t", "card",
                    "--attr", "label=").out.strip()
        ldir = os.path.join(self.d.statedir, "label")
        path = os.path.join(ldir, u)
        # Each letter of the label is one byte of the file.
        n = limit - os.path.getsize(path)
        self.ok("modify", u, "--attr", "label=" + "x" * n)
        self.assertEqual(os.path.getsize(path), limit)
        with open(path, "rb") as f:
            at_limit = f.read()
        says = "would be a file of %d bytes, more than the %d" % (limit + 1,
                                                                  limit)
        self.refused("E2BIG", "modify", u, "--attr",
                     "label=" + "x" * (n + 1), says=says)
        # A control character is six bytes of the file ("\u0001").
        ctl = "\x01" * (n // 6 + 1)
        self.refused("E2BIG", "modify", u, "--attr", "label=" + ctl)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), at_limit)
        i = self.instance(u)
        self.assertEqual(len(i["attrs"]["label"]), n)
        self.assertNotIn("pending", i)
        # A new definition: no file, no instance.
        v = new_uuid()
        self.refused("E2BIG", "define", "-u", v, "-p", "label", "-t", "card",
                     "--attr", "label=" + "x" * (n + 1), says=says)
        self.refused("E2BIG", "define", "-u", v, "-p", "label", "-t", "card",
                     "--attr", "label=" + ctl)
        self.assertIsNone(self.lookup(v))
        self.assertEqual(os.listdir(ldir), [u])
        # A running transient instance stays transient.
        t = self.start_instance("-p", "label", "-t", "card", "--attr",
                                "label=" + "x" * (n + 1))["uuid"]
        self.refused("E2BIG", "define", "-u", t, says=says)
        self.assertFalse(self.instance(t)["defined"])
        self.assertEqual(os.listdir(ldir), [u])
        self.ok("stop", t)
        self.assertIsNone(self.lookup(t))
        # The next daemon reads the file at the limit.
        self.assertEqual(self.d.terminate(), 0, self.d.log())
        self.daemon(args)
        self.assertNotIn("skipping definition", self.d.log())
        self.assertEqual(self.instance(u)["attrs"]["label"], "x" * n)


if __name__ == "__main__":
    harness.main(programs=("plugin-label",))
