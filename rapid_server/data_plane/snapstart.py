"""SnapStart locally: one template process per function version, and the environments forked from it.

Lambda initialises a SnapStart function once, snapshots the microVM, and restores each new environment from
the snapshot. Here the snapshot is a live process: the template (runtime/template.py) runs Init once and
waits; each new environment asks it to fork, and the child, sharing the template's pages copy-on-write,
becomes that environment's runtime. A boto3 handler's 130 ms of imports are paid once, by the template.

Why a fork of a template rather than a snapshot to disk (CRIU): a fork needs no privileges and no tools, is
the cheapest way Linux has to make a second initialised process, and shares memory between the environments
(copy-on-write) where restored snapshots would each hold their own copy.

Why the template, not the server, is the child's parent: only the template can fork itself. So the server
learns each child's pid from the template (which writes it back on the control socket) and watches its exit
through a pidfd; the exit status, which only a parent can collect, comes from the template, which reaps its
children and reports each one's status. A template that dies leaves its children running (they are in
sessions of their own, and reparented); their exit then shows through the pidfd alone, as a kill.

A template that crashed, or whose init failed, is replaced by the next environment that needs one: each
waiting environment gets an init error, never a hang. A new version of the function (code, layers or
settings changed) gets a new template; the old one ends once nothing asks it to fork any more.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import select
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import orjson

from .containment import pid_alive
from .logs import LogSink
from .output import OutputRelay
from .process import RuntimeProcess, unwatch_exit, watch_exit

TEMPLATE_FD_ENV = "_RAPIDBOOT_TEMPLATE_FD"  # runtime/template.py's
# The template's own Runtime API address: never used (it takes no event); our bootstrap needs one to run.
_NO_RUNTIME_API = "127.0.0.1:9"
_MAX_MESSAGE = 1 << 20
_STATUS_WAIT_S = 1.0  # a child seen gone (pidfd) while its template lives: how long its status may take
_ORPHAN_POLL_S = 0.05  # without pidfds, how often a template's orphan is looked for once it is gone


class TemplateInitError(Exception):
    """The template's init failed: what each environment that wanted a fork reports as its init error."""

    def __init__(self, body: bytes, error_type: str | None):
        super().__init__(error_type)
        self.body = body
        self.error_type = error_type


class TemplateGone(Exception):
    """The template exited (crashed, or was stopped) before it could fork the environment's runtime."""

    def __init__(self, returncode: int | None):
        super().__init__(returncode)
        self.returncode = returncode


class Template:
    """One function version's template process and its control socket."""

    def __init__(
        self,
        argv: Sequence[str],
        cwd: Path,
        environ: Mapping[str, str],
        name: str,
        sink: LogSink,
        pidfd: bool = True,
    ):
        self._argv = tuple(argv)
        self._cwd = cwd
        self._environ = dict(environ)
        self._name = name
        self._sink = sink
        self._pidfd = pidfd
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[float] = loop.create_future()  # its init's duration, ms
        self._ready.add_done_callback(_retrieved)
        self._pending: deque[asyncio.Future[int]] = deque()  # fork requests, answered in order
        self._children: dict[int, ForkedProcess] = {}
        self._statuses: dict[int, int] = {}  # children reaped before their ForkedProcess was made
        self._control: socket.socket | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._output: OutputRelay | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopped = False
        # Told when a template that had finished its init exits unasked (a crash): the function starts
        # another at once, so the next environment does not wait for a whole init.
        self.on_crash: Callable[[Template], None] | None = None
        self.returncode: int | None = None
        self.started_at = 0.0
        self.init_ms: float | None = None

    @property
    def finished(self) -> bool:
        """It will fork no more: exited, failed its init, or stopped."""
        return self._control is None and self._popen is not None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        """Spawn the template; its init proceeds in the background (`ready`)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        read_fd, write_fd = os.pipe()
        environ = {
            **self._environ,
            TEMPLATE_FD_ENV: str(theirs.fileno()),
            "AWS_LAMBDA_RUNTIME_API": _NO_RUNTIME_API,
        }
        self.started_at = time.perf_counter()
        try:
            self._popen = subprocess.Popen(
                list(self._argv),
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=self._cwd,
                env=environ,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        except OSError:
            os.close(read_fd)
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(write_fd)
        self._output = OutputRelay(read_fd, self._name, self._sink)
        self._watch = asyncio.get_running_loop().create_task(
            self._watch_exit(RuntimeProcess(self._popen, pidfd=self._pidfd))
        )
        ours.setblocking(False)
        self._control = ours
        loop = asyncio.get_running_loop()
        loop.add_reader(ours.fileno(), self._on_readable)

    async def ready(self) -> float:
        """Once its init is done: its Init Duration (ms). Raises TemplateInitError or TemplateGone."""
        return await asyncio.shield(self._ready)

    async def fork(self, environ: Mapping[str, str], cgroups: Sequence[str], output_fd: int) -> ForkedProcess:
        """A new environment's runtime, forked from the initialised template. `output_fd` (kept open here)
        becomes its stdout and stderr; it joins each of `cgroups` (cgroup.procs paths) before its
        after-restore hooks run. It waits for `ForkedProcess.go` before it uses its Runtime API."""
        await self.ready()
        control = self._control
        if control is None:
            raise TemplateGone(self.returncode)
        go_read, go_write = os.pipe()
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        message = orjson.dumps({"environ": dict(environ), "cgroups": list(cgroups)})
        fds = array.array("i", (output_fd, go_read))
        try:
            control.sendmsg([message], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        except OSError:
            os.close(go_write)
            raise TemplateGone(self.returncode) from None
        finally:
            os.close(go_read)
        self._pending.append(answer)
        try:
            pid = await answer
        except BaseException:
            os.close(go_write)
            raise
        process = ForkedProcess(pid, go_write, self._pidfd, self._template_alive)
        self._children[pid] = process
        if pid in self._statuses:
            process.exited(self._statuses.pop(pid))
        return process

    def stop(self) -> None:
        """No more forks: the template is told (its control socket closes) and killed. Its children live
        on."""
        self._stopped = True
        self._close_control()
        if self._popen is not None and self.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGKILL)
        self._settle_exit()

    # The control socket ------------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        control = self._control
        if control is None:
            return
        while True:
            try:
                data = control.recv(_MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._template_exited()
                return
            self._on_message(data)

    def _on_message(self, data: bytes) -> None:
        head, _, body = data.partition(b"\n")
        message = orjson.loads(head)
        if "exited" in message:
            pid, status = message["exited"], message["status"]
            child = self._children.pop(pid, None)
            if child is not None:
                child.exited(status)
            else:
                self._statuses[pid] = status
        elif "forked" in message:
            if self._pending:
                self._pending.popleft().set_result(message["forked"])
        elif "fork_error" in message:
            if self._pending:
                self._pending.popleft().set_exception(OSError(message["fork_error"]))
        elif "ready" in message:
            self.init_ms = (time.perf_counter() - self.started_at) * 1000
            self._sink.platform(
                f"SnapStart template of {self._name} initialised in {self.init_ms:.2f} ms (pid {self.pid})"
            )
            if not self._ready.done():
                self._ready.set_result(self.init_ms)
        elif "init_error" in message:
            self.init_ms = (time.perf_counter() - self.started_at) * 1000
            if self._output is not None:
                self._output.drain()
            if not self._ready.done():
                self._ready.set_exception(TemplateInitError(body or b"{}", message["init_error"]))
            self._close_control()

    def _template_exited(self) -> None:
        """Its end of the control socket closed: it exited (or is exiting), and forks no more."""
        self._close_control()
        self._settle_exit()

    async def _watch_exit(self, process: RuntimeProcess) -> None:
        self.returncode = await process.wait()
        self._close_control()
        if self._output is not None:
            self._output.drain(final=True)
        self._settle_exit()
        crashed = not self._stopped and self.init_ms is not None and self._ready.done()
        if crashed and self._ready.exception() is None and self.on_crash is not None:
            self.on_crash(self)

    def _settle_exit(self) -> None:
        gone = TemplateGone(self.returncode)
        if not self._ready.done():
            self._ready.set_exception(gone)
        while self._pending:
            self._pending.popleft().set_exception(gone)
        for child in list(self._children.values()):
            child.orphaned()

    def _close_control(self) -> None:
        control = self._control
        if control is None:
            return
        self._control = None
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(control.fileno())
        control.close()

    def _template_alive(self) -> bool:
        return self._control is not None


class ForkedProcess:
    """An environment's runtime forked from a template: `RuntimeProcess`'s interface for a process the server
    did not spawn (its exit status comes from the template, see the module)."""

    __slots__ = ("_dead", "_exited", "_go_fd", "_pidfd", "_status_timer", "_template_alive", "pid")

    def __init__(self, pid: int, go_fd: int, pidfd: bool, template_alive: Callable[[], bool]):
        self.pid = pid
        self._go_fd: int | None = go_fd
        self._template_alive = template_alive
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._status_timer: asyncio.TimerHandle | None = None
        self._dead = False  # its pidfd said so; its status may still be on its way
        self._pidfd = watch_exit(pid, self._gone) if pidfd else None
        if pidfd and self._pidfd is None:
            self._gone()  # it exited (and was reaped) before we looked: its status is on its way

    def go(self) -> None:
        """The server knows this runtime now (its Runtime API admits it): it may go on."""
        if self._go_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._go_fd, b"g")
            os.close(self._go_fd)
            self._go_fd = None

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    def has_exited(self) -> bool:
        if self._exited.done() or self._dead:
            return True
        if self._pidfd is None:
            return False
        return bool(select.select([self._pidfd], [], [], 0)[0])

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def exited(self, status: int) -> None:
        """Its template reaped it."""
        self._settle(status)

    def orphaned(self) -> None:
        """Its template is gone: no status will come. Once it exits it is reported as killed (seen through
        its pidfd, or, on a host without pidfds, by polling for its pid)."""
        if self.has_exited():
            self._settle(-signal.SIGKILL)
        elif self._pidfd is None:
            self._poll_orphan()

    def _poll_orphan(self) -> None:
        if self._exited.done():
            return
        if not pid_alive(self.pid):
            self._settle(-signal.SIGKILL)
        else:
            self._status_timer = asyncio.get_running_loop().call_later(_ORPHAN_POLL_S, self._poll_orphan)

    def _gone(self) -> None:
        """Its pidfd says it exited: the status follows from the template, unless there is none."""
        self._dead = True
        self._close_pidfd()
        if not self._template_alive():
            self._settle(-signal.SIGKILL)
        elif self._status_timer is None and not self._exited.done():
            loop = asyncio.get_running_loop()
            self._status_timer = loop.call_later(_STATUS_WAIT_S, self._settle, -signal.SIGKILL)

    def _settle(self, status: int) -> None:
        self._close_pidfd()
        if self._status_timer is not None:
            self._status_timer.cancel()
            self._status_timer = None
        if self._go_fd is not None:
            os.close(self._go_fd)
            self._go_fd = None
        if not self._exited.done():
            self._exited.set_result(status)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            unwatch_exit(self._pidfd)
            self._pidfd = None


def _retrieved(future: asyncio.Future[float]) -> None:
    if not future.cancelled():
        future.exception()
