"""Rows -> point columns (dagster_qdrant/points/rows_to_points.py): the behaviours its mutants showed untested.

The reference is the input: ids, vectors and payloads parsed back from the JSON sent must be the values
given, a request's real encoded size must stay within the sum of its rows' estimates (the writer's byte
budget relies on it), content ids must tell apart rows that differ in any vector, and every refusal must
name the rows or points at fault (at most ten) and the fix.
"""

from __future__ import annotations

import decimal
import hashlib
import random
import uuid
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagster_qdrant.errors import QdrantDataError
from dagster_qdrant.options import WriteOptions
from dagster_qdrant.points.rows_to_points import encode_body, from_record_batch, from_records

SEED = 20261205
RULE = "Qdrant ids are unsigned 64-bit integers (0 to 18446744073709551615) or UUIDs"


def options(**overrides: Any) -> WriteOptions:
    return WriteOptions(endpoint="http://localhost:6333", collection="docs", **overrides)


def refused(call: Any, *args: Any, **kwargs: Any) -> QdrantDataError:
    with pytest.raises(QdrantDataError) as raised:
        call(*args, **kwargs)
    return raised.value


def test_a_slice_keeps_its_rows_estimates_and_vector_columns() -> None:
    rows = [{"id": i, "v": [float(i), 1.0], "t": "x" * i} for i in range(6)]
    for write in (options(vector_field="v"), options(vector_field="v", payload_fields=["t"])):
        columns = from_records(rows, write)
        part = columns.take(2, 5)
        assert list(part.row_bytes) == list(columns.row_bytes[2:5]) and part.vector_columns == columns.vector_columns
        assert orjson.loads(encode_body(part.batch_body()))["batch"]["ids"] == [2, 3, 4]


def test_named_vectors_without_sparse_ones_go_by_name_in_the_points_form() -> None:
    rows = [{"id": 1, "a": [1.0, 2.0], "b": [3.0]}]
    columns = from_records(rows, options(vector_fields={"a": "a", "b": "b"}))
    assert orjson.loads(encode_body(columns.points_body()))["points"] == [
        {"id": 1, "vector": {"a": [1.0, 2.0], "b": [3.0]}, "payload": {}}
    ]


def test_id_0_is_an_id_and_negative_ids_are_refused_naming_ten_of_them() -> None:
    ids = [0, 1] + [-i for i in range(1, 13)]
    batch = pa.RecordBatch.from_pydict({"id": pa.array(ids, pa.int64()), "vector": [[1.0]] * len(ids)})
    error = refused(from_record_batch, batch, options(), 100)
    assert str(error) == (
        f"Id column 'id' has negative ids {ids[2:12]} (rows {list(range(102, 112))}); "
        "Qdrant ids are unsigned 64-bit integers or UUIDs"
    )
    zero = pa.RecordBatch.from_pydict({"id": pa.array([0, 3], pa.int32()), "vector": [[1.0], [2.0]]})
    assert orjson.loads(encode_body(from_record_batch(zero, options()).batch_body()))["batch"]["ids"] == [0, 3]


def test_null_ids_vector_rows_and_sizes_are_named_ten_and_five_at_most() -> None:
    batch = pa.RecordBatch.from_pydict({"id": pa.array([None] * 12, pa.int64()), "vector": [[1.0]] * 12})
    assert str(refused(from_record_batch, batch, options())).startswith(
        f"Id column 'id' is null in row(s) {list(range(10))}; every point needs an id")
    sizes = [1, 2, 3, 4, 5, 6, 7] + [2] * 6
    vectors = [[1.0] * size for size in sizes]
    batch = pa.RecordBatch.from_pydict({"id": list(range(13)), "vector": vectors})
    error = refused(from_record_batch, batch, options())
    assert str(error).startswith("Vector column 'vector' has vectors of different sizes ([1, 2, 3, 4, 5], first row "
                                 "size 1); every vector of a column must have the same size")
    assert error.point_ids == list(range(1, 11))
    error = refused(from_records, [{"id": i, "vector": vector} for i, vector in enumerate(vectors)], options())
    assert str(error).startswith("Vector 'vector' has different sizes ([1, 2, 3, 4, 5], first row size 1); every "
                                 "vector of a column must have the same size")
    rows = [{"id": 0, "vector": [1.0, 2.0]}, {"id": 1, "vector": [1.0]}, {"id": 2, "vector": [1.0, 2.0]}]
    error = refused(from_records, rows, options())
    assert "first row size 2)" in str(error) and error.point_ids == [1]


def test_id_and_vector_columns_of_the_wrong_type_say_how_to_fix_them() -> None:
    batch = pa.RecordBatch.from_pydict({"id": pa.array([1.5]), "vector": [[1.0]]})
    assert str(refused(from_record_batch, batch, options())) == (
        "Id column 'id' has type double; ids must be unsigned integers (integer or decimal(20,0) columns, or strings "
        "of digits), or UUID strings (cast the column, or set id_field=None to make ids from the row content)"
    )
    batch = pa.RecordBatch.from_pydict({"id": [1], "vector": ["1,2"]})
    assert str(refused(from_record_batch, batch, options())) == (
        "Vector column 'vector' has type string; a vector must be an array of floats "
        "(Spark: array<float>; for ML vectors use pyspark.ml.functions.vector_to_array)"
    )
    assert str(refused(from_records, [{"vector": [1.0]}], options())).endswith(
        "set id_field to the id column, or id_field=None to make ids from the row content")
    assert str(refused(from_records, [{"id": 1}], options())).endswith(
        "set vector_field, vector_fields or sparse_vector_fields to the columns holding the vectors")
    error = refused(from_records, [{"id": 1, "vector": [1.0], "s": [1, 2]}], options(sparse_vector_fields={"s": "s"}))
    assert str(error).startswith("Sparse vector column 's' is not a struct/dict with 'indices' and 'values' (point 1)")


def test_record_ids_of_every_kind_are_sent_as_their_id_and_bad_ones_named_by_row() -> None:
    given = uuid.UUID(int=random.Random(SEED).getrandbits(128))
    rows = [{"id": given, "vector": [1.0]}, {"id": "42", "vector": [1.0]}, {"id": str(given).upper(), "vector": [2.0]}]
    assert from_records(rows[:2], options()).ids == [str(given), 42]
    assert from_records(rows[2:], options()).ids == [str(given)]
    chunk = [{"id": 1, "vector": [1.0]}, {"id": "X12", "vector": [1.0]}]
    assert str(refused(from_records, chunk, options(), 7)) == (
        f"Row 8: id 'X12' in 'id' is neither an unsigned integer nor a UUID; {RULE} "
        "(set id_field=None to make UUIDs from the row content)"
    )
    assert str(refused(from_records, [{"id": 1, "vector": [1.0]}, [1.0]], options(), 3)) == (
        "Point 4 is a list, not a dict of column -> value")


def test_content_id_rows_are_named_by_their_row_number() -> None:
    rows = [{"vector": [1.0]}, {"vector": [1.0]}, {"vector": [float("nan")]}]
    assert refused(from_records, rows, options(id_field=None), 5).point_ids == ["row 7"]


def test_payload_fields_of_records_keep_only_the_fields_named_and_given() -> None:
    rows = [{"id": 1, "vector": [1.0], "a": 1, "b": 2}, {"id": 2, "vector": [1.0], "b": 3}]
    columns = from_records(rows, options(payload_fields=["a"]))
    assert [orjson.loads(payload) for payload in columns.payloads] == [{"a": 1}, {}]


def test_content_ids_tell_apart_rows_that_differ_only_in_a_sparse_vector() -> None:
    write = options(id_field=None, sparse_vector_fields={"s": "s"})
    rows = [{"vector": [1.0], "s": {"indices": [1], "values": [0.5]}},
            {"vector": [1.0], "s": {"indices": [1], "values": [0.25]}},
            {"vector": [1.0], "s": {"indices": [2], "values": [0.5]}},
            {"vector": [1.0], "s": {"indices": [1], "values": [0.5]}}]
    ids = from_records(rows, write).ids
    assert len(set(ids[:3])) == 3 and ids[3] == ids[0]
    assert from_records(rows, write).ids == ids  # the same rows, the same ids


def test_a_request_encodes_within_the_sum_of_its_rows_estimates() -> None:
    rng = random.Random(SEED)
    rows = []
    for i in range(300):
        entries = rng.randrange(0, 40)
        indices = rng.sample(range(2**32), entries)  # Qdrant's sparse indices are u32
        rows.append({"id": rng.choice([i, 2**64 - 1 - i]), "vector": [rng.uniform(-1e-30, 1e30) for _ in range(rng.randrange(1, 4))][:1] * 3,
                     "s": {"indices": indices, "values": [-rng.random() * 1e-12 for _ in indices]},
                     "p": rng.choice([None, "", "ü" * rng.randrange(5), rng.random()])})
    for write in (options(sparse_vector_fields={"s": "s"}), options(sparse_vector_fields={"s": "s"}, payload_fields=["p"])):
        columns = from_records(rows, write)
        for start in range(0, 300, 50):
            part = columns.take(start, start + 50)
            for body in (part.batch_body(), part.points_body()):
                assert len(encode_body(body)) <= int(part.row_bytes.sum())


@pytest.mark.parametrize("case", ["long-ids-short-rows", "long-payloads", "empty-sparse"])
def test_small_rows_encode_within_their_estimates(case: str) -> None:
    rng = random.Random(SEED)
    write = options(sparse_vector_fields={"s": "s"}) if case == "empty-sparse" else options()
    rows = []
    for i in range(200):
        row: dict[str, Any] = {"id": 2**64 - 1 - i, "vector": [-1.2345678e-12]}
        if case == "long-payloads":
            row["p"] = "x" * rng.randrange(100, 400)
        if case == "empty-sparse":
            row["s"] = {"indices": [], "values": []}
        rows.append(row)
    columns = from_records(rows, write)
    for body in (columns.batch_body(), columns.points_body()):
        assert len(encode_body(body)) <= int(columns.row_bytes.sum())


# ----- sparse values: what the spec's SparseVector holds, sent as given ---------------------------------

_F32_MAX = float(np.finfo(np.float32).max)
_SPARSE_VALUES = st.one_of(
    st.integers(min_value=-(2**1100), max_value=2**1100),  # beyond a double's range at both ends
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(width=32).map(np.float32),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.text(alphabet="0123456789.-e", min_size=1, max_size=6),
    st.booleans(),
)


def _spec_accepts(indices: list[Any], values: list[Any]) -> bool:
    """The OpenAPI spec's SparseVector: unique uint32 indices, one float32 ("number", "float") per index."""
    if len(set(indices)) != len(indices) or not all(0 <= i < 2**32 for i in indices):
        return False
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False  # Decimal and text are not JSON numbers; a bool is not one either
        try:
            if not abs(float(value)) <= _F32_MAX:
                return False
        except OverflowError:
            return False
    return True


@settings(derandomize=True, max_examples=400, deadline=None)
@given(entries=st.lists(st.tuples(st.integers(-2, 2**33), _SPARSE_VALUES), max_size=6))
def test_sparse_values_are_sent_exactly_as_given_or_the_point_is_refused(entries: list[tuple[int, Any]]) -> None:
    indices, values = [i for i, _ in entries], [v for _, v in entries]
    rows = [{"id": 1, "s": {"indices": [0], "values": [0.5]}}, {"id": 2, "s": {"indices": indices, "values": values}}]
    write = options(vector_field=None, sparse_vector_fields={"s": "s"})
    if _spec_accepts(indices, values):
        sent = from_records(rows, write).batch_body()["batch"]["vectors"]["s"][1]
        assert sent["indices"] == [int(i) for i in indices]
        assert [type(v) for v in sent["values"]] == [float] * len(values)
        assert sent["values"] == [float(v) for v in values]  # the value itself, not a parse of its text
    else:
        error = refused(from_records, rows, write)
        assert error.point_ids == [2] and "Sparse vector column 's'" in str(error) and "(point 2)" in str(error)


def test_sparse_values_that_are_decimals_or_text_are_refused_with_the_fix() -> None:
    fix = ("they are not converted, so that nothing is rounded or parsed without a word: cast the values to float "
           "(Spark: array<float>) (point 9)")
    for values, kinds in (([decimal.Decimal("0.1")], "Decimal"), ([0.5, "0.5", 1], "str"),
                          ([True, 0.5, decimal.Decimal(1), "x"], "Decimal, bool, str")):
        rows = [{"id": 9, "s": {"indices": list(range(len(values))), "values": values}}]
        error = refused(from_records, rows, options(vector_field=None, sparse_vector_fields={"s": "s"}))
        assert f"Sparse vector column 's' has values that are not numbers ({kinds}); {fix}" in str(error), error
        assert error.point_ids == [9]
    kind = pa.struct([("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.decimal128(5, 2)))])
    batch = pa.RecordBatch.from_pydict(
        {"id": [4], "s": pa.array([{"indices": [1], "values": [decimal.Decimal("0.25")]}], kind)}
    )
    error = refused(from_record_batch, batch, options(vector_field=None, sparse_vector_fields={"s": "s"}))
    assert "has values that are not numbers (Decimal)" in str(error) and error.point_ids == [4]


def test_sparse_values_at_float32s_bounds_are_judged_by_the_double_that_is_sent() -> None:
    top = float(np.finfo(np.float32).max)
    write = options(vector_field=None, sparse_vector_fields={"s": "s"})
    # float32's largest value, and an integer just above it whose double (what is sent) is that value
    for value, sent in ((top, top), (-top, -top), (int(top) + 1, top)):
        body = from_records([{"id": 1, "s": {"indices": [0], "values": [value]}}], write).batch_body()
        assert body["batch"]["vectors"]["s"][0]["values"] == [sent]
    for value in (float(np.nextafter(top, np.inf)), 2**1100, -(2**1100)):  # beyond float32, beyond a double
        error = refused(from_records, [{"id": 1, "s": {"indices": [0], "values": [value]}}], write)
        assert "values beyond float32" in str(error)


# ----- row estimates: an upper bound of what a request encodes to, exact for a vector's fixed part ------

_NAMES = st.text(min_size=1, max_size=40).filter(lambda name: name != "id")


@settings(derandomize=True, max_examples=150, deadline=None)
@given(dense_name=st.one_of(st.none(), _NAMES), sparse_names=st.lists(_NAMES, min_size=1, max_size=3, unique=True),
       entries=st.lists(st.integers(0, 5), min_size=1, max_size=20), data=st.data())
def test_requests_encode_within_their_estimates_whatever_the_vector_names(
    dense_name: str, sparse_names: list[str], entries: list[int], data: Any
) -> None:
    if dense_name in sparse_names or "vector" in sparse_names:
        return
    rows = []
    for i, count in enumerate(entries):
        row: dict[str, Any] = {"id": i, dense_name or "vector": [-1.2345678e-12, 3.0]}
        for name in sparse_names:
            indices = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=count, max_size=count, unique=True))
            row[name] = {"indices": indices, "values": [-2.2250738585072014e-308] * count}
        rows.append(row)
    dense = {"vector_fields": {dense_name: dense_name}} if dense_name else {}  # else the unnamed "vector"
    write = options(**dense, sparse_vector_fields={name: name for name in sparse_names})
    columns = from_records(rows, write)
    for body in (columns.batch_body(), columns.points_body()):
        assert len(encode_body(body)) <= int(columns.row_bytes.sum())


# float32 values whose JSON text is the longest (16 characters): decimal notation with nine digits
_LONGEST_FLOATS = [-0.0000042669335, -0.0000141820165, -5564657600000.0]


@settings(derandomize=True, max_examples=100, deadline=None)
@given(names=st.lists(_NAMES.filter(lambda name: name != "s"), min_size=1, max_size=40, unique=True),
       size=st.integers(1, 8))
def test_many_dense_vectors_of_the_longest_floats_encode_within_their_estimates(names: list[str], size: int) -> None:
    floats = [_LONGEST_FLOATS[i % 3] for i in range(size)]
    assert all(len(orjson.dumps(np.float32(v), option=orjson.OPT_SERIALIZE_NUMPY)) == 16 for v in floats)
    rows = [{"id": 2**64 - 1 - i, **{name: floats for name in names}} for i in range(5)]
    write = options(vector_field=None, vector_fields={name: name for name in names})
    columns = from_records(rows, write)
    columns = from_records(rows, write)
    for body in (columns.batch_body(), columns.points_body()):
        assert len(encode_body(body)) <= int(columns.row_bytes.sum())


@settings(derandomize=True, max_examples=100, deadline=None)
@given(name=_NAMES.filter(lambda name: name != "vector"))
def test_an_empty_sparse_vector_is_estimated_at_exactly_what_it_adds_to_a_point(name: str) -> None:
    # The estimate wastes none of the byte budget on a vector's fixed part: the reference is the encoded
    # points form with and without the vector.
    dense = {"vector": "d"}  # named, so that the dense part is written the same with or without it
    without = from_records([{"id": 1, "vector": [0.5]}], options(vector_fields=dense))
    with_it = from_records([{"id": 1, "vector": [0.5], name: {"indices": [], "values": []}}],
                           options(vector_fields=dense, sparse_vector_fields={name: name}))
    added = len(encode_body(with_it.points_body())) - len(encode_body(without.points_body()))
    assert int(with_it.row_bytes[0] - without.row_bytes[0]) == added


def test_a_dense_vector_of_the_longest_floats_is_estimated_at_exactly_what_it_adds_to_a_point() -> None:
    floats = [_LONGEST_FLOATS[i % 3] for i in range(7)]
    sparse = {"s": {"indices": [], "values": []}}
    without = from_records([{"id": 1, **sparse}], options(vector_field=None, sparse_vector_fields={"s": "s"}))
    with_it = from_records([{"id": 1, **sparse, "dense vector": floats}],
                           options(vector_field=None, vector_fields={"dense vector": "d"}, sparse_vector_fields={"s": "s"}))
    added = len(encode_body(with_it.points_body())) - len(encode_body(without.points_body()))
    assert int(with_it.row_bytes[0] - without.row_bytes[0]) == added


# ----- content ids: stable across versions, computable outside -----------------------------------------


def test_content_ids_are_the_documented_uuid5_of_the_rows_content() -> None:
    # README, "Ids from content": uuid5 in the namespace uuid5(NAMESPACE_DNS, "points.dagster-qdrant") of
    # the payload's JSON, then per dense vector (by name) its name, NUL and its float32 little-endian bytes,
    # then per sparse vector (by name) its name, NUL and its JSON. Python's uuid5 is the reference.
    namespace = uuid.uuid5(uuid.NAMESPACE_DNS, "points.dagster-qdrant")
    rows = [{"b": [1.5, -2.0], "a": [0.25], "s": {"indices": [7, 2], "values": [0.5, 1.0]}, "title": "ü", "n": 3},
            {"b": [1.5, -2.0], "a": [0.25], "s": {"indices": [], "values": []}, "title": "x", "n": None}]
    write = options(id_field=None, vector_field=None, vector_fields={"a": "a", "b": "b"},
                    sparse_vector_fields={"s": "s"})
    ids = from_records(rows, write).ids
    expected = []
    for row in rows:
        content = orjson.dumps({"title": row["title"], "n": row["n"]})
        for name in ("a", "b"):
            content += name.encode() + b"\0" + np.asarray(row[name], dtype="<f4").tobytes()
        content += b"s\0" + orjson.dumps(row["s"])
        expected.append(str(_uuid5(namespace, content)))
    assert ids == expected
    # the ids every version of this library so far writes for these rows: a rewrite must repeat them
    assert ids == ["81fd67de-32c1-5f3e-8bab-39d5fb0ed3aa", "c659fb49-4c45-5f55-add9-1b2a1f7239c9"]


def _uuid5(namespace: uuid.UUID, name: bytes) -> uuid.UUID:
    """RFC 4122's name-based UUID (Python's uuid5 takes bytes only from 3.12 on)."""
    return uuid.UUID(bytes=hashlib.sha1(namespace.bytes + name).digest()[:16], version=5)
