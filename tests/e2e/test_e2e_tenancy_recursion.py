"""Tenant isolation and recursive loop detection, through a real server, boto3 and real runtimes.

- A function created with `TenancyConfig.TenantIsolationMode = PER_TENANT` runs each tenant's invokes in
  environments of that tenant only (two tenants, interleaved, never share a process), tells the handler its
  tenant (`context.tenant_id`), refuses an invoke that names none, and its tenancy cannot be changed. A
  function without isolation refuses a tenant id.
- A function that invokes itself through this server with boto3 (which sends the trace header of the invoke
  it runs in) is stopped at its 17th invoke in the chain, and the server says so; with
  `PutFunctionRecursionConfig RecursiveLoop=Allow` the chain runs on until the handler ends it.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import lambda_client, running_server, server_environment

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/tenancy"
TENANT_HANDLER = (
    "import os\n\n\ndef handler(event, context):\n"
    "    return {'pid': os.getpid(), 'tenant': context.tenant_id}\n"
)
# Invokes itself as an Event (one environment serves the whole chain), after noting its depth and the trace
# header it ran with; ends the chain itself at `limit`.
LOOP_HANDLER = """
import json, os
import boto3, botocore.config

client = boto3.client("lambda", config=botocore.config.Config(retries={"total_max_attempts": 1}))


def handler(event, context):
    depth = event["depth"] + 1
    with open(os.environ["RECORD"], "a") as record:
        record.write(json.dumps({"chain": event["chain"], "depth": depth,
                                 "trace": os.environ["_X_AMZN_TRACE_ID"]}) + "\\n")
    if depth >= event["limit"]:
        print(f"chain {event['chain']} ended by the handler at {depth}", flush=True)
        return depth
    client.invoke(FunctionName=context.function_name, InvocationType="Event",
                  Payload=json.dumps(dict(event, depth=depth)))
    return depth
"""


def package(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def create(client: Any, name: str, source: str, **settings: Any) -> dict[str, Any]:
    created: dict[str, Any] = client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": package(source)},
        **settings,
    )
    client.get_waiter("function_active_v2").wait(FunctionName=name)
    return created


def run(client: Any, name: str, **args: Any) -> dict[str, Any]:
    response = client.invoke(FunctionName=name, Payload=b"{}", **args)
    assert "FunctionError" not in response, response
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


def test_tenants_never_share_an_environment(tmp_path: Path) -> None:
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:
        client = lambda_client(server.endpoint)
        created = create(
            client, "tenanted", TENANT_HANDLER, TenancyConfig={"TenantIsolationMode": "PER_TENANT"}
        )
        assert created["TenancyConfig"] == {"TenantIsolationMode": "PER_TENANT"}
        create(client, "shared", TENANT_HANDLER)

        # Interleaved, one at a time: without isolation every one of these would reuse one warm environment.
        pids: dict[str, set[int]] = {"blue": set(), "green": set()}
        for tenant in ("blue", "green") * 3:
            result = run(client, "tenanted", TenantId=tenant)
            assert result["tenant"] == tenant
            pids[tenant].add(result["pid"])
        assert pids["blue"].isdisjoint(pids["green"]), pids
        assert len(pids["blue"]) == 1 and len(pids["green"]) == 1  # each tenant's own environment is reused

        with pytest.raises(client.exceptions.InvalidParameterValueException, match="X-Amz-Tenant-Id"):
            client.invoke(FunctionName="tenanted", Payload=b"{}")
        with pytest.raises(client.exceptions.InvalidParameterValueException, match="tenant isolation"):
            client.invoke(FunctionName="shared", Payload=b"{}", TenantId="blue")
        assert run(client, "shared")["tenant"] is None

        # Set at creation only: botocore's UpdateFunctionConfiguration has no TenancyConfig; sent raw, it is
        # refused, and changes nothing.
        before = client.get_function_configuration(FunctionName="tenanted")
        refused = httpx.put(
            f"{server.endpoint}/2015-03-31/functions/tenanted/configuration",
            json={"TenancyConfig": {"TenantIsolationMode": "PER_TENANT"}, "MemorySize": 256},
        )
        assert refused.status_code == 400, refused.text
        assert refused.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
        assert "TenancyConfig" in refused.json()["message"]
        after = client.get_function_configuration(FunctionName="tenanted")
        assert (after["RevisionId"], after["MemorySize"]) == (before["RevisionId"], 128)
        with pytest.raises(client.exceptions.InvalidParameterValueException, match="TenantIsolationMode"):
            create(client, "odd", TENANT_HANDLER, TenancyConfig={"TenantIsolationMode": "PER_REQUEST"})


def _records(path: Path, chain: str) -> list[dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return [record for record in map(json.loads, lines) if record["chain"] == chain]


def test_a_function_invoking_itself_is_stopped_after_16_unless_allowed(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    env = server_environment()
    # The developer's credentials reach the function as on a laptop (Environment passes them on); boto3 in
    # the handler needs some to sign with.
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path, env=env) as server:
        client = lambda_client(server.endpoint)
        variables = {"AWS_ENDPOINT_URL_LAMBDA": server.endpoint, "RECORD": str(record)}
        create(client, "looper", LOOP_HANDLER, Environment={"Variables": variables}, Timeout=30)
        assert client.get_function_recursion_config(FunctionName="looper")["RecursiveLoop"] == "Terminate"

        mark = len(server.stdout.lines)
        client.invoke(FunctionName="looper", InvocationType="Event", Payload=json.dumps(
            {"chain": "terminated", "depth": 0, "limit": 100}
        ))  # fmt: skip
        stopped = server.stdout.wait_for(lambda line: "recursive loop detected" in line, after=mark)
        assert stopped is not None and "looper" in stopped, server.stdout.lines[mark:]
        chain = _records(record, "terminated")
        assert [entry["depth"] for entry in chain] == list(range(1, 17))
        # One chain: every invoke carries the first one's trace root, and its Lineage names the function.
        roots = {entry["trace"].split(";")[0] for entry in chain}
        assert len(roots) == 1 and "Lineage=" in chain[-1]["trace"]

        # The 16th invoke's trace, sent again synchronously, is the 17th of the chain: refused to the caller.
        refused = httpx.post(
            f"{server.endpoint}/2015-03-31/functions/looper/invocations",
            content=b'{"chain": "sync", "depth": 0, "limit": 1}',
            headers={"X-Amzn-Trace-Id": chain[-1]["trace"]},
        )
        assert refused.status_code == 400, refused.text
        assert refused.headers["x-amzn-ErrorType"] == "RecursiveInvocationException"
        assert _records(record, "sync") == []

        allowed = client.put_function_recursion_config(FunctionName="looper", RecursiveLoop="Allow")
        assert allowed["RecursiveLoop"] == "Allow"
        mark = len(server.stdout.lines)
        client.invoke(FunctionName="looper", InvocationType="Event", Payload=json.dumps(
            {"chain": "allowed", "depth": 0, "limit": 20}
        ))  # fmt: skip
        ended = server.stdout.wait_for(lambda line: "chain allowed ended" in line, after=mark)
        assert ended is not None, server.stdout.lines[mark:]
        assert [entry["depth"] for entry in _records(record, "allowed")] == list(range(1, 21))
        assert not any("recursive loop detected" in line for line in server.stdout.lines[mark:])
        with pytest.raises(client.exceptions.InvalidParameterValueException, match="RecursiveLoop"):
            client.put_function_recursion_config(FunctionName="looper", RecursiveLoop="Sometimes")

    # The setting is kept with the function.
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path, env=env) as server:
        client = lambda_client(server.endpoint)
        assert client.get_function_recursion_config(FunctionName="looper")["RecursiveLoop"] == "Allow"
    assert os.path.exists(record)
