"""What any local user can do to umdevd through its control socket
(docs/CONTROL.md "Limits"): connections capped per uid, for all readers
and in total; a reserve descriptor so running out of them neither spins
the daemon nor leaves a client waiting; line limits; time limits on
partial lines and idle readers; one request in progress per connection;
the strict `version` field; and groups taken from the socket
(SO_PEERGROUPS), not from /proc.

The daemon runs as root; a peer that is not is made by switching this
process's effective credentials around connect() (harness.as_peer).
"""

import errno
import grp
import json
import os
import signal
import socket
import threading
import time

import harness
from harness import NOBODY, Conn, DaemonTestCase, as_peer, as_user, peek

T = "serial-2port"

# The limits of docs/CONTROL.md, as daemon/control.c names them.
CTL_MAX_CONNS = 4096
CTL_MAX_READER_CONNS = 256
CTL_MAX_CONNS_PER_UID = 32
CTL_MAX_LINE = 1024 * 1024
CTL_MAX_READER_LINE = 4096
CTL_MAX_REQUESTS_PER_TURN = 16
# Daemon starts raced by a connect (test_socket_appears_listening).
START_ROUNDS = 300
CTL_LINE_TIMEOUT = 5.0
CTL_IDLE_TIMEOUT = 10.0


def line_of(n, cmd="version", rid=1):
    """A request line of exactly @n bytes before its newline."""
    head = '{"version":1,"id":%d,"cmd":"%s"' % (rid, cmd)
    assert n >= len(head) + 1
    return (head + " " * (n - len(head) - 1) + "}\n").encode()


def cpu_seconds(pid):
    """User + system CPU time @pid has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class Control(DaemonTestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.fail("these tests need root (they connect as other users)")

    def nobody(self):
        return as_user(NOBODY.pw_uid, NOBODY.pw_gid)

    def conn_as(self, uid, gid=None, groups=(), timeout=harness.T_CMD):
        with as_peer(uid, uid if gid is None else gid, groups):
            return Conn(self.d.control, timeout)

    def assert_refusal(self, c, code, says):
        """@c gets one error line with "id": null, then the end."""
        r = c.recv_line()
        self.assertIsNotNone(r, "closed without a reason")
        self.assertIsNone(r["id"], r)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"]["code"], code, r)
        self.assertEqual(r["error"]["errno"], getattr(errno, code), r)
        self.assertIn(says, r["error"]["message"], r)
        self.assertIsNone(c.recv_line())

    def assert_served(self, c):
        r = c.call("version")
        self.assertTrue(r["ok"], r)

    # ---- connections -------------------------------------------------

    def test_connections_per_uid(self):
        self.daemon()
        mine = [self.conn_as(NOBODY.pw_uid, NOBODY.pw_gid)
                for _ in range(CTL_MAX_CONNS_PER_UID)]
        for c in mine:
            self.assert_served(c)
        extra = self.conn_as(NOBODY.pw_uid, NOBODY.pw_gid)
        self.assert_refusal(extra, "EAGAIN", "uid %d has %d control "
                            "connections open" % (NOBODY.pw_uid,
                                                  CTL_MAX_CONNS_PER_UID))
        extra.close()
        # umdevctl says so as the daemon's error.
        self.refused("EAGAIN", "list", user=self.nobody(),
                     says="the limit for a user outside the management "
                          "group")
        # Another user, and root, are not affected.
        with self.conn_as(4242) as c:
            self.assert_served(c)
        self.ok("list")
        # One closed: room for one again.
        mine.pop().close()
        self.wait_for("a slot to free", lambda: self.ctl(
            "version", user=self.nobody()).rc == 0)
        for c in mine:
            self.assert_served(c)
            c.close()

    def test_connections_of_all_readers(self):
        self.daemon()
        conns = []
        for i in range(CTL_MAX_READER_CONNS):
            uid = 20000 + i // CTL_MAX_CONNS_PER_UID
            conns.append(self.conn_as(uid))
        # The last one in is served: all are in.
        self.assert_served(conns[-1])
        extra = self.conn_as(29999)
        self.assert_refusal(extra, "EAGAIN",
                            "%d control connections open from users outside"
                            " the management group" % CTL_MAX_READER_CONNS)
        extra.close()
        # Management is not locked out by readers.
        self.ok("list")
        for c in conns:
            c.close()

    def test_connections_in_total(self):
        self.daemon()
        conns = [Conn(self.d.control) for _ in range(CTL_MAX_CONNS)]
        self.assert_served(conns[-1])
        extra = Conn(self.d.control)
        self.assert_refusal(extra, "EAGAIN", "umdevd has %d control "
                            "connections open, its limit" % CTL_MAX_CONNS)
        extra.close()
        conns.pop().close()
        self.wait_for("a slot to free", lambda: self.ctl("version").rc == 0)
        for c in conns:
            c.close()

    def test_out_of_descriptors(self):
        """With its descriptors used up, umdevd refuses a connection with
        a reason instead of spinning on the listener, and serves again
        once some are closed."""
        real = harness.BIN["umdevd"]
        wrapper = os.path.join(self.tmp, "umdevd-64fds")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nulimit -n 64 || exit 99\nexec %s \"$@\"\n"
                    % real)
        os.chmod(wrapper, 0o755)
        harness.BIN["umdevd"] = wrapper
        try:
            self.daemon()
        finally:
            harness.BIN["umdevd"] = real
        conns = []
        refused = None
        for _ in range(80):
            c = Conn(self.d.control, timeout=5)
            r = c.call("version")
            if r["ok"]:
                conns.append(c)
                continue
            refused = (c, r)
            break
        self.assertIsNotNone(refused, "64 descriptors never ran out")
        c, r = refused
        self.assertIsNone(r["id"], r)
        self.assertEqual(r["error"]["code"], "EMFILE", r)
        self.assertIn("out of file descriptors", r["error"]["message"])
        self.assertIsNone(c.recv_line())
        c.close()
        # Connections waiting in the backlog must not make it spin.
        waiting = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                   for _ in range(3)]
        for s in waiting:
            s.settimeout(5)
            s.connect(self.d.control)
        time.sleep(0.3)
        before = cpu_seconds(self.d.proc.pid)
        time.sleep(1.0)
        used = cpu_seconds(self.d.proc.pid) - before
        self.assertLess(used, 0.3, "umdevd used %.2f s of CPU in 1 s while "
                        "out of descriptors" % used)
        # Each was told why.
        for s in waiting:
            got = s.recv(4096)
            self.assertIn(b'"EMFILE"', got)
            s.close()
        # umdevctl says why too, then works once there is room.
        self.refused("EMFILE", "version", says="out of file descriptors")
        for c in conns[:8]:
            c.close()
        self.wait_for("descriptors to free",
                      lambda: self.ctl("version").rc == 0)
        for c in conns[8:]:
            self.assert_served(c)
            c.close()

    # ---- lines and time ----------------------------------------------

    def test_line_limits(self):
        self.daemon()
        for who, limit in (("reader", CTL_MAX_READER_LINE),
                           ("manager", CTL_MAX_LINE)):
            with self.subTest(who=who):
                def open_conn():
                    if who == "reader":
                        return self.conn_as(NOBODY.pw_uid, NOBODY.pw_gid)
                    return Conn(self.d.control)
                with open_conn() as c:
                    c.send_line(line_of(limit, rid=5))
                    r = c.recv_line()
                    self.assertTrue(r["ok"], r)
                    self.assertEqual(r["id"], 5)
                    # Still usable.
                    self.assert_served(c)
                with open_conn() as c:
                    try:
                        c.send_line(line_of(limit + 1, rid=6))
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.assert_refusal(
                        c, "E2BIG", "request line longer than %d bytes"
                        % limit)

    def test_partial_lines_and_idle_readers(self):
        self.daemon()
        # Meanwhile a reader watches stats with samples further apart
        # than the idle limit: umdevctl connects again for each.
        u = self.start_instance("-p", "serial", "-t", T)["uuid"]
        watch = self.spawn(self.nobody() + [
            harness.BIN["umdevctl"], "--control", self.d.control, "stats",
            u, "--watch", str(CTL_IDLE_TIMEOUT + 0.5), "--count", "2"])
        partial = b'{"version":1,"id":1,'
        t0 = time.monotonic()
        idle = self.conn_as(NOBODY.pw_uid, NOBODY.pw_gid)
        slow = self.conn_as(NOBODY.pw_uid, NOBODY.pw_gid)
        late = self.conn_as(NOBODY.pw_uid, NOBODY.pw_gid)
        root_idle = Conn(self.d.control)
        root_slow = Conn(self.d.control)
        for c in (slow, late, root_slow):
            c.send_line(partial)

        def at(t):
            left = t0 + t - time.monotonic()
            if left > 0:
                time.sleep(left)

        # A line completed within the limit is served.
        at(CTL_LINE_TIMEOUT - 1.5)
        late.send_line(b'"cmd":"version"}\n')
        r = late.recv_line()
        self.assertTrue(r["ok"], r)
        at(CTL_LINE_TIMEOUT - 0.5)
        for c in (slow, root_slow):
            self.assertEqual(peek(c.sock), "open",
                             "closed before %.1f s" % (time.monotonic() - t0))
        # Past it, closed with the reason: readers and managers alike.
        at(CTL_LINE_TIMEOUT + 1.0)
        for c in (slow, root_slow):
            self.assert_refusal(c, "ETIMEDOUT",
                                "request line not completed within %d ms"
                                % (CTL_LINE_TIMEOUT * 1000))
        # An idle reader is kept up to the idle limit...
        at(CTL_IDLE_TIMEOUT - 0.75)
        self.assertEqual(peek(idle.sock), "open")
        # ...and closed past it; a manager's connection is not (it may
        # hold leases, docs/CONTROL.md).
        at(CTL_IDLE_TIMEOUT + 1.0)
        self.assert_refusal(idle, "ETIMEDOUT", "connection idle for %d ms"
                            % (CTL_IDLE_TIMEOUT * 1000))
        self.assert_served(root_idle)
        # The one served at 3.5 s is idle for less than the limit yet.
        self.assert_served(late)
        out, err = watch.communicate(timeout=harness.T_CMD)
        self.assertEqual(watch.returncode, 0, err.decode())
        self.assertIn(b"--- sample 2", out)
        for c in (idle, slow, late, root_idle, root_slow):
            c.close()

    def test_one_request_in_progress(self):
        """A peer that pipelines requests and does not read the answers
        makes the daemon stop reading it, not queue the answers."""
        self.daemon()
        for _ in range(40):
            self.ok("define", "-p", "serial", "-t", T, "--attr",
                    "port0=pty", "--attr", "port1=pty")
        n = 3000
        flood = Conn(self.d.control, timeout=60)
        lines = b"".join(
            (json.dumps({"version": 1, "id": i, "cmd": "list",
                         "args": {"defined": True}}) + "\n").encode()
            for i in range(1, n + 1))
        before = rss_kib(self.d.proc.pid)
        sender = threading.Thread(target=flood.send_line, args=(lines,))
        sender.daemon = True
        sender.start()
        time.sleep(1.5)
        grown = rss_kib(self.d.proc.pid) - before
        # One answer is about 20 KiB; 3000 would be 60 MiB.
        self.assertLess(grown, 8 * 1024, "umdevd grew by %d KiB holding "
                        "answers nobody reads" % grown)
        # Others are served meanwhile.
        self.ok("version")
        for i in range(1, n + 1):
            r = flood.recv_line()
            self.assertEqual(r["id"], i)
            self.assertTrue(r["ok"], r)
        sender.join(harness.T_CMD)
        flood.close()

    def stopped(self):
        """SIGSTOP the daemon and wait until it is stopped, so what is
        sent meanwhile is all there when it runs again."""
        self.d.signal(signal.SIGSTOP)
        self.wait_for("umdevd to stop",
                      lambda: harness.proc_state(self.d.proc.pid) == "T",
                      interval=0.01)

    def test_requests_per_turn(self):
        """CTL_MAX_REQUESTS_PER_TURN requests of a connection are handled
        in one turn of the loop; the next one waits until the other
        connections ready in that turn were served. Observed without
        timing: the daemon is stopped while connection A pipelines N
        requests and then connection B one `define`, so both are ready
        in the same turn (A first: epoll reports them in the order they
        became ready), and A's `list` requests show whether B's
        definition existed when each was handled."""
        self.daemon()
        for n in (CTL_MAX_REQUESTS_PER_TURN, CTL_MAX_REQUESTS_PER_TURN + 1):
            with self.subTest(pipelined=n), Conn(self.d.control) as a, \
                    Conn(self.d.control) as b, Conn(self.d.control) as c:
                # Both accepted before the daemon stops. Then a request
                # of a third connection: the turn that takes it looks at
                # A and B again and finds them idle, so neither is still
                # listed as ready (epoll keeps a level-triggered fd it
                # reported on that list until the next look) and both
                # are reported in the order their requests arrive.
                self.assert_served(a)
                self.assert_served(b)
                self.assert_served(c)
                uuid = harness.new_uuid()
                reqs = [{"version": 1, "id": 100 + i, "cmd": "version"}
                        for i in range(1, n - 1)]
                # The last two: the 15th and 16th of a turn's share, or
                # the 16th and the 17th.
                for i in (n - 1, n):
                    reqs.append({"version": 1, "id": 100 + i, "cmd": "list",
                                 "args": {"defined": True, "uuid": uuid}})
                self.stopped()
                try:
                    a.send_line("".join(json.dumps(r) + "\n" for r in reqs))
                    b.send_line(json.dumps(
                        {"version": 1, "id": 7, "cmd": "define",
                         "args": {"uuid": uuid, "parent": "serial",
                                  "type": T}}) + "\n")
                finally:
                    self.d.signal(signal.SIGCONT)
                got = [a.recv_line() for _ in reqs]
                # Every answer, in request order.
                self.assertEqual([r["id"] for r in got],
                                 [r["id"] for r in reqs])
                for r in got:
                    self.assertTrue(r["ok"], r)
                rb = b.recv_line()
                self.assertTrue(rb["ok"], rb)
                seen = [len(r["result"]["instances"]) for r in got[-2:]]
                if n == CTL_MAX_REQUESTS_PER_TURN:
                    # All of A's in the first turn, before B's define.
                    self.assertEqual(seen, [0, 0], got[-2:])
                else:
                    # The 17th only after B was served.
                    self.assertEqual(seen, [0, 1], got[-2:])
                self.ok("undefine", uuid)

    def test_answer_limit(self):
        """An answer of exactly CTL_MAX_OUT bytes (its newline included)
        is sent; one byte more ends the connection, with the reason.
        The limit is 64 MiB, which a real answer reaches only with some
        130000 definitions, so the daemon's test hook lowers it to the
        size of a real `list` answer (its value is checked against
        docs/CONTROL.md by docs.limits). One answer is queued at a time,
        so a client that does not read cannot pile several up: the
        largest answer is the limit."""
        if not harness.FLAGS["test_hooks"]:
            self.fail("umdevd was built without UMDEV_TEST_HOOKS")
        self.daemon()
        uuids = [harness.new_uuid() for _ in range(3)]
        for u in uuids:
            self.ok("define", "-u", u, "-p", "serial", "-t", T, "--attr",
                    "port0=pty")

        def list_answer(keep=False):
            """The raw line answering `list --defined` as request 1 of a
            new connection, and then what else came until the connection
            ended (nothing if @keep: it is checked to stay usable)."""
            with Conn(self.d.control) as c:
                c.send_line('{"version":1,"id":1,"cmd":"list",'
                            '"args":{"defined":true}}\n')
                while b"\n" not in c.buf:
                    chunk = c.sock.recv(1 << 20)
                    if not chunk:
                        return None, c.buf
                    c.buf += chunk
                line, c.buf = c.buf.split(b"\n", 1)
                if keep:
                    self.assertEqual(c.buf, b"")
                    self.assert_served(c)
                    return line + b"\n", b""
                rest = c.buf
                while True:
                    chunk = c.sock.recv(4096)
                    if not chunk:
                        return line + b"\n", rest
                    rest += chunk

        line, _ = list_answer(keep=True)
        limit = len(line)
        self.d.terminate()
        os.environ["UMDEV_TEST_CTL_MAX_OUT"] = str(limit)
        try:
            self.d.start()
        finally:
            del os.environ["UMDEV_TEST_CTL_MAX_OUT"]
        # At the limit: the whole answer, and the connection stays.
        line, _ = list_answer(keep=True)
        self.assertEqual(len(line), limit)
        self.assertEqual(len(json.loads(line)["result"]["instances"]), 3)
        # One byte more: owner uid 0 -> 10 lengthens the answer by one.
        r = self.d.request("modify", {"uuid": uuids[0],
                                      "owner": {"uid": 10, "gid": 0}})
        self.assertTrue(r["ok"], r)
        line, rest = list_answer()
        # Instead of the answer, the reason, and then the end.
        self.assertEqual(rest, b"")
        r = json.loads(line)
        self.assertIsNone(r["id"], r)
        self.assertEqual(r["error"]["code"], "ENOBUFS", r)
        self.assertIn("the answer is %d bytes, more than the %d a control "
                      "connection may have queued" % (limit + 1, limit),
                      r["error"]["message"])
        # Nothing else is affected.
        self.ok("version")
        r = self.d.request("modify", {"uuid": uuids[0],
                                      "owner": {"uid": 0, "gid": 0}})
        self.assertTrue(r["ok"], r)
        line, _ = list_answer(keep=True)
        self.assertEqual(len(line), limit)

    def test_socket_appears_listening(self):
        """The control socket's path appears only once umdevd listens on
        it: a client that connects the moment it sees the file, across
        many starts, is never refused. (Against the daemon that bound
        the path before listen(), about one run in three was refused
        within these rounds; unit.listen races the shared helper itself
        thousands of times.)"""
        d = self.daemon(start=False)
        for i in range(START_ROUNDS):
            d.start(wait=False)
            deadline = time.monotonic() + harness.T_READY
            while not os.path.exists(d.control):
                if d.proc.poll() is not None or time.monotonic() > deadline:
                    self.fail("start %d: no socket; log:\n%s" % (i, d.log()))
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(d.control)
            except ConnectionRefusedError:
                self.fail("start %d: the socket was there but refused the "
                          "connection" % i)
            finally:
                s.close()
            self.assertEqual(d.terminate(), 0, d.log())
            # A stopped daemon removes its socket.
            self.assertFalse(os.path.exists(d.control))

    # ---- the request itself --------------------------------------------

    def test_version_field(self):
        self.daemon()
        with Conn(self.d.control) as c:
            for v in ("1", 1.9, 1.0, True, None, [1], "1\u0000x", 2, 0):
                with self.subTest(version=v):
                    r = c.call("version", version=v)
                    self.assertFalse(r["ok"], r)
                    self.assertEqual(r["error"]["code"], "EPROTONOSUPPORT")
            c.send_line(b'{"id":3,"cmd":"version"}\n')
            r = c.recv_line()
            self.assertEqual(r["error"]["code"], "EPROTONOSUPPORT", r)
            # The connection survives a bad version.
            self.assert_served(c)
        for tail, says in ((b"\x00junk", "NUL byte"),
                           (b" junk", "more after its JSON object"),
                           (b"{}", "more after its JSON object")):
            with self.subTest(tail=tail), Conn(self.d.control) as c:
                c.send_line(b'{"version":1,"id":4,"cmd":"version"}' + tail +
                            b"\n")
                self.assert_refusal(c, "EINVAL", says)
        # Blanks after the object are fine.
        with Conn(self.d.control) as c:
            c.send_line(b'{"version":1,"id":4,"cmd":"version"} \t\r\n')
            self.assertTrue(c.recv_line()["ok"])

    def test_groups_from_the_socket(self):
        """The management group counts as the peer had it when it
        connected, not as /proc says of its pid later."""
        name = gid = None
        for cand in ("users", "staff", "adm", "daemon"):
            try:
                g = grp.getgrnam(cand)
            except KeyError:
                continue
            if g.gr_gid != NOBODY.pw_gid:
                name, gid = cand, g.gr_gid
                break
        self.assertIsNotNone(name, "no usable group")
        self.daemon(["--group", name])
        # In the group at connect: may manage.
        c = self.conn_as(NOBODY.pw_uid, NOBODY.pw_gid, groups=(gid,))
        r = c.call("define", {"parent": "serial", "type": T})
        self.assertTrue(r["ok"], r)
        c.close()
        # Not in it at connect, in it by the time the daemon looks.
        self.d.signal(signal.SIGSTOP)
        try:
            c = self.conn_as(NOBODY.pw_uid, NOBODY.pw_gid)
            saved = os.getgroups()
            os.setgroups([gid])
        finally:
            self.d.signal(signal.SIGCONT)
        try:
            r = c.call("define", {"parent": "serial", "type": T})
        finally:
            os.setgroups(saved)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"]["code"], "EPERM", r)
        c.close()



if __name__ == "__main__":
    harness.main(flags=("test-hooks",))
