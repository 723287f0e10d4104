"""`AWS_LAMBDA_EXEC_WRAPPER`: the real bootstrap re-execs under a wrapper script, once; 126/127 when bad."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent
from runtime_harness import BOOTSTRAP, run_runtime, write

APP = """
import os, sys
def handler(event, context):
    return {"wrapped": os.environ.get("WRAPPED_BY"), "argv": sys.argv,
            "wrapper_env": os.environ.get("AWS_LAMBDA_EXEC_WRAPPER"),
            "mark": os.environ.get("_RAPIDBOOT_EXEC_WRAPPED")}
"""


def _wrapper(tmp_path: Path, body: str = "", mode: int = 0o755) -> Path:
    script = tmp_path / "wrapper.sh"
    # Records each run (a loop would run it more than once), then execs the runtime as wrappers do.
    script.write_text(
        f'#!/bin/sh\necho "$@" >> "{tmp_path}/wrapper-runs"\nexport WRAPPED_BY=me\n{body}exec "$@"\n'
    )
    script.chmod(mode)
    return script


@pytest.mark.parametrize("impl", ["rapidboot", "rapidboot-m"])
def test_wrapper_runs_once_and_execs_the_runtime(tmp_path: Path, task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": APP})
    wrapper = _wrapper(tmp_path)
    env = {"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)}
    if impl == "rapidboot-m":
        env["PYTHONPATH"] = str(BOOTSTRAP.parent)
    run = run_runtime(task_root, [FakeEvent({}, request_id="r1")], impl=impl, env=env)
    assert run.returncode == 1, run.stderr  # the fake API closes /next after the one event
    runs = (tmp_path / "wrapper-runs").read_text().splitlines()
    assert len(runs) == 1, runs  # the wrapper's exec of the runtime did not wrap again
    result = run.api.posts("/response")[0].json()
    assert result["wrapped"] == "me"
    # The managed runtime's shape: `wrapper <interpreter> <bootstrap> <args>`, variable still visible.
    interpreter, *rest = runs[0].split(" ")
    assert os.path.basename(interpreter).startswith("python")
    if impl == "rapidboot":
        assert rest == [str(BOOTSTRAP), "app.handler"]
    else:
        assert rest == ["-m", "rapidboot.runtime", "app.handler"]
    assert result["wrapper_env"] == str(wrapper)
    assert result["mark"] is None  # dropped, so a runtime the function spawns would wrap again


def test_missing_wrapper_exits_127(tmp_path: Path, task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    missing = tmp_path / "nope.sh"
    run = run_runtime(task_root, [FakeEvent({})], env={"AWS_LAMBDA_EXEC_WRAPPER": str(missing)})
    assert run.returncode == 127
    assert f"{missing}: does not exist" in run.stderr
    assert run.api.requests == []  # nothing ran


def test_non_executable_wrapper_exits_126(tmp_path: Path, task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    wrapper = _wrapper(tmp_path, mode=0o644)
    run = run_runtime(task_root, [FakeEvent({})], env={"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)})
    assert run.returncode == 126
    assert f"{wrapper}: is not an executable" in run.stderr
    assert run.api.requests == []


def test_wrapper_that_cannot_be_executed_exits_126(tmp_path: Path, task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    wrapper = tmp_path / "bad"
    wrapper.write_bytes(b"\x7fELF not really")
    wrapper.chmod(0o755)
    run = run_runtime(task_root, [FakeEvent({})], env={"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)})
    assert run.returncode == 126
    assert f"{wrapper}: cannot execute" in run.stderr


def test_wrapper_that_fails_gives_its_exit_status(tmp_path: Path, task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    wrapper = _wrapper(tmp_path, body="exit 3\n")
    run = run_runtime(task_root, [FakeEvent({})], env={"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)})
    assert run.returncode == 3
