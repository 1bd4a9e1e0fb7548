"""Read splits: which share of a read each Spark task scrolls (Spark calls them input partitions).

Disjoint and together complete. This module only plans; the scroll itself is ``points/scroll.py``'s one
loop, and the task's read-ahead is ``read_ahead.py``. "Split" here is a Spark task's share of one read,
never a Dagster partition (the IO manager's ``partition_field``).

Qdrant 1.19+ has the ``slice`` condition: ``{"slice": {"total": N, "index": i}}`` keeps the points whose
id hashes to ``i`` modulo ``N``. N slices are disjoint and cover every point, are balanced whatever the
id scheme, need no planning request and compose with any filter, so each split is the read's filter
plus its slice.

Older servers have no slice, but scroll walks ids in one fixed order (integer ids ascending, then UUIDs
ascending) and ``offset`` starts a scroll at an id, inclusive, whether or not a point has it. The planner
walks the ids once, ids only, and keeps the id that starts each split; split i scrolls from its
start up to, not including, the start of split i+1. Half-open ranges over one total order are
disjoint and complete for integer and UUID ids alike, and a point written or deleted after planning
still falls in exactly one range.

``limit``, ``max_pages`` and ``offset`` mean "the first points in scroll order", which only one scroll
can answer, so they make a single split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from pyspark.sql.datasource import InputPartition

from dagster_qdrant.filters import all_of
from dagster_qdrant.points.scroll import ScrollClient, scroll_pages

SLICE_VERSION = (1, 19, 0)
"""The first Qdrant version with the ``slice`` filter condition."""
BOUNDARY_PAGE_SIZE = 10_000
"""Ids per request while planning id ranges: ids only, so a page is a few hundred KB at most."""

PointId = Any


class PlanningClient(ScrollClient, Protocol):
    """What planning id ranges needs from the HTTP client (``QdrantHttp``)."""

    def count(self, collection: str, filter: dict | None = None, exact: bool = True) -> int: ...


@dataclass(frozen=True)
class ReadSplit(InputPartition):
    """One Spark task's share of a read.

    ``slice`` is ``(index, total)`` on servers with the slice condition. Otherwise the task scrolls ids
    from ``start`` (inclusive; None: the first id) to ``end`` (exclusive; None: the last id).
    ``limit``/``max_pages`` bound a single-split read.
    """

    index: int
    slice: tuple[int, int] | None = None
    start: PointId = None
    end: PointId = None
    limit: int | None = None
    max_pages: int | None = None


def supports_slice(version: tuple[int, ...]) -> bool:
    return tuple(version[:3]) >= SLICE_VERSION


def single_split(offset: PointId, limit: int | None, max_pages: int | None) -> list[ReadSplit]:
    """The one split of a read bounded by scroll position (offset, limit, max_pages)."""
    return [ReadSplit(index=0, start=offset, limit=limit, max_pages=max_pages)]


def slice_splits(count: int) -> list[ReadSplit]:
    """``count`` hash slices of the id space."""
    return [ReadSplit(index=i, slice=(i, count)) for i in range(count)]


def id_range_splits(
    client: PlanningClient,
    collection: str,
    query_filter: dict | None,
    count: int,
) -> list[ReadSplit]:
    """Up to ``count`` half-open id ranges holding about the same number of matching points."""
    if count <= 1:
        return [ReadSplit(index=0)]
    total = client.count(collection, query_filter, True)
    per_split = max(1, math.ceil(total / count))
    starts: list[PointId] = [None]
    seen = 0
    id_pages = scroll_pages(
        client,
        collection,
        page_size=min(per_split, BOUNDARY_PAGE_SIZE),
        with_payload=False,
        with_vector=False,
        filter=query_filter,
    )
    for page in id_pages:
        seen += len(page.points)
        if page.next_offset is None:
            break
        if seen >= per_split * len(starts):
            starts.append(page.next_offset)
        if len(starts) == count:
            break
    ends = starts[1:] + [None]
    return [ReadSplit(index=i, start=start, end=end) for i, (start, end) in enumerate(zip(starts, ends))]


def partition_filter(partition: ReadSplit, query_filter: dict | None) -> dict | None:
    """The read's filter narrowed to one partition (slice partitions only; ranges bound the scroll)."""
    if partition.slice is None:
        return query_filter
    index, total = partition.slice
    return all_of(query_filter, {"slice": {"total": total, "index": index}})


__all__ = [
    "BOUNDARY_PAGE_SIZE",
    "SLICE_VERSION",
    "PlanningClient",
    "ReadSplit",
    "id_range_splits",
    "partition_filter",
    "single_split",
    "slice_splits",
    "supports_slice",
]
