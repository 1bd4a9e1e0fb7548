"""The ceiling of the HTTP path on this machine: the least work a client can do per point.

Write: columnar ``{"batch": {...}}`` bodies are encoded with orjson before the clock starts, then sent with
``http.client`` on one kept-alive connection per sender thread, as many senders as help. Read: scroll with
large pages, the id space split between a few concurrent streams, every response decoded as cheaply as a
client that uses the data can: simdjson's parse, then each point's id, payload and vector, the vector copied
out as one float buffer (orjson, which makes a Python float of every number, costs about twice as much).
The best of a few settings, tried on a sample first (``tune_write``, ``tune_read``), is the ceiling.
"""

from __future__ import annotations

import http.client
import queue
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson
import pyarrow as pa
import simdjson

from benchmarks.data import Dataset, columns
from benchmarks.measure import READ, WRITE, Result, timed
from benchmarks.server import Target

WRITE_SETTINGS = [(batch, senders) for batch in (128, 512, 2048) for senders in (1, 2, 4, 8)]
READ_SETTINGS = [(page, streams) for page in (256, 1024, 4096) for streams in (1, 2, 4)]


class Connection:
    """One kept-alive HTTP/1.1 connection to the server (no retries: the ceiling must not need them)."""

    def __init__(self, target: Target) -> None:
        parts = urlsplit(target.url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        self.headers = {"content-type": "application/json"}
        if target.api_key:
            self.headers["api-key"] = target.api_key

    def call(self, method: str, path: str, body: bytes) -> bytes:
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} -> {response.status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        self.connection.close()


def encode_bodies(table: pa.Table, batch_points: int) -> list[bytes]:
    """Upsert bodies in the column form, ``batch_points`` points each."""
    bodies = []
    for batch in table.to_batches(max_chunksize=batch_points):
        ids, vectors, payloads = columns(batch)
        body = {"batch": {"ids": ids, "vectors": vectors, "payloads": payloads}}
        bodies.append(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY))
    return bodies


def _in_parallel(workers: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as error:  # surfaced below, in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def send_bodies(target: Target, collection: str, bodies: list[bytes], senders: int) -> None:
    """PUT every body with ``senders`` connections, each taking the next body as soon as it is free."""
    pending: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in bodies:
        pending.put(body)
    path = f"/collections/{collection}/points?wait=true"

    def sender(_: int) -> None:
        connection = Connection(target)
        try:
            while True:
                try:
                    body = pending.get_nowait()
                except queue.Empty:
                    return
                connection.call("PUT", path, body)
        finally:
            connection.close()

    _in_parallel(senders, sender)


def scroll_range(target: Target, collection: str, low: int, high: int | None, page: int) -> int:
    """Scroll ids in ``[low, high)`` with pages of ``page``; returns how many points came back."""
    connection = Connection(target)
    path = f"/collections/{collection}/points/scroll"
    seen = 0
    offset: int | None = low
    try:
        while offset is not None:
            body = orjson.dumps({"offset": offset, "limit": page, "with_payload": True, "with_vector": True})
            ids, offset = decode_page(connection.call("POST", path, body))
            seen += len(ids) if high is None else sum(1 for point_id in ids if point_id < high)
            if high is not None and offset is not None and offset >= high:
                offset = None
    finally:
        connection.close()
    return seen


def decode_page(content: bytes) -> tuple[list[int], int | None]:
    """A scroll page's ids and next offset, its payloads and vectors decoded too (and dropped)."""
    result = simdjson.Parser().parse(content)["result"]
    ids = []
    for point in result["points"]:
        ids.append(point["id"])
        point["payload"].as_dict()
        point["vector"].as_buffer(of_type="d")
    return ids, result.get("next_page_offset")


def scroll_all(target: Target, collection: str, points: int, page: int, streams: int) -> int:
    """Read ids ``0 .. points-1`` split into ``streams`` contiguous ranges read concurrently."""
    bounds = np.linspace(0, points, streams + 1).astype(int).tolist()
    counts = [0] * streams

    def stream(index: int) -> None:
        high = None if index == streams - 1 else bounds[index + 1]
        counts[index] = scroll_range(target, collection, bounds[index], high, page)

    _in_parallel(streams, stream)
    return sum(counts)


def tune_write(
    target: Target, dataset: Dataset, table: pa.Table, collection: str, tune_points: int
) -> dict[str, Any]:
    """The fastest (batch, senders) pair on the first ``tune_points`` rows, and every trial."""
    trials = []
    sample = table.slice(0, min(tune_points, dataset.points))
    for batch_points, senders in WRITE_SETTINGS:
        bodies = encode_bodies(sample, batch_points)
        target.create_collection(collection, dataset.dim)
        started = time.perf_counter()
        send_bodies(target, collection, bodies, senders)
        seconds = time.perf_counter() - started
        trials.append({"batch": batch_points, "senders": senders, "points_per_second": sample.num_rows / seconds})
    best = max(trials, key=lambda trial: trial["points_per_second"])
    return {"batch": best["batch"], "senders": best["senders"], "trials": trials, "tune_points": sample.num_rows}


def measure_write(
    target: Target, dataset: Dataset, table: pa.Table, collection: str, tuned: dict[str, Any]
) -> Result:
    """Write every row into a fresh ``collection`` with the tuned (batch, senders) pair."""
    started = time.perf_counter()
    bodies = encode_bodies(table, tuned["batch"])
    encode_seconds = time.perf_counter() - started
    target.create_collection(collection, dataset.dim)
    settings = {"batch": tuned["batch"], "senders": tuned["senders"], "pre_encoded": True}
    result = timed(
        "http ceiling",
        WRITE,
        lambda: send_bodies(target, collection, bodies, tuned["senders"]) or dataset.points,
        server_pid=target.pid,
        settings=settings,
    )
    result.verified = target.count(collection) == dataset.points
    result.details = {
        "encode_seconds": round(encode_seconds, 3),
        "encode_points_per_second": round(dataset.points / encode_seconds, 1),
        "body_mb": round(sum(len(body) for body in bodies) / 1e6, 1),
    }
    return result


def tune_read(target: Target, dataset: Dataset, collection: str, tune_points: int) -> dict[str, Any]:
    """The fastest (page, streams) pair on the first ``tune_points`` ids, and every trial."""
    trials = []
    sample = min(tune_points, dataset.points)
    for page, streams in READ_SETTINGS:
        started = time.perf_counter()
        seen = scroll_all_prefix(target, collection, sample, page, streams)
        seconds = time.perf_counter() - started
        trials.append({"page": page, "streams": streams, "points_per_second": seen / seconds})
    best = max(trials, key=lambda trial: trial["points_per_second"])
    return {"page": best["page"], "streams": best["streams"], "trials": trials, "tune_points": sample}


def measure_read(target: Target, dataset: Dataset, collection: str, tuned: dict[str, Any]) -> Result:
    """Scroll the whole collection with the tuned (page, streams) pair."""
    result = timed(
        "http ceiling",
        READ,
        lambda: scroll_all(target, collection, dataset.points, tuned["page"], tuned["streams"]),
        server_pid=target.pid,
        settings={"page": tuned["page"], "streams": tuned["streams"]},
    )
    result.verified = result.points == dataset.points
    return result


def scroll_all_prefix(target: Target, collection: str, points: int, page: int, streams: int) -> int:
    """Like ``scroll_all`` but the last stream also stops at ``points`` (for tuning on a prefix)."""
    bounds = np.linspace(0, points, streams + 1).astype(int).tolist()
    counts = [0] * streams

    def stream(index: int) -> None:
        counts[index] = scroll_range(target, collection, bounds[index], bounds[index + 1], page)

    _in_parallel(streams, stream)
    return sum(counts)
