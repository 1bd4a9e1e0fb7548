"""The example pipeline (definitions.py) materialized by Dagster against the Qdrant under test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from stored_points import every_point

from dagster_qdrant.dagster_io.resources import QdrantResource

ROOT = Path(__file__).resolve().parent.parent
SECRET = "example-secret-key-never-shown"


def _load_example() -> Any:
    spec = importlib.util.spec_from_file_location("example_definitions", ROOT / "definitions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


example = _load_example()
UNPARTITIONED = [
    example.documents,
    example.embedding_model,
    example.document_embeddings,
    example.similar_documents,
    example.embeddings_complete,
]


@pytest.fixture(scope="module")
def qdrant(qdrant_url: str, qdrant_api_key: str | None) -> QdrantResource:
    # A key the server does not ask for is ignored by it; the test makes sure it never leaks into metadata.
    return QdrantResource(endpoint=qdrant_url, api_key=qdrant_api_key or SECRET)


@pytest.fixture(scope="module")
def pipeline(spark: Any, qdrant: QdrantResource) -> dict[str, Any]:
    """One materialization of every unpartitioned asset and the check, then two days of the daily asset."""
    resources = example.build_definitions(qdrant).resources
    qdrant.http().delete_collection("daily_documents")  # other tests may have written other days
    with DagsterInstance.ephemeral() as instance:
        everything = materialize(UNPARTITIONED, resources=resources, instance=instance)
        version = _alias_target(qdrant, "document_embeddings")
        days = {
            day: materialize(
                [*UNPARTITIONED[:-1], example.daily_documents],
                selection=[example.daily_documents],
                partition_key=day,
                resources=resources,
                instance=instance,
            )
            for day in ("2024-05-03", "2024-05-04")
        }
        yield {"run": everything, "days": days, "first_version": version, "resources": resources,
               "instance": instance}


def _alias_target(qdrant: QdrantResource, alias: str) -> str | None:
    aliases = qdrant.http().list_aliases()
    return next((a["collection_name"] for a in aliases if a["alias_name"] == alias), None)


def _materialization(result: Any, name: str) -> dict[str, Any]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(name)]
    assert len(events) == 1
    return {key: value.value for key, value in events[0].materialization.metadata.items()}


def test_every_asset_and_the_check_succeed(pipeline: dict[str, Any]) -> None:
    result = pipeline["run"]
    assert result.success
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert materialized == {"documents", "embedding_model", "document_embeddings", "similar_documents"}
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [("embeddings_complete", True)]


def test_embeddings_are_in_qdrant_with_payload_and_vectors_of_the_declared_size(
    pipeline: dict[str, Any], qdrant: QdrantResource
) -> None:
    points = every_point(qdrant.http(), "document_embeddings")
    assert len(points) == 320
    assert sorted(point["id"] for point in points) == list(range(1, 321))
    assert {len(point["vector"]) for point in points} == {example.VECTOR_SIZE}
    first = next(point for point in points if point["id"] == 1)
    assert set(first["payload"]) == {"title", "text", "topic", "published"}
    assert first["payload"]["title"] == "A beginner guide to fruit trees"
    norms = {round(sum(v * v for v in point["vector"]) ** 0.5, 3) for point in points}
    assert norms == {1.0}


def test_output_metadata_describes_the_collection_without_the_api_key(
    pipeline: dict[str, Any], qdrant: QdrantResource
) -> None:
    metadata = _materialization(pipeline["run"], "document_embeddings")
    assert metadata["dagster/row_count"] == 320
    assert metadata["dagster/table_name"] == "document_embeddings"
    assert metadata["dagster/uri"] == qdrant.collection_url("document_embeddings")
    assert metadata["alias"] == "document_embeddings"
    assert metadata["collection"] == pipeline["first_version"]
    assert metadata["vector_size"] == example.VECTOR_SIZE and metadata["distance"] == "Cosine"
    columns = [column.name for column in metadata["dagster/column_schema"].columns]
    assert columns == ["id", "title", "text", "topic", "published", "vector"]
    for event in pipeline["run"].all_events:
        assert SECRET not in str(event), "the API key must never reach events or metadata"


def test_similarity_query_finds_the_documents_on_the_asked_topic(pipeline: dict[str, Any]) -> None:
    metadata = _materialization(pipeline["run"], "similar_documents")
    assert metadata["matches_exact_search"] is True
    assert metadata["points_loaded"] == 320
    answer = pipeline["run"].output_for_node("similar_documents")
    assert list(answer["topic"]) == ["gardening"] * 5
    assert list(answer["score"]) == sorted(answer["score"], reverse=True)


def test_daily_partitions_each_hold_their_day_and_leave_the_others_untouched(
    pipeline: dict[str, Any], qdrant: QdrantResource
) -> None:
    assert all(result.success for result in pipeline["days"].values())
    points = every_point(qdrant.http(), "daily_documents", with_vector=False)
    by_partition: dict[str, set[str]] = {}
    for point in points:
        by_partition.setdefault(point["payload"]["_partition"], set()).add(point["payload"]["published"])
    assert by_partition == {"2024-05-03": {"2024-05-03"}, "2024-05-04": {"2024-05-04"}}
    assert len(points) == 80
    metadata = _materialization(pipeline["days"]["2024-05-04"], "daily_documents")
    assert metadata["dagster/partition_row_count"] == 40 and metadata["dagster/row_count"] == 80


def test_rematerializing_the_embeddings_swaps_in_a_new_version_with_the_same_points(
    pipeline: dict[str, Any], qdrant: QdrantResource
) -> None:
    again = materialize(
        UNPARTITIONED[:3], selection=[example.document_embeddings],
        resources=pipeline["resources"], instance=pipeline["instance"],
    )
    assert again.success
    version = _alias_target(qdrant, "document_embeddings")
    assert version != pipeline["first_version"]
    assert not qdrant.http().collection_exists(pipeline["first_version"])
    assert qdrant.http().count("document_embeddings") == 320
