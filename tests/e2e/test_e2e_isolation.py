"""One environment must not answer, read or disturb another's invoke (issue 12, section 1).

On Lambda nothing outside an environment's microVM reaches its Runtime API. Here every Runtime API listens
on the host's loopback, so the server admits a connection only from the environment's own processes (the
runtime and its descendants): a handler of another function, or any other local process, is cut off before
it can answer, steal or poll. And an environment takes an event only while its runtime waits on /next: one
still at work after its answer is not handed the next invoke, and any wait is in that invoke's Duration.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import (
    FUNCTIONS_DIR,
    LINE_TIMEOUT_S,
    RapidServer,
    hold_invoke,
    misbehaving_command,
    ok_body,
    request_id_of,
    running_server,
    wait_until,
    write_tables,
)

from rapidboot.rapid_server.data_plane.seats import NEXT_GRACE_S

pytestmark = pytest.mark.e2e

INTRUDER_CODE = str(FUNCTIONS_DIR / "isolation")
RUNTIME_BASE = "/2018-06-01/runtime"


def fake(timeout: int = 10) -> dict[str, object]:
    return {"code": ".", "handler": "unused.handler", "timeout": timeout, "command": misbehaving_command()}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("isolation")
    tables: dict[str, dict[str, object]] = {
        "victim": fake(),
        "probed": fake(),
        "polled": fake(timeout=3),
        "busy": fake(),
        "intruder": {"code": INTRUDER_CODE, "handler": "intruder.answer_for", "timeout": 10},
        "parent": {"code": INTRUDER_CODE, "handler": "intruder.child_uses_own_api", "timeout": 20},
        "escapee": {"code": INTRUDER_CODE, "handler": "intruder.escaped_child_uses_own_api", "timeout": 20},
    }
    with running_server(["--config", str(write_tables(root / "rapidboot.toml", tables))], root) as server:
        yield server


def invoke_ok(server: RapidServer, name: str, **event: object) -> dict[str, object]:
    token = uuid.uuid4().hex
    return ok_body(server.invoke(name, {"token": token, **event}), token)


def runtime_api_of(pid: int) -> tuple[str, int]:
    for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if entry.startswith(b"AWS_LAMBDA_RUNTIME_API="):
            host, port = entry.split(b"=", 1)[1].decode().rsplit(":", 1)
            return host, int(port)
    raise AssertionError(f"no AWS_LAMBDA_RUNTIME_API in the environment of pid {pid}")


def refusal_lines(server: RapidServer, function: str, runtime_pid: int, peer_pid: int) -> list[str]:
    return server.lines_mentioning(
        f"rapidboot: {function}: refused a Runtime API connection from pid {peer_pid}, not a process of "
        f"the environment (runtime pid {runtime_pid})"
    )


def raw_exchange(address: tuple[str, int], request: bytes) -> bytes:
    """Send `request` on a fresh connection and return what comes back before the server closes it."""
    reply = b""
    with socket.create_connection(address, timeout=LINE_TIMEOUT_S) as sock:
        try:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                reply += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
    return reply


def test_a_handler_cannot_answer_another_functions_invoke(server: RapidServer, tmp_path: Path) -> None:
    """The issue's reproduction: A's handler reads B's Runtime API address from /proc/<B pid>/environ and
    posts an answer for B's invoke in flight. It is cut off; B's caller gets B's own answer."""
    held = hold_invoke(server, "victim", "victim-token", tmp_path)
    attempt = server.invoke("intruder", {"pid": held.pid, "request_id": held.request_id}).json()
    assert attempt["reached"] is False, attempt
    answer = ok_body(held.release("its own answer"), "victim-token")
    assert answer["request_id"] == held.request_id
    assert answer["released_with"] == "its own answer"
    assert answer["pid"] == held.pid
    line = server.wait_for_line(lambda line: "rapidboot: victim: refused" in line)
    assert refusal_lines(server, "victim", held.pid, attempt["pid"]) == [line]


def test_a_local_process_cannot_use_a_runtime_api(server: RapidServer) -> None:
    """A raw socket from a process outside the environment (this test) is closed unread, and changes
    nothing: the environment serves the next invoke as before."""
    pid = invoke_ok(server, "probed")["pid"]
    assert isinstance(pid, int)
    request = f"GET {RUNTIME_BASE}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    assert raw_exchange(runtime_api_of(pid), request) == b""
    assert wait_until(lambda: bool(refusal_lines(server, "probed", pid, os.getpid())), LINE_TIMEOUT_S)
    assert len(refusal_lines(server, "probed", pid, os.getpid())) == 1
    assert invoke_ok(server, "probed")["pid"] == pid


def test_a_foreign_next_cannot_steal_an_event(server: RapidServer) -> None:
    """A /next parked by an outsider would take an event meant for the runtime; it is never parked."""
    pid = invoke_ok(server, "polled")["pid"]
    assert isinstance(pid, int)
    with socket.create_connection(runtime_api_of(pid), timeout=LINE_TIMEOUT_S) as thief:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            thief.sendall(f"GET {RUNTIME_BASE}/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        for _ in range(3):
            assert invoke_ok(server, "polled")["pid"] == pid
        try:
            stolen = thief.recv(65536)
        except ConnectionResetError:
            stolen = b""
    assert stolen == b""


def test_a_child_of_the_runtime_may_use_its_runtime_api(server: RapidServer) -> None:
    """The environment's own processes pass: a child of the handler gets an HTTP answer (400 for an
    unknown request id), not a closed connection."""
    response = server.invoke("parent", {})
    assert response.status_code == 200, response.text
    assert response.json()["child_status"] == "400", response.json()


def test_a_process_that_left_the_runtimes_tree_but_not_its_environment_may_use_its_runtime_api(
    server: RapidServer,
) -> None:
    """Membership is the environment's cgroup where it has one, not the process tree: an orphan of a double
    fork in a new session is still the environment's own (and ends with it), so it is let in."""
    response = server.invoke("escapee", {})
    assert response.status_code == 200, response.text
    assert response.json()["child_status"] == "400", response.json()


def test_a_runtime_busy_after_its_answer_is_not_handed_the_next_invoke(
    server: RapidServer, tmp_path: Path
) -> None:
    """The runtime answers, then stays in its handler. The next invoke goes to a new environment instead
    of waiting for that runtime's next /next, and its REPORT includes the time it waited."""
    fifo = tmp_path / "busy.fifo"
    os.mkfifo(fifo)
    first = invoke_ok(server, "busy", action="answer-then-hold", fifo=str(fifo))
    server.wait_for_line(lambda line: line.endswith(f"pid {first['pid']}") and "busy after" in line)
    token = uuid.uuid4().hex
    response = server.invoke("busy", {"token": token})
    second = ok_body(response, token)
    assert second["pid"] != first["pid"]
    report = server.report(request_id_of(response))
    # The wait is in it: at least the grace, less the event loop's timer granularity (uvloop's timers
    # are whole milliseconds, so one can fire a fraction of a millisecond before perf_counter says).
    assert report.duration_ms >= NEXT_GRACE_S * 1000 - 2
    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # the runtime holds the reading end
    try:
        os.write(writer, b"go\n")
    finally:
        os.close(writer)
    # Free again once it asks for work: the function serves on, from either environment.
    assert invoke_ok(server, "busy")["pid"] in (first["pid"], second["pid"])


def test_the_startup_line_names_the_runtime_api_check(server: RapidServer) -> None:
    assert any(
        re.search(r"Runtime API: only each environment's own processes", line) for line in server.stderr.lines
    ), server.output_tail()
