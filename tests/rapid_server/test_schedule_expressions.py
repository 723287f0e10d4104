"""EventBridge schedule expressions (rapid_server/event_sources/expressions.py): the next firings of the
cron dialect as the library computes them, checked against answers worked out by hand from EventBridge's
rules, and every kind of bad expression refused with its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.rapid_server.event_sources.expressions import (
    ExpressionError,
    next_firings,
    parse,
)

START = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # a Thursday


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "first"),
    [
        ("cron(0 12 * * ? *)", at(2026, 1, 1, 12, 0)),
        ("cron(0/15 * * * ? *)", at(2026, 1, 1, 0, 15)),
        ("cron(0 8 ? * MON-FRI *)", at(2026, 1, 1, 8, 0)),
        ("cron(15 10 ? * 1 *)", at(2026, 1, 4, 10, 15)),  # day-of-week 1 is Sunday, not Monday
        ("cron(0 10 ? * 6L *)", at(2026, 1, 30, 10, 0)),  # the last Friday of January 2026
        ("cron(0 10 ? * 3#2 *)", at(2026, 1, 13, 10, 0)),  # the second Tuesday
        ("cron(0 9 ? JAN,FEB SUN#1 2026-2027)", at(2026, 1, 4, 9, 0)),
        ("cron(0 10 L * ? *)", at(2026, 1, 31, 10, 0)),  # the last day of the month
        ("cron(0 10 3W * ? *)", at(2026, 1, 2, 10, 0)),  # the 3rd is a Saturday: Friday the 2nd
        ("cron(0 10 1W * ? *)", at(2026, 1, 1, 10, 0)),
        ("cron(0 0 1 1 ? 2030)", at(2030, 1, 1, 0, 0)),
        ("cron(0 0 29 2 ? *)", at(2028, 2, 29, 0, 0)),  # the next leap year
    ],
)
def test_next_cron_firing(expression: str, first: datetime) -> None:
    assert parse(expression).next_after(START, START) == first


def test_w_does_not_leave_the_month() -> None:
    # 1 August 2026 is a Saturday: the nearest weekday in August is Monday the 3rd, not Friday 31 July.
    assert parse("cron(0 0 1W * ? *)").next_after(at(2026, 7, 15), START) == at(2026, 8, 3)
    # 31 May 2026 is a Sunday: Friday the 29th.
    assert parse("cron(0 0 31W * ? *)").next_after(at(2026, 5, 15), START) == at(2026, 5, 29)


def test_five_firings_in_order_and_none_after_the_last_year() -> None:
    firings = list(next_firings(parse("cron(0 0 31 * ? *)"), at(2026, 1, 31, 1), START, 3))
    assert firings == [at(2026, 3, 31), at(2026, 5, 31), at(2026, 7, 31)]  # months with a 31st only
    assert list(next_firings(parse("cron(0 0 1 1 ? 2025)"), START, START, 5)) == []
    assert parse("cron(0 0 31 2 ? *)").next_after(START, START) is None  # never: 31 February


def test_a_firing_is_strictly_after() -> None:
    assert parse("cron(0 12 * * ? *)").next_after(at(2026, 1, 1, 12, 0), START) == at(2026, 1, 2, 12, 0)


def test_rate_counts_from_the_start() -> None:
    rate = parse("rate(5 minutes)")
    start = at(2026, 1, 1, 0, 0, 30)
    assert rate.next_after(start, start) == at(2026, 1, 1, 0, 5, 30)
    assert rate.next_after(at(2026, 1, 1, 1, 2), start) == at(2026, 1, 1, 1, 5, 30)
    assert parse("rate(1 day)").next_after(start, start) == start + timedelta(days=1)
    assert parse("rate(2 hours)").next_after(start, start) == start + timedelta(hours=2)


def test_cron_in_a_time_zone_follows_its_daylight_saving() -> None:
    nine_in_paris = parse("cron(0 9 * * ? *)", "Europe/Paris")
    assert nine_in_paris.next_after(at(2026, 7, 1), START) == at(2026, 7, 1, 7, 0)  # CEST, UTC+2
    assert nine_in_paris.next_after(at(2026, 1, 10), START) == at(2026, 1, 10, 8, 0)  # CET, UTC+1


def test_at_fires_once() -> None:
    once = parse("at(2027-01-31T12:30:00)", one_time=True)
    assert once.next_after(START, START) == at(2027, 1, 31, 12, 30)
    assert once.next_after(at(2027, 1, 31, 12, 30), START) is None
    in_tokyo = parse("at(2027-01-31T12:30:00)", "Asia/Tokyo", one_time=True)
    assert in_tokyo.next_after(START, START) == at(2027, 1, 31, 3, 30)


@pytest.mark.parametrize(
    ("expression", "field", "problem"),
    [
        ("rate(1 minutes)", "unit", "must be singular"),
        ("rate(5 minute)", "unit", "must be plural"),
        ("rate(0 minutes)", "value", "1 or more"),
        ("rate(five minutes)", "value", "whole number"),
        ("rate(2 weeks)", "unit", "minute(s), hour(s) or day(s)"),
        ("rate(5minutes)", "rate", "rate(VALUE UNIT)"),
        ("cron(0 12 * * * *)", "day-of-month/day-of-week", "exactly one of the two must be '?'"),
        ("cron(0 12 ? * ? *)", "day-of-month/day-of-week", "exactly one of the two must be '?'"),
        ("cron(0 12 * * ?)", "fields", "5 fields; cron needs 6"),
        ("cron(60 0 * * ? *)", "minutes", "'60' is not valid"),
        ("cron(0 24 * * ? *)", "hours", "'24' is not valid"),
        ("cron(0 0 32 * ? *)", "day-of-month", "'32' is not valid"),
        ("cron(0 0 * 13 ? *)", "month", "'13' is not valid"),
        ("cron(0 0 ? * 8 *)", "day-of-week", "'8' is not valid"),
        ("cron(0 0 ? * 3#6 *)", "day-of-week", "'3#6' is not valid"),
        ("cron(0 0 ? * 2-6/2 *)", "day-of-week", "not valid"),  # no step in day-of-week
        ("cron(0 0 1 1 ? 1969)", "year", "'1969' is not valid"),
        ("every day", "expression", "must be rate(...) or cron(...)"),
        ("at(2027-01-31T12:30:00)", "expression", "must be rate(...) or cron(...)"),  # rules take no at
    ],
)
def test_a_bad_expression_names_its_field(expression: str, field: str, problem: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(expression)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{expression!r}: {field}: ")


def test_bad_time_zone_and_at() -> None:
    with pytest.raises(ExpressionError, match="ScheduleExpressionTimezone: 'Mars/Olympus'"):
        parse("cron(0 9 * * ? *)", "Mars/Olympus")
    with pytest.raises(ExpressionError, match="at: must be at"):
        parse("at(2027-01-31 12:30)", one_time=True)


_FIELD = st.one_of(
    st.sampled_from(["*", "?", "L", "W", "#", "/", "-", ",", "0", "1", "7", "12", "31", "59", "5L", "3#2"]),
    st.text(alphabet="0123456789*?LW#/-,MONJA", min_size=1, max_size=6),
)


@given(st.lists(_FIELD, min_size=5, max_size=7))
def test_any_cron_either_parses_or_is_refused_with_a_field(fields: list[str]) -> None:
    expression = f"cron({' '.join(fields)})"
    try:
        parsed = parse(expression)
    except ExpressionError as exc:
        assert exc.field and exc.problem
        return
    found = parsed.next_after(START, START)
    assert found is None or found > START


@given(st.text(max_size=40))
def test_any_text_either_parses_or_is_refused(text: str) -> None:
    try:
        parse(text)
    except ExpressionError as exc:
        assert exc.field
