"""The function suite through the Invoke API, run once per runtime under test (our bootstrap, awslambdaric),
and once more with our bootstrap on a server that takes every non-Linux fallback (RAPIDBOOT_PORTABLE=1: no
pidfds, /proc or cgroups, as on macOS). What that mode by definition does not enforce is tested elsewhere.

Each test owns the function it inspects when the result depends on environment state (counters, Init Duration
on a first invoke, "nothing was spawned"), so the shared server never leaks state between tests.
"""

from __future__ import annotations

import json
import math
import os
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from e2e_harness import (
    ACCOUNT_ARN_PREFIX,
    HTTP_TIMEOUT_S,
    RapidServer,
    function_arn,
    request_id_of,
    wait_process_gone,
)

pytestmark = [
    pytest.mark.e2e,
    # The portable run is for our bootstrap only: awslambdaric's would test the same server paths again.
    pytest.mark.parametrize(
        ("runtime", "portable"),
        [("rapidboot", False), ("awslambdaric", False), ("rapidboot", True)],
        ids=["rapidboot", "awslambdaric", "rapidboot-portable"],
        indirect=True,
        scope="session",
    ),
]

MAX_REQUEST_BYTES = 6_291_456


def assert_success(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert "X-Amz-Function-Error" not in response.headers, response.text
    assert response.headers.get("X-Amz-Executed-Version") == "$LATEST"


def assert_function_error(response: httpx.Response) -> dict[str, object]:
    """Function failures are HTTP 200 with `X-Amz-Function-Error: Unhandled` and a JSON error body."""
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled", dict(response.headers)
    assert response.headers.get("X-Amz-Executed-Version") == "$LATEST"
    body = response.json()
    assert isinstance(body, dict), body
    return body


def assert_service_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    # botocore takes the code from x-amzn-ErrorType up to any ':'.
    assert response.headers.get("x-amzn-ErrorType", "").split(":")[0] == error_type, dict(response.headers)
    body = response.json()
    assert body.get("Type") == "User", body
    assert isinstance(body.get("message"), str), body
    assert body["message"], body
    assert "X-Amz-Function-Error" not in response.headers


def quoted(name: str) -> str:
    """Percent-encodes a function name the way botocore does (`:` -> %3A, `$` -> %24)."""
    return urllib.parse.quote(name, safe="")


# --- success --------------------------------------------------------------------------------------


def test_echo_returns_the_event_with_lambda_headers(suite_server: RapidServer) -> None:
    event = {"hello": "world", "numbers": [1, 2.5, None, True], "nested": {"ü": "ñ"}}
    response = suite_server.invoke("echo", event)
    assert_success(response)
    assert response.json() == event
    assert response.headers["content-type"].startswith("application/json")
    request_id_of(response)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        pytest.param("echo", {"Qualifier": "$LATEST"}, id="qualifier-latest"),
        pytest.param(quoted(function_arn("echo")), None, id="arn-percent-encoded"),
        pytest.param(function_arn("echo"), None, id="arn-raw"),
        pytest.param(quoted("123456789012:function:echo"), None, id="partial-arn"),
        pytest.param(quoted(function_arn("echo") + ":$LATEST"), None, id="arn-with-qualifier"),
    ],
)
def test_function_name_forms(suite_server: RapidServer, name: str, params: dict[str, str] | None) -> None:
    response = suite_server.invoke(name, {"form": name}, params=params)
    assert_success(response)
    assert response.json() == {"form": name}


@pytest.mark.parametrize("body", [b"123", b'"text"', b"null", b"[1, 2]", b"true"])
def test_any_json_value_is_an_event(suite_server: RapidServer, body: bytes) -> None:
    response = suite_server.invoke("echo", body=body)
    assert_success(response)
    assert response.json() == json.loads(body)


def test_bytes_result_passes_through_with_its_content_type(suite_server: RapidServer) -> None:
    response = suite_server.invoke("bytes", {})
    assert_success(response)
    assert response.content == b"\x00\x01rapidboot\xff\xfe"
    # awslambdaric posts a bytes result raw as application/unknown; the server must not rewrite it.
    assert response.headers["content-type"] == "application/unknown"


def test_one_megabyte_event_round_trip(suite_server: RapidServer) -> None:
    event = {"blob": "a" * (1024 * 1024), "tail": "ok"}
    response = suite_server.invoke("echo-big", event)
    assert_success(response)
    assert response.json() == event


def test_five_megabyte_response(suite_server: RapidServer) -> None:
    size = 5 * 1024 * 1024
    response = suite_server.invoke("large-response", {"size": size})
    assert_success(response)
    assert response.json() == {"data": "x" * size}


def test_request_of_exactly_the_limit_is_accepted(suite_server: RapidServer) -> None:
    body = b'"' + b"b" * (MAX_REQUEST_BYTES - 2) + b'"'
    assert len(body) == MAX_REQUEST_BYTES
    response = suite_server.invoke("echo-big", body=body)
    assert_success(response)
    assert response.content == body


# --- service errors -------------------------------------------------------------------------------


def test_oversized_request_is_rejected_before_anything_runs(suite_server: RapidServer) -> None:
    body = b'"' + b"c" * (MAX_REQUEST_BYTES - 1) + b'"'
    assert len(body) == MAX_REQUEST_BYTES + 1
    response = suite_server.invoke("untouched", body=body)
    assert_service_error(response, 413, "RequestEntityTooLargeException")

    assert suite_server.runtime_processes("untouched") == []
    assert suite_server.lines_mentioning("[untouched ") == []
    # The function was never started: its first real invoke is a cold start.
    response = suite_server.invoke("untouched", {"after": "413"})
    assert_success(response)
    assert suite_server.report(request_id_of(response)).init_duration_ms is not None


def test_unknown_function_is_404(suite_server: RapidServer) -> None:
    response = suite_server.invoke("no-such-function", {})
    assert_service_error(response, 404, "ResourceNotFoundException")


def test_unknown_function_arn_is_404(suite_server: RapidServer) -> None:
    response = suite_server.invoke(quoted(function_arn("no-such-function")), {})
    assert_service_error(response, 404, "ResourceNotFoundException")


def test_unknown_qualifier_is_404(suite_server: RapidServer) -> None:
    response = suite_server.invoke("echo", {}, params={"Qualifier": "7"})
    assert_service_error(response, 404, "ResourceNotFoundException")


@pytest.mark.parametrize("body", [b'{"unterminated": ', b"not json at all", b"{'single': 'quotes'}"])
def test_malformed_json_is_400(suite_server: RapidServer, body: bytes) -> None:
    response = suite_server.invoke("echo", body=body)
    assert_service_error(response, 400, "InvalidRequestContentException")


# --- function errors ------------------------------------------------------------------------------


def test_handler_exception_body_passes_through(suite_server: RapidServer) -> None:
    response = suite_server.invoke("fail", {"n": 7})
    body = assert_function_error(response)
    assert body["errorType"] == "CustomError"
    assert body["errorMessage"] == "something bad: 7"
    assert body["requestId"] == request_id_of(response)
    trace = body["stackTrace"]
    assert isinstance(trace, list)
    assert trace, body
    assert all(isinstance(frame, str) for frame in trace)
    # Runtime frames are stripped: the trace starts in the user's file.
    assert "handlers.py" in trace[0], trace
    assert not any("awslambdaric" in frame or "/runtime/" in frame for frame in trace), trace


@pytest.mark.parametrize(
    ("name", "error_type", "message", "exact"),
    [
        pytest.param(
            "import-error",
            "Runtime.ImportModuleError",
            "Unable to import module 'app': No module named 'rapidboot_e2e_missing_dependency'",
            True,
            id="import-error",
        ),
        pytest.param(
            "missing-module",
            "Runtime.ImportModuleError",
            "Unable to import module 'nosuchmodule': No module named 'nosuchmodule'",
            True,
            id="missing-module",
        ),
        pytest.param(
            "syntax-error",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'broken'",
            False,
            id="syntax",
        ),
        pytest.param(
            "missing-handler",
            "Runtime.HandlerNotFound",
            "Handler 'does_not_exist' missing on module 'handlers'",
            True,
            id="missing-handler",
        ),
        pytest.param("init-raises", "BootError", "failed during init", True, id="raises-at-import"),
    ],
)
def test_init_error_reaches_the_invoker_every_time(
    suite_server: RapidServer, name: str, error_type: str, message: str, exact: bool
) -> None:
    # Lambda retries a failed init on the next invoke, so the caller sees the same error again.
    for attempt in range(2):
        response = suite_server.invoke(name, {"attempt": attempt})
        body = assert_function_error(response)
        assert body["errorType"] == error_type, body
        if exact:
            assert body["errorMessage"] == message, body
        else:
            assert str(body["errorMessage"]).startswith(message), body
        assert isinstance(body.get("stackTrace", []), list), body
    if name == "init-raises":
        assert any("boom.py" in frame for frame in body["stackTrace"]), body  # type: ignore[union-attr]
    # A runtime whose init failed exits; none may linger.
    for process in suite_server.runtime_processes(name):
        assert wait_process_gone(process, 10), f"runtime of {name} still running after its init error"


# --- environment lifecycle ------------------------------------------------------------------------


def test_module_state_survives_warm_invokes(suite_server: RapidServer) -> None:
    results = [suite_server.invoke("counter", {}) for _ in range(3)]
    for response in results:
        assert_success(response)
    bodies = [response.json() for response in results]
    assert [body["count"] for body in bodies] == [1, 2, 3]
    assert len({body["pid"] for body in bodies}) == 1, "warm invokes must reuse one runtime process"
    reports = [suite_server.report(request_id_of(response)) for response in results]
    assert reports[0].init_duration_ms is not None
    assert [report.init_duration_ms for report in reports[1:]] == [None, None]


def test_timeout_then_fresh_environment(suite_server: RapidServer) -> None:
    warm = [suite_server.invoke("timeout-reset", {}).json() for _ in range(2)]
    assert [body["count"] for body in warm] == [1, 2]
    old_runtime = suite_server.seen_process(warm[0]["pid"])

    response = suite_server.invoke("timeout-reset", {"sleep": 30})
    request_id = request_id_of(response)
    assert assert_function_error(response) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    report = suite_server.report(request_id)
    assert report.status == "timeout", report
    # Lambda also logs `<ISO-8601 timestamp> <request id> Task timed out after 1.00 seconds`.
    suite_server.wait_for_line(lambda line: line.endswith(f" {request_id} Task timed out after 1.00 seconds"))

    response = suite_server.invoke("timeout-reset", {})
    assert_success(response)
    assert response.json()["count"] == 1, "module globals must be reset after a timeout"
    assert response.json()["pid"] != old_runtime.pid
    assert suite_server.report(request_id_of(response)).init_duration_ms is not None
    assert wait_process_gone(old_runtime, 10), "the timed-out runtime process was not stopped"


@pytest.mark.parametrize(
    ("name", "event", "reason"),
    [
        pytest.param("crash-exit", {"exit": 3}, "exit status 3", id="exit-3"),
        pytest.param("crash-sigkill", {"sigkill": True}, "signal: killed", id="sigkill"),
    ],
)
def test_crash_then_fresh_environment(
    suite_server: RapidServer, name: str, event: dict[str, object], reason: str
) -> None:
    first = suite_server.invoke(name, {})
    assert_success(first)
    assert first.json()["count"] == 1
    old_runtime = suite_server.seen_process(first.json()["pid"])

    response = suite_server.invoke(name, event)
    request_id = request_id_of(response)
    assert assert_function_error(response) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
    }
    report = suite_server.report(request_id)
    assert (report.status, report.error_type) == ("error", "Runtime.ExitError"), report
    assert wait_process_gone(old_runtime, 10)

    response = suite_server.invoke(name, {})
    assert_success(response)
    assert response.json()["count"] == 1
    assert suite_server.report(request_id_of(response)).init_duration_ms is not None


def test_response_over_the_limit_is_a_function_error(suite_server: RapidServer, runtime: str) -> None:
    # Reference §1: the runtime's /response gets 413 and the caller Function.ResponseSizeTooLarge.
    response = suite_server.invoke("large-response", {"size": 6_400_000})
    body = assert_function_error(response)
    assert body["errorType"] == "Function.ResponseSizeTooLarge", body
    # Its size: the payload and the JSON around it, `{"data":"..."}` from ours (compact), `{"data": "..."}`
    # from awslambdaric.
    size = 6_400_000 + (11 if runtime == "rapidboot" else 12)
    assert body["errorMessage"] == (
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size (6291556 bytes)."
    )


# --- context and environment ----------------------------------------------------------------------


def test_context_fields(suite_server: RapidServer) -> None:
    response = suite_server.invoke("context", {})
    assert_success(response)
    request_id = request_id_of(response)
    context = response.json()
    assert context["function_name"] == "context"
    assert context["function_version"] == "$LATEST"
    assert (context["memory_limit_in_mb"], context["memory_limit_type"]) == ("256", "str")
    assert context["invoked_function_arn"] == ACCOUNT_ARN_PREFIX + "context"
    assert context["aws_request_id"] == request_id
    assert context["log_group_name"] == "/aws/lambda/context"
    assert isinstance(context["log_stream_name"], str)
    assert context["log_stream_name"]
    assert 0 < context["remaining_time_in_millis"] <= 10_000
    report = suite_server.report(request_id)
    assert report.request_id == request_id
    assert report.memory_size_mb == 256


def test_invoked_arn_is_the_arn_the_caller_used(suite_server: RapidServer) -> None:
    arn = function_arn("context")
    response = suite_server.invoke(quoted(arn), {})
    assert_success(response)
    assert response.json()["invoked_function_arn"] == arn


def test_environment_of_the_runtime(suite_server: RapidServer, code_root: Path) -> None:
    names = [
        "GREETING",
        "EMPTY_OK",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
    ]
    response = suite_server.invoke("environment", {"names": names})
    assert_success(response)
    body = response.json()
    environ = body["environ"]
    task_root = os.path.realpath(code_root / "functions" / "basic")
    assert environ["GREETING"] == "hello from toml"
    assert environ["EMPTY_OK"] == ""
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "environment"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"  # Lambda's default memory size
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert environ["AWS_LAMBDA_RUNTIME_API"]
    assert environ["AWS_REGION"]
    assert environ["_HANDLER"] == "handlers.environment"
    # Lambda runs the runtime in its task root (/var/task); `python -m awslambdaric` imports from the cwd.
    assert os.path.realpath(environ["LAMBDA_TASK_ROOT"]) == task_root
    assert os.path.realpath(body["cwd"]) == task_root


# --- platform log lines ---------------------------------------------------------------------------


def test_platform_lines_and_function_output_share_one_request_id(suite_server: RapidServer) -> None:
    response = suite_server.invoke("shout", {"word": "ping"})
    assert_success(response)
    request_id = request_id_of(response)
    suite_server.report(request_id)  # wait until the invoke's last line is out
    lines = suite_server.stdout.lines

    def index_of(expected: str) -> int:
        assert lines.count(expected) == 1, (expected, [line for line in lines if "shout" in line])
        return lines.index(expected)

    init_line = index_of("[shout init] handlers module initialised")
    start = index_of(f"START RequestId: {request_id} Version: $LATEST")
    output = index_of(f"[shout {request_id}] handler says ping")
    end = index_of(f"END RequestId: {request_id}")
    report = next(i for i, line in enumerate(lines) if line.startswith(f"REPORT RequestId: {request_id}\t"))
    assert init_line < start < output < end < report
    assert sum(request_id in line for line in lines if line.startswith(("START", "END", "REPORT"))) == 3


def test_report_line_fields(suite_server: RapidServer, portable: bool) -> None:
    responses = [suite_server.invoke("report", {"i": i}) for i in range(2)]
    for response in responses:
        assert_success(response)
    cold, warm = (suite_server.report(request_id_of(response)) for response in responses)
    assert cold.init_duration_ms is not None
    assert cold.init_duration_ms > 0
    assert warm.init_duration_ms is None
    for report in (cold, warm):
        assert report.status is None
        assert report.error_type is None
        assert report.memory_size_mb == 128
        # Not measured there, and the line keeps Lambda's shape (rapid_server/data_plane/limits.py).
        if portable:
            assert report.max_memory_used_mb == 0, report
        else:
            assert 0 < report.max_memory_used_mb < report.memory_size_mb, report
        # Billed Duration is Duration rounded up to the next ms (Duration is printed rounded to 0.01 ms).
        assert math.floor(report.duration_ms) <= report.billed_ms <= math.ceil(report.duration_ms) + 1, report


def test_max_memory_used_is_measured(suite_server: RapidServer, portable: bool) -> None:
    if portable:
        pytest.skip("a host without /proc or cgroups measures no peak memory (rapid_server/host.py)")
    baseline_response = suite_server.invoke("memory", {"megabytes": 0})
    assert_success(baseline_response)
    baseline = suite_server.report(request_id_of(baseline_response)).max_memory_used_mb
    grown_response = suite_server.invoke("memory", {"megabytes": 120})
    assert_success(grown_response)
    assert grown_response.json()["retained_mb"] == 120
    grown = suite_server.report(request_id_of(grown_response))
    assert 0 < baseline < grown.max_memory_used_mb < grown.memory_size_mb == 512
    assert grown.max_memory_used_mb >= baseline + 100, (baseline, grown)


# --- concurrency ----------------------------------------------------------------------------------


def test_concurrent_invokes_each_get_their_own_response(suite_server: RapidServer) -> None:
    url = suite_server.endpoint + suite_server.invoke_path("echo-concurrent")

    def call(index: int) -> tuple[int, httpx.Response]:
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
            return index, client.post(url, content=json.dumps({"i": index, "pad": "z" * index}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(8)))
    request_ids = set()
    for index, response in results:
        assert_success(response)
        assert response.json() == {"i": index, "pad": "z" * index}
        request_ids.add(request_id_of(response))
    assert len(request_ids) == 8
    for request_id in request_ids:
        suite_server.report(request_id)


def test_a_timeout_does_not_disturb_invokes_in_other_environments(suite_server: RapidServer) -> None:
    warm = suite_server.invoke("timeout-queue", {})
    assert_success(warm)
    old_pid = warm.json()["pid"]
    url = suite_server.endpoint + suite_server.invoke_path("timeout-queue")

    def call(event: dict[str, object]) -> httpx.Response:
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
            return client.post(url, content=json.dumps(event))

    mark = len(suite_server.stdout.lines)
    with ThreadPoolExecutor(max_workers=4) as pool:
        sleeper = pool.submit(call, {"sleep": 30})
        # Sent only once the sleeper runs: they must be served by other environments meanwhile.
        suite_server.wait_for_line(lambda line: line.startswith("START RequestId: "), after=mark)
        others = [pool.submit(call, {}) for _ in range(3)]
        followers = [future.result() for future in others]
        timed_out = sleeper.result()
    assert assert_function_error(timed_out)["errorType"] == "Sandbox.Timedout"
    for response in followers:
        assert_success(response)
    pids = {response.json()["pid"] for response in followers}
    assert old_pid not in pids
    assert wait_process_gone(suite_server.seen_process(old_pid), 10.0)
    after = suite_server.invoke("timeout-queue", {})
    assert_success(after)
    assert after.json()["pid"] in pids  # a warm survivor serves, the timed-out environment is gone
