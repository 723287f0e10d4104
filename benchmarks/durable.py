"""Durable functions: what the checkpoint-and-replay machinery adds per step (issue 20's benchmark).

One sample is one full cycle: a RequestResponse invoke of a durable function (AWS's Durable Execution SDK,
unchanged) that runs N steps, each a checkpoint committed to the server's SQLite log, through to the
execution's result. The peer, measured interleaved in the same run, is the same N step bodies in one
plain invoke. Inside the durable handler each step is timed (the step's synchronous SUCCEED checkpoint is
almost all of it): the checkpoint latency's p50/p99.

    python benchmarks/durable.py [--samples 20] [--steps 10 100]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from rapidboot.benchmarks.local_server import start_server, stop_server
from rapidboot.benchmarks.stats import percentile

APP = """
import time
from aws_durable_execution_sdk_python import durable_execution


def body(total, index):
    return total + index


@durable_execution
def durable(event, context):
    total, times = 0, []
    for index in range(event["steps"]):
        started = time.perf_counter()
        total = context.step(lambda _, i=index, t=total: body(t, i), name=f"step-{index}")
        times.append((time.perf_counter() - started) * 1000)
    return {"total": total, "step_ms": times}


def plain(event, context):
    total = 0
    for index in range(event["steps"]):
        total = body(total, index)
    return {"total": total}
"""

CONFIG = """
[functions.durable]
code = "{code}"
handler = "app.durable"
timeout = 300
durable = {{}}

[functions.plain]
code = "{code}"
handler = "app.plain"
timeout = 300
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 100])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rapidboot-durable-bench-") as scratch:
        root = Path(scratch)
        (root / "code").mkdir()
        (root / "code" / "app.py").write_text(APP)
        config = root / "rapidboot.toml"
        config.write_text(CONFIG.format(code=root / "code"))
        server, host, port = start_server(config, root / "server.log")
        try:
            with httpx.Client(base_url=f"http://{host}:{port}", timeout=300) as client:
                run(client, args.samples, args.steps)
        finally:
            stop_server(server)


def run(client: httpx.Client, samples: int, step_counts: list[int]) -> None:
    def invoke(name: str, steps: int) -> tuple[float, dict[str, object]]:
        started = time.perf_counter()
        response = client.post(f"/2015-03-31/functions/{name}/invocations", json={"steps": steps})
        elapsed = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        return elapsed, response.json()

    for steps in step_counts:  # warm-ups: both environments up, the SDK's client created
        invoke("durable", steps)
        invoke("plain", steps)
    medians: dict[int, float] = {}
    for steps in step_counts:
        durable_ms: list[float] = []
        plain_ms: list[float] = []
        step_ms: list[float] = []
        for _ in range(samples):  # interleaved, so machine noise hits both alike
            elapsed, answer = invoke("durable", steps)
            durable_ms.append(elapsed)
            step_ms.extend(answer["step_ms"])  # type: ignore[arg-type]
            plain_ms.append(invoke("plain", steps)[0])
        medians[steps] = statistics.median(durable_ms)
        print(
            f"{steps:4d} steps: durable {statistics.median(durable_ms):8.1f} ms median, plain "
            f"{statistics.median(plain_ms):6.1f} ms; per step (durable - plain) / steps "
            f"{(statistics.median(durable_ms) - statistics.median(plain_ms)) / steps:.2f} ms; "
            f"a step's checkpoint p50 {percentile(step_ms, 0.5):.2f} ms, "
            f"p99 {percentile(step_ms, 0.99):.2f} ms"
        )
    if len(medians) >= 2:
        low, high = min(medians), max(medians)
        marginal = (medians[high] - medians[low]) / (high - low)
        print(f"marginal cost of one more step ({low} -> {high} steps): {marginal:.2f} ms")


if __name__ == "__main__":
    main()
