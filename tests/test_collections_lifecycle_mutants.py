"""``QdrantCollections`` (dagster_qdrant/collections.py) against the embedded server's handlers in this process.

Each test drives one lifecycle operation directly, so that mutation testing (which starts no server
process) runs it; docs/mutation.md lists what each one kills. References: qdrant-client over REST (it
writes the points and reads back collections, aliases and payload indexes), the input values (names,
keys, owners, the time measured around each call), and the OpenAPI spec for request fields (``exact`` of
a count, ``wait`` of a delete).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from qdrant_client import models
from reference_client import official_client
from waiting import wait_until

from dagster_qdrant import collection_versions as versions
from dagster_qdrant import collections as lifecycle
from dagster_qdrant.collection_versions import Owner, swap_alias
from dagster_qdrant.errors import QdrantError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions


class Recorded:
    """A ``Log`` that keeps every line, with its level."""

    def __init__(self, on_info: Callable[[str], None] | None = None) -> None:
        self.lines: list[tuple[str, str]] = []
        self.on_info = on_info

    def info(self, msg: str) -> None:
        msg = str(msg)  # as logging does: the text is not what these tests check
        self.lines.append(("info", msg))
        if self.on_info is not None:
            self.on_info(msg)

    def warning(self, msg: str) -> None:
        self.lines.append(("warning", str(msg)))

    def warnings(self) -> list[str]:
        return [msg for level, msg in self.lines if level == "warning"]


@pytest.fixture(scope="module")
def url(in_process_qdrant_url: str) -> str:
    return in_process_qdrant_url


@pytest.fixture
def client(url: str) -> Iterator[Any]:
    reference = official_client(url, None)
    yield reference
    reference.close()


@pytest.fixture
def requests(url: str) -> Iterator[tuple[QdrantHttp, list[tuple[str, str, Any, Any]]]]:
    """A ``QdrantHttp`` that records (method, path, body, params) of every request it sends."""
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    seen: list[tuple[str, str, Any, Any]] = []
    send = http.request

    def recording(method: str, path: str, body: Any = None, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        seen.append((method, path, body, params))
        return send(method, path, body, params, *args, **kwargs)

    http.request = recording  # type: ignore[method-assign]
    yield http, seen
    http.close() if hasattr(http, "close") else None


def _name() -> str:
    return "life_" + uuid.uuid4().hex[:10]


def _writer(client: Any, points: list[tuple[int, dict[str, Any]]], after: Callable[[], None] | None = None):
    """Writes the given points (id, payload) with qdrant-client, creating the collection when missing."""

    def write(collection: str) -> None:
        if points:
            if not client.collection_exists(collection):
                client.create_collection(collection, models.VectorParams(size=2, distance=models.Distance.DOT))
            client.upsert(
                collection,
                [models.PointStruct(id=i, vector=[float(i), 1.0], payload=p) for i, p in points],
                wait=True,
            )
        if after is not None:
            after()

    return write


def _counts(seen: list[tuple[str, str, Any, Any]]) -> list[Any]:
    return [body for method, path, body, _ in seen if path.endswith("/points/count")]


# ----- replace_partition -------------------------------------------------------------------------------


def test_an_empty_partition_of_a_missing_collection_reports_nothing_written(requests: Any, client: Any) -> None:
    http, _ = requests
    name = _name()
    before = time.monotonic()
    got = lifecycle.QdrantCollections(http, log=Recorded()).replace_partition(name, "part", "2024-01", _writer(client, []))
    elapsed = time.monotonic() - before
    assert (got.collection, got.field, got.key, got.exists) == (name, "part", "2024-01", False)
    assert (got.points, got.partition_points, got.vectors) == (0, 0, None)
    assert isinstance(got.seconds, float) and 0 <= got.seconds <= elapsed
    assert not client.collection_exists(name)


def test_replacing_partitions_reports_the_counts_indexes_the_field_and_asks_exact_counts(
    requests: Any, client: Any
) -> None:
    http, seen = requests
    name = _name()
    collections = lifecycle.QdrantCollections(http, log=Recorded())
    first = collections.replace_partition(name, "part", "a", _writer(client, [(1, {"part": "a"}), (2, {"part": "a"})]))
    assert "part" in client.get_collection(name).payload_schema  # indexed by the first write
    seen.clear()
    before = time.monotonic()
    second = collections.replace_partition(name, "part", "b", _writer(client, [(3, {"part": "b"})]))
    elapsed = time.monotonic() - before
    info = http.collection_info(name)
    assert (second.collection, second.field, second.key, second.exists) == (name, "part", "b", True)
    assert (second.points, second.partition_points) == (3, 1)
    assert first.vectors is not None and second.vectors == lifecycle.read_vector_config(info)
    assert isinstance(second.seconds, float) and 0 <= second.seconds <= elapsed
    # The spec's CountRequest.exact: false is an approximate count; the report is exact.
    assert [body.get("exact") for body in _counts(seen)] == [True, True]
    deletes = [(body, params) for method, path, body, params in seen if path.endswith("/points/delete")]
    assert deletes and all(params.get("wait") == "true" for _, params in deletes)  # the delete lands first


def test_a_partition_write_logs_progress_of_its_own_points(url: str, client: Any) -> None:
    name = _name()
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    log = Recorded()
    collections = lifecycle.QdrantCollections(http, log=log, progress_interval=0.01)
    collections.replace_partition(name, "part", "a", _writer(client, [(i, {"part": "a"}) for i in range(1, 6)]))
    log.lines.clear()

    def until_reported() -> None:
        wait_until(lambda: any(msg.startswith(f"1 points in {name!r}") for _, msg in log.lines), 20, "progress")

    collections.replace_partition(name, "part", "b", _writer(client, [(9, {"part": "b"})], after=until_reported))
    progress = [msg for _, msg in log.lines if f"in {name!r}" in msg and msg.endswith("s")]
    assert progress and all(msg.split()[0] in ("0", "1") for msg in progress)  # never the other partition's


# ----- replace_collection ------------------------------------------------------------------------------


def test_a_replacement_names_run_and_owner_serves_once_and_warns_of_nothing(requests: Any, client: Any) -> None:
    http, seen = requests
    alias = _name()
    log = Recorded()
    collections = lifecycle.QdrantCollections(http, log=log)
    first = collections.replace_collection(alias, _writer(client, [(1, {})]))
    owner = Owner("hostx", 4242)
    seen.clear()
    before = time.monotonic()
    got = collections.replace_collection(alias, _writer(client, [(1, {}), (2, {})]), run="Run7", owner=owner)
    elapsed = time.monotonic() - before
    me = Owner.this_process()
    assert first.version.endswith(f"_h{me.host}p{me.pid}") and "_r" not in first.version[len(alias) :]
    assert re.search(r"_rrun7_hhostxp4242$", got.version)
    assert (got.alias, got.points) == (alias, 2)
    assert isinstance(got.seconds, float) and 0 <= got.seconds <= elapsed
    assert [body.get("exact") for body in _counts(seen)] == [True]
    assert log.warnings() == []  # no plain collection, no concurrent run
    names = {c.name for c in client.get_collections().collections}
    assert first.version not in names and got.version in names
    assert {a.alias_name: a.collection_name for a in client.get_aliases().aliases}[alias] == got.version


def test_a_plain_collection_under_the_name_gives_way_to_the_alias(url: str, client: Any) -> None:
    alias = _name()
    client.create_collection(alias, models.VectorParams(size=2, distance=models.Distance.DOT))
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    log = Recorded()
    got = lifecycle.QdrantCollections(http, log=log).replace_collection(alias, _writer(client, [(5, {"k": 1})]))
    assert len(log.warnings()) == 1 and "plain collection" in log.warnings()[0]
    assert {a.alias_name: a.collection_name for a in client.get_aliases().aliases}[alias] == got.version
    assert [p.id for p in client.scroll(alias, limit=10)[0]] == [5]


def test_a_concurrent_swap_after_serving_is_warned_and_swept(url: str, client: Any) -> None:
    alias = _name()
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    collections = lifecycle.QdrantCollections(http, log=Recorded())
    collections.replace_collection(alias, _writer(client, [(1, {})]))
    rival = versions.new_version_name(alias, owner=Owner.this_process())
    client.create_collection(rival, models.VectorParams(size=2, distance=models.Distance.DOT))
    swapped = threading.Event()

    def rival_swaps(msg: str) -> None:
        if msg.startswith("Dropped the previous version") and not swapped.is_set():
            swapped.set()
            swap_alias(http, alias, rival)

    log = Recorded(on_info=rival_swaps)
    got = lifecycle.QdrantCollections(http, log=log).replace_collection(alias, _writer(client, [(2, {})]))
    assert swapped.is_set()
    assert len(log.warnings()) == 1 and "concurrent" in log.warnings()[0]
    names = {c.name for c in client.get_collections().collections}
    assert rival in names and got.version not in names  # the displaced version is swept at once


def test_the_sweep_after_a_concurrent_swap_uses_the_collections_own_stale_after(url: str, client: Any) -> None:
    # A version of a writer on another host, 120 s old, appears between the two sweeps (when the concurrent
    # swap is noticed): the second sweep drops it by the given stale_after (60 s), not by the default hour.
    alias = _name()
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    lifecycle.QdrantCollections(http, log=Recorded()).replace_collection(alias, _writer(client, [(1, {})]))
    rival = versions.new_version_name(alias, owner=Owner.this_process())
    client.create_collection(rival, models.VectorParams(size=2, distance=models.Distance.DOT))
    foreign = versions.new_version_name(alias, owner=Owner("0badbeef", 1), now=time.time() - 120)

    class Noticing(Recorded):
        def warning(self, msg: str) -> None:
            super().warning(msg)
            if "concurrent" in str(msg):
                client.create_collection(foreign, models.VectorParams(size=2, distance=models.Distance.DOT))

    def rival_swaps(msg: str) -> None:
        if msg.startswith("Dropped the previous version") and not client.collection_exists(foreign):
            swap_alias(http, alias, rival)

    log = Noticing(on_info=rival_swaps)
    lifecycle.QdrantCollections(http, log=log, stale_after=60).replace_collection(alias, _writer(client, [(2, {})]))
    assert len(log.warnings()) == 1 and "concurrent" in log.warnings()[0]
    assert not client.collection_exists(foreign) and client.collection_exists(rival)


def test_a_replacement_sweeps_with_its_own_stale_after(url: str, client: Any) -> None:
    alias = _name()
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    # A never-served version of a writer on another host, 120 s old and without heartbeats: expired after
    # 60 s (the given stale_after), not after the default.
    foreign = versions.new_version_name(alias, owner=Owner("0badbeef", 1), now=time.time() - 120)
    client.create_collection(foreign, models.VectorParams(size=2, distance=models.Distance.DOT))
    lifecycle.QdrantCollections(http, log=Recorded(), stale_after=60).replace_collection(alias, _writer(client, [(1, {})]))
    assert not client.collection_exists(foreign)


def test_a_replacement_drops_what_the_alias_served_even_when_not_one_of_its_versions(url: str, client: Any) -> None:
    alias, by_hand = _name(), _name()
    client.create_collection(by_hand, models.VectorParams(size=2, distance=models.Distance.DOT))
    client.update_collection_aliases(
        [models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=by_hand, alias_name=alias))]
    )
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    lifecycle.QdrantCollections(http, log=Recorded()).replace_collection(alias, _writer(client, [(1, {})]))
    assert not client.collection_exists(by_hand)  # the sweep knows only versions; the swap drops the previous


def test_a_replacement_logs_progress_of_its_version(url: str, client: Any) -> None:
    alias = _name()
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    log = Recorded()
    write = _writer(client, [(1, {}), (2, {})])

    def write_and_wait(collection: str) -> None:
        write(collection)
        wait_until(lambda: any(m.startswith(f"2 points in {collection!r}") for _, m in log.lines), 20, "progress")

    lifecycle.QdrantCollections(http, log=log, progress_interval=0.01).replace_collection(alias, write_and_wait)


def test_an_empty_first_replacement_asks_for_a_collection_without_vectors(requests: Any, client: Any) -> None:
    # Nothing to copy the vectors from: the request is the collection without vectors that qdrant-client
    # sends for a payload-only collection. The embedded server refuses it naming the vectors (its engine
    # holds no collection without one); a real Qdrant creates it.
    http, seen = requests
    alias = _name()
    with pytest.raises(QdrantError, match="at least one vector"):
        lifecycle.QdrantCollections(http, log=Recorded()).replace_collection(alias, _writer(client, []))
    creates = [(path, body) for method, path, body, _ in seen if method == "PUT" and path.startswith("/collections/")]
    assert len(creates) == 1 and creates[0][0].startswith(f"/collections/{alias}")
    assert creates[0][1] == models.CreateCollection(vectors={}).model_dump(exclude_none=True)


def test_a_long_replacement_keeps_its_versions_heartbeat_fresh(url: str, client: Any) -> None:
    alias = _name()
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    write = _writer(client, [(1, {})])

    def heartbeat(collection: str) -> float:
        metadata = client.get_collection(collection).config.metadata or {}
        return float((metadata.get(versions.METADATA_KEY) or {}).get("heartbeat", 0.0))

    def write_and_outlast_two_beats(collection: str) -> None:
        write(collection)
        first = time.time()
        wait_until(lambda: heartbeat(collection) > first, 20, "a heartbeat refreshed while the write runs")

    collections = lifecycle.QdrantCollections(http, log=Recorded(), heartbeat_interval=0.02)
    assert collections.replace_collection(alias, write_and_outlast_two_beats).points == 1


def test_an_unfinished_version_that_cannot_be_dropped_is_left_for_the_next_sweep(url: str, client: Any) -> None:
    alias = _name()
    http = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    written: list[str] = []

    def refuse(collection: str, *args: Any, **kwargs: Any) -> Any:  # a server that fails the delete
        raise QdrantError(f"Service internal error: could not delete collection `{collection}`")

    def fail_midway(collection: str) -> None:
        _writer(client, [(1, {"a": 1})])(collection)
        written.append(collection)
        http.delete_collection = refuse  # type: ignore[method-assign]
        raise RuntimeError("the write failed midway")

    log = Recorded()
    with pytest.raises(RuntimeError, match="the write failed midway"):  # the write's own error, not the delete's
        lifecycle.QdrantCollections(http, log=log).replace_collection(alias, fail_midway)
    (version,) = written
    assert client.collection_exists(version) and versions.is_settled(version)
    assert any(version in line and "could not delete" in line for line in log.warnings())
    # The next replacement sweeps it, though its writer (this process) is alive and the hour is not over.
    fresh = QdrantHttp(ConnectionOptions(endpoint=url, max_retries=0))
    served = lifecycle.QdrantCollections(fresh, log=Recorded()).replace_collection(alias, _writer(client, [(2, {})]))
    assert not client.collection_exists(version) and served.version != version
    assert [point.id for point in client.scroll(alias, limit=10)[0]] == [2]
