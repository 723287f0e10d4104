"""`GET /metrics`: Lambda's metrics in Prometheus' text format, one series per function (`function` label).

Rendered by prometheus-client from our plain counters (metrics.py) through a custom collector, at scrape
time only: imported on the first scrape (~300 ms of import on the 2-core machine that a server nobody
scrapes never pays), and nothing of it runs per invoke.

Names follow Prometheus' conventions for CloudWatch's metrics: counters end in `_total`, times are in
seconds (CloudWatch's Duration is in milliseconds), ProvisionedConcurrencyUtilization is a ratio (0-1, as
CloudWatch's). `rapidboot_environments` is ours: the environments of each function, idle and busy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ..data_plane.function import PROVISIONED
from ..server_state import ServerState
from .metrics import AGE_BOUNDS_S, DURATION_BOUNDS_S, FunctionFigures

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LABELS = ["function"]


def render(state: ServerState) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LambdaCollector(state))
    return generate_latest(registry)


class LambdaCollector(Collector):
    """The server's figures, read when scraped."""

    def __init__(self, state: ServerState):
        self._state = state

    def describe(self) -> Iterable[object]:
        return []  # nothing to check for clashes: this registry is built for one scrape

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        state = self._state
        metrics = state.metrics
        # Every served function, with zeros before its first invoke; and any that has figures (removed since).
        names = sorted({*state.functions, *metrics.functions})
        figures = {name: metrics.functions.get(name) or FunctionFigures() for name in names}
        throttles = state.limiter.throttles

        def counter(name: str, documentation: str, values: dict[str, float]) -> CounterMetricFamily:
            family = CounterMetricFamily(name, documentation, labels=_LABELS)
            for function, value in values.items():
                family.add_metric([function], value)
            return family

        yield counter(
            "lambda_invocations",
            "Invocations: invokes of the function's code, errors included, throttles not",
            {n: f.invocations for n, f in figures.items()},
        )
        yield counter(
            "lambda_errors",
            "Errors: invokes that ended in a function error (X-Amz-Function-Error), timeouts and crashes too",
            {n: f.errors for n, f in figures.items()},
        )
        yield counter(
            "lambda_throttles",
            "Throttles: invoke requests refused by the concurrency limits (429)",
            {n: throttles.get(n, 0) for n in names},
        )
        duration = HistogramMetricFamily(
            "lambda_duration_seconds",
            "Duration: the REPORT's Duration of each invoke (Init excluded)",
            labels=_LABELS,
        )
        for name, f in figures.items():
            duration.add_metric([name], _buckets(DURATION_BOUNDS_S, f.duration_buckets), f.duration_sum_s)
        yield duration
        concurrent = GaugeMetricFamily(
            "lambda_concurrent_executions",
            "ConcurrentExecutions: invokes of the function in flight now",
            labels=_LABELS,
        )
        environments = GaugeMetricFamily(
            "rapidboot_environments",
            "Execution environments of the function now, by state: idle (warm) or busy (an invoke in flight)",
            labels=["function", "state"],
        )
        utilization = GaugeMetricFamily(
            "lambda_provisioned_concurrency_utilization",
            "ProvisionedConcurrencyUtilization: busy provisioned environments / provisioned concurrency",
            labels=_LABELS,
        )
        for name in names:
            concurrent.add_metric([name], state.limiter.in_use(name))
            function = state.functions.get(name)
            live = [env for env in function.environments if env.usable] if function is not None else []
            busy = sum(1 for env in live if env.in_flight)
            environments.add_metric([name, "idle"], len(live) - busy)
            environments.add_metric([name, "busy"], busy)
            provisioned = function.config.provisioned_concurrency if function is not None else 0
            if provisioned:  # as CloudWatch: only for functions with provisioned concurrency
                in_use = sum(1 for env in live if env.in_flight and env.initialization_type == PROVISIONED)
                utilization.add_metric([name], in_use / provisioned)
        yield concurrent
        yield utilization
        yield environments
        yield counter(
            "lambda_async_events_received",
            "AsyncEventsReceived: Event invokes queued for the function",
            {n: f.async_received for n, f in figures.items()},
        )
        age = HistogramMetricFamily(
            "lambda_async_event_age_seconds",
            "AsyncEventAge: from an Event invoke's queueing to each attempt to run it",
            labels=_LABELS,
        )
        for name, f in figures.items():
            age.add_metric([name], _buckets(AGE_BOUNDS_S, f.async_age_buckets), f.async_age_sum_s)
        yield age
        yield counter(
            "lambda_async_events_dropped",
            "AsyncEventsDropped: Event invokes given up on (retries exhausted or too old), "
            "sent to an on-failure destination or not",
            {n: f.async_dropped for n, f in figures.items()},
        )
        yield counter(
            "lambda_dead_letter_errors",
            "DeadLetterErrors: events that could not be sent to the dead-letter queue",
            {n: f.dead_letter_errors for n, f in figures.items()},
        )
        yield counter(
            "lambda_destination_delivery_failures",
            "DestinationDeliveryFailures: destination records that could not be delivered",
            {n: f.destination_delivery_failures for n, f in figures.items()},
        )


def _buckets(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Prometheus' cumulative `le` buckets from per-bucket counts (the last past the largest bound)."""
    cumulative = 0
    buckets = []
    for bound, count in zip(bounds, counts, strict=False):
        cumulative += count
        buckets.append((repr(float(bound)), float(cumulative)))
    buckets.append(("+Inf", float(cumulative + counts[-1])))
    return buckets
