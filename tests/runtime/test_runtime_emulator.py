"""The runtime's side of emulator mode: with AWS_LAMBDA_RUNTIME_API set, nothing of the server is imported.

Emulator mode itself (the variable unset) is exercised over HTTP in tests/e2e/test_e2e_emulator.py. Here:
the runtime path's imports, read from `python -X importtime`, and the `/opt` lookup of an exec wrapper.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent, FakeRuntimeAPI
from runtime_harness import BOOTSTRAP, runtime_env, write

from rapidboot.runtime.exec_wrapper import wrapper_to_exec

# What serving needs and running a function must never pay for.
SERVER_MODULES = ("rapidboot.rapid_server", "uvloop", "httptools", "asyncio", "orjson", "httpx")


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-X", "importtime", str(BOOTSTRAP)],
        [sys.executable, "-X", "importtime", "-m", "rapidboot.runtime"],
    ],
    ids=["bootstrap", "python -m rapidboot.runtime"],
)
def test_the_runtime_path_imports_nothing_of_the_server(task_root: Path, command: list[str]) -> None:
    write(task_root, {"app.py": "def handler(event, context):\n    return event\n"})
    with FakeRuntimeAPI([FakeEvent({"k": 1}, request_id="r1")]) as api:
        env = runtime_env(api, task_root, {"PYTHONPATH": str(BOOTSTRAP.parent)})
        done = subprocess.run([*command, "app.handler"], env=env, cwd="/", capture_output=True, timeout=30)
        assert [post.json() for post in api.posts("/response")] == [{"k": 1}]
    imported = [
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:")
    ]
    # importtime did report the runtime's own module, under the bootstrap's private name or the public one
    assert {"_rapidboot_runtime.main", "rapidboot.runtime.main"} & set(imported), imported
    assert [name for name in imported if name.startswith(SERVER_MODULES)] == []


def test_a_wrapper_under_opt_is_found_where_the_layers_are() -> None:
    # Our server merges a function's layers into RAPIDBOOT_OPT_DIR, not /opt: the value a function sets for
    # Lambda (`/opt/<wrapper>`) is looked up there; anything else is taken as written.
    environ = {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/rapidboot-wrapper", "RAPIDBOOT_OPT_DIR": "/srv/merged/"}
    assert wrapper_to_exec(environ) == "/srv/merged/rapidboot-wrapper"
    assert wrapper_to_exec({"AWS_LAMBDA_EXEC_WRAPPER": "/opt/rapidboot-wrapper"}) == "/opt/rapidboot-wrapper"
    environ = {"AWS_LAMBDA_EXEC_WRAPPER": "/optional/w", "RAPIDBOOT_OPT_DIR": "/srv/merged"}
    assert wrapper_to_exec(environ) == "/optional/w"
    # The wrapper's child: the mark is the variable's value, whatever path it was found at.
    environ = {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/rapidboot-wrapper",
        "RAPIDBOOT_OPT_DIR": "/srv/merged",
        "_RAPIDBOOT_EXEC_WRAPPED": "/opt/rapidboot-wrapper",
    }
    assert wrapper_to_exec(environ) is None
    assert "_RAPIDBOOT_EXEC_WRAPPED" not in environ
