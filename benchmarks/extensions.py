"""What an extension costs: warm invokes with one external extension subscribed to every telemetry stream
(platform, function, extension) against the same function without one, and the cold start with it.

One server runs both functions. Warm: a keep-alive raw-socket client (invoke_client.py) invokes them
interleaved (A B A B ...) after warm-ups, so machine noise hits both alike; the server's CPU per invoke is
read from /proc for blocks of each, also interleaved. Cold: each sample is the first invoke of a function
of its own (a fresh environment), with and without the extension, interleaved: the caller's wait and the
REPORT's Init Duration (which, as on Lambda, covers the extension's start and registration).

The extension is a small Python program (stdlib only): it registers for INVOKE and SHUTDOWN, subscribes to
all three streams with the service's smallest buffering timeout (25 ms) and answers each batch at once. It
keeps one connection to the Extensions API, as compiled extensions' HTTP clients do (Go's, Rust's).

    python benchmarks/extensions.py [--samples 1000] [--cold 10]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path, start_server, stop_server
from rapidboot.benchmarks.results import OURS, REFERENCE, Entry, Row
from rapidboot.benchmarks.stats import percentile

if TYPE_CHECKING:
    from rapidboot.benchmarks.peers import Peers
    from rapidboot.benchmarks.suite import Plan, Progress

GOAL = 1.3  # warm p50 with the extension, at most this times without (issue 19)
Tick = Callable[[str], None]

EXTENSION = """\
#!/usr/bin/env python3
import http.client, http.server, json, os, sys, threading

API = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])  # one keep-alive connection


def call(method, path, body=None, headers=None):
    API.request(method, path, body=None if body is None else json.dumps(body), headers=headers or {})
    response = API.getresponse()
    return response.headers, response.read()


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


headers, _ = call("POST", "/2020-01-01/extension/register", {"events": ["INVOKE", "SHUTDOWN"]},
                  {"Lambda-Extension-Name": os.path.basename(sys.argv[0])})
ident = {"Lambda-Extension-Identifier": headers["Lambda-Extension-Identifier"]}
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
threading.Thread(target=server.serve_forever, daemon=True).start()
call("PUT", "/2022-07-01/telemetry", {
    "schemaVersion": "2022-07-01", "types": ["platform", "function", "extension"],
    "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
    "destination": {"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{server.server_address[1]}/"},
}, ident)
while True:
    _, body = call("GET", "/2020-01-01/extension/event/next", headers=ident)
    if json.loads(body)["eventType"] == "SHUTDOWN":
        break
"""
HANDLER = 'def handler(event, context):\n    print("handled")\n    return event\n'
INIT = re.compile(r"REPORT RequestId: (\S+).*?Init Duration: ([0-9.]+) ms")


@dataclass(slots=True)
class ExtensionTimes:
    warm_ms: dict[str, list[float]] = field(default_factory=lambda: {"none": [], "extension": []})
    cpu_us: dict[str, list[float]] = field(default_factory=lambda: {"none": [], "extension": []})
    cold_ms: dict[str, list[float]] = field(default_factory=lambda: {"none": [], "extension": []})
    init_ms: dict[str, list[float]] = field(default_factory=lambda: {"none": [], "extension": []})


def _write_function(directory: Path, cold: int) -> Path:
    code = directory / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    layer = directory / "layer" / "extensions"
    layer.mkdir(parents=True)
    (layer / "telemetry-sink").write_text(EXTENSION)
    (layer / "telemetry-sink").chmod(0o755)
    tables = {"warm-none": False, "warm-extension": True}
    tables.update({f"cold-none-{i}": False for i in range(cold)})
    tables.update({f"cold-extension-{i}": True for i in range(cold)})
    lines = []
    for name, with_extension in tables.items():
        lines += [
            f"[functions.{json.dumps(name)}]",
            f"code = {json.dumps(str(code))}",
            'handler = "app.handler"',
        ]
        if with_extension:
            lines.append(f"layers = [{json.dumps(str(directory / 'layer'))}]")
        lines.append("")
    config = directory / "rapidboot.toml"
    config.write_text("\n".join(lines))
    return config


def _cpu_s(pid: int) -> float:
    """The process's CPU time so far, in nanoseconds' resolution (/proc/PID/schedstat: its first field)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def extension_times(
    directory: Path, samples: int, cold: int, warmups: int = 100, tick: Tick | None = None
) -> ExtensionTimes:
    config = _write_function(directory, cold)
    log = directory / "server.log"
    server, host, port = start_server(config, log)
    times = ExtensionTimes()
    cold_ids: dict[str, list[str]] = {"none": [], "extension": []}
    body = json.dumps({"payload": "x" * 1000}).encode()
    try:
        client = InvokeClient(host, port)
        paths = {kind: invoke_path(f"warm-{kind}") for kind in ("none", "extension")}
        for _ in range(warmups):
            for path in paths.values():
                client.post(path, body)
        block = 50
        for start in range(0, samples, block):
            for kind, path in paths.items():
                cpu_before = _cpu_s(server.pid)
                count = min(block, samples - start)
                for _ in range(count):
                    began = time.perf_counter()
                    status, _, _ = client.post(path, body)
                    times.warm_ms[kind].append((time.perf_counter() - began) * 1000)
                    if status != 200:
                        raise RuntimeError(f"{path}: status {status}; see {log}")
                times.cpu_us[kind].append((_cpu_s(server.pid) - cpu_before) / count * 1e6)
            if tick is not None:
                tick("warm")
        for index in range(cold):
            for kind in ("none", "extension"):
                began = time.perf_counter()
                status, headers, _ = client.post(invoke_path(f"cold-{kind}-{index}"), body)
                times.cold_ms[kind].append((time.perf_counter() - began) * 1000)
                cold_ids[kind].append(headers.get(b"x-amzn-requestid", b"").decode())
                if status != 200:
                    raise RuntimeError(f"cold-{kind}-{index}: status {status}; see {log}")
            if tick is not None:
                tick("cold")
        client.close()
    finally:
        stop_server(server)
    inits = {
        match[1]: float(match[2]) for line in log.read_text().splitlines() if (match := INIT.search(line))
    }
    for kind, ids in cold_ids.items():
        times.init_ms[kind] = [inits[rid] for rid in ids if rid in inits]
    return times


def run_extensions(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    """`rapidboot bench --only extensions`: the suite's hook."""
    samples, cold = plan.extension_samples, plan.extension_cold
    tick = progress.benchmark("extensions", -(-samples // 50) + cold)
    directory = scratch / "extensions"
    directory.mkdir()
    times = extension_times(directory, samples, cold, tick=tick)
    without, with_one = "no extension", "one extension, all telemetry streams"
    return [
        Row(
            "extensions",
            "extensions.warm",
            "warm invoke with an extension subscribed to platform, function and extension telemetry, 1 KB",
            "ms",
            [
                Entry(with_one, OURS, times.warm_ms["extension"]),
                Entry(without, REFERENCE, times.warm_ms["none"]),
            ],
            note=f"goal: at most {GOAL}x",
        ),
        Row(
            "extensions",
            "extensions.cpu",
            "the server's CPU per warm invoke (blocks of 50)",
            "us",
            [
                Entry(with_one, OURS, times.cpu_us["extension"]),
                Entry(without, REFERENCE, times.cpu_us["none"]),
            ],
        ),
        Row(
            "extensions",
            "extensions.cold",
            "cold start (invoke sent -> answer) with one external Python extension",
            "ms",
            [
                Entry("one extension", OURS, times.cold_ms["extension"]),
                Entry(without, REFERENCE, times.cold_ms["none"]),
            ],
            note="Init waits for the extension's start and registration, as on Lambda",
        ),
    ]


def _median(values: list[float]) -> float:
    return percentile(values, 0.5) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1000, help="warm invokes of each function")
    parser.add_argument("--cold", type=int, default=10, help="cold starts of each")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="rapidboot-bench-ext-"))
    try:
        times = extension_times(directory, args.samples, args.cold)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    none, ext = _median(times.warm_ms["none"]), _median(times.warm_ms["extension"])
    print(
        f"warm p50: {none:.3f} ms without, {ext:.3f} ms with one extension: {ext / none:.2f}x "
        f"(goal <= {GOAL}x)"
    )
    cpu_none, cpu_ext = _median(times.cpu_us["none"]), _median(times.cpu_us["extension"])
    print(f"server CPU per warm invoke: {cpu_none:.0f} us without, {cpu_ext:.0f} us with")
    cold_none, cold_ext = _median(times.cold_ms["none"]), _median(times.cold_ms["extension"])
    print(f"cold start (caller's wait) p50: {cold_none:.1f} ms without, {cold_ext:.1f} ms with")
    init_none, init_ext = _median(times.init_ms["none"]), _median(times.init_ms["extension"])
    print(f"Init Duration p50: {init_none:.1f} ms without, {init_ext:.1f} ms with")


if __name__ == "__main__":
    main()
