"""HTTP/1.1 for both of the server's listeners, parsed by httptools (llhttp).

The protocol object only turns bytes into `Request`s and `Response`s into bytes; what a request means is
decided by the handler it is given (`runtime_api` or `invoke_api`). Requests on one connection are handled
one after another, in order, as HTTP/1.1 pipelining requires.

A handler may answer by returning a `Response`, or answer later by writing on the connection itself and
returning `None`: the Runtime API's `/next` long-poll is answered that way, by whoever hands it an event,
so that the check "is this connection still open?" and the write happen in the same loop step and an
event is never handed to a connection that has already gone.

A handler is a plain function or a coroutine function. A plain one (all of the Runtime API) is answered in
the loop step that parsed the request; only a coroutine function's request gets a task. Measured on the
2-core benchmark machine: a task per request plus the loop hop to its first step cost the server ~10 us of
CPU per runtime request, two runtime requests per invoke.

Whether a coroutine handler is cancelled when its connection goes is the listener's choice: the Runtime API's
parked `/next` must stop waiting; an Invoke API handler must not, since the invoke it runs goes on to its
end regardless of the invoker (the environment is answered and reused), see `Function.invoke`.

A listener may be given a `ConnectionPolicy` (the Invoke API is): a cap on open connections, and timeouts
for a connection idle between requests and for a request head that is slow to arrive. They are enforced by
one periodic sweep per listener, on a coarse clock of sweep ticks: a request costs the protocol two integer
stores, no timer and no clock read. A connection is never timed out while the server owes it an answer
(an invoke running, a `/next` parked). The Runtime API listeners get no policy: a runtime may wait on
`/next`, and keep its connection between invokes, for as long as its environment lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import socket
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

import httptools

# Header blocks are bytes built once; per response only the status line and the varying headers are joined.
_STATUS_LINES: dict[int, bytes] = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus
}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TCP_ESTABLISHED = 1  # tcpi_state, the first byte of Linux's struct tcp_info
_TCP_CLOSE = 7
# Linux's numbering of those states: macOS has no TCP_INFO, FreeBSD numbers them otherwise. Elsewhere a
# connection's state is not read (host.py).
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform.startswith("linux") else None
_MAX_HEADER_BYTES = 64 * 1024
# Header names our peers send (as curl, Python's clients, AWS SDKs and runtimes spell them, and lower-case),
# mapped to the lower-case str a Request's headers are keyed by: one dict lookup per header instead of a
# decode and a lower. Any other name is decoded as before.
_HEADER_NAMES = {
    spelling: name.lower()
    for name in (
        "Host",
        "User-Agent",
        "Accept",
        "Accept-Encoding",
        "Connection",
        "Content-Length",
        "Content-Type",
        "Transfer-Encoding",
        "Expect",
        "Lambda-Runtime-Function-Response-Mode",
        "Lambda-Runtime-Function-Error-Type",
        "Lambda-Runtime-Function-Error-Body",
        "Lambda-Runtime-Function-Xray-Error-Cause",
        "X-Amz-Invocation-Type",
        "X-Amz-Log-Type",
        "X-Amz-Client-Context",
    )
    for spelling in (name.encode(), name.lower().encode())
}
_MAX_QUEUED_REQUESTS = 16  # pipelined requests buffered per connection before we stop reading


class Request:
    """One parsed request. Header names are lower-case; a repeated header keeps its last value."""

    __slots__ = (
        "body",
        "body_aborted",
        "body_receiver",
        "body_size",
        "connection",
        "headers",
        "method",
        "path",
        "query",
        "too_large",
        "trailers",
    )

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], connection: Connection):
        self.method = method
        self.path = path  # percent-decoded
        self.query = query  # raw query string, without "?"
        self.headers = headers
        self.connection = connection
        self.body = b""
        self.body_size = 0  # bytes received, even past the limit
        self.too_large = False  # body exceeded the listener's limit: `body` holds nothing useful
        self.trailers: dict[str, str] = {}  # fields after a chunked body (lower-case names)
        # Set when the body is passed on as it arrives rather than kept (`BodyRouter`): `body` stays empty.
        self.body_receiver: BodyReceiver | None = None
        # Told if the connection ends before such a body does (set by the router with the receiver).
        self.body_aborted: Callable[[], None] | None = None


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None):
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []


# Either answers with a response, or with None: answered later through `Connection.send`.
AsyncHandler = Callable[[Request], Awaitable[Response | None]]
SyncHandler = Callable[[Request], Response | None]
Handler = AsyncHandler | SyncHandler
# Called once a request's head is in: where its body should go as it arrives, or None to keep it whole
# (`Request.body`) as usual. The request is handled once its body has ended either way.
BodyReceiver = Callable[[bytes], None]
BodyRouter = Callable[[Request], BodyReceiver | None]
# Called once a request's head is in: the most body bytes this request may bring (instead of the listener's
# `max_body_size`), e.g. the Invoke API's 1 MB for an Event invoke against 6 MB for a sync one.
BodyLimit = Callable[[Request], int]


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """What a listener allows its peers. `refusal` answers the first request of a connection over the cap
    (then it is closed); `notice` gets one line when the cap is reached."""

    max_connections: int | None = None
    idle_timeout_s: float | None = None  # between requests, or a request's body stalled
    head_timeout_s: float | None = None  # a request's head, from its first byte (or the connection's start)
    refusal: Response | None = None
    notice: Callable[[str], None] | None = None


def encode_response(response: Response, keep_alive: bool, head_only: bool = False) -> bytes:
    parts = _head(
        response.status, response.headers, b"Content-Length: %d\r\n" % len(response.body), keep_alive
    )
    if not head_only:  # the answer to HEAD has the headers GET would have, and no body (RFC 9110 9.3.2)
        parts.append(response.body)
    return b"".join(parts)


def _head(status: int, headers: list[tuple[str, str]], framing: bytes, keep_alive: bool) -> list[bytes]:
    """Status line, headers, the body's framing header, and the blank line."""
    # One encode for all the fields, not one per field: three answers per warm invoke, ~5 fields each.
    fields = "".join([f"{name}: {value}\r\n" for name, value in headers]).encode("latin-1")
    parts = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode(), fields, framing]
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    return parts


class Connection:
    """What a handler may know and do about the connection its request came on."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: HttpProtocol):
        self._protocol = protocol

    @property
    def is_open(self) -> bool:
        return self._protocol.transport is not None and not self._protocol.transport.is_closing()

    def send(self, response: Response) -> bool:
        """Write the answer to the request now being handled. False if the peer is gone (nothing sent)."""
        return self._protocol.send(response)

    def send_soon(self, response: Response) -> None:
        """Write the answer in the loop's next step (after what this step still writes elsewhere)."""
        protocol = self._protocol
        (protocol._loop or asyncio.get_running_loop()).call_soon(protocol.send, response)

    # A streamed answer: a head with `Transfer-Encoding: chunked`, chunks as they come, then the end.

    def start_chunked(self, status: int, headers: list[tuple[str, str]]) -> bool:
        """Write the head of a chunked answer to the request now being handled. False if it cannot be."""
        return self._protocol.start_chunked(status, headers)

    def write_chunk(self, data: bytes) -> bool:
        """One chunk of the answer started with `start_chunked`; False if the peer is gone."""
        return self._protocol.write_chunk(data)

    def end_chunked(self) -> None:
        self._protocol.end_chunked()

    @property
    def write_backlog(self) -> int:
        """Bytes written but not yet taken by the peer's socket."""
        transport = self._protocol.transport
        return transport.get_write_buffer_size() if transport is not None else 0

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the write backlog is below the transport's low-water mark (or the peer has
        gone): the signal to resume a source that was paused for a slow reader."""
        self._protocol.when_drained(callback)

    def pause_reading(self) -> None:
        """Stop reading from the peer (its sender blocks once the socket buffers fill): flow control."""
        self._protocol.pause_flow()

    def resume_reading(self) -> None:
        self._protocol.resume_flow()

    @property
    def peer_host(self) -> str:
        """The peer's IP address ("" once it has gone): an HTTP trigger's `sourceIp`."""
        transport = self._protocol.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        return str(peer[0]) if peer else ""

    @property
    def peer_closed(self) -> bool:
        """Whether the peer has already closed its end (its FIN arrived, maybe not yet read by the loop):
        one getsockopt, so a dying runtime's /next is not handed an event."""
        sock = self._protocol.probe
        if sock is None:
            return self._protocol.transport is None
        if _TCP_INFO is None:
            return False  # not known here: its next read tells
        try:
            state = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)
        except OSError:
            return False
        return bool(state and state[0] != _TCP_ESTABLISHED)

    @property
    def reset_by_peer(self) -> bool:
        """Whether the peer closed with data it had not read, or before our data arrived: TCP answers both
        with RST (a peer that read everything closes with FIN). So what we last sent never reached its
        reader, however the processes were scheduled meanwhile."""
        protocol = self._protocol
        if protocol.reset:
            return True
        sock = protocol.probe
        if sock is None:
            return False
        try:  # not `contextlib.suppress` (three Python calls): this runs for every invoke
            # The state first: a RST moves the connection out of ESTABLISHED in the same kernel step that
            # records the error, so an established one needs no second look.
            if _TCP_INFO is not None:
                state = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1)
                if state and state[0] == _TCP_ESTABLISHED:
                    return False
                if state and state[0] == _TCP_CLOSE:  # where a RST leaves the connection
                    return True
            return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET)
        except OSError:
            return False


class HttpProtocol(asyncio.Protocol):
    def __init__(
        self,
        handler: Handler,
        max_body_size: int,
        on_error: Callable[[BaseException], None],
        cancel_on_disconnect: bool = True,
        body_router: BodyRouter | None = None,
        body_limit: BodyLimit | None = None,
        admit: Callable[[socket.socket], bool] | None = None,
    ):
        self._handler = handler
        self._admit = admit  # asked once per connection, before any byte of it is read
        self._body_router = body_router
        self._body_limit = body_limit
        self._refused = False  # over the listener's connection cap (WatchedHttpProtocol)
        self._handler_is_async = asyncio.iscoroutinefunction(handler)
        self._max_body_size = max_body_size
        self._on_error = on_error
        self._cancel_on_disconnect = cancel_on_disconnect
        self._parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set with the transport
        self.socket: socket.socket | None = None
        self._probe: socket.socket | None = None  # made at the first look at the connection's state
        self.reset = False  # the connection ended with RST: the peer left data unread
        self._connection = Connection(self)
        self._queue: deque[tuple[Request, bool]] = deque()
        self._worker: asyncio.Task[None] | None = None  # runs a coroutine handler
        self._busy = False  # a request is being handled: the queued ones wait for its answer
        self._reading_paused = False  # too many pipelined requests queued
        self._flow_paused = False  # a body's receiver cannot pass it on as fast as it arrives
        self._streaming = False  # a chunked answer has been started and not yet ended
        self._drain_waiters: list[Callable[[], None]] = []
        # Parser state for the request being received.
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._current: Request | None = None
        self._body_parts: list[bytes] = []
        # Set while a handler runs; cleared once its response is written.
        self._awaiting_response = False
        self._keep_alive = True
        self._closing = False  # a request without keep-alive was received: it is the last one
        self._head_only = False  # the request being answered is a HEAD: its answer has no body
        self._limit = max_body_size  # of the request being received
        self._head_bytes = 0

    @property
    def probe(self) -> socket.socket | None:
        """A socket object of our own for reading this connection's state (getsockopt), None once it has
        gone. uvloop's `socket` extra is a stand-in that builds a new socket object for every getsockopt
        (a getsockname and a dup each time); a Runtime API connection's state is read twice per invoke. So
        the first look makes one, on a duplicate of the descriptor, closed with the connection."""
        probe = self._probe
        if probe is None:
            sock = self.socket
            if sock is None:
                return None
            try:
                probe = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
            except OSError:
                return None
            self._probe = probe
        return probe

    # asyncio.Protocol -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        # Kept for the per-request steps: asyncio.get_running_loop() is a getpid syscall on Python 3.11.
        with contextlib.suppress(RuntimeError):  # none when a unit test drives the protocol by hand
            self._loop = asyncio.get_running_loop()
        sock = transport.get_extra_info("socket")
        self.socket = sock
        if self._admit is not None and sock is not None and not self._admit(sock):
            self._closing = True
            self.transport.abort()  # refused: closed with RST, nothing read
            return
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # after a request with `Connection: close`, nothing more is read (RFC 9112 section 9.6)
        if self._current is None:
            # llhttp reports a header only once it is complete: bound what an unfinished head may buffer.
            # Only the bytes before the blank line count; the body may follow in the same read.
            end_of_head = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end_of_head < 0 else end_of_head
            if self._head_bytes > _MAX_HEADER_BYTES:
                self._reject(431, b'{"message":"Request header fields too large"}')
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, b'{"message":"Protocol upgrades are not supported"}')
        except httptools.HttpParserError as exc:
            if self._closing:
                # llhttp refuses data after a `Connection: close` request, and stops at an early answer
                # (`_AnsweredEarly`); either way the rest is ignored.
                return
            # httptools wraps an exception raised in one of our callbacks; unwrap ours.
            cause = exc.__context__
            if isinstance(cause, _RequestTooLarge):
                self._reject(cause.status, cause.body)
            else:
                detail = str(exc).replace('"', "'").encode("utf-8", "replace")[:200]
                self._reject(400, b'{"message":"Malformed HTTP request: %s"}' % detail)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reset = isinstance(exc, ConnectionResetError)
        receiving = self._current
        if receiving is not None and receiving.body_aborted is not None:
            self._current = None
            receiving.body_aborted()  # a body passed on as it arrived will not end: its receiver must know
        self.transport = None
        self.socket = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        self._queue.clear()
        self._wake_drain_waiters()
        if self._cancel_on_disconnect and self._worker is not None and not self._worker.done():
            # A handler waiting on this connection must stop waiting: nothing can reach it.
            self._worker.cancel()

    # httptools callbacks ----------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._body_parts = []
        self._current = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_header_bytes(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called for every header of every request (eight per warm invoke): the size check is inlined, and
        # the usual names are looked up already lower-cased rather than decoded and lowered each time.
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > _MAX_HEADER_BYTES:
            raise _RequestTooLarge(431, b'{"message":"Request header fields too large"}')
        fields = self._current.trailers if self._current is not None else self._headers
        key = _HEADER_NAMES.get(name)
        if key is None:
            key = name.decode("latin-1").lower()
        fields[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._head_bytes = 0
        parsed = httptools.parse_url(self._url)
        path = parsed.path.decode("latin-1")
        if "%" in path:  # unquote is a Python function: called only when there is something to decode
            path = unquote(path)
        query = parsed.query.decode("latin-1") if parsed.query else ""
        method = self._parser.get_method().decode("ascii")
        request = self._current = Request(method, path, query, self._headers, self._connection)
        if self._body_router is not None:
            # A body passed on as it arrives is not kept: the size limit for kept bodies does not apply.
            request.body_receiver = self._body_router(request)
        self._limit = self._body_limit(request) if self._body_limit is not None else self._max_body_size
        declared = self._headers.get("content-length")
        expects_continue = "expect" in self._headers and self._headers["expect"].lower() == "100-continue"
        if (
            request.body_receiver is None
            and declared is not None
            and declared.isdigit()
            and int(declared) > self._limit
        ):
            # Known to be too large before a byte of it arrives: refuse now rather than read megabytes.
            request.too_large = True
        if expects_continue and (request.too_large or self._refused):
            # The client waits for our word before sending the body: answer now, without it, and close
            # after the answer, as RFC 9110 section 10.1.1 allows (curl would otherwise wait a second,
            # then send every byte of a body we refuse).
            self._current = None
            self._closing = True
            self._queue.append((request, False))
            if not self._busy:
                self._handle_queued()
            raise _AnsweredEarly
        if expects_continue and self.transport is not None:
            # curl waits a second for this before sending any body over 1 KiB.
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        request = self._current
        assert request is not None
        request.body_size += len(body)
        if request.body_receiver is not None:
            request.body_receiver(body)
            return
        if request.too_large:
            return
        if request.body_size > self._limit:
            request.too_large = True
            self._body_parts = []
            return
        self._body_parts.append(body)

    def on_message_complete(self) -> None:
        request = self._current
        assert request is not None
        if not request.too_large:
            request.body = b"".join(self._body_parts)
        self._body_parts = []
        self._current = None
        keep_alive = self._parser.should_keep_alive() and not request.too_large
        self._closing = not keep_alive
        self._head_bytes = 0
        self._queue.append((request, keep_alive))
        if len(self._queue) >= _MAX_QUEUED_REQUESTS and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        if not self._busy:
            self._handle_queued()

    # Handling ---------------------------------------------------------------------------------------------

    def _handle_queued(self) -> None:
        """Handle queued requests in order until one is not answered at once (pipelining: the next waits)."""
        while (
            self._queue and not self._busy and self.transport is not None and not self.transport.is_closing()
        ):
            request, keep_alive = self._queue.popleft()
            if self._reading_paused:
                self._reading_paused = False
                if not self._flow_paused:
                    self.transport.resume_reading()
            self._awaiting_response = True
            self._keep_alive = keep_alive
            self._head_only = request.method == "HEAD"
            self._busy = True
            if self._handler_is_async:
                loop = self._loop or asyncio.get_running_loop()
                self._worker = loop.create_task(self._await(request))
                continue
            try:
                response = cast(SyncHandler, self._handler)(request)
            except Exception as exc:  # a handler bug must not take the listener down
                response = self._internal_error(exc)
            if response is not None:
                self.send(response)
            # None: answered later through the connection (`send`), which lets the queue move on.

    async def _await(self, request: Request) -> None:
        try:
            response = await cast(AsyncHandler, self._handler)(request)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # a handler bug must not take the listener down
            response = self._internal_error(exc)
            if self._streaming and self.transport is not None:
                self.transport.close()  # midway through a streamed answer: only closing can tell the peer
        if response is not None:
            self.send(response)

    def _internal_error(self, exc: Exception) -> Response:
        self._on_error(exc)
        return Response(500, b'{"message":"Internal server error"}', [_JSON])

    def _can_answer(self) -> bool:
        """A request awaits its answer, none has been started, and the connection is open."""
        return (
            self._awaiting_response
            and not self._streaming
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def send(self, response: Response) -> bool:
        if not self._can_answer():
            return False
        assert self.transport is not None
        self.transport.write(encode_response(response, self._keep_alive, self._head_only))
        self._answered()
        return True

    def _answered(self) -> None:
        """The answer to the request being handled is written: close, or go on to the next request."""
        assert self.transport is not None
        self._awaiting_response = False
        self._busy = False
        if not self._keep_alive:
            self.transport.close()
            return
        if self._queue:
            # Pipelined requests wait for this answer. Handled in a later step, not inside the caller's
            # (e.g. an event being dispatched), whose state is not settled yet.
            (self._loop or asyncio.get_running_loop()).call_soon(self._handle_queued)

    def start_chunked(self, status: int, headers: list[tuple[str, str]]) -> bool:
        if not self._can_answer():
            return False
        assert self.transport is not None
        head = _head(status, headers, b"Transfer-Encoding: chunked\r\n", self._keep_alive)
        self.transport.write(b"".join(head))
        self._streaming = True
        return True

    def write_chunk(self, data: bytes) -> bool:
        if not self._streaming or self.transport is None or self.transport.is_closing():
            return False
        if data and not self._head_only:  # an empty chunk would end the body (RFC 9112 section 7.1)
            self.transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        return True

    def end_chunked(self) -> None:
        if not self._streaming:
            return
        self._streaming = False
        if self.transport is None or self.transport.is_closing():
            return
        if not self._head_only:
            self.transport.write(b"0\r\n\r\n")
        self._answered()

    # Flow control ----------------------------------------------------------------------------------------

    def pause_writing(self) -> None:  # asyncio.Protocol: our write backlog passed the high-water mark
        pass  # writers look at `Connection.write_backlog` themselves and wait with `when_drained`

    def resume_writing(self) -> None:
        self._wake_drain_waiters()

    def when_drained(self, callback: Callable[[], None]) -> None:
        transport = self.transport
        if transport is None or transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[0]:
            callback()
            return
        self._drain_waiters.append(callback)

    def _wake_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for callback in waiters:
            callback()

    def pause_flow(self) -> None:
        if not self._flow_paused and self.transport is not None:
            self._flow_paused = True
            self.transport.pause_reading()

    def resume_flow(self) -> None:
        if self._flow_paused and self.transport is not None:
            self._flow_paused = False
            if not self._reading_paused:
                self.transport.resume_reading()

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > _MAX_HEADER_BYTES:
            raise _RequestTooLarge(431, b'{"message":"Request header fields too large"}')

    def _reject(self, status: int, body: bytes) -> None:
        """Answer a request we could not parse, then close: the byte stream can no longer be trusted."""
        if self.transport is None:
            return
        self._queue.clear()
        if self._cancel_on_disconnect and self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._awaiting_response = False  # whatever a handler still answers is not written
        self.transport.write(encode_response(Response(status, body, [_JSON]), keep_alive=False))
        self.transport.close()


_JSON = ("Content-Type", "application/json")


class WatchedHttpProtocol(HttpProtocol):
    """A connection of a listener with a `ConnectionPolicy`: counted against its cap, and stamped with the
    watch's tick when data comes and when an answer is written, for the sweep to time it out. A subclass,
    so that a listener without a policy (a Runtime API's) pays nothing for it per request."""

    def __init__(self, *args: Any, watch: ConnectionWatch, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._watch = watch
        # Sweep ticks of the last data or answer, and of the start of the request head being received
        # (None once it is in).
        self._quiet_since = 0
        self._head_since: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_since = self._quiet_since = self._watch.tick  # the first head is due from now
        if not self._watch.opened(self):
            self._refused = True  # over the cap: every request gets the refusal, no handler runs
            self._handler = self._refuse
            self._handler_is_async = False

    def data_received(self, data: bytes) -> None:
        self._quiet_since = self._watch.tick
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._watch.closed(self)

    def on_message_begin(self) -> None:
        if self._head_since is None:
            self._head_since = self._watch.tick
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._head_since = None
        super().on_headers_complete()

    def _answered(self) -> None:
        self._quiet_since = self._watch.tick
        super()._answered()

    def _refuse(self, request: Request) -> Response:
        """The handler of a connection over the cap: the listener's refusal, then close."""
        self._keep_alive = False
        return self._watch.policy.refusal or Response(503, b'{"message":"Too many connections"}', [_JSON])

    def expire(self, tick: int, idle_ticks: int | None, head_ticks: int | None) -> bool:
        """Close this connection if its peer has kept it waiting too long (ConnectionWatch's sweep). Never
        while the server owes an answer or has stopped reading itself."""
        transport = self.transport
        if (
            transport is None
            or transport.is_closing()
            or self._busy
            or self._streaming
            or self._flow_paused
            or self._reading_paused
        ):
            return False
        if self._head_since is not None and head_ticks is not None and tick - self._head_since >= head_ticks:
            transport.close()  # a request head that does not arrive in time: slow, or never coming
            return True
        if idle_ticks is not None and tick - self._quiet_since >= idle_ticks:
            transport.close()  # idle between requests, or a body that stopped coming
            return True
        return False


class _RequestTooLarge(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(status)
        self.status = status
        self.body = body


class _AnsweredEarly(Exception):
    """Raised from a parser callback to stop parsing: the request is answered without its body."""


class ConnectionWatch:
    """One listener's open connections: counted against the cap, and swept for timeouts.

    The sweep runs every quarter of the shortest timeout while any connection is open, and advances
    `tick`, the clock protocols stamp their activity with. A connection is closed once a whole timeout
    (rounded up to whole ticks) has passed since the stamp: never early, at most one tick late.
    """

    __slots__ = ("_at_cap", "_head_ticks", "_idle_ticks", "_interval", "_open", "_timer", "policy", "tick")

    def __init__(self, policy: ConnectionPolicy):
        self.policy = policy
        self.tick = 0
        self._open: set[WatchedHttpProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._at_cap = False
        timeouts = [t for t in (policy.idle_timeout_s, policy.head_timeout_s) if t is not None]
        self._interval = min(timeouts) / 4 if timeouts else None
        self._idle_ticks = self._ticks(policy.idle_timeout_s)
        self._head_ticks = self._ticks(policy.head_timeout_s)

    def _ticks(self, timeout_s: float | None) -> int | None:
        if timeout_s is None or self._interval is None:
            return None
        return math.ceil(timeout_s / self._interval - 1e-9) + 1  # +1: the stamp may be late in its tick

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def opened(self, protocol: WatchedHttpProtocol) -> bool:
        """Count a new connection; False if it is over the cap."""
        self._open.add(protocol)
        if self._timer is None and self._interval is not None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.sweep)
        cap = self.policy.max_connections
        if cap is None or len(self._open) <= cap:
            return True
        if not self._at_cap:
            self._at_cap = True
            if self.policy.notice is not None:
                self.policy.notice(
                    f"rapidboot: {cap} connections are open, the --max-connections cap: further connections "
                    f"are refused (503) until some close"
                )
        return False

    def closed(self, protocol: WatchedHttpProtocol) -> None:
        self._open.discard(protocol)
        cap = self.policy.max_connections
        if self._at_cap and cap is not None and len(self._open) <= cap * 9 // 10:
            self._at_cap = False  # well below the cap again: the next time it is reached is logged
        if not self._open and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def sweep(self) -> None:
        """One tick: close the connections whose time is up (run by its own timer; tests call it)."""
        self.tick += 1
        for protocol in list(self._open):
            protocol.expire(self.tick, self._idle_ticks, self._head_ticks)
        if self._open and self._interval is not None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self.sweep)
        else:
            self._timer = None


async def start_listener(
    handler: Handler,
    host: str,
    port: int,
    max_body_size: int,
    on_error: Callable[[BaseException], None],
    cancel_on_disconnect: bool = True,
    body_router: BodyRouter | None = None,
    body_limit: BodyLimit | None = None,
    policy: ConnectionPolicy | None = None,
    admit: Callable[[socket.socket], bool] | None = None,
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    factory: Callable[[], HttpProtocol]
    if policy is None:

        def factory() -> HttpProtocol:
            return HttpProtocol(
                handler, max_body_size, on_error, cancel_on_disconnect, body_router, body_limit, admit
            )

    else:
        watch = ConnectionWatch(policy)

        def factory() -> HttpProtocol:
            return WatchedHttpProtocol(
                handler,
                max_body_size,
                on_error,
                cancel_on_disconnect,
                body_router,
                body_limit,
                admit,
                watch=watch,
            )

    return await loop.create_server(
        factory,
        host,
        port,
        reuse_address=True,
        backlog=1024,
    )


def bound_port(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port
