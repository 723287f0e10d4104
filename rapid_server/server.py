"""Run the local Lambda: the Invoke API listener, the functions, and an orderly stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from .async_invokes.async_queue import AsyncQueue, QueueError
from .async_invokes.dispatcher import Dispatcher
from .config import ConfigError, FunctionConfig, ServerConfig
from .control_plane.functions import ControlPlane, stored_functions
from .control_plane.store import FunctionStore
from .data_plane.containment import Supervisor, end_dead_servers, write_record
from .data_plane.environment import SHUTDOWN_GRACE_S
from .data_plane.limits import LimitsFactory, detect_limits
from .data_plane.logs import LogSink
from .data_plane.peers import PeerCheck, detect_peer_check
from .host import Host
from .http import bound_port, start_listener
from .invoke import invoke_api
from .loop import LoopName, loop_factory, loop_name
from .server_state import ServerState

if TYPE_CHECKING:
    from .config import DefinitionSource
    from .definitions.template import TemplateDefinition
    from .durable.service import DurableService
    from .event_sources.manager import EventSources
    from .event_sources.schedules import Schedule, Scheduler
    from .http_triggers.listener import HttpTriggerOptions


def report_notice(line: str) -> None:
    # One write: pollers' threads report too, and print's two writes (text, newline) could interleave.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def report_internal_error(exc: BaseException) -> None:
    """A bug of ours in one request: say so loudly on stderr, keep serving."""
    print("rapidboot: internal error:", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)


async def serve(
    config: ServerConfig,
    limits: LimitsFactory,
    on_ready: Callable[[str], None] | None = None,
    peers: PeerCheck | None = None,
    http_triggers: HttpTriggerOptions | None = None,
    source: DefinitionSource | None = None,
    template: TemplateDefinition | None = None,
    schedules: list[Schedule] | None = None,
) -> None:
    """`http_triggers`: the template's HTTP routes, served on a listener of their own when there are any.
    `source`: watch it and the functions' code and layers, and reload on a change (`--watch`).
    `schedules`: fired as Event invokes; None with `--no-schedules` (a template's reload then adds none)."""
    loop = asyncio.get_running_loop()
    # -- the control plane: what the API created is served with the configured functions; on a clash of
    # names the configuration's function wins (the stored one stays in the store, unserved)
    store = _open_store(config)
    stored = {name: f for name, f in stored_functions(store).items() if name not in config.functions}
    config = dataclasses.replace(config, functions={**config.functions, **stored})
    if stored:
        report_notice(f"rapidboot: functions created through the API (--state-dir): {', '.join(stored)}")
    sink = LogSink()
    sink.gather_in(loop)
    state = ServerState(config, sink, report_internal_error, limits, peers)
    control = ControlPlane(state, store)
    state.template = template
    dispatcher = Dispatcher(
        _open_queue(config),
        state.functions,
        state.sink,
        report_internal_error,
        resolve=control.versions.event_target,  # versions' and aliases' events run in their pools
    )
    state.dispatcher = dispatcher
    durable = DurableOpener(state, config)
    # Provisioned concurrency is ready before the server says it is.
    await asyncio.gather(*(function.start() for function in state.functions.values()))
    await control.versions.start()  # published versions: pools of their own
    console = None
    if config.console:
        from .observability.console import Console

        console = Console(state)
    listener = await start_listener(
        invoke_api.make_handler(state, control, durable, console),
        config.host,
        config.port,
        invoke_api.MAX_SYNC_PAYLOAD_BYTES,
        report_internal_error,
        cancel_on_disconnect=False,  # an invoke runs to its end when its invoker leaves (Function.invoke)
        body_limit=invoke_api.body_limit,
        policy=invoke_api.connection_policy(config, report_notice),
    )
    url = f"http://{config.host}:{bound_port(listener)}"
    durable.endpoint = f"http://{_local(config.host)}:{bound_port(listener)}"
    if durable.wanted_at_start:
        durable()  # resumes what the log holds RUNNING
    # -- HTTP triggers: one more listener, only when the template has HTTP events or function URLs
    api_listener = None
    if http_triggers is not None and http_triggers.routes:
        # Lazy: the HTTP front door costs ~10 ms of every start (measured with -X importtime); only a
        # template with HTTP events or function URLs loads it.
        from .http_triggers.listener import start_http_triggers

        try:
            api_listener, state.http_triggers = await start_http_triggers(
                state, http_triggers, report_notice, report_internal_error
            )
        except OSError:
            listener.close()
            raise
    if http_triggers is not None:
        state.template_observers.append(_follow_routes(state, http_triggers))
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    dispatcher.start()
    stop_schedules = _start_schedules(state, schedules) if schedules is not None else None
    # SQS pollers: after the functions and the listener, as a caller would be; only if there are mappings
    # (else on the first API call that needs them)
    state.open_event_sources = _event_sources_opener(state, os.environ.get(LONG_POLL_VARIABLE, ""))
    if _has_mappings(config):
        state.open_event_sources()
    reloader = None
    if source is not None:
        from .reload import Reloader  # imports watchfiles: only when watching

        reloader = Reloader(state, source, report_notice)
        await reloader.start()
    if on_ready is not None:
        on_ready(url)
    try:
        await stop.wait()
    finally:
        if reloader is not None:
            await reloader.stop()
        in_flight = sum(
            env.in_flight for function in state.functions.values() for env in function.environments
        )
        print(
            f"rapidboot: stopping; {in_flight} invokes in flight have {SHUTDOWN_GRACE_S:.1f} s to finish",
            file=sys.stderr,
            flush=True,
        )
        listener.close()
        if console is not None:
            console.close()  # its feeds are streams that never end by themselves
        if stop_schedules is not None:
            stop_schedules()
        if api_listener is not None:
            api_listener.close()
        if state.event_sources is not None:
            state.event_sources.stop()  # no new batch; one in flight ends with its function, not deleted
        dispatcher.begin_stop()  # events in flight go back to the queue as their environments stop
        if durable.service is not None:
            await durable.service.stop()  # replays end here; the log has every execution for the next start
        # Invokes in flight get the grace period to finish, then their callers get the shutting-down
        # error; runtimes get SIGTERM, then every process of every environment is killed (removed
        # functions' too, if still finishing an invoke).
        await asyncio.gather(state.stop_functions(), control.versions.stop())
        await dispatcher.wait_stopped()
        for _ in range(3):
            await asyncio.sleep(0)
        state.sink.flush()  # lines of the last turn (LogSink gathers a turn's lines)
        control.close()  # the function store and the layer store
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _start_schedules(state: ServerState, schedules: list[Schedule]) -> Callable[[], None]:
    """Timers for the schedules (event_sources/schedules.py), following the template's across reloads;
    returns what stops them. Lazy: a server with no schedule never imports the machinery."""
    scheduler: Scheduler | None = None

    def start(new: Sequence[Schedule]) -> None:
        nonlocal scheduler
        if scheduler is None:
            if not new:
                return
            from .event_sources.schedules import Scheduler

            assert state.dispatcher is not None
            scheduler = Scheduler(
                state.dispatcher.accept,
                state.functions.__contains__,
                state.config.region,
                state.config.account_id,
                report_notice,
            )
        for schedule in scheduler.start(new):
            disabled = "" if schedule.enabled else " (disabled)"
            report_notice(
                f"rapidboot: schedule {schedule.name}: {schedule.expression.text} invokes "
                f"{schedule.function}{disabled}"
            )

    def stop() -> None:
        if scheduler is not None:
            scheduler.stop()

    start(schedules)
    if state.template is not None:
        state.template_observers.append(lambda template: start(template.schedules))
    else:
        state.function_observers.append(lambda functions: start(_toml_schedules(functions)))
    return stop


def _toml_schedules(functions: Mapping[str, FunctionConfig]) -> list[Schedule]:
    if not any(function.schedule for function in functions.values()):
        return []
    from .event_sources.schedules import toml_schedules

    return toml_schedules(functions)


def _follow_routes(state: ServerState, options: HttpTriggerOptions) -> Callable[[TemplateDefinition], None]:
    """On a reload, the HTTP listener's routes are replaced whole by the new template's (checked already
    when the template was read, so building them cannot fail here)."""
    from .http_triggers.routes import build_routes

    def follow(template: TemplateDefinition) -> None:
        routes = build_routes(template, options.integration_timeout_ms)
        if state.http_triggers is not None:
            state.http_triggers.routes = routes
        elif routes:
            report_notice("rapidboot: the template now has HTTP triggers: restart the server to serve them")

    return follow


def _local(host: str) -> str:
    """Where a local process reaches a listener bound to `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


class DurableOpener:
    """The durable execution service, opened on first need: at start when a configured function is durable
    or the log has executions (to resume them), else at the first durable invoke or API call (a durable
    function created through the control plane). Lazy: a server with neither never loads it.

    A durable function's environments get `AWS_ENDPOINT_URL_LAMBDA` (boto3's per-service endpoint
    variable), so the SDK's own client reaches this server, and dummy credentials when the server has none
    (its requests are signed; the signature is not checked). Other functions get neither."""

    def __init__(self, state: ServerState, config: ServerConfig):
        self._state = state
        self._config = config
        self.endpoint = f"http://{_local(config.host)}:{config.port}"  # the Invoke API; set once bound
        self.service: DurableService | None = None
        self._credentials: dict[str, str] = {}
        if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
            self._credentials = {"AWS_ACCESS_KEY_ID": "rapidboot", "AWS_SECRET_ACCESS_KEY": "rapidboot"}
        state.function_environment = self._environment
        scale = config.durable_time_scale
        if scale != 1:  # at start, always: durable functions may come later (CreateFunction)
            report_notice(
                f"rapidboot: --durable-time-scale {scale:g}: durable executions' waits, retry delays, "
                f"timeouts and retention run {scale:g}x fast"
            )

    def _environment(self, function: FunctionConfig) -> dict[str, str]:
        if function.durable is None:
            return {}
        return {"AWS_ENDPOINT_URL_LAMBDA": self.endpoint, **self._credentials}

    @property
    def wanted_at_start(self) -> bool:
        from .durable.store import DATABASE_NAME  # a module of constants and sqlite3 only

        durable_functions = any(f.durable is not None for f in self._state.config.functions.values())
        return durable_functions or (self._config.state_dir / "durable" / DATABASE_NAME).exists()

    def __call__(self) -> DurableService:
        if self.service is None:
            from .durable.service import DurableService
            from .durable.store import DurableStore

            directory = self._config.state_dir / "durable"
            try:
                store = DurableStore(directory)
            except (sqlite3.Error, OSError) as exc:
                raise ConfigError(
                    f"--state-dir {self._config.state_dir}: cannot open the durable executions' log: {exc}"
                ) from None
            scale = self._config.durable_time_scale
            self.service = DurableService(
                store, self._state.functions, report_notice, report_internal_error, scale
            )
            resumed = self.service.resume()
            if resumed:
                report_notice(f"rapidboot: durable executions resumed from --state-dir: {resumed}")
        return self.service


def _open_store(config: ServerConfig) -> FunctionStore:
    try:
        return FunctionStore(config.state_dir / "functions")
    except (sqlite3.Error, OSError) as exc:
        raise ConfigError(f"--state-dir {config.state_dir}: cannot open the function store: {exc}") from None


LONG_POLL_VARIABLE = "RAPIDBOOT_SQS_LONG_POLL"  # event_sources/manager.py's; read once, here


def _has_mappings(config: ServerConfig) -> bool:
    """Mappings declared, or created through the API before (event_sources/store.py's file)."""
    declared = any(function.event_sources for function in config.functions.values())
    return declared or (config.state_dir / "event_sources" / "mappings.json").exists()


def _event_sources_opener(state: ServerState, long_poll: str) -> Callable[[], EventSources]:
    """The server's event source mappings, made and started at the first need. Lazy: their modules are
    ~10 ms of import (python -X importtime) that a server without mappings does not pay."""

    def open_event_sources() -> EventSources:
        if state.event_sources is None:
            from .event_sources.manager import EventSources, long_poll_from_environment
            from .event_sources.store import MappingStore, StoreError

            config = state.config
            try:
                long_poll_s = long_poll_from_environment({LONG_POLL_VARIABLE: long_poll})
                store = MappingStore(config.state_dir / "event_sources")
                sources = EventSources(state, store, report_notice, report_internal_error, long_poll_s)
            except (ValueError, StoreError, OSError) as exc:
                raise ConfigError(
                    f"--state-dir {config.state_dir}: cannot open the event source mappings: {exc}"
                ) from None
            state.event_sources = sources
            sources.start()
        return state.event_sources

    return open_event_sources


def _open_queue(config: ServerConfig) -> AsyncQueue:
    directory = config.state_dir / "async"
    try:
        return AsyncQueue(directory)
    except (QueueError, OSError) as exc:
        raise ConfigError(f"--state-dir {config.state_dir}: cannot open the Event queue: {exc}") from None


def run(
    config: ServerConfig,
    loop: LoopName = "auto",
    memory_enforcement: str = "auto",
    http_triggers: HttpTriggerOptions | None = None,
    source: DefinitionSource | None = None,
    template: TemplateDefinition | None = None,
    schedules: list[Schedule] | None = None,
) -> int:
    factory = loop_factory(loop)
    host = Host.detect(os.environ)  # the one read of RAPIDBOOT_PORTABLE; passed down from here
    for line in end_dead_servers(config.state_dir):
        print(f"rapidboot: --state-dir {config.state_dir}: {line}", file=sys.stderr, flush=True)
    limits = detect_limits(str(os.getpid()), memory_enforcement, host=host)
    peers = detect_peer_check(host)
    if host.lacking:
        not_enforced = limits.not_enforced()
        if not peers.enabled:
            not_enforced.append("isolation of the Runtime API (open to any local process)")
        print(
            f"rapidboot: {host.lacking}, so not enforced here: {'; '.join(not_enforced)}",
            file=sys.stderr,
            flush=True,
        )
    print(f"rapidboot: {limits.description}; {peers.description}", file=sys.stderr, flush=True)

    def ready(url: str) -> None:
        names = ", ".join(config.functions)
        print(
            f"rapidboot: listening on {url} ({loop_name(factory)}); functions: {names}",
            file=sys.stderr,
            flush=True,
        )

    # Should this process be killed, its supervisor ends its environments; should both be, the next
    # server on this state dir does (containment.py).
    try:
        record_path, record_fd = write_record(config.state_dir, limits.record())
    except OSError as exc:
        limits.close()
        raise ConfigError(f"--state-dir {config.state_dir}: cannot write there: {exc}") from None
    supervisor: Supervisor | None = None
    try:
        limits.supervisor = supervisor = Supervisor.start(record_path, record_fd)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(config, limits, ready, peers, http_triggers, source, template, schedules))
    finally:
        peers.close()
        limits.close()  # ends whatever the environments left
        if supervisor is not None:
            supervisor.close()  # only then: the supervisor has nothing left to do
        record_path.unlink(missing_ok=True)
        os.close(record_fd)
    return 0
