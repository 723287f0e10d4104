"""Our bootstrap under AWS's own Runtime Interface Emulator, and under our server: the same function code
(tests/e2e/functions), the same invoke, the same observable result.

The README promises that the `bootstrap` which runs under `rapidboot serve` runs on AWS Lambda. AWS's emulator
(`aws-lambda-rie`, found through `RIE_BIN` or PATH) is AWS's own Runtime API, so each test below runs once per
server. Where the emulator answers differently from our server, the test says so in an `if emulated:` branch
that asserts what the emulator does, with the reason: every such branch is a known emulator fault (listed in
the peers reference, ../shared/reference/peers.md in this project's workspace) or a difference of defaults,
and fails the day the emulator changes.

The emulator serves one function, named `function` in the invoke path, one invoke at a time, and starts the
runtime on the first invoke: each function gets its own emulator, configured by the variables it reads
(AWS_LAMBDA_FUNCTION_NAME, _MEMORY_SIZE, _TIMEOUT) and run in the function's directory with LAMBDA_TASK_ROOT
set, as AWS's base images do. It prints no readiness line; it is ready when its port accepts a connection.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import (
    READY_TIMEOUT_S,
    SUITE_FUNCTIONS,
    FunctionSpec,
    LineCollector,
    RapidServer,
    ServerStartError,
    prepare_code,
    running_server,
    server_environment,
    supervised,
    wait_process_gone,
    wait_until,
    write_config,
)

from rapidboot.benchmarks.rie import free_port
from rapidboot.rapid_server.config import bootstrap_command

pytestmark = pytest.mark.e2e

SERVERS = ("rapidboot serve", "aws-lambda-rie")  # conftest skips the emulator's turn when it is missing
MAX_REQUEST_BYTES = 6_291_456
RIE_INVOKE_PATH = "/2015-03-31/functions/function/invocations"
REPORT_ID = re.compile(r"^REPORT RequestId: (\S+)\t")
INIT_DURATION = re.compile(r"\tInit Duration: ([0-9.]+) ms")  # first on the emulator's line, last on ours

# The suite's functions (an emulator is started only for those a test invokes), and two that stream.
FUNCTIONS: dict[str, FunctionSpec] = {
    spec.name: spec
    for spec in (
        *SUITE_FUNCTIONS,
        FunctionSpec("chunks", "streaming", "app.chunks", timeout=10),
        FunctionSpec("breaks", "streaming", "app.breaks", timeout=10),
    )
}


class Emulator(RapidServer):
    """`aws-lambda-rie` running our bootstrap for one function, driven like the harness's server: its own
    session, SIGTERM at the end, exit 0 and no runtime left behind."""

    def __init__(self, binary: Path, spec: FunctionSpec, code: Path) -> None:
        task_root = code / spec.code
        environment = server_environment()
        environment.update(spec.environment)
        environment.update(
            AWS_LAMBDA_FUNCTION_NAME=spec.name,
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(spec.memory or 128),
            AWS_LAMBDA_FUNCTION_TIMEOUT=str(spec.timeout or 3),
            LAMBDA_TASK_ROOT=str(task_root),
        )
        super().__init__([], task_root, environment)
        self.host, self.port = "127.0.0.1", free_port()
        self.args = [
            str(binary),
            "--runtime-interface-emulator-address",
            f"{self.host}:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{free_port()}",
            *bootstrap_command(spec.handler),
        ]

    def start(self) -> Emulator:
        self.process = self._spawn()
        if not wait_until(self._accepts, READY_TIMEOUT_S, interval=0.01):
            self._kill_group()
            raise ServerStartError(f"aws-lambda-rie did not listen on {self.port}.\n{self.output_tail()}")
        self._client = httpx.Client(base_url=self.endpoint, timeout=30.0)
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.stdout = LineCollector(process.stdout, "rie-stdout")
        self.stderr = LineCollector(process.stderr, "rie-stderr")
        return process

    def _accepts(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            return True  # exited: reported by the first invoke's connection error and the output tail
        try:
            socket.create_connection((self.host, self.port), timeout=1).close()
        except OSError:
            return False
        return True

    @staticmethod
    def invoke_path(name: str) -> str:
        return RIE_INVOKE_PATH  # the only path it serves (RIE #43, #66); the name is in its environment


class Servers:
    """The server a test talks to for one function: our shared server, or that function's own emulator."""

    def __init__(self, kind: str, code: Path, stack: ExitStack, ours: RapidServer | None, rie: Path | None):
        self.kind = kind
        self.emulated = kind == "aws-lambda-rie"
        self._code = code
        self._stack = stack
        self._ours = ours
        self._rie = rie
        self._emulators: dict[str, RapidServer] = {}

    def __call__(self, name: str) -> RapidServer:
        if self._ours is not None:
            return self._ours
        if name not in self._emulators:
            assert self._rie is not None
            emulator = Emulator(self._rie, FUNCTIONS[name], self._code)
            self._emulators[name] = self._stack.enter_context(supervised(emulator))
        return self._emulators[name]


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rie")
    return prepare_code(root)  # a copy of tests/e2e/functions, streaming/ included


@pytest.fixture(scope="module", params=SERVERS)
def servers(request: pytest.FixtureRequest, code: Path) -> Iterator[Servers]:
    with ExitStack() as stack:
        if request.param == "aws-lambda-rie":
            rie = request.getfixturevalue("rie_bin")
            yield Servers(request.param, code, stack, None, rie)
        else:
            config = write_config(
                code.parent / "rapidboot.toml", list(FUNCTIONS.values()), "rapidboot", "functions"
            )
            ours = stack.enter_context(running_server(["--config", str(config)], cwd=code.parent))
            yield Servers(request.param, code, stack, ours, None)


# --- what differs, in one place ---------------------------------------------------------------------------


def assert_success(servers: Servers, response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert "X-Amz-Function-Error" not in response.headers, response.text
    if not servers.emulated:
        assert response.headers.get("x-amzn-RequestId")
    else:
        # The emulator answers no x-amzn-RequestId: an invoker cannot match an answer to its log lines.
        assert "x-amzn-RequestId" not in response.headers


def assert_function_error(
    servers: Servers, response: httpx.Response, *, emulator_status: int = 200
) -> dict[str, Any]:
    """Lambda: 200 and `X-Amz-Function-Error: Unhandled`, whatever failed. The emulator never sets the header
    (peers.md: "X-Amz-Function-Error never set"), so its invoker cannot tell a failure from a result; it
    answers init errors and runtime exits with 502."""
    if servers.emulated:
        assert response.status_code == emulator_status, response.text
        assert "X-Amz-Function-Error" not in response.headers, dict(response.headers)
    else:
        assert response.status_code == 200, response.text
        assert response.headers.get("X-Amz-Function-Error") == "Unhandled", dict(response.headers)
    body = response.json()
    assert isinstance(body, dict), body
    return body


def assert_content_type(servers: Servers, response: httpx.Response, runtime_sent: str) -> None:
    if servers.emulated:
        # peers.md: "runtime's content type lost": Go's net/http sniffs one (text/plain for JSON).
        assert response.headers["content-type"] != runtime_sent
    else:
        assert response.headers["content-type"] == runtime_sent


def init_durations(server: RapidServer, request_ids: Sequence[str | None]) -> list[float | None]:
    """The Init Duration (None: none) of each invoke's REPORT line, waiting (bounded) for the lines. By
    request id on our server (it holds every function); in order on a function's own emulator, which gives
    its invoker no request id."""
    if isinstance(server, Emulator):
        lines = report_lines(server, len(request_ids))
    else:
        lines = [
            server.wait_for_line(lambda line, rid=rid: line.startswith(f"REPORT RequestId: {rid}\t"))
            for rid in request_ids
        ]
    return [float(match[1]) if (match := INIT_DURATION.search(line)) else None for line in lines]


def report_lines(server: RapidServer, count: int) -> list[str]:
    """The first `count` REPORT lines of a server (bounded wait)."""

    def lines() -> list[str]:
        return [line for line in server.stdout.lines if REPORT_ID.match(line)]

    server.stdout.wait_for(lambda _: len(lines()) >= count)
    found = lines()
    assert len(found) >= count, server.output_tail()
    return found[:count]


def emulated_request_id(server: RapidServer) -> str:
    """The request id of an emulator's first invoke, from its REPORT line."""
    match = REPORT_ID.match(report_lines(server, 1)[0])
    assert match is not None
    return match[1]


def invoke(servers: Servers, name: str, payload: object = None, **kwargs: object) -> httpx.Response:
    return servers(name).invoke(name, payload, **kwargs)  # type: ignore[arg-type]


# --- success ----------------------------------------------------------------------------------------------


def test_echo(servers: Servers) -> None:
    event = {"hello": "world", "numbers": [1, 2.5, None, True], "nested": {"ü": "ñ"}}
    response = invoke(servers, "echo", event)
    assert_success(servers, response)
    assert response.json() == event
    assert_content_type(servers, response, "application/json")


@pytest.mark.parametrize("body", [b"123", b'"text"', b"null", b"[1, 2]", b"true"])
def test_any_json_value_is_an_event(servers: Servers, body: bytes) -> None:
    response = invoke(servers, "echo", body=body)
    assert_success(servers, response)
    assert response.json() == json.loads(body)


def test_chunked_request_body(servers: Servers) -> None:
    """An invoke sent with `Transfer-Encoding: chunked` (no Content-Length), as streaming clients send."""
    server = servers("echo")
    url = server.endpoint + server.invoke_path("echo")
    parts = [b'{"chunked": ', b'"yes", "pad": "', b"p" * 70_000, b'"}']
    with httpx.Client(timeout=30.0) as client:
        response = client.post(url, content=iter(parts))
    assert_success(servers, response)
    assert response.json() == {"chunked": "yes", "pad": "p" * 70_000}


def test_one_megabyte_event_and_five_megabyte_response(servers: Servers) -> None:
    event = {"blob": "a" * (1024 * 1024), "tail": "ok"}
    response = invoke(servers, "echo-big", event)
    assert_success(servers, response)
    assert response.json() == event
    size = 5 * 1024 * 1024
    response = invoke(servers, "large-response", {"size": size})
    assert_success(servers, response)
    assert response.json() == {"data": "x" * size}


def test_bytes_result(servers: Servers) -> None:
    response = invoke(servers, "bytes", {})
    assert_success(servers, response)
    assert response.content == b"\x00\x01rapidboot\xff\xfe"
    assert_content_type(servers, response, "application/unknown")


def test_streamed_response_arrives_whole(servers: Servers) -> None:
    response = invoke(servers, "chunks", {"count": 3})
    assert_success(servers, response)
    assert response.content == b"chunk 0\nchunk 1\nchunk 2\n"
    assert_content_type(servers, response, "application/octet-stream")


def test_stream_that_fails_midway(servers: Servers) -> None:
    response = invoke(servers, "breaks", {})
    if servers.emulated:
        # peers.md: streaming "accepted but fully buffered; trailers ignored": the error the runtime sent in
        # the stream's trailers is lost, and the invoker gets the partial body as a success.
        assert (response.status_code, response.content) == (200, b"first part\n")
        assert "X-Amz-Function-Error" not in response.headers
        return
    body = assert_function_error(servers, response)
    assert (body["errorType"], body["errorMessage"]) == ("ValueError", "the stream broke")


# --- function errors --------------------------------------------------------------------------------------


def test_handler_exception(servers: Servers) -> None:
    response = invoke(servers, "fail", {"n": 7})
    body = assert_function_error(servers, response)
    assert (body["errorType"], body["errorMessage"]) == ("CustomError", "something bad: 7")
    request_id = body["requestId"]
    assert isinstance(request_id, str) and request_id
    if not servers.emulated:
        assert request_id == response.headers["x-amzn-RequestId"]
    trace = body["stackTrace"]
    assert trace and "handlers.py" in trace[0], trace
    assert not any("/runtime/" in frame for frame in trace), trace


@pytest.mark.parametrize(
    ("name", "error_type", "message"),
    [
        ("import-error", "Runtime.ImportModuleError", "Unable to import module 'app': No module named "),
        ("missing-module", "Runtime.ImportModuleError", "Unable to import module 'nosuchmodule': "),
        ("syntax-error", "Runtime.UserCodeSyntaxError", "Syntax error in module 'broken'"),
        (
            "missing-handler",
            "Runtime.HandlerNotFound",
            "Handler 'does_not_exist' missing on module 'handlers'",
        ),
        ("init-raises", "BootError", "failed during init"),
    ],
)
def test_init_error_every_time(servers: Servers, name: str, error_type: str, message: str) -> None:
    for _ in range(2):  # a failed init is retried on the next invoke, which sees the same error
        body = assert_function_error(servers, invoke(servers, name, {}), emulator_status=502)
        assert body["errorType"] == error_type, body
        assert str(body["errorMessage"]).startswith(message), body
    for process in servers(name).runtime_processes(name):
        assert wait_process_gone(process, 10), f"the runtime of {name} outlived its init error"


# --- environment lifecycle --------------------------------------------------------------------------------


def test_warm_reuse(servers: Servers) -> None:
    responses = [invoke(servers, "counter", {}) for _ in range(3)]
    for response in responses:
        assert_success(servers, response)
    bodies = [response.json() for response in responses]
    assert [body["count"] for body in bodies] == [1, 2, 3]
    assert len({body["pid"] for body in bodies}) == 1
    inits = init_durations(servers("counter"), [r.headers.get("x-amzn-RequestId") for r in responses])
    assert inits[0] is not None and inits[1:] == [None, None]


def test_timeout_then_fresh_environment(servers: Servers) -> None:
    first = invoke(servers, "timeout-reset", {})
    assert_success(servers, first)
    old = servers("timeout-reset").seen_process(first.json()["pid"])
    response = invoke(servers, "timeout-reset", {"sleep": 30})
    if servers.emulated:
        # peers.md: "Timeout: HTTP 200 with a plain-text body", no error header, no JSON.
        assert (response.status_code, response.text) == (200, "Task timed out after 1.00 seconds")
        assert "X-Amz-Function-Error" not in response.headers
    else:
        request_id = response.headers["x-amzn-RequestId"]
        assert assert_function_error(servers, response) == {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
        }
    after = invoke(servers, "timeout-reset", {})
    assert_success(servers, after)
    assert after.json()["count"] == 1 and after.json()["pid"] != old.pid  # both reset the environment
    assert wait_process_gone(old, 10)
    ids = [r.headers.get("x-amzn-RequestId") for r in (first, response, after)]
    inits = init_durations(servers("timeout-reset"), ids)
    if servers.emulated:
        # peers.md (RIE #106): the new environment's init is not reported; it hides inside Duration.
        assert inits[2] is None
    else:
        assert inits[2] is not None


@pytest.mark.parametrize(
    ("name", "event", "reason"),
    [("crash-exit", {"exit": 3}, "exit status 3"), ("crash-sigkill", {"sigkill": True}, "signal: killed")],
)
def test_crash_then_fresh_environment(
    servers: Servers, name: str, event: dict[str, object], reason: str
) -> None:
    first = invoke(servers, name, {})
    assert_success(servers, first)
    old = servers(name).seen_process(first.json()["pid"])
    body = assert_function_error(servers, invoke(servers, name, event), emulator_status=502)
    assert body["errorType"] == "Runtime.ExitError"
    assert re.fullmatch(rf"RequestId: \S+ Error: Runtime exited with error: {reason}", body["errorMessage"])
    assert wait_process_gone(old, 10)
    after = invoke(servers, name, {})
    assert_success(servers, after)
    assert after.json()["count"] == 1


# --- context and environment ------------------------------------------------------------------------------


def test_context(servers: Servers) -> None:
    response = invoke(servers, "context", {})
    assert_success(servers, response)
    context = response.json()
    assert context["function_name"] == "context"
    assert context["function_version"] == "$LATEST"
    assert (context["memory_limit_in_mb"], context["memory_limit_type"]) == ("256", "str")
    # Both servers make up an account (ours 123456789012, the emulator 012345678912).
    assert re.fullmatch(r"arn:aws:lambda:us-east-1:\d{12}:function:context", context["invoked_function_arn"])
    assert 0 < context["remaining_time_in_millis"] <= 10_000
    if servers.emulated:
        # Its REPORT line's id: the emulator sends the invoker none.
        assert context["aws_request_id"] == emulated_request_id(servers("context"))
        # Its defaults, not Lambda's `/aws/lambda/<name>` (unless AWS_LAMBDA_LOG_GROUP_NAME is set).
        assert context["log_group_name"] == "/aws/lambda/Functions"
    else:
        assert context["aws_request_id"] == response.headers["x-amzn-RequestId"]
        assert context["log_group_name"] == "/aws/lambda/context"


def test_runtime_environment(servers: Servers, code: Path) -> None:
    names = [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "AWS_REGION",
    ]
    names += ["GREETING"]
    response = invoke(servers, "environment", {"names": names})
    assert_success(servers, response)
    environ: Mapping[str, str | None] = response.json()["environ"]
    task_root = str((code / "basic").resolve())
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "environment"
    assert environ["AWS_LAMBDA_RUNTIME_API"]
    assert environ["_HANDLER"] == "handlers.environment"
    assert environ["GREETING"] == "hello from toml"
    assert str(Path(str(environ["LAMBDA_TASK_ROOT"])).resolve()) == task_root
    assert str(Path(response.json()["cwd"]).resolve()) == task_root
    if servers.emulated:
        assert environ["AWS_REGION"] is None  # the emulator sets none; Lambda always does
    else:
        assert environ["AWS_REGION"]


def test_platform_lines_share_one_request_id(servers: Servers) -> None:
    response = invoke(servers, "shout", {"word": "ping"})
    assert_success(servers, response)
    server = servers("shout")
    request_id = emulated_request_id(server) if servers.emulated else response.headers["x-amzn-RequestId"]
    server.wait_for_line(lambda line: line.startswith(f"REPORT RequestId: {request_id}\t"))
    assert f"END RequestId: {request_id}" in server.stdout.lines
    starts = [line for line in server.stdout.lines if line.startswith("START RequestId: ")]
    if servers.emulated:
        # peers.md: "START line: request id differs from END/REPORT".
        assert len(starts) == 1 and request_id not in starts[0]
    else:
        assert f"START RequestId: {request_id} Version: $LATEST" in starts


# --- limits -----------------------------------------------------------------------------------------------


def test_response_over_the_limit(servers: Servers) -> None:
    body = assert_function_error(servers, invoke(servers, "large-response", {"size": 6_400_000}))
    assert body == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size (6400011 bytes) exceeded maximum allowed payload size "
        "(6291556 bytes).",
    }


def test_request_over_the_limit(servers: Servers) -> None:
    body = b'"' + b"c" * (MAX_REQUEST_BYTES - 1) + b'"'
    response = invoke(servers, "untouched", body=body)
    if servers.emulated:
        # peers.md: an oversized request is not refused: the emulator hands it to the runtime.
        assert response.status_code == 200 and response.content == body
        return
    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"].split(":")[0] == "RequestEntityTooLargeException"
    assert servers("untouched").runtime_processes("untouched") == []
