"""Nothing a function starts outlives its environment (issue 12, section 2).

A handler (functions/escape) starts `sleep 600` as a plain child, in a session of its own (setsid), or as
a grandchild whose parent has exited (double fork, reparented away from the runtime), and says which pids
it started. However the environment ends (timeout, crash, out of memory, idle reaping, the server's
SIGTERM, the server's SIGKILL, and a dead server's leftovers found by the next server on its state dir),
the runtime and everything it started must be gone, checked process by process (pid and start time).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    FUNCTIONS_DIR,
    HTTP_TIMEOUT_S,
    ProcessInfo,
    RapidServer,
    is_alive,
    is_supervisor,
    process_info,
    request_id_of,
    running_server,
    supervised,
    wait_process_gone,
    write_tables,
)

pytestmark = pytest.mark.e2e

ESCAPE_CODE = str(FUNCTIONS_DIR / "escape")
ESCAPED = re.compile(r"^\[(?P<name>\S+) (?P<request_id>\S+)\] escaped (?P<runtime>\d+) (?P<started>\d+)$")
SUPERVISOR_DIED_LINE = re.compile(
    r"rapidboot: supervisor: the server \(pid (\d+)\) died; (\d+) processes ended"
)
CGROUP_FS = Path("/sys/fs/cgroup")


def escape(**keys: Any) -> dict[str, Any]:
    return {"code": ESCAPE_CODE, "handler": "escape.handler", "timeout": 10, **keys}


@pytest.fixture(scope="module")
def endings_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("containment")
    tables = {
        "timeout": escape(timeout=1),
        "crash": escape(),
        "out-of-memory": escape(memory=128),
        "idle": escape(idle_timeout=1),
    }
    config = write_tables(root / "rapidboot.toml", tables)
    with running_server(["--config", str(config), "--state-dir", str(root / "state")], root) as server:
        yield server


class Escaping:
    """An invoke of the escape handler, run on a thread; `processes` are the runtime and what it started,
    as they were when it said so (a pid already gone then is left out: nothing of it can survive)."""

    def __init__(self, server: RapidServer, name: str, event: dict[str, Any]) -> None:
        self._result: list[httpx.Response | BaseException] = []
        url = server.endpoint + server.invoke_path(name)
        mark = len(server.stdout.lines)
        self._thread = threading.Thread(target=self._call, args=(url, event), daemon=True)
        self._thread.start()
        line = server.wait_for_line(
            lambda line: (match := ESCAPED.match(line)) is not None and match["name"] == name, after=mark
        )
        match = ESCAPED.match(line)
        assert match is not None
        self.request_id = match["request_id"]
        found = (process_info(int(match["runtime"])), process_info(int(match["started"])))
        self.processes = [process for process in found if process is not None]

    def _call(self, url: str, event: dict[str, Any]) -> None:
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
                self._result.append(client.post(url, json=event))
        except BaseException as error:
            self._result.append(error)

    def response(self) -> httpx.Response:
        self._thread.join(HTTP_TIMEOUT_S)
        assert self._result, "the invoke got no answer"
        outcome = self._result[0]
        assert isinstance(outcome, httpx.Response), f"the invoke failed: {outcome!r}"
        return outcome


def assert_all_gone(processes: list[ProcessInfo], server: RapidServer) -> None:
    survivors = [process for process in processes if not wait_process_gone(process, EXIT_TIMEOUT_S)]
    if survivors:
        for process in survivors:  # do not leak them into the rest of the run
            kill(process)
        raise AssertionError(
            "processes outlived their environment:\n"
            + "\n".join(f"  pid {p.pid}: {p.cmdline}" for p in survivors)
            + f"\n{server.output_tail()}"
        )


def kill(process: ProcessInfo) -> None:
    with contextlib.suppress(ProcessLookupError):
        if is_alive(process):
            os.kill(process.pid, signal.SIGKILL)


def assert_exit_error(response: httpx.Response, request_id: str, reason: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled"
    assert response.json() == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
    }


# --- the environment ends; the server lives on ---------------------------------------------------------


@pytest.mark.parametrize("spawn", ["setsid", "double-fork"])
def test_a_timeout_ends_what_the_handler_started(endings_server: RapidServer, spawn: str) -> None:
    invoke = Escaping(endings_server, "timeout", {"spawn": spawn, "then": "hang"})
    assert len(invoke.processes) == 2, "the runtime and its escapee run until the timeout"
    response = invoke.response()
    assert response.status_code == 200
    assert response.json() == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {invoke.request_id} Error: Task timed out after 1.00 seconds",
    }
    assert_all_gone(invoke.processes, endings_server)


def test_a_crash_ends_what_the_runtime_started(endings_server: RapidServer) -> None:
    invoke = Escaping(endings_server, "crash", {"spawn": "setsid", "then": "exit"})
    assert_exit_error(invoke.response(), invoke.request_id, "exit status 3")
    assert_all_gone(invoke.processes, endings_server)


def test_running_out_of_memory_ends_what_the_runtime_started(endings_server: RapidServer) -> None:
    invoke = Escaping(endings_server, "out-of-memory", {"spawn": "double-fork", "then": "allocate"})
    assert_exit_error(invoke.response(), invoke.request_id, "signal: killed")
    assert_all_gone(invoke.processes, endings_server)


def test_idle_reaping_ends_what_the_runtime_started(endings_server: RapidServer) -> None:
    invoke = Escaping(endings_server, "idle", {"spawn": "setsid", "then": "return"})
    response = invoke.response()
    assert response.status_code == 200, response.text
    runtime = response.json()["runtime"]
    endings_server.wait_for_line(lambda line: f"idle: environment (pid {runtime}) idle for" in line)
    assert_all_gone(invoke.processes, endings_server)


# --- the server ends ------------------------------------------------------------------------------------


def escape_server(tmp_path: Path, state_dir: Path) -> RapidServer:
    config = write_tables(tmp_path / "rapidboot.toml", {"escape": escape(timeout=60)})
    return RapidServer(["--config", str(config), "--state-dir", str(state_dir)], tmp_path)


def test_the_servers_sigterm_ends_every_environment(tmp_path: Path) -> None:
    with supervised(escape_server(tmp_path, tmp_path / "state"), check_shutdown=False) as server:
        invoke = Escaping(server, "escape", {"spawn": "double-fork", "then": "return"})
        assert invoke.response().status_code == 200
        assert server.stop(signal.SIGTERM) == 0, server.output_tail()
        assert_all_gone(invoke.processes, server)
        server.assert_no_survivors()


def supervisor_of(server: RapidServer) -> ProcessInfo:
    [supervisor] = [p for p in server.record_processes() if is_supervisor(p)]
    return supervisor


def test_the_servers_sigkill_ends_its_runtimes_and_all_they_started(tmp_path: Path) -> None:
    """Even the runtime in the middle of an invoke, and a plain child of it."""
    with supervised(escape_server(tmp_path, tmp_path / "state"), check_shutdown=False) as server:
        assert server.process is not None
        busy = Escaping(server, "escape", {"spawn": "plain", "then": "hang"})
        idle = Escaping(server, "escape", {"spawn": "setsid", "then": "return"})
        assert idle.response().status_code == 200
        supervisor = supervisor_of(server)
        server.process.kill()
        line = server.stderr.wait_for(lambda line: SUPERVISOR_DIED_LINE.search(line) is not None)
        assert line is not None, server.output_tail()
        match = SUPERVISOR_DIED_LINE.search(line)
        assert match is not None and int(match[1]) == server.process.pid
        assert_all_gone([*busy.processes, *idle.processes, supervisor], server)


def leftover_cgroups(pid: int) -> list[Path]:
    return [path for path in CGROUP_FS.glob(f"*/rapidboot-{pid}") if path.exists()]


def test_the_next_server_on_the_state_dir_ends_what_a_dead_one_left(tmp_path: Path) -> None:
    """The server and its supervisor both SIGKILLed: the next server on the same --state-dir ends the
    environment they left (processes, cgroups, scratch directory) and says so."""
    state = tmp_path / "state"
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with supervised(escape_server(tmp_path / "first", state), check_shutdown=False) as dead:
        assert dead.process is not None
        invoke = Escaping(dead, "escape", {"spawn": "setsid", "then": "return"})
        assert invoke.response().status_code == 200
        supervisor = supervisor_of(dead)
        kill(supervisor)
        assert wait_process_gone(supervisor, EXIT_TIMEOUT_S)
        dead.process.kill()
        dead.process.wait(EXIT_TIMEOUT_S)
        left = [process for process in invoke.processes if is_alive(process)]
        assert left, "with no supervisor, what the environment started outlives its server until the next"
        scratch = [p for p in Path("/tmp").glob(f"rapidboot-{dead.process.pid}-*")]
        assert scratch, "the dead server's scratch directory is there to be removed"

        with running_server(
            ["--config", str(tmp_path / "first" / "rapidboot.toml"), "--state-dir", str(state)],
            tmp_path / "second",
        ) as successor:
            line = successor.stderr.wait_for(lambda line: f"server pid {dead.process.pid} ended" in line, 0)
            assert line is not None, successor.output_tail()
            # The runtime may have exited by itself when its Runtime API went; the escapee cannot have.
            # The scratch directory is named in the line unless another server on this machine (any
            # server's start removes the scratch roots of dead servers: limits._remove_stale_scratch)
            # removed it first: the tests of other projects' checkouts run beside ours.
            expected = (
                rf"--state-dir {re.escape(str(state))}: server pid {dead.process.pid} ended without "
                rf"cleaning up: [12] processes ended, \d+ cgroups removed"
                rf"(, scratch directory {re.escape(str(scratch[0]))} removed|$)"
            )
            assert re.search(expected, line), line
            assert_all_gone(left, successor)
            assert not any(path.exists() for path in scratch)
            assert leftover_cgroups(dead.process.pid) == []
            assert successor.invoke("escape", {"spawn": "plain"}).status_code == 200


def test_a_live_server_on_the_same_state_dir_is_left_alone(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with supervised(escape_server(tmp_path, state)) as first:
        invoke = Escaping(first, "escape", {"spawn": "setsid", "then": "return"})
        assert invoke.response().status_code == 200
        with running_server(
            ["--config", str(tmp_path / "rapidboot.toml"), "--state-dir", str(state)], tmp_path
        ) as second:
            assert not any("ended without cleaning up" in line for line in second.stderr.lines)
            assert all(is_alive(process) for process in invoke.processes)
        again = first.invoke("escape", {"spawn": "plain"})
        assert again.status_code == 200 and again.json()["runtime"] == invoke.processes[0].pid
        assert request_id_of(again)
