"""Response streaming: a handler's result sent to the invoker chunk by chunk, as it is produced.

A handler streams its response by returning

- a generator or an async generator of `bytes` / `str` chunks (content type `application/octet-stream`), or
- a `StreamingResponse(body, content_type=...)` from this module, whose `body` is any iterable or async
  iterable of chunks, or
- `http_response(body, status_code=..., headers=..., cookies=...)` for Lambda function URLs and API
  Gateway: the content type `application/vnd.awslambda.http-integration-response` with a JSON prelude
  `{"statusCode", "headers", "cookies"}` and 8 NUL bytes before the body, as Node's
  `awslambda.HttpResponseStream.from` writes it.

Each chunk is posted the moment the handler yields it (`Transfer-Encoding: chunked`, reference section 1).
An exception while the body is produced ends the stream with the error trailers
`Lambda-Runtime-Function-Error-Type` / `Lambda-Runtime-Function-Error-Body` (base64 of the same JSON error
body an ordinary failed invoke posts); it is logged like any invoke error. Async bodies run on the
runtime's one event loop (see `aio`).

    from rapidboot.runtime.streaming import http_response

    def handler(event, context):
        def body():
            yield "<html>"
            yield render_slowly()
        return http_response(body(), headers={"content-type": "text/html"})

Importing this module is cheap (no imports); a function that imports it under the public name
`runtime` while the `bootstrap` runs it as `_rapidboot_runtime` still streams: the runtime recognises
the class by its `rapidboot_streaming` marker, not by identity.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
    from typing import Any

    Chunk = bytes | bytearray | memoryview | str
    Body = Iterable[Chunk] | AsyncIterable[Chunk]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
HTTP_PRELUDE_SEPARATOR = b"\x00" * 8


class StreamingResponse:
    """Return this from a handler to stream `body` with the given content type."""

    rapidboot_streaming = True  # the marker the runtime checks (works across copies of this module)

    __slots__ = ("body", "content_type", "prelude")

    def __init__(self, body: Body, content_type: str = DEFAULT_CONTENT_TYPE, prelude: bytes = b"") -> None:
        self.body = body
        self.content_type = content_type
        # Bytes sent before the body (the HTTP-integration prelude).
        self.prelude = prelude


def http_response(
    body: Body,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    cookies: Sequence[str] | None = None,
) -> StreamingResponse:
    """A streamed response for function URLs / API Gateway: status, headers and cookies, then `body`."""
    import json  # ~1.5 ms, only for functions that use this helper

    prelude: dict[str, Any] = {"statusCode": status_code}
    if headers:
        prelude["headers"] = dict(headers)
    if cookies:
        prelude["cookies"] = list(cookies)
    encoded = json.dumps(prelude, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return StreamingResponse(body, HTTP_INTEGRATION_CONTENT_TYPE, encoded + HTTP_PRELUDE_SEPARATOR)
