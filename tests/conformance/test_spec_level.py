#!/usr/bin/env python3
"""The kit judges a server by the spec, and umdev's policy apart.

The server under test behaves differently from umdev's but as the
vfio-user spec allows: it closes the connection on a VERSION it cannot
support (Connection Initiation: "or closes the connection if it cannot
support the advertised version"), as libvfio-user's servers do, where
umdev answers with an error reply and keeps the connection. It is built
from the project's own server: a front (VersionCloser, below) passes every
message, with its descriptors, between the kit and `umdev-serve serial`,
except that when the server refuses a VERSION on a connection not yet
negotiated, the front closes the client's connection instead of passing
the error reply on.

Expected of the kit:
  * --level spec: exit 0; the protocol check passes by the spec and shows
    the policy difference (rule protocol.version.refusal, level policy,
    one failure per unsupported VERSION, all by closing), no spec rule
    broken, and config and reset pass both ways;
  * likewise behind a front that passes the error reply on and then
    closes (libvfio-user's way);
  * the default level (policy): exit 1, the protocol check failing on
    that policy rule alone while spec_pass stays true;
  * the same kit against umdev-serve directly: no policy difference (the
    front is what differs);
  * and the spec level has teeth: behind a front that swallows the
    refusal and leaves the connection open (the client waits forever,
    which the spec does not allow), --level spec fails the protocol
    check on protocol.version.refuse, a spec rule; behind one that strips
    DMA_UNMAP's reply payload and turns EEXIST into EINVAL, it fails on
    protocol.reply.payload and protocol.dma.overlap.

Usage: test_spec_level.py --conform P --serve P --profile FILE
Every wait is bounded; every process started is killed at the end.
"""
import argparse
import array
import json
import os
import shutil
import signal
import stat
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HDR = struct.Struct("=HHIII")  # msg_id, cmd, msg_size, flags, error
VERSION = 1
DMA_MAP = 2
DMA_UNMAP = 3
EEXIST = 17
EINVAL = 22
F_TYPE_REPLY = 0x1
F_ERROR = 0x20
MAX_FDS = 64  # the kit sends at most 64 descriptors at once
MAX_MSG = 64 << 20  # a front, not a server: anything the server may take
T_LISTEN = 10  # seconds for the server's socket
T_KIT = 120  # seconds for one kit run


def say(msg):
    print("spec_level: " + msg, flush=True)


def fail(msg):
    say("FAIL: " + msg)
    sys.exit(1)


def recv_exact(sock, n, fds):
    """n bytes from sock, descriptors that come with them appended to
    fds; None on EOF or a truncated descriptor list."""
    buf = bytearray()
    space = socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize)
    while len(buf) < n:
        data, anc, flags, _ = sock.recvmsg(n - len(buf), space)
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(cdata[:len(cdata) - len(cdata) % a.itemsize])
                fds.extend(a)
        if not data or flags & socket.MSG_CTRUNC:
            return None
        buf += data
    return bytes(buf)


def recv_msg(sock):
    """One whole message: (header tuple, bytes, fds), or None when the
    stream ends or cannot be framed (msg_size below the header)."""
    fds = []
    hdr = recv_exact(sock, HDR.size, fds)
    if hdr is None:
        return None, fds
    h = HDR.unpack(hdr)
    if h[2] < HDR.size or h[2] > MAX_MSG:
        return None, fds
    body = recv_exact(sock, h[2] - HDR.size, fds)
    if body is None:
        return None, fds
    return (h, hdr + body, fds), []


def send_msg(sock, data, fds):
    anc = []
    if fds:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
    sock.sendmsg([data], anc)


class VersionCloser:
    """Listens on `path`, connects each client to the server at
    `upstream` and passes messages both ways, closing the client's
    connection where the server refused a VERSION before negotiation
    (mode "close"), or passing the refusal on and then closing
    ("answer_close", what libvfio-user's tran.c does), or dropping the
    refusal and keeping the connection open ("hang"); mode "mangle"
    passes VERSIONs unchanged but breaks the
    spec elsewhere: DMA_UNMAP replies lose their payload, EEXIST
    becomes EINVAL."""

    def __init__(self, path, upstream, mode="close"):
        self.upstream = upstream
        self.mode = mode
        self.closed_on_version = 0
        self.lock = threading.Lock()
        # The server serves one client at a time and refuses (EBUSY) one
        # that comes while another is attached. The kit closes before it
        # reconnects, but this front's close of the old upstream
        # connection may not reach the server before its new connect:
        # one upstream session at a time, as a lone client would have.
        self.session = threading.Lock()
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        self.lsock.listen(8)
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, client):
        with self.session:
            self.serve_one(client)

    def serve_one(self, client):
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            up.connect(self.upstream)
        except OSError:
            client.close()
            return
        # Message ids of VERSIONs sent before negotiation, awaiting the
        # server's answer; None once negotiated.
        state = {"versions": set()}

        def both_down():
            for s in (client, up):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def pump(src, dst, from_client):
            try:
                while True:
                    msg, stray = recv_msg(src)
                    for fd in stray:
                        os.close(fd)
                    if msg is None:
                        break
                    h, data, fds = msg
                    pending = state["versions"]
                    if not from_client and self.mode == "mangle":
                        data = mangle(h, data)
                    elif from_client and h[1] == VERSION and \
                            pending is not None:
                        pending.add(h[0])
                    elif not from_client and h[1] == VERSION and \
                            pending is not None and h[0] in pending and \
                            h[3] & F_TYPE_REPLY:
                        if h[3] & F_ERROR:
                            # What a libvfio-user server does.
                            with self.lock:
                                self.closed_on_version += 1
                            for fd in fds:
                                os.close(fd)
                            if self.mode == "hang":
                                continue
                            if self.mode == "answer_close":
                                send_msg(dst, data, [])
                            break
                        state["versions"] = None
                    try:
                        send_msg(dst, data, fds)
                    finally:
                        for fd in fds:
                            os.close(fd)
            except OSError:
                pass
            both_down()

        t = threading.Thread(target=pump, args=(up, client, False),
                             daemon=True)
        t.start()
        pump(client, up, True)
        t.join(T_KIT)
        client.close()
        up.close()

    def close(self):
        self.lsock.close()


def mangle(h, data):
    """A reply as a server breaking the spec would send it."""
    msg_id, cmd, size, flags, err = h
    if cmd == DMA_UNMAP and flags & F_TYPE_REPLY and not flags & F_ERROR:
        return HDR.pack(msg_id, cmd, HDR.size, flags, err)
    if cmd == DMA_MAP and flags & F_ERROR and err == EEXIST:
        return HDR.pack(msg_id, cmd, size, flags, EINVAL) + data[HDR.size:]
    return data


def listening(path):
    """The socket's path appears only once it listens (the servers make
    it with umdev_listen_unix())."""
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def kit(args, sock, *opts):
    cmd = [args.conform, sock, "--json"] + list(opts)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=T_KIT)
    try:
        res = {c["name"]: c for c in json.loads(p.stdout)}
    except ValueError:
        fail("%s: exit %d, not JSON:\n%s\n%s" % (
            " ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p.returncode, res


def wait_unattached(server_log):
    """Until umdev-serve (its log at @server_log) has detached every
    client it attached. A client's close reaches the server
    asynchronously: a new connection made sooner meets the server's
    second-client refusal (EBUSY) instead of the server."""
    deadline = time.monotonic() + T_LISTEN
    while True:
        with open(server_log) as f:
            text = f.read()
        attached = text.count("client attached")
        if attached == 0:
            fail("umdev-serve's log names no client attached:\n" +
                 text[-2000:])
        if attached == text.count("client detached"):
            return
        if time.monotonic() > deadline:
            fail("umdev-serve still has a client attached:\n" + text[-2000:])
        time.sleep(0.02)


def rules_of(check, level):
    return {r["id"]: r["failures"] for r in check.get("rules", [])
            if r["level"] == level}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conform", required=True)
    ap.add_argument("--serve", required=True)
    ap.add_argument("--profile", required=True)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="umdev-spec-level-")
    server = None
    front = None
    try:
        up = os.path.join(tmp, "server.sock")
        log = open(os.path.join(tmp, "server.log"), "w")
        # --verbose: its log says when a client is attached and detached
        # (wait_unattached()).
        server = subprocess.Popen([args.serve, "serial", "--socket", up,
                                   "--verbose"],
                                  stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        deadline = time.monotonic() + T_LISTEN
        while not listening(up):
            if server.poll() is not None or time.monotonic() > deadline:
                fail("umdev-serve did not listen on %s" % up)
            time.sleep(0.05)
        sock = os.path.join(tmp, "front.sock")
        front = VersionCloser(sock, up)
        pid = str(server.pid)

        # By the spec: passes, with the policy difference reported.
        rc, res = kit(args, sock, "--level", "spec", "--only",
                      "protocol,config,reset", "--profile", args.profile,
                      "--server-pid", pid)
        proto = res.get("protocol")
        if proto is None:
            fail("no protocol check in %s" % res)
        if rc != 0:
            fail("--level spec: exit %d: %s" % (
                rc, json.dumps(res, indent=1)[:4000]))
        if front.closed_on_version < 7:
            fail("the front closed only %d connections on a VERSION"
                 % front.closed_on_version)
        if not proto["spec_pass"] or rules_of(proto, "spec"):
            fail("protocol broke spec rules: %s" % proto["evidence"])
        diff = rules_of(proto, "policy")
        if diff.get("protocol.version.refusal", 0) < 7:
            fail("the policy difference is not reported as "
                 "protocol.version.refusal x7: %s" % proto["evidence"])
        if proto["policy_pass"] or proto["level"] != "spec":
            fail("protocol: policy_pass %s, level %s" % (
                proto["policy_pass"], proto["level"]))
        if "by closing the connection" not in proto["evidence"]:
            fail("the evidence does not say how VERSIONs were refused: %s"
                 % proto["evidence"])
        for name in ("config", "reset"):
            c = res[name]
            if not (c["pass"] and c["spec_pass"] and c["policy_pass"]):
                fail("%s: %s" % (name, c["evidence"]))
        say("--level spec: exit 0, protocol passes by the spec; policy "
            "differences %s" % diff)

        # umdev's policy (the default level): the same difference fails.
        rc, res = kit(args, sock, "--only", "protocol", "--server-pid", pid)
        proto = res["protocol"]
        if rc != 1 or proto["pass"] or not proto["spec_pass"]:
            fail("default level: exit %d, pass %s, spec_pass %s" % (
                rc, proto["pass"], proto["spec_pass"]))
        if proto["level"] != "policy" or \
                "protocol.version.refusal" not in rules_of(proto, "policy"):
            fail("default level: %s" % proto["evidence"])
        say("default (policy) level: exit 1 on protocol.version.refusal")

        # Answering the refusal, then closing: also the spec's allowance.
        front.close()
        wait_unattached(log.name)
        asock = os.path.join(tmp, "answer.sock")
        front = VersionCloser(asock, up, mode="answer_close")
        rc, res = kit(args, asock, "--level", "spec", "--only", "protocol",
                      "--server-pid", pid)
        proto = res["protocol"]
        if rc != 0 or not proto["spec_pass"] or rules_of(proto, "spec") or \
                rules_of(proto, "policy").get("protocol.version.refusal",
                                              0) < 7 or \
                "then the connection closed" not in proto["evidence"]:
            fail("a front answering refused VERSIONs, then closing: exit "
                 "%d: %s" % (rc, proto["evidence"]))
        say("answer, then close: --level spec passes, the policy "
            "difference reported")

        # The server itself, without the front: no difference at all.
        front.close()
        wait_unattached(log.name)
        rc, res = kit(args, up, "--only", "protocol")
        proto = res["protocol"]
        if rc != 0 or not proto["policy_pass"] or rules_of(proto, "policy"):
            fail("umdev-serve directly: exit %d: %s" % (
                rc, proto["evidence"]))
        say("umdev-serve directly: passes at the policy level")

        # A refusal the client never learns of breaks the spec.
        front.close()
        hsock = os.path.join(tmp, "hang.sock")
        front = VersionCloser(hsock, up, mode="hang")
        rc, res = kit(args, hsock, "--level", "spec", "--only", "protocol",
                      "--timeout", "300", "--server-pid", pid)
        proto = res["protocol"]
        if rc != 1 or proto["pass"] or proto["spec_pass"] or \
                rules_of(proto, "spec").get("protocol.version.refuse",
                                            0) < 7:
            fail("a front leaving refused VERSIONs unanswered: exit %d: %s"
                 % (rc, proto["evidence"]))
        say("unanswered VERSIONs: --level spec fails on "
            "protocol.version.refuse")

        front.close()
        msock = os.path.join(tmp, "mangle.sock")
        front = VersionCloser(msock, up, mode="mangle")
        rc, res = kit(args, msock, "--level", "spec", "--only", "protocol",
                      "--server-pid", pid)
        proto = res["protocol"]
        broken = rules_of(proto, "spec")
        if rc != 1 or proto["spec_pass"] or \
                broken.get("protocol.reply.payload", 0) < 1 or \
                broken.get("protocol.dma.overlap", 0) < 3:
            fail("a front breaking DMA_UNMAP's reply and EEXIST: exit %d: %s"
                 % (rc, proto["evidence"]))
        say("DMA_UNMAP without its entry, EINVAL for EEXIST: --level spec "
            "fails on %s" % broken)
    finally:
        if front is not None:
            front.close()
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
