"""Bodies and platform lines (`rapidboot.rapid_server.rendering`, `rapidboot.rapid_server.errors`) against
reference sections 1, 2 and 6. Expected strings are written out in full: the format is the contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rapidboot.rapid_server import errors, rendering

# Platform lines ------------------------------------------------------------------------------------------


def test_report_line_exact_format() -> None:
    line = rendering.report_line("abc-123", 12.344, 128, 40, None)
    assert line == (
        "REPORT RequestId: abc-123\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB"
    )


def test_report_line_with_init_duration_status_and_error_type() -> None:
    line = rendering.report_line("id", 2.5, 1024, 99, 123.456, "error", "Runtime.ExitError")
    assert line.split("\t") == [
        "REPORT RequestId: id",
        "Duration: 2.50 ms",
        "Billed Duration: 3 ms",
        "Memory Size: 1024 MB",
        "Max Memory Used: 99 MB",
        "Init Duration: 123.46 ms",
        "Status: error",
        "Error Type: Runtime.ExitError",
    ]


def test_report_line_timeout_has_status_without_error_type() -> None:
    line = rendering.report_line("id", 3000.0, 128, 41, None, "timeout")
    assert line.endswith("\tMax Memory Used: 41 MB\tStatus: timeout")
    assert "Error Type" not in line and "Init Duration" not in line


def test_init_duration_of_zero_is_still_shown() -> None:
    assert "\tInit Duration: 0.00 ms" in rendering.report_line("id", 1.0, 128, 1, 0.0)


@pytest.mark.parametrize(
    ("duration_ms", "billed"),
    [
        (0.0, 1),
        (0.001, 1),
        (0.5, 1),
        (1.0, 1),
        (1.01, 2),
        (12.0, 12),
        (12.001, 13),
        (0.1 + 0.2 + 2.7, 3),  # 3.0000000000000004: float noise is not a millisecond
        (2999.999, 3000),
        (3000.0, 3000),
    ],
)
def test_billed_duration_is_the_ceiling_and_at_least_1(duration_ms: float, billed: int) -> None:
    assert rendering.billed_ms(duration_ms) == billed
    assert f"\tBilled Duration: {billed} ms\t" in rendering.report_line("id", duration_ms, 128, 1, None)


@pytest.mark.parametrize(("duration_ms", "shown"), [(0.004, "0.00"), (0.005, "0.01"), (1234.5678, "1234.57")])
def test_duration_has_two_decimals(duration_ms: float, shown: str) -> None:
    assert f"\tDuration: {shown} ms\t" in rendering.report_line("id", duration_ms, 128, 1, None)


def test_init_report_line() -> None:
    assert rendering.init_report_line(316.8, "init", "error", "Runtime.ImportModuleError") == (
        "INIT_REPORT Init Duration: 316.80 ms\tPhase: init\tStatus: error\t"
        "Error Type: Runtime.ImportModuleError"
    )
    assert rendering.init_report_line(10000.0, "invoke", "timeout", None) == (
        "INIT_REPORT Init Duration: 10000.00 ms\tPhase: invoke\tStatus: timeout"
    )


def test_start_and_end_lines() -> None:
    assert rendering.start_line("id-1", "$LATEST") == "START RequestId: id-1 Version: $LATEST"
    assert rendering.end_line("id-1") == "END RequestId: id-1"


def test_timeout_log_line() -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert rendering.timeout_log_line("id-1", 3, now) == (
        "2024-01-02T03:04:05.678Z id-1 Task timed out after 3.00 seconds"
    )


# Messages ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returncode", "text"),
    [
        (0, "exit status 0"),
        (1, "exit status 1"),
        (3, "exit status 3"),
        (255, "exit status 255"),
        (-9, "signal: killed"),
        (-15, "signal: terminated"),
        (-11, "signal: segmentation fault"),
        (-6, "signal: aborted"),
        (-2, "signal: interrupt"),
    ],
)
def test_exit_description(returncode: int, text: str) -> None:
    assert rendering.exit_description(returncode) == text


def test_timeout_message() -> None:
    assert (
        rendering.timeout_message("id-1", 3.0) == "RequestId: id-1 Error: Task timed out after 3.00 seconds"
    )
    assert (
        rendering.timeout_message("id-1", 0.5) == "RequestId: id-1 Error: Task timed out after 0.50 seconds"
    )


def test_exit_message() -> None:
    assert rendering.exit_message("id-1", "exit status 1") == (
        "RequestId: id-1 Error: Runtime exited with error: exit status 1"
    )


def test_function_error_body_as_the_invoker_sees_it() -> None:
    body = rendering.function_error_body(errors.SANDBOX_TIMEDOUT, rendering.timeout_message("r", 3))
    assert json.loads(body) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: r Error: Task timed out after 3.00 seconds",
    }
    assert list(json.loads(body)) == ["errorType", "errorMessage"]


# Invoke API service errors -------------------------------------------------------------------------------


def test_service_error_headers_and_body() -> None:
    error = errors.ServiceError(404, errors.RESOURCE_NOT_FOUND, "Function not found: arn:aws:lambda:x")
    response = rendering.service_error(error, "req-1")
    assert response.status == 404
    assert response.headers == [
        ("Content-Type", "application/json"),
        ("x-amzn-ErrorType", "ResourceNotFoundException"),
        ("x-amzn-RequestId", "req-1"),
    ]
    assert json.loads(response.body) == {"Type": "User", "message": "Function not found: arn:aws:lambda:x"}


def test_service_error_message_is_json_escaped() -> None:
    error = errors.ServiceError(400, errors.INVALID_REQUEST_CONTENT, 'bad "quote"\nand newline')
    assert json.loads(rendering.service_error(error, "r").body)["message"] == 'bad "quote"\nand newline'


# Runtime API bodies --------------------------------------------------------------------------------------


def _runtime_body(response: rendering.Response) -> dict[str, str]:
    assert ("Content-Type", "application/json") in response.headers
    body: dict[str, str] = json.loads(response.body)
    assert sorted(body) == ["errorMessage", "errorType"]
    return body


def test_runtime_accepted() -> None:
    assert rendering.RUNTIME_ACCEPTED.status == 202
    assert rendering.RUNTIME_ACCEPTED.body == b'{"status":"OK"}'


def test_invalid_request_id() -> None:
    response = rendering.invalid_request_id()
    assert response.status == 400
    assert _runtime_body(response) == {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}


def test_invalid_state_transition() -> None:
    response = rendering.invalid_state_transition("nope")
    assert response.status == 403
    assert _runtime_body(response) == {"errorMessage": "nope", "errorType": "InvalidStateTransition"}


def test_runtime_payload_too_large() -> None:
    response = rendering.runtime_payload_too_large(6291556)
    assert response.status == 413
    assert _runtime_body(response) == {
        "errorMessage": "Exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "RequestEntityTooLarge",
    }


def test_runtime_error() -> None:
    response = rendering.runtime_error(404, errors.NOT_FOUND, "Unknown path /x")
    assert response.status == 404
    assert _runtime_body(response) == {"errorMessage": "Unknown path /x", "errorType": "NotFound"}


def test_rendered_responses_do_not_share_header_lists() -> None:
    first = rendering.runtime_error(405, errors.METHOD_NOT_ALLOWED, "x")
    first.headers.append(("Allow", "GET"))
    assert ("Allow", "GET") not in rendering.runtime_error(405, errors.METHOD_NOT_ALLOWED, "x").headers
    assert ("Allow", "GET") not in rendering.RUNTIME_ACCEPTED.headers


# Lambda-Runtime-Function-Error-Type (reference section 1) ------------------------------------------------


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        (None, None),
        ("", None),
        ("Runtime.ImportModuleError", "Runtime.ImportModuleError"),
        ("Runtime.ExitError", "Runtime.ExitError"),
        ("Function.ResponseSizeTooLarge", "Function.ResponseSizeTooLarge"),
        ("Function.MyCustomErrorTypeHere", "Function.MyCustomErrorTypeHere"),
        ("Runtime.lowercase", "Runtime.Unknown"),
        ("Function.lowercase", "Function.Unknown"),
        ("Runtime.", "Runtime.Unknown"),
        ("Function.", "Function.Unknown"),
        ("ValueError", "Runtime.Unknown"),
        ("MyCustomError.Error", "Runtime.Unknown"),
        ("runtime.ImportModuleError", "Runtime.Unknown"),
    ],
)
def test_normalise_function_error_type(header: str | None, kept: str | None) -> None:
    assert errors.normalise_function_error_type(header) == kept


@pytest.mark.parametrize("header", ["MyLib.Runtime.CustomError", "Wrapped: Function.Failed"])
def test_error_type_containing_a_valid_type_is_kept(header: str) -> None:
    assert errors.normalise_function_error_type(header) == header


@pytest.mark.parametrize("header", ["Runtime.X", "Runtime.X1"])
def test_error_type_with_a_one_letter_name_is_unknown(header: str) -> None:
    assert errors.normalise_function_error_type(header) == "Runtime.Unknown"


def test_report_line_of_a_snapstart_environment_says_restore_duration_as_the_service() -> None:
    line = rendering.report_line("id", 1.5, 128, 3, None, restore_duration_ms=4.321)
    assert line.split("\t")[-2:] == ["Restore Duration: 4.32 ms", "Billed Restore Duration: 5 ms"]
    assert "Init Duration" not in line
