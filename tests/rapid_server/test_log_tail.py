"""The log kept for `X-Amz-Log-Type: Tail`: one invoke's lines only, the last 4 KB of them."""

from __future__ import annotations

import io

from rapidboot.rapid_server.data_plane.logs import TAIL_BYTES, LogSink


def test_a_tail_keeps_its_own_invokes_lines_as_the_function_wrote_them() -> None:
    stream = io.BytesIO()
    sink = LogSink(stream)
    sink.open_tail("A")
    sink.platform("START RequestId: A Version: $LATEST", request_id="A")
    sink.function_output("fn", "A", b"hello from A")
    sink.function_output("fn", "B", b"hello from B")
    sink.function_output("fn", None, b"init line")
    sink.platform("rapidboot: a server line")
    sink.platform("END RequestId: A", "REPORT RequestId: A\tDuration: 1.00 ms", request_id="A")
    assert sink.close_tail("A") == (
        b"START RequestId: A Version: $LATEST\nhello from A\nEND RequestId: A\n"
        b"REPORT RequestId: A\tDuration: 1.00 ms\n"
    )
    # The server's own log still has every line, prefixed.
    assert b"[fn A] hello from A\n" in stream.getvalue()
    assert b"[fn B] hello from B\n" in stream.getvalue()


def test_a_tail_is_the_last_4_kb() -> None:
    sink = LogSink(io.BytesIO())
    sink.open_tail("A")
    for index in range(2000):
        sink.function_output("fn", "A", b"line %05d" % index)
    sink.platform("REPORT RequestId: A", request_id="A")
    tail = sink.close_tail("A")
    assert len(tail) == TAIL_BYTES
    assert tail.endswith(b"line 01999\nREPORT RequestId: A\n")


def test_closing_stops_keeping_and_an_unknown_tail_is_empty() -> None:
    sink = LogSink(io.BytesIO())
    sink.open_tail("A")
    sink.function_output("fn", "A", b"one")
    assert sink.close_tail("A") == b"one\n"
    sink.function_output("fn", "A", b"two")
    assert sink.close_tail("A") == b""
