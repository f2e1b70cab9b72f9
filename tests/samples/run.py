#!/usr/bin/env python3
"""The samples, built and run the way an outside project would.

1. Install the build tree into a private prefix (`cmake --install`).
2. Build samples/ with its Makefile against that prefix through
   pkg-config: the GPIO device, the sample-loop plug-in, the liar
   plug-in (same card, profile lying about its data path), the loop
   driver; and the broken plug-ins of tests/samples/bad_plugin.c.
3. The GPIO device: serve it, probe it with the installed umdev-probe,
   and pass the installed conformance kit (every check but datapath,
   which has no generator for a device the kit does not know).
4. The plug-ins: start the installed umdevd on a plug-in directory with
   the admission gate on. sample-loop must be admitted (its audit runs
   umdevctl audit --conformance with the plug-in's exercise hook);
   liar-loop must be refused with criterion 2 named; the crashing and
   wrong-ABI plug-ins must be refused at load, the one whose device
   crashes must be refused by its audit; nothing refused may be defined
   or started. Then a sample-loop instance is started and driven.

Usage: run.py SOURCE_DIR BUILD_DIR CC CFLAGS
Every wait is bounded; every process started is killed at the end.
"""
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

SRC, BUILD, CC, CFLAGS = sys.argv[1:5]
T_ADMIT = 400  # seconds for every admission audit (sanitized builds)
procs = []


def say(msg):
    print("samples: " + msg, flush=True)


def fail(msg):
    say("FAIL: " + msg)
    sys.exit(1)


def run(cmd, env=None, ok=(0,), timeout=120):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode not in ok:
        fail("%s exited %d\nstdout: %s\nstderr: %s" % (
            " ".join(cmd), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def start(cmd, env=None, log=None):
    p = subprocess.Popen(cmd, env=env, stdout=log or subprocess.DEVNULL,
                         stderr=subprocess.STDOUT if log else None,
                         start_new_session=True)
    procs.append(p)
    return p


def listening(path):
    # umdev's servers make the path appear only once the socket listens
    # (umdev_listen_unix()), so the path alone says a client can connect.
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def wait_for(path, proc, what, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        if listening(path):
            return
        if proc.poll() is not None:
            fail("%s exited %d before creating %s" % (what, proc.returncode,
                                                      path))
        time.sleep(0.05)
    fail("%s did not listen on %s within %d s" % (what, path, seconds))


def stop(proc, what):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail("%s did not stop within 30 s of SIGTERM" % what)
    if rc != 0:
        fail("%s exited %d after SIGTERM" % (what, rc))


def build(tmp):
    prefix = os.path.join(tmp, "prefix")
    out = os.path.join(tmp, "out")
    os.makedirs(out)
    run(["cmake", "--install", BUILD, "--prefix", prefix])
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib",
                                                        "pkgconfig"))
    cflags = (CFLAGS + " -O1 -g").strip()
    run(["make", "-s", "-C", os.path.join(SRC, "samples"), "O=" + out,
         "CC=" + CC, "CFLAGS=" + cflags], env=env)
    for variant in ("BAD_ABI", "BAD_LOAD", "BAD_CREATE", "OLD_ABI"):
        so = os.path.join(out, "bad_%s.so" % variant.lower())
        pc = run(["pkg-config", "--cflags", "--libs", "umdev"],
                 env=env).stdout.split()
        run([CC] + cflags.split() + ["-std=gnu11", "-Wall", "-Wextra",
            "-Werror", "-fPIC", "-shared", "-D" + variant, "-o", so,
            os.path.join(SRC, "tests", "samples", "bad_plugin.c")] + pc)
    return prefix, out


def gpio(prefix, out, tmp, env):
    sock = os.path.join(tmp, "gpio.sock")
    srv = start([os.path.join(out, "umdev-sample-gpio"), sock], env=env)
    wait_for(sock, srv, "umdev-sample-gpio")
    probe = json.loads(run([os.path.join(prefix, "bin", "umdev-probe"),
                            "--json", sock], env=env).stdout)
    text = json.dumps(probe)
    if '"1234"' not in text and "0x1234" not in text and "4660" not in text:
        fail("umdev-probe does not show vendor 1234: %s" % text[:500])
    kit = run([os.path.join(prefix, "bin", "umdev-conform"), sock, "--json",
               "--only", "protocol,config,reset,fuzz,leaks",
               "--fuzz-seconds", "2"], env=env, ok=(0, 1))
    for c in json.loads(kit.stdout):
        if not c["pass"]:
            fail("the GPIO sample fails the kit's %s check: %s" % (
                c["name"], c.get("evidence", "")))
    stop(srv, "umdev-sample-gpio")
    say("gpio: served, probed, passed protocol/config/reset/fuzz/leaks")


def types(ctl):
    p = run(ctl + ["--json", "types"])
    return {t["name"]: t for t in json.loads(p.stdout)["types"]}, \
        json.loads(p.stdout).get("refused_plugins", [])


def plugins(prefix, out, tmp, env):
    pdir = os.path.join(tmp, "plugins")
    os.makedirs(pdir)
    for so in ("sample_loop.so", "sample_liar.so", "bad_bad_abi.so",
               "bad_bad_load.so", "bad_bad_create.so", "bad_old_abi.so"):
        shutil.copy(os.path.join(out, so), pdir)
    run_dir = os.path.join(tmp, "run")
    control = os.path.join(tmp, "control")
    umdevctl = os.path.join(prefix, "bin", "umdevctl")
    log = open(os.path.join(tmp, "umdevd.log"), "w")
    daemon = start([os.path.join(prefix, "sbin", "umdevd"), "--rundir",
                    run_dir, "--statedir", os.path.join(tmp, "state"),
                    "--control", control, "--plugin-dir", pdir,
                    "--umdevctl", umdevctl, "--admit-fuzz-seconds", "2"],
                   env=env, log=log)
    wait_for(control, daemon, "umdevd")
    ctl = [umdevctl, "--control", control]
    end = time.time() + T_ADMIT
    while True:
        ts, refused = types(ctl)
        pending = [n for n, t in ts.items()
                   if t["admission"]["state"] == "pending"]
        if not pending:
            break
        if time.time() > end:
            fail("admission still pending after %d s: %s\n%s" % (
                T_ADMIT, pending, open(log.name).read()[-4000:]))
        time.sleep(0.5)
    states = {n: t["admission"] for n, t in ts.items() if "plugin" in t}
    say("verdicts: %s" % json.dumps(states, indent=1))
    say("refused at load: %s" % json.dumps(refused, indent=1))
    good = ts.get("sample-loop")
    if good is None or good["admission"]["state"] != "admitted":
        fail("sample-loop was not admitted: %s\n%s" % (
            good, open(log.name).read()[-4000:]))
    liar = ts.get("liar-loop")
    if liar is None or liar["admission"]["state"] != "refused":
        fail("liar-loop was not refused: %s" % liar)
    if "criterion 2 (data path untrapped) failed" not in \
            liar["admission"].get("verdict", ""):
        fail("liar-loop's refusal does not name criterion 2: %s" % liar)
    if liar["available_instances"] != 0:
        fail("a refused type offers instances: %s" % liar)
    crash = ts.get("badcreate-loop")
    if crash is None or crash["admission"]["state"] != "refused":
        fail("the plug-in whose device crashes was not refused: %s" % crash)
    reasons = {os.path.basename(r["path"]): r["reason"] for r in refused}
    if "parent ABI version 999" not in reasons.get("bad_bad_abi.so", ""):
        fail("the wrong-ABI plug-in was not refused for its ABI: %s" %
             reasons)
    if "crashed while loading" not in reasons.get("bad_bad_load.so", ""):
        fail("the plug-in crashing at load was not refused: %s" % reasons)
    # A plug-in of parent ABI version 1 loads, describing no attributes.
    old = ts.get("oldabi-loop")
    if old is None or "bad_old_abi.so" in reasons or \
            old.get("attributes") != []:
        fail("the parent ABI version 1 plug-in was not loaded as one: %s %s"
             % (old, reasons))
    # Refused types are never offered, to define or to start.
    for args in (["define", "-p", "liar", "-t", "loop"],
                 ["start", "-p", "liar", "-t", "loop"]):
        p = run(ctl + ["--json"] + args, ok=(1,))
        if json.loads(p.stdout)["code"] != "EACCES":
            fail("%s of a refused type: %s" % (args[0], p.stdout))
    uuid = run(ctl + ["define", "-p", "sample", "-t", "loop"]).stdout.strip()
    run(ctl + ["start", uuid])
    sock = os.path.join(run_dir, uuid + ".sock")
    drive = run([os.path.join(out, "umdev-sample-loop-drive"), sock, "4096"],
                env=env)
    say("sample-loop instance: " + drive.stdout.strip())
    run(ctl + ["stop", uuid])
    run(ctl + ["undefine", uuid])
    stop(daemon, "umdevd")
    say("plug-ins: sample-loop admitted, started and driven; liar-loop and "
        "the broken plug-ins refused")
    # --admit any: offered unchecked, said so; the load-time refusals hold.
    daemon = start([os.path.join(prefix, "sbin", "umdevd"), "--rundir",
                    run_dir, "--statedir", os.path.join(tmp, "state"),
                    "--control", control, "--plugin-dir", pdir,
                    "--admit", "any"], env=env, log=log)
    wait_for(control, daemon, "umdevd --admit any")
    ts, refused = types(ctl)
    for name in ("sample-loop", "liar-loop", "badcreate-loop",
                 "oldabi-loop"):
        if ts[name]["admission"]["state"] != "waived" or \
                ts[name]["available_instances"] == 0:
            fail("--admit any: %s is not offered as waived: %s" % (
                name, ts[name]))
    if len(refused) != 2:
        fail("--admit any still refuses broken plug-ins at load: %s" %
             refused)
    stop(daemon, "umdevd --admit any")
    say("--admit any: every loadable plug-in type waived and offered")


def main():
    tmp = tempfile.mkdtemp(prefix="umdev-samples.")
    try:
        prefix, out = build(tmp)
        env = dict(os.environ,
                   LD_LIBRARY_PATH=os.path.join(prefix, "lib"))
        # As tests/conformance/run.sh does: a sanitizer build's quarantine
        # holds freed memory back on purpose; keep it small so the leaks
        # check measures the server, not the quarantine.
        asan = env.get("ASAN_OPTIONS")
        env["ASAN_OPTIONS"] = (asan + ":" if asan else "") + \
            "quarantine_size_mb=1"
        env.pop("UMDEV_CONFORM", None)
        gpio(prefix, out, tmp, env)
        plugins(prefix, out, tmp, env)
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    say("PASS")


if __name__ == "__main__":
    main()
