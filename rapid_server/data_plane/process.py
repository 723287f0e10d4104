"""A runtime's process: spawned with vfork, its exit seen through a pidfd on the event loop.

Why not `asyncio.create_subprocess_exec`: on uvloop it forks the whole server (libuv's `uv_spawn`), whose
page tables grow with it, and waits for the exec in the loop. Measured on the 2-core machine: 2.4 ms per
spawn from a small process, 3.7 ms from one of the server's size, against 0.36 ms for `subprocess.Popen`
(vfork): ~3 ms of every cold start's Init Duration. The exit is watched with a pidfd (readable once the
process has exited, Linux >= 5.3), reaped with `Popen.poll`; without pidfds it is polled.

The spawn (`spawn_runtime`) is apart from the watching (`RuntimeProcess`): where each environment has its
own cgroup v1, it runs in the thread that waits in that cgroup (containment.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_POLL_INTERVAL_S = 0.05  # only without pidfds: how late a crash is seen at most


def spawn_runtime(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], output_fd: int
) -> subprocess.Popen[bytes]:
    """Spawn (raises OSError if it cannot be started) in a new session: its own process group, which a
    kill takes as a whole where there is no cgroup to find its processes by."""
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=output_fd,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )


class RuntimeProcess:
    """A spawned runtime, watched on the running loop."""

    __slots__ = ("_exited", "_pidfd", "_poller", "_popen", "pid")

    def __init__(self, popen: subprocess.Popen[bytes], pidfd: bool = True) -> None:
        """`pidfd`: watch the exit through a pidfd where the host has them (host.py), else poll."""
        self._popen = popen
        self.pid = popen.pid
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._poller: asyncio.TimerHandle | None = None
        self._pidfd = watch_exit(self.pid, self._reap) if pidfd else None
        if self._pidfd is None:
            self._poller = loop.call_later(_POLL_INTERVAL_S, self._poll)

    @property
    def returncode(self) -> int | None:
        """None while it runs (or has exited unseen); as `subprocess`: -N for death by signal N."""
        return self._exited.result() if self._exited.done() else None

    def has_exited(self) -> bool:
        """Exited, even if not yet reaped: one poll of the pidfd, with no waiting."""
        if self._exited.done():
            return True
        if self._pidfd is None:
            return self._popen.poll() is not None
        return bool(select.select([self._pidfd], [], [], 0)[0])

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def _reap(self) -> None:
        returncode = self._popen.poll()
        if returncode is None:
            return  # a spurious wake-up: not exited yet
        if self._pidfd is not None:
            unwatch_exit(self._pidfd)
            self._pidfd = None
        if not self._exited.done():
            self._exited.set_result(returncode)

    def _poll(self) -> None:
        self._poller = None
        if self._popen.poll() is None:
            self._poller = asyncio.get_running_loop().call_later(_POLL_INTERVAL_S, self._poll)
        elif not self._exited.done():
            self._exited.set_result(self._popen.returncode)


def watch_exit(pid: int, on_exit: Callable[[], None]) -> int | None:
    """A pidfd for `pid`, watched by the running loop: `on_exit` is called once it is readable (the process
    has exited, reaped or not). None on a kernel without pidfds (older than 5.3), or once `pid` is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None
    asyncio.get_running_loop().add_reader(pidfd, on_exit)
    return pidfd


def unwatch_exit(pidfd: int) -> None:
    """Stop watching a pidfd from `watch_exit`, and close it."""
    with contextlib.suppress(Exception):
        asyncio.get_running_loop().remove_reader(pidfd)
    os.close(pidfd)
