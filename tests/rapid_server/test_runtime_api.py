"""The Runtime API contract (reference section 1) against a real `Environment`: a real runtime process (the
fake in fake_runtimes/runtime.py) talking HTTP to the environment's own listener.

The fake runtime reports what it saw as JSON lines over a control connection the test listens on; every wait
is on a socket or a future, bounded by a timeout. Each test runs under both event loops.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from rapidboot.layers import PreparedFunction
from rapidboot.rapid_server.config import FunctionConfig
from rapidboot.rapid_server.data_plane import environment as environment_module
from rapidboot.rapid_server.data_plane.environment import Environment
from rapidboot.rapid_server.data_plane.invocation import (
    MAX_RESPONSE_BYTES,
    Invocation,
    InvokeResult,
    NotDispatched,
)
from rapidboot.rapid_server.data_plane.limits import LimitsFactory
from rapidboot.rapid_server.data_plane.logs import LogSink
from rapidboot.rapid_server.data_plane.state import State
from rapidboot.rapid_server.loop import loop_factory

FAKE_RUNTIME = Path(__file__).parent / "fake_runtimes" / "runtime.py"
FUNCTION = "fake"
ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
TRACE_ID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TEST_DEADLINE_S = 20.0
REPORT_WAIT_S = 10.0


class Harness:
    def __init__(self, env: Environment, sink: io.BytesIO, errors: list[BaseException]):
        self.env = env
        self.sink = sink
        self.errors = errors
        self.control: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.get_running_loop().create_future()
        )

    async def report(self) -> dict[str, Any]:
        """The fake runtime's next report."""
        async with asyncio.timeout(REPORT_WAIT_S):
            reader, _ = await self.control
            line = await reader.readline()
        assert line, "the fake runtime closed its control connection"
        report: dict[str, Any] = json.loads(line)
        return report

    async def tell(self, message: str) -> None:
        """Send the fake runtime a line (it waits for one in wait_for_test)."""
        async with asyncio.timeout(REPORT_WAIT_S):
            _, writer = await self.control
            writer.write(message.encode() + b"\n")
            await writer.drain()

    async def invoke(self, payload: bytes = b'{"hello":"world"}', **fields: Any) -> tuple[str, InvokeResult]:
        request_id = str(uuid.uuid4())
        invocation = Invocation(request_id, payload, f"{ARN}:$LATEST", TRACE_ID, **fields)
        return request_id, await self.env.invoke(invocation)

    def lines(self) -> list[str]:
        return self.sink.getvalue().decode().splitlines()

    def platform_lines(self, request_id: str) -> list[str]:
        """The platform lines that name this request (its START, END, REPORT, timeout line), in order."""
        return [line for line in self.lines() if request_id in line and not line.startswith(f"[{FUNCTION} ")]

    def report_line(self, request_id: str) -> str:
        (line,) = [line for line in self.lines() if line.startswith(f"REPORT RequestId: {request_id}\t")]
        return line


@asynccontextmanager
async def started(
    tmp_path: Path,
    scenario: str,
    *,
    timeout_s: float = 3.0,
    variables: dict[str, str] | None = None,
    command: tuple[str, ...] | None = None,
) -> AsyncIterator[Harness]:
    errors: list[BaseException] = []
    sink = io.BytesIO()
    harness: Harness | None = None

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert harness is not None
        if not harness.control.done():
            harness.control.set_result((reader, writer))

    control = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = control.sockets[0].getsockname()[1]
    config = FunctionConfig(
        name=FUNCTION,
        code=tmp_path,
        handler="fake.handler",
        memory_mb=256,
        timeout_s=timeout_s,
        environment={"FAKE_CONTROL_PORT": str(port), **(variables or {})},
        command=command or (sys.executable, "-S", str(FAKE_RUNTIME), scenario),
    )
    # Plain limits (no cgroup): these tests are about the Runtime API, not enforcement.
    limits = LimitsFactory(None, tmp_path / "scratch")
    env_limits = limits.for_environment(FUNCTION, config.memory_mb, config.ephemeral_storage_mb)
    package = PreparedFunction(task_root=tmp_path, opt_dir=None, unzipped_bytes=0, reused=True)
    env = Environment(config, ARN, "eu-west-1", LogSink(sink), errors.append, env_limits, package)
    harness = Harness(env, sink, errors)
    try:
        await env.start()
        yield harness
    finally:
        await env.stop(grace_s=0)
        control.close()
        limits.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Iterator[Callable[[Awaitable[None]], None]]:
    factory = loop_factory(request.param)

    def runner(coro: Awaitable[None]) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(TEST_DEADLINE_S):
                await coro

        with asyncio.Runner(loop_factory=factory) as asyncio_runner:
            asyncio_runner.run(bounded())

    yield runner


def runtime_error_body(body: str) -> dict[str, str]:
    parsed: dict[str, str] = json.loads(body)
    assert sorted(parsed) == ["errorMessage", "errorType"]
    return parsed


# /next and /response -------------------------------------------------------------------------------------


def test_next_delivers_the_event_with_its_headers(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "echo", timeout_s=7) as h:
            before_ms = time.time() * 1000
            request_id, _ = await h.invoke(b'{"k": [1, 2, 3]}', content_type="application/vnd.test+json")
            after_ms = time.time() * 1000
            seen = await h.report()
            assert seen["step"] == "next"
            assert seen["status"] == 200
            assert seen["body"] == '{"k": [1, 2, 3]}'
            headers = seen["headers"]
            assert headers["lambda-runtime-aws-request-id"] == request_id
            assert headers["lambda-runtime-invoked-function-arn"] == f"{ARN}:$LATEST"
            assert headers["lambda-runtime-trace-id"] == TRACE_ID
            assert headers["content-type"] == "application/vnd.test+json"
            deadline_ms = int(headers["lambda-runtime-deadline-ms"])
            assert before_ms + 7000 - 1 <= deadline_ms <= after_ms + 7000

    run(scenario())


def test_response_is_accepted_and_reaches_the_invoker(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "echo") as h:
            _, result = await h.invoke(b'{"answer": 42}')
            assert result == InvokeResult(b'{"answer": 42}', "application/x-echo", False)
            await h.report()  # next
            posted = await h.report()
            assert posted["step"] == "response"
            assert posted["status"] == 202
            assert json.loads(posted["body"]) == {"status": "OK"}
            assert posted["headers"]["content-type"] == "application/json"
            assert h.env.usable
            assert h.errors == []

    run(scenario())


def test_response_without_content_type_is_json_to_the_invoker(
    run: Callable[..., None], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "echo", variables={"FAKE_CONTENT_TYPE": ""}) as h:
            _, result = await h.invoke(b"[1]")
            assert result == InvokeResult(b"[1]", "application/json", False)

    run(scenario())


def test_sequential_invokes_each_get_their_own_answer(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "echo") as h:
            seen_ids = []
            for index in range(5):
                request_id, result = await h.invoke(b'{"n": %d}' % index)
                assert result.body == b'{"n": %d}' % index
                seen = await h.report()
                assert seen["headers"]["lambda-runtime-aws-request-id"] == request_id
                seen_ids.append(request_id)
                assert (await h.report())["status"] == 202
            assert len(set(seen_ids)) == 5

    run(scenario())


# /error --------------------------------------------------------------------------------------------------

ERROR_BODY = '{"errorMessage": "boom", "errorType": "ValueError", "requestId": "x", "stackTrace": ["  File"]}'


@pytest.mark.parametrize(
    "error_type", [None, "Runtime.Custom", "NotAType"], ids=["no-header", "typed", "untyped"]
)
def test_error_is_accepted_and_its_body_reaches_the_invoker_unchanged(
    run: Callable[..., None], tmp_path: Path, error_type: str | None
) -> None:
    variables = {"FAKE_ERROR_BODY": ERROR_BODY}
    if error_type is not None:
        variables["FAKE_ERROR_TYPE"] = error_type

    async def scenario() -> None:
        async with started(tmp_path, "error", variables=variables) as h:
            request_id, result = await h.invoke()
            assert result == InvokeResult(ERROR_BODY.encode(), "application/json", True)
            posted = await h.report()
            assert posted["status"] == 202
            assert json.loads(posted["body"]) == {"status": "OK"}
            # A function error is not a platform failure: no Status on the REPORT line.
            assert "Status:" not in h.report_line(request_id)
            assert h.env.usable

    run(scenario())


# Misuse --------------------------------------------------------------------------------------------------


def test_runtime_api_refuses_misuse(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "misuse") as h:
            _, result = await h.invoke()
            assert result == InvokeResult(b'"ok"', "application/json", False)
            await h.tell("go")
            steps = {}
            for _ in range(10):
                report = await h.report()
                steps[report["step"]] = report

            def refused(step: str, status: int, error_type: str) -> dict[str, str]:
                assert steps[step]["status"] == status, steps[step]
                assert steps[step]["headers"]["content-type"] == "application/json"
                body = runtime_error_body(steps[step]["body"])
                assert body["errorType"] == error_type
                return body

            invalid_id = {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}
            assert refused("response-before-init", 400, "InvalidRequestID") == invalid_id
            assert refused("response-wrong-id", 400, "InvalidRequestID") == invalid_id
            refused("next-while-invoking", 403, "InvalidStateTransition")
            refused("init-error-after-init", 403, "InvalidStateTransition")
            refused("unknown-path", 404, "NotFound")
            refused("post-next", 405, "MethodNotAllowed")
            assert steps["post-next"]["headers"]["allow"] == "GET"
            refused("get-response", 405, "MethodNotAllowed")
            assert steps["get-response"]["headers"]["allow"] == "POST"
            assert steps["response"]["status"] == 202
            assert refused("response-again", 400, "InvalidRequestID") == invalid_id
            assert refused("error-after-response", 400, "InvalidRequestID") == invalid_id
            assert h.errors == []

    run(scenario())


def test_answers_pipelined_after_the_response_are_invalid_request_ids(
    run: Callable[..., None], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "double-response") as h:
            _, result = await h.invoke()
            assert result.body == b'"first"'
            answers = await h.report()
            assert answers["statuses"] == [202, 400, 400]
            for body in answers["bodies"][1:]:
                assert runtime_error_body(body)["errorType"] == "InvalidRequestID"

    run(scenario())


# Response size -------------------------------------------------------------------------------------------


def test_response_at_the_limit_is_accepted(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "big-response", variables={"FAKE_SIZE": str(MAX_RESPONSE_BYTES)}) as h:
            _, result = await h.invoke()
            assert not result.function_error
            assert result.body == b"x" * 6291556
            assert result.content_type == "application/octet-stream"
            assert (await h.report())["status"] == 202

    run(scenario())


def test_response_over_the_limit_is_413_and_the_invoker_gets_response_size_too_large(
    run: Callable[..., None], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "big-response", variables={"FAKE_SIZE": "6291557"}) as h:
            request_id, result = await h.invoke()
            posted = await h.report()
            assert posted["status"] == 413
            assert runtime_error_body(posted["body"]) == {
                "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
                "errorType": "RequestEntityTooLarge",
            }
            assert result.function_error
            assert json.loads(result.body) == {
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": "Response payload size (6291557 bytes) exceeded maximum allowed payload size "
                "(6291556 bytes).",
            }
            assert h.report_line(request_id).endswith(
                "\tStatus: error\tError Type: Function.ResponseSizeTooLarge"
            )
            # The environment lives on, and the runtime polls again on a fresh connection.
            assert h.env.usable
            _, second = await h.invoke(b'"next"')
            assert second.body == b'"next"' and not second.function_error

    run(scenario())


# Init ----------------------------------------------------------------------------------------------------

INIT_ERROR_BODY = (
    "{\"errorMessage\": \"Unable to import module 'app': No module named 'app'\", "
    '"errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}'
)


@pytest.mark.parametrize("header", [True, False], ids=["type-header", "type-from-body"])
def test_init_error_is_what_the_first_invoke_returns(
    run: Callable[..., None], tmp_path: Path, header: bool
) -> None:
    variables = {"FAKE_ERROR_BODY": INIT_ERROR_BODY}
    if header:
        variables["FAKE_ERROR_TYPE"] = "Runtime.ImportModuleError"

    async def scenario() -> None:
        async with started(tmp_path, "init-error", variables=variables) as h:
            request_id, result = await h.invoke()
            assert result == InvokeResult(INIT_ERROR_BODY.encode(), "application/json", True)
            posted = await h.report()
            assert posted["status"] == 202
            assert not h.env.usable
            lines = h.lines()
            (init_report,) = [line for line in lines if line.startswith("INIT_REPORT ")]
            assert init_report.split("\t")[1:] == [
                "Phase: init",
                "Status: error",
                "Error Type: Runtime.ImportModuleError",
            ]
            assert f"[{FUNCTION} init] init failing" in lines
            start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
            assert lines.index(init_report) < start < lines.index(f"END RequestId: {request_id}")
            assert "Init Duration" not in h.report_line(request_id)

    run(scenario())


def test_runtime_may_exit_on_its_own_after_an_init_error(run: Callable[..., None], tmp_path: Path) -> None:
    variables = {"FAKE_ERROR_BODY": INIT_ERROR_BODY, "FAKE_REPORT_SIGTERM": "1", "FAKE_CLEANUP_S": "0.2"}

    async def scenario() -> None:
        async with started(tmp_path, "init-error", variables=variables) as h:
            await h.invoke()
            steps = [(await h.report())["step"] for _ in range(2)]
            assert steps == ["init-error", "exiting"]

    run(scenario())


def test_crash_during_init_is_an_exit_error(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "init-crash", variables={"FAKE_EXIT_CODE": "7"}) as h:
            request_id, result = await h.invoke()
            assert result.function_error
            assert json.loads(result.body) == {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 7",
            }
            (init_report,) = [line for line in h.lines() if line.startswith("INIT_REPORT ")]
            assert init_report.endswith("\tPhase: init\tStatus: error\tError Type: Runtime.ExitError")
            assert f"[{FUNCTION} init] crashing during init" in h.lines()
            assert not h.env.usable

    run(scenario())


def test_unstartable_runtime_is_an_invalid_entrypoint(run: Callable[..., None], tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-bootstrap")

    async def scenario() -> None:
        async with started(tmp_path, "unused", command=(missing,)) as h:
            _, result = await h.invoke()
            assert result.function_error
            assert json.loads(result.body) == {
                "errorType": "Runtime.InvalidEntrypoint",
                "errorMessage": f"fork/exec {missing}: no such file or directory",
            }
            (init_report,) = [line for line in h.lines() if line.startswith("INIT_REPORT ")]
            assert init_report.endswith("\tStatus: error\tError Type: Runtime.InvalidEntrypoint")
            assert h.env.state is State.TERMINATED

    run(scenario())


def test_init_timeout_is_reported_as_a_timeout(
    run: Callable[..., None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(environment_module, "INIT_TIMEOUT_S", 0.5)

    async def scenario() -> None:
        async with started(tmp_path, "init-hang") as h:
            await h.report()
            _, result = await h.invoke()
            assert not h.env.usable
            (init_report,) = [line for line in h.lines() if line.startswith("INIT_REPORT ")]
            assert "\tStatus: timeout" in init_report
            assert json.loads(result.body)["errorType"] == "Sandbox.Timedout"

    run(scenario())


# Connections ---------------------------------------------------------------------------------------------


def test_event_goes_to_the_new_connection_after_the_old_one_closed(
    run: Callable[..., None], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "reconnect") as h:
            assert (await h.report())["step"] == "ready"
            _, result = await h.invoke(b'{"for": "second"}')
            assert result.body == b'{"via":"second"}'
            answered = await h.report()
            assert answered == {
                "step": "answered",
                "next_status": 200,
                "event": '{"for": "second"}',
                "status": 202,
            }
            assert h.errors == [], "the event was handed to the closed connection"

    run(scenario())


def test_second_parked_poller_gets_the_next_event(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "two-pollers") as h:
            assert (await h.report())["step"] == "ready"
            _, first = await h.invoke(b"1")
            assert first.body == b'"answer 0"'
            assert (await h.report())["status"] == 202
            _, second = await h.invoke(b"2")
            assert second.body == b'"answer 1"'

    run(scenario())


# Timeouts and crashes ------------------------------------------------------------------------------------


def _process_is_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def _exited(pidfd: int) -> None:
    """Until the process behind `pidfd` has ended (a pidfd becomes readable then)."""
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    loop.add_reader(pidfd, ended.set_result, None)
    try:
        async with asyncio.timeout(REPORT_WAIT_S):
            await ended
    finally:
        loop.remove_reader(pidfd)


def test_timeout_returns_sandbox_timedout_and_ends_the_environment(
    run: Callable[..., None], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "hang", timeout_s=0.5) as h:
            invoke = asyncio.ensure_future(h.invoke())
            hanging = await h.report()
            child = os.pidfd_open(hanging["child"])
            try:
                request_id, result = await invoke
                assert hanging["request_id"] == request_id
                # The whole process group goes, not only the runtime.
                await _exited(child)
            finally:
                os.close(child)
            assert result == InvokeResult(
                json.dumps(
                    {
                        "errorType": "Sandbox.Timedout",
                        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 0.50 seconds",
                    },
                    separators=(",", ":"),
                ).encode(),
                "application/json",
                True,
            )
            assert not h.env.usable
            assert h.env.state is State.TERMINATED
            pid = h.env.pid
            assert pid is not None and _process_is_gone(pid)
            lines = h.platform_lines(request_id)
            assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
            assert lines[1].endswith(f" {request_id} Task timed out after 0.50 seconds")
            assert lines[2] == f"END RequestId: {request_id}"
            assert lines[3].endswith("\tStatus: timeout")
            duration_ms = float(lines[3].split("\tDuration: ")[1].split(" ms")[0])
            assert duration_ms >= 500

    run(scenario())


@pytest.mark.parametrize(("exit_code", "text"), [("3", "exit status 3"), ("kill", "signal: killed")])
def test_crash_mid_invoke_is_an_exit_error(
    run: Callable[..., None], tmp_path: Path, exit_code: str, text: str
) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "crash", variables={"FAKE_EXIT_CODE": exit_code}) as h:
            request_id, result = await h.invoke()
            assert (await h.report())["request_id"] == request_id
            assert result.function_error
            assert json.loads(result.body) == {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {text}",
            }
            assert h.report_line(request_id).endswith("\tStatus: error\tError Type: Runtime.ExitError")
            assert not h.env.usable

    run(scenario())


# Platform lines ------------------------------------------------------------------------------------------


def test_platform_lines_and_output_for_two_invokes(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "echo") as h:
            first_id, _ = await h.invoke()
            second_id, _ = await h.invoke()
            lines = h.lines()
            assert lines[0] == f"[{FUNCTION} init] echo runtime starting"
            for request_id in (first_id, second_id):
                start = lines.index(f"START RequestId: {request_id} Version: $LATEST")
                assert lines[start + 1] == f"[{FUNCTION} {request_id}] handling {request_id}"
                assert lines[start + 2] == f"END RequestId: {request_id}"
                assert lines[start + 3] == h.report_line(request_id)
            first_report = h.report_line(first_id).split("\t")
            assert [field.split(":")[0] for field in first_report] == [
                "REPORT RequestId",
                "Duration",
                "Billed Duration",
                "Memory Size",
                "Max Memory Used",
                "Init Duration",
            ]
            assert first_report[3] == "Memory Size: 256 MB"
            assert int(first_report[4].split(": ")[1].split()[0]) >= 1
            assert float(first_report[5].split(": ")[1].split()[0]) > 0
            assert "Init Duration" not in h.report_line(second_id)
            assert len(lines) == 1 + 2 * 4

    run(scenario())


def test_invoke_after_the_runtime_exited_is_not_dispatched(run: Callable[..., None], tmp_path: Path) -> None:
    """The runtime died before it asked for the invoke: the environment refuses it (NotDispatched) so the
    function can run it in another environment, and logs nothing for it; exit_result answers it if asked."""

    async def scenario() -> None:
        async with started(tmp_path, "exit-after-response") as h:
            await h.invoke()
            assert (await h.report())["status"] == 202
            with pytest.raises(NotDispatched):
                await h.invoke()
            assert not h.env.usable
            result = h.env.exit_result("after-exit")
            assert json.loads(result.body)["errorType"] == "Runtime.ExitError"
            lines = h.platform_lines("after-exit")
            assert [line.split(" RequestId")[0] for line in lines] == ["START", "END", "REPORT"]

    run(scenario())


def test_runtime_sees_the_lambda_environment(run: Callable[..., None], tmp_path: Path) -> None:
    async def scenario() -> None:
        async with started(tmp_path, "echo") as h:
            await h.invoke()
            pid = h.env.pid
            assert pid is not None
            environ = dict(
                item.split("=", 1)
                for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
                if "=" in item
            )
            assert environ["AWS_LAMBDA_FUNCTION_NAME"] == FUNCTION
            assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
            assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
            assert environ["AWS_REGION"] == environ["AWS_DEFAULT_REGION"] == "eu-west-1"
            assert environ["_HANDLER"] == "fake.handler"
            assert environ["LAMBDA_TASK_ROOT"] == str(tmp_path)
            assert environ["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{FUNCTION}"
            assert environ["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
            assert os.readlink(f"/proc/{pid}/cwd") == str(tmp_path)

    run(scenario())
