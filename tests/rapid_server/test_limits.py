"""An environment's memory and /tmp limits (`rapidboot.rapid_server.data_plane.limits`), with real directories
and real child processes: a scratch directory per environment, its overflow measured in bytes on disk, and a
process over its memory killed (by peak-RSS watching everywhere, by the kernel where a memory cgroup can be
made)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rapidboot.rapid_server.data_plane import limits as limits_module
from rapidboot.rapid_server.data_plane.limits import EnvironmentLimits, LimitsFactory, detect_limits

MIB = 1024 * 1024
# Allocates argv[1] MB with every page written, says so, then waits to be killed.
ALLOCATOR = (
    "import sys, time\n"
    "block = b'm' * (int(sys.argv[1]) * 1024 * 1024)\n"
    "print('allocated', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[LimitsFactory]:
    limits = LimitsFactory(None, tmp_path / "scratch")
    yield limits
    limits.close()


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    spawned: list[subprocess.Popen[bytes]] = []
    yield spawned
    for child in spawned:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()


def spawn_allocator(
    children: list[subprocess.Popen[bytes]], megabytes: int, limits: EnvironmentLimits
) -> subprocess.Popen[bytes]:
    """In its own process group, as the server spawns a runtime (the watcher kills the group)."""
    child = subprocess.Popen(
        [sys.executable, "-c", ALLOCATOR, str(megabytes)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    children.append(child)
    limits.started(child.pid)  # as the server does right after spawn
    if limits.joins_cgroup:
        limits.join_cgroup(child.pid)  # the server does this in a worker thread before the first invoke
    return child


def sample_until_killed(limits: EnvironmentLimits, child: subprocess.Popen[bytes], bound_s: float) -> bool:
    """Samples as the server does (every 100 ms; here 20 ms) until the child is gone or `bound_s` passes."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        limits.sample()
        if child.poll() is not None:
            return True
        time.sleep(0.02)
    return False


# /tmp ----------------------------------------------------------------------------------------------------


def test_each_environment_gets_its_own_scratch_directory(factory: LimitsFactory) -> None:
    first = factory.for_environment("fn", 128, 512)
    second = factory.for_environment("fn", 128, 512)
    other = factory.for_environment("other", 128, 512)
    paths = [first.scratch, second.scratch, other.scratch]
    assert len(set(paths)) == 3
    for path in paths:
        assert path.is_dir()
        assert list(path.iterdir()) == []

    (first.scratch / "nested").mkdir()
    (first.scratch / "nested" / "file").write_bytes(b"x" * 1000)
    first.release()
    assert not first.scratch.exists(), "released with its contents"
    assert second.scratch.is_dir() and other.scratch.is_dir(), "the others are untouched"


def test_factory_close_removes_every_scratch_directory(tmp_path: Path) -> None:
    factory = LimitsFactory(None, tmp_path / "root")
    limits = factory.for_environment("fn", 128, 512)
    (limits.scratch / "left-behind").write_bytes(b"x")
    factory.close()
    assert not (tmp_path / "root").exists()


def test_scratch_overflow_counts_bytes_on_disk(factory: LimitsFactory, tmp_path: Path) -> None:
    limits = factory.for_environment("fn", 128, 1)  # 1 MB of /tmp
    assert limits.scratch_overflow_bytes() == 0
    (limits.scratch / "under").write_bytes(os.urandom(MIB // 2))
    assert limits.scratch_overflow_bytes() == 0

    (limits.scratch / "deep" / "er").mkdir(parents=True)
    (limits.scratch / "deep" / "er" / "over").write_bytes(os.urandom(2 * MIB))
    overflow = limits.scratch_overflow_bytes()
    assert 1.5 * MIB <= overflow <= 1.5 * MIB + 64 * 1024, overflow

    # A sparse file holds no blocks, and a symlink out of /tmp is not followed.
    with open(limits.scratch / "sparse", "wb") as sparse:
        sparse.truncate(100 * MIB)
    outside = tmp_path / "outside"
    outside.write_bytes(os.urandom(4 * MIB))
    (limits.scratch / "link").symlink_to(outside)
    assert limits.scratch_overflow_bytes() <= overflow + 64 * 1024

    (limits.scratch / "deep" / "er" / "over").unlink()
    assert limits.scratch_overflow_bytes() == 0


def aged(directory: Path) -> None:
    """Stamp a directory's mtime an hour back, as one left alone for a while would be."""
    stamp = time.time() - 3600
    os.utime(directory, (stamp, stamp))


def counting_walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    walks: list[str] = []
    real_walk = limits_module._tree_size

    def counted(root: str) -> tuple[int, int]:
        walks.append(root)
        return real_walk(root)

    monkeypatch.setattr(limits_module, "_tree_size", counted)
    return walks


def test_an_empty_scratch_is_known_by_its_mtime_and_any_new_entry_is_seen(
    factory: LimitsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found empty once, /tmp is not walked again while its mtime stays; the first entry made in it, by
    any means, changes that mtime and brings the walk back (ScratchUsage)."""
    limits = factory.for_environment("fn", 128, 1)
    walks = counting_walks(monkeypatch)
    aged(limits.scratch)
    for _ in range(3):
        assert limits.scratch_overflow_bytes() == 0
    assert len(walks) == 1, "walked once, then known empty by its mtime"

    def a_file() -> None:
        (limits.scratch / "big").write_bytes(os.urandom(2 * MIB))

    def a_directory_then_a_file_in_it() -> None:
        (limits.scratch / "dir").mkdir()
        (limits.scratch / "dir" / "big").write_bytes(os.urandom(2 * MIB))

    def a_file_moved_in() -> None:
        outside = limits.scratch.parent / "moved-in"
        outside.write_bytes(os.urandom(2 * MIB))
        os.replace(outside, limits.scratch / "moved")

    for make in (a_file, a_directory_then_a_file_in_it, a_file_moved_in):
        aged(limits.scratch)
        assert limits.scratch_overflow_bytes() == 0
        walks.clear()
        make()
        assert limits.scratch_overflow_bytes() > MIB // 2, f"{make.__name__}: seen at once"
        assert walks, f"{make.__name__}: by a walk"
        shutil.rmtree(limits.scratch)
        limits.scratch.mkdir()


def test_a_scratch_changed_within_a_clock_tick_is_walked_every_time(
    factory: LimitsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An mtime less than a coarse clock tick older than the walk is not trusted (an entry made right after
    the walk could carry the same stamp); one in the future, least of all."""
    limits = factory.for_environment("fn", 128, 1)
    walks = counting_walks(monkeypatch)
    later = time.time() + 3600
    os.utime(limits.scratch, (later, later))
    for _ in range(3):
        assert limits.scratch_overflow_bytes() == 0
    assert len(walks) == 3


# Memory --------------------------------------------------------------------------------------------------


def test_description_says_rss_watching_without_a_cgroup(factory: LimitsFactory) -> None:
    assert factory.description.startswith("memory limits: peak-RSS watching")


def test_watched_memory_kills_a_process_over_its_limit(
    factory: LimitsFactory, children: list[subprocess.Popen[bytes]]
) -> None:
    limits = factory.for_environment("fn", 128, 512)
    child = spawn_allocator(children, 300, limits)
    assert sample_until_killed(limits, child, 20.0), "a process at 300 MB of a 128 MB limit was not killed"
    assert child.returncode == -signal.SIGKILL
    assert limits.out_of_memory
    assert limits.peak_mb == 128, "after a kill for memory, Max Memory Used is the limit"


def test_watched_memory_leaves_a_process_under_its_limit(
    factory: LimitsFactory, children: list[subprocess.Popen[bytes]]
) -> None:
    limits = factory.for_environment("fn", 128, 512)
    child = spawn_allocator(children, 40, limits)
    assert child.stdout is not None
    assert child.stdout.readline() == b"allocated\n"
    for _ in range(5):
        limits.sample()
    assert child.poll() is None
    assert not limits.out_of_memory
    assert 40 <= limits.peak_mb < 128, limits.peak_mb
    limits.release()


def test_watched_memory_counts_the_whole_process_tree(
    factory: LimitsFactory, children: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Two processes of 80 MB each: neither alone is over 128 MB, together they are."""
    script = tmp_path / "pair.py"
    script.write_text(
        "import subprocess, sys, time\n"
        f"helper = subprocess.Popen([sys.executable, '-c', {ALLOCATOR!r}, '80'])\n"
        "block = b'm' * (80 * 1024 * 1024)\n"
        "time.sleep(60)\n"
    )
    limits = factory.for_environment("fn", 128, 512)
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, start_new_session=True)
    children.append(child)
    limits.started(child.pid)
    assert sample_until_killed(limits, child, 20.0), "160 MB across a process tree went unnoticed"
    assert limits.out_of_memory


def test_cgroup_memory_is_enforced_by_the_kernel(children: list[subprocess.Popen[bytes]]) -> None:
    try:
        factory = detect_limits(f"{os.getpid()}", "cgroup")
    except OSError as error:
        pytest.skip(f"no memory cgroup can be created here: {error}")
    try:
        assert factory.description.startswith("memory limits: memory cgroup (")
        limits = factory.for_environment("fn", 128, 512)
        child = spawn_allocator(children, 300, limits)
        child.wait(20)
        assert child.returncode == -signal.SIGKILL
        assert limits.out_of_memory
        assert limits.peak_mb == 128
        limits.release()
    finally:
        factory.close()
    assert not Path(f"/sys/fs/cgroup/memory/rapidboot-{os.getpid()}").exists()


def test_rss_enforcement_makes_no_cgroup() -> None:
    factory = detect_limits(f"{os.getpid()}", "rss")
    try:
        assert factory.description.startswith("memory limits: peak-RSS watching")
        assert not Path(f"/sys/fs/cgroup/memory/rapidboot-{os.getpid()}").exists()
    finally:
        factory.close()
