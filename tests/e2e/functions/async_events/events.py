"""The function of the Event-invoke suite (test_e2e_async.py): it writes down every run, so a test can count
deliveries without trusting the server.

Each run appends `{"request_id", "event"}` as one JSON line to $OUTPUT_FILE: after `sleep` seconds (so a
line means the run finished), before failing. `fail_times: N` makes the first N runs of a `token` raise: the
count comes from the lines already in the file, since environments do not survive an error.
"""

import json
import os
import time


def _complete_lines(path):
    """The lines another run has finished writing (a concurrent run may be mid-way through its line)."""
    try:
        with open(path, "rb") as output:
            data = output.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data.split(b"\n")[:-1] if line.strip()]


def _runs_so_far(path, token):
    return sum(1 for run in _complete_lines(path) if run["event"].get("token") == token)


def handler(event, context):
    path = os.environ["OUTPUT_FILE"]
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    token = event.get("token")
    earlier = _runs_so_far(path, token) if token is not None else 0
    line = (json.dumps({"request_id": context.aws_request_id, "event": event}) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one append: concurrent runs never interleave inside a line
    finally:
        os.close(fd)
    if earlier < int(event.get("fail_times", 0)):
        raise RuntimeError(f"run {earlier + 1} of {token} fails on purpose")
    return {"token": token, "run": earlier + 1}
