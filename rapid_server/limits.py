"""An environment's memory and /tmp limits, enforced the strongest way this machine allows.

Memory (the function's `memory`): a memory cgroup per environment where the server may create one, so
the kernel kills the environment at the limit exactly as Lambda does; else the kernel's per-process peak
RSS (`VmHWM`) is watched and the environment is killed once it goes over. Max Memory Used is the process
tree's peak RSS either way (the kernel keeps each process's high-water mark, so no peak is missed between
readings), and the limit itself after a kill for memory.

/tmp (`ephemeral_storage`): a directory per environment, passed as TMPDIR, kept across warm invokes,
removed when the environment ends, and measured after every invoke: an environment over its size is reset.
Not a tmpfs: its pages would count against the function's memory (Lambda's /tmp is disk) and take the
host's RAM.

Which way is in force is chosen once at server start (`detect_limits`) and said in the startup log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

from .memory import PeakMemory

_MIB = 1024 * 1024
_CGROUP_V1_MEMORY = Path("/sys/fs/cgroup/memory")


class EnvironmentLimits:
    """The limits of one environment: set up before spawn, consulted while it runs, released at its end."""

    def __init__(self, memory: _Memory, scratch: Path, scratch_limit_bytes: int):
        self._memory = memory
        self.scratch = scratch  # TMPDIR
        self._scratch_limit_bytes = scratch_limit_bytes

    def started(self, pid: int) -> None:
        """Right after spawn: the memory cgroup takes the process before its interpreter has started.
        Done by the parent, not in a pre-exec hook in the child: a Python pre-exec hook makes every spawn
        a full fork of the server and cost ~10 ms of each cold start."""
        self._memory.started(pid)

    @property
    def sample_interval_s(self) -> float:
        """How often the environment samples between invokes: often where sampling enforces the limit
        (RSS watching), seldom where the kernel does (a cgroup) and it only keeps crash reports fresh."""
        return self._memory.sample_interval_s

    def sample(self, refresh_tree: bool = True) -> None:
        """Read the peak; under RSS watching, kill the environment once it is over its memory. Without
        `refresh_tree`, only the processes already known are read (cheap enough for every invoke)."""
        self._memory.sample(refresh_tree)

    @property
    def peak_mb(self) -> int:
        return -(-self._memory.peak_bytes() // _MIB)

    @property
    def out_of_memory(self) -> bool:
        return self._memory.out_of_memory()

    def scratch_overflow_bytes(self) -> int:
        """Bytes in TMPDIR beyond the limit, 0 when within it."""
        used = _tree_size(self.scratch)
        return max(0, used - self._scratch_limit_bytes)

    def release(self) -> None:
        self._memory.release()
        shutil.rmtree(self.scratch, ignore_errors=True)


class LimitsFactory:
    """Chosen once per server: how memory and /tmp are limited on this machine."""

    def __init__(self, cgroup_root: Path | None, scratch_root: Path):
        self._cgroup_root = cgroup_root
        self._scratch_root = scratch_root
        self._count = 0

    @property
    def description(self) -> str:
        memory = (
            f"memory cgroup (v1 memory.limit_in_bytes under {self._cgroup_root})"
            if self._cgroup_root is not None
            else "peak-RSS watching (no memory cgroup can be created here)"
        )
        return f"memory limits: {memory}; /tmp limits: TMPDIR size checked after each invoke"

    def for_environment(self, function: str, memory_mb: int, ephemeral_mb: int) -> EnvironmentLimits:
        self._count += 1
        name = f"{function}-{self._count}"
        scratch = self._scratch_root / name
        scratch.mkdir(parents=True)
        scratch.chmod(0o1777)  # like /tmp; mkdir's mode would be cut by the umask
        limit = memory_mb * _MIB
        memory: _Memory
        if self._cgroup_root is not None:
            memory = _CgroupV1Memory(self._cgroup_root / name, limit)
        else:
            memory = _WatchedMemory(limit)
        return EnvironmentLimits(memory, scratch, ephemeral_mb * _MIB)

    def close(self) -> None:
        """At server exit, once every environment has ended: remove what is left."""
        shutil.rmtree(self._scratch_root, ignore_errors=True)
        if self._cgroup_root is not None:
            with contextlib.suppress(OSError):
                for child in self._cgroup_root.iterdir():
                    if child.is_dir():
                        with contextlib.suppress(OSError):
                            child.rmdir()
                self._cgroup_root.rmdir()


def detect_limits(server_id: str, memory_enforcement: str = "auto") -> LimitsFactory:
    """`memory_enforcement`: "auto" (a cgroup where possible, else RSS watching), "cgroup" (fail if no
    cgroup can be made), or "rss"."""
    cgroup_root = None if memory_enforcement == "rss" else _make_cgroup_root(server_id)
    if memory_enforcement == "cgroup" and cgroup_root is None:
        raise OSError(f"no memory cgroup can be created under {_CGROUP_V1_MEMORY}")
    _remove_stale_scratch()
    scratch_root = Path(tempfile.mkdtemp(prefix=f"rapidboot-{server_id}-"))
    return LimitsFactory(cgroup_root, scratch_root)


# Memory ---------------------------------------------------------------------------------------------------


class _Memory:
    sample_interval_s = 0.1

    def started(self, pid: int) -> None:
        pass

    def sample(self, refresh_tree: bool) -> None:
        pass

    def peak_bytes(self) -> int:
        raise NotImplementedError

    def out_of_memory(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        pass


class _CgroupV1Memory(_Memory):
    """The kernel enforces the limit (it SIGKILLs a process of the group at the limit) and keeps the peak.
    Swap is capped too where the kernel accounts it, so the limit cannot be dodged by swapping."""

    sample_interval_s = 1.0

    def __init__(self, path: Path, limit_bytes: int):
        self._path = path
        self._limit = limit_bytes
        self._rss: PeakMemory | None = None
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        with contextlib.suppress(OSError):
            (path / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
        # What the process touched before it joined (microseconds after exec) moves with it: anonymous
        # and file pages (bits 1 and 2).
        with contextlib.suppress(OSError):
            (path / "memory.move_charge_at_immigrate").write_text("3")
        self._procs = os.fsencode(path / "cgroup.procs")
        self._oom = False

    def started(self, pid: int) -> None:
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)
        self._rss = PeakMemory(pid)

    def sample(self, refresh_tree: bool) -> None:
        if self._rss is not None:
            self._rss.sample(refresh_tree)

    def peak_bytes(self) -> int:
        """The process tree's peak RSS; the limit itself once the kernel killed for memory. The cgroup's own
        peak is not used: it counts reclaimable page cache (a big /tmp write shows as a full cgroup)."""
        if self._oom:  # known once the environment's exit was examined (out_of_memory)
            return self._limit
        return min(self._rss.peak_bytes, self._limit) if self._rss is not None else 0

    def out_of_memory(self) -> bool:
        if not self._oom:
            with contextlib.suppress(OSError):
                for line in (self._path / "memory.oom_control").read_text().splitlines():
                    name, _, value = line.partition(" ")
                    if name == "oom_kill" and value.strip() not in ("", "0"):
                        self._oom = True
        return self._oom

    def release(self) -> None:
        if self._rss is not None:
            self._rss.close()
        self.out_of_memory()  # read before the cgroup goes
        # A cgroup can be removed once its processes are gone; the caller has waited for that.
        with contextlib.suppress(OSError):
            self._path.rmdir()


class _WatchedMemory(_Memory):
    def __init__(self, limit_bytes: int):
        self._limit = limit_bytes
        self._peak: PeakMemory | None = None
        self._oom = False

    def started(self, pid: int) -> None:
        self._peak = PeakMemory(pid)

    def sample(self, refresh_tree: bool) -> None:
        if self._peak is None or self._oom:
            return
        if self._peak.sample(refresh_tree) > self._limit:
            self._oom = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._peak.root_pid, signal.SIGKILL)

    def peak_bytes(self) -> int:
        if self._peak is None:
            return 0
        return min(self._peak.peak_bytes, self._limit) if self._oom else self._peak.peak_bytes

    def out_of_memory(self) -> bool:
        return self._oom

    def release(self) -> None:
        if self._peak is not None:
            self._peak.close()


# Detection ------------------------------------------------------------------------------------------------


def _make_cgroup_root(server_id: str) -> Path | None:
    """A memory cgroup for this server's environments, or None where none can be made."""
    if not (_CGROUP_V1_MEMORY / "memory.limit_in_bytes").exists():
        return None
    _remove_stale_cgroups()
    root = _CGROUP_V1_MEMORY / f"rapidboot-{server_id}"
    try:
        root.mkdir()
        probe = root / "probe"
        probe.mkdir()
        (probe / "memory.limit_in_bytes").write_text(str(64 * _MIB))
        probe.rmdir()
    except OSError:
        with contextlib.suppress(OSError):
            root.rmdir()
        return None
    return root


def _remove_stale_scratch() -> None:
    """Scratch roots of servers that died without cleaning up (SIGKILL)."""
    for root in Path(tempfile.gettempdir()).glob("rapidboot-*-*"):
        pid = root.name.split("-")[1]
        if root.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(root, ignore_errors=True)


def _remove_stale_cgroups() -> None:
    """Cgroups of servers that died without cleaning up (SIGKILL): empty by now, so removable."""
    with contextlib.suppress(OSError):
        for root in _CGROUP_V1_MEMORY.glob("rapidboot-*"):
            pid = root.name.removeprefix("rapidboot-")
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                for child in root.iterdir():
                    if child.is_dir():
                        with contextlib.suppress(OSError):
                            child.rmdir()
                with contextlib.suppress(OSError):
                    root.rmdir()


def _tree_size(root: Path) -> int:
    total = 0
    stack = [os.fspath(root)]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total
