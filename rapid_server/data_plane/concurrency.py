"""Concurrent executions, counted like a Lambda account (reference section 7).

Every in-flight invoke holds one unit. A function with `reserved_concurrency = R` may hold at most R, and
those R are set aside: the other functions share what is left of `--max-concurrency`. Past a limit an
invoke is refused at once (429 `TooManyRequestsException` with the service's `Reason`), never queued.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import errors
from ..errors import ServiceError

# The `Reason` values of reference section 2 that a local server can produce.
RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"


def throttled(reason: str) -> ServiceError:
    return ServiceError(429, errors.TOO_MANY_REQUESTS, "Rate Exceeded.", reason)


class ConcurrencyLimiter:
    def __init__(self, max_concurrency: int, reserved: Mapping[str, int | None]):
        self._max_concurrency = max_concurrency
        self._reserved = {name: limit for name, limit in reserved.items() if limit is not None}
        self._unreserved_capacity = max_concurrency - sum(self._reserved.values())
        self._unreserved_in_use = 0
        self._in_use: dict[str, int] = dict.fromkeys(reserved, 0)
        self.total_in_use = 0  # every function's together
        self.throttles: dict[str, int] = {}  # invokes refused, by function: Lambda's `Throttles` metric

    def reconfigure(self, reserved: Mapping[str, int | None]) -> None:
        """A reload's new set of functions and reservations (already checked against the account by
        ServerConfig). Units in flight stay counted where they were taken: a function that gains a
        reservation moves its units out of the shared pool, one that loses it (or is removed while an invoke
        still runs) moves them in, so every later `release` returns a unit to the pool it now counts in."""
        new_reserved = {name: limit for name, limit in reserved.items() if limit is not None}
        for name, in_use in self._in_use.items():
            if (name in self._reserved) != (name in new_reserved):
                self._unreserved_in_use += -in_use if name in new_reserved else in_use
        self._reserved = new_reserved
        self._unreserved_capacity = self._max_concurrency - sum(new_reserved.values())
        # Removed functions keep their count until their last invoke is released; idle ones are forgotten.
        self._in_use = {name: count for name, count in self._in_use.items() if count or name in reserved}
        for name in reserved:
            self._in_use.setdefault(name, 0)

    def in_use(self, function: str) -> int:
        return self._in_use.get(function, 0)

    def acquire(self, function: str) -> None:
        """Take one unit for `function`, or raise a 429 `ServiceError` and change nothing."""
        limit = self._reserved.get(function)
        if limit is not None:
            if self._in_use[function] >= limit:
                self.throttles[function] = self.throttles.get(function, 0) + 1
                raise throttled(RESERVED_LIMIT)
        elif self._unreserved_in_use >= self._unreserved_capacity:
            self.throttles[function] = self.throttles.get(function, 0) + 1
            raise throttled(ACCOUNT_LIMIT)
        else:
            self._unreserved_in_use += 1
        self._in_use[function] += 1
        self.total_in_use += 1

    def release(self, function: str) -> None:
        if self._in_use[function] <= 0:
            raise RuntimeError(f"release without acquire for {function}")
        self._in_use[function] -= 1
        self.total_in_use -= 1
        if function not in self._reserved:
            self._unreserved_in_use -= 1
