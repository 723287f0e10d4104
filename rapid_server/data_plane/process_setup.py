"""Setting up an environment's runtime process: its environment variables (reference section 4), its
command, the fork of a SnapStart template, joining its cgroup, who may connect to its Runtime API, and
whether it is still alive to be handed an event."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rapidboot.layers import PreparedFunction

from .. import errors, rendering
from ..config import OPT_DIR_VARIABLE, FunctionConfig, bootstrap_command
from .environment_base import EnvironmentBase
from .invocation import INIT_TIMEOUT_S, InvokeResult, _Outcome
from .output import OutputRelay
from .state import State

if TYPE_CHECKING:  # snapstart.py is imported only where a function has snap_start
    from .snapstart import Template


class EnvironmentProcess(EnvironmentBase):
    """The runtime's process, from its environment variables to its exit watch."""

    def _process_environment(self, runtime_api: str) -> dict[str, str]:
        return process_environment(
            self.config,
            self._package,
            self._region,
            runtime_api,
            self.initialization_type,
            self._limits.scratch,
            self.extra_environment(),
        )

    def _runtime_command(self) -> tuple[str, ...]:
        """What the environment runs: a provided runtime's `bootstrap` (the task root's, else the layers',
        as provided.al2023), the configured command, or our bootstrap."""
        if self.config.runtime == "provided":
            candidates = self._package.bootstrap_candidates()
            found = next((c for c in candidates if c.is_file()), candidates[0])
            return (str(found),)
        return self.config.command or bootstrap_command(self.config.handler)

    async def _start_forked(self, template: Template, environ: dict[str, str]) -> None:
        """SnapStart: the runtime is a fork of the initialised template (snapstart.py). It joins the
        environment's cgroups itself, before its after-restore hooks; the server then tells it to go on
        (`go`), once its pid is known here, so that its Runtime API admits it. Bounded by the init limit,
        so a template that hangs in its init is an init timeout, never a hang."""
        read_fd, write_fd = os.pipe()
        self._spawned_at = time.perf_counter()
        from .snapstart import TemplateGone, TemplateInitError

        failure: _Outcome | None = None
        try:
            async with asyncio.timeout(INIT_TIMEOUT_S):
                cgroups = await self._limits.claim_cgroups()
                process = await template.fork(environ, cgroups, write_fd)
        except TemplateInitError as exc:
            failure = _Outcome(InvokeResult(exc.body, "application/json", True), "error", exc.error_type)
        except TemplateGone as exc:
            message = "The SnapStart template exited before it could restore this environment: " + (
                rendering.exit_description(exc.returncode) if exc.returncode is not None else "killed"
            )
            body = rendering.function_error_body(errors.RUNTIME_EXIT_ERROR, message)
            failure = _Outcome(
                InvokeResult(body, "application/json", True), "error", errors.RUNTIME_EXIT_ERROR
            )
        except TimeoutError:
            failure = _Outcome(InvokeResult(b"", "application/json", True), "timeout", None)
        except OSError as exc:
            body = rendering.function_error_body(errors.RUNTIME_EXIT_ERROR, f"snap_start: {exc}")
            failure = _Outcome(
                InvokeResult(body, "application/json", True), "error", errors.RUNTIME_EXIT_ERROR
            )
        finally:
            os.close(write_fd)
        if failure is not None:
            os.close(read_fd)
            self._fail_start(failure)
            return
        self._process = process
        self._output = OutputRelay(read_fd, self.config.name, self._sink)
        self._limits.started(process.pid)
        self._watch_process()
        process.go()

    def _watch_process(self) -> None:
        assert self._process is not None
        if self._limits.host.proc:  # else a pending SIGKILL is not seen (host.py)
            with contextlib.suppress(OSError):
                self._status_fd = os.open(f"/proc/{self._process.pid}/status", os.O_RDONLY | os.O_CLOEXEC)
        self._schedule_sample()
        self._exit_watch = asyncio.get_running_loop().create_task(self._watch_exit(self._process))
        if self._seats[0].state is State.TERMINATED:
            self._abandon()  # stopped while it was being spawned

    async def _joined_cgroup(self) -> None:
        """Every invoke runs under the kernel's limit: the first waits until the runtime is in its cgroup
        (normally done before its first /next). A runtime gone by then could not join: its exit says why."""
        joining = self._joining
        if joining is None:
            return
        try:
            await joining
        except OSError as exc:
            if self._returncode is None and not (self._process and self._process.has_exited()):
                self._on_error(exc)
        finally:
            self._joining = None

    def _runtime_alive(self) -> bool:
        """Not exited, not a zombie, and no SIGKILL pending. The last matters: a runtime killed while
        parked on /next may still be in its recv, and if the event lands there before the signal takes
        effect the kernel hands it the data and then kills it, so it dies having "read" an event it never
        ran. All three show in /proc/PID/status, one pread of a file held open (`_read_status`); without
        /proc, the exit alone is seen (its pidfd)."""
        if self._returncode is not None:
            return False
        process = self._process
        if self._status_fd is None:
            return not (process is not None and process.has_exited())
        status = _read_status(self._status_fd)
        if status is None or _sigkill_pending(status):
            return False
        if _zombie(status):
            # A zombie leader may still have live threads: the pidfd says when the whole process is gone.
            return not (process is None or process.has_exited())
        return True

    def _admit(self, sock: socket.socket) -> bool:
        """A Runtime API connection is served only if it comes from the runtime or one of its descendants
        (peers.py); anyone else's is closed unread, and logged. Once per connection, never per request."""
        assert self._peers is not None
        if self._extensions is not None and any(
            self._peers.owned_by(sock, extension.process.pid) for extension in self._extensions.processes
        ):
            return True
        # Spawned from the spawner thread, a runtime can connect before `start` has its process object.
        pid = self._process.pid if self._process is not None else self._limits.spawned_pid()
        try:
            cgroup = self._limits.cgroup
            members = cgroup.pids if cgroup is not None else None
            if pid is not None and self._peers.owned_by(sock, pid, members):
                return True
            peer_pid = self._peers.foreign_owner(sock)
        except Exception as exc:  # a bug in the check must not lock out the runtime: admit, say so
            self._on_error(exc)
            return True
        self._sink.platform(rendering.foreign_peer_line(self.config.name, pid, peer_pid))
        return False

    def _fail_spawn(self, program: str, exc: OSError) -> None:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        message = f"fork/exec {program}: {reason}"
        body = rendering.function_error_body(errors.RUNTIME_INVALID_ENTRYPOINT, message)
        self._fail_start(
            _Outcome(InvokeResult(body, "application/json", True), "error", errors.RUNTIME_INVALID_ENTRYPOINT)
        )

    def _fail_start(self, outcome: _Outcome) -> None:
        """No runtime could be started: init failed, with `outcome`."""
        self._terminate_seats()
        self._close_listener()
        self._init_duration_ms = (time.perf_counter() - self._spawned_at) * 1000
        if not self._init_done.done():
            self._init_done.set_result(outcome)


def process_environment(
    config: FunctionConfig,
    package: PreparedFunction,
    region: str,
    runtime_api: str,
    initialization_type: str,
    scratch: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Reference section 4. The server's own environment is not inherited, as on Lambda, except what a
    local function needs to find programs and to reach AWS with the developer's credentials."""
    env = {
        key: value
        for key in (
            "PATH",
            "HOME",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
        )
        if (value := os.environ.get(key)) is not None
    }
    # The folder that holds rapid_server/ and runtime/: this file is <it>/rapid_server/data_plane/*.py.
    runtime_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    task_root, opt = package.task_root, package.opt_dir
    env.update(
        {
            "_HANDLER": config.handler,
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
            "TMPDIR": str(scratch),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": _log_stream_name(config.version),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": runtime_dir,
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            # Lambda's order: the system's, the task root's, then the layers' (/opt/lib) last.
            "LD_LIBRARY_PATH": ":".join(
                p
                for p in (
                    os.environ.get("LD_LIBRARY_PATH"),
                    str(task_root),
                    str(task_root / "lib"),
                    str(opt / "lib") if opt is not None else None,
                )
                if p
            ),
        }
    )
    path = env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
    if opt is not None:
        env["PATH"] = f"{path}:{opt / 'bin'}"  # as /opt/bin ends Lambda's PATH
        env[OPT_DIR_VARIABLE] = str(opt)  # where our bootstrap finds <opt>/python (on Lambda: /opt)
    else:
        env["PATH"] = path
    env.update(extra or {})  # what the server adds (a durable function's endpoint: rapid_server/durable/)
    env.update(config.environment)
    return env


def _log_stream_name(version: str) -> str:
    return datetime.now(UTC).strftime("%Y/%m/%d/[") + version + "]" + uuid.uuid4().hex


_SIGKILL_BIT = 1 << (signal.SIGKILL - 1)


def _read_status(status_fd: int) -> bytes | None:
    """/proc/PID/status, None once the process is reaped (the file held open reads no more, whoever has
    the pid since)."""
    try:
        return os.pread(status_fd, 4096, 0)
    except OSError:
        return None


def _zombie(status: bytes) -> bool:
    """The leader has exited (State: Z, or X as it is reaped)."""
    start = status.find(b"State:\t")
    return start >= 0 and status[start + 7 : start + 8] in (b"Z", b"X")


def _sigkill_pending(status: bytes) -> bool:
    """Whether SIGKILL is pending for the process: in the leader's own set (SigPnd) or the process's
    (ShdPnd). The shared set matters: as soon as the leader acts on the signal it takes SIGKILL out of its
    own set, and the process goes on dying (its memory released, its threads ended) for up to milliseconds
    before it is a zombie; ShdPnd keeps SIGKILL until the process is reaped. (/proc/PID/stat's pending
    field is the leader's own set only: a server that read it handed events to runtimes in that window.)"""
    for field in (b"SigPnd:", b"ShdPnd:"):
        start = status.find(field)
        if start >= 0:
            end = status.find(b"\n", start)
            try:  # not `contextlib.suppress`: three Python calls, twice per invoke
                if int(status[start + len(field) : end], 16) & _SIGKILL_BIT:
                    return True
            except ValueError:
                pass
    return False
