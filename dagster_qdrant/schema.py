"""The Spark schema of a collection, and Qdrant's JSON points turned into Arrow record batches.

Inference looks at a sample of points and widens what it sees so one schema holds for the sample:
integers and floats together become double, values of different kinds become a string (the JSON text of
the non-strings), objects become structs with the union of their keys, lists become arrays. Vectors are
typed from the collection's configuration, not from the sample, so the schema does not depend on which
points happen to carry which vector. Columns: ``id``, the payload keys (sorted, so the schema is the same
whatever order points arrive in), then ``vector`` for the unnamed vector and one column per named vector.

Reading converts each scroll page straight into one ``pyarrow.RecordBatch`` with exactly the Arrow schema
Spark expects, checking every value against the column type, so a schema that does not fit the data fails
with the column, the value and the point instead of a wrong row.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from dagster_qdrant.errors import QdrantConfigError

ID_COLUMN = "id"
VECTOR_COLUMN = "vector"
MIXED_METADATA_KEY = "qdrant.mixed"
"""Field metadata set on columns inferred as string because the sample held values of several kinds:
their text is not what Qdrant stores, so filters on them are not pushed down."""

SPARSE_VECTOR_TYPE = StructType(
    [
        StructField("indices", ArrayType(IntegerType(), containsNull=False), nullable=False),
        StructField("values", ArrayType(FloatType(), containsNull=False), nullable=False),
    ]
)
DENSE_VECTOR_TYPE = ArrayType(FloatType(), containsNull=False)
MULTI_VECTOR_TYPE = ArrayType(DENSE_VECTOR_TYPE, containsNull=False)
_LONG_MAX = 2**63 - 1
_LONG_MIN = -(2**63)


class QdrantSchemaError(QdrantConfigError):
    """The Spark schema and the points do not fit: a value of another type, or a type that cannot be read."""


# ---------------------------------------------------------------------------------------------------
# Vector columns
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorColumn:
    """One vector of the collection as a column: ``name`` is Qdrant's vector name (``""`` unnamed)."""

    column: str
    name: str
    data_type: DataType


def vector_column_name(name: str) -> str:
    """The column of a vector: ``vector`` for the unnamed one, its own name otherwise."""
    return VECTOR_COLUMN if name == "" else name


def vector_columns_from_collection(info: Mapping[str, Any] | None) -> list[VectorColumn] | None:
    """Every vector the collection declares, typed from its config; None when the info has no config."""
    params = ((info or {}).get("config") or {}).get("params")
    if not isinstance(params, Mapping):
        return None
    columns: list[VectorColumn] = []
    dense = params.get("vectors")
    if isinstance(dense, Mapping) and "size" in dense:
        columns.append(VectorColumn(VECTOR_COLUMN, "", _dense_type(dense)))
    elif isinstance(dense, Mapping):
        for name in sorted(dense):
            columns.append(VectorColumn(vector_column_name(name), name, _dense_type(dense[name] or {})))
    for name in sorted(params.get("sparse_vectors") or {}):
        columns.append(VectorColumn(vector_column_name(name), name, SPARSE_VECTOR_TYPE))
    return columns


def _dense_type(params: Mapping[str, Any]) -> DataType:
    return MULTI_VECTOR_TYPE if params.get("multivector_config") else DENSE_VECTOR_TYPE


def vector_columns_from_points(points: Iterable[Mapping[str, Any]]) -> list[VectorColumn]:
    """Vector columns seen in sampled points, for servers whose collection info has no config."""
    found: dict[str, DataType] = {}
    for point in points:
        vector = point.get("vector")
        named = {"": vector} if isinstance(vector, list) else (vector or {})
        for name, value in named.items():
            if isinstance(value, Mapping):
                found.setdefault(name, SPARSE_VECTOR_TYPE)
            elif isinstance(value, list) and value and isinstance(value[0], list):
                found.setdefault(name, MULTI_VECTOR_TYPE)
            elif isinstance(value, list):
                found.setdefault(name, DENSE_VECTOR_TYPE)
    return [VectorColumn(vector_column_name(name), name, found[name]) for name in sorted(found)]


def select_vectors(columns: Sequence[VectorColumn], with_vectors: bool | Sequence[str]) -> list[VectorColumn]:
    """The vectors a read asks for: none, all, or those named (by vector name or by column name)."""
    if with_vectors is False:
        return []
    if with_vectors is True:
        return list(columns)
    wanted = set(with_vectors)
    chosen = [c for c in columns if c.name in wanted or c.column in wanted]
    missing = wanted - {c.name for c in chosen} - {c.column for c in chosen}
    if missing:
        known = sorted(c.name or VECTOR_COLUMN for c in columns)
        raise QdrantConfigError(
            f"Option 'with_vectors' names vector(s) {sorted(missing)!r} the collection does not have; "
            f"its vectors are {known!r}"
        )
    return chosen


# ---------------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------------
# While sampling, a type is one of: "null", "boolean", "long", "double", "string", "mixed",
# ("array", element type) or ("struct", {key: type}). It becomes a Spark type at the end.

_Kind = Any


def _kind_of(value: Any) -> _Kind:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long" if _LONG_MIN <= value <= _LONG_MAX else "double"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        element: _Kind = "null"
        for item in value:
            element = _merge(element, _kind_of(item))
        return ("array", element)
    if isinstance(value, Mapping):
        return ("struct", {str(key): _kind_of(item) for key, item in value.items()})
    return "mixed"


def _merge(left: _Kind, right: _Kind) -> _Kind:
    """The narrowest kind holding both: null is absorbed, long+double is double, the rest is mixed."""
    if left == right:
        return left
    if left == "null":
        return right
    if right == "null":
        return left
    if isinstance(left, str) and isinstance(right, str) and {left, right} == {"long", "double"}:
        return "double"
    if isinstance(left, tuple) and isinstance(right, tuple) and left[0] == right[0]:
        if left[0] == "array":
            return ("array", _merge(left[1], right[1]))
        fields = dict(left[1])
        for key, kind in right[1].items():
            fields[key] = _merge(fields.get(key, "null"), kind)
        return ("struct", fields)
    return "mixed"


def _spark_field(name: str, kind: _Kind) -> StructField:
    metadata = {MIXED_METADATA_KEY: True} if kind == "mixed" else {}
    return StructField(name, _spark_type(kind), nullable=True, metadata=metadata)


def _spark_type(kind: _Kind) -> DataType:
    if isinstance(kind, tuple) and kind[0] == "array":
        return ArrayType(_spark_type(kind[1]), containsNull=True)
    if isinstance(kind, tuple):
        return StructType([_spark_field(key, kind[1][key]) for key in sorted(kind[1])])
    return {"boolean": BooleanType(), "long": LongType(), "double": DoubleType()}.get(kind, StringType())


def infer_id_type(ids: Iterable[Any]) -> DataType:
    """long when every sampled id is an integer that fits, string otherwise (UUIDs, or no sample)."""
    seen = False
    for point_id in ids:
        seen = True
        if not isinstance(point_id, int) or point_id > _LONG_MAX:
            return StringType()
    return LongType() if seen else StringType()


def infer_schema(
    points: Sequence[Mapping[str, Any]],
    vectors: Sequence[VectorColumn],
    *,
    include_id: bool = True,
) -> StructType:
    """The schema of sampled points: id, payload keys sorted, then the chosen vector columns."""
    payload: dict[str, _Kind] = {}
    for point in points:
        for key, value in (point.get("payload") or {}).items():
            payload[key] = _merge(payload.get(key, "null"), _kind_of(value))
    fields: list[StructField] = []
    if include_id:
        fields.append(StructField(ID_COLUMN, infer_id_type(p["id"] for p in points), nullable=False))
    reserved = {ID_COLUMN} | {vector.column for vector in vectors}
    for key in sorted(payload):
        if key in reserved:
            raise QdrantSchemaError(
                f"Payload field {key!r} has the name of the {'id' if key == ID_COLUMN else 'vector'} column: "
                f"leave it out with with_payload={{'exclude': [{key!r}]}} or read without that vector"
            )
        fields.append(_spark_field(key, payload[key]))
    for vector in vectors:
        fields.append(StructField(vector.column, vector.data_type, nullable=True))
    return StructType(fields)


# ---------------------------------------------------------------------------------------------------
# Points -> Arrow
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


def _vector_converter(data_type: DataType) -> Converter:
    if isinstance(data_type, ArrayType) and isinstance(data_type.elementType, (FloatType, DoubleType)):
        return _checked(data_type, lambda v: isinstance(v, list), lambda v: v)
    return _converter(data_type)


class PointBatchBuilder:
    """Turns pages of points into record batches with the schema's exact Arrow types.

    ``vector_names`` maps each vector column to its Qdrant vector name; every other column but ``id``
    is a payload key. Dense vectors go to pyarrow as they are (the bulk of the bytes, no Python loop per
    element); payload values go through a per-type converter that checks them.
    """

    def __init__(self, schema: StructType, vector_names: Mapping[str, str], collection: str) -> None:
        self.schema = schema
        self.collection = collection
        self.arrow_schema = to_arrow_schema(schema, timezone="UTC")
        self._columns: list[tuple[str, str, Converter]] = []
        for field in schema.fields:
            if field.name == ID_COLUMN:
                self._columns.append(("id", field.name, _id_converter(field.dataType)))
            elif field.name in vector_names:
                self._columns.append(("vector", vector_names[field.name], _vector_converter(field.dataType)))
            else:
                self._columns.append(("payload", field.name, _converter(field.dataType)))

    def to_batch(self, points: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        arrays = []
        for index, (source, key, convert) in enumerate(self._columns):
            field = self.arrow_schema.field(index)
            values = [self._value(point, source, key, convert) for point in points]
            try:
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                raise QdrantSchemaError(
                    f"Column {field.name!r} of type {self.schema.fields[index].dataType.simpleString()!r} "
                    f"cannot hold the values read ({error}): fix the schema or the data",
                    collection=self.collection,
                ) from None
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema)

    def _value(self, point: Mapping[str, Any], source: str, key: str, convert: Converter) -> Any:
        if source == "id":
            raw = point.get("id")
        elif source == "vector":
            raw = _vector_of(point.get("vector"), key)
        else:
            raw = (point.get("payload") or {}).get(key)
        try:
            return convert(raw)
        except _Mismatch as mismatch:
            shown = repr(mismatch.value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            where = "point id" if source == "id" else f"column {key!r}"
            raise QdrantSchemaError(
                f"{where.capitalize()} expects {mismatch.expected.simpleString()!r} but point "
                f"{point.get('id')!r} has {shown}: read with a schema that fits the data (e.g. string for "
                "values of several kinds) or let the schema be inferred",
                collection=self.collection,
                point_ids=[point.get("id")],
            ) from None


def _vector_of(vector: Any, name: str) -> Any:
    if isinstance(vector, Mapping):
        return vector.get(name)
    return vector if name == "" else None


__all__ = [
    "DENSE_VECTOR_TYPE",
    "ID_COLUMN",
    "MIXED_METADATA_KEY",
    "MULTI_VECTOR_TYPE",
    "SPARSE_VECTOR_TYPE",
    "VECTOR_COLUMN",
    "PointBatchBuilder",
    "QdrantSchemaError",
    "VectorColumn",
    "check_readable",
    "infer_id_type",
    "infer_schema",
    "select_vectors",
    "vector_column_name",
    "vector_columns_from_collection",
    "vector_columns_from_points",
]
