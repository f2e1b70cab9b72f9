#!/usr/bin/env python3
"""Host half of tests/e2e/serial.sh: the far end of both serial ports.

For each port (one thread each) it connects to the port's host-end UNIX
socket, then follows the guest script (serial-guest.sh) phase by phase:

  1. guest -> host: receive exactly LEN bytes (the guest's pattern), timed
     from the first byte to the last;
  2. wait for "READY portN" on the control channel (the guest's reader is
     open), then send LEN bytes of the host's pattern;
  3. receive the END token, which the guest sends after its loopback test:
     a looped byte that leaked to the host end would arrive before it.

The control channel is a UNIX socket this listens on (--ctl) and QEMU
connects a second ISA UART of the guest to; it carries lines from the
guest only, on an interrupt line of its own.

Files written to OUT_DIR for serial.sh to check with cmp and sha256sum:
  portN.g2h.expect  the pattern the guest should send (computed here)
  portN.g2h.bin     what actually arrived
  portN.h2g.bin     the pattern sent to the guest
  portN.host        key=value results (status, timings, error)
  connected         created once both ports are connected

The pattern generator is written independently of serial-tool.c's (same
definition: xorshift32 13/17/5 from seed * 0x9E3779B1 + 0x7F4A7C15, one
byte per step from bits 31:24), so a bug on either side shows as a
mismatch instead of cancelling out.
"""

import argparse
import os
import socket
import sys
import threading
import time

END_TOKEN = b"\nUMDEV-E2E-END\n"
MASK32 = 0xFFFFFFFF


def pattern(seed, length):
    x = (seed * 0x9E3779B1 + 0x7F4A7C15) & MASK32
    if x == 0:
        x = 1
    out = bytearray(length)
    for i in range(length):
        x ^= (x << 13) & MASK32
        x ^= x >> 17
        x ^= (x << 5) & MASK32
        out[i] = x >> 24
    return bytes(out)


class PortError(Exception):
    pass


def recv_exact(sock, n, deadline, what):
    """Receive exactly n bytes; return (data, t_first, t_last)."""
    buf = bytearray()
    t_first = t_last = None
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PortError(f"timed out waiting for {what}: got {len(buf)} "
                            f"of {n} bytes, last ones {bytes(buf[-32:])!r}")
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(65536, n - len(buf)))
        except socket.timeout:
            continue
        if not chunk:
            raise PortError(f"host end closed while waiting for {what}: got "
                            f"{len(buf)} of {n} bytes")
        t_last = time.monotonic()
        if t_first is None:
            t_first = t_last
        buf += chunk
    return bytes(buf), t_first, t_last


def expect_token(sock, token, deadline, what):
    data, _, _ = recv_exact(sock, len(token), deadline, what)
    if data != token:
        raise PortError(f"expected the {what} {token!r}, got {data!r}")


def connect(path, deadline):
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except FileNotFoundError as e:
            # Not there yet. (Once it is, it listens: the serial parent
            # makes the path appear only then.)
            s.close()
            if time.monotonic() >= deadline:
                raise PortError(f"cannot connect to {path}: {e}") from e
            time.sleep(0.05)


class Control:
    """The control channel: "READY portN" lines from the guest."""

    def __init__(self, path):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.cond = threading.Condition()
        self.seen = set()
        self.junk = []

    def run(self, deadline):
        self.listener.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        buf = b""
        with conn:
            while True:
                conn.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    chunk = conn.recv(4096)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.strip(b"\r\0 ").decode(errors="replace")
                    with self.cond:
                        if line.startswith("READY "):
                            self.seen.add(line)
                        elif line:
                            self.junk.append(line)
                        self.cond.notify_all()

    def wait(self, line, deadline):
        with self.cond:
            while line not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PortError(f"no '{line}' on the control channel")
                self.cond.wait(left)


def run_port(idx, path, seeds, length, out, deadline, connected, results,
             ctl):
    res = {"status": "fail", "waiting_for": "connection"}
    results[idx] = res

    def save():
        # After every step: if serial.sh has to kill us, the file still
        # says how far this port got.
        with open(os.path.join(out, f"port{idx}.host"), "w") as f:
            for k, v in res.items():
                f.write(f"{k}={v}\n")

    save()
    g2h_expect = pattern(seeds[0], length)
    h2g = pattern(seeds[1], length)
    with open(os.path.join(out, f"port{idx}.g2h.expect"), "wb") as f:
        f.write(g2h_expect)
    with open(os.path.join(out, f"port{idx}.h2g.bin"), "wb") as f:
        f.write(h2g)
    sock = None
    try:
        sock = connect(path, deadline)
        connected[idx].set()
        res["waiting_for"] = "guest-to-host bytes"
        save()
        data, t0, t1 = recv_exact(sock, length, deadline, "the guest's pattern")
        with open(os.path.join(out, f"port{idx}.g2h.bin"), "wb") as f:
            f.write(data)
        res["g2h_bytes"] = len(data)
        res["g2h_seconds"] = f"{t1 - t0:.3f}"
        # First to last byte: the rate of the bytes in between.
        res["g2h_bytes_per_s"] = (int((len(data) - 1) / (t1 - t0))
                                  if t1 > t0 else 0)
        res["waiting_for"] = "READY on the control channel"
        save()
        ctl.wait(f"READY port{idx}", deadline)
        # Flow control holds what the guest has not taken in the socket
        # buffer, so sendall() returning says nothing about the guest: the
        # guest times this direction.
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        sock.sendall(h2g)
        res["waiting_for"] = "END token after loopback"
        save()
        expect_token(sock, END_TOKEN, deadline, "END token after loopback")
        del res["waiting_for"]
        res["status"] = "pass"
    except (PortError, OSError) as e:
        res["error"] = str(e)
    finally:
        connected[idx].set()
        if sock is not None:
            sock.close()
        save()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=lambda s: int(s, 0), required=True,
                    help="base seed; port N uses seed+2N+1 (guest->host) "
                         "and seed+2N+2 (host->guest)")
    ap.add_argument("--len", type=int, required=True, dest="length")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--ctl", required=True,
                    help="control channel socket to listen on")
    ap.add_argument("ports", nargs="+", help="host-end socket per port")
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    results = [None] * len(a.ports)
    connected = [threading.Event() for _ in a.ports]
    ctl = Control(a.ctl)
    threading.Thread(target=ctl.run, args=(deadline,), daemon=True).start()
    threads = []
    for i, path in enumerate(a.ports):
        seeds = ((a.seed + 2 * i + 1) & MASK32, (a.seed + 2 * i + 2) & MASK32)
        t = threading.Thread(target=run_port, daemon=True,
                             args=(i, path, seeds, a.length, a.out, deadline,
                                   connected, results, ctl))
        t.start()
        threads.append(t)
    for ev in connected:
        ev.wait()
    if all(r is not None and "error" not in r for r in results):
        open(os.path.join(a.out, "connected"), "w").close()
    for t in threads:
        t.join()
    rc = 0
    for line in ctl.junk:
        print(f"serial-host: unexpected control line '{line}'",
              file=sys.stderr)
        rc = 1
    for i, r in enumerate(results):
        if r["status"] != "pass":
            print(f"serial-host: port{i}: {r.get('error', 'failed')}",
                  file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
