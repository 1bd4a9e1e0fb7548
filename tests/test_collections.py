"""The collection lifecycle on plain values: what any DataFrame kind's handler gets from ``collections.py``.

The writers here are plain Python (``write_qdrant_points`` over lists of dicts, no Spark, no Dagster), as a
pandas or Arrow type handler's would be. Reference: the input values themselves: after every generated
sequence of replacements the server holds exactly the points last written for each collection or
partition, read back with qdrant-client over REST. Also the one wording of a missing collection, from
each place that can find it missing.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from dagster_qdrant.collection_versions import alias_target, parse_version
from dagster_qdrant.collections import QdrantCollections
from dagster_qdrant.errors import QdrantNotFoundError
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ReadOptions, WriteOptions
from dagster_qdrant.points.without_spark import write_qdrant_points
from reference_client import official_client, payloads_by_id

SIZE = 3


@pytest.fixture(scope="module")
def qdrant_url(in_process_qdrant_url: str) -> str:
    """The lifecycle runs against the server in this process (no API key), so mutation testing runs it."""
    return in_process_qdrant_url


@pytest.fixture(scope="module")
def qdrant_api_key() -> None:
    return None


@pytest.fixture
def http(qdrant_url: str, qdrant_api_key: str | None) -> QdrantHttp:
    return QdrantHttp(ReadOptions(endpoint=qdrant_url, api_key=qdrant_api_key, collection="unused"))


def rows(ids: list[int], tag: str) -> list[dict[str, Any]]:
    return [{"id": i, "vector": [float(i), 1.0, 0.5], "tag": tag, "n": i * 7} for i in ids]


def writer(qdrant_url: str, qdrant_api_key: str | None, data: list[dict[str, Any]], fail_after: int | None = None):
    """A ``WritePoints``: writes ``data`` into the collection it is given (and then fails, if asked)."""

    def write(collection: str) -> None:
        options = WriteOptions(
            endpoint=qdrant_url, api_key=qdrant_api_key, collection=collection, create_collection=True,
            distance="Dot", batch_size=4,
        )
        write_qdrant_points(data[:fail_after] if fail_after is not None else data, options)
        if fail_after is not None:
            raise RuntimeError("the writer stopped")

    return write


def served(qdrant_url: str, qdrant_api_key: str | None, collection: str) -> dict[Any, dict[str, Any]]:
    return payloads_by_id(official_client(qdrant_url, qdrant_api_key), collection)


def expected(data: list[dict[str, Any]], **extra: Any) -> dict[Any, dict[str, Any]]:
    return {row["id"]: {"tag": row["tag"], "n": row["n"], **extra} for row in data}


def versions(http: QdrantHttp, base: str) -> list[str]:
    return [name for name in http.list_collections() if parse_version(base, name) is not None]


def test_replacing_a_collection_serves_exactly_the_last_written_points(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None, collection_name: str
) -> None:
    """Generated rounds of good, failing and empty writes: the alias always serves the last good one."""
    rng = random.Random(31)
    lifecycle = QdrantCollections(http)
    outcomes = ["good", "good", "good", "fails", "fails", "empty", "empty"]
    rng.shuffle(outcomes)
    last = rows([1, 2], "first")
    lifecycle.replace_collection(collection_name, writer(qdrant_url, qdrant_api_key, last))
    for round_number, outcome in enumerate(outcomes):
        count = 0 if outcome == "empty" else rng.randint(2, 12)
        data = rows(rng.sample(range(1, 200), count), f"round {round_number}")
        if outcome == "fails":
            with pytest.raises(RuntimeError, match="the writer stopped"):
                lifecycle.replace_collection(collection_name, writer(qdrant_url, qdrant_api_key, data, count // 2))
        else:
            replaced = lifecycle.replace_collection(collection_name, writer(qdrant_url, qdrant_api_key, data))
            assert replaced.points == len(data) and alias_target(http, collection_name) == replaced.version
            assert replaced.vectors is not None and replaced.vectors.dense_sizes() == {"": SIZE}, outcome
            last = data
        assert served(qdrant_url, qdrant_api_key, collection_name) == expected(last), outcome
        assert versions(http, collection_name) == [alias_target(http, collection_name)], f"one version ({outcome})"


def test_replacing_partitions_keeps_the_other_partitions_and_indexes_the_field(
    http: QdrantHttp, qdrant_url: str, qdrant_api_key: str | None, collection_name: str
) -> None:
    rng = random.Random(47)
    lifecycle = QdrantCollections(http)
    keys = {"a": 0, "b": 1000, "c": 2000}
    model: dict[str, list[dict[str, Any]]] = {}
    for _ in range(8):
        key = rng.choice(sorted(keys))
        data = [{**row, "_partition": key} for row in rows(rng.sample(range(keys[key], keys[key] + 50), rng.randint(0, 8)), key)]
        replaced = lifecycle.replace_partition(collection_name, "_partition", key, writer(qdrant_url, qdrant_api_key, data))
        if not replaced.exists:
            assert not model and not data and not http.collection_exists(collection_name)
            continue
        model[key] = data
        assert replaced.partition_points == len(data)
        assert replaced.points == sum(len(part) for part in model.values())
        want = {point_id: payload for name, part in model.items() for point_id, payload in expected(part, _partition=name).items()}
        assert served(qdrant_url, qdrant_api_key, collection_name) == want
    info = http.collection_info(collection_name) or {}
    assert (info.get("payload_schema") or {}).get("_partition", {}).get("data_type") == "keyword"


def test_a_missing_collection_has_one_wording_wherever_it_is_found(qdrant_url: str, collection_name: str) -> None:
    """The HTTP client, the writer, the reader's schema inference and the overwrite's staging."""
    from dagster_qdrant.spark.datasource import infer_read_schema
    from dagster_qdrant.spark.write_commit import Staging

    read = ReadOptions(endpoint=qdrant_url, collection=collection_name)
    write = WriteOptions(endpoint=qdrant_url, collection=collection_name, create_collection=False)
    attempts = {
        "http": lambda: QdrantHttp(read).count(collection_name),
        "writer": lambda: write_qdrant_points(rows([1], "x"), write),
        "reader": lambda: infer_read_schema(read),
        "overwrite": lambda: Staging.prepare(write),
    }
    for where, attempt in attempts.items():
        with pytest.raises(QdrantNotFoundError) as raised:
            attempt()
        error = raised.value
        assert error.status == 404 and error.collection == collection_name, where
        assert error.message.startswith(f"Collection {collection_name!r} does not exist at {qdrant_url}"), where
