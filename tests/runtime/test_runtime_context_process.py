"""The context's optional headers through the real bootstrap (and awslambdaric, for parity)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent
from runtime_harness import run_runtime, write

HAVE_RIC = importlib.util.find_spec("awslambdaric") is not None
IMPLS = ["rapidboot", pytest.param("awslambdaric", marks=pytest.mark.skipif(not HAVE_RIC, reason="no ric"))]

APP = """\
def handler(event, context):
    cc = context.client_context
    return {
        "client_context": None if cc is None else {
            "custom": cc.custom, "env": cc.env,
            "client": None if cc.client is None else [
                cc.client.installation_id, cc.client.app_title, cc.client.app_version_name,
                cc.client.app_version_code, cc.client.app_package_name],
        },
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "tenant": context.tenant_id,
        "w3c": context.w3c(),
        "repr": repr(context),
    }
"""


def _utf8_header(value: object) -> str:
    # What Lambda sends: the JSON's UTF-8 bytes (the fake writes header text as Latin-1).
    return json.dumps(value, ensure_ascii=False).encode("utf-8").decode("latin-1")


CLIENT_CONTEXT = {
    "client": {"installation_id": "i", "app_title": "Café", "app_version_name": "1.0"},
    "custom": {"user": "名前"},
    "env": {"locale": "fr"},
    "w3c": {"traceparent": "00-abc-def-01", "tracestate": "k=v", "baggage": 7, "other": "x"},
}


@pytest.mark.parametrize("impl", IMPLS)
def test_client_context_cognito_tenant_w3c(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": APP})
    headers = {
        "Lambda-Runtime-Client-Context": _utf8_header(CLIENT_CONTEXT),
        "Lambda-Runtime-Cognito-Identity": _utf8_header(
            {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "p"}
        ),
        "Lambda-Runtime-Aws-Tenant-Id": "tenant-9",
    }
    run = run_runtime(task_root, [FakeEvent({}, request_id="c1", headers=headers)], impl=impl)
    result = run.api.posts("/response")[0].json()
    assert result["client_context"] == {
        "custom": {"user": "名前"},
        "env": {"locale": "fr"},
        "client": ["i", "Café", "1.0", None, None],
    }
    assert result["identity"] == ["id-1", "p"]
    assert result["tenant"] == "tenant-9"
    assert result["w3c"] == {"traceparent": "00-abc-def-01", "tracestate": "k=v"}  # strings only, allowlisted
    assert "w3c" not in result["repr"] and "tenant_id=tenant-9" in result["repr"]


@pytest.mark.parametrize("impl", IMPLS)
def test_null_context_headers_are_absent(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": APP})
    headers = {"Lambda-Runtime-Client-Context": "null", "Lambda-Runtime-Cognito-Identity": "null"}
    run = run_runtime(task_root, [FakeEvent({}, request_id="n1", headers=headers)], impl=impl)
    result = run.api.posts("/response")[0].json()
    assert (result["client_context"], result["identity"], result["w3c"]) == (None, [None, None], {})


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("header", "name", "value", "detail"),
    [
        ("Lambda-Runtime-Client-Context", "Client Context", "{bad", "Expecting property name enclosed"),
        ("Lambda-Runtime-Cognito-Identity", "Cognito Identity", '{"a": 1} x', "Extra data: line 1 column 10"),
        (
            "Lambda-Runtime-Client-Context",
            "Client Context",
            "nope",
            "Expecting value: line 1 column 1 (char 0)",
        ),
    ],
)
def test_malformed_context_header(
    task_root: Path, impl: str, header: str, name: str, value: str, detail: str
) -> None:
    write(task_root, {"app.py": APP})
    events = [FakeEvent({}, request_id="m1", headers={header: value}), FakeEvent({}, request_id="m2")]
    run = run_runtime(task_root, events, impl=impl)
    (error,) = run.api.posts("/error")
    body = error.json()
    assert body["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert body["errorMessage"].startswith(f"Unable to parse {name} JSON: {detail}")
    assert (body["requestId"], body["stackTrace"]) == ("m1", [])
    assert f"[ERROR] Runtime.LambdaContextUnmarshalError: Unable to parse {name} JSON" in run.stdout
    assert len(run.api.posts("/response")) == 1  # the next invoke is served normally


def test_context_header_not_an_object(task_root: Path) -> None:
    # awslambdaric crashes with AttributeError ("'list' object has no attribute 'get'") here.
    write(task_root, {"app.py": APP})
    event = FakeEvent({}, request_id="l1", headers={"Lambda-Runtime-Client-Context": "[1]"})
    body = run_runtime(task_root, [event]).api.posts("/error")[0].json()
    assert body["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert body["errorMessage"] == "Unable to parse Client Context JSON: expected a JSON object, got list"


@pytest.mark.parametrize("impl", IMPLS)
def test_invocation_id_echoed(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": APP + "\ndef fails(event, context):\n    raise ValueError('x')\n"})
    headers = {"Lambda-Runtime-Invocation-Id": "inv-42"}
    ok = run_runtime(task_root, [FakeEvent({}, request_id="i1", headers=headers)], impl=impl)
    failed = run_runtime(task_root, [FakeEvent({}, request_id="i2", headers=headers)], "app.fails", impl=impl)
    assert ok.api.posts("/response")[0].headers["lambda-runtime-invocation-id"] == "inv-42"
    assert failed.api.posts("/error")[0].headers["lambda-runtime-invocation-id"] == "inv-42"
    plain = run_runtime(task_root, [FakeEvent({}, request_id="i3")], impl=impl)
    assert "lambda-runtime-invocation-id" not in plain.api.posts("/response")[0].headers
