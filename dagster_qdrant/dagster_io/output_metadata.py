"""The metadata a Qdrant write adds to its materialization, in Dagster's own keys where Dagster has one.

- ``dagster/table_name`` (the collection or alias name readers use), ``dagster/storage_kind`` (``qdrant``)
  and ``dagster/column_schema`` are built with Dagster's ``TableMetadataSet``, as Dagster's ``DbIOManager``
  builds its table name, so the keys are the ones this Dagster reads; ``dagster/relation_identifier`` is
  only the legacy alias of ``dagster/table_name`` (``TableMetadataSet.current_key_by_legacy_key``) and is
  not written.
- The ``qdrant`` badge in the UI comes from the asset's definition (``kinds={"qdrant"}``, stored as the tag
  ``dagster/kind/qdrant``): Dagster reads kinds from definition tags, fixed before any run, and an IO
  manager only sees outputs, so the asset declares it (definitions.py does).
- A column schema the asset declares (``dagster/column_schema`` in its definition metadata) is the one
  emitted, descriptions and all; the DataFrame's columns are checked against it, and a difference is
  logged rather than papered over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from dagster import MetadataValue, TableSchema

# Not exported at the top of ``dagster``; Dagster's own DbIOManager imports it from this private package too.
from dagster._core.definitions.metadata import TableMetadataSet

from dagster_qdrant.vector_config import VectorConfig

STORAGE_KIND = "qdrant"
"""The storage kind: ``dagster/storage_kind`` in the metadata, and the kind assets declare for the badge."""

RATE_MIN_POINTS = 10_000
"""Points a write must move before its points/s is reported. Below it a write ends within Spark's fixed
costs (scheduling the job, starting Python workers, creating the collection: about a second on a warm
session, over ten on a cold one), so the figure would measure those, not throughput: the example's 320
points showed 22.5 points/s where the benchmark (README, Performance) measures Spark writes at over
10,000 points/s."""


def table_metadata(
    table_name: str,
    found: TableSchema,
    columns: Sequence[str],
    definition_metadata: Optional[Mapping[str, Any]],
    log: Any,
) -> dict[str, Any]:
    """``dagster/table_name``, ``dagster/storage_kind`` and ``dagster/column_schema`` of a write; ``found``
    and ``columns``: the written frame's schema and column names, as its type handler gives them."""
    return dict(
        TableMetadataSet(
            table_name=table_name,
            storage_kind=STORAGE_KIND,
            column_schema=column_schema(found, columns, definition_metadata, log),
        )
    )


def column_schema(
    found: TableSchema, columns: Sequence[str], definition_metadata: Optional[Mapping[str, Any]], log: Any
) -> TableSchema:
    """The schema the asset declares, else the frame's (``found``); ``log``: the context's."""
    declared = declared_column_schema(definition_metadata)
    if declared is None:
        return found
    names = [column.name for column in declared.columns]
    missing = [name for name in names if name not in columns]
    undeclared = [name for name in columns if name not in names]
    if missing or undeclared:
        log.warning(
            "The DataFrame's columns differ from the dagster/column_schema the asset declares "
            f"(declared but absent: {missing!r}; present but not declared: {undeclared!r}): the declared "
            "schema is kept in the metadata; update the declaration or the DataFrame so they agree"
        )
    return declared


def declared_column_schema(definition_metadata: Optional[Mapping[str, Any]]) -> Optional[TableSchema]:
    """``dagster/column_schema`` of the definition metadata (a TableSchema, or its MetadataValue)."""
    value = (definition_metadata or {}).get("dagster/column_schema")
    if value is None:
        return None
    return TableMetadataSet.extract({"dagster/column_schema": value}).column_schema


def speed_metadata(points: int, seconds: float) -> dict[str, Any]:
    """``write_seconds`` always; ``points_per_second`` only from RATE_MIN_POINTS points up (see there)."""
    metadata: dict[str, Any] = {"write_seconds": round(seconds, 3)}
    if points >= RATE_MIN_POINTS and seconds > 0:
        metadata["points_per_second"] = MetadataValue.float(round(points / seconds, 1))
    return metadata


def vector_metadata(vectors: Optional[VectorConfig]) -> dict[str, Any]:
    """Vector size and distance from the collection's config: one value, or one per named vector."""
    if vectors is None or not vectors.dense:
        return {}
    if vectors.unnamed:
        return {"vector_size": vectors.dense[0].size, "distance": vectors.dense[0].distance}
    return {
        "vector_size": MetadataValue.json({vector.name: vector.size for vector in vectors.dense}),
        "distance": MetadataValue.json({vector.name: vector.distance for vector in vectors.dense}),
    }
