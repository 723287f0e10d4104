"""What a run leaves: the terminal table, `report.md`, `results.json` and the charts in one directory."""

from __future__ import annotations

from pathlib import Path

from rapidboot.benchmarks.results import OURS, PEER, Entry, Results, Row


def number(value: float) -> str:
    """Three significant figures or so, without scientific notation."""
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell(entry: Entry) -> str:
    """`median (min-max)`, or the one value of a single sample, or `failed (why)`."""
    if entry.error:
        return f"failed ({entry.error})"
    if not entry.samples:
        return "-"
    summary = entry.summary
    if summary.n == 1:
        return number(summary.median)
    return f"{number(summary.median)} ({number(summary.min)}-{number(summary.max)})"


def ratio_text(row: Row) -> str:
    ratio = row.ratio()
    best = row.best_peer()
    if ratio is None or best is None:
        return ""
    return f"{ratio:.2f} vs {best.name}"


def others_text(row: Row) -> str:
    """The entries besides ours and the best peer (other peers, references), named."""
    best = row.best_peer()
    return "; ".join(
        f"{entry.name} {cell(entry)}" for entry in row.entries if entry.role != OURS and entry is not best
    )


def table_rows(results: Results) -> list[list[str]]:
    header = [
        "measurement",
        "rapidboot median (min-max)",
        "best peer",
        "ratio",
        "x floor",
        "spread",
        "others",
    ]
    lines = [header]
    for row in results.rows:
        ours = row.ours()
        best = row.best_peer()
        spread = f"{ours.summary.spread:.0%}" if ours is not None and len(ours.samples) > 3 else ""
        lines.append(
            [
                f"{row.label} ({row.unit})",
                cell(ours) if ours is not None else "-",
                f"{best.name} {cell(best)}" if best is not None else "",
                ratio_text(row),
                f"{floor:.2f}" if (floor := row.floor_ratio()) is not None else "",
                spread,
                others_text(row),
            ]
        )
    return lines


def runtime_ratio_rows(results: Results) -> list[list[str]]:
    """Our median over each peer's, row by row (the summary table names only the best peer): what
    switching from that peer to rapidboot changes. `failed` where either side has no samples."""
    peers: list[str] = []
    for row in results.rows:
        peers += [e.name for e in row.entries if e.role == PEER and e.name not in peers]
    lines = [["measurement", *(f"rapidboot / {name}" for name in peers)]]
    for row in results.rows:
        ours = row.ours()
        if not row.comparable or ours is None:
            continue
        line = [f"{row.label} ({row.unit})"]
        for name in peers:
            peer = row.entry(name)
            if peer is None:
                line.append("")
            elif ours.samples and peer.samples and peer.summary.median:
                line.append(f"{ours.summary.median / peer.summary.median:.2f}")
            else:
                line.append("failed" if ours.error or peer.error else "")
        lines.append(line)
    return lines


def _aligned(lines: list[list[str]]) -> list[str]:
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]) - 1)]
    out = []
    for index, line in enumerate(lines):
        fixed = "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=False))
        out.append(f"{fixed}  {line[-1]}".rstrip())
        if index == 0:
            out.append("-" * min(160, len(out[0])))
    return out


def terminal_table(results: Results, per_runtime: bool = False) -> str:
    out = _aligned(table_rows(results))
    if per_runtime:
        ratios = runtime_ratio_rows(results)
        if len(ratios[0]) > 1:
            out += ["", "ratio per runtime (below 1: rapidboot takes less time or memory):"]
            out += _aligned(ratios)
    notes = _notes(results)
    if notes:  # issue 18's targets, the CPU bound and the Python floor's arithmetic are notes: shown here too
        out += ["", "notes:", *notes]
    for check in results.checks:
        out.append(f"{'ok  ' if check.passed else 'FAIL'} {check.name} ({check.subject}): {check.detail}")
    return "\n".join(out)


def _notes(results: Results) -> list[str]:
    return [f"- {row.label}: {row.note}" for row in results.rows if row.note]


def _markdown_table(lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(lines[0]) + " |", "|" + " --- |" * len(lines[0])]
    out += ["| " + " | ".join(text.replace("|", "\\|") for text in line) + " |" for line in lines[1:]]
    return out


def percentile_tables(results: Results) -> list[str]:
    """One table per latency row that has percentiles worth reading (the warm invokes)."""
    out: list[str] = []
    for row in results.rows:
        if row.params.get("percentiles") is not True:
            continue
        lines = [["contender", "n", "p50", "p90", "p99", "max", "min", "spread"]]
        for entry in row.entries:
            if not entry.samples:
                continue
            s = entry.summary
            lines.append(
                [entry.name, str(s.n)]
                + [number(v) for v in (s.median, s.p90, s.p99, s.max, s.min)]
                + [f"{s.spread:.0%}"]
            )
        out += [f"### {row.label} ({row.unit})", "", *_markdown_table(lines), ""]
    return out


def markdown(results: Results, charts: list[Path], per_runtime: bool = False) -> str:
    machine = results.machine
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items() if version)
    out = [
        "# rapidboot benchmark report",
        "",
        f"`{results.command}` on {results.started}, {results.elapsed_s:.0f} s"
        + (" (quick: fewer repetitions)" if results.quick else ""),
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}"
        f" ({machine['platform']}); {packages}.",
        "",
        "Each row's contenders were measured in the same run, interleaved A B A B, after discarded warm-ups;",
        "figures are medians with the min-max range; the ratio is rapidboot's median over the best peer's",
        "(below 1 is better for times, above 1 for rates); `x floor` is rapidboot's median over the floor's",
        "(the same bytes through two bare loopback socket round trips: no server can do better);",
        "spread is rapidboot's (p75 - p25) / median.",
        "",
        "## Summary",
        "",
        *_markdown_table(table_rows(results)),
        "",
    ]
    ratios = runtime_ratio_rows(results)
    if per_runtime and len(ratios[0]) > 1:
        out += [
            "## Ratio per runtime",
            "",
            "rapidboot's median over each runtime's (below 1: rapidboot takes",
        ]
        out += ["less time or memory).", "", *_markdown_table(ratios), ""]
    notes = _notes(results)
    if notes:
        out += ["Notes:", "", *notes, ""]
    clients = [f"- {row.label}: {row.params['client']}" for row in results.rows if row.params.get("client")]
    if clients:
        out += ["Invoke clients, per row:", "", *clients, ""]
    if results.checks:
        out += ["## Checks", ""]
        out += [
            f"- {'ok' if check.passed else '**FAIL**'}: {check.name} ({check.subject}): {check.detail}"
            for check in results.checks
        ]
        out.append("")
    percentiles = percentile_tables(results)
    if percentiles:
        out += ["## Latency percentiles", "", *percentiles]
    if charts:
        out += ["## Charts", ""]
        out += [f"![{chart.stem}]({chart.name})" for chart in charts]
        out.append("")
    if results.skipped:
        out += ["## Skipped", ""]
        out += [f"- {line}" for line in results.skipped]
        out.append("")
    return "\n".join(out)


def write(
    results: Results, out_dir: Path, draw: bool = True, per_runtime: bool = False
) -> tuple[list[Path], str | None]:
    """Write results.json, the charts (when matplotlib is there) and report.md. Returns the charts and,
    when charts could not be drawn, the line saying how to get them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results.write(out_dir / "results.json")
    charts: list[Path] = []
    missing = None
    if draw:
        try:
            from rapidboot.benchmarks import charts as charting  # matplotlib: the `bench` extra only
        except ImportError:
            missing = "charts: matplotlib is not installed; add it with `pip install 'rapidboot[bench]'`"
        else:
            charts = charting.draw_all(results, out_dir)
    (out_dir / "report.md").write_text(markdown(results, charts, per_runtime))
    return charts, missing
