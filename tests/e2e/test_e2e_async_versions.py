"""Event (asynchronous) invokes of a version or an alias, driven by boto3: the event runs that version (the
handler writes `context.function_version` to a file), is still queued after a restart, follows that
qualifier's event invoke config, and fails visibly when its alias is deleted before it runs. Also an
Event invoke of a tenant-isolated function."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import lambda_client, running_server, server_environment, wait_until

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/deploy"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"
WAIT_S = 30.0

# Writes `<out>/<id>.<version>` holding the invoked ARN and the tenant; with `wait`, first says it started
# and waits for the gate file; with `fail`, raises after writing.
HANDLER = """\
import json, pathlib, time


def handler(event, context):
    out = pathlib.Path(event["out"])
    if event.get("wait"):
        (out / (event["id"] + ".started")).write_text("")
        while not (out / "gate").exists():
            time.sleep(0.01)
    mark = out / f"{event['id']}.{context.function_version}.{CODE}"
    mark.write_text(json.dumps([context.invoked_function_arn, context.tenant_id]))
    if event.get("fail"):
        raise RuntimeError("failed on purpose")
    return "ok"
"""


def package(code: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER.replace("CODE", str(code)))
    return buffer.getvalue()


def create(client: Any, name: str, **extra: Any) -> None:
    client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": package(1)},
        **extra,
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name)


def publish(client: Any, name: str, code: int) -> str:
    client.update_function_code(FunctionName=name, ZipFile=package(code))
    client.get_waiter("function_updated_v2").wait(FunctionName=name)
    version: str = client.publish_version(FunctionName=name)["Version"]
    return version


def send(client: Any, name: str, out: Path, event_id: str, **event: Any) -> None:
    payload = json.dumps({"out": str(out), "id": event_id, **event}).encode()
    assert client.invoke(FunctionName=name, InvocationType="Event", Payload=payload)["StatusCode"] == 202


def marks(out: Path, event_id: str) -> list[str]:
    return sorted(path.name for path in out.glob(f"{event_id}.*") if not path.name.endswith(".started"))


def wait_marks(out: Path, event_id: str, count: int = 1) -> list[str]:
    assert wait_until(lambda: len(marks(out, event_id)) >= count, WAIT_S), marks(out, event_id)
    return marks(out, event_id)


def records(path: Path, count: int) -> list[dict[str, Any]]:
    def lines() -> list[str]:
        return path.read_text().splitlines() if path.exists() else []

    assert wait_until(lambda: len(lines()) >= count, WAIT_S), lines()
    return [json.loads(line) for line in lines()]


def test_event_invokes_of_versions_and_aliases_run_them_and_survive_a_restart(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    state = ["--state-dir", str(tmp_path / "state")]
    with running_server(state, tmp_path) as server:
        client = lambda_client(server.endpoint)
        create(client, "jobs")
        assert publish(client, "jobs", 1) == "1"
        assert publish(client, "jobs", 2) == "2"
        client.update_function_code(FunctionName="jobs", ZipFile=package(3))  # $LATEST is code 3
        client.get_waiter("function_updated_v2").wait(FunctionName="jobs")
        client.create_alias(FunctionName="jobs", Name="live", FunctionVersion="2")

        send(client, "jobs:1", out, "by-name")
        send(client, ARN + "jobs:live", out, "by-alias")
        client.invoke(
            FunctionName="jobs",
            Qualifier="1",
            InvocationType="Event",
            Payload=json.dumps({"out": str(out), "id": "by-qualifier"}).encode(),
        )
        send(client, "jobs", out, "unqualified")
        assert wait_marks(out, "by-name") == ["by-name.1.1"]
        assert wait_marks(out, "by-alias") == ["by-alias.2.2"]
        assert wait_marks(out, "by-qualifier") == ["by-qualifier.1.1"]
        assert wait_marks(out, "unqualified") == ["unqualified.$LATEST.3"]
        assert json.loads((out / "by-alias.2.2").read_text())[0] == ARN + "jobs:live"
        assert json.loads((out / "by-name.1.1").read_text())[0] == ARN + "jobs:1"

        # In flight when the server stops: back to the queue, with its qualifier.
        send(client, "jobs:1", out, "across", wait=True)
        assert wait_until((out / "across.started").exists, WAIT_S)
    assert marks(out, "across") == []
    (out / "gate").write_text("")
    with running_server(state, tmp_path) as server:
        assert wait_marks(out, "across") == ["across.1.1"]


def test_each_qualifier_has_its_own_event_invoke_config(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    env = {**server_environment(), "RAPIDBOOT_RETRY_BASE_DELAY": "0.05"}
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path, env) as server:
        client = lambda_client(server.endpoint)
        create(client, "flaky")
        publish(client, "flaky", 1)
        client.create_alias(FunctionName="flaky", Name="live", FunctionVersion="1")
        client.create_alias(FunctionName="flaky", Name="doomed", FunctionVersion="1")
        files = {q: tmp_path / f"{q}.jsonl" for q in ("latest", "one", "live")}
        for qualifier, retries, file in ((None, 1, "latest"), ("1", 0, "one"), ("live", 2, "live")):
            given = {"Qualifier": qualifier} if qualifier else {}
            put = client.put_function_event_invoke_config(
                FunctionName="flaky",
                MaximumRetryAttempts=retries,
                DestinationConfig={"OnFailure": {"Destination": f"file:{files[file]}"}},
                **given,
            )
            assert put["FunctionArn"] == ARN + f"flaky:{qualifier or '$LATEST'}"
        got = client.get_function_event_invoke_config(FunctionName="flaky:live")
        assert (got["FunctionArn"], got["MaximumRetryAttempts"]) == (ARN + "flaky:live", 2)
        updated = client.update_function_event_invoke_config(
            FunctionName="flaky", Qualifier="live", MaximumEventAgeInSeconds=600
        )
        assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (2, 600)
        listed = client.list_function_event_invoke_configs(FunctionName="flaky")["FunctionEventInvokeConfigs"]
        assert sorted(c["FunctionArn"] for c in listed) == sorted(
            ARN + f"flaky:{q}" for q in ("$LATEST", "1", "live")
        )
        missing = client.exceptions.ResourceNotFoundException
        with pytest.raises(missing):
            client.put_function_event_invoke_config(
                FunctionName="flaky", Qualifier="7", MaximumRetryAttempts=0
            )

        send(client, "flaky:1", out, "one", fail=True)
        send(client, "flaky:live", out, "live", fail=True)
        send(client, "flaky", out, "latest", fail=True)
        (one,) = records(files["one"], 1)
        (live,) = records(files["live"], 1)
        (latest,) = records(files["latest"], 1)
        assert [
            (r["requestContext"]["functionArn"], r["requestContext"]["approximateInvokeCount"])
            for r in (one, live, latest)
        ] == [(ARN + "flaky:1", 1), (ARN + "flaky:live", 3), (ARN + "flaky:$LATEST", 2)]
        assert live["responseContext"]["executedVersion"] == "1"

        client.delete_function_event_invoke_config(FunctionName="flaky", Qualifier="1")
        with pytest.raises(missing):
            client.get_function_event_invoke_config(FunctionName="flaky", Qualifier="1")
        assert client.get_function_event_invoke_config(FunctionName="flaky")["MaximumRetryAttempts"] == 1

        # An alias deleted while its event waits: the event fails, to the function's on-failure
        # destination and the log, never silently. One poller (reserved concurrency 1) is kept busy first.
        client.put_function_concurrency(FunctionName="flaky", ReservedConcurrentExecutions=1)
        send(client, "flaky:live", out, "blocker", wait=True)
        assert wait_until((out / "blocker.started").exists, WAIT_S)
        send(client, "flaky:doomed", out, "orphan")
        client.delete_alias(FunctionName="flaky", Name="doomed")
        (out / "gate").write_text("")
        (_, orphan) = records(files["latest"], 2)
        assert orphan["requestContext"]["functionArn"] == ARN + "flaky:doomed"
        assert orphan["requestContext"]["approximateInvokeCount"] == 0
        assert marks(out, "orphan") == []
        server.wait_for_line(lambda line: "flaky:doomed" in line and "no longer exists" in line)

        # A deleted alias's config goes with it: made again, the alias has none.
        client.delete_alias(FunctionName="flaky", Name="live")
        client.create_alias(FunctionName="flaky", Name="live", FunctionVersion="1")
        with pytest.raises(missing):
            client.get_function_event_invoke_config(FunctionName="flaky", Qualifier="live")


def test_an_event_invoke_of_a_tenant_isolated_function_runs_as_its_tenant(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:
        client = lambda_client(server.endpoint)
        create(client, "tenants", TenancyConfig={"TenantIsolationMode": "PER_TENANT"})
        payload = json.dumps({"out": str(out), "id": "tenant"}).encode()
        with pytest.raises(client.exceptions.InvalidParameterValueException):
            client.invoke(FunctionName="tenants", InvocationType="Event", Payload=payload)
        response = client.invoke(
            FunctionName="tenants", InvocationType="Event", Payload=payload, TenantId="blue"
        )
        assert response["StatusCode"] == 202
        assert wait_marks(out, "tenant") == ["tenant.$LATEST.1"]
        assert json.loads((out / "tenant.$LATEST.1").read_text()) == [ARN + "tenants", "blue"]
