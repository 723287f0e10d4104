"""The environment's side of its extensions (extensions/host.py holds their logic): the host created at
the first need, their API requests, an invoke's end waiting for them, and an extension's failure failing
the environment, as on the service."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import TYPE_CHECKING, Any

from .. import errors, rendering
from .environment_base import EnvironmentBase
from .invocation import InvokeResult, _Outcome

if TYPE_CHECKING:
    from ..extensions.host import ExtensionsHost
    from ..http import Request, Response


class EnvironmentExtensions(EnvironmentBase):
    """Extensions, as the environment they run in sees them."""

    def extensions_host(self, executables: list[Any] | None = None) -> ExtensionsHost:
        """This environment's extensions, created at the first need: the external ones at start, else the
        first registration of an internal one."""
        if self._extensions is None:
            from ..extensions.host import ExtensionsHost

            structured = self.config.environment.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"
            host = ExtensionsHost(
                self.config.name,
                self.config.version,
                self.initialization_type,
                executables or [],
                self._sink,
                self._on_error,
                self._extension_failed,
                structured,
                owner=f"{self.config.name}#{id(self):x}",
            )
            if self._init_done.done():
                host.agents.registration_open = False  # Init has ended: an internal one is too late
            self._extensions = host
            if self._output is not None:
                self._output.tap = host.function_line
        return self._extensions

    def extensions_request(self, request: Request) -> Response | None:
        """An Extensions, Telemetry or Logs API request (extensions/api.py)."""
        from ..extensions import api

        return api.handle(request, self.extensions_host(), self.config.handler, self.function_arn)

    def _after_runtime(self, request_id: str, started: float, duration_ms: float, outcome: _Outcome) -> bool:
        """The runtime answered: tell the subscribers; True if an extension is still at work on the invoke,
        whose end (REPORT, Duration) then waits for it while the invoker has its answer already."""
        host = self._extensions
        assert host is not None
        status = outcome.status or ("error" if outcome.result.function_error else "success")
        host.runtime_done(request_id, status, outcome.error_type, duration_ms, len(outcome.result.body))
        if not host.invoke_pending or self._returncode is not None or host.pending_reason is not None:
            host.invoke_request_id = None
            return False
        loop = asyncio.get_running_loop()
        busy: asyncio.Future[None] = loop.create_future()
        self._extensions_busy = busy
        remaining = self.config.timeout_s - (time.perf_counter() - started)
        timer = loop.call_at(
            loop.time() + max(0.0, remaining), self._extensions_late, request_id, started, outcome, busy
        )
        host.when_settled(
            functools.partial(self._extensions_settled, request_id, started, outcome, busy, timer)
        )
        return True

    def _extensions_settled(
        self, request_id: str, started: float, outcome: _Outcome, busy: asyncio.Future[None], timer: Any
    ) -> None:
        """Every INVOKE subscriber has asked again (or they failed the environment): the invoke ends."""
        timer.cancel()
        host = self._extensions
        if host is not None and host.failure is not None:
            outcome = _Outcome(outcome.result, "error", host.failure)
        self._settle(request_id, (time.perf_counter() - started) * 1000, outcome)
        busy.set_result(None)

    def _extensions_late(
        self, request_id: str, started: float, outcome: _Outcome, busy: asyncio.Future[None]
    ) -> None:
        """The invoke's time covers its extensions' work after the answer: past it, the invoke timed out
        (its invoker had its answer) and the environment is reset, as on the service."""
        host = self._extensions
        if host is not None:
            host.when_settled(None)
        outcome = _Outcome(outcome.result, "timeout", None)
        self._sink.platform(
            rendering.timeout_log_line(request_id, self.config.timeout_s), request_id=request_id
        )
        if host is not None:
            host.will_shut_down("timeout")
        self._abandon()
        if host is not None and host.failure is not None:
            outcome = _Outcome(outcome.result, "error", host.failure)
        self._settle(request_id, (time.perf_counter() - started) * 1000, outcome)
        busy.set_result(None)

    async def _extensions_done(self) -> None:
        busy = self._extensions_busy
        if busy is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(busy)
            self._extensions_busy = None

    def _extension_failed(self, error_type: str, message: str) -> None:
        """An extension crashed or reported an error: the environment fails, as on the service. Init, or
        the invoke in flight, ends with the extension's error type."""
        rids = [rid for rid, flight in self._inflight.items() if not flight.outcome.done()]
        if error_type == errors.EXTENSION_CRASH and self._limits.out_of_memory:
            # The kernel killed it for the function's memory, which its extensions share: the environment
            # ran out of memory, and ends as when the runtime is the one killed.
            self._out_of_memory(rids)
            return
        if not rids:
            self._sink.platform(f"{message}\t{error_type}")
        for request_id in rids:
            self._sink.platform(f"RequestId: {request_id} {message}\t{error_type}", request_id=request_id)
        if not self._init_done.done():
            self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
            body = rendering.function_error_body(error_type, message)
            self._init_done.set_result(
                _Outcome(InvokeResult(body, "application/json", True), "error", error_type)
            )
            if self._extensions is not None:
                self._extensions.init_done(self._init_duration_ms, "error", error_type)
        for request_id in rids:
            flight = self._inflight[request_id]
            body = rendering.function_error_body(error_type, f"RequestId: {request_id} {message}")
            flight.outcome.set_result(
                _Outcome(InvokeResult(body, "application/json", True), "error", error_type)
            )
        self._abandon()

    def _out_of_memory(self, rids: list[str]) -> None:
        self._sink.platform(f"Error: {self._exit_text()}\t{errors.RUNTIME_OUT_OF_MEMORY}")
        if not self._init_done.done():
            self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
            self._init_done.set_result(self._exit_outcome_for_init())
            if self._extensions is not None:
                self._extensions.init_done(self._init_duration_ms, "error", errors.RUNTIME_OUT_OF_MEMORY)
        for request_id in rids:
            self._inflight[request_id].outcome.set_result(self._exit_outcome(request_id))
        self._abandon()
