"""How an environment's invokes and the environment itself end: a timeout, the runtime's exit (its error
type, what its invokers and its init are answered), the kill of every process it started, and the listener
closed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from typing import Any

from .. import errors, rendering
from .environment_base import EnvironmentBase
from .invocation import InvokeResult, NotDispatched, _Outcome

# How long a runtime that reported /init/error has to exit by itself before it is stopped.
_INIT_ERROR_EXIT_GRACE_S = 1.0


class EnvironmentEndings(EnvironmentBase):
    """Timeouts, exits, kills."""

    async def _time_out(self, request_id: str) -> _Outcome:
        self._sample_memory()
        self._drain_output()
        self._sink.platform(
            rendering.timeout_log_line(request_id, self.config.timeout_s), request_id=request_id
        )
        timed_out = self._inflight.get(request_id)
        outcome = _Outcome(
            InvokeResult(
                rendering.function_error_body(
                    errors.SANDBOX_TIMEDOUT, rendering.timeout_message(request_id, self.config.timeout_s)
                ),
                "application/json",
                True,
            ),
            "timeout",
            None,
        )
        if timed_out is not None and not timed_out.outcome.done():
            timed_out.outcome.set_result(outcome)  # before the kill: the exit watcher must not claim it
        if self._extensions is not None and self._extensions.will_shut_down("timeout"):
            # The runtime is killed now; its extensions get SHUTDOWN (timeout) and their grace in the
            # exit watcher, which the invoker's answer does not wait for.
            self._abandon()
            return outcome
        await self._kill()
        return outcome

    def _exit_outcome(self, request_id: str) -> _Outcome:
        message = rendering.exit_message(request_id, self._exit_text())
        body = rendering.function_error_body(errors.RUNTIME_EXIT_ERROR, message)
        return _Outcome(InvokeResult(body, "application/json", True), "error", self._exit_error_type())

    def _exit_error_type(self) -> str:
        """The invoker always sees Runtime.ExitError; the REPORT says when memory was the cause."""
        return errors.RUNTIME_OUT_OF_MEMORY if self._limits.out_of_memory else errors.RUNTIME_EXIT_ERROR

    def _exit_text(self) -> str:
        return rendering.exit_description(
            self._returncode if self._returncode is not None else -signal.SIGKILL
        )

    def _answer_after_exit(self) -> None:
        """The runtime has exited: whoever waits for its init or for an invoke of it has their answer."""
        if not self._init_done.done():
            self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
            if self._stopping:  # an invoke waiting for this init is cut short by the server's stop
                self._init_done.add_done_callback(_retrieved)
                self._init_done.set_exception(errors.shutting_down())
            else:
                self._init_done.set_result(self._exit_outcome_for_init())
        for request_id, flight in self._inflight.items():
            if flight.outcome.done():
                continue
            if flight.connection.reset_by_peer:
                # It died with the event unread in its socket (killed while parked on /next, just as the
                # event was written): it never ran this invoke, which is not its to fail.
                flight.outcome.set_exception(NotDispatched())
            else:
                flight.outcome.set_result(self._exit_outcome(request_id))

    def _exit_outcome_for_init(self) -> _Outcome:
        if self._init_error is not None:
            body, error_type = self._init_error
            return _Outcome(InvokeResult(body, "application/json", True), "error", error_type)
        return _Outcome(InvokeResult(b"", "application/json", True), "error", self._exit_error_type())

    def _abandon(self) -> None:
        """This runtime serves no more: every seat ends now and every process of the environment is killed
        (its cgroup's, see containment.py). Unusable from this step on; the exit watcher settles the rest
        once the processes are gone."""
        self._terminate_seats()
        if self._process is not None:
            if self._extensions is not None and self._extensions.shutting_down:
                self._limits.kill_group(self._process.pid)  # the rest after their SHUTDOWN (_watch_exit)
            else:
                self._limits.kill(self._process.pid)
        if self._extensions is not None:
            self._extensions.kill()

    async def _kill(self) -> None:
        self._abandon()
        if self._exit_watch is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._exit_watch)

    def _signal_group(self, signum: signal.Signals) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._pollers.clear()  # their connections end with the process

    async def _reap_after_init_error(self) -> None:
        if self._exit_watch is not None:
            try:
                async with asyncio.timeout(_INIT_ERROR_EXIT_GRACE_S):
                    await asyncio.shield(self._exit_watch)
                return
            except TimeoutError:
                pass
        await self.stop(grace_s=_INIT_ERROR_EXIT_GRACE_S)


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
