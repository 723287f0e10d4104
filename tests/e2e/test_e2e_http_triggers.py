"""HTTP triggers (`rapidboot serve --template`): a real server, real HTTP clients (httpx and curl) on its API
listener, and applications written for API Gateway (aws-lambda-powertools resolvers) running unchanged.

One server serves the module's application (its template below); the example application gets its own.
Nothing here waits on time: a function that must still be running when the client looks waits for a gate
file the test creates.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
    LambdaFunctionUrlModel,
)
from e2e_harness import RapidServer, running_server

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "api"
TRIGGERS = re.compile(r"HTTP triggers on (http://[0-9.]+:\d+)")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {Runtime: python3.12, CodeUri: src/, Timeout: 10}
  Api: {BinaryMediaTypes: ["image~1png"]}
Resources:
  RestApp:
    Type: AWS::Serverless::Function
    Properties:
      Handler: rest_app.handler
      Events:
        Any: {Type: Api, Properties: {Path: "/shop/{proxy+}", Method: any}}
  HttpApp:
    Type: AWS::Serverless::Function
    Properties:
      Handler: http_app.handler
      Events:
        Any: {Type: HttpApi, Properties: {Path: "/store/{proxy+}", Method: ANY}}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Handler: echo.handler
      FunctionUrlConfig: {AuthType: NONE}
      Events:
        V2: {Type: HttpApi, Properties: {Path: "/echo/{name}", Method: POST}}
        V1: {Type: Api, Properties: {Path: "/echo-rest/{name}", Method: post}}
  Answers:
    Type: AWS::Serverless::Function
    Properties:
      Handler: answers.handler
      Events:
        V2: {Type: HttpApi, Properties: {Path: "/answers/{kind}", Method: GET}}
        V1: {Type: Api, Properties: {Path: "/rest-answers/{kind}", Method: get}}
  Gate:
    Type: AWS::Serverless::Function
    Properties:
      Handler: gate.handler
      ReservedConcurrentExecutions: 1
      Events:
        Slow: {Type: HttpApi, Properties: {Path: /gate, Method: GET, TimeoutInMillis: 200}}
  Stream:
    Type: AWS::Serverless::Function
    Properties:
      Handler: stream.handler
      FunctionUrlConfig: {AuthType: NONE, InvokeMode: RESPONSE_STREAM}
"""

SOURCES = {
    "rest_app.py": """\
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

app = APIGatewayRestResolver()


@app.get("/shop/items/<item_id>")
def get_item(item_id):
    event = app.current_event
    ip = event.request_context.identity.source_ip
    return {"item": item_id, "q": event.get_query_string_value("q"), "ip": ip}


@app.post("/shop/items")
def create_item():
    return {"created": app.current_event.json_body}, 201


def handler(event, context):
    return app.resolve(event, context)
""",
    "http_app.py": """\
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

app = APIGatewayHttpResolver()


@app.get("/store/users/<user_id>")
def get_user(user_id):
    event = app.current_event
    return {"user": user_id, "cookies": event.cookies, "stage": event.request_context.stage}


def handler(event, context):
    return app.resolve(event, context)
""",
    "echo.py": """\
import json


def handler(event, context):
    return {"statusCode": 200, "body": json.dumps(event)}
""",
    "answers.py": """\
import base64


def handler(event, context):
    kind = event["pathParameters"]["kind"]
    if kind == "malformed":
        return {"statusCode": "two hundred"}
    if kind == "error":
        raise RuntimeError("the handler failed")
    if kind == "binary":
        body = base64.b64encode(bytes.fromhex(event["queryStringParameters"]["hex"])).decode()
        headers = {"Content-Type": "image/png"}
        return {"statusCode": 200, "headers": headers, "body": body, "isBase64Encoded": True}
    if kind == "shortcut":
        return {"hello": "world"}
    if kind == "cookies":
        return {"statusCode": 201, "cookies": ["a=1", "b=2"], "headers": {"X-Kind": kind}, "body": "made"}
    return {"statusCode": 404, "body": "unknown kind"}
""",
    "gate.py": """\
import os
import time


def handler(event, context):
    gate = event["queryStringParameters"]["gate"]
    while not os.path.exists(gate) and context.get_remaining_time_in_millis() > 500:
        time.sleep(0.005)  # the function waits for the test's gate (not the test for the function)
    return {"statusCode": 200, "body": "through"}
""",
    "stream.py": """\
import os
import time

from rapidboot.runtime.streaming import http_response


def handler(event, context):
    gate = event["queryStringParameters"]["gate"]

    def body():
        yield "first\\n"
        while not os.path.exists(gate) and context.get_remaining_time_in_millis() > 500:
            time.sleep(0.005)
        yield "second\\n"

    return http_response(body(), status_code=207, headers={"content-type": "text/plain"}, cookies=["s=1"])
""",
}


def api_base(server: RapidServer) -> str:
    for line in server.stderr.lines:
        found = TRIGGERS.search(line)
        if found:
            return found[1]
    raise AssertionError(f"no HTTP triggers line\n{server.output_tail()}")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RapidServer, httpx.Client]]:
    project = tmp_path_factory.mktemp("http-app")
    (project / "src").mkdir()
    for name, text in SOURCES.items():
        (project / "src" / name).write_text(text)
    (project / "template.yaml").write_text(TEMPLATE)
    args = [
        "--template",
        str(project / "template.yaml"),
        "--api-port",
        "0",
        "--state-dir",
        str(project / ".st"),
    ]
    with (
        running_server(args, cwd=project) as server,
        httpx.Client(base_url=api_base(server), timeout=30) as client,
    ):
        yield server, client


def test_powertools_rest_resolver_runs_unchanged(app_server: tuple[RapidServer, httpx.Client]) -> None:
    _, client = app_server
    got = client.get("/shop/items/17", params={"q": "blue"})
    assert got.status_code == 200, got.text
    assert got.json() == {"item": "17", "q": "blue", "ip": "127.0.0.1"}
    created = client.post("/shop/items", json={"name": "lamp"})
    assert created.status_code == 201 and created.json() == {"created": {"name": "lamp"}}
    missing = client.get("/shop/nothing-here")  # the resolver's own 404, through API Gateway's mapping
    assert missing.status_code == 404


def test_powertools_http_resolver_runs_unchanged(app_server: tuple[RapidServer, httpx.Client]) -> None:
    _, client = app_server
    got = client.get("/store/users/ada", headers={"Cookie": "theme=dark; s=1"})
    assert got.status_code == 200, got.text
    assert got.json() == {"user": "ada", "cookies": ["theme=dark", "s=1"], "stage": "$default"}


def test_events_carry_the_real_request(app_server: tuple[RapidServer, httpx.Client]) -> None:
    """Each payload format, as the function received it, parsed by Powertools' models."""
    _, client = app_server
    v2 = client.post("/echo/ada?x=1&x=2", content=b'{"a": 1}', headers={"Content-Type": "application/json"})
    v1 = client.post("/echo-rest/bob?x=1&x=2", content=b"hello")
    url = client.put("/lambda-url/Echo/deep/path?y=3", content=b"payload")
    event2 = APIGatewayProxyEventV2Model.model_validate(v2.json())
    event1 = APIGatewayProxyEventModel.model_validate(v1.json())
    event_url = LambdaFunctionUrlModel.model_validate(url.json())
    assert (event2.routeKey, event2.rawPath, event2.pathParameters) == (
        "POST /echo/{name}",
        "/echo/ada",
        {"name": "ada"},
    )
    assert event2.queryStringParameters == {"x": "1,2"} and event2.body == '{"a": 1}'
    assert str(event2.requestContext.http.sourceIp).startswith("127.0.0.1")
    assert (event1.resource, event1.path, event1.requestContext.stage) == (
        "/echo-rest/{name}",
        "/echo-rest/bob",
        "Prod",
    )
    assert event1.multiValueQueryStringParameters == {"x": ["1", "2"]} and event1.body == "hello"
    assert (event_url.routeKey, event_url.rawPath, event_url.body) == ("$default", "/deep/path", "payload")
    ids = {
        event2.requestContext.requestId,
        event1.requestContext.requestId,
        event_url.requestContext.requestId,
    }
    assert len(ids) == 3  # a request id of its own for each request
    assert v2.headers["apigw-requestid"] == event2.requestContext.requestId  # as HTTP APIs answer
    assert v1.headers["x-amzn-requestid"] == event1.requestContext.requestId


def test_binary_bodies_pass_through_unchanged(app_server: tuple[RapidServer, httpx.Client]) -> None:
    _, client = app_server
    sent = client.post("/echo-rest/png", content=PNG, headers={"Content-Type": "image/png"})
    event = sent.json()
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == PNG
    back = client.get("/answers/binary", params={"hex": PNG.hex()})
    assert back.status_code == 200 and back.content == PNG
    assert back.headers["content-type"] == "image/png"
    rest_back = client.get("/rest-answers/binary", params={"hex": PNG.hex()}, headers={"Accept": "image/png"})
    assert rest_back.content == PNG


def test_responses_are_mapped_as_api_gateway_maps_them(app_server: tuple[RapidServer, httpx.Client]) -> None:
    server, client = app_server
    shortcut = client.get("/answers/shortcut")
    assert (shortcut.status_code, shortcut.json()) == (200, {"hello": "world"})
    cookies = client.get("/answers/cookies")
    assert cookies.status_code == 201 and cookies.text == "made" and cookies.headers["x-kind"] == "cookies"
    assert cookies.headers.get_list("set-cookie") == ["a=1", "b=2"]
    for path in ("/answers/malformed", "/rest-answers/malformed", "/answers/error"):
        failed = client.get(path)
        assert failed.status_code == 502, path
        assert failed.json() == {"message": "Internal server error"}
    assert server.stderr.wait_for(lambda line: "malformed Lambda proxy response: statusCode" in line, 10)
    assert client.get("/nowhere").json() == {"message": "Not Found"}
    assert client.get("/nowhere").status_code == 404


def test_integration_timeout_then_throttle(
    app_server: tuple[RapidServer, httpx.Client], tmp_path: Path
) -> None:
    """The gate function outlives its 200 ms integration timeout (504) and, still running, holds its only
    unit of reserved concurrency: the next request is throttled (429). Once the gate opens, it serves."""
    _, client = app_server
    gate = tmp_path / "gate"
    late = client.get("/gate", params={"gate": str(gate)})
    assert (late.status_code, late.json()) == (504, {"message": "Endpoint request timed out"})
    throttled = client.get("/gate", params={"gate": str(gate)})
    assert (throttled.status_code, throttled.json()) == (429, {"message": "Too Many Requests"})
    gate.touch()
    for _ in range(1000):  # until the first invoke has given its unit back (a few requests)
        served = client.get("/gate", params={"gate": str(gate)})
        if served.status_code != 429:
            break
    assert (served.status_code, served.text) == (200, "through")


def test_streaming_function_url_streams(app_server: tuple[RapidServer, httpx.Client], tmp_path: Path) -> None:
    """The first line arrives while the function is still waiting for the gate: streamed, not buffered."""
    _, client = app_server
    gate = tmp_path / "gate"
    with client.stream("GET", "/lambda-url/Stream/", params={"gate": str(gate)}) as response:
        assert response.status_code == 207
        assert response.headers["content-type"] == "text/plain"
        assert response.headers["set-cookie"] == "s=1"
        lines = response.iter_lines()
        assert next(lines) == "first"
        gate.touch()
        assert list(lines) == ["second"]


@pytest.fixture
def example(tmp_path: Path) -> Iterator[str]:
    project = shutil.copytree(EXAMPLE, tmp_path / "api")  # runtimes never write into the repository
    with running_server(["--api-port", "0", "--state-dir", str(tmp_path / ".st")], cwd=project) as server:
        yield api_base(server)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_example_with_curl_and_httpx(example: str) -> None:
    def curl(path: str) -> tuple[int, str]:
        done = subprocess.run(
            ["curl", "-sS", "-N", "-w", "\n%{http_code}", example + path],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body

    assert curl("/hello") == (200, json.dumps({"message": "Hello from us-east-1", "stage": "dev"}))
    assert curl("/users/42") == (200, json.dumps({"id": "42", "name": "user 42"}))
    assert curl("/lambda-url/HelloFunction/")[0] == 200
    assert curl("/lambda-url/StreamFunction/?count=2") == (200, "line 1 of 2\nline 2 of 2\n")
    assert curl("/users") == (404, '{"message":"Not Found"}')
    with httpx.Client(base_url=example) as client:
        assert client.get("/users/7").json() == {"id": "7", "name": "user 7"}
        assert client.post("/hello").json() == {"message": "Missing Authentication Token"}


def test_no_http_triggers_no_listener(tmp_path: Path) -> None:
    """A template without HTTP events or function URLs starts no API listener (its port stays free)."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "echo.py").write_text(SOURCES["echo.py"])
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Echo:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {Runtime: python3.12, CodeUri: src/, Handler: echo.handler}\n"
    )
    with running_server(["--state-dir", str(tmp_path / ".st")], cwd=tmp_path) as server:
        assert not any(TRIGGERS.search(line) for line in server.stderr.lines)
        assert server.invoke("Echo", {}).status_code == 200
