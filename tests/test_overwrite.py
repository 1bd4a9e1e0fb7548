"""mode("overwrite") and the settling of a Spark write: nothing is lost, mixed or silently changed.

Every check reads the server directly over plain REST (``faultproxy.server_points``), bypassing the
library, and compares with the input values: the points that were there before a refused or killed
overwrite, the new rows after a successful one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from faultproxy import FaultProxy, free_port, server_count, server_points

from dagster_qdrant import collection_versions as lifecycle
from dagster_qdrant.errors import QdrantWriteError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import WriteOptions, build_qdrant_write_config
from dagster_qdrant.spark.write_commit import WrittenIds, distinct_ids, repeated_ids
from dagster_qdrant.points.without_spark import write_qdrant_points

DIMENSION = 8
SCHEMA = "id long, row long, title string, vector array<float>"
UPSERT_PATH = r"/collections/[^/]+/points(\?|$)"


def rows(count: int, *, start: int = 0, seed: int = 0, tag: str = "old", size: int = DIMENSION) -> list[tuple]:
    """(id, row, title, vector) with float32-exact vectors, so a round trip compares exactly."""
    vectors = np.random.default_rng(seed).standard_normal((count, size)).astype(np.float32)
    return [(start + i, start + i, f"{tag} {start + i}", [float(v) for v in vectors[i]]) for i in range(count)]


def records(data: list[tuple]) -> list[dict[str, Any]]:
    return [{"id": i, "row": r, "title": t, "vector": v} for i, r, t, v in data]


def config(url: str, collection: str, **options: Any) -> str:
    settings = {"endpoint": url, "collection": collection, "distance": "Dot", "batch_size": 64, **options}
    return json.dumps(settings)


def spark_write(spark: Any, data: list[tuple], url: str, collection: str, mode: str, partitions: int = 2, **options: Any) -> None:
    frame = spark.sparkContext.parallelize(data, partitions).toDF(SCHEMA)
    frame.write.format("qdrant").option("qdrant.config", config(url, collection, **options)).mode(mode).save()


def seed_collection(url: str, collection: str, data: list[tuple]) -> None:
    write_qdrant_points(records(data), build_qdrant_write_config(url, collection, create_collection=True, distance="Dot"))


def assert_holds_exactly(url: str, collection: str, data: list[tuple]) -> None:
    """The server holds these rows and nothing else: ids, payloads and vectors as written."""
    points = server_points(url, collection)
    assert sorted(points) == sorted(row[0] for row in data), f"{len(points)} points for {len(data)} rows"
    for point_id, number, title, vector in data:
        point = points[point_id]
        assert point["payload"] == {"row": number, "title": title}
        np.testing.assert_array_equal(np.float32(point["vector"]), np.float32(vector))


def versions(url: str, base: str) -> list[str]:
    names = [c["name"] for c in requests.get(f"{url}/collections", timeout=10).json()["result"]["collections"]]
    return [name for name in names if lifecycle.parse_version(base, name) is not None]


def wait_for(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# --- refused, killed: the target keeps what it had ------------------------------------------------


def test_a_refused_overwrite_keeps_every_point_unchanged(spark: Any, qdrant_url: str, collection_name: str) -> None:
    old = rows(1000, seed=1)
    seed_collection(qdrant_url, collection_name, old)
    wrong_size = rows(1000, start=5000, seed=2, tag="new", size=DIMENSION - 3)
    with pytest.raises(Exception) as refused:
        spark_write(spark, wrong_size, qdrant_url, collection_name, "overwrite")
    text = str(refused.value)
    assert "size 5" in text and "rolled back" in text and "unchanged" in text, text[-2000:]
    assert_holds_exactly(qdrant_url, collection_name, old)
    assert versions(qdrant_url, collection_name) == [], "the staging collection was dropped"


def test_a_killed_overwrite_keeps_the_old_points_whole(spark: Any, tmp_path: Path, collection_name: str) -> None:
    """kill -9 of the embedded server while the overwrite's tasks write; it stays down until the write failed."""
    from dagster_qdrant.embedded import start_embedded_qdrant

    port, data = free_port(), tmp_path / "qdrant"
    server = start_embedded_qdrant(data, port=port)
    old, new = rows(1000, seed=3), rows(4000, start=500, seed=4, tag="new")
    seed_collection(server.url, collection_name, old)
    failure: list[BaseException] = []
    with FaultProxy(server.url, methods=("PUT",), path_pattern=UPSERT_PATH, rates={"slow": 1.0}, slow_seconds=0.02) as pacer:

        def overwrite() -> None:
            try:
                spark_write(spark, new, pacer.url, collection_name, "overwrite", batch_size=25, max_retries=1,
                            backoff_factor=0.05, timeout=5)
            except BaseException as error:  # noqa: BLE001 - handed to the test thread
                failure.append(error)

        writer = threading.Thread(target=overwrite)
        writer.start()

        def staged_enough() -> bool:
            staged = versions(server.url, collection_name)
            return bool(staged) and server_count(server.url, staged[0]) >= 400

        wait_for(staged_enough, "the overwrite to stage 400 points")
        assert writer.is_alive(), "the write finished before the kill: make it longer"
        server.kill()
        writer.join(timeout=300)
        assert not writer.is_alive() and failure, "the write should fail while the server is down"
    assert "could not be reached" in str(failure[0]) or "rolled back" in str(failure[0]), str(failure[0])[-2000:]
    server = start_embedded_qdrant(data, port=port)
    try:
        assert_holds_exactly(server.url, collection_name, old)
        assert len(versions(server.url, collection_name)) == 1, "the staging collection outlived the server"
        spark_write(spark, new, server.url, collection_name, "overwrite")
        assert_holds_exactly(server.url, collection_name, new)
        assert versions(server.url, collection_name) == [], "the next overwrite swept the given-up staging"
    finally:
        server.stop()


# --- readers during an overwrite --------------------------------------------------------------------


def _count_while(url: str, collection: str, action: Any) -> list[int]:
    """Counts of ``collection`` (plain REST) taken again and again while ``action`` runs."""
    seen: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                response = session.post(f"{url}/collections/{collection}/points/count", json={"exact": True}, timeout=10)
                seen.append(response.json()["result"]["count"] if response.ok else -1)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        action()
    finally:
        stop.set()
        reader.join()
    return seen


def test_readers_during_an_overwrite_never_see_fewer_points_than_old_or_new(
    spark: Any, qdrant_url: str, collection_name: str
) -> None:
    old, new = rows(400, seed=5), rows(300, start=200, seed=6, tag="new")
    seed_collection(qdrant_url, collection_name, old)
    seen = _count_while(
        qdrant_url, collection_name,
        lambda: spark_write(spark, new, qdrant_url, collection_name, "overwrite", batch_size=10, max_in_flight=1),
    )
    assert len(seen) > 10, "the reader should have counted many times during the write"
    assert min(seen) >= 300 and max(seen) <= 500, f"a reader saw {sorted(set(seen))}"
    assert_holds_exactly(qdrant_url, collection_name, new)


def test_readers_during_an_overwrite_of_an_alias_see_old_or_new_never_a_mix(
    spark: Any, qdrant_url: str, collection_name: str
) -> None:
    old, new = rows(400, seed=7), rows(300, start=200, seed=8, tag="new")
    first = f"{collection_name}_v1"
    seed_collection(qdrant_url, first, old)
    http = QdrantHttp(WriteOptions.from_mapping({"endpoint": qdrant_url, "collection": first}))
    http.update_aliases([{"create_alias": {"collection_name": first, "alias_name": collection_name}}])
    seen = _count_while(
        qdrant_url, collection_name,
        lambda: spark_write(spark, new, qdrant_url, collection_name, "overwrite", batch_size=10, max_in_flight=1),
    )
    assert len(seen) > 10
    assert set(seen) <= {400, 300}, f"a reader saw {sorted(set(seen))}"
    assert_holds_exactly(qdrant_url, collection_name, new)
    assert not http.collection_exists(first), "the replaced collection is dropped"
    serving = lifecycle.alias_target(http, collection_name)
    assert versions(qdrant_url, collection_name) == [serving]


def test_an_overwrite_keeps_the_targets_configuration_and_payload_indexes(
    spark: Any, qdrant_url: str, collection_name: str
) -> None:
    seed_collection(qdrant_url, collection_name, rows(50, seed=9))
    http = QdrantHttp(WriteOptions.from_mapping({"endpoint": qdrant_url, "collection": collection_name}))
    http.create_payload_index(collection_name, "title", "keyword")
    before = http.collection_info(collection_name)
    spark_write(spark, rows(20, start=100, seed=10, tag="new"), qdrant_url, collection_name, "overwrite")
    after = http.collection_info(collection_name)
    assert after["config"]["params"]["vectors"] == before["config"]["params"]["vectors"]
    assert set(after["payload_schema"]) == {"title"}
    assert server_count(qdrant_url, collection_name) == 20


# --- duplicate ids: one outcome, however Spark split the rows -------------------------------------


@pytest.mark.parametrize("partitions", [1, 4])
def test_duplicate_ids_are_refused_whatever_the_partitioning(
    spark: Any, qdrant_url: str, collection_name: str, partitions: int
) -> None:
    data = rows(200, seed=11, tag="new")
    data.append((0, 999, "the same id again", data[0][3]))  # first and last row: apart once split in 4
    with pytest.raises(Exception) as appended:
        spark_write(spark, data, qdrant_url, collection_name, "append", partitions=partitions, create_collection=True)
    text = str(appended.value)
    assert "Duplicate ids" in text and "[0]" in text, text[-2000:]
    landed = int(text.split(" points landed in")[0].rsplit(" ", 1)[1])
    held = server_count(qdrant_url, collection_name) if lifecycle_exists(qdrant_url, collection_name) else 0
    assert landed == held, f"the error says {landed} points landed, the server holds {held}"

    target = f"{collection_name}_o"
    old = rows(50, start=1000, seed=12)
    seed_collection(qdrant_url, target, old)
    with pytest.raises(Exception) as overwritten:
        spark_write(spark, data, qdrant_url, target, "overwrite", partitions=partitions)
    assert "Duplicate ids" in str(overwritten.value) and "unchanged" in str(overwritten.value)
    assert_holds_exactly(qdrant_url, target, old)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(st.integers(0, 2**64 - 1), st.uuids().map(str)), unique=True, max_size=30), max_size=6))
def test_ids_written_by_two_tasks_are_found_exactly(tasks: list[list[Any]]) -> None:
    """The driver's check against a plain count of the ids (each task's own ids are distinct)."""
    parts = [WrittenIds.of(ids) for ids in tasks]
    counts = Counter(point_id for ids in tasks for point_id in ids)
    assert sorted(map(str, repeated_ids(parts))) == sorted(str(i) for i, n in counts.items() if n > 1)
    assert distinct_ids(parts) == len(counts)


def lifecycle_exists(url: str, collection: str) -> bool:
    return requests.get(f"{url}/collections/{collection}/exists", timeout=10).json()["result"]["exists"]


# --- partial writes: the error says what landed ---------------------------------------------------


def test_an_aborted_write_states_how_many_points_landed(spark: Any, qdrant_url: str, collection_name: str) -> None:
    data = rows(10_000, seed=13, size=4)
    data[7000] = (7000, 7000, "wrong size", [1.0, 2.0, 3.0])
    with pytest.raises(Exception) as failed:
        spark_write(spark, data, qdrant_url, collection_name, "append", partitions=2, create_collection=True,
                    batch_size=256)
    text = str(failed.value)
    assert "7000" in text and "sizes ([3, 4]" in text, text[-2000:]
    landed = int(text.split(" points landed in")[0].rsplit(" ", 1)[1])
    held = server_count(qdrant_url, collection_name)
    assert landed == held and 5000 <= held < 10_000, text[-2000:]


def test_a_bad_value_mid_stream_does_not_claim_the_rest_was_written(qdrant_url: str, collection_name: str) -> None:
    data = records(rows(3000, seed=14))
    data[2500]["vector"] = [float("nan")] * DIMENSION

    def stream():
        yield from data

    options = build_qdrant_write_config(qdrant_url, collection_name, create_collection=True, distance="Dot",
                                        batch_size=100, max_in_flight=1)
    with pytest.raises(QdrantWriteError) as stopped:
        write_qdrant_points(stream(), options)
    error = stopped.value
    held = server_count(qdrant_url, collection_name)
    assert error.written == held
    assert error.unread_from is not None and error.written + error.failed == error.unread_from, str(error)
    assert f"no row from row {error.unread_from} on was written" in str(error)
    assert error.failed or "0 points not written" not in str(error), str(error)


# --- the sweep: displaced and dead versions go, live ones stay ------------------------------------


def _dead_pid() -> int:
    """A pid that ran and is gone (a child we waited for)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_the_sweep_drops_displaced_and_dead_versions_and_keeps_live_ones(qdrant_url: str, collection_name: str) -> None:
    http = QdrantHttp(WriteOptions.from_mapping({"endpoint": qdrant_url, "collection": collection_name}))
    here = lifecycle.host_key()
    body = {"vectors": {"size": 2, "distance": "Dot"}}
    made = {
        "served": lifecycle.new_version_name(collection_name, owner=lifecycle.Owner(here, os.getpid())),
        "displaced": lifecycle.new_version_name(collection_name, owner=lifecycle.Owner(here, os.getpid())),
        "live": lifecycle.new_version_name(collection_name, owner=lifecycle.Owner(here, os.getpid())),
        "dead": lifecycle.new_version_name(collection_name, owner=lifecycle.Owner(here, _dead_pid())),
        "reused_pid": lifecycle.new_version_name(collection_name, owner=lifecycle.Owner(here, 1), now=946684800.0),
        "remote_fresh": lifecycle.new_version_name(collection_name, owner=lifecycle.Owner("ffffffff", 1)),
        "remote_stale": lifecycle.new_version_name(collection_name, owner=lifecycle.Owner("ffffffff", 1), now=time.time() - 7200),
        "unowned_stale": lifecycle.new_version_name(collection_name, now=time.time() - 7200),
    }
    for name in made.values():
        http.create_collection(name, body)
    unrelated = f"{collection_name}__mine"
    http.create_collection(unrelated, body)
    lifecycle.swap_alias(http, collection_name, made["displaced"])
    lifecycle.swap_alias(http, collection_name, made["served"])
    dropped = lifecycle.sweep(http, collection_name, stale_after=3600)
    expected = {"displaced", "dead", "remote_stale", "unowned_stale"}
    if lifecycle.process_started_after(1, 0) is not None:
        expected.add("reused_pid")  # pid 1 started long after that version's stamp: not its owner
    assert sorted(dropped) == sorted(made[key] for key in expected)
    remaining = set(http.list_collections())
    assert {made["served"], made["live"], made["remote_fresh"], unrelated} <= remaining
    assert lifecycle.alias_target(http, collection_name) == made["served"]


def test_a_dead_writers_staging_collection_is_swept_by_the_next_overwrite(
    spark: Any, qdrant_url: str, collection_name: str
) -> None:
    seed_collection(qdrant_url, collection_name, rows(30, seed=15))
    http = QdrantHttp(WriteOptions.from_mapping({"endpoint": qdrant_url, "collection": collection_name}))
    dead = lifecycle.new_version_name(collection_name, owner=lifecycle.Owner(lifecycle.host_key(), _dead_pid()))
    http.create_collection(dead, {"vectors": {"size": DIMENSION, "distance": "Dot"}})
    new = rows(10, start=100, seed=16, tag="new")
    spark_write(spark, new, qdrant_url, collection_name, "overwrite")
    assert not http.collection_exists(dead)
    assert versions(qdrant_url, collection_name) == []
    assert_holds_exactly(qdrant_url, collection_name, new)
