"""`AWS_LAMBDA_LOG_FORMAT=JSON`: the formatter for `logging` records, as awslambdaric 4.2.2's.

One JSON object per record, keys in this order, None values dropped:
`timestamp` (UTC, seconds), `level`, `message` (a dict passed without args stays an object), `logger`,
and with an exception `stackTrace`, `errorType`, `errorMessage`; then `requestId`, `location`
(`path:function:line`, with an exception), `tenantId` (when the invoke has one), and every `extra`
attribute. Values JSON cannot encode are written as `str(value)`.

Loaded only in JSON format; it uses `rapidboot.runtime.marshal`'s encoder (json's C accelerator), so `json`
and `re` stay unloaded.
"""

from __future__ import annotations

import logging

from .marshal import json_encoder

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from typing import Any

DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# LogRecord attributes that are not user `extra` fields (awslambdaric's list, which predates
# Python 3.12's `taskName`: that one is dropped when None and kept otherwise, as there).
_RESERVED = frozenset(
    (
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "aws_request_id",
        "tenant_id",
        "_frame_type",
    )
)

# ensure_ascii=False, separators ", " / ": ", NaN allowed: json.JSONEncoder(ensure_ascii=False, default=str).
_encode = json_encoder(str)


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(datefmt=DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        # The level name is that of the level rounded down to a standard one (a custom level 25 is
        # "INFO"), as awslambdaric writes it. awslambdaric also rewrites `record.levelno` and
        # `levelname` in place, which other handlers then see; this formatter leaves the record alone.
        level = logging.getLevelName(min(50, max(0, record.levelno)) // 10 * 10)
        msg = record.msg
        exc_info = record.exc_info
        # `logger.exception()` outside an `except` gives (None, None, None): awslambdaric raises
        # AttributeError into the caller there; we log the record without exception fields.
        exc = exc_info if exc_info and exc_info[0] is not None else None
        result: dict[str, Any] = {
            "timestamp": self.formatTime(record, DATE_FORMAT),
            "level": level,
            "message": msg if isinstance(msg, dict) and not record.args else record.getMessage(),
            "logger": record.name,
            "stackTrace": _stack_trace(exc[2]) if exc else None,
            "errorType": exc[0].__name__ if exc else None,
            "errorMessage": str(exc[1]) if exc else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc else None,
        }
        tenant_id = getattr(record, "tenant_id", None)
        if tenant_id is not None:
            result["tenantId"] = tenant_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in result:
                result[key] = value
        return _encode({key: value for key, value in result.items() if value is not None}) + "\n"


def _stack_trace(tb: Any) -> list[str]:
    import traceback  # loaded by `logging` already

    return traceback.format_tb(tb)
