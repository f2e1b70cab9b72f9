"""available_instances accounting and resource exhaustion.

Generic over parents and types: the types come from `umdevctl types`, the
pools from `umdevd --help` (which lists every built-in PARENT.POOL and its
capacity), so a new parent is covered the day it is built in.

  * available_instances of a type drops by exactly one when an instance of
    it starts and rises back when it stops; types of the same parent never
    rise, types of other parents do not move;
  * with every pool lowered (`--pool PARENT.POOL=N`), each type is started
    until none is available, and one more start is refused with ENOSPC,
    naming the parent, leaving nothing behind.
"""

import os
import re
import subprocess

import harness
from harness import DaemonTestCase, new_uuid

SMALL = 5  # units every pool is lowered to in the exhaustion tests
# Pools an instance claims by its attributes, in units per instance of
# the default attributes: lowered to SMALL such instances, so that a
# define of one still fits (a size the pool can never hold is refused at
# define, test_nvme.py).
PER_INSTANCE = {("nvme", "storage_mib"): 1024}


def lowered(parent, pool, cap):
    return min(cap, SMALL * PER_INSTANCE.get((parent, pool), 1))


def builtin_pools():
    """[(parent, pool, capacity)] as `umdevd --help` lists them."""
    p = subprocess.run([harness.BIN["umdevd"], "--help"], capture_output=True,
                       timeout=harness.T_CMD)
    assert p.returncode == 0, p
    text = p.stdout.decode()
    head = "built-in pools (PARENT.POOL capacity):\n"
    assert head in text, text
    pools = re.findall(r"(?m)^  ([a-z0-9_]+)\.([a-z0-9_]+) (\d+)$",
                       text.split(head, 1)[1])
    assert pools, text
    return [(a, b, int(c)) for a, b, c in pools]


class Accounting(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.daemon()
        self.parent_of = {t["name"]: t["parent"]
                          for t in self.js("types")["types"]}

    def check_step(self, before, after, started, sign):
        """@sign -1: one instance of @started came; +1: one went."""
        p = self.parent_of[started]
        for t, n in after.items():
            if t == started:
                self.assertEqual(n, before[t] + sign, (t, before, after))
            elif self.parent_of[t] == p:
                # Shares the parent's pools: moves the same way or not.
                self.assertEqual(n, before[t] + sign * abs(n - before[t]),
                                 (t, before, after))
            else:
                self.assertEqual(n, before[t], (t, before, after))

    def test_start_stop_moves_availability(self):
        initial = self.types()
        self.assertEqual(set(initial), set(self.parent_of))
        # One instance of every type in turn, alternating transient and
        # defined starts, all kept running (mixed types of one parent and
        # of several parents), then stopped in reverse order.
        history = [initial]
        started = []
        for n, t in enumerate(sorted(initial)):
            before = history[-1]
            self.assertGreater(before[t], 0, before)
            if n % 2:
                u = self.ok("define", "-p", self.parent_of[t], "-t",
                            t).out.strip()
                self.start_instance(u)
            else:
                u = self.start_instance("-p", self.parent_of[t], "-t",
                                        t)["uuid"]
            after = self.types()
            self.check_step(before, after, t, -1)
            history.append(after)
            started.append((u, t))
        while started:
            u, t = started.pop()
            before = history.pop()
            self.ok("stop", u)
            after = self.types()
            self.check_step(before, after, t, +1)
            self.assertEqual(after, history[-1])
        self.assertEqual(self.types(), initial)

    def test_same_type_many(self):
        """Several instances of one type: one unit of availability each."""
        t = sorted(self.parent_of)[0]
        p = self.parent_of[t]
        n0 = self.types()[t]
        us = [self.start_instance("-p", p, "-t", t)["uuid"]
              for _ in range(4)]
        self.assertEqual(self.types()[t], n0 - 4)
        for k, u in enumerate(us):
            self.ok("stop", u, "--grace", "0")
            self.assertEqual(self.types()[t], n0 - 3 + k)


class Exhaustion(DaemonTestCase):

    def setUp(self):
        super().setUp()
        self.pools = builtin_pools()
        args = []
        for parent, pool, cap in self.pools:
            args += ["--pool", "%s.%s=%d" % (parent, pool,
                                             lowered(parent, pool, cap))]
        self.daemon(args)
        self.parent_of = {t["name"]: t["parent"]
                          for t in self.js("types")["types"]}

    def test_pools_lowered(self):
        for parent, pool, cap in self.pools:
            self.assertIn("pool %s.%s limited to %d of %d units" %
                          (parent, pool, lowered(parent, pool, cap), cap),
                          self.d.log())
        for t, n in self.types().items():
            self.assertLessEqual(n, SMALL, t)
        # serial-2port costs two ports: 5 ports make two instances.
        self.assertEqual(self.types()["serial-2port"], SMALL // 2)

    def exhaust(self, t):
        """Start instances of @t until none is available; return them."""
        p = self.parent_of[t]
        got = []
        for _ in range(SMALL + 1):
            if self.types()[t] == 0:
                return got
            got.append(self.start_instance("-p", p, "-t", t)["uuid"])
        self.fail("%s still available after %d starts" % (t, SMALL + 1))

    def test_each_type(self):
        initial = self.types()
        for t in sorted(initial):
            with self.subTest(type=t):
                p = self.parent_of[t]
                got = self.exhaust(t)
                self.assertEqual(len(got), initial[t])
                others = {k: v for k, v in self.types().items()
                          if self.parent_of[k] != p}
                running = self.instances()
                socks = self.sockets_in_rundir()
                # A transient start: refused, nothing half-created.
                u = new_uuid()
                self.refused("ENOSPC", "start", "-p", p, "-t", t, "-u", u,
                             says=["parent '%s' has no free resources" % p,
                                   t])
                self.assertIsNone(self.lookup(u))
                # A definition: refused, the definition stays stopped.
                d = self.ok("define", "-p", p, "-t", t).out.strip()
                self.refused("ENOSPC", "start", d,
                             says="parent '%s' has no free resources" % p)
                self.assertEqual(self.instance(d)["state"], "stopped")
                self.assertEqual(self.instances(), running)
                self.assertEqual(self.sockets_in_rundir(), socks)
                self.assertEqual(self.types()[t], 0)
                self.assertEqual({k: v for k, v in self.types().items()
                                  if self.parent_of[k] != p}, others)
                if not got:
                    # The lowered pools never held one of this type.
                    self.ok("undefine", d)
                    continue
                # One stops: the definition now starts.
                self.ok("stop", got.pop(), "--grace", "0")
                self.assertEqual(self.types()[t], 1)
                self.assertEqual(self.start_instance(d)["state"], "running")
                self.assertEqual(self.types()[t], 0)
                for u in got + [d]:
                    self.ok("stop", u, "--grace", "0")
                self.ok("undefine", d)
                self.assertEqual(self.types(), initial)
                self.assertEqual(self.sockets_in_rundir(), [])

    def test_exhausted_by_other_type_of_parent(self):
        """A type is exhausted by whatever holds its parent's pools."""
        by_parent = {}
        for t, p in self.parent_of.items():
            by_parent.setdefault(p, []).append(t)
        for p, ts in sorted(by_parent.items()):
            a = sorted(ts)[0]
            got = self.exhaust(a)
            # Every type of p that needs at least as much as a is out too.
            for t in ts:
                if self.types()[t] == 0:
                    self.refused("ENOSPC", "start", "-p", p, "-t", t,
                                 says="no free resources")
            for u in got:
                self.ok("stop", u, "--grace", "0")


class PoolOption(DaemonTestCase):
    """umdevd --pool: validation, and an empty pool."""

    def run_umdevd(self, *args):
        return subprocess.run([harness.BIN["umdevd"], "--rundir",
                               self.tmp + "/run", "--statedir",
                               self.tmp + "/state", "--control",
                               self.tmp + "/control"] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=harness.T_CMD)

    def test_bad_values(self):
        parent, pool, cap = builtin_pools()[0]
        cases = [
            ("%s.%s=%d" % (parent, pool, cap + 1),
             "N must be a number from 0 to %d" % cap),
            ("%s.%s=-1" % (parent, pool), "N must be a number"),
            ("%s.%s=lots" % (parent, pool), "N must be a number"),
            ("%s.%s=" % (parent, pool), "expected PARENT.POOL=N"),
            ("%s=4" % parent, "expected PARENT.POOL=N"),
            ("gpu.vram=4", "no parent named 'gpu'"),
            ("%s.nothing=4" % parent,
             "parent '%s' has no pool 'nothing'" % parent),
        ]
        for arg, says in cases:
            with self.subTest(arg=arg):
                p = self.run_umdevd("--pool", arg)
                self.assertEqual(p.returncode, 2, p)
                self.assertIn(says, p.stderr.decode())
        self.assertFalse(os.path.exists(self.tmp + "/control"))

    def test_empty_pool(self):
        parent = builtin_pools()[0][0]
        args = []
        for p, pool, _ in builtin_pools():
            if p == parent:
                # The last --pool for a pool wins.
                args += ["--pool", "%s.%s=1" % (p, pool),
                         "--pool", "%s.%s=0" % (p, pool)]
        self.daemon(args)
        types = self.js("types", "-p", parent)["types"]
        self.assertTrue(types)
        for t in types:
            self.assertEqual(t["available_instances"], 0, t)
            self.refused("ENOSPC", "start", "-p", t["parent"], "-t",
                         t["name"], says="no free resources")
        self.assertEqual(self.instances(), {})


if __name__ == "__main__":
    harness.main()
