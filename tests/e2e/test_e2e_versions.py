"""Versions and aliases, driven by boto3 and the AWS CLI against a real server: publish immutable
snapshots, invoke `name:1`, `Qualifier=2`, an ARN with a qualifier and a 90/10 weighted alias, and see
from inside the handler which version ran and by which ARN; the service's refusals; a restart."""

from __future__ import annotations

import base64
import io
import json
import math
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import aws_lambda, lambda_client, running_server

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/deploy"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def package(code: int) -> bytes:
    """A zip whose handler says which code ran, and what the runtime was told of the invoke."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "app.py",
            "import os\n\n\ndef handler(event, context):\n"
            f"    return {{'code': {code}, 'version': context.function_version,"
            " 'arn': context.invoked_function_arn, 'memory': context.memory_limit_in_mb,"
            " 'stream': context.log_stream_name,"
            " 'init': os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']}\n",
        )
    return buffer.getvalue()


def invoke(client: Any, name: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """The executed version (X-Amz-Executed-Version) and what the handler returned."""
    response = client.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    assert "FunctionError" not in response, response
    return response["ExecutedVersion"], json.loads(response["Payload"].read())


def binomial_bounds(n: int, p: float, alpha: float) -> tuple[int, int]:
    """The widest [low, high] outside which a Binomial(n, p) count falls with probability < alpha."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    low, tail = 0, 0.0
    while tail + pmf[low] < alpha / 2:
        tail += pmf[low]
        low += 1
    high, tail = n, 0.0
    while tail + pmf[high] < alpha / 2:
        tail += pmf[high]
        high -= 1
    return low, high


def create(client: Any, name: str, code: int) -> dict[str, Any]:
    created: dict[str, Any] = client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": package(code)},
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name)
    return created


def test_boto3_versions_and_a_weighted_alias(tmp_path: Path) -> None:
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:
        client = lambda_client(server.endpoint)
        create(client, "shop", 1)
        executed, result = invoke(client, "shop")
        assert (executed, result["code"], result["version"], result["arn"]) == (
            "$LATEST",
            1,
            "$LATEST",
            ARN + "shop",
        )

        updated = client.update_function_code(FunctionName="shop", ZipFile=package(2))
        client.get_waiter("function_updated_v2").wait(FunctionName="shop")
        one = client.publish_version(
            FunctionName="shop", CodeSha256=updated["CodeSha256"], Description="first"
        )
        assert (one["Version"], one["FunctionArn"], one["Description"]) == ("1", ARN + "shop:1", "first")
        assert one["CodeSha256"] == updated["CodeSha256"]
        # Nothing changed since: the service answers with the latest version, publishing none.
        assert client.publish_version(FunctionName="shop")["Version"] == "1"

        client.update_function_code(FunctionName="shop", ZipFile=package(3))
        client.update_function_configuration(FunctionName="shop", MemorySize=256)
        client.get_waiter("function_updated_v2").wait(FunctionName="shop")
        two = client.publish_version(FunctionName="shop")
        assert (two["Version"], two["MemorySize"]) == ("2", 256)

        # Each version runs its own code and configuration; $LATEST follows the updates.
        executed, result = invoke(client, "shop:1")
        assert executed == "1"
        assert (result["code"], result["version"], result["arn"], result["memory"]) == (
            2,
            "1",
            ARN + "shop:1",
            "128",
        )
        assert "/[1]" in result["stream"]
        executed, result = invoke(client, "shop", Qualifier="2")
        assert (executed, result["code"], result["version"], result["memory"]) == ("2", 3, "2", "256")
        assert invoke(client, ARN + "shop:2")[1]["arn"] == ARN + "shop:2"
        tail = client.invoke(FunctionName="shop:1", LogType="Tail")["LogResult"]
        assert "Version: 1\n" in base64.b64decode(tail).decode()  # its START line
        streamed = client.invoke_with_response_stream(FunctionName="shop", Qualifier="1", Payload=b"{}")
        chunks = b"".join(
            e["PayloadChunk"]["Payload"] for e in streamed["EventStream"] if "PayloadChunk" in e
        )
        assert (streamed["ExecutedVersion"], json.loads(chunks)["version"]) == ("1", "1")
        executed, result = invoke(client, "shop:$LATEST")
        assert (executed, result["code"], result["version"], result["arn"]) == (
            "$LATEST",
            3,
            "$LATEST",
            ARN + "shop:$LATEST",
        )
        client.update_function_code(FunctionName="shop", ZipFile=package(4))
        client.get_waiter("function_updated_v2").wait(FunctionName="shop")
        assert invoke(client, "shop")[1]["code"] == 4
        assert invoke(client, "shop:1")[1]["code"] == 2  # a version never changes

        first = client.list_versions_by_function(FunctionName="shop", MaxItems=2)
        assert [v["Version"] for v in first["Versions"]] == ["$LATEST", "1"]
        rest = client.list_versions_by_function(FunctionName="shop", Marker=first["NextMarker"])
        assert [v["Version"] for v in rest["Versions"]] == ["2"] and "NextMarker" not in rest
        everything = client.get_paginator("list_functions").paginate(FunctionVersion="ALL", MaxItems=2)
        listed = [(f["FunctionName"], f["Version"]) for f in everything.build_full_result()["Functions"]]
        assert listed == [("shop", "$LATEST"), ("shop", "1"), ("shop", "2")]
        assert [f["Version"] for f in client.list_functions()["Functions"]] == ["$LATEST"]
        described = client.get_function(FunctionName="shop", Qualifier="1")["Configuration"]
        assert (described["Version"], described["FunctionArn"], described["MemorySize"]) == (
            "1",
            ARN + "shop:1",
            128,
        )

        alias = client.create_alias(
            FunctionName="shop",
            Name="live",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}},
        )
        assert alias["AliasArn"] == ARN + "shop:live"
        runs = Counter()
        for _ in range(200):
            executed, result = invoke(client, "shop:live")
            runs[executed] += 1
            # the context is the invoke's: the version that ran, invoked by the alias's ARN
            assert (result["version"], result["arn"]) == (executed, ARN + "shop:live")
            assert result["code"] == {"1": 2, "2": 3}[executed]
        low, high = binomial_bounds(200, 0.1, 1e-6)
        assert set(runs) <= {"1", "2"}
        assert low <= runs["2"] <= high, (runs, low, high)

        configuration = client.get_function_configuration(FunctionName="shop", Qualifier="live")
        assert (configuration["FunctionArn"], configuration["Version"]) == (ARN + "shop:live", "1")
        assert [
            a["Name"] for a in client.list_aliases(FunctionName="shop", FunctionVersion="2")["Aliases"]
        ] == ["live"]
        moved = client.update_alias(
            FunctionName="shop",
            Name="live",
            FunctionVersion="2",
            RoutingConfig={},
            RevisionId=alias["RevisionId"],
        )
        assert "RoutingConfig" not in moved and moved["RevisionId"] != alias["RevisionId"]
        assert invoke(client, ARN + "shop:live")[0] == "2"

        client.delete_function(FunctionName="shop", Qualifier="1")  # no alias routes to it now
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.invoke(FunctionName="shop:1")
        client.delete_alias(FunctionName="shop", Name="live")
        assert client.list_aliases(FunctionName="shop")["Aliases"] == []
        client.delete_function(FunctionName="shop")
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.invoke(FunctionName="shop:2")
        # Created anew, the function starts its versions at 1 again.
        create(client, "shop", 5)
        assert client.publish_version(FunctionName="shop")["Version"] == "1"


def test_aws_cli_publishes_routes_and_deletes(tmp_path: Path) -> None:
    """The same life cycle with the AWS CLI v1 (each call is a process: the 200-invoke split is boto3's
    test above; here a few invokes of the alias show what the CLI reports)."""
    zips = []
    for code in (1, 2, 3):
        zips.append(tmp_path / f"code{code}.zip")
        zips[-1].write_bytes(package(code))
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:

        def cli(*args: str) -> Any:
            return aws_lambda(server.endpoint, tmp_path, *args)

        cli("create-function", "--function-name", "cli", "--runtime", "python3.12", "--role", ROLE,
            "--handler", "app.handler", "--zip-file", f"fileb://{zips[0]}")  # fmt: skip
        cli("wait", "function-active-v2", "--function-name", "cli")
        cli("update-function-code", "--function-name", "cli", "--zip-file", f"fileb://{zips[1]}")
        cli("wait", "function-updated-v2", "--function-name", "cli")
        assert cli("publish-version", "--function-name", "cli")["Version"] == "1"
        updated = cli("update-function-code", "--function-name", "cli", "--zip-file", f"fileb://{zips[2]}")
        published = cli("publish-version", "--function-name", "cli", "--code-sha256", updated["CodeSha256"])
        assert published["Version"] == "2"
        listed = cli("list-versions-by-function", "--function-name", "cli")
        assert [v["Version"] for v in listed["Versions"]] == ["$LATEST", "1", "2"]
        alias = cli("create-alias", "--function-name", "cli", "--name", "live", "--function-version", "1",
                    "--routing-config", '{"AdditionalVersionWeights": {"2": 0.1}}')  # fmt: skip
        assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.1}}
        assert cli("get-alias", "--function-name", "cli", "--name", "live")["FunctionVersion"] == "1"
        out = tmp_path / "out.json"
        for _ in range(3):
            answer = cli("invoke", "--function-name", "cli", "--qualifier", "live", str(out))
            result = json.loads(out.read_text())
            assert answer["ExecutedVersion"] in ("1", "2")
            assert (result["version"], result["arn"]) == (answer["ExecutedVersion"], ARN + "cli:live")
        answer = cli("invoke", "--function-name", "cli:2", str(out))
        assert (answer["ExecutedVersion"], json.loads(out.read_text())["code"]) == ("2", 3)
        cli("delete-alias", "--function-name", "cli", "--name", "live")
        cli("delete-function", "--function-name", "cli", "--qualifier", "1")
        listed = cli("list-versions-by-function", "--function-name", "cli")
        assert [v["Version"] for v in listed["Versions"]] == ["$LATEST", "2"]
        cli("delete-function", "--function-name", "cli")
        assert cli("list-functions")["Functions"] == []


def error_code(call: Any, **kwargs: Any) -> tuple[int, str, str]:
    """The status, error type and message of a call the server refuses."""
    import botocore.exceptions

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


def test_refusals_name_the_problem_and_change_nothing(tmp_path: Path) -> None:
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:
        client = lambda_client(server.endpoint)
        created = create(client, "strict", 1)
        one = client.publish_version(FunctionName="strict")
        client.update_function_code(FunctionName="strict", ZipFile=package(2))
        client.publish_version(FunctionName="strict")
        alias = client.create_alias(FunctionName="strict", Name="live", FunctionVersion="1")

        # Unknown versions and aliases
        for qualifier in ("9", "nope"):
            status, code, message = error_code(
                client.get_function, FunctionName="strict", Qualifier=qualifier
            )
            assert (status, code) == (404, "ResourceNotFoundException")
            assert message == f"Function not found: {ARN}strict:{qualifier}"
            assert error_code(client.invoke, FunctionName=f"strict:{qualifier}")[:2] == (
                404,
                "ResourceNotFoundException",
            )
        assert error_code(client.get_alias, FunctionName="strict", Name="nope")[:2] == (
            404,
            "ResourceNotFoundException",
        )
        assert error_code(client.create_alias, FunctionName="strict", Name="x", FunctionVersion="7")[:2] == (
            404,
            "ResourceNotFoundException",
        )
        assert error_code(client.invoke, FunctionName="strict:9", InvocationType="Event")[:2] == (
            404,
            "ResourceNotFoundException",
        )
        # PublishVersion's preconditions
        status, code, message = error_code(
            client.publish_version, FunctionName="strict", RevisionId=created["RevisionId"]
        )
        assert (status, code) == (412, "PreconditionFailedException") and "RevisionId" in message
        status, code, message = error_code(
            client.publish_version, FunctionName="strict", CodeSha256=one["CodeSha256"]
        )
        assert (status, code) == (400, "InvalidParameterValueException") and "CodeSha256" in message
        # Aliases: the request validation, then the semantics
        weights = {"AdditionalVersionWeights": {"2": 1.5}}
        status, code, message = error_code(
            client.create_alias, FunctionName="strict", Name="bad", FunctionVersion="1", RoutingConfig=weights
        )
        assert (status, code) == (
            400,
            "ValidationException",
        ) and "routingConfig.additionalVersionWeights" in message
        status, code, message = error_code(
            client.create_alias, FunctionName="strict", Name="7", FunctionVersion="1"
        )
        assert (status, code) == (400, "ValidationException") and "at 'name'" in message
        latest = {"AdditionalVersionWeights": {"1": 0.5}}
        status, code, message = error_code(
            client.create_alias,
            FunctionName="strict",
            Name="bad",
            FunctionVersion="$LATEST",
            RoutingConfig=latest,
        )
        assert (status, code) == (400, "InvalidParameterValueException") and "$LATEST" in message
        itself = {"AdditionalVersionWeights": {"1": 0.5}}
        status, code, message = error_code(
            client.create_alias, FunctionName="strict", Name="bad", FunctionVersion="1", RoutingConfig=itself
        )
        assert (status, code) == (400, "InvalidParameterValueException") and "already included" in message
        two = {"AdditionalVersionWeights": {"1": 0.2, "2": 0.2}}
        assert error_code(
            client.create_alias,
            FunctionName="strict",
            Name="bad",
            FunctionVersion="$LATEST",
            RoutingConfig=two,
        )[1] == ("InvalidParameterValueException")
        assert error_code(client.create_alias, FunctionName="strict", Name="live", FunctionVersion="2")[
            :2
        ] == (
            409,
            "ResourceConflictException",
        )
        status, code, _ = error_code(
            client.update_alias, FunctionName="strict", Name="live", FunctionVersion="2", RevisionId="stale"
        )
        assert (status, code) == (412, "PreconditionFailedException")
        # Deleting versions
        status, code, message = error_code(client.delete_function, FunctionName="strict", Qualifier="1")
        assert (status, code) == (409, "ResourceConflictException") and "[live]" in message
        assert error_code(client.delete_function, FunctionName="strict", Qualifier="$LATEST")[1] == (
            "InvalidParameterValueException"
        )
        # Provisioned concurrency: never on $LATEST
        status, code, message = error_code(
            client.put_provisioned_concurrency_config,
            FunctionName="strict",
            Qualifier="$LATEST",
            ProvisionedConcurrentExecutions=1,
        )
        assert (status, code) == (400, "InvalidParameterValueException") and "$LATEST" in message
        assert error_code(client.get_provisioned_concurrency_config, FunctionName="strict", Qualifier="live")[
            :2
        ] == (
            404,
            "ProvisionedConcurrencyConfigNotFoundException",
        )

        # Nothing changed
        assert [
            v["Version"] for v in client.list_versions_by_function(FunctionName="strict")["Versions"]
        ] == [
            "$LATEST",
            "1",
            "2",
        ]
        assert client.list_aliases(FunctionName="strict")["Aliases"] == [
            {k: v for k, v in alias.items() if k != "ResponseMetadata"}
        ]
        assert (
            client.list_provisioned_concurrency_configs(FunctionName="strict")[
                "ProvisionedConcurrencyConfigs"
            ]
            == []
        )
        assert invoke(client, "strict:live")[1]["code"] == 1


def test_versions_aliases_and_provisioning_survive_a_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with running_server(["--state-dir", str(state_dir)], tmp_path) as server:
        client = lambda_client(server.endpoint)
        create(client, "kept", 1)
        client.publish_version(FunctionName="kept")
        client.update_function_code(FunctionName="kept", ZipFile=package(2))
        client.publish_version(FunctionName="kept")
        client.update_function_code(FunctionName="kept", ZipFile=package(3))
        assert client.publish_version(FunctionName="kept")["Version"] == "3"
        client.delete_function(FunctionName="kept", Qualifier="3")
        client.create_alias(
            FunctionName="kept",
            Name="canary",
            FunctionVersion="1",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}},
        )
        put = client.put_provisioned_concurrency_config(
            FunctionName="kept", Qualifier="canary", ProvisionedConcurrentExecutions=1
        )
        assert (put["RequestedProvisionedConcurrentExecutions"], put["Status"]) == (1, "READY")
        # The alias's provisioned environment serves version 1 (initialised before the invoke).
        assert invoke(client, "kept:1")[1]["init"] == "provisioned-concurrency"
        assert invoke(client, "kept:2")[1]["init"] == "on-demand"

    with running_server(["--state-dir", str(state_dir)], tmp_path) as server:
        client = lambda_client(server.endpoint)
        assert [v["Version"] for v in client.list_versions_by_function(FunctionName="kept")["Versions"]] == [
            "$LATEST",
            "1",
            "2",
        ]
        alias = client.get_alias(FunctionName="kept", Name="canary")
        assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
        assert (invoke(client, "kept:1")[1]["code"], invoke(client, "kept:2")[1]["code"]) == (1, 2)
        assert invoke(client, "kept:1")[1]["init"] == "provisioned-concurrency"
        listed = client.list_provisioned_concurrency_configs(FunctionName="kept")[
            "ProvisionedConcurrencyConfigs"
        ]
        assert [(c["FunctionArn"], c["RequestedProvisionedConcurrentExecutions"]) for c in listed] == [
            (ARN + "kept:canary", 1)
        ]
        assert invoke(client, "kept")[1]["code"] == 3
        # Version 3 was deleted: its number is not given again.
        assert client.publish_version(FunctionName="kept")["Version"] == "4"
        client.delete_provisioned_concurrency_config(FunctionName="kept", Qualifier="canary")
        assert (
            client.list_provisioned_concurrency_configs(FunctionName="kept")["ProvisionedConcurrencyConfigs"]
            == []
        )
