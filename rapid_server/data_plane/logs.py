"""Where an environment's log goes: platform lines and the function's own output, on the server's stdout.

Platform lines (START/END/REPORT/INIT_REPORT, timeouts) are written exactly as Lambda writes them. The
function's output lines are prefixed `[<function> <request id>] ` (`[<function> init] ` before its first
invoke) so output from several functions and environments stays attributable when interleaved.

One log record may hold several lines joined by `\r` (Lambda's separator inside a record, e.g. the lines
of a traceback). They are kept so in a tail and wherever the log is not a terminal, where a reader or a
program expects one record per line; on a terminal, where a `\r` would overwrite the line, they are shown
as lines of their own, indented under the first.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from ..observability.metrics import Metrics

TAIL_BYTES = 4096  # X-Amz-Log-Result: the last 4 KB of the invoke's log (reference section 2)
_CONTINUATION = b"\n    "  # on a terminal, what a `\r` inside a record becomes


class LogSink:
    """On the server's stdout, lines are gathered and written once per turn of the event loop: the lines of
    one turn (under load, the STARTs and REPORTs of many environments) leave in one write(2), in the order
    they were written. stdout may be unbuffered (PYTHONUNBUFFERED), where each line took a write(2) of its
    own: ~5% of the server's CPU at 8 concurrent clients. That is for the loop the server names
    (`gather_in`), from its own thread; a line from any other thread, or while that loop is not running, is
    written at once, as is every line of a sink told of no loop."""

    __slots__ = ("_loop", "_loop_thread", "_pending", "_stream", "_tails", "_terminal", "observer")

    def __init__(self, stream: BinaryIO | None = None):
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        try:
            self._terminal = self._stream.isatty()
        except (AttributeError, ValueError):
            self._terminal = False
        self._pending: list[bytes] = []
        # Invokes whose log is also kept for their caller (`X-Amz-Log-Type: Tail`), by request id.
        self._tails: dict[str, bytearray] = {}
        # Lambda's metrics (observability/metrics.py): told of each invoke's REPORT figures by the
        # environment, and here of its output lines while the console keeps them. Set by ServerState.
        self.observer: Metrics | None = None

    def platform(self, *lines: str, request_id: str | None = None) -> None:
        """Platform lines; those of one invoke (START, END, REPORT, its timeout) name its request id, so
        they go into its tail too."""
        data = ("\n".join(lines) + "\n").encode()
        if request_id is not None and self._tails:
            self._keep(request_id, data)
        self._write(data)

    def function_output(self, function: str, request_id: str | None, line: bytes) -> None:
        if request_id is not None and self._tails:
            self._keep(request_id, line + b"\n")  # as the function wrote it, as Lambda's log has it
        observer = self.observer
        if observer is not None and observer.keep_recent and request_id is not None:
            observer.output(request_id, line)
        prefix = f"[{function} {request_id or 'init'}] ".encode()
        if self._terminal and b"\r" in line:
            line = line.rstrip(b"\r").replace(b"\r", _CONTINUATION)
        self._write(prefix + line + b"\n")

    def gather_in(self, loop: asyncio.AbstractEventLoop) -> None:
        """Gather the lines of each turn of `loop` (the server's, run by the calling thread) into one write.
        Kept, not looked up per line: asyncio.get_running_loop() is a getpid(2) on Python 3.11, twice per
        invoke here."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def open_tail(self, request_id: str) -> None:
        """Start keeping this invoke's log lines for its caller."""
        self._tails[request_id] = bytearray()

    def close_tail(self, request_id: str) -> bytes:
        """The last 4 KB of what was kept for this invoke, and stop keeping it."""
        kept = self._tails.pop(request_id, None)
        return bytes(kept[-TAIL_BYTES:]) if kept else b""

    def _keep(self, request_id: str, data: bytes) -> None:
        kept = self._tails.get(request_id)
        if kept is None:
            return
        kept += data
        if len(kept) > 4 * TAIL_BYTES:  # only the end is ever returned
            del kept[:-TAIL_BYTES]

    def flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._emit(data)

    def _write(self, data: bytes) -> None:
        if self._pending:
            self._pending.append(data)  # a flush is already due this turn
            return
        loop = self._loop
        if loop is not None and threading.get_ident() == self._loop_thread and loop.is_running():
            self._pending.append(data)
            loop.call_soon(self.flush)
            return
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        try:
            self._stream.write(data)
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            # Our reader went away (e.g. `| head`); the server keeps serving invokes regardless.
            pass
