"""A function's answer as the HTTP response API Gateway (or a function URL) sends for it, and the
gateway's own answers (throttled, failed, timed out) with the bodies API Gateway sends.

Payload format 1.0 (REST APIs): the function must return an object with an integer `statusCode`, optional
`headers` / `multiValueHeaders`, a string `body` and `isBase64Encoded`; anything else is a malformed proxy
response, which API Gateway answers with 502 `{"message": "Internal server error"}` (the reason goes to the
server's log here, as to the execution log there). A REST API decodes a base64 body only when the response's
`Content-Type` or the request's `Accept` is one of its `BinaryMediaTypes`.

Payload format 2.0 (HTTP APIs, function URLs): an object with `statusCode` is read as above, with `cookies`
(each a `Set-Cookie`); any other valid JSON (an object without `statusCode`, a string, a number) is the 200
response's body as is, `Content-Type: application/json`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson

from ..http import Response
from .events import matches_media_type
from .routes import Route

JSON = ("Content-Type", "application/json")
HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"  # a streamed URL response's prelude
PRELUDE_END = b"\x00" * 8
_V1_KEYS = frozenset(("statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"))


class MalformedResponse(Exception):
    """The function's answer is not a proxy response: the reason, for the server's log."""


def gateway_error(status: int, message: str) -> Response:
    return Response(status, orjson.dumps({"message": message}), [JSON])


def internal_error() -> Response:
    return gateway_error(502, "Internal server error")


def throttled() -> Response:
    return gateway_error(429, "Too Many Requests")


def timed_out() -> Response:
    return gateway_error(504, "Endpoint request timed out")


def too_large() -> Response:
    return gateway_error(413, "Request Entity Too Large")


def from_function(route: Route, body: bytes, content_type: str, accept: str | None) -> Response:
    """The HTTP response for a function's successful answer; raises MalformedResponse."""
    if route.api.kind == "url" and content_type == HTTP_INTEGRATION:
        status, headers, start = read_prelude(body)
        return Response(status, body[start:], headers)
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(f"the function's answer is not JSON: {exc}") from None
    if route.payload_version == "2.0":
        if not (isinstance(answer, dict) and "statusCode" in answer):
            return Response(200, body, [JSON])  # the 2.0 shortcut: the answer itself is the body
        return _structured(answer, v2=True, decode_base64=True)
    if not isinstance(answer, dict):
        raise MalformedResponse(f"a proxy response must be a JSON object, got {_kind(answer)}")
    if route.api.kind == "rest":
        unknown = sorted(set(answer) - _V1_KEYS)
        if unknown:
            raise MalformedResponse(f"unexpected field(s) {', '.join(unknown)} in the proxy response")
    decode = route.api.kind != "rest" or _binary_response(answer, route.api.binary_media_types, accept)
    return _structured(answer, v2=False, decode_base64=decode)


def _structured(answer: Mapping[str, Any], v2: bool, decode_base64: bool) -> Response:
    status = answer.get("statusCode")
    if v2 and isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode must be an integer 100-599, got {status!r}")
    headers: list[tuple[str, str]] = []
    multi = answer.get("multiValueHeaders")
    if multi is not None and not v2:
        if not isinstance(multi, dict):
            raise MalformedResponse(f"multiValueHeaders must be an object, got {_kind(multi)}")
        for name, values in multi.items():
            if not isinstance(values, list):
                raise MalformedResponse(f"multiValueHeaders.{name} must be a list, got {_kind(values)}")
            headers.extend((name, _header_value(name, value)) for value in values)
    single = answer.get("headers")
    if single is not None:
        if not isinstance(single, dict):
            raise MalformedResponse(f"headers must be an object, got {_kind(single)}")
        named = {name.lower() for name, _ in headers}
        headers.extend((n, _header_value(n, v)) for n, v in single.items() if n.lower() not in named)
    if v2:
        cookies = answer.get("cookies")
        if cookies is not None:
            if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
                raise MalformedResponse("cookies must be a list of strings")
            headers.extend(("Set-Cookie", cookie) for cookie in cookies)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(JSON)
    body = answer.get("body")
    if body is None:
        return Response(status, b"", headers)
    if not isinstance(body, str):
        if not v2:
            raise MalformedResponse(f"body must be a string, got {_kind(body)}")
        body = orjson.dumps(body).decode()  # an HTTP API sends a non-string body as its JSON
    if answer.get("isBase64Encoded") is True and decode_base64:
        try:
            return Response(status, base64.b64decode(body, validate=True), headers)
        except (binascii.Error, ValueError):
            raise MalformedResponse("isBase64Encoded is true but the body is not base64") from None
    return Response(status, body.encode(), headers)


def read_prelude(body: bytes) -> tuple[int, list[tuple[str, str]], int]:
    """A streamed function URL response's prelude (`{"statusCode", "headers", "cookies"}` then 8 NUL
    bytes): its status and headers, and where the body starts. Raises MalformedResponse."""
    end = body.find(PRELUDE_END)
    if end < 0:
        raise MalformedResponse("the HTTP integration response has no prelude (8 NUL bytes)")
    try:
        prelude = orjson.loads(body[:end]) if end else {}
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(f"the HTTP integration response's prelude is not JSON: {exc}") from None
    if not isinstance(prelude, dict):
        raise MalformedResponse("the HTTP integration response's prelude must be a JSON object")
    status = prelude.get("statusCode", 200)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode must be an integer 100-599, got {status!r}")
    headers = [(str(n), _header_value(str(n), v)) for n, v in _mapping(prelude.get("headers")).items()]
    cookies = prelude.get("cookies")
    if isinstance(cookies, list):
        headers.extend(("Set-Cookie", str(cookie)) for cookie in cookies)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/octet-stream"))
    return status, headers, end + len(PRELUDE_END)


def _binary_response(answer: Mapping[str, Any], media_types: tuple[str, ...], accept: str | None) -> bool:
    if not media_types:
        return False
    content_type = ""
    for source in (answer.get("headers"), answer.get("multiValueHeaders")):
        for name, value in _mapping(source).items():
            if name.lower() == "content-type":
                content_type = value[0] if isinstance(value, list) and value else str(value)
    if matches_media_type(content_type, media_types):
        return True
    return accept is not None and any(
        matches_media_type(part, media_types) for part in accept.split(",") if part.strip()
    )


def _header_value(name: str, value: Any) -> str:
    if not name or any(c in name for c in "\r\n: "):
        raise MalformedResponse(f"header name {name!r} is not a valid HTTP field name")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = str(value)
        if "\r" in text or "\n" in text:
            raise MalformedResponse(f"header {name}: a value may not hold a line break")
        return text
    raise MalformedResponse(f"header {name}: a value must be a string or number, got {_kind(value)}")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
