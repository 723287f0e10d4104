"""Harness for the end-to-end suite: real rapidboot servers, over real sockets.

Every server here is a `python -m rapidboot.rapid_server serve --port 0` subprocess. It is ready when it
writes
`listening on http://HOST:PORT` to stderr; we read that line instead of probing the port or sleeping
(style.md, uvicorn `tests/utils.py:run_server`). Its stdout (START/END/REPORT and the functions' own lines) is
collected by a reader thread so tests can wait, with a bound, for a line they expect.

On teardown the server gets SIGTERM and must exit 0 with every process it spawned gone. Runtime processes are
found by walking /proc for descendants of the server (no psutil) each time the suite invokes a function, and
each one is tracked by (pid, start time) so a recycled pid is never mistaken for a survivor.

The runtime under test is parametrised: "rapidboot" is our own bootstrap (the server's default, no command),
"awslambdaric" is AWS's runtime interface client run through the `command` option. The awslambdaric half is
the ground truth for what the contract looks like from inside the runtime.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

FUNCTIONS_DIR = Path(__file__).parent / "functions"
RUNTIMES = ("rapidboot", "awslambdaric")

READY_PATTERN = re.compile(r"listening on http://([0-9.]+):(\d+)")
START_PATTERN = re.compile(r"^START RequestId: (\S+) Version: \$LATEST$")
END_PATTERN = re.compile(r"^END RequestId: (\S+)$")
REPORT_PATTERN = re.compile(
    r"^REPORT RequestId: (?P<id>\S+)"
    r"\tDuration: (?P<duration>\d+\.\d{2}) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms"
    r"\tMemory Size: (?P<memory>\d+) MB"
    r"\tMax Memory Used: (?P<used>\d+) MB"
    r"(?:\tInit Duration: (?P<init>\d+\.\d{2}) ms)?"
    r"(?:\tStatus: (?P<status>\w+)(?:\tError Type: (?P<error_type>\S+))?)?$"
)

ACCOUNT_ARN_PREFIX = "arn:aws:lambda:us-east-1:123456789012:function:"
# What an invoker still waiting when the server's SIGTERM grace period (2 s) ends gets, with a 503.
SHUTTING_DOWN_PAST_GRACE = (
    "The server is shutting down: the invoke did not finish within the 2.0 s grace period"
)

# Bounds, not expectations: a healthy run is far below each; a broken server fails at the bound instead of
# hanging CI (pytest-timeout is not installed, see `_per_test_deadline`).
READY_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 10.0
LINE_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 30.0


# --- Function definitions shared by the suite -----------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One `[functions.NAME]` table: code is a directory under tests/e2e/functions (or a generated one)."""

    name: str
    code: str
    handler: str
    memory: int | None = None
    timeout: int | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


SYNTAX_ERROR_DIR = "init_syntax_error"  # generated at run time: a file that cannot parse would upset ruff

# One function per concern, so tests that depend on environment state (counters, Init Duration on the first
# invoke, "nothing was spawned") own their function and cannot be disturbed by other tests on a shared server.
SUITE_FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("echo", "basic", "handlers.echo", memory=128, timeout=10),
    FunctionSpec("echo-concurrent", "basic", "handlers.echo", timeout=10),
    FunctionSpec("echo-big", "basic", "handlers.echo", memory=512, timeout=30),
    FunctionSpec("shout", "basic", "handlers.shout", timeout=10),
    FunctionSpec("fail", "basic", "handlers.fail", timeout=10),
    FunctionSpec("counter", "basic", "handlers.state", timeout=10),
    FunctionSpec("timeout-reset", "basic", "handlers.state", timeout=1),
    FunctionSpec("timeout-queue", "basic", "handlers.state", timeout=1),
    FunctionSpec("crash-exit", "basic", "handlers.state", timeout=10),
    FunctionSpec("crash-sigkill", "basic", "handlers.state", timeout=10),
    FunctionSpec("context", "basic", "handlers.context_fields", memory=256, timeout=10),
    FunctionSpec(
        "environment",
        "basic",
        "handlers.environment",
        timeout=10,
        environment={"GREETING": "hello from toml", "EMPTY_OK": ""},
    ),
    FunctionSpec("bytes", "basic", "handlers.raw_bytes", timeout=10),
    FunctionSpec("large-response", "basic", "handlers.large_response", memory=512, timeout=30),
    FunctionSpec("memory", "basic", "handlers.allocate", memory=512, timeout=10),
    FunctionSpec("report", "basic", "handlers.echo", memory=128, timeout=10),
    FunctionSpec("untouched", "basic", "handlers.echo", timeout=10),
    FunctionSpec("import-error", "init_import_error", "app.handler", timeout=10),
    FunctionSpec("missing-module", "basic", "nosuchmodule.handler", timeout=10),
    FunctionSpec("syntax-error", SYNTAX_ERROR_DIR, "broken.handler", timeout=10),
    FunctionSpec("missing-handler", "basic", "handlers.does_not_exist", timeout=10),
    FunctionSpec("init-raises", "init_raises", "boom.handler", timeout=10),
)


def runtime_command(runtime: str, handler: str) -> list[str] | None:
    """The `command` for a runtime under test: None means the server's default (our bootstrap)."""
    if runtime == "rapidboot":
        return None
    if runtime == "awslambdaric":
        return [sys.executable, "-m", "awslambdaric", handler]
    raise ValueError(f"unknown runtime {runtime!r}")


def prepare_code(root: Path) -> Path:
    """Copies the function directories under `root/functions` and generates the syntax-error one."""
    target = root / "functions"
    shutil.copytree(FUNCTIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    broken = target / SYNTAX_ERROR_DIR
    broken.mkdir()
    (broken / "broken.py").write_text("def handler(event, context)\n    return event\n")
    return target


def _toml_value(value: Any) -> str:
    # JSON strings, numbers and arrays of strings are valid TOML; tables are written inline.
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def write_config(path: Path, functions: Sequence[FunctionSpec], runtime: str, code_prefix: str) -> Path:
    """Writes a rapidboot.toml; `code` paths are relative to the toml's directory (`code_prefix/<dir>`)."""
    lines: list[str] = []
    for spec in functions:
        lines.append(f"[functions.{json.dumps(spec.name)}]")
        lines.append(f"code = {_toml_value(f'{code_prefix}/{spec.code}')}")
        lines.append(f"handler = {_toml_value(spec.handler)}")
        if spec.memory is not None:
            lines.append(f"memory = {spec.memory}")
        if spec.timeout is not None:
            lines.append(f"timeout = {spec.timeout}")
        if spec.environment:
            lines.append(f"environment = {_toml_value(spec.environment)}")
        command = runtime_command(runtime, spec.handler)
        if command is not None:
            lines.append(f"command = {_toml_value(command)}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


# --- Processes, via /proc -------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    pgid: int
    # The scheduler state (R, S, Z...) at the read: not part of which process it is, so `==` ignores it.
    state: str = field(compare=False)
    start_ticks: int  # field 22 of /proc/PID/stat: with the pid, identifies one process even if pids recycle
    cmdline: str
    function_name: str | None  # AWS_LAMBDA_FUNCTION_NAME from its environment, if readable


def _read_stat(pid: int) -> tuple[int, int, str, int] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2]), fields[0], int(fields[19])


def _describe(pid: int, stat: tuple[int, int, str, int]) -> ProcessInfo:
    ppid, pgid, state, start_ticks = stat
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = ""
    function_name = None
    with contextlib.suppress(OSError):
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if entry.startswith(b"AWS_LAMBDA_FUNCTION_NAME="):
                function_name = entry.split(b"=", 1)[1].decode(errors="replace")
    return ProcessInfo(pid, ppid, pgid, state, start_ticks, cmdline.strip(), function_name)


def _all_stats() -> dict[int, tuple[int, int, str, int]]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    return stats


def process_info(pid: int) -> ProcessInfo | None:
    """The live process of that pid now, wherever it is in the tree; None if there is none."""
    stat = _read_stat(pid)
    return None if stat is None else _describe(pid, stat)


def is_supervisor(process: ProcessInfo) -> bool:
    """The server's one supervisor process (rapid_server/data_plane/containment.py), not an environment's."""
    return " supervise " in process.cmdline


def processes_in_group(pgid: int) -> list[ProcessInfo]:
    return [_describe(pid, stat) for pid, stat in _all_stats().items() if stat[1] == pgid]


def descendants(root_pid: int) -> list[ProcessInfo]:
    """All processes below `root_pid` in the parent tree (cmdline and environment read only for those)."""
    children: dict[int, list[int]] = {}
    stats = _all_stats()
    for pid, stat in stats.items():
        children.setdefault(stat[0], []).append(pid)
    found: list[ProcessInfo] = []
    stack = [root_pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(_describe(child, stats[child]))
            stack.append(child)
    return found


def is_alive(process: ProcessInfo) -> bool:
    """True if that very process (same pid and start time) still exists and is not a zombie."""
    stat = _read_stat(process.pid)
    return stat is not None and stat[3] == process.start_ticks and stat[2] not in ("Z", "X")


def wait_process_gone(process: ProcessInfo, timeout: float) -> bool:
    """Waits (bounded, event-driven through a pidfd) for a process that is not our child to exit."""
    try:
        fd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return True
    try:
        if not is_alive(process):  # checked after opening: the pidfd now pins this very process
            return True
        select.select([fd], [], [], timeout)
        return not is_alive(process)
    finally:
        os.close(fd)


# --- Platform log lines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    request_id: str
    duration_ms: float
    billed_ms: int
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None
    status: str | None
    error_type: str | None

    @classmethod
    def parse(cls, line: str) -> Report:
        match = REPORT_PATTERN.match(line)
        assert match, f"REPORT line not in Lambda's format: {line!r}"
        return cls(
            request_id=match["id"],
            duration_ms=float(match["duration"]),
            billed_ms=int(match["billed"]),
            memory_size_mb=int(match["memory"]),
            max_memory_used_mb=int(match["used"]),
            init_duration_ms=float(match["init"]) if match["init"] else None,
            status=match["status"],
            error_type=match["error_type"],
        )


class LineCollector:
    """Reads a pipe line by line on a daemon thread; waiters block on a condition, never on a sleep."""

    def __init__(self, stream: Any, name: str) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._closed = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            with self._condition:
                self._lines.append(raw.decode(errors="replace").rstrip("\r\n"))
                self._condition.notify_all()
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._condition:
            return list(self._lines)

    @property
    def closed(self) -> bool:
        with self._condition:
            return self._closed

    def wait_for(
        self, predicate: Callable[[str], bool], timeout: float = LINE_TIMEOUT_S, after: int = 0
    ) -> str | None:
        """The first line from index `after` matching `predicate`, waiting up to `timeout`; else None."""
        deadline = time.monotonic() + timeout
        seen = after
        with self._condition:
            while True:
                for line in self._lines[seen:]:
                    if predicate(line):
                        return line
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._condition.wait(remaining)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


# --- The server under test ------------------------------------------------------------------------


class ServerStartError(AssertionError):
    pass


class RapidServer:
    """One `python -m rapidboot.rapid_server serve` subprocess in its own session (its own process group)."""

    def __init__(self, args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.args = [sys.executable, "-m", "rapidboot.rapid_server", "serve", "--port", "0", *args]
        self.cwd = cwd
        self.env = dict(env if env is not None else server_environment())
        self.process: subprocess.Popen[bytes] | None = None
        self.host = ""
        self.port = 0
        self.seen_processes: dict[tuple[int, int], ProcessInfo] = {}
        self._client: httpx.Client | None = None

    # -- lifecycle

    def start(self) -> RapidServer:
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.stdout = LineCollector(self.process.stdout, "rapidboot-stdout")
        self.stderr = LineCollector(self.process.stderr, "rapidboot-stderr")
        ready = self.stderr.wait_for(lambda line: READY_PATTERN.search(line) is not None, READY_TIMEOUT_S)
        if ready is None:
            self._kill_group()
            raise ServerStartError(
                f"server did not report readiness within {READY_TIMEOUT_S} s "
                f"(exit code {self.process.poll()}).\ncommand: {self.args}\n{self.output_tail()}"
            )
        match = READY_PATTERN.search(ready)
        assert match is not None
        self.host, self.port = match[1], int(match[2])
        assert self.port != 0, f"server reported port 0 instead of the bound ephemeral port: {ready!r}"
        self._client = httpx.Client(base_url=self.endpoint, timeout=HTTP_TIMEOUT_S)
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Sends `sig`, waits (bounded) for exit, and returns the exit code. Kills the group if it hangs."""
        assert self.process is not None
        self.record_processes()
        if self._client is not None:
            self._client.close()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._kill_group()
            raise AssertionError(
                f"server ignored {sig.name} for {EXIT_TIMEOUT_S} s; killed.\n{self.output_tail()}"
            ) from None
        self.stdout.join(EXIT_TIMEOUT_S)
        self.stderr.join(EXIT_TIMEOUT_S)
        return code

    def assert_no_survivors(self, grace: float = EXIT_TIMEOUT_S) -> None:
        """Every runtime process we ever saw is gone, and nothing is left in the server's process group."""
        assert self.process is not None
        survivors = [p for p in self.seen_processes.values() if not wait_process_gone(p, grace)]
        in_group = [p for p in processes_in_group(self.process.pid) if p.state not in ("Z", "X")]
        leftovers = [*survivors, *in_group]
        if leftovers:
            for process in leftovers:  # do not leak them into the rest of the run
                with contextlib.suppress(ProcessLookupError):
                    if is_alive(process):
                        os.kill(process.pid, signal.SIGKILL)
            raise AssertionError(
                "processes outlived the server:\n"
                + "\n".join(f"  pid {p.pid} ({p.function_name}): {p.cmdline}" for p in leftovers)
            )

    def shutdown_and_check(self, sig: signal.Signals = signal.SIGTERM) -> None:
        code = self.stop(sig)
        assert code == 0, f"server exited with {code} after {sig.name}, expected 0.\n{self.output_tail()}"
        self.assert_no_survivors()

    def _kill_group(self) -> None:
        """Last-resort cleanup of the group we created (its id is the server's pid)."""
        assert self.process is not None
        self.record_processes()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for process in self.seen_processes.values():
            with contextlib.suppress(ProcessLookupError):
                if is_alive(process):
                    os.kill(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(EXIT_TIMEOUT_S)

    def output_tail(self, lines: int = 40) -> str:
        stdout = "\n".join(self.stdout.lines[-lines:]) if hasattr(self, "stdout") else ""
        stderr = "\n".join(self.stderr.lines[-lines:]) if hasattr(self, "stderr") else ""
        return f"--- server stdout (tail) ---\n{stdout}\n--- server stderr (tail) ---\n{stderr}"

    # -- processes

    def record_processes(self) -> list[ProcessInfo]:
        """Snapshots the server's live descendants and remembers them for the orphan check."""
        assert self.process is not None
        current = [p for p in descendants(self.process.pid) if p.state not in ("Z", "X")]
        for process in current:
            self.seen_processes.setdefault((process.pid, process.start_ticks), process)
        return current

    def runtime_processes(self, function_name: str) -> list[ProcessInfo]:
        return [p for p in self.record_processes() if p.function_name == function_name]

    def seen_process(self, pid: int) -> ProcessInfo:
        for process in self.seen_processes.values():
            if process.pid == pid:
                return process
        raise AssertionError(f"pid {pid} was never seen among the server's descendants")

    # -- HTTP

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @staticmethod
    def invoke_path(name: str) -> str:
        return f"/2015-03-31/functions/{name}/invocations"

    def invoke(
        self,
        name: str,
        payload: Any = None,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Invokes over plain HTTP like any client; `payload` is JSON-encoded unless `body` is given."""
        assert self._client is not None
        content = body if body is not None else json.dumps(payload if payload is not None else {}).encode()
        response = self._client.post(self.invoke_path(name), content=content, params=params, headers=headers)
        self.record_processes()
        return response

    # -- platform lines

    def wait_for_line(
        self, predicate: Callable[[str], bool], timeout: float = LINE_TIMEOUT_S, after: int = 0
    ) -> str:
        """The first stdout line from index `after` matching `predicate` (bounded wait); fails otherwise."""
        line = self.stdout.wait_for(predicate, timeout, after)
        assert line is not None, f"no matching stdout line within {timeout} s.\n{self.output_tail()}"
        return line

    def report(self, request_id: str) -> Report:
        """The REPORT line of one invoke (waits, bounded: the line may trail the HTTP response)."""
        line = self.wait_for_line(lambda line: line.startswith(f"REPORT RequestId: {request_id}\t"))
        return Report.parse(line)

    def lines_mentioning(self, text: str) -> list[str]:
        return [line for line in self.stdout.lines if text in line]


def server_environment() -> dict[str, str]:
    """The test process's environment minus anything that could steer the server or runtimes elsewhere."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "LAMBDA_", "_LAMBDA", "_HANDLER", "PYTHON"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@contextlib.contextmanager
def running_server(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, check_shutdown: bool = True
) -> Iterator[RapidServer]:
    """Starts a server and always stops it; `check_shutdown`: assert a clean SIGTERM exit, no survivors."""
    with supervised(RapidServer(args, cwd, env), check_shutdown) as server:
        yield server


@contextlib.contextmanager
def supervised(server: RapidServer, check_shutdown: bool = True) -> Iterator[RapidServer]:
    """Starts a server (whatever its command) and always stops it: killed with its group if the test
    failed; else, with `check_shutdown`, a clean SIGTERM exit and no survivors asserted."""
    server.start()
    try:
        yield server
    except BaseException:
        with contextlib.suppress(AssertionError):
            server.stop()
        server._kill_group()
        raise
    if check_shutdown:
        server.shutdown_and_check()
    else:
        with contextlib.suppress(AssertionError):
            server.stop()
        server._kill_group()


def function_arn(name: str) -> str:
    return ACCOUNT_ARN_PREFIX + name


def request_id_of(response: httpx.Response) -> str:
    request_id = response.headers.get("x-amzn-RequestId")
    assert request_id, f"no x-amzn-RequestId header in {dict(response.headers)}"
    return request_id


# --- Scaling, limits, faults and soak (test_e2e_scaling.py, test_e2e_faults.py, test_e2e_soak.py) -------

FAKE_RUNTIMES_DIR = Path(__file__).parent / "fake_runtimes"
MISBEHAVING_RUNTIME = FAKE_RUNTIMES_DIR / "misbehaving.py"


def write_tables(path: Path, tables: Mapping[str, Mapping[str, Any]]) -> Path:
    """Writes a rapidboot.toml from `{name: {key: value}}` as given (any key the server knows, e.g.
    `reserved_concurrency`); values are written as JSON, which TOML reads the same."""
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[functions.{json.dumps(name)}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def misbehaving_command(mode: str = "serve") -> list[str]:
    """The `command` of a function run by tests/e2e/fake_runtimes/misbehaving.py."""
    return [sys.executable, str(MISBEHAVING_RUNTIME), mode]


def open_fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def resident_kb(pid: int) -> int:
    """VmRSS of a process, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Polls a condition of the outside world (process counts, files) that gives no event to wait on;
    bounded, and returns as soon as it holds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def invoke_all_at_once(
    server: RapidServer, name: str, events: Sequence[Any], timeout: float = HTTP_TIMEOUT_S
) -> list[httpx.Response]:
    """Sends one invoke per event, each on its own connection, released together by a barrier; returns
    the responses in the order of `events`."""
    url = server.endpoint + server.invoke_path(name)
    barrier = threading.Barrier(len(events))
    results: list[httpx.Response | BaseException | None] = [None] * len(events)

    def call(index: int) -> None:
        try:
            with httpx.Client(timeout=timeout) as client:
                request = client.build_request("POST", url, content=json.dumps(events[index]).encode())
                barrier.wait(timeout)
                results[index] = client.send(request)
        except BaseException as error:  # reported below, in the test's thread
            results[index] = error

    threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 5)
    server.record_processes()
    responses: list[httpx.Response] = []
    for index, result in enumerate(results):
        if not isinstance(result, httpx.Response):
            raise AssertionError(f"invoke {index} of {len(events)} got no response: {result!r}")
        responses.append(result)
    return responses


class HeldInvoke:
    """An invoke of a misbehaving-runtime function parked in its `hold` action until `release()`: the test,
    not a clock, decides when it ends. Started by `hold_invoke`, which returns once the runtime holds it."""

    def __init__(self, server: RapidServer, name: str, token: str, fifo: Path) -> None:
        self.server = server
        self.token = token
        self.fifo = fifo
        os.mkfifo(fifo)
        self._result: list[httpx.Response | BaseException] = []
        url = server.endpoint + server.invoke_path(name)
        content = json.dumps({"action": "hold", "token": token, "fifo": str(fifo)}).encode()
        self._thread = threading.Thread(target=self._call, args=(url, content), daemon=True)
        self._thread.start()
        pattern = re.compile(rf"^\[{re.escape(name)} (\S+)\] holding {re.escape(token)} pid (\d+)$")
        line = server.wait_for_line(lambda line: pattern.match(line) is not None)
        match = pattern.match(line)
        assert match is not None
        self.request_id, self.pid = match[1], int(match[2])

    def _call(self, url: str, content: bytes) -> None:
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
                self._result.append(client.post(url, content=content))
        except BaseException as error:
            self._result.append(error)

    def release(self, word: str = "released") -> httpx.Response:
        def open_writer() -> bool:
            try:  # non-blocking: fails (ENXIO) until the runtime has opened its end
                self._fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                return False
            return True

        assert wait_until(open_writer, LINE_TIMEOUT_S), (
            f"the runtime holding {self.token} never opened its FIFO"
        )
        try:
            os.write(self._fd, word.encode() + b"\n")
        finally:
            os.close(self._fd)
        return self.result()

    def result(self) -> httpx.Response:
        self._thread.join(HTTP_TIMEOUT_S)
        assert self._result, f"the held invoke {self.token} got no response within {HTTP_TIMEOUT_S} s"
        outcome = self._result[0]
        if not isinstance(outcome, httpx.Response):
            raise AssertionError(f"the held invoke {self.token} failed: {outcome!r}")
        return outcome


def hold_invoke(server: RapidServer, name: str, token: str, directory: Path) -> HeldInvoke:
    return HeldInvoke(server, name, token, directory / f"{token}.fifo")


# --- Shared by the scaling, limits, faults, soak and client tests -------------------------------------------

SCALING_CODE = str(FUNCTIONS_DIR / "scaling")


def chaos(**keys: Any) -> dict[str, Any]:
    """A function table for the event-steered handler of functions/scaling/chaos.py."""
    return {"code": SCALING_CODE, "handler": "chaos.handler", "timeout": 10, **keys}


def ok_body(response: httpx.Response, token: str) -> dict[str, Any]:
    """A successful invoke whose answer is the caller's own: its token and its request id."""
    assert response.status_code == 200, response.text
    assert "X-Amz-Function-Error" not in response.headers, response.text
    body: dict[str, Any] = response.json()
    assert body["token"] == token, body
    assert body["request_id"] == request_id_of(response), body
    return body


def lambda_client(endpoint: str) -> Any:
    """boto3's Lambda client on a local server: dummy credentials, no retries (a test sees every answer)."""
    import boto3  # imported here: only the tests that use boto3 pay for it
    import botocore.config

    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=HTTP_TIMEOUT_S),
    )


# --- The AWS CLI ------------------------------------------------------------------------------------

AWS_CLI = Path(sys.executable).with_name("aws")


def aws_cli_environment(home: Path) -> dict[str, str]:
    """Dummy credentials, one attempt, and no ~/.aws of the developer's (HOME is the test's own)."""
    env = server_environment()
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
        HOME=str(home),
    )
    return env


def aws_lambda(endpoint: str, home: Path, *args: str) -> Any:
    """`aws lambda ARGS... --endpoint-url ENDPOINT`, its JSON output parsed (None when it printed none)."""
    done = subprocess.run(
        [sys.executable, str(AWS_CLI), "lambda", *args, "--endpoint-url", endpoint, "--output", "json"],
        env=aws_cli_environment(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def aws_lambda_invoke(endpoint: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`aws lambda invoke --endpoint-url ENDPOINT ARGS...` (its outfile is among ARGS)."""
    return subprocess.run(
        [sys.executable, str(AWS_CLI), "lambda", "invoke", "--endpoint-url", endpoint, *args],
        env=aws_cli_environment(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
