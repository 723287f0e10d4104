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
    "rapidboot-m": [sys.executable, "-m", "runtime"],
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
) -> Run:
    with FakeRuntimeAPI(events, exhausted_status=exhausted_status) as api:
        full_env = {
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
        args = COMMANDS[impl] + ([handler] if handler is not None else [])
        # awslambdaric needs the task root on sys.path itself (its managed bootstrap adds it).
        cwd = task_root if impl == "awslambdaric" else "/"
        proc = subprocess.run(args, env=full_env, cwd=cwd, capture_output=True, timeout=20)
        return Run(api, proc)


def write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
