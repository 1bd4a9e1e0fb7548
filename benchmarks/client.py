"""The official qdrant-client over REST (``prefer_grpc=False``), at its defaults and at its best settings.

Defaults: ``upload_points`` fed a generator of ``PointStruct`` (batch_size=64, parallel=1, wait=False) and
``scroll`` with its default page of 10. Best: ``upload_collection`` with the numpy matrix and the
(batch_size, parallel) pair that was fastest on a sample, and ``scroll`` with the fastest page size (both tried
once, before the measured rounds: ``tune_write_best``, ``tune_read_best``). Uploads return before the server
has applied them (wait=False), so every write is timed until the server counts every point.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from benchmarks.data import Dataset, columns
from benchmarks.measure import READ, WRITE, Result, timed
from benchmarks.server import Target

WRITE_SETTINGS = [(batch, parallel) for batch in (256, 1024) for parallel in (1, 2)]
READ_PAGES = (256, 1024, 4096)


def _client(target: Target):
    from qdrant_client import QdrantClient

    return QdrantClient(url=target.url, api_key=target.api_key, prefer_grpc=False, timeout=300)


def _point_structs(table: pa.Table) -> Iterator[object]:
    from qdrant_client.models import PointStruct

    for batch in table.to_batches(max_chunksize=4096):
        ids, vectors, payloads = columns(batch)
        for row, point_id in enumerate(ids):
            yield PointStruct(id=point_id, vector=vectors[row].tolist(), payload=payloads[row])


def _upload_collection(target: Target, collection: str, table: pa.Table, batch: int, parallel: int) -> int:
    ids, vectors, payloads = columns(table)
    client = _client(target)
    client.upload_collection(collection, vectors=vectors, payload=payloads, ids=ids, batch_size=batch, parallel=parallel)
    if not target.wait_for_count(collection, table.num_rows):
        raise RuntimeError(f"qdrant-client upload to {collection!r} never reached {table.num_rows} points")
    return table.num_rows


def measure_write_defaults(target: Target, dataset: Dataset, table: pa.Table, collection: str) -> Result:
    target.create_collection(collection, dataset.dim)

    def upload() -> int:
        _client(target).upload_points(collection, _point_structs(table))
        if not target.wait_for_count(collection, dataset.points):
            raise RuntimeError(f"qdrant-client upload to {collection!r} never reached {dataset.points} points")
        return dataset.points

    result = timed(
        "qdrant-client defaults",
        WRITE,
        upload,
        server_pid=target.pid,
        settings={"method": "upload_points", "batch_size": 64, "parallel": 1},
    )
    result.verified = target.count(collection) == dataset.points
    return result


def tune_write_best(
    target: Target, dataset: Dataset, table: pa.Table, collection: str, tune_points: int
) -> dict[str, Any]:
    """The fastest (batch_size, parallel) pair on a sample, and every trial."""
    sample = table.slice(0, min(tune_points, dataset.points))
    trials = []
    for batch, parallel in WRITE_SETTINGS:
        target.create_collection(collection, dataset.dim)
        started = time.perf_counter()
        _upload_collection(target, collection, sample, batch, parallel)
        trials.append(
            {"batch_size": batch, "parallel": parallel, "points_per_second": sample.num_rows / (time.perf_counter() - started)}
        )
    best = max(trials, key=lambda trial: trial["points_per_second"])
    return {"batch_size": best["batch_size"], "parallel": best["parallel"], "trials": trials,
            "tune_points": sample.num_rows}


def measure_write_best(
    target: Target, dataset: Dataset, table: pa.Table, collection: str, tuned: dict[str, Any]
) -> Result:
    """``upload_collection`` of every row with the tuned (batch_size, parallel) pair."""
    target.create_collection(collection, dataset.dim)
    settings = {"method": "upload_collection", "batch_size": tuned["batch_size"], "parallel": tuned["parallel"]}
    result = timed(
        "qdrant-client best",
        WRITE,
        lambda: _upload_collection(target, collection, table, tuned["batch_size"], tuned["parallel"]),
        server_pid=target.pid,
        settings=settings,
    )
    result.verified = target.count(collection) == dataset.points
    return result


def _scroll(target: Target, collection: str, page: int | None, stop_after: int | None = None) -> int:
    client = _client(target)
    seen = 0
    offset = None
    keywords = {} if page is None else {"limit": page}
    while True:
        records, offset = client.scroll(collection, offset=offset, with_payload=True, with_vectors=True, **keywords)
        seen += len(records)
        if offset is None or (stop_after is not None and seen >= stop_after):
            return seen


def measure_read_defaults(target: Target, dataset: Dataset, collection: str, cap: int | None) -> Result:
    """Scroll with the default page (10); ``cap`` stops after that many points (the rate is what counts)."""
    result = timed(
        "qdrant-client defaults",
        READ,
        lambda: _scroll(target, collection, None, cap),
        server_pid=target.pid,
        settings={"method": "scroll", "limit": 10, **({"stopped_after": cap} if cap else {})},
    )
    result.verified = result.points == (min(cap, dataset.points) if cap else dataset.points)
    return result


def tune_read_best(target: Target, dataset: Dataset, collection: str, tune_points: int) -> dict[str, Any]:
    """The fastest scroll page size on the first ``tune_points`` points, and every trial."""
    trials = []
    for page in READ_PAGES:
        started = time.perf_counter()
        seen = _scroll(target, collection, page, min(tune_points, dataset.points))
        trials.append({"limit": page, "points_per_second": seen / (time.perf_counter() - started)})
    best = max(trials, key=lambda trial: trial["points_per_second"])
    return {"limit": best["limit"], "trials": trials}


def measure_read_best(target: Target, dataset: Dataset, collection: str, tuned: dict[str, Any]) -> Result:
    result = timed(
        "qdrant-client best",
        READ,
        lambda: _scroll(target, collection, tuned["limit"]),
        server_pid=target.pid,
        settings={"method": "scroll", "limit": tuned["limit"]},
    )
    result.verified = result.points == dataset.points
    return result
