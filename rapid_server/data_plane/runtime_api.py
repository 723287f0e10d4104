"""The Runtime API `2018-06-01`, as one execution environment's runtime sees it (reference section 1).

All routes on one screen. Each only validates, asks the environment (and so its state machine), and
renders; the environment decides what a request means for the invoke in flight.
"""

from __future__ import annotations

import base64
import re

from .. import errors, rendering
from ..http import BodyReceiver, BodyRouter, Handler, Request, Response
from .environment import Environment

_PREFIX = "/2018-06-01/runtime"
_NEXT = f"{_PREFIX}/invocation/next"
_INIT_ERROR = f"{_PREFIX}/init/error"
_RESTORE_ERROR = f"{_PREFIX}/restore/error"
# The Extensions, Telemetry and Logs APIs share this listener (extensions/api.py has their routes).
_EXTENSION_PREFIXES = ("/2020-01-01/extension/", "/2022-07-01/telemetry", "/2020-08-15/logs")
_EXTENSION_NEXT = "/2020-01-01/extension/event/next"
_INVOCATION = re.compile(rf"^{_PREFIX}/invocation/(?P<id>[^/]+)/(?P<action>response|error)$")


def make_handler(environment: Environment) -> Handler:
    # A plain function, not a coroutine: every route answers at once or parks (/next), so the listener
    # answers in the step that parsed the request, with no task per request (http.py).
    def handle(request: Request) -> Response | None:
        path = request.path
        if path == _NEXT:
            if request.method != "GET":
                return _method_not_allowed("GET")
            return environment.runtime_next(request.connection)
        if path in (_INIT_ERROR, _RESTORE_ERROR):  # a SnapStart restore failing fails its init
            if request.method != "POST":
                return _method_not_allowed("POST")
            return environment.runtime_init_error(request.body, _error_type(request))
        if path == _EXTENSION_NEXT:  # an extension's every invoke: before the runtime's answers' regex
            return environment.extensions_request(request)
        match = _INVOCATION.match(path)
        if match is not None:
            if request.method != "POST":
                return _method_not_allowed("POST")
            request_id = match["id"]
            if match["action"] == "response":
                mode = request.headers.get("lambda-runtime-function-response-mode")
                if mode is not None and mode.lower() != "streaming":
                    return rendering.runtime_error(
                        400, errors.INVALID_RESPONSE_MODE, f"Invalid response mode {mode!r}: use 'streaming'"
                    )
                too_large = request.body_size if request.too_large else 0
                stream_error = _stream_error(request) if mode is not None else None
                response = environment.runtime_response(
                    request_id, request.body, request.headers.get("content-type"), too_large, stream_error
                )
            else:
                too_large = request.body_size if request.too_large else 0
                response = environment.runtime_error(request_id, request.body, too_large)
            if response is not rendering.RUNTIME_ACCEPTED or not environment.answers_invoker_first(
                request_id
            ):
                return response
            _after_invoker(request, response)
            return None
        if path.startswith(_EXTENSION_PREFIXES):
            return environment.extensions_request(request)
        return rendering.runtime_error(404, errors.NOT_FOUND, f"Unknown path {path}")

    return handle


def make_body_router(environment: Environment) -> BodyRouter:
    """A streamed `/response` whose invoker takes a stream is passed on as it arrives, not kept whole."""

    def route(request: Request) -> BodyReceiver | None:
        mode = request.headers.get("lambda-runtime-function-response-mode")
        if mode is None or mode.lower() != "streaming" or request.method != "POST":
            return None
        match = _INVOCATION.match(request.path)
        if match is None or match["action"] != "response":
            return None
        request_id = match["id"]
        receiver = environment.stream_receiver(
            request_id, request.connection, request.headers.get("content-type")
        )
        if receiver is not None:
            request.body_aborted = lambda: environment.runtime_response_truncated(request_id)
        return receiver

    return route


def _after_invoker(request: Request, response: Response) -> None:
    """Write the 202 for an accepted answer after the invoker's answer: the invoke's own continuation was
    queued first (when the answer completed it), and it writes the invoker's response in that step. The
    runtime waits for its 202 either way; the invoker does not wait for the 202's write and the wake-up of
    the runtime it causes (~20 us of the server's CPU, measured on the 2-core benchmark machine)."""
    request.connection.send_soon(response)


def _stream_error(request: Request) -> tuple[str, bytes] | None:
    """A streamed response that failed midway says so in its trailers (reference section 1): the error
    type, and the error body as base64 JSON."""
    error_type = request.trailers.get("lambda-runtime-function-error-type")
    if error_type is None:
        return None
    try:
        body = base64.b64decode(request.trailers.get("lambda-runtime-function-error-body", ""), validate=True)
    except ValueError:
        body = b""
    return error_type, body


def _error_type(request: Request) -> str | None:
    return request.headers.get("lambda-runtime-function-error-type")


def _method_not_allowed(allowed: str) -> Response:
    response = rendering.runtime_error(405, errors.METHOD_NOT_ALLOWED, f"Method not allowed; use {allowed}")
    response.headers.append(("Allow", allowed))
    return response
