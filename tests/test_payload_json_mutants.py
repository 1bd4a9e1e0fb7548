"""Payload values -> JSON (dagster_qdrant/points/payload_to_json.py): the cases its mutants showed untested.

References: the input values (each payload parsed back from the JSON sent must equal the value given,
Python's own `datetime` for a timestamp's zone), Qdrant Edge in-process for which doubles come back bit for
bit (`_edge_round_trip` of tests/test_exact_doubles.py), and the JSON rule that there is no NaN or
infinity. Refusals must name the column or field, the points and the fix.
"""

from __future__ import annotations

import datetime
import decimal
import math
import struct
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from test_exact_doubles import _edge_round_trip

from dagster_qdrant.errors import QdrantDataError
from dagster_qdrant.options import WriteOptions
from dagster_qdrant.points.payload_to_json import exact_in_qdrant
from dagster_qdrant.points.rows_to_points import encode_body, from_record_batch, from_records


def options(**overrides: Any) -> WriteOptions:
    return WriteOptions(endpoint="http://localhost:6333", collection="docs", **overrides)


def payloads(batch: pa.RecordBatch) -> list[Any]:
    return orjson.loads(encode_body(from_record_batch(batch, options(), 0).batch_body()))["batch"]["payloads"]


def batch_of(column: pa.Array) -> pa.RecordBatch:
    rows = len(column)
    return pa.RecordBatch.from_pydict({"id": list(range(rows)), "vector": [[1.0]] * rows, "x": column})


def test_nanosecond_timestamps_keep_a_zone_other_than_utc() -> None:
    nanoseconds = [1_714_739_415_123_456_789, 86_400_000_000_999]
    for zone, offset in [("+05:30", datetime.timedelta(hours=5, minutes=30)), ("-08:00", datetime.timedelta(hours=-8))]:
        sent = payloads(batch_of(pa.array(nanoseconds, pa.timestamp("ns", zone))))
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        expected = [(epoch + datetime.timedelta(microseconds=ns // 1000)).astimezone(datetime.timezone(offset)).isoformat()
                    for ns in nanoseconds]
        assert [payload["x"] for payload in sent] == expected


def test_nan_in_a_list_of_lists_column_is_refused_naming_the_path_and_points() -> None:
    values = [[[1.0]], [[2.0], [math.nan]], None, [[], [-math.inf, 1.0]], [[3.0]]]
    with pytest.raises(QdrantDataError) as raised:
        from_record_batch(batch_of(pa.array(values, pa.list_(pa.list_(pa.float64())))), options(), 0)
    assert "Payload column 'x[][]' holds NaN or infinite values" in str(raised.value)
    assert raised.value.point_ids == [1, 3]


@pytest.mark.parametrize(
    "column",
    [
        pa.array([pa.MonthDayNano([1, 2, 3])], pa.month_day_nano_interval()),
        pa.UnionArray.from_sparse(pa.array([0], pa.int8()), [pa.array([1]), pa.array(["a"])]),
    ],
    ids=["interval", "union"],
)
def test_interval_and_union_columns_are_refused_by_name_and_type(column: pa.Array) -> None:
    with pytest.raises(QdrantDataError) as raised:
        from_record_batch(batch_of(column), options(), 0)
    assert f"Payload column 'x' has type {column.type} ({column.type} cannot be a JSON payload)" in str(raised.value)


@pytest.mark.parametrize(
    "kind",
    [pa.large_list(pa.map_(pa.string(), pa.int64())), pa.list_(pa.map_(pa.string(), pa.int64()), 2)],
    ids=["large-list", "fixed-size-list"],
)
def test_maps_inside_large_and_fixed_size_lists_become_objects(kind: pa.DataType) -> None:
    values = [[[("a", 1), ("b", 2)], []], [[("c", 3)], [("d", 4), ("e", 5)]]]
    expected = [[dict(pairs) for pairs in row] for row in values]
    assert [payload["x"] for payload in payloads(batch_of(pa.array(values, kind)))] == expected


def test_zeros_and_doubles_scaled_by_exactly_1e22_are_exact_as_the_engine_keeps_them(tmp_path: Any) -> None:
    values = [0.0, -0.0, 1e22, 1e-22, 1.23e24, 7e-20]
    back = _edge_round_trip(values, str(tmp_path / "shard"))
    assert [struct.pack("<d", v) for v in values] == [struct.pack("<d", b) for b in back]
    assert all(exact_in_qdrant(value) for value in values)
    assert not any(exact_in_qdrant(value) for value in (math.nan, math.inf, -math.inf))  # JSON has no such number


def test_a_decimal_a_double_cannot_carry_is_refused_naming_both_ways_out() -> None:
    rows = [{"id": 1, "vector": [1.0], "d": decimal.Decimal("0.1000000000000000055511151231257827")}]
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options())
    assert str(raised.value).endswith(
        "a double cannot carry it exactly; write with decimal_as='string' to store its exact text, or "
        "decimal_as='double' to accept the rounding (first point ids [1])"
    )


def test_nan_in_different_fields_of_two_records_names_the_first_field() -> None:
    rows = [{"id": 0, "vector": [1.0], "a": 1.0}, {"id": 1, "vector": [1.0], "a": math.nan},
            {"id": 2, "vector": [1.0], "a": 1.0, "b": [math.inf]}]
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options())
    assert "Payload field 'a' holds NaN or infinite values" in str(raised.value)
    assert raised.value.point_ids == [1, 2]


def test_the_field_named_is_the_bad_one_not_a_numpy_or_dated_neighbour() -> None:
    rows = [{"id": 7, "vector": [1.0], "n": np.array([1.0, 2.0]), "k": {1: "one"},
             "t": datetime.datetime(2024, 1, 2, 3, 4, 5), "x": b"raw"}]
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options())
    assert "Payload field 'x' of point 7 cannot be JSON" in str(raised.value)
    assert raised.value.point_ids == [7]


def test_a_payload_whose_own_keys_cannot_be_json_is_refused_naming_the_points() -> None:
    rows = [{"id": i, "vector": [1.0], ("a", "b"): 1} for i in range(12)]  # every value alone is fine
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options())
    assert str(raised.value) == f"A payload cannot be encoded as JSON (first point ids {list(range(10))})"
    assert raised.value.point_ids == list(range(10))


def test_list_view_columns_are_checked_and_converted_as_lists_are() -> None:
    doubles = [[1.0], None, [2.0, math.nan], [], [-math.inf]]
    for kind in (pa.list_view(pa.float64()), pa.large_list_view(pa.float64())):
        with pytest.raises(QdrantDataError) as raised:
            from_record_batch(batch_of(pa.array(doubles, kind)), options(), 0)
        assert "Payload column 'x[]' holds NaN or infinite values" in str(raised.value)
        assert raised.value.point_ids == [2, 4]
    maps = [[[("a", 1)], []], None, [[("b", 2), ("c", 3)]]]
    sent = payloads(batch_of(pa.array(maps, pa.list_view(pa.map_(pa.string(), pa.int64())))))
    assert [payload["x"] for payload in sent] == [[{"a": 1}, {}], None, [{"b": 2, "c": 3}]]
    with pytest.raises(QdrantDataError) as raised:
        from_record_batch(batch_of(pa.array([[b"raw"]], pa.list_view(pa.binary()))), options(), 0)
    assert "Payload column 'x' has type list_view<item: binary> (binary cannot be a JSON payload)" in str(raised.value)
