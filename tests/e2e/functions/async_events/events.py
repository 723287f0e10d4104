"""The function of the Event-invoke suite (test_e2e_async.py): it writes down every run, so a test can count
deliveries without trusting the server.

Each run appends `{"request_id", "event"}` as one JSON line to $OUTPUT_FILE: after `sleep` seconds (so a
line means the run finished), before failing. `fail_times: N` makes the first N runs of a `token` raise: the
count comes from the lines already in the file, since environments do not survive an error.
"""

import json
import os
import time


def _runs_so_far(path, token):
    try:
        with open(path) as output:
            return sum(1 for line in output if json.loads(line)["event"].get("token") == token)
    except FileNotFoundError:
        return 0


def handler(event, context):
    path = os.environ["OUTPUT_FILE"]
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    token = event.get("token")
    earlier = _runs_so_far(path, token) if token is not None else 0
    with open(path, "a") as output:
        output.write(json.dumps({"request_id": context.aws_request_id, "event": event}) + "\n")
    if earlier < int(event.get("fail_times", 0)):
        raise RuntimeError(f"run {earlier + 1} of {token} fails on purpose")
    return {"token": token, "run": earlier + 1}
