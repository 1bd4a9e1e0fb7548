"""Qdrant records (``read_qdrant_points``) -> one pyarrow Table, with the columns the points were written from.

The Spark-free read of a whole selection: pandas and Arrow assets load their inputs through it. The
column names are the writer's (``id_field``, ``vector_field``, ``vector_fields``, ``sparse_vector_fields``),
so what an asset wrote it reads back under the same names. Types follow the Spark reader's inference
(``spark/schema.py``): ids are ``int64`` when every id is an integer that fits, else strings (UUIDs); a
payload key is boolean, integer, double (integers and doubles together only when every integer is
exactly a double), string, or what pyarrow makes of nested values; a key absent from a point is null
there. Dense vectors are ``list<float32>``: Qdrant stores float32 and prints the shortest text of each
float32, so they come back exactly as written (a Cosine collection stores them normalised). A key whose
values have no common type is refused, naming the key and the types, never read as something else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from dagster_qdrant.errors import QdrantSchemaError

_LONG_MAX = 2**63 - 1
_EXACT_DOUBLE_INT = 2**53
"""Integers up to this magnitude are exact as doubles: a key mixing them with doubles reads as double."""
SPARSE_TYPE = pa.struct([("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32()))])
VECTOR_COLUMN = "vector"
"""The column of the unnamed vector, as the Spark reader names it too (``spark/schema.py``)."""


def records_to_table(
    records: Iterable[Mapping[str, Any]],
    *,
    id_column: str | None = "id",
    vector_columns: Mapping[str, str] | None = None,
    sparse_columns: Mapping[str, str] | None = None,
    drop_payload: Sequence[str] = (),
    collection: str = "",
) -> pa.Table:
    """The records as a table: the id, the payload keys (sorted, as the Spark reader orders them), the vectors.

    ``vector_columns`` / ``sparse_columns``: vector name (``""`` for the unnamed vector) -> column name;
    a vector the records carry that has no column is named after itself. ``drop_payload``: payload keys
    left out (the partition field). ``collection`` only names the source in errors.
    """
    points = list(records)
    dense_names = dict(vector_columns or {})
    sparse_names = dict(sparse_columns or {})
    columns: dict[str, pa.Array] = {}
    if id_column is not None:
        columns[id_column] = _ids([point.get("id") for point in points])
    payloads = [point.get("payload") or {} for point in points]
    keys = sorted({key for payload in payloads for key in payload} - set(drop_payload))
    for key in keys:
        columns[key] = _payload_column(key, [payload.get(key) for payload in payloads], collection)
    vectors = [_vector_map(point.get("vector")) for point in points]
    for name in sorted({name for vector in vectors for name in vector}):
        values = [vector.get(name) for vector in vectors]
        sparse = name in sparse_names or any(isinstance(value, Mapping) for value in values)
        column = (sparse_names if sparse else dense_names).get(name) or name or VECTOR_COLUMN
        if column in columns:
            raise QdrantSchemaError(
                f"Collection {collection!r}: vector {name or '(unnamed)'!r} would be column {column!r}, which a "
                "payload key already names: choose other names in vector_field / vector_fields"
            )
        columns[column] = _sparse(values) if sparse else _dense(values, name, collection)
    for name, column in {**dense_names, **sparse_names}.items():  # asked for, carried by no point
        if column not in columns and points == []:
            columns[column] = pa.array([], SPARSE_TYPE if name in sparse_names else pa.list_(pa.float32()))
    return pa.table(columns) if columns else pa.table({})


def _ids(ids: list[Any]) -> pa.Array:
    if all(isinstance(value, int) and value <= _LONG_MAX for value in ids):
        return pa.array(ids, pa.int64())
    return pa.array([str(value) for value in ids], pa.string())


def _vector_map(vector: Any) -> dict[str, Any]:
    """The unnamed vector as ``{"": vector}``; named vectors as they are."""
    if vector is None:
        return {}
    if isinstance(vector, Mapping) and not ("indices" in vector and "values" in vector):
        return dict(vector)
    return {"": vector}


def _dense(values: list[Any], name: str, collection: str) -> pa.Array:
    try:
        return pa.array(
            [None if value is None else np.asarray(value, dtype=np.float32) for value in values],
            pa.list_(pa.float32()),
        )
    except (TypeError, ValueError, pa.ArrowException) as error:  # a multivector: lists of lists
        raise QdrantSchemaError(
            f"Collection {collection!r}: vector {name or '(unnamed)'!r} is not one list of numbers per point "
            f"({error}); read multivectors through the Spark data source"
        ) from None


def _sparse(values: list[Any]) -> pa.Array:
    rows = [
        None if value is None else {"indices": list(value["indices"]), "values": list(value["values"])}
        for value in values
    ]
    return pa.array(rows, SPARSE_TYPE)


def _payload_column(key: str, values: list[Any], collection: str) -> pa.Array:
    kinds = {_kind(value) for value in values} - {"null"}
    if kinds == {"long", "double"}:
        wide = [value for value in values if _kind(value) == "long" and abs(value) > _EXACT_DOUBLE_INT]
        if wide:
            raise _mixed(key, collection, f"integers such as {wide[0]} that a double cannot hold exactly, and doubles")
        return pa.array([None if value is None else float(value) for value in values], pa.float64())
    if len(kinds) > 1:
        raise _mixed(key, collection, ", ".join(sorted(kinds)))
    kind = next(iter(kinds), "null")
    if kind == "long" and any(value > _LONG_MAX for value in values if value is not None):
        return pa.array(values, pa.uint64())
    arrow_type = {"null": pa.null(), "boolean": pa.bool_(), "long": pa.int64(), "double": pa.float64(),
                  "string": pa.string()}.get(kind)
    try:
        return pa.array(values, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:  # nested values of different shapes
        raise _mixed(key, collection, f"nested values of different shapes ({error})") from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


def _mixed(key: str, collection: str, kinds: str) -> QdrantSchemaError:
    return QdrantSchemaError(
        f"Payload key {key!r} of collection {collection!r} holds values of several types ({kinds}), which one "
        "table column cannot hold: leave it out with the input's 'columns', or read it through the Spark "
        "data source (payload_layout='json' keeps any value)"
    )


__all__ = ["SPARSE_TYPE", "records_to_table"]
