"""The durable execution machinery without sockets: the operation state machine (durable/operations.py),
the `durable` key of a rapidboot.toml, and the checkpoint log (durable/store.py) across a reopen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.rapid_server.config import ConfigError, DurableConfig, load_toml
from rapidboot.rapid_server.durable import operations as ops
from rapidboot.rapid_server.durable.store import DurableStore, Write

NOW = 1_000_000


def step(action: str, op_id: str = "s1", **extra: Any) -> dict[str, Any]:
    return {"Id": op_id, "Type": "STEP", "Action": action, **extra}


def test_a_step_retried_is_pending_then_ready_when_its_time_comes() -> None:
    operations: dict[str, ops.Operation] = {}
    ops.apply(ops.validate([step("START")], operations), operations, "x", NOW)
    error = {"ErrorType": "ValueError", "ErrorMessage": "boom"}
    retry = step("RETRY", Error=error, StepOptions={"NextAttemptDelaySeconds": 5})
    applied = ops.apply(ops.validate([retry], operations), operations, "x", NOW)
    op = operations["s1"]
    assert op["Status"] == "PENDING"
    assert op["StepDetails"] == {"Attempt": 1, "Error": error, "NextAttemptTimestamp": NOW + 5000}
    assert applied.events[0]["EventType"] == "StepFailed"
    assert ops.next_wake_ms(operations) == NOW + 5000
    assert ops.due(operations, NOW + 4999) == []
    ((ready, _),) = ops.due(operations, NOW + 5000)
    assert ready["Status"] == "READY"
    ops.apply(ops.validate([step("SUCCEED", Payload='"ok"')], operations), operations, "x", NOW + 6000)
    assert operations["s1"]["Status"] == "SUCCEEDED"
    assert operations["s1"]["StepDetails"]["Attempt"] == 2
    assert operations["s1"]["EndTimestamp"] == NOW + 6000


def test_a_wait_ends_at_its_scheduled_time_and_the_time_scale_shortens_it() -> None:
    operations: dict[str, ops.Operation] = {}
    wait = {"Id": "w", "Type": "WAIT", "Action": "START", "WaitOptions": {"WaitSeconds": 3600}}
    ops.apply(ops.validate([wait], operations), operations, "x", NOW, scale=3600)
    assert operations["w"]["WaitDetails"]["ScheduledEndTimestamp"] == NOW + 1000
    ((done, event),) = ops.due(operations, NOW + 1000)
    assert done["Status"] == "SUCCEEDED"
    assert event["EventType"] == "WaitSucceeded" and event["WaitSucceededDetails"] == {"Duration": 3600}


def test_a_callback_gets_an_id_and_times_out_on_its_heartbeat() -> None:
    operations: dict[str, ops.Operation] = {}
    callback = {
        "Id": "c",
        "Type": "CALLBACK",
        "Action": "START",
        "CallbackOptions": {"TimeoutSeconds": 60, "HeartbeatTimeoutSeconds": 10},
    }
    applied = ops.apply(ops.validate([callback], operations), operations, "x", NOW)
    callback_id = operations["c"]["CallbackDetails"]["CallbackId"]
    assert applied.callbacks == [(callback_id, "c")]
    ops.heartbeat(operations["c"], NOW + 9000, 1.0)
    assert ops.due(operations, NOW + 18_000) == []
    ((timed_out, event),) = ops.due(operations, NOW + 19_000)
    assert timed_out["Status"] == "TIMED_OUT"
    assert timed_out["CallbackDetails"]["Error"]["ErrorType"] == "Callback.Heartbeat"
    assert event["EventType"] == "CallbackTimedOut"
    assert "_Heartbeat" not in ops.rendered(timed_out)  # the service's own keys are never shown


@pytest.mark.parametrize(
    ("update", "problem"),
    [
        ({"Id": "a", "Type": "WAIT", "Action": "SUCCEED"}, "Invalid action 'SUCCEED' for WAIT"),
        ({"Id": "a", "Type": "TIMER", "Action": "START"}, "Type: 'TIMER' is not one of"),
        ({"Id": "a b", "Type": "STEP", "Action": "START"}, "must be 1-64 of"),
        ({"Id": "a", "Type": "CHAINED_INVOKE", "Action": "START"}, "FunctionName: required"),
    ],
)
def test_a_bad_update_is_refused_whole(update: dict[str, Any], problem: str) -> None:
    operations: dict[str, ops.Operation] = {}
    with pytest.raises(ops.UpdateRefused, match=problem):
        ops.validate([step("START", "first"), update], operations)
    assert operations == {}  # validation changes nothing: the batch is applied only once all of it is good


def test_an_ended_operation_takes_no_more_updates() -> None:
    operations: dict[str, ops.Operation] = {}
    ops.apply(ops.validate([step("SUCCEED", Payload="1")], operations), operations, "x", NOW)
    with pytest.raises(ops.UpdateRefused, match="already SUCCEEDED"):
        ops.validate([step("FAIL")], operations)


@given(st.lists(st.fixed_dictionaries({"Id": st.text(max_size=70), "Type": st.text(), "Action": st.text()})))
def test_any_batch_is_validated_or_refused_with_a_message(updates: list[dict[str, Any]]) -> None:
    operations: dict[str, ops.Operation] = {}
    try:
        batch = ops.validate(updates, operations)
    except ops.UpdateRefused as exc:
        assert str(exc)
        return
    ops.apply(batch, operations, "x", NOW)


def test_the_durable_key_of_a_rapidboot_toml(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    toml = tmp_path / "rapidboot.toml"
    toml.write_text(
        '[functions.a]\ncode = "code"\nhandler = "app.h"\ndurable = { execution_timeout = 60 }\n'
        '[functions.b]\ncode = "code"\nhandler = "app.h"\ndurable = {}\n'
        '[functions.c]\ncode = "code"\nhandler = "app.h"\n'
    )
    functions = load_toml(toml)
    assert functions["a"].durable == DurableConfig(60, 14)
    assert functions["b"].durable == DurableConfig()
    assert functions["c"].durable is None
    toml.write_text('[functions.a]\ncode = "code"\nhandler = "app.h"\ndurable = { retention_period = 91 }\n')
    with pytest.raises(ConfigError, match=r"functions.a.durable.retention_period: 91 is outside 1-90"):
        load_toml(toml)


def test_the_log_keeps_operations_events_and_callbacks_across_a_reopen(tmp_path: Path) -> None:
    store = DurableStore(tmp_path)
    record = {
        "DurableExecutionArn": "arn:x/durable-execution/n/e",
        "DurableExecutionName": "n",
        "Status": "RUNNING",
        "StartTimestamp": NOW,
        "_Function": "f",
    }
    op = {"Id": "s", "Type": "STEP", "Status": "SUCCEEDED"}
    assert store.create(record, Write(record["DurableExecutionArn"], operations=[(1, op)]))
    assert not store.create(record, Write(record["DurableExecutionArn"]))  # the name is taken
    store.write(
        Write(
            record["DurableExecutionArn"],
            events=[(1, {"EventType": "StepSucceeded"})],
            callbacks=[("cb", "s")],
        )
    )
    store.close()
    reopened = DurableStore(tmp_path)
    assert [r["DurableExecutionName"] for r in reopened.executions(statuses=["RUNNING"])] == ["n"]
    assert list(reopened.operations(record["DurableExecutionArn"])) == [(1, op)]
    assert reopened.events(record["DurableExecutionArn"]) == [{"EventId": 1, "EventType": "StepSucceeded"}]
    assert reopened.callback("cb") == (record["DurableExecutionArn"], "s")
    reopened.delete([record["DurableExecutionArn"]])  # DeleteDurableExecution, retention: all of it goes
    assert reopened.execution(record["DurableExecutionArn"]) is None
    assert list(reopened.operations(record["DurableExecutionArn"])) == []
    assert reopened.events(record["DurableExecutionArn"]) == []
    assert reopened.callback("cb") is None
    reopened.close()
