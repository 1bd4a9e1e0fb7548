"""Qdrant's JSON points as Arrow record batches with exactly the schema Spark expects (the read direction).

Each scroll page becomes one ``pyarrow.RecordBatch``. Columns are built whole: the values of a column
are gathered from the page once, and when they already have the Python types Arrow takes as they are
(strings for a string column, integers for a long column, ...) the column is one ``pa.array`` call. Dense
vectors, the bulk of the bytes, become one flat numpy buffer and offsets, with no Python object per
element on the way to Arrow. Any other value goes through a per-type converter that checks it, so a
schema that does not fit the data fails with the column, the value and the point instead of a wrong row;
the fast paths only take values that converter would pass unchanged, so both give the same batch.

``convert.py`` is the other direction (Spark rows to Qdrant points).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema
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
from dagster_qdrant.schema import ID_COLUMN

_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)
_NONE_TYPE = type(None)

# ---------------------------------------------------------------------------------------------------
# One value at a time, checked
# ---------------------------------------------------------------------------------------------------


class _Mismatch(Exception):
    """A value that does not fit its column type; becomes a QdrantSchemaError naming the point."""

    def __init__(self, value: Any, expected: DataType) -> None:
        super().__init__(value, expected)
        self.value = value
        self.expected = expected


Converter = Callable[[Any], Any]


def _converter(data_type: DataType) -> Converter:
    """A function from a JSON value to what pyarrow accepts for ``data_type``, raising _Mismatch."""
    if isinstance(data_type, StringType):
        return _to_string
    if isinstance(data_type, (LongType, IntegerType, ShortType, ByteType)):
        return _integer_converter(data_type)
    if isinstance(data_type, (DoubleType, FloatType)):
        return _number_converter(data_type)
    if isinstance(data_type, BooleanType):
        return _checked(data_type, lambda v: isinstance(v, bool), lambda v: v)
    if isinstance(data_type, TimestampType):
        return _checked(data_type, lambda v: isinstance(v, str), _parse_timestamp)
    if isinstance(data_type, TimestampNTZType):
        return _checked(data_type, lambda v: isinstance(v, str), _parse_timestamp_ntz)
    if isinstance(data_type, DateType):
        return _checked(data_type, lambda v: isinstance(v, str), _parse_date)
    if isinstance(data_type, DecimalType):
        return _decimal_converter(data_type)
    if isinstance(data_type, BinaryType):
        return _checked(data_type, lambda v: isinstance(v, str), base64.b64decode)
    if isinstance(data_type, ArrayType):
        return _array_converter(data_type)
    if isinstance(data_type, StructType):
        return _struct_converter(data_type)
    if isinstance(data_type, MapType) and isinstance(data_type.keyType, StringType):
        return _map_converter(data_type)
    raise QdrantSchemaError(
        f"Spark type {data_type.simpleString()!r} cannot be read from Qdrant JSON: use string, long, int, "
        "double, float, boolean, decimal, date, timestamp, binary (base64 text), array, struct or "
        "map<string, ...>"
    )


def check_readable(schema: StructType) -> None:
    """Fail at planning time, not in a task, when a column has a type no point can fill."""
    for field in schema.fields:
        _converter(field.dataType)


def _to_string(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _checked(data_type: DataType, accepts: Callable[[Any], bool], convert: Converter) -> Converter:
    def check(value: Any) -> Any:
        if value is None:
            return None
        if not accepts(value):
            raise _Mismatch(value, data_type)
        try:
            return convert(value)
        except (ValueError, TypeError, decimal.InvalidOperation):
            raise _Mismatch(value, data_type) from None

    return check


_INTEGER_BOUNDS = {
    LongType: (_LONG_MIN, _LONG_MAX),
    IntegerType: (-(2**31), 2**31 - 1),
    ShortType: (-(2**15), 2**15 - 1),
    ByteType: (-(2**7), 2**7 - 1),
}


def _integer_converter(data_type: DataType) -> Converter:
    low, high = _INTEGER_BOUNDS[type(data_type)]

    def accepts(value: Any) -> bool:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    return _checked(data_type, accepts, int)


def _number_converter(data_type: DataType) -> Converter:
    return _checked(data_type, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), float)


def _decimal_converter(data_type: DecimalType) -> Converter:
    quantum = decimal.Decimal(1).scaleb(-data_type.scale)

    def convert(value: Any) -> decimal.Decimal:
        number = decimal.Decimal(str(value))
        rounded = number.quantize(quantum)
        if rounded != number or len(rounded.as_tuple().digits) > data_type.precision:
            raise ValueError("does not fit")
        return rounded

    return _checked(
        data_type, lambda v: isinstance(v, (int, float, str)) and not isinstance(v, bool), convert
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


def _array_converter(data_type: ArrayType) -> Converter:
    element = _converter(data_type.elementType)

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise _Mismatch(value, data_type)
        return [element(item) for item in value]

    return convert


def _struct_converter(data_type: StructType) -> Converter:
    fields = [(field.name, _converter(field.dataType)) for field in data_type.fields]

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise _Mismatch(value, data_type)
        return {name: field(value.get(name)) for name, field in fields}

    return convert


def _map_converter(data_type: MapType) -> Converter:
    values = _converter(data_type.valueType)

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise _Mismatch(value, data_type)
        return [(str(key), values(item)) for key, item in value.items()]

    return convert


def _id_converter(data_type: DataType) -> Converter:
    if isinstance(data_type, StringType):
        return str
    if isinstance(data_type, (LongType, DecimalType)):
        return _converter(data_type)
    raise QdrantSchemaError(
        f"Column {ID_COLUMN!r} has type {data_type.simpleString()!r}: point ids read as string (any id) "
        "or long (integer ids)"
    )


def _as_list(vector: Any) -> list[Any]:
    return vector.tolist() if isinstance(vector, np.ndarray) else vector


def _vector_converter(data_type: DataType) -> Converter:
    if isinstance(data_type, ArrayType) and isinstance(data_type.elementType, (FloatType, DoubleType)):
        return _checked(data_type, lambda v: isinstance(v, (list, np.ndarray)), _as_list)
    return _converter(data_type)


# ---------------------------------------------------------------------------------------------------
# Whole columns
# ---------------------------------------------------------------------------------------------------

_ARROW_READY_KINDS: dict[type, frozenset[type]] = {
    StringType: frozenset({str}),
    LongType: frozenset({int}),
    IntegerType: frozenset({int}),
    ShortType: frozenset({int}),
    ByteType: frozenset({int}),
    DoubleType: frozenset({int, float}),
    FloatType: frozenset({int, float}),
    BooleanType: frozenset({bool}),
}
"""Python types that ``pa.array`` turns into the column's type exactly as the checked converter would
(``bool`` is not an ``int`` here: ``type(True) is bool``). Integers out of the column's range make
``pa.array`` fail, and the checked converter then names the value."""

_VECTOR_ELEMENT_DTYPES: dict[type, Any] = {FloatType: np.float32, DoubleType: np.float64}


@dataclass(frozen=True)
class _Column:
    """How one column of the schema is read: where its values are in a point and how they become Arrow."""

    name: str
    source: str
    """``id``, ``vector`` or ``payload``."""
    key: str
    """The payload key, or the Qdrant vector name (``""`` for the unnamed vector)."""
    data_type: DataType
    arrow_type: pa.DataType
    convert: Converter
    arrow_ready: frozenset[type] | None
    vector_dtype: Any
    """numpy element type when the column holds dense vectors (built from one flat buffer), else None."""


def _column(field: Any, arrow_type: pa.DataType, vector_names: Mapping[str, str]) -> _Column:
    data_type = field.dataType
    if field.name == ID_COLUMN:
        source, key, convert = "id", ID_COLUMN, _id_converter(data_type)
    elif field.name in vector_names:
        source, key, convert = "vector", vector_names[field.name], _vector_converter(data_type)
    else:
        source, key, convert = "payload", field.name, _converter(data_type)
    vector_dtype = None
    if source == "vector" and isinstance(data_type, ArrayType):
        vector_dtype = _VECTOR_ELEMENT_DTYPES.get(type(data_type.elementType))
    return _Column(
        name=field.name,
        source=source,
        key=key,
        data_type=data_type,
        arrow_type=arrow_type,
        convert=convert,
        arrow_ready=_ARROW_READY_KINDS.get(type(data_type)),
        vector_dtype=vector_dtype,
    )


def _spark_arrow_schema(schema: StructType) -> pa.Schema:
    """Spark's own Arrow form of ``schema``, timestamps in UTC: the schema Spark checks each batch against."""
    try:
        return to_arrow_schema(schema, timezone="UTC")
    except TypeError:  # PySpark 4.1 spells it timestamp_utc=True, its default
        return to_arrow_schema(schema)


class PointBatchBuilder:
    """Turns pages of points into record batches with the schema's exact Arrow types.

    ``vector_names`` maps each vector column to its Qdrant vector name; every other column but ``id``
    is a payload key.
    """

    def __init__(self, schema: StructType, vector_names: Mapping[str, str], collection: str) -> None:
        self.schema = schema
        self.collection = collection
        self.arrow_schema = _spark_arrow_schema(schema)
        self._columns = [
            _column(field, self.arrow_schema.field(index).type, vector_names)
            for index, field in enumerate(schema.fields)
        ]

    def to_batch(self, points: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        sources = {column.source for column in self._columns}
        ids = [point.get("id") for point in points]
        payloads = [point.get("payload") or {} for point in points] if "payload" in sources else []
        vectors = [point.get("vector") for point in points] if "vector" in sources else []
        arrays = []
        for column in self._columns:
            if column.source == "id":
                values = ids
            elif column.source == "payload":
                values = [payload.get(column.key) for payload in payloads]
            else:
                values = [_vector_of(vector, column.key) for vector in vectors]
            arrays.append(self._array(column, values, points))
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)

    def _array(self, column: _Column, values: list[Any], points: Sequence[Mapping[str, Any]]) -> pa.Array:
        """The column's Arrow array: built whole when the values allow it, else value by value, checked."""
        whole = _whole_array(column, values)
        if whole is not None:
            return whole
        converted: list[Any] = []
        try:
            for value in values:
                converted.append(column.convert(value))
        except _Mismatch as mismatch:
            raise self._mismatch_error(column, mismatch, points[len(converted)]) from None
        try:
            return pa.array(converted, type=column.arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise QdrantSchemaError(
                f"Column {column.name!r} of type {column.data_type.simpleString()!r} "
                f"cannot hold the values read ({error}): fix the schema or the data",
                collection=self.collection,
            ) from None

    def _mismatch_error(self, column: _Column, mismatch: _Mismatch, point: Mapping[str, Any]) -> QdrantSchemaError:
        shown = repr(mismatch.value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        where = "point id" if column.source == "id" else f"column {column.key!r}"
        return QdrantSchemaError(
            f"{where.capitalize()} expects {mismatch.expected.simpleString()!r} but point "
            f"{point.get('id')!r} has {shown}: read with a schema that fits the data (e.g. string for "
            "values of several kinds) or let the schema be inferred",
            collection=self.collection,
            point_ids=[point.get("id")],
        )


def _whole_array(column: _Column, values: list[Any]) -> pa.Array | None:
    """One ``pa.array`` for the whole column, or None when some value needs the checked converter."""
    if column.vector_dtype is not None:
        return _dense_vectors(values, column.arrow_type, column.vector_dtype)
    if column.arrow_ready is None:
        return None
    kinds = set(map(type, values))
    kinds.discard(_NONE_TYPE)
    if not kinds <= column.arrow_ready:
        return None
    try:
        return pa.array(values, type=column.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None  # e.g. an integer out of range: the checked path names it


def _dense_vectors(values: list[Any], arrow_type: pa.DataType, dtype: Any) -> pa.Array | None:
    """Dense vectors as one flat numpy buffer plus offsets.

    Values are float64 arrays (a scroll page decoded by ``scroll_decode``) or lists of numbers (Qdrant's
    JSON as orjson decodes it). None when a value is neither (a multivector or sparse vector in the
    column): the checked path then reports it.
    """
    kinds = set(map(type, values))
    has_null = _NONE_TYPE in kinds
    kinds.discard(_NONE_TYPE)
    if not kinds <= {list} and not kinds <= {np.ndarray}:
        return None
    present = [value for value in values if value is not None] if has_null else values
    lengths = np.fromiter(map(len, present), dtype=np.int64, count=len(present))
    total = int(lengths.sum())
    if total >= 2**31:
        return None  # beyond 32-bit list offsets
    try:
        if kinds == {np.ndarray}:
            flat = np.concatenate(present).astype(dtype, copy=False)
        else:
            flat = np.fromiter(itertools.chain.from_iterable(present), dtype=dtype, count=total)
    except (TypeError, ValueError):
        return None
    mask = None
    if has_null:
        missing = np.fromiter((value is None for value in values), dtype=bool, count=len(values))
        row_lengths = np.zeros(len(values), dtype=np.int64)
        row_lengths[~missing] = lengths
        lengths = row_lengths
        mask = pa.array(missing)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat), type=arrow_type, mask=mask)


def _vector_of(vector: Any, name: str) -> Any:
    if isinstance(vector, Mapping):
        return vector.get(name)
    return vector if name == "" else None


__all__ = ["PointBatchBuilder", "check_readable"]
