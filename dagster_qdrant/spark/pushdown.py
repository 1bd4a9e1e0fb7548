"""Spark filters as Qdrant filter conditions, pushed only when Qdrant gives exactly Spark's answer.

Spark hands the reader the AND-ed filters of a query; each one either becomes a Qdrant condition (and
Qdrant returns only matching points) or stays with Spark. A filter is pushed only when the condition
selects the same points Spark would keep, including Spark's rule that a comparison with null is not
true:

- ``=``, ``IN`` on string, integer and boolean columns: ``match`` (``value`` / ``any``); on double columns
  ``=`` is a closed ``range``. On ``id``: ``has_id``, with the literal in the id's canonical form.
- ``<``, ``<=``, ``>``, ``>=`` on integer and double columns: ``range``, under the rules below.
- ``IS NULL`` / ``IS NOT NULL`` on scalar columns: ``is_empty`` (a missing key, null) and its negation.
- ``NOT x``: ``must_not`` of x, plus "is not empty" so rows where the column is null stay out, as in Spark.
- ``LIKE 'abc%'`` on strings: ``match.prefix`` (byte-wise, case-sensitive, like Spark), only when the
  server has it (Qdrant 1.19+).

Ranges. Qdrant reads a range's bounds as doubles (``Range<f64>``), and without a payload index compares
each stored number as a double too (serde_json's ``as_f64``: integers above 2^53 round to the nearest
double, so 2^53 + 1 is read as 2^53); with an integer index it converts the bounds back to integers
(``f64 as i64``, truncating) and compares integers. Spark compares a long column with a long literal
exactly. Both of Qdrant's ways agree with Spark exactly when the integer literal L satisfies
``|L| < 2^53``: L is then a double, converts back to itself, and rounding is monotonic with
``round(v) = v`` for ``|v| <= 2^53``, so every stored v beyond 2^53 still compares above (below -2^53:
below) L, as it does exactly. At ``L = 2^53`` that fails (``v = 2^53 + 1 > L`` is true, ``round(v) > L``
is not), so such literals stay in Spark; ``=`` and ``IN`` on integers are ``match``, which Qdrant
compares as integers, and are pushed for every long. A double literal is pushed only when Qdrant reads
back exactly the double Spark holds: Qdrant parses request JSON with serde_json's default float parser
(one rounding of the digits as an integer, then one multiplication or division by a power of ten),
which can land an ULP away from the literal (e.g. 17 significant digits); ``_reads_back_exactly``
replays that parse on the text this package sends. Stored doubles need no such care: Spark sees the
very double Qdrant stores and compares.

Payload indexes. Qdrant answers a condition on an indexed key from the index, so a key with an index is
filtered only when the index is of the column's own type (keyword for strings, integer with lookups and
ranges for integers, float for doubles, bool for booleans): an integer index truncates a double bound
(``gt 2.5`` becomes ``gt 2``), a text index matches tokens.

Everything else stays in Spark: string ordering (Qdrant ranges are numeric), ``LIKE '%x'``/``'%x%'``
(Qdrant's text match works on tokens, not substrings), float (32-bit) columns, arrays, structs as
values, timestamps and dates (their payload text may be written in several equivalent forms), and
columns inferred from values of several kinds (their text is not what Qdrant stores).

When Spark keeps the plan. PySpark 4.x (4.1 through 4.3 at least) stores the read plan that filter
pushdown returns (the reader, pickled right after ``pushFilters``, and its partitions) on the data
source object that every scan of the same DataFrame shares, and any later scan of that DataFrame that
pushes nothing reuses it: ``df.filter(...).count()`` then ``df.count()`` counts the filtered rows, and a
self-union reads both sides with the last side's filters. Both scans run the same pickled bytes, so no
reader can tell them apart: on those versions the only exact choice is to push nothing and let Spark
filter (``pushdown_is_scan_scoped``). Apache Spark's master branch (to be 5.0) keeps the plan on the
scan (``PythonScanBuilder``); there the translation below is used.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pyspark

from pyspark.sql.datasource import (
    EqualNullSafe,
    EqualTo,
    Filter,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNotNull,
    IsNull,
    LessThan,
    LessThanOrEqual,
    Not,
    StringStartsWith,
)
from pyspark.sql.types import (
    BooleanType,
    ByteType,
    DataType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructType,
)

from dagster_qdrant.filters import all_of
from dagster_qdrant.http import encode_json
from dagster_qdrant.spark.schema import ID_COLUMN, MIXED_METADATA_KEY

Condition = dict[str, Any]

_INTEGER_TYPES = (LongType, IntegerType, ShortType, ByteType)
_FLOAT_TYPES = (DoubleType, FloatType)
_MATCHABLE_TYPES = (StringType, BooleanType, *_INTEGER_TYPES)
_SCALAR_TYPES = (*_MATCHABLE_TYPES, *_FLOAT_TYPES)
_EXACT_INTEGER_LIMIT = 2**53
"""Integer range literals are pushed only strictly inside (-2^53, 2^53): see the module docstring."""
_SCAN_SCOPED_SINCE = (5, 0)
_JSON_NUMBER = re.compile(r"-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?")
_POWERS_OF_TEN = [float(f"1e{k}") for k in range(309)]
_RANGE_KEYS = {LessThan: "lt", LessThanOrEqual: "lte", GreaterThan: "gt", GreaterThanOrEqual: "gte"}


class FilterTranslator:
    """Translates Spark filters against one read schema.

    ``vector_columns`` are not payload. ``prefix_match`` says whether the server understands
    ``match.prefix``. ``payload_indexes`` is the collection's ``payload_schema``: Qdrant answers a
    condition on an indexed key from the index, so a key is filtered only when its index is of the
    column's own type (an integer index truncates double bounds to integers; a text index matches
    tokens).
    """

    def __init__(
        self,
        schema: StructType,
        vector_columns: Sequence[str],
        *,
        prefix_match: bool,
        payload_indexes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.schema = schema
        self.vector_columns = set(vector_columns)
        self.prefix_match = prefix_match
        self.payload_indexes = dict(payload_indexes or {})

    def split(self, filters: Sequence[Filter]) -> tuple[list[Condition], list[Filter]]:
        """(conditions Qdrant applies, filters Spark must still apply) — every filter lands in one."""
        pushed: list[Condition] = []
        kept: list[Filter] = []
        for spark_filter in filters:
            condition = self.translate(spark_filter)
            if condition is None:
                kept.append(spark_filter)
            else:
                pushed.append(condition)
        return pushed, kept

    def translate(self, spark_filter: Filter) -> Condition | None:
        """The Qdrant condition equivalent to ``spark_filter``, or None when there is none exactly."""
        if isinstance(spark_filter, Not):
            return self._negation(spark_filter.child)
        attribute = getattr(spark_filter, "attribute", None)
        if attribute == (ID_COLUMN,) and self._is_id_column():
            return self._id_condition(spark_filter)
        column = self._payload_column(attribute)
        if column is None:
            return None
        key, data_type = column
        if isinstance(spark_filter, EqualNullSafe):
            if spark_filter.value is None:
                return _is_empty(key)
            spark_filter = EqualTo(spark_filter.attribute, spark_filter.value)
        if isinstance(spark_filter, EqualTo):
            return _equal(key, data_type, spark_filter.value)
        if isinstance(spark_filter, In):
            return _one_of(key, data_type, spark_filter.value)
        if type(spark_filter) in _RANGE_KEYS:
            return _compare(key, data_type, _RANGE_KEYS[type(spark_filter)], spark_filter.value)
        if isinstance(spark_filter, IsNull):
            return _is_empty(key)
        if isinstance(spark_filter, IsNotNull):
            return {"must_not": [_is_empty(key)]}
        if isinstance(spark_filter, StringStartsWith) and self.prefix_match:
            if isinstance(data_type, StringType) and isinstance(spark_filter.value, str):
                return {"key": key, "match": {"prefix": spark_filter.value}}
        return None

    def _negation(self, child: Filter) -> Condition | None:
        if isinstance(child, Not):
            # NOT NOT x is x where x is not null, and x already leaves out nulls.
            return self.translate(child.child)
        inner = self.translate(child)
        if inner is None:
            return None
        attribute = getattr(child, "attribute", None)
        if attribute == (ID_COLUMN,) and self._is_id_column():
            return {"must_not": [inner]}
        if isinstance(child, (IsNull, IsNotNull, EqualNullSafe)):
            return {"must_not": [inner]}
        key = self._payload_column(attribute)
        if key is None:
            return None
        return {"must": [{"must_not": [_is_empty(key[0])]}], "must_not": [inner]}

    def _is_id_column(self) -> bool:
        return ID_COLUMN in self.schema.fieldNames()

    def _payload_column(self, attribute: Any) -> tuple[str, DataType] | None:
        """The payload key and type of a filtered column, when it is a scalar payload field."""
        if not attribute or attribute[0] in self.vector_columns or attribute[0] == ID_COLUMN:
            return None
        fields: StructType = self.schema
        data_type: DataType | None = None
        for depth, part in enumerate(attribute):
            if not isinstance(fields, StructType) or part not in fields.fieldNames():
                return None
            field = fields[part]
            if field.metadata.get(MIXED_METADATA_KEY) or not _is_plain_key(part):
                return None
            data_type = field.dataType
            fields = data_type if depth < len(attribute) - 1 else None  # type: ignore[assignment]
        if not isinstance(data_type, _SCALAR_TYPES):
            return None
        key = ".".join(attribute)
        index = self.payload_indexes.get(key)
        if index is not None and not _index_fits(index, data_type):
            return None
        return key, data_type

    def _id_condition(self, spark_filter: Filter) -> Condition | None:
        if isinstance(spark_filter, (EqualTo, EqualNullSafe)):
            ids = _canonical_ids([spark_filter.value])
        elif isinstance(spark_filter, In):
            ids = _canonical_ids(spark_filter.value)
        else:
            return None
        return None if ids is None else {"has_id": ids}


def _index_fits(index: Mapping[str, Any], data_type: DataType) -> bool:
    """A payload index that answers like Spark: of the column's type, with lookups and ranges on."""
    kind = index.get("data_type")
    params = index.get("params") or {}
    if isinstance(data_type, StringType):
        return kind == "keyword"
    if isinstance(data_type, BooleanType):
        return kind == "bool"
    if isinstance(data_type, DoubleType):
        return kind == "float"
    if isinstance(data_type, _INTEGER_TYPES):
        return kind == "integer" and params.get("lookup") is not False and params.get("range") is not False
    return False


def _is_plain_key(part: str) -> bool:
    """Keys Qdrant's key syntax reads literally (no dots, brackets or quotes to escape)."""
    return bool(part) and all(ch.isalnum() or ch in "_-" for ch in part)


def _canonical_ids(values: Sequence[Any]) -> list[int | str] | None:
    """Literals as Qdrant ids, only when their text is exactly how the id column shows that id."""
    ids: list[int | str] = []
    for value in values:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int) and 0 <= value < 2**64:
            ids.append(value)
        elif isinstance(value, str) and value.isdigit() and str(int(value)) == value and int(value) < 2**64:
            ids.append(int(value))
        elif isinstance(value, str):
            try:
                parsed = str(uuid.UUID(value))
            except ValueError:
                return None
            if parsed != value:
                return None
            ids.append(parsed)
        else:
            return None
    return list(dict.fromkeys(ids))


def _is_empty(key: str) -> Condition:
    return {"is_empty": {"key": key}}


def _fits(data_type: DataType, value: Any) -> bool:
    """A literal Qdrant compares as Spark does for the column type."""
    if value is None or isinstance(value, bool) != isinstance(data_type, BooleanType):
        return False
    if isinstance(data_type, StringType):
        return isinstance(value, str)
    if isinstance(data_type, _INTEGER_TYPES):
        return isinstance(value, int) and -(2**63) <= value < 2**63
    if isinstance(data_type, _FLOAT_TYPES):
        return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
    return isinstance(data_type, BooleanType)


def _equal(key: str, data_type: DataType, value: Any) -> Condition | None:
    if not _fits(data_type, value):
        return None
    if isinstance(data_type, _FLOAT_TYPES):
        bound = _double_bound(data_type, value)
        return None if bound is None else {"key": key, "range": {"gte": bound, "lte": bound}}
    return {"key": key, "match": {"value": value}}


def _one_of(key: str, data_type: DataType, values: Sequence[Any]) -> Condition | None:
    if not values or not isinstance(data_type, (StringType, *_INTEGER_TYPES)):
        return None
    if not all(_fits(data_type, value) for value in values):
        return None
    return {"key": key, "match": {"any": list(dict.fromkeys(values))}}


def _compare(key: str, data_type: DataType, operator: str, value: Any) -> Condition | None:
    if not _fits(data_type, value):
        return None
    if isinstance(data_type, _INTEGER_TYPES):
        if abs(value) >= _EXACT_INTEGER_LIMIT:
            return None
        return {"key": key, "range": {operator: value}}
    bound = _double_bound(data_type, value)
    return None if bound is None else {"key": key, "range": {operator: bound}}


def _double_bound(data_type: DataType, value: Any) -> float | None:
    """The literal as a double bound Qdrant reads exactly, on a double column; else None."""
    if not isinstance(data_type, DoubleType):
        return None  # FloatType: Spark compares 32-bit floats, Qdrant doubles
    if isinstance(value, int) and (abs(value) >= _EXACT_INTEGER_LIMIT or float(value) != value):
        return None
    bound = float(value)
    return bound if _reads_back_exactly(bound) else None


def _reads_back_exactly(value: float) -> bool:
    """Whether Qdrant's JSON parser reads the text we send for ``value`` as exactly ``value``.

    serde_json without ``float_roundtrip`` (Qdrant's build) turns ``<digits>.<digits>e<exp>`` into the
    digits as one u64, converted to a double, then multiplied or divided once by ``1e|exp|``: two
    roundings, so some literals land an ULP away. Python's floats round the same IEEE way, so replaying
    those two steps on our own encoding of the literal gives Qdrant's double.
    """
    match = _JSON_NUMBER.fullmatch(encode_json(value).decode())
    if match is None:
        return False
    whole, fraction, exponent = match.group(1), match.group(2) or "", int(match.group(3) or 0)
    significand = int(whole + fraction)
    exponent -= len(fraction)
    if significand >= 2**64 or abs(exponent) >= len(_POWERS_OF_TEN):
        return False  # serde_json takes other, multi-step paths here
    parsed = float(significand)
    if exponent >= 0:
        parsed *= _POWERS_OF_TEN[exponent]
    else:
        parsed /= _POWERS_OF_TEN[-exponent]
    return parsed == abs(value)


def pushdown_is_scan_scoped(version: str = pyspark.__version__) -> bool:
    """Whether this Spark keeps each scan's pushed read plan to that scan (see the module docstring)."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return found is not None and (int(found.group(1)), int(found.group(2))) >= _SCAN_SCOPED_SINCE


def combine_filters(*filters: Mapping[str, Any] | None, conditions: Sequence[Condition] = ()) -> dict | None:
    """One Qdrant filter that all of ``filters`` and ``conditions`` must match (None: match all)."""
    return all_of(*filters, *conditions)


__all__ = ["Condition", "FilterTranslator", "combine_filters", "pushdown_is_scan_scoped"]
