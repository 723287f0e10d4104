"""Telemetry API `2022-07-01` subscriptions and their delivery (and the Logs API `2020-08-15`'s, which the
service still serves: the same pipeline with that API's record names).

Each subscription has one buffer, bounded as subscribed (`maxItems`, `maxBytes`), and at most one POST in
flight: batches leave in order. A batch leaves when the buffer is full or `timeoutMs` after its first
event. While a POST is in flight the next batch fills; an event that finds it full is dropped and counted,
and the next batch starts with `platform.logsDropped` saying how many. So a slow or dead subscriber costs
at most two batches of memory and never blocks the function: nothing here is awaited by an invoke.

Destinations: the extension listens in the environment, named `sandbox.localdomain` (on Lambda each
environment has its own network). Here the server makes the POSTs, so only the server resolves that
name, to 127.0.0.1. Environments share the host's network: two environments of one function whose
extension binds one fixed port collide; `PortClaims` notices and the error says so (README).
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httptools
import orjson

from . import events

SCHEMA_VERSIONS = ("2022-07-01", "2022-12-13", "2025-01-29")
LOGS_SCHEMA_VERSIONS = ("2020-08-15", "2021-03-18")
TYPES = ("platform", "function", "extension")
# The service's bounds and defaults (Telemetry API reference, "buffering").
MAX_ITEMS = (1000, 10000, 10000)  # min, max, default
MAX_BYTES = (262144, 1048576, 262144)
TIMEOUT_MS = (25, 30000, 1000)
# Events before any subscription (Init's) are kept for the subscribers that come during Init, at most this
# many; the service delivers them too.
INIT_BACKLOG = 1000
_LOCAL_NAMES = ("sandbox.localdomain", "localhost", "127.0.0.1")
# The Logs API's names for the records it shares with the Telemetry API; others it does not send.
_LOGS_API_NAMES = {"platform.start": "platform.start", "platform.report": "platform.report"}


class SubscriptionError(ValueError):
    """A subscribe request the service would refuse: its message names the problem."""


@dataclass(slots=True, frozen=True)
class Destination:
    host: str
    port: int
    path: str


@dataclass(slots=True, frozen=True)
class Request:
    types: frozenset[str]
    max_items: int
    max_bytes: int
    timeout_ms: int
    destination: Destination


def parse_request(body: bytes, logs_api: bool = False) -> Request:
    """Validate a subscribe body as the service does. Raises SubscriptionError naming what is wrong."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SubscriptionError(f"The request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SubscriptionError("The request body must be a JSON object")
    versions = LOGS_SCHEMA_VERSIONS if logs_api else SCHEMA_VERSIONS
    schema = doc.get("schemaVersion", versions[0] if logs_api else None)
    if schema not in versions:
        raise SubscriptionError(f"schemaVersion must be one of {', '.join(versions)}; got {schema!r}")
    types = doc.get("types")
    if not isinstance(types, list) or not types or any(t not in TYPES for t in types):
        raise SubscriptionError(f"types must be a non-empty list of {', '.join(TYPES)}; got {types!r}")
    buffering = doc.get("buffering") or {}
    if not isinstance(buffering, dict):
        raise SubscriptionError("buffering must be an object")
    max_items = _bounded(buffering, "maxItems", MAX_ITEMS)
    max_bytes = _bounded(buffering, "maxBytes", MAX_BYTES)
    timeout_ms = _bounded(buffering, "timeoutMs", TIMEOUT_MS)
    destination = doc.get("destination")
    if not isinstance(destination, dict):
        raise SubscriptionError("destination is required: {'protocol': 'HTTP', 'URI': ...}")
    protocol = destination.get("protocol")
    if protocol == "TCP":
        raise SubscriptionError(
            "protocol TCP is not supported: the service no longer accepts new TCP subscriptions; use HTTP"
        )
    if protocol != "HTTP":
        raise SubscriptionError(f"destination.protocol must be HTTP; got {protocol!r}")
    return Request(frozenset(types), max_items, max_bytes, timeout_ms, _destination(destination.get("URI")))


def _bounded(buffering: dict[str, Any], key: str, bounds: tuple[int, int, int]) -> int:
    low, high, default = bounds
    value = buffering.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise SubscriptionError(f"buffering.{key} must be an integer from {low} to {high}; got {value!r}")
    return value


def _destination(uri: object) -> Destination:
    if not isinstance(uri, str):
        raise SubscriptionError("destination.URI is required")
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "http" or parts.hostname is None:
        raise SubscriptionError(f"destination.URI must be http://sandbox.localdomain:PORT/path; got {uri!r}")
    if parts.hostname not in _LOCAL_NAMES:
        raise SubscriptionError(
            f"destination.URI must name the environment (sandbox.localdomain); got host {parts.hostname!r}"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise SubscriptionError(f"destination.URI has an invalid port: {uri!r}") from None
    return Destination("127.0.0.1", port, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


class PortClaims:
    """Which environment's extension listens on which local port, server-wide. On Lambda each environment
    has its own network; here they share the host's, so a second environment of one function whose
    extension uses the same fixed port would have its telemetry delivered to the first's listener."""

    __slots__ = ("_owners",)

    def __init__(self) -> None:
        self._owners: dict[int, str] = {}

    def claim(self, port: int, owner: str) -> str | None:
        """None when claimed (or already this owner's); else the owner that has it."""
        current = self._owners.setdefault(port, owner)
        return None if current == owner else current

    def release(self, owner: str) -> None:
        for port in [port for port, who in self._owners.items() if who == owner]:
            del self._owners[port]

    def held_by_others(self, owner: str) -> list[int]:
        return sorted(port for port, who in self._owners.items() if who != owner)


# The host's port space is process-wide, and so is this table of it.
PORTS = PortClaims()


class Subscription:
    """One extension's subscription: its buffer and its delivery, one POST at a time."""

    def __init__(
        self, name: str, request: Request, on_error: Callable[[BaseException], None], logs_api: bool
    ):
        self.name = name
        self.request = request
        self.logs_api = logs_api
        self._on_error = on_error
        self._buffer: deque[bytes] = deque()
        self._buffered_bytes = 0
        self._dropped_records = 0
        self._dropped_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._sending: asyncio.Task[None] | None = None
        self._closed = False
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.delivered_batches = 0

    def offer(self, encoded: bytes) -> None:
        request = self.request
        if self._closed:
            return
        if len(self._buffer) >= request.max_items or self._buffered_bytes + len(encoded) > request.max_bytes:
            if self._sending is None:
                self._send_now()
            if (
                len(self._buffer) >= request.max_items
                or self._buffered_bytes + len(encoded) > request.max_bytes
            ):
                self._dropped_records += 1
                self._dropped_bytes += len(encoded)
                return
        self._buffer.append(encoded)
        self._buffered_bytes += len(encoded)
        if len(self._buffer) >= request.max_items or self._buffered_bytes >= request.max_bytes:
            if self._sending is None:
                self._send_now()
        elif self._timer is None and self._sending is None:
            self._timer = asyncio.get_running_loop().call_later(request.timeout_ms / 1000, self._send_now)

    def flush(self) -> None:
        """Send what is buffered now (the environment is shutting down)."""
        if self._sending is None:
            self._send_now()

    async def drain(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until what is buffered has been delivered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (self._buffer or self._sending is not None) and loop.time() < deadline:
            self.flush()
            sending = self._sending
            if sending is None:
                break
            with contextlib.suppress(TimeoutError, Exception):
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(sending)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sending is not None:
            self._sending.cancel()
        self._drop_connection()
        self._buffer.clear()

    def _send_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sending is not None or not (self._buffer or self._dropped_records):
            return
        batch = list(self._buffer)
        self._buffer.clear()
        self._buffered_bytes = 0
        if self._dropped_records:
            dropped = events.logs_dropped(self._dropped_records, self._dropped_bytes)
            batch.insert(0, orjson.dumps(dropped))
            self._dropped_records = self._dropped_bytes = 0
        body = b"[" + b",".join(batch) + b"]"
        self._sending = asyncio.get_running_loop().create_task(self._deliver(body, len(batch)))

    async def _deliver(self, body: bytes, count: int) -> None:
        try:
            delivered = await self._post(body)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # a bug here must not take the environment down
            self._on_error(exc)
            delivered = False
        finally:
            self._sending = None
        if delivered:
            self.delivered_batches += 1
        else:
            # Refused, unreachable or answered with an error: the batch is lost, as on the service, and the
            # next says so.
            self._dropped_records += count
            self._dropped_bytes += len(body)
        if self._closed:
            return
        if self._buffer and (
            len(self._buffer) >= self.request.max_items or self._buffered_bytes >= self.request.max_bytes
        ):
            self._send_now()
        elif (self._buffer or (self._dropped_records and delivered)) and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self.request.timeout_ms / 1000, self._send_now
            )

    async def _post(self, body: bytes) -> bool:
        destination = self.request.destination
        for attempt in range(2):  # a kept-alive connection the subscriber closed meanwhile: one new try
            fresh = self._connection is None
            try:
                if self._connection is None:
                    self._connection = await asyncio.open_connection(destination.host, destination.port)
                reader, writer = self._connection
                writer.write(
                    b"POST %s HTTP/1.1\r\nHost: sandbox.localdomain:%d\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n"
                    % (destination.path.encode(), destination.port, len(body))
                    + body
                )
                await writer.drain()
                status, keep_alive = await _read_response(reader)
            except (OSError, EOFError, httptools.HttpParserError):
                self._drop_connection()
                if fresh or attempt:
                    return False
                continue
            if not keep_alive:
                self._drop_connection()
            return 200 <= status < 300
        return False

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection[1].close()
            self._connection = None


class _ResponseReader:
    """The callbacks httptools' response parser calls: the status, whether the connection stays open (known
    once the head is in), and the end."""

    def __init__(self) -> None:
        self.done = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        self.done = True


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    callbacks = _ResponseReader()
    parser = callbacks.parser = httptools.HttpResponseParser(callbacks)
    while not callbacks.done:
        data = await reader.read(65536)
        if not data:
            raise EOFError
        parser.feed_data(data)
    return parser.get_status_code(), callbacks.keep_alive


class TelemetryHub:
    """One environment's telemetry: the events it produces, offered to every subscription that wants them.
    Each event is encoded once, whatever the number of subscribers."""

    def __init__(self, on_error: Callable[[BaseException], None]):
        self._on_error = on_error
        self.subscriptions: list[Subscription] = []
        self._backlog: list[tuple[str, dict[str, Any]]] | None = []  # until Init ends
        self.wants_function = False
        self.wants_extension = False

    @property
    def in_init(self) -> bool:
        """Init's events are kept for subscribers still to come."""
        return self._backlog is not None

    def subscribe(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)
        self.wants_function = self.wants_function or "function" in subscription.request.types
        self.wants_extension = self.wants_extension or "extension" in subscription.request.types
        for category, event in self._backlog or ():
            self._offer_one(subscription, category, event, None)

    def end_init(self) -> None:
        """Init's events stay for subscribers that come during Init only."""
        self._backlog = None

    def emit(self, category: str, event: dict[str, Any]) -> None:
        if self._backlog is not None and len(self._backlog) < INIT_BACKLOG:
            self._backlog.append((category, event))
        encoded: bytes | None = None
        for subscription in self.subscriptions:
            encoded = self._offer_one(subscription, category, event, encoded)

    @staticmethod
    def _offer_one(
        subscription: Subscription, category: str, event: dict[str, Any], encoded: bytes | None
    ) -> bytes | None:
        if category not in subscription.request.types:
            return encoded
        if subscription.logs_api:
            if category == "platform":
                name = _LOGS_API_NAMES.get(event["type"])
                if name is None:
                    return encoded
            subscription.offer(orjson.dumps(event))
            return encoded
        if encoded is None:
            encoded = orjson.dumps(event)
        subscription.offer(encoded)
        return encoded

    async def drain(self, timeout_s: float) -> None:
        await asyncio.gather(*(s.drain(timeout_s) for s in self.subscriptions))

    def close(self) -> None:
        for subscription in self.subscriptions:
            subscription.close()
