"""The write hot path: validated columns -> byte- and point-budgeted upsert requests, several in flight.

One ``PointWriter`` serves one write call (a Spark task, or one ``write_qdrant_points`` call). It checks
the collection once (creating it when asked and missing), then cuts the rows into requests of at most
``batch_size`` points and ``max_batch_bytes`` bytes, encodes them on the calling thread (orjson holds the
GIL anyway) and keeps up to ``max_in_flight`` requests on the wire. Upserts go as ``PUT .../points``, or
with ``write_method="post"`` as one upsert operation of ``POST .../points/batch`` (``POST .../points`` is
Qdrant's retrieve, never a write). The first request goes alone: it settles
``payload_format="auto"`` and ``write_method="auto"`` before others follow. On a failure no new request
starts; the ones in flight finish, and the error says how many points were written and which were not.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from dagster_qdrant.points.rows_to_points import PointColumns, encode_body, from_record_batch, from_records
from dagster_qdrant.errors import (
    QdrantDataError,
    QdrantError,
    QdrantRequestError,
    QdrantWriteError,
    collection_not_found,
)
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import WriteOptions
from dagster_qdrant.vector_config import VectorConfig, read_vector_config

_ENVELOPE_BYTES = 1024
_BATCH_PREFIX = b'{"operations":[{"upsert":'
_BATCH_SUFFIX = b"}]}"
_FORMAT_ERROR_MARKERS = (
    "format error",
    "missing field",
    "unknown field",
    "unknown variant",
    "did not match any variant",
)


@dataclass(frozen=True)
class WriteReport:
    """What a write did: points upserted, requests sent, wall time."""

    points_written: int
    requests: int
    seconds: float

    @property
    def points_per_second(self) -> float:
        return self.points_written / self.seconds if self.seconds > 0 else float(self.points_written)

    def __add__(self, other: WriteReport) -> WriteReport:
        return WriteReport(
            self.points_written + other.points_written, self.requests + other.requests, self.seconds + other.seconds
        )


@dataclass
class _Progress:
    written: int = 0
    requests: int = 0
    seen: int = 0
    exhausted: bool = False
    error: QdrantError | None = None
    pending: deque[tuple[Future[Any], int]] = field(default_factory=deque)


class PointWriter:
    """Writes points to one collection; not shared between threads (each Spark task makes its own)."""

    def __init__(self, options: WriteOptions, http: QdrantHttp | None = None, check_first: bool = False) -> None:
        """``check_first``: before the first request, check that the server answers at all (seconds instead of
        every attempt's read timeout, see ``QdrantHttp.check_answers``); the caller's own check, if it made
        one, makes it needless (Spark's tasks run after the IO manager's)."""
        self.options = options
        self.http = http or QdrantHttp(options)
        self._check_first = check_first
        self._vector_sizes: dict[str, int] | None = None
        self._sparse_names: set[str] = set()
        self._seen_ids: set[Any] = set()
        self._format = "points" if options.payload_format == "points" else "batch"
        self._via_batch = options.write_method == "post"
        self._settled = False

    # ----- entry points ---------------------------------------------------------------------------

    def write_batches(self, batches: Iterable[pa.RecordBatch | pa.Table]) -> WriteReport:
        """Write Arrow record batches (Spark's Arrow writer, pandas, pyarrow)."""

        def parts() -> Iterator[PointColumns]:
            first_row = 0
            for item in batches:
                for batch in item.to_batches() if isinstance(item, pa.Table) else [item]:
                    yield from_record_batch(batch, self.options, first_row)
                    first_row += batch.num_rows

        return self.write_columns(parts())

    def write_records(self, chunks: Iterable[Sequence[Mapping[str, Any]]]) -> WriteReport:
        """Write chunks of plain dicts; each chunk is validated whole before any of it is sent."""

        def parts() -> Iterator[PointColumns]:
            first_row = 0
            for chunk in chunks:
                yield from_records(chunk, self.options, first_row)
                first_row += len(chunk)

        return self.write_columns(parts())

    def write_columns(self, parts: Iterable[PointColumns]) -> WriteReport:
        started = time.perf_counter()
        progress = _Progress()
        with ThreadPoolExecutor(self.options.max_in_flight, thread_name_prefix="qdrant-write") as pool:
            try:
                self._send_all(parts, progress, pool)
            except QdrantError as error:
                progress.error = progress.error or error
            finally:
                while progress.pending:
                    self._collect(progress)
        if progress.error is not None and progress.written == 0:
            raise progress.error
        if progress.error is not None:
            raise self._final_error(progress) from progress.error
        return WriteReport(progress.written, progress.requests, time.perf_counter() - started)

    @property
    def ids_seen(self) -> set[Any]:
        """The ids of every point this writer took (all of them written once a write returned)."""
        return self._seen_ids

    # ----- sending --------------------------------------------------------------------------------

    def _send_all(self, parts: Iterable[PointColumns], progress: _Progress, pool: ThreadPoolExecutor) -> None:
        for part in parts:
            progress.seen += len(part)
            if not len(part):
                continue
            self._check_duplicates(part)
            self._check_row_sizes(part)
            self._ensure_collection(part)
            for chunk in self._chunks(part):
                for piece, data in self._encoded(chunk):
                    if progress.error is not None:
                        return
                    if not self._settled:
                        self._send_first(piece, data)
                        progress.written += len(piece)
                        progress.requests += 1
                        continue
                    future = pool.submit(self._upsert, data, piece.ids)
                    progress.pending.append((future, len(piece)))
                    while len(progress.pending) >= self.options.max_in_flight:
                        self._collect(progress)
        progress.exhausted = True

    def _collect(self, progress: _Progress) -> None:
        future, rows = progress.pending.popleft()
        try:
            future.result()
        except QdrantError as error:
            progress.error = progress.error or error
            return
        progress.written += rows
        progress.requests += 1

    def _upsert(self, data: bytes, ids: list[Any]) -> None:
        send = self.http.batch_update if self._via_batch else self.http.upsert
        send(self.options.collection, data, wait=self.options.wait, point_ids=ids)

    def _encode(self, chunk: PointColumns) -> bytes:
        """The request body: the upsert in the chosen format, wrapped as a batch operation for POST."""
        data = encode_body(chunk.batch_body() if self._format == "batch" else chunk.points_body())
        return _BATCH_PREFIX + data + _BATCH_SUFFIX if self._via_batch else data

    def _send_first(self, piece: PointColumns, data: bytes) -> None:
        """Send one request alone, falling back once on 405 (method) and on a body-format 400."""
        while True:
            try:
                self._upsert(data, piece.ids)
                self._settled = True
                return
            except QdrantRequestError as error:
                if error.status == 405 and self.options.write_method == "auto" and not self._via_batch:
                    self._via_batch = True
                    data = self._encode(piece)
                    continue
                format_error = any(marker in error.message.lower() for marker in _FORMAT_ERROR_MARKERS)
                can_fall_back = self.options.payload_format == "auto" and self._format == "batch"
                if error.status == 400 and format_error and can_fall_back:
                    self._format = "points"
                    data = self._encode(piece)
                    continue
                raise

    def _chunks(self, part: PointColumns) -> Iterator[PointColumns]:
        """At most ``batch_size`` points and (by estimate) ``max_batch_bytes`` bytes per request."""
        budget = max(self.options.max_batch_bytes - _ENVELOPE_BYTES, 1)
        start, total = 0, len(part)
        while start < total:
            stop = min(start + self.options.batch_size, total)
            fitting = int(np.searchsorted(np.cumsum(part.row_bytes[start:stop]), budget, side="right"))
            stop = start + max(fitting, 1)
            yield part.take(start, stop)
            start = stop

    def _encoded(self, chunk: PointColumns) -> Iterator[tuple[PointColumns, bytes]]:
        """Encode a request; halve it while the real body is over the byte limit."""
        data = self._encode(chunk)
        if len(data) <= self.options.max_batch_bytes:
            yield chunk, data
            return
        if len(chunk) == 1:
            raise self._oversized(chunk.ids[0], len(data))
        half = len(chunk) // 2
        yield from self._encoded(chunk.take(0, half))
        yield from self._encoded(chunk.take(half, len(chunk)))

    # ----- checks ---------------------------------------------------------------------------------

    def _check_row_sizes(self, part: PointColumns) -> None:
        """Refuse a row that cannot fit in any request before anything of its part is sent."""
        limit = self.options.max_batch_bytes
        for row in np.flatnonzero(part.row_bytes > limit - _ENVELOPE_BYTES):
            single = part.take(int(row), int(row) + 1)
            size = len(self._encode(single))
            if size > limit:
                raise self._oversized(single.ids[0], size)

    def _oversized(self, point_id: Any, size: int) -> QdrantDataError:
        return QdrantDataError(
            f"Point {point_id!r} alone encodes to {size} bytes, over max_batch_bytes={self.options.max_batch_bytes} "
            "(Qdrant refuses bodies over 32 MiB by default); shrink its payload or vectors, or raise "
            "max_batch_bytes if the server accepts larger requests",
            collection=self.options.collection,
            point_ids=[point_id],
        )

    def _check_duplicates(self, part: PointColumns) -> None:
        ids = part.ids
        unique = set(ids)
        if self.options.id_field is None:
            self._seen_ids |= unique  # content ids: equal rows are the same point, written once
            return
        repeated = [i for i in unique if i in self._seen_ids]
        if len(unique) != len(ids):
            counts: dict[Any, int] = {}
            for point_id in ids:
                counts[point_id] = counts.get(point_id, 0) + 1
            repeated += [point_id for point_id, count in counts.items() if count > 1]
        if repeated:
            raise QdrantDataError(
                f"Duplicate ids in one write (column {self.options.id_field!r}): {repeated[:10]}; a later row would "
                "silently replace an earlier one, so give every row its own id",
                collection=self.options.collection,
                point_ids=repeated,
            )
        self._seen_ids |= unique

    def _ensure_collection(self, part: PointColumns) -> None:
        if self._vector_sizes is None:
            if self._check_first:
                self.http.check_answers()
            name = self.options.collection
            info = self.http.collection_info(name)
            if info is None and not self.options.create_collection:
                raise collection_not_found(
                    name,
                    self.http.endpoint,
                    "create it, or write with create_collection=True to create it from the data (vector sizes "
                    f"{part.vector_sizes()}, distance {self.options.distance})",
                )
            if info is None and self.http.create_collection(name, self._collection_body(part), exist_ok=True):
                self._vector_sizes, self._sparse_names = part.vector_sizes(), set(part.sparse)
            else:
                info = info or self.http.collection_info(name) or {}
                self._vector_sizes, self._sparse_names = configured_vectors(info)
        self._check_vectors(part)

    def _collection_body(self, part: PointColumns) -> dict[str, Any]:
        sizes = part.vector_sizes()
        distance = self.options.distance
        if "" in sizes:
            vectors: dict[str, Any] = {"size": sizes[""], "distance": distance}
        else:
            vectors = {name: {"size": size, "distance": distance} for name, size in sizes.items()}
        body: dict[str, Any] = {"vectors": vectors}
        if part.sparse:
            body["sparse_vectors"] = {name: {} for name in part.sparse}
        return body

    def _check_vectors(self, part: PointColumns) -> None:
        expected = self._vector_sizes or {}
        collection = self.options.collection
        for name, size in part.vector_sizes().items():
            column = part.vector_columns.get(name, name)
            if name not in expected:
                if name == "" and expected:
                    hint = (
                        f"it has named vectors {sorted(expected)}: map the column with "
                        f"vector_fields={{{column!r}: '<name>'}}"
                    )
                elif "" in expected:
                    hint = f"it has one unnamed vector: write column {column!r} with vector_field={column!r} instead"
                else:
                    hint = f"its vectors are {sorted(expected)}"
                raise QdrantDataError(
                    f"Collection {collection!r} has no vector {name or '(unnamed)'!r} for column {column!r}; {hint}",
                    collection=collection,
                )
            if expected[name] != size:
                raise QdrantDataError(
                    f"Column {column!r} has vectors of size {size} but collection {collection!r} expects size "
                    f"{expected[name]}" + (f" for vector {name!r}" if name else ""),
                    collection=collection,
                    point_ids=part.ids,
                )
        missing = sorted(set(part.sparse) - self._sparse_names)
        if missing:
            raise QdrantDataError(
                f"Collection {collection!r} has no sparse vector(s) {missing}; its sparse vectors are "
                f"{sorted(self._sparse_names)}",
                collection=collection,
            )

    def _final_error(self, progress: _Progress) -> QdrantWriteError:
        error = progress.error
        assert error is not None
        return QdrantWriteError(
            f"Writing to collection {self.options.collection!r} stopped: {error.message}",
            written=progress.written,
            failed=max(progress.seen - progress.written, 0),
            unread_from=None if progress.exhausted else progress.seen,
            failed_ids=error.point_ids,
            status=error.status,
            collection=self.options.collection,
        )


def configured_vectors(info: Mapping[str, Any]) -> tuple[dict[str, int], set[str]]:
    """Dense vector sizes by name (``""`` = unnamed) and sparse vector names from ``GET /collections/{name}``."""
    config = read_vector_config(info) or VectorConfig()
    return config.dense_sizes(), config.sparse_names()


__all__ = ["PointWriter", "WriteReport", "configured_vectors"]
