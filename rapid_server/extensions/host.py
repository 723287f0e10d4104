"""One environment's extensions: their processes, their Extensions API state (`agents.py`) and their
telemetry (`telemetry.py`), behind the few calls the environment (data_plane/environment.py and
extension_hooks.py) makes at its lifecycle's points.

Lifecycle as the service's (reference sections 3 and 4):
- Init: external extensions start first and register; then the runtime starts (it may register internal
  extensions until its first `/next`). Init ends when the runtime and every agent have asked for their next
  event, all within the init limit.
- Invoke: INVOKE goes to its subscribers as the runtime gets the event. The invoker is answered when the
  runtime answers; the invoke ends (REPORT, billed duration) when every INVOKE subscriber has asked again,
  and the environment's next invoke waits for that.
- Shutdown (idle reaping, server stop): SHUTDOWN with a deadline 2 s ahead (500 ms when only internal
  extensions registered), then the kill.
- An external extension that exits otherwise has crashed: the environment fails (`Extension.Crash`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from .. import errors, rendering
from ..data_plane.logs import LogSink
from ..data_plane.output import OutputRelay
from ..data_plane.process import RuntimeProcess, spawn_runtime
from . import events
from .agents import Agent, Agents, AgentState
from .telemetry import PORTS, TelemetryHub

if TYPE_CHECKING:
    from ..data_plane.limits import EnvironmentLimits

SHUTDOWN_EXTERNAL_MS = 2000
SHUTDOWN_INTERNAL_MS = 500
_DRAIN_S = 0.5  # at most this long for the last telemetry batch of an environment that ends


class ExtensionProcess:
    __slots__ = ("name", "output", "process")

    def __init__(self, name: str, process: RuntimeProcess, output: OutputRelay):
        self.name = name
        self.process = process
        self.output = output


class ExtensionsHost:
    def __init__(
        self,
        function_name: str,
        version: str,
        initialization_type: str,
        executables: list[Path],
        sink: LogSink,
        on_error: Callable[[BaseException], None],
        on_failure: Callable[[str, str], None],
        structured_logs: bool,
        owner: str,
    ):
        self.function_name = function_name
        self.version = version
        self.initialization_type = initialization_type
        self.executables = executables
        self.agents = Agents(frozenset(path.name for path in executables))
        self.telemetry = TelemetryHub(on_error)
        self.structured_logs = structured_logs
        self.owner = owner  # this environment, in the server-wide table of ports (telemetry.PORTS)
        self._sink = sink
        self.on_error = on_error
        self._on_failure = on_failure  # (error type, message): the environment fails
        self.processes: list[ExtensionProcess] = []
        self._watchers: list[asyncio.Task[None]] = []
        self._runtime_ready = False
        self._on_init_complete: Callable[[], None] | None = None
        self._init_complete = False
        self._stopping = False
        self._failed = False
        self._shutdown: asyncio.Future[None] | None = None  # a SHUTDOWN under way, done when it is over
        self.pending_reason: str | None = None  # a SHUTDOWN due after a crash or a timeout (will_shut_down)
        self.failure: str | None = None  # the error type the environment failed with
        self._started_iso = ""
        self._arn = ""  # the INVOKE event's invokedFunctionArn, rendered once into `_invoke_head`
        self._invoke_head = b""
        self._on_settled: Callable[[], None] | None = None  # an invoke's end, once its subscribers asked
        self.invoke_request_id: str | None = None  # the invoke whose INVOKE subscribers are waited for
        self.agents.on_change = self.check
        self.telemetry.emit("platform", events.init_start(initialization_type, function_name, version))

    # Init ------------------------------------------------------------------------------------------------

    async def launch(
        self,
        environ: Mapping[str, str],
        cwd: Path,
        deadline: float,
        limits: EnvironmentLimits,
    ) -> None:
        """Start the external extensions and wait (until `deadline`, a loop time) until each has registered
        or exited: the runtime starts after them, as on the service. Each is spawned as the runtime is
        (`limits.spawn`): born in the environment's cgroup, joined to its memory cgroup, its memory counted
        with the runtime's, so the function's memory limit holds them all, as on Lambda."""
        loop = asyncio.get_running_loop()
        for path in self.executables:
            read_fd, write_fd = os.pipe()
            try:
                popen = await limits.spawn(
                    functools.partial(spawn_runtime, [str(path)], cwd, environ, write_fd)
                )
            except OSError as exc:
                os.close(read_fd)
                os.close(write_fd)
                reason = exc.strerror.lower() if exc.strerror else str(exc)
                self._fail(errors.EXTENSION_LAUNCH_ERROR, f"fork/exec {path}: {reason}")
                return
            os.close(write_fd)
            output = OutputRelay(read_fd, self.function_name, self._sink)
            output.owner = path.name  # its lines read `[function extension-name] ...`
            output.tap = self._extension_line
            process = ExtensionProcess(path.name, RuntimeProcess(popen, pidfd=limits.host.pidfd), output)
            self.processes.append(process)
            limits.extension_started(popen.pid)
            if limits.joins_cgroup:
                with contextlib.suppress(OSError):
                    await loop.run_in_executor(None, limits.join_cgroup, popen.pid)
            self._watchers.append(loop.create_task(self._watch(process)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while not self._failed and any(
                    self.agents.by_name(p.name) is None and p.process.returncode is None
                    for p in self.processes
                ):
                    await self.agents.changed()

    def runtime_ready(self, on_init_complete: Callable[[], None]) -> None:
        """The runtime's first `/next`: Init ends once every agent has asked too (`on_init_complete`)."""
        self._runtime_ready = True
        self._on_init_complete = on_init_complete
        self.check()

    def check(self) -> None:
        """After anything that may end a wait: an invoke's end (`when_settled`), Init's end."""
        if self._on_settled is not None and (self._failed or not self.agents.waited_for):
            settled, self._on_settled = self._on_settled, None
            self.invoke_request_id = None
            settled()
        if self._init_complete or not self._runtime_ready or self._failed:
            return
        if self.agents.waited_for:
            return
        self._init_complete = True
        self.agents.registration_open = False
        if self._on_init_complete is not None:
            self._on_init_complete()

    def init_done(self, duration_ms: float, status: str, error_type: str | None) -> None:
        self.telemetry.emit(
            "platform", events.init_runtime_done(self.initialization_type, status, error_type)
        )
        self.telemetry.emit(
            "platform", events.init_report(self.initialization_type, duration_ms, status, error_type)
        )
        self.telemetry.end_init()

    # Invoke ----------------------------------------------------------------------------------------------

    def invoke_started(
        self, request_id: str, deadline_ms: int, invoked_function_arn: str, trace_id: str
    ) -> None:
        if self.telemetry.subscriptions:
            self._started_iso = events.now_iso()
            self.telemetry.emit("platform", events.start(request_id, self.version, trace_id))
        if self._arn != invoked_function_arn:  # one per qualifier the environment is invoked with
            self._arn = invoked_function_arn
            self._invoke_head = events.invoke_head(invoked_function_arn)
        body = self._invoke_head % (deadline_ms, events.json_string(request_id), events.json_string(trace_id))
        if self.agents.send("INVOKE", body):
            self.invoke_request_id = request_id

    def runtime_done(
        self, request_id: str, status: str, error_type: str | None, duration_ms: float, produced: int
    ) -> None:
        if not self.telemetry.subscriptions:
            return
        self.telemetry.emit(
            "platform",
            events.runtime_done(request_id, status, error_type, duration_ms, produced, self._started_iso),
        )

    @property
    def invoke_pending(self) -> bool:
        """The runtime has answered, but an INVOKE subscriber has not asked for its next event yet."""
        return self.invoke_request_id is not None and bool(self.agents.waited_for) and not self._failed

    def when_settled(self, callback: Callable[[], None] | None) -> None:
        """`callback` once every INVOKE subscriber has asked for its next event (or the extensions failed
        the environment); None: no longer. A callback, not a task: this is every such invoke's end."""
        self._on_settled = callback
        if callback is None:
            self.invoke_request_id = None
        else:
            self.check()

    def report(
        self,
        request_id: str,
        status: str,
        error_type: str | None,
        duration_ms: float,
        memory_mb: int,
        used_mb: int,
        init_ms: float | None,
    ) -> None:
        if not self.telemetry.subscriptions:
            return
        self.telemetry.emit(
            "platform",
            events.report(request_id, status, error_type, duration_ms, memory_mb, used_mb, init_ms),
        )

    # Log records -----------------------------------------------------------------------------------------

    def function_line(self, line: bytes) -> None:
        if self.telemetry.wants_function or self.telemetry.in_init:
            self.telemetry.emit("function", events.log_record("function", line, self.structured_logs))

    def _extension_line(self, line: bytes) -> None:
        if self.telemetry.wants_extension or self.telemetry.in_init:
            self.telemetry.emit("extension", events.log_record("extension", line, False))

    # Extensions API side ---------------------------------------------------------------------------------

    def registered(self, agent: Agent) -> None:
        self.telemetry.emit("platform", events.extension(agent.name, list(agent.events)))
        self._sink.platform(
            f"EXTENSION\tName: {agent.name}\tState: Ready\tEvents: [{', '.join(agent.events)}]"
        )

    def subscribed(self, name: str, types: list[str], api: str) -> None:
        if api == "telemetry":
            self.telemetry.emit("platform", events.telemetry_subscription(name, types))
        label = "TELEMETRY" if api == "telemetry" else "LOGS"
        kinds = ", ".join(t.capitalize() for t in types)
        self._sink.platform(f"{label}\tName: {name}\tState: Subscribed\tTypes: [{kinds}]")

    def agent_error(self, agent: Agent, error_type: str, during_init: bool) -> None:
        """`init/error` or `exit/error`: the environment fails with the extension's error type."""
        self.agents.errored(agent)
        phase = "init" if during_init else "exit"
        self._fail(error_type, f"Extension {agent.name} reported an {phase} error: {error_type}")

    # Endings ---------------------------------------------------------------------------------------------

    async def shutdown(self, reason: str, signal_runtime: Callable[[], None]) -> None:
        """SHUTDOWN to its subscribers, then wait until each asks again (or exits), until the deadline."""
        self._stopping = True
        self._shutdown = asyncio.get_running_loop().create_future()
        self.pending_reason = None
        try:
            await self._shut_down(reason, signal_runtime)
        finally:
            self._shutdown.set_result(None)

    async def _shut_down(self, reason: str, signal_runtime: Callable[[], None]) -> None:
        subscribers = [
            a for a in self.agents.agents if "SHUTDOWN" in a.events and a.state is not AgentState.EXITED
        ]
        external = any(a.external for a in self.agents.agents)
        budget_ms = SHUTDOWN_EXTERNAL_MS if external else SHUTDOWN_INTERNAL_MS
        if not self.agents.agents:
            return
        deadline_ms = int(time.time() * 1000) + budget_ms
        body = orjson.dumps({"eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms})
        self.agents.send("SHUTDOWN", body)
        signal_runtime()
        for subscription in self.telemetry.subscriptions:
            subscription.flush()
        if not subscribers and not any(a.external for a in self.agents.agents):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(budget_ms / 1000):
                await self.agents.settled_or_exited()
                await self.telemetry.drain(budget_ms / 1000)

    def will_shut_down(self, reason: str) -> bool:
        """The runtime has crashed (`failure`) or timed out (`timeout`): True if a SHUTDOWN with that reason
        is due to a live extension first (`pending_reason`; sent by `shutdown`). Not after one already
        began, nor once the extensions are being ended or have failed the environment."""
        if self.pending_reason is not None:
            return True
        if self._stopping or self._failed or self._shutdown is not None:
            return False
        if not any(a.state is not AgentState.EXITED for a in self.agents):
            return False
        self.pending_reason = reason
        return True

    @property
    def shutting_down(self) -> bool:
        """A SHUTDOWN is due or under way: the extensions' processes are not to be killed before its end."""
        return self.pending_reason is not None or (self._shutdown is not None and not self._shutdown.done())

    def kill(self) -> None:
        """Every extension process now (the environment has ended), unless a SHUTDOWN is due or under way:
        the runtime, told to stop, often exits at once, and its extensions still have until their deadline."""
        self._stopping = True
        if self.shutting_down:
            return
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.process.pid, signal.SIGKILL)

    async def close(self) -> None:
        """After the environment's processes have ended: the last telemetry, then nothing is left."""
        if self._shutdown is not None:
            await asyncio.shield(self._shutdown)
        self.kill()
        for process in self.processes:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(process.process.wait(), 1.0)
            process.output.drain(final=True)
        with contextlib.suppress(Exception):
            await self.telemetry.drain(_DRAIN_S)
        self.telemetry.close()
        PORTS.release(self.owner)

    async def _watch(self, process: ExtensionProcess) -> None:
        returncode = await process.process.wait()
        process.output.drain(final=True)
        agent = self.agents.by_name(process.name)
        said_why = agent is not None and agent.state is AgentState.ERRORED  # init/error, exit/error
        if not self._stopping and not said_why:
            # Failed first: once it counts as exited, nothing waits for it, and Init could end "ready".
            self._fail(errors.EXTENSION_CRASH, self._crash_message(returncode))
        if agent is not None:
            self.agents.exited(agent)

    def _crash_message(self, returncode: int) -> str:
        message = f"Error: {rendering.exit_description(returncode)}"
        others = PORTS.held_by_others(self.owner)
        if others:
            message += (
                f" (another environment's extension listens on port {', '.join(map(str, others))}: here "
                "environments share the host's network, unlike Lambda; an extension with a fixed port "
                "cannot run in two environments of one function at once, see the README)"
            )
        return message

    def _fail(self, error_type: str, message: str) -> None:
        if self._failed:
            return
        self._failed = True
        self.failure = error_type
        self.agents.wake()
        self._on_failure(error_type, message)
        self.check()  # an invoke that waited for its extensions ends
