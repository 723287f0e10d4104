"""Schedules, end to end (issue 16): a real server fires a template's schedule as an Event invoke through the
durable queue, `--no-schedules` fires none, and `rapidboot events generate` output sent with
`rapidboot invoke --event-file` reaches the function unchanged.

A firing a few seconds ahead is Scheduler's one-time `at(...)` (ScheduleV2), computed at test time: a cron
fires on minute boundaries, up to a minute away. Cron firings are tested in-process against the library
(tests/rapid_server/test_schedules.py). The function (functions/async_events/events.py) appends each event
it gets to $OUTPUT_FILE: the tests wait on that file (bounded), never on a sleep.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import FUNCTIONS_DIR, RapidServer, running_server, wait_until, write_tables

pytestmark = pytest.mark.e2e

RAPIDBOOT = (sys.executable, "-m", "rapidboot.rapid_server")
DELIVERY_TIMEOUT_S = 20.0  # a bound: a healthy run fires within a second of the due time


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1] if line.strip()]


def write_template(root: Path, output: Path, events: str) -> Path:
    template = root / "template.yaml"
    template.write_text(
        f"""\
Transform: AWS::Serverless-2016-10-31
Resources:
  Ticker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {FUNCTIONS_DIR / "async_events"}
      Handler: events.handler
      Runtime: python3.12
      Timeout: 10
      Environment:
        Variables:
          OUTPUT_FILE: {output}
      Events:
{events}"""
    )
    return template


def at_in(seconds: float) -> tuple[str, datetime]:
    when = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    return f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})", when


@contextlib.contextmanager
def server_before(
    tmp_path: Path, events: Callable[[str], str], extra: list[str]
) -> Iterator[tuple[RapidServer, datetime, Path]]:
    """A server whose template fires `at(...)` a little after it is ready. The due time is written before
    the server starts, so a start slower than the margin (a loaded machine) is retried with twice the
    margin: a firing due before readiness would make the test prove nothing."""
    output = tmp_path / "runs.jsonl"
    margin = 2.0
    for _ in range(4):
        once, due = at_in(margin)
        template = write_template(tmp_path, output, events(once))
        args = [
            "--template",
            str(template),
            "--api-port",
            "0",
            "--state-dir",
            str(tmp_path / "state"),
            *extra,
        ]
        with running_server(args, cwd=tmp_path) as server:
            if time.time() < due.timestamp():
                yield server, due, output
                return
        margin *= 2
    pytest.fail(f"the server never started within {margin / 2:g} s")


def test_a_template_schedule_fires_an_event_invoke(tmp_path: Path) -> None:
    def events(once: str) -> str:
        return f"""\
        Soon:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: {once}
            Input: '{{"token": "scheduled"}}'
        Default:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: {once}
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
"""

    with server_before(tmp_path, events, []) as (server, due, output):
        assert wait_until(lambda: len(read_lines(output)) >= 2, DELIVERY_TIMEOUT_S), server.output_tail()
        runs = read_lines(output)
        assert time.time() >= due.timestamp()
        received = sorted((run["event"] for run in runs), key=lambda event: "token" in event)
        # Scheduler's target Input is the payload; without one, its default notification.
        assert received[1] == {"token": "scheduled"}
        notification = received[0]
        assert notification["source"] == "aws.scheduler"
        assert notification["detail-type"] == "Scheduled Event"
        assert notification["time"] == due.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert notification["resources"] == [
            "arn:aws:scheduler:us-east-1:123456789012:schedule/default/TickerDefault"
        ]
        fired = [line for line in server.stderr.lines if "invoked Ticker (Event" in line]
        assert len(fired) == 2, server.output_tail()
        # The request id the queue gave the event is the one the function saw.
        assert {run["request_id"] for run in runs} == {line.split(", ")[1].split(")")[0] for line in fired}
        assert (
            server.stderr.wait_for(lambda line: "TickerNightly: cron(0 3 * * ? *) invokes Ticker" in line)
            is not None
        )


def test_no_schedules_fires_none(tmp_path: Path) -> None:
    def events(once: str) -> str:
        return f"""\
        Soon:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: {once}
            Input: '{{"token": "scheduled"}}'
"""

    with server_before(tmp_path, events, ["--no-schedules"]) as (server, due, output):
        notice = "--no-schedules: 1 schedule(s) not fired: TickerSoon"
        assert server.stderr.wait_for(lambda line: notice in line) is not None, server.output_tail()
        # A negative needs the due time to pass; then a sync invoke, run by the loop after any timer due
        # before it, is the only run.
        assert wait_until(lambda: time.time() > due.timestamp() + 0.5, 30.0)
        response = server.invoke("Ticker", {"token": "sync"})
        assert response.status_code == 200, response.text
        assert [run["event"] for run in read_lines(output)] == [{"token": "sync"}]
        assert not [line for line in server.stderr.lines if "invoked Ticker" in line]


def test_a_toml_schedule_is_announced_and_listed(tmp_path: Path) -> None:
    config = write_tables(
        tmp_path / "rapidboot.toml",
        {
            "ticker": {
                "code": str(FUNCTIONS_DIR / "async_events"),
                "handler": "events.handler",
                "schedule": "cron(0 12 ? * MON-FRI *)",
            }
        },
    )
    listed = subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "schedules", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = listed.stdout.splitlines()
    assert lines[0] == "ticker-schedule -> ticker: cron(0 12 ? * MON-FRI *)"
    firings = [datetime.strptime(line.strip(), "%Y-%m-%dT%H:%M:%SZ") for line in lines[1:]]
    assert len(firings) == 5
    assert all(firing.weekday() < 5 and firing.hour == 12 for firing in firings)
    args = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    with running_server(args, cwd=tmp_path) as server:
        assert any(
            "schedule ticker-schedule: cron(0 12 ? * MON-FRI *) invokes ticker" in line
            for line in server.stderr.lines
        )


def test_a_bad_expression_stops_the_server_naming_the_field(tmp_path: Path) -> None:
    template = write_template(
        tmp_path,
        tmp_path / "runs.jsonl",
        """\
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * * *)
""",
    )
    result = subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "serve", "--port", "0", "--template", str(template)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    line = template.read_text().splitlines().index("            Schedule: cron(0 3 * * * *)") + 1
    assert result.stderr.startswith(
        f"rapidboot: {template}:{line}: resource Ticker, property Events.Nightly.Schedule: "
        "cron(0 3 * * * *): day-of-month/day-of-week: "
    )


def test_a_generated_event_is_sent_with_event_file(tmp_path: Path) -> None:
    output = tmp_path / "runs.jsonl"
    config = write_tables(
        tmp_path / "rapidboot.toml",
        {
            "reader": {
                "code": str(FUNCTIONS_DIR / "async_events"),
                "handler": "events.handler",
                "environment": {"OUTPUT_FILE": str(output)},
            }
        },
    )
    event_file = tmp_path / "s3.json"
    generated = subprocess.run(
        [
            *RAPIDBOOT,
            "events",
            "generate",
            "s3-put",
            *("--bucket", "photos", "--key", "2026/cat.jpg"),
            *("--body", "meow"),
        ],
        capture_output=True,
        check=True,
    )
    event_file.write_bytes(generated.stdout)
    args = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    with running_server(args, cwd=tmp_path) as server:
        invoked = subprocess.run(
            [*RAPIDBOOT, "invoke", "reader", "--event-file", str(event_file), "--endpoint", server.endpoint],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert invoked.returncode == 0, invoked.stderr
    (run,) = read_lines(output)
    assert run["event"] == json.loads(generated.stdout)
    record = run["event"]["Records"][0]["s3"]
    assert record["bucket"]["name"] == "photos"
    assert record["object"]["key"] == "2026/cat.jpg"
    assert record["object"]["size"] == 4


def test_a_changed_toml_schedule_is_followed_by_watch(tmp_path: Path) -> None:
    def tables(schedule: str) -> dict[str, dict[str, Any]]:
        return {
            "ticker": {
                "code": str(FUNCTIONS_DIR / "async_events"),
                "handler": "events.handler",
                "schedule": schedule,
            }
        }

    config = write_tables(tmp_path / "rapidboot.toml", tables("cron(0 3 * * ? *)"))
    args = ["--config", str(config), "--watch", "--state-dir", str(tmp_path / "state")]
    with running_server(args, cwd=tmp_path) as server:
        write_tables(config, tables("rate(7 days)"))
        line = server.stderr.wait_for(lambda line: "rate(7 days) invokes ticker" in line)
        assert line == "rapidboot: schedule ticker-schedule: rate(7 days) invokes ticker", (
            server.output_tail()
        )


def test_the_queue_example_has_a_schedule_listed_by_rapidboot_schedules() -> None:
    """examples/queue's template (issue 16: an SQS function and a schedule): its summary every minute, and
    the demo's override to a one-time firing."""
    example = Path(__file__).resolve().parents[2] / "examples" / "queue"
    listed = subprocess.run(
        [*RAPIDBOOT, "schedules", "--count", "2"], cwd=example, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "SummaryFunctionSummary -> summary: rate(1 minute)"
    first, second = (datetime.strptime(line.strip(), "%Y-%m-%dT%H:%M:%SZ") for line in lines[1:3])
    assert second - first == timedelta(minutes=1)
    once = subprocess.run(
        [*RAPIDBOOT, "schedules", "--parameter-overrides", "SummarySchedule=at(2030-01-01T00:00:00)"],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert once.stdout.splitlines()[:2] == [
        "SummaryFunctionSummary -> summary: at(2030-01-01T00:00:00)",
        "  2030-01-01T00:00:00Z",
    ], once.stderr
