"""The suite's raw results: rows of samples per contender, the checks, the machine; read and written as JSON.

A row is one measurement (cold start with a trivial handler, warm latency at 100 KB, ...). Its entries are
the contenders measured in the same run: ours, the peers, and references that are not peers (the floor).
The ratio is ours against the best peer of the row, so a report never compares numbers across runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rapidboot.benchmarks.stats import Summary, summarize

SCHEMA = 1
OURS = "ours"
PEER = "peer"
REFERENCE = "reference"  # shown for orientation (the floor), never the ratio's denominator
FLOOR = "floor"  # the reference entry that is the physical floor of its row (ours / floor is reported)


@dataclass(slots=True)
class Entry:
    name: str
    role: str
    samples: list[float]
    error: str = ""  # why this contender has no samples: it failed (a user's function that raises, ...)

    @property
    def summary(self) -> Summary:
        return summarize(self.samples)


@dataclass(slots=True)
class Row:
    benchmark: str
    key: str
    label: str
    unit: str
    entries: list[Entry]
    higher_is_better: bool = False
    comparable: bool = True  # False: the entries measure different things (no ratio)
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def entry(self, name: str) -> Entry | None:
        return next((entry for entry in self.entries if entry.name == name), None)

    def ours(self) -> Entry | None:
        return next((entry for entry in self.entries if entry.role == OURS), None)

    def best_peer(self) -> Entry | None:
        peers = [entry for entry in self.entries if entry.role == PEER and entry.samples]
        if not self.comparable or not peers:
            return None
        pick = max if self.higher_is_better else min
        return pick(peers, key=lambda entry: entry.summary.median)

    def floor_ratio(self) -> float | None:
        """Our median over the floor's, when the row has one (how far from what the machine allows)."""
        ours, floor = self.ours(), self.entry(FLOOR)
        if ours is None or floor is None or not ours.samples or not floor.samples:
            return None
        if floor.role != REFERENCE or floor.summary.median == 0:
            return None
        return ours.summary.median / floor.summary.median

    def ratio(self) -> float | None:
        """Our median over the best peer's (below 1 is better for times, above 1 for rates)."""
        ours, best = self.ours(), self.best_peer()
        if ours is None or best is None or not ours.samples or best.summary.median == 0:
            return None
        return ours.summary.median / best.summary.median


@dataclass(slots=True)
class Check:
    name: str
    subject: str
    passed: bool
    detail: str


@dataclass(slots=True)
class Results:
    command: str
    quick: bool
    started: str
    machine: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def benchmark_rows(self, benchmark: str) -> list[Row]:
        return [row for row in self.rows if row.benchmark == benchmark]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "command": self.command,
            "quick": self.quick,
            "started": self.started,
            "elapsed_s": round(self.elapsed_s, 1),
            "machine": self.machine,
            "skipped": self.skipped,
            "checks": [
                {"name": c.name, "subject": c.subject, "passed": c.passed, "detail": c.detail}
                for c in self.checks
            ],
            "rows": [_row_json(row) for row in self.rows],
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Results:
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{path}: results schema {data.get('schema')!r}, expected {SCHEMA}")
        return cls(
            command=data["command"],
            quick=data["quick"],
            started=data["started"],
            machine=data["machine"],
            rows=[
                Row(
                    benchmark=row["benchmark"],
                    key=row["key"],
                    label=row["label"],
                    unit=row["unit"],
                    entries=[
                        Entry(e["name"], e["role"], e["samples"], e.get("error", "")) for e in row["entries"]
                    ],
                    higher_is_better=row["higher_is_better"],
                    comparable=row["comparable"],
                    params=row["params"],
                    note=row["note"],
                )
                for row in data["rows"]
            ],
            checks=[Check(c["name"], c["subject"], c["passed"], c["detail"]) for c in data["checks"]],
            skipped=data["skipped"],
            elapsed_s=data["elapsed_s"],
        )


def _row_json(row: Row) -> dict[str, Any]:
    best = row.best_peer()
    ratio = row.ratio()
    return {
        "benchmark": row.benchmark,
        "key": row.key,
        "label": row.label,
        "unit": row.unit,
        "higher_is_better": row.higher_is_better,
        "comparable": row.comparable,
        "params": row.params,
        "note": row.note,
        "best_peer": best.name if best else None,
        "ratio_to_best_peer": round(ratio, 4) if ratio is not None else None,
        "ratio_to_floor": round(floor, 4) if (floor := row.floor_ratio()) is not None else None,
        "entries": [_entry_json(entry) for entry in row.entries],
    }


def _entry_json(entry: Entry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": entry.name,
        "role": entry.role,
        "summary": {k: round(v, 4) for k, v in entry.summary.as_dict().items()} if entry.samples else None,
        "samples": [round(sample, 4) for sample in entry.samples],
    }
    if entry.error:
        data["error"] = entry.error
    return data
