"""Spark writes and reads, and Dagster materializations, started from a thread other than the main one.

Spark looks a Python data source up in the *active* session of the calling JVM thread
(``DataSource.lookupDataSource``: ``SparkSession.getActiveSession.exists(_.sessionState.dataSourceManager
.dataSourceExists(...))``). With PySpark's pinned threads every Python thread has its own JVM thread, and a
new one has no active session, so ``format("qdrant")`` was not found there, even after registering: only
``createDataFrame`` happened to set the active session. ``register_qdrant_data_source`` now makes the
session active in the calling thread. The reference: what the DataFrame holds (Spark's own evaluation),
against what Qdrant counts and what a read gives back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from dagster_qdrant.spark.registration import register_qdrant_data_source
from dagster_qdrant.http import QdrantHttp
from dagster_qdrant.options import ConnectionOptions


def in_fresh_thread(work: Callable[[], Any]) -> Any:
    """Run ``work`` in a new thread; return its result or raise its exception here."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="not-main")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _config(url: str, key: str | None, collection: str, **options: Any) -> str:
    config = {"endpoint": url, "collection": collection, **options}
    if key:
        config["api_key"] = key
    return json.dumps(config)


def test_a_spark_computed_write_and_read_work_from_another_thread(
    spark: Any, qdrant_url: str, qdrant_api_key: str | None, collection_name: str
) -> None:
    def write_and_read() -> list[Any]:
        register_qdrant_data_source(spark)
        frame = spark.range(100).selectExpr("id", "id % 7 as bucket", "array(cast(id as float), 1.0f) as vector")
        config = _config(qdrant_url, qdrant_api_key, collection_name, create_collection=True, distance="Dot")
        frame.write.format("qdrant").option("qdrant.config", config).mode("append").save()
        read = spark.read.format("qdrant").option("qdrant.config", _config(qdrant_url, qdrant_api_key, collection_name))
        return read.load().orderBy("id").collect()

    rows = in_fresh_thread(write_and_read)
    expected = spark.range(100).selectExpr("id", "id % 7 as bucket").collect()
    assert [(row.id, row.bucket) for row in rows] == [(row.id, row.bucket) for row in expected]
    http = QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key))
    assert http.count(collection_name) == 100


def test_materialize_works_from_another_thread(
    spark: Any, qdrant_url: str, qdrant_api_key: str | None, collection_name: str
) -> None:
    from dagster import asset, materialize

    from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
    from dagster_qdrant.dagster_io.resources import QdrantResource

    @asset(name=collection_name)
    def numbers() -> Any:
        return spark.range(50).selectExpr("id", "concat('n', id) as label", "array(cast(id as float), 1.0f) as vector")

    io_manager = QdrantPySparkIOManager(qdrant=QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key))
    result = in_fresh_thread(lambda: materialize([numbers], resources={"io_manager": io_manager}))
    assert result.success
    http = QdrantHttp(ConnectionOptions(endpoint=qdrant_url, api_key=qdrant_api_key))
    assert http.count(collection_name) == 50  # through the alias the IO manager swaps
