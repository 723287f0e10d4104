"""Function and server configuration: read once, validated once, typed.

Every problem is reported as one `ConfigError` naming where it came from (file, function, key) and what
was wrong, before anything starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .definitions.template import TemplateDefinition
    from .event_sources.mapping import SqsSource

MEMORY_MIN_MB, MEMORY_MAX_MB = 128, 10240
TIMEOUT_MIN_S, TIMEOUT_MAX_S = 1, 900
ENVIRONMENT_MAX_BYTES = 4096
EPHEMERAL_MIN_MB, EPHEMERAL_MAX_MB = 512, 10240
DEFAULT_IDLE_TIMEOUT_S = 300.0  # how long an idle environment is kept warm before it is reaped
DEFAULT_MAX_CONCURRENCY = 1000  # a new AWS account's concurrent executions per Region
# The Invoke API's connections: at most this many open (each sync invoke holds one), a connection idle
# between requests is closed after the keep-alive timeout, and a request head must arrive within its own.
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_KEEP_ALIVE_TIMEOUT_S = 15.0
DEFAULT_REQUEST_HEAD_TIMEOUT_S = 10.0
MAX_CONCURRENCY_VARIABLE = "AWS_LAMBDA_MAX_CONCURRENCY"
OPT_DIR_VARIABLE = "RAPIDBOOT_OPT_DIR"  # the merged layers; our bootstrap reads it (default /opt)
MAX_PER_ENVIRONMENT = 1000
# Asynchronous invocation (reference section 7; the service's EventInvokeConfig ranges and defaults).
RETRY_ATTEMPTS_MAX = 2
EVENT_AGE_MIN_S, EVENT_AGE_MAX_S = 60, 21600
DEFAULT_RETRY_BASE_DELAY_S = 60.0  # the service waits about 1 minute, then about 2
RETRY_BASE_DELAY_MIN_S, RETRY_BASE_DELAY_MAX_S = 0.01, 3600.0
# Lowers the 60 s minimum of `maximum_event_age`, for tests that must see an event expire (never set it in
# real use: the service refuses less than 60 s). Read once, when the configuration is validated.
MIN_EVENT_AGE_VARIABLE = "RAPIDBOOT_MIN_EVENT_AGE"
DESTINATION_KINDS = ("function", "file")
DEFAULT_FUNCTION_NAME = "function"

_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ENV_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]+$")  # the Lambda API's pattern: two characters at least

# Names Lambda refuses in a function's configuration (reference section 4, "Res." column).
RESERVED_ENV_KEYS = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
    }
)

_FUNCTION_KEYS = frozenset(
    {
        "code",
        "handler",
        "memory",
        "timeout",
        "environment",
        "command",
        "reserved_concurrency",
        "provisioned_concurrency",
        "idle_timeout",
        "ephemeral_storage",
        "layers",
        "runtime",
        "maximum_retry_attempts",
        "maximum_event_age",
        "retry_base_delay",
        "on_success",
        "on_failure",
        "schedule",
        "snap_start",
        "event_sources",
        "durable",
    }
)
# `[[functions.NAME.event_sources]]`: an SQS queue polled for the function (event_sources/mapping.py); each
# key, and the API member its checks name.
_EVENT_SOURCE_KEYS = {
    "queue": "EventSourceArn",
    "batch_size": "BatchSize",
    "maximum_batching_window": "MaximumBatchingWindowInSeconds",
    "report_batch_item_failures": "FunctionResponseTypes",
    "maximum_concurrency": "ScalingConfig.MaximumConcurrency",
    "enabled": "Enabled",
    "endpoint_url": "EndpointUrl",
}
RUNTIMES = ("python", "provided")  # our bootstrap (or `command`); or the package's own `bootstrap`


class ConfigError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an asynchronous invoke's record goes: `function:NAME` (another function of this server,
    invoked asynchronously with the record as its event) or `file:PATH` (one JSON line per record)."""

    kind: str  # "function" | "file"
    function: str = ""
    path: Path | None = None

    def __str__(self) -> str:
        return f"function:{self.function}" if self.kind == "function" else f"file:{self.path}"


@dataclass(frozen=True, slots=True)
class DurableConfig:
    """A durable function's `DurableConfig` (rapid_server/durable/): how long one execution may run, and
    how many days an ended one is kept."""

    execution_timeout_s: int = 86_400
    retention_days: int = 14


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    name: str
    code: Path  # the deployment package, absolute: a directory (the task root) or a zip file
    handler: str
    memory_mb: int = 128
    timeout_s: float = 3.0
    environment: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None  # replaces our bootstrap, e.g. awslambdaric
    reserved_concurrency: int | None = None  # cap and guarantee; 0 throttles every invoke
    provisioned_concurrency: int = 0  # environments initialised at server start, used first, never reaped
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    ephemeral_storage_mb: int = EPHEMERAL_MIN_MB  # the size of the environment's /tmp (TMPDIR)
    # Invokes one environment takes at once: AWS_LAMBDA_MAX_CONCURRENCY in its environment, as on Lambda
    # Managed Instances, where the runtime runs that many workers polling /next.
    per_environment_concurrency: int = 1
    layers: tuple[Path, ...] = ()  # zips or directories, merged in order into the function's /opt
    runtime: str = "python"  # "provided": run the `bootstrap` of the code or of a layer, as provided.al2023
    # Event invokes: function errors are retried this many times, `retry_base_delay_s` then twice that
    # apart; throttled events are retried until they are `maximum_event_age_s` old.
    maximum_retry_attempts: int = RETRY_ATTEMPTS_MAX
    maximum_event_age_s: float = float(EVENT_AGE_MAX_S)
    retry_base_delay_s: float = DEFAULT_RETRY_BASE_DELAY_S
    on_success: Destination | None = None
    on_failure: Destination | None = None
    # An EventBridge rule invoking the function (Event): "rate(5 minutes)", "cron(0 12 * * ? *)"; checked
    # when read, run by rapid_server/event_sources/schedules.py.
    schedule: str | None = None
    # TenancyConfig.TenantIsolationMode = PER_TENANT: each invoke names its tenant, and no environment ever
    # serves two tenants (tenancy.py). Set at creation only, as on Lambda.
    tenant_isolation: bool = False
    # "$LATEST", or the number of a published version (control_plane/versions.py): what the runtime sees
    # as AWS_LAMBDA_FUNCTION_VERSION and in its log stream's name.
    version: str = "$LATEST"
    # SnapStart (rapid_server/data_plane/snapstart.py): Init runs once in a template process, and each new
    # environment is a fork of it. Our runtime only.
    snap_start: bool = False
    # SQS queues polled for this function (event source mappings), from a template or rapidboot.toml.
    event_sources: tuple[SqsSource, ...] = ()
    # A durable function (`durable = { execution_timeout = ..., retention_period = ... }`): an invoke starts
    # an execution that the durable service checkpoints and replays (rapid_server/durable/).
    durable: DurableConfig | None = None


@dataclass(frozen=True, slots=True)
class Definition:
    """What one reading of a server's definition gave."""

    functions: dict[str, FunctionConfig]  # by function name
    template: TemplateDefinition | None = None  # what a template gave, HTTP triggers included


@dataclass(frozen=True, slots=True)
class DefinitionSource:
    """Where a server's functions come from (a template, a rapidboot.toml or `serve` flags), kept so that a
    reload (`serve --watch`) can read it again."""

    path: Path | None  # the template or rapidboot.toml a reload reads again; None for functions from flags
    read: Callable[[], Definition]  # raises ConfigError, with the reader's located one-line message


@dataclass(frozen=True, slots=True)
class ServerConfig:
    functions: Mapping[str, FunctionConfig]
    host: str = "127.0.0.1"
    port: int = 8080
    region: str = "us-east-1"
    account_id: str = "123456789012"
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    state_dir: Path = Path(".rapidboot")  # layer cache and the Event invokes' queue
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    keep_alive_timeout_s: float = DEFAULT_KEEP_ALIVE_TIMEOUT_S
    request_head_timeout_s: float = DEFAULT_REQUEST_HEAD_TIMEOUT_S
    # `serve --allow-updates`: the control plane may update the configured functions (in memory only).
    allow_updates: bool = False
    # `serve --durable-time-scale`: durable executions' time (waits, retry delays, timeouts) runs this many
    # times faster (rapid_server/durable/), so that a week-long wait can be tested in seconds.
    durable_time_scale: float = 1.0
    # The web console at /_rapidboot/ (observability/console.py); off with `serve --no-console`.
    console: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.durable_time_scale <= 1e9:
            raise ConfigError(f"--durable-time-scale {self.durable_time_scale:g}: must be more than 0")
        reserved = sum(f.reserved_concurrency or 0 for f in self.functions.values())
        if reserved > self.max_concurrency:
            names = ", ".join(
                f"{f.name}={f.reserved_concurrency}"
                for f in self.functions.values()
                if f.reserved_concurrency
            )
            raise ConfigError(
                f"reserved_concurrency adds up to {reserved} ({names}), more than --max-concurrency "
                f"{self.max_concurrency}"
            )
        check_destinations(self.functions, "")


def check_destinations(functions: Mapping[str, FunctionConfig], prefix: str) -> None:
    """A `function:` destination must be another function of the same server."""
    for function in functions.values():
        for key, destination in (("on_success", function.on_success), ("on_failure", function.on_failure)):
            if (
                destination is not None
                and destination.kind == "function"
                and destination.function not in functions
            ):
                raise ConfigError(
                    f"{prefix}functions.{function.name}.{key}: {destination}: no function "
                    f"{destination.function!r} in this configuration"
                )


def validate_function(
    where: str,
    name: str,
    code: object,
    handler: object,
    memory: object = 128,
    timeout: object = 3,
    environment: object = None,
    command: object = None,
    reserved_concurrency: object = None,
    provisioned_concurrency: object = 0,
    idle_timeout: object = DEFAULT_IDLE_TIMEOUT_S,
    ephemeral_storage: object = EPHEMERAL_MIN_MB,
    layers: object = (),
    runtime: object = "python",
    maximum_retry_attempts: object = RETRY_ATTEMPTS_MAX,
    maximum_event_age: object = EVENT_AGE_MAX_S,
    retry_base_delay: object = DEFAULT_RETRY_BASE_DELAY_S,
    on_success: object = None,
    on_failure: object = None,
    schedule: object = None,
    snap_start: object = False,
    event_sources: object = None,
    durable: object = None,
    base_dir: Path | None = None,
    flags: bool = False,
) -> FunctionConfig:
    """Check one function's settings; `where` prefixes every message (e.g. "rapidboot.toml: functions.x").
    With `flags`, the settings came from `rapidboot serve` flags, and each message names its flag."""
    at = _Names(where, flags)
    if not _FUNCTION_NAME.match(name):
        where_name = at("name") if flags else where  # a table's name is its key: name the table
        raise ConfigError(f"{where_name}: function name {name!r} must be 1-64 letters, digits, '-' or '_'")
    if not isinstance(code, str | Path) or not str(code):
        raise ConfigError(f"{at('code')}: required, the function's code: a directory or a zip file")
    code_path = _existing_path(at("code"), code, base_dir)
    if isinstance(layers, str | Path) or not isinstance(layers, list | tuple):
        raise ConfigError(f"{at('layers')}: must be a list of zip files or directories")
    layer_paths = tuple(_existing_path(at("layers", i), layer, base_dir) for i, layer in enumerate(layers))
    if runtime not in RUNTIMES:
        raise ConfigError(f"{at('runtime')}: {runtime!r} is not one of {', '.join(RUNTIMES)}")
    if runtime == "provided" and command is not None:
        raise ConfigError(f"{at('command')}: a provided runtime runs its own bootstrap; drop one of the two")
    if not isinstance(handler, str) or not handler.strip():
        raise ConfigError(f"{at('handler')}: required, e.g. 'app.handler'")
    if isinstance(memory, bool) or not isinstance(memory, int):
        raise ConfigError(f"{at('memory')}: must be an integer number of MB, got {memory!r}")
    if not MEMORY_MIN_MB <= memory <= MEMORY_MAX_MB:
        raise ConfigError(f"{at('memory')}: {memory} MB is outside {MEMORY_MIN_MB}-{MEMORY_MAX_MB} MB")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ConfigError(f"{at('timeout')}: must be a number of seconds, got {timeout!r}")
    if not TIMEOUT_MIN_S <= timeout <= TIMEOUT_MAX_S:
        raise ConfigError(f"{at('timeout')}: {timeout} s is outside {TIMEOUT_MIN_S}-{TIMEOUT_MAX_S} s")
    env = _validate_environment(at, environment)
    argv = _validate_command(at("command"), command, base_dir or Path.cwd())
    reserved = None
    if reserved_concurrency is not None:
        reserved = _integer(
            at("reserved_concurrency"), reserved_concurrency, 0, DEFAULT_MAX_CONCURRENCY * 1000
        )
    provisioned = _integer(at("provisioned_concurrency"), provisioned_concurrency, 0, 10_000)
    if reserved is not None and provisioned > reserved:
        raise ConfigError(
            f"{at('provisioned_concurrency')}: {provisioned} is more than "
            f"{at.bare('reserved_concurrency')} {reserved}"
        )
    if isinstance(idle_timeout, bool) or not isinstance(idle_timeout, int | float) or idle_timeout <= 0:
        raise ConfigError(f"{at('idle_timeout')}: must be a positive number of seconds, got {idle_timeout!r}")
    storage = _integer(at("ephemeral_storage"), ephemeral_storage, EPHEMERAL_MIN_MB, EPHEMERAL_MAX_MB)
    per_environment = 1
    if MAX_CONCURRENCY_VARIABLE in env:
        value = env[MAX_CONCURRENCY_VARIABLE]
        if not value.isdigit() or not 1 <= int(value) <= MAX_PER_ENVIRONMENT:
            raise ConfigError(
                f"{at('environment', MAX_CONCURRENCY_VARIABLE)}: {value!r} must be a whole number "
                f"1-{MAX_PER_ENVIRONMENT}"
            )
        per_environment = int(value)
    retry_attempts = _integer(at("maximum_retry_attempts"), maximum_retry_attempts, 0, RETRY_ATTEMPTS_MAX)
    event_age = _seconds(at("maximum_event_age"), maximum_event_age, _min_event_age(), EVENT_AGE_MAX_S)
    base_delay = _seconds(
        at("retry_base_delay"), retry_base_delay, RETRY_BASE_DELAY_MIN_S, RETRY_BASE_DELAY_MAX_S
    )
    success = _destination(at("on_success"), on_success, base_dir)
    failure = _destination(at("on_failure"), on_failure, base_dir)
    if not isinstance(snap_start, bool):
        raise ConfigError(f"{at('snap_start')}: must be true or false, got {snap_start!r}")
    if snap_start:
        check_snap_start(at("snap_start"), str(runtime), argv, per_environment)
    sources = _event_sources(at, event_sources)
    durable_config = _durable(at("durable"), durable)
    return FunctionConfig(
        name,
        code_path,
        handler.strip(),
        memory,
        float(timeout),
        env,
        argv,
        reserved,
        provisioned,
        float(idle_timeout),
        storage,
        per_environment,
        layer_paths,
        str(runtime),
        retry_attempts,
        event_age,
        base_delay,
        success,
        failure,
        schedule=_schedule(at("schedule"), schedule),
        snap_start=snap_start,  # by name: the fields after `schedule` are not all set from the file
        event_sources=sources,
        durable=durable_config,
    )


def check_snap_start(where: str, runtime: str, command: tuple[str, ...] | None, per_environment: int) -> None:
    """SnapStart forks an initialised process of our own runtime (runtime/template.py): refuse the rest."""
    if runtime == "provided":
        raise ConfigError(
            f"{where}: a provided runtime's bootstrap cannot be forked from a snapshot here; snap_start "
            "needs rapidboot's Python runtime"
        )
    if command is not None:
        raise ConfigError(
            f"{where}: the runtime `{command[0]}` (command) cannot be forked from a snapshot here; "
            "snap_start needs rapidboot's Python runtime: drop `command`"
        )
    if per_environment > 1:
        raise ConfigError(
            f"{where}: {MAX_CONCURRENCY_VARIABLE} runs several workers per environment, which snap_start "
            "does not fork; drop one of the two"
        )


def with_snap_start(function: FunctionConfig, where: str = "--snap-start") -> FunctionConfig:
    """`serve --snap-start`: the function with SnapStart on, or a ConfigError naming it if it cannot be."""
    if function.snap_start:
        return function
    check_snap_start(
        f"{where}: functions.{function.name}",
        function.runtime,
        function.command,
        function.per_environment_concurrency,
    )
    return dataclasses.replace(function, snap_start=True)


def _event_sources(at: _Names, value: object) -> tuple[SqsSource, ...]:
    """`[[functions.NAME.event_sources]]` tables, or SqsSources a template reader checked already."""
    if value is None:
        return ()
    # Lazy: ~4 ms of import (its dataclasses) that only a definition with event sources needs.
    from .event_sources.mapping import SqsSource

    if not isinstance(value, list | tuple):
        raise ConfigError(
            f"{at('event_sources')}: must be a list of tables ([[functions.NAME.event_sources]])"
        )
    sources: list[SqsSource] = []
    for i, table in enumerate(value):
        if isinstance(table, SqsSource):
            source = table
        elif not isinstance(table, dict):
            raise ConfigError(f"{at('event_sources', i)}: must be a table with at least `queue`")
        else:
            source = _event_source(f"{at('event_sources', i)}", table)
        for earlier in sources:
            if earlier.queue.arn == source.queue.arn:
                raise ConfigError(
                    f"{at('event_sources', i)}.queue: {source.queue.arn} is already mapped to this function"
                )
        sources.append(source)
    return tuple(sources)


def _event_source(where: str, table: dict[str, Any]) -> SqsSource:
    from .event_sources.mapping import MappingError, check_source

    unknown = set(table) - set(_EVENT_SOURCE_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(_EVENT_SOURCE_KEYS)}"
        )
    if "queue" not in table:
        raise ConfigError(f"{where}: queue: required, the SQS queue's ARN (arn:aws:sqs:REGION:ACCOUNT:NAME)")
    report = table.get("report_batch_item_failures", False)
    if not isinstance(report, bool):
        raise ConfigError(f"{where}.report_batch_item_failures: must be true or false, got {report!r}")
    try:
        return check_source(
            table["queue"],
            table.get("batch_size"),
            table.get("maximum_batching_window"),
            ["ReportBatchItemFailures"] if report else [],
            table.get("maximum_concurrency"),
            table.get("enabled", True),
            table.get("endpoint_url"),
        )
    except MappingError as exc:
        keys = {member: key for key, member in _EVENT_SOURCE_KEYS.items()}
        raise ConfigError(f"{where}.{keys.get(exc.key, exc.key)}: {exc.problem}") from None


class _Names:
    """How a message names a function's setting: as a key of its table (`rapidboot.toml: functions.f.memory`)
    or, when it came from `rapidboot serve` flags, as its flag (`--memory`)."""

    __slots__ = ("_flags", "_where")

    def __init__(self, where: str, flags: bool):
        self._where = where
        self._flags = flags

    def __call__(self, key: str, item: str | int | None = None) -> str:
        if self._flags:
            return self.bare(key) + (f" {item}" if isinstance(item, str) else "")
        if item is None:
            return f"{self._where}.{key}"
        return f"{self._where}.{key}[{item}]" if isinstance(item, int) else f"{self._where}.{key}.{item}"

    def bare(self, key: str) -> str:
        """The setting alone: its key, or its flag."""
        if not self._flags:
            return key
        return _FLAGS.get(key, "--" + key.replace("_", "-"))


_FLAGS = {"environment": "--env", "layers": "--layer"}  # the others are the key with dashes


def _seconds(where: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: must be a number of seconds, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}: {value} s is outside {low:g}-{high:g} s")
    return float(value)


def _schedule(where: str, value: object) -> str | None:
    """An EventBridge rate or cron expression, refused here with its field and problem."""
    if value is None:
        return None
    # Lazy: only a function with a schedule loads the expressions (and, for cron, its library).
    from .event_sources.expressions import ExpressionError, parse

    if not isinstance(value, str):
        raise ConfigError(f'{where}: must be a string, e.g. "rate(5 minutes)" or "cron(0 12 * * ? *)"')
    try:
        parse(value)
    except ExpressionError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return value


def _durable(where: str, value: object) -> DurableConfig | None:
    """`durable = {}` or `{ execution_timeout = S, retention_period = DAYS }`, in the ranges of botocore's
    DurableConfig (ExecutionTimeout 1-31622400 s, RetentionPeriodInDays 1-90)."""
    if value is None or value is False:
        return None
    if value is True:
        return DurableConfig()
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: must be a table, e.g. {{ execution_timeout = 3600, retention_period = 7 }}"
        )
    unknown = set(value) - {"execution_timeout", "retention_period"}
    if unknown:
        allowed = "execution_timeout, retention_period"
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    timeout = _integer(f"{where}.execution_timeout", value.get("execution_timeout", 86_400), 1, 31_622_400)
    retention = _integer(f"{where}.retention_period", value.get("retention_period", 14), 1, 90)
    return DurableConfig(timeout, retention)


def _min_event_age() -> float:
    override = os.environ.get(MIN_EVENT_AGE_VARIABLE)
    if override is None:
        return float(EVENT_AGE_MIN_S)
    try:
        return max(0.1, float(override))
    except ValueError:
        raise ConfigError(f"${MIN_EVENT_AGE_VARIABLE}: {override!r} is not a number of seconds") from None


def _destination(where: str, value: object, base_dir: Path | None) -> Destination | None:
    """`function:NAME` or `file:PATH` (relative to the toml's directory, or the working directory)."""
    if value is None:
        return None
    kind, _, target = value.partition(":") if isinstance(value, str) else ("", "", "")
    if kind not in DESTINATION_KINDS or not target:
        raise ConfigError(f'{where}: must be "function:NAME" or "file:PATH", got {value!r}')
    if kind == "function":
        if not _FUNCTION_NAME.match(target):
            raise ConfigError(f"{where}: {target!r} is not a function name")
        return Destination("function", function=target)
    path = Path(target)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = path.resolve()
    if path.is_dir():
        raise ConfigError(f"{where}: {path} is a directory; records are appended to a file")
    if not path.parent.is_dir():
        raise ConfigError(f"{where}: {path.parent} does not exist")
    return Destination("file", path=path)


def _existing_path(where: str, value: object, base_dir: Path | None) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ConfigError(f"{where}: must be a path, got {value!r}")
    path = Path(value)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    path = path.resolve()
    if not path.exists():
        raise ConfigError(f"{where}: {path} does not exist")
    if not (path.is_dir() or path.is_file()):
        raise ConfigError(f"{where}: {path} is neither a directory nor a zip file")
    return path


def _integer(where: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}: {value} is outside {low}-{high}")
    return value


def _validate_environment(at: _Names, environment: object) -> dict[str, str]:
    if environment is None:
        return {}
    if not isinstance(environment, Mapping):
        raise ConfigError(f'{at("environment")}: must be a table of NAME = "value"')
    result: dict[str, str] = {}
    for key, value in environment.items():
        if key in RESERVED_ENV_KEYS:
            raise ConfigError(f"{at('environment', key)}: reserved by Lambda and cannot be set")
        if not isinstance(key, str) or not _ENV_KEY.match(key):
            raise ConfigError(
                f"{at('environment', key)}: invalid name (2+ letters, digits or '_', starting with a letter)"
            )
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{at('environment', key)}: value must be a string, got {value!r}")
        result[key] = str(value)
    size = sum(len(k.encode()) + len(v.encode()) for k, v in result.items())
    if size > ENVIRONMENT_MAX_BYTES:
        raise ConfigError(
            f"{at('environment')}: {size} bytes in total exceeds Lambda's {ENVIRONMENT_MAX_BYTES}-byte limit"
        )
    return result


def _validate_command(where: str, command: object, base_dir: Path) -> tuple[str, ...] | None:
    if command is None:
        return None
    if isinstance(command, str):
        command = shlex.split(command)
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        raise ConfigError(f'{where}: must be a non-empty list of strings, e.g. ["python3", "-m", ...]')
    program = command[0]
    if "/" in program and not os.path.isabs(program):
        # Relative to where it was written (the toml's directory, or the shell's cwd), not the task root.
        # abspath, not resolve(): a venv's python is a symlink that must stay one to find its venv.
        program = os.path.abspath(base_dir / program)
    return (program, *command[1:])


def load_toml(path: Path) -> dict[str, FunctionConfig]:
    """The functions of a rapidboot.toml. `function:` destinations are checked against the others by
    ServerConfig, once they are all known."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(document) - {"functions"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; expected [functions.NAME]"
        )
    tables = document.get("functions")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{path}: no functions: add a [functions.NAME] table with code and handler")
    functions: dict[str, FunctionConfig] = {}
    for name, table in tables.items():
        where = f"{path}: functions.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        extra = set(table) - _FUNCTION_KEYS
        if extra:
            allowed = ", ".join(sorted(_FUNCTION_KEYS))
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed: {allowed}")
        functions[name] = validate_function(where, name, base_dir=path.parent.resolve(), **_table_args(table))
    check_destinations(functions, f"{path}: ")
    return functions


def _table_args(table: dict[str, Any]) -> dict[str, Any]:
    args = dict(table)
    args.setdefault("code", None)
    args.setdefault("handler", None)
    return args


def parse_env_assignments(pairs: list[str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--env {pair!r}: expected KEY=VALUE")
        result[key] = value
    return result


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def bootstrap_command(handler: str) -> tuple[str, ...]:
    """How the server starts our own runtime: the repository's `bootstrap` file when present (no runpy,
    the fastest start), else the installed `runtime` package."""
    bootstrap = Path(__file__).resolve().parent.parent / "bootstrap"
    if bootstrap.is_file():
        return (sys.executable, str(bootstrap), handler)
    return (sys.executable, "-m", "rapidboot.runtime", handler)
