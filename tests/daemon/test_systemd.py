"""umdevd as systemd runs it: daemon/umdevd.service, daemon/umdev.sysusers
and the journal.

* The unit's ExecStart= line is run as written: only the paths systemd
  would make for it (RuntimeDirectory= under /run, StateDirectory= under
  /var/lib) and the installed umdevd are replaced by this build's and a
  temporary directory's. It runs with $NOTIFY_SOCKET on a datagram socket
  this test reads, as systemd's: STATUS= and READY=1 (only once the
  definitions marked auto run), WATCHDOG=1, STOPPING=1 on SIGTERM and
  on the unit's KillSignal=, which leaves the instances running for the
  next start (the unit's KillMode= and RuntimeDirectoryPreserve= as
  systemd applies them); and
  umdevctl, at its default control path under the runtime directory,
  manages it.
* The accounts the unit needs come from the sysusers.d file, applied by
  systemd-sysusers to a copy of /etc/passwd and /etc/group that is bound
  over the real ones in a private mount namespace: the host's accounts
  are never touched. Root is needed for that, as CI has.
* The unit as `cmake --install` writes it (DESTDIR and a temporary
  prefix; the prefix is then a link to where the files landed, so the
  ExecStart= of the installed file names a real umdevd) is the build
  tree's but for umdevd's path, and `systemd-analyze verify` finds
  nothing to say about it: no output, exit 0, with MANPATH at the
  installed man pages so Documentation= is checked too (when scdoc made
  them). verify only warns about a value it cannot parse and exits 0,
  and it drops an unknown capability name in silence, so every name in
  CapabilityBoundingSet= must also be one `systemd-analyze capability`
  lists. The check is first shown to catch a broken copy of the unit,
  one directive at a time. verify needs no running systemd: it loads
  the unit and the targets it depends on from the host's unit
  directories (systemd's own package).
* Under the unit's CapabilityBoundingSet= and NoNewPrivileges= (applied
  by setpriv, as systemd would) the daemon still forks sandboxed workers
  that change user, for root-owned and for nobody's instances; dropping
  CAP_SETUID, CAP_SETGID, CAP_SETPCAP or CAP_CHOWN from the set fails it.
* With stderr the journal's stream ($JOURNAL_STREAM names its device and
  inode), umdevd sends structured entries (PRIORITY, MESSAGE and, for a
  line about an instance, UUID, TYPE and PARENT) to the journal socket,
  here one this test binds in the namespace at /run/systemd/journal/
  socket; workers, which may open no socket, write "<N>"-prefixed lines
  to stderr. --log-level sets the threshold for both.

    test_systemd.py --umdevd P --umdevctl P --probe P --req-client P
        --unit BUILD/daemon/umdevd.service --sysusers daemon/umdev.sysusers
        --sbindir INSTALLED_SBINDIR --cmake CMAKE --build-dir BUILD
        --man-pages yes|no
"""

import ctypes
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import harness
from harness import (BIN, Daemon, DaemonTestCase, Lines, T_CMD, T_EXIT,
                     T_READY, T_STATE, main, new_uuid)

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_BIND = 0x1000

ARGS = {}
T = "serial-2port"
_libc = ctypes.CDLL(None, use_errno=True)


def _take_args():
    """Our own options (the harness takes the rest)."""
    for name in ("--unit", "--sysusers", "--sbindir", "--cmake",
                 "--build-dir", "--man-pages"):
        i = sys.argv.index(name)
        ARGS[name[2:]] = sys.argv[i + 1]
        del sys.argv[i:i + 2]


def _mount(src, dst, fstype, flags):
    if _libc.mount(src, dst, fstype, flags, None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s on %s: %s" % (src, dst, os.strerror(e)))


def _private_namespace(root):
    """Enter a private mount namespace whose /etc/passwd and /etc/group
    hold the sysusers.d file's accounts (made in @root by
    systemd-sysusers) and whose /run/systemd is empty. Runs before any
    thread exists."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    _mount(None, b"/", None, MS_REC | MS_PRIVATE)
    os.makedirs(os.path.join(root, "etc"))
    for f in ("passwd", "group", "shadow", "gshadow"):
        if os.path.exists("/etc/" + f):
            shutil.copy2("/etc/" + f, os.path.join(root, "etc", f))
    subprocess.run(["systemd-sysusers", "--root=" + root, ARGS["sysusers"]],
                   check=True, capture_output=True)
    for f in ("passwd", "group"):
        _mount(os.path.join(root, "etc", f).encode(),
               ("/etc/" + f).encode(), None, MS_BIND)
    # An empty journal directory of our own; on a host without systemd
    # a tmpfs over all of /run, so that nothing is made on the host's.
    if os.path.isdir("/run/systemd"):
        _mount(b"tmpfs", b"/run/systemd", b"tmpfs", 0)
    else:
        _mount(b"tmpfs", b"/run", b"tmpfs", 0)
        os.mkdir("/run/systemd")


def parse_unit(path):
    """[(section, key, value)] of a unit file: comments skipped,
    continuation lines joined."""
    out, section, pending = [], None, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip()[0] in "#;"):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            if line.startswith("["):
                section = line.strip()[1:-1]
                continue
            key, _, value = line.partition("=")
            out.append((section, key.strip(), value.strip()))
    return out


def unit_value(settings, section, key):
    vals = [v for s, k, v in settings if s == section and k == key]
    return vals[-1] if vals else None


def known_capabilities():
    """The capability names systemd knows, upper case."""
    p = subprocess.run(["systemd-analyze", "capability"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    names = {line.split()[0].upper() for line in p.stdout.splitlines()[1:]
             if line.strip()}
    assert "CAP_CHOWN" in names, p.stdout
    return names


def unit_problems(unit, manpath):
    """What is wrong with unit file @unit, as systemd sees it: each line
    `systemd-analyze verify` prints, its exit status if not 0, and each
    capability name it does not know. @manpath: the man pages that
    Documentation= must find (None: not checked)."""
    env = dict(os.environ)
    if manpath:
        env["MANPATH"] = manpath
    p = subprocess.run(["systemd-analyze", "verify",
                        "--man=" + ("yes" if manpath else "no"), unit],
                       capture_output=True, text=True, timeout=60, env=env)
    out = [line for line in (p.stdout + p.stderr).splitlines()
           if line.strip()]
    if p.returncode != 0:
        out.append("systemd-analyze verify exited %d" % p.returncode)
    caps = unit_value(parse_unit(unit), "Service",
                      "CapabilityBoundingSet") or ""
    known = known_capabilities()
    for c in caps.lstrip("~").split():
        if c.upper() not in known:
            out.append("CapabilityBoundingSet=: systemd knows no %s" % c)
    return out


def native_fields(data):
    """The fields of one datagram of journald's native protocol."""
    out, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, _, v = line.partition(b"=")
            i = nl + 1
        else:  # NAME\n, 64-bit little-endian length, value, \n
            k = line
            n = int.from_bytes(data[nl + 1:nl + 9], "little")
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        out[k.decode()] = v.decode()
    return out


class Service(Daemon):
    """umdevd started from the unit's ExecStart= line."""

    def __init__(self, tmp, settings, env, confined=False):
        """@confined: under the unit's CapabilityBoundingSet= and
        NoNewPrivileges= (setpriv does what systemd would)."""
        super().__init__(tmp, control=False)
        self.settings = settings
        self.extra_env = env
        self.confined = confined
        rt = unit_value(settings, "Service", "RuntimeDirectory")
        st = unit_value(settings, "Service", "StateDirectory")
        assert rt and st, "the unit names no RuntimeDirectory/StateDirectory"
        # What systemd makes before it starts the service, and where.
        self.paths = {"/run/" + rt: os.path.join(tmp, "run"),
                      "/var/lib/" + st: os.path.join(tmp, "lib")}
        for key, real in (("RuntimeDirectoryMode", "/run/" + rt),
                          ("StateDirectoryMode", "/var/lib/" + st)):
            mode = int(unit_value(settings, "Service", key) or "0755", 8)
            os.makedirs(self.paths[real], exist_ok=True)
            os.chmod(self.paths[real], mode)
        self.argv = self.command_line()

    def command_line(self):
        line = unit_value(self.settings, "Service", "ExecStart")
        assert line and line[0] not in "-@:+!|", \
            "ExecStart= with a prefix this test does not run: %s" % line
        argv = shlex.split(line)
        installed = os.path.join(ARGS["sbindir"], "umdevd")
        assert argv[0] == installed, (argv[0], installed)
        out = []
        if self.confined:
            caps = unit_value(self.settings, "Service",
                              "CapabilityBoundingSet").split()
            assert caps and all(c.startswith("CAP_") for c in caps), caps
            out += ["setpriv", "--bounding-set",
                    ",".join(["-all"] + ["+" + c[4:].lower() for c in caps])]
            if unit_value(self.settings, "Service",
                          "NoNewPrivileges") == "yes":
                out.append("--no-new-privs")
            out.append("--")
        out.append(BIN["umdevd"])
        for a in argv[1:]:
            if a.startswith("/"):
                for real, ours in self.paths.items():
                    if a == real or a.startswith(real + "/"):
                        a = ours + a[len(real):]
                        break
                else:
                    raise AssertionError("ExecStart= names %s, which systemd "
                                         "does not make for the unit" % a)
            out.append(a)
        return out

    def start(self, wait=True):
        """The harness's start() with the unit's command line."""
        env = dict(os.environ)
        for k in ("UMDEV_RUNDIR", "UMDEV_STATEDIR", "UMDEV_CONTROL",
                  "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
                  "JOURNAL_STREAM"):
            env.pop(k, None)
        env.update(self.extra_env)
        self._log_from = (os.path.getsize(self.logpath)
                          if os.path.exists(self.logpath) else 0)
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, env=env,
                                     start_new_session=True,
                                     preexec_fn=harness._die_with_parent)
        log.close()
        harness._popen_pids.add(self.proc.pid)
        harness._daemons.append(self)
        if wait:
            self.wait_ready()
        return self


class Notify:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.got = []  # every assignment received, in order

    def next(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        msg = self.sock.recv(4096).decode().split("\n")
        msg = [m for m in msg if m]
        self.got += msg
        return msg

    def wait_for(self, pred, what, timeout):
        """Read until an assignment satisfies @pred; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.next(max(0, deadline - time.monotonic()))
            for m in msg or ():
                if pred(m):
                    return m
        raise AssertionError("no %s from umdevd within %s s; got %s" %
                             (what, timeout, self.got))

    def close(self):
        self.sock.close()


class Systemd(DaemonTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("the systemd tests need root for a private mount "
                      "namespace (run them as root, as CI does)")
        self.settings = parse_unit(ARGS["unit"])

    def service(self, env=None, start=True, confined=False):
        self.notify = Notify(os.path.join(self.tmp, "notify"))
        self.addCleanup(self.notify.close)
        e = {"NOTIFY_SOCKET": self.notify.path}
        e.update(env or {})
        d = Service(self.tmp, self.settings, e, confined)
        self.daemons.append(d)
        self.d = d
        if start:
            d.start(wait=False)
        return d

    def install(self):
        """cmake --install into DESTDIR=TMP/destdir with --prefix
        TMP/prefix, TMP/prefix then a link to DESTDIR/TMP/prefix: the
        files as installed, their paths as they name one another. Return:
        (the unit, the installed man pages' directory or None)."""
        destdir = os.path.join(self.tmp, "destdir")
        prefix = os.path.join(self.tmp, "prefix")
        p = subprocess.run([ARGS["cmake"], "--install", ARGS["build-dir"],
                            "--prefix", prefix],
                           env=dict(os.environ, DESTDIR=destdir),
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        os.symlink(destdir + prefix, prefix)
        found = {}
        for top, _, files in os.walk(destdir):
            for f in files:
                found.setdefault(f, []).append(os.path.join(top, f))
        self.assertEqual(len(found.get("umdevd.service", [])), 1, found)
        manpath = None
        if ARGS["man-pages"] == "yes":
            page = found.get("umdevd.8", [""])[0]
            self.assertTrue(page, "umdevd.8 is not installed")
            manpath = os.path.dirname(os.path.dirname(page))
        return found["umdevd.service"][0], manpath

    def test_verify(self):
        """systemd-analyze verify has nothing to say about the unit as
        installed, and says something about each broken copy of it."""
        unit, manpath = self.install()
        with open(unit) as f:
            text = f.read()
        # The build tree's unit, which the other tests run, is the one
        # installed but for umdevd's path.
        exec_start = shlex.split(unit_value(parse_unit(unit), "Service",
                                            "ExecStart"))[0]
        self.assertTrue(exec_start.startswith(
            os.path.join(self.tmp, "prefix") + "/"), exec_start)
        self.assertTrue(os.access(exec_start, os.X_OK), exec_start)
        with open(ARGS["unit"]) as f:
            built = f.read()
        self.assertEqual(text, built.replace(
            "ExecStart=%s " % os.path.join(ARGS["sbindir"], "umdevd"),
            "ExecStart=%s " % exec_start))
        # The check itself: each of these breaks the unit for systemd.
        breaks = [("Type=notify\n", "Type=notfy\n"),
                  ("KillMode=process", "KillMode=proces"),
                  ("KillSignal=SIGUSR2", "KillSignal=SIGUSR3"),
                  ("WatchdogSec=30s", "WatchdogSec=thirty"),
                  ("NoNewPrivileges=yes", "NoNewPrivilege=yes"),
                  ("RestrictAddressFamilies=AF_UNIX",
                   "RestrictAddressFamilies=AF_UNX"),
                  (" CAP_KILL ", " CAP_KIL "),
                  ("ExecStart=" + exec_start + " ",
                   "ExecStart=" + exec_start + ".gone "),
                  ("[Service]", "[service]")]
        if manpath:
            breaks.append(("man:umdevctl(8)", "man:umdevctl(1)"))
        broken = os.path.join(self.tmp, "broken")
        os.mkdir(broken)
        for old, new in breaks:
            with self.subTest(broken=new):
                self.assertIn(old, text)
                with open(os.path.join(broken, "umdevd.service"), "w") as f:
                    f.write(text.replace(old, new))
                self.assertNotEqual(
                    unit_problems(os.path.join(broken, "umdevd.service"),
                                  manpath), [])
        self.assertEqual(unit_problems(unit, manpath), [])

    def test_accounts(self):
        """The sysusers.d file makes the worker user umdevd uses by
        default and the group the unit names, apart from each other."""
        import grp
        import pwd
        helptext = subprocess.run([BIN["umdevd"], "--help"],
                                  capture_output=True, text=True).stdout
        m = re.search(r"default: user (\S+) if it exists", helptext)
        self.assertIsNotNone(m, helptext)
        worker = pwd.getpwnam(m.group(1))
        self.assertNotEqual(worker.pw_uid, 0)
        self.assertNotEqual(worker.pw_gid, 0)
        self.assertEqual(worker.pw_shell, "/usr/sbin/nologin")
        argv = shlex.split(unit_value(self.settings, "Service", "ExecStart"))
        group = grp.getgrnam(argv[argv.index("--group") + 1])
        self.assertNotEqual(group.gr_gid, worker.pw_gid)
        self.assertNotIn(worker.pw_name, group.gr_mem)

    def test_notify_lifecycle(self):
        """READY, STATUS, WATCHDOG and STOPPING as systemd expects them,
        and umdevctl at its default control socket under the runtime
        directory."""
        self.assertEqual(unit_value(self.settings, "Service", "Type"),
                         "notify")
        self.assertIsNotNone(unit_value(self.settings, "Service",
                                        "WatchdogSec"))
        # systemd sets WATCHDOG_USEC from WatchdogSec=; 1 s here, so the
        # pings come within the test.
        d = self.service({"WATCHDOG_USEC": "1000000"})
        self.notify.wait_for(lambda m: m == "READY=1", "READY=1", T_READY)
        self.assertTrue(any(m.startswith("STATUS=0 running") for m in
                            self.notify.got), self.notify.got)
        self.assertEqual(d.control, os.path.join(d.paths["/run/umdev"],
                                                 "control"))
        self.assertTrue(d.connectable())
        self.ok("types")
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", T, "--auto")
        self.ok("start", u)
        self.notify.wait_for(lambda m: m.startswith("STATUS=1 running"),
                             "STATUS with the instance running", T_STATE)
        t0 = time.monotonic()
        self.notify.wait_for(lambda m: m == "WATCHDOG=1", "WATCHDOG=1", 3)
        self.notify.wait_for(lambda m: m == "WATCHDOG=1", "WATCHDOG=1", 3)
        self.assertLess(time.monotonic() - t0, 3)
        d.signal(signal.SIGTERM)
        self.notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1",
                             T_EXIT)
        self.assertEqual(d.proc.wait(T_EXIT), 0, d.log())
        self.assertNotIn("READY=1", self.notify.got[
            self.notify.got.index("STOPPING=1"):])

        # Started again: the definition marked auto runs by READY=1.
        self.notify.got.clear()
        d.start(wait=False)
        self.notify.wait_for(lambda m: m == "READY=1", "READY=1", T_READY)
        self.assertTrue(any(m.startswith("STATUS=0 running, 1 starting")
                            for m in self.notify.got), self.notify.got)
        # What systemd knew when it was told READY: nothing starting.
        before = [m for m in self.notify.got[:self.notify.got.index(
            "READY=1")] if m.startswith("STATUS=")]
        self.assertTrue(before[-1].startswith("STATUS=1 running, 0 starting"),
                        self.notify.got)
        inst = self.instance(u)
        self.assertEqual(inst["state"], "running", inst)
        self.assertTrue(os.path.exists(inst["socket"]))
        self.assertTrue(inst["socket"].startswith(d.paths["/run/umdev"]))
        d.signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(T_EXIT), 0, d.log())

    def test_stop_keeps_instances(self):
        """What systemd does to stop the service (systemctl stop or
        restart, as a package upgrade does) leaves a running guest its
        device: umdevd gets the unit's KillSignal= alone (KillMode=), the
        runtime directory stays (RuntimeDirectoryPreserve=), the worker
        serves on with its VMM attached, and the service started again
        adopts it. umdevd's SIGTERM still ends every instance."""
        kill_mode = unit_value(self.settings, "Service", "KillMode")
        # Only the main process is signalled and nothing in the cgroup is
        # killed after it: anything else would end the workers.
        self.assertEqual(kill_mode, "process")
        sig = unit_value(self.settings, "Service", "KillSignal") or "SIGTERM"
        preserve = unit_value(self.settings, "Service",
                              "RuntimeDirectoryPreserve") or "no"
        d = self.service()
        self.notify.wait_for(lambda m: m == "READY=1", "READY=1", T_READY)
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", T)
        self.ok("start", u)
        inst = self.instance(u)
        vmm = self.spawn([BIN["req_client"], inst["socket"], "release",
                          "60000"])
        lines = Lines(vmm)
        first = lines.next()
        self.assertTrue(first is not None and first.startswith("attached"),
                        first)
        d.signal(getattr(signal, sig))
        self.notify.wait_for(lambda m: m == "STOPPING=1", "STOPPING=1",
                             T_EXIT)
        self.assertEqual(d.proc.wait(T_EXIT), 0, d.log())
        if preserve not in ("yes", "restart"):
            # systemd removes the runtime directory when the unit stops.
            shutil.rmtree(d.paths["/run/umdev"])
            os.makedirs(d.paths["/run/umdev"])
        self.assertTrue(harness.alive(inst["pid"]), d.log())
        self.assertIsNone(vmm.poll())
        self.notify.got.clear()
        d.start(wait=False)
        self.notify.wait_for(lambda m: m == "READY=1", "READY=1", T_READY)
        again = self.instance(u)
        self.assertEqual(again["state"], "running", d.log())
        self.assertEqual(again["pid"], inst["pid"], d.log())
        self.assertIn("%s: adopted running worker (pid %d" %
                      (u, inst["pid"]), d.log())
        self.assertIsNone(vmm.poll())
        # SIGTERM: the VMM, on the connection it has held throughout, is
        # asked to let go (REQ) and the instance stops with the daemon.
        d.signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(T_EXIT), 0, d.log())
        self.assertEqual(lines.rest(), ["req", "released"], lines.seen)
        self.assertFalse(harness.alive(inst["pid"]))

    def test_confined(self):
        """Under the unit's capability bounding set and no_new_privs the
        daemon still forks sandboxed workers: a root-owned instance's
        worker serves as the worker user the sysusers.d file makes, an
        instance of nobody's as nobody, both answer a VMM, both stop."""
        import pwd
        from harness import proc_ids
        d = self.service(confined=True)
        self.notify.wait_for(lambda m: m == "READY=1", "READY=1", T_READY)
        with open("/proc/%d/status" % d.proc.pid) as f:
            st = dict(line.split(":", 1) for line in f)
        self.assertNotEqual(st["CapBnd"].strip(), "000001ffffffffff")
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        worker = pwd.getpwnam("umdev")
        nobody = pwd.getpwnam("nobody")
        u1, u2 = new_uuid(), new_uuid()
        self.ok("start", "-u", u1, "-p", "serial", "-t", T)
        self.ok("start", "-u", u2, "-p", "serial", "-t", T, "--owner",
                "nobody")
        for u, who in ((u1, worker), (u2, nobody)):
            inst = self.instance(u)
            self.assertEqual(inst["state"], "running", inst)
            self.assertEqual(proc_ids(inst["pid"]),
                             (who.pw_uid, who.pw_gid), inst)
            p = subprocess.run([BIN["probe"], inst["socket"]],
                               capture_output=True, timeout=T_CMD)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"4348:3253", p.stdout)
        self.ok("stop", u1)
        self.ok("stop", u2)
        self.assertEqual(d.terminate(), 0, d.log())

    def journal_daemon(self, level):
        """umdevd whose stderr is the journal stream (a file here) and
        whose journal socket is this test's."""
        jdir = "/run/systemd/journal"
        os.makedirs(jdir, exist_ok=True)
        jpath = os.path.join(jdir, "socket")
        if os.path.exists(jpath):
            os.unlink(jpath)
        journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        journal.bind(jpath)
        self.addCleanup(journal.close)
        d = Daemon(self.tmp, ["--log-level", level], name="stream-" + level)
        self.daemons.append(d)
        self.d = d
        open(d.logpath, "ab").close()
        st = os.stat(d.logpath)
        os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        try:
            d.start(wait=False)
        finally:
            del os.environ["JOURNAL_STREAM"]
        deadline = time.monotonic() + T_READY
        while not d.connectable():
            self.assertIsNone(d.proc.poll(), d.log())
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        return d, journal

    def journal_entries(self, journal):
        out = []
        while select.select([journal], [], [], 0)[0]:
            out.append(native_fields(journal.recv(65536)))
        return out

    def test_journal(self):
        """Structured entries from umdevd, "<N>" lines from its workers,
        both above --log-level only."""
        for level, worker_info in (("info", True), ("notice", False)):
            with self.subTest(level=level):
                d, journal = self.journal_daemon(level)
                u = new_uuid()
                self.ok("start", "-u", u, "-p", "serial", "-t", T)
                sock = self.instance(u)["socket"]
                # A VMM attaching makes the worker log (info).
                p = subprocess.run([BIN["probe"], sock], capture_output=True,
                                   timeout=T_CMD)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.ok("stop", u)
                d.terminate()
                entries = self.journal_entries(journal)
                msgs = [e["MESSAGE"] for e in entries]
                for e in entries:
                    self.assertEqual(e["SYSLOG_IDENTIFIER"], "umdevd", e)
                    self.assertLessEqual(int(e["PRIORITY"]),
                                         6 if level == "info" else 5, e)
                self.assertTrue(any(m.startswith("ready: control")
                                    for m in msgs), msgs)
                about = [e for e in entries if e["MESSAGE"].startswith(u)]
                if worker_info:
                    # supervisor.c: "UUID: running (pid ..., socket ...)"
                    self.assertTrue(any(": running (pid" in e["MESSAGE"]
                                        for e in about), msgs)
                for e in about:
                    self.assertEqual((e.get("UUID"), e.get("TYPE"),
                                      e.get("PARENT")),
                                     (u, T, "serial"), e)
                # stderr: nothing but "<N>" lines, the worker's among them.
                lines = d.log(whole=True).splitlines()
                for line in lines:
                    self.assertRegex(line, r"^<[0-7]>", lines)
                attached = [x for x in lines
                            if x.startswith("<6>" + u + ": ") and
                            "client attached" in x]
                self.assertEqual(bool(attached), worker_info, lines)

    def test_log_level_refused(self):
        p = subprocess.run([BIN["umdevd"], "--log-level", "loud"],
                           capture_output=True, text=True, timeout=T_CMD)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--log-level takes", p.stderr)


if __name__ == "__main__":
    _take_args()
    if os.geteuid() == 0:
        try:
            _private_namespace(tempfile.mkdtemp(prefix="umdev-sysusers-"))
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit("test_systemd: cannot set up the private mount "
                     "namespace (root with CAP_SYS_ADMIN, and "
                     "systemd-sysusers, are needed): %s%s" %
                     (e, getattr(e, "stderr", b"") or ""))
    main()
