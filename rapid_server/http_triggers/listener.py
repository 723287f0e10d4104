"""The HTTP triggers' listener (default 127.0.0.1:3000, as `sam local start-api`): a request is routed by the
current route table, made into an event, invoked through `Function.invoke` (the Invoke API's path, with its
concurrency limits and throttles), and the function's answer mapped to API Gateway's response.

`HttpTriggers.routes` is the one owner of the route table: a reload assigns a new table, and each request
reads it once, when it arrives.

Integration timeout: API Gateway gives up on the function after `TimeoutInMillis` (29 s by default) and
answers 504, while the function runs on. Only a function whose own timeout is longer can outlive it, so only
its invokes pay for a task and a timer; the others are awaited directly, as the Invoke API awaits them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import ids
from ..data_plane.function import Function
from ..data_plane.invocation import Invocation, InvokeResult
from ..errors import ServiceError
from ..http import Connection, Request, Response, bound_port, start_listener
from ..invoke import invoke_api
from ..invoke.response_stream import ResponseStream
from ..server_state import ServerState
from . import responses
from .events import Origin, build_event
from .responses import HTTP_INTEGRATION, PRELUDE_END, MalformedResponse, read_prelude
from .routes import URL_PREFIX, Route, RouteTable

DEFAULT_PORT = 3000  # `sam local start-api`'s
MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit; the event must still fit Lambda's 6 MB
_MAX_PRELUDE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class HttpTriggerOptions:
    routes: RouteTable
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    integration_timeout_ms: int | None = None  # --api-timeout: kept for the routes a reload builds


class HttpTriggers:
    def __init__(self, state: ServerState, routes: RouteTable, notice: Callable[[str], None]) -> None:
        self._state = state
        self._notice = notice
        self.routes = routes  # replaced whole by a reload; read once per request

    async def handle(self, request: Request) -> Response | None:
        found = self.routes.match(request.method, request.path)
        if isinstance(found, tuple):
            status, body = found
            return Response(status, body, [responses.JSON])
        route = found.route
        function = self._state.functions.get(route.function)
        if function is None:  # removed by a reload since the table was built
            return responses.gateway_error(404, "Not Found")
        if request.too_large:
            return responses.too_large()
        config = self._state.config
        origin = Origin(ids.request_id(), time.time(), config.account_id, config.region)
        payload = build_event(request, found, origin)
        if len(payload) > invoke_api.MAX_SYNC_PAYLOAD_BYTES:
            return _tagged(responses.too_large(), route, origin.request_id)
        invocation = Invocation(
            request_id=ids.request_id(),
            payload=payload,
            invoked_function_arn=function.arn,
            trace_id=request.headers.get("x-amzn-trace-id") or ids.trace_id(),
            stream=UrlResponseStream(request.connection, origin.request_id) if route.streaming else None,
        )
        try:
            result = await self._invoke(function, invocation, route)
        except ServiceError as error:
            if error.status == 429:
                return _tagged(responses.throttled(), route, origin.request_id)
            self._log(route, f"the invoke was refused: {error.message}")
            return _tagged(responses.internal_error(), route, origin.request_id)
        except _IntegrationTimeout:
            self._log(
                route, f"the function did not answer within the integration timeout ({route.timeout_ms} ms)"
            )
            return _tagged(responses.timed_out(), route, origin.request_id)
        stream = invocation.stream
        if isinstance(stream, UrlResponseStream) and stream.started:
            stream.finish(result.body, result.body if result.function_error else None, None)
            return None  # answered on the connection, as a stream
        return _tagged(self._response(route, result, request), route, origin.request_id)

    def _response(self, route: Route, result: InvokeResult, request: Request) -> Response:
        if result.function_error:
            self._log(route, f"the function failed: {result.body[:500].decode('utf-8', 'replace')}")
            return responses.internal_error()
        try:
            return responses.from_function(
                route, result.body, result.content_type, request.headers.get("accept")
            )
        except MalformedResponse as exc:
            self._log(route, f"malformed Lambda proxy response: {exc}")
            return responses.internal_error()

    async def _invoke(self, function: Function, invocation: Invocation, route: Route) -> InvokeResult:
        timeout_ms = route.timeout_ms
        if timeout_ms is None or function.config.timeout_s * 1000 <= timeout_ms:
            return await function.invoke(invocation)  # the function's own timeout comes first
        task = asyncio.ensure_future(function.invoke(invocation))
        done, _ = await asyncio.wait((task,), timeout=timeout_ms / 1000)
        if task in done:
            return task.result()
        task.add_done_callback(_settled)  # the invoke runs to its end; nobody waits for it
        raise _IntegrationTimeout

    def _log(self, route: Route, problem: str) -> None:
        self._notice(
            f"rapidboot: {route.route_key} -> {route.function}: {problem}; answered as API Gateway does"
        )


def _tagged(response: Response, route: Route, request_id: str) -> Response:
    """The gateway's request id on its answer, under the header each kind of endpoint uses (the same id
    as the event's `requestContext.requestId`)."""
    name = "Apigw-Requestid" if route.api.kind == "http" else "x-amzn-RequestId"
    response.headers.append((name, request_id))
    return response


class _IntegrationTimeout(Exception):
    pass


def _settled(task: asyncio.Future[InvokeResult]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a late failure is not an "exception never retrieved" warning


class UrlResponseStream(ResponseStream):
    """A function URL with `InvokeMode: RESPONSE_STREAM`: the runtime's streamed body goes to the HTTP
    client as it arrives, with the runtime's flow control (ResponseStream). A body of content type
    `application/vnd.awslambda.http-integration-response` starts with a JSON prelude (status, headers,
    cookies) and 8 NUL bytes: the prelude becomes the response's head, the rest its body. Any other streamed
    body is a 200 of the runtime's content type."""

    __slots__ = ("_pending", "_prelude")

    def __init__(self, caller: Connection, request_id: str) -> None:
        super().__init__(caller, request_id)
        self._prelude = False
        self._pending = b""

    def begin(self, source: Connection, content_type: str | None = None) -> bool:
        if self._source is not None or self._finished:
            return False
        self._source = source
        self._prelude = content_type == HTTP_INTEGRATION
        if not self._prelude:
            self._head(200, [("Content-Type", content_type or "application/octet-stream")])
        return True

    def receive(self, data: bytes) -> None:
        self.received += len(data)
        if self._finished or self.overflowed:
            return
        if self.received > self._limit:
            self.overflowed = True
            return
        if not self.started:
            self._pending += data
            if PRELUDE_END not in self._pending:
                if len(self._pending) > _MAX_PRELUDE_BYTES:
                    self.overflowed = True  # no prelude in sight: the invoke ends as too large, a 502
                return
            try:
                status, headers, start = read_prelude(self._pending)
            except MalformedResponse:
                status, headers, start = 502, [responses.JSON], len(self._pending)
            data, self._pending = self._pending[start:], b""
            self._head(status, headers)
            if not data:
                return
        if not self._caller.write_chunk(data):
            return  # the caller went away: the function runs to its end regardless
        if self._caller.write_backlog > 1024 * 1024 and not self._paused and self._source is not None:
            self._paused = True
            self._source.pause_reading()
            self._caller.when_drained(self._resume)

    def finish(self, body: bytes, error_body: bytes | None, log_result: str | None) -> None:
        """End the body (a failure midway can only cut it short: the head is already sent)."""
        if self._finished:
            return
        self._finished = True
        self._caller.end_chunked()
        self._resume()

    def _head(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.started = True
        self._caller.start_chunked(status, [*headers, ("x-amzn-RequestId", self._request_id)])


async def start_http_triggers(
    state: ServerState,
    options: HttpTriggerOptions,
    notice: Callable[[str], None],
    on_error: Callable[[BaseException], None],
) -> tuple[asyncio.Server, HttpTriggers]:
    """Listen for the template's HTTP triggers, and print where each is served."""
    triggers = HttpTriggers(state, options.routes, notice)
    listener = await start_listener(
        triggers.handle,
        options.host,
        options.port,
        MAX_REQUEST_BYTES,
        on_error,
        cancel_on_disconnect=False,  # as the Invoke API: an invoke runs to its end (Function.invoke)
        policy=invoke_api.connection_policy(state.config, notice),
    )
    base = f"http://{options.host}:{bound_port(listener)}"
    notice(f"rapidboot: HTTP triggers on {base}")
    for route in options.routes.routes:
        where = f"{base}{URL_PREFIX}{route.function}/" if route.api.kind == "url" else base
        notice(f"rapidboot:   {route.describe()}  {where}")
    return listener, triggers
