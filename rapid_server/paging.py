"""Paging of the Lambda API's List operations, shared by the control plane and the event source mappings.

`MaxItems` is checked against the bound botocore's model gives each operation, and a page is the items
after the `Marker` the page before it ended on, in the order of their key, with the `NextMarker` of the
next page (none on the last).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from . import errors
from .errors import ServiceError

Item = TypeVar("Item")

PAGE_SIZE = 50  # the service's page when MaxItems is not given (ListFunctions, ListVersionsByFunction, ...)


def page_size(max_items: str | None, most: int = 10000, default: int = PAGE_SIZE) -> int:
    """`MaxItems` as given, a whole number 1-`most`; `default` (the service's page) without one."""
    if max_items is None:
        return default
    if not max_items.isdigit() or not 1 <= int(max_items) <= most:
        raise ServiceError(
            400, errors.INVALID_PARAMETER_VALUE, f"MaxItems: {max_items!r} must be a whole number 1-{most}"
        )
    return int(max_items)


def page_after(
    items: Sequence[Item], key: Callable[[Item], str], marker: str | None, limit: int
) -> tuple[list[Item], str | None]:
    """The items whose key comes after `marker` (all of them without one), at most `limit`, in key order;
    and the marker of the next page, None when this page is the last."""
    ordered = sorted(items, key=key)
    if marker:
        ordered = [item for item in ordered if key(item) > marker]
    page = ordered[:limit]
    return page, key(page[-1]) if len(ordered) > limit else None
