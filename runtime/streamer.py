"""Send a streaming handler result (see `streaming`) as a chunked `/response`, chunk by chunk."""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

from .errors import MARSHAL_ERROR, FaultError, current_exception_report
from .marshal import to_json_bytes
from .streaming import DEFAULT_CONTENT_TYPE

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Any

    from .client import Invocation, ResponseStream, RuntimeClient
    from .http_parser import Response
    from .logs import LogSink


def send_stream(client: RuntimeClient, sink: LogSink, invocation: Invocation, result: Any) -> Response:
    """Post `result` (a generator, async generator or `StreamingResponse`) as it is produced."""
    if getattr(result, "rapidboot_streaming", False):
        body, content_type, prelude = result.body, result.content_type, result.prelude
    else:
        body, content_type, prelude = result, DEFAULT_CONTENT_TYPE, b""
    stream = client.start_streaming_response(invocation.request_id, content_type, invocation.invocation_id)
    stream.write(prelude)
    chunks = _chunks(body)
    try:
        return _pump(stream, chunks, sink, invocation.request_id)
    finally:
        chunks.close()  # runs the body's `finally` blocks if the Runtime API went away mid-stream


def _pump(
    stream: ResponseStream, chunks: Generator[bytes, None, None], sink: LogSink, request_id: str
) -> Response:
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return stream.finish()
        except Exception:
            report = current_exception_report()
            sink.log_error_report(report, request_id)
            return stream.finish(report.error_type, to_json_bytes(report.body(request_id)))
        stream.write(chunk)  # a RuntimeClientError here is the Runtime API's, not the handler's


def _chunks(body: Any) -> Generator[bytes, None, None]:
    """The body's chunks as bytes; async bodies are driven on the runtime's event loop."""
    if hasattr(body, "__aiter__"):
        from . import aio

        iterator = body.__aiter__()
        try:
            while True:
                more, chunk = aio.next_chunk(iterator)
                if not more:
                    return
                yield _as_bytes(chunk)
        finally:
            aio.close(iterator)
    else:
        iterator = iter(body)
        try:
            for chunk in iterator:
                yield _as_bytes(chunk)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()


def _as_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise FaultError(
        MARSHAL_ERROR,
        f"Unable to marshal response: a streamed chunk must be bytes or str, not {type(chunk).__name__}",
    )
