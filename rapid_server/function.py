"""A function: its configuration and the execution environments that serve it.

In this slice a function has at most one environment and invokes take turns on it (each waits for the one
before to finish; none is lost or answered with another's response). The pool shape (acquire an
environment, start one when there is none usable, drop one that ended) is what scale-out builds on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from . import errors
from .config import FunctionConfig
from .environment import Environment, Invocation, InvokeResult
from .errors import ServiceError
from .logs import LogSink


class Function:
    def __init__(
        self,
        config: FunctionConfig,
        arn: str,
        region: str,
        sink: LogSink,
        on_error: Callable[[BaseException], None],
    ):
        self.config = config
        self.arn = arn
        self._region = region
        self._sink = sink
        self._on_error = on_error
        self._environment: Environment | None = None
        self._turn = asyncio.Lock()
        self._stopping = False

    @property
    def environments(self) -> list[Environment]:
        return [self._environment] if self._environment is not None else []

    async def invoke(self, invocation: Invocation) -> InvokeResult:
        """Run the invoke to its end even if the caller goes away meanwhile: an environment abandoned
        mid-invoke would be neither answered nor reusable."""
        task = asyncio.ensure_future(self._invoke(invocation))
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    async def _invoke(self, invocation: Invocation) -> InvokeResult:
        async with self._turn:
            if self._stopping:
                raise ServiceError(500, errors.SERVICE_EXCEPTION, "The server is shutting down")
            environment = self._environment
            if environment is None or not environment.usable:
                environment = Environment(self.config, self.arn, self._region, self._sink, self._on_error)
                self._environment = environment
                await environment.start()
            result = await environment.invoke(invocation)
            if not environment.usable:
                # Timed out, crashed or failed init: the next invoke gets a fresh environment.
                self._environment = None
                await environment.stop(grace_s=0)
            return result

    async def stop(self) -> None:
        self._stopping = True
        environment = self._environment
        self._environment = None
        if environment is not None:
            await environment.stop()


def _retrieve(task: asyncio.Future[InvokeResult]) -> None:
    """Consume the outcome of an invoke whose caller left, so it is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()
