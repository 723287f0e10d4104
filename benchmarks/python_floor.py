"""The Python server floor of a warm invoke: the CPU and latency that no Python server on this project's
stack (uvloop, httptools, asyncio protocols) can go under for one warm invoke.

A warm invoke through any Lambda server is three HTTP exchanges: the caller's POST to the Invoke API, the
runtime's parked `GET /next` answered with the event, and the runtime's `POST /response` answered 202 while
the result goes back to the caller. This program is those three exchanges and nothing else: one Invoke-API
listener, one Runtime-API listener, our own `bootstrap` as the runtime (one echo function), and for each
invoke a request id, a deadline and a trace id in the real Runtime API headers. What `rapidboot serve` spends
above it is the server's own work; what this spends above the bare relay of ab_cpu.py (`--relay-floor`:
blocking sockets, no HTTP) is what HTTP on asyncio costs in Python.

Left out on purpose, because each is work per invoke that a real server does and this floor must not:
validation (of the event, the request id, the state of the environment), timeouts and the deadline's
enforcement, logs, START / END / REPORT lines, metrics, memory and scratch-space accounting, concurrency
limits, more than one function or environment, restarts after a crash, client context and Cognito
headers, and streaming. An unknown route is a 404 and an unknown request id a 400, nothing more.

    python benchmarks/python_floor.py [--code DIR --handler MODULE.FUNCTION]

prints `listening on http://HOST:PORT (runtime pid N)` on stderr once the runtime has parked its first
`/next`, and serves `POST /2015-03-31/functions/echo/invocations` until SIGTERM (which stops the runtime too).
`PythonFloor.start` runs it for a benchmark; ab_cpu.py (`--python-floor`) and the suite's warm section
measure it beside `rapidboot serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httptools

from rapidboot.rapid_server import ids  # the server's own ids: os and time, nothing more

FUNCTION_NAME = "echo"
INVOKE_PATH = b"/2015-03-31/functions/echo/invocations"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:echo"
TIMEOUT_MS = 3000  # Lambda's default timeout: the deadline the runtime is told (never enforced here)
ECHO_HANDLER = "def handler(event, context):\n    return event\n"
READY = re.compile(r"listening on http://([0-9.]+):(\d+) \(runtime pid (\d+)\)")

# Built once (hot constants): the per-invoke part is the request id, the deadline, the trace id, the length.
_EVENT_HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Lambda-Runtime-Aws-Request-Id: {}\r\n"
    "Lambda-Runtime-Deadline-Ms: {}\r\n"
    f"Lambda-Runtime-Invoked-Function-Arn: {FUNCTION_ARN}\r\n"
    "Lambda-Runtime-Trace-Id: {}\r\n"
    "Content-Length: {}\r\n\r\n"
)
_ANSWER_HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "X-Amz-Executed-Version: $LATEST\r\n"
    "X-Amzn-Requestid: {}\r\n"
    "{}"  # X-Amz-Function-Error, for an answer posted to /error
    "Content-Length: {}\r\n\r\n"
)
_FUNCTION_ERROR = "X-Amz-Function-Error: Unhandled\r\n"
_ACCEPTED = (
    b'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n'
)
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_UNKNOWN_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"


class Relay:
    """The whole state: the runtime's parked `/next` requests, the events no `/next` has taken yet, and the
    callers waiting for their answer, by request id."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.parked: deque[asyncio.Transport] = deque()
        self.queued: deque[tuple[str, bytes, asyncio.Transport]] = deque()
        self.callers: dict[str, asyncio.Transport] = {}
        self.first_next: asyncio.Future[None] = loop.create_future()  # the readiness gate

    def invoke(self, caller: asyncio.Transport, event: bytes) -> None:
        request_id = ids.request_id()
        if self.parked:
            self._hand(self.parked.popleft(), request_id, event, caller)
        else:
            self.queued.append((request_id, event, caller))

    def next(self, runtime: asyncio.Transport) -> None:
        if not self.first_next.done():
            self.first_next.set_result(None)
        if self.queued:
            self._hand(runtime, *self.queued.popleft())
        else:
            self.parked.append(runtime)

    def answer(self, runtime: asyncio.Transport, request_id: str, body: bytes, error: bool) -> None:
        caller = self.callers.pop(request_id, None)
        if caller is None:
            runtime.write(_UNKNOWN_REQUEST)
            return
        head = _ANSWER_HEAD.format(request_id, _FUNCTION_ERROR if error else "", len(body))
        caller.writelines((head.encode(), body))  # the caller first: it is the one waiting
        runtime.write(_ACCEPTED)

    def _hand(
        self, runtime: asyncio.Transport, request_id: str, event: bytes, caller: asyncio.Transport
    ) -> None:
        self.callers[request_id] = caller
        deadline_ms = time.time_ns() // 1_000_000 + TIMEOUT_MS
        head = _EVENT_HEAD.format(request_id, deadline_ms, ids.trace_id(), len(event))
        runtime.writelines((head.encode(), event))


class _Exchange(asyncio.Protocol):
    """Bytes in, one call of `complete` per request: httptools parses, a subclass routes."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.parser = httptools.HttpRequestParser(self)
        self.transport = cast(asyncio.Transport, None)
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete(self.url, b"".join(self.body))

    def complete(self, url: bytes, body: bytes) -> None:
        raise NotImplementedError


class InvokeExchange(_Exchange):
    """The Invoke API: one route, the echo function's synchronous invoke."""

    def complete(self, url: bytes, body: bytes) -> None:
        if url == INVOKE_PATH:
            self.relay.invoke(self.transport, body)
        else:
            self.transport.write(_NOT_FOUND)


class RuntimeExchange(_Exchange):
    """The Runtime API: `/next`, `/{id}/response` and `/{id}/error` under /2018-06-01/runtime/invocation/."""

    def complete(self, url: bytes, body: bytes) -> None:
        parts = url.split(b"/")  # ["", "2018-06-01", "runtime", "invocation", id or "next", "response"?]
        if len(parts) == 5 and parts[4] == b"next":
            self.relay.next(self.transport)
        elif len(parts) == 6 and parts[5] in (b"response", b"error"):
            self.relay.answer(self.transport, parts[4].decode(), body, parts[5] == b"error")
        else:
            self.transport.write(_NOT_FOUND)


def runtime_environment(runtime_api: str, task_root: Path, handler: str) -> dict[str, str]:
    """What our bootstrap reads (reference section 4), as `rapidboot serve` sets it for one function; the
    server's own environment is not inherited, except PATH and PYTHONPATH (a tree under test)."""
    environ = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "_HANDLER": handler,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "python-floor",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }
    if "PYTHONPATH" in os.environ:
        environ["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return environ


async def serve(host: str, task_root: Path, handler: str) -> int:
    """Listen, start the runtime, say so once it waits on `/next`, and relay until SIGTERM or its exit."""
    from rapidboot.rapid_server.config import bootstrap_command  # the server's own choice of bootstrap

    loop = asyncio.get_running_loop()
    relay = Relay(loop)
    invokes = await loop.create_server(lambda: InvokeExchange(relay), host, 0)
    runtimes = await loop.create_server(lambda: RuntimeExchange(relay), host, 0)
    runtime_api = "{}:{}".format(*runtimes.sockets[0].getsockname()[:2])
    runtime = await asyncio.create_subprocess_exec(
        *bootstrap_command(handler),
        env=runtime_environment(runtime_api, task_root, handler),
        cwd=task_root,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,  # its output goes where ours does (a log file, for a benchmark)
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    exited = asyncio.ensure_future(runtime.wait())
    stopped = asyncio.ensure_future(stop.wait())
    ends: set[asyncio.Future[Any]] = {exited, stopped}
    await asyncio.wait({relay.first_next, *ends}, return_when=asyncio.FIRST_COMPLETED)
    if relay.first_next.done() and not exited.done():
        address, port = invokes.sockets[0].getsockname()[:2]
        print(
            f"listening on http://{address}:{port} (runtime pid {runtime.pid})", file=sys.stderr, flush=True
        )
        await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    invokes.close()
    runtimes.close()
    if exited.done():
        print(f"python floor: the runtime exited with code {exited.result()}", file=sys.stderr, flush=True)
        return 1
    runtime.terminate()
    await exited
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--code", type=Path, help="the function's code (default: an echo function)")
    parser.add_argument("--handler", default="app.handler", help="MODULE.FUNCTION (%(default)s)")
    args = parser.parse_args(argv)
    import uvloop  # the server's loop; imported here, as only the relay process needs it

    with tempfile.TemporaryDirectory(prefix="python-floor-") as scratch:
        task_root = args.code
        if task_root is None:
            task_root = Path(scratch)
            (task_root / "app.py").write_text(ECHO_HANDLER)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve(args.host, task_root.resolve(), args.handler))


@dataclass(slots=True)
class PythonFloor:
    """The relay as a benchmark runs it: its process, where to invoke, and the runtime's pid (for its CPU)."""

    process: subprocess.Popen[str]
    host: str
    port: int
    runtime_pid: int

    @classmethod
    def start(cls, log_path: Path, code: Path | None = None, handler: str = "app.handler") -> PythonFloor:
        """Started and ready (its readiness line, no sleep): the runtime waits on `/next`. Its output and the
        runtime's go to `log_path`, a file: a pipe nobody reads would fill and stop them."""
        command = [sys.executable, "-m", "rapidboot.benchmarks.python_floor", "--handler", handler]
        if code is not None:
            command += ["--code", str(code)]
        with log_path.open("w") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
            )
        assert process.stderr is not None
        said = []
        for line in process.stderr:
            if match := READY.search(line):
                return cls(process, match.group(1), int(match.group(2)), int(match.group(3)))
            said.append(line.strip())
        process.wait()
        raise RuntimeError(f"the Python floor did not start: {' '.join(said)} (see {log_path})")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        if self.process.stderr is not None:
            self.process.stderr.close()


if __name__ == "__main__":
    raise SystemExit(main())
