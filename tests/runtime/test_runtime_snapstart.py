"""SnapStart: hooks from `snapshot_restore_py` around `GET /restore/next`, errors -> exit 64 / 65."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent, FakeRuntimeAPI
from runtime_harness import run_runtime, spawn_runtime, write

HAVE_RIC = importlib.util.find_spec("awslambdaric") is not None
IMPLS = ["rapidboot", pytest.param("awslambdaric", marks=pytest.mark.skipif(not HAVE_RIC, reason="no ric"))]
SNAP = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}

APP = """
import time
from snapshot_restore_py import register_after_restore, register_before_snapshot
CALLS = []

def hook(name, fail=False):
    CALLS.append((name, time.perf_counter()))
    if fail:
        raise RuntimeError(name + " failed")

register_before_snapshot(hook, "before-1")
register_before_snapshot(hook, "before-2", fail=FAIL_BEFORE)
register_after_restore(hook, "after-1", fail=FAIL_AFTER)
register_after_restore(hook, name="after-2")

def handler(event, context):
    return CALLS
"""


def _app(fail_before: bool = False, fail_after: bool = False) -> str:
    return APP.replace("FAIL_BEFORE", str(fail_before)).replace("FAIL_AFTER", str(fail_after))


@pytest.mark.parametrize("impl", IMPLS)
def test_hooks_run_in_order_around_restore_next(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": _app()})
    run = run_runtime(task_root, [FakeEvent({}, request_id="r1")], impl=impl, env=SNAP)
    assert run.returncode == 1, run.stderr  # /next closed after the one event
    paths = [(r.method, r.path.removeprefix("/2018-06-01/runtime")) for r in run.api.requests]
    assert paths[:3] == [
        ("GET", "/restore/next"),
        ("GET", "/invocation/next"),
        ("POST", "/invocation/r1/response"),
    ]
    calls = run.api.posts("/response")[0].json()
    assert [name for name, _ in calls] == ["before-2", "before-1", "after-1", "after-2"]  # LIFO, then FIFO
    restore_at = run.api.requests[0].received_at  # CLOCK_MONOTONIC: comparable across processes
    assert calls[1][1] < restore_at < calls[2][1]


@pytest.mark.parametrize("impl", IMPLS)
def test_before_snapshot_failure_is_an_init_error_exit_64(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": _app(fail_before=True)})
    run = run_runtime(task_root, [FakeEvent({})], impl=impl, env=SNAP)
    assert run.returncode == 64
    (post,) = run.api.posts("/init/error")
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.BeforeSnapshotError"
    body = post.json()
    assert (body["errorType"], body["errorMessage"]) == ("RuntimeError", "before-2 failed")
    assert not any(r.path.endswith("/restore/next") for r in run.api.requests)
    assert "RuntimeError: before-2 failed" in run.stdout


@pytest.mark.parametrize("impl", IMPLS)
def test_after_restore_failure_is_a_restore_error_exit_65(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": _app(fail_after=True)})
    run = run_runtime(task_root, [FakeEvent({})], impl=impl, env=SNAP)
    assert run.returncode == 65
    (post,) = run.api.posts("/restore/error")
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.AfterRestoreError"
    assert post.json()["errorMessage"] == "after-1 failed"
    assert not any(r.path.endswith("/invocation/next") for r in run.api.requests)


def test_restore_next_error_status_exits_64(task_root: Path) -> None:
    write(task_root, {"app.py": _app()})
    with FakeRuntimeAPI([FakeEvent({})], restore_status=500) as api:
        proc = spawn_runtime(api, task_root, env=SNAP)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 64, stderr
    (post,) = api.posts("/init/error")
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.BeforeSnapshotError"


NO_HOOKS = """
import sys
def handler(event, context):
    return "snapshot_restore_py" in sys.modules
"""


@pytest.mark.parametrize("init_type", ["snap-start", "on-demand"])
def test_snapshot_restore_py_is_never_imported_by_the_runtime(task_root: Path, init_type: str) -> None:
    write(task_root, {"app.py": NO_HOOKS})
    run = run_runtime(task_root, [FakeEvent({})], env={"AWS_LAMBDA_INITIALIZATION_TYPE": init_type})
    assert json.loads(run.api.posts("/response")[0].body) is False
    assert any(r.path.endswith("/restore/next") for r in run.api.requests) == (init_type == "snap-start")


TEMPLATE_MODULES = """
import sys
def handler(event, context):
    return sorted(m for m in sys.modules if m.endswith(".template") or m in ("json", "socket", "signal"))
"""


def test_the_template_mode_costs_a_normal_start_no_import(task_root: Path) -> None:
    """runtime/template.py (and its json, socket, signal) loads only in a SnapStart template process."""
    write(task_root, {"app.py": TEMPLATE_MODULES})
    run = run_runtime(task_root, [FakeEvent({})])
    assert json.loads(run.api.posts("/response")[0].body) == []
