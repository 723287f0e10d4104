"""Measured memory of an execution environment, for REPORT's `Max Memory Used`.

The kernel keeps each process's peak resident set (`VmHWM` in /proc/PID/status), so a peak between two
readings is not missed. An environment is a process tree (the runtime may fork helpers); its peak is taken
as the sum of its live processes' peaks, kept as a running maximum across readings. That can over-count
processes whose peaks did not coincide, never under-count a process alive at a reading.
"""

from __future__ import annotations

import os

_MIB = 1024 * 1024


def process_tree(root_pid: int) -> list[int]:
    """The root and all its descendants, via /proc/PID/task/TID/children."""
    pids = [root_pid]
    index = 0
    while index < len(pids):
        pid = pids[index]
        index += 1
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    pids.extend(int(child) for child in f.read().split())
            except (OSError, ValueError):
                continue
    return pids


def _peak_rss_bytes(status_fd: int) -> int | None:
    """The peak resident set size from an open /proc/PID/status, None if the process is gone. One pread of
    a descriptor held for the process's life, searched as bytes: this runs for every invoke, and the open
    and close of the path cost ~5 us more per reading than the kernel's formatting of the file (~8 us)."""
    try:
        status = os.pread(status_fd, 8192, 0)
    except OSError:
        return None
    start = status.find(b"VmHWM:")
    if start < 0:
        return 0
    end = status.find(b"kB", start)
    try:
        return int(status[start + 6 : end]) * 1024  # reported in kB
    except ValueError:
        return 0


class PeakMemory:
    """Running peak of one environment's process tree.

    Reading the peaks of known processes is one small read each; finding the tree walks /proc, so it is
    refreshed only when asked (the environment's periodic sampler) and reused by per-invoke readings. Each
    known process's status file stays open until it leaves the tree (or `close`): a descriptor names that
    process, not whichever later reuses its pid.
    """

    __slots__ = ("_others", "_peak_bytes", "_status_fds", "root_pid")

    def __init__(self, root_pid: int, others: list[int] | tuple[int, ...] = ()):
        """`others`: the roots of further trees counted with the runtime's (its environment's extensions)."""
        self.root_pid = root_pid
        self._others = list(others)
        self._peak_bytes = 0
        self._status_fds: dict[int, int] = {}
        self._track([root_pid, *self._others])

    def add_root(self, pid: int) -> None:
        self._others.append(pid)
        self._track([*self._status_fds, pid])

    def sample(self, refresh_tree: bool = True) -> int:
        if refresh_tree:
            pids = process_tree(self.root_pid)
            for other in self._others:
                pids.extend(process_tree(other))
            self._track(pids)
        total = 0
        for pid, fd in list(self._status_fds.items()):
            peak = _peak_rss_bytes(fd)
            if peak is None:  # gone: forget it, so a process that later takes its pid is opened afresh
                os.close(self._status_fds.pop(pid))
            else:
                total += peak
        self._peak_bytes = max(self._peak_bytes, total)
        return self._peak_bytes

    def close(self) -> None:
        self._track([])

    def _track(self, pids: list[int]) -> None:
        """Hold the status files of exactly `pids` (those that can be opened)."""
        kept: dict[int, int] = {}
        for pid in pids:
            fd = self._status_fds.pop(pid, None)
            if fd is None:
                try:
                    fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    continue
            kept[pid] = fd
        for fd in self._status_fds.values():
            os.close(fd)
        self._status_fds = kept

    @property
    def peak_bytes(self) -> int:
        return self._peak_bytes

    @property
    def peak_mb(self) -> int:
        """Whole MB, rounded up, as Lambda reports it (a 40.2 MB peak shows as 41 MB)."""
        return -(-self._peak_bytes // _MIB)
