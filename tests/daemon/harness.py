"""Shared machinery of the daemon/CLI functional tests.

Each test drives the real umdevd and umdevctl (and, where a VMM is
needed, the C helper daemon-req-client or umdev-probe) over real sockets
in a private temporary directory. Every wait is bounded, and every process
a test starts is ended when the test ends, whatever happened: the daemon
runs in its own process group (its workers inherit it), and this process
is a child subreaper so workers orphaned by a killed daemon come back to
it to be reaped.

The binaries come from the command line (CMake passes the build's own,
so `ctest --test-dir build/asan` exercises the sanitized ones):

    python3 test_x.py --umdevd P --umdevctl P --probe P --req-client P \
        [unittest arguments]
"""

import argparse
import contextlib
import ctypes
import errno
import grp
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid as uuidlib

BIN = {}
# Boolean options a test asked main() for, by name.
FLAGS = {}

NOBODY = pwd.getpwnam("nobody")


def default_worker_user():
    """Who a root umdevd runs root-owned instances' workers as without
    --worker-user (docs/SANDBOX.md): umdev if it exists, else nobody."""
    try:
        return pwd.getpwnam("umdev")
    except KeyError:
        return NOBODY

# Bounds (seconds). Sanitized builds are several times slower, so these
# are generous; a healthy run is far below each.
T_CMD = 20  # one umdevctl invocation
T_READY = 15  # daemon up and listening
T_EXIT = 20  # daemon exit after SIGTERM (workers get up to 5 s grace)
T_STATE = 10  # an instance reaching a state

# The whole script must end before ctest's TIMEOUT (120 s) would kill it
# and leave daemons behind: past this, everything is killed.
T_WATCHDOG = 100

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)
_daemons = []  # every Daemon started, for the watchdog


def _become_subreaper():
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the test process dies."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watchdog():
    sys.stderr.write("daemon tests: still running after %d s; killing "
                     "everything\n" % T_WATCHDOG)
    for d in _daemons:
        if d.proc is not None:
            try:
                os.killpg(d.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for pid in list(_popen_pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sys.stderr.flush()
    os._exit(1)


def main(programs=(), flags=()):
    """Parse the binary paths, then run the unittest cases of __main__.

    Every test takes --umdevd, --umdevctl, --probe and --req-client; a
    test names the other programs it needs in @programs (each --NAME PATH,
    checked executable, then BIN["NAME"] with - as _) and its boolean
    options in @flags (--NAME, then FLAGS["NAME"] likewise).
    """
    ap = argparse.ArgumentParser()
    names = ("umdevd", "umdevctl", "probe", "req-client") + tuple(programs)
    for name in names:
        ap.add_argument("--" + name, required=True)
    for name in flags:
        ap.add_argument("--" + name, action="store_true")
    args, rest = ap.parse_known_args()
    for name in names:
        key = name.replace("-", "_")
        path = getattr(args, key)
        if not os.access(path, os.X_OK):
            sys.exit("not executable: %s" % path)
        BIN[key] = os.path.abspath(path)
    for name in flags:
        key = name.replace("-", "_")
        FLAGS[key] = getattr(args, key)
    _become_subreaper()
    dog = threading.Timer(T_WATCHDOG, _watchdog)
    dog.daemon = True
    dog.start()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


class Result:
    """What one command did."""

    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise AssertionError("%s: stdout is not JSON (%s):\n%s" %
                                 (" ".join(self.argv), e, self.out))

    def __str__(self):
        return "%s -> rc %d\nstdout: %s\nstderr: %s" % (
            " ".join(self.argv), self.rc, self.out, self.err)


def new_uuid():
    return str(uuidlib.uuid4())


def as_user(uid, gid, groups=()):
    """A command prefix that runs as @uid/@gid with supplementary @groups."""
    pre = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid]
    if groups:
        pre.append("--groups=" + ",".join(str(g) for g in groups))
    else:
        pre.append("--clear-groups")
    return pre


@contextlib.contextmanager
def as_peer(uid, gid, groups=()):
    """Connections this process makes inside are from @uid/@gid with
    supplementary @groups: SO_PEERCRED and SO_PEERGROUPS record the
    connecting process's effective credentials at connect(). The whole
    process changes meanwhile (children started inside too)."""
    saved = os.getgroups()
    os.setgroups(list(groups))
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(saved)


def peek(sock):
    """'open' (nothing to read yet), 'closed', or the bytes waiting,
    without waiting or consuming."""
    timeout = sock.gettimeout()
    # (With a timeout, recv() would first wait for data.)
    sock.settimeout(0)
    try:
        data = sock.recv(65536, socket.MSG_PEEK)
    except BlockingIOError:
        return "open"
    except ConnectionResetError:
        return "closed"
    finally:
        sock.settimeout(timeout)
    return data if data else "closed"


def proc_state(pid):
    """The /proc state letter of @pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def alive(pid):
    st = proc_state(pid)
    return st is not None and st not in ("Z", "X")


def status_fields(path):
    """A /proc status file (of a process or a thread) as a dict."""
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def other_group():
    """A group that is neither root's nor nobody's, so nobody is not in
    it by default: (name, gid)."""
    for name in ("users", "staff", "adm", "daemon"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in (0, NOBODY.pw_gid):
            return name, g.gr_gid
    raise AssertionError("no usable group on this system")


def proc_ids(pid):
    """(uid, gid) of a live process."""
    uid = gid = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
            elif line.startswith("Gid:"):
                gid = int(line.split()[1])
    return uid, gid


def reap_orphans():
    """Reap children adopted as subreaper (workers of a killed daemon)."""
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Not the ones subprocess started: their Popen objects reap them.
        if (int(fields[1]) == me and fields[0] == "Z" and
                pid not in _popen_pids):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


_popen_pids = set()


class Daemon:
    """One umdevd under test, in its own process group."""

    def __init__(self, tmp, args=(), use_env=False, statedir=None,
                 name="umdevd", control=True):
        """@control: True for TMP/control, False to let umdevd choose
        (RUNDIR/control)."""
        self.tmp = tmp
        self.rundir = os.path.join(tmp, "run")
        self.statedir = statedir or os.path.join(tmp, "state")
        self.control = (os.path.join(tmp, "control") if control else
                        os.path.join(self.rundir, "control"))
        self.pass_control = control
        self.logpath = os.path.join(tmp, name + ".log")
        self.args = list(args)
        self.use_env = use_env
        self.proc = None
        self._log_from = 0
        # Sanitizer reports a test provokes on purpose, by pattern.
        self.expected_reports = {}

    def env(self):
        env = dict(os.environ)
        env.update(UMDEV_RUNDIR=self.rundir, UMDEV_STATEDIR=self.statedir,
                   UMDEV_CONTROL=self.control)
        return env

    def start(self, wait=True):
        argv = [BIN["umdevd"]]
        if self.use_env:
            env = self.env()
            if not self.pass_control:
                del env["UMDEV_CONTROL"]
        else:
            env = dict(os.environ)
            for k in ("UMDEV_RUNDIR", "UMDEV_STATEDIR", "UMDEV_CONTROL"):
                env.pop(k, None)
            argv += ["--rundir", self.rundir, "--statedir", self.statedir]
            if self.pass_control:
                argv += ["--control", self.control]
        argv += self.args
        # The nvme parent's backing files go under STATEDIR/nvme.data
        # (devices/nvme/README.md), the test's own, unless a test names
        # another place.
        env.pop("UMDEV_NVME_DIR", None)
        self._log_from = (os.path.getsize(self.logpath)
                          if os.path.exists(self.logpath) else 0)
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, env=env,
                                     start_new_session=True,
                                     preexec_fn=_die_with_parent)
        log.close()
        _popen_pids.add(self.proc.pid)
        _daemons.append(self)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + T_READY
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("umdevd exited with %s before it was "
                                     "ready; log:\n%s" %
                                     (self.proc.returncode, self.log()))
            if "ready: control" in self.log() and self.connectable():
                return
            time.sleep(0.02)
        raise AssertionError("umdevd not ready within %d s; log:\n%s" %
                             (T_READY, self.log()))

    def connectable(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(1)
            s.connect(self.control)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def log(self, whole=False):
        """The log of this run (@whole: of every run in this directory)."""
        try:
            with open(self.logpath, "rb") as f:
                if not whole:
                    f.seek(self._log_from)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def terminate(self, timeout=T_EXIT):
        """SIGTERM; return the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self):
        self.proc.kill()
        self.proc.wait(T_EXIT)

    def cleanup(self):
        """End the daemon and every worker, whatever state they are in.

        A daemon still running is first asked to stop with SIGTERM, as an
        operator would, so every test also checks a clean shutdown (and,
        in a sanitized build, that nothing leaked). Return: a list of
        problems found (empty when all is well)."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                rc = self.proc.wait(T_EXIT)
                if rc != 0:
                    problems.append("umdevd exited with status %d after "
                                    "SIGTERM" % rc)
            except subprocess.TimeoutExpired:
                problems.append("umdevd did not exit within %d s of SIGTERM"
                                % T_EXIT)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(T_EXIT)
        except subprocess.TimeoutExpired:
            pass
        _popen_pids.discard(self.proc.pid)
        # Workers may outlive a killed daemon for a moment (they get
        # SIGTERM when it dies); wait for the group to empty, bounded.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            reap_orphans()
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        reap_orphans()
        log = self.log(whole=True)
        for pat in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                    "runtime error:"):
            if log.count(pat) > self.expected_reports.get(pat, 0):
                problems.append("sanitizer report (%s) in %s" %
                                (pat, self.logpath))
        if problems:
            problems.append("log:\n" + log[-6000:])
        return problems

    # ---- the control protocol, without umdevctl ----------------------

    def connect(self, timeout=T_CMD):
        return Conn(self.control, timeout)

    def request(self, cmd, args=None, timeout=T_CMD):
        with self.connect(timeout) as c:
            return c.call(cmd, args)


class Conn:
    """One control connection speaking docs/CONTROL.md directly."""

    def __init__(self, path, timeout=T_CMD):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        # A socket with a timeout is non-blocking inside: a UNIX connect()
        # to a full backlog fails with EAGAIN instead of waiting.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(path)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.sock.close()
                    raise
                time.sleep(0.005)
        self.buf = b""
        self.next_id = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send_line(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else
                          data.encode())

    def recv_line(self):
        """One response line as an object, or None when the peer closed."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, cmd, args=None, version=1):
        req = {"version": version, "id": self.next_id, "cmd": cmd}
        if args is not None:
            req["args"] = args
        self.next_id += 1
        try:
            self.send_line(json.dumps(req) + "\n")
        except (BrokenPipeError, ConnectionResetError):
            # The daemon may refuse a connection (out of descriptors, over
            # a cap) and close it before our request is sent: its one
            # line, with "id": null, is then already here to read, as
            # lib/ctl reads it.
            resp = self.recv_line()
            if resp is None or resp.get("id") is not None:
                raise
            return resp
        resp = self.recv_line()
        if resp is None:
            raise ConnectionError("umdevd closed the connection")
        return resp


class Lines:
    """Read a child's stdout line by line, each read bounded."""

    def __init__(self, proc):
        self.proc = proc
        self.buf = b""
        self.seen = []

    def next(self, timeout=T_CMD):
        """The next line, or None at end of file; fails on timeout."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no line within %s s; so far: %s" %
                                     (timeout, self.seen))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                if self.buf:
                    break
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        line = line.decode()
        self.seen.append(line)
        return line

    def rest(self, timeout=T_CMD):
        """Every line left until end of file, each read bounded."""
        got = []
        while True:
            line = self.next(timeout)
            if line is None:
                return got
            got.append(line)


class DaemonTestCase(unittest.TestCase):
    """A test with a private directory and helpers for umdevd/umdevctl."""

    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="umdevd-test-")
        # Other users (the permission tests run as nobody) must reach the
        # control socket.
        os.chmod(self.tmp, 0o755)
        self.daemons = []
        self.procs = []
        self.addCleanup(self._cleanup)

    def _cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()
            _popen_pids.discard(p.pid)
        problems = []
        for d in self.daemons:
            problems += d.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("\n".join(problems))

    def daemon(self, args=(), use_env=False, start=True, statedir=None):
        d = Daemon(self.tmp, args, use_env, statedir)
        self.daemons.append(d)
        self.d = d
        if start:
            d.start()
        return d

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             **kw)
        _popen_pids.add(p.pid)
        self.procs.append(p)
        return p

    # ---- umdevctl ------------------------------------------------------

    def ctl(self, *args, user=None, control=True, env=None, timeout=T_CMD):
        """Run umdevctl against self.d; --control unless @control False."""
        argv = [BIN["umdevctl"]]
        if control is True:
            argv += ["--control", self.d.control]
        elif control:
            argv += ["--control", control]
        argv += [str(a) for a in args]
        if user is not None:
            argv = user + argv
        e = dict(os.environ)
        for k in ("UMDEV_RUNDIR", "UMDEV_STATEDIR", "UMDEV_CONTROL"):
            e.pop(k, None)
        if env:
            e.update(env)
        p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                           capture_output=True, env=e, timeout=timeout)
        return Result(argv, p.returncode, p.stdout.decode(),
                      p.stderr.decode())

    def ok(self, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.rc, 0, str(r))
        return r

    def js(self, *args, **kw):
        """Run a verb with --json, expect success, return the object."""
        return self.ok("--json", *args, **kw).json()

    def fails(self, rc, *args, says=(), **kw):
        """Expect exit status @rc and each of @says in stderr."""
        r = self.ctl(*args, **kw)
        self.assertEqual(r.rc, rc, str(r))
        for s in (says if isinstance(says, (list, tuple)) else (says,)):
            self.assertIn(s, r.err, str(r))
        return r

    def refused(self, code, *args, says=(), **kw):
        """Expect umdevd to refuse with error @code (checked through
        --json, which prints the error object) and exit status 1."""
        r = self.ctl("--json", *args, **kw)
        self.assertEqual(r.rc, 1, str(r))
        e = r.json()
        self.assertEqual(sorted(e), ["code", "errno", "message"], str(r))
        self.assertEqual(e["code"], code, str(r))
        self.assertEqual(e["errno"], getattr(errno, code), str(r))
        self.assertIn(e["message"], r.err, str(r))
        for s in (says if isinstance(says, (list, tuple)) else (says,)):
            self.assertIn(s, e["message"], str(r))
        return e

    # ---- state ---------------------------------------------------------

    def types(self):
        """{type name: available_instances}."""
        return {t["name"]: t["available_instances"]
                for t in self.js("types")["types"]}

    def instances(self, defined=False):
        args = ["list", "--defined"] if defined else ["list"]
        return {i["uuid"]: i for i in self.js(*args)["instances"]}

    def instance(self, uuid):
        """The instance object of @uuid; it must exist."""
        i = self.lookup(uuid)
        self.assertIsNotNone(i, "no instance %s" % uuid)
        return i

    def wait_for(self, what, pred, timeout=T_STATE, interval=0.05):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail("timed out after %s s waiting for %s" %
                          (timeout, what))
            time.sleep(interval)

    def lookup(self, uuid):
        """The instance object of @uuid, or None when there is none."""
        for args in (("list", "--defined", "-u", uuid), ("list", "-u", uuid)):
            r = self.js(*args)["instances"]
            if r:
                return r[0]
        return None

    def wait_state(self, uuid, state, timeout=T_STATE):
        """Wait until @uuid is in @state (None: gone); return it."""
        def check():
            i = self.lookup(uuid)
            if state is None:
                return i is None
            return i if i is not None and i["state"] == state else None
        return self.wait_for("%s to be %s" % (uuid, state or "gone"), check,
                             timeout)

    def probe(self, sock, timeout=T_CMD):
        """umdev-probe --json of an instance socket; asserts success."""
        p = subprocess.run([BIN["probe"], "--json", "--timeout", "5000",
                            sock], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        self.assertEqual(p.returncode, 0,
                         "umdev-probe %s: %s" % (sock, p.stderr.decode()))
        return json.loads(p.stdout)

    def small_asan_quarantine(self):
        """For a test whose daemon runs the conformance kit (call before
        starting it): a sanitizer build's quarantine holds freed memory
        back on purpose, and the kit's leaks check would measure it as
        the worker's. Kept small, as tests/conformance/run.sh does; the
        workers inherit it from the daemon. No effect on other builds;
        undone at cleanup."""
        old = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = ((old + ":") if old else
                                      "") + "quarantine_size_mb=1"

        def restore():
            if old is None:
                os.environ.pop("ASAN_OPTIONS", None)
            else:
                os.environ["ASAN_OPTIONS"] = old
        self.addCleanup(restore)

    def audit_passes(self, type_, *args):
        """`umdevctl audit TYPE --conformance` (the kit's fuzz phase 2 s):
        exit 0, verdict pass, every criterion passed. Returns the run and
        its JSON document."""
        r = self.ctl("--json", "audit", type_, "--conformance",
                     "--fuzz-seconds", "2", *args,
                     env={"UMDEV_CONFORM": BIN["conform"]}, timeout=80)
        self.assertEqual(r.rc, 0, str(r))
        doc = r.json()
        self.assertEqual(doc["verdict"], "pass", str(r))
        for c in doc["criteria"]:
            self.assertEqual(c["verdict"], "pass", c)
        return r, doc

    def start_instance(self, *args):
        """Start (a definition or transient); return the instance object."""
        return self.js("start", *args)["instance"]

    def sockets_in_rundir(self):
        try:
            return sorted(n for n in os.listdir(self.d.rundir)
                          if n.endswith(".sock"))
        except FileNotFoundError:
            return []
