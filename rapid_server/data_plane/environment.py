"""One execution environment: a runtime process, its own Runtime API listener, and its lifecycle.

The environment is driven from two sides. The Invoke API side calls `invoke()`; the runtime process calls
the Runtime API, whose routes (`runtime_api.py`) call `runtime_next/response/error/init_error` here.

Lifecycle as Lambda's (reference section 4): spawn -> Init (until the runtime's first `/next`, at most
10 s) -> Invoke (from handing the event over until the runtime posts the result, at most the function's
timeout) -> ... A timeout, a crash or an init failure ends the environment; the function starts a fresh one
for the next invoke.

Each runtime worker that polls `/next` holds a *seat*: one state machine of `state.py`'s transition table
(ready -> invoking -> responded -> ready). An environment has one seat, or up to AWS_LAMBDA_MAX_CONCURRENCY
when the runtime runs that many workers (Lambda Managed Instances), so several invokes can be in flight in
one environment, each answered through the seat that took it. Invokes in flight are found by request id.

The class is made of parts, one job each, composed below (plain inheritance: a part's method is the
class's own, with no layer between): environment_base.py (what an environment holds), seats.py (seats,
parked `/next`s, handing an invoke over), answers.py (the Runtime API's requests), endings.py (timeouts,
exits, kills), process_setup.py (the runtime's process), report.py (END, REPORT, INIT_REPORT) and
extension_hooks.py (its extensions). This module is its core: start, invoke, stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
from typing import TYPE_CHECKING

from .. import errors, rendering
from ..http import bound_port, start_listener
from .answers import EnvironmentAnswers
from .endings import EnvironmentEndings, _retrieved
from .extension_hooks import EnvironmentExtensions
from .invocation import INIT_TIMEOUT_S, MAX_RESPONSE_BYTES, Invocation, InvokeResult, NotDispatched, _Outcome
from .output import OutputRelay
from .process import RuntimeProcess, spawn_runtime
from .process_setup import EnvironmentProcess
from .report import EnvironmentReport
from .seats import EnvironmentSeats, _InFlight
from .state import State

if TYPE_CHECKING:  # snapstart.py is imported only where a function has snap_start
    from .snapstart import ForkedProcess

# Between SIGTERM and SIGKILL when the server stops an environment.
SHUTDOWN_GRACE_S = 2.0


class Environment(
    EnvironmentSeats,
    EnvironmentAnswers,
    EnvironmentEndings,
    EnvironmentProcess,
    EnvironmentReport,
    EnvironmentExtensions,
):
    @property
    def state(self) -> State:
        """The first seat's state: the whole story of an environment that serves one invoke at a time."""
        return self._seats[0].state

    @property
    def usable(self) -> bool:
        """Alive and initialised or initialising: it may take (more) invokes."""
        return self._seats[0].state not in (State.INIT_FAILED, State.TERMINATED)

    @property
    def polling(self) -> bool:
        """A runtime worker is parked on /next: an invoke given now is handed over at once."""
        return bool(self._pollers)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def age_s(self) -> float:
        """Since its runtime was spawned (the console's environments)."""
        return time.perf_counter() - self._spawned_at if self._spawned_at else 0.0

    @property
    def max_memory_used_mb(self) -> int:
        """The peak so far, as its next REPORT's `Max Memory Used`."""
        return self._peak_mb()

    async def start(self) -> None:
        """Open this environment's Runtime API and spawn the runtime. Init proceeds in the background."""
        from .runtime_api import make_body_router, make_handler  # runtime_api imports this module

        self._listener = await start_listener(
            make_handler(self),
            "127.0.0.1",
            0,
            MAX_RESPONSE_BYTES,
            self._on_error,
            body_router=make_body_router(self),
            admit=self._admit if self._peers is not None and self._peers.enabled else None,
        )
        runtime_api = f"127.0.0.1:{bound_port(self._listener)}"
        if self._template is not None:
            await self._start_forked(self._template, self._process_environment(runtime_api))
            return
        argv = self._runtime_command()
        read_fd, write_fd = os.pipe()
        environ = self._process_environment(runtime_api)
        self._spawned_at = time.perf_counter()
        if self._package.opt_dir is not None and not await self._launch_extensions(environ):
            return
        try:
            popen = await self._limits.spawn(
                functools.partial(spawn_runtime, argv, self._package.task_root, environ, write_fd)
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            self._fail_spawn(argv[0], exc)
            return
        os.close(write_fd)
        self._process = RuntimeProcess(popen, pidfd=self._limits.host.pidfd)
        self._output = OutputRelay(read_fd, self.config.name, self._sink)
        if self._extensions is not None:
            self._output.tap = self._extensions.function_line
        self._limits.started(self._process.pid)
        if self._limits.joins_cgroup:
            loop = asyncio.get_running_loop()
            self._joining = loop.run_in_executor(None, self._limits.join_cgroup, self._process.pid)
            self._joining.add_done_callback(_retrieved)  # a runtime that dies first cannot join: no noise
        self._watch_process()

    async def provision(self) -> bool:
        """Start and initialise ahead of any invoke (provisioned concurrency). False, with an INIT_REPORT
        line saying why, if init failed."""
        await self.start()
        try:
            outcome = await self._wait_initialized()
        except errors.ServiceError:  # stopped meanwhile
            return False
        if outcome is None:
            return True
        init_ms = self._init_duration_ms or 0.0
        status = outcome.status or "error"
        self._sink.platform(rendering.init_report_line(init_ms, "init", status, outcome.error_type))
        return False

    async def invoke(
        self, invocation: Invocation, answer_first: bool = False, waited_s: float = 0.0
    ) -> InvokeResult:
        """Run one invoke to its end and log it; afterwards `usable` says whether the environment lives on.
        Raises `NotDispatched` when the runtime died before it could be handed the event, `RuntimeBusy`
        when it is still at work after its last answer.

        Duration runs from when the invoke starts waiting for this runtime's /next (Init excluded) to its
        answer, plus `waited_s`, what it waited already for a runtime that turned out busy.

        With `answer_first`, the invoker is answered first: the runtime's 202 for its answer is written
        after the caller's step (`answers_invoker_first`), and the invoke is settled (its output relayed,
        its memory read, END and REPORT logged, its /tmp checked) in the loop's next step, still ahead of
        any invoke this environment can take next (a new invoke needs a step of its own, queued behind it).
        Together that took ~25 us of the server's work off a warm invoke's latency (2-core machine)."""
        request_id = invocation.request_id
        if invocation.report_fields is not None:
            self._report_fields[request_id] = invocation.report_fields
        outcome = await self._wait_initialized()
        if outcome is not None:
            self._log_failed_init(request_id, outcome)
            return outcome.result
        if self._extensions_busy is not None:
            await self._extensions_done()
        if self._joining is not None:
            await self._joined_cgroup()
        timeout_s = self.config.timeout_s
        flight: _InFlight | None = None
        started = time.perf_counter() - waited_s
        try:
            # A warm runtime is normally parked on /next already: take it without a timeout context.
            poller = self._parked_poller()
            if poller is None and self._seats[0].state is not State.TERMINATED:
                poller = await self._wait_poller(started + waited_s)
            if poller is None or not self._runtime_alive():
                # Died before it asked for this invoke (e.g. killed while parked on /next, its exit not yet
                # seen): nothing was handed over, so the invoke is not this environment's to fail. The
                # environment is finished either way.
                self._abandon()
                raise NotDispatched
            flight = self._dispatch(poller, invocation, answer_first)
            # The timeout is one timer that fails the outcome, not a timeout context around a shield: the
            # invoke is never cancelled (Function.invoke), and this saved ~8 us of server CPU per invoke.
            loop = self._loop
            timer = loop.call_at(loop.time() + timeout_s, _time_up, flight.outcome)
            try:
                outcome = await flight.outcome
            except NotDispatched:
                self._inflight.pop(request_id, None)
                self._sink.platform(rendering.not_dispatched_line(request_id))
                raise
            finally:
                timer.cancel()
        except TimeoutError:
            if flight is None:  # timed out waiting for the runtime to ask for work
                self._sink.platform(
                    rendering.start_line(request_id, self.config.version), request_id=request_id
                )
            outcome = await self._time_out(request_id)
        self._inflight.pop(request_id, None)
        duration_ms = (time.perf_counter() - started) * 1000
        if self._extensions is not None and self._after_runtime(request_id, started, duration_ms, outcome):
            return outcome.result  # settled once the extensions are done with it (_settle_after_extensions)
        if answer_first:
            self._loop.call_soon(self._settle, request_id, duration_ms, outcome)
        else:
            self._settle(request_id, duration_ms, outcome)
        return outcome.result

    def exit_result(self, request_id: str) -> InvokeResult:
        """Log and answer an invoke this environment could not run because its runtime had exited."""
        self._sink.platform(rendering.start_line(request_id, self.config.version), request_id=request_id)
        outcome = self._exit_outcome(request_id)
        self._log_invoke(request_id, 0.0, outcome)
        return outcome.result

    async def stop(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """End the environment within `grace_s`: invokes in flight may finish in it (past it, their invokers
        get the server's shutting-down error, never the runtime's exit); then the runtime gets SIGTERM for
        what is left of it; then every process of the environment is killed and everything released."""
        self._stopping = True
        deadline = asyncio.get_running_loop().time() + grace_s
        unanswered = [flight.outcome for flight in self._inflight.values() if not flight.outcome.done()]
        if unanswered and grace_s > 0:
            await asyncio.wait(unanswered, timeout=grace_s)
        for request_id, flight in self._inflight.items():
            if not flight.outcome.done():
                self._sink.platform(rendering.shutdown_cut_line(request_id, grace_s), request_id=request_id)
                flight.outcome.set_exception(errors.shutting_down(grace_s))
        process = self._process
        if self._extensions is not None and grace_s > 0 and self._returncode is None:
            await self._extensions.shutdown("spindown", functools.partial(self._signal_group, signal.SIGTERM))
        if process is not None and process.returncode is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await process.wait()
        await self._kill()
        self._close_listener()

    def _settle(self, request_id: str, duration_ms: float, outcome: _Outcome) -> None:
        """After an invoke's answer: relay its output, read its memory, log END and REPORT, and reset an
        environment that overfilled its /tmp, all before the environment can take another invoke."""
        self._drain_output()
        self._sample_memory()
        self._log_invoke(request_id, duration_ms, outcome)
        if self._returncode is not None:
            return
        overflow = self._limits.scratch_overflow_bytes()
        if overflow:
            limit_mb = self.config.ephemeral_storage_mb
            self._sink.platform(
                rendering.scratch_overflow_line(request_id, limit_mb, overflow), request_id=request_id
            )
            self._abandon()

    async def _wait_initialized(self) -> _Outcome | None:
        if self._init_done.done():
            return self._init_done.result()
        try:
            async with asyncio.timeout(max(0.0, INIT_TIMEOUT_S - (time.perf_counter() - self._spawned_at))):
                return await asyncio.shield(self._init_done)
        except TimeoutError:
            self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
            self._sample_memory()
            if not self._init_done.done():  # before the kill: the exit watcher must not report an exit
                self._init_done.set_result(
                    _Outcome(InvokeResult(b"", "application/json", True), "timeout", None)
                )
            await self._kill()
            return self._init_done.result()

    async def _watch_exit(self, process: RuntimeProcess | ForkedProcess) -> None:
        returncode = await process.wait()
        self._returncode = returncode
        self._drain_output(final=True)
        host = self._extensions
        if host is not None and not self._stopping:
            host.will_shut_down("failure")  # a crash: its extensions have their SHUTDOWN first
        self._abandon()  # nothing the runtime started outlives it: its cgroup (or group) is killed
        if host is not None:
            if host.pending_reason is not None:
                # The invokers are answered first; the environment's end waits for the extensions.
                self._answer_after_exit()
                await host.shutdown(host.pending_reason, _nothing)
            await host.close()
        await self._limits.ended()
        self._answer_after_exit()
        self._wake_next_waiters()
        self._close_listener()
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        self._limits.release()
        if self._status_fd is not None:
            os.close(self._status_fd)
            self._status_fd = None
        if self.on_exit is not None:
            self.on_exit(self)

    async def _launch_extensions(self, environ: dict[str, str]) -> bool:
        """Start `<opt>/extensions/*` and let them register before the runtime starts, as the service does.
        False if that failed (the environment has then ended, its first invoke says why)."""
        from ..extensions.launch import find_executables  # only for functions with layers

        executables = find_executables(self._package.opt_dir)
        if not executables:
            return True
        host = self.extensions_host(executables)
        deadline = asyncio.get_running_loop().time() + INIT_TIMEOUT_S
        await host.launch(environ, self._package.task_root, deadline, self._limits)
        if not self._init_done.done():
            return True
        self._terminate_seats()
        self._close_listener()
        await host.close()
        if self.on_exit is not None:
            self.on_exit(self)
        return False

    def _observe(self, request_id: str, duration_ms: float, init_ms: float | None, outcome: _Outcome) -> None:
        """Lambda's metrics of this invoke (observability/metrics.py), from its REPORT's figures."""
        observer = self._sink.observer
        if observer is not None:
            observer.invoked(
                self,
                request_id,
                duration_ms,
                self._peak_mb(),
                init_ms,
                outcome.result.function_error,
                outcome.status,
                outcome.error_type,
            )

    def _sample_memory(self, refresh_tree: bool = False) -> None:
        if self._returncode is None:
            self._limits.sample(refresh_tree)

    def _schedule_sample(self) -> None:
        """Sample for the process's whole life: under RSS watching this is what enforces the memory limit,
        and a crash still reports the memory used before it. This tick also refreshes the process tree."""
        self._sample_memory(refresh_tree=True)
        if self._returncode is None:
            self._sampler = asyncio.get_running_loop().call_later(
                self._limits.sample_interval_s, self._schedule_sample
            )

    def _peak_mb(self) -> int:
        return self._limits.peak_mb

    def _drain_output(self, final: bool = False) -> None:
        if self._output is not None:
            self._output.drain(final)


def _nothing() -> None:
    """No runtime to signal: it has exited already (an extension's SHUTDOWN after a crash or a timeout)."""


def _time_up(outcome: asyncio.Future[_Outcome]) -> None:
    """The invoke's timeout: its outcome is settled as timed out, so a late response is refused (400)."""
    if not outcome.done():
        outcome.set_exception(TimeoutError())
