"""Shared helpers: run the real `bootstrap` (or awslambdaric) against the fake Runtime API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fake_runtime_api import FakeEvent, FakeRuntimeAPI

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "bootstrap"

COMMANDS = {
    "rapidboot": [sys.executable, str(BOOTSTRAP)],
    "rapidboot-isolated": [sys.executable, "-I", str(BOOTSTRAP)],
    "rapidboot-m": [sys.executable, "-m", "rapidboot.runtime"],
    "awslambdaric": [sys.executable, "-m", "awslambdaric"],
}


class Run:
    def __init__(self, api: FakeRuntimeAPI, proc: subprocess.CompletedProcess[bytes]) -> None:
        self.api = api
        self.returncode = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")


def run_runtime(
    task_root: Path,
    events: list[FakeEvent],
    handler: str | None = "app.handler",
    *,
    impl: str = "rapidboot",
    env: dict[str, str] | None = None,
    exhausted_status: int | None = None,
    pass_fds: tuple[int, ...] = (),
) -> Run:
    with FakeRuntimeAPI(events, exhausted_status=exhausted_status) as api:
        args = COMMANDS[impl] + ([handler] if handler is not None else [])
        # awslambdaric needs the task root on sys.path itself (its managed bootstrap adds it).
        cwd = task_root if impl == "awslambdaric" else "/"
        full_env = runtime_env(api, task_root, env)
        proc = subprocess.run(args, env=full_env, cwd=cwd, capture_output=True, timeout=20, pass_fds=pass_fds)
        return Run(api, proc)


def runtime_env(api: FakeRuntimeAPI, task_root: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "f",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/f",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]abc",
        "RAPIDBOOT_OPT_DIR": str(task_root / "opt"),
        **(env or {}),
    }


def spawn_runtime(
    api: FakeRuntimeAPI,
    task_root: Path,
    handler: str = "app.handler",
    *,
    impl: str = "rapidboot",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the runtime without waiting for it (the caller talks to `api`, then waits or signals)."""
    cwd = task_root if impl == "awslambdaric" else "/"
    return subprocess.Popen(
        [*COMMANDS[impl], handler],
        env=runtime_env(api, task_root, env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
