"""One execution environment: a runtime process, its own Runtime API listener, and its lifecycle.

The environment is driven from two sides. The Invoke API side calls `invoke()`; the runtime process calls
the Runtime API, whose routes (`runtime_api.py`) call `runtime_next/response/error/init_error` here. Every
change of lifecycle goes through the transition table in `state.py`.

Lifecycle as Lambda's (reference section 4): spawn -> Init (until the runtime's first `/next`, at most
10 s) -> Invoke (from handing the event over until the runtime posts the result, at most the function's
timeout) -> ... A timeout, a crash or an init failure ends the environment; the function starts a fresh one
for the next invoke.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from . import errors, rendering
from .config import FunctionConfig, bootstrap_command
from .http import Connection, Response, bound_port, start_listener
from .limits import EnvironmentLimits
from .logs import LogSink
from .state import Event, State, StateMachine

INIT_TIMEOUT_S = 10.0
# RAPID's limit on a buffered response: 6 MiB + 100 bytes (reference section 1).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
# Between SIGTERM and SIGKILL when the server stops an environment.
SHUTDOWN_GRACE_S = 2.0
# How long a runtime that reported /init/error has to exit by itself before it is stopped.
_INIT_ERROR_EXIT_GRACE_S = 1.0
_MEMORY_SAMPLE_INTERVAL_S = 0.1
_OUTPUT_LINE_LIMIT = 256 * 1024  # a runtime writing one endless line is cut into pieces of this size


@dataclass(slots=True)
class Invocation:
    request_id: str
    payload: bytes
    invoked_function_arn: str
    trace_id: str
    content_type: str = "application/json"


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
    """A runtime's parked `/next` request, waiting to be handed an event."""

    __slots__ = ("connection", "delivered")

    def __init__(self, connection: Connection, delivered: asyncio.Future[None]):
        self.connection = connection
        self.delivered = delivered


def _log_stream_name() -> str:
    return datetime.now(UTC).strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex


class Environment:
    def __init__(
        self,
        config: FunctionConfig,
        function_arn: str,
        region: str,
        sink: LogSink,
        on_error: Callable[[BaseException], None],
        limits: EnvironmentLimits,
        initialization_type: str = "on-demand",
    ):
        self.config = config
        self.initialization_type = initialization_type
        self._limits = limits
        self.function_arn = function_arn
        self._region = region
        self._sink = sink
        self._on_error = on_error
        self._machine = StateMachine()
        self._listener: asyncio.Server | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._pollers: deque[_Poller] = deque()
        self._poller_arrived: asyncio.Future[None] | None = None
        self._exit_watch: asyncio.Task[None] | None = None
        self._returncode: int | None = None
        # Init
        self._spawned_at = 0.0
        self._init_duration_ms: float | None = None
        # Init Duration goes on an on-demand environment's first REPORT only; a provisioned environment's
        # init happened before anyone invoked it.
        self._init_reported = initialization_type != "on-demand"
        self._init_done: asyncio.Future[_Outcome | None] = asyncio.get_running_loop().create_future()
        self._init_error: tuple[bytes, str | None] | None = None
        # The invoke in flight
        self._current: Invocation | None = None
        self._dispatched_at = 0.0
        self._outcome: asyncio.Future[_Outcome] | None = None
        self._sampler: asyncio.TimerHandle | None = None
        self._error_type: str | None = None  # from the runtime's error post, for telemetry
        self._reaper: asyncio.Task[None] | None = None
        # Output relay
        self._output_fd: int | None = None
        self._output_buffer = b""
        self._output_owner: str | None = None  # request id the output belongs to; None = init

    @property
    def state(self) -> State:
        return self._machine.state

    @property
    def usable(self) -> bool:
        return self._machine.state in (State.INITIALIZING, State.IDLE, State.RESPONDED)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # Platform side ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open this environment's Runtime API and spawn the runtime. Init proceeds in the background."""
        from .runtime_api import make_handler  # runtime_api imports this module for its types

        self._listener = await start_listener(
            make_handler(self), "127.0.0.1", 0, MAX_RESPONSE_BYTES, self._on_error
        )
        runtime_api = f"127.0.0.1:{bound_port(self._listener)}"
        argv = self.config.command or bootstrap_command(self.config.handler)
        read_fd, write_fd = os.pipe()
        self._spawned_at = time.perf_counter()
        try:
            self._process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=self.config.code,
                env=self._process_environment(runtime_api),
                start_new_session=True,  # its own process group: a timeout kills everything it started
                preexec_fn=self._limits.preexec,  # memory cgroup and private /tmp, before any user code
            )
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            self._fail_spawn(argv[0], exc)
            return
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        self._output_fd = read_fd
        asyncio.get_running_loop().add_reader(read_fd, self._read_output)
        self._limits.started(self._process.pid)
        self._schedule_sample()
        self._exit_watch = asyncio.get_running_loop().create_task(self._watch_exit(self._process))

    async def provision(self) -> bool:
        """Start and initialise ahead of any invoke (provisioned concurrency). False, with an INIT_REPORT
        line saying why, if init failed."""
        await self.start()
        outcome = await self._wait_initialized()
        if outcome is None:
            return True
        init_ms = self._init_duration_ms or 0.0
        status = outcome.status or "error"
        self._sink.platform(rendering.init_report_line(init_ms, "init", status, outcome.error_type))
        return False

    async def invoke(self, invocation: Invocation) -> InvokeResult:
        """Run one invoke to its end and log it; afterwards `usable` says whether the environment lives on."""
        outcome = await self._wait_initialized()
        if outcome is not None:
            self._log_failed_init(invocation.request_id, outcome)
            return outcome.result
        timeout_s = self.config.timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                poller = await self._wait_for_poller()
            if poller is None:  # the runtime died between invokes
                self._sink.platform(rendering.start_line(invocation.request_id, "$LATEST"))
                outcome = self._exit_outcome(invocation.request_id)
                self._log_invoke(invocation.request_id, 0.0, outcome)
                return outcome.result
            self._dispatch(poller, invocation)
            assert self._outcome is not None
            async with asyncio.timeout(timeout_s):
                outcome = await asyncio.shield(self._outcome)
        except TimeoutError:
            if self._current is None:  # timed out waiting for the runtime to ask for work
                self._sink.platform(rendering.start_line(invocation.request_id, "$LATEST"))
                self._dispatched_at = time.perf_counter() - timeout_s
            outcome = await self._time_out(invocation.request_id)
        duration_ms = (time.perf_counter() - self._dispatched_at) * 1000 if self._dispatched_at else 0.0
        self._finish_invoke()
        self._log_invoke(invocation.request_id, duration_ms, outcome)
        await self._check_scratch(invocation.request_id)
        return outcome.result

    async def _check_scratch(self, request_id: str) -> None:
        """Where the kernel cannot limit /tmp, an environment that overfilled it is reset after the invoke."""
        if self._returncode is not None:
            return
        overflow = self._limits.scratch_overflow_bytes()
        if overflow:
            limit_mb = self.config.ephemeral_storage_mb
            self._sink.platform(rendering.scratch_overflow_line(request_id, limit_mb, overflow))
            await self._kill()

    async def stop(self, grace_s: float = SHUTDOWN_GRACE_S) -> None:
        """SIGTERM the process group, SIGKILL it after `grace_s`, and release everything."""
        process = self._process
        if process is not None and process.returncode is None:
            self._signal_group(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace_s):
                    await process.wait()
            except TimeoutError:
                pass
        await self._kill()
        self._close_listener()

    # Runtime API side (called by runtime_api routes) ---------------------------------------------------

    async def runtime_next(self, connection: Connection) -> Response | None:
        if not self._machine.allows(Event.NEXT):
            return rendering.invalid_state_transition(
                f"State transition from {self.state.value} to next is not allowed"
            )
        was_initializing = self._machine.state is State.INITIALIZING
        self._machine.fire(Event.NEXT)
        if was_initializing:
            self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
            self._drain_output()
            self._sample_memory()
            if not self._init_done.done():
                self._init_done.set_result(None)
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        poller = _Poller(connection, delivered)
        self._pollers.append(poller)
        if self._poller_arrived is not None and not self._poller_arrived.done():
            self._poller_arrived.set_result(None)
        try:
            await delivered  # answered by _dispatch, which writes the event on the connection itself
        finally:
            with contextlib.suppress(ValueError):
                self._pollers.remove(poller)
        return None

    def runtime_response(
        self, request_id: str, body: bytes, content_type: str | None, too_large: int
    ) -> Response:
        refusal = self._check_answer(request_id, Event.RESPONSE)
        if refusal is not None:
            return refusal
        self._machine.fire(Event.RESPONSE)
        if too_large:
            self._complete(self._response_too_large(too_large))
            return rendering.runtime_payload_too_large(MAX_RESPONSE_BYTES)
        self._complete(_Outcome(InvokeResult(body, content_type or "application/json", False)))
        return rendering.RUNTIME_ACCEPTED

    def runtime_error(
        self, request_id: str, body: bytes, error_type_header: str | None, too_large: int = 0
    ) -> Response:
        refusal = self._check_answer(request_id, Event.ERROR)
        if refusal is not None:
            return refusal
        self._machine.fire(Event.ERROR)
        if too_large:
            self._complete(self._response_too_large(too_large))
            return rendering.runtime_payload_too_large(MAX_RESPONSE_BYTES)
        # The body reaches the invoker unchanged. The type header is optional (awslambdaric omits it)
        # and, as in RAPID, feeds only the REPORT/telemetry error type.
        self._error_type = errors.normalise_function_error_type(error_type_header)
        self._complete(_Outcome(InvokeResult(body, "application/json", True)))
        return rendering.RUNTIME_ACCEPTED

    def _check_answer(self, request_id: str, event: Event) -> Response | None:
        """Validate before firing: an unknown or already answered id is 400, a wrong moment 403."""
        if not self._is_current(request_id):
            return rendering.invalid_request_id()
        if not self._machine.allows(event):
            return rendering.invalid_state_transition(
                f"State transition from {self.state.value} to {event.value} is not allowed"
            )
        return None

    def runtime_init_error(self, body: bytes, error_type_header: str | None) -> Response:
        if not self._machine.allows(Event.INIT_ERROR):
            return rendering.invalid_state_transition(
                f"State transition from {self.state.value} to init error is not allowed"
            )
        self._machine.fire(Event.INIT_ERROR)
        self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
        error_type = errors.normalise_function_error_type(error_type_header) or _error_type_of(body)
        self._init_error = (body, error_type)
        self._drain_output()
        self._sample_memory()
        if not self._init_done.done():
            result = InvokeResult(body or b"{}", "application/json", True)
            self._init_done.set_result(_Outcome(result, "error", error_type))
        # The runtime is expected to exit now (it may still be reading this 202); make sure it does.
        self._reaper = asyncio.get_running_loop().create_task(self._reap_after_init_error())
        return rendering.RUNTIME_ACCEPTED

    async def _reap_after_init_error(self) -> None:
        if self._exit_watch is not None:
            try:
                async with asyncio.timeout(_INIT_ERROR_EXIT_GRACE_S):
                    await asyncio.shield(self._exit_watch)
                return
            except TimeoutError:
                pass
        await self.stop(grace_s=_INIT_ERROR_EXIT_GRACE_S)

    # Internals -------------------------------------------------------------------------------------------

    def _process_environment(self, runtime_api: str) -> dict[str, str]:
        """Reference section 4. The server's own environment is not inherited, as on Lambda, except what a
        local function needs to find programs and to reach AWS with the developer's credentials."""
        config = self.config
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
        env.update(
            {
                "_HANDLER": config.handler,
                "AWS_LAMBDA_RUNTIME_API": runtime_api,
                "AWS_LAMBDA_FUNCTION_NAME": config.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
                "AWS_LAMBDA_INITIALIZATION_TYPE": self.initialization_type,
                "TMPDIR": str(self._limits.scratch),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": _log_stream_name(),
                "AWS_REGION": self._region,
                "AWS_DEFAULT_REGION": self._region,
                "LAMBDA_TASK_ROOT": str(config.code),
                "LAMBDA_RUNTIME_DIR": runtime_dir,
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
                "LD_LIBRARY_PATH": ":".join(
                    p
                    for p in (os.environ.get("LD_LIBRARY_PATH"), str(config.code), str(config.code / "lib"))
                    if p
                ),
            }
        )
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(config.environment)
        return env

    def _fail_spawn(self, program: str, exc: OSError) -> None:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        message = f"fork/exec {program}: {reason}"
        self._machine.fire(Event.TERMINATE)
        self._close_listener()
        body = rendering.function_error_body(errors.RUNTIME_INVALID_ENTRYPOINT, message)
        self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
        self._init_done.set_result(
            _Outcome(InvokeResult(body, "application/json", True), "error", errors.RUNTIME_INVALID_ENTRYPOINT)
        )

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

    def _log_failed_init(self, request_id: str, outcome: _Outcome) -> None:
        """The invoke that found init failed: INIT_REPORT, then the invoke's own START/END/REPORT."""
        init_ms = self._init_duration_ms or 0.0
        self._sink.platform(
            rendering.init_report_line(init_ms, "init", outcome.status or "error", outcome.error_type)
        )
        if outcome.status == "timeout":
            message = rendering.timeout_message(request_id, self.config.timeout_s)
            outcome.result.body = rendering.function_error_body(errors.SANDBOX_TIMEDOUT, message)
        elif not outcome.result.body or outcome.result.body == b"{}":
            outcome.result.body = rendering.function_error_body(
                errors.RUNTIME_EXIT_ERROR, rendering.exit_message(request_id, self._exit_text())
            )
        self._sink.platform(rendering.start_line(request_id, "$LATEST"))
        if outcome.status == "timeout":
            self._sink.platform(rendering.timeout_log_line(request_id, self.config.timeout_s))
        self._sink.platform(rendering.end_line(request_id))
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
        )

    async def _wait_for_poller(self) -> _Poller | None:
        """The oldest parked `/next` whose connection is still open; None if the process has ended."""
        while True:
            while self._pollers and not self._pollers[0].connection.is_open:
                self._pollers.popleft()
            if self._pollers:
                return self._pollers[0]
            if self._machine.state is State.TERMINATED:
                return None
            self._poller_arrived = asyncio.get_running_loop().create_future()
            await self._poller_arrived

    def _dispatch(self, poller: _Poller, invocation: Invocation) -> None:
        deadline_ms = int(time.time() * 1000 + self.config.timeout_s * 1000)
        headers = [
            ("Content-Type", invocation.content_type),
            ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn", invocation.invoked_function_arn),
            ("Lambda-Runtime-Trace-Id", invocation.trace_id),
        ]
        self._drain_output()  # what was printed before belongs to the previous owner
        if self._machine.state is State.RESPONDED:
            # A second worker parked on /next before the first answered: the runtime is asking for work.
            self._machine.fire(Event.NEXT)
        self._current = invocation
        self._outcome = asyncio.get_running_loop().create_future()
        self._machine.fire(Event.DISPATCH)
        self._output_owner = invocation.request_id
        self._sink.platform(rendering.start_line(invocation.request_id, "$LATEST"))
        self._dispatched_at = time.perf_counter()
        # Checked and written in this same step: no event is handed to a connection that has gone.
        sent = poller.connection.send(Response(200, invocation.payload, headers))
        if not poller.delivered.done():
            poller.delivered.set_result(None)
        if not sent:
            # The runtime's connection closed under us after the check; it cannot have the event.
            self._on_error(RuntimeError("runtime /next connection closed during dispatch"))
        self._schedule_sample()

    def _is_current(self, request_id: str) -> bool:
        """Whether `request_id` is the invoke in flight and still unanswered (reference section 1: an
        unknown or already answered id is 400 InvalidRequestID)."""
        return (
            self._current is not None
            and self._current.request_id == request_id
            and self._outcome is not None
            and not self._outcome.done()
        )

    def _complete(self, outcome: _Outcome) -> None:
        self._drain_output()
        self._sample_memory()
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    @staticmethod
    def _response_too_large(size: int) -> _Outcome:
        message = (
            f"Response payload size ({size} bytes) exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes)."
        )
        body = rendering.function_error_body(errors.FUNCTION_RESPONSE_SIZE_TOO_LARGE, message)
        error_type = errors.FUNCTION_RESPONSE_SIZE_TOO_LARGE
        return _Outcome(InvokeResult(body, "application/json", True), "error", error_type)

    def _finish_invoke(self) -> None:
        self._current = None
        self._dispatched_at = 0.0
        self._outcome = None

    async def _time_out(self, request_id: str) -> _Outcome:
        self._sample_memory()
        self._drain_output()
        self._sink.platform(rendering.timeout_log_line(request_id, self.config.timeout_s))
        await self._kill()
        message = rendering.timeout_message(request_id, self.config.timeout_s)
        body = rendering.function_error_body(errors.SANDBOX_TIMEDOUT, message)
        return _Outcome(InvokeResult(body, "application/json", True), "timeout", None)

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

    def _log_invoke(self, request_id: str, duration_ms: float, outcome: _Outcome) -> None:
        init_ms = None
        if not self._init_reported:
            init_ms = self._init_duration_ms
            self._init_reported = True
        self._sink.platform(rendering.end_line(request_id))
        self._sink.platform(
            rendering.report_line(
                request_id,
                duration_ms,
                self.config.memory_mb,
                self._peak_mb(),
                init_ms,
                outcome.status,
                outcome.error_type,
            )
        )

    async def _watch_exit(self, process: asyncio.subprocess.Process) -> None:
        returncode = await process.wait()
        self._returncode = returncode
        self._drain_output(final=True)
        if self._machine.state is not State.TERMINATED:
            self._machine.fire(Event.TERMINATE)
        # Anything the runtime left behind in its process group goes with it.
        self._signal_group(signal.SIGKILL)
        if not self._init_done.done():
            self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
            self._init_done.set_result(self._exit_outcome_for_init())
        if self._outcome is not None and not self._outcome.done() and self._current is not None:
            self._outcome.set_result(self._exit_outcome(self._current.request_id))
        if self._poller_arrived is not None and not self._poller_arrived.done():
            self._poller_arrived.set_result(None)
        self._close_listener()
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        self._limits.release()

    def _exit_outcome_for_init(self) -> _Outcome:
        if self._init_error is not None:
            body, error_type = self._init_error
            return _Outcome(InvokeResult(body, "application/json", True), "error", error_type)
        return _Outcome(InvokeResult(b"", "application/json", True), "error", self._exit_error_type())

    async def _kill(self) -> None:
        if self._machine.state is not State.TERMINATED:
            self._machine.fire(Event.TERMINATE)
        self._signal_group(signal.SIGKILL)
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
        for poller in list(self._pollers):
            if not poller.delivered.done():
                poller.delivered.cancel()

    # Memory ----------------------------------------------------------------------------------------------

    def _sample_memory(self) -> None:
        if self._returncode is None:
            self._limits.sample()

    def _schedule_sample(self) -> None:
        """Sample for the process's whole life: under RSS watching this is what enforces the memory limit,
        and a crash still reports the memory used before it."""
        self._sample_memory()
        if self._returncode is None:
            self._sampler = asyncio.get_running_loop().call_later(
                _MEMORY_SAMPLE_INTERVAL_S, self._schedule_sample
            )

    def _peak_mb(self) -> int:
        return self._limits.peak_mb

    # Output relay ----------------------------------------------------------------------------------------

    def _read_output(self) -> None:
        self._drain_output()

    def _drain_output(self, final: bool = False) -> None:
        """Read everything the runtime has written so far. Called before each change of owner (dispatch,
        response), so a line lands under the request that printed it: the runtime writes its output before
        it posts its response, so that output is already in the pipe when the response arrives."""
        fd = self._output_fd
        if fd is None:
            return
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                final = True
                break
            self._output_buffer += chunk
            self._emit_lines()
        if final:
            if self._output_buffer:
                self._sink.function_output(self.config.name, self._output_owner, self._output_buffer)
                self._output_buffer = b""
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
            self._output_fd = None

    def _emit_lines(self) -> None:
        buffer = self._output_buffer
        start = 0
        while True:
            newline = buffer.find(b"\n", start)
            if newline < 0:
                break
            self._sink.function_output(self.config.name, self._output_owner, buffer[start:newline])
            start = newline + 1
        buffer = buffer[start:]
        while len(buffer) > _OUTPUT_LINE_LIMIT:
            self._sink.function_output(self.config.name, self._output_owner, buffer[:_OUTPUT_LINE_LIMIT])
            buffer = buffer[_OUTPUT_LINE_LIMIT:]
        self._output_buffer = buffer


def _error_type_of(body: bytes) -> str | None:
    try:
        value = orjson.loads(body).get("errorType")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None
