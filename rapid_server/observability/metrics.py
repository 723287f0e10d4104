"""Lambda's per-function metrics, as the service reports them to CloudWatch, recorded as plain numbers.

Recorded here as things happen (one call per invoke's REPORT, one per Event invoke accepted, attempted or
finished): `Invocations`, `Errors`, `Duration`, `AsyncEventsReceived`, `AsyncEventAge`,
`AsyncEventsDropped`, `DeadLetterErrors`, `DestinationDeliveryFailures`. Read from the server's state when
someone asks (exposition.py): `Throttles` (the concurrency limiter counts them), `ConcurrentExecutions` and
`ProvisionedConcurrencyUtilization`.

Why plain integers and not prometheus-client's `Counter`/`Histogram` on the invoke path: measured on the
2-core machine (benchmarks/metrics_cost.py), a labelled counter and histogram of prometheus-client cost
~3.5 us per invoke (~1.6 us with the children cached), its import ~300 ms of the server's start; this
module's `invoked` costs ~1 us with the console's ring buffer, and imports nothing. prometheus-client still
renders the text format, at scrape time, through a custom collector (exposition.py).

The console (console.py) also gets, while it is on, the last `RECENT_INVOCATIONS` invokes with their REPORT
figures and the end of their output (`TAIL_BYTES`), and one point per second per function for its chart:
all in bounded rings, whatever the load.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data_plane.environment import Environment

# Duration's histogram bounds, in seconds (Prometheus' unit): fine where warm invokes are (well under a
# millisecond here) and up to Lambda's 900 s timeout.
DURATION_BOUNDS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
)
# AsyncEventAge: from the 202 to the attempt, up to the 6 h maximum event age.
AGE_BOUNDS_S = (0.01, 0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0)
RECENT_INVOCATIONS = 200  # the console's table: the last N invokes, every function's
TAIL_BYTES = 2048  # the end of each invoke's own output kept for the console
SERIES_SECONDS = 600  # the console's chart: one point per second per function, the last 10 minutes
_PENDING_TAILS = 1024  # output of invokes whose REPORT is not in yet (a bound, not an expectation)


# One invoke as its REPORT had it, for the console: a plain tuple (built per invoke: a NamedTuple's
# constructor cost ~0.35 us of it, its class ~1.3 ms of the server's start), read by console.py as
# (sequence, time, function, request id, Duration ms, Memory Size MB, Max Memory Used MB,
#  Init Duration ms or None, error, REPORT status or None, error type or None, pid or None, log tail).
# `sequence` increases by one per invoke recorded: how a watcher asks for what is new.
Invocation = tuple[
    int, float, str, str, float, int, int, float | None, bool, str | None, str | None, int | None, bytes
]


class FunctionFigures:
    """One function's figures since the server started. Counters and histograms as Prometheus has them:
    the bucket counts here are per bucket (not cumulative), the last one past the largest bound."""

    __slots__ = (
        "async_age_buckets",
        "async_age_sum_s",
        "async_dropped",
        "async_received",
        "dead_letter_errors",
        "destination_delivery_failures",
        "duration_buckets",
        "duration_sum_s",
        "errors",
        "invocations",
        "series",
    )

    def __init__(self) -> None:
        self.invocations = 0
        self.errors = 0
        self.duration_buckets = [0] * (len(DURATION_BOUNDS_S) + 1)
        self.duration_sum_s = 0.0
        self.async_received = 0
        self.async_age_buckets = [0] * (len(AGE_BOUNDS_S) + 1)
        self.async_age_sum_s = 0.0
        self.async_dropped = 0
        self.dead_letter_errors = 0
        self.destination_delivery_failures = 0
        # The console's chart: [second, invokes, errors, duration sum ms, duration max ms, concurrency max]
        self.series: deque[list[float]] = deque(maxlen=SERIES_SECONDS)


class Metrics:
    """What the server counts; one per server (ServerState.metrics), told of events by `LogSink.observer`.

    `keep_recent`: keep the console's invocations, output tails and chart points (off with --no-console).
    `in_use`: a function's concurrent executions now (the limiter's), sampled into the chart."""

    def __init__(self, in_use: Callable[[str], int], keep_recent: bool = True) -> None:
        self._in_use = in_use
        self.functions: dict[str, FunctionFigures] = {}
        self.keep_recent = keep_recent
        self.recent: deque[Invocation] = deque(maxlen=RECENT_INVOCATIONS)
        self.sequence = 0
        self._tails: dict[str, bytearray] = {}

    def figures(self, function: str) -> FunctionFigures:
        figures = self.functions.get(function)
        if figures is None:
            figures = self.functions[function] = FunctionFigures()
        return figures

    # The invoke path: one call per REPORT, one per output line (only while the console is on) -----------

    def invoked(
        self,
        environment: Environment,
        request_id: str,
        duration_ms: float,
        max_memory_used_mb: int,
        init_duration_ms: float | None,
        error: bool,
        status: str | None,
        error_type: str | None,
    ) -> None:
        """An invoke ended and its REPORT was written."""
        name = environment.config.name
        figures = self.functions.get(name) or self.figures(name)
        figures.invocations += 1
        if error:
            figures.errors += 1
        seconds = duration_ms / 1000
        figures.duration_buckets[bisect_left(DURATION_BOUNDS_S, seconds)] += 1
        figures.duration_sum_s += seconds
        if not self.keep_recent:
            return
        now = time.time()
        series = figures.series
        point = series[-1] if series else None
        second = int(now)
        concurrency = max(1, self._in_use(name))  # this invoke ran: at least 1, whenever it is told
        if point is None or point[0] != second:
            series.append([second, 1, int(error), duration_ms, duration_ms, concurrency])
        else:
            point[1] += 1
            point[2] += error
            point[3] += duration_ms
            if duration_ms > point[4]:
                point[4] = duration_ms
            if concurrency > point[5]:
                point[5] = concurrency
        tail = self._tails.pop(request_id, None)
        self.sequence += 1
        self.recent.append(
            (
                self.sequence,
                now,
                name,
                request_id,
                duration_ms,
                environment.config.memory_mb,
                max_memory_used_mb,
                init_duration_ms,
                error,
                status,
                error_type,
                environment.pid,
                bytes(tail) if tail else b"",
            )
        )

    def output(self, request_id: str, line: bytes) -> None:
        """One line the function printed during invoke `request_id`: the end of it is kept for the console
        until the invoke's REPORT."""
        tail = self._tails.get(request_id)
        if tail is None:
            if len(self._tails) >= _PENDING_TAILS:  # invokes that never reported: forget the oldest
                del self._tails[next(iter(self._tails))]
            tail = self._tails[request_id] = bytearray()
        tail += line
        tail += b"\n"
        if len(tail) > 2 * TAIL_BYTES:
            del tail[:-TAIL_BYTES]

    def sample_concurrency(self, function: str, concurrency: int) -> None:
        """A reading of the function's concurrent executions (the console's ticker, while watched)."""
        series = self.figures(function).series
        second = int(time.time())
        if series and series[-1][0] == second:
            if concurrency > series[-1][5]:
                series[-1][5] = concurrency
        else:
            series.append([second, 0, 0, 0.0, 0.0, concurrency])

    # Event invokes (dispatcher.py) ------------------------------------------------------------------------

    def async_received(self, function: str) -> None:
        self.figures(function).async_received += 1

    def async_attempted(self, function: str, age_s: float) -> None:
        """AsyncEventAge: from the event's queueing to this attempt to invoke it."""
        figures = self.figures(function)
        figures.async_age_buckets[bisect_left(AGE_BOUNDS_S, age_s)] += 1
        figures.async_age_sum_s += age_s

    def async_dropped(self, function: str) -> None:
        """An event given up on (retries exhausted, or too old), whether or not a destination gets it."""
        self.figures(function).async_dropped += 1

    def destination_failed(self, function: str) -> None:
        self.figures(function).destination_delivery_failures += 1

    def dead_letter_failed(self, function: str) -> None:
        self.figures(function).dead_letter_errors += 1
