"""SnapStart (`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`): the hooks around the snapshot, as awslambdaric.

After init: before-snapshot hooks (last registered first) -> `GET /runtime/restore/next` (returns in the
restored copy) -> after-restore hooks (first registered first) -> the invoke loop. A failing
before-snapshot hook (or `/restore/next`) is posted to `/runtime/init/error` as
`Runtime.BeforeSnapshotError` and the runtime exits 64; a failing after-restore hook to
`/runtime/restore/error` as `Runtime.AfterRestoreError`, exit 65.

Hooks are registered with the public `snapshot_restore_py` package. It is never imported here: a
function that registered hooks has imported it already, and one that has not has no hooks to run.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import sys

from .client import RuntimeClientError
from .errors import current_exception_report
from .marshal import to_json_bytes

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .client import RuntimeClient
    from .logs import LogSink

    Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

BEFORE_SNAPSHOT_ERROR = "Runtime.BeforeSnapshotError"
AFTER_RESTORE_ERROR = "Runtime.AfterRestoreError"
EXIT_BEFORE_SNAPSHOT_ERROR = 64
EXIT_AFTER_RESTORE_ERROR = 65


def snapshot_and_restore(client: RuntimeClient, sink: LogSink) -> int | None:
    """Run the SnapStart phase; returns an exit code if it failed, None to go on to the invoke loop."""
    try:
        run_before_snapshot()
        response = client.restore_next()
        if response.status != 200:
            raise RuntimeClientError(
                f"/restore/next returned HTTP {response.status}: {response.body[:500]!r}", response.status
            )
    except Exception:
        report = current_exception_report()
        sink.log_error_report(report, "")
        _post(client.post_init_error, to_json_bytes(report.body("")), BEFORE_SNAPSHOT_ERROR)
        return EXIT_BEFORE_SNAPSHOT_ERROR
    return after_restore(client, sink)


def run_before_snapshot() -> None:
    """The before-snapshot hooks, each once, newest first (awslambdaric's order); a hook's
    exception propagates."""
    before, _ = _registries()
    while before:  # popped: each hook runs once
        function, args, kwargs = before.pop()
        function(*args, **kwargs)


def after_restore(client: RuntimeClient, sink: LogSink) -> int | None:
    """The after-restore hooks, first registered first; a failure (SnapStartTimeoutException included, when
    the restore limit interrupts a hook) is posted to `/restore/error` and gives exit 65."""
    _, after = _registries()
    try:
        for function, args, kwargs in list(after):
            function(*args, **kwargs)
    except Exception:
        report = current_exception_report()
        sink.log_error_report(report, "")
        _post(client.post_restore_error, to_json_bytes(report.body("")), AFTER_RESTORE_ERROR)
        return EXIT_AFTER_RESTORE_ERROR
    return None


def _registries() -> tuple[list[Hook], list[Hook]]:
    module = sys.modules.get("snapshot_restore_py")
    if module is None:
        return [], []
    before: list[Hook] = module.get_before_snapshot()
    after: list[Hook] = module.get_after_restore()
    return before, after


def _post(post: Callable[[bytes, str], Any], body: bytes, error_type: str) -> None:
    try:
        post(body, error_type)
    except RuntimeClientError as exc:
        sys.stderr.write(f"rapidboot: cannot report {error_type}: {exc}\n")
