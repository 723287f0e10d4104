"""Response streaming: generators, async generators and `rapidboot.runtime.streaming` helpers, chunk by
chunk."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent, FakeRuntimeAPI, Recorded
from runtime_harness import run_runtime, spawn_runtime, write

APP = """
import asyncio, socket
from rapidboot.runtime.streaming import StreamingResponse, http_response

def wait_for_gate(port):
    # Blocks until the test has seen the chunks sent so far: the handler cannot finish before that.
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.recv(1)

def gated(event, context):
    def body():
        yield b"first"
        wait_for_gate(event["gate"])
        yield "second"
    return body()

async def gated_async(event, context):
    async def body():
        yield b"first"
        await asyncio.get_running_loop().run_in_executor(None, wait_for_gate, event["gate"])
        yield "second"
    return body()

def plain(event, context):
    yield from (b"a", b"", "b\\u00e9")

def http(event, context):
    return http_response(iter([b"<p>", b"hi</p>"]), status_code=201,
                         headers={"content-type": "text/html"}, cookies=["a=1"])

def custom(event, context):
    return StreamingResponse([b"x,y\\n"], content_type="text/csv")

def fails(event, context):
    yield b"partial"
    raise KeyError("mid-stream")

def bad_chunk(event, context):
    yield 42
"""


def _stream(api: FakeRuntimeAPI) -> Recorded:
    (post,) = api.posts("/response")
    return post


def _assert_streaming_headers(post: Recorded, content_type: str = "application/octet-stream") -> None:
    assert post.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert post.headers["transfer-encoding"] == "chunked"
    assert post.headers["trailer"] == "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"
    assert post.headers["content-type"] == content_type
    assert "content-length" not in post.headers


@pytest.mark.parametrize("handler", ["app.gated", "app.gated_async"])
def test_each_chunk_is_sent_as_soon_as_it_is_yielded(task_root: Path, handler: str) -> None:
    write(task_root, {"app.py": APP})
    with socket.create_server(("127.0.0.1", 0)) as gate:
        gate.settimeout(10)
        event = FakeEvent({"gate": gate.getsockname()[1]}, request_id="r1")
        with FakeRuntimeAPI([event]) as api:
            proc = spawn_runtime(api, task_root, handler)
            conn, _ = gate.accept()  # the handler yielded "first" and now waits for us
            first = api.wait_for_chunks(1)
            assert [data for _, data in first] == [b"first"]  # arrived while the handler is blocked
            assert api.posts("/response")[0].trailers == {}  # ... and the body is not finished
            conn.sendall(b"go")
            conn.close()
            _, stderr = proc.communicate(timeout=20)
    post = _stream(api)
    _assert_streaming_headers(post)
    assert [data for _, data in post.chunks] == [b"first", b"second"], stderr
    assert post.chunks[0][0] < post.chunks[1][0]
    assert post.trailers == {}


def test_generator_chunks_and_empty_chunks_skipped(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, [FakeEvent({})], handler="app.plain")
    post = _stream(run.api)
    _assert_streaming_headers(post)
    assert [data for _, data in post.chunks] == [b"a", "bé".encode()]  # an empty chunk would end the body


def test_http_integration_prelude(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, [FakeEvent({})], handler="app.http")
    post = _stream(run.api)
    _assert_streaming_headers(post, "application/vnd.awslambda.http-integration-response")
    prelude, separator, body = post.body.partition(b"\x00" * 8)
    assert separator and body == b"<p>hi</p>"
    assert json.loads(prelude) == {
        "statusCode": 201,
        "headers": {"content-type": "text/html"},
        "cookies": ["a=1"],
    }


def test_streaming_response_with_content_type(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, [FakeEvent({})], handler="app.custom")
    post = _stream(run.api)
    _assert_streaming_headers(post, "text/csv")
    assert post.body == b"x,y\n"


def test_mid_stream_error_sends_the_error_trailers(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, [FakeEvent({}, request_id="r1")], handler="app.fails")
    post = _stream(run.api)
    assert post.body == b"partial"
    assert post.trailers["lambda-runtime-function-error-type"] == "KeyError"
    body = json.loads(base64.b64decode(post.trailers["lambda-runtime-function-error-body"]))
    assert (body["errorType"], body["errorMessage"], body["requestId"]) == ("KeyError", "'mid-stream'", "r1")
    assert "in fails" in body["stackTrace"][0]
    assert run.api.posts("/error") == []
    assert "[ERROR] KeyError: 'mid-stream'" in run.stdout


def test_a_chunk_that_is_not_bytes_or_str_is_a_marshal_error(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, [FakeEvent({})], handler="app.bad_chunk")
    post = _stream(run.api)
    assert post.trailers["lambda-runtime-function-error-type"] == "Runtime.MarshalError"
    body = json.loads(base64.b64decode(post.trailers["lambda-runtime-function-error-body"]))
    assert (
        body["errorMessage"] == "Unable to marshal response: a streamed chunk must be bytes or str, not int"
    )


def test_the_runtime_keeps_serving_after_a_stream(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    events = [FakeEvent({}, request_id="r1"), FakeEvent({}, request_id="r2")]
    run = run_runtime(task_root, events, handler="app.plain")
    assert [post.body for post in run.api.posts("/response")] == ["abé".encode()] * 2
    # The loop goes on after a streamed invoke: next, stream, next, stream.
    paths = [r.path.rsplit("/", 2)[-2:] for r in run.api.requests[:4]]
    assert paths == [["invocation", "next"], ["r1", "response"], ["invocation", "next"], ["r2", "response"]]
