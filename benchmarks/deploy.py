"""Deploy -> first answer: `CreateFunction` with a 1 MB zip, then its first invoke, against a first invoke of
the same function configured in a rapidboot.toml plus the unzip a developer does to serve it that way.

One server serves both sides, in the same run, samples interleaved: N functions configured in its
rapidboot.toml (each unzipped, timed, before the server starts) and the control plane for the creates.
- API: from sending `POST /2015-03-31/functions` (the base64 zip prepared beforehand, as boto3 would) to
  the first invoke's answer: decode, hash, store (fsync) while extracting from memory, commit (SQLite,
  fsync), then a cold start;
- TOML: the unzip (zipfile.extractall into a fresh directory) plus the function's first invoke (a cold start).
The zip is a trivial handler and 1 MB of random bytes (stored, as random bytes do not compress). Goal: the
API no more than 1.2x the TOML side (issue 15).

    python benchmarks/deploy.py [--samples 15] [--profile FILE]

`--profile FILE` runs the server under cProfile (its stats written to FILE at exit), to see where an API
sample's time goes when it is over the goal.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path, launch_server

Tick = Callable[[str], None]
BLOB_BYTES = 1_000_000
HANDLER = "def handler(event, context):\n    return 'deployed'\n"
GOAL = 1.2


@dataclass(slots=True)
class DeployTimes:
    api_s: list[float]  # CreateFunction sent -> first invoke answered
    create_s: list[float]  # of which CreateFunction alone (its 201)
    toml_s: list[float]  # unzip + first invoke of the configured function
    unzip_s: list[float]
    zip_bytes: int


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", HANDLER)
        archive.writestr("blob.bin", os.urandom(BLOB_BYTES))
    return buffer.getvalue()


def _start(directory: Path, profile: Path | None) -> tuple[subprocess.Popen[str], InvokeClient]:
    python = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    args = ["--config", str(directory / "rapidboot.toml"), "--state-dir", str(directory / "state")]
    server, host, port = launch_server(args, python=python)
    return server, InvokeClient(host, port)


def deploy_times(
    directory: Path, samples: int, tick: Tick | None = None, profile: Path | None = None
) -> DeployTimes:
    zipped = package()
    times = DeployTimes([], [], [], [], len(zipped))
    config = []
    for sample in range(samples):
        code = directory / f"toml-{sample}"
        started = time.perf_counter()
        with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
            archive.extractall(code)
        times.unzip_s.append(time.perf_counter() - started)
        config += [
            f'[functions."toml-{sample}"]',
            f"code = {json.dumps(str(code))}",
            'handler = "app.handler"',
            "",
        ]
    (directory / "rapidboot.toml").write_text("\n".join(config))
    encoded = base64.b64encode(zipped).decode()
    server, client = _start(directory, profile)
    try:
        for sample in range(samples):
            body = json.dumps(
                {
                    "FunctionName": f"api-{sample}",
                    "Runtime": "python3.12",
                    "Role": "arn:aws:iam::123456789012:role/bench",
                    "Handler": "app.handler",
                    "Code": {"ZipFile": encoded},
                }
            ).encode()
            started = time.perf_counter()
            status, _, answer = client.post("/2015-03-31/functions", body)
            times.create_s.append(time.perf_counter() - started)
            if status != 201:
                raise SystemExit(f"CreateFunction answered {status}: {bytes(answer)[:300]!r}")
            status, _, answer = client.post(invoke_path(f"api-{sample}"), b"{}")
            times.api_s.append(time.perf_counter() - started)
            if answer != b'"deployed"':
                raise SystemExit(f"api-{sample} answered {status} {bytes(answer)[:300]!r}")
            started = time.perf_counter()
            status, _, answer = client.post(invoke_path(f"toml-{sample}"), b"{}")
            times.toml_s.append(time.perf_counter() - started + times.unzip_s[sample])
            if answer != b'"deployed"':
                raise SystemExit(f"toml-{sample} answered {status} {bytes(answer)[:300]!r}")
            if tick is not None:
                tick(f"deploy {sample + 1}/{samples}")
    finally:
        client.close()
        server.send_signal(signal.SIGINT if profile is not None else signal.SIGTERM)
        server.wait(timeout=30)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=15, help="deploys measured on each side (%(default)s)")
    parser.add_argument("--profile", type=Path, metavar="FILE", help="run the server under cProfile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rapidboot-deploy-") as scratch:
        times = deploy_times(Path(scratch), args.samples, profile=args.profile)
    api = statistics.median(times.api_s) * 1000
    toml = statistics.median(times.toml_s) * 1000
    unzip = statistics.median(times.unzip_s) * 1000
    print(f"{times.zip_bytes / 1e6:.2f} MB zip, {args.samples} samples each, medians:")
    create = statistics.median(times.create_s) * 1000
    print(f"  CreateFunction -> first answer:     {api:7.1f} ms  (CreateFunction alone {create:.1f} ms)")
    print(f"  unzip + first invoke (TOML):        {toml:7.1f} ms  (unzip {unzip:.1f} ms)")
    print(f"  ratio {api / toml:.2f}x (goal: at most {GOAL}x) on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
