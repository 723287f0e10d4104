"""The Invoke API as boto3, the AWS CLI and curl call it (reference section 2).

Routes: `POST /2015-03-31/functions/{name}/invocations` (Invoke),
`POST /2021-11-15/functions/{name}/response-streaming-invocations` (InvokeWithResponseStream) and
`GET /2015-03-31/functions/` (ListFunctions). A request refused here (unknown function, oversized or
malformed payload, bad header) changes nothing and starts nothing.

Function names and qualifiers are checked as the service checks them (botocore's model,
`NamespacedFunctionName` and `NumericLatestPublishedOrAliasQualifier`), with its `ValidationException`
message; an ARN names one of our functions only with our region and account.
"""

from __future__ import annotations

import base64
import gc
import re
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import orjson

from .. import errors, ids, rendering
from ..async_invokes.async_queue import NewEvent
from ..config import ServerConfig
from ..control_plane import routes
from ..control_plane.functions import ControlPlane
from ..control_plane.shapes import configuration
from ..data_plane.function import Function
from ..data_plane.invocation import Invocation
from ..errors import ServiceError
from ..http import ConnectionPolicy, Handler, Request, Response
from ..observability import routes as observability
from ..observability.console import Console
from ..server_state import ServerState
from . import recursion, tenancy
from .response_stream import ResponseStream

if TYPE_CHECKING:
    from ..durable.service import DurableService

MAX_SYNC_PAYLOAD_BYTES = 6_291_456
MAX_CLIENT_CONTEXT_BYTES = 3583
MAX_EVENT_PAYLOAD_BYTES = 1_048_576  # "1 MB" for Event invokes (reference section 2; 256 KB before 2025)
MAX_CONTROL_BODY_BYTES = 70_000_000  # a 50 MB zip in base64, with its JSON around it
LATEST = "$LATEST"
_INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
_STREAM_INVOCATION_TYPES = ("RequestResponse", "DryRun")  # botocore's ResponseStreamingInvocationType

# The patterns exactly as botocore's model (and so the service's message) writes them.
FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?"
    r"(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
QUALIFIER_PATTERN = r"\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
FUNCTION_NAME_MAX = 256  # the whole name or ARN
BARE_NAME_MAX = 64  # a name given alone ("If you specify only the function name, it is limited to 64")
QUALIFIER_MAX = 128
# FUNCTION_NAME_PATTERN with its parts named; matched in full, ASCII only (`\d` is not Unicode digits).
_BARE_NAME = re.compile(r"[a-zA-Z0-9\-_.]+", re.ASCII)  # the `name` group of _FUNCTION_NAME, alone
_FUNCTION_NAME = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9\-_.]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9\-_]+))?",
    re.ASCII,
)
_QUALIFIER = re.compile(QUALIFIER_PATTERN, re.ASCII)

# The name is whatever lies between (percent-decoded, so maybe holding a "/" or nothing at all): what it may
# be is for the name's validation to say, not the route's.
_INVOKE = re.compile(r"^/2015-03-31/functions/(?P<name>.*)/invocations/?$")
_INVOKE_STREAM = re.compile(r"^/2021-11-15/functions/(?P<name>.*)/response-streaming-invocations/?$")
_LIST = re.compile(r"^/2015-03-31/functions/?$")


def make_handler(
    state: ServerState,
    control: ControlPlane | None = None,
    durable: Callable[[], DurableService] | None = None,
    console: Console | None = None,
) -> Handler:
    """`control`: the control plane's function operations (control_plane/routes.py), the rest of the API.
    `durable`: opens (once) and returns the durable execution service (durable/). `console`: the web
    console's (observability/); `GET /metrics` is served either way."""

    async def handle(request: Request) -> Response | None:
        request_id = ids.request_id()
        try:
            match = _INVOKE.match(request.path)
            if match is not None:
                if request.method != "POST":
                    raise _unknown_operation(request)
                return await _invoke(state, control, request, match["name"], request_id, durable=durable)
            match = _INVOKE_STREAM.match(request.path)
            if match is not None:
                if request.method != "POST":
                    raise _unknown_operation(request)
                return await _invoke(state, control, request, match["name"], request_id, streaming=True)
            if durable is not None and request.path.startswith("/2025-12-01/"):
                from ..durable import routes as durable_routes

                answer = await durable_routes.handle(durable(), request, request_id)
                if answer is not None:
                    return answer
                raise _unknown_operation(request)
            if control is not None and routes.is_control_path(request.path):
                response = await routes.handle(control, request, request_id)
                if response is not None:
                    response.headers.append(("x-amzn-RequestId", request_id))
                    return response
            elif _LIST.match(request.path) is not None:
                if request.method != "GET":
                    raise _unknown_operation(request)
                return _list_functions(state, request_id)
            elif observability.is_observability_path(request.path):
                answer = observability.handle(state, console, request)
                if answer is not observability.NOT_OURS:
                    return answer  # None: the console's feed, answered on the connection
            raise _unknown_operation(request)
        except ServiceError as error:
            return rendering.service_error(error, request_id)

    return handle


async def _invoke(
    state: ServerState,
    control: ControlPlane | None,
    request: Request,
    name: str,
    request_id: str,
    streaming: bool = False,
    durable: Callable[[], DurableService] | None = None,
) -> Response | None:
    function, executed_version, invoked_arn = _resolve(state, name, _query_qualifier(request), control)
    invocation_type = request.headers.get("x-amz-invocation-type", "RequestResponse")
    allowed = _STREAM_INVOCATION_TYPES if streaming else _INVOCATION_TYPES
    if invocation_type not in allowed:
        raise ServiceError(
            400,
            errors.INVALID_PARAMETER_VALUE,
            f"X-Amz-Invocation-Type: {invocation_type!r} is not one of {', '.join(allowed)}",
        )
    log_type = request.headers.get("x-amz-log-type", "None")
    if log_type not in ("None", "Tail"):
        raise ServiceError(
            400, errors.INVALID_PARAMETER_VALUE, f"X-Amz-Log-Type: {log_type!r} is not one of None, Tail"
        )
    if durable is not None and function.config.durable is not None and invocation_type != "DryRun":
        from ..durable.routes import invoke as durable_invoke

        payload = _accept_payload(request, invocation_type)
        return await durable_invoke(durable(), function, payload, request, request_id, executed_version)
    if invocation_type == "Event":  # the log goes to the log only: Tail applies to sync invokes
        # The version or alias as invoked: an alias's weighted pick is made again when the event runs.
        unqualified = state.function_arn(function.config.name)
        qualifier = invoked_arn[len(unqualified) + 1 :] if invoked_arn != unqualified else ""
        return _accept_event(state, function, request, request_id, "" if qualifier == LATEST else qualifier)
    if request.too_large:
        raise ServiceError(
            413,
            errors.REQUEST_TOO_LARGE,
            f"Request must be smaller than {MAX_SYNC_PAYLOAD_BYTES} bytes for the InvokeFunction operation",
        )
    payload = _validated_payload(request.body)
    client_context = _client_context(request.headers.get("x-amz-client-context"))
    tenant_id = tenancy.tenant_id(function.config, request.headers.get(tenancy.HEADER))
    if invocation_type == "DryRun":
        return Response(204, b"", [("x-amzn-RequestId", request_id)])
    tail = log_type == "Tail"
    invocation = Invocation(
        request_id=request_id,
        payload=payload,
        invoked_function_arn=invoked_arn,
        trace_id=_traced(state, function, request, event=False),
        client_context=client_context,
        log_tail=tail,
        stream=(
            ResponseStream(request.connection, request_id, executed_version=executed_version)
            if streaming
            else None
        ),
        tenant_id=tenant_id,
    )
    if tail:
        state.sink.open_tail(request_id)
    try:
        result = await function.invoke(invocation)
    finally:
        # Complete: with a tail wanted the invoke is settled (END, REPORT) before it returns.
        log_result = base64.b64encode(state.sink.close_tail(request_id)).decode() if tail else None
    if invocation.stream is not None:
        error_body = result.body if result.function_error else None
        invocation.stream.finish(result.body, error_body, log_result)
        return None  # answered on the connection, as a stream
    headers = [
        ("Content-Type", result.content_type),
        ("X-Amz-Executed-Version", executed_version),
        ("x-amzn-RequestId", request_id),
    ]
    if result.function_error:
        headers.append(("X-Amz-Function-Error", "Unhandled"))
    if log_result is not None:
        headers.append(("X-Amz-Log-Result", log_result))
    return Response(200, result.body, headers)


def _accept_payload(request: Request, invocation_type: str) -> bytes:
    """The payload of an invoke that starts a durable execution, within its invocation type's limit."""
    limit = MAX_EVENT_PAYLOAD_BYTES if invocation_type == "Event" else MAX_SYNC_PAYLOAD_BYTES
    if request.too_large or request.body_size > limit:
        raise ServiceError(
            413,
            errors.REQUEST_TOO_LARGE,
            f"Request must be smaller than {limit} bytes for the Invoke operation",
        )
    return _validated_payload(request.body)


def _accept_event(
    state: ServerState, function: Function, request: Request, request_id: str, qualifier: str
) -> Response:
    """Queue an Event invoke; 202 only once it is committed to the durable queue (dispatcher.py)."""
    declared = request.headers.get("content-length", "")
    size = int(declared) if request.too_large and declared.isdigit() else request.body_size
    if request.too_large or size > MAX_EVENT_PAYLOAD_BYTES:
        raise ServiceError(
            413,
            errors.REQUEST_TOO_LARGE,
            f"{size} byte payload is too large for the Event invocation type "
            f"(limit {MAX_EVENT_PAYLOAD_BYTES} bytes)",
        )
    payload = _validated_payload(request.body)
    if state.dispatcher is None:
        raise ServiceError(500, errors.SERVICE_EXCEPTION, "Event invokes are not being accepted")
    tenant_id = tenancy.tenant_id(function.config, request.headers.get(tenancy.HEADER))
    try:
        trace_id = _traced(state, function, request, event=True)
    except _Dropped:
        return Response(202, b"", [("x-amzn-RequestId", request_id)])  # accepted, and dropped, as Lambda does
    state.dispatcher.accept(
        NewEvent(request_id, function.config.name, payload, trace_id, qualifier, tenant_id)
    )
    return Response(202, b"", [("x-amzn-RequestId", request_id)])


class _Dropped(Exception):
    """An Event invoke stopped as a recursive loop: the caller still gets its 202."""


def _traced(state: ServerState, function: Function, request: Request, event: bool) -> str:
    """The invoke's trace header, with its chain of invokes (recursion.py); a chain that has run this
    function too often is stopped and logged, unless the function allows recursion."""
    trace = request.headers.get("x-amzn-trace-id") or ids.trace_id()
    try:
        return recursion.traced(trace, function.arn)
    except recursion.RecursiveLoop:
        name = function.config.name
        if name in state.recursion_allowed:
            return trace  # Allow: the chain goes on, its count no longer grows
        state.sink.platform(recursion.stopped_line(name, trace, event))
        if event:
            raise _Dropped from None
        raise recursion.refusal(name) from None


def body_limit(request: Request) -> int:
    """The payload limit of this invoke, known from its head: the listener refuses a larger declared body
    before reading it (with `Expect: 100-continue`, before the client sends it)."""
    if not request.path.endswith(("/invocations", "/invocations/")):
        return MAX_CONTROL_BODY_BYTES  # CreateFunction / UpdateFunctionCode carry a base64 zip
    if request.headers.get("x-amz-invocation-type") == "Event":
        return MAX_EVENT_PAYLOAD_BYTES
    return MAX_SYNC_PAYLOAD_BYTES


def connection_policy(config: ServerConfig, notice: Callable[[str], None]) -> ConnectionPolicy:
    """The Invoke API's cap on open connections and its timeouts (`--max-connections`, ...)."""
    return ConnectionPolicy(
        max_connections=config.max_connections,
        idle_timeout_s=config.keep_alive_timeout_s,
        head_timeout_s=config.request_head_timeout_s,
        refusal=rendering.too_many_connections(config.max_connections),
        notice=notice,
    )


def _resolve(
    state: ServerState, raw_name: str, query_qualifier: str | None, control: ControlPlane | None = None
) -> tuple[Function, str, str]:
    """Accept a name, a full ARN or a partial ARN, each optionally qualified, as the service does: a name
    or qualifier outside its pattern or length is a ValidationException; an ARN of another region or
    account names no function of ours (404, as any unknown function). Returns the pool the invoke runs
    in, the version it runs (X-Amz-Executed-Version) and the ARN it was invoked by: a version or an
    alias (weighted: drawn per invoke) runs in its own pool (control_plane/versions.py)."""
    if query_qualifier is None and len(raw_name) <= BARE_NAME_MAX and _BARE_NAME.fullmatch(raw_name):
        # The usual invoke: a plain name, valid as the general path below would find it, of a function we
        # have. The same answer as that path's, without its ARN parsing and validation (every invoke).
        function = state.functions.get(raw_name)
        if function is not None:
            return function, LATEST, function.arn
    match = _FUNCTION_NAME.fullmatch(raw_name)
    problems = _validation_problems(raw_name, match is not None, query_qualifier)
    if problems or match is None:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
        raise ServiceError(400, errors.VALIDATION, f"{count}: {'; '.join(problems)}")
    name = match["name"]
    qualifier = match["qualifier"] or ""
    region = match["region"] or state.config.region
    account = match["account"] or state.config.account_id
    if qualifier and query_qualifier and qualifier != query_qualifier:
        raise ServiceError(
            400,
            errors.INVALID_PARAMETER_VALUE,
            f"The derived qualifier from the function name ({qualifier}) does not match the specified "
            f"qualifier ({query_qualifier}).",
        )
    qualifier = qualifier or query_qualifier or ""
    function = state.functions.get(name)
    ours = (
        region == state.config.region
        and account == state.config.account_id
        and match["partition"] in (None, "", "aws")
    )
    if function is not None and ours:
        if not qualifier:
            return function, LATEST, function.arn
        if qualifier == LATEST:
            return function, LATEST, f"{function.arn}:{LATEST}"
        target = control.versions.resolve(name, qualifier) if control is not None else None
        if target is not None:
            return target.function, target.executed_version, target.invoked_arn
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}" + (f":{qualifier}" if qualifier else "")
    raise ServiceError(404, errors.RESOURCE_NOT_FOUND, f"Function not found: {arn}")


def _validation_problems(raw_name: str, name_matches: bool, query_qualifier: str | None) -> list[str]:
    """What the service's request validation says of the name and the `Qualifier`: for each, its pattern
    is checked first, then its length."""
    problems = []
    name_max = FUNCTION_NAME_MAX if ":" in raw_name else BARE_NAME_MAX
    if not raw_name:
        problems.append(_violation(raw_name, "functionName", "have length greater than or equal to 1"))
    elif not name_matches:
        problems.append(_violation(raw_name, "functionName", _PATTERN_RULE + FUNCTION_NAME_PATTERN))
    elif len(raw_name) > name_max:
        problems.append(_violation(raw_name, "functionName", f"have length less than or equal to {name_max}"))
    if query_qualifier is None:
        return problems
    if not query_qualifier:
        problems.append(_violation(query_qualifier, "qualifier", "have length greater than or equal to 1"))
    elif _QUALIFIER.fullmatch(query_qualifier) is None:
        problems.append(_violation(query_qualifier, "qualifier", _PATTERN_RULE + QUALIFIER_PATTERN))
    elif len(query_qualifier) > QUALIFIER_MAX:
        problems.append(
            _violation(query_qualifier, "qualifier", f"have length less than or equal to {QUALIFIER_MAX}")
        )
    return problems


_PATTERN_RULE = "satisfy regular expression pattern: "


def _violation(value: str, member: str, constraint: str) -> str:
    """One constraint violation, in the words of the service's request validation."""
    return f"Value '{value}' at '{member}' failed to satisfy constraint: Member must {constraint}"


def _query_qualifier(request: Request) -> str | None:
    if not request.query:
        return None
    values = parse_qs(request.query, keep_blank_values=True).get("Qualifier")
    return values[-1] if values else None


def _validated_payload(body: bytes) -> bytes:
    """The service passes the payload through as sent, but refuses what is not JSON. No payload at all is
    the empty object, as when the console or CLI invokes without one."""
    if not body.strip():
        return b"{}"
    try:
        if len(body) < LARGE_PAYLOAD_BYTES:
            orjson.loads(body)
        elif not _valid_by_simdjson(body):
            _parse_gc_paused(body)  # orjson's verdict, and its words for what is wrong
    except orjson.JSONDecodeError as exc:
        raise ServiceError(
            400,
            errors.INVALID_REQUEST_CONTENT,
            "Could not parse request body into json: Could not parse payload into json: "
            + _json_problem(body, exc),
        ) from None
    return body


# A payload of 16 KB or more is checked by simdjson (pysimdjson), which validates a document without making
# Python objects of it. Measured on the 2-core machine, for the bench's events of small records: 16 KB 59 ->
# 10 us, 100 KB 446 -> 57 us, 3 MB ~20 -> ~3 ms; the 3 MB one was 70% of the server's CPU for a warm invoke.
# (Smaller payloads stay with orjson: simdjson's import, ~1.7 ms, is paid at the first large one.)
# orjson still decides whatever simdjson refuses: orjson accepts integers beyond 64 bits, which simdjson
# cannot hold, and it says what is wrong with a bad payload in the words small payloads get. simdjson
# accepts one thing orjson refuses, a leading byte order mark, so such a payload goes to orjson alone; no
# other was found in 200,000 mutated documents (tests/rapid_server/test_invoke_validation.py samples them).
LARGE_PAYLOAD_BYTES = 16 * 1024
_BOM = b"\xef\xbb\xbf"


def _valid_by_simdjson(body: bytes) -> bool:
    if body.startswith(_BOM):
        return False
    import simdjson  # ~1.7 ms, at the first large payload only

    try:
        simdjson.Parser().parse(body)  # a parser per call: cheap at this size, and safe from any thread
    except Exception:  # its refusals are ValueError, RuntimeError and UnicodeDecodeError alike
        return False
    return True


# orjson checks a large payload with the cyclic garbage collector paused: parsing builds a container per
# JSON object and array, all dropped at once afterwards, and every 700 allocations started a collection
# (some of them full ones, over the server's own objects). Nothing built here outlives the call.
def _parse_gc_paused(body: bytes) -> None:
    if not gc.isenabled():  # paused by someone else: left so
        orjson.loads(body)
        return
    gc.disable()
    try:
        orjson.loads(body)
    finally:
        gc.enable()


def _json_problem(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """What is wrong with a payload orjson refused. Bytes that are not UTF-8 are named by their offset:
    orjson's own words for them ("str is not valid UTF-8: surrogates not allowed") point nowhere."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"Invalid UTF-8: {bad.reason} 0x{body[bad.start]:02x} at byte offset {bad.start}"
    return str(exc)


def _client_context(header: str | None) -> str | None:
    """`X-Amz-Client-Context`: base64 of a JSON object, at most 3,583 bytes as sent (reference section 2).
    What the runtime gets (`Lambda-Runtime-Client-Context`) is the decoded JSON; kept as latin-1 text so its
    UTF-8 bytes go through the header unchanged."""
    if header is None:
        return None
    if len(header) > MAX_CLIENT_CONTEXT_BYTES:
        raise ServiceError(
            400,
            errors.INVALID_REQUEST_CONTENT,
            f"Client context is {len(header)} bytes; it must be at most {MAX_CLIENT_CONTEXT_BYTES} bytes",
        )
    try:
        decoded = base64.b64decode(header, validate=True)
        if not isinstance(orjson.loads(decoded), dict):
            raise ValueError("not an object")
    except (ValueError, orjson.JSONDecodeError):
        raise ServiceError(
            400, errors.INVALID_REQUEST_CONTENT, "Client context must be a valid Base64-encoded JSON object."
        ) from None
    return decoded.decode("latin-1")


def _list_functions(state: ServerState, request_id: str) -> Response:
    functions = [configuration(state, function, None) for function in state.functions.values()]
    body = orjson.dumps({"Functions": functions})
    return Response(200, body, [rendering.JSON, ("x-amzn-RequestId", request_id)])


def _unknown_operation(request: Request) -> ServiceError:
    return ServiceError(
        404, errors.UNKNOWN_OPERATION, f"No operation for {request.method} {request.path} on the Lambda API"
    )
