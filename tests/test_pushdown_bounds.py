"""Pushdown at the edges of what Qdrant reads as Spark does: id and integer ranges, index types, key
syntax, and the doubles Qdrant's JSON parser reads back exactly.

References: the OpenAPI spec (`ExtendedPointId`: an unsigned 64-bit integer or a UUID; payload integers
are i64), Spark's comparison of a literal with its column type, and for doubles the parse Qdrant's
serde_json build does without `float_roundtrip` (the digits as one u64, converted to a double, then one
multiplication or division by a power of ten from its table of 309 doubles), worked out here with exact
rational arithmetic on the JSON text sent.
"""

from __future__ import annotations

import random
import struct
import uuid
from fractions import Fraction
from typing import Any

import orjson
import pytest
from pyspark.sql.datasource import EqualNullSafe, EqualTo, GreaterThan, In, IsNull, Not, StringStartsWith
from pyspark.sql.types import BooleanType, DoubleType, FloatType, IntegerType, LongType, StringType, StructField, StructType

from dagster_qdrant.spark.pushdown import FilterTranslator, combine_filters

SEED = 20261205
SCHEMA = StructType([
    StructField("id", StringType(), False),
    StructField("city", StringType()),
    StructField("year", LongType()),
    StructField("small", IntegerType()),
    StructField("price", DoubleType()),
    StructField("ratio", FloatType()),
    StructField("sold", BooleanType()),
    StructField("o", StructType([StructField("k", StringType()), StructField("p", StructType([StructField("q", LongType())]))])),
    StructField("a-b_c1", StringType()),
    StructField("ключ", StringType()),
    StructField("a b", StringType()),
    StructField("x.y", StringType()),
    StructField("a[0]", StringType()),
    StructField('q"', StringType()),
    StructField("vector", StringType()),  # a scalar vector column: still never payload
])


def translator(indexes: dict[str, Any] | None = None) -> FilterTranslator:
    return FilterTranslator(SCHEMA, ["vector"], prefix_match=True, payload_indexes=indexes)


# --- ids: unsigned 64-bit integers or UUIDs, as the id column shows them ------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, [0]),
        (2**64 - 1, [2**64 - 1]),
        ("0", [0]),
        ("18446744073709551615", [2**64 - 1]),
        ("6c1b0f6e-3f5a-4c53-9d3c-1a2b3c4d5e6f", ["6c1b0f6e-3f5a-4c53-9d3c-1a2b3c4d5e6f"]),
        (2**64, None),
        (-1, None),
        ("18446744073709551616", None),
        ("-1", None),
        ("007", None),
        ("6C1B0F6E-3F5A-4C53-9D3C-1A2B3C4D5E6F", None),  # the id column shows lowercase: no row equals it
        ("6c1b0f6e3f5a4c539d3c1a2b3c4d5e6f", None),
        ("not an id", None),
        (True, None),
        (None, None),
        (1.0, None),
    ],
)
def test_id_literals_are_pushed_only_as_ids_the_id_column_shows(value: Any, expected: list | None) -> None:
    condition = translator().translate(EqualTo(("id",), value))
    assert condition == (None if expected is None else {"has_id": expected})
    null_safe = translator().translate(EqualNullSafe(("id",), value))
    assert null_safe == condition


def test_id_lists_are_pushed_deduplicated_or_not_at_all() -> None:
    assert translator().translate(In(("id",), (3, "3", 5, 3))) == {"has_id": [3, 5]}
    assert translator().translate(In(("id",), (3, 2**64))) is None
    assert translator().translate(In(("id",), (3, None))) is None
    assert translator().translate(Not(EqualTo(("id",), 4))) == {"must_not": [{"has_id": [4]}]}
    assert translator().translate(GreaterThan(("id",), 4)) is None


# --- payload integers are i64; booleans are no numbers ----------------------------------------------


@pytest.mark.parametrize("value", [-(2**63), 2**63 - 1, 0, -1])
def test_integer_literals_within_i64_are_matched(value: int) -> None:
    assert translator().translate(EqualTo(("year",), value)) == {"key": "year", "match": {"value": value}}


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, True, 1.5, "1", None])
def test_literals_outside_i64_or_of_another_type_stay_in_spark(value: Any) -> None:
    assert translator().translate(EqualTo(("year",), value)) is None
    assert translator().translate(In(("year",), (1, value))) is None


def test_booleans_match_booleans_only() -> None:
    assert translator().translate(EqualTo(("sold",), True)) == {"key": "sold", "match": {"value": True}}
    assert translator().translate(EqualTo(("sold",), 1)) is None
    assert translator().translate(In(("sold",), (True,))) is None  # Qdrant's `any` has no booleans
    assert translator().translate(In(("city",), ())) is None


def test_prefix_match_only_on_string_columns() -> None:
    assert translator().translate(StringStartsWith(("city",), "Ber")) == {"key": "city", "match": {"prefix": "Ber"}}
    assert translator().translate(StringStartsWith(("year",), "19")) is None  # Spark casts; Qdrant matches text only


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "1.5", True, [1.0]])
def test_non_finite_or_non_numeric_literals_on_double_columns_stay_in_spark(value: Any) -> None:
    assert translator().translate(EqualTo(("price",), value)) is None
    assert translator().translate(GreaterThan(("price",), value)) is None


# --- keys: only those Qdrant's key syntax reads literally --------------------------------------------


@pytest.mark.parametrize(
    ("attribute", "key"),
    [(("a-b_c1",), "a-b_c1"), (("ключ",), "ключ"), (("o", "k"), "o.k"), (("o", "p", "q"), "o.p.q")],
)
def test_plain_keys_and_nested_fields_are_pushed(attribute: tuple, key: str) -> None:
    assert translator().translate(IsNull(attribute)) == {"is_empty": {"key": key}}


@pytest.mark.parametrize(
    "attribute",
    [("a b",), ("x.y",), ("a[0]",), ('q"',), ("o",), ("o", "p"), ("o", "nope"), ("o", "k", "z"), ("vector",), ("nope",), ()],
)
def test_keys_qdrant_would_read_otherwise_stay_in_spark(attribute: tuple) -> None:
    assert translator().translate(IsNull(attribute)) is None


# --- payload indexes: pushed only where the index answers like Spark --------------------------------


@pytest.mark.parametrize(
    ("column", "index", "pushed"),
    [
        ("city", {"data_type": "keyword"}, True),
        ("city", {"data_type": "text"}, False),
        ("city", {"data_type": "KEYWORD"}, False),
        ("sold", {"data_type": "bool"}, True),
        ("sold", {"data_type": "keyword"}, False),
        ("price", {"data_type": "float"}, True),
        ("price", {"data_type": "integer"}, False),
        ("year", {"data_type": "integer"}, True),
        ("small", {"data_type": "integer", "params": {"type": "integer", "lookup": True, "range": True}}, True),
        ("year", {"data_type": "integer", "params": {"type": "integer", "lookup": False, "range": True}}, False),
        ("year", {"data_type": "integer", "params": {"type": "integer", "lookup": True, "range": False}}, False),
        ("year", {"data_type": "float"}, False),
        ("ratio", {"data_type": "float"}, False),  # a 32-bit float column: Qdrant indexes doubles
    ],
)
def test_an_index_lets_a_key_be_filtered_only_when_it_is_of_the_columns_type(column: str, index: dict, pushed: bool) -> None:
    condition = translator({column: index}).translate(IsNull((column,)))
    assert (condition is not None) is pushed, condition


# --- doubles: pushed exactly when Qdrant reads back the text sent as the same double ------------------


def serde_json_reads(text: str) -> float | None:
    """The double serde_json (no float_roundtrip) makes of a JSON number, or None for its other paths."""
    mantissa, _, exponent_text = text.lower().partition("e")
    whole, _, fraction = mantissa.lstrip("-").partition(".")
    significand, exponent = int(whole + fraction), int(exponent_text or 0) - len(fraction)
    if significand >= 2**64 or abs(exponent) >= 309:
        return None
    first = float(significand)  # u64 -> f64: correctly rounded
    power = float(Fraction(10) ** abs(exponent))  # the table entry: 10^k rounded to a double
    exact = Fraction(first) * Fraction(power) if exponent >= 0 else Fraction(first) / Fraction(power)
    return float(exact)  # one correctly rounded multiplication or division


def generated_doubles() -> list[float]:
    rng = random.Random(SEED)
    values = [1e300, 2.5e300, 1.7976931348623157e308, 1e-300, 5e-324, 1e-309, 2.2250738585072014e-308, 0.1, 0.3,
              1e22, 1e23, 123456789.125, 9007199254740993.0, 1e16, 1.0000000000000002e16, 12345678901234567890.0]
    for _ in range(3000):
        bits = rng.getrandbits(64)
        value = struct.unpack("<d", struct.pack("<Q", bits))[0]
        if value == value and abs(value) != float("inf"):
            values.append(value)
        values.append(round(rng.uniform(-1e6, 1e6), rng.randrange(0, 12)))
    return values


def test_double_literals_are_pushed_exactly_when_qdrant_reads_them_back() -> None:
    pushed = wrong = 0
    for value in generated_doubles():
        if value == 0:
            continue
        text = orjson.dumps(abs(value)).decode()
        exact = serde_json_reads(text) == abs(value)
        condition = translator().translate(EqualTo(("price",), value))
        expected = {"key": "price", "range": {"gte": value, "lte": value}} if exact else None
        if condition != expected:
            wrong += 1
        pushed += condition is not None
    assert wrong == 0 and 0 < pushed, (wrong, pushed)


@pytest.mark.parametrize("value", [2**53 - 1, -(2**53) + 1, 2**52, 12345, -7])
def test_integer_literals_on_double_columns_below_2_53_are_pushed_when_read_back_exactly(value: int) -> None:
    exact = serde_json_reads(orjson.dumps(float(abs(value))).decode()) == abs(value)
    expected = {"key": "price", "range": {"gte": float(value), "lte": float(value)}} if exact else None
    assert translator().translate(EqualTo(("price",), value)) == expected


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**53 + 1, 2**60])
def test_integer_literals_on_double_columns_at_2_53_and_beyond_stay_in_spark(value: int) -> None:
    assert translator().translate(EqualTo(("price",), value)) is None


def test_float_columns_are_never_ranged_as_doubles() -> None:
    assert translator().translate(EqualTo(("ratio",), 0.5)) is None


# --- combining ------------------------------------------------------------------------------------


CONDITION = {"key": "city", "match": {"value": "Berlin"}}


@pytest.mark.parametrize(
    "only",
    [
        {"must": [CONDITION]},
        {"must_not": [CONDITION]},
        {"should": [CONDITION]},
        {"min_should": {"conditions": [CONDITION], "min_count": 1}},
        {"must": [CONDITION], "should": [CONDITION], "must_not": [CONDITION], "min_should": {"conditions": [CONDITION], "min_count": 1}},
    ],
)
def test_one_filter_alone_is_sent_as_it_is(only: dict) -> None:
    assert combine_filters(only) == only
    assert combine_filters(None, only, {}) == only


def test_several_filters_and_conditions_must_all_match() -> None:
    assert combine_filters() is None and combine_filters(None, {}) is None
    assert combine_filters(conditions=[CONDITION]) == {"must": [CONDITION]}
    first, second = {"must": [CONDITION]}, {"must_not": [CONDITION]}
    assert combine_filters(first, second, conditions=[CONDITION]) == {"must": [first, second, CONDITION]}
    assert combine_filters({"must": [CONDITION], "other": 1}) == {"must": [{"must": [CONDITION], "other": 1}]}
