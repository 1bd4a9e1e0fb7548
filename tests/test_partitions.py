"""Read splits (Spark's input partitions) are disjoint and together complete: hash slices (Qdrant 1.19+)
and id ranges (older)."""

from __future__ import annotations

import json
import random
import threading
import uuid

import pytest
from pyspark.sql import functions as F

from dagster_qdrant.spark.datasource import QdrantDataSource
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions
from dagster_qdrant.points.scroll import id_order
from dagster_qdrant.spark.read_ahead import read_ahead
from dagster_qdrant.spark.read_splits import (
    ReadSplit,
    id_range_splits,
    partition_filter,
    slice_splits,
    supports_slice,
)

INTEGER_IDS = list(range(1, 81)) + [2**40, 2**63 + 5]
_RANDOM = random.Random(7)
UUID_IDS = sorted(str(uuid.UUID(int=_RANDOM.getrandbits(128))) for _ in range(70))


def test_scroll_order_puts_every_integer_id_before_every_uuid() -> None:
    ids = [UUID_IDS[3], 2**64 - 1, 5, UUID_IDS[0], 0]
    assert sorted(ids, key=id_order) == [0, 5, 2**64 - 1, UUID_IDS[0], UUID_IDS[3]]


def test_slices_are_used_from_qdrant_1_19() -> None:
    assert supports_slice((1, 19, 0)) and supports_slice((2, 0, 0))
    assert not supports_slice((1, 18, 3))


def test_a_slice_partition_adds_its_slice_to_the_reads_filter() -> None:
    user = {"must": [{"key": "a", "match": {"value": 1}}]}
    partition = slice_splits(3)[2]
    assert partition_filter(partition, None) == {"must": [{"slice": {"total": 3, "index": 2}}]}
    assert partition_filter(partition, user) == {"must": [user, {"slice": {"total": 3, "index": 2}}]}
    assert partition_filter(ReadSplit(index=0, start=1, end=5), user) == user


# --- against the server -----------------------------------------------------------------------------


def _http(qdrant_url: str, api_key: str | None) -> QdrantHttp:
    return QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=api_key))


def _fill(http: QdrantHttp, collection: str, ids: list) -> None:
    http.create_collection(collection, {"vectors": {"size": 2, "distance": "Dot"}})
    points = [{"id": point_id, "vector": [1.0, float(n)], "payload": {"n": n}} for n, point_id in enumerate(ids)]
    http.upsert(collection, {"points": points}, wait=True)


def _read_partitions(qdrant_url: str, collection: str, mode: str, count: int, **extra: str) -> list[list]:
    """The ids each partition reads, through the data source's own reader."""
    options = {"endpoint": qdrant_url, "collection": collection, "num_partitions": str(count),
               "partitioning": mode, "page_size": "7", **extra}
    source = QdrantDataSource(options)
    reader = source.reader(source.schema())
    partitions = reader.partitions()
    return [[row["id"] for batch in reader.read(p) for row in batch.to_pylist()] for p in partitions]


@pytest.mark.parametrize("mode", ["slice", "id_range"])
@pytest.mark.parametrize("ids", [INTEGER_IDS, UUID_IDS, INTEGER_IDS[:30] + UUID_IDS[:30]], ids=["int", "uuid", "mixed"])
def test_partitions_are_disjoint_and_complete(qdrant_url, qdrant_api_key, collection_name, mode, ids) -> None:
    _fill(_http(qdrant_url, qdrant_api_key), collection_name, ids)
    parts = _read_partitions(qdrant_url, collection_name, mode, 4)
    assert len(parts) == 4
    read = [str(point_id) for part in parts for point_id in part]
    assert len(read) == len(set(read)), "a point was read by two partitions"
    assert sorted(read) == sorted(str(point_id) for point_id in ids)
    assert sum(1 for part in parts if part) >= 3, "partitions should share the work"


def test_id_ranges_are_balanced_and_half_open(qdrant_url, qdrant_api_key, collection_name) -> None:
    http = _http(qdrant_url, qdrant_api_key)
    _fill(http, collection_name, list(range(100)))
    partitions = id_range_splits(http, collection_name, None, 4)
    assert [(p.start, p.end) for p in partitions] == [(None, 25), (25, 50), (50, 75), (75, None)]


def test_id_ranges_follow_the_reads_filter(qdrant_url, qdrant_api_key, collection_name) -> None:
    http = _http(qdrant_url, qdrant_api_key)
    _fill(http, collection_name, list(range(100)))
    query = {"must": [{"key": "n", "range": {"gte": 60}}]}
    partitions = id_range_splits(http, collection_name, query, 2)
    assert [(p.start, p.end) for p in partitions] == [(None, 80), (80, None)]


def test_limit_offset_and_max_pages_read_one_partition_in_scroll_order(qdrant_url, qdrant_api_key, collection_name) -> None:
    _fill(_http(qdrant_url, qdrant_api_key), collection_name, list(range(50)))
    assert _read_partitions(qdrant_url, collection_name, "auto", 4, limit="10", offset="5") == [list(range(5, 15))]
    assert _read_partitions(qdrant_url, collection_name, "auto", 4, max_pages="2") == [list(range(14))]
    limited = _read_partitions(qdrant_url, collection_name, "auto", 4, limit="20", max_pages="2")
    assert limited == [list(range(14))]


def test_spark_reads_every_point_once_across_tasks(spark, qdrant_url, qdrant_api_key, collection_name) -> None:
    _fill(_http(qdrant_url, qdrant_api_key), collection_name, UUID_IDS)
    for mode in ("slice", "id_range"):
        df = (
            spark.read.format("qdrant")
            .option("qdrant.config", json.dumps({"endpoint": qdrant_url, "collection": collection_name,
                                                 "num_partitions": 3, "page_size": 10}))
            .option("partitioning", mode)
            .load()
        )
        assert df.rdd.getNumPartitions() == 3
        rows = df.select("id", F.spark_partition_id().alias("task")).collect()
        assert sorted(row.id for row in rows) == UUID_IDS
        assert len({row.task for row in rows}) == 3


def test_default_partitions_follow_spark_default_parallelism(spark, qdrant_url, qdrant_api_key, collection_name) -> None:
    _fill(_http(qdrant_url, qdrant_api_key), collection_name, INTEGER_IDS)
    df = spark.read.format("qdrant").option("endpoint", qdrant_url).load(collection_name)
    assert df.rdd.getNumPartitions() == spark.sparkContext.defaultParallelism
    assert df.count() == len(INTEGER_IDS)


def test_an_unknown_partitioning_mode_is_refused() -> None:
    source = QdrantDataSource({"endpoint": "http://localhost:1", "collection": "c", "partitioning": "hash"})
    with pytest.raises(ValueError, match="partitioning"):
        source.reader(None)  # type: ignore[arg-type]


def test_read_ahead_yields_every_page_in_order_and_raises_where_the_scroll_failed() -> None:
    def pages():
        yield from ([index] for index in range(5))
        raise ConnectionError("server went away after page 4")

    seen = []
    with pytest.raises(ConnectionError, match="after page 4"):
        for page in read_ahead(pages()):
            seen.append(page)
    assert seen == [[0], [1], [2], [3], [4]]


def test_read_ahead_stops_fetching_when_the_reader_stops_early() -> None:
    fetched = []

    def pages():
        for index in range(1000):
            fetched.append(index)
            yield index

    before = set(threading.enumerate())
    reader = read_ahead(pages(), depth=2)
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    (fetcher,) = {thread for thread in set(threading.enumerate()) - before if thread.name == "qdrant-read-ahead"}
    reader.close()
    fetcher.join(timeout=10)
    assert not fetcher.is_alive(), "the fetching thread must stop once the reader is closed"
    assert len(fetched) <= 3 + 2 + 1, "the fetching thread keeps at most depth pages ahead, then stops"
