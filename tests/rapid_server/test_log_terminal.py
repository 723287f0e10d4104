"""A function's multi-line record (lines joined by `\\r`, as Lambda's runtimes write a traceback) is shown as
lines on a terminal, and kept as one line with its `\\r` everywhere else: in a pipe or file, and in the
invoke's tail (X-Amz-Log-Result)."""

from __future__ import annotations

import io
import os
import pty
import select
import tty

from rapidboot.rapid_server.data_plane.logs import LogSink

RECORD = b'[ERROR] CustomError: boom\rTraceback (most recent call last):\r\xc2\xa0 File "/var/task/app.py"'


def test_a_record_on_a_terminal_is_shown_as_indented_lines() -> None:
    controller, terminal = pty.openpty()
    tty.setraw(terminal)  # bytes as written: no \n -> \r\n translation by the line discipline
    try:
        with os.fdopen(os.dup(terminal), "wb", buffering=0) as stream:
            sink = LogSink(stream)  # type: ignore[arg-type]
            sink.open_tail("req-1")
            sink.function_output("fn", "req-1", RECORD)
            sink.function_output("fn", "req-1", b"a line of its own\r")  # a CRLF line ending
            expected = (
                b"[fn req-1] [ERROR] CustomError: boom\n"
                b"    Traceback (most recent call last):\n"
                b'    \xc2\xa0 File "/var/task/app.py"\n'
                b"[fn req-1] a line of its own\n"
            )
            shown = b""
            while len(shown) < len(expected) and select.select([controller], [], [], 5)[0]:
                shown += os.read(controller, 4096)  # written already: the bound only stops a short read
            assert shown == expected
            # The tail keeps the record as the function wrote it.
            assert sink.close_tail("req-1") == RECORD + b"\n" + b"a line of its own\r\n"
    finally:
        os.close(controller)
        os.close(terminal)


def test_a_record_elsewhere_keeps_its_separators() -> None:
    stream = io.BytesIO()
    sink = LogSink(stream)
    sink.function_output("fn", "req-1", RECORD)
    assert stream.getvalue() == b"[fn req-1] " + RECORD + b"\n"
