"""Scroll pages decoded for the read hot path: the same values orjson gives, dense vectors as float64 arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from pyspark.sql.types import ArrayType, DoubleType, FloatType, LongType, StringType, StructField, StructType

from dagster_qdrant.spark.points_to_arrow import PointBatchBuilder
from dagster_qdrant.scroll_decoding import decode_scroll_response

PAGE = {
    "result": {
        "points": [
            {
                "id": 1,
                "payload": {"title": "a", "tags": ["x", {"deep": [1, 2.5]}], "none": None, "flag": True},
                "vector": [0.47318864, -1, 3.5e-08],
            },
            {
                "id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
                "payload": {},
                "vector": {
                    "dense": [1.5, 2],
                    "sparse": {"indices": [3, 9], "values": [0.25, 0.5]},
                    "multi": [[1, 2], [3, 4]],
                    "empty": [],
                },
            },
            {"id": 3, "payload": {"n": 18446744073709551615}, "vector": None},
            {"id": 4},
        ],
        "next_page_offset": 5,
    },
    "status": "ok",
    "time": 0.001,
}


def plain(value: Any) -> Any:
    """``value`` with every numpy array turned back into a list, for comparing with orjson's decoding."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def test_page_decodes_to_the_values_orjson_gives_with_dense_vectors_as_arrays() -> None:
    content = orjson.dumps(PAGE)
    decoded = decode_scroll_response(content)
    points = decoded["result"]["points"]
    assert plain(decoded["result"]) == orjson.loads(content)["result"]
    assert isinstance(points[0]["vector"], np.ndarray) and points[0]["vector"].dtype == np.float64
    named = points[1]["vector"]
    assert isinstance(named["dense"], np.ndarray) and isinstance(named["empty"], np.ndarray)
    assert named["multi"] == [[1, 2], [3, 4]], "a multivector keeps its rows (as_buffer would flatten them)"
    assert named["sparse"] == {"indices": [3, 9], "values": [0.25, 0.5]}
    assert decoded["result"]["next_page_offset"] == 5


def test_float32_text_comes_back_as_the_same_float32() -> None:
    vectors = np.random.default_rng(7).standard_normal((50, 16)).astype(np.float32)
    page = {"result": {"points": [{"id": i, "vector": vectors[i]} for i in range(50)], "next_page_offset": None}}
    content = orjson.dumps(page, option=orjson.OPT_SERIALIZE_NUMPY)  # float32's shortest text, as Qdrant writes
    points = decode_scroll_response(content)["result"]["points"]
    assert np.array_equal(np.stack([point["vector"] for point in points]).astype(np.float32), vectors)


def test_a_vector_that_is_not_all_numbers_is_left_as_a_list_for_the_schema_check() -> None:
    content = b'{"result": {"points": [{"id": 1, "vector": [1, "x", true]}], "next_page_offset": null}}'
    assert decode_scroll_response(content)["result"]["points"][0]["vector"] == [1, "x", True]


@pytest.mark.parametrize(
    "content",
    [
        b'{"result": {"points": [{"id": 1, "payload": {"big": 100000000000000000000000}}]}}',  # beyond 64 bits
        b'{"result": null, "status": "ok"}',
        b'{"result": {"next_page_offset": null}}',
    ],
)
def test_what_simdjson_refuses_is_decoded_by_orjson(content: bytes) -> None:
    assert decode_scroll_response(content) == orjson.loads(content)


def test_text_that_is_not_json_raises_orjsons_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        decode_scroll_response(b"<html>not qdrant</html>")


@pytest.mark.parametrize("element", [FloatType(), DoubleType()])
def test_arrow_batches_from_array_vectors_equal_those_from_lists(element: Any) -> None:
    schema = StructType(
        [
            StructField("id", LongType()),
            StructField("title", StringType()),
            StructField("vector", ArrayType(element)),
        ]
    )
    vectors = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)
    page = {
        "result": {
            "points": [
                {"id": i, "payload": {"title": f"t{i}"}, "vector": None if i == 2 else vectors[i]} for i in range(6)
            ],
            "next_page_offset": None,
        }
    }
    content = orjson.dumps(page, option=orjson.OPT_SERIALIZE_NUMPY)
    builder = PointBatchBuilder(schema, {"vector": ""}, "docs")
    from_arrays = builder.to_batch(decode_scroll_response(content)["result"]["points"])
    from_lists = builder.to_batch(orjson.loads(content)["result"]["points"])
    assert from_arrays.equals(from_lists)
    assert from_arrays.column(2).null_count == 1
