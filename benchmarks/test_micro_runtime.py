"""Micro-benchmarks of the bootstrap's hot path (pytest-benchmark; `pytest benchmarks/`, not `make test`):
the `/next` response parse, event decode, response encode, and the context object."""

from __future__ import annotations

import json

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from rapidboot.benchmarks.coldstart import big_event
from rapidboot.runtime.client import Invocation
from rapidboot.runtime.config import RuntimeConfig
from rapidboot.runtime.context import LambdaContext
from rapidboot.runtime.http_parser import ResponseParser
from rapidboot.runtime.logs import LogSink
from rapidboot.runtime.marshal import decode_event, encode_response

EVENTS = {"1KB": big_event(1024), "100KB": big_event(100 * 1024)}
CONFIG = RuntimeConfig.from_environ(
    ["app.handler"],
    {
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    },
    "/var/task",
)


def next_response(event: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Lambda-Runtime-Aws-Request-Id: 8f3e2c1a-0000-4000-8000-000000000001\r\n"
        b"Lambda-Runtime-Deadline-Ms: 4102444800000\r\n"
        b"Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:fn\r\n"
        b"Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(event), event)
    )


@pytest.mark.parametrize("size", list(EVENTS))
def test_parse_next_response(benchmark: BenchmarkFixture, size: str) -> None:
    raw = next_response(EVENTS[size])

    def parse() -> int:
        return len(ResponseParser().feed(raw))

    assert benchmark(parse) == 1


@pytest.mark.parametrize("size", list(EVENTS))
def test_decode_event(benchmark: BenchmarkFixture, size: str) -> None:
    event = EVENTS[size]
    assert benchmark(decode_event, event, "application/json") == json.loads(event)


@pytest.mark.parametrize("size", list(EVENTS))
def test_encode_response(benchmark: BenchmarkFixture, size: str) -> None:
    result = json.loads(EVENTS[size])
    body, _ = benchmark(encode_response, result)
    assert json.loads(body) == result


def test_context_construction(benchmark: BenchmarkFixture) -> None:
    client_context = json.dumps({"custom": {"k": "v"}, "env": {"a": "b"}})  # as the Runtime API sends it
    invocation = Invocation(
        "8f3e2c1a-0000-4000-8000-000000000001",
        b"{}",
        deadline_ms=4102444800000,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
    )
    invocation.client_context = client_context
    context = benchmark(LambdaContext, invocation, CONFIG, LogSink())
    assert context.aws_request_id == invocation.request_id
