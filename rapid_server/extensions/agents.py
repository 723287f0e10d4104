"""The Extensions API `2020-01-01` state of one environment (reference section 3).

An agent is one registered extension: external (an executable of `<opt>/extensions/`, its name the file's
name) or internal (registered by the runtime process, any other name). Each agent is *waited for* from the
moment it is given an event (its registration counts as one) until it asks for the next with
`event/next`: Init ends when the runtime and every agent have asked; an invoke ends when the runtime has
answered and every INVOKE subscriber has asked again; shutdown ends when every SHUTDOWN subscriber has
asked again (or exited).
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections import deque
from collections.abc import Callable, Iterator

import orjson

from .. import errors, rendering
from ..http import Connection, Response

MAX_EXTENSIONS = 10
EVENT_TYPES = ("INVOKE", "SHUTDOWN")


class AgentState(enum.Enum):
    REGISTERED = "registered"  # registered, has not asked for an event yet
    READY = "ready"  # parked on event/next (or about to be)
    BUSY = "busy"  # handed an event, has not asked for the next yet
    ERRORED = "errored"  # posted init/error or exit/error: only its exit is expected now
    EXITED = "exited"


class Agent:
    __slots__ = ("events", "external", "identifier", "name", "parked", "queue", "state")

    def __init__(self, name: str, events: tuple[str, ...], external: bool):
        self.name = name
        self.identifier = str(uuid.uuid4())
        self.events = events
        self.external = external
        self.state = AgentState.REGISTERED
        self.parked: Connection | None = None
        self.queue: deque[bytes] = deque()  # events not yet taken by an event/next


class Agents:
    def __init__(self, external_names: frozenset[str]):
        self.external_names = external_names  # the executables launched (their file names)
        self.by_id: dict[str, Agent] = {}
        self.registration_open = True
        self._waiters: list[asyncio.Future[None]] = []  # `changed()` callers
        self.on_change: Callable[[], None] | None = None

    def __iter__(self) -> Iterator[Agent]:
        return iter(self.by_id.values())

    @property
    def agents(self) -> list[Agent]:
        return list(self.by_id.values())

    def by_name(self, name: str) -> Agent | None:
        return next((a for a in self.by_id.values() if a.name == name), None)

    # Requests ---------------------------------------------------------------------------------------------

    def register(self, name: str | None, body: bytes) -> Agent | Response:
        if not name:
            return rendering.runtime_error(
                403, errors.EXTENSION_INVALID_NAME, "Lambda-Extension-Name header is required"
            )
        if not self.registration_open:
            return rendering.runtime_error(
                403, errors.EXTENSION_REGISTRATION_CLOSED, "Registration is closed: Init has ended"
            )
        if self.by_name(name) is not None:
            return rendering.runtime_error(
                403, errors.EXTENSION_INVALID_NAME, f"An extension named {name!r} is already registered"
            )
        if len(self.by_id) >= MAX_EXTENSIONS:
            return rendering.runtime_error(
                403, errors.EXTENSION_TOO_MANY, f"At most {MAX_EXTENSIONS} extensions can register"
            )
        try:
            doc = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            doc = None
        events = doc.get("events", []) if isinstance(doc, dict) else None
        if not isinstance(events, list) or any(e not in EVENT_TYPES for e in events):
            return rendering.runtime_error(
                403,
                errors.EXTENSION_INVALID_EVENT_TYPE,
                f"events must be a list of {', '.join(EVENT_TYPES)}; got {events!r}",
            )
        external = name in self.external_names
        if not external and "SHUTDOWN" in events:
            return rendering.runtime_error(
                403,
                errors.EXTENSION_INVALID_EVENT_TYPE,
                f"{name!r} is an internal extension (no executable of that name in /opt/extensions): "
                "internal extensions cannot register for SHUTDOWN",
            )
        agent = Agent(name, tuple(dict.fromkeys(events)), external)
        self.by_id[agent.identifier] = agent
        self._changed()
        return agent

    def find(self, identifier: str | None) -> Agent | Response:
        if not identifier:
            return rendering.runtime_error(
                403, errors.EXTENSION_MISSING_ID, "Lambda-Extension-Identifier header is required"
            )
        agent = self.by_id.get(identifier)
        if agent is None:
            return rendering.runtime_error(
                403, errors.EXTENSION_INVALID_ID, f"Unknown extension identifier {identifier!r}"
            )
        return agent

    def next(self, agent: Agent, connection: Connection) -> Response | None:
        if agent.state in (AgentState.ERRORED, AgentState.EXITED):
            return rendering.runtime_error(
                403, errors.EXTENSION_INVALID_STATE, f"Extension {agent.name!r} has reported an error"
            )
        agent.state = AgentState.READY
        agent.parked = connection
        self._hand_over(agent)
        self._changed()
        return None

    def errored(self, agent: Agent) -> None:
        agent.state = AgentState.ERRORED
        self._changed()

    def exited(self, agent: Agent) -> None:
        agent.state = AgentState.EXITED
        agent.parked = None
        self._changed()

    # Platform side ----------------------------------------------------------------------------------------

    def send(self, event_type: str, body: bytes) -> int:
        """Give every agent subscribed to `event_type` this event; how many were given it."""
        given = 0
        for agent in self.by_id.values():
            if event_type in agent.events and agent.state not in (AgentState.ERRORED, AgentState.EXITED):
                # One still at work on the last event (a SHUTDOWN during an invoke's tail) has it next.
                agent.queue.append(body)
                agent.state = AgentState.BUSY
                self._hand_over(agent)
                given += 1
        if given:
            self._changed()
        return given

    @property
    def waited_for(self) -> list[Agent]:
        """Agents the environment waits for: handed an event (or registered) and not asked again."""
        return [a for a in self.by_id.values() if a.state in (AgentState.REGISTERED, AgentState.BUSY)]

    async def changed(self) -> None:
        """Until the next change of any agent (a registration, an event/next, an error, an exit)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    async def settled_or_exited(self) -> None:
        """Until every SHUTDOWN subscriber has asked again or exited (after a SHUTDOWN)."""
        while any(a.state is AgentState.BUSY for a in self.by_id.values()):
            await self.changed()

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _hand_over(self, agent: Agent) -> None:
        connection = agent.parked
        if connection is None or not agent.queue:
            return
        body = agent.queue.popleft()
        agent.parked = None
        if agent.state is AgentState.READY:
            agent.state = AgentState.BUSY
        connection.send(
            Response(
                200,
                body,
                [
                    ("Content-Type", "application/json"),
                    ("Lambda-Extension-Event-Identifier", str(uuid.uuid4())),
                ],
            )
        )

    def _changed(self) -> None:
        self.wake()
        if self.on_change is not None:
            self.on_change()
