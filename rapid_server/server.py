"""Run the local Lambda: the Invoke API listener, the functions, and an orderly stop on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from collections.abc import Callable

from . import invoke_api
from .async_queue import AsyncQueue, QueueError
from .config import ConfigError, ServerConfig
from .containment import Supervisor, end_dead_servers, write_record
from .dispatcher import Dispatcher
from .environment import SHUTDOWN_GRACE_S
from .http import bound_port, start_listener
from .http_triggers.listener import HttpTriggerOptions, start_http_triggers
from .limits import LimitsFactory, detect_limits
from .logs import LogSink
from .loop import LoopName, loop_factory, loop_name
from .peers import PeerCheck, detect_peer_check
from .server_state import ServerState


def report_notice(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
) -> None:
    loop = asyncio.get_running_loop()
    state = ServerState(config, LogSink(), report_internal_error, limits, peers)
    dispatcher = Dispatcher(_open_queue(config), state.functions, state.sink, report_internal_error)
    state.dispatcher = dispatcher
    # Provisioned concurrency is ready before the server says it is.
    await asyncio.gather(*(function.start() for function in state.functions.values()))
    listener = await start_listener(
        invoke_api.make_handler(state),
        config.host,
        config.port,
        invoke_api.MAX_SYNC_PAYLOAD_BYTES,
        report_internal_error,
        cancel_on_disconnect=False,  # an invoke runs to its end when its invoker leaves (Function.invoke)
        body_limit=invoke_api.body_limit,
        policy=invoke_api.connection_policy(config, report_notice),
    )
    url = f"http://{config.host}:{bound_port(listener)}"
    # -- HTTP triggers: one more listener, only when the template has HTTP events or function URLs
    api_listener = None
    if http_triggers is not None and http_triggers.routes:
        try:
            api_listener, state.http_triggers = await start_http_triggers(
                state, http_triggers, report_notice, report_internal_error
            )
        except OSError:
            listener.close()
            raise
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    dispatcher.start()
    if on_ready is not None:
        on_ready(url)
    try:
        await stop.wait()
    finally:
        in_flight = sum(
            env.in_flight for function in state.functions.values() for env in function.environments
        )
        print(
            f"rapidboot: stopping; {in_flight} invokes in flight have {SHUTDOWN_GRACE_S:.1f} s to finish",
            file=sys.stderr,
            flush=True,
        )
        listener.close()
        if api_listener is not None:
            api_listener.close()
        dispatcher.begin_stop()  # events in flight go back to the queue as their environments stop
        # Invokes in flight get the grace period to finish, then their callers get the shutting-down
        # error; runtimes get SIGTERM, then every process of every environment is killed.
        await asyncio.gather(*(function.stop() for function in state.functions.values()))
        await dispatcher.wait_stopped()
        for _ in range(3):
            await asyncio.sleep(0)
        state.sink.flush()  # lines of the last turn (LogSink gathers a turn's lines)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


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
) -> int:
    factory = loop_factory(loop)
    for line in end_dead_servers(config.state_dir):
        print(f"rapidboot: --state-dir {config.state_dir}: {line}", file=sys.stderr, flush=True)
    limits = detect_limits(str(os.getpid()), memory_enforcement)
    peers = detect_peer_check()
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
            runner.run(serve(config, limits, ready, peers, http_triggers))
    finally:
        peers.close()
        limits.close()  # ends whatever the environments left
        if supervisor is not None:
            supervisor.close()  # only then: the supervisor has nothing left to do
        record_path.unlink(missing_ok=True)
        os.close(record_fd)
    return 0
