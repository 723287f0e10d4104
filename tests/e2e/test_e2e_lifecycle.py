"""Server lifecycle and the flag-driven (no toml) configuration, with a fresh server per test."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    HTTP_TIMEOUT_S,
    SHUTTING_DOWN_PAST_GRACE,
    RapidServer,
    ServerStartError,
    hold_invoke,
    request_id_of,
    running_server,
    wait_process_gone,
)

pytestmark = pytest.mark.e2e


def flag_args(runtime: str, code: Path, handler: str, *extra: str) -> list[str]:
    args = ["--code", str(code), "--handler", handler, *extra]
    if runtime == "awslambdaric":
        args += ["--command", shlex.join([sys.executable, "-m", "awslambdaric", handler])]
    return args


@pytest.fixture
def basic_code(code_root: Path) -> Path:
    return code_root / "functions" / "basic"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_with_a_warm_environment(
    runtime: str, basic_code: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    with running_server(
        flag_args(runtime, basic_code, "handlers.state"), tmp_path, check_shutdown=False
    ) as server:
        response = server.invoke("function", {})
        assert response.status_code == 200, response.text
        runtime_process = server.seen_process(response.json()["pid"])
        code = server.stop(sig)
        assert code == 0, f"exit code {code} after {sig.name}\n{server.output_tail()}"
        server.assert_no_survivors()
        assert wait_process_gone(runtime_process, EXIT_TIMEOUT_S)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_an_invoke_in_flight(
    runtime: str, basic_code: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    args = flag_args(runtime, basic_code, "handlers.state", "--timeout", "60")
    with running_server(args, tmp_path, check_shutdown=False) as server:
        outcome: list[object] = []

        def invoke_sleeper() -> None:
            try:
                with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
                    outcome.append(
                        client.post(
                            server.endpoint + server.invoke_path("function"), content=b'{"sleep": 60}'
                        )
                    )
            except httpx.HTTPError as error:
                outcome.append(error)

        caller = threading.Thread(target=invoke_sleeper, daemon=True)
        caller.start()
        server.wait_for_line(lambda line: line.startswith("START RequestId: "))
        sleepers = server.runtime_processes("function")
        assert sleepers, f"no runtime process found while an invoke is in flight\n{server.output_tail()}"

        code = server.stop(sig)
        assert code == 0, f"exit code {code} after {sig.name}\n{server.output_tail()}"
        server.assert_no_survivors()
        caller.join(HTTP_TIMEOUT_S)
        assert not caller.is_alive(), "the in-flight caller was left hanging after the server exited"
        [response] = outcome
        assert isinstance(response, httpx.Response), f"the in-flight caller got no answer: {response!r}"
        # Past the grace period: the server's own error, not the runtime's exit after its SIGTERM.
        assert response.status_code == 503, response.text
        assert response.headers.get("x-amzn-ErrorType") == "ServiceException"
        assert "X-Amz-Function-Error" not in response.headers
        assert response.json() == {"Type": "Service", "message": SHUTTING_DOWN_PAST_GRACE}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_invoke_finishing_within_the_grace_period_gets_its_answer(
    runtime: str, code_root: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    args = flag_args(runtime, code_root / "functions" / "escape", "escape.gated", "--timeout", "60")
    with running_server(args, tmp_path, check_shutdown=False) as server:
        held = hold_invoke(server, "function", "graceful", tmp_path)
        assert server.process is not None
        server.process.send_signal(sig)
        # Released once the server has begun to stop: the answer comes within its grace period.
        assert server.stderr.wait_for(lambda line: "stopping; 1 invokes in flight" in line) is not None
        response = held.release("finished")
        assert response.status_code == 200, response.text
        assert response.json() == {"token": "graceful", "word": "finished", "request_id": held.request_id}
        assert server.process.wait(EXIT_TIMEOUT_S) == 0, server.output_tail()
        server.stop(sig)  # already exited: only collects its output
        server.assert_no_survivors()


def test_flags_configure_one_function(runtime: str, basic_code: Path, tmp_path: Path) -> None:
    args = flag_args(
        runtime,
        basic_code,
        "handlers.environment",
        "--name",
        "flagged",
        "--memory",
        "256",
        "--timeout",
        "7",
        "--env",
        "GREETING=from a flag",
        "--env",
        "EQUATION=a=b",
    )
    with running_server(args, tmp_path) as server:
        assert server.host == "127.0.0.1", "the Invoke API must listen on loopback by default"
        assert server.runtime_processes("flagged") == [], "environments start lazily, on the first invoke"
        names = ["GREETING", "EQUATION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        response = server.invoke("flagged", {"names": names})
        assert response.status_code == 200, response.text
        assert response.json()["environ"] == {
            "GREETING": "from a flag",
            "EQUATION": "a=b",
            "AWS_LAMBDA_FUNCTION_NAME": "flagged",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        }
        assert server.report(request_id_of(response)).memory_size_mb == 256
        assert server.invoke("function", {}).status_code == 404


def test_default_function_name_and_timeout_flag(runtime: str, basic_code: Path, tmp_path: Path) -> None:
    args = flag_args(runtime, basic_code, "handlers.state", "--timeout", "1")
    with running_server(args, tmp_path) as server:
        response = server.invoke("function", {"sleep": 30})
        request_id = request_id_of(response)
        assert response.headers.get("X-Amz-Function-Error") == "Unhandled"
        assert response.json() == {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
        }


def test_unknown_option_fails_fast(tmp_path: Path) -> None:
    """A bad command line must end the process with an error, not leave a half-started server."""
    server = RapidServer(["--no-such-option"], tmp_path)
    try:
        server.start()
    except ServerStartError:
        pass
    else:
        server.shutdown_and_check()
        pytest.fail("the server started despite an unknown option")
    assert server.process is not None
    assert server.process.returncode not in (None, 0)
