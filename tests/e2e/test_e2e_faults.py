"""Faults that must not lose or mix up anything (issue 4): runtimes that die, lie or babble, invokers that
leave, a server told to stop mid-invoke. Runtimes are tests/e2e/fake_runtimes/misbehaving.py, steered per
invoke by the event's `action`; every answer echoes the caller's token and request id, so a response that
reached the wrong invoker fails the test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    HTTP_TIMEOUT_S,
    SHUTTING_DOWN_PAST_GRACE,
    RapidServer,
    hold_invoke,
    misbehaving_command,
    ok_body,
    request_id_of,
    running_server,
    wait_process_gone,
    wait_until,
    write_tables,
)

pytestmark = pytest.mark.e2e

# One function per test, so environment state (pids, reuse) is the test's own.
FAKE_FUNCTIONS = (
    "killed-on-next",
    "killed-mid-invoke",
    "dies-writing",
    "double-response",
    "foreign-id",
    "unknown-id",
    "garbage",
    "disconnect",
)


def fake_table(mode: str = "serve", timeout: int = 10) -> dict[str, object]:
    return {
        "code": ".",
        "handler": "unused.handler",
        "timeout": timeout,
        "command": misbehaving_command(mode),
    }


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("faults")
    tables = {name: fake_table() for name in FAKE_FUNCTIONS}
    tables["garbage-then-exit"] = fake_table("garbage-then-exit")
    tables["never-next"] = fake_table("never-next", timeout=3)
    with running_server(["--config", str(write_tables(root / "rapidboot.toml", tables))], root) as server:
        yield server


def invoke_ok(server: RapidServer, name: str, event: dict[str, object]) -> dict[str, object]:
    return ok_body(server.invoke(name, event), str(event["token"]))


def assert_exit_error(response: httpx.Response, reason: str) -> str:
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled", dict(response.headers)
    request_id = request_id_of(response)
    assert response.json() == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {reason}",
    }
    return request_id


def process_state(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return raw[raw.rindex(")") + 2 :].split()[0]


# --- runtimes that die ------------------------------------------------------------------------------


KILL_ROUNDS = 30


def test_runtime_killed_while_blocked_on_next(fault_server: RapidServer) -> None:
    """The next invoke still works, on a fresh environment. A race in the server decides whether an invoke
    right after the kill finds the environment gone, so the cycle is repeated (bounded) until it shows."""
    name = "killed-on-next"
    previous = invoke_ok(fault_server, name, {"token": "first"})
    for round_ in range(KILL_ROUNDS):
        pid = int(previous["pid"])
        runtime = fault_server.seen_process(pid)
        # It says so just before it polls again; then it sleeps in the kernel, in its /next read.
        fault_server.wait_for_line(
            lambda line, rid=previous["request_id"], pid=pid: line.startswith(f"[{name} {rid}] polling {pid}")
        )
        assert wait_until(lambda pid=pid: process_state(pid) == "S", 5.0), (
            "the runtime never blocked on /next"
        )

        os.kill(pid, signal.SIGKILL)
        if round_ % 2:
            assert wait_process_gone(runtime, EXIT_TIMEOUT_S)
        current = invoke_ok(fault_server, name, {"token": f"after-kill-{round_}"})
        assert current["pid"] != pid, "an environment whose runtime died must not serve again"
        report = fault_server.report(str(current["request_id"]))
        assert report.status is None, report
        assert report.init_duration_ms is not None, "the next invoke must be a cold start"
        previous = current


def test_runtime_killed_mid_invoke(fault_server: RapidServer) -> None:
    name = "killed-mid-invoke"
    warm = invoke_ok(fault_server, name, {"token": "warm"})
    pid = int(warm["pid"])
    mark = len(fault_server.stdout.lines)
    outcome: list[httpx.Response] = []
    caller = threading.Thread(
        target=lambda: outcome.append(fault_server.invoke(name, {"action": "sleep", "seconds": 30})),
        daemon=True,
    )
    caller.start()
    start = fault_server.wait_for_line(lambda line: line.startswith("START RequestId: "), after=mark)
    # START is logged as the event is written; killed before it has read the event, the runtime never
    # had the invoke, which then runs elsewhere (correctly). Mid-invoke is once it says it has it.
    fault_server.wait_for_line(lambda line: "] sleeping " in line, after=mark)

    os.kill(pid, signal.SIGKILL)
    caller.join(HTTP_TIMEOUT_S)
    assert outcome, "the invoker of a killed runtime got no response"
    request_id = assert_exit_error(outcome[0], "signal: killed")
    assert start == f"START RequestId: {request_id} Version: $LATEST"
    report = fault_server.report(request_id)
    assert (report.status, report.error_type) == ("error", "Runtime.ExitError"), report

    after = invoke_ok(fault_server, name, {"token": "after"})
    assert after["pid"] != pid


def test_runtime_dies_while_writing_its_response(fault_server: RapidServer) -> None:
    """Headers promise 1000 bytes, 100 arrive, the process exits: nothing of the half response leaks."""
    name = "dies-writing"
    response = fault_server.invoke(name, {"action": "partial", "code": 1, "token": "cut"})
    request_id = assert_exit_error(response, "exit status 1")
    assert b"PARTIAL" not in response.content
    report = fault_server.report(request_id)
    assert (report.status, report.error_type) == ("error", "Runtime.ExitError"), report
    invoke_ok(fault_server, name, {"token": "next"})


def test_runtime_that_never_calls_next(fault_server: RapidServer) -> None:
    """Init is bounded at 10 s (Lambda's init timeout): the invoker is answered, the process stopped."""
    outcome: list[httpx.Response] = []
    caller = threading.Thread(
        target=lambda: outcome.append(fault_server.invoke("never-next", {"token": "waiting"})), daemon=True
    )
    caller.start()
    assert wait_until(lambda: bool(fault_server.runtime_processes("never-next")), 5.0)
    caller.join(HTTP_TIMEOUT_S)
    assert outcome, "the invoker got no answer"
    response = outcome[0]
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled"
    body = response.json()
    request_id = request_id_of(response)
    assert body["errorType"] == "Sandbox.Timedout", body
    assert body["errorMessage"].startswith(f"RequestId: {request_id} Error: Task timed out after "), body
    fault_server.wait_for_line(
        lambda line: line.startswith("INIT_REPORT Init Duration: ") and "\tStatus: timeout" in line
    )
    assert fault_server.report(request_id).status == "timeout"
    stuck = [p for p in fault_server.seen_processes.values() if p.function_name == "never-next"]
    assert all(wait_process_gone(process, EXIT_TIMEOUT_S) for process in stuck)


# --- runtimes that lie ------------------------------------------------------------------------------


def test_second_response_is_refused_and_the_first_one_delivered(fault_server: RapidServer) -> None:
    name = "double-response"
    first = invoke_ok(fault_server, name, {"action": "double", "token": "twice"})
    assert "second" not in first, "the invoker must get the first response, not the second"
    line = fault_server.wait_for_line(lambda line: line.startswith(f"[{name} {first['request_id']}] first "))
    assert line.endswith(
        'first response: 202; second response: 400 {"errorMessage":"Invalid request ID",'
        '"errorType":"InvalidRequestID"}'
    ), line
    # The environment stays healthy and is reused.
    again = invoke_ok(fault_server, name, {"token": "after-double"})
    assert again["pid"] == first["pid"]


def test_response_for_another_environments_request_id(fault_server: RapidServer, tmp_path: Path) -> None:
    """Environment B posts a response under the id of A's invoke in flight: B's Runtime API does not know
    that id (400), and A's invoker still gets A's own response."""
    name = "foreign-id"
    held = hold_invoke(fault_server, name, "victim", tmp_path)
    intruder = invoke_ok(
        fault_server, name, {"action": "foreign", "foreign_id": held.request_id, "token": "b"}
    )
    assert intruder["pid"] != held.pid, "A was busy: B must be another environment"
    assert intruder["foreign"] == {
        "status": 400,
        "body": {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"},
    }

    victim = held.release()
    assert victim.status_code == 200, victim.text
    assert "X-Amz-Function-Error" not in victim.headers
    assert request_id_of(victim) == held.request_id
    assert victim.json() == {
        "token": "victim",
        "request_id": held.request_id,
        "pid": held.pid,
        "initialization_type": "on-demand",
        "released_with": "released",
    }


def test_response_for_an_unknown_request_id(fault_server: RapidServer) -> None:
    name = "unknown-id"
    body = invoke_ok(fault_server, name, {"action": "foreign", "token": "own"})
    assert body["foreign"] == {
        "status": 400,
        "body": {"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"},
    }
    assert invoke_ok(fault_server, name, {"token": "still-warm"})["pid"] == body["pid"]


def test_garbage_on_the_runtime_api_socket(fault_server: RapidServer, tmp_path: Path) -> None:
    """Bytes that are not HTTP get a 400 and a closed connection; the runtime's own connection, the other
    environments and the server carry on."""
    name = "garbage"
    bystander = hold_invoke(fault_server, name, "bystander", tmp_path)
    body = invoke_ok(fault_server, name, {"action": "garbage", "token": "babble"})
    reply = str(body["garbage_reply"])
    assert reply.startswith("HTTP/1.1 400 "), reply
    assert "Connection: close" in reply, reply
    assert body["pid"] != bystander.pid

    released = bystander.release()
    assert released.json()["token"] == "bystander"
    assert request_id_of(released) == bystander.request_id
    assert invoke_ok(fault_server, name, {"token": "after"})["pid"] in (body["pid"], bystander.pid)


def test_garbage_then_exit_before_init_fails_cleanly(fault_server: RapidServer) -> None:
    response = fault_server.invoke("garbage-then-exit", {"token": "x"})
    request_id = assert_exit_error(response, "exit status 5")
    line = fault_server.wait_for_line(
        lambda line: line.startswith("[garbage-then-exit init] garbage reply: ")
    )
    assert "HTTP/1.1 400 " in line, line
    fault_server.wait_for_line(
        lambda line: line.startswith("INIT_REPORT ") and "Error Type: Runtime.ExitError" in line
    )
    assert fault_server.report(request_id).status == "error"


# --- invokers that leave ----------------------------------------------------------------------------


def test_invoker_that_disconnects_mid_invoke(fault_server: RapidServer) -> None:
    """The environment finishes the invoke (REPORT without a status) and serves the next one."""
    name = "disconnect"
    warm = invoke_ok(fault_server, name, {"token": "warm"})
    mark = len(fault_server.stdout.lines)
    event = json.dumps({"action": "sleep", "seconds": 0.5, "token": "gone"}).encode()
    with socket.create_connection((fault_server.host, fault_server.port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(
            f"POST {fault_server.invoke_path(name)} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(event)}\r\n\r\n".encode()
            + event
        )
        start = fault_server.wait_for_line(lambda line: line.startswith("START RequestId: "), after=mark)
    request_id = re.match(r"START RequestId: (\S+) ", start)[1]  # type: ignore[index]
    report = fault_server.report(request_id)
    assert report.status is None, f"the abandoned invoke must run to its end: {report}"

    after = invoke_ok(fault_server, name, {"token": "next"})
    assert after["pid"] == warm["pid"], "the environment must be reused after its invoker left"


# --- the server told to stop mid-invoke --------------------------------------------------------------


def test_sigterm_with_invokes_in_flight(tmp_path: Path) -> None:
    """Every invoker in flight gets its own clear error; the server exits 0 and leaves no process behind."""
    config = write_tables(tmp_path / "rapidboot.toml", {"busy": fake_table(timeout=60)})
    with running_server(["--config", str(config)], tmp_path, check_shutdown=False) as server:
        idle = invoke_ok(server, "busy", {"token": "idle-one"})
        outcomes: dict[str, httpx.Response | BaseException] = {}

        def call(token: str) -> None:
            try:
                with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
                    event = json.dumps({"action": "sleep", "seconds": 60, "token": token})
                    outcomes[token] = client.post(server.endpoint + server.invoke_path("busy"), content=event)
            except BaseException as error:
                outcomes[token] = error

        tokens = [f"in-flight-{i}" for i in range(3)]
        callers = [threading.Thread(target=call, args=(token,), daemon=True) for token in tokens]
        mark = len(server.stdout.lines)
        for caller in callers:
            caller.start()
        starts: list[str] = []
        for _ in tokens:
            starts.append(
                server.wait_for_line(
                    lambda line: line.startswith("START RequestId: ") and line not in starts, after=mark
                )
            )
        assert len(server.runtime_processes("busy")) == 3, "3 sleeping environments (the idle one serves one)"
        assert any(p.pid == idle["pid"] for p in server.runtime_processes("busy"))

        code = server.stop(signal.SIGTERM)
        assert code == 0, f"exit code {code}\n{server.output_tail()}"
        server.assert_no_survivors()
        for caller in callers:
            caller.join(HTTP_TIMEOUT_S)
        started_ids = {line.split()[2] for line in starts}
        for token in tokens:
            response = outcomes.get(token)
            assert isinstance(response, httpx.Response), f"{token}: no response, got {response!r}"
            # Past the grace period, the server's own error, never the runtime's exit (issue 12).
            assert response.status_code == 503, response.text
            assert response.headers.get("x-amzn-ErrorType") == "ServiceException"
            assert "X-Amz-Function-Error" not in response.headers
            assert request_id_of(response) in started_ids
            assert response.json() == {"Type": "Service", "message": SHUTTING_DOWN_PAST_GRACE}
