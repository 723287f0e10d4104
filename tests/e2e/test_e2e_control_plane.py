"""Deploying to rapidboot with the tools one deploys to Lambda with: boto3 and the AWS CLI drive the
control plane of a real server (create from a zip, waiters, updates, a stale RevisionId, paging, delete),
and what the API created is still there, invokable, after a restart on the same --state-dir."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import aws_lambda, lambda_client, running_server

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/deploy"


def package(version: int) -> bytes:
    """A zip whose handler says which version of the code ran, and what its configuration is."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "app.py",
            "import os\n\n\ndef handler(event, context):\n"
            f"    return {{'version': {version}, 'memory': context.memory_limit_in_mb,"
            " 'stage': os.environ.get('STAGE')}\n",
        )
    return buffer.getvalue()


def invoke(client: Any, name: str) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response, response
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


def test_boto3_life_cycle_survives_a_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with running_server(["--state-dir", str(state_dir)], tmp_path) as server:
        client = lambda_client(server.endpoint)
        created = client.create_function(
            FunctionName="deployed",
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": package(1)},
        )
        assert created["State"] == "Pending"
        assert created["CodeSize"] == len(package(1))
        client.get_waiter("function_active_v2").wait(FunctionName="deployed")
        assert invoke(client, "deployed") == {"version": 1, "memory": "128", "stage": None}

        updated = client.update_function_code(FunctionName="deployed", ZipFile=package(2))
        assert updated["LastUpdateStatus"] == "InProgress"
        assert updated["RevisionId"] != created["RevisionId"]
        assert updated["CodeSha256"] != created["CodeSha256"]
        client.get_waiter("function_updated_v2").wait(FunctionName="deployed")
        assert invoke(client, "deployed")["version"] == 2

        configured = client.update_function_configuration(
            FunctionName="deployed",
            MemorySize=256,
            Environment={"Variables": {"STAGE": "prod"}},
            RevisionId=updated["RevisionId"],
        )
        assert invoke(client, "deployed") == {"version": 2, "memory": "256", "stage": "prod"}
        # A stale RevisionId is refused, and changes nothing.
        with pytest.raises(client.exceptions.PreconditionFailedException, match="RevisionId"):
            client.update_function_configuration(
                FunctionName="deployed", MemorySize=512, RevisionId=updated["RevisionId"]
            )
        current = client.get_function_configuration(FunctionName="deployed")
        assert (current["MemorySize"], current["RevisionId"]) == (256, configured["RevisionId"])

        for name in ("page-a", "page-b", "page-c"):
            client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": package(3)},
            )
        first = client.list_functions(MaxItems=2)
        assert [f["FunctionName"] for f in first["Functions"]] == ["deployed", "page-a"]
        rest = client.list_functions(MaxItems=2, Marker=first["NextMarker"])
        assert [f["FunctionName"] for f in rest["Functions"]] == ["page-b", "page-c"]
        assert "NextMarker" not in rest
        client.delete_function(FunctionName="page-b")
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_function(FunctionName="page-b")

    with running_server(["--state-dir", str(state_dir)], tmp_path) as server:
        client = lambda_client(server.endpoint)
        names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
        assert names == ["deployed", "page-a", "page-c"]
        assert (
            client.get_function(FunctionName="deployed")["Configuration"]["RevisionId"]
            == configured["RevisionId"]
        )
        assert invoke(client, "deployed") == {"version": 2, "memory": "256", "stage": "prod"}


def test_aws_cli_deploys_and_configured_functions_are_read_only(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return 'configured'\n")
    zip_path = tmp_path / "function.zip"
    zip_path.write_bytes(package(7))
    args = ["--state-dir", str(tmp_path / "state"), "--code", str(code), "--handler", "app.handler"]
    with running_server(args, tmp_path) as server:
        home = tmp_path
        created = aws_lambda(
            server.endpoint, home, "create-function", "--function-name", "cli", "--runtime", "python3.12",
            "--role", ROLE, "--handler", "app.handler", "--zip-file", f"fileb://{zip_path}",
        )  # fmt: skip
        assert created["CodeSize"] == zip_path.stat().st_size
        aws_lambda(server.endpoint, home, "wait", "function-active-v2", "--function-name", "cli")
        assert invoke(lambda_client(server.endpoint), "cli")["version"] == 7
        listed = aws_lambda(server.endpoint, home, "list-functions", "--page-size", "1")
        assert sorted(f["FunctionName"] for f in listed["Functions"]) == ["cli", "function"]

        client = lambda_client(server.endpoint)
        with pytest.raises(client.exceptions.ResourceConflictException, match="read-only"):
            client.update_function_configuration(FunctionName="function", MemorySize=512)
        with pytest.raises(client.exceptions.ResourceConflictException, match="read-only"):
            client.delete_function(FunctionName="function")
        assert client.get_function_configuration(FunctionName="function")["MemorySize"] == 128
        aws_lambda(server.endpoint, home, "delete-function", "--function-name", "cli")
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.invoke(FunctionName="cli")
