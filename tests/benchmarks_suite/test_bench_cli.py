"""`rapidboot bench`: argument handling, and the how-to line for each peer that is not installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rapidboot.benchmarks import peers, suite
from rapidboot.rapid_server import cli


@pytest.fixture(autouse=True)
def no_peer_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests decide which peers exist; the variables CI sets for the real ones must not leak in."""
    for name in ("RIE_BIN", "NODE22", "NODE_RIC"):
        monkeypatch.delenv(name, raising=False)


def test_unknown_benchmark_names_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--only", "coldstart,nope"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--only nope: unknown benchmark" in error
    assert "coldstart, init, warm, throughput, scaleout, memory, layers" in error


def test_only_accepts_repeats_and_commas_in_suite_order() -> None:
    parser = suite.build_parser()
    args = parser.parse_args(["--only", "layers,coldstart", "--only", "warm"])
    assert suite.parse_only(args.only, parser) == ["coldstart", "warm", "layers"]
    assert suite.parse_only(None, parser) == list(suite.BENCHMARKS)


def test_defaults_and_flags() -> None:
    args = suite.build_parser().parse_args(["--quick", "--rie", "/x/rie", "--node-ric", "--out", "o"])
    assert args.quick and args.node_ric
    assert args.rie == Path("/x/rie") and args.out == Path("o")
    assert suite.build_parser().parse_args([]).out == Path("bench-results")


def test_rie_that_is_not_executable_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--rie", str(tmp_path / "missing"), "--only", "layers"])
    assert exit_info.value.code == 2
    assert "not an executable file" in capsys.readouterr().err


def test_missing_peers_are_skipped_with_how_to(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name in ("awslambdaric", "boto3") else real_find_spec(name)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    found = peers.discover()
    assert [runtime.name for runtime in found.runtimes] == ["rapidboot"]
    assert not found.boto3
    assert any("`pip install awslambdaric`" in line for line in found.skipped)
    assert any("`pip install boto3`" in line for line in found.skipped)
    assert any("--rie PATH" in line for line in found.skipped)
    assert any("--node-ric" in line for line in found.skipped)


def test_node_ric_how_to_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no node
    command, missing = peers.find_node_ric(tmp_path)
    assert command is None and "`node` is not on PATH" in missing and "npm install aws-lambda-ric" in missing

    node = tmp_path / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    command, missing = peers.find_node_ric(tmp_path)  # node, but not the package
    assert command is None and "`npm install aws-lambda-ric`" in missing

    binary = tmp_path / "node_modules" / ".bin" / "aws-lambda-ric"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    command, missing = peers.find_node_ric(tmp_path)
    assert command == [str(node), str(binary)] and missing == ""


def test_node_ric_requested_but_missing_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    found = peers.discover(node_ric=True)
    assert "node-ric" not in [runtime.name for runtime in found.runtimes]
    assert any(line.startswith("node-ric: skipped") for line in found.skipped)


def test_quick_run_end_to_end(tmp_path: Path) -> None:
    """A real `rapidboot bench --quick --only layers` (the cheapest benchmark): table, report, JSON."""
    out = tmp_path / "out"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "rapidboot.rapid_server",
            "bench",
            "--quick",
            "--only",
            "layers",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "layer merge, first time, 20 MB (ms)" in completed.stdout
    assert "[1/1 layers]" in completed.stderr  # the progress line
    assert (out / "results.json").stat().st_size > 0
    text = (out / "report.md").read_text()
    assert "| layer merge, cached (an environment's wait) (ms) |" in text


def test_node_ric_from_node22_and_node_ric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node, entry = tmp_path / "node", tmp_path / "index.mjs"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    entry.write_text("")
    monkeypatch.setenv("NODE22", str(node))
    monkeypatch.setenv("NODE_RIC", str(entry))
    assert "node-ric" not in [runtime.name for runtime in peers.discover().runtimes]  # asked for only
    found = peers.discover(node_ric=True)
    (node_ric,) = [runtime for runtime in found.runtimes if runtime.name == "node-ric"]
    assert node_ric.argv("app.handler") == [str(node), str(entry), "app.handler"]
    monkeypatch.delenv("NODE_RIC")
    with pytest.raises(ValueError, match="NODE22 and NODE_RIC go together"):
        peers.discover(node_ric=True)
