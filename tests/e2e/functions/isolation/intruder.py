"""Handlers that use a Runtime API: another environment's (an intruder) or their own from a child process.

Each returns what it saw instead of raising, so the test reads the outcome from the invoke's answer."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys

_POST_ANSWER = """
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
connection = http.client.HTTPConnection(host, int(port), timeout=10)
connection.request("POST", f"/2018-06-01/runtime/invocation/{sys.argv[2]}/response", body=sys.argv[3])
print(connection.getresponse().status)
"""


def runtime_api_of(pid: int) -> str:
    """Another process's AWS_LAMBDA_RUNTIME_API, read as any local process can read it."""
    with open(f"/proc/{pid}/environ", "rb") as environ:
        for entry in environ.read().split(b"\0"):
            if entry.startswith(b"AWS_LAMBDA_RUNTIME_API="):
                return entry.split(b"=", 1)[1].decode()
    raise LookupError(f"no AWS_LAMBDA_RUNTIME_API in the environment of pid {pid}")


def answer_for(event: dict, context: object) -> dict:
    """Post an answer for another environment's invoke (`request_id`, run by `pid`) to its Runtime API."""
    host, port = runtime_api_of(int(event["pid"])).rsplit(":", 1)
    path = f"/2018-06-01/runtime/invocation/{event['request_id']}/response"
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("POST", path, body=json.dumps({"token": "STOLEN"}))
        response = connection.getresponse()
        return {"reached": True, "status": response.status, "pid": os.getpid()}
    except OSError as error:
        return {"reached": False, "error": type(error).__name__, "pid": os.getpid()}


def child_uses_own_api(event: dict, context: object) -> dict:
    """A child process of the runtime opens its own connection to the environment's Runtime API and posts
    for an unknown request id: an HTTP answer (400) shows it was let in."""
    completed = subprocess.run(
        [sys.executable, "-c", _POST_ANSWER, os.environ["AWS_LAMBDA_RUNTIME_API"], "no-such-id", "{}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return {"child_status": completed.stdout.strip(), "child_error": completed.stderr[-500:]}


_ESCAPE_AND_POST = """
import os, sys, time
result_fifo = sys.argv[4]
intermediate = os.getpid()
if os.fork():
    os._exit(0)  # the intermediate: its child is orphaned, out of the runtime's process tree
while os.getppid() == intermediate:  # wait until the orphan has been reparented
    time.sleep(0.001)
import http.client
host, port = sys.argv[1].rsplit(":", 1)
try:
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", f"/2018-06-01/runtime/invocation/{sys.argv[2]}/response", body=sys.argv[3])
    outcome = str(connection.getresponse().status)
except OSError as error:
    outcome = type(error).__name__
with open(result_fifo, "w") as fifo:
    fifo.write(outcome)
"""


def escaped_child_uses_own_api(event: dict, context: object) -> dict:
    """A grandchild that left the runtime's process tree (setsid and a double fork) but is still one of the
    environment's processes (its cgroup) posts for an unknown request id: 400 shows it was let in."""
    fifo = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"escaped-{os.getpid()}.fifo")
    os.mkfifo(fifo)
    try:
        subprocess.run(
            [
                sys.executable,
                "-c",
                _ESCAPE_AND_POST,
                os.environ["AWS_LAMBDA_RUNTIME_API"],
                "no-such-id",
                "{}",
                fifo,
            ],
            start_new_session=True,
            check=True,
            timeout=30,
        )
        with open(fifo) as result:  # blocks until the orphan has its answer
            return {"child_status": result.read().strip()}
    finally:
        os.unlink(fifo)
