"""Recursive loop detection: a chain of invokes that comes back to the same function is stopped.

Lambda follows an event through the X-Ray trace header (`X-Amzn-Trace-Id`): each function the chain has
invoked is one `Lineage` entry, `<hash>:<count>`, entries joined by `|`, for example
`Root=1-...;Parent=...;Sampled=0;Lineage=a87bd80c:0|68fd508a:5`. The hash names the function (ours: the
first 8 hex digits of the SHA-256 of its ARN; the service's is opaque), the count how many times the chain
has invoked it before. The AWS SDKs send the trace header of the invoke they run in (`_X_AMZN_TRACE_ID`,
which the runtime sets from `Lambda-Runtime-Trace-Id`) on every call they make from a function, so an invoke
through this server from inside a function carries its chain.

A function invoked a 17th time in one chain (count 16, "after exceeding 16 invocations") is not run: a
synchronous caller gets 400 RecursiveInvocationException, an Event invoke is accepted and dropped, and the
server logs a line either way. `PutFunctionRecursionConfig` with `RecursiveLoop = Allow` lets the chain go
on (the default is `Terminate`). Counted here: the Invoke API (sync, Event and streaming). The service
also counts SQS, SNS and S3, which this server does not host.
"""

from __future__ import annotations

import functools
import hashlib

from .. import errors
from ..errors import ServiceError

MAX_INVOKES = 16  # a function runs at most this many times in one chain
ALLOW = "Allow"
TERMINATE = "Terminate"  # the default
MODES = (ALLOW, TERMINATE)
_LINEAGE = "Lineage="


@functools.lru_cache(maxsize=4096)
def function_hash(arn: str) -> str:
    return hashlib.sha256(arn.encode()).hexdigest()[:8]


class RecursiveLoop(Exception):
    """The chain has invoked this function MAX_INVOKES times already."""

    def __init__(self, invokes: int):
        super().__init__(invokes)
        self.invokes = invokes


def traced(trace: str, arn: str) -> str:
    """The trace header the function runs with: `trace` with this invoke in its lineage. Raises
    RecursiveLoop when the chain has already run the function MAX_INVOKES times."""
    mine = function_hash(arn)
    if _LINEAGE not in trace:  # the usual case: the first invoke of a chain
        return f"{trace};{_LINEAGE}{mine}:0"
    fields = trace.split(";")
    for index, field in enumerate(fields):
        if not field.strip().startswith(_LINEAGE):
            continue
        entries = [entry for entry in field.strip()[len(_LINEAGE) :].split("|") if entry]
        for position, entry in enumerate(entries):
            name, _, count = entry.partition(":")
            if name == mine:
                invokes = int(count) + 1 if count.isdigit() else 1
                if invokes >= MAX_INVOKES:
                    raise RecursiveLoop(invokes)
                entries[position] = f"{mine}:{invokes}"
                break
        else:
            entries.append(f"{mine}:0")
        fields[index] = _LINEAGE + "|".join(entries)
        return ";".join(fields)
    return f"{trace};{_LINEAGE}{mine}:0"


def refusal(name: str) -> ServiceError:
    return ServiceError(
        400,
        errors.RECURSIVE_INVOCATION,
        f"Lambda detected that function {name} was invoked in a recursive loop (more than {MAX_INVOKES} "
        "invokes in one chain of requests) and stopped the invoke. PutFunctionRecursionConfig with "
        "RecursiveLoop=Allow lets such a chain run.",
    )


def stopped_line(name: str, trace: str, event: bool) -> str:
    root = trace.split(";", 1)[0]
    what = "Event invoke dropped" if event else "invoke refused (RecursiveInvocationException)"
    return (
        f"rapidboot: {name}: recursive loop detected ({root}): invoked more than {MAX_INVOKES} times in one "
        f"chain; {what}. PutFunctionRecursionConfig RecursiveLoop=Allow lets it run"
    )
