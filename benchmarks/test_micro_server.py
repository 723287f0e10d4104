"""Micro-benchmarks of the server's hot path (pytest-benchmark; `pytest benchmarks/`, not `make test`):
HTTP request parsing on httptools and the Runtime API / Invoke API routing, with no sockets."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from rapidboot.rapid_server import rendering
from rapidboot.rapid_server.data_plane import runtime_api
from rapidboot.rapid_server.data_plane.environment import Environment
from rapidboot.rapid_server.http import HttpProtocol, Response
from rapidboot.rapid_server.invoke import invoke_api

EVENT = b'{"data": "' + b"x" * 1012 + b'"}'
RESPONSE_POST = (
    b"POST /2018-06-01/runtime/invocation/8f3e2c1a-0000-4000-8000-000000000001/response HTTP/1.1\r\n"
    b"Host: 127.0.0.1:9001\r\nUser-Agent: rapidboot\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(EVENT), EVENT)
)


class Transport:
    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


class AcceptingEnvironment:
    """What the Runtime API routes call, answering at once: only the parsing and routing are measured."""

    def runtime_response(self, *args: Any) -> Response:
        return rendering.RUNTIME_ACCEPTED

    def answers_invoker_first(self, request_id: str) -> bool:
        return False


def _raise(exc: BaseException) -> None:
    raise exc


def test_runtime_api_response_post(benchmark: BenchmarkFixture) -> None:
    """Parse a runtime's `POST /invocation/{id}/response` (1 KB), route it, write the 202."""
    handler = runtime_api.make_handler(cast(Environment, AcceptingEnvironment()))
    protocol = HttpProtocol(handler, 6 * 1024 * 1024, _raise)
    transport = Transport()
    protocol.connection_made(cast(Any, transport))
    benchmark(protocol.data_received, RESPONSE_POST)
    assert transport.written > 0


@pytest.mark.parametrize(
    "path",
    ["/2015-03-31/functions/hello/invocations", "/2015-03-31/functions/arn%3Aaws%3Alambda/invocations"],
)
def test_invoke_api_route_and_payload_check(benchmark: BenchmarkFixture, path: str) -> None:
    """The Invoke API's route match and the payload check every sync invoke goes through."""

    def route() -> bytes:
        match = invoke_api._INVOKE.match(path)
        assert match is not None
        return invoke_api._validated_payload(EVENT)

    assert benchmark(route) == EVENT
