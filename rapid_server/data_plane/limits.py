"""An environment's memory and /tmp limits, enforced the strongest way this machine allows.

Memory (the function's `memory`): a memory cgroup per environment where the server may create one (cgroup
v2 `memory.max`, or v1 `memory.limit_in_bytes`), so the kernel kills the environment at the limit exactly
as Lambda does; else the kernel's per-process peak RSS (`VmHWM`) is watched and the environment is killed
once it goes over. Max Memory Used is the process
tree's peak RSS either way (the kernel keeps each process's high-water mark, so no peak is missed between
readings), and the limit itself after a kill for memory.

/tmp (`ephemeral_storage`): a directory per environment, passed as TMPDIR, kept across warm invokes,
removed when the environment ends, and measured after every invoke: an environment over its size is reset.
Not a tmpfs: its pages would count against the function's memory (Lambda's /tmp is disk) and take the
host's RAM.

Containment (containment.py): every process of an environment is found through a cgroup of its own, and
all of them end when the environment does; this module holds each environment's handle on it.

Which way is in force is chosen once at server start (`detect_limits`) and said in the startup log.
Without cgroups or /proc (host.py: macOS, or RAPIDBOOT_PORTABLE=1), memory is neither limited nor measured
(REPORT's Max Memory Used shows 0 MB), and an environment's processes are its runtime's process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..host import LINUX, Host
from .containment import (
    FREEZER,
    PIDS,
    V2,
    Cgroup,
    Spawner,
    Supervisor,
    end_leftovers,
    make_v1_tracking_root,
    pid_alive,
    remove_stale_roots,
    remove_tree,
)
from .memory import PeakMemory

_MIB = 1024 * 1024
_CGROUP_FS = Path("/sys/fs/cgroup")
_CGROUP_V1_MEMORY = _CGROUP_FS / "memory"
_SPAWN_RESULT_WAIT_S = 1.0  # spawned_pid: bounds a wait that in practice is microseconds
_ENDED_POLL_S = 0.005  # between kills of what is left in an ending environment's cgroup
_ENDED_BOUND_S = 5.0  # past this, what is left (stuck in the kernel) is left to the server's exit


class EnvironmentLimits:
    """The limits of one environment: set up before spawn, consulted while it runs, released at its end."""

    def __init__(
        self,
        memory: _Memory,
        scratch: Path,
        scratch_limit_bytes: int,
        spawner: Spawner | None = None,
        supervisor: Supervisor | None = None,
        host: Host = LINUX,
    ):
        self.host = host  # what the environment may use besides (pidfds, /proc)
        self._memory = memory
        self.scratch = scratch  # TMPDIR
        self._scratch_limit_bytes = scratch_limit_bytes
        self._scratch_usage = ScratchUsage(scratch)
        self._spawner = spawner
        self._supervisor = supervisor
        # Where the environment's processes are found: its own v1 cgroup (given at spawn), else its v2
        # memory cgroup; None: the runtime's process group only.
        self.cgroup: Cgroup | None = memory.tracking()
        self._spawning: Future[tuple[subprocess.Popen[Any], Cgroup]] | None = None
        self._group: int | None = None

    async def spawn(self, start: Callable[[], subprocess.Popen[Any]]) -> subprocess.Popen[Any]:
        """Spawn the runtime (`start`) inside this environment's cgroup: from the spawner thread that waits
        in it (containment.py) where there is one, else right here."""
        if self._spawner is None:
            return start()
        # An environment's first spawn makes its cgroup; the later ones (its runtime after its extensions)
        # are born in the same.
        self._spawning = self._spawner.spawn(start, into=self.cgroup)
        popen, cgroup = await asyncio.wrap_future(self._spawning)
        self.cgroup = cgroup
        return popen

    async def claim_cgroups(self) -> list[str]:
        """For a runtime forked from a SnapStart template rather than spawned (snapstart.py): the
        `cgroup.procs` files it writes its own pid to, before any user code of it runs again. Its memory
        is then counted from its cgroup (see `_CgroupMemory.forked`)."""
        files = self._memory.fork_into()
        tracking = self._memory.fork_tracking()
        if tracking is not None:
            # A v1 memory cgroup holds the fork as surely as the freezer (no process leaves a cgroup by
            # itself), and it is killed until empty. Joining the freezer as well cost 10-27 ms in half the
            # forks (boto3 template, loaded 2-core machine; the memory cgroup's join: 0.02-0.06 ms).
            self.cgroup = tracking
        elif self._spawner is not None:
            self.cgroup = await asyncio.wrap_future(self._spawner.claim())
            files.append(str(self.cgroup.path / "cgroup.procs"))
        return files

    def spawned_pid(self) -> int | None:
        """The runtime's pid while `spawn` is still being awaited: its Runtime API connection can be
        accepted before the loop has taken the spawner thread's result (seen under load). The thread sets
        that result as soon as the vfork returns, that is once the runtime has exec'd, so for a runtime that
        has connected it is there already, or within microseconds."""
        spawning = self._spawning
        if spawning is None:
            return None
        try:
            popen, _ = spawning.result(timeout=_SPAWN_RESULT_WAIT_S)
        except Exception:  # not spawned (it failed, or is not done): no runtime to compare with
            return None
        return int(popen.pid)

    def started(self, pid: int) -> None:
        """Right after spawn."""
        self._memory.started(pid)
        if self.cgroup is None and self._supervisor is not None:
            self._group = pid  # its own session: pgid = pid
            self._supervisor.track_group(pid)

    def extension_started(self, pid: int) -> None:
        """An external extension, right after spawn: its memory counts with the runtime's (Max Memory
        Used), as on Lambda, where the function's memory holds the runtime and its extensions."""
        self._memory.add(pid)

    def kill_group(self, pgid: int) -> None:
        """SIGKILL the runtime's process group only: its extensions (in the same cgroup) have a SHUTDOWN
        to finish; `kill` or `ended` takes the rest after it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def kill(self, pgid: int) -> None:
        """SIGKILL every process of the environment: the runtime's process group (all there is without a
        cgroup; on v2 it also takes what the runtime forked before it joined), then its cgroup."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill()

    async def ended(self) -> bool:
        """Once the runtime has exited: kill what is left in the cgroup until nothing is, and wait for that
        (processes killed in the kernel take a moment to leave). False if some are still there after
        `_ENDED_BOUND_S` (stuck in the kernel): they are ended again when the server stops."""
        cgroup = self.cgroup
        if cgroup is None:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _ENDED_BOUND_S
        while cgroup.kill():
            if loop.time() > deadline:
                return False
            await asyncio.sleep(_ENDED_POLL_S)
        return True

    @property
    def joins_cgroup(self) -> bool:
        """The process must join its memory cgroup (`join_cgroup`) before its first invoke."""
        return self._memory.joins

    def join_cgroup(self, pid: int) -> None:
        """Blocking, for a worker thread: the memory cgroup takes the process. Done by the parent, not in
        a pre-exec hook in the child: a Python pre-exec hook makes every spawn a full fork of the server
        and cost ~10 ms of each cold start."""
        self._memory.join(pid)

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
        used = self._scratch_usage.used()
        return max(0, used - self._scratch_limit_bytes)

    def release(self) -> None:
        """Once every process has ended (`ended`)."""
        self._memory.release()
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self._group is not None and self._supervisor is not None:
            self._supervisor.untrack_group(self._group)
            self._group = None
        if self._spawner is not None and self.cgroup is not None:
            self.cgroup.remove()


class LimitsFactory:
    """Chosen once per server: how memory and /tmp are limited, and processes contained, on this machine."""

    def __init__(
        self,
        cgroup_root: Path | None,
        scratch_root: Path,
        cgroup_version: int = 1,
        spawner: Spawner | None = None,
        host: Host = LINUX,
    ):
        self.host = host
        self._cgroup_root = cgroup_root
        self._cgroup_version = cgroup_version
        self._scratch_root = scratch_root
        self._spawner = spawner
        self.supervisor: Supervisor | None = None  # set once started (server.run)
        self._count = 0
        # SnapStart templates' TMPDIR: what a template writes there during init is not any environment's.
        self.template_scratch = scratch_root / "templates"

    @property
    def description(self) -> str:
        if self._cgroup_root is None and not self.host.proc:
            memory = (
                "none (no memory cgroup and no /proc to watch); peak memory: not measured "
                "(REPORT's Max Memory Used shows 0 MB)"
            )
        elif self._cgroup_root is None:
            memory = "peak-RSS watching (no memory cgroup can be created here)"
        elif self._cgroup_version == 2:
            memory = f"memory cgroup (v2 memory.max under {self._cgroup_root})"
        else:
            memory = f"memory cgroup (v1 memory.limit_in_bytes under {self._cgroup_root})"
        if self._spawner is not None:
            how = "freeze, kill, thaw" if self._spawner.kind == FREEZER else "kill until empty"
            contained = (
                f"a cgroup v1 {self._spawner.kind} cgroup per environment ({how}, under {self._spawner.root})"
            )
        elif self._cgroup_root is not None and self._cgroup_version == 2:
            contained = "the environment's v2 cgroup (cgroup.kill)"
        else:
            contained = (
                "the runtime's process group only, as no cgroup can be made here: a process that leaves it "
                "(setsid) can outlive its environment"
            )
        return (
            f"memory limits: {memory}; /tmp limits: TMPDIR size checked after each invoke; "
            f"containment: {contained}"
        )

    def not_enforced(self) -> list[str]:
        """What Lambda enforces and this server cannot here, for the startup line."""
        missing: list[str] = []
        if self._cgroup_root is None and not self.host.proc:
            missing += ["memory limits", "peak memory (REPORT's Max Memory Used shows 0 MB)"]
        if self._spawner is None and not (self._cgroup_root is not None and self._cgroup_version == 2):
            missing.append("containment beyond the runtime's process group (a setsid child can outlive it)")
        return missing

    def record(self) -> dict[str, Any]:
        """What a supervisor, or the next server on this state dir, needs to end what this one leaves."""
        cgroups = []
        if self._spawner is not None:
            cgroups.append({"path": str(self._spawner.root), "kind": self._spawner.kind})
        if self._cgroup_root is not None:
            kind = V2 if self._cgroup_version == 2 else PIDS
            cgroups.append({"path": str(self._cgroup_root), "kind": kind})
        return {"pid": os.getpid(), "cgroups": cgroups, "scratch": str(self._scratch_root)}

    def for_environment(self, function: str, memory_mb: int, ephemeral_mb: int) -> EnvironmentLimits:
        self._count += 1
        name = f"{function}-{self._count}"
        scratch = self._scratch_root / name
        scratch.mkdir(parents=True)
        scratch.chmod(0o1777)  # like /tmp; mkdir's mode would be cut by the umask
        limit = memory_mb * _MIB
        memory: _Memory
        if self._cgroup_root is not None and self._cgroup_version == 2:
            memory = _CgroupV2Memory(self._cgroup_root / name, limit)
        elif self._cgroup_root is not None:
            memory = _CgroupV1Memory(self._cgroup_root / name, limit)
        elif self.host.proc:
            memory = _WatchedMemory(limit)
        else:
            memory = _UnmeasuredMemory()
        return EnvironmentLimits(
            memory, scratch, ephemeral_mb * _MIB, self._spawner, self.supervisor, self.host
        )

    def close(self) -> None:
        """At server exit, once every environment has ended: end and remove whatever is left."""
        if self._spawner is not None:
            self._spawner.close()
        end_leftovers(self.record())


def detect_limits(
    server_id: str, memory_enforcement: str = "auto", contain: bool = True, host: Host = LINUX
) -> LimitsFactory:
    """`memory_enforcement`: "auto" (a cgroup where possible, else RSS watching), "cgroup" (fail if no
    cgroup can be made), or "rss". `contain`: each environment's processes in a cgroup of their own
    (containment.py) where one can be made, whatever the memory enforcement. `host`: without cgroups,
    none is tried; without /proc, memory is not watched either."""
    if not host.cgroups and memory_enforcement == "cgroup":
        raise ConfigError(f"--memory-enforcement cgroup: {host.lacking}")
    if not host.proc and memory_enforcement == "rss":
        raise ConfigError(f"--memory-enforcement rss watches /proc: {host.lacking}")
    cgroup_root: Path | None = None
    version = 1
    if memory_enforcement != "rss" and host.cgroups:
        if (_CGROUP_FS / "cgroup.controllers").exists():  # the unified (v2) hierarchy
            version = 2
            cgroup_root = make_cgroup_v2_root(server_id, _CGROUP_FS, Path("/proc/self/cgroup"), os.getpid())
        else:
            cgroup_root = _make_cgroup_root(server_id)
    if memory_enforcement == "cgroup" and cgroup_root is None:
        where = _CGROUP_FS if version == 2 else _CGROUP_V1_MEMORY
        raise OSError(f"no memory cgroup can be created under {where}")
    spawner: Spawner | None = None
    if contain and host.cgroups and not (cgroup_root is not None and version == 2):  # v2: it contains
        tracking = make_v1_tracking_root(server_id, _CGROUP_FS)
        if tracking is not None:
            spawner = Spawner(*tracking, cgroup_fs=_CGROUP_FS)
    _remove_stale_scratch()
    scratch_root = Path(tempfile.mkdtemp(prefix=f"rapidboot-{server_id}-"))
    return LimitsFactory(cgroup_root, scratch_root, version, spawner, host)


# Memory ---------------------------------------------------------------------------------------------------


class _Memory:
    sample_interval_s = 0.1
    joins = False  # the process must join a cgroup (`join`, blocking) before its first invoke

    def started(self, pid: int) -> None:
        pass

    def tracking(self) -> Cgroup | None:
        """The cgroup that holds the environment's processes, if the memory's is one that can (v2)."""
        return None

    def join(self, pid: int) -> None:
        pass

    def add(self, pid: int) -> None:
        """Another process whose memory counts (an extension), before or after `started`."""

    def fork_into(self) -> list[str]:
        """The cgroup.procs file a forked runtime joins itself (`EnvironmentLimits.claim_cgroups`)."""
        return []

    def fork_tracking(self) -> Cgroup | None:
        """The cgroup that holds a forked runtime's processes, where this memory's can (see `fork_into`)."""
        return self.tracking()

    def sample(self, refresh_tree: bool) -> None:
        pass

    def peak_bytes(self) -> int:
        raise NotImplementedError

    def out_of_memory(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        pass


class _CgroupMemory(_Memory):
    """The kernel enforces the limit (its OOM killer acts at it) and counts its kills. The process joins the
    cgroup right after spawn (`join`), off the event loop: moving a process between cgroups waits for an
    RCU grace period in the kernel, measured at 5-20 ms on the 2-core machine, during which the server
    would otherwise answer nothing (and see the runtime's first /next late). The environment waits for the
    join before it hands over the first event, so every invoke runs under the limit.

    Max Memory Used is the process tree's peak RSS, or the limit itself once the kernel killed for memory;
    the cgroup's own peak is not used: it counts reclaimable page cache (a big /tmp write shows as a full
    cgroup)."""

    sample_interval_s = 1.0
    joins = True
    # (file, value) written when the cgroup is made; the first is required, the others are best effort.
    _SETTINGS: tuple[tuple[str, str], ...] = ()
    _OOM_FILE = ""
    _OOM_COUNTERS: tuple[str, ...] = ()
    _PEAK_FILE = ""

    def __init__(self, path: Path, limit_bytes: int):
        self._path = path
        self._limit = limit_bytes
        self._rss: PeakMemory | None = None
        self._others: list[int] = []  # the extensions' pids (`add`)
        self._oom = False
        self._forked = False
        self._cgroup_peak = 0  # a forked runtime's peak, kept: the file goes with the cgroup
        path.mkdir()
        for index, (name, value) in enumerate(self._settings(limit_bytes)):
            if index == 0:
                (path / name).write_text(value)
                continue
            with contextlib.suppress(OSError):  # absent without swap accounting, on older kernels, ...
                (path / name).write_text(value)
        self._procs = os.fsencode(path / "cgroup.procs")

    def _settings(self, limit_bytes: int) -> list[tuple[str, str]]:
        return [(name, value.format(limit=limit_bytes)) for name, value in self._SETTINGS]

    def started(self, pid: int) -> None:
        self._rss = PeakMemory(pid, self._others)

    def add(self, pid: int) -> None:
        self._others.append(pid)
        if self._rss is not None:
            self._rss.add_root(pid)

    def fork_into(self) -> list[str]:
        """A SnapStart runtime, forked from its template, shares the template's pages until it writes to
        them, and its RSS counts them all. What it uses itself is what its cgroup is charged with: the pages
        it allocated or copied on write since it joined (v1 moves no shared page's charge; v2 moves none),
        so its Max Memory Used is the cgroup's own peak (page cache it read included)."""
        self._forked = True
        return [os.fsdecode(self._procs)]

    def join(self, pid: int) -> None:
        """Blocking (see the class): run in a worker thread."""
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)

    def sample(self, refresh_tree: bool) -> None:
        if self._rss is not None:
            self._rss.sample(refresh_tree)

    def peak_bytes(self) -> int:
        if self._oom:  # known once the environment's exit was examined (out_of_memory)
            return self._limit
        if self._forked:
            with contextlib.suppress(OSError, ValueError):
                self._cgroup_peak = max(
                    self._cgroup_peak, int((self._path / self._PEAK_FILE).read_text().split()[0])
                )
            return min(self._cgroup_peak, self._limit)
        return min(self._rss.peak_bytes, self._limit) if self._rss is not None else 0

    def out_of_memory(self) -> bool:
        if not self._oom:
            with contextlib.suppress(OSError):
                for line in (self._path / self._OOM_FILE).read_text().splitlines():
                    name, _, value = line.partition(" ")
                    if name in self._OOM_COUNTERS and value.strip() not in ("", "0"):
                        self._oom = True
        return self._oom

    def release(self) -> None:
        if self._rss is not None:
            self._rss.close()
        self.out_of_memory()  # read before the cgroup goes
        # A cgroup can be removed once its processes are gone; the caller has waited for that.
        with contextlib.suppress(OSError):
            self._path.rmdir()


class _CgroupV1Memory(_CgroupMemory):
    """v1: `memory.limit_in_bytes`; swap capped too where the kernel accounts it, so the limit cannot be
    dodged by swapping; what the process touched before it joined moves with it (anonymous and file pages,
    bits 1 and 2 of move_charge_at_immigrate)."""

    _SETTINGS = (
        ("memory.limit_in_bytes", "{limit}"),
        ("memory.memsw.limit_in_bytes", "{limit}"),
        ("memory.move_charge_at_immigrate", "3"),
    )
    _OOM_FILE = "memory.oom_control"
    _OOM_COUNTERS = ("oom_kill",)
    _PEAK_FILE = "memory.max_usage_in_bytes"

    def fork_into(self) -> list[str]:
        """As the base class; and nothing to move: a fork's pages are all shared with its template when it
        joins, and moving charges (move_charge_at_immigrate) would drain every CPU's LRU lists for none."""
        with contextlib.suppress(OSError):
            (self._path / "memory.move_charge_at_immigrate").write_text("0")
        return super().fork_into()

    def fork_tracking(self) -> Cgroup | None:
        return Cgroup(self._path, PIDS, spare=(os.getpid(),))


class _CgroupV2Memory(_CgroupMemory):
    """v2: `memory.max`; `memory.swap.max = 0` (v2 accounts swap apart from memory.max, and Lambda has
    none); `memory.oom.group = 1` (an OOM kills the whole environment, not one of its processes). v2 has
    no move_charge: what the runtime touched before it joined stays with the server's cgroup."""

    _SETTINGS = (
        ("memory.max", "{limit}"),
        ("memory.swap.max", "0"),
        ("memory.oom.group", "1"),
    )
    _OOM_FILE = "memory.events"
    _OOM_COUNTERS = ("oom_kill", "oom_group_kill")
    _PEAK_FILE = "memory.peak"  # Linux >= 5.19

    def tracking(self) -> Cgroup | None:
        return Cgroup(self._path, V2)


class _UnmeasuredMemory(_Memory):
    """No cgroup and no /proc (host.py): nothing limits memory, and nothing reads its peak while the runtime
    lives. REPORT keeps Lambda's shape with 0 MB; the startup line says it is not measured. Not chosen:
    `getrusage(RUSAGE_CHILDREN)`, whose peak is the largest of every runtime this server has reaped, never
    the live environment's."""

    sample_interval_s = 1.0  # the environment's sampler still ticks; it reads nothing here

    def peak_bytes(self) -> int:
        return 0

    def out_of_memory(self) -> bool:
        return False


class _WatchedMemory(_Memory):
    def __init__(self, limit_bytes: int):
        self._limit = limit_bytes
        self._peak: PeakMemory | None = None
        self._others: list[int] = []
        self._oom = False

    def started(self, pid: int) -> None:
        self._peak = PeakMemory(pid, self._others)

    def add(self, pid: int) -> None:
        self._others.append(pid)
        if self._peak is not None:
            self._peak.add_root(pid)

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


def make_cgroup_v2_root(server_id: str, cgroup_fs: Path, self_cgroup: Path, pid: int) -> Path | None:
    """A v2 cgroup under which each environment gets a child with the memory controller, or None.

    v2's rule: a cgroup that hands controllers to its children has no processes of its own (the root
    excepted). So the server creates `<its cgroup>/rapidboot-<id>/`, moves itself into a leaf `server/` in
    there (unless its cgroup is the root, e.g. a container's own namespace), and enables `memory` for the
    children of both. That needs write access to its own cgroup (root in a container, or a delegated
    systemd scope) and no other process sharing it; where any step fails, everything is put back and RSS
    watching is used instead.
    """
    try:
        own = _own_cgroup_v2(self_cgroup)
    except OSError:
        return None
    if own is None:
        return None
    base = cgroup_fs / own.lstrip("/")
    try:
        if "memory" not in (base / "cgroup.controllers").read_text().split():
            return None  # not delegated to us
    except OSError:
        return None
    remove_stale_roots(base)  # v2 cgroups of servers that died without cleaning up
    root = base / f"rapidboot-{server_id}"
    moved = False
    try:
        root.mkdir()
        if own != "/":
            leaf = root / "server"
            leaf.mkdir()
            (leaf / "cgroup.procs").write_text(str(pid))
            moved = True
        for parent in (base, root):
            if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                (parent / "cgroup.subtree_control").write_text("+memory")
        probe = root / "probe"
        probe.mkdir()
        try:
            (probe / "memory.max").write_text(str(64 * _MIB))
        finally:
            probe.rmdir()
    except OSError:
        if moved:
            with contextlib.suppress(OSError):
                (base / "cgroup.procs").write_text(str(pid))
        remove_tree(root)
        return None
    return root


def _own_cgroup_v2(self_cgroup: Path) -> str | None:
    """This process's cgroup in the unified hierarchy (the `0::/path` line of /proc/self/cgroup)."""
    for line in self_cgroup.read_text().splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    return None


def _remove_stale_scratch() -> None:
    """Scratch roots of servers that died without cleaning up (SIGKILL)."""
    for root in Path(tempfile.gettempdir()).glob("rapidboot-*-*"):
        pid = root.name.split("-")[1]
        if root.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(root, ignore_errors=True)


def _remove_stale_cgroups() -> None:
    """Empty cgroups of servers that are gone. Their processes, if any are left, are ended by the next
    server on the same state dir (containment.end_dead_servers)."""
    remove_stale_roots(_CGROUP_V1_MEMORY)


# A directory's mtime comes from the kernel's coarse clock, which may lag the real one by a tick (1-10 ms).
_MTIME_TICK_NS = 50_000_000


class ScratchUsage:
    """What a TMPDIR holds, read after every invoke (Lambda's /tmp is a fixed-size file system).

    Most functions leave their /tmp empty, and that case needs no walk: a directory's mtime changes
    whenever an entry is made in it (create, mkdir, rename, link). Once a walk has found it empty, a stat
    that shows the same mtime proves it still is: one syscall instead of the walk's four (open, two
    getdents, close).

    That holds only for an mtime at least a tick older than the walk: the kernel stamps mtimes from a
    coarse clock, so an entry made just after the walk could carry the very mtime the walk saw. An mtime
    as recent as that is not trusted, and the next check walks again."""

    __slots__ = ("_empty_mtime_ns", "_root")

    def __init__(self, root: Path):
        self._root = os.fspath(root)
        self._empty_mtime_ns: int | None = None  # the directory's mtime when a walk last found it empty

    def used(self) -> int:
        """Bytes in the directory's files, all the way down."""
        try:
            mtime_ns = os.stat(self._root).st_mtime_ns
        except OSError:
            return 0
        if mtime_ns == self._empty_mtime_ns:
            return 0
        walked_at_ns = time.time_ns()  # before the walk: an entry it misses is stamped after this
        used, top_entries = _tree_size(self._root)
        empty = top_entries == 0 and walked_at_ns - mtime_ns >= _MTIME_TICK_NS
        self._empty_mtime_ns = mtime_ns if empty else None
        return used


def _tree_size(root: str) -> tuple[int, int]:
    """Bytes in the files under `root`, and how many entries `root` itself has."""
    total = 0
    top_entries = -1
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        if top_entries < 0:
            top_entries = len(entries)
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total, top_entries
