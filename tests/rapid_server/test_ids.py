"""Request ids and trace headers (rapid_server/ids.py): the shapes Lambda's have."""

from __future__ import annotations

import re
import uuid

from rapidboot.rapid_server import ids

TRACE = re.compile(r"Root=1-([0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0")


def test_request_ids_are_version_4_uuids_in_their_canonical_form() -> None:
    for _ in range(1000):
        text = ids.request_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_trace_headers_have_xrays_shape_and_their_time() -> None:
    match = TRACE.fullmatch(ids.trace_id(1_700_000_000.9))
    assert match is not None and int(match.group(1), 16) == 1_700_000_000
    assert TRACE.fullmatch(ids.trace_id()) is not None
