"""The events API Gateway and function URLs give a function: payload format 1.0 (REST APIs, and HTTP APIs
that ask for it) and 2.0 (HTTP APIs, function URLs), built from the request as it came, with its request id,
source IP, times and stage.

Shapes as AWS documents them ("Working with AWS Lambda proxy integrations for HTTP APIs", "Input format of
a Lambda function for proxy integration", "Lambda function URL request and response payloads"), and as
aws-lambda-powertools' models parse them (tests/rapid_server/test_http_triggers_events.py checks that).

The request's headers arrive with lower-case names, one value each (http.py keeps a repeated header's last
value): `multiValueHeaders` holds that one value.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from ..http import Request
from .routes import Match

_TEXT_MARKERS = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "graphql")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the event says it came from: the request's id and arrival, and the account and region."""

    request_id: str
    epoch_s: float
    account_id: str
    region: str


def build_event(request: Request, match: Match, origin: Origin) -> bytes:
    v1 = match.route.payload_version == "1.0"
    return orjson.dumps(_v1(request, match, origin) if v1 else _v2(request, match, origin))


def _v1(request: Request, match: Match, origin: Origin) -> dict[str, Any]:
    route = match.route
    api = route.api
    headers = request.headers
    query = parse_qsl(request.query, keep_blank_values=True) if request.query else []
    multi_query: dict[str, list[str]] = {}
    for key, value in query:
        multi_query.setdefault(key, []).append(value)
    binary = matches_media_type(headers.get("content-type", ""), api.binary_media_types)
    body, encoded = _body(request.body, binary, textual=True)
    source_ip = request.connection.peer_host
    user_agent = headers.get("user-agent")
    resource = route.path
    event: dict[str, Any] = {}
    if api.kind == "http":
        event["version"] = "1.0"  # an HTTP API's 1.0 event says so; a REST API's has no version
    event.update(
        {
            "resource": resource,
            "path": request.path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": match.path_parameters or None,
            "stageVariables": api.stage_variables,
            "requestContext": {
                "accountId": origin.account_id,
                "apiId": api.api_id,
                "domainName": _domain(headers),
                "domainPrefix": _domain(headers).split(".")[0],
                "extendedRequestId": origin.request_id,
                "httpMethod": request.method,
                "identity": {
                    "accessKey": None,
                    "accountId": None,
                    "caller": None,
                    "cognitoAuthenticationProvider": None,
                    "cognitoAuthenticationType": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "principalOrgId": None,
                    "sourceIp": source_ip,
                    "user": None,
                    "userAgent": user_agent,
                    "userArn": None,
                },
                "path": request.path if api.kind == "http" else f"/{api.stage}{request.path}",
                "protocol": "HTTP/1.1",
                "requestId": origin.request_id,
                "requestTime": _clf_time(origin.epoch_s),
                "requestTimeEpoch": int(origin.epoch_s * 1000),
                "resourceId": api.api_id[:6],
                "resourcePath": resource,
                "stage": api.stage,
            },
            "body": body,
            "isBase64Encoded": encoded,
        }
    )
    return event


def _v2(request: Request, match: Match, origin: Origin) -> dict[str, Any]:
    route = match.route
    api = route.api
    headers = dict(request.headers)
    # HTTP APIs and function URLs move the Cookie header into `cookies`.
    cookie = headers.pop("cookie", None)
    query: dict[str, str] = {}
    if request.query:
        for key, value in parse_qsl(request.query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
    body, encoded = _body(request.body, _is_binary(headers.get("content-type")), textual=False)
    if api.kind == "url":
        domain = f"{api.api_id}.lambda-url.{origin.region}.on.aws"
        account = "anonymous"  # AuthType NONE: no caller's account
    else:
        domain = _domain(headers)
        account = origin.account_id
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": match.raw_path,
        "rawQueryString": request.query,
    }
    if cookie:
        event["cookies"] = [part.strip() for part in cookie.split(";") if part.strip()]
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    if match.path_parameters:
        event["pathParameters"] = match.path_parameters
    if api.stage_variables:
        event["stageVariables"] = api.stage_variables
    event["requestContext"] = {
        "accountId": account,
        "apiId": api.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": request.method,
            "path": match.raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.connection.peer_host,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": origin.request_id,
        "routeKey": route.route_key,
        "stage": api.stage,
        "time": _clf_time(origin.epoch_s),
        "timeEpoch": int(origin.epoch_s * 1000),
    }
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = encoded
    return event


def _body(raw: bytes, binary: bool, textual: bool) -> tuple[str | None, bool]:
    """The body as the event carries it: text, or base64 for a binary one (and for bytes that are not
    UTF-8, which JSON cannot carry as text)."""
    if not raw:
        return None, False
    if not binary:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            if textual:
                return raw.decode("utf-8", "replace"), False  # a REST API passes non-binary bodies as text
    return base64.b64encode(raw).decode("ascii"), True


def _is_binary(content_type: str | None) -> bool:
    """HTTP APIs and function URLs base64-encode every body that is not text."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return not (media.startswith("text/") or any(marker in media for marker in _TEXT_MARKERS))


def matches_media_type(content_type: str, media_types: tuple[str, ...]) -> bool:
    """Whether a REST API treats this content type as binary (its `BinaryMediaTypes`, `*` wildcards)."""
    if not media_types or not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    for pattern in media_types:
        want_kind, _, want_subtype = pattern.lower().partition("/")
        if want_kind in ("*", kind) and want_subtype in ("*", subtype):
            return True
    return False


def _domain(headers: dict[str, str]) -> str:
    return headers.get("host", "localhost").split(":")[0] or "localhost"


def _clf_time(epoch_s: float) -> str:
    """`06/Dec/2026:20:15:28 +0000`, as API Gateway writes `requestTime` and `time`."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_s))
