"""`make demo-api`: serve examples/api from its template and call its HTTP triggers, as curl would.

What a user types is `rapidboot serve` in examples/api (it finds template.yaml) and curl in another
terminal (README.md). This script starts the server on a copy of the example (the runtimes write nothing
into the repository), waits for its readiness line, makes the calls and prints what came back.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
READY = re.compile(r"listening on http://")
TRIGGERS = re.compile(r"HTTP triggers on (http://[0-9.]+:\d+)")
STARTUP_TIMEOUT_S = 60
CALLS = [
    ("GET", "/hello", "REST API route (payload 1.0)"),
    ("GET", "/users/42?fields=name", "HTTP API route with a path parameter (payload 2.0)"),
    ("GET", "/lambda-url/HelloFunction/", "function URL"),
    ("GET", "/lambda-url/StreamFunction/?count=3", "streaming function URL (lines arrive as written)"),
    ("GET", "/nope", "no route: API Gateway's answer"),
]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rapidboot-demo-api-") as scratch:
        project = shutil.copytree(HERE, Path(scratch) / "api", ignore=shutil.ignore_patterns("demo.py"))
        server = subprocess.Popen(
            [sys.executable, "-m", "rapidboot.rapid_server", "serve", "--port", "0", "--api-port", "0"],
            cwd=project,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = _wait_ready(server)
            if base is None:
                return 1
            for method, path, what in CALLS:
                _call(method, base + path, what)
        finally:
            server.terminate()
            server.wait(30)
    return 0


def _wait_ready(server: subprocess.Popen[str]) -> str | None:
    assert server.stderr is not None
    base = None
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    for line in server.stderr:
        print(line, end="")
        found = TRIGGERS.search(line)
        if found:
            base = found[1]
        if READY.search(line):
            return base
        if time.monotonic() > deadline:
            break
    print("demo-api: the server did not start", file=sys.stderr)
    return None


def _call(method: str, url: str, what: str) -> None:
    print(f"\n$ curl -i -X {method} {url}    # {what}", flush=True)
    started = time.perf_counter()
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30)
    except urllib.error.HTTPError as error:
        response = error
    print(f"HTTP {response.status}", flush=True)
    for line in iter(response.readline, b""):
        print(f"  +{(time.perf_counter() - started) * 1000:6.0f} ms  {line.decode().rstrip()}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
