"""The context object: members, types and header parsing like awslambdaric's."""

from __future__ import annotations

import time

import pytest

from rapidboot.runtime.client import Invocation
from rapidboot.runtime.config import RuntimeConfig
from rapidboot.runtime.context import LambdaContext
from rapidboot.runtime.errors import FaultError
from rapidboot.runtime.logs import LogSink


class ListSink(LogSink):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def log(self, msg: str) -> None:
        self.messages.append(msg)


CONFIG = RuntimeConfig.from_environ(
    ["app.handler"],
    {
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": "stream",
    },
    "/var/task",
)


def make(**kwargs: object) -> LambdaContext:
    invocation = Invocation("rid", b"{}", **kwargs)  # type: ignore[arg-type]
    return LambdaContext(invocation, CONFIG, ListSink())


def test_members_and_types() -> None:
    context = make(deadline_ms=int(time.time() * 1000) + 60_000, invoked_function_arn="arn:x")
    assert context.aws_request_id == "rid"
    assert context.invoked_function_arn == "arn:x"
    assert context.function_name == "fn"
    assert context.function_version == "$LATEST"
    assert context.memory_limit_in_mb == "256"
    assert context.log_group_name == "/aws/lambda/fn"
    assert context.log_stream_name == "stream"
    assert context.tenant_id is None
    assert context.client_context is None
    assert context.identity.cognito_identity_id is None
    assert context.identity.cognito_identity_pool_id is None
    remaining = context.get_remaining_time_in_millis()
    assert isinstance(remaining, int) and 55_000 < remaining <= 60_000
    assert context.w3c() == {}
    assert not hasattr(context, "__dict__")
    assert "aws_request_id=rid" in repr(context)


def test_past_deadline_floors_at_zero() -> None:
    assert make(deadline_ms=1).get_remaining_time_in_millis() == 0


def test_client_context_cognito_tenant_and_w3c() -> None:
    context = make(
        client_context='{"custom":{"a":1},"env":{"b":2},"client":{"installation_id":"i","app_title":"t",'
        '"app_version_name":"n","app_version_code":"c","app_package_name":"p"},'
        '"w3c":{"traceparent":"00-x","tracestate":5,"other":"y"}}',
        cognito_identity='{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}',
        tenant_id="t1",
    )
    client_context = context.client_context
    assert client_context is not None and client_context.client is not None
    assert (client_context.custom, client_context.env) == ({"a": 1}, {"b": 2})
    client = client_context.client
    assert (client.installation_id, client.app_title, client.app_version_name) == ("i", "t", "n")
    assert (client.app_version_code, client.app_package_name) == ("c", "p")
    assert (context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id) == ("id", "pool")
    assert context.tenant_id == "t1"
    assert context.w3c() == {"traceparent": "00-x"}


@pytest.mark.parametrize(
    ("field", "name"), [("client_context", "Client Context"), ("cognito_identity", "Cognito Identity")]
)
def test_malformed_headers(field: str, name: str) -> None:
    with pytest.raises(FaultError) as info:
        make(**{field: "{oops"})
    assert info.value.error_type == "Runtime.LambdaContextUnmarshalError"
    assert info.value.message == (
        f"Unable to parse {name} JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )


def test_log_writes_to_sink_without_newline() -> None:
    sink = ListSink()
    context = LambdaContext(Invocation("r", b""), CONFIG, sink)
    context.log("hello")
    context.log(42)
    assert sink.messages == ["hello", "42"]


def test_config_errors_and_log_levels() -> None:
    from rapidboot.runtime.config import ConfigError

    with pytest.raises(ConfigError, match="no handler"):
        RuntimeConfig.from_environ([], {"AWS_LAMBDA_RUNTIME_API": "x:1"}, "/")
    with pytest.raises(ConfigError, match="AWS_LAMBDA_RUNTIME_API"):
        RuntimeConfig.from_environ(["a.b"], {}, "/")
    env = {"AWS_LAMBDA_RUNTIME_API": "x:1", "_HANDLER": "m.f", "AWS_LAMBDA_LOG_LEVEL": "trace"}
    config = RuntimeConfig.from_environ([], env, "/cwd")
    assert (config.handler, config.log_level, config.task_root, config.opt_dir) == (
        "m.f",
        "DEBUG",
        "/cwd",
        "/opt",
    )
    assert RuntimeConfig.from_environ([], {**env, "AWS_LAMBDA_LOG_LEVEL": "bogus"}, "/").log_level is None


def test_config_log_format_and_telemetry_fd() -> None:
    env = {"AWS_LAMBDA_RUNTIME_API": "x:1", "_HANDLER": "m.f"}
    config = RuntimeConfig.from_environ([], env, "/")
    assert (config.log_format, config.telemetry_log_fd) == ("Text", None)
    config = RuntimeConfig.from_environ(
        [], {**env, "AWS_LAMBDA_LOG_FORMAT": "json", "_LAMBDA_TELEMETRY_LOG_FD": "7"}, "/"
    )
    assert (config.log_format, config.telemetry_log_fd) == ("JSON", 7)
    assert (
        RuntimeConfig.from_environ([], {**env, "_LAMBDA_TELEMETRY_LOG_FD": "x"}, "/").telemetry_log_fd is None
    )


def test_null_headers_are_absent_and_utf8_is_decoded() -> None:
    context = make(client_context="null", cognito_identity="null")
    assert context.client_context is None and context.identity.cognito_identity_id is None
    # Header text arrives as Latin-1 (one code point per byte) holding UTF-8.
    raw = '{"custom":{"n":"é"}}'.encode().decode("latin-1")
    client_context = make(client_context=raw).client_context
    assert client_context is not None and client_context.custom == {"n": "é"}
