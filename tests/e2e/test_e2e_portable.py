"""A host that is not Linux (issue 13 §4): the server serves without pidfds, /proc or cgroups, and says at
start what it does not enforce there.

The server runs under tests/e2e/not_linux.py, which takes those features away from its process (every
/proc and /sys/fs/cgroup access refused and named on stderr, no os.pidfd_open): once with
RAPIDBOOT_PORTABLE=1 on this Linux host, once with no setting on a host that says it is macOS
(`sys.platform`), which the server must recognise by itself. The function suite's own run in portable mode
is in test_e2e_invoke.py.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    FUNCTIONS_DIR,
    RapidServer,
    process_info,
    request_id_of,
    server_environment,
    supervised,
    wait_process_gone,
    write_tables,
)
from not_linux import refused_lines, server_command

from rapidboot.rapid_server.host import PORTABLE_VARIABLE

pytestmark = pytest.mark.e2e

ESCAPED = re.compile(r"^\[escape \S+\] escaped (?P<runtime>\d+) (?P<started>\d+)$")
BASIC = str(FUNCTIONS_DIR / "basic")
NOT_ENFORCED = (
    "so not enforced here: memory limits; peak memory (REPORT's Max Memory Used shows 0 MB); containment "
    "beyond the runtime's process group (a setsid child can outlive it); isolation of the Runtime API (open "
    "to any local process)"
)


def not_linux_server(
    tmp_path: Path, tables: dict[str, dict[str, Any]], platform: str | None, setting: str | None
) -> RapidServer:
    """A server run by not_linux.py; `setting`: RAPIDBOOT_PORTABLE's value, None for unset."""
    config = write_tables(tmp_path / "rapidboot.toml", tables)
    env = server_environment()
    env.pop(PORTABLE_VARIABLE, None)
    if setting is not None:
        env[PORTABLE_VARIABLE] = setting
    server = RapidServer(["--config", str(config), "--state-dir", str(tmp_path / "state")], tmp_path, env)
    server.args = server_command(server.args, platform)
    return server


@pytest.mark.parametrize(
    ("platform", "setting", "lacking"),
    [
        pytest.param(None, "1", "RAPIDBOOT_PORTABLE=1: no cgroups, /proc or pidfds used", id="forced"),
        pytest.param("darwin", None, "this host has no cgroups, /proc or pidfds", id="macos"),
    ],
)
def test_serves_without_linux_and_says_what_is_not_enforced(
    tmp_path: Path, platform: str | None, setting: str | None, lacking: str
) -> None:
    tables = {
        "echo": {"code": BASIC, "handler": "handlers.echo", "timeout": 10},
        "crash": {"code": BASIC, "handler": "handlers.state", "timeout": 10},
    }
    server = not_linux_server(tmp_path, tables, platform, setting)
    with supervised(server) as running:
        assert f"rapidboot: {lacking}, {NOT_ENFORCED}" in running.stderr.lines, running.output_tail()

        response = running.invoke("echo", {"hello": "mac"})
        assert response.status_code == 200, response.text
        assert response.json() == {"hello": "mac"}
        assert running.report(request_id_of(response)).max_memory_used_mb == 0

        first = running.invoke("crash", {})
        crashed = running.invoke("crash", {"exit": 3})  # its exit is seen by polling, not by a pidfd
        assert crashed.headers.get("X-Amz-Function-Error") == "Unhandled", crashed.text
        assert crashed.json()["errorType"] == "Runtime.ExitError"
        again = running.invoke("crash", {})
        assert again.json()["count"] == 1
        assert again.json()["pid"] != first.json()["pid"]
    refused = refused_lines(server.stderr.lines)
    assert refused == [], "the server reached for Linux:\n" + "\n".join(refused)


def test_the_supervisor_ends_the_runtimes_group_when_the_server_is_killed(tmp_path: Path) -> None:
    """Without cgroups an environment is its runtime's process group. The supervisor (containment.py)
    needs nothing of Linux: when the server dies by SIGKILL, it still ends that group, the runtime and
    what the runtime started in it."""
    escape = {"code": str(FUNCTIONS_DIR / "escape"), "handler": "escape.handler", "timeout": 60}
    server = not_linux_server(tmp_path, {"escape": escape}, None, "1")
    with supervised(server, check_shutdown=False) as running:
        assert running.process is not None
        response = running.invoke("escape", {"spawn": "plain", "then": "return"})
        assert response.status_code == 200, response.text
        line = running.wait_for_line(lambda line: ESCAPED.match(line) is not None)
        match = ESCAPED.match(line)
        assert match is not None
        found = [process_info(int(match["runtime"])), process_info(int(match["started"]))]
        processes = [process for process in found if process is not None]
        assert len(processes) == 2, found  # the runtime is warm, its child sleeps
        running.process.kill()
        died = running.stderr.wait_for(lambda line: "rapidboot: supervisor: the server" in line)
        assert died is not None, running.output_tail()
        survivors = [process for process in processes if not wait_process_gone(process, EXIT_TIMEOUT_S)]
        assert survivors == [], f"{survivors}\n{running.output_tail()}"
    refused = refused_lines(server.stderr.lines)
    assert refused == [], "the server reached for Linux:\n" + "\n".join(refused)


def test_a_bad_portable_setting_is_refused_by_name(tmp_path: Path) -> None:
    env = server_environment()
    env[PORTABLE_VARIABLE] = "yes"
    server = RapidServer(["--code", BASIC, "--handler", "handlers.echo"], tmp_path, env)
    completed = subprocess.run(server.args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert completed.returncode == 2, completed
    assert "RAPIDBOOT_PORTABLE='yes': must be 1" in completed.stderr, completed.stderr
