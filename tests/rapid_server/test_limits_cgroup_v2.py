"""cgroup v2 memory limits against a fake cgroup filesystem (this machine mounts v1, so the kernel's v2
cannot run here): which files are written with what, when the server must move itself into a leaf, how an
OOM kill is read back, and that any refusal puts everything back and falls back to RSS watching."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import pytest

from rapidboot.rapid_server.data_plane.limits import LimitsFactory, make_cgroup_v2_root

MIB = 1024 * 1024
SERVER_PID = 4242


def fake_cgroup_fs(tmp_path: Path, own: str, controllers: str = "cpu io memory pids") -> Path:
    fs = tmp_path / "cgroup"
    base = fs / own.lstrip("/")
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text(controllers + "\n")
    (base / "cgroup.subtree_control").write_text("")
    (base / "cgroup.procs").write_text(f"{SERVER_PID}\n")
    (tmp_path / "self-cgroup").write_text(f"0::{own}\n")
    return fs


def make_root(tmp_path: Path, fs: Path) -> Path | None:
    return make_cgroup_v2_root("77", fs, tmp_path / "self-cgroup", SERVER_PID)


@pytest.fixture
def cgroupfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Directories under the fake filesystem behave as cgroups: a new one comes with the kernel's files,
    and rmdir removes one (files and all) unless it has child cgroups or processes."""
    fs = tmp_path / "cgroup"
    original_mkdir, original_rmdir = Path.mkdir, Path.rmdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        original_mkdir(self, *args, **kwargs)
        if fs in self.parents:
            (self / "cgroup.controllers").write_text("memory\n")
            (self / "cgroup.subtree_control").write_text("")
            (self / "cgroup.procs").write_text("")

    def rmdir(self: Path) -> None:
        if fs not in self.parents:
            original_rmdir(self)
            return
        if any(child.is_dir() for child in self.iterdir()):
            raise OSError(errno.ENOTEMPTY, "has child cgroups", str(self))
        if (self / "cgroup.procs").read_text().strip():
            raise OSError(errno.EBUSY, "has processes", str(self))
        shutil.rmtree(self)

    original_write_text = Path.write_text

    def write_text(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        if fs in self.parents and self.name == "cgroup.procs":  # a move: out of every other cgroup
            for procs in fs.rglob("cgroup.procs"):
                others = [pid for pid in procs.read_text().split() if pid != data.strip()]
                original_write_text(procs, "\n".join(others))
        return original_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(Path, "rmdir", rmdir)
    monkeypatch.setattr(Path, "write_text", write_text)


@pytest.mark.usefixtures("cgroupfs")
def test_in_a_delegated_cgroup_the_server_moves_into_a_leaf_and_enables_memory(tmp_path: Path) -> None:
    fs = fake_cgroup_fs(tmp_path, "/user.slice/app.scope")
    base = fs / "user.slice" / "app.scope"
    root = make_root(tmp_path, fs)
    assert root == base / "rapidboot-77"
    assert (root / "server" / "cgroup.procs").read_text() == str(SERVER_PID)
    assert (base / "cgroup.procs").read_text() == ""  # moved: no process left in the delegating cgroup
    assert (base / "cgroup.subtree_control").read_text() == "+memory"
    assert (root / "cgroup.subtree_control").read_text() == "+memory"

    factory = LimitsFactory(root, tmp_path / "scratch", cgroup_version=2)
    assert factory.description.startswith(f"memory limits: memory cgroup (v2 memory.max under {root})")
    limits = factory.for_environment("fn", 256, 512)
    environment = root / "fn-1"
    assert (environment / "memory.max").read_text() == str(256 * MIB)
    assert (environment / "memory.swap.max").read_text() == "0"
    assert (environment / "memory.oom.group").read_text() == "1"
    limits.started(SERVER_PID + 1)
    assert limits.joins_cgroup
    limits.join_cgroup(SERVER_PID + 1)
    assert (environment / "cgroup.procs").read_text() == str(SERVER_PID + 1)

    assert not limits.out_of_memory  # no memory.events yet
    (environment / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n")
    assert not limits.out_of_memory
    (environment / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n")
    assert limits.out_of_memory
    assert limits.peak_mb == 256  # the limit itself, as Lambda reports an OOM


@pytest.mark.usefixtures("cgroupfs")
def test_at_the_namespace_root_the_server_stays_where_it_is(tmp_path: Path) -> None:
    fs = fake_cgroup_fs(tmp_path, "/")
    root = make_root(tmp_path, fs)
    assert root == fs / "rapidboot-77"
    assert not (root / "server").exists()
    assert (fs / "cgroup.subtree_control").read_text() == "+memory"


def test_without_the_memory_controller_there_is_no_cgroup(tmp_path: Path) -> None:
    fs = fake_cgroup_fs(tmp_path, "/user.slice/app.scope", controllers="cpu pids")
    assert make_root(tmp_path, fs) is None
    assert not (fs / "user.slice" / "app.scope" / "rapidboot-77").exists()


@pytest.mark.usefixtures("cgroupfs")
def test_a_refused_step_puts_the_server_back(tmp_path: Path) -> None:
    """The kernel refuses `+memory` on a cgroup that still has other processes (EBUSY; here: the file
    cannot be read or written): the server goes back to its own cgroup and nothing of ours is left."""
    fs = fake_cgroup_fs(tmp_path, "/user.slice/app.scope")
    base = fs / "user.slice" / "app.scope"
    (base / "cgroup.subtree_control").unlink()
    (base / "cgroup.subtree_control").mkdir()  # reading or writing it fails, as a refusal would
    assert make_root(tmp_path, fs) is None
    assert (base / "cgroup.procs").read_text() == str(SERVER_PID)
    assert not (base / "rapidboot-77").exists()


def test_a_process_outside_the_unified_hierarchy_gets_none(tmp_path: Path) -> None:
    fs = fake_cgroup_fs(tmp_path, "/x")
    (tmp_path / "self-cgroup").write_text("4:memory:/x\n")
    assert make_root(tmp_path, fs) is None
