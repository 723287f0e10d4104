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


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size, 0 if it is gone or unreadable. One read of the status file,
    searched as bytes: this runs for every invoke."""
    try:
        fd = os.open(f"/proc/{pid}/status", os.O_RDONLY)
    except OSError:
        return 0
    try:
        status = os.read(fd, 8192)
    except OSError:
        return 0
    finally:
        os.close(fd)
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
    refreshed only when asked (the environment's periodic sampler) and reused by per-invoke readings.
    """

    __slots__ = ("_peak_bytes", "_tree", "root_pid")

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self._peak_bytes = 0
        self._tree = [root_pid]

    def sample(self, refresh_tree: bool = True) -> int:
        if refresh_tree:
            self._tree = process_tree(self.root_pid)
        total = sum(peak_rss_bytes(pid) for pid in self._tree)
        self._peak_bytes = max(self._peak_bytes, total)
        return self._peak_bytes

    @property
    def peak_bytes(self) -> int:
        return self._peak_bytes

    @property
    def peak_mb(self) -> int:
        """Whole MB, rounded up, as Lambda reports it (a 40.2 MB peak shows as 41 MB)."""
        return -(-self._peak_bytes // _MIB)
