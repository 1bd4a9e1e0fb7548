"""Schema inference and the conversion of Qdrant JSON points into Arrow record batches."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    CalendarIntervalType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from dagster_qdrant.errors import QdrantConfigError
from dagster_qdrant.schema import (
    DENSE_VECTOR_TYPE,
    MIXED_METADATA_KEY,
    MULTI_VECTOR_TYPE,
    SPARSE_VECTOR_TYPE,
    PointBatchBuilder,
    QdrantSchemaError,
    VectorColumn,
    check_readable,
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


def test_pages_become_record_batches_with_the_exact_arrow_schema_spark_expects() -> None:
    vectors = [VectorColumn("vector", "", DENSE_VECTOR_TYPE)]
    schema = infer_schema(POINTS, vectors)
    builder = PointBatchBuilder(schema, {"vector": ""}, "docs")
    batch = builder.to_batch(POINTS)
    assert isinstance(batch, pa.RecordBatch)
    assert batch.schema.equals(builder.arrow_schema)
    rows = batch.to_pylist()
    assert rows[0]["score"] == 1.0 and rows[1]["score"] == 2.5
    assert rows[2]["title"] == "7"
    assert rows[0]["meta"] == {"lang": None, "page": 1}
    assert rows[2]["tags"] is None
    assert rows[1]["vector"] == [1.5, 2.0]


def test_rfc3339_text_is_parsed_back_into_timestamps_dates_and_decimals_with_an_explicit_schema() -> None:
    schema = StructType(
        [
            StructField("id", StringType(), False),
            StructField("at", TimestampType()),
            StructField("local", TimestampNTZType()),
            StructField("day", DateType()),
            StructField("price", DecimalType(10, 2)),
            StructField("count", IntegerType()),
            StructField("ratio", FloatType()),
            StructField("labels", MapType(StringType(), LongType())),
            StructField("raw", BinaryType()),
        ]
    )
    point = {
        "id": "6c1b0f6e-3f5a-4c53-9d3c-1a2b3c4d5e6f",
        "payload": {
            "at": "2024-05-06T07:08:09.123456+02:00",
            "local": "2024-05-06T07:08:09",
            "day": "2024-05-06",
            "price": "12.50",
            "count": 3,
            "ratio": 0.25,
            "labels": {"a": 1},
            "raw": "aGk=",
        },
    }
    row = PointBatchBuilder(schema, {}, "docs").to_batch([point]).to_pylist()[0]
    assert row["at"] == dt.datetime(2024, 5, 6, 5, 8, 9, 123456, tzinfo=dt.timezone.utc)
    assert row["local"] == dt.datetime(2024, 5, 6, 7, 8, 9)
    assert row["day"] == dt.date(2024, 5, 6)
    assert row["price"] == decimal.Decimal("12.50")
    assert row["count"] == 3 and row["ratio"] == 0.25
    assert row["labels"] == [("a", 1)]
    assert row["raw"] == b"hi"


def test_a_schema_that_does_not_fit_the_data_names_the_column_the_value_and_the_point() -> None:
    schema = StructType([StructField("id", LongType(), False), StructField("title", LongType())])
    with pytest.raises(QdrantSchemaError) as raised:
        PointBatchBuilder(schema, {}, "docs").to_batch(POINTS)
    message = str(raised.value)
    assert "'title'" in message and "'a'" in message and "bigint" in message
    assert raised.value.point_ids == [1]


def test_uuid_ids_in_a_long_id_column_are_a_clear_error() -> None:
    schema = StructType([StructField("id", LongType(), False)])
    point = {"id": "6c1b0f6e-3f5a-4c53-9d3c-1a2b3c4d5e6f"}
    with pytest.raises(QdrantSchemaError, match="Point id expects 'bigint'"):
        PointBatchBuilder(schema, {}, "docs").to_batch([point])


def test_types_that_no_json_value_can_fill_are_refused_before_reading() -> None:
    with pytest.raises(QdrantSchemaError, match="cannot be read"):
        check_readable(StructType([StructField("every", CalendarIntervalType())]))
    with pytest.raises(QdrantSchemaError, match="point ids read as string"):
        PointBatchBuilder(StructType([StructField("id", BooleanType())]), {}, "docs")
