"""PutFunctionRecursionConfig / GetFunctionRecursionConfig: whether a recursive loop through the function
is stopped (`Terminate`, the default) or let run (`Allow`). The invoke side is
rapid_server/invoke/recursion.py.

The setting is kept in the store for a function the API created. For a function of the configuration it
may be set only with `serve --allow-updates`, and then lives in memory, as that flag's other updates do.
"""

from __future__ import annotations

from ..invoke.recursion import ALLOW, MODES, TERMINATE
from .functions import ControlPlane, _invalid


def get(control: ControlPlane, raw_name: str) -> dict[str, object]:
    function, _ = control.find(raw_name)
    allowed = function.config.name in control.state.recursion_allowed
    return {"RecursiveLoop": ALLOW if allowed else TERMINATE}


async def put(control: ControlPlane, raw_name: str, body: dict[str, object]) -> dict[str, object]:
    mode = body.get("RecursiveLoop")
    if mode not in MODES:
        raise _invalid(f"RecursiveLoop: {mode!r} must be one of {', '.join(MODES)}")
    async with control.mutation():
        function, _ = control.find(raw_name)
        name = function.config.name
        if control.store.get(name) is None:
            control.writable(name)  # a configured function: read-only unless --allow-updates (memory only)
        else:
            control.store.put_recursion(name, mode == ALLOW)
        if mode == ALLOW:
            control.state.recursion_allowed.add(name)
        else:
            control.state.recursion_allowed.discard(name)
    return {"RecursiveLoop": mode}
