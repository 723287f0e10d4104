"""Graceful shutdown: on SIGTERM, run the registered callbacks, then `atexit` functions, then exit 0.

Lambda sends SIGTERM when it retires an execution environment and SIGKILLs it 300-500 ms later
(reference section 4), so callbacks must be short: flush a buffer, close a connection. awslambdaric
cannot offer this (its native `/next` call blocks the signal, awslambdaric #105); here `/next` waits
in an interruptible `recv` (see `client.RuntimeClient._read_response`), so the handler runs within
milliseconds.

Public API, cheap to import (this module imports only `sys`, `os` and `_signal`)::

    from rapidboot.runtime import on_shutdown  # or: from rapidboot.runtime.shutdown import on_shutdown

    @on_shutdown
    def flush() -> None: ...

    on_shutdown(pool.close)                   # extra args are passed on: on_shutdown(fn, *args, **kwargs)

Callbacks run last-registered first (like `atexit`), each at most once; an exception in one is printed
to stderr and the others still run. `atexit.register` works too: those functions run after ours.

The `bootstrap` loads this package under a private name (`_rapidboot_runtime`) so it cannot clash with
a function's own modules. A function that imports the public name (`runtime`, e.g. rapidboot vendored
or pip-installed beside it) gets a second copy of this module: that copy adopts the running runtime's
registry below, so callbacks registered through either name run.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import os
import sys

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

    Callback = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

_BOOTSTRAP_NAME = "_rapidboot_runtime.shutdown"

_callbacks: list[Callback] = []
_running = sys.modules.get(_BOOTSTRAP_NAME)
if _running is not None and __name__ != _BOOTSTRAP_NAME:
    _callbacks = _running._callbacks  # a second copy under the public name: share the registry
del _running


def on_shutdown(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    """Run `callback(*args, **kwargs)` when the runtime is told to shut down (SIGTERM).

    Returns `callback`, so it also works as a decorator.
    """
    _callbacks.append((callback, args, kwargs))
    return callback


def run_callbacks() -> None:
    """Run (and forget) every registered callback, newest first."""
    while _callbacks:
        callback, args, kwargs = _callbacks.pop()
        try:
            callback(*args, **kwargs)
        except BaseException as exc:  # one failing callback must not stop the others
            name = getattr(callback, "__qualname__", repr(callback))
            sys.stderr.write(f"rapidboot: shutdown callback {name} failed: {type(exc).__name__}: {exc}\n")


def shut_down(exit_code: int = 0) -> None:
    """Callbacks, `atexit` functions, flushed stdio, then `os._exit` (no `except` in user code stops it)."""
    run_callbacks()
    import atexit  # built in, no file to load

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    os._exit(exit_code)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    shut_down(0)


def install_sigterm_handler() -> None:
    """Make SIGTERM a graceful shutdown. Called before the function's code is imported, so a
    `signal.signal(SIGTERM, ...)` of the function's own replaces it."""
    # `_signal`, not `signal`: the latter imports `enum` (~1.5 ms) for its IntEnum wrappers.
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal

    _signal.signal(_signal.SIGTERM, _on_sigterm)
