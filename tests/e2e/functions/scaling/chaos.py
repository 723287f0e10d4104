"""Handlers for the scaling, limits, faults and soak suites: one handler, steered by the event.

Every answer echoes the caller's `token` and says which environment served it (pid, TMPDIR, initialization
type), so a test can tell that a response belongs to its request and which environment ran it.
"""

import os
import signal
import time

invocation_count = 0  # lives as long as the environment: 1 on a fresh one
retained: list[bytes] = []


def _describe(event, context):
    tmpdir = os.environ.get("TMPDIR", "")
    return {
        "token": event.get("token"),
        "request_id": context.aws_request_id,
        "pid": os.getpid(),
        "count": invocation_count,
        "tmpdir": tmpdir,
        "tmp_files": sorted(os.listdir(tmpdir)) if tmpdir and os.path.isdir(tmpdir) else None,
        "initialization_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
    }


def handler(event, context):
    """`action`: echo (default), raise, sleep, exit, sigkill, allocate, write_tmp."""
    global invocation_count
    invocation_count += 1
    action = event.get("action", "echo")
    if action == "raise":
        raise ValueError(f"raised for {event.get('token')}")
    if action == "sleep":
        time.sleep(float(event["seconds"]))
    elif action == "exit":
        os._exit(int(event.get("code", 3)))
    elif action == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "allocate":
        # Written, not just reserved: every page is touched, so it is resident.
        block = b"m" * (int(event["megabytes"]) * 1024 * 1024)
        if event.get("keep"):
            retained.append(block)
        if event.get("hold_seconds"):
            time.sleep(float(event["hold_seconds"]))  # give a watcher time to see the peak
        del block
    elif action == "write_tmp":
        # 1 MB at a time, so a file bigger than memory never sits in memory.
        chunk = b"t" * (1024 * 1024)
        with open(os.path.join(os.environ["TMPDIR"], event["name"]), "wb") as f:
            for _ in range(int(event["megabytes"])):
                f.write(chunk)
    return _describe(event, context)
