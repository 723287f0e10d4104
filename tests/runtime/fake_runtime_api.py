"""A tiny in-test Runtime API: serves queued events on /next and records every request.

Threaded, port 0, ready as soon as the constructor returns (the socket listens before the thread
starts), keep-alive connections. When the queue is empty, `/next` closes the connection (or answers
`exhausted_status`), so the runtime under test exits and the test can wait for the process.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from typing import Any


class FakeEvent:
    def __init__(
        self,
        body: bytes | str | Any = b"{}",
        *,
        request_id: str = "req-1",
        headers: dict[str, str] | None = None,
        content_type: str | None = "application/json",
        chunked: bool = False,
        deadline_ms: int | None = None,
    ) -> None:
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.body = body
        self.request_id = request_id
        self.chunked = chunked
        self.headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms if deadline_ms is not None else 4102444800000),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        }
        if content_type is not None:
            self.headers["Content-Type"] = content_type
        self.headers.update(headers or {})


class Recorded:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body
        self.received_at = time.perf_counter()

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Recorded({self.method} {self.path} {self.body[:200]!r})"


class FakeRuntimeAPI:
    def __init__(self, events: list[FakeEvent] | None = None, exhausted_status: int | None = None) -> None:
        self.events = collections.deque(events or [])
        self.exhausted_status = exhausted_status
        self.requests: list[Recorded] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeRuntimeAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._listener.close()

    def posts(self, suffix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(suffix)]

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            while True:
                request_line = reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    line = reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = reader.read(int(headers.get("content-length", "0")))
                with self._lock:
                    self.requests.append(Recorded(method, path, headers, body))
                if method == "GET" and path.endswith("/invocation/next"):
                    with self._lock:
                        event = self.events.popleft() if self.events else None
                    if event is None:
                        if self.exhausted_status is None:
                            return  # close: the runtime sees "No Response from endpoint"
                        conn.sendall(_response(self.exhausted_status, b'{"errorType":"x"}'))
                        continue
                    conn.sendall(_event_response(event))
                elif method == "POST":
                    conn.sendall(_response(202, b'{"status":"OK"}'))
                else:
                    conn.sendall(_response(404, b"{}"))


def _response(status: int, body: bytes) -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


def _event_response(event: FakeEvent) -> bytes:
    head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in event.headers.items())
    if not event.chunked:
        return (head + f"Content-Length: {len(event.body)}\r\n\r\n").encode("latin-1") + event.body
    # Go's net/http style, plus an extension and a trailer to prove they are tolerated.
    out = [(head + "Transfer-Encoding: chunked\r\n\r\n").encode("latin-1")]
    step = 7919
    for start in range(0, len(event.body), step):
        chunk = event.body[start : start + step]
        out.append(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk))
    out.append(b"0\r\nX-Trailer: yes\r\n\r\n")
    return b"".join(out)
