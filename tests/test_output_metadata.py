"""What a Qdrant materialization tells Dagster, read back the way Dagster reads it.

Assets run through Dagster's own ``materialize``; the metadata is taken from the run's event log and
read with Dagster's ``TableMetadataSet`` (the table name Dagster's lineage and UI look up), and the kind
badge from the repository's asset specs and Dagster's ``AssetSelection.kind``.
"""

from __future__ import annotations

from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    TableColumn,
    TableSchema,
    asset,
    materialize,
)
from dagster._core.definitions.metadata import TableMetadataSet

from dagster_qdrant.dagster_io.io_manager import QdrantPySparkIOManager
from dagster_qdrant.dagster_io.output_metadata import RATE_MIN_POINTS, STORAGE_KIND
from dagster_qdrant.dagster_io.resources import QdrantResource


@pytest.fixture
def io_manager(qdrant_url: str, qdrant_api_key: str | None) -> QdrantPySparkIOManager:
    return QdrantPySparkIOManager(qdrant=QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key), progress_interval=3600)


def points_frame(spark: Any, count: int) -> Any:
    """``count`` rows: an id, a text payload and a 2-d vector (built by Spark, nothing on the driver)."""
    from pyspark.sql import functions

    return spark.range(1, count + 1).select(
        functions.col("id"),
        functions.concat(functions.lit("document "), functions.col("id")).alias("text"),
        functions.array(functions.col("id").cast("float"), functions.lit(1.0).cast("float")).alias("vector"),
    )


def materialized(
    spark: Any, io_manager: QdrantPySparkIOManager, name: str, count: int, metadata: dict[str, Any] | None = None
) -> tuple[dict[str, Any], DagsterInstance, str]:
    """Materialize one asset of ``count`` points; its materialization's metadata (plain values), the
    instance and the run id."""

    @asset(name=name, metadata={"id_field": "id", "vector_field": "vector", **(metadata or {})})
    def points() -> Any:
        return points_frame(spark, count)

    instance = DagsterInstance.ephemeral()
    result = materialize([points], resources={"io_manager": io_manager}, instance=instance)
    assert result.success
    (event,) = result.asset_materializations_for_node(name)
    return {key: value.value for key, value in event.metadata.items()}, instance, result.run_id


def test_table_name_is_the_alias_and_storage_kind_is_qdrant(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    metadata, _, _ = materialized(spark, io_manager, collection_name, 30)
    assert metadata["dagster/table_name"] == collection_name
    assert "dagster/relation_identifier" not in metadata, "only the current key, not its legacy alias"
    read_by_dagster = TableMetadataSet.extract(metadata)
    assert read_by_dagster.table_name == collection_name and read_by_dagster.storage_kind == STORAGE_KIND
    address = TableMetadataSet.extract_storage_address(metadata)
    assert (address.storage_kind, address.table_name) == ("qdrant", collection_name.lower())
    assert metadata["alias"] == collection_name and metadata["collection"] != collection_name


def test_a_tiny_write_reports_its_seconds_but_no_points_per_second(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    metadata, _, _ = materialized(spark, io_manager, collection_name, 320)
    assert metadata["dagster/row_count"] == 320
    assert metadata["write_seconds"] > 0
    assert "points_per_second" not in metadata, "320 points measure Spark's fixed costs, not throughput"


def test_a_write_of_enough_points_reports_points_per_second(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    metadata, _, _ = materialized(spark, io_manager, collection_name, RATE_MIN_POINTS)
    assert metadata["dagster/row_count"] == RATE_MIN_POINTS
    assert metadata["points_per_second"] == pytest.approx(RATE_MIN_POINTS / metadata["write_seconds"], rel=0.01)


DECLARED = TableSchema(
    columns=[
        TableColumn("id", "bigint", description="The document's number"),
        TableColumn("text", "string", description="The document's text"),
        TableColumn("vector", "array<float>", description="Its embedding"),
    ]
)


def test_a_declared_column_schema_is_kept_with_its_descriptions(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    metadata, instance, run_id = materialized(
        spark, io_manager, collection_name, 10, {"dagster/column_schema": DECLARED}
    )
    assert metadata["dagster/column_schema"] == DECLARED
    assert not [entry for entry in instance.all_logs(run_id) if "dagster/column_schema" in (entry.user_message or "")]


def test_a_declared_column_schema_that_the_dataframe_contradicts_is_kept_and_the_difference_logged(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    declared = TableSchema(columns=[*DECLARED.columns[:2], TableColumn("topic", "string")])
    metadata, instance, run_id = materialized(
        spark, io_manager, collection_name, 10, {"dagster/column_schema": declared}
    )
    assert metadata["dagster/column_schema"] == declared
    warnings = [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if "dagster/column_schema" in (entry.user_message or "")
    ]
    assert len(warnings) == 1
    assert "declared but absent: ['topic']" in warnings[0] and "not declared: ['vector']" in warnings[0]


def test_without_a_declared_schema_the_dataframe_schema_is_emitted(
    spark: Any, io_manager: QdrantPySparkIOManager, collection_name: str
) -> None:
    metadata, _, _ = materialized(spark, io_manager, collection_name, 10)
    schema = metadata["dagster/column_schema"]
    assert [(c.name, c.type) for c in schema.columns] == [
        (f.name, f.dataType.simpleString()) for f in points_frame(spark, 1).schema.fields
    ]


def test_the_example_assets_stored_in_qdrant_carry_the_qdrant_kind(qdrant_url: str) -> None:
    import definitions as example

    defs = example.build_definitions(QdrantResource(endpoint=qdrant_url))
    stored_in_qdrant = {
        key
        for key, assets_def in defs.get_repository_def().assets_defs_by_key.items()
        if assets_def.get_io_manager_key_for_asset_key(key) == example.QDRANT_IO_MANAGER
    }
    assert stored_in_qdrant == {AssetKey("document_embeddings"), AssetKey("daily_documents")}
    for key in stored_in_qdrant:
        spec = defs.get_repository_def().assets_defs_by_key[key].specs_by_key[key]
        assert STORAGE_KIND in spec.kinds and spec.tags["dagster/kind/qdrant"] == ""
    assert AssetSelection.kind(STORAGE_KIND).resolve(defs.resolve_asset_graph()) == stored_in_qdrant
