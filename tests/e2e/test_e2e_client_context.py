"""`X-Amz-Client-Context` (boto3's `ClientContext`): base64 JSON from the caller reaches the runtime as
`Lambda-Runtime-Client-Context`, so the handler's `context.client_context` has it; a malformed or oversized
one is refused with 400 before anything runs."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from e2e_harness import RapidServer, lambda_client, running_server

pytestmark = pytest.mark.e2e

HANDLER = """\
def handler(event, context):
    cc = context.client_context
    if cc is None:
        return None
    return {"custom": cc.custom, "env": cc.env, "app_title": cc.client.app_title}
"""

CONTEXT = {
    "client": {
        "installation_id": "i-1",
        "app_title": "Ünïcode app",
        "app_version_name": "1.0",
        "app_version_code": "1",
        "app_package_name": "p",
    },
    "custom": {"tenant": "acme", "n": 3},
    "env": {"locale": "fr_FR"},
}


@pytest.fixture(scope="module", params=["rapidboot", "awslambdaric"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("client-context")
    (root / "app.py").write_text(HANDLER)
    args = ["--code", str(root), "--handler", "app.handler", "--state-dir", str(root / "state")]
    if request.param == "awslambdaric":
        args += ["--command", f"{sys.executable} -m awslambdaric app.handler"]
    with running_server(args, root) as running:
        yield running


def encoded(value: object) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def test_boto3_client_context_reaches_the_handler(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    result = client.invoke(FunctionName="function", ClientContext=encoded(CONTEXT), Payload=b"{}")
    assert "FunctionError" not in result, result["Payload"].read()
    assert json.loads(result["Payload"].read()) == {
        "custom": CONTEXT["custom"],
        "env": CONTEXT["env"],
        "app_title": "Ünïcode app",
    }
    plain = client.invoke(FunctionName="function", Payload=b"{}")
    assert json.loads(plain["Payload"].read()) is None


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("not base64 at all!", "valid Base64-encoded JSON object"),
        (base64.b64encode(b"[1, 2]").decode(), "valid Base64-encoded JSON object"),
        (base64.b64encode(b"{oops").decode(), "valid Base64-encoded JSON object"),
        (encoded({"custom": {"pad": "x" * 3000}}), "at most 3583 bytes"),
    ],
    ids=["not-base64", "not-an-object", "not-json", "too-large"],
)
def test_a_bad_client_context_is_refused_before_anything_runs(
    server: RapidServer, header: str, detail: str
) -> None:
    response = server.invoke("function", {}, headers={"X-Amz-Client-Context": header})
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert detail in response.json()["message"]
    # Nothing ran: no platform line names this request (lines of earlier invokes may still be arriving).
    refused_id = response.headers["x-amzn-RequestId"]
    ran = server.stdout.wait_for(lambda line: refused_id in line, 0.3)
    assert ran is None, ran


def test_rapidboot_invoke_sends_a_client_context(server: RapidServer) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rapidboot.rapid_server",
            "invoke",
            "function",
            "--payload",
            "{}",
            "--endpoint",
            server.endpoint,
            "--client-context",
            json.dumps(CONTEXT),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["custom"] == CONTEXT["custom"]
