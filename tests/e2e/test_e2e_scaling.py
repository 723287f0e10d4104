"""Execution environments at scale (issue 4): a pool per function, most-recently-used reuse, throttling
past reserved and account concurrency, provisioned concurrency and idle reaping.

Functions run our bootstrap with tests/e2e/functions/scaling/chaos.py, or the misbehaving fake runtime where
a test must decide exactly when an invoke ends (its `hold` action, released through a FIFO).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    HTTP_TIMEOUT_S,
    SCALING_CODE,
    RapidServer,
    chaos,
    hold_invoke,
    invoke_all_at_once,
    is_alive,
    lambda_client,
    misbehaving_command,
    ok_body,
    running_server,
    server_environment,
    wait_process_gone,
    wait_until,
    write_tables,
)

pytestmark = pytest.mark.e2e

THROTTLE_BODY = {"Type": "User", "message": "Rate Exceeded."}
RESERVED_REASON = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_REASON = "ConcurrentInvocationLimitExceeded"


def fake(**keys: Any) -> dict[str, Any]:
    return {
        "code": SCALING_CODE,
        "handler": "unused.handler",
        "timeout": 10,
        "command": misbehaving_command(),
        **keys,
    }


def assert_throttled(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 429, (response.status_code, response.text)
    assert response.headers.get("x-amzn-ErrorType") == "TooManyRequestsException", dict(response.headers)
    assert response.headers.get("Retry-After") == "1", dict(response.headers)
    assert "X-Amz-Function-Error" not in response.headers
    assert response.json() == {**THROTTLE_BODY, "Reason": reason}


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.decode().split("=", 1) for entry in raw.split(b"\0") if b"=" in entry)


@pytest.fixture(scope="module")
def pool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("scaling")
    tables = {
        "scale-out": chaos(handler="gated.handler"),
        "mru": fake(),
        "reaped": chaos(idle_timeout=1),
        "provisioned": chaos(provisioned_concurrency=2),
        "provisioned-first": fake(provisioned_concurrency=1, idle_timeout=1),
        "provisioned-refill": chaos(provisioned_concurrency=1, idle_timeout=1),
    }
    with running_server(["--config", str(write_tables(root / "rapidboot.toml", tables))], root) as server:
        yield server


# --- the pool ---------------------------------------------------------------------------------------


def test_sixteen_simultaneous_first_invokes_start_sixteen_environments(pool_server: RapidServer) -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=16) as gate, ThreadPoolExecutor(1) as pool:
        gate.settimeout(HTTP_TIMEOUT_S)
        events = [{"token": f"t{i}", "gate": gate.getsockname()[1]} for i in range(16)]
        pending = pool.submit(invoke_all_at_once, pool_server, "scale-out", events)
        inside: list[socket.socket] = []
        try:
            # All sixteen handlers are at the gate at once: they cannot share an environment.
            while len(inside) < 16:
                inside.append(gate.accept()[0])
        except TimeoutError:
            raise AssertionError(f"only {len(inside)} of 16 invokes ran at once") from None
        finally:
            for connection in inside:
                connection.close()
        responses = pending.result()
    bodies = [ok_body(response, f"t{i}") for i, response in enumerate(responses)]
    assert len({body["pid"] for body in bodies}) == 16, "each simultaneous invoke needs its own environment"
    assert all(body["count"] == 1 for body in bodies)
    assert len({body["tmpdir"] for body in bodies}) == 16, "each environment has its own TMPDIR"
    for body in bodies:
        assert pool_server.report(body["request_id"]).init_duration_ms is not None
    live = {process.pid for process in pool_server.runtime_processes("scale-out")}
    assert live == {body["pid"] for body in bodies}, "all 16 stay warm in the pool"


def test_sequential_invokes_take_the_most_recently_used_environment(
    pool_server: RapidServer, tmp_path: Path
) -> None:
    held = [hold_invoke(pool_server, "mru", f"mru-{i}", tmp_path) for i in range(3)]
    assert len({invoke.pid for invoke in held}) == 3
    # Released in the order 0, 2, 1: environment 1 is the most recently used.
    for index in (0, 2, 1):
        ok_body(held[index].release(), f"mru-{index}")
    for round_ in range(3):
        body = ok_body(pool_server.invoke("mru", {"token": f"seq-{round_}"}), f"seq-{round_}")
        assert body["pid"] == held[1].pid, f"round {round_}: expected the MRU environment"


# --- throttling ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def throttle_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("throttle")
    tables = {
        "capped": fake(reserved_concurrency=2),
        "zero": chaos(reserved_concurrency=0),
        "guaranteed": fake(reserved_concurrency=2),
        "flooded": fake(),
        "neighbour": fake(),
    }
    config = write_tables(root / "rapidboot.toml", tables)
    # 6 in all: 4 reserved (capped 2, guaranteed 2), 2 shared by flooded and neighbour.
    with running_server(["--config", str(config), "--max-concurrency", "6"], root) as server:
        yield server


def test_reserved_concurrency_throttles_past_its_limit(throttle_server: RapidServer, tmp_path: Path) -> None:
    held = [hold_invoke(throttle_server, "capped", f"cap-{i}", tmp_path) for i in range(2)]
    assert_throttled(throttle_server.invoke("capped", {"token": "third"}), RESERVED_REASON)
    client = lambda_client(throttle_server.endpoint)
    with pytest.raises(client.exceptions.TooManyRequestsException) as raised:
        client.invoke(FunctionName="capped", Payload=b'{"token": "boto3"}')
    error = raised.value.response
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["Reason"] == RESERVED_REASON
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert len(throttle_server.runtime_processes("capped")) == 2, "a throttled invoke starts nothing"

    for index, invoke in enumerate(held):
        ok_body(invoke.release(), f"cap-{index}")
    ok_body(throttle_server.invoke("capped", {"token": "after"}), "after")


def test_reserved_zero_throttles_every_invoke(throttle_server: RapidServer) -> None:
    for _ in range(2):
        assert_throttled(throttle_server.invoke("zero", {"token": "never"}), RESERVED_REASON)
    assert throttle_server.runtime_processes("zero") == []
    assert throttle_server.lines_mentioning("[zero ") == []


def test_a_flood_does_not_starve_a_reserved_function(throttle_server: RapidServer, tmp_path: Path) -> None:
    """Unreserved functions share max-concurrency minus every reservation (6 - 4 = 2): a flood on one of
    them throttles it and its unreserved neighbour, never the function with reserved concurrency."""
    held = [hold_invoke(throttle_server, "flooded", f"flood-{i}", tmp_path) for i in range(2)]
    flood = invoke_all_at_once(throttle_server, "flooded", [{"token": f"extra-{i}"} for i in range(8)])
    for response in flood:
        assert_throttled(response, ACCOUNT_REASON)
    assert_throttled(throttle_server.invoke("neighbour", {"token": "n"}), ACCOUNT_REASON)

    guaranteed = invoke_all_at_once(throttle_server, "guaranteed", [{"token": f"g{i}"} for i in range(2)])
    for index, response in enumerate(guaranteed):
        ok_body(response, f"g{index}")

    for index, invoke in enumerate(held):
        ok_body(invoke.release(), f"flood-{index}")
    ok_body(throttle_server.invoke("neighbour", {"token": "n-after"}), "n-after")


def test_reservations_over_max_concurrency_are_refused_at_startup(tmp_path: Path) -> None:
    config = write_tables(
        tmp_path / "rapidboot.toml",
        {"big": chaos(reserved_concurrency=600), "bigger": chaos(reserved_concurrency=500), "free": chaos()},
    )
    result = subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "serve", "--port", "0", "--config", str(config)],
        cwd=tmp_path,
        env=server_environment(),
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2, result
    stderr = result.stderr.decode()
    assert "big=600" in stderr, stderr
    assert "bigger=500" in stderr, stderr
    assert "free" not in stderr, stderr
    assert "max-concurrency" in stderr and "1000" in stderr, stderr
    assert "listening on" not in stderr


# --- provisioned concurrency -------------------------------------------------------------------------


def test_provisioned_environments_are_initialised_before_the_first_invoke(pool_server: RapidServer) -> None:
    ready = pool_server.runtime_processes("provisioned")
    assert len(ready) == 2, "provisioned concurrency is started before the server says it is ready"
    for process in ready:
        assert environ_of(process.pid)["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"

    body = ok_body(pool_server.invoke("provisioned", {"token": "p1"}), "p1")
    assert body["pid"] in {process.pid for process in ready}
    assert body["initialization_type"] == "provisioned-concurrency"
    assert body["count"] == 1
    report = pool_server.report(body["request_id"])
    assert report.init_duration_ms is None, f"init happened before anyone invoked: {report}"
    assert report.status is None


def test_a_lost_provisioned_environment_is_replaced(pool_server: RapidServer) -> None:
    before = {process.pid: process for process in pool_server.runtime_processes("provisioned")}
    assert len(before) == 2
    response = pool_server.invoke("provisioned", {"action": "exit", "code": 4, "token": "crash"})
    assert response.json()["errorType"] == "Runtime.ExitError", response.text
    assert wait_until(lambda: sum(not is_alive(p) for p in before.values()) == 1, EXIT_TIMEOUT_S)

    def replaced() -> bool:
        now = pool_server.runtime_processes("provisioned")
        return len(now) == 2 and len({p.pid for p in now} - set(before)) == 1

    assert wait_until(replaced, EXIT_TIMEOUT_S), "the crashed provisioned environment was not replaced"
    fresh = next(p for p in pool_server.runtime_processes("provisioned") if p.pid not in before)
    assert environ_of(fresh.pid)["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    for round_ in range(2):
        body = ok_body(pool_server.invoke("provisioned", {"token": f"r{round_}"}), f"r{round_}")
        assert body["initialization_type"] == "provisioned-concurrency"
        assert pool_server.report(body["request_id"]).init_duration_ms is None


def test_a_provisioned_environment_killed_while_idle_is_replaced_without_an_invoke(
    pool_server: RapidServer,
) -> None:
    name = "provisioned-refill"
    (victim,) = pool_server.runtime_processes(name)
    os.kill(victim.pid, signal.SIGKILL)
    assert wait_process_gone(victim, EXIT_TIMEOUT_S)

    def refilled() -> bool:
        now = pool_server.runtime_processes(name)
        return len(now) == 1 and now[0].pid != victim.pid

    assert wait_until(refilled, EXIT_TIMEOUT_S), "the killed idle provisioned environment was not replaced"
    (fresh,) = pool_server.runtime_processes(name)
    # Initialised (its runtime asked for work): only then is it in the pool, else an invoke starts another.
    ready = f"rapidboot: {name}: provisioned environment (pid {fresh.pid}) ready, in place of pid "
    ready += str(victim.pid)
    pool_server.wait_for_line(lambda line: line == ready)
    assert environ_of(fresh.pid)["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    body = ok_body(pool_server.invoke(name, {"token": "after"}), "after")
    assert (body["pid"], body["initialization_type"]) == (fresh.pid, "provisioned-concurrency")
    assert pool_server.report(body["request_id"]).init_duration_ms is None


def test_provisioned_first_and_never_reaped(pool_server: RapidServer, tmp_path: Path) -> None:
    """With a provisioned and an on-demand environment idle, the provisioned one serves even when the
    on-demand one was used last; after idle_timeout only the on-demand one is stopped."""
    name = "provisioned-first"
    held = [hold_invoke(pool_server, name, f"pf-{i}", tmp_path) for i in range(2)]
    by_type = {}
    for invoke in held:
        by_type[environ_of(invoke.pid)["AWS_LAMBDA_INITIALIZATION_TYPE"]] = invoke
    assert set(by_type) == {"provisioned-concurrency", "on-demand"}
    provisioned, on_demand = by_type["provisioned-concurrency"], by_type["on-demand"]
    provisioned.release()
    on_demand.release()  # now the most recently used

    body = ok_body(pool_server.invoke(name, {"token": "next"}), "next")
    assert body["pid"] == provisioned.pid, "provisioned environments are used first"

    reaped = pool_server.wait_for_line(
        lambda line: line.startswith(f"rapidboot: {name}: environment (pid {on_demand.pid}) idle for ")
    )
    assert reaped.endswith(" s, stopped"), reaped
    assert wait_process_gone(pool_server.seen_process(on_demand.pid), EXIT_TIMEOUT_S)
    assert is_alive(pool_server.seen_process(provisioned.pid)), "a provisioned environment is never reaped"
    assert not pool_server.lines_mentioning(f"(pid {provisioned.pid}) idle for")


# --- idle reaping ------------------------------------------------------------------------------------


def test_idle_environment_is_reaped_and_the_next_invoke_is_cold(pool_server: RapidServer) -> None:
    first = ok_body(pool_server.invoke("reaped", {"token": "a"}), "a")
    pid = first["pid"]
    line = pool_server.wait_for_line(
        lambda line: (
            re.match(rf"^rapidboot: reaped: environment \(pid {pid}\) idle for \d+ s, stopped$", line)
            is not None
        )
    )
    assert line
    assert wait_process_gone(pool_server.seen_process(pid), EXIT_TIMEOUT_S)
    assert wait_until(lambda: not Path(first["tmpdir"]).exists(), EXIT_TIMEOUT_S), "TMPDIR outlived its env"

    second = ok_body(pool_server.invoke("reaped", {"token": "b"}), "b")
    assert second["pid"] != pid
    assert second["count"] == 1
    assert pool_server.report(second["request_id"]).init_duration_ms is not None
