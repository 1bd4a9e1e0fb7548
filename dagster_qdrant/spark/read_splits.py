"""Read partitions: disjoint, together complete, each scrolled by its own Spark task.

Qdrant 1.19+ has the ``slice`` condition: ``{"slice": {"total": N, "index": i}}`` keeps the points whose
id hashes to ``i`` modulo ``N``. N slices are disjoint and cover every point, are balanced whatever the
id scheme, need no planning request and compose with any filter, so each partition is the read's filter
plus its slice.

Older servers have no slice, but scroll walks ids in one fixed order (integer ids ascending, then UUIDs
ascending) and ``offset`` starts a scroll at an id, inclusive, whether or not a point has it. The planner
walks the ids once, ids only, and keeps the id that starts each partition; partition i scrolls from its
start up to, not including, the start of partition i+1. Half-open ranges over one total order are
disjoint and complete for integer and UUID ids alike, and a point written or deleted after planning
still falls in exactly one range.

``limit``, ``max_pages`` and ``offset`` mean "the first points in scroll order", which only one scroll
can answer, so they make a single partition.
"""

from __future__ import annotations

import math
import queue
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pyspark.sql.datasource import InputPartition

from dagster_qdrant.filters import all_of

SLICE_VERSION = (1, 19, 0)
"""The first Qdrant version with the ``slice`` filter condition."""
BOUNDARY_PAGE_SIZE = 10_000
"""Ids per request while planning id ranges: ids only, so a page is a few hundred KB at most."""

PointId = Any
Item = TypeVar("Item")


class ScrollClient(Protocol):
    """What planning and reading need from the HTTP client (``QdrantHttp``)."""

    def scroll(self, collection: str, body: dict) -> tuple[list[dict], Any]: ...

    def count(self, collection: str, filter: dict | None = None, exact: bool = True) -> int: ...


@dataclass(frozen=True)
class ScrollPartition(InputPartition):
    """One Spark task's share of a read.

    ``slice`` is ``(index, total)`` on servers with the slice condition. Otherwise the task scrolls ids
    from ``start`` (inclusive; None: the first id) to ``end`` (exclusive; None: the last id).
    ``limit``/``max_pages`` bound a single-partition read.
    """

    index: int
    slice: tuple[int, int] | None = None
    start: PointId = None
    end: PointId = None
    limit: int | None = None
    max_pages: int | None = None


def supports_slice(version: tuple[int, ...]) -> bool:
    return tuple(version[:3]) >= SLICE_VERSION


def id_order(point_id: PointId) -> tuple[int, int]:
    """Qdrant's scroll order as a sort key: every integer id before every UUID, each ascending."""
    if isinstance(point_id, int):
        return (0, point_id)
    return (1, uuid.UUID(str(point_id)).int)


def single_partition(offset: PointId, limit: int | None, max_pages: int | None) -> list[ScrollPartition]:
    """The one partition of a read bounded by scroll position (offset, limit, max_pages)."""
    return [ScrollPartition(index=0, start=offset, limit=limit, max_pages=max_pages)]


def slice_partitions(count: int) -> list[ScrollPartition]:
    """``count`` hash slices of the id space."""
    return [ScrollPartition(index=i, slice=(i, count)) for i in range(count)]


def id_range_partitions(
    client: ScrollClient,
    collection: str,
    query_filter: dict | None,
    count: int,
) -> list[ScrollPartition]:
    """Up to ``count`` half-open id ranges holding about the same number of matching points."""
    if count <= 1:
        return [ScrollPartition(index=0)]
    total = client.count(collection, query_filter, True)
    per_partition = max(1, math.ceil(total / count))
    starts: list[PointId] = [None]
    seen = 0
    for page_ids, next_id in _id_pages(client, collection, query_filter, min(per_partition, BOUNDARY_PAGE_SIZE)):
        seen += len(page_ids)
        if next_id is None:
            break
        if seen >= per_partition * len(starts):
            starts.append(next_id)
        if len(starts) == count:
            break
    ends = starts[1:] + [None]
    return [ScrollPartition(index=i, start=start, end=end) for i, (start, end) in enumerate(zip(starts, ends))]


def _id_pages(
    client: ScrollClient, collection: str, query_filter: dict | None, page_size: int
) -> Iterator[tuple[list[PointId], PointId]]:
    """Pages of matching ids in scroll order, with the id the next page starts at."""
    offset: PointId = None
    while True:
        body: dict[str, Any] = {"limit": page_size, "with_payload": False, "with_vector": False}
        if query_filter:
            body["filter"] = query_filter
        if offset is not None:
            body["offset"] = offset
        points, offset = client.scroll(collection, body)
        yield [point["id"] for point in points], offset
        if offset is None:
            return


def partition_filter(partition: ScrollPartition, query_filter: dict | None) -> dict | None:
    """The read's filter narrowed to one partition (slice partitions only; ranges bound the scroll)."""
    if partition.slice is None:
        return query_filter
    index, total = partition.slice
    return all_of(query_filter, {"slice": {"total": total, "index": index}})


def scroll_partition(
    client: ScrollClient,
    collection: str,
    partition: ScrollPartition,
    request: Mapping[str, Any],
    query_filter: dict | None,
    page_size: int,
) -> Iterator[list[dict]]:
    """The pages of one partition, in scroll order; ``request`` adds with_payload / with_vector."""
    remaining = partition.limit
    pages_left = partition.max_pages
    offset = partition.start
    scroll_filter = partition_filter(partition, query_filter)
    end_key = None if partition.end is None else id_order(partition.end)
    while True:
        if pages_left is not None and pages_left <= 0:
            return
        size = page_size if remaining is None else min(page_size, remaining)
        body: dict[str, Any] = {**request, "limit": size}
        if scroll_filter:
            body["filter"] = scroll_filter
        if offset is not None:
            body["offset"] = offset
        points, offset = client.scroll(collection, body)
        if end_key is not None:
            kept = [point for point in points if id_order(point["id"]) < end_key]
            if len(kept) < len(points) or (offset is not None and id_order(offset) >= end_key):
                offset = None
            points = kept
        if remaining is not None:
            points = points[:remaining]
            remaining -= len(points)
        if points:
            yield points
        if pages_left is not None:
            pages_left -= 1
        if offset is None or remaining == 0:
            return


def read_ahead(items: Iterator[Item], depth: int = 2) -> Iterator[Item]:
    """``items``, fetched by a background thread up to ``depth`` ahead of the caller.

    A scroll is sequential (each page names the next one), so the overlap to be had is the caller's work
    on one page (building Arrow columns) with the server's and the network's work on the next ones. An
    error of the fetching side is raised here, at the page where it happened; when the caller stops early
    the thread stops at its next page.
    """
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stopped.is_set():
            try:
                buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
        except BaseException as error:  # handed to the consumer's thread
            put(("error", error))
        else:
            put(("end", None))

    threading.Thread(target=fetch, name="qdrant-read-ahead", daemon=True).start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stopped.set()


__all__ = [
    "BOUNDARY_PAGE_SIZE",
    "SLICE_VERSION",
    "ScrollPartition",
    "id_order",
    "id_range_partitions",
    "partition_filter",
    "read_ahead",
    "scroll_partition",
    "single_partition",
    "slice_partitions",
    "supports_slice",
]
