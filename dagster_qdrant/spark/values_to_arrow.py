"""Qdrant's JSON values as what pyarrow takes for a Spark type, one value at a time and checked.

A value that does not fit its type (a string in a ``bigint`` column, 2.5 in a ``bigint`` column, an
integer a ``double`` cannot hold exactly) is never rounded or nulled in silence: under a schema the user
gave it raises ``Mismatch``, which ``arrow_points`` turns into an error naming the column and the point;
under an inferred schema it is recorded in the read's ``SchemaFindings`` (by path, e.g. ``meta.page``)
and read as null, and struct keys outside the schema are recorded too.

``points_to_arrow.py`` builds whole columns and takes these converters for the values its fast paths do not.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from dagster_qdrant.errors import QdrantSchemaError
from dagster_qdrant.spark.schema import ID_COLUMN, MIXED_METADATA_KEY
from dagster_qdrant.spark.schema_findings import READ_AS_TEXT, SchemaFindings

_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)




class Mismatch(Exception):
    """A value that does not fit its column type; becomes a QdrantSchemaError naming the point."""

    def __init__(self, value: Any, expected: DataType, path: str = "") -> None:
        super().__init__(value, expected)
        self.value = value
        self.expected = expected
        self.path = path


Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class ValuePath:
    """Where a converter's values are, for reports: the path (``meta.page``) and the read's findings.

    Without findings (a schema the user gave) a value that does not fit raises Mismatch. With findings
    (an inferred schema) it is recorded there and read as null, and struct keys outside the schema are
    recorded too; ``SchemaFindings`` then warns or fails.
    """

    path: str = ""
    findings: SchemaFindings | None = None

    def child(self, name: str) -> ValuePath:
        """A struct field's path: ``meta.page``."""
        return ValuePath(f"{self.path}.{name}" if self.path else name, self.findings)

    def element(self) -> ValuePath:
        """The path of a list's elements or a map's values: ``tags[]``."""
        return ValuePath(f"{self.path}[]", self.findings)

    def mismatch(self, value: Any, expected: DataType) -> None:
        """Record a value that does not fit (the read makes it null), or raise when nobody records."""
        if self.findings is None:
            raise Mismatch(value, expected, self.path)
        self.findings.not_fitting(self.path, expected.simpleString(), value)


NOWHERE = ValuePath()


def value_converter(data_type: DataType, where: ValuePath = NOWHERE, mixed: bool = True) -> Converter:
    """A function from a JSON value to what pyarrow accepts for ``data_type``.

    A value that does not fit goes to ``where.mismatch``. ``mixed=False`` marks a string column inferred
    from strings only: with findings, a value of another kind there is reported (still read, as JSON text).
    """
    if isinstance(data_type, StringType):
        return _to_string if mixed or where.findings is None else _text_converter(where)
    if isinstance(data_type, (LongType, IntegerType, ShortType, ByteType)):
        return _integer_converter(data_type, where)
    if isinstance(data_type, (DoubleType, FloatType)):
        return _number_converter(data_type, where)
    if isinstance(data_type, BooleanType):
        return _checked(data_type, lambda v: isinstance(v, bool), lambda v: v, where)
    if isinstance(data_type, TimestampType):
        return _checked(data_type, lambda v: isinstance(v, str), _parse_timestamp, where)
    if isinstance(data_type, TimestampNTZType):
        return _checked(data_type, lambda v: isinstance(v, str), _parse_timestamp_ntz, where)
    if isinstance(data_type, DateType):
        return _checked(data_type, lambda v: isinstance(v, str), _parse_date, where)
    if isinstance(data_type, DecimalType):
        return _decimal_converter(data_type, where)
    if isinstance(data_type, BinaryType):
        return _checked(data_type, lambda v: isinstance(v, str), base64.b64decode, where)
    if isinstance(data_type, ArrayType):
        return _array_converter(data_type, where)
    if isinstance(data_type, StructType):
        return _struct_converter(data_type, where)
    if isinstance(data_type, MapType) and isinstance(data_type.keyType, StringType):
        return _map_converter(data_type, where)
    raise QdrantSchemaError(
        f"Spark type {data_type.simpleString()!r} cannot be read from Qdrant JSON: use string, long, int, "
        "double, float, boolean, decimal, date, timestamp, binary (base64 text), array, struct or "
        "map<string, ...>"
    )


def check_readable(schema: StructType) -> None:
    """Fail at planning time, not in a task, when a column has a type no point can fill."""
    for field in schema.fields:
        value_converter(field.dataType)


def _to_string(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _text_converter(where: ValuePath) -> Converter:
    """Strings as they are; any other value as its JSON text, reported (the sample held only strings)."""
    findings = where.findings
    assert findings is not None

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        findings.not_fitting(where.path, "string", value, READ_AS_TEXT)
        return orjson.dumps(value).decode()

    return convert


def _checked(
    data_type: DataType, accepts: Callable[[Any], bool], convert: Converter, where: ValuePath = NOWHERE
) -> Converter:
    def check(value: Any) -> Any:
        if value is None:
            return None
        if not accepts(value):
            where.mismatch(value, data_type)
            return None
        try:
            return convert(value)
        except (ValueError, TypeError, decimal.InvalidOperation):
            where.mismatch(value, data_type)
            return None

    return check


_INTEGER_BOUNDS = {
    LongType: (_LONG_MIN, _LONG_MAX),
    IntegerType: (-(2**31), 2**31 - 1),
    ShortType: (-(2**15), 2**15 - 1),
    ByteType: (-(2**7), 2**7 - 1),
}


def _integer_converter(data_type: DataType, where: ValuePath) -> Converter:
    low, high = _INTEGER_BOUNDS[type(data_type)]

    def accepts(value: Any) -> bool:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    return _checked(data_type, accepts, int, where)


def _number_converter(data_type: DataType, where: ValuePath) -> Converter:
    """Floats, and integers the column's float type holds exactly (no silent rounding of big integers)."""
    exact = np.float32 if isinstance(data_type, FloatType) else float

    def accepts(value: Any) -> bool:
        if isinstance(value, float):
            return True
        return isinstance(value, int) and not isinstance(value, bool) and _holds(exact, value)

    return _checked(data_type, accepts, float, where)


def _holds(exact: Callable[[int], Any], value: int) -> bool:
    try:
        return bool(exact(value) == value)
    except OverflowError:
        return False


def _decimal_converter(data_type: DecimalType, where: ValuePath) -> Converter:
    quantum = decimal.Decimal(1).scaleb(-data_type.scale)
    context = decimal.Context(prec=data_type.precision + 1)  # the default 28 digits cannot hold decimal(38, s)

    def convert(value: Any) -> decimal.Decimal:
        number = decimal.Decimal(str(value))
        rounded = number.quantize(quantum, context=context)
        if rounded != number or len(rounded.as_tuple().digits) > data_type.precision:
            raise ValueError("does not fit")
        return rounded

    return _checked(
        data_type, lambda v: isinstance(v, (int, float, str)) and not isinstance(v, bool), convert, where
    )


def _parse_timestamp(text: str) -> dt.datetime:
    """RFC 3339 text to an aware UTC datetime; text without an offset is taken as UTC."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _parse_timestamp_ntz(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _parse_date(text: str) -> dt.date:
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    return _parse_timestamp(text).date()


def _array_converter(data_type: ArrayType, where: ValuePath) -> Converter:
    # Elements carry no metadata: an element type inferred as string may hold several kinds.
    element = value_converter(data_type.elementType, where.element())

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            where.mismatch(value, data_type)
            return None
        return [element(item) for item in value]

    return convert


def _struct_converter(data_type: StructType, where: ValuePath) -> Converter:
    fields = [
        (field.name, value_converter(field.dataType, where.child(field.name), is_mixed(field)))
        for field in data_type.fields
    ]
    names = frozenset(name for name, _ in fields)
    findings = where.findings

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            where.mismatch(value, data_type)
            return None
        if findings is not None:
            for key in value.keys() - names:
                findings.unknown_key(where.child(str(key)).path)
        return {name: field(value.get(name)) for name, field in fields}

    return convert


def _map_converter(data_type: MapType, where: ValuePath) -> Converter:
    values = value_converter(data_type.valueType, where.element())

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            where.mismatch(value, data_type)
            return None
        return [(str(key), values(item)) for key, item in value.items()]

    return convert


def is_mixed(field: Any) -> bool:
    return bool(field.metadata.get(MIXED_METADATA_KEY))


def id_converter(data_type: DataType) -> Converter:
    if isinstance(data_type, StringType):
        return str
    if isinstance(data_type, (LongType, DecimalType)):
        return value_converter(data_type)
    raise QdrantSchemaError(
        f"Column {ID_COLUMN!r} has type {data_type.simpleString()!r}: point ids read as string (any id) "
        "or long (integer ids)"
    )


def _as_list(vector: Any) -> list[Any]:
    return vector.tolist() if isinstance(vector, np.ndarray) else vector


def vector_converter(data_type: DataType) -> Converter:
    if isinstance(data_type, ArrayType) and isinstance(data_type.elementType, (FloatType, DoubleType)):
        return _checked(data_type, lambda v: isinstance(v, (list, np.ndarray)), _as_list)
    return value_converter(data_type)


__all__ = [
    "NOWHERE",
    "Converter",
    "Mismatch",
    "ValuePath",
    "check_readable",
    "id_converter",
    "is_mixed",
    "value_converter",
    "vector_converter",
]
