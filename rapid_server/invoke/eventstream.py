"""`application/vnd.amazon.eventstream`: the framing of InvokeWithResponseStream's response body.

Each message is a prelude (total length, headers length, CRC32 of those 8 bytes), the headers, the
payload and a CRC32 of everything before it, all big-endian. Headers here are always strings (type 7):
`:message-type` = `event`, `:event-type` = `PayloadChunk` or `InvokeComplete`, `:content-type`. The
encoder is what the server writes; the decoder is what `rapidboot invoke --stream` reads (and what tests
check the encoder against, beside botocore's own parser). Both are pure: bytes in, bytes or messages out.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import orjson

_PRELUDE = struct.Struct(">II")
_UINT32 = struct.Struct(">I")
_STRING = 7  # the header value type for UTF-8 strings
# Limits of the format as AWS's SDKs enforce them.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_HEADERS_BYTES = 128 * 1024
# A runtime's chunk may be large; the caller gets it in messages of at most this payload.
MAX_CHUNK_PAYLOAD = 1024 * 1024
_MIN_MESSAGE_BYTES = 16  # prelude (12) + message CRC (4)


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    encoded_headers = bytearray()
    for name, value in headers:
        raw_name = name.encode()
        raw_value = value.encode()
        encoded_headers += bytes((len(raw_name),)) + raw_name + bytes((_STRING,))
        encoded_headers += struct.pack(">H", len(raw_value)) + raw_value
    total = _MIN_MESSAGE_BYTES + len(encoded_headers) + len(payload)
    prelude = _PRELUDE.pack(total, len(encoded_headers))
    message = prelude + _UINT32.pack(zlib.crc32(prelude)) + encoded_headers + payload
    return message + _UINT32.pack(zlib.crc32(message))


_CHUNK_HEADERS = [
    (":event-type", "PayloadChunk"),
    (":content-type", "application/octet-stream"),
    (":message-type", "event"),
]
_COMPLETE_HEADERS = [
    (":event-type", "InvokeComplete"),
    (":content-type", "application/json"),
    (":message-type", "event"),
]


def payload_chunks(data: bytes) -> bytes:
    """`PayloadChunk` events carrying `data`, split so no message passes the format's limit."""
    if len(data) <= MAX_CHUNK_PAYLOAD:
        return encode_message(_CHUNK_HEADERS, data)
    view = memoryview(data)
    return b"".join(
        encode_message(_CHUNK_HEADERS, bytes(view[start : start + MAX_CHUNK_PAYLOAD]))
        for start in range(0, len(data), MAX_CHUNK_PAYLOAD)
    )


def invoke_complete(error_code: str | None, error_details: str | None, log_result: str | None) -> bytes:
    """The last event: its members are JSON (botocore's `InvokeWithResponseStreamCompleteEvent`)."""
    members: dict[str, str] = {}
    if error_code is not None:
        members["ErrorCode"] = error_code
    if error_details is not None:
        members["ErrorDetails"] = error_details
    if log_result is not None:
        members["LogResult"] = log_result
    return encode_message(_COMPLETE_HEADERS, orjson.dumps(members))


class EventStreamError(Exception):
    """Bytes that are not a valid event stream (bad lengths, bad CRC, bad header)."""


@dataclass(slots=True, frozen=True)
class Message:
    headers: dict[str, str]
    payload: bytes

    @property
    def event_type(self) -> str | None:
        return self.headers.get(":event-type")


class Decoder:
    """Incremental: feed it bytes as they arrive, take the complete messages."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= 12:
            total, headers_length = _PRELUDE.unpack_from(self._buffer)
            (prelude_crc,) = _UINT32.unpack_from(self._buffer, 8)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise EventStreamError("event stream prelude CRC mismatch")
            if total < _MIN_MESSAGE_BYTES + headers_length or total > MAX_MESSAGE_BYTES:
                raise EventStreamError(f"event stream message length {total} is invalid")
            if headers_length > MAX_HEADERS_BYTES:
                raise EventStreamError(f"event stream headers length {headers_length} is over the limit")
            if len(self._buffer) < total:
                break
            message = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = _UINT32.unpack_from(message, total - 4)
            if zlib.crc32(message[: total - 4]) != message_crc:
                raise EventStreamError("event stream message CRC mismatch")
            headers = _decode_headers(message[12 : 12 + headers_length])
            messages.append(Message(headers, message[12 + headers_length : total - 4]))
        return messages


def _decode_headers(data: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    offset = 0
    try:
        while offset < len(data):
            name_length = data[offset]
            name = data[offset + 1 : offset + 1 + name_length].decode()
            offset += 1 + name_length
            value_type = data[offset]
            if value_type != _STRING:
                raise EventStreamError(f"event stream header {name!r} has type {value_type}, not string")
            (value_length,) = struct.unpack_from(">H", data, offset + 1)
            value = data[offset + 3 : offset + 3 + value_length]
            if len(value) != value_length:
                raise EventStreamError(f"event stream header {name!r} is truncated")
            headers[name] = value.decode()
            offset += 3 + value_length
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"event stream headers are malformed: {exc}") from None
    return headers
