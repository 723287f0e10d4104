"""Every error type string the runtime reports, and the one place error bodies are built.

The bodies match awslambdaric 4.2.2: `{"errorMessage","errorType","requestId","stackTrace"}` for the
Runtime API, plus the X-Ray cause `{"working_directory","exceptions","paths"}` sent as a header.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` (~5 ms) out of the process

import sys

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Any

# `traceback` (~2-3 ms with linecache/tokenize/textwrap) is imported only when an exception is
# formatted: never on the path to a successful first response.

MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
UNMARSHAL_ERROR = "Runtime.UnmarshalError"
MARSHAL_ERROR = "Runtime.MarshalError"
LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"
# X-Ray exception type awslambdaric uses for the runtime's own (non-user-code) failures.
XRAY_VALIDATION_ERROR = "LambdaValidationError"

# Logged (as a WARNING) before an init error, word for word as awslambdaric's
# `lambda_unhandled_exception_warning_message`, trailing "\r" included.
UNHANDLED_EXCEPTION_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. "
    "The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. "
    "To determine if the runtime has been updated, check the runtime version in the INIT_START log "
    "entry. "
    "If this error correlates with a change in the runtime version, you may be able to mitigate "
    "this error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)

# awslambdaric drops the X-Ray cause header from 1 MiB on.
MAX_XRAY_CAUSE_BYTES = 1024 * 1024

# Frames from these files are the runtime's, not the user's: stripped from the head of a trace.
_PACKAGE_DIR = __file__.rpartition("/")[0]
_OWN_PREFIXES = (_PACKAGE_DIR + "/", _PACKAGE_DIR.rpartition("/")[0] + "/bootstrap", "<frozen importlib")

Frame = tuple[str, int, str, str]  # filename, line number, function name, source line


class FaultError(Exception):
    """A failure detected by the runtime itself (not raised by user code), with its error type."""

    def __init__(self, error_type: str, message: str, stack_trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace


class ErrorReport:
    """What gets logged and posted for one failure (init or invoke)."""

    __slots__ = ("error_type", "frames", "message", "stack_trace", "xray_type")

    def __init__(
        self,
        error_type: str,
        message: str,
        stack_trace: list[str],
        frames: list[Frame],
        xray_type: str,
    ) -> None:
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace
        self.frames = frames
        self.xray_type = xray_type

    @classmethod
    def from_fault(cls, fault: FaultError) -> ErrorReport:
        return cls(fault.error_type, fault.message, fault.stack_trace or [], [], XRAY_VALIDATION_ERROR)

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorReport:
        """An exception raised by user code: class name, str(exc), user frames only."""
        import traceback

        frames = _user_frames(exc.__traceback__)
        error_type = type(exc).__name__
        return cls(error_type, str(exc), traceback.format_list(frames), frames, error_type)

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "errorMessage": self.message,
            "errorType": self.error_type,
            "requestId": request_id,
            "stackTrace": self.stack_trace,
        }

    def xray_cause(self, working_directory: str) -> dict[str, Any]:
        return {
            "working_directory": working_directory,
            "exceptions": [
                {
                    "message": self.message,
                    "type": self.xray_type,
                    "stack": [
                        {"label": name, "path": path, "line": line} for path, line, name, _ in self.frames
                    ],
                }
            ],
            "paths": list(dict.fromkeys(path for path, _, _, _ in self.frames)),
        }


def _user_frames(tb: TracebackType | None) -> list[Frame]:
    import traceback

    frames = [(f.filename, f.lineno or 0, f.name, f.line or "") for f in traceback.extract_tb(tb)]
    # Like awslambdaric, strip only the *leading* runtime frames (the call into the handler, the
    # import machinery); if nothing but runtime frames remain, keep them all: that is our bug.
    for index, frame in enumerate(frames):
        if not frame[0].startswith(_OWN_PREFIXES):
            return frames[index:]
    return frames


def syntax_error_trace(exc: SyntaxError) -> list[str]:
    # awslambdaric's exact (odd) shape: capital "Line", source text as-is (often with its "\n").
    return [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']


def current_exception_report() -> ErrorReport:
    exc = sys.exc_info()[1]
    assert exc is not None
    if isinstance(exc, FaultError):
        return ErrorReport.from_fault(exc)
    return ErrorReport.from_exception(exc)
