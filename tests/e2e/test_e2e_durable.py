"""Durable functions end to end (issue 20): handlers written with AWS's Durable Execution SDK, unchanged,
run by the real server; the tests drive and inspect them with boto3's durable execution operations.

No sleep is a synchronisation here: a test polls the execution's status or history (GetDurableExecution,
GetDurableExecutionHistory) with a deadline, as a client of the service would.
"""

from __future__ import annotations

import importlib.util
import io
import json
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import RapidServer, lambda_client, running_server, supervised, wait_until, write_tables

pytestmark = pytest.mark.e2e

CODE = Path(__file__).parent / "functions" / "durable"
DEADLINE_S = 30.0  # a bound: each execution here ends in a few seconds
TIME_SCALE = 3600  # the module's server runs durable time an hour a second (--durable-time-scale)


def tables() -> dict[str, dict[str, Any]]:
    def durable(handler: str) -> dict[str, Any]:
        return {
            "code": str(CODE),
            "handler": f"app.{handler}",
            "timeout": 30,
            "durable": {"execution_timeout": 604_800, "retention_period": 1},
        }

    functions = {
        name: durable(name)
        for name in ("steps", "waits", "approval", "flaky", "tokens", "order", "fanout", "doomed")
    }
    functions["payment"] = durable("process_payment")
    functions["price"] = {"code": str(CODE), "handler": "app.lookup_price"}  # a plain function
    return functions


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("durable")
    config = write_tables(root / "rapidboot.toml", tables())
    args = [
        "--config",
        str(config),
        "--state-dir",
        str(root / "state"),
        "--durable-time-scale",
        str(TIME_SCALE),
    ]
    with running_server(args, root) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: RapidServer) -> Any:
    return lambda_client(server.endpoint)


def start(client: Any, name: str, payload: dict[str, Any], execution_name: str | None = None) -> str:
    """An Event invoke: 202 once the execution is committed, with its ARN."""
    extra = {"DurableExecutionName": execution_name} if execution_name else {}
    response = client.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps(payload).encode(), **extra
    )
    assert response["StatusCode"] == 202
    arn: str = response["DurableExecutionArn"]
    assert f":function:{name}:$LATEST/durable-execution/" in arn
    return arn


def ended(client: Any, arn: str) -> dict[str, Any]:
    """The execution once it is no longer RUNNING (polled, bounded)."""
    record: dict[str, Any] = {}

    def done() -> bool:
        record.update(client.get_durable_execution(DurableExecutionArn=arn))
        return bool(record["Status"] != "RUNNING")

    assert wait_until(done, DEADLINE_S, interval=0.1), f"{arn} still RUNNING after {DEADLINE_S} s"
    return record


def events(client: Any, arn: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    return found


def event_of(client: Any, arn: str, kind: str) -> dict[str, Any]:
    """The first history event of `kind` (polled, bounded)."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [event for event in events(client, arn) if event["EventType"] == kind]
        return bool(found)

    assert wait_until(seen, DEADLINE_S, interval=0.1), f"no {kind} in {arn}: {events(client, arn)}"
    return found[0]


def test_steps_complete_in_one_sync_invoke(server: RapidServer, client: Any) -> None:
    response = client.invoke(FunctionName="steps", Payload=json.dumps({"count": 5}).encode())
    assert response.get("FunctionError") is None
    result = json.loads(response["Payload"].read())
    assert result["total"] == 0 + 1 + 2 + 3 + 4
    assert result["endpoint"] == server.endpoint  # the SDK's boto3 client was pointed here
    arn = response["DurableExecutionArn"]
    record = client.get_durable_execution(DurableExecutionArn=arn)
    assert record["Status"] == "SUCCEEDED"
    assert json.loads(record["Result"]) == result
    kinds = [event["EventType"] for event in events(client, arn)]
    assert kinds[0] == "ExecutionStarted" and kinds[-1] == "ExecutionSucceeded"
    assert kinds.count("StepSucceeded") == 5
    # Paged as the API pages it: MaxItems, NextMarker, and ReverseOrder.
    pages, marker = [], None
    while True:
        page = client.get_durable_execution_history(
            DurableExecutionArn=arn, MaxItems=4, **({"Marker": marker} if marker else {})
        )
        assert len(page["Events"]) <= 4
        pages += [event["EventType"] for event in page["Events"]]
        marker = page.get("NextMarker")
        if marker is None:
            break
    assert pages == kinds
    reverse = client.get_durable_execution_history(DurableExecutionArn=arn, ReverseOrder=True)["Events"]
    assert [event["EventType"] for event in reverse] == kinds[::-1]
    assert any(line.endswith(arn) for line in server.stderr.lines)  # the ARN is printed for the user


def test_a_wait_resumes_the_execution(server: RapidServer, client: Any, tmp_path: Path) -> None:
    """An hour's wait, an hour a second (--durable-time-scale, which the server prints)."""
    assert any("--durable-time-scale 3600" in line for line in server.stderr.lines)
    marker = tmp_path / "marker"
    arn = start(client, "waits", {"marker": str(marker), "seconds": 3600})
    record = ended(client, arn)
    assert record["Status"] == "SUCCEEDED", record
    assert json.loads(record["Result"]) == {"before": 1, "after": 1}
    assert marker.read_text().split() == ["before", "after"]  # the replay did not run `before` again
    history = events(client, arn)
    (started,) = [event for event in history if event["EventType"] == "WaitStarted"]
    assert started["WaitStartedDetails"]["Duration"] == 3600
    kinds = [event["EventType"] for event in history]
    assert kinds.index("WaitStarted") < kinds.index("WaitSucceeded") < kinds.index("ExecutionSucceeded")


def test_each_replay_shows_in_the_context_and_the_report_line(
    server: RapidServer, client: Any, tmp_path: Path
) -> None:
    """A replay is a normal invoke: the SDK's context says it replays (from the operations the event
    carries), and the REPORT line ends with the execution's ARN and the replay's number."""
    replays = tmp_path / "replays"
    payload = {"marker": str(tmp_path / "marker"), "seconds": 3600, "replays": str(replays)}
    arn = start(client, "waits", payload)
    assert ended(client, arn)["Status"] == "SUCCEEDED"
    assert replays.read_text().split() == ["False", "True"]  # the first invocation, then the replay
    wanted = [f"Durable Execution: {arn}\tReplay: {n}" for n in (0, 1)]

    def reported() -> bool:
        return len(server.lines_mentioning(f"Durable Execution: {arn}\t")) == 2

    assert wait_until(reported, DEADLINE_S, interval=0.05), server.lines_mentioning(arn)
    reports = server.lines_mentioning(f"Durable Execution: {arn}\t")
    assert all(line.startswith("REPORT RequestId: ") for line in reports)
    assert sorted(line[line.index("\tDurable Execution: ") + 1 :] for line in reports) == wanted
    fields = dict(field.split(": ", 1) for field in reports[0].split("\t"))  # still `Key: value` fields
    assert fields["Durable Execution"] == arn and fields["Memory Size"].endswith(" MB")


def test_a_callback_completed_with_boto3_resumes_it(client: Any) -> None:
    arn = start(client, "approval", {"order": 42})
    callback_id = event_of(client, arn, "CallbackStarted")["CallbackStartedDetails"]["CallbackId"]
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    # The SDK hands the handler the result as sent (its default serdes passes callback results through).
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"approved by Ada")
    record = ended(client, arn)
    assert record["Status"] == "SUCCEEDED", record
    assert json.loads(record["Result"]) == {"approved": "approved by Ada", "order": 42}
    with pytest.raises(client.exceptions.CallbackTimeoutException):  # closed: a second answer is refused
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b'"again"')
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.send_durable_execution_callback_failure(CallbackId="abcd", Error={"ErrorMessage": "no"})


def test_a_failing_step_is_retried_until_it_succeeds(client: Any, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    arn = start(client, "flaky", {"marker": str(marker), "fail": 2})
    record = ended(client, arn)
    assert record["Status"] == "SUCCEEDED", record
    assert json.loads(record["Result"]) == {"runs": 3}
    history = events(client, arn)
    failed = [event for event in history if event["EventType"] == "StepFailed"]
    assert [event["StepFailedDetails"]["RetryDetails"]["CurrentAttempt"] for event in failed] == [1, 2]
    assert [event["EventType"] for event in history].count("StepSucceeded") == 1


def test_a_step_out_of_attempts_fails_the_execution(client: Any, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    payload = {"marker": str(marker), "fail": 9, "max_attempts": 2}
    response = client.invoke(FunctionName="flaky", Payload=json.dumps(payload).encode())
    assert response["FunctionError"] == "Unhandled"
    assert "attempt 2 failed" in json.loads(response["Payload"].read())["errorMessage"]
    record = client.get_durable_execution(DurableExecutionArn=response["DurableExecutionArn"])
    assert record["Status"] == "FAILED"
    assert marker.read_text().split() == ["attempt", "attempt"]


def test_a_duplicate_execution_name_is_refused(client: Any, tmp_path: Path) -> None:
    payload = {"marker": str(tmp_path / "marker")}
    arn = start(client, "approval", payload, execution_name="order-7")
    with pytest.raises(client.exceptions.DurableExecutionAlreadyStartedException):
        start(client, "approval", payload, execution_name="order-7")
    listed = client.list_durable_executions_by_function(
        FunctionName="approval", DurableExecutionName="order-7"
    )
    assert [execution["DurableExecutionArn"] for execution in listed["DurableExecutions"]] == [arn]
    stopped = client.stop_durable_execution(DurableExecutionArn=arn, Error={"ErrorMessage": "cancelled"})
    assert stopped["StopTimestamp"]
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "STOPPED"


def test_a_used_or_unknown_checkpoint_token_is_refused(client: Any) -> None:
    response = client.invoke(FunctionName="tokens", Payload=b"{}")
    assert response.get("FunctionError") is None
    result = json.loads(response["Payload"].read())
    assert result["refused"]["reused"].startswith("Invalid checkpoint token")  # the SDK's retryable prefix
    assert result["refused"]["unknown"].startswith("Invalid checkpoint token")
    assert "one" in result["ids"]  # the checkpoint with the first token was kept
    with pytest.raises(client.exceptions.InvalidParameterValueException):  # no invocation runs now
        client.checkpoint_durable_execution(
            DurableExecutionArn=response["DurableExecutionArn"],
            CheckpointToken="bm90LWEtdG9rZW4=",
            Updates=[],
        )


def test_a_sigkilled_server_resumes_the_execution_from_its_log(tmp_path: Path) -> None:
    """Killed after the first step's checkpoint, during the wait: the restarted server fires the wait and
    replays; the step the log holds as done does not run again."""
    config = write_tables(tmp_path / "rapidboot.toml", tables())
    args = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    marker = tmp_path / "marker"
    with supervised(RapidServer(args, tmp_path), check_shutdown=False) as first:
        client = lambda_client(first.endpoint)
        arn = start(client, "waits", {"marker": str(marker), "seconds": 2})
        event_of(client, arn, "WaitStarted")
        first.stop(signal.SIGKILL)
    assert marker.read_text().split() == ["before"]
    with running_server(args, tmp_path) as second:
        client = lambda_client(second.endpoint)
        record = ended(client, arn)
        assert record["Status"] == "SUCCEEDED", record
        assert any("durable executions resumed" in line for line in second.stderr.lines)
    assert marker.read_text().split() == ["before", "after"]


def test_rapidboot_invoke_prints_the_execution_arn(server: RapidServer, client: Any) -> None:
    """SAM CLI never shows the execution's ARN (aws-sam-cli #9200); `rapidboot invoke` does."""
    command = [
        sys.executable,
        "-m",
        "rapidboot.rapid_server",
        "invoke",
        "steps",
        "--endpoint",
        server.endpoint,
    ]
    command += ["--durable-execution-name", "cli-run", "--payload", '{"count": 2}']
    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == 1
    (arn,) = [line.split()[-1] for line in done.stderr.splitlines() if "durable execution" in line]
    assert arn.endswith("/durable-execution/cli-run/" + arn.rsplit("/", 1)[-1])
    assert client.get_durable_execution(DurableExecutionArn=arn)["DurableExecutionName"] == "cli-run"


def in_memory(handler: str, payload: dict[str, Any]) -> Any:
    """What AWS's SDK testing package computes for a handler of app.py, in this process, in memory."""
    from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

    spec = importlib.util.spec_from_file_location("durable_app", CODE / "app.py")
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    with DurableFunctionTestRunner(handler=getattr(app, handler)) as runner:
        runner.register_durable_function("payment", app.process_payment, execution_timeout=60)
        runner.register_function("price", app.lookup_price)
        result = runner.run(input=json.dumps(payload), execution_timeout=DEADLINE_S)
    assert result.status.value == "SUCCEEDED", result.error
    return json.loads(result.result)


def test_chained_invokes_parallel_and_map_match_the_sdks_in_memory_service(client: Any) -> None:
    payload = {"sku": "book-1", "items": ["a", "b", "c"]}
    response = client.invoke(FunctionName="order", Payload=json.dumps(payload).encode())
    assert response.get("FunctionError") is None, response["Payload"].read()
    result = json.loads(response["Payload"].read())
    assert result == {
        "sku": "book-1",
        "charged": 25,
        "checks": ["stock", "fraud"],
        "labels": ["0:a", "1:b", "2:c"],
    }
    assert result == in_memory("order", payload)
    history = events(client, response["DurableExecutionArn"])
    invoked = [
        e["ChainedInvokeStartedDetails"]["FunctionName"]
        for e in history
        if e["EventType"] == "ChainedInvokeStarted"
    ]
    assert invoked == ["price", "payment"]
    (payment,) = client.list_durable_executions_by_function(FunctionName="payment")["DurableExecutions"]
    assert payment["Status"] == "SUCCEEDED"  # the durable target ran as an execution of its own


def test_create_function_with_durable_config_runs_executions(tmp_path: Path) -> None:
    """A durable function created through the API (a server that had none, so it opens the durable
    service on first need), kept across a restart with its DurableConfig."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package:
        package.write(CODE / "app.py", "app.py")
    args = ["--state-dir", str(tmp_path / "state")]
    with running_server(args, tmp_path) as server:
        client = lambda_client(server.endpoint)
        created = client.create_function(
            FunctionName="api-steps",
            Runtime="python3.12",
            Role="arn:aws:iam::123456789012:role/lambda",
            Handler="app.steps",
            Timeout=30,
            Code={"ZipFile": archive.getvalue()},
            DurableConfig={"ExecutionTimeout": 3600, "RetentionPeriodInDays": 3},
        )
        assert created["DurableConfig"] == {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 3}
        response = client.invoke(FunctionName="api-steps", Payload=b'{"count": 3}')
        assert json.loads(response["Payload"].read())["total"] == 3
        assert response["DurableExecutionArn"]
        with pytest.raises(
            client.exceptions.InvalidParameterValueException, match="RetentionPeriodInDays: 91"
        ):
            client.create_function(
                FunctionName="bad",
                Runtime="python3.12",
                Role="arn:aws:iam::123456789012:role/lambda",
                Handler="app.steps",
                Code={"ZipFile": archive.getvalue()},
                DurableConfig={"RetentionPeriodInDays": 91},
            )
    with running_server(args, tmp_path) as server:
        client = lambda_client(server.endpoint)
        configuration = client.get_function(FunctionName="api-steps")["Configuration"]
        assert configuration["DurableConfig"]["ExecutionTimeout"] == 3600
        listed = client.list_durable_executions_by_function(FunctionName="api-steps")["DurableExecutions"]
        assert [execution["Status"] for execution in listed] == ["SUCCEEDED"]


def rapidboot(server: RapidServer, *args: str) -> str:
    command = [
        sys.executable,
        "-m",
        "rapidboot.rapid_server",
        *args[:1],
        "--endpoint",
        server.endpoint,
        *args[1:],
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_cli_lists_shows_and_completes_a_callback(server: RapidServer, client: Any) -> None:
    arn = start(client, "approval", {"order": 9}, execution_name="cli-approval")
    event_of(client, arn, "CallbackStarted")
    history = rapidboot(server, "executions", "history", arn)
    (line,) = [line for line in history.splitlines() if "CallbackStarted" in line]
    callback_id = json.loads(line[line.index("{") :])["CallbackId"]
    assert "approval" in line  # the operation's name
    rapidboot(server, "callback", "succeed", callback_id, "--result", "ok")
    assert ended(client, arn)["Status"] == "SUCCEEDED"
    shown = json.loads(rapidboot(server, "executions", "get", arn))
    assert shown["Status"] == "SUCCEEDED" and json.loads(shown["Result"])["approved"] == "ok"
    listing = rapidboot(server, "executions", "list", "approval", "--status", "SUCCEEDED")
    assert any(line.startswith("SUCCEEDED") and line.endswith(arn) for line in listing.splitlines())
    other = start(client, "approval", {"order": 10})
    event_of(client, other, "CallbackStarted")
    assert rapidboot(server, "executions", "stop", other).startswith("stopped at ")
    assert client.get_durable_execution(DurableExecutionArn=other)["Status"] == "STOPPED"


def test_a_callback_outlives_a_sigkilled_server(tmp_path: Path) -> None:
    """Killed while the execution waits for its callback: the restarted server knows the callback id from
    the log, and completing it there resumes the execution."""
    config = write_tables(tmp_path / "rapidboot.toml", tables())
    args = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    with supervised(RapidServer(args, tmp_path), check_shutdown=False) as first:
        client = lambda_client(first.endpoint)
        arn = start(client, "approval", {"order": 3})
        callback_id = event_of(client, arn, "CallbackStarted")["CallbackStartedDetails"]["CallbackId"]
        first.stop(signal.SIGKILL)
    with running_server(args, tmp_path) as second:
        client = lambda_client(second.endpoint)
        assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"after the crash")
        record = ended(client, arn)
        assert record["Status"] == "SUCCEEDED", record
        assert json.loads(record["Result"]) == {"approved": "after the crash", "order": 3}


def status_is(client: Any, arn: str, wanted: str) -> None:
    def seen() -> bool:
        return bool(client.get_durable_execution(DurableExecutionArn=arn)["Status"] == wanted)

    shown = client.get_durable_execution
    assert wait_until(seen, DEADLINE_S, interval=0.05), shown(DurableExecutionArn=arn)["Status"]


def test_a_paused_execution_is_not_replayed_until_resumed_and_an_ended_one_is_deleted(
    client: Any, tmp_path: Path
) -> None:
    """PauseDurableExecution: its wait still ends while it is paused, but the function is not invoked
    again until ResumeDurableExecution. DeleteDurableExecution removes only an ended execution."""
    marker = tmp_path / "marker"
    arn = start(client, "waits", {"marker": str(marker), "seconds": 7200})
    event_of(client, arn, "WaitStarted")
    client.pause_durable_execution(DurableExecutionArn=arn, Reason="inspect it")
    status_is(client, arn, "PAUSED")
    event_of(client, arn, "WaitSucceeded")  # time goes on while it is paused (two hours, two seconds)
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "PAUSED"
    assert marker.read_text().split() == ["before"]  # not replayed
    with pytest.raises(client.exceptions.ResourceConflictException):  # it has not ended
        client.delete_durable_execution(DurableExecutionArn=arn)
    client.resume_durable_execution(DurableExecutionArn=arn, Reason="carry on")
    record = ended(client, arn)
    assert record["Status"] == "SUCCEEDED", record
    assert marker.read_text().split() == ["before", "after"]
    kinds = [event["EventType"] for event in events(client, arn)]
    assert kinds.index("ExecutionPaused") < kinds.index("WaitSucceeded") < kinds.index("ExecutionResumed")
    paused = event_of(client, arn, "ExecutionPaused")["ExecutionPausedDetails"]
    assert paused["Reason"]["Payload"] == "inspect it"
    with pytest.raises(client.exceptions.ResourceConflictException):  # only a paused one resumes
        client.resume_durable_execution(DurableExecutionArn=arn)
    deleted = client.delete_durable_execution(DurableExecutionArn=arn)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202 and deleted["DeletionRequestTimestamp"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_durable_execution(DurableExecutionArn=arn)
    listed = client.list_durable_executions_by_function(FunctionName="waits")["DurableExecutions"]
    assert arn not in [execution["DurableExecutionArn"] for execution in listed]


def test_the_cli_pauses_resumes_and_deletes(server: RapidServer, client: Any) -> None:
    arn = start(client, "approval", {"order": 11})
    callback_id = event_of(client, arn, "CallbackStarted")["CallbackStartedDetails"]["CallbackId"]
    assert rapidboot(server, "executions", "pause", arn, "--reason", "hold").startswith("paused: ")
    status_is(client, arn, "PAUSED")
    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"yes")
    event_of(client, arn, "CallbackSucceeded")
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "PAUSED"
    assert rapidboot(server, "executions", "resume", arn).startswith("resumed: ")
    assert ended(client, arn)["Status"] == "SUCCEEDED"
    assert rapidboot(server, "executions", "delete", arn).startswith("deleted at ")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_durable_execution(DurableExecutionArn=arn)


@dataclass
class Killed:
    """An execution whose server was SIGKILLed and started again: its record once ended, what the
    marker file held at the kill and at the end, and its whole history."""

    record: dict[str, Any]
    at_kill: list[str]
    at_end: list[str]
    history: list[dict[str, Any]]


def killed_then_ended(
    tmp_path: Path, function: str, payload: dict[str, Any], kill_at: str, due_s: float, scale: float = 1
) -> Killed:
    """Start an execution, SIGKILL the server once its history has a `kill_at` event, start the server
    again on the same state directory, and wait for the execution's end. The handler appends to the
    file named by the payload's `marker`.

    The next step after `kill_at` is due `due_s` later. A machine under load may see the event and kill
    the server only after that: the step it was meant to die before may have run. Such a run proves
    nothing either way, so it is repeated (up to twice) with durable time 5x slower, and said."""
    for attempt in range(3):
        directory = tmp_path / f"run{attempt}"
        directory.mkdir()
        marker = directory / "marker"
        config = write_tables(directory / "rapidboot.toml", tables())
        args = ["--config", str(config), "--state-dir", str(directory / "state")]
        args += ["--durable-time-scale", f"{scale:g}"]
        with supervised(RapidServer(args, directory), check_shutdown=False) as first:
            client = lambda_client(first.endpoint)
            arn = start(client, function, {**payload, "marker": str(marker)})
            event = event_of(client, arn, kill_at)
            first.stop(signal.SIGKILL)
            late_s = time.time() - event["EventTimestamp"].timestamp()
        if late_s < due_s * 0.8:
            break
        print(f"killed {late_s:.1f} s after {kill_at}, the next step due at {due_s:g} s: again, 5x slower")
        scale, due_s = scale / 5, due_s * 5
    at_kill = marker.read_text().split() if marker.exists() else []
    with running_server(args, directory) as second:
        client = lambda_client(second.endpoint)
        record = ended(client, arn)
        assert any("durable executions resumed" in line for line in second.stderr.lines)
        return Killed(record, at_kill, marker.read_text().split(), events(client, arn))


def test_a_step_killed_between_a_failed_attempt_and_its_retry_retries_once(tmp_path: Path) -> None:
    """The first attempt failed and its RETRY was checkpointed; the server dies before the retry is due
    (two hours, two seconds here). Restarted, it runs the second attempt only: the first is not run
    again, and the attempt count goes on from the log."""
    payload = {"fail": 1, "delay": 7200}
    run = killed_then_ended(tmp_path, "flaky", payload, "StepFailed", due_s=2, scale=3600)
    assert run.at_kill == ["attempt"]  # killed before the retry
    assert run.record["Status"] == "SUCCEEDED", run.record
    assert json.loads(run.record["Result"]) == {"runs": 2}
    assert run.at_end == ["attempt", "attempt"]
    failed = [event for event in run.history if event["EventType"] == "StepFailed"]
    assert [event["StepFailedDetails"]["RetryDetails"]["CurrentAttempt"] for event in failed] == [1]


def test_map_and_parallel_killed_mid_way_run_each_branch_once(tmp_path: Path) -> None:
    """Killed while one parallel branch waits: the map's steps and the other branch, done before the
    kill, are replayed from the log, not run again."""
    payload = {"items": [1, 2, 3], "seconds": 2}
    run = killed_then_ended(tmp_path, "fanout", payload, "WaitStarted", due_s=2)
    assert sorted(run.at_kill) == ["a", "b1", "m0", "m1", "m2"]
    assert run.record["Status"] == "SUCCEEDED", run.record
    assert json.loads(run.record["Result"]) == {"doubled": [2, 4, 6], "branches": ["a", "b"]}
    assert sorted(run.at_end) == ["a", "b1", "b2", "m0", "m1", "m2"]


def test_a_step_failing_after_a_restart_fails_the_execution_once(tmp_path: Path) -> None:
    run = killed_then_ended(tmp_path, "doomed", {"seconds": 2}, "WaitStarted", due_s=2)
    assert run.at_kill == ["before"]
    assert run.record["Status"] == "FAILED", run.record
    assert run.record["Error"]["ErrorMessage"] == "the order cannot be shipped"
    assert run.at_end == ["before", "doomed"]
    kinds = [event["EventType"] for event in run.history]
    assert kinds.count("StepSucceeded") == 1 and kinds.count("StepFailed") == 1
    assert kinds[-1] == "ExecutionFailed"


def gone(client: Any, arn: str) -> bool:
    try:
        client.get_durable_execution(DurableExecutionArn=arn)
    except client.exceptions.ResourceNotFoundException:
        return True
    return False


def test_ended_executions_are_removed_after_their_retention_period(tmp_path: Path) -> None:
    """`retention_period = 1` (a day): with a day a tenth of a second long, an ended execution is removed
    by the periodic sweep while the server runs, and at start when it expired while the server was down;
    a running one never is."""
    config = write_tables(tmp_path / "rapidboot.toml", tables())
    state = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    with running_server(state, tmp_path) as first:  # real time: nothing expires here
        client = lambda_client(first.endpoint)
        earlier = client.invoke(FunctionName="steps", Payload=b'{"count": 1}')["DurableExecutionArn"]
        waiting = start(client, "approval", {"order": 1})
        event_of(client, waiting, "CallbackStarted")
    with running_server([*state, "--durable-time-scale", "864000"], tmp_path) as second:
        client = lambda_client(second.endpoint)
        assert gone(client, earlier)  # removed at start: it ended a day (a tenth of a second) ago
        assert any("past their retention period removed: 1" in line for line in second.stderr.lines)
        arn = client.invoke(FunctionName="steps", Payload=b'{"count": 1}')["DurableExecutionArn"]
        assert wait_until(lambda: gone(client, arn), DEADLINE_S, interval=0.1)  # by the sweep
        assert client.get_durable_execution(DurableExecutionArn=waiting)["Status"] == "RUNNING"


def test_durable_config_is_updated_on_a_durable_function_only(tmp_path: Path) -> None:
    """UpdateFunctionConfiguration changes a durable function's DurableConfig (the model has it); durable
    execution itself is enabled at creation only, as on Lambda, so a plain function is refused."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package:
        package.write(CODE / "app.py", "app.py")
    common = {
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::123456789012:role/lambda",
        "Handler": "app.steps",
        "Code": {"ZipFile": archive.getvalue()},
    }
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:
        client = lambda_client(server.endpoint)
        client.create_function(FunctionName="durable-one", DurableConfig={"ExecutionTimeout": 60}, **common)
        client.create_function(FunctionName="plain-one", **common)
        updated = client.update_function_configuration(
            FunctionName="durable-one", DurableConfig={"ExecutionTimeout": 600, "RetentionPeriodInDays": 2}
        )
        assert updated["DurableConfig"] == {"ExecutionTimeout": 600, "RetentionPeriodInDays": 2}
        arn = client.invoke(FunctionName="durable-one", Payload=b"{}")["DurableExecutionArn"]
        shown = client.get_durable_execution(DurableExecutionArn=arn)
        assert shown["DurableConfig"] == {"ExecutionTimeout": 600, "RetentionPeriodInDays": 2}
        before = client.get_function_configuration(FunctionName="plain-one")
        with pytest.raises(
            client.exceptions.InvalidParameterValueException, match="when a function is created"
        ):
            client.update_function_configuration(
                FunctionName="plain-one", DurableConfig={"ExecutionTimeout": 60}, Timeout=9
            )
        after = client.get_function_configuration(FunctionName="plain-one")
        assert "DurableConfig" not in after and after["RevisionId"] == before["RevisionId"]


def test_the_time_scale_is_printed_at_start_even_with_no_durable_function(tmp_path: Path) -> None:
    """Durable functions may be created later through the API: a scaled clock is said at start anyway."""
    args = ["--state-dir", str(tmp_path / "state"), "--durable-time-scale", "60"]
    with running_server(args, tmp_path) as server:
        assert any("--durable-time-scale 60:" in line for line in server.stderr.lines)
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:
        assert not any("--durable-time-scale" in line for line in server.stderr.lines)


def test_a_paused_execution_stays_paused_across_a_sigkill(tmp_path: Path) -> None:
    config = write_tables(tmp_path / "rapidboot.toml", tables())
    args = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    with supervised(RapidServer(args, tmp_path), check_shutdown=False) as first:
        client = lambda_client(first.endpoint)
        arn = start(client, "approval", {"order": 5})
        callback_id = event_of(client, arn, "CallbackStarted")["CallbackStartedDetails"]["CallbackId"]
        client.pause_durable_execution(DurableExecutionArn=arn)
        status_is(client, arn, "PAUSED")
        first.stop(signal.SIGKILL)
    with running_server(args, tmp_path) as second:
        client = lambda_client(second.endpoint)
        assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "PAUSED"
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result=b"later")
        event_of(client, arn, "CallbackSucceeded")
        assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "PAUSED"
        client.resume_durable_execution(DurableExecutionArn=arn)
        record = ended(client, arn)
        assert record["Status"] == "SUCCEEDED", record
        assert json.loads(record["Result"]) == {"approved": "later", "order": 5}
