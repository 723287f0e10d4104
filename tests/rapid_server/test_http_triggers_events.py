"""The events an HTTP trigger gives a function (`rapidboot.rapid_server.http_triggers.events`), checked
against the shapes aws-lambda-powertools parses: its pydantic models and its event classes must accept
them."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEvent,
    APIGatewayProxyEventV2,
    LambdaFunctionUrlEvent,
)
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
    LambdaFunctionUrlModel,
)

from rapidboot.rapid_server.definitions.template import FunctionTriggers, TemplateDefinition
from rapidboot.rapid_server.http import Request
from rapidboot.rapid_server.http_triggers.events import Origin, build_event
from rapidboot.rapid_server.http_triggers.routes import Match, build_routes

ORIGIN = Origin("c6af9ac6-7b61-11e6-9a41-93e8deadbeef", 1_765_000_000.25, "123456789012", "eu-west-1")


class Peer:
    """What an event needs of the connection: the client's address."""

    peer_host = "10.1.2.3"


def request(method: str, path: str, query: str = "", body: bytes = b"", **headers: str) -> Request:
    fields = {"host": "localhost:3000", "user-agent": "curl/8.5.0", **headers}
    made = Request(method, path, query, {k.replace("_", "-"): v for k, v in fields.items()}, Peer())  # type: ignore[arg-type]
    made.body = body
    return made


def event_for(
    events: dict[str, Any], req: Request, url: dict[str, Any] | None = None, apis: Any = None
) -> Any:
    triggers = {"Fn": FunctionTriggers("FnId", events, url)}
    table = build_routes(TemplateDefinition(Path("t.yaml"), {}, triggers, (), apis or {}))
    found = table.match(req.method, req.path)
    assert isinstance(found, Match)
    return orjson.loads(build_event(req, found, ORIGIN))


REST = {"Get": {"Type": "Api", "Properties": {"Path": "/users/{id}", "Method": "ANY"}}}
HTTP = {"Get": {"Type": "HttpApi", "Properties": {"Path": "/users/{id}", "Method": "GET"}}}


def test_rest_api_event_is_payload_1_0() -> None:
    req = request("POST", "/users/42", "a=1&a=2&b=", b'{"x": 1}', content_type="application/json")
    event = event_for(REST, req)
    model = APIGatewayProxyEventModel.model_validate(event)
    assert model.resource == "/users/{id}" and model.path == "/users/42" and model.httpMethod == "POST"
    assert model.pathParameters == {"id": "42"}
    assert model.queryStringParameters == {"a": "2", "b": ""}
    assert model.multiValueQueryStringParameters == {"a": ["1", "2"], "b": [""]}
    assert model.multiValueHeaders["content-type"] == ["application/json"]
    assert model.body == '{"x": 1}' and model.isBase64Encoded is False
    context = event["requestContext"]
    assert context["requestId"] == ORIGIN.request_id
    assert context["identity"]["sourceIp"] == "10.1.2.3"
    assert context["requestTimeEpoch"] == 1_765_000_000_250
    assert context["requestTime"] == "06/Dec/2025:05:46:40 +0000"
    assert (context["stage"], context["path"], context["resourcePath"]) == (
        "Prod",
        "/Prod/users/42",
        "/users/{id}",
    )
    assert context["accountId"] == "123456789012" and context["protocol"] == "HTTP/1.1"
    assert "version" not in event  # a REST API's event has none
    wrapped = APIGatewayProxyEvent(event)
    assert wrapped.json_body == {"x": 1} and wrapped.request_context.stage == "Prod"


def test_http_api_event_is_payload_2_0() -> None:
    req = request("GET", "/users/7", "tag=a&tag=b", cookie="s=1; theme=dark")
    event = event_for(HTTP, req)
    model = APIGatewayProxyEventV2Model.model_validate(event)
    assert (model.version, model.routeKey, model.rawPath, model.rawQueryString) == (
        "2.0",
        "GET /users/{id}",
        "/users/7",
        "tag=a&tag=b",
    )
    assert model.cookies == ["s=1", "theme=dark"] and "cookie" not in model.headers
    assert model.queryStringParameters == {"tag": "a,b"}  # comma-joined, as HTTP APIs do
    assert model.pathParameters == {"id": "7"}
    context = event["requestContext"]
    assert context["stage"] == "$default" and context["routeKey"] == "GET /users/{id}"
    assert context["http"] == {
        "method": "GET",
        "path": "/users/7",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.1.2.3",
        "userAgent": "curl/8.5.0",
    }
    assert context["timeEpoch"] == 1_765_000_000_250 and context["time"] == "06/Dec/2025:05:46:40 +0000"
    assert "body" not in event and event["isBase64Encoded"] is False
    assert APIGatewayProxyEventV2(event).path_parameters == {"id": "7"}


def test_http_api_payload_1_0_when_the_event_asks() -> None:
    events = {
        "Get": {
            "Type": "HttpApi",
            "Properties": {"Path": "/v", "Method": "GET", "PayloadFormatVersion": "1.0"},
        }
    }
    event = event_for(events, request("GET", "/v"))
    model = APIGatewayProxyEventModel.model_validate(event)
    assert event["version"] == "1.0" and model.requestContext.stage == "$default"


def test_function_url_event() -> None:
    event = event_for(
        {}, request("PUT", "/lambda-url/Fn/a/b", "q=1", b"hi", content_type="text/plain"), url={}
    )
    LambdaFunctionUrlModel.model_validate(event)
    assert (event["routeKey"], event["rawPath"], event["body"]) == ("$default", "/a/b", "hi")
    assert event["requestContext"]["domainName"].endswith(".lambda-url.eu-west-1.on.aws")
    assert LambdaFunctionUrlEvent(event).request_context.http.method == "PUT"


def test_binary_bodies_are_base64() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    rest_apis = {"ServerlessRestApi": {"BinaryMediaTypes": ["image~1png"]}}
    rest = event_for(REST, request("POST", "/users/1", body=png, content_type="image/png"), apis=rest_apis)
    assert rest["isBase64Encoded"] is True and base64.b64decode(rest["body"]) == png
    text = event_for(
        REST, request("POST", "/users/1", body=b"plain", content_type="text/plain"), apis=rest_apis
    )
    assert (text["body"], text["isBase64Encoded"]) == ("plain", False)
    v2 = event_for(
        HTTP | {"Post": {"Type": "HttpApi", "Properties": {"Path": "/up", "Method": "POST"}}},
        request("POST", "/up", body=png, content_type="application/octet-stream"),
    )
    assert v2["isBase64Encoded"] is True and base64.b64decode(v2["body"]) == png
    APIGatewayProxyEventV2Model.model_validate(v2)
