"""Every response body and platform log line the server produces, built in one place.

Formats follow reference sections 1, 2 and 6: Runtime API errors are `{"errorMessage","errorType"}`, Invoke
API service errors carry `x-amzn-ErrorType` and `{"Type","message"}`, platform lines are tab-separated as
CloudWatch shows them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

from . import errors
from .http import Response

JSON = ("Content-Type", "application/json")

RUNTIME_ACCEPTED = Response(202, b'{"status":"OK"}', [JSON])


def runtime_error(status: int, error_type: str, message: str) -> Response:
    return Response(status, orjson.dumps({"errorMessage": message, "errorType": error_type}), [JSON])


def invalid_state_transition(message: str) -> Response:
    return runtime_error(403, errors.INVALID_STATE_TRANSITION, message)


def invalid_request_id() -> Response:
    return runtime_error(400, errors.INVALID_REQUEST_ID, "Invalid request ID")


def runtime_payload_too_large(limit: int) -> Response:
    return runtime_error(
        413, errors.REQUEST_ENTITY_TOO_LARGE, f"Exceeded maximum allowed payload size ({limit} bytes)."
    )


def json_response(status: int, body: object) -> Response:
    """A Lambda API answer: the JSON document and its content type."""
    return Response(status, orjson.dumps(body), [JSON])


def request_object(body: bytes) -> dict[str, Any]:
    """A Lambda API request's JSON object; an empty (or blank) body is `{}`. Anything else is the service's
    400 InvalidRequestContentException, naming what is wrong."""
    if not body or body.isspace():
        return {}
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.ServiceError(
            400, errors.INVALID_REQUEST_CONTENT, f"Could not parse request body into json: {exc}"
        ) from None
    if not isinstance(document, dict):
        raise errors.ServiceError(
            400, errors.INVALID_REQUEST_CONTENT, "The request body must be a JSON object"
        )
    return document


def service_error(error: errors.ServiceError, request_id: str) -> Response:
    # The service's request validation answers `{"message"}` alone; its modelled exceptions add `Type`:
    # the caller's fault (4xx) or the service's (5xx).
    fields: dict[str, str] = {}
    if error.code != errors.VALIDATION:
        fields["Type"] = "Service" if error.status >= 500 else "User"
    fields["message"] = error.message
    headers = [JSON, ("x-amzn-ErrorType", error.code), ("x-amzn-RequestId", request_id)]
    if (
        error.reason is not None
    ):  # throttling: botocore reads `Reason`, and `Retry-After` as retryAfterSeconds
        fields["Reason"] = error.reason
        headers.append(("Retry-After", "1"))
    return Response(error.status, orjson.dumps(fields), headers)


def too_many_connections(limit: int) -> Response:
    """The answer on a connection over the Invoke API's cap (botocore retries a 503)."""
    message = f"{limit} connections are open, the server's --max-connections; retry later"
    return Response(
        503,
        orjson.dumps({"Type": "Service", "message": message}),
        [JSON, ("x-amzn-ErrorType", errors.SERVICE_EXCEPTION)],
    )


def function_error_body(error_type: str, message: str) -> bytes:
    """A failure the platform reports on the function's behalf (timeout, crash), as the invoker sees it."""
    return orjson.dumps({"errorType": error_type, "errorMessage": message})


def timeout_message(request_id: str, timeout_s: float) -> str:
    return f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds"


def exit_message(request_id: str, exit_description: str) -> str:
    return f"RequestId: {request_id} Error: Runtime exited with error: {exit_description}"


def exit_description(returncode: int) -> str:
    """How Go's os/exec (and so Lambda) words a process's end: `exit status N` or `signal: killed`."""
    if returncode < 0:
        return f"signal: {_SIGNAL_WORDS.get(-returncode, str(-returncode))}"
    return f"exit status {returncode}"


# The words Go's syscall.Signal.String() uses, for the signals a runtime is likely to die of.
_SIGNAL_WORDS = {
    1: "hangup",
    2: "interrupt",
    3: "quit",
    4: "illegal instruction",
    6: "aborted",
    7: "bus error",
    8: "floating point exception",
    9: "killed",
    11: "segmentation fault",
    13: "broken pipe",
    15: "terminated",
}


# Platform log lines ---------------------------------------------------------------------------------------


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
    status: str | None = None,
    error_type: str | None = None,
    restore_duration_ms: float | None = None,
) -> str:
    """`restore_duration_ms`: a SnapStart environment's first invoke, in the service's words."""
    # One f-string for the fields every REPORT has (one per invoke); the optional ones are rare.
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed_ms(duration_ms)} ms\tMemory Size: {memory_size_mb} MB\t"
        f"Max Memory Used: {max_memory_used_mb} MB"
    )
    if init_duration_ms is not None:
        line += f"\tInit Duration: {init_duration_ms:.2f} ms"
    if restore_duration_ms is not None:
        line += f"\tRestore Duration: {restore_duration_ms:.2f} ms"
        line += f"\tBilled Restore Duration: {billed_ms(restore_duration_ms)} ms"
    if status is not None:
        line += f"\tStatus: {status}"
    if error_type is not None:
        line += f"\tError Type: {error_type}"
    return line


def init_report_line(init_duration_ms: float, phase: str, status: str, error_type: str | None) -> str:
    fields = [f"INIT_REPORT Init Duration: {init_duration_ms:.2f} ms", f"Phase: {phase}", f"Status: {status}"]
    if error_type is not None:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields)


def timeout_log_line(request_id: str, timeout_s: float, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return f"{stamp} {request_id} Task timed out after {timeout_s:.2f} seconds"


def scratch_overflow_line(request_id: str, limit_mb: int, overflow_bytes: int) -> str:
    over_mb = -(-overflow_bytes // (1024 * 1024))
    return (
        f"RequestId: {request_id} Error: /tmp holds {over_mb} MB more than the function's ephemeral storage "
        f"of {limit_mb} MB; the environment is reset"
    )


def reaped_line(function: str, pid: int | None, idle_s: float) -> str:
    return f"rapidboot: {function}: environment (pid {pid}) idle for {idle_s:.0f} s, stopped"


def replaced_line(function: str, pid: int | None, lost: int | None) -> str:
    return f"rapidboot: {function}: provisioned environment (pid {pid}) ready, in place of pid {lost}"


def foreign_peer_line(function: str, runtime_pid: int | None, peer_pid: int | None) -> str:
    peer = peer_pid if peer_pid is not None else "unknown"
    return (
        f"rapidboot: {function}: refused a Runtime API connection from pid {peer}, not a process of the "
        f"environment (runtime pid {runtime_pid})"
    )


def shutdown_cut_line(request_id: str, grace_s: float) -> str:
    return (
        f"RequestId: {request_id} the server is shutting down: not finished within {grace_s:.1f} s, stopped"
    )


def not_dispatched_line(request_id: str) -> str:
    return f"RequestId: {request_id} the runtime exited before reading this event; it runs elsewhere"


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the next whole millisecond."""
    return max(1, math.ceil(round(duration_ms, 6)))


# Event invokes (dispatcher.py) ---------------------------------------------------------------------------


def async_failed_line(function: str, request_id: str, condition: str, invoke_count: int) -> str:
    return f"rapidboot: {function}: event {request_id} failed: {condition} after {invoke_count} invoke(s)"


def async_target_gone_line(function: str, request_id: str, qualifier: str) -> str:
    return (
        f"rapidboot: {function}: event {request_id} cannot run: {function}:{qualifier} (a version or an "
        "alias) no longer exists (ResourceNotFoundException)"
    )


def destination_failed_line(function: str, request_id: str, destination: str, error: OSError) -> str:
    return (
        f"rapidboot: {function}: event {request_id}: cannot deliver the record to {destination}: "
        f"{error.strerror or error}; dropped"
    )


def async_recovered_line(count: int) -> str:
    return f"rapidboot: {count} event(s) in flight when the last server stopped are queued again"


def async_orphaned_line(function: str, count: int) -> str:
    return f"rapidboot: {count} queued event(s) for {function!r}, not in this configuration, are kept"
