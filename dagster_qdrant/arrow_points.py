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
from dagster_qdrant.schema import ID_COLUMN, MIXED_METADATA_KEY
from dagster_qdrant.schema_findings import READ_AS_TEXT, SchemaFindings

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


@dataclass(frozen=True)
class _Where:
    """Where a converter's values are, for reports: the path (``meta.page``) and the read's findings.

    Without findings (a schema the user gave) a value that does not fit raises _Mismatch. With findings
    (an inferred schema) it is recorded there and read as null, and struct keys outside the schema are
    recorded too; ``SchemaFindings`` then warns or fails.
    """

    path: str = ""
    findings: SchemaFindings | None = None

    def child(self, name: str) -> _Where:
        return _Where(f"{self.path}.{name}" if self.path else name, self.findings)

    def mismatch(self, value: Any, expected: DataType) -> None:
        """Record a value that does not fit (the read makes it null), or raise when nobody records."""
        if self.findings is None:
            raise _Mismatch(value, expected)
        self.findings.not_fitting(self.path, expected.simpleString(), value)


_NOWHERE = _Where()


def _converter(data_type: DataType, where: _Where = _NOWHERE, mixed: bool = True) -> Converter:
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
        _converter(field.dataType)


def _to_string(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _text_converter(where: _Where) -> Converter:
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
    data_type: DataType, accepts: Callable[[Any], bool], convert: Converter, where: _Where = _NOWHERE
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


def _integer_converter(data_type: DataType, where: _Where) -> Converter:
    low, high = _INTEGER_BOUNDS[type(data_type)]

    def accepts(value: Any) -> bool:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    return _checked(data_type, accepts, int, where)


def _number_converter(data_type: DataType, where: _Where) -> Converter:
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


def _decimal_converter(data_type: DecimalType, where: _Where) -> Converter:
    quantum = decimal.Decimal(1).scaleb(-data_type.scale)

    def convert(value: Any) -> decimal.Decimal:
        number = decimal.Decimal(str(value))
        rounded = number.quantize(quantum)
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


def _array_converter(data_type: ArrayType, where: _Where) -> Converter:
    # Elements carry no metadata: an element type inferred as string may hold several kinds.
    element = _converter(data_type.elementType, where.child("[]"))

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            where.mismatch(value, data_type)
            return None
        return [element(item) for item in value]

    return convert


def _struct_converter(data_type: StructType, where: _Where) -> Converter:
    fields = [
        (field.name, _converter(field.dataType, where.child(field.name), _is_mixed(field)))
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


def _map_converter(data_type: MapType, where: _Where) -> Converter:
    values = _converter(data_type.valueType, where.child("{}"))

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            where.mismatch(value, data_type)
            return None
        return [(str(key), values(item)) for key, item in value.items()]

    return convert


def _is_mixed(field: Any) -> bool:
    return bool(field.metadata.get(MIXED_METADATA_KEY))


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


def _column(
    field: Any, arrow_type: pa.DataType, vector_names: Mapping[str, str], findings: SchemaFindings | None
) -> _Column:
    data_type = field.dataType
    if field.name == ID_COLUMN:
        source, key, convert = "id", ID_COLUMN, _id_converter(data_type)
    elif field.name in vector_names:
        source, key, convert = "vector", vector_names[field.name], _vector_converter(data_type)
    else:
        where = _Where(field.name, findings)
        source, key, convert = "payload", field.name, _converter(data_type, where, _is_mixed(field))
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


class PointBatchBuilder:
    """Turns pages of points into record batches with the schema's exact Arrow types.

    ``vector_names`` maps each vector column to its Qdrant vector name; every other column but ``id``
    is a payload key. With ``findings`` (a read of an inferred schema) payload keys and values the schema
    has no room for are recorded there instead of failing the page (``schema_findings``).
    """

    def __init__(
        self,
        schema: StructType,
        vector_names: Mapping[str, str],
        collection: str,
        findings: SchemaFindings | None = None,
    ) -> None:
        self.schema = schema
        self.collection = collection
        self.findings = findings
        self.arrow_schema = to_arrow_schema(schema, timezone="UTC")
        self._columns = [
            _column(field, self.arrow_schema.field(index).type, vector_names, findings)
            for index, field in enumerate(schema.fields)
        ]
        self._payload_keys = frozenset(column.key for column in self._columns if column.source == "payload")

    def to_batch(self, points: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        sources = {column.source for column in self._columns}
        ids = [point.get("id") for point in points]
        wanted = "payload" in sources or self.findings is not None
        payloads = [point.get("payload") or {} for point in points] if wanted else []
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
        if self.findings is not None:
            self._find_unknown_keys(points, payloads)
            self.findings.check_page()
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)

    def _find_unknown_keys(self, points: Sequence[Mapping[str, Any]], payloads: list[Any]) -> None:
        assert self.findings is not None
        known = self._payload_keys
        for point, payload in zip(points, payloads):
            extra = payload.keys() - known
            for key in extra:
                self.findings.unknown_key(key, 1, point.get("id"))

    def _array(self, column: _Column, values: list[Any], points: Sequence[Mapping[str, Any]]) -> pa.Array:
        """The column's Arrow array: built whole when the values allow it, else value by value, checked."""
        whole = _whole_array(column, values)
        if whole is not None:
            return whole
        converted: list[Any] = []
        convert, findings = column.convert, self.findings
        try:
            if findings is None or column.source != "payload":
                for value in values:
                    converted.append(convert(value))
            else:
                for point, value in zip(points, values):
                    findings.point_id = point.get("id")
                    converted.append(convert(value))
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
