"""Values reach Qdrant as they were given, or the write is refused: NaN and infinities, decimals, ids up
to 2**64 - 1. (What Qdrant itself gives back for doubles: test_exact_doubles.py.)

References: the input values themselves; qdrant-client reading the server over REST; Spark's own
conversions. "Nothing was sent" is counted by a recording proxy (tests/faultproxy.py).
"""

from __future__ import annotations

import decimal
import json
import math
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from faultproxy import FaultProxy
from hypothesis import given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient
from reference_client import official_client, payloads_by_id

from dagster_qdrant.points.rows_to_points import from_record_batch, from_records
from dagster_qdrant.errors import QdrantDataError, QdrantError
from dagster_qdrant.options import WriteOptions, build_qdrant_config, build_qdrant_write_config
from dagster_qdrant.points.without_spark import write_qdrant_points

UPSERT_PATH = r"/collections/[^/]+/points(\?|$)"
OPTIONS = WriteOptions(endpoint="http://localhost:6333", collection="docs")
NON_FINITE = [float("nan"), float("inf"), float("-inf")]
SETTINGS = settings(derandomize=True, max_examples=300, deadline=None)


@pytest.fixture
def recorder(qdrant_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(qdrant_url) as proxy:
        yield proxy


@pytest.fixture
def client(qdrant_url: str, qdrant_api_key: str | None) -> QdrantClient:
    return official_client(qdrant_url, qdrant_api_key)


def _config(url: str, collection: str, **options: Any) -> dict[str, Any]:
    return build_qdrant_write_config(url, collection, create_collection=True, distance="Dot", **options)


def _spark_write(frame: Any, config: dict[str, Any]) -> None:
    frame.write.format("qdrant").options(**WriteOptions.from_mapping(config).spark_options()).mode("append").save()


# --- NaN and infinities ------------------------------------------------------------------------------

SHAPES = {
    "top-level": (lambda v: {"score": v}, "score"),
    "in a struct": (lambda v: {"meta": {"inner": {"score": v}}}, "meta.inner.score"),
    "in an array": (lambda v: {"scores": [1.0, v]}, "scores[]"),
}


def _rows(shape: str, bad: float, count: int = 6, bad_rows: tuple[int, ...] = (2, 4)) -> list[dict[str, Any]]:
    make = SHAPES[shape][0]
    return [{"id": i, "vector": [1.0, 0.5], **make(bad if i in bad_rows else 0.25 * i)} for i in range(count)]


def _refused(points: Any, recorder: FaultProxy, collection: str, path: str, ids: list[int]) -> None:
    with pytest.raises(QdrantError) as raised:
        write_qdrant_points(points, _config(recorder.url, collection, max_retries=0))
    text = str(raised.value)
    assert repr(path) in text and "NaN or infinite" in text and "non_finite='null'" in text, text
    assert list(raised.value.point_ids) == ids, text
    assert recorder.count_matching(UPSERT_PATH) == 0, "refused values must be refused before anything is sent"


@pytest.mark.parametrize("bad", NON_FINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_non_finite_payload_values_are_refused_before_sending(
    shape: str, bad: float, recorder: FaultProxy, collection_name: str
) -> None:
    rows = _rows(shape, bad)
    path = SHAPES[shape][1]
    _refused(rows, recorder, collection_name, path, [2, 4])  # dicts
    _refused(pa.Table.from_pylist(rows), recorder, collection_name, path, [2, 4])  # Arrow
    _refused((row for row in rows), recorder, collection_name, path, [2, 4])  # a generator (one chunk)
    if shape == "top-level" and not math.isnan(bad):  # pandas keeps inf (NaN is its missing value: see below)
        _refused(pd.DataFrame(rows), recorder, collection_name, path, [2, 4])


def test_numpy_non_finite_payload_values_are_refused() -> None:
    rows = [{"id": 1, "vector": [1.0], "a": np.float32("nan")}, {"id": 2, "vector": [1.0], "a": np.array([1.0, np.inf])}]
    with pytest.raises(QdrantDataError, match=r"'a'.*NaN or infinite") as raised:
        from_records(rows, OPTIONS)
    assert list(raised.value.point_ids) == [1, 2]


def test_maps_and_sliced_batches_are_checked_row_by_row() -> None:
    values = pa.array([[("a", 1.0)], None, [("b", 2.0), ("c", float("nan"))], [("d", 3.0)]], pa.map_(pa.string(), pa.float64()))
    table = pa.RecordBatch.from_arrays([pa.array([10, 11, 12, 13]), pa.array([[1.0]] * 4), values], ["id", "vector", "m"])
    with pytest.raises(QdrantDataError, match=r"'m\[\]'") as raised:
        from_record_batch(table, OPTIONS)
    assert list(raised.value.point_ids) == [12]
    assert from_record_batch(table.slice(3), OPTIONS).payloads == [b'{"m":{"d":3.0}}']


@SETTINGS
@given(st.lists(st.sampled_from([0.5, -2.0, 1e300, *NON_FINITE]), min_size=1, max_size=40))
def test_the_error_names_the_first_points_with_non_finite_values(values: list[float]) -> None:
    """Against the input: the ids named are the first ten whose value is not finite."""
    rows = [{"id": 100 + i, "vector": [1.0], "x": {"y": [v]}} for i, v in enumerate(values)]
    expected = [row["id"] for row, v in zip(rows, values) if not math.isfinite(v)][:10]
    for convert, data in ((from_records, rows), (from_record_batch, pa.RecordBatch.from_pylist(rows))):
        if not expected:
            convert(data, OPTIONS)
            continue
        with pytest.raises(QdrantDataError) as raised:
            convert(data, OPTIONS)
        assert list(raised.value.point_ids) == expected


def test_non_finite_null_stores_null_where_asked(client: QdrantClient, qdrant_url: str, collection_name: str) -> None:
    rows = _rows("top-level", float("nan")) + [{"id": 9, "vector": [1.0, 0.5], "score": float("inf")}]
    rows[1]["meta"] = {"inner": [float("-inf"), 2.0]}
    write_qdrant_points(rows, _config(qdrant_url, collection_name, non_finite="null"))
    stored = payloads_by_id(client, collection_name)
    for row in rows:
        score = row["score"]
        assert stored[row["id"]]["score"] == (score if math.isfinite(score) else None)
    assert stored[1]["meta"] == {"inner": [None, 2.0]}


def test_pandas_nan_is_a_missing_value_as_spark_converts_it(
    spark: Any, client: QdrantClient, qdrant_url: str, collection_name: str
) -> None:
    """pandas marks missing floats with NaN; pyarrow and Spark's own Arrow conversion make them null."""
    frame = pd.DataFrame({"id": [1, 2], "vector": [[1.0], [2.0]], "score": [0.5, float("nan")]})
    assert spark.createDataFrame(frame).orderBy("id").collect()[1]["score"] is None
    write_qdrant_points(frame, _config(qdrant_url, collection_name))
    assert payloads_by_id(client, collection_name) == {1: {"score": 0.5}, 2: {"score": None}}


SPARK_NON_FINITE = {
    "double": ("id long, vector array<float>, score double", [(1, [1.0], 0.5), (2, [1.0], float("nan"))], "score", [2]),
    "struct": (
        "id long, vector array<float>, meta struct<score: float>",
        [(1, [1.0], (float("inf"),)), (2, [1.0], (1.0,)), (3, [1.0], None)],
        "meta.score",
        [1],
    ),
    "array": (
        "id long, vector array<float>, scores array<double>",
        [(1, [1.0], [1.0]), (2, [1.0], [2.0, float("-inf")]), (3, [1.0], [float("nan")])],
        "scores[]",
        [2, 3],
    ),
}


@pytest.mark.parametrize("case", sorted(SPARK_NON_FINITE))
def test_spark_refuses_non_finite_payloads_before_sending(
    case: str, spark: Any, recorder: FaultProxy, collection_name: str
) -> None:
    schema, rows, path, ids = SPARK_NON_FINITE[case]
    frame = spark.createDataFrame(rows, schema).coalesce(1)
    with pytest.raises(Exception) as raised:
        _spark_write(frame, _config(recorder.url, collection_name))
    text = str(raised.value)
    assert repr(path) in text and "NaN or infinite" in text and f"first point ids {ids}" in text, text[-2000:]
    assert recorder.count_matching(UPSERT_PATH) == 0


def test_spark_non_finite_null_stores_null(spark: Any, client: QdrantClient, qdrant_url: str, collection_name: str) -> None:
    schema, rows, _, _ = SPARK_NON_FINITE["array"]
    _spark_write(spark.createDataFrame(rows, schema), _config(qdrant_url, collection_name, non_finite="null"))
    assert payloads_by_id(client, collection_name) == {1: {"scores": [1.0]}, 2: {"scores": [2.0, None]}, 3: {"scores": [None]}}


# --- decimals ----------------------------------------------------------------------------------------

DECIMALS = st.one_of(
    st.decimals(min_value=-(10**19), max_value=10**19, places=18, allow_nan=False, allow_infinity=False),
    st.builds(lambda m, e: decimal.Decimal(m).scaleb(e), st.integers(-(10**15), 10**15), st.integers(-18, 4)),
)


def _decimal_batch(values: list[decimal.Decimal]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(range(1, len(values) + 1)), pa.array([[1.0]] * len(values)), pa.array(values, pa.decimal128(38, 18))],
        ["id", "vector", "price"],
    )


@SETTINGS
@given(st.lists(DECIMALS, min_size=1, max_size=20))
def test_decimals_are_written_exactly_or_refused(values: list[decimal.Decimal]) -> None:
    """Against the inputs: by default a decimal is a JSON number whose double reads back as that decimal,
    or the write is refused naming the column; ``decimal_as='string'`` keeps every one as its exact text."""
    batch = _decimal_batch(values)
    as_text = from_record_batch(batch, WriteOptions.from_config(OPTIONS, decimal_as="string")).payloads
    assert [decimal.Decimal(json.loads(payload)["price"]) for payload in as_text] == values
    as_double = from_record_batch(batch, WriteOptions.from_config(OPTIONS, decimal_as="double")).payloads
    assert [json.loads(payload)["price"] for payload in as_double] == [float(v) for v in values]
    inexact = [i + 1 for i, v in enumerate(values) if decimal.Decimal(repr(float(v))) != v]
    try:
        payloads = from_record_batch(batch, OPTIONS).payloads
    except QdrantDataError as error:
        assert "'price'" in str(error) and "decimal_as='string'" in str(error), str(error)
        assert error.point_ids and set(error.point_ids) <= set(range(1, len(values) + 1))
        assert not inexact or inexact[0] in error.point_ids or len(error.point_ids) == 10
        return
    assert not inexact, f"decimals {inexact} were written though no double holds them"
    for value, payload in zip(values, payloads):
        assert decimal.Decimal(repr(json.loads(payload)["price"])) == value


def test_decimals_through_the_server_compare_with_the_inputs(
    client: QdrantClient, qdrant_url: str, collection_name: str
) -> None:
    rng = random.Random(5)
    exact = [decimal.Decimal(rng.randrange(-(10**15), 10**15)).scaleb(-rng.randrange(0, 8)) for _ in range(300)]
    exact += [decimal.Decimal("0.1"), decimal.Decimal("19.99"), decimal.Decimal("1E+19"), decimal.Decimal("-0.000001")]
    write_qdrant_points(_decimal_batch(exact), _config(qdrant_url, collection_name))
    stored = payloads_by_id(client, collection_name)
    assert [decimal.Decimal(repr(stored[i + 1]["price"])) for i in range(len(exact))] == exact

    wide = exact + [decimal.Decimal("12345678901234567890.123456789012345678")]
    with pytest.raises(QdrantDataError, match=r"'price'.*1\.2345678901234567e\+19.*decimal_as='string'") as raised:
        write_qdrant_points(_decimal_batch(wide), _config(qdrant_url, collection_name))
    assert list(raised.value.point_ids) == [len(wide)]

    texts = f"{collection_name}_text"
    write_qdrant_points(_decimal_batch(wide), _config(qdrant_url, texts, decimal_as="string"))
    stored = payloads_by_id(client, texts)
    assert [decimal.Decimal(stored[i + 1]["price"]) for i in range(len(wide))] == wide

    doubles = f"{collection_name}_double"
    write_qdrant_points(_decimal_batch(wide), _config(qdrant_url, doubles, decimal_as="double"))
    assert payloads_by_id(client, doubles)[len(wide)]["price"] == float(wide[-1])


def test_spark_decimals_round_trip_exactly_or_as_text(
    spark: Any, recorder: FaultProxy, qdrant_url: str, collection_name: str
) -> None:
    from pyspark.sql.types import DecimalType, LongType, StructField, StructType

    values = [decimal.Decimal("12.5"), decimal.Decimal("-0.000123"), decimal.Decimal("12345678901234567890.1234")]
    frame = spark.createDataFrame(
        [(i + 1, [1.0], v) for i, v in enumerate(values)], "id long, vector array<float>, price decimal(38,18)"
    ).coalesce(1)
    with pytest.raises(Exception, match=r"'price'") as raised:
        _spark_write(frame, _config(recorder.url, collection_name))
    assert "first point ids [3]" in str(raised.value)
    assert recorder.count_matching(UPSERT_PATH) == 0

    _spark_write(frame, _config(qdrant_url, collection_name, decimal_as="string"))
    schema = StructType([StructField("id", LongType()), StructField("price", DecimalType(38, 18))])
    options = {"qdrant.config": json.dumps(build_qdrant_config(qdrant_url, collection_name))}
    back = spark.read.format("qdrant").options(**options).schema(schema).load().orderBy("id").collect()
    assert [row["price"] for row in back] == values

    exact = f"{collection_name}_exact"
    _spark_write(frame.filter("id < 3"), _config(qdrant_url, exact))
    options = {"qdrant.config": json.dumps(build_qdrant_config(qdrant_url, exact))}
    back = spark.read.format("qdrant").options(**options).schema(schema).load().orderBy("id").collect()
    assert [row["price"] for row in back] == values[:2]


# --- ids up to 2**64 - 1 -----------------------------------------------------------------------------

BIG_IDS = [0, 7, 2**63 - 1, 2**63, 2**64 - 1]


def test_ids_above_the_long_range_go_through_spark_and_back(
    spark: Any, client: QdrantClient, qdrant_url: str, collection_name: str
) -> None:
    from pyspark.sql import functions as F

    as_decimal = spark.createDataFrame(
        [(decimal.Decimal(i), [1.0, float(n)], f"p{n}") for n, i in enumerate(BIG_IDS)],
        "id decimal(20,0), vector array<float>, name string",
    )
    _spark_write(as_decimal, _config(qdrant_url, collection_name))
    assert {point: payload["name"] for point, payload in payloads_by_id(client, collection_name).items()} == {
        i: f"p{n}" for n, i in enumerate(BIG_IDS)
    }

    as_text = f"{collection_name}_text"
    _spark_write(as_decimal.withColumn("id", F.col("id").cast("string")), _config(qdrant_url, as_text))
    assert set(payloads_by_id(client, as_text)) == set(BIG_IDS)

    options = {"qdrant.config": json.dumps(build_qdrant_config(qdrant_url, as_text, with_vectors=True))}
    read = spark.read.format("qdrant").options(**options).load()
    assert sorted(int(row["id"]) for row in read.collect()) == BIG_IDS
    copy = f"{collection_name}_copy"
    _spark_write(read, _config(qdrant_url, copy))
    assert payloads_by_id(client, copy) == payloads_by_id(client, as_text)


@pytest.mark.parametrize(
    "bad_id, words",
    [
        ("007", "leading zeros"),
        ("+5", "no sign, spaces"),
        (" 5", "no sign, spaces"),
        ("18446744073709551616", "out of range"),
        (decimal.Decimal(2**64), "not a whole number in range"),
        (decimal.Decimal("1.5"), "not a whole number in range"),
    ],
)
def test_ids_outside_the_range_or_not_canonical_are_refused(bad_id: Any, words: str) -> None:
    rows = [{"id": 1, "vector": [1.0]}, {"id": bad_id, "vector": [1.0]}]
    with pytest.raises(QdrantDataError, match=words) as raised:
        from_records(rows, OPTIONS)
    assert "18446744073709551615" in str(raised.value)
    kind = pa.decimal128(38, 1) if isinstance(bad_id, decimal.Decimal) else pa.string()
    batch = pa.RecordBatch.from_arrays([pa.array([bad_id], kind), pa.array([[1.0]])], ["id", "vector"])
    with pytest.raises(QdrantDataError, match=words):
        from_record_batch(batch, OPTIONS)


def test_a_32_digit_string_is_still_a_uuid() -> None:
    text = "12345678901234567890123456789012"
    assert from_records([{"id": text, "vector": [1.0]}], OPTIONS).ids == ["12345678-9012-3456-7890-123456789012"]
