"""Init (import the handler once) and the invoke loop: next -> handler -> response or error.

Exit codes: 1 after an init error (reported to `/init/error` first) or when the Runtime API is
gone, answers `/next` with an error status, or answers a post with a 5xx. A 4xx on a post (e.g.
413 for an oversized response, 400 for an unknown request id) fails only that invoke: it is logged
and the loop goes on.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import os
import sys
import time

from .client import RuntimeClientError
from .context import LambdaContext
from .errors import MAX_XRAY_CAUSE_BYTES, UNHANDLED_EXCEPTION_WARNING, ErrorReport, current_exception_report
from .handler import load_handler
from .marshal import decode_event, encode_response, to_json, to_json_bytes

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from .client import Invocation, RuntimeClient
    from .config import RuntimeConfig
    from .handler import Handler
    from .logs import LogSink, RequestState

_TRACE_ID_ENV = "_X_AMZN_TRACE_ID"


# Result types recognised without importing `asyncio`/`types`: an `async def` handler returns a
# coroutine (awaited on `aio`'s loop), a generator or async generator is streamed (`streamer`).
async def _coroutine_function() -> None:
    pass


def _generator_function() -> Iterator[None]:
    yield


async def _async_generator_function() -> AsyncIterator[None]:
    yield


_probe = _coroutine_function()
_COROUTINE = type(_probe)
_probe.close()
del _probe
_STREAMED_TYPES = frozenset((type(_generator_function()), type(_async_generator_function())))


def run(
    config: RuntimeConfig, client: RuntimeClient, sink: LogSink, state: RequestState, restored: bool = False
) -> int:
    """Initialise, then serve invokes until the Runtime API goes away; returns the exit code. `restored`: a
    SnapStart child forked from its template (template.py), initialised and restored already."""
    concurrent = config.max_concurrency is not None
    try:
        handler = load_handler(config.handler)
    except Exception:
        report_init_error(client, sink, current_exception_report(), concurrent)
        return 1

    if config.initialization_type == "snap-start" and not restored:
        from .snapstart import snapshot_and_restore

        exit_code = snapshot_and_restore(client, sink)
        if exit_code is not None:
            return exit_code

    while True:
        try:
            invocation = client.next_invocation()
        except RuntimeClientError as exc:
            if exc.status is not None:
                runtime_log(f"Failed to get next invocation. Http Response code: {exc.status}")
            else:
                runtime_log("Failed to get next invocation. No Response from endpoint")
            _debug(exc)
            return 1
        try:
            invoke(config, client, sink, state, handler, invocation)
        except RuntimeClientError as exc:
            runtime_log(f"Failed to post invocation result. {exc}")
            if not concurrent:
                return 1
            # Managed Instances, like awslambdaric's multi-concurrent client: a failed post costs
            # that invoke only; the worker keeps serving.


def invoke(
    config: RuntimeConfig,
    client: RuntimeClient,
    sink: LogSink,
    state: RequestState,
    handler: Handler,
    invocation: Invocation,
) -> None:
    """Run one invoke and post its outcome."""
    request_id = invocation.request_id
    state.request_id = request_id
    state.tenant_id = invocation.tenant_id
    if invocation.trace_id is not None:
        os.environ[_TRACE_ID_ENV] = invocation.trace_id
    else:
        os.environ.pop(_TRACE_ID_ENV, None)

    try:
        context = LambdaContext(invocation, config, sink)
        event = decode_event(invocation.body, invocation.content_type)
        result = handler(event, context)
        if type(result) is _COROUTINE:
            from . import aio  # the first `async def` invoke pays for asyncio, sync handlers never

            result = aio.run(result)
        kind = type(result)
        streamed = kind is not dict and (
            kind in _STREAMED_TYPES or getattr(kind, "rapidboot_streaming", False)
        )
        if not streamed:
            body, content_type = encode_response(result)
    except Exception:
        report = current_exception_report()
        sink.log_error_report(report, request_id)
        cause = to_json(report.xray_cause(os.getcwd()), ascii_only=True)
        response = client.post_invocation_error(
            request_id,
            to_json_bytes(report.body(request_id)),
            report.error_type,
            cause if len(cause) < MAX_XRAY_CAUSE_BYTES else None,
            invocation.invocation_id,
        )
        what = "error"
    else:
        if streamed:
            from .streamer import send_stream  # only functions that stream load it

            response = send_stream(client, sink, invocation, result)
        else:
            response = client.post_response(request_id, body, content_type, invocation.invocation_id)
        what = "response"
    _check_post(response.status, response.body, what)


def report_init_error(
    client: RuntimeClient, sink: LogSink, report: ErrorReport, concurrent: bool = False
) -> None:
    import logging  # the import hook routes it to the sink (see logs.install_logging)

    logging.warning(UNHANDLED_EXCEPTION_WARNING)
    sink.log_error_report(report, "")
    try:
        response = client.post_init_error(to_json_bytes(report.body("")), report.error_type)
    except RuntimeClientError as exc:
        runtime_log(f"Failed to post init error. {exc}")
        return
    if concurrent and response.status == 403:
        return  # another worker reported the init error first (awslambdaric stays silent too)
    if not 200 <= response.status < 300:
        runtime_log(f"Failed to post init error. Http response code: {response.status}.")


def _check_post(status: int, body: bytes, what: str) -> None:
    if 200 <= status < 300:
        return
    message = f"Failed to post invocation {what}. Http response code: {status}. {body[:500]!r}"
    if status >= 500:
        raise RuntimeClientError(message, status, body)
    runtime_log(message)


def runtime_log(message: str) -> None:
    """The runtime's own error lines, in aws-lambda-cpp's format (awslambdaric prints these)."""
    sys.stdout.write(f"[ERROR] [{int(time.time() * 1000)}] LAMBDA_RUNTIME {message}\n")


def _debug(exc: Exception) -> None:
    # The detail awslambdaric never prints, on stderr so stdout keeps its exact line.
    sys.stderr.write(f"rapidboot: {exc}\n")
