"""AWS's Node.js runtime interface client (npm `aws-lambda-ric`) under our server: the README's promise that
AWS's own runtime clients run under `rapidboot serve`, checked against AWS's code rather than ours.

The client is found through `NODE22` (a Node 22+ `node`) and `NODE_RIC` (the package's `index.mjs`); a
function runs it as `command = [NODE22, NODE_RIC]`, and the client reads its handler from `_HANDLER` and
its code from `LAMBDA_TASK_ROOT`, both set by our server. The handlers are tests/e2e/functions/node/: the
same pieces of the contract as the Python suite (invoke, errors, init errors, context, warm reuse,
timeout, crash, response streaming), written as a Node function author writes them.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from e2e_harness import FUNCTIONS_DIR, RapidServer, running_server, wait_process_gone, write_tables

pytestmark = pytest.mark.e2e

NODE_CODE = FUNCTIONS_DIR / "node"
FUNCTIONS: dict[str, dict[str, Any]] = {
    "echo": {"handler": "index.echo"},
    "shout": {"handler": "index.shout"},
    "fail": {"handler": "index.fail"},
    "counter": {"handler": "index.state"},
    "timeout-reset": {"handler": "index.state", "timeout": 1},
    "crash-exit": {"handler": "index.state"},
    "crash-sigkill": {"handler": "index.state"},
    "context": {"handler": "index.context", "memory": 256},
    "chunks": {"handler": "index.chunks"},
    "breaks": {"handler": "index.breaks"},
    "init-raises": {"handler": "boom.handler"},
    "missing-handler": {"handler": "index.does_not_exist"},
}


@pytest.fixture(scope="module")
def server(node_ric: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("node-ric")
    tables = {
        name: {"code": str(NODE_CODE), "command": node_ric, "timeout": 10, **table}
        for name, table in FUNCTIONS.items()
    }
    config = write_tables(root / "rapidboot.toml", tables)
    with running_server(["--config", str(config), "--state-dir", str(root / "state")], root) as running:
        yield running


def assert_success(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert "X-Amz-Function-Error" not in response.headers, response.text
    assert response.headers["X-Amz-Executed-Version"] == "$LATEST"


def assert_function_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled", dict(response.headers)
    body: dict[str, Any] = response.json()
    return body


def test_echo(server: RapidServer) -> None:
    event = {"hello": "world", "numbers": [1, 2.5, None, True], "nested": {"ü": "ñ"}}
    response = server.invoke("echo", event)
    assert_success(response)
    assert response.json() == event
    assert response.headers["content-type"] == "application/json"


def test_a_large_event(server: RapidServer) -> None:
    event = {"blob": "a" * (1024 * 1024)}
    response = server.invoke("echo", event)
    assert_success(response)
    assert response.json() == event


def test_handler_error(server: RapidServer) -> None:
    body = assert_function_error(server.invoke("fail", {"n": 7}))
    assert (body["errorType"], body["errorMessage"]) == ("CustomError", "something bad: 7")
    assert body["trace"][0] == "CustomError: something bad: 7"  # the Node client's shape: `trace`
    assert "index.mjs" in body["trace"][1], body


@pytest.mark.parametrize(
    ("name", "error_type", "message"),
    [
        ("init-raises", "BootError", "failed during init"),
        ("missing-handler", "Runtime.HandlerNotFound", "index.does_not_exist is undefined or not exported"),
    ],
)
def test_init_error_every_time(server: RapidServer, name: str, error_type: str, message: str) -> None:
    for _ in range(2):  # a failed init is retried on the next invoke
        body = assert_function_error(server.invoke(name, {}))
        assert (body["errorType"], body["errorMessage"]) == (error_type, message), body
    for process in server.runtime_processes(name):
        assert wait_process_gone(process, 10), f"the runtime of {name} outlived its init error"


def test_warm_reuse_and_one_request_id(server: RapidServer) -> None:
    responses = [server.invoke("counter", {}) for _ in range(3)]
    for response in responses:
        assert_success(response)
    assert [response.json()["count"] for response in responses] == [1, 2, 3]
    assert len({response.json()["pid"] for response in responses}) == 1
    reports = [server.report(response.headers["x-amzn-RequestId"]) for response in responses]
    assert reports[0].init_duration_ms is not None
    assert [report.init_duration_ms for report in reports[1:]] == [None, None]


def test_function_output_carries_the_request_id(server: RapidServer) -> None:
    response = server.invoke("shout", {"word": "ping"})
    assert_success(response)
    request_id = response.headers["x-amzn-RequestId"]
    server.report(request_id)
    # The Node client writes its own `timestamp<TAB>request id<TAB>INFO<TAB>message` lines.
    assert any(request_id in line and line.endswith("handler says ping") for line in server.stdout.lines), (
        server.output_tail()
    )


def test_context(server: RapidServer) -> None:
    client_context = {"custom": {"tenant": "t-1"}, "env": {"locale": "en"}}
    encoded = base64.b64encode(json.dumps(client_context).encode()).decode()
    response = server.invoke("context", {}, headers={"X-Amz-Client-Context": encoded})
    assert_success(response)
    context = response.json()
    assert context["function_name"] == "context"
    assert context["function_version"] == "$LATEST"
    assert context["memory_limit_in_mb"] == "256"
    assert context["invoked_function_arn"].endswith(":function:context")
    assert context["aws_request_id"] == response.headers["x-amzn-RequestId"]
    assert context["log_group_name"] == "/aws/lambda/context"
    assert context["log_stream_name"]
    assert 0 < context["remaining_time_in_millis"] <= 10_000
    assert context["client_context"]["custom"] == {"tenant": "t-1"}
    assert context["task_root"] == context["cwd"] == str(NODE_CODE)


def test_timeout_then_fresh_environment(server: RapidServer) -> None:
    first = server.invoke("timeout-reset", {})
    assert_success(first)
    old = server.seen_process(first.json()["pid"])
    response = server.invoke("timeout-reset", {"sleep": 30})
    request_id = response.headers["x-amzn-RequestId"]
    assert assert_function_error(response) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    after = server.invoke("timeout-reset", {})
    assert_success(after)
    assert after.json()["count"] == 1 and after.json()["pid"] != old.pid
    assert wait_process_gone(old, 10)


@pytest.mark.parametrize(
    ("name", "event", "reason"),
    [("crash-exit", {"exit": 3}, "exit status 3"), ("crash-sigkill", {"sigkill": True}, "signal: killed")],
)
def test_crash_then_fresh_environment(
    server: RapidServer, name: str, event: dict[str, object], reason: str
) -> None:
    first = server.invoke(name, {})
    assert_success(first)
    old = server.seen_process(first.json()["pid"])
    body = assert_function_error(server.invoke(name, event))
    assert body["errorType"] == "Runtime.ExitError"
    assert re.fullmatch(rf"RequestId: \S+ Error: Runtime exited with error: {reason}", body["errorMessage"])
    assert wait_process_gone(old, 10)
    after = server.invoke(name, {})
    assert_success(after)
    assert after.json()["count"] == 1


def test_streamed_response(server: RapidServer) -> None:
    """`awslambda.streamifyResponse`: the client posts in streaming mode; a buffered invoke gets it whole."""
    response = server.invoke("chunks", {"count": 3})
    assert_success(response)
    assert response.content == b"chunk 0\nchunk 1\nchunk 2\n"
    assert response.headers["content-type"] == "application/octet-stream"


def test_stream_that_fails_midway(server: RapidServer) -> None:
    """The client reports the error in the stream's trailers; the invoker sees a function error."""
    body = assert_function_error(server.invoke("breaks", {}))
    assert (body["errorType"], body["errorMessage"]) == ("Error", "the stream broke")
