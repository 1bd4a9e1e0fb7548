"""Schema inference from sampled points, and the vector columns of a collection."""

from __future__ import annotations

import pytest
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.schema import (
    DENSE_VECTOR_TYPE,
    MIXED_METADATA_KEY,
    MULTI_VECTOR_TYPE,
    SPARSE_VECTOR_TYPE,
    QdrantSchemaError,
    VectorColumn,
    infer_id_type,
    infer_schema,
    select_vectors,
    vector_columns_from_collection,
    vector_columns_from_points,
)

POINTS = [
    {"id": 1, "payload": {"title": "a", "score": 1, "tags": ["x"], "meta": {"page": 1}}, "vector": [0.5, 1.0]},
    {"id": 2, "payload": {"title": "b", "score": 2.5, "tags": [], "meta": {"lang": "en"}}, "vector": [1.5, 2.0]},
    {"id": 3, "payload": {"title": 7, "flag": True}, "vector": [2.5, 3.0]},
]


def test_inference_widens_numbers_merges_objects_and_keeps_mixed_values_as_text() -> None:
    vectors = [VectorColumn("vector", "", DENSE_VECTOR_TYPE)]
    schema = infer_schema(POINTS, vectors)
    assert schema.fieldNames() == ["id", "flag", "meta", "score", "tags", "title", "vector"]
    types = {field.name: field.dataType for field in schema.fields}
    assert types["id"] == LongType()
    assert types["flag"] == BooleanType()
    assert types["score"] == DoubleType()
    assert types["tags"] == ArrayType(StringType())  # only empty lists and strings: string elements
    assert types["meta"] == StructType(
        [StructField("lang", StringType()), StructField("page", LongType())]
    )
    assert types["title"] == StringType()
    assert schema["title"].metadata == {MIXED_METADATA_KEY: True}
    assert types["vector"] == DENSE_VECTOR_TYPE


def test_inference_is_stable_whatever_the_order_of_points() -> None:
    vectors: list[VectorColumn] = []
    assert infer_schema(POINTS, vectors) == infer_schema(list(reversed(POINTS)), vectors)


def test_ids_are_long_only_when_every_sampled_id_is_an_integer_that_fits() -> None:
    assert infer_id_type([1, 2, 3]) == LongType()
    assert infer_id_type([1, "6c1b0f6e-3f5a-4c53-9d3c-1a2b3c4d5e6f"]) == StringType()
    assert infer_id_type([2**63]) == StringType()
    assert infer_id_type([]) == StringType()


def test_vectors_are_typed_from_the_collection_config() -> None:
    info = {
        "config": {
            "params": {
                "vectors": {
                    "image": {"size": 4, "distance": "Cosine"},
                    "tokens": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}},
                },
                "sparse_vectors": {"keywords": {}},
            }
        }
    }
    columns = vector_columns_from_collection(info)
    assert columns == [
        VectorColumn("image", "image", DENSE_VECTOR_TYPE),
        VectorColumn("tokens", "tokens", MULTI_VECTOR_TYPE),
        VectorColumn("keywords", "keywords", SPARSE_VECTOR_TYPE),
    ]
    unnamed = vector_columns_from_collection({"config": {"params": {"vectors": {"size": 3, "distance": "Dot"}}}})
    assert unnamed == [VectorColumn("vector", "", DENSE_VECTOR_TYPE)]
    assert vector_columns_from_collection({}) is None
    assert select_vectors(columns, ("keywords",)) == [columns[2]]
    assert select_vectors(columns, False) == []
    with pytest.raises(QdrantConfigError, match="does not have"):
        select_vectors(columns, ("nope",))


def test_vectors_seen_in_points_when_the_server_gives_no_config() -> None:
    points = [{"id": 1, "vector": {"dense": [1.0], "sparse": {"indices": [1], "values": [0.5]}, "multi": [[1.0]]}}]
    assert vector_columns_from_points(points) == [
        VectorColumn("dense", "dense", DENSE_VECTOR_TYPE),
        VectorColumn("multi", "multi", MULTI_VECTOR_TYPE),
        VectorColumn("sparse", "sparse", SPARSE_VECTOR_TYPE),
    ]


def test_a_payload_key_named_like_the_id_column_is_a_clear_error() -> None:
    with pytest.raises(QdrantSchemaError, match="exclude"):
        infer_schema([{"id": 1, "payload": {"id": "x"}}], [])
