"""`AWS_LAMBDA_MAX_CONCURRENCY=N`: N worker processes poll `/next` at once, each with its own connection."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from fake_runtime_api import FakeEvent, FakeRuntimeAPI
from runtime_harness import run_runtime, spawn_runtime, write

APP = """
import os, socket
from rapidboot.runtime import on_shutdown
on_shutdown(os.write, 1, f"worker {os.getpid()} shut down\\n".encode())  # one write: workers share stdout

def handler(event, context):
    # Held open until the test has seen every invoke in flight at once.
    with socket.create_connection(("127.0.0.1", event["gate"])) as gate:
        gate.recv(1)
    return {"pid": os.getpid(), "request_id": context.aws_request_id}
"""


def test_workers_poll_and_invoke_concurrently_and_stop_on_sigterm(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    with FakeRuntimeAPI([], block_when_empty=True) as api, socket.create_server(("127.0.0.1", 0)) as gate:
        gate.settimeout(10)
        proc = spawn_runtime(api, task_root, env={"AWS_LAMBDA_MAX_CONCURRENCY": "3"})
        # Three /next requests outstanding at the same time, on three connections.
        assert api.wait_until(lambda: api.waiting_next == 3), proc
        assert api.connections == 3
        for i in range(3):
            api.add_event(FakeEvent({"gate": gate.getsockname()[1]}, request_id=f"r{i}"))
        in_flight = [gate.accept()[0] for _ in range(3)]  # three handlers running at once
        for conn in in_flight:
            conn.sendall(b"x")
            conn.close()
        assert api.wait_until(lambda: len([r for r in api.requests if r.path.endswith("/response")]) == 3)
        results = [post.json() for post in api.posts("/response")]
        assert api.wait_until(lambda: api.waiting_next == 3)  # all back to polling
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    pids = {result["pid"] for result in results}
    assert len(pids) == 3 and proc.pid not in pids  # three workers, none of them the supervisor
    assert sorted(result["request_id"] for result in results) == ["r0", "r1", "r2"]
    shut_down = sorted(line for line in stdout.decode().splitlines() if line.endswith("shut down"))
    assert shut_down == sorted(f"worker {pid} shut down" for pid in pids)


def test_init_error_stops_the_workers_and_a_403_for_the_second_report_is_silent(task_root: Path) -> None:
    write(task_root, {"app.py": "raise ValueError('bad init')\n"})
    # RAPID accepts the first worker's report and answers 403 to later ones (here: to all of them).
    with FakeRuntimeAPI([], post_status={"/init/error": 403}) as api:
        proc = spawn_runtime(api, task_root, env={"AWS_LAMBDA_MAX_CONCURRENCY": "2"})
        stdout, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1  # the first failing worker's status; the other one was stopped
    assert 1 <= len(api.posts("/init/error")) <= 2
    assert "Failed to post init error" not in stdout.decode()


def test_invalid_concurrency_is_a_clear_config_error(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, [], env={"AWS_LAMBDA_MAX_CONCURRENCY": "many"})
    assert run.returncode == 1
    assert "AWS_LAMBDA_MAX_CONCURRENCY must be a positive integer, got 'many'" in run.stderr
    assert run.api.requests == []
