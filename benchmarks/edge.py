"""The engine's own speed, without HTTP: Qdrant Edge ``EdgeShard.update`` and ``scroll`` in this process.

This is a reference for how much of any HTTP figure the storage engine itself takes. Building the ``Point``
objects is Python work that an HTTP server on Edge also does, so it is timed too and reported apart.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from benchmarks.data import Dataset, columns
from benchmarks.measure import READ, WRITE, Result, timed

BATCH_POINTS = 1024
PAGE_POINTS = 4096


def _open_shard(directory: Path, dim: int):
    from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams

    return EdgeShard.create(str(directory), EdgeConfig(vectors=EdgeVectorParams(size=dim, distance=Distance.Cosine)))


def measure(dataset: Dataset, table: pa.Table, work_dir: Path) -> list[Result]:
    """Ingest every row into a fresh shard, then scroll it all back; two results."""
    from qdrant_edge import Point, ScrollRequest, UpdateOperation

    directory = Path(tempfile.mkdtemp(prefix="edge-", dir=work_dir))
    shard = _open_shard(directory, dataset.dim)
    build_seconds = 0.0
    update_seconds = 0.0

    def ingest() -> int:
        nonlocal build_seconds, update_seconds
        for batch in table.to_batches(max_chunksize=BATCH_POINTS):
            started = time.perf_counter()
            ids, vectors, payloads = columns(batch)
            points = [Point(ids[row], vectors[row], payloads[row]) for row in range(len(ids))]
            operation = UpdateOperation.upsert_points(points)
            middle = time.perf_counter()
            shard.update(operation)
            build_seconds += middle - started
            update_seconds += time.perf_counter() - middle
        shard.flush()
        return dataset.points

    write = timed("edge in-process", WRITE, ingest, server_pid=None, settings={"batch": BATCH_POINTS})
    write.verified = shard.info().points_count == dataset.points
    write.details = {
        "build_seconds": round(build_seconds, 3),
        "update_seconds": round(update_seconds, 3),
        "update_only_points_per_second": round(dataset.points / update_seconds, 1) if update_seconds else None,
    }

    def scroll() -> int:
        seen = 0
        offset = None
        while True:
            records, offset = shard.scroll(
                ScrollRequest(offset=offset, limit=PAGE_POINTS, with_payload=True, with_vector=True)
            )
            for record in records:
                record.vector, record.payload  # noqa: B018 - materialize both like a client would
            seen += len(records)
            if offset is None:
                return seen

    read = timed("edge in-process", READ, scroll, server_pid=None, settings={"page": PAGE_POINTS})
    read.verified = read.points == dataset.points
    shard.close()
    shutil.rmtree(directory, ignore_errors=True)
    return [write, read]
