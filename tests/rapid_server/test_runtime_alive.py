"""Whether a runtime may be handed an event: `_runtime_alive` reads its /proc/PID/status (state and pending
signals), checked here against real processes in each of the states it must tell apart."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from rapidboot.rapid_server.data_plane.logs import LogSink
from rapidboot.rapid_server.data_plane.process_setup import EnvironmentProcess, _read_status, _zombie

FREEZER = Path("/sys/fs/cgroup/freezer")


def _status_fd(pid: int) -> int:
    return os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)


def _wait_state(pid: int, wanted: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        if stat[stat.rfind(b")") + 2 :].split()[0].decode() == wanted:
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never reached state {wanted}")


def _alive(status_fd: int, pid: int) -> bool:
    """`EnvironmentProcess._runtime_alive` of an environment whose runtime is `pid` (its process object
    tells its exit by a pidfd, as the server's does)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # reaped
        pidfd = None
    try:
        exited = pidfd is None or bool(select.select([pidfd], [], [], 0)[0])
        process = SimpleNamespace(pid=pid, has_exited=lambda: exited)
        environment = SimpleNamespace(_returncode=None, _process=process, _status_fd=status_fd)
        return EnvironmentProcess._runtime_alive(environment)  # type: ignore[arg-type]
    finally:
        if pidfd is not None:
            os.close(pidfd)


@contextlib.contextmanager
def _child(code: str) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield child
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        child.wait()


def test_a_running_process_is_alive() -> None:
    with _child("import time; time.sleep(60)") as child:
        fd = _status_fd(child.pid)
        try:
            assert _alive(fd, child.pid)
        finally:
            os.close(fd)


def test_an_exited_process_is_not_alive_before_and_after_it_is_reaped() -> None:
    with _child("pass") as child:
        fd = _status_fd(child.pid)
        try:
            _wait_state(child.pid, "Z")  # exited, not yet reaped
            assert not _alive(fd, child.pid)
            child.wait()
            assert _read_status(fd) is None  # reaped: the held file reads no more, even if the pid is reused
            assert not _alive(fd, child.pid)
        finally:
            os.close(fd)


def test_a_zombie_leader_with_a_live_thread_is_alive() -> None:
    """The main thread exits on its own (pthread_exit) and another thread runs on: /proc shows the leader
    as a zombie, but the process is alive, and an event may be handed to it."""
    code = (
        "import ctypes, threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()\n"
        "ctypes.CDLL(None).pthread_exit(None)\n"
    )
    with _child(code) as child:
        fd = _status_fd(child.pid)
        try:
            _wait_state(child.pid, "Z")
            status = _read_status(fd)
            assert status is not None and _zombie(status)
            assert _alive(fd, child.pid)
        finally:
            os.close(fd)


@pytest.mark.skipif(not (FREEZER / "cgroup.procs").exists() or os.geteuid() != 0, reason="no v1 freezer")
def test_a_process_with_sigkill_pending_is_not_alive() -> None:
    """SIGKILL sent and not yet acted on (a frozen process cannot act on it): no event may be handed over,
    as the kernel would hand the process the data and then kill it."""
    cgroup = FREEZER / f"rapidboot-test-{os.getpid()}"
    cgroup.mkdir()
    try:
        with _child("import time; time.sleep(60)") as child:
            fd = _status_fd(child.pid)
            try:
                (cgroup / "cgroup.procs").write_text(str(child.pid))
                (cgroup / "freezer.state").write_text("FROZEN")
                os.kill(child.pid, signal.SIGKILL)
                _wait_state(child.pid, "D")  # frozen, the signal pending
                assert not _alive(fd, child.pid)
            finally:
                (cgroup / "freezer.state").write_text("THAWED")
                os.close(fd)
            assert child.wait(10) == -signal.SIGKILL
    finally:
        cgroup.rmdir()


def test_a_process_dying_of_sigkill_is_not_alive_until_it_is_gone() -> None:
    """Once the process acts on SIGKILL its own pending set is empty again, and it takes a while to die (here
    it releases 1 GiB) before it is a zombie: all that while it must not be handed an event. (Reading the
    leader's own pending set, /proc/PID/stat's, said "alive" there: test_e2e_faults caught it.)"""
    code = "import sys, time; block = b'x' * (1 << 30); print('ready', flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        fd = _status_fd(child.pid)
        try:
            os.kill(child.pid, signal.SIGKILL)
            dying_seen = 0
            while True:
                status = _read_status(fd)
                if status is None or _zombie(status):
                    break
                dying_seen += 1
                assert not _alive(fd, child.pid)
            assert dying_seen > 0, "the process died before it could be looked at"
        finally:
            os.close(fd)
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        child.wait()


def test_the_server_sink_gathers_a_loop_turn_into_one_write_and_writes_other_threads_at_once() -> None:
    writes: list[bytes] = []

    class Stream(io.BytesIO):
        def write(self, data: bytes) -> int:  # type: ignore[override]
            writes.append(bytes(data))
            return len(data)

    sink = LogSink(Stream())

    async def main() -> None:
        sink.gather_in(asyncio.get_running_loop())
        sink.platform("START 1")
        sink.platform("END 1", "REPORT 1")
        assert writes == []  # not before the turn ends
        await asyncio.sleep(0)
        assert writes == [b"START 1\nEND 1\nREPORT 1\n"]
        other = threading.Thread(target=sink.platform, args=("from a thread",))
        other.start()
        other.join()
        assert writes[-1] == b"from a thread\n"

    asyncio.run(main())
    sink.platform("after the loop")
    assert writes[-1] == b"after the loop\n"
