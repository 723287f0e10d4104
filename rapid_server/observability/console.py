"""The web console's data: the functions and their environments, the last invokes with their REPORT figures
and output tails, and the chart's points, as JSON (`/_rapidboot/api/state`) and as a live feed of
server-sent events (`/_rapidboot/api/events`).

Nothing here runs per invoke. The feed is pushed by one timer, every `FEED_INTERVAL_S`, that runs only while
someone is watching: each tick sends every watcher the invokes it has not seen yet and the functions' state
now. A watcher that does not read (its unsent backlog past `MAX_BACKLOG_BYTES`) is ended; its browser's
EventSource reconnects by itself and starts again from the state.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from ..http import Connection
from ..rendering import billed_ms
from ..server_state import ServerState
from .metrics import Invocation

FEED_INTERVAL_S = 0.5
MAX_BACKLOG_BYTES = 1 << 20
_FEED_HEADERS = [
    ("Content-Type", "text/event-stream"),
    ("Cache-Control", "no-cache"),
    ("X-Accel-Buffering", "no"),
]


class Console:
    def __init__(self, state: ServerState):
        self._state = state
        self._watchers: dict[Connection, int] = {}  # each watcher's last invoke sent (metrics' sequence)
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    # JSON --------------------------------------------------------------------------------------------------

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        """Everything the page shows; only the invokes after sequence `since`."""
        metrics = self._state.metrics
        return {
            "sequence": metrics.sequence,
            "now": time.time(),
            "region": self._state.config.region,
            "functions": self.functions(),
            "invocations": [_invocation(record) for record in metrics.recent if record[0] > since],
            "series": {name: list(f.series) for name, f in metrics.functions.items() if f.series},
        }

    def functions(self) -> list[dict[str, Any]]:
        state = self._state
        metrics = state.metrics
        listed = []
        for name, function in sorted(state.functions.items()):
            config = function.config
            figures = metrics.functions.get(name)
            environments = [
                {
                    "pid": env.pid,
                    "state": "busy" if env.in_flight else env.state.value,
                    "initializationType": env.initialization_type,
                    "ageS": round(env.age_s, 1),
                    "maxMemoryUsedMb": env.max_memory_used_mb,
                    "memorySizeMb": config.memory_mb,
                    "inFlight": env.in_flight,
                }
                for env in function.environments
            ]
            listed.append(
                {
                    "name": name,
                    "memorySizeMb": config.memory_mb,
                    "timeoutS": config.timeout_s,
                    "reservedConcurrency": config.reserved_concurrency,
                    "provisionedConcurrency": config.provisioned_concurrency,
                    "invocations": figures.invocations if figures else 0,
                    "errors": figures.errors if figures else 0,
                    "throttles": state.limiter.throttles.get(name, 0),
                    "concurrentExecutions": state.limiter.in_use(name),
                    "environments": environments,
                }
            )
        return listed

    # The feed ----------------------------------------------------------------------------------------------

    def watch(self, connection: Connection, since: int) -> None:
        """Start a feed on this request's connection (answered as a stream, never ended by us but at
        close)."""
        if not connection.start_chunked(200, list(_FEED_HEADERS)):
            return
        # `retry`: the browser's wait before reconnecting, should the feed end.
        connection.write_chunk(b"retry: 1000\n: rapidboot console feed\n\n")
        self._watchers[connection] = since
        if self._timer is None and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(FEED_INTERVAL_S, self._tick)

    def _tick(self) -> None:
        self._timer = None
        state = self._state
        metrics = state.metrics
        for name in state.functions:  # the chart's concurrency, sampled while someone watches
            metrics.sample_concurrency(name, state.limiter.in_use(name))
        functions = self.functions()
        latest = metrics.sequence
        now = int(time.time())
        series = {
            name: [point for point in f.series if point[0] >= now - 2]
            for name, f in metrics.functions.items()
            if f.series
        }
        for connection, since in list(self._watchers.items()):
            if not connection.is_open or connection.write_backlog > MAX_BACKLOG_BYTES:
                self._drop(connection)
                continue
            update = {
                "sequence": latest,
                "now": time.time(),
                "functions": functions,
                "invocations": [_invocation(r) for r in metrics.recent if r[0] > since],
                "series": series,
            }
            if not connection.write_chunk(b"event: update\ndata: " + orjson.dumps(update) + b"\n\n"):
                self._drop(connection)
                continue
            self._watchers[connection] = latest
        if self._watchers and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(FEED_INTERVAL_S, self._tick)

    def _drop(self, connection: Connection) -> None:
        del self._watchers[connection]
        connection.end_chunked()

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def close(self) -> None:
        """The server stops: every feed ends (the browser's reconnects find no server)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for connection in list(self._watchers):
            self._drop(connection)


def _invocation(record: Invocation) -> dict[str, Any]:
    (
        sequence,
        ended,
        function,
        request_id,
        duration_ms,
        memory_mb,
        used_mb,
        init_ms,
        error,
        status,
        error_type,
        pid,
        tail,
    ) = record
    return {
        "sequence": sequence,
        "time": ended,
        "function": function,
        "requestId": request_id,
        "durationMs": round(duration_ms, 2),
        "billedDurationMs": billed_ms(duration_ms),
        "memorySizeMb": memory_mb,
        "maxMemoryUsedMb": used_mb,
        "initDurationMs": round(init_ms, 2) if init_ms is not None else None,
        "error": error,
        "status": status,
        "errorType": error_type,
        "pid": pid,
        "logTail": tail.decode("utf-8", errors="replace"),
    }
