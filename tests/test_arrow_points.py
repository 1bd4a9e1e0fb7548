"""Qdrant JSON points into Arrow record batches: exact Arrow types, checked values, columns built whole."""

from __future__ import annotations

import datetime as dt
import decimal

import numpy as np
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

from dagster_qdrant.spark.points_to_arrow import PointBatchBuilder, check_readable
from dagster_qdrant.errors import QdrantConfigError, QdrantSchemaError
from dagster_qdrant.spark.schema import DENSE_VECTOR_TYPE, MULTI_VECTOR_TYPE, VectorColumn, infer_schema

POINTS = [
    {"id": 1, "payload": {"title": "a", "score": 1, "tags": ["x"], "meta": {"page": 1}}, "vector": [0.5, 1.0]},
    {"id": 2, "payload": {"title": "b", "score": 2.5, "tags": [], "meta": {"lang": "en"}}, "vector": [1.5, 2.0]},
    {"id": 3, "payload": {"title": 7, "flag": True}, "vector": [2.5, 3.0]},
]


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


def test_the_schema_error_is_a_config_error_importable_from_errors_and_schema() -> None:
    from dagster_qdrant.spark import schema

    assert issubclass(QdrantSchemaError, QdrantConfigError)
    assert schema.QdrantSchemaError is QdrantSchemaError


def _checked_batch(builder: PointBatchBuilder, points: list[dict]) -> pa.RecordBatch:
    """The batch the value-by-value checked path gives: every column through its converter."""
    arrays = []
    for column in builder._columns:
        if column.source == "id":
            raw = [point.get("id") for point in points]
        elif column.source == "payload":
            raw = [(point.get("payload") or {}).get(column.key) for point in points]
        else:
            raw = [
                (point.get("vector") or {}).get(column.key)
                if isinstance(point.get("vector"), dict)
                else (point.get("vector") if column.key == "" else None)
                for point in points
            ]
        arrays.append(pa.array([column.convert(value) for value in raw], type=column.arrow_type))
    return pa.RecordBatch.from_arrays(arrays, schema=builder.arrow_schema)


def test_columns_built_whole_equal_the_checked_value_by_value_conversion() -> None:
    rng = np.random.default_rng(3)
    schema = StructType(
        [
            StructField("id", LongType(), False),
            StructField("city", StringType()),
            StructField("year", LongType()),
            StructField("price", DoubleType()),
            StructField("ratio", FloatType()),
            StructField("sold", BooleanType()),
            StructField("label", StringType()),
            StructField("vector", DENSE_VECTOR_TYPE),
            StructField("image", ArrayType(DoubleType(), containsNull=False)),
        ]
    )
    points = []
    for n in range(50):
        vector: dict = {"": [float(x) for x in rng.standard_normal(8)]}
        if n % 7:
            vector["image"] = [float(x) for x in rng.standard_normal(3 + n % 2)]  # ragged, and sometimes absent
        payload = {"city": ["Paris", None, "Oslo"][n % 3], "year": 2000 + n, "price": n if n % 2 else n + 0.5,
                   "ratio": 1 / (n + 1), "sold": n % 2 == 0, "label": f"L{n}" if n % 3 else n}
        if n % 5 == 0:
            payload = {key: value for key, value in payload.items() if key not in ("year", "sold")}
        points.append({"id": n, "payload": payload, "vector": vector})
    builder = PointBatchBuilder(schema, {"vector": "", "image": "image"}, "docs")
    batch = builder.to_batch(points)
    assert batch.schema.equals(builder.arrow_schema)
    assert batch.equals(_checked_batch(builder, points))
    rows = batch.to_pylist()
    assert rows[3]["label"] == "3" and rows[4]["label"] == "L4"
    assert rows[0]["image"] is None and rows[0]["year"] is None and rows[1]["year"] == 2001
    assert rows[1]["vector"] == pytest.approx(points[1]["vector"][""], rel=1e-6)
    assert rows[2]["image"] == points[2]["vector"]["image"]


@pytest.mark.parametrize(
    ("data_type", "value", "shown"),
    [
        (LongType(), 2.5, "2.5"),  # Arrow would truncate it
        (LongType(), True, "True"),
        (IntegerType(), 2**40, str(2**40)),
        (DoubleType(), False, "False"),
        (BooleanType(), 1, "1"),
    ],
)
def test_values_arrow_would_coerce_are_refused_like_any_misfit(data_type, value, shown) -> None:
    schema = StructType([StructField("id", LongType(), False), StructField("x", data_type)])
    points = [{"id": 1, "payload": {"x": None}}, {"id": 2, "payload": {"x": value}}]
    with pytest.raises(QdrantSchemaError, match=f"Column 'x' expects .* but point 2 has {shown}") as raised:
        PointBatchBuilder(schema, {}, "docs").to_batch(points)
    assert raised.value.point_ids == [2]


def test_integers_beyond_long_still_fill_a_double_column() -> None:
    schema = StructType([StructField("id", LongType(), False), StructField("x", DoubleType())])
    batch = PointBatchBuilder(schema, {}, "docs").to_batch([{"id": 1, "payload": {"x": 2**70}}])
    assert batch.column(1).to_pylist() == [float(2**70)]


def test_a_multivector_in_a_dense_vector_column_is_a_clear_error() -> None:
    schema = StructType([StructField("id", LongType(), False), StructField("vector", DENSE_VECTOR_TYPE)])
    builder = PointBatchBuilder(schema, {"vector": ""}, "docs")
    with pytest.raises(QdrantSchemaError, match="Column 'vector' of type 'array<float>' cannot hold"):
        builder.to_batch([{"id": 1, "vector": [[1.0, 2.0]]}])
    multi = StructType([StructField("id", LongType(), False), StructField("vector", MULTI_VECTOR_TYPE)])
    batch = PointBatchBuilder(multi, {"vector": ""}, "docs").to_batch([{"id": 1, "vector": [[1.0, 2.0], [3.0, 4.0]]}])
    assert batch.column(1).to_pylist() == [[[1.0, 2.0], [3.0, 4.0]]]


def test_inferred_schema_pages_keep_vectors_exact_in_float32() -> None:
    vectors = [VectorColumn("vector", "", DENSE_VECTOR_TYPE)]
    values = [0.1, 1e-8, 3.4e38, -2.5]
    points = [{"id": 1, "payload": {}, "vector": values}]
    builder = PointBatchBuilder(infer_schema(points, vectors), {"vector": ""}, "docs")
    column = builder.to_batch(points).column(1)
    assert column.type == builder.arrow_schema.field("vector").type
    assert column.values.to_numpy().tolist() == np.array(values, dtype=np.float32).tolist()
