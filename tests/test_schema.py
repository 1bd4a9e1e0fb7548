"""Schema inference from sampled points, and the vector columns of a collection."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from dagster_qdrant.spark.points_to_arrow import PointBatchBuilder
from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.spark.schema import (
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
from dagster_qdrant.spark.schema_findings import SchemaFindings

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


# ---------------------------------------------------------------------------------------------------
# Widening never rounds, and a schema inferred from every point holds every point
# ---------------------------------------------------------------------------------------------------

def test_integers_a_double_cannot_hold_exactly_never_widen_to_double() -> None:
    big = 2**53 + 1  # float(big) == 2**53: a double column would round it
    schema = infer_schema([{"id": 1, "payload": {"n": big}}, {"id": 2, "payload": {"n": 0.5}}], [])
    assert schema["n"].dataType == StringType() and schema["n"].metadata == {MIXED_METADATA_KEY: True}
    exact = infer_schema([{"id": 1, "payload": {"n": 2**53}}, {"id": 2, "payload": {"n": 0.5}}], [])
    assert exact["n"].dataType == DoubleType()
    assert infer_schema([{"id": 1, "payload": {"n": big}}, {"id": 2, "payload": {"n": 3}}], [])["n"].dataType == LongType()
    assert infer_schema([{"id": 1, "payload": {"n": 2**64 - 1}}], [])["n"].dataType == StringType()


def test_a_key_seen_only_as_null_is_text_of_any_kind_and_not_pushed_down() -> None:
    schema = infer_schema([{"id": 1, "payload": {"maybe": None}}], [])
    assert schema["maybe"].dataType == StringType() and schema["maybe"].metadata == {MIXED_METADATA_KEY: True}


_RESERVED = {"id", "vector"}
_keys = st.text(alphabet="abcxyz_", min_size=1, max_size=4).filter(lambda key: key not in _RESERVED)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.sampled_from([2**53, 2**53 + 1, 2**63 - 1, -(2**63), 0, 1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=8,
)
_payloads = st.lists(st.dictionaries(_keys, _values, max_size=4), min_size=1, max_size=12)


def _same(value, read, data_type, mixed: bool) -> None:
    """``read`` is ``value`` as the README says a column of ``data_type`` holds it, exactly."""
    if value is None:
        assert read is None
    elif isinstance(data_type, StringType) and (mixed or not isinstance(value, str)):
        assert read == value if isinstance(value, str) else json.loads(read) == value
        assert not isinstance(value, float) or json.loads(read) == value
    elif isinstance(data_type, (LongType, DoubleType, BooleanType)):
        assert read == value and type(read) is {LongType: int, DoubleType: float, BooleanType: bool}[type(data_type)]
    elif isinstance(data_type, StringType):
        assert read == value
    elif isinstance(data_type, ArrayType):
        assert len(read) == len(value)
        for item, read_item in zip(value, read):
            _same(item, read_item, data_type.elementType, True)  # elements carry no metadata
    else:
        assert set(value) <= set(data_type.fieldNames())
        for field in data_type.fields:
            _same(value.get(field.name), read[field.name], field.dataType, bool(field.metadata.get(MIXED_METADATA_KEY)))


@settings(derandomize=True, max_examples=200, deadline=None)
@given(_payloads)
def test_a_schema_inferred_from_every_point_reads_every_value_back_exactly(payloads) -> None:
    points = [{"id": index, "payload": payload} for index, payload in enumerate(payloads)]
    schema = infer_schema(points, [])
    strict = SchemaFindings("error", "c", {"sampled": len(points)})
    batch = PointBatchBuilder(schema, {}, "c", strict).to_batch(points).to_pylist()
    assert not strict
    for point, row in zip(points, batch):
        assert row["id"] == point["id"]
        for field in schema.fields[1:]:
            value = point["payload"].get(field.name)
            _same(value, row[field.name], field.dataType, bool(field.metadata.get(MIXED_METADATA_KEY)))
