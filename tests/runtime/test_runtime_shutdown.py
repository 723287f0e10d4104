"""SIGTERM: shutdown callbacks and `atexit` run, then the runtime exits 0, blocked on /next or mid-invoke."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent, FakeRuntimeAPI
from runtime_harness import spawn_runtime, write

APP = """
import atexit, socket, sys, threading, time
from IMPORT_FROM import on_shutdown

if "THREADS" == "yes":  # a background thread may take the signal instead of the main thread
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()

atexit.register(print, "atexit ran")

@on_shutdown
def first():
    print("first callback")

def failing():
    raise ValueError("boom")

on_shutdown(failing)
on_shutdown(print, "last registered runs first", flush=True)

def handler(event, context):
    if event.get("gate"):
        socket.create_connection(("127.0.0.1", event["gate"]))  # tell the test we are inside
        time.sleep(3600)
    return "ok"
"""

IMPORTS = {
    "public": "runtime",  # a second copy of the package, under its public name
    "private": "_rapidboot_runtime.shutdown",  # the copy the bootstrap runs
}


def _app(task_root: Path, import_from: str = "public", threads: bool = False) -> None:
    source = APP.replace("IMPORT_FROM", IMPORTS[import_from]).replace(
        '"THREADS"', '"yes"' if threads else '""'
    )
    write(task_root, {"app.py": source})


# A bound that only catches a hang: a runtime still blocked (in its /next read, or in a handler sleeping for
# an hour) never exits by itself. How fast it exits is a benchmark's question (Lambda SIGKILLs 300-500 ms
# after SIGTERM; measured ~10 ms here), not this test's.
EXIT_BOUND_S = 10.0


def _terminate(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=EXIT_BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(
            f"the runtime was still running {EXIT_BOUND_S} s after SIGTERM: it did not leave what it was "
            f"blocked in.\nstdout: {stdout.decode()!r}\nstderr: {stderr.decode()!r}"
        ) from None
    return proc.returncode, stdout.decode(), stderr.decode()


def _assert_graceful(code: int, stdout: str, stderr: str) -> None:
    assert code == 0, stderr
    lines = [line for line in stdout.splitlines() if line and not line.startswith("[")]
    assert lines == ["last registered runs first", "first callback", "atexit ran"], stdout
    assert stderr == "rapidboot: shutdown callback failing failed: ValueError: boom\n"


@pytest.mark.parametrize(
    ("import_from", "threads"), [("public", False), ("private", False), ("public", True)]
)
def test_sigterm_while_waiting_for_next(task_root: Path, import_from: str, threads: bool) -> None:
    _app(task_root, import_from, threads)
    with FakeRuntimeAPI([FakeEvent({}, request_id="r1")], block_when_empty=True) as api:
        proc = spawn_runtime(api, task_root)
        # The first invoke is answered, then the runtime blocks in the second /next.
        assert api.wait_until(lambda: api.waiting_next == 1), proc
        assert len(api.posts("/r1/response")) == 1
        _assert_graceful(*_terminate(proc))


def test_sigterm_during_an_invoke(task_root: Path) -> None:
    _app(task_root)
    with socket.create_server(("127.0.0.1", 0)) as gate:
        gate.settimeout(10)
        event = FakeEvent({"gate": gate.getsockname()[1]}, request_id="r1")
        with FakeRuntimeAPI([event], block_when_empty=True) as api:
            proc = spawn_runtime(api, task_root)
            conn, _ = gate.accept()  # the handler is running
            conn.close()
            _assert_graceful(*_terminate(proc))
            assert api.posts("/response") == []


def test_sigterm_without_callbacks_exits_0(task_root: Path) -> None:
    write(task_root, {"app.py": "def handler(event, context):\n    return 1\n"})
    with FakeRuntimeAPI([], block_when_empty=True) as api:
        proc = spawn_runtime(api, task_root)
        assert api.wait_until(lambda: api.waiting_next == 1)
        assert _terminate(proc)[:3] == (0, "", "")


def test_function_can_replace_the_sigterm_handler(task_root: Path) -> None:
    source = (
        "import signal, sys\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
        "def handler(event, context):\n    return 1\n"
    )
    write(task_root, {"app.py": source})
    with FakeRuntimeAPI([], block_when_empty=True) as api:
        proc = spawn_runtime(api, task_root)
        assert api.wait_until(lambda: api.waiting_next == 1)
        assert _terminate(proc)[0] == 7  # its handler raised SystemExit out of the interrupted recv
