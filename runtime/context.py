"""The `context` object handed to the handler, attribute for attribute like awslambdaric 4.2.2's.

Environment-derived members are `str` (or None), `memory_limit_in_mb` included. The optional
client-context and Cognito headers are absent on almost every invoke; when present they are
JSON-decoded here, and a malformed one fails the invoke with `Runtime.LambdaContextUnmarshalError`.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import time

from .errors import LAMBDA_CONTEXT_UNMARSHAL_ERROR, FaultError
from .marshal import decode_event

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from typing import Any

    from .client import Invocation
    from .config import RuntimeConfig
    from .logs import LogSink

# Keys of `clientContext.w3c` surfaced by `LambdaContext.w3c()` (string values only).
_W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, identity: dict[str, Any] | None = None) -> None:
        identity = identity or {}
        self.cognito_identity_id: Any = identity.get("cognitoIdentityId")
        self.cognito_identity_pool_id: Any = identity.get("cognitoIdentityPoolId")

    def __repr__(self) -> str:
        return (
            f"CognitoIdentity([cognito_identity_id={self.cognito_identity_id},"
            f"cognito_identity_pool_id={self.cognito_identity_pool_id}])"
        )


class Client:
    __slots__ = ("app_package_name", "app_title", "app_version_code", "app_version_name", "installation_id")

    def __init__(self, client: dict[str, Any]) -> None:
        self.installation_id: Any = client.get("installation_id")
        self.app_title: Any = client.get("app_title")
        self.app_version_name: Any = client.get("app_version_name")
        self.app_version_code: Any = client.get("app_version_code")
        self.app_package_name: Any = client.get("app_package_name")

    def __repr__(self) -> str:
        return (
            f"Client([installation_id={self.installation_id},app_title={self.app_title},"
            f"app_version_name={self.app_version_name},app_version_code={self.app_version_code},"
            f"app_package_name={self.app_package_name}])"
        )


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, client_context: dict[str, Any]) -> None:
        self.custom: Any = client_context.get("custom")
        self.env: Any = client_context.get("env")
        client = client_context.get("client")
        self.client: Client | None = Client(client) if isinstance(client, dict) else None

    def __repr__(self) -> str:
        return f"ClientContext([custom={self.custom},env={self.env},client={self.client}])"


class LambdaContext:
    __slots__ = (
        "_deadline_ms",
        "_sink",
        "_w3c",
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "tenant_id",
    )

    def __init__(self, invocation: Invocation, config: RuntimeConfig, sink: LogSink) -> None:
        self.aws_request_id: str = invocation.request_id
        self.invoked_function_arn: str | None = invocation.invoked_function_arn
        self.tenant_id: str | None = invocation.tenant_id
        self.function_name: str | None = config.function_name
        self.function_version: str | None = config.function_version
        self.memory_limit_in_mb: str | None = config.memory_limit_in_mb
        self.log_group_name: str | None = config.log_group_name
        self.log_stream_name: str | None = config.log_stream_name
        self._deadline_ms = invocation.deadline_ms
        self._sink = sink

        self.client_context: ClientContext | None = None
        self._w3c: dict[str, str] = {}
        raw = _parse_header_json(invocation.client_context, "Client Context")
        if raw is not None:
            self._w3c = _pop_w3c(raw)
            self.client_context = ClientContext(raw)
        self.identity = CognitoIdentity(_parse_header_json(invocation.cognito_identity, "Cognito Identity"))

    def get_remaining_time_in_millis(self) -> int:
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg: object) -> None:
        """Write to the function log as is (no newline added), like awslambdaric."""
        self._sink.log(str(msg))

    def w3c(self) -> dict[str, str]:
        """The W3C trace context (`traceparent`, `tracestate`, `baggage`) sent in the client context."""
        return dict(self._w3c)

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}])"
        )


def _parse_header_json(header: str | None, name: str) -> dict[str, Any] | None:
    """A context header's JSON object; None when the header is absent, empty or JSON `null`.

    Header values arrive decoded as Latin-1 (each byte one code point); Lambda sends this JSON as
    UTF-8, so the bytes are recovered and decoded as such (non-ASCII names in a client context).
    A malformed value fails the invoke with awslambdaric's message (stdlib json's text). A value
    that is valid JSON but not an object also fails it here, as `LambdaContextUnmarshalError`:
    awslambdaric crashes on it with an `AttributeError` (`'list' object has no attribute 'get'`).
    """
    if not header:
        return None
    try:
        raw = header.encode("latin-1")
    except UnicodeEncodeError:  # built in-process (tests, embedders) from real text
        raw = header.encode("utf-8", "surrogatepass")
    try:
        value = decode_event(raw, "application/json")
    except FaultError as fault:
        detail = fault.message.removeprefix("Unable to unmarshal input: ")
        raise FaultError(LAMBDA_CONTEXT_UNMARSHAL_ERROR, f"Unable to parse {name} JSON: {detail}") from None
    if value is None or isinstance(value, dict):
        return value
    raise FaultError(
        LAMBDA_CONTEXT_UNMARSHAL_ERROR,
        f"Unable to parse {name} JSON: expected a JSON object, got {type(value).__name__}",
    )


def _pop_w3c(client_context: dict[str, Any]) -> dict[str, str]:
    # awslambdaric removes `w3c` from the client context and exposes it only through `w3c()`.
    raw = client_context.pop("w3c", None)
    if not isinstance(raw, dict):
        return {}
    return {key: raw[key] for key in _W3C_FIELDS if isinstance(raw.get(key), str)}
