"""Layers, tags, reserved concurrency and event invoke configs through the control plane of a real server,
driven by boto3 and the AWS CLI: a published layer is what the function imports from /opt/python, a
reservation throttles the invokes past it, an event invoke config steers the async queue's retries and
destinations, and all of it is still there after a restart on the same --state-dir."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import (
    AWS_CLI,
    FUNCTIONS_DIR,
    aws_cli_environment,
    hold_invoke,
    lambda_client,
    ok_body,
    running_server,
    server_environment,
    wait_until,
)

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/deploy"
ARN = "arn:aws:lambda:us-east-1:123456789012"
RESERVED_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"

HANDLER = """\
import layer_mod


def handler(event, context):
    return {"from": layer_mod.WHERE, "file": layer_mod.__file__}
"""


def zipped(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def layer_zip(where: str) -> bytes:
    return zipped({"python/layer_mod.py": f"WHERE = {where!r}\n"})


def create(
    client: Any, name: str, code: bytes, handler: str = "app.handler", **settings: Any
) -> dict[str, Any]:
    created: dict[str, Any] = client.create_function(
        FunctionName=name, Runtime="python3.12", Role=ROLE, Handler=handler, Code={"ZipFile": code},
        **settings,
    )  # fmt: skip
    client.get_waiter("function_active_v2").wait(FunctionName=name)
    return created


def invoke(client: Any, name: str, event: object = None) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
    assert "FunctionError" not in response, response
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


def error_of(call: Any, **arguments: Any) -> tuple[str, str]:
    """The service error a boto3 call answers with: its code and message."""
    import botocore.exceptions

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**arguments)
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def test_a_published_layer_is_imported_from_opt_python_and_survives_its_deletion_and_a_restart(
    tmp_path: Path,
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    with running_server(state, tmp_path) as server:
        client = lambda_client(server.endpoint)
        first = client.publish_layer_version(
            LayerName="deps", Content={"ZipFile": layer_zip("layer v1")}, CompatibleRuntimes=["python3.12"],
            CompatibleArchitectures=["x86_64"], Description="first", LicenseInfo="MIT",
        )  # fmt: skip
        assert (first["Version"], first["LayerVersionArn"]) == (1, f"{ARN}:layer:deps:1")
        assert first["Content"]["CodeSize"] == len(layer_zip("layer v1"))
        second = client.publish_layer_version(LayerName="deps", Content={"ZipFile": layer_zip("layer v2")})
        assert second["Version"] == 2

        created = create(client, "uses-layer", zipped({"app.py": HANDLER}), Layers=[first["LayerVersionArn"]])
        assert created["Layers"] == [
            {"Arn": first["LayerVersionArn"], "CodeSize": first["Content"]["CodeSize"]}
        ]
        body = invoke(client, "uses-layer")
        assert body["from"] == "layer v1"
        assert body["file"].endswith("/python/layer_mod.py")  # found on the merged /opt's python/
        client.update_function_configuration(FunctionName="uses-layer", Layers=[second["LayerVersionArn"]])
        client.get_waiter("function_updated_v2").wait(FunctionName="uses-layer")
        assert invoke(client, "uses-layer")["from"] == "layer v2"

        # Reads: by name and version, by ARN, listed with a filter and in pages.
        assert client.get_layer_version(LayerName="deps", VersionNumber=1)["Description"] == "first"
        by_arn = client.get_layer_version_by_arn(Arn=second["LayerVersionArn"])
        assert by_arn["Content"]["CodeSha256"] == second["Content"]["CodeSha256"]
        listed = client.list_layers()["Layers"]
        assert [(layer["LayerName"], layer["LatestMatchingVersion"]["Version"]) for layer in listed] == [
            ("deps", 2)
        ]
        matching = client.list_layers(CompatibleRuntime="python3.12")["Layers"]
        assert [layer["LatestMatchingVersion"]["Version"] for layer in matching] == [1]
        page = client.list_layer_versions(LayerName="deps", MaxItems=1)
        assert [v["Version"] for v in page["LayerVersions"]] == [2]
        rest = client.list_layer_versions(LayerName="deps", MaxItems=1, Marker=page["NextMarker"])
        assert [v["Version"] for v in rest["LayerVersions"]] == [1] and "NextMarker" not in rest

        # Deleting the version in use: the function keeps it; nothing new may use it.
        client.delete_layer_version(LayerName="deps", VersionNumber=2)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_layer_version(LayerName="deps", VersionNumber=2)
        code, message = error_of(
            client.create_function, FunctionName="late", Runtime="python3.12", Role=ROLE,
            Handler="app.handler", Code={"ZipFile": zipped({"app.py": HANDLER})},
            Layers=[second["LayerVersionArn"]],
        )  # fmt: skip
        assert (code, message) == (
            "InvalidParameterValueException",
            f"Layer version {ARN}:layer:deps:2 does not exist.",
        )
        assert invoke(client, "uses-layer")["from"] == "layer v2"

    with running_server(state, tmp_path) as server:
        client = lambda_client(server.endpoint)
        assert invoke(client, "uses-layer")["from"] == "layer v2"
        assert [v["Version"] for v in client.list_layer_versions(LayerName="deps")["LayerVersions"]] == [1]
        third = client.publish_layer_version(LayerName="deps", Content={"ZipFile": layer_zip("layer v3")})
        assert third["Version"] == 3, "a deleted version's number is never used again"


def test_layer_limits_and_references_are_checked(tmp_path: Path) -> None:
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:
        client = lambda_client(server.endpoint)
        arns = [
            client.publish_layer_version(LayerName=f"l{i}", Content={"ZipFile": layer_zip(str(i))})[
                "LayerVersionArn"
            ]
            for i in range(6)
        ]
        code = zipped({"app.py": HANDLER})
        settings = {"FunctionName": "f", "Runtime": "python3.12", "Role": ROLE, "Handler": "app.handler"}
        too_many = error_of(client.create_function, **settings, Code={"ZipFile": code}, Layers=arns)
        assert too_many == (
            "InvalidParameterValueException",
            "Layers: Cannot reference more than 5 layers (6 given).",
        )
        elsewhere = arns[0].replace("us-east-1", "eu-west-1")
        _, message = error_of(client.create_function, **settings, Code={"ZipFile": code}, Layers=[elsewhere])
        assert "expected to be in region us-east-1" in message
        s3 = error_of(
            client.publish_layer_version, LayerName="s3", Content={"S3Bucket": "bucket", "S3Key": "k"}
        )
        assert s3[0] == "InvalidParameterValueException" and "Content.S3Bucket" in s3[1]
        broken = error_of(client.publish_layer_version, LayerName="broken", Content={"ZipFile": b"not a zip"})
        assert broken[0] == "InvalidParameterValueException" and "Content.ZipFile" in broken[1]
        # Over 50 MB zipped: the request is too large (the service's 413), and nothing is stored.
        over = os.urandom(53 * 1024 * 1024)
        too_large = error_of(client.publish_layer_version, LayerName="big", Content={"ZipFile": over})
        assert too_large == (
            "RequestEntityTooLargeException",
            "Request must be smaller than 69905067 bytes for the PublishLayerVersion operation",
        )
        assert error_of(client.create_function, **settings, Code={"ZipFile": over})[0] == too_large[0]
        assert client.list_functions()["Functions"] == []
        assert [layer["LayerName"] for layer in client.list_layers()["Layers"]] == [f"l{i}" for i in range(6)]


def test_tags_round_trip_and_survive_a_restart(tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    arn = f"{ARN}:function:tagged"
    with running_server(state, tmp_path) as server:
        client = lambda_client(server.endpoint)
        create(
            client, "tagged", zipped({"app.py": HANDLER.replace("import layer_mod", "")}), Tags={"team": "a"}
        )
        assert client.get_function(FunctionName="tagged")["Tags"] == {"team": "a"}
        revision = client.get_function_configuration(FunctionName="tagged")["RevisionId"]
        client.tag_resource(Resource=arn, Tags={"stage": "prod", "team": "b"})
        client.untag_resource(Resource=arn, TagKeys=["stage"])
        assert client.list_tags(Resource=arn)["Tags"] == {"team": "b"}
        assert client.get_function_configuration(FunctionName="tagged")["RevisionId"] == revision

        reserved = error_of(client.tag_resource, Resource=arn, Tags={"aws:owner": "x"})
        assert reserved[0] == "InvalidParameterValueException" and "aws:" in reserved[1]
        many = error_of(client.tag_resource, Resource=arn, Tags={f"k{i}": "v" for i in range(50)})
        assert "50" in many[1]
        qualified = error_of(client.list_tags, Resource=f"{arn}:1")
        assert "versions" in qualified[1]
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.list_tags(Resource=f"{ARN}:function:nothing")
        assert client.list_tags(Resource=arn)["Tags"] == {"team": "b"}

    with running_server(state, tmp_path) as server:
        client = lambda_client(server.endpoint)
        assert client.list_tags(Resource=arn)["Tags"] == {"team": "b"}


def chaos_package() -> bytes:
    """The scaling suite's event-steered handler (chaos.handler) and the FIFO-gated one (escape.gated)."""
    return zipped(
        {
            "chaos.py": (FUNCTIONS_DIR / "scaling" / "chaos.py").read_text(),
            "escape.py": (FUNCTIONS_DIR / "escape" / "escape.py").read_text(),
        }
    )


def test_reserved_concurrency_throttles_as_put_and_is_lifted_by_delete(tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    with running_server(state, tmp_path) as server:
        client = lambda_client(server.endpoint)
        client.create_function(
            FunctionName="capped", Runtime="python3.12", Role=ROLE, Handler="escape.gated",
            Code={"ZipFile": chaos_package()}, Timeout=30,
        )  # fmt: skip
        assert client.get_function_concurrency(FunctionName="capped") == _without_metadata({})
        warm = hold_invoke(server, "capped", "warm", tmp_path)
        ok_body(warm.release(), "warm")
        put = client.put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=1)
        assert put["ReservedConcurrentExecutions"] == 1
        assert client.get_function(FunctionName="capped")["Concurrency"] == {
            "ReservedConcurrentExecutions": 1
        }
        account = client.get_account_settings()
        assert account["AccountLimit"]["ConcurrentExecutions"] == 1000
        assert account["AccountLimit"]["UnreservedConcurrentExecutions"] == 999
        assert account["AccountUsage"]["FunctionCount"] == 1
        assert account["AccountUsage"]["TotalCodeSize"] == len(chaos_package())

        held = hold_invoke(server, "capped", "first", tmp_path)
        assert held.pid == warm.pid, "a reservation keeps the warm environment (Lambda does not recycle it)"
        with pytest.raises(client.exceptions.TooManyRequestsException) as raised:
            client.invoke(FunctionName="capped", Payload=b'{"token": "second"}')
        assert raised.value.response["Reason"] == RESERVED_REASON
        ok_body(held.release(), "first")

        client.put_function_concurrency(FunctionName="capped", ReservedConcurrentExecutions=0)
        with pytest.raises(client.exceptions.TooManyRequestsException):
            client.invoke(FunctionName="capped", Payload=b'{"token": "zero"}')
        over = error_of(
            client.put_function_concurrency, FunctionName="capped", ReservedConcurrentExecutions=901
        )
        assert over == (
            "InvalidParameterValueException",
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [100]. "
            "(account limit 1000 (--max-concurrency), 0 reserved by other functions)",
        )
        assert client.get_function_concurrency(FunctionName="capped")["ReservedConcurrentExecutions"] == 0

    with running_server(state, tmp_path) as server:
        client = lambda_client(server.endpoint)
        assert client.get_function_concurrency(FunctionName="capped")["ReservedConcurrentExecutions"] == 0
        with pytest.raises(client.exceptions.TooManyRequestsException):
            client.invoke(FunctionName="capped", Payload=b'{"token": "still zero"}')
        client.delete_function_concurrency(FunctionName="capped")
        assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(FunctionName="capped")
        ok_body(hold_invoke(server, "capped", "free", tmp_path).release(), "free")


def _without_metadata(body: dict[str, Any]) -> Any:
    class Equal:
        def __eq__(self, other: object) -> bool:
            return (
                isinstance(other, dict)
                and {k: v for k, v in other.items() if k != "ResponseMetadata"} == body
            )

    return Equal()


def test_event_invoke_config_steers_retries_and_destinations(tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    env = {**server_environment(), "RAPIDBOOT_RETRY_BASE_DELAY": "0.05"}
    failures, successes = tmp_path / "failures.jsonl", tmp_path / "successes.jsonl"
    with running_server(state, tmp_path, env) as server:
        client = lambda_client(server.endpoint)
        create(client, "flaky", chaos_package(), "chaos.handler")
        create(client, "sink", chaos_package(), "chaos.handler")
        warm_pid = invoke(client, "flaky", {"token": "warm"})["pid"]
        config = client.put_function_event_invoke_config(
            FunctionName="flaky", MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": f"file:{failures}"},
                               "OnSuccess": {"Destination": f"{ARN}:function:sink"}},
        )  # fmt: skip
        assert config["FunctionArn"] == f"{ARN}:function:flaky:$LATEST"
        assert config["MaximumRetryAttempts"] == 1
        assert config["DestinationConfig"]["OnSuccess"] == {"Destination": f"{ARN}:function:sink"}
        assert invoke(client, "flaky", {"token": "still warm"})["pid"] == warm_pid

        client.invoke(
            FunctionName="flaky", InvocationType="Event", Payload=b'{"action": "raise", "token": "t1"}'
        )
        assert wait_until(failures.exists, 30), server.output_tail()
        record = json.loads(failures.read_text().splitlines()[0])
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 2  # one run and the one retry configured

        updated = client.update_function_event_invoke_config(
            FunctionName="flaky", MaximumRetryAttempts=0,
            DestinationConfig={"OnSuccess": {"Destination": f"file:{successes}"}},
        )  # fmt: skip
        assert updated["DestinationConfig"]["OnFailure"] == {"Destination": f"file:{failures}"}, "kept"
        client.invoke(
            FunctionName="flaky", InvocationType="Event", Payload=b'{"action": "raise", "token": "t2"}'
        )
        assert wait_until(lambda: len(failures.read_text().splitlines()) == 2, 30), server.output_tail()
        second = json.loads(failures.read_text().splitlines()[1])
        assert second["requestContext"]["approximateInvokeCount"] == 1
        client.invoke(FunctionName="flaky", InvocationType="Event", Payload=b'{"token": "t3"}')
        assert wait_until(successes.exists, 30), server.output_tail()
        assert json.loads(successes.read_text())["responsePayload"]["token"] == "t3"

        sqs = error_of(
            client.put_function_event_invoke_config, FunctionName="flaky",
            DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:queue"}},
        )  # fmt: skip
        assert (
            sqs[0] == "InvalidParameterValueException" and "DestinationConfig.OnFailure.Destination" in sqs[1]
        )

    with running_server(state, tmp_path, env) as server:
        client = lambda_client(server.endpoint)
        listed = client.list_function_event_invoke_configs(FunctionName="flaky")["FunctionEventInvokeConfigs"]
        assert [c["MaximumRetryAttempts"] for c in listed] == [0]
        client.delete_function_event_invoke_config(FunctionName="flaky")
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_function_event_invoke_config(FunctionName="flaky")


def test_aws_cli_publishes_a_layer_a_function_uses(tmp_path: Path) -> None:
    layer = tmp_path / "layer.zip"
    layer.write_bytes(layer_zip("from the CLI"))
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:

        def aws(*args: str) -> Any:
            done = subprocess.run(
                [sys.executable, str(AWS_CLI), "lambda", *args, "--endpoint-url", server.endpoint,
                 "--output", "json"],
                env=aws_cli_environment(tmp_path), capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return json.loads(done.stdout) if done.stdout.strip() else None

        published = aws(
            "publish-layer-version", "--layer-name", "cli-layer", "--zip-file", f"fileb://{layer}",
            "--compatible-runtimes", "python3.12",
        )  # fmt: skip
        assert published["LayerVersionArn"] == f"{ARN}:layer:cli-layer:1"
        client = lambda_client(server.endpoint)
        create(client, "cli-user", zipped({"app.py": HANDLER}), Layers=[published["LayerVersionArn"]])
        assert invoke(client, "cli-user")["from"] == "from the CLI"
        versions = aws("list-layer-versions", "--layer-name", "cli-layer")["LayerVersions"]
        assert [v["Version"] for v in versions] == [1]
