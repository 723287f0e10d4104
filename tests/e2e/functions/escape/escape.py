"""A handler that starts processes meant to outlive its environment, then ends its invoke as the event says.

`spawn`: "plain" (a child), "setsid" (a child in a session of its own) or "double-fork" (a grandchild in
a session of its own, whose parent has exited: it is reparented away from the runtime). Each runs
`sleep 600`. Before it goes on, the handler prints `escaped <runtime pid> <pid of what it started>`.
`then`: "return" (answer at once), "hang" (past the timeout), "exit" (the runtime exits, code 3),
"allocate" (past the memory limit).
"""

import os
import subprocess
import sys
import time

SLEEPER = ["sleep", "600"]


def _double_fork() -> int:
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_fd)
        os.setsid()
        grandchild = os.fork()
        if grandchild == 0:
            os.close(write_fd)
            os.execvp(SLEEPER[0], SLEEPER)
        os.write(write_fd, str(grandchild).encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(child, 0)
    with os.fdopen(read_fd, "rb") as pipe:
        return int(pipe.read())


def handler(event, context):
    spawn = event.get("spawn", "plain")
    if spawn == "double-fork":
        pid = _double_fork()
    else:
        pid = subprocess.Popen(SLEEPER, start_new_session=spawn == "setsid").pid
    print(f"escaped {os.getpid()} {pid}", flush=True)
    then = event.get("then", "return")
    if then == "hang":
        while True:
            time.sleep(60)
    if then == "exit":
        sys.stdout.flush()
        os._exit(3)
    if then == "allocate":
        blocks = []
        while True:
            blocks.append(b"m" * (16 * 1024 * 1024))
    return {"runtime": os.getpid(), "escaped": pid}


def gated(event, context):
    """Holds its invoke until the test writes a line to the FIFO `event["fifo"]` (e2e_harness.HeldInvoke)."""
    token = event["token"]
    print(f"holding {token} pid {os.getpid()}", flush=True)
    with open(event["fifo"], encoding="utf-8") as fifo:
        word = fifo.readline().strip()
    return {"token": token, "word": word, "request_id": context.aws_request_id}
