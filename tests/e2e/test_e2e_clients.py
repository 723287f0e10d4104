"""Real clients against the server: boto3, the AWS CLI, curl and `rapidboot invoke`."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.config
import botocore.exceptions
import pytest
from e2e_harness import (
    ACCOUNT_ARN_PREFIX,
    AWS_CLI,
    SUITE_FUNCTIONS,
    RapidServer,
    aws_lambda_invoke,
    function_arn,
    server_environment,
)
from e2e_harness import lambda_client as new_lambda_client

pytestmark = pytest.mark.e2e

CLIENT_TIMEOUT_S = 60.0


@pytest.fixture
def lambda_client(suite_server: RapidServer) -> Iterator[Any]:
    client = new_lambda_client(suite_server.endpoint)
    yield client
    client.close()


# --- boto3 ----------------------------------------------------------------------------------------


def test_boto3_invoke(lambda_client: Any) -> None:
    event = {"from": "boto3", "n": 1}
    result = lambda_client.invoke(FunctionName="echo", Payload=json.dumps(event))
    assert result["StatusCode"] == 200
    assert "FunctionError" not in result
    assert result["ExecutedVersion"] == "$LATEST"
    assert json.loads(result["Payload"].read()) == event
    assert result["ResponseMetadata"]["RequestId"]


def test_boto3_invoke_by_arn_and_qualifier(lambda_client: Any) -> None:
    arn = function_arn("context")
    result = lambda_client.invoke(FunctionName=arn, Payload=b"{}")
    assert result["StatusCode"] == 200
    context = json.loads(result["Payload"].read())
    assert context["invoked_function_arn"] == arn
    assert context["aws_request_id"] == result["ResponseMetadata"]["RequestId"]

    result = lambda_client.invoke(FunctionName="echo", Qualifier="$LATEST", Payload=b'{"q": 1}')
    assert result["StatusCode"] == 200
    assert json.loads(result["Payload"].read()) == {"q": 1}


def test_boto3_function_error(lambda_client: Any) -> None:
    result = lambda_client.invoke(FunctionName="fail", Payload=b'{"n": 3}')
    assert result["StatusCode"] == 200
    assert result["FunctionError"] == "Unhandled"
    body = json.loads(result["Payload"].read())
    assert (body["errorType"], body["errorMessage"]) == ("CustomError", "something bad: 3")


def test_boto3_unknown_function(lambda_client: Any) -> None:
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as caught:
        lambda_client.invoke(FunctionName="no-such-function", Payload=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert caught.value.response["Error"]["Message"]


def test_boto3_oversized_payload(lambda_client: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        lambda_client.invoke(FunctionName="echo-big", Payload=b'"' + b"d" * 6_291_455 + b'"')
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"


def test_boto3_list_functions(lambda_client: Any) -> None:
    result = lambda_client.list_functions()
    functions = {entry["FunctionName"]: entry for entry in result["Functions"]}
    assert set(functions) == {spec.name for spec in SUITE_FUNCTIONS}
    assert "NextMarker" not in result
    context = functions["context"]
    assert context["FunctionArn"] == ACCOUNT_ARN_PREFIX + "context"
    assert context["MemorySize"] == 256
    assert context["Timeout"] == 10
    assert context["Handler"] == "handlers.context_fields"
    assert functions["timeout-reset"]["Timeout"] == 1


# --- AWS CLI --------------------------------------------------------------------------------------


@functools.cache
def aws_cli_raw_payload_flags() -> tuple[str, ...]:
    """AWS CLI v2 needs `--cli-binary-format raw-in-base64-out` for a JSON --payload; v1 (the venv's awscli)
    takes the payload raw and rejects that option."""
    version = subprocess.run(
        [str(AWS_CLI), "--version"], capture_output=True, timeout=CLIENT_TIMEOUT_S, check=False
    )
    output = (version.stdout + version.stderr).decode()
    return () if output.startswith("aws-cli/1.") else ("--cli-binary-format", "raw-in-base64-out")


def run_aws_cli(
    server: RapidServer, tmp_path: Path, function: str, payload: str
) -> tuple[dict[str, Any], bytes]:
    outfile = tmp_path / "response.json"
    completed = aws_lambda_invoke(
        server.endpoint,
        tmp_path,
        "--function-name",
        function,
        *aws_cli_raw_payload_flags(),
        "--payload",
        payload,
        str(outfile),
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout), outfile.read_bytes()


def test_aws_cli_invoke(suite_server: RapidServer, tmp_path: Path) -> None:
    summary, body = run_aws_cli(suite_server, tmp_path, "echo", '{"from": "aws-cli"}')
    assert summary["StatusCode"] == 200
    assert summary["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in summary
    assert json.loads(body) == {"from": "aws-cli"}


def test_aws_cli_function_error(suite_server: RapidServer, tmp_path: Path) -> None:
    summary, body = run_aws_cli(suite_server, tmp_path, function_arn("fail"), '{"n": 5}')
    assert summary["StatusCode"] == 200
    assert summary["FunctionError"] == "Unhandled"
    assert json.loads(body)["errorMessage"] == "something bad: 5"


# --- curl -----------------------------------------------------------------------------------------


def run_curl(
    server: RapidServer, tmp_path: Path, function: str, data: str
) -> tuple[int, dict[str, str], bytes]:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    headers_file, body_file = tmp_path / "headers.txt", tmp_path / "body.bin"
    completed = subprocess.run(
        [
            curl,
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--dump-header",
            str(headers_file),
            "--output",
            str(body_file),
            "--data-binary",
            data,
            f"{server.endpoint}/2015-03-31/functions/{function}/invocations",
        ],
        capture_output=True,
        timeout=CLIENT_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    status_line, *header_lines = headers_file.read_text().strip().splitlines()
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body_file.read_bytes()


def test_curl_invoke(suite_server: RapidServer, tmp_path: Path) -> None:
    # curl sends Content-Type: application/x-www-form-urlencoded; the payload must still arrive as sent.
    status, headers, body = run_curl(suite_server, tmp_path, "echo", '{"from": "curl"}')
    assert status == 200
    assert json.loads(body) == {"from": "curl"}
    assert headers["x-amz-executed-version"] == "$LATEST"
    assert headers["x-amzn-requestid"]


def test_curl_unknown_function(suite_server: RapidServer, tmp_path: Path) -> None:
    status, headers, body = run_curl(suite_server, tmp_path, "nope", "{}")
    assert status == 404
    assert headers["x-amzn-errortype"].split(":")[0] == "ResourceNotFoundException"
    assert json.loads(body)["Type"] == "User"


# --- rapidboot invoke -----------------------------------------------------------------------------


def rapidboot_invoke(server: RapidServer, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "invoke", *args, "--endpoint", server.endpoint],
        env=server_environment(),
        capture_output=True,
        timeout=CLIENT_TIMEOUT_S,
        check=False,
    )


def test_rapidboot_invoke_prints_the_response(suite_server: RapidServer) -> None:
    completed = rapidboot_invoke(suite_server, "echo", "--payload", '{"from": "rapidboot-cli"}')
    assert completed.returncode == 0, completed.stderr.decode()
    assert json.loads(completed.stdout) == {"from": "rapidboot-cli"}


def test_rapidboot_invoke_payload_file(suite_server: RapidServer, tmp_path: Path) -> None:
    payload_file = tmp_path / "event.json"
    payload_file.write_text(json.dumps({"from": "file", "list": [1, 2]}))
    completed = rapidboot_invoke(suite_server, "echo", "--payload-file", str(payload_file))
    assert completed.returncode == 0, completed.stderr.decode()
    assert json.loads(completed.stdout) == {"from": "file", "list": [1, 2]}


def test_rapidboot_invoke_function_error_exits_non_zero(suite_server: RapidServer) -> None:
    completed = rapidboot_invoke(suite_server, "fail", "--payload", '{"n": 9}')
    assert completed.returncode != 0
    assert json.loads(completed.stdout)["errorMessage"] == "something bad: 9"


def test_rapidboot_invoke_service_error_exits_non_zero(suite_server: RapidServer) -> None:
    completed = rapidboot_invoke(suite_server, "no-such-function", "--payload", "{}")
    assert completed.returncode != 0
    output = completed.stdout + completed.stderr
    assert b"ResourceNotFoundException" in output, output


def test_rapidboot_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("rapidboot")
    assert script.exists(), "pip install -e . should provide the `rapidboot` console script"
    completed = subprocess.run(
        [str(script), "serve", "--help"],
        env={**server_environment(), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        timeout=CLIENT_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    assert b"--port" in completed.stdout
