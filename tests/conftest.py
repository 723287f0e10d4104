"""Suite-wide safety net: no test may hang CI (pytest-timeout is not a dependency)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

TEST_CEILING_S = 120.0


@pytest.fixture(autouse=True)
def _per_test_ceiling() -> Iterator[None]:
    """SIGALRM raises in the main thread once a test has run for TEST_CEILING_S."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"test exceeded its {TEST_CEILING_S:.0f} s ceiling")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, TEST_CEILING_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
