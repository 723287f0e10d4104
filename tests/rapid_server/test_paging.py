"""Paging of the List operations (`rapidboot.rapid_server.paging`): pages in key order that, followed by their
NextMarkers, give every item once; MaxItems refused outside its model's bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.rapid_server import errors
from rapidboot.rapid_server.errors import ServiceError
from rapidboot.rapid_server.paging import PAGE_SIZE, page_after, page_size


@given(keys=st.sets(st.text(min_size=1, max_size=6)), limit=st.integers(1, 5))
def test_following_the_markers_gives_every_item_once_in_order(keys: set[str], limit: int) -> None:
    seen: list[str] = []
    marker: str | None = None
    for _ in range(len(keys) + 1):
        page, marker = page_after(list(keys), str, marker, limit)
        assert len(page) <= limit
        seen += page
        if marker is None:
            break
        assert marker == page[-1]
    assert marker is None
    assert seen == sorted(keys)


def test_a_full_last_page_has_no_next_marker() -> None:
    assert page_after(["b", "a"], str, None, 2) == (["a", "b"], None)
    assert page_after(["b", "a", "c"], str, None, 2) == (["a", "b"], "b")
    assert page_after(["b", "a", "c"], str, "b", 2) == (["c"], None)


def test_max_items_within_the_bound_or_the_default_page() -> None:
    assert page_size(None) == PAGE_SIZE
    assert page_size(None, 50, 100) == 100
    assert page_size("7") == 7
    assert page_size("10000") == 10000


@pytest.mark.parametrize(
    ("max_items", "most"), [("0", 50), ("51", 50), ("-1", 10000), ("ten", 10000), ("", 50)]
)
def test_max_items_outside_the_bound_is_named(max_items: str, most: int) -> None:
    with pytest.raises(ServiceError) as caught:
        page_size(max_items, most)
    assert (caught.value.status, caught.value.code) == (400, errors.INVALID_PARAMETER_VALUE)
    assert caught.value.message == f"MaxItems: {max_items!r} must be a whole number 1-{most}"
