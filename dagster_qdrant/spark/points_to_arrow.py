"""Qdrant's JSON points as Arrow record batches with exactly the schema Spark expects (the read direction).

Each scroll page becomes one ``pyarrow.RecordBatch``. Columns are built whole: the values of a column
are gathered from the page once, and when they already have the Python types Arrow takes as they are
(strings for a string column, integers for a long column, ...) the column is one ``pa.array`` call. Dense
vectors, the bulk of the bytes, become one flat numpy buffer and offsets, with no Python object per
element on the way to Arrow. Any other value goes through a per-type converter that checks it
(``values_to_arrow.py``), so a schema that does not fit the data fails with the column, the value and the
point instead of a wrong row, or, for an inferred schema, is reported once per partition
(``schema_findings.py``); the fast paths only take values that converter would pass unchanged, so both
give the same batch.

``points/rows_to_points.py`` is the other direction (Spark rows to Qdrant points).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
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

from dagster_qdrant.spark.values_to_arrow import (
    Converter,
    Mismatch,
    ValuePath,
    check_readable,
    id_converter,
    is_mixed,
    value_converter,
    vector_converter,
)
from dagster_qdrant.errors import QdrantSchemaError
from dagster_qdrant.spark.schema import ID_COLUMN, PAYLOAD_COLUMN
from dagster_qdrant.spark.schema_findings import SchemaFindings

_NONE_TYPE = type(None)

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
    """``id``, ``vector``, ``payload`` (one key) or ``whole_payload`` (the struct and json layouts)."""
    key: str
    """The payload key, or the Qdrant vector name (``""`` for the unnamed vector)."""
    data_type: DataType
    arrow_type: pa.DataType
    convert: Converter
    arrow_ready: frozenset[type] | None
    vector_dtype: Any
    """numpy element type when the column holds dense vectors (built from one flat buffer), else None."""


def _column(
    field: Any,
    arrow_type: pa.DataType,
    vector_names: Mapping[str, str],
    findings: SchemaFindings | None,
    layout: str,
) -> _Column:
    data_type = field.dataType
    if field.name == ID_COLUMN:
        source, key, convert = "id", ID_COLUMN, id_converter(data_type)
    elif field.name in vector_names:
        source, key, convert = "vector", vector_names[field.name], vector_converter(data_type)
    elif layout != "columns" and field.name == PAYLOAD_COLUMN:
        # The whole payload: its keys are the struct's fields (paths name them as in the columns layout);
        # in the json layout a string column, which takes the payload object as its JSON text.
        source, key, convert = "whole_payload", "", value_converter(data_type, ValuePath("", findings), True)
    else:
        where = ValuePath(field.name, findings)
        source, key, convert = "payload", field.name, value_converter(data_type, where, is_mixed(field))
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

    ``vector_names`` maps each vector column to its Qdrant vector name; in the ``columns`` layout every
    other column but ``id`` is a payload key, in the ``struct`` and ``json`` layouts (``payload_layout``)
    the ``payload`` column holds the whole payload. With ``findings`` (a read of an inferred schema)
    payload keys and values the schema has no room for are recorded there instead of failing the page
    (``schema_findings``).
    """

    def __init__(
        self,
        schema: StructType,
        vector_names: Mapping[str, str],
        collection: str,
        findings: SchemaFindings | None = None,
        layout: str = "columns",
    ) -> None:
        self.schema = schema
        self.collection = collection
        self.findings = findings
        self.layout = layout
        self.arrow_schema = _spark_arrow_schema(schema)
        self._columns = [
            _column(field, self.arrow_schema.field(index).type, vector_names, findings, layout)
            for index, field in enumerate(schema.fields)
        ]
        self._payload_keys = frozenset(column.key for column in self._columns if column.source == "payload")

    def to_batch(self, points: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
        sources = {column.source for column in self._columns}
        ids = [point.get("id") for point in points]
        wanted = "payload" in sources or (self.findings is not None and self.layout == "columns")
        payloads = [point.get("payload") or {} for point in points] if wanted else []
        vectors = [point.get("vector") for point in points] if "vector" in sources else []
        arrays = []
        for column in self._columns:
            if column.source == "id":
                values = ids
            elif column.source == "payload":
                values = [payload.get(column.key) for payload in payloads]
            elif column.source == "whole_payload":
                values = [point.get("payload") for point in points]
            else:
                values = [_vector_of(vector, column.key) for vector in vectors]
            arrays.append(self._array(column, values, points))
        if self.findings is not None:
            if self.layout == "columns":  # in the struct layout the struct's converter finds them
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
            if findings is None or column.source not in ("payload", "whole_payload"):
                for value in values:
                    converted.append(convert(value))
            else:
                for point, value in zip(points, values):
                    findings.point_id = point.get("id")
                    converted.append(convert(value))
        except Mismatch as mismatch:
            raise self._mismatch_error(column, mismatch, points[len(converted)]) from None
        try:
            return pa.array(converted, type=column.arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise QdrantSchemaError(
                f"Column {column.name!r} of type {column.data_type.simpleString()!r} "
                f"cannot hold the values read ({error}): fix the schema or the data",
                collection=self.collection,
            ) from None

    def _mismatch_error(self, column: _Column, mismatch: Mismatch, point: Mapping[str, Any]) -> QdrantSchemaError:
        shown = repr(mismatch.value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        if column.source == "id":
            where = "point id"
        elif column.source == "whole_payload":
            where = f"column {column.name!r} (payload key {mismatch.path!r})"
        else:
            where = f"column {column.key!r}"
        if self.findings is not None:  # only ids and vectors get here: they cannot be read as null
            fix = "infer the schema from more points (option sample_size, e.g. sample_size='all') or pass one"
        else:
            fix = (
                "read with a schema that fits the data (e.g. string for values of several kinds) or let the "
                "schema be inferred"
            )
        return QdrantSchemaError(
            f"{where[0].upper()}{where[1:]} expects {mismatch.expected.simpleString()!r} but point "
            f"{point.get('id')!r} has {shown}: {fix}",
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
