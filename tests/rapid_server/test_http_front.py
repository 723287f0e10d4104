"""The HTTP front as a careful server keeps it (issue 12, section 3): `HEAD` answers without a body,
`Expect: 100-continue` answered before the body is sent, and a listener's connection policy (cap, idle and
request-head timeouts) enforced by its sweep.

Raw bytes into `HttpProtocol` on a fake transport, no sockets. The sweep is driven by hand (`sweep()`), so
the timeouts are checked in ticks of the protocol's own clock, never against the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from rapidboot.rapid_server import rendering
from rapidboot.rapid_server.data_plane import runtime_api
from rapidboot.rapid_server.data_plane.environment import Environment
from rapidboot.rapid_server.http import (
    ConnectionPolicy,
    ConnectionWatch,
    HttpProtocol,
    Request,
    Response,
    WatchedHttpProtocol,
)

WAIT_S = 5.0
LIMIT = 1000


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def writelines(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.write(piece)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


def split_head(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """The first response's status and headers, and everything written after its head."""
    head, sep, rest = bytes(data).partition(b"\r\n\r\n")
    assert sep, f"no complete response head in {bytes(data)!r}"
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return int(lines[0].split(" ")[1]), headers, rest


class Connection:
    """One protocol on a fake transport; the handler records each request."""

    def __init__(
        self,
        handler: Callable[[Request], Awaitable[Response | None]] | Callable[[Request], Response | None],
        watch: ConnectionWatch | None = None,
        body_limit: Callable[[Request], int] | None = None,
    ) -> None:
        self.transport = FakeTransport()
        self.errors: list[BaseException] = []
        if watch is None:
            self.protocol = HttpProtocol(handler, LIMIT, self.errors.append, body_limit=body_limit)
        else:
            self.protocol = WatchedHttpProtocol(
                handler, LIMIT, self.errors.append, body_limit=body_limit, watch=watch
            )
        self.protocol.connection_made(cast(Any, self.transport))

    def feed(self, data: bytes) -> None:
        self.protocol.data_received(data)

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await asyncio.sleep(0)


async def echo(request: Request) -> Response:
    return Response(200, b"the body of " + request.method.encode(), [("Content-Type", "text/plain")])


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))


# HEAD -----------------------------------------------------------------------------------------------------


def test_head_is_answered_with_the_headers_of_get_and_no_body() -> None:
    async def scenario() -> None:
        connection = Connection(echo)
        connection.feed(b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        await connection.until(lambda: connection.transport.written.endswith(b"the body of GET"))
        status, headers, rest = split_head(connection.transport.written)
        assert status == 200
        assert headers["content-length"] == str(len(b"the body of HEAD"))
        # The next bytes are the second response's head: the first carried no body.
        assert rest.startswith(b"HTTP/1.1 200 OK\r\n")

    run(scenario)


def test_head_of_a_streamed_answer_has_no_chunks() -> None:
    async def streaming(request: Request) -> Response | None:
        request.connection.start_chunked(200, [("Content-Type", "text/plain")])
        request.connection.write_chunk(b"never sent to a HEAD")
        request.connection.end_chunked()
        return None

    async def scenario() -> None:
        connection = Connection(streaming)
        connection.feed(b"HEAD /s HTTP/1.1\r\nHost: a\r\n\r\n")
        await connection.until(lambda: b"\r\n\r\n" in connection.transport.written)
        status, headers, rest = split_head(connection.transport.written)
        assert (status, headers["transfer-encoding"], rest) == (200, "chunked", b"")

    run(scenario)


class ParkingEnvironment:
    """Enough of an environment for the Runtime API's routes to be reached."""

    def runtime_next(self, connection: object) -> Response | None:
        return None


def test_runtime_api_head_is_refused_without_a_body() -> None:
    """The Runtime API listener (a plain handler, answered in the parsing step) obeys HEAD too."""
    handler = runtime_api.make_handler(cast(Environment, ParkingEnvironment()))
    connection = Connection(handler)
    connection.feed(b"HEAD /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\n\r\n")
    status, headers, rest = split_head(connection.transport.written)
    assert status == 405
    assert headers["allow"] == "GET"
    assert int(headers["content-length"]) > 0
    assert rest == b""


# Expect: 100-continue -------------------------------------------------------------------------------------


def test_expect_continue_within_the_limit_is_invited() -> None:
    async def scenario() -> None:
        connection = Connection(echo)
        connection.feed(b"POST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert connection.transport.written == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.feed(b"hello")
        await connection.until(lambda: connection.transport.written.endswith(b"the body of POST"))

    run(scenario)


def test_expect_continue_over_the_limit_is_answered_at_once_without_the_body() -> None:
    seen: list[Request] = []

    def refuse(request: Request) -> Response:
        seen.append(request)
        return Response(413, b"too large", [])

    connection = Connection(refuse)
    connection.feed(
        b"POST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (LIMIT + 1)
    )
    # Answered in the step that read the head: no invitation, no waiting for a body that is not coming.
    status, headers, rest = split_head(connection.transport.written)
    assert (status, headers["connection"], rest) == (413, "close", b"too large")
    assert connection.transport.closed
    (request,) = seen
    assert request.too_large and request.body == b""
    connection.feed(b"x" * 10)  # a client that sends it anyway changes nothing
    assert len(seen) == 1


def test_the_body_limit_of_a_request_is_asked_once_its_head_is_in() -> None:
    """The Invoke API's limit depends on the request (1 MB for Event, 6 MB sync): a declared body over
    the request's own limit is refused before it is sent, though it is within the listener's."""
    seen: list[Request] = []

    def record(request: Request) -> Response:
        seen.append(request)
        return Response(413 if request.too_large else 200)

    def limit(request: Request) -> int:
        return 10 if request.headers.get("x-small") else LIMIT

    connection = Connection(record, body_limit=limit)
    connection.feed(b"POST /p HTTP/1.1\r\nX-Small: 1\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
    assert split_head(connection.transport.written)[0] == 413
    other = Connection(record, body_limit=limit)
    other.feed(b"POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\n" + b"x" * 11)
    assert split_head(other.transport.written)[0] == 200
    assert [r.too_large for r in seen] == [True, False]


# The connection policy ------------------------------------------------------------------------------------


def watched(policy: ConnectionPolicy) -> ConnectionWatch:
    return ConnectionWatch(policy)


def sweeps_until_closed(watch: ConnectionWatch, connection: Connection, most: int = 100) -> int:
    for count in range(1, most + 1):
        watch.sweep()
        if connection.transport.closed:
            return count
    raise AssertionError(f"not closed after {most} sweeps")


def test_a_silent_connection_is_closed_once_its_head_timeout_has_passed() -> None:
    async def scenario() -> None:
        watch = watched(ConnectionPolicy(head_timeout_s=1.0, idle_timeout_s=100.0))
        connection = Connection(echo, watch)
        # Sweeps come every quarter of the shortest timeout; a whole timeout must pass first.
        assert sweeps_until_closed(watch, connection) == 5
        assert watch.open_connections == 1  # until the transport reports the loss
        connection.protocol.connection_lost(None)
        assert watch.open_connections == 0

    run(scenario)


def test_a_head_trickling_in_is_closed_by_its_head_timeout() -> None:
    """Bytes keep coming (a slow-loris): they do not restart the head's clock."""

    async def scenario() -> None:
        watch = watched(ConnectionPolicy(head_timeout_s=1.0, idle_timeout_s=1.0))
        connection = Connection(echo, watch)
        for piece in (b"GET", b" /x", b" HTTP", b"/1.1", b"\r\nH", b"ost:", b" a\r\n"):
            connection.feed(piece)
            watch.sweep()
            if connection.transport.closed:
                break
        assert connection.transport.closed
        assert connection.transport.written == b""

    run(scenario)


def test_an_idle_keep_alive_connection_is_closed_after_its_idle_timeout() -> None:
    async def scenario() -> None:
        watch = watched(ConnectionPolicy(head_timeout_s=100.0, idle_timeout_s=1.0))
        connection = Connection(echo, watch)
        connection.feed(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        await connection.until(lambda: connection.transport.written.endswith(b"the body of GET"))
        assert sweeps_until_closed(watch, connection) == 5

    run(scenario)


def test_a_connection_awaiting_its_answer_is_never_timed_out() -> None:
    """An invoke may run for 15 minutes: the server owes the answer, the peer is not idle."""

    async def scenario() -> None:
        release = asyncio.Event()

        async def slow(request: Request) -> Response:
            await release.wait()
            return Response(200, b"late")

        watch = watched(ConnectionPolicy(head_timeout_s=1.0, idle_timeout_s=1.0))
        connection = Connection(slow, watch)
        connection.feed(b"POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        for _ in range(50):
            watch.sweep()
        assert not connection.transport.closed
        release.set()
        await connection.until(lambda: connection.transport.written.endswith(b"late"))
        assert not connection.transport.closed
        assert sweeps_until_closed(watch, connection) == 5  # idle from its answer on

    run(scenario)


def test_connections_over_the_cap_are_refused_and_the_cap_is_logged_once() -> None:
    async def scenario() -> None:
        notices: list[str] = []
        refusal = rendering.too_many_connections(2)
        watch = watched(ConnectionPolicy(max_connections=2, refusal=refusal, notice=notices.append))
        first, second, third, fourth = (Connection(echo, watch) for _ in range(4))
        assert watch.open_connections == 4
        assert len(notices) == 1
        assert "--max-connections" in notices[0] and "2 connections" in notices[0]
        # Refused at once, not invited to send a body that would be refused anyway.
        third.feed(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        await third.until(lambda: third.transport.closed)
        status, headers, body = split_head(third.transport.written)
        assert (status, headers["x-amzn-errortype"], headers["connection"]) == (
            503,
            "ServiceException",
            "close",
        )
        assert b"--max-connections" in body
        fourth.feed(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        await fourth.until(lambda: fourth.transport.closed)
        assert split_head(fourth.transport.written)[0] == 503
        first.feed(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
        await first.until(lambda: first.transport.written.endswith(b"the body of GET"))
        assert not first.transport.closed
        # Hovering at the cap logs nothing more; once well below it, reaching it again is logged again.
        third.protocol.connection_lost(None)
        Connection(echo, watch)
        assert len(notices) == 1
        for connection in (fourth, second, first):
            connection.protocol.connection_lost(None)
        assert watch.open_connections == 1
        Connection(echo, watch), Connection(echo, watch)
        assert len(notices) == 2

    run(scenario)


@pytest.mark.parametrize("timeout_s", [0.1, 1.0, 7.5])
def test_a_timeout_is_never_cut_short_by_the_tick(timeout_s: float) -> None:
    """Whatever the timeouts, the ticks counted cover the whole timeout even if the activity was stamped
    just before a tick (the tick is a quarter of the shortest timeout)."""
    watch = ConnectionWatch(ConnectionPolicy(head_timeout_s=0.1, idle_timeout_s=timeout_s))
    interval = 0.1 / 4
    idle_ticks = watch._idle_ticks
    assert idle_ticks is not None
    assert (idle_ticks - 1) * interval >= timeout_s - 1e-9
    assert (idle_ticks - 2) * interval < timeout_s
