"""mdevctl's callout scripts run by umdevd (`umdevd --callouts DIR`,
docs/CLI.md "Callouts").

  * the contract as mdevctl has it: each script's arguments (-t TYPE -e
    EVENT -a ACTION -s STATE -u UUID -p PARENT), the device JSON on its
    stdin, the search in name order where exit status 2 passes to the
    next script and any other status ends it, post going to the script
    that took pre, post's state success or failure;
  * a pre script's veto: nothing done, the refusal names the script, its
    exit status and the first line of its stderr;
  * the daemon is never blocked by a script: a slow pre script leaves
    other clients served; past --callout-timeout it is killed (with what
    it started), a veto;
  * only files no one else can have written run (not world-writable, not
    a symbolic link), nor any from a directory others may write;
  * the auto-start at daemon start runs them with action start; a
    daemon stopped while a script runs kills it and exits.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import harness
from harness import DaemonTestCase, new_uuid

T = "serial-2port"

# A callout script, in Python so that it can record exactly what it got:
# one JSON line per call (its name, argv without argv[0], its stdin) in
# the log, then BODY decides how it ends (OPTS: the arguments by flag).
SCRIPT = """#!{python} -B
import json, os, sys, time
ARGS = sys.argv[1:]
OPTS = dict(zip(ARGS[0::2], ARGS[1::2]))
DATA = sys.stdin.read()
with open({log!r}, "a") as f:
    f.write(json.dumps({{"name": {name!r}, "argv": ARGS, "stdin": DATA,
                        "pid": os.getpid()}}) + "\\n")
{body}
sys.exit(0)
"""


class Callouts(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.tmp, "callouts")
        os.mkdir(self.dir, 0o755)
        # Absent unless a test makes it: no notifier runs.
        self.notifiers = os.path.join(self.tmp, "notifiers")
        self.calls_log = os.path.join(self.tmp, "calls.log")

    def script(self, name, body="", mode=0o755, where=None):
        path = os.path.join(where or self.dir, name)
        with open(path, "w") as f:
            f.write(SCRIPT.format(python=sys.executable, log=self.calls_log,
                                  name=name, body=body))
        os.chmod(path, mode)
        return path

    def calls(self):
        try:
            with open(self.calls_log) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def start_daemon(self, *extra):
        return self.daemon(["--callouts", self.dir, "--notifiers",
                            self.notifiers] + list(extra))

    def expect_argv(self, event, action, state, uuid, typ=T,
                    parent="serial"):
        return ["-t", typ, "-e", event, "-a", action, "-s", state,
                "-u", uuid, "-p", parent]

    def wait_calls(self, n):
        """Wait for @n calls (of the daemon's own auto-starts)."""
        return self.wait_for("%d callout calls" % n,
                             lambda: len(self.calls()) >= n and self.calls())

    # ---- veto -----------------------------------------------------------

    def test_pre_veto_define(self):
        self.script("10-policy", """
if OPTS["-e"] == "pre" and OPTS["-a"] == "define":
    sys.stderr.write("serial subdevices need a ticket\\nsecond line\\n")
    sys.exit(1)
""")
        self.start_daemon()
        u = new_uuid()
        e = self.refused("ECANCELED", "define", "-u", u, "-p", "serial",
                         "-t", "2port",
                         says=["10-policy", "pre define", "exit status 1",
                               "serial subdevices need a ticket"])
        self.assertNotIn("second line", e["message"])
        self.assertEqual(self.instances(defined=True), {})
        self.assertFalse(os.path.exists(os.path.join(self.d.statedir,
                                                     "serial", u)))
        # A veto ends it: no post event.
        time.sleep(0.3)
        self.assertEqual([c["argv"] for c in self.calls()],
                         [self.expect_argv("pre", "define", "none", u)])
        self.assertIn("define by uid", self.d.log())

    def test_pre_veto_start_keeps_definition(self):
        self.script("10-no-start", """
if OPTS["-e"] == "pre" and OPTS["-a"] == "start":
    sys.exit(3)
""")
        self.start_daemon()
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port")
        before = self.types()[T]
        self.refused("ECANCELED", "start", u,
                     says=["10-no-start", "exit status 3",
                           "nothing on stderr"])
        self.assertEqual(self.instance(u)["state"], "stopped")
        self.assertEqual(self.types()[T], before)

    # ---- the search, arguments, stdin, post state ------------------------

    def test_not_mine_then_claimed_arguments_and_stdin(self):
        # 10 is not for this type (2), 20 takes it, 30 is never asked.
        self.script("10-other", "sys.exit(2)")
        self.script("20-mine", "")
        self.script("30-never", "sys.exit(1)")
        self.start_daemon()
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port", "--auto",
                "--attr", "port0=pty", "--attr", "port1=none")
        # The answer waits for the post event, as mdevctl returns after it.
        calls = self.calls()
        dev = json.dumps({"mdev_type": T, "start": "auto",
                          "attrs": [{"port0": "pty"}, {"port1": "none"}]},
                         separators=(",", ":"))
        self.assertEqual(
            [(c["name"], c["argv"], c["stdin"]) for c in calls],
            [("10-other", self.expect_argv("pre", "define", "none", u), dev),
             ("20-mine", self.expect_argv("pre", "define", "none", u), dev),
             # post goes to the script that took pre, alone.
             ("20-mine", self.expect_argv("post", "define", "success", u),
              dev)])

    def test_unrunnable_or_killed_script_passes_to_the_next(self):
        # mdevctl goes on past a script it cannot run or that died of a
        # signal; the one after it decides.
        bad = os.path.join(self.dir, "10-bad-interpreter")
        with open(bad, "w") as f:
            f.write("#!/nonexistent/interpreter\n")
        os.chmod(bad, 0o755)
        self.script("20-killed", "os.kill(os.getpid(), 9)")
        self.script("30-veto", """
sys.stderr.write("third says no\\n")
sys.exit(1)
""")
        self.start_daemon()
        u = new_uuid()
        self.refused("ECANCELED", "define", "-u", u, "-p", "serial", "-t",
                     "2port", says=["30-veto", "third says no"])
        self.assertEqual([c["name"] for c in self.calls()],
                         ["20-killed", "30-veto"])
        log = self.d.log()
        self.assertIn("10-bad-interpreter (pre define, state none): cannot "
                      "be run: No such file or directory; trying the next "
                      "script", log)
        self.assertIn("20-killed (pre define, state none): killed by signal "
                      "9 (Killed); trying the next script", log)

    def test_client_gone_during_pre_is_not_done(self):
        started = os.path.join(self.tmp, "started")
        self.script("10-slow", """
if OPTS["-e"] == "pre":
    open({started!r}, "w").close()
    time.sleep(4)
""".format(started=started))
        self.start_daemon()
        u = new_uuid()
        p = self.spawn([harness.BIN["umdevctl"], "--control", self.d.control,
                        "define", "-u", u, "-p", "serial", "-t", "2port"])
        self.wait_for("the pre script", lambda: os.path.exists(started))
        p.kill()
        p.wait()
        self.wait_for("the post event",
                      lambda: len(self.calls()) == 2 and self.calls())
        self.assertEqual(self.calls()[1]["argv"],
                         self.expect_argv("post", "define", "failure", u))
        self.assertEqual(self.instances(defined=True), {})
        self.assertIn("its client went away while the pre callouts ran",
                      self.d.log())

    def test_lifecycle_events_and_failure_state(self):
        # Two ports: one serial-2port instance at a time.
        self.script("50-record", "")
        self.start_daemon("--pool", "serial.ports=2")
        a, b = new_uuid(), new_uuid()
        self.ok("define", "-u", a, "-p", "serial", "-t", "2port")
        self.ok("modify", a, "--attr", "port0=none")
        self.ok("define", "-u", b, "-p", "serial", "-t", "2port")
        self.ok("start", a)
        # b's start gets past its pre callout, then finds no free ports.
        self.refused("ENOSPC", "start", b)
        self.ok("stop", a)
        self.ok("undefine", a)
        want = [
            ("define", a, "{}"), ("modify", a, '{"port0":"none"}'),
            ("define", b, "{}"), ("start", a, '{"port0":"none"}'),
            ("start", b, "{}"), ("stop", a, '{"port0":"none"}'),
            ("undefine", a, '{"port0":"none"}')]
        calls = self.calls()
        got = [(c["argv"][3], c["argv"][5], c["argv"][7], c["argv"][9],
                json.loads(c["stdin"])) for c in calls]
        expected = []
        for action, u, attrs in want:
            dev = {"mdev_type": T, "start": "manual",
                   "attrs": [{k: v} for k, v in json.loads(attrs).items()]}
            state = "failure" if (action, u) == ("start", b) else "success"
            expected.append(("pre", action, "none", u, dev))
            expected.append(("post", action, state, u, dev))
        self.assertEqual(got, expected)

    def test_post_outcome_changes_nothing(self):
        self.script("10-post-fails", """
if OPTS["-e"] == "post":
    sys.stderr.write("post is unhappy\\n")
    sys.exit(1)
""")
        self.start_daemon()
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port")
        self.assertEqual(len(self.calls()), 2)
        self.wait_for("the post outcome in the log",
                      lambda: "post is unhappy" in self.d.log())
        self.assertEqual(self.instance(u)["state"], "stopped")
        self.assertIn("exit status 1", self.d.log())

    def test_script_gets_nothing_of_the_daemon(self):
        # What the script holds: its fds (but the one listing them), the
        # signals it blocks or ignores, its directory, its environment.
        out = os.path.join(self.tmp, "seen.json")
        self.script("10-look", """
fds = {{}}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        pass
st = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
with open({out!r}, "w") as f:
    json.dump({{"fds": {{k: v for k, v in fds.items()
                        if not v.startswith("/proc/")}},
               "blocked": st["SigBlk"].strip(),
               "cwd": os.getcwd(), "pgid": os.getpgid(0), "pid": os.getpid(),
               "env": sorted(os.environ)}}, f)
sys.exit(2)
""".format(out=out))
        # Ignored signals from what a shell runs: Python ignores SIGPIPE
        # itself (and dash unblocks signals, so the mask is Python's).
        sigs = os.path.join(self.tmp, "signals")
        path = os.path.join(self.dir, "20-signals")
        with open(path, "w") as f:
            f.write("#!/bin/sh\ngrep '^Sig' /proc/self/status > %s\n" % sigs)
        os.chmod(path, 0o755)
        os.environ["NOTIFY_SOCKET"] = os.path.join(self.tmp, "no-notify")
        try:
            self.start_daemon()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port")
        with open(out) as f:
            seen = json.load(f)
        self.assertEqual(sorted(seen["fds"]), ["0", "1", "2"], seen)
        for fd in ("0", "1", "2"):
            self.assertTrue(seen["fds"][fd].startswith("pipe:"), seen)
        with open(sigs) as f:
            st = dict(line.split(":", 1) for line in f)
        self.assertEqual(int(seen["blocked"], 16), 0, seen)
        self.assertEqual(int(st["SigIgn"], 16) & 1 << (signal.SIGPIPE - 1),
                         0, st)
        self.assertEqual(seen["cwd"], "/")
        self.assertEqual(seen["pgid"], seen["pid"])
        self.assertNotIn("NOTIFY_SOCKET", seen["env"])

    # ---- notifiers ------------------------------------------------------

    def test_notifiers_follow_post_and_refusal(self):
        # mdevctl's notify event: every notifier, whatever each says, after
        # post (its state) or after a refusal (state none), no stdin.
        os.mkdir(self.notifiers, 0o755)
        self.script("10-fails", "sys.exit(1)", where=self.notifiers)
        self.script("20-fine", "", where=self.notifiers)
        vetoed = new_uuid()
        self.script("10-policy", """
if OPTS["-e"] == "pre" and OPTS["-u"] == {v!r}:
    sys.exit(1)
sys.exit(2)
""".format(v=vetoed))
        self.start_daemon()
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port")
        # Answered once the notifiers are done too.
        self.assertEqual(
            [(c["name"], c["argv"], c["stdin"]) for c in self.calls()],
            [("10-policy", self.expect_argv("pre", "define", "none", u),
              '{"mdev_type":"serial-2port","start":"manual","attrs":[]}'),
             ("10-policy", self.expect_argv("post", "define", "success", u),
              '{"mdev_type":"serial-2port","start":"manual","attrs":[]}'),
             ("10-fails", self.expect_argv("notify", "define", "success", u),
              ""),
             ("20-fine", self.expect_argv("notify", "define", "success", u),
              "")])
        os.unlink(self.calls_log)
        self.refused("ECANCELED", "define", "-u", vetoed, "-p", "serial",
                     "-t", "2port", says="10-policy")
        self.assertEqual(
            [(c["name"], c["argv"]) for c in self.calls()],
            [("10-policy", self.expect_argv("pre", "define", "none", vetoed)),
             ("10-fails", self.expect_argv("notify", "define", "none",
                                           vetoed)),
             ("20-fine", self.expect_argv("notify", "define", "none",
                                          vetoed))])
        # Without any callout script, notifiers still hear of each action.
        os.unlink(os.path.join(self.dir, "10-policy"))
        os.unlink(self.calls_log)
        self.ok("undefine", u)
        self.assertEqual(
            [(c["name"], c["argv"]) for c in self.calls()],
            [("10-fails", self.expect_argv("notify", "undefine", "success",
                                           u)),
             ("20-fine", self.expect_argv("notify", "undefine", "success",
                                          u))])

    # ---- the loop is never blocked ----------------------------------------

    def test_slow_pre_does_not_block_other_clients(self):
        started = os.path.join(self.tmp, "started")
        finished = os.path.join(self.tmp, "finished")
        self.script("10-slow", """
if OPTS["-e"] == "pre":
    open({started!r}, "w").close()
    time.sleep(6)
    open({finished!r}, "w").close()
""".format(started=started, finished=finished))
        self.start_daemon()
        u = new_uuid()
        p = self.spawn([harness.BIN["umdevctl"], "--control", self.d.control,
                        "define", "-u", u, "-p", "serial", "-t", "2port"])
        self.wait_for("the slow pre script to start",
                      lambda: os.path.exists(started))
        t0 = time.monotonic()
        listed = self.js("list", "--defined")
        types = self.types()
        took = time.monotonic() - t0
        # Served while the script still ran and the define waited.
        self.assertFalse(os.path.exists(finished),
                         "list waited %.1f s, for the script" % took)
        self.assertIsNone(p.poll())
        self.assertEqual(listed["instances"], [])
        self.assertIn(T, types)
        out, err = p.communicate(timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 0, err)
        self.assertTrue(os.path.exists(finished))
        self.assertEqual(self.instance(u)["state"], "stopped")

    def test_timeout_kills_script_and_vetoes(self):
        pidfile = os.path.join(self.tmp, "child.pid")
        self.script("10-hangs", """
if OPTS["-e"] == "pre":
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    with open({pidfile!r}, "w") as f:
        f.write(str(child))
    time.sleep(60)
""".format(pidfile=pidfile))
        self.start_daemon("--callout-timeout", "1")
        u = new_uuid()
        t0 = time.monotonic()
        self.refused("ECANCELED", "define", "-u", u, "-p", "serial", "-t",
                     "2port", says=["10-hangs", "did not finish within 1 s",
                                    "killed"])
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(self.instances(defined=True), {})
        # What it started went with it (its own process group).
        with open(pidfile) as f:
            child = int(f.read())
        self.wait_for("the script's child to die",
                      lambda: not harness.alive(child))

    def test_timeout_kills_script_that_left_its_group(self):
        self.script("10-escapes", """
if OPTS["-e"] == "pre":
    # Into the daemon's own group (a leader cannot setsid).
    os.setpgid(0, os.getpgid(os.getppid()))
    time.sleep(60)
""")
        self.start_daemon("--callout-timeout", "1")
        self.refused("ECANCELED", "define", "-p", "serial", "-t", "2port",
                     says=["10-escapes", "did not finish within 1 s"])
        pid = self.calls()[0]["pid"]
        self.wait_for("the script to die", lambda: not harness.alive(pid))

    def test_output_bounded(self):
        # Past 1 MiB of output the script is killed (a veto); what is
        # logged of it stays within 4096 bytes per stream.
        self.script("10-floods", """
if OPTS["-e"] == "pre":
    sys.stderr.write("first of many\\n")
    sys.stderr.flush()
    while True:
        sys.stdout.write("x" * 65535 + "\\n")
""")
        self.start_daemon()
        u = new_uuid()
        self.refused("ECANCELED", "define", "-u", u, "-p", "serial", "-t",
                     "2port", says=["10-floods", "wrote more than 1048576 "
                                    "bytes; killed", "first of many"])
        self.assertEqual(self.instances(defined=True), {})
        logged = [line for line in self.d.log().splitlines()
                  if "10-floods (pre define) stdout: " in line]
        self.assertEqual(len(logged), 1)
        self.assertLessEqual(len(logged[0].split("stdout: ", 1)[1]), 4096)
        self.assertIn("more output than the 4096 bytes kept", self.d.log())

    def test_bad_timeout(self):
        for arg in ("0", "3601", "x", "-1"):
            p = subprocess.run([harness.BIN["umdevd"], "--callout-timeout",
                                arg], capture_output=True,
                               timeout=harness.T_CMD)
            self.assertEqual(p.returncode, 2, p)
            self.assertIn(b"--callout-timeout takes 1 to 3600 (seconds), "
                          b"not '%s'" % arg.encode(), p.stderr)

    # ---- which files run --------------------------------------------------

    def test_only_trusted_files_run(self):
        self.script("10-world-writable", "sys.exit(1)", mode=0o777)
        os.chmod(os.path.join(self.dir, "10-world-writable"), 0o757)
        self.script("20-group-writable", "sys.exit(1)", mode=0o775)
        target = self.script("zz-target", "sys.exit(2)")
        os.symlink(target, os.path.join(self.dir, "30-link"))
        self.script("40-not-executable", "sys.exit(1)", mode=0o644)
        self.script("50-good", "")
        self.start_daemon()
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port")
        self.assertEqual([(c["name"], c["argv"][3]) for c in self.calls()],
                         [("50-good", "pre"), ("50-good", "post")])
        log = self.d.log()
        for name, why in (("10-world-writable", "writable by its group or "
                           "others (mode 0757"),
                          ("20-group-writable", "writable by its group or "
                           "others (mode 0775"),
                          ("30-link", "a symbolic link"),
                          ("40-not-executable", "not executable")):
            self.assertIn("%s/%s: not run: %s" % (self.dir, name, why), log)

    def test_directory_others_may_write_runs_nothing(self):
        self.script("10-veto", "sys.exit(1)")
        os.chmod(self.dir, 0o777)
        self.start_daemon()
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port")
        self.assertEqual(self.calls(), [])
        self.assertIn("callouts directory %s is writable by its group or "
                      "others (mode 0777); no callout runs" % self.dir,
                      self.d.log())

    def test_absent_directory_is_no_callouts(self):
        self.daemon(["--callouts", os.path.join(self.tmp, "none")])
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port")
        self.assertNotIn("callout", self.d.log())

    # ---- auto-start, shutdown ----------------------------------------------

    def test_auto_start_runs_callouts(self):
        self.start_daemon()
        ok, vetoed = new_uuid(), new_uuid()
        for u in (ok, vetoed):
            self.ok("define", "-u", u, "-p", "serial", "-t", "2port",
                    "--auto")
        self.script("10-auto", """
if OPTS["-a"] == "start" and OPTS["-e"] == "pre" and OPTS["-u"] == {v!r}:
    sys.stderr.write("not this one\\n")
    sys.exit(1)
""".format(v=vetoed))
        self.d.terminate()
        self.start_daemon()
        self.wait_state(ok, "running")
        self.assertEqual(self.instance(vetoed)["state"], "stopped")
        calls = self.wait_calls(3)
        time.sleep(0.3)
        got = sorted((c["argv"][9], c["argv"][3], c["argv"][7])
                     for c in self.calls())
        self.assertEqual(got, sorted([(ok, "pre", "none"),
                                      (ok, "post", "success"),
                                      (vetoed, "pre", "none")]))
        self.assertIn("%s: cannot start: callout" % vetoed, self.d.log())
        self.assertIn("not this one", self.d.log())

    def test_ready_waits_for_auto_start_callouts(self):
        # systemd's READY=1 comes once the auto definitions run (CLI.md
        # "Running under systemd"): one whose pre callout still runs
        # counts as starting.
        self.start_daemon()
        u = new_uuid()
        self.ok("define", "-u", u, "-p", "serial", "-t", "2port", "--auto")
        self.script("10-slow-start", """
if OPTS["-e"] == "pre" and OPTS["-a"] == "start":
    time.sleep(2)
""")
        self.d.terminate()
        path = os.path.join(self.tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        os.environ["NOTIFY_SOCKET"] = path
        try:
            self.start_daemon()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        got = []
        deadline = time.monotonic() + harness.T_READY
        while "READY=1" not in got:
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, "no READY=1; got %s" % got)
            if select.select([sock], [], [], left)[0]:
                got += [m for m in sock.recv(4096).decode().split("\n") if m]
        status = [m for m in got[:got.index("READY=1")]
                  if m.startswith("STATUS=")]
        self.assertTrue(status[0].startswith("STATUS=0 running, 1 starting"),
                        got)
        self.assertTrue(status[-1].startswith("STATUS=1 running, 0 starting"),
                        got)
        self.assertEqual(self.instance(u)["state"], "running")

    def test_stop_daemon_during_pre(self):
        pidfile = os.path.join(self.tmp, "script.pid")
        self.script("10-slow", """
with open({pidfile!r}, "w") as f:
    f.write(str(os.getpid()))
time.sleep(60)
""".format(pidfile=pidfile))
        self.start_daemon()
        p = self.spawn([harness.BIN["umdevctl"], "--control", self.d.control,
                        "define", "-p", "serial", "-t", "2port"])
        self.wait_for("the script to start", lambda: os.path.exists(pidfile)
                      and open(pidfile).read())
        with open(pidfile) as f:
            pid = int(f.read())
        self.assertEqual(self.d.terminate(), 0)
        self.wait_for("the script to be killed", lambda: not harness.alive(pid))
        p.communicate(timeout=harness.T_CMD)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual([f for _, _, files in os.walk(self.d.statedir)
                          for f in files], [])


if __name__ == "__main__":
    harness.main()
