"""Event (asynchronous) invokes, end to end (issue 6): 202 once durably queued, retries, destinations, and
no accepted event lost when the server is SIGKILLed.

Functions run tests/e2e/functions/async_events/events.py, which appends one JSON line per run to its
$OUTPUT_FILE: the tests count runs from those files, not from what the server says. Retry delays are set to
a fraction of a second (`retry_base_delay`), and `RAPIDBOOT_MIN_EVENT_AGE` lets `maximum_event_age` go
below the service's 60 s, so every wait here is bounded and short.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    RapidServer,
    aws_lambda_invoke,
    lambda_client,
    running_server,
    server_environment,
    wait_until,
    write_tables,
)

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT_S = 15.0  # a bound: a healthy run delivers in well under a second
EVENT_LIMIT = 1_048_576


def events_function(code_root: Path, output: Path, **keys: Any) -> dict[str, Any]:
    return {
        "code": str(code_root / "functions" / "async_events"),
        "handler": "events.handler",
        "timeout": 10,
        "environment": {"OUTPUT_FILE": str(output)},
        "retry_base_delay": 0.05,
        **keys,
    }


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSON-lines file; a line still being appended (no newline yet) is not one."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().split(b"\n")[:-1] if line.strip()]


def wait_for_lines(path: Path, count: int, timeout: float = DELIVERY_TIMEOUT_S) -> list[dict[str, Any]]:
    assert wait_until(lambda: len(read_lines(path)) >= count, timeout), (
        f"{path.name}: {read_lines(path)} after {timeout} s, expected {count} line(s)"
    )
    return read_lines(path)


def wait_for_record(path: Path, request_id: str, timeout: float = DELIVERY_TIMEOUT_S) -> dict[str, Any]:
    """The destination record of one invocation: files are shared by the tests of a function, so a record
    is picked by its request id, never by position."""

    def found() -> list[dict[str, Any]]:
        return [r for r in read_lines(path) if r.get("requestContext", {}).get("requestId") == request_id]

    assert wait_until(lambda: len(found()) >= 1, timeout), (
        f"{path.name}: no record for {request_id} after {timeout} s: {read_lines(path)}"
    )
    (record,) = found()
    return record


def event_invoke(server: RapidServer, name: str, payload: Any) -> str:
    response = server.invoke(name, payload, headers={"X-Amz-Invocation-Type": "Event"})
    assert response.status_code == 202, response.text
    assert response.content == b""
    request_id = response.headers["x-amzn-RequestId"]
    assert request_id
    return request_id


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("async")


@pytest.fixture(scope="module")
def server(code_root: Path, workdir: Path) -> Iterator[RapidServer]:
    """One server for the module; each test owns its function and its files."""
    out = workdir / "out"
    out.mkdir()
    tables = {
        "record": events_function(
            code_root, out / "record.jsonl", on_success="file:out/record-success.jsonl"
        ),
        "flaky": events_function(
            code_root,
            out / "flaky.jsonl",
            on_success="file:out/flaky-success.jsonl",
            on_failure="file:out/flaky-failure.jsonl",
        ),
        "doomed": events_function(
            code_root,
            out / "doomed.jsonl",
            maximum_retry_attempts=1,
            on_success="file:out/doomed-success.jsonl",
            on_failure="file:out/doomed-failure.jsonl",
        ),
        "throttled": events_function(
            code_root,
            out / "throttled.jsonl",
            handler="gated.handler",
            reserved_concurrency=1,
            maximum_event_age=0.5,
            on_failure="file:out/throttled-failure.jsonl",
        ),
        "disabled": events_function(
            code_root,
            out / "disabled.jsonl",
            reserved_concurrency=0,
            on_failure="file:out/disabled-failure.jsonl",
        ),
        "chained": events_function(code_root, out / "chained.jsonl", on_success="function:sink"),
        "sink": events_function(code_root, out / "sink.jsonl"),
    }
    config = write_tables(workdir / "rapidboot.toml", tables)
    env = {**server_environment(), "RAPIDBOOT_MIN_EVENT_AGE": "0.1"}
    with running_server(
        ["--config", str(config), "--state-dir", str(workdir / "state")], workdir, env
    ) as server:
        yield server


def test_boto3_event_invoke_is_queued_then_run_with_its_request_id(
    server: RapidServer, workdir: Path
) -> None:
    client = lambda_client(server.endpoint)
    result = client.invoke(FunctionName="record", InvocationType="Event", Payload=b'{"token": "boto3"}')
    assert result["StatusCode"] == 202
    assert result["Payload"].read() == b""
    assert "FunctionError" not in result
    request_id = result["ResponseMetadata"]["RequestId"]

    (run,) = wait_for_lines(workdir / "out" / "record.jsonl", 1)
    assert run == {"request_id": request_id, "event": {"token": "boto3"}}
    record = wait_for_record(workdir / "out" / "record-success.jsonl", request_id)
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:record:$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"token": "boto3"}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"token": "boto3", "run": 1}


def test_aws_cli_event_invoke(server: RapidServer, workdir: Path, tmp_path: Path) -> None:
    completed = aws_lambda_invoke(
        server.endpoint,
        tmp_path,
        "--function-name",
        "sink",
        "--invocation-type",
        "Event",
        "--payload",
        '{"token": "cli"}',  # awscli v1 sends a blob argument as the string's bytes
        str(tmp_path / "out.json"),
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["StatusCode"] == 202
    assert (tmp_path / "out.json").read_bytes() == b""
    assert wait_until(
        lambda: any(run["event"] == {"token": "cli"} for run in read_lines(workdir / "out" / "sink.jsonl")),
        DELIVERY_TIMEOUT_S,
    )


def test_event_payload_limit_is_one_megabyte(server: RapidServer, workdir: Path) -> None:
    def body(size: int, token: str) -> bytes:
        prefix = json.dumps({"token": token, "pad": ""})[:-3].encode()  # '{"token": "...", "pad": '
        filler = size - len(prefix) - 3
        return prefix + b'"' + b"x" * filler + b'"}'

    too_big = body(EVENT_LIMIT + 1, "too-big")
    assert len(too_big) == EVENT_LIMIT + 1
    response = server.invoke("flaky", body=too_big, headers={"X-Amz-Invocation-Type": "Event"})
    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert response.json()["message"] == (
        f"{EVENT_LIMIT + 1} byte payload is too large for the Event invocation type "
        f"(limit {EVENT_LIMIT} bytes)"
    )
    not_json = server.invoke("flaky", body=b"{oops", headers={"X-Amz-Invocation-Type": "Event"})
    assert not_json.status_code == 400
    assert not_json.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"

    at_limit = body(EVENT_LIMIT, "at-limit")
    assert len(at_limit) == EVENT_LIMIT
    response = server.invoke("flaky", body=at_limit, headers={"X-Amz-Invocation-Type": "Event"})
    assert response.status_code == 202
    # The accepted one runs; the refused ones never did (they were never queued).
    wait_for_record(workdir / "out" / "flaky-success.jsonl", response.headers["x-amzn-RequestId"])
    tokens = [run["event"]["token"] for run in read_lines(workdir / "out" / "flaky.jsonl")]
    assert "at-limit" in tokens
    assert "too-big" not in tokens
    (workdir / "out" / "flaky-success.jsonl").unlink()
    (workdir / "out" / "flaky.jsonl").unlink()


def test_function_errors_are_retried_then_success_goes_to_on_success(
    server: RapidServer, workdir: Path
) -> None:
    request_id = event_invoke(server, "flaky", {"token": "twice", "fail_times": 2})
    record = wait_for_record(workdir / "out" / "flaky-success.jsonl", request_id)
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["requestId"] == request_id
    assert record["responsePayload"] == {"token": "twice", "run": 3}
    runs = [
        run for run in read_lines(workdir / "out" / "flaky.jsonl") if run["event"].get("token") == "twice"
    ]
    assert len(runs) == 3
    # As on Lambda, every attempt is the same invocation: the runtime sees the 202's request id each time.
    assert {run["request_id"] for run in runs} == {request_id}
    assert not (workdir / "out" / "flaky-failure.jsonl").exists()


def test_retries_exhausted_go_to_on_failure(server: RapidServer, workdir: Path) -> None:
    request_id = event_invoke(server, "doomed", {"token": "never", "fail_times": 99})
    record = wait_for_record(workdir / "out" / "doomed-failure.jsonl", request_id)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # maximum_retry_attempts = 1
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestPayload"] == {"token": "never", "fail_times": 99}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "run 2 of never fails on purpose"
    assert len(read_lines(workdir / "out" / "doomed.jsonl")) == 2
    assert not (workdir / "out" / "doomed-success.jsonl").exists()


def test_throttled_event_expires_to_on_failure(server: RapidServer, workdir: Path) -> None:
    """The function's one unit of reserved concurrency is held by a sync invoke: the event is throttled
    and retried with backoff until it is older than maximum_event_age (0.5 s here). The holder runs until
    the test has seen that record: it waits at a gate the test closes then."""
    with socket.create_server(("127.0.0.1", 0)) as gate, ThreadPoolExecutor(1) as pool:
        gate.settimeout(DELIVERY_TIMEOUT_S)
        holder_event = {"token": "holder", "gate": gate.getsockname()[1]}
        holder = pool.submit(server.invoke, "throttled", holder_event)
        inside, _ = gate.accept()  # the holder's handler is running: it has the one unit of concurrency
        with inside:
            request_id = event_invoke(server, "throttled", {"token": "starved"})
            record = wait_for_record(workdir / "out" / "throttled-failure.jsonl", request_id)
        assert holder.result().status_code == 200
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestPayload"] == {"token": "starved"}
    assert record["responseContext"] == {"statusCode": 429, "executedVersion": "$LATEST"}
    assert "responsePayload" not in record
    assert [run["event"]["token"] for run in read_lines(workdir / "out" / "throttled.jsonl")] == ["holder"]


def test_reserved_concurrency_zero_sends_events_to_on_failure_unrun(
    server: RapidServer, workdir: Path
) -> None:
    """Reference section 7: with reserved concurrency 0 the service sends async events on without retries."""
    request_id = event_invoke(server, "disabled", {"token": "off"})
    record = wait_for_record(workdir / "out" / "disabled-failure.jsonl", request_id)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"token": "off"}
    assert "responsePayload" not in record
    assert not (workdir / "out" / "disabled.jsonl").exists()
    assert server.runtime_processes("disabled") == []


def test_function_destination_receives_the_record_as_its_event(server: RapidServer, workdir: Path) -> None:
    request_id = event_invoke(server, "chained", {"token": "relay"})
    deadline_check = lambda: [  # noqa: E731
        run for run in read_lines(workdir / "out" / "sink.jsonl") if run["event"].get("version") == "1.0"
    ]
    assert wait_until(lambda: bool(deadline_check()), DELIVERY_TIMEOUT_S), read_lines(
        workdir / "out" / "sink.jsonl"
    )
    (run,) = deadline_check()
    record = run["event"]
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["functionArn"].endswith(":function:chained:$LATEST")
    assert record["requestPayload"] == {"token": "relay"}
    assert record["responsePayload"] == {"token": "relay", "run": 1}
    assert run["request_id"] != request_id  # the destination's invoke is an invocation of its own


def test_sigkill_loses_no_accepted_event(code_root: Path, tmp_path: Path) -> None:
    """Queue events for a slow function, SIGKILL the server while some run and the rest wait, restart it on
    the same --state-dir: every token is processed at least once."""
    output = tmp_path / "runs.jsonl"
    config = write_tables(
        tmp_path / "rapidboot.toml",
        {"slow": events_function(code_root, output, reserved_concurrency=2)},
    )
    args = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    tokens = [f"t{i}" for i in range(12)]
    with running_server(args, tmp_path, check_shutdown=False) as first:
        for token in tokens:
            event_invoke(first, "slow", {"token": token, "sleep": 0.25})
        wait_for_lines(output, 2)  # some have finished, two are in flight, most still queued
        first.record_processes()  # so the harness reaps the runtimes the dead server leaves behind
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        assert first.process.wait(EXIT_TIMEOUT_S) == -signal.SIGKILL
    done_before = {run["event"]["token"] for run in read_lines(output)}
    assert done_before < set(tokens), "every event finished before the kill: the test proved nothing"

    with running_server(args, tmp_path) as second:
        assert wait_until(
            lambda: {run["event"]["token"] for run in read_lines(output)} == set(tokens), 30.0
        ), f"missing after restart: {set(tokens) - {run['event']['token'] for run in read_lines(output)}}"
        # The events the first server had in flight went back to the queue, not only the waiting ones.
        assert second.lines_mentioning("in flight when the last server stopped are queued again")


def test_rapidboot_invoke_event(server: RapidServer, workdir: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "rapidboot.rapid_server",
            "invoke",
            "sink",
            "--endpoint",
            server.endpoint,
            "--invocation-type",
            "Event",
            "--payload",
            '{"token": "from-cli"}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        env=server_environment(),
    )
    assert completed.returncode == 0, completed.stderr
    request_id = completed.stdout.strip()
    assert wait_until(
        lambda: any(run["request_id"] == request_id for run in read_lines(workdir / "out" / "sink.jsonl")),
        DELIVERY_TIMEOUT_S,
    )


def test_event_to_unknown_function_is_refused(server: RapidServer) -> None:
    response = httpx.post(
        server.endpoint + server.invoke_path("nope"),
        content=b"{}",
        headers={"X-Amz-Invocation-Type": "Event"},
    )
    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
