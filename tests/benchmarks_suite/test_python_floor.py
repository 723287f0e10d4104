"""The Python server floor (benchmarks/python_floor.py): a real relay process running our bootstrap, invoked
over real sockets. Its numbers are the benchmarks'; here it must only be a working Lambda relay."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path
from rapidboot.benchmarks.python_floor import FUNCTION_ARN, TIMEOUT_MS, PythonFloor

# What the runtime was told: the contract's headers reach the handler through our bootstrap's context.
INTROSPECT = """\
import os


def handler(event, context):
    return {
        "event": event,
        "pid": os.getpid(),
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
    }
"""


@pytest.fixture
def introspecting(tmp_path: Path) -> Iterator[PythonFloor]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "introspect.py").write_text(INTROSPECT)
    relay = PythonFloor.start(tmp_path / "relay.log", code, "introspect.handler")
    try:
        yield relay
    finally:
        relay.stop()


def test_the_echo_function_answers_through_the_relay(tmp_path: Path) -> None:
    relay = PythonFloor.start(tmp_path / "relay.log")
    client = InvokeClient(relay.host, relay.port)
    try:
        event = {"data": "x" * 1000, "n": 1}
        status, headers, body = client.post(invoke_path("echo"), json.dumps(event).encode())
        assert status == 200, body
        assert json.loads(body) == event
        assert headers[b"x-amz-executed-version"] == b"$LATEST"
    finally:
        client.close()
        relay.stop()
    assert relay.process.returncode == 0
    with pytest.raises(ProcessLookupError):  # the relay stopped its runtime, and reaped it, before exiting
        os.kill(relay.runtime_pid, 0)


def test_a_second_invoke_reuses_the_runtime_with_the_contract_headers(introspecting: PythonFloor) -> None:
    client = InvokeClient(introspecting.host, introspecting.port)
    try:
        answers = []
        for n in (1, 2):
            status, headers, body = client.post(invoke_path("echo"), json.dumps({"n": n}).encode())
            assert status == 200, body
            answer = json.loads(body)
            assert answer["event"] == {"n": n}
            assert answer["request_id"] == headers[b"x-amzn-requestid"].decode()
            assert answer["arn"] == FUNCTION_ARN
            assert 0 < answer["remaining_ms"] <= TIMEOUT_MS
            assert answer["trace_id"].startswith("Root=1-")
            answers.append(answer)
    finally:
        client.close()
    assert answers[0]["pid"] == answers[1]["pid"] == introspecting.runtime_pid  # warm: the same runtime
    assert answers[0]["request_id"] != answers[1]["request_id"]
    assert answers[0]["trace_id"] != answers[1]["trace_id"]


def test_another_path_is_not_found(introspecting: PythonFloor) -> None:
    client = InvokeClient(introspecting.host, introspecting.port)
    try:
        status, _, _ = client.post(invoke_path("other"), b"{}")
        assert status == 404
        status, _, _ = client.post(invoke_path("echo"), b"{}")  # the connection and the relay still serve
        assert status == 200
    finally:
        client.close()


def test_a_runtime_that_fails_its_init_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the runtime exited with code 1"):
        PythonFloor.start(tmp_path / "relay.log", tmp_path, "missing.handler")
