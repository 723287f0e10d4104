"""SnapStart locally: the template process, and each environment's runtime forked from it.

The server starts one template per function version (`_RAPIDBOOT_TEMPLATE_FD` names its control socket).
The template runs Init once, as Lambda does before it takes a snapshot: it imports the handler, then runs
the before-snapshot hooks (newest first). It is never given an event. Then it waits on the control socket,
and for each new environment the server asks for, it forks: the child is that environment's runtime. Where
Lambda restores a Firecracker snapshot, the child shares the template's pages copy-on-write.

In the child, before any user code runs again: its own session; the environment's cgroups joined (its memory
limit holds from here on); its stdout/stderr on the environment's pipe; the environment's variables (Runtime
API address, TMPDIR, log stream, `AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`); `random` reseeded and
`tempfile`'s cached directory forgotten. No socket is inherited: the Runtime API connection is made by the
child. Then the after-restore hooks run (first registered first) within `RESTORE_TIMEOUT_S`, and the child
polls its own environment's Runtime API.

Threads do not survive a fork: a handler module that leaves Python threads running after init is refused
(Runtime.BeforeSnapshotError, naming them); the server reports that to every invoke. Threads a native
library starts for itself (OpenBLAS's pool) are that library's business: the fork-aware ones restart them in
the child (pthread_atfork).

Messages on the control socket (SOCK_SEQPACKET, one JSON object each): from the server, a fork request
`{"environ": {...}, "cgroups": [cgroup.procs paths]}` with two descriptors (the environment's output pipe
and a pipe on which the server says "go" once it knows the child's pid); from the template `{"ready": ms}`
or `{"init_error": type}` (a newline, then the error body) once, then `{"forked": pid}` (or
`{"fork_error": text}`) per request, in order, and `{"exited": pid, "status": code}` as its children
end (it reaps them, so the server, which is not their parent, learns their exit status from it).

Only the template pays for this module's imports (json, socket, signal): never a normal cold start.
"""

from __future__ import annotations

import array
import gc
import json
import os
import signal
import socket
import sys
import time

from .errors import FaultError, current_exception_report
from .handler import load_handler
from .marshal import to_json_bytes
from .snapstart import (
    AFTER_RESTORE_ERROR,
    BEFORE_SNAPSHOT_ERROR,
    EXIT_AFTER_RESTORE_ERROR,
    after_restore,
    run_before_snapshot,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Any

    from .client import RuntimeClient
    from .config import RuntimeConfig
    from .logs import LogSink

TEMPLATE_FD_ENV = "_RAPIDBOOT_TEMPLATE_FD"
# Lambda's limit on the after-restore hooks. `RAPIDBOOT_TEST_RESTORE_TIMEOUT_S` in the function's environment
# shortens it: for tests of the limit only, which must not take 10 s.
RESTORE_TIMEOUT_S = 10.0
RESTORE_TIMEOUT_ENV = "RAPIDBOOT_TEST_RESTORE_TIMEOUT_S"
EXIT_INIT_ERROR = 1
_MAX_MESSAGE = 1 << 20


class SnapStartTimeoutException(Exception):
    """The after-restore hooks ran past the restore limit: the invoker sees this error type; the restore
    error is posted as Runtime.AfterRestoreError (what RAPID keeps of a type must start `Runtime.`)."""


class Restored:
    """What a forked child needs to carry on as its environment's runtime."""

    __slots__ = ("go_fd", "restore_timeout_s")

    def __init__(self, go_fd: int, restore_timeout_s: float) -> None:
        self.go_fd = go_fd
        self.restore_timeout_s = restore_timeout_s


def serve_template(control_fd: int, config: RuntimeConfig, sink: LogSink) -> int | Restored:
    """Init, then fork on request. Returns an exit code in the template, `Restored` in each forked child."""
    control = socket.socket(fileno=control_fd)
    started = time.perf_counter()
    try:
        load_handler(config.handler)
    except Exception:
        return _init_failed(control, sink, None)
    try:
        run_before_snapshot()
        _refuse_threads()
    except Exception:
        return _init_failed(control, sink, BEFORE_SNAPSHOT_ERROR)
    # Everything init made goes to the collector's permanent generation: a collection in a child would
    # otherwise write to every object's header and copy every page of the template's heap (copy-on-write).
    gc.freeze()
    _flush()
    _send(control, {"ready": (time.perf_counter() - started) * 1000})
    signal.signal(signal.SIGCHLD, lambda signum, frame: _reap(control))
    while True:
        message, fds = _receive(control)
        if not message:
            return 0  # the server closed the channel: it no longer wants this template
        request = json.loads(message)
        _flush()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            _send(control, {"fork_error": f"fork: {exc.strerror or exc}"})
            continue
        if pid == 0:
            return _become_environment(control, request, fds)
        for fd in fds:
            os.close(fd)
        _send(control, {"forked": pid})


def restore(restored: Restored, client: RuntimeClient, sink: LogSink) -> int | None:
    """In the child: the after-restore hooks within the limit (else SnapStartTimeoutException), then the
    server's "go" (it knows this process's pid by then, so the Runtime API admits it). An exit code if the
    restore failed (reported to `/restore/error`), None to go on to the invoke loop."""
    previous = signal.signal(signal.SIGALRM, _time_up)
    signal.setitimer(signal.ITIMER_REAL, restored.restore_timeout_s)
    failure: int | None = None
    try:
        _wait_go(restored.go_fd)
        failure = after_restore(client, sink)
    except SnapStartTimeoutException:  # past the limit outside a hook (waiting for "go")
        failure = after_restore_timeout(client, sink)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return failure


def after_restore_timeout(client: RuntimeClient, sink: LogSink) -> int:
    try:
        raise SnapStartTimeoutException("the restore did not complete within its limit")
    except SnapStartTimeoutException:
        report = current_exception_report()
    sink.log_error_report(report, "")
    client.post_restore_error(to_json_bytes(report.body("")), AFTER_RESTORE_ERROR)
    return EXIT_AFTER_RESTORE_ERROR


# The template ----------------------------------------------------------------------------------------------


def _refuse_threads() -> None:
    if "threading" not in sys.modules:
        return  # nothing started a Python thread
    import threading

    others = [thread.name for thread in threading.enumerate() if thread is not threading.main_thread()]
    if others:
        raise FaultError(
            BEFORE_SNAPSHOT_ERROR,
            f"snap_start: the function's init left {len(others)} thread(s) running ({', '.join(others)}); "
            "threads do not survive the fork that makes each environment from the snapshot. Start them "
            "in the handler or in an after_restore hook (snapshot_restore_py.register_after_restore), "
            "and stop them in a before_snapshot hook.",
        )


def _init_failed(control: socket.socket, sink: LogSink, error_type: str | None) -> int:
    report = current_exception_report()
    sink.log_error_report(report, "")
    _flush()
    _send(control, {"init_error": error_type or report.error_type}, to_json_bytes(report.body("")))
    return EXIT_INIT_ERROR


def _reap(control: socket.socket) -> None:
    """SIGCHLD: report every child that ended (the server cannot wait for a process that is not its own)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        try:
            _send(control, {"exited": pid, "status": os.waitstatus_to_exitcode(status)})
        except OSError:
            return  # the server is gone


def _send(control: socket.socket, message: dict[str, Any], body: bytes = b"") -> None:
    data = json.dumps(message).encode()
    control.sendall(data + (b"\n" + body if body else b""))


def _receive(control: socket.socket) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    data, ancillary, _, _ = control.recvmsg(_MAX_MESSAGE, socket.CMSG_SPACE(2 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()


# The child -------------------------------------------------------------------------------------------------


def _become_environment(control: socket.socket, request: dict[str, Any], fds: list[int]) -> Restored:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # its own children are its own business
    control.close()
    os.setsid()  # its own process group, as a spawned runtime's: the environment's kill takes it whole
    pid = str(os.getpid()).encode()
    for procs in request["cgroups"]:  # before any user code runs: the memory limit holds from here
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, pid)
        finally:
            os.close(fd)
    output_fd, go_fd = fds
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(output_fd)
    os.environ.clear()
    os.environ.update(request["environ"])
    # Python reseeds `random` in a forked child itself (os.register_at_fork); saying so again costs
    # nothing and does not depend on it. os.urandom and uuid4 read the kernel: unique already.
    if "random" in sys.modules:
        sys.modules["random"].seed()
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # type: ignore[attr-defined]  # it caches the template's TMPDIR: this environment has its own
    try:
        timeout_s = float(os.environ.get(RESTORE_TIMEOUT_ENV, RESTORE_TIMEOUT_S))
    except ValueError:
        timeout_s = RESTORE_TIMEOUT_S
    return Restored(go_fd, min(max(timeout_s, 0.001), RESTORE_TIMEOUT_S))


def _wait_go(go_fd: int) -> None:
    try:
        os.read(go_fd, 1)
    finally:
        os.close(go_fd)


def _time_up(signum: int, frame: FrameType | None) -> None:
    raise SnapStartTimeoutException(
        "The after_restore hooks did not complete within the SnapStart restore limit "
        f"({RESTORE_TIMEOUT_S:g} s on Lambda)"
    )
