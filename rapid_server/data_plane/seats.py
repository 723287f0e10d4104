"""An environment's seats and the invokes in flight in it.

Each runtime worker that polls `/next` holds a *seat*: one state machine of state.py's transition table
(ready -> invoking -> responded -> ready). An environment has one seat, or up to AWS_LAMBDA_MAX_CONCURRENCY
when the runtime runs that many workers (Lambda Managed Instances). A worker's `/next` is parked until an
invoke is handed to it (`_dispatch`), and the invoke is then in flight, found by its request id."""

from __future__ import annotations

import asyncio
import time

from .. import rendering
from ..http import Connection, Response
from .environment_base import EnvironmentBase
from .invocation import Invocation, NotDispatched, RuntimeBusy, _Outcome
from .state import Event, State, StateMachine

# How long an invoke waits for a warm runtime that has answered but not yet asked for its next event. A
# runtime asks within microseconds of its answer, but a local caller can be quicker still, so a sequential
# caller's next invoke often arrives first and waits for it (counted in its Duration). A runtime that has
# not asked after this long is still at work after its answer: on Lambda its environment is busy and the
# invoke goes to another, so here it goes to a new environment (`RuntimeBusy`). Generous for a loaded
# machine's scheduling delay, and far below the shortest function timeout.
NEXT_GRACE_S = 0.1


class _Poller:
    """A runtime's parked `/next` request, waiting to be handed an event. Its connection may have gone
    meanwhile: it is checked when taken."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection):
        self.connection = connection


class _InFlight:
    """One invoke handed to the runtime and not yet finished."""

    __slots__ = ("answer_first", "connection", "invocation", "outcome", "seat")

    def __init__(
        self,
        invocation: Invocation,
        seat: StateMachine,
        outcome: asyncio.Future[_Outcome],
        connection: Connection,
        answer_first: bool,
    ):
        self.invocation = invocation
        self.seat = seat
        self.outcome = outcome
        self.connection = connection  # the /next the event was written on
        # The invoker is answered before the runtime's 202 (Environment.invoke).
        self.answer_first = answer_first


class EnvironmentSeats(EnvironmentBase):
    """Which seat a `/next` or an invoke takes, the parked `/next`s, and handing an invoke over."""

    def _seat_for_next(self) -> StateMachine | None:
        """Which seat a `/next` takes: a worker back from answering; else the init seat; else a new seat
        while under capacity; else a seat re-polling after its connection dropped. None: refused (403)."""
        for wanted in (State.RESPONDED, State.INITIALIZING):
            for seat in self._seats:
                if seat.state is wanted:
                    return seat
        if self._seats[0].state is State.IDLE and len(self._seats) < self.capacity:
            seat = StateMachine()
            self._seats.append(seat)
            return seat
        for seat in self._seats:
            if seat.allows(Event.NEXT):
                return seat
        return None

    def _seat_for_dispatch(self) -> StateMachine:
        for seat in self._seats:
            if seat.state is State.IDLE:
                return seat
        # A worker parked a second /next before its answer was in: it is asking for work again.
        for seat in self._seats:
            if seat.state is State.RESPONDED:
                seat.fire(Event.NEXT)
                return seat
        raise RuntimeError("a /next is parked but no seat can take an event")

    def _parked_poller(self) -> _Poller | None:
        """The oldest parked `/next` whose connection is still open, if any."""
        while self._pollers:
            poller = self._pollers.popleft()
            if poller.connection.is_open and not poller.connection.peer_closed:
                return poller
        return None

    async def _wait_poller(self, since: float) -> _Poller | None:
        """Wait for a /next: at most the function's timeout (TimeoutError) while the runtime initialises or
        a worker is still to ask for the first time; at most NEXT_GRACE_S when every worker has asked before
        and none is waiting, as then they are all still at work after their last answers (RuntimeBusy).

        Most warm invokes of a sequential caller wait here: the caller is answered before the runtime's 202
        (`answer_first`), and its next invoke often arrives before the runtime's next /next. So the wait is
        one future woken by the /next (`_wake_next_waiters`) and one timer, not a timeout context around an
        Event: that cost ~3 Python frames, a task lookup and three getpid(2) more per wait."""
        seats = self._seats
        busy = len(seats) >= self.capacity and not any(seat.state is State.INITIALIZING for seat in seats)
        loop = self._loop
        deadline = loop.time() + (NEXT_GRACE_S if busy else self.config.timeout_s)
        while True:
            poller = self._parked_poller()
            if poller is not None:
                return poller
            if self._seats[0].state is State.TERMINATED:
                return None
            waiter: asyncio.Future[None] = loop.create_future()
            self._next_waiters.append(waiter)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
            except TimeoutError:
                if busy:
                    raise RuntimeBusy(time.perf_counter() - since) from None
                raise
            finally:
                timer.cancel()

    def _wake_next_waiters(self) -> None:
        """A /next was parked, or the runtime has ended: every invoke waiting for one looks again."""
        waiters = self._next_waiters
        if waiters:
            self._next_waiters = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _dispatch(self, poller: _Poller, invocation: Invocation, answer_first: bool) -> _InFlight:
        deadline_ms = int(time.time() * 1000 + self.config.timeout_s * 1000)
        headers = [
            ("Content-Type", invocation.content_type),
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_function_arn),
            ("Lambda-Runtime-Trace-Id", invocation.trace_id),
        ]
        if invocation.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        if invocation.tenant_id is not None:
            headers.append(("Lambda-Runtime-Aws-Tenant-Id", invocation.tenant_id))
        self._drain_output()  # what was printed before belongs to the previous owner
        seat = self._seat_for_dispatch()
        seat.fire(Event.DISPATCH)
        flight = _InFlight(invocation, seat, self._loop.create_future(), poller.connection, answer_first)
        self._inflight[invocation.request_id] = flight
        self._update_output_owner()
        self._sink.platform(
            rendering.start_line(invocation.request_id, self.config.version), request_id=invocation.request_id
        )
        # Checked and written in this same step: no event is handed to a connection that has gone.
        sent = poller.connection.send(Response(200, invocation.payload, headers))
        if not sent or poller.connection.reset_by_peer:
            # The runtime's end was closed before the event reached it (its close answered our data with
            # RST): it was dying as the event was written, and never had it.
            self._inflight.pop(invocation.request_id, None)
            self._sink.platform(rendering.not_dispatched_line(invocation.request_id))
            self._abandon()
            raise NotDispatched
        if self._extensions is not None:
            self._extensions.invoke_started(
                invocation.request_id, deadline_ms, invocation.invoked_function_arn, invocation.trace_id
            )
        return flight

    def _update_output_owner(self) -> None:
        if self._output is None:
            return
        unanswered = [rid for rid, flight in self._inflight.items() if not flight.outcome.done()]
        if len(unanswered) == 1:
            self._output.owner = unanswered[0]
        elif len(unanswered) > 1:
            self._output.owner = "*"  # several invokes share the pipe: no line can be told apart

    def _terminate_seats(self) -> None:
        for seat in self._seats:
            if seat.allows(Event.TERMINATE):
                seat.fire(Event.TERMINATE)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
