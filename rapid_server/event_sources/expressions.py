"""EventBridge's schedule expressions: `rate(...)`, six-field `cron(...)`, and Scheduler's one-time `at(...)`.

What EventBridge accepts (EventBridge user guide, "Schedule expressions for rules"; Scheduler user guide,
"Schedule types"):

- `rate(VALUE UNIT)`: a positive whole VALUE; UNIT `minute`, `hour` or `day` when VALUE is 1, and `minutes`,
  `hours` or `days` otherwise (`rate(1 minutes)` and `rate(5 minute)` are refused, as EventBridge refuses
  them). A rate's firings are counted from when the schedule starts: here, when the server starts.
- `cron(MINUTES HOURS DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR)`: one of day-of-month and day-of-week must be
  `?`; `L` (last), `W` (nearest weekday) in day-of-month; `L` and `#` (`3#2`, the second Tuesday) in
  day-of-week, which counts SUN=1 to SAT=7; years 1970-2199. Evaluated in UTC, or in Scheduler's
  `ScheduleExpressionTimezone`.
- `at(yyyy-mm-ddThh:mm:ss)`: Scheduler's one-time schedule (ScheduleV2 only).

The cron dialect is parsed, validated and iterated by aws-croniter, not by us. Checked against these rules
(2026-12; the list is in the README, "Schedules"), it was the only library that got all of them right:
croniter counts day-of-week from SUN=0, has no `W` and no year field, and takes `* *` for both days;
cronsim and cron-converter take five-field Unix cron only; pyawscron iterates the dialect but validates
nothing (minute 60, year 1969, both days set are all accepted) and fails on 29 February; the
aws-cron-expression-validator validates but cannot compute a firing. What is ours here: the field named
in a message (the library's exception classes name it), a time zone (the library computes in UTC: the wall
clock of the zone is handed to it as if UTC, and its answer read back in the zone), and `rate`/`at`, which
are a regular expression each.

aws-croniter and python-dateutil cost ~50 ms of import (`python -X importtime`): this module imports them
when the first cron expression is parsed, so a server with no schedule never loads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator
    from zoneinfo import ZoneInfo

_RATE = re.compile(r"^rate\((?P<value>[^ )]*) (?P<unit>[^ )]*)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_CRON = re.compile(r"^cron\((?P<fields>.*)\)$")
_AT = re.compile(r"^at\((?P<when>.*)\)$")
_AT_FORMAT = "%Y-%m-%dT%H:%M:%S"
CRON_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
# aws-croniter's exception class, for the field its message is about.
_LIBRARY_FIELDS = {
    "AwsCroniterExpressionMinuteError": "minutes",
    "AwsCroniterExpressionHourError": "hours",
    "AwsCroniterExpressionDayOfMonthError": "day-of-month",
    "AwsCroniterExpressionMonthError": "month",
    "AwsCroniterExpressionDayOfWeekError": "day-of-week",
    "AwsCroniterExpressionYearError": "year",
}


class ExpressionError(ValueError):
    """A schedule expression EventBridge would refuse: the expression, the field, and what is wrong."""

    def __init__(self, expression: str, field: str, problem: str):
        super().__init__(f"{expression!r}: {field}: {problem}")
        self.expression = expression
        self.field = field
        self.problem = problem


class ScheduleExpression(Protocol):
    @property
    def text(self) -> str:
        """The expression as written: `rate(5 minutes)`."""
        ...

    def next_after(self, after: datetime, start: datetime) -> datetime | None:
        """The first firing strictly after `after` (aware, UTC), for a schedule started at `start`; None
        when there is none (a cron's last year is past, an `at` has fired)."""
        ...


@dataclass(frozen=True, slots=True)
class RateExpression:
    text: str
    interval: timedelta

    def next_after(self, after: datetime, start: datetime) -> datetime | None:
        if after < start:
            return start + self.interval
        periods = (after - start) // self.interval + 1
        return start + periods * self.interval


@dataclass(frozen=True, slots=True)
class CronExpression:
    text: str
    schedule: Any  # aws_croniter.AwsCroniter (untyped)
    zone: ZoneInfo | None  # None: UTC

    def next_after(self, after: datetime, start: datetime) -> datetime | None:
        if self.zone is None:
            found: datetime | None = self.schedule.get_next(after.astimezone(UTC))[0]
            return found
        # The library computes in UTC: give it the zone's wall clock as if it were UTC, read its answer
        # back as the zone's wall clock.
        wall = after.astimezone(self.zone).replace(tzinfo=UTC)
        found = self.schedule.get_next(wall)[0]
        if found is None:
            return None
        return found.replace(tzinfo=self.zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class AtExpression:
    text: str
    when: datetime  # aware, UTC

    def next_after(self, after: datetime, start: datetime) -> datetime | None:
        return self.when if self.when > after else None


def parse(text: str, timezone: str | None = None, one_time: bool = False) -> ScheduleExpression:
    """An EventBridge schedule expression, or ExpressionError. `timezone` (an IANA name) applies to cron and
    at (Scheduler's ScheduleExpressionTimezone); `one_time` allows `at(...)` (Scheduler only)."""
    if not isinstance(text, str):
        raise ExpressionError(repr(text), "expression", "must be a string: rate(...) or cron(...)")
    zone = _zone(text, timezone)
    if text.startswith("rate("):
        return _rate(text)
    if text.startswith("cron("):
        return _cron(text, zone)
    if text.startswith("at(") and one_time:
        return _at(text, zone)
    kinds = "rate(...), cron(...) or at(...)" if one_time else "rate(...) or cron(...)"
    raise ExpressionError(text, "expression", f"must be {kinds}")


def next_firings(
    expression: ScheduleExpression, after: datetime, start: datetime, count: int
) -> Iterator[datetime]:
    """Up to `count` firings after `after`, in order."""
    for _ in range(count):
        found = expression.next_after(after, start)
        if found is None:
            return
        yield found
        after = found


def _zone(text: str, timezone: str | None) -> ZoneInfo | None:
    if timezone is None or timezone == "UTC":
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # ~2 ms, for a ScheduleV2 time zone only

    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ExpressionError(
            text, "ScheduleExpressionTimezone", f"{timezone!r} is not a time zone name (e.g. Europe/Paris)"
        ) from None


def _rate(text: str) -> RateExpression:
    match = _RATE.match(text)
    if match is None:
        raise ExpressionError(text, "rate", "must be rate(VALUE UNIT), e.g. rate(5 minutes)")
    value, unit = match["value"], match["unit"]
    if not value.isdigit() or int(value) < 1:
        raise ExpressionError(text, "value", f"{value!r} must be a whole number, 1 or more")
    singular = unit.removesuffix("s")
    if singular not in _UNITS:
        raise ExpressionError(text, "unit", f"{unit!r} must be minute(s), hour(s) or day(s)")
    if int(value) == 1 and unit != singular:
        raise ExpressionError(text, "unit", f"{unit!r} must be singular for a value of 1: {singular}")
    if int(value) > 1 and unit == singular:
        raise ExpressionError(text, "unit", f"{unit!r} must be plural for a value over 1: {singular}s")
    return RateExpression(text, timedelta(seconds=int(value) * _UNITS[singular]))


def _cron(text: str, zone: ZoneInfo | None) -> CronExpression:
    match = _CRON.match(text)
    fields = match["fields"].split(" ") if match is not None else []
    if len(fields) != len(CRON_FIELDS):
        raise ExpressionError(
            text,
            "fields",
            f"{len(fields)} fields; cron needs 6, space-separated: {' '.join(CRON_FIELDS)}",
        )
    # Lazy: ~50 ms of import, paid only by a server (or command) that has a cron schedule.
    from aws_croniter import AwsCroniter

    try:
        schedule = AwsCroniter(" ".join(fields))
    except ValueError as exc:
        field = _LIBRARY_FIELDS.get(type(exc).__name__)
        if field is None and "question mark" in str(exc):
            field = "day-of-month/day-of-week"
            problem = (
                f"{fields[2]!r} and {fields[4]!r}: exactly one of the two must be '?' "
                "(EventBridge cannot take both a day of the month and a day of the week)"
            )
        elif field is None:
            # Accepted by the library's validation, failed in its parser: only L/W/# forms get there.
            field = "day-of-month/day-of-week"
            problem = f"{fields[2]!r} / {fields[4]!r}: not a form EventBridge takes ({exc})"
        else:
            problem = f"{fields[CRON_FIELDS.index(field)]!r} is not valid ({_allowed(field)})"
        raise ExpressionError(text, field, problem) from None
    return CronExpression(text, schedule, zone)


def _allowed(field: str) -> str:
    return {
        "minutes": "0-59 and , - * /",
        "hours": "0-23 and , - * /",
        "day-of-month": "1-31 and , - * ? / L W",
        "month": "1-12 or JAN-DEC and , - * /",
        "day-of-week": "1-7 or SUN-SAT and , - * ? L #, # up to 5",
        "year": "1970-2199 and , - * /",
    }[field]


def _at(text: str, zone: ZoneInfo | None) -> AtExpression:
    match = _AT.match(text)
    try:
        when = datetime.strptime(match["when"] if match else "", _AT_FORMAT)
    except ValueError:
        raise ExpressionError(
            text, "at", "must be at(yyyy-mm-ddThh:mm:ss), e.g. at(2027-01-31T12:00:00)"
        ) from None
    return AtExpression(text, when.replace(tzinfo=zone or UTC).astimezone(UTC))
