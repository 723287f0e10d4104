"""Invoke modes with the real clients, under our bootstrap and awslambdaric: `X-Amz-Log-Type: Tail` (the
caller gets the last 4 KB of its own invoke's log, base64, as boto3's `LogResult`, the AWS CLI and
`rapidboot invoke` expect) and `DryRun` (checked, nothing runs). Event invokes: test_e2e_async.py; streamed
responses: test_e2e_response_stream.py."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import (
    RUNTIMES,
    RapidServer,
    aws_lambda_invoke,
    lambda_client,
    request_id_of,
    running_server,
    runtime_command,
    write_tables,
)

pytestmark = pytest.mark.e2e

HANDLERS = """\
import time


def talks(event, context):
    print(f"talking for {context.aws_request_id}")
    print(f"token {event['token']}")
    return {"token": event["token"]}


def floods(event, context):
    for index in range(event["lines"]):
        print(f"flood line {index:05d}")
    return "done"


def raises(event, context):
    print("about to fail")
    raise RuntimeError("tail of a failure")


def sleeps(event, context):
    print("going to sleep")
    time.sleep(10)


def streams(event, context):
    print("streaming now")
    yield b"a"
    yield b"b"
"""

FUNCTIONS = ("talks", "floods", "raises", "sleeps", "streams", "dry")


@pytest.fixture(scope="module", params=RUNTIMES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    runtime: str = request.param
    root = tmp_path_factory.mktemp(f"tail-{runtime}")
    (root / "code").mkdir()
    (root / "code" / "app.py").write_text(HANDLERS)
    tables: dict[str, dict[str, Any]] = {}
    for name in FUNCTIONS:
        if runtime == "awslambdaric" and name == "streams":
            continue  # awslambdaric does not stream
        handler = "app.talks" if name == "dry" else f"app.{name}"
        table: dict[str, Any] = {
            "code": "code",
            "handler": handler,
            "timeout": 1 if name == "sleeps" else 10,
        }
        command = runtime_command(runtime, handler)
        if command is not None:
            table["command"] = command
        tables[name] = table
    config = write_tables(root / "rapidboot.toml", tables)
    with running_server(["--config", str(config), "--state-dir", str(root / "state")], root) as running:
        yield running


def tail_of(response: dict[str, Any]) -> str:
    return base64.b64decode(response["LogResult"]).decode()


def test_boto3_log_result_is_this_invokes_log(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    response = client.invoke(FunctionName="talks", Payload=b'{"token": "t1"}', LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    log = tail_of(response)
    lines = log.splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert f"talking for {request_id}" in log
    assert "token t1" in log
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert json.loads(response["Payload"].read()) == {"token": "t1"}
    # The server's own log has the same invoke.
    server.report(request_id)


def test_without_tail_there_is_no_log_result(server: RapidServer) -> None:
    response = lambda_client(server.endpoint).invoke(FunctionName="talks", Payload=b'{"token": "t2"}')
    assert "LogResult" not in response


def test_concurrent_tails_never_mix(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)

    def one(token: str) -> tuple[str, str]:
        response = client.invoke(
            FunctionName="talks", Payload=json.dumps({"token": token}).encode(), LogType="Tail"
        )
        return response["ResponseMetadata"]["RequestId"], tail_of(response)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, [f"c{index}" for index in range(12)]))
    for index, (request_id, log) in enumerate(results):
        assert f"token c{index}\n" in log
        others = [f"token c{other}\n" for other in range(12) if other != index]
        assert not any(other in log for other in others)
        assert log.count("START RequestId:") == 1
        assert f"START RequestId: {request_id} " in log


def test_a_long_log_is_cut_to_its_last_4_kb(server: RapidServer) -> None:
    response = lambda_client(server.endpoint).invoke(
        FunctionName="floods", Payload=b'{"lines": 1000}', LogType="Tail"
    )
    raw = base64.b64decode(response["LogResult"])
    assert len(raw) == 4096
    log = raw.decode()
    assert "flood line 00999\n" in log
    assert "flood line 00000\n" not in log
    assert log.splitlines()[-1].startswith("REPORT RequestId: ")


def test_a_function_error_and_a_timeout_have_their_tails(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    failed = client.invoke(FunctionName="raises", Payload=b"{}", LogType="Tail")
    assert failed["FunctionError"] == "Unhandled"
    log = tail_of(failed)
    assert "about to fail" in log
    assert "tail of a failure" in log  # the runtime logs the uncaught error
    timed_out = client.invoke(FunctionName="sleeps", Payload=b"{}", LogType="Tail")
    request_id = timed_out["ResponseMetadata"]["RequestId"]
    log = tail_of(timed_out)
    assert "going to sleep" in log
    assert "Task timed out after 1.00 seconds" in log
    assert f"REPORT RequestId: {request_id}\t" in log
    assert "Status: timeout" in log


def test_event_invokes_ignore_tail_and_bad_log_types_are_refused(server: RapidServer) -> None:
    accepted = server.invoke(
        "talks", {"token": "ev"}, headers={"X-Amz-Invocation-Type": "Event", "X-Amz-Log-Type": "Tail"}
    )
    assert accepted.status_code == 202
    assert "X-Amz-Log-Result" not in accepted.headers
    refused = server.invoke("talks", {"token": "bad"}, headers={"X-Amz-Log-Type": "Everything"})
    assert refused.status_code == 400
    assert refused.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert "X-Amz-Log-Type" in refused.json()["message"]
    request_id_of(refused)


def test_aws_cli_prints_the_log_result(server: RapidServer, tmp_path: Path) -> None:
    completed = aws_lambda_invoke(
        server.endpoint,
        tmp_path,
        "--function-name",
        "talks",
        "--log-type",
        "Tail",
        "--payload",
        '{"token": "cli"}',
        str(tmp_path / "out.json"),
    )
    assert completed.returncode == 0, completed.stderr
    output = json.loads(completed.stdout)
    assert "token cli" in base64.b64decode(output["LogResult"]).decode()
    assert json.loads((tmp_path / "out.json").read_text()) == {"token": "cli"}


def rapidboot_invoke(server: RapidServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "invoke", "--endpoint", server.endpoint, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rapidboot_invoke_prints_the_tail_decoded(server: RapidServer) -> None:
    completed = rapidboot_invoke(server, "talks", "--payload", '{"token": "rb"}', "--log-type", "Tail")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {"token": "rb"}
    assert "token rb\n" in completed.stderr
    assert "REPORT RequestId: " in completed.stderr


def test_rapidboot_invoke_stream_prints_chunks_and_errors(
    server: RapidServer, request: pytest.FixtureRequest
) -> None:
    failed = rapidboot_invoke(server, "raises", "--stream")
    assert failed.returncode == 1
    assert "rapidboot: function error (RuntimeError): tail of a failure" in failed.stderr
    if request.node.callspec.params["server"] == "awslambdaric":
        return  # awslambdaric does not stream responses: its part ends here
    completed = rapidboot_invoke(server, "streams", "--stream", "--log-type", "Tail")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "ab\n"
    assert "streaming now" in completed.stderr


def test_boto3_dry_run_checks_and_runs_nothing(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    response = client.invoke(FunctionName="dry", InvocationType="DryRun", Payload=b'{"token": "dry"}')
    assert response["StatusCode"] == 204
    assert response["Payload"].read() == b""
    assert server.runtime_processes("dry") == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="no-such-function", InvocationType="DryRun", Payload=b"{}")
    with pytest.raises(client.exceptions.InvalidRequestContentException):
        client.invoke(FunctionName="dry", InvocationType="DryRun", Payload=b"{not json")
    assert server.runtime_processes("dry") == []
    assert not server.lines_mentioning("[dry ")
