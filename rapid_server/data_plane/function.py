"""A function: its configuration and its pool of execution environments.

An invoke takes one unit of concurrency (or is throttled at once), then an idle warm environment:
provisioned ones first, then on-demand ones most recently used first, so the least used age out and are
reaped after `idle_timeout`. With none idle, a new environment is started. An environment that timed out,
crashed or failed init is never reused; a provisioned one that is lost is replaced.

A reload (`refresh`: new code, layers or settings) retires the environments of the old version: idle ones
at once, busy ones when their invoke ends (it finishes on the code it started on); the provisioned ones are
replaced at once. A removed function (`drain`) serves no new invoke and stops the same way.

As on Lambda, an environment takes an event only while its runtime waits on /next. A warm one whose runtime
has answered but not yet asked again is waited for briefly (a local caller is often quicker than the
runtime); one still at work after that (`RuntimeBusy`) is passed over for one that waits, or a new one. Any
such wait is in the invoke's Duration.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from rapidboot.layers import PreparedFunction

from .. import errors, rendering
from ..config import FunctionConfig, bootstrap_command
from ..errors import ServiceError
from .concurrency import ConcurrencyLimiter
from .environment import Environment
from .invocation import Invocation, InvokeResult, NotDispatched, RuntimeBusy
from .limits import LimitsFactory
from .logs import LogSink
from .peers import PeerCheck
from .process_setup import process_environment

if TYPE_CHECKING:  # snapstart.py is imported only where a function has snap_start
    from .snapstart import Template

ON_DEMAND = "on-demand"
SNAP_START = "snap-start"
_DISPATCH_ATTEMPTS = 3  # environments tried for one invoke whose runtime died before taking it
PROVISIONED = "provisioned-concurrency"


class Function:
    def __init__(
        self,
        config: FunctionConfig,
        arn: str,
        region: str,
        sink: LogSink,
        on_error: Callable[[BaseException], None],
        limits: LimitsFactory,
        limiter: ConcurrencyLimiter,
        package: PreparedFunction,
        peers: PeerCheck | None = None,
    ):
        self.config = config
        self._peers = peers
        self.package = package
        # What the server adds to its environments' process environment (ServerState.function_environment).
        self.extra_environment: Callable[[], Mapping[str, str]] = dict
        self.arn = arn
        self._region = region
        self._sink = sink
        self._on_error = on_error
        self._limits = limits
        self._limiter = limiter
        # Environments with a free seat, most recently used last; provisioned ones are taken first.
        self._available: list[Environment] = []
        self._available_provisioned: list[Environment] = []
        self._load: dict[Environment, int] = {}  # every live environment: its invokes in flight
        self._last_used: dict[Environment, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._stopping = False
        self._removed = False  # drained: the configuration no longer has this function
        # Environments of an earlier version (before a `refresh`) still finishing an invoke: retired when
        # released, never replaced. `_version` counts refreshes, for provisioning that outlived one.
        self._stale: set[Environment] = set()
        self._version = 0
        # Tenant isolation (PER_TENANT): each tenant has a pool of its own, a Function sharing this one's
        # limits and concurrency, so no environment ever serves two tenants. None without isolation.
        self._tenants: dict[str, Function] | None = {} if config.tenant_isolation else None
        # SnapStart: the template of the current version, which every new environment is forked from.
        self._template: Template | None = None

    @property
    def environments(self) -> list[Environment]:
        """Every live environment, idle or busy (every tenant's, with tenant isolation)."""
        if self._tenants:
            return [env for pool in self._tenants.values() for env in pool.environments]
        return list(self._load)

    async def start(self) -> None:
        """Provision the function's provisioned concurrency and start reaping idle environments. With
        SnapStart, its template starts initialising now, as Lambda initialises when a version is published
        (a tenant-isolated function's templates are its tenants' pools')."""
        if self._tenants is None:
            self._current_template()
        if self.config.provisioned_concurrency and self._tenants is None:
            ready = await asyncio.gather(
                *(self._provision() for _ in range(self.config.provisioned_concurrency))
            )
            for environment in ready:
                if environment is not None:
                    self._load[environment] = 0
                    self._available_provisioned.append(environment)
        self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())

    async def invoke(self, invocation: Invocation) -> InvokeResult:
        """Run one invoke. Throttled at once (429) past the concurrency limits; otherwise runs to its end,
        so the environment is answered and can be reused.

        Not to be cancelled: an invoke cut short would leave its environment mid-invoke. No caller cancels
        it: the Invoke API's listener does not cancel its handlers when the invoker disconnects
        (`cancel_on_disconnect=False` in server.py), and the event dispatcher never cancels an attempt.
        That replaced a task + shield per invoke here, measured at ~5 us of the server's CPU per invoke."""
        if self._stopping:
            raise self._refusal()
        if self._tenants is not None:
            return await self._tenant_pool(invocation.tenant_id).invoke(invocation)
        self._limiter.acquire(self.config.name)
        return await self._run(invocation)

    def _tenant_pool(self, tenant_id: str | None) -> Function:
        """The tenant's own pool, made at its first invoke (on demand only: provisioned environments could
        not know their tenant before it calls)."""
        if tenant_id is None:  # the Invoke API requires one (tenancy.py); this is a bug of ours
            raise ServiceError(500, errors.SERVICE_EXCEPTION, f"{self.config.name}: no tenant")
        assert self._tenants is not None
        pool = self._tenants.get(tenant_id)
        if pool is None:
            config = dataclasses.replace(self.config, tenant_isolation=False, provisioned_concurrency=0)
            pool = Function(
                config,
                self.arn,
                self._region,
                self._sink,
                self._on_error,
                self._limits,
                self._limiter,
                self.package,
                self._peers,
            )
            pool._reaper = asyncio.get_running_loop().create_task(pool._reap_idle())
            self._tenants[tenant_id] = pool
        return pool

    def refresh(self, config: FunctionConfig, package: PreparedFunction) -> asyncio.Future[Any]:
        """From now on, invokes run `config` on `package`. Idle environments stop now and provisioned ones
        are replaced (the returned future is done when they are ready); busy ones finish their invoke on the
        old code and are then retired. Synchronous up to the future, so no invoke sees half a refresh."""
        self._version += 1
        self.config, self.package = config, package
        if self._tenants is not None:
            tenant_config = dataclasses.replace(config, tenant_isolation=False, provisioned_concurrency=0)
            return asyncio.gather(*(pool.refresh(tenant_config, package) for pool in self._tenants.values()))
        if self._template is not None:  # a new version gets a template of its own, made now
            self._template.stop()
            self._template = None
        self._current_template()
        self._available.clear()
        self._available_provisioned.clear()
        for environment, load in list(self._load.items()):
            if load:
                self._stale.add(environment)
            else:
                self._retire(environment, replace=False)
        if self._reaper is not None:  # the idle timeout may have changed
            self._reaper.cancel()
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())
        return asyncio.gather(*(self._replace_provisioned() for _ in range(config.provisioned_concurrency)))

    def drain(self) -> None:
        """The function was removed from the configuration: no new invoke, idle environments stop now and
        busy ones when their invoke ends. `stop` still ends whatever is left, at the server's stop."""
        self._removed = True
        self._stopping = True
        for pool in (self._tenants or {}).values():
            pool.drain()
        if self._reaper is not None:
            self._reaper.cancel()
        self._stop_template()
        self._available.clear()
        self._available_provisioned.clear()
        for environment, load in list(self._load.items()):
            if not load:
                self._retire(environment)

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*(pool.stop() for pool in (self._tenants or {}).values()))
        if self._reaper is not None:
            self._reaper.cancel()
        self._stop_template()
        environments = self.environments
        self._available.clear()
        self._available_provisioned.clear()
        await asyncio.gather(*(env.stop() for env in environments))
        await asyncio.gather(*self._background, return_exceptions=True)

    # Internals -------------------------------------------------------------------------------------------

    def _refusal(self) -> ServiceError:
        if self._removed:
            return ServiceError(404, errors.RESOURCE_NOT_FOUND, f"Function not found: {self.arn}")
        return errors.shutting_down()

    async def _run(self, invocation: Invocation) -> InvokeResult:
        waited_s = 0.0  # for runtimes that turned out busy: in the Duration wherever the invoke runs
        polling_only = False
        try:
            for _ in range(_DISPATCH_ATTEMPTS - 1):
                try:
                    return await self._run_once(invocation, waited_s=waited_s, polling_only=polling_only)
                except NotDispatched:
                    if self._stopping:  # stopped with the server, or removed: no new environment now
                        raise self._refusal() from None
                    continue  # that environment died unseen; the next attempt takes another or a new one
                except RuntimeBusy as busy:
                    waited_s += busy.waited_s
                    polling_only = True  # one that waits on /next now, else a new one
            return await self._run_once(invocation, retry=False, waited_s=waited_s)
        finally:
            self._limiter.release(self.config.name)

    async def _run_once(
        self, invocation: Invocation, retry: bool = True, waited_s: float = 0.0, polling_only: bool = False
    ) -> InvokeResult:
        environment = self._acquire(polling_only) if retry else None
        if environment is None:
            environment = self._new_environment(ON_DEMAND)
            self._load[environment] = 1
            if environment.capacity > 1:
                self._available.append(environment)  # it can take more while it starts
            await environment.start()
        try:
            # The only invoke in flight in the whole server: its invoker is answered before the 202 to the
            # runtime and before END/REPORT and the /tmp check, since nothing else waits on the server
            # (one client: p50 -13% on the 2-core machine). Under load the 202 goes first, as it keeps the
            # other runtimes busy (8 and 64 clients: 7% more throughput that way).
            # Not when the caller wants the invoke's log (its REPORT must be in first) or a stream.
            answer_first = (
                self._limiter.total_in_use == 1 and not invocation.log_tail and invocation.stream is None
            )
            return await environment.invoke(invocation, answer_first, waited_s)
        except NotDispatched:
            if retry:
                raise
            # A brand-new runtime that died before asking for work: report it as the exit it was.
            return environment.exit_result(invocation.request_id)
        finally:
            self._release(environment)

    def _current_template(self) -> Template | None:
        """The template new environments fork from (SnapStart only): the current version's, or a new one
        where it crashed or its init failed (each new environment then tries init again, as on Lambda)."""
        if not self.config.snap_start:
            return None
        if self._template is None or self._template.finished:
            from .snapstart import Template

            self._limits.template_scratch.mkdir(mode=0o1777, parents=True, exist_ok=True)
            environ = process_environment(
                self.config,
                self.package,
                self._region,
                "",
                SNAP_START,
                self._limits.template_scratch,
                self.extra_environment(),
            )
            template = Template(
                bootstrap_command(self.config.handler),
                self.package.task_root,
                environ,
                self.config.name,
                self._sink,
                self._limits.host.pidfd,
            )
            template.on_crash = self._template_crashed
            template.start()
            self._template = template
        return self._template

    def _template_crashed(self, template: Template) -> None:
        """The current template exited unasked after its init: start its successor now. (One whose init
        failed is replaced only when an environment asks: a failing init is not retried in a loop.)"""
        if template is not self._template or self._stopping:
            return
        exit_text = rendering.exit_description(template.returncode if template.returncode is not None else -9)
        self._sink.platform(
            f"SnapStart template of {self.config.name} exited ({exit_text}); starting another"
        )
        self._current_template()

    def _stop_template(self) -> None:
        if self._template is not None:
            self._template.stop()
            self._template = None

    def _new_environment(self, initialization_type: str) -> Environment:
        template = self._current_template()
        if template is not None and initialization_type == ON_DEMAND:
            initialization_type = SNAP_START
        limits = self._limits.for_environment(
            self.config.name, self.config.memory_mb, self.config.ephemeral_storage_mb
        )
        environment = Environment(
            self.config,
            self.arn,
            self._region,
            self._sink,
            self._on_error,
            limits,
            self.package,
            initialization_type,
            self._peers,
            template,
        )
        environment.on_exit = self._exited
        environment.extra_environment = self.extra_environment
        return environment

    def _exited(self, environment: Environment) -> None:
        """An environment's process ended. If it was idle, retire it now (and so replace a provisioned one)
        rather than at the next reaper tick; a busy one is retired when its invokes release it."""
        if self._stopping or self._load.get(environment) != 0:
            return
        for stack in (self._available, self._available_provisioned):
            if environment in stack:
                stack.remove(environment)
        self._retire(environment)

    async def _provision(self) -> Environment | None:
        environment = self._new_environment(PROVISIONED)
        if await environment.provision():
            return environment
        await environment.stop(grace_s=0)
        return None

    def _acquire(self, polling_only: bool = False) -> Environment | None:
        """A seat in a warm environment: provisioned first, then the most recently used. Under load, the
        most recently used whose runtime is already waiting on /next: an environment just released has
        usually not asked for its next event yet, and taking it made the invoke wait for that runtime while
        others were idle and ready (8 concurrent clients). Alone in flight (a sequential caller), strictly
        the most recently used: its runtime is about to ask, and the others stay idle and can be reaped
        (preferring a polling one there rotated the caller through every environment). With
        `polling_only`, only one whose runtime waits on /next now."""
        under_load = self._limiter.total_in_use > 1 or polling_only
        for stack in (self._available_provisioned, self._available):
            while stack and not stack[-1].usable:
                environment = stack.pop()
                if self._load.get(environment) == 0:
                    self._retire(environment)
            if not stack:
                continue
            index = len(stack) - 1
            for candidate in range(index if under_load else -1, -1, -1):
                if stack[candidate].polling and stack[candidate].usable:
                    index = candidate
                    break
            else:
                if polling_only:
                    continue
            environment = stack[index]
            self._load[environment] += 1
            if self._load[environment] >= environment.capacity:
                del stack[index]
            return environment
        return None

    def _release(self, environment: Environment) -> None:
        self._load[environment] -= 1
        stack = (
            self._available_provisioned if environment.initialization_type == PROVISIONED else self._available
        )  # (SNAP_START environments are on-demand ones)
        if environment in stack:
            stack.remove(environment)
        if self._stopping or not environment.usable or (self._stale and environment in self._stale):
            if self._load[environment] == 0:
                self._retire(environment)
            return
        # time.monotonic(), not asyncio.get_running_loop().time(): the lookup is a getpid(2) on Python 3.11
        self._last_used[environment] = time.monotonic()
        stack.append(environment)  # most recently used last

    def _retire(self, environment: Environment, replace: bool = True) -> None:
        """Stop an environment that will not serve again; keep provisioned concurrency at its level (an
        environment of an earlier version is not replaced: `refresh` provisioned its successors)."""
        self._load.pop(environment, None)
        self._last_used.pop(environment, None)
        self._spawn(environment.stop(grace_s=0))
        stale = environment in self._stale
        self._stale.discard(environment)
        if environment.initialization_type == PROVISIONED and replace and not stale and not self._stopping:
            self._spawn(self._replace_provisioned(lost=environment.pid))

    async def _replace_provisioned(self, lost: int | None = None) -> None:
        """A provisioned environment in place of one that ended (`lost`: its pid, said when the new one is
        ready), or of one of the version a refresh retired."""
        version = self._version
        environment = await self._provision()
        if environment is None:
            return
        if self._stopping or version != self._version:  # stopped, or refreshed while it initialised
            await environment.stop(grace_s=0)
        else:
            self._load[environment] = 0
            self._available_provisioned.append(environment)
            if lost is not None:
                self._sink.platform(rendering.replaced_line(self.config.name, environment.pid, lost))

    async def _reap_idle(self) -> None:
        """Stop on-demand environments idle longer than `idle_timeout`, as Lambda reaps them."""
        idle_timeout = self.config.idle_timeout_s
        interval = max(0.05, min(5.0, idle_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for environment in list(self._available):
                if self._load.get(environment):
                    continue  # a seat is busy: not idle
                idle_s = now - self._last_used.get(environment, now)
                if environment.usable and idle_s < idle_timeout:
                    continue
                self._available.remove(environment)
                if environment.usable:
                    self._sink.platform(rendering.reaped_line(self.config.name, environment.pid, idle_s))
                self._load.pop(environment, None)
                self._last_used.pop(environment, None)
                self._spawn(environment.stop())
            for environment in [env for env in self._available_provisioned if not env.usable]:
                self._available_provisioned.remove(environment)
                if self._load.get(environment) == 0:
                    self._retire(environment)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure(self._on_error))


def _log_failure(on_error: Callable[[BaseException], None]) -> Callable[[asyncio.Future[None]], None]:
    def check(task: asyncio.Future[None]) -> None:
        if not task.cancelled():
            exception = task.exception()
            if exception is not None:
                on_error(exception)

    return check
