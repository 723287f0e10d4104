"""The suite's statistics: nearest-rank percentiles, medians, spread."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.benchmarks.stats import percentile, summarize


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100, shuffled below
    shuffled = values[50:] + values[:50]
    assert percentile(shuffled, 0.50) == 50.0
    assert percentile(shuffled, 0.90) == 90.0
    assert percentile(shuffled, 0.99) == 99.0
    assert percentile(shuffled, 1.0) == 100.0
    assert percentile(shuffled, 0.0) == 1.0
    assert percentile([7.0], 0.99) == 7.0


def test_summary_uses_median_not_mean() -> None:
    summary = summarize([1.0, 2.0, 3.0, 4.0, 1000.0])
    assert summary.median == 3.0
    assert (summary.min, summary.max, summary.n) == (1.0, 1000.0, 5)
    assert summary.p25 == 2.0 and summary.p75 == 4.0
    assert summary.spread == pytest.approx(2.0 / 3.0)
    assert set(summary.as_dict()) >= {"median", "p90", "p99", "min", "max", "spread", "n"}


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200))
def test_percentiles_are_ordered_samples(values: list[float]) -> None:
    s = summarize(values)
    assert s.min <= s.p25 <= s.median <= s.p75 <= s.max
    assert s.p75 <= s.p90 <= s.p99 <= s.max
    assert s.p90 in values and s.p99 in values
