"""The telemetry log sink: function logs as framed records on `_LAMBDA_TELEMETRY_LOG_FD`.

Lambda passes this descriptor so that a multi-line record (a traceback, a pretty-printed dict) stays
one log event: each write is one frame, big-endian,

    u32 frame type | u32 payload length | u64 timestamp (epoch microseconds) | payload (UTF-8)

with the type encoding the format and level (reference section 6). Which type a record gets is
awslambdaric 4.2.2's choice, decided by the caller (`log_handler`, `LogSink.log_error_report`);
a message with no type (`context.log`) is a text NOTSET frame, as in awslambdaric.

Imported only when the variable is set; it needs nothing beyond what the runtime has loaded already.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import io
import time

from .logs import LogSink

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Sequence

# Indexed by level // 10 after clamping to 0..50: NOTSET, DEBUG, INFO, WARNING, ERROR, CRITICAL.
TEXT_FRAME_TYPES = (0xA55A0003, 0xA55A000B, 0xA55A000F, 0xA55A0013, 0xA55A0017, 0xA55A001B)
JSON_FRAME_TYPES = (0xA55A0002, 0xA55A000A, 0xA55A000E, 0xA55A0012, 0xA55A0016, 0xA55A001A)
DEFAULT_FRAME_TYPE = TEXT_FRAME_TYPES[0]
ERROR_INDEX = 4


class TelemetryFdSink(LogSink):
    framed = True

    def __init__(self, fd: int, json_format: bool) -> None:
        super().__init__(json_format)
        # Unbuffered, like awslambdaric's `os.fdopen(fd, "wb", 0)`: every frame reaches the fd at once.
        self._file = io.FileIO(fd, "w")
        self._error_frame_type = (JSON_FRAME_TYPES if json_format else TEXT_FRAME_TYPES)[ERROR_INDEX]

    def log(self, msg: str, frame_type: int | None = None) -> None:
        # `backslashreplace`: a lone surrogate in a message must not make logging raise (awslambdaric
        # raises UnicodeEncodeError into the caller).
        payload = msg.encode("utf-8", "backslashreplace")
        timestamp_us = time.time_ns() // 1000
        header = ((frame_type or DEFAULT_FRAME_TYPE) << 96 | len(payload) << 64 | timestamp_us).to_bytes(
            16, "big"
        )
        self._write(header + payload)

    def log_error(self, lines: Sequence[str]) -> None:
        # One ERROR frame; the fd keeps the boundaries, so plain "\n" joins the lines (no "\r").
        self.log("\n".join(lines), self._error_frame_type)

    def _write(self, data: bytes) -> None:
        # A raw write may be partial (a pipe near full): finish the frame, or the stream is corrupt.
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written or 0 :]
