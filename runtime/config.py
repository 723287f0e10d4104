"""The process environment, read once at start-up into one typed object.

Nothing else in the runtime reads `os.environ` (except `_X_AMZN_TRACE_ID`, which the loop *writes*
per invoke, as the Lambda contract requires).
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import sys

from . import __version__ as VERSION

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DEFAULT_OPT_DIR = "/opt"


class ConfigError(Exception):
    """The runtime cannot start: a required setting is missing or invalid."""


class RuntimeConfig:
    __slots__ = (
        "function_name",
        "function_version",
        "handler",
        "initialization_type",
        "log_format",
        "log_group_name",
        "log_level",
        "log_stream_name",
        "max_concurrency",
        "memory_limit_in_mb",
        "opt_dir",
        "runtime_api",
        "task_root",
        "telemetry_log_fd",  # logging (3a)
    )

    def __init__(
        self,
        handler: str,
        runtime_api: str,
        task_root: str,
        opt_dir: str = DEFAULT_OPT_DIR,
        function_name: str | None = None,
        function_version: str | None = None,
        memory_limit_in_mb: str | None = None,
        log_group_name: str | None = None,
        log_stream_name: str | None = None,
        log_level: str | None = None,
        log_format: str = "Text",
        initialization_type: str | None = None,
        max_concurrency: int | None = None,
        telemetry_log_fd: int | None = None,
    ) -> None:
        self.handler = handler
        self.runtime_api = runtime_api
        self.task_root = task_root
        self.opt_dir = opt_dir
        # The context members below are str, never int, as in awslambdaric ("128", not 128).
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = memory_limit_in_mb
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        # A `logging` level name to set on the root logger, or None to leave Python's default.
        self.log_level = log_level
        # "JSON" or "Text" (AWS_LAMBDA_LOG_FORMAT, case-insensitive, anything else is Text).
        self.log_format = log_format
        # Lifecycle (3b): "snap-start" runs the SnapStart hooks; max_concurrency (None when unset)
        # selects Managed Instances' multi-concurrent mode, with that many workers.
        self.initialization_type = initialization_type
        self.max_concurrency = max_concurrency
        # Logging (3a): the fd Lambda passes in `_LAMBDA_TELEMETRY_LOG_FD` for framed log records, or
        # None (unset or not a number). `logs.open_log_sink` opens it and deletes the variable.
        self.telemetry_log_fd = telemetry_log_fd

    @classmethod
    def from_environ(cls, argv: Sequence[str], environ: Mapping[str, str], cwd: str) -> RuntimeConfig:
        """`argv` is the bootstrap's arguments after the program name: `[handler]` or `[]`."""
        handler = argv[0] if argv else environ.get("_HANDLER", "")
        if not handler:
            raise ConfigError("no handler given: pass it as the first argument or set _HANDLER")
        runtime_api = environ.get("AWS_LAMBDA_RUNTIME_API", "")
        if not runtime_api:
            raise ConfigError("AWS_LAMBDA_RUNTIME_API is not set (expected host:port)")
        return cls(
            handler=handler,
            runtime_api=runtime_api,
            task_root=environ.get("LAMBDA_TASK_ROOT") or cwd,
            opt_dir=environ.get("RAPIDBOOT_OPT_DIR") or DEFAULT_OPT_DIR,
            function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            function_version=environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
            memory_limit_in_mb=environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            log_group_name=environ.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            log_stream_name=environ.get("AWS_LAMBDA_LOG_STREAM_NAME"),
            log_level=_log_level(environ.get("AWS_LAMBDA_LOG_LEVEL")),
            log_format="JSON" if environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON" else "Text",
            initialization_type=environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") or None,
            max_concurrency=_max_concurrency(environ.get("AWS_LAMBDA_MAX_CONCURRENCY")),
            telemetry_log_fd=_fd(environ.get("_LAMBDA_TELEMETRY_LOG_FD")),  # logging (3a)
        )

    def layer_paths(self) -> list[str]:
        """Layer directories for sys.path, in the managed runtime's order (existence not checked)."""
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        opt = self.opt_dir.rstrip("/") or "/"
        return [f"{opt}/python/lib/{version}/site-packages", f"{opt}/python"]

    @property
    def user_agent(self) -> str:
        python = "{}.{}.{}".format(*sys.version_info[:3])
        return f"rapidboot/{VERSION} (python/{python})"


_LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def _log_level(value: str | None) -> str | None:
    # AWS's level names (TRACE..FATAL) mapped to logging's; unknown names leave the default alone.
    if not value:
        return None
    name = value.upper()
    name = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(name, name)
    return name if name in _LOG_LEVELS else None


def _max_concurrency(value: str | None) -> int | None:
    # awslambdaric's `int()` crashes on junk with a traceback; say what is wrong instead.
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise ConfigError(f"AWS_LAMBDA_MAX_CONCURRENCY must be a positive integer, got {value!r}")
    return int(value)


def _fd(value: str | None) -> int | None:
    # Logging (3a). awslambdaric's `int()` crashes on junk; we log to stdout instead.
    value = (value or "").strip()
    return int(value) if value.isascii() and value.isdigit() else None
