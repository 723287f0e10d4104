"""`rapidboot top`: a live terminal view of a running server's metrics, one line per function.

It reads the server's `GET /metrics` (served with or without the console), as any Prometheus tool would,
and computes between two readings what a counter cannot say alone: invokes per second, and p50/p99 of
Duration over the interval (from the histogram's buckets, interpolated as Prometheus' histogram_quantile;
since the server started when nothing ran in the interval, marked `*`).

On a terminal it redraws in place, as `top` does (ANSI: the alternate screen, cursor home, erase; no
curses); elsewhere (a pipe, a file) it prints one snapshot per interval. `--once`: one snapshot, taken over
one interval, then exit.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import httpx

_ALT_SCREEN_ON = "\x1b[?1049h\x1b[?25l"  # alternate screen, cursor hidden
_ALT_SCREEN_OFF = "\x1b[?25h\x1b[?1049l"
_HOME = "\x1b[H"
_ERASE_LINE_END = "\x1b[K"
_ERASE_BELOW = "\x1b[J"
COLUMNS = (
    ("FUNCTION", 24),
    ("INVOKES/S", 10),
    ("INVOKES", 9),
    ("ERRORS", 7),
    ("THROTTLES", 9),
    ("P50", 10),
    ("P99", 10),
    ("CONC", 5),
    ("WARM", 5),
    ("BUSY", 5),
)


@dataclass
class Reading:
    """One function's figures from one scrape."""

    invocations: float = 0.0
    errors: float = 0.0
    throttles: float = 0.0
    concurrency: float = 0.0
    idle: float = 0.0
    busy: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count


@dataclass
class Scrape:
    at: float  # monotonic seconds
    functions: dict[str, Reading]


def build_parser(prog: str = "rapidboot top") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Live per-function metrics of a running rapidboot server (its GET /metrics)."
    )
    parser.add_argument(
        "--endpoint", default="http://127.0.0.1:8080", help="the server's URL (default: %(default)s)"
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="S", help="seconds between readings (default: 1)"
    )
    parser.add_argument("--once", action="store_true", help="print one snapshot (over one interval) and exit")
    return parser


def main(argv: Sequence[str], prog: str = "rapidboot top") -> int:
    args = build_parser(prog).parse_args(argv)
    if not 0.05 <= args.interval <= 3600:
        print(f"{prog}: --interval {args.interval:g}: must be 0.05-3600 seconds", file=sys.stderr)
        return 2
    endpoint = args.endpoint.rstrip("/")
    with httpx.Client(timeout=10.0) as client:

        def scrape() -> Scrape:
            response = client.get(f"{endpoint}/metrics")
            if response.status_code != 200:
                raise ScrapeError(f"GET {endpoint}/metrics answered {response.status_code}")
            return Scrape(time.monotonic(), parse(response.text))

        if args.once:
            try:
                first = scrape()
                time.sleep(args.interval)  # the interval the rates are measured over
                print(render(endpoint, first, scrape(), args.interval))
            except (httpx.HTTPError, ScrapeError) as exc:
                print(f"{prog}: cannot read {endpoint}/metrics: {exc}", file=sys.stderr)
                return 1
            return 0
        return _live(endpoint, scrape, args.interval, sys.stdout)


class ScrapeError(Exception):
    pass


def _live(endpoint: str, scrape: Callable[[], Scrape], interval: float, out: TextIO) -> int:
    terminal = out.isatty()
    previous: Scrape | None = None
    if terminal:
        out.write(_ALT_SCREEN_ON)
    try:
        while True:
            try:
                current = scrape()
                text = render(endpoint, previous, current, interval) if previous else _waiting(endpoint)
                previous = current
            except (httpx.HTTPError, ScrapeError) as exc:
                text = f"rapidboot top: cannot read {endpoint}/metrics: {exc} (retrying)"
                previous = None
            if terminal:
                lines = text.split("\n")
                out.write(_HOME + "".join(line + _ERASE_LINE_END + "\n" for line in lines) + _ERASE_BELOW)
            else:
                out.write(text + "\n\n")
            out.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    finally:
        if terminal:
            out.write(_ALT_SCREEN_OFF)
            out.flush()


def _waiting(endpoint: str) -> str:
    return f"rapidboot top  {endpoint}  (first reading taken; rates after the next)"


def parse(text: str) -> dict[str, Reading]:
    """The figures of /metrics, by function (prometheus-client's own parser of the text format)."""
    from prometheus_client.parser import text_string_to_metric_families

    functions: dict[str, Reading] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.labels.get("function")
            if name is None:
                continue
            reading = functions.setdefault(name, Reading())
            value = float(sample.value)
            if sample.name == "lambda_invocations_total":
                reading.invocations = value
            elif sample.name == "lambda_errors_total":
                reading.errors = value
            elif sample.name == "lambda_throttles_total":
                reading.throttles = value
            elif sample.name == "lambda_concurrent_executions":
                reading.concurrency = value
            elif sample.name == "rapidboot_environments":
                if sample.labels.get("state") == "busy":
                    reading.busy = value
                else:
                    reading.idle = value
            elif sample.name == "lambda_duration_seconds_bucket":
                reading.buckets[float(sample.labels["le"])] = value
    return functions


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated within its bucket (histogram_quantile)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # past the largest finite bound: that bound is all that is known
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def render(endpoint: str, previous: Scrape | None, current: Scrape, interval: float) -> str:
    elapsed = current.at - previous.at if previous is not None else interval
    lines = [
        f"rapidboot top  {endpoint}  {time.strftime('%H:%M:%S')}  every {interval:g} s"
        f"  (p50/p99: Duration over the interval; * = since start)",
        "",
        _row(title for title, _ in COLUMNS),
    ]
    for name in sorted(current.functions):
        now = current.functions[name]
        before = previous.functions.get(name, Reading()) if previous is not None else Reading()
        ran = now.invocations - before.invocations
        window = {le: count - before.buckets.get(le, 0.0) for le, count in now.buckets.items()}
        buckets, mark = (window, "") if ran > 0 else (now.buckets, "*")
        lines.append(
            _row(
                (
                    name,
                    f"{ran / elapsed:.1f}" if elapsed > 0 else "-",
                    f"{now.invocations:.0f}",
                    f"{now.errors:.0f}",
                    f"{now.throttles:.0f}",
                    _duration(quantile(0.5, buckets), mark),
                    _duration(quantile(0.99, buckets), mark),
                    f"{now.concurrency:.0f}",
                    f"{now.idle:.0f}",
                    f"{now.busy:.0f}",
                )
            )
        )
    if not current.functions:
        lines.append("(no functions)")
    return "\n".join(lines)


def _row(cells: Iterable[str]) -> str:
    parts = []
    for index, ((_, width), cell) in enumerate(zip(COLUMNS, cells, strict=True)):
        parts.append(cell.ljust(width) if index == 0 else cell.rjust(width))  # names left, figures right
    return " ".join(parts).rstrip()


def _duration(seconds: float | None, mark: str) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return (f"{ms:.2f}" if ms < 10 else f"{ms:.0f}") + " ms" + mark
