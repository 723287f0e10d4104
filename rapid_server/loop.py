"""The event loop factory: uvloop when it is installed, plain asyncio otherwise (or on request)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

LoopName = Literal["auto", "uvloop", "asyncio"]


def loop_factory(name: LoopName = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def loop_name(factory: Callable[[], asyncio.AbstractEventLoop]) -> str:
    return "asyncio" if factory is asyncio.new_event_loop else "uvloop"
