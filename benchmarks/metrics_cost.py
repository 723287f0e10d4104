"""The per-invoke cost of Lambda's metrics with nothing scraping (issue 19's goal: under 5 us).

- record: what the server does per invoke for the metrics and the console, in process: `Metrics.invoked`
  (counters, Duration's bucket, the console's ring and chart point) and `Metrics.output` for one line of
  the function's output; beside it, what prometheus-client's labelled Counter (Invocations, Errors) and
  Histogram (Duration) would cost per invoke instead, measured the same way (rapid_server/observability/
  metrics.py says why we record in plain integers).
- warm: the cost through the whole server. Warm invokes (1 KB, one at a time, the raw client of
  invoke_client.py) against two servers in the same run, interleaved in rounds: the server as shipped, and
  the same server with the recording calls stubbed out (`Metrics.invoked` and `Metrics.output` replaced by
  no-ops before it starts). Nobody scrapes either. The medians' difference is the metrics' cost; on a
  shared 2-core machine it is within the noise.

    python benchmarks/metrics_cost.py [--samples 2000] [--record-samples 30]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path
from rapidboot.rapid_server.observability.metrics import DURATION_BOUNDS_S, Metrics

Tick = Callable[[str], None]

READY = re.compile(r"listening on http://([0-9.]+):(\d+)")
HANDLER = "def handler(event, context):\n    return event\n"
PATH = invoke_path("function")
EVENT = b'{"data": "' + b"x" * 1000 + b'"}'  # 1 KB
ROUND = 10  # invokes on one server before switching to the other: fine-grained, the machine's noise drifts
CALLS_PER_SAMPLE = 20_000
# Run as the second server: the same `serve`, with the recording calls made no-ops first.
STUBBED = (
    "import sys\n"
    "from rapidboot.rapid_server.observability.metrics import Metrics\n"
    "Metrics.invoked = lambda *args, **kwargs: None\n"
    "Metrics.output = lambda *args, **kwargs: None\n"
    "from rapidboot.rapid_server.cli import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


@dataclass(slots=True)
class MetricsCost:
    record_us: list[float]  # Metrics.invoked + one output line, per invoke
    record_without_console_us: list[float]  # `serve --no-console`: counters and Duration only
    prometheus_client_us: list[float]  # empty when prometheus-client is not installed
    warm_ms: list[float]  # the server as shipped
    warm_stubbed_ms: list[float]  # the same server, its recording calls stubbed


def record_cost(samples: int, tick: Tick | None = None) -> tuple[list[float], list[float], list[float]]:
    """Per-invoke microseconds of our recording calls (console on, off) and of prometheus-client's."""
    environment: Any = SimpleNamespace(config=SimpleNamespace(name="function", memory_mb=128), pid=1)

    def ours(metrics: Metrics) -> Callable[[], None]:
        counter = iter(range(1 << 62))

        def one_invoke() -> None:
            request_id = f"r{next(counter)}"  # each invoke its own tail, as in the server
            metrics.output(request_id, b"a line the handler printed")
            metrics.invoked(environment, request_id, 0.42, 20, None, False, None, None)

        return one_invoke

    def counters_only(metrics: Metrics) -> Callable[[], None]:
        def one_invoke() -> None:
            metrics.invoked(environment, "r", 0.42, 20, None, False, None, None)

        return one_invoke

    record = _per_call_us(ours(Metrics(lambda name: 1)), samples, tick)
    without_console = _per_call_us(counters_only(Metrics(lambda name: 1, keep_recent=False)), samples, tick)
    try:
        from prometheus_client import CollectorRegistry, Counter, Histogram
    except ImportError:
        return record, without_console, []
    registry = CollectorRegistry()
    invocations = Counter("lambda_invocations", "", ["function"], registry=registry)
    errors = Counter("lambda_errors", "", ["function"], registry=registry)
    duration = Histogram(
        "lambda_duration_seconds", "", ["function"], registry=registry, buckets=DURATION_BOUNDS_S
    )

    def prometheus_invoke() -> None:
        invocations.labels("function").inc()
        error = False
        if error:
            errors.labels("function").inc()
        duration.labels("function").observe(0.00042)

    return record, without_console, _per_call_us(prometheus_invoke, samples, tick)


def _per_call_us(call: Callable[[], None], samples: int, tick: Tick | None) -> list[float]:
    results = []
    for _ in range(samples):
        results.append(timeit.timeit(call, number=CALLS_PER_SAMPLE) / CALLS_PER_SAMPLE * 1e6)
        if tick is not None:
            tick("record")
    return results


def _start(code: Path, state: Path, stubbed: bool) -> tuple[subprocess.Popen[str], InvokeClient]:
    prefix = [sys.executable, "-c", STUBBED] if stubbed else [sys.executable, "-m", "rapidboot.rapid_server"]
    command = [*prefix, "serve", "--code", str(code), "--handler", "app.handler", "--name", "function"]
    command += ["--port", "0", "--state-dir", str(state)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    for line in server.stderr:
        match = READY.search(line)
        if match:
            return server, InvokeClient(match[1], int(match[2]))
    server.wait()
    raise RuntimeError(f"the server did not start (exit code {server.returncode})")


def warm_cost(directory: Path, samples: int, tick: Tick | None = None) -> tuple[list[float], list[float]]:
    """Interleaved warm invokes against the server as shipped and with the recording stubbed (ms each)."""
    code = directory / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    servers = [
        _start(code, directory / "state-shipped", False),
        _start(code, directory / "state-stubbed", True),
    ]
    timings: list[list[float]] = [[], []]
    try:
        for _, client in servers:  # warm: the environment started, its first invokes out of the way
            for _ in range(ROUND):
                client.post(PATH, EVENT)
        while len(timings[1]) < samples:
            for index, (_, client) in enumerate(servers):
                for _ in range(min(ROUND, samples - len(timings[index]))):
                    started = time.perf_counter()
                    status, _, _ = client.post(PATH, EVENT)
                    timings[index].append((time.perf_counter() - started) * 1000)
                    if status != 200:
                        raise RuntimeError(f"invoke answered {status}")
                    if tick is not None:
                        tick("warm")
    finally:
        for server, client in servers:
            client.close()
            server.terminate()
            server.wait()
    return timings[0], timings[1]


def measure(directory: Path, samples: int, record_samples: int, tick: Tick | None = None) -> MetricsCost:
    record, without_console, prometheus = record_cost(record_samples, tick)
    warm, stubbed = warm_cost(directory, samples, tick)
    return MetricsCost(record, without_console, prometheus, warm, stubbed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000, help="warm invokes per server (2000)")
    parser.add_argument("--record-samples", type=int, default=30, help="in-process samples (30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rapidboot-metrics-cost-") as scratch:
        cost = measure(Path(scratch), args.samples, args.record_samples)
    print(f"record, per invoke (median of {args.record_samples} x {CALLS_PER_SAMPLE} calls):")
    print(f"  rapidboot, console on:        {statistics.median(cost.record_us):6.2f} us")
    print(f"  rapidboot, --no-console:      {statistics.median(cost.record_without_console_us):6.2f} us")
    if cost.prometheus_client_us:
        print(f"  prometheus-client instead:    {statistics.median(cost.prometheus_client_us):6.2f} us")
    shipped, stubbed = statistics.median(cost.warm_ms), statistics.median(cost.warm_stubbed_ms)
    print(f"warm invoke 1 KB, median of {args.samples} each, interleaved:")
    print(f"  as shipped:        {shipped * 1000:8.1f} us")
    print(f"  metrics stubbed:   {stubbed * 1000:8.1f} us")
    print(f"  difference:        {(shipped - stubbed) * 1000:+8.1f} us ({shipped / stubbed:.3f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
