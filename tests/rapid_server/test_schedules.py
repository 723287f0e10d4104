"""Schedules (rapid_server/event_sources/schedules.py, rapid_server/definitions/schedules.py): read from a
template and a rapidboot.toml, refused with file, line and field, fired on the event loop with the
service's event shape, listed by `rapidboot schedules`."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from rapidboot.rapid_server.async_invokes.async_queue import NewEvent
from rapidboot.rapid_server.cli import main
from rapidboot.rapid_server.config import ConfigError, load_toml
from rapidboot.rapid_server.definitions.template import load_template
from rapidboot.rapid_server.event_sources.expressions import parse
from rapidboot.rapid_server.event_sources.schedules import (
    RULE,
    SCHEDULER,
    Schedule,
    Scheduler,
    describe,
    scheduled_event,
    toml_schedules,
)

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_the_scheduled_event_is_eventbridges() -> None:
    rule = Schedule("nightly", "worker", parse("cron(0 12 * * ? *)"))
    event = orjson.loads(scheduled_event(rule, NOON, "eu-west-1", "123456789012"))
    model = EventBridgeModel.model_validate(event)
    assert model.detail_type == "Scheduled Event"
    assert model.source == "aws.events"
    assert model.resources == ["arn:aws:events:eu-west-1:123456789012:rule/nightly"]
    assert model.detail == {}
    assert event["time"] == "2026-03-02T12:00:00Z"
    assert event["version"] == "0" and event["account"] == "123456789012" and event["region"] == "eu-west-1"


def test_a_scheduler_schedule_sends_its_default_notification_or_its_input() -> None:
    schedule = Schedule("tick", "worker", parse("rate(1 hour)"), SCHEDULER)
    event = orjson.loads(scheduled_event(schedule, NOON, "us-east-1", "123456789012"))
    assert event["source"] == "aws.scheduler"
    assert event["resources"] == ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/tick"]
    assert event["detail"] == "{}"  # a JSON text, as Scheduler sends it
    with_input = Schedule("tick", "worker", parse("rate(1 hour)"), SCHEDULER, b'{"job": 7}')
    assert scheduled_event(with_input, NOON, "us-east-1", "123456789012") == b'{"job": 7}'


async def _first_firing(schedules: list[Schedule], offset: float) -> tuple[list[NewEvent], list[str]]:
    accepted: list[NewEvent] = []
    notices: list[str] = []
    fired = asyncio.Event()

    def accept(event: NewEvent) -> None:
        accepted.append(event)
        fired.set()

    scheduler = Scheduler(accept, {"worker"}.__contains__, "us-east-1", "123456789012", notices.append)
    scheduler._clock = lambda: time.time() + offset
    scheduler.start(schedules)
    try:
        await asyncio.wait_for(fired.wait(), 10)
    finally:
        scheduler.stop()
    return accepted, notices


def test_a_cron_fires_on_the_loop_at_its_minute() -> None:
    # The scheduler's clock is moved so that its next minute boundary is a fraction of a second away: a
    # real cron firing, through the library, on a real event loop, without waiting for a real minute.
    now = time.time()
    offset = (60 - now % 60) - 0.3
    boundary = datetime.fromtimestamp(now + offset + 0.3, UTC).replace(second=0, microsecond=0)
    schedules = [
        Schedule("every-minute", "worker", parse("cron(* * * * ? *)")),
        Schedule("off", "worker", parse("cron(* * * * ? *)"), enabled=False),
    ]
    accepted, notices = asyncio.run(_first_firing(schedules, offset))
    (event,) = accepted
    assert event.function == "worker"
    payload = orjson.loads(event.payload)
    assert payload["time"] == boundary.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert payload["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/every-minute"]
    assert event.trace_id.startswith("Root=1-") and event.request_id
    assert notices == [
        f"rapidboot: schedule every-minute: invoked worker (Event, {event.request_id}) for {payload['time']}"
    ]


def test_a_schedule_of_a_function_not_served_invokes_nothing() -> None:
    now = time.time()
    offset = (60 - now % 60) - 0.2
    schedules = [
        Schedule("orphan", "gone", parse("cron(* * * * ? *)")),
        Schedule("kept", "worker", parse("cron(* * * * ? *)")),
    ]
    accepted, notices = asyncio.run(_first_firing(schedules, offset))
    assert [event.function for event in accepted] == ["worker"]
    assert any("schedule orphan: no function 'gone' is served; nothing invoked" in line for line in notices)


SAM = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.handler
      Runtime: python3.12
      Events:
        Every5:
          Type: Schedule
          Properties:
            Schedule: {rule}
            Input: '{{"a": 1}}'
            Enabled: false
        Noon:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 12 * * ? *)
            ScheduleExpressionTimezone: Europe/Paris
            Name: noon
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    return tmp_path


def test_a_sam_template_gives_its_schedules(project: Path) -> None:
    (project / "template.yaml").write_text(SAM.format(rule="rate(5 minutes)"))
    definition = load_template(project / "template.yaml")
    every5, noon = definition.schedules
    assert (every5.name, every5.function, every5.kind, every5.expression.text) == (
        "WorkerEvery5",
        "Worker",
        RULE,
        "rate(5 minutes)",
    )
    assert every5.input == b'{"a": 1}' and not every5.enabled
    assert (noon.name, noon.kind, noon.timezone, noon.input, noon.enabled) == (
        "noon",
        SCHEDULER,
        "Europe/Paris",
        None,
        True,
    )


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ("rate(1 minutes)", "unit"),
        ("cron(0 12 * * * *)", "day-of-month/day-of-week"),
        ("cron(0 25 * * ? *)", "hours"),
        ("cron(0 12 ? * 9 *)", "day-of-week"),
    ],
)
def test_a_bad_template_expression_names_file_line_event_and_field(
    project: Path, rule: str, field: str
) -> None:
    template = project / "template.yaml"
    template.write_text(SAM.format(rule=rule))
    with pytest.raises(ConfigError) as caught:
        load_template(template)
    line = template.read_text().splitlines().index(f"            Schedule: {rule}") + 1
    assert str(caught.value).startswith(
        f"{template}:{line}: resource Worker, property Events.Every5.Schedule: {rule}: {field}: "
    )


def test_a_cloudformation_rule_and_its_mistakes(project: Path) -> None:
    def template(expression: str, state: str = "ENABLED", target_input: str = '{"b": 2}') -> Path:
        document = {
            "Resources": {
                "Worker": {
                    "Type": "AWS::Lambda::Function",
                    "Properties": {"Code": "src", "Handler": "app.handler", "Runtime": "python3.12"},
                },
                "Hourly": {
                    "Type": "AWS::Events::Rule",
                    "Properties": {
                        "ScheduleExpression": expression,
                        "State": state,
                        "Targets": [
                            {"Arn": {"Fn::GetAtt": ["Worker", "Arn"]}, "Id": "t", "Input": target_input}
                        ],
                    },
                },
                "Patterned": {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": {"source": ["x"]}}},
            }
        }
        path = project / "template.json"
        path.write_text(json.dumps(document, indent=1))
        return path

    (hourly,) = load_template(template("rate(1 hour)")).schedules
    assert (hourly.name, hourly.function, hourly.input, hourly.enabled) == (
        "Hourly",
        "Worker",
        b'{"b": 2}',
        True,
    )
    with pytest.raises(
        ConfigError, match=r"resource Hourly, property ScheduleExpression: rate\(1 hours\): unit"
    ):
        load_template(template("rate(1 hours)"))
    with pytest.raises(
        ConfigError, match="resource Hourly, property State: 'PAUSED' must be ENABLED or DISABLED"
    ):
        load_template(template("rate(1 hour)", state="PAUSED"))
    with pytest.raises(ConfigError, match="resource Hourly, property Targets: Input is not JSON"):
        load_template(template("rate(1 hour)", target_input="{nope"))


def test_toml_schedule(project: Path) -> None:
    config = project / "rapidboot.toml"
    config.write_text('[functions.worker]\ncode = "src"\nhandler = "app.handler"\nschedule = "rate(1 day)"\n')
    (schedule,) = toml_schedules(load_toml(config))
    assert (schedule.name, schedule.function, schedule.kind) == ("worker-schedule", "worker", RULE)
    config.write_text(
        '[functions.worker]\ncode = "src"\nhandler = "app.handler"\nschedule = "cron(0 0 ? * 0 *)"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_toml(config)
    assert str(caught.value) == (
        f"{config}: functions.worker.schedule: 'cron(0 0 ? * 0 *)': day-of-week: '0' is not valid "
        "(1-7 or SUN-SAT and , - * ? L #, # up to 5)"
    )
    config.write_text('[functions.worker]\ncode = "src"\nhandler = "app.handler"\nschedule = 5\n')
    with pytest.raises(ConfigError, match=r"functions\.worker\.schedule: must be a string"):
        load_toml(config)


def test_describe_lists_next_firings_in_utc() -> None:
    schedules = [
        Schedule(
            "noon", "worker", parse("cron(0 12 * * ? *)", "Europe/Paris"), SCHEDULER, timezone="Europe/Paris"
        ),
        Schedule("off", "worker", parse("rate(5 minutes)"), enabled=False),
        Schedule("once", "worker", parse("cron(0 0 1 1 ? 2026)")),
    ]
    text = describe(schedules, datetime(2026, 3, 30, 0, 0, tzinfo=UTC), 2)
    assert text.splitlines() == [
        "noon -> worker: cron(0 12 * * ? *) (Europe/Paris)",
        "  2026-03-30T10:00:00Z",  # CEST since the 29th
        "  2026-03-31T10:00:00Z",
        "off -> worker: rate(5 minutes) DISABLED",
        "once -> worker: cron(0 0 1 1 ? 2026)",
        "  (no more firings)",
    ]
    assert describe([], datetime(2026, 3, 30, tzinfo=UTC)) == "no schedules"


def test_rapidboot_schedules_command(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "template.yaml").write_text(SAM.format(rule="cron(30 6 ? * MON *)"))
    assert main(["schedules", "--template", str(project / "template.yaml")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "WorkerEvery5 -> Worker: cron(30 6 ? * MON *) DISABLED"
    assert lines[1] == "noon -> Worker: cron(0 12 * * ? *) (Europe/Paris)"
    firings = [datetime.strptime(line.strip(), "%Y-%m-%dT%H:%M:%SZ") for line in lines[2:]]
    assert len(firings) == 5 and all(firing.hour in (10, 11) and firing.minute == 0 for firing in firings)
    assert main(["schedules", "--template", str(project / "template.yaml"), "--count", "0"]) == 2


def test_a_reload_keeps_the_timers_of_unchanged_schedules() -> None:
    async def run() -> None:
        scheduler = Scheduler(lambda event: None, lambda name: True, "us-east-1", "123456789012", print)
        hourly = Schedule("hourly", "worker", parse("rate(1 hour)"))
        nightly = Schedule("nightly", "worker", parse("cron(0 3 * * ? *)"))
        assert scheduler.start([hourly, nightly]) == [hourly, nightly]
        before = dict(scheduler._timers)
        later = Schedule("nightly", "worker", parse("cron(0 4 * * ? *)"))
        again = Schedule("hourly", "worker", parse("rate(1 hour)"))  # parsed again, the same
        assert scheduler.start([again, later]) == [later]
        assert scheduler._timers[hourly.key] is before[hourly.key]  # a rate keeps counting from its start
        assert scheduler._timers[nightly.key] is not before[nightly.key]
        assert before[nightly.key].cancelled()
        assert scheduler.start([]) == [] and scheduler._timers == {}
        assert before[hourly.key].cancelled()

    asyncio.run(run())
