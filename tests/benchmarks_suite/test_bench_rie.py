"""`rapidboot bench --rie PATH` against a stand-in emulator with the real one's command line (fake_rie.py)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from rapidboot.benchmarks import peers, suite
from rapidboot.benchmarks.results import Results

FAKE_RIE = Path(__file__).with_name("fake_rie.py")


@pytest.fixture
def rie(tmp_path: Path) -> Path:
    binary = tmp_path / "aws-lambda-rie"
    binary.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_RIE}" "$@"\n')
    binary.chmod(0o755)
    return binary


def test_rie_is_measured_as_a_second_server(rie: Path, tmp_path: Path) -> None:
    found = peers.discover(rie=rie)
    assert not any(line.startswith("RIE") for line in found.skipped)
    found.runtimes = [runtime for runtime in found.runtimes if runtime.name == "rapidboot"]  # keep it short
    plan = suite.Plan(
        init_rounds=2,
        warm_samples={"1 KB": 4},
        warm_warmups={"1 KB": 1},
        python_floor_samples=4,
        python_floor_warmups=1,
        python_floor_batches=2,
        python_floor_batch=2,
        back_to_back_rounds=2,
        back_to_back_batch=3,
        back_to_back_warmups=1,
    )
    stream = io.StringIO()
    results = Results("rapidboot bench --rie", True, "now", {})
    suite.run(["init", "warm"], found, plan, suite.Progress(stream, 2), results, tmp_path)

    by_key = {row.key: row for row in results.rows}
    warm, on_emulator = by_key["warm.1KB"], by_key["warm.1KB.rie"]
    assert [entry.name for entry in warm.entries] == ["rapidboot", "rie+rapidboot", "floor"]
    assert all(len(entry.samples) == 4 for entry in warm.entries)
    assert warm.floor_ratio() is not None and warm.best_peer() is None  # our bootstrap on RIE is no peer
    assert warm.params["client"] == suite.RAW_CLIENT
    # The runtimes alone on the emulator: our bootstrap is "ours" there.
    assert on_emulator.label == "warm invoke, 1 KB event, the runtimes alone on AWS's emulator"
    assert [(e.name, e.role) for e in on_emulator.entries] == [
        ("rie+rapidboot", "ours"),
        ("floor", "reference"),
    ]
    # Back to back: every contender, rounds x batch samples each (the warm-ups of each turn discarded).
    bursts = by_key["warm.1KB.back_to_back"]
    assert bursts.label == "warm invoke, 1 KB event, back to back (3 a turn)"
    assert [(e.name, len(e.samples)) for e in bursts.entries] == [
        ("rapidboot", 6),
        ("rie+rapidboot", 6),
        ("floor", 6),
    ]
    assert "x the floor" in bursts.note
    # Beside the Python server floor: the same server, python_floor.py's relay, the floor; both servers' CPU.
    python_floor = by_key["warm.1KB.python_floor"]
    assert [(e.name, e.role, len(e.samples)) for e in python_floor.entries] == [
        ("rapidboot", "ours", 4),
        (suite.PYTHON_FLOOR, "reference", 4),
        ("floor", "reference", 4),
    ]
    server_cpu_us = python_floor.params["server_cpu_us"]
    assert set(server_cpu_us) == {"rapidboot", suite.PYTHON_FLOOR} and all(
        v > 0 for v in server_cpu_us.values()
    )
    assert "issue 18's target 1.6 x" in python_floor.note
    reported = by_key["init.report"]
    emulated = reported.entry("rie+rapidboot")
    assert emulated is not None and len(emulated.samples) == 2 and all(v > 0 for v in emulated.samples)
    assert reported.best_peer() is None  # an emulator's Init Duration is shown, never the ratio's base
    subjects = [check.subject for check in results.checks]
    assert subjects == ["rapidboot serve + rapidboot", "AWS's emulator + rapidboot"]
    assert "[1/2 init]" in stream.getvalue() and "[2/2 warm]" in stream.getvalue()


def test_the_emulator_is_found_through_rie_bin(rie: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIE_BIN", str(rie))
    assert peers.discover().rie == rie.resolve()
    assert suite.build_parser().parse_args([]).rie is None  # no flag needed
    monkeypatch.setenv("RIE_BIN", str(rie.with_name("missing")))
    with pytest.raises(ValueError, match=r"RIE_BIN=.*missing: not an executable file"):
        peers.discover()
