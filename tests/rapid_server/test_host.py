"""The host's Linux features (`rapidboot.rapid_server.host`), read once from RAPIDBOOT_PORTABLE, and what each
part of the server does without them: no cgroup made, no peak read, no peer check, a runtime's exit polled."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from rapidboot.rapid_server.config import ConfigError
from rapidboot.rapid_server.data_plane.limits import detect_limits
from rapidboot.rapid_server.data_plane.peers import detect_peer_check
from rapidboot.rapid_server.data_plane.process import RuntimeProcess
from rapidboot.rapid_server.host import Host

PORTABLE = Host.detect({"RAPIDBOOT_PORTABLE": "1"})


def test_portable_forces_every_fallback() -> None:
    assert Host(pidfd=False, proc=False, cgroups=False, forced=True) == PORTABLE
    assert PORTABLE.lacking == "RAPIDBOOT_PORTABLE=1: no cgroups, /proc or pidfds used"


@pytest.mark.parametrize("value", ["", "0", " 0 "])
def test_unset_or_zero_detects_this_host(value: str) -> None:
    host = Host.detect({"RAPIDBOOT_PORTABLE": value})
    assert not host.forced
    assert host.cgroups == sys.platform.startswith("linux")


@pytest.mark.parametrize("value", ["yes", "true", "2"])
def test_any_other_value_is_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError, match=f"RAPIDBOOT_PORTABLE='{value}': must be 1"):
        Host.detect({"RAPIDBOOT_PORTABLE": value})


def test_portable_limits_make_no_cgroup_and_measure_nothing(tmp_path: Path) -> None:
    factory = detect_limits("portable-test", "auto", host=PORTABLE)
    try:
        assert factory.record()["cgroups"] == []
        assert factory.not_enforced()[:2] == [
            "memory limits",
            "peak memory (REPORT's Max Memory Used shows 0 MB)",
        ]
        limits = factory.for_environment("f", 128, 512)
        assert limits.cgroup is None
        assert not limits.joins_cgroup
        child = subprocess.Popen([sys.executable, "-c", "b = b'm' * (64 << 20)"], start_new_session=True)
        limits.started(child.pid)
        child.wait(30)
        limits.sample()
        assert (limits.peak_mb, limits.out_of_memory) == (0, False)
        limits.release()
    finally:
        factory.close()


@pytest.mark.parametrize(("enforcement", "needs"), [("cgroup", "cgroups"), ("rss", "/proc")])
def test_an_enforcement_the_host_cannot_give_is_refused(enforcement: str, needs: str) -> None:
    with pytest.raises(ConfigError, match=f"--memory-enforcement {enforcement}") as refused:
        detect_limits("portable-test", enforcement, host=PORTABLE)
    assert needs in str(refused.value)


def test_portable_peers_are_not_checked() -> None:
    check = detect_peer_check(PORTABLE)
    assert not check.enabled
    assert check.description.startswith("Runtime API: open to any local process")


def test_without_pidfds_an_exit_is_seen_by_polling() -> None:
    async def run() -> tuple[int, bool]:
        popen = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
        process = RuntimeProcess(popen, pidfd=False)
        return await asyncio.wait_for(process.wait(), 30), process.has_exited()

    assert asyncio.run(run()) == (7, True)
