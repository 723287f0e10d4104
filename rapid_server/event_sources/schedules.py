"""Schedules: EventBridge rules (`Events: Type: Schedule`, a rapidboot.toml `schedule`) and EventBridge
Scheduler schedules (`Type: ScheduleV2`) that invoke a function on a rate, a cron or once (`at`).

Each firing is an `Event` invoke, queued in the durable async queue exactly as an Invoke API `Event` call
is (Dispatcher.accept): the same retries, destinations and at-least-once delivery. The payload is what the
service sends:
- an EventBridge rule: the scheduled event (`detail-type: Scheduled Event`, `source: aws.events`, the
  rule's ARN in `resources`, `detail: {}`), or the rule target's constant `Input` instead;
- an EventBridge Scheduler schedule: its target's `Input`, or the default notification Scheduler sends
  without one (`source: aws.scheduler`, the schedule's ARN, `detail` the string "{}").
The event's `time` is the firing's scheduled minute, not the moment the timer ran.

Timers are the event loop's (`call_at`), one per schedule, no thread. A timer never sleeps more than
`MAX_TIMER_S`: it wakes, compares the wall clock with the next firing and sleeps again, so a laptop's
suspend or a clock change delays a firing by at most that much. Firings missed while the server was down
(or suspended past them) are not replayed, as EventBridge does not replay them: the next firing is the
first one after now. A rate counts from when the server started (a rule's from when it was created).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from .. import ids
from ..async_invokes.async_queue import NewEvent
from .expressions import ScheduleExpression, next_firings

if TYPE_CHECKING:
    from ..config import FunctionConfig

RULE = "rule"  # an EventBridge rule: Type Schedule, or a rapidboot.toml `schedule`
SCHEDULER = "scheduler"  # an EventBridge Scheduler schedule: Type ScheduleV2
MAX_TIMER_S = 60.0
LISTED_FIRINGS = 5  # `rapidboot schedules`


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str  # the rule's (or schedule's) name: its resource's logical id, or FUNCTION-schedule
    function: str
    expression: ScheduleExpression
    kind: str = RULE
    input: bytes | None = None  # a constant payload, sent instead of the scheduled event
    enabled: bool = True
    timezone: str = "UTC"  # Scheduler's ScheduleExpressionTimezone (cron and at)

    @property
    def key(self) -> tuple[str, str]:
        """A rule with two targets is two schedules of one name."""
        return (self.name, self.function)

    def same_as(self, other: Schedule) -> bool:
        """The same firings and payload (the parsed expression is compared by its text)."""
        return (self.kind, self.expression.text, self.input, self.enabled, self.timezone) == (
            other.kind,
            other.expression.text,
            other.input,
            other.enabled,
            other.timezone,
        )

    def arn(self, region: str, account_id: str) -> str:
        if self.kind == SCHEDULER:
            return f"arn:aws:scheduler:{region}:{account_id}:schedule/default/{self.name}"
        return f"arn:aws:events:{region}:{account_id}:rule/{self.name}"


def toml_schedules(functions: Mapping[str, FunctionConfig]) -> list[Schedule]:
    """The rules of a rapidboot.toml's `schedule` keys (validated when the file was read)."""
    from .expressions import parse

    return [
        Schedule(f"{name}-schedule", name, parse(function.schedule))
        for name, function in functions.items()
        if function.schedule is not None
    ]


def scheduled_event(schedule: Schedule, fired_at: datetime, region: str, account_id: str) -> bytes:
    """The payload of one firing (see the module's docstring)."""
    if schedule.input is not None:
        return schedule.input
    scheduler = schedule.kind == SCHEDULER
    return orjson.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler" if scheduler else "aws.events",
            "account": account_id,
            "time": fired_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "resources": [schedule.arn(region, account_id)],
            "detail": "{}" if scheduler else {},
        }
    )


def upcoming(schedule: Schedule, now: datetime, count: int = LISTED_FIRINGS) -> list[datetime]:
    """The next `count` firings after `now` of a schedule starting now."""
    return list(next_firings(schedule.expression, now, now, count))


class Scheduler:
    """The timers of a server's schedules. `accept` queues an Event invoke (Dispatcher.accept); `exists`
    says whether a function is served now (a schedule of a removed function fires nothing)."""

    def __init__(
        self,
        accept: Callable[[NewEvent], None],
        exists: Callable[[str], bool],
        region: str,
        account_id: str,
        notice: Callable[[str], None],
        clock: Callable[[], float] = time.time,
    ):
        self._accept = accept
        self._exists = exists
        self._region = region
        self._account_id = account_id
        self._notice = notice
        self._clock = clock
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._schedules: dict[tuple[str, str], Schedule] = {}

    @property
    def schedules(self) -> list[Schedule]:
        return list(self._schedules.values())

    def start(self, schedules: Iterable[Schedule]) -> list[Schedule]:
        """Arm every enabled schedule; on a reload's new definition, a schedule that is unchanged keeps its
        timer (and a rate its start), the others are replaced. Returns the new and changed ones."""
        wanted = {schedule.key: schedule for schedule in schedules}
        for key in list(self._timers):
            if key not in wanted or not wanted[key].same_as(self._schedules[key]):
                self._timers.pop(key).cancel()
        changed = [
            schedule
            for key, schedule in wanted.items()
            if key not in self._schedules or not schedule.same_as(self._schedules[key])
        ]
        changed_keys = {schedule.key for schedule in changed}
        self._schedules = {
            key: schedule if key in changed_keys else self._schedules[key] for key, schedule in wanted.items()
        }
        now = self._now()
        for schedule in changed:
            if schedule.enabled:
                self._arm(schedule, now, now)
        return changed

    def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _arm(self, schedule: Schedule, after: datetime, start: datetime) -> None:
        due = schedule.expression.next_after(after, start)
        if due is None:
            self._timers.pop(schedule.key, None)
            self._notice(f"rapidboot: schedule {schedule.name}: {schedule.expression.text} fires no more")
            return
        self._wait(schedule, due, start)

    def _wait(self, schedule: Schedule, due: datetime, start: datetime) -> None:
        delay = min(MAX_TIMER_S, max(0.0, due.timestamp() - self._clock()))
        loop = asyncio.get_running_loop()
        self._timers[schedule.key] = loop.call_later(delay, self._wake, schedule, due, start)

    def _wake(self, schedule: Schedule, due: datetime, start: datetime) -> None:
        if self._clock() < due.timestamp():
            self._wait(schedule, due, start)  # a long wait, in MAX_TIMER_S steps
            return
        try:
            self._fire(schedule, due)
        finally:
            # The next firing after now: those missed (suspend, a slow turn) are not replayed.
            self._arm(schedule, max(due, self._now()), start)

    def _fire(self, schedule: Schedule, due: datetime) -> None:
        if not self._exists(schedule.function):
            self._notice(
                f"rapidboot: schedule {schedule.name}: no function {schedule.function!r} is served; "
                "nothing invoked"
            )
            return
        payload = scheduled_event(schedule, due, self._region, self._account_id)
        request_id = ids.request_id()
        self._accept(NewEvent(request_id, schedule.function, payload, ids.trace_id(due.timestamp())))
        self._notice(
            f"rapidboot: schedule {schedule.name}: invoked {schedule.function} (Event, {request_id}) "
            f"for {due.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )


def describe(schedules: Iterable[Schedule], now: datetime, count: int = LISTED_FIRINGS) -> str:
    """`rapidboot schedules`: each schedule and its next firings, in UTC."""
    lines: list[str] = []
    for schedule in schedules:
        zone = f" ({schedule.timezone})" if schedule.timezone != "UTC" else ""
        state = "" if schedule.enabled else " DISABLED"
        lines.append(f"{schedule.name} -> {schedule.function}: {schedule.expression.text}{zone}{state}")
        firings = upcoming(schedule, now, count) if schedule.enabled else []
        lines.extend(f"  {firing.strftime('%Y-%m-%dT%H:%M:%SZ')}" for firing in firings)
        if schedule.enabled and len(firings) < count:
            lines.append("  (no more firings)")
    return "\n".join(lines) if lines else "no schedules"
