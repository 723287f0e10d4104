"""Where function output goes: unbuffered stdio, the log sink, and the stdlib `logging` wiring.

The sink is the one seam for log destinations and formats. `StdoutSink` writes to stdout;
`telemetry.TelemetryFdSink` writes frames to `_LAMBDA_TELEMETRY_LOG_FD` when Lambda passes one. Each
knows the format chosen by `AWS_LAMBDA_LOG_FORMAT` (Text or JSON) for the records it renders itself
(uncaught errors); `logging` records are rendered by `log_handler` before they reach the sink.

`logging` costs ~4-7.5 ms to import (traceback, threading, string, weakref), more than the rest of
the runtime together, and many handlers never use it. So it is not imported here: a one-shot
import hook configures it the moment anything (user code, a library, the runtime's own init-error
warning) first imports it, before that importer gets the module back. The JSON format and the
telemetry fd cost nothing unless they are enabled: their modules load only then.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import io
import os  # frozen, already loaded by the interpreter's start-up
import sys

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from .config import RuntimeConfig
    from .errors import ErrorReport

# awslambdaric's text error log: lines joined by "\r" so CloudWatch keeps one event, leading
# spaces of trace lines turned into NO-BREAK SPACE (U+00A0) so they survive.
ERROR_LINE_SEPARATOR = "\r"
ERROR_INDENT = "\u00a0"
# awslambdaric deletes the variable once the fd is open, so child processes and user code
# never see it (and cannot write frames of their own into Lambda's log stream).
TELEMETRY_FD_ENV = "_LAMBDA_TELEMETRY_LOG_FD"


class RequestState:
    """The invoke in progress, updated by the loop and read by the `logging` filter."""

    __slots__ = ("request_id", "tenant_id")

    def __init__(self) -> None:
        self.request_id = ""  # empty before the first invoke, as in awslambdaric's log lines
        self.tenant_id: str | None = None


class LogSink:
    """A log destination. `json_format`: render the runtime's own error records as JSON."""

    # True for a sink that keeps record boundaries itself (the telemetry fd): `logging` records
    # then carry a frame type saying their level.
    framed = False

    def __init__(self, json_format: bool = False) -> None:
        self.json_format = json_format

    def log(self, msg: str, frame_type: int | None = None) -> None:
        """Write `msg` as is (it carries its own newline, if any). `frame_type`: see `telemetry`."""
        raise NotImplementedError

    def log_error(self, lines: Sequence[str]) -> None:
        """Write one multi-line record as a single log event."""
        raise NotImplementedError

    def log_error_report(self, report: ErrorReport, request_id: str) -> None:
        """Log an uncaught error (init, invoke or hook) in the configured format.

        `request_id`: the invoke's, or "" for init and SnapStart hook errors (as awslambdaric).
        """
        if self.json_format:
            self.log_error([json_error_record(report, request_id)])
        else:
            self.log_error(error_log_lines(report))


class StdoutSink(LogSink):
    # `sys.stdout` is looked up per write, like awslambdaric, so a user's redirection applies.
    def log(self, msg: str, frame_type: int | None = None) -> None:
        sys.stdout.write(msg)

    def log_error(self, lines: Sequence[str]) -> None:
        sys.stdout.write(ERROR_LINE_SEPARATOR.join(lines) + "\n")


def open_log_sink(config: RuntimeConfig) -> LogSink:
    """The sink for this process: frames on the telemetry fd if Lambda passed one, else stdout."""
    json_format = config.log_format == "JSON"
    os.environ.pop(TELEMETRY_FD_ENV, None)
    fd = config.telemetry_log_fd
    if fd is not None:
        from .telemetry import TelemetryFdSink  # ~0.1 ms (importtime), only when Lambda passes the fd

        try:
            return TelemetryFdSink(fd, json_format)
        except OSError as exc:
            # awslambdaric dies here; losing the framing is better than losing the function.
            sys.stderr.write(f"rapidboot: cannot open {TELEMETRY_FD_ENV}={fd} ({exc}); logging to stdout\n")
    return StdoutSink(json_format)


def error_log_lines(report: ErrorReport) -> list[str]:
    """`[ERROR] Type: message`, then the trace, exactly as awslambdaric 4.2.2 prints it."""
    description = "[ERROR]"
    if report.error_type:
        description += " " + report.error_type
    if report.message:
        if report.error_type:
            description += ":"
        description += " " + report.message
    lines = [description, "Traceback (most recent call last):"]
    for element in report.stack_trace:
        if element == "":
            lines.append("")
            continue
        for line in element.splitlines():
            stripped = line.lstrip(" ")
            lines.append(ERROR_INDENT * (len(line) - len(stripped)) + stripped)
    return lines


def json_error_record(report: ErrorReport, request_id: str) -> str:
    """The JSON-format uncaught-error record, key for key as awslambdaric 4.2.2's `log_error`.

    Older awslambdaric releases wrote the level as `"log_level"` (their issues #202 and #220), so
    Lambda's log-level filter took these records for INFO and dropped them at WARN; PR #221 fixed it
    and 4.2.2 writes `"level"` (checked: tests/runtime/test_runtime_logs_process.py runs both). The
    timestamp has one-second resolution, like awslambdaric's.
    """
    import time  # built in

    from .marshal import to_json

    record = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "level": "ERROR",
        **report.body(request_id),
    }
    text = to_json(record)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in the message: escape rather than fail to log
        text = to_json(record, ascii_only=True)
    return text


def unbuffer_stdio() -> None:
    """Make every write to stdout/stderr reach the fd at once (awslambdaric flushes per write).

    Like `python -u`: a text layer writing straight through to the raw fd, no buffer in between.
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            continue
        try:
            fd = stream.fileno()
            stream.flush()
        except (AttributeError, OSError, ValueError):
            continue  # not a real file (e.g. captured): leave it alone
        raw = io.FileIO(fd, "w", closefd=False)
        setattr(
            sys,
            name,
            io.TextIOWrapper(raw, encoding=stream.encoding, errors=stream.errors, write_through=True),
        )


def install_logging(log_level: str | None, state: RequestState, sink: LogSink) -> None:
    """Route the root logger to `sink` now if `logging` is loaded, else on its first import."""

    def configure(logging_module: ModuleType | None = None) -> None:
        from . import log_handler  # imports `logging`: only ever reached once it is wanted

        log_handler.configure(log_level, state, sink)

    if "logging" in sys.modules:
        configure()
    else:
        sys.meta_path.insert(0, _ConfigureOnImport("logging", configure))


class _ConfigureOnImport:
    """A `sys.meta_path` finder that lets one module load normally, then calls `then(module)`.

    It wraps the real loader only; the module's `__loader__`/`__spec__.loader` are restored to the
    real one before the module runs, and the finder removes itself once it has fired.
    """

    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self._name = name
        self._then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != self._name:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenLoader(spec.loader, self)  # type: ignore[assignment]
        return spec

    def fired(self, module: ModuleType) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        self._then(module)


class _ThenLoader:
    def __init__(self, loader: object, finder: _ConfigureOnImport) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create: Callable[[ModuleSpec], ModuleType | None] | None = getattr(
            self._loader, "create_module", None
        )
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader  # type: ignore[assignment]
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader  # type: ignore[assignment]
        self._loader.exec_module(module)  # type: ignore[attr-defined]
        self._finder.fired(module)
