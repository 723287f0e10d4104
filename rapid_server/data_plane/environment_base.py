"""What one execution environment holds: the fields its `__init__` sets, shared by the parts its class is
made of (environment.py composes them: seats.py, answers.py, endings.py, process_setup.py, report.py,
extension_hooks.py). The parts call one another through `self`; what each calls of another is declared
below for the type checker only, so that a call is never routed through anything at run time."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from rapidboot.layers import PreparedFunction

from ..config import FunctionConfig
from .limits import EnvironmentLimits
from .logs import LogSink
from .output import OutputRelay
from .peers import PeerCheck
from .process import RuntimeProcess
from .state import State, StateMachine

if TYPE_CHECKING:  # snapstart.py is imported only where a function has snap_start
    from .snapstart import ForkedProcess, Template
if TYPE_CHECKING:
    from ..extensions.host import ExtensionsHost
    from .environment import Environment
    from .invocation import _Outcome
    from .seats import _InFlight, _Poller


def _no_extra_environment() -> Mapping[str, str]:
    return {}


class EnvironmentBase:
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
        self._next_waiters: list[asyncio.Future[None]] = []  # invokes waiting for a /next (seats.py)
        self._exit_watch: asyncio.Task[None] | None = None
        self._returncode: int | None = None
        self._status_fd: int | None = None  # /proc/PID/status of the runtime: its state and pending signals
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

    if TYPE_CHECKING:  # defined by one part, called by another

        @property
        def state(self) -> State: ...
        async def stop(self, grace_s: float = ...) -> None: ...
        def _settle(self, request_id: str, duration_ms: float, outcome: _Outcome) -> None: ...
        async def _watch_exit(self, process: RuntimeProcess | ForkedProcess) -> None: ...
        def _observe(
            self, request_id: str, duration_ms: float, init_ms: float | None, outcome: _Outcome
        ) -> None: ...
        def _sample_memory(self, refresh_tree: bool = False) -> None: ...
        def _schedule_sample(self) -> None: ...
        def _peak_mb(self) -> int: ...
        def _drain_output(self, final: bool = False) -> None: ...
        def _seat_for_next(self) -> StateMachine | None: ...
        def _terminate_seats(self) -> None: ...
        def _wake_next_waiters(self) -> None: ...
        def _abandon(self) -> None: ...
        def _close_listener(self) -> None: ...
        async def _reap_after_init_error(self) -> None: ...
        def _exit_text(self) -> str: ...
        def _exit_outcome(self, request_id: str) -> _Outcome: ...
        def _exit_outcome_for_init(self) -> _Outcome: ...
