"""`rapidboot`: serve functions locally, or invoke one."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .config import (
    DEFAULT_FUNCTION_NAME,
    DEFAULT_KEEP_ALIVE_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_HEAD_TIMEOUT_S,
    ConfigError,
    Definition,
    DefinitionSource,
    FunctionConfig,
    ServerConfig,
    default_region,
    load_toml,
    parse_env_assignments,
    validate_function,
    with_snap_start,
)

if TYPE_CHECKING:
    from .definitions.template import TemplateDefinition
    from .event_sources.schedules import Schedule
    from .http_triggers.listener import HttpTriggerOptions


class _VersionAction(argparse.Action):
    """`--version`: the installed distribution's version, looked up only when asked (importlib.metadata
    is not loaded for any other command)."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("rapidboot")
        except PackageNotFoundError:
            found = "unknown (not installed: run from a checkout)"
        print(f"rapidboot {found}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rapidboot", description="A local AWS Lambda and a fast Python runtime."
    )
    parser.add_argument("--version", action=_VersionAction, help="print rapidboot's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve functions on a local Invoke API")
    source = serve.add_argument_group("one function from flags (or use --config)")
    source.add_argument("--config", type=Path, help="rapidboot.toml with [functions.NAME] tables")
    source.add_argument("--code", type=Path, help="the function's code: a directory (its task root) or a zip")
    source.add_argument("--handler", help="MODULE.FUNCTION, e.g. app.handler")
    source.add_argument("--name", default=DEFAULT_FUNCTION_NAME, help="function name (default: %(default)s)")
    source.add_argument("--memory", type=int, default=128, help="memory size in MB (default: %(default)s)")
    source.add_argument("--timeout", type=float, default=3, help="timeout in seconds (default: %(default)s)")
    source.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="environment variable"
    )
    source.add_argument(
        "--layer", action="append", default=[], type=Path, metavar="PATH", help="a layer (zip or directory)"
    )
    source.add_argument(
        "--runtime",
        choices=["python", "provided"],
        default="python",
        help="python: our bootstrap (or --command); provided: the code's or a layer's own `bootstrap`",
    )
    source.add_argument(
        "--reserved-concurrency", type=int, default=None, metavar="N", help="cap and guarantee"
    )
    source.add_argument(
        "--provisioned-concurrency",
        type=int,
        default=0,
        metavar="N",
        help="environments initialised at start",
    )
    source.add_argument(
        "--snap-start",
        action="store_true",
        help="every function (not only this one): init once in a template process, fork each new "
        "environment from it (SnapStart; our Python runtime only)",
    )
    source.add_argument(
        "--idle-timeout", type=float, default=300, metavar="S", help="reap idle environments after S seconds"
    )
    source.add_argument("--ephemeral-storage", type=int, default=512, metavar="MB", help="size of /tmp (512)")
    events = serve.add_argument_group("Event (asynchronous) invokes of that function")
    events.add_argument("--maximum-retry-attempts", type=int, default=2, metavar="N", help="0-2 (default: 2)")
    events.add_argument(
        "--maximum-event-age", type=float, default=21600, metavar="S", help="60-21600 (default: 21600)"
    )
    events.add_argument(
        "--retry-base-delay", type=float, default=60, metavar="S", help="first retry after S, then 2S (60)"
    )
    events.add_argument("--on-success", metavar="DEST", help="function:NAME or file:PATH")
    events.add_argument("--on-failure", metavar="DEST", help="function:NAME or file:PATH")
    source.add_argument(
        "--command",
        dest="runtime_command",
        metavar="CMD",
        help='runtime command line instead of our bootstrap, e.g. "python3 -m awslambdaric app.handler"',
    )
    # -- a SAM / CloudFormation / `cdk synth` template as the configuration (rapid_server/definitions/)
    template = serve.add_argument_group("functions from a template (found as ./template.yaml when no flag)")
    template.add_argument("--template", type=Path, help="AWS SAM, CloudFormation or cdk.out/*.template.json")
    template.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as sam: Key=Value Key2=Value2 or ParameterKey=K,ParameterValue=V",
    )
    # -- HTTP triggers of a template (rapid_server/http_triggers/)
    api = serve.add_argument_group("HTTP triggers of a template: Api / HttpApi events and function URLs")
    api.add_argument("--api-host", default="127.0.0.1", help="their address (default: %(default)s)")
    api.add_argument(
        "--api-port", type=int, default=3000, help="their port, 0 for any (default: %(default)s)"
    )
    api.add_argument(
        "--api-timeout",
        type=float,
        default=None,
        metavar="S",
        help="integration timeout for every route, 0.05-30 s (default: each event's TimeoutInMillis, or 29)",
    )
    serve.add_argument(
        "--schedules",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fire the schedules (a template's Schedule / ScheduleV2 events, a function's `schedule` in "
        "--config) as Event invokes; --no-schedules lists them at start and fires none (default: on)",
    )
    serve.add_argument(
        "--watch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="hot reload: a change to a function's code or layers, or to the template or --config file, "
        "takes effect on the next invoke (default: on with a template, off otherwise)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="Invoke API address (default: %(default)s)")
    serve.add_argument(
        "--port", type=int, default=8080, help="Invoke API port, 0 for any (default: %(default)s)"
    )
    serve.add_argument(
        "--max-concurrency",
        type=int,
        default=1000,
        metavar="N",
        help="concurrent executions across all functions, like an account's (default: %(default)s)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=None,
        metavar="N",
        help=f"open Invoke API connections; more are answered 503 (default: {DEFAULT_MAX_CONNECTIONS}, "
        "or half the open-files limit if lower)",
    )
    serve.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=DEFAULT_KEEP_ALIVE_TIMEOUT_S,
        metavar="S",
        help="close an Invoke API connection idle between requests after S seconds (default: %(default)g)",
    )
    serve.add_argument(
        "--request-head-timeout",
        type=float,
        default=DEFAULT_REQUEST_HEAD_TIMEOUT_S,
        metavar="S",
        help="close an Invoke API connection whose request head takes longer (default: %(default)g)",
    )
    serve.add_argument(
        "--region", default=None, help="AWS region the functions see (default: $AWS_REGION or us-east-1)"
    )
    serve.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".rapidboot"),
        help="merged layers' cache and the Event invokes' queue (default: %(default)s)",
    )
    serve.add_argument(
        "--allow-updates",
        action="store_true",
        help="let the Lambda API update the functions of the template, --config file or flags; kept in "
        "memory only: the file wins again at its next reload and at a restart",
    )
    serve.add_argument(
        "--durable-time-scale",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="durable functions: time runs FACTOR times faster for their waits, retry delays, timeouts and "
        "retention (e.g. 86400: a wait of a day lasts a second); printed at start when not 1; default 1",
    )
    serve.add_argument(
        "--console",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the web console at /_rapidboot/ on the Invoke API's address; GET /metrics is served either "
        "way (default: on)",
    )
    serve.add_argument(
        "--memory-enforcement",
        choices=["auto", "cgroup", "rss"],
        default="auto",
        help="how memory limits are enforced: a memory cgroup where possible, else peak-RSS watching",
    )
    serve.add_argument(
        "--loop", choices=["auto", "uvloop", "asyncio"], default="auto", help=argparse.SUPPRESS
    )

    commands.add_parser(
        "layers",
        help="merge layers as Lambda does, or explain a merge (see `rapidboot layers --help`)",
        add_help=False,
    )
    commands.add_parser(
        "top",
        help="live per-function metrics of a running server, refreshed in place (see `rapidboot top --help`)",
        add_help=False,
    )
    commands.add_parser(
        "bench",
        help="measure rapidboot against its peers on this machine (see `rapidboot bench --help`)",
        add_help=False,
    )

    package = commands.add_parser("package", help="build what you deploy to AWS Lambda")
    package_kinds = package.add_subparsers(dest="package_kind", required=True, metavar="KIND")
    layer = package_kinds.add_parser(
        "layer",
        help="rapidboot's runtime as a layer for managed Python runtimes (AWS_LAMBDA_EXEC_WRAPPER)",
    )
    layer.add_argument("--out", type=Path, default=Path("rapidboot-layer.zip"), help="(default: %(default)s)")
    layer.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="PYTHON",
        help="compile .pyc files with this interpreter, e.g. python3.12 (repeatable; default: this one)",
    )

    invoke = commands.add_parser("invoke", help="invoke a function on a running server")
    invoke.add_argument("name", help="function name or ARN")
    payload = invoke.add_mutually_exclusive_group()
    payload.add_argument("--payload", help="the event, as JSON")
    payload.add_argument(
        "--payload-file",
        "--event-file",
        type=Path,
        help="read the event from this file (e.g. one written by `rapidboot events generate`)",
    )
    invoke.add_argument(
        "--endpoint", default="http://127.0.0.1:8080", help="server URL (default: %(default)s)"
    )
    invoke.add_argument(
        "--invocation-type",
        choices=["RequestResponse", "Event", "DryRun"],
        default="RequestResponse",
        help="Event: queue it and return at once (prints the request id); DryRun: check only",
    )
    invoke.add_argument(
        "--client-context",
        metavar="JSON",
        help='client context as JSON, e.g. \'{"custom": {"k": "v"}}\' (sent base64-encoded, as boto3 does)',
    )
    invoke.add_argument(
        "--durable-execution-name",
        default=None,
        help="a durable function: the execution's name (a name used before is refused)",
    )
    invoke.add_argument(
        "--log-type",
        choices=["None", "Tail"],
        default="None",
        help="Tail: print the last 4 KB of the invoke's log (decoded) on stderr",
    )
    invoke.add_argument(
        "--stream",
        action="store_true",
        help="InvokeWithResponseStream: print the response's chunks as they arrive",
    )
    invoke.add_argument("--read-timeout", type=float, default=910, help=argparse.SUPPRESS)

    schedules = commands.add_parser(
        "schedules", help="list the schedules of a template or --config file and their next firings (UTC)"
    )
    schedules.add_argument("--config", type=Path, help="rapidboot.toml with `schedule` keys")
    schedules.add_argument("--template", type=Path, help="a template (found as ./template.yaml when no flag)")
    schedules.add_argument(
        "--parameter-overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE"
    )
    schedules.add_argument("--region", default=None, help="(default: $AWS_REGION or us-east-1)")
    schedules.add_argument("--count", type=int, default=5, help="firings listed per schedule (default: 5)")
    commands.add_parser(
        "executions",
        help="durable executions: `rapidboot executions list|get|...|pause|resume|delete` (see its --help)",
        add_help=False,
    )
    commands.add_parser(
        "callback",
        help="complete a durable execution's callback: `rapidboot callback succeed|fail|heartbeat ID`",
        add_help=False,
    )
    commands.add_parser(
        "events",
        help="sample events of each source: `rapidboot events generate KIND` (see its --help)",
        add_help=False,
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["layers"]:
        from rapidboot.layers.cli import main as layers_main  # the layers CLI, under our command name

        return layers_main(arguments[1:], prog="rapidboot layers")
    if arguments[:1] == ["bench"]:
        from rapidboot.benchmarks.suite import (
            main as bench_main,  # the benchmark suite, under our command name
        )

        return bench_main(arguments[1:], prog="rapidboot bench")
    if arguments[:1] == ["top"]:
        from .observability.top import main as top_main  # an HTTP client and the metrics' parser

        return top_main(arguments[1:], prog="rapidboot top")
    if arguments[:1] == ["events"]:
        # Its own parser: its modules (uuid, hashlib, urllib) cost ~9 ms that no other command should pay.
        from .event_sources.samples import main as events_main

        return events_main(arguments[1:], prog="rapidboot events")
    if arguments[:1] in (["executions"], ["callback"]):
        # Durable executions from the shell (durable/commands.py): its own parser, as `events`.
        from .durable.commands import callback_main, executions_main

        if arguments[0] == "executions":
            return executions_main(arguments[1:])
        return callback_main(arguments[1:])
    args = build_parser().parse_args(arguments)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "package":
            return _package(args)
        if args.command == "schedules":
            return _list_schedules(args)
        return _invoke(args)
    except ConfigError as exc:
        print(f"rapidboot: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from .server import run

    source = _definition_source(args)
    if args.snap_start:
        source = _snap_started(source)
    definition = source.read()
    functions = definition.functions
    http_triggers = None
    if definition.template is not None:
        http_triggers = _http_trigger_options(definition.template, args)
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be 0-65535")
    if args.max_concurrency < 1:
        raise ConfigError(f"--max-concurrency {args.max_concurrency}: must be at least 1")
    max_connections = args.max_connections if args.max_connections is not None else _default_max_connections()
    if max_connections < 1:
        raise ConfigError(f"--max-connections {max_connections}: must be at least 1")
    for flag, seconds in (
        ("--keep-alive-timeout", args.keep_alive_timeout),
        ("--request-head-timeout", args.request_head_timeout),
    ):
        if not 0 < seconds <= _MAX_CONNECTION_TIMEOUT_S:
            raise ConfigError(
                f"{flag} {seconds:g}: must be more than 0 and at most {_MAX_CONNECTION_TIMEOUT_S:g} s"
            )
    config = ServerConfig(
        functions,
        host=args.host,
        port=args.port,
        region=args.region or default_region(),
        max_concurrency=args.max_concurrency,
        state_dir=args.state_dir.resolve(),
        max_connections=max_connections,
        keep_alive_timeout_s=args.keep_alive_timeout,
        request_head_timeout_s=args.request_head_timeout,
        allow_updates=args.allow_updates,
        durable_time_scale=args.durable_time_scale,
        console=args.console,
    )
    watch = args.watch if args.watch is not None else definition.template is not None
    schedules = _schedules_of(definition)
    if not args.schedules and schedules:
        print(
            f"rapidboot: --no-schedules: {len(schedules)} schedule(s) not fired: "
            f"{', '.join(schedule.name for schedule in schedules)}",
            file=sys.stderr,
        )
    try:
        return run(
            config,
            loop=args.loop,
            memory_enforcement=args.memory_enforcement,
            source=source if watch else None,
            template=definition.template,
            http_triggers=http_triggers,
            schedules=schedules if args.schedules else None,
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot start on {args.host}:{args.port} (or --api-port {args.api_port}): {exc.strerror or exc}"
        ) from None


_MAX_CONNECTION_TIMEOUT_S = 3600.0


def _schedules_of(definition: Definition) -> list[Schedule]:
    """A template's Schedule / ScheduleV2 rules, or a rapidboot.toml's `schedule` keys."""
    if definition.template is not None:
        return list(definition.template.schedules)
    if not any(function.schedule for function in definition.functions.values()):
        return []
    from .event_sources.schedules import toml_schedules

    return toml_schedules(definition.functions)


def _list_schedules(args: argparse.Namespace) -> int:
    """`rapidboot schedules`: what `serve` with the same flags would fire, and when."""
    from datetime import UTC, datetime

    from .event_sources.schedules import describe

    if args.template is not None and args.config is not None:
        raise ConfigError("--template and --config are exclusive: one server reads one definition")
    if args.count < 1:
        raise ConfigError(f"--count {args.count}: must be at least 1")
    if args.config is not None:
        definition = Definition(load_toml(args.config))
    else:
        from .definitions.template import find_template

        path = args.template or find_template(Path.cwd())
        if path is None:
            raise ConfigError("schedules needs --template FILE (or a template.yaml here) or --config FILE")
        from .definitions.parameters import parse_overrides
        from .definitions.template import load_template, print_warnings

        overrides = parse_overrides(args.parameter_overrides)
        template = load_template(path, overrides, region=args.region or default_region())
        print_warnings(template)
        definition = Definition(template.functions, template)
    print(describe(_schedules_of(definition), datetime.now(UTC), args.count))
    return 0


def _function_from_flags(args: argparse.Namespace) -> FunctionConfig:
    if args.code is None or args.handler is None:
        raise ConfigError(
            "serve needs --template FILE (or a template.yaml here), --config FILE, "
            "or --code DIR and --handler MODULE.FUNCTION"
        )
    function = validate_function(
        "",
        args.name,
        args.code,
        args.handler,
        memory=args.memory,
        timeout=args.timeout,
        environment=parse_env_assignments(args.env),
        command=args.runtime_command,
        reserved_concurrency=args.reserved_concurrency,
        provisioned_concurrency=args.provisioned_concurrency,
        idle_timeout=args.idle_timeout,
        ephemeral_storage=args.ephemeral_storage,
        layers=args.layer,
        runtime=args.runtime,
        maximum_retry_attempts=args.maximum_retry_attempts,
        maximum_event_age=args.maximum_event_age,
        retry_base_delay=args.retry_base_delay,
        on_success=args.on_success,
        on_failure=args.on_failure,
        flags=True,
    )
    _check_destinations(function)
    return function


def _definition_source(args: argparse.Namespace) -> DefinitionSource:
    """Where the functions come from, read once now and again on each reload (`--watch`)."""
    template = _template_path(args)
    if template is not None:
        return DefinitionSource(template, lambda: _load_template(template, args))
    if args.config is not None:
        if args.code is not None or args.handler is not None:
            raise ConfigError("--config and --code/--handler are exclusive: put the function in the file")
        path: Path = args.config
        return DefinitionSource(path, lambda: Definition(load_toml(path)))
    if args.code is None and args.handler is None:
        # Nothing configured: serve what the control plane stored under --state-dir (perhaps nothing yet).
        return DefinitionSource(None, lambda: Definition({}))
    function = _function_from_flags(args)
    return DefinitionSource(None, lambda: Definition({function.name: function}))


def _snap_started(source: DefinitionSource) -> DefinitionSource:
    """`--snap-start`: every function the definition gives, now and at each reload, with SnapStart on."""

    def read() -> Definition:
        definition = source.read()
        functions = {name: with_snap_start(f) for name, f in definition.functions.items()}
        return dataclasses.replace(definition, functions=functions)

    return DefinitionSource(source.path, read)


def _default_max_connections() -> int:
    """DEFAULT_MAX_CONNECTIONS, or half the open-files limit if that is lower: the other half is left to the
    environments (a listener, a pipe, a connection and its probe each: http.py) and the Event queue."""
    import resource  # only `serve` needs it

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_CONNECTIONS
    return max(1, min(DEFAULT_MAX_CONNECTIONS, soft // 2))


def _check_destinations(function: FunctionConfig) -> None:
    """A function served from flags is the server's only one: a `function:` destination can only be it."""
    for flag, destination in (("--on-success", function.on_success), ("--on-failure", function.on_failure)):
        if (
            destination is not None
            and destination.kind == "function"
            and destination.function != function.name
        ):
            raise ConfigError(
                f"{flag}: {destination}: no function {destination.function!r} here (the one function served "
                f"from flags is {function.name!r}; use --config for several)"
            )


def _template_path(args: argparse.Namespace) -> Path | None:
    """--template, or (as `sam` does) a template in the cwd when no other definition is given."""
    from_flags = args.config is not None or args.code is not None or args.handler is not None
    if args.template is not None and from_flags:
        raise ConfigError("--template and --config/--code are exclusive: one server reads one definition")
    if args.parameter_overrides and args.template is None and from_flags:
        raise ConfigError("--parameter-overrides is for a template (--template)")
    if args.template is not None or from_flags:
        return args.template  # type: ignore[no-any-return]
    from .definitions.template import find_template

    return find_template(Path.cwd())


def _load_template(path: Path, args: argparse.Namespace) -> Definition:
    # Lazy: PyYAML, and aws-sam-translator for SAM templates, load only when a template is used.
    from .definitions.parameters import parse_overrides
    from .definitions.template import load_template, print_warnings

    overrides = parse_overrides(args.parameter_overrides)
    definition = load_template(path, overrides, region=args.region or default_region())
    print_warnings(definition)
    _http_trigger_options(definition, args)  # a malformed HTTP event stops a start, or a reload, here
    return Definition(definition.functions, definition)


def _http_trigger_options(definition: TemplateDefinition, args: argparse.Namespace) -> HttpTriggerOptions:
    """The routes of the template's Api / HttpApi events and function URLs, and where to serve them."""
    from .http_triggers.listener import HttpTriggerOptions
    from .http_triggers.routes import build_routes

    if not 0 <= args.api_port <= 65535:
        raise ConfigError(f"--api-port {args.api_port}: must be 0-65535")
    timeout_ms = None
    if args.api_timeout is not None:
        if not 0.05 <= args.api_timeout <= 30:
            raise ConfigError(
                f"--api-timeout {args.api_timeout:g}: must be 0.05-30 seconds, as API Gateway's"
            )
        timeout_ms = round(args.api_timeout * 1000)
    return HttpTriggerOptions(build_routes(definition, timeout_ms), args.api_host, args.api_port, timeout_ms)


def _package(args: argparse.Namespace) -> int:
    from rapidboot.layers.errors import LayerError
    from rapidboot.layers.package import WRAPPER_NAME, build_layer

    try:
        built = build_layer(args.out, args.python)
    except LayerError as exc:
        raise ConfigError(str(exc)) from None
    print(
        f"{built.path}: {built.zip_bytes:,} bytes ({built.unzipped_bytes:,} unzipped), .pyc for "
        f"{', '.join(built.cache_tags)}. On the function: this layer and "
        f"AWS_LAMBDA_EXEC_WRAPPER=/opt/{WRAPPER_NAME}"
    )
    return 0


def _invoke(args: argparse.Namespace) -> int:
    from .invoke.invoke_command import invoke  # an HTTP client, which serving does not need

    return invoke(args)


if __name__ == "__main__":
    raise SystemExit(main())
