"""Warm invoke latency through `rapidboot serve`: our bootstrap vs awslambdaric, same server, same run.

One realistic full cycle per sample: a keep-alive HTTP client POSTs a 1 KB event to the Invoke API, the
server hands it to the runtime, the runtime calls the handler and posts the result back, the caller reads the
response. The client is a minimal socket loop parsed by httptools: httpx alone adds about 1 ms per request
here, which would drown what is being measured. The two runtimes are measured interleaved (A B A B ...)
so machine noise hits both alike.

    python benchmarks/warm_invoke.py [--samples 2000] [--payload-bytes 1024]

Also the cold path: `--cold N` starts N fresh servers per runtime and reports the REPORT line's Init
Duration and the client's time to the first response.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httptools
from local_server import start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
INIT = re.compile(r"Init Duration: ([0-9.]+) ms")
HANDLER = "def handler(event, context):\n    return event\n"


def write_config(directory: Path) -> Path:
    code = directory / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    ric = [sys.executable, "-m", "awslambdaric", "app.handler"]
    config = directory / "rapidboot.toml"
    config.write_text(
        f'[functions.rapidboot]\ncode = "{code}"\nhandler = "app.handler"\n\n'
        f'[functions.awslambdaric]\ncode = "{code}"\nhandler = "app.handler"\ncommand = {ric!r}\n'.replace(
            "'", '"'
        )
    )
    return config


class KeepAliveClient:
    """One HTTP/1.1 connection, one request at a time; the response is parsed by httptools."""

    def __init__(self, endpoint: str):
        host, port = endpoint.removeprefix("http://").split(":")
        self._sock = socket.create_connection((host, int(port)))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._done = True

    def post(self, path: str, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        self._sock.sendall(head + body)
        parser = httptools.HttpResponseParser(self)
        self._headers, self._body, self._done = {}, [], False
        while not self._done:
            data = self._sock.recv(262144)
            if not data:
                raise ConnectionError("server closed the connection")
            parser.feed_data(data)
        return parser.get_status_code(), self._headers, b"".join(self._body)

    def close(self) -> None:
        self._sock.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def warm(config: Path, samples: int, payload_bytes: int) -> dict[str, list[float]]:
    server, host, port = start_server(config, config.parent / "warm.log")
    endpoint = f"http://{host}:{port}"
    payload = ('{"data": "' + "x" * max(0, payload_bytes - 12) + '"}').encode()
    expected = json.loads(payload)  # runtimes differ in whitespace (ours writes compact JSON)
    timings: dict[str, list[float]] = {"rapidboot": [], "awslambdaric": []}
    client = KeepAliveClient(endpoint)
    try:
        for name in timings:  # warm-up: start both environments, discard
            for _ in range(200):
                client.post(f"/2015-03-31/functions/{name}/invocations", payload)
        for _ in range(samples):
            for name, values in timings.items():
                start = time.perf_counter()
                status, headers, body = client.post(f"/2015-03-31/functions/{name}/invocations", payload)
                values.append((time.perf_counter() - start) * 1e6)
                if status != 200 or b"x-amz-function-error" in headers or json.loads(body) != expected:
                    raise SystemExit(f"{name}: unexpected response {status} {body[:200]!r}")
    finally:
        client.close()
        stop_server(server)
    return timings


def cold(config: Path, rounds: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {"rapidboot": [], "awslambdaric": []}
    for _ in range(rounds):
        for name, values in results.items():
            log_path = config.parent / "cold.log"
            server, host, port = start_server(config, log_path)
            endpoint = f"http://{host}:{port}"
            try:
                client = KeepAliveClient(endpoint)
                start = time.perf_counter()
                client.post(f"/2015-03-31/functions/{name}/invocations", b"{}")
                client_ms = (time.perf_counter() - start) * 1000
                client.close()
            finally:
                stop_server(server)
            log = log_path.read_text().splitlines()
            init = next(float(m.group(1)) for line in log if (m := INIT.search(line)))
            values.append((init, client_ms))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--payload-bytes", type=int, default=1024)
    parser.add_argument("--cold", type=int, default=0, help="fresh-server cold starts per runtime")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp))
        print(
            f"warm invoke, {args.payload_bytes} B event, {args.samples} samples each, "
            f"interleaved ({os.cpu_count()} cores)"
        )
        timings = warm(config, args.samples, args.payload_bytes)
        base = statistics.median(timings["awslambdaric"])
        for name, values in timings.items():
            p50 = statistics.median(values)
            print(
                f"  {name:13} p50 {p50:7.0f} us  p90 {percentile(values, 0.9):7.0f} us  "
                f"p99 {percentile(values, 0.99):7.0f} us  max {max(values):8.0f} us  ratio {p50 / base:.2f}"
            )
        if args.cold:
            print(
                f"cold start, {args.cold} fresh environments each "
                "(Init Duration from REPORT; client time to first response)"
            )
            results = cold(config, args.cold)
            base_init = statistics.median(i for i, _ in results["awslambdaric"])
            for name, pairs in results.items():
                init = statistics.median(i for i, _ in pairs)
                client = statistics.median(c for _, c in pairs)
                print(
                    f"  {name:13} init p50 {init:6.1f} ms  first response p50 {client:6.1f} ms  "
                    f"ratio {init / base_init:.2f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
