"""The socket client against scripted raw servers: keep-alive, reconnect, chunked, broken replies."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from rapidboot.runtime.client import RuntimeClient, RuntimeClientError

NEXT_OK = (
    b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: id-1\r\nLambda-Runtime-Deadline-Ms: 123\r\n"
    b"Lambda-Runtime-Invoked-Function-Arn: arn\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\n\r\n{}"
)
ACCEPTED = b'HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{"status":"OK"}'


@pytest.fixture(autouse=True)
def no_hangs() -> Iterator[None]:
    # The client never times out by design (/next may block for hours); a broken test must not.
    socket.setdefaulttimeout(10)
    yield
    socket.setdefaulttimeout(None)


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
    return data


@contextmanager
def scripted_server(
    script: Callable[[socket.socket, list[bytes]], None],
) -> Iterator[tuple[str, list[bytes]]]:
    """`script(listener, requests)` runs in a thread; yields (address, recorded requests)."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []
    thread = threading.Thread(target=script, args=(listener, requests), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}", requests
    finally:
        listener.close()
        thread.join(5)


def test_keep_alive_next_and_post() -> None:
    def script(listener: socket.socket, requests: list[bytes]) -> None:
        conn, _ = listener.accept()
        with conn:
            for reply in (NEXT_OK, ACCEPTED):
                requests.append(read_request(conn))
                conn.sendall(reply)
            read_request(conn)

    with scripted_server(script) as (address, requests):
        client = RuntimeClient(address, "ua/1")
        invocation = client.next_invocation()
        assert (invocation.request_id, invocation.deadline_ms, invocation.body) == ("id-1", 123, b"{}")
        assert invocation.invoked_function_arn == "arn" and invocation.content_type == "application/json"
        assert client.post_response("id-1", b'"r"', "application/json").status == 202
        client.close()
    assert requests[0] == (
        b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n"
        + f"Host: {address}\r\nUser-Agent: ua/1\r\n\r\n".encode()
    )
    assert requests[1].startswith(b"POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 3\r\n" in requests[1] and requests[1].endswith(b'\r\n\r\n"r"')


def test_reconnects_once_when_server_closed_idle_connection() -> None:
    def script(listener: socket.socket, requests: list[bytes]) -> None:
        conn, _ = listener.accept()
        requests.append(read_request(conn))
        conn.sendall(NEXT_OK)
        conn.close()  # server drops the kept-alive connection
        conn, _ = listener.accept()
        with conn:
            requests.append(read_request(conn))
            conn.sendall(ACCEPTED)

    with scripted_server(script) as (address, requests):
        client = RuntimeClient(address, "ua")
        client.next_invocation()
        assert client.post_response("id-1", b"{}", "application/json").status == 202
    assert len(requests) == 2


def test_chunked_next_response() -> None:
    body = b'{"k": "' + b"v" * 100_000 + b'"}'
    chunks = b"".join(
        b"%x;e=1\r\n%s\r\n" % (len(body[i : i + 999]), body[i : i + 999]) for i in range(0, len(body), 999)
    )
    reply = (
        b"HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: c-1\r\ntransfer-encoding: chunked\r\n\r\n"
        + chunks
        + b"0\r\nX-T: 1\r\n\r\n"
    )

    def script(listener: socket.socket, requests: list[bytes]) -> None:
        conn, _ = listener.accept()
        with conn:
            read_request(conn)
            for i in range(0, len(reply), 1000):  # dribble it out
                conn.sendall(reply[i : i + 1000])
            read_request(conn)

    with scripted_server(script) as (address, _):
        invocation = RuntimeClient(address, "ua").next_invocation()
    assert invocation.body == body and invocation.content_type is None


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "in the middle of the Content-Length body"),
        (b"garbage\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "missing or invalid request id"),
        (b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\n{}", "/next returned HTTP 500"),
    ],
)
def test_broken_replies_raise_clear_errors(reply: bytes, message: str) -> None:
    def script(listener: socket.socket, requests: list[bytes]) -> None:
        conn, _ = listener.accept()
        with conn:
            read_request(conn)
            conn.sendall(reply)
            conn.shutdown(socket.SHUT_WR)
            read_request(conn)

    with scripted_server(script) as (address, _), pytest.raises(RuntimeClientError, match=message):
        RuntimeClient(address, "ua").next_invocation()


def test_connection_refused() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(RuntimeClientError, match="cannot connect"):
        RuntimeClient(f"127.0.0.1:{port}", "ua").next_invocation()


def test_error_posts_carry_headers() -> None:
    def script(listener: socket.socket, requests: list[bytes]) -> None:
        conn, _ = listener.accept()
        with conn:
            for _ in range(2):
                requests.append(read_request(conn))
                conn.sendall(ACCEPTED)
            read_request(conn)

    with scripted_server(script) as (address, requests):
        client = RuntimeClient(address, "ua")
        client.post_invocation_error("r-1", b"{}", "ValueError", '{"x": 1}', "inv-9")
        client.post_init_error(b"{}", "Runtime.ImportModuleError")
        client.close()
    assert b"Lambda-Runtime-Function-Error-Type: ValueError\r\n" in requests[0]
    assert b'Lambda-Runtime-Function-XRay-Error-Cause: {"x": 1}\r\n' in requests[0]
    assert b"Lambda-Runtime-Invocation-Id: inv-9\r\n" in requests[0]
    assert requests[1].startswith(b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\n")
    assert b"Lambda-Runtime-Function-Error-Type: Runtime.ImportModuleError\r\n" in requests[1]


def test_bad_address() -> None:
    with pytest.raises(RuntimeClientError, match="host:port"):
        RuntimeClient("no-port", "ua")
