"""`make demo-queue`: moto's SQS server, the `orders` queue, rapidboot serving examples/queue/template.yaml,
ten orders sent; the function's log shows them taken, the malformed one retried once on its own. Then the
template's schedule (`SummarySchedule`, `rate(1 minute)`): `rapidboot schedules` lists its next firings, and
the server is started with it overridden (`--parameter-overrides`) to a one-time `at(...)` a few seconds
ahead, so the demo shows a real firing (timer, durable queue, Event invoke) without waiting a minute.

What a user types is in README.md: moto (or any SQS endpoint) in one terminal, `rapidboot serve` with
AWS_ENDPOINT_URL_SQS in another, and `aws sqs send-message` in a third. This script does the same with a
copy of the example (the runtimes write nothing into the repository), and stops once the queue is empty.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rapidboot.benchmarks.moto_server import running_moto

HERE = Path(__file__).resolve().parent
READY = re.compile(r"listening on http://")
FIRED = re.compile(r"summary: scheduled by")
AT_AHEAD_S = 4  # the one-time firing: after the server is ready (it starts in well under a second)
DEADLINE_S = 60
ORDERS = [{"id": i, "item": item, "quantity": i % 3 + 1} for i, item in enumerate(["tea", "cake", "jam"] * 3)]
ORDERS.append({"id": 9, "item": "scones", "quantity": "a dozen"})  # the malformed one


def main() -> int:
    import boto3

    with running_moto() as moto, tempfile.TemporaryDirectory(prefix="rapidboot-demo-queue-") as scratch:
        print(f"moto's SQS server at {moto.endpoint}")
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto.endpoint, **_keys())
        # The queue the template declares (OrdersQueue): on AWS, CloudFormation creates it; here, we do.
        url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
        print(f"created {url}")
        project = shutil.copytree(
            HERE, Path(scratch) / "queue", ignore=shutil.ignore_patterns("demo.py", "__pycache__")
        )
        env = {**os.environ, **moto.environment()}  # AWS_ENDPOINT_URL_SQS: the mapping polls moto
        rapidboot = [sys.executable, "-m", "rapidboot.rapid_server"]
        print("$ rapidboot schedules --count 3")
        subprocess.run([*rapidboot, "schedules", "--count", "3"], cwd=project, check=True)
        at = (datetime.now(UTC) + timedelta(seconds=AT_AHEAD_S)).strftime("%Y-%m-%dT%H:%M:%S")
        override = f"SummarySchedule=at({at})"
        print(f"$ AWS_ENDPOINT_URL_SQS={moto.endpoint} rapidboot serve --parameter-overrides '{override}'")
        server = subprocess.Popen(
            [*rapidboot, "serve", "--port", "0", "--no-watch", "--parameter-overrides", override],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready, fired = threading.Event(), threading.Event()
        threading.Thread(target=_relay, args=(server, ready, fired), daemon=True).start()
        try:
            if not ready.wait(DEADLINE_S):
                print("the server did not start")
                return 1
            for order in ORDERS:
                sqs.send_message(QueueUrl=url, MessageBody=json.dumps(order))
            print(f"sent {len(ORDERS)} orders")
            if not _wait_empty(sqs, url):
                return 1
            if not fired.wait(DEADLINE_S):
                print(f"the schedule did not fire at {at}")
                return 1
            return 0
        finally:
            server.terminate()
            server.wait(30)


def _relay(server: subprocess.Popen[str], ready: threading.Event, fired: threading.Event) -> None:
    """The server's log, minus the platform's START/END/REPORT lines."""
    assert server.stdout is not None
    for line in server.stdout:
        if READY.search(line):
            ready.set()
        if FIRED.search(line):
            fired.set()
        if not line.startswith(("START ", "END ", "REPORT ")):
            print(line, end="", flush=True)


def _wait_empty(sqs: object, url: str) -> bool:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(  # type: ignore[attr-defined]
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if (
            int(attributes["ApproximateNumberOfMessages"])
            + int(attributes["ApproximateNumberOfMessagesNotVisible"])
            == 0
        ):
            print("the queue is empty: every order taken, and deleted")
            return True
        time.sleep(0.25)
    print(f"the queue still holds messages after {DEADLINE_S} s")
    return False


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


if __name__ == "__main__":
    sys.exit(main())
