"""Limits, enforced and reported (issue 4): memory (memory cgroup or peak-RSS watching, both tested) and each
environment's own /tmp (TMPDIR), limited by `ephemeral_storage`.

Functions run our bootstrap with tests/e2e/functions/scaling/chaos.py.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    SCALING_CODE,
    RapidServer,
    ServerStartError,
    chaos,
    invoke_all_at_once,
    ok_body,
    request_id_of,
    running_server,
    wait_process_gone,
    wait_until,
    write_tables,
)

pytestmark = pytest.mark.e2e

ENFORCEMENT_LINES = {"cgroup": "memory limits: memory cgroup (", "rss": "memory limits: peak-RSS watching"}


# --- memory -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["cgroup", "rss"])
def memory_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RapidServer]:
    mode = str(request.param)
    root = tmp_path_factory.mktemp(f"memory-{mode}")
    config = write_tables(
        root / "rapidboot.toml", {"oom": chaos(handler="gated.handler"), "measured": chaos()}
    )
    server = RapidServer(["--config", str(config), "--memory-enforcement", mode], root)
    try:
        server.start()
    except ServerStartError as error:
        if mode == "cgroup" and "no memory cgroup can be created" in str(error):
            pytest.skip(f"this machine cannot create memory cgroups: {error}")
        raise
    try:
        assert server.stderr.wait_for(lambda line: ENFORCEMENT_LINES[mode] in line, 0.0), (
            f"startup log does not say {ENFORCEMENT_LINES[mode]!r}:\n{server.output_tail()}"
        )
        yield server
    except BaseException:
        server._kill_group()
        raise
    server.shutdown_and_check()


def test_exceeding_memory_kills_the_environment(memory_server: RapidServer) -> None:
    warm = ok_body(memory_server.invoke("oom", {"token": "warm"}), "warm")
    # 300 MB, every page written and kept, then held at a gate the test never opens: only the memory limit
    # ends it (a watcher sampling every 100 ms must see it; a limit not enforced ends in the 10 s timeout).
    with socket.create_server(("127.0.0.1", 0)) as gate:
        event = {"action": "allocate", "megabytes": 300, "keep": True, "gate": gate.getsockname()[1]}
        response = memory_server.invoke("oom", event)
    request_id = request_id_of(response)
    assert response.status_code == 200, response.text
    assert response.headers.get("X-Amz-Function-Error") == "Unhandled"
    assert response.json() == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }
    report = memory_server.report(request_id)
    assert (report.status, report.error_type) == ("error", "Runtime.OutOfMemory"), report
    assert report.max_memory_used_mb == report.memory_size_mb == 128, report
    assert wait_process_gone(memory_server.seen_process(warm["pid"]), EXIT_TIMEOUT_S)

    after = ok_body(memory_server.invoke("oom", {"token": "after"}), "after")
    assert after["pid"] != warm["pid"]
    assert after["count"] == 1
    assert memory_server.report(after["request_id"]).init_duration_ms is not None


def test_max_memory_used_follows_a_60_mb_allocation(memory_server: RapidServer) -> None:
    baseline_body = ok_body(memory_server.invoke("measured", {"token": "base"}), "base")
    baseline = memory_server.report(baseline_body["request_id"]).max_memory_used_mb
    event = {"action": "allocate", "megabytes": 60, "keep": True, "token": "grown"}
    grown_body = ok_body(memory_server.invoke("measured", event), "grown")
    assert grown_body["pid"] == baseline_body["pid"]
    grown = memory_server.report(grown_body["request_id"])
    assert grown.status is None, grown
    assert 0 < baseline < grown.max_memory_used_mb < 128, (baseline, grown)
    assert grown.max_memory_used_mb >= baseline + 55, (baseline, grown)


# --- /tmp ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tmp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("scratch")
    tables = {
        "scratch": chaos(),
        "overflow": chaos(ephemeral_storage=512, timeout=60),
        "roomy": chaos(ephemeral_storage=2048),
    }
    with running_server(["--config", str(write_tables(root / "rapidboot.toml", tables))], root) as server:
        yield server


def test_tmpdir_is_private_kept_while_warm_and_removed_with_the_environment(tmp_server: RapidServer) -> None:
    first = ok_body(tmp_server.invoke("scratch", {"token": "first"}), "first")
    tmpdir = Path(first["tmpdir"])
    assert tmpdir.is_dir()
    assert first["tmp_files"] == [], "a new environment starts with an empty /tmp"
    assert not tmpdir.is_relative_to(Path(SCALING_CODE))

    event = {"action": "write_tmp", "name": "kept.bin", "megabytes": 1, "token": "write"}
    written = ok_body(tmp_server.invoke("scratch", event), "write")
    assert written["pid"] == first["pid"]
    warm = ok_body(tmp_server.invoke("scratch", {"token": "warm"}), "warm")
    assert (warm["pid"], warm["tmpdir"], warm["tmp_files"]) == (first["pid"], str(tmpdir), ["kept.bin"])

    # Two at once: two environments, two directories; the new one starts empty.
    pair = invoke_all_at_once(
        tmp_server, "scratch", [{"action": "sleep", "seconds": 0.5, "token": f"c{i}"} for i in range(2)]
    )
    bodies = [ok_body(response, f"c{i}") for i, response in enumerate(pair)]
    assert len({body["tmpdir"] for body in bodies}) == 2
    other = next(body for body in bodies if body["pid"] != first["pid"])
    assert other["tmp_files"] == []

    crash = tmp_server.invoke("scratch", {"action": "exit", "code": 2, "token": "crash"})
    assert crash.json()["errorType"] == "Runtime.ExitError", crash.text
    assert tmp_server.report(request_id_of(crash)).status == "error"
    dead = [Path(body["tmpdir"]) for body in (first, other)]
    assert wait_until(lambda: sum(not path.exists() for path in dead) == 1, EXIT_TIMEOUT_S), (
        "the crashed environment's TMPDIR was not removed"
    )


def test_tmp_over_ephemeral_storage_resets_the_environment(tmp_server: RapidServer) -> None:
    first = ok_body(tmp_server.invoke("overflow", {"token": "first"}), "first")
    event = {"action": "write_tmp", "name": "big.bin", "megabytes": 520, "token": "fill"}
    filled = ok_body(tmp_server.invoke("overflow", event), "fill")  # the invoke itself succeeds
    assert filled["pid"] == first["pid"]
    request_id = filled["request_id"]
    line = tmp_server.wait_for_line(
        lambda line: line.startswith(f"RequestId: {request_id} Error: /tmp holds ")
    )
    match = re.match(
        rf"^RequestId: {request_id} Error: /tmp holds (\d+) MB more than the function's ephemeral storage "
        r"of 512 MB; the environment is reset$",
        line,
    )
    assert match, line
    assert 1 <= int(match[1]) <= 9, line
    assert wait_process_gone(tmp_server.seen_process(first["pid"]), EXIT_TIMEOUT_S)
    assert wait_until(lambda: not Path(first["tmpdir"]).exists(), EXIT_TIMEOUT_S)

    after = ok_body(tmp_server.invoke("overflow", {"token": "after"}), "after")
    assert after["pid"] != first["pid"]
    assert after["tmp_files"] == []
    assert tmp_server.report(after["request_id"]).init_duration_ms is not None


def test_list_functions_reports_the_configured_ephemeral_storage(tmp_server: RapidServer) -> None:
    response = httpx.get(tmp_server.endpoint + "/2015-03-31/functions/", timeout=10)
    sizes = {f["FunctionName"]: f["EphemeralStorage"]["Size"] for f in response.json()["Functions"]}
    assert sizes == {"scratch": 512, "overflow": 512, "roomy": 2048}
