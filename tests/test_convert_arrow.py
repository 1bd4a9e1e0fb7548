"""Arrow batches (the data source's path) become exactly the points their values say, or an error naming
the rows, the column and the fix.

The reference is the input itself: generated columns (seeded) are encoded, the body is parsed back with
a JSON parser, and every id, vector and payload value must equal the one put in (floats as float32, as
Spark's ``array<float>`` holds them). Refusals must name the very rows and values at fault.
"""

from __future__ import annotations

import datetime
import decimal
import math
import random
import uuid
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from dagster_qdrant.points.rows_to_points import encode_body, from_record_batch, from_records
from dagster_qdrant.errors import QdrantDataError
from dagster_qdrant.options import WriteOptions

SEED = 20261203
ROWS = 200


def options(**overrides: Any) -> WriteOptions:
    return WriteOptions(endpoint="http://localhost:6333", collection="docs", **overrides)


def decoded(batch: pa.RecordBatch, write: WriteOptions | None = None, first_row: int = 0) -> tuple[dict, dict]:
    """(batch body, points body) of a record batch, parsed back from the JSON sent."""
    columns = from_record_batch(batch, write or options(), first_row)
    return orjson.loads(encode_body(columns.batch_body())), orjson.loads(encode_body(columns.points_body()))


def refused(batch: pa.RecordBatch, write: WriteOptions | None = None, first_row: int = 0) -> QdrantDataError:
    with pytest.raises(QdrantDataError) as raised:
        from_record_batch(batch, write or options(), first_row)
    return raised.value


# --- ids ------------------------------------------------------------------------------------------


ID_TYPES = [pa.uint64(), pa.int64(), pa.uint32(), pa.int32(), pa.int8()]


@pytest.mark.parametrize("kind", ID_TYPES, ids=str)
def test_integer_ids_of_every_width_are_sent_as_given(kind: pa.DataType) -> None:
    rng = random.Random(SEED)
    top = min(2**64 - 1, 2 ** (kind.bit_width - (0 if pa.types.is_unsigned_integer(kind) else 1)) - 1)
    ids = rng.sample(range(top + 1), 20) if top < 10**6 else [rng.randrange(top + 1) for _ in range(20)]
    ids = list(dict.fromkeys([0, top, *ids]))
    sent, points = decoded(pa.RecordBatch.from_pydict({"id": pa.array(ids, kind), "vector": [[1.0]] * len(ids)}))
    assert sent["batch"]["ids"] == ids and [point["id"] for point in points["points"]] == ids


def test_decimal_and_digit_ids_are_the_integers_they_spell_up_to_2_64_minus_1() -> None:
    rng = random.Random(SEED)
    ids = [0, 1, 2**63, 2**64 - 1, *(rng.randrange(2**64) for _ in range(30))]
    vectors = [[0.5]] * len(ids)
    as_decimal = pa.array([decimal.Decimal(i) for i in ids], pa.decimal128(20, 0))
    assert decoded(pa.RecordBatch.from_pydict({"id": as_decimal, "vector": vectors}))[0]["batch"]["ids"] == ids
    as_text = pa.array([str(i) for i in ids], pa.string())
    assert decoded(pa.RecordBatch.from_pydict({"id": as_text, "vector": vectors}))[0]["batch"]["ids"] == ids
    as_large = pa.array([str(i) for i in ids], pa.large_string())
    assert decoded(pa.RecordBatch.from_pydict({"id": as_large, "vector": vectors}))[0]["batch"]["ids"] == ids


def test_uuid_ids_in_any_spelling_or_as_16_bytes_are_sent_hyphenated_lowercase() -> None:
    rng = random.Random(SEED)
    points = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(25)]
    points.append(uuid.UUID(int=12345678901234567890123456789012))  # 32 hex digits that are all digits
    expected = [str(point) for point in points]
    spellings = [[str(p).upper() for p in points], [p.hex for p in points], [f"{{{p}}}" for p in points]]
    for spelled in spellings:
        batch = pa.RecordBatch.from_pydict({"id": spelled, "vector": [[1.0]] * len(points)})
        assert decoded(batch)[0]["batch"]["ids"] == expected
    raw = pa.array([point.bytes for point in points], pa.binary(16))
    assert decoded(pa.RecordBatch.from_pydict({"id": raw, "vector": [[1.0]] * len(points)}))[0]["batch"]["ids"] == expected


def test_null_ids_name_their_rows_counted_from_the_first_row() -> None:
    ids = pa.array([1, None, 3, None], pa.int64())
    error = refused(pa.RecordBatch.from_pydict({"id": ids, "vector": [[1.0]] * 4}), first_row=100)
    assert "Id column 'id' is null in row(s) [101, 103]" in str(error)


def test_negative_ids_name_the_values_and_rows() -> None:
    ids = pa.array([5, -1, 7, -9], pa.int64())
    error = refused(pa.RecordBatch.from_pydict({"id": ids, "vector": [[1.0]] * 4}), first_row=10)
    assert "negative ids [-1, -9] (rows [11, 13])" in str(error) and "unsigned 64-bit" in str(error)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("007", "Row 11: id '007' in 'id' has leading zeros; write the integer id as its digits alone ('7')"),
        (str(2**64), f"Row 11: id '{2**64}' in 'id' is out of range"),
        ("+5", "Row 11: id '+5' in 'id' is not an id: write an integer id as its digits alone"),
        (" 5", "Row 11: id ' 5' in 'id' is not an id"),
        ("-5", "Row 11: id '-5' in 'id' is not an id"),
        ("five", "Row 11: id 'five' in 'id' is neither an unsigned integer nor a UUID"),
        ("٣", "Row 11: id '٣' in 'id' is neither an unsigned integer nor a UUID"),  # a digit, not ASCII
    ],
)
def test_text_ids_that_are_no_id_are_refused_naming_row_and_value(value: str, words: str) -> None:
    batch = pa.RecordBatch.from_pydict({"id": ["1", value], "vector": [[1.0], [2.0]]})
    assert words in str(refused(batch, first_row=10))


@pytest.mark.parametrize("value", ["1.5", str(2**64), "-1", "NaN"])
def test_decimal_ids_that_are_no_whole_number_in_range_are_refused(value: str) -> None:
    ids = pa.array([decimal.Decimal(1), decimal.Decimal(value)], pa.decimal128(38, 1) if "." in value else pa.decimal128(38, 0)) if value != "NaN" else None
    if ids is None:  # Arrow decimals hold no NaN; the records path can
        with pytest.raises(QdrantDataError, match=r"Row 1: id NaN in 'id' is not a whole number in range"):
            from_records([{"id": decimal.Decimal(1), "vector": [1.0]}, {"id": decimal.Decimal("NaN"), "vector": [1.0]}], options())
        return
    error = refused(pa.RecordBatch.from_pydict({"id": ids, "vector": [[1.0], [2.0]]}))
    assert f"Row 1: id {decimal.Decimal(value)} in 'id' is not a whole number in range" in str(error)


@pytest.mark.parametrize("kind", [pa.float64(), pa.bool_(), pa.date32()], ids=str)
def test_id_columns_of_other_types_are_refused_naming_the_type(kind: pa.DataType) -> None:
    values = pa.array([1.0, 2.0] if kind == pa.float64() else [True, False] if kind == pa.bool_() else [0, 1], kind)
    error = refused(pa.RecordBatch.from_pydict({"id": values, "vector": [[1.0], [2.0]]}))
    assert f"Id column 'id' has type {kind}; ids must be unsigned integers" in str(error)


# --- dense vectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [pa.list_(pa.float32()), pa.list_(pa.float64()), pa.large_list(pa.float32()), pa.list_(pa.int32()),
     pa.list_(pa.float32(), 3), pa.list_(pa.float64(), 3)],
    ids=str,
)
def test_vectors_of_every_list_type_are_sent_as_their_float32_values(kind: pa.DataType) -> None:
    rng = random.Random(SEED)
    integers = pa.types.is_integer(kind.value_type)
    vectors = [[rng.randrange(-1000, 1000) if integers else rng.uniform(-1e6, 1e6) for _ in range(3)] for _ in range(50)]
    batch = pa.RecordBatch.from_pydict({"id": list(range(50)), "vector": pa.array(vectors, kind)})
    sent, points = decoded(batch)
    expected = np.asarray(vectors, dtype=np.float32)  # what array<float> holds; the JSON names each float32
    assert np.array_equal(np.asarray(sent["batch"]["vectors"], dtype=np.float32), expected)
    assert np.array_equal(np.asarray([point["vector"] for point in points["points"]], dtype=np.float32), expected)


def test_sliced_batches_send_their_own_rows_only() -> None:
    vectors = pa.array([[float(i), float(-i)] for i in range(10)], pa.list_(pa.float32(), 2))
    batch = pa.RecordBatch.from_pydict({"id": list(range(10)), "vector": vectors, "x": list(range(10))}).slice(4, 3)
    sent, _ = decoded(batch)
    assert sent["batch"] == {"ids": [4, 5, 6], "vectors": [[4.0, -4.0], [5.0, -5.0], [6.0, -6.0]],
                             "payloads": [{"x": 4}, {"x": 5}, {"x": 6}]}


@pytest.mark.parametrize(
    ("vectors", "kind", "words", "bad"),
    [
        ([[1.0], None, [2.0], None], pa.list_(pa.float32()), "Vector column 'vector' is null", [11, 13]),
        ([[1.0], [], [2.0], []], pa.list_(pa.float32()), "Vector column 'vector' has empty vectors", [11, 13]),
        ([[1.0, 2.0], [1.0], [1.0, 2.0, 3.0], [4.0, 5.0]], pa.list_(pa.float32()),
         "has vectors of different sizes ([1, 2, 3], first row size 2)", [11, 12]),
        ([[1.0, None], [1.0, 2.0], [None, 2.0], [1.0, 2.0]], pa.list_(pa.float32()),
         "Vector column 'vector' has null elements", [10, 12]),
        ([[1.0, None], [1.0, 2.0], [None, 2.0], [1.0, 2.0]], pa.list_(pa.float32(), 2),
         "Vector column 'vector' has null elements", [10, 12]),
        ([[1.0, 2.0], [math.nan, 1.0], [1.0, 2.0], [1.0, -math.inf]], pa.list_(pa.float32()),
         "Vector column 'vector' has NaN or infinite values", [11, 13]),
        ([[1.0, 2.0], [1e39, 1.0], [1.0, 2.0], [1.0, 2.0]], pa.list_(pa.float64()),
         "Vector column 'vector' has NaN or infinite values", [11]),  # beyond float32: infinite once cast
    ],
)
def test_bad_vectors_name_exactly_the_points_at_fault(vectors: list, kind: pa.DataType, words: str, bad: list) -> None:
    batch = pa.RecordBatch.from_pydict({"id": [10, 11, 12, 13], "vector": pa.array(vectors, kind)})
    error = refused(batch)
    assert words in str(error) and error.point_ids == bad, (str(error), error.point_ids)


def test_vector_columns_that_hold_no_numbers_say_what_to_cast() -> None:
    error = refused(pa.RecordBatch.from_pydict({"id": [1], "vector": ["1,2"]}))
    assert "Vector column 'vector' has type string; a vector must be an array of floats" in str(error)
    assert "vector_to_array" in str(error)
    error = refused(pa.RecordBatch.from_pydict({"id": [1], "vector": pa.array([["a"]], pa.list_(pa.string()))}))
    assert "Vector column 'vector' holds string, not numbers" in str(error)


def test_rows_without_id_are_named_by_row_number() -> None:
    batch = pa.RecordBatch.from_pydict({"vector": pa.array([[1.0], None], pa.list_(pa.float32()))})
    assert refused(batch, options(id_field=None), first_row=5).point_ids == ["row 6"]


# --- sparse vectors ---------------------------------------------------------------------------------


SPARSE = pa.struct([("indices", pa.list_(pa.int64())), ("values", pa.list_(pa.float64()))])


def test_sparse_vectors_are_sent_as_given_and_null_as_empty() -> None:
    rng = random.Random(SEED)
    rows = []
    for _ in range(40):
        indices = rng.sample(range(1000), rng.randrange(0, 6))
        rows.append({"indices": indices, "values": [rng.uniform(-5, 5) for _ in indices]})
    rows[3] = None
    batch = pa.RecordBatch.from_pydict({"id": list(range(40)), "vector": [[1.0]] * 40, "text": pa.array(rows, SPARSE)})
    write = options(sparse_vector_fields={"text": "bm25"}, vector_fields={"vector": "dense"}, vector_field=None)
    sent, points = decoded(batch, write)
    expected = [row or {"indices": [], "values": []} for row in rows]
    assert sent["batch"]["vectors"]["bm25"] == expected
    assert [point["vector"]["bm25"] for point in points["points"]] == expected
    assert [point["vector"]["dense"] for point in points["points"]] == [[1.0]] * 40
    assert "payloads" in sent["batch"] and all("text" not in p for p in sent["batch"]["payloads"])


F32_PROBLEM = "has NaN or infinite values, or values beyond float32 (Qdrant stores sparse values as float32)"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"indices": [1, 2], "values": [1.0]}, "has 2 indices but 1 values"),
        ({"indices": [1, -2], "values": [1.0, 2.0]}, "has indices that are not unsigned 32-bit integers (Qdrant's sparse indices are u32)"),
        ({"indices": [1, 1], "values": [1.0, 2.0]}, "has repeated indices"),
        ({"indices": [1, 2], "values": [1.0, math.nan]}, F32_PROBLEM),
        ({"indices": [1, 2], "values": [math.inf, 1.0]}, F32_PROBLEM),
        ({"indices": [1, 2], "values": [1e39, 1.0]}, F32_PROBLEM),
        ({"indices": [1, 2**32], "values": [1.0, 1.0]}, "has indices that are not unsigned 32-bit integers (Qdrant's sparse indices are u32)"),
    ],
)
def test_bad_sparse_vectors_name_the_point(value: dict, words: str) -> None:
    batch = pa.RecordBatch.from_pydict({"id": [7, 8], "text": pa.array([{"indices": [0], "values": [1.0]}, value], SPARSE)})
    error = refused(batch, options(vector_field=None, sparse_vector_fields={"text": "bm25"}))
    assert f"Sparse vector column 'text' {words} (point 8)" in str(error) and error.point_ids == [8]


@pytest.mark.parametrize("value", [[1, 2], "1:2", {"indices": [1]}, {"values": [1.0]}, {"indices": [True], "values": [1.0]}])
def test_sparse_values_that_are_no_indices_and_values_are_refused(value: Any) -> None:
    rows = [{"id": 1, "text": {"indices": [0], "values": [1.0]}}, {"id": 2, "text": value}]
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options(vector_field=None, sparse_vector_fields={"text": "bm25"}))
    assert raised.value.point_ids == [2] and "Sparse vector column 'text'" in str(raised.value)


# --- payloads -------------------------------------------------------------------------------------


def test_payload_values_of_every_json_type_come_back_as_given() -> None:
    rng = random.Random(SEED)
    moment = datetime.datetime(2024, 5, 3, 12, 30, 15, 123456)
    columns = {
        "id": list(range(ROWS)),
        "vector": [[1.0]] * ROWS,
        "i": [rng.randrange(-(2**63), 2**63) for _ in range(ROWS)],
        "f": [rng.choice([rng.uniform(-1e9, 1e9), None, 0.0, -0.5]) for _ in range(ROWS)],
        "s": [rng.choice(["", "é", "日本", "a\"b", None]) for _ in range(ROWS)],
        "b": [rng.choice([True, False, None]) for _ in range(ROWS)],
        "l": [[rng.randrange(10) for _ in range(rng.randrange(4))] for _ in range(ROWS)],
        "o": [{"k": rng.choice(["x", None]), "n": [rng.random()]} for _ in range(ROWS)],
        "t": pa.array([moment] * ROWS, pa.timestamp("us")),
        "d": pa.array([moment.date()] * ROWS, pa.date32()),
        "m": pa.array([[("a", 1), ("b", rng.randrange(5))] for _ in range(ROWS)], pa.map_(pa.string(), pa.int64())),
        "lm": pa.array([[[("k", "v")]] for _ in range(ROWS)], pa.list_(pa.map_(pa.string(), pa.string()))),
    }
    sent, _ = decoded(pa.RecordBatch.from_pydict(columns))
    for row, payload in enumerate(sent["batch"]["payloads"]):
        for key in ("i", "f", "s", "b", "l", "o"):
            assert payload[key] == columns[key][row], (key, row)
        assert payload["t"] == moment.isoformat() + "+00:00" and payload["d"] == moment.date().isoformat()
        assert payload["m"] == {"a": 1, "b": columns["m"][row].as_py()[1][1]}
        assert payload["lm"] == [{"k": "v"}]


def test_nanosecond_timestamps_keep_their_microseconds_and_zone() -> None:
    stamps = pa.array([1_714_739_415_123_456_789], pa.timestamp("ns", "UTC"))
    sent, _ = decoded(pa.RecordBatch.from_pydict({"id": [1], "vector": [[1.0]], "t": stamps}))
    assert sent["batch"]["payloads"] == [{"t": "2024-05-03T12:30:15.123456+00:00"}]


def test_payload_fields_choose_the_columns_and_empty_means_no_payload() -> None:
    batch = pa.RecordBatch.from_pydict({"id": [1, 2], "vector": [[1.0], [2.0]], "a": [1, 2], "b": ["x", "y"]})
    assert decoded(batch, options(payload_fields=("b",)))[0]["batch"]["payloads"] == [{"b": "x"}, {"b": "y"}]
    assert decoded(batch)[0]["batch"]["payloads"] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


NON_FINITE_COLUMNS = [
    ("x", pa.array([1.0, math.nan, 2.0, math.inf], pa.float64()), "x", [11, 13]),
    ("x", pa.array([1.0, -math.inf, None, 2.0], pa.float32()), "x", [11]),
    ("l", pa.array([[1.0], [2.0, math.nan], None, [math.inf]], pa.list_(pa.float64())), "l[]", [11, 13]),
    ("l", pa.array([[1.0], [2.0], [3.0], [math.nan]], pa.large_list(pa.float64())), "l[]", [13]),
    ("l", pa.array([[1.0, 1.0], [2.0, 1.0], [3.0, math.nan], [1.0, 1.0]], pa.list_(pa.float64(), 2)), "l[]", [12]),
    ("o", pa.array([{"a": 1.0, "b": 1.0}, {"a": 1.0, "b": math.nan}, {"a": 1.0, "b": 2.0}, None],
                   pa.struct([("a", pa.float64()), ("b", pa.float64())])), "o.b", [11]),
    ("lo", pa.array([[{"v": 1.0}], [], [{"v": 1.0}, {"v": math.inf}], [{"v": 2.0}]],
                    pa.list_(pa.struct([("v", pa.float64())]))), "lo[].v", [12]),
    ("m", pa.array([[("a", 1.0)], [("a", math.nan)], [], [("b", 2.0)]], pa.map_(pa.string(), pa.float64())), "m[]", [11]),
    ("dict", pa.array([1.0, math.nan, 1.0, 1.0]).dictionary_encode(), "dict", [11]),
]


@pytest.mark.parametrize(("column", "values", "path", "bad"), NON_FINITE_COLUMNS, ids=[c[2] + str(c[3]) for c in NON_FINITE_COLUMNS])
def test_nan_and_infinity_in_payload_columns_are_refused_naming_the_field_and_points(
    column: str, values: pa.Array, path: str, bad: list
) -> None:
    batch = pa.RecordBatch.from_pydict({"id": [10, 11, 12, 13], "vector": [[1.0]] * 4, column: values})
    error = refused(batch)
    assert f"Payload column {path!r} holds NaN or infinite values" in str(error) and "non_finite='null'" in str(error)
    assert error.point_ids == bad
    stored = decoded(batch, options(non_finite="null"))[0]["batch"]["payloads"]
    assert len(stored) == 4  # with non_finite="null" the same rows are written, NaN/inf stored as null


def test_nan_under_a_null_parent_is_not_a_value_and_is_not_refused() -> None:
    inner = pa.array([math.nan], pa.float64())
    parent = pa.StructArray.from_arrays([inner], names=["v"], mask=pa.array([True]))  # the one struct is null
    listed = pa.ListArray.from_arrays(pa.array([0, 1]), inner, mask=pa.array([True]))  # the one list is null
    sent, _ = decoded(pa.RecordBatch.from_pydict({"id": [1], "vector": [[1.0]], "o": parent, "l": listed}))
    assert sent["batch"]["payloads"] == [{"o": None, "l": None}]


def test_sliced_list_columns_are_checked_on_their_own_rows() -> None:
    values = pa.array([[math.nan], [1.0], [2.0], [math.inf]], pa.list_(pa.float64()))
    batch = pa.RecordBatch.from_pydict({"id": [0, 1, 2, 3], "vector": [[1.0]] * 4, "l": values}).slice(1, 2)
    assert decoded(batch)[0]["batch"]["payloads"] == [{"l": [1.0]}, {"l": [2.0]}]
    fixed = pa.array([[math.nan], [1.0], [2.0], [math.inf]], pa.list_(pa.float64(), 1))
    batch = pa.RecordBatch.from_pydict({"id": [0, 1, 2, 3], "vector": [[1.0]] * 4, "l": fixed}).slice(1, 2)
    assert decoded(batch)[0]["batch"]["payloads"] == [{"l": [1.0]}, {"l": [2.0]}]


UNSUPPORTED = [
    (pa.array([b"x"], pa.binary()), "binary"),
    (pa.array([b"x"], pa.large_binary()), "binary"),
    (pa.array([b"xy"], pa.binary(2)), "binary"),
    (pa.array([b"x"], pa.binary_view()), "binary"),
    (pa.array([datetime.timedelta(seconds=1)], pa.duration("s")), "duration[s]"),
    (pa.array([[(1, "a")]], pa.map_(pa.int64(), pa.string())), "a map without string keys"),
    (pa.array([[("k", b"x")]], pa.map_(pa.string(), pa.binary())), "binary"),
    (pa.array([{"a": 1, "b": b"x"}], pa.struct([("a", pa.int64()), ("b", pa.binary())])), "binary"),
    (pa.array([[b"x"]], pa.list_(pa.binary())), "binary"),
    (pa.array([[b"x"]], pa.large_list(pa.binary())), "binary"),
    (pa.array([[b"x"]], pa.list_(pa.binary(), 1)), "binary"),
    (pa.array([b"x"]).dictionary_encode(), "binary"),
]


@pytest.mark.parametrize(("values", "problem"), UNSUPPORTED, ids=[str(values.type) for values, _ in UNSUPPORTED])
def test_payload_columns_json_cannot_hold_are_refused_by_name_and_type(values: pa.Array, problem: str) -> None:
    error = refused(pa.RecordBatch.from_pydict({"id": [1], "vector": [[1.0]], "col": values}))
    assert f"Payload column 'col' has type {values.type} ({problem} cannot be a JSON payload)" in str(error)


def test_supported_nested_types_are_accepted() -> None:
    columns = {
        "id": [1], "vector": [[1.0]],
        "m": pa.array([[("k", 1)]], pa.map_(pa.large_string(), pa.int64())),
        "s": pa.array([{"a": [1], "b": {"c": "d"}}]),
        "l": pa.array([["x"]], pa.large_list(pa.string())),
        "d": pa.array(["x"]).dictionary_encode(),
    }
    assert decoded(pa.RecordBatch.from_pydict(columns))[0]["batch"]["payloads"] == [
        {"m": {"k": 1}, "s": {"a": [1], "b": {"c": "d"}}, "l": ["x"], "d": "x"}
    ]
    struct_map = pa.array([{"m": [("k", 2)]}, None], pa.struct([("m", pa.map_(pa.string(), pa.int64()))]))
    sent, _ = decoded(pa.RecordBatch.from_pydict({"id": [1, 2], "vector": [[1.0]] * 2, "s": struct_map}))
    assert sent["batch"]["payloads"] == [{"s": {"m": {"k": 2}}}, {"s": None}]


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("error", "1.25", 1.25),
        ("string", "1.25", "1.25"),
        ("string", "0.10", "0.10"),
        ("string", "0.12345678901234567891", "0.12345678901234567891"),
        ("double", "0.10", 0.1),
        ("double", "0.12345678901234567891", 0.12345678901234568),
    ],
)
def test_decimals_are_written_as_decimal_as_says(mode: str, value: str, expected: Any) -> None:
    scale = -decimal.Decimal(value).as_tuple().exponent
    column = pa.array([decimal.Decimal(value)], pa.decimal128(38, scale))
    sent, _ = decoded(pa.RecordBatch.from_pydict({"id": [1], "vector": [[1.0]], "x": column}), options(decimal_as=mode))
    assert sent["batch"]["payloads"] == [{"x": expected}]
    assert type(sent["batch"]["payloads"][0]["x"]) is type(expected)


def test_a_decimal_a_double_cannot_carry_is_refused_naming_point_and_value() -> None:
    values = ["1.5", "0.12345678901234567891", "2.5", "0.98765432109876543211"]
    column = pa.array([decimal.Decimal(v) for v in values], pa.decimal128(38, 20))
    error = refused(pa.RecordBatch.from_pydict({"id": [1, 2, 3, 4], "vector": [[1.0]] * 4, "x": column}))
    assert (
        f"Payload field 'x' of point 2: decimal 0.12345678901234567891 would come back from Qdrant as "
        f"{float(values[1])!r}" in str(error)
    )
    assert "decimal_as='string'" in str(error) and error.point_ids == [2, 4]


def test_non_finite_decimals_are_refused_or_null_as_non_finite_says() -> None:
    rows = [{"id": 1, "vector": [1.0], "x": decimal.Decimal("NaN")}, {"id": 2, "vector": [1.0], "x": decimal.Decimal("1")}]
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options())
    assert "Payload field 'x' of point 1: decimal NaN is not a number" in str(raised.value)
    assert raised.value.point_ids == [1]
    columns = from_records(rows, options(non_finite="null"))
    assert [orjson.loads(payload) for payload in columns.payloads] == [{"x": None}, {"x": 1.0}]


# --- the records path (write_qdrant_points with dicts): NaN and infinity anywhere in a payload ------


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (math.nan, "x"),
        (np.float32("inf"), "x"),
        ({"a": 1.0, "b": {"c": -math.inf}}, "x.b.c"),
        ([1.0, math.nan], "x[]"),
        ((1.0, [2.0, math.inf]), "x[][]"),
        (np.array([1.0, np.nan]), "x[]"),
        (np.array([1.0, 2.0, np.inf], dtype=np.float32), "x[]"),
        ([{"v": 1.0}, {"w": [math.nan]}], "x[].w[]"),
    ],
    ids=["nan", "f32-inf", "nested", "list", "tuple-list", "ndarray", "f32-ndarray", "list-of-dicts"],
)
def test_nan_and_infinity_in_record_payloads_are_refused_naming_field_and_points(value: Any, path: str) -> None:
    rows = [{"id": i, "vector": [1.0], "x": 1.0} for i in range(5)]
    rows[1]["x"] = value
    rows[3]["x"] = value
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options())
    assert f"Payload field {path!r} holds NaN or infinite values" in str(raised.value)
    assert raised.value.point_ids == [1, 3] and "non_finite='null'" in str(raised.value)
    stored = from_records(rows, options(non_finite="null"))
    assert len(stored.payloads) == 5


def test_finite_record_payloads_with_nulls_are_written_as_given() -> None:
    rows = [{"id": 1, "vector": [1.0], "x": None, "y": [None, 1.5], "z": {"n": None}, "w": np.array([1.0, 2.0]),
             "t": (1, "a"), "s": {"only"}}]
    assert orjson.loads(from_records(rows, options()).payloads[0]) == {
        "x": None, "y": [None, 1.5], "z": {"n": None}, "w": [1.0, 2.0], "t": [1, "a"], "s": ["only"]
    }


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (b"raw", "Payload field 'x' of point 1 cannot be JSON (Type is not JSON serializable: bytes)"),
        (object(), "Payload field 'x' of point 1 cannot be JSON (Type is not JSON serializable: object)"),
        (np.array([{"v": 1}], dtype=object), "Payload field 'x' of point 1 cannot be JSON"),
    ],
)
def test_record_payload_values_json_cannot_hold_name_field_point_and_fix(value: Any, words: str) -> None:
    rows = [{"id": 0, "vector": [1.0], "x": 1}, {"id": 1, "vector": [1.0], "x": value}, {"id": 2, "vector": [1.0], "x": value}]
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options())
    assert words in str(raised.value) and "leave it out with 'payload_fields'" in str(raised.value)
    assert raised.value.point_ids == [1, 2]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        (None, "Vector 'vector' is missing or null"),
        ("1,2", "Vector 'vector' must be a list or array of numbers, not text or a dict"),
        ({"a": 1}, "Vector 'vector' must be a list or array of numbers, not text or a dict"),
        ([], "Vector 'vector' is empty"),
        ([1.0, 2.0, 3.0], "Vector 'vector' has different sizes ([2, 3], first row size 2)"),
        ([1.0, math.nan], "Vector column 'vector' has NaN or infinite values"),
        ([1.0, 1e39], "Vector column 'vector' has NaN or infinite values"),  # beyond float32
    ],
)
def test_bad_record_vectors_name_exactly_the_points_at_fault(bad: Any, words: str) -> None:
    rows = [{"id": i, "vector": [float(i), 1.0]} for i in range(6)]
    rows[2]["vector"] = bad
    rows[4]["vector"] = bad
    with pytest.raises(QdrantDataError) as raised:
        from_records(rows, options())
    assert words in str(raised.value) and raised.value.point_ids == [2, 4], (str(raised.value), raised.value.point_ids)


def test_record_vectors_that_are_no_numbers_are_refused() -> None:
    with pytest.raises(QdrantDataError, match="Vector 'vector' must be a list or array of numbers in every row"):
        from_records([{"id": 1, "vector": [1.0]}, {"id": 2, "vector": 5}], options())
    with pytest.raises(QdrantDataError, match="Vector 'vector' holds values that are not numbers"):
        from_records([{"id": 1, "vector": [1.0]}, {"id": 2, "vector": ["x"]}], options())


def test_record_vectors_are_sent_as_their_float32_values() -> None:
    rng = random.Random(SEED)
    vectors = [[rng.uniform(-1e6, 1e6) for _ in range(4)] for _ in range(30)]
    rows = [{"id": i, "vector": np.asarray(v) if i % 2 else v} for i, v in enumerate(vectors)]
    body = orjson.loads(encode_body(from_records(rows, options()).batch_body()))
    assert np.array_equal(np.asarray(body["batch"]["vectors"], dtype=np.float32), np.asarray(vectors, dtype=np.float32))
    assert body["batch"]["ids"] == list(range(30))
