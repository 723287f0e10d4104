"""The metrics' recording (observability/metrics.py) and `rapidboot top`'s arithmetic (observability/top.py),
without a server: what an invoke adds, what stays bounded, and the quantiles read from buckets."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from rapidboot.rapid_server.observability import metrics as metrics_module
from rapidboot.rapid_server.observability.metrics import DURATION_BOUNDS_S, Metrics
from rapidboot.rapid_server.observability.top import Reading, Scrape, parse, quantile, render


def environment(name: str = "fn", pid: int = 42) -> Any:
    return SimpleNamespace(config=SimpleNamespace(name=name, memory_mb=128), pid=pid)


def invoke(metrics: Metrics, request_id: str, duration_ms: float, error: bool = False) -> None:
    metrics.invoked(environment(), request_id, duration_ms, 20, None, error, None, None)


def test_an_invoke_adds_to_its_function_figures_and_bucket() -> None:
    metrics = Metrics(lambda name: 1)
    invoke(metrics, "a", 0.3)
    invoke(metrics, "b", 1.0)  # exactly a bound: Prometheus' `le` counts it in that bucket
    invoke(metrics, "c", 2_000_000.0, error=True)  # past the largest bound
    figures = metrics.functions["fn"]
    assert (figures.invocations, figures.errors) == (3, 1)
    assert figures.duration_buckets[DURATION_BOUNDS_S.index(0.0005)] == 1
    assert figures.duration_buckets[DURATION_BOUNDS_S.index(0.001)] == 1
    assert figures.duration_buckets[-1] == 1
    assert figures.duration_sum_s == pytest.approx(2000.0013)
    assert [r[3] for r in metrics.recent] == ["a", "b", "c"]
    assert [r[0] for r in metrics.recent] == [1, 2, 3]


def test_the_console_keeps_bounded_invokes_and_output_tails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "_PENDING_TAILS", 4)
    metrics = Metrics(lambda name: 0)
    for n in range(metrics_module.RECENT_INVOCATIONS + 50):
        invoke(metrics, f"r{n}", 1.0)
    assert len(metrics.recent) == metrics_module.RECENT_INVOCATIONS
    assert metrics.recent[0][3] == "r50"
    line = b"x" * 1000
    for _ in range(20):
        metrics.output("noisy", line)
    invoke(metrics, "noisy", 1.0)
    tail = metrics.recent[-1][-1]
    assert metrics_module.TAIL_BYTES <= len(tail) <= 2 * metrics_module.TAIL_BYTES
    assert tail.endswith(line + b"\n")
    for n in range(10):  # output of invokes that never report: at most _PENDING_TAILS kept
        metrics.output(f"lost{n}", b"line")
    assert len(metrics._tails) == 4


def test_without_the_console_only_the_counters_are_kept() -> None:
    metrics = Metrics(lambda name: 0, keep_recent=False)
    invoke(metrics, "a", 1.0)
    assert metrics.functions["fn"].invocations == 1
    assert not metrics.recent
    assert not metrics.functions["fn"].series


def test_the_chart_gets_one_point_per_second_with_the_peaks() -> None:
    metrics = Metrics(lambda name: 3)
    invoke(metrics, "a", 2.0)
    invoke(metrics, "b", 4.0, error=True)
    (point,) = metrics.functions["fn"].series  # both in the same second (no clock moves that fast here)
    assert point[1:] == [2, 1, 6.0, 4.0, 3]


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.5, 0.001 + 0.001 / 3), (0.25, 0.001), (1.0, 0.002), (0.0, 0.0)],  # rank 2 of 3 in (1, 2] ms
)
def test_quantiles_interpolate_within_a_bucket(q: float, expected: float) -> None:
    buckets = {0.001: 1.0, 0.002: 4.0, math.inf: 4.0}  # cumulative
    assert quantile(q, buckets) == pytest.approx(expected)


def test_quantile_of_nothing_is_none_and_past_the_bounds_is_the_largest() -> None:
    assert quantile(0.5, {}) is None
    assert quantile(0.5, {0.001: 0.0, math.inf: 0.0}) is None
    assert quantile(0.99, {0.001: 0.0, 0.002: 0.0, math.inf: 5.0}) == 0.002


def test_top_renders_rates_and_window_quantiles() -> None:
    text = (
        '# TYPE lambda_invocations_total counter\nlambda_invocations_total{function="f"} 10.0\n'
        "# TYPE lambda_duration_seconds histogram\n"
        'lambda_duration_seconds_bucket{function="f",le="0.001"} 10.0\n'
        'lambda_duration_seconds_bucket{function="f",le="+Inf"} 10.0\n'
        'lambda_duration_seconds_count{function="f"} 10.0\nlambda_duration_seconds_sum{function="f"} 0.005\n'
        '# TYPE rapidboot_environments gauge\nrapidboot_environments{function="f",state="idle"} 2.0\n'
        'rapidboot_environments{function="f",state="busy"} 1.0\n'
    )
    now = parse(text)
    assert (now["f"].invocations, now["f"].idle, now["f"].busy) == (10.0, 2.0, 1.0)
    before = {"f": Reading(invocations=5.0, buckets={0.001: 5.0, math.inf: 5.0})}
    row = render("http://x", Scrape(0.0, before), Scrape(2.0, now), 2.0).splitlines()[3].split()
    assert row[:4] == ["f", "2.5", "10", "0"]  # 5 invokes in 2 s
    assert row[5:7] == ["0.50", "ms"]  # the interval's median, not marked as since-start
