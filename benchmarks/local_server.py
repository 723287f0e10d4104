"""Start and stop `rapidboot serve` for a benchmark (the server's own readiness line, no sleeps), write its
configuration, and talk to it over one keep-alive connection.

The server's log goes to a file, not a pipe: a reader thread in the measuring process would wake on every
log line and compete with what it measures. Its state (layer cache, async queue) goes beside the config,
never into the working directory.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httptools

from benchmarks.peers import Runtime

READY = re.compile(r"listening on http://([0-9.]+):(\d+)")
REPORT_INIT = re.compile(r"REPORT RequestId: (\S+).*?Init Duration: ([0-9.]+) ms")


@dataclass(slots=True)
class Function:
    """One `[functions.NAME]` table: a runtime running `<module>.handler` from `code`."""

    name: str
    runtime: Runtime
    code: Path
    module: str = "app"
    options: dict[str, int | float] = field(default_factory=dict)


def write_config(path: Path, functions: list[Function]) -> Path:
    lines = []
    for function in functions:
        lines += [
            f"[functions.{json.dumps(function.name)}]",
            f"code = {json.dumps(str(function.code))}",
            f"handler = {json.dumps(function.runtime.handler_for(function.module))}",
        ]
        if function.runtime.command is not None:
            argv = function.runtime.argv(function.runtime.handler_for(function.module))
            lines.append(f"command = {json.dumps(argv)}")
        lines += [f"{key} = {value}" for key, value in function.options.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def start_server(config: Path, log_path: Path) -> tuple[subprocess.Popen[str], str, int]:
    """The running server, its host and its port."""
    command = [sys.executable, "-m", "rapid_server", "serve", "--config", str(config), "--port", "0"]
    command += ["--state-dir", str(config.parent / "state")]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    for line in server.stderr:
        match = READY.search(line)
        if match:
            return server, match.group(1), int(match.group(2))
    raise SystemExit(f"server did not start; see {log_path}")


def stop_server(server: subprocess.Popen[str]) -> None:
    server.terminate()
    server.wait(timeout=15)
    if server.stderr is not None:
        server.stderr.close()


def init_durations(log_path: Path) -> dict[str, float]:
    """Init Duration (ms) of each REPORT line in a server log, by request id."""
    return {
        match.group(1): float(match.group(2))
        for line in log_path.read_text().splitlines()
        if (match := REPORT_INIT.search(line))
    }


class KeepAliveClient:
    """One HTTP/1.1 connection, one request at a time; the response is parsed by httptools. httpx alone adds
    about 1 ms per request here, which would drown what is being measured."""

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_connection((host, port))
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


def invoke_path(name: str) -> str:
    return f"/2015-03-31/functions/{name}/invocations"
