"""The HTTP triggers' route table (`rapidboot.rapid_server.http_triggers.routes`): built from a template's
events and function URLs, matched as API Gateway selects routes, with API Gateway's answers when nothing
matches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rapidboot.rapid_server.cli import main
from rapidboot.rapid_server.config import ConfigError
from rapidboot.rapid_server.definitions.template import FunctionTriggers, TemplateDefinition, load_template
from rapidboot.rapid_server.http_triggers.routes import (
    MISSING_TOKEN,
    NOT_FOUND,
    Match,
    RouteTable,
    build_routes,
)


def definition(
    events: dict[str, dict[str, Any]],
    url: dict[str, Any] | None = None,
    apis: dict[str, Any] | None = None,
) -> TemplateDefinition:
    """One function per event (named for the event), and `UrlFn` with the function URL if given."""
    triggers = {name: FunctionTriggers(f"{name}Id", {name: event}, None) for name, event in events.items()}
    if url is not None:
        triggers["UrlFn"] = FunctionTriggers("UrlFnId", {}, url)
    return TemplateDefinition(Path("template.yaml"), {}, triggers, (), apis or {})


def api(path: str, method: str = "get", **extra: Any) -> dict[str, Any]:
    return {"Type": "Api", "Properties": {"Path": path, "Method": method, **extra}}


def http(path: str | None = None, method: str | None = None, **extra: Any) -> dict[str, Any]:
    properties = {**({"Path": path} if path else {}), **({"Method": method} if method else {}), **extra}
    return {"Type": "HttpApi", "Properties": properties}


def routed(table: RouteTable, method: str, path: str) -> str:
    found = table.match(method, path)
    assert isinstance(found, Match), f"{method} {path}: {found}"
    return found.route.function


def test_exact_then_parameter_then_greedy_then_default() -> None:
    table = build_routes(
        definition(
            {
                "Exact": http("/pets/dog", "GET"),
                "Param": http("/pets/{id}", "GET"),
                "Deeper": http("/pets/{id}/toys", "GET"),
                "Greedy": http("/pets/{proxy+}", "ANY"),
                "Default": http(),
            }
        )
    )
    assert routed(table, "GET", "/pets/dog") == "Exact"
    assert routed(table, "GET", "/pets/cat") == "Param"
    assert routed(table, "GET", "/pets/cat/toys") == "Deeper"
    assert routed(table, "POST", "/pets/cat") == "Greedy"  # no POST on /pets/{id}: the greedy ANY
    assert routed(table, "GET", "/pets/a/b/c") == "Greedy"
    assert routed(table, "DELETE", "/elsewhere") == "Default"
    found = table.match("GET", "/pets/a/b/c")
    assert isinstance(found, Match) and found.path_parameters == {"proxy": "a/b/c"}
    found = table.match("GET", "/pets/cat/")  # a trailing slash is ignored
    assert isinstance(found, Match) and found.path_parameters == {"id": "cat"}


def test_explicit_method_before_any_on_the_same_path() -> None:
    table = build_routes(definition({"Any": http("/items", "ANY"), "Post": http("/items", "post")}))
    assert routed(table, "POST", "/items") == "Post"
    assert routed(table, "GET", "/items") == "Any"


def test_unmatched_requests_get_each_api_types_answer() -> None:
    rest_only = build_routes(definition({"Hello": api("/hello")}))
    assert rest_only.match("GET", "/nope") == MISSING_TOKEN
    assert rest_only.match("POST", "/hello") == MISSING_TOKEN  # a REST API never answers 405
    http_only = build_routes(definition({"Users": http("/users/{id}", "GET")}))
    assert http_only.match("GET", "/nope") == NOT_FOUND
    assert http_only.match("DELETE", "/users/1") == NOT_FOUND
    assert NOT_FOUND == (404, b'{"message":"Not Found"}')
    assert MISSING_TOKEN == (403, b'{"message":"Missing Authentication Token"}')


def test_function_url_is_served_under_its_prefix_with_every_method() -> None:
    table = build_routes(definition({}, url={"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}))
    found = table.match("PATCH", "/lambda-url/UrlFn/a/b")
    assert isinstance(found, Match)
    assert (found.route.function, found.raw_path, found.route.route_key) == ("UrlFn", "/a/b", "$default")
    assert found.route.streaming and found.route.payload_version == "2.0"
    root = table.match("GET", "/lambda-url/UrlFn")
    assert isinstance(root, Match) and root.raw_path == "/"
    assert table.match("GET", "/lambda-url/Other/") == NOT_FOUND


def test_payload_version_stage_and_timeout_from_the_template() -> None:
    table = build_routes(
        definition(
            {
                "Old": http("/old", "GET", PayloadFormatVersion="1.0", TimeoutInMillis=5000),
                "Rest": api("/rest", RestApiId="MyApi"),
            },
            apis={"MyApi": {"StageName": "v1", "BinaryMediaTypes": ["image~1png"], "Variables": {"a": "b"}}},
        )
    )
    old = table.match("GET", "/old")
    rest = table.match("GET", "/rest")
    assert isinstance(old, Match) and isinstance(rest, Match)
    assert (old.route.payload_version, old.route.timeout_ms, old.route.api.stage) == ("1.0", 5000, "$default")
    assert (rest.route.payload_version, rest.route.timeout_ms, rest.route.api.stage) == ("1.0", 29000, "v1")
    assert rest.route.api.binary_media_types == ("image/png",)
    assert rest.route.api.stage_variables == {"a": "b"}
    overridden = build_routes(definition({"Old": http("/old", "GET", TimeoutInMillis=5000)}), 700)
    found = overridden.match("GET", "/old")
    assert isinstance(found, Match) and found.route.timeout_ms == 700


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (api("/x", PayloadFormatVersion="2.0") | {"Properties": {"Path": "/x"}}, "needs Path and Method"),
        (http("/x", "FETCH"), "Properties.Method: 'FETCH' is not one of"),
        (http("x", "GET"), "Properties.Path: 'x' must start with /"),
        (http("/a/{proxy+}/b", "GET"), "must be the last segment"),
        (http("/a/b{id}", "GET"), "a path parameter is a whole segment"),
        (http("/x", "GET", PayloadFormatVersion="3.0"), "PayloadFormatVersion: '3.0' is not 1.0 or 2.0"),
        (http("/x", "GET", TimeoutInMillis=60000), "TimeoutInMillis: 60000 must be 50-30000"),
    ],
)
def test_a_malformed_event_names_the_resource_and_property(event: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_routes(definition({"Broken": event}))
    assert "template.yaml: resource BrokenId, property Events.Broken.Properties" in str(caught.value)
    assert message in str(caught.value)


def test_two_functions_on_one_route_are_refused() -> None:
    with pytest.raises(ConfigError, match="GET /x is both A's and B's route"):
        build_routes(definition({"A": http("/x", "GET"), "B": http("/x", "get")}))


def test_routes_from_a_sam_template(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    template = tmp_path / "template.yaml"
    template.write_text(
        """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.12, CodeUri: src/, Handler: app.handler}
  Api: {BinaryMediaTypes: ["image~1png"]}
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      FunctionUrlConfig: {AuthType: NONE}
      Events:
        Get: {Type: Api, Properties: {Path: /hello, Method: get}}
        Queue: {Type: Schedule, Properties: {Schedule: rate(1 minute)}}
  Users:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        One: {Type: HttpApi, Properties: {Path: "/users/{id}", Method: GET, ApiId: !Ref Users2}}
  Users2:
    Type: AWS::Serverless::HttpApi
    Properties: {StageName: live}
"""
    )
    table = build_routes(load_template(template))
    assert sorted(route.describe() for route in table.routes) == [
        "$default -> Hello (function URL, stage $default, payload 2.0)",
        "GET /hello -> Hello (REST API, stage Prod, payload 1.0)",
        "GET /users/{id} -> Users (HTTP API, stage live, payload 2.0)",
    ]
    hello = table.match("GET", "/hello")
    assert isinstance(hello, Match) and hello.route.api.binary_media_types == ("image/png",)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--api-timeout", "60"], "--api-timeout 60: must be 0.05-30 seconds"),
        (["--api-port", "70000"], "--api-port 70000: must be 0-65535"),
    ],
)
def test_api_flags_are_checked_before_the_server_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    template = tmp_path / "template.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {Runtime: python3.12, CodeUri: src/, Handler: app.handler}\n"
    )
    assert main(["serve", "--template", str(template), *flags]) == 2
    assert message in capsys.readouterr().err
