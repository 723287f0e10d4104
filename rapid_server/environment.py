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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from rapidboot.layers import PreparedFunction

from . import errors, rendering
from .config import OPT_DIR_VARIABLE, FunctionConfig, bootstrap_command
from .http import BodyReceiver, Connection, Response, bound_port, start_listener
from .limits import EnvironmentLimits
from .logs import LogSink
from .output import OutputRelay
from .peers import PeerCheck
from .process import RuntimeProcess, spawn_runtime
from .response_stream import MAX_STREAMED_BYTES, ResponseStream
from .state import Event, State, StateMachine

if TYPE_CHECKING:  # snapstart.py is imported only where a function has snap_start
    from .snapstart import ForkedProcess, Template
if TYPE_CHECKING:
    from .extensions.host import ExtensionsHost
    from .http import Request

INIT_TIMEOUT_S = 10.0
# RAPID's limit on a buffered response: 6 MiB + 100 bytes (reference section 1).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
# Between SIGTERM and SIGKILL when the server stops an environment.
SHUTDOWN_GRACE_S = 2.0
# How long a runtime that reported /init/error has to exit by itself before it is stopped.
_INIT_ERROR_EXIT_GRACE_S = 1.0
# How long an invoke waits for a warm runtime that has answered but not yet asked for its next event. A
# runtime asks within microseconds of its answer, but a local caller can be quicker still, so a sequential
# caller's next invoke often arrives first and waits for it (counted in its Duration). A runtime that has
# not asked after this long is still at work after its answer: on Lambda its environment is busy and the
# invoke goes to another, so here it goes to a new environment (`RuntimeBusy`). Generous for a loaded
# machine's scheduling delay, and far below the shortest function timeout.
NEXT_GRACE_S = 0.1


@dataclass(slots=True)
class Invocation:
    request_id: str
    payload: bytes
    invoked_function_arn: str
    trace_id: str
    content_type: str = "application/json"
    client_context: str | None = None  # decoded JSON; sync invokes only, as on Lambda
    log_tail: bool = False  # the caller wants the invoke's log (`X-Amz-Log-Type: Tail`)
    stream: ResponseStream | None = None  # InvokeWithResponseStream: where a streamed response goes
    tenant_id: str | None = None  # `X-Amz-Tenant-Id`, for a function with tenant isolation only
    # Fields the REPORT line ends with ("\tKey: value"...): a durable execution's invocation names its
    # execution and replay (rapid_server/durable/). None for every other invoke.
    report_fields: str | None = None


@dataclass(slots=True)
class InvokeResult:
    body: bytes
    content_type: str
    function_error: bool  # the invoker sees `X-Amz-Function-Error: Unhandled`


@dataclass(slots=True)
class _Outcome:
    """How an invoke (or the init before it) ended, for the invoker and for the REPORT line."""

    result: InvokeResult
    status: str | None = None  # REPORT `Status:` (timeout | error), None for success and handled errors
    error_type: str | None = None  # REPORT `Error Type:`


class _Poller:
    """A runtime's parked `/next` request, waiting to be handed an event. Its connection may have gone
    meanwhile: it is checked when taken."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection):
        self.connection = connection


class NotDispatched(Exception):
    """The invoke never reached this environment's runtime (it died first): run it elsewhere."""


class RuntimeBusy(Exception):
    """The runtime is still at work after its last answer (no /next within NEXT_GRACE_S): run the invoke
    elsewhere. Nothing was handed over; the environment lives on. `waited_s` counts in the invoke's
    Duration wherever it runs."""

    def __init__(self, waited_s: float):
        super().__init__(waited_s)
        self.waited_s = waited_s


class _InFlight:
    """One invoke handed to the runtime and not yet finished."""

    __slots__ = ("answer_first", "connection", "invocation", "outcome", "seat")

    def __init__(
        self,
        invocation: Invocation,
        seat: StateMachine,
        outcome: asyncio.Future[_Outcome],
        connection: Connection,
        answer_first: bool,
    ):
        self.invocation = invocation
        self.seat = seat
        self.outcome = outcome
        self.connection = connection  # the /next the event was written on
        # The invoker is answered before the runtime's 202 (Environment.invoke).
        self.answer_first = answer_first


def _log_stream_name(version: str) -> str:
    return datetime.now(UTC).strftime("%Y/%m/%d/[") + version + "]" + uuid.uuid4().hex


def _no_extra_environment() -> Mapping[str, str]:
    return {}


class Environment:
    # What the server adds to the process environment (a durable function's endpoint for its SDK's calls:
    # rapid_server/durable/); set by the Function that creates the environment.
    extra_environment: Callable[[], Mapping[str, str]] = staticmethod(_no_extra_environment)

    def __init__(
        self,
        config: FunctionConfig,
        function_arn: str,
        region: str,
        sink: LogSink,
        on_error: Callable[[BaseException], None],
        limits: EnvironmentLimits,
        package: PreparedFunction,
        initialization_type: str = "on-demand",
        peers: PeerCheck | None = None,
        template: Template | None = None,
    ):
        self.config = config
        self._peers = peers  # who may use this environment's Runtime API (None: anyone)
        # SnapStart (snapstart.py): the runtime is forked from this initialised template, not spawned, and
        # REPORT says Restore Duration where it would say Init Duration.
        self._template = template
        self._package = package  # the task root and /opt this environment sees
        self.function_arn = function_arn
        self.initialization_type = initialization_type
        self.capacity = config.per_environment_concurrency  # invokes in flight at once
        self._region = region
        self._sink = sink
        self._on_error = on_error
        self._limits = limits
        self._seats = [StateMachine()]  # the first seat carries init: its first /next ends Init
        self._inflight: dict[str, _InFlight] = {}
        self._report_fields: dict[str, str] = {}  # request id -> its Invocation.report_fields
        self._listener: asyncio.Server | None = None
        self._process: RuntimeProcess | ForkedProcess | None = None
        self._pollers: deque[_Poller] = deque()
        self._poller_arrived = asyncio.Event()
        self._exit_watch: asyncio.Task[None] | None = None
        self._returncode: int | None = None
        self._status_fd: int | None = None  # /proc/PID/status of the runtime, for its pending signals
        self._output: OutputRelay | None = None
        self._joining: asyncio.Future[None] | None = None  # the runtime joining its memory cgroup
        # Init
        self._spawned_at = 0.0
        self._init_duration_ms: float | None = None
        # Init Duration goes on an on-demand environment's first REPORT only; a provisioned environment's
        # init happened before anyone invoked it.
        self._init_reported = initialization_type == "provisioned-concurrency"
        # Made in the server's loop, and used only in it. Kept: each asyncio.get_running_loop() is a getpid
        # syscall on Python 3.11 (its fork check), and the invoke path asked three times per invoke.
        self._loop = asyncio.get_running_loop()
        self._init_done: asyncio.Future[_Outcome | None] = self._loop.create_future()
        self._init_error: tuple[bytes, str | None] | None = None
        self._sampler: asyncio.TimerHandle | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._stopping = False  # `stop` was called: invokes still waiting get the shutting-down error
        # Its extensions (extensions/), if any registered or are in <opt>/extensions; else None, and no
        # per-invoke work is done for them.
        self._extensions: ExtensionsHost | None = None
        self._extensions_busy: asyncio.Future[None] | None = None  # an invoke's extensions still at work
        # Told when the process has ended and everything is settled (the pool retires the environment).
        self.on_exit: Callable[[Environment], None] | None = None

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

    # Platform side ----------------------------------------------------------------------------------------

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

    async def _start_forked(self, template: Template, environ: dict[str, str]) -> None:
        """SnapStart: the runtime is a fork of the initialised template (snapstart.py). It joins the
        environment's cgroups itself, before its after-restore hooks; the server then tells it to go on
        (`go`), once its pid is known here, so that its Runtime API admits it. Bounded by the init limit,
        so a template that hangs in its init is an init timeout, never a hang."""
        read_fd, write_fd = os.pipe()
        self._spawned_at = time.perf_counter()
        from .snapstart import TemplateGone, TemplateInitError

        failure: _Outcome | None = None
        try:
            async with asyncio.timeout(INIT_TIMEOUT_S):
                cgroups = await self._limits.claim_cgroups()
                process = await template.fork(environ, cgroups, write_fd)
        except TemplateInitError as exc:
            failure = _Outcome(InvokeResult(exc.body, "application/json", True), "error", exc.error_type)
        except TemplateGone as exc:
            message = "The SnapStart template exited before it could restore this environment: " + (
                rendering.exit_description(exc.returncode) if exc.returncode is not None else "killed"
            )
            body = rendering.function_error_body(errors.RUNTIME_EXIT_ERROR, message)
            failure = _Outcome(
                InvokeResult(body, "application/json", True), "error", errors.RUNTIME_EXIT_ERROR
            )
        except TimeoutError:
            failure = _Outcome(InvokeResult(b"", "application/json", True), "timeout", None)
        except OSError as exc:
            body = rendering.function_error_body(errors.RUNTIME_EXIT_ERROR, f"snap_start: {exc}")
            failure = _Outcome(
                InvokeResult(body, "application/json", True), "error", errors.RUNTIME_EXIT_ERROR
            )
        finally:
            os.close(write_fd)
        if failure is not None:
            os.close(read_fd)
            self._fail_start(failure)
            return
        self._process = process
        self._output = OutputRelay(read_fd, self.config.name, self._sink)
        self._limits.started(process.pid)
        self._watch_process()
        process.go()

    def _watch_process(self) -> None:
        assert self._process is not None
        if self._limits.host.proc:  # else a pending SIGKILL is not seen (host.py)
            with contextlib.suppress(OSError):
                self._status_fd = os.open(f"/proc/{self._process.pid}/status", os.O_RDONLY | os.O_CLOEXEC)
        self._schedule_sample()
        self._exit_watch = asyncio.get_running_loop().create_task(self._watch_exit(self._process))
        if self._seats[0].state is State.TERMINATED:
            self._abandon()  # stopped while it was being spawned

    async def _joined_cgroup(self) -> None:
        """Every invoke runs under the kernel's limit: the first waits until the runtime is in its cgroup
        (normally done before its first /next). A runtime gone by then could not join: its exit says why."""
        joining = self._joining
        if joining is None:
            return
        try:
            await joining
        except OSError as exc:
            if self._returncode is None and not (self._process and self._process.has_exited()):
                self._on_error(exc)
        finally:
            self._joining = None

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

    # Runtime API side (called by runtime_api routes) ---------------------------------------------------

    def _admit(self, sock: socket.socket) -> bool:
        """A Runtime API connection is served only if it comes from the runtime or one of its descendants
        (peers.py); anyone else's is closed unread, and logged. Once per connection, never per request."""
        assert self._peers is not None
        if self._extensions is not None and any(
            self._peers.owned_by(sock, extension.process.pid) for extension in self._extensions.processes
        ):
            return True
        # Spawned from the spawner thread, a runtime can connect before `start` has its process object.
        pid = self._process.pid if self._process is not None else self._limits.spawned_pid()
        try:
            cgroup = self._limits.cgroup
            members = cgroup.pids if cgroup is not None else None
            if pid is not None and self._peers.owned_by(sock, pid, members):
                return True
            peer_pid = self._peers.foreign_owner(sock)
        except Exception as exc:  # a bug in the check must not lock out the runtime: admit, say so
            self._on_error(exc)
            return True
        self._sink.platform(rendering.foreign_peer_line(self.config.name, pid, peer_pid))
        return False

    def runtime_next(self, connection: Connection) -> Response | None:
        seat = self._seat_for_next()
        if seat is None:
            return rendering.invalid_state_transition(
                f"State transition from {self.state.value} to next is not allowed"
            )
        initializing = seat is self._seats[0] and seat.state is State.INITIALIZING
        seat.fire(Event.NEXT)
        if initializing:
            if self._extensions is not None:
                self._extensions.runtime_ready(self._init_finished)  # once every extension asked too
            else:
                self._init_finished()
        # Parked without a task: answered by _dispatch, which writes the event on the connection itself. A
        # parked /next whose connection drops stays queued and is skipped when taken (_take_poller).
        self._pollers.append(_Poller(connection))
        self._poller_arrived.set()
        return None

    def _init_finished(self) -> None:
        """The runtime (and every extension) asked for work: Init has ended."""
        self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
        self._drain_output()
        self._sample_memory()
        if not self._init_done.done():
            self._init_done.set_result(None)
            if self._extensions is not None:
                self._extensions.init_done(self._init_duration_ms, "success", None)

    def runtime_response(
        self,
        request_id: str,
        body: bytes,
        content_type: str | None,
        too_large: int,
        stream_error: tuple[str, bytes] | None = None,
    ) -> Response:
        flight, refusal = self._accept_answer(request_id, Event.RESPONSE, too_large)
        if flight is None:
            return refusal
        stream = flight.invocation.stream
        if stream is not None and stream.overflowed:
            self._complete(flight, self._response_too_large(stream.received, MAX_STREAMED_BYTES))
            return rendering.runtime_payload_too_large(MAX_STREAMED_BYTES)
        if stream_error is not None:
            # A streamed response that failed midway: the caller gets the error, as from an error post.
            error_type, error_body = stream_error
            if not _is_json_object(error_body):
                message = "The function's response stream ended with an error"
                error_body = rendering.function_error_body(error_type, message)
            self._complete(flight, _Outcome(InvokeResult(error_body, "application/json", True)))
            return rendering.RUNTIME_ACCEPTED
        self._complete(flight, _Outcome(InvokeResult(body, content_type or "application/json", False)))
        return rendering.RUNTIME_ACCEPTED

    def runtime_response_truncated(self, request_id: str) -> None:
        """A streamed response's connection closed before its body ended. As AWS's emulator has it, that
        response is the invoke's answer, and a failed one: the caller's stream ends with
        Runtime.TruncatedResponse (not as a success made of the bytes that came), and a later post for the
        same invoke is refused as any second answer."""
        flight = self._inflight.get(request_id)
        if flight is None or flight.outcome.done() or not flight.seat.allows(Event.RESPONSE):
            return
        flight.seat.fire(Event.RESPONSE)
        received = flight.invocation.stream.received if flight.invocation.stream is not None else 0
        message = (
            f"The function's streamed response was cut off after {received} bytes: its connection closed"
        )
        body = rendering.function_error_body(errors.RUNTIME_TRUNCATED_RESPONSE, message)
        self._complete(
            flight,
            _Outcome(
                InvokeResult(body, "application/json", True), "error", errors.RUNTIME_TRUNCATED_RESPONSE
            ),
        )

    def runtime_error(self, request_id: str, body: bytes, too_large: int = 0) -> Response:
        flight, refusal = self._accept_answer(request_id, Event.ERROR, too_large)
        if flight is None:
            return refusal
        # The body reaches the invoker unchanged. Lambda-Runtime-Function-Error-Type is optional (awslambdaric
        # omits it) and, as in RAPID, feeds only telemetry, which we do not have yet; a handler's exception
        # is no REPORT status.
        self._complete(flight, _Outcome(InvokeResult(body, "application/json", True)))
        return rendering.RUNTIME_ACCEPTED

    def stream_receiver(
        self, request_id: str, connection: Connection, content_type: str | None = None
    ) -> BodyReceiver | None:
        """A streamed `/response` is starting: where its body goes as it arrives, if its invoker takes a
        stream (InvokeWithResponseStream); None keeps it whole, checked when it ends, as any response."""
        flight = self._inflight.get(request_id)
        if flight is None or flight.outcome.done() or not flight.seat.allows(Event.RESPONSE):
            return None
        stream = flight.invocation.stream
        if stream is None:
            return None
        return stream.receive if stream.begin(connection, content_type) else None

    def answers_invoker_first(self, request_id: str) -> bool:
        """Whether the 202 for this invoke's answer waits until its invoker has been answered."""
        flight = self._inflight.get(request_id)
        return flight is not None and flight.answer_first

    def runtime_init_error(self, body: bytes, error_type_header: str | None) -> Response:
        seat = self._seats[0]
        if not seat.allows(Event.INIT_ERROR):
            return rendering.invalid_state_transition(
                f"State transition from {seat.state.value} to init error is not allowed"
            )
        seat.fire(Event.INIT_ERROR)
        self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
        error_type = errors.normalise_function_error_type(error_type_header) or _error_type_of(body)
        self._init_error = (body, error_type)
        self._drain_output()
        self._sample_memory()
        if not self._init_done.done():
            result = InvokeResult(body or b"{}", "application/json", True)
            self._init_done.set_result(_Outcome(result, "error", error_type))
            if self._extensions is not None:
                self._extensions.init_done(
                    self._init_duration_ms, "error", error_type or errors.RUNTIME_UNKNOWN
                )
        # The runtime is expected to exit now (it may still be reading this 202); make sure it does.
        self._reaper = asyncio.get_running_loop().create_task(self._reap_after_init_error())
        return rendering.RUNTIME_ACCEPTED

    # Seats and invokes in flight -------------------------------------------------------------------------

    def _seat_for_next(self) -> StateMachine | None:
        """Which seat a `/next` takes: a worker back from answering; else the init seat; else a new seat
        while under capacity; else a seat re-polling after its connection dropped. None: refused (403)."""
        for wanted in (State.RESPONDED, State.INITIALIZING):
            for seat in self._seats:
                if seat.state is wanted:
                    return seat
        if self._seats[0].state is State.IDLE and len(self._seats) < self.capacity:
            seat = StateMachine()
            self._seats.append(seat)
            return seat
        for seat in self._seats:
            if seat.allows(Event.NEXT):
                return seat
        return None

    def _seat_for_dispatch(self) -> StateMachine:
        for seat in self._seats:
            if seat.state is State.IDLE:
                return seat
        # A worker parked a second /next before its answer was in: it is asking for work again.
        for seat in self._seats:
            if seat.state is State.RESPONDED:
                seat.fire(Event.NEXT)
                return seat
        raise RuntimeError("a /next is parked but no seat can take an event")

    def _runtime_alive(self) -> bool:
        """Not exited, not a zombie (pidfd), and no SIGKILL pending. The last matters: a runtime killed
        while parked on /next may still be in its recv, and if the event lands there before the signal
        takes effect the kernel hands it the data and then kills it, so it dies having "read" an event it
        never ran. A pending SIGKILL shows in /proc/PID/status (one pread of a file held open)."""
        if self._returncode is not None:
            return False
        if self._process is not None and self._process.has_exited():
            return False
        return not _sigkill_pending(self._status_fd)

    def _parked_poller(self) -> _Poller | None:
        """The oldest parked `/next` whose connection is still open, if any."""
        while self._pollers:
            poller = self._pollers.popleft()
            if poller.connection.is_open and not poller.connection.peer_closed:
                return poller
        return None

    async def _wait_poller(self, since: float) -> _Poller | None:
        """Wait for a /next: at most the function's timeout (TimeoutError) while the runtime initialises or
        a worker is still to ask for the first time; at most NEXT_GRACE_S when every worker has asked before
        and none is waiting, as then they are all still at work after their last answers (RuntimeBusy)."""
        seats = self._seats
        busy = len(seats) >= self.capacity and not any(seat.state is State.INITIALIZING for seat in seats)
        if not busy:
            async with asyncio.timeout(self.config.timeout_s):
                return await self._take_poller()
        try:
            async with asyncio.timeout(NEXT_GRACE_S):
                return await self._take_poller()
        except TimeoutError:
            raise RuntimeBusy(time.perf_counter() - since) from None

    async def _take_poller(self) -> _Poller | None:
        """Take the oldest parked `/next` whose connection is still open; None if the process has ended."""
        while True:
            poller = self._parked_poller()
            if poller is not None:
                return poller
            if self._seats[0].state is State.TERMINATED:
                return None
            self._poller_arrived.clear()
            await self._poller_arrived.wait()

    def _dispatch(self, poller: _Poller, invocation: Invocation, answer_first: bool) -> _InFlight:
        deadline_ms = int(time.time() * 1000 + self.config.timeout_s * 1000)
        headers = [
            ("Content-Type", invocation.content_type),
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_function_arn),
            ("Lambda-Runtime-Trace-Id", invocation.trace_id),
        ]
        if invocation.client_context is not None:
            headers.append(("Lambda-Runtime-Client-Context", invocation.client_context))
        if invocation.tenant_id is not None:
            headers.append(("Lambda-Runtime-Aws-Tenant-Id", invocation.tenant_id))
        self._drain_output()  # what was printed before belongs to the previous owner
        seat = self._seat_for_dispatch()
        seat.fire(Event.DISPATCH)
        flight = _InFlight(invocation, seat, self._loop.create_future(), poller.connection, answer_first)
        self._inflight[invocation.request_id] = flight
        self._update_output_owner()
        self._sink.platform(
            rendering.start_line(invocation.request_id, self.config.version), request_id=invocation.request_id
        )
        # Checked and written in this same step: no event is handed to a connection that has gone.
        sent = poller.connection.send(Response(200, invocation.payload, headers))
        if not sent or poller.connection.reset_by_peer:
            # The runtime's end was closed before the event reached it (its close answered our data with
            # RST): it was dying as the event was written, and never had it.
            self._inflight.pop(invocation.request_id, None)
            self._sink.platform(rendering.not_dispatched_line(invocation.request_id))
            self._abandon()
            raise NotDispatched
        if self._extensions is not None:
            self._extensions.invoke_started(
                invocation.request_id, deadline_ms, invocation.invoked_function_arn, invocation.trace_id
            )
        return flight

    def _accept_answer(
        self, request_id: str, event: Event, too_large: int
    ) -> tuple[_InFlight | None, Response]:
        """Validate an answer before firing: an unknown or already answered id is 400 InvalidRequestID
        (reference section 1), a seat that cannot answer now 403. Then fire it; an answer over the size
        limit (`too_large`, its size) ends the invoke as Function.ResponseSizeTooLarge and is 413. The
        flight is returned only when the answer's body is for the caller to decide on."""
        flight = self._inflight.get(request_id)
        if flight is None or flight.outcome.done():
            return None, rendering.invalid_request_id()
        if not flight.seat.allows(event):
            return None, rendering.invalid_state_transition(
                f"State transition from {flight.seat.state.value} to {event.value} is not allowed"
            )
        flight.seat.fire(event)
        if too_large:
            self._complete(flight, self._response_too_large(too_large))
            return None, rendering.runtime_payload_too_large(MAX_RESPONSE_BYTES)
        return flight, rendering.RUNTIME_ACCEPTED

    def _complete(self, flight: _InFlight, outcome: _Outcome) -> None:
        """The runtime answered. Its output and memory are read after the invoker has the answer
        (`_settle`): a runtime writes its output before it posts, so that output is in the pipe already."""
        if not flight.outcome.done():
            flight.outcome.set_result(outcome)

    def _update_output_owner(self) -> None:
        if self._output is None:
            return
        unanswered = [rid for rid, flight in self._inflight.items() if not flight.outcome.done()]
        if len(unanswered) == 1:
            self._output.owner = unanswered[0]
        elif len(unanswered) > 1:
            self._output.owner = "*"  # several invokes share the pipe: no line can be told apart

    @staticmethod
    def _response_too_large(size: int, limit: int = MAX_RESPONSE_BYTES) -> _Outcome:
        message = (
            f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes)."
        )
        body = rendering.function_error_body(errors.FUNCTION_RESPONSE_SIZE_TOO_LARGE, message)
        error_type = errors.FUNCTION_RESPONSE_SIZE_TOO_LARGE
        return _Outcome(InvokeResult(body, "application/json", True), "error", error_type)

    # Endings ---------------------------------------------------------------------------------------------

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
        self._poller_arrived.set()
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

    def _terminate_seats(self) -> None:
        for seat in self._seats:
            if seat.allows(Event.TERMINATE):
                seat.fire(Event.TERMINATE)

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

    # Init ------------------------------------------------------------------------------------------------

    def _process_environment(self, runtime_api: str) -> dict[str, str]:
        return process_environment(
            self.config,
            self._package,
            self._region,
            runtime_api,
            self.initialization_type,
            self._limits.scratch,
            self.extra_environment(),
        )

    def _runtime_command(self) -> tuple[str, ...]:
        """What the environment runs: a provided runtime's `bootstrap` (the task root's, else the layers',
        as provided.al2023), the configured command, or our bootstrap."""
        if self.config.runtime == "provided":
            candidates = self._package.bootstrap_candidates()
            found = next((c for c in candidates if c.is_file()), candidates[0])
            return (str(found),)
        return self.config.command or bootstrap_command(self.config.handler)

    def _fail_spawn(self, program: str, exc: OSError) -> None:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        message = f"fork/exec {program}: {reason}"
        body = rendering.function_error_body(errors.RUNTIME_INVALID_ENTRYPOINT, message)
        self._fail_start(
            _Outcome(InvokeResult(body, "application/json", True), "error", errors.RUNTIME_INVALID_ENTRYPOINT)
        )

    def _fail_start(self, outcome: _Outcome) -> None:
        """No runtime could be started: init failed, with `outcome`."""
        self._terminate_seats()
        self._close_listener()
        self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
        if not self._init_done.done():
            self._init_done.set_result(outcome)

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

    # Extensions (extensions/host.py holds their logic; these are the environment's side) -----------------

    async def _launch_extensions(self, environ: dict[str, str]) -> bool:
        """Start `<opt>/extensions/*` and let them register before the runtime starts, as the service does.
        False if that failed (the environment has then ended, its first invoke says why)."""
        from .extensions.launch import find_executables  # only for functions with layers

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

    def extensions_host(self, executables: list[Any] | None = None) -> ExtensionsHost:
        """This environment's extensions, created at the first need: the external ones at start, else the
        first registration of an internal one."""
        if self._extensions is None:
            from .extensions.host import ExtensionsHost

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
        from .extensions import api

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

    # Logging ---------------------------------------------------------------------------------------------

    def _log_failed_init(self, request_id: str, outcome: _Outcome) -> None:
        """The invoke that found init failed: INIT_REPORT, then the invoke's own START/END/REPORT."""
        init_ms = self._init_duration_ms or 0.0
        self._sink.platform(
            rendering.init_report_line(
                init_ms,
                # A forked runtime's own failure is its restore's; before it, the template's init failed.
                "restore" if self._template is not None and self._process is not None else "init",
                outcome.status or "error",
                outcome.error_type,
            ),
            request_id=request_id,
        )
        result = outcome.result
        if outcome.status == "timeout":
            message = rendering.timeout_message(request_id, self.config.timeout_s)
            result = InvokeResult(
                rendering.function_error_body(errors.SANDBOX_TIMEDOUT, message), result.content_type, True
            )
        elif not result.body or result.body == b"{}":
            message = rendering.exit_message(request_id, self._exit_text())
            result = InvokeResult(
                rendering.function_error_body(errors.RUNTIME_EXIT_ERROR, message), result.content_type, True
            )
        outcome.result = result
        self._sink.platform(rendering.start_line(request_id, self.config.version), request_id=request_id)
        if outcome.status == "timeout":
            self._sink.platform(
                rendering.timeout_log_line(request_id, self.config.timeout_s), request_id=request_id
            )
        self._sink.platform(rendering.end_line(request_id), request_id=request_id)
        self._sink.platform(
            rendering.report_line(
                request_id,
                0.0,
                self.config.memory_mb,
                self._peak_mb(),
                None,
                outcome.status,
                outcome.error_type,
            )
            + self._report_fields.pop(request_id, ""),
            request_id=request_id,
        )
        self._observe(request_id, 0.0, None, outcome)

    def _log_invoke(self, request_id: str, duration_ms: float, outcome: _Outcome) -> None:
        init_ms = restore_ms = None
        if not self._init_reported:
            # SnapStart: the restore (fork, cgroups, after-restore hooks) is this environment's start.
            if self._template is not None:
                restore_ms = self._init_duration_ms
            else:
                init_ms = self._init_duration_ms
            self._init_reported = True
        report = rendering.report_line(
            request_id,
            duration_ms,
            self.config.memory_mb,
            self._peak_mb(),
            init_ms,
            outcome.status,
            outcome.error_type,
            restore_duration_ms=restore_ms,
        )
        if self._report_fields:
            report += self._report_fields.pop(request_id, "")
        self._sink.platform(rendering.end_line(request_id), report, request_id=request_id)  # one write
        if self._extensions is not None:
            status = outcome.status or ("error" if outcome.result.function_error else "success")
            self._extensions.report(
                request_id,
                status,
                outcome.error_type,
                duration_ms,
                self.config.memory_mb,
                self._peak_mb(),
                init_ms,
            )
        self._observe(request_id, duration_ms, init_ms, outcome)

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

    # Memory and output -----------------------------------------------------------------------------------

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


def process_environment(
    config: FunctionConfig,
    package: PreparedFunction,
    region: str,
    runtime_api: str,
    initialization_type: str,
    scratch: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Reference section 4. The server's own environment is not inherited, as on Lambda, except what a
    local function needs to find programs and to reach AWS with the developer's credentials."""
    env = {
        key: value
        for key in (
            "PATH",
            "HOME",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
        )
        if (value := os.environ.get(key)) is not None
    }
    runtime_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    task_root, opt = package.task_root, package.opt_dir
    env.update(
        {
            "_HANDLER": config.handler,
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "TMPDIR": str(scratch),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": _log_stream_name(config.version),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": runtime_dir,
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            # Lambda's order: the system's, the task root's, then the layers' (/opt/lib) last.
            "LD_LIBRARY_PATH": ":".join(
                p
                for p in (
                    os.environ.get("LD_LIBRARY_PATH"),
                    str(task_root),
                    str(task_root / "lib"),
                    str(opt / "lib") if opt is not None else None,
                )
                if p
            ),
        }
    )
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    if opt is not None:
        env["PATH"] = f"{path}:{opt / 'bin'}"  # as /opt/bin ends Lambda's PATH
        env[OPT_DIR_VARIABLE] = str(opt)  # where our bootstrap finds <opt>/python (on Lambda: /opt)
    else:
        env["PATH"] = path
    env.update(extra or {})  # what the server adds (a durable function's endpoint: rapid_server/durable/)
    env.update(config.environment)
    return env


def _nothing() -> None:
    """No runtime to signal: it has exited already (an extension's SHUTDOWN after a crash or a timeout)."""


def _retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _time_up(outcome: asyncio.Future[_Outcome]) -> None:
    """The invoke's timeout: its outcome is settled as timed out, so a late response is refused (400)."""
    if not outcome.done():
        outcome.set_exception(TimeoutError())


_SIGKILL_BIT = 1 << (signal.SIGKILL - 1)


def _sigkill_pending(status_fd: int | None) -> bool:
    """Whether SIGKILL is pending for the process (thread or process-wide masks of /proc/PID/status)."""
    if status_fd is None:
        return False
    try:
        status = os.pread(status_fd, 4096, 0)
    except OSError:
        return True  # the process is gone
    for field in (b"SigPnd:", b"ShdPnd:"):
        start = status.find(field)
        if start >= 0:
            end = status.find(b"\n", start)
            try:  # not `contextlib.suppress`: three Python calls, twice per invoke
                if int(status[start + len(field) : end], 16) & _SIGKILL_BIT:
                    return True
            except ValueError:
                pass
    return False


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(orjson.loads(body), dict)
    except orjson.JSONDecodeError:
        return False


def _error_type_of(body: bytes) -> str | None:
    try:
        value = orjson.loads(body).get("errorType")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None
