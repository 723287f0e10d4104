"""Emulator mode: `bootstrap` / `python -m rapidboot.runtime` without AWS_LAMBDA_RUNTIME_API serve the
function locally.

What `docker run -p 9000:8080 image` does with an image whose ENTRYPOINT is our bootstrap, without Docker: the
bootstrap runs as a plain subprocess with the variable unset and a free port (RAPIDBOOT_PORT=0), it is ready
when its log line gives the bound address, and is invoked over HTTP with httpx and boto3. SIGTERM must stop it
with exit 0 and no runtime process left behind.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from e2e_harness import RapidServer, lambda_client, server_environment, supervised

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "bootstrap"

APP = """\
import os, sys

def handler(event, context):
    return {
        "event": event,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "greeting": os.environ.get("GREETING"),
        "runtime_api_set": bool(os.environ.get("AWS_LAMBDA_RUNTIME_API")),
        "emulator_port_leaked": "RAPIDBOOT_PORT" in os.environ,
        "argv": sys.argv,
        "cwd": os.getcwd(),
    }
"""

ENTRYPOINTS = {
    "bootstrap": [sys.executable, str(BOOTSTRAP)],
    "python -m rapidboot.runtime": [sys.executable, "-m", "rapidboot.runtime"],
}


class Emulator(RapidServer):
    """The bootstrap in emulator mode, driven like the harness's server (readiness line, SIGTERM, orphans)."""

    def __init__(self, command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        super().__init__([], cwd, env)
        self.args = list(command)


@contextlib.contextmanager
def emulating(command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Iterator[RapidServer]:
    with supervised(Emulator(command, cwd, env)) as emulator:
        yield emulator


def emulator_env(**extra: str) -> dict[str, str]:
    env = server_environment()  # no AWS_* / LAMBDA_* / PYTHON* from the test run
    env.update({"RAPIDBOOT_PORT": "0", "RAPIDBOOT_HOST": "127.0.0.1", **extra})
    return env


@pytest.fixture
def code(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    (root / "app.py").write_text(APP)
    return root


@pytest.mark.parametrize("entrypoint", sorted(ENTRYPOINTS))
def test_serves_the_cmd_handler_from_the_working_directory(code: Path, entrypoint: str) -> None:
    # `docker run`: cwd is the image's WORKDIR, the handler its CMD; the image's ENV reaches the function.
    env = emulator_env(GREETING="from the image")
    if entrypoint == "python -m rapidboot.runtime":
        env["PYTHONPATH"] = str(REPO)  # as an image with rapidboot installed
    with emulating([*ENTRYPOINTS[entrypoint], "app.handler"], code, env) as emulator:
        banner = emulator.stderr.lines[0]
        assert "AWS_LAMBDA_RUNTIME_API is not set" in banner
        assert "0.0.0.0:8080" in banner and "RAPIDBOOT_PORT" in banner
        response = emulator.invoke("function", {"n": 1})
        assert response.status_code == 200, emulator.output_tail()
        body = response.json()
        assert body["event"] == {"n": 1}
        assert body["function_name"] == "function"
        assert body["memory"] == "3008"  # RIE's default
        assert 290_000 < body["remaining_ms"] <= 300_000  # RIE's default timeout, 300 s
        assert body["greeting"] == "from the image"
        assert body["runtime_api_set"] is True  # the function runs under the runtime, not the emulator
        assert body["emulator_port_leaked"] is False
        assert body["argv"][-1] == "app.handler"
        assert body["cwd"] == str(code)
        request_id = response.headers["x-amzn-RequestId"]
        assert emulator.report(request_id).memory_size_mb == 3008
        # The same environment stays warm: the second invoke reaches the same runtime process.
        runtimes = emulator.runtime_processes("function")
        assert len(runtimes) == 1
        assert emulator.invoke("function", {"n": 2}).json()["event"] == {"n": 2}
        assert emulator.runtime_processes("function") == runtimes


def test_boto3_invokes_it(code: Path) -> None:
    with emulating([*ENTRYPOINTS["bootstrap"], "app.handler"], code, emulator_env()) as emulator:
        client = lambda_client(emulator.endpoint)
        response = client.invoke(FunctionName="function", Payload=b'{"via": "boto3"}')
        assert response["StatusCode"] == 200
        assert "FunctionError" not in response
        assert json.loads(response["Payload"].read())["event"] == {"via": "boto3"}


def test_handler_from_the_environment_and_the_image_settings(tmp_path: Path, code: Path) -> None:
    # No CMD: `_HANDLER`; the code in LAMBDA_TASK_ROOT (not the cwd); memory and timeout as RIE reads them.
    env = emulator_env(
        _HANDLER="app.handler",
        LAMBDA_TASK_ROOT=str(code),
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
        AWS_LAMBDA_FUNCTION_TIMEOUT="7",
    )
    with emulating(ENTRYPOINTS["bootstrap"], tmp_path, env) as emulator:
        response = emulator.invoke("function", {})
        assert response.status_code == 200, emulator.output_tail()
        body = response.json()
        assert body["memory"] == "256"
        assert 0 < body["remaining_ms"] <= 7_000
        assert body["cwd"] == str(code)
        assert emulator.report(response.headers["x-amzn-RequestId"]).memory_size_mb == 256


def test_listens_on_all_interfaces_by_default(code: Path) -> None:
    env = emulator_env()
    del env["RAPIDBOOT_HOST"]
    with emulating([*ENTRYPOINTS["bootstrap"], "app.handler"], code, env) as emulator:
        assert emulator.host == "0.0.0.0"
        response = emulator.invoke("function", {"x": 1})  # 0.0.0.0 reaches the loopback interface
        assert response.json()["event"] == {"x": 1}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "no handler"),
        (["app.handler"], {"AWS_LAMBDA_FUNCTION_TIMEOUT": "901"}, "AWS_LAMBDA_FUNCTION_TIMEOUT='901'"),
        (["app.handler"], {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "64"}, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE='64'"),
        (["app.handler"], {"RAPIDBOOT_PORT": "http"}, "RAPIDBOOT_PORT='http'"),
        (["app.handler"], {"LAMBDA_TASK_ROOT": "/nonexistent/task"}, "/nonexistent/task does not exist"),
    ],
)
def test_bad_settings_stop_it_before_it_serves(
    code: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [*ENTRYPOINTS["bootstrap"], *args],
        cwd=code,
        env=emulator_env(**env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "listening on" not in done.stderr
