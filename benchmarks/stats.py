"""The statistics every benchmark reports: medians and nearest-rank percentiles, never means of latency.

Machine noise is reported as the spread: the interquartile range relative to the median.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Summary:
    n: int
    median: float
    p25: float
    p75: float
    p90: float
    p99: float
    min: float
    max: float

    @property
    def spread(self) -> float:
        """(p75 - p25) / median: 0.05 means the middle half of the samples lies within 5 % of the median."""
        return (self.p75 - self.p25) / self.median if self.median else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "spread": self.spread}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least q of the samples at or below it."""
    if not values:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile {q} is outside 0-1")
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("summary of no samples")
    return Summary(
        n=len(values),
        median=statistics.median(values),
        p25=percentile(values, 0.25),
        p75=percentile(values, 0.75),
        p90=percentile(values, 0.90),
        p99=percentile(values, 0.99),
        min=min(values),
        max=max(values),
    )
