"""An invoke as the data plane takes it and answers it: the request (`Invocation`), what its invoker gets
(`InvokeResult`), how it ended for the REPORT line (`_Outcome`), the two ways it is sent elsewhere
(`NotDispatched`, `RuntimeBusy`), and the limits an environment's runtime works under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..invoke.response_stream import ResponseStream

INIT_TIMEOUT_S = 10.0
# RAPID's limit on a buffered response: 6 MiB + 100 bytes (reference section 1).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100


@dataclass(slots=True)
class Invocation:
    request_id: str
    payload: bytes
    invoked_function_arn: str
    trace_id: str
    content_type: str = "application/json"
    client_context: str | None = None  # decoded JSON; sync invokes only, as on Lambda
    log_tail: bool = False  # the caller wants the invoke's log (`X-Amz-Log-Type: Tail`)
    stream: ResponseStream | None = None  # InvokeWithResponseStream: where a streamed response goes
    tenant_id: str | None = None  # `X-Amz-Tenant-Id`, for a function with tenant isolation only
    # Fields the REPORT line ends with ("\tKey: value"...): a durable execution's invocation names its
    # execution and replay (rapid_server/durable/). None for every other invoke.
    report_fields: str | None = None


@dataclass(slots=True)
class InvokeResult:
    body: bytes
    content_type: str
    function_error: bool  # the invoker sees `X-Amz-Function-Error: Unhandled`


@dataclass(slots=True)
class _Outcome:
    """How an invoke (or the init before it) ended, for the invoker and for the REPORT line."""

    result: InvokeResult
    status: str | None = None  # REPORT `Status:` (timeout | error), None for success and handled errors
    error_type: str | None = None  # REPORT `Error Type:`


class NotDispatched(Exception):
    """The invoke never reached this environment's runtime (it died first): run it elsewhere."""


class RuntimeBusy(Exception):
    """The runtime is still at work after its last answer (no /next within NEXT_GRACE_S): run the invoke
    elsewhere. Nothing was handed over; the environment lives on. `waited_s` counts in the invoke's
    Duration wherever it runs."""

    def __init__(self, waited_s: float):
        super().__init__(waited_s)
        self.waited_s = waited_s
