"""SnapStart locally (issue 17), as a user lives it: `snap_start = true` functions on a real server, each
new environment forked from the function's initialised template. The hooks are the real
`snapshot_restore_py`'s. Every wait is on an HTTP answer, a log line or a gate, never a sleep."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    FUNCTIONS_DIR,
    RapidServer,
    ok_body,
    request_id_of,
    running_server,
    wait_process_gone,
)

pytestmark = pytest.mark.e2e

RESTORE_REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>\S+)\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: \d+ MB"
    r"\tMax Memory Used: (?P<used>\d+) MB"
    r"(?:\tRestore Duration: (?P<restore>\d+\.\d{2}) ms\tBilled Restore Duration: (?P<billed>\d+) ms)?"
    r"(?:\tStatus: (?P<status>\w+)(?:\tError Type: (?P<error_type>\S+))?)?$"
)

CONFIG = """\
[functions.hooks]
code = "code"
handler = "hooks.handler"
snap_start = true

[functions.crash]
code = "code"
handler = "hooks.handler"
snap_start = true

[functions.contained]
code = "code"
handler = "hooks.handler"
snap_start = true

[functions.threads]
code = "code"
handler = "threads.handler"
snap_start = true

[functions.slow_restore]
code = "code"
handler = "slow_restore.handler"
snap_start = true
# The restore limit, shortened for this test only (10 s on Lambda).
environment = {{ RAPIDBOOT_TEST_RESTORE_TIMEOUT_S = "0.3" }}

[functions.failing_restore]
code = "code"
handler = "failing_restore.handler"
snap_start = true

[functions.memory]
code = "code"
handler = "memory.handler"
memory = 128
snap_start = true

[functions.gated]
code = "code"
handler = "gated.handler"
snap_start = true
environment = {{ GATE_PORT = "{gate_port}" }}
"""


class Gate:
    """A TCP gate the `gated` template's init waits at: each connection says its pid, and waits for a byte."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.settimeout(EXIT_TIMEOUT_S)

    def arrival(self) -> tuple[socket.socket, int]:
        """The next template waiting at the gate, and its pid."""
        connection, _ = self.listener.accept()
        connection.settimeout(EXIT_TIMEOUT_S)
        pid = int(connection.makefile().readline())
        return connection, pid


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    gate = Gate()
    with gate.listener:
        yield gate


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, gate: Gate) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("snapstart")
    shutil.copytree(FUNCTIONS_DIR / "snapstart", root / "code")
    (root / "rapidboot.toml").write_text(CONFIG.format(gate_port=gate.port))
    args = ["--config", str(root / "rapidboot.toml"), "--state-dir", str(root / "state")]
    with running_server(args, cwd=root) as server:
        yield server


def restore_report(server: RapidServer, request_id: str) -> re.Match[str]:
    line = server.wait_for_line(lambda line: line.startswith(f"REPORT RequestId: {request_id}\t"))
    match = RESTORE_REPORT.match(line)
    assert match is not None, f"REPORT line not in the service's SnapStart format: {line!r}"
    return match


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled", response.text
    body: dict[str, Any] = response.json()
    return body


def held_invoke(server: RapidServer, function: str, token: str) -> tuple[socket.socket, dict[str, Any]]:
    """An invoke whose handler is held at a gate (its environment busy), and where its answer will be."""
    gate = socket.create_server(("127.0.0.1", 0))
    answer: dict[str, Any] = {}

    def invoke() -> None:
        answer["response"] = server.invoke(function, {"token": token, "gate": gate.getsockname()[1]})

    caller = threading.Thread(target=invoke)
    caller.start()
    gate.settimeout(EXIT_TIMEOUT_S)
    held, _ = gate.accept()
    held.recv(1)  # the handler is running
    gate.close()
    answer["thread"] = caller
    return held, answer


def release(held: socket.socket, answer: dict[str, Any], token: str) -> dict[str, Any]:
    held.sendall(b"g")
    held.close()
    answer["thread"].join(EXIT_TIMEOUT_S)
    return ok_body(answer["response"], token)


def two_environments(server: RapidServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Answers from two environments at once: the first held busy while the second is forked."""
    held, answer = held_invoke(server, "hooks", "first")
    second = ok_body(server.invoke("hooks", {"token": "second"}), "second")
    first = release(held, answer, "first")
    return first, second


# --- Init once, the hooks in order --------------------------------------------------------------------


def test_init_runs_once_in_the_template_and_each_fork_reports_its_restore(server: RapidServer) -> None:
    first, second = two_environments(server)
    for body in (first, second):
        # Before-snapshot hooks newest first, in the template; after-restore hooks in registration order, in
        # each child (the real snapshot_restore_py registers them).
        assert body["order"] == [
            "before-2 in template",
            "before-1 in template",
            "after-1 in child",
            "after-2 in child",
        ]
        assert body["initialization_type"] == "snap-start"
    assert first["init_pid"] == second["init_pid"]  # one init for both environments
    assert first["init_random"] == second["init_random"]  # module globals made once, shared
    assert first["pid"] != first["init_pid"]
    # Both environments were new (the server's first invokes): their first REPORTs say Restore Duration.
    for body in (first, second):
        report = restore_report(server, body["request_id"])
        assert report["restore"] is not None, report.string
        assert "Init Duration" not in report.string
        assert int(report["billed"]) >= float(report["restore"])
    warm = ok_body(server.invoke("hooks", {"token": "warm"}), "warm")
    assert restore_report(server, warm["request_id"])["restore"] is None  # the first invoke's only


# --- What each child has of its own --------------------------------------------------------------------


def test_each_environment_has_its_own_pid_random_uuid_sockets_and_tmpdir(server: RapidServer) -> None:
    first, second = two_environments(server)
    for key in ("pid", "random", "urandom", "uuid", "runtime_api", "log_stream", "tmpdir"):
        assert first[key] != second[key], key
    for body in (first, second):
        assert body["tmpdir"] == body["tmpdir_env"]  # tempfile does not keep the template's
        assert body["pid"] != body["init_pid"]
    # No socket is inherited from the template (its control socket) or shared: each made its own.
    assert first["sockets"] and second["sockets"]
    assert not set(first["sockets"]) & set(second["sockets"])
    # Each in its own memory cgroup, where the server makes them.
    if "memory cgroup (" in "\n".join(server.stderr.lines):
        assert first["memory_cgroup"] != second["memory_cgroup"]


def test_what_a_forked_environment_starts_ends_with_it(server: RapidServer) -> None:
    body = ok_body(server.invoke("contained", {"token": "escape", "escape": True}), "escape")
    escaped = server.seen_process(body["escaped"])
    os.kill(body["pid"], signal.SIGKILL)  # the environment ends: everything in its cgroup (or group) with it
    assert wait_process_gone(escaped, EXIT_TIMEOUT_S), "a process of a forked environment outlived it"


# --- Refusals and failures -----------------------------------------------------------------------------


def test_a_thread_started_at_import_is_refused_with_a_message_naming_it(server: RapidServer) -> None:
    error = error_of(server.invoke("threads", {}))
    assert error["errorType"] == "Runtime.BeforeSnapshotError", error
    assert "1 thread(s) running (poller)" in error["errorMessage"], error
    assert "do not survive the fork" in error["errorMessage"], error


def test_an_after_restore_hook_past_the_restore_limit_is_a_snapstart_timeout(server: RapidServer) -> None:
    response = server.invoke("slow_restore", {})
    error = error_of(response)
    assert error["errorType"] == "SnapStartTimeoutException", error
    assert "restore limit" in error["errorMessage"], error
    report = server.wait_for_line(lambda line: line.startswith("INIT_REPORT") and "Phase: restore" in line)
    assert report.endswith("Status: error\tError Type: Runtime.AfterRestoreError"), report


def test_an_after_restore_hook_that_raises_is_an_after_restore_error(server: RapidServer) -> None:
    error = error_of(server.invoke("failing_restore", {}))
    assert error["errorType"] == "ConnectionError", error
    assert error["errorMessage"] == "the database is not there"
    server.wait_for_line(lambda line: line.startswith("INIT_REPORT") and "Runtime.AfterRestoreError" in line)


# --- Memory ----------------------------------------------------------------------------------------------


def test_a_child_is_limited_and_measured_on_its_own_memory(server: RapidServer) -> None:
    if "memory cgroup (" not in "\n".join(server.stderr.lines):
        pytest.skip("no memory cgroup here: a forked environment's own memory cannot be told apart")
    small = ok_body(server.invoke("memory", {"token": "small"}), "small")
    # The template's 60 MB are shared, not this environment's: its Max Memory Used is its own pages.
    assert int(restore_report(server, small["request_id"])["used"]) < 40
    grown = ok_body(server.invoke("memory", {"token": "grown", "allocate_mb": 50}), "grown")
    assert 50 <= int(restore_report(server, grown["request_id"])["used"]) < 128
    # Its own 200 MB are over the function's 128 MB: the kernel ends it, as it would a spawned one.
    response = server.invoke("memory", {"token": "oom", "allocate_mb": 200})
    error = error_of(response)
    assert error["errorType"] == "Runtime.ExitError", error
    report = restore_report(server, request_id_of(response))
    assert report["error_type"] == "Runtime.OutOfMemory", report.string
    assert wait_process_gone(server.seen_process(small["pid"]), EXIT_TIMEOUT_S)
    after = ok_body(server.invoke("memory", {"token": "after"}), "after")  # a fresh fork
    assert after["pid"] != small["pid"]


# --- The template's own end -------------------------------------------------------------------------------


def test_a_crashed_template_is_replaced_and_its_environments_live_on(server: RapidServer) -> None:
    before = ok_body(server.invoke("crash", {"token": "before"}), "before")
    seen = len(server.stdout.lines)
    os.kill(before["init_pid"], signal.SIGKILL)
    # Restarted at once, not when an environment next needs it.
    server.wait_for_line(
        lambda line: "template of crash exited (signal: killed); starting another" in line, after=seen
    )
    server.wait_for_line(lambda line: "SnapStart template of crash initialised" in line, after=seen)
    # The environment forked before the crash serves on.
    warm = ok_body(server.invoke("crash", {"token": "warm"}), "warm")
    assert warm["pid"] == before["pid"]
    # A new environment comes from a new template.
    held, answer = held_invoke(server, "crash", "held")
    fresh = ok_body(server.invoke("crash", {"token": "fresh"}), "fresh")
    release(held, answer, "held")
    assert fresh["init_pid"] != before["init_pid"]
    assert fresh["pid"] != before["pid"]


def test_an_invoke_waiting_on_a_template_that_crashes_never_hangs(server: RapidServer, gate: Gate) -> None:
    first, pid = gate.arrival()  # the server started the template: its init is at the gate
    answer: dict[str, httpx.Response] = {}
    caller = threading.Thread(target=lambda: answer.setdefault("r", server.invoke("gated", {"token": "w"})))
    caller.start()
    os.kill(pid, signal.SIGKILL)
    first.close()
    # The invoke either waited on the crashed template (an init error) or came after it and asked for a
    # new one: every later template is let through the gate, until the test says stop (pid 0).
    opened: list[socket.socket] = []

    def open_gate() -> None:
        while True:
            connection, pid = gate.arrival()
            if pid == 0:
                connection.close()
                return
            connection.sendall(b"g")
            opened.append(connection)

    opener = threading.Thread(target=open_gate, daemon=True)
    opener.start()
    caller.join(30)
    assert not caller.is_alive(), "the invoke hung on a crashed template"
    response = answer["r"]
    if response.headers.get("X-Amz-Function-Error"):
        error = response.json()
        assert error["errorType"] == "Runtime.ExitError", error
        assert "SnapStart template exited" in error["errorMessage"], error
    else:
        ok_body(response, "w")
    ok_body(server.invoke("gated", {"token": "next"}), "next")  # from a template of its own
    with socket.create_connection(("127.0.0.1", gate.port)) as stop:
        stop.sendall(b"0\n")
        opener.join(EXIT_TIMEOUT_S)
    for connection in opened:
        connection.close()


# --- Configuration --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ('runtime = "provided"', "a provided runtime"),
        ('command = ["python3", "-m", "awslambdaric"]', "python3"),
    ],
)
def test_snap_start_with_another_runtime_is_refused_at_load(tmp_path: Path, setting: str, named: str) -> None:
    (tmp_path / "code").mkdir()
    config = tmp_path / "rapidboot.toml"
    config.write_text(
        f'[functions.f]\ncode = "code"\nhandler = "app.handler"\nsnap_start = true\n{setting}\n'
    )
    server = RapidServer(["--config", str(config), "--state-dir", str(tmp_path / "state")], tmp_path)
    with pytest.raises(AssertionError, match="snap_start needs rapidboot's Python runtime"):
        server.start()
    assert named in server.output_tail()


# --- A code change -----------------------------------------------------------------------------------------


def test_a_code_change_rebuilds_the_template(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    app = "import os\nINIT_PID = os.getpid()\n\ndef handler(event, context):\n    return [{!r}, INIT_PID]\n"
    (code / "app.py").write_text(app.format("v1"))
    args = [
        "--code", str(code), "--handler", "app.handler", "--snap-start", "--watch",
        "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    with running_server(args, cwd=tmp_path) as server:
        version, old_template = server.invoke("function", {}).json()
        assert version == "v1"
        seen = len(server.stderr.lines)
        (code / "app.py").write_text(app.format("v2"))
        assert server.stderr.wait_for(lambda line: "rapidboot: reloaded function" in line, after=seen)
        version, new_template = server.invoke("function", {}).json()
        assert version == "v2"
        assert new_template != old_template
