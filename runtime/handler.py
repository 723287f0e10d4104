"""Find and import the function's handler (`module.function`), with awslambdaric's init errors."""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import sys

from .errors import (
    BUILT_IN_MODULE_CONFLICT,
    HANDLER_NOT_FOUND,
    IMPORT_MODULE_ERROR,
    MALFORMED_HANDLER_NAME,
    USER_CODE_SYNTAX_ERROR,
    FaultError,
    syntax_error_trace,
)

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Handler = Callable[[Any, Any], Any]


def load_handler(name: str) -> Handler:
    """Import the handler's module (once per process) and return the function.

    `src/pkg/mod.fn` names module `src.pkg.mod`. Any other exception raised while the module runs
    propagates unchanged: it is reported under its own class name.
    """
    try:
        module_name, function_name = name.rsplit(".", 1)
    except ValueError as exc:
        raise FaultError(MALFORMED_HANDLER_NAME, f"Bad handler '{name}': {exc}") from None

    if module_name.split(".")[0] in sys.builtin_module_names:
        raise FaultError(
            BUILT_IN_MODULE_CONFLICT, f"Cannot use built-in module {module_name} as a handler module"
        )

    dotted_name = module_name.replace("/", ".")
    try:
        # `__import__` rather than importlib.import_module: no importlib frame in user tracebacks,
        # and `importlib` need not be loaded.
        __import__(dotted_name)
        module = sys.modules[dotted_name]
    except ImportError as exc:
        raise FaultError(IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        raise FaultError(
            USER_CODE_SYNTAX_ERROR,
            f"Syntax error in module '{module_name}': {exc}",
            syntax_error_trace(exc),
        ) from None

    try:
        handler: Handler = getattr(module, function_name)
    except AttributeError:
        raise FaultError(
            HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None
    return handler
