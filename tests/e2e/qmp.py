#!/usr/bin/env python3
"""One QMP command to a running QEMU, for the e2e scripts.

    qmp.py SOCKET COMMAND [ARGUMENTS-JSON]
    qmp.py SOCKET hmp 'HMP COMMAND LINE'

Connects to QEMU's QMP UNIX socket (-qmp unix:SOCKET,server=on,wait=off),
leaves capabilities negotiation, runs COMMAND with ARGUMENTS (a JSON
object) and prints its "return" value as one JSON line; `hmp` runs a
human monitor command (human-monitor-command) and prints its output as
QEMU wrote it. Asynchronous events that arrive meanwhile are skipped.
Exit status: 0 on success; 1 if QEMU answered with an error (its class
and description on stderr) or could not be reached; 2 on a usage error.
"""
import json
import socket
import sys

TIMEOUT_S = 30


def command(f, execute, arguments=None):
    msg = {"execute": execute}
    if arguments is not None:
        msg["arguments"] = arguments
    f.write(json.dumps(msg) + "\n")
    f.flush()
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("QEMU closed the QMP connection")
        reply = json.loads(line)
        if "event" not in reply:
            return reply


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    path, execute = argv[1], argv[2]
    if execute == "hmp":
        if len(argv) != 4:
            sys.stderr.write("qmp.py: hmp needs a command line\n")
            return 2
        arguments = {"command-line": argv[3]}
        execute = "human-monitor-command"
    else:
        try:
            arguments = json.loads(argv[3]) if len(argv) == 4 else None
        except ValueError as e:
            sys.stderr.write(f"qmp.py: arguments are not JSON: {e}\n")
            return 2
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT_S)
            s.connect(path)
            f = s.makefile("rw", encoding="utf-8")
            if "QMP" not in json.loads(f.readline()):
                raise ConnectionError("no QMP greeting")
            command(f, "qmp_capabilities")
            reply = command(f, execute, arguments)
    except (OSError, ValueError, ConnectionError) as e:
        sys.stderr.write(f"qmp.py: {path}: {e}\n")
        return 1
    if "error" in reply:
        err = reply["error"]
        sys.stderr.write(f"{err.get('class')}: {err.get('desc')}\n")
        return 1
    ret = reply.get("return")
    if argv[2] == "hmp":
        sys.stdout.write(ret)
    else:
        print(json.dumps(ret))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
