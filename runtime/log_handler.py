"""The root-logger handler that sends `logging` records to the log sink (awslambdaric's text format).

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
    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        # awslambdaric's attribute name: code looking for "the Lambda handler" checks for it.
        self.log_sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.log_sink.log(self.format(record))
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
    handler = LambdaLoggerHandler(sink)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT, TEXT_DATE_FORMAT))
    handler.addFilter(RequestIdFilter(state))
    root = logging.getLogger()
    if log_level is not None:
        root.setLevel(log_level)
    root.addHandler(handler)
