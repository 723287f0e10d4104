"""The event stream framing against botocore's own parser, and our decoder on any input."""

from __future__ import annotations

import zlib

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.rapid_server.invoke.eventstream import (
    MAX_CHUNK_PAYLOAD,
    Decoder,
    EventStreamError,
    encode_message,
    invoke_complete,
    payload_chunks,
)

header_text = st.text(min_size=1, max_size=40).filter(lambda text: len(text.encode()) < 256)


@given(
    headers=st.lists(st.tuples(header_text, st.text(max_size=200)), max_size=4, unique_by=lambda h: h[0]),
    payload=st.binary(max_size=4096),
)
def test_botocore_reads_what_we_encode(headers: list[tuple[str, str]], payload: bytes) -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(encode_message(headers, payload))
    (message,) = list(buffer)
    assert message.headers == dict(headers)
    assert message.payload == payload


@given(payload=st.binary(max_size=4096), cut=st.integers(min_value=0, max_value=5000))
def test_our_decoder_reassembles_messages_split_anywhere(payload: bytes, cut: int) -> None:
    wire = payload_chunks(payload) + invoke_complete("E", "details", None)
    cut = min(cut, len(wire))
    decoder = Decoder()
    messages = decoder.feed(wire[:cut]) + decoder.feed(wire[cut:])
    assert [message.event_type for message in messages] == ["PayloadChunk", "InvokeComplete"]
    assert messages[0].payload == payload
    assert messages[1].payload == b'{"ErrorCode":"E","ErrorDetails":"details"}'
    assert decoder.pending == 0


@given(st.binary(max_size=200), st.binary(max_size=64))
def test_our_decoder_parses_or_refuses_any_bytes(garbage: bytes, payload: bytes) -> None:
    """Any input either parses, into messages that encode back to the bytes consumed, or raises
    EventStreamError (nothing else); a valid message in front decodes either way."""
    valid = encode_message([(":event-type", "PayloadChunk")], payload)
    decoder = Decoder()
    try:
        messages = decoder.feed(valid + garbage)
    except EventStreamError:
        return
    consumed = len(valid + garbage) - decoder.pending
    assert (
        b"".join(encode_message(list(m.headers.items()), m.payload) for m in messages)
        == ((valid + garbage)[:consumed])
    )
    assert messages[0].payload == payload


def test_a_big_chunk_is_split_under_the_message_limit() -> None:
    data = bytes(range(256)) * (MAX_CHUNK_PAYLOAD // 256 * 2 + 3)
    messages = Decoder().feed(payload_chunks(data))
    assert len(messages) == 3
    assert all(len(message.payload) <= MAX_CHUNK_PAYLOAD for message in messages)
    assert b"".join(message.payload for message in messages) == data


def test_invoke_complete_carries_only_what_is_set() -> None:
    (message,) = Decoder().feed(invoke_complete(None, None, "TG9n"))
    assert message.headers == {
        ":event-type": "InvokeComplete",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    assert message.payload == b'{"LogResult":"TG9n"}'


def test_a_corrupted_message_is_refused_by_its_crc() -> None:
    wire = bytearray(payload_chunks(b"hello"))
    wire[-6] ^= 0xFF  # a payload byte
    with pytest.raises(EventStreamError, match="message CRC"):
        Decoder().feed(bytes(wire))
    wire = bytearray(payload_chunks(b"hello"))
    wire[1] ^= 0xFF  # the length
    with pytest.raises(EventStreamError, match="prelude CRC"):
        Decoder().feed(bytes(wire))


def test_the_crc_is_the_standard_crc32() -> None:
    wire = encode_message([], b"")
    assert len(wire) == 16
    assert int.from_bytes(wire[8:12], "big") == zlib.crc32(wire[:8])
    assert int.from_bytes(wire[12:16], "big") == zlib.crc32(wire[:12])
