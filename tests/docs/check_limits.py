#!/usr/bin/env python3
"""The limits docs/PROTOCOL.md and docs/CONTROL.md list are the code's.

Every row of their "Limits" tables (and every limit the prose names as
"`NAME` (VALUE, FILE)") must be a #define in the file the row names, or
for CONTROL.md in daemon/control.c, daemon/supervisor.c or daemon/defs.c,
with the value the row states. Each one is also either held at its limit and one
past it by the tests that TESTS below names (each must exist), or listed
in NOT_BOUNDS (a default or a fact, not a bound) or UNTESTED (a bound
without such a test yet, with why), so a limit added to a table without
a test fails here until someone decides.

Usage: check_limits.py SOURCE_DIR
"""
import os
import re
import sys

# Limit -> the tests that hold it at the limit and one past it, as
# "file::function" (a C function or a Python method).
TESTS = {
    "UMDEV_WIRE_HDR_SIZE": ["tests/unit/test_wire_frame.c::test_bad_headers"],
    "UMDEV_WIRE_MAX_MSG_FDS": [
        "tests/func/test_func_dma_irq.c::test_fds_per_message_limit",
        "tests/func/test_func_protocol.c::test_too_many_fds"],
    "UMDEV_WIRE_MAX_SPARSE_AREAS": [
        "tests/func/test_func_io.c::test_sparse_areas_limit",
        "tests/func/test_func_client.c::test_sparse_areas_received"],
    "UMDEV_WIRE_MAX_CONTROL_PAYLOAD": [
        "tests/func/test_func_client.c::test_region_info_argsz_followed"],
    "CONN_DEFAULT_TIMEOUT_MS": [
        "tests/func/test_func_client.c::test_default_timeout"],
    "UMDEV_WIRE_MAX_VERSION_JSON": [
        "tests/unit/test_wire.c::test_version_json_bounds"],
    "UMDEV_WIRE_MAX_WRITE_MULTI": ["tests/unit/test_wire.c::test_write_multi"],
    "UMDEV_WIRE_MAX_LOG_RANGES": [
        "tests/unit/test_wire.c::test_feature_logging"],
    "UMDEV_MIG_MAX_STATE": [
        "tests/func/test_func_migration.c::test_stream_size_bound"],
    "UMDEV_HANDOVER_FDS_PER_MSG": [
        "tests/unit/test_handover_xfer.c::test_roundtrip_chunks"],
    "CONN_MAX_QUEUED_MSGS": [
        "tests/unit/test_dev_dma_async.c::test_conn_queue_bound"],
    "CONN_MAX_QUEUED_BYTES": [
        "tests/unit/test_dev_dma_async.c::test_conn_queue_bound"],
    "UMDEV_DMA_MAX_PENDING": [
        "tests/unit/test_dev_dma_async.c::test_pending_bound"],
    "UMDEV_DMA_LOG_MAX_BITMAP_BYTES": [
        "tests/func/test_func_migration.c::test_dma_log_bitmap_bound"],
    "UMDEV_DMA_MAX_PENDING_BYTES": [
        "tests/unit/test_dev_dma_async.c::test_pending_byte_bound"],
    "CONN_TX_MAX_QUEUED": [
        "tests/unit/test_conn_tx.c::test_queue_at_limit",
        "tests/unit/test_conn_tx.c::test_queue_past_limit",
        "tests/func/test_func_fair.c::test_tx_limit_reached",
        "tests/func/test_func_fair.c::test_tx_limit_passed"],
    "UMDEV_SERVER_MSGS_PER_WAKE": [
        "tests/func/test_func_fair.c::test_msgs_per_wake_at_limit",
        "tests/func/test_func_fair.c::test_msgs_per_wake_past_limit"],
    "SERVER_MAX_REFUSING": [
        "tests/func/test_func_lifecycle.c::test_refusing_at_limit"],
    "SERVER_REFUSE_WAIT_MS": [
        "tests/func/test_func_lifecycle.c::test_refuse_wait"],
    "SERVER_REFUSE_LOG_BURST": [
        "tests/func/test_func_lifecycle.c::test_second_clients_silent"],
    "UMDEV_MAX_REGIONS": ["tests/func/test_func_io.c::test_device_bounds"],
    "UMDEV_MAX_IRQ_VECTORS": ["tests/func/test_func_io.c::test_device_bounds"],
    "UMDEV_DEFAULT_MAX_DMA_MAPS": [
        "tests/unit/test_dma_limits.c::test_device_limit",
        "tests/func/test_func_dma_irq.c::test_dma_maps_at_limit"],
    "UMDEV_PROCESS_MAX_DMA_MAPS": [
        "tests/unit/test_dma_limits.c::test_process_limit"],
    "CTL_MAX_CONNS": ["tests/daemon/test_control.py::test_connections_in_total"],
    "CTL_MAX_READER_CONNS": [
        "tests/daemon/test_control.py::test_connections_of_all_readers"],
    "CTL_MAX_CONNS_PER_UID": [
        "tests/daemon/test_control.py::test_connections_per_uid"],
    "CTL_MAX_LINE": ["tests/daemon/test_control.py::test_line_limits"],
    "CTL_MAX_READER_LINE": ["tests/daemon/test_control.py::test_line_limits"],
    "CTL_LINE_TIMEOUT_MS": [
        "tests/daemon/test_control.py::test_partial_lines_and_idle_readers"],
    "CTL_IDLE_TIMEOUT_MS": [
        "tests/daemon/test_control.py::test_partial_lines_and_idle_readers"],
    "CTL_MAX_REQUESTS_PER_TURN": [
        "tests/daemon/test_control.py::test_requests_per_turn"],
    "CTL_MAX_OUT": ["tests/daemon/test_control.py::test_answer_limit"],
    "DEF_MAX_SIZE": [
        "tests/daemon/test_persist.py::test_definition_size_limit"],
    "INFO_TIMEOUT_MS": [
        "tests/daemon/test_safety.py::test_read_answered_within_timeout",
        "tests/daemon/test_safety.py::test_reads_do_not_kill"],
}

# Values that bound nothing a peer does: the spec's defaults and ours.
NOT_BOUNDS = {
    "UMDEV_WIRE_DEFAULT_MAX_MSG_FDS": "the spec's default for a peer",
    "UMDEV_WIRE_DEFAULT_MAX_DATA_XFER": "the spec's default for a peer",
    "UMDEV_WIRE_DEFAULT_MAX_DMA_MAPS": "the spec's default for a peer",
}

# Bounds without a test at the limit and one past it yet.
UNTESTED = {
    "UMDEV_HANDOVER_MAX_BYTES": "refused one past it "
                                "(test_handover_xfer.c::test_refused_frames); "
                                "a package at the limit is not built",
    "UMDEV_HANDOVER_MAX_FDS": "refused one past it "
                              "(test_handover_xfer.c::test_refused_frames); "
                              "8192 descriptors at once exceed the test's "
                              "soft limit",
    "RX_MAX_TAGS": "unreachable from a peer: one fd batch per recvmsg() "
                   "and reads only without a whole message buffered leave "
                   "two pending at most (lib/conn/conn.c)",
}

UNITS = {"KiB": 1024, "MiB": 1024 * 1024}


def fail(problems):
    for p in problems:
        print("docs.limits: FAIL: " + p, flush=True)
    sys.exit(1)


def limits_table(text, doc):
    """Rows of the table under the "## Limits" heading: (name, cells)."""
    m = re.search(r"^## Limits\n(.*?)(?=^## )", text, re.M | re.S)
    if m is None:
        raise ValueError("%s has no '## Limits' section" % doc)
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(r"`[A-Z0-9_]+`", cells[0]):
            rows.append((cells[0].strip("`"), cells[1:]))
    if not rows:
        raise ValueError("%s: no limits in its table" % doc)
    return rows


def doc_value(cell):
    """The number a value cell starts with: "4096", "1 MiB: ...",
    "5000: ...", "16 requests ..."."""
    m = re.match(r"(\d+)(?:\s*(KiB|MiB)\b)?", cell)
    if m is None:
        return None
    return int(m.group(1)) * UNITS.get(m.group(2), 1)


def defines(path):
    out = {}
    with open(path) as f:
        text = f.read()
    # Joined continuation lines; comments dropped.
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = text.replace("\\\n", " ")
    for m in re.finditer(r"^\s*#\s*define\s+([A-Z0-9_]+)\s+(.+)$", text, re.M):
        out.setdefault(m.group(1), m.group(2).strip())
    return out


def evaluate(expr, env, seen=()):
    """The value of a C integer constant expression of numbers, other
    constants in @env, + - * / << >> and parentheses."""
    expr = re.sub(r"\((?:size_t|uint\d+_t|int|unsigned( int)?)\)", "", expr)
    expr = re.sub(r"\b(0x[0-9a-fA-F]+|\d+)[uUlL]*\b", r"\1", expr)

    def name(m):
        n = m.group(0)
        if n in seen or n not in env:
            raise ValueError("cannot evaluate %s" % n)
        return "(%d)" % evaluate(env[n], env, seen + (n,))
    expr = re.sub(r"\b[A-Za-z_][A-Za-z0-9_]*\b", name, expr)
    if not re.fullmatch(r"[0-9x()+\-*/<> a-fA-F]*", expr):
        raise ValueError("not a constant expression: %s" % expr)
    return int(eval(expr.replace("/", "//"), {"__builtins__": {}}))


def find_function(src, path, func):
    full = os.path.join(src, path)
    try:
        with open(full) as f:
            text = f.read()
    except OSError as e:
        return "%s: %s" % (path, e)
    if path.endswith(".py"):
        ok = re.search(r"^\s+def %s\(" % re.escape(func), text, re.M)
    else:
        ok = re.search(r"^%s\(" % re.escape(func), text, re.M)
    return None if ok else "%s has no test %s" % (path, func)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    problems = []
    headers = {}
    for d in ("include/umdev",):
        for n in os.listdir(os.path.join(src, d)):
            if n.endswith(".h"):
                headers.update(defines(os.path.join(src, d, n)))
    found = {}

    def check(doc, name, value_cell, files):
        env = dict(headers)
        here = {}
        for f in files:
            here.update(defines(os.path.join(src, f)))
        env.update(here)
        if name not in here:
            problems.append("%s: %s is not a #define in %s" %
                            (doc, name, " or ".join(files)))
            return
        want = doc_value(value_cell)
        if want is None:
            problems.append("%s: %s: no value in '%s'" %
                            (doc, name, value_cell))
            return
        try:
            got = evaluate(here[name], env)
        except ValueError as e:
            problems.append("%s: %s: %s" % (doc, name, e))
            return
        if got != want:
            problems.append("%s says %s is %d; %s defines it as %s = %d" %
                            (doc, name, want, " or ".join(files),
                             here[name], got))
        found[name] = doc

    where = {"wire.h": "include/umdev/wire.h", "dev.h": "include/umdev/dev.h"}
    with open(os.path.join(src, "docs/PROTOCOL.md")) as f:
        proto = f.read()
    for name, cells in limits_table(proto, "PROTOCOL.md"):
        path = where.get(cells[1], cells[1])
        check("PROTOCOL.md", name, cells[0], [path])
    # Limits named in the prose: "`NAME` (VALUE, FILE)".
    for m in re.finditer(r"`([A-Z][A-Z0-9_]+)` \((\d+), ([\w/.]+\.[ch])\)",
                         proto):
        check("PROTOCOL.md", m.group(1), m.group(2), [m.group(3)])
    with open(os.path.join(src, "docs/CONTROL.md")) as f:
        control = f.read()
    for name, cells in limits_table(control, "CONTROL.md"):
        check("CONTROL.md", name, cells[0],
              ["daemon/control.c", "daemon/supervisor.c", "daemon/defs.c"])

    for name in found:
        sets = [name in TESTS, name in NOT_BOUNDS, name in UNTESTED]
        if sum(sets) != 1:
            problems.append("%s (%s): name it in exactly one of TESTS, "
                            "NOT_BOUNDS, UNTESTED of %s" %
                            (name, found[name], os.path.basename(__file__)))
        for t in TESTS.get(name, ()):
            path, func = t.split("::")
            p = find_function(src, path, func)
            if p is not None:
                problems.append("%s: %s" % (name, p))
    for table in (TESTS, NOT_BOUNDS, UNTESTED):
        for name in table:
            if name not in found and not any(name in p for p in problems):
                problems.append("%s is listed here but in no docs table" %
                                name)
    if problems:
        fail(problems)
    print("docs.limits: %d limits match the code (%d held at limit and "
          "limit+1 by tests, %d not bounds, %d untested: %s)" %
          (len(found), len(TESTS), len(NOT_BOUNDS), len(UNTESTED),
           ", ".join(sorted(UNTESTED))))


if __name__ == "__main__":
    main()
