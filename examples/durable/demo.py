"""`make demo-durable`: the order workflow of examples/durable/orders, run as a user would run it.

    rapidboot serve --config examples/durable/rapidboot.toml --durable-time-scale 86400   # a day a second
    rapidboot invoke orders --invocation-type Event --durable-execution-name order-1 --payload '...'
    rapidboot executions history ARN        # ... until the approval's CallbackStarted
    rapidboot callback succeed CALLBACK_ID --result approved
    rapidboot executions get ARN            # SUCCEEDED, with the result

The script starts them, waits for the server's readiness line, and polls with a deadline (the wait of a
day lasts a second here).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
READY = re.compile(r"listening on (http://[0-9.]+:\d+)")
RAPIDBOOT = [sys.executable, "-m", "rapidboot.rapid_server"]  # the `rapidboot` command, with this interpreter
DEADLINE_S = 60


def main() -> int:
    state = HERE / ".rapidboot"
    config = HERE / "rapidboot.toml"
    serve = [*RAPIDBOOT, "serve", "--config", str(config), "--port", "0", "--state-dir", str(state)]
    server = subprocess.Popen([*serve, "--durable-time-scale", "86400"], stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    try:
        endpoint = ""
        for line in server.stderr:
            if match := READY.search(line):
                endpoint = match[1]
                break
        if not endpoint:
            print("the server did not start", file=sys.stderr)
            return 1
        shown = config.relative_to(HERE.parent.parent)
        print(f"$ rapidboot serve --config {shown} --durable-time-scale 86400\n")
        name = f"order-{uuid.uuid4().hex[:8]}"
        payload = json.dumps(
            {"id": name, "items": [{"sku": "book", "price": 25}, {"sku": "pen", "price": 3}]}
        )
        done = run(
            endpoint,
            "invoke",
            "orders",
            "--invocation-type",
            "Event",
            "--durable-execution-name",
            name,
            "--payload",
            payload,
        )
        arn = done.stderr.strip().split()[-1]
        print(
            f"$ rapidboot invoke orders --invocation-type Event --durable-execution-name {name} ...\n{arn}\n"
        )
        callback_id = poll(lambda: callback_of(run(endpoint, "executions", "history", arn).stdout))
        print("$ rapidboot executions history ARN   # waited a day (a second), now waits for approval")
        print(run(endpoint, "executions", "history", arn).stdout)
        print(f"$ rapidboot callback succeed {callback_id[:16]}... --result approved")
        print(run(endpoint, "callback", "succeed", callback_id, "--result", "approved").stdout)
        record = poll(lambda: finished(run(endpoint, "executions", "get", arn).stdout))
        outcome = record.get("Result") or record.get("Error")
        print(f"$ rapidboot executions get ARN\n{record['Status']}: {outcome}")
        return 0 if record["Status"] == "SUCCEEDED" else 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)


def run(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*RAPIDBOOT, args[0], "--endpoint", endpoint, *args[1:]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done


def poll(probe):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if (found := probe()) is not None:
            return found
        time.sleep(0.2)
    raise SystemExit(f"nothing after {DEADLINE_S} s")


def callback_of(history: str) -> str | None:
    for line in history.splitlines():
        if "CallbackStarted" in line:
            return str(json.loads(line[line.index("{") :])["CallbackId"])
    return None


def finished(shown: str) -> dict[str, str] | None:
    record: dict[str, str] = json.loads(shown)
    return None if record["Status"] == "RUNNING" else record


if __name__ == "__main__":
    sys.exit(main())
