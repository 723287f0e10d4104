"""The report's PNG charts, drawn with matplotlib (the `bench` extra; nothing else imports it).

- coldstart.png: every cold-start sample per runtime (box and points), one panel per handler;
- snapstart.png: the same for SnapStart's cold starts (a fork of the template against a spawn);
- warm_latency.png: p50 / p90 / p99 / max of warm invokes per contender, one panel per payload size;
- throughput.png: invokes per second and p99 latency against the number of concurrent clients.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit import

import matplotlib.pyplot as plt

from rapidboot.benchmarks.results import OURS, Entry, Results, Row

COLORS = {OURS: "#1f77b4"}
PEER_COLORS = ["#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f"]


def _color(row_or_names: list[str], name: str, ours: str) -> str:
    if name == ours:
        return COLORS[OURS]
    others = [n for n in row_or_names if n != ours]
    return PEER_COLORS[others.index(name) % len(PEER_COLORS)]


def _names(rows: list[Row]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [entry.name for entry in row.entries if entry.samples and entry.name not in names]
    return names


def _measured(rows: list[Row]) -> list[Row]:
    """The rows with samples to draw (a user's function may have failed under every runtime)."""
    return [row for row in rows if any(entry.samples for entry in row.entries)]


def _ours_name(rows: list[Row]) -> str:
    for row in rows:
        ours = row.ours()
        if ours is not None:
            return ours.name
    return ""


def coldstart(results: Results, path: Path, benchmark: str = "coldstart") -> Path | None:
    rows = _measured(results.benchmark_rows(benchmark))
    if benchmark == "snapstart":
        rows = [row for row in rows if row.key.startswith("snapstart.coldstart.")]
    if not rows:
        return None
    names, ours = _names(rows), _ours_name(rows)
    figure, axes = plt.subplots(len(rows), 1, figsize=(8, 1.2 + 1.0 * sum(len(r.entries) for r in rows)))
    for axis, row in zip(list(getattr(axes, "flat", [axes])), rows, strict=False):
        entries = [entry for entry in row.entries if entry.samples][::-1]
        positions = list(range(1, len(entries) + 1))
        axis.boxplot([e.samples for e in entries], orientation="horizontal", widths=0.5, showfliers=False)
        for position, entry in zip(positions, entries, strict=True):
            jitter = [position + 0.18 * ((i * 37 % 11) / 10 - 0.5) for i in range(len(entry.samples))]
            axis.scatter(entry.samples, jitter, s=8, alpha=0.6, color=_color(names, entry.name, ours))
        axis.set_yticks(positions, [f"{e.name}\n{e.summary.median:.1f} {row.unit}" for e in entries])
        axis.set_title(f"{row.label}, n={entries[0].summary.n} each, interleaved", fontsize=10)
        axis.set_xlabel(row.unit)
        axis.set_xlim(left=0)
        axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def warm_latency(results: Results, path: Path) -> Path | None:
    rows = _measured([row for row in results.benchmark_rows("warm") if row.params.get("percentiles")])
    if not rows:
        return None
    names, ours = _names(rows), _ours_name(rows)
    figure, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 4.2))
    for axis, row in zip(list(getattr(axes, "flat", [axes])), rows, strict=False):
        entries = [entry for entry in row.entries if entry.samples]
        labels = ["p50", "p90", "p99", "max"]
        width = 0.8 / len(entries)
        for index, entry in enumerate(entries):
            s = entry.summary
            xs = [position + (index - (len(entries) - 1) / 2) * width for position in range(len(labels))]
            axis.bar(
                xs,
                [s.median, s.p90, s.p99, s.max],
                width,
                label=entry.name,
                color=_color(names, entry.name, ours),
            )
        axis.set_xticks(range(len(labels)), labels)
        axis.set_yscale("log")
        axis.set_ylabel(row.unit)
        axis.set_title(f"{row.label}", fontsize=10)
        axis.grid(axis="y", alpha=0.3, which="both")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def throughput(results: Results, path: Path) -> Path | None:
    rates = [row for row in results.benchmark_rows("throughput") if row.params.get("kind") == "rate"]
    tails = [row for row in results.benchmark_rows("throughput") if row.params.get("kind") == "latency"]
    if not rates:
        return None
    names, ours = _names(rates + tails), _ours_name(rates)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axis, rows, title in ((left, rates, "throughput (median of rounds)"), (right, tails, "p99 latency")):
        for name in names:
            points: list[tuple[int, Entry]] = []
            for row in rows:
                entry = row.entry(name)
                if entry is not None and entry.samples:
                    points.append((row.params["clients"], entry))
            if not points:
                continue
            xs = [clients for clients, _ in points]
            color = _color(names, name, ours)
            if rows is tails:  # every invoke's latency at that level: its p99
                axis.plot(xs, [entry.summary.p99 for _, entry in points], marker="o", label=name, color=color)
                continue
            medians = [entry.summary.median for _, entry in points]
            low = [entry.summary.median - entry.summary.min for _, entry in points]
            high = [entry.summary.max - entry.summary.median for _, entry in points]
            axis.errorbar(xs, medians, yerr=[low, high], marker="o", capsize=3, label=name, color=color)
        if rows:
            axis.set_ylabel(rows[0].unit)
        axis.set_xscale("log", base=2)
        axis.set_xticks([row.params["clients"] for row in rows], [str(row.params["clients"]) for row in rows])
        axis.set_xlabel("concurrent clients")
        axis.set_title(title, fontsize=10)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def draw_all(results: Results, out_dir: Path) -> list[Path]:
    drawn = [
        coldstart(results, out_dir / "coldstart.png"),
        coldstart(results, out_dir / "snapstart.png", "snapstart"),
        warm_latency(results, out_dir / "warm_latency.png"),
        throughput(results, out_dir / "throughput.png"),
    ]
    return [path for path in drawn if path is not None]
