"""The Runtime API side of an environment: what the runtime's requests mean for its seats and for the
invokes in flight (runtime_api.py's routes call these). A runtime's `/next` parks it on a seat; its answer
(`/response`, `/error`) is routed to the invoke it names, validated before any state changes; `/init/error`
ends Init."""

from __future__ import annotations

import asyncio
import time

import orjson

from .. import errors, rendering
from ..http import BodyReceiver, Connection, Response
from ..invoke.response_stream import MAX_STREAMED_BYTES
from .environment_base import EnvironmentBase
from .invocation import MAX_RESPONSE_BYTES, InvokeResult, _Outcome
from .seats import _InFlight, _Poller
from .state import Event, State


class EnvironmentAnswers(EnvironmentBase):
    """The Runtime API's requests, as the environment takes them."""

    def runtime_next(self, connection: Connection) -> Response | None:
        seat = self._seat_for_next()
        if seat is None:
            return rendering.invalid_state_transition(
                f"State transition from {self.state.value} to next is not allowed"
            )
        initializing = seat is self._seats[0] and seat.state is State.INITIALIZING
        seat.fire(Event.NEXT)
        if initializing:
            if self._extensions is not None:
                self._extensions.runtime_ready(self._init_finished)  # once every extension asked too
            else:
                self._init_finished()
        # Parked without a task: answered by _dispatch, which writes the event on the connection itself. A
        # parked /next whose connection drops stays queued and is skipped when taken (_parked_poller).
        self._pollers.append(_Poller(connection))
        self._wake_next_waiters()
        return None

    def _init_finished(self) -> None:
        """The runtime (and every extension) asked for work: Init has ended."""
        self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
        self._drain_output()
        self._sample_memory()
        if not self._init_done.done():
            self._init_done.set_result(None)
            if self._extensions is not None:
                self._extensions.init_done(self._init_duration_ms, "success", None)

    def runtime_response(
        self,
        request_id: str,
        body: bytes,
        content_type: str | None,
        too_large: int,
        stream_error: tuple[str, bytes] | None = None,
    ) -> Response:
        flight, refusal = self._accept_answer(request_id, Event.RESPONSE, too_large)
        if flight is None:
            return refusal
        stream = flight.invocation.stream
        if stream is not None and stream.overflowed:
            self._complete(flight, self._response_too_large(stream.received, MAX_STREAMED_BYTES))
            return rendering.runtime_payload_too_large(MAX_STREAMED_BYTES)
        if stream_error is not None:
            # A streamed response that failed midway: the caller gets the error, as from an error post.
            error_type, error_body = stream_error
            if not _is_json_object(error_body):
                message = "The function's response stream ended with an error"
                error_body = rendering.function_error_body(error_type, message)
            self._complete(flight, _Outcome(InvokeResult(error_body, "application/json", True)))
            return rendering.RUNTIME_ACCEPTED
        self._complete(flight, _Outcome(InvokeResult(body, content_type or "application/json", False)))
        return rendering.RUNTIME_ACCEPTED

    def runtime_response_truncated(self, request_id: str) -> None:
        """A streamed response's connection closed before its body ended. As AWS's emulator has it, that
        response is the invoke's answer, and a failed one: the caller's stream ends with
        Runtime.TruncatedResponse (not as a success made of the bytes that came), and a later post for the
        same invoke is refused as any second answer."""
        flight = self._inflight.get(request_id)
        if flight is None or flight.outcome.done() or not flight.seat.allows(Event.RESPONSE):
            return
        flight.seat.fire(Event.RESPONSE)
        received = flight.invocation.stream.received if flight.invocation.stream is not None else 0
        message = (
            f"The function's streamed response was cut off after {received} bytes: its connection closed"
        )
        body = rendering.function_error_body(errors.RUNTIME_TRUNCATED_RESPONSE, message)
        self._complete(
            flight,
            _Outcome(
                InvokeResult(body, "application/json", True), "error", errors.RUNTIME_TRUNCATED_RESPONSE
            ),
        )

    def runtime_error(self, request_id: str, body: bytes, too_large: int = 0) -> Response:
        flight, refusal = self._accept_answer(request_id, Event.ERROR, too_large)
        if flight is None:
            return refusal
        # The body reaches the invoker unchanged. Lambda-Runtime-Function-Error-Type is optional (awslambdaric
        # omits it) and, as in RAPID, feeds only telemetry, which we do not have yet; a handler's exception
        # is no REPORT status.
        self._complete(flight, _Outcome(InvokeResult(body, "application/json", True)))
        return rendering.RUNTIME_ACCEPTED

    def stream_receiver(
        self, request_id: str, connection: Connection, content_type: str | None = None
    ) -> BodyReceiver | None:
        """A streamed `/response` is starting: where its body goes as it arrives, if its invoker takes a
        stream (InvokeWithResponseStream); None keeps it whole, checked when it ends, as any response."""
        flight = self._inflight.get(request_id)
        if flight is None or flight.outcome.done() or not flight.seat.allows(Event.RESPONSE):
            return None
        stream = flight.invocation.stream
        if stream is None:
            return None
        return stream.receive if stream.begin(connection, content_type) else None

    def answers_invoker_first(self, request_id: str) -> bool:
        """Whether the 202 for this invoke's answer waits until its invoker has been answered."""
        flight = self._inflight.get(request_id)
        return flight is not None and flight.answer_first

    def runtime_init_error(self, body: bytes, error_type_header: str | None) -> Response:
        seat = self._seats[0]
        if not seat.allows(Event.INIT_ERROR):
            return rendering.invalid_state_transition(
                f"State transition from {seat.state.value} to init error is not allowed"
            )
        seat.fire(Event.INIT_ERROR)
        self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
        error_type = errors.normalise_function_error_type(error_type_header) or _error_type_of(body)
        self._init_error = (body, error_type)
        self._drain_output()
        self._sample_memory()
        if not self._init_done.done():
            result = InvokeResult(body or b"{}", "application/json", True)
            self._init_done.set_result(_Outcome(result, "error", error_type))
            if self._extensions is not None:
                self._extensions.init_done(
                    self._init_duration_ms, "error", error_type or errors.RUNTIME_UNKNOWN
                )
        # The runtime is expected to exit now (it may still be reading this 202); make sure it does.
        self._reaper = asyncio.get_running_loop().create_task(self._reap_after_init_error())
        return rendering.RUNTIME_ACCEPTED

    def _accept_answer(
        self, request_id: str, event: Event, too_large: int
    ) -> tuple[_InFlight | None, Response]:
        """Validate an answer before firing: an unknown or already answered id is 400 InvalidRequestID
        (reference section 1), a seat that cannot answer now 403. Then fire it; an answer over the size
        limit (`too_large`, its size) ends the invoke as Function.ResponseSizeTooLarge and is 413. The
        flight is returned only when the answer's body is for the caller to decide on."""
        flight = self._inflight.get(request_id)
        if flight is None or flight.outcome.done():
            return None, rendering.invalid_request_id()
        if not flight.seat.allows(event):
            return None, rendering.invalid_state_transition(
                f"State transition from {flight.seat.state.value} to {event.value} is not allowed"
            )
        flight.seat.fire(event)
        if too_large:
            self._complete(flight, self._response_too_large(too_large))
            return None, rendering.runtime_payload_too_large(MAX_RESPONSE_BYTES)
        return flight, rendering.RUNTIME_ACCEPTED

    def _complete(self, flight: _InFlight, outcome: _Outcome) -> None:
        """The runtime answered. Its output and memory are read after the invoker has the answer
        (`_settle`): a runtime writes its output before it posts, so that output is in the pipe already."""
        if not flight.outcome.done():
            flight.outcome.set_result(outcome)

    @staticmethod
    def _response_too_large(size: int, limit: int = MAX_RESPONSE_BYTES) -> _Outcome:
        message = (
            f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes)."
        )
        body = rendering.function_error_body(errors.FUNCTION_RESPONSE_SIZE_TOO_LARGE, message)
        error_type = errors.FUNCTION_RESPONSE_SIZE_TOO_LARGE
        return _Outcome(InvokeResult(body, "application/json", True), "error", error_type)


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(orjson.loads(body), dict)
    except orjson.JSONDecodeError:
        return False


def _error_type_of(body: bytes) -> str | None:
    try:
        value = orjson.loads(body).get("errorType")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None
