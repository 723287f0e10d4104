"""The latency benchmarks' own clients: the raw-socket invoke client and the floor's ping-pong."""

from __future__ import annotations

import socket
import threading

import pytest

from rapidboot.benchmarks import report
from rapidboot.benchmarks.floor import FloorClient
from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.results import FLOOR, OURS, PEER, REFERENCE, Entry, Results, Row


def scripted_server(scripts: list[list[bytes]]) -> tuple[int, list[bytes], threading.Thread]:
    """A server on one connection: it reads the n-th request whole (recorded) and answers it with the n-th
    script, each part a separate send, then closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve() -> None:
        with listener, listener.accept()[0] as conn:
            for script in scripts:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += conn.recv(1 << 20)
                requests.append(head + b"\r\n\r\n" + body)
                for part in script:
                    conn.sendall(part)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], requests, thread


def test_content_length_chunked_and_keep_alive() -> None:
    big = b"b" * 3_000_000
    port, requests, thread = scripted_server(
        [
            [
                b"HTTP/1.1 200 OK\r\nContent-Le",
                b"ngth: 7\r\nX-Amz-Function-Error: Unhandled\r\n\r\n{",
                b'"a":1}',
            ],
            [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n",
                b"0\r\nX-Trailer: yes\r\n\r\n",
            ],
            [b"HTTP/1.1 202 Accepted\r\ncontent-length: 3000000\r\n\r\n", big[:1000], big[1000:]],
        ]
    )
    client = InvokeClient("127.0.0.1", port)
    try:
        status, headers, body = client.post("/2015-03-31/functions/f/invocations", b'{"x": 1}')
        assert (status, headers[b"x-amz-function-error"], bytes(body)) == (200, b"Unhandled", b'{"a":1}')
        status, _, body = client.post("/p", b"{}")
        assert (status, bytes(body)) == (200, b"hello world")
        status, _, body = client.post("/p", big)
        assert (status, bytes(body)) == (202, big)
    finally:
        client.close()
    thread.join(10)
    assert requests[0] == (
        b"POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nHost: bench\r\nContent-Length: 8\r\n\r\n"
        b'{"x": 1}'
    )
    assert requests[2].endswith(big)


@pytest.mark.parametrize(
    "script",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil closed"],
    ],
    ids=["closed-mid-body", "no-length"],
)
def test_a_response_it_cannot_read_is_an_error(script: list[bytes]) -> None:
    port, _, thread = scripted_server([script])
    client = InvokeClient("127.0.0.1", port)
    try:
        with pytest.raises(ConnectionError):
            client.post("/p", b"{}")
    finally:
        client.close()
        thread.join(10)


def test_the_floor_is_two_round_trips_of_the_payload() -> None:
    floor = FloorClient()
    try:
        for payload in (b"{}", b"x" * 3_000_000):
            assert floor.post("", payload) == (200, {}, payload)
    finally:
        floor.close()


def test_latency_rows_read_against_the_floor() -> None:
    row = Row(
        "warm",
        "warm.1KB",
        "warm invoke, 1 KB event",
        "ms",
        [
            Entry("rapidboot", OURS, [0.2, 0.2, 0.2]),
            Entry("rie+awslambdaric", PEER, [0.5, 0.5, 0.5]),
            Entry(FLOOR, REFERENCE, [0.05, 0.05, 0.05]),
        ],
        params={"client": "raw"},
    )
    assert row.floor_ratio() == pytest.approx(4.0)
    assert row.best_peer() is not None and row.best_peer().name == "rie+awslambdaric"  # type: ignore[union-attr]
    results = Results("rapidboot bench", True, "now", {"packages": {}}, rows=[row])
    header, line = report.table_rows(results)
    assert line[header.index("x floor")] == "4.00"
    assert line[header.index("ratio")] == "0.40 vs rie+awslambdaric"
    assert results.to_json()["rows"][0]["ratio_to_floor"] == 4.0
