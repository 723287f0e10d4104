"""`async def` handlers: one event loop per process, created at the first async invoke, reused after.

`asyncio` costs ~15-35 ms to import, so only a function that returns a coroutine (or streams an async
generator) ever loads it: `loop.py` recognises a coroutine by its type, which needs no import.

Module-scope code runs before any invoke. If it made an event loop current (`asyncio.get_event_loop()`
on Python 3.11, or `asyncio.set_event_loop(asyncio.new_event_loop())` on any version) that loop is
adopted, so clients bound to it at import time (aiohttp sessions, aiobotocore clients, ...) stay valid
across invokes. Code that needs a loop at import time and runs on 3.12+ should create and set one
explicitly like that; `asyncio.run(...)` at module scope closes its loop when it returns, so
nothing created inside it survives to the first invoke. Without a current loop, one is created and set
as current on the first async invoke.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Awaitable
    from types import TracebackType
    from typing import Any, TypeVar

    T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None


def event_loop() -> asyncio.AbstractEventLoop:
    """The process's loop: the current one from module scope if any, else a new one (set current)."""
    global _loop
    if _loop is not None and not _loop.is_closed():
        return _loop
    import asyncio
    import warnings

    loop: asyncio.AbstractEventLoop | None
    with warnings.catch_warnings():
        # 3.12+ warns (3.14 raises) when there is no current loop: that is the case handled below.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            loop = None
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    _loop = loop
    return loop


def run(awaitable: Awaitable[T]) -> T:
    """Await `awaitable` on the process's loop (the handler's coroutine, one invoke at a time)."""
    try:
        return event_loop().run_until_complete(awaitable)
    except Exception as exc:
        # The error's stack trace starts at the user's frame, as for a sync handler: asyncio's own
        # frames (run_until_complete, Future.result, Task.__step) are dropped from its head.
        raise exc.with_traceback(_from_user_frame(exc.__traceback__))  # noqa: B904 (the same error, its own cause)


def _from_user_frame(tb: TracebackType | None) -> TracebackType | None:
    import asyncio

    machinery = (asyncio.__file__.rpartition("/")[0] + "/", __file__)
    first = tb
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(machinery):
        tb = tb.tb_next
    return tb if tb is not None else first


def next_chunk(iterator: AsyncIterator[Any]) -> tuple[bool, Any]:
    """One `__anext__` of an async generator on the loop: (True, chunk) or (False, None) at its end."""
    try:
        return True, run(iterator.__anext__())
    except StopAsyncIteration:
        return False, None


def close(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        run(aclose())
