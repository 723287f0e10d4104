"""A tiny in-test Runtime API: serves queued events on /next and records every request.

Threaded, port 0, ready as soon as the constructor returns (the socket listens before the thread
starts), keep-alive connections. When the queue is empty, `/next` closes the connection (or answers
`exhausted_status`), so the runtime under test exits and the test can wait for the process; with
`block_when_empty=True` it waits instead until `add_event` (or `close`).

Chunked request bodies (streamed responses) are recorded chunk by chunk as they arrive, each with its
arrival time, and their trailers; `wait_for_chunks` lets a test wait for one without sleeping.
SnapStart's `GET /restore/next` answers `restore_status`; `post_status` overrides the 202 of POSTs by
path suffix (e.g. `{"/init/error": 403}`).
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
        self.chunks: list[tuple[float, bytes]] = []  # (perf_counter at arrival, data), chunked bodies
        self.trailers: dict[str, str] = {}

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Recorded({self.method} {self.path} {self.body[:200]!r})"


class FakeRuntimeAPI:
    def __init__(
        self,
        events: list[FakeEvent] | None = None,
        exhausted_status: int | None = None,
        *,
        block_when_empty: bool = False,
        restore_status: int = 200,
        post_status: dict[str, int] | None = None,
    ) -> None:
        self.events = collections.deque(events or [])
        self.exhausted_status = exhausted_status
        self.block_when_empty = block_when_empty
        self.restore_status = restore_status
        self.post_status = post_status or {}
        self.requests: list[Recorded] = []
        self.connections = 0
        self.waiting_next = 0  # /next requests blocked on an empty queue right now
        self.next_served_at: dict[str, float] = {}  # request id -> perf_counter after the event was sent
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeRuntimeAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify_all()
        self._listener.close()

    def add_event(self, event: FakeEvent) -> None:
        with self._lock:
            self.events.append(event)
            self._changed.notify_all()

    def wait_until(self, predicate: Any, timeout: float = 10.0) -> bool:
        """Wait (on the server's own condition, no polling) until `predicate()` holds under its lock."""
        with self._lock:
            return self._changed.wait_for(predicate, timeout)

    def wait_for_chunks(self, count: int, timeout: float = 10.0) -> list[tuple[float, bytes]]:
        """The chunks of the latest streamed body once it has at least `count` (or [] on timeout)."""

        def enough() -> bool:
            streams = [r for r in self.requests if r.headers.get("transfer-encoding") == "chunked"]
            return bool(streams) and len(streams[-1].chunks) >= count

        if not self.wait_until(enough, timeout):
            return []
        with self._lock:
            return list(
                [r for r in self.requests if r.headers.get("transfer-encoding") == "chunked"][-1].chunks
            )

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
        try:
            self._serve_connection(conn)
        except ConnectionError:
            return  # the runtime was killed mid-request (e.g. a worker stopped by SIGTERM)

    def _serve_connection(self, conn: socket.socket) -> None:
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
                if headers.get("transfer-encoding") == "chunked":
                    recorded = Recorded(method, path, headers, b"")
                    with self._lock:
                        self.requests.append(recorded)
                    self._read_chunked(reader, recorded)
                else:
                    body = reader.read(int(headers.get("content-length", "0")))
                    with self._lock:
                        self.requests.append(Recorded(method, path, headers, body))
                        self._changed.notify_all()
                if method == "GET" and path.endswith("/invocation/next"):
                    with self._lock:
                        if self.block_when_empty:
                            self.waiting_next += 1
                            self._changed.notify_all()
                            self._changed.wait_for(lambda: self.events or self._closed)
                            self.waiting_next -= 1
                        event = self.events.popleft() if self.events else None
                    if event is None:
                        if self.exhausted_status is None:
                            return  # close: the runtime sees "No Response from endpoint"
                        conn.sendall(_response(self.exhausted_status, b'{"errorType":"x"}'))
                        continue
                    conn.sendall(_event_response(event))
                    with self._lock:
                        self.next_served_at[event.request_id] = time.perf_counter()
                elif method == "GET" and path.endswith("/restore/next"):
                    conn.sendall(_response(self.restore_status, b""))
                elif method == "POST":
                    status = next((s for suffix, s in self.post_status.items() if path.endswith(suffix)), 202)
                    conn.sendall(_response(status, b'{"status":"OK"}'))
                else:
                    conn.sendall(_response(404, b"{}"))

    def _read_chunked(self, reader: Any, recorded: Recorded) -> None:
        while True:
            size = int(reader.readline().split(b";")[0].strip(), 16)
            if size == 0:
                break
            data = reader.read(size)
            reader.readline()  # CRLF after the chunk
            with self._lock:
                recorded.chunks.append((time.perf_counter(), data))
                self._changed.notify_all()
        while True:
            line = reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            recorded.trailers[name.strip().lower()] = value.strip()
        with self._lock:
            recorded.body = b"".join(data for _, data in recorded.chunks)
            recorded.received_at = time.perf_counter()
            self._changed.notify_all()


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
