"""End-to-end throughput of an SQS event source mapping: MESSAGES messages sent to moto's standalone server,
drained through `rapidboot serve` by a trivial function with BatchSize=10.

Reports messages/s and the time to empty the queue (from the server's readiness to the queue's last
message deleted), the poller scaling the server logged, the CPU each process spent (moto's server, our
server, the function's runtimes: /proc), and the warm-invoke latency of another function through the
Invoke API while the pollers run against idle (the event loop must not wait on boto3). moto is a
single-process Python server: at ~100% of one core it is the bottleneck, and our server has CPU to spare.

    python -m rapidboot.benchmarks.sqs_mapping [--messages 10000] [--batch-size 10] [--maximum-concurrency N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rapidboot.benchmarks.local_server import READY
from rapidboot.benchmarks.moto_server import MotoServer, running_moto

HANDLER = "def handler(event, context):\n    return {'batchItemFailures': []}\n"
PROBE = "def handler(event, context):\n    return event\n"
QUEUE = "bench"
SEND_BATCH = 10  # SendMessageBatch's most
PROBE_SAMPLES = 200


@dataclass(slots=True)
class Result:
    messages: int
    drain_s: float
    pollers: list[str]
    cpu_s: dict[str, float]
    idle_ms: list[float]
    busy_ms: list[float]
    send_s: float | None  # the producer's time to send them all (None: sent before the drain)

    def lines(self) -> list[str]:
        rate = self.messages / self.drain_s
        out = [
            f"{self.messages} messages drained in {self.drain_s:.1f} s: {rate:.0f} messages/s"
            + (
                f" (sent meanwhile by one producer, which took {self.send_s:.1f} s)"
                if self.send_s is not None
                else " (all sent before)"
            ),
            f"poller scaling: {', '.join(self.pollers) or 'none logged'}",
            "CPU during the drain (s, and share of one core):",
        ]
        out += [
            f"  {name:28} {seconds:7.2f} s  {100 * seconds / self.drain_s:5.0f}%"
            for name, seconds in self.cpu_s.items()
        ]
        out.append(
            "warm invoke of another function while draining (the event loop's latency): "
            f"p50 {_p(self.busy_ms, 50):.2f} ms, p99 {_p(self.busy_ms, 99):.2f} ms; idle p50 "
            f"{_p(self.idle_ms, 50):.2f} ms, p99 {_p(self.idle_ms, 99):.2f} ms"
        )
        return out


def _p(values: list[float], percentile: int) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * percentile // 100)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (/proc/PID/stat), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def fill(sqs: Any, url: str, messages: int) -> None:
    for start in range(0, messages, SEND_BATCH):
        entries = [
            {"Id": str(i), "MessageBody": json.dumps({"n": start + i})}
            for i in range(min(SEND_BATCH, messages - start))
        ]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def queue_size(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def probe(client: httpx.Client, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.post("/2015-03-31/functions/probe/invocations", content=b"{}")
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return times


def run(
    messages: int, batch_size: int, maximum_concurrency: int | None, directory: Path, prefill: bool
) -> Result:
    import boto3

    (directory / "worker").mkdir()
    (directory / "worker" / "app.py").write_text(HANDLER)
    (directory / "probe").mkdir()
    (directory / "probe" / "app.py").write_text(PROBE)
    config = directory / "rapidboot.toml"
    config.write_text(
        '[functions.worker]\ncode = "worker"\nhandler = "app.handler"\n'
        '[functions.probe]\ncode = "probe"\nhandler = "app.handler"\n'
    )
    # The mapping is created through the API once the probe's idle baseline is taken.
    mapping: dict[str, Any] = {
        "EventSourceArn": f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}",
        "FunctionName": "worker",
        "BatchSize": batch_size,
        "MaximumBatchingWindowInSeconds": 1 if batch_size > 10 else 0,
    }
    if maximum_concurrency:
        mapping["ScalingConfig"] = {"MaximumConcurrency": maximum_concurrency}
    with running_moto(log=directory / "moto.log") as moto:
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto.endpoint, **_keys())
        url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        if prefill:
            fill(sqs, url, messages)
        return _drain(moto, sqs, url, messages, config, mapping, prefill)


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _drain(
    moto: MotoServer,
    sqs: Any,
    url: str,
    messages: int,
    config: Path,
    mapping: dict[str, Any],
    prefill: bool,
) -> Result:
    env = {**os.environ, **moto.environment()}
    command = [
        sys.executable,
        "-m",
        "rapidboot.rapid_server",
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
    ]
    command += ["--state-dir", str(config.parent / "state")]
    log = (config.parent / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    ready = threading.Event()
    endpoint: list[str] = []

    def read() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line.rstrip("\n"))
            match = READY.search(line)
            if match:
                endpoint.append(f"http://{match.group(1)}:{match.group(2)}")
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(60):
            raise SystemExit("the server did not start:\n" + "\n".join(lines))
        with httpx.Client(base_url=endpoint[0], timeout=30) as client:
            idle = probe(client, PROBE_SAMPLES)
            assert moto.process is not None
            processes = {"moto's server": moto.process.pid, "rapidboot server": server.pid}
            before = {name: cpu_seconds(pid) for name, pid in processes.items()}
            runtimes_before = {pid: cpu_seconds(pid) for pid in descendants(server.pid)}
            response = client.post("/2015-03-31/event-source-mappings", json=mapping)
            assert response.status_code == 202, response.text
            started = time.perf_counter()
            sent: list[float] = []
            if not prefill:  # a producer sends while the mapping drains: moto's queue stays shallow
                producer = threading.Thread(target=_produce, args=(moto, url, messages, started, sent))
                producer.start()
            busy: list[float] = []
            while (not prefill and not sent) or queue_size(sqs, url):
                busy += probe(client, 5)  # the warm invoke latency while the pollers run
                time.sleep(0.2)  # a sampling period, not a synchronisation
            drain_s = time.perf_counter() - started
            cpu = {name: cpu_seconds(pid) - before[name] for name, pid in processes.items()}
            cpu["function runtimes (all)"] = sum(
                cpu_seconds(pid) - runtimes_before.get(pid, 0.0) for pid in descendants(server.pid)
            )
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    pollers = [line.split(": pollers ", 1)[1] for line in lines if ": pollers " in line]
    return Result(messages, drain_s, pollers, cpu, idle, busy, sent[0] if sent else None)


def _produce(moto: MotoServer, url: str, messages: int, started: float, sent: list[float]) -> None:
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto.endpoint, **_keys())
    fill(sqs, url, messages)
    sent.append(time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--maximum-concurrency", type=int, default=None)
    parser.add_argument(
        "--prefill",
        action="store_true",
        help="send every message before the drain (moto's ReceiveMessage costs O(queue length): slow)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rapidboot-bench-sqs-") as scratch:
        result = run(args.messages, args.batch_size, args.maximum_concurrency, Path(scratch), args.prefill)
    print("\n".join(result.lines()))
    print(f"(busy-probe samples: {len(result.busy_ms)}; median {statistics.median(result.busy_ms):.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
