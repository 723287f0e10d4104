"""`rapidboot.rapid_server.http.HttpProtocol` fed raw bytes through a fake transport: no sockets.

Each test runs its own event loop (`asyncio.run`): the protocol starts a worker task per connection, so it
must be driven from inside a running loop. Waiting is always for a condition, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rapidboot.rapid_server.http import BodyReceiver, HttpProtocol, Request, Response

MAX_BODY = 1024
WAIT_S = 2.0


class FakeTransport:
    """Records what the protocol writes and does to its connection."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.paused = False
        self.pause_count = 0

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def writelines(self, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.write(piece)

    def get_write_buffer_size(self) -> int:
        return 0  # everything written is taken at once

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True
        self.pause_count += 1

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


@dataclass
class ParsedResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[str, str]] = field(default_factory=list)


def parse_responses(data: bytes) -> list[ParsedResponse]:
    """Split what the server wrote into responses; fails the test on anything not well formed."""
    responses = []
    rest = bytes(data)
    while rest:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, f"unterminated response head: {head!r}"
        lines = head.decode("latin-1").split("\r\n")
        version, status, _reason = lines[0].split(" ", 2)
        assert version == "HTTP/1.1"
        raw_headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(": ")
            assert colon, f"bad header line {line!r}"
            raw_headers.append((name, value))
        headers = {name.lower(): value for name, value in raw_headers}
        code = int(status)
        if 100 <= code < 200:
            responses.append(ParsedResponse(code, headers, b"", raw_headers))
            continue
        if headers.get("transfer-encoding") == "chunked":
            assert "content-length" not in headers
            body, rest = _dechunk(rest)
        else:
            length = int(headers["content-length"])
            assert len(rest) >= length, "body shorter than Content-Length"
            body, rest = rest[:length], rest[length:]
        responses.append(ParsedResponse(code, headers, body, raw_headers))
    return responses


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    """A chunked body (RFC 9112 section 7.1), no trailers: the body and what follows it."""
    body = b""
    while True:
        size_line, sep, data = data.partition(b"\r\n")
        assert sep, "unterminated chunk size"
        size = int(size_line, 16)
        if size == 0:
            assert data.startswith(b"\r\n"), "no blank line after the last chunk"
            return body, data[2:]
        assert data[size : size + 2] == b"\r\n", "chunk not followed by CRLF"
        body, data = body + data[:size], data[size + 2 :]


class Server:
    """One protocol instance on a fake transport, with a recording handler."""

    def __init__(
        self,
        handler: Callable[[Request], Awaitable[Response | None]] | None = None,
        max_body_size: int = MAX_BODY,
        body_router: Callable[[Request], BodyReceiver | None] | None = None,
    ) -> None:
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self._handler = handler or self.echo
        self.transport = FakeTransport()
        self.protocol = HttpProtocol(self._record, max_body_size, self.errors.append, body_router=body_router)
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    async def _record(self, request: Request) -> Response | None:
        self.requests.append(request)
        return await self._handler(request)

    @staticmethod
    async def echo(request: Request) -> Response:
        body = f"{request.method} {request.path} {len(request.body)}".encode()
        return Response(200, body, [("Content-Type", "text/plain")])

    def feed(self, *chunks: bytes) -> None:
        for chunk in chunks:
            self.protocol.data_received(chunk)

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not predicate():
                await asyncio.sleep(0)

    async def idle(self) -> None:
        """Until the protocol has nothing left to do: no request queued, no handler running. A check that
        something did *not* happen comes after this, when nothing more can happen (not after N loop turns)."""
        protocol = self.protocol
        await self.until(
            lambda: not protocol._queue and (protocol._worker is None or protocol._worker.done())
        )

    async def responses(self, count: int) -> list[ParsedResponse]:
        await self.until(lambda: _complete_responses(self.transport.written) >= count)
        return parse_responses(self.transport.written)


def _complete_responses(data: bytes) -> int:
    try:
        return len([r for r in parse_responses(data) if r.status >= 200])
    except (AssertionError, KeyError, ValueError, IndexError):
        return 0


def parking() -> tuple[Callable[[Request], Awaitable[Response | None]], list[Request]]:
    """A handler that answers nothing now (returns None), and the requests it parked: answered later
    through their connection, as the Runtime API's /next is."""
    parked: list[Request] = []

    async def handler(request: Request) -> Response | None:
        parked.append(request)
        return None

    return handler, parked


async def loop_moved_on() -> None:
    """A later event: a request on another connection, fed now and answered by its own handler task. What
    the loop had already been asked to do (a step queued by the code under test) has run by then."""
    other = Server()
    other.feed(GET)
    await other.responses(1)


def run(coro_fn: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(10):
            await coro_fn()

    asyncio.run(bounded())


GET = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"


# Basic requests ------------------------------------------------------------------------------------------


def test_simple_get_is_parsed_and_answered_exactly() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"GET /hello HTTP/1.1\r\nHost: example\r\nX-Mixed-Case: Value\r\n\r\n")
        await server.responses(1)
        (request,) = server.requests
        assert request.method == "GET"
        assert request.path == "/hello"
        assert request.query == ""
        assert request.headers == {"host": "example", "x-mixed-case": "Value"}
        assert request.body == b""
        assert not request.too_large
        assert bytes(server.transport.written) == (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nGET /hello 0"
        )
        assert not server.transport.closed

    run(scenario)


def test_post_with_content_length_delivers_the_body() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello", b" world")
        (response,) = await server.responses(1)
        assert server.requests[0].body == b"hello world"
        assert server.requests[0].body_size == 11
        assert response.body == b"POST /p 11"

    run(scenario)


def test_chunked_request_body_is_reassembled() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5\r\nhello\r\n",
            b"1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
        )
        await server.responses(1)
        assert server.requests[0].body == b"hello world"
        assert not server.requests[0].too_large

    run(scenario)


def test_keep_alive_serves_two_sequential_requests() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(GET)
        await server.responses(1)
        server.feed(b"POST /second HTTP/1.1\r\nContent-Length: 2\r\n\r\nab")
        first, second = await server.responses(2)
        assert (first.status, second.status) == (200, 200)
        assert second.body == b"POST /second 2"
        assert "connection" not in first.headers and "connection" not in second.headers
        assert not server.transport.closed

    run(scenario)


def test_pipelined_requests_are_handled_one_at_a_time_and_answered_in_order() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        handled: list[tuple[str, int]] = []  # each request, and how many answers were written when it began

        async def handler(request: Request) -> Response:
            handled.append((request.path, len(parse_responses(server.transport.written))))
            if request.path == "/slow":
                await gate.wait()
            return Response(200, request.path.encode())

        server = Server(handler)
        server.feed(
            b"GET /slow HTTP/1.1\r\n\r\n"
            b"GET /fast HTTP/1.1\r\n\r\n"
            b"POST /third HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        )
        await server.until(lambda: len(handled) == 1)
        assert server.transport.written == b""
        gate.set()
        responses = await server.responses(3)
        assert [r.body for r in responses] == [b"/slow", b"/fast", b"/third"]
        # Each began only once the one before it was answered.
        assert handled == [("/slow", 0), ("/fast", 1), ("/third", 2)]

    run(scenario)


def test_many_pipelined_requests_pause_then_resume_reading() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(GET * 40)
        assert server.transport.pause_count >= 1
        responses = await server.responses(40)
        assert len(responses) == 40
        assert not server.transport.paused

    run(scenario)


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", id="connection-close"),
        pytest.param(b"GET / HTTP/1.0\r\n\r\n", id="http-1.0"),
    ],
)
def test_non_persistent_connection_is_closed_after_the_response(request_bytes: bytes) -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(request_bytes)
        (response,) = await server.responses(1)
        assert response.status == 200
        assert response.headers["connection"] == "close"
        await server.until(lambda: server.transport.closed)

    run(scenario)


def test_http_1_0_keep_alive_stays_open() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        (response,) = await server.responses(1)
        assert "connection" not in response.headers
        assert not server.transport.closed

    run(scenario)


def test_request_with_connection_close_is_answered_and_a_pipelined_one_ignored() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"GET /one HTTP/1.1\r\nConnection: close\r\n\r\n" + GET)
        await server.until(lambda: server.transport.closed)
        await server.idle()
        assert [r.path for r in server.requests] == ["/one"]
        (response,) = parse_responses(server.transport.written)
        assert response.status == 200

    run(scenario)


def test_stray_crlf_after_a_closing_request_is_ignored() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"POST /one HTTP/1.1\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx\r\n")
        (response,) = await server.responses(1)
        assert response.status == 200
        await server.until(lambda: server.transport.closed)

    run(scenario)


def test_expect_100_continue_is_answered_before_the_body_is_sent() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        assert bytes(server.transport.written) == b"HTTP/1.1 100 Continue\r\n\r\n"
        server.feed(b"data")
        interim, final = await server.responses(1)
        assert interim.status == 100
        assert final.status == 200
        assert server.requests[0].body == b"data"

    run(scenario)


# Limits --------------------------------------------------------------------------------------------------


def test_declared_content_length_over_the_limit_is_too_large_without_buffering() -> None:
    async def scenario() -> None:
        server = Server()
        declared = MAX_BODY * 10
        server.feed(b"POST /big HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % declared)
        # Refused before a byte of the body: no invitation to send it.
        assert server.transport.written == b""
        for _ in range(10):
            server.feed(b"x" * MAX_BODY)
        (response,) = await server.responses(1)
        (request,) = server.requests
        assert request.too_large
        assert request.body == b""
        assert request.body_size == declared
        assert response.headers["connection"] == "close"
        await server.until(lambda: server.transport.closed)

    run(scenario)


def test_body_exactly_at_the_limit_is_accepted() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"POST /edge HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % MAX_BODY + b"y" * MAX_BODY)
        await server.responses(1)
        assert not server.requests[0].too_large
        assert server.requests[0].body == b"y" * MAX_BODY

    run(scenario)


def test_chunked_body_over_the_limit_is_too_large() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"z" * 400
        for _ in range(3):  # 1200 > MAX_BODY: the third chunk crosses the limit
            server.feed(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        server.feed(b"0\r\n\r\n")
        (response,) = await server.responses(1)
        request = server.requests[0]
        assert request.too_large
        assert request.body == b""
        assert response.headers["connection"] == "close"

    run(scenario)


def test_chunked_body_size_counts_every_byte_past_the_limit() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"z" * 400
        for _ in range(5):
            server.feed(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        server.feed(b"0\r\n\r\n")
        await server.responses(1)
        assert server.requests[0].body_size == 2000

    run(scenario)


def test_malformed_request_gets_400_and_the_connection_is_closed() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"THIS IS NOT HTTP\r\n\r\n")
        (response,) = parse_responses(server.transport.written)
        assert response.status == 400
        assert response.headers["connection"] == "close"
        assert response.headers["content-type"] == "application/json"
        assert response.body.startswith(b'{"message":"Malformed HTTP request')
        assert server.transport.closed
        assert server.requests == []

    run(scenario)


def test_malformed_request_after_a_good_one_on_a_kept_alive_connection() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(GET)
        await server.responses(1)
        server.feed(b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
        first, second = parse_responses(server.transport.written)
        assert (first.status, second.status) == (200, 400)
        assert server.transport.closed

    run(scenario)


def test_protocol_upgrade_is_refused() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        (response,) = parse_responses(server.transport.written)
        assert response.status == 400
        assert b"upgrade" in response.body.lower()
        assert server.transport.closed
        await server.idle()
        assert server.requests == [], "the upgrade request reached the handler"

    run(scenario)


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", id="one-big-header"),
        pytest.param(
            b"GET / HTTP/1.1\r\n"
            + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
            + b"\r\n",
            id="many-headers",
        ),
        pytest.param(b"GET /" + b"u" * 70_000 + b" HTTP/1.1\r\n\r\n", id="long-url"),
    ],
)
def test_huge_request_head_gets_431_and_close(head: bytes) -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(head)
        (response,) = parse_responses(server.transport.written)
        assert response.status == 431
        assert server.transport.closed
        assert server.requests == []

    run(scenario)


def test_unterminated_huge_header_is_refused_before_it_completes() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"GET / HTTP/1.1\r\nX-Endless: ")
        for _ in range(32):  # 2 MiB of one header value, never terminated
            server.feed(b"a" * 65536)
            if server.transport.closed:
                break
        (response,) = parse_responses(server.transport.written)
        assert response.status == 431

    run(scenario)


def test_path_is_percent_decoded_and_query_kept_raw() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(
            b"GET /2015-03-31/functions/fn%3A%24LATEST/a%20b?Qualifier=%24LATEST&x=1+2 HTTP/1.1\r\n\r\n"
        )
        await server.responses(1)
        request = server.requests[0]
        assert request.path == "/2015-03-31/functions/fn:$LATEST/a b"
        assert request.query == "Qualifier=%24LATEST&x=1+2"

    run(scenario)


def test_repeated_header_keeps_the_last_value() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(b"GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n")
        await server.responses(1)
        assert server.requests[0].headers == {"x-a": "2"}

    run(scenario)


# Handlers ------------------------------------------------------------------------------------------------


def test_handler_that_raises_gets_500_and_on_error_and_the_connection_lives_on() -> None:
    async def scenario() -> None:
        boom = ValueError("handler bug")

        async def handler(request: Request) -> Response:
            if request.path == "/boom":
                raise boom
            return Response(200, b"fine")

        server = Server(handler)
        server.feed(b"GET /boom HTTP/1.1\r\n\r\n")
        (response,) = await server.responses(1)
        assert response.status == 500
        assert response.headers["content-type"] == "application/json"
        assert server.errors == [boom]
        assert not server.transport.closed
        server.feed(GET)
        _, second = await server.responses(2)
        assert second.body == b"fine"

    run(scenario)


def test_connection_lost_cancels_a_waiting_handler() -> None:
    async def scenario() -> None:
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def handler(request: Request) -> Response:
            started.set()
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            raise AssertionError("unreachable")

        server = Server(handler)
        server.feed(GET)
        async with asyncio.timeout(WAIT_S):
            await started.wait()
        assert server.requests[0].connection.is_open
        server.protocol.connection_lost(None)
        assert not server.requests[0].connection.is_open
        async with asyncio.timeout(WAIT_S):
            await cancelled.wait()
        assert server.transport.written == b""
        assert server.errors == []

    run(scenario)


def test_connection_lost_drops_queued_requests() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()

        async def handler(request: Request) -> Response:
            await gate.wait()
            return Response(200)

        server = Server(handler)
        server.feed(GET + GET + GET)
        await server.until(lambda: len(server.requests) == 1)
        server.protocol.connection_lost(None)
        gate.set()
        await server.idle()
        assert len(server.requests) == 1

    run(scenario)


def test_handler_returning_none_answers_later_through_the_connection() -> None:
    async def scenario() -> None:
        handler, parked = parking()
        server = Server(handler)
        server.feed(GET)
        await server.until(lambda: len(parked) == 1)
        await server.idle()  # the handler has returned None: nothing is written until the connection is used
        assert server.transport.written == b""
        connection = parked[0].connection
        assert connection.send(Response(200, b"later", [("X-Late", "1")]))
        (response,) = parse_responses(server.transport.written)
        assert (response.status, response.body, response.headers["x-late"]) == (200, b"later", "1")
        # One answer per request: a second send has nothing to answer.
        assert not connection.send(Response(200, b"again"))
        assert len(parse_responses(server.transport.written)) == 1

    run(scenario)


def test_deferred_answer_is_not_written_after_the_peer_has_gone() -> None:
    async def scenario() -> None:
        handler, parked = parking()
        server = Server(handler)
        server.feed(GET)
        await server.until(lambda: len(parked) == 1)
        server.protocol.connection_lost(None)
        assert not parked[0].connection.send(Response(200, b"too late"))
        assert server.transport.written == b""

    run(scenario)


def test_deferred_answer_on_a_closing_connection_closes_it() -> None:
    async def scenario() -> None:
        handler, parked = parking()
        server = Server(handler)
        server.feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        await server.until(lambda: len(parked) == 1)
        assert parked[0].connection.send(Response(204))
        (response,) = parse_responses(server.transport.written)
        assert response.headers["connection"] == "close"
        assert server.transport.closed

    run(scenario)


def test_deferred_answer_keeps_pipelined_responses_in_order() -> None:
    async def scenario() -> None:
        parked: list[Request] = []
        second_began_after: list[bytes] = []  # what had been written when /second was handled

        async def handler(request: Request) -> Response | None:
            if request.path == "/deferred":
                parked.append(request)
                return None
            second_began_after.append(bytes(server.transport.written))
            return Response(200, b"second")

        server = Server(handler)
        server.feed(b"GET /deferred HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n")
        await server.until(lambda: len(parked) == 1)
        await loop_moved_on()  # /second has had every chance to start too early
        assert parked[0].connection.send(Response(200, b"first"))
        responses = await server.responses(2)
        assert [r.body for r in responses] == [b"first", b"second"]
        assert [[r.body for r in parse_responses(w)] for w in second_began_after] == [[b"first"]]

    run(scenario)


# Streamed answers and bodies (InvokeWithResponseStream) --------------------------------------------------


def test_a_chunked_answer_is_framed_and_the_next_pipelined_request_waits_for_its_end() -> None:
    async def scenario() -> None:
        ended: list[bool] = []
        second_began_after_the_end: list[bool] = []

        async def handler(request: Request) -> Response | None:
            if request.path == "/stream":
                return None  # answered through the connection, in pieces
            second_began_after_the_end.append(bool(ended))
            return Response(200, b"second")

        server = Server(handler)
        server.feed(b"GET /stream HTTP/1.1\r\n\r\nGET /second HTTP/1.1\r\n\r\n")
        await server.until(lambda: len(server.requests) == 1)
        connection = server.requests[0].connection
        assert connection.start_chunked(200, [("Content-Type", "application/vnd.amazon.eventstream")])
        assert not connection.start_chunked(200, [])  # one head per answer
        assert not connection.send(Response(500))  # nor a whole answer in the middle of a stream
        assert connection.write_chunk(b"one")
        assert connection.write_chunk(b"")  # nothing is written: an empty chunk would end the body
        assert connection.write_chunk(b"two")
        await loop_moved_on()  # /second has had every chance to start mid-stream
        assert len(server.requests) == 1
        ended.append(True)
        connection.end_chunked()
        first, second = await server.responses(2)
        assert second_began_after_the_end == [True], "the pipelined request was handled mid-stream"
        assert (first.status, first.body) == (200, b"onetwo")
        assert first.headers["transfer-encoding"] == "chunked"
        assert first.headers["content-type"] == "application/vnd.amazon.eventstream"
        assert second.body == b"second"

    run(scenario)


def test_a_chunked_answer_to_the_last_request_closes_the_connection() -> None:
    async def scenario() -> None:
        handler, parked = parking()
        server = Server(handler)
        server.feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        await server.until(lambda: len(parked) == 1)
        connection = parked[0].connection
        assert connection.start_chunked(200, [])
        connection.write_chunk(b"bye")
        assert not server.transport.closed
        connection.end_chunked()
        (response,) = parse_responses(server.transport.written)
        assert (response.body, response.headers["connection"]) == (b"bye", "close")
        assert server.transport.closed
        assert not connection.write_chunk(b"late")

    run(scenario)


def test_a_routed_body_is_passed_on_as_it_arrives_not_kept_nor_limited() -> None:
    async def scenario() -> None:
        pieces: list[bytes] = []

        def router(request: Request) -> BodyReceiver | None:
            return pieces.append if request.path == "/routed" else None

        server = Server(body_router=router)
        head = b"POST /routed HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Error\r\n\r\n"
        big = b"x" * (MAX_BODY * 3)  # three times what a kept body may hold
        server.feed(head, b"%x\r\n%s\r\n" % (len(big), big))
        await server.until(lambda: len(pieces) > 0)
        assert server.requests == []  # handled only once the body has ended
        server.feed(b"3\r\nend\r\n", b"0\r\nX-Error: boom\r\n\r\n")
        (response,) = await server.responses(1)
        assert b"".join(pieces) == big + b"end"
        request = server.requests[0]
        assert (request.body, request.too_large, request.body_size) == (b"", False, len(big) + 3)
        assert request.trailers == {"x-error": "boom"}
        assert response.status == 200
        # Not routed: kept whole, and limited, as before.
        server.feed(b"POST /kept HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        _, kept = await server.responses(2)
        assert kept.body == b"POST /kept 5"
        assert pieces == [big, b"end"]

    run(scenario)


def test_flow_control_and_the_pipeline_limit_each_hold_reading_until_both_let_go() -> None:
    async def scenario() -> None:
        handler, parked = parking()
        server = Server(handler)
        server.feed(GET)
        await server.until(lambda: len(parked) == 1)
        connection = parked[0].connection
        connection.pause_reading()  # e.g. a stream's reader is slow
        assert server.transport.paused
        server.feed(GET * 16)  # a full pipeline queue pauses reading too
        connection.resume_reading()
        assert server.transport.paused, "the queued pipeline still holds reading"
        connection.pause_reading()
        connection.send(Response(200))  # the queue moves: it lets go, flow control does not
        await server.until(lambda: len(parked) == 2)
        assert server.transport.paused
        connection.resume_reading()
        assert not server.transport.paused
        drained: list[bool] = []
        connection.when_drained(lambda: drained.append(True))  # nothing backlogged: called at once
        assert drained == [True]

    run(scenario)


# Properties ----------------------------------------------------------------------------------------------


def _check_output(server: Server) -> None:
    """Well-formed responses only; a 4xx is the last thing written, and the connection is then closed."""
    responses = parse_responses(server.transport.written)
    for index, response in enumerate(responses):
        assert response.status in (100, 200, 400, 431, 500), response
        if 400 <= response.status < 500:
            assert index == len(responses) - 1
            assert response.headers["connection"] == "close"
            assert server.transport.closed


async def _feed_and_settle(server: Server, chunks: list[bytes]) -> None:
    for chunk in chunks:
        if server.transport.closed:
            break
        server.feed(chunk)
    for _ in range(20):
        await asyncio.sleep(0)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return [p for p in pieces if p]


_FUZZ_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


_HTTP_ISH = st.lists(
    st.sampled_from(
        [
            b"GET ",
            b"POST ",
            b"/",
            b"?a=1",
            b" HTTP/1.1",
            b" HTTP/1.0",
            b"\r\n",
            b": ",
            b"Content-Length",
            b"Transfer-Encoding",
            b"chunked",
            b"Connection",
            b"close",
            b"keep-alive",
            b"Expect",
            b"100-continue",
            b"Upgrade",
            b"0",
            b"5",
            b"ffffffffffff",
            b"-1",
            b"hello",
            b"\x00",
            b"\xff",
            b" ",
            b"\n",
        ]
    ),
    max_size=40,
).map(b"".join)


@_FUZZ_SETTINGS
@given(st.lists(st.one_of(st.binary(max_size=200), _HTTP_ISH), max_size=6))
def test_arbitrary_bytes_never_raise(chunks: list[bytes]) -> None:
    async def scenario() -> None:
        server = Server()
        await _feed_and_settle(server, chunks)
        _check_output(server)
        assert server.errors == []

    run(scenario)


_TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12
)
_PATH_SEGMENT = st.text(alphabet="abcxyz0123456789-._~%20", min_size=0, max_size=10).map(
    lambda s: s.replace("%", "")
)


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    segments = draw(st.lists(_PATH_SEGMENT, min_size=1, max_size=4))
    path = "/" + "/".join(segments)
    query = draw(
        st.one_of(
            st.just(""), st.from_regex(r"[a-z]{1,5}=[a-z0-9%]{0,6}(&[a-z]{1,3}=[0-9]{1,3})?", fullmatch=True)
        )
    )
    headers = draw(
        st.dictionaries(
            _TOKEN.filter(
                lambda t: (
                    t.lower()
                    not in ("content-length", "transfer-encoding", "connection", "expect", "upgrade")
                )
            ),
            st.text(alphabet="abc xyz0123456789;=/", max_size=20).map(str.strip),
            max_size=5,
        )
    )
    body = draw(st.binary(max_size=MAX_BODY))
    chunked = draw(st.booleans())
    head = f"{method} {path}{'?' + query if query else ''} HTTP/1.1\r\n"
    for name, value in headers.items():
        head += f"{name}: {value}\r\n"
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        sizes = draw(st.lists(st.integers(1, 64), max_size=8))
        encoded, rest = b"", body
        for size in sizes:
            piece, rest = rest[:size], rest[size:]
            if piece:
                encoded += b"%x\r\n" % len(piece) + piece + b"\r\n"
        if rest:
            encoded += b"%x\r\n" % len(rest) + rest + b"\r\n"
        raw = head.encode() + encoded + b"0\r\n\r\n"
    else:
        head += f"Content-Length: {len(body)}\r\n\r\n"
        raw = head.encode() + body
    expected_headers = {name.lower(): value for name, value in headers.items()}
    return raw, {"method": method, "path": path, "query": query, "headers": expected_headers, "body": body}


def _summary(request: Request) -> dict[str, object]:
    headers = {k: v for k, v in request.headers.items() if k not in ("content-length", "transfer-encoding")}
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": headers,
        "body": request.body,
    }


@_FUZZ_SETTINGS
@given(valid_requests(), st.lists(st.integers(min_value=0), max_size=12))
def test_splitting_a_valid_request_anywhere_parses_the_same(
    request_and_expected: tuple[bytes, dict[str, object]], cuts: list[int]
) -> None:
    raw, expected = request_and_expected

    async def scenario() -> None:
        whole = Server()
        await _feed_and_settle(whole, [raw])
        pieces = Server()
        await _feed_and_settle(pieces, _split(raw, cuts))
        assert len(whole.requests) == len(pieces.requests) == 1
        assert _summary(whole.requests[0]) == expected
        assert _summary(pieces.requests[0]) == expected
        assert pieces.transport.written == whole.transport.written
        _check_output(pieces)

    run(scenario)


@_FUZZ_SETTINGS
@given(
    st.lists(valid_requests(), min_size=1, max_size=3),
    st.binary(max_size=60),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_valid_requests_then_garbage_in_any_split(
    requests: list[tuple[bytes, dict[str, object]]], garbage: bytes, cuts: list[int]
) -> None:
    stream = b"".join(raw for raw, _ in requests) + garbage

    async def scenario() -> None:
        server = Server()
        await _feed_and_settle(server, _split(stream, cuts))
        _check_output(server)
        # Requests reach the handler in order and as sent. A protocol error may drop valid requests still
        # queued behind it (the connection is then closed); otherwise every one of them was handled.
        handled = [_summary(r) for r in server.requests[: len(requests)]]
        assert handled == [e for _, e in requests][: len(handled)]
        if not server.transport.closed:
            assert len(handled) == len(requests)
        assert server.errors == []

    run(scenario)


def test_large_body_in_the_same_read_as_the_head_is_not_a_header_overflow() -> None:
    """A POST whose head and first 256 KiB of body arrive in one read, on a kept-alive connection after
    an earlier request: only the head counts toward the header limit."""
    body = b"b" * (256 * 1024)

    async def scenario() -> None:
        server = Server(max_body_size=1024 * 1024)
        server.feed(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        await server.responses(1)
        server.feed(b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        responses = await server.responses(2)
        assert [r.status for r in responses] == [200, 200]
        assert responses[1].body == b"POST /second %d" % len(body)
        assert not server.transport.closed

    run(scenario)


def test_trailers_after_a_chunked_body_are_kept_apart_from_the_headers() -> None:
    async def scenario() -> None:
        server = Server()
        server.feed(
            b"POST /r HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Trailer: Lambda-Runtime-Function-Error-Type\r\n\r\n"
            b"5\r\nhello\r\n0\r\nLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\r\n"
        )
        await server.responses(1)
        request = server.requests[0]
        assert request.body == b"hello"
        assert request.trailers == {"lambda-runtime-function-error-type": "Runtime.StreamError"}
        assert "lambda-runtime-function-error-type" not in request.headers

    run(scenario)
