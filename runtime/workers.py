"""`AWS_LAMBDA_MAX_CONCURRENCY=N` (Lambda Managed Instances): N worker processes, each long-polling `/next`.

Processes, as awslambdaric 4.x (which forks N `multiprocessing` workers), not threads: Python handlers
are mostly CPU-bound glue under one GIL, and the per-invoke state the Lambda contract puts in process
globals (`_X_AMZN_TRACE_ID` in `os.environ`, the request id stamped on log records, module globals
handlers rely on) cannot be shared by concurrent invokes. Each worker is forked *before* the
function's code is imported (again as awslambdaric), so no thread, lock or socket the function
creates at import time is ever duplicated by `fork`; each worker opens its own Runtime API connection.

`os.fork` directly rather than `multiprocessing` (~10 ms of imports) since nothing is sent between
processes. The parent only supervises: SIGTERM is forwarded to the workers (each runs its shutdown
callbacks); when one worker exits with an error the others are stopped the same way, and the parent
exits with the first worker's error status (awslambdaric waits for all and exits 0 regardless).
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import os
import sys

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


def run_workers(count: int, work: Callable[[], int]) -> int:
    """Fork `count` workers running `work()` (its result is the worker's exit code); wait for them."""
    if TYPE_CHECKING:
        import signal as _signal
    else:
        import _signal  # not `signal`: it imports `enum`

    live: set[int] = set()

    def forward(signum: int, frame: FrameType | None) -> None:
        for pid in live:
            _kill(pid, signum)

    # Installed before forking, so a SIGTERM that arrives at any point is forwarded; each worker
    # installs its own shutdown handler first thing (`work`).
    _signal.signal(_signal.SIGTERM, forward)
    for _ in range(count):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = work()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                for stream in (sys.stdout, sys.stderr):
                    if stream is not None:
                        stream.flush()
                os._exit(code)
        live.add(pid)

    first_failure = 0
    while live:
        pid, status = os.wait()  # PEP 475: a signal runs `forward`, then the wait resumes
        live.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 and not first_failure:
            first_failure = code if code > 0 else 128 - code  # killed by signal N: 128 + N, as a shell
            forward(_signal.SIGTERM, None)
    return first_failure


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # already gone (`contextlib` is not worth importing for this)
        return
