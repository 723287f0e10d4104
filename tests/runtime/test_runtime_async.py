"""`async def` handlers: one lazily created event loop, reused; sync handlers never import asyncio."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent
from runtime_harness import run_runtime, write

ASYNC_APP = """
import asyncio
SEEN = []

async def handler(event, context):
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    SEEN.append(id(loop))
    return {"loops": len(set(SEEN)), "invokes": len(SEEN), "request_id": context.aws_request_id}

async def fails(event, context):
    await asyncio.sleep(0)
    raise ValueError("async boom")
"""

MODULE_SCOPE_LOOP = """
import asyncio
LOOP = SETUP
READY = LOOP.create_future()  # bound to the module-scope loop, like a client's connection pool
READY.set_result("connected")

async def handler(event, context):
    return [asyncio.get_running_loop() is LOOP, await READY]
"""

SYNC_APP = """
import sys
def handler(event, context):
    return sorted(m for m in ("asyncio", "concurrent.futures", "selectors") if m in sys.modules)
"""


def test_async_handler_runs_on_one_loop_across_invokes(task_root: Path) -> None:
    write(task_root, {"app.py": ASYNC_APP})
    events = [FakeEvent({}, request_id=f"r{i}") for i in range(3)]
    run = run_runtime(task_root, events)
    results = [post.json() for post in run.api.posts("/response")]
    assert [r["request_id"] for r in results] == ["r0", "r1", "r2"]
    assert results[-1] == {"loops": 1, "invokes": 3, "request_id": "r2"}


@pytest.mark.parametrize(
    "setup",
    [
        "asyncio.new_event_loop()\nasyncio.set_event_loop(LOOP)",  # any Python version
        "asyncio.get_event_loop()",  # 3.11's implicit loop (a DeprecationWarning on 3.12+)
    ],
)
def test_module_scope_loop_is_adopted(task_root: Path, setup: str) -> None:
    write(task_root, {"app.py": MODULE_SCOPE_LOOP.replace("SETUP", setup)})
    run = run_runtime(task_root, [FakeEvent({}, request_id="r1"), FakeEvent({}, request_id="r2")])
    assert [post.json() for post in run.api.posts("/response")] == [[True, "connected"]] * 2, run.stderr


def test_async_handler_error_is_reported_like_a_sync_one(task_root: Path) -> None:
    write(task_root, {"app.py": ASYNC_APP})
    run = run_runtime(task_root, [FakeEvent({}, request_id="r1")], handler="app.fails")
    (post,) = run.api.posts("/r1/error")
    body = post.json()
    assert (body["errorType"], body["errorMessage"]) == ("ValueError", "async boom")
    assert body["stackTrace"][0].startswith('  File "') and "in fails" in body["stackTrace"][0]


def test_sync_handler_never_imports_asyncio(task_root: Path) -> None:
    write(task_root, {"app.py": SYNC_APP})
    run = run_runtime(task_root, [FakeEvent({})])
    assert run.api.posts("/response")[0].json() == []
