"""Rows -> points: every row problem is caught with the ids named; bodies have Qdrant's shapes."""

from __future__ import annotations

import datetime
import decimal
import uuid

import numpy as np
import orjson
import pyarrow as pa
import pytest

from dagster_qdrant.points.rows_to_points import encode_body, from_record_batch, from_records
from dagster_qdrant.errors import QdrantDataError
from dagster_qdrant.options import WriteOptions

OPTIONS = WriteOptions(endpoint="http://localhost:6333", collection="docs")


def batch(**columns: object) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(columns)


def body(columns_or_batch: object, options: WriteOptions = OPTIONS) -> dict:
    columns = from_record_batch(columns_or_batch, options) if isinstance(columns_or_batch, pa.RecordBatch) else columns_or_batch
    return orjson.loads(encode_body(columns.batch_body()))


def test_arrow_rows_become_a_columnar_batch_body() -> None:
    result = body(batch(id=[1, 2], vector=[[0.5, 1.0], [2.0, 3.0]], title=["a", "b"], rank=[1, None]))
    assert result == {
        "batch": {
            "ids": [1, 2],
            "vectors": [[0.5, 1.0], [2.0, 3.0]],
            "payloads": [{"title": "a", "rank": 1}, {"title": "b", "rank": None}],
        }
    }


def test_fixed_size_float32_vectors_are_read_without_per_row_python() -> None:
    values = pa.array(np.arange(6, dtype=np.float32))
    vectors = pa.FixedSizeListArray.from_arrays(values, 3)
    columns = from_record_batch(pa.RecordBatch.from_arrays([pa.array([7, 8]), vectors], ["id", "vector"]), OPTIONS)
    assert columns.dense[""].dtype == np.float32 and columns.dense[""].shape == (2, 3)
    assert columns.vector_sizes() == {"": 3}


def test_sliced_arrow_batches_keep_their_own_rows() -> None:
    whole = batch(id=[1, 2, 3], vector=[[1.0], [2.0], [3.0]])
    assert body(whole.slice(1, 2))["batch"]["vectors"] == [[2.0], [3.0]]


def test_uuid_ids_are_normalized_and_bad_ids_named() -> None:
    upper = "6F0C5A8E-2B4D-5C1E-9A7F-3D2B1C0E4F5A"
    assert body(batch(id=[upper], vector=[[1.0]]))["batch"]["ids"] == [upper.lower()]
    with pytest.raises(QdrantDataError, match=r"negative ids \[-4\]"):
        from_record_batch(batch(id=[1, -4], vector=[[1.0], [2.0]]), OPTIONS)
    with pytest.raises(QdrantDataError, match="'doc-7' in 'id' is neither an unsigned integer nor a UUID"):
        from_record_batch(batch(id=["doc-7"], vector=[[1.0]]), OPTIONS)
    with pytest.raises(QdrantDataError, match="null in row"):
        from_record_batch(batch(id=[1, None], vector=[[1.0], [2.0]]), OPTIONS)
    with pytest.raises(QdrantDataError, match="type double"):
        from_record_batch(batch(id=[1.5], vector=[[1.0]]), OPTIONS)


@pytest.mark.parametrize(
    ("vectors", "message", "bad_id"),
    [
        ([[1.0, 2.0], None], "is null", 11),
        ([[1.0, 2.0], []], "empty vectors", 11),
        ([[1.0, 2.0], [1.0, 2.0, 3.0]], r"different sizes \(\[2, 3\]", 11),
        ([[1.0, float("nan")], [1.0, 2.0]], "NaN or infinite", 10),
        ([[1.0, 2.0], [float("inf"), 2.0]], "NaN or infinite", 11),
        ([[1.0, 2.0], [1.0, None]], "null elements", 11),
        ([[1.0, 2.0], [1e39, 2.0]], "NaN or infinite", 11),  # overflows float32
    ],
)
def test_bad_vectors_are_refused_with_the_point_ids(vectors: list, message: str, bad_id: int) -> None:
    with pytest.raises(QdrantDataError, match=message) as caught:
        from_record_batch(batch(id=[10, 11], vector=vectors), OPTIONS)
    assert caught.value.point_ids == [bad_id]
    assert f"first point ids [{bad_id}]" in str(caught.value)


def test_vectors_that_are_not_lists_say_how_to_fix_them() -> None:
    with pytest.raises(QdrantDataError, match="array of floats"):
        from_record_batch(batch(id=[1], vector=["0.1,0.2"]), OPTIONS)


def test_payload_types_become_json() -> None:
    moment = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
    record = pa.RecordBatch.from_arrays(
        [
            pa.array([1]),
            pa.array([[1.0]]),
            pa.array([moment], pa.timestamp("us", "UTC")),
            pa.array([moment.replace(tzinfo=None)], pa.timestamp("ns")),
            pa.array([datetime.date(2024, 5, 6)]),
            pa.array([decimal.Decimal("12.50")]),
            pa.array([[("a", 1), ("b", 2)]], pa.map_(pa.string(), pa.int64())),
            pa.array([{"x": 1, "tags": ["t"]}]),
            pa.array([True]),
            pa.array(["cat"]).dictionary_encode(),
        ],
        ["id", "vector", "at", "naive", "day", "price", "counts", "meta", "flag", "kind"],
    )
    payload = body(record)["batch"]["payloads"][0]
    assert payload == {
        "at": "2024-05-06T07:08:09.123456+00:00",
        "naive": "2024-05-06T07:08:09.123456+00:00",
        "day": "2024-05-06",
        "price": 12.5,
        "counts": {"a": 1, "b": 2},
        "meta": {"x": 1, "tags": ["t"]},
        "flag": True,
        "kind": "cat",
    }


def test_binary_payload_columns_are_refused_by_name() -> None:
    with pytest.raises(QdrantDataError, match="Payload column 'blob' has type binary"):
        from_record_batch(batch(id=[1], vector=[[1.0]], blob=[b"\x00"]), OPTIONS)
    maps = pa.RecordBatch.from_arrays(
        [pa.array([1]), pa.array([[1.0]]), pa.array([[(1, "a")]], pa.map_(pa.int32(), pa.string()))],
        ["id", "vector", "codes"],
    )
    with pytest.raises(QdrantDataError, match="'codes'.*without string keys"):
        from_record_batch(maps, OPTIONS)


def test_payload_fields_select_columns_and_missing_ones_are_named() -> None:
    options = WriteOptions(endpoint=OPTIONS.endpoint, collection="docs", payload_fields=["title"])
    assert body(batch(id=[1], vector=[[1.0]], title=["t"], body=["b"]), options)["batch"]["payloads"] == [{"title": "t"}]
    with pytest.raises(QdrantDataError, match=r"Payload field\(s\) \['title'\] not found"):
        from_record_batch(batch(id=[1], vector=[[1.0]]), options)


def test_missing_id_or_vector_column_tells_which_option_to_set() -> None:
    with pytest.raises(QdrantDataError, match="Id column 'id' not found.*id_field=None"):
        from_record_batch(batch(key=[1], vector=[[1.0]]), OPTIONS)
    with pytest.raises(QdrantDataError, match=r"Vector column\(s\) \['vector'\] not found"):
        from_record_batch(batch(id=[1], embedding=[[1.0]]), OPTIONS)


def test_named_and_sparse_vectors_use_the_vector_names() -> None:
    options = WriteOptions(
        endpoint=OPTIONS.endpoint,
        collection="docs",
        vector_fields={"text_vec": "text"},
        sparse_vector_fields={"terms": "bm25"},
    )
    record = batch(
        id=[1],
        text_vec=[[1.0, 0.0]],
        terms=[{"indices": [3, 9], "values": [0.5, 1.5]}],
        title=["t"],
    )
    assert body(record, options)["batch"]["vectors"] == {
        "text": [[1.0, 0.0]],
        "bm25": [{"indices": [3, 9], "values": [0.5, 1.5]}],
    }
    points = orjson.loads(encode_body(from_record_batch(record, options).points_body()))
    assert points == {
        "points": [
            {"id": 1, "vector": {"text": [1.0, 0.0], "bm25": {"indices": [3, 9], "values": [0.5, 1.5]}}, "payload": {"title": "t"}}
        ]
    }
    with pytest.raises(QdrantDataError, match="2 indices but 1 values"):
        from_record_batch(batch(id=[1], text_vec=[[1.0]], terms=[{"indices": [1, 2], "values": [0.5]}]), options)


def test_generated_ids_are_uuid5_of_the_content_and_stable() -> None:
    options = WriteOptions(endpoint=OPTIONS.endpoint, collection="docs", id_field=None)
    rows = [{"vector": [1.0, 2.0], "title": "a"}, {"vector": [1.0, 2.0], "title": "b"}]
    first = from_records(rows, options).ids
    again = from_records([dict(row) for row in rows], options).ids
    arrow = from_record_batch(pa.RecordBatch.from_pylist(rows), options).ids
    assert first == again == arrow
    assert first[0] != first[1]
    assert all(uuid.UUID(point_id).version == 5 for point_id in first)


def test_records_keep_nested_payloads_and_numpy_values() -> None:
    rows = [{"id": np.int64(3), "vector": np.array([1, 2], dtype=np.float64), "meta": {"n": np.int32(4), "s": {1, 2}}}]
    result = body(from_records(rows, OPTIONS))
    assert result == {"batch": {"ids": [3], "vectors": [[1.0, 2.0]], "payloads": [{"meta": {"n": 4, "s": [1, 2]}}]}}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": True, "vector": [1.0]}, "is a bool"),
        ({"id": 2**64, "vector": [1.0]}, "out of range"),
        ({"vector": [1.0]}, "Id column 'id' not found"),
        ({"id": 1, "vector": None}, "missing or null"),
        ({"id": 1, "vector": "abc"}, "array of numbers, not text"),
        ({"id": 1, "vector": ["a"]}, "not numbers"),
        ({"id": 1, "vector": [1.0], "blob": b"x"}, "Payload field 'blob' of point 1 cannot be JSON"),
    ],
)
def test_bad_records_are_refused_with_the_row(row: dict, message: str) -> None:
    with pytest.raises(QdrantDataError, match=message):
        from_records([{"id": 0, "vector": [0.0]}, row] if "id" in row else [row], OPTIONS)


def test_row_size_estimates_bound_the_encoded_size() -> None:
    rows = [{"id": i, "vector": list(np.random.default_rng(i).normal(size=64)), "text": "x" * i} for i in range(20)]
    columns = from_records(rows, OPTIONS)
    for row in range(len(columns)):
        encoded = len(encode_body(columns.take(row, row + 1).batch_body()))
        assert encoded <= columns.row_bytes[row] + 64
