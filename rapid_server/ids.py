"""Request ids and X-Ray trace headers of invokes: the Invoke API's, the HTTP triggers', the SQS pollers' and
the schedules'.

Lambda's request ids are random (version 4) UUIDs; a trace header the caller did not send gets a random
root and parent. Each is one os.urandom call (getrandom(2)). A pool of random bytes refilled per 4 KB was
measured against it (ab_cpu, both orders): x1.00 of the server's CPU, so it was not kept.
"""

from __future__ import annotations

import os
import time

_UUID_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}  # RFC 9562 variant


def request_id() -> str:
    """A random (version 4) UUID, formatted from one hex string (str(uuid.uuid4()) costs ~2 us more)."""
    digits = os.urandom(16).hex()
    variant = _UUID_VARIANT[digits[16]]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def trace_id(at: float | None = None) -> str:
    """An X-Ray trace header as Lambda passes it when the caller sent none (not sampled); its root's time
    is `at` (epoch seconds), else now."""
    digits = os.urandom(20).hex()
    epoch = int(time.time() if at is None else at)
    return f"Root=1-{epoch:08x}-{digits[:24]};Parent={digits[24:]};Sampled=0"
