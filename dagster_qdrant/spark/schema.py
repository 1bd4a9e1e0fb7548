"""The Spark schema of a collection: its vector columns, and inference from a sample of points.

Inference looks at a sample of points (drawn over the whole read by ``schema_sampling.py``) and widens
what it sees so one schema holds the sample exactly: integers and floats together become double while
every integer is exact as a double, values of different kinds become a string (the JSON text of the
non-strings), objects become structs with the union of their keys, lists become arrays. Vectors are
typed from the collection's configuration, not from the sample, so the schema does not depend on which
points happen to carry which vector. Columns: ``id``, the payload keys (sorted, so the schema is the same
whatever order points arrive in), then ``vector`` for the unnamed vector and one column per named vector.

Turning points into rows of such a schema is the job of ``points_to_arrow.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from dagster_qdrant.errors import QdrantConfigError, QdrantSchemaError
from dagster_qdrant.vector_config import DenseVector, read_vector_config

ID_COLUMN = "id"
VECTOR_COLUMN = "vector"
PAYLOAD_COLUMN = "payload"
"""The one payload column of the ``struct`` and ``json`` layouts (spark-fuse's shape: id, payload, vector)."""
MIXED_METADATA_KEY = "qdrant.mixed"
"""Field metadata set on columns inferred as string because the sample held values of several kinds:
their text is not what Qdrant stores, so filters on them are not pushed down."""
INFERRED_METADATA_KEY = "qdrant.inferred"
"""Metadata of the ``id`` column of an inferred schema: what the sample was (``{"sampled": n, "of": N}``).
It tells a read that its schema is a guess from a sample, so keys and types outside it are reported,
whereas the columns of a schema the user gives are a choice."""

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
    config = read_vector_config(info)
    if config is None:
        return None
    columns: list[VectorColumn] = []
    if config.unnamed:
        columns.append(VectorColumn(VECTOR_COLUMN, "", _dense_type(config.dense[0])))
    else:
        for vector in sorted(config.dense, key=lambda vector: vector.name):
            columns.append(VectorColumn(vector_column_name(vector.name), vector.name, _dense_type(vector)))
    for name in sorted(config.sparse_names()):
        columns.append(VectorColumn(vector_column_name(name), name, SPARSE_VECTOR_TYPE))
    return columns


def _dense_type(vector: DenseVector) -> DataType:
    return MULTI_VECTOR_TYPE if vector.multivector else DENSE_VECTOR_TYPE


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
# While sampling, a type is one of: "null", "boolean", "long", "wide_long" (an integer a double cannot hold
# exactly), "double", "string", "mixed", ("array", element type) or ("struct", {key: type}). It becomes a
# Spark type at the end. "wide_long" exists so that widening never rounds: long + double is double only
# while every integer seen is exact as a double; past that the values stay whole as JSON text (mixed).

_Kind = Any
_NUMBERS = frozenset({"long", "wide_long", "double"})


def _kind_of(value: Any) -> _Kind:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        exact = float(value) == value
        if _LONG_MIN <= value <= _LONG_MAX:
            return "long" if exact else "wide_long"
        return "double" if exact else "mixed"
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
    """The narrowest kind holding both exactly: null is absorbed, long + double is double, the rest mixed."""
    if left == right:
        return left
    if left == "null":
        return right
    if right == "null":
        return left
    if isinstance(left, str) and isinstance(right, str) and {left, right} <= _NUMBERS:
        if "wide_long" in (left, right):
            return "mixed" if "double" in (left, right) else "wide_long"
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
    # Only nulls seen: a string column of JSON text, like mixed values, since any kind may come.
    metadata = {MIXED_METADATA_KEY: True} if kind in ("mixed", "null") else {}
    return StructField(name, _spark_type(kind), nullable=True, metadata=metadata)


def _spark_type(kind: _Kind) -> DataType:
    if isinstance(kind, tuple) and kind[0] == "array":
        return ArrayType(_spark_type(kind[1]), containsNull=True)
    if isinstance(kind, tuple):
        return StructType([_spark_field(key, kind[1][key]) for key in sorted(kind[1])])
    types = {"boolean": BooleanType(), "long": LongType(), "wide_long": LongType(), "double": DoubleType()}
    return types.get(kind, StringType())


def infer_id_type(ids: Iterable[Any]) -> DataType:
    """long when every sampled id is an integer that fits, string otherwise (UUIDs, or no sample)."""
    seen = False
    for point_id in ids:
        seen = True
        if not isinstance(point_id, int) or point_id > _LONG_MAX:
            return StringType()
    return LongType() if seen else StringType()


class SchemaInference:
    """The widened kinds of every payload key seen so far, fed a page at a time.

    Pages are folded in as they arrive, so a sample of the whole collection (``sample_size="all"``) needs
    memory for the kinds, not for the points.
    """

    def __init__(self) -> None:
        self.payload: dict[str, _Kind] = {}
        self.points = 0
        self._long_ids = True

    def add(self, points: Iterable[Mapping[str, Any]]) -> None:
        payload = self.payload
        for point in points:
            self.points += 1
            point_id = point.get("id")
            if self._long_ids and (not isinstance(point_id, int) or point_id > _LONG_MAX):
                self._long_ids = False
            for key, value in (point.get("payload") or {}).items():
                payload[key] = _merge(payload.get(key, "null"), _kind_of(value))

    def schema(
        self,
        vectors: Sequence[VectorColumn],
        *,
        include_id: bool = True,
        id_metadata: Mapping[str, Any] | None = None,
        layout: str = "columns",
    ) -> StructType:
        """id, the payload, then the chosen vector columns.

        ``layout``: ``columns`` gives one column per payload key (sorted); ``struct`` one ``payload``
        struct of those keys; ``json`` one ``payload`` string column (the payload's JSON text).
        """
        fields: list[StructField] = []
        if include_id:
            id_type = LongType() if self._long_ids and self.points else StringType()
            fields.append(StructField(ID_COLUMN, id_type, nullable=False, metadata=dict(id_metadata or {})))
        reserved = {ID_COLUMN} | {vector.column for vector in vectors}
        if layout != "columns":
            if PAYLOAD_COLUMN in reserved:
                raise QdrantSchemaError(
                    f"The collection has a vector named {PAYLOAD_COLUMN!r}, the payload column of "
                    f"payload_layout={layout!r}: read with payload_layout='columns' or without that vector"
                )
            payload_type = StringType() if layout == "json" else _spark_type(("struct", self.payload))
            fields.append(StructField(PAYLOAD_COLUMN, payload_type, nullable=True))
            fields.extend(StructField(vector.column, vector.data_type, nullable=True) for vector in vectors)
            return StructType(fields)
        for key in sorted(self.payload):
            if key in reserved:
                raise QdrantSchemaError(
                    f"Payload field {key!r} has the name of the {'id' if key == ID_COLUMN else 'vector'} column: "
                    f"leave it out with with_payload={{'exclude': [{key!r}]}} or read without that vector"
                )
            fields.append(_spark_field(key, self.payload[key]))
        for vector in vectors:
            fields.append(StructField(vector.column, vector.data_type, nullable=True))
        return StructType(fields)


def infer_schema(
    points: Sequence[Mapping[str, Any]],
    vectors: Sequence[VectorColumn],
    *,
    include_id: bool = True,
) -> StructType:
    """The schema of sampled points: id, payload keys sorted, then the chosen vector columns."""
    inference = SchemaInference()
    inference.add(points)
    return inference.schema(vectors, include_id=include_id)


__all__ = [
    "DENSE_VECTOR_TYPE",
    "ID_COLUMN",
    "INFERRED_METADATA_KEY",
    "MIXED_METADATA_KEY",
    "MULTI_VECTOR_TYPE",
    "PAYLOAD_COLUMN",
    "SPARSE_VECTOR_TYPE",
    "VECTOR_COLUMN",
    "QdrantSchemaError",
    "SchemaInference",
    "VectorColumn",
    "infer_id_type",
    "infer_schema",
    "select_vectors",
    "vector_column_name",
    "vector_columns_from_collection",
    "vector_columns_from_points",
]
