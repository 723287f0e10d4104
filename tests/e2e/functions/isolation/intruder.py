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
