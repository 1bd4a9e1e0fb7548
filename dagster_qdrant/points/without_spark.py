"""Write and read Qdrant points without Spark: lists of dicts, generators, pandas, pyarrow.

The same road as the Spark writer (options.py -> rows_to_points.py -> points_to_qdrant.py -> http.py), for scripts,
notebooks and Dagster assets that hold their points in plain Python. In-memory inputs are validated
whole before the first request, so bad input sends nothing; generators are streamed in chunks so memory
stays bounded, each chunk validated before it is sent.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from dagster_qdrant.spark_fuse_compat import write_points_arguments
from dagster_qdrant.errors import QdrantDataError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ReadOptions, WriteOptions
from dagster_qdrant.points.points_to_qdrant import PointWriter, WriteReport
from dagster_qdrant.points.scroll import scroll_pages

_MIN_STREAM_CHUNK = 1024


def write_qdrant_points(points: Any, *args: Any, **options: Any) -> WriteReport:
    """Upsert points into a collection; the report says how many points, in how many requests.

    ``points``: a list of dicts, a generator/iterable of dicts, a pandas DataFrame, or a pyarrow
    Table/RecordBatch; each row has the id (``id_field``), the vector(s) and payload columns.
    Two call forms: ``write_qdrant_points(points, config, **options)`` with a dict from
    ``build_qdrant_write_config`` (or a ``WriteOptions``), keyword ``options`` adding to or overriding it;
    or spark-fuse's ``write_qdrant_points(points, endpoint, collection="docs", **options)``. Any other mix
    raises a TypeError naming both.
    """
    config: Mapping[str, Any] | WriteOptions | None = write_points_arguments(args, options)
    write_options: WriteOptions = WriteOptions.from_config(config, **options)
    writer = PointWriter(write_options, check_first=True)  # after validation: bad input still sends nothing
    if isinstance(points, (pa.Table, pa.RecordBatch)):
        return writer.write_batches([points])
    if _is_pandas(points):
        return writer.write_batches([_pandas_table(points)])
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Iterable):
        raise QdrantDataError(
            f"points is a {type(points).__name__}; pass a list or generator of dicts, a pandas DataFrame, "
            "or a pyarrow Table/RecordBatch"
        )
    if isinstance(points, (list, tuple)):
        return writer.write_records([points] if points else [])
    chunk = max(write_options.batch_size * write_options.max_in_flight * 2, _MIN_STREAM_CHUNK)
    return writer.write_records(_chunked(iter(points), chunk))


def read_qdrant_points(
    config: Mapping[str, Any] | ReadOptions | None = None, **options: Any
) -> Iterator[dict[str, Any]]:
    """Every point of a collection (honouring filter, offset, limit, page_size, max_pages), page by page.

    Each point is Qdrant's record: ``{"id", "payload", "vector"}`` (the keys the options ask for).
    """
    read_options: ReadOptions = ReadOptions.from_config(config, **options)
    pages = scroll_pages(
        QdrantHttp(read_options),
        read_options.collection,
        page_size=read_options.page_size,
        filter=read_options.filter,
        start=read_options.offset,
        limit=read_options.limit,
        max_pages=read_options.max_pages,
        **read_options.selection(),
    )
    for page in pages:
        yield from page.points


def _chunked(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while True:
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return
        yield chunk


def _is_pandas(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("pandas") and type(value).__name__ == "DataFrame"


def _pandas_table(frame: Any) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise QdrantDataError(
            f"The DataFrame cannot be converted to points ({error}); make every column one type "
            "(vectors as lists/arrays of numbers, ids as integers or UUID strings)"
        ) from None


__all__ = ["read_qdrant_points", "write_qdrant_points"]
