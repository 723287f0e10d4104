"""The Telemetry API's records (schema `2022-07-01`), as the service sends them: each event is
`{"time": ISO-8601 with milliseconds, "type": ..., "record": ...}`. Only builders here, no I/O; the shapes
are checked against AWS's published JSON schema in tests/rapid_server/test_telemetry_events.py.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import orjson

Event = dict[str, Any]


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text: ~6 stamps per invoke


def now_iso() -> str:
    """`2026-12-06T22:30:00.027Z`. strftime took ~5 us a call, most invokes' stamps share their second."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[0] = second
        _second[1] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_second[1]}.{int((now - second) * 1000):03d}Z"


def invoke_head(invoked_function_arn: str) -> bytes:
    """The INVOKE event of an environment invoked through this ARN, as a bytes template for
    `% (deadlineMs, requestId, trace id)`, the last two JSON strings (`json_string`): rendered once, not
    built and serialised as a dict for every invoke."""
    arn = orjson.dumps(invoked_function_arn).replace(b"%", b"%%")
    return (
        b'{"eventType":"INVOKE","deadlineMs":%d,"requestId":%s,"invokedFunctionArn":'
        + arn
        + b',"tracing":{"type":"X-Amzn-Trace-Id","value":%s}}'
    )


def json_string(text: str) -> bytes:
    return orjson.dumps(text)


def event(type_: str, record: Any, time: str | None = None) -> Event:
    return {"time": time or now_iso(), "type": type_, "record": record}


def _ms(value: float) -> float:
    return round(value, 3)


def init_start(initialization_type: str, function_name: str, version: str) -> Event:
    return event(
        "platform.initStart",
        {
            "initializationType": initialization_type,
            "phase": "init",
            "runtimeVersion": "rapidboot",
            "runtimeVersionArn": "arn:aws:lambda:::runtime:rapidboot",
            "functionName": function_name,
            "functionVersion": version,
        },
    )


def init_runtime_done(initialization_type: str, status: str, error_type: str | None = None) -> Event:
    record: dict[str, Any] = {"initializationType": initialization_type, "phase": "init", "status": status}
    if error_type is not None:
        record["errorType"] = error_type
    return event("platform.initRuntimeDone", record)


def init_report(
    initialization_type: str, duration_ms: float, status: str, error_type: str | None = None
) -> Event:
    record: dict[str, Any] = {
        "initializationType": initialization_type,
        "phase": "init",
        "status": status,
        "metrics": {"durationMs": _ms(duration_ms)},
    }
    if error_type is not None:
        record["errorType"] = error_type
    return event("platform.initReport", record)


def start(request_id: str, version: str, trace_id: str) -> Event:
    record: dict[str, Any] = {"requestId": request_id, "version": version}
    if trace_id:
        record["tracing"] = {"type": "X-Amzn-Trace-Id", "value": trace_id}
    return event("platform.start", record)


def runtime_done(
    request_id: str,
    status: str,
    error_type: str | None,
    duration_ms: float,
    produced_bytes: int,
    started_iso: str,
) -> Event:
    """`responseLatency` (from the event handed over to the answer's first byte) and `responseDuration`
    (the answer's transfer) are the service's two spans; a buffered answer arrives whole, so the second is
    0 here."""
    record: dict[str, Any] = {
        "requestId": request_id,
        "status": status,
        "metrics": {"durationMs": _ms(duration_ms), "producedBytes": produced_bytes},
        "spans": [
            {"name": "responseLatency", "start": started_iso, "durationMs": _ms(duration_ms)},
            {"name": "responseDuration", "start": now_iso(), "durationMs": 0.0},
        ],
    }
    if error_type is not None:
        record["errorType"] = error_type
    return event("platform.runtimeDone", record)


def report(
    request_id: str,
    status: str,
    error_type: str | None,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
) -> Event:
    metrics: dict[str, Any] = {
        "durationMs": _ms(duration_ms),
        "billedDurationMs": max(1, math.ceil(duration_ms)),
        "memorySizeMB": memory_size_mb,
        "maxMemoryUsedMB": max_memory_used_mb,
    }
    if init_duration_ms is not None:
        metrics["initDurationMs"] = _ms(init_duration_ms)
    record: dict[str, Any] = {"requestId": request_id, "status": status, "metrics": metrics}
    if error_type is not None:
        record["errorType"] = error_type
    return event("platform.report", record)


def extension(name: str, events: list[str], state: str = "Ready") -> Event:
    return event("platform.extension", {"name": name, "state": state, "events": events})


def telemetry_subscription(name: str, types: list[str]) -> Event:
    return event("platform.telemetrySubscription", {"name": name, "state": "Subscribed", "types": types})


def logs_dropped(records: int, dropped_bytes: int) -> Event:
    return event(
        "platform.logsDropped",
        {
            "reason": "Some logs were dropped because the downstream consumer is slower than the logs "
            "production rate",
            "droppedRecords": records,
            "droppedBytes": dropped_bytes,
        },
    )


def log_record(type_: str, line: bytes, structured: bool) -> Event:
    """A `function` or `extension` record: the line as text, or, with JSON logging, the runtime's JSON
    object as the record (the service parses it; a line that is no JSON object stays text)."""
    text = line.decode("utf-8", "replace")
    if structured and text.startswith("{"):
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return event(type_, parsed)
    return event(type_, text)
