"""The life of one execution environment, as a table of legal transitions.

Runtime API requests and platform actions are events; an event not in the table for the current state is
refused (the Runtime API answers 403 `InvalidStateTransition`). Callers check everything that can be
checked (request ids, sizes) *before* firing: a transition cannot be undone.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    # Members are singletons compared by identity: hash them by identity too. Enum's own `__hash__` is a
    # Python function (hash of the name), called for every transition lookup, several per invoke.
    __hash__ = object.__hash__

    INITIALIZING = "initializing"  # process spawned, runtime has not asked for work yet
    IDLE = "idle"  # runtime is ready for an event (parked on /next)
    INVOKING = "invoking"  # an event was handed over; waiting for its response or error
    RESPONDED = "responded"  # the invoke is answered; runtime has not asked for the next one yet
    INIT_FAILED = "init_failed"  # runtime reported /init/error; it is expected to exit
    TERMINATED = "terminated"  # process gone (exited, killed, timed out or shut down)


class Event(enum.Enum):
    __hash__ = object.__hash__  # as State's

    NEXT = "next"  # runtime: GET /runtime/invocation/next
    DISPATCH = "dispatch"  # platform: an event handed to a parked /next
    RESPONSE = "response"  # runtime: POST /runtime/invocation/{id}/response
    ERROR = "error"  # runtime: POST /runtime/invocation/{id}/error
    INIT_ERROR = "init_error"  # runtime: POST /runtime/init/error
    TERMINATE = "terminate"  # platform: process exited, or was killed (timeout, init timeout, shutdown)


_ALIVE = (State.INITIALIZING, State.IDLE, State.INVOKING, State.RESPONDED, State.INIT_FAILED)

TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.INITIALIZING, Event.NEXT): State.IDLE,
    (State.INITIALIZING, Event.INIT_ERROR): State.INIT_FAILED,
    # A second /next while idle: the runtime re-polls after its connection dropped, or several workers poll.
    (State.IDLE, Event.NEXT): State.IDLE,
    (State.IDLE, Event.DISPATCH): State.INVOKING,
    (State.INVOKING, Event.RESPONSE): State.RESPONDED,
    (State.INVOKING, Event.ERROR): State.RESPONDED,
    (State.RESPONDED, Event.NEXT): State.IDLE,
    **{(state, Event.TERMINATE): State.TERMINATED for state in _ALIVE},
}


class InvalidTransition(Exception):
    def __init__(self, state: State, event: Event):
        super().__init__(f"{event.value} is not allowed while the environment is {state.value}")
        self.state = state
        self.event = event


class StateMachine:
    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = State.INITIALIZING

    def allows(self, event: Event) -> bool:
        return (self.state, event) in TRANSITIONS

    def fire(self, event: Event) -> State:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise InvalidTransition(self.state, event) from None
        return self.state
