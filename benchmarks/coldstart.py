"""Cold start, idle memory and in-runtime invoke time: rapidboot's bootstrap vs awslambdaric vs the floor.

All of them run against the same minimal Runtime API server in this process (a thread per connection):

- cold: spawn -> first response received, `--spawns` runs of each, interleaved A B C A B C so machine noise
  hits all alike; the handler is trivial (`--handler trivial`) or imports boto3 (`--handler boto3`). The
  floor is a bare `python3` script that imports the handler module, opens one socket, reads one `/next` and
  posts one response by hand: no runtime can start faster with the same interpreter and handler.
- idle RSS of one environment after its first invoke, parked on `/next` (`/proc/<pid>/status` VmRSS).
- warm in-runtime time: measured from the server's side, from the moment the `/next` response is written
  to the moment the POSTed result is fully received (trivial handler, and a ~3 MB JSON event decoded and
  echoed back). Both runtimes stay up and are invoked alternately.

    python benchmarks/coldstart.py [--spawns 30] [--warm 300] [--big 20] [--handler trivial|boto3]
    (or: make bench-coldstart; `rapidboot bench --only coldstart` for the report)

Runs as a plain script (`py-spy record -- python benchmarks/coldstart.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rapidboot.benchmarks.peers import Runtime, discover, write_handlers
from rapidboot.benchmarks.results import REFERENCE

HANDLERS = {
    "trivial": "def handler(event, context):\n    return event\n",
    # A realistic dependency set: the SDK most functions import at module scope.
    "boto3": "import boto3\n\n\ndef handler(event, context):\n    return event\n",
}
TIMEOUT_S = 30.0

FLOOR = """
import socket, sys
__import__(sys.argv[2])  # the handler module, as any runtime must import it
host, _, port = sys.argv[1].rpartition(":")
sock = socket.create_connection((host, int(port)))

def read_response():
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\\r\\n\\r\\n")
    length = 0
    for line in head.split(b"\\r\\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        if name.strip().lower() == b"lambda-runtime-aws-request-id":
            request_id = value.strip()
    while len(body) < length:
        body += sock.recv(65536)
    return head, body

sock.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
head, event = read_response()
request_id = [l.split(b":", 1)[1].strip() for l in head.split(b"\\r\\n")
              if l.lower().startswith(b"lambda-runtime-aws-request-id:")][0]
sock.sendall(b"POST /2018-06-01/runtime/invocation/" + request_id + b"/response HTTP/1.1\\r\\nHost: x\\r\\n"
             b"Content-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(event), event))
read_response()
"""


class Result:
    def __init__(self, sent_at: float, received_at: float, body: bytes, error: bool = False) -> None:
        self.sent_at = sent_at
        self.received_at = received_at
        self.body = body
        self.error = error  # posted to `.../error` (an invocation or init error), not `.../response`


class ContenderFailed(RuntimeError):
    """A contender that did not answer as a benchmark expects: its name, and what it said instead."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail


def error_text(body: bytes | bytearray) -> str:
    """`errorType: errorMessage` of a Lambda error body, else the body's first 200 bytes."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "errorType" in parsed:
        return f"{parsed['errorType']}: {parsed.get('errorMessage', '')}"
    return repr(bytes(body[:200]))


class RuntimeAPI:
    """One environment's Runtime API: `/next` waits for `invoke()`, the POSTed result is handed back."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._events: queue.Queue[bytes | None] = queue.Queue()
        self._results: queue.Queue[Result] = queue.Queue()
        self._counter = 0
        self.first_next_at: float | None = None  # when the runtime's first `/next` arrived: its init ended
        threading.Thread(target=self._accept, daemon=True).start()

    def invoke(self, event: bytes) -> Result:
        self._events.put(event)
        return self._results.get(timeout=TIMEOUT_S)

    def close(self) -> None:
        self._listener.close()
        self._events.put(None)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._serve_connection(conn)
        except OSError:
            return  # the runtime was killed

    def _serve_connection(self, conn: socket.socket) -> None:
        buffer = bytearray()
        sent_at = 0.0
        with conn:
            while True:
                head = _read_until(conn, buffer, b"\r\n\r\n")
                if head is None:
                    return
                lines = head.split(b"\r\n")
                method, path = lines[0].split(b" ")[:2]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                if headers.get(b"transfer-encoding") == b"chunked":
                    body = _read_chunked(conn, buffer)
                else:
                    body = _read_exactly(conn, buffer, int(headers.get(b"content-length", b"0")))
                if body is None:
                    return
                if method == b"GET" and path.endswith(b"/invocation/next"):
                    if self.first_next_at is None:
                        self.first_next_at = time.perf_counter()
                    event = self._events.get()
                    if event is None:
                        return
                    self._counter += 1
                    sent_at = time.perf_counter()  # before the write: a preempted harness cannot hide time
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Lambda-Runtime-Aws-Request-Id: req-%d\r\n"
                        b"Lambda-Runtime-Deadline-Ms: 4102444800000\r\n"
                        b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:1:function:f\r\n"
                        b"Content-Length: %d\r\n\r\n" % (self._counter, len(event)) + event
                    )
                elif method == b"POST":
                    received_at = time.perf_counter()
                    conn.sendall(b'HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{"status":"OK"}')
                    if path.endswith(b"/response") or path.endswith(b"/error"):
                        self._results.put(Result(sent_at, received_at, body, path.endswith(b"/error")))
                else:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")


def _read_until(conn: socket.socket, buffer: bytearray, marker: bytes) -> bytes | None:
    while True:
        index = buffer.find(marker)
        if index >= 0:
            data = bytes(buffer[:index])
            del buffer[: index + len(marker)]
            return data
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        buffer += chunk


def _read_exactly(conn: socket.socket, buffer: bytearray, size: int) -> bytes | None:
    while len(buffer) < size:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        buffer += chunk
    data = bytes(buffer[:size])
    del buffer[:size]
    return data


def _read_chunked(conn: socket.socket, buffer: bytearray) -> bytes | None:
    parts: list[bytes] = []
    while True:
        line = _read_until(conn, buffer, b"\r\n")
        if line is None:
            return None
        size = int(line.split(b";")[0], 16)
        if size == 0:
            while _read_until(conn, buffer, b"\r\n") not in (b"", None):
                pass
            return b"".join(parts)
        data = _read_exactly(conn, buffer, size + 2)
        if data is None:
            return None
        parts.append(data[:-2])


@dataclass(frozen=True, slots=True)
class Contender:
    """What the cold-start harness spawns: a runtime, or the floor; `{api}` in argv is the Runtime API."""

    name: str
    role: str
    argv: list[str]
    handler: str = ""

    def spawn(self, api: RuntimeAPI, task_root: Path) -> subprocess.Popen[bytes]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_LAMBDA_FUNCTION_NAME": "f",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/f",  # Lambda sets both; AWS's Node client needs them
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0",
            "_HANDLER": self.handler,  # where AWS's Node client (4.x) reads it; the others take argv
        }
        argv = [arg.replace("{api}", api.address) for arg in self.argv]
        # awslambdaric finds the handler module through the working directory (its managed bootstrap
        # puts the task root on sys.path); ours reads LAMBDA_TASK_ROOT. Same directory for all.
        return subprocess.Popen(
            argv, env=env, cwd=task_root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )


def task_root_for(directory: Path, handler_source: str) -> Path:
    """A task root with `app` (the handler, for every language) and the floor script."""
    write_handlers(directory, "app", handler_source)
    (directory / "floor.py").write_text(FLOOR)
    return directory


def contenders(runtimes: list[Runtime], task_root: Path, module: str = "app") -> list[Contender]:
    """The runtimes, then the floor (a reference, not a peer)."""
    handler = f"{module}.handler"
    spawned = [Contender(r.name, r.role, r.argv(handler), handler) for r in runtimes]
    floor = [sys.executable, str(task_root / "floor.py"), "{api}", module]
    return [*spawned, Contender("floor", REFERENCE, floor)]


@dataclass(frozen=True, slots=True)
class ColdStart:
    init_ms: float  # spawn -> the runtime's first `/next` (what a server reports as Init Duration)
    response_ms: float  # spawn -> first response received


def cold_start(contender: Contender, task_root: Path, event: bytes = b'{"cold":true}') -> ColdStart:
    """One spawn and one invoke; the handler must echo the event, or answer anything but an error for
    another event."""
    api = RuntimeAPI()
    started = time.perf_counter()
    proc = contender.spawn(api, task_root)
    try:
        result = api.invoke(event)
    except queue.Empty:
        raise ContenderFailed(contender.name, f"no answer within {TIMEOUT_S:.0f} s") from None
    finally:
        proc.kill()
        proc.wait()
        api.close()
    if result.error:
        raise ContenderFailed(contender.name, error_text(result.body))
    if event == b'{"cold":true}' and json.loads(result.body) != {"cold": True}:
        raise ContenderFailed(contender.name, f"unexpected response {result.body[:200]!r}")
    assert api.first_next_at is not None
    return ColdStart((api.first_next_at - started) * 1000, (result.received_at - started) * 1000)


def cold_samples(
    spawned: list[Contender],
    task_root: Path,
    spawns: int,
    tick: Callable[[str], None] = lambda _: None,
    event: bytes = b'{"cold":true}',
) -> dict[str, list[float]]:
    """`spawns` cold starts of each contender, interleaved A B C A B C, after one discarded round (it warms
    the page cache and writes the .pyc files)."""
    for contender in spawned:
        cold_start(contender, task_root, event)
    samples: dict[str, list[float]] = {contender.name: [] for contender in spawned}
    for _ in range(spawns):
        for contender in spawned:
            tick(contender.name)
            samples[contender.name].append(cold_start(contender, task_root, event).response_ms)
    return samples


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """The process's resident memory now (VmRSS), or its peak so far (`field="VmHWM"`)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def big_event(target_bytes: int = 3 * 1024 * 1024) -> bytes:
    items = []
    size = 0
    index = 0
    while size < target_bytes:
        item = {
            "id": index,
            "name": f"item-{index}",
            "tags": ["alpha", "beta", "é"],
            "price": index * 1.25,
            "active": index % 2 == 0,
            "nested": {"a": [1, 2, 3], "b": None},
        }
        items.append(item)
        size += len(json.dumps(item)) + 2
        index += 1
    return json.dumps({"items": items}).encode()


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--spawns", type=int, default=30)
    parser.add_argument("--warm", type=int, default=300, help="trivial warm invokes per runtime")
    parser.add_argument("--big", type=int, default=20, help="3 MB warm invokes per runtime")
    parser.add_argument("--handler", choices=sorted(HANDLERS), default="trivial", help="for the cold starts")
    args = parser.parse_args()

    peers = discover()
    runtimes = peers.python_runtimes()
    names = [runtime.name for runtime in runtimes]
    if names != ["rapidboot", "awslambdaric"]:
        raise SystemExit("this script compares with awslambdaric: `pip install awslambdaric`")
    with tempfile.TemporaryDirectory() as tmp:
        task_root = task_root_for(Path(tmp), HANDLERS[args.handler])
        spawned = contenders(runtimes, task_root)
        cold = cold_samples(spawned, task_root, args.spawns)
        task_root = task_root_for(Path(tmp), HANDLERS["trivial"])

        # Warm: both environments stay up; invokes alternate between them.
        by_name = {c.name: c for c in spawned}
        apis = {name: RuntimeAPI() for name in names}
        procs = {name: by_name[name].spawn(apis[name], task_root) for name in names}
        rss: dict[str, int] = {}
        warm: dict[str, list[float]] = {name: [] for name in names}
        big: dict[str, list[float]] = {name: [] for name in names}
        payload = big_event()
        expected = json.loads(payload)
        try:
            for api in apis.values():
                api.invoke(b"{}")
            for name in apis:
                # Parked on /next after one invoke: the idle environment Lambda would freeze.
                rss[name] = rss_kib(procs[name].pid)
            for _ in range(args.warm):
                for name, api in apis.items():
                    result = api.invoke(b'{"hello":"world"}')
                    warm[name].append((result.received_at - result.sent_at) * 1e6)
            for _ in range(args.big):
                for name, api in apis.items():
                    result = api.invoke(payload)
                    # The same value, not the same bytes: rapidboot writes results compact.
                    assert json.loads(result.body) == expected, (name, len(result.body))
                    big[name].append((result.received_at - result.sent_at) * 1000)
        finally:
            for name, proc in procs.items():
                proc.kill()
                proc.wait()
                apis[name].close()

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.spawns} spawns each ({args.handler} "
        f"handler), interleaved; warm: {args.warm} trivial + {args.big} x {len(payload) / 1e6:.1f} MB "
        "invokes each, alternating\n"
    )
    rows = []
    o, r, f = (summary(cold[name]) for name in ("rapidboot", "awslambdaric", "floor"))
    rows.append(
        (
            "cold: spawn -> first response (ms)",
            o,
            r,
            f"{o[0] / f[0]:.2f} x floor ({f[0]:.1f} ms, {f[1]:.1f}-{f[2]:.1f})",
            o[0] / r[0],
            "<= 1.15 x floor, <= 0.6 x ric",
        )
    )
    rows.append(
        (
            "idle RSS (MiB)",
            (rss["rapidboot"] / 1024,) * 3,
            (rss["awslambdaric"] / 1024,) * 3,
            "",
            rss["rapidboot"] / rss["awslambdaric"],
            "<= 0.8",
        )
    )
    if warm["rapidboot"]:  # `--warm 0` / `--big 0`: not measured, no row
        o, r = summary(warm["rapidboot"]), summary(warm["awslambdaric"])
        rows.append(("warm in-runtime, trivial (us)", o, r, "", o[0] / r[0], "<= 0.7"))
    if big["rapidboot"]:
        o, r = summary(big["rapidboot"]), summary(big["awslambdaric"])
        rows.append(("warm in-runtime, 3 MB echo (ms)", o, r, "", o[0] / r[0], "<= 0.5"))

    print("| | rapidboot median (min-max) | awslambdaric median (min-max) | floor | ours / ric | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, ours_s, ric_s, extra, ratio, target in rows:
        print(f"| {label} | {_fmt(ours_s)} | {_fmt(ric_s)} | {extra} | {ratio:.2f} | {target} |")


def _fmt(stats: tuple[float, float, float]) -> str:
    median, low, high = stats
    if low == high:
        return f"{median:.1f}"
    return f"{median:.1f} ({low:.1f}-{high:.1f})"


if __name__ == "__main__":
    main()
