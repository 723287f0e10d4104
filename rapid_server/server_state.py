"""What the server knows while it runs: its configuration and its functions. Passed to whoever needs it,
never kept in module globals."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from layers import LayerError, PreparedFunction, prepare_function

from .concurrency import ConcurrencyLimiter
from .config import ConfigError, FunctionConfig, ServerConfig
from .dispatcher import Dispatcher
from .function import Function
from .limits import LimitsFactory
from .logs import LogSink
from .peers import PeerCheck

if TYPE_CHECKING:
    from .http_triggers.listener import HttpTriggers  # which imports this module


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
        self.started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        self.architecture = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
        self.limiter = ConcurrencyLimiter(
            config.max_concurrency, {name: f.reserved_concurrency for name, f in config.functions.items()}
        )
        self.functions: dict[str, Function] = {
            name: Function(
                function_config,
                self.function_arn(name),
                config.region,
                sink,
                on_error,
                limits,
                self.limiter,
                _prepare(function_config, config.state_dir),
                peers,
            )
            for name, function_config in config.functions.items()
        }
        self.dispatcher: Dispatcher | None = None  # Event invokes; set by the server once its queue is open
        # -- HTTP triggers (http_triggers/): the front door whose `routes` a reload replaces; set by the
        # server when the template has HTTP events or function URLs.
        self.http_triggers: HttpTriggers | None = None

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
