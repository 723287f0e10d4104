"""The relay of a runtime's stdout and stderr (one pipe) to the log, line by line, with its owner.

The owner is the request the output belongs to. The environment drains the pipe before every change of
owner (an event handed over, a response received): a runtime writes its output before it posts its
response, so that output is already in the pipe when the response arrives, and lands under its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable

from .logs import LogSink

_LINE_LIMIT = 256 * 1024  # a runtime writing one endless line is cut into pieces of this size


class OutputRelay:
    __slots__ = ("_buffer", "_fd", "_function", "_sink", "owner", "tap")

    def __init__(self, fd: int, function: str, sink: LogSink):
        self._fd: int | None = fd
        self._function = function
        self._sink = sink
        self._buffer = b""
        self.owner: str | None = None  # a request id, "*" for several at once, None during init
        # Also given every line, where the environment's extensions subscribed to its log (telemetry).
        self.tap: Callable[[bytes], None] | None = None
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self.drain)

    def drain(self, final: bool = False) -> None:
        """Relay everything written so far; with `final` (or at end of file), flush and close."""
        fd = self._fd
        if fd is None:
            return
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                final = True
                break
            self._buffer += chunk
            self._emit_lines()
        if final:
            if self._buffer:
                self._sink.function_output(self._function, self.owner, self._buffer)
                if self.tap is not None:
                    self.tap(self._buffer)
                self._buffer = b""
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            self._fd = None

    def _emit_lines(self) -> None:
        buffer = self._buffer
        start = 0
        tap = self.tap
        while True:
            newline = buffer.find(b"\n", start)
            if newline < 0:
                break
            self._sink.function_output(self._function, self.owner, buffer[start:newline])
            if tap is not None:
                tap(buffer[start:newline])
            start = newline + 1
        buffer = buffer[start:]
        while len(buffer) > _LINE_LIMIT:
            self._sink.function_output(self._function, self.owner, buffer[:_LINE_LIMIT])
            if tap is not None:
                tap(buffer[:_LINE_LIMIT])
            buffer = buffer[_LINE_LIMIT:]
        self._buffer = buffer
