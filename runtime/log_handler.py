"""The root-logger handler that sends `logging` records to the log sink, in the configured format.

Imported only once `logging` itself is (see `logs.install_logging`), so it may import it freely.
"""

from __future__ import annotations

import logging
import time

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from .logs import LogSink, RequestState

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n"
TEXT_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"


class LambdaLoggerHandler(logging.Handler):
    """Formats a record and hands it to the sink (with its frame type, on the telemetry fd).

    `frame_types`: the frame type per level (see `telemetry`), or None to send every record untyped.
    awslambdaric types records by level only in JSON format or when `AWS_LAMBDA_LOG_LEVEL` is set;
    otherwise each goes out as a text NOTSET frame.
    """

    def __init__(self, sink: LogSink, frame_types: tuple[int, ...] | None = None) -> None:
        super().__init__()
        # awslambdaric's attribute name: code looking for "the Lambda handler" checks for it.
        self.log_sink = sink
        self._frame_types = frame_types

    def emit(self, record: logging.LogRecord) -> None:
        # Unlike awslambdaric's, a record that cannot be formatted or written never raises into the
        # caller: `logging`'s own convention (handleError prints "--- Logging error ---" on stderr).
        try:
            msg = self.format(record)
            if self._frame_types is None:
                self.log_sink.log(msg)
            else:
                # awslambdaric's `_format_log_level`: clamp to 0..50, then one type per ten levels.
                self.log_sink.log(msg, self._frame_types[min(50, max(0, record.levelno)) // 10])
        except Exception:
            self.handleError(record)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (and tenant id), as awslambdaric does."""

    def __init__(self, state: RequestState) -> None:
        super().__init__()
        self._state = state

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self._state.request_id
        record.tenant_id = self._state.tenant_id
        return True


def configure(log_level: str | None, state: RequestState, sink: LogSink) -> None:
    # awslambdaric switches every formatter to UTC, not only its own.
    logging.Formatter.converter = time.gmtime
    frame_types: tuple[int, ...] | None = None
    if sink.json_format:
        from .json_log import JsonFormatter  # ~0.1 ms (importtime), JSON format only; loads nothing else

        formatter: logging.Formatter = JsonFormatter()
        if sink.framed:
            from .telemetry import JSON_FRAME_TYPES

            frame_types = JSON_FRAME_TYPES
    else:
        formatter = logging.Formatter(TEXT_FORMAT, TEXT_DATE_FORMAT)
        if sink.framed and log_level is not None:
            from .telemetry import TEXT_FRAME_TYPES

            frame_types = TEXT_FRAME_TYPES
    handler = LambdaLoggerHandler(sink, frame_types)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter(state))
    root = logging.getLogger()
    if log_level is not None:
        root.setLevel(log_level)
    root.addHandler(handler)
