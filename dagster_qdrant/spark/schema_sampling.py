"""Which points schema inference looks at: a sample spread over everything the read will return.

The first N points in scroll order are the lowest ids, so a key or a type that only later points carry
(a field added to the pipeline last week) would never be seen. The sample is drawn from the whole read:

- ``sample_size="all"``, or a read no larger than the sample: every point of the read is looked at.
- Qdrant 1.19+: hash slices of the id space. With ``K`` slices, ``j`` of them hold about ``j/K`` of the
  points whatever the id scheme; ``j/K`` is chosen at least ``sample_size / count`` and at most about a
  sixteenth more, so the sample is about ``sample_size`` points (a hash draw: 983 for 1,000 of 50,000 in
  one measurement). The slices are one ``should`` condition next to the read's filter, so the server
  does the sampling and sends only the sample.
- Older servers, and reads bounded by scroll position (``offset``, ``limit``, ``max_pages``, where a slice
  would sample points the read never returns): the ids of the read are walked (ids only, large pages),
  a uniform reservoir sample of them is kept (seeded, so the same data gives the same schema), and those
  points are fetched by ``has_id``.

Pages are folded into ``SchemaInference`` as they arrive, so even ``"all"`` holds kinds, not points.
The inferred schema's ``id`` column carries ``INFERRED_METADATA_KEY`` (how many points were sampled of how
many), which tells the read to report what the sample missed (``schema_mismatch``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from typing import Any

from pyspark.sql.types import StructType

from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ReadOptions
from dagster_qdrant.points.scroll import scroll_pages
from dagster_qdrant.spark.read_splits import BOUNDARY_PAGE_SIZE, supports_slice
from dagster_qdrant.spark.schema import (
    INFERRED_METADATA_KEY,
    SchemaInference,
    select_vectors,
    vector_columns_from_collection,
    vector_columns_from_points,
)

SLICES_PER_SAMPLE = 16
"""Slices per ``sample_size`` points of the read: the sample overshoots by at most about 1/16."""
SAMPLE_PAGE_SIZE = 1000
"""Points per request while sampling (payloads only, unless the server gives no vector config)."""
RESERVOIR_SEED = 0

PointId = Any


def infer_sampled_schema(http: QdrantHttp, options: ReadOptions, info: Mapping[str, Any]) -> StructType:
    """The schema of a read: id, the payload keys and types of a sample spread over the read, its vectors.

    ``info`` is the collection's info (``GET /collections/{name}``), which types the vectors.
    """
    declared = vector_columns_from_collection(info)
    request = {
        "with_payload": options.selection()["with_payload"],
        "with_vector": declared is None and options.with_vectors is not False,
    }
    inference = SchemaInference()
    seen_vectors: list[dict] = []
    for page in sample_pages(http, options, request):
        inference.add(page)
        if declared is None and len(seen_vectors) < SAMPLE_PAGE_SIZE:
            seen_vectors.extend(page[: SAMPLE_PAGE_SIZE - len(seen_vectors)])
    vectors = declared if declared is not None else vector_columns_from_points(seen_vectors)
    metadata = {INFERRED_METADATA_KEY: {"sampled": inference.points, "sample_size": options.sample_size}}
    layout = "columns" if options.payload_layout == "auto" else options.payload_layout
    return inference.schema(select_vectors(vectors, options.with_vectors), id_metadata=metadata, layout=layout)


def sample_pages(http: QdrantHttp, options: ReadOptions, request: Mapping[str, Any]) -> Iterator[list[dict]]:
    """Pages of the sampled points of the read ``options`` describes, with ``request``'s payload/vectors."""
    bound = read_bound(options)
    positional = options.offset is not None or bound is not None
    size = options.sample_size
    if size == "all" or (bound is not None and bound <= size):
        yield from _every_point(http, options, request, bound)
        return
    if not positional:
        total = http.count(options.collection, dict(options.filter) if options.filter else None, True)
        if total <= size:
            yield from _every_point(http, options, request, None)
            return
        if supports_slice(http.server_version()):
            yield from _slice_sample(http, options, request, total)
            return
    yield from _reservoir_sample(http, options, request, bound)


def read_bound(options: ReadOptions) -> int | None:
    """At most how many points the read returns (``limit``, ``max_pages`` x ``page_size``), None: no bound."""
    bounds = [options.limit] if options.limit is not None else []
    if options.max_pages is not None:
        bounds.append(options.max_pages * options.page_size)
    return min(bounds) if bounds else None


def slice_condition(total: int, size: int) -> tuple[dict[str, Any], int]:
    """A condition holding about ``size`` of ``total`` points by hash slices, and how many slices it takes.

    ``K = SLICES_PER_SAMPLE * ceil(total / size)`` slices; the first ``ceil(K * size / total)`` of them.
    """
    slices = SLICES_PER_SAMPLE * math.ceil(total / size)
    taken = math.ceil(slices * size / total)
    return {"should": [{"slice": {"total": slices, "index": index}} for index in range(taken)]}, taken


def _every_point(
    http: QdrantHttp, options: ReadOptions, request: Mapping[str, Any], bound: int | None
) -> Iterator[list[dict]]:
    query_filter = dict(options.filter) if options.filter else None
    pages = scroll_pages(
        http,
        options.collection,
        page_size=SAMPLE_PAGE_SIZE,
        filter=query_filter,
        start=options.offset,
        limit=bound,
        **request,
    )
    for page in pages:
        yield page.points


def _slice_sample(
    http: QdrantHttp, options: ReadOptions, request: Mapping[str, Any], total: int
) -> Iterator[list[dict]]:
    assert isinstance(options.sample_size, int)
    condition, _ = slice_condition(total, options.sample_size)
    must = [dict(options.filter), condition] if options.filter else [condition]
    for page in scroll_pages(http, options.collection, page_size=SAMPLE_PAGE_SIZE, filter={"must": must}, **request):
        yield page.points


def _reservoir_sample(
    http: QdrantHttp, options: ReadOptions, request: Mapping[str, Any], bound: int | None
) -> Iterator[list[dict]]:
    """A uniform sample of the read's ids (Algorithm R, seeded), then those points fetched by id."""
    assert isinstance(options.sample_size, int)
    size = options.sample_size
    chosen: list[PointId] = []
    generator = random.Random(RESERVOIR_SEED)
    query_filter = dict(options.filter) if options.filter else None
    id_pages = scroll_pages(
        http,
        options.collection,
        page_size=BOUNDARY_PAGE_SIZE,
        with_payload=False,
        with_vector=False,
        filter=query_filter,
        start=options.offset,
        limit=bound,
    )
    seen = 0
    for page in id_pages:
        for point in page.points:
            if seen < size:
                chosen.append(point["id"])
            else:
                slot = generator.randrange(seen + 1)
                if slot < size:
                    chosen[slot] = point["id"]
            seen += 1
    for start in range(0, len(chosen), SAMPLE_PAGE_SIZE):
        ids = chosen[start : start + SAMPLE_PAGE_SIZE]
        must: list[dict[str, Any]] = [{"has_id": ids}]
        if query_filter:
            must.insert(0, query_filter)
        # One request: every id asked for fits its page, so the page needs no successor.
        by_id = scroll_pages(
            http, options.collection, page_size=len(ids), filter={"must": must}, max_pages=1, **request
        )
        for page in by_id:
            yield page.points


__all__ = [
    "SAMPLE_PAGE_SIZE",
    "SLICES_PER_SAMPLE",
    "infer_sampled_schema",
    "read_bound",
    "sample_pages",
    "slice_condition",
]
