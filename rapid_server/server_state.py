"""What the server knows while it runs: its configuration and its functions. Passed to whoever needs it,
never kept in module globals."""

from __future__ import annotations

import asyncio
import dataclasses
import platform
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rapidboot.layers import LayerError, PreparedFunction, prepare_function

from .async_invokes.dispatcher import Dispatcher
from .config import ConfigError, FunctionConfig, ServerConfig
from .data_plane.concurrency import ConcurrencyLimiter
from .data_plane.function import Function
from .data_plane.limits import LimitsFactory
from .data_plane.logs import LogSink
from .data_plane.peers import PeerCheck
from .observability.metrics import Metrics

if TYPE_CHECKING:
    from .definitions.template import TemplateDefinition
    from .event_sources.manager import EventSources
    from .http_triggers.listener import HttpTriggers  # which imports this module


# Read by the concurrency limiter and the Event queue's dispatcher, never by an environment: a change to
# these alone (PutFunctionConcurrency, PutFunctionEventInvokeConfig, or the same keys in a reloaded TOML
# file) keeps the function's warm environments, as on Lambda, where neither recycles them.
_OUTSIDE_ENVIRONMENTS = (
    "reserved_concurrency",
    "maximum_retry_attempts",
    "maximum_event_age_s",
    "retry_base_delay_s",
    "on_success",
    "on_failure",
)


def _environments_unaffected(old: FunctionConfig, new: FunctionConfig) -> bool:
    return dataclasses.replace(new, **{key: getattr(old, key) for key in _OUTSIDE_ENVIRONMENTS}) == old


@dataclass(frozen=True, slots=True)
class Changes:
    """What one `ServerState.apply` did, by function name."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class ServerState:
    def __init__(
        self,
        config: ServerConfig,
        sink: LogSink,
        on_error: Callable[[BaseException], None],
        limits: LimitsFactory,
        peers: PeerCheck | None = None,
    ):
        self.config = config
        self.sink = sink
        self.limits = limits
        self._on_error = on_error
        self._peers = peers
        self.started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        self.architecture = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
        self.limiter = ConcurrencyLimiter(
            config.max_concurrency, {name: f.reserved_concurrency for name, f in config.functions.items()}
        )
        # Lambda's metrics (GET /metrics) and, with the console, its recent invokes: told by the sink.
        self.metrics = Metrics(self.limiter.in_use, keep_recent=config.console)
        sink.observer = self.metrics
        # Changed in place by `apply`: the Invoke API and the dispatcher hold this very mapping.
        self.functions: dict[str, Function] = {
            name: self._function(function_config, _prepare(function_config, config.state_dir))
            for name, function_config in config.functions.items()
        }
        self._removed: list[Function] = []  # drained, perhaps still finishing an invoke
        self.dispatcher: Dispatcher | None = None  # Event invokes; set by the server once its queue is open
        # -- HTTP triggers (http_triggers/): the front door whose `routes` a reload replaces; set by the
        # server when the template has HTTP events or function URLs.
        self.http_triggers: HttpTriggers | None = None
        # The template the functions came from (None for a rapidboot.toml or flags), and who follows it
        # across reloads: each observer is called with the new definition once its functions are in place
        # (an HTTP front door rebuilds its routes from it).
        self.template: TemplateDefinition | None = None
        self.template_observers: list[Callable[[TemplateDefinition], None]] = []
        # Who follows the functions' configurations across every reload (a rapidboot.toml's schedules).
        self.function_observers: list[Callable[[Mapping[str, FunctionConfig]], None]] = []
        # The functions the control plane created (control_plane/): a reload of the definition keeps them.
        self.api_functions: Callable[[], dict[str, FunctionConfig]] = dict
        # PutFunctionRecursionConfig RecursiveLoop=Allow: these functions' invokes are never stopped as a
        # recursive loop (recursion.py). Kept by the control plane's store.
        self.recursion_allowed: set[str] = set()
        # Event source mappings (event_sources/): made at the first need by `open_event_sources` (set by
        # the server); told of every `apply` (a reload, the control plane), since a mapping polls only
        # while its function exists.
        self.event_sources: EventSources | None = None
        self.open_event_sources: Callable[[], EventSources] | None = None
        # What the server adds to a function's process environment (set by the server: a durable
        # function's SDK is pointed at this server, rapid_server/durable/).
        self.function_environment: Callable[[FunctionConfig], Mapping[str, str]] = lambda config: {}

    async def apply(
        self,
        functions: Mapping[str, FunctionConfig],
        refreshed: Collection[str] = (),
        template: TemplateDefinition | None = None,
    ) -> Changes:
        """Make `functions` the server's functions, as a reload does: new ones are added, changed ones (and
        those named in `refreshed`, whose code or layers changed on disk) are refreshed, missing ones are
        removed. An invoke in flight finishes on what it started with; the next one sees the new definition.

        Everything that can fail is checked first (reserved concurrency against the account, destinations,
        code and layers prepared), so a ConfigError leaves the running configuration untouched. The switch
        itself is synchronous: no invoke sees half of it. Returns once new provisioned environments are up."""
        config = dataclasses.replace(self.config, functions=dict(functions))  # ServerConfig's checks
        current = self.functions
        added = tuple(name for name in functions if name not in current)
        removed = tuple(name for name in current if name not in functions)
        changed = tuple(
            name
            for name in functions
            if name in current and (name in refreshed or functions[name] != current[name].config)
        )
        retuned = tuple(
            name
            for name in changed
            if name not in refreshed and _environments_unaffected(current[name].config, functions[name])
        )
        changed = tuple(name for name in changed if name not in retuned)
        # Off the event loop: a changed layer is merged again (the cache keys by content), invokes go on.
        packages = {
            name: await asyncio.to_thread(_prepare, functions[name], config.state_dir)
            for name in (*added, *changed)
        }
        self.limiter.reconfigure({name: f.reserved_concurrency for name, f in functions.items()})
        self.config = config
        self._removed = [function for function in self._removed if function.environments]
        for name in removed:
            function = current.pop(name)
            function.drain()
            self._removed.append(function)
        for name in retuned:
            current[name].config = functions[name]  # the next invoke or event reads it; environments stay
        ready: list[asyncio.Future[Any]] = []
        for name in changed:
            ready.append(current[name].refresh(functions[name], packages[name]))
        for name in added:
            current[name] = self._function(functions[name], packages[name])
            ready.append(asyncio.ensure_future(current[name].start()))
        if template is not None:
            self.template = template
            for observer in self.template_observers:
                try:
                    observer(template)
                except Exception as exc:  # an observer's bug must not leave the functions half-reloaded
                    self._on_error(exc)
        for follower in self.function_observers:
            try:
                follower(functions)
            except Exception as exc:
                self._on_error(exc)
        if self.open_event_sources is not None and (
            self.event_sources is not None or any(f.event_sources for f in functions.values())
        ):
            self.open_event_sources().reconcile()
        await asyncio.gather(*ready)
        return Changes(added, changed + retuned, removed)

    async def stop_functions(self) -> None:
        """Stop every function, including removed ones still finishing an invoke."""
        functions = [*self.functions.values(), *self._removed]
        await asyncio.gather(*(function.stop() for function in functions))

    def _function(self, config: FunctionConfig, package: PreparedFunction) -> Function:
        return self.new_function(config, package, self.function_arn(config.name))

    def new_function(self, config: FunctionConfig, package: PreparedFunction, arn: str) -> Function:
        """A pool of environments; outside `functions` for a published version (control_plane/versions.py),
        which shares its function's concurrency (the limiter counts by `config.name`)."""
        function = Function(
            config,
            arn,
            self.config.region,
            self.sink,
            self._on_error,
            self.limits,
            self.limiter,
            package,
            self._peers,
        )
        function.extra_environment = lambda: self.function_environment(config)
        return function

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.config.region}:{self.config.account_id}:function:{name}"

    @staticmethod
    def runtime_name(config: FunctionConfig) -> str:
        if config.command is not None or config.runtime == "provided":
            return "provided.al2023"
        return f"python{sys.version_info.major}.{sys.version_info.minor}"


def _prepare(config: FunctionConfig, state_dir: Path) -> PreparedFunction:
    """The function's task root and merged /opt, from the layer cache when the inputs are unchanged."""
    try:
        return prepare_function(config.code, config.layers, state_dir / "layers")
    except LayerError as exc:
        raise ConfigError(f"functions.{config.name}: {exc}") from None
