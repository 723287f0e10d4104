"""Concurrent executions counted like a Lambda account (`rapidboot.rapid_server.data_plane.concurrency`):
reserved concurrency is a cap and a guarantee, unreserved functions share what is left, a refusal is a 429
that changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.rapid_server.data_plane.concurrency import ACCOUNT_LIMIT, RESERVED_LIMIT, ConcurrencyLimiter
from rapidboot.rapid_server.errors import ServiceError


def refusal(limiter: ConcurrencyLimiter, function: str) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        limiter.acquire(function)
    return caught.value


def test_acquire_and_release_count_per_function() -> None:
    limiter = ConcurrencyLimiter(10, {"a": None, "b": None})
    limiter.acquire("a")
    limiter.acquire("a")
    limiter.acquire("b")
    assert (limiter.in_use("a"), limiter.in_use("b")) == (2, 1)
    limiter.release("a")
    assert (limiter.in_use("a"), limiter.in_use("b")) == (1, 1)


def test_reserved_function_is_capped_with_the_reserved_reason() -> None:
    limiter = ConcurrencyLimiter(10, {"capped": 2, "free": None})
    limiter.acquire("capped")
    limiter.acquire("capped")
    error = refusal(limiter, "capped")
    assert (error.status, error.code, error.message, error.reason) == (
        429,
        "TooManyRequestsException",
        "Rate Exceeded.",
        RESERVED_LIMIT,
    )
    assert RESERVED_LIMIT == "ReservedFunctionConcurrentInvocationLimitExceeded"
    limiter.release("capped")
    limiter.acquire("capped")


def test_unreserved_functions_share_what_reservations_leave() -> None:
    limiter = ConcurrencyLimiter(5, {"reserved": 3, "a": None, "b": None})
    limiter.acquire("a")
    limiter.acquire("b")
    assert refusal(limiter, "a").reason == ACCOUNT_LIMIT == "ConcurrentInvocationLimitExceeded"
    assert refusal(limiter, "b").reason == ACCOUNT_LIMIT
    # The shared pool being full never touches the reservation.
    for _ in range(3):
        limiter.acquire("reserved")
    assert refusal(limiter, "reserved").reason == RESERVED_LIMIT
    limiter.release("b")
    limiter.acquire("a")
    assert limiter.in_use("a") == 2


def test_reserved_usage_does_not_eat_the_shared_pool() -> None:
    limiter = ConcurrencyLimiter(4, {"reserved": 2, "free": None})
    limiter.acquire("reserved")
    limiter.acquire("reserved")
    limiter.acquire("free")
    limiter.acquire("free")
    assert refusal(limiter, "free").reason == ACCOUNT_LIMIT


def test_reserved_zero_throttles_everything() -> None:
    limiter = ConcurrencyLimiter(10, {"off": 0, "on": None})
    for _ in range(3):
        assert refusal(limiter, "off").reason == RESERVED_LIMIT
    assert limiter.in_use("off") == 0
    limiter.acquire("on")


def test_release_without_acquire_raises() -> None:
    limiter = ConcurrencyLimiter(10, {"a": None, "r": 1})
    with pytest.raises(RuntimeError, match="release without acquire for a"):
        limiter.release("a")
    with pytest.raises(RuntimeError, match="release without acquire for r"):
        limiter.release("r")
    limiter.acquire("a")
    limiter.release("a")
    with pytest.raises(RuntimeError):
        limiter.release("a")


def test_a_refused_acquire_changes_nothing() -> None:
    limiter = ConcurrencyLimiter(3, {"r": 1, "a": None, "b": None})
    limiter.acquire("r")
    limiter.acquire("a")
    limiter.acquire("b")
    before = {name: limiter.in_use(name) for name in ("r", "a", "b")}
    for name in ("r", "a", "b"):
        refusal(limiter, name)
    assert {name: limiter.in_use(name) for name in ("r", "a", "b")} == before
    # Releasing one shared unit frees exactly one shared slot, despite the refusals in between.
    limiter.release("b")
    limiter.acquire("a")
    assert refusal(limiter, "b").reason == ACCOUNT_LIMIT


@given(
    st.lists(st.tuples(st.sampled_from(["acquire", "release"]), st.sampled_from(["r", "z", "a", "b"]))),
)
def test_limits_hold_for_any_sequence(operations: list[tuple[str, str]]) -> None:
    """Against a model: never more than a reservation, never more than the shared pool, refusals free."""
    reserved = {"r": 2, "z": 0}
    limiter = ConcurrencyLimiter(5, {"r": 2, "z": 0, "a": None, "b": None})
    model = {"r": 0, "z": 0, "a": 0, "b": 0}
    for operation, name in operations:
        if operation == "release":
            if model[name] == 0:
                with pytest.raises(RuntimeError):
                    limiter.release(name)
            else:
                limiter.release(name)
                model[name] -= 1
            continue
        shared_free = model["a"] + model["b"] < 5 - 2
        allowed = model[name] < reserved[name] if name in reserved else shared_free
        if allowed:
            limiter.acquire(name)
            model[name] += 1
        else:
            error = refusal(limiter, name)
            assert error.reason == (RESERVED_LIMIT if name in reserved else ACCOUNT_LIMIT)
        assert {n: limiter.in_use(n) for n in model} == model
