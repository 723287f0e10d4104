"""Where an Event invoke's outcome goes: the destination record, and its delivery to `file:` or `function:`.

The record is the service's (reference section 7, "Destinations"): `version`, `timestamp`,
`requestContext{requestId, functionArn, condition, approximateInvokeCount}`, `requestPayload`,
`responseContext{statusCode, executedVersion, functionError}`, `responsePayload`. A `function:` destination
is invoked asynchronously with the record as its event, as the service invokes a Lambda destination; here
that is one more event in the same durable queue, queued in the transaction that completes the original.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..config import Destination
from .async_queue import NewEvent, QueuedEvent

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"

RECORD_VERSION = "1.0"
LATEST = "$LATEST"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an Event invoke ended."""

    condition: str  # SUCCESS | RETRIES_EXHAUSTED | EVENT_AGE_EXCEEDED
    invoke_count: int  # times the function ran (approximateInvokeCount)
    response: bytes | None  # the last run's response or error body; None if it never ran
    function_error: bool  # the last run ended in X-Amz-Function-Error: Unhandled


def build_record(
    event: QueuedEvent,
    invoked_arn: str,
    outcome: Outcome,
    now: datetime | None = None,
    executed_version: str = LATEST,
) -> bytes:
    """The destination record, as JSON bytes. `invoked_arn`: the function's ARN, or the version's or
    alias's the event was invoked by (then `executed_version` is the version that ran)."""
    function_arn = invoked_arn if event.qualifier else f"{invoked_arn}:{LATEST}"
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "timestamp": stamp,
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": function_arn,
            "condition": outcome.condition,
            "approximateInvokeCount": outcome.invoke_count,
        },
        "requestPayload": _parsed(event.payload),
    }
    if outcome.response is None:
        # Never ran (throttled until the event expired, or reserved concurrency 0): there is no response to
        # report. The service's record for this case is undocumented; we report the throttle's status and
        # no payload.
        record["responseContext"] = {"statusCode": 429, "executedVersion": executed_version}
        return orjson.dumps(record)
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
    if outcome.function_error:
        response_context["functionError"] = "Unhandled"
    record["responseContext"] = response_context
    record["responsePayload"] = _parsed(outcome.response)
    return orjson.dumps(record)


def _parsed(body: bytes) -> Any:
    """A JSON body as its value; anything else (a function may return any bytes) as text."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def follow_up_event(destination: Destination, record: bytes, request_id: str, trace_id: str) -> NewEvent:
    """The Event invoke of a `function:` destination, carrying the record."""
    return NewEvent(request_id, destination.function, record, trace_id)


def append_record(path: Path, record: bytes) -> None:
    """One record per line. A single O_APPEND write, so records from concurrent deliveries (or several
    servers) never interleave within a line."""
    data = memoryview(record + b"\n")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
