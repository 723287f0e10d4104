"""Durable executions: started by an invoke, driven by re-invoking the function with its checkpoint log.

One invocation of an execution runs at a time. It gets a fresh checkpoint token, which each checkpoint
replaces (a token is used once; an old or foreign one is refused with the service's "Invalid checkpoint
token", which the SDK treats as retryable). When the function answers PENDING the execution sleeps until
its earliest timer (a wait's end, a step's next attempt, a callback's deadline) or until a callback or a
chained invoke completes one of its operations; then it is invoked again, and the SDK replays the log.
An invocation that fails (an unhandled error, a timeout, a crash) is retried, as the service retries it.

A server started on the same `--state-dir` resumes every RUNNING execution from the log: timers that
ended while it was down fire at once, and the function is replayed from what was checkpointed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .. import errors
from ..errors import ServiceError
from . import operations as ops
from .store import DurableStore, Write

if TYPE_CHECKING:
    from ..data_plane.function import Function

INVOCATION_ATTEMPTS = 3  # an invocation that fails is tried again twice, 1 s then 2 s later (scaled)
INVALID_TOKEN = "Invalid checkpoint token"  # the SDK's retryable prefix (its INVALID_CHECKPOINT_TOKEN_PREFIX)
ALREADY_STARTED = "DurableExecutionAlreadyStartedException"
CALLBACK_TIMEOUT = "CallbackTimeoutException"
RUNNING = "RUNNING"
PAUSING = "PAUSING"  # paused while an invocation runs: PAUSED at its next checkpoint (or its end)
PAUSED = "PAUSED"  # not invoked until resumed; its waits, callbacks and chained invokes still complete
ALIVE = (RUNNING, PAUSING, PAUSED)  # not ended: in memory, its timers armed, its callbacks answered
RESOURCE_CONFLICT = "ResourceConflictException"
DEFAULT_EXECUTION_TIMEOUT_S = 86_400  # CreateFunction's default ExecutionTimeout
DEFAULT_RETENTION_DAYS = 14
PAGE_ITEMS = 1000
DAY_MS = 86_400_000
# How often ended executions past their retention are removed: hourly, or four times a (scaled) day when
# --durable-time-scale makes days short, but no more often than twice a second.
RETENTION_SWEEP_S = 3600.0
RETENTION_SWEEP_MIN_S = 0.5


@dataclass(slots=True)
class Execution:
    """An execution in memory: its row (`record`, the GetDurableExecution shape plus "_" keys) and its
    operations, mirrored from the store."""

    record: dict[str, Any]
    operations: dict[str, ops.Operation] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)  # operation id -> sequence of its last change
    seq: int = 0
    seen: int = 0  # the highest sequence the running invocation has been given
    # Operations changed since the running invocation last saw them (a checkpoint's answer), in order.
    unseen: dict[str, None] = field(default_factory=dict)
    events: int = 0
    invoking: bool = False  # an invocation runs: its token is the one checkpoints must carry
    driving: bool = False  # a replay loop (`_drive`) owns the execution
    attempts: int = 0
    # Time, a callback or a chained invoke changed an operation since the running invocation began: the
    # function may have suspended without acting on it, so it is replayed once more.
    nudged: bool = False
    timer: asyncio.TimerHandle | None = None
    done: asyncio.Future[None] | None = None

    @property
    def arn(self) -> str:
        return str(self.record["DurableExecutionArn"])

    @property
    def running(self) -> bool:
        """Not ended (RUNNING, PAUSING or PAUSED)."""
        return bool(self.record["Status"] in ALIVE)

    @property
    def paused(self) -> bool:
        return bool(self.record["Status"] != RUNNING)


class DurableService:
    def __init__(
        self,
        store: DurableStore,
        functions: dict[str, Function],
        notice: Callable[[str], None],
        on_error: Callable[[BaseException], None],
        scale: float = 1.0,
    ):
        self.store = store
        self._functions = functions
        self._notice = notice
        self._on_error = on_error
        self.scale = scale
        self._executions: dict[str, Execution] = {}  # RUNNING ones (and finished ones someone awaits)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------------------

    def resume(self) -> int:
        """Load every RUNNING execution from the log and drive it again; returns how many. Ended ones past
        their retention are removed first, and then periodically."""
        self.expire()
        interval_s = min(RETENTION_SWEEP_S, DAY_MS / 1000 / self.scale / 4)
        self._spawn(self._sweep(max(RETENTION_SWEEP_MIN_S, interval_s)))
        resumed = 0
        for record in self.store.executions(statuses=ALIVE):
            execution = Execution(record)
            if record["Status"] == PAUSING:  # its invocation died with the server: paused now
                self._set_status(execution, PAUSED)
            for seq, op in self.store.operations(execution.arn):
                execution.operations[op["Id"]] = op
                execution.seqs[op["Id"]] = seq
                execution.seq = max(execution.seq, seq)
            execution.events = self.store.event_count(execution.arn)
            self._executions[execution.arn] = execution
            for op in execution.operations.values():  # chained invokes in flight when the server died
                if op["Type"] == "CHAINED_INVOKE" and op["Status"] == "STARTED":
                    self._spawn(self._chained_invoke(execution, op))  # again: at least once
            if execution.paused:
                self._arm(execution)  # not invoked; its waits and timeouts still run
            else:
                self._spawn(self._drive(execution))
            resumed += 1
        return resumed

    def expire(self) -> int:
        """Remove the ended executions whose `RetentionPeriodInDays` (days of scaled time) have passed since
        they ended, with their history; returns how many."""
        arns = self.store.ended_before(_now_ms(), DAY_MS / self.scale)
        if arns:
            self.store.delete(arns)
            self._notice(f"rapidboot: durable executions past their retention period removed: {len(arns)}")
        return len(arns)

    async def _sweep(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.expire()

    async def stop(self) -> None:
        for execution in self._executions.values():
            if execution.timer is not None:
                execution.timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.store.close()

    # -- start -----------------------------------------------------------------------------------------

    def start(
        self, function: Function, payload: bytes, name: str | None, version: str = "$LATEST"
    ) -> Execution:
        """A new execution of `function` (an invoke of a durable function), committed before it returns."""
        config = function.config
        durable = config.durable
        assert durable is not None
        if name is not None and not _valid_name(name):
            raise ServiceError(
                400,
                errors.INVALID_PARAMETER_VALUE,
                f"DurableExecutionName: {name!r} must be 1-64 of [a-zA-Z0-9-_]",
            )
        execution_id = uuid.uuid4().hex
        name = name or str(uuid.uuid4())
        arn = f"{function.arn}:{version}/durable-execution/{name}/{execution_id}"
        now = _now_ms()
        input_payload = payload.decode("utf-8")
        record: dict[str, Any] = {
            "DurableExecutionArn": arn,
            "DurableExecutionName": name,
            "FunctionArn": f"{function.arn}:{version}",
            "InputPayload": input_payload,
            "StartTimestamp": now,
            "Status": RUNNING,
            "Version": version,
            "DurableConfig": {
                "ExecutionTimeout": durable.execution_timeout_s,
                "RetentionPeriodInDays": durable.retention_days,
            },
            "_Function": config.name,
            "_Token": "",
            "_TimeoutAt": now + int(durable.execution_timeout_s * 1000 / self.scale),
        }
        execution = Execution(record)
        first: ops.Operation = {
            "Id": execution_id,
            "Type": "EXECUTION",
            "Status": "STARTED",
            "StartTimestamp": now,
            "ExecutionDetails": {"InputPayload": input_payload},
        }
        execution.operations[execution_id] = first
        execution.seq = execution.seqs[execution_id] = 1
        started = {
            "EventType": "ExecutionStarted",
            "Id": execution_id,
            "Name": name,
            "EventTimestamp": now,
            "ExecutionStartedDetails": {
                "Input": {"Payload": input_payload},
                "ExecutionTimeout": durable.execution_timeout_s,
            },
        }
        execution.events = 1
        if not self.store.create(record, Write(arn, operations=[(1, first)], events=[(1, started)])):
            raise ServiceError(
                409,
                ALREADY_STARTED,
                f"Durable execution with name {name} already exists for function {config.name}",
            )
        execution.done = asyncio.get_running_loop().create_future()
        self._executions[arn] = execution
        self._notice(f"rapidboot: durable execution started: {arn}")
        self._spawn(self._drive(execution))
        return execution

    # -- the replay loop -------------------------------------------------------------------------------

    async def _drive(self, execution: Execution) -> None:
        """Invoke the function until it answers PENDING with nothing new to see, or the execution ends."""
        if execution.driving:
            return
        execution.driving = True
        try:
            await self._replay(execution)
        finally:
            execution.driving = False

    async def _replay(self, execution: Execution) -> None:
        while execution.running:
            self._fire_due(execution)
            if not execution.running:
                return
            if execution.paused:  # PauseDurableExecution: no invocation until ResumeDurableExecution
                if execution.record["Status"] == PAUSING:
                    self._set_status(execution, PAUSED)
                self._arm(execution)
                return
            function = self._functions.get(execution.record["_Function"])
            if function is None:
                self._notice(f"rapidboot: durable execution {execution.arn}: its function is gone; it waits")
                return
            execution.invoking = True
            try:
                outcome = await self._invoke_once(execution, function)
            finally:
                execution.invoking = False
                execution.record["_Token"] = ""  # the invocation's token dies with it
            if not execution.running:
                return
            if outcome is not None:
                self._finish(execution, *outcome)
                return
            if execution.paused or self._has_news(execution):
                continue  # paused (made PAUSED above), or something changed while it ran: replay at once
            if execution.attempts:
                delay_s = execution.attempts / self.scale  # 1 s, then 2 s: as the service backs off
                await asyncio.sleep(delay_s)
                continue
            self._arm(execution)
            return

    async def _invoke_once(self, execution: Execution, function: Function) -> tuple[str, Any] | None:
        """One invocation; returns the execution's outcome, or None when it is PENDING (or to be retried,
        with `execution.attempts` counting the failures)."""
        from ..data_plane.invocation import Invocation  # lazy: only once an execution runs

        token = _new_token()
        execution.record["_Token"] = token
        execution.seen = execution.seq
        execution.unseen.clear()
        execution.nudged = False
        event = {
            "DurableExecutionArn": execution.arn,
            "CheckpointToken": token,
            "InitialExecutionState": {
                "Operations": [ops.rendered(op) for op in execution.operations.values()],
                "NextMarker": "",
            },
        }
        # The invocations before this one: 0 for the first, then each replay's number. The service's own
        # REPORT line shows nothing durable; ours ends with the execution and the replay, as two more
        # tab-separated `Key: value` fields (the SDK's context says it too: `context.is_replaying()`).
        replay = int(execution.record.get("_Invocations", 0))
        execution.record["_Invocations"] = replay + 1
        invocation = Invocation(
            request_id=str(uuid.uuid4()),
            payload=orjson.dumps(event),
            invoked_function_arn=execution.record["FunctionArn"],
            trace_id=_trace_id(),
            report_fields=f"\tDurable Execution: {execution.arn}\tReplay: {replay}",
        )
        try:
            result = await function.invoke(invocation)
        except ServiceError as exc:  # throttled, or the server is stopping: try again later
            execution.attempts += 1
            if execution.attempts >= INVOCATION_ATTEMPTS:
                return ("FAILED", {"ErrorType": exc.code, "ErrorMessage": exc.message})
            return None
        answer = _answer(result.body) if not result.function_error else None
        if answer is None:
            execution.attempts += 1
            if execution.attempts >= INVOCATION_ATTEMPTS:
                return ("FAILED", _invocation_error(result.body))
            return None
        execution.attempts = 0
        status = answer.get("Status")
        if status == "SUCCEEDED":
            return ("SUCCEEDED", answer.get("Result"))
        if status == "FAILED":
            return ("FAILED", answer.get("Error") or {"ErrorType": "Unknown", "ErrorMessage": "failed"})
        return None  # PENDING

    def _finish(self, execution: Execution, status: str, value: Any) -> None:
        """The execution's end: SUCCEEDED with its result, FAILED/TIMED_OUT/STOPPED with an error."""
        if not execution.running:
            return
        now = _now_ms()
        record = execution.record
        record["Status"] = status
        record["EndTimestamp"] = now
        record["_Token"] = ""
        kind = {"SUCCEEDED": "Succeeded", "FAILED": "Failed", "TIMED_OUT": "TimedOut", "STOPPED": "Stopped"}
        event: dict[str, Any] = {
            "EventType": "Execution" + kind[status],
            "Id": record["DurableExecutionArn"].rsplit("/", 1)[-1],
            "EventTimestamp": now,
        }
        if status == "SUCCEEDED":
            record["Result"] = value if value is not None else ""
            event["ExecutionSucceededDetails"] = {"Result": {"Payload": record["Result"]}}
        else:
            record["Error"] = value or {}
            event[f"Execution{kind[status]}Details"] = {"Error": {"Payload": record["Error"]}}
        execution_op = execution.operations.get(event["Id"])
        writes: list[tuple[int, ops.Operation]] = []
        if execution_op is not None:
            execution_op.update({"Status": status, "EndTimestamp": now})
            execution.seq += 1
            writes.append((execution.seq, execution_op))
        execution.events += 1
        self.store.write(Write(execution.arn, record, writes, [(execution.events, event)]))
        if execution.timer is not None:
            execution.timer.cancel()
        self._executions.pop(execution.arn, None)
        if execution.done is not None and not execution.done.done():
            execution.done.set_result(None)
        self._notice(f"rapidboot: durable execution {status}: {execution.arn}")

    def _has_news(self, execution: Execution) -> bool:
        """Whether an invocation would see something the last one did not."""
        return (
            execution.nudged
            or bool(execution.unseen)
            or any(op["Status"] == "READY" for op in execution.operations.values())
            or self._is_due(execution)
        )

    # -- time ------------------------------------------------------------------------------------------

    def _deadline(self, execution: Execution) -> int | None:
        """When the execution times out; none while it is paused with `ExecutionTimeoutPaused`."""
        record = execution.record
        if execution.paused and record.get("_TimeoutPaused"):
            return None
        deadline = record.get("_TimeoutAt")
        return int(deadline) if deadline is not None else None

    def _is_due(self, execution: Execution) -> bool:
        wake = self._next_wake(execution)
        return wake is not None and wake <= _now_ms()

    def _next_wake(self, execution: Execution) -> int | None:
        wake = ops.next_wake_ms(execution.operations)
        deadline = self._deadline(execution)
        if deadline is not None:
            wake = deadline if wake is None else min(wake, deadline)
        return wake

    def _fire_due(self, execution: Execution) -> bool:
        """Apply what time did (waits ended, retries ready, callbacks and the execution timed out)."""
        now = _now_ms()
        deadline = self._deadline(execution)
        if deadline is not None and deadline <= now:
            error = {"ErrorType": "Execution.TimedOut", "ErrorMessage": "The execution timed out"}
            self._finish(execution, "TIMED_OUT", error)
            return True
        changed = ops.due(execution.operations, now)
        if not changed:
            return False
        execution.nudged = True
        self._commit(execution, [op for op, _ in changed], [event for _, event in changed if event])
        return True

    def _arm(self, execution: Execution) -> None:
        if execution.timer is not None:
            execution.timer.cancel()
            execution.timer = None
        wake = self._next_wake(execution)
        if wake is None or not execution.running:
            return
        loop = asyncio.get_running_loop()
        delay_s = max(0.0, (wake - _now_ms()) / 1000)
        execution.timer = loop.call_later(delay_s, self._wake, execution)

    def _wake(self, execution: Execution) -> None:
        """Something changed (a timer, a callback, a chained invoke): replay unless an invocation runs (it
        sees the change in its next checkpoint's answer, or is replayed when it ends). A paused execution
        is not invoked: what time did is committed, and it waits for ResumeDurableExecution."""
        if not execution.running or execution.driving:
            return
        if execution.paused:
            self._fire_due(execution)
            self._arm(execution)
            return
        self._spawn(self._drive(execution))

    def _commit(
        self,
        execution: Execution,
        changed: list[ops.Operation],
        events: list[dict[str, Any]],
        callbacks: list[tuple[str, str]] | None = None,
    ) -> None:
        writes = []
        for op in changed:
            execution.seq += 1
            execution.seqs[op["Id"]] = execution.seq
            execution.unseen[op["Id"]] = None
            writes.append((execution.seq, op))
        numbered = []
        for event in events:
            execution.events += 1
            numbered.append((execution.events, event))
        self.store.write(Write(execution.arn, execution.record, writes, numbered, callbacks or ()))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._reaped)

    def _reaped(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._on_error(task.exception())  # type: ignore[arg-type]

    # -- the API the SDK calls -------------------------------------------------------------------------

    def checkpoint(self, arn: str, token: object, updates: object, client_token: object) -> dict[str, Any]:
        """CheckpointDurableExecution: applied and committed, then answered with a new token and the
        operations changed since the function last saw them."""
        execution = self._current(arn, token)
        try:
            batch = ops.validate(updates, execution.operations)
        except ops.UpdateRefused as exc:
            raise ServiceError(400, errors.INVALID_PARAMETER_VALUE, str(exc)) from None
        now = _now_ms()
        applied = ops.apply(batch, execution.operations, arn.rsplit("/", 1)[-1], now, self.scale)
        due = ops.due(execution.operations, now)
        execution.nudged = execution.nudged or bool(due)
        changed = applied.changed + [op for op, _ in due]
        events = applied.events + [event for _, event in due if event]
        if applied.completed is not None:
            self._commit(execution, changed, events, applied.callbacks)
            self._finish(execution, *applied.completed)
            return {"NewExecutionState": {"Operations": [ops.rendered(op) for op in changed]}}
        new_token = _new_token()
        execution.record["_Token"] = new_token
        if execution.record["Status"] == PAUSING:  # paused at this checkpoint: committed with it
            execution.record["Status"] = PAUSED
        self._commit(execution, changed, events, applied.callbacks)
        for op in applied.invokes:
            self._spawn(self._chained_invoke(execution, op))
        unseen = [ops.rendered(execution.operations[op_id]) for op_id in execution.unseen]
        execution.unseen.clear()
        execution.seen = execution.seq
        return {"CheckpointToken": new_token, "NewExecutionState": {"Operations": unseen}}

    def state(self, arn: str, token: object, marker: str | None, max_items: int | None) -> dict[str, Any]:
        """GetDurableExecutionState: the operations, a page at a time (the marker is an offset)."""
        execution = self._current(arn, token)
        start = int(marker) if marker and marker.isdigit() else 0
        count = max_items or PAGE_ITEMS
        listed = list(execution.operations.values())
        page = listed[start : start + count]
        answer: dict[str, Any] = {"Operations": [ops.rendered(op) for op in page]}
        if start + count < len(listed):
            answer["NextMarker"] = str(start + count)
        return answer

    def _current(self, arn: str, token: object) -> Execution:
        execution = self._executions.get(arn)
        if execution is None or not execution.running or not execution.invoking:
            raise ServiceError(
                400, errors.INVALID_PARAMETER_VALUE, f"{INVALID_TOKEN}: no invocation of {arn} runs"
            )
        if not isinstance(token, str) or not token or token != execution.record["_Token"]:
            raise ServiceError(
                400, errors.INVALID_PARAMETER_VALUE, f"{INVALID_TOKEN}: it was used already, or never issued"
            )
        return execution

    # -- callbacks -------------------------------------------------------------------------------------

    def callback(
        self, callback_id: str, result: str | None, error: dict[str, Any] | None, beat: bool
    ) -> None:
        """SendDurableExecutionCallbackSuccess / Failure / Heartbeat."""
        found = self.store.callback(callback_id)
        if found is None:
            raise ServiceError(404, errors.RESOURCE_NOT_FOUND, f"Callback {callback_id} not found")
        arn, op_id = found
        execution = self._executions.get(arn)
        op = execution.operations.get(op_id) if execution is not None else None
        if execution is None or op is None or op["Status"] != "STARTED":
            raise ServiceError(
                400, CALLBACK_TIMEOUT, f"Callback {callback_id} has timed out or was already completed"
            )
        self._fire_due(execution)
        if op["Status"] != "STARTED":
            raise ServiceError(400, CALLBACK_TIMEOUT, f"Callback {callback_id} has timed out")
        now = _now_ms()
        if beat:
            ops.heartbeat(op, now, self.scale)
            self._commit(execution, [op], [])
            if not execution.driving:
                self._arm(execution)
            return
        event = ops.complete_callback(op, result, error, now)
        execution.nudged = True
        self._commit(execution, [op], [event])
        self._wake(execution)

    # -- chained invokes -------------------------------------------------------------------------------

    async def _chained_invoke(self, execution: Execution, op: ops.Operation) -> None:
        """Invoke another function of this server with the operation's input; its answer completes the
        operation (a durable target runs as an execution of its own, awaited)."""
        from ..data_plane.invocation import Invocation

        name = str(op["_Function"]).split(":function:")[-1].split(":")[0]
        target = self._functions.get(name)
        result: str | None = None
        error: dict[str, Any] | None = None
        if target is None:
            error = {"ErrorType": "ResourceNotFoundException", "ErrorMessage": f"Function not found: {name}"}
        elif target.config.durable is not None:
            child = self.start(target, (op["_Input"] or "{}").encode(), None)
            assert child.done is not None
            await child.done
            if child.record["Status"] == "SUCCEEDED":
                result = child.record.get("Result")
            else:
                error = child.record.get("Error") or {"ErrorType": child.record["Status"]}
        else:
            invocation = Invocation(
                request_id=str(uuid.uuid4()),
                payload=(op["_Input"] or "{}").encode(),
                invoked_function_arn=target.arn,
                trace_id=_trace_id(),
            )
            try:
                answer = await target.invoke(invocation)
            except ServiceError as exc:  # throttled, or the server is stopping
                error = {"ErrorType": exc.code, "ErrorMessage": exc.message}
            else:
                if answer.function_error:
                    error = _invocation_error(answer.body)
                else:
                    result = answer.body.decode("utf-8")
        if not execution.running:
            return
        event = ops.complete_invoke(op, result, error, _now_ms())
        execution.nudged = True
        self._commit(execution, [op], [event])
        self._wake(execution)

    # -- the operator's API ----------------------------------------------------------------------------

    def get(self, arn: str) -> dict[str, Any]:
        execution = self._executions.get(arn)
        record = execution.record if execution is not None else self.store.execution(arn)
        if record is None:
            raise ServiceError(404, errors.RESOURCE_NOT_FOUND, f"Durable execution not found: {arn}")
        return record

    def stop_execution(self, arn: str, error: dict[str, Any] | None) -> int:
        record = self.get(arn)
        execution = self._executions.get(arn)
        if execution is None or not execution.running:
            raise ServiceError(
                409, RESOURCE_CONFLICT, f"Durable execution {arn} is {record['Status']}, not RUNNING"
            )
        self._finish(
            execution, "STOPPED", error or {"ErrorType": "Execution.Stopped", "ErrorMessage": "Stopped"}
        )
        return int(execution.record["EndTimestamp"])

    def pause(self, arn: str, reason: object, timeout_paused: object) -> None:
        """PauseDurableExecution: PAUSED at once when no invocation runs, else PAUSING until its next
        checkpoint (or its end); no invocation starts until ResumeDurableExecution. With
        `ExecutionTimeoutPaused` the execution's timeout is extended by the time it spends paused."""
        execution = self._alive(arn, "paused")
        if not isinstance(reason, str | None) or not isinstance(timeout_paused, bool | None):
            raise ServiceError(
                400,
                errors.INVALID_PARAMETER_VALUE,
                "Reason must be a string, ExecutionTimeoutPaused a boolean",
            )
        if execution.paused:
            return  # already pausing or paused: nothing changes
        record = execution.record
        record["_PausedAt"] = _now_ms()
        record["_TimeoutPaused"] = bool(timeout_paused)
        details: dict[str, Any] = {
            "PauseRequestTimestamp": record["_PausedAt"],
            "ExecutionTimeoutPaused": bool(timeout_paused),
        }
        if reason:
            details["Reason"] = {"Payload": reason, "Truncated": False}
        self._set_status(execution, PAUSING if execution.invoking else PAUSED, ("Paused", details))

    def resume_execution(self, arn: str, reason: object) -> None:
        """ResumeDurableExecution: PAUSING goes back to RUNNING (the invocation goes on); PAUSED is
        replayed when something completed while it was paused (or it was paused mid-invocation), else it
        waits for its pending operations."""
        execution = self._alive(arn, "resumed")
        if not isinstance(reason, str | None):
            raise ServiceError(400, errors.INVALID_PARAMETER_VALUE, "Reason must be a string")
        record = execution.record
        if not execution.paused:
            raise ServiceError(409, RESOURCE_CONFLICT, f"Durable execution {arn} is RUNNING, not PAUSED")
        paused_at = record.pop("_PausedAt", None)
        if record.pop("_TimeoutPaused", False) and paused_at is not None and "_TimeoutAt" in record:
            record["_TimeoutAt"] += max(0, _now_ms() - paused_at)
        details: dict[str, Any] = {"ResumeRequestTimestamp": _now_ms()}
        if reason:
            details["Reason"] = {"Payload": reason, "Truncated": False}
        self._set_status(execution, RUNNING, ("Resumed", details))
        if execution.driving:
            return  # PAUSING: the invocation goes on, and the replay loop with it
        if self._has_news(execution):
            self._spawn(self._drive(execution))  # something completed while it was paused
        else:
            self._arm(execution)

    def delete(self, arn: str) -> int:
        """DeleteDurableExecution: an ended execution and its history are removed (at once: the DELETING
        status is never seen here)."""
        record = self.get(arn)
        if record["Status"] in ALIVE:
            raise ServiceError(
                409,
                RESOURCE_CONFLICT,
                f"Durable execution {arn} is {record['Status']}: only an ended execution "
                "(SUCCEEDED, FAILED, STOPPED or TIMED_OUT) can be deleted",
            )
        now = _now_ms()
        self.store.delete([arn])
        return now

    def _alive(self, arn: str, verb: str) -> Execution:
        record = self.get(arn)
        execution = self._executions.get(arn)
        if execution is None or not execution.running:
            raise ServiceError(
                409, RESOURCE_CONFLICT, f"Durable execution {arn} is {record['Status']}: it cannot be {verb}"
            )
        return execution

    def _set_status(
        self, execution: Execution, status: str, event: tuple[str, dict[str, Any]] | None = None
    ) -> None:
        execution.record["Status"] = status
        events: list[dict[str, Any]] = []
        if event is not None:
            event_kind, details = event
            events.append(
                {
                    "EventType": f"Execution{event_kind}",
                    "Id": execution.arn.rsplit("/", 1)[-1],
                    "EventTimestamp": _now_ms(),
                    f"Execution{event_kind}Details": details,
                }
            )
        self._commit(execution, [], events)
        self._notice(f"rapidboot: durable execution {status}: {execution.arn}")

    async def result(self, execution: Execution) -> dict[str, Any]:
        """The execution's record once it has ended (a RequestResponse invoke waits for it)."""
        assert execution.done is not None
        await asyncio.shield(execution.done)
        return execution.record


def _answer(body: bytes) -> dict[str, Any] | None:
    """The SDK's DurableExecutionInvocationOutput, or None when the function answered something else."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(answer, dict) or answer.get("Status") not in ("SUCCEEDED", "FAILED", "PENDING"):
        return None
    return answer


def _invocation_error(body: bytes) -> dict[str, Any]:
    """An invocation's error body (`errorType`, `errorMessage`) as the API's ErrorObject."""
    try:
        error = orjson.loads(body)
    except orjson.JSONDecodeError:
        error = None
    if not isinstance(error, dict) or "Status" in error:
        return {
            "ErrorType": "Runtime.InvalidResponse",
            "ErrorMessage": "The function did not answer as a durable handler does (is it decorated with "
            "@durable_execution?): " + body[:200].decode("utf-8", "replace"),
        }
    found: dict[str, Any] = {
        "ErrorType": str(error.get("errorType", "Unknown")),
        "ErrorMessage": str(error.get("errorMessage", "")),
    }
    if isinstance(error.get("stackTrace"), list):
        found["StackTrace"] = [str(line) for line in error["stackTrace"]]
    return found


def _valid_name(name: str) -> bool:
    return 1 <= len(name) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in name)


def _new_token() -> str:
    """Opaque, within the model's `[A-Za-z0-9+/]+={0,2}`."""
    return base64.b64encode(os.urandom(24)).decode()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _trace_id() -> str:
    digits = os.urandom(20).hex()
    return f"Root=1-{int(time.time()):08x}-{digits[:24]};Parent={digits[24:]};Sampled=0"


def print_notice(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
