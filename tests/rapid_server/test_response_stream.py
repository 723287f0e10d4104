"""ResponseStream, the caller's side of InvokeWithResponseStream, against fake connections: framing,
flow control, the size limit, and how it ends."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rapidboot.rapid_server.invoke.eventstream import Decoder, Message
from rapidboot.rapid_server.invoke.response_stream import ResponseStream


class FakeCaller:
    def __init__(self) -> None:
        self.head: tuple[int, list[tuple[str, str]]] | None = None
        self.body = b""
        self.ended = False
        self.backlog = 0
        self.gone = False
        self.drain_callbacks: list[Callable[[], None]] = []

    def start_chunked(self, status: int, headers: list[tuple[str, str]]) -> bool:
        assert self.head is None, "head written twice"
        self.head = (status, headers)
        return True

    def write_chunk(self, data: bytes) -> bool:
        assert self.head is not None and not self.ended
        if self.gone:
            return False
        self.body += data
        self.backlog += len(data)
        return True

    def end_chunked(self) -> None:
        self.ended = True

    @property
    def write_backlog(self) -> int:
        return self.backlog

    def when_drained(self, callback: Callable[[], None]) -> None:
        self.drain_callbacks.append(callback)

    def messages(self) -> list[Message]:
        return Decoder().feed(self.body)


class FakeSource:
    def __init__(self) -> None:
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def new_stream(limit: int = 200 * 1024 * 1024) -> tuple[ResponseStream, FakeCaller, FakeSource]:
    caller, source = FakeCaller(), FakeSource()
    stream = ResponseStream(caller, "req-1", limit)  # type: ignore[arg-type]
    return stream, caller, source


def complete_of(caller: FakeCaller) -> dict[str, Any]:
    last = caller.messages()[-1]
    assert last.event_type == "InvokeComplete"
    result: dict[str, Any] = json.loads(last.payload)
    return result


def test_chunks_are_forwarded_as_they_arrive_then_completed() -> None:
    stream, caller, source = new_stream()
    assert stream.begin(source)  # type: ignore[arg-type]
    assert caller.head == (
        200,
        [
            ("Content-Type", "application/vnd.amazon.eventstream"),
            ("X-Amz-Executed-Version", "$LATEST"),
            ("x-amzn-RequestId", "req-1"),
        ],
    )
    stream.receive(b"one")
    assert [m.payload for m in caller.messages()] == [b"one"]  # before the function has finished
    stream.receive(b"two")
    stream.finish(b"", None, "TG9n")
    messages = caller.messages()
    assert [m.event_type for m in messages] == ["PayloadChunk", "PayloadChunk", "InvokeComplete"]
    assert complete_of(caller) == {"LogResult": "TG9n"}
    assert caller.ended


def test_a_slow_caller_pauses_the_runtime_until_it_drains() -> None:
    stream, caller, source = new_stream()
    stream.begin(source)  # type: ignore[arg-type]
    stream.receive(b"x" * 512 * 1024)
    assert not source.paused
    stream.receive(b"x" * 600 * 1024)  # the backlog passes 1 MiB
    assert source.paused
    assert len(caller.drain_callbacks) == 1
    stream.receive(b"x")  # bytes already in flight are still passed on, with no second wait
    assert len(caller.drain_callbacks) == 1
    caller.backlog = 0
    caller.drain_callbacks.pop()()
    assert not source.paused


def test_finishing_resumes_a_paused_runtime() -> None:
    stream, caller, source = new_stream()
    stream.begin(source)  # type: ignore[arg-type]
    stream.receive(b"x" * 2 * 1024 * 1024)
    assert source.paused
    stream.finish(b"", b'{"errorType":"Sandbox.Timedout","errorMessage":"late"}', None)
    assert not source.paused
    assert complete_of(caller) == {"ErrorCode": "Sandbox.Timedout", "ErrorDetails": "late"}
    stream.receive(b"after the end")  # a runtime still sending after a timeout: dropped
    # 2 MiB went out as two messages (at most 1 MiB each), then the completion; nothing after it.
    assert [m.event_type for m in caller.messages()] == ["PayloadChunk", "PayloadChunk", "InvokeComplete"]


def test_past_the_limit_the_rest_is_dropped() -> None:
    stream, caller, source = new_stream(limit=10)
    stream.begin(source)  # type: ignore[arg-type]
    stream.receive(b"12345")
    stream.receive(b"678901")
    stream.receive(b"2")
    assert stream.overflowed
    assert stream.received == 12
    assert [m.payload for m in caller.messages()] == [b"12345"]


def test_a_whole_answer_is_one_chunk_and_an_error_none() -> None:
    stream, caller, _ = new_stream()
    stream.finish(b'{"ok":true}', None, None)
    assert [m.payload for m in caller.messages()] == [b'{"ok":true}', b"{}"]
    stream, caller, _ = new_stream()
    stream.finish(b"{...}", b"not json at all", None)
    assert [m.event_type for m in caller.messages()] == ["InvokeComplete"]
    assert complete_of(caller) == {"ErrorCode": "Unhandled", "ErrorDetails": "not json at all"}


def test_a_second_streamed_post_is_not_merged_into_the_first() -> None:
    stream, _, source = new_stream()
    assert stream.begin(source)  # type: ignore[arg-type]
    assert not stream.begin(FakeSource())  # type: ignore[arg-type]
    stream.finish(b"", None, None)
    assert not stream.begin(FakeSource())  # type: ignore[arg-type]


def test_a_caller_that_left_costs_nothing_and_ends_quietly() -> None:
    stream, caller, source = new_stream()
    stream.begin(source)  # type: ignore[arg-type]
    caller.gone = True
    stream.receive(b"x" * 4 * 1024 * 1024)
    assert not source.paused  # nobody to wait for
    stream.finish(b"", None, None)
    assert caller.ended
