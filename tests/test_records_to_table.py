"""Qdrant records -> a table (the pandas and Arrow loads), against the values the records hold.

Records are generated as Qdrant returns them (``{"id", "payload", "vector"}``); each column must hold
exactly the records' values, or the conversion must refuse with the key named.
"""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagster_qdrant.errors import QdrantSchemaError
from dagster_qdrant.points.records_to_table import records_to_table

_values = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.text(max_size=5),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(derandomize=True, max_examples=400, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from("abc"), _values, max_size=3), min_size=1, max_size=8))
def test_each_payload_column_holds_exactly_the_records_values_or_the_key_is_refused(payloads) -> None:
    records = [{"id": i, "payload": payload, "vector": [float(i), 0.5]} for i, payload in enumerate(payloads)]
    try:
        table = records_to_table(records, collection="c")
    except QdrantSchemaError as error:
        key = str(error).split("'")[1]
        kinds = {type(p[key]) for p in payloads if p.get(key) is not None}
        assert len(kinds) > 1, f"refused a key of one type: {error}"
        return
    for key in sorted({k for payload in payloads for k in payload}):
        column = table.column(key)
        for got, want in zip(column.to_pylist(), [payload.get(key) for payload in payloads]):
            if want is None:
                assert got is None, key
            elif type(want) is int and pa.types.is_floating(column.type):  # integers beside doubles
                assert type(got) is float and got == want, key
            else:
                assert type(got) is type(want) and got == want, key
    assert table.column("id").to_pylist() == list(range(len(payloads)))
    assert table.column("vector").type == pa.list_(pa.float32())


def test_ids_vectors_and_wide_integers_keep_their_values() -> None:
    ids = [str(uuid.UUID(int=5)), 7]
    records = [
        {"id": ids[0], "payload": {"n": 2**64 - 1}, "vector": {"dense": [0.1, 0.2], "words": {"indices": [3], "values": [0.5]}}},
        {"id": ids[1], "payload": {"n": 3}, "vector": {"dense": [1e-45, 3.4028235e38]}},
    ]
    table = records_to_table(records, vector_columns={"dense": "embedding"}, sparse_columns={"words": "bag"})
    assert table.column("id").to_pylist() == [ids[0], "7"], "mixed ids read as text, as the Spark reader does"
    assert table.column("n").type == pa.uint64() and table.column("n").to_pylist() == [2**64 - 1, 3]
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    assert vectors.dtype == np.float32 and np.array_equal(vectors, np.array([[0.1, 0.2], [1e-45, 3.4028235e38]], np.float32))
    assert table.column("bag").to_pylist() == [{"indices": [3], "values": [0.5]}, None]


def test_integers_a_double_cannot_hold_next_to_doubles_are_refused() -> None:
    records = [{"id": 1, "payload": {"x": 2**53 + 1}}, {"id": 2, "payload": {"x": 0.5}}]
    with pytest.raises(QdrantSchemaError, match=r"'x'.*9007199254740993.*'columns'"):
        records_to_table(records, collection="c")
    exact = records_to_table([{"id": 1, "payload": {"x": 2**53}}, {"id": 2, "payload": {"x": 0.5}}])
    assert exact.column("x").to_pylist() == [float(2**53), 0.5]
