"""The instance workers' sandbox (docs/SANDBOX.md, daemon/sandbox.c).

  * every thread of a serving worker has no_new_privs and the seccomp
    filter (Seccomp: 2 in /proc), and the worker holds only the fds it
    needs;
  * `umdevd --print-sandbox` is what docs/SANDBOX.md lists;
  * with the test hook (UMDEV_TEST_HOOKS builds), a worker that tries a
    forbidden system call once a VMM attaches is killed by SIGSYS, its
    instance goes to `failed` naming the sandbox, its resources return,
    and the other instances keep serving; with `--sandbox log` the same
    call is let through, so it is the filter that killed it;
  * in a sanitizer build, a worker's memory error under the filter is
    reported whole (not cut short by SIGSYS);
  * a worker stopped and continued (SIGSTOP/SIGCONT: a debugger, a
    cgroup freezer) serves on: the kernel resumes its threads' polls
    through restart_syscall, which the filter lets through.

    python3 test_sandbox.py --umdevd P --umdevctl P --probe P \
        --req-client P --accel-client P [--test-hooks] [unittest args]
"""

import os
import re
import signal
import subprocess
import time

import harness
from harness import DaemonTestCase, new_uuid, status_fields

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                   "docs", "SANDBOX.md")



class Sandbox(DaemonTestCase):

    def test_workers_confined(self):
        self.daemon()
        a = self.start_instance("-p", "accel", "-t", "accel-4wq", "--attr",
                                "engine_threads=3")
        s = self.start_instance("-p", "serial", "-t", "serial-2port")
        for i in (a, s):
            tasks = os.listdir("/proc/%d/task" % i["pid"])
            if i is a:
                self.assertGreaterEqual(len(tasks), 4, tasks)
            for t in tasks:
                st = status_fields("/proc/%d/task/%s/status" % (i["pid"], t))
                self.assertEqual((st["NoNewPrivs"], st["Seccomp"]),
                                 ("1", "2"), (i["type"], t, st))
            fds = {int(n): os.readlink("/proc/%d/fd/%s" % (i["pid"], n))
                   for n in os.listdir("/proc/%d/fd" % i["pid"])}
            # stdio (stdin /dev/null, logs), then sockets and anonymous
            # inodes only: no file, no directory, nothing inherited.
            self.assertEqual(fds[0], "/dev/null", fds)
            for n, target in fds.items():
                if n > 2:
                    self.assertRegex(target, r"^(socket|anon_inode|/dev/pts)",
                                     fds)
        # Confined workers still do their work.
        p = subprocess.run([harness.BIN["accel_client"], a["socket"], "4", "30000"],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("PCI", str(self.probe(s["socket"])))

    def test_stop_and_continue(self):
        self.daemon()
        # The nvme poller thread waits in poll() with a timeout, which
        # the kernel resumes after SIGCONT through restart_syscall.
        i = self.start_instance("-p", "nvme", "-t", "nvme-1q", "--attr",
                                "backend=null")
        for _ in range(3):
            os.kill(i["pid"], signal.SIGSTOP)
            time.sleep(0.1)
            os.kill(i["pid"], signal.SIGCONT)
            time.sleep(0.2)
        now = self.instance(i["uuid"])
        self.assertEqual((now["state"], now["pid"]), ("running", i["pid"]),
                         now)
        self.assertIn("PCI", str(self.probe(i["socket"])))
        self.ok("stop", i["uuid"])

    def test_print_matches_docs(self):
        p = subprocess.run([harness.BIN["umdevd"], "--print-sandbox"],
                           capture_output=True, timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 0, p)
        printed, _, extra = p.stdout.decode().partition(
            "# sanitizer build: ")
        with open(DOC) as f:
            doc = f.read()
        m = re.search(r"```\n(# \d+ system calls.*?)```", doc, re.S)
        self.assertIsNotNone(m, "docs/SANDBOX.md has no allow-list block")
        self.assertEqual(m.group(1), printed,
                         "docs/SANDBOX.md is out of date: paste "
                         "`umdevd --print-sandbox` into it")
        n = int(printed.split()[1])
        self.assertEqual(n, len(printed.splitlines()) - 1)
        if extra:
            # Only sanitizer builds print it; the docs list it apart.
            m = re.search(r"```\n# sanitizer build: (.*?)```", doc, re.S)
            self.assertIsNotNone(m, "docs/SANDBOX.md has no sanitizer block")
            self.assertEqual(m.group(1), extra,
                             "docs/SANDBOX.md's sanitizer block is out of "
                             "date: paste it from an asan build's "
                             "`umdevd --print-sandbox`")
        p = subprocess.run([harness.BIN["umdevd"], "--sandbox", "off"],
                           capture_output=True, timeout=harness.T_CMD)
        self.assertEqual(p.returncode, 2)
        self.assertIn("sandbox mode must be 'kill' or 'log', not 'off'",
                      p.stderr.decode())

    def forbidden(self, args):
        """A serial instance armed with the test hook, and an accel
        instance beside it; a VMM attaches to the armed one."""
        if not harness.FLAGS["test_hooks"]:
            self.fail("umdevd was built without UMDEV_TEST_HOOKS")
        bad = new_uuid()
        os.environ["UMDEV_TEST_FORBIDDEN_SYSCALL"] = bad
        try:
            self.daemon(args)
        finally:
            del os.environ["UMDEV_TEST_FORBIDDEN_SYSCALL"]
        other = self.start_instance("-p", "accel", "-t", "accel-2wq")
        i = self.start_instance("-p", "serial", "-t", "serial-2port", "-u",
                                bad)
        self.assertEqual(self.types()["serial-2port"], 1023)
        subprocess.run([harness.BIN["probe"], "--timeout", "3000",
                        i["socket"]], capture_output=True,
                       timeout=harness.T_CMD)
        return i, other

    def test_forbidden_syscall_kills(self):
        i, other = self.forbidden([])
        f = self.wait_state(i["uuid"], "failed")
        self.assertEqual(f["exit"]["signal"], 31, f)
        self.assertIn("killed by signal 31", f["exit"]["reason"])
        self.assertIn("outside the sandbox (docs/SANDBOX.md)",
                      f["exit"]["reason"])
        self.assertNotIn("test hook: socket", self.d.log())
        # Its resources are back; the other instance serves on.
        self.assertEqual(self.types()["serial-2port"], 1024)
        now = self.instance(other["uuid"])
        self.assertEqual((now["state"], now["pid"]),
                         ("running", other["pid"]))
        p = subprocess.run([harness.BIN["accel_client"], other["socket"], "2", "30000"],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.ok("stop", i["uuid"])
        self.ok("stop", other["uuid"])

    def test_sanitizer_report_through_filter(self):
        """A sanitizer build's worker that corrupts memory under the
        filter: the report arrives whole and the worker exits with the
        sanitizer's status, not SIGSYS (docs/SANDBOX.md, "Sanitizer
        builds"). Any other build has no soft rules at all."""
        p = subprocess.run([harness.BIN["umdevd"], "--print-sandbox"],
                           capture_output=True, timeout=harness.T_CMD)
        printed = p.stdout.decode()
        if "# sanitizer build: " not in printed:
            names = {line.split()[0] for line in printed.splitlines()[1:]}
            self.assertFalse(names & {"open", "openat", "stat", "ioctl"},
                             printed)
            return
        if not harness.FLAGS["test_hooks"]:
            self.fail("umdevd was built without UMDEV_TEST_HOOKS")
        bad = new_uuid()
        os.environ["UMDEV_TEST_MEMORY_ERROR"] = bad
        try:
            self.daemon([])
        finally:
            del os.environ["UMDEV_TEST_MEMORY_ERROR"]
        self.d.expected_reports["ERROR: AddressSanitizer"] = 1
        other = self.start_instance("-p", "serial", "-t", "serial-2port")
        i = self.start_instance("-p", "accel", "-t", "accel-1wq", "-u", bad)
        subprocess.run([harness.BIN["probe"], "--timeout", "3000",
                        i["socket"]], capture_output=True,
                       timeout=harness.T_CMD)
        f = self.wait_state(i["uuid"], "failed")
        self.assertEqual((f["exit"]["status"], f["exit"]["signal"]), (1, 0),
                         f)
        self.wait_for("the end of the report",
                      lambda: "SUMMARY: AddressSanitizer: heap-buffer-"
                      "overflow" in self.d.log())
        log = self.d.log()
        self.assertIn("test hook: writing past a heap buffer", log)
        self.assertIn("ERROR: AddressSanitizer: heap-buffer-overflow", log)
        # Frames as module+offset, for llvm-symbolizer --obj.
        self.assertRegex(log, r"#0 0x[0-9a-f]+ +\(\S*umdevd\+0x[0-9a-f]+\)")
        self.assertIn("allocated by thread", log)
        now = self.instance(other["uuid"])
        self.assertEqual((now["state"], now["pid"]),
                         ("running", other["pid"]))
        self.ok("stop", other["uuid"])

    def test_log_mode_lets_it_run(self):
        i, other = self.forbidden(["--sandbox", "log"])
        self.wait_for("the hook's log line",
                      lambda: "test hook: socket(AF_INET) returned" in
                      self.d.log())
        self.assertEqual(self.instance(i["uuid"])["state"], "running")
        self.assertIn("PCI", str(self.probe(i["socket"])))
        self.ok("stop", i["uuid"])
        self.ok("stop", other["uuid"])


if __name__ == "__main__":
    harness.main(programs=("accel-client",), flags=("test-hooks",))
