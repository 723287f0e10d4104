"""The background loop that runs Event invokes from the durable queue, and the service's retry policy.

Policy (reference section 7, docs "How Lambda handles errors and retries with asynchronous invocation"):

- A function error (the handler raised, a timeout, a crash: `X-Amz-Function-Error`) is retried
  `maximum_retry_attempts` times, the first retry about `retry_base_delay` later, the second about twice
  that (the service: about 1 then 2 minutes). Then the event goes to `on_failure` as `RetriesExhausted`.
- A throttle (429 from the concurrency limits) or a 5xx of ours is not a run of the function: the event is
  requeued with exponential backoff, 1 s doubling to at most 5 minutes, until it is `maximum_event_age`
  old, then it goes to `on_failure` as `EventAgeExceeded`. The backoff is scaled by
  `retry_base_delay / 60` when that is below the service's 60 s (never below 10 ms), so a function
  configured for fast tests also backs off fast from throttles.
- Success goes to `on_success` as `Success`.
- A function with `reserved_concurrency = 0` is never run: its events go straight to `on_failure` as
  `RetriesExhausted` with no invoke (approximateInvokeCount 0), as the service sends them to the DLQ or
  on-failure destination without retries.

Each event runs through `Function.invoke`, the path sync invokes take: the same environments and the same
concurrency limits. Every attempt carries the request id the 202 returned, as on Lambda, so a function
sees the same `aws_request_id` on a retry.

An event of a version or an alias (`name:3`, `name:live`, `Qualifier=`) carries its qualifier in the queue
and runs in that version's pool, with that qualifier's event invoke config; an alias picks its weighted
version when the event runs, as the service resolves it per invoke. One whose version or alias is gone
by then cannot run: it fails at once (no retries: the resource will not come back by itself) with a
platform line, and goes to the on-failure destination of the unqualified function.

At most `ASYNC_POLLERS_PER_FUNCTION` events of one function are in flight at once (its reserved
concurrency, when set lower): the service's pollers also ramp up gradually, and locally the machine's
CPUs, not the account limit, bound what parallel environments can achieve.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .. import rendering
from ..config import FunctionConfig
from ..data_plane.function import Function
from ..data_plane.invocation import Invocation
from ..data_plane.logs import LogSink
from ..errors import ServiceError
from .async_queue import AsyncQueue, NewEvent, QueuedEvent
from .destinations import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    SUCCESS,
    Outcome,
    append_record,
    build_record,
    follow_up_event,
)

ASYNC_POLLERS_PER_FUNCTION = 10
THROTTLE_BACKOFF_FIRST_S = 1.0
THROTTLE_BACKOFF_MAX_S = 300.0
THROTTLE_BACKOFF_FLOOR_S = 0.01
SERVICE_RETRY_BASE_DELAY_S = 60.0
LATEST = "$LATEST"


@dataclass(frozen=True, slots=True)
class EventTarget:
    """Where one queued event runs: the pool, the settings its retries and destinations follow, the ARN
    it was invoked by (the runtime's `invoked_function_arn`) and the version that runs."""

    function: Function
    config: FunctionConfig
    invoked_arn: str
    executed_version: str


# ($LATEST's Function, the event's qualifier) -> its target, None if that version or alias is gone.
Resolver = Callable[[Function, str], "EventTarget | None"]


def latest_only(function: Function, qualifier: str) -> EventTarget | None:
    """The resolver of a server with no published versions."""
    if qualifier in ("", LATEST):
        return EventTarget(function, function.config, function.arn, LATEST)
    return None


def function_error_delay(config: FunctionConfig, attempts: int) -> float:
    """Before retry number `attempts` (1, 2) after a function error: about the base, then twice it."""
    return config.retry_base_delay_s * attempts


def throttle_delay(config: FunctionConfig, throttles: int) -> float:
    """Before the next try after `throttles` consecutive throttles: 1 s doubling to 5 min, scaled."""
    backoff = min(THROTTLE_BACKOFF_MAX_S, THROTTLE_BACKOFF_FIRST_S * 2.0 ** min(throttles - 1, 20))
    scale = min(1.0, config.retry_base_delay_s / SERVICE_RETRY_BASE_DELAY_S)
    return max(THROTTLE_BACKOFF_FLOOR_S, backoff * scale)


class Dispatcher:
    def __init__(
        self,
        queue: AsyncQueue,
        functions: Mapping[str, Function],
        sink: LogSink,
        on_error: Callable[[BaseException], None],
        clock: Callable[[], float] = time.time,
        resolve: Resolver = latest_only,
    ):
        self._queue = queue
        self._resolve = resolve
        self._functions = functions
        self._sink = sink
        self._on_error = on_error
        self._clock = clock  # wall clock: due times are stored and must mean the same after a restart
        self._wake = asyncio.Event()
        self._in_flight: dict[str, set[asyncio.Task[None]]] = {name: set() for name in functions}
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        recovered = self._queue.recover()
        if recovered:
            self._sink.platform(rendering.async_recovered_line(recovered))
        for name, count in self._queue.queued_functions().items():
            if name not in self._functions:
                self._sink.platform(rendering.async_orphaned_line(name, count))
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    def accept(self, event: NewEvent) -> None:
        """Queue an Event invoke. Committed (it survives our death) when this returns: only then may the
        caller be told 202."""
        self._queue.enqueue(event, self._clock())
        self._wake.set()
        if self._sink.observer is not None:
            self._sink.observer.async_received(event.function)

    def begin_stop(self) -> None:
        """Stop taking events. Those in flight finish as the functions stop; they go back to the queue."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()

    async def wait_stopped(self) -> None:
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = [task for tasks in self._in_flight.values() for task in tasks]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._queue.close()

    # The loop --------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                wait_s = self._dispatch_due()
            except Exception as exc:  # a bug or a broken database: say so, try again shortly
                self._on_error(exc)
                wait_s = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)

    def _dispatch_due(self) -> float | None:
        """Start every due event there is room for; how long until the next one is due (None: until
        woken by an enqueue or a finished attempt)."""
        now = self._clock()
        wait_s: float | None = None
        loop = asyncio.get_running_loop()
        for name, function in self._functions.items():
            in_flight = self._in_flight.setdefault(name, set())  # functions come and go on a reload
            room = _pollers(function.config) - len(in_flight)
            for event in self._queue.claim_due(name, now, room):
                task = loop.create_task(self._attempt(function, event))
                in_flight.add(task)
                task.add_done_callback(self._finished(in_flight))
            if len(in_flight) >= _pollers(function.config):
                continue  # woken when one finishes
            next_due = self._queue.next_due(name)
            if next_due is not None:
                wait = max(0.0, next_due - now)
                wait_s = wait if wait_s is None else min(wait_s, wait)
        return wait_s

    def _finished(self, in_flight: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            self._wake.set()
            if not task.cancelled() and task.exception() is not None:
                self._on_error(task.exception())  # type: ignore[arg-type]

        return done

    # One attempt ------------------------------------------------------------------------------------------

    async def _attempt(self, latest: Function, event: QueuedEvent) -> None:
        target = self._resolve(latest, event.qualifier)
        if target is None:  # its version or alias was deleted after the 202
            self._sink.platform(
                rendering.async_target_gone_line(latest.config.name, event.request_id, event.qualifier)
            )
            qualified = f"{latest.arn}:{event.qualifier}"
            gone = EventTarget(latest, latest.config, qualified, event.qualifier)
            self._finish(gone, event, Outcome(RETRIES_EXHAUSTED, event.attempts, None, False))
            return
        config = target.config
        if self._clock() - event.enqueued_at >= config.maximum_event_age_s:
            # Only a function error's body is ever kept (a success finishes the event at once).
            error = event.last_response
            outcome = Outcome(EVENT_AGE_EXCEEDED, event.attempts, error, error is not None)
            self._finish(target, event, outcome)
            return
        if latest.config.reserved_concurrency == 0:  # the function's, shared by its versions
            self._finish(target, event, Outcome(RETRIES_EXHAUSTED, event.attempts, None, False))
            return
        invocation = Invocation(
            request_id=event.request_id,
            payload=event.payload,
            invoked_function_arn=target.invoked_arn,
            trace_id=event.trace_id,
            tenant_id=event.tenant_id,
        )
        if self._sink.observer is not None:
            self._sink.observer.async_attempted(config.name, max(0.0, self._clock() - event.enqueued_at))
        try:
            result = await target.function.invoke(invocation)
        except ServiceError as error:
            if self._stopping:
                self._queue.release(event.id)
                return
            # A throttle (429) or a 5xx of ours: not a run of the function; requeued with backoff.
            throttles = event.throttles + 1
            due = self._clock() + throttle_delay(config, throttles)
            self._queue.retry_at(event.id, due, event.attempts, throttles, None)
            return
        if self._stopping and result.function_error:
            # Most likely cut short by our own shutdown stopping the environment: not the function's fault.
            self._queue.release(event.id)
            return
        attempts = event.attempts + 1
        if not result.function_error:
            self._finish(target, event, Outcome(SUCCESS, attempts, result.body, False))
        elif attempts > config.maximum_retry_attempts:
            self._finish(target, event, Outcome(RETRIES_EXHAUSTED, attempts, result.body, True))
        else:
            due = self._clock() + function_error_delay(config, attempts)
            self._queue.retry_at(event.id, due, attempts, 0, result.body)

    def _finish(self, target: EventTarget, event: QueuedEvent, outcome: Outcome) -> None:
        """Deliver the record (if a destination is configured) and drop the event from the queue."""
        config = target.config
        destination = config.on_success if outcome.condition == SUCCESS else config.on_failure
        observer = self._sink.observer
        if outcome.condition != SUCCESS:
            if observer is not None:
                observer.async_dropped(config.name)
            self._sink.platform(
                rendering.async_failed_line(
                    config.name, event.request_id, outcome.condition, outcome.invoke_count
                )
            )
        if destination is None:
            self._queue.complete(event.id)
            return
        record = build_record(event, target.invoked_arn, outcome, executed_version=target.executed_version)
        if destination.kind == "function":
            follow_up = follow_up_event(destination, record, str(uuid.uuid4()), event.trace_id)
            self._queue.complete(event.id, follow_up, self._clock())
            self._wake.set()
            if observer is not None:  # an Event invoke of the destination function
                observer.async_received(follow_up.function)
            return
        assert destination.path is not None
        try:
            append_record(destination.path, record)
        except OSError as exc:
            # The service drops a record it cannot deliver (metric DestinationDeliveryFailures).
            if observer is not None:
                observer.destination_failed(config.name)
            self._sink.platform(
                rendering.destination_failed_line(config.name, event.request_id, str(destination), exc)
            )
        self._queue.complete(event.id)


def _pollers(config: FunctionConfig) -> int:
    if config.reserved_concurrency is None:
        return ASYNC_POLLERS_PER_FUNCTION
    # Reserved concurrency 0 still gets one poller: it sends the events on to on_failure.
    return max(1, min(ASYNC_POLLERS_PER_FUNCTION, config.reserved_concurrency))
