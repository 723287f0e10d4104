"""The Event invokes' durable queue (`rapidboot.rapid_server.async_invokes.async_queue`), its retry policy
(`dispatcher`), the destination record (`destinations`) and their configuration keys. No server: the queue is
SQLite on disk, and "a server died" is a real process killed with SIGKILL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from rapidboot.rapid_server.async_invokes.async_queue import (
    DATABASE_NAME,
    SCHEMA_VERSION,
    AsyncQueue,
    NewEvent,
    QueueError,
)
from rapidboot.rapid_server.async_invokes.destinations import (
    RETRIES_EXHAUSTED,
    SUCCESS,
    Outcome,
    append_record,
    build_record,
)
from rapidboot.rapid_server.async_invokes.dispatcher import function_error_delay, throttle_delay
from rapidboot.rapid_server.config import ConfigError, FunctionConfig, load_toml, validate_function

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"


def new(request_id: str, function: str = "f", payload: bytes = b"{}") -> NewEvent:
    return NewEvent(request_id, function, payload, "Root=1-0-0")


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[AsyncQueue]:
    q = AsyncQueue(tmp_path / "async")
    yield q
    q.close()


# --- Schema -------------------------------------------------------------------------------------------------


def test_schema_is_versioned_and_wal(queue: AsyncQueue, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "async" / DATABASE_NAME)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


# The version 1 schema exactly as rapidboot wrote it before qualifiers and tenants were queued.
_SCHEMA_V1 = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, function TEXT NOT NULL,
    payload BLOB NOT NULL, trace_id TEXT NOT NULL, enqueued_at REAL NOT NULL, due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, throttles INTEGER NOT NULL DEFAULT 0, last_response BLOB,
    lease_holder TEXT
);
CREATE INDEX events_due ON events (function, due_at, id) WHERE lease_holder IS NULL;
INSERT INTO events (request_id, function, payload, trace_id, enqueued_at, due_at, attempts)
    VALUES ('old-1', 'f', CAST('{"kept": true}' AS BLOB), 'Root=1-old', 1.0, 1.0, 1);
PRAGMA user_version = 1;
"""


def test_a_version_1_queue_is_migrated_in_place_and_keeps_its_events(tmp_path: Path) -> None:
    (tmp_path / "async").mkdir()
    old = sqlite3.connect(tmp_path / "async" / DATABASE_NAME)
    old.executescript(_SCHEMA_V1)
    old.close()
    queue = AsyncQueue(tmp_path / "async")
    try:
        queue.enqueue(NewEvent("new-1", "f", b"{}", "t", qualifier="live", tenant_id="blue"), now=2.0)
        claimed = queue.claim_due("f", now=3.0, limit=10)
    finally:
        queue.close()
    assert [(e.request_id, e.payload, e.attempts, e.qualifier, e.tenant_id) for e in claimed] == [
        ("old-1", b'{"kept": true}', 1, "", None),  # a queued $LATEST event, as before
        ("new-1", b"{}", 0, "live", "blue"),
    ]
    db = sqlite3.connect(tmp_path / "async" / DATABASE_NAME)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (2,)
    db.close()
    AsyncQueue(tmp_path / "async").close()  # opening a migrated queue again changes nothing


def test_reopening_keeps_events(tmp_path: Path) -> None:
    first = AsyncQueue(tmp_path / "async")
    first.enqueue(new("a"), now=1.0)
    first.close()
    second = AsyncQueue(tmp_path / "async")
    assert [event.request_id for event in second.claim_due("f", now=2.0, limit=10)] == ["a"]
    second.close()


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "async").mkdir()
    db = sqlite3.connect(tmp_path / "async" / DATABASE_NAME)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(QueueError, match="schema version 99"):
        AsyncQueue(tmp_path / "async")


# --- Claims -------------------------------------------------------------------------------------------------


def test_claims_due_events_in_order_up_to_the_limit(queue: AsyncQueue) -> None:
    for index, request_id in enumerate(["a", "b", "c", "d"]):
        queue.enqueue(new(request_id), now=10.0 + index)
    queue.enqueue(new("other", function="g"), now=10.0)
    assert [e.request_id for e in queue.claim_due("f", now=12.0, limit=2)] == ["a", "b"]
    assert [e.request_id for e in queue.claim_due("f", now=12.0, limit=10)] == ["c"]  # d not yet due
    assert queue.claim_due("f", now=12.0, limit=10) == []  # claimed ones are in flight
    assert [e.request_id for e in queue.claim_due("f", now=13.0, limit=10)] == ["d"]
    assert [e.request_id for e in queue.claim_due("g", now=13.0, limit=10)] == ["other"]


def test_a_claimed_event_carries_what_was_enqueued(queue: AsyncQueue) -> None:
    queue.enqueue(NewEvent("id-1", "f", b'{"k": 1}', "Root=1-abc"), now=5.0)
    (event,) = queue.claim_due("f", now=5.0, limit=1)
    assert (event.request_id, event.function, event.payload, event.trace_id) == (
        "id-1",
        "f",
        b'{"k": 1}',
        "Root=1-abc",
    )
    assert (event.enqueued_at, event.due_at, event.attempts, event.throttles, event.last_response) == (
        5.0,
        5.0,
        0,
        0,
        None,
    )


def test_retry_at_requeues_with_counts_and_keeps_the_last_error(queue: AsyncQueue) -> None:
    queue.enqueue(new("a"), now=0.0)
    (event,) = queue.claim_due("f", now=0.0, limit=1)
    queue.retry_at(event.id, due_at=5.0, attempts=1, throttles=0, last_response=b'{"errorType":"X"}')
    assert queue.claim_due("f", now=4.9, limit=1) == []
    assert queue.next_due("f") == 5.0
    (event,) = queue.claim_due("f", now=5.0, limit=1)
    assert (event.attempts, event.last_response) == (1, b'{"errorType":"X"}')
    queue.retry_at(event.id, due_at=6.0, attempts=1, throttles=1, last_response=None)  # a throttle
    (event,) = queue.claim_due("f", now=6.0, limit=1)
    assert (event.attempts, event.throttles, event.last_response) == (1, 1, b'{"errorType":"X"}')
    assert event.enqueued_at == 0.0  # the age counts from acceptance, not from the last retry


def test_complete_removes_and_queues_the_follow_up_together(queue: AsyncQueue) -> None:
    queue.enqueue(new("a"), now=0.0)
    (event,) = queue.claim_due("f", now=0.0, limit=1)
    queue.complete(event.id, new("record", function="sink"), now=1.0)
    assert queue.queued_functions() == {"sink": 1}
    queue.release(event.id)  # a no-op for a completed event
    assert queue.claim_due("f", now=10.0, limit=10) == []


def test_release_returns_an_event_unchanged(queue: AsyncQueue) -> None:
    queue.enqueue(new("a"), now=0.0)
    (event,) = queue.claim_due("f", now=0.0, limit=1)
    queue.release(event.id)
    (again,) = queue.claim_due("f", now=0.0, limit=1)
    assert again == event


# --- Leases across servers ----------------------------------------------------------------------------------


def test_a_live_servers_leases_are_not_taken(tmp_path: Path) -> None:
    first = AsyncQueue(tmp_path / "async")
    second = AsyncQueue(tmp_path / "async")
    first.enqueue(new("a"), now=0.0)
    assert len(first.claim_due("f", now=0.0, limit=1)) == 1
    assert second.recover() == 0
    assert second.claim_due("f", now=0.0, limit=1) == []
    first.close()
    second.close()


def test_a_killed_servers_in_flight_events_are_recovered(tmp_path: Path) -> None:
    """A real process claims two events and is SIGKILLed holding them: its flock dies with it."""
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from rapidboot.rapid_server.async_invokes.async_queue import AsyncQueue, NewEvent
        queue = AsyncQueue(Path({str(tmp_path / "async")!r}))
        for request_id in ("a", "b", "c"):
            queue.enqueue(NewEvent(request_id, "f", b"{{}}", "t"), now=0.0)
        assert len(queue.claim_due("f", now=0.0, limit=2)) == 2
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    dead = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30, check=False)
    assert dead.returncode == -signal.SIGKILL, dead.stderr
    survivor = AsyncQueue(tmp_path / "async")
    assert [e.request_id for e in survivor.claim_due("f", now=0.0, limit=10)] == ["c"]
    assert survivor.recover() == 2
    assert sorted(e.request_id for e in survivor.claim_due("f", now=0.0, limit=10)) == ["a", "b"]
    assert [p.name for p in (tmp_path / "async" / "holders").iterdir()] == [f"{survivor.holder}.lock"]
    survivor.close()


# --- Retry policy -------------------------------------------------------------------------------------------


def config(**keys: Any) -> FunctionConfig:
    return validate_function("t", "f", str(Path(__file__).parent), "app.handler", **keys)


def test_function_error_retries_wait_the_base_then_twice_it() -> None:
    service = config()
    assert [function_error_delay(service, n) for n in (1, 2)] == [60.0, 120.0]


def test_throttle_backoff_doubles_from_one_second_to_five_minutes_scaled_for_fast_configs() -> None:
    service = config()
    delays = [throttle_delay(service, n) for n in range(1, 12)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays[-1] == 300.0
    fast = config(retry_base_delay=0.6)  # a hundredth of the service's 60 s
    assert throttle_delay(fast, 1) == 0.01
    assert throttle_delay(fast, 11) == pytest.approx(3.0)
    assert throttle_delay(config(retry_base_delay=0.01), 1) == 0.01  # the floor


# --- The destination record ---------------------------------------------------------------------------------


def test_record_of_a_failure(queue: AsyncQueue, tmp_path: Path) -> None:
    queue.enqueue(NewEvent("req-1", "f", b'{"order": 7}', "t"), now=0.0)
    (event,) = queue.claim_due("f", now=0.0, limit=1)
    error = b'{"errorMessage": "boom", "errorType": "ValueError"}'
    when = datetime(2019, 11, 14, 18, 16, 5, 568000, tzinfo=UTC)
    record = orjson.loads(build_record(event, ARN, Outcome(RETRIES_EXHAUSTED, 3, error, True), when))
    assert record == {
        "version": "1.0",
        "timestamp": "2019-11-14T18:16:05.568Z",
        "requestContext": {
            "requestId": "req-1",
            "functionArn": ARN + ":$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"order": 7},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "boom", "errorType": "ValueError"},
    }
    path = tmp_path / "records.jsonl"
    append_record(path, orjson.dumps(record))
    append_record(path, orjson.dumps(record))
    assert [orjson.loads(line) for line in path.read_bytes().splitlines()] == [record, record]


def test_record_of_a_success_with_a_non_json_response(queue: AsyncQueue) -> None:
    queue.enqueue(new("req-2"), now=0.0)
    (event,) = queue.claim_due("f", now=0.0, limit=1)
    record = orjson.loads(build_record(event, ARN, Outcome(SUCCESS, 1, b"plain text", False)))
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == "plain text"


# --- Configuration ------------------------------------------------------------------------------------------


def test_async_defaults_are_the_services() -> None:
    defaults = config()
    assert (defaults.maximum_retry_attempts, defaults.maximum_event_age_s, defaults.retry_base_delay_s) == (
        2,
        21600.0,
        60.0,
    )


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"maximum_retry_attempts": 3}, "t.maximum_retry_attempts: 3 is outside 0-2"),
        ({"maximum_event_age": 30}, "t.maximum_event_age: 30 s is outside 60-21600 s"),
        ({"maximum_event_age": 21601}, "t.maximum_event_age: 21601 s is outside 60-21600 s"),
        ({"retry_base_delay": 0.001}, "t.retry_base_delay: 0.001 s is outside 0.01-3600 s"),
        ({"on_success": "queue:x"}, 't.on_success: must be "function:NAME" or "file:PATH"'),
        ({"on_failure": "function:"}, 't.on_failure: must be "function:NAME" or "file:PATH"'),
    ],
)
def test_async_keys_are_checked(keys: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(**keys)
    assert str(caught.value).startswith(message)


def test_min_event_age_can_be_lowered_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPIDBOOT_MIN_EVENT_AGE", "0.5")
    assert config(maximum_event_age=1).maximum_event_age_s == 1.0


def test_destinations_in_a_toml(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    toml = tmp_path / "rapidboot.toml"
    toml.write_text(
        '[functions.a]\ncode = "code"\nhandler = "app.handler"\n'
        'on_success = "function:b"\non_failure = "file:failures.jsonl"\n'
        '[functions.b]\ncode = "code"\nhandler = "app.handler"\n'
    )
    functions = load_toml(toml)
    assert str(functions["a"].on_success) == "function:b"
    assert functions["a"].on_failure is not None
    assert functions["a"].on_failure.path == (tmp_path / "failures.jsonl").resolve()

    toml.write_text('[functions.a]\ncode = "code"\nhandler = "app.handler"\non_failure = "function:nope"\n')
    with pytest.raises(ConfigError) as caught:
        load_toml(toml)
    assert str(caught.value) == (
        f"{toml}: functions.a.on_failure: function:nope: no function 'nope' in this configuration"
    )
