"""What an SQS event source mapping is, and the service's checks on one (botocore's `lambda` model and the
SQS trigger's documented rules). Pure: no boto3, no I/O, so the TOML and template readers can use it.

A mapping comes from the definition (a template's `Events: Type: SQS` as SAM expands it into an
`AWS::Lambda::EventSourceMapping`, or a rapidboot.toml `[[functions.NAME.event_sources]]`), or from the API
(`CreateEventSourceMapping`). A definition's mapping keeps the same UUID across restarts and reloads (a
uuid5 of its function and queue); the API's get a random one, stored under --state-dir.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

BATCH_SIZE_MIN, BATCH_SIZE_MAX = 1, 10_000
DEFAULT_BATCH_SIZE = 10  # the service's default for SQS
RECEIVE_MAX = 10  # SQS ReceiveMessage's MaxNumberOfMessages: a larger batch needs a batching window
FIFO_BATCH_SIZE_MAX = 10
WINDOW_MAX_S = 300
CONCURRENCY_MIN, CONCURRENCY_MAX = 2, 1000
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
DEFINITION, API = "definition", "api"  # where a mapping came from

# Amazon SQS queue names: 1-80 letters, digits, '-' and '_', and a FIFO queue's name ends in `.fifo`.
# Compiled at first use (re's cache): compiling it cost ~15 ms of the server's import, measured.
_QUEUE_ARN = (
    r"arn:(?P<partition>aws[a-zA-Z-]*):sqs:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"(?P<name>[A-Za-z0-9_-]{1,80}(?:\.fifo)?)"
)
_NAMESPACE = "6f1c3c59-2a7e-4c07-9d55-6a0b8a5bd9c4"  # definition mappings' uuid5 namespace


class MappingError(ValueError):
    """A mapping setting the service would refuse: `key` is the API member it is about (BatchSize, ...),
    each front door names it its own way (batch_size in a rapidboot.toml)."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class QueueArn:
    arn: str
    region: str
    account: str
    name: str

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    @staticmethod
    def parse(value: object) -> QueueArn:
        if not isinstance(value, str):
            raise MappingError("EventSourceArn", f"must be an SQS queue ARN, got {value!r}")
        match = re.fullmatch(_QUEUE_ARN, value, re.ASCII)
        if match is None:
            raise MappingError(
                "EventSourceArn",
                f"{value!r} is not an SQS queue ARN (arn:aws:sqs:REGION:ACCOUNT:NAME): rapidboot polls "
                "SQS queues only",
            )
        return QueueArn(value, match["region"], match["account"], match["name"])


@dataclass(frozen=True, slots=True)
class SqsSource:
    """How one queue is polled for one function: the mapping's settings."""

    queue: QueueArn
    batch_size: int = DEFAULT_BATCH_SIZE
    batching_window_s: int = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None  # ScalingConfig.MaximumConcurrency
    enabled: bool = True
    endpoint_url: str | None = None  # our extension: overrides boto3's endpoint for this mapping

    @property
    def function_response_types(self) -> list[str]:
        return [REPORT_BATCH_ITEM_FAILURES] if self.report_batch_item_failures else []


@dataclass(frozen=True, slots=True)
class EventSourceMapping:
    uuid: str
    function_name: str
    source: SqsSource
    last_modified: float  # seconds since the epoch, as the API renders it
    origin: str = API  # DEFINITION | API


def definition_uuid(function_name: str, queue_arn: str) -> str:
    """The UUID of a definition's mapping: the same at every start, so a `GetEventSourceMapping` by UUID
    keeps working across restarts and reloads."""
    import uuid  # ~2 ms at import, for a server with mappings only

    return str(uuid.uuid5(uuid.UUID(_NAMESPACE), f"{function_name}\n{queue_arn}"))


def check_source(
    queue: object,
    batch_size: object = None,
    batching_window: object = None,
    function_response_types: object = None,
    maximum_concurrency: object = None,
    enabled: object = True,
    endpoint_url: object = None,
) -> SqsSource:
    """One mapping's settings, checked as the service checks them; raises MappingError naming the member.
    `None` is the service's default for each."""
    arn = QueueArn.parse(queue)
    size = DEFAULT_BATCH_SIZE if batch_size is None else _integer("BatchSize", batch_size)
    window = 0 if batching_window is None else _integer("MaximumBatchingWindowInSeconds", batching_window)
    if not BATCH_SIZE_MIN <= size <= BATCH_SIZE_MAX:
        raise MappingError("BatchSize", f"{size} is outside {BATCH_SIZE_MIN}-{BATCH_SIZE_MAX}")
    if not 0 <= window <= WINDOW_MAX_S:
        raise MappingError("MaximumBatchingWindowInSeconds", f"{window} is outside 0-{WINDOW_MAX_S}")
    if arn.fifo and size > FIFO_BATCH_SIZE_MAX:
        raise MappingError("BatchSize", f"{size}: a FIFO queue's batch size is at most {FIFO_BATCH_SIZE_MAX}")
    if arn.fifo and window:
        raise MappingError("MaximumBatchingWindowInSeconds", "FIFO queues do not support a batching window")
    if size > RECEIVE_MAX and window == 0:
        # The service's rule: SQS returns at most 10 messages a call, so a larger batch is gathered over
        # a window.
        raise MappingError(
            "MaximumBatchingWindowInSeconds",
            f"must be greater than 0 if the batch size ({size}) is greater than {RECEIVE_MAX}",
        )
    types = [] if function_response_types is None else function_response_types
    if not isinstance(types, list) or len(types) > 1 or any(t != REPORT_BATCH_ITEM_FAILURES for t in types):
        raise MappingError(
            "FunctionResponseTypes", f'must be [] or ["{REPORT_BATCH_ITEM_FAILURES}"], got {types!r}'
        )
    concurrency = None
    if maximum_concurrency is not None:
        concurrency = _integer("ScalingConfig.MaximumConcurrency", maximum_concurrency)
        if not CONCURRENCY_MIN <= concurrency <= CONCURRENCY_MAX:
            raise MappingError(
                "ScalingConfig.MaximumConcurrency",
                f"{concurrency} is outside {CONCURRENCY_MIN}-{CONCURRENCY_MAX}",
            )
    if not isinstance(enabled, bool):
        raise MappingError("Enabled", f"must be true or false, got {enabled!r}")
    if endpoint_url is not None and not (
        isinstance(endpoint_url, str) and endpoint_url.startswith(("http://", "https://"))
    ):
        raise MappingError("EndpointUrl", f"must be an http:// or https:// URL, got {endpoint_url!r}")
    return SqsSource(arn, size, window, bool(types), concurrency, enabled, endpoint_url)


def scaling_config(value: object) -> object:
    """`ScalingConfig: {MaximumConcurrency: N}`'s N (None when absent)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - {"MaximumConcurrency"}:
        raise MappingError("ScalingConfig", f"must be {{MaximumConcurrency: 2-1000}}, got {value!r}")
    return value.get("MaximumConcurrency")


def _integer(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(key, f"must be an integer, got {value!r}")
    return value
