"""`register_qdrant_data_source` registers once per SparkSession: the IO manager calls it on every output
and input, and each registration of an existing name makes Spark log "The data source qdrant replaced a
previously registered data source". Spark's own registry (the session's DataSourceManager) is the
reference: its entry for ``qdrant`` must stay the same object across calls.
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceReader

from dagster_qdrant import QDRANT_CONFIG_OPTION, QDRANT_FORMAT, build_qdrant_config, build_qdrant_write_config
from dagster_qdrant.spark.registration import register_qdrant_data_source


def _entry(spark: Any) -> Any:
    return spark._jsparkSession.sessionState().dataSourceManager().lookupDataSource(QDRANT_FORMAT)


class _EmptyReader(DataSourceReader):
    def read(self, partition: Any) -> Any:
        return iter([])


class _OtherQdrantSource(DataSource):
    """Another library's source registered under the same name."""

    @classmethod
    def name(cls) -> str:
        return QDRANT_FORMAT

    def schema(self) -> str:
        return "other int"

    def reader(self, schema: Any) -> DataSourceReader:
        return _EmptyReader()


def test_registering_again_in_the_same_session_leaves_spark_s_entry_alone(spark: Any) -> None:
    register_qdrant_data_source(spark)
    before = _entry(spark)
    for _ in range(3):
        register_qdrant_data_source(spark)
    assert _entry(spark).equals(before)


def test_a_source_registered_under_the_same_name_in_between_is_replaced_again(
    spark: Any, qdrant_url: str, collection_name: str
) -> None:
    register_qdrant_data_source(spark)
    try:
        spark.dataSource.register(_OtherQdrantSource)
        other = _entry(spark)
    finally:
        register_qdrant_data_source(spark)
    assert not _entry(spark).equals(other)
    frame = spark.createDataFrame([(1, [0.5, 0.5], "a")], "id long, vector array<float>, title string")
    write = build_qdrant_write_config(qdrant_url, collection_name, create_collection=True)
    frame.write.format(QDRANT_FORMAT).option(QDRANT_CONFIG_OPTION, json.dumps(write)).mode("append").save()
    read = build_qdrant_config(qdrant_url, collection_name)
    back = spark.read.format(QDRANT_FORMAT).option(QDRANT_CONFIG_OPTION, json.dumps(read)).load()
    assert [(row["id"], row["title"]) for row in back.collect()] == [(1, "a")]


def test_a_new_session_of_the_same_spark_gets_its_own_registration(spark: Any) -> None:
    register_qdrant_data_source(spark)
    other = spark.newSession()
    manager = other._jsparkSession.sessionState().dataSourceManager()
    assert not manager.dataSourceExists(QDRANT_FORMAT)
    register_qdrant_data_source(other)
    assert manager.dataSourceExists(QDRANT_FORMAT)
    register_qdrant_data_source(spark)  # the shared session's thread is active again for the other tests
