"""The durable execution operations of the Lambda API (botocore's model, `2025-12-01`), one route each.

Timestamps are epoch seconds on this API (rest-json), where the invocation event carries milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from .. import errors, rendering
from ..errors import ServiceError
from ..http import Request, Response
from . import operations as ops
from .service import DurableService

if TYPE_CHECKING:
    from ..data_plane.function import Function

# Any label, as the path is percent-decoded (an ARN's "/" arrives as "/"): what it may be is for the
# operation to say (the model's pattern), not the route's.
_EXECUTION = re.compile(
    r"^/2025-12-01/durable-executions/(?P<arn>.+?)(?:/(?P<action>checkpoint|state|history|stop|pause|resume))?/?$"
)
# botocore's DurableExecutionArn pattern
_VALID_ARN = re.compile(
    r"arn:([a-zA-Z0-9-]+):lambda:([a-zA-Z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]+):(\$LATEST(?:\.PUBLISHED)?|[0-9]+)"
    r"/durable-execution/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)"
)
_CALLBACK = re.compile(
    r"^/2025-12-01/durable-execution-callbacks/(?P<id>.+)/(?P<action>succeed|fail|heartbeat)/?$"
)
_LIST = re.compile(r"^/2025-12-01/functions/(?P<name>[^/]+)/durable-executions/?$")
PREFIX = "/2025-12-01/"

Route = Callable[[DurableService, Request, dict[str, str]], Awaitable[Response] | Response]


def is_durable_path(path: str) -> bool:
    return path.startswith(PREFIX)


async def handle(service: DurableService, request: Request, request_id: str) -> Response | None:
    """The answer to a `/2025-12-01/` request, or None when no route has it."""
    for pattern, table in (
        (_EXECUTION, _EXECUTION_ROUTES),
        (_CALLBACK, _CALLBACK_ROUTES),
        (_LIST, _LIST_ROUTES),
    ):
        match = pattern.match(request.path)
        if match is None:
            continue
        route = table.get((request.method, match.groupdict().get("action") or ""))
        if route is None:
            return None
        arn = match.groupdict().get("arn")
        if arn is not None and (len(arn) > 1024 or _VALID_ARN.fullmatch(arn) is None):
            raise ServiceError(
                400,
                errors.INVALID_PARAMETER_VALUE,
                f"DurableExecutionArn: {arn!r} is not a durable execution ARN",
            )
        answer = route(service, request, {k: v for k, v in match.groupdict().items() if v is not None})
        response = await answer if isinstance(answer, Awaitable) else answer
        response.headers.append(("x-amzn-RequestId", request_id))
        return response
    return None


def _checkpoint(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    body = _body(request)
    return _json(
        service.checkpoint(
            path["arn"], body.get("CheckpointToken"), body.get("Updates"), body.get("ClientToken")
        )
    )


def _state(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    query = _query(request)
    return _json(
        service.state(path["arn"], query.get("CheckpointToken"), query.get("Marker"), _int(query, "MaxItems"))
    )


def _get(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    record = service.get(path["arn"])
    return _json(_shown(record))


def _history(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    service.get(path["arn"])
    query = _query(request)
    return _json(_page("Events", service.store.events(path["arn"]), query))


def _stop(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    error = _body(request) or None
    return _json({"StopTimestamp": service.stop_execution(path["arn"], error)})


def _pause(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    body = _body(request)
    service.pause(path["arn"], body.get("Reason"), body.get("ExecutionTimeoutPaused"))
    return Response(202, b"{}", [rendering.JSON])


def _resume(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    service.resume_execution(path["arn"], _body(request).get("Reason"))
    return Response(202, b"{}", [rendering.JSON])


def _delete(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    return _json({"DeletionRequestTimestamp": service.delete(path["arn"])}, 202)


def _list(service: DurableService, request: Request, path: dict[str, str]) -> Response:
    query = _query(request)
    name = path["name"].split(":function:")[-1].split(":")[0]
    statuses = parse_qs(request.query).get("Statuses", [])
    listed = [
        {key: record[key] for key in _SUMMARY if key in record}
        for record in service.store.executions(function=name)
        if (not statuses or record["Status"] in statuses)
        and (
            not query.get("DurableExecutionName")
            or record["DurableExecutionName"] == query["DurableExecutionName"]
        )
    ]
    return _json(_page("DurableExecutions", listed, query))


def _page(key: str, items: list[Any], query: dict[str, str]) -> dict[str, Any]:
    """One page of a listing: `ReverseOrder`, then `Marker` (an offset of ours) and `MaxItems` (default
    1000), with `NextMarker` while more follow."""
    if query.get("ReverseOrder") == "true":
        items.reverse()
    start = int(query["Marker"]) if query.get("Marker", "").isdigit() else 0
    count = _int(query, "MaxItems") or 1000
    answer: dict[str, Any] = {key: items[start : start + count]}
    if start + count < len(items):
        answer["NextMarker"] = str(start + count)
    return answer


_SUMMARY = (
    "DurableExecutionArn",
    "DurableExecutionName",
    "FunctionArn",
    "Status",
    "StartTimestamp",
    "EndTimestamp",
)


def _callback(action: str) -> Route:
    def route(service: DurableService, request: Request, path: dict[str, str]) -> Response:
        callback_id = path["id"]
        if action == "succeed":
            service.callback(callback_id, request.body.decode("utf-8", "replace"), None, beat=False)
        elif action == "fail":
            error = _body(request)
            service.callback(callback_id, None, error or {"ErrorType": "Callback.Failed"}, beat=False)
        else:
            service.callback(callback_id, None, None, beat=True)
        return Response(200, b"{}", [rendering.JSON])

    return route


_EXECUTION_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "checkpoint"): _checkpoint,
    ("GET", "state"): _state,
    ("GET", ""): _get,
    ("GET", "history"): _history,
    ("POST", "stop"): _stop,
    ("POST", "pause"): _pause,
    ("POST", "resume"): _resume,
    ("DELETE", ""): _delete,
}
_CALLBACK_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "succeed"): _callback("succeed"),
    ("POST", "fail"): _callback("fail"),
    ("POST", "heartbeat"): _callback("heartbeat"),
}
_LIST_ROUTES: dict[tuple[str, str], Route] = {("GET", ""): _list}


def _shown(record: dict[str, Any]) -> dict[str, Any]:
    return ops.rendered(record)


def _body(request: Request) -> dict[str, Any]:
    return rendering.request_object(request.body)  # one copy of the API's JSON-object check


def _query(request: Request) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(request.query, keep_blank_values=True).items()}


def _int(query: dict[str, str], key: str) -> int | None:
    value = query.get(key)
    if value is None:
        return None
    if not value.isdigit() or int(value) > 1000:
        raise ServiceError(
            400, errors.INVALID_PARAMETER_VALUE, f"{key}: {value!r} must be a whole number 0-1000"
        )
    return int(value)


def _json(document: dict[str, Any], status: int = 200) -> Response:
    return Response(status, orjson.dumps(_seconds(document)), [rendering.JSON])


def _seconds(value: Any) -> Any:
    """Every `...Timestamp` (kept in milliseconds) as the API's epoch seconds."""
    if isinstance(value, dict):
        return {
            key: (item / 1000 if key.endswith("Timestamp") and isinstance(item, int) else _seconds(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_seconds(item) for item in value]
    return value


async def invoke(
    service: DurableService,
    function: Function,
    payload: bytes,
    request: Request,
    request_id: str,
    executed_version: str,
) -> Response:
    """An invoke of a durable function starts an execution (`X-Amz-Durable-Execution-Name` names it; the
    ARN comes back in `X-Amz-Durable-Execution-Arn`). Event: 202 once it is committed. RequestResponse:
    the answer is the execution's result once it has ended, however many invocations that took."""
    name = request.headers.get("x-amz-durable-execution-name")
    execution = service.start(function, payload, name)
    headers = [
        ("X-Amz-Durable-Execution-Arn", execution.arn),
        ("X-Amz-Executed-Version", executed_version),
        ("x-amzn-RequestId", request_id),
    ]
    if request.headers.get("x-amz-invocation-type") == "Event":
        return Response(202, b"", headers)
    record = await service.result(execution)
    if record["Status"] == "SUCCEEDED":
        result = record.get("Result") or "null"
        return Response(200, result.encode("utf-8"), [rendering.JSON, *headers])
    error = record.get("Error") or {}
    body = {
        "errorType": error.get("ErrorType", record["Status"]),
        "errorMessage": error.get("ErrorMessage", ""),
    }
    headers.append(("X-Amz-Function-Error", "Unhandled"))
    return Response(200, orjson.dumps(body), [rendering.JSON, *headers])
