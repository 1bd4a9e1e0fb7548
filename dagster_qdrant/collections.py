"""The lifecycle of the collections this package writes: replace a whole collection, replace one partition.

What Dagster's ``DbClient`` is to a database, ``QdrantCollections`` is to a Qdrant server: the storage
operations an IO manager needs, on plain values (a collection name, a partition key, a callable that
writes points), so every DataFrame kind (Spark, pandas, Arrow) shares them and none of them knows Dagster.

- ``replace_collection``: the points go into a fresh version collection (``collection_versions.py``: its
  name, its owner, the sweep), then one atomic alias update moves the alias to it, and the previous
  version is dropped. A failed write drops the fresh version and leaves the alias where it was; every
  replacement ends with a sweep, so after any mix of concurrent, failed and killed runs one version remains.
- ``replace_partition``: a collection shared by the partitions of an asset, each point carrying its key in
  a payload field: the partition's points are deleted by filter, then the new ones upserted.
- ``replace_points``: the data source's ``mode("overwrite")`` of a plain (not aliased) collection copies a
  finished staging version's points into it: readers see the old points, then old and new together, then
  the new ones; never fewer than the smaller of the two.
- Empty versions and copies (``create_empty``, ``create_like``) take their vectors from the one reading of
  a collection's vector config (``vector_config.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from dagster_qdrant.collection_versions import (
    HEARTBEAT_SECONDS,
    STALE_AFTER_SECONDS,
    Heartbeat,
    Owner,
    alias_target,
    drop_quietly,
    mark_settled,
    new_version_name,
    swap_alias,
    sweep,
)
from dagster_qdrant.errors import QdrantError
from dagster_qdrant.filters import match_any
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.vector_config import VectorConfig, read_vector_config
from dagster_qdrant.points.scroll import scroll_pages

logger = logging.getLogger(__name__)

_PAGE = 512
_DELETE_BATCH = 1000

WritePoints = Callable[[str], None]
"""Writes the points into the collection it is given, creating it from the data when it does not exist
(a Spark ``df.write.format("qdrant")``, ``write_qdrant_points``, ...)."""


class Log(Protocol):
    """Where the lifecycle reports what it did: a ``logging.Logger``, or Dagster's ``context.log``."""

    def info(self, msg: str) -> Any: ...

    def warning(self, msg: str) -> Any: ...


@dataclass(frozen=True)
class Replacement:
    """A whole collection replaced: the version now served under ``alias``, as it was when served."""

    alias: str
    version: str
    points: int
    vectors: VectorConfig | None
    seconds: float


@dataclass(frozen=True)
class PartitionReplacement:
    """One partition replaced; ``exists`` is False when nothing was written and there is no collection yet."""

    collection: str
    field: str
    key: str
    exists: bool
    points: int
    partition_points: int
    vectors: VectorConfig | None
    seconds: float


def partition_filter(field: str, keys: Sequence[str]) -> dict[str, Any]:
    """The points of the given partition keys: in a sorted order, so the same keys make the same request."""
    return match_any(field, sorted(str(key) for key in keys))


class QdrantCollections:
    """Replaces collections and partitions on one server (the module docstring tells how and why)."""

    def __init__(
        self,
        http: QdrantHttp,
        *,
        log: Log = logger,
        stale_after: float = STALE_AFTER_SECONDS,
        progress_interval: float | None = None,
        heartbeat_interval: float = HEARTBEAT_SECONDS,
    ) -> None:
        """``stale_after``: see ``collection_versions.is_expired``; ``progress_interval``: seconds between
        log lines with the points count while a write runs (None: no progress lines); ``heartbeat_interval``:
        seconds between refreshes of a version's heartbeat while it is written (``Heartbeat``)."""
        self.http, self.log, self.stale_after = http, log, stale_after
        self.progress_interval, self.heartbeat_interval = progress_interval, heartbeat_interval

    # ----- a whole collection, through an alias ---------------------------------------------------

    def replace_collection(
        self, alias: str, write: WritePoints, *, run: str = "", owner: Owner | None = None
    ) -> Replacement:
        """Write a fresh version, move the alias to it in one request, drop the old version, sweep."""
        http = self.http
        version = new_version_name(alias, run=run, owner=owner or Owner.this_process())
        self.log.info(f"Writing {alias!r} into the new collection {version!r}")
        try:
            with Heartbeat(http, version, self.heartbeat_interval), self._progress(version, None):
                seconds = _timed(write, version)
            if not http.collection_exists(version):  # nothing to write creates nothing
                self.create_empty(version, like=alias_target(http, alias))
            # Counted before the swap: once served, a later run may replace and drop it at any moment.
            points = http.count(version, exact=True)
            info = http.collection_info(version)
        except BaseException:
            self.drop_unfinished(version)
            raise
        previous = self.move_alias(alias, version)
        if previous is not None and previous != version and drop_quietly(http, previous):
            self.log.info(f"Dropped the previous version {previous!r}")
        for name in sweep(http, alias, stale_after=self.stale_after, keep=[version]):
            self.log.info(f"Dropped {name!r}, a version no run will serve (displaced, or of a dead run)")
        serving = alias_target(http, alias)
        if serving != version:
            self.log.warning(
                f"A concurrent materialization of {alias!r} swapped in {serving!r} after this run served {version!r}"
            )
            sweep(http, alias, stale_after=self.stale_after)
        return Replacement(alias, version, points, read_vector_config(info), seconds)

    def move_alias(self, alias: str, version: str) -> str | None:
        """Point the alias at the version (atomically); returns what it served before."""
        http = self.http
        if alias_target(http, alias) is not None or alias not in http.list_collections():
            return swap_alias(http, alias, version)
        # A plain collection holds the name (made by hand, by another tool, or by this asset when it was
        # partitioned). An alias cannot share a collection's name, so it goes first: this one switch has a
        # moment with no collection under the name; every later one is atomic.
        self.log.warning(
            f"A plain collection {alias!r} holds the asset's name: dropping it so that the alias "
            f"{alias!r} can point to {version!r}; from now on every materialization swaps atomically"
        )
        drop_quietly(http, alias)
        return swap_alias(http, alias, version)

    def create_empty(self, version: str, like: str | None) -> None:
        """An empty version when there were no points, with the vectors of ``like`` when there is one."""
        config = read_vector_config(self.http.collection_info(like) if like else None) or VectorConfig()
        like_text = f", with the vectors of {like!r}" if like else ""
        self.log.warning(f"No points were written: {version!r} is created empty{like_text}")
        self.http.create_collection(version, config.create_body())

    def drop_unfinished(self, version: str) -> None:
        """After a failed write: drop the half-written version; the original error is what matters."""
        try:
            if self.http.collection_exists(version):
                self.http.delete_collection(version)
        except QdrantError as error:
            mark_settled(version)  # the next replacement's sweep drops it
            self.log.warning(f"Could not drop the unfinished collection {version!r}: {error}")

    # ----- one partition of a shared collection ---------------------------------------------------

    def replace_partition(self, collection: str, field: str, key: str, write: WritePoints) -> PartitionReplacement:
        """Delete the partition's points by filter, then write the new ones (each carrying ``field: key``).

        The first write of a collection also indexes ``field`` as a keyword, for the deletes and reads.
        """
        http = self.http
        only_this = partition_filter(field, [key])
        existed = http.collection_exists(collection)
        if existed:
            http.delete_points(collection, {"filter": only_this}, wait=True)
        self.log.info(f"Writing partition {key!r} into {collection!r}")
        with self._progress(collection, only_this):
            seconds = _timed(write, collection)
        if not existed and not http.collection_exists(collection):
            self.log.warning(f"Partition {key!r} is empty and {collection!r} does not exist yet")
            return PartitionReplacement(collection, field, key, False, 0, 0, None, seconds)
        if not existed:
            self.index_keyword(collection, field)
        partition_points = http.count(collection, filter=only_this, exact=True)
        points = http.count(collection, exact=True)
        vectors = read_vector_config(http.collection_info(collection))
        return PartitionReplacement(collection, field, key, True, points, partition_points, vectors, seconds)

    def index_keyword(self, collection: str, field: str) -> None:
        """A keyword index makes partition deletes and reads fast (and is required by strict-mode servers)."""
        try:
            self.http.create_payload_index(collection, field, "keyword")
        except QdrantError as error:
            self.log.warning(f"No payload index on {field!r} in {collection!r}: {error}")


    @contextmanager
    def _progress(self, collection: str, count_filter: dict[str, Any] | None) -> Iterator[None]:
        """Log the points count every ``progress_interval`` seconds while a long write runs."""
        interval = self.progress_interval
        if interval is None:
            yield
            return
        stop = threading.Event()

        def report() -> None:
            started = time.monotonic()
            while not stop.wait(interval):
                try:
                    if not self.http.collection_exists(collection):
                        continue
                    points = self.http.count(collection, filter=count_filter, exact=False)
                except QdrantError:
                    continue
                self.log.info(f"{points} points in {collection!r} after {time.monotonic() - started:.0f}s")

        thread = threading.Thread(target=report, name="qdrant-write-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=interval + 5)


def _timed(write: WritePoints, collection: str) -> float:
    started = time.monotonic()
    write(collection)
    return time.monotonic() - started


# ----- copies of a collection ----------------------------------------------------------------------


def copy_config_body(info: dict[str, Any]) -> dict[str, Any]:
    """A create-collection body configured like ``info``: vectors, sparse vectors, HNSW, quantization and
    the collection's own metadata."""
    config = info.get("config") or {}
    params = config.get("params") or {}
    body = (read_vector_config(info) or VectorConfig()).create_body()
    if params.get("on_disk_payload") is not None:
        body["on_disk_payload"] = params["on_disk_payload"]
    body.update({key: config[key] for key in ("hnsw_config", "quantization_config", "metadata") if config.get(key)})
    return body


def payload_indexes(info: dict[str, Any]) -> dict[str, Any]:
    """Field -> index schema (its params, which name the type, when the server gave them)."""
    schema = info.get("payload_schema") or {}
    return {field: index.get("params") or index.get("data_type") for field, index in schema.items()}


def create_like(http: Any, name: str, info: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
    """Create ``name`` configured like ``info``, with the same payload indexes."""
    body = copy_config_body(info)
    if metadata:
        body["metadata"] = {**(body.get("metadata") or {}), **metadata}
    http.create_collection(name, body)
    for field, schema in payload_indexes(info).items():
        http.create_payload_index(name, field, schema)


# ----- replacing a plain collection's points -------------------------------------------------------


def replace_points(
    http: Any, source: str, target: str, batch_size: int = _PAGE, write_method: str = "auto"
) -> int:
    """Make ``target``'s points those of ``source``: upsert every source point, then delete the rest.

    Both steps are idempotent, so a run stopped in between and repeated ends in the same state. The upserts
    go the way the writer's ``write_method`` says (``PUT .../points``, or ``POST .../points/batch``; ``auto``
    moves to the latter on a 405), so a server or proxy that refuses one sees only the other. Returns the
    number of points copied.
    """
    via_batch = write_method == "post"
    kept: set[Any] = set()
    for points in _pages(http, source, {"with_payload": True, "with_vector": True}, batch_size):
        body = {"points": [_point_struct(point) for point in points]}
        ids = [point["id"] for point in points]
        if not via_batch:
            try:
                http.upsert(target, body, point_ids=ids)
            except QdrantError as error:
                if error.status != 405 or write_method != "auto":
                    raise
                via_batch = True
        if via_batch:
            http.batch_update(target, {"operations": [{"upsert": body}]}, point_ids=ids)
        kept.update(ids)
    stale: list[Any] = []
    for points in _pages(http, target, {"with_payload": False, "with_vector": False}, _DELETE_BATCH):
        stale.extend(point["id"] for point in points if point["id"] not in kept)
        if len(stale) >= _DELETE_BATCH:
            http.delete_points(target, {"points": stale}, wait=True)
            stale = []
    if stale:
        http.delete_points(target, {"points": stale}, wait=True)
    return len(kept)


def _point_struct(point: dict[str, Any]) -> dict[str, Any]:
    struct = {"id": point["id"], "payload": point.get("payload") or {}}
    if point.get("vector") is not None:
        struct["vector"] = point["vector"]
    return struct


def _pages(http: Any, collection: str, request: dict[str, Any], limit: int) -> Iterator[list[dict[str, Any]]]:
    for page in scroll_pages(http, collection, page_size=limit, **request):
        yield page.points


__all__ = [
    # the lifecycle
    "Log",
    "PartitionReplacement",
    "QdrantCollections",
    "Replacement",
    "WritePoints",
    "copy_config_body",
    "create_like",
    "partition_filter",
    "payload_indexes",
    "replace_points",
]
