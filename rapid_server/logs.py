"""Where an environment's log goes: platform lines and the function's own output, on the server's stdout.

Platform lines (START/END/REPORT/INIT_REPORT, timeouts) are written exactly as Lambda writes them. The
function's output lines are prefixed `[<function> <request id>] ` (`[<function> init] ` before its first
invoke) so output from several functions and environments stays attributable when interleaved.
"""

from __future__ import annotations

import sys
from typing import BinaryIO


class LogSink:
    __slots__ = ("_stream",)

    def __init__(self, stream: BinaryIO | None = None):
        self._stream = stream if stream is not None else sys.stdout.buffer

    def platform(self, *lines: str) -> None:
        self._write("".join(line + "\n" for line in lines).encode())

    def function_output(self, function: str, request_id: str | None, line: bytes) -> None:
        prefix = f"[{function} {request_id or 'init'}] ".encode()
        self._write(prefix + line + b"\n")

    def _write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            # Our reader went away (e.g. `| head`); the server keeps serving invokes regardless.
            pass
