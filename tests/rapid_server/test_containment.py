"""Ending an environment's cgroup, against a fake cgroup filesystem (real child processes, fake kernel
files): the v1 freezer's freeze-kill-thaw order, v2's cgroup.kill, the pids that are spared, and the
state dir's records of dead servers (ended) and live ones (left alone). One test uses the real v1
freezer, where this machine has one: a runtime is in its cgroup from its first instruction."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rapidboot.rapid_server.data_plane import containment
from rapidboot.rapid_server.data_plane.containment import FREEZER, PIDS, V2, Cgroup, Spawner, end_dead_servers


@pytest.fixture
def sleepers() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        started.append(child)
        return child

    yield start
    for child in started:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        child.wait()


class FakeKernel:
    """SIGKILLs as the kernel would see them: each is recorded with the freezer state of the moment, and
    the process is reaped and leaves its fake cgroup.procs."""

    def __init__(self) -> None:
        self.kills: list[tuple[int, str]] = []
        self._members: dict[int, tuple[Path, subprocess.Popen[bytes]]] = {}
        self._real_kill = os.kill

    def cgroup(
        self, path: Path, members: list[subprocess.Popen[bytes]], spared: tuple[int, ...] = ()
    ) -> Path:
        path.mkdir(parents=True)
        pids = [*(child.pid for child in members), *spared]
        (path / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in pids))
        for child in members:
            self._members[child.pid] = (path, child)
        return path

    def kill(self, pid: int, signum: int) -> None:
        if pid not in self._members:
            raise ProcessLookupError(pid)
        path, child = self._members.pop(pid)
        state = path / "freezer.state"
        self.kills.append((pid, state.read_text() if state.exists() else ""))
        self._real_kill(pid, signum)
        child.wait()
        procs = path / "cgroup.procs"
        procs.write_text("".join(f"{p}\n" for p in map(int, procs.read_text().split()) if p != pid))


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    fake = FakeKernel()
    monkeypatch.setattr(os, "kill", fake.kill)  # what containment calls; undone before `sleepers` ends
    return fake


def test_a_v1_freezer_cgroup_is_frozen_for_the_kill_and_thawed_after(
    tmp_path: Path, sleepers: Callable[[], subprocess.Popen[bytes]], kernel: FakeKernel
) -> None:
    members = [sleepers(), sleepers()]
    path = kernel.cgroup(tmp_path / "env-1", members, spared=(os.getpid(),))
    (path / "freezer.state").write_text("THAWED")

    ended = Cgroup(path, FREEZER, spare=[os.getpid()]).end()

    assert ended == {child.pid for child in members}
    assert sorted(kernel.kills) == sorted((child.pid, "FROZEN") for child in members)
    assert (path / "freezer.state").read_text() == "THAWED"
    assert all(child.returncode == -signal.SIGKILL for child in members)
    assert (path / "cgroup.procs").read_text().split() == [str(os.getpid())], "the spared pid stays"


def test_a_v1_pids_cgroup_is_killed_until_empty(
    tmp_path: Path, sleepers: Callable[[], subprocess.Popen[bytes]], kernel: FakeKernel
) -> None:
    members = [sleepers()]
    path = kernel.cgroup(tmp_path / "env-1", members)
    assert Cgroup(path, PIDS).end() == {members[0].pid}
    assert Cgroup(path, PIDS).pids() == []


def test_a_v2_cgroup_is_ended_by_cgroup_kill(
    tmp_path: Path, sleepers: Callable[[], subprocess.Popen[bytes]], kernel: FakeKernel
) -> None:
    members = [sleepers()]
    path = kernel.cgroup(tmp_path / "env-1", members)
    (path / "cgroup.kill").write_text("")
    cgroup = Cgroup(path, V2)
    assert cgroup.kill() == [members[0].pid]
    assert (path / "cgroup.kill").read_text() == "1"
    assert kernel.kills == [], "cgroup.kill does it all: no pid is signalled one by one"


def test_a_v2_cgroup_without_cgroup_kill_is_killed_pid_by_pid(
    tmp_path: Path, sleepers: Callable[[], subprocess.Popen[bytes]], kernel: FakeKernel
) -> None:
    members = [sleepers()]
    path = kernel.cgroup(tmp_path / "env-1", members)  # no cgroup.kill: a kernel before 5.14
    assert Cgroup(path, V2).end() == {members[0].pid}
    assert [pid for pid, _ in kernel.kills] == [members[0].pid]


def write_dead_record(state: Path, pid: int, record: dict[str, object]) -> Path:
    (state / "servers").mkdir(parents=True, exist_ok=True)
    path = state / "servers" / f"{pid}.json"
    path.write_text(json.dumps({"pid": pid, **record}))
    return path


def test_the_next_server_ends_what_a_dead_one_left_and_leaves_a_live_ones_alone(
    tmp_path: Path, sleepers: Callable[[], subprocess.Popen[bytes]], kernel: FakeKernel
) -> None:
    state = tmp_path / "state"
    root = tmp_path / "cgroup" / "freezer" / "rapidboot-111"
    dead_members = [sleepers()]
    kernel.cgroup(root / "env-1", dead_members)
    scratch = tmp_path / "rapidboot-111-scratch"
    (scratch / "fn-1").mkdir(parents=True)
    dead = write_dead_record(
        state, 111, {"cgroups": [{"path": str(root), "kind": PIDS}], "scratch": str(scratch)}
    )
    live_members = [sleepers()]
    live_root = tmp_path / "cgroup" / "freezer" / "rapidboot-222"
    kernel.cgroup(live_root / "env-1", live_members)
    live = write_dead_record(state, 222, {"cgroups": [{"path": str(live_root), "kind": PIDS}]})
    held = os.open(live, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # a live server holds its record
    try:
        lines = end_dead_servers(state)
    finally:
        os.close(held)

    assert len(lines) == 1
    assert lines[0].startswith("server pid 111 ended without cleaning up: 1 processes ended, ")
    assert lines[0].endswith(f", scratch directory {scratch} removed")
    assert dead_members[0].returncode == -signal.SIGKILL
    assert not scratch.exists() and not dead.exists()
    assert live.exists() and live_members[0].poll() is None, "a live server's environment is not touched"


def test_an_unreadable_record_is_removed_without_harm(tmp_path: Path) -> None:
    (tmp_path / "servers").mkdir()
    (tmp_path / "servers" / "9.json").write_text("{not json")
    assert end_dead_servers(tmp_path) == [
        "server pid 9 ended without cleaning up: 0 processes ended, 0 cgroups removed"
    ]
    assert list((tmp_path / "servers").iterdir()) == []


def test_v1_tracking_root_is_made_in_the_freezer_else_pids_hierarchy(tmp_path: Path) -> None:
    fs = tmp_path / "cgroup"
    (fs / "pids").mkdir(parents=True)
    (fs / "pids" / "tasks").write_text("")
    (fs / "freezer").mkdir()  # no `tasks`: not a v1 hierarchy (e.g. unmounted)
    stale = fs / "pids" / "rapidboot-999999999"  # no such process: removed, being empty
    stale.mkdir()
    assert containment.make_v1_tracking_root("42", fs) == (fs / "pids" / "rapidboot-42", PIDS)
    assert not stale.exists()
    assert containment.make_v1_tracking_root("43", tmp_path / "nothing") is None


FREEZER_FS = Path("/sys/fs/cgroup/freezer")


@pytest.mark.skipif(
    not (FREEZER_FS / "tasks").exists() or not os.access(FREEZER_FS, os.W_OK), reason="no v1 freezer to use"
)
def test_a_runtime_is_in_its_cgroup_from_its_first_instruction(tmp_path: Path) -> None:
    """What it prints as it starts, before anything could have moved it, is its environment's cgroup."""
    root = FREEZER_FS / f"rapidboot-test-{os.getpid()}"
    root.mkdir()
    spawner = Spawner(root, FREEZER)
    try:
        future = spawner.spawn(lambda: subprocess.Popen(["cat", "/proc/self/cgroup"], stdout=subprocess.PIPE))
        child, cgroup = future.result(10)
        output = child.communicate(timeout=10)[0].decode()
        assert f"freezer:/{root.name}/{cgroup.path.name}" in output, output
        assert cgroup.path.parent == root
        own = Path("/proc/self/cgroup").read_text()
        assert f"freezer:/{root.name}" not in own, "the server's own threads stay where they were"
    finally:
        spawner.close()
        containment.remove_tree(root)
    assert not root.exists()


def test_the_supervisor_runs_as_a_script_with_the_standard_library_only() -> None:
    """`python -I -S containment.py`: no package import may creep in."""
    script = Path(containment.__file__)
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(script)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0 and "usage:" in result.stderr, result.stderr


def test_a_supervisor_whose_server_dies_ends_its_process_groups(
    tmp_path: Path, sleepers: Callable[[], subprocess.Popen[bytes]]
) -> None:
    """Without cgroups, the groups the server told it of; the record goes, and the lock with it."""
    state = tmp_path / "state"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    record_path, lock_fd = containment.write_record(
        state, {"pid": 999999999, "cgroups": [], "scratch": str(scratch)}
    )
    child = sleepers()
    gone = sleepers()
    supervisor = containment.Supervisor.start(record_path, lock_fd)
    os.close(lock_fd)
    supervisor.track_group(child.pid)
    supervisor.track_group(gone.pid)
    supervisor.untrack_group(gone.pid)  # ended already as far as the server knows: not touched
    os.close(supervisor._pipe)  # the server dies
    assert supervisor._process.wait(10) == 0
    assert child.wait(10) == -signal.SIGKILL
    assert gone.poll() is None
    assert not record_path.exists() and not scratch.exists()
    shutil.rmtree(state)


def test_without_a_cgroup_the_startup_line_says_containment_is_best_effort(tmp_path: Path) -> None:
    from rapidboot.rapid_server.data_plane.limits import LimitsFactory

    description = LimitsFactory(None, tmp_path / "scratch").description
    assert description.endswith(
        "containment: the runtime's process group only, as no cgroup can be made here: a process that "
        "leaves it (setsid) can outlive its environment"
    ), description
