"""Warm invokes of a published version and of an alias against $LATEST, through one server.

A function is created through the control plane (`rapidboot serve` with only a --state-dir), published as
version 1 and aliased (`live` -> 1); then `name`, `name:1` and `name:live` are invoked in turn, warm, with
the raw invoke client (invoke_client.py), so what differs is the server's qualifier resolution and the
version's own pool. Reports each median and its ratio to $LATEST's.

    python -m rapidboot.benchmarks.versions --invokes 2000
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import tempfile
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path, launch_server, stop_server
from rapidboot.benchmarks.stats import summarize

HANDLER = "def handler(event, context):\n    return {'version': context.function_version}\n"


def _zip() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    return base64.b64encode(buffer.getvalue()).decode()


def _call(client: InvokeClient, path: str, body: Mapping[str, object], status: int) -> None:
    answered, _, answer = client.post(path, json.dumps(body).encode())
    if answered != status:
        raise SystemExit(f"{path}: {answered} {bytes(answer)!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invokes", type=int, default=2000, help="warm invokes of each (default 2000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server, host, port = launch_server(["--state-dir", directory], Path(directory) / "server.log")
        try:
            client = InvokeClient(host, port)
            code = {"ZipFile": _zip()}
            create = {"FunctionName": "bench", "Handler": "app.handler", "Code": code}
            _call(client, "/2015-03-31/functions", create, 201)
            _call(client, "/2015-03-31/functions/bench/versions", {}, 201)
            alias = {"Name": "live", "FunctionVersion": "1"}
            _call(client, "/2015-03-31/functions/bench/aliases", alias, 201)
            targets = ["bench", "bench:1", "bench:live"]
            samples: dict[str, list[float]] = {target: [] for target in targets}
            for _ in range(20):  # every pool warm
                for target in targets:
                    client.post(invoke_path(target), b"{}")
            for _ in range(args.invokes):
                for target in targets:  # interleaved: the machine's drift touches each alike
                    started = time.perf_counter()
                    status, _, _ = client.post(invoke_path(target), b"{}")
                    samples[target].append((time.perf_counter() - started) * 1e6)
                    if status != 200:
                        raise SystemExit(f"{target}: {status}")
            baseline = summarize(samples["bench"]).median
            for target in targets:
                summary = summarize(samples[target])
                print(
                    f"{target:<12} median {summary.median:7.1f} us  p90 {summary.p90:7.1f} us  "
                    f"spread {summary.spread:.2f}  x{summary.median / baseline:.3f}"
                )
        finally:
            stop_server(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
