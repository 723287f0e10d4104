"""A function's answer mapped to API Gateway's HTTP response
(`rapidboot.rapid_server.http_triggers.responses`)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from rapidboot.rapid_server.http_triggers.responses import HTTP_INTEGRATION, MalformedResponse, from_function
from rapidboot.rapid_server.http_triggers.routes import Api, Route

REST = Route(Api("rest", "A", "abc", "Prod", None, ("image/png",)), "GET", "/x", "fn", "1.0", 29000)
HTTP_V1 = Route(Api("http", "H", "def", "$default", None, ()), "GET", "/x", "fn", "1.0", 29000)
HTTP = Route(Api("http", "H", "def", "$default", None, ()), "GET", "/x", "fn", "2.0", 29000)
URL = Route(Api("url", "U", "ghi", "$default", None, ()), "ANY", "$default", "fn", "2.0", None)


def answer(route: Route, value: Any, accept: str | None = None) -> tuple[int, dict[str, list[str]], bytes]:
    response = from_function(route, orjson.dumps(value), "application/json", accept)
    headers: dict[str, list[str]] = {}
    for name, header in response.headers:
        headers.setdefault(name.lower(), []).append(header)
    return response.status, headers, response.body


def test_v1_status_headers_and_multi_value_headers() -> None:
    status, headers, body = answer(
        REST,
        {
            "statusCode": 201,
            "headers": {"X-One": "1", "X-Num": 5, "Content-Type": "text/plain"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": "made",
        },
    )
    assert (status, body) == (201, b"made")
    assert headers == {
        "x-one": ["1"],
        "x-num": ["5"],
        "content-type": ["text/plain"],
        "set-cookie": ["a=1", "b=2"],
    }


def test_v1_without_content_type_is_json_and_without_body_is_empty() -> None:
    assert answer(REST, {"statusCode": 204}) == (204, {"content-type": ["application/json"]}, b"")


def test_rest_decodes_base64_only_for_binary_media_types() -> None:
    png = base64.b64encode(b"\x89PNG\x00\xff").decode()
    binary = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": png,
        "isBase64Encoded": True,
    }
    assert answer(REST, binary)[2] == b"\x89PNG\x00\xff"
    as_text = {
        "statusCode": 200,
        "headers": {"Content-Type": "text/plain"},
        "body": png,
        "isBase64Encoded": True,
    }
    assert answer(REST, as_text)[2] == png.encode()  # not a binary media type: the text as is
    assert answer(REST, as_text, accept="image/png")[2] == b"\x89PNG\x00\xff"  # asked for by Accept
    assert answer(HTTP_V1, as_text)[2] == b"\x89PNG\x00\xff"  # an HTTP API always decodes


def test_v2_cookies_and_the_shortcut() -> None:
    status, headers, _ = answer(
        HTTP, {"statusCode": 302, "headers": {"Location": "/"}, "cookies": ["a=1", "b=2"]}
    )
    assert status == 302 and headers["set-cookie"] == ["a=1", "b=2"] and headers["location"] == ["/"]
    assert answer(HTTP, {"hello": "world"}) == (
        200,
        {"content-type": ["application/json"]},
        b'{"hello":"world"}',
    )
    assert answer(HTTP, "plain") == (200, {"content-type": ["application/json"]}, b'"plain"')
    assert answer(URL, [1, 2]) == (200, {"content-type": ["application/json"]}, b"[1,2]")


@pytest.mark.parametrize(
    ("route", "value", "reason"),
    [
        (REST, "just a string", "must be a JSON object, got a string"),
        (REST, {"body": "no status"}, "statusCode must be an integer"),
        (REST, {"statusCode": "200"}, "statusCode must be an integer"),
        (REST, {"statusCode": 200, "body": {"a": 1}}, "body must be a string, got an object"),
        (REST, {"statusCode": 200, "extra": 1}, "unexpected field(s) extra"),
        (REST, {"statusCode": 200, "headers": {"A": ["x"]}}, "header A: a value must be a string or number"),
        (REST, {"statusCode": 200, "multiValueHeaders": {"A": "x"}}, "multiValueHeaders.A must be a list"),
        (REST, {"statusCode": 200, "headers": {"A": "x\r\nB: y"}}, "may not hold a line break"),
        (HTTP, {"statusCode": 200, "headers": {"A\r\nB": "x"}}, "is not a valid HTTP field name"),
        (HTTP, {"statusCode": 200, "cookies": "a=1"}, "cookies must be a list of strings"),
        (HTTP, {"statusCode": 99}, "statusCode must be an integer 100-599"),
        (HTTP, {"statusCode": 200, "body": "%%%", "isBase64Encoded": True}, "not base64"),
    ],
)
def test_a_malformed_proxy_response_is_refused_with_its_reason(route: Route, value: Any, reason: str) -> None:
    with pytest.raises(MalformedResponse) as caught:
        from_function(route, orjson.dumps(value), "application/json", None)
    assert reason in str(caught.value)


def test_an_answer_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="not JSON"):
        from_function(HTTP, b"{oops", "application/json", None)


def test_a_function_url_reads_the_http_integration_prelude() -> None:
    body = b'{"statusCode": 418, "headers": {"X-Tea": "yes"}, "cookies": ["c=1"]}' + b"\x00" * 8 + b"\x00bin"
    response = from_function(URL, body, HTTP_INTEGRATION, None)
    assert response.status == 418 and response.body == b"\x00bin"
    assert ("X-Tea", "yes") in response.headers and ("Set-Cookie", "c=1") in response.headers
