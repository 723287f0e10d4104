"""Containment: nothing a function starts outlives its environment.

Each environment's processes are kept in a cgroup of their own, which no process can leave by itself
(setsid and double forks change a process's session and parent, not its cgroup). Ending an environment
ends every process in that cgroup:
- cgroup v2: `cgroup.kill`, the kernel's own kill of a whole cgroup (Linux >= 5.14);
- cgroup v1 freezer: freeze, SIGKILL every pid in `cgroup.procs`, thaw, until it is empty (frozen,
  nothing forks between the reading and the kill); the v1 `pids` hierarchy, kill until empty, where
  there is no freezer;
- neither (no cgroups here, or none may be made; host.py): the runtime's process group only (best effort:
  a process that calls setsid leaves it), which the server says in its startup log.

Joining before the first fork. A v1 hierarchy lets one *thread* change cgroup (`tasks`), and a child is
born in the cgroup of the thread that forks it. So runtimes are spawned (vfork) by one spawner thread that
waits, between spawns, inside the cgroup of the next environment (`Spawner`): the runtime is in its cgroup
before it runs one instruction, an AWS_LAMBDA_EXEC_WRAPPER script included. A cold start pays the hop to
that thread; the move itself (it can wait for an RCU grace period in the kernel: measured 35 us median, up
to 17 ms on the 2-core machine) is made after each spawn, off the next cold start's path, and off the event
loop. v2 moves whole processes only (a thread cannot join a domain cgroup), so there the runtime joins its
memory cgroup right after the spawn (limits.py), before its first invoke.

When the server dies by SIGKILL, its supervisor (one small process per server, in a session of its own
and deaf to terminal signals) sees its pipe from the server close and ends everything the server's
environments left: their processes, cgroups and scratch directories. Without cgroups it is told each
runtime's process group, and ends those: it needs nothing of Linux, so it runs on every host. A record
in the state dir (`servers/<pid>.json`, flock-ed by the server and its supervisor for as long as either
lives) lets the next server started with the same --state-dir end what both left, should the supervisor
have died too. A record whose lock is held belongs to a live server: it is never touched, so servers never
end each other's environments.

Standard library only and no imports from the package: the supervisor runs this file as a script
(`python -I -S`; ~45 ms to start on the loaded 2-core machine, once per server, alongside its start-up).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

CGROUP_FS = Path("/sys/fs/cgroup")
V2 = "v2"  # cgroup.kill
FREEZER = "freezer"  # v1: freeze, kill every pid, thaw
PIDS = "pids"  # v1 without freezing (also the v1 memory hierarchy): kill every pid until none is left
_V1_TRACKING = (FREEZER, PIDS)  # the v1 hierarchies an environment's processes are tracked in, best first
SERVERS_DIR = "servers"  # under the state dir: one record per live server
_SERVER_LEAF = "server"  # a v2 root's leaf holding the server itself (limits.make_cgroup_v2_root)
_END_BOUND_S = 5.0  # how long ending a cgroup may take before it is left for the next start
_END_POLL_S = 0.005

_T = TypeVar("_T")


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class Cgroup:
    """One environment's cgroup, as far as ending its processes goes. `spare`: pids never signalled (the
    server, whose spawner thread may still wait in a cgroup it just spawned into; the supervisor)."""

    __slots__ = ("kind", "path", "spare")

    def __init__(self, path: Path, kind: str, spare: Iterable[int] = ()):
        self.path = path
        self.kind = kind
        self.spare = frozenset(spare)

    def pids(self) -> list[int]:
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:  # removed, or never made
            return []
        return [pid for pid in map(int, text.split()) if pid not in self.spare]

    def kill(self) -> list[int]:
        """SIGKILL every process in it, once; returns those signalled. Repeat until none is left."""
        victims = self.pids()
        if not victims:
            return []
        if self.kind == V2:
            try:
                _write(self.path / "cgroup.kill", "1")
                return victims
            except OSError:
                pass  # no cgroup.kill before Linux 5.14: one by one
        frozen = False
        if self.kind == FREEZER:
            with contextlib.suppress(OSError):
                _write(self.path / "freezer.state", "FROZEN")
                frozen = True
                victims = self.pids()  # none of them can fork any more
        try:
            for pid in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        finally:
            if frozen:  # a frozen process dies of its SIGKILL only once thawed
                with contextlib.suppress(OSError):
                    _write(self.path / "freezer.state", "THAWED")
        return victims

    def remove(self) -> bool:
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    def end(self, bound_s: float = _END_BOUND_S) -> set[int]:
        """Blocking: kill until empty (bounded), for the supervisor and for start-up clean-up."""
        ended: set[int] = set()
        deadline = time.monotonic() + bound_s
        while True:
            victims = self.kill()
            if not victims or time.monotonic() > deadline:
                return ended
            ended.update(victims)
            time.sleep(_END_POLL_S)


# Detection ------------------------------------------------------------------------------------------------


def make_v1_tracking_root(
    server_id: str, cgroup_fs: Path = CGROUP_FS, kinds: Iterable[str] = _V1_TRACKING
) -> tuple[Path, str] | None:
    """`<hierarchy>/rapidboot-<id>/` in the first v1 hierarchy (freezer, else pids) where the server may
    make cgroups, with the hierarchy's kind; None where there is none (cgroup v2 only, or no rights)."""
    for kind in kinds:
        hierarchy = cgroup_fs / kind
        if not (hierarchy / "tasks").exists():  # not a v1 hierarchy
            continue
        remove_stale_roots(hierarchy)
        root = hierarchy / f"rapidboot-{server_id}"
        try:
            root.mkdir()
        except OSError:
            continue
        try:
            probe = root / "probe"
            probe.mkdir()
            probe.rmdir()
        except OSError:
            with contextlib.suppress(OSError):
                root.rmdir()
            continue
        return root, kind
    return None


def remove_stale_roots(hierarchy: Path) -> None:
    """Roots of servers that are gone: only what is empty (rmdir fails on a cgroup with processes), so
    this never ends anyone's processes; ending them is the state dir's business (`end_dead_servers`)."""
    with contextlib.suppress(OSError):
        for root in hierarchy.glob("rapidboot-*"):
            pid = root.name.removeprefix("rapidboot-")
            if pid.isdigit() and not pid_alive(int(pid)):
                remove_tree(root)


def pid_alive(pid: int) -> bool:
    """Whether a process of that pid exists (signal 0: no /proc needed, so any host can tell)."""
    if pid <= 0:  # kill(0, ...) and kill(-1, ...) name groups, not one process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True


def remove_tree(root: Path) -> int:
    """Remove a cgroup and its (empty) children, with rmdir alone (its files are the kernel's). Returns
    how many were removed."""
    removed = 0
    with contextlib.suppress(OSError):
        for child in root.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
                    removed += 1
    with contextlib.suppress(OSError):
        root.rmdir()
        removed += 1
    return removed


def own_cgroup(hierarchy: str, self_cgroup: Path = Path("/proc/self/cgroup")) -> str:
    """This process's cgroup in one v1 hierarchy (`N:freezer:/path` of /proc/self/cgroup)."""
    for line in self_cgroup.read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if hierarchy in controllers.split(","):
            return path
    return "/"


# Spawning into a v1 cgroup ----------------------------------------------------------------------------------


class Spawner:
    """Spawns each runtime from one thread that is already in the runtime's cgroup (see the module)."""

    def __init__(self, root: Path, kind: str, cgroup_fs: Path = CGROUP_FS):
        self.root = root
        self.kind = kind
        self._home = cgroup_fs / kind / own_cgroup(kind).lstrip("/") / "tasks"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rapidboot-spawner")
        self._count = 0
        self._parked: Cgroup | None = None
        self._here: Cgroup | None = None  # the cgroup the thread is in (the parked one, or the last spawn's)
        self._closed = False
        self._executor.submit(self._park)

    def spawn(self, start: Callable[[], _T], into: Cgroup | None = None) -> Future[tuple[_T, Cgroup]]:
        """`(start(), the Cgroup it was born in)`, `start` run in the spawner thread: in the next
        environment's cgroup, or in `into`, one made by an earlier spawn (an environment's extensions are
        spawned before its runtime, and all are born in the same cgroup)."""
        if into is not None:
            return self._executor.submit(self._spawn_into, start, into)
        return self._executor.submit(self._spawn, start)

    def claim(self) -> Future[Cgroup]:
        """The next environment's cgroup, for a runtime that joins it itself (a SnapStart fork)."""
        return self._executor.submit(self._claim)

    def close(self) -> None:
        """Bring the spawner thread home and remove the cgroup it waited in."""
        self._closed = True
        with contextlib.suppress(RuntimeError):
            self._executor.submit(self._go_home)
        self._executor.shutdown(wait=True)

    def _spawn(self, start: Callable[[], _T]) -> tuple[_T, Cgroup]:
        cgroup = self._parked if self._parked is not None else self._park()
        self._parked = None
        try:
            result = start()
        except BaseException:
            self._parked = cgroup  # nothing was born in it: the next spawn takes it
            raise
        if not self._closed:
            with contextlib.suppress(RuntimeError):  # shutting down
                self._executor.submit(self._park)  # queued behind this job: off this spawn's path
        return result, cgroup

    def _spawn_into(self, start: Callable[[], _T], cgroup: Cgroup) -> tuple[_T, Cgroup]:
        """The thread goes back into `cgroup` (unless it is still there, as it is when nothing was spawned
        since), spawns, and parks again (queued behind this job, as in `_spawn`)."""
        if self._here is not cgroup:
            _write(cgroup.path / "tasks", str(threading.get_native_id()))
            self._here = cgroup
        try:
            return start(), cgroup
        finally:
            if not self._closed:
                with contextlib.suppress(RuntimeError):
                    self._executor.submit(self._park)

    def _claim(self) -> Cgroup:
        cgroup = self._parked if self._parked is not None else self._park()
        self._parked = None
        if not self._closed:
            with contextlib.suppress(RuntimeError):
                self._executor.submit(self._park)
        return cgroup

    def _park(self) -> Cgroup:
        """Make the next environment's cgroup and move this (the spawner) thread into it."""
        if self._parked is not None:
            if self._here is not self._parked:  # it left it for an earlier environment's (`_spawn_into`)
                _write(self._parked.path / "tasks", str(threading.get_native_id()))
                self._here = self._parked
            return self._parked
        self._count += 1
        path = self.root / f"env-{self._count}"
        path.mkdir()
        try:
            _write(path / "tasks", str(threading.get_native_id()))
        except OSError:
            path.rmdir()
            raise
        self._parked = Cgroup(path, self.kind, spare=(os.getpid(),))
        self._here = self._parked
        return self._parked

    def _go_home(self) -> None:
        with contextlib.suppress(OSError):
            _write(self._home, str(threading.get_native_id()))
        if self._parked is not None:
            self._parked.remove()
            self._parked = None


# The record in the state dir, and ending what a dead server left -------------------------------------------


def write_record(state_dir: Path, record: dict[str, Any]) -> tuple[Path, int]:
    """`servers/<pid>.json`, locked (flock) for as long as the returned descriptor, or a copy of it in the
    supervisor, is open."""
    directory = state_dir / SERVERS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record['pid']}.json"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a fresh file of our own pid: nobody else holds it
    os.write(fd, json.dumps(record).encode())
    return path, fd


def end_dead_servers(state_dir: Path) -> list[str]:
    """End what servers that used this state dir and died left behind; one line for each, saying what."""
    lines: list[str] = []
    directory = state_dir / SERVERS_DIR
    if not directory.is_dir():
        return lines
    for path in sorted(directory.glob("*.json")):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live server's (or its supervisor's)
            try:
                record = json.loads(path.read_bytes())
            except ValueError:
                record = {}
            summary = end_leftovers(record)
            path.unlink(missing_ok=True)
            lines.append(f"server pid {record.get('pid', path.stem)} ended without cleaning up: {summary}")
        finally:
            os.close(fd)
    return lines


def end_leftovers(record: dict[str, Any], groups: Iterable[int] = ()) -> str:
    """End every process of the record's environments (their cgroups' and the process `groups`), remove
    the cgroups and the scratch root; say what was done."""
    spare = {os.getpid(), int(record.get("pid", 0))}
    ended: set[int] = set()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
            ended.add(pgid)
    removed = 0
    for entry in record.get("cgroups", []):
        root = Path(entry["path"])
        if not root.is_dir():
            continue
        for child in sorted(p for p in root.iterdir() if p.is_dir()):
            if child.name != _SERVER_LEAF:  # v2: the server's own leaf, with no environment in it
                ended |= Cgroup(child, entry["kind"], spare).end()
        removed += remove_tree(root)
    scratch = record.get("scratch")
    scratch_note = ""
    if scratch and Path(scratch).exists():
        shutil.rmtree(scratch, ignore_errors=True)
        scratch_note = f", scratch directory {scratch} removed"
    return f"{len(ended)} processes ended, {removed} cgroups removed{scratch_note}"


# The supervisor ---------------------------------------------------------------------------------------------


class Supervisor:
    """The server's side: a pipe the supervisor reads until the server says `exit` or dies."""

    def __init__(self, process: subprocess.Popen[bytes], pipe_fd: int):
        self._process = process
        self._pipe = pipe_fd

    @classmethod
    def start(cls, record_path: Path, lock_fd: int) -> Supervisor:
        read_fd, write_fd = os.pipe()  # both non-inheritable: no runtime holds the write end open
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__, "supervise", str(record_path), str(lock_fd)],
                stdin=read_fd,
                stdout=subprocess.DEVNULL,
                pass_fds=(lock_fd,),
                start_new_session=True,  # not in the server's group: a group kill leaves it to clean up
            )
        finally:
            os.close(read_fd)
        return cls(process, write_fd)

    @property
    def pid(self) -> int:
        return self._process.pid

    def track_group(self, pgid: int) -> None:
        """Without cgroups: a runtime's process group, ended by the supervisor if the server dies."""
        self._send(f"+{pgid}\n")

    def untrack_group(self, pgid: int) -> None:
        self._send(f"-{pgid}\n")

    def close(self) -> None:
        """The server stopped in good order: the supervisor has nothing to do."""
        self._send("exit\n")
        with contextlib.suppress(OSError):
            os.close(self._pipe)
        try:
            self._process.wait(_END_BOUND_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _send(self, line: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self._pipe, line.encode())


def _supervise(record_path: Path, lock_fd: int) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        if line == b"exit\n":
            return 0
        with contextlib.suppress(ValueError):
            pgid = int(line[1:])
            if line.startswith(b"+"):
                groups.add(pgid)
            else:
                groups.discard(pgid)
    # End of file without `exit`: the server died without stopping its environments.
    try:
        record = json.loads(record_path.read_bytes())
    except (OSError, ValueError):
        record = {}
    summary = end_leftovers(record, groups)
    record_path.unlink(missing_ok=True)
    os.close(lock_fd)
    print(
        f"rapidboot: supervisor: the server (pid {record.get('pid', '?')}) died; {summary}",
        file=sys.stderr,
        flush=True,
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["supervise"]:
        raise SystemExit(_supervise(Path(sys.argv[2]), int(sys.argv[3])))
    raise SystemExit(f"usage: {sys.argv[0]} supervise RECORD LOCK_FD")
