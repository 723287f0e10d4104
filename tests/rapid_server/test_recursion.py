"""The trace header's Lineage as recursion.py reads and extends it (reference: AWS's X-Ray header docs,
`Lineage=a87bd80c:1|68fd508a:5`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.rapid_server.invoke import recursion

ARN = "arn:aws:lambda:us-east-1:123456789012:function:looper"
MINE = recursion.function_hash(ARN)
ROOT = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"


def test_a_new_chain_starts_at_zero_and_each_invoke_counts_one_more() -> None:
    trace = recursion.traced(ROOT, ARN)
    assert trace == f"{ROOT};Lineage={MINE}:0"
    for count in range(1, recursion.MAX_INVOKES):
        trace = recursion.traced(trace, ARN)
        assert trace.endswith(f"Lineage={MINE}:{count}")
    with pytest.raises(recursion.RecursiveLoop):  # the 17th invoke of the chain
        recursion.traced(trace, ARN)


def test_other_functions_entries_are_kept_in_order() -> None:
    trace = f"{ROOT};Lineage=a87bd80c:1|{MINE}:3|68fd508a:5"
    assert recursion.traced(trace, ARN) == f"{ROOT};Lineage=a87bd80c:1|{MINE}:4|68fd508a:5"
    other = f"{ROOT};Lineage=a87bd80c:15"
    assert recursion.traced(other, ARN) == f"{other}|{MINE}:0"  # another function's count is not ours


@given(st.text())
def test_any_header_is_extended_or_refused(trace: str) -> None:
    try:
        extended = recursion.traced(trace, ARN)
    except recursion.RecursiveLoop:
        return
    assert f"{MINE}:" in extended
