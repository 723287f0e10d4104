"""What one `OperationUpdate` does to one operation: the legal (type, action) pairs, the operation that
results and the history events it adds. No I/O, no clock: `now_ms` and the time scale are passed in.

Operations are kept in their wire shape (botocore's `Operation`), timestamps in epoch milliseconds, as
the invocation event carries them; keys that start with "_" are the service's own bookkeeping (deadlines,
a chained invoke's target) and are never rendered. The behaviour follows AWS's SDK testing package's
in-memory service: a step's RETRY makes it PENDING with `NextAttemptTimestamp`, and the service makes it
READY when that time comes; a WAIT is STARTED with `ScheduledEndTimestamp` and SUCCEEDED by the service;
a CALLBACK gets its `CallbackId` from the service and ends by SendDurableExecutionCallback*.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

Operation = dict[str, Any]
Event = dict[str, Any]

TYPES = ("EXECUTION", "CONTEXT", "STEP", "WAIT", "CALLBACK", "CHAINED_INVOKE")
# Which actions each operation type takes (the SDK testing package's processors).
ACTIONS: dict[str, frozenset[str]] = {
    "EXECUTION": frozenset({"SUCCEED", "FAIL"}),
    "CONTEXT": frozenset({"START", "SUCCEED", "FAIL"}),
    "STEP": frozenset({"START", "SUCCEED", "FAIL", "RETRY"}),
    "WAIT": frozenset({"START", "CANCEL"}),
    "CALLBACK": frozenset({"START"}),
    "CHAINED_INVOKE": frozenset({"START"}),
}
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED"})
_EVENT_PREFIX = {
    "EXECUTION": "Execution",
    "CONTEXT": "Context",
    "STEP": "Step",
    "WAIT": "Wait",
    "CALLBACK": "Callback",
    "CHAINED_INVOKE": "ChainedInvoke",
}
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class UpdateRefused(Exception):
    """An update the service refuses (InvalidParameterValueException): nothing of its batch is applied."""


@dataclass(slots=True)
class Applied:
    """What a batch of updates did."""

    changed: list[Operation] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    completed: tuple[str, Any] | None = None  # ("SUCCEEDED", payload) | ("FAILED", error) of the execution
    callbacks: list[tuple[str, str]] = field(default_factory=list)  # (callback id, operation id) created
    invokes: list[Operation] = field(default_factory=list)  # chained invokes to start


def validate(updates: object, operations: dict[str, Operation]) -> list[dict[str, Any]]:
    """The batch as the model allows it, or UpdateRefused naming the first problem."""
    if updates is None:
        return []
    if not isinstance(updates, list):
        raise UpdateRefused("Updates must be a list of OperationUpdate")
    checked: list[dict[str, Any]] = []
    for index, update in enumerate(updates):
        where = f"Updates[{index}]"
        if not isinstance(update, dict):
            raise UpdateRefused(f"{where} must be an OperationUpdate object")
        op_id, kind, action = update.get("Id"), update.get("Type"), update.get("Action")
        if not isinstance(op_id, str) or not 1 <= len(op_id) <= 64 or not set(op_id) <= _ID_CHARS:
            raise UpdateRefused(f"{where}.Id: {op_id!r} must be 1-64 of [a-zA-Z0-9-_]")
        if kind not in ACTIONS:
            raise UpdateRefused(f"{where}.Type: {kind!r} is not one of {', '.join(TYPES)}")
        if action not in ACTIONS[kind]:
            raise UpdateRefused(f"{where}: Invalid action {action!r} for {kind} operation {op_id}")
        current = operations.get(op_id)
        if current is not None and current["Type"] != kind:
            raise UpdateRefused(f"{where}: operation {op_id} is a {current['Type']}, not a {kind}")
        if current is not None and current["Status"] in TERMINAL and kind != "EXECUTION":
            raise UpdateRefused(f"{where}: operation {op_id} is already {current['Status']}")
        if current is None and action != "START" and kind not in ("EXECUTION", "STEP", "CONTEXT"):
            raise UpdateRefused(f"{where}: operation {op_id} was never started")
        if kind == "CHAINED_INVOKE" and not (update.get("ChainedInvokeOptions") or {}).get("FunctionName"):
            raise UpdateRefused(f"{where}.ChainedInvokeOptions.FunctionName: required")
        checked.append(update)
    return checked


def apply(
    updates: list[dict[str, Any]],
    operations: dict[str, Operation],
    execution_id: str,
    now_ms: int,
    scale: float = 1.0,
) -> Applied:
    """Apply a validated batch to `operations` (in place); `scale` divides every duration
    (`--durable-time-scale`)."""
    applied = Applied()
    for update in updates:
        kind, action, op_id = update["Type"], update["Action"], update["Id"]
        if kind == "EXECUTION":
            if action == "SUCCEED":
                applied.completed = ("SUCCEEDED", update.get("Payload"))
            else:
                applied.completed = ("FAILED", update.get("Error"))
            continue
        current = operations.get(op_id)
        op = _next(update, current, now_ms, scale)
        operations[op_id] = op
        applied.changed.append(op)
        applied.events.append(event_for(op, update, now_ms))
        if kind == "CALLBACK":
            applied.callbacks.append((op["CallbackDetails"]["CallbackId"], op_id))
        elif kind == "CHAINED_INVOKE":
            applied.invokes.append(op)
    return applied


def _next(update: dict[str, Any], current: Operation | None, now_ms: int, scale: float) -> Operation:
    kind, action = update["Type"], update["Action"]
    op: Operation = dict(current) if current is not None else {"Id": update["Id"], "Type": kind}
    op.setdefault("StartTimestamp", now_ms)
    for key in ("ParentId", "Name", "SubType"):
        if update.get(key):
            op[key] = update[key]
    payload, error = update.get("Payload"), update.get("Error")
    if kind == "STEP":
        details = dict(op.get("StepDetails") or {"Attempt": 0})
        details.pop("Result", None)
        details.pop("Error", None)
        if action != "START":
            details["Attempt"] = details.get("Attempt", 0) + 1
        if payload is not None:
            details["Result"] = payload
        if error:
            details["Error"] = error
        if action == "RETRY":
            delay = (update.get("StepOptions") or {}).get("NextAttemptDelaySeconds") or 0
            details["NextAttemptTimestamp"] = now_ms + _scaled_ms(delay, scale)
        op["StepDetails"] = details
        op["Status"] = {"START": "STARTED", "RETRY": "PENDING", "SUCCEED": "SUCCEEDED", "FAIL": "FAILED"}[
            action
        ]
    elif kind == "CONTEXT":
        details = {"Result": payload} if payload is not None else {}
        if error:
            details["Error"] = error
        if (update.get("ContextOptions") or {}).get("ReplayChildren"):
            details["ReplayChildren"] = True
        op["ContextDetails"] = details
        op["Status"] = {"START": "STARTED", "SUCCEED": "SUCCEEDED", "FAIL": "FAILED"}[action]
    elif kind == "WAIT":
        if action == "START":
            seconds = (update.get("WaitOptions") or {}).get("WaitSeconds") or 0
            op["WaitDetails"] = {"ScheduledEndTimestamp": now_ms + _scaled_ms(seconds, scale)}
            op["_Duration"] = seconds
            op["Status"] = "STARTED"
        else:
            op["Status"] = "CANCELLED"
    elif kind == "CALLBACK":
        options = update.get("CallbackOptions") or {}
        op["CallbackDetails"] = {"CallbackId": new_callback_id()}
        timeout, heartbeat = options.get("TimeoutSeconds") or 0, options.get("HeartbeatTimeoutSeconds") or 0
        op["_Timeout"], op["_Heartbeat"] = timeout, heartbeat
        if timeout:
            op["_TimeoutAt"] = now_ms + _scaled_ms(timeout, scale)
        if heartbeat:
            op["_HeartbeatAt"] = now_ms + _scaled_ms(heartbeat, scale)
        op["Status"] = "STARTED"
    elif kind == "CHAINED_INVOKE":
        options = update["ChainedInvokeOptions"]
        op["_Function"] = options["FunctionName"]
        op["_Input"] = payload if payload is not None else ""
        op["ChainedInvokeDetails"] = {}
        op["Status"] = "STARTED"
    if op["Status"] in TERMINAL:
        op["EndTimestamp"] = now_ms
    return op


def due(operations: dict[str, Operation], now_ms: int) -> list[tuple[Operation, Event]]:
    """What the passing of time did by `now_ms`: waits that ended, step retries now READY, callbacks timed
    out (applied in place; each with its history event, or an empty event when there is none)."""
    done: list[tuple[Operation, Event]] = []
    for op_id, op in list(operations.items()):
        status, kind = op["Status"], op["Type"]
        if kind == "WAIT" and status == "STARTED" and op["WaitDetails"]["ScheduledEndTimestamp"] <= now_ms:
            new = {**op, "Status": "SUCCEEDED", "EndTimestamp": now_ms}
            event = _event(new, "WaitSucceeded", now_ms)
            event["WaitSucceededDetails"] = {"Duration": op.get("_Duration", 0)}
        elif kind == "STEP" and status == "PENDING":
            at = (op.get("StepDetails") or {}).get("NextAttemptTimestamp") or 0
            if at > now_ms:
                continue
            new, event = {**op, "Status": "READY"}, {}
        elif kind == "CALLBACK" and status == "STARTED" and _callback_deadline(op) <= now_ms:
            heartbeat = op.get("_HeartbeatAt", 1 << 62) < op.get("_TimeoutAt", 1 << 62)
            error = {
                "ErrorType": "Callback.Heartbeat" if heartbeat else "Callback.Timeout",
                "ErrorMessage": "Callback heartbeat timed out" if heartbeat else "Callback timed out",
            }
            details = {**op["CallbackDetails"], "Error": error}
            new = {**op, "Status": "TIMED_OUT", "EndTimestamp": now_ms, "CallbackDetails": details}
            event = _event(new, "CallbackTimedOut", now_ms)
            event["CallbackTimedOutDetails"] = {"Error": {"Payload": error}}
        else:
            continue
        operations[op_id] = new
        done.append((new, event))
    return done


def next_wake_ms(operations: dict[str, Operation]) -> int | None:
    """When time next changes one of these operations."""
    times: list[int] = []
    for op in operations.values():
        status, kind = op["Status"], op["Type"]
        if kind == "WAIT" and status == "STARTED":
            times.append(op["WaitDetails"]["ScheduledEndTimestamp"])
        elif kind == "STEP" and status == "PENDING":
            times.append((op.get("StepDetails") or {}).get("NextAttemptTimestamp") or 0)
        elif kind == "CALLBACK" and status == "STARTED" and (op.get("_TimeoutAt") or op.get("_HeartbeatAt")):
            times.append(_callback_deadline(op))
    return min(times) if times else None


def _callback_deadline(op: Operation) -> int:
    return int(min(op.get("_TimeoutAt", 1 << 62), op.get("_HeartbeatAt", 1 << 62)))


def complete_callback(op: Operation, result: str | None, error: dict[str, Any] | None, now_ms: int) -> Event:
    """SendDurableExecutionCallbackSuccess (`result`) or ...Failure (`error`), applied in place."""
    details = dict(op["CallbackDetails"])
    if error is None:
        op["Status"] = "SUCCEEDED"
        details["Result"] = result or ""
    else:
        op["Status"] = "FAILED"
        details["Error"] = error
    op["CallbackDetails"] = details
    op["EndTimestamp"] = now_ms
    if error is None:
        event = _event(op, "CallbackSucceeded", now_ms)
        event["CallbackSucceededDetails"] = {"Result": {"Payload": result or ""}}
    else:
        event = _event(op, "CallbackFailed", now_ms)
        event["CallbackFailedDetails"] = {"Error": {"Payload": error}}
    return event


def heartbeat(op: Operation, now_ms: int, scale: float) -> None:
    if op.get("_Heartbeat"):
        op["_HeartbeatAt"] = now_ms + _scaled_ms(op["_Heartbeat"], scale)


def complete_invoke(op: Operation, result: str | None, error: dict[str, Any] | None, now_ms: int) -> Event:
    """A chained invoke's outcome, applied in place."""
    op["Status"] = "SUCCEEDED" if error is None else "FAILED"
    op["ChainedInvokeDetails"] = {"Result": result} if error is None else {"Error": error}
    op["EndTimestamp"] = now_ms
    if error is None:
        event = _event(op, "ChainedInvokeSucceeded", now_ms)
        event["ChainedInvokeSucceededDetails"] = {"Result": {"Payload": result or ""}}
    else:
        event = _event(op, "ChainedInvokeFailed", now_ms)
        event["ChainedInvokeFailedDetails"] = {"Error": {"Payload": error}}
    return event


def event_for(op: Operation, update: dict[str, Any], now_ms: int) -> Event:
    """The history event of an applied update (GetDurableExecutionHistory's `Event`)."""
    kind, status = op["Type"], op["Status"]
    prefix = _EVENT_PREFIX[kind]
    suffix = {"STARTED": "Started", "SUCCEEDED": "Succeeded", "FAILED": "Failed", "CANCELLED": "Cancelled"}
    # A step's failed attempt, to be retried, is a StepFailed event too.
    name = "StepFailed" if status in ("PENDING", "READY") else prefix + suffix[status]
    event = _event(op, name, now_ms)
    payload, error = update.get("Payload"), update.get("Error")
    details: dict[str, Any] = {}
    if kind == "STEP":
        retry = {"CurrentAttempt": op["StepDetails"].get("Attempt", 0)}
        if status == "PENDING":
            retry["NextAttemptDelaySeconds"] = (update.get("StepOptions") or {}).get(
                "NextAttemptDelaySeconds", 0
            )
        if name == "StepSucceeded":
            details = {"Result": {"Payload": payload or ""}, "RetryDetails": retry}
        elif name == "StepFailed":
            details = {"Error": {"Payload": error or {}}, "RetryDetails": retry}
    elif kind == "CONTEXT" and status == "SUCCEEDED":
        details = {"Result": {"Payload": payload or ""}}
    elif kind == "CONTEXT" and status == "FAILED":
        details = {"Error": {"Payload": error or {}}}
    elif kind == "WAIT" and status == "STARTED":
        details = {
            "Duration": op.get("_Duration", 0),
            "ScheduledEndTimestamp": op["WaitDetails"]["ScheduledEndTimestamp"],
        }
    elif kind == "CALLBACK":
        details = {"CallbackId": op["CallbackDetails"]["CallbackId"]}
        if op.get("_Timeout"):
            details["Timeout"] = op["_Timeout"]
        if op.get("_Heartbeat"):
            details["HeartbeatTimeout"] = op["_Heartbeat"]
    elif kind == "CHAINED_INVOKE":
        details = {"FunctionName": op["_Function"], "Input": {"Payload": op["_Input"]}}
    event[name + "Details"] = details
    return event


def _event(op: Operation, name: str, now_ms: int) -> Event:
    event: Event = {"EventType": name, "Id": op["Id"], "EventTimestamp": now_ms}
    for key in ("Name", "SubType", "ParentId"):
        if op.get(key):
            event[key] = op[key]
    return event


def rendered(op: Operation) -> Operation:
    """The operation as the API shows it: without the service's own keys."""
    return {key: value for key, value in op.items() if not key.startswith("_")}


def new_callback_id() -> str:
    """Opaque, and within the model's `[A-Za-z0-9+/]+={0,2}`; hex, so it needs no escaping in a URL."""
    return os.urandom(24).hex()


def _scaled_ms(seconds: float, scale: float) -> int:
    return int(seconds * 1000 / scale)
