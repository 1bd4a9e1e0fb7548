"""The one scroll: every reader's ``POST /collections/{c}/points/scroll`` bodies and pages come from here.

``scroll_body`` builds a ``ScrollRequest`` (Qdrant's OpenAPI spec) and ``scroll_pages`` walks the pages,
each starting at the previous page's ``next_page_offset``. Every reader goes through them: the reads
without Spark (``without_spark.read_qdrant_points``), each Spark read split, the id walk that plans id
ranges, schema sampling, and the collection lifecycle's sweep of stale points. One loop means one place
that knows how a scroll ends (``next_page_offset`` is null, the point limit is reached, the page budget
is spent, or the id range is left) and one place to make faster.

Scroll order is all integer ids ascending, then every UUID ascending; ``offset`` is an inclusive id that
need not exist. ``id_order`` is that order as a sort key, which bounds a scroll above (``end``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol

PointId = Any
"""An unsigned 64-bit integer or a UUID string."""


class ScrollClient(Protocol):
    """What the loop needs of the HTTP client (``QdrantHttp.scroll``)."""

    def scroll(
        self, collection: str, body: dict[str, Any], vectors_as_arrays: bool = False
    ) -> tuple[list[dict[str, Any]], Any]: ...


class ScrollPage(NamedTuple):
    """One page of points and the id the next page starts at (None: this was the last page)."""

    points: list[dict[str, Any]]
    next_offset: PointId


def id_order(point_id: PointId) -> tuple[int, int]:
    """Qdrant's scroll order as a sort key: every integer id before every UUID, each ascending."""
    if isinstance(point_id, int):
        return (0, point_id)
    return (1, uuid.UUID(str(point_id)).int)


def scroll_body(
    limit: int,
    *,
    with_payload: Any = True,
    with_vector: Any = False,
    filter: Mapping[str, Any] | None = None,
    offset: PointId = None,
    order_by: str | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``ScrollRequest``: the fields left unset (None, or an empty filter) are left out of the body.

    ``with_payload``/``with_vector`` are sent as given (a bool, a list of names, or a selector object);
    an empty filter would match every point, so it is omitted rather than sent. ``order_by`` (a payload
    key, or ``{"key", "direction", "start_from"}``) orders one page by payload; Qdrant names no next page
    for it (it pages by ``start_from`` instead), which is why ``scroll_pages`` does not take it.
    """
    body: dict[str, Any] = {"limit": limit, "with_payload": with_payload, "with_vector": with_vector}
    if filter:
        body["filter"] = dict(filter)
    if offset is not None:
        body["offset"] = offset
    if order_by is not None:
        body["order_by"] = order_by if isinstance(order_by, str) else dict(order_by)
    return body


def scroll_pages(
    client: ScrollClient,
    collection: str,
    *,
    page_size: int,
    with_payload: Any = True,
    with_vector: Any = False,
    filter: Mapping[str, Any] | None = None,
    start: PointId = None,
    end: PointId = None,
    limit: int | None = None,
    max_pages: int | None = None,
    vectors_as_arrays: bool = False,
) -> Iterator[ScrollPage]:
    """The pages of one scroll, in scroll order; empty pages are not yielded.

    ``start`` is the first id (inclusive), ``end`` the id where the scroll stops (exclusive; None: the
    last id). ``limit`` caps the points, ``max_pages`` the requests. ``vectors_as_arrays`` hands dense
    vectors over as numpy arrays (``QdrantHttp.scroll``): the Spark read's hot path. The generator sends
    a request only when the next page is asked for, so a caller that stops early sends no more.
    """
    remaining = limit
    pages_left = max_pages
    offset = start
    end_key = None if end is None else id_order(end)
    while remaining is None or remaining > 0:
        if pages_left is not None:
            if pages_left <= 0:
                return
            pages_left -= 1
        size = page_size if remaining is None else min(page_size, remaining)
        body = scroll_body(size, with_payload=with_payload, with_vector=with_vector, filter=filter, offset=offset)
        points, offset = client.scroll(collection, body, vectors_as_arrays)
        if not points:
            return
        if end_key is not None:
            kept = [point for point in points if id_order(point["id"]) < end_key]
            if len(kept) < len(points) or (offset is not None and id_order(offset) >= end_key):
                offset = None
            points = kept
        if remaining is not None:
            points = points[:remaining]
            remaining -= len(points)
        if points:
            yield ScrollPage(points, offset)
        if offset is None:
            return


__all__ = ["ScrollClient", "ScrollPage", "id_order", "scroll_body", "scroll_pages"]
