"""The execution environment's transition table (`rapidboot.rapid_server.data_plane.state`), checked against
an independent copy of the lifecycle it is meant to encode (reference section 1 and 4)."""

from __future__ import annotations

import itertools

import pytest

from rapidboot.rapid_server.data_plane.state import TRANSITIONS, Event, InvalidTransition, State, StateMachine

LIVE_STATES = [s for s in State if s is not State.TERMINATED]

# Written out by hand, not derived from TRANSITIONS: the test must be able to disagree with the table.
LEGAL: dict[tuple[State, Event], State] = {
    (State.INITIALIZING, Event.NEXT): State.IDLE,
    (State.INITIALIZING, Event.INIT_ERROR): State.INIT_FAILED,
    (State.IDLE, Event.NEXT): State.IDLE,
    (State.IDLE, Event.DISPATCH): State.INVOKING,
    (State.INVOKING, Event.RESPONSE): State.RESPONDED,
    (State.INVOKING, Event.ERROR): State.RESPONDED,
    (State.RESPONDED, Event.NEXT): State.IDLE,
    **{(state, Event.TERMINATE): State.TERMINATED for state in LIVE_STATES},
}
ILLEGAL = [pair for pair in itertools.product(State, Event) if pair not in LEGAL]


def machine_in(state: State) -> StateMachine:
    machine = StateMachine()
    machine.state = state
    return machine


def test_a_new_machine_is_initializing() -> None:
    assert StateMachine().state is State.INITIALIZING


def test_the_table_is_exactly_the_lifecycle() -> None:
    assert TRANSITIONS == LEGAL


@pytest.mark.parametrize(("start", "event"), list(LEGAL), ids=lambda v: v.value)
def test_legal_transition(start: State, event: Event) -> None:
    machine = machine_in(start)
    assert machine.allows(event)
    assert machine.fire(event) is LEGAL[(start, event)]
    assert machine.state is LEGAL[(start, event)]


@pytest.mark.parametrize(("start", "event"), ILLEGAL, ids=lambda v: v.value)
def test_illegal_transition_raises_and_changes_nothing(start: State, event: Event) -> None:
    machine = machine_in(start)
    assert not machine.allows(event)
    with pytest.raises(InvalidTransition) as caught:
        machine.fire(event)
    assert (caught.value.state, caught.value.event) == (start, event)
    assert str(caught.value) == f"{event.value} is not allowed while the environment is {start.value}"
    assert machine.state is start


@pytest.mark.parametrize("start", LIVE_STATES, ids=lambda s: s.value)
def test_terminate_from_every_live_state(start: State) -> None:
    machine = machine_in(start)
    assert machine.fire(Event.TERMINATE) is State.TERMINATED


@pytest.mark.parametrize("event", list(Event), ids=lambda e: e.value)
def test_terminated_is_final(event: Event) -> None:
    machine = machine_in(State.TERMINATED)
    assert not machine.allows(event)
    with pytest.raises(InvalidTransition):
        machine.fire(event)
    assert machine.state is State.TERMINATED


def test_a_whole_life() -> None:
    machine = StateMachine()
    steps = [
        (Event.NEXT, State.IDLE),
        (Event.NEXT, State.IDLE),  # the runtime re-polls on a new connection
        (Event.DISPATCH, State.INVOKING),
        (Event.RESPONSE, State.RESPONDED),
        (Event.NEXT, State.IDLE),
        (Event.DISPATCH, State.INVOKING),
        (Event.ERROR, State.RESPONDED),
        (Event.NEXT, State.IDLE),
        (Event.TERMINATE, State.TERMINATED),
    ]
    for event, expected in steps:
        assert machine.fire(event) is expected


def test_init_failure_life() -> None:
    machine = StateMachine()
    assert machine.fire(Event.INIT_ERROR) is State.INIT_FAILED
    for event in (Event.NEXT, Event.INIT_ERROR, Event.RESPONSE):
        assert not machine.allows(event)
    assert machine.fire(Event.TERMINATE) is State.TERMINATED


@pytest.mark.parametrize(
    ("start", "event"),
    [
        (State.INVOKING, Event.NEXT),  # /next before answering the event in flight
        (State.RESPONDED, Event.RESPONSE),  # a second answer to one event
        (State.IDLE, Event.INIT_ERROR),  # /init/error after init finished
        (State.INVOKING, Event.INIT_ERROR),
        (State.INITIALIZING, Event.DISPATCH),  # an event before the runtime asked for one
    ],
    ids=lambda v: v.value,
)
def test_runtime_misuse_is_refused(start: State, event: Event) -> None:
    with pytest.raises(InvalidTransition):
        machine_in(start).fire(event)
