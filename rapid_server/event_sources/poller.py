"""One mapping's pollers: threads that long-poll the queue, hand each batch to the event loop to invoke the
function, and delete what the function's answer allows (batch.py).

Why threads: boto3's calls block (a long poll holds its call up to 20 s), and the event loop must never
wait on them. Each poller is one daemon thread that blocks only itself; the invoke runs on the loop, the
thread waiting on it (`run_coroutine_threadsafe`), exactly as an invoke from the Invoke API does, through
`Function.invoke`: the same environments and the same concurrency limits. Daemon threads, not an executor:
`concurrent.futures` joins its workers at exit, and a long poll in flight would hold the server's exit for
up to 20 s. Stopping sets a flag and waits for nothing: a batch received by a long poll that returns after
it is not invoked, and is made visible again (or, should the process be gone by then, reappears after the
queue's visibility timeout, as anything received and not deleted).

Scaling (the service: "Lambda scales up pollers while messages keep coming, and down when the queue is
empty"): a mapping starts with one poller; every full batch (a backlog) adds one, up to the mapping's
`ScalingConfig.MaximumConcurrency` (else `DEFAULT_MAX_POLLERS`) and the function's reserved concurrency; a
poller whose long poll came back empty retires, down to one. A throttled invoke (429: the function's
concurrency is taken by other callers) is retried with backoff on the same batch, and stops growth and
retires a poller meanwhile: throttling slows polling, and loses nothing. Each step is logged.

FIFO queues need nothing more here: SQS hands out no message of a message group while an earlier one of
that group is in flight (received and neither deleted nor visible again), so each group has at most one
batch in flight, in order, whatever the number of pollers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import ids
from ..data_plane.invocation import Invocation
from ..errors import ServiceError
from . import batch
from .mapping import RECEIVE_MAX, EventSourceMapping
from .sqs import LONG_POLL_S, QueueProblem, SqsQueue

if TYPE_CHECKING:
    from ..data_plane.function import Function

DEFAULT_MAX_POLLERS = 10  # without ScalingConfig: the machine's cores, not the account, bound a local run
MAX_PAYLOAD_BYTES = 6_291_456  # a sync invoke's payload limit: a batching window stops gathering before it
PROBLEM_BACKOFF_FIRST_S, PROBLEM_BACKOFF_MAX_S = 1.0, 30.0
THROTTLE_BACKOFF_FIRST_S, THROTTLE_BACKOFF_MAX_S = 0.05, 5.0
_RECORD_OVERHEAD_BYTES = 700  # a record's keys, ids and attributes around its body, roughly


class MappingPoller:
    def __init__(
        self,
        mapping: EventSourceMapping,
        function: Callable[[str], Function | None],
        notice: Callable[[str], None],
        on_error: Callable[[BaseException], None],
        long_poll_s: int = LONG_POLL_S,
    ):
        self.mapping = mapping
        self._long_poll_s = long_poll_s
        self._function = function
        self._notice = notice
        self._on_error = on_error
        self._queue = SqsQueue(mapping.source, self._limit())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards the count of pollers
        self._pollers = 0
        self._numbers = 0  # threads ever started, for their names
        self._throttled_until = 0.0  # monotonic: no growth before it
        self.last_result = "No records processed"  # LastProcessingResult

    @property
    def pollers(self) -> int:
        return self._pollers

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._limit() == 0:
            self._say("not polling: the function's reserved concurrency is 0")
            return
        self._spawn(0)

    def stop(self) -> None:
        """Stop taking batches. Returns at once: a poller in a long poll ends when its poll returns."""
        self._stop.set()

    # -- scaling (any thread)

    def _limit(self) -> int:
        source = self.mapping.source
        limit = source.maximum_concurrency or DEFAULT_MAX_POLLERS
        function = self._function(self.mapping.function_name)
        reserved = function.config.reserved_concurrency if function is not None else None
        return limit if reserved is None else min(limit, reserved)

    def _spawn(self, before: int) -> None:
        """One more poller (the lock held, or before any thread runs)."""
        self._pollers = before + 1
        self._numbers += 1
        name = f"sqs-{self.mapping.uuid[:8]}-{self._numbers}"
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _grow(self) -> None:
        with self._lock:
            before = self._pollers
            if self._stop.is_set() or before >= self._limit() or time.monotonic() < self._throttled_until:
                return
            self._spawn(before)
        self._say(f"pollers {before} -> {before + 1} (full batches keep coming)")

    def _retire(self, why: str) -> bool:
        """This poller ends, unless it is the last one."""
        with self._lock:
            before = self._pollers
            if before <= 1:
                return False
            self._pollers = before - 1
        self._say(f"pollers {before} -> {before - 1} ({why})")
        return True

    # -- one poller (its own thread)

    def _run(self) -> None:
        try:
            self._poll()
        except BaseException as exc:  # a bug of ours: say so; the mapping goes on with the others
            self._on_error(exc)
            with self._lock:
                self._pollers -= 1

    def _poll(self) -> None:
        problem_backoff = PROBLEM_BACKOFF_FIRST_S
        while not self._stop.is_set():
            try:
                if self._queue.connect():
                    self._say(f"polling {self._queue.url}")
                messages = self._gather()
            except QueueProblem as exc:
                self._problem(str(exc))
                self._stop.wait(problem_backoff)
                problem_backoff = min(PROBLEM_BACKOFF_MAX_S, problem_backoff * 2)
                continue
            problem_backoff = PROBLEM_BACKOFF_FIRST_S
            if self._stop.is_set():
                # Received after the stop (a disable, a reload, the server stopping): handed back at once,
                # so a disabled mapping does not hold them for the visibility timeout.
                self._queue.release([message["ReceiptHandle"] for message in messages])
                return
            if not messages:
                if self._retire("the queue is empty"):
                    return
                continue
            if len(messages) >= self.mapping.source.batch_size:
                self._grow()  # a full batch: a backlog, more pollers would drain it sooner
            verdict = self._invoke(messages)
            if verdict is None:
                return  # the server stopped during the invoke: nothing deleted
            self._settle(messages, verdict)
            if time.monotonic() < self._throttled_until and self._retire("throttled"):
                return

    def _gather(self) -> list[dict[str, Any]]:
        """One batch: one long poll, then, with a batching window, more receives until the batch is full,
        the window has passed or the payload would pass 6 MB."""
        source = self.mapping.source
        messages = self._queue.receive(min(RECEIVE_MAX, source.batch_size), self._long_poll_s)
        if not messages or not source.batching_window_s:
            return messages
        deadline = time.monotonic() + source.batching_window_s
        size = sum(_size(message) for message in messages)
        while len(messages) < source.batch_size and size < MAX_PAYLOAD_BYTES - 262_144:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                break
            wait_s = min(self._long_poll_s, max(1, math.ceil(remaining)))  # whole seconds: SQS's unit
            more = self._queue.receive(min(RECEIVE_MAX, source.batch_size - len(messages)), wait_s)
            messages.extend(more)
            size += sum(_size(message) for message in more)
        return messages

    def _invoke(self, messages: list[dict[str, Any]]) -> batch.Verdict | None:
        assert self._loop is not None
        try:
            future = asyncio.run_coroutine_threadsafe(self._run_batch(messages), self._loop)
            return future.result()
        except (RuntimeError, concurrent.futures.CancelledError):
            return None  # the loop closed, or cancelled the invoke at its end: the batch stays on the queue

    def _settle(self, messages: Sequence[dict[str, Any]], verdict: batch.Verdict) -> None:
        problems = self._queue.delete(verdict.delete) if verdict.delete else []
        if verdict.problem is not None:
            self._problem(f"batch of {len(messages)}: {verdict.problem}")
        elif verdict.failed:
            self._say(
                f"batch of {len(messages)}: {verdict.failed} reported failed (left for the visibility "
                f"timeout), {len(verdict.delete)} deleted"
            )
            self.last_result = "OK"
        else:
            self.last_result = "OK"
        for problem in problems:
            self._problem(problem)

    # -- the invoke (on the event loop)

    async def _run_batch(self, messages: list[dict[str, Any]]) -> batch.Verdict:
        source = self.mapping.source
        payload = batch.event(messages, source.queue.arn, source.queue.region)
        attributes = messages[0].get("Attributes") or {}
        trace_id = attributes.get("AWSTraceHeader") or ids.trace_id()
        backoff = THROTTLE_BACKOFF_FIRST_S
        while True:
            function = self._function(self.mapping.function_name)
            if function is None:
                return batch.Verdict((), len(messages), "the function no longer exists")
            invocation = Invocation(
                request_id=ids.request_id(),
                payload=payload,
                invoked_function_arn=function.arn,
                trace_id=trace_id,
            )
            try:
                result = await function.invoke(invocation)
            except ServiceError as error:
                if error.status != 429 or self._stop.is_set():
                    return batch.Verdict((), len(messages), f"not invoked: {error.message}")
                # Throttled: the same batch again after a backoff (its messages stay invisible meanwhile).
                if time.monotonic() >= self._throttled_until:
                    self._say(f"throttled ({error.message}); retrying the batch, not growing")
                self._throttled_until = time.monotonic() + max(2 * backoff, 1.0)
                await asyncio.sleep(backoff)
                backoff = min(THROTTLE_BACKOFF_MAX_S, backoff * 2)
                continue
            return batch.verdict(
                messages, result.function_error, result.body, source.report_batch_item_failures
            )

    # -- saying things

    def _problem(self, problem: str) -> None:
        self.last_result = f"PROBLEM: {problem}"
        self._say(problem)

    def _say(self, text: str) -> None:
        mapping = self.mapping
        self._notice(
            f"rapidboot: sqs {mapping.source.queue.name} -> {mapping.function_name} "
            f"(mapping {mapping.uuid}): {text}"
        )


def _size(message: dict[str, Any]) -> int:
    return len(message.get("Body", "")) + _RECORD_OVERHEAD_BYTES
