"""The report: results.json (schema, machine, ratios), report.md (the tables) and the PNG charts."""

from __future__ import annotations

import json
from pathlib import Path

from rapidboot.benchmarks import report
from rapidboot.benchmarks.machine import cpu_model, describe
from rapidboot.benchmarks.results import OURS, PEER, REFERENCE, Check, Entry, Results, Row


def sample_results() -> Results:
    rows = [
        Row(
            "coldstart",
            "coldstart.trivial",
            "cold start, trivial handler",
            "ms",
            [
                Entry("rapidboot", OURS, [12.0, 13.0, 14.0]),
                Entry("awslambdaric", PEER, [30.0, 32.0, 31.0]),
                Entry("floor", REFERENCE, [1.0, 2.0, 3.0]),  # faster, but not a peer
            ],
            note="rapidboot is 6.50 x the floor",
        ),
        Row(
            "warm",
            "warm.1KB",
            "warm invoke, 1 KB event",
            "ms",
            [
                Entry("rapidboot", OURS, [0.3, 0.4, 0.5, 2.0]),
                Entry("awslambdaric", PEER, [0.5, 0.6, 0.7, 3.0]),
            ],
            params={"percentiles": True, "payload_bytes": 1100},
        ),
    ]
    for clients, ours, ric in ((1, 3000.0, 2000.0), (8, 4000.0, 2500.0)):
        rows.append(
            Row(
                "throughput",
                f"throughput.rate.{clients}",
                f"throughput, {clients} clients",
                "invokes/s",
                [Entry("rapidboot", OURS, [ours, ours + 10]), Entry("awslambdaric", PEER, [ric, ric + 10])],
                higher_is_better=True,
                params={"kind": "rate", "clients": clients},
            )
        )
        rows.append(
            Row(
                "throughput",
                f"throughput.latency.{clients}",
                f"latency with {clients} clients",
                "ms",
                [Entry("rapidboot", OURS, [0.3, 0.9]), Entry("awslambdaric", PEER, [0.4, 1.2])],
                params={"kind": "latency", "clients": clients, "percentiles": True},
            )
        )
    return Results(
        command="rapidboot bench --quick",
        quick=True,
        started="2025-01-01 00:00 UTC",
        machine=describe("v20.0.0"),
        rows=rows,
        checks=[
            Check(
                "Init Duration agrees with our clock within 1 ms",
                "rapidboot serve + rapidboot",
                True,
                "0.4 ms",
            )
        ],
        skipped=["RIE: not measured; add it with `--rie PATH`"],
        elapsed_s=12.0,
    )


def test_ratio_is_against_the_best_peer_never_a_reference() -> None:
    results = sample_results()
    cold = results.rows[0]
    assert cold.best_peer() is cold.entries[1]
    assert cold.ratio() == 13.0 / 31.0
    rate = results.rows[2]  # higher is better: the best peer is the fastest
    assert rate.ratio() == 3005.0 / 2005.0
    assert Row("x", "x", "x", "ms", [Entry("rapidboot", OURS, [1.0])]).ratio() is None


def test_results_json_schema_and_round_trip(tmp_path: Path) -> None:
    results = sample_results()
    report.write(results, tmp_path, draw=False)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["schema"] == 1 and data["quick"] is True
    machine = data["machine"]
    assert {"cpu", "cores", "python", "platform", "packages"} <= set(machine)
    assert "rapidboot" in machine["packages"]
    cold = data["rows"][0]
    assert cold["best_peer"] == "awslambdaric"
    assert cold["ratio_to_best_peer"] == round(13.0 / 31.0, 4)
    entry = cold["entries"][0]
    assert entry["samples"] == [12.0, 13.0, 14.0]
    assert entry["summary"]["median"] == 13.0 and entry["summary"]["max"] == 14.0
    assert data["checks"][0]["passed"] is True
    loaded = Results.load(tmp_path / "results.json")
    assert loaded.to_json() == data


def test_report_md_has_the_tables(tmp_path: Path) -> None:
    report.write(sample_results(), tmp_path, draw=False)
    text = (tmp_path / "report.md").read_text()
    assert "`rapidboot bench --quick`" in text
    row = "| cold start, trivial handler (ms) | 13.0 (12.0-14.0) | awslambdaric 31.0 (30.0-32.0) |"
    assert row + " 0.42 vs awslambdaric" in text
    assert "floor 2.00 (1.00-3.00)" in text
    assert "### warm invoke, 1 KB event (ms)" in text  # the percentile table
    assert "| rapidboot | 4 | 0.450 | 2.00 | 2.00 | 2.00 | 0.300 |" in text
    assert "ok: Init Duration agrees" in text
    assert "add it with `--rie PATH`" in text


def test_terminal_table_names_the_ratio() -> None:
    table = report.terminal_table(sample_results())
    assert "0.42 vs awslambdaric" in table
    assert "1.50 vs awslambdaric" in table  # throughput: higher is better
    assert table.splitlines()[-1].startswith("ok   Init Duration agrees")


def test_charts_are_written(tmp_path: Path) -> None:
    charts, missing = report.write(sample_results(), tmp_path)
    assert missing is None
    assert sorted(chart.name for chart in charts) == ["coldstart.png", "throughput.png", "warm_latency.png"]
    for chart in charts:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert chart.stat().st_size > 5000
    assert "![coldstart](coldstart.png)" in (tmp_path / "report.md").read_text()


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU @ 3.0GHz\n")
    assert cpu_model(cpuinfo) == "Example CPU @ 3.0GHz"
