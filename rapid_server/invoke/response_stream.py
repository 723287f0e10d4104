"""One InvokeWithResponseStream caller's answer, written while the runtime streams its response.

The caller gets HTTP 200 with an `application/vnd.amazon.eventstream` body (chunked): a `PayloadChunk`
event for each piece of the runtime's response body as it arrives, then one `InvokeComplete` event (with
`ErrorCode`/`ErrorDetails` if the invoke failed, `LogResult` for `X-Amz-Log-Type: Tail`). A function that
answers in one piece (a buffered response, an error, a timeout) gets the same framing, as on Lambda:
HTTP 200 even for a function error (reference section 2).

Flow control: a caller that reads slower than the runtime writes fills our write buffer; past a
high-water mark the runtime's connection stops being read (its sends block) until the caller catches up,
so a 200 MB stream never sits in the server's memory.
"""

from __future__ import annotations

import orjson

from ..http import Connection
from . import eventstream

# Lambda streams at most 200 MB per response (reference section 1); past it the caller is told.
MAX_STREAMED_BYTES = 200 * 1024 * 1024
_HIGH_WATER_BYTES = 1024 * 1024  # caller's unsent backlog at which the runtime's reads pause
_CONTENT_TYPE = "application/vnd.amazon.eventstream"


class ResponseStream:
    __slots__ = (
        "_caller",
        "_executed_version",
        "_finished",
        "_limit",
        "_paused",
        "_request_id",
        "_source",
        "overflowed",
        "received",
        "started",
    )

    def __init__(
        self,
        caller: Connection,
        request_id: str,
        limit: int = MAX_STREAMED_BYTES,
        executed_version: str = "$LATEST",  # a published version's number, when one runs
    ):
        self._caller = caller
        self._request_id = request_id
        self._executed_version = executed_version
        self._limit = limit
        self._source: Connection | None = None  # the runtime's connection, while it streams
        self._paused = False
        self._finished = False
        self.started = False  # the caller's head is written
        self.received = 0  # bytes of the runtime's body
        self.overflowed = False  # the runtime went past the limit; the rest was dropped

    def begin(self, source: Connection, content_type: str | None = None) -> bool:
        """The runtime has started its streamed response on `source` (with this `Content-Type`: a function
        URL's stream reads its HTTP prelude by it). False if a response is already streaming (a second post
        for the same invoke is kept whole, then refused as any second answer)."""
        if self._source is not None or self._finished:
            return False
        self._source = source
        self._start()
        return True

    def receive(self, data: bytes) -> None:
        """A piece of the runtime's streamed body (a `BodyReceiver`)."""
        self.received += len(data)
        if self._finished or self.overflowed:
            return  # the invoke ended (e.g. timed out) or went too far: the rest is read and dropped
        if self.received > self._limit:
            self.overflowed = True
            return
        if not self._caller.write_chunk(eventstream.payload_chunks(data)):
            return  # the caller went away: the function runs to its end regardless
        if self._caller.write_backlog > _HIGH_WATER_BYTES and not self._paused and self._source is not None:
            self._paused = True
            self._source.pause_reading()
            self._caller.when_drained(self._resume)

    def finish(self, body: bytes, error_body: bytes | None, log_result: str | None) -> None:
        """End the caller's stream. `body` is a response that arrived whole (not streamed); `error_body`
        the invoke's error, if it failed (before or during the stream)."""
        if self._finished:
            return
        self._start()
        self._finished = True
        if error_body is None and body and self.received == 0:
            self._caller.write_chunk(eventstream.payload_chunks(body))
        error_code, error_details = _error_fields(error_body) if error_body is not None else (None, None)
        self._caller.write_chunk(eventstream.invoke_complete(error_code, error_details, log_result))
        self._caller.end_chunked()
        self._resume()

    def _start(self) -> None:
        if self.started:
            return
        self.started = True
        headers = [
            ("Content-Type", _CONTENT_TYPE),
            ("X-Amz-Executed-Version", self._executed_version),
            ("x-amzn-RequestId", self._request_id),
        ]
        self._caller.start_chunked(200, headers)

    def _resume(self) -> None:
        if self._paused and self._source is not None:
            self._paused = False
            self._source.resume_reading()


def _error_fields(error_body: bytes) -> tuple[str, str]:
    """`ErrorCode` and `ErrorDetails` from an error body: its `errorType` and `errorMessage` when it is
    the usual JSON, else `Unhandled` and the body as text."""
    try:
        error = orjson.loads(error_body)
    except orjson.JSONDecodeError:
        error = None
    if isinstance(error, dict) and isinstance(error.get("errorType"), str):
        message = error.get("errorMessage")
        return error["errorType"], message if isinstance(message, str) else ""
    return "Unhandled", error_body.decode("utf-8", "replace")
